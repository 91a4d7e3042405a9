// wait_for, timeout scopes, shield, wait. (asyncio groups H, I)
#include "rill_test.h"

using namespace rilltest;

using WaitFor = RillTest;
using Timeout = RillTest;
using Shield = RillTest;
using Wait = RillTest;

static const std::string kCancelled = std::to_string(RILL_ECANCELLED);
static const std::string kTimedOut = std::to_string(RILL_ETIMEDOUT);

static int64_t IntOf(rill_future *f) {
  int64_t v = -1;
  EXPECT_EQ(rill_future_int(f, &v), RILL_OK);
  return v;
}

// ---- wait_for ----

TEST_F(WaitFor, InnerResultInTime) {
  rill_task *inner = Spawn([] {
    int rc = rill_sleep(0.01);
    rill_future_set_int(rill_task_future(rill_current_task()), 5);
    return rc;
  });
  rill_future *w = rill_wait_for(loop, rill_task_future(inner), 1.0);
  ASSERT_NE(w, nullptr);
  double t0 = MonoNow();
  EXPECT_EQ(rill_loop_run_until(loop, w), RILL_OK);
  EXPECT_LT(MonoNow() - t0, 0.5);
  EXPECT_EQ(rill_future_state(w), RILL_DONE);
  EXPECT_EQ(IntOf(w), 5) << "the inner outcome";
  rill_future_release(w);
  rill_task_release(inner);
}

TEST_F(WaitFor, InnerFailureIsTheOutcome) {
  static const int tag = 0;
  Tracked *payload = Track("inner payload");
  rill_future *inner = NewFuture();
  rill_future *w = rill_wait_for(loop, inner, 1.0);
  Later(0.005, [&] { rill_future_fail(inner, -1000, "inner broke", payload, TrackedFree, &tag); });
  EXPECT_EQ(rill_loop_run_until(loop, w), -1000);
  EXPECT_STREQ(rill_future_error_message(w), "inner broke");
  EXPECT_EQ(rill_future_error_payload(w, &tag), payload);
  rill_future_release(w);
  rill_future_release(inner);
}

TEST_F(WaitFor, ExpiryCancelsTheInnerWaitsForItThenTimesOut) {
  rill_task *inner = Spawn([this] {
    int rc = rill_sleep(10.0);
    log.push_back("inner sees " + std::to_string(rc));
    rill_sleep(0.03);  // cleanup takes a while; wait_for must wait for it
    log.push_back("inner cleaned up");
    return rc;
  });
  double t0 = MonoNow();
  EXPECT_EQ(RunMain([&] {
              rill_future *w = rill_wait_for(loop, rill_task_future(inner), 0.02);
              int rc = rill_await(w);
              log.push_back("awaiter got " + std::to_string(rc));
              EXPECT_EQ(rill_future_state(w), RILL_FAILED);
              rill_future_release(w);
              return 0;
            }),
            RILL_OK);
  double dt = MonoNow() - t0;
  EXPECT_EQ(log, (std::vector<std::string>{"inner sees " + kCancelled, "inner cleaned up",
                                           "awaiter got " + kTimedOut}));
  EXPECT_GE(dt, 0.05);
  EXPECT_LT(dt, 0.05 + LateSlack());
  EXPECT_EQ(rill_future_state(rill_task_future(inner)), RILL_CANCELLED);
  rill_task_release(inner);
}

TEST_F(WaitFor, ZeroTimeoutOnAPendingFutureTimesOut) {
  rill_future *inner = NewFuture();
  rill_future *w = rill_wait_for(loop, inner, 0);
  EXPECT_EQ(rill_loop_run_until(loop, w), RILL_ETIMEDOUT);
  EXPECT_EQ(rill_future_state(inner), RILL_CANCELLED);
  rill_future_release(w);
  rill_future_release(inner);
}

TEST_F(WaitFor, ZeroTimeoutOnADoneFutureGivesItsOutcome) {
  rill_future *inner = NewFuture();
  rill_future_set_int(inner, 8);
  rill_future *w = rill_wait_for(loop, inner, 0);
  EXPECT_EQ(rill_loop_run_until(loop, w), RILL_OK);
  EXPECT_EQ(IntOf(w), 8);
  rill_future_release(w);
  rill_future_release(inner);
}

TEST_F(WaitFor, ForeverNeverTimesOut) {
  rill_future *inner = NewFuture();
  rill_future *w = rill_wait_for(loop, inner, RILL_FOREVER);
  Later(0.1, [&] { rill_future_set_int(inner, 1); });
  EXPECT_EQ(rill_loop_run_until(loop, w), RILL_OK);
  EXPECT_EQ(IntOf(w), 1);
  rill_future_release(w);
  rill_future_release(inner);
}

TEST_F(WaitFor, InnerThatCatchesTheCancelAndFinishesGivesItsOutcome) {
  rill_task *inner = Spawn([this] {
    int rc = rill_sleep(10.0);
    log.push_back("inner caught " + std::to_string(rc));
    rill_future_set_int(rill_task_future(rill_current_task()), 9);
    return RILL_OK;
  });
  rill_future *w = rill_wait_for(loop, rill_task_future(inner), 0.01);
  EXPECT_EQ(rill_loop_run_until(loop, w), RILL_OK);
  EXPECT_EQ(log, (std::vector<std::string>{"inner caught " + kCancelled}));
  EXPECT_EQ(IntOf(w), 9);
  rill_future_release(w);
  rill_task_release(inner);
}

TEST_F(WaitFor, CancellingItCancelsTheInner) {
  rill_future *inner = NewFuture();
  rill_future *w = rill_wait_for(loop, inner, 10.0);
  EXPECT_EQ(rill_future_cancel(w), 1);
  EXPECT_EQ(rill_future_state(inner), RILL_CANCELLED);
  EXPECT_EQ(rill_loop_run_until(loop, w), RILL_ECANCELLED);
  EXPECT_EQ(rill_future_state(w), RILL_CANCELLED);
  rill_future_release(w);
  rill_future_release(inner);
}

TEST_F(WaitFor, DoesNotKeepTheLoopAliveAfterTheInnerFinished) {
  rill_future *inner = NewFuture();
  rill_future *w = rill_wait_for(loop, inner, 5.0);
  rill_future_set_none(inner);
  double t0 = MonoNow();
  Run();
  EXPECT_LT(MonoNow() - t0, 1.0) << "the deadline timer went with the inner's completion";
  EXPECT_EQ(rill_future_state(w), RILL_DONE);
  rill_future_release(w);
  rill_future_release(inner);
}

TEST_F(WaitFor, CancelOfTheAwaiterWinsAgainstTheInnerCompletingInTheSameIteration) {
  // python/cpython #86296: wait_for must not lose the awaiter's cancel when
  // the inner future completes in the same iteration.
  rill_future *inner = NewFuture();
  rill_task *t = Spawn([&] {
    rill_future *w = rill_wait_for(loop, inner, 10.0);
    int rc = rill_await(w);
    log.push_back("await gave " + std::to_string(rc));
    rill_future_release(w);
    return rc;
  });
  EXPECT_EQ(rill_loop_run_once(loop, 0), 1);
  Soon([&] {
    rill_future_set_int(inner, 1);
    EXPECT_EQ(rill_task_cancel(t, nullptr), 1);
  });
  EXPECT_EQ(rill_loop_run_until(loop, rill_task_future(t)), RILL_ECANCELLED);
  EXPECT_EQ(log, (std::vector<std::string>{"await gave " + kCancelled}));
  rill_task_release(t);
  rill_future_release(inner);
}

// ---- timeout scopes (asyncio.timeout) ----

TEST_F(Timeout, ExpiryCancelsTheTaskAndExitTurnsItIntoETimedOut) {
  double t0 = MonoNow();
  EXPECT_EQ(RunMain([&] {
              rill_task *self = rill_current_task();
              rill_timeout *to = rill_timeout_new(self, 0.02);
              EXPECT_NE(to, nullptr);
              int rc = rill_sleep(10.0);
              log.push_back("body got " + std::to_string(rc));
              EXPECT_EQ(rill_timeout_expired(to), 1);
              rc = rill_timeout_exit(to, rc);
              log.push_back("exit gave " + std::to_string(rc));
              EXPECT_EQ(rill_task_cancelling(self), 0) << "the scope's own cancel is undone";
              rill_timeout_release(to);
              EXPECT_EQ(rill_sleep(0.001), RILL_OK) << "no cancel left over";
              return 0;
            }),
            RILL_OK);
  double dt = MonoNow() - t0;
  EXPECT_EQ(log, (std::vector<std::string>{"body got " + kCancelled, "exit gave " + kTimedOut}));
  EXPECT_GE(dt, 0.02);
  EXPECT_LT(dt, 0.02 + LateSlack());
}

TEST_F(Timeout, BodyFinishingInTimeExitsWithItsCode) {
  EXPECT_EQ(RunMain([&] {
              rill_timeout *to = rill_timeout_new(rill_current_task(), 0.05);
              EXPECT_EQ(rill_sleep(0.005), RILL_OK);
              EXPECT_EQ(rill_timeout_expired(to), 0);
              EXPECT_EQ(rill_timeout_exit(to, RILL_OK), RILL_OK);
              rill_timeout_release(to);
              to = rill_timeout_new(rill_current_task(), 0.05);
              EXPECT_EQ(rill_timeout_exit(to, -1000), -1000) << "rc passes through";
              rill_timeout_release(to);
              EXPECT_EQ(rill_sleep(0.1), RILL_OK) << "exit disarmed it";
              return 0;
            }),
            RILL_OK);
}

TEST_F(Timeout, NestedScopesAreIndependent) {
  double t0 = MonoNow();
  EXPECT_EQ(RunMain([&] {
              rill_task *self = rill_current_task();
              rill_timeout *outer = rill_timeout_new(self, 0.1);
              rill_timeout *inner = rill_timeout_new(self, 0.02);
              int rc = rill_sleep(10.0);
              rc = rill_timeout_exit(inner, rc);
              log.push_back("inner scope gave " + std::to_string(rc) + " at " +
                            (MonoNow() - t0 >= 0.02 ? ">=0.02" : "<0.02"));
              EXPECT_EQ(rill_timeout_expired(inner), 1);
              EXPECT_EQ(rill_timeout_expired(outer), 0);
              rc = rill_sleep(10.0);  // the outer one still fires
              rc = rill_timeout_exit(outer, rc);
              log.push_back("outer scope gave " + std::to_string(rc) + " at " +
                            (MonoNow() - t0 >= 0.1 ? ">=0.1" : "<0.1"));
              EXPECT_EQ(rill_timeout_expired(outer), 1);
              rill_timeout_release(inner);
              rill_timeout_release(outer);
              return 0;
            }),
            RILL_OK);
  EXPECT_EQ(log, (std::vector<std::string>{"inner scope gave " + kTimedOut + " at >=0.02",
                                           "outer scope gave " + kTimedOut + " at >=0.1"}));
  EXPECT_LT(MonoNow() - t0, 0.1 + LateSlack());
}

TEST_F(Timeout, OuterExpiryIsNotTheInnerScopesTimeout) {
  EXPECT_EQ(RunMain([&] {
              rill_task *self = rill_current_task();
              rill_timeout *outer = rill_timeout_new(self, 0.02);
              rill_timeout *inner = rill_timeout_new(self, 10.0);
              int rc = rill_sleep(10.0);
              rc = rill_timeout_exit(inner, rc);
              log.push_back("inner scope gave " + std::to_string(rc));
              rc = rill_timeout_exit(outer, rc);
              log.push_back("outer scope gave " + std::to_string(rc));
              EXPECT_EQ(rill_timeout_expired(inner), 0);
              rill_timeout_release(inner);
              rill_timeout_release(outer);
              return 0;
            }),
            RILL_OK);
  EXPECT_EQ(log, (std::vector<std::string>{"inner scope gave " + kCancelled,
                                           "outer scope gave " + kTimedOut}));
}

TEST_F(Timeout, BodySwallowingTheCancelMeansNoTimeoutButExpired) {
  EXPECT_EQ(RunMain([&] {
              rill_timeout *to = rill_timeout_new(rill_current_task(), 0.01);
              int rc = rill_sleep(10.0);
              log.push_back("swallowed " + std::to_string(rc));
              EXPECT_EQ(rill_timeout_exit(to, RILL_OK), RILL_OK);
              EXPECT_EQ(rill_timeout_expired(to), 1);
              rill_timeout_release(to);
              return 0;
            }),
            RILL_OK);
  EXPECT_EQ(log, (std::vector<std::string>{"swallowed " + kCancelled}));
}

TEST_F(Timeout, RescheduleMovesTheDeadline) {
  double t0 = MonoNow();
  EXPECT_EQ(RunMain([&] {
              rill_timeout *to = rill_timeout_new(rill_current_task(), 0.02);
              EXPECT_EQ(rill_timeout_reschedule(to, 0.2), RILL_OK);
              EXPECT_EQ(rill_sleep(0.05), RILL_OK) << "the old deadline is gone";
              EXPECT_EQ(rill_timeout_reschedule(to, 0.01), RILL_OK);
              int rc = rill_sleep(10.0);
              EXPECT_EQ(rc, RILL_ECANCELLED);
              EXPECT_EQ(rill_timeout_exit(to, rc), RILL_ETIMEDOUT);
              EXPECT_FAILS_WITH(rill_timeout_reschedule(to, 1.0), RILL_ESTATE);
              rill_timeout_release(to);
              return 0;
            }),
            RILL_OK);
  double dt = MonoNow() - t0;
  EXPECT_GE(dt, 0.06);
  EXPECT_LT(dt, 0.06 + LateSlack());
}

TEST_F(Timeout, RescheduleForeverDisablesIt) {
  EXPECT_EQ(RunMain([&] {
              rill_timeout *to = rill_timeout_new(rill_current_task(), 0.01);
              EXPECT_EQ(rill_timeout_reschedule(to, RILL_FOREVER), RILL_OK);
              EXPECT_EQ(rill_sleep(0.05), RILL_OK);
              EXPECT_EQ(rill_timeout_expired(to), 0);
              EXPECT_EQ(rill_timeout_exit(to, RILL_OK), RILL_OK);
              EXPECT_FAILS_WITH(rill_timeout_reschedule(to, 1.0), RILL_ESTATE);
              rill_timeout_release(to);
              return 0;
            }),
            RILL_OK);
}

TEST_F(Timeout, ForeverScopeNeverFires) {
  EXPECT_EQ(RunMain([&] {
              rill_timeout *to = rill_timeout_new(rill_current_task(), RILL_FOREVER);
              EXPECT_NE(to, nullptr);
              EXPECT_EQ(rill_sleep(0.02), RILL_OK);
              EXPECT_EQ(rill_timeout_exit(to, RILL_OK), RILL_OK);
              rill_timeout_release(to);
              return 0;
            }),
            RILL_OK);
}

TEST_F(Timeout, ZeroDelayWithoutAnAwaitExitsClean) {
  EXPECT_EQ(RunMain([&] {
              rill_timeout *to = rill_timeout_new(rill_current_task(), 0);
              EXPECT_EQ(rill_timeout_exit(to, RILL_OK), RILL_OK);
              rill_timeout_release(to);
              EXPECT_EQ(rill_sleep(0.01), RILL_OK) << "no cancel was left behind";
              return 0;
            }),
            RILL_OK);
}

TEST_F(Timeout, ZeroDelayWithAnAwaitTimesOut) {
  EXPECT_EQ(RunMain([&] {
              rill_timeout *to = rill_timeout_new(rill_current_task(), 0);
              int rc = rill_sleep(0.01);
              EXPECT_EQ(rc, RILL_ECANCELLED);
              EXPECT_EQ(rill_timeout_exit(to, rc), RILL_ETIMEDOUT);
              rill_timeout_release(to);
              return 0;
            }),
            RILL_OK);
}

TEST_F(Timeout, AnOutsideCancelIsNotATimeout) {
  rill_task *t = Spawn([&] {
    rill_timeout *to = rill_timeout_new(rill_current_task(), 0.05);
    int rc = rill_sleep(10.0);
    rc = rill_timeout_exit(to, rc);
    log.push_back("exit gave " + std::to_string(rc));
    EXPECT_EQ(rill_timeout_expired(to), 0);
    rill_timeout_release(to);
    return rc;
  });
  Later(0.01, [&] { rill_task_cancel(t, nullptr); });
  EXPECT_EQ(rill_loop_run_until(loop, rill_task_future(t)), RILL_ECANCELLED);
  EXPECT_EQ(log, (std::vector<std::string>{"exit gave " + kCancelled}));
  EXPECT_EQ(rill_future_state(rill_task_future(t)), RILL_CANCELLED);
  rill_task_release(t);
}

TEST_F(Timeout, ScopeReleasedWithoutExitNoLongerFires) {
  EXPECT_EQ(RunMain([&] {
              rill_timeout *to = rill_timeout_new(rill_current_task(), 0.02);
              EXPECT_EQ(rill_timeout_exit(to, RILL_OK), RILL_OK);
              rill_timeout_release(to);
              EXPECT_EQ(rill_sleep(0.05), RILL_OK);
              return 0;
            }),
            RILL_OK);
}

// ---- shield ----

TEST_F(Shield, CancellingTheOuterLeavesTheInnerRunning) {
  rill_task *inner = Spawn([this] {
    int rc = rill_sleep(0.03);
    log.push_back("inner finished with " + std::to_string(rc));
    rill_future_set_int(rill_task_future(rill_current_task()), 4);
    return rc;
  });
  rill_task *awaiter = Spawn([&] {
    rill_future *s = rill_shield(loop, rill_task_future(inner));
    int rc = rill_await(s);
    log.push_back("awaiter got " + std::to_string(rc));
    rill_future_release(s);
    return rc;
  });
  Later(0.01, [&] { rill_task_cancel(awaiter, nullptr); });
  EXPECT_EQ(rill_loop_run_until(loop, rill_task_future(awaiter)), RILL_ECANCELLED);
  EXPECT_EQ(rill_future_state(rill_task_future(inner)), RILL_PENDING);
  Run();
  EXPECT_EQ(log, (std::vector<std::string>{"awaiter got " + kCancelled, "inner finished with 0"}));
  EXPECT_EQ(IntOf(rill_task_future(inner)), 4);
  rill_task_release(inner);
  rill_task_release(awaiter);
}

TEST_F(Shield, CancelOnTheShieldDoesNotReachTheInner) {
  rill_future *inner = NewFuture();
  rill_future *s = rill_shield(loop, inner);
  ASSERT_NE(s, nullptr);
  EXPECT_EQ(rill_future_cancel(s), 1);
  EXPECT_EQ(rill_future_state(s), RILL_CANCELLED);
  EXPECT_EQ(rill_future_state(inner), RILL_PENDING);
  rill_future_set_int(inner, 1);
  Run();
  EXPECT_EQ(rill_future_state(s), RILL_CANCELLED);
  rill_future_release(s);
  rill_future_release(inner);
}

TEST_F(Shield, ShieldHasTheInnerOutcome) {
  rill_future *inner = NewFuture();
  rill_future *s = rill_shield(loop, inner);
  Later(0.005, [&] { rill_future_set_int(inner, 12); });
  EXPECT_EQ(rill_loop_run_until(loop, s), RILL_OK);
  EXPECT_EQ(IntOf(s), 12);
  rill_future *inner2 = NewFuture();
  rill_future *s2 = rill_shield(loop, inner2);
  rill_future_fail(inner2, -1003, "inner", nullptr, nullptr, nullptr);
  EXPECT_EQ(rill_loop_run_until(loop, s2), -1003);
  for (auto *f : {s, inner, s2, inner2}) rill_future_release(f);
}

TEST_F(Shield, InnerFailingAfterTheOuterWasCancelledIsReportedNotLost) {
  // rill's decision (stronger than asyncio H8): nobody will read the inner
  // failure, so it is reported at a fixed point.
  rill_task *inner = Spawn([] {
    rill_sleep(0.02);
    return -1000;
  });
  rill_future *s = rill_shield(loop, rill_task_future(inner));
  rill_task_release(inner);
  EXPECT_EQ(rill_future_cancel(s), 1);
  Run();
  rill_future_release(s);
  CloseLoop();
  EXPECT_EQ(TakeReports().size(), 1u);
}

// ---- wait ----

TEST_F(Wait, FirstCompletedIsDoneWhenOneIs) {
  rill_future *f[3] = {NewFuture(), NewFuture(), NewFuture()};
  rill_future *w = rill_wait(loop, 3, f, RILL_WAIT_FIRST_COMPLETED, RILL_FOREVER);
  ASSERT_NE(w, nullptr);
  Later(0.01, [&] { rill_future_set_int(f[1], 2); });
  EXPECT_EQ(rill_loop_run_until(loop, w), RILL_OK);
  EXPECT_EQ(rill_future_kind(w), RILL_NONE);
  ASSERT_EQ(rill_gather_count(w), 3u);
  for (size_t i = 0; i < 3; i++) EXPECT_EQ(rill_gather_child(w, i), f[i]);
  EXPECT_EQ(rill_future_state(f[0]), RILL_PENDING) << "not cancelled";
  EXPECT_EQ(rill_future_state(f[1]), RILL_DONE);
  EXPECT_EQ(rill_future_state(f[2]), RILL_PENDING);
  rill_future_release(w);
  for (auto *x : f) rill_future_release(x);
}

TEST_F(Wait, FirstErrorIsDoneAtTheFirstFailure) {
  rill_future *f[3] = {NewFuture(), NewFuture(), NewFuture()};
  rill_future *w = rill_wait(loop, 3, f, RILL_WAIT_FIRST_ERROR, RILL_FOREVER);
  Later(0.005, [&] {
    rill_future_set_int(f[0], 1);
    log.push_back("f0 done");
  });
  Later(0.02, [&] {
    rill_future_fail(f[1], -1000, "f1", nullptr, nullptr, nullptr);
    log.push_back("f1 failed");
  });
  OnDone(w, [this](rill_future *) { log.push_back("wait done"); });
  EXPECT_EQ(rill_loop_run_until(loop, w), RILL_OK) << "wait never fails";
  Run();
  EXPECT_EQ(log, (std::vector<std::string>{"f0 done", "f1 failed", "wait done"}));
  EXPECT_EQ(rill_future_state(f[2]), RILL_PENDING);
  EXPECT_EQ(rill_future_error(f[1]), -1000);
  rill_future_release(w);
  for (auto *x : f) rill_future_release(x);
}

TEST_F(Wait, FirstErrorWithoutFailuresWaitsForAll) {
  rill_future *f[2] = {NewFuture(), NewFuture()};
  rill_future *w = rill_wait(loop, 2, f, RILL_WAIT_FIRST_ERROR, RILL_FOREVER);
  Later(0.005, [&] {
    rill_future_set_int(f[0], 1);
    log.push_back("f0 done");
  });
  Later(0.02, [&] {
    rill_future_set_int(f[1], 2);
    log.push_back("f1 done");
  });
  OnDone(w, [this](rill_future *) { log.push_back("wait done"); });
  Run();
  EXPECT_EQ(log, (std::vector<std::string>{"f0 done", "f1 done", "wait done"}));
  rill_future_release(w);
  for (auto *x : f) rill_future_release(x);
}

TEST_F(Wait, AllWaitsForEveryFutureWhateverTheOutcome) {
  rill_future *f[3] = {NewFuture(), NewFuture(), NewFuture()};
  rill_future *w = rill_wait(loop, 3, f, RILL_WAIT_ALL, RILL_FOREVER);
  Later(0.005, [&] { rill_future_fail(f[0], -1000, "x", nullptr, nullptr, nullptr); });
  Later(0.01, [&] { rill_future_cancel(f[1]); });
  Later(0.02, [&] {
    rill_future_set_none(f[2]);
    log.push_back("last done");
  });
  OnDone(w, [this](rill_future *) { log.push_back("wait done"); });
  EXPECT_EQ(rill_loop_run_until(loop, w), RILL_OK);
  Run();
  EXPECT_EQ(log, (std::vector<std::string>{"last done", "wait done"}));
  EXPECT_EQ(rill_future_state(w), RILL_DONE);
  EXPECT_EQ(rill_future_error(f[0]), -1000);
  rill_future_release(w);
  for (auto *x : f) rill_future_release(x);
}

TEST_F(Wait, TimeoutNeitherFailsNorCancels) {
  rill_future *f[2] = {NewFuture(), NewFuture()};
  double base = rill_loop_time(loop);
  double t0 = MonoNow();
  rill_future *w = rill_wait(loop, 2, f, RILL_WAIT_ALL, 0.02);
  EXPECT_EQ(rill_loop_run_until(loop, w), RILL_OK);
  EXPECT_GE(MonoNow(), base + 0.02) << "never early on the loop clock";
  EXPECT_LT(MonoNow() - t0, 0.02 + LateSlack());
  EXPECT_EQ(rill_future_state(w), RILL_DONE);
  EXPECT_EQ(rill_future_state(f[0]), RILL_PENDING);
  EXPECT_EQ(rill_future_state(f[1]), RILL_PENDING);
  rill_future_release(w);
  for (auto *x : f) rill_future_release(x);
}

TEST_F(Wait, CancellingTheWaitDoesNotCancelTheFutures) {
  rill_future *f[2] = {NewFuture(), NewFuture()};
  rill_future *w = rill_wait(loop, 2, f, RILL_WAIT_ALL, RILL_FOREVER);
  EXPECT_EQ(rill_future_cancel(w), 1);
  Run();
  EXPECT_EQ(rill_future_state(f[0]), RILL_PENDING);
  EXPECT_EQ(rill_future_state(f[1]), RILL_PENDING);
  rill_future_release(w);
  for (auto *x : f) rill_future_release(x);
}

TEST_F(Wait, ZeroFuturesIsEInval) {
  rill_future *none[1] = {nullptr};
  EXPECT_NULL_WITH(rill_wait(loop, 0, none, RILL_WAIT_ALL, RILL_FOREVER), RILL_EINVAL);
}

TEST_F(Wait, AwaitedFromACoroutine) {
  rill_future *f[2] = {NewFuture(), NewFuture()};
  Later(0.01, [&] { rill_future_set_int(f[0], 1); });
  EXPECT_EQ(RunMain([&] {
              rill_future *w = rill_wait(loop, 2, f, RILL_WAIT_FIRST_COMPLETED, 1.0);
              int rc = rill_await(w);
              log.push_back("wait gave " + std::to_string(rc));
              rill_future_release(w);
              return rc;
            }),
            RILL_OK);
  EXPECT_EQ(log, (std::vector<std::string>{"wait gave 0"}));
  for (auto *x : f) rill_future_release(x);
}
