// io_test.h - the fixture of the I/O tests: RillTest plus an fd count (no
// test may leave an fd open) and small socket helpers.
#ifndef RILL_IO_TEST_H
#define RILL_IO_TEST_H

#include <dirent.h>
#include <fcntl.h>
#include <unistd.h>

#include <cstring>
#include <string>

#include "rill_test.h"

namespace rilltest {

inline int CountFds() {
  DIR *d = opendir("/proc/self/fd");
  if (!d) return -1;
  int n = 0;
  while (struct dirent *e = readdir(d))
    if (e->d_name[0] != '.') n++;
  closedir(d);
  return n - 1;  // the DIR's own fd
}

class IoTest : public RillTest {
 protected:
  int fds_before_ = 0;
  void SetUp() override {
    fds_before_ = CountFds();
    RillTest::SetUp();
  }
  void TearDown() override {
    RillTest::TearDown();
    EXPECT_EQ(CountFds(), fds_before_) << "fds leaked by the test";
  }

  // A listener on 127.0.0.1 with an ephemeral port.
  rill_listener *Listen(int backlog = 0, unsigned flags = 0) {
    rill_listener *l = rill_tcp_listen(loop, "127.0.0.1", 0, backlog, flags);
    EXPECT_NE(l, nullptr) << rill_last_error_message();
    return l;
  }

 public:
  // Awaits f (in a coroutine) and returns the stream it gives, or NULL.
  static rill_stream *AwaitStream(rill_future *f, int *rc_out = nullptr) {
    int rc = rill_await(f);
    if (rc_out) *rc_out = rc;
    rill_stream *s = rc == RILL_OK ? rill_future_stream(f) : nullptr;
    rill_future_release(f);
    return s;
  }
  // Awaits a bytes future and returns its bytes (or "<err:CODE>").
  static std::string AwaitBytes(rill_future *f) {
    if (!f) return "<null:" + std::string(rill_last_error_message()) + ">";
    int rc = rill_await(f);
    std::string out;
    if (rc == RILL_OK) {
      size_t len = 0;
      const void *p = rill_future_bytes(f, &len);
      out.assign(static_cast<const char *>(p), len);
    } else {
      out = std::string("<err:") + (rill_err_name(rc) ? rill_err_name(rc) : "?") + ">";
    }
    rill_future_release(f);
    return out;
  }
  static int AwaitRc(rill_future *f) {
    if (!f) return rill_last_error();
    int rc = rill_await(f);
    rill_future_release(f);
    return rc;
  }
};

}  // namespace rilltest

#endif
