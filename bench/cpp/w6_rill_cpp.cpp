// w6_rill_cpp.cpp - W6 with rill.hpp: rill::queue<int64_t> between two
// rill::task coroutines (co_await q.put(i) / co_await q.get()).
#include <rill.hpp>

#include "../c/w6_common.h"

namespace {
w6_params P;

rill::task<void> producer(rill::queue<int64_t> q) {
  for (long i = 1; i <= P.items; i++) co_await q.put(i);
}

rill::task<long long> consumer(rill::queue<int64_t> q) {
  long long sum = 0;
  for (long i = 0; i < P.items; i++) sum += co_await q.get();
  co_return sum;
}

rill::task<long long> main_task() {
  rill::queue<int64_t> q(static_cast<int>(P.maxsize));
  auto p = rill::spawn(producer(q));
  long long sum = co_await consumer(q);
  co_await p;
  co_return sum;
}
} // namespace

int main(int argc, char **argv) {
  P = w6_parse(argc, argv);
  double t0 = w6_now();
  long long sum = rill::run(main_task());
  double wall = w6_now() - t0;
  w6_result("rill-cpp", rill_version_string(), P, sum, wall);
  return 0;
}
