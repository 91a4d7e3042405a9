// sys_test.h - counts of the process's own resources, for tests of the
// thread pool, signals and processes: every such test ends with no thread,
// fd or child left behind.
#ifndef RILL_SYS_TEST_H
#define RILL_SYS_TEST_H

#include <dirent.h>
#include <signal.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <cstring>
#include <string>

namespace rilltest {

inline int CountDirEntries(const char *path) {
  DIR *d = opendir(path);
  if (!d) return -1;
  int n = 0;
  while (struct dirent *e = readdir(d))
    if (e->d_name[0] != '.') n++;
  closedir(d);
  return n - (std::strcmp(path, "/proc/self/fd") == 0 ? 1 : 0);  // the DIR's own fd
}
inline int OpenFdCount() { return CountDirEntries("/proc/self/fd"); }
inline int ThreadCount() { return CountDirEntries("/proc/self/task"); }

// Children of this process still present (zombies included), from /proc.
inline int ChildCount() {
  DIR *d = opendir("/proc");
  if (!d) return -1;
  int n = 0;
  pid_t me = getpid();
  while (struct dirent *e = readdir(d)) {
    if (e->d_name[0] < '0' || e->d_name[0] > '9') continue;
    std::string path = std::string("/proc/") + e->d_name + "/stat";
    FILE *f = std::fopen(path.c_str(), "r");
    if (!f) continue;
    char buf[512];
    size_t len = std::fread(buf, 1, sizeof buf - 1, f);
    std::fclose(f);
    buf[len] = 0;
    const char *rp = std::strrchr(buf, ')');  // comm may hold spaces
    int ppid = 0;
    char state = 0;
    if (rp && std::sscanf(rp + 1, " %c %d", &state, &ppid) == 2 && ppid == me) n++;
  }
  closedir(d);
  return n;
}

// Threads may take a moment to vanish from /proc after pthread_join
// returned (under TSan, a previous test's pool threads were seen still
// there when the next test took its snapshot): the count once it held
// for three readings 1 ms apart (at most 200 ms).
inline int SettledThreadCount() {
  int n = ThreadCount(), same = 0;
  for (int i = 0; i < 200 && same < 3; i++) {
    usleep(1000);
    int m = ThreadCount();
    same = m == n ? same + 1 : 0;
    n = m;
  }
  return n;
}

// Snapshot at construction; Check() compares (threads still vanishing
// are waited for on both sides).
struct ResourceSnapshot {
  int fds = OpenFdCount();
  int threads = SettledThreadCount();
  int children = ChildCount();
  void ExpectSame(const char *where = "") const {
    for (int i = 0; i < 200 && ThreadCount() != threads; i++) usleep(1000);
    EXPECT_EQ(OpenFdCount(), fds) << "open fds " << where;
    EXPECT_EQ(ThreadCount(), threads) << "threads " << where;
    EXPECT_EQ(ChildCount(), children) << "children " << where;
  }
};

}  // namespace rilltest

#endif
