/* listener.c - listening sockets: bind with SO_REUSEADDR (and opt-in
 * SO_REUSEPORT), an accept loop that calls a callback or completes accept
 * futures, and an EMFILE pause instead of a busy loop. */
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "io_internal.h"

#define ACCEPT_BATCH 64
#define ACCEPT_RETRY_DELAY 1.0

struct rill_listener {
  rill__io_obj obj;
  int refs; /* callers' + the loop's while open + each live connection + queued nodes */
  rill_loop *loop;
  int fd, open, queued, is_unix;
  ev_io io;
  rill__node node;
  rill__timer retry; /* the EMFILE pause; holds a reference while set */
  rill_accept_fn cb;
  void *arg;
  rill_free_fn free_arg;
  int in_cb, drop_cb; /* the callback runs; close asked to drop it meanwhile */
  rill_future **accepts;
  size_t naccepts, accepts_cap;
  rill_future *closed_fut;
  int live;
  char name[128];
};

void rill__listener_retain(rill_listener *l) {
  l->refs++;
  l->live++;
}

static void listener_destroy(rill_listener *l) {
  rill_loop *loop = l->loop;
  if (l->free_arg) l->free_arg(l->arg);
  free(l->accepts);
  if (l->closed_fut) rill_future_release(l->closed_fut);
  free(l);
  rill__loop_release(loop);
}

void rill_listener_release(rill_listener *l) {
  if (l && --l->refs == 0) listener_destroy(l);
}

static void check_closed(rill_listener *l) {
  if (!l->open && !l->live && l->closed_fut && l->closed_fut->state == RILL_PENDING)
    rill_future_set_none(l->closed_fut);
}

void rill__listener_conn_closed(rill_listener *l) {
  l->live--;
  check_closed(l);
  rill_listener_release(l);
}

static size_t pending_accepts(rill_listener *l) {
  size_t n = 0;
  for (size_t i = 0; i < l->naccepts; i++) n += l->accepts[i]->state == RILL_PENDING;
  return n;
}

static void update(rill_listener *l) {
  int want = l->open && l->retry.heap_index == RILL__NOT_IN_HEAP && (l->cb || pending_accepts(l));
  if (want) rill__io_start(l->loop, &l->io);
  else rill__io_stop(l->loop, &l->io);
}

/* Forgets the accept callback and frees its argument (asyncio's
 * Server.close drops the protocol factory): what it holds may refer back
 * to the listener's owner, a cycle no garbage collector sees. */
static void drop_callback(rill_listener *l) {
  rill_free_fn fn = l->free_arg;
  void *arg = l->arg;
  l->cb = NULL;
  l->arg = NULL;
  l->free_arg = NULL;
  l->drop_cb = 0;
  if (fn) fn(arg);
}

static void do_close(rill_listener *l) {
  if (!l->open) return;
  l->refs++;
  if (l->in_cb) l->drop_cb = 1; /* once the running callback returns */
  else drop_callback(l);
  rill__io_stop(l->loop, &l->io);
  if (l->retry.heap_index != RILL__NOT_IN_HEAP) {
    rill__timer_stop(l->loop, &l->retry);
    l->refs--;
  }
  close(l->fd);
  l->fd = -1;
  l->open = 0;
  rill__io_unregister(l->loop, &l->obj);
  size_t n = l->naccepts;
  l->naccepts = 0;
  for (size_t i = 0; i < n; i++) {
    rill_future *f = l->accepts[i];
    if (f->state == RILL_PENDING) rill__future_fail_io(f, RILL_ENOTCONN, 0, "the listener was closed", NULL, 0);
    rill_future_release(f);
  }
  check_closed(l);
  rill_listener_release(l); /* the loop's */
  rill_listener_release(l);
}

static void loop_closing(rill__io_obj *o) { do_close(RILL__CONTAINER(o, rill_listener, obj)); }

static void retry_run(rill__node *node, int discard) {
  rill_listener *l = RILL__CONTAINER(node, rill_listener, retry.node);
  if (!discard) update(l);
  rill_listener_release(l);
}

static void accept_run(rill__node *node, int discard) {
  rill_listener *l = RILL__CONTAINER(node, rill_listener, node);
  l->queued = 0;
  for (int i = 0; !discard && i < ACCEPT_BATCH && l->open && (l->cb || pending_accepts(l)); i++) {
    int fd = accept4(l->fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (fd < 0) {
      int e = errno;
      if (e == EAGAIN || e == EWOULDBLOCK) break;
      if (e == EINTR || e == ECONNABORTED || e == EPROTO) continue;
      if (e == EMFILE || e == ENFILE || e == ENOBUFS || e == ENOMEM) {
        /* The connection stays in the backlog: pause instead of spinning. */
        rill__report(l->loop, NULL, "accept on %s: %s (%s); accepting paused for %g s",
                     l->name, strerror(e), rill_err_name(rill_code_from_errno(e)), ACCEPT_RETRY_DELAY);
        rill__io_stop(l->loop, &l->io);
        if (rill__timer_start(l->loop, &l->retry, rill__clock() + ACCEPT_RETRY_DELAY) == RILL_OK)
          l->refs++;
        break;
      }
      rill__report(l->loop, NULL, "accept on %s: %s", l->name, strerror(e));
      break;
    }
    rill_stream *s = rill__stream_new(l->loop, fd, l);
    if (!s) {
      close(fd);
      rill__report(l->loop, NULL, "accept on %s: %s", l->name, rill_last_error_message());
      break;
    }
    if (l->cb) {
      l->in_cb++;
      l->cb(l, s, l->arg);
      if (--l->in_cb == 0 && l->drop_cb) drop_callback(l);
      rill_stream_release(s); /* the loop keeps it while open */
    } else {
      size_t j = 0;
      while (l->accepts[j]->state != RILL_PENDING) j++;
      rill_future *f = l->accepts[j];
      rill__future_set_stream(f, s);
      rill_future_release(f);
      memmove(l->accepts + j, l->accepts + j + 1, (l->naccepts - j - 1) * sizeof *l->accepts);
      l->naccepts--;
    }
  }
  if (!discard) update(l);
  rill_listener_release(l);
}

static void accept_ev(struct ev_loop *ev, ev_io *w, int revents) {
  (void)ev, (void)revents;
  rill_listener *l = RILL__CONTAINER(w, rill_listener, io);
  if (l->queued) return;
  l->queued = 1;
  l->refs++;
  rill__schedule(l->loop, &l->node);
}

static rill_listener *listen_on(rill_loop *loop, const rill__addr *a, int backlog, unsigned flags,
                                int is_unix) {
  char name[128];
  rill__format_addr((const struct sockaddr *)&a->ss, a->len, name, sizeof name);
  int fd = socket(a->ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) {
    rill__fail_errno(errno, "socket for %s", name);
    return NULL;
  }
  int one = 1;
  if (!is_unix) {
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    if ((flags & RILL_LISTEN_REUSEPORT) && setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof one) < 0) {
      rill__fail_errno(errno, "SO_REUSEPORT on %s", name);
      close(fd);
      return NULL;
    }
    if (a->ss.ss_family == AF_INET6)
      setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, (flags & RILL_LISTEN_V6ONLY) ? &one : &(int){0}, sizeof one);
  }
  if (bind(fd, (const struct sockaddr *)&a->ss, a->len) < 0) {
    rill__fail_errno(errno, "bind to %s", name);
    close(fd);
    return NULL;
  }
  if (listen(fd, backlog > 0 ? backlog : 511) < 0) {
    rill__fail_errno(errno, "listen on %s", name);
    close(fd);
    return NULL;
  }
  rill_listener *l = calloc(1, sizeof *l);
  if (!l || rill__io_register(loop, &l->obj)) {
    free(l);
    close(fd);
    rill__fail(RILL_ENOMEM, "out of memory creating a listener");
    return NULL;
  }
  l->obj.loop_closing = loop_closing;
  l->refs = 2; /* the caller's and the loop's while open */
  l->loop = loop;
  l->fd = fd;
  l->open = 1;
  l->is_unix = is_unix;
  l->node.run = accept_run;
  l->retry.heap_index = RILL__NOT_IN_HEAP;
  l->retry.node.run = retry_run;
  ev_io_init(&l->io, accept_ev, fd, EV_READ);
  struct sockaddr_storage ss;
  socklen_t len = sizeof ss;
  if (!is_unix && getsockname(fd, (struct sockaddr *)&ss, &len) == 0)
    rill__format_addr((struct sockaddr *)&ss, len, l->name, sizeof l->name);
  else
    memcpy(l->name, name, sizeof name);
  rill__loop_retain(loop);
  return l;
}

rill_listener *rill_tcp_listen(rill_loop *loop, const char *host, int port, int backlog, unsigned flags) {
  if (rill__loop_check(loop)) return NULL;
  if (flags & ~(RILL_LISTEN_REUSEPORT | RILL_LISTEN_V6ONLY)) {
    rill__fail(RILL_EINVAL, "unknown flags 0x%x", flags);
    return NULL;
  }
  rill__addr a;
  int n = rill__parse_addrs(host, port, &a, 1);
  if (n < 0) return NULL;
  return listen_on(loop, &a, backlog, flags, 0);
}

rill_listener *rill_unix_listen(rill_loop *loop, const char *path, int backlog) {
  if (rill__loop_check(loop)) return NULL;
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
  return listen_on(loop, &a, backlog, 0, 1);
}

static int check(const rill_listener *l) {
  if (!l) return rill__fail(RILL_EINVAL, "listener is NULL");
  if (l->loop->closed) return rill__fail(RILL_ECLOSED, "the listener's loop is closed");
  return RILL_OK;
}

static int check_open(const rill_listener *l) {
  int rc = check(l);
  if (!rc && !l->open) rc = rill__fail(RILL_ENOTCONN, "the listener is closed");
  return rc;
}

int rill_listener_set_callback(rill_listener *l, rill_accept_fn fn, void *arg, rill_free_fn free_arg) {
  int rc = check_open(l);
  if (rc) return rc;
  rill_free_fn old = l->free_arg;
  void *old_arg = l->arg;
  l->cb = fn;
  l->arg = fn ? arg : NULL;
  l->free_arg = fn ? free_arg : NULL;
  if (old) old(old_arg);
  update(l);
  return RILL_OK;
}

rill_future *rill_listener_accept(rill_listener *l) {
  if (check_open(l)) return NULL;
  if (l->naccepts == l->accepts_cap) {
    size_t cap = l->accepts_cap ? l->accepts_cap * 2 : 4;
    rill_future **a = realloc(l->accepts, cap * sizeof *a);
    if (!a) {
      rill__fail(RILL_ENOMEM, "out of memory");
      return NULL;
    }
    l->accepts = a;
    l->accepts_cap = cap;
  }
  rill_future *f = rill_future_new(l->loop);
  if (!f) return NULL;
  /* Drop accepts cancelled meanwhile. */
  size_t k = 0;
  for (size_t i = 0; i < l->naccepts; i++) {
    if (l->accepts[i]->state == RILL_PENDING) l->accepts[k++] = l->accepts[i];
    else rill_future_release(l->accepts[i]);
  }
  l->naccepts = k;
  l->accepts[l->naccepts++] = rill_future_retain(f);
  update(l);
  return f;
}

int rill_listener_port(rill_listener *l) {
  int rc = check_open(l);
  if (rc) return rc;
  if (l->is_unix) return rill__fail(RILL_EINVAL, "a Unix listener has no port");
  struct sockaddr_storage ss;
  socklen_t len = sizeof ss;
  if (getsockname(l->fd, (struct sockaddr *)&ss, &len) < 0) return rill__fail_errno(errno, "getsockname");
  if (ss.ss_family == AF_INET) return ntohs(((struct sockaddr_in *)&ss)->sin_port);
  return ntohs(((struct sockaddr_in6 *)&ss)->sin6_port);
}

int rill_listener_fd(rill_listener *l) {
  int rc = check_open(l);
  return rc ? rc : l->fd;
}

int rill_listener_close(rill_listener *l) {
  int rc = check_open(l);
  if (rc) return rc;
  do_close(l);
  return RILL_OK;
}

rill_future *rill_listener_wait_closed(rill_listener *l) {
  if (check(l)) return NULL;
  if (!l->closed_fut) {
    if (!(l->closed_fut = rill_future_new(l->loop))) return NULL;
    check_closed(l);
  }
  return rill_future_retain(l->closed_fut);
}
