/* echo_libev.c - the W4 floor: a raw libev callback echo server. Reads
 * into one static buffer and writes straight back (the rest, if any, is
 * kept and sent on EV_WRITE).   echo_libev PORT */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <ev.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

typedef struct {
  ev_io r, w;
  char *pend;
  size_t plen;
} conn;
static char buf[65536];

static void conn_close(struct ev_loop *l, conn *c) {
  ev_io_stop(l, &c->r);
  ev_io_stop(l, &c->w);
  close(c->r.fd);
  free(c->pend);
  free(c);
}

static void on_write(struct ev_loop *l, ev_io *w, int e) {
  (void)e;
  conn *c = (conn *)((char *)w - offsetof(conn, w));
  ssize_t n = send(w->fd, c->pend, c->plen, MSG_NOSIGNAL);
  if (n < 0 && errno != EAGAIN) return conn_close(l, c);
  if (n > 0) {
    memmove(c->pend, c->pend + n, c->plen - (size_t)n);
    c->plen -= (size_t)n;
  }
  if (!c->plen) {
    ev_io_stop(l, &c->w);
    ev_io_start(l, &c->r);
  }
}

static void on_read(struct ev_loop *l, ev_io *w, int e) {
  (void)e;
  conn *c = (conn *)w;
  ssize_t n = read(w->fd, buf, sizeof buf);
  if (n == 0 || (n < 0 && errno != EAGAIN)) return conn_close(l, c);
  if (n < 0) return;
  ssize_t s = send(w->fd, buf, (size_t)n, MSG_NOSIGNAL);
  if (s < 0) s = 0;
  if (s < n) {
    c->pend = realloc(c->pend, (size_t)(n - s));
    memcpy(c->pend, buf + s, (size_t)(n - s));
    c->plen = (size_t)(n - s);
    ev_io_stop(l, &c->r);
    ev_io_start(l, &c->w);
  }
}

static void on_accept(struct ev_loop *l, ev_io *w, int e) {
  (void)e;
  int fd;
  while ((fd = accept4(w->fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC)) >= 0) {
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    conn *c = calloc(1, sizeof *c);
    ev_io_init(&c->r, on_read, fd, EV_READ);
    ev_io_init(&c->w, on_write, fd, EV_WRITE);
    ev_io_start(l, &c->r);
  }
}

int main(int argc, char **argv) {
  int port = argc > 1 ? atoi(argv[1]) : 0;
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0), one = 1;
  setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons(port)};
  sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (bind(fd, (struct sockaddr *)&sa, sizeof sa) < 0 || listen(fd, 1024) < 0) return perror("listen"), 1;
  struct ev_loop *l = ev_default_loop(0);
  ev_io a;
  ev_io_init(&a, on_accept, fd, EV_READ);
  ev_io_start(l, &a);
  printf("listening on 127.0.0.1:%d\n", port);
  fflush(stdout);
  ev_run(l, 0);
  return 0;
}
