/* udp.c - datagram endpoints: bind, connect, sendto, and receiving through
 * a callback or awaitable recvfrom futures (FIFO). */
#include <errno.h>
#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "io_internal.h"

#define RECV_BATCH 32

struct rill_udp {
  rill__io_obj obj;
  int refs; /* callers' + the loop's while open + a queued node */
  rill_loop *loop;
  int fd, open, queued;
  ev_io io;
  rill__node node;
  rill_datagram_fn cb;
  void *arg;
  rill_free_fn free_arg;
  rill_future **recvs;
  size_t nrecvs, recvs_cap;
  char *rbuf; /* RBUF_SIZE bytes, made at the first receive */
};

typedef struct recv_fut {
  rill_future fut;
  char sender[80];
} recv_fut;
static const rill__future_type recv_type = {"udp recvfrom", NULL, NULL, NULL, NULL};

/* One receive buffer per endpoint, reused (not thread-local: a 64 KiB
 * thread-local would not fit the static TLS a dlopen'ed librill gets). */
#define RBUF_SIZE 65536

void rill_udp_release(rill_udp *u) {
  if (!u || --u->refs > 0) return;
  rill_loop *loop = u->loop;
  if (u->free_arg) u->free_arg(u->arg);
  free(u->recvs);
  free(u->rbuf);
  free(u);
  rill__loop_release(loop);
}

static size_t pending(rill_udp *u) {
  size_t n = 0;
  for (size_t i = 0; i < u->nrecvs; i++) n += u->recvs[i]->state == RILL_PENDING;
  return n;
}

static void update(rill_udp *u) {
  if (u->open && (u->cb || pending(u))) rill__io_start(u->loop, &u->io);
  else rill__io_stop(u->loop, &u->io);
}

static void do_close(rill_udp *u) {
  if (!u->open) return;
  u->refs++;
  rill__io_stop(u->loop, &u->io);
  close(u->fd);
  u->fd = -1;
  u->open = 0;
  rill__io_unregister(u->loop, &u->obj);
  size_t n = u->nrecvs;
  u->nrecvs = 0;
  for (size_t i = 0; i < n; i++) {
    rill_future *f = u->recvs[i];
    if (f->state == RILL_PENDING) rill__future_fail_io(f, RILL_ENOTCONN, 0, "the endpoint was closed", NULL, 0);
    rill_future_release(f);
  }
  rill_udp_release(u); /* the loop's */
  rill_udp_release(u);
}

static void loop_closing(rill__io_obj *o) { do_close(RILL__CONTAINER(o, rill_udp, obj)); }

static void split(const struct sockaddr *sa, socklen_t len, char *host, size_t hcap, int *port) {
  char serv[16];
  host[0] = 0;
  *port = 0;
  if (getnameinfo(sa, len, host, (socklen_t)hcap, serv, sizeof serv, NI_NUMERICHOST | NI_NUMERICSERV) == 0)
    *port = atoi(serv);
}

static void recv_run(rill__node *node, int discard) {
  rill_udp *u = RILL__CONTAINER(node, rill_udp, node);
  u->queued = 0;
  if (!discard && !u->rbuf && !(u->rbuf = rill__io_buffer(RBUF_SIZE))) {
    rill__report(u->loop, NULL, "udp recvfrom: out of memory for the receive buffer");
    discard = 1;
  }
  for (int i = 0; !discard && i < RECV_BATCH && u->open && (u->cb || pending(u)); i++) {
    struct sockaddr_storage ss;
    socklen_t len = sizeof ss;
    ssize_t n = recvfrom(u->fd, u->rbuf, RBUF_SIZE, 0, (struct sockaddr *)&ss, &len);
    if (n < 0) {
      if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)
        rill__report(u->loop, NULL, "udp recvfrom: %s", strerror(errno));
      break;
    }
    char host[64];
    int port;
    split((struct sockaddr *)&ss, len, host, sizeof host, &port);
    if (u->cb) {
      u->cb(u, u->rbuf, (size_t)n, host, port, u->arg);
      continue;
    }
    size_t j = 0;
    while (u->recvs[j]->state != RILL_PENDING) j++;
    recv_fut *r = (recv_fut *)u->recvs[j];
    snprintf(r->sender, sizeof r->sender, ss.ss_family == AF_INET6 ? "[%s]:%d" : "%s:%d", host, port);
    rill__future_set_bytes_raw(&r->fut, u->rbuf, (size_t)n);
    rill_future_release(&r->fut);
    memmove(u->recvs + j, u->recvs + j + 1, (u->nrecvs - j - 1) * sizeof *u->recvs);
    u->nrecvs--;
  }
  if (!discard) update(u);
  rill_udp_release(u);
}

static void recv_ev(struct ev_loop *ev, ev_io *w, int revents) {
  (void)ev, (void)revents;
  rill_udp *u = RILL__CONTAINER(w, rill_udp, io);
  if (u->queued) return;
  u->queued = 1;
  u->refs++;
  rill__schedule(u->loop, &u->node);
}

rill_udp *rill_udp_open(rill_loop *loop, const char *host, int port, unsigned flags) {
  if (rill__loop_check(loop)) return NULL;
  if (flags & ~RILL_LISTEN_REUSEPORT) {
    rill__fail(RILL_EINVAL, "unknown flags 0x%x", flags);
    return NULL;
  }
  rill__addr a;
  if (rill__parse_addrs(host, port, &a, 1) < 0) return NULL;
  char name[80];
  rill__format_addr((struct sockaddr *)&a.ss, a.len, name, sizeof name);
  int fd = socket(a.ss.ss_family, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) {
    rill__fail_errno(errno, "socket for %s", name);
    return NULL;
  }
  int one = 1;
  if (flags & RILL_LISTEN_REUSEPORT) setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof one);
  if (bind(fd, (struct sockaddr *)&a.ss, a.len) < 0) {
    rill__fail_errno(errno, "bind to %s", name);
    close(fd);
    return NULL;
  }
  rill_udp *u = calloc(1, sizeof *u);
  if (!u || rill__io_register(loop, &u->obj)) {
    free(u);
    close(fd);
    rill__fail(RILL_ENOMEM, "out of memory");
    return NULL;
  }
  u->obj.loop_closing = loop_closing;
  u->refs = 2;
  u->loop = loop;
  u->fd = fd;
  u->open = 1;
  u->node.run = recv_run;
  ev_io_init(&u->io, recv_ev, fd, EV_READ);
  rill__loop_retain(loop);
  return u;
}

static int check_open(const rill_udp *u) {
  if (!u) return rill__fail(RILL_EINVAL, "udp endpoint is NULL");
  if (u->loop->closed) return rill__fail(RILL_ECLOSED, "the endpoint's loop is closed");
  if (!u->open) return rill__fail(RILL_ENOTCONN, "the endpoint is closed");
  return RILL_OK;
}

int rill_udp_connect(rill_udp *u, const char *host, int port) {
  int rc = check_open(u);
  if (rc) return rc;
  if (port <= 0) return rill__fail(RILL_EINVAL, "port %d out of range", port);
  rill__addr a;
  if ((rc = rill__parse_addrs(host, port, &a, 1)) < 0) return rc;
  if (connect(u->fd, (struct sockaddr *)&a.ss, a.len) < 0) {
    char name[80];
    rill__format_addr((struct sockaddr *)&a.ss, a.len, name, sizeof name);
    return rill__fail_errno(errno, "connect to %s", name);
  }
  return RILL_OK;
}

int rill_udp_sendto(rill_udp *u, const void *data, size_t len, const char *host, int port) {
  int rc = check_open(u);
  if (rc) return rc;
  if (!data && len) return rill__fail(RILL_EINVAL, "data is NULL");
  ssize_t n;
  if (!host) {
    n = send(u->fd, data, len, MSG_NOSIGNAL);
    if (n < 0) return rill__fail_errno(errno, "send on a UDP endpoint");
    return RILL_OK;
  }
  if (port <= 0) return rill__fail(RILL_EINVAL, "port %d out of range", port);
  rill__addr a;
  if ((rc = rill__parse_addrs(host, port, &a, 1)) < 0) return rc;
  n = sendto(u->fd, data, len, MSG_NOSIGNAL, (struct sockaddr *)&a.ss, a.len);
  if (n < 0) {
    char name[80];
    rill__format_addr((struct sockaddr *)&a.ss, a.len, name, sizeof name);
    return rill__fail_errno(errno, "sendto %s", name);
  }
  return RILL_OK;
}

rill_future *rill_udp_recvfrom(rill_udp *u) {
  if (check_open(u)) return NULL;
  if (u->nrecvs == u->recvs_cap) {
    size_t cap = u->recvs_cap ? u->recvs_cap * 2 : 4;
    rill_future **r = realloc(u->recvs, cap * sizeof *r);
    if (!r) {
      rill__fail(RILL_ENOMEM, "out of memory");
      return NULL;
    }
    u->recvs = r;
    u->recvs_cap = cap;
  }
  rill_future *f = rill__future_alloc(u->loop, &recv_type, sizeof(recv_fut));
  if (!f) return NULL;
  ((recv_fut *)f)->sender[0] = 0;
  size_t k = 0;
  for (size_t i = 0; i < u->nrecvs; i++) {
    if (u->recvs[i]->state == RILL_PENDING) u->recvs[k++] = u->recvs[i];
    else rill_future_release(u->recvs[i]);
  }
  u->nrecvs = k;
  u->recvs[u->nrecvs++] = rill_future_retain(f);
  update(u);
  return f;
}

int rill_udp_sender(rill_future *f, char *out, size_t cap) {
  int rc = rill__future_check(f);
  if (rc) return rc;
  if (!out || !cap) return rill__fail(RILL_EINVAL, "buf is NULL or empty");
  if (f->type != &recv_type) return rill__fail(RILL_ETYPE, "not a rill_udp_recvfrom future");
  if (f->state != RILL_DONE) return rill__fail(RILL_ESTATE, "the datagram has not arrived");
  snprintf(out, cap, "%s", ((recv_fut *)f)->sender);
  return RILL_OK;
}

int rill_udp_set_callback(rill_udp *u, rill_datagram_fn fn, void *arg, rill_free_fn free_arg) {
  int rc = check_open(u);
  if (rc) return rc;
  rill_free_fn old = u->free_arg;
  void *old_arg = u->arg;
  u->cb = fn;
  u->arg = fn ? arg : NULL;
  u->free_arg = fn ? free_arg : NULL;
  if (old) old(old_arg);
  update(u);
  return RILL_OK;
}

int rill_udp_port(rill_udp *u) {
  int rc = check_open(u);
  if (rc) return rc;
  struct sockaddr_storage ss;
  socklen_t len = sizeof ss;
  if (getsockname(u->fd, (struct sockaddr *)&ss, &len) < 0) return rill__fail_errno(errno, "getsockname");
  char host[64];
  int port;
  split((struct sockaddr *)&ss, len, host, sizeof host, &port);
  return port;
}

int rill_udp_close(rill_udp *u) {
  int rc = check_open(u);
  if (rc) return rc;
  do_close(u);
  return RILL_OK;
}
