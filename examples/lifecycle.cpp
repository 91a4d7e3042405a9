// Lesson 2, rill::run against the explicit loop, in C++20 (the same steps
// as examples/lifecycle.c; output: examples/lessons/lifecycle.txt).
// (a) rill::run(main()) (asyncio.run): main's value comes back, the tasks
//     left are cancelled and run down, the loop is closed.
// (b) the explicit path on rill::loop: run_until_complete twice on one
//     loop, run() (run_forever) stopped from a callback, close().
// (c) misuse: each refused with a rill::error carrying the code.
#include <cstdio>
#include <exception>

#include <rill.hpp>

using namespace std::chrono_literals;

// -- (a) --

static rill::task<> leftover() {
  try {
    co_await rill::sleep(10s);
  } catch (const rill::cancelled_error &) {
    std::printf("run: leftover task cancelled at shutdown\n");
    throw;
  }
}

static rill::task<int> run_main() {
  std::printf("run: main started\n");
  auto left = rill::spawn(leftover()); // dropping it would not stop it: the loop keeps it
  co_await rill::yield();  // let it start: a task cancelled before it starts never runs
  std::printf("run: main returns\n");
  co_return 42;
}

// -- (b) --

static rill::task<int> sleeper(double seconds, int result) {
  co_await rill::sleep(seconds);
  co_return result;
}

static const char *yes_no(bool b) { return b ? "yes" : "no"; }

// -- (c) --

template <class F> static const char *code_of(F &&f) {
  try {
    f();
  } catch (const rill::error &e) {
    return e.name();
  }
  return "accepted";
}

static rill::task<> misuse_inside(rill::loop &l) {
  std::printf("misuse: running a loop that already runs -> %s\n", code_of([&] { l.run(); }));
  std::printf("misuse: closing a running loop -> %s\n", code_of([&] { l.close(); }));
  co_return;
}

int main() {
  std::setvbuf(stdout, nullptr, _IOLBF, 0);
  try {
    // (a)
    int value = rill::run(run_main());
    std::printf("run: returned %d, the loop is gone\n", value);

    // (b)
    rill::loop l;
    std::printf("loop: created (running: %s, closed: %s)\n", yes_no(rill::current_loop() == l.native()),
                yes_no(rill_loop_is_closed(l) == 1));
    auto first = l.spawn(sleeper(0.05, 1));
    auto slow = l.spawn(sleeper(0.2, 2));
    int one = l.run_until_complete(first);
    std::printf("loop: first -> %d, slow still pending: %s\n", one, yes_no(!slow.done()));
    int two = l.run_until_complete(slow);
    std::printf("loop: slow -> %d (started in the first run, finished in the second)\n", two);
    bool stopped_by_callback = false;
    auto stopper = l.call_later(50ms, [&] {
      stopped_by_callback = true;
      l.stop();
    });
    l.run();
    if (stopped_by_callback) std::printf("loop: run_forever stopped by a callback\n");
    l.close();
    std::printf("loop: closed (closed: %s)\n", yes_no(rill_loop_is_closed(l) == 1));

    // (c)
    std::printf("misuse: run_until on a closed loop -> %s\n",
                code_of([&] { l.run_until_complete(sleeper(0, 3)); }));
    std::printf("misuse: call_soon on a closed loop -> %s\n", code_of([&] { l.call_soon([] {}); }));
    rill::loop other;
    other.run_until_complete(misuse_inside(other));
  } catch (const std::exception &e) {
    std::fprintf(stderr, "lifecycle: %s\n", e.what());
    return 1;
  }
  return 0;
}
