// Child processes: spawn (argv, env, cwd, stdio), awaitable exit status,
// signals, no zombies on any loop (pidfd, and the polling fallback).
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/wait.h>

#include <chrono>
#include <set>
#include <thread>

#include "rill_test.h"
#include "sys_test.h"

using namespace rilltest;

namespace {

// Everything from fd until EOF (the fd is non-blocking: poll first).
std::string ReadAll(int fd, double timeout = 5.0) {
  std::string out;
  double end = MonoNow() + timeout;
  char buf[4096];
  while (MonoNow() < end) {
    struct pollfd pfd = {fd, POLLIN, 0};
    if (poll(&pfd, 1, 100) <= 0) continue;
    ssize_t n = read(fd, buf, sizeof buf);
    if (n > 0) out.append(buf, (size_t)n);
    else if (n == 0) break;
    else if (errno != EAGAIN && errno != EINTR) break;
  }
  return out;
}

class Process : public RillTest {
 protected:
  ResourceSnapshot before;
  void TearDown() override {
    RillTest::TearDown();
    before.ExpectSame("after the test");
  }
  // Spawns, awaits the exit status on the loop, returns it.
  int WaitExit(rill_process *p) {
    rill_future *f = rill_process_wait(p);
    EXPECT_NE(f, nullptr);
    EXPECT_EQ(rill_loop_run_until(loop, f), RILL_OK) << rill_last_error_message();
    int64_t code = -999;
    EXPECT_EQ(rill_future_int(f, &code), RILL_OK);
    rill_future_release(f);
    return (int)code;
  }
};

bool RunningOnValgrind() {
  const char *p = getenv("LD_PRELOAD");
  return p && strstr(p, "vgpreload");
}

const int kPipeOut[3] = {RILL_STDIO_INHERIT, RILL_STDIO_PIPE, RILL_STDIO_INHERIT};

}  // namespace

TEST_F(Process, ExitCodeIsTheFutureValue) {
  const char *argv[] = {"sh", "-c", "exit 7", nullptr};
  rill_process *p = rill_process_spawn(loop, argv, nullptr, nullptr, nullptr);
  ASSERT_NE(p, nullptr) << rill_last_error_message();
  EXPECT_GT(rill_process_pid(p), 0);
  int rc;
  EXPECT_EQ(rill_process_returncode(p, &rc), RILL_ESTATE);
  EXPECT_EQ(WaitExit(p), 7);
  EXPECT_EQ(rill_process_returncode(p, &rc), RILL_OK);
  EXPECT_EQ(rc, 7);
  rill_process_release(p);
}

TEST_F(Process, OutputOfAProcessThatExitedBeforeItWasRead) {
  const char *argv[] = {"sh", "-c", "echo hello; echo oops >&2", nullptr};
  const int stdio[3] = {RILL_STDIO_DEVNULL, RILL_STDIO_PIPE, RILL_STDIO_STDOUT};
  rill_process *p = rill_process_spawn(loop, argv, nullptr, nullptr, stdio);
  ASSERT_NE(p, nullptr) << rill_last_error_message();
  EXPECT_EQ(WaitExit(p), 0);
  int fd = rill_process_fd(p, 1);
  ASSERT_GE(fd, 0);
  EXPECT_NE(fcntl(fd, F_GETFL) & O_NONBLOCK, 0);
  EXPECT_NE(fcntl(fd, F_GETFD) & FD_CLOEXEC, 0);
  EXPECT_EQ(ReadAll(fd), "hello\noops\n");
  EXPECT_EQ(rill_process_fd(p, 0), RILL_ESTATE);
  EXPECT_EQ(rill_process_fd(p, 2), RILL_ESTATE);
  rill_process_release(p);  // closes the pipe it still owns
}

TEST_F(Process, StdinPipeFeedsTheChild) {
  const char *argv[] = {"cat", nullptr};
  const int stdio[3] = {RILL_STDIO_PIPE, RILL_STDIO_PIPE, RILL_STDIO_INHERIT};
  rill_process *p = rill_process_spawn(loop, argv, nullptr, nullptr, stdio);
  ASSERT_NE(p, nullptr);
  int in = rill_process_take_fd(p, 0);
  ASSERT_GE(in, 0);
  EXPECT_EQ(rill_process_take_fd(p, 0), RILL_ESTATE) << "taken once";
  ASSERT_EQ(write(in, "abc", 3), 3);
  close(in);
  EXPECT_EQ(ReadAll(rill_process_fd(p, 1)), "abc");
  EXPECT_EQ(WaitExit(p), 0);
  rill_process_release(p);
}

TEST_F(Process, PipesAsStreamsLikeASocket) {
  // cat echoes what its stdin stream gets to its stdout stream; write_eof
  // ends it, and its exit status follows.
  const char *argv[] = {"cat", nullptr};
  const int stdio[3] = {RILL_STDIO_PIPE, RILL_STDIO_PIPE, RILL_STDIO_INHERIT};
  rill_process *p = rill_process_spawn(loop, argv, nullptr, nullptr, stdio);
  ASSERT_NE(p, nullptr) << rill_last_error_message();
  rill_stream *in = rill_process_stream(p, 0);
  rill_stream *out = rill_process_stream(p, 1);
  ASSERT_NE(in, nullptr) << rill_last_error_message();
  ASSERT_NE(out, nullptr) << rill_last_error_message();
  EXPECT_EQ(rill_process_fd(p, 0), RILL_ESTATE) << "the fd moved to the stream";
  EXPECT_NULL_WITH(rill_process_stream(p, 1), RILL_ESTATE);
  EXPECT_NULL_WITH(rill_process_stream(p, 2), RILL_ESTATE);
  EXPECT_NULL_WITH(rill_process_stream(p, 3), RILL_EINVAL);
  EXPECT_NULL_WITH(rill_process_stream(nullptr, 0), RILL_EINVAL);
  EXPECT_EQ(RunMain([&]() -> int {
              EXPECT_EQ(rill_stream_write(in, "one\ntwo\n", 8), RILL_OK);
              rill_future *line = rill_stream_read_until(out, "\n", 1, 0);
              EXPECT_EQ(rill_await(line), RILL_OK);
              size_t len = 0;
              const void *b = rill_future_bytes(line, &len);
              EXPECT_EQ(std::string(static_cast<const char *>(b), len), "one\n");
              rill_future_release(line);
              EXPECT_EQ(rill_stream_write_eof(in), RILL_OK);
              std::string rest;
              for (;;) {
                rill_future *r = rill_stream_read(out, 4096);
                EXPECT_EQ(rill_await(r), RILL_OK);
                b = rill_future_bytes(r, &len);
                rest.append(static_cast<const char *>(b), len);
                rill_future_release(r);
                if (len == 0) break;
              }
              EXPECT_EQ(rest, "two\n");
              rill_future *w = rill_process_wait(p);
              EXPECT_EQ(rill_await(w), RILL_OK);
              int64_t code = -1;
              EXPECT_EQ(rill_future_int(w, &code), RILL_OK);
              EXPECT_EQ(code, 0);
              rill_future_release(w);
              return RILL_OK;
            }),
            RILL_OK);
  rill_stream_close(in);
  rill_stream_close(out);
  rill_stream_release(in);
  rill_stream_release(out);
  rill_process_release(p);
}

TEST_F(Process, EnvironmentAndWorkingDirectory) {
  const char *argv[] = {"sh", "-c", "echo \"$RILL_X\"; pwd", nullptr};
  const char *envp[] = {"RILL_X=42", "PATH=/usr/bin:/bin", nullptr};
  rill_process *p = rill_process_spawn(loop, argv, envp, "/", kPipeOut);
  ASSERT_NE(p, nullptr) << rill_last_error_message();
  EXPECT_EQ(WaitExit(p), 0);
  EXPECT_EQ(ReadAll(rill_process_fd(p, 1)), "42\n/\n");
  rill_process_release(p);
}

TEST_F(Process, TheChildInheritsNoFdOfRill) {
  // The loop's own fds and another child's pipes and pidfd exist; the
  // child still sees only 0, 1, 2 (and ls's own directory fd).
  const char *sleeper[] = {"sleep", "5", nullptr};
  const int all_pipes[3] = {RILL_STDIO_PIPE, RILL_STDIO_PIPE, RILL_STDIO_PIPE};
  rill_process *other = rill_process_spawn(loop, sleeper, nullptr, nullptr, all_pipes);
  ASSERT_NE(other, nullptr);
  const char *argv[] = {"ls", "/proc/self/fd", nullptr};
  rill_process *p = rill_process_spawn(loop, argv, nullptr, nullptr, kPipeOut);
  ASSERT_NE(p, nullptr);
  EXPECT_EQ(WaitExit(p), 0);
  // What the test process itself inherited from outside (not close-on-exec)
  // may pass through; nothing rill opened may. ls adds one fd of its own.
  std::set<int> inheritable = {0, 1, 2};
  DIR *d = opendir("/proc/self/fd");
  while (struct dirent *e = readdir(d)) {
    int fd = atoi(e->d_name);
    if (e->d_name[0] != '.' && fd != dirfd(d) && !(fcntl(fd, F_GETFD) & FD_CLOEXEC)) inheritable.insert(fd);
  }
  closedir(d);
  std::string listing = ReadAll(rill_process_fd(p, 1));
  int extras = 0;
  for (size_t pos = 0, nl; (nl = listing.find('\n', pos)) != std::string::npos; pos = nl + 1)
    if (!inheritable.count(atoi(listing.substr(pos, nl - pos).c_str()))) extras++;
  EXPECT_EQ(extras, 1) << "child fds: " << listing;
  EXPECT_EQ(rill_process_kill(other), RILL_OK);
  EXPECT_EQ(WaitExit(other), -SIGKILL);
  rill_process_release(p);
  rill_process_release(other);
}

TEST_F(Process, KillAndSendSignal) {
  const char *argv[] = {"sleep", "10", nullptr};
  rill_process *p = rill_process_spawn(loop, argv, nullptr, nullptr, nullptr);
  ASSERT_NE(p, nullptr);
  EXPECT_EQ(rill_process_send_signal(p, 0), RILL_OK) << "alive";
  EXPECT_EQ(rill_process_send_signal(p, SIGTERM), RILL_OK);
  double t0 = MonoNow();
  EXPECT_EQ(WaitExit(p), -SIGTERM);
  EXPECT_LT(MonoNow() - t0, 2.0);
  EXPECT_FAILS_WITH(rill_process_kill(p), RILL_ESTATE);
  rill_process_release(p);
}

TEST_F(Process, ACoroutineAwaitsTheExitAndCancellingTheWaitLeavesTheProcess) {
  const char *argv[] = {"sh", "-c", "sleep 0.1; exit 3", nullptr};
  rill_process *p = rill_process_spawn(loop, argv, nullptr, nullptr, nullptr);
  ASSERT_NE(p, nullptr);
  int64_t code = 0;
  EXPECT_EQ(RunMain([&] {
              rill_future *w1 = rill_process_wait(p);
              rill_future_cancel(w1);  // only this wait
              rill_future *w2 = rill_process_wait(p);
              int rc = rill_await(w2);
              rill_future_int(w2, &code);
              EXPECT_EQ(rill_future_state(w1), RILL_CANCELLED);
              rill_future_release(w1);
              rill_future_release(w2);
              return rc;
            }),
            RILL_OK);
  EXPECT_EQ(code, 3);
  rill_process_release(p);
}

TEST_F(Process, RunKeepsGoingUntilAReleasedChildExitsAndReapsIt) {
  const char *argv[] = {"sh", "-c", "sleep 0.05", nullptr};
  rill_process *p = rill_process_spawn(loop, argv, nullptr, nullptr, nullptr);
  ASSERT_NE(p, nullptr);
  rill_process_release(p);
  EXPECT_EQ(ChildCount(), before.children + 1);
  Run();
  EXPECT_EQ(ChildCount(), before.children) << "reaped: no zombie";
}

TEST_F(Process, AHundredShortChildrenAtOnceAllReaped) {
  const char *argv[] = {"true", nullptr};
  std::vector<rill_process *> ps;
  std::vector<rill_future *> waits;
  for (int i = 0; i < 100; i++) {
    rill_process *p = rill_process_spawn(loop, argv, nullptr, nullptr, nullptr);
    ASSERT_NE(p, nullptr) << i << ": " << rill_last_error_message();
    ps.push_back(p);
    waits.push_back(rill_process_wait(p));
  }
  rill_future *all = rill_gather(loop, waits.size(), waits.data(), 0);
  EXPECT_EQ(rill_loop_run_until(loop, all), RILL_OK);
  for (auto *w : waits) {
    int64_t c = -1;
    rill_future_int(w, &c);
    EXPECT_EQ(c, 0);
  }
  rill_future_release(all);
  for (auto *w : waits) rill_future_release(w);
  for (auto *p : ps) rill_process_release(p);
  EXPECT_EQ(ChildCount(), before.children);
}

TEST_F(Process, AForkInTheChildIsHarmless) {
  // The child forks a grandchild and exits at once: we reap our child only
  // and never wait on (or for) the grandchild.
  const char *argv[] = {"sh", "-c", "sleep 0.3 & exit 5", nullptr};
  rill_process *p = rill_process_spawn(loop, argv, nullptr, nullptr, nullptr);
  ASSERT_NE(p, nullptr);
  double t0 = MonoNow();
  EXPECT_EQ(WaitExit(p), 5);
  EXPECT_LT(MonoNow() - t0, 0.25) << "did not wait for the grandchild";
  rill_process_release(p);
}

TEST_F(Process, AForkOfThisProcessDoesNotDisturbTheLoopsChildren) {
  const char *argv[] = {"sh", "-c", "sleep 0.05; exit 9", nullptr};
  rill_process *p = rill_process_spawn(loop, argv, nullptr, nullptr, nullptr);
  ASSERT_NE(p, nullptr);
  pid_t other = fork();
  ASSERT_GE(other, 0);
  if (other == 0) _exit(0);  // not rill's child: rill must not reap it
  EXPECT_EQ(WaitExit(p), 9);
  int status = 0;
  EXPECT_EQ(waitpid(other, &status, 0), other) << "still ours to reap";
  rill_process_release(p);
}

TEST_F(Process, LoopCloseKillsAndReapsRunningChildren) {
  const char *argv[] = {"sleep", "30", nullptr};
  rill_process *p = rill_process_spawn(loop, argv, nullptr, nullptr, nullptr);
  ASSERT_NE(p, nullptr);
  CloseLoop();
  int rc = 0;
  EXPECT_EQ(rill_process_returncode(p, &rc), RILL_OK);
  EXPECT_EQ(rc, -SIGKILL);
  rill_process_release(p);
}

TEST_F(Process, TwoLoopsOnTwoThreadsEachReapTheirOwn) {
  auto body = [](int code, int *got) {
    rill_loop *l = rill_loop_new();
    std::string script = "sleep 0.05; exit " + std::to_string(code);
    const char *argv[] = {"sh", "-c", script.c_str(), nullptr};
    rill_process *p = rill_process_spawn(l, argv, nullptr, nullptr, nullptr);
    rill_future *f = rill_process_wait(p);
    rill_loop_run_until(l, f);
    int64_t c = -1;
    rill_future_int(f, &c);
    *got = (int)c;
    rill_future_release(f);
    rill_process_release(p);
    rill_loop_free(l);
  };
  int a = -1, b = -1;
  std::thread ta(body, 11, &a), tb(body, 12, &b);
  ta.join();
  tb.join();
  EXPECT_EQ(a, 11);
  EXPECT_EQ(b, 12);
}

TEST_F(Process, BadInput) {
  rill_loop *closed = ClosedLoopEnvironment::Loop();
  const char *argv[] = {"true", nullptr};
  const char *empty[] = {nullptr};
  const char *blank[] = {"", nullptr};
  EXPECT_NULL_WITH(rill_process_spawn(nullptr, argv, nullptr, nullptr, nullptr), RILL_EINVAL);
  EXPECT_NULL_WITH(rill_process_spawn(closed, argv, nullptr, nullptr, nullptr), RILL_ECLOSED);
  EXPECT_NULL_WITH(rill_process_spawn(loop, nullptr, nullptr, nullptr, nullptr), RILL_EINVAL);
  EXPECT_NULL_WITH(rill_process_spawn(loop, empty, nullptr, nullptr, nullptr), RILL_EINVAL);
  EXPECT_NULL_WITH(rill_process_spawn(loop, blank, nullptr, nullptr, nullptr), RILL_EINVAL);
  const int bad_mode[3] = {RILL_STDIO_INHERIT, 7, RILL_STDIO_INHERIT};
  const int stdout_on_stdin[3] = {RILL_STDIO_STDOUT, RILL_STDIO_INHERIT, RILL_STDIO_INHERIT};
  EXPECT_NULL_WITH(rill_process_spawn(loop, argv, nullptr, nullptr, bad_mode), RILL_EINVAL);
  EXPECT_NULL_WITH(rill_process_spawn(loop, argv, nullptr, nullptr, stdout_on_stdin), RILL_EINVAL);
  const char *missing[] = {"rill-no-such-program", nullptr};
  if (RunningOnValgrind()) {
    // valgrind runs posix_spawn's vfork as a fork: the exec failure shows
    // as the child's exit status 127 instead (or 1: valgrind's
    // --error-exitcode, when it reports on the child's spawn path).
    for (const char *cwd : {(const char *)nullptr, "/rill/no/such/dir"}) {
      rill_process *p = rill_process_spawn(loop, cwd ? argv : missing, nullptr, cwd, kPipeOut);
      ASSERT_NE(p, nullptr);
      int status = WaitExit(p);
      EXPECT_TRUE(status == 127 || status == 1) << status;
      rill_process_release(p);
    }
  } else {
    EXPECT_NULL_WITH(rill_process_spawn(loop, missing, nullptr, nullptr, kPipeOut), RILL_ESPAWN);
    EXPECT_THAT(rill_last_error_message(), ::testing::HasSubstr("rill-no-such-program"));
    EXPECT_EQ(rill_last_error_errno(), ENOENT) << "exec's errno stays readable";
    EXPECT_NULL_WITH(rill_process_spawn(loop, argv, nullptr, "/rill/no/such/dir", nullptr), RILL_ESPAWN);
    EXPECT_THAT(rill_last_error_message(), ::testing::HasSubstr("/rill/no/such/dir"));
    EXPECT_EQ(rill_last_error_errno(), ENOENT);
  }
  EXPECT_FAILS_WITH(rill_process_pid(nullptr), RILL_EINVAL);
  EXPECT_FAILS_WITH(rill_process_fd(nullptr, 1), RILL_EINVAL);
  EXPECT_FAILS_WITH(rill_process_take_fd(nullptr, 1), RILL_EINVAL);
  EXPECT_NULL_WITH(rill_process_wait(nullptr), RILL_EINVAL);
  int rc;
  EXPECT_FAILS_WITH(rill_process_returncode(nullptr, &rc), RILL_EINVAL);
  EXPECT_FAILS_WITH(rill_process_send_signal(nullptr, SIGTERM), RILL_EINVAL);
  EXPECT_FAILS_WITH(rill_process_kill(nullptr), RILL_EINVAL);
  rill_process_release(nullptr);
  rill_process *p = rill_process_spawn(loop, argv, nullptr, nullptr, kPipeOut);
  ASSERT_NE(p, nullptr);
  EXPECT_FAILS_WITH(rill_process_fd(p, 3), RILL_EINVAL);
  EXPECT_FAILS_WITH(rill_process_fd(p, -1), RILL_EINVAL);
  EXPECT_FAILS_WITH(rill_process_fd(p, 2), RILL_ESTATE);
  EXPECT_FAILS_WITH(rill_process_returncode(p, nullptr), RILL_EINVAL);
  EXPECT_FAILS_WITH(rill_process_send_signal(p, -1), RILL_EINVAL);
  EXPECT_FAILS_WITH(rill_process_send_signal(p, 99), RILL_EINVAL);
  EXPECT_EQ(WaitExit(p), 0);
  rill_process_release(p);
}

// The fallback without pidfd (old kernels): the same behaviour by polling
// waitpid(pid) on a timer. Forced in a child test process.
TEST_F(Process, FallbackWithoutPidfdReapsByPid) {
  int report[2];
  ASSERT_EQ(pipe(report), 0);
  pid_t pid = fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    close(report[0]);
    auto finish = [&](char code) {
      if (write(report[1], &code, 1) != 1) _exit(2);
      _exit(0);
    };
    setenv("RILL_NO_PIDFD", "1", 1);
    rill_loop *l = rill_loop_new();
    const char *argv[] = {"sh", "-c", "exit 4", nullptr};
    std::vector<rill_process *> ps;
    std::vector<rill_future *> ws;
    for (int i = 0; i < 20; i++) {
      ps.push_back(rill_process_spawn(l, argv, nullptr, nullptr, nullptr));
      if (!ps.back()) finish(10);
      ws.push_back(rill_process_wait(ps.back()));
    }
    rill_future *all = rill_gather(l, ws.size(), ws.data(), 0);
    if (rill_loop_run_until(l, all) != RILL_OK) finish(11);
    for (auto *w : ws) {
      int64_t c = 0;
      if (rill_future_int(w, &c) != RILL_OK || c != 4) finish(12);
      rill_future_release(w);
    }
    rill_future_release(all);
    for (auto *p : ps) rill_process_release(p);
    rill_loop_free(l);
    finish(ChildCount() == 0 ? 0 : 13);
  }
  close(report[1]);
  char code = -1;
  EXPECT_EQ(read(report[0], &code, 1), 1);
  close(report[0]);
  int status = 0;
  ASSERT_EQ(waitpid(pid, &status, 0), pid);
  EXPECT_EQ(code, 0) << "10 spawn, 11 run, 12 exit code, 13 zombies";
}
