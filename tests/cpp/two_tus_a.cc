// two_tus_a.cc + two_tus_b.cc: rill.hpp included in two translation units
// of one program. It links (everything in the header is inline), the tags
// are one object (so a value or an exception made in one unit is unwrapped
// in the other), and an exception thrown by a task of one unit reaches the
// awaiter in the other as the same object.
#include <rill.hpp>

#include <cstdio>
#include <stdexcept>

const void *tag_in_b();
const void *value_tag_in_b();
rill::task<int> throws_in_b();
rill::task<std::pair<int, int>> pair_in_b();

static rill::task<int> main_task() {
  int caught = 0;
  try {
    co_await throws_in_b();
  } catch (const std::out_of_range &e) {
    caught = 1;
  }
  auto p = co_await pair_in_b(); // a pointer value made in b, read here
  co_return caught + p.first + p.second;
}

int main() {
  int failures = 0;
  if (tag_in_b() != &rill::detail::exception_tag) {
    std::puts("two_tus: exception tags differ between translation units");
    failures++;
  }
  if (value_tag_in_b() != &rill::detail::value_tag<std::pair<int, int>>) {
    std::puts("two_tus: value tags differ between translation units");
    failures++;
  }
  int r = rill::run(main_task());
  if (r != 1 + 2 + 3) {
    std::printf("two_tus: main returned %d, expected 6\n", r);
    failures++;
  }
  std::puts(failures ? "two_tus: FAILED" : "two_tus: OK");
  return failures ? 1 : 0;
}
