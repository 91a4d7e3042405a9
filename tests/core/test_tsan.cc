// Cross-thread paths that ThreadSanitizer checks (the `tsan` ctest runs
// these with test_threads.cc and test_pool.cc in a -fsanitize=thread build;
// they also run in every ordinary build).
#include <atomic>
#include <thread>

#include "rill_test.h"
#include "sys_test.h"

using namespace rilltest;

namespace {

struct Counter {
  int ran = 0;                // loop thread only
  std::atomic<int> frees{0};  // any thread (a refused call frees nothing)
};
void CountRun(void *a) { static_cast<Counter *>(a)->ran++; }
void CountFree(void *a) { static_cast<Counter *>(a)->frees++; }

using ThreadsafeRace = RillTest;

}  // namespace

TEST_F(ThreadsafeRace, FourThreadsCallSoonThreadsafeWhileTheLoopRuns) {
  Counter c;
  std::atomic<int> ok{0};
  std::atomic<bool> stop{false};
  rill_future *enough = NewFuture();
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; t++) {
    threads.emplace_back([&] {
      for (int i = 0; i < 5000 && !stop.load(); i++)
        if (rill_call_soon_threadsafe(loop, CountRun, &c, CountFree) == RILL_OK) ok++;
    });
  }
  // A watcher task on the loop ends the run once every call arrived.
  std::atomic<int> joined{0};
  std::thread joiner([&] {
    for (auto &th : threads) th.join();
    joined = 1;
    rill_loop_interrupt(loop);
  });
  while (!(joined.load() && c.ran == ok.load())) rill_loop_run_once(loop, 0.01);
  joiner.join();
  EXPECT_EQ(c.ran, 20000);
  EXPECT_EQ(c.frees.load(), 20000);
  rill_future_release(enough);
}

TEST_F(ThreadsafeRace, FourThreadsCallSoonThreadsafeWhileTheLoopCloses) {
  Counter c;
  std::atomic<int> ok{0}, closed{0}, started{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; t++) {
    threads.emplace_back([&] {
      started++;
      for (;;) {
        int rc = rill_call_soon_threadsafe(loop, CountRun, &c, CountFree);
        if (rc == RILL_OK) ok++;
        else if (rc == RILL_ECLOSED) {
          closed++;
          return;
        } else {
          ADD_FAILURE() << rill_err_name(rc);
          return;
        }
      }
    });
  }
  while (started.load() < 4) std::this_thread::yield();
  for (int i = 0; i < 20; i++) rill_loop_run_once(loop, 0);
  CloseLoop();  // calls racing with close either ran, were dropped, or got ECLOSED
  for (auto &th : threads) th.join();
  EXPECT_EQ(closed.load(), 4);
  EXPECT_EQ(c.frees.load(), ok.load()) << "every accepted call's free_arg ran once";
  EXPECT_LE(c.ran, ok.load());
}

namespace {
void AddOne(rill_work *w, void *arg) {
  static_cast<std::atomic<int> *>(arg)->fetch_add(1);
  rill_work_set_int(w, 1);
}
}  // namespace

TEST_F(ThreadsafeRace, ThreadJobsFromTwoLoopsSharingAPoolWhileOneCloses) {
  ResourceSnapshot before;
  std::atomic<int> hits{0};
  rill_loop *other = rill_loop_new();
  ASSERT_EQ(rill_loop_set_thread_pool_size(loop, 4), RILL_OK);
  ASSERT_EQ(rill_loop_share_thread_pool(other, loop), RILL_OK);
  std::thread th([&] {
    for (int i = 0; i < 300; i++) {
      rill_future *f = rill_run_in_thread(other, AddOne, &hits, nullptr);
      rill_loop_run_until(other, f);
      rill_future_release(f);
    }
    // Leaves jobs queued and running: close drops or waits for them.
    for (int i = 0; i < 50; i++) rill_future_release(rill_run_in_thread(other, AddOne, &hits, nullptr));
    rill_loop_free(other);
  });
  std::vector<rill_future *> fs;
  for (int i = 0; i < 300; i++) fs.push_back(rill_run_in_thread(loop, AddOne, &hits, nullptr));
  rill_future *all = rill_gather(loop, fs.size(), fs.data(), 0);
  EXPECT_EQ(rill_loop_run_until(loop, all), RILL_OK);
  th.join();
  rill_future_release(all);
  for (auto *f : fs) rill_future_release(f);
  EXPECT_GE(hits.load(), 600);
  EXPECT_LE(hits.load(), 650);
  EXPECT_EQ(rill_loop_shutdown(loop), RILL_OK);
  before.ExpectSame("after shutdown");
}
