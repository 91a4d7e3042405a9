// The thread pool: rill_run_in_thread (asyncio's to_thread /
// run_in_executor), its cancel rules, its bounds, shutdown and close.
#include <pthread.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <mutex>
#include <thread>

#include "rill_test.h"
#include "sys_test.h"

using namespace rilltest;

namespace {

// A job whose behaviour the test sets; counts runs and frees.
struct Job {
  std::function<void(rill_work *)> fn;
  std::atomic<int> runs{0};
  std::atomic<int> frees{0};
  std::atomic<pthread_t> thread{};
};
void JobRun(rill_work *w, void *arg) {
  Job *j = static_cast<Job *>(arg);
  j->thread = pthread_self();
  j->runs++;
  if (j->fn) j->fn(w);
}
void JobFree(void *arg) { static_cast<Job *>(arg)->frees++; }

// A gate the test opens: jobs block on it.
struct Gate {
  std::mutex m;
  std::condition_variable cv;
  bool open = false;
  int waiting = 0;
  void Wait() {
    std::unique_lock<std::mutex> l(m);
    waiting++;
    cv.notify_all();
    cv.wait(l, [&] { return open; });
  }
  void WaitForWaiters(int n) {
    std::unique_lock<std::mutex> l(m);
    cv.wait(l, [&] { return waiting >= n; });
  }
  void Open() {
    std::lock_guard<std::mutex> l(m);
    open = true;
    cv.notify_all();
  }
};

const int kTag = 0;

class Pool : public RillTest {
 protected:
  ResourceSnapshot before;
  std::deque<Job> jobs;
  Job *NewJob(std::function<void(rill_work *)> fn) {
    jobs.emplace_back();
    jobs.back().fn = std::move(fn);
    return &jobs.back();
  }
  rill_future *Submit(Job *j) {
    rill_future *f = rill_run_in_thread(loop, JobRun, j, JobFree);
    EXPECT_NE(f, nullptr) << rill_last_error_message();
    return f;
  }
  void TearDown() override {
    RillTest::TearDown();
    for (size_t i = 0; i < jobs.size(); i++) EXPECT_EQ(jobs[i].frees.load(), 1) << "job #" << i;
    before.ExpectSame("after the test");
  }
};

}  // namespace

TEST_F(Pool, EveryValueKindReachesTheFuture) {
  Tracked *ptr = Track("pointer value");
  Tracked *payload = Track("failure payload");
  rill_future *f[7];
  f[0] = Submit(NewJob([](rill_work *) {}));  // nothing set: none
  f[1] = Submit(NewJob([](rill_work *w) { rill_work_set_bool(w, 1); }));
  f[2] = Submit(NewJob([](rill_work *w) { rill_work_set_int(w, -42); }));
  f[3] = Submit(NewJob([](rill_work *w) { rill_work_set_double(w, 2.5); }));
  f[4] = Submit(NewJob([](rill_work *w) { rill_work_set_bytes(w, "abc", 3); }));
  f[5] = Submit(NewJob([ptr](rill_work *w) { rill_work_set_pointer(w, ptr, TrackedFree, &kTag); }));
  f[6] = Submit(NewJob([payload](rill_work *w) {
    rill_work_fail(w, -1001, "it broke", payload, TrackedFree, &kTag);
  }));
  rill_future *all = rill_gather(loop, 7, f, RILL_GATHER_RETURN_ERRORS);
  EXPECT_EQ(rill_loop_run_until(loop, all), RILL_OK);
  EXPECT_EQ(rill_future_kind(f[0]), RILL_NONE);
  int b = 0;
  EXPECT_EQ(rill_future_bool(f[1], &b), RILL_OK);
  EXPECT_EQ(b, 1);
  int64_t i = 0;
  EXPECT_EQ(rill_future_int(f[2], &i), RILL_OK);
  EXPECT_EQ(i, -42);
  double d = 0;
  EXPECT_EQ(rill_future_double(f[3], &d), RILL_OK);
  EXPECT_EQ(d, 2.5);
  size_t len = 0;
  const void *bytes = rill_future_bytes(f[4], &len);
  ASSERT_EQ(len, 3u);
  EXPECT_EQ(std::string(static_cast<const char *>(bytes), len), "abc");
  EXPECT_EQ(rill_future_pointer(f[5], &kTag), ptr);
  EXPECT_EQ(rill_future_state(f[6]), RILL_FAILED);
  EXPECT_EQ(rill_future_error(f[6]), -1001);
  EXPECT_STREQ(rill_future_error_message(f[6]), "it broke");
  EXPECT_EQ(rill_future_error_payload(f[6], &kTag), payload);
  EXPECT_EQ(ptr->frees, 0);
  rill_future_release(all);
  for (auto *x : f) rill_future_release(x);
  EXPECT_EQ(ptr->frees, 1);
  EXPECT_EQ(payload->frees, 1);
}

TEST_F(Pool, WorkRunsOffTheLoopThreadAndFreeArgOnIt) {
  pthread_t loop_thread = pthread_self();
  Job *j = NewJob([](rill_work *w) { rill_work_set_int(w, 7); });
  rill_future *f = Submit(j);
  EXPECT_EQ(rill_loop_run_until(loop, f), RILL_OK);
  EXPECT_EQ(j->runs.load(), 1);
  EXPECT_FALSE(pthread_equal(j->thread.load(), loop_thread));
  EXPECT_EQ(j->frees.load(), 1) << "free_arg ran on the loop thread before the await returned";
  rill_future_release(f);
}

TEST_F(Pool, CoroutineAwaitsAThreadJob) {
  Job *j = NewJob([](rill_work *w) {
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
    rill_work_set_int(w, 99);
  });
  int64_t got = 0;
  EXPECT_EQ(RunMain([&] {
              rill_future *f = rill_run_in_thread(loop, JobRun, j, JobFree);
              int rc = rill_await(f);
              rill_future_int(f, &got);
              rill_future_release(f);
              return rc;
            }),
            RILL_OK);
  EXPECT_EQ(got, 99);
}

TEST_F(Pool, CancelBeforeStartNeverRunsTheJob) {
  ASSERT_EQ(rill_loop_set_thread_pool_size(loop, 1), RILL_OK);
  Gate gate;
  Job *blocker = NewJob([&](rill_work *) { gate.Wait(); });
  Job *queued = NewJob([](rill_work *) {});
  rill_future *fb = Submit(blocker);
  rill_future *fq = Submit(queued);
  gate.WaitForWaiters(1);  // the only thread is busy: fq stays queued
  EXPECT_EQ(rill_future_cancel(fq), 1);
  EXPECT_EQ(rill_future_state(fq), RILL_CANCELLED);
  EXPECT_EQ(queued->frees.load(), 1) << "free_arg runs at once: the job will never run";
  gate.Open();
  EXPECT_EQ(rill_loop_run_until(loop, fb), RILL_OK);
  EXPECT_EQ(rill_loop_shutdown(loop), RILL_OK);
  EXPECT_EQ(queued->runs.load(), 0);
  rill_future_release(fb);
  rill_future_release(fq);
}

TEST_F(Pool, CancelAfterStartDropsTheOutcome) {
  Tracked *value = Track("dropped value");
  Gate started;
  std::atomic<int> saw_cancel{0};
  Job *j = NewJob([&, value](rill_work *w) {
    started.Wait();  // open at once; counts as "started"
    for (int i = 0; i < 5000 && rill_work_cancelled(w) == 0; i++) usleep(1000);
    saw_cancel = rill_work_cancelled(w);
    rill_work_set_pointer(w, value, TrackedFree, &kTag);
  });
  started.Open();
  int rc = RunMain([&] {
    rill_future *f = rill_run_in_thread(loop, JobRun, j, JobFree);
    started.WaitForWaiters(1);
    rill_task *me = rill_current_task();
    // Cancel the awaiting task from a callback: the job's future is cancelled with it.
    Soon([me] { rill_task_cancel(me, "stop"); });
    int r = rill_await(f);
    log.push_back(r == RILL_ECANCELLED ? "await: cancelled" : "await: other");
    EXPECT_EQ(rill_future_state(f), RILL_CANCELLED);
    rill_future_release(f);
    return r;
  });
  EXPECT_EQ(rc, RILL_ECANCELLED);
  EXPECT_EQ(rill_loop_shutdown(loop), RILL_OK);  // waits for the job to end
  EXPECT_EQ(saw_cancel.load(), 1);
  EXPECT_EQ(j->runs.load(), 1);
  EXPECT_EQ(value->frees, 1) << "the outcome nobody can read is freed";
  EXPECT_THAT(log, ::testing::ElementsAre("await: cancelled"));
}

TEST_F(Pool, ThreadsAreBoundedAndStartedLazily) {
  int threads0 = ThreadCount();
  ASSERT_EQ(rill_loop_set_thread_pool_size(loop, 3), RILL_OK);
  EXPECT_EQ(ThreadCount(), threads0) << "no thread before the first job";
  std::atomic<int> now{0}, peak{0};
  rill_future *f[12];
  for (auto &x : f) {
    x = Submit(NewJob([&](rill_work *) {
      int n = ++now;
      int p = peak.load();
      while (n > p && !peak.compare_exchange_weak(p, n)) {
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
      now--;
    }));
  }
  EXPECT_LE(ThreadCount(), threads0 + 3);
  rill_future *all = rill_gather(loop, 12, f, 0);
  EXPECT_EQ(rill_loop_run_until(loop, all), RILL_OK);
  EXPECT_LE(peak.load(), 3);
  EXPECT_GE(peak.load(), 2) << "jobs do run in parallel";
  EXPECT_EQ(ThreadCount(), threads0 + 3);
  EXPECT_EQ(rill_loop_shutdown(loop), RILL_OK);
  EXPECT_EQ(ThreadCount(), threads0) << "shutdown joins the pool's threads";
  rill_future_release(all);
  for (auto *x : f) rill_future_release(x);
}

TEST_F(Pool, DefaultSizeIsCoresPlusFourAtMostThirtyTwo) {
  long cores = sysconf(_SC_NPROCESSORS_ONLN);
  int expect = cores + 4 < 32 ? (int)cores + 4 : 32;
  int threads0 = ThreadCount();
  Gate gate;
  std::vector<rill_future *> f;
  for (int i = 0; i < expect + 3; i++) f.push_back(Submit(NewJob([&](rill_work *) { gate.Wait(); })));
  gate.WaitForWaiters(expect);
  std::this_thread::sleep_for(std::chrono::milliseconds(20));
  EXPECT_EQ(ThreadCount(), threads0 + expect);
  gate.Open();
  rill_future *all = rill_gather(loop, f.size(), f.data(), 0);
  EXPECT_EQ(rill_loop_run_until(loop, all), RILL_OK);
  rill_future_release(all);
  for (auto *x : f) rill_future_release(x);
}

TEST_F(Pool, OneWakeUpCompletesEveryFinishedJob) {
  std::atomic<int> finished{0};
  rill_future *f[8];
  for (auto &x : f) x = Submit(NewJob([&](rill_work *w) { rill_work_set_int(w, 1); finished++; }));
  while (finished.load() < 8) std::this_thread::sleep_for(std::chrono::milliseconds(1));
  std::this_thread::sleep_for(std::chrono::milliseconds(5));
  // One drain callback completes all eight futures.
  EXPECT_EQ(rill_loop_run_once(loop, 1.0), 1);
  for (auto *x : f) EXPECT_EQ(rill_future_state(x), RILL_DONE);
  for (auto *x : f) rill_future_release(x);
}

TEST_F(Pool, ShutdownWaitsForJobsAndKeepsTheLoopUsable) {
  int threads0 = ThreadCount();
  Job *j = NewJob([](rill_work *w) {
    std::this_thread::sleep_for(std::chrono::milliseconds(30));
    rill_work_set_int(w, 5);
  });
  rill_future *f = Submit(j);
  EXPECT_EQ(rill_loop_shutdown(loop), RILL_OK);
  EXPECT_EQ(rill_future_state(f), RILL_DONE);
  EXPECT_EQ(ThreadCount(), threads0);
  rill_future_release(f);
  // The pool starts again on demand.
  rill_future *g = Submit(NewJob([](rill_work *w) { rill_work_set_int(w, 6); }));
  EXPECT_EQ(rill_loop_run_until(loop, g), RILL_OK);
  rill_future_release(g);
}

TEST_F(Pool, CloseDropsQueuedJobsAndWaitsForRunningOnes) {
  ASSERT_EQ(rill_loop_set_thread_pool_size(loop, 1), RILL_OK);
  Gate gate;
  Tracked *value = Track("value of a job that ends at close");
  Job *running = NewJob([&, value](rill_work *w) {
    gate.Wait();
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
    rill_work_set_pointer(w, value, TrackedFree, &kTag);
  });
  Job *queued = NewJob([](rill_work *) {});
  rill_future *fr = Submit(running);
  rill_future *fq = Submit(queued);
  gate.WaitForWaiters(1);
  gate.Open();
  CloseLoop();
  EXPECT_EQ(running->runs.load(), 1);
  EXPECT_EQ(queued->runs.load(), 0);
  EXPECT_EQ(rill_future_state(fr), RILL_CANCELLED);
  EXPECT_EQ(rill_future_state(fq), RILL_CANCELLED);
  EXPECT_EQ(value->frees, 1);
  rill_future_release(fr);
  rill_future_release(fq);
}

TEST_F(Pool, ReleasingTheFutureDoesNotCancelTheJob) {
  std::atomic<int> done{0};
  Job *j = NewJob([&](rill_work *w) { rill_work_set_bytes(w, "x", 1); done++; });
  rill_future_release(Submit(j));
  EXPECT_EQ(rill_loop_shutdown(loop), RILL_OK);
  EXPECT_EQ(done.load(), 1);
}

TEST_F(Pool, TwoLoopsOnTwoThreadsUseTheirOwnPools) {
  int threads0 = ThreadCount();
  std::atomic<int> ok{0};
  auto body = [&] {
    rill_loop *l = rill_loop_new();
    Job j;
    j.fn = [](rill_work *w) { rill_work_set_int(w, 3); };
    for (int i = 0; i < 200; i++) {
      rill_future *f = rill_run_in_thread(l, JobRun, &j, nullptr);
      if (rill_loop_run_until(l, f) == RILL_OK) ok++;
      rill_future_release(f);
    }
    rill_loop_free(l);
  };
  std::thread a(body), b(body);
  a.join();
  b.join();
  EXPECT_EQ(ok.load(), 400);
  for (int i = 0; i < 200 && ThreadCount() != threads0; i++) usleep(1000);
  EXPECT_EQ(ThreadCount(), threads0) << "each loop's close joined its pool";
}

TEST_F(Pool, ASharedPoolServesBothLoops) {
  int threads0 = ThreadCount();
  rill_loop *other = rill_loop_new();
  ASSERT_NE(other, nullptr);
  ASSERT_EQ(rill_loop_set_thread_pool_size(loop, 2), RILL_OK);
  ASSERT_EQ(rill_loop_share_thread_pool(other, loop), RILL_OK);
  ASSERT_EQ(rill_loop_share_thread_pool(other, loop), RILL_OK) << "twice is a no-op";
  std::atomic<int> ran{0};
  std::thread th([&] {
    Job j;
    j.fn = [&](rill_work *) { ran++; };
    for (int i = 0; i < 100; i++) {
      rill_future *f = rill_run_in_thread(other, JobRun, &j, nullptr);
      EXPECT_EQ(rill_loop_run_until(other, f), RILL_OK);
      rill_future_release(f);
    }
  });
  for (int i = 0; i < 100; i++) {
    rill_future *f = Submit(NewJob([&](rill_work *) { ran++; }));
    EXPECT_EQ(rill_loop_run_until(loop, f), RILL_OK);
    rill_future_release(f);
  }
  th.join();
  EXPECT_EQ(ran.load(), 200);
  EXPECT_LE(ThreadCount(), threads0 + 2) << "one pool of two threads for both loops";
  rill_loop_free(other);
}

TEST_F(Pool, BadInput) {
  rill_loop *closed = ClosedLoopEnvironment::Loop();
  Job *j = NewJob(nullptr);
  EXPECT_NULL_WITH(rill_run_in_thread(nullptr, JobRun, j, JobFree), RILL_EINVAL);
  EXPECT_NULL_WITH(rill_run_in_thread(loop, nullptr, j, JobFree), RILL_EINVAL);
  EXPECT_NULL_WITH(rill_run_in_thread(closed, JobRun, j, JobFree), RILL_ECLOSED);
  EXPECT_EQ(j->frees.load(), 0) << "free_arg is not called on failure";
  j->frees = 1;  // never handed over
  EXPECT_FAILS_WITH(rill_work_set_none(nullptr), RILL_EINVAL);
  EXPECT_FAILS_WITH(rill_work_set_int(nullptr, 1), RILL_EINVAL);
  EXPECT_FAILS_WITH(rill_work_set_bytes(nullptr, "a", 1), RILL_EINVAL);
  EXPECT_FAILS_WITH(rill_work_fail(nullptr, -1001, "x", nullptr, nullptr, nullptr), RILL_EINVAL);
  EXPECT_FAILS_WITH(rill_work_cancelled(nullptr), RILL_EINVAL);
  EXPECT_FAILS_WITH(rill_loop_set_thread_pool_size(nullptr, 2), RILL_EINVAL);
  EXPECT_FAILS_WITH(rill_loop_set_thread_pool_size(loop, 0), RILL_EINVAL);
  EXPECT_FAILS_WITH(rill_loop_set_thread_pool_size(loop, 1025), RILL_EINVAL);
  EXPECT_FAILS_WITH(rill_loop_set_thread_pool_size(closed, 2), RILL_ECLOSED);
  EXPECT_FAILS_WITH(rill_loop_share_thread_pool(loop, loop), RILL_EINVAL);
  EXPECT_FAILS_WITH(rill_loop_share_thread_pool(loop, nullptr), RILL_EINVAL);
  EXPECT_FAILS_WITH(rill_loop_share_thread_pool(loop, closed), RILL_ECLOSED);

  // Inside a job: a second outcome, a non-negative failure code, NULL bytes.
  Tracked *kept = Track("pointer refused by a second setter");
  Tracked *payload = Track("payload of a refused failure");
  std::atomic<int> codes[4];
  Job *k = NewJob([&](rill_work *w) {
    rill_work_set_int(w, 1);
    codes[0] = rill_work_set_pointer(w, kept, TrackedFree, &kTag);
    codes[1] = rill_work_fail(w, -1001, "x", payload, TrackedFree, &kTag);
    codes[2] = rill_work_set_bytes(w, nullptr, 3);
    codes[3] = rill_work_cancelled(w);
  });
  rill_future *f = Submit(k);
  // Only the pool completes a job's future.
  EXPECT_FAILS_WITH(rill_future_set_int(f, 1), RILL_ESTATE);
  EXPECT_EQ(rill_loop_run_until(loop, f), RILL_OK);
  EXPECT_EQ(codes[0].load(), RILL_ESTATE);
  EXPECT_EQ(codes[1].load(), RILL_ESTATE);
  EXPECT_EQ(codes[2].load(), RILL_ESTATE);
  EXPECT_EQ(codes[3].load(), 0);
  EXPECT_EQ(kept->frees, 0);
  kept->frees = 1;  // stayed the job's
  EXPECT_EQ(payload->frees, 1) << "a refused failure frees its payload";
  int64_t v = 0;
  EXPECT_EQ(rill_future_int(f, &v), RILL_OK);
  EXPECT_EQ(v, 1);
  // A job in flight forbids switching pools.
  Gate gate;
  rill_loop *other = rill_loop_new();
  rill_future *g = Submit(NewJob([&](rill_work *) { gate.Wait(); }));
  EXPECT_FAILS_WITH(rill_loop_share_thread_pool(loop, other), RILL_ESTATE);
  gate.Open();
  EXPECT_EQ(rill_loop_run_until(loop, g), RILL_OK);
  rill_future_release(g);
  rill_future_release(f);
  rill_loop_free(other);
}

TEST_F(Pool, FailureCodesAndCancelCodeFromTheJob) {
  rill_future *f = Submit(NewJob([](rill_work *w) { rill_work_fail(w, RILL_ECANCELLED, nullptr, nullptr, nullptr, nullptr); }));
  rill_future *g = Submit(NewJob([](rill_work *w) { rill_work_fail(w, -1002, nullptr, nullptr, nullptr, nullptr); }));
  EXPECT_EQ(rill_loop_run_until(loop, f), RILL_ECANCELLED);
  EXPECT_EQ(rill_loop_run_until(loop, g), -1002);
  EXPECT_EQ(rill_future_state(f), RILL_CANCELLED);
  EXPECT_STREQ(rill_future_error_message(g), "");
  rill_future_release(f);
  rill_future_release(g);
}
