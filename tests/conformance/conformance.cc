// conformance.cc - the conformance scenarios (transcript.txt) with the C++
// wrapper: C++ coroutine tasks (rill::task) as the group's children and
// body, the group left through the core's rill_group_exit; the early task
// is a rill::task cancelled before it starts.
#include <rill.hpp>

#include <cstdio>
#include <stdexcept>
#include <string>

using namespace std::chrono_literals;

static rill::task<void> c1() {
  co_await rill::sleep(10ms);
  throw std::runtime_error("c1");
}
static rill::task<void> c2() {
  try {
    co_await rill::sleep(10s);
  } catch (const rill::cancelled_error &) {
    throw std::runtime_error("c2");
  }
}
static rill::task<void> c3() { co_await rill::sleep(10s); }

static rill::task<void> group_main(rill_loop *loop) {
  rill_group *g = rill_group_new(loop, rill_current_task());
  rill::task<void> t1 = c1(), t2 = c2(), t3 = c3();
  for (auto *t : {&t1, &t2, &t3}) rill_group_add(g, t->start(loop).native());
  int body_rc = 0;
  try {
    co_await rill::sleep(10s);
  } catch (const rill::cancelled_error &) {
    body_rc = RILL_EEXCEPTION;  // the body fails while handling its cancel
  }
  int await_rc = 0;
  try {
    co_await rill::future<void>::borrow(rill_group_exit(g, body_rc));
  } catch (const rill::cancelled_error &) {
    await_rc = RILL_ECANCELLED;
  }
  int rc = rill_group_exit_result(g, await_rc);
  if (rc == RILL_EGROUP) {
    std::string line = "errors:";
    for (size_t i = 0; i < rill_group_exit_error_count(g); i++) {
      rill_task *child = nullptr;
      if (rill_group_exit_error(g, i, &child) == 1)
        line += std::string(" ") + rill_future_error_message(rill_task_future(child));
      else
        line += " body";
    }
    std::printf("%s\n", line.c_str());
  } else {
    std::printf("group gave %d\n", rc);
  }
  std::printf("c3: %s\n", t3.cancelled() ? "cancelled" : "not cancelled");
  rill_group_release(g);
}

static bool early_ran = false;
static rill::task<void> early_body() {
  early_ran = true;
  co_return;
}

int main() {
  std::setvbuf(stdout, nullptr, _IONBF, 0);
  rill_loop *loop = rill_loop_new();
  {
    rill::task<void> m = group_main(loop);
    m.start(loop);
    rill_loop_run_until(loop, m.native_future());
    rill::task<void> early = early_body();
    early.start(loop);
    early.cancel();
    rill_loop_run_until(loop, early.native_future());
    std::printf("early: %s, %s\n", early_ran ? "ran" : "never ran",
                early.cancelled() ? "cancelled" : "not cancelled");
  }
  rill_loop_free(loop);
  return 0;
}
