// rill.hpp - the header-only C++20 face of rill: RAII handles, coroutines,
// exceptions, over the C API of rill.h. It adds no ABI of its own: every
// function here is inline or a template, so a program built with it
// depends on librill.so.1's C symbols only.
//
//   rill::task<T>     a C++20 coroutine; each one runs as a rill step task
//                     (rill_task_new) whose step resumes the coroutine
//   rill::future<T>   a reference to a rill_future holding a T
//   rill::loop        an owning, move-only rill_loop
//   co_await rill::sleep(1s) / rill::yield()     rill_task_sleep / _yield
//   co_await rill::gather(a(), b())              std::tuple of the results
//   co_await rill::wait_for(a(), 2s)             throws rill::timeout_error
//   rill::run(main())                            asyncio.run; main's value
//   co_await rill::to_thread(fn)                 fn() on the loop's thread pool
//   rill::signal_watcher, co_await wait_signal   per-loop signal callbacks
//   rill::process::spawn(argv), co_await p.wait() child processes
//
// Values travel as rill's native kinds so that other languages can read
// them: void (none), bool, integers (int64), floating point (double),
// std::string and rill::bytes (bytes); any other T as a tagged pointer that
// only C++ unwraps. Exceptions cross co_await as the same object (an
// std::exception_ptr payload on the failed future, with a tag), and a
// rill failure code becomes rill::cancelled_error (RILL_ECANCELLED),
// rill::timeout_error (RILL_ETIMEDOUT) or rill::error (others).
//
// Costs: a task is one coroutine frame (from a per-thread pool of huge
// pages) plus one rill task, and a rill::task handle is one word; an await
// allocates nothing (the awaiter lives in the frame) and checks for a
// cancel with one load (rill_task_cancel_flag); sleep(0) is one
// rill_task_yield. Tags are the addresses of inline variables, unique per
// program or shared object (with -fvisibility=hidden each shared object has
// its own: C++ values and exceptions cross between two of them as rill
// errors, not as the same objects).
//
// GCC 12 caveat (a compiler bug, not rill's; clang is fine): an aggregate
// temporary with a non-trivial member, passed by value to a coroutine in
// the same expression as co_await - `co_await f(Point{1, "s"})` - is
// copied bitwise into the frame and later freed twice. Bind it to a
// variable first: `Point p{1, "s"}; co_await f(p);`.
#ifndef RILL_HPP
#define RILL_HPP

#include <rill.h>
#include <signal.h>
#include <sys/mman.h>

#include <chrono>
#include <coroutine>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <exception>
#include <mutex>
#include <optional>
#include <new>
#if __has_include(<source_location>)
#include <source_location>
#endif
#include <stdexcept>
#include <string>
#include <string_view>
#include <tuple>
#include <type_traits>
#include <utility>
#include <variant>
#include <vector>

// One pointer per co_await's place (see promise_base::where_function_):
// __builtin_source_location() is the static record a std::source_location
// holds (GCC 11+, clang 15+); without it, file and line.
#define RILL_CPP_HAS_SOURCE_LOCATION 0
#if defined(__cpp_lib_source_location) && __cpp_lib_source_location >= 201907L && defined(__has_builtin)
#if __has_builtin(__builtin_source_location)
#undef RILL_CPP_HAS_SOURCE_LOCATION
#define RILL_CPP_HAS_SOURCE_LOCATION 1
#include <bit>
#endif
#endif

namespace rill {

// ---------------------------------------------------------------------------
// Errors
// ---------------------------------------------------------------------------

// A rill failure: code() is the RILL_E* (or application, <= -1000) code.
class error : public std::runtime_error {
 public:
  error(int code, const std::string &message)
      : std::runtime_error(message.empty() ? rill_strerror(code) : message), code_(code) {}
  explicit error(int code) : error(code, std::string()) {}
  int code() const noexcept { return code_; }
  // "RILL_ETIMEDOUT", or "" for an application code.
  const char *name() const noexcept {
    const char *n = rill_err_name(code_);
    return n ? n : "";
  }

 private:
  int code_;
};

// The task was cancelled (asyncio.CancelledError); thrown at the co_await.
class cancelled_error : public error {
 public:
  explicit cancelled_error(const std::string &message = {}) : error(RILL_ECANCELLED, message) {}
};

// A deadline passed (wait_for); asyncio's TimeoutError.
class timeout_error : public error {
 public:
  explicit timeout_error(const std::string &message = {}) : error(RILL_ETIMEDOUT, message) {}
};

// The value of a void result inside a tuple or vector (gather).
using none = std::monostate;
// rill's bytes kind; std::string travels as bytes too.
using bytes = std::vector<std::byte>;

template <class T = void> class task;
template <class T = void> class future;

namespace detail {

// Addresses that mark payloads only this header unwraps.
inline constexpr char exception_tag = 0;
template <class T> inline constexpr char value_tag = 0;

[[noreturn]] inline void throw_code(int code, const char *message) {
  std::string m = message ? message : "";
  if (code == RILL_ECANCELLED) throw cancelled_error(m);
  if (code == RILL_ETIMEDOUT) throw timeout_error(m);
  throw error(code, m);
}

// Throws the error of the rill call that just failed with rc.
[[noreturn]] inline void throw_last(int rc) { throw_code(rc, rill_last_error_message()); }
[[noreturn]] inline void throw_last() { throw_last(rill_last_error()); }
inline int check(int rc) {
  if (rc < 0) throw_last(rc);
  return rc;
}

// Rethrows what made f fail: the C++ exception itself when a C++ task
// failed, else the code as rill::error. Marks the failure retrieved.
[[noreturn]] inline void rethrow_failure(rill_future *f) {
  int code = rill_future_error(f);
  if (void *p = rill_future_error_payload(f, &exception_tag))
    std::rethrow_exception(*static_cast<std::exception_ptr *>(p));
  if (code >= 0) code = RILL_ESTATE; // pending: a misuse, not a failure
  throw_code(code, rill_future_error_message(f));
}

inline void delete_exception_ptr(void *p) { delete static_cast<std::exception_ptr *>(p); }

// Fails f with the exception being handled: a rill::error keeps its code
// (so C and the other languages see RILL_ETIMEDOUT, ...), anything else is
// RILL_EEXCEPTION; the exception itself rides along as the payload.
inline void fail_with_current_exception(rill_future *f) noexcept {
  std::exception_ptr e = std::current_exception();
  int code = RILL_EEXCEPTION;
  const char *message = "a C++ exception of unknown type";
  try {
    throw;
  } catch (const error &x) {
    code = x.code() < 0 ? x.code() : RILL_EEXCEPTION;
    message = x.what();
  } catch (const std::exception &x) {
    message = x.what();
  } catch (...) {
  }
  auto *payload = new (std::nothrow) std::exception_ptr(std::move(e));
  if (payload)
    rill_future_fail(f, code, message, payload, &delete_exception_ptr, &exception_tag);
  else
    rill_future_fail(f, code, message, nullptr, nullptr, nullptr);
}

template <class T> void delete_value(void *p) { delete static_cast<T *>(p); }

template <class T>
inline constexpr bool is_int_v = std::is_integral_v<T> && !std::is_same_v<T, bool>;

// How a T is stored in and read from a rill_future.
template <class T> struct value_traits {
  static int set(rill_future *f, T &&v) {
    T *p = new T(std::move(v));
    int rc = rill_future_set_pointer(f, p, &delete_value<T>, &value_tag<T>);
    if (rc < 0) delete p;
    return rc;
  }
  static T get(rill_future *f) {
    T *p = static_cast<T *>(rill_future_pointer(f, &value_tag<T>));
    if (!p) throw_code(RILL_ETYPE, "the future does not hold a value of this C++ type");
    if constexpr (std::is_copy_constructible_v<T>)
      return *p;
    else
      return std::move(*p); // move-only values can be read once
  }
};
template <> struct value_traits<bool> {
  static int set(rill_future *f, bool v) { return rill_future_set_bool(f, v ? 1 : 0); }
  static bool get(rill_future *f) {
    int v = 0;
    check(rill_future_bool(f, &v));
    return v != 0;
  }
};
template <class T>
  requires is_int_v<T>
struct value_traits<T> {
  static int set(rill_future *f, T v) { return rill_future_set_int(f, static_cast<int64_t>(v)); }
  static T get(rill_future *f) {
    int64_t v = 0;
    check(rill_future_int(f, &v));
    return static_cast<T>(v);
  }
};
template <class T>
  requires std::is_floating_point_v<T>
struct value_traits<T> {
  static int set(rill_future *f, T v) { return rill_future_set_double(f, static_cast<double>(v)); }
  static T get(rill_future *f) {
    double v = 0;
    if (rill_future_kind(f) == RILL_INT) { // an int from another language
      int64_t i = 0;
      check(rill_future_int(f, &i));
      return static_cast<T>(i);
    }
    check(rill_future_double(f, &v));
    return static_cast<T>(v);
  }
};
template <> struct value_traits<std::string> {
  static int set(rill_future *f, const std::string &v) {
    return rill_future_set_bytes(f, v.data(), v.size());
  }
  static std::string get(rill_future *f) {
    size_t len = 0;
    const void *p = rill_future_bytes(f, &len);
    if (!p && rill_future_kind(f) != RILL_BYTES) throw_last();
    return std::string(static_cast<const char *>(p), len);
  }
};
template <> struct value_traits<bytes> {
  static int set(rill_future *f, const bytes &v) {
    return rill_future_set_bytes(f, v.data(), v.size());
  }
  static bytes get(rill_future *f) {
    size_t len = 0;
    const void *p = rill_future_bytes(f, &len);
    if (!p && rill_future_kind(f) != RILL_BYTES) throw_last();
    auto *b = static_cast<const std::byte *>(p);
    return bytes(b, b + len);
  }
};
template <> struct value_traits<none> {
  static int set(rill_future *f, none) { return rill_future_set_none(f); }
  static none get(rill_future *) { return {}; }
};

// The outcome of a done future as T (void: nothing, or the failure).
template <class T> T result_of(rill_future *f) {
  if (rill_future_state(f) != RILL_DONE) rethrow_failure(f);
  if constexpr (!std::is_void_v<T>) return value_traits<T>::get(f);
}
// The same with void read as none (tuples and vectors of results).
template <class T> using stored_t = std::conditional_t<std::is_void_v<T>, none, T>;
template <class T> stored_t<T> stored_result_of(rill_future *f) {
  if constexpr (std::is_void_v<T>) {
    result_of<void>(f);
    return none{};
  } else {
    return result_of<T>(f);
  }
}

// ---- the coroutine machinery ----------------------------------------------

#ifndef RILL_CPP_NO_FRAME_POOL
// Coroutine frames come from a per-thread pool: size classes of 8 bytes up
// to 1 KiB, each a free list fed from 2 MiB slabs. Allocating or freeing a
// frame costs a few instructions instead of a trip through malloc (a C
// step task keeps its state wherever its caller likes, often an array; a
// frame should not cost much more), and a slab is one huge page (below).
// Slabs are kept for reuse for the life of the process and registered
// globally, so a frame may be freed on another thread than the one that
// made it; the memory held is the peak of live frames. Define
// RILL_CPP_NO_FRAME_POOL (the same in every translation unit) for plain
// operator new, e.g. to check frames with valgrind (tests/cpp's
// cpp_valgrind does).
class frame_pool {
 public:
  // 8-byte classes: a frame whose size is not a multiple of 16 cannot need
  // 16-byte alignment (an object's size is a multiple of its alignment), so
  // only sizes that are get 16-byte aligned blocks (carve()). Frames are
  // many and small (a 56-byte frame no longer takes 64).
  static constexpr std::size_t granule = 8, classes = 128, slab_size = std::size_t(2) << 20;

  static void *allocate(std::size_t n) {
    std::size_t c = (n + granule - 1) / granule;
    if (c > classes) [[unlikely]]
      return ::operator new(n);
    frame_pool &p = local();
    if (node *f = p.free_[c - 1]) [[likely]] {
      p.free_[c - 1] = f->next;
      return f;
    }
    return p.carve(c * granule);
  }
  static void deallocate(void *ptr, std::size_t n) noexcept {
    std::size_t c = (n + granule - 1) / granule;
    if (c > classes) [[unlikely]]
      return ::operator delete(ptr);
    frame_pool &p = local();
    node *f = static_cast<node *>(ptr);
    f->next = p.free_[c - 1];
    p.free_[c - 1] = f;
  }

 private:
  struct node {
    node *next;
  };
  struct slab {
    slab *next;
  };
  // Every slab of every thread, so that they stay reachable (and valid for
  // frames freed on other threads) after their thread has exited.
  struct registry {
    std::mutex lock;
    slab *slabs = nullptr;
  };
  static registry &all() {
    static registry r;
    return r;
  }
  static frame_pool &local() noexcept {
    thread_local frame_pool p;
    return p;
  }
  void *carve(std::size_t size) {
    if (size % 16 == 0 && reinterpret_cast<std::uintptr_t>(cur_) % 16) cur_ += 8;
    if (cur_ > end_ || static_cast<std::size_t>(end_ - cur_) < size) {
      auto *s = static_cast<slab *>(map_slab());
      {
        std::lock_guard<std::mutex> g(all().lock);
        s->next = all().slabs;
        all().slabs = s;
      }
      cur_ = reinterpret_cast<char *>(s) + 16; // after the link, 16-byte aligned
      end_ = reinterpret_cast<char *>(s) + slab_size;
    }
    void *r = cur_;
    cur_ += size;
    return r;
  }
  // A 2 MiB slab, 2 MiB-aligned and madvised for a transparent huge page,
  // as the core's arena chunks (core/src/alloc.c): on the VMs rill is
  // measured on, the first touch of a 4 KiB page costs 15-30 us, and a
  // slab of small pages cost 64 of them (100,000 W3 frames: 3,500 faults;
  // now 8).
  static void *map_slab() {
    std::size_t span = 2 * slab_size;
    void *raw = ::mmap(nullptr, span, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (raw == MAP_FAILED) throw std::bad_alloc();
    char *r = static_cast<char *>(raw);
    char *aligned = reinterpret_cast<char *>((reinterpret_cast<std::uintptr_t>(r) + slab_size - 1) &
                                             ~std::uintptr_t(slab_size - 1));
    if (aligned > r) ::munmap(r, static_cast<std::size_t>(aligned - r));
    if (r + span > aligned + slab_size)
      ::munmap(aligned + slab_size, static_cast<std::size_t>(r + span - (aligned + slab_size)));
#ifdef MADV_HUGEPAGE
    ::madvise(aligned, slab_size, MADV_HUGEPAGE);
#endif
    return aligned;
  }
  node *free_[classes] = {};
  char *cur_ = nullptr, *end_ = nullptr;
};
#endif

// What every rill::task coroutine's promise shares.
struct promise_base {
  rill_task *task_ = nullptr; // borrowed: the rill task that drives this frame
  const unsigned char *cancel_flag_ = nullptr; // rill_task_cancel_flag(task_)

#ifndef RILL_CPP_NO_FRAME_POOL
  static void *operator new(std::size_t n) { return frame_pool::allocate(n); }
  static void operator delete(void *p, std::size_t n) noexcept { frame_pool::deallocate(p, n); }
#endif

  // The rill step; its arg is the coroutine frame. It only resumes: every
  // await point (the initial one included) checks for a cancel itself.
  // Not noexcept, so that it compiles to a jump into the coroutine: resume
  // throws nothing (unhandled_exception keeps the exception, and
  // initial_suspend, final_suspend and their awaiters are noexcept).
  static void step(rill_task *, void *frame) { std::coroutine_handle<>::from_address(frame).resume(); }
  // The rill task's free_arg: it runs when the task is done or destroyed by
  // loop close, and frees the frame (locals included).
  static void destroy(void *frame) noexcept { std::coroutine_handle<>::from_address(frame).destroy(); }

  rill_future *future() const noexcept { return rill_task_future(task_); }
  rill_loop *loop() const noexcept { return rill_future_loop(rill_task_future(task_)); }

  // After a suspension: a cancel for this step surfaces here, as asyncio
  // raises CancelledError at the await.
  // A load, not a call: cancel_flag_ is rill_task_cancel_requested's
  // answer during this task's steps.
  void deliver_cancel() const {
    if (*cancel_flag_) [[unlikely]]
      throw_cancelled(task_);
  }
  [[noreturn, gnu::cold, gnu::noinline]] static void throw_cancelled(rill_task *t) {
    const char *m = rill_task_cancel_message(t);
    throw cancelled_error(m ? m : "");
  }

  void unhandled_exception() noexcept { fail_with_current_exception(future()); }

  // Where the coroutine is, for debug mode's slow-step report ("Executing
  // <Task A (entry: worker() running at app.cpp:12)> took 1.001 seconds"):
  // the compiler passes the coroutine's name as a default argument of
  // initial_suspend, and each co_await's place as one of await_transform
  // (the function is the same there: a co_await belongs to the coroutine
  // it is written in). One store per co_await: a std::source_location is
  // one pointer to a static record; without one (clang 14), file and line.
  const char *where_function_ = nullptr;
#if RILL_CPP_HAS_SOURCE_LOCATION
  // A pointer argument, not a std::source_location: the coroutine then
  // copies no temporary into its frame. Read back as the source_location
  // that wraps it.
  static_assert(sizeof(std::source_location) == sizeof(const void *) &&
                std::is_trivially_copyable_v<std::source_location>);
  const void *where_ = nullptr; // until the first co_await
  const char *where_file() const noexcept {
    return where_ ? std::bit_cast<std::source_location>(where_).file_name() : nullptr;
  }
  unsigned where_line() const noexcept {
    return where_ ? static_cast<unsigned>(std::bit_cast<std::source_location>(where_).line()) : 0;
  }
#else
  const char *where_file_ = nullptr;
  unsigned where_line_ = 0;
  const char *where_file() const noexcept { return where_file_; }
  unsigned where_line() const noexcept { return where_line_; }
#endif

  // The first step starts here. A cancel that came before it never reaches
  // the body: the core ends the task CANCELLED without a step
  // (RILL_TASK_SKIP_CANCELLED_START) and destroy() frees the frame.
  std::suspend_always initial_suspend(const char *function = __builtin_FUNCTION()) noexcept {
    where_function_ = function;
    return {};
  }
  // Every co_await passes through unchanged; only its place is noted.
#if RILL_CPP_HAS_SOURCE_LOCATION
  template <class A>
  decltype(auto) await_transform(A &&awaitable, const void *where = __builtin_source_location()) noexcept {
    where_ = where;
    return std::forward<A>(awaitable);
  }
#else
  template <class A>
  decltype(auto) await_transform(A &&awaitable, const char *file = __builtin_FILE(),
                                 unsigned line = __builtin_LINE()) noexcept {
    where_file_ = file;
    where_line_ = line;
    return std::forward<A>(awaitable);
  }
#endif
  // rill_step_set_describer's callback for step(): "NAME() running at
  // FILE:LINE" while suspended at a co_await, "NAME() done" once finished.
  static int describe(rill_task *t, void *frame, char *buf, std::size_t cap) noexcept {
    // Every rill::task promise derives from promise_base alone and adds no
    // members, so the promise sits where promise_base's would.
    auto &p = std::coroutine_handle<promise_base>::from_address(frame).promise();
    if (!p.where_function_) return 0;
    if (rill_future_done(rill_task_future(t)) == 1 || !p.where_file())
      std::snprintf(buf, cap, "%s()%s", p.where_function_,
                    rill_future_done(rill_task_future(t)) == 1 ? " done" : "");
    else
      std::snprintf(buf, cap, "%s() running at %s:%u", p.where_function_, p.where_file(),
                    p.where_line());
    return 1;
  }
  // Registers describe once per program (per copy of step, i.e. per DSO).
  static void register_describer() noexcept {
    static const bool once = (rill_step_set_describer(&step, &describe), true);
    (void)once;
  }
  std::suspend_always final_suspend() const noexcept { return {}; }

  static void store(rill_future *f, int rc) noexcept {
    if (rc < 0) rill_future_fail(f, rc, rill_last_error_message(), nullptr, nullptr, nullptr);
  }
};

template <class P>
concept rill_promise = std::is_base_of_v<promise_base, P>;

template <class T> struct promise : promise_base {
  task<T> get_return_object() noexcept;
  template <class U = T>
    requires std::is_convertible_v<U &&, T>
  void return_value(U &&v) noexcept(false) {
    set_result(T(std::forward<U>(v)));
  }
  // Out of line, and scalars by value: the coroutine's hot path (resume,
  // await, suspend) then saves fewer registers and needs no stack frame.
  using result_arg = std::conditional_t<std::is_trivially_copyable_v<T> && sizeof(T) <= 16, T, T &&>;
  [[gnu::noinline]] void set_result(result_arg v) noexcept(false) {
    rill_future *f = future();
    store(f, value_traits<T>::set(f, std::move(v)));
  }
};
template <> struct promise<void> : promise_base {
  task<void> get_return_object() noexcept;
  void return_void() noexcept {
    rill_future *f = future();
    store(f, rill_future_set_none(f));
  }
};

// Awaits a rill future from inside a task; the result is read as T.
template <class T> struct future_awaiter {
  rill_future *f;
  promise_base *self = nullptr;

  bool await_ready() const noexcept { return rill_future_done(f) == 1; }
  template <rill_promise P> void await_suspend(std::coroutine_handle<P> h) {
    self = &h.promise();
    check(rill_task_wait(self->task_, f));
  }
  T await_resume() {
    if (self) self->deliver_cancel();
    return result_of<T>(f);
  }
};

// The pieces gather and wait_for accept: tasks (started on the awaiting
// task's loop if they have not started) and futures.
template <class A> struct item;
template <class T> struct item<task<T>> {
  using value = T;
  static void start(task<T> &t, rill_loop *loop) { t.start(loop); }
  static rill_future *fut(task<T> &t) { return t.native_future(); }
};
template <class T> struct item<future<T>> {
  using value = T;
  static void start(future<T> &, rill_loop *) {}
  static rill_future *fut(future<T> &f) { return f.native(); }
};

struct future_ref {
  rill_future *f = nullptr;
  future_ref() = default;
  explicit future_ref(rill_future *p) noexcept : f(p) {}
  future_ref(future_ref &&o) noexcept : f(std::exchange(o.f, nullptr)) {}
  future_ref &operator=(future_ref &&o) noexcept {
    if (this != &o) {
      rill_future_release(f);
      f = std::exchange(o.f, nullptr);
    }
    return *this;
  }
  ~future_ref() { rill_future_release(f); }
};

} // namespace detail

// ---------------------------------------------------------------------------
// task<T>
// ---------------------------------------------------------------------------

// A C++20 coroutine run by rill. Calling a task function creates the frame
// and nothing runs; the task starts (as a rill task, first step in the next
// iteration) when it is awaited, gathered, spawned or run. From then on the
// rill task owns the frame; this object holds one reference to the rill
// task, and dropping it neither cancels nor stops the task (the loop keeps
// its own). The result lives in the rill task's future.
template <class T> class [[nodiscard]] task {
 public:
  using promise_type = detail::promise<T>;
  using value_type = T;

  task() noexcept = default;
  task(task &&o) noexcept : p_(std::exchange(o.p_, 0)) {}
  task &operator=(task &&o) noexcept {
    if (this != &o) {
      reset();
      p_ = std::exchange(o.p_, 0);
    }
    return *this;
  }
  task(const task &) = delete;
  task &operator=(const task &) = delete;
  ~task() { reset(); }

  explicit operator bool() const noexcept { return p_ != 0; }
  bool started() const noexcept { return task_ptr() != nullptr; }

  // Starts the task on loop (a no-op once started). Throws rill::error.
  task &start(rill_loop *loop) & {
    if (!(p_ & frame_bit)) {
      if (!p_) throw error(RILL_EINVAL, "empty rill::task");
      return *this;
    }
    detail::promise_base::register_describer();
    std::coroutine_handle<promise_type> h = owned_frame();
    rill_task *t = rill_task_new_v2(loop, &detail::promise_base::step, h.address(),
                                    &detail::promise_base::destroy, RILL_TASK_SKIP_CANCELLED_START);
    if (!t) detail::throw_last();
    h.promise().task_ = t;
    h.promise().cancel_flag_ = rill_task_cancel_flag(t);
    p_ = reinterpret_cast<std::uintptr_t>(t); // the rill task owns the frame now
    return *this;
  }
  task &&start(rill_loop *loop) && { return std::move(start(loop)); }

  // The rill task and its future (borrowed; NULL before start).
  rill_task *native() const noexcept { return task_ptr(); }
  rill_future *native_future() const noexcept {
    rill_task *t = task_ptr();
    return t ? rill_task_future(t) : nullptr;
  }

  bool done() const noexcept { return task_ptr() && rill_future_done(native_future()) == 1; }
  bool cancelled() const noexcept {
    return task_ptr() && rill_future_state(native_future()) == RILL_CANCELLED;
  }
  // Requests cancellation (asyncio's Task.cancel): true if not done yet.
  bool cancel(const char *message = nullptr) {
    if (!task_ptr()) throw error(RILL_ESTATE, "cannot cancel a task that has not started");
    return detail::check(rill_task_cancel(task_ptr(), message)) == 1;
  }
  void set_name(const char *name) { detail::check(rill_task_set_name(require(), name)); }
  std::string_view name() const { return rill_task_name(require()); }

  // The outcome of a done task: its value, or it throws what it threw.
  T result() const {
    rill_future *f = native_future();
    if (!f || rill_future_done(f) != 1) throw error(RILL_ESTATE, "the task is not done");
    return detail::result_of<T>(f);
  }

  // co_await from another task: starts this one if needed, then waits.
  struct awaiter : detail::future_awaiter<T> {
    task *t;
    explicit awaiter(task *tk) : detail::future_awaiter<T>{tk->native_future()}, t(tk) {}
    bool await_ready() const noexcept { return t->task_ptr() && detail::future_awaiter<T>::await_ready(); }
    template <detail::rill_promise P> void await_suspend(std::coroutine_handle<P> h) {
      if (!t->task_ptr()) {
        t->start(h.promise().loop());
        this->f = t->native_future();
      }
      detail::future_awaiter<T>::await_suspend(h);
    }
  };
  awaiter operator co_await() & noexcept { return awaiter(this); }
  awaiter operator co_await() && noexcept { return awaiter(this); }

 private:
  friend struct detail::promise<T>;
  explicit task(std::coroutine_handle<promise_type> h) noexcept
      : p_(reinterpret_cast<std::uintptr_t>(h.address()) | frame_bit) {}
  rill_task *require() const {
    if (!task_ptr()) throw error(RILL_ESTATE, "the task has not started");
    return task_ptr();
  }
  rill_task *task_ptr() const noexcept {
    return p_ & frame_bit ? nullptr : reinterpret_cast<rill_task *>(p_);
  }
  std::coroutine_handle<promise_type> owned_frame() const noexcept {
    return std::coroutine_handle<promise_type>::from_address(reinterpret_cast<void *>(p_ & ~frame_bit));
  }
  void reset() noexcept {
    if (p_ & frame_bit) owned_frame().destroy(); // never started: the frame is ours
    else rill_task_release(task_ptr());
    p_ = 0;
  }

  // One word (a vector of 100,000 tasks is 0.8 MB, not 1.6): until start,
  // the coroutine frame (owned) with the low bit set; then the rill task
  // (one reference). Frames are at least 8-byte aligned.
  static constexpr std::uintptr_t frame_bit = 1;
  std::uintptr_t p_ = 0;
};

namespace detail {
template <class T> task<T> promise<T>::get_return_object() noexcept {
  return task<T>(std::coroutine_handle<promise<T>>::from_promise(*this));
}
inline task<void> promise<void>::get_return_object() noexcept {
  return task<void>(std::coroutine_handle<promise<void>>::from_promise(*this));
}
} // namespace detail

// ---------------------------------------------------------------------------
// future<T>
// ---------------------------------------------------------------------------

// A shared reference to a rill_future that holds a T (copies retain).
template <class T> class future {
 public:
  using value_type = T;

  future() noexcept = default;
  // A new pending future on loop.
  explicit future(rill_loop *loop) : f_(rill_future_new(loop)) {
    if (!f_) detail::throw_last();
  }
  future(const future &o) noexcept : f_(rill_future_retain(o.f_)) {}
  future(future &&o) noexcept : f_(std::exchange(o.f_, nullptr)) {}
  future &operator=(future o) noexcept {
    std::swap(f_, o.f_);
    return *this;
  }
  ~future() { rill_future_release(f_); }

  // Takes over one reference (e.g. from rill_sleep_future or another language).
  static future adopt(rill_future *f) noexcept {
    future r;
    r.f_ = f;
    return r;
  }
  // Adds a reference to a borrowed future.
  static future borrow(rill_future *f) noexcept { return adopt(rill_future_retain(f)); }

  rill_future *native() const noexcept { return f_; }
  explicit operator bool() const noexcept { return f_ != nullptr; }
  int state() const noexcept { return rill_future_state(f_); }
  bool done() const noexcept { return rill_future_done(f_) == 1; }
  bool cancelled() const noexcept { return state() == RILL_CANCELLED; }
  bool cancel(const char *message = nullptr) {
    return detail::check(rill_future_cancel_msg(f_, message)) == 1;
  }

  template <class U = T>
    requires(!std::is_void_v<T> && std::is_convertible_v<U &&, detail::stored_t<T>>)
  void set_value(U &&v) {
    detail::check(detail::value_traits<detail::stored_t<T>>::set(
        f_, detail::stored_t<T>(std::forward<U>(v))));
  }
  void set_value()
    requires std::is_void_v<T>
  {
    detail::check(rill_future_set_none(f_));
  }
  // Fails the future with e (rethrown, the same object, by whoever awaits).
  void set_exception(std::exception_ptr e) {
    try {
      std::rethrow_exception(std::move(e));
    } catch (...) {
      if (!done()) detail::fail_with_current_exception(f_);
      else throw error(RILL_ESTATE, "the future is done");
    }
  }
  // Fails it with a rill code (< 0) and a message.
  void fail(int code, const char *message = nullptr) {
    detail::check(rill_future_fail(f_, code, message, nullptr, nullptr, nullptr));
  }

  // The value of a done future, or it throws the failure.
  T get() const {
    if (!done()) throw error(RILL_ESTATE, "the future is pending");
    return detail::result_of<T>(f_);
  }

  detail::future_awaiter<T> operator co_await() const noexcept { return {f_}; }

 private:
  rill_future *f_ = nullptr;
};

// ---------------------------------------------------------------------------
// sleep, yield
// ---------------------------------------------------------------------------

// co_await sleep(d): the task resumes once d has passed (d <= 0: exactly one
// iteration). No future is allocated. Cancel: throws rill::cancelled_error.
// The awaiter is one word of the frame: the delay until it suspends, the
// task's promise from then on.
class sleep_awaiter {
 public:
  explicit sleep_awaiter(double seconds) noexcept : seconds_(seconds) {}
  bool await_ready() const noexcept { return false; }
  template <detail::rill_promise P> void await_suspend(std::coroutine_handle<P> h) {
    double s = seconds_;
    detail::promise_base &p = h.promise();
    cancel_ = p.cancel_flag_;
    detail::check(s > 0 ? rill_task_sleep(p.task_, s) : rill_task_yield(p.task_));
  }
  void await_resume() const {
    if (*cancel_) [[unlikely]]
      detail::promise_base::throw_cancelled(rill_task_current());
  }

 private:
  union {
    double seconds_;
    const unsigned char *cancel_; // the task's cancel flag, once suspended
  };
};

// co_await yield(): sleep(0) without the delay's test.
class yield_awaiter {
 public:
  yield_awaiter() noexcept {} // user-provided: yield() does not zero cancel_
  bool await_ready() const noexcept { return false; }
  template <detail::rill_promise P> void await_suspend(std::coroutine_handle<P> h) {
    detail::promise_base &p = h.promise();
    cancel_ = p.cancel_flag_;
    detail::check(rill_task_yield(p.task_));
  }
  void await_resume() const {
    if (*cancel_) [[unlikely]]
      detail::promise_base::throw_cancelled(rill_task_current());
  }

 private:
  const unsigned char *cancel_; // the task's cancel flag, set by await_suspend
};

template <class Rep, class Period>
inline sleep_awaiter sleep(std::chrono::duration<Rep, Period> d) noexcept {
  return sleep_awaiter(std::chrono::duration<double>(d).count());
}
inline sleep_awaiter sleep(double seconds) noexcept { return sleep_awaiter(seconds); }
// Gives up exactly one iteration: sleep(0).
inline yield_awaiter yield() noexcept { return {}; }

// ---------------------------------------------------------------------------
// gather, wait_for
// ---------------------------------------------------------------------------

// co_await gather(a(), b(), fut): every piece runs concurrently; the result
// is a std::tuple of their values in argument order (void: rill::none).
// The first failure is thrown (the same exception object) while the others
// keep running; cancelling the awaiting task cancels them all.
template <class... A> class [[nodiscard]] gather_awaitable {
 public:
  using result_type = std::tuple<detail::stored_t<typename detail::item<A>::value>...>;
  explicit gather_awaitable(A &&...items) : items_(std::move(items)...) {}

  bool await_ready() const noexcept { return sizeof...(A) == 0; }
  template <detail::rill_promise P> void await_suspend(std::coroutine_handle<P> h) {
    self_ = &h.promise();
    rill_loop *loop = self_->loop();
    rill_future *futs[sizeof...(A) ? sizeof...(A) : 1];
    std::size_t i = 0;
    std::apply([&](auto &...it) {
      ((detail::item<A>::start(it, loop), futs[i++] = detail::item<A>::fut(it)), ...);
    }, items_);
    g_ = detail::future_ref(rill_gather(loop, sizeof...(A), futs, 0));
    if (!g_.f) detail::throw_last();
    detail::check(rill_task_wait(self_->task_, g_.f));
  }
  result_type await_resume() {
    if (self_) {
      self_->deliver_cancel();
      if (rill_future_state(g_.f) != RILL_DONE) detail::rethrow_failure(g_.f);
    }
    return collect(std::index_sequence_for<A...>{});
  }

 private:
  template <std::size_t... I> result_type collect(std::index_sequence<I...>) {
    return result_type{detail::stored_result_of<typename detail::item<A>::value>(
        rill_gather_child(g_.f, I))...};
  }
  std::tuple<A...> items_;
  detail::future_ref g_;
  detail::promise_base *self_ = nullptr;
};

template <class... A> gather_awaitable<std::remove_cvref_t<A>...> gather(A &&...items) {
  static_assert((!std::is_lvalue_reference_v<A> && ...),
                "gather takes tasks and futures by value: std::move them in");
  return gather_awaitable<std::remove_cvref_t<A>...>(std::forward<A>(items)...);
}

// co_await gather(std::move(vector_of_tasks)): the results as a vector, in order.
template <class A> class [[nodiscard]] gather_range_awaitable {
 public:
  using value = typename detail::item<A>::value;
  using result_type = std::vector<detail::stored_t<value>>;
  explicit gather_range_awaitable(std::vector<A> &&items) : items_(std::move(items)) {}

  bool await_ready() const noexcept { return items_.empty(); }
  template <detail::rill_promise P> void await_suspend(std::coroutine_handle<P> h) {
    self_ = &h.promise();
    rill_loop *loop = self_->loop();
    std::vector<rill_future *> futs;
    futs.reserve(items_.size());
    for (A &it : items_) {
      detail::item<A>::start(it, loop);
      futs.push_back(detail::item<A>::fut(it));
    }
    g_ = detail::future_ref(rill_gather(loop, futs.size(), futs.data(), 0));
    if (!g_.f) detail::throw_last();
    detail::check(rill_task_wait(self_->task_, g_.f));
  }
  result_type await_resume() {
    result_type out;
    if (!self_) return out;
    self_->deliver_cancel();
    if (rill_future_state(g_.f) != RILL_DONE) detail::rethrow_failure(g_.f);
    out.reserve(items_.size());
    for (std::size_t i = 0; i < items_.size(); i++)
      out.push_back(detail::stored_result_of<value>(rill_gather_child(g_.f, i)));
    return out;
  }

 private:
  std::vector<A> items_;
  detail::future_ref g_;
  detail::promise_base *self_ = nullptr;
};

template <class A> gather_range_awaitable<A> gather(std::vector<A> &&items) {
  return gather_range_awaitable<A>(std::move(items));
}

// co_await wait_for(a(), 2s): a's value, or, once the time has passed, a is
// cancelled, waited for, and rill::timeout_error is thrown.
template <class A> class [[nodiscard]] wait_for_awaitable {
 public:
  using value = typename detail::item<A>::value;
  wait_for_awaitable(A &&inner, double seconds) : inner_(std::move(inner)), seconds_(seconds) {}

  bool await_ready() const noexcept { return false; }
  template <detail::rill_promise P> void await_suspend(std::coroutine_handle<P> h) {
    self_ = &h.promise();
    rill_loop *loop = self_->loop();
    detail::item<A>::start(inner_, loop);
    w_ = detail::future_ref(rill_wait_for(loop, detail::item<A>::fut(inner_), seconds_));
    if (!w_.f) detail::throw_last();
    detail::check(rill_task_wait(self_->task_, w_.f));
  }
  value await_resume() {
    self_->deliver_cancel();
    if (rill_future_state(w_.f) != RILL_DONE) detail::rethrow_failure(w_.f);
    return detail::result_of<value>(detail::item<A>::fut(inner_));
  }

 private:
  A inner_;
  double seconds_;
  detail::future_ref w_;
  detail::promise_base *self_ = nullptr;
};

template <class A, class Rep, class Period>
wait_for_awaitable<std::remove_cvref_t<A>> wait_for(A &&inner,
                                                   std::chrono::duration<Rep, Period> timeout) {
  static_assert(!std::is_lvalue_reference_v<A>, "wait_for takes a task or future by value");
  return {std::forward<A>(inner), std::chrono::duration<double>(timeout).count()};
}

// ---------------------------------------------------------------------------
// loop, handle, spawn, run
// ---------------------------------------------------------------------------

// A scheduled callback (rill_call_soon/later); dropping it does not cancel it.
class handle {
 public:
  handle() noexcept = default;
  explicit handle(rill_handle *h) noexcept : h_(h) {}
  handle(handle &&o) noexcept : h_(std::exchange(o.h_, nullptr)) {}
  handle &operator=(handle &&o) noexcept {
    if (this != &o) {
      rill_handle_release(h_);
      h_ = std::exchange(o.h_, nullptr);
    }
    return *this;
  }
  ~handle() { rill_handle_release(h_); }
  void cancel() noexcept { rill_handle_cancel(h_); }
  bool cancelled() const noexcept { return rill_handle_cancelled(h_) == 1; }
  rill_handle *native() const noexcept { return h_; }

 private:
  rill_handle *h_ = nullptr;
};

namespace detail {
template <class F> void call_fn(void *arg) noexcept {
  try {
    (*static_cast<F *>(arg))();
  } catch (const std::exception &e) {
    rill_loop_report(rill_loop_current(), e.what(), nullptr);
  } catch (...) {
    rill_loop_report(rill_loop_current(), "a callback threw a C++ exception", nullptr);
  }
}
template <class F> handle schedule(rill_loop *loop, double delay, F &&fn) {
  using Fn = std::decay_t<F>;
  auto *arg = new Fn(std::forward<F>(fn));
  rill_handle *h = delay < 0 ? rill_call_soon(loop, &call_fn<Fn>, arg, &delete_value<Fn>)
                             : rill_call_later(loop, delay, &call_fn<Fn>, arg, &delete_value<Fn>);
  if (!h) {
    delete arg;
    throw_last();
  }
  return handle(h);
}

} // namespace detail

// An event loop of its own (rill_loop_new); closed and freed on destruction.
class loop {
 public:
  loop() : l_(rill_loop_new()) {
    if (!l_) detail::throw_last();
  }
  loop(loop &&o) noexcept : l_(std::exchange(o.l_, nullptr)) {}
  loop &operator=(loop &&o) noexcept {
    if (this != &o) {
      rill_loop_free(l_);
      l_ = std::exchange(o.l_, nullptr);
    }
    return *this;
  }
  loop(const loop &) = delete;
  loop &operator=(const loop &) = delete;
  ~loop() { rill_loop_free(l_); }

  rill_loop *native() const noexcept { return l_; }
  operator rill_loop *() const noexcept { return l_; }

  // Runs until no work is left or stop().
  void run() { detail::check(rill_loop_run(l_)); }
  // One iteration (for hosts that pump); callbacks run.
  int run_once(double max_wait_s = 0) { return detail::check(rill_loop_run_once(l_, max_wait_s)); }
  // Starts t and runs until it is done; its value, or it throws.
  template <class T> T run_until_complete(task<T> &t) {
    t.start(l_);
    int rc = rill_loop_run_until(l_, t.native_future());
    if (!t.done()) detail::throw_last(rc);
    return t.result();
  }
  template <class T> T run_until_complete(task<T> &&t) { return run_until_complete(t); }
  void stop() noexcept { rill_loop_stop(l_); }
  double time() const noexcept { return rill_loop_time(l_); }
  void close() { detail::check(rill_loop_close(l_)); }
  // Debug mode (asyncio's set_debug): slow steps are reported, with the
  // task's name and where its coroutine runs; the threshold is asyncio's
  // slow_callback_duration (0.1 s by default).
  void set_debug(bool on) { detail::check(rill_loop_set_debug(l_, on ? 1 : 0)); }
  bool get_debug() const noexcept { return rill_loop_get_debug(l_) == 1; }
  void set_slow_callback_duration(double seconds) { detail::check(rill_loop_set_slow_duration(l_, seconds)); }

  // Starts t on this loop (asyncio's create_task) and hands it back.
  template <class T> task<T> spawn(task<T> t) {
    t.start(l_);
    return t;
  }
  template <class F> handle call_soon(F &&fn) { return detail::schedule(l_, -1, std::forward<F>(fn)); }
  template <class F, class Rep, class Period>
  handle call_later(std::chrono::duration<Rep, Period> d, F &&fn) {
    double s = std::chrono::duration<double>(d).count();
    return detail::schedule(l_, s < 0 ? 0 : s, std::forward<F>(fn));
  }

 private:
  rill_loop *l_;
};

// The loop running on this thread, or nullptr (borrowed).
inline rill_loop *current_loop() noexcept { return rill_loop_current(); }

// The running loop's slow_callback_duration (debug mode's report threshold;
// rill::loop::set_slow_callback_duration for a loop object).
inline void set_slow_callback_duration(double seconds) {
  rill_loop *l = rill_loop_current();
  if (!l) throw error(RILL_ESTATE, "rill::set_slow_callback_duration() needs a running loop");
  detail::check(rill_loop_set_slow_duration(l, seconds));
}

// asyncio.create_task: starts t on the running loop and hands it back.
template <class T> task<T> spawn(task<T> t) {
  rill_loop *l = rill_loop_current();
  if (!l) throw error(RILL_ESTATE, "rill::spawn() needs a running loop");
  t.start(l);
  return t;
}

// asyncio.run: a new loop, main as its main task, run until it is done;
// then every task left is cancelled and run to its end, and the loop is
// closed. Returns main's value or throws what main threw. While main runs,
// SIGINT (if it has its default disposition) cancels main and a second one
// ends the program (the core's rill_loop_cancel_on_sigint); when main then
// ends cancelled, run throws rill::error with RILL_EINTR.
template <class T> T run(task<T> main) {
  if (rill_loop_current()) throw error(RILL_EBUSY, "rill::run() cannot be called from a running loop");
  loop l;
  main.start(l.native());
  rill_task_set_name(main.native(), "main");
  struct sigaction cur;
  bool armed = sigaction(SIGINT, nullptr, &cur) == 0 && cur.sa_handler == SIG_DFL &&
               !(cur.sa_flags & SA_SIGINFO) && rill_loop_cancel_on_sigint(l.native(), main.native()) == RILL_OK;
  int rc = rill_loop_run_until(l.native(), main.native_future());
  bool interrupted = armed && rill_loop_cancel_on_sigint(l.native(), nullptr) > 0;
  rill_loop_shutdown(l.native()); // asyncio.run's epilogue, done by the core
  if (!main.done()) detail::throw_code(rc < 0 ? rc : RILL_ESTATE, "the loop stopped before main finished");
  if (interrupted && main.cancelled()) throw error(RILL_EINTR, "main was cancelled by SIGINT");
  return main.result();
}

// ---------------------------------------------------------------------------
// Threads, signals, processes (1.1)
// ---------------------------------------------------------------------------

namespace detail {
// Stores a T as the outcome of a pool job (as value_traits does for futures).
template <class T> int work_set(rill_work *w, T &&v) {
  using U = std::remove_cvref_t<T>;
  if constexpr (std::is_same_v<U, bool>) return rill_work_set_bool(w, v ? 1 : 0);
  else if constexpr (is_int_v<U>) return rill_work_set_int(w, static_cast<int64_t>(v));
  else if constexpr (std::is_floating_point_v<U>) return rill_work_set_double(w, static_cast<double>(v));
  else if constexpr (std::is_same_v<U, std::string> || std::is_same_v<U, bytes>)
    return rill_work_set_bytes(w, v.data(), v.size());
  else if constexpr (std::is_same_v<U, none>) return rill_work_set_none(w);
  else {
    U *p = new U(std::forward<T>(v));
    int rc = rill_work_set_pointer(w, p, &delete_value<U>, &value_tag<U>);
    if (rc < 0) delete p;
    return rc;
  }
}

// Runs on a pool thread: the callable's value, or its exception as the
// failure (the same object reaches the awaiting task).
template <class R, class Fn> void thread_work(rill_work *w, void *arg) noexcept {
  Fn &fn = *static_cast<Fn *>(arg);
  try {
    if constexpr (std::is_void_v<R>) {
      fn();
      rill_work_set_none(w);
    } else {
      work_set(w, fn());
    }
  } catch (...) {
    std::exception_ptr e = std::current_exception();
    int code = RILL_EEXCEPTION;
    std::string message = "a C++ exception of unknown type";
    try {
      throw;
    } catch (const error &x) {
      code = x.code() < 0 ? x.code() : RILL_EEXCEPTION;
      message = x.what();
    } catch (const std::exception &x) {
      message = x.what();
    } catch (...) {
    }
    auto *payload = new (std::nothrow) std::exception_ptr(std::move(e));
    if (payload)
      rill_work_fail(w, code, message.c_str(), payload, &delete_exception_ptr, &exception_tag);
    else
      rill_work_fail(w, code, message.c_str(), nullptr, nullptr, nullptr);
  }
}

template <class Fn> rill_future *submit_to_thread(rill_loop *l, Fn &&fn) {
  using F = std::decay_t<Fn>;
  using R = std::invoke_result_t<F &>;
  auto *arg = new F(std::forward<Fn>(fn));
  rill_future *f = rill_run_in_thread(l, &thread_work<R, F>, arg, &delete_value<F>);
  if (!f) {
    delete arg;
    throw_last();
  }
  return f;
}

template <class Fn> using thread_result_t = std::invoke_result_t<std::decay_t<Fn> &>;
} // namespace detail

// asyncio.to_thread: co_await rill::to_thread(fn) runs fn() on the running
// loop's thread pool and gives its value (or rethrows its exception, the
// same object). fn must not touch the loop. Cancelling the awaiting task
// before fn started means fn never runs; after, fn runs to its end and its
// value is dropped. fn is destroyed on the loop's thread.
template <class Fn>
task<detail::thread_result_t<Fn>> to_thread(Fn fn) {
  using R = detail::thread_result_t<Fn>;
  rill_loop *l = rill_loop_current();
  if (!l) throw error(RILL_ESTATE, "rill::to_thread() needs a running loop");
  auto f = future<R>::adopt(detail::submit_to_thread(l, std::move(fn)));
  if constexpr (std::is_void_v<R>) co_await f;
  else co_return co_await f;
}

// A signal watcher on a loop (rill_signal_start): fn(signum) runs on the
// loop's thread after each arrival (coalesced); stopped on destruction.
class signal_watcher {
 public:
  signal_watcher() noexcept = default;
  template <class F> signal_watcher(rill_loop *l, int signum, F &&fn) {
    using Fn = std::decay_t<F>;
    auto *arg = new Fn(std::forward<F>(fn));
    s_ = rill_signal_start(l, signum, &on_signal<Fn>, arg, &detail::delete_value<Fn>);
    if (!s_) {
      delete arg;
      detail::throw_last();
    }
  }
  signal_watcher(signal_watcher &&o) noexcept : s_(std::exchange(o.s_, nullptr)) {}
  signal_watcher &operator=(signal_watcher &&o) noexcept {
    if (this != &o) {
      reset();
      s_ = std::exchange(o.s_, nullptr);
    }
    return *this;
  }
  ~signal_watcher() { reset(); }
  void stop() noexcept { rill_signal_stop(s_); }
  bool active() const noexcept { return s_ && rill_signal_active(s_) == 1; }

 private:
  template <class Fn> static void on_signal(rill_signal *, int signum, void *arg) noexcept {
    try {
      (*static_cast<Fn *>(arg))(signum);
    } catch (const std::exception &e) {
      rill_loop_report(rill_loop_current(), e.what(), nullptr);
    } catch (...) {
      rill_loop_report(rill_loop_current(), "a signal callback threw a C++ exception", nullptr);
    }
  }
  void reset() noexcept {
    if (!s_) return;
    rill_signal_stop(s_);
    rill_signal_release(s_);
    s_ = nullptr;
  }
  rill_signal *s_ = nullptr;
};

// co_await rill::wait_signal(SIGTERM): resumes once signum arrives (on the
// running loop); gives signum.
inline task<int> wait_signal(int signum) {
  rill_loop *l = rill_loop_current();
  if (!l) throw error(RILL_ESTATE, "rill::wait_signal() needs a running loop");
  future<int> got(l);
  signal_watcher w(l, signum, [got](int s) mutable {
    if (!got.done()) got.set_value(s);
  });
  co_return co_await got;
}

// How rill::process::spawn starts a child.
struct process_options {
  std::vector<std::string> env; // used when inherit_env is false
  bool inherit_env = true;
  std::string cwd; // empty: the parent's
  int stdio[3] = {RILL_STDIO_INHERIT, RILL_STDIO_INHERIT, RILL_STDIO_INHERIT};
};

// A child process (rill_process_spawn). Dropping it neither kills nor
// forgets the child: its loop reaps it (and kills it at loop close).
class process {
 public:
  using options = process_options;

  process() noexcept = default;
  process(process &&o) noexcept : p_(std::exchange(o.p_, nullptr)) {}
  process &operator=(process &&o) noexcept {
    if (this != &o) {
      rill_process_release(p_);
      p_ = std::exchange(o.p_, nullptr);
    }
    return *this;
  }
  ~process() { rill_process_release(p_); }

  // Starts argv on l (default: the running loop); throws rill::error
  // (RILL_ESPAWN when the program could not start).
  static process spawn(const std::vector<std::string> &argv, const process_options &o = {},
                       rill_loop *l = rill_loop_current()) {
    if (!l) throw error(RILL_ESTATE, "rill::process::spawn() needs a loop");
    std::vector<const char *> av, ev;
    for (auto &a : argv) av.push_back(a.c_str());
    av.push_back(nullptr);
    for (auto &e : o.env) ev.push_back(e.c_str());
    ev.push_back(nullptr);
    process p;
    p.p_ = rill_process_spawn(l, av.data(), o.inherit_env ? nullptr : ev.data(),
                              o.cwd.empty() ? nullptr : o.cwd.c_str(), o.stdio);
    if (!p.p_) detail::throw_last();
    return p;
  }

  rill_process *native() const noexcept { return p_; }
  int pid() const { return detail::check(rill_process_pid(p_)); }
  // The parent's end of pipe which (borrowed; the process closes it).
  int fd(int which) const { return detail::check(rill_process_fd(p_, which)); }
  // The same, now the caller's to close.
  int take_fd(int which) { return detail::check(rill_process_take_fd(p_, which)); }
  // Pipe which (0 stdin, 1 stdout, 2 stderr) as a rill::stream: the fd
  // moves to the stream (read_until the child's lines, write + write_eof).
  inline class stream stream(int which);
  void send_signal(int signum) { detail::check(rill_process_send_signal(p_, signum)); }
  void kill() { detail::check(rill_process_kill(p_)); }
  // The exit status once reaped (exit code, or -N for signal N).
  std::optional<int> returncode() const {
    int rc = 0;
    if (rill_process_returncode(p_, &rc) != RILL_OK) return std::nullopt;
    return rc;
  }
  // co_await p.wait(): the exit status; cancelling it leaves the child be.
  future<int> wait() const {
    rill_future *f = rill_process_wait(p_);
    if (!f) detail::throw_last();
    return future<int>::adopt(f);
  }

 private:
  rill_process *p_ = nullptr;
};

// ---------------------------------------------------------------------------
// I/O (1.1): streams and listeners, co_await'ed from tasks
// ---------------------------------------------------------------------------
//   auto s = co_await rill::connect("127.0.0.1", port);   // rill::stream
//   auto l = rill::listener::tcp("127.0.0.1", 0);          // binds now
//   auto c = co_await l.accept();
//   std::string line = co_await s.read_until("\n");
//   s.write(line); co_await s.drain();
// Failures throw rill::error with the I/O code (RILL_ECONNREFUSED, ...).

class stream;

namespace detail {
// Owns a rill future (one reference) and awaits it; R is read from it.
template <class R> struct io_awaitable {
  future_ref ref;
  promise_base *self = nullptr;
  explicit io_awaitable(rill_future *f) : ref(f) {
    if (!f) throw_last();
  }
  bool await_ready() const noexcept { return rill_future_done(ref.f) == 1; }
  template <rill_promise P> void await_suspend(std::coroutine_handle<P> h) {
    self = &h.promise();
    check(rill_task_wait(self->task_, ref.f));
  }
  R await_resume();
};
// I/O reads can be gathered and put under wait_for like futures.
template <class R> struct item<io_awaitable<R>> {
  using value = R;
  static void start(io_awaitable<R> &, rill_loop *) {}
  static rill_future *fut(io_awaitable<R> &a) { return a.ref.f; }
};
} // namespace detail

// A byte stream (TCP, Unix socket, pipe). Move-only; the destructor closes
// it (flushing what is buffered) if it is still open.
class stream {
 public:
  stream() noexcept = default;
  explicit stream(rill_stream *s) noexcept : s_(s) {}  // adopts one reference
  stream(stream &&o) noexcept : s_(std::exchange(o.s_, nullptr)) {}
  stream &operator=(stream &&o) noexcept {
    if (this != &o) {
      reset();
      s_ = std::exchange(o.s_, nullptr);
    }
    return *this;
  }
  ~stream() { reset(); }
  // Wraps an fd (a pipe end, a connected socket) on the running loop.
  static stream from_fd(int fd) {
    rill_stream *s = rill_stream_open_fd(rill_loop_current(), fd);
    if (!s) detail::throw_last();
    return stream(s);
  }

  rill_stream *native() const noexcept { return s_; }
  explicit operator bool() const noexcept { return s_ != nullptr; }

  // Up to n bytes ("" at end of stream).
  detail::io_awaitable<std::string> read(std::size_t n = 65536) {
    return detail::io_awaitable<std::string>(rill_stream_read(s_, n));
  }
  // Exactly n bytes; early end: rill::error RILL_EINCOMPLETE.
  detail::io_awaitable<std::string> read_exactly(std::size_t n) {
    return detail::io_awaitable<std::string>(rill_stream_read_exactly(s_, n));
  }
  // Up to and including sep; RILL_ELIMIT past limit (data kept).
  detail::io_awaitable<std::string> read_until(std::string_view sep, std::size_t limit = 0) {
    return detail::io_awaitable<std::string>(rill_stream_read_until(s_, sep.data(), sep.size(), limit));
  }
  // Resumes once data is buffered (or the stream ended): then peek/consume.
  detail::io_awaitable<void> readable() {
    return detail::io_awaitable<void>(rill_stream_wait_readable(s_));
  }
  std::string_view peek() const noexcept {
    std::size_t len = 0;
    const void *p = rill_stream_peek(s_, &len);
    return p ? std::string_view(static_cast<const char *>(p), len) : std::string_view();
  }
  void consume(std::size_t n) { detail::check(rill_stream_consume(s_, n)); }
  bool at_eof() const noexcept { return rill_stream_at_eof(s_) == 1; }

  // Buffered, never blocks; co_await drain() to wait below the low watermark.
  void write(std::string_view data) { detail::check(rill_stream_write(s_, data.data(), data.size())); }
  detail::io_awaitable<void> drain() { return detail::io_awaitable<void>(rill_stream_drain(s_)); }
  void write_eof() { detail::check(rill_stream_write_eof(s_)); }
  void close() { detail::check(rill_stream_close(s_)); }
  void abort() { detail::check(rill_stream_abort(s_)); }
  detail::io_awaitable<void> wait_closed() { return detail::io_awaitable<void>(rill_stream_wait_closed(s_)); }
  bool is_closing() const noexcept { return rill_stream_is_closing(s_) != 0; }

  std::string peer_name() const { return name(rill_stream_peer_name); }
  std::string local_name() const { return name(rill_stream_local_name); }
  void set_nodelay(bool on) { detail::check(rill_stream_set_nodelay(s_, on)); }
  void set_keepalive(bool on, int idle_s = 0) { detail::check(rill_stream_set_keepalive(s_, on, idle_s)); }

 private:
  std::string name(int (*fn)(rill_stream *, char *, std::size_t)) const {
    char buf[256];
    detail::check(fn(s_, buf, sizeof buf));
    return buf;
  }
  void reset() noexcept {
    if (!s_) return;
    if (!rill_loop_is_closed(rill_stream_loop(s_)) && rill_stream_is_closing(s_) == 0) rill_stream_close(s_);
    rill_stream_release(std::exchange(s_, nullptr));
  }
  rill_stream *s_ = nullptr;
};

namespace detail {
template <class R> R io_awaitable<R>::await_resume() {
  if (self) self->deliver_cancel();
  if constexpr (std::is_same_v<R, stream>) {
    if (rill_future_state(ref.f) != RILL_DONE) rethrow_failure(ref.f);
    return stream(rill_future_stream(ref.f));
  } else {
    return result_of<R>(ref.f);
  }
}
} // namespace detail

// Connects over TCP (host: a name, resolved on the loop's pool, a numeric
// address, or a comma separated list of them tried in order) on the
// running loop.
inline detail::io_awaitable<stream> connect(const char *host, int port, double timeout_s = RILL_FOREVER) {
  return detail::io_awaitable<stream>(rill_tcp_connect(rill_loop_current(), host, port, timeout_s));
}
inline detail::io_awaitable<stream> connect_unix(const char *path, double timeout_s = RILL_FOREVER) {
  return detail::io_awaitable<stream>(rill_unix_connect(rill_loop_current(), path, timeout_s));
}

inline stream process::stream(int which) {
  rill_stream *s = rill_process_stream(p_, which);
  if (!s) detail::throw_last();
  return rill::stream(s);
}

// A listening socket. Move-only; the destructor closes it.
class listener {
 public:
  listener() noexcept = default;
  explicit listener(rill_listener *l) noexcept : l_(l) {}
  listener(listener &&o) noexcept : l_(std::exchange(o.l_, nullptr)) {}
  listener &operator=(listener &&o) noexcept {
    if (this != &o) {
      reset();
      l_ = std::exchange(o.l_, nullptr);
    }
    return *this;
  }
  ~listener() { reset(); }
  // Binds and listens now (on loop, default: the running one).
  static listener tcp(const char *host, int port, int backlog = 0, unsigned flags = 0,
                      rill_loop *loop = rill_loop_current()) {
    rill_listener *l = rill_tcp_listen(loop, host, port, backlog, flags);
    if (!l) detail::throw_last();
    return listener(l);
  }
  static listener unix_path(const char *path, int backlog = 0, rill_loop *loop = rill_loop_current()) {
    rill_listener *l = rill_unix_listen(loop, path, backlog);
    if (!l) detail::throw_last();
    return listener(l);
  }
  detail::io_awaitable<stream> accept() { return detail::io_awaitable<stream>(rill_listener_accept(l_)); }
  int port() const { return detail::check(rill_listener_port(l_)); }
  void close() { detail::check(rill_listener_close(l_)); }
  detail::io_awaitable<void> wait_closed() { return detail::io_awaitable<void>(rill_listener_wait_closed(l_)); }
  rill_listener *native() const noexcept { return l_; }

 private:
  void reset() noexcept {
    if (!l_) return;
    rill_listener_close(l_); // ENOTCONN if closed already: ignored
    rill_listener_release(std::exchange(l_, nullptr));
  }
  rill_listener *l_ = nullptr;
};

// One received datagram: its bytes and the sender as "host:port".
struct datagram {
  std::string data;
  std::string sender;
};

namespace detail {
// A rill_udp_recvfrom future read as a datagram (also under wait_for/gather).
template <> struct value_traits<datagram> {
  static datagram get(rill_future *f) {
    datagram d;
    d.data = value_traits<std::string>::get(f);
    char buf[128];
    check(rill_udp_sender(f, buf, sizeof buf));
    d.sender = buf;
    return d;
  }
};
} // namespace detail

// A UDP endpoint (rill_udp_open). Move-only; the destructor closes it.
//   auto u = rill::udp::open("127.0.0.1", 0);
//   u.send_to("ping", "127.0.0.1", port);
//   rill::datagram d = co_await u.recv();   // d.data, d.sender
class udp {
 public:
  udp() noexcept = default;
  explicit udp(rill_udp *u) noexcept : u_(u) {}  // adopts one reference
  udp(udp &&o) noexcept : u_(std::exchange(o.u_, nullptr)) {}
  udp &operator=(udp &&o) noexcept {
    if (this != &o) {
      reset();
      u_ = std::exchange(o.u_, nullptr);
    }
    return *this;
  }
  ~udp() { reset(); }
  // Binds host:port now (port 0: any; flags 0 or RILL_LISTEN_REUSEPORT).
  static udp open(const char *host, int port, unsigned flags = 0, rill_loop *loop = rill_loop_current()) {
    rill_udp *u = rill_udp_open(loop, host, port, flags);
    if (!u) detail::throw_last();
    return udp(u);
  }
  // The default peer for send().
  void connect(const char *host, int port) { detail::check(rill_udp_connect(u_, host, port)); }
  // One datagram; never blocks (rill::error RILL_ESYS/EAGAIN when the
  // socket buffer is full).
  void send_to(std::string_view data, const char *host, int port) {
    detail::check(rill_udp_sendto(u_, data.data(), data.size(), host, port));
  }
  void send(std::string_view data) { detail::check(rill_udp_sendto(u_, data.data(), data.size(), nullptr, 0)); }
  // The next datagram (FIFO among receivers); close() fails it with RILL_ENOTCONN.
  detail::io_awaitable<datagram> recv() { return detail::io_awaitable<datagram>(rill_udp_recvfrom(u_)); }
  int port() const { return detail::check(rill_udp_port(u_)); }
  void close() { detail::check(rill_udp_close(u_)); }
  rill_udp *native() const noexcept { return u_; }

 private:
  void reset() noexcept {
    if (!u_) return;
    rill_udp_close(u_); // ENOTCONN if closed, ECLOSED with its loop: ignored
    rill_udp_release(std::exchange(u_, nullptr));
  }
  rill_udp *u_ = nullptr;
};

// ---------------------------------------------------------------------------
// Sync primitives (1.1): event, mutex, semaphore, condition, barrier, queue<T>
// ---------------------------------------------------------------------------
// asyncio's rules, kept by the core (FIFO, no barging, uncontended
// operations do not suspend, a task cancelled after a hand-off passes it
// on). Each object is a counted handle: copies share the primitive, which
// belongs to a loop (default: the running one).
//   rill::mutex m;  { auto g = co_await m.lock(); ... }  // unlocked here
//   rill::queue<std::string> q(1);  co_await q.put("x");  auto s = co_await q.get();
// Failures throw rill::error (RILL_EBROKEN, RILL_ESHUTDOWN, RILL_EFULL, ...).

namespace detail {
// One reference to a primitive; copying retains, destroying releases.
template <class H, H *(*Retain)(H *), void (*Release)(H *)> class shared_handle {
 public:
  explicit shared_handle(H *h) : h_(h) {  // adopts one reference
    if (!h) throw_last();
  }
  shared_handle(const shared_handle &o) noexcept : h_(Retain(o.h_)) {}
  shared_handle(shared_handle &&o) noexcept : h_(std::exchange(o.h_, nullptr)) {}
  shared_handle &operator=(shared_handle o) noexcept {
    std::swap(h_, o.h_);
    return *this;
  }
  ~shared_handle() { Release(h_); }
  H *native() const noexcept { return h_; }

 protected:
  H *h_ = nullptr;
};
inline bool flag(int rc) { return check(rc) == 1; }
} // namespace detail

class event : public detail::shared_handle<rill_event, rill_event_retain, rill_event_release> {
 public:
  explicit event(rill_loop *loop = rill_loop_current()) : shared_handle(rill_event_new(loop)) {}
  void set() { detail::check(rill_event_set(h_)); }
  void clear() { detail::check(rill_event_clear(h_)); }
  bool is_set() const { return detail::flag(rill_event_is_set(h_)); }
  detail::io_awaitable<void> wait() { return detail::io_awaitable<void>(rill_event_wait(h_)); }
};

class mutex : public detail::shared_handle<rill_lock, rill_lock_retain, rill_lock_release> {
 public:
  explicit mutex(rill_loop *loop = rill_loop_current()) : shared_handle(rill_lock_new(loop)) {}
  explicit mutex(rill_lock *adopt) : shared_handle(adopt) {}

  // Holds the lock until destroyed (or unlock()). Move-only.
  class [[nodiscard]] guard {
   public:
    explicit guard(rill_lock *l) noexcept : l_(rill_lock_retain(l)) {}
    guard(guard &&o) noexcept : l_(std::exchange(o.l_, nullptr)) {}
    guard &operator=(guard &&o) noexcept {
      if (this != &o) {
        reset();
        l_ = std::exchange(o.l_, nullptr);
      }
      return *this;
    }
    ~guard() { reset(); }
    void unlock() {
      rill_lock *l = std::exchange(l_, nullptr);
      int rc = rill_lock_unlock(l);
      rill_lock_release(l);
      detail::check(rc);
    }
    bool owns_lock() const noexcept { return l_ != nullptr; }

   private:
    void reset() noexcept {
      if (!l_) return;
      rill_lock_unlock(l_); // ECLOSED after loop close: nothing to hand on
      rill_lock_release(std::exchange(l_, nullptr));
    }
    rill_lock *l_;
  };

  struct [[nodiscard]] lock_awaitable : detail::io_awaitable<void> {
    rill_lock *l;
    lock_awaitable(rill_future *f, rill_lock *lk) : io_awaitable<void>(f), l(lk) {}
    guard await_resume() {
      io_awaitable<void>::await_resume();
      return guard(l);
    }
  };
  // co_await m.lock() -> a guard; suspends only if the lock is held.
  lock_awaitable lock() { return lock_awaitable(rill_lock_acquire(h_), h_); }
  bool try_lock() { return detail::flag(rill_lock_try_acquire(h_)); }
  void unlock() { detail::check(rill_lock_unlock(h_)); }
  bool locked() const { return detail::flag(rill_lock_is_locked(h_)); }
};

class semaphore
    : public detail::shared_handle<rill_semaphore, rill_semaphore_retain, rill_semaphore_release> {
 public:
  // bounded: release() past value throws rill::error RILL_ETOOMANY.
  explicit semaphore(int value = 1, bool bounded = false, rill_loop *loop = rill_loop_current())
      : shared_handle(rill_semaphore_new(loop, value, bounded ? 1 : 0)) {}
  detail::io_awaitable<void> acquire() {
    return detail::io_awaitable<void>(rill_semaphore_acquire(h_));
  }
  bool try_acquire() { return detail::flag(rill_semaphore_try_acquire(h_)); }
  void release() { detail::check(rill_semaphore_post(h_)); }
  int value() const { return detail::check(rill_semaphore_value(h_)); }
  bool locked() const { return detail::flag(rill_semaphore_is_locked(h_)); }
};

class condition
    : public detail::shared_handle<rill_condition, rill_condition_retain, rill_condition_release> {
 public:
  explicit condition(rill_loop *loop = rill_loop_current())
      : shared_handle(rill_condition_new(loop, nullptr)) {}
  explicit condition(const rill::mutex &m)
      : shared_handle(rill_condition_new(rill_loop_current(), m.native())) {}
  // The condition's lock (shared).
  rill::mutex get_mutex() const { return rill::mutex(rill_lock_retain(rill_condition_lock(h_))); }
  // co_await c.lock() -> a guard of the condition's lock.
  rill::mutex::lock_awaitable lock() { return get_mutex().lock(); }
  // With the lock held: releases it, resumes once notified and holding it
  // again (also when cancelled: then it throws rill::cancelled_error).
  detail::io_awaitable<void> wait() { return detail::io_awaitable<void>(rill_condition_wait(h_)); }
  template <class Pred> task<void> wait_for(Pred pred) {
    while (!pred()) co_await wait();
  }
  int notify(int n = 1) { return detail::check(rill_condition_notify(h_, n)); }
  int notify_all() { return detail::check(rill_condition_notify_all(h_)); }
};

class barrier : public detail::shared_handle<rill_barrier, rill_barrier_retain, rill_barrier_release> {
 public:
  explicit barrier(int parties, rill_loop *loop = rill_loop_current())
      : shared_handle(rill_barrier_new(loop, parties)) {}
  // co_await b.wait() -> the arrival index; rill::error RILL_EBROKEN.
  detail::io_awaitable<int> wait() { return detail::io_awaitable<int>(rill_barrier_wait(h_)); }
  void abort() { detail::check(rill_barrier_abort(h_)); }
  void reset() { detail::check(rill_barrier_reset(h_)); }
  bool broken() const { return detail::flag(rill_barrier_is_broken(h_)); }
  int n_waiting() const { return detail::check(rill_barrier_n_waiting(h_)); }
  int parties() const { return detail::check(rill_barrier_parties(h_)); }
};

// A queue of T: int64_t (any integer), double, bool and std::string travel
// as the core's value kinds (so tasks of other languages on the loop read
// them); any other T as a tagged C++ object.
template <class T> class queue : public detail::shared_handle<rill_queue, rill_queue_retain, rill_queue_release> {
 public:
  explicit queue(int maxsize = 0, int kind = RILL_QUEUE_FIFO, rill_loop *loop = rill_loop_current())
      : shared_handle(rill_queue_new(loop, maxsize, kind)) {}
  // Suspends while the queue is full; rill::error RILL_ESHUTDOWN.
  detail::io_awaitable<void> put(T v, int64_t priority = 0) {
    return detail::io_awaitable<void>(put_raw(std::move(v), priority, false, nullptr));
  }
  // rill::error RILL_EFULL / RILL_ESHUTDOWN.
  void put_nowait(T v, int64_t priority = 0) {
    int rc = 0;
    put_raw(std::move(v), priority, true, &rc);
    detail::check(rc);
  }
  // Suspends while the queue is empty; rill::error RILL_ESHUTDOWN.
  detail::io_awaitable<T> get() { return detail::io_awaitable<T>(rill_queue_get(h_)); }
  // rill::error RILL_EEMPTY / RILL_ESHUTDOWN.
  T get_nowait() {
    detail::future_ref r(rill_queue_get_nowait(h_));
    if (!r.f) detail::throw_last();
    return detail::result_of<T>(r.f);
  }
  int size() const { return detail::check(rill_queue_qsize(h_)); }
  int maxsize() const { return detail::check(rill_queue_maxsize(h_)); }
  bool empty() const { return detail::flag(rill_queue_is_empty(h_)); }
  bool full() const { return detail::flag(rill_queue_is_full(h_)); }
  void task_done() { detail::check(rill_queue_task_done(h_)); }
  detail::io_awaitable<void> join() { return detail::io_awaitable<void>(rill_queue_join(h_)); }
  void shutdown(bool immediate = false) { detail::check(rill_queue_shutdown(h_, immediate ? 1 : 0)); }
  bool is_shut_down() const { return detail::flag(rill_queue_is_shut_down(h_)); }

 private:
  // nowait: returns nullptr and sets *rc. Else the put future (nullptr on
  // failure, the last error set).
  rill_future *put_raw(T &&v, int64_t prio, bool nowait, int *rc) {
    if constexpr (std::is_same_v<T, bool>) {
      if (nowait) return *rc = rill_queue_put_nowait_bool(h_, v ? 1 : 0, prio), nullptr;
      return rill_queue_put_bool(h_, v ? 1 : 0, prio);
    } else if constexpr (detail::is_int_v<T>) {
      if (nowait) return *rc = rill_queue_put_nowait_int(h_, static_cast<int64_t>(v), prio), nullptr;
      return rill_queue_put_int(h_, static_cast<int64_t>(v), prio);
    } else if constexpr (std::is_floating_point_v<T>) {
      if (nowait) return *rc = rill_queue_put_nowait_double(h_, static_cast<double>(v), prio), nullptr;
      return rill_queue_put_double(h_, static_cast<double>(v), prio);
    } else if constexpr (std::is_same_v<T, std::string>) {
      if (nowait) return *rc = rill_queue_put_nowait_bytes(h_, v.data(), v.size(), prio), nullptr;
      return rill_queue_put_bytes(h_, v.data(), v.size(), prio);
    } else {
      T *p = new T(std::move(v));
      rill_future *f = nullptr;
      if (nowait) *rc = rill_queue_put_nowait_pointer(h_, p, &detail::delete_value<T>, &detail::value_tag<T>, prio);
      else f = rill_queue_put_pointer(h_, p, &detail::delete_value<T>, &detail::value_tag<T>, prio);
      if (nowait ? *rc < 0 : !f) delete p; // a failed put leaves it to us
      return f;
    }
  }
};

} // namespace rill

#endif // RILL_HPP
