// test_oom.cc - OOM injection, SQLite-style (issue 17, item 2).
//
// Linked with rill_fault: the core built so that every allocation (rill's
// malloc/calloc/realloc and libev's, through the allocator rill installs)
// goes through core/src/fault.c. For each scenario, N = 1, 2, ... : the Nth
// allocation fails; the scenario must still end (alarm), leak nothing (the
// live-block count returns to where it was), run every free function once,
// and every call that fails must fail with RILL_ENOMEM. The sweep of a
// scenario ends with the first N its run no longer reaches.
//
// Full command: ctest --test-dir build -L oom --output-on-failure
// (or build/tests/core/rill_oom_tests; RILL_OOM_MAX_N=k caps N).
#include <signal.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <set>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "fault.h"
#include "rill.h"

extern "C" const void *rill__fault_last_site(void);

namespace {

// ---- what a run records -----------------------------------------------
struct Run {
  std::vector<std::string> errors;
  int frees_expected = 0;
  int frees = 0;
  void Error(const std::string &e) { errors.push_back(e); }
};
Run *g_run;

void FreeCount(void *) { g_run->frees++; }

// A call failed: fine only with RILL_ENOMEM after an injected failure.
bool Failed(const char *what) {
  if (rill_last_error() != RILL_ENOMEM)
    g_run->Error(std::string(what) + " failed with " + std::to_string(rill_last_error()) + ": " +
                 rill_last_error_message());
  else if (rill__fault_failed() == 0)
    g_run->Error(std::string(what) + " said ENOMEM with no injected failure");
  return false;
}
#define NEED(expr)                 \
  do {                             \
    if (!(expr)) {                 \
      Failed(#expr);               \
      return;                      \
    }                              \
  } while (0)
// A task's or future's outcome: its value, or a failure; never ESTATE
// from a transient failure (a task left half-done).
void CheckOutcome(rill_future *f, const char *what, bool may_be_pending = false,
                  bool estate_expected = false) {
  int st = rill_future_state(f);
  if (st == RILL_PENDING) {
    if (!may_be_pending) g_run->Error(std::string(what) + " is still pending");
    return;
  }
  if (st == RILL_DONE) return;
  int code = rill_future_error(f);
  if (code == RILL_ESTATE && !estate_expected) g_run->Error(std::string(what) + " ended with RILL_ESTATE");
}

// The loop and the references a scenario holds; released however it ends.
struct Scope {
  rill_loop *loop = nullptr;
  std::vector<rill_future *> futs;
  rill_future *Hold(rill_future *f) {
    if (f) futs.push_back(f);
    return f;
  }
  ~Scope() {
    if (loop) rill_loop_close(loop);
    for (auto *f : futs) rill_future_release(f);
    rill_loop_free(loop);
  }
};

void QuietHandler(rill_loop *, const char *, rill_future *f, void *) {
  if (f) rill_future_error_message(f);  // reads (retrieves) it, as handlers do
}

// Runs the loop to the end, again after a libev ENOMEM (the loop is intact).
void RunAll(rill_loop *loop) {
  for (int i = 0; i < 100; i++) {
    int rc = rill_loop_run(loop);
    if (rc == RILL_OK) return;
    Failed("rill_loop_run");
  }
  g_run->Error("rill_loop_run kept failing");
}
int RunUntil(rill_loop *loop, rill_future *f) {
  for (int i = 0; i < 100; i++) {
    int rc = rill_loop_run_until(loop, f);
    if (rc != RILL_ENOMEM || rill_future_done(f)) return rc;
  }
  g_run->Error("rill_loop_run_until kept failing");
  return RILL_ENOMEM;
}

bool NewLoop(Scope &s) {
  s.loop = rill_loop_new();
  if (!s.loop) return Failed("rill_loop_new");
  rill_loop_set_exception_handler(s.loop, QuietHandler, nullptr, nullptr);
  return true;
}

// ---- scenarios ------------------------------------------------------------

void CallbacksScenario() {
  Scope s;
  if (!NewLoop(s)) return;
  rill_loop *loop = s.loop;
  struct Self {
    rill_handle *h;
  } self{nullptr};
  rill_handle *h = rill_call_soon(
      loop,
      [](void *a) {
        auto *me = static_cast<Self *>(a);
        rill_handle_cancel(me->h);
      },
      &self, FreeCount);
  NEED(h);
  g_run->frees_expected++;
  self.h = h;
  rill_handle *h2 = rill_call_later(loop, 0.001, [](void *) {}, nullptr, FreeCount);
  if (h2) g_run->frees_expected++;
  rill_handle_release(h);
  NEED(h2);
  rill_handle_release(h2);
  rill_future *f = s.Hold(rill_future_new(loop));
  NEED(f);
  if (rill_future_on_done(f, [](rill_future *, void *) {}, nullptr, FreeCount) == RILL_OK)
    g_run->frees_expected++;
  else
    Failed("rill_future_on_done");
  if (rill_future_set_bytes(f, "hello", 5) != RILL_OK) {
    Failed("rill_future_set_bytes");
    if (rill_future_state(f) != RILL_PENDING) g_run->Error("set_bytes failed but changed the state");
    NEED(rill_future_set_none(f) == RILL_OK);
  }
  rill_future *g = s.Hold(rill_future_new(loop));
  NEED(g);
  g_run->frees_expected++;  // the payload is freed even when fail fails
  if (rill_future_fail(g, -1000, "a message long enough to need a copy", &self, FreeCount, nullptr) !=
      RILL_OK) {
    Failed("rill_future_fail");
    if (rill_future_state(g) != RILL_PENDING) g_run->Error("fail failed but changed the state");
  }
  RunAll(loop);
  if (rill_future_state(g) == RILL_FAILED) rill_future_error_message(g);
  CheckOutcome(f, "f");
}

void TasksScenario() {
  Scope s;
  if (!NewLoop(s)) return;
  rill_loop *loop = s.loop;
  rill_future *f = s.Hold(rill_future_new(loop));
  NEED(f);
  // A step task that waits for f, then completes with a value.
  struct W {
    rill_future *f;
    int steps = 0;
  } w{f};
  rill_task *t1 = rill_task_new(
      loop,
      [](rill_task *t, void *a) {
        auto *w = static_cast<W *>(a);
        if (w->steps++ == 0 && rill_task_wait(t, w->f) == RILL_OK) return;
        rill_future_set_int(rill_task_future(t), 1);
      },
      &w, FreeCount);
  NEED(t1);
  g_run->frees_expected++;
  s.Hold(rill_task_future(t1));
  rill_task_set_name(t1, "a task with a name");
  // A step task that returns without completing: ends with RILL_ESTATE
  // even when its message cannot be copied (never stays pending).
  rill_task *t2 = rill_task_new(loop, [](rill_task *, void *) {}, nullptr, nullptr);
  NEED(t2);
  s.Hold(rill_task_future(t2));
  // A sleeping step task, cancelled with a message.
  rill_task *t3 = rill_task_new(
      loop,
      [](rill_task *t, void *) {
        if (rill_task_cancel_requested(t) == 1)
          rill_future_fail(rill_task_future(t), RILL_ECANCELLED, nullptr, nullptr, nullptr, nullptr);
        else if (rill_task_sleep(t, 5) != RILL_OK)
          rill_future_fail(rill_task_future(t), RILL_ENOMEM, nullptr, nullptr, nullptr, nullptr);
      },
      nullptr, nullptr);
  NEED(t3);
  s.Hold(rill_task_future(t3));
  rill_loop_run_once(loop, 0);
  if (rill_task_cancel(t3, "stop sleeping") < 0) {
    Failed("rill_task_cancel");  // state unchanged: cancel it without a message
    if (rill_task_cancelling(t3) != 0) g_run->Error("failed cancel changed the count");
    if (rill_task_cancel(t3, nullptr) != 1) Failed("rill_task_cancel(NULL)");
  }
  if (char *dump = rill_loop_dump_tasks(loop)) rill_free(dump);
  rill_future *parts[3] = {rill_task_future(t1), f, rill_task_future(t3)};
  rill_future *g = s.Hold(rill_gather(loop, 3, parts, RILL_GATHER_RETURN_ERRORS));
  rill_future *wt = s.Hold(rill_wait(loop, 2, parts, RILL_WAIT_FIRST_COMPLETED, 0.001));
  rill_future *wf = s.Hold(rill_wait_for(loop, f, 0.001));
  rill_future *sh = s.Hold(rill_shield(loop, f));
  rill_future *sl = s.Hold(rill_sleep_future(loop, 0.002));
  if (!g) Failed("rill_gather");
  if (!wt) Failed("rill_wait");
  if (!wf) Failed("rill_wait_for");
  if (!sh) Failed("rill_shield");
  if (!sl) Failed("rill_sleep_future");
  if (sl) RunUntil(loop, sl);
  rill_future_set_none(f);
  RunAll(loop);
  CheckOutcome(rill_task_future(t1), "t1");
  CheckOutcome(rill_task_future(t2), "t2", false, true);
  CheckOutcome(rill_task_future(t3), "t3");
  for (rill_future *x : {g, wt, wf, sh}) {
    if (!x) continue;
    CheckOutcome(x, "combinator", true);
    if (rill_future_state(x) == RILL_FAILED) rill_future_error_message(x);
  }
  if (rill_future_state(rill_task_future(t2)) == RILL_FAILED &&
      rill_future_error(rill_task_future(t2)) != RILL_ESTATE)
    g_run->Error("t2 did not end with RILL_ESTATE");
}

int Child(void *arg) {
  int what = (int)(intptr_t)arg;
  if (what == 0) return rill_sleep(0.001);
  if (what == 1) return -1000;  // fails with a message built by the core
  return rill_sleep(5);         // cancelled by the group
}

int MainCoro(void *arg) {
  rill_loop *loop = static_cast<rill_loop *>(arg);
  rill_task *self = rill_current_task();
  // A timeout scope around a long sleep.
  rill_timeout *to = rill_timeout_new(self, 0.001);
  if (to) {
    rill_timeout_exit(to, rill_sleep(5));
    rill_timeout_release(to);
  } else {
    Failed("rill_timeout_new");
  }
  // wait_for on a sleep.
  if (rill_future *sl = rill_sleep_future(loop, 5)) {
    if (rill_future *w = rill_wait_for(loop, sl, 0.001)) {
      rill_await(w);
      rill_future_release(w);
    } else {
      Failed("rill_wait_for");
    }
    rill_future_release(sl);
  } else {
    Failed("rill_sleep_future");
  }
  // A group: one child ends, one fails with -1000, one is cancelled.
  if (rill_group *grp = rill_group_new(loop, self)) {
    for (intptr_t i = 0; i < 3; i++) {
      rill_task *c = rill_group_spawn(grp, Child, (void *)i);
      if (c) rill_task_release(c);
      else Failed("rill_group_spawn");
    }
    int rc = rill_group_wait(grp, 0);
    for (size_t i = 0; i < rill_group_count(grp); i++) {
      rill_future *cf = rill_task_future(rill_group_child(grp, i));
      CheckOutcome(cf, "group child");
      if (i == 1 && rill_future_state(cf) == RILL_FAILED && rill_future_error(cf) != -1000 &&
          rill_future_error(cf) != RILL_ENOMEM)
        g_run->Error("the child returning -1000 ended with " + std::to_string(rill_future_error(cf)));
    }
    rill_group_release(grp);
    if (rc == RILL_ESTATE) g_run->Error("rill_group_wait gave RILL_ESTATE");
  } else {
    Failed("rill_group_new");
  }
  return rill_yield();
}

void CoroutinesScenario() {
  Scope s;
  if (!NewLoop(s)) return;
  rill_loop *loop = s.loop;
  rill_task *main_task = rill_spawn(loop, MainCoro, loop);
  NEED(main_task);
  s.Hold(rill_task_future(main_task));
  RunUntil(loop, rill_task_future(main_task));
  CheckOutcome(rill_task_future(main_task), "main");
}

// Arrays that grow: the timer heap past 64, a group's children past 8, a
// gather of 100, thread-safe submissions, a shutdown.
int Quick(void *) { return rill_sleep(0.001); }

void GrowthScenario() {
  Scope s;
  if (!NewLoop(s)) return;
  rill_loop *loop = s.loop;
  for (int i = 0; i < 100; i++) {
    rill_handle *h = rill_call_later(loop, 0.001 + i * 1e-5, [](void *) {}, nullptr, FreeCount);
    NEED(h);
    g_run->frees_expected++;
    rill_handle_release(h);
  }
  for (int i = 0; i < 3; i++) {
    if (rill_call_soon_threadsafe(loop, [](void *) {}, nullptr, FreeCount) == RILL_OK)
      g_run->frees_expected++;
    else
      Failed("rill_call_soon_threadsafe");
  }
  std::vector<rill_future *> futs;
  for (int i = 0; i < 100; i++) {
    rill_future *f = s.Hold(rill_future_new(loop));
    NEED(f);
    futs.push_back(f);
  }
  rill_future *g = s.Hold(rill_gather(loop, futs.size(), futs.data(), 0));
  NEED(g);
  rill_group *grp = rill_group_new(loop, nullptr);
  NEED(grp);
  for (int i = 0; i < 20; i++) {
    rill_task *c = rill_group_spawn(grp, Quick, nullptr);
    if (c) rill_task_release(c);
    else Failed("rill_group_spawn");
  }
  rill_future *j = rill_group_join(grp, 0);
  if (!j) Failed("rill_group_join");
  for (auto *f : futs) rill_future_set_none(f);
  if (j) RunUntil(loop, j);
  RunAll(loop);
  if (j && rill_future_done(j)) {
    int rc = rill_group_finish(grp, rill_future_error(j));
    if (rc != RILL_OK && rc != RILL_EGROUP) g_run->Error("group finish " + std::to_string(rc));
  }
  rill_group_release(grp);
  CheckOutcome(g, "gather");
  if (rill_loop_shutdown(loop) != RILL_OK) Failed("rill_loop_shutdown");
}

void RunScenario() {
  int rc = rill_run([](void *) { return rill_sleep(0.001); }, nullptr);
  if (rc != RILL_OK) Failed("rill_run");
}

// ---- the sweep ------------------------------------------------------------

struct Sweep {
  long runs = 0;        // values of N tried
  long failing = 0;     // runs in which a failure was injected
  std::set<const void *> sites;
};

void SweepScenario(const char *name, const std::function<void()> &scenario, Sweep &total) {
  long max_n = std::getenv("RILL_OOM_MAX_N") ? std::atol(std::getenv("RILL_OOM_MAX_N")) : 1000000;
  // A first run without failure, so one-time state (libev's allocator,
  // lazily made thread-locals) exists before counting.
  {
    Run r;
    g_run = &r;
    rill__fault_arm(0);
    scenario();
  }
  long n = 1;
  for (; n <= max_n; n++) {
    Run r;
    g_run = &r;
    long live_before = rill__fault_live();
    if (std::getenv("RILL_OOM_VERBOSE")) std::fprintf(stderr, "%s N=%ld\n", name, n);
    alarm(20);  // a hang kills the test
    rill__fault_arm(n);
    scenario();
    long injected = rill__fault_failed();
    const void *site = rill__fault_last_site();
    rill__fault_arm(0);
    alarm(0);
    total.runs++;
    long leaked = rill__fault_live() - live_before;
    EXPECT_EQ(leaked, 0) << name << ": N=" << n << " leaked " << leaked << " blocks";
    EXPECT_EQ(r.frees, r.frees_expected) << name << ": N=" << n << " free functions";
    for (auto &e : r.errors) ADD_FAILURE() << name << ": N=" << n << ": " << e;
    if (!injected) break;  // the run no longer reaches N allocations
    total.failing++;
    total.sites.insert(site);
    if (::testing::Test::HasFailure()) break;  // one N is enough to debug
  }
  std::printf("[ oom      ] %s: %ld allocation points swept\n", name, n - 1);
}

TEST(Oom, SweepEveryAllocation) {
  Sweep total;
  SweepScenario("callbacks", CallbacksScenario, total);
  SweepScenario("tasks", TasksScenario, total);
  SweepScenario("coroutines", CoroutinesScenario, total);
  SweepScenario("rill_run", RunScenario, total);
  SweepScenario("growth", GrowthScenario, total);
  std::printf("[ oom      ] %ld runs, %ld with an injected failure, %zu distinct allocation sites\n",
              total.runs, total.failing, total.sites.size());
  EXPECT_GT(total.sites.size(), 10u);
}

}  // namespace

namespace {

// libev's allocations: rill_loop_new and an iteration give RILL_ENOMEM
// instead of libev's abort.
TEST(Oom, LibevFailureInLoopNewIsEnomem) {
  long base = rill__fault_live();
  for (long n = 1; n <= 8; n++) {
    rill__fault_arm(n);
    rill_loop *l = rill_loop_new();
    long injected = rill__fault_failed();
    rill__fault_arm(0);
    if (!l) {
      EXPECT_EQ(rill_last_error(), RILL_ENOMEM) << "N=" << n;
      EXPECT_EQ(injected, 1) << "N=" << n;
    } else {
      EXPECT_EQ(injected, 0) << "N=" << n << ": a failure was swallowed";
      rill_loop_free(l);
    }
    EXPECT_EQ(rill__fault_live(), base) << "N=" << n;
  }
}

TEST(Oom, LibevFailureInsideAnIterationIsEnomemAndTheLoopGoesOn) {
  rill_loop *l = rill_loop_new();
  ASSERT_NE(l, nullptr);
  static int runs;
  runs = 0;
  rill_handle_release(rill_call_later(l, 0.001, [](void *) { runs++; }, nullptr, nullptr));
  // The first event libev delivers makes it allocate its pending array.
  rill__fault_arm(1);
  int rc = rill_loop_run(l);
  long injected = rill__fault_failed();
  rill__fault_arm(0);
  ASSERT_EQ(injected, 1) << "libev did not allocate inside the iteration";
  EXPECT_EQ(rc, RILL_ENOMEM);
  EXPECT_EQ(rill_loop_run(l), RILL_OK);
  EXPECT_EQ(runs, 1);
  rill_loop_free(l);
}

}  // namespace

namespace {

// For N = 1.. until the run no longer reaches N: body(loop) with the Nth
// allocation failing; check(loop) after; no leak.
void SweepSmall(const char *name, const std::function<void(rill_loop *)> &setup,
                const std::function<void(rill_loop *, long)> &check) {
  long n = 1;
  for (; n < 200; n++) {
    long base = rill__fault_live();
    rill_loop *l = rill_loop_new();
    ASSERT_NE(l, nullptr);
    rill_loop_set_exception_handler(l, QuietHandler, nullptr, nullptr);
    rill__fault_arm(n);
    setup(l);
    long injected = rill__fault_failed();
    rill__fault_arm(0);
    check(l, n);
    rill_loop_free(l);
    EXPECT_EQ(rill__fault_live(), base) << name << " N=" << n;
    if (!injected || ::testing::Test::HasFailure()) break;
  }
  std::printf("[ oom      ] %s: %ld allocation points\n", name, n - 1);
}

TEST(Oom, StepTaskThatNeitherWaitsNorCompletesEndsEvenWithoutMemoryForItsMessage) {
  rill_task *t = nullptr;
  SweepSmall(
      "estate message",
      [&](rill_loop *l) {
        t = rill_task_new(l, [](rill_task *, void *) {}, nullptr, nullptr);
        if (t) rill_loop_run(l);
      },
      [&](rill_loop *, long n) {
        if (!t) return;
        EXPECT_EQ(rill_future_state(rill_task_future(t)), RILL_FAILED) << "N=" << n;
        EXPECT_EQ(rill_future_error(rill_task_future(t)), RILL_ESTATE) << "N=" << n;
        rill_task_release(t);
      });
}

TEST(Oom, CoroutineReturningAnApplicationCodeEndsWithItEvenWithoutMemoryForItsMessage) {
  rill_task *t = nullptr;
  SweepSmall(
      "coroutine -1000",
      [&](rill_loop *l) {
        t = rill_spawn(l, [](void *) { return -1000; }, nullptr);
        if (t) rill_loop_run(l);
      },
      [&](rill_loop *, long n) {
        if (!t) return;
        EXPECT_EQ(rill_future_state(rill_task_future(t)), RILL_FAILED) << "N=" << n;
        int code = rill_future_error(rill_task_future(t));
        EXPECT_TRUE(code == -1000 || code == RILL_ENOMEM) << "N=" << n << " code " << code;
        rill_task_release(t);
      });
}

TEST(Oom, WaitForWhoseTimerCannotBeAllocatedFailsWithEnomemAndLeavesTheInnerAlone) {
  rill_future *inner = nullptr, *w = nullptr;
  SweepSmall(
      "wait_for",
      [&](rill_loop *l) {
        inner = rill_future_new(l);
        if (!inner) return;
        w = rill_wait_for(l, inner, 0.001);
        if (!w) {
          EXPECT_EQ(rill_last_error(), RILL_ENOMEM);
        }
      },
      [&](rill_loop *l, long n) {
        if (!inner) return;
        if (w) {  // it completes: timed out (or ENOMEM inside the run)
          int rc = rill_loop_run_until(l, w);
          if (rc == RILL_ENOMEM && !rill_future_done(w)) rc = rill_loop_run_until(l, w);
          EXPECT_NE(rill_future_state(w), RILL_PENDING) << "N=" << n;
          rill_future_release(w);
        } else {  // state unchanged: inner is still pending and completes normally
          EXPECT_EQ(rill_future_state(inner), RILL_PENDING) << "N=" << n;
          EXPECT_EQ(rill_future_set_none(inner), RILL_OK) << "N=" << n;
        }
        rill_future_release(inner);
      });
}

}  // namespace
