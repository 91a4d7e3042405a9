// 1.1 copy-stack C coroutines: rill_spawn_v2 with RILL_SPAWN_COPY_STACK.
// They share one stack per loop and copy their used part out when another
// one runs; these tests check that each keeps its own frames whatever the
// mix, depth, cancel or teardown.
#include <cstring>

#include "rill_test.h"

using namespace rilltest;
using ::testing::HasSubstr;

class CopyCoro : public RillTest {
 protected:
  rill_task *SpawnCopy(std::function<int()> fn, rill_loop *l = nullptr) {
    rill_task *t =
        rill_spawn_v2(l ? l : loop, CoroRun, NewCoro(std::move(fn)), RILL_SPAWN_COPY_STACK);
    EXPECT_NE(t, nullptr) << rill_last_error_message();
    return t;
  }
};

TEST_F(CopyCoro, BadInput) {
  EXPECT_EQ(rill_spawn_v2(loop, CoroRun, NewCoro([] { return 0; }), 2u), nullptr);
  EXPECT_EQ(rill_last_error(), RILL_EINVAL);
  EXPECT_THAT(rill_last_error_message(), HasSubstr("flags"));
  EXPECT_EQ(rill_spawn_v2(loop, nullptr, nullptr, RILL_SPAWN_COPY_STACK), nullptr);
  EXPECT_EQ(rill_last_error(), RILL_EINVAL);
  EXPECT_EQ(rill_spawn_v2(nullptr, CoroRun, NewCoro([] { return 0; }), RILL_SPAWN_COPY_STACK),
            nullptr);
  EXPECT_EQ(rill_last_error(), RILL_EINVAL);
  EXPECT_EQ(rill_loop_task_count(loop), 0);
}

TEST_F(CopyCoro, FlagsZeroIsRillSpawn) {
  int v = 0;
  rill_task *t = rill_spawn_v2(loop, CoroRun, NewCoro([&] {
                                 if (rill_yield() != RILL_OK) return -1;
                                 v = 7;
                                 return rill_future_set_int(rill_task_future(rill_current_task()), 7);
                               }),
                               0u);
  ASSERT_NE(t, nullptr);
  Run();
  EXPECT_EQ(v, 7);
  int64_t got = 0;
  EXPECT_EQ(rill_future_int(rill_task_future(t), &got), RILL_OK);
  EXPECT_EQ(got, 7);
  rill_task_release(t);
}

// Copy-stack and own-stack coroutines interleaved; each checks its locals
// after every switch, so a frame restored to the wrong place shows.
TEST_F(CopyCoro, ManyCoroutinesSwitchingKeepTheirOwnFrames) {
  constexpr int kTasks = 60, kRounds = 200;
  std::vector<rill_task *> tasks;
  int bad = 0, done = 0;
  for (int i = 0; i < kTasks; i++) {
    auto body = [&bad, &done, i] {
      volatile int mine[64];
      for (int k = 0; k < 64; k++) mine[k] = i * 1000 + k;
      for (int r = 0; r < kRounds; r++) {
        if (rill_yield() != RILL_OK) return -1;
        for (int k = 0; k < 64; k++)
          if (mine[k] != i * 1000 + k) bad++;
        mine[r % 64] = i * 1000 + r % 64;
      }
      done++;
      return rill_future_set_int(rill_task_future(rill_current_task()), i);
    };
    tasks.push_back(i % 3 == 2 ? Spawn(body) : SpawnCopy(body));
  }
  Run();
  EXPECT_EQ(bad, 0);
  EXPECT_EQ(done, kTasks);
  for (int i = 0; i < kTasks; i++) {
    int64_t v = -1;
    EXPECT_EQ(rill_future_int(rill_task_future(tasks[i]), &v), RILL_OK);
    EXPECT_EQ(v, i);
    rill_task_release(tasks[i]);
  }
}

__attribute__((noinline)) static int RecurseYield(int depth, int yields, int salt) {
  volatile char frame[1024];
  std::memset((char *)frame, (depth + salt) & 0x7f, sizeof frame);
  int below = 0;
  if (depth > 0) {
    below = RecurseYield(depth - 1, yields, salt);
  } else {
    for (int i = 0; i < yields; i++)
      if (rill_yield() != RILL_OK) return -100000;
  }
  if (frame[0] != ((depth + salt) & 0x7f) || frame[sizeof frame - 1] != ((depth + salt) & 0x7f))
    return -100000;
  return below + 1;
}

// A copy-stack coroutine suspended with ~70 KiB of frames, then shallow,
// then deeper again than its saved buffer: its buffer grows, and the others
// (shallow and deep) keep running between its switches.
TEST_F(CopyCoro, DeepStacksLargerThanTheSavedBufferSurvive) {
  int a = 0, b = 0, c = 0;
  rill_task *ta = SpawnCopy([&] {
    a = RecurseYield(4, 3, 1);             // shallow first: a small buffer
    if (a == 5) a += RecurseYield(64, 3, 2);  // then 64 KiB+ of frames
    if (a == 70) a += RecurseYield(8, 2, 3);
    if (a == 79) a += RecurseYield(120, 2, 4);  // past the grown buffer
    return 0;
  });
  rill_task *tb = SpawnCopy([&] {
    b = RecurseYield(100, 10, 5);
    return 0;
  });
  rill_task *tc = SpawnCopy([&] {
    c = RecurseYield(0, 12, 6);
    return 0;
  });
  Run();
  EXPECT_EQ(a, 79 + 121);
  EXPECT_EQ(b, 101);
  EXPECT_EQ(c, 1);
  for (rill_task *t : {ta, tb, tc}) {
    EXPECT_EQ(rill_future_state(rill_task_future(t)), RILL_DONE);
    rill_task_release(t);
  }
}

__attribute__((noinline)) static int BigFrameCopy() {
  volatile char big[200 * 1024];
  std::memset((char *)big, 3, sizeof big);
  if (rill_yield() != RILL_OK) return -1;
  return big[0] + big[sizeof big - 1];
}

TEST_F(CopyCoro, TheLoopsStackSizeIsTheSharedStacksSize) {
  ASSERT_EQ(rill_loop_set_stack_size(loop, 1024 * 1024), RILL_OK);
  int got = 0, other = 0;
  rill_task *t = SpawnCopy([&] {
    got = BigFrameCopy();  // 200 KiB of locals, saved while the other runs
    return 0;
  });
  rill_task *u = SpawnCopy([&] {
    other = RecurseYield(2, 2, 9);
    return 0;
  });
  Run();
  EXPECT_EQ(got, 6);
  EXPECT_EQ(other, 3);
  rill_task_release(t);
  rill_task_release(u);
}

// Cancelled while suspended mid-way (evicted from the shared stack by
// another copy-stack coroutine): it resumes with its frames back and sees
// RILL_ECANCELLED at its await.
TEST_F(CopyCoro, SuspendedMidwayAndCancelled) {
  rill_future *gate = NewFuture();
  int seen = 0, intact = 0;
  rill_task *t = SpawnCopy([&] {
    volatile long mine[32];
    for (int k = 0; k < 32; k++) mine[k] = 5000 + k;
    seen = rill_await(gate);
    intact = 1;
    for (int k = 0; k < 32; k++)
      if (mine[k] != 5000 + k) intact = 0;
    return seen;
  });
  rill_task *other = SpawnCopy([&] {
    for (int i = 0; i < 5; i++)
      if (rill_yield() != RILL_OK) return -1;
    EXPECT_EQ(rill_task_cancel(t, "stop"), 1);
    for (int i = 0; i < 3; i++)
      if (rill_yield() != RILL_OK) return -1;
    return 0;
  });
  Run();
  EXPECT_EQ(seen, RILL_ECANCELLED);
  EXPECT_EQ(intact, 1);
  EXPECT_EQ(rill_future_state(rill_task_future(t)), RILL_CANCELLED);
  EXPECT_STREQ(rill_future_error_message(rill_task_future(t)), "stop");
  EXPECT_EQ(rill_future_state(rill_task_future(other)), RILL_DONE);
  EXPECT_EQ(rill_future_state(gate), RILL_CANCELLED);
  rill_task_release(t);
  rill_task_release(other);
  rill_future_release(gate);
}

TEST_F(CopyCoro, CancelBeforeTheFirstStepMeansTheBodyNeverRuns) {
  bool ran = false;
  rill_task *t = SpawnCopy([&] {
    ran = true;
    return 0;
  });
  EXPECT_EQ(rill_task_cancel(t, "never mind"), 1);
  Run();
  EXPECT_FALSE(ran);
  EXPECT_EQ(rill_future_state(rill_task_future(t)), RILL_CANCELLED);
  rill_task_release(t);
}

// Loop close with two suspended copy-stack coroutines: one whose frames are
// on the shared stack, one whose frames are saved in its buffer (and deep).
// Both are destroyed and reported; valgrind/ASan check nothing leaks.
__attribute__((noinline)) static int RecurseAwait(int depth, rill_future *gate) {
  volatile char frame[512];
  std::memset((char *)frame, depth, sizeof frame);
  if (depth > 0) return RecurseAwait(depth - 1, gate) + frame[0];
  return rill_await(gate);
}

TEST_F(CopyCoro, DestroyedWithTheLoopWhetherOnTheStackOrSaved) {
  rill_future *gate = NewFuture();
  rill_task *saved = SpawnCopy([&] {
    log.push_back("deep suspended");
    RecurseAwait(40, gate);
    log.push_back("resumed after close?!");
    return 0;
  });
  rill_task *owner = SpawnCopy([&] {
    log.push_back("owner suspended");
    rill_await(gate);
    log.push_back("resumed after close?!");
    return 0;
  });
  Run();
  CloseLoop();
  auto r = TakeReportMessages();
  ASSERT_EQ(r.size(), 2u);
  EXPECT_THAT(r[0], HasSubstr("destroyed"));
  EXPECT_THAT(r[1], HasSubstr("destroyed"));
  EXPECT_EQ(log, (std::vector<std::string>{"deep suspended", "owner suspended"}));
  rill_task_release(saved);
  rill_task_release(owner);
  rill_future_release(gate);
}

// Awaiting one another, values and failures through the task futures, and
// debug mode (the guard page filled at the low end of the shared stack).
TEST_F(CopyCoro, AwaitChainsValuesFailuresAndDebugMode) {
  ASSERT_EQ(rill_loop_set_debug(loop, 1), RILL_OK);
  rill_loop_set_slow_duration(loop, 10.0);
  int64_t total = 0;
  int fail_rc = 0;
  EXPECT_EQ(RunMain([&] {
              std::vector<rill_task *> kids;
              for (int i = 0; i < 10; i++)
                kids.push_back(SpawnCopy([i] {
                  volatile int local = i * i;
                  if (rill_sleep(0.001 * (10 - i)) != RILL_OK) return -1;
                  return rill_future_set_int(rill_task_future(rill_current_task()), local);
                }));
              rill_task *bad = SpawnCopy([] {
                if (rill_yield() != RILL_OK) return -1;
                return (int)RILL_EINVAL;
              });
              for (rill_task *k : kids) {
                if (rill_await(rill_task_future(k)) != RILL_OK) return -1;
                int64_t v = 0;
                rill_future_int(rill_task_future(k), &v);
                total += v;
                rill_task_release(k);
              }
              fail_rc = rill_await(rill_task_future(bad));
              rill_task_release(bad);
              return 0;
            }),
            RILL_OK);
  EXPECT_EQ(total, 285);
  EXPECT_EQ(fail_rc, RILL_EINVAL);
}

// 100,000 of them sleeping at once, gathered (W3's shape).
TEST_F(CopyCoro, HundredThousandConcurrentSleepsGathered) {
  constexpr size_t kN = 100000;
  size_t finished = 0, bad = 0;
  EXPECT_EQ(RunMain([&] {
              std::vector<rill_task *> tasks(kN);
              std::vector<rill_future *> futs(kN);
              for (size_t i = 0; i < kN; i++) {
                tasks[i] = SpawnCopy([&, i] {
                  volatile size_t mine = i;
                  int rc = rill_sleep(0.01);
                  if (mine != i) bad++;
                  finished++;
                  return rc;
                });
                if (!tasks[i]) return rill_last_error();
                futs[i] = rill_task_future(tasks[i]);
              }
              rill_future *g = rill_gather(loop, kN, futs.data(), 0);
              int rc = rill_await(g);
              rill_future_release(g);
              for (auto *t : tasks) rill_task_release(t);
              return rc;
            }),
            RILL_OK);
  EXPECT_EQ(finished, kN);
  EXPECT_EQ(bad, 0u);
}
