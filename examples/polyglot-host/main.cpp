// polyglot-host: one rill loop shared by C++, Lua 5.4 and Python.
//
// This C++ program embeds Lua and Python and hands both the same rill_loop
// through the bindings' embedding API (bindings/lua/README.md and
// bindings/python/README.md, "Embedding"):
//  1. the seed example across languages: task A is Lua, task B is Python,
//     a C++ task gathers them; about one second, not two;
//  2. three futures made here are resolved by a Lua task with an integer, a
//     float and a string, and awaited by a Python task and a C++ task, each
//     getting its own native values (the core keeps int, double and bytes
//     as such: rill_future_set_int / _double / _bytes);
//  3. a bounded queue (maxsize 2) made here is filled by a Lua producer and
//     drained by a slower Python consumer: the producer blocks on a full
//     queue, and ints, floats and bytes keep their kinds on the way.
// The loop runs here, in C++ (rill_loop_run_until), with the GIL held.
#include <Python.h>

#include <chrono>
#include <cinttypes>
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <string>

#include <lua.hpp>
#include <rill.hpp>

#ifndef POLYGLOT_PYTHONPATH
#define POLYGLOT_PYTHONPATH ""
#endif
#ifndef POLYGLOT_LUA_DIR
#define POLYGLOT_LUA_DIR ""
#endif

namespace {

[[noreturn]] void die(const char *what) {
  std::fprintf(stderr, "polyglot-host: %s\n", what);
  std::exit(1);
}

// Runs a Lua chunk with the arguments given; leaves its nres results on the stack.
void lua_do(lua_State *L, const char *chunk, int nres,
            std::initializer_list<lua_Integer> args = {}) {
  if (luaL_loadstring(L, chunk) != LUA_OK) die(lua_tostring(L, -1));
  for (lua_Integer a : args) lua_pushinteger(L, a);
  if (lua_pcall(L, static_cast<int>(args.size()), nres, 0) != LUA_OK) die(lua_tostring(L, -1));
}

lua_Integer addr(const void *p) { return static_cast<lua_Integer>(reinterpret_cast<intptr_t>(p)); }

// Runs Python code in globals g; dies with the traceback on an error.
void py_do(PyObject *g, const char *code) {
  PyObject *r = PyRun_String(code, Py_file_input, g, g);
  if (!r) {
    PyErr_Print();
    die("Python code failed");
  }
  Py_DECREF(r);
}

void py_set_addr(PyObject *g, const char *name, const void *p) {
  PyObject *v = PyLong_FromVoidPtr(const_cast<void *>(p));
  if (!v || PyDict_SetItemString(g, name, v) < 0) die("Python: out of memory");
  Py_DECREF(v);
}

rill_future *py_get_addr(PyObject *g, const char *name) {
  PyObject *v = PyDict_GetItemString(g, name); // borrowed
  void *p = v ? PyLong_AsVoidPtr(v) : nullptr;
  if (!p) die("Python: no future address");
  return static_cast<rill_future *>(p);
}

// Python task B of part 1; returns its rill_future (retained).
rill_future *start_task_b(PyObject *g) {
  py_do(g, R"(
async def task_b():
    print("Task B started")
    await rill.sleep(1)
    print("Task B finished")

tb = loop.create_task(task_b())
TB = tb._rill_future_address()
)");
  return rill_future_retain(py_get_addr(g, "TB"));
}

// The C++ task of part 1: gathers Lua task A and Python task B.
rill::task<> seed_main(rill_future *a, rill_future *b) {
  co_await rill::gather(rill::future<void>::borrow(a), rill::future<void>::borrow(b));
}

// The C++ task of part 2: awaits the three futures Lua resolves.
rill::task<> cpp_awaits(rill_future *fi, rill_future *fd, rill_future *fb) {
  int64_t i = co_await rill::future<int64_t>::borrow(fi);
  double d = co_await rill::future<double>::borrow(fd);
  std::string b = co_await rill::future<std::string>::borrow(fb);
  std::printf("C++ got int64_t %" PRId64 ", double %g, std::string \"%s\" (%zu bytes)\n", i, d,
              b.c_str(), b.size());
}

void run_until(rill_loop *loop, rill_future *f, const char *what) {
  int rc = rill_loop_run_until(loop, f);
  if (rc != 0) {
    std::fprintf(stderr, "polyglot-host: %s: %s (%s)\n", what, rill_strerror(rc),
                 rill_future_error_message(f) ? rill_future_error_message(f) : "");
    std::exit(1);
  }
}

} // namespace

int main() {
  std::setvbuf(stdout, nullptr, _IONBF, 0); // the three languages share fd 1
  // The bindings of the build tree (unless the caller points elsewhere).
  setenv("PYTHONPATH", POLYGLOT_PYTHONPATH, 0);
  setenv("LUA_PATH", POLYGLOT_LUA_DIR "/?.lua;;", 0);
  setenv("LUA_CPATH", POLYGLOT_LUA_DIR "/?.so;;", 0);
  setenv("PYTHONUNBUFFERED", "1", 1);

  rill_loop *loop = rill_loop_new();
  if (!loop) die("rill_loop_new failed");

  Py_Initialize(); // this thread holds the GIL from now on
  PyObject *g = PyDict_New();
  if (!g || PyDict_SetItemString(g, "__builtins__", PyEval_GetBuiltins()) < 0) die("Python init");
  lua_State *L = luaL_newstate();
  if (!L) die("luaL_newstate failed");
  luaL_openlibs(L);

  // Both languages attach to the one loop.
  lua_do(L, "rill = require 'rill'; host = rill.attach_loop(...)", 0, {addr(loop)});
  py_set_addr(g, "LOOP", loop);
  py_do(g, "import rill\nloop = rill._attach_loop(LOOP)\n");

  // ---- part 1: the seed, task A in Lua, task B in Python, gathered in C++
  lua_do(L, R"(
    task_a = rill.spawn_on(host, function()
      print("Task A started")
      rill.sleep(1)
      print("Task A finished")
    end)
    return rill.future_address(task_a))",
         1);
  rill_future *fa = rill_future_retain(reinterpret_cast<rill_future *>(
      static_cast<intptr_t>(lua_tointeger(L, -1))));
  lua_pop(L, 1);
  rill_future *fb_task = start_task_b(g);

  auto t0 = std::chrono::steady_clock::now();
  try {
    rill::task<> both = seed_main(fa, fb_task);
    both.start(loop);
    run_until(loop, both.native_future(), "the seed");
  } catch (const std::exception &e) {
    std::fprintf(stderr, "polyglot-host: %s\n", e.what());
    return 1;
  }
  double seed_s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();

  // ---- part 2: futures resolved in Lua, awaited in Python and in C++
  rill_future *fi = rill_future_new(loop), *fd = rill_future_new(loop), *fby = rill_future_new(loop);
  if (!fi || !fd || !fby) die("rill_future_new failed");
  py_set_addr(g, "FI", fi);
  py_set_addr(g, "FD", fd);
  py_set_addr(g, "FB", fby);
  py_do(g, R"(
async def py_awaits(fi, fd, fb):
    i, d, b = await fi, await fd, await fb
    print(f"Python got {type(i).__name__} {i!r}, {type(d).__name__} {d!r}, "
          f"{type(b).__name__} {b!r}")

tp = loop.create_task(py_awaits(*(rill._wrap_future(a, loop) for a in (FI, FD, FB))))
TP = tp._rill_future_address()
)");
  rill_future *fpy = rill_future_retain(py_get_addr(g, "TP"));
  try {
    rill::task<> cpp = cpp_awaits(fi, fd, fby);
    cpp.start(loop);
    lua_do(L, R"(
      local fi, fd, fb = ...
      task_r = rill.spawn_on(host, function()
        rill.yield() -- let the Python and C++ tasks wait first
        rill.wrap_future(fi):set_result(42)
        rill.wrap_future(fd):set_result(2.5)
        rill.wrap_future(fb):set_result("rill-bytes")
        print("Lua resolved 42, 2.5, \"rill-bytes\"")
      end)
      return rill.future_address(task_r))",
           1, {addr(fi), addr(fd), addr(fby)});
    rill_future *fr = rill_future_retain(reinterpret_cast<rill_future *>(
        static_cast<intptr_t>(lua_tointeger(L, -1))));
    lua_pop(L, 1);
    rill_future *all3[] = {fr, fpy, cpp.native_future()};
    rill_future *all = rill_gather(loop, 3, all3, 0);
    if (!all) die("rill_gather failed");
    run_until(loop, all, "the futures");
    rill_future_release(all);
    rill_future_release(fr);
  } catch (const std::exception &e) {
    std::fprintf(stderr, "polyglot-host: %s\n", e.what());
    return 1;
  }
  // ---- part 3: a bounded queue made here, filled in Lua, drained in Python
  rill_queue *q = rill_queue_new(loop, 2, RILL_QUEUE_FIFO);
  if (!q) die("rill_queue_new failed");
  lua_do(L, R"lua(
    local qaddr = ...
    producer = rill.spawn_on(host, function()
      local q = rill.wrap_queue(qaddr)
      for _, v in ipairs({1, 2.5, "three", 4, 5.5, "six"}) do
        q:put(v) -- waits while the queue holds 2
        print(string.format("Lua put %s (%d queued)", tostring(v), q:qsize()))
      end
    end)
    return rill.future_address(producer))lua",
         1, {addr(q)});
  rill_future *fprod = rill_future_retain(reinterpret_cast<rill_future *>(
      static_cast<intptr_t>(lua_tointeger(L, -1))));
  lua_pop(L, 1);
  py_set_addr(g, "QUEUE", q);
  py_do(g, R"(
async def consumer(q):
    for _ in range(6):
        await rill.sleep(0.01)  # slower than the producer
        v = await q.get()
        print(f"Python got {type(v).__name__} {v!r}")

tc = loop.create_task(consumer(rill._wrap_queue(QUEUE, loop)))
TC = tc._rill_future_address()
)");
  rill_future *fcons = rill_future_retain(py_get_addr(g, "TC"));
  {
    rill_future *both[] = {fprod, fcons};
    rill_future *all = rill_gather(loop, 2, both, 0);
    if (!all) die("rill_gather failed");
    run_until(loop, all, "the queue");
    rill_future_release(all);
  }
  std::printf("C++ sees the queue empty: %s\n", rill_queue_qsize(q) == 0 ? "yes" : "no");
  std::printf("seed part took %.3f s\n", seed_s);

  // Down: the loop first (nothing is pending), then the languages' objects.
  rill_loop_close(loop);
  for (rill_future *f : {fa, fb_task, fi, fd, fby, fpy, fprod, fcons}) rill_future_release(f);
  rill_queue_release(q);
  PyDict_Clear(g);
  Py_DECREF(g);
  lua_close(L);
  if (Py_FinalizeEx() < 0) return 1;
  rill_loop_free(loop);
  return 0;
}
