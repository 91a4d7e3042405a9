// rill_call_soon_threadsafe: the one call safe from any thread. (B8)
#include <atomic>
#include <thread>

#include "rill_test.h"

using namespace rilltest;

using Threads = RillTest;

namespace {

constexpr int kThreads = 8;
constexpr int kCallsPerThread = 10000;

struct Receiver {
  rill_future *all_arrived;
  int received = 0;
  int next_seq[kThreads] = {};
  int out_of_order = 0;
  std::atomic<int> frees{0};
};

struct Message {
  Receiver *rx;
  int thread, seq;
};

void OnMessage(void *arg) {
  Message *m = static_cast<Message *>(arg);
  Receiver *rx = m->rx;
  if (m->seq != rx->next_seq[m->thread]) rx->out_of_order++;
  rx->next_seq[m->thread] = m->seq + 1;
  if (++rx->received == kThreads * kCallsPerThread) rill_future_set_none(rx->all_arrived);
}

void FreeMessage(void *arg) {
  Message *m = static_cast<Message *>(arg);
  m->rx->frees.fetch_add(1, std::memory_order_relaxed);
  delete m;
}

}  // namespace

TEST_F(Threads, CallSoonThreadsafeFromEightThreadsAllArriveFifoPerThread) {
  Receiver rx;
  rx.all_arrived = NewFuture();
  std::atomic<int> failures{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; t++) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < kCallsPerThread; i++) {
        Message *m = new Message{&rx, t, i};
        if (rill_call_soon_threadsafe(loop, OnMessage, m, FreeMessage) != RILL_OK) {
          failures++;
          delete m;
        }
      }
    });
  }
  // run_until waits for other threads even when the loop has no work.
  EXPECT_EQ(rill_loop_run_until(loop, rx.all_arrived), RILL_OK);
  for (auto &th : threads) th.join();
  EXPECT_EQ(failures.load(), 0);
  EXPECT_EQ(rx.received, kThreads * kCallsPerThread);
  EXPECT_EQ(rx.out_of_order, 0);
  for (int t = 0; t < kThreads; t++) EXPECT_EQ(rx.next_seq[t], kCallsPerThread) << "thread " << t;
  EXPECT_EQ(rx.frees.load(), kThreads * kCallsPerThread) << "each free_arg exactly once";
  rill_future_release(rx.all_arrived);
}

TEST_F(Threads, CallSoonThreadsafeWakesALoopBlockedInRunOnce) {
  Cb *cb = NewCb([this] { log.push_back("from thread"); });
  std::thread th([&] {
    BusyWait(0.05);
    EXPECT_EQ(rill_call_soon_threadsafe(loop, CbRun, cb, CbFree), RILL_OK);
  });
  double t0 = MonoNow();
  int n = 0;
  while (n == 0 && MonoNow() - t0 < 5.0) n = rill_loop_run_once(loop, 5.0);
  double dt = MonoNow() - t0;
  th.join();
  EXPECT_EQ(n, 1);
  EXPECT_LT(dt, 0.05 + 1.0) << "woken, not left asleep until max_wait";
  EXPECT_EQ(log, (std::vector<std::string>{"from thread"}));
}

TEST_F(Threads, RunUntilWaitsForAnotherThreadWithNoOtherWork) {
  rill_future *f = NewFuture();
  Cb *cb = NewCb([f] { rill_future_set_int(f, 11); });
  std::thread th([&] {
    BusyWait(0.05);
    EXPECT_EQ(rill_call_soon_threadsafe(loop, CbRun, cb, CbFree), RILL_OK);
  });
  EXPECT_EQ(rill_loop_run_until(loop, f), RILL_OK);
  th.join();
  int64_t v = 0;
  EXPECT_EQ(rill_future_int(f, &v), RILL_OK);
  EXPECT_EQ(v, 11);
  rill_future_release(f);
}

TEST_F(Threads, CallSoonThreadsafeOnAClosedLoopGivesEClosed) {
  CloseLoop();
  Tracked *arg = Track("not freed on failure");
  int rc = 0, last = 0;
  std::thread th([&] {
    rc = rill_call_soon_threadsafe(loop, CbRun, arg, TrackedFree);
    last = rill_last_error();
  });
  th.join();
  EXPECT_EQ(rc, RILL_ECLOSED);
  EXPECT_EQ(last, RILL_ECLOSED) << "recorded on the calling thread";
  EXPECT_EQ(arg->frees, 0) << "free_arg is not called on failure";
  arg->frees = 1;  // the test owns it
}

TEST_F(Threads, CallSoonThreadsafeCallbacksLeftAtCloseAreFreed) {
  Cb *cb = NewCb([this] { log.push_back("ran"); });
  std::thread th([&] { EXPECT_EQ(rill_call_soon_threadsafe(loop, CbRun, cb, CbFree), RILL_OK); });
  th.join();
  CloseLoop();
  EXPECT_EQ(cb->runs, 0);
  EXPECT_EQ(cb->frees, 1);
}

TEST_F(Threads, CallSoonThreadsafeBeforeCallSoonRunsFirstFromAnotherThread) {
  // One FIFO, as asyncio's: posted before the call_soon, run before it.
  Cb *posted = NewCb([this] { log.push_back("threadsafe"); });
  std::thread th([&] { EXPECT_EQ(rill_call_soon_threadsafe(loop, CbRun, posted, CbFree), RILL_OK); });
  th.join();
  Soon([this] { log.push_back("soon"); });
  Run();
  EXPECT_EQ(log, (std::vector<std::string>{"threadsafe", "soon"}));
}

TEST_F(Threads, CallSoonThreadsafeAndCallSoonInterleavedOnTheLoopThreadKeepTheirOrder) {
  Soon([this] {
    for (int i = 0; i < 3; i++) {
      Cb *ts = NewCb([this, i] { log.push_back("ts" + std::to_string(i)); });
      EXPECT_EQ(rill_call_soon_threadsafe(loop, CbRun, ts, CbFree), RILL_OK);
      Soon([this, i] { log.push_back("soon" + std::to_string(i)); });
    }
  });
  Run();
  EXPECT_EQ(log, (std::vector<std::string>{"ts0", "soon0", "ts1", "soon1", "ts2", "soon2"}));
}

TEST_F(Threads, LastErrorIsPerThread) {
  rill_future_state(nullptr);
  ASSERT_EQ(rill_last_error(), RILL_EINVAL);
  int other = 1;
  std::thread th([&] { other = rill_last_error(); });
  th.join();
  EXPECT_EQ(other, 0) << "a thread that made no failing call";
  EXPECT_EQ(rill_last_error(), RILL_EINVAL);
}
