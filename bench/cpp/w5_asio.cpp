// w5_asio.cpp - W5 on Asio: an io_context on the main thread posts each job
// to an asio::thread_pool of `threads` threads; the job posts its result
// back to the io_context, whose handler submits the next (inflight at once).
#include <asio.hpp>

#include <cstdio>

extern "C" {
#include "../c/w5_common.h"
}

namespace {
w5_params P;
long sum, next_job, done;

void submit(asio::io_context &ioc, asio::thread_pool &pool) {
  long index = next_job++;
  asio::post(pool, [&ioc, &pool, index] {
    long value = index + 1;  // the trivial function
    asio::post(ioc, [&ioc, &pool, value] {
      sum += value;
      done++;
      if (next_job < P.jobs) submit(ioc, pool);
    });
  });
}
}  // namespace

int main(int argc, char **argv) {
  P = w5_parse(argc, argv);
  asio::io_context ioc(1);
  asio::thread_pool pool((std::size_t)P.threads);
  auto guard = asio::make_work_guard(ioc);
  double t0 = w5_now();
  for (long i = 0; i < P.inflight && next_job < P.jobs; i++) submit(ioc, pool);
  asio::post(pool, [] {});  // threads start before the first job, as the others' may
  while (done < P.jobs) ioc.run_one();
  double wall = w5_now() - t0;
  guard.reset();
  pool.join();
  char version[32];
  std::snprintf(version, sizeof version, "%d.%d.%d", ASIO_VERSION / 100000, ASIO_VERSION / 100 % 1000,
                ASIO_VERSION % 100);
  w5_result("asio", version, P, sum, wall);
  return 0;
}
