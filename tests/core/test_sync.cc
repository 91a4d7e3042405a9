// Sync primitives: Event, Lock, Semaphore, Condition, Barrier, Queue.
// (asyncio group K: Lib/asyncio/locks.py, queues.py.)
#include <cstring>

#include "rill_test.h"

using namespace rilltest;

using SyncEvent = RillTest;
using SyncLock = RillTest;
using SyncSemaphore = RillTest;
using SyncCondition = RillTest;
using SyncBarrier = RillTest;
using SyncQueue = RillTest;
using SyncClose = RillTest;
using SyncBadInput = RillTest;
using SyncStep = RillTest;

static const std::string kCancelled = std::to_string(RILL_ECANCELLED);

// Awaits f (a reference, released here) from a coroutine; the await's code.
static int AwaitRelease(rill_future *f) {
  if (!f) return rill_last_error();
  int rc = rill_await(f);
  rill_future_release(f);
  return rc;
}

static int64_t IntOf(rill_future *f) {
  int64_t v = -1;
  EXPECT_EQ(rill_future_int(f, &v), RILL_OK) << rill_last_error_message();
  return v;
}

// A coroutine task that logs "<name> <what>" at each step it reaches.
struct Logger {
  std::vector<std::string> &log;
  void operator()(const std::string &s) const { log.push_back(s); }
};

// ------------------------------------------------------------------ Event

TEST_F(SyncEvent, WaitOnASetEventDoesNotYield) {
  rill_event *e = rill_event_new(loop);
  ASSERT_NE(e, nullptr);
  EXPECT_EQ(rill_event_is_set(e), 0);
  EXPECT_EQ(rill_event_set(e), RILL_OK);
  EXPECT_EQ(rill_event_is_set(e), 1);
  EXPECT_EQ(RunMain([&] {
              Soon([&] { log.push_back("soon"); });
              rill_future *f = rill_event_wait(e);
              EXPECT_EQ(rill_future_is_done(f), 1);
              int rc = AwaitRelease(f);
              log.push_back("waited " + std::to_string(rc));
              return rill_yield();
            }),
            RILL_OK);
  EXPECT_EQ(log, (std::vector<std::string>{"waited 0", "soon"}));
  rill_event_release(e);
}

TEST_F(SyncEvent, SetWakesEveryWaiterInOrderEvenIfClearedBeforeTheyRun) {
  rill_event *e = rill_event_new(loop);
  std::vector<rill_task *> ts;
  for (int i = 0; i < 4; i++)
    ts.push_back(Spawn([&, i] {
      int rc = AwaitRelease(rill_event_wait(e));
      log.push_back("w" + std::to_string(i) + " " + std::to_string(rc));
      return rc;
    }));
  Later(0.005, [&] {
    EXPECT_EQ(rill_event_set(e), RILL_OK);
    EXPECT_EQ(rill_event_clear(e), RILL_OK);
    EXPECT_EQ(rill_event_is_set(e), 0);
  });
  Run();
  EXPECT_EQ(log, (std::vector<std::string>{"w0 0", "w1 0", "w2 0", "w3 0"}));
  for (auto *t : ts) rill_task_release(t);
  rill_event_release(e);
}

TEST_F(SyncEvent, ACancelledWaitIsRemovedOthersStillWake) {
  rill_event *e = rill_event_new(loop);
  rill_future *a = rill_event_wait(e), *b = rill_event_wait(e);
  EXPECT_EQ(rill_future_cancel(a), 1);
  EXPECT_EQ(rill_future_state(a), RILL_CANCELLED);
  EXPECT_EQ(rill_event_set(e), RILL_OK);
  EXPECT_EQ(rill_future_state(b), RILL_DONE);
  EXPECT_EQ(rill_future_kind(b), RILL_NONE);
  rill_future_release(a);
  rill_future_release(b);
  rill_event_release(e);
}

// ------------------------------------------------------------------- Lock

TEST_F(SyncLock, UncontendedAcquireDoesNotYield) {
  rill_lock *l = rill_lock_new(loop);
  ASSERT_NE(l, nullptr);
  EXPECT_EQ(RunMain([&] {
              Soon([&] { log.push_back("soon"); });
              int rc = AwaitRelease(rill_lock_acquire(l));
              log.push_back("acquired " + std::to_string(rc));
              EXPECT_EQ(rill_lock_is_locked(l), 1);
              EXPECT_EQ(rill_lock_unlock(l), RILL_OK);
              EXPECT_EQ(rill_lock_is_locked(l), 0);
              return rill_yield();
            }),
            RILL_OK);
  EXPECT_EQ(log, (std::vector<std::string>{"acquired 0", "soon"}));
  rill_lock_release(l);
}

TEST_F(SyncLock, WaitersGetTheLockInFifoOrder) {
  rill_lock *l = rill_lock_new(loop);
  ASSERT_EQ(rill_lock_try_acquire(l), 1);
  std::vector<rill_task *> ts;
  for (int i = 0; i < 3; i++)
    ts.push_back(Spawn([&, i] {
      int rc = AwaitRelease(rill_lock_acquire(l));
      log.push_back("t" + std::to_string(i) + " has it " + std::to_string(rc));
      rill_yield();
      EXPECT_EQ(rill_lock_unlock(l), RILL_OK);
      return rc;
    }));
  Later(0.005, [&] { EXPECT_EQ(rill_lock_unlock(l), RILL_OK); });
  Run();
  EXPECT_EQ(log, (std::vector<std::string>{"t0 has it 0", "t1 has it 0", "t2 has it 0"}));
  EXPECT_EQ(rill_lock_is_locked(l), 0);
  for (auto *t : ts) rill_task_release(t);
  rill_lock_release(l);
}

TEST_F(SyncLock, NoBargingTheReleaserQueuesBehindTheWaiterItWoke) {
  rill_lock *l = rill_lock_new(loop);
  rill_task *a = Spawn([&] {
    AwaitRelease(rill_lock_acquire(l));
    rill_yield();  // b starts waiting
    rill_lock_unlock(l);
    rill_future *again = rill_lock_acquire(l);
    EXPECT_EQ(rill_future_is_done(again), 0) << "the lock was handed to b";
    EXPECT_EQ(rill_lock_try_acquire(l), 0);
    int rc = AwaitRelease(again);
    log.push_back("a again " + std::to_string(rc));
    return rill_lock_unlock(l);
  });
  rill_task *b = Spawn([&] {
    int rc = AwaitRelease(rill_lock_acquire(l));
    log.push_back("b " + std::to_string(rc));
    return rill_lock_unlock(l);
  });
  Run();
  EXPECT_EQ(log, (std::vector<std::string>{"b 0", "a again 0"}));
  rill_task_release(a);
  rill_task_release(b);
  rill_lock_release(l);
}

TEST_F(SyncLock, ACancelledWaiterIsSkipped) {
  rill_lock *l = rill_lock_new(loop);
  ASSERT_EQ(rill_lock_try_acquire(l), 1);
  rill_future *a = rill_lock_acquire(l), *b = rill_lock_acquire(l);
  EXPECT_EQ(rill_future_cancel(a), 1);
  EXPECT_EQ(rill_lock_unlock(l), RILL_OK);
  EXPECT_EQ(rill_future_state(a), RILL_CANCELLED);
  EXPECT_EQ(rill_future_state(b), RILL_DONE);
  EXPECT_EQ(rill_lock_is_locked(l), 1) << "b holds it";
  EXPECT_EQ(rill_lock_unlock(l), RILL_OK);
  EXPECT_EQ(rill_lock_is_locked(l), 0);
  rill_future_release(a);
  rill_future_release(b);
  rill_lock_release(l);
}

TEST_F(SyncLock, AWaiterCancelledJustAfterTheHandOffPassesTheLockOn) {
  rill_lock *l = rill_lock_new(loop);
  ASSERT_EQ(rill_lock_try_acquire(l), 1);
  rill_future *bf = nullptr;
  rill_task *b = Spawn([&] {
    bf = rill_lock_acquire(l);
    int rc = rill_await(bf);
    log.push_back("b " + std::to_string(rc));
    return rc;
  });
  rill_task *c = Spawn([&] {
    int rc = AwaitRelease(rill_lock_acquire(l));
    log.push_back("c " + std::to_string(rc));
    return rill_lock_unlock(l);
  });
  Later(0.005, [&] {
    EXPECT_EQ(rill_lock_unlock(l), RILL_OK);  // to b
    EXPECT_EQ(rill_future_state(bf), RILL_DONE);
    EXPECT_EQ(rill_task_cancel(b, nullptr), 1);  // before b runs
  });
  Run();
  EXPECT_EQ(log, (std::vector<std::string>{"b " + kCancelled, "c 0"}));
  EXPECT_EQ(rill_future_state(bf), RILL_CANCELLED) << "b's wait reads as cancelled";
  EXPECT_EQ(rill_lock_is_locked(l), 0);
  rill_future_release(bf);
  rill_task_release(b);
  rill_task_release(c);
  rill_lock_release(l);
}

TEST_F(SyncLock, AWaitNobodyHoldsIsSkipped) {
  rill_lock *l = rill_lock_new(loop);
  ASSERT_EQ(rill_lock_try_acquire(l), 1);
  rill_future_release(rill_lock_acquire(l));  // dropped: nobody could unlock
  rill_future *b = rill_lock_acquire(l);
  EXPECT_EQ(rill_lock_unlock(l), RILL_OK);
  EXPECT_EQ(rill_future_state(b), RILL_DONE);
  EXPECT_EQ(rill_lock_unlock(l), RILL_OK);
  EXPECT_EQ(rill_lock_is_locked(l), 0);
  rill_future_release(b);
  rill_lock_release(l);
}

TEST_F(SyncLock, UnlockingAnUnlockedLockIsENOTLOCKED) {
  rill_lock *l = rill_lock_new(loop);
  EXPECT_FAILS_WITH(rill_lock_unlock(l), RILL_ENOTLOCKED);
  EXPECT_STREQ(rill_last_error_message(), "Lock is not acquired.");
  EXPECT_EQ(rill_lock_try_acquire(l), 1);
  EXPECT_EQ(rill_lock_try_acquire(l), 0);
  EXPECT_EQ(rill_lock_unlock(l), RILL_OK);
  EXPECT_FAILS_WITH(rill_lock_unlock(l), RILL_ENOTLOCKED);
  EXPECT_EQ(rill_lock_retain(l), l);
  rill_lock_release(l);
  rill_lock_release(l);
}

// -------------------------------------------------------------- Semaphore

TEST_F(SyncSemaphore, CountsAndServesWaitersFifo) {
  rill_semaphore *s = rill_semaphore_new(loop, 2, 0);
  ASSERT_NE(s, nullptr);
  EXPECT_EQ(rill_semaphore_value(s), 2);
  rill_future *a = rill_semaphore_acquire(s), *b = rill_semaphore_acquire(s);
  EXPECT_EQ(rill_future_is_done(a), 1);
  EXPECT_EQ(rill_future_is_done(b), 1);
  EXPECT_EQ(rill_semaphore_is_locked(s), 1);
  EXPECT_EQ(rill_semaphore_try_acquire(s), 0);
  rill_future *c = rill_semaphore_acquire(s), *d = rill_semaphore_acquire(s);
  EXPECT_EQ(rill_future_is_done(c), 0);
  EXPECT_EQ(rill_semaphore_post(s), RILL_OK);
  EXPECT_EQ(rill_future_is_done(c), 1) << "first waiter first";
  EXPECT_EQ(rill_future_is_done(d), 0);
  EXPECT_EQ(rill_semaphore_value(s), 0);
  EXPECT_EQ(rill_semaphore_post(s), RILL_OK);
  EXPECT_EQ(rill_future_is_done(d), 1);
  for (int i = 0; i < 3; i++) EXPECT_EQ(rill_semaphore_post(s), RILL_OK);
  EXPECT_EQ(rill_semaphore_value(s), 3) << "an unbounded semaphore may grow";
  EXPECT_EQ(rill_semaphore_try_acquire(s), 1);
  EXPECT_EQ(rill_semaphore_value(s), 2);
  EXPECT_EQ(rill_semaphore_is_locked(s), 0);
  for (auto *f : {a, b, c, d}) rill_future_release(f);
  EXPECT_EQ(rill_semaphore_retain(s), s);
  rill_semaphore_release(s);
  rill_semaphore_release(s);
}

TEST_F(SyncSemaphore, BoundedReleasePastItsInitialValueIsETOOMANY) {
  rill_semaphore *s = rill_semaphore_new(loop, 1, 1);
  EXPECT_FAILS_WITH(rill_semaphore_post(s), RILL_ETOOMANY);
  EXPECT_EQ(rill_semaphore_value(s), 1);
  EXPECT_EQ(rill_semaphore_try_acquire(s), 1);
  EXPECT_EQ(rill_semaphore_post(s), RILL_OK);
  EXPECT_FAILS_WITH(rill_semaphore_post(s), RILL_ETOOMANY);
  rill_semaphore_release(s);
  rill_semaphore *zero = rill_semaphore_new(loop, 0, 1);
  EXPECT_FAILS_WITH(rill_semaphore_post(zero), RILL_ETOOMANY);
  rill_semaphore_release(zero);
}

TEST_F(SyncSemaphore, AWaiterCancelledJustAfterTheHandOffPassesTheUnitOn) {
  rill_semaphore *s = rill_semaphore_new(loop, 0, 1);
  rill_task *b = Spawn([&] {
    int rc = AwaitRelease(rill_semaphore_acquire(s));
    log.push_back("b " + std::to_string(rc));
    return rc;
  });
  rill_task *c = Spawn([&] {
    int rc = AwaitRelease(rill_semaphore_acquire(s));
    log.push_back("c " + std::to_string(rc));
    return rill_semaphore_post(s);
  });
  Later(0.005, [&] {
    // Bounded at 0 with waiters: the unit goes to b, then on to c.
    EXPECT_EQ(rill_semaphore_post(s), RILL_OK);
    rill_task_cancel(b, nullptr);
  });
  // The bound is the initial value (0): c's post back is past it.
  Run();
  EXPECT_EQ(log, (std::vector<std::string>{"b " + kCancelled, "c 0"}));
  EXPECT_EQ(rill_future_error(rill_task_future(c)), RILL_ETOOMANY);
  rill_task_release(b);
  rill_task_release(c);
  rill_semaphore_release(s);
}

TEST_F(SyncSemaphore, CancelledWaitersAreSkipped) {
  rill_semaphore *s = rill_semaphore_new(loop, 0, 0);
  rill_future *a = rill_semaphore_acquire(s), *b = rill_semaphore_acquire(s);
  EXPECT_EQ(rill_future_cancel(a), 1);
  EXPECT_EQ(rill_semaphore_post(s), RILL_OK);
  EXPECT_EQ(rill_future_state(b), RILL_DONE);
  EXPECT_EQ(rill_semaphore_value(s), 0);
  rill_future_release(a);
  rill_future_release(b);
  rill_semaphore_release(s);
}

// -------------------------------------------------------------- Condition

TEST_F(SyncCondition, WaitReleasesTheLockAndHoldsItAgainWhenNotified) {
  rill_condition *c = rill_condition_new(loop, nullptr);
  ASSERT_NE(c, nullptr);
  rill_lock *l = rill_condition_lock(c);
  int ready = 0;
  rill_task *w = Spawn([&] {
    AwaitRelease(rill_lock_acquire(l));
    while (!ready) {
      int rc = AwaitRelease(rill_condition_wait(c));
      log.push_back("woke " + std::to_string(rc) + " locked " +
                    std::to_string(rill_lock_is_locked(l)));
    }
    return rill_lock_unlock(l);
  });
  rill_task *n = Spawn([&] {
    rill_yield();
    EXPECT_EQ(rill_lock_is_locked(l), 0) << "the waiter released it";
    AwaitRelease(rill_lock_acquire(l));
    ready = 1;
    EXPECT_EQ(rill_condition_notify(c, 1), 1);
    log.push_back("notified");
    rill_yield();
    log.push_back("still holding");
    return rill_lock_unlock(l);
  });
  Run();
  EXPECT_EQ(log, (std::vector<std::string>{"notified", "still holding", "woke 0 locked 1"}));
  EXPECT_EQ(rill_lock_is_locked(l), 0);
  rill_task_release(w);
  rill_task_release(n);
  rill_condition_release(c);
}

TEST_F(SyncCondition, NotifyWakesNAndNotifyAllWakesTheRestInOrder) {
  rill_lock *l = rill_lock_new(loop);
  rill_condition *c = rill_condition_new(loop, l);
  EXPECT_EQ(rill_condition_lock(c), l);
  std::vector<rill_task *> ts;
  for (int i = 0; i < 4; i++)
    ts.push_back(Spawn([&, i] {
      AwaitRelease(rill_lock_acquire(l));
      int rc = AwaitRelease(rill_condition_wait(c));
      log.push_back("w" + std::to_string(i) + " " + std::to_string(rc));
      return rill_lock_unlock(l);
    }));
  rill_task *n = Spawn([&] {
    rill_sleep(0.005);
    AwaitRelease(rill_lock_acquire(l));
    EXPECT_EQ(rill_condition_notify(c, 2), 2);
    rill_lock_unlock(l);
    rill_sleep(0.005);
    log.push_back("again");
    AwaitRelease(rill_lock_acquire(l));
    EXPECT_EQ(rill_condition_notify_all(c), 2);
    EXPECT_EQ(rill_condition_notify_all(c), 0);
    return rill_lock_unlock(l);
  });
  Run();
  EXPECT_EQ(log, (std::vector<std::string>{"w0 0", "w1 0", "again", "w2 0", "w3 0"}));
  for (auto *t : ts) rill_task_release(t);
  rill_task_release(n);
  rill_condition_release(c);
  rill_lock_release(l);
}

TEST_F(SyncCondition, ACancelledWaitHoldsTheLockAgainAndNotifiesAnotherWaiter) {
  rill_condition *c = rill_condition_new(loop, nullptr);
  rill_lock *l = rill_condition_lock(c);
  rill_task *a = Spawn([&] {
    AwaitRelease(rill_lock_acquire(l));
    int rc = AwaitRelease(rill_condition_wait(c));
    log.push_back("a " + std::to_string(rc) + " locked " + std::to_string(rill_lock_is_locked(l)));
    rill_lock_unlock(l);
    return rc;
  });
  rill_task *b = Spawn([&] {
    AwaitRelease(rill_lock_acquire(l));
    int rc = AwaitRelease(rill_condition_wait(c));
    log.push_back("b " + std::to_string(rc));
    return rill_lock_unlock(l);
  });
  rill_task *holder = Spawn([&] {
    rill_sleep(0.005);
    AwaitRelease(rill_lock_acquire(l));
    rill_task_cancel(a, nullptr);  // a must wait for the lock before it ends
    rill_yield();
    rill_yield();
    log.push_back("holder unlocks");
    return rill_lock_unlock(l);
  });
  Run();
  // a's cancel passes a wake-up to b (asyncio 3.13), which queues for the
  // lock behind a.
  EXPECT_EQ(log, (std::vector<std::string>{"holder unlocks", "a " + kCancelled + " locked 1",
                                           "b 0"}));
  EXPECT_EQ(rill_future_state(rill_task_future(a)), RILL_CANCELLED);
  rill_task_release(a);
  rill_task_release(b);
  rill_task_release(holder);
  rill_condition_release(c);
}

TEST_F(SyncCondition, CancellingAPendingWaitFutureEndsItOnlyWithTheLock) {
  rill_condition *c = rill_condition_new(loop, nullptr);
  rill_lock *l = rill_condition_lock(c);
  ASSERT_EQ(rill_lock_try_acquire(l), 1);
  rill_future *w = rill_condition_wait(c);
  ASSERT_NE(w, nullptr);
  EXPECT_EQ(rill_lock_is_locked(l), 0);
  ASSERT_EQ(rill_lock_try_acquire(l), 1);
  EXPECT_EQ(rill_future_cancel(w), 1);
  EXPECT_EQ(rill_future_state(w), RILL_PENDING) << "waits for the lock";
  EXPECT_EQ(rill_future_cancel(w), 0) << "already cancelling";
  EXPECT_EQ(rill_lock_unlock(l), RILL_OK);
  EXPECT_EQ(rill_future_state(w), RILL_CANCELLED);
  EXPECT_EQ(rill_lock_is_locked(l), 1) << "handed to the cancelled wait";
  EXPECT_EQ(rill_lock_unlock(l), RILL_OK);
  rill_future_release(w);
  rill_condition_release(c);
}

TEST_F(SyncCondition, WaitAndNotifyWithoutTheLockAreENOTLOCKED) {
  rill_condition *c = rill_condition_new(loop, nullptr);
  EXPECT_NULL_WITH(rill_condition_wait(c), RILL_ENOTLOCKED);
  EXPECT_FAILS_WITH(rill_condition_notify(c, 1), RILL_ENOTLOCKED);
  EXPECT_FAILS_WITH(rill_condition_notify_all(c), RILL_ENOTLOCKED);
  ASSERT_EQ(rill_lock_try_acquire(rill_condition_lock(c)), 1);
  EXPECT_FAILS_WITH(rill_condition_notify(c, -1), RILL_EINVAL);
  EXPECT_EQ(rill_condition_notify(c, 5), 0);
  EXPECT_EQ(rill_condition_retain(c), c);
  rill_condition_release(c);
  rill_condition_release(c);
}

// ---------------------------------------------------------------- Barrier

TEST_F(SyncBarrier, PartiesPassTogetherWithTheirArrivalIndex) {
  rill_barrier *b = rill_barrier_new(loop, 3);
  ASSERT_NE(b, nullptr);
  EXPECT_EQ(rill_barrier_parties(b), 3);
  std::vector<rill_task *> ts;
  for (int i = 0; i < 3; i++)
    ts.push_back(Spawn([&, i] {
      rill_sleep(0.002 * i);
      rill_future *f = rill_barrier_wait(b);
      log.push_back("t" + std::to_string(i) + " waiting " +
                    std::to_string(rill_barrier_n_waiting(b)));
      int rc = rill_await(f);
      log.push_back("t" + std::to_string(i) + " passed " + std::to_string(rc) + " index " +
                    std::to_string(IntOf(f)));
      rill_future_release(f);
      return rc;
    }));
  Run();
  EXPECT_EQ(log, (std::vector<std::string>{"t0 waiting 1", "t1 waiting 2", "t2 waiting 0",
                                           "t2 passed 0 index 2", "t0 passed 0 index 0",
                                           "t1 passed 0 index 1"}));
  EXPECT_EQ(rill_barrier_n_waiting(b), 0);
  EXPECT_EQ(rill_barrier_is_broken(b), 0);
  for (auto *t : ts) rill_task_release(t);
  EXPECT_EQ(rill_barrier_retain(b), b);
  rill_barrier_release(b);
  rill_barrier_release(b);
}

TEST_F(SyncBarrier, AbortBreaksItForWaitersAndLaterWaits) {
  rill_barrier *b = rill_barrier_new(loop, 3);
  rill_future *x = rill_barrier_wait(b);
  EXPECT_EQ(rill_barrier_abort(b), RILL_OK);
  EXPECT_EQ(rill_future_error(x), RILL_EBROKEN);
  EXPECT_EQ(rill_barrier_is_broken(b), 1);
  rill_future *y = rill_barrier_wait(b);
  EXPECT_EQ(rill_future_error(y), RILL_EBROKEN);
  EXPECT_EQ(rill_barrier_reset(b), RILL_OK);
  EXPECT_EQ(rill_barrier_is_broken(b), 0);
  rill_future_release(x);
  rill_future_release(y);
  rill_barrier_release(b);
}

TEST_F(SyncBarrier, ResetFailsTheWaitersAndStartsAgain) {
  rill_barrier *b = rill_barrier_new(loop, 2);
  rill_future *x = rill_barrier_wait(b);
  EXPECT_EQ(rill_barrier_n_waiting(b), 1);
  EXPECT_EQ(rill_barrier_reset(b), RILL_OK);
  EXPECT_EQ(rill_future_error(x), RILL_EBROKEN);
  EXPECT_EQ(rill_barrier_n_waiting(b), 0);
  rill_future *p = rill_barrier_wait(b), *q = rill_barrier_wait(b);
  EXPECT_EQ(IntOf(p), 0);
  EXPECT_EQ(IntOf(q), 1);
  for (auto *f : {x, p, q}) rill_future_release(f);
  rill_barrier_release(b);
}

TEST_F(SyncBarrier, ACancelledWaiterLeaves) {
  rill_barrier *b = rill_barrier_new(loop, 2);
  rill_future *x = rill_barrier_wait(b);
  EXPECT_EQ(rill_future_cancel(x), 1);
  EXPECT_EQ(rill_barrier_n_waiting(b), 0);
  rill_future *p = rill_barrier_wait(b);
  EXPECT_EQ(rill_future_is_done(p), 0);
  rill_future *q = rill_barrier_wait(b);
  EXPECT_EQ(rill_future_state(p), RILL_DONE);
  EXPECT_EQ(IntOf(q), 1);
  for (auto *f : {x, p, q}) rill_future_release(f);
  rill_barrier_release(b);
}

// ------------------------------------------------------------------ Queue

static std::vector<int64_t> DrainInts(rill_queue *q) {
  std::vector<int64_t> out;
  while (rill_future *f = rill_queue_get_nowait(q)) {
    out.push_back(IntOf(f));
    rill_future_release(f);
  }
  EXPECT_EQ(rill_last_error(), RILL_EEMPTY);
  return out;
}

TEST_F(SyncQueue, FifoLifoAndPriorityOrders) {
  rill_queue *fifo = rill_queue_new(loop, 0, RILL_QUEUE_FIFO);
  rill_queue *lifo = rill_queue_new(loop, 0, RILL_QUEUE_LIFO);
  rill_queue *prio = rill_queue_new(loop, 0, RILL_QUEUE_PRIORITY);
  ASSERT_TRUE(fifo && lifo && prio);
  const int64_t keys[] = {5, 1, 3, 1, 5, 0, 3};
  for (int i = 0; i < 7; i++) {
    EXPECT_EQ(rill_queue_put_nowait_int(fifo, i, keys[i]), RILL_OK);
    EXPECT_EQ(rill_queue_put_nowait_int(lifo, i, keys[i]), RILL_OK);
    EXPECT_EQ(rill_queue_put_nowait_int(prio, i, keys[i]), RILL_OK);
  }
  EXPECT_EQ(rill_queue_qsize(prio), 7);
  EXPECT_EQ(rill_queue_kind(fifo), RILL_QUEUE_FIFO);
  EXPECT_EQ(rill_queue_kind(lifo), RILL_QUEUE_LIFO);
  EXPECT_EQ(rill_queue_kind(prio), RILL_QUEUE_PRIORITY);
  EXPECT_EQ(rill_queue_loop(prio), loop);
  EXPECT_EQ(DrainInts(fifo), (std::vector<int64_t>{0, 1, 2, 3, 4, 5, 6}));
  EXPECT_EQ(DrainInts(lifo), (std::vector<int64_t>{6, 5, 4, 3, 2, 1, 0}));
  // By key, FIFO among equal keys.
  EXPECT_EQ(DrainInts(prio), (std::vector<int64_t>{5, 1, 3, 2, 6, 0, 4}));
  for (auto *q : {fifo, lifo, prio}) rill_queue_release(q);
}

TEST_F(SyncQueue, APriorityQueueKeepsItsOrderThroughManyItems) {
  rill_queue *q = rill_queue_new(loop, 0, RILL_QUEUE_PRIORITY);
  for (int i = 0; i < 1000; i++) ASSERT_EQ(rill_queue_put_nowait_int(q, i, (i * 7919) % 101), 0);
  int64_t last_key = -1, last_i = -1;
  for (int i = 0; i < 1000; i++) {
    rill_future *f = rill_queue_get_nowait(q);
    ASSERT_NE(f, nullptr);
    int64_t v = IntOf(f), key = (v * 7919) % 101;
    EXPECT_TRUE(key > last_key || (key == last_key && v > last_i)) << v;
    last_key = key;
    last_i = v;
    rill_future_release(f);
  }
  rill_queue_release(q);
}

static int kTag;

TEST_F(SyncQueue, EveryValueKindComesOutAsItWentIn) {
  rill_queue *q = rill_queue_new(loop, 0, RILL_QUEUE_FIFO);
  Tracked *p = Track("pointer");
  EXPECT_EQ(rill_queue_put_nowait_none(q, 0), RILL_OK);
  EXPECT_EQ(rill_queue_put_nowait_bool(q, 7, 0), RILL_OK);
  EXPECT_EQ(rill_queue_put_nowait_int(q, -42, 0), RILL_OK);
  EXPECT_EQ(rill_queue_put_nowait_double(q, 2.5, 0), RILL_OK);
  EXPECT_EQ(rill_queue_put_nowait_bytes(q, "ab\0c", 4, 0), RILL_OK);
  EXPECT_EQ(rill_queue_put_nowait_pointer(q, p, TrackedFree, &kTag, 0), RILL_OK);
  rill_future *f[6];
  for (auto &x : f) ASSERT_NE(x = rill_queue_get_nowait(q), nullptr);
  EXPECT_EQ(rill_future_kind(f[0]), RILL_NONE);
  int b = 0;
  EXPECT_EQ(rill_future_bool(f[1], &b), RILL_OK);
  EXPECT_EQ(b, 1);
  EXPECT_EQ(IntOf(f[2]), -42);
  double d = 0;
  EXPECT_EQ(rill_future_double(f[3], &d), RILL_OK);
  EXPECT_EQ(d, 2.5);
  size_t len = 0;
  const void *data = rill_future_bytes(f[4], &len);
  ASSERT_EQ(len, 4u);
  EXPECT_EQ(std::memcmp(data, "ab\0c", 4), 0);
  EXPECT_EQ(rill_future_pointer(f[5], &kTag), p);
  EXPECT_EQ(p->frees, 0);
  for (auto *x : f) rill_future_release(x);
  EXPECT_EQ(p->frees, 1) << "the get future owned the pointer";
  rill_queue_release(q);
}

TEST_F(SyncQueue, AWaitingPutOrGetUsesEveryKindToo) {
  rill_queue *q = rill_queue_new(loop, 1, RILL_QUEUE_FIFO);
  Tracked *p = Track("pointer");
  rill_future *g = rill_queue_get(q);
  rill_future *puts[] = {rill_queue_put_bytes(q, "xyz", 3, 0),  // straight to g
                         rill_queue_put_double(q, 1.25, 0),     // into the queue
                         rill_queue_put_pointer(q, p, TrackedFree, &kTag, 0),  // waits
                         rill_queue_put_bool(q, 0, 0), rill_queue_put_none(q, 0),
                         rill_queue_put_int(q, 9, 0)};
  size_t len = 0;
  EXPECT_EQ(std::string((const char *)rill_future_bytes(g, &len), 3), "xyz");
  EXPECT_EQ(rill_future_is_done(puts[1]), 1);
  EXPECT_EQ(rill_future_is_done(puts[2]), 0);
  rill_future *got[5];
  for (auto &x : got) ASSERT_NE(x = rill_queue_get_nowait(q), nullptr);
  for (auto *x : puts) EXPECT_EQ(rill_future_state(x), RILL_DONE);
  EXPECT_EQ(rill_future_kind(got[0]), RILL_DOUBLE);
  EXPECT_EQ(rill_future_pointer(got[1], &kTag), p);
  EXPECT_EQ(rill_future_kind(got[2]), RILL_BOOL);
  EXPECT_EQ(rill_future_kind(got[3]), RILL_NONE);
  EXPECT_EQ(IntOf(got[4]), 9);
  for (auto *x : got) rill_future_release(x);
  for (auto *x : puts) rill_future_release(x);
  rill_future_release(g);
  rill_queue_release(q);
}

TEST_F(SyncQueue, MaxsizeBlocksPutsWhichGoInFifoAsRoomFrees) {
  rill_queue *q = rill_queue_new(loop, 2, RILL_QUEUE_FIFO);
  EXPECT_EQ(rill_queue_maxsize(q), 2);
  rill_task *producer = Spawn([&] {
    for (int i = 0; i < 6; i++) {
      rill_future *f = rill_queue_put_int(q, i, 0);
      log.push_back("put " + std::to_string(i) + (rill_future_is_done(f) ? "" : " waits"));
      int rc = AwaitRelease(f);
      if (rc) return rc;
    }
    return 0;
  });
  rill_task *consumer = Spawn([&] {
    for (int i = 0; i < 6; i++) {
      rill_future *f = rill_queue_get(q);
      int rc = rill_await(f);
      if (rc) return rc;
      log.push_back("got " + std::to_string(IntOf(f)));
      rill_future_release(f);
      rill_yield();
    }
    return 0;
  });
  Run();
  EXPECT_EQ(log, (std::vector<std::string>{"put 0", "put 1", "put 2 waits", "got 0", "put 3 waits",
                                           "got 1", "put 4 waits", "got 2", "put 5 waits", "got 3",
                                           "got 4", "got 5"}));
  rill_task_release(producer);
  rill_task_release(consumer);
  rill_queue_release(q);
}

TEST_F(SyncQueue, NowaitCodesAndSizes) {
  rill_queue *q = rill_queue_new(loop, 1, RILL_QUEUE_LIFO);
  Tracked *p = Track("kept by the caller");
  EXPECT_EQ(rill_queue_is_empty(q), 1);
  EXPECT_EQ(rill_queue_is_full(q), 0);
  EXPECT_NULL_WITH(rill_queue_get_nowait(q), RILL_EEMPTY);
  EXPECT_EQ(rill_queue_put_nowait_int(q, 1, 0), RILL_OK);
  EXPECT_EQ(rill_queue_is_full(q), 1);
  EXPECT_EQ(rill_queue_qsize(q), 1);
  EXPECT_FAILS_WITH(rill_queue_put_nowait_int(q, 2, 0), RILL_EFULL);
  EXPECT_FAILS_WITH(rill_queue_put_nowait_bytes(q, "x", 1, 0), RILL_EFULL);
  EXPECT_FAILS_WITH(rill_queue_put_nowait_pointer(q, p, TrackedFree, &kTag, 0), RILL_EFULL);
  EXPECT_EQ(p->frees, 0) << "a failed put leaves the pointer to the caller";
  TrackedFree(p);
  EXPECT_FAILS_WITH(rill_queue_put_nowait_none(q, 0), RILL_EFULL);
  EXPECT_FAILS_WITH(rill_queue_put_nowait_bool(q, 1, 0), RILL_EFULL);
  EXPECT_FAILS_WITH(rill_queue_put_nowait_double(q, 1, 0), RILL_EFULL);
  EXPECT_EQ(rill_queue_is_empty(q), 0);
  rill_queue *unbounded = rill_queue_new(loop, -3, RILL_QUEUE_FIFO);
  EXPECT_EQ(rill_queue_maxsize(unbounded), 0);
  for (int i = 0; i < 100; i++) EXPECT_EQ(rill_queue_put_nowait_int(unbounded, i, 0), RILL_OK);
  EXPECT_EQ(rill_queue_is_full(unbounded), 0);
  EXPECT_EQ(rill_queue_retain(q), q);
  rill_queue_release(q);
  rill_queue_release(q);
  rill_queue_release(unbounded);
}

TEST_F(SyncQueue, JoinWaitsForATaskDonePerItem) {
  rill_queue *q = rill_queue_new(loop, 0, RILL_QUEUE_FIFO);
  rill_future *j0 = rill_queue_join(q);
  EXPECT_EQ(rill_future_is_done(j0), 1) << "nothing unfinished";
  EXPECT_FAILS_WITH(rill_queue_task_done(q), RILL_ETOOMANY);
  EXPECT_STREQ(rill_last_error_message(), "task_done() called too many times");
  rill_queue_put_nowait_int(q, 1, 0);
  rill_queue_put_nowait_int(q, 2, 0);
  rill_future *j = rill_queue_join(q);
  rill_future_release(rill_queue_get_nowait(q));
  rill_future_release(rill_queue_get_nowait(q));
  EXPECT_EQ(rill_queue_task_done(q), RILL_OK);
  EXPECT_EQ(rill_future_is_done(j), 0);
  EXPECT_EQ(rill_queue_task_done(q), RILL_OK);
  EXPECT_EQ(rill_future_state(j), RILL_DONE);
  EXPECT_FAILS_WITH(rill_queue_task_done(q), RILL_ETOOMANY);
  rill_future *jc = (rill_queue_put_nowait_int(q, 3, 0), rill_queue_join(q));
  EXPECT_EQ(rill_future_cancel(jc), 1);
  EXPECT_EQ(rill_future_state(jc), RILL_CANCELLED);
  for (auto *f : {j0, j, jc}) rill_future_release(f);
  rill_queue_release(q);
}

TEST_F(SyncQueue, ShutdownFailsWaitingGettersAndLaterGetsOnceEmpty) {
  rill_queue *q = rill_queue_new(loop, 0, RILL_QUEUE_FIFO);
  rill_future *g1 = rill_queue_get(q), *g2 = rill_queue_get(q);
  EXPECT_EQ(rill_queue_shutdown(q, 0), RILL_OK);
  EXPECT_EQ(rill_queue_is_shut_down(q), 1);
  EXPECT_EQ(rill_future_error(g1), RILL_ESHUTDOWN);
  EXPECT_EQ(rill_future_error(g2), RILL_ESHUTDOWN);
  EXPECT_NULL_WITH(rill_queue_get(q), RILL_ESHUTDOWN);
  EXPECT_NULL_WITH(rill_queue_get_nowait(q), RILL_ESHUTDOWN);
  EXPECT_NULL_WITH(rill_queue_put_int(q, 1, 0), RILL_ESHUTDOWN);
  EXPECT_FAILS_WITH(rill_queue_put_nowait_int(q, 1, 0), RILL_ESHUTDOWN);
  rill_future_release(g1);
  rill_future_release(g2);
  rill_queue_release(q);
}

TEST_F(SyncQueue, ShutdownFailsWaitingPuttersFreesTheirItemsAndLeavesItemsToGet) {
  rill_queue *q = rill_queue_new(loop, 1, RILL_QUEUE_FIFO);
  Tracked *p = Track("blocked put");
  rill_queue_put_nowait_int(q, 1, 0);
  rill_future *put = rill_queue_put_pointer(q, p, TrackedFree, &kTag, 0);
  rill_future *j = rill_queue_join(q);
  EXPECT_EQ(rill_future_is_done(put), 0);
  EXPECT_EQ(rill_queue_shutdown(q, 0), RILL_OK);
  EXPECT_EQ(rill_future_error(put), RILL_ESHUTDOWN);
  EXPECT_EQ(p->frees, 1);
  rill_future *g = rill_queue_get(q);
  EXPECT_EQ(IntOf(g), 1) << "the items left can still be taken";
  EXPECT_NULL_WITH(rill_queue_get(q), RILL_ESHUTDOWN);
  EXPECT_EQ(rill_future_is_done(j), 0);
  EXPECT_EQ(rill_queue_task_done(q), RILL_OK);
  EXPECT_EQ(rill_future_state(j), RILL_DONE);
  for (auto *f : {put, g, j}) rill_future_release(f);
  rill_queue_release(q);
}

TEST_F(SyncQueue, ShutdownImmediateDropsTheItemsAndReleasesJoin) {
  rill_queue *q = rill_queue_new(loop, 2, RILL_QUEUE_FIFO);
  Tracked *a = Track("queued a"), *b = Track("blocked b");
  rill_queue_put_nowait_int(q, 1, 0);
  rill_queue_put_nowait_pointer(q, a, TrackedFree, &kTag, 0);
  rill_future *put = rill_queue_put_pointer(q, b, TrackedFree, &kTag, 0);
  rill_future *j = rill_queue_join(q);
  rill_task *joiner = Spawn([&] {
    int rc = AwaitRelease(rill_queue_join(q));
    log.push_back("joined " + std::to_string(rc));
    return rc;
  });
  rill_task *putter = Spawn([&] {
    int rc = AwaitRelease(rill_queue_put_int(q, 5, 0));
    log.push_back("put " + std::to_string(rc));
    return 0;
  });
  Soon([&] {
    EXPECT_EQ(rill_queue_shutdown(q, 1), RILL_OK);
    EXPECT_EQ(a->frees, 1);
    EXPECT_EQ(b->frees, 1);
    EXPECT_EQ(rill_queue_qsize(q), 0);
    EXPECT_EQ(rill_future_state(j), RILL_DONE);
    EXPECT_EQ(rill_future_error(put), RILL_ESHUTDOWN);
  });
  Run();
  EXPECT_EQ(log, (std::vector<std::string>{"joined 0",
                                           "put " + std::to_string(RILL_ESHUTDOWN)}));
  EXPECT_FAILS_WITH(rill_queue_task_done(q), RILL_ETOOMANY);
  rill_task_release(joiner);
  rill_task_release(putter);
  rill_future_release(put);
  rill_future_release(j);
  rill_queue_release(q);
}

TEST_F(SyncQueue, GettersAreServedFifo) {
  rill_queue *q = rill_queue_new(loop, 0, RILL_QUEUE_FIFO);
  std::vector<rill_task *> ts;
  for (int i = 0; i < 3; i++)
    ts.push_back(Spawn([&, i] {
      rill_future *f = rill_queue_get(q);
      int rc = rill_await(f);
      log.push_back("g" + std::to_string(i) + " " + std::to_string(IntOf(f)));
      rill_future_release(f);
      return rc;
    }));
  Later(0.003, [&] {
    for (int i = 10; i < 13; i++) EXPECT_EQ(rill_queue_put_nowait_int(q, i, 0), RILL_OK);
  });
  Run();
  EXPECT_EQ(log, (std::vector<std::string>{"g0 10", "g1 11", "g2 12"}));
  for (auto *t : ts) rill_task_release(t);
  rill_queue_release(q);
}

TEST_F(SyncQueue, AGetterCancelledAfterItWasHandedAnItemPassesItToTheNextGetter) {
  rill_queue *q = rill_queue_new(loop, 0, RILL_QUEUE_FIFO);
  rill_future *af = nullptr;
  rill_task *a = Spawn([&] {
    af = rill_queue_get(q);
    int rc = rill_await(af);
    log.push_back("a " + std::to_string(rc));
    return rc;
  });
  rill_task *b = Spawn([&] {
    rill_future *f = rill_queue_get(q);
    int rc = rill_await(f);
    log.push_back("b " + std::to_string(rc) + " got " + std::to_string(IntOf(f)));
    rill_future_release(f);
    return rc;
  });
  Later(0.003, [&] {
    EXPECT_EQ(rill_queue_put_nowait_int(q, 7, 0), RILL_OK);  // to a
    EXPECT_EQ(rill_future_state(af), RILL_DONE);
    rill_task_cancel(a, nullptr);
  });
  Run();
  EXPECT_EQ(log, (std::vector<std::string>{"a " + kCancelled, "b 0 got 7"}));
  EXPECT_EQ(rill_future_state(af), RILL_CANCELLED);
  EXPECT_EQ(rill_queue_qsize(q), 0);
  rill_future_release(af);
  rill_task_release(a);
  rill_task_release(b);
  rill_queue_release(q);
}

TEST_F(SyncQueue, AGetterCancelledAfterTheHandOffWithNoOtherGetterPutsTheItemBackFirst) {
  rill_queue *q = rill_queue_new(loop, 0, RILL_QUEUE_FIFO);
  Tracked *p = Track("item");
  rill_task *a = Spawn([&] {
    int rc = AwaitRelease(rill_queue_get(q));
    log.push_back("a " + std::to_string(rc));
    return rc;
  });
  Later(0.003, [&] {
    EXPECT_EQ(rill_queue_put_nowait_pointer(q, p, TrackedFree, &kTag, 0), RILL_OK);  // to a
    EXPECT_EQ(rill_queue_put_nowait_int(q, 2, 0), RILL_OK);
    rill_task_cancel(a, nullptr);
  });
  Run();
  EXPECT_EQ(log, (std::vector<std::string>{"a " + kCancelled}));
  EXPECT_EQ(p->frees, 0) << "not lost, not freed";
  ASSERT_EQ(rill_queue_qsize(q), 2);
  rill_future *first = rill_queue_get_nowait(q);
  EXPECT_EQ(rill_future_pointer(first, &kTag), p) << "back at the front";
  rill_future_release(first);
  rill_task_release(a);
  rill_queue_release(q);  // frees the int left
}

TEST_F(SyncQueue, ACancelledPutLeavesTheQueueAndFreesItsItem) {
  rill_queue *q = rill_queue_new(loop, 1, RILL_QUEUE_FIFO);
  Tracked *p = Track("cancelled put");
  rill_queue_put_nowait_int(q, 1, 0);
  rill_future *a = rill_queue_put_pointer(q, p, TrackedFree, &kTag, 0);
  rill_future *b = rill_queue_put_int(q, 3, 0);
  EXPECT_EQ(rill_future_cancel(a), 1);
  EXPECT_EQ(p->frees, 1);
  rill_future *g = rill_queue_get_nowait(q);
  EXPECT_EQ(rill_future_state(b), RILL_DONE) << "the next putter went in";
  rill_future *g2 = rill_queue_get_nowait(q);
  EXPECT_EQ(IntOf(g2), 3);
  for (auto *f : {a, b, g, g2}) rill_future_release(f);
  rill_queue_release(q);
}

TEST_F(SyncQueue, ACancelledGetLeavesTheQueue) {
  rill_queue *q = rill_queue_new(loop, 0, RILL_QUEUE_FIFO);
  rill_future *a = rill_queue_get(q), *b = rill_queue_get(q);
  EXPECT_EQ(rill_future_cancel(a), 1);
  rill_queue_put_nowait_int(q, 4, 0);
  EXPECT_EQ(rill_future_state(a), RILL_CANCELLED);
  EXPECT_EQ(IntOf(b), 4);
  rill_future_release(a);
  rill_future_release(b);
  rill_queue_release(q);
}

TEST_F(SyncQueue, AGetNobodyHoldsIsSkippedAndAPutNobodyHoldsStillHappens) {
  rill_queue *q = rill_queue_new(loop, 1, RILL_QUEUE_FIFO);
  rill_future_release(rill_queue_get(q));  // dropped: would lose the item
  rill_queue_put_nowait_int(q, 1, 0);
  EXPECT_EQ(rill_queue_qsize(q), 1);
  rill_future_release(rill_queue_put_int(q, 2, 0));  // fire and forget
  rill_future *a = rill_queue_get_nowait(q), *b = rill_queue_get_nowait(q);
  EXPECT_EQ(IntOf(a), 1);
  EXPECT_EQ(IntOf(b), 2);
  rill_future_release(a);
  rill_future_release(b);
  rill_queue_release(q);
}

TEST_F(SyncQueue, ItemsLeftAtReleaseAreFreedOnce) {
  rill_queue *q = rill_queue_new(loop, 0, RILL_QUEUE_PRIORITY);
  for (int i = 0; i < 20; i++) {
    Tracked *t = Track("item " + std::to_string(i));
    ASSERT_EQ(rill_queue_put_nowait_pointer(q, t, TrackedFree, &kTag, 20 - i), RILL_OK);
  }
  rill_queue_put_nowait_bytes(q, "bytes", 5, 0);
  rill_queue_release(q);
}

// ------------------------------------------------------- Coroutines, steps

TEST_F(SyncQueue, ACoroutineProducerAndConsumerThroughAMaxsizeOneQueue) {
  rill_queue *q = rill_queue_new(loop, 1, RILL_QUEUE_FIFO);
  rill_lock *l = rill_lock_new(loop);
  int64_t sum = 0;
  rill_task *prod = Spawn([&] {
    for (int i = 1; i <= 1000; i++) {
      int rc = AwaitRelease(rill_queue_put_int(q, i, 0));
      if (rc) return rc;
    }
    return AwaitRelease(rill_queue_put_none(q, 0));
  });
  rill_task *cons = Spawn([&] {
    for (;;) {
      rill_future *f = rill_queue_get(q);
      int rc = rill_await(f);
      if (rc) return rc;
      int kind = rill_future_kind(f);
      if (kind == RILL_INT) {
        AwaitRelease(rill_lock_acquire(l));
        sum += IntOf(f);
        rill_lock_unlock(l);
      }
      rill_future_release(f);
      rill_queue_task_done(q);
      if (kind == RILL_NONE) return 0;
    }
  });
  rill_future *j = rill_queue_join(q);
  EXPECT_EQ(rill_loop_run_until(loop, j), RILL_OK);
  Run();
  EXPECT_EQ(sum, 500500);
  EXPECT_EQ(rill_future_error(rill_task_future(prod)), RILL_OK);
  EXPECT_EQ(rill_future_error(rill_task_future(cons)), RILL_OK);
  rill_future_release(j);
  rill_task_release(prod);
  rill_task_release(cons);
  rill_lock_release(l);
  rill_queue_release(q);
}

// A step task awaiting a sync future: it checks for done first, so an
// uncontended operation costs no iteration.
static void AwaitOrContinue(rill_task *t, rill_future *f, bool *went_on) {
  if (rill_future_is_done(f) == 1) {
    *went_on = true;
  } else {
    *went_on = false;
    EXPECT_EQ(rill_task_wait(t, f), RILL_OK);
  }
}

TEST_F(SyncStep, AStepTaskUsesALockAndAQueue) {
  rill_lock *l = rill_lock_new(loop);
  rill_queue *q = rill_queue_new(loop, 0, RILL_QUEUE_FIFO);
  ASSERT_EQ(rill_lock_try_acquire(l), 1);
  int stage = 0;
  rill_future *pending = nullptr;
  rill_task *t = NewTask([&](rill_task *self) {
    bool now = false;
    for (;;) {
      switch (stage) {
      case 0:
        pending = rill_lock_acquire(l);
        stage = 1;
        AwaitOrContinue(self, pending, &now);
        log.push_back(std::string("lock ") + (now ? "at once" : "waits"));
        if (!now) return;
        [[fallthrough]];
      case 1:
        EXPECT_EQ(rill_future_state(pending), RILL_DONE);
        rill_future_release(pending);
        log.push_back("holds the lock");
        pending = rill_queue_get(q);
        stage = 2;
        AwaitOrContinue(self, pending, &now);
        log.push_back(std::string("get ") + (now ? "at once" : "waits"));
        if (!now) return;
        [[fallthrough]];
      case 2:
        log.push_back("got " + std::to_string(IntOf(pending)));
        rill_future_release(pending);
        rill_lock_unlock(l);
        pending = rill_queue_get(q);
        stage = 3;
        AwaitOrContinue(self, pending, &now);
        log.push_back(std::string("get ") + (now ? "at once" : "waits"));
        if (!now) return;
        [[fallthrough]];
      default:
        log.push_back("got " + std::to_string(IntOf(pending)));
        rill_future_release(pending);
        rill_future_set_none(rill_task_future(self));
        return;
      }
    }
  });
  Later(0.003, [&] {
    rill_lock_unlock(l);  // the task's wake-up is queued before this Soon
    Soon([&] {
      rill_queue_put_nowait_int(q, 1, 0);
      rill_queue_put_nowait_int(q, 2, 0);
    });
  });
  Run();
  EXPECT_EQ(log, (std::vector<std::string>{"lock waits", "holds the lock", "get waits", "got 1",
                                           "get at once", "got 2"}));
  EXPECT_EQ(rill_lock_is_locked(l), 0);
  rill_task_release(t);
  rill_lock_release(l);
  rill_queue_release(q);
}

TEST_F(SyncStep, AStepTaskCancelledAfterTheHandOffPassesTheLockOn) {
  rill_lock *l = rill_lock_new(loop);
  ASSERT_EQ(rill_lock_try_acquire(l), 1);
  rill_future *held = nullptr;
  rill_task *t = NewTask([&](rill_task *self) {
    if (!held) {
      held = rill_lock_acquire(l);
      rill_task_wait(self, held);
      return;
    }
    log.push_back("cancel requested " + std::to_string(rill_task_cancel_requested(self)) +
                  ", wait state " + std::to_string(rill_future_state(held)));
    rill_future_fail(rill_task_future(self), RILL_ECANCELLED, nullptr, nullptr, nullptr, nullptr);
  });
  rill_future *next = nullptr;
  Later(0.003, [&] {
    next = rill_lock_acquire(l);  // behind t
    rill_lock_unlock(l);  // to t
    rill_task_cancel(t, nullptr);
  });
  Run();
  EXPECT_EQ(log, (std::vector<std::string>{"cancel requested 1, wait state 3"}));
  EXPECT_EQ(rill_future_state(next), RILL_DONE) << "passed on";
  rill_future_release(next);
  rill_future_release(held);
  rill_task_release(t);
  rill_lock_release(l);
}

TEST_F(SyncStep, ReawaitingAnOldAcquireAfterUnlockingNeverUnlocksAnotherHolder) {
  rill_lock *l = rill_lock_new(loop);
  rill_future *old = rill_lock_acquire(l);
  ASSERT_EQ(rill_future_state(old), RILL_DONE);
  ASSERT_EQ(rill_lock_unlock(l), RILL_OK);
  ASSERT_EQ(rill_lock_try_acquire(l), 1);  // someone else holds it now
  rill_task *t = NewTask([&](rill_task *self) {
    if (rill_task_cancel_requested(self) == 1) {
      rill_future_fail(rill_task_future(self), RILL_ECANCELLED, nullptr, nullptr, nullptr, nullptr);
      return;
    }
    rill_task_wait(self, old);  // a done future: resumes next iteration
    rill_task_cancel(self, nullptr);
  });
  Run();
  EXPECT_EQ(rill_future_state(rill_task_future(t)), RILL_CANCELLED);
  EXPECT_EQ(rill_lock_is_locked(l), 1) << "the other holder keeps it";
  EXPECT_EQ(rill_future_state(old), RILL_DONE);
  rill_task_release(t);
  rill_future_release(old);
  rill_lock_release(l);
}

// ----------------------------------------------------- Loop close, errors

TEST_F(SyncClose, ClosingTheLoopWithWaitersEverywhereLeaksNothing) {
  rill_event *e = rill_event_new(loop);
  rill_lock *l = rill_lock_new(loop);
  rill_semaphore *s = rill_semaphore_new(loop, 0, 0);
  rill_condition *c = rill_condition_new(loop, nullptr);
  rill_barrier *b = rill_barrier_new(loop, 5);
  rill_queue *q = rill_queue_new(loop, 1, RILL_QUEUE_FIFO);
  rill_queue *empty = rill_queue_new(loop, 1, RILL_QUEUE_FIFO);
  Tracked *queued = Track("queued"), *blocked = Track("blocked put");
  rill_lock_try_acquire(l);
  rill_lock_try_acquire(rill_condition_lock(c));
  rill_queue_put_nowait_pointer(q, queued, TrackedFree, &kTag, 0);
  std::vector<rill_future *> kept = {
      rill_event_wait(e),   rill_lock_acquire(l),
      rill_semaphore_acquire(s), rill_condition_wait(c),
      rill_barrier_wait(b), rill_queue_put_pointer(q, blocked, TrackedFree, &kTag, 0),
      rill_queue_get(empty), rill_queue_join(q)};
  // And tasks suspended on some of them, with the primitives released.
  // (A coroutine destroyed at close never runs again: the test keeps the
  // references its frames took.)
  std::vector<rill_future *> held;
  auto hold = [&](rill_future *f) {
    held.push_back(f);
    return rill_await(f);
  };
  rill_task *t1 = Spawn([&] { return hold(rill_lock_acquire(l)); });
  rill_task *t2 = Spawn([&] { return hold(rill_queue_get(empty)); });
  rill_task *t3 = Spawn([&] {
    AwaitRelease(rill_lock_acquire(rill_condition_lock(c)));
    return hold(rill_condition_wait(c));
  });
  rill_loop_run_once(loop, 0);
  rill_event_release(e);
  rill_lock_release(l);
  rill_semaphore_release(s);
  rill_barrier_release(b);
  rill_queue_release(empty);
  CloseLoop();
  EXPECT_EQ(TakeReports().size(), 3u) << "the three tasks destroyed while pending";
  for (auto *f : kept) EXPECT_EQ(rill_future_state(f), RILL_CANCELLED);
  EXPECT_EQ(queued->frees, 1) << "queued items are freed at close";
  EXPECT_EQ(blocked->frees, 0) << "a put's item goes with its future";
  EXPECT_EQ(rill_queue_qsize(q), RILL_ECLOSED);
  EXPECT_NULL_WITH(rill_condition_wait(c), RILL_ECLOSED);
  for (auto *f : kept) rill_future_release(f);
  EXPECT_EQ(blocked->frees, 1);
  EXPECT_EQ(held.size(), 3u);
  for (auto *f : held) rill_future_release(f);
  for (auto *t : {t1, t2, t3}) rill_task_release(t);
  rill_condition_release(c);
  rill_queue_release(q);
}

TEST_F(SyncBadInput, NullHandles) {
  EXPECT_NULL_WITH(rill_event_new(nullptr), RILL_EINVAL);
  EXPECT_NULL_WITH(rill_lock_new(nullptr), RILL_EINVAL);
  EXPECT_NULL_WITH(rill_semaphore_new(nullptr, 1, 0), RILL_EINVAL);
  EXPECT_NULL_WITH(rill_condition_new(nullptr, nullptr), RILL_EINVAL);
  EXPECT_NULL_WITH(rill_barrier_new(nullptr, 1), RILL_EINVAL);
  EXPECT_NULL_WITH(rill_queue_new(nullptr, 0, RILL_QUEUE_FIFO), RILL_EINVAL);

  EXPECT_FAILS_WITH(rill_event_set(nullptr), RILL_EINVAL);
  EXPECT_FAILS_WITH(rill_event_clear(nullptr), RILL_EINVAL);
  EXPECT_FAILS_WITH(rill_event_is_set(nullptr), RILL_EINVAL);
  EXPECT_NULL_WITH(rill_event_wait(nullptr), RILL_EINVAL);

  EXPECT_NULL_WITH(rill_lock_acquire(nullptr), RILL_EINVAL);
  EXPECT_FAILS_WITH(rill_lock_try_acquire(nullptr), RILL_EINVAL);
  EXPECT_FAILS_WITH(rill_lock_unlock(nullptr), RILL_EINVAL);
  EXPECT_FAILS_WITH(rill_lock_is_locked(nullptr), RILL_EINVAL);

  EXPECT_NULL_WITH(rill_semaphore_acquire(nullptr), RILL_EINVAL);
  EXPECT_FAILS_WITH(rill_semaphore_try_acquire(nullptr), RILL_EINVAL);
  EXPECT_FAILS_WITH(rill_semaphore_post(nullptr), RILL_EINVAL);
  EXPECT_FAILS_WITH(rill_semaphore_value(nullptr), RILL_EINVAL);
  EXPECT_FAILS_WITH(rill_semaphore_is_locked(nullptr), RILL_EINVAL);

  EXPECT_NULL_WITH(rill_condition_lock(nullptr), RILL_EINVAL);
  EXPECT_NULL_WITH(rill_condition_wait(nullptr), RILL_EINVAL);
  EXPECT_FAILS_WITH(rill_condition_notify(nullptr, 1), RILL_EINVAL);
  EXPECT_FAILS_WITH(rill_condition_notify_all(nullptr), RILL_EINVAL);

  EXPECT_NULL_WITH(rill_barrier_wait(nullptr), RILL_EINVAL);
  EXPECT_FAILS_WITH(rill_barrier_abort(nullptr), RILL_EINVAL);
  EXPECT_FAILS_WITH(rill_barrier_reset(nullptr), RILL_EINVAL);
  EXPECT_FAILS_WITH(rill_barrier_is_broken(nullptr), RILL_EINVAL);
  EXPECT_FAILS_WITH(rill_barrier_n_waiting(nullptr), RILL_EINVAL);
  EXPECT_FAILS_WITH(rill_barrier_parties(nullptr), RILL_EINVAL);

  EXPECT_NULL_WITH(rill_queue_put_none(nullptr, 0), RILL_EINVAL);
  EXPECT_FAILS_WITH(rill_queue_kind(nullptr), RILL_EINVAL);
  EXPECT_NULL_WITH(rill_queue_loop(nullptr), RILL_EINVAL);
  EXPECT_NULL_WITH(rill_queue_put_bool(nullptr, 1, 0), RILL_EINVAL);
  EXPECT_NULL_WITH(rill_queue_put_int(nullptr, 1, 0), RILL_EINVAL);
  EXPECT_NULL_WITH(rill_queue_put_double(nullptr, 1, 0), RILL_EINVAL);
  EXPECT_NULL_WITH(rill_queue_put_bytes(nullptr, "x", 1, 0), RILL_EINVAL);
  EXPECT_NULL_WITH(rill_queue_put_pointer(nullptr, nullptr, nullptr, nullptr, 0), RILL_EINVAL);
  EXPECT_FAILS_WITH(rill_queue_put_nowait_none(nullptr, 0), RILL_EINVAL);
  EXPECT_FAILS_WITH(rill_queue_put_nowait_bool(nullptr, 1, 0), RILL_EINVAL);
  EXPECT_FAILS_WITH(rill_queue_put_nowait_int(nullptr, 1, 0), RILL_EINVAL);
  EXPECT_FAILS_WITH(rill_queue_put_nowait_double(nullptr, 1, 0), RILL_EINVAL);
  EXPECT_FAILS_WITH(rill_queue_put_nowait_bytes(nullptr, "x", 1, 0), RILL_EINVAL);
  EXPECT_FAILS_WITH(rill_queue_put_nowait_pointer(nullptr, nullptr, nullptr, nullptr, 0),
                    RILL_EINVAL);
  EXPECT_NULL_WITH(rill_queue_get(nullptr), RILL_EINVAL);
  EXPECT_NULL_WITH(rill_queue_get_nowait(nullptr), RILL_EINVAL);
  EXPECT_FAILS_WITH(rill_queue_qsize(nullptr), RILL_EINVAL);
  EXPECT_FAILS_WITH(rill_queue_maxsize(nullptr), RILL_EINVAL);
  EXPECT_FAILS_WITH(rill_queue_is_empty(nullptr), RILL_EINVAL);
  EXPECT_FAILS_WITH(rill_queue_is_full(nullptr), RILL_EINVAL);
  EXPECT_FAILS_WITH(rill_queue_task_done(nullptr), RILL_EINVAL);
  EXPECT_NULL_WITH(rill_queue_join(nullptr), RILL_EINVAL);
  EXPECT_FAILS_WITH(rill_queue_shutdown(nullptr, 0), RILL_EINVAL);
  EXPECT_FAILS_WITH(rill_queue_is_shut_down(nullptr), RILL_EINVAL);

  // Releasing and retaining NULL are no-ops.
  rill_event_release(nullptr);
  rill_lock_release(nullptr);
  rill_semaphore_release(nullptr);
  rill_condition_release(nullptr);
  rill_barrier_release(nullptr);
  rill_queue_release(nullptr);
  EXPECT_EQ(rill_event_retain(nullptr), nullptr);
  EXPECT_EQ(rill_lock_retain(nullptr), nullptr);
  EXPECT_EQ(rill_semaphore_retain(nullptr), nullptr);
  EXPECT_EQ(rill_condition_retain(nullptr), nullptr);
  EXPECT_EQ(rill_barrier_retain(nullptr), nullptr);
  EXPECT_EQ(rill_queue_retain(nullptr), nullptr);
}

TEST_F(SyncBadInput, BadCountsKindsAndLoops) {
  EXPECT_NULL_WITH(rill_semaphore_new(loop, -1, 0), RILL_EINVAL);
  EXPECT_NULL_WITH(rill_barrier_new(loop, 0), RILL_EINVAL);
  EXPECT_NULL_WITH(rill_queue_new(loop, 1, 3), RILL_EINVAL);
  EXPECT_NULL_WITH(rill_queue_new(loop, 1, -1), RILL_EINVAL);
  rill_queue *q = rill_queue_new(loop, 0, RILL_QUEUE_FIFO);
  EXPECT_NULL_WITH(rill_queue_put_bytes(q, nullptr, 3, 0), RILL_EINVAL);
  EXPECT_FAILS_WITH(rill_queue_put_nowait_bytes(q, nullptr, 3, 0), RILL_EINVAL);
  EXPECT_EQ(rill_queue_put_nowait_bytes(q, nullptr, 0, 0), RILL_OK) << "empty bytes";
  rill_future *f = rill_queue_get_nowait(q);
  size_t len = 9;
  EXPECT_NE(rill_future_bytes(f, &len), nullptr);
  EXPECT_EQ(len, 0u);
  rill_future_release(f);
  rill_queue_release(q);
  rill_loop *other = rill_loop_new();
  rill_lock *foreign = rill_lock_new(other);
  EXPECT_NULL_WITH(rill_condition_new(loop, foreign), RILL_EINVAL);
  rill_lock_release(foreign);
  rill_loop_free(other);
  // A sync future completes by itself: it cannot be set from outside.
  rill_event *e = rill_event_new(loop);
  rill_future *w = rill_event_wait(e);
  EXPECT_FAILS_WITH(rill_future_set_int(w, 1), RILL_ESTATE);
  rill_future_release(w);
  rill_event_release(e);
}

TEST_F(SyncBadInput, EveryCallOnAClosedLoopIsECLOSED) {
  rill_loop *l = ClosedLoopEnvironment::Loop();
  EXPECT_NULL_WITH(rill_event_new(l), RILL_ECLOSED);
  EXPECT_NULL_WITH(rill_lock_new(l), RILL_ECLOSED);
  EXPECT_NULL_WITH(rill_semaphore_new(l, 1, 0), RILL_ECLOSED);
  EXPECT_NULL_WITH(rill_condition_new(l, nullptr), RILL_ECLOSED);
  EXPECT_NULL_WITH(rill_barrier_new(l, 1), RILL_ECLOSED);
  EXPECT_NULL_WITH(rill_queue_new(l, 0, RILL_QUEUE_FIFO), RILL_ECLOSED);

  rill_event *e = rill_event_new(loop);
  rill_lock *k = rill_lock_new(loop);
  rill_semaphore *s = rill_semaphore_new(loop, 1, 0);
  rill_condition *c = rill_condition_new(loop, nullptr);
  rill_barrier *b = rill_barrier_new(loop, 2);
  rill_queue *q = rill_queue_new(loop, 0, RILL_QUEUE_FIFO);
  CloseLoop();
  EXPECT_FAILS_WITH(rill_event_set(e), RILL_ECLOSED);
  EXPECT_FAILS_WITH(rill_event_clear(e), RILL_ECLOSED);
  EXPECT_FAILS_WITH(rill_event_is_set(e), RILL_ECLOSED);
  EXPECT_NULL_WITH(rill_event_wait(e), RILL_ECLOSED);
  EXPECT_NULL_WITH(rill_lock_acquire(k), RILL_ECLOSED);
  EXPECT_FAILS_WITH(rill_lock_try_acquire(k), RILL_ECLOSED);
  EXPECT_FAILS_WITH(rill_lock_unlock(k), RILL_ECLOSED);
  EXPECT_FAILS_WITH(rill_lock_is_locked(k), RILL_ECLOSED);
  EXPECT_NULL_WITH(rill_semaphore_acquire(s), RILL_ECLOSED);
  EXPECT_FAILS_WITH(rill_semaphore_try_acquire(s), RILL_ECLOSED);
  EXPECT_FAILS_WITH(rill_semaphore_post(s), RILL_ECLOSED);
  EXPECT_FAILS_WITH(rill_semaphore_value(s), RILL_ECLOSED);
  EXPECT_FAILS_WITH(rill_semaphore_is_locked(s), RILL_ECLOSED);
  EXPECT_NE(rill_condition_lock(c), nullptr) << "borrowed, still readable";
  EXPECT_NULL_WITH(rill_condition_wait(c), RILL_ECLOSED);
  EXPECT_FAILS_WITH(rill_condition_notify(c, 1), RILL_ECLOSED);
  EXPECT_FAILS_WITH(rill_condition_notify_all(c), RILL_ECLOSED);
  EXPECT_NULL_WITH(rill_barrier_wait(b), RILL_ECLOSED);
  EXPECT_FAILS_WITH(rill_barrier_abort(b), RILL_ECLOSED);
  EXPECT_FAILS_WITH(rill_barrier_reset(b), RILL_ECLOSED);
  EXPECT_FAILS_WITH(rill_barrier_is_broken(b), RILL_ECLOSED);
  EXPECT_FAILS_WITH(rill_barrier_n_waiting(b), RILL_ECLOSED);
  EXPECT_FAILS_WITH(rill_barrier_parties(b), RILL_ECLOSED);
  EXPECT_NULL_WITH(rill_queue_put_int(q, 1, 0), RILL_ECLOSED);
  EXPECT_NULL_WITH(rill_queue_put_bytes(q, "x", 1, 0), RILL_ECLOSED);
  EXPECT_FAILS_WITH(rill_queue_put_nowait_int(q, 1, 0), RILL_ECLOSED);
  EXPECT_FAILS_WITH(rill_queue_put_nowait_bytes(q, "x", 1, 0), RILL_ECLOSED);
  EXPECT_NULL_WITH(rill_queue_get(q), RILL_ECLOSED);
  EXPECT_NULL_WITH(rill_queue_get_nowait(q), RILL_ECLOSED);
  EXPECT_FAILS_WITH(rill_queue_qsize(q), RILL_ECLOSED);
  EXPECT_FAILS_WITH(rill_queue_task_done(q), RILL_ECLOSED);
  EXPECT_NULL_WITH(rill_queue_join(q), RILL_ECLOSED);
  EXPECT_FAILS_WITH(rill_queue_shutdown(q, 1), RILL_ECLOSED);
  EXPECT_FAILS_WITH(rill_queue_is_shut_down(q), RILL_ECLOSED);
  EXPECT_FAILS_WITH(rill_queue_kind(q), RILL_ECLOSED);
  EXPECT_EQ(rill_queue_loop(q), loop);  // still its loop, for a binding's checks
  rill_event_release(e);
  rill_lock_release(k);
  rill_semaphore_release(s);
  rill_condition_release(c);
  rill_barrier_release(b);
  rill_queue_release(q);
}

TEST(SyncErrors, TheNewCodesHaveNamesAndTexts) {
  EXPECT_STREQ(rill_err_name(RILL_EBROKEN), "RILL_EBROKEN");
  EXPECT_STREQ(rill_err_name(RILL_EEMPTY), "RILL_EEMPTY");
  EXPECT_STREQ(rill_err_name(RILL_EFULL), "RILL_EFULL");
  EXPECT_STREQ(rill_err_name(RILL_ESHUTDOWN), "RILL_ESHUTDOWN");
  EXPECT_STREQ(rill_err_name(RILL_ENOTLOCKED), "RILL_ENOTLOCKED");
  EXPECT_STREQ(rill_err_name(RILL_ETOOMANY), "RILL_ETOOMANY");
  EXPECT_STREQ(rill_strerror(RILL_EFULL), "the queue is full");
}
