// Lesson 3, blocking against non-blocking, in C++20 (the same three ways
// as examples/blocking.c; output: examples/lessons/blocking.txt):
//   - A blocks in std::this_thread::sleep_for: 2 s;
//   - both co_await rill::sleep: 1 s;
//   - A moves its blocking work to the pool with rill::to_thread: 1 s.
// With RILL_DEBUG=1 the blocked step is reported once on stderr,
// "Executing <Task A (entry: ...)> took 1.001 seconds".
#include <chrono>
#include <cstdio>
#include <exception>
#include <thread>

#include <rill.hpp>

using namespace std::chrono_literals;

rill::task<> blocking_worker() {
  std::this_thread::sleep_for(1s); // the loop cannot run anything meanwhile
  co_return;
}

rill::task<> sleeping_worker() {
  co_await rill::sleep(1s); // yields to the loop for one second
}

rill::task<> threaded_worker() {
  co_await rill::to_thread([] { std::this_thread::sleep_for(1s); }); // the loop goes on
}

static rill::task<> gather_a_and_b(rill::task<> (*worker_of_a)()) {
  rill::set_slow_callback_duration(0.5); // report steps longer than 0.5 s
  auto a = rill::spawn(worker_of_a());
  auto b = rill::spawn(sleeping_worker());
  a.set_name("A");
  b.set_name("B");
  co_await rill::gather(std::move(a), std::move(b));
}

static void timed(const char *label, rill::task<> (*worker_of_a)()) {
  auto t0 = std::chrono::steady_clock::now();
  rill::run(gather_a_and_b(worker_of_a));
  std::chrono::duration<double> dt = std::chrono::steady_clock::now() - t0;
  std::printf("%s: %.1f s\n", label, dt.count());
  std::fflush(stdout);
}

int main() {
  try {
    timed("blocking (std::this_thread::sleep_for in a task)", blocking_worker);
    timed("non-blocking (rill::sleep)", sleeping_worker);
    timed("thread pool (rill::to_thread)", threaded_worker);
  } catch (const std::exception &e) {
    std::fprintf(stderr, "blocking: %s\n", e.what());
    return 1;
  }
  return 0;
}
