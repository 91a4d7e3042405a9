/* stream.c - byte streams over a connected fd (TCP, Unix sockets, pipes):
 * one object with a callback face (asyncio's transport + protocol) and an
 * awaitable face (asyncio's StreamReader/StreamWriter); connect.
 *
 * Reads go into one buffer per stream that is reused (never a fresh
 * allocation per read); writes are tried at once and only the rest is
 * buffered. Callbacks of the callback face run from the ready queue. */
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "io_internal.h"

const char rill__stream_tag = 0;

enum { K_TCP, K_UNIX, K_PIPE };
enum { R_READ, R_EXACTLY, R_UNTIL, R_WAIT };
#define READ_CHUNK 65536
#define SHARED_READ (256 * 1024) /* the callback face's read, per loop */

typedef struct read_fut read_fut;

struct rill_stream {
  rill__io_obj obj;
  int refs; /* callers' + the loop's while open + queued nodes */
  rill_loop *loop;
  int fd, kind;
  unsigned open : 1, closing : 1, eof_requested : 1, eof_sent : 1, eof_received : 1,
      read_paused : 1, writing_paused : 1, read_queued : 1, lost_posted : 1, coalesce : 1,
      flush_queued : 1, arena_read : 1;
  int failed; /* the failure code, 0 if none */
  int sys_errno;
  ev_io rio, wio;
  rill__node read_node; /* callback face: read and deliver */
  rill__node flush_node; /* coalesced writes: send what the iteration wrote */
  rill__uring_op wop;    /* the flush's send, batched with the iteration's others */
  rill__uring_op rop;    /* a read, batched likewise (arena_read: the callback face's) */
  char *rbuf;
  size_t rcap, roff, rlen; /* unread bytes at rbuf + roff */
  size_t limit;
  read_fut *pending;
  char *wbuf;
  size_t wcap, woff, wlen;
  size_t high, low;
  rill_future **drains;
  size_t ndrains, drains_cap;
  rill_future *closed_fut;
  rill_stream_fn cb;
  void *cb_arg;
  rill_free_fn cb_free;
  rill_listener *listener;
};

struct read_fut {
  rill_future fut;
  rill_stream *stream; /* set while it is the stream's pending read */
  int kind;
  size_t n, limit, seplen;
  char *sep;
};

static void update_reading(rill_stream *s);
static void finalize(rill_stream *s, int code, int err);
static void satisfy_pending(rill_stream *s);

/* ---------------------------------------------------------------- */
/* Lifetime                                                           */

rill_stream *rill_stream_retain(rill_stream *s) {
  if (s) s->refs++;
  return s;
}

static void stream_destroy(rill_stream *s) {
  rill_loop *loop = s->loop;
  if (s->cb_free) s->cb_free(s->cb_arg);
  free(s->rbuf);
  free(s->wbuf);
  free(s->drains);
  if (s->closed_fut) rill_future_release(s->closed_fut);
  free(s);
  rill__loop_release(loop);
}

void rill_stream_release(rill_stream *s) {
  if (s && --s->refs == 0) stream_destroy(s);
}

static void loop_closing(rill__io_obj *o) {
  rill_stream *s = RILL__CONTAINER(o, rill_stream, obj);
  finalize(s, 0, 0);
}


static void read_ev(struct ev_loop *ev, ev_io *w, int revents);
static void write_ev(struct ev_loop *ev, ev_io *w, int revents);
static void read_node_run(rill__node *node, int discard);
static void flush_node_run(rill__node *node, int discard);
static void batched_send_done(rill__uring_op *op);
static void batched_read_done(rill__uring_op *op);

rill_stream *rill__stream_new(rill_loop *loop, int fd, rill_listener *listener) {
  rill_stream *s = calloc(1, sizeof *s);
  if (!s) {
    rill__fail(RILL_ENOMEM, "out of memory creating a stream");
    return NULL;
  }
  struct stat st;
  s->kind = K_PIPE;
  if (fstat(fd, &st) == 0 && S_ISSOCK(st.st_mode)) {
    int domain = 0;
    socklen_t len = sizeof domain;
    getsockopt(fd, SOL_SOCKET, SO_DOMAIN, &domain, &len);
    s->kind = domain == AF_UNIX ? K_UNIX : K_TCP;
  }
  if (rill__io_register(loop, &s->obj)) {
    free(s);
    return NULL;
  }
  s->obj.loop_closing = loop_closing;
  s->refs = 2; /* the caller's and the loop's while open */
  s->loop = loop;
  s->fd = fd;
  s->open = 1;
  s->limit = 65536;
  s->high = 65536;
  s->low = 16384;
  s->read_node.run = read_node_run;
  s->flush_node.run = flush_node_run;
  s->wop.done = batched_send_done;
  s->rop.done = batched_read_done;
  if (s->kind == K_TCP) {
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  }
  ev_io_init(&s->rio, read_ev, fd, EV_READ);
  ev_io_init(&s->wio, write_ev, fd, EV_WRITE);
  rill__loop_retain(loop);
  if (listener) {
    s->listener = listener;
    rill__listener_retain(listener);
  }
  update_reading(s);
  return s;
}

rill_stream *rill_stream_open_fd(rill_loop *loop, int fd) {
  if (rill__loop_check(loop) || rill__check_fd(fd)) return NULL;
  int fl = fcntl(fd, F_GETFL);
  if (fl < 0 || (!(fl & O_NONBLOCK) && fcntl(fd, F_SETFL, fl | O_NONBLOCK) < 0)) {
    rill__fail_errno(errno, "making fd %d non-blocking", fd);
    return NULL;
  }
  fcntl(fd, F_SETFD, FD_CLOEXEC);
  return rill__stream_new(loop, fd, NULL);
}

/* A batched read or send still queued or not yet handled runs its course
 * first: every entry point (check) sees the stream as a direct read or
 * send would have left it. No caller's code runs between the queueing and
 * the loop's submit, so this is a guard, not a path. */
static void settle(rill_stream *s) {
  if (s->rop.state) rill__uring_settle(s->loop, &s->rop);
  if (s->wop.state) rill__uring_settle(s->loop, &s->wop);
}

static int check(rill_stream *s) {
  if (!s) return rill__fail(RILL_EINVAL, "stream is NULL");
  if (s->loop->closed) return rill__fail(RILL_ECLOSED, "the stream's loop is closed");
  if (s->rop.state | s->wop.state) settle(s);
  return RILL_OK;
}

static int check_open(rill_stream *s) {
  int rc = check(s);
  if (rc) return rc;
  if (!s->open || s->closing) {
    if (s->failed) return rill__fail(s->failed, "the stream failed: %s", rill_strerror(s->failed));
    return rill__fail(RILL_ENOTCONN, "the stream is closed");
  }
  return RILL_OK;
}

rill_loop *rill_stream_loop(rill_stream *s) { return s ? s->loop : NULL; }

int rill_stream_fd(rill_stream *s) {
  int rc = check(s);
  if (rc) return rc;
  if (!s->open) return rill__fail(RILL_ENOTCONN, "the stream is closed");
  return s->fd;
}

/* ---------------------------------------------------------------- */
/* Events of the callback face                                        */

typedef struct event_node {
  rill__node node;
  rill_stream *s;
  int event, err;
} event_node;

static void drop_callback(rill_stream *s) {
  rill_free_fn f = s->cb_free;
  void *a = s->cb_arg;
  s->cb = NULL;
  s->cb_free = NULL;
  s->cb_arg = NULL;
  if (f) f(a);
}

static void event_run(rill__node *node, int discard) {
  event_node *e = RILL__CONTAINER(node, event_node, node);
  rill_stream *s = e->s;
  if (!discard && s->cb) s->cb(s, e->event, NULL, 0, e->err, s->cb_arg);
  if (e->event == RILL_STREAM_LOST) drop_callback(s); /* never called again */
  free(e);
  rill_stream_release(s);
}

static void post_event(rill_stream *s, int event, int err) {
  if (!s->cb) return;
  event_node *e = malloc(sizeof *e);
  if (!e) return; /* nothing better to do: the event is lost */
  e->node.run = event_run;
  e->s = rill_stream_retain(s);
  e->event = event;
  e->err = err;
  if (event == RILL_STREAM_LOST) s->lost_posted = 1;
  rill__schedule(s->loop, &e->node);
}

/* ---------------------------------------------------------------- */
/* Reading                                                            */

static size_t need_of(const rill_stream *s) {
  read_fut *r = s->pending;
  if (!r) return 0;
  if (r->kind == R_EXACTLY) return r->n;
  if (r->kind == R_UNTIL) return r->limit + r->seplen;
  return 1;
}

static void update_reading(rill_stream *s) {
  int want = s->open && !s->closing && !s->eof_received && !s->read_paused;
  if (want && !s->cb) {
    size_t cap = 2 * s->limit, need = need_of(s);
    want = s->rlen < (need > cap ? need : cap);
  }
  if (want) rill__io_start(s->loop, &s->rio);
  else rill__io_stop(s->loop, &s->rio);
}

static int reserve_read(rill_stream *s, size_t min_free) {
  if (s->rlen == 0) s->roff = 0;
  if (s->rcap - s->roff - s->rlen >= min_free) return 0;
  if (s->roff) { /* compact */
    memmove(s->rbuf, s->rbuf + s->roff, s->rlen);
    s->roff = 0;
    if (s->rcap - s->rlen >= min_free) return 0;
  }
  size_t cap = s->rcap ? s->rcap : READ_CHUNK;
  while (cap - s->rlen < min_free) cap *= 2;
  char *b = rill__io_buffer(cap); /* not realloc: the kernel reads into it */
  if (!b) return -1;
  if (s->rlen) memcpy(b, s->rbuf, s->rlen); /* compacted above: roff is 0 */
  free(s->rbuf);
  s->rbuf = b;
  s->rcap = cap;
  return 0;
}

/* The fatal error path: the stream fails with errno err. */
static void fail_errno(rill_stream *s, int err, const char *what) {
  (void)what;
  finalize(s, rill_code_from_errno(err), err);
}

/* What a read into the buffer's free end gave (bytes, 0 at EOF, -errno),
 * then the stream's reference the read held. */
static void read_result(rill_stream *s, ssize_t n) {
  if (s->open) {
    if (n > 0) {
      s->rlen += (size_t)n;
    } else if (n == 0) {
      s->eof_received = 1;
    } else if (n != -EAGAIN && n != -EWOULDBLOCK && n != -EINTR) {
      fail_errno(s, (int)-n, "read");
    }
    satisfy_pending(s);
    update_reading(s);
  }
  rill_stream_release(s);
}

/* Awaitable face: read straight from libev's callback into the buffer;
 * completing the pending read schedules its waiter. */
static void read_ev(struct ev_loop *ev, ev_io *w, int revents) {
  (void)ev, (void)revents;
  rill_stream *s = RILL__CONTAINER(w, rill_stream, rio);
  if (s->cb) {
    if (!s->read_queued) {
      s->read_queued = 1;
      s->refs++;
      /* A socket's read joins the batch, into a slot of the loop's read
       * arena; its node hands the bytes over once the group is made.
       * Otherwise the node reads by itself. */
      if (s->kind != K_PIPE && !s->rop.state &&
          rill__uring_queue(s->loop, &s->rop, 1, s->fd, NULL, 0) == 0) {
        s->arena_read = 1;
        return;
      }
      rill__schedule(s->loop, &s->read_node);
    }
    return;
  }
  if (s->rop.state) return; /* a batched read is on its way */
  if (reserve_read(s, 4096)) return; /* ENOMEM: try again later */
  char *p = s->rbuf + s->roff + s->rlen;
  size_t room = s->rcap - s->roff - s->rlen;
  s->refs++;
  /* A socket's read joins the loop's batch (uring.c), made with the
   * iteration's others once libev's callbacks have run. */
  if (s->kind != K_PIPE && rill__uring_queue(s->loop, &s->rop, 1, s->fd, p, room) == 0) return;
  ssize_t n = read(s->fd, p, room);
  read_result(s, n < 0 ? -errno : n);
}

static void batched_read_done(rill__uring_op *op) {
  rill_stream *s = RILL__CONTAINER(op, rill_stream, rop);
  if (!s->arena_read) read_result(s, op->res);
  else { /* the node (it holds the read's reference) hands the bytes over */
    if (!op->p) s->arena_read = 0; /* no slot: the node reads by itself */
    rill__schedule(s->loop, &s->read_node);
  }
}

static void deliver_eof(rill_stream *s) {
  s->eof_received = 1;
  update_reading(s);
  int keep = s->cb(s, RILL_STREAM_EOF, NULL, 0, 0, s->cb_arg);
  if (!keep && s->open && !s->closing) rill_stream_close(s);
}

/* An arena read's outcome that cannot be handed over as it stands: the
 * stream was paused or closed, its callback removed, or older bytes wait
 * in its buffer. Bytes are kept in the stream's buffer (dropped if it is
 * closing, as a direct read would not have been made), an end of file
 * seen later again (a socket repeats it), an error fails the stream. */
static void keep_arena_read(rill_stream *s, ssize_t n) {
  if (n > 0) {
    if (s->closing) return;
    if (reserve_read(s, (size_t)n)) {
      finalize(s, RILL_ENOMEM, ENOMEM);
      return;
    }
    memcpy(s->rbuf + s->roff + s->rlen, s->rop.p, (size_t)n);
    s->rlen += (size_t)n;
  } else if (n == 0) {
    if (s->cb || s->closing) return;
    s->eof_received = 1;
  } else {
    if (n != -EAGAIN && n != -EWOULDBLOCK && n != -EINTR) fail_errno(s, (int)-n, "read");
    return;
  }
  if (!s->cb) {
    satisfy_pending(s);
    update_reading(s);
  }
}

/* Callback face: read into the reused buffer and hand it over. */
static void read_node_run(rill__node *node, int discard) {
  rill_stream *s = RILL__CONTAINER(node, rill_stream, read_node);
  s->read_queued = 0;
  int arena = s->arena_read;
  s->arena_read = 0;
  if (discard || !s->open) goto out;
  if (arena) { /* made in the iteration's batch: the bytes are in the arena */
    ssize_t n = s->rop.res;
    int as_is = s->cb && !s->closing && !s->read_paused && !s->rlen;
    if (as_is && n > 0) s->cb(s, RILL_STREAM_DATA, s->rop.p, (size_t)n, 0, s->cb_arg);
    else if (as_is && n == 0) deliver_eof(s);
    else keep_arena_read(s, n);
    if (as_is || !s->rlen) goto out;
  }
  if (!s->cb) goto out;
  if (s->rlen) { /* read by the awaitable face before the callback was set */
    if (s->closing || s->read_paused) goto out; /* resume_reading hands it over */
    size_t len = s->rlen;
    s->rlen = 0;
    size_t off = s->roff;
    s->roff = 0;
    s->cb(s, RILL_STREAM_DATA, s->rbuf + off, len, 0, s->cb_arg);
    goto out;
  }
  if (s->closing || s->read_paused || s->eof_received) goto out;
  /* Not batched (a pipe, no ring, the arena held): into the loop's one
   * buffer, as uvloop's loop reads every stream into
   * one: the data is borrowed for the call, and a buffer used by every
   * stream stays in the cache and is four times a stream's own. */
  char *buf = s->loop->read_buf;
  if (!buf && !(buf = s->loop->read_buf = rill__io_buffer(SHARED_READ))) goto out; /* ENOMEM: later */
  ssize_t n = read(s->fd, buf, SHARED_READ);
  if (n > 0) {
    s->cb(s, RILL_STREAM_DATA, buf, (size_t)n, 0, s->cb_arg);
  } else if (n == 0) {
    deliver_eof(s);
  } else if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR) {
    fail_errno(s, errno, "read");
  }
out:
  if (arena) rill__uring_arena_put(s->loop);
  rill_stream_release(s);
}

/* The callback face's bytes kept in the stream's buffer go to the
 * callback in a node of their own. */
static void schedule_kept(rill_stream *s) {
  if (s->cb && s->rlen && !s->read_queued) {
    s->read_queued = 1;
    s->refs++;
    rill__schedule(s->loop, &s->read_node);
  }
}

int rill_stream_set_callback(rill_stream *s, rill_stream_fn fn, void *arg, rill_free_fn free_arg) {
  int rc = check(s);
  if (rc) return rc;
  if (!s->open) return rill__fail(RILL_ENOTCONN, "the stream is closed");
  if (fn && s->pending) return rill__fail(RILL_ESTATE, "a read is pending on the awaitable face");
  drop_callback(s);
  s->cb = fn;
  s->cb_arg = arg;
  s->cb_free = fn ? free_arg : NULL;
  update_reading(s);
  schedule_kept(s); /* hand over what was read already */
  return RILL_OK;
}

int rill_stream_pause_reading(rill_stream *s) {
  int rc = check_open(s);
  if (rc) return rc;
  s->read_paused = 1;
  update_reading(s);
  return RILL_OK;
}

int rill_stream_resume_reading(rill_stream *s) {
  int rc = check_open(s);
  if (rc) return rc;
  s->read_paused = 0;
  update_reading(s);
  schedule_kept(s);
  return RILL_OK;
}

int rill_stream_set_read_limit(rill_stream *s, size_t limit) {
  int rc = check(s);
  if (rc) return rc;
  if (limit == 0) return rill__fail(RILL_EINVAL, "limit must be > 0");
  s->limit = limit;
  update_reading(s);
  return RILL_OK;
}

/* ---- the awaitable face ---- */

static int read_cancel(rill_future *f, const char *msg) {
  read_fut *r = (read_fut *)f;
  rill_stream *s = r->stream;
  int rc = rill__future_cancel_plain(f, msg);
  if (s) {
    s->pending = NULL;
    r->stream = NULL;
    update_reading(s);
    rill_future_release(f); /* the stream's */
  }
  return rc;
}
static void read_destroy(rill_future *f) { free(((read_fut *)f)->sep); }
static void read_close(rill_future *f) {
  read_fut *r = (read_fut *)f;
  if (r->stream) {
    r->stream->pending = NULL;
    r->stream = NULL;
    f->refs--; /* the stream's; loop close holds another */
  }
}
static const rill__future_type read_type = {"stream read", read_cancel, read_destroy, read_close, NULL};

static void consume(rill_stream *s, size_t n) {
  s->roff += n;
  s->rlen -= n;
  if (!s->rlen) s->roff = 0;
}

/* Completes r from the buffer or the stream's end; 1 if completed. */
static int try_complete(rill_stream *s, read_fut *r) {
  rill_future *f = &r->fut;
  const char *data = s->rbuf + s->roff;
  int ended = s->eof_received || !s->open;
  int end_code = s->failed ? s->failed : (s->eof_received ? 0 : RILL_ENOTCONN);
  char msg[160];
  switch (r->kind) {
  case R_READ:
    if (s->rlen) {
      size_t n = s->rlen < r->n ? s->rlen : r->n;
      rill__future_set_bytes_raw(f, data, n);
      consume(s, n);
      return 1;
    }
    if (!ended) return 0;
    if (!end_code) return rill__future_set_bytes_raw(f, "", 0), 1;
    break;
  case R_WAIT:
    if (s->rlen || (ended && !end_code)) {
      f->kind = RILL_NONE;
      rill__future_finish(f, RILL_DONE);
      return 1;
    }
    if (!ended) return 0;
    break;
  case R_EXACTLY:
    if (s->rlen >= r->n) {
      rill__future_set_bytes_raw(f, data, r->n);
      consume(s, r->n);
      return 1;
    }
    if (!ended) return 0;
    if (!end_code) {
      snprintf(msg, sizeof msg, "%zu bytes read on %zu expected", s->rlen, r->n);
      rill__future_fail_io(f, RILL_EINCOMPLETE, 0, msg, data, s->rlen);
      consume(s, s->rlen);
      return 1;
    }
    break;
  case R_UNTIL: {
    const char *hit = s->rlen >= r->seplen ? memmem(data, s->rlen, r->sep, r->seplen) : NULL;
    if (hit && (size_t)(hit - data) + r->seplen <= r->limit) {
      size_t n = (size_t)(hit - data) + r->seplen;
      rill__future_set_bytes_raw(f, data, n);
      consume(s, n);
      return 1;
    }
    if (hit || s->rlen > r->limit) {
      snprintf(msg, sizeof msg, "separator not found within the limit of %zu bytes", r->limit);
      rill__future_fail_io(f, RILL_ELIMIT, 0, msg, NULL, 0); /* the data stays */
      return 1;
    }
    if (!ended) return 0;
    if (!end_code) {
      snprintf(msg, sizeof msg, "end of stream after %zu bytes without the separator", s->rlen);
      rill__future_fail_io(f, RILL_EINCOMPLETE, 0, msg, data, s->rlen);
      consume(s, s->rlen);
      return 1;
    }
    break;
  }
  }
  snprintf(msg, sizeof msg, "%s", s->failed ? rill_strerror(s->failed) : "the stream was closed");
  rill__future_fail_io(f, end_code, s->failed ? s->sys_errno : 0, msg, NULL, 0);
  return 1;
}

static void satisfy_pending(rill_stream *s) {
  read_fut *r = s->pending;
  if (!r || !try_complete(s, r)) return;
  s->pending = NULL;
  r->stream = NULL;
  rill_future_release(&r->fut);
}

static rill_future *start_read(rill_stream *s, int kind, size_t n, const void *sep, size_t seplen,
                               size_t limit) {
  if (check(s)) return NULL;
  if (s->pending) {
    rill__fail(RILL_ESTATE, "another read is pending on this stream");
    return NULL;
  }
  if (s->cb) {
    rill__fail(RILL_ESTATE, "the stream delivers data to its callback");
    return NULL;
  }
  read_fut *r = (read_fut *)rill__future_alloc(s->loop, &read_type, sizeof(read_fut));
  if (!r) return NULL;
  memset((char *)r + sizeof(rill_future), 0, sizeof *r - sizeof(rill_future));
  r->kind = kind;
  r->n = n;
  r->limit = limit ? limit : s->limit;
  if (seplen) {
    if (!(r->sep = malloc(seplen))) {
      rill__fail(RILL_ENOMEM, "out of memory");
      rill_future_release(&r->fut);
      return NULL;
    }
    memcpy(r->sep, sep, seplen);
    r->seplen = seplen;
  }
  if (try_complete(s, r)) return &r->fut;
  r->stream = s;
  s->pending = r;
  r->fut.refs++; /* the stream's */
  update_reading(s);
  return &r->fut;
}

rill_future *rill_stream_read(rill_stream *s, size_t n) {
  if (s && n == 0) {
    rill__fail(RILL_EINVAL, "n must be > 0");
    return NULL;
  }
  return start_read(s, R_READ, n, NULL, 0, 0);
}

rill_future *rill_stream_read_exactly(rill_stream *s, size_t n) {
  return start_read(s, R_EXACTLY, n, NULL, 0, 0);
}

rill_future *rill_stream_read_until(rill_stream *s, const void *sep, size_t seplen, size_t limit) {
  if (s && (!sep || !seplen)) {
    rill__fail(RILL_EINVAL, "the separator is empty");
    return NULL;
  }
  return start_read(s, R_UNTIL, 0, sep, seplen, limit);
}

rill_future *rill_stream_wait_readable(rill_stream *s) { return start_read(s, R_WAIT, 0, NULL, 0, 0); }

const void *rill_stream_peek(rill_stream *s, size_t *len) {
  if (len) *len = 0;
  if (!s || !len) {
    rill__fail(RILL_EINVAL, s ? "len is NULL" : "stream is NULL");
    return NULL;
  }
  settle(s);
  if (!s->rlen || s->cb) return NULL;
  *len = s->rlen;
  return s->rbuf + s->roff;
}

int rill_stream_consume(rill_stream *s, size_t n) {
  if (!s) return rill__fail(RILL_EINVAL, "stream is NULL");
  settle(s);
  if (n > s->rlen) return rill__fail(RILL_EINVAL, "only %zu bytes are buffered", s->rlen);
  consume(s, n);
  update_reading(s);
  return RILL_OK;
}

int rill_stream_at_eof(rill_stream *s) {
  if (!s) return rill__fail(RILL_EINVAL, "stream is NULL");
  settle(s);
  return s->eof_received && !s->rlen;
}

/* ---------------------------------------------------------------- */
/* Writing                                                            */

static ssize_t raw_write(rill_stream *s, const void *p, size_t n) {
  if (s->kind != K_PIPE) return send(s->fd, p, n, MSG_NOSIGNAL);
  /* A pipe has no MSG_NOSIGNAL: block SIGPIPE around the write and eat the
   * one it raised, so a closed reader gives EPIPE, not a dead process. */
  sigset_t pipe_set, old, pending;
  sigemptyset(&pipe_set);
  sigaddset(&pipe_set, SIGPIPE);
  sigpending(&pending);
  int was_pending = sigismember(&pending, SIGPIPE);
  pthread_sigmask(SIG_BLOCK, &pipe_set, &old);
  ssize_t r = write(s->fd, p, n);
  int e = errno;
  if (r < 0 && e == EPIPE && !was_pending) {
    struct timespec zero = {0, 0};
    sigtimedwait(&pipe_set, NULL, &zero);
  }
  pthread_sigmask(SIG_SETMASK, &old, NULL);
  errno = e;
  return r;
}

static void complete_drains(rill_stream *s, int code) {
  size_t n = s->ndrains;
  s->ndrains = 0;
  for (size_t i = 0; i < n; i++) {
    rill_future *f = s->drains[i];
    if (f->state == RILL_PENDING) {
      if (code) rill__future_fail_io(f, code, s->sys_errno, rill_strerror(code), NULL, 0);
      else rill_future_set_none(f);
    }
    rill_future_release(f);
  }
}

static void after_write(rill_stream *s) {
  if (s->wlen <= s->low) {
    if (s->writing_paused) {
      s->writing_paused = 0;
      post_event(s, RILL_STREAM_RESUME_WRITING, 0);
    }
    if (s->ndrains) complete_drains(s, 0);
  }
  if (s->wlen) return;
  rill__io_stop(s->loop, &s->wio);
  if (s->eof_requested && !s->eof_sent) {
    s->eof_sent = 1;
    if (s->kind == K_PIPE) s->closing = 1;
    else shutdown(s->fd, SHUT_WR);
  }
  if (s->closing) finalize(s, 0, 0);
}

static void write_ev(struct ev_loop *ev, ev_io *w, int revents) {
  (void)ev, (void)revents;
  rill_stream *s = RILL__CONTAINER(w, rill_stream, wio);
  s->refs++;
  if (s->wop.state) rill__uring_settle(s->loop, &s->wop);
  while (s->wlen) {
    ssize_t n = raw_write(s, s->wbuf + s->woff, s->wlen);
    if (n < 0) {
      if (errno == EINTR) continue;
      if (errno != EAGAIN && errno != EWOULDBLOCK) fail_errno(s, errno, "write");
      break;
    }
    s->woff += (size_t)n;
    s->wlen -= (size_t)n;
    if (!s->wlen) s->woff = 0;
  }
  if (s->open) after_write(s);
  rill_stream_release(s);
}

/* Coalesced writes: what the callbacks before it wrote, in one send; the
 * rest waits for the fd to be writable as any buffered write. A socket's
 * send joins the loop's batch (uring.c: the iteration's flushes in one
 * kernel entry), keeping the node's reference until it completes. */
static void flush_node_run(rill__node *node, int discard) {
  rill_stream *s = RILL__CONTAINER(node, rill_stream, flush_node);
  s->flush_queued = 0;
  if (!discard && s->open && s->wlen && !ev_is_active(&s->wio)) {
    if (s->kind != K_PIPE &&
        rill__uring_queue(s->loop, &s->wop, 0, s->fd, s->wbuf + s->woff, s->wlen) == 0)
      return;
    write_ev(s->loop->ev, &s->wio, EV_WRITE);
    if (s->open && s->wlen) rill__io_start(s->loop, &s->wio);
  }
  rill_stream_release(s);
}

/* The batched send completed: as write_ev after its send, except that
 * what the socket did not take waits for EV_WRITE (it was full). */
static void batched_send_done(rill__uring_op *op) {
  rill_stream *s = RILL__CONTAINER(op, rill_stream, wop);
  if (s->open) {
    if (op->res > 0) {
      s->woff += (size_t)op->res;
      s->wlen -= (size_t)op->res;
      if (!s->wlen) s->woff = 0;
    } else if (op->res < 0 && op->res != -EAGAIN && op->res != -EWOULDBLOCK &&
               op->res != -EINTR) {
      fail_errno(s, -op->res, "write");
    }
    if (s->open) after_write(s);
    if (s->open && s->wlen) rill__io_start(s->loop, &s->wio);
  }
  rill_stream_release(s);
}

/* Coalesced bytes still waiting for their node go out now: write EOF and
 * close keep their place after them without waiting an iteration. */
static void flush_now(rill_stream *s) {
  if (s->wop.state) rill__uring_settle(s->loop, &s->wop);
  if (!s->coalesce || !s->wlen || ev_is_active(&s->wio)) return;
  write_ev(s->loop->ev, &s->wio, EV_WRITE);
  if (s->open && s->wlen) rill__io_start(s->loop, &s->wio);
}

int rill_stream_set_coalesce_writes(rill_stream *s, int on) {
  int rc = check_open(s);
  if (rc) return rc;
  if (!on) flush_now(s);
  if (s->open) s->coalesce = !!on;
  return RILL_OK;
}

int rill_stream_write(rill_stream *s, const void *data, size_t len) {
  int rc = check_open(s);
  if (rc) return rc;
  if (s->eof_requested) return rill__fail(RILL_ENOTCONN, "the write side was shut (write_eof)");
  if (!data && len) return rill__fail(RILL_EINVAL, "data is NULL");
  if (!len) return RILL_OK;
  const char *p = data;
  if (!s->wlen && !s->coalesce) {
    ssize_t n;
    do n = raw_write(s, p, len);
    while (n < 0 && errno == EINTR);
    if (n < 0) {
      if (errno != EAGAIN && errno != EWOULDBLOCK) {
        int e = errno;
        rill_stream_retain(s);
        fail_errno(s, e, "write");
        rc = rill__fail_errno(e, "write to the stream");
        rill_stream_release(s);
        return rc;
      }
      n = 0;
    }
    if ((size_t)n == len) return RILL_OK;
    p += n;
    len -= (size_t)n;
  }
  if (s->wcap - s->woff - s->wlen < len) {
    if (s->woff) {
      memmove(s->wbuf, s->wbuf + s->woff, s->wlen);
      s->woff = 0;
    }
    if (s->wcap - s->wlen < len) {
      size_t cap = s->wcap ? s->wcap : 16384;
      while (cap - s->wlen < len) cap *= 2;
      char *b = realloc(s->wbuf, cap);
      if (!b) return rill__fail(RILL_ENOMEM, "out of memory buffering %zu bytes", len);
      s->wbuf = b;
      s->wcap = cap;
    }
  }
  memcpy(s->wbuf + s->woff + s->wlen, p, len);
  s->wlen += len;
  if (s->coalesce && !ev_is_active(&s->wio)) {
    /* Sent once, by a node run when the iteration's ready callbacks
     * have: every write until then joins the same send. */
    if (!s->flush_queued) {
      s->flush_queued = 1;
      s->refs++;
      rill__schedule_late(s->loop, &s->flush_node);
    }
  } else {
    rill__io_start(s->loop, &s->wio);
  }
  /* Past the high watermark a coalesced write waits for no one: it goes
   * out now, and writing pauses only on what the fd refused, as without
   * coalescing (a failure here is the stream's, reported as for any
   * buffered write). */
  if (s->coalesce && s->wlen > s->high) flush_now(s);
  if (s->open && s->wlen > s->high && !s->writing_paused) {
    s->writing_paused = 1;
    post_event(s, RILL_STREAM_PAUSE_WRITING, 0);
  }
  return RILL_OK;
}

/* The drain rule, in one place: a drain is DONE at once while the stream
 * has not failed and its buffer is at or below the low watermark. */
static int drain_ready(const rill_stream *s) { return !s->failed && s->wlen <= s->low; }

int rill_stream_drain_ready(rill_stream *s) {
  int rc = check(s);
  return rc ? rc : drain_ready(s);
}

rill_future *rill_stream_drain(rill_stream *s) {
  if (check(s)) return NULL;
  rill_future *f = rill_future_new(s->loop);
  if (!f) return NULL;
  if (s->failed) {
    rill__future_fail_io(f, s->failed, s->sys_errno, rill_strerror(s->failed), NULL, 0);
  } else if (drain_ready(s)) {
    rill_future_set_none(f);
  } else {
    if (s->ndrains == s->drains_cap) {
      size_t cap = s->drains_cap ? s->drains_cap * 2 : 4;
      rill_future **d = realloc(s->drains, cap * sizeof *d);
      if (!d) {
        rill_future_release(f);
        rill__fail(RILL_ENOMEM, "out of memory");
        return NULL;
      }
      s->drains = d;
      s->drains_cap = cap;
    }
    s->drains[s->ndrains++] = rill_future_retain(f);
  }
  return f;
}

long long rill_stream_write_buffered(rill_stream *s) {
  int rc = check(s);
  return rc ? rc : (long long)s->wlen;
}

int rill_stream_set_write_watermarks(rill_stream *s, size_t high, size_t low) {
  int rc = check(s);
  if (rc) return rc;
  if (low > high) return rill__fail(RILL_EINVAL, "low (%zu) > high (%zu)", low, high);
  s->high = high;
  s->low = low;
  return RILL_OK;
}

int rill_stream_write_watermarks(rill_stream *s, size_t *high, size_t *low) {
  int rc = check(s);
  if (rc) return rc;
  if (high) *high = s->high;
  if (low) *low = s->low;
  return RILL_OK;
}

int rill_stream_write_eof(rill_stream *s) {
  int rc = check_open(s);
  if (rc) return rc;
  if (s->eof_requested) return RILL_OK;
  flush_now(s);
  if (!s->open) return RILL_OK; /* the flush failed it; its event says why */
  s->eof_requested = 1;
  rill_stream_retain(s);
  if (!s->wlen) after_write(s);
  rill_stream_release(s);
  return RILL_OK;
}

/* ---------------------------------------------------------------- */
/* Closing                                                            */

static void finalize(rill_stream *s, int code, int err) {
  if (!s->open) return;
  s->refs++;
  settle(s); /* before the fd closes */
  if (!s->open) {
    rill_stream_release(s);
    return;
  }
  rill__io_stop(s->loop, &s->rio);
  rill__io_stop(s->loop, &s->wio);
  close(s->fd);
  s->fd = -1;
  s->open = 0;
  s->closing = 1;
  if (code && !s->failed) {
    s->failed = code;
    s->sys_errno = err;
  }
  rill__io_unregister(s->loop, &s->obj);
  satisfy_pending(s);
  complete_drains(s, s->failed ? s->failed : (s->wlen ? RILL_ENOTCONN : 0));
  free(s->wbuf);
  s->wbuf = NULL;
  s->wlen = s->woff = s->wcap = 0;
  if (s->closed_fut && s->closed_fut->state == RILL_PENDING) rill_future_set_none(s->closed_fut);
  post_event(s, RILL_STREAM_LOST, s->failed);
  if (s->listener) {
    rill_listener *l = s->listener;
    s->listener = NULL;
    rill__listener_conn_closed(l);
  }
  rill_stream_release(s); /* the loop's */
  rill_stream_release(s);
}

int rill_stream_close(rill_stream *s) {
  int rc = check_open(s);
  if (rc) return rc;
  flush_now(s);
  if (!s->open) return RILL_OK; /* the flush failed it; its event says why */
  s->closing = 1;
  update_reading(s);
  if (!s->wlen) finalize(s, 0, 0);
  return RILL_OK;
}

int rill_stream_abort(rill_stream *s) {
  int rc = check(s);
  if (rc) return rc;
  if (!s->open) return rill__fail(RILL_ENOTCONN, "the stream is closed");
  finalize(s, 0, 0);
  return RILL_OK;
}

rill_future *rill_stream_wait_closed(rill_stream *s) {
  if (check(s)) return NULL;
  if (!s->closed_fut) {
    if (!(s->closed_fut = rill_future_new(s->loop))) return NULL;
    if (!s->open) rill_future_set_none(s->closed_fut);
  }
  return rill_future_retain(s->closed_fut);
}

int rill_stream_is_closing(rill_stream *s) {
  int rc = check(s);
  return rc ? rc : (s->closing || !s->open);
}

/* ---------------------------------------------------------------- */
/* Socket options and names                                           */

int rill_stream_set_nodelay(rill_stream *s, int on) {
  int rc = check_open(s);
  if (rc) return rc;
  if (s->kind != K_TCP) return rill__fail(RILL_EINVAL, "TCP_NODELAY needs a TCP stream");
  on = !!on;
  if (setsockopt(s->fd, IPPROTO_TCP, TCP_NODELAY, &on, sizeof on) < 0)
    return rill__fail_errno(errno, "setsockopt TCP_NODELAY");
  return RILL_OK;
}

int rill_stream_set_keepalive(rill_stream *s, int on, int idle_s) {
  int rc = check_open(s);
  if (rc) return rc;
  if (s->kind == K_PIPE) return rill__fail(RILL_EINVAL, "keepalive needs a socket");
  on = !!on;
  if (setsockopt(s->fd, SOL_SOCKET, SO_KEEPALIVE, &on, sizeof on) < 0)
    return rill__fail_errno(errno, "setsockopt SO_KEEPALIVE");
  if (on && idle_s > 0 && s->kind == K_TCP &&
      setsockopt(s->fd, IPPROTO_TCP, TCP_KEEPIDLE, &idle_s, sizeof idle_s) < 0)
    return rill__fail_errno(errno, "setsockopt TCP_KEEPIDLE");
  return RILL_OK;
}

static int name_of(rill_stream *s, char *buf, size_t cap, int peer) {
  int rc = check_open(s);
  if (rc) return rc;
  if (!buf || !cap) return rill__fail(RILL_EINVAL, "buf is NULL or empty");
  buf[0] = 0;
  if (s->kind == K_PIPE) return RILL_OK;
  struct sockaddr_storage ss;
  socklen_t len = sizeof ss;
  int r = peer ? getpeername(s->fd, (struct sockaddr *)&ss, &len)
               : getsockname(s->fd, (struct sockaddr *)&ss, &len);
  if (r < 0) return rill__fail_errno(errno, peer ? "getpeername" : "getsockname");
  rill__format_addr((struct sockaddr *)&ss, len, buf, cap);
  return RILL_OK;
}

int rill_stream_peer_name(rill_stream *s, char *buf, size_t cap) { return name_of(s, buf, cap, 1); }
int rill_stream_local_name(rill_stream *s, char *buf, size_t cap) { return name_of(s, buf, cap, 0); }

/* ---------------------------------------------------------------- */
/* Connect                                                            */

#define MAX_ADDRS 16

typedef struct connect_fut {
  rill_future fut;
  rill__addr addrs[MAX_ADDRS];
  size_t n, i;
  int fd, last_err, active; /* active: holds a reference (io or timer) */
  ev_io io;
  rill__timer timer;
  double timeout;
  char name[128];
  rill_future *dns; /* resolving a host name first (rill_getaddrinfo) */
  int port;
} connect_fut;

static void conn_dns_done(rill_future *dns, void *arg);

static void conn_stop(connect_fut *c) {
  if (c->dns) { /* its done callback holds its own reference to c */
    rill_future *dns = c->dns;
    c->dns = NULL;
    rill_future_remove_done(dns, conn_dns_done, c);
    rill_future_cancel(dns);
    rill_future_release(dns);
  }
  rill__io_stop(c->fut.loop, &c->io);
  if (c->timer.heap_index != RILL__NOT_IN_HEAP) rill__timer_stop(c->fut.loop, &c->timer);
  if (c->fd >= 0) close(c->fd);
  c->fd = -1;
  if (c->active) {
    c->active = 0;
    c->fut.refs--; /* the attempt's; the caller holds another */
  }
}

static int conn_cancel(rill_future *f, const char *msg) {
  f->refs++;
  conn_stop((connect_fut *)f);
  int rc = rill__future_cancel_plain(f, msg);
  rill_future_release(f);
  return rc;
}
static void conn_close(rill_future *f) { conn_stop((connect_fut *)f); }
static const rill__future_type connect_type = {"connect", conn_cancel, NULL, conn_close, NULL};

static void conn_fail(connect_fut *c, int code, int err, const char *what) {
  char msg[448];
  snprintf(msg, sizeof msg, "connect to %s: %s", c->name, what);
  c->fut.refs++;
  conn_stop(c);
  rill__future_fail_io(&c->fut, code, err, msg, NULL, 0);
  rill_future_release(&c->fut);
}

static void conn_ev(struct ev_loop *ev, ev_io *w, int revents);

static void conn_succeed(connect_fut *c) {
  int fd = c->fd;
  c->fd = -1;
  c->fut.refs++;
  rill_stream *s = rill__stream_new(c->fut.loop, fd, NULL);
  if (!s) {
    close(fd);
    conn_fail(c, RILL_ENOMEM, 0, "out of memory");
  } else {
    conn_stop(c);
    rill__future_set_stream(&c->fut, s); /* our reference moves into the future */
  }
  rill_future_release(&c->fut);
}

/* Tries the addresses from c->i on; completes the future or waits. */
static void conn_next(connect_fut *c) {
  while (c->i < c->n) {
    rill__addr *a = &c->addrs[c->i];
    rill__format_addr((struct sockaddr *)&a->ss, a->len, c->name, sizeof c->name);
    int fd = socket(a->ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) {
      c->last_err = errno;
      c->i++;
      continue;
    }
    c->fd = fd;
    if (connect(fd, (struct sockaddr *)&a->ss, a->len) == 0) {
      conn_succeed(c);
      return;
    }
    if (errno == EINPROGRESS || errno == EAGAIN) {
      ev_io_init(&c->io, conn_ev, fd, EV_WRITE);
      rill__io_start(c->fut.loop, &c->io);
      return;
    }
    c->last_err = errno;
    close(fd);
    c->fd = -1;
    c->i++;
  }
  conn_fail(c, rill_code_from_errno(c->last_err), c->last_err, strerror(c->last_err));
}

static void conn_ev(struct ev_loop *ev, ev_io *w, int revents) {
  (void)ev, (void)revents;
  connect_fut *c = RILL__CONTAINER(w, connect_fut, io);
  int err = 0;
  socklen_t len = sizeof err;
  if (getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &len) < 0) err = errno;
  rill__io_stop(c->fut.loop, &c->io);
  if (!err) {
    conn_succeed(c);
    return;
  }
  c->last_err = err;
  close(c->fd);
  c->fd = -1;
  c->i++;
  c->fut.refs++;
  conn_next(c);
  rill_future_release(&c->fut);
}

static void conn_timer_run(rill__node *node, int discard) {
  connect_fut *c = RILL__CONTAINER(node, connect_fut, timer.node);
  if (discard || c->fut.state != RILL_PENDING) return;
  char what[64];
  snprintf(what, sizeof what, "timed out after %g s", c->timeout);
  conn_fail(c, RILL_ETIMEDOUT, ETIMEDOUT, what);
}

/* The host name resolved: try its addresses in the resolver's order (at
 * most MAX_ADDRS), or fail with the resolver's code and message. */
static void conn_dns_done(rill_future *dns, void *arg) {
  connect_fut *c = arg;
  if (c->dns != dns || c->fut.state != RILL_PENDING) return;
  c->dns = NULL;
  const struct addrinfo *ai = rill_future_addrinfo(dns);
  if (!ai) {
    int code = rill_future_error(dns);
    char what[256];
    snprintf(what, sizeof what, "%s", code == RILL_ECANCELLED ? "resolution cancelled"
                                      : rill_future_error_message(dns));
    rill_future_release(dns);
    conn_fail(c, code, 0, what);
    return;
  }
  for (; ai && c->n < MAX_ADDRS; ai = ai->ai_next) {
    if (ai->ai_addrlen > sizeof c->addrs[0].ss) continue;
    memcpy(&c->addrs[c->n].ss, ai->ai_addr, ai->ai_addrlen);
    c->addrs[c->n].len = ai->ai_addrlen;
    c->n++;
  }
  rill_future_release(dns);
  c->fut.refs++;
  if (c->n) conn_next(c);
  else conn_fail(c, RILL_ENOHOST, 0, "the name has no stream address");
  rill_future_release(&c->fut);
}

static void conn_ref_free(void *arg) { rill_future_release(&((connect_fut *)arg)->fut); }

static rill_future *connect_start(rill_loop *loop, const rill__addr *addrs, size_t n, double timeout_s) {
  connect_fut *c = (connect_fut *)rill__future_alloc(loop, &connect_type, sizeof(connect_fut));
  if (!c) return NULL;
  memset((char *)c + sizeof(rill_future), 0, sizeof *c - sizeof(rill_future));
  if (n) memcpy(c->addrs, addrs, n * sizeof *addrs);
  c->n = n;
  c->fd = -1;
  c->timeout = timeout_s;
  c->timer.heap_index = RILL__NOT_IN_HEAP;
  c->timer.node.run = conn_timer_run;
  ev_init(&c->io, conn_ev);
  c->active = 1;
  c->fut.refs++;
  if (isfinite(timeout_s) && rill__timer_start(loop, &c->timer, rill__clock() + timeout_s)) {
    c->active = 0;
    rill_future_release(&c->fut);
    rill_future_release(&c->fut);
    return NULL;
  }
  if (n) conn_next(c);
  return &c->fut;
}

/* connect_start with nothing to try yet: the addresses come from
 * rill_getaddrinfo(host), under the same timeout and cancel. */
static rill_future *connect_name(rill_loop *loop, const char *host, int port, double timeout_s) {
  char serv[8];
  snprintf(serv, sizeof serv, "%d", port);
  struct addrinfo hints;
  memset(&hints, 0, sizeof hints);
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = AI_NUMERICSERV | AI_ADDRCONFIG;
  rill_future *dns = rill_getaddrinfo(loop, host, serv, &hints);
  if (!dns) return NULL;
  rill_future *f = connect_start(loop, NULL, 0, timeout_s);
  if (!f) {
    rill_future_cancel(dns);
    rill_future_release(dns);
    return NULL;
  }
  connect_fut *c = (connect_fut *)f;
  c->port = port;
  snprintf(c->name, sizeof c->name, "%s:%d", host, port);
  f->refs++; /* the done callback's, dropped by conn_ref_free */
  if (rill_future_on_done(dns, conn_dns_done, c, conn_ref_free)) {
    f->refs--;
    rill_future_cancel(dns);
    rill_future_release(dns);
    rill_future_cancel(f);
    rill_future_release(f);
    rill__fail(RILL_ENOMEM, "out of memory starting a connect");
    return NULL;
  }
  c->dns = dns;
  return f;
}

/* A host that is one name, not a list and not an address literal. */
static int is_host_name(const char *host) {
  if (!host || !host[0] || strchr(host, ',') || host[0] == '[' || strlen(host) > 253) return 0;
  for (const char *p = host; *p; p++)
    if (*p == ' ' || *p == '/' || (unsigned char)*p < 0x21) return 0;
  return 1;
}

rill_future *rill_tcp_connect(rill_loop *loop, const char *host, int port, double timeout_s) {
  if (rill__loop_check(loop)) return NULL;
  if (isnan(timeout_s) || timeout_s <= 0) {
    rill__fail(RILL_EINVAL, "timeout must be > 0");
    return NULL;
  }
  if (port <= 0 || port > 65535) {
    rill__fail(RILL_EINVAL, "port %d out of range", port);
    return NULL;
  }
  rill__addr addrs[MAX_ADDRS];
  if (host && strcmp(host, "localhost") == 0) /* resolved, as asyncio does: ::1 and/or 127.0.0.1 */
    return connect_name(loop, host, port, timeout_s);
  int n = rill__parse_addrs(host, port, addrs, MAX_ADDRS);
  if (n == RILL_ENOHOST && is_host_name(host)) return connect_name(loop, host, port, timeout_s);
  if (n < 0) return NULL;
  return connect_start(loop, addrs, (size_t)n, timeout_s);
}

rill_future *rill_unix_connect(rill_loop *loop, const char *path, double timeout_s) {
  if (rill__loop_check(loop)) return NULL;
  if (isnan(timeout_s) || timeout_s <= 0) {
    rill__fail(RILL_EINVAL, "timeout must be > 0");
    return NULL;
  }
  rill__addr a;
  struct sockaddr_un *un = (struct sockaddr_un *)&a.ss;
  if (!path || !path[0] || strlen(path) >= sizeof un->sun_path) {
    rill__fail(RILL_EINVAL, "bad Unix socket path");
    return NULL;
  }
  memset(&a, 0, sizeof a);
  un->sun_family = AF_UNIX;
  strcpy(un->sun_path, path);
  a.len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + strlen(path) + 1);
  return connect_start(loop, &a, 1, timeout_s);
}
