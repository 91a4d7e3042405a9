// Tasks driven by step functions: stepping, cancellation, strong references,
// unretrieved failures. (asyncio groups D, E)
#include "rill_test.h"

using namespace rilltest;
using ::testing::HasSubstr;
using ::testing::StartsWith;

using Task = RillTest;

static void FinishNone(rill_task *t) { ASSERT_EQ(rill_future_set_none(rill_task_future(t)), RILL_OK); }
// The header's rule: a task sees a cancel at its await point when its step
// has rill_task_cancel_requested() == 1, or the future it awaited reports
// RILL_ECANCELLED.
static bool SeesCancel(rill_task *t, rill_future *awaited) {
  return rill_task_cancel_requested(t) == 1 ||
         (awaited && rill_future_error(awaited) == RILL_ECANCELLED);
}
static void FinishCancelled(rill_task *t) {
  ASSERT_EQ(rill_future_fail(rill_task_future(t), RILL_ECANCELLED, rill_task_cancel_message(t),
                             nullptr, nullptr, nullptr),
            RILL_OK);
}

TEST_F(Task, FirstStepRunsInTheNextIterationNotInsideItsCreator) {
  rill_task *t = nullptr;
  StepCb *s = nullptr;
  Soon([&] {
    t = NewTask(
        [this](rill_task *self) {
          log.push_back("first step");
          FinishNone(self);
        },
        &s);
    log.push_back("creator continues");
  });
  Soon([this] { log.push_back("callback queued before the task"); });
  EXPECT_EQ(rill_loop_run_once(loop, 0), 2);
  EXPECT_EQ(s->steps, 0);
  Run();
  EXPECT_EQ(log, (std::vector<std::string>{"creator continues", "callback queued before the task",
                                           "first step"}));
  EXPECT_EQ(rill_future_state(rill_task_future(t)), RILL_DONE);
  rill_task_release(t);
}

TEST_F(Task, StepWaitResumesInTheIterationAfterTheFutureCompletes) {
  rill_future *f = NewFuture();
  int n = 0;
  rill_task *t = NewTask([&](rill_task *self) {
    if (n++ == 0) {
      log.push_back("step 1 waits");
      EXPECT_EQ(rill_task_wait(self, f), RILL_OK);
    } else {
      int64_t v = 0;
      EXPECT_EQ(rill_future_int(f, &v), RILL_OK);
      log.push_back("step 2 sees " + std::to_string(v));
      FinishNone(self);
    }
  });
  Later(0.01, [&] {
    rill_future_set_int(f, 7);
    log.push_back("completer returns");
  });
  Run();
  EXPECT_EQ(log, (std::vector<std::string>{"step 1 waits", "completer returns", "step 2 sees 7"}));
  rill_task_release(t);
  rill_future_release(f);
}

TEST_F(Task, WaitOnADoneFutureResumesInTheNextIteration) {
  rill_future *f = NewFuture();
  rill_future_set_none(f);
  int n = 0;
  rill_task *t = NewTask([&](rill_task *self) {
    if (n++ == 0) EXPECT_EQ(rill_task_wait(self, f), RILL_OK);
    else FinishNone(self);
  });
  EXPECT_EQ(rill_loop_run_once(loop, 0), 1);
  EXPECT_EQ(n, 1);
  EXPECT_EQ(rill_loop_run_once(loop, 0), 1);
  EXPECT_EQ(n, 2);
  EXPECT_EQ(rill_future_state(rill_task_future(t)), RILL_DONE);
  rill_task_release(t);
  rill_future_release(f);
}

TEST_F(Task, YieldingTasksAlternateStrictly) {
  auto yielder = [this](const char *name) {
    auto n = std::make_shared<int>(0);
    return NewTask([this, name, n](rill_task *self) {
      log.push_back(name + std::to_string(*n));
      if (++*n == 3) FinishNone(self);
      else EXPECT_EQ(rill_task_yield(self), RILL_OK);
    });
  };
  rill_task *a = yielder("a");
  rill_task *b = yielder("b");
  Run();
  EXPECT_EQ(log, (std::vector<std::string>{"a0", "b0", "a1", "b1", "a2", "b2"}));
  rill_task_release(a);
  rill_task_release(b);
}

TEST_F(Task, SleepResumesNoEarlierThanTheDelay) {
  double start = 0, woke = 0, when = 0;
  int n = 0;
  rill_task *t = NewTask([&](rill_task *self) {
    if (n++ == 0) {
      start = MonoNow();
      when = rill_loop_time(loop) + 0.05;
      EXPECT_EQ(rill_task_sleep(self, 0.05), RILL_OK);
    } else {
      woke = MonoNow();
      EXPECT_GE(rill_loop_time(loop), when);
      FinishNone(self);
    }
  });
  Run();
  EXPECT_GE(woke, when);
  EXPECT_LT(woke - start, 0.05 + LateSlack());
  rill_task_release(t);
}

TEST_F(Task, ArrangingTwiceInOneStepIsEState) {
  rill_future *f = NewFuture();
  rill_future *g = NewFuture();
  int n = 0;
  rill_task *t = NewTask([&](rill_task *self) {
    if (n++ == 0) {
      ASSERT_EQ(rill_task_wait(self, f), RILL_OK);
      EXPECT_FAILS_WITH(rill_task_wait(self, g), RILL_ESTATE);
      EXPECT_FAILS_WITH(rill_task_yield(self), RILL_ESTATE);
      EXPECT_FAILS_WITH(rill_task_sleep(self, 0.01), RILL_ESTATE);
    } else {
      log.push_back("resumed by f");
      FinishNone(self);
    }
  });
  Later(0.01, [f] { rill_future_set_none(f); });
  Run();
  EXPECT_EQ(log, (std::vector<std::string>{"resumed by f"}));
  rill_task_release(t);
  rill_future_release(f);
  rill_future_release(g);
}

TEST_F(Task, WaitYieldSleepOutsideTheTasksOwnStepAreEState) {
  rill_future *f = NewFuture();
  int na = 0;
  rill_task *a = NewTask([&](rill_task *self) {
    if (na++ == 0) EXPECT_EQ(rill_task_wait(self, f), RILL_OK);
    else FinishNone(self);
  });
  rill_task *b = NewTask([&](rill_task *self) {
    EXPECT_FAILS_WITH(rill_task_wait(a, f), RILL_ESTATE);
    EXPECT_FAILS_WITH(rill_task_yield(a), RILL_ESTATE);
    EXPECT_FAILS_WITH(rill_task_sleep(a, 0), RILL_ESTATE);
    FinishNone(self);
  });
  EXPECT_FAILS_WITH(rill_task_wait(a, f), RILL_ESTATE);
  EXPECT_FAILS_WITH(rill_task_yield(a), RILL_ESTATE);
  EXPECT_FAILS_WITH(rill_task_sleep(a, 0), RILL_ESTATE);
  Soon([&] {
    EXPECT_FAILS_WITH(rill_task_yield(a), RILL_ESTATE);
  });
  Later(0.01, [f] { rill_future_set_none(f); });
  Run();
  EXPECT_EQ(rill_future_state(rill_task_future(a)), RILL_DONE);
  EXPECT_EQ(rill_future_state(rill_task_future(b)), RILL_DONE);
  rill_task_release(a);
  rill_task_release(b);
  rill_future_release(f);
}

TEST_F(Task, StepThatNeitherWaitsNorCompletesFailsWithEState) {
  rill_task *t = NewTask([this](rill_task *) { log.push_back("forgot to arrange anything"); });
  Run();
  EXPECT_EQ(log, (std::vector<std::string>{"forgot to arrange anything"}));
  EXPECT_EQ(rill_future_state(rill_task_future(t)), RILL_FAILED);
  EXPECT_EQ(rill_future_error(rill_task_future(t)), RILL_ESTATE);
  rill_task_release(t);
}

TEST_F(Task, CompletingATasksFutureOutsideItsOwnStepIsEState) {
  rill_future *gate = NewFuture();
  int n = 0;
  rill_task *t = NewTask([&](rill_task *self) {
    if (n++ == 0) rill_task_wait(self, gate);
    else FinishNone(self);
  });
  rill_future *tf = rill_task_future(t);
  EXPECT_FAILS_WITH(rill_future_set_int(tf, 1), RILL_ESTATE);
  EXPECT_FAILS_WITH(rill_future_fail(tf, -1000, "x", nullptr, nullptr, nullptr), RILL_ESTATE);
  Soon([&] { EXPECT_FAILS_WITH(rill_future_set_none(tf), RILL_ESTATE); });
  Later(0.01, [gate] { rill_future_set_none(gate); });
  Run();
  EXPECT_EQ(rill_future_state(tf), RILL_DONE);
  EXPECT_EQ(rill_future_kind(tf), RILL_NONE);
  rill_task_release(t);
  rill_future_release(gate);
}

TEST_F(Task, StepCompletesTheTaskWithAValue) {
  rill_task *t = NewTask([](rill_task *self) { rill_future_set_double(rill_task_future(self), 2.5); });
  EXPECT_EQ(rill_loop_run_until(loop, rill_task_future(t)), RILL_OK);
  double d = 0;
  EXPECT_EQ(rill_future_double(rill_task_future(t), &d), RILL_OK);
  EXPECT_EQ(d, 2.5);
  rill_task_release(t);
}

TEST_F(Task, CancelBeforeTheFirstStepIsToldInThatStep) {
  StepCb *s = nullptr;
  rill_task *t = NewTask(
      [this](rill_task *self) {
        log.push_back("first step, cancel_requested=" + std::to_string(rill_task_cancel_requested(self)));
        FinishCancelled(self);
      },
      &s);
  EXPECT_EQ(rill_task_cancel(t, "before start"), 1);
  EXPECT_EQ(rill_task_cancel_requested(t), 1) << "pending delivery";
  Run();
  EXPECT_EQ(log, (std::vector<std::string>{"first step, cancel_requested=1"}));
  EXPECT_EQ(rill_future_state(rill_task_future(t)), RILL_CANCELLED);
  EXPECT_STREQ(rill_future_error_message(rill_task_future(t)), "before start");
  rill_task_release(t);
}

TEST_F(Task, CancelWhileWaitingCancelsTheAwaitedFutureAtOnce) {
  rill_future *f = NewFuture();
  int n = 0;
  rill_task *t = NewTask([&](rill_task *self) {
    if (n++ == 0) {
      EXPECT_EQ(rill_task_cancel_requested(self), 0);
      rill_task_wait(self, f);
    } else {
      log.push_back(std::string("step 2 sees the cancel: ") + (SeesCancel(self, f) ? "yes" : "no"));
      FinishCancelled(self);
    }
  });
  EXPECT_EQ(rill_loop_run_once(loop, 0), 1);
  EXPECT_EQ(rill_task_cancel(t, "stop waiting"), 1);
  EXPECT_EQ(rill_future_state(f), RILL_CANCELLED) << "cancelled when cancel() returns";
  EXPECT_STREQ(rill_future_error_message(f), "stop waiting") << "the message travels";
  EXPECT_EQ(rill_future_state(rill_task_future(t)), RILL_PENDING) << "the task ends at its step";
  Run();
  EXPECT_EQ(log, (std::vector<std::string>{"step 2 sees the cancel: yes"}));
  EXPECT_EQ(rill_future_state(rill_task_future(t)), RILL_CANCELLED);
  EXPECT_EQ(rill_task_cancel(t, "too late"), 0) << "done";
  rill_task_release(t);
  rill_future_release(f);
}

TEST_F(Task, CancellingATaskThatAwaitsAnotherTaskCancelsThatTaskToo) {
  rill_future *gate = NewFuture();
  int ni = 0, no = 0;
  rill_task *inner = NewTask([&](rill_task *self) {
    if (ni++ == 0) return (void)rill_task_wait(self, gate);
    log.push_back("inner sees cancel=" + std::to_string(SeesCancel(self, gate)));
    FinishCancelled(self);
  });
  rill_task *outer = NewTask([&](rill_task *self) {
    if (no++ == 0) return (void)rill_task_wait(self, rill_task_future(inner));
    log.push_back("outer sees cancel=" + std::to_string(SeesCancel(self, rill_task_future(inner))));
    FinishCancelled(self);
  });
  EXPECT_EQ(rill_loop_run_once(loop, 0), 2);
  EXPECT_EQ(rill_task_cancel(outer, nullptr), 1);
  EXPECT_EQ(rill_task_cancelling(inner), 1) << "the awaited task got the cancel at once";
  EXPECT_EQ(rill_future_state(gate), RILL_CANCELLED) << "and so did what it awaits";
  Run();
  EXPECT_EQ(log, (std::vector<std::string>{"inner sees cancel=1", "outer sees cancel=1"}));
  EXPECT_EQ(rill_future_state(rill_task_future(inner)), RILL_CANCELLED);
  EXPECT_EQ(rill_future_state(rill_task_future(outer)), RILL_CANCELLED);
  rill_task_release(inner);
  rill_task_release(outer);
  rill_future_release(gate);
}

TEST_F(Task, CancelTwiceReturnsOneOneCountsTwoAndTheFirstMessageWins) {
  rill_future *f = NewFuture();
  int n = 0;
  rill_task *t = NewTask([&](rill_task *self) {
    if (n++ == 0) return (void)rill_task_wait(self, f);
    FinishCancelled(self);
  });
  EXPECT_EQ(rill_loop_run_once(loop, 0), 1);
  EXPECT_EQ(rill_task_cancel(t, "m1"), 1);
  EXPECT_EQ(rill_task_cancel(t, "m2"), 1);
  EXPECT_EQ(rill_task_cancelling(t), 2);
  EXPECT_STREQ(rill_task_cancel_message(t), "m1");
  Run();
  EXPECT_EQ(rill_future_state(rill_task_future(t)), RILL_CANCELLED);
  EXPECT_STREQ(rill_future_error_message(rill_task_future(t)), "m1");
  EXPECT_EQ(rill_task_cancel(t, "m3"), 0);
  EXPECT_EQ(rill_future_cancel(rill_task_future(t)), 0);
  rill_task_release(t);
  rill_future_release(f);
}

TEST_F(Task, CancelFlagReadInEachStepIsThatStepsCancelRequested) {
  // 1.1: rill_task_cancel_flag's byte, read in the task's own steps (the
  // C++ wrapper's check at every co_await), agrees with the call.
  const unsigned char *flag = nullptr;
  int steps = 0;
  rill_task *t = NewTask([this, &flag, &steps](rill_task *self) {
    log.push_back("step " + std::to_string(steps) + ": flag=" + std::to_string(*flag) +
                  " requested=" + std::to_string(rill_task_cancel_requested(self)));
    if (*flag) FinishCancelled(self);
    else EXPECT_EQ(rill_task_yield(self), RILL_OK);
    steps++;
  });
  flag = rill_task_cancel_flag(t);
  ASSERT_NE(flag, nullptr);
  EXPECT_EQ(rill_loop_run_once(loop, 0), 1);
  EXPECT_EQ(rill_loop_run_once(loop, 0), 1);
  EXPECT_EQ(rill_task_cancel(t, "stop"), 1); // between steps: the next one delivers it
  Run();
  EXPECT_EQ(log, (std::vector<std::string>{"step 0: flag=0 requested=0", "step 1: flag=0 requested=0",
                                            "step 2: flag=1 requested=1"}));
  EXPECT_EQ(rill_future_state(rill_task_future(t)), RILL_CANCELLED);
  EXPECT_STREQ(rill_future_error_message(rill_task_future(t)), "stop");
  rill_task_release(t);
}

TEST_F(Task, CancelFlagOfNullIsNullAndEInval) { EXPECT_NULL_WITH(rill_task_cancel_flag(nullptr), RILL_EINVAL); }

TEST_F(Task, CancelMessageIsNullWithoutACancel) {
  rill_task *t = NewTask([](rill_task *self) { FinishNone(self); });
  EXPECT_EQ(rill_task_cancel_message(t), nullptr);
  EXPECT_EQ(rill_task_cancelling(t), 0);
  Run();
  rill_task_release(t);
}

TEST_F(Task, CaughtCancelEndsDoneAndCancellingStaysOne) {
  int n = 0;
  rill_task *t = NewTask([&](rill_task *self) {
    switch (n++) {
      case 0:
        rill_task_sleep(self, 10.0);
        break;
      case 1:
        EXPECT_EQ(rill_task_cancel_requested(self), 1);
        log.push_back("caught the cancel");
        rill_task_yield(self);
        break;
      default:
        EXPECT_EQ(rill_task_cancel_requested(self), 0) << "delivered once, not again";
        log.push_back("carries on");
        rill_future_set_int(rill_task_future(self), 5);
    }
  });
  Later(0.01, [&] { EXPECT_EQ(rill_task_cancel(t, nullptr), 1); });
  double t0 = MonoNow();
  Run();
  EXPECT_LT(MonoNow() - t0, 5.0) << "the sleep was cut short";
  EXPECT_EQ(log, (std::vector<std::string>{"caught the cancel", "carries on"}));
  EXPECT_EQ(rill_future_state(rill_task_future(t)), RILL_DONE);
  int64_t v = 0;
  EXPECT_EQ(rill_future_int(rill_task_future(t), &v), RILL_OK);
  EXPECT_EQ(v, 5);
  EXPECT_EQ(rill_task_cancelling(t), 1);
  rill_task_release(t);
}

TEST_F(Task, UncancelToZeroDropsACancelNotYetDelivered) {
  int n = 0;
  rill_task *t = NewTask([&](rill_task *self) {
    log.push_back("step " + std::to_string(n) + " cancel=" +
                  std::to_string(rill_task_cancel_requested(self)));
    if (n++ == 0) rill_task_yield(self);
    else FinishNone(self);
  });
  EXPECT_EQ(rill_loop_run_once(loop, 0), 1);
  EXPECT_EQ(rill_task_cancel(t, "dropped"), 1);
  EXPECT_EQ(rill_task_uncancel(t), 0);
  EXPECT_EQ(rill_task_cancel_requested(t), 0);
  Run();
  EXPECT_EQ(log, (std::vector<std::string>{"step 0 cancel=0", "step 1 cancel=0"}));
  EXPECT_EQ(rill_future_state(rill_task_future(t)), RILL_DONE);
  rill_task_release(t);
}

TEST_F(Task, UncancelBeforeTheFirstStepLetsTheBodyRun) {
  rill_task *t = NewTask([this](rill_task *self) {
    log.push_back("cancel=" + std::to_string(rill_task_cancel_requested(self)));
    FinishNone(self);
  });
  EXPECT_EQ(rill_task_cancel(t, nullptr), 1);
  EXPECT_EQ(rill_task_uncancel(t), 0);
  Run();
  EXPECT_EQ(log, (std::vector<std::string>{"cancel=0"}));
  EXPECT_EQ(rill_future_state(rill_task_future(t)), RILL_DONE);
  rill_task_release(t);
}

TEST_F(Task, UncancelAboveZeroKeepsTheCancel) {
  rill_task *t = NewTask([this](rill_task *self) {
    log.push_back("cancel=" + std::to_string(rill_task_cancel_requested(self)));
    FinishCancelled(self);
  });
  EXPECT_EQ(rill_task_cancel(t, nullptr), 1);
  EXPECT_EQ(rill_task_cancel(t, nullptr), 1);
  EXPECT_EQ(rill_task_uncancel(t), 1);
  EXPECT_EQ(rill_task_cancelling(t), 1);
  Run();
  EXPECT_EQ(log, (std::vector<std::string>{"cancel=1"}));
  rill_task_release(t);
}

TEST_F(Task, FutureCancelOnATaskFutureRequestsTheTasksCancel) {
  rill_task *t = NewTask([this](rill_task *self) {
    log.push_back("cancel=" + std::to_string(rill_task_cancel_requested(self)));
    FinishCancelled(self);
  });
  EXPECT_EQ(rill_future_cancel_msg(rill_task_future(t), "via future"), 1);
  EXPECT_EQ(rill_future_state(rill_task_future(t)), RILL_PENDING) << "ends when its work stops";
  EXPECT_EQ(rill_task_cancelling(t), 1);
  EXPECT_STREQ(rill_task_cancel_message(t), "via future");
  Run();
  EXPECT_EQ(log, (std::vector<std::string>{"cancel=1"}));
  EXPECT_EQ(rill_future_state(rill_task_future(t)), RILL_CANCELLED);
  rill_task_release(t);
}

TEST_F(Task, ReleasingTheCallersReferenceDoesNotStopTheTask) {
  auto n = std::make_shared<int>(0);
  rill_task *t = NewTask([this, n](rill_task *self) {
    log.push_back("step " + std::to_string(*n));
    if (++*n == 3) FinishNone(self);
    else rill_task_sleep(self, 0.005);
  });
  rill_task_release(t);
  EXPECT_EQ(rill_loop_task_count(loop), 1) << "the loop holds it";
  Run();
  EXPECT_EQ(log, (std::vector<std::string>{"step 0", "step 1", "step 2"}));
  EXPECT_EQ(rill_loop_task_count(loop), 0);
}

TEST_F(Task, UnretrievedFailureIsReportedOnceWhenTheLastReferenceGoes) {
  rill_task *t = NewTask([](rill_task *self) {
    rill_future_fail(rill_task_future(self), -1000, "nobody reads me", nullptr, nullptr, nullptr);
  });
  rill_task_set_name(t, "doomed-task");
  rill_task_release(t);
  Run();
  auto r = TakeReports();
  ASSERT_EQ(r.size(), 1u) << "reported when the task ended with nobody left to read it";
  EXPECT_THAT(r[0].message, HasSubstr("doomed-task"));
  EXPECT_TRUE(r[0].has_future);
  CloseLoop();
  EXPECT_EQ(TakeReports().size(), 0u) << "exactly once";
}

TEST_F(Task, UnretrievedFailureOfAReferencedTaskIsReportedAtLoopClose) {
  rill_task *t = NewTask([](rill_task *self) {
    rill_future_fail(rill_task_future(self), -1000, "held but unread", nullptr, nullptr, nullptr);
  });
  Run();
  EXPECT_EQ(TakeReports().size(), 0u) << "someone may still read it";
  CloseLoop();
  auto r = TakeReports();
  ASSERT_EQ(r.size(), 1u);
  EXPECT_TRUE(r[0].has_future);
  rill_task_release(t);
  EXPECT_EQ(TakeReports().size(), 0u) << "exactly once";
}

TEST_F(Task, RetrievedFailureIsNotReported) {
  rill_task *t = NewTask([](rill_task *self) {
    rill_future_fail(rill_task_future(self), -1000, "read", nullptr, nullptr, nullptr);
  });
  Run();
  EXPECT_EQ(rill_future_error(rill_task_future(t)), -1000);
  rill_task_release(t);
  CloseLoop();
  EXPECT_EQ(TakeReports().size(), 0u);
}

TEST_F(Task, FailureReadByAnAwaitingTaskIsNotReported) {
  rill_task *failing = NewTask([](rill_task *self) {
    rill_future_fail(rill_task_future(self), -1000, "seen by the awaiter", nullptr, nullptr, nullptr);
  });
  int n = 0;
  // The awaiter owns the test's reference to the failing task from here on.
  rill_task *awaiter = NewTask([&](rill_task *self) {
    if (n++ == 0) return (void)rill_task_wait(self, rill_task_future(failing));
    log.push_back("awaiter got " + std::to_string(rill_future_error(rill_task_future(failing))));
    rill_task_release(failing);
    FinishNone(self);
  });
  rill_task_release(awaiter);
  Run();
  EXPECT_EQ(log, (std::vector<std::string>{"awaiter got -1000"}));
  CloseLoop();
  EXPECT_EQ(TakeReports().size(), 0u);
}

TEST_F(Task, FailureAwaitedByACoroutineIsNotReported) {
  rill_task *failing = Spawn([] { return -1000; });
  rill_task *awaiter = Spawn([&] {
    int rc = rill_await(rill_task_future(failing));
    rill_task_release(failing);
    log.push_back("await gave " + std::to_string(rc));
    return 0;
  });
  rill_task_release(awaiter);
  Run();
  EXPECT_EQ(log, (std::vector<std::string>{"await gave -1000"}));
  CloseLoop();
  EXPECT_EQ(TakeReports().size(), 0u);
}

TEST_F(Task, ReadingOnlyTheMessageOrPayloadRetrievesTheFailure) {
  static const int tag = 0;
  Tracked *payload = Track("payload");
  rill_task *a = NewTask([](rill_task *self) {
    rill_future_fail(rill_task_future(self), -1000, "msg", nullptr, nullptr, nullptr);
  });
  rill_task *b = NewTask([&](rill_task *self) {
    rill_future_fail(rill_task_future(self), -1001, "payload", payload, TrackedFree, &tag);
  });
  Run();
  EXPECT_STREQ(rill_future_error_message(rill_task_future(a)), "msg");
  EXPECT_EQ(rill_future_error_payload(rill_task_future(b), &tag), payload);
  rill_task_release(a);
  rill_task_release(b);
  CloseLoop();
  EXPECT_EQ(TakeReports().size(), 0u);
}

TEST_F(Task, CancelledTaskIsNotAnUnretrievedFailure) {
  rill_task *t = NewTask([](rill_task *self) { FinishCancelled(self); });
  rill_task_cancel(t, nullptr);
  rill_task_release(t);
  Run();
  CloseLoop();
  EXPECT_EQ(TakeReports().size(), 0u);
}

TEST_F(Task, LoopCloseDestroysAPendingTaskReportsItAndFreesItsArg) {
  rill_future *gate = NewFuture();
  StepCb *s = nullptr;
  rill_task *t = NewTask([&](rill_task *self) { rill_task_wait(self, gate); }, &s);
  rill_task_set_name(t, "never-finishes");
  Run();
  EXPECT_EQ(s->steps, 1);
  EXPECT_EQ(s->frees, 0);
  CloseLoop();
  auto r = TakeReportMessages();
  ASSERT_EQ(r.size(), 1u) << ::testing::PrintToString(r);
  EXPECT_THAT(r[0], HasSubstr("destroyed"));
  EXPECT_THAT(r[0], HasSubstr("never-finishes"));
  EXPECT_EQ(s->steps, 1) << "its step never runs again";
  EXPECT_EQ(s->frees, 1);
  rill_task_release(t);
  rill_future_release(gate);
}

TEST_F(Task, CurrentTaskIsTheSteppingTaskAndNullOutside) {
  EXPECT_EQ(rill_current_task(), nullptr);
  rill_task *seen = nullptr, *t = nullptr;
  t = NewTask([&](rill_task *self) {
    seen = rill_current_task();
    EXPECT_EQ(seen, self);
    FinishNone(self);
  });
  Soon([&] { EXPECT_EQ(rill_current_task(), nullptr) << "inside a plain callback"; });
  Run();
  EXPECT_EQ(seen, t);
  EXPECT_EQ(rill_current_task(), nullptr);
  rill_task_release(t);
}

TEST_F(Task, DefaultNamesAreTaskNAndSetNameCopies) {
  rill_task *a = NewTask([](rill_task *self) { FinishNone(self); });
  rill_task *b = NewTask([](rill_task *self) { FinishNone(self); });
  ASSERT_NE(rill_task_name(a), nullptr);
  EXPECT_THAT(rill_task_name(a), StartsWith("Task-"));
  EXPECT_THAT(rill_task_name(b), StartsWith("Task-"));
  EXPECT_STRNE(rill_task_name(a), rill_task_name(b));
  char buf[] = "worker";
  ASSERT_EQ(rill_task_set_name(a, buf), RILL_OK);
  buf[0] = 'W';
  EXPECT_STREQ(rill_task_name(a), "worker");
  ASSERT_EQ(rill_task_set_name(a, "renamed"), RILL_OK);
  EXPECT_STREQ(rill_task_name(a), "renamed");
  Run();
  EXPECT_STREQ(rill_task_name(a), "renamed") << "readable once done";
  rill_task_release(a);
  rill_task_release(b);
}

TEST_F(Task, TaskFutureFromFutureAndArg) {
  StepCb *s = nullptr;
  rill_task *t = NewTask([](rill_task *self) { FinishNone(self); }, &s);
  rill_future *f = rill_task_future(t);
  ASSERT_NE(f, nullptr);
  EXPECT_EQ(rill_task_from_future(f), t);
  EXPECT_EQ(rill_task_arg(t), s);
  EXPECT_EQ(rill_future_loop(f), loop);
  EXPECT_EQ(rill_task_retain(t), t);
  rill_task_release(t);
  Run();
  rill_task_release(t);
}

TEST_F(Task, TaskFutureAcceptsDoneCallbacks) {
  rill_task *t = NewTask([this](rill_task *self) {
    log.push_back("step");
    FinishNone(self);
  });
  OnDone(rill_task_future(t), [this](rill_future *) { log.push_back("done callback"); });
  Run();
  EXPECT_EQ(log, (std::vector<std::string>{"step", "done callback"}));
  rill_task_release(t);
}

TEST_F(Task, TaskCountAndListingFollowPendingTasks) {
  rill_task *a = NewTask([](rill_task *self) { FinishNone(self); });
  rill_task *b = NewTask([](rill_task *self) { rill_task_sleep(self, 0.01); });
  EXPECT_EQ(rill_loop_task_count(loop), 2);
  EXPECT_EQ(rill_loop_run_once(loop, 0), 2);
  EXPECT_EQ(rill_loop_task_count(loop), 1);
  rill_task *out[2] = {};
  EXPECT_EQ(rill_loop_tasks(loop, out, 2), 1);
  EXPECT_EQ(out[0], b);
  CloseLoop();
  TakeReports();  // b destroyed while pending
  rill_task_release(a);
  rill_task_release(b);
}

// A task's timer, cancel message and name live apart from it, made on
// first use: each path once, on step tasks and a coroutine, with one of each
// still pending (and sleeping) when the loop closes.
TEST_F(Task, SleepCancelMessageAndNameWorkOnStepTasksAndCoroutinesAndCloseFreesThem) {
  rill_task *sleeper = NewTask([this](rill_task *self) {
    if (rill_task_cancel_requested(self) == 1) {
      log.push_back(std::string("sleeper cancelled: ") + rill_task_cancel_message(self));
      FinishCancelled(self);
    } else {
      log.push_back("sleeper sleeps");
      EXPECT_EQ(rill_task_sleep(self, 5), RILL_OK);
    }
  });
  EXPECT_EQ(rill_task_cancel_message(sleeper), nullptr);
  rill_task *stays = NewTask([](rill_task *self) { rill_task_sleep(self, 5); });
  ASSERT_EQ(rill_task_set_name(stays, "still-sleeping"), RILL_OK);
  rill_task *coro = Spawn([this] {
    int rc = rill_sleep(5);
    log.push_back(std::string("coroutine woke: ") + rill_err_name(rc) + ", " +
                  rill_task_cancel_message(rill_current_task()));
    return rc;
  });
  ASSERT_EQ(rill_task_set_name(coro, "coro"), RILL_OK);
  rill_task *coro_stays = Spawn([] { return rill_sleep(5); });
  EXPECT_EQ(rill_loop_run_once(loop, 0), 4);
  EXPECT_EQ(rill_task_cancel(sleeper, "wake up"), 1);
  EXPECT_EQ(rill_task_cancel(coro, "you too"), 1);
  EXPECT_STREQ(rill_task_cancel_message(sleeper), "wake up");
  EXPECT_EQ(rill_loop_run_once(loop, 0), 2);
  EXPECT_EQ(log, (std::vector<std::string>{"sleeper sleeps", "sleeper cancelled: wake up",
                                           "coroutine woke: RILL_ECANCELLED, you too"}));
  EXPECT_EQ(rill_future_state(rill_task_future(sleeper)), RILL_CANCELLED);
  EXPECT_STREQ(rill_future_error_message(rill_task_future(sleeper)), "wake up");
  EXPECT_EQ(rill_future_state(rill_task_future(coro)), RILL_CANCELLED);
  EXPECT_STREQ(rill_task_name(coro), "coro");
  EXPECT_THAT(rill_task_name(sleeper), StartsWith("Task-"));
  EXPECT_EQ(rill_loop_task_count(loop), 2);
  CloseLoop();
  auto r = TakeReportMessages();
  ASSERT_EQ(r.size(), 2u) << ::testing::PrintToString(r);
  EXPECT_THAT(r[0], HasSubstr("still-sleeping"));
  EXPECT_THAT(r[1], HasSubstr("destroyed"));
  rill_task_release(sleeper);
  rill_task_release(stays);
  rill_task_release(coro);
  rill_task_release(coro_stays);
}

TEST_F(Task, CancelWinsAgainstACompletionInTheSameIteration) {
  // The awaited future completes and the task is cancelled before it could
  // resume: the cancel must not be lost (python/cpython #86296).
  rill_future *f = NewFuture();
  int n = 0;
  rill_task *t = NewTask([&](rill_task *self) {
    if (n++ == 0) return (void)rill_task_wait(self, f);
    log.push_back(std::string("resumed, cancel_requested=") +
                  std::to_string(rill_task_cancel_requested(self)));
    FinishCancelled(self);
  });
  EXPECT_EQ(rill_loop_run_once(loop, 0), 1);
  Soon([&] {
    rill_future_set_int(f, 1);
    EXPECT_EQ(rill_task_cancel(t, nullptr), 1);
  });
  Run();
  EXPECT_EQ(log, (std::vector<std::string>{"resumed, cancel_requested=1"}));
  EXPECT_EQ(rill_future_state(rill_task_future(t)), RILL_CANCELLED);
  rill_task_release(t);
  rill_future_release(f);
}
