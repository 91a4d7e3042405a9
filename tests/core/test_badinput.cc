// Every public function of rill.h with NULL, wrong state, a closed loop or
// another loop's objects: the documented code (or NULL) and rill_last_error,
// never a crash. Plus the error table and the version.
#include <climits>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <set>

#include "rill_test.h"

using namespace rilltest;

static const int kTag = 0;
static void Nop(void *) {}
static void NopDone(rill_future *, void *) {}
static void NopStep(rill_task *t, void *) { rill_future_set_none(rill_task_future(t)); }
static int NopCoro(void *) { return 0; }
static void NopHandler(rill_loop *, const char *, rill_future *, void *) {}

// ---- version and errors ----

TEST(Version, MacrosMatchTheLibrary) {
  EXPECT_EQ(rill_version(), (unsigned)RILL_VERSION_HEX);
  ASSERT_NE(rill_version_string(), nullptr);
  EXPECT_STREQ(rill_version_string(), RILL_VERSION_STRING);
  char expect[32];
  std::snprintf(expect, sizeof expect, "%d.%d.%d", RILL_VERSION_MAJOR, RILL_VERSION_MINOR,
                RILL_VERSION_PATCH);
  EXPECT_STREQ(RILL_VERSION_STRING, expect);
  EXPECT_EQ((rill_version() >> 16) & 0xff, (unsigned)RILL_VERSION_MAJOR);
  EXPECT_EQ((rill_version() >> 8) & 0xff, (unsigned)RILL_VERSION_MINOR);
  EXPECT_EQ(rill_version() & 0xff, (unsigned)RILL_VERSION_PATCH);
}

struct ErrRow {
  int enum_value, code;
  const char *name, *text;
};
#define RILL_TEST_ERR_ROW(name, code, text) {RILL_##name, code, "RILL_" #name, text},
static const ErrRow kErrTable[] = {RILL_ERRNO_MAP(RILL_TEST_ERR_ROW)};

TEST(Errors, StrerrorAndErrNameForEveryCodeOfTheTable) {
  std::set<int> seen;
  for (const ErrRow &row : kErrTable) {
    SCOPED_TRACE(row.name);
    EXPECT_EQ(row.enum_value, row.code);
    EXPECT_LT(row.code, 0);
    EXPECT_GT(row.code, RILL__ERR_LAST) << "library codes are -1..-99";
    EXPECT_TRUE(seen.insert(row.code).second) << "codes are distinct";
    EXPECT_STREQ(rill_strerror(row.code), row.text);
    EXPECT_STREQ(rill_err_name(row.code), row.name);
  }
  EXPECT_EQ(seen.size(), 28u);  // 12 of 1.0 + 16 I/O codes of 1.1
}

TEST(Errors, SuccessAndUnknownCodes) {
  EXPECT_STREQ(rill_strerror(RILL_OK), "success");
  for (int code : {-29, -98, -99, -1000, -5000, 1, 42, INT_MIN, INT_MAX}) {
    SCOPED_TRACE(code);
    ASSERT_NE(rill_strerror(code), nullptr);
    EXPECT_STREQ(rill_strerror(code), "unknown error");
    EXPECT_EQ(rill_err_name(code), nullptr);
  }
}

TEST(Errors, LastErrorCarriesTheCodeAndAPreciseMessage) {
  ASSERT_NE(rill_last_error_message(), nullptr) << "never NULL, even before any failure";
  EXPECT_EQ(rill_future_state(nullptr), RILL_EINVAL);
  EXPECT_EQ(rill_last_error(), RILL_EINVAL);
  ASSERT_NE(rill_last_error_message(), nullptr);
  EXPECT_GT(std::strlen(rill_last_error_message()), 0u);
  EXPECT_EQ(rill_yield(), RILL_ESTATE);
  EXPECT_EQ(rill_last_error(), RILL_ESTATE);
  EXPECT_GT(std::strlen(rill_last_error_message()), 0u);
}

// ---- the fixture: a loop, another loop, and a closed loop with objects ----

class BadInput : public RillTest {
 protected:
  rill_loop *other = nullptr;   // another open loop
  rill_loop *closed = nullptr;  // a closed loop (not yet freed)
  rill_future *other_future = nullptr;
  rill_task *other_task = nullptr;
  rill_future *closed_future = nullptr;  // made before its loop closed
  rill_task *closed_task = nullptr;

  void SetUp() override {
    RillTest::SetUp();
    other = rill_loop_new();
    ASSERT_NE(other, nullptr);
    rill_loop_set_exception_handler(other, NopHandler, nullptr, nullptr);
    other_future = rill_future_new(other);
    other_task = rill_task_new(other, NopStep, nullptr, nullptr);
    closed = rill_loop_new();
    ASSERT_NE(closed, nullptr);
    rill_loop_set_exception_handler(closed, NopHandler, nullptr, nullptr);
    closed_future = rill_future_new(closed);
    closed_task = rill_task_new(closed, NopStep, nullptr, nullptr);
    ASSERT_EQ(rill_loop_close(closed), RILL_OK);
  }
  void TearDown() override {
    rill_future_release(other_future);
    rill_task_release(other_task);
    rill_loop_free(other);
    rill_future_release(closed_future);
    rill_task_release(closed_task);
    rill_loop_free(closed);
    RillTest::TearDown();
  }
};

TEST_F(BadInput, LoopFunctionsRejectNull) {
  rill_loop_free(nullptr);
  rill_loop_stop(nullptr);
  EXPECT_FAILS_WITH(rill_loop_close(nullptr), RILL_EINVAL);
  EXPECT_FAILS_WITH(rill_loop_is_closed(nullptr), RILL_EINVAL);
  EXPECT_FAILS_WITH(rill_loop_run(nullptr), RILL_EINVAL);
  rill_future *f = NewFuture();
  EXPECT_FAILS_WITH(rill_loop_run_until(nullptr, f), RILL_EINVAL);
  EXPECT_FAILS_WITH(rill_loop_run_until(loop, nullptr), RILL_EINVAL);
  EXPECT_FAILS_WITH(rill_loop_run_once(nullptr, 0), RILL_EINVAL);
  EXPECT_TRUE(std::isnan(rill_loop_time(nullptr)));
  EXPECT_EQ(rill_loop_current(), nullptr);
  EXPECT_FAILS_WITH(rill_loop_set_exception_handler(nullptr, NopHandler, nullptr, nullptr),
                    RILL_EINVAL);
  EXPECT_FAILS_WITH(rill_loop_report(nullptr, "x", nullptr), RILL_EINVAL);
  EXPECT_FAILS_WITH(rill_loop_set_debug(nullptr, 1), RILL_EINVAL);
  EXPECT_FAILS_WITH(rill_loop_get_debug(nullptr), RILL_EINVAL);
  EXPECT_FAILS_WITH(rill_loop_set_slow_duration(nullptr, 0.1), RILL_EINVAL);
  EXPECT_NULL_WITH(rill_loop_dump_tasks(nullptr), RILL_EINVAL);
  rill_free(nullptr);
  EXPECT_FAILS_WITH(rill_loop_task_count(nullptr), RILL_EINVAL);
  rill_task *out[2];
  EXPECT_FAILS_WITH(rill_loop_tasks(nullptr, out, 2), RILL_EINVAL);
  EXPECT_FAILS_WITH(rill_loop_tasks(loop, nullptr, 2), RILL_EINVAL);
  EXPECT_FAILS_WITH(rill_loop_set_stack_size(nullptr, 65536), RILL_EINVAL);
  EXPECT_FAILS_WITH(rill_loop_shutdown(nullptr), RILL_EINVAL);
  EXPECT_FAILS_WITH(rill_loop_set_poll_hook(nullptr, nullptr, nullptr, nullptr), RILL_EINVAL);
  rill_future_release(f);
}

TEST_F(BadInput, LoopSettingsRejectBadValues) {
  EXPECT_FAILS_WITH(rill_loop_set_debug(loop, 2), RILL_EINVAL);
  EXPECT_FAILS_WITH(rill_loop_set_debug(loop, -1), RILL_EINVAL);
  EXPECT_EQ(rill_loop_get_debug(loop), 0) << "state as it was";
  EXPECT_FAILS_WITH(rill_loop_set_slow_duration(loop, 0), RILL_EINVAL);
  EXPECT_FAILS_WITH(rill_loop_set_slow_duration(loop, -1), RILL_EINVAL);
  EXPECT_FAILS_WITH(rill_loop_set_slow_duration(loop, std::nan("")), RILL_EINVAL);
  EXPECT_EQ(rill_loop_set_slow_duration(loop, 0.2), RILL_OK);
  EXPECT_EQ(rill_loop_set_stack_size(loop, 64 * 1024), RILL_OK);
}

TEST_F(BadInput, RunUntilAnotherLoopsFutureIsEInval) {
  EXPECT_FAILS_WITH(rill_loop_run_until(loop, other_future), RILL_EINVAL);
}

TEST_F(BadInput, ClosedLoopGivesEClosed) {
  EXPECT_EQ(rill_loop_is_closed(closed), 1);
  EXPECT_EQ(rill_loop_is_closed(loop), 0);
  EXPECT_FAILS_WITH(rill_loop_close(closed), RILL_ECLOSED);
  EXPECT_FAILS_WITH(rill_loop_run(closed), RILL_ECLOSED);
  EXPECT_FAILS_WITH(rill_loop_run_until(closed, closed_future), RILL_ECLOSED);
  EXPECT_FAILS_WITH(rill_loop_run_once(closed, 0), RILL_ECLOSED);
  EXPECT_FAILS_WITH(rill_loop_report(closed, "x", nullptr), RILL_ECLOSED);
  EXPECT_FAILS_WITH(rill_loop_shutdown(closed), RILL_ECLOSED);
  Tracked *arg = Track("arg of a refused call");
  EXPECT_NULL_WITH(rill_call_soon(closed, Nop, arg, TrackedFree), RILL_ECLOSED);
  EXPECT_NULL_WITH(rill_call_later(closed, 0.1, Nop, arg, TrackedFree), RILL_ECLOSED);
  EXPECT_NULL_WITH(rill_call_at(closed, 0.1, Nop, arg, TrackedFree), RILL_ECLOSED);
  EXPECT_FAILS_WITH(rill_call_soon_threadsafe(closed, Nop, arg, TrackedFree), RILL_ECLOSED);
  EXPECT_EQ(arg->frees, 0) << "free_arg is not called on failure";
  arg->frees = 1;
  EXPECT_NULL_WITH(rill_future_new(closed), RILL_ECLOSED);
  EXPECT_NULL_WITH(rill_task_new(closed, NopStep, nullptr, nullptr), RILL_ECLOSED);
  EXPECT_NULL_WITH(rill_spawn(closed, NopCoro, nullptr), RILL_ECLOSED);
  EXPECT_NULL_WITH(rill_sleep_future(closed, 0.1), RILL_ECLOSED);
  rill_future *futs[] = {closed_future};
  EXPECT_NULL_WITH(rill_gather(closed, 1, futs, 0), RILL_ECLOSED);
  EXPECT_NULL_WITH(rill_wait_for(closed, closed_future, 1.0), RILL_ECLOSED);
  EXPECT_NULL_WITH(rill_shield(closed, closed_future), RILL_ECLOSED);
  EXPECT_NULL_WITH(rill_wait(closed, 1, futs, RILL_WAIT_ALL, 1.0), RILL_ECLOSED);
  EXPECT_NULL_WITH(rill_group_new(closed, nullptr), RILL_ECLOSED);
  EXPECT_NULL_WITH(rill_timeout_new(closed_task, 1.0), RILL_ECLOSED);
  EXPECT_FAILS_WITH(rill_future_on_done(closed_future, NopDone, nullptr, nullptr), RILL_ECLOSED);
}

TEST_F(BadInput, ObjectsOfAClosedLoopStayReadable) {
  // Reading works; using them (anything that would need the loop) is
  // "use after close": RILL_ECLOSED.
  EXPECT_EQ(rill_future_state(closed_future), RILL_CANCELLED) << "cancelled at close";
  EXPECT_EQ(rill_future_error(closed_future), RILL_ECANCELLED);
  EXPECT_EQ(rill_future_loop(closed_future), closed);
  EXPECT_EQ(rill_future_done(rill_task_future(closed_task)), 1) << "destroyed at close";
  EXPECT_NE(rill_task_name(closed_task), nullptr);
  EXPECT_FAILS_WITH(rill_future_cancel(closed_future), RILL_ECLOSED);
  EXPECT_FAILS_WITH(rill_future_set_int(closed_future, 1), RILL_ECLOSED);
  EXPECT_FAILS_WITH(rill_task_cancel(closed_task, nullptr), RILL_ECLOSED);
}

TEST_F(BadInput, CallbackFunctionsRejectNull) {
  Tracked *arg = Track("arg of refused calls");
  EXPECT_NULL_WITH(rill_call_soon(nullptr, Nop, arg, TrackedFree), RILL_EINVAL);
  EXPECT_NULL_WITH(rill_call_soon(loop, nullptr, arg, TrackedFree), RILL_EINVAL);
  EXPECT_NULL_WITH(rill_call_later(nullptr, 0.1, Nop, arg, TrackedFree), RILL_EINVAL);
  EXPECT_NULL_WITH(rill_call_later(loop, 0.1, nullptr, arg, TrackedFree), RILL_EINVAL);
  EXPECT_NULL_WITH(rill_call_later(loop, std::nan(""), Nop, arg, TrackedFree), RILL_EINVAL);
  EXPECT_NULL_WITH(rill_call_at(nullptr, 0.1, Nop, arg, TrackedFree), RILL_EINVAL);
  EXPECT_NULL_WITH(rill_call_at(loop, 0.1, nullptr, arg, TrackedFree), RILL_EINVAL);
  EXPECT_NULL_WITH(rill_call_at(loop, std::nan(""), Nop, arg, TrackedFree), RILL_EINVAL);
  EXPECT_FAILS_WITH(rill_call_soon_threadsafe(nullptr, Nop, arg, TrackedFree), RILL_EINVAL);
  EXPECT_FAILS_WITH(rill_call_soon_threadsafe(loop, nullptr, arg, TrackedFree), RILL_EINVAL);
  EXPECT_EQ(arg->frees, 0) << "free_arg is not called on failure";
  arg->frees = 1;
  rill_handle_cancel(nullptr);
  rill_handle_release(nullptr);
  EXPECT_FAILS_WITH(rill_handle_cancelled(nullptr), RILL_EINVAL);
  EXPECT_TRUE(std::isnan(rill_handle_when(nullptr)));
}

TEST_F(BadInput, FutureFunctionsRejectNull) {
  EXPECT_NULL_WITH(rill_future_new(nullptr), RILL_EINVAL);
  EXPECT_EQ(rill_future_retain(nullptr), nullptr);
  rill_future_release(nullptr);
  EXPECT_NULL_WITH(rill_future_loop(nullptr), RILL_EINVAL);
  EXPECT_FAILS_WITH(rill_future_state(nullptr), RILL_EINVAL);
  EXPECT_FAILS_WITH(rill_future_done(nullptr), RILL_EINVAL);
  EXPECT_FAILS_WITH(rill_future_cancel(nullptr), RILL_EINVAL);
  EXPECT_FAILS_WITH(rill_future_cancel_msg(nullptr, "m"), RILL_EINVAL);
  EXPECT_FAILS_WITH(rill_future_on_done(nullptr, NopDone, nullptr, nullptr), RILL_EINVAL);
  EXPECT_FAILS_WITH(rill_future_remove_done(nullptr, NopDone, nullptr), RILL_EINVAL);
  EXPECT_FAILS_WITH(rill_future_set_none(nullptr), RILL_EINVAL);
  EXPECT_FAILS_WITH(rill_future_set_bool(nullptr, 1), RILL_EINVAL);
  EXPECT_FAILS_WITH(rill_future_set_int(nullptr, 1), RILL_EINVAL);
  EXPECT_FAILS_WITH(rill_future_set_double(nullptr, 1.0), RILL_EINVAL);
  EXPECT_FAILS_WITH(rill_future_set_bytes(nullptr, "x", 1), RILL_EINVAL);
  EXPECT_FAILS_WITH(rill_future_set_pointer(nullptr, nullptr, nullptr, &kTag), RILL_EINVAL);
  Tracked *payload = Track("payload of a refused fail");
  EXPECT_FAILS_WITH(rill_future_fail(nullptr, -1000, "m", payload, TrackedFree, &kTag), RILL_EINVAL);
  EXPECT_EQ(payload->frees, 1) << "free_payload runs at once if the call fails";
  EXPECT_FAILS_WITH(rill_future_kind(nullptr), RILL_EINVAL);
  int b;
  int64_t i;
  double d;
  size_t len = 5;
  EXPECT_FAILS_WITH(rill_future_bool(nullptr, &b), RILL_EINVAL);
  EXPECT_FAILS_WITH(rill_future_int(nullptr, &i), RILL_EINVAL);
  EXPECT_FAILS_WITH(rill_future_double(nullptr, &d), RILL_EINVAL);
  EXPECT_NULL_WITH(rill_future_bytes(nullptr, &len), RILL_EINVAL);
  EXPECT_EQ(len, 0u);
  EXPECT_NULL_WITH(rill_future_pointer(nullptr, &kTag), RILL_EINVAL);
  EXPECT_FAILS_WITH(rill_future_error(nullptr), RILL_EINVAL);
  EXPECT_NULL_WITH(rill_future_error_message(nullptr), RILL_EINVAL);
  EXPECT_NULL_WITH(rill_future_error_payload(nullptr, &kTag), RILL_EINVAL);
}

TEST_F(BadInput, FutureArgumentsAreChecked) {
  rill_future *f = NewFuture();
  EXPECT_FAILS_WITH(rill_future_on_done(f, nullptr, nullptr, nullptr), RILL_EINVAL);
  EXPECT_FAILS_WITH(rill_future_set_bytes(f, nullptr, 3), RILL_EINVAL);
  EXPECT_EQ(rill_future_state(f), RILL_PENDING);
  rill_future *b = NewFuture(), *i = NewFuture(), *d = NewFuture();
  rill_future_set_bool(b, 1);
  rill_future_set_int(i, 1);
  rill_future_set_double(d, 1);
  EXPECT_FAILS_WITH(rill_future_bool(b, nullptr), RILL_EINVAL);
  EXPECT_FAILS_WITH(rill_future_int(i, nullptr), RILL_EINVAL);
  EXPECT_FAILS_WITH(rill_future_double(d, nullptr), RILL_EINVAL);
  for (rill_future *x : {f, b, i, d}) rill_future_release(x);
}

TEST_F(BadInput, TaskFunctionsRejectNull) {
  EXPECT_NULL_WITH(rill_task_new(nullptr, NopStep, nullptr, nullptr), RILL_EINVAL);
  EXPECT_NULL_WITH(rill_task_new(loop, nullptr, nullptr, nullptr), RILL_EINVAL);
  EXPECT_NULL_WITH(rill_task_future(nullptr), RILL_EINVAL);
  EXPECT_NULL_WITH(rill_task_from_future(nullptr), RILL_EINVAL);
  EXPECT_EQ(rill_task_retain(nullptr), nullptr);
  rill_task_release(nullptr);
  EXPECT_NULL_WITH(rill_task_arg(nullptr), RILL_EINVAL);
  rill_future *f = NewFuture();
  EXPECT_FAILS_WITH(rill_task_wait(nullptr, f), RILL_EINVAL);
  EXPECT_FAILS_WITH(rill_task_yield(nullptr), RILL_EINVAL);
  EXPECT_FAILS_WITH(rill_task_sleep(nullptr, 0.1), RILL_EINVAL);
  EXPECT_FAILS_WITH(rill_task_cancel(nullptr, "m"), RILL_EINVAL);
  EXPECT_FAILS_WITH(rill_task_cancel_requested(nullptr), RILL_EINVAL);
  EXPECT_NULL_WITH(rill_task_cancel_message(nullptr), RILL_EINVAL);
  EXPECT_FAILS_WITH(rill_task_cancelling(nullptr), RILL_EINVAL);
  EXPECT_FAILS_WITH(rill_task_uncancel(nullptr), RILL_EINVAL);
  EXPECT_FAILS_WITH(rill_task_set_name(nullptr, "n"), RILL_EINVAL);
  EXPECT_NULL_WITH(rill_task_name(nullptr), RILL_EINVAL);
  EXPECT_EQ(rill_current_task(), nullptr);
  rill_future_release(f);
}

TEST_F(BadInput, TaskArgumentsAreCheckedInsideTheStep) {
  int n = 0;
  rill_task *t = NewTask([&](rill_task *self) {
    if (n++ > 0) return (void)rill_future_set_none(rill_task_future(self));
    EXPECT_FAILS_WITH(rill_task_wait(self, nullptr), RILL_EINVAL);
    EXPECT_FAILS_WITH(rill_task_wait(self, other_future), RILL_EINVAL);  // another loop
    EXPECT_FAILS_WITH(rill_task_sleep(self, std::nan("")), RILL_EINVAL);
    EXPECT_FAILS_WITH(rill_task_set_name(self, nullptr), RILL_EINVAL);
    EXPECT_EQ(rill_task_yield(self), RILL_OK) << "nothing was arranged by the failed calls";
  });
  Run();
  EXPECT_EQ(n, 2);
  EXPECT_EQ(rill_future_state(rill_task_future(t)), RILL_DONE);
  rill_task_release(t);
}

TEST_F(BadInput, CoroutineFunctionsRejectNullAndOtherLoops) {
  EXPECT_FAILS_WITH(rill_run(nullptr, nullptr), RILL_EINVAL);
  EXPECT_NULL_WITH(rill_spawn(nullptr, NopCoro, nullptr), RILL_EINVAL);
  EXPECT_NULL_WITH(rill_spawn(loop, nullptr, nullptr), RILL_EINVAL);
  EXPECT_EQ(RunMain([&] {
              EXPECT_FAILS_WITH(rill_await(nullptr), RILL_EINVAL);
              EXPECT_FAILS_WITH(rill_await(other_future), RILL_EINVAL);
              EXPECT_EQ(rill_sleep(0), RILL_OK) << "still a working coroutine";
              return 0;
            }),
            RILL_OK);
}

TEST_F(BadInput, CombinatorsRejectNullAndOtherLoops) {
  rill_future *f = NewFuture();
  rill_future *with_null[] = {f, nullptr};
  rill_future *mixed[] = {f, other_future};
  EXPECT_NULL_WITH(rill_sleep_future(nullptr, 0.1), RILL_EINVAL);
  EXPECT_NULL_WITH(rill_sleep_future(loop, std::nan("")), RILL_EINVAL);
  EXPECT_NULL_WITH(rill_gather(nullptr, 1, with_null, 0), RILL_EINVAL);
  EXPECT_NULL_WITH(rill_gather(loop, 2, with_null, 0), RILL_EINVAL);
  EXPECT_NULL_WITH(rill_gather(loop, 2, nullptr, 0), RILL_EINVAL);
  EXPECT_NULL_WITH(rill_gather(loop, 2, mixed, 0), RILL_EINVAL);
  EXPECT_EQ(rill_gather_count(nullptr), 0u);
  EXPECT_EQ(rill_gather_child(nullptr, 0), nullptr);
  EXPECT_NULL_WITH(rill_wait_for(nullptr, f, 1.0), RILL_EINVAL);
  EXPECT_NULL_WITH(rill_wait_for(loop, nullptr, 1.0), RILL_EINVAL);
  EXPECT_NULL_WITH(rill_wait_for(loop, other_future, 1.0), RILL_EINVAL);
  EXPECT_NULL_WITH(rill_shield(nullptr, f), RILL_EINVAL);
  EXPECT_NULL_WITH(rill_shield(loop, nullptr), RILL_EINVAL);
  EXPECT_NULL_WITH(rill_shield(loop, other_future), RILL_EINVAL);
  EXPECT_NULL_WITH(rill_wait(nullptr, 1, with_null, RILL_WAIT_ALL, 1.0), RILL_EINVAL);
  EXPECT_NULL_WITH(rill_wait(loop, 2, with_null, RILL_WAIT_ALL, 1.0), RILL_EINVAL);
  EXPECT_NULL_WITH(rill_wait(loop, 2, mixed, RILL_WAIT_ALL, 1.0), RILL_EINVAL);
  EXPECT_NULL_WITH(rill_wait(loop, 1, with_null, 99, 1.0), RILL_EINVAL);
  EXPECT_NULL_WITH(rill_wait(loop, 0, with_null, RILL_WAIT_ALL, 1.0), RILL_EINVAL);
  EXPECT_EQ(rill_future_state(f), RILL_PENDING) << "untouched by the refused calls";
  rill_future_release(f);
}

TEST_F(BadInput, TimeoutFunctionsRejectNull) {
  EXPECT_NULL_WITH(rill_timeout_new(nullptr, 1.0), RILL_EINVAL);
  EXPECT_FAILS_WITH(rill_timeout_reschedule(nullptr, 1.0), RILL_EINVAL);
  EXPECT_FAILS_WITH(rill_timeout_expired(nullptr), RILL_EINVAL);
  EXPECT_FAILS_WITH(rill_timeout_exit(nullptr, RILL_OK), RILL_EINVAL);
  rill_timeout_release(nullptr);
}

TEST_F(BadInput, GroupFunctionsRejectNullAndOtherLoops) {
  EXPECT_NULL_WITH(rill_group_new(nullptr, nullptr), RILL_EINVAL);
  EXPECT_NULL_WITH(rill_group_new(loop, other_task), RILL_EINVAL);
  rill_group *g = rill_group_new(loop, nullptr);
  ASSERT_NE(g, nullptr);
  EXPECT_FAILS_WITH(rill_group_add(nullptr, other_task), RILL_EINVAL);
  EXPECT_FAILS_WITH(rill_group_add(g, nullptr), RILL_EINVAL);
  EXPECT_FAILS_WITH(rill_group_add(g, other_task), RILL_EINVAL);
  EXPECT_NULL_WITH(rill_group_spawn(nullptr, NopCoro, nullptr), RILL_EINVAL);
  EXPECT_NULL_WITH(rill_group_spawn(g, nullptr, nullptr), RILL_EINVAL);
  EXPECT_NULL_WITH(rill_group_join(nullptr, RILL_OK), RILL_EINVAL);
  EXPECT_FAILS_WITH(rill_group_finish(nullptr, RILL_OK), RILL_EINVAL);
  EXPECT_FAILS_WITH(rill_group_finish(g, RILL_OK), RILL_ESTATE);  // not joined
  EXPECT_FAILS_WITH(rill_group_wait(nullptr, RILL_OK), RILL_EINVAL);
  EXPECT_EQ(rill_group_error_count(nullptr), 0u);
  EXPECT_EQ(rill_group_error_child(nullptr, 0), nullptr);
  EXPECT_EQ(rill_group_count(nullptr), 0u);
  EXPECT_EQ(rill_group_child(nullptr, 0), nullptr);
  EXPECT_EQ(rill_group_count(g), 0u) << "the refused adds added nothing";
  EXPECT_EQ(rill_group_child(g, 0), nullptr);
  EXPECT_EQ(rill_group_error_child(g, 0), nullptr);
  rill_group_release(nullptr);
  rill_future *join = rill_group_join(g, RILL_OK);
  ASSERT_NE(join, nullptr);
  EXPECT_EQ(rill_loop_run_until(loop, join), RILL_OK);
  EXPECT_EQ(rill_group_finish(g, RILL_OK), RILL_OK);
  rill_group_release(g);
}
