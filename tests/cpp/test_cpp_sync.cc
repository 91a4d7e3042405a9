// rill.hpp's sync primitives: event, mutex (RAII guard), semaphore,
// condition, barrier, queue<T>.
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include <rill.hpp>

namespace {

using log_t = std::vector<std::string>;

rill::task<void> locker(rill::mutex m, log_t &log, std::string name) {
  auto g = co_await m.lock();
  log.push_back(name + " in");
  co_await rill::yield();
  log.push_back(name + " out");
}  // g unlocks

rill::task<void> mutex_main(log_t &log) {
  rill::mutex m;
  EXPECT_FALSE(m.locked());
  {
    auto g = co_await m.lock();  // uncontended: no suspension
    EXPECT_TRUE(m.locked());
    EXPECT_TRUE(g.owns_lock());
    EXPECT_FALSE(m.try_lock());
  }
  EXPECT_FALSE(m.locked());
  auto a = rill::spawn(locker(m, log, "a"));
  auto b = rill::spawn(locker(m, log, "b"));
  auto c = rill::spawn(locker(m, log, "c"));
  co_await rill::gather(std::move(a), std::move(b), std::move(c));
  EXPECT_FALSE(m.locked());
  try {
    m.unlock();
    ADD_FAILURE() << "unlock of an unlocked mutex";
  } catch (const rill::error &e) {
    EXPECT_EQ(e.code(), RILL_ENOTLOCKED);
  }
}

TEST(CppSync, MutexGuardUnlocksAndWaitersGoInOrder) {
  log_t log;
  rill::run(mutex_main(log));
  EXPECT_EQ(log, (log_t{"a in", "a out", "b in", "b out", "c in", "c out"}));
}

rill::task<void> cancelled_waiter(rill::mutex m, log_t &log) {
  try {
    auto g = co_await m.lock();
    log.push_back("got it");
  } catch (const rill::cancelled_error &) {
    log.push_back("cancelled");
    throw;
  }
}

rill::task<void> cancel_main(log_t &log) {
  rill::mutex m;
  auto g = co_await m.lock();
  auto w = rill::spawn(cancelled_waiter(m, log));
  auto other = rill::spawn(locker(m, log, "other"));
  co_await rill::yield();
  g.unlock();  // handed to w ...
  w.cancel();  // ... which passes it on
  co_await other;
  EXPECT_TRUE(w.cancelled());
  EXPECT_FALSE(m.locked());
}

TEST(CppSync, AWaiterCancelledAfterTheHandOffPassesTheLockOn) {
  log_t log;
  rill::run(cancel_main(log));
  EXPECT_EQ(log, (log_t{"cancelled", "other in", "other out"}));
}

rill::task<void> event_waiter(rill::event e, log_t &log, std::string name) {
  co_await e.wait();
  log.push_back(name);
}

rill::task<void> event_main(log_t &log) {
  rill::event e;
  auto a = rill::spawn(event_waiter(e, log, "a"));
  auto b = rill::spawn(event_waiter(e, log, "b"));
  co_await rill::sleep(0.002);
  EXPECT_FALSE(e.is_set());
  e.set();
  e.clear();
  co_await a;
  co_await b;
}

TEST(CppSync, EventWakesEveryWaiter) {
  log_t log;
  rill::run(event_main(log));
  EXPECT_EQ(log, (log_t{"a", "b"}));
}

rill::task<int> semaphore_main() {
  rill::semaphore s(2, true);
  co_await s.acquire();
  co_await s.acquire();
  EXPECT_TRUE(s.locked());
  EXPECT_FALSE(s.try_acquire());
  s.release();
  s.release();
  EXPECT_EQ(s.value(), 2);
  try {
    s.release();
  } catch (const rill::error &e) {
    co_return e.code();
  }
  co_return 0;
}

TEST(CppSync, BoundedSemaphoreReleasedTooOftenThrows) {
  EXPECT_EQ(rill::run(semaphore_main()), RILL_ETOOMANY);
}

rill::task<void> consumer(rill::condition c, int &items, log_t &log) {
  auto g = co_await c.lock();
  co_await c.wait_for([&] { return items > 0; });
  items--;
  log.push_back("consumed");
}

rill::task<void> condition_main(log_t &log) {
  rill::condition c;
  int items = 0;
  auto t = rill::spawn(consumer(c, items, log));
  co_await rill::sleep(0.002);
  {
    auto g = co_await c.lock();
    EXPECT_EQ(c.notify(), 1);  // spurious: nothing yet, it waits again
  }
  co_await rill::sleep(0.002);
  {
    auto g = co_await c.lock();
    items = 1;
    log.push_back("produced");
    EXPECT_EQ(c.notify_all(), 1);
  }
  co_await t;
  EXPECT_EQ(items, 0);
  EXPECT_FALSE(c.get_mutex().locked());
}

TEST(CppSync, ConditionWaitForAPredicate) {
  log_t log;
  rill::run(condition_main(log));
  EXPECT_EQ(log, (log_t{"produced", "consumed"}));
}

rill::task<int> party(rill::barrier b) { co_return co_await b.wait(); }

rill::task<int> barrier_main() {
  rill::barrier b(3);
  EXPECT_EQ(b.parties(), 3);
  auto [x, y, z] = co_await rill::gather(party(b), party(b), party(b));
  EXPECT_EQ(x + y + z, 0 + 1 + 2);
  auto lone = rill::spawn(party(b));
  co_await rill::yield();
  EXPECT_EQ(b.n_waiting(), 1);
  b.abort();
  EXPECT_TRUE(b.broken());
  try {
    co_await lone;
  } catch (const rill::error &e) {
    co_return e.code();
  }
  co_return 0;
}

TEST(CppSync, BarrierGivesIndicesAndAbortBreaksIt) {
  EXPECT_EQ(rill::run(barrier_main()), RILL_EBROKEN);
}

struct point {
  int x, y;
};

rill::task<void> queue_kinds_main() {
  rill::queue<int64_t> qi;
  rill::queue<double> qd;
  rill::queue<bool> qb;
  rill::queue<std::string> qs;
  rill::queue<point> qp;
  co_await qi.put(-7);
  co_await qd.put(0.5);
  qb.put_nowait(true);
  co_await qs.put(std::string("a\0b", 3));
  co_await qp.put(point{3, 4});
  EXPECT_EQ(co_await qi.get(), -7);
  EXPECT_EQ(co_await qd.get(), 0.5);
  EXPECT_EQ(qb.get_nowait(), true);
  EXPECT_EQ(co_await qs.get(), std::string("a\0b", 3));
  point p = co_await qp.get();
  EXPECT_EQ(p.x + p.y, 7);
  qp.put_nowait(point{1, 1});  // left in the queue: freed with it
  // The kinds are the core's: a C reader sees an int, a double, bytes.
  qi.put_nowait(5);
  rill_future *f = rill_queue_get_nowait(qi.native());
  EXPECT_EQ(rill_future_kind(f), RILL_INT);
  rill_future_release(f);
}

TEST(CppSync, QueueOfEachKind) { rill::run(queue_kinds_main()); }

rill::task<void> producer(rill::queue<int64_t> q, int n) {
  for (int i = 1; i <= n; i++) co_await q.put(i);
}

rill::task<int64_t> summer(rill::queue<int64_t> q, int n) {
  int64_t sum = 0;
  for (int i = 0; i < n; i++) {
    sum += co_await q.get();
    q.task_done();
  }
  co_return sum;
}

rill::task<int64_t> pipeline_main() {
  rill::queue<int64_t> q(1);
  EXPECT_EQ(q.maxsize(), 1);
  auto p = rill::spawn(producer(q, 10000));
  auto s = rill::spawn(summer(q, 10000));
  co_await q.join();
  co_await p;
  co_return co_await s;
}

TEST(CppSync, ProducerAndConsumerThroughAMaxsizeOneQueue) {
  EXPECT_EQ(rill::run(pipeline_main()), 50005000);
}

rill::task<int> blocked_get(rill::queue<std::string> q) {
  try {
    co_await q.get();
  } catch (const rill::error &e) {
    co_return e.code();
  }
  co_return 0;
}

rill::task<void> queue_codes_main() {
  rill::queue<std::string> q(1, RILL_QUEUE_LIFO);
  EXPECT_TRUE(q.empty());
  try {
    q.get_nowait();
    ADD_FAILURE();
  } catch (const rill::error &e) {
    EXPECT_EQ(e.code(), RILL_EEMPTY);
  }
  q.put_nowait("x");
  EXPECT_TRUE(q.full());
  EXPECT_EQ(q.size(), 1);
  try {
    q.put_nowait("y");
    ADD_FAILURE();
  } catch (const rill::error &e) {
    EXPECT_EQ(e.code(), RILL_EFULL);
  }
  EXPECT_EQ(q.get_nowait(), "x");
  auto g = rill::spawn(blocked_get(q));
  co_await rill::yield();
  q.shutdown();
  EXPECT_TRUE(q.is_shut_down());
  EXPECT_EQ(co_await g, RILL_ESHUTDOWN);
  try {
    co_await q.put("z");
    ADD_FAILURE();
  } catch (const rill::error &e) {
    EXPECT_EQ(e.code(), RILL_ESHUTDOWN);
  }
  try {
    q.task_done();
    q.task_done();
    ADD_FAILURE();
  } catch (const rill::error &e) {
    EXPECT_EQ(e.code(), RILL_ETOOMANY);
  }
}

TEST(CppSync, QueueCodesAndShutdown) { rill::run(queue_codes_main()); }

rill::task<std::vector<int64_t>> priority_main() {
  rill::queue<int64_t> q(0, RILL_QUEUE_PRIORITY);
  q.put_nowait(1, 3);
  q.put_nowait(2, 1);
  q.put_nowait(3, 3);
  q.put_nowait(4, 2);
  std::vector<int64_t> out;
  while (!q.empty()) out.push_back(co_await q.get());
  co_return out;
}

TEST(CppSync, PriorityQueueOrder) {
  EXPECT_EQ(rill::run(priority_main()), (std::vector<int64_t>{2, 4, 1, 3}));
}

}  // namespace
