// Futures: states, values, failures, done callbacks, cancel. (asyncio group C)
#include <cstdint>
#include <cstring>
#include <limits>

#include "rill_test.h"

using namespace rilltest;

using Future = RillTest;

static const int kTagA = 0;  // binding-owned constants: their addresses are tags
static const int kTagB = 0;

TEST_F(Future, NewFutureIsPending) {
  rill_future *f = NewFuture();
  EXPECT_EQ(rill_future_state(f), RILL_PENDING);
  EXPECT_EQ(rill_future_done(f), 0);
  EXPECT_EQ(rill_future_loop(f), loop);
  EXPECT_FAILS_WITH(rill_future_error(f), RILL_ESTATE);
  EXPECT_FAILS_WITH(rill_future_kind(f), RILL_ESTATE);
  EXPECT_EQ(rill_future_error_message(f), nullptr);
  int64_t v = 0;
  EXPECT_FAILS_WITH(rill_future_int(f, &v), RILL_ESTATE);
  EXPECT_EQ(rill_task_from_future(f), nullptr);
  rill_future_release(f);
}

TEST_F(Future, DoneIsFinalSetAgainGivesEState) {
  rill_future *f = NewFuture();
  ASSERT_EQ(rill_future_set_int(f, 1), RILL_OK);
  EXPECT_EQ(rill_future_state(f), RILL_DONE);
  EXPECT_EQ(rill_future_done(f), 1);
  EXPECT_FAILS_WITH(rill_future_set_int(f, 2), RILL_ESTATE);
  EXPECT_FAILS_WITH(rill_future_set_none(f), RILL_ESTATE);
  EXPECT_FAILS_WITH(rill_future_set_bool(f, 1), RILL_ESTATE);
  EXPECT_FAILS_WITH(rill_future_set_double(f, 1.0), RILL_ESTATE);
  EXPECT_FAILS_WITH(rill_future_set_bytes(f, "x", 1), RILL_ESTATE);
  Tracked *p = Track("pointer rejected by a done future");
  EXPECT_FAILS_WITH(rill_future_set_pointer(f, p, TrackedFree, &kTagA), RILL_ESTATE);
  EXPECT_EQ(p->frees, 0) << "a refused pointer stays the caller's";
  p->frees = 1;  // the test owns it
  Tracked *payload = Track("payload of a failing fail()");
  EXPECT_FAILS_WITH(rill_future_fail(f, -1000, "late", payload, TrackedFree, &kTagA), RILL_ESTATE);
  EXPECT_EQ(payload->frees, 1) << "free_payload runs at once if the call fails";
  EXPECT_EQ(rill_future_cancel(f), 0);
  EXPECT_EQ(rill_future_state(f), RILL_DONE);
  int64_t v = 0;
  EXPECT_EQ(rill_future_int(f, &v), RILL_OK);
  EXPECT_EQ(v, 1) << "the first value stays";
  rill_future_release(f);
}

TEST_F(Future, FailedIsFinal) {
  rill_future *f = NewFuture();
  ASSERT_EQ(rill_future_fail(f, -1000, "first", nullptr, nullptr, nullptr), RILL_OK);
  EXPECT_FAILS_WITH(rill_future_set_int(f, 2), RILL_ESTATE);
  EXPECT_FAILS_WITH(rill_future_fail(f, -1001, "second", nullptr, nullptr, nullptr), RILL_ESTATE);
  EXPECT_EQ(rill_future_cancel(f), 0);
  EXPECT_EQ(rill_future_state(f), RILL_FAILED);
  EXPECT_EQ(rill_future_error(f), -1000);
  EXPECT_STREQ(rill_future_error_message(f), "first");
  rill_future_release(f);
}

TEST_F(Future, CancelledIsFinal) {
  rill_future *f = NewFuture();
  EXPECT_EQ(rill_future_cancel(f), 1);
  EXPECT_EQ(rill_future_state(f), RILL_CANCELLED) << "a plain future is cancelled at once";
  EXPECT_EQ(rill_future_done(f), 1);
  EXPECT_EQ(rill_future_cancel(f), 0);
  EXPECT_FAILS_WITH(rill_future_set_int(f, 2), RILL_ESTATE);
  EXPECT_EQ(rill_future_error(f), RILL_ECANCELLED);
  EXPECT_STREQ(rill_future_error_message(f), "");
  EXPECT_EQ(rill_future_state(f), RILL_CANCELLED);
  rill_future_release(f);
}

TEST_F(Future, CancelMessageIsKept) {
  rill_future *f = NewFuture();
  EXPECT_EQ(rill_future_cancel_msg(f, "shutting down"), 1);
  EXPECT_EQ(rill_future_cancel_msg(f, "again"), 0);
  EXPECT_STREQ(rill_future_error_message(f), "shutting down");
  rill_future_release(f);
}

TEST_F(Future, NoneRoundTrip) {
  rill_future *f = NewFuture();
  ASSERT_EQ(rill_future_set_none(f), RILL_OK);
  EXPECT_EQ(rill_future_kind(f), RILL_NONE);
  EXPECT_EQ(rill_future_error(f), RILL_OK);
  EXPECT_EQ(rill_future_error_message(f), nullptr);
  int64_t v;
  EXPECT_FAILS_WITH(rill_future_int(f, &v), RILL_ETYPE);
  rill_future_release(f);
}

TEST_F(Future, BoolRoundTrip) {
  for (int b : {0, 1}) {
    rill_future *f = NewFuture();
    ASSERT_EQ(rill_future_set_bool(f, b), RILL_OK);
    EXPECT_EQ(rill_future_kind(f), RILL_BOOL);
    int out = -1;
    EXPECT_EQ(rill_future_bool(f, &out), RILL_OK);
    EXPECT_EQ(out, b);
    int64_t i;
    EXPECT_FAILS_WITH(rill_future_int(f, &i), RILL_ETYPE);
    rill_future_release(f);
  }
}

TEST_F(Future, IntRoundTrip) {
  for (int64_t x : {int64_t{0}, int64_t{-1}, int64_t{42}, std::numeric_limits<int64_t>::min(),
                    std::numeric_limits<int64_t>::max()}) {
    rill_future *f = NewFuture();
    ASSERT_EQ(rill_future_set_int(f, x), RILL_OK);
    EXPECT_EQ(rill_future_kind(f), RILL_INT);
    int64_t out = 7;
    EXPECT_EQ(rill_future_int(f, &out), RILL_OK);
    EXPECT_EQ(out, x);
    double d;
    EXPECT_FAILS_WITH(rill_future_double(f, &d), RILL_ETYPE);
    rill_future_release(f);
  }
}

TEST_F(Future, DoubleRoundTrip) {
  for (double x : {0.0, -0.0, 3.25, -1e300, std::numeric_limits<double>::infinity(),
                   std::numeric_limits<double>::denorm_min()}) {
    rill_future *f = NewFuture();
    ASSERT_EQ(rill_future_set_double(f, x), RILL_OK);
    EXPECT_EQ(rill_future_kind(f), RILL_DOUBLE);
    double out = 1;
    EXPECT_EQ(rill_future_double(f, &out), RILL_OK);
    EXPECT_EQ(std::memcmp(&out, &x, sizeof x), 0) << x;
    int b;
    EXPECT_FAILS_WITH(rill_future_bool(f, &b), RILL_ETYPE);
    rill_future_release(f);
  }
  rill_future *f = NewFuture();
  ASSERT_EQ(rill_future_set_double(f, std::nan("")), RILL_OK);
  double out = 0;
  EXPECT_EQ(rill_future_double(f, &out), RILL_OK);
  EXPECT_TRUE(std::isnan(out));
  rill_future_release(f);
}

TEST_F(Future, BytesAreCopiedAndRoundTrip) {
  char buf[] = {'a', '\0', 'b', '\xff', 'c'};
  rill_future *f = NewFuture();
  ASSERT_EQ(rill_future_set_bytes(f, buf, sizeof buf), RILL_OK);
  std::memset(buf, 'z', sizeof buf);  // set_bytes copied them
  EXPECT_EQ(rill_future_kind(f), RILL_BYTES);
  size_t len = 0;
  const void *p = rill_future_bytes(f, &len);
  ASSERT_NE(p, nullptr);
  ASSERT_EQ(len, 5u);
  EXPECT_EQ(std::memcmp(p, "a\0b\xff" "c", 5), 0);
  int64_t i;
  EXPECT_FAILS_WITH(rill_future_int(f, &i), RILL_ETYPE);
  rill_future_release(f);

  rill_future *empty = NewFuture();
  ASSERT_EQ(rill_future_set_bytes(empty, "", 0), RILL_OK);
  EXPECT_EQ(rill_future_kind(empty), RILL_BYTES);
  len = 99;
  rill_future_bytes(empty, &len);
  EXPECT_EQ(len, 0u);
  rill_future_release(empty);

  rill_future *notbytes = NewFuture();
  rill_future_set_int(notbytes, 1);
  len = 99;
  EXPECT_EQ(rill_future_bytes(notbytes, &len), nullptr);
  EXPECT_EQ(len, 0u);
  rill_future_release(notbytes);
}

TEST_F(Future, LargeBytesRoundTrip) {
  std::string big(1 << 20, 'q');
  big[12345] = 'X';
  rill_future *f = NewFuture();
  ASSERT_EQ(rill_future_set_bytes(f, big.data(), big.size()), RILL_OK);
  size_t len = 0;
  const char *p = static_cast<const char *>(rill_future_bytes(f, &len));
  ASSERT_EQ(len, big.size());
  EXPECT_EQ(std::string(p, len), big);
  rill_future_release(f);
}

TEST_F(Future, PointerRoundTripWithTagAndFreedOnceWhenTheFutureIs) {
  Tracked *obj = Track("pointer value");
  rill_future *f = NewFuture();
  ASSERT_EQ(rill_future_set_pointer(f, obj, TrackedFree, &kTagA), RILL_OK);
  EXPECT_EQ(rill_future_kind(f), RILL_POINTER);
  EXPECT_EQ(rill_future_pointer(f, &kTagA), obj);
  EXPECT_EQ(rill_future_pointer(f, &kTagB), nullptr) << "another binding's tag";
  int64_t i;
  EXPECT_FAILS_WITH(rill_future_int(f, &i), RILL_ETYPE);
  rill_future_retain(f);
  rill_future_release(f);
  EXPECT_EQ(obj->frees, 0) << "still referenced";
  rill_future_release(f);
  EXPECT_EQ(obj->frees, 1);
}

TEST_F(Future, FailCarriesCodeMessageAndTaggedPayload) {
  Tracked *payload = Track("failure payload");
  rill_future *f = NewFuture();
  ASSERT_EQ(rill_future_fail(f, -1000, "disk on fire", payload, TrackedFree, &kTagA), RILL_OK);
  EXPECT_EQ(rill_future_state(f), RILL_FAILED);
  EXPECT_EQ(rill_future_error(f), -1000);
  EXPECT_STREQ(rill_future_error_message(f), "disk on fire");
  EXPECT_EQ(rill_future_error_payload(f, &kTagA), payload);
  EXPECT_EQ(rill_future_error_payload(f, &kTagB), nullptr) << "wrong tag gives NULL";
  EXPECT_EQ(rill_future_error_payload(f, nullptr), nullptr);
  EXPECT_FAILS_WITH(rill_future_kind(f), RILL_ESTATE);
  int64_t v;
  EXPECT_FAILS_WITH(rill_future_int(f, &v), RILL_ESTATE);
  EXPECT_EQ(payload->frees, 0);
  rill_future_release(f);
  EXPECT_EQ(payload->frees, 1) << "exactly once, when the future is freed";
}

TEST_F(Future, FailMessageIsCopiedAndNullMeansEmpty) {
  char msg[] = "original";
  rill_future *f = NewFuture();
  ASSERT_EQ(rill_future_fail(f, -1001, msg, nullptr, nullptr, nullptr), RILL_OK);
  std::strcpy(msg, "changed!");
  EXPECT_STREQ(rill_future_error_message(f), "original");
  rill_future *g = NewFuture();
  ASSERT_EQ(rill_future_fail(g, -1002, nullptr, nullptr, nullptr, nullptr), RILL_OK);
  EXPECT_STREQ(rill_future_error_message(g), "");
  EXPECT_EQ(rill_future_error(g), -1002);
  rill_future_release(f);
  rill_future_release(g);
}

TEST_F(Future, FailWithECancelledMakesItCancelled) {
  rill_future *f = NewFuture();
  ASSERT_EQ(rill_future_fail(f, RILL_ECANCELLED, "stop", nullptr, nullptr, nullptr), RILL_OK);
  EXPECT_EQ(rill_future_state(f), RILL_CANCELLED);
  EXPECT_EQ(rill_future_error(f), RILL_ECANCELLED);
  EXPECT_STREQ(rill_future_error_message(f), "stop");
  rill_future_release(f);
}

TEST_F(Future, FailWithANonNegativeCodeIsEInvalAndFreesThePayload) {
  rill_future *f = NewFuture();
  Tracked *p0 = Track("payload code 0");
  Tracked *p1 = Track("payload code 5");
  EXPECT_FAILS_WITH(rill_future_fail(f, 0, "no", p0, TrackedFree, &kTagA), RILL_EINVAL);
  EXPECT_EQ(p0->frees, 1);
  EXPECT_FAILS_WITH(rill_future_fail(f, 5, "no", p1, TrackedFree, &kTagA), RILL_EINVAL);
  EXPECT_EQ(p1->frees, 1);
  EXPECT_EQ(rill_future_state(f), RILL_PENDING) << "state as it was";
  rill_future_release(f);
}

TEST_F(Future, RetainAndRelease) {
  rill_future *f = NewFuture();
  EXPECT_EQ(rill_future_retain(f), f);
  EXPECT_EQ(rill_future_retain(nullptr), nullptr);
  rill_future_release(nullptr);
  rill_future_set_int(f, 5);
  rill_future_release(f);
  int64_t v = 0;
  EXPECT_EQ(rill_future_int(f, &v), RILL_OK) << "one reference left";
  EXPECT_EQ(v, 5);
  rill_future_release(f);
}

TEST_F(Future, DoneCallbackNeverRunsInline) {
  rill_future *f = NewFuture();
  DoneCb *cb = nullptr;
  OnDone(f, [this](rill_future *) { log.push_back("callback"); }, &cb);
  rill_future_set_int(f, 1);
  EXPECT_EQ(cb->runs, 0) << "not inside set_int";
  log.push_back("after set");
  Run();
  EXPECT_EQ(log, (std::vector<std::string>{"after set", "callback"}));
  EXPECT_EQ(cb->frees, 1) << "free_arg after the callback ran";
  rill_future_release(f);
}

TEST_F(Future, DoneCallbacksRunInRegistrationOrderAndSeeTheFuture) {
  rill_future *f = NewFuture();
  for (int i = 0; i < 5; i++)
    OnDone(f, [this, f, i](rill_future *got) {
      EXPECT_EQ(got, f);
      log.push_back("cb" + std::to_string(i));
    });
  Later(0.001, [f] { rill_future_set_none(f); });
  Run();
  EXPECT_EQ(log, (std::vector<std::string>{"cb0", "cb1", "cb2", "cb3", "cb4"}));
  rill_future_release(f);
}

TEST_F(Future, CompletionSchedulesCallbacksBehindWorkAlreadyQueued) {
  rill_future *f = NewFuture();
  OnDone(f, [this](rill_future *) { log.push_back("done callback"); });
  Soon([this, f] {
    log.push_back("completer");
    Soon([this] { log.push_back("queued before completion"); });
    rill_future_set_none(f);
    Soon([this] { log.push_back("queued after completion"); });
  });
  Run();
  EXPECT_EQ(log, (std::vector<std::string>{"completer", "queued before completion", "done callback",
                                           "queued after completion"}));
  rill_future_release(f);
}

TEST_F(Future, OnDoneOnAnAlreadyDoneFutureGoesThroughCallSoon) {
  rill_future *f = NewFuture();
  rill_future_set_int(f, 1);
  Soon([this] { log.push_back("soon before"); });
  DoneCb *cb = nullptr;
  OnDone(f, [this](rill_future *) { log.push_back("done callback"); }, &cb);
  EXPECT_EQ(cb->runs, 0) << "not inline";
  Soon([this] { log.push_back("soon after"); });
  Run();
  EXPECT_EQ(log, (std::vector<std::string>{"soon before", "done callback", "soon after"}));
  rill_future_release(f);
}

TEST_F(Future, DoneCallbacksRunForFailedAndCancelledFutures) {
  rill_future *failed = NewFuture();
  rill_future *cancelled = NewFuture();
  OnDone(failed, [this](rill_future *f) {
    log.push_back("failed " + std::to_string(rill_future_error(f)));
  });
  OnDone(cancelled, [this](rill_future *f) {
    log.push_back("cancelled " + std::to_string(rill_future_state(f) == RILL_CANCELLED));
  });
  rill_future_fail(failed, -1000, "x", nullptr, nullptr, nullptr);
  rill_future_cancel(cancelled);
  Run();
  EXPECT_EQ(log, (std::vector<std::string>{"failed -1000", "cancelled 1"}));
  rill_future_release(failed);
  rill_future_release(cancelled);
}

TEST_F(Future, RemoveDoneReturnsHowManyItRemoved) {
  rill_future *f = NewFuture();
  int a = 0, b = 0;
  auto cb = [](rill_future *, void *arg) { (*static_cast<int *>(arg))++; };
  ASSERT_EQ(rill_future_on_done(f, cb, &a, nullptr), RILL_OK);
  ASSERT_EQ(rill_future_on_done(f, cb, &b, nullptr), RILL_OK);
  ASSERT_EQ(rill_future_on_done(f, cb, &a, nullptr), RILL_OK);
  DoneCb *other = nullptr;
  OnDone(f, [this](rill_future *) { log.push_back("other"); }, &other);
  EXPECT_EQ(rill_future_remove_done(f, cb, &a), 2);
  EXPECT_EQ(rill_future_remove_done(f, cb, &a), 0);
  EXPECT_EQ(rill_future_remove_done(f, DoneCbRun, &a), 0) << "(cb, arg) must both match";
  rill_future_set_none(f);
  Run();
  EXPECT_EQ(a, 0);
  EXPECT_EQ(b, 1);
  EXPECT_EQ(log, (std::vector<std::string>{"other"}));
  rill_future_release(f);
}

TEST_F(Future, RemoveDoneRunsTheRemovedFreeArgs) {
  rill_future *f = NewFuture();
  DoneCb *x = NewDoneCb([this](rill_future *) { log.push_back("x"); });
  DoneCb *y = NewDoneCb([this](rill_future *) { log.push_back("y"); });
  ASSERT_EQ(rill_future_on_done(f, DoneCbRun, x, DoneCbFree), RILL_OK);
  ASSERT_EQ(rill_future_on_done(f, DoneCbRun, y, DoneCbFree), RILL_OK);
  EXPECT_EQ(rill_future_remove_done(f, DoneCbRun, x), 1);
  EXPECT_EQ(x->frees, 1) << "the removed registration's free_arg runs";
  EXPECT_EQ(y->frees, 0);
  rill_future_set_none(f);
  Run();
  EXPECT_EQ(log, (std::vector<std::string>{"y"}));
  rill_future_release(f);
}

TEST_F(Future, RemoveDoneAfterTheCallbackWasScheduledRemovesNothing) {
  rill_future *f = NewFuture();
  DoneCb *x = nullptr;
  OnDone(f, [this](rill_future *) { log.push_back("x"); }, &x);
  rill_future_set_none(f);
  EXPECT_EQ(rill_future_remove_done(f, DoneCbRun, x), 0) << "already scheduled";
  Run();
  EXPECT_EQ(log, (std::vector<std::string>{"x"}));
  rill_future_release(f);
}

TEST_F(Future, ReleasingTheLastReferenceToAPendingFutureDropsItsCallbacks) {
  rill_future *f = NewFuture();
  DoneCb *x = nullptr;
  OnDone(f, [this](rill_future *) { log.push_back("x"); }, &x);
  rill_future_release(f);
  Run();
  EXPECT_EQ(x->runs, 0);
  CloseLoop();
  EXPECT_EQ(x->frees, 1);
}

TEST_F(Future, FutureBelongsToItsLoop) {
  rill_loop *other = rill_loop_new();
  rill_future *f = rill_future_new(other);
  EXPECT_EQ(rill_future_loop(f), other);
  rill_future_release(f);
  rill_loop_free(other);
}
