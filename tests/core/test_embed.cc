// A host that puts rill in its own poll set: rill_loop_backend_fd and
// rill_loop_backend_timeout with poll(2), then rill_loop_run_once(loop, 0).
#include <fcntl.h>
#include <poll.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <thread>

#include "rill_test.h"
#include "sys_test.h"

using namespace rilltest;

namespace {
class Embed : public RillTest {
 protected:
  ResourceSnapshot before;
  void TearDown() override {
    RillTest::TearDown();
    before.ExpectSame("after the test");
  }
  // The host's frame loop: poll the backend fd, then one rill iteration.
  int Pump(int fd, const std::function<bool()> &done, double limit = 5.0) {
    int rounds = 0;
    double end = MonoNow() + limit;
    while (!done() && MonoNow() < end) {
      double t = rill_loop_backend_timeout(loop);
      EXPECT_FALSE(std::isnan(t));
      int ms = std::isinf(t) ? 1000 : (int)std::ceil(t * 1000);  // a host frame at least 1/s
      struct pollfd pfd = {fd, POLLIN, 0};
      poll(&pfd, 1, ms);
      EXPECT_GE(rill_loop_run_once(loop, 0), 0);
      rounds++;
    }
    return rounds;
  }
};

void SleepWork(rill_work *w, void *) {
  std::this_thread::sleep_for(std::chrono::milliseconds(60));
  rill_work_set_int(w, 1);
}
}  // namespace

TEST_F(Embed, AHostPollLoopDrivesTimersThreadsPoolAndChildren) {
  int fd = rill_loop_backend_fd(loop);
  ASSERT_GE(fd, 0) << rill_last_error_message();
  EXPECT_EQ(rill_loop_backend_fd(loop), fd) << "the same fd each time";
  double t0 = MonoNow();
  double timer_at = 0;
  Later(0.2, [&] { timer_at = MonoNow(); log.push_back("timer"); });
  std::atomic<double> sent{0};
  double received = 0;
  Cb *from_thread = NewCb([&] { received = MonoNow(); log.push_back("thread"); });
  std::thread th([&] {
    std::this_thread::sleep_for(std::chrono::milliseconds(30));
    sent = MonoNow();
    rill_call_soon_threadsafe(loop, CbRun, from_thread, CbFree);
  });
  rill_future *job = rill_run_in_thread(loop, SleepWork, nullptr, nullptr);
  const char *argv[] = {"sh", "-c", "sleep 0.1", nullptr};
  rill_process *p = rill_process_spawn(loop, argv, nullptr, nullptr, nullptr);
  ASSERT_NE(p, nullptr);
  rill_future *exited = rill_process_wait(p);
  int rounds = Pump(fd, [&] {
    return log.size() == 2 && rill_future_done(job) == 1 && rill_future_done(exited) == 1;
  });
  th.join();
  EXPECT_THAT(log, ::testing::ElementsAre("thread", "timer"));
  EXPECT_GE(timer_at - t0, 0.2) << "never early";
  EXPECT_LT(received - sent.load(), LateSlack() > 1 ? LateSlack() / 3 : 0.05)
      << "a thread-safe call wakes the host's poll";
  EXPECT_EQ(rill_future_state(job), RILL_DONE);
  EXPECT_EQ(rill_future_state(exited), RILL_DONE);
  EXPECT_LT(rounds, 40) << "the host sleeps in poll, it does not spin";
  rill_future_release(job);
  rill_future_release(exited);
  rill_process_release(p);
}

TEST_F(Embed, TheTimeoutSaysHowLongTheHostMayWait) {
  ASSERT_GE(rill_loop_backend_fd(loop), 0);
  EXPECT_TRUE(std::isinf(rill_loop_backend_timeout(loop))) << "nothing to do: only I/O can wake it";
  rill_handle *h = LaterH(1.0, [] {});
  double t = rill_loop_backend_timeout(loop);
  EXPECT_GT(t, 0.9);
  EXPECT_LE(t, 1.0);
  Soon([] {});
  EXPECT_EQ(rill_loop_backend_timeout(loop), 0.0);
  EXPECT_EQ(rill_loop_run_once(loop, 0), 1);
  rill_handle_cancel(h);
  rill_handle_release(h);
  EXPECT_TRUE(std::isinf(rill_loop_backend_timeout(loop)));
}

// When rill_loop_backend_timeout polled and found work (it returns 0, so
// the host does not wait), the iteration that follows runs that work
// without polling again: a second poll would find the fds whose one-shot
// waits just completed still readable (their tasks have not read yet) and
// make libev drop them from the kernel's set, only to add them back when
// the tasks wait again (two epoll_ctl per wait, seen with Ruby's io_wait).
TEST_F(Embed, TheIterationAfterAZeroTimeoutTakesThatPollAsItsOwn) {
  int a[2], b[2];
  ASSERT_EQ(pipe2(a, O_CLOEXEC | O_NONBLOCK), 0);
  ASSERT_EQ(pipe2(b, O_CLOEXEC | O_NONBLOCK), 0);
  ASSERT_GE(rill_loop_backend_fd(loop), 0);
  rill_future *wa = rill_fd_wait(loop, a[0], RILL_READABLE);
  rill_future *wb = rill_fd_wait(loop, b[0], RILL_READABLE);
  ASSERT_NE(wa, nullptr);
  ASSERT_NE(wb, nullptr);
  DoneCb *ran = NewDoneCb([&](rill_future *) { log.push_back("a ready"); });
  ASSERT_EQ(rill_future_on_done(wa, DoneCbRun, ran, DoneCbFree), RILL_OK);
  EXPECT_TRUE(std::isinf(rill_loop_backend_timeout(loop))) << "nothing ready yet";
  ASSERT_EQ(write(a[1], "x", 1), 1);
  EXPECT_EQ(rill_loop_backend_timeout(loop), 0.0) << "its poll found a's wait done";
  EXPECT_EQ(rill_future_done(wa), 1);
  ASSERT_EQ(write(b[1], "y", 1), 1);
  EXPECT_GE(rill_loop_run_once(loop, 0), 1);
  EXPECT_EQ(log, (std::vector<std::string>{"a ready"}));
  EXPECT_EQ(rill_future_done(wb), 0) << "this iteration did not poll again";
  EXPECT_GE(rill_loop_run_once(loop, 0), 0);
  EXPECT_EQ(rill_future_done(wb), 1) << "the next one did";
  // A host that waited (a timeout above 0) gets its events polled.
  rill_future *wa2 = rill_fd_wait(loop, a[0], RILL_READABLE);
  ASSERT_NE(wa2, nullptr);
  char c;
  ASSERT_EQ(read(a[0], &c, 1), 1);
  EXPECT_TRUE(std::isinf(rill_loop_backend_timeout(loop)));
  ASSERT_EQ(write(a[1], "z", 1), 1);
  EXPECT_GE(rill_loop_run_once(loop, 0), 0);
  EXPECT_EQ(rill_future_done(wa2), 1);
  rill_future_release(wa);
  rill_future_release(wb);
  rill_future_release(wa2);
  for (int fd : {a[0], a[1], b[0], b[1]}) close(fd);
}

TEST_F(Embed, AnInterruptMakesTheFdReadable) {
  int fd = rill_loop_backend_fd(loop);
  ASSERT_GE(fd, 0);
  std::thread th([&] {
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
    rill_loop_interrupt(loop);
  });
  struct pollfd pfd = {fd, POLLIN, 0};
  double t0 = MonoNow();
  EXPECT_EQ(poll(&pfd, 1, 5000), 1);
  EXPECT_LT(MonoNow() - t0, 1.0);
  th.join();
  EXPECT_GE(rill_loop_run_once(loop, 0), 0);
  pfd.revents = 0;
  EXPECT_EQ(poll(&pfd, 1, 0), 0) << "taken: the fd is quiet again";
}

TEST_F(Embed, BadInput) {
  rill_loop *closed = ClosedLoopEnvironment::Loop();
  EXPECT_FAILS_WITH(rill_loop_backend_fd(nullptr), RILL_EINVAL);
  EXPECT_FAILS_WITH(rill_loop_backend_fd(closed), RILL_ECLOSED);
  rilltest::PrimeLastError(RILL_EINVAL);
  EXPECT_TRUE(std::isnan(rill_loop_backend_timeout(nullptr)));
  EXPECT_EQ(rill_last_error(), RILL_EINVAL);
  EXPECT_TRUE(std::isnan(rill_loop_backend_timeout(closed)));
  EXPECT_EQ(rill_last_error(), RILL_ECLOSED);
}
