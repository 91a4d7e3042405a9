// fd readiness: persistent watchers (add_reader/add_writer) and the
// one-shot awaitable wait.
#include <fcntl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <string>
#include <thread>
#include <vector>

#include "io_test.h"

using namespace rilltest;

namespace {

struct Pipe {
  int r = -1, w = -1;
  Pipe() {
    int fds[2];
    if (pipe2(fds, O_CLOEXEC | O_NONBLOCK) == 0) r = fds[0], w = fds[1];
  }
  ~Pipe() {
    if (r >= 0) close(r);
    if (w >= 0) close(w);
  }
};

class Readiness : public IoTest {};

TEST_F(Readiness, ReaderRunsFromTheQueueWhileReadable) {
  Pipe p;
  Cb *cb = NewCb(nullptr);
  int runs = 0;
  cb->fn = [&] {
    char c;
    ASSERT_EQ(read(p.r, &c, 1), 1);
    log.push_back(std::string("read ") + c);
    if (++runs == 2) {
      EXPECT_EQ(rill_fd_remove_reader(loop, p.r), 1);
    }
  };
  ASSERT_EQ(rill_fd_add_reader(loop, p.r, CbRun, cb, CbFree), RILL_OK);
  ASSERT_EQ(write(p.w, "ab", 2), 2);
  Soon([&] { log.push_back("soon"); });
  Run();
  // Readiness callbacks go through the ready queue: the call_soon already
  // queued runs first, then the reader once per iteration while readable.
  EXPECT_EQ(log, (std::vector<std::string>{"soon", "read a", "read b"}));
  EXPECT_EQ(cb->frees, 1);
}

TEST_F(Readiness, SecondReaderReplacesTheFirst) {
  Pipe p;
  Cb *first = NewCb([&] { log.push_back("first"); });
  Cb *second = NewCb(nullptr);
  second->fn = [&] {
    char c;
    EXPECT_EQ(read(p.r, &c, 1), 1);
    log.push_back("second");
    rill_fd_remove_reader(loop, p.r);
  };
  ASSERT_EQ(rill_fd_add_reader(loop, p.r, CbRun, first, CbFree), RILL_OK);
  ASSERT_EQ(rill_fd_add_reader(loop, p.r, CbRun, second, CbFree), RILL_OK);
  EXPECT_EQ(first->frees, 1);  // replaced: its arg freed at once
  ASSERT_EQ(write(p.w, "x", 1), 1);
  Run();
  EXPECT_EQ(log, (std::vector<std::string>{"second"}));
}

TEST_F(Readiness, WriterRunsWhileWritable) {
  Pipe p;
  Cb *cb = NewCb(nullptr);
  cb->fn = [&] {
    log.push_back("writable");
    rill_fd_remove_writer(loop, p.w);
  };
  ASSERT_EQ(rill_fd_add_writer(loop, p.w, CbRun, cb, CbFree), RILL_OK);
  Run();
  EXPECT_EQ(log, (std::vector<std::string>{"writable"}));
  EXPECT_EQ(rill_fd_remove_writer(loop, p.w), 0);
}

TEST_F(Readiness, ReaderAndWriterOnOneFdAreIndependent) {
  int sv[2];
  ASSERT_EQ(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, sv), 0);
  Cb *r = NewCb(nullptr), *w = NewCb(nullptr);
  r->fn = [&] {
    char c;
    EXPECT_EQ(read(sv[0], &c, 1), 1);
    log.push_back("read");
    rill_fd_remove_reader(loop, sv[0]);
  };
  w->fn = [&] {
    log.push_back("write");
    rill_fd_remove_writer(loop, sv[0]);
    EXPECT_EQ(write(sv[1], "z", 1), 1);
  };
  ASSERT_EQ(rill_fd_add_reader(loop, sv[0], CbRun, r, CbFree), RILL_OK);
  ASSERT_EQ(rill_fd_add_writer(loop, sv[0], CbRun, w, CbFree), RILL_OK);
  Run();
  EXPECT_EQ(log, (std::vector<std::string>{"write", "read"}));
  close(sv[0]);
  close(sv[1]);
}

TEST_F(Readiness, IdleLoopWithOnlyAWatcherKeepsRunning) {
  Pipe p;
  Cb *cb = NewCb(nullptr);
  cb->fn = [&] {
    log.push_back("readable");
    rill_fd_remove_reader(loop, p.r);
  };
  ASSERT_EQ(rill_fd_add_reader(loop, p.r, CbRun, cb, CbFree), RILL_OK);
  std::thread t([&] {
    usleep(50000);
    EXPECT_EQ(write(p.w, "x", 1), 1);
  });
  double t0 = MonoNow();
  Run();
  t.join();
  EXPECT_GE(MonoNow() - t0, 0.04);
  EXPECT_EQ(log, (std::vector<std::string>{"readable"}));
}

TEST_F(Readiness, RemovedWhileQueuedDoesNotRun) {
  Pipe p;
  Cb *cb = NewCb([&] { log.push_back("must not run"); });
  ASSERT_EQ(write(p.w, "x", 1), 1);
  ASSERT_EQ(rill_fd_add_reader(loop, p.r, CbRun, cb, CbFree), RILL_OK);
  // The first iteration polls and queues the reader; a callback queued
  // before it removes it.
  Soon([&] { EXPECT_EQ(rill_fd_remove_reader(loop, p.r), 1); });
  Run();
  EXPECT_TRUE(log.empty());
  EXPECT_EQ(cb->runs, 0);
}

TEST_F(Readiness, LoopCloseRemovesWatchers) {
  Pipe p;
  Cb *cb = NewCb(nullptr);
  ASSERT_EQ(rill_fd_add_reader(loop, p.r, CbRun, cb, CbFree), RILL_OK);
  CloseLoop();
  EXPECT_EQ(cb->frees, 1);
  EXPECT_EQ(cb->runs, 0);
}

TEST_F(Readiness, AwaitFdWaitInACoroutine) {
  Pipe p;
  Later(0.02, [&] { EXPECT_EQ(write(p.w, "x", 1), 1); });
  EXPECT_EQ(RunMain([&]() -> int {
              rill_future *f = rill_fd_wait(loop, p.r, RILL_READABLE);
              EXPECT_NE(f, nullptr);
              int rc = rill_await(f);
              int64_t ev = 0;
              EXPECT_EQ(rill_future_int(f, &ev), RILL_OK);
              EXPECT_EQ(ev, RILL_READABLE);
              rill_future_release(f);
              return rc;
            }),
            RILL_OK);
}

TEST_F(Readiness, FdWaitFromAStepTask) {
  Pipe p;
  rill_future *wait = nullptr;
  rill_task *t = NewTask([&](rill_task *task) {
    if (!wait) {
      wait = rill_fd_wait(loop, p.w, RILL_WRITABLE);
      ASSERT_NE(wait, nullptr);
      ASSERT_EQ(rill_task_wait(task, wait), RILL_OK);
      return;
    }
    int64_t ev = 0;
    EXPECT_EQ(rill_future_int(wait, &ev), RILL_OK);
    rill_future_set_int(rill_task_future(task), ev);
  });
  EXPECT_EQ(rill_loop_run_until(loop, rill_task_future(t)), RILL_OK);
  int64_t v = 0;
  EXPECT_EQ(rill_future_int(rill_task_future(t), &v), RILL_OK);
  EXPECT_EQ(v, RILL_WRITABLE);
  rill_future_release(wait);
  rill_task_release(t);
}

TEST_F(Readiness, WaitForTimesOutAndStopsTheWatch) {
  Pipe p;
  EXPECT_EQ(RunMain([&]() -> int {
              rill_future *f = rill_fd_wait(loop, p.r, RILL_READABLE);
              rill_future *w = rill_wait_for(loop, f, 0.03);
              int rc = rill_await(w);
              EXPECT_EQ(rill_future_state(f), RILL_CANCELLED);
              rill_future_release(w);
              rill_future_release(f);
              return rc == RILL_ETIMEDOUT ? RILL_OK : rc;
            }),
            RILL_OK);
  // Nothing left to poll: the loop has no work.
  EXPECT_EQ(rill_loop_run_once(loop, 0), 0);
}

TEST_F(Readiness, CancelledTaskStopsItsWait) {
  Pipe p;
  rill_task *t = Spawn([&]() -> int {
    rill_future *f = rill_fd_wait(loop, p.r, RILL_READABLE);
    int rc = rill_await(f);
    log.push_back(rill_err_name(rc));
    rill_future_release(f);
    return rc;
  });
  Later(0.01, [&] { rill_task_cancel(t, nullptr); });
  Run();  // returns: the watcher does not keep the loop alive after the cancel
  EXPECT_EQ(log, (std::vector<std::string>{"RILL_ECANCELLED"}));
  rill_task_release(t);
}

// An fd closed after its watcher started and before the loop polled used
// to abort the process: libev's epoll_ctl got EBADF, which libev asserts
// on. The loop now checks the iteration's new fds first (one poll(2)).
TEST_F(Readiness, AWaitWhoseFdIsClosedBeforeThePollFailsWithEbadf) {
  Pipe p;
  rill_future *f = rill_fd_wait(loop, p.r, RILL_READABLE);
  ASSERT_NE(f, nullptr);
  close(p.r);
  int fd = p.r;
  p.r = -1;
  double t0 = MonoNow();
  EXPECT_EQ(rill_loop_run_until(loop, f), RILL_EBADF);
  EXPECT_LT(MonoNow() - t0, 1.0) << "the poll does not block once the wait failed";
  EXPECT_EQ(rill_future_state(f), RILL_FAILED);
  EXPECT_EQ(rill_future_error(f), RILL_EBADF);
  EXPECT_EQ(rill_future_error_errno(f), EBADF);
  EXPECT_NE(std::string(rill_future_error_message(f)).find(std::to_string(fd)), std::string::npos);
  rill_future_release(f);
  EXPECT_EQ(rill_loop_run_once(loop, 0), 0) << "the failed wait keeps nothing alive";
}

// A wait on an fd that is not open at all: the same failure when the loop
// polls (the check is not made per wait: it would be a syscall per wait).
TEST_F(Readiness, AWaitOnAnFdThatIsNotOpenFailsWhenTheLoopPolls) {
  Pipe p;
  close(p.r);
  int fd = p.r;
  p.r = -1;
  rill_future *f = rill_fd_wait(loop, fd, RILL_READABLE);
  ASSERT_NE(f, nullptr);
  rill_future *g = rill_fd_wait(loop, p.w, RILL_WRITABLE);  // a good one beside it
  ASSERT_NE(g, nullptr);
  EXPECT_EQ(rill_loop_run_until(loop, f), RILL_EBADF);
  EXPECT_EQ(rill_future_error(f), RILL_EBADF);
  EXPECT_EQ(rill_loop_run_until(loop, g), RILL_OK);
  int64_t ev = 0;
  EXPECT_EQ(rill_future_int(g, &ev), RILL_OK);
  EXPECT_EQ(ev, RILL_WRITABLE);
  rill_future_release(f);
  rill_future_release(g);
}

// add_reader / add_writer, then the fd closed before the poll: the
// watchers stop quietly (their callbacks never run, as with asyncio's
// selector loop), the loop does not wait for them, and removing them
// still reports them and frees their args.
TEST_F(Readiness, WatchersWhoseFdIsClosedBeforeThePollStopQuietly) {
  Pipe p;
  ASSERT_EQ(write(p.w, "x", 1), 1);  // readable now
  Cb *reader = NewCb([&] { log.push_back("reader"); });
  Cb *writer = NewCb([&] { log.push_back("writer"); });
  ASSERT_EQ(rill_fd_add_reader(loop, p.r, CbRun, reader, CbFree), RILL_OK);
  ASSERT_EQ(rill_fd_add_writer(loop, p.w, CbRun, writer, CbFree), RILL_OK);
  int r = p.r, w = p.w;
  close(p.r);
  close(p.w);
  p.r = p.w = -1;
  Run();  // returns: nothing left to wait for
  EXPECT_TRUE(log.empty());
  EXPECT_EQ(rill_fd_remove_reader(loop, r), 1);
  EXPECT_EQ(rill_fd_remove_writer(loop, w), 1);
  EXPECT_EQ(reader->frees, 1);
  EXPECT_EQ(writer->frees, 1);
}

// More new fds in one iteration than one poll(2) takes (128), a few closed.
TEST_F(Readiness, ManyNewWaitsInOneIterationOnlyTheClosedFail) {
  std::vector<Pipe> pipes(150);
  std::vector<rill_future *> waits;
  for (auto &p : pipes) {
    ASSERT_GE(p.w, 0);
    waits.push_back(rill_fd_wait(loop, p.w, RILL_WRITABLE));
    ASSERT_NE(waits.back(), nullptr);
  }
  for (size_t i : {3u, 127u, 128u, 149u}) {
    close(pipes[i].w);
    pipes[i].w = -1;
  }
  for (size_t i = 0; i < waits.size(); i++) {
    bool closed = i == 3 || i == 127 || i == 128 || i == 149;
    EXPECT_EQ(rill_loop_run_until(loop, waits[i]), closed ? RILL_EBADF : RILL_OK) << i;
    EXPECT_EQ(rill_future_state(waits[i]), closed ? RILL_FAILED : RILL_DONE) << i;
    if (closed) {
      EXPECT_EQ(rill_future_error(waits[i]), RILL_EBADF) << i;
    }
    rill_future_release(waits[i]);
  }
}

TEST_F(Readiness, BadInput) {
  Pipe p;
  rill_loop *closed = ClosedLoopEnvironment::Loop();
  Cb local;  // never handed over: no free_arg given
  Cb *cb = &local;
  EXPECT_FAILS_WITH(rill_fd_add_reader(nullptr, p.r, CbRun, cb, nullptr), RILL_EINVAL);
  EXPECT_FAILS_WITH(rill_fd_add_reader(closed, p.r, CbRun, cb, nullptr), RILL_ECLOSED);
  EXPECT_FAILS_WITH(rill_fd_add_reader(loop, p.r, nullptr, cb, nullptr), RILL_EINVAL);
  EXPECT_FAILS_WITH(rill_fd_add_reader(loop, -1, CbRun, cb, nullptr), RILL_EBADF);
  EXPECT_FAILS_WITH(rill_fd_add_writer(loop, 19999, CbRun, cb, nullptr), RILL_EBADF);
  EXPECT_FAILS_WITH(rill_fd_remove_reader(nullptr, p.r), RILL_EINVAL);
  EXPECT_FAILS_WITH(rill_fd_remove_writer(closed, p.r), RILL_ECLOSED);
  EXPECT_FAILS_WITH(rill_fd_remove_reader(loop, -3), RILL_EBADF);
  EXPECT_EQ(rill_fd_remove_reader(loop, p.r), 0);
  EXPECT_NULL_WITH(rill_fd_wait(nullptr, p.r, RILL_READABLE), RILL_EINVAL);
  EXPECT_NULL_WITH(rill_fd_wait(closed, p.r, RILL_READABLE), RILL_ECLOSED);
  EXPECT_NULL_WITH(rill_fd_wait(loop, -1, RILL_READABLE), RILL_EBADF);
  EXPECT_NULL_WITH(rill_fd_wait(loop, 1 << 30, RILL_READABLE), RILL_EBADF);  // past RLIMIT_NOFILE: checked now
  EXPECT_NULL_WITH(rill_fd_wait(loop, p.r, 0), RILL_EINVAL);
  EXPECT_NULL_WITH(rill_fd_wait(loop, p.r, 8), RILL_EINVAL);
}

TEST(IoErrors, NamedCodesWithErrno) {
  EXPECT_STREQ(rill_err_name(RILL_ECONNREFUSED), "RILL_ECONNREFUSED");
  EXPECT_STREQ(rill_err_name(RILL_ENOHOST), "RILL_ENOHOST");
  EXPECT_STREQ(rill_strerror(RILL_EMFILE), "too many open files");
  EXPECT_EQ(RILL_EGROUP, -12);  // 1.0 codes never move
  EXPECT_EQ(rill_code_from_errno(ECONNRESET), RILL_ECONNRESET);
  EXPECT_EQ(rill_code_from_errno(EPIPE), RILL_EPIPE);
  EXPECT_EQ(rill_code_from_errno(EADDRINUSE), RILL_EADDRINUSE);
  EXPECT_EQ(rill_code_from_errno(EADDRNOTAVAIL), RILL_EADDRNOTAVAIL);
  EXPECT_EQ(rill_code_from_errno(EHOSTUNREACH), RILL_EHOSTUNREACH);
  EXPECT_EQ(rill_code_from_errno(ENETUNREACH), RILL_ENETUNREACH);
  EXPECT_EQ(rill_code_from_errno(EMFILE), RILL_EMFILE);
  EXPECT_EQ(rill_code_from_errno(ECONNABORTED), RILL_ECONNABORTED);
  EXPECT_EQ(rill_code_from_errno(ENOTCONN), RILL_ENOTCONN);
  EXPECT_EQ(rill_code_from_errno(EXDEV), RILL_ESYS);
  for (int c = -13; c >= -28; c--)  // -20 is unused (no such host is RILL_ENOHOST, -40)
    if (c != -20) {
      EXPECT_NE(rill_err_name(c), nullptr) << c;
    }
  EXPECT_STREQ(rill_err_name(RILL_ENOHOST), "RILL_ENOHOST");
  EXPECT_EQ(rill_future_error_errno(nullptr), RILL_EINVAL);
}

}  // namespace
