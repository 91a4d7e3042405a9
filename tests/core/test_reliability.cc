// test_reliability.cc - regression tests for the contract breaks found by
// the hostile test pass of issue 17: use-after-free at close and around
// handles and steps, early timers, lost cancel messages, recursion in the
// core, -inf timeouts, rill_loop_free inside a callback, the arena giving
// memory back, the stack size accepted twice, coroutine stack overflow.
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>
#include <valgrind/valgrind.h>

#include <cstring>

#include "rill_test.h"

using namespace rilltest;

namespace {

bool UnderSanitizerOrValgrind() {
#if defined(__SANITIZE_ADDRESS__)
  return true;
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
  return true;
#endif
#endif
  return RUNNING_ON_VALGRIND != 0;
}

class Reliability : public RillTest {};

// ---- use-after-free (a): the close path --------------------------------

TEST_F(Reliability, HandlerCompletingAwaitedFutureAtCloseIsSafe) {
  rill_future *f = NewFuture();
  rill_task *t = NewTask([&](rill_task *self) { ASSERT_EQ(rill_task_wait(self, f), RILL_OK); });
  ASSERT_EQ(rill_loop_run_once(loop, 0), 1);
  rill_task_release(t);  // only the loop holds it: close frees it
  // A handler that reacts to "destroyed while pending" by completing the
  // future the task awaits.
  struct Ctx {
    rill_future *f;
    int calls = 0;
  } ctx{f};
  rill_loop_set_exception_handler(
      loop,
      [](rill_loop *, const char *msg, rill_future *, void *a) {
        auto *c = static_cast<Ctx *>(a);
        c->calls++;
        if (strstr(msg, "destroyed while pending")) rill_future_set_int(c->f, 7);
      },
      &ctx, nullptr);
  CloseLoop();
  EXPECT_EQ(ctx.calls, 1);
  EXPECT_EQ(rill_future_state(f), RILL_DONE);
  rill_future_release(f);
}

TEST_F(Reliability, HandlerCancellingTheTaskAtCloseIsSafe) {
  rill_future *f = NewFuture();
  rill_task *sleeper = NewTask([&](rill_task *self) { ASSERT_EQ(rill_task_sleep(self, 10), RILL_OK); });
  rill_task *waiter = NewTask([&](rill_task *self) { ASSERT_EQ(rill_task_wait(self, f), RILL_OK); });
  ASSERT_EQ(rill_loop_run_once(loop, 0), 2);
  rill_task_release(sleeper);  // only the loop holds them: close frees them
  rill_task_release(waiter);
  static int calls;
  calls = 0;
  rill_loop_set_exception_handler(
      loop,
      [](rill_loop *, const char *, rill_future *fut, void *) {
        calls++;
        if (rill_task *t = rill_task_from_future(fut)) rill_task_cancel(t, "bye");
      },
      nullptr, nullptr);
  CloseLoop();
  EXPECT_EQ(calls, 2);
  rill_future_release(f);
}

// ---- use-after-free (b): a callback cancelling its own handle ----------

struct SelfCancel {
  rill_handle *h = nullptr;
  int value = 41;
  int freed = 0;
  int seen = 0;
};

TEST_F(Reliability, CallSoonCallbackCancellingItsOwnHandleKeepsItsArg) {
  SelfCancel sc;
  sc.h = rill_call_soon(
      loop,
      [](void *a) {
        auto *s = static_cast<SelfCancel *>(a);
        rill_handle_cancel(s->h);
        EXPECT_EQ(s->freed, 0) << "free_arg ran while the callback was running";
        s->seen = s->value + 1;
      },
      &sc, [](void *a) { static_cast<SelfCancel *>(a)->freed++; });
  ASSERT_NE(sc.h, nullptr);
  Run();
  EXPECT_EQ(sc.seen, 42);
  EXPECT_EQ(sc.freed, 1);
  EXPECT_EQ(rill_handle_cancelled(sc.h), 1);
  rill_handle_release(sc.h);
}

TEST_F(Reliability, CallLaterCallbackCancellingItsOwnHandleKeepsItsArg) {
  SelfCancel sc;
  sc.h = rill_call_later(
      loop, 0.001,
      [](void *a) {
        auto *s = static_cast<SelfCancel *>(a);
        rill_handle_cancel(s->h);
        rill_handle_cancel(s->h);  // twice: still once
        EXPECT_EQ(s->freed, 0) << "free_arg ran while the callback was running";
        s->seen = s->value + 1;
      },
      &sc, [](void *a) { static_cast<SelfCancel *>(a)->freed++; });
  ASSERT_NE(sc.h, nullptr);
  Run();
  EXPECT_EQ(sc.seen, 42);
  EXPECT_EQ(sc.freed, 1);
  rill_handle_release(sc.h);
}

// ---- use-after-free (c): arranging then completing in one step ---------

TEST_F(Reliability, StepThatWaitsThenCompletesItsFutureIsRefused) {
  rill_future *f = NewFuture();
  int steps = 0;
  rill_task *t = NewTask([&](rill_task *self) {
    if (steps++ == 0) {
      ASSERT_EQ(rill_task_wait(self, f), RILL_OK);
      EXPECT_FAILS_WITH(rill_future_set_int(rill_task_future(self), 1), RILL_ESTATE);
      Tracked *p = Track("payload");
      EXPECT_FAILS_WITH(rill_future_fail(rill_task_future(self), -1000, "x", p, TrackedFree, nullptr),
                        RILL_ESTATE);
    } else {
      ASSERT_EQ(rill_future_set_int(rill_task_future(self), 2), RILL_OK);
    }
  });
  Later(0.001, [&] { rill_future_set_none(f); });
  Run();
  int64_t v = 0;
  EXPECT_EQ(rill_future_int(rill_task_future(t), &v), RILL_OK);
  EXPECT_EQ(v, 2);
  EXPECT_EQ(steps, 2);
  rill_task_release(t);
  rill_future_release(f);
}

TEST_F(Reliability, StepThatYieldsThenCompletesItsFutureIsRefused) {
  int steps = 0;
  rill_task *t = NewTask([&](rill_task *self) {
    if (steps++ == 0) {
      ASSERT_EQ(rill_task_yield(self), RILL_OK);
      EXPECT_FAILS_WITH(rill_future_set_none(rill_task_future(self)), RILL_ESTATE);
    } else {
      rill_future_set_none(rill_task_future(self));
    }
  });
  Run();
  EXPECT_EQ(rill_future_state(rill_task_future(t)), RILL_DONE);
  EXPECT_EQ(steps, 2);
  rill_task_release(t);
}

TEST_F(Reliability, StepThatSleepsThenCompletesItsFutureIsRefused) {
  int steps = 0;
  rill_task *t = NewTask([&](rill_task *self) {
    if (steps++ == 0) {
      ASSERT_EQ(rill_task_sleep(self, 0.001), RILL_OK);
      EXPECT_FAILS_WITH(rill_future_set_bool(rill_task_future(self), 1), RILL_ESTATE);
    } else {
      rill_future_set_none(rill_task_future(self));
    }
  });
  Run();
  EXPECT_EQ(rill_future_state(rill_task_future(t)), RILL_DONE);
  EXPECT_EQ(steps, 2);
  rill_task_release(t);
}

// ---- timers never fire early ---------------------------------------------

TEST_F(Reliability, SleepCancelledAndUncancelledInOneIterationDeliversTheCancel) {
  double t0 = 0, t1 = 0;
  int rc = 1;
  rill_task *sleeper = Spawn([&] {
    t0 = MonoNow();
    rc = rill_sleep(0.5);
    t1 = MonoNow();
    return 0;
  });
  Later(0.05, [&] {
    // What a timeout scope or a task group does within one iteration.
    EXPECT_EQ(rill_task_cancel(sleeper, nullptr), 1);
    EXPECT_EQ(rill_task_uncancel(sleeper), 0);
  });
  Run();
  // asyncio: the sleep's future was cancelled, so CancelledError reaches
  // the coroutine; never RILL_OK before the 0.5 s are up.
  EXPECT_EQ(rc, RILL_ECANCELLED);
  EXPECT_LT(t1 - t0, 0.5);
  rill_task_release(sleeper);
}

TEST_F(Reliability, SleepUncancelledNeverReturnsOkEarly) {
  // Step-task form: a sleeping step task woken by a cancel that is then
  // withdrawn is told it was cancelled, not that the time is up.
  double t0 = MonoNow();
  int cancelled_seen = -1, steps = 0;
  double woke = 0;
  rill_task *t = NewTask([&](rill_task *self) {
    if (steps++ == 0) {
      ASSERT_EQ(rill_task_sleep(self, 0.3), RILL_OK);
      return;
    }
    woke = MonoNow();
    cancelled_seen = rill_task_cancel_requested(self);
    rill_future_set_none(rill_task_future(self));
  });
  Later(0.02, [&] {
    rill_task_cancel(t, nullptr);
    rill_task_uncancel(t);
  });
  Run();
  EXPECT_EQ(cancelled_seen, 1) << "woke after " << woke - t0;
  rill_task_release(t);
}

// ---- the cancel message through wait_for ---------------------------------

TEST_F(Reliability, CancelMessageReachesThroughWaitFor) {
  rill_future *inner = NewFuture();
  rill_future *w = nullptr;
  std::string inner_msg, outer_msg;
  rill_task *t = Spawn([&] {
    w = rill_wait_for(loop, inner, 10);
    EXPECT_NE(w, nullptr);
    int rc = rill_await(w);
    EXPECT_EQ(rc, RILL_ECANCELLED);
    return rc;
  });
  Later(0.001, [&] { EXPECT_EQ(rill_task_cancel(t, "why"), 1); });
  EXPECT_EQ(rill_loop_run_until(loop, rill_task_future(t)), RILL_ECANCELLED);
  ASSERT_NE(w, nullptr);
  EXPECT_STREQ(rill_future_error_message(w), "why");
  EXPECT_STREQ(rill_future_error_message(inner), "why");
  EXPECT_STREQ(rill_future_error_message(rill_task_future(t)), "why");
  rill_future_release(w);
  rill_future_release(inner);
  rill_task_release(t);
}

// ---- recursion in the core -----------------------------------------------

TEST_F(Reliability, CancelThroughDeepChainOfAwaitingTasksInSmallStack) {
  ASSERT_EQ(rill_loop_set_stack_size(loop, 32 * 1024), RILL_OK);
  const int depth = 50000;
  std::vector<rill_task *> chain;
  rill_future *bottom = NewFuture();
  // chain[i] awaits chain[i+1]; the last awaits `bottom`.
  for (int i = 0; i < depth; i++) {
    chain.push_back(NewTask([&, i](rill_task *self) {
      rill_future *next = i + 1 < depth ? rill_task_future(chain[i + 1]) : bottom;
      if (!rill_future_done(next)) {
        ASSERT_EQ(rill_task_wait(self, next), RILL_OK);
      } else if (rill_future_state(next) == RILL_CANCELLED) {  // pass the cancel on
        rill_future_fail(rill_task_future(self), RILL_ECANCELLED, nullptr, nullptr, nullptr, nullptr);
      } else {
        rill_future_set_none(rill_task_future(self));
      }
    }));
  }
  ASSERT_EQ(rill_loop_run_once(loop, 0), depth);
  int rc = 1;
  rill_task *canceller = Spawn([&] {
    rc = rill_task_cancel(chain[0], "deep");  // one call, 50,000 levels
    return 0;
  });
  Run();
  EXPECT_EQ(rc, 1);
  EXPECT_EQ(rill_future_state(bottom), RILL_CANCELLED);
  EXPECT_STREQ(rill_future_error_message(bottom), "deep");
  EXPECT_EQ(rill_future_state(rill_task_future(chain[0])), RILL_CANCELLED);
  for (auto *t : chain) rill_task_release(t);
  rill_task_release(canceller);
  rill_future_release(bottom);
}

TEST_F(Reliability, ReleasingA300kChainOfFuturesIsIterative) {
  const int depth = 300000;
  rill_future *base = NewFuture();
  ASSERT_EQ(rill_future_set_int(base, 5), RILL_OK);
  // Each shield of a done future copies its outcome with `source` (and
  // `inner`) pointing at the one below: releasing the top frees the whole
  // chain.
  rill_future *top = rill_future_retain(base);
  for (int i = 0; i < depth; i++) {
    rill_future *s = rill_shield(loop, top);
    ASSERT_NE(s, nullptr);
    rill_future_release(top);
    top = s;
  }
  rill_future_release(base);
  int64_t v = 0;
  EXPECT_EQ(rill_future_int(top, &v), RILL_OK);
  EXPECT_EQ(v, 5);
  rill_future_release(top);  // 300,000 levels
}

// ---- -inf timeouts expire at once ---------------------------------------

TEST_F(Reliability, NegativeInfinityTimeoutInWaitExpiresAtOnce) {
  rill_future *f = NewFuture();
  rill_future *w = rill_wait(loop, 1, &f, RILL_WAIT_ALL, -INFINITY);
  ASSERT_NE(w, nullptr);
  EXPECT_EQ(rill_loop_run_until(loop, w), RILL_OK);
  EXPECT_EQ(rill_future_state(f), RILL_PENDING);
  rill_future_release(w);
  rill_future_release(f);
}

TEST_F(Reliability, NegativeInfinityTimeoutScopeExpiresAtOnce) {
  int rc = RillTest::RunMain([&] {
    rill_timeout *to = rill_timeout_new(rill_current_task(), -INFINITY);
    EXPECT_NE(to, nullptr);
    int r = rill_sleep(5);
    r = rill_timeout_exit(to, r);
    EXPECT_EQ(rill_timeout_expired(to), 1);
    rill_timeout_release(to);
    return r;
  });
  EXPECT_EQ(rc, RILL_ETIMEDOUT);
}

TEST_F(Reliability, NegativeInfinityRescheduleExpiresAtOnce) {
  int rc = RillTest::RunMain([&] {
    rill_timeout *to = rill_timeout_new(rill_current_task(), RILL_FOREVER);
    EXPECT_EQ(rill_timeout_reschedule(to, -INFINITY), RILL_OK);
    int r = rill_timeout_exit(to, rill_sleep(5));
    rill_timeout_release(to);
    return r;
  });
  EXPECT_EQ(rc, RILL_ETIMEDOUT);
}

TEST_F(Reliability, NegativeInfinitySleepFutureCompletesAtOnce) {
  rill_future *s = rill_sleep_future(loop, -INFINITY);
  ASSERT_NE(s, nullptr);
  double t0 = MonoNow();
  EXPECT_EQ(rill_loop_run_until(loop, s), RILL_OK);
  EXPECT_LT(MonoNow() - t0, 1.0);
  rill_future_release(s);
}

TEST_F(Reliability, NegativeInfinityWaitForTimesOutAtOnce) {
  rill_future *f = NewFuture();
  rill_future *w = rill_wait_for(loop, f, -INFINITY);
  ASSERT_NE(w, nullptr);
  EXPECT_EQ(rill_loop_run_until(loop, w), RILL_ETIMEDOUT);
  rill_future_release(w);
  rill_future_release(f);
}

// ---- rill_loop_free inside a callback ------------------------------------

TEST(ReliabilityLoop, LoopFreeInsideCallbackIsDeferredUntilTheRunReturns) {
  rill_loop *l = rill_loop_new();
  ASSERT_NE(l, nullptr);
  static int handler_freed, later_ran, freed_args;
  handler_freed = later_ran = freed_args = 0;
  rill_loop_set_exception_handler(
      l, [](rill_loop *, const char *, rill_future *, void *) {}, nullptr,
      [](void *) { handler_freed++; });
  rill_handle_release(rill_call_soon(
      l, [](void *a) { rill_loop_free(static_cast<rill_loop *>(a)); }, l, nullptr));
  rill_handle_release(rill_call_later(
      l, 5, [](void *) { later_ran++; }, nullptr, [](void *) { freed_args++; }));
  double t0 = MonoNow();
  EXPECT_EQ(rill_loop_run(l), RILL_OK);  // stops at once; l is freed on return
  EXPECT_LT(MonoNow() - t0, 1.0);
  EXPECT_EQ(handler_freed, 1) << "the loop was not closed and freed";
  EXPECT_EQ(freed_args, 1);
  EXPECT_EQ(later_ran, 0);
}

TEST(ReliabilityLoop, LoopCloseInsideCallbackIsRefusedWithEbusy) {
  rill_loop *l = rill_loop_new();
  ASSERT_NE(l, nullptr);
  static int rc;
  rc = 0;
  rill_handle_release(rill_call_soon(
      l, [](void *a) { rc = rill_loop_close(static_cast<rill_loop *>(a)); }, l, nullptr));
  EXPECT_EQ(rill_loop_run(l), RILL_OK);
  EXPECT_EQ(rc, RILL_EBUSY);
  EXPECT_EQ(rill_loop_close(l), RILL_OK);
  rill_loop_free(l);
}

// ---- the stack size, accepted twice --------------------------------------

TEST_F(Reliability, StackSizeAcceptedOnceIsAcceptedAgain) {
  ASSERT_EQ(rill_loop_set_stack_size(loop, 16 * 1024 + 1), RILL_OK);
  EXPECT_EQ(RunMain([] { return 0; }), RILL_OK);  // the pool now exists
  EXPECT_EQ(rill_loop_set_stack_size(loop, 16 * 1024 + 1), RILL_OK);
  EXPECT_EQ(rill_loop_set_stack_size(loop, 20 * 1024), RILL_OK);  // same pages
  EXPECT_FAILS_WITH(rill_loop_set_stack_size(loop, 64 * 1024), RILL_ESTATE);
}

// ---- the arena gives memory back -----------------------------------------

TEST(ReliabilityArena, MemoryOfReleasedFuturesServesOtherObjects) {
  if (UnderSanitizerOrValgrind()) GTEST_SKIP() << "the arena is off under ASan/valgrind";
  pid_t pid = fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    // A 256 MiB address-space budget above what the process maps now.
    size_t mapped = 0;
    if (FILE *f = fopen("/proc/self/statm", "r")) {
      unsigned long pages = 0;
      if (fscanf(f, "%lu", &pages) == 1) mapped = pages * (size_t)sysconf(_SC_PAGESIZE);
      fclose(f);
    }
    std::vector<rill_future *> futs;
    futs.reserve(4 << 20);
    struct rlimit rl = {mapped + ((size_t)256 << 20), mapped + ((size_t)256 << 20)};
    if (setrlimit(RLIMIT_AS, &rl) != 0) _exit(10);
    rill_loop *l = rill_loop_new();
    if (!l) _exit(11);
    for (;;) {  // fill the budget with futures
      rill_future *f = rill_future_new(l);
      if (!f) break;
      futs.push_back(f);
    }
    if (rill_last_error() != RILL_ENOMEM || futs.size() < 100000) _exit(12);
    for (auto *f : futs) rill_future_release(f);
    // A task is of another size class: it needs the chunks given back.
    for (int i = 0; i < 1000; i++) {
      rill_task *t = rill_task_new(
          l, [](rill_task *s, void *) { rill_future_set_none(rill_task_future(s)); }, nullptr,
          nullptr);
      if (!t) _exit(13);
      rill_task_release(t);
    }
    if (rill_loop_run(l) != RILL_OK) _exit(14);
    rill_loop_free(l);
    _exit(0);
  }
  int status = 0;
  ASSERT_EQ(waitpid(pid, &status, 0), pid);
  ASSERT_TRUE(WIFEXITED(status)) << "child died with signal " << WTERMSIG(status);
  EXPECT_EQ(WEXITSTATUS(status), 0) << "10: setrlimit, 11: loop, 12: fill, 13: task, 14: run";
}

// Without huge pages (Ruby turns them off for its process), the arena has
// the kernel fill a chunk's pages 64 KiB ahead of the carving instead of
// taking a fault per page; and never further than that.
TEST(ReliabilityArena, WithoutHugePagesPagesAreFilledAheadOfTheCarving) {
  if (UnderSanitizerOrValgrind()) GTEST_SKIP() << "the arena is off under ASan/valgrind";
  pid_t pid = fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    const size_t page = (size_t)sysconf(_SC_PAGESIZE), chunk = (size_t)2 << 20;
    // A kernel without MADV_POPULATE_WRITE (before 5.14): nothing to check.
    void *probe = mmap(nullptr, page, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (probe == MAP_FAILED) _exit(10);
    if (madvise(probe, page, 23 /* MADV_POPULATE_WRITE */) != 0) _exit(77);
    munmap(probe, page);
    if (prctl(PR_SET_THP_DISABLE, 1, 0, 0, 0) != 0) _exit(77);
    rill_loop *l = rill_loop_new();
    if (!l) _exit(11);
    std::vector<rill_future *> futs;
    futs.push_back(rill_future_new(l));
    char *base = (char *)((uintptr_t)futs[0] & ~(uintptr_t)(chunk - 1));
    auto resident = [&](size_t off) {
      unsigned char v = 0;
      return mincore(base + off, page, &v) == 0 && (v & 1);
    };
    for (size_t off = 0; off < (64 << 10); off += page)
      if (!resident(off)) _exit(12);  // filled ahead of the first object
    if (resident(256 << 10)) _exit(13);  // but not the whole chunk
    // Carve past 600 KiB of the chunk: the filling follows the carving.
    while ((char *)futs.back() < base + (600 << 10)) {
      rill_future *f = rill_future_new(l);
      if (!f || (char *)f < base || (char *)f >= base + chunk) _exit(14);
      futs.push_back(f);
    }
    for (size_t off = 0; off < (600 << 10); off += page)
      if (!resident(off)) _exit(15);
    if (resident(1 << 20)) _exit(16);
    for (auto *f : futs) rill_future_release(f);
    rill_loop_free(l);
    _exit(0);
  }
  int status = 0;
  ASSERT_EQ(waitpid(pid, &status, 0), pid);
  ASSERT_TRUE(WIFEXITED(status)) << "child died with signal " << WTERMSIG(status);
  if (WEXITSTATUS(status) == 77) GTEST_SKIP() << "no MADV_POPULATE_WRITE or PR_SET_THP_DISABLE here";
  EXPECT_EQ(WEXITSTATUS(status), 0)
      << "10: mmap, 11: loop, 12: first 64 KiB not filled, 13: filled too far, 14: future, "
         "15: carved pages not filled, 16: filled too far after carving";
}

// ---- coroutine stack overflow --------------------------------------------

__attribute__((noinline)) int Deep(int n) {
  volatile char pad[1024];
  pad[0] = (char)n;
  pad[1023] = (char)n;
  return n ? Deep(n - 1) + pad[0] + pad[1023] : 0;
}

void OverflowInDebugMode() {
  rill_loop *l = rill_loop_new();
  rill_loop_set_debug(l, 1);
  rill_loop_set_stack_size(l, 64 * 1024);
  // Two coroutines, so the overflowing one has a neighbour below it.
  rill_task *a = rill_spawn(l, [](void *) { return rill_sleep(0.01); }, nullptr);
  rill_task *b = rill_spawn(l, [](void *) { return Deep(80) + rill_sleep(0.01); }, nullptr);
  rill_loop_run(l);
  (void)a;
  (void)b;
}

TEST(ReliabilityDeath, StackOverflowInDebugModeIsReportedAtTheSwitch) {
  if (UnderSanitizerOrValgrind()) GTEST_SKIP() << "ASan/valgrind see the overflow first";
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  EXPECT_DEATH(OverflowInDebugMode(), "stack overflow in coroutine task");
}

}  // namespace

namespace {

class ReliabilityRetrieve : public RillTest {};

// Python's spurious "failure was never retrieved" after a KeyboardInterrupt
// in a child: the awaiting task is cancelled after the child it awaits
// failed; its wake-up counts as reading the failure (asyncio's __wakeup
// calls future.result() before throwing CancelledError in).
TEST_F(ReliabilityRetrieve, AwaiterCancelledAfterItsAwaitedTaskFailedRetrievesTheFailure) {
  rill_task *child = NewTask([](rill_task *self) {
    rill_future_fail(rill_task_future(self), -1000, "boom", nullptr, nullptr, nullptr);
  });
  int steps = 0, cancel_seen = -1;
  rill_task *parent = NewTask([&](rill_task *self) {
    if (steps++ == 0) {
      ASSERT_EQ(rill_task_wait(self, rill_task_future(child)), RILL_OK);
      return;
    }
    cancel_seen = rill_task_cancel_requested(self);
    rill_future_fail(rill_task_future(self), RILL_ECANCELLED, nullptr, nullptr, nullptr, nullptr);
  });
  rill_task_release(child);  // only the parent reads it
  ASSERT_EQ(rill_loop_run_once(loop, 0), 2);  // both step; child fails, parent's wake queued
  EXPECT_EQ(rill_task_cancel(parent, nullptr), 1);  // child done: the cancel waits for the step
  Run();
  EXPECT_EQ(cancel_seen, 1);
  EXPECT_EQ(rill_future_state(rill_task_future(parent)), RILL_CANCELLED);
  rill_task_release(parent);
  // TearDown: no "never retrieved" report.
}

}  // namespace
