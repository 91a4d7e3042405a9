// Lesson 1, the loop's cycle, in C++20: the same registrations as
// examples/cycle.c, in the same order, with the same output
// (examples/lessons/cycle.txt); about 0.30 s. rill.hpp's call_soon and
// call_later are members of rill::loop, which rill::run keeps to itself, so
// the callbacks here are registered with the C calls on the running loop
// (rill::handle owns the handle each returns).
#include <unistd.h>

#include <cstdio>
#include <exception>

#include <rill.hpp>

using namespace std::chrono_literals;

static int pipe_fds[2]; // [0] read end, [1] write end

static rill::task<> sleeper() {
  std::printf("task: started\n");
  co_await rill::sleep(0.15);
  std::printf("task: woke after sleep(0.15)\n");
}

static rill::task<> reader() {
  std::printf("reader: waiting for the pipe\n");
  auto ready = rill::future<int>::adopt(rill_fd_wait(rill::current_loop(), pipe_fds[0], RILL_READABLE));
  if (!ready) throw rill::error(rill_last_error());
  co_await ready;
  char c = '?';
  if (read(pipe_fds[0], &c, 1) != 1) throw rill::error(RILL_ESYS, "read");
  std::printf("reader: the pipe is readable, read '%c'\n", c);
}

static rill::task<> main_task() {
  rill_loop *loop = rill::current_loop();
  if (pipe(pipe_fds) != 0) throw rill::error(RILL_ESYS, "pipe");
  rill::future<void> fired(loop);
  // Registered in this order; the transcript shows the order they run in.
  rill::handle h1(rill_call_later(
      loop, 0.30,
      [](void *f) {
        std::printf("timer: call_later(0.30) fired\n");
        rill_future_set_none(static_cast<rill_future *>(f));
      },
      rill_future_retain(fired.native()), [](void *f) { rill_future_release(static_cast<rill_future *>(f)); }));
  rill::handle h2(rill_call_soon(loop, [](void *) { std::printf("callback: call_soon ran\n"); }, nullptr, nullptr));
  auto t = rill::spawn(sleeper());
  auto r = rill::spawn(reader());
  rill::handle h3(rill_call_later(
      loop, 0.05,
      [](void *) {
        if (write(pipe_fds[1], "x", 1) == 1) std::printf("timer: wrote 'x' to the pipe\n");
      },
      nullptr, nullptr));
  if (!h1.native() || !h2.native() || !h3.native()) throw rill::error(rill_last_error());
  co_await rill::gather(std::move(t), std::move(r), std::move(fired));
  std::printf("main: done\n");
  close(pipe_fds[0]);
  close(pipe_fds[1]);
}

int main() {
  try {
    rill::run(main_task());
  } catch (const std::exception &e) {
    std::fprintf(stderr, "cycle: %s\n", e.what());
    return 1;
  }
  return 0;
}
