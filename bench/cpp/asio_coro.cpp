// asio_coro.cpp - the C/C++ peer of W1/W2/W3: standalone Asio with C++20
// coroutines on a single-threaded io_context (concurrency hint 1).
//   W1: co_await asio::post(ex, use_awaitable)   (sleep(0) / yield)
//   W3: co_await steady_timer::async_wait          (sleep)
//   gather: each co_spawn's completion handler stores the result and counts
//   down; the last one cancels a timer the main coroutine waits on.
// See ../c/bench_common.h for the command line and the RESULT line.
#include <asio.hpp>
#include <asio/redirect_error.hpp>

#include <chrono>
#include <exception>
#include <string>
#include <vector>

#include "../c/bench_common.h"

namespace {

struct State {
  bench_params p{};
  long steps = 0;
  long finished = 0;
  long failures = 0;
  double min_sleep = 1e300;
  std::vector<long> results;
  bool verified = false;
};

// Same tolerance as the rill programs: the coarsest peer timer granularity.
constexpr double kSleepTolerance = 1e-3;

asio::awaitable<long> w1_switch(State &s, long index) {
  auto ex = co_await asio::this_coro::executor;
  for (long i = 0; i < s.p.iters; i++) {
    co_await asio::post(ex, asio::use_awaitable);
    s.steps++;
  }
  s.finished++;
  co_return index;
}

asio::awaitable<long> w2_spawn(State &s, long index) {
  s.finished++;
  co_return index;
}

asio::awaitable<long> w3_timers(State &s, long index) {
  auto ex = co_await asio::this_coro::executor;
  double t0 = bench_now();
  asio::steady_timer timer(
      ex, std::chrono::duration_cast<asio::steady_timer::duration>(std::chrono::duration<double>(s.p.delay)));
  co_await timer.async_wait(asio::use_awaitable);
  double slept = bench_now() - t0;
  if (slept < s.min_sleep) s.min_sleep = slept;
  s.finished++;
  co_return index;
}

asio::awaitable<void> bench_main(State &s) {
  auto ex = co_await asio::this_coro::executor;
  const long n = s.p.tasks;
  const std::string w = s.p.workload;
  auto fn = w == "W1" ? w1_switch : w == "W2" ? w2_spawn : w3_timers;
  asio::steady_timer all_done(ex, asio::steady_timer::time_point::max());
  long remaining = n;
  s.results.assign(static_cast<size_t>(n), -1);
  for (long i = 0; i < n; i++) {
    asio::co_spawn(ex, fn(s, i), [&s, &remaining, &all_done, i](std::exception_ptr e, long v) {
      if (e)
        s.failures++;
      else
        s.results[static_cast<size_t>(i)] = v;
      if (--remaining == 0) all_done.cancel();
    });
  }
  if (remaining > 0) {
    asio::error_code ec;
    co_await all_done.async_wait(asio::redirect_error(asio::use_awaitable, ec));
  }
  if (remaining != 0) bench_fail("%ld tasks still running after the gather", remaining);
  if (s.failures) bench_fail("%ld tasks failed", s.failures);
  for (long i = 0; i < n; i++)
    if (s.results[static_cast<size_t>(i)] != i)
      bench_fail("task %ld returned %ld", i, s.results[static_cast<size_t>(i)]);
  if (s.finished != n) bench_fail("%ld tasks finished, expected %ld", s.finished, n);
  if (w == "W1" && s.steps != n * s.p.iters)
    bench_fail("%ld switches, expected %ld", s.steps, n * s.p.iters);
  if (w == "W3" && s.min_sleep < s.p.delay - kSleepTolerance)
    bench_fail("a sleep(%g) lasted %.6f s", s.p.delay, s.min_sleep);
  s.verified = true;
}

}  // namespace

int main(int argc, char **argv) {
  State s;
  s.p = bench_parse_args(argc, argv);
  double t0 = bench_now();
  {
    asio::io_context io(1);
    asio::co_spawn(io, bench_main(s), [](std::exception_ptr e) {
      if (e) std::rethrow_exception(e);
    });
    io.run();
  }
  double wall = bench_now() - t0;
  if (!s.verified) bench_fail("main coroutine did not finish its checks");
  char version[32], extra[64] = "";
  snprintf(version, sizeof version, "%d.%d.%d", ASIO_VERSION / 100000, ASIO_VERSION / 100 % 1000,
           ASIO_VERSION % 100);
  if (std::string(s.p.workload) == "W3") snprintf(extra, sizeof extra, "min_sleep_s=%.6f", s.min_sleep);
  bench_print_result(&s.p, "asio", version, wall, extra);
  return 0;
}
