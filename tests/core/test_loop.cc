// The loop: call_soon order and batches, timers, handles, run/run_once/stop,
// time, the exception handler, debug mode, task dumps. (asyncio group B)
#include <sys/wait.h>
#include <unistd.h>

#include <cstring>

#include "rill_test.h"

using namespace rilltest;
using ::testing::ElementsAre;
using ::testing::HasSubstr;

using Loop = RillTest;

TEST_F(Loop, RunWithNoWorkReturnsAtOnce) {
  double t0 = MonoNow();
  EXPECT_EQ(rill_loop_run(loop), RILL_OK);
  EXPECT_LT(MonoNow() - t0, 0.1);
}

// Not in rill_tsan_tests: a fork under ThreadSanitizer is its own problem.
TEST_F(Loop, AForkedChildHasNoRunningLoopAndRunsItsOwn) {
  int status = -1;
  Soon([&] {
    ASSERT_EQ(rill_loop_current(), loop);
    pid_t pid = fork();
    if (pid == 0) {
      // The child: no loop runs here; a new one can.
      int code = rill_loop_current() == nullptr ? 0 : 1;
      rill_loop *child = rill_loop_new();
      int ran = 0;
      if (!child) _exit(2);
      rill_handle *h = rill_call_soon(child, [](void *a) { *static_cast<int *>(a) = 1; }, &ran, nullptr);
      rill_handle_release(h);
      if (rill_loop_run(child) != RILL_OK || !ran) code = 3;
      _exit(code);
    }
    ASSERT_GT(pid, 0);
    ASSERT_EQ(waitpid(pid, &status, 0), pid);
  });
  Run();
  ASSERT_TRUE(WIFEXITED(status));
  EXPECT_EQ(WEXITSTATUS(status), 0);
  EXPECT_EQ(rill_loop_current(), nullptr);
}

TEST_F(Loop, CallSoonRunsFifo) {
  for (int i = 0; i < 10; i++) Soon([this, i] { log.push_back(std::to_string(i)); });
  Run();
  EXPECT_EQ(log, (std::vector<std::string>{"0", "1", "2", "3", "4", "5", "6", "7", "8", "9"}));
}

TEST_F(Loop, WorkScheduledDuringAnIterationRunsInTheNext) {
  Soon([this] {
    log.push_back("A");
    Soon([this] { log.push_back("C (scheduled by A)"); });
  });
  Soon([this] { log.push_back("B"); });
  EXPECT_EQ(rill_loop_run_once(loop, 0), 2);
  EXPECT_EQ(log, (std::vector<std::string>{"A", "B"}));
  EXPECT_EQ(rill_loop_run_once(loop, 0), 1);
  EXPECT_EQ(log, (std::vector<std::string>{"A", "B", "C (scheduled by A)"}));
  EXPECT_EQ(rill_loop_run_once(loop, 0), 0);
}

TEST_F(Loop, CallbackRescheduledForeverRunsOncePerIteration) {
  int n = 0;
  std::function<void()> again = [&] {
    n++;
    Soon(again);
  };
  Soon(again);
  for (int i = 1; i <= 5; i++) {
    EXPECT_EQ(rill_loop_run_once(loop, 0), 1);
    EXPECT_EQ(n, i);
  }
  CloseLoop();  // drops the one still scheduled; its free_arg runs
}

TEST_F(Loop, RunOnceReturnsTheNumberOfCallbacksRun) {
  for (int i = 0; i < 3; i++) Soon([] {});
  EXPECT_EQ(rill_loop_run_once(loop, 0), 3);
  EXPECT_EQ(rill_loop_run_once(loop, 0), 0);
}

TEST_F(Loop, RunOnceWithZeroMaxWaitNeverBlocks) {
  Later(0.5, [this] { log.push_back("timer"); });
  double t0 = MonoNow();
  EXPECT_EQ(rill_loop_run_once(loop, 0), 0);
  EXPECT_LT(MonoNow() - t0, 0.1);
  EXPECT_TRUE(log.empty());
  CloseLoop();
}

TEST_F(Loop, RunOnceRunsATimerThatFallsDueWithinMaxWait) {
  double t0 = MonoNow();
  Later(0.05, [this] { log.push_back("timer"); });
  EXPECT_EQ(rill_loop_run_once(loop, 2.0), 1);
  double dt = MonoNow() - t0;
  EXPECT_EQ(log, (std::vector<std::string>{"timer"}));
  EXPECT_GE(dt, 0.05);
  EXPECT_LT(dt, 0.05 + LateSlack());
}

TEST_F(Loop, RunOnceWaitsAtMostMaxWaitWhenNothingIsDue) {
  Later(5.0, [this] { log.push_back("timer"); });
  double t0 = MonoNow();
  EXPECT_EQ(rill_loop_run_once(loop, 0.05), 0);
  double dt = MonoNow() - t0;
  EXPECT_LT(dt, 0.05 + LateSlack());
  EXPECT_TRUE(log.empty());
  CloseLoop();
}

TEST_F(Loop, CallLaterNeverFiresEarly) {
  const double delays[] = {0.0, 0.001, 0.002, 0.005, 0.01, 0.02, 0.03, 0.05, 0.08, 0.1};
  struct Shot {
    double scheduled_mono, when, fired_mono, fired_loop;
  };
  std::vector<Shot> shots(sizeof delays / sizeof delays[0]);
  Soon([&] {
    for (size_t i = 0; i < shots.size(); i++) {
      shots[i].scheduled_mono = MonoNow();
      rill_handle *h = LaterH(delays[i], [&, i] {
        shots[i].fired_mono = MonoNow();
        shots[i].fired_loop = rill_loop_time(loop);
      });
      double after = MonoNow();
      shots[i].when = rill_handle_when(h);
      // The deadline is the monotonic clock at the call plus the delay.
      EXPECT_GE(shots[i].when, shots[i].scheduled_mono + delays[i]);
      EXPECT_LE(shots[i].when, after + delays[i]);
      rill_handle_release(h);
    }
  });
  Run();
  for (size_t i = 0; i < shots.size(); i++) {
    SCOPED_TRACE("delay " + std::to_string(delays[i]));
    EXPECT_GE(shots[i].fired_loop, shots[i].when) << "loop time at firing";
    EXPECT_GE(shots[i].fired_mono, shots[i].when) << "CLOCK_MONOTONIC at firing";
    EXPECT_LT(shots[i].fired_mono - shots[i].scheduled_mono, delays[i] + LateSlack());
  }
}

TEST_F(Loop, CallLaterFromOutsideTheLoopNeverFiresEarly) {
  double t0 = MonoNow();
  double fired = 0;
  Later(0.1, [&] { fired = MonoNow(); });
  Run();
  // Measured from before the call: even a stale cached loop time may not
  // make the timer early by more than the time the loop was idle.
  EXPECT_GE(fired - t0, 0.1 - 1e-3);
  EXPECT_LT(fired - t0, 0.1 + LateSlack());
}

TEST_F(Loop, TimersRunInDeadlineOrder) {
  const double delays[] = {0.05, 0.01, 0.04, 0.02, 0.03};
  /* One base: call_later reads the clock at each call, so on a loaded
   * machine a 40 ms pause between two calls would reorder them rightly. */
  double base = rill_loop_time(loop);
  for (double d : delays) {
    Cb *c = NewCb([this, d] { log.push_back(std::to_string((int)(d * 100))); });
    rill_handle *h = rill_call_at(loop, base + d, CbRun, c, CbFree);
    ASSERT_NE(h, nullptr);
    rill_handle_release(h);
  }
  Run();
  EXPECT_EQ(log, (std::vector<std::string>{"1", "2", "3", "4", "5"}));
}

TEST_F(Loop, EqualDeadlinesCallAtRunFifo) {
  std::vector<std::string> expected;
  double when = rill_loop_time(loop) + 0.02;
  for (int i = 0; i < 20; i++) {
    Cb *c = NewCb([this, i] { log.push_back(std::to_string(i)); });
    rill_handle *h = rill_call_at(loop, when, CbRun, c, CbFree);
    ASSERT_NE(h, nullptr);
    EXPECT_EQ(rill_handle_when(h), when);
    rill_handle_release(h);
    expected.push_back(std::to_string(i));
  }
  Run();
  EXPECT_EQ(log, expected);
}

TEST_F(Loop, CallLaterWithTheSameDelayRunInTheOrderSet) {
  std::vector<std::string> expected;
  Soon([&] {
    for (int i = 0; i < 20; i++) {
      Later(0.02, [this, i] { log.push_back(std::to_string(i)); });
      expected.push_back(std::to_string(i));
    }
  });
  Run();
  EXPECT_EQ(log, expected);
}

TEST_F(Loop, CancelledHandleDoesNotRunAndItsArgIsFreedAtOnce) {
  Cb *b = nullptr;
  Soon([this] { log.push_back("A"); });
  rill_handle *hb = SoonH([this] { log.push_back("B"); }, &b);
  Soon([this] { log.push_back("C"); });
  EXPECT_EQ(rill_handle_cancelled(hb), 0);
  rill_handle_cancel(hb);
  EXPECT_EQ(b->frees, 1) << "free_arg runs at cancel";
  EXPECT_EQ(rill_handle_cancelled(hb), 1);
  rill_handle_cancel(hb);  // no-op
  EXPECT_EQ(b->frees, 1);
  Run();
  EXPECT_EQ(log, (std::vector<std::string>{"A", "C"}));
  EXPECT_EQ(b->runs, 0);
  rill_handle_release(hb);
}

TEST_F(Loop, CancelledTimerDoesNotRunNorKeepTheLoopAlive) {
  Cb *c = nullptr;
  rill_handle *h = LaterH(2.0, [this] { log.push_back("timer"); }, &c);
  rill_handle_cancel(h);
  EXPECT_EQ(c->frees, 1);
  double t0 = MonoNow();
  Run();
  EXPECT_LT(MonoNow() - t0, 1.0);
  EXPECT_TRUE(log.empty());
  rill_handle_release(h);
}

TEST_F(Loop, CancelAfterTheCallbackRanIsANoOp) {
  Cb *c = nullptr;
  rill_handle *h = SoonH([this] { log.push_back("ran"); }, &c);
  Run();
  rill_handle_cancel(h);
  EXPECT_EQ(rill_handle_cancelled(h), 0);
  EXPECT_EQ(c->runs, 1);
  EXPECT_EQ(c->frees, 1);
  rill_handle_release(h);
}

TEST_F(Loop, ReleasingAHandleDoesNotCancelIt) {
  Soon([this] { log.push_back("soon"); });
  Later(0.01, [this] { log.push_back("later"); });
  Run();
  EXPECT_EQ(log, (std::vector<std::string>{"soon", "later"}));
}

TEST_F(Loop, HandleWhenIsNanForCallSoon) {
  rill_handle *h = SoonH([] {});
  EXPECT_TRUE(std::isnan(rill_handle_when(h)));
  rill_handle_release(h);
  Run();
}

TEST_F(Loop, NegativeDelayIsClampedToNow) {
  Later(-5.0, [this] { log.push_back("late"); });
  Soon([this] { log.push_back("soon"); });
  Run();
  EXPECT_EQ(log.size(), 2u);
}

TEST_F(Loop, StopReturnsAfterTheCurrentIteration) {
  Soon([this] {
    log.push_back("A stops");
    rill_loop_stop(loop);
    Soon([this] { log.push_back("B (next iteration)"); });
  });
  Soon([this] { log.push_back("C (same iteration)"); });
  EXPECT_EQ(rill_loop_run(loop), RILL_OK);
  EXPECT_EQ(log, (std::vector<std::string>{"A stops", "C (same iteration)"}));
  EXPECT_EQ(rill_loop_run(loop), RILL_OK);
  EXPECT_EQ(log, (std::vector<std::string>{"A stops", "C (same iteration)", "B (next iteration)"}));
}

TEST_F(Loop, StopOnAnIdleLoopIsANoOp) {
  rill_loop_stop(loop);
  rill_loop_stop(nullptr);
  Soon([this] {
    log.push_back("1");
    Soon([this] { log.push_back("2"); });
  });
  Run();
  EXPECT_EQ(log, (std::vector<std::string>{"1", "2"}));
}

TEST_F(Loop, RunUntilReturnsTheFutureOutcome) {
  rill_future *ok = NewFuture();
  Later(0.01, [ok] { rill_future_set_int(ok, 3); });
  EXPECT_EQ(rill_loop_run_until(loop, ok), RILL_OK);
  int64_t v = 0;
  EXPECT_EQ(rill_future_int(ok, &v), RILL_OK);
  EXPECT_EQ(v, 3);

  rill_future *bad = NewFuture();
  Later(0.01, [bad] { rill_future_fail(bad, -1000, "bad", nullptr, nullptr, nullptr); });
  EXPECT_EQ(rill_loop_run_until(loop, bad), -1000);

  rill_future *cancelled = NewFuture();
  Soon([cancelled] { rill_future_cancel(cancelled); });
  EXPECT_EQ(rill_loop_run_until(loop, cancelled), RILL_ECANCELLED);

  rill_future *done = NewFuture();
  rill_future_set_none(done);
  EXPECT_EQ(rill_loop_run_until(loop, done), RILL_OK);
  for (rill_future *f : {ok, bad, cancelled, done}) rill_future_release(f);
}

TEST_F(Loop, RunUntilGivesEStateIfTheLoopStoppedFirst) {
  rill_future *f = NewFuture();
  Soon([this] { rill_loop_stop(loop); });
  EXPECT_EQ(rill_loop_run_until(loop, f), RILL_ESTATE);
  EXPECT_EQ(rill_future_state(f), RILL_PENDING);
  rill_future_release(f);
}

TEST_F(Loop, RunIsNotReentrant) {
  rill_loop *other = rill_loop_new();
  ASSERT_NE(other, nullptr);
  rill_future *f = NewFuture();
  Soon([&] {
    EXPECT_EQ(rill_loop_run(loop), RILL_EBUSY);
    EXPECT_EQ(rill_last_error(), RILL_EBUSY);
    EXPECT_EQ(rill_loop_run_until(loop, f), RILL_EBUSY);
    EXPECT_EQ(rill_loop_run_once(loop, 0), RILL_EBUSY);
    EXPECT_EQ(rill_loop_run(other), RILL_EBUSY) << "another loop on the same thread";
    EXPECT_EQ(rill_loop_close(loop), RILL_EBUSY);
    EXPECT_EQ(rill_loop_is_closed(loop), 0);
    EXPECT_EQ(rill_run([](void *) { return 0; }, nullptr), RILL_EBUSY);
    log.push_back("checked");
  });
  Run();
  EXPECT_EQ(log, (std::vector<std::string>{"checked"}));
  rill_future_release(f);
  rill_loop_free(other);
}

TEST_F(Loop, TimeIsTheMonotonicClock) {
  double before = MonoNow();
  double inside = 0, after_cb = 0;
  Soon([&] {
    inside = rill_loop_time(loop);
    after_cb = MonoNow();
  });
  Run();
  EXPECT_GE(inside, before - 1e-6);
  EXPECT_LE(inside, after_cb + 1e-6);
}

TEST_F(Loop, TimeIsCachedForTheIterationAndNeverGoesBack) {
  double t1 = 0, t2 = 0, t3 = 0;
  Soon([&] {
    t1 = rill_loop_time(loop);
    BusyWait(0.02);
    t2 = rill_loop_time(loop);
    Soon([&] { t3 = rill_loop_time(loop); });
  });
  Run();
  EXPECT_EQ(t1, t2) << "cached within one iteration";
  EXPECT_GE(t3, t1 + 0.02) << "refreshed in the next iteration";
  double prev = rill_loop_time(loop);
  for (int i = 0; i < 100; i++) {
    Soon([] {});
    rill_loop_run_once(loop, 0);
    double now = rill_loop_time(loop);
    EXPECT_GE(now, prev);
    prev = now;
  }
}

TEST_F(Loop, CurrentIsTheRunningLoopInsideAndNullOutside) {
  EXPECT_EQ(rill_loop_current(), nullptr);
  rill_loop *seen = nullptr;
  Soon([&] { seen = rill_loop_current(); });
  Run();
  EXPECT_EQ(seen, loop);
  EXPECT_EQ(rill_loop_current(), nullptr);
  seen = nullptr;
  Soon([&] { seen = rill_loop_current(); });
  EXPECT_EQ(rill_loop_run_once(loop, 0), 1);
  EXPECT_EQ(seen, loop);
  EXPECT_EQ(rill_loop_current(), nullptr);
}

TEST_F(Loop, ReportReachesTheExceptionHandlerAndTheLoopKeepsRunning) {
  rill_future *f = NewFuture();
  Soon([&] {
    EXPECT_EQ(rill_loop_report(loop, "callback raised ValueError", f), RILL_OK);
    log.push_back("reported");
  });
  Soon([this] { log.push_back("next callback"); });
  Run();
  EXPECT_EQ(log, (std::vector<std::string>{"reported", "next callback"}));
  auto r = TakeReports();
  ASSERT_EQ(r.size(), 1u);
  EXPECT_THAT(r[0].message, HasSubstr("callback raised ValueError"));
  EXPECT_TRUE(r[0].has_future);
  EXPECT_EQ(rill_loop_report(loop, "no future", nullptr), RILL_OK);
  r = TakeReports();
  ASSERT_EQ(r.size(), 1u);
  EXPECT_FALSE(r[0].has_future);
  rill_future_release(f);
}

struct HandlerProbe {
  std::vector<std::string> messages;
  int frees = 0;
};
static void ProbeHandler(rill_loop *, const char *message, rill_future *, void *arg) {
  static_cast<HandlerProbe *>(arg)->messages.push_back(message);
}
static void ProbeFree(void *arg) { static_cast<HandlerProbe *>(arg)->frees++; }

TEST_F(Loop, ReplacingTheExceptionHandlerFreesThePreviousArg) {
  HandlerProbe a, b;
  rill_loop *l = rill_loop_new();
  ASSERT_NE(l, nullptr);
  ASSERT_EQ(rill_loop_set_exception_handler(l, ProbeHandler, &a, ProbeFree), RILL_OK);
  rill_loop_report(l, "to a", nullptr);
  ASSERT_EQ(rill_loop_set_exception_handler(l, ProbeHandler, &b, ProbeFree), RILL_OK);
  EXPECT_EQ(a.frees, 1);
  rill_loop_report(l, "to b", nullptr);
  ASSERT_EQ(rill_loop_set_exception_handler(l, nullptr, nullptr, nullptr), RILL_OK);
  EXPECT_EQ(b.frees, 1);
  EXPECT_EQ(a.messages, (std::vector<std::string>{"to a"}));
  EXPECT_EQ(b.messages, (std::vector<std::string>{"to b"}));
  ASSERT_EQ(rill_loop_set_exception_handler(l, ProbeHandler, &a, ProbeFree), RILL_OK);
  rill_loop_free(l);
  EXPECT_EQ(a.frees, 2) << "the handler's free_arg runs when the loop goes";
}

TEST_F(Loop, DebugModeIsOffByDefaultAndSwitchable) {
  unsetenv("RILL_DEBUG");
  rill_loop *l = rill_loop_new();
  EXPECT_EQ(rill_loop_get_debug(l), 0);
  EXPECT_EQ(rill_loop_set_debug(l, 1), RILL_OK);
  EXPECT_EQ(rill_loop_get_debug(l), 1);
  EXPECT_EQ(rill_loop_set_debug(l, 0), RILL_OK);
  EXPECT_EQ(rill_loop_get_debug(l), 0);
  rill_loop_free(l);
}

TEST_F(Loop, DebugModeIsOnWhenTheEnvironmentSaysRillDebug1) {
  setenv("RILL_DEBUG", "1", 1);
  rill_loop *l = rill_loop_new();
  unsetenv("RILL_DEBUG");
  ASSERT_NE(l, nullptr);
  EXPECT_EQ(rill_loop_get_debug(l), 1);
  rill_loop_free(l);
}

TEST_F(Loop, DebugModeReportsBlockingTaskStepWithItsName) {
  ASSERT_EQ(rill_loop_set_debug(loop, 1), RILL_OK);
  rill_task *slow = NewTask([](rill_task *t) {
    BusyWait(0.15);
    rill_future_set_none(rill_task_future(t));
  });
  ASSERT_EQ(rill_task_set_name(slow, "blocking-worker"), RILL_OK);
  rill_task *fast = NewTask([](rill_task *t) { rill_future_set_none(rill_task_future(t)); });
  ASSERT_EQ(rill_task_set_name(fast, "quick-worker"), RILL_OK);
  Run();
  auto r = TakeReportMessages();
  ASSERT_EQ(r.size(), 1u) << ::testing::PrintToString(r);
  EXPECT_THAT(r[0], HasSubstr("blocking-worker"));
  EXPECT_THAT(r[0], ::testing::Not(HasSubstr("quick-worker")));
  rill_task_release(slow);
  rill_task_release(fast);
}

// A binding's describer (rill_step_set_describer) names what a task of its
// step function runs and where; the report carries it as the entry part.
static void DescribedStep(rill_task *t, void *arg) {
  if (*static_cast<int *>(arg) == 1) BusyWait(0.15);
  rill_future_set_none(rill_task_future(t));
}
static int DescribeStep(rill_task *, void *arg, char *buf, size_t cap) {
  if (*static_cast<int *>(arg) != 1) return 0;
  snprintf(buf, cap, "worker() running at app.py:%d", 12);
  return 1;
}

TEST_F(Loop, DebugModeReportAsksTheBindingsDescriberForTheEntry) {
  ASSERT_EQ(rill_step_set_describer(DescribedStep, DescribeStep), RILL_OK);
  ASSERT_EQ(rill_loop_set_debug(loop, 1), RILL_OK);
  int slow_arg = 1, quiet_arg = 2;
  rill_task *slow = rill_task_new(loop, DescribedStep, &slow_arg, nullptr);
  ASSERT_NE(slow, nullptr);
  ASSERT_EQ(rill_task_set_name(slow, "A"), RILL_OK);
  Run();
  auto r = TakeReportMessages();
  ASSERT_EQ(r.size(), 1u) << ::testing::PrintToString(r);
  EXPECT_THAT(r[0], HasSubstr("Executing <Task A (entry: worker() running at app.py:12)> took "));
  // A describer that has no text (returns 0): no entry part.
  quiet_arg = 1; // slow this time; the describer below declines
  rill_task *other = rill_task_new(loop, DescribedStep, &quiet_arg, nullptr);
  ASSERT_NE(other, nullptr);
  ASSERT_EQ(rill_step_set_describer(DescribedStep, [](rill_task *, void *, char *, size_t) { return 0; }),
            RILL_OK);
  ASSERT_EQ(rill_task_set_name(other, "B"), RILL_OK);
  Run();
  r = TakeReportMessages();
  ASSERT_EQ(r.size(), 1u) << ::testing::PrintToString(r);
  EXPECT_THAT(r[0], HasSubstr("Executing <Task B> took "));
  // Removed: no entry part, and removing twice is fine.
  EXPECT_EQ(rill_step_set_describer(DescribedStep, nullptr), RILL_OK);
  EXPECT_EQ(rill_step_set_describer(DescribedStep, nullptr), RILL_OK);
  EXPECT_FAILS_WITH(rill_step_set_describer(nullptr, DescribeStep), RILL_EINVAL);
  rill_task_release(slow);
  rill_task_release(other);
}

TEST_F(Loop, StepDescriberTableHoldsThirtyTwoStepFunctions) {
  // Distinct step functions: lambdas converted to pointers, one per index.
  static const rill_step_fn steps[33] = {
#define S(i) [](rill_task *, void *a) { *static_cast<volatile int *>(a) = i; }
      S(0),  S(1),  S(2),  S(3),  S(4),  S(5),  S(6),  S(7),  S(8),  S(9),  S(10),
      S(11), S(12), S(13), S(14), S(15), S(16), S(17), S(18), S(19), S(20), S(21),
      S(22), S(23), S(24), S(25), S(26), S(27), S(28), S(29), S(30), S(31), S(32),
#undef S
  };
  int added = 0;
  for (auto step : steps) {
    if (rill_step_set_describer(step, DescribeStep) != RILL_OK) break;
    added++;
  }
  EXPECT_EQ(added, 32) << "the table holds 32 step functions";
  EXPECT_FAILS_WITH(rill_step_set_describer(steps[32], DescribeStep), RILL_ENOMEM);
  EXPECT_EQ(rill_step_set_describer(steps[0], DescribeStep), RILL_OK) << "replacing needs no slot";
  for (auto step : steps) EXPECT_EQ(rill_step_set_describer(step, nullptr), RILL_OK);
  EXPECT_EQ(rill_step_set_describer(steps[32], DescribeStep), RILL_OK) << "slots come back";
  EXPECT_EQ(rill_step_set_describer(steps[32], nullptr), RILL_OK);
}

TEST_F(Loop, DebugModeReportsABlockingCallback) {
  ASSERT_EQ(rill_loop_set_debug(loop, 1), RILL_OK);
  Soon([] { BusyWait(0.15); });
  Soon([] {});
  Run();
  EXPECT_EQ(TakeReports().size(), 1u);
}

TEST_F(Loop, WithoutDebugModeABlockingCallbackIsNotReported) {
  ASSERT_EQ(rill_loop_set_debug(loop, 0), RILL_OK);
  Soon([] { BusyWait(0.15); });
  Run();
  EXPECT_EQ(TakeReports().size(), 0u);
}

TEST_F(Loop, DebugModeSlowDurationIsConfigurable) {
  ASSERT_EQ(rill_loop_set_debug(loop, 1), RILL_OK);
  ASSERT_EQ(rill_loop_set_slow_duration(loop, 0.5), RILL_OK);
  Soon([] { BusyWait(0.15); });
  Run();
  EXPECT_EQ(TakeReports().size(), 0u) << "0.15 s is under the 0.5 s threshold";
  ASSERT_EQ(rill_loop_set_slow_duration(loop, 0.03), RILL_OK);
  Soon([] { BusyWait(0.06); });
  Run();
  EXPECT_EQ(TakeReports().size(), 1u);
}

TEST_F(Loop, DumpTasksListsEveryPendingTaskByName) {
  rill_future *gate = NewFuture();
  auto waiter = [gate](rill_task *t) {
    if (rill_future_done(gate)) rill_future_set_none(rill_task_future(t));
    else rill_task_wait(t, gate);
  };
  rill_task *a = NewTask(waiter);
  rill_task *b = NewTask(waiter);
  ASSERT_EQ(rill_task_set_name(a, "alpha-task"), RILL_OK);
  ASSERT_EQ(rill_task_set_name(b, "beta-task"), RILL_OK);
  EXPECT_EQ(rill_loop_run_once(loop, 0), 2);
  EXPECT_EQ(rill_loop_task_count(loop), 2);
  rill_task *out[4] = {};
  EXPECT_EQ(rill_loop_tasks(loop, out, 4), 2);
  EXPECT_EQ(out[0], a) << "oldest first";
  EXPECT_EQ(out[1], b);
  EXPECT_EQ(rill_loop_tasks(loop, out, 1), 1);
  char *dump = rill_loop_dump_tasks(loop);
  ASSERT_NE(dump, nullptr);
  EXPECT_THAT(std::string(dump), HasSubstr("alpha-task"));
  EXPECT_THAT(std::string(dump), HasSubstr("beta-task"));
  rill_free(dump);
  rill_future_set_none(gate);
  Run();
  EXPECT_EQ(rill_loop_task_count(loop), 0);
  dump = rill_loop_dump_tasks(loop);
  ASSERT_NE(dump, nullptr);
  EXPECT_THAT(std::string(dump), ::testing::Not(HasSubstr("alpha-task")));
  rill_free(dump);
  rill_free(nullptr);
  rill_task_release(a);
  rill_task_release(b);
  rill_future_release(gate);
}

TEST_F(Loop, CloseDropsScheduledHandlesAndFreesTheirArgs) {
  Cb *soon = nullptr, *later = nullptr;
  rill_handle *h1 = SoonH([this] { log.push_back("soon"); }, &soon);
  rill_handle *h2 = LaterH(1.0, [this] { log.push_back("later"); }, &later);
  CloseLoop();
  EXPECT_EQ(soon->frees, 1);
  EXPECT_EQ(later->frees, 1);
  EXPECT_EQ(soon->runs + later->runs, 0);
  EXPECT_EQ(rill_loop_is_closed(loop), 1);
  rill_handle_release(h1);
  rill_handle_release(h2);
}

TEST_F(Loop, CloseTwiceGivesEClosedAndRunGivesEClosed) {
  CloseLoop();
  EXPECT_FAILS_WITH(rill_loop_close(loop), RILL_ECLOSED);
  EXPECT_FAILS_WITH(rill_loop_run(loop), RILL_ECLOSED);
  EXPECT_FAILS_WITH(rill_loop_run_once(loop, 0), RILL_ECLOSED);
  EXPECT_NULL_WITH(rill_call_soon(loop, CbRun, nullptr, nullptr), RILL_ECLOSED);
}

TEST_F(Loop, CloseCancelsPendingFuturesWithoutRunningTheirCallbacks) {
  rill_future *f = NewFuture();
  DoneCb *cb = nullptr;
  OnDone(f, [this](rill_future *) { log.push_back("callback"); }, &cb);
  CloseLoop();
  EXPECT_EQ(rill_future_state(f), RILL_CANCELLED) << "still readable after close";
  EXPECT_EQ(cb->runs, 0);
  EXPECT_EQ(cb->frees, 1);
  EXPECT_FAILS_WITH(rill_future_on_done(f, DoneCbRun, nullptr, nullptr), RILL_ECLOSED);
  CloseClean();
  EXPECT_EQ(rill_future_state(f), RILL_CANCELLED) << "still readable after the loop is freed";
  rill_future_release(f);
}

TEST_F(Loop, ManyTimersAndCancelsStayOrdered) {
  // 1000 timers, every other one cancelled: the rest fire in deadline
  // order (rill_handle_when), equal deadlines in the order they were set.
  std::vector<rill_handle *> hs;
  std::vector<double> when(1000);
  std::vector<int> fired;
  for (int i = 0; i < 1000; i++) {
    double d = 0.001 * (i % 50);
    hs.push_back(LaterH(d, [&fired, i] { fired.push_back(i); }));
    when[i] = rill_handle_when(hs.back());
  }
  for (int i = 0; i < 1000; i += 2) rill_handle_cancel(hs[i]);
  for (auto *h : hs) rill_handle_release(h);
  Run();
  ASSERT_EQ(fired.size(), 500u);
  for (size_t k = 1; k < fired.size(); k++) {
    int a = fired[k - 1], b = fired[k];
    EXPECT_TRUE(when[a] < when[b] || (when[a] == when[b] && a < b)) << a << " then " << b;
  }
}

TEST_F(Loop, DueTimersJoinTheBatchAfterCallbacksAlreadyReady) {
  Later(0, [this] { log.push_back("timer due"); });
  Soon([this] { log.push_back("call_soon"); });
  BusyWait(0.002);
  EXPECT_EQ(rill_loop_run_once(loop, 0), 2) << "one batch";
  EXPECT_EQ(log, (std::vector<std::string>{"call_soon", "timer due"}));
}

TEST_F(Loop, RunReturnsWhenOnlyPendingFuturesAreLeft) {
  rill_future *never = NewFuture();
  rill_task *t = NewTask([never](rill_task *self) { rill_task_wait(self, never); });
  double t0 = MonoNow();
  Run();
  EXPECT_LT(MonoNow() - t0, 1.0) << "a task waiting on a future nobody completes is no work";
  CloseLoop();
  EXPECT_EQ(TakeReports().size(), 1u) << "the task destroyed while pending";
  rill_task_release(t);
  rill_future_release(never);
}

// ---- poll hook (bindings release their interpreter lock there) ----

struct PollLog {
  std::vector<std::string> *events;
  int frees = 0;
};
static void RecordPoll(rill_loop *, int phase, void *arg) {
  static_cast<PollLog *>(arg)->events->push_back(phase == RILL_POLL_BEFORE ? "before poll"
                                                                           : "after poll");
}
static void FreePollLog(void *arg) { static_cast<PollLog *>(arg)->frees++; }

TEST_F(Loop, PollHookRunsAroundABlockingPollOnly) {
  PollLog pl{&log};
  ASSERT_EQ(rill_loop_set_poll_hook(loop, RecordPoll, &pl, FreePollLog), RILL_OK);
  Soon([this] { log.push_back("ready callback"); });
  EXPECT_EQ(rill_loop_run_once(loop, 0), 1);
  EXPECT_EQ(log, (std::vector<std::string>{"ready callback"})) << "no hook around a poll that cannot block";
  log.clear();
  Later(0.02, [this] { log.push_back("timer"); });
  Run();
  ASSERT_GE(log.size(), 3u);
  for (size_t i = 0; i + 1 < log.size(); i++)
    EXPECT_EQ(log[i], i % 2 == 0 ? "before poll" : "after poll") << "pairs, before then after";
  EXPECT_EQ(log.back(), "timer");
  ASSERT_EQ(rill_loop_set_poll_hook(loop, nullptr, nullptr, nullptr), RILL_OK);
  EXPECT_EQ(pl.frees, 1) << "removing the hook frees its arg";
  log.clear();
  Later(0.01, [this] { log.push_back("timer"); });
  Run();
  EXPECT_EQ(log, (std::vector<std::string>{"timer"}));
}

TEST_F(Loop, PollHookArgIsFreedWhenReplacedAndWhenTheLoopGoes) {
  std::vector<std::string> events;
  PollLog a{&events}, b{&events};
  rill_loop *l = rill_loop_new();
  ASSERT_EQ(rill_loop_set_poll_hook(l, RecordPoll, &a, FreePollLog), RILL_OK);
  ASSERT_EQ(rill_loop_set_poll_hook(l, RecordPoll, &b, FreePollLog), RILL_OK);
  EXPECT_EQ(a.frees, 1);
  EXPECT_EQ(b.frees, 0);
  rill_loop_free(l);
  EXPECT_EQ(a.frees, 1);
  EXPECT_EQ(b.frees, 1);
}

// ---- shutdown (asyncio.run's ending for hosts that run the loop) ----

TEST_F(Loop, ShutdownCancelsPendingTasksAndRunsThemToTheEnd) {
  rill_task *worker = Spawn([this] {
    log.push_back("worker started");
    int rc = rill_sleep(10.0);
    log.push_back("worker cleanup, sleep gave " + std::to_string(rc));
    return rc;
  });
  EXPECT_EQ(rill_loop_run_once(loop, 0), 1);
  rill_task *never = Spawn([this] {
    log.push_back("never-started body ran");
    return 0;
  });
  double t0 = MonoNow();
  EXPECT_EQ(rill_loop_shutdown(loop), RILL_OK);
  EXPECT_LT(MonoNow() - t0, 5.0);
  EXPECT_EQ(log, (std::vector<std::string>{"worker started", "worker cleanup, sleep gave " +
                                                                 std::to_string(RILL_ECANCELLED)}));
  EXPECT_EQ(rill_future_state(rill_task_future(worker)), RILL_CANCELLED);
  EXPECT_EQ(rill_future_state(rill_task_future(never)), RILL_CANCELLED);
  EXPECT_EQ(rill_loop_task_count(loop), 0);
  EXPECT_EQ(rill_loop_is_closed(loop), 0) << "the loop stays open";
  Soon([this] { log.push_back("still usable"); });
  Run();
  EXPECT_EQ(log.back(), "still usable");
  rill_task_release(worker);
  rill_task_release(never);
}

TEST_F(Loop, ShutdownReportsAFailureOtherThanACancel) {
  rill_task *stubborn = Spawn([] {
    rill_sleep(10.0);
    return -1000;
  });
  rill_task *obedient = Spawn([] { return rill_sleep(10.0); });
  EXPECT_EQ(rill_loop_run_once(loop, 0), 2);
  EXPECT_EQ(rill_loop_shutdown(loop), RILL_OK);
  auto r = TakeReports();
  ASSERT_EQ(r.size(), 1u) << "the failure, once; the cancel is no failure";
  EXPECT_TRUE(r[0].has_future);
  EXPECT_EQ(rill_future_error(rill_task_future(stubborn)), -1000);
  rill_task_release(stubborn);
  rill_task_release(obedient);
}

// The first half for a caller that drives the loop itself (one iteration
// at a time, as a binding releasing its interpreter lock does).
TEST_F(Loop, ShutdownTasksGivesAFutureTheCallerRunsTheLoopFor) {
  rill_task *stubborn = Spawn([this] {
    int rc = rill_sleep(10.0);
    log.push_back("stubborn cleanup");
    rill_sleep(0.01);  // needs more iterations after the cancel
    return rc == RILL_ECANCELLED ? -1000 : rc;
  });
  rill_task *obedient = Spawn([] { return rill_sleep(10.0); });
  EXPECT_EQ(rill_loop_run_once(loop, 0), 2);
  rill_future *done = rill_loop_shutdown_tasks(loop);
  ASSERT_NE(done, nullptr);
  EXPECT_EQ(rill_future_state(done), RILL_PENDING);
  double t0 = MonoNow();
  while (rill_future_done(done) != 1 && MonoNow() - t0 < 5) rill_loop_run_once(loop, 0.1);
  EXPECT_EQ(rill_future_state(done), RILL_DONE);
  EXPECT_EQ(log, (std::vector<std::string>{"stubborn cleanup"}));
  auto r = TakeReports();
  ASSERT_EQ(r.size(), 1u) << "the failure reported once, before the future is done";
  EXPECT_TRUE(r[0].has_future);
  EXPECT_EQ(rill_future_state(rill_task_future(obedient)), RILL_CANCELLED);
  EXPECT_EQ(rill_loop_task_count(loop), 0);
  rill_future_release(done);
  EXPECT_EQ(rill_loop_shutdown(loop), RILL_OK) << "only the pool is left";
  EXPECT_TRUE(TakeReports().empty());
  // nothing pending: DONE at once
  rill_future *none = rill_loop_shutdown_tasks(loop);
  ASSERT_NE(none, nullptr);
  EXPECT_EQ(rill_future_state(none), RILL_DONE);
  rill_future_release(none);
  rill_task_release(stubborn);
  rill_task_release(obedient);
}

TEST_F(Loop, ShutdownTasksBadInputBusyAndClosed) {
  EXPECT_NULL_WITH(rill_loop_shutdown_tasks(nullptr), RILL_EINVAL);
  Soon([this] {
    EXPECT_NULL_WITH(rill_loop_shutdown_tasks(loop), RILL_EBUSY);
    log.push_back("checked");
  });
  Run();
  EXPECT_EQ(log, (std::vector<std::string>{"checked"}));
  // a loop closed while the shutdown is pending: the state is freed, no leak
  rill_task *t = Spawn([] {
    rill_sleep(10.0);
    return rill_sleep(10.0);  // refuses the first cancel
  });
  EXPECT_EQ(rill_loop_run_once(loop, 0), 1);
  rill_future *done = rill_loop_shutdown_tasks(loop);
  ASSERT_NE(done, nullptr);
  rill_loop_run_once(loop, 0);
  EXPECT_EQ(rill_future_state(done), RILL_PENDING);
  CloseLoop();
  EXPECT_NE(rill_future_state(done), RILL_DONE);
  rill_future_release(done);
  rill_task_release(t);
  TakeReports();
  EXPECT_NULL_WITH(rill_loop_shutdown_tasks(loop), RILL_ECLOSED);
}

TEST_F(Loop, ShutdownWhileRunningIsEBusyAndOnAClosedLoopEClosed) {
  Soon([this] {
    EXPECT_FAILS_WITH(rill_loop_shutdown(loop), RILL_EBUSY);
    log.push_back("checked");
  });
  Run();
  EXPECT_EQ(log, (std::vector<std::string>{"checked"}));
  EXPECT_EQ(rill_loop_shutdown(loop), RILL_OK) << "nothing to do";
  CloseLoop();
  EXPECT_FAILS_WITH(rill_loop_shutdown(loop), RILL_ECLOSED);
}
