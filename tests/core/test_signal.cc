// Signals: per-loop watchers, SIGINT cancelling the main task (rill_run and
// rill_loop_cancel_on_sigint, the mechanism every binding's run uses), and
// rill_loop_interrupt.
#include <pthread.h>
#include <signal.h>
#include <sys/wait.h>

#include <atomic>
#include <chrono>
#include <thread>

#include "rill_test.h"
#include "sys_test.h"

using namespace rilltest;

namespace {

struct SigCb {
  std::vector<int> got;
  std::vector<pthread_t> threads;
  int frees = 0;
};
void SigCbRun(rill_signal *, int signum, void *arg) {
  auto *c = static_cast<SigCb *>(arg);
  c->got.push_back(signum);
  c->threads.push_back(pthread_self());
}
void SigCbFree(void *arg) { static_cast<SigCb *>(arg)->frees++; }

void (*CurrentHandler(int signum))(int) {
  struct sigaction sa;
  sigaction(signum, nullptr, &sa);
  return sa.sa_handler;
}

void Noop(int) {}

class Signal : public RillTest {
 protected:
  ResourceSnapshot before;
  void TearDown() override {
    RillTest::TearDown();
    before.ExpectSame("after the test");
    EXPECT_EQ(CurrentHandler(SIGUSR1), SIG_DFL) << "SIGUSR1 disposition restored";
    EXPECT_EQ(CurrentHandler(SIGINT), SIG_DFL) << "SIGINT disposition restored";
  }
};
using Sigint = Signal;
using Interrupt = Signal;

}  // namespace

TEST_F(Signal, CallbackRunsOnTheLoopThreadInTheNextIteration) {
  SigCb cb;
  rill_signal *s = rill_signal_start(loop, SIGUSR1, SigCbRun, &cb, SigCbFree);
  ASSERT_NE(s, nullptr) << rill_last_error_message();
  EXPECT_EQ(rill_signal_active(s), 1);
  std::thread th([] { kill(getpid(), SIGUSR1); });
  th.join();
  for (int i = 0; i < 100 && cb.got.empty(); i++) rill_loop_run_once(loop, 0.05);
  ASSERT_EQ(cb.got.size(), 1u);
  EXPECT_EQ(cb.got[0], SIGUSR1);
  EXPECT_TRUE(pthread_equal(cb.threads[0], pthread_self()));
  EXPECT_EQ(rill_signal_stop(s), RILL_OK);
  EXPECT_EQ(rill_signal_active(s), 0);
  EXPECT_EQ(cb.frees, 1);
  EXPECT_EQ(rill_signal_stop(s), RILL_OK) << "stopping twice is a no-op";
  rill_signal_release(s);
}

TEST_F(Signal, DeliveriesBeforeTheCallbackRunsAreCoalesced) {
  SigCb cb;
  rill_signal *s = rill_signal_start(loop, SIGUSR1, SigCbRun, &cb, SigCbFree);
  raise(SIGUSR1);
  raise(SIGUSR1);
  rill_loop_run_once(loop, 0);
  rill_loop_run_once(loop, 0);
  EXPECT_EQ(cb.got.size(), 1u);
  raise(SIGUSR1);
  rill_loop_run_once(loop, 0);
  EXPECT_EQ(cb.got.size(), 2u);
  rill_signal_release(s);  // does not stop it: loop close does
  CloseLoop();
  EXPECT_EQ(cb.frees, 1);
}

TEST_F(Signal, LastStopRestoresThePreviousDisposition) {
  struct sigaction sa, old;
  memset(&sa, 0, sizeof sa);
  sa.sa_handler = Noop;
  sigaction(SIGUSR1, &sa, &old);
  SigCb a, b;
  rill_signal *sa1 = rill_signal_start(loop, SIGUSR1, SigCbRun, &a, SigCbFree);
  rill_signal *sa2 = rill_signal_start(loop, SIGUSR1, SigCbRun, &b, SigCbFree);
  ASSERT_NE(sa2, nullptr) << "several watchers on one loop";
  EXPECT_NE(CurrentHandler(SIGUSR1), Noop);
  raise(SIGUSR1);
  rill_loop_run_once(loop, 0);
  EXPECT_EQ(a.got.size(), 1u);
  EXPECT_EQ(b.got.size(), 1u);
  rill_signal_stop(sa1);
  EXPECT_NE(CurrentHandler(SIGUSR1), Noop);
  rill_signal_stop(sa2);
  EXPECT_EQ(CurrentHandler(SIGUSR1), Noop);
  sigaction(SIGUSR1, &old, nullptr);
  rill_signal_release(sa1);
  rill_signal_release(sa2);
}

TEST_F(Signal, OneLoopPerSignal) {
  SigCb a, b;
  rill_signal *s = rill_signal_start(loop, SIGUSR1, SigCbRun, &a, SigCbFree);
  rill_loop *other = rill_loop_new();
  EXPECT_NULL_WITH(rill_signal_start(other, SIGUSR1, SigCbRun, &b, SigCbFree), RILL_ESIGBUSY);
  EXPECT_EQ(b.frees, 0);
  rill_signal_stop(s);
  rill_signal *t = rill_signal_start(other, SIGUSR1, SigCbRun, &b, SigCbFree);
  EXPECT_NE(t, nullptr) << "free again once the first loop stopped";
  rill_signal_release(t);
  rill_loop_free(other);
  EXPECT_EQ(b.frees, 1) << "closing the other loop stopped its watcher";
  rill_signal_release(s);
}

TEST_F(Signal, AWatcherDoesNotKeepRunGoing) {
  SigCb cb;
  rill_signal *s = rill_signal_start(loop, SIGUSR1, SigCbRun, &cb, SigCbFree);
  double t0 = MonoNow();
  EXPECT_EQ(rill_loop_run(loop), RILL_OK);
  EXPECT_LT(MonoNow() - t0, 0.5);
  rill_signal_release(s);
}

TEST_F(Signal, BadInput) {
  rill_loop *closed = ClosedLoopEnvironment::Loop();
  SigCb cb;
  EXPECT_NULL_WITH(rill_signal_start(nullptr, SIGUSR1, SigCbRun, &cb, SigCbFree), RILL_EINVAL);
  EXPECT_NULL_WITH(rill_signal_start(closed, SIGUSR1, SigCbRun, &cb, SigCbFree), RILL_ECLOSED);
  EXPECT_NULL_WITH(rill_signal_start(loop, SIGUSR1, nullptr, &cb, SigCbFree), RILL_EINVAL);
  EXPECT_NULL_WITH(rill_signal_start(loop, 0, SigCbRun, &cb, SigCbFree), RILL_EINVAL);
  EXPECT_NULL_WITH(rill_signal_start(loop, 65, SigCbRun, &cb, SigCbFree), RILL_EINVAL);
  EXPECT_NULL_WITH(rill_signal_start(loop, SIGKILL, SigCbRun, &cb, SigCbFree), RILL_EINVAL);
  EXPECT_NULL_WITH(rill_signal_start(loop, SIGSTOP, SigCbRun, &cb, SigCbFree), RILL_EINVAL);
  EXPECT_EQ(cb.frees, 0);
  EXPECT_FAILS_WITH(rill_signal_stop(nullptr), RILL_EINVAL);
  EXPECT_FAILS_WITH(rill_signal_active(nullptr), RILL_EINVAL);
  rill_signal_release(nullptr);
  rill_loop_interrupt(nullptr);
  rill_task *t = NewTask([](rill_task *t) { rill_future_set_none(rill_task_future(t)); });
  EXPECT_FAILS_WITH(rill_loop_cancel_on_sigint(nullptr, t), RILL_EINVAL);
  EXPECT_FAILS_WITH(rill_loop_cancel_on_sigint(closed, t), RILL_ECLOSED);
  rill_loop *other = rill_loop_new();
  EXPECT_FAILS_WITH(rill_loop_cancel_on_sigint(other, t), RILL_EINVAL);
  EXPECT_EQ(rill_loop_cancel_on_sigint(loop, nullptr), 0) << "disarming unarmed: nothing came";
  ASSERT_EQ(rill_loop_cancel_on_sigint(loop, t), RILL_OK);
  rill_task *u = rill_task_new(other, [](rill_task *t, void *) { rill_future_set_none(rill_task_future(t)); },
                               nullptr, nullptr);
  EXPECT_FAILS_WITH(rill_loop_cancel_on_sigint(other, u), RILL_ESIGBUSY);
  EXPECT_EQ(rill_loop_cancel_on_sigint(loop, nullptr), 0);
  Run();
  EXPECT_EQ(rill_loop_run(other), RILL_OK);
  rill_task_release(u);
  rill_loop_free(other);
  rill_task_release(t);
}

// ---- SIGINT ----

namespace {
std::atomic<int> g_awaiting{0};
std::atomic<double> g_sent{0}, g_seen{0};
std::atomic<int> g_await_rc{0};

void SendSigintOnceAwaiting(double delay) {
  while (!g_awaiting.load()) std::this_thread::sleep_for(std::chrono::milliseconds(1));
  std::this_thread::sleep_for(std::chrono::duration<double>(delay));
  g_sent = MonoNow();
  kill(getpid(), SIGINT);
}

int MainSleepsLong(void *) {
  g_awaiting = 1;
  int rc = rill_sleep(10);
  g_seen = MonoNow();
  g_await_rc = rc;
  return rc;
}

int MainSpins(void *) {
  g_awaiting = 1;
  int rc;
  while ((rc = rill_yield()) == RILL_OK) {
  }
  g_seen = MonoNow();
  return rc;
}

int MainCatches(void *) {
  g_awaiting = 1;
  int rc = rill_sleep(10);
  g_seen = MonoNow();
  return rc == RILL_ECANCELLED ? RILL_OK : -1001;
}
}  // namespace

TEST_F(Sigint, RillRunCancelsAWaitingMainWithin50ms) {
  g_awaiting = 0;
  std::thread th(SendSigintOnceAwaiting, 0.02);
  g_await_rc = 0;
  int rc = rill_run(MainSleepsLong, nullptr);
  th.join();
  EXPECT_EQ(g_await_rc.load(), RILL_ECANCELLED) << "main saw the cancel at its await point";
  EXPECT_EQ(rc, RILL_EINTR) << rill_err_name(rc);
  EXPECT_LT(g_seen.load() - g_sent.load(), LateSlack() > 1 ? LateSlack() / 3 : 0.05) << "main saw RILL_ECANCELLED at its await point";
  EXPECT_GE(g_seen.load(), g_sent.load());
  EXPECT_EQ(CurrentHandler(SIGINT), SIG_DFL) << "restored after run";
}

// The form: the SIGINT comes from another process (a forked child
// that only calls async-signal-safe functions), as a terminal's Ctrl+C or
// a supervisor's kill would; the child reports when it sent it.
static int g_go_fd = -1;
static int MainWakesTheChildThenSleeps(void *) {
  if (write(g_go_fd, "g", 1) != 1) return RILL_EBADF;
  return MainSleepsLong(nullptr);
}

TEST_F(Sigint, ASigintFromAChildProcessReachesAWaitingRunWithin50ms) {
  int go[2], sent[2];
  ASSERT_EQ(pipe(go), 0);
  ASSERT_EQ(pipe(sent), 0);
  pid_t pid = fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    close(go[1]);
    close(sent[0]);
    char c;
    if (read(go[0], &c, 1) != 1) _exit(2);
    struct timespec d = {0, 20 * 1000 * 1000};
    nanosleep(&d, nullptr);
    double t = MonoNow();
    kill(getppid(), SIGINT);
    _exit(write(sent[1], &t, sizeof t) == sizeof t ? 0 : 3);
  }
  close(go[0]);
  close(sent[1]);
  g_go_fd = go[1];
  g_await_rc = 0;
  int rc = rill_run(MainWakesTheChildThenSleeps, nullptr);
  double t_sent = 0;
  EXPECT_EQ(read(sent[0], &t_sent, sizeof t_sent), (ssize_t)sizeof t_sent);
  close(sent[0]);
  close(go[1]);
  int status = 0;
  ASSERT_EQ(waitpid(pid, &status, 0), pid);
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << "child status " << status;
  EXPECT_EQ(rc, RILL_EINTR) << rill_err_name(rc);
  EXPECT_EQ(g_await_rc.load(), RILL_ECANCELLED);
  EXPECT_GE(g_seen.load(), t_sent);
  EXPECT_LT(g_seen.load() - t_sent, LateSlack() > 1 ? LateSlack() / 3 : 0.05);
}

TEST_F(Sigint, RillRunCancelsABusyMainWithin50ms) {
  g_awaiting = 0;
  std::thread th(SendSigintOnceAwaiting, 0.02);
  int rc = rill_run(MainSpins, nullptr);
  th.join();
  EXPECT_EQ(rc, RILL_EINTR);
  EXPECT_LT(g_seen.load() - g_sent.load(), LateSlack() > 1 ? LateSlack() / 3 : 0.05);
}

TEST_F(Sigint, AMainThatCatchesTheCancelEndsWithItsOwnCode) {
  g_awaiting = 0;
  std::thread th(SendSigintOnceAwaiting, 0.02);
  int rc = rill_run(MainCatches, nullptr);
  th.join();
  EXPECT_EQ(rc, RILL_OK);
}

TEST_F(Sigint, RillRunLeavesAnInstalledHandlerAlone) {
  struct sigaction sa, old;
  memset(&sa, 0, sizeof sa);
  sa.sa_handler = Noop;
  sigaction(SIGINT, &sa, &old);
  EXPECT_EQ(rill_run([](void *) { return rill_sleep(0.01); }, nullptr), RILL_OK);
  EXPECT_EQ(CurrentHandler(SIGINT), Noop);
  sigaction(SIGINT, &old, nullptr);
}

TEST_F(Sigint, ASecondSigintEndsTheProgramAtOnce) {
  int fds[2];
  ASSERT_EQ(pipe(fds), 0);
  pid_t pid = fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    close(fds[0]);
    static int ready_fd;
    ready_fd = fds[1];
    // main ignores cancels for up to 5 s
    rill_run(
        [](void *) -> int {
          if (write(ready_fd, "r", 1) != 1) _exit(4);
          double end = MonoNow() + 5;
          while (MonoNow() < end) rill_sleep(0.01);
          return RILL_OK;
        },
        nullptr);
    _exit(3);
  }
  close(fds[1]);
  char c;
  ASSERT_EQ(read(fds[0], &c, 1), 1);
  close(fds[0]);
  kill(pid, SIGINT);
  std::this_thread::sleep_for(std::chrono::milliseconds(100));
  double t0 = MonoNow();
  kill(pid, SIGINT);
  int status = 0;
  ASSERT_EQ(waitpid(pid, &status, 0), pid);
  EXPECT_LT(MonoNow() - t0, 1.0);
  EXPECT_TRUE(WIFSIGNALED(status) && WTERMSIG(status) == SIGINT) << "status " << status;
}

TEST_F(Sigint, ArmedOnAnyLoopForBindings) {
  // What a binding's run does: arm, run until main is done, disarm.
  int steps = 0;
  rill_task *t = NewTask([&](rill_task *t) {
    if (++steps == 1) {
      raise(SIGINT);  // handled synchronously: the cancel comes next iteration
      rill_task_sleep(t, 10);
      return;
    }
    log.push_back(rill_task_cancel_requested(t) ? "cancel seen" : "no cancel");
    rill_future_fail(rill_task_future(t), RILL_ECANCELLED, nullptr, nullptr, nullptr, nullptr);
  });
  ASSERT_EQ(rill_loop_cancel_on_sigint(loop, t), RILL_OK);
  EXPECT_NE(CurrentHandler(SIGINT), SIG_DFL);
  double t0 = MonoNow();
  EXPECT_EQ(rill_loop_run_until(loop, rill_task_future(t)), RILL_ECANCELLED);
  EXPECT_LT(MonoNow() - t0, 1.0);
  EXPECT_EQ(rill_loop_cancel_on_sigint(loop, nullptr), 1) << "one SIGINT came";
  EXPECT_EQ(CurrentHandler(SIGINT), SIG_DFL);
  EXPECT_EQ(rill_task_cancel_message(t), std::string("interrupted by SIGINT"));
  EXPECT_THAT(log, ::testing::ElementsAre("cancel seen"));
  rill_task_release(t);
}

// ---- rill_loop_interrupt ----

TEST_F(Interrupt, WakesALoopWaitingInRunOnceFromAnotherThread) {
  std::thread th([this] {
    std::this_thread::sleep_for(std::chrono::milliseconds(30));
    rill_loop_interrupt(loop);
  });
  double t0 = MonoNow();
  EXPECT_GE(rill_loop_run_once(loop, 5.0), 0);
  double dt = MonoNow() - t0;
  th.join();
  EXPECT_LT(dt, 1.0);
  EXPECT_GE(dt, 0.02);
}

namespace {
rill_loop *g_interrupt_loop;
void InterruptFromHandler(int) { rill_loop_interrupt(g_interrupt_loop); }
}  // namespace

TEST_F(Interrupt, IsAsyncSignalSafeFromAHandler) {
  g_interrupt_loop = loop;
  struct sigaction sa, old;
  memset(&sa, 0, sizeof sa);
  sa.sa_handler = InterruptFromHandler;
  sigaction(SIGUSR2, &sa, &old);
  std::thread th([] {
    std::this_thread::sleep_for(std::chrono::milliseconds(30));
    kill(getpid(), SIGUSR2);
  });
  double t0 = MonoNow();
  EXPECT_GE(rill_loop_run_once(loop, 5.0), 0);
  double dt = MonoNow() - t0;
  th.join();
  sigaction(SIGUSR2, &old, nullptr);
  EXPECT_LT(dt, 1.0);
}
