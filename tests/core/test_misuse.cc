// test_misuse.cc - misuse the contract survives or reports clearly (issue
// 17, item 5): double release / use after free, another loop's future,
// nested runs, close/free from inside, NaN/inf/negative delays, gathers of
// 0 and 1,000,000 futures, 1,000,000 step tasks, many coroutines.
#include <sys/resource.h>
#include <valgrind/valgrind.h>

#include <cstdio>

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

long PeakRssKiB() {
  struct rusage ru;
  getrusage(RUSAGE_SELF, &ru);
  return ru.ru_maxrss;
}

class Misuse : public RillTest {};

// ---- double release / use after free: a clear message --------------------

void DoubleReleaseFuture() {
  rill_loop *l = rill_loop_new();
  rill_future *f = rill_future_new(l);
  rill_future_release(f);
  rill_future_release(f);
}
void UseFreedFuture() {
  rill_loop *l = rill_loop_new();
  rill_future *f = rill_future_new(l);
  rill_future_release(f);
  rill_future_set_none(f);
}
void DoubleReleaseHandle() {
  rill_loop *l = rill_loop_new();
  rill_handle *h = rill_call_soon(l, [](void *) {}, nullptr, nullptr);
  rill_loop_run(l);  // the loop's reference is gone
  rill_handle_release(h);
  rill_handle_release(h);
}
void CancelFreedTask() {
  rill_loop *l = rill_loop_new();
  rill_task *t = rill_task_new(
      l, [](rill_task *s, void *) { rill_future_set_none(rill_task_future(s)); }, nullptr, nullptr);
  rill_loop_run(l);
  rill_task_release(t);
  rill_task_cancel(t, nullptr);
}

TEST(MisuseDeath, DoubleReleaseOfAFutureIsReported) {
  if (UnderSanitizerOrValgrind()) GTEST_SKIP() << "ASan/valgrind report it themselves";
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  EXPECT_DEATH(DoubleReleaseFuture(), "rill_future_release: future .* was already freed");
}
TEST(MisuseDeath, UseOfAFreedFutureIsReported) {
  if (UnderSanitizerOrValgrind()) GTEST_SKIP() << "ASan/valgrind report it themselves";
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  EXPECT_DEATH(UseFreedFuture(), "was already freed \\(double release or use after free\\)");
}
TEST(MisuseDeath, DoubleReleaseOfAHandleIsReported) {
  if (UnderSanitizerOrValgrind()) GTEST_SKIP() << "ASan/valgrind report it themselves";
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  EXPECT_DEATH(DoubleReleaseHandle(), "rill_handle_release: handle .* was already freed");
}
TEST(MisuseDeath, CancelOfAFreedTaskIsReported) {
  if (UnderSanitizerOrValgrind()) GTEST_SKIP() << "ASan/valgrind report it themselves";
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  EXPECT_DEATH(CancelFreedTask(), "was already freed");
}

// ---- another loop's future; nested runs; close from inside ---------------

TEST_F(Misuse, AwaitingAFutureOfAnotherLoopFailsWithEinval) {
  rill_loop *other = rill_loop_new();
  ASSERT_NE(other, nullptr);
  rill_future *foreign = rill_future_new(other);
  EXPECT_EQ(RunMain([&] {
              EXPECT_FAILS_WITH(rill_await(foreign), RILL_EINVAL);
              EXPECT_NULL_WITH(rill_wait_for(loop, foreign, 1), RILL_EINVAL);
              EXPECT_NULL_WITH(rill_gather(loop, 1, &foreign, 0), RILL_EINVAL);
              return 0;
            }),
            RILL_OK);
  EXPECT_FAILS_WITH(rill_loop_run_until(loop, foreign), RILL_EINVAL);
  rill_future_release(foreign);
  rill_loop_free(other);
}

TEST_F(Misuse, RunningALoopInsideARunningLoopFailsWithEbusy) {
  rill_loop *other = rill_loop_new();
  ASSERT_NE(other, nullptr);
  rill_future *f = NewFuture();
  Soon([&] {
    EXPECT_FAILS_WITH(rill_loop_run(loop), RILL_EBUSY);
    EXPECT_FAILS_WITH(rill_loop_run_until(loop, f), RILL_EBUSY);
    EXPECT_FAILS_WITH(rill_loop_run_once(loop, 0), RILL_EBUSY);
    EXPECT_FAILS_WITH(rill_loop_run(other), RILL_EBUSY);
    EXPECT_FAILS_WITH(rill_run([](void *) { return 0; }, nullptr), RILL_EBUSY);
  });
  Run();
  rill_future_release(f);
  rill_loop_free(other);
}

TEST_F(Misuse, ClosingTheLoopFromATaskFailsWithEbusy) {
  EXPECT_EQ(RunMain([&] {
              EXPECT_FAILS_WITH(rill_loop_close(loop), RILL_EBUSY);
              return 0;
            }),
            RILL_OK);
}

TEST(MisuseLoop, FreeingTheLoopFromACoroutineIsDeferredToTheRunsEnd) {
  rill_loop *l = rill_loop_new();
  ASSERT_NE(l, nullptr);
  static int handler_freed;
  handler_freed = 0;
  rill_loop_set_exception_handler(
      l, [](rill_loop *, const char *, rill_future *, void *) {}, nullptr,
      [](void *) { handler_freed++; });
  rill_task *t = rill_spawn(
      l,
      [](void *a) {
        rill_loop_free(static_cast<rill_loop *>(a));
        return rill_sleep(0.001);  // still runs: the loop stops after this iteration
      },
      l);
  ASSERT_NE(t, nullptr);
  rill_future *tf = rill_task_future(t);
  EXPECT_FAILS_WITH(rill_loop_run_until(l, tf), RILL_ESTATE);  // stopped before it was done
  EXPECT_EQ(handler_freed, 1) << "the loop was not closed and freed when the run returned";
  EXPECT_EQ(rill_future_state(tf), RILL_CANCELLED);  // readable: destroyed while pending
  rill_task_release(t);
}

// ---- NaN / inf / negative delays -------------------------------------------

TEST_F(Misuse, NanDelaysAreRefusedEverywhere) {
  const double nan = NAN;
  auto fn = [](void *) {};
  EXPECT_NULL_WITH(rill_call_later(loop, nan, fn, nullptr, nullptr), RILL_EINVAL);
  EXPECT_NULL_WITH(rill_call_at(loop, nan, fn, nullptr, nullptr), RILL_EINVAL);
  EXPECT_NULL_WITH(rill_sleep_future(loop, nan), RILL_EINVAL);
  rill_future *f = NewFuture();
  EXPECT_NULL_WITH(rill_wait_for(loop, f, nan), RILL_EINVAL);
  EXPECT_NULL_WITH(rill_wait(loop, 1, &f, RILL_WAIT_ALL, nan), RILL_EINVAL);
  EXPECT_FAILS_WITH(rill_loop_run_once(loop, nan), RILL_EINVAL);
  EXPECT_FAILS_WITH(rill_loop_set_slow_duration(loop, nan), RILL_EINVAL);
  EXPECT_EQ(RunMain([&] {
              EXPECT_FAILS_WITH(rill_sleep(nan), RILL_EINVAL);
              EXPECT_FAILS_WITH(rill_task_sleep(rill_current_task(), nan), RILL_EINVAL);
              EXPECT_NULL_WITH(rill_timeout_new(rill_current_task(), nan), RILL_EINVAL);
              rill_timeout *to = rill_timeout_new(rill_current_task(), 10);
              EXPECT_FAILS_WITH(rill_timeout_reschedule(to, nan), RILL_EINVAL);
              rill_timeout_exit(to, 0);
              rill_timeout_release(to);
              return 0;
            }),
            RILL_OK);
  rill_future_release(f);
}

TEST_F(Misuse, NegativeDelaysMeanNowAndPositiveInfinityMeansNever) {
  std::vector<std::string> order;
  double t0 = MonoNow();
  rill_handle *never = LaterH(INFINITY, [&] { order.push_back("never"); });
  Later(-1, [&] { order.push_back("later(-1)"); });
  Later(-INFINITY, [&] { order.push_back("later(-inf)"); });
  rill_handle_release(rill_call_at(loop, -INFINITY, CbRun, NewCb([&] { order.push_back("at(-inf)"); }),
                                   CbFree));
  rill_future *s = rill_sleep_future(loop, -5);
  ASSERT_NE(s, nullptr);
  EXPECT_EQ(rill_loop_run_until(loop, s), RILL_OK);
  EXPECT_EQ(RunMain([&] {
              EXPECT_EQ(rill_sleep(-1), RILL_OK);
              EXPECT_EQ(rill_sleep(-INFINITY), RILL_OK);
              return 0;
            }),
            RILL_OK);
  EXPECT_LT(MonoNow() - t0, 1.0);
  EXPECT_THAT(order, ::testing::UnorderedElementsAre("later(-1)", "later(-inf)", "at(-inf)"));
  EXPECT_EQ(rill_handle_when(never), INFINITY);
  rill_handle_cancel(never);
  rill_handle_release(never);
  rill_future_release(s);
}

// ---- gathers of 0 and 1,000,000; 1,000,000 step tasks ----------------------

TEST_F(Misuse, GatherOfNothingIsDoneAtOnce) {
  rill_future *g = rill_gather(loop, 0, nullptr, 0);
  ASSERT_NE(g, nullptr);
  EXPECT_EQ(rill_future_state(g), RILL_DONE);
  EXPECT_EQ(rill_gather_count(g), 0u);
  rill_future_release(g);
}

TEST_F(Misuse, GatherOfAMillionFutures) {
  const size_t n = 1000000;
  std::vector<rill_future *> futs(n);
  for (auto &f : futs) ASSERT_NE(f = rill_future_new(loop), nullptr);
  rill_future *g = rill_gather(loop, n, futs.data(), 0);
  ASSERT_NE(g, nullptr);
  for (size_t i = 0; i < n; i++) rill_future_set_int(futs[i], (int64_t)i);
  EXPECT_EQ(rill_loop_run_until(loop, g), RILL_OK);
  int64_t v = 0;
  EXPECT_EQ(rill_future_int(rill_gather_child(g, n - 1), &v), RILL_OK);
  EXPECT_EQ(v, (int64_t)(n - 1));
  for (auto *f : futs) rill_future_release(f);
  rill_future_release(g);
  std::printf("[ figures  ] gather of 1,000,000: peak RSS %ld MiB\n", PeakRssKiB() / 1024);
}

TEST_F(Misuse, AMillionConcurrentStepTasks) {
  const int n = 1000000;
  std::vector<int> steps(n, 0);
  double t0 = MonoNow();
  for (int i = 0; i < n; i++) {
    rill_task *t = rill_task_new(
        loop,
        [](rill_task *t, void *a) {
          int *c = static_cast<int *>(a);
          if ((*c)++ == 0) rill_task_yield(t);  // all 1,000,000 pending at once
          else rill_future_set_none(rill_task_future(t));
        },
        &steps[i], nullptr);
    ASSERT_NE(t, nullptr);
    rill_task_release(t);
  }
  EXPECT_EQ(rill_loop_task_count(loop), n);
  EXPECT_EQ(rill_loop_run_once(loop, 0), n);
  EXPECT_EQ(rill_loop_task_count(loop), n);
  Run();
  EXPECT_EQ(rill_loop_task_count(loop), 0);
  for (int c : steps) ASSERT_EQ(c, 2);
  std::printf("[ figures  ] 1,000,000 step tasks: %.2f s, peak RSS %ld MiB\n", MonoNow() - t0,
              PeakRssKiB() / 1024);
}

// As many stackful coroutines as memory allows is a documented command, not
// a test (it takes the machine's memory):
//   RILL_MANY_COROS=2000000 build/tests/core/rill_core_tests
//     --gtest_also_run_disabled_tests --gtest_filter=Misuse.DISABLED_ManyCoroutines
TEST_F(Misuse, DISABLED_ManyCoroutines) {
  const char *env = std::getenv("RILL_MANY_COROS");
  long n = env ? std::atol(env) : 200000;
  ASSERT_EQ(rill_loop_set_stack_size(loop, 16 * 1024), RILL_OK);
  std::vector<rill_future *> futs;
  futs.reserve((size_t)n);
  double t0 = MonoNow();
  for (long i = 0; i < n; i++) {
    rill_task *t = rill_spawn(loop, [](void *) { return rill_sleep(0.5); }, nullptr);
    if (!t) break;
    futs.push_back(rill_task_future(t));
  }
  rill_future *g = rill_gather(loop, futs.size(), futs.data(), RILL_GATHER_RETURN_ERRORS);
  ASSERT_NE(g, nullptr);
  EXPECT_EQ(rill_loop_run_until(loop, g), RILL_OK);
  size_t ok = 0;
  for (auto *f : futs) ok += rill_future_state(f) == RILL_DONE;
  std::printf("[ figures  ] %zu coroutines spawned, %zu slept and ended: %.2f s, peak RSS %ld MiB\n",
              futs.size(), ok, MonoNow() - t0, PeakRssKiB() / 1024);
  for (auto *f : futs) rill_future_release(f);
  rill_future_release(g);
}

}  // namespace
