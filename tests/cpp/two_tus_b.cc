// See two_tus_a.cc.
#include <rill.hpp>

#include <stdexcept>
#include <utility>

const void *tag_in_b() { return &rill::detail::exception_tag; }
const void *value_tag_in_b() { return &rill::detail::value_tag<std::pair<int, int>>; }

rill::task<int> throws_in_b() {
  co_await rill::yield();
  throw std::out_of_range("from b");
}

rill::task<std::pair<int, int>> pair_in_b() {
  co_await rill::sleep(std::chrono::milliseconds(1));
  co_return std::pair<int, int>(2, 3);
}
