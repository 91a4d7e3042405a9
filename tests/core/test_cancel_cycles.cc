// Cancelling through a wait cycle: a task awaiting a gather of itself, two
// tasks awaiting each other. Passing the cancel on would never end (asyncio
// recurses until RecursionError); rill stops at the task it started from,
// which then sees the cancel at its await point, and the cycle unwinds.
#include "rill_test.h"

using namespace rilltest;

using CancelCycle = RillTest;

static rill_future *CurrentFuture() { return rill_task_future(rill_current_task()); }

TEST_F(CancelCycle, TaskAwaitingAGatherOfItselfEndsCancelled) {
  rill_future *g = nullptr;
  int await_rc = 1;
  rill_task *t = Spawn([&] {
    rill_future *self = CurrentFuture();
    g = rill_gather(loop, 1, &self, 0);
    await_rc = rill_await(g);
    log.push_back("after await");
    return await_rc;
  });
  ASSERT_GE(rill_loop_run_once(loop, 0), 1); // the task now awaits g
  ASSERT_NE(g, nullptr);
  EXPECT_EQ(rill_task_cancel(t, "stop"), 1);
  EXPECT_EQ(rill_task_cancelling(t), 1); // one request, counted once
  for (int i = 0; i < 10 && rill_future_state(g) == RILL_PENDING; i++) rill_loop_run_once(loop, 0);
  EXPECT_EQ(await_rc, RILL_ECANCELLED);
  EXPECT_EQ(rill_future_state(rill_task_future(t)), RILL_CANCELLED);
  EXPECT_EQ(rill_future_state(g), RILL_CANCELLED);
  EXPECT_EQ(log, (std::vector<std::string>{"after await"}));
  rill_future_release(g);
  rill_task_release(t);
}

TEST_F(CancelCycle, TwoTasksAwaitingEachOtherBothEnd) {
  rill_task *a = nullptr, *b = nullptr;
  int rc_a = 1, rc_b = 1;
  a = Spawn([&] {
    rc_a = rill_await(rill_task_future(b));
    return rc_a;
  });
  b = Spawn([&] {
    rc_b = rill_await(rill_task_future(a));
    return rc_b;
  });
  ASSERT_GE(rill_loop_run_once(loop, 0), 2); // a awaits b, b awaits a
  EXPECT_EQ(rill_task_cancel(a, "stop"), 1);
  for (int i = 0; i < 10 && !(rill_future_done(rill_task_future(a)) &&
                              rill_future_done(rill_task_future(b)));
       i++)
    rill_loop_run_once(loop, 0);
  EXPECT_EQ(rc_a, RILL_ECANCELLED);
  EXPECT_EQ(rill_future_state(rill_task_future(a)), RILL_CANCELLED);
  // b was cancelled on the way (it awaited a), or saw a end cancelled.
  EXPECT_EQ(rc_b, RILL_ECANCELLED);
  EXPECT_EQ(rill_future_state(rill_task_future(b)), RILL_CANCELLED);
  rill_task_release(a);
  rill_task_release(b);
}

TEST_F(CancelCycle, StepTaskAwaitingAGatherOfItselfSeesTheCancelInItsNextStep) {
  rill_future *g = nullptr;
  std::vector<int> seen;
  rill_task *t = NewTask([&](rill_task *self) {
    seen.push_back(rill_task_cancel_requested(self));
    if (!g) {
      rill_future *f = rill_task_future(self);
      g = rill_gather(loop, 1, &f, 0);
      ASSERT_EQ(rill_task_wait(self, g), RILL_OK);
      return;
    }
    rill_future_fail(rill_task_future(self), RILL_ECANCELLED, nullptr, nullptr, nullptr, nullptr);
  });
  rill_loop_run_once(loop, 0);
  EXPECT_EQ(rill_task_cancel(t, nullptr), 1);
  for (int i = 0; i < 10 && rill_future_state(g) == RILL_PENDING; i++) rill_loop_run_once(loop, 0);
  EXPECT_EQ(seen, (std::vector<int>{0, 1}));
  EXPECT_EQ(rill_future_state(g), RILL_CANCELLED);
  rill_future_release(g);
  rill_task_release(t);
}

TEST_F(CancelCycle, ShutdownUnwindsACycleInsteadOfHanging) {
  rill_future *g = nullptr;
  rill_task *t = Spawn([&] {
    rill_future *self = CurrentFuture();
    g = rill_gather(loop, 1, &self, 0);
    return rill_await(g);
  });
  rill_loop_run_once(loop, 0);
  EXPECT_EQ(rill_loop_shutdown(loop), RILL_OK); // cancels every task, runs until done
  EXPECT_EQ(rill_loop_task_count(loop), 0);
  rill_future_release(g);
  rill_task_release(t);
}
