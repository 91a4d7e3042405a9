// The seed example in C++: two tasks that print, sleep one second, print
// again, gathered by a main task. Finishes in about one second, not two.
#include <cstdio>
#include <exception>

#include <rill.hpp>

using namespace std::chrono_literals;

rill::task<> task(const char *name) {
  std::printf("Task %s started\n", name);
  co_await rill::sleep(1s); // yields control to the event loop
  std::printf("Task %s finished\n", name);
}

rill::task<> main_task() { co_await rill::gather(task("A"), task("B")); }

int main() {
  try {
    rill::run(main_task());
  } catch (const std::exception &e) {
    std::fprintf(stderr, "seed: %s\n", e.what());
    return 1;
  }
  return 0;
}
