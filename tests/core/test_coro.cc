// Stackful C coroutines: rill_run, rill_spawn, rill_await, rill_sleep,
// rill_yield. (asyncio groups A, C7, D, E, G and the seed example)
#include <cstring>

#include "rill_test.h"

using namespace rilltest;
using ::testing::HasSubstr;

using Coro = RillTest;

static rill_future *CurrentFuture() { return rill_task_future(rill_current_task()); }

// The seed example of DESIGN.md: gather(task("A"), task("B")) where each
// task prints, sleeps, prints. Both sleeps overlap: ~secs in total, not 2x.
class SeedTest : public RillTest {
 protected:
  double RunSeed(double secs) {
    auto task = [this, secs](const char *name) {
      return [this, secs, name] {
        log.push_back(std::string(name) + " started");
        int rc = rill_sleep(secs);
        log.push_back(std::string(name) + " finished");
        return rc;
      };
    };
    auto main_fn = [this, task] {
      rill_loop *l = rill_loop_current();
      Watch(l);
      rill_task *a = Spawn(task("A"), l);
      rill_task *b = Spawn(task("B"), l);
      rill_future *children[] = {rill_task_future(a), rill_task_future(b)};
      rill_future *g = rill_gather(l, 2, children, 0);
      int rc = rill_await(g);
      rill_future_release(g);
      rill_task_release(a);
      rill_task_release(b);
      return rc;
    };
    double t0 = MonoNow();
    int rc = rill_run(CoroRun, NewCoro(main_fn));
    double dt = MonoNow() - t0;
    EXPECT_EQ(rc, RILL_OK);
    EXPECT_EQ(log, (std::vector<std::string>{"A started", "B started", "A finished", "B finished"}));
    return dt;
  }
};

TEST_F(SeedTest, SeedExampleTakesOneSecondNotTwo) {
  double dt = RunSeed(1.0);
  EXPECT_GE(dt, 1.0);
  EXPECT_LT(dt, 1.1);
}

TEST_F(SeedTest, SeedExampleShortVariant) {
  double dt = RunSeed(0.1);
  EXPECT_GE(dt, 0.1);
  EXPECT_LT(dt, 0.1 + LateSlack());
}

TEST_F(Coro, RunReturnsTheMainCoroutinesCode) {
  EXPECT_EQ(rill_run(CoroRun, NewCoro([] { return RILL_OK; })), RILL_OK);
  EXPECT_EQ(rill_run(CoroRun, NewCoro([] { return -1000; })), -1000);
  EXPECT_EQ(rill_run(CoroRun, NewCoro([] { return RILL_ETIMEDOUT; })), RILL_ETIMEDOUT);
}

TEST_F(Coro, RunMakesANewCurrentLoopAndClosesIt) {
  rill_loop *seen = nullptr;
  rill_task *task_seen = nullptr;
  EXPECT_EQ(rill_run(CoroRun, NewCoro([&] {
              seen = rill_loop_current();
              task_seen = rill_current_task();
              return rill_yield();
            })),
            RILL_OK);
  EXPECT_NE(seen, nullptr);
  EXPECT_NE(seen, loop) << "its own loop";
  EXPECT_NE(task_seen, nullptr);
  EXPECT_EQ(rill_loop_current(), nullptr);
  EXPECT_EQ(rill_current_task(), nullptr);
}

TEST_F(Coro, RunCancelsLeftoverTasksNotYetStartedSoTheirBodiesNeverRun) {
  double t0 = MonoNow();
  int rc = rill_run(CoroRun, NewCoro([this] {
    Watch(rill_loop_current());
    rill_task *worker = Spawn(
        [this] {
          log.push_back("worker started");
          int r = rill_sleep(10.0);
          log.push_back("worker cleanup, sleep gave " + std::to_string(r));
          return r;
        },
        rill_loop_current());
    rill_task *never = Spawn([this] {
      log.push_back("never-started body ran");
      return 0;
    }, rill_loop_current());
    rill_task_release(worker);
    rill_task_release(never);
    log.push_back("main returns");
    return RILL_OK;
  }));
  EXPECT_EQ(rc, RILL_OK);
  EXPECT_LT(MonoNow() - t0, 5.0);
  // The worker had not started when main returned: it is cancelled before
  // its first step, so its body never runs; same for the second.
  EXPECT_EQ(log, (std::vector<std::string>{"main returns"}));
}

TEST_F(Coro, RunCancelsStartedLeftoverTasksAtTheirAwaitPoint) {
  double t0 = MonoNow();
  int rc = rill_run(CoroRun, NewCoro([this] {
    Watch(rill_loop_current());
    rill_task *worker = Spawn(
        [this] {
          log.push_back("worker started");
          int r = rill_sleep(10.0);
          log.push_back("worker cleanup, sleep gave " + std::to_string(r));
          return r;
        },
        rill_loop_current());
    rill_task_release(worker);
    rill_yield();
    log.push_back("main returns");
    return RILL_OK;
  }));
  EXPECT_EQ(rc, RILL_OK);
  EXPECT_LT(MonoNow() - t0, 5.0);
  EXPECT_EQ(log, (std::vector<std::string>{"worker started", "main returns",
                                           "worker cleanup, sleep gave " +
                                               std::to_string(RILL_ECANCELLED)}));
}

TEST_F(Coro, RunReportsALeftoverTaskThatFailsDuringShutdown) {
  int rc = rill_run(CoroRun, NewCoro([this] {
    Watch(rill_loop_current());
    rill_task *worker = Spawn(
        [] {
          rill_sleep(10.0);
          return -1000;  // fails instead of ending cancelled
        },
        rill_loop_current());
    rill_task_release(worker);
    rill_yield();
    return RILL_OK;
  }));
  EXPECT_EQ(rc, RILL_OK);
  EXPECT_EQ(TakeReports().size(), 1u);
}

TEST_F(Coro, SpawnedBodyStartsInTheNextIteration) {
  EXPECT_EQ(RunMain([this] {
              rill_task *child = Spawn([this] {
                log.push_back("child body");
                return 0;
              });
              log.push_back("spawner continues");
              int rc = rill_await(rill_task_future(child));
              log.push_back("child awaited");
              rill_task_release(child);
              return rc;
            }),
            RILL_OK);
  EXPECT_EQ(log, (std::vector<std::string>{"spawner continues", "child body", "child awaited"}));
}

TEST_F(Coro, AwaitingADoneFutureDoesNotYield) {
  EXPECT_EQ(RunMain([this] {
              rill_future *f = NewFuture();
              rill_future_set_int(f, 1);
              Soon([this] { log.push_back("other callback"); });
              EXPECT_EQ(rill_await(f), RILL_OK);
              log.push_back("after await");
              EXPECT_EQ(rill_yield(), RILL_OK);
              log.push_back("after yield");
              rill_future_release(f);
              return 0;
            }),
            RILL_OK);
  EXPECT_EQ(log, (std::vector<std::string>{"after await", "other callback", "after yield"}));
}

TEST_F(Coro, AwaitReturnsTheOutcome) {
  EXPECT_EQ(RunMain([this] {
              rill_future *ok = NewFuture(), *bad = NewFuture(), *gone = NewFuture();
              Later(0.005, [=] { rill_future_set_int(ok, 3); });
              Later(0.005, [=] { rill_future_fail(bad, -1234, "bad", nullptr, nullptr, nullptr); });
              Later(0.005, [=] { rill_future_cancel(gone); });
              EXPECT_EQ(rill_await(ok), RILL_OK);
              EXPECT_EQ(rill_await(bad), -1234);
              EXPECT_EQ(rill_await(gone), RILL_ECANCELLED);
              int64_t v = 0;
              EXPECT_EQ(rill_future_int(ok, &v), RILL_OK);
              EXPECT_EQ(v, 3);
              rill_future_release(ok);
              rill_future_release(bad);
              rill_future_release(gone);
              return 0;
            }),
            RILL_OK);
}

TEST_F(Coro, SleepZeroAlternatesStrictly) {
  auto looper = [this](const char *name) {
    return [this, name] {
      for (int i = 0; i < 4; i++) {
        log.push_back(name + std::to_string(i));
        EXPECT_EQ(rill_sleep(0), RILL_OK);
      }
      return 0;
    };
  };
  rill_task *a = Spawn(looper("a"));
  rill_task *b = Spawn(looper("b"));
  Run();
  EXPECT_EQ(log, (std::vector<std::string>{"a0", "b0", "a1", "b1", "a2", "b2", "a3", "b3"}));
  rill_task_release(a);
  rill_task_release(b);
}

TEST_F(Coro, SleepGivesUpExactlyOneIterationForZeroOrNegative) {
  int ran = 0;
  rill_task *t = Spawn([&] {
    EXPECT_EQ(rill_sleep(-1.0), RILL_OK);
    ran++;
    EXPECT_EQ(rill_yield(), RILL_OK);
    ran++;
    return 0;
  });
  EXPECT_EQ(rill_loop_run_once(loop, 0), 1);  // first step, then suspended
  EXPECT_EQ(ran, 0);
  EXPECT_EQ(rill_loop_run_once(loop, 0), 1);
  EXPECT_EQ(ran, 1);
  EXPECT_EQ(rill_loop_run_once(loop, 0), 1);
  EXPECT_EQ(ran, 2);
  EXPECT_EQ(rill_future_state(rill_task_future(t)), RILL_DONE);
  rill_task_release(t);
}

TEST_F(Coro, SleepNeverWakesEarly) {
  EXPECT_EQ(RunMain([this] {
              for (double d : {0.001, 0.01, 0.03}) {
                double when = rill_loop_time(loop) + d;
                double t0 = MonoNow();
                EXPECT_EQ(rill_sleep(d), RILL_OK);
                EXPECT_GE(rill_loop_time(loop), when);
                EXPECT_GE(MonoNow(), when);
                EXPECT_LT(MonoNow() - t0, d + LateSlack());
              }
              return 0;
            }),
            RILL_OK);
}

TEST_F(Coro, AwaitSleepYieldOutsideACoroutineAreEState) {
  rill_future *f = NewFuture();
  EXPECT_FAILS_WITH(rill_await(f), RILL_ESTATE);
  EXPECT_FAILS_WITH(rill_sleep(0.01), RILL_ESTATE);
  EXPECT_FAILS_WITH(rill_yield(), RILL_ESTATE);
  Soon([&] {
    EXPECT_FAILS_WITH(rill_await(f), RILL_ESTATE);
    EXPECT_FAILS_WITH(rill_sleep(0), RILL_ESTATE);
    EXPECT_FAILS_WITH(rill_yield(), RILL_ESTATE);
    log.push_back("callback checked");
  });
  rill_task *stepper = NewTask([&](rill_task *self) {
    EXPECT_FAILS_WITH(rill_await(f), RILL_ESTATE);
    EXPECT_FAILS_WITH(rill_sleep(0), RILL_ESTATE);
    EXPECT_FAILS_WITH(rill_yield(), RILL_ESTATE);
    log.push_back("step task checked");
    rill_future_set_none(rill_task_future(self));
  });
  Run();
  EXPECT_EQ(log, (std::vector<std::string>{"callback checked", "step task checked"}));
  rill_task_release(stepper);
  rill_future_release(f);
}

TEST_F(Coro, HundredThousandConcurrentSleepsGathered) {
  constexpr size_t kN = 100000;
  size_t finished = 0;
  EXPECT_EQ(RunMain([&] {
              std::vector<rill_task *> tasks(kN);
              std::vector<rill_future *> futs(kN);
              for (size_t i = 0; i < kN; i++) {
                tasks[i] = rill_spawn(loop, CoroRun, NewCoro([&] {
                                        int rc = rill_sleep(0.01);
                                        finished++;
                                        return rc;
                                      }));
                if (!tasks[i]) {
                  ADD_FAILURE() << "spawn #" << i << ": " << rill_last_error_message();
                  return rill_last_error();
                }
                futs[i] = rill_task_future(tasks[i]);
              }
              rill_future *g = rill_gather(loop, kN, futs.data(), 0);
              int rc = rill_await(g);
              EXPECT_EQ(finished, kN) << "all done when the gather is";
              rill_future_release(g);
              for (auto *t : tasks) rill_task_release(t);
              return rc;
            }),
            RILL_OK);
  EXPECT_EQ(finished, kN);
}

__attribute__((noinline)) static int Recurse(int depth) {
  volatile char frame[1024];
  std::memset((char *)frame, depth & 0x7f, sizeof frame);
  int below = 0;
  if (depth > 0) below = Recurse(depth - 1);
  else if (rill_yield() != RILL_OK) return -1;  // switch away with a deep stack
  return below + frame[0] + frame[sizeof frame - 1];
}

TEST_F(Coro, DeepRecursionInsideACoroutineWorks) {
  int got = 0;
  EXPECT_EQ(RunMain([&] {
              got = Recurse(32);  // 32 frames of 1 KiB locals: > 32 KiB of stack
              return 0;
            }),
            RILL_OK);
  EXPECT_EQ(got, 2 * (32 * 33 / 2));
}

__attribute__((noinline)) static int BigFrame() {
  volatile char big[200 * 1024];
  std::memset((char *)big, 1, sizeof big);
  if (rill_yield() != RILL_OK) return -1;
  return big[0] + big[sizeof big - 1];
}

TEST_F(Coro, StackSizeSetsTheStackOfLaterCoroutines) {
  ASSERT_EQ(rill_loop_set_stack_size(loop, 1024 * 1024), RILL_OK);
  int got = 0;
  EXPECT_EQ(RunMain([&] {
              got = BigFrame();  // 200 KiB of locals: fits in 1 MiB
              return 0;
            }),
            RILL_OK);
  EXPECT_EQ(got, 2);
}

TEST_F(Coro, ValueThroughTheTaskFutureSetter) {
  rill_task *t = Spawn([] {
    EXPECT_EQ(rill_future_set_int(CurrentFuture(), 42), RILL_OK);
    return RILL_OK;
  });
  EXPECT_EQ(rill_loop_run_until(loop, rill_task_future(t)), RILL_OK);
  int64_t v = 0;
  EXPECT_EQ(rill_future_int(rill_task_future(t), &v), RILL_OK);
  EXPECT_EQ(v, 42);
  rill_task_release(t);
}

TEST_F(Coro, ReturningOkWithoutAValueGivesNone) {
  rill_task *t = Spawn([] { return RILL_OK; });
  EXPECT_EQ(rill_loop_run_until(loop, rill_task_future(t)), RILL_OK);
  EXPECT_EQ(rill_future_kind(rill_task_future(t)), RILL_NONE);
  rill_task_release(t);
}

TEST_F(Coro, ReturningANegativeCodeFailsTheTask) {
  rill_task *t = Spawn([] { return -1000; });
  EXPECT_EQ(rill_loop_run_until(loop, rill_task_future(t)), -1000);
  EXPECT_EQ(rill_future_state(rill_task_future(t)), RILL_FAILED);
  EXPECT_EQ(rill_future_error(rill_task_future(t)), -1000);
  rill_task_release(t);
}

TEST_F(Coro, CoroutineTaskArgIsNullAndCurrentTaskIsItself) {
  rill_task *t = nullptr;
  t = Spawn([&] {
    EXPECT_EQ(rill_current_task(), t);
    EXPECT_EQ(rill_task_arg(rill_current_task()), nullptr);
    return 0;
  });
  Run();
  rill_task_release(t);
}

TEST_F(Coro, CancelBeforeTheFirstStepMeansTheBodyNeverRuns) {
  bool ran = false;
  rill_task *t = Spawn([&] {
    ran = true;
    return 0;
  });
  EXPECT_EQ(rill_task_cancel(t, "never mind"), 1);
  Run();
  EXPECT_FALSE(ran);
  EXPECT_EQ(rill_future_state(rill_task_future(t)), RILL_CANCELLED);
  EXPECT_STREQ(rill_future_error_message(rill_task_future(t)), "never mind");
  rill_task_release(t);
}

TEST_F(Coro, ReturningECancelledAfterACancelEndsCancelled) {
  rill_future *gate = NewFuture();
  rill_task *t = Spawn([&] {
    int rc = rill_await(gate);
    log.push_back("await gave " + std::to_string(rc));
    return rc;
  });
  Later(0.01, [&] { EXPECT_EQ(rill_task_cancel(t, "m1"), 1); });
  EXPECT_EQ(rill_loop_run_until(loop, rill_task_future(t)), RILL_ECANCELLED);
  EXPECT_EQ(log, (std::vector<std::string>{"await gave " + std::to_string(RILL_ECANCELLED)}));
  EXPECT_EQ(rill_future_state(rill_task_future(t)), RILL_CANCELLED);
  EXPECT_STREQ(rill_future_error_message(rill_task_future(t)), "m1") << "carried to the awaiter";
  EXPECT_EQ(rill_future_state(gate), RILL_CANCELLED);
  rill_task_release(t);
  rill_future_release(gate);
}

TEST_F(Coro, ReturningOkAfterACancelEndsDone) {
  rill_task *t = Spawn([&] {
    int rc = rill_sleep(10.0);
    log.push_back("sleep gave " + std::to_string(rc));
    EXPECT_EQ(rill_sleep(0.001), RILL_OK) << "a caught cancel does not come back";
    rill_future_set_int(CurrentFuture(), 9);
    return RILL_OK;
  });
  Later(0.01, [&] { rill_task_cancel(t, nullptr); });
  EXPECT_EQ(rill_loop_run_until(loop, rill_task_future(t)), RILL_OK);
  EXPECT_EQ(log, (std::vector<std::string>{"sleep gave " + std::to_string(RILL_ECANCELLED)}));
  EXPECT_EQ(rill_future_state(rill_task_future(t)), RILL_DONE);
  int64_t v = 0;
  EXPECT_EQ(rill_future_int(rill_task_future(t), &v), RILL_OK);
  EXPECT_EQ(v, 9);
  EXPECT_EQ(rill_task_cancelling(t), 1);
  rill_task_release(t);
}

TEST_F(Coro, CancellingAnAwaitingCoroutineCancelsTheTaskItAwaits) {
  rill_task *inner = Spawn([this] {
    int rc = rill_sleep(10.0);
    log.push_back("inner " + std::to_string(rc));
    return rc;
  });
  rill_task *outer = Spawn([&] {
    int rc = rill_await(rill_task_future(inner));
    log.push_back("outer " + std::to_string(rc));
    return rc;
  });
  Later(0.01, [&] { rill_task_cancel(outer, nullptr); });
  Run();
  std::string c = std::to_string(RILL_ECANCELLED);
  EXPECT_EQ(log, (std::vector<std::string>{"inner " + c, "outer " + c}));
  EXPECT_EQ(rill_future_state(rill_task_future(inner)), RILL_CANCELLED);
  EXPECT_EQ(rill_future_state(rill_task_future(outer)), RILL_CANCELLED);
  rill_task_release(inner);
  rill_task_release(outer);
}

TEST_F(Coro, ManyCoroutinesSwitchingKeepTheirOwnStacks) {
  constexpr int kTasks = 50, kRounds = 200;
  std::vector<rill_task *> tasks;
  int bad = 0;
  for (int i = 0; i < kTasks; i++)
    tasks.push_back(Spawn([&bad, i] {
      volatile int mine[64];
      for (int k = 0; k < 64; k++) mine[k] = i * 1000 + k;
      for (int r = 0; r < kRounds; r++) {
        if (rill_yield() != RILL_OK) return -1;
        for (int k = 0; k < 64; k++)
          if (mine[k] != i * 1000 + k) bad++;
      }
      return 0;
    }));
  Run();
  EXPECT_EQ(bad, 0);
  for (auto *t : tasks) {
    EXPECT_EQ(rill_future_state(rill_task_future(t)), RILL_DONE);
    rill_task_release(t);
  }
}

TEST_F(Coro, LoopCloseDestroysASuspendedCoroutine) {
  rill_future *gate = NewFuture();
  rill_task *t = Spawn([&] {
    log.push_back("suspended");
    rill_await(gate);
    log.push_back("resumed after close?!");
    return 0;
  });
  Run();
  CloseLoop();
  auto r = TakeReportMessages();
  ASSERT_EQ(r.size(), 1u);
  EXPECT_THAT(r[0], HasSubstr("destroyed"));
  EXPECT_EQ(log, (std::vector<std::string>{"suspended"}));
  rill_task_release(t);
  rill_future_release(gate);
}

TEST_F(Coro, SleepFutureIsDoneWithNoneAfterTheDelay) {
  double base = rill_loop_time(loop);
  rill_future *f = rill_sleep_future(loop, 0.03);
  ASSERT_NE(f, nullptr) << rill_last_error_message();
  EXPECT_EQ(rill_future_state(f), RILL_PENDING);
  EXPECT_EQ(rill_loop_run_until(loop, f), RILL_OK);
  EXPECT_GE(MonoNow(), base + 0.03);
  EXPECT_EQ(rill_future_kind(f), RILL_NONE);
  rill_future_release(f);
}

TEST_F(Coro, CancelledSleepFutureDoesNotKeepTheLoopAlive) {
  rill_future *f = rill_sleep_future(loop, 5.0);
  ASSERT_NE(f, nullptr);
  EXPECT_EQ(rill_future_cancel(f), 1);
  EXPECT_EQ(rill_future_state(f), RILL_CANCELLED);
  double t0 = MonoNow();
  Run();
  EXPECT_LT(MonoNow() - t0, 1.0);
  rill_future_release(f);
}

TEST_F(Coro, CancelWinsAgainstACompletionInTheSameIteration) {
  rill_future *f = NewFuture();
  rill_task *t = Spawn([&] {
    int rc = rill_await(f);
    log.push_back("await gave " + std::to_string(rc));
    return rc;
  });
  EXPECT_EQ(rill_loop_run_once(loop, 0), 1);
  Soon([&] {
    rill_future_set_int(f, 1);
    EXPECT_EQ(rill_task_cancel(t, nullptr), 1);
  });
  EXPECT_EQ(rill_loop_run_until(loop, rill_task_future(t)), RILL_ECANCELLED);
  EXPECT_EQ(log, (std::vector<std::string>{"await gave " + std::to_string(RILL_ECANCELLED)}));
  rill_task_release(t);
  rill_future_release(f);
}

TEST_F(Coro, TheMinimumStackSizeWorks) {
  ASSERT_EQ(rill_loop_set_stack_size(loop, 16 * 1024), RILL_OK);
  int done = 0;
  std::vector<rill_task *> tasks;
  for (int i = 0; i < 20; i++)  // several, so stacks and task ids differ
    tasks.push_back(Spawn([&done] {
      volatile char local[2048];
      std::memset((char *)local, 7, sizeof local);
      if (rill_yield() != RILL_OK) return -1;
      done += local[0] == 7 && local[sizeof local - 1] == 7;
      return 0;
    }));
  Run();
  EXPECT_EQ(done, 20);
  for (auto *t : tasks) rill_task_release(t);
}
