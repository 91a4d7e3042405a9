/* io.c - fd readiness (asyncio's add_reader/add_writer and an awaitable
 * one-shot wait), the loop's registry of open I/O objects, I/O errors and
 * numeric addresses.
 *
 * libev only tells us an fd is ready; what runs because of it runs from
 * the ready queue like every other callback. */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <limits.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/un.h>
#include <unistd.h>

#include "io_internal.h"

/* ---------------------------------------------------------------- */
/* Errors                                                             */

static _Thread_local int last_errno;
static _Thread_local int last_errno_code;

int rill_code_from_errno(int e) {
  switch (e) {
  case ECONNREFUSED: return RILL_ECONNREFUSED;
  case ECONNRESET: return RILL_ECONNRESET;
  case EPIPE: return RILL_EPIPE;
  case EADDRINUSE: return RILL_EADDRINUSE;
  case EADDRNOTAVAIL: return RILL_EADDRNOTAVAIL;
  case EHOSTUNREACH: return RILL_EHOSTUNREACH;
  case ENETUNREACH: return RILL_ENETUNREACH;
  case EMFILE:
  case ENFILE: return RILL_EMFILE;
  case ECONNABORTED: return RILL_ECONNABORTED;
  case ENOTCONN: return RILL_ENOTCONN;
  case EBADF: return RILL_EBADF;
  case EACCES:
  case EPERM: return RILL_EACCES;
  case ENOENT: return RILL_ENOENT;
  case ETIMEDOUT: return RILL_ETIMEDOUT;
  case ENOMEM:
  case ENOBUFS: return RILL_ENOMEM;
  case EINVAL: return RILL_EINVAL;
  case EINTR: return RILL_EINTR;
  default: return RILL_ESYS;
  }
}

int rill__fail_errno(int err, const char *fmt, ...) {
  char buf[200];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(buf, sizeof buf, fmt, ap);
  va_end(ap);
  int code = rill_code_from_errno(err);
  rill__fail(code, "%s: %s", buf, strerror(err));
  last_errno = err;
  last_errno_code = code;
  return code;
}

int rill__fail_code_errno(int code, int err, const char *fmt, ...) {
  char buf[300];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(buf, sizeof buf, fmt, ap);
  va_end(ap);
  rill__fail(code, "%s", buf);
  last_errno = err;
  last_errno_code = code;
  return code;
}

int rill_last_error_errno(void) {
  return last_errno && rill_last_error() == last_errno_code ? last_errno : 0;
}

typedef struct io_err {
  int sys_errno;
  size_t len;
  unsigned char data[];
} io_err;
static const char io_err_tag = 0;

void rill__future_fail_io(rill_future *f, int code, int err, const char *msg,
                          const void *partial, size_t partial_len) {
  io_err *p = malloc(sizeof *p + partial_len + 1);
  if (p) {
    p->sys_errno = err;
    p->len = partial_len;
    if (partial_len) memcpy(p->data, partial, partial_len);
    f->payload = p;
    f->free_payload = free;
    f->payload_tag = &io_err_tag;
  }
  rill__future_fail_msg(f, code, msg);
}

int rill_future_error_errno(rill_future *f) {
  if (rill__future_check(f)) return RILL_EINVAL;
  io_err *p = rill_future_error_payload(f, &io_err_tag);
  return p ? p->sys_errno : 0;
}

const void *rill_stream_error_partial(rill_future *f, size_t *len) {
  if (len) *len = 0;
  if (rill__future_check(f)) return NULL;
  if (f->state != RILL_FAILED || f->err != RILL_EINCOMPLETE) return NULL;
  io_err *p = rill_future_error_payload(f, &io_err_tag);
  if (!p) return NULL;
  if (len) *len = p->len;
  return p->data;
}

/* A read's bytes: up to 1 KiB they come from the loop's arena (a read
 * of 100 streams in one iteration is 100 of these, and glibc's per-size
 * cache holds 7), larger ones from malloc. Only the read futures of
 * streams and datagram sockets get these: their value is never moved
 * into a queue (rill__value_from_future stops the process if one is),
 * only freed with the future. */
int rill__future_set_bytes_raw(rill_future *f, const void *data, size_t len) {
  int arena = len && len <= RILL__ARENA_MAX_SMALL;
  /* Past 2 KiB glibc copies with rep movsb, which on AMD Zen runs ~20x
   * slower when (destination - source) mod 64 is 8 to 31 (bench/README.md,
   * "where the kernel reads to matters"): the source is the stream's
   * page-aligned buffer, almost always at offset 0, so the copy starts
   * 64-byte aligned too, not at malloc's 16. */
  void *copy = NULL;
  if (arena)
    copy = rill__alloc(f->loop, len);
  else if (len < 2048)
    copy = malloc(len ? len : 1);
  else if (posix_memalign(&copy, 64, len))
    copy = NULL;
  if (!copy) return rill__future_fail_msg(f, RILL_ENOMEM, "out of memory"), RILL_ENOMEM;
  if (len) memcpy(copy, data, len);
  f->bytes_in_arena = (unsigned char)arena;
  f->kind = RILL_BYTES;
  f->v.bytes.data = copy;
  f->v.bytes.len = len;
  rill__future_finish(f, RILL_DONE);
  return RILL_OK;
}

static void stream_free_value(void *p) { rill_stream_release(p); }

void rill__future_set_stream(rill_future *f, rill_stream *s) {
  f->kind = RILL_POINTER;
  f->v.ptr.p = s;
  f->v.ptr.free_p = stream_free_value;
  f->v.ptr.tag = &rill__stream_tag;
  rill__future_finish(f, RILL_DONE);
}

rill_stream *rill_future_stream(rill_future *f) {
  rill_stream *s = rill_future_pointer(f, &rill__stream_tag);
  return s ? rill_stream_retain(s) : NULL;
}

/* ---------------------------------------------------------------- */
/* Addresses                                                          */

static int parse_one(const char *host, size_t n, int port, rill__addr *out) {
  char h[INET6_ADDRSTRLEN + 8], serv[8];
  if (n >= sizeof h || n == 0) return rill__fail(RILL_ENOHOST, "bad host '%.*s'", (int)(n > 64 ? 64 : n), host);
  memcpy(h, host, n);
  h[n] = 0;
  if (h[0] == '[' && h[n - 1] == ']') { /* [::1] */
    memmove(h, h + 1, n - 2);
    h[n - 2] = 0;
  }
  if (strcmp(h, "localhost") == 0) strcpy(h, "127.0.0.1");
  snprintf(serv, sizeof serv, "%d", port);
  struct addrinfo hints, *res = NULL;
  memset(&hints, 0, sizeof hints);
  hints.ai_flags = AI_NUMERICHOST | AI_NUMERICSERV;
  hints.ai_socktype = SOCK_STREAM;
  int rc = getaddrinfo(h, serv, &hints, &res);
  if (rc != 0 || !res) {
    /* DNS: once io-sys's rill_getaddrinfo is merged, a name that is not
     * numeric is resolved through that future here (the connect and
     * listen paths then continue in its done callback). Until then only
     * numeric hosts work. */
    return rill__fail(RILL_ENOHOST, "cannot resolve host '%s': only numeric addresses are supported", h);
  }
  memcpy(&out->ss, res->ai_addr, res->ai_addrlen);
  out->len = res->ai_addrlen;
  freeaddrinfo(res);
  return RILL_OK;
}

int rill__parse_addrs(const char *host, int port, rill__addr *out, size_t cap) {
  if (port < 0 || port > 65535) return rill__fail(RILL_EINVAL, "port %d out of range", port);
  if (!host) host = "127.0.0.1";
  size_t count = 0;
  const char *p = host;
  for (;;) {
    const char *comma = strchr(p, ',');
    size_t n = comma ? (size_t)(comma - p) : strlen(p);
    while (n && *p == ' ') p++, n--;
    if (count == cap) return rill__fail(RILL_EINVAL, "too many addresses in '%s'", host);
    int rc = parse_one(p, n, port, &out[count]);
    if (rc) return rc;
    count++;
    if (!comma) break;
    p = comma + 1;
  }
  return (int)count;
}

void rill__format_addr(const struct sockaddr *sa, socklen_t len, char *buf, size_t cap) {
  char h[INET6_ADDRSTRLEN];
  if (!cap) return;
  buf[0] = 0;
  if (sa->sa_family == AF_INET) {
    const struct sockaddr_in *in = (const void *)sa;
    inet_ntop(AF_INET, &in->sin_addr, h, sizeof h);
    snprintf(buf, cap, "%s:%d", h, ntohs(in->sin_port));
  } else if (sa->sa_family == AF_INET6) {
    const struct sockaddr_in6 *in6 = (const void *)sa;
    inet_ntop(AF_INET6, &in6->sin6_addr, h, sizeof h);
    snprintf(buf, cap, "[%s]:%d", h, ntohs(in6->sin6_port));
  } else if (sa->sa_family == AF_UNIX) {
    const struct sockaddr_un *un = (const void *)sa;
    size_t n = len > offsetof(struct sockaddr_un, sun_path) ? len - offsetof(struct sockaddr_un, sun_path) : 0;
    if (n > sizeof un->sun_path) n = sizeof un->sun_path;
    snprintf(buf, cap, "%.*s", (int)strnlen(un->sun_path, n), un->sun_path);
  }
}

/* ---------------------------------------------------------------- */
/* The registry                                                       */

static struct rill__io *io_of(rill_loop *loop) {
  if (!loop->io) loop->io = calloc(1, sizeof *loop->io);
  return loop->io;
}

int rill__io_register(rill_loop *loop, rill__io_obj *obj) {
  struct rill__io *io = io_of(loop);
  if (!io) return rill__fail(RILL_ENOMEM, "out of memory");
  obj->prev = NULL;
  obj->next = io->objs;
  if (io->objs) io->objs->prev = obj;
  io->objs = obj;
  return RILL_OK;
}

void rill__io_unregister(rill_loop *loop, rill__io_obj *obj) {
  struct rill__io *io = loop->io;
  if (!io) return;
  if (obj->prev) obj->prev->next = obj->next;
  else if (io->objs == obj) io->objs = obj->next;
  else return; /* not registered */
  if (obj->next) obj->next->prev = obj->prev;
  obj->prev = obj->next = NULL;
}

void rill__io_start(rill_loop *loop, ev_io *w) {
  if (ev_is_active(w)) return;
  ev_io_start(loop->ev, w);
  loop->io_active++;
}

void rill__io_stop(rill_loop *loop, ev_io *w) {
  if (!ev_is_active(w)) return;
  ev_io_stop(loop->ev, w);
  loop->io_active--;
}

int rill__check_fd(int fd) {
  if (fd < 0) return rill__fail(RILL_EBADF, "bad file descriptor %d", fd);
  if (fcntl(fd, F_GETFD) < 0) return rill__fail(RILL_EBADF, "bad file descriptor %d: not open", fd);
  return RILL_OK;
}

/* ---------------------------------------------------------------- */
/* Persistent watchers                                                */

typedef struct rill__fdw {
  int refs; /* the table's + one while queued */
  int removed, queued;
  rill_loop *loop;
  ev_io io;
  rill__node node;
  rill_fn fn;
  void *arg;
  rill_free_fn free_arg;
} rill__fdw;

static void fdw_release(rill__fdw *w) {
  if (--w->refs > 0) return;
  rill_loop *loop = w->loop;
  free(w);
  rill__loop_release(loop);
}

static void fdw_node_run(rill__node *node, int discard) {
  rill__fdw *w = RILL__CONTAINER(node, rill__fdw, node);
  w->queued = 0;
  if (!discard && !w->removed) w->fn(w->arg);
  fdw_release(w);
}

static void fdw_ev_cb(struct ev_loop *ev, ev_io *io, int revents) {
  (void)ev, (void)revents;
  rill__fdw *w = RILL__CONTAINER(io, rill__fdw, io);
  if (w->queued || w->removed) return;
  w->queued = 1;
  w->refs++;
  rill__schedule(w->loop, &w->node);
}

static void fdw_remove(rill__fdw *w) {
  rill__io_stop(w->loop, &w->io);
  w->removed = 1;
  rill_free_fn f = w->free_arg;
  w->free_arg = NULL;
  if (f) f(w->arg);
  fdw_release(w);
}

/* fd got a watcher: rill__io_check_new_fds looks at it before the poll. */
static void note_fresh(struct rill__io *io, int fd) {
  if (io->nfresh == io->fresh_cap) {
    size_t cap = io->fresh_cap ? io->fresh_cap * 2 : 64;
    int *p = realloc(io->fresh, cap * sizeof *p);
    if (!p) {
      io->fresh_lost = 1;
      return;
    }
    io->fresh = p;
    io->fresh_cap = cap;
  }
  io->fresh[io->nfresh++] = fd;
}

static int fd_add(rill_loop *loop, int fd, rill_fn fn, void *arg, rill_free_fn free_arg, int write) {
  int rc = rill__loop_check(loop);
  if (rc) return rc;
  if (!fn) return rill__fail(RILL_EINVAL, "fn is NULL");
  if ((rc = rill__check_fd(fd))) return rc;
  struct rill__io *io = io_of(loop);
  if (!io) return rill__fail(RILL_ENOMEM, "out of memory");
  if ((size_t)fd >= io->cap) {
    size_t cap = io->cap ? io->cap : 64;
    while (cap <= (size_t)fd) cap *= 2;
    rill__fdw **r = realloc(io->readers, cap * sizeof *r);
    if (!r) return rill__fail(RILL_ENOMEM, "out of memory");
    io->readers = r;
    rill__fdw **w = realloc(io->writers, cap * sizeof *w);
    if (!w) return rill__fail(RILL_ENOMEM, "out of memory");
    io->writers = w;
    memset(r + io->cap, 0, (cap - io->cap) * sizeof *r);
    memset(w + io->cap, 0, (cap - io->cap) * sizeof *w);
    io->cap = cap;
  }
  rill__fdw *w = calloc(1, sizeof *w);
  if (!w) return rill__fail(RILL_ENOMEM, "out of memory adding a watcher");
  w->refs = 1;
  w->loop = loop;
  w->fn = fn;
  w->arg = arg;
  w->free_arg = free_arg;
  w->node.run = fdw_node_run;
  rill__loop_retain(loop);
  rill__fdw **slot = write ? &io->writers[fd] : &io->readers[fd];
  if (*slot) fdw_remove(*slot); /* asyncio: the new callback replaces the old */
  *slot = w;
  ev_io_init(&w->io, fdw_ev_cb, fd, write ? EV_WRITE : EV_READ);
  rill__io_start(loop, &w->io);
  note_fresh(io, fd);
  return RILL_OK;
}

static int fd_remove(rill_loop *loop, int fd, int write) {
  int rc = rill__loop_check(loop);
  if (rc) return rc;
  if (fd < 0) return rill__fail(RILL_EBADF, "bad file descriptor %d", fd);
  struct rill__io *io = loop->io;
  if (!io || (size_t)fd >= io->cap) return 0;
  rill__fdw **slot = write ? &io->writers[fd] : &io->readers[fd];
  if (!*slot) return 0;
  rill__fdw *w = *slot;
  *slot = NULL;
  fdw_remove(w);
  return 1;
}

int rill_fd_add_reader(rill_loop *loop, int fd, rill_fn fn, void *arg, rill_free_fn free_arg) {
  return fd_add(loop, fd, fn, arg, free_arg, 0);
}
int rill_fd_add_writer(rill_loop *loop, int fd, rill_fn fn, void *arg, rill_free_fn free_arg) {
  return fd_add(loop, fd, fn, arg, free_arg, 1);
}
int rill_fd_remove_reader(rill_loop *loop, int fd) { return fd_remove(loop, fd, 0); }
int rill_fd_remove_writer(rill_loop *loop, int fd) { return fd_remove(loop, fd, 1); }

/* ---------------------------------------------------------------- */
/* One-shot readiness                                                 */

typedef struct fd_wait {
  rill_future fut;
  ev_io io; /* while armed: holds a reference, counts in io_active */
  int armed;
  struct fd_wait *prev, *next; /* io->waits, while armed */
} fd_wait;

static void fd_wait_stop(fd_wait *w) {
  if (!w->armed) return;
  w->armed = 0;
  rill_loop *loop = w->fut.loop;
  struct rill__io *io = loop->io; /* NULL once the loop closed its I/O */
  if (io) {
    if (w->prev) w->prev->next = w->next;
    else io->waits = w->next;
    if (w->next) w->next->prev = w->prev;
  }
  w->prev = w->next = NULL;
  rill__io_stop(loop, &w->io);
  w->fut.refs--; /* the watcher's; whoever called us holds another */
}

static int fd_wait_cancel(rill_future *f, const char *msg) {
  fd_wait_stop((fd_wait *)f);
  return rill__future_cancel_plain(f, msg);
}
static void fd_wait_close(rill_future *f) { fd_wait_stop((fd_wait *)f); }
static const rill__future_type fd_wait_type = {"fd wait", fd_wait_cancel, NULL, fd_wait_close, NULL};

static void fd_wait_cb(struct ev_loop *ev, ev_io *io, int revents) {
  (void)ev;
  fd_wait *w = RILL__CONTAINER(io, fd_wait, io);
  rill_future *f = &w->fut;
  f->refs++;
  fd_wait_stop(w);
  if (f->state == RILL_PENDING) {
    f->kind = RILL_INT;
    f->v.i = ((revents & EV_READ) ? RILL_READABLE : 0) | ((revents & EV_WRITE) ? RILL_WRITABLE : 0);
    rill__future_finish(f, RILL_DONE);
  }
  rill_future_release(f);
}

/* A wait checks its fd when the loop next polls (rill__io_check_new_fds,
 * one poll(2) for all of an iteration's new watchers), not here: a wait
 * is made per read that would block, and an fcntl each was one syscall
 * in five of a Ruby echo round trip. Past RLIMIT_NOFILE, where an fd is
 * almost never open, fcntl decides now, so a wild number never sizes
 * libev's fd table. */
static int check_wait_fd(struct rill__io *io, int fd) {
  if (fd < 0) return rill__fail(RILL_EBADF, "bad file descriptor %d", fd);
  if (!io->nofile) {
    struct rlimit rl;
    io->nofile = getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < (rlim_t)INT_MAX
                     ? (int)rl.rlim_cur : 1024;
  }
  return fd < io->nofile ? RILL_OK : rill__check_fd(fd);
}

rill_future *rill_fd_wait(rill_loop *loop, int fd, int events) {
  if (rill__loop_check(loop)) return NULL;
  struct rill__io *io = io_of(loop);
  if (!io) {
    rill__fail(RILL_ENOMEM, "out of memory");
    return NULL;
  }
  if (check_wait_fd(io, fd)) return NULL;
  if (events <= 0 || (events & ~(RILL_READABLE | RILL_WRITABLE))) {
    rill__fail(RILL_EINVAL, "events must be RILL_READABLE and/or RILL_WRITABLE");
    return NULL;
  }
  fd_wait *w = (fd_wait *)rill__future_alloc(loop, &fd_wait_type, sizeof(fd_wait));
  if (!w) return NULL;
  memset(&w->io, 0, sizeof w->io);
  ev_io_init(&w->io, fd_wait_cb, fd,
             ((events & RILL_READABLE) ? EV_READ : 0) | ((events & RILL_WRITABLE) ? EV_WRITE : 0));
  w->fut.refs++;
  w->armed = 1;
  w->prev = NULL;
  w->next = io->waits;
  if (io->waits) io->waits->prev = w;
  io->waits = w;
  rill__io_start(loop, &w->io);
  note_fresh(io, fd);
  return &w->fut;
}

/* ---------------------------------------------------------------- */
/* Closed fds under new watchers                                      */

/* fd is not open: stop the caller's watchers on it before libev sees it. */
static void fd_gone(rill_loop *loop, int fd) {
  struct rill__io *io = loop->io;
  io->gone++;
  if ((size_t)fd < io->cap) {
    if (io->readers[fd]) rill__io_stop(loop, &io->readers[fd]->io);
    if (io->writers[fd]) rill__io_stop(loop, &io->writers[fd]->io);
  }
  for (fd_wait *w = io->waits, *next; w; w = next) {
    next = w->next;
    if (w->io.fd != fd) continue;
    rill_future *f = &w->fut;
    f->refs++;
    fd_wait_stop(w);
    if (f->state == RILL_PENDING) {
      char msg[64];
      snprintf(msg, sizeof msg, "bad file descriptor %d: closed while waited on", fd);
      rill__future_fail_io(f, RILL_EBADF, EBADF, msg, NULL, 0);
    }
    rill_future_release(f);
  }
}

static void check_fds(rill_loop *loop, const int *fds, size_t n) {
  struct pollfd p[128];
  while (n) {
    size_t k = n < 128 ? n : 128;
    for (size_t i = 0; i < k; i++) p[i] = (struct pollfd){.fd = fds[i], .events = 0, .revents = 0};
    if (poll(p, k, 0) >= 0) {
      for (size_t i = 0; i < k; i++)
        if (p[i].revents & POLLNVAL) fd_gone(loop, p[i].fd);
    } else { /* ENOMEM: one at a time */
      for (size_t i = 0; i < k; i++)
        if (fcntl(fds[i], F_GETFD) < 0 && errno == EBADF) fd_gone(loop, fds[i]);
    }
    fds += k;
    n -= k;
  }
}

int rill__io_check_new_fds(rill_loop *loop) {
  struct rill__io *io = loop->io;
  io->gone = 0;
  size_t n = io->nfresh;
  io->nfresh = 0;
  check_fds(loop, io->fresh, n);
  if (io->fresh_lost) { /* some fds were not noted: every watched one */
    io->fresh_lost = 0;
    for (size_t fd = 0; fd < io->cap; fd++) {
      int f = (int)fd;
      if ((io->readers[fd] && ev_is_active(&io->readers[fd]->io)) ||
          (io->writers[fd] && ev_is_active(&io->writers[fd]->io)))
        check_fds(loop, &f, 1);
    }
    for (fd_wait *w = io->waits; w;) {
      int f = w->io.fd;
      if (fcntl(f, F_GETFD) < 0 && errno == EBADF) {
        fd_gone(loop, f); /* disarms every wait on f: start over */
        w = io->waits;
      } else {
        w = w->next;
      }
    }
  }
  return io->gone;
}

/* ---------------------------------------------------------------- */
/* Loop close                                                         */

void rill__io_loop_close(rill_loop *loop) {
  struct rill__io *io = loop->io;
  for (size_t fd = 0; fd < io->cap; fd++) {
    if (io->readers[fd]) rill_fd_remove_reader(loop, (int)fd);
    if (io->writers[fd]) rill_fd_remove_writer(loop, (int)fd);
  }
  while (io->objs) {
    rill__io_obj *o = io->objs;
    rill__io_unregister(loop, o);
    o->loop_closing(o);
  }
  free(io->readers);
  free(io->writers);
  free(io->fresh);
  free(io);
  loop->io = NULL;
}
