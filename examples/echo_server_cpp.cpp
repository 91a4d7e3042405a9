// echo_server_cpp.cpp - the echo server with C++20 coroutines on rill.hpp.
//
//   echo_server_cpp PORT
//
// Listens on 127.0.0.1:PORT, one task per connection echoing until the
// peer closes. Prints "listening on 127.0.0.1:PORT" when ready; exits 0 on
// SIGINT/SIGTERM (a side thread waits for the signal and closes the
// listener through rill_call_soon_threadsafe; rill::run then cancels the
// connection tasks, whose streams close).
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <pthread.h>
#include <thread>

#include <rill.hpp>

static rill::task<void> echo(rill::stream s) {
  try {
    for (;;) {
      co_await s.readable();  // no copy: echo straight from the read buffer
      std::string_view data = s.peek();
      if (data.empty()) break;  // end of stream
      s.write(data);
      s.consume(data.size());
    }
  } catch (const rill::error &) {  // reset by the peer: just end
  }
}

static rill::task<int> serve(int port, sigset_t sigs) {
  auto l = rill::listener::tcp("127.0.0.1", port, 1024);
  rill_loop *loop = rill_loop_current();
  std::thread waiter([loop, sigs, native = l.native()] {
    int sig;
    sigwait(&sigs, &sig);
    rill_call_soon_threadsafe(
        loop, [](void *arg) { rill_listener_close(static_cast<rill_listener *>(arg)); }, native, nullptr);
  });
  waiter.detach();  // it ends with the signal; the process ends after it
  std::printf("listening on 127.0.0.1:%d\n", port);
  std::fflush(stdout);
  try {
    for (;;) {
      rill::stream c = co_await l.accept();
      auto t = rill::spawn(echo(std::move(c)));
    }
  } catch (const rill::error &e) {
    if (e.code() != RILL_ENOTCONN) throw;  // closed by the signal
  }
  co_return 0;
}

int main(int argc, char **argv) {
  int port = argc > 1 ? std::atoi(argv[1]) : 0;
  if (port <= 0 || port > 65535) {
    std::fprintf(stderr, "usage: %s PORT\n", argv[0]);
    return 2;
  }
  sigset_t sigs;
  sigemptyset(&sigs);
  sigaddset(&sigs, SIGINT);
  sigaddset(&sigs, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &sigs, nullptr);
  try {
    return rill::run(serve(port, sigs));
  } catch (const std::exception &e) {
    std::fprintf(stderr, "echo_server_cpp: %s\n", e.what());
    return 1;
  }
}
