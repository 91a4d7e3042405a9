// rill_test.h - the fixture every core test uses.
//
// Each test gets a fresh loop whose exception handler records what it is
// told. TearDown closes and frees the loop and checks that it closed clean:
// nothing was reported that the test did not take with TakeReports(), and
// every free function handed to rill (callback args, payloads, the
// handler's own arg) ran exactly once.
#ifndef RILL_TEST_H
#define RILL_TEST_H

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cmath>
#include <cstdlib>
#include <ctime>
#include <deque>
#include <functional>
#include <string>
#include <vector>

#include "rill.h"

namespace rilltest {

inline double MonoNow() {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

// Blocks the thread (not the loop's scheduler: the loop is blocked too).
inline void BusyWait(double seconds) {
  double end = MonoNow() + seconds;
  while (MonoNow() < end) {
  }
}

// How late a timer may fire and still pass. Timers must never fire early
// (asserted strictly); "not too late" is loose because the CI machine is a
// noisy 2-core box. Under valgrind the harness raises it with
// RILL_TEST_LATE_SLACK, since there everything runs ~20x slower.
inline double LateSlack() {
  const char *s = std::getenv("RILL_TEST_LATE_SLACK");
  return s ? std::atof(s) : 0.15;
}

// Something rill must free exactly once (a payload, a pointer value, an arg).
struct Tracked {
  std::string label;
  int frees = 0;
};

inline void TrackedFree(void *p) { static_cast<Tracked *>(p)->frees++; }

// A callback with its arg: runs fn, counts runs and frees.
struct Cb {
  std::function<void()> fn;
  int runs = 0;
  int frees = 0;
};
inline void CbRun(void *a) {
  Cb *c = static_cast<Cb *>(a);
  c->runs++;
  if (c->fn) c->fn();
}
inline void CbFree(void *a) { static_cast<Cb *>(a)->frees++; }

struct DoneCb {
  std::function<void(rill_future *)> fn;
  int runs = 0;
  int frees = 0;
};
inline void DoneCbRun(rill_future *f, void *a) {
  DoneCb *c = static_cast<DoneCb *>(a);
  c->runs++;
  if (c->fn) c->fn(f);
}
inline void DoneCbFree(void *a) { static_cast<DoneCb *>(a)->frees++; }

struct StepCb {
  std::function<void(rill_task *)> fn;
  int steps = 0;
  int frees = 0;
};
inline void StepCbRun(rill_task *t, void *a) {
  StepCb *c = static_cast<StepCb *>(a);
  c->steps++;
  if (c->fn) c->fn(t);
}
inline void StepCbFree(void *a) { static_cast<StepCb *>(a)->frees++; }

// A C coroutine body. rill_spawn has no free_arg, so the fixture owns these.
struct CoroBody {
  std::function<int()> fn;
  int starts = 0;
};
inline int CoroRun(void *a) {
  CoroBody *c = static_cast<CoroBody *>(a);
  c->starts++;
  return c->fn();
}

struct Report {
  std::string message;
  bool has_future;
};

class RillTest : public ::testing::Test {
 protected:
  rill_loop *loop = nullptr;
  std::vector<std::string> log;

  void SetUp() override {
    loop = rill_loop_new();
    ASSERT_NE(loop, nullptr) << rill_last_error_message();
    Watch(loop);
  }

  void TearDown() override { CloseClean(); }

  // Installs the recording exception handler on a loop (also used inside
  // rill_run, whose loop the test does not create).
  void Watch(rill_loop *l) {
    handlers_installed_++;
    ASSERT_EQ(rill_loop_set_exception_handler(l, &RillTest::OnException, this,
                                              &RillTest::OnHandlerFree),
              RILL_OK);
  }

  // Every message given to the exception handler since the last call.
  std::vector<Report> TakeReports() {
    std::vector<Report> r;
    r.swap(reports_);
    return r;
  }
  std::vector<std::string> TakeReportMessages() {
    std::vector<std::string> m;
    for (auto &r : TakeReports()) m.push_back(r.message);
    return m;
  }
  size_t PendingReports() const { return reports_.size(); }

  void CloseLoop() {
    if (loop && !closed_) {
      EXPECT_EQ(rill_loop_close(loop), RILL_OK) << rill_last_error_message();
      closed_ = true;
    }
  }

  void CloseClean() {
    if (!loop) return;
    CloseLoop();
    for (auto &r : reports_) ADD_FAILURE() << "unexpected report to the exception handler: " << r.message;
    reports_.clear();
    rill_loop_free(loop);
    loop = nullptr;
    EXPECT_EQ(handler_frees_, handlers_installed_) << "exception handler free_arg";
    CheckFrees();
  }

  void CheckFrees() {
    for (auto &t : tracked_) EXPECT_EQ(t.frees, 1) << "free of tracked '" << t.label << "'";
    for (size_t i = 0; i < cbs_.size(); i++)
      EXPECT_EQ(cbs_[i].frees, 1) << "free_arg of callback #" << i;
    for (size_t i = 0; i < done_cbs_.size(); i++)
      EXPECT_EQ(done_cbs_[i].frees, 1) << "free_arg of done callback #" << i;
    for (size_t i = 0; i < steps_.size(); i++)
      EXPECT_EQ(steps_[i].frees, 1) << "free_arg of step task #" << i;
  }

  // ---- allocation helpers (addresses stay stable: std::deque) ----
  Tracked *Track(const std::string &label) {
    tracked_.push_back(Tracked{label, 0});
    return &tracked_.back();
  }
  Cb *NewCb(std::function<void()> fn) {
    cbs_.push_back(Cb{std::move(fn), 0, 0});
    return &cbs_.back();
  }
  DoneCb *NewDoneCb(std::function<void(rill_future *)> fn) {
    done_cbs_.push_back(DoneCb{std::move(fn), 0, 0});
    return &done_cbs_.back();
  }
  CoroBody *NewCoro(std::function<int()> fn) {
    coros_.push_back(CoroBody{std::move(fn), 0});
    return &coros_.back();
  }

  // ---- scheduling helpers (on the fixture's loop unless told) ----
  rill_handle *SoonH(std::function<void()> fn, Cb **out = nullptr) {
    Cb *c = NewCb(std::move(fn));
    if (out) *out = c;
    rill_handle *h = rill_call_soon(loop, CbRun, c, CbFree);
    EXPECT_NE(h, nullptr) << rill_last_error_message();
    return h;
  }
  void Soon(std::function<void()> fn) { rill_handle_release(SoonH(std::move(fn))); }
  rill_handle *LaterH(double delay, std::function<void()> fn, Cb **out = nullptr) {
    Cb *c = NewCb(std::move(fn));
    if (out) *out = c;
    rill_handle *h = rill_call_later(loop, delay, CbRun, c, CbFree);
    EXPECT_NE(h, nullptr) << rill_last_error_message();
    return h;
  }
  void Later(double delay, std::function<void()> fn) {
    rill_handle_release(LaterH(delay, std::move(fn)));
  }
  void OnDone(rill_future *f, std::function<void(rill_future *)> fn, DoneCb **out = nullptr) {
    DoneCb *c = NewDoneCb(std::move(fn));
    if (out) *out = c;
    EXPECT_EQ(rill_future_on_done(f, DoneCbRun, c, DoneCbFree), RILL_OK)
        << rill_last_error_message();
  }
  // A step-function task; returns the caller's reference.
  rill_task *NewTask(std::function<void(rill_task *)> fn, StepCb **out = nullptr) {
    steps_.push_back(StepCb{std::move(fn), 0, 0});
    StepCb *s = &steps_.back();
    if (out) *out = s;
    rill_task *t = rill_task_new(loop, StepCbRun, s, StepCbFree);
    EXPECT_NE(t, nullptr) << rill_last_error_message();
    return t;
  }
  // A C coroutine task on l (default: the fixture's loop).
  rill_task *Spawn(std::function<int()> fn, rill_loop *l = nullptr) {
    rill_task *t = rill_spawn(l ? l : loop, CoroRun, NewCoro(std::move(fn)));
    EXPECT_NE(t, nullptr) << rill_last_error_message();
    return t;
  }
  // Runs fn as the main coroutine on the fixture's loop; returns the
  // outcome rill_loop_run_until gives.
  int RunMain(std::function<int()> fn) {
    rill_task *t = Spawn(std::move(fn));
    int rc = rill_loop_run_until(loop, rill_task_future(t));
    rill_task_release(t);
    return rc;
  }
  // A pending future; the test releases it.
  rill_future *NewFuture() {
    rill_future *f = rill_future_new(loop);
    EXPECT_NE(f, nullptr) << rill_last_error_message();
    return f;
  }
  void Run() { EXPECT_EQ(rill_loop_run(loop), RILL_OK) << rill_last_error_message(); }

 private:
  static void OnException(rill_loop *, const char *message, rill_future *future, void *arg) {
    RillTest *self = static_cast<RillTest *>(arg);
    self->reports_.push_back(Report{message ? message : "(null)", future != nullptr});
  }
  static void OnHandlerFree(void *arg) { static_cast<RillTest *>(arg)->handler_frees_++; }

  bool closed_ = false;
  int handlers_installed_ = 0;
  int handler_frees_ = 0;
  std::vector<Report> reports_;
  std::deque<Tracked> tracked_;
  std::deque<Cb> cbs_;
  std::deque<DoneCb> done_cbs_;
  std::deque<StepCb> steps_;
  std::deque<CoroBody> coros_;
};

// Fails with code and a message on a fresh line: "r == code and
// rill_last_error() == code". The last error is first set to another code
// so that the check proves this call recorded it.
// A closed loop for the whole test program: running it fails with
// RILL_ECLOSED anywhere (inside a coroutine too) and has no side effect.
class ClosedLoopEnvironment : public ::testing::Environment {
 public:
  static rill_loop *&Loop() {
    static rill_loop *closed = nullptr;
    return closed;
  }
  void SetUp() override {
    Loop() = rill_loop_new();
    ASSERT_NE(Loop(), nullptr);
    ASSERT_EQ(rill_loop_close(Loop()), RILL_OK);
  }
  void TearDown() override {
    rill_loop_free(Loop());
    Loop() = nullptr;
  }
};
inline ::testing::Environment *const kClosedLoopEnvironment =
    ::testing::AddGlobalTestEnvironment(new ClosedLoopEnvironment);

inline void PrimeLastError(int not_this) {
  if (not_this == RILL_EINVAL) rill_loop_run(ClosedLoopEnvironment::Loop());  // RILL_ECLOSED
  else rill_future_state(nullptr);                                           // RILL_EINVAL
  EXPECT_NE(rill_last_error(), not_this) << "priming the last error failed";
}

}  // namespace rilltest

#define EXPECT_FAILS_WITH(expr, code)                                                   \
  do {                                                                                  \
    rilltest::PrimeLastError(code);                                                     \
    auto rill_test_rc_ = (expr);                                                        \
    EXPECT_EQ(static_cast<long>(rill_test_rc_), static_cast<long>(code)) << #expr;      \
    EXPECT_EQ(rill_last_error(), (code)) << #expr << ": rill_last_error";               \
    EXPECT_NE(rill_last_error_message(), nullptr) << #expr;                             \
  } while (0)

#define EXPECT_NULL_WITH(expr, code)                                                    \
  do {                                                                                  \
    rilltest::PrimeLastError(code);                                                     \
    auto rill_test_p_ = (expr);                                                         \
    EXPECT_EQ(rill_test_p_, nullptr) << #expr;                                          \
    EXPECT_EQ(rill_last_error(), (code)) << #expr << ": rill_last_error";               \
    EXPECT_NE(rill_last_error_message(), nullptr) << #expr;                             \
  } while (0)

#endif
