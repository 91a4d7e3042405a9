/* bindings/lua/src/io.c - Sockets (TCP, Unix, UDP), fd readiness, DNS,
 * signals, processes and loop stepping over the core's I/O (issue 14).
 *
 * Thin, as the other concern files: every rule (buffering, read limits,
 * connect attempts, reaping, signal delivery) is the core's. A call that
 * waits starts the core's operation here and returns its future (and,
 * with a timeout, the rill_wait_for future over it) to rill.lua, which
 * awaits it with coroutine.yield(OP_AWAIT, f) like any future; a second
 * call (the finish functions) converts the outcome.
 *
 * Errors, Lua's I/O idiom: an I/O failure is returned as nil, message,
 * code (code: the rill code, rill.ECONNREFUSED ...); argument errors
 * raise; a cancel of the task raises its cancel error (rill.lua). End of
 * stream is a plain nil, as io.read's.
 *
 * Objects: a socket owns one reference of a rill_stream (its __gc closes
 * it gracefully and releases it), a server one of a rill_listener, a UDP
 * endpoint one of a rill_udp, a process one of a rill_process, a signal
 * handle one of a rill_signal (the watcher runs until :cancel() or loop
 * close). core.io() hands rill.lua the functions and the metatables. */
#include "rill_lua.h"
#include <errno.h>
#include <lualib.h>
#include <netdb.h>
#include <sys/socket.h>
#include <sys/un.h>

static const char RL_SOCK_MT = 0;
static const char RL_SERVER_MT = 0;
static const char RL_UDP_MT = 0;
static const char RL_PROC_MT = 0;
static const char RL_SIG_MT = 0;

#define RL_LINE_LIMIT_DEFAULT (64 * 1024)

#ifdef RL_LUA51
#define rl_rawlen(L, idx) lua_objlen((L), (idx))
#else
#define rl_rawlen(L, idx) lua_rawlen((L), (idx))
#endif

typedef struct rl_sock {
  rill_stream *s;
  size_t limit; /* read("l") limit */
} rl_sock;
typedef struct rl_server { rill_listener *l; } rl_server;
typedef struct rl_udpu { rill_udp *u; } rl_udpu;
typedef struct rl_proc { rill_process *p; } rl_proc;
typedef struct rl_sig { rill_signal *s; } rl_sig;

/* ---- helpers ----------------------------------------------------------- */

/* Pushes nil, message, code (Lua's I/O failure); returns 3. */
static int rl_fail(lua_State *L, int code, const char *message) {
  lua_pushnil(L);
  lua_pushstring(L, message && *message ? message : rill_strerror(code));
  lua_pushinteger(L, code);
  return 3;
}

static int rl_fail_last(lua_State *L) {
  int code = rill_last_error();
  if (code >= 0) code = RILL_ESYS;
  return rl_fail(L, code, rl_message_of(code));
}

static int rl_fail_future(lua_State *L, rill_future *f) {
  int code = rill_future_error(f);
  if (code >= 0) code = RILL_ESTATE;
  return rl_fail(L, code, rill_future_error_message(f));
}

static rl_ctx *rl_io_ctx(lua_State *L, const char *what) { return rl_need_ctx(L, what); }

/* A timeout argument: nil / absent / negative -> RILL_FOREVER. */
static double rl_opt_timeout(lua_State *L, int idx) {
  double t;
  if (lua_isnoneornil(L, idx)) return RILL_FOREVER;
  if (lua_type(L, idx) != LUA_TNUMBER) return (double)rl_typeerror(L, idx, "number or nil (timeout)");
  t = lua_tonumber(L, idx);
  if (t != t) return (double)luaL_argerror(L, idx, "timeout is NaN");
  return t < 0 ? RILL_FOREVER : t;
}

static int rl_checkport(lua_State *L, int idx, int allow0) {
  lua_Integer p;
  if (!rl_isinteger(L, idx)) return rl_typeerror(L, idx, "integer port");
  p = lua_tointeger(L, idx);
  if (p < (allow0 ? 0 : 1) || p > 65535) return luaL_argerror(L, idx, "port out of range");
  return (int)p;
}

/* Pushes f (a new reference, taken over; NULL raises the core's error),
 * then, if timeout is finite, the rill_wait_for future over it. Returns
 * the number pushed (1 or 2): rill.lua awaits the last one and gives both
 * to the finish function. */
static int rl_push_op(lua_State *L, rill_loop *loop, rill_future *f, double timeout) {
  rl_fut *u = rl_newfut(L);
  rill_future *w;
  if (!f) { /* bad input raises; an I/O failure (EBADF, ENOHOST, ENOTCONN, ...) is an outcome */
    int code = rill_last_error();
    char msg[512];
    if (code >= 0) code = RILL_ESYS;
    if (code == RILL_EINVAL || !loop || !(f = rill_future_new(loop))) {
      lua_pop(L, 1);
      rill_lua_push_error(L, code, rl_message_of(code));
      return lua_error(L);
    }
    snprintf(msg, sizeof msg, "%s", rill_last_error() == code ? rill_last_error_message() : rill_strerror(code));
    rill_future_fail(f, code, msg, NULL, NULL, NULL);
  }
  u->f = f;
  if (isinf(timeout) || rill_future_done(f) == 1) return 1;
  u = rl_newfut(L);
  if (!(w = rill_wait_for(loop, f, timeout))) return rl_raise_last(L);
  u->f = w;
  return 2;
}

/* The outcome of an op: f (the operation) and w (f or its wait_for, at
 * idx + 1 if present). 1 if f is DONE, else pushes nil, msg, code and
 * returns 0 (a timeout of w is a timeout). */
static int rl_op_outcome(lua_State *L, int idx, rill_future **fp) {
  rill_future *f = rl_checkfut(L, idx), *w = f;
  if (!lua_isnoneornil(L, idx + 1)) w = rl_checkfut(L, idx + 1);
  *fp = f;
  if (rill_future_done(w) != 1) return luaL_error(L, "the operation is not done yet"), 0;
  if (rill_future_state(f) == RILL_DONE) return 1;
  if (w != f && rill_future_state(w) == RILL_FAILED && rill_future_error(w) == RILL_ETIMEDOUT) {
    rl_fail(L, RILL_ETIMEDOUT, "timed out");
    return 0;
  }
  if (rill_future_state(f) == RILL_CANCELLED || rill_future_state(f) == RILL_PENDING) {
    /* a cancel (of the task, or at loop shutdown) propagates: raised */
    const char *msg = rill_future_state(f) == RILL_CANCELLED ? rill_future_error_message(f) : NULL;
    rill_lua_push_error(L, RILL_ECANCELLED, msg);
    lua_error(L);
  }
  rl_fail_future(L, f);
  return 0;
}

/* ---- sockets ----------------------------------------------------------- */

static rl_sock *rl_checksock(lua_State *L, int idx) {
  rl_sock *u = (rl_sock *)rl_testudata(L, idx, &RL_SOCK_MT);
  if (!u) rl_typeerror(L, idx, "rill.Socket");
  return u;
}

/* A socket that is still usable (not closed by :close()). */
static rill_stream *rl_sockstream(lua_State *L, int idx) {
  rl_sock *u = rl_checksock(L, idx);
  if (!u->s) {
    rill_lua_push_error(L, RILL_ENOTCONN, "attempt to use a closed socket");
    lua_error(L);
  }
  return u->s;
}

static int rl_sock_gc(lua_State *L) {
  rl_sock *u = (rl_sock *)lua_touserdata(L, 1);
  if (u && u->s) {
    rill_stream *s = u->s;
    u->s = NULL;
    if (rill_stream_is_closing(s) == 0) rill_stream_close(s);
    rill_stream_release(s);
  }
  return 0;
}

/* Pushes a socket owning s (a reference, taken over). */
static void rl_pushsock(lua_State *L, rill_stream *s) {
  rl_sock *u = (rl_sock *)lua_newuserdatauv(L, sizeof *u, 0);
  u->s = NULL;
  u->limit = RL_LINE_LIMIT_DEFAULT;
  lua_rawgetp(L, LUA_REGISTRYINDEX, &RL_SOCK_MT);
  lua_setmetatable(L, -2);
  u->s = s;
}

/* io.tcp_connect(host|nil, port, timeout) -> f */
static int rl_tcp_connect(lua_State *L) {
  rl_ctx *c = rl_io_ctx(L, "tcp.connect");
  const char *host = luaL_optstring(L, 1, NULL);
  int port = rl_checkport(L, 2, 0);
  double t = rl_opt_timeout(L, 3);
  return rl_push_op(L, c->loop, rill_tcp_connect(c->loop, host, port, t), RILL_FOREVER);
}

/* io.unix_connect(path, timeout) -> f */
static int rl_unix_connect(lua_State *L) {
  rl_ctx *c = rl_io_ctx(L, "unix.connect");
  const char *path = luaL_checkstring(L, 1);
  double t = rl_opt_timeout(L, 2);
  return rl_push_op(L, c->loop, rill_unix_connect(c->loop, path, t), RILL_FOREVER);
}

/* io.connected(f [, w]) -> socket | nil, msg, code (a connect or accept) */
static int rl_connected(lua_State *L) {
  rill_future *f;
  rill_stream *s;
  if (!rl_op_outcome(L, 1, &f)) return 3;
  if (!(s = rill_future_stream(f))) return rl_fail_last(L);
  rl_pushsock(L, s);
  return 1;
}

/* io.read_line(sock, timeout) -> f [, w] */
static int rl_read_line(lua_State *L) {
  rl_sock *u = rl_checksock(L, 1);
  rill_stream *s = rl_sockstream(L, 1);
  double t = rl_opt_timeout(L, 2);
  return rl_push_op(L, rill_stream_loop(s), rill_stream_read_until(s, "\n", 1, u->limit), t);
}

static size_t rl_checksize(lua_State *L, int idx) {
  lua_Integer n;
  if (!rl_isinteger(L, idx)) return (size_t)rl_typeerror(L, idx, "integer count");
  n = lua_tointeger(L, idx);
  if (n < 0) return (size_t)luaL_argerror(L, idx, "negative count");
  return (size_t)n;
}

/* io.read_exactly(sock, n, timeout) -> f [, w] */
static int rl_read_exactly(lua_State *L) {
  rill_stream *s = rl_sockstream(L, 1);
  size_t n = rl_checksize(L, 2);
  double t = rl_opt_timeout(L, 3);
  return rl_push_op(L, rill_stream_loop(s), rill_stream_read_exactly(s, n), t);
}

/* io.read_some(sock, n, timeout, after_wait) -> the bytes buffered (up to
 * n), else f [, w]: a rill_stream_wait_readable (then rill.lua calls again
 * with after_wait), or after a wait that left nothing buffered (end of
 * stream, a failure) a read of up to n bytes, which gives "" or the
 * failure. Bytes go straight from the stream's buffer into the Lua string
 * (peek + consume): no copy into a future, whose 64 KiB buffers made a
 * quarter of W4's 64 KiB profile (malloc + first touch). */
static int rl_read_some(lua_State *L) {
  rill_stream *s = rl_sockstream(L, 1);
  size_t n = rl_checksize(L, 2), len = 0;
  double t = rl_opt_timeout(L, 3);
  const char *p;
  if (n == 0) return luaL_argerror(L, 2, "count must be > 0");
  if ((p = (const char *)rill_stream_peek(s, &len)) != NULL && len > 0) {
    if (len > n) len = n;
    lua_pushlstring(L, p, len); /* (no call on s in between: p stays valid) */
    rill_stream_consume(s, len);
    return 1;
  }
  if (lua_toboolean(L, 4) || rill_stream_at_eof(s) == 1)
    return rl_push_op(L, rill_stream_loop(s), rill_stream_read(s, n), t);
  return rl_push_op(L, rill_stream_loop(s), rill_stream_wait_readable(s), t);
}

/* io.bytes(f, w, chop) -> string | nil (end of stream) | nil, msg, code.
 * An early end of stream gives the partial data if there is some (io's
 * last line without "\n", io.read(n)'s short count); chop drops a final
 * "\n" (read "l"). */
static int rl_bytes(lua_State *L) {
  rill_future *f;
  const char *p;
  size_t len = 0;
  int chop = lua_toboolean(L, 3);
  if (!rl_op_outcome(L, 1, &f)) {
    if (rill_future_error(f) != RILL_EINCOMPLETE) return 3;
    lua_pop(L, 3);
    p = (const char *)rill_stream_error_partial(f, &len);
    if (!p || !len) {
      lua_pushnil(L);
      return 1;
    }
    lua_pushlstring(L, p, len);
    return 1;
  }
  p = (const char *)rill_future_bytes(f, &len);
  if (!p) len = 0;
  if (len == 0 && !lua_toboolean(L, 4)) { /* read_some: "" is the end of stream */
    lua_pushnil(L);
    return 1;
  }
  if (chop && len && p[len - 1] == '\n') len--;
  lua_pushlstring(L, p ? p : "", len);
  return 1;
}

/* io.status(f, w) -> true | nil, msg, code */
static int rl_status(lua_State *L) {
  rill_future *f;
  if (!rl_op_outcome(L, 1, &f)) return 3;
  lua_pushboolean(L, 1);
  return 1;
}

/* io.write(sock, ...) -> sock | nil, msg, code */
static int rl_sock_write(lua_State *L) {
  rill_stream *s = rl_sockstream(L, 1);
  int i, n = lua_gettop(L);
  for (i = 2; i <= n; i++) {
    size_t len;
    const char *p;
    int rc;
    if (lua_type(L, i) != LUA_TSTRING && lua_type(L, i) != LUA_TNUMBER) return rl_typeerror(L, i, "string");
    p = lua_tolstring(L, i, &len);
    if (len && (rc = rill_stream_write(s, p, len)) < 0) return rl_fail(L, rc, rl_message_of(rc));
  }
  lua_settop(L, 1);
  return 1;
}

/* io.drain(sock, timeout) -> f [, w] */
static int rl_sock_drain(lua_State *L) {
  rill_stream *s = rl_sockstream(L, 1);
  double t = rl_opt_timeout(L, 2);
  return rl_push_op(L, rill_stream_loop(s), rill_stream_drain(s), t);
}

static int rl_sock_shutdown(lua_State *L) {
  rill_stream *s = rl_sockstream(L, 1);
  const char *how = luaL_optstring(L, 2, "w");
  int rc;
  if (strcmp(how, "w") != 0 && strcmp(how, "send") != 0)
    return luaL_argerror(L, 2, "only \"w\" (the write side) can be shut down");
  if ((rc = rill_stream_write_eof(s)) < 0) return rl_fail(L, rc, rl_message_of(rc));
  lua_pushboolean(L, 1);
  return 1;
}

/* io.close(sock [, abort]) -> true: flushes what was written, then closes
 * (abort: at once, discarding buffers). Closing twice is harmless. */
static int rl_sock_close(lua_State *L) {
  rl_sock *u = rl_checksock(L, 1);
  if (u->s) {
    rill_stream *s = u->s;
    u->s = NULL;
    if (lua_toboolean(L, 2)) rill_stream_abort(s);
    else if (rill_stream_is_closing(s) == 0) rill_stream_close(s);
    rill_stream_release(s);
  }
  lua_pushboolean(L, 1);
  return 1;
}

static int rl_sock_closed(lua_State *L) {
  rl_sock *u = rl_checksock(L, 1);
  lua_pushboolean(L, !u->s || rill_stream_is_closing(u->s) != 0);
  return 1;
}

static int rl_sock_name(lua_State *L, int peer) {
  rill_stream *s = rl_sockstream(L, 1);
  char buf[512];
  int rc = peer ? rill_stream_peer_name(s, buf, sizeof buf) : rill_stream_local_name(s, buf, sizeof buf);
  if (rc < 0) return rl_fail(L, rc, rl_message_of(rc));
  lua_pushstring(L, buf);
  return 1;
}
static int rl_sock_peername(lua_State *L) { return rl_sock_name(L, 1); }
static int rl_sock_sockname(lua_State *L) { return rl_sock_name(L, 0); }

static int rl_sock_fd(lua_State *L) {
  rl_sock *u = rl_checksock(L, 1);
  lua_pushinteger(L, u->s ? rill_stream_fd(u->s) : -1);
  return 1;
}

/* io.setlimit(sock, n): the read("l") limit (also the stream's buffer limit). */
static int rl_sock_setlimit(lua_State *L) {
  rl_sock *u = rl_checksock(L, 1);
  size_t n = rl_checksize(L, 2);
  if (n == 0) return luaL_argerror(L, 2, "limit must be > 0");
  u->limit = n;
  if (u->s) rill_stream_set_read_limit(u->s, n);
  return 0;
}

static int rl_sock_setnodelay(lua_State *L) {
  rill_stream *s = rl_sockstream(L, 1);
  int rc = rill_stream_set_nodelay(s, lua_toboolean(L, 2));
  if (rc < 0) return rl_fail(L, rc, rl_message_of(rc));
  lua_pushboolean(L, 1);
  return 1;
}

/* io.buffered(sock) -> bytes waiting in the write buffer */
static int rl_sock_buffered(lua_State *L) {
  rill_stream *s = rl_sockstream(L, 1);
  long long n = rill_stream_write_buffered(s);
  lua_pushinteger(L, n < 0 ? 0 : (lua_Integer)n);
  return 1;
}

/* ---- servers ----------------------------------------------------------- */

static rl_server *rl_checkserver(lua_State *L, int idx) {
  rl_server *u = (rl_server *)rl_testudata(L, idx, &RL_SERVER_MT);
  if (!u) rl_typeerror(L, idx, "rill.Server");
  if (!u->l) {
    rill_lua_push_error(L, RILL_ENOTCONN, "attempt to use a closed server");
    lua_error(L);
  }
  return u;
}

static int rl_server_gc(lua_State *L) {
  rl_server *u = (rl_server *)lua_touserdata(L, 1);
  if (u && u->l) {
    rill_listener *l = u->l;
    u->l = NULL;
    rill_listener_close(l);
    rill_listener_release(l);
  }
  return 0;
}

static int rl_pushserver(lua_State *L, rill_listener *l) {
  rl_server *u;
  if (!l) return rl_fail_last(L);
  u = (rl_server *)lua_newuserdatauv(L, sizeof *u, 0);
  u->l = l;
  lua_rawgetp(L, LUA_REGISTRYINDEX, &RL_SERVER_MT);
  lua_setmetatable(L, -2);
  return 1;
}

/* io.tcp_listen(host|nil, port, backlog, reuseport) -> server | nil, msg, code */
static int rl_tcp_listen(lua_State *L) {
  rl_ctx *c = rl_io_ctx(L, "tcp.listen");
  const char *host = luaL_optstring(L, 1, NULL);
  int port = rl_checkport(L, 2, 1);
  int backlog = (int)luaL_optinteger(L, 3, 0);
  unsigned flags = lua_toboolean(L, 4) ? RILL_LISTEN_REUSEPORT : 0u;
  return rl_pushserver(L, rill_tcp_listen(c->loop, host, port, backlog, flags));
}

/* io.unix_listen(path, backlog) -> server | nil, msg, code */
static int rl_unix_listen(lua_State *L) {
  rl_ctx *c = rl_io_ctx(L, "unix.listen");
  const char *path = luaL_checkstring(L, 1);
  int backlog = (int)luaL_optinteger(L, 2, 0);
  return rl_pushserver(L, rill_unix_listen(c->loop, path, backlog));
}

/* io.accept(server, timeout) -> f [, w] */
static int rl_server_accept(lua_State *L) {
  rl_server *u = rl_checkserver(L, 1);
  double t = rl_opt_timeout(L, 2);
  rl_ctx *c = rl_io_ctx(L, "Server:accept");
  return rl_push_op(L, c->loop, rill_listener_accept(u->l), t);
}

static int rl_server_close(lua_State *L) {
  rl_server *u = (rl_server *)rl_testudata(L, 1, &RL_SERVER_MT);
  if (!u) return rl_typeerror(L, 1, "rill.Server");
  rl_server_gc(L);
  lua_pushboolean(L, 1);
  return 1;
}

static int rl_server_closed(lua_State *L) {
  rl_server *u = (rl_server *)rl_testudata(L, 1, &RL_SERVER_MT);
  if (!u) return rl_typeerror(L, 1, "rill.Server");
  lua_pushboolean(L, u->l == NULL);
  return 1;
}

/* io.server_name(server) -> host, port ("127.0.0.1", 8080); Unix: path */
static int rl_server_name(lua_State *L) {
  rl_server *u = rl_checkserver(L, 1);
  int fd = rill_listener_fd(u->l);
  struct sockaddr_storage ss;
  socklen_t len = sizeof ss;
  char host[NI_MAXHOST], serv[NI_MAXSERV];
  if (fd < 0) return rl_fail(L, fd, rl_message_of(fd));
  if (getsockname(fd, (struct sockaddr *)&ss, &len) != 0) return rl_fail(L, RILL_ESYS, strerror(errno));
  if (ss.ss_family == AF_UNIX) {
    const struct sockaddr_un *sa = (const struct sockaddr_un *)&ss;
    lua_pushstring(L, sa->sun_path);
    return 1;
  }
  if (getnameinfo((struct sockaddr *)&ss, len, host, sizeof host, serv, sizeof serv,
                  NI_NUMERICHOST | NI_NUMERICSERV) != 0)
    return rl_fail(L, RILL_ESYS, "getnameinfo failed");
  lua_pushstring(L, host);
  lua_pushinteger(L, rill_listener_port(u->l));
  return 2;
}

static int rl_server_fd(lua_State *L) {
  rl_server *u = rl_checkserver(L, 1);
  lua_pushinteger(L, rill_listener_fd(u->l));
  return 1;
}

/* ---- UDP --------------------------------------------------------------- */

static rl_udpu *rl_checkudp(lua_State *L, int idx) {
  rl_udpu *u = (rl_udpu *)rl_testudata(L, idx, &RL_UDP_MT);
  if (!u) rl_typeerror(L, idx, "rill.UDP");
  if (!u->u) {
    rill_lua_push_error(L, RILL_ENOTCONN, "attempt to use a closed UDP endpoint");
    lua_error(L);
  }
  return u;
}

static int rl_udp_gc(lua_State *L) {
  rl_udpu *u = (rl_udpu *)lua_touserdata(L, 1);
  if (u && u->u) {
    rill_udp *p = u->u;
    u->u = NULL;
    rill_udp_close(p);
    rill_udp_release(p);
  }
  return 0;
}

/* io.udp_open(host|nil, port, reuseport) -> udp | nil, msg, code */
static int rl_udp_open(lua_State *L) {
  rl_ctx *c = rl_io_ctx(L, "udp.bind");
  const char *host = luaL_optstring(L, 1, NULL);
  int port = rl_checkport(L, 2, 1);
  rill_udp *p = rill_udp_open(c->loop, host, port, lua_toboolean(L, 3) ? RILL_LISTEN_REUSEPORT : 0u);
  rl_udpu *u;
  if (!p) return rl_fail_last(L);
  u = (rl_udpu *)lua_newuserdatauv(L, sizeof *u, 0);
  u->u = p;
  lua_rawgetp(L, LUA_REGISTRYINDEX, &RL_UDP_MT);
  lua_setmetatable(L, -2);
  return 1;
}

static int rl_udp_connect(lua_State *L) {
  rl_udpu *u = rl_checkudp(L, 1);
  const char *host = luaL_checkstring(L, 2);
  int port = rl_checkport(L, 3, 0);
  int rc = rill_udp_connect(u->u, host, port);
  if (rc < 0) return rl_fail(L, rc, rl_message_of(rc));
  lua_pushboolean(L, 1);
  return 1;
}

/* io.udp_sendto(udp, data, host|nil, port|nil) -> true | nil, msg, code */
static int rl_udp_sendto(lua_State *L) {
  rl_udpu *u = rl_checkudp(L, 1);
  size_t len;
  const char *p = luaL_checklstring(L, 2, &len);
  const char *host = luaL_optstring(L, 3, NULL);
  int port = host ? rl_checkport(L, 4, 0) : 0;
  int rc = rill_udp_sendto(u->u, p, len, host, port);
  if (rc < 0) return rl_fail(L, rc, rl_message_of(rc));
  lua_pushboolean(L, 1);
  return 1;
}

static int rl_udp_recvfrom(lua_State *L) {
  rl_udpu *u = rl_checkudp(L, 1);
  double t = rl_opt_timeout(L, 2);
  rl_ctx *c = rl_io_ctx(L, "UDP:recvfrom");
  return rl_push_op(L, c->loop, rill_udp_recvfrom(u->u), t);
}

/* io.datagram(f, w) -> data, host, port | nil, msg, code */
static int rl_datagram(lua_State *L) {
  rill_future *f;
  const char *p;
  size_t len = 0;
  char who[300];
  char *colon;
  if (!rl_op_outcome(L, 1, &f)) return 3;
  p = (const char *)rill_future_bytes(f, &len);
  lua_pushlstring(L, p ? p : "", p ? len : 0);
  if (rill_udp_sender(f, who, sizeof who) < 0) return 1;
  if ((colon = strrchr(who, ':')) != NULL) {
    *colon = 0;
    if (who[0] == '[' && colon > who && colon[-1] == ']') {
      colon[-1] = 0;
      lua_pushstring(L, who + 1);
    } else {
      lua_pushstring(L, who);
    }
    lua_pushinteger(L, atoi(colon + 1));
    return 3;
  }
  lua_pushstring(L, who);
  return 2;
}

static int rl_udp_port(lua_State *L) {
  lua_pushinteger(L, rill_udp_port(rl_checkudp(L, 1)->u));
  return 1;
}

static int rl_udp_close(lua_State *L) {
  if (!rl_testudata(L, 1, &RL_UDP_MT)) return rl_typeerror(L, 1, "rill.UDP");
  rl_udp_gc(L);
  lua_pushboolean(L, 1);
  return 1;
}

/* ---- fd readiness ------------------------------------------------------ */

/* io.fd_wait(fd, events, timeout) -> f [, w] */
static int rl_fd_wait(lua_State *L) {
  rl_ctx *c = rl_io_ctx(L, "poll");
  lua_Number fd;
  const char *ev = luaL_optstring(L, 2, "r");
  int events = 0;
  double t = rl_opt_timeout(L, 3);
  /* (LuaSocket's getfd() gives a float) */
  if (lua_type(L, 1) != LUA_TNUMBER) return rl_typeerror(L, 1, "integer fd");
  fd = lua_tonumber(L, 1);
  if (fd != floor(fd) || fd < 0 || fd > INT32_MAX) return luaL_argerror(L, 1, "bad fd");
  if (strchr(ev, 'r')) events |= RILL_READABLE;
  if (strchr(ev, 'w')) events |= RILL_WRITABLE;
  if (!events || strspn(ev, "rw") != strlen(ev)) return luaL_argerror(L, 2, "\"r\", \"w\" or \"rw\" expected");
  return rl_push_op(L, c->loop, rill_fd_wait(c->loop, (int)fd, events), t);
}

/* io.ready(f, w) -> "r" | "w" | "rw" | nil, msg, code */
static int rl_ready(lua_State *L) {
  rill_future *f;
  int64_t v = 0;
  char buf[3];
  int n = 0;
  if (!rl_op_outcome(L, 1, &f)) return 3;
  rill_future_int(f, &v);
  if (v & RILL_READABLE) buf[n++] = 'r';
  if (v & RILL_WRITABLE) buf[n++] = 'w';
  lua_pushlstring(L, buf, (size_t)n);
  return 1;
}

/* ---- DNS --------------------------------------------------------------- */

/* io.resolve(name) -> f */
static int rl_resolve(lua_State *L) {
  rl_ctx *c = rl_io_ctx(L, "dns.resolve");
  const char *name = luaL_checkstring(L, 1);
  struct addrinfo hints;
  memset(&hints, 0, sizeof hints);
  hints.ai_socktype = SOCK_STREAM;
  return rl_push_op(L, c->loop, rill_getaddrinfo(c->loop, name, NULL, &hints), RILL_FOREVER);
}

/* io.addresses(f) -> {"127.0.0.1", "::1", ...} | nil, msg, code */
static int rl_addresses(lua_State *L) {
  rill_future *f;
  const struct addrinfo *ai;
  int n = 0;
  if (!rl_op_outcome(L, 1, &f)) return 3;
  lua_newtable(L);
  for (ai = rill_future_addrinfo(f); ai; ai = ai->ai_next) {
    char host[NI_MAXHOST];
    int i, dup = 0;
    if (getnameinfo(ai->ai_addr, ai->ai_addrlen, host, sizeof host, NULL, 0, NI_NUMERICHOST) != 0) continue;
    for (i = 1; i <= n && !dup; i++) {
      lua_rawgeti(L, -1, i);
      dup = strcmp(lua_tostring(L, -1), host) == 0;
      lua_pop(L, 1);
    }
    if (dup) continue;
    lua_pushstring(L, host);
    lua_rawseti(L, -2, ++n);
  }
  return 1;
}

/* ---- signals ----------------------------------------------------------- */

static int rl_sig_call(lua_State *L) {
  rl_box *b = (rl_box *)lua_touserdata(L, 1);
  int signum = (int)lua_tointeger(L, 2);
  lua_rawgeti(L, LUA_REGISTRYINDEX, b->ref);
  lua_pushinteger(L, signum);
  lua_call(L, 1, 0);
  return 0;
}

/* A signal arrived: fn(signum) on the loop's driving state, protected; an
 * error goes to the loop's exception handler. */
static void rl_sig_cb(rill_signal *sig, int signum, void *arg) {
  rl_ctx *c = rl_ctx_current();
  lua_State *L;
  (void)sig;
  if (!c || !lua_checkstack((L = c->L), 4)) return;
  lua_pushcfunction(L, rl_sig_call);
  lua_pushlightuserdata(L, arg);
  lua_pushinteger(L, signum);
  if (lua_pcall(L, 2, 0, 0) != LUA_OK) {
    char buf[480];
    snprintf(buf, sizeof buf, "Exception in signal handler: %s", rl_safe_tostring(L, -1));
    lua_pop(L, 2);
    rill_loop_report(c->loop, buf, NULL);
  }
}

static int rl_sig_gc(lua_State *L) {
  rl_sig *u = (rl_sig *)lua_touserdata(L, 1);
  if (u && u->s) {
    rill_signal *s = u->s;
    u->s = NULL;
    rill_signal_release(s); /* (the watcher stays until :cancel() or loop close) */
  }
  return 0;
}

/* io.signal(signum, fn) -> handle */
static int rl_signal(lua_State *L) {
  rl_ctx *c = rl_io_ctx(L, "signal");
  lua_Integer signum = luaL_checkinteger(L, 1);
  rl_sig *u;
  rl_box *b;
  rill_signal *s;
  luaL_checktype(L, 2, LUA_TFUNCTION);
  if (signum <= 0 || signum >= 65) return luaL_argerror(L, 1, "bad signal number");
  u = (rl_sig *)lua_newuserdatauv(L, sizeof *u, 0);
  u->s = NULL;
  lua_rawgetp(L, LUA_REGISTRYINDEX, &RL_SIG_MT);
  lua_setmetatable(L, -2);
  lua_pushvalue(L, 2);
  if (!(b = rl_box_new(L))) return luaL_error(L, "out of memory");
  if (!(s = rill_signal_start(c->loop, (int)signum, rl_sig_cb, b, rl_box_free))) {
    int code = rill_last_error();
    rl_box_free(b);
    rill_lua_push_error(L, code < 0 ? code : RILL_EINVAL, rl_message_of(code));
    return lua_error(L);
  }
  u->s = s;
  /* Watching SIGINT in rill.run takes Ctrl+C over from the main task's
   * cancel (asyncio's add_signal_handler does the same): started first,
   * so that SIGINT keeps rill's handler. */
  if (signum == SIGINT && !c->attached) rill_loop_cancel_on_sigint(c->loop, NULL);
  return 1;
}

static int rl_signal_cancel(lua_State *L) {
  rl_sig *u = (rl_sig *)rl_testudata(L, 1, &RL_SIG_MT);
  if (!u) return rl_typeerror(L, 1, "rill.Signal");
  lua_pushboolean(L, u->s && rill_signal_active(u->s) == 1);
  if (u->s) rill_signal_stop(u->s);
  return 1;
}

/* ---- processes --------------------------------------------------------- */

static rl_proc *rl_checkproc(lua_State *L, int idx) {
  rl_proc *u = (rl_proc *)rl_testudata(L, idx, &RL_PROC_MT);
  if (!u || !u->p) rl_typeerror(L, idx, "rill.Process");
  return u;
}

static int rl_proc_gc(lua_State *L) {
  rl_proc *u = (rl_proc *)lua_touserdata(L, 1);
  if (u && u->p) {
    rill_process *p = u->p;
    u->p = NULL;
    rill_process_release(p);
  }
  return 0;
}

/* Fills a NULL-terminated array of the strings of table idx (array part,
 * or for env, a map's "k=v") in a userdata kept on the stack. */
static const char **rl_strv(lua_State *L, int idx, int is_env) {
  size_t n = 0, i = 0;
  const char **v;
  idx = lua_absindex(L, idx);
  lua_pushnil(L);
  while (lua_next(L, idx)) { n++; lua_pop(L, 1); }
  v = (const char **)lua_newuserdatauv(L, (n + 1) * sizeof *v, 0);
  if (!is_env) {
    size_t len = (size_t)rl_rawlen(L, idx);
    for (i = 0; i < len && i < n; i++) {
      lua_rawgeti(L, idx, (lua_Integer)(i + 1));
      /* strings only (rill.lua converts numbers): a string converted here
       * would not be anchored once popped */
      if (lua_type(L, -1) != LUA_TSTRING)
        luaL_error(L, "argv[%d]: string expected, got %s", (int)(i + 1), luaL_typename(L, -1));
      v[i] = lua_tostring(L, -1);
      lua_pop(L, 1); /* (still referenced by the table) */
    }
    v[i] = NULL;
    return v;
  }
  /* env: strings "k=v" (array) or k = v pairs, copied into a table kept
   * at the userdata's uservalue-free neighbour: a table on the stack */
  lua_newtable(L);
  lua_pushnil(L);
  while (lua_next(L, idx)) {
    if (lua_type(L, -2) == LUA_TSTRING) {
      if (lua_type(L, -1) != LUA_TSTRING && lua_type(L, -1) != LUA_TNUMBER)
        luaL_error(L, "env.%s: string expected, got %s", lua_tostring(L, -2), luaL_typename(L, -1));
      lua_pushfstring(L, "%s=%s", lua_tostring(L, -2), lua_tostring(L, -1));
    } else if (lua_type(L, -1) == LUA_TSTRING) {
      lua_pushvalue(L, -1);
    } else {
      luaL_error(L, "env: \"k=v\" strings or k = v pairs expected");
    }
    v[i] = lua_tostring(L, -1);
    lua_rawseti(L, -4, (lua_Integer)(i + 1));
    lua_pop(L, 1);
    i++;
  }
  v[i] = NULL;
  return v;
}

static int rl_stdio_mode(lua_State *L, int idx, int which) {
  const char *m = luaL_optstring(L, idx, "inherit");
  if (!strcmp(m, "inherit")) return RILL_STDIO_INHERIT;
  if (!strcmp(m, "pipe")) return RILL_STDIO_PIPE;
  if (!strcmp(m, "null")) return RILL_STDIO_DEVNULL;
  if (which == 2 && !strcmp(m, "stdout")) return RILL_STDIO_STDOUT;
  return luaL_argerror(L, idx, "\"pipe\", \"inherit\" or \"null\" expected");
}

/* io.spawn(argv, env|nil, cwd|nil, stdin, stdout, stderr) -> proc | nil, msg, code */
static int rl_proc_spawn(lua_State *L) {
  rl_ctx *c = rl_io_ctx(L, "process.spawn");
  const char **argv, **envp = NULL;
  const char *cwd;
  int stdio[3];
  rill_process *p;
  rl_proc *u;
  luaL_checktype(L, 1, LUA_TTABLE);
  if (!lua_isnoneornil(L, 2)) luaL_checktype(L, 2, LUA_TTABLE);
  cwd = luaL_optstring(L, 3, NULL);
  stdio[0] = rl_stdio_mode(L, 4, 0);
  stdio[1] = rl_stdio_mode(L, 5, 1);
  stdio[2] = rl_stdio_mode(L, 6, 2);
  lua_settop(L, 6);
  argv = rl_strv(L, 1, 0);
  if (!argv[0]) return luaL_argerror(L, 1, "argv is empty");
  if (!lua_isnil(L, 2)) envp = rl_strv(L, 2, 1);
  u = (rl_proc *)lua_newuserdatauv(L, sizeof *u, 0);
  u->p = NULL;
  lua_rawgetp(L, LUA_REGISTRYINDEX, &RL_PROC_MT);
  lua_setmetatable(L, -2);
  if (!(p = rill_process_spawn(c->loop, argv, envp, cwd, stdio))) return rl_fail_last(L);
  u->p = p;
  return 1;
}

/* io.proc_stream(proc, which) -> socket (the pipe) | nil */
static int rl_proc_stream(lua_State *L) {
  rl_proc *u = rl_checkproc(L, 1);
  int which = (int)luaL_checkinteger(L, 2);
  rill_stream *s;
  if (which < 0 || which > 2) return luaL_argerror(L, 2, "0, 1 or 2");
  if (rill_process_fd(u->p, which) < 0) return 0;
  if (!(s = rill_process_stream(u->p, which))) return rl_fail_last(L);
  rl_pushsock(L, s);
  return 1;
}

static int rl_proc_pid(lua_State *L) {
  lua_pushinteger(L, rill_process_pid(rl_checkproc(L, 1)->p));
  return 1;
}

/* io.proc_wait(proc, timeout) -> f [, w] */
static int rl_proc_wait(lua_State *L) {
  rl_proc *u = rl_checkproc(L, 1);
  double t = rl_opt_timeout(L, 2);
  rl_ctx *c = rl_io_ctx(L, "Process:wait");
  return rl_push_op(L, c->loop, rill_process_wait(u->p), t);
}

/* io.int(f, w) -> integer | nil, msg, code */
static int rl_int(lua_State *L) {
  rill_future *f;
  int64_t v = 0;
  if (!rl_op_outcome(L, 1, &f)) return 3;
  rill_future_int(f, &v);
  lua_pushinteger(L, (lua_Integer)v);
  return 1;
}

static int rl_proc_kill(lua_State *L) {
  rl_proc *u = rl_checkproc(L, 1);
  lua_Integer sig = luaL_optinteger(L, 2, SIGTERM);
  int rc;
  if (sig < 0 || sig >= 65) return luaL_argerror(L, 2, "bad signal number");
  if ((rc = rill_process_send_signal(u->p, (int)sig)) < 0) return rl_fail(L, rc, rl_message_of(rc));
  lua_pushboolean(L, 1);
  return 1;
}

static int rl_proc_returncode(lua_State *L) {
  int rc = 0;
  if (rill_process_returncode(rl_checkproc(L, 1)->p, &rc) != 0) return 0;
  lua_pushinteger(L, rc);
  return 1;
}

/* ---- stepping a loop Lua owns (rill.loop) ------------------------------ */

static rill_loop *rl_checkattached(lua_State *L, int idx) {
  rill_loop *loop = rl_toloop(L, idx); /* an attached loop or a loop object */
  if (!loop && !rl_testudata(L, idx, &RL_LOOP_MT)) rl_typeerror(L, idx, "attached loop");
  if (!loop || rill_loop_is_closed(loop) != 0) {
    rill_lua_push_error(L, RILL_ECLOSED, "the loop is closed");
    lua_error(L);
  }
  return loop;
}

/* io.step(loop, timeout) -> true: one iteration, waiting at most timeout */
static int rl_step_loop(lua_State *L) {
  rill_loop *loop = rl_checkattached(L, 1);
  double t = luaL_optnumber(L, 2, 0);
  int rc;
  if (t != t || t < 0) t = 0;
  if ((rc = rill_loop_run_once(loop, t)) < 0) {
    rill_lua_push_error(L, rc, rl_message_of(rc));
    return lua_error(L);
  }
  lua_pushboolean(L, 1);
  return 1;
}

static int rl_pollfd(lua_State *L) {
  int fd = rill_loop_backend_fd(rl_checkattached(L, 1));
  if (fd < 0) return rl_fail(L, fd, rl_message_of(fd));
  lua_pushinteger(L, fd);
  return 1;
}

static int rl_backend_timeout(lua_State *L) {
  double t = rill_loop_backend_timeout(rl_checkattached(L, 1));
  if (isinf(t)) lua_pushnil(L);
  else lua_pushnumber(L, t);
  return 1;
}

/* ---- threads: rill.to_thread(fn, ...) ---------------------------------
 * cqueues' way: a Lua state is not thread-safe, so the job runs in a fresh
 * state (luaL_newstate + the standard libraries) on the loop's pool: fn
 * travels as its string.dump bytecode, arguments and results as copies
 * (nil, booleans, numbers, strings). rill.lua refuses functions with
 * upvalues other than _ENV. An error in fn fails the future with
 * RILL_EEXCEPTION and its message. */
static const char RL_TRES_TAG = 0;

typedef struct rl_tval {
  int type, isint;
  lua_Integer i;
  lua_Number n;
  char *s;
  size_t len;
} rl_tval;

typedef struct rl_tvals {
  int n;
  rl_tval v[];
} rl_tvals;

typedef struct rl_tjob {
  char *code;
  size_t code_len;
  rl_tvals *args;
} rl_tjob;

static void rl_tvals_free(void *p) {
  rl_tvals *t = (rl_tvals *)p;
  if (!t) return;
  for (int k = 0; k < t->n; k++) free(t->v[k].s);
  free(t);
}

static void rl_tjob_free(void *p) {
  rl_tjob *j = (rl_tjob *)p;
  free(j->code);
  rl_tvals_free(j->args);
  free(j);
}

/* Copies the values at first..last of S into a new rl_tvals; NULL with
 * *bad = the position of a value of another type (0: out of memory). */
static rl_tvals *rl_tvals_take(lua_State *S, int first, int last, int *bad) {
  int n = last >= first ? last - first + 1 : 0;
  rl_tvals *t = (rl_tvals *)calloc(1, sizeof *t + (size_t)n * sizeof(rl_tval));
  *bad = 0;
  if (!t) return NULL;
  for (int k = 0; k < n; k++) {
    int idx = first + k;
    rl_tval *v = &t->v[k];
    v->type = lua_type(S, idx);
    switch (v->type) {
    case LUA_TNIL: break;
    case LUA_TBOOLEAN: v->i = lua_toboolean(S, idx); break;
    case LUA_TNUMBER:
      v->isint = rl_isinteger(S, idx);
      v->n = lua_tonumber(S, idx);
#if LUA_VERSION_NUM >= 503
      if (v->isint) v->i = lua_tointeger(S, idx);
#else
      if (v->isint) v->i = (lua_Integer)v->n;
#endif
      break;
    case LUA_TSTRING: {
      const char *s = lua_tolstring(S, idx, &v->len);
      if (!(v->s = (char *)malloc(v->len ? v->len : 1))) {
        t->n = k;
        rl_tvals_free(t);
        return NULL;
      }
      memcpy(v->s, s, v->len);
      break;
    }
    default:
      t->n = k;
      rl_tvals_free(t);
      *bad = k + 1;
      return NULL;
    }
  }
  t->n = n;
  return t;
}

static void rl_tvals_push(lua_State *S, const rl_tvals *t) {
  for (int k = 0; k < t->n; k++) {
    const rl_tval *v = &t->v[k];
    switch (v->type) {
    case LUA_TBOOLEAN: lua_pushboolean(S, (int)v->i); break;
    case LUA_TNUMBER:
      if (v->isint) lua_pushinteger(S, v->i);
      else lua_pushnumber(S, v->n);
      break;
    case LUA_TSTRING: lua_pushlstring(S, v->s, v->len); break;
    default: lua_pushnil(S);
    }
  }
}

/* On a pool thread: never touches the loop's Lua state. */
static void rl_tjob_run(rill_work *w, void *arg) {
  rl_tjob *j = (rl_tjob *)arg;
  char msg[512];
  lua_State *T = luaL_newstate();
  if (!T) {
    rill_work_fail(w, RILL_ENOMEM, "rill.to_thread: no memory for a Lua state", NULL, NULL, NULL);
    return;
  }
  luaL_openlibs(T);
  if (!lua_checkstack(T, j->args->n + 1) ||
      luaL_loadbuffer(T, j->code, j->code_len, "=rill.to_thread") != 0) {
    snprintf(msg, sizeof msg, "rill.to_thread: %s", lua_isstring(T, -1) ? lua_tostring(T, -1) : "cannot load the function");
    rill_work_fail(w, RILL_EEXCEPTION, msg, NULL, NULL, NULL);
  } else {
    int base = lua_gettop(T), bad = 0;
    rl_tvals_push(T, j->args);
    if (lua_pcall(T, j->args->n, LUA_MULTRET, 0) != 0) {
      const char *e = lua_tostring(T, -1);
      snprintf(msg, sizeof msg, "%s", e ? e : "(error object is not a string)");
      rill_work_fail(w, RILL_EEXCEPTION, msg, NULL, NULL, NULL);
    } else {
      rl_tvals *res = rl_tvals_take(T, base, lua_gettop(T), &bad);
      if (res) rill_work_set_pointer(w, res, rl_tvals_free, &RL_TRES_TAG);
      else if (bad) {
        snprintf(msg, sizeof msg, "rill.to_thread: result %d is a %s (only nil, booleans, numbers "
                 "and strings come back)", bad, luaL_typename(T, base + bad - 1));
        rill_work_fail(w, RILL_EEXCEPTION, msg, NULL, NULL, NULL);
      } else rill_work_fail(w, RILL_ENOMEM, "rill.to_thread: out of memory", NULL, NULL, NULL);
    }
  }
  lua_close(T);
}

/* io.to_thread(bytecode, ...) -> future */
static int rl_to_thread(lua_State *L) {
  rl_ctx *c = rl_io_ctx(L, "to_thread");
  size_t len;
  const char *code = luaL_checklstring(L, 1, &len);
  int bad = 0;
  rl_tjob *j = (rl_tjob *)calloc(1, sizeof *j);
  rl_fut *u;
  rill_future *f;
  if (!j || !(j->code = (char *)malloc(len))) {
    free(j);
    return luaL_error(L, "rill.to_thread: out of memory");
  }
  memcpy(j->code, code, len);
  j->code_len = len;
  if (!(j->args = rl_tvals_take(L, 2, lua_gettop(L), &bad))) {
    rl_tjob_free(j);
    if (!bad) return luaL_error(L, "rill.to_thread: out of memory");
    lua_pushfstring(L, "bad argument #%d to 'rill.to_thread' (a %s cannot cross to a thread: "
                    "only nil, booleans, numbers and strings)", bad + 1, luaL_typename(L, bad + 1));
    return lua_error(L);
  }
  u = rl_newfut(L);
  if (!(f = rill_run_in_thread(c->loop, rl_tjob_run, j, rl_tjob_free))) {
    rl_tjob_free(j);
    return rl_raise_last(L);
  }
  u->f = f;
  return 1;
}

/* io.thread_results(f) -> the job's results; raises its error */
static int rl_thread_results(lua_State *L) {
  rill_future *f = rl_checkfut(L, 1);
  rl_tvals *t;
  int st = rill_future_state(f);
  if (st == RILL_CANCELLED || st == RILL_PENDING) {
    rill_lua_push_error(L, RILL_ECANCELLED, st == RILL_CANCELLED ? rill_future_error_message(f) : NULL);
    return lua_error(L);
  }
  if (st != RILL_DONE) {
    const char *m = rill_future_error_message(f);
    int code = rill_future_error(f);
    if (code == RILL_EEXCEPTION) lua_pushstring(L, m ? m : "rill.to_thread: the function failed");
    else rill_lua_push_error(L, code, m);
    return lua_error(L);
  }
  t = (rl_tvals *)rill_future_pointer(f, &RL_TRES_TAG);
  if (!t) return 0;
  luaL_checkstack(L, t->n, "rill.to_thread: too many results");
  rl_tvals_push(L, t);
  return t->n;
}

/* io.in_task() -> true inside a rill task's own coroutine */
static int rl_in_task(lua_State *L) {
  lua_pushboolean(L, rl_running_co && L == rl_running_co);
  return 1;
}

/* ---- registration ------------------------------------------------------ */

static const struct { const char *name; lua_CFunction fn; } rl_io_fns[] = {
  {"tcp_connect", rl_tcp_connect}, {"unix_connect", rl_unix_connect}, {"connected", rl_connected},
  {"read_line", rl_read_line}, {"read_exactly", rl_read_exactly}, {"read_some", rl_read_some},
  {"bytes", rl_bytes}, {"status", rl_status}, {"write", rl_sock_write}, {"drain", rl_sock_drain},
  {"shutdown", rl_sock_shutdown}, {"close", rl_sock_close}, {"closed", rl_sock_closed},
  {"peername", rl_sock_peername}, {"sockname", rl_sock_sockname}, {"getfd", rl_sock_fd},
  {"setlimit", rl_sock_setlimit}, {"setnodelay", rl_sock_setnodelay}, {"buffered", rl_sock_buffered},
  {"tcp_listen", rl_tcp_listen}, {"unix_listen", rl_unix_listen}, {"accept", rl_server_accept},
  {"server_close", rl_server_close}, {"server_closed", rl_server_closed}, {"server_name", rl_server_name}, {"server_fd", rl_server_fd},
  {"udp_open", rl_udp_open}, {"udp_connect", rl_udp_connect}, {"udp_sendto", rl_udp_sendto},
  {"udp_recvfrom", rl_udp_recvfrom}, {"datagram", rl_datagram}, {"udp_port", rl_udp_port},
  {"udp_close", rl_udp_close},
  {"fd_wait", rl_fd_wait}, {"ready", rl_ready},
  {"resolve", rl_resolve}, {"addresses", rl_addresses},
  {"signal", rl_signal}, {"signal_cancel", rl_signal_cancel},
  {"spawn", rl_proc_spawn}, {"proc_stream", rl_proc_stream}, {"proc_pid", rl_proc_pid},
  {"proc_wait", rl_proc_wait}, {"int", rl_int}, {"proc_kill", rl_proc_kill},
  {"proc_returncode", rl_proc_returncode},
  {"step", rl_step_loop}, {"pollfd", rl_pollfd}, {"backend_timeout", rl_backend_timeout},
  {"in_task", rl_in_task}, {"to_thread", rl_to_thread}, {"thread_results", rl_thread_results},
};

static const struct { const void *key; lua_CFunction gc; const char *name, *field; } rl_io_mts[] = {
  {&RL_SOCK_MT, rl_sock_gc, "rill.Socket", "socket"},
  {&RL_SERVER_MT, rl_server_gc, "rill.Server", "server"},
  {&RL_UDP_MT, rl_udp_gc, "rill.UDP", "udp"},
  {&RL_PROC_MT, rl_proc_gc, "rill.Process", "process"},
  {&RL_SIG_MT, rl_sig_gc, "rill.Signal", "signal"},
};

void rl_io_init(lua_State *L) {
  size_t i;
  for (i = 0; i < sizeof rl_io_mts / sizeof rl_io_mts[0]; i++) {
    lua_newtable(L);
    lua_pushcfunction(L, rl_io_mts[i].gc);
    lua_setfield(L, -2, "__gc");
    lua_pushstring(L, rl_io_mts[i].name);
    lua_setfield(L, -2, "__name");
    lua_rawsetp(L, LUA_REGISTRYINDEX, rl_io_mts[i].key);
  }
}

/* core.io() -> {functions..., mt = {socket=, server=, ...}, signals = {INT=2, ...}} */
int rl_io(lua_State *L) {
  size_t i;
  static const struct { const char *name; int num; } sigs[] = {
    {"HUP", SIGHUP}, {"INT", SIGINT}, {"QUIT", SIGQUIT}, {"KILL", SIGKILL}, {"USR1", SIGUSR1},
    {"USR2", SIGUSR2}, {"PIPE", SIGPIPE}, {"ALRM", SIGALRM}, {"TERM", SIGTERM}, {"CHLD", SIGCHLD},
    {"CONT", SIGCONT}, {"STOP", SIGSTOP}, {"WINCH", SIGWINCH},
  };
  lua_newtable(L);
  for (i = 0; i < sizeof rl_io_fns / sizeof rl_io_fns[0]; i++) {
    lua_pushcfunction(L, rl_io_fns[i].fn);
    lua_setfield(L, -2, rl_io_fns[i].name);
  }
  lua_newtable(L);
  for (i = 0; i < sizeof rl_io_mts / sizeof rl_io_mts[0]; i++) {
    lua_rawgetp(L, LUA_REGISTRYINDEX, rl_io_mts[i].key);
    lua_setfield(L, -2, rl_io_mts[i].field);
  }
  lua_setfield(L, -2, "mt");
  lua_newtable(L);
  for (i = 0; i < sizeof sigs / sizeof sigs[0]; i++) {
    lua_pushinteger(L, sigs[i].num);
    lua_setfield(L, -2, sigs[i].name);
  }
  lua_setfield(L, -2, "signals");
  return 1;
}
