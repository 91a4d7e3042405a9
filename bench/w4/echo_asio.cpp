// echo_asio.cpp - an Asio C++20 coroutine echo server (co_spawn per
// connection, async_read_some + async_write).   echo_asio PORT
#include <asio.hpp>
#include <cstdio>
#include <cstdlib>

using asio::ip::tcp;

static asio::awaitable<void> echo(tcp::socket s) {
  char data[65536];
  try {
    for (;;) {
      std::size_t n = co_await s.async_read_some(asio::buffer(data), asio::use_awaitable);
      co_await asio::async_write(s, asio::buffer(data, n), asio::use_awaitable);
    }
  } catch (const std::exception &) {
  }
}

static asio::awaitable<void> listen(tcp::acceptor &a) {
  for (;;) {
    tcp::socket s = co_await a.async_accept(asio::use_awaitable);
    s.set_option(tcp::no_delay(true));
    asio::co_spawn(a.get_executor(), echo(std::move(s)), asio::detached);
  }
}

int main(int argc, char **argv) {
  int port = argc > 1 ? std::atoi(argv[1]) : 0;
  asio::io_context io(1);
  tcp::acceptor a(io, tcp::endpoint(asio::ip::make_address("127.0.0.1"), (unsigned short)port));
  asio::co_spawn(io, listen(a), asio::detached);
  std::printf("listening on 127.0.0.1:%d\n", port);
  std::fflush(stdout);
  io.run();
}
