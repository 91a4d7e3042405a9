// The C++20 wrapper (bindings/cpp/rill.hpp): one behaviour per test, the
// order of events recorded and compared. Every test ends with its loop
// closed (rill::run or rill::loop's destructor) and, under cpp_valgrind,
// with nothing leaked.
#include <gtest/gtest.h>

#include <rill.hpp>

#include <algorithm>
#include <chrono>
#include <coroutine>
#include <cstdint>
#include <cstdlib>
#include <memory>
#include <stdexcept>
#include <string>
#include <tuple>
#include <vector>

using namespace std::chrono_literals;
using Events = std::vector<std::string>;

namespace {

double mono_now() {
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

// Valgrind runs everything ~20x slower; timing windows widen there.
double slack() {
  const char *s = std::getenv("RILL_TEST_LATE_SLACK");
  return s ? std::atof(s) : 0.1;
}

// Counts live instances: a frame that holds one is freed when it drops to 0.
struct Guard {
  static inline int live = 0;
  Guard() { live++; }
  Guard(const Guard &) { live++; }
  ~Guard() { live--; }
};

struct Point {
  int x, y;
  std::string label;
  bool operator==(const Point &) const = default;
};

struct MyError : std::runtime_error {
  int detail;
  explicit MyError(int d) : std::runtime_error("my error " + std::to_string(d)), detail(d) {}
};

// ---------------------------------------------------------------------------
// The seed example
// ---------------------------------------------------------------------------

rill::task<> seed_task(Events &ev, std::string name) {
  ev.push_back("Task " + name + " started");
  co_await rill::sleep(1s);
  ev.push_back("Task " + name + " finished");
}

rill::task<> seed_main(Events &ev) {
  co_await rill::gather(seed_task(ev, "A"), seed_task(ev, "B"));
}

TEST(Seed, TwoTasksSleepingOneSecondGatheredTakeOneSecondNotTwo) {
  Events ev;
  double t0 = mono_now();
  rill::run(seed_main(ev));
  double dt = mono_now() - t0;
  EXPECT_EQ(ev, (Events{"Task A started", "Task B started", "Task A finished", "Task B finished"}));
  EXPECT_GE(dt, 1.0);
  EXPECT_LE(dt, 1.0 + slack());
}

// ---------------------------------------------------------------------------
// run
// ---------------------------------------------------------------------------

rill::task<int> answer() { co_return 42; }

TEST(Run, ReturnsMainsValue) { EXPECT_EQ(rill::run(answer()), 42); }

rill::task<int> throws_my_error() {
  co_await rill::yield();
  throw MyError(7);
}

TEST(Run, RethrowsWhatMainThrew) {
  try {
    rill::run(throws_my_error());
    FAIL() << "no exception";
  } catch (const MyError &e) {
    EXPECT_EQ(e.detail, 7);
  }
}

rill::task<> sleeps_forever(Events &ev) {
  try {
    co_await rill::sleep(100s);
    ev.push_back("woke");
  } catch (const rill::cancelled_error &) {
    ev.push_back("cancelled at shutdown");
    throw;
  }
}

rill::task<int> leaves_a_task_behind(Events &ev) {
  auto t = rill::spawn(sleeps_forever(ev));
  co_await rill::yield(); // let it start
  co_return 1;
}

TEST(Run, CancelsLeftoverTasksAndRunsThemToTheirEnd) {
  Events ev;
  double t0 = mono_now();
  EXPECT_EQ(rill::run(leaves_a_task_behind(ev)), 1);
  EXPECT_EQ(ev, Events{"cancelled at shutdown"});
  EXPECT_LT(mono_now() - t0, 1.0);
}

rill::task<> nested_run() {
  EXPECT_THROW(rill::run(answer()), rill::error);
  co_return;
}

TEST(Run, InsideARunningLoopThrows) { rill::run(nested_run()); }

// ---------------------------------------------------------------------------
// Values of each kind, through task results and futures
// ---------------------------------------------------------------------------

template <class T> rill::task<T> give(T v) {
  co_await rill::yield();
  co_return v;
}

rill::task<> values_main() {
  bool t = co_await give(true);
  EXPECT_TRUE(t);
  bool f = co_await give(false);
  EXPECT_FALSE(f);
  int i = co_await give<int>(-5);
  EXPECT_EQ(i, -5);
  int64_t big = co_await give<int64_t>(INT64_MIN);
  EXPECT_EQ(big, INT64_MIN);
  uint16_t u = co_await give<uint16_t>(65535);
  EXPECT_EQ(u, 65535);
  double d = co_await give(2.5);
  EXPECT_EQ(d, 2.5);
  std::string s = co_await give(std::string("a\0b", 3));
  EXPECT_EQ(s, std::string("a\0b", 3));
  rill::bytes b{std::byte{0}, std::byte{255}};
  rill::bytes b2 = co_await give(b);
  EXPECT_EQ(b2, b);
  Point in{1, 2, "p"}; // GCC 12: no aggregate temporary inside co_await (see rill.hpp)
  Point p = co_await give(in);
  EXPECT_EQ(p, (Point{1, 2, "p"}));
  auto up = co_await give(std::make_unique<int>(9)); // move-only
  EXPECT_EQ(*up, 9);
}

TEST(Values, EachKindThroughTaskResults) { rill::run(values_main()); }

rill::task<> values_native_kinds() {
  // a C reader sees the native kinds
  auto ti = give<int>(3);
  co_await ti;
  EXPECT_EQ(rill_future_kind(ti.native_future()), RILL_INT);
  auto td = give(1.5);
  co_await td;
  EXPECT_EQ(rill_future_kind(td.native_future()), RILL_DOUBLE);
  auto ts = give(std::string("x"));
  co_await ts;
  EXPECT_EQ(rill_future_kind(ts.native_future()), RILL_BYTES);
  auto tp = give(Point{});
  co_await tp;
  EXPECT_EQ(rill_future_kind(tp.native_future()), RILL_POINTER);
  auto tv = give<bool>(true);
  co_await tv;
  EXPECT_EQ(rill_future_kind(tv.native_future()), RILL_BOOL);
  EXPECT_EQ(tv.result(), true); // a done task can be read again
}

TEST(Values, TravelAsRillNativeKinds) { rill::run(values_native_kinds()); }

template <class T> rill::task<> resolve_later(rill::future<T> f, T v) {
  co_await rill::sleep(10ms);
  f.set_value(std::move(v));
}

template <class T> rill::task<T> await_future(rill::future<T> f) { co_return co_await f; }

template <class T> void check_future_roundtrip(T v) {
  auto main = [](T v) -> rill::task<> {
    rill::future<T> f(rill::current_loop());
    auto setter = rill::spawn(resolve_later(f, v));
    EXPECT_FALSE(f.done());
    T got = co_await f;
    EXPECT_EQ(got, v);
    EXPECT_EQ(f.get(), v);
    T again = co_await await_future(f); // already done: no yield
    EXPECT_EQ(again, v);
  };
  rill::run(main(v));
}

TEST(Values, EachKindThroughFutures) {
  check_future_roundtrip(true);
  check_future_roundtrip<int>(123);
  check_future_roundtrip<int64_t>(-(int64_t(1) << 40));
  check_future_roundtrip(0.25);
  check_future_roundtrip(std::string("hello"));
  check_future_roundtrip(rill::bytes{std::byte{1}, std::byte{2}});
  check_future_roundtrip(Point{3, 4, "q"});
}

rill::task<> void_future_main(Events &ev) {
  rill::future<> f(rill::current_loop());
  auto h = rill::spawn([](rill::future<> f) -> rill::task<> {
    co_await rill::yield();
    f.set_value();
  }(f));
  co_await f;
  ev.push_back("void future done");
  EXPECT_EQ(rill_future_kind(f.native()), RILL_NONE);
}

TEST(Values, VoidFuture) {
  Events ev;
  rill::run(void_future_main(ev));
  EXPECT_EQ(ev, Events{"void future done"});
}

TEST(Values, FutureIsARefCountedHandle) {
  rill::loop loop;
  rill::future<int> a(loop);
  rill::future<int> b = a; // retain
  rill::future<int> c = std::move(b);
  EXPECT_EQ(a.native(), c.native());
  EXPECT_EQ(b.native(), nullptr);
  c.set_value(5);
  EXPECT_EQ(a.get(), 5);
  EXPECT_THROW(a.set_value(6), rill::error);
  rill::future<int> d(loop);
  EXPECT_THROW(d.get(), rill::error); // pending
}

TEST(Values, WrongTypeReadsThrowETYPE) {
  rill::loop loop;
  rill::future<int> f(loop);
  f.set_value(1);
  auto as_string = rill::future<std::string>::borrow(f.native());
  try {
    as_string.get();
    FAIL();
  } catch (const rill::error &e) {
    EXPECT_EQ(e.code(), RILL_ETYPE);
  }
  auto as_point = rill::future<Point>::borrow(f.native());
  EXPECT_THROW(as_point.get(), rill::error);
  auto as_double = rill::future<double>::borrow(f.native());
  EXPECT_EQ(as_double.get(), 1.0); // ints read as double, as other languages send them
}

// ---------------------------------------------------------------------------
// Exceptions cross co_await as the same object
// ---------------------------------------------------------------------------

std::exception_ptr thrown;

rill::task<int> fails_with_my_error(int d) {
  co_await rill::yield();
  thrown = std::make_exception_ptr(MyError(d));
  std::rethrow_exception(thrown);
}

const void *address_of_thrown() {
  try {
    std::rethrow_exception(thrown);
  } catch (const MyError &e) {
    return &e;
  }
  return nullptr;
}

rill::task<> exception_main(Events &ev) {
  try {
    co_await fails_with_my_error(1);
  } catch (const MyError &e) {
    ev.push_back("caught " + std::string(e.what()));
    EXPECT_EQ(&e, address_of_thrown()); // the same object, not a copy
  }
  // through gather
  try {
    co_await rill::gather(give(1), fails_with_my_error(2));
  } catch (const MyError &e) {
    ev.push_back("gather " + std::to_string(e.detail));
    EXPECT_EQ(&e, address_of_thrown());
  }
  // through a future
  rill::future<int> f(rill::current_loop());
  f.set_exception(std::make_exception_ptr(MyError(3)));
  try {
    co_await f;
  } catch (const MyError &e) {
    ev.push_back("future " + std::to_string(e.detail));
  }
  // a C failure code becomes rill::error with that code and message
  rill::future<int> g(rill::current_loop());
  g.fail(-1001, "app failure");
  try {
    co_await g;
  } catch (const rill::error &e) {
    ev.push_back(std::string(e.what()) + " " + std::to_string(e.code()));
  }
}

TEST(Exceptions, CrossCoAwaitAsTheSameObject) {
  Events ev;
  rill::run(exception_main(ev));
  EXPECT_EQ(ev, (Events{"caught my error 1", "gather 2", "future 3", "app failure -1001"}));
}

rill::task<int> throws_timeout_error() {
  co_await rill::yield();
  throw rill::timeout_error("mine");
}

rill::task<> rill_error_code_kept() {
  auto t = throws_timeout_error();
  EXPECT_THROW(co_await t, rill::timeout_error);
  // C and the other languages see the code, not just "an exception"
  EXPECT_EQ(rill_future_error(t.native_future()), RILL_ETIMEDOUT);
  auto u = fails_with_my_error(4);
  EXPECT_THROW(co_await u, MyError);
  EXPECT_EQ(rill_future_error(u.native_future()), RILL_EEXCEPTION);
  EXPECT_STREQ(rill_future_error_message(u.native_future()), "my error 4");
}

TEST(Exceptions, FailureCodeVisibleFromC) { rill::run(rill_error_code_kept()); }

// ---------------------------------------------------------------------------
// Cancellation arrives as rill::cancelled_error at the co_await
// ---------------------------------------------------------------------------

rill::task<int> catches_cancel(Events &ev) {
  try {
    co_await rill::sleep(10s);
    ev.push_back("slept");
  } catch (const rill::cancelled_error &e) {
    ev.push_back(std::string("cancelled: ") + e.what());
    co_return -1; // caught: the task ends DONE
  }
  co_return 0;
}

rill::task<> doesnt_catch(Events &ev) {
  ev.push_back("waiting");
  co_await rill::sleep(10s);
  ev.push_back("never");
}

rill::task<> cancel_main(Events &ev) {
  auto a = rill::spawn(catches_cancel(ev));
  auto b = rill::spawn(doesnt_catch(ev));
  co_await rill::sleep(10ms);
  EXPECT_TRUE(a.cancel("stop now"));
  EXPECT_TRUE(b.cancel());
  int ra = co_await a;
  EXPECT_EQ(ra, -1);
  EXPECT_FALSE(a.cancelled());
  try {
    co_await b;
    ev.push_back("b returned");
  } catch (const rill::cancelled_error &) {
    ev.push_back("b cancelled");
  }
  EXPECT_TRUE(b.cancelled());
  EXPECT_FALSE(a.cancel()); // done
}

TEST(Cancel, DeliveredAsExceptionAndCaught) {
  Events ev;
  double t0 = mono_now();
  rill::run(cancel_main(ev));
  EXPECT_LT(mono_now() - t0, 1.0);
  EXPECT_EQ(ev, (Events{"waiting", "cancelled: stop now", "b cancelled"}));
}

rill::task<> never_runs(Events &ev) {
  ev.push_back("body ran");
  co_return;
}

rill::task<> cancel_before_start(Events &ev) {
  auto t = rill::spawn(never_runs(ev));
  t.cancel();
  EXPECT_THROW(co_await t, rill::cancelled_error);
  EXPECT_TRUE(t.cancelled());
}

TEST(Cancel, BeforeTheFirstStepTheBodyNeverRuns) {
  Events ev;
  rill::run(cancel_before_start(ev));
  EXPECT_TRUE(ev.empty());
}

rill::task<> waits_on_future(rill::future<int> f, Events &ev) {
  try {
    co_await f;
  } catch (const rill::cancelled_error &e) {
    ev.push_back(std::string("future wait cancelled: ") + e.what());
    throw;
  }
}

rill::task<> cancel_reaches_awaited_future(Events &ev) {
  rill::future<int> f(rill::current_loop());
  auto t = rill::spawn(waits_on_future(f, ev));
  co_await rill::yield();
  co_await rill::yield();
  t.cancel("bye");
  EXPECT_TRUE(f.cancelled()); // the awaited future is cancelled at once
  EXPECT_THROW(co_await t, rill::cancelled_error);
}

TEST(Cancel, AwaitedFutureIsCancelledAtOnce) {
  Events ev;
  rill::run(cancel_reaches_awaited_future(ev));
  EXPECT_EQ(ev, Events{"future wait cancelled: bye"});
}

rill::task<> yields_until_cancelled(Events &ev) {
  try {
    for (;;) co_await rill::yield();
  } catch (const rill::cancelled_error &e) {
    ev.push_back(std::string("yield: ") + e.what());
    throw;
  }
}

rill::task<> sleeps_zero_until_cancelled(Events &ev) {
  try {
    for (;;) co_await rill::sleep(0);
  } catch (const rill::cancelled_error &e) {
    ev.push_back(std::string("sleep(0): ") + e.what());
    throw;
  }
}

rill::task<> cancel_at_yield_and_sleep_zero(Events &ev) {
  auto a = rill::spawn(yields_until_cancelled(ev));
  auto b = rill::spawn(sleeps_zero_until_cancelled(ev));
  co_await rill::yield();
  co_await rill::yield();
  a.cancel("a stop");
  b.cancel("b stop");
  EXPECT_THROW(co_await a, rill::cancelled_error);
  EXPECT_THROW(co_await b, rill::cancelled_error);
}

// yield() and sleep(0) read the task's cancel flag (rill_task_cancel_flag),
// not rill_task_cancel_requested, and find the message themselves.
TEST(Cancel, AtYieldAndAtSleepZeroThrowsWithTheMessage) {
  Events ev;
  rill::run(cancel_at_yield_and_sleep_zero(ev));
  EXPECT_EQ(ev, (Events{"yield: a stop", "sleep(0): b stop"}));
}

// ---------------------------------------------------------------------------
// gather
// ---------------------------------------------------------------------------

template <class T> rill::task<T> after(std::chrono::milliseconds d, T v, Events &ev) {
  co_await rill::sleep(d);
  ev.push_back("done " + std::to_string(d.count()));
  co_return v;
}

rill::task<> after_void(std::chrono::milliseconds d, Events &ev) {
  co_await rill::sleep(d);
  ev.push_back("done " + std::to_string(d.count()));
}

rill::task<> gather_order(Events &ev) {
  rill::future<std::string> f(rill::current_loop());
  f.set_value("ready");
  auto [a, b, c, d] = co_await rill::gather(after(30ms, 1, ev), after(10ms, std::string("two"), ev),
                                            after_void(20ms, ev), std::move(f));
  EXPECT_EQ(a, 1);
  EXPECT_EQ(b, "two");
  EXPECT_EQ(c, rill::none{});
  EXPECT_EQ(d, "ready");
  auto empty = co_await rill::gather();
  EXPECT_EQ(std::tuple_size_v<decltype(empty)>, 0u);
}

TEST(Gather, TupleInArgumentOrderNotCompletionOrder) {
  Events ev;
  rill::run(gather_order(ev));
  EXPECT_EQ(ev, (Events{"done 10", "done 20", "done 30"}));
}

rill::task<long> index_task(long i) {
  co_await rill::yield();
  co_return i;
}

rill::task<> gather_vector() {
  std::vector<rill::task<long>> tasks;
  for (long i = 0; i < 100; i++) tasks.push_back(index_task(i));
  std::vector<long> r = co_await rill::gather(std::move(tasks));
  EXPECT_EQ(r.size(), 100u);
  for (long i = 0; i < 100 && size_t(i) < r.size(); i++) EXPECT_EQ(r[size_t(i)], i);
  auto none = co_await rill::gather(std::vector<rill::task<long>>{});
  EXPECT_TRUE(none.empty());
}

TEST(Gather, VectorOfTasksInOrder) { rill::run(gather_vector()); }

rill::task<> gather_first_error(Events &ev) {
  auto slow = rill::spawn(after(30ms, 3, ev));
  try {
    co_await rill::gather(after(10ms, 1, ev), fails_with_my_error(5), std::move(slow));
  } catch (const MyError &e) {
    ev.push_back("error " + std::to_string(e.detail));
  }
  co_await rill::sleep(50ms); // the others keep running
}

TEST(Gather, FirstErrorReachesAwaiterOthersKeepRunning) {
  Events ev;
  rill::run(gather_first_error(ev));
  EXPECT_EQ(ev, (Events{"error 5", "done 10", "done 30"}));
}

rill::task<> gather_cancelled(Events &ev) {
  auto g = rill::spawn([](Events &ev) -> rill::task<> {
    co_await rill::gather(doesnt_catch(ev), doesnt_catch(ev));
  }(ev));
  co_await rill::sleep(10ms);
  g.cancel();
  EXPECT_THROW(co_await g, rill::cancelled_error);
}

TEST(Gather, CancellingTheAwaiterCancelsEveryChild) {
  Events ev;
  double t0 = mono_now();
  rill::run(gather_cancelled(ev));
  EXPECT_LT(mono_now() - t0, 1.0);
  EXPECT_EQ(ev, (Events{"waiting", "waiting"}));
}

// ---------------------------------------------------------------------------
// wait_for
// ---------------------------------------------------------------------------

rill::task<> wait_for_main(Events &ev) {
  rill_loop *l = rill::current_loop();
  double t0 = rill_loop_time(l);
  try {
    co_await rill::wait_for(doesnt_catch(ev), 50ms);
    ev.push_back("no timeout?");
  } catch (const rill::timeout_error &e) {
    ev.push_back("timeout");
    EXPECT_EQ(e.code(), RILL_ETIMEDOUT);
  }
  EXPECT_GE(rill_loop_time(l) - t0, 0.05);
  EXPECT_LT(rill_loop_time(l) - t0, 1.0);
  int eight = co_await rill::wait_for(after(5ms, 8, ev), 1s);
  EXPECT_EQ(eight, 8);
  try {
    co_await rill::wait_for(fails_with_my_error(6), 1s);
  } catch (const MyError &e) {
    ev.push_back("inner error " + std::to_string(e.detail));
  }
}

TEST(WaitFor, TimeoutCancelsInnerThenThrowsTimeoutError) {
  Events ev;
  rill::run(wait_for_main(ev));
  EXPECT_EQ(ev, (Events{"waiting", "timeout", "done 5", "inner error 6"}));
}

rill::task<> wait_for_inner_catches(Events &ev) {
  // inner catches the cancel and finishes regardless: its outcome wins,
  // as in asyncio
  int v = co_await rill::wait_for(catches_cancel(ev), 20ms);
  ev.push_back("value " + std::to_string(v));
}

TEST(WaitFor, InnerThatCatchesTheCancelGivesItsValue) {
  Events ev;
  rill::run(wait_for_inner_catches(ev));
  EXPECT_EQ(ev, (Events{"cancelled: operation was cancelled", "value -1"}));
}

rill::task<> wait_for_uncaught(Events &ev) {
  try {
    co_await rill::wait_for(doesnt_catch(ev), 20ms);
  } catch (const rill::timeout_error &) {
    ev.push_back("timeout");
  }
}

TEST(WaitFor, InnerThatLetsTheCancelThroughGivesTimeoutError) {
  Events ev;
  rill::run(wait_for_uncaught(ev));
  EXPECT_EQ(ev, (Events{"waiting", "timeout"}));
}

// ---------------------------------------------------------------------------
// sleep(0)
// ---------------------------------------------------------------------------

rill::task<> ping(Events &ev, std::string name, int n) {
  for (int i = 0; i < n; i++) {
    ev.push_back(name);
    co_await rill::sleep(0s);
  }
}

rill::task<> alternate(Events &ev) { co_await rill::gather(ping(ev, "A", 4), ping(ev, "B", 4)); }

TEST(Sleep, ZeroGivesUpExactlyOneIterationTwoTasksAlternate) {
  Events ev;
  rill::run(alternate(ev));
  EXPECT_EQ(ev, (Events{"A", "B", "A", "B", "A", "B", "A", "B"}));
}

rill::task<> sleep_never_early() {
  rill_loop *l = rill::current_loop();
  double t0 = rill_loop_time(l), m0 = mono_now();
  co_await rill::sleep(30ms);
  EXPECT_GE(rill_loop_time(l) - t0, 0.03);
  EXPECT_GE(mono_now() - m0, 0.03 - 1e-3);
  co_await rill::sleep(0.001); // seconds as a double
}

TEST(Sleep, NeverEarly) { rill::run(sleep_never_early()); }

rill::task<> done_future_does_not_yield(Events &ev) {
  rill::future<int> f(rill::current_loop());
  f.set_value(1);
  auto other = rill::spawn(ping(ev, "other", 1));
  co_await rill::yield(); // other runs now
  ev.push_back("before");
  co_await f; // done: no yield, so nothing runs in between
  ev.push_back("after");
}

TEST(Sleep, AwaitingADoneFutureDoesNotYield) {
  Events ev;
  rill::run(done_future_does_not_yield(ev));
  EXPECT_EQ(ev, (Events{"other", "before", "after"}));
}

// ---------------------------------------------------------------------------
// C and C++ tasks on one loop
// ---------------------------------------------------------------------------

// A C coroutine (rill_spawn) that awaits the future given as arg and
// returns twice its int value.
int c_doubler(void *arg) {
  rill_future *f = static_cast<rill_future *>(arg);
  int rc = rill_await(f);
  if (rc < 0) return rc;
  int64_t v = 0;
  if ((rc = rill_future_int(f, &v)) < 0) return rc;
  return rill_future_set_int(rill_task_future(rill_current_task()), 2 * v);
}

rill::task<> c_and_cpp() {
  auto cpp_child = rill::spawn(give<int>(21));
  rill_task *c = rill_spawn(rill::current_loop(), c_doubler, cpp_child.native_future());
  // a C task's future read from C++ as a typed future
  auto f = rill::future<int64_t>::borrow(rill_task_future(c));
  rill_task_release(c);
  int64_t v = co_await f;
  EXPECT_EQ(v, 42);
}

TEST(Interop, CTaskAwaitsCppTaskAndBack) { rill::run(c_and_cpp()); }

// ---------------------------------------------------------------------------
// RAII
// ---------------------------------------------------------------------------

rill::task<int> holds_guard() {
  Guard g;
  co_await rill::sleep(10s);
  co_return 1;
}

// A task is one word: a vector of 100,000 of them is 0.8 MB.
static_assert(sizeof(rill::task<int>) == sizeof(void *));

#ifndef RILL_CPP_NO_FRAME_POOL
TEST(FramePool, AFreedFrameIsReusedAndSixteenByteMultiplesStayAligned) {
  using pool = rill::detail::frame_pool;
  void *a = pool::allocate(72);
  pool::deallocate(a, 72);
  void *b = pool::allocate(70); // the same 8-byte class
  EXPECT_EQ(a, b);
  // A size that is not a multiple of 16 cannot need more than 8-byte
  // alignment; one that is gets 16, wherever the slab was carved to.
  void *c = pool::allocate(40);
  void *d = pool::allocate(48);
  void *e = pool::allocate(24);
  void *f = pool::allocate(32);
  for (void *p : {a, c, e}) EXPECT_EQ(reinterpret_cast<std::uintptr_t>(p) % 8, 0u);
  for (void *p : {d, f}) EXPECT_EQ(reinterpret_cast<std::uintptr_t>(p) % 16, 0u);
  pool::deallocate(b, 70);
  pool::deallocate(c, 40);
  pool::deallocate(d, 48);
  pool::deallocate(e, 24);
  pool::deallocate(f, 32);
  // Past 1 KiB frames are plain operator new.
  void *big = pool::allocate(4096);
  pool::deallocate(big, 4096);
}

// Resumes at once, noting the coroutine's frame.
struct note_frame {
  void **out;
  bool await_ready() const noexcept { return false; }
  bool await_suspend(std::coroutine_handle<> h) const noexcept {
    *out = h.address();
    return false;
  }
  void await_resume() const noexcept {}
};

rill::task<long> notes_its_frame(long i, std::vector<void *> &frames) {
  void *me = nullptr;
  co_await note_frame{&me};
  frames.push_back(me);
  co_return i;
}

rill::task<> a_thousand_tasks_twice(std::vector<void *> (&frames)[2]) {
  for (auto &round : frames) {
    std::vector<rill::task<long>> tasks;
    for (long i = 0; i < 1000; i++) tasks.push_back(notes_its_frame(i, round));
    std::vector<long> r = co_await rill::gather(std::move(tasks));
    EXPECT_EQ(r.size(), 1000u);
    EXPECT_EQ(r[999], 999);
  }
}

// The second thousand frames are the first thousand's, freed as each task
// finished.
TEST(FramePool, FramesOfFinishedTasksAreReused) {
  std::vector<void *> frames[2];
  rill::run(a_thousand_tasks_twice(frames));
  for (auto &round : frames) std::sort(round.begin(), round.end());
  ASSERT_EQ(frames[0].size(), 1000u);
  EXPECT_EQ(frames[0], frames[1]);
}
#endif

TEST(Raii, UnstartedTaskFreesItsFrame) {
  Guard::live = 0;
  {
    auto t = holds_guard();
    EXPECT_EQ(Guard::live, 0); // nothing ran: lazy
    EXPECT_FALSE(t.started());
  }
  EXPECT_EQ(Guard::live, 0);
}

TEST(Raii, LoopCloseDestroysPendingTaskFrames) {
  Guard::live = 0;
  rill::loop loop;
  rill_loop_set_exception_handler(loop, [](rill_loop *, const char *, rill_future *, void *) {},
                                  nullptr, nullptr);
  auto t = loop.spawn(holds_guard());
  EXPECT_EQ(loop.run_once(0), 1);
  EXPECT_EQ(Guard::live, 1);
  loop.close();
  EXPECT_EQ(Guard::live, 0); // the frame, and its locals, are gone
  EXPECT_TRUE(t.cancelled());
}

TEST(Raii, FinishedTaskFreesItsFrameWhileTheHandleLives) {
  Guard::live = 0;
  auto body = []() -> rill::task<int> {
    Guard g;
    co_await rill::yield();
    co_return 2;
  };
  rill::loop loop;
  auto t = loop.spawn(body());
  EXPECT_EQ(loop.run_until_complete(t), 2);
  EXPECT_EQ(Guard::live, 0);
  EXPECT_EQ(t.result(), 2);
}

TEST(Raii, LoopIsMoveOnlyAndCallbacksRun) {
  Events ev;
  rill::loop a;
  rill::loop b = std::move(a);
  EXPECT_EQ(a.native(), nullptr);
  auto h1 = b.call_later(5ms, [&] { ev.push_back("later"); });
  auto h2 = b.call_soon([&, s = std::make_shared<int>(1)] { ev.push_back("soon"); });
  auto h3 = b.call_soon([&] { ev.push_back("cancelled"); });
  h3.cancel();
  b.run();
  EXPECT_EQ(ev, (Events{"soon", "later"}));
  EXPECT_TRUE(h3.cancelled());
}

} // namespace

// ---------------------------------------------------------------------------
// Debug mode: a slow step names the coroutine and where it waits
// ---------------------------------------------------------------------------

namespace {

void busy_for(double seconds) {
  double end = mono_now() + seconds;
  while (mono_now() < end) {
  }
}

rill::task<> slow_then_waits() {
  busy_for(0.08);
  co_await rill::sleep(1ms); // the step ends here: the report names this line
  co_return;
}
constexpr unsigned slow_then_waits_await_line = __LINE__ - 3;

rill::task<> slow_and_done() {
  busy_for(0.08);
  co_return;
}

}  // namespace

TEST(Debug, ASlowStepIsReportedWithTheCoroutineAndTheLineItWaitsAt) {
  static std::vector<std::string> reports;
  reports.clear();
  rill::loop loop;
  rill_loop_set_exception_handler(
      loop, [](rill_loop *, const char *m, rill_future *, void *) { reports.emplace_back(m); },
      nullptr, nullptr);
  EXPECT_FALSE(loop.get_debug());
  loop.set_debug(true);
  EXPECT_TRUE(loop.get_debug());
  loop.set_slow_callback_duration(0.05);
  EXPECT_THROW(loop.set_slow_callback_duration(-1), rill::error);
  EXPECT_THROW(rill::set_slow_callback_duration(0.05), rill::error); // no running loop
  auto a = loop.spawn(slow_then_waits());
  a.set_name("A");
  loop.run_until_complete(a);
  auto b = loop.spawn(slow_and_done());
  b.set_name("B");
  loop.run_until_complete(b);
  ASSERT_EQ(reports.size(), 2u);
  std::string where = std::string("slow_then_waits() running at ") + __FILE__ + ":" +
                      std::to_string(slow_then_waits_await_line) + ")> took ";
  EXPECT_NE(reports[0].find("Executing <Task A (entry: " + where), std::string::npos) << reports[0];
  EXPECT_NE(reports[1].find("Executing <Task B (entry: slow_and_done() done)> took "),
            std::string::npos)
      << reports[1];
}
