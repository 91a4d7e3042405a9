/* rill_errors.h - the one exception table of the bindings.
 *
 * Every code of RILL_ERRNO_MAP (rill.h) gets one entry per language, the
 * name of what that language raises (or, for Lua, the error's name):
 *
 *   RILL_PY_CLASS(ETIMEDOUT)   "TimeoutError"
 *   RILL_LUA_NAME(ETIMEDOUT)   "RILL_ETIMEDOUT"
 *   RILL_RB_CLASS(ETIMEDOUT)   "Rill::TimeoutError"
 *
 * A language's entry for a code is a macro RILL_PY_<code>, RILL_LUA_<code>
 * or RILL_RB_<code> below, written `~, "name"`; a code without one takes
 * that language's default column (RILL_PY_DEFAULT, ...). So a code added to
 * RILL_ERRNO_MAP maps at once (to the default), and an entry written for a
 * code another branch has not added yet is simply unused.
 *
 * As an X-macro with every column:
 *   #define ROW(name_string, code, text, py, lua, rb) ...
 *   #define RILL_ERROR_ROW ROW
 *   RILL_ERRNO_MAP(RILL_BINDING_ERROR_ROW)
 * or by code: rill_python_class(code), rill_lua_name(code),
 * rill_ruby_class(code) (the default for a code not in the table).
 *
 * Names are resolved by each binding once, at load: a dotted Python name is
 * module.attribute ("asyncio.CancelledError"), a bare one a builtin; a Ruby
 * name is a constant path ("Errno::EPIPE"). Each binding's tests check
 * every code of the table against its own classes. Header only. */
#ifndef RILL_BINDINGS_ERRORS_H
#define RILL_BINDINGS_ERRORS_H

#include "rill.h"

/* ---- the columns' defaults ---- */
#define RILL_PY_DEFAULT "rill.Error"
#define RILL_RB_DEFAULT "Rill::Error"
/* Lua raises error values {code=, name=, message=}; the name defaults to
 * the code's symbolic name. */

/* ---- Python ---- */
#define RILL_PY_EINVAL ~, "ValueError"
#define RILL_PY_ESTATE ~, "asyncio.InvalidStateError"
#define RILL_PY_ECLOSED ~, "RuntimeError"
#define RILL_PY_ENOMEM ~, "MemoryError"
#define RILL_PY_ECANCELLED ~, "asyncio.CancelledError"
#define RILL_PY_ETIMEDOUT ~, "TimeoutError"
#define RILL_PY_EBUSY ~, "RuntimeError"
#define RILL_PY_ETYPE ~, "TypeError"
#define RILL_PY_EINTR ~, "InterruptedError"
#define RILL_PY_ESYS ~, "OSError"
/* I/O, DNS, processes (codes of 1.1) */
#define RILL_PY_ECONNREFUSED ~, "ConnectionRefusedError"
#define RILL_PY_ECONNRESET ~, "ConnectionResetError"
#define RILL_PY_ECONNABORTED ~, "ConnectionAbortedError"
#define RILL_PY_EPIPE ~, "BrokenPipeError"
#define RILL_PY_ENOTCONN ~, "ConnectionError"
#define RILL_PY_EADDRINUSE ~, "OSError"
#define RILL_PY_EADDRNOTAVAIL ~, "OSError"
#define RILL_PY_EHOSTUNREACH ~, "OSError"
#define RILL_PY_ENETUNREACH ~, "OSError"
#define RILL_PY_EMFILE ~, "OSError"
#define RILL_PY_EBADF ~, "OSError"
#define RILL_PY_EACCES ~, "PermissionError"
#define RILL_PY_ENOENT ~, "FileNotFoundError"
#define RILL_PY_ENOHOST ~, "socket.gaierror"
#define RILL_PY_EDNS ~, "socket.gaierror"
#define RILL_PY_EINCOMPLETE ~, "asyncio.IncompleteReadError"
#define RILL_PY_ELIMIT ~, "asyncio.LimitOverrunError"
#define RILL_PY_ESPAWN ~, "OSError"
/* sync primitives (1.1): asyncio's classes; QueueShutDown is asyncio 3.13's,
 * defined by the rill module for older Pythons */
#define RILL_PY_EBROKEN ~, "asyncio.BrokenBarrierError"
#define RILL_PY_EEMPTY ~, "asyncio.QueueEmpty"
#define RILL_PY_EFULL ~, "asyncio.QueueFull"
#define RILL_PY_ESHUTDOWN ~, "rill.QueueShutDown"
#define RILL_PY_ENOTLOCKED ~, "RuntimeError"
#define RILL_PY_ETOOMANY ~, "ValueError"

/* ---- Ruby ---- */
#define RILL_RB_EINVAL ~, "ArgumentError"
#define RILL_RB_ENOMEM ~, "NoMemoryError"
#define RILL_RB_ECANCELLED ~, "Rill::CancelledError"
#define RILL_RB_ETIMEDOUT ~, "Rill::TimeoutError"
#define RILL_RB_ETYPE ~, "TypeError"
#define RILL_RB_EINTR ~, "Interrupt"
#define RILL_RB_ECONNREFUSED ~, "Errno::ECONNREFUSED"
#define RILL_RB_ECONNRESET ~, "Errno::ECONNRESET"
#define RILL_RB_ECONNABORTED ~, "Errno::ECONNABORTED"
#define RILL_RB_EPIPE ~, "Errno::EPIPE"
#define RILL_RB_ENOTCONN ~, "Errno::ENOTCONN"
#define RILL_RB_EADDRINUSE ~, "Errno::EADDRINUSE"
#define RILL_RB_EADDRNOTAVAIL ~, "Errno::EADDRNOTAVAIL"
#define RILL_RB_EHOSTUNREACH ~, "Errno::EHOSTUNREACH"
#define RILL_RB_ENETUNREACH ~, "Errno::ENETUNREACH"
#define RILL_RB_EMFILE ~, "Errno::EMFILE"
#define RILL_RB_EBADF ~, "Errno::EBADF"
#define RILL_RB_EACCES ~, "Errno::EACCES"
#define RILL_RB_ENOENT ~, "Errno::ENOENT"
#define RILL_RB_ENOHOST ~, "SocketError"
#define RILL_RB_EDNS ~, "SocketError"
#define RILL_RB_EINCOMPLETE ~, "EOFError"
/* sync primitives (1.1): what Thread::Queue, SizedQueue and Mutex raise */
#define RILL_RB_EEMPTY ~, "ThreadError"
#define RILL_RB_EFULL ~, "ThreadError"
#define RILL_RB_ESHUTDOWN ~, "ClosedQueueError"
#define RILL_RB_ENOTLOCKED ~, "ThreadError"
#define RILL_RB_EBROKEN ~, "Rill::BrokenBarrierError"

/* ---- Lua: names other than the symbolic one (none yet) ---- */

/* ---- machinery: `~, "x"` picks "x", an undefined entry the default ---- */
#define RILL__ERRCOL_SECOND(a, b, ...) b
#define RILL__ERRCOL_PICK(...) RILL__ERRCOL_SECOND(__VA_ARGS__)
#define RILL__ERRCOL(entry, dflt) RILL__ERRCOL_PICK(entry, dflt, ~)

#define RILL_PY_CLASS(name) RILL__ERRCOL(RILL_PY_##name, RILL_PY_DEFAULT)
#define RILL_LUA_NAME(name) RILL__ERRCOL(RILL_LUA_##name, "RILL_" #name)
#define RILL_RB_CLASS(name) RILL__ERRCOL(RILL_RB_##name, RILL_RB_DEFAULT)

/* The X-macro row with every column; define RILL_ERROR_ROW first. Its
 * first column is the name as a string ("EINVAL"): the bare token would be
 * expanded on the way, EINVAL being errno.h's macro too. */
#define RILL_BINDING_ERROR_ROW(name, code, text)                                        \
  RILL_ERROR_ROW(#name, code, text, RILL__ERRCOL(RILL_PY_##name, RILL_PY_DEFAULT),       \
                 RILL__ERRCOL(RILL_LUA_##name, "RILL_" #name),                          \
                 RILL__ERRCOL(RILL_RB_##name, RILL_RB_DEFAULT))

/* ---- lookups by code ---- */
#define RILL__ERRCOL_PY_CASE(name, code, text) \
  case code:                                   \
    return RILL__ERRCOL(RILL_PY_##name, RILL_PY_DEFAULT);
#define RILL__ERRCOL_LUA_CASE(name, code, text) \
  case code:                                    \
    return RILL__ERRCOL(RILL_LUA_##name, "RILL_" #name);
#define RILL__ERRCOL_RB_CASE(name, code, text) \
  case code:                                   \
    return RILL__ERRCOL(RILL_RB_##name, RILL_RB_DEFAULT);

/* What Python raises for code (RILL_PY_DEFAULT for codes not in the table,
 * application codes included). */
static inline const char *rill_python_class(int code) {
  switch (code) { RILL_ERRNO_MAP(RILL__ERRCOL_PY_CASE) }
  return RILL_PY_DEFAULT;
}
/* The name of Lua's error value for code ("RILL_EAPP" outside the table). */
static inline const char *rill_lua_name(int code) {
  switch (code) { RILL_ERRNO_MAP(RILL__ERRCOL_LUA_CASE) }
  return "RILL_EAPP";
}
/* What Ruby raises for code (RILL_RB_DEFAULT outside the table). */
static inline const char *rill_ruby_class(int code) {
  switch (code) { RILL_ERRNO_MAP(RILL__ERRCOL_RB_CASE) }
  return RILL_RB_DEFAULT;
}

#endif /* RILL_BINDINGS_ERRORS_H */
