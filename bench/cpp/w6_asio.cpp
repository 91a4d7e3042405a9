// w6_asio.cpp - W6 on Asio: an asio::experimental::channel of capacity
// MAXSIZE between two C++20 coroutines (async_send / async_receive with
// use_awaitable) on a single-threaded io_context. See ../c/w6_common.h.
#include <asio.hpp>
#include <asio/experimental/channel.hpp>

#include <cstdio>

#include "../c/w6_common.h"

namespace {
using channel = asio::experimental::channel<void(asio::error_code, long)>;
w6_params P;
long long sum = 0;

asio::awaitable<void> producer(channel &ch) {
  for (long i = 1; i <= P.items; i++) co_await ch.async_send(asio::error_code{}, i, asio::use_awaitable);
}

asio::awaitable<void> consumer(channel &ch) {
  for (long i = 0; i < P.items; i++) sum += co_await ch.async_receive(asio::use_awaitable);
}
} // namespace

int main(int argc, char **argv) {
  P = w6_parse(argc, argv);
  double t0 = w6_now();
  asio::io_context ctx(1);
  channel ch(ctx, static_cast<std::size_t>(P.maxsize));
  asio::co_spawn(ctx, producer(ch), asio::detached);
  asio::co_spawn(ctx, consumer(ch), asio::detached);
  ctx.run();
  double wall = w6_now() - t0;
  char version[32];
  std::snprintf(version, sizeof version, "%d.%d.%d", ASIO_VERSION / 100000, ASIO_VERSION / 100 % 1000,
                ASIO_VERSION % 100);
  w6_result("asio", version, P, sum, wall);
  return 0;
}
