// rill_cpp.cpp - W1/W2/W3 with the C++20 wrapper (bindings/cpp/rill.hpp):
// rill::task coroutines driven by rill's step tasks, co_await
// rill::sleep / rill::yield, rill::gather over a vector of tasks, rill::run.
// The same checks as the C programs: the gather returns each task's own
// index, W1 counts the switches, W3 measures every sleep on both clocks.
// See ../c/bench_common.h for the command line and the RESULT line.
#include <rill.hpp>

#include <chrono>
#include <cstring>
#include <exception>
#include <string>
#include <vector>

#include "../c/bench_common.h"

namespace {

struct State {
  bench_params p{};
  long steps = 0;
  long finished = 0;
  double min_sleep_real = 1e300;
  double min_sleep_loop = 1e300;
  bool verified = false;
};

rill::task<long> w1_switch(State &s, long index) {
  for (long i = 0; i < s.p.iters; i++) {
    co_await rill::yield();
    s.steps++;
  }
  s.finished++;
  co_return index;
}

rill::task<long> w2_spawn(State &s, long index) {
  s.finished++;
  co_return index;
}

rill::task<long> w3_timers(State &s, long index) {
  rill_loop *loop = rill::current_loop();
  double t0 = bench_now(), l0 = rill_loop_time(loop);
  co_await rill::sleep(s.p.delay);
  double real = bench_now() - t0, lt = rill_loop_time(loop) - l0;
  if (real < s.min_sleep_real) s.min_sleep_real = real;
  if (lt < s.min_sleep_loop) s.min_sleep_loop = lt;
  s.finished++;
  co_return index;
}

rill::task<> bench_main(State &s) {
  long n = s.p.tasks;
  std::vector<rill::task<long>> tasks;
  tasks.reserve(static_cast<size_t>(n));
  bool w1 = !std::strcmp(s.p.workload, "W1"), w2 = !std::strcmp(s.p.workload, "W2");
  for (long i = 0; i < n; i++)
    tasks.push_back(w1 ? w1_switch(s, i) : w2 ? w2_spawn(s, i) : w3_timers(s, i));
  std::vector<long> results = co_await rill::gather(std::move(tasks));

  if (results.size() != static_cast<size_t>(n))
    bench_fail("gather returned %zu results, expected %ld", results.size(), n);
  for (long i = 0; i < n; i++)
    if (results[static_cast<size_t>(i)] != i)
      bench_fail("result %ld is %ld", i, results[static_cast<size_t>(i)]);
  if (s.finished != n) bench_fail("%ld tasks finished, expected %ld", s.finished, n);
  if (w1 && s.steps != n * s.p.iters) bench_fail("%ld switches, expected %ld", s.steps, n * s.p.iters);
  if (!w1 && !w2) {
    if (s.min_sleep_loop < s.p.delay)
      bench_fail("a sleep(%g) lasted %.6f s on the loop clock", s.p.delay, s.min_sleep_loop);
    if (s.min_sleep_real < s.p.delay - 1e-3)
      bench_fail("a sleep(%g) lasted %.6f s on CLOCK_MONOTONIC", s.p.delay, s.min_sleep_real);
  }
  s.verified = true;
}

} // namespace

int main(int argc, char **argv) {
  State s;
  s.p = bench_parse_args(argc, argv);
  double t0 = bench_now();
  try {
    rill::run(bench_main(s));
  } catch (const std::exception &e) {
    bench_fail("rill::run: %s", e.what());
  }
  double wall = bench_now() - t0;
  if (!s.verified) bench_fail("main task did not finish its checks");
  char extra[128] = "";
  if (!std::strcmp(s.p.workload, "W3"))
    std::snprintf(extra, sizeof extra, "min_sleep_s=%.6f min_sleep_loop_s=%.6f", s.min_sleep_real,
                  s.min_sleep_loop);
  bench_print_result(&s.p, "rill-cpp", rill_version_string(), wall, extra);
  return 0;
}
