// The 1.1 semantics bindings share: group exit (asyncio's
// TaskGroup.__aexit__), cancel before the first step, per-binding state and
// exception handlers keyed by a tag, the lifetime of a failure's views, and
// the 1.1 names.
#include <cmath>
#include <cstring>

#include "rill_test.h"

using namespace rilltest;

static const int kTagA = 0, kTagB = 0;
static const std::string kCancelled = std::to_string(RILL_ECANCELLED);

// ---------------------------------------------------------------------
// Group exit

class GroupExit : public RillTest {
 protected:
  // A child that sleeps secs and returns code; when cancelled it returns
  // on_cancel (0: the cancel itself).
  rill_task *Child(rill_group *g, const std::string &name, double secs, int code,
                   int on_cancel = 0) {
    rill_task *t = rill_group_spawn(g, CoroRun, NewCoro([this, name, secs, code, on_cancel] {
                                      int rc = rill_sleep(secs);
                                      log.push_back(name + " got " + std::to_string(rc));
                                      if (rc == RILL_ECANCELLED) return on_cancel ? on_cancel : rc;
                                      return code;
                                    }));
    EXPECT_NE(t, nullptr) << rill_last_error_message();
    return t;
  }
  // The exit's error list as names: children by their code, "body".
  std::vector<std::string> Errors(rill_group *g) {
    std::vector<std::string> out;
    for (size_t i = 0; i < rill_group_exit_error_count(g); i++) {
      rill_task *child = nullptr;
      int r = rill_group_exit_error(g, i, &child);
      if (r == 1) out.push_back(std::to_string(rill_future_error(rill_task_future(child))));
      else if (r == 0 && child == nullptr) out.push_back("body");
      else out.push_back("bad entry");
    }
    return out;
  }
};

TEST_F(GroupExit, ChildrenErrorsInFailureOrderThenTheBodysOwn) {
  EXPECT_EQ(RunMain([&] {
              rill_group *g = rill_group_new(loop, rill_current_task());
              rill_task *c1 = Child(g, "c1", 0.01, -1001);
              rill_task *c2 = Child(g, "c2", 10.0, 0, -1002);  // fails when cancelled
              int rc = rill_sleep(10.0);
              log.push_back("body got " + std::to_string(rc));
              // The body fails in its clean-up after the group's cancel.
              rc = rill_group_exit_await(g, -1003);
              log.push_back("exit gave " + std::to_string(rc));
              EXPECT_EQ(Errors(g), (std::vector<std::string>{"-1001", "-1002", "body"}));
              EXPECT_EQ(rill_group_exit_result(g, 0), rc) << "the same on later calls";
              EXPECT_EQ(rill_task_cancelling(rill_current_task()), 0) << "the group's cancel undone";
              rill_task_release(c1);
              rill_task_release(c2);
              rill_group_release(g);
              return 0;
            }),
            RILL_OK);
  ASSERT_EQ(log.size(), 4u);
  EXPECT_EQ(log[0], "c1 got 0");
  EXPECT_EQ(log[3], "exit gave " + std::to_string(RILL_EGROUP));
}

TEST_F(GroupExit, TheGroupsOwnCancelOfTheBodyIsNotInTheList) {
  EXPECT_EQ(RunMain([&] {
              rill_group *g = rill_group_new(loop, rill_current_task());
              rill_task *c1 = Child(g, "c1", 0.01, -1001);
              int rc = rill_sleep(10.0);
              EXPECT_EQ(rc, RILL_ECANCELLED);
              EXPECT_EQ(rill_group_exit_await(g, rc), RILL_EGROUP);
              EXPECT_EQ(Errors(g), (std::vector<std::string>{"-1001"}));
              rill_task_release(c1);
              rill_group_release(g);
              return 0;
            }),
            RILL_OK);
}

// A step-driven binding awaits the exit future once: a cancel from outside
// while it waits does not end it early; the outcome says "propagate".
TEST_F(GroupExit, OutsideCancelIsAbsorbedAwaitedOnceAndPropagates) {
  rill_group *g = nullptr;
  rill_future *exit = nullptr;
  rill_task *child = nullptr;
  rill_task *parent = NewTask([&](rill_task *self) {
    if (!g) {
      g = rill_group_new(loop, self);
      child = Child(g, "child", 10.0, 0, 0);
      exit = rill_group_exit(g, RILL_OK);
      ASSERT_NE(exit, nullptr);
      EXPECT_EQ(rill_task_resume_on(self, exit), RILL_OK);
      return;
    }
    log.push_back("resumed: exit state " + std::to_string(rill_future_state(exit)) +
                  ", cancel delivered " + std::to_string(rill_task_is_cancel_requested(self)));
    int rc = rill_group_exit_result(g, rill_task_is_cancel_requested(self) ? RILL_ECANCELLED : 0);
    log.push_back("result " + std::to_string(rc));
    rill_future_fail(rill_task_future(self), rc, nullptr, nullptr, nullptr, nullptr);
  });
  Later(0.01, [&] {
    EXPECT_EQ(rill_task_cancel(parent, "stop"), 1);
    EXPECT_EQ(rill_future_state(exit), RILL_PENDING) << "absorbed: the child still runs";
  });
  EXPECT_EQ(rill_loop_run_until(loop, rill_task_future(parent)), RILL_ECANCELLED);
  EXPECT_EQ(log, (std::vector<std::string>{"child got " + kCancelled,
                                           "resumed: exit state 1, cancel delivered 0",
                                           "result " + kCancelled}));
  EXPECT_EQ(rill_group_exit_error_count(g), 0u);
  rill_task_release(child);
  rill_task_release(parent);
  rill_group_release(g);
}

// asyncio: a CancelledError out of `await on_completed_fut` after it was
// done still counts as a cancel from outside.
TEST_F(GroupExit, CancelDeliveredAtTheAwaitAfterTheExitWasDonePropagates) {
  rill_group *g = rill_group_new(loop, nullptr);
  rill_future *exit = rill_group_exit(g, RILL_OK);
  ASSERT_NE(exit, nullptr);
  EXPECT_EQ(rill_future_state(exit), RILL_DONE) << "no children: done at once";
  EXPECT_EQ(rill_group_exit_result(g, RILL_ECANCELLED), RILL_ECANCELLED);
  rill_group_release(g);
}

TEST_F(GroupExit, CleanExitGivesOkAndAnEmptyList) {
  EXPECT_EQ(RunMain([&] {
              rill_group *g = rill_group_new(loop, rill_current_task());
              rill_task *c = Child(g, "c", 0.01, 0);
              EXPECT_EQ(rill_group_exit_await(g, RILL_OK), RILL_OK);
              EXPECT_EQ(rill_group_exit_error_count(g), 0u);
              rill_task_release(c);
              rill_group_release(g);
              return 0;
            }),
            RILL_OK);
  EXPECT_EQ(log, (std::vector<std::string>{"c got 0"}));
}

TEST_F(GroupExit, BodyCancelledFromOutsidePropagates) {
  rill_task *main_task = nullptr;
  Later(0.01, [&] { rill_task_cancel(main_task, nullptr); });
  main_task = Spawn([&] {
    rill_group *g = rill_group_new(loop, rill_current_task());
    rill_task *c = Child(g, "c", 10.0, 0);
    int rc = rill_sleep(10.0);
    rc = rill_group_exit_await(g, rc);
    log.push_back("exit gave " + std::to_string(rc));
    rill_task_release(c);
    rill_group_release(g);
    return rc;
  });
  EXPECT_EQ(rill_loop_run_until(loop, rill_task_future(main_task)), RILL_ECANCELLED);
  EXPECT_EQ(log, (std::vector<std::string>{"c got " + kCancelled, "exit gave " + kCancelled}));
  rill_task_release(main_task);
}

TEST_F(GroupExit, BadInput) {
  EXPECT_NULL_WITH(rill_group_exit(nullptr, 0), RILL_EINVAL);
  EXPECT_FAILS_WITH(rill_group_exit_result(nullptr, 0), RILL_EINVAL);
  EXPECT_EQ(rill_group_exit_error_count(nullptr), 0u);
  rill_task *child = nullptr;
  EXPECT_FAILS_WITH(rill_group_exit_error(nullptr, 0, &child), RILL_EINVAL);
  EXPECT_FAILS_WITH(rill_group_exit_await(nullptr, 0), RILL_EINVAL);

  rill_group *g = rill_group_new(loop, nullptr);
  EXPECT_FAILS_WITH(rill_group_exit_result(g, 0), RILL_ESTATE);  // not exited
  EXPECT_NULL_WITH(rill_group_exit(g, 1), RILL_EINVAL);
  rill_task *c = NewTask([](rill_task *self) {
    if (rill_task_cancel_requested(self))
      rill_future_fail(rill_task_future(self), RILL_ECANCELLED, nullptr, nullptr, nullptr, nullptr);
    else rill_task_resume_after(self, 10.0);
  });
  ASSERT_EQ(rill_group_add(g, c), RILL_OK);
  ASSERT_NE(rill_group_exit(g, RILL_OK), nullptr);
  EXPECT_NULL_WITH(rill_group_exit(g, RILL_OK), RILL_ESTATE);  // twice
  EXPECT_FAILS_WITH(rill_group_exit_result(g, 0), RILL_ESTATE);  // children running
  EXPECT_FAILS_WITH(rill_group_exit_result(g, 3), RILL_EINVAL);
  EXPECT_FAILS_WITH(rill_group_exit_error(g, 0, nullptr), RILL_EINVAL);
  EXPECT_FAILS_WITH(rill_group_exit_error(g, 0, &child), RILL_EINVAL);  // empty list
  EXPECT_FAILS_WITH(rill_group_exit_await(g, 0), RILL_ESTATE);  // outside a coroutine
  rill_task_cancel(c, nullptr);
  Run();
  EXPECT_EQ(rill_group_exit_result(g, 0), RILL_OK);
  rill_task_release(c);
  rill_group_release(g);

  rill_group *joined = rill_group_new(loop, nullptr);
  ASSERT_NE(rill_group_join(joined, 0), nullptr);
  EXPECT_NULL_WITH(rill_group_exit(joined, 0), RILL_ESTATE);  // left through join
  EXPECT_FAILS_WITH(rill_group_exit_result(joined, 0), RILL_ESTATE);
  rill_group_release(joined);

  rill_group *late = rill_group_new(loop, nullptr);
  CloseLoop();
  EXPECT_NULL_WITH(rill_group_exit(late, 0), RILL_ECLOSED);
  rill_group_release(late);
}

// ---------------------------------------------------------------------
// Cancel before the first step

struct V2Step {
  std::vector<std::string> *log;
  int steps = 0, frees = 0;
};
static void V2Run(rill_task *t, void *a) {
  V2Step *s = static_cast<V2Step *>(a);
  s->steps++;
  s->log->push_back("step ran, cancel_requested=" + std::to_string(rill_task_cancel_requested(t)));
  if (rill_task_cancel_requested(t))
    rill_future_fail(rill_task_future(t), RILL_ECANCELLED, nullptr, nullptr, nullptr, nullptr);
  else rill_future_set_int(rill_task_future(t), 7);
}
static void V2Free(void *a) { static_cast<V2Step *>(a)->frees++; }

TEST_F(RillTest, TaskV2CancelledBeforeItsFirstStepNeverRunsIt) {
  V2Step s{&log};
  rill_task *t = rill_task_new_v2(loop, V2Run, &s, V2Free, RILL_TASK_SKIP_CANCELLED_START);
  ASSERT_NE(t, nullptr);
  EXPECT_EQ(rill_task_cancel(t, "before start"), 1);
  EXPECT_EQ(rill_loop_run_until(loop, rill_task_future(t)), RILL_ECANCELLED);
  EXPECT_EQ(s.steps, 0);
  EXPECT_EQ(s.frees, 1) << "free_arg ran: the binding drops its copies there";
  EXPECT_EQ(rill_future_state(rill_task_future(t)), RILL_CANCELLED);
  EXPECT_STREQ(rill_future_error_message(rill_task_future(t)), "before start");
  EXPECT_EQ(rill_loop_task_count(loop), 0);
  rill_task_release(t);
  EXPECT_TRUE(log.empty());
}

TEST_F(RillTest, TaskV2UncancelledBeforeItsFirstStepRuns) {
  V2Step s{&log};
  rill_task *t = rill_task_new_v2(loop, V2Run, &s, V2Free, RILL_TASK_SKIP_CANCELLED_START);
  ASSERT_NE(t, nullptr);
  EXPECT_EQ(rill_task_cancel(t, nullptr), 1);
  EXPECT_EQ(rill_task_uncancel(t), 0);
  EXPECT_EQ(rill_loop_run_until(loop, rill_task_future(t)), RILL_OK);
  EXPECT_EQ(log, (std::vector<std::string>{"step ran, cancel_requested=0"}));
  EXPECT_EQ(s.frees, 1);
  rill_task_release(t);
}

TEST_F(RillTest, TaskV2CancelAfterTheFirstStepIsToldAsUsual) {
  V2Step s{&log};
  rill_future *gate = NewFuture();
  struct Ctx {
    V2Step *s;
    rill_future *gate;
    int n = 0;
  } ctx{&s, gate};
  auto step = [](rill_task *t, void *a) {
    Ctx *c = static_cast<Ctx *>(a);
    if (c->n++ == 0) {
      rill_task_resume_on(t, c->gate);
      return;
    }
    c->s->log->push_back("step 2: gate state " + std::to_string(rill_future_state(c->gate)));
    rill_future_fail(rill_task_future(t), RILL_ECANCELLED, nullptr, nullptr, nullptr, nullptr);
  };
  rill_task *t = rill_task_new_v2(loop, step, &ctx, nullptr, RILL_TASK_SKIP_CANCELLED_START);
  ASSERT_NE(t, nullptr);
  EXPECT_EQ(rill_loop_run_once(loop, 0), 1);
  EXPECT_EQ(rill_task_cancel(t, nullptr), 1);
  EXPECT_EQ(rill_loop_run_until(loop, rill_task_future(t)), RILL_ECANCELLED);
  EXPECT_EQ(ctx.n, 2);
  EXPECT_EQ(log, (std::vector<std::string>{"step 2: gate state " + std::to_string(RILL_CANCELLED)}))
      << "the awaited gate took the cancel, as for a 1.0 task";
  rill_task_release(t);
  rill_future_release(gate);
}

TEST_F(RillTest, TaskV2WithoutFlagsIsTheOneZeroTask) {
  V2Step s{&log};
  rill_task *t = rill_task_new_v2(loop, V2Run, &s, V2Free, 0);
  ASSERT_NE(t, nullptr);
  EXPECT_EQ(rill_task_cancel(t, nullptr), 1);
  EXPECT_EQ(rill_loop_run_until(loop, rill_task_future(t)), RILL_ECANCELLED);
  EXPECT_EQ(log, (std::vector<std::string>{"step ran, cancel_requested=1"}));
  EXPECT_EQ(s.frees, 1);
  rill_task_release(t);
}

TEST_F(RillTest, TaskV2BadInput) {
  V2Step s{&log};
  EXPECT_NULL_WITH(rill_task_new_v2(nullptr, V2Run, &s, nullptr, 0), RILL_EINVAL);
  EXPECT_NULL_WITH(rill_task_new_v2(loop, nullptr, &s, nullptr, 0), RILL_EINVAL);
  EXPECT_NULL_WITH(rill_task_new_v2(loop, V2Run, &s, nullptr, 2u), RILL_EINVAL);
  EXPECT_NULL_WITH(rill_task_new_v2(ClosedLoopEnvironment::Loop(), V2Run, &s, nullptr, 0),
                   RILL_ECLOSED);
  EXPECT_EQ(s.frees, 0) << "free_arg is not called on failure";
}

// ---------------------------------------------------------------------
// A task whose state lives inside the task (rill_task_new_inline)

struct InlineState {
  std::vector<std::string> *log; // set by the test after creation
  double d;
  int64_t n;
  void *p;
};
static std::vector<std::string> *inline_log;
static void InlineRun(rill_task *t, void *a) {
  InlineState *st = static_cast<InlineState *>(a);
  st->log->push_back(std::string("step: arg is rill_task_arg ") + (a == rill_task_arg(t) ? "yes" : "no"));
  rill_future_set_int(rill_task_future(t), st->n);
}
static void InlineFree(void *a) {
  InlineState *st = static_cast<InlineState *>(a);
  inline_log->push_back("free: n=" + std::to_string(st->n));
}

TEST_F(RillTest, TaskInlineStateIsZeroedAlignedAndFreedWithTheTask) {
  inline_log = &log;
  rill_task *t = rill_task_new_inline(loop, InlineRun, sizeof(InlineState), InlineFree,
                                      RILL_TASK_SKIP_CANCELLED_START);
  ASSERT_NE(t, nullptr);
  InlineState *st = static_cast<InlineState *>(rill_task_arg(t));
  ASSERT_NE(st, nullptr);
  EXPECT_EQ(reinterpret_cast<uintptr_t>(st) % 16, 0u);
  EXPECT_EQ(st->log, nullptr);
  EXPECT_EQ(st->d, 0.0);
  EXPECT_EQ(st->n, 0);
  EXPECT_EQ(st->p, nullptr);
  st->log = &log;
  st->n = 42;
  EXPECT_EQ(rill_loop_run_until(loop, rill_task_future(t)), RILL_OK);
  int64_t result = 0;
  EXPECT_EQ(rill_future_int(rill_task_future(t), &result), RILL_OK);
  EXPECT_EQ(result, 42);
  EXPECT_EQ(log, (std::vector<std::string>{"step: arg is rill_task_arg yes", "free: n=42"}));
  EXPECT_EQ(rill_task_arg(t), st) << "the memory stays while the task is referenced";
  rill_task_release(t);
}

TEST_F(RillTest, TaskInlineCancelledBeforeItsFirstStepFreesItsState) {
  inline_log = &log;
  rill_task *t = rill_task_new_inline(loop, InlineRun, sizeof(InlineState), InlineFree,
                                      RILL_TASK_SKIP_CANCELLED_START);
  ASSERT_NE(t, nullptr);
  static_cast<InlineState *>(rill_task_arg(t))->n = 7;
  EXPECT_EQ(rill_task_cancel(t, "before start"), 1);
  EXPECT_EQ(rill_loop_run_until(loop, rill_task_future(t)), RILL_ECANCELLED);
  EXPECT_EQ(log, (std::vector<std::string>{"free: n=7"}));
  rill_task_release(t);
}

TEST_F(RillTest, TaskInlineBadInput) {
  EXPECT_NULL_WITH(rill_task_new_inline(nullptr, InlineRun, 8, nullptr, 0), RILL_EINVAL);
  EXPECT_NULL_WITH(rill_task_new_inline(loop, nullptr, 8, nullptr, 0), RILL_EINVAL);
  EXPECT_NULL_WITH(rill_task_new_inline(loop, InlineRun, 8, nullptr, 2u), RILL_EINVAL);
  EXPECT_NULL_WITH(rill_task_new_inline(loop, InlineRun, (size_t)1 << 40, nullptr, 0), RILL_EINVAL);
  EXPECT_NULL_WITH(rill_task_new_inline(ClosedLoopEnvironment::Loop(), InlineRun, 8, nullptr, 0),
                   RILL_ECLOSED);
  rill_task *t = rill_task_new_inline(loop, V2Run, 0, nullptr, RILL_TASK_SKIP_CANCELLED_START);
  ASSERT_NE(t, nullptr);
  EXPECT_EQ(rill_task_arg(t), nullptr) << "arg_size 0: no state (and the step never runs)";
  rill_task_cancel(t, nullptr);
  EXPECT_EQ(rill_loop_run_until(loop, rill_task_future(t)), RILL_ECANCELLED);
  rill_task_release(t);
}

// ---------------------------------------------------------------------
// Per-binding state and exception handlers

struct Freed {
  std::vector<std::string> *log;
  std::string name;
};
static void FreedFree(void *p) {
  Freed *f = static_cast<Freed *>(p);
  f->log->push_back("free " + f->name);
}

struct Seen {
  std::vector<std::string> *log;
  std::string who;
};
static void SeenHandler(rill_loop *, const char *message, rill_future *f, void *arg) {
  Seen *s = static_cast<Seen *>(arg);
  std::string m = message;
  if (f && rill_future_state(f) == RILL_FAILED) {
    // Reading the failure retrieves it; the views stay valid for the call.
    const char *msg = rill_future_error_message(f);
    void *payload = rill_future_error_payload(f, rill_future_owner(f));
    m += std::string(" [") + (msg ? msg : "?") + "]";
    if (payload) m += " payload " + static_cast<Freed *>(payload)->name;
  }
  s->log->push_back(s->who + ": " + m);
}

TEST_F(RillTest, BindingStatePerTagReplacedClearedAndFreedAtClose) {
  Freed a1{&log, "a1"}, a2{&log, "a2"}, b1{&log, "b1"};
  EXPECT_EQ(rill_loop_binding(loop, &kTagA), nullptr);
  EXPECT_EQ(rill_loop_set_binding(loop, &kTagA, &a1, FreedFree), RILL_OK);
  EXPECT_EQ(rill_loop_set_binding(loop, &kTagB, &b1, FreedFree), RILL_OK);
  EXPECT_EQ(rill_loop_binding(loop, &kTagA), &a1);
  EXPECT_EQ(rill_loop_binding(loop, &kTagB), &b1);
  EXPECT_EQ(rill_loop_set_binding(loop, &kTagA, &a2, FreedFree), RILL_OK);
  EXPECT_EQ(rill_loop_binding(loop, &kTagA), &a2);
  EXPECT_EQ(rill_loop_set_binding(loop, &kTagB, nullptr, nullptr), RILL_OK);
  EXPECT_EQ(rill_loop_binding(loop, &kTagB), nullptr);
  EXPECT_EQ(log, (std::vector<std::string>{"free a1", "free b1"}));
  CloseLoop();
  EXPECT_EQ(log, (std::vector<std::string>{"free a1", "free b1", "free a2"}));
  EXPECT_EQ(rill_loop_binding(loop, &kTagA), nullptr) << "gone once closed";
}

static void FailStep(rill_task *t, void *arg) {
  Freed *payload = static_cast<Freed *>(arg);
  rill_future_fail(rill_task_future(t), -1000, "boom", payload, payload ? FreedFree : nullptr,
                   payload ? &kTagB : nullptr);
}

TEST_F(RillTest, BindingHandlerGetsTheReportsOfTheFuturesItOwns) {
  Seen sa{&log, "A"}, sb{&log, "B"}, sl{&log, "loop"};
  ASSERT_EQ(rill_loop_set_binding_exception_handler(loop, &kTagA, SeenHandler, &sa, nullptr), RILL_OK);
  ASSERT_EQ(rill_loop_set_binding_exception_handler(loop, &kTagB, SeenHandler, &sb, nullptr), RILL_OK);
  ASSERT_EQ(rill_loop_set_exception_handler(loop, SeenHandler, &sl, nullptr), RILL_OK);
  // Owned by A through rill_future_set_owner.
  rill_task *ta = rill_task_new(loop, FailStep, nullptr, nullptr);
  ASSERT_EQ(rill_future_set_owner(rill_task_future(ta), &kTagA), RILL_OK);
  EXPECT_EQ(rill_future_owner(rill_task_future(ta)), &kTagA);
  rill_task_release(ta);
  EXPECT_EQ(rill_loop_run(loop), RILL_OK);
  // Owned by B through its failure's payload tag.
  Freed pb{&log, "pb"};
  rill_task *tb = rill_task_new(loop, FailStep, &pb, nullptr);
  rill_task_release(tb);
  EXPECT_EQ(rill_loop_run(loop), RILL_OK);
  // Nobody's: the loop's handler.
  rill_task *tn = rill_task_new(loop, FailStep, nullptr, nullptr);
  rill_task_release(tn);
  EXPECT_EQ(rill_loop_run(loop), RILL_OK);
  EXPECT_EQ(rill_loop_report(loop, "plain", nullptr), RILL_OK);
  // Removing B's handler sends B's reports to the loop's.
  ASSERT_EQ(rill_loop_set_binding_exception_handler(loop, &kTagB, nullptr, nullptr, nullptr), RILL_OK);
  Freed pb2{&log, "pb2"};
  rill_task *tb2 = rill_task_new(loop, FailStep, &pb2, nullptr);
  rill_task_release(tb2);
  EXPECT_EQ(rill_loop_run(loop), RILL_OK);
  ASSERT_EQ(log.size(), 7u);
  EXPECT_EQ(log[0], "A: task Task-1 failed and its failure was never retrieved [boom]");
  EXPECT_EQ(log[1], "B: task Task-2 failed and its failure was never retrieved [boom] payload pb");
  EXPECT_EQ(log[2], "free pb");
  EXPECT_EQ(log[3], "loop: task Task-3 failed and its failure was never retrieved [boom]");
  EXPECT_EQ(log[4], "loop: plain");
  EXPECT_EQ(log[5], "loop: task Task-4 failed and its failure was never retrieved [boom] payload pb2");
  EXPECT_EQ(log[6], "free pb2");
}

static int handler_frees = 0;
static void CountFree(void *) { handler_frees++; }

TEST_F(RillTest, BindingBadInput) {
  int x = 0;
  EXPECT_FAILS_WITH(rill_loop_set_binding(nullptr, &kTagA, &x, nullptr), RILL_EINVAL);
  EXPECT_FAILS_WITH(rill_loop_set_binding(loop, nullptr, &x, nullptr), RILL_EINVAL);
  EXPECT_NULL_WITH(rill_loop_binding(nullptr, &kTagA), RILL_EINVAL);
  EXPECT_FAILS_WITH(rill_loop_set_binding_exception_handler(nullptr, &kTagA, SeenHandler, &x, nullptr),
                    RILL_EINVAL);
  EXPECT_FAILS_WITH(rill_loop_set_binding_exception_handler(loop, nullptr, SeenHandler, &x, nullptr),
                    RILL_EINVAL);
  EXPECT_FAILS_WITH(rill_future_set_owner(nullptr, &kTagA), RILL_EINVAL);
  EXPECT_NULL_WITH(rill_future_owner(nullptr), RILL_EINVAL);
  rill_loop *closed = ClosedLoopEnvironment::Loop();
  EXPECT_FAILS_WITH(rill_loop_set_binding(closed, &kTagA, &x, nullptr), RILL_ECLOSED);
  EXPECT_FAILS_WITH(rill_loop_set_binding_exception_handler(closed, &kTagA, SeenHandler, &x, nullptr),
                    RILL_ECLOSED);
  EXPECT_EQ(rill_loop_binding(closed, &kTagA), nullptr);
  // Clearing what was never set is fine; a replaced handler's arg is freed.
  EXPECT_EQ(rill_loop_set_binding(loop, &kTagB, nullptr, nullptr), RILL_OK);
  handler_frees = 0;
  EXPECT_EQ(rill_loop_set_binding_exception_handler(loop, &kTagA, SeenHandler, &x, CountFree), RILL_OK);
  EXPECT_EQ(rill_loop_set_binding_exception_handler(loop, &kTagA, SeenHandler, &x, CountFree), RILL_OK);
  EXPECT_EQ(handler_frees, 1);
  rill_future *f = NewFuture();
  EXPECT_EQ(rill_future_owner(f), nullptr);
  CloseLoop();
  EXPECT_EQ(handler_frees, 2) << "close frees the last one";
  EXPECT_FAILS_WITH(rill_future_set_owner(f, &kTagA), RILL_ECLOSED);
  rill_future_release(f);
}

// ---------------------------------------------------------------------
// The lifetime of a failure's views (rill.h conventions): a handler may
// read the failure of the future it is given, at each of the three points
// where the core reports an unretrieved failure, and the core goes on
// using the future afterwards. Under valgrind/ASan a dropped reference
// here is a use after free.

class FailureView : public RillTest {
 protected:
  Seen seen{&log, "handler"};
  void SetUp() override {
    RillTest::SetUp();
    ASSERT_EQ(rill_loop_set_exception_handler(loop, SeenHandler, &seen, nullptr), RILL_OK);
  }
  rill_task *Failing(Freed *payload) {
    rill_task *t = rill_task_new(loop, FailStep, payload, nullptr);
    EXPECT_NE(t, nullptr);
    return t;
  }
};

TEST_F(FailureView, ReadInTheReportAfterTheTaskEndedNobodyHoldingIt) {
  Freed p{&log, "p"};
  rill_task_release(Failing(&p));
  Run();
  EXPECT_EQ(log, (std::vector<std::string>{
                     "handler: task Task-1 failed and its failure was never retrieved [boom] payload p",
                     "free p"}));
}

TEST_F(FailureView, ReadInTheReportAtTheLastRelease) {
  Freed p{&log, "p"};
  rill_task *t = Failing(&p);
  Run();
  EXPECT_TRUE(log.empty()) << "a holder might still read it";
  rill_task_release(t);
  EXPECT_EQ(log, (std::vector<std::string>{
                     "handler: task Task-1 failed and its failure was never retrieved [boom] payload p",
                     "free p"}));
}

TEST_F(FailureView, ReadInTheReportAtLoopClose) {
  Freed p{&log, "p"};
  rill_task *t = Failing(&p);
  Run();
  CloseLoop();
  ASSERT_EQ(log.size(), 1u);
  EXPECT_EQ(log[0], "handler: task Task-1 failed and its failure was never retrieved [boom] payload p");
  EXPECT_STREQ(rill_future_error_message(rill_task_future(t)), "boom") << "still readable";
  rill_task_release(t);
  EXPECT_EQ(log.back(), "free p");
}

TEST_F(FailureView, ReadByAGatherThroughItsSource) {
  Freed p{&log, "p"};
  rill_task *t = Failing(&p);
  rill_future *child = rill_task_future(t);
  rill_future *g = rill_gather(loop, 1, &child, 0);
  rill_task_release(t);
  EXPECT_EQ(rill_loop_run_until(loop, g), -1000);
  EXPECT_STREQ(rill_future_error_message(g), "boom");
  EXPECT_STREQ(rill_future_error_message(rill_gather_child(g, 0)), "boom") << "the gather holds it";
  rill_future_release(g);
  EXPECT_EQ(log, (std::vector<std::string>{"free p"}));
}

// ---------------------------------------------------------------------
// 1.1 names: the same answers as the 1.0 functions, bad input included.

TEST_F(RillTest, NamesOneOneAreTheOneZeroFunctions) {
  rill_future *f = NewFuture();
  EXPECT_EQ(rill_future_is_done(f), 0);
  rill_future_set_none(f);
  EXPECT_EQ(rill_future_is_done(f), rill_future_done(f));
  EXPECT_FAILS_WITH(rill_future_is_done(nullptr), RILL_EINVAL);
  EXPECT_EQ(RILL_STATE_DONE, RILL_DONE);
  EXPECT_EQ(RILL_KIND_POINTER, RILL_POINTER);
  EXPECT_EQ(rill_future_state(f), RILL_STATE_DONE);
  EXPECT_EQ(rill_future_kind(f), RILL_KIND_NONE);
  rill_handle *h = SoonH([] {});
  EXPECT_EQ(rill_handle_is_cancelled(h), 0);
  rill_handle_cancel(h);
  EXPECT_EQ(rill_handle_is_cancelled(h), 1);
  EXPECT_FAILS_WITH(rill_handle_is_cancelled(nullptr), RILL_EINVAL);
  rill_handle_release(h);
  EXPECT_EQ(rill_loop_debug(loop), rill_loop_get_debug(loop));
  EXPECT_FAILS_WITH(rill_loop_debug(nullptr), RILL_EINVAL);
  EXPECT_EQ(rill_task_current(), nullptr);
  EXPECT_STREQ(rill_error_name(RILL_ETIMEDOUT), "RILL_ETIMEDOUT");
  EXPECT_EQ(rill_error_name(-98), nullptr);
  EXPECT_FAILS_WITH(rill_timeout_is_expired(nullptr), RILL_EINVAL);
  EXPECT_FAILS_WITH(rill_task_is_cancel_requested(nullptr), RILL_EINVAL);
  EXPECT_FAILS_WITH(rill_task_resume_on(nullptr, f), RILL_EINVAL);
  EXPECT_FAILS_WITH(rill_task_resume_soon(nullptr), RILL_EINVAL);
  EXPECT_FAILS_WITH(rill_task_resume_after(nullptr, 1.0), RILL_EINVAL);
  EXPECT_EQ(rill_future_child_count(f), 0u);
  EXPECT_EQ(rill_future_child(f, 0), nullptr);
  rill_future *g = rill_gather(loop, 1, &f, 0);
  EXPECT_EQ(rill_future_child_count(g), 1u);
  EXPECT_EQ(rill_future_child(g, 0), f);
  // Inside a step: current task and the resume_* names.
  int n = 0;
  rill_task *t = NewTask([&](rill_task *self) {
    EXPECT_EQ(rill_task_current(), self);
    EXPECT_EQ(rill_task_is_cancel_requested(self), 0);
    if (n++ == 0) EXPECT_EQ(rill_task_resume_soon(self), RILL_OK);
    else if (n == 2) EXPECT_EQ(rill_task_resume_after(self, 0.001), RILL_OK);
    else if (n == 3) EXPECT_EQ(rill_task_resume_on(self, g), RILL_OK);
    else rill_future_set_none(rill_task_future(self));
  });
  EXPECT_EQ(rill_loop_run_until(loop, rill_task_future(t)), RILL_OK);
  EXPECT_EQ(n, 4);
  rill_task_release(t);
  rill_future_release(g);
  rill_future_release(f);
}
