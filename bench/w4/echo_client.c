/* echo_client.c - the W4 load generator: CONNS connections, each sends
 * MSIZE bytes, waits for all MSIZE back, repeats (TCP_NODELAY), for SECONDS.
 * One throw-away connection does a round trip first (BENCHMARKS.md).
 *   echo_client PORT CONNS MSIZE SECONDS
 * prints "req/s N" and "cpu P" (the client's own CPU time / wall time in %,
 * for the scaling row: how much of the machine the load generator took). */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/ioctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

typedef struct {
  int fd;
  size_t sent, got;
  int want_out;
} conn;

static double now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return ts.tv_sec + ts.tv_nsec * 1e-9;
}

static int dial(int port) {
  struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons(port)};
  sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (connect(fd, (struct sockaddr *)&sa, sizeof sa) < 0) {
    perror("connect");
    exit(1);
  }
  int one = 1;
  setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  return fd;
}

int main(int argc, char **argv) {
  if (argc < 5) {
    fprintf(stderr, "usage: %s PORT CONNS MSIZE SECONDS\n", argv[0]);
    return 2;
  }
  int port = atoi(argv[1]), n = atoi(argv[2]);
  size_t m = (size_t)atol(argv[3]);
  double secs = atof(argv[4]);
  char *out = malloc(m), *in = malloc(m < 65536 ? 65536 : m);
  memset(out, 'x', m);
  { /* warm-up connection */
    int fd = dial(port);
    size_t got = 0;
    if (write(fd, out, m) < 0) return 1;
    while (got < m) {
      ssize_t r = read(fd, in, m - got);
      if (r <= 0) return 1;
      got += (size_t)r;
    }
    close(fd);
  }
  int ep = epoll_create1(EPOLL_CLOEXEC);
  conn *cs = calloc((size_t)n, sizeof *cs);
  for (int i = 0; i < n; i++) {
    cs[i].fd = dial(port);
    struct epoll_event ev = {.events = EPOLLIN, .data.u32 = (uint32_t)i};
    epoll_ctl(ep, EPOLL_CTL_ADD, cs[i].fd, &ev);
  }
  for (int i = 0; i < n; i++) { /* nonblocking from here */
    int fd = cs[i].fd;
    int one = 1;
    ioctl(fd, FIONBIO, &one);
  }
  long long done = 0;
  double start = now(), end = start + secs;
  struct epoll_event evs[256];
  /* start every conversation */
  for (int i = 0; i < n; i++) {
    conn *c = &cs[i];
    ssize_t w = send(c->fd, out, m, MSG_NOSIGNAL);
    c->sent = w > 0 ? (size_t)w : 0;
    if (c->sent < m) {
      struct epoll_event ev = {.events = EPOLLIN | EPOLLOUT, .data.u32 = (uint32_t)i};
      epoll_ctl(ep, EPOLL_CTL_MOD, c->fd, &ev);
      c->want_out = 1;
    }
  }
  while (now() < end) {
    int k = epoll_wait(ep, evs, 256, 100);
    for (int j = 0; j < k; j++) {
      conn *c = &cs[evs[j].data.u32];
      if (evs[j].events & EPOLLOUT && c->sent < m) {
        ssize_t w = send(c->fd, out + c->sent, m - c->sent, MSG_NOSIGNAL);
        if (w > 0) c->sent += (size_t)w;
      }
      if (evs[j].events & (EPOLLIN | EPOLLERR | EPOLLHUP)) {
        for (;;) {
          ssize_t r = read(c->fd, in, m);
          if (r == 0) {
            fprintf(stderr, "server closed\n");
            return 1;
          }
          if (r < 0) break;
          c->got += (size_t)r;
          if (c->got >= m) {
            done++;
            c->got = 0;
            ssize_t w = send(c->fd, out, m, MSG_NOSIGNAL);
            c->sent = w > 0 ? (size_t)w : 0;
          }
        }
      }
      int want = c->sent < m;
      if (want != c->want_out) {
        struct epoll_event ev = {.events = EPOLLIN | (want ? EPOLLOUT : 0), .data.u32 = evs[j].data.u32};
        epoll_ctl(ep, EPOLL_CTL_MOD, c->fd, &ev);
        c->want_out = want;
      }
    }
  }
  double el = now() - start;
  printf("req/s %.0f\n", done / el);
  struct rusage ru;
  getrusage(RUSAGE_SELF, &ru);
  double cpu = (double)ru.ru_utime.tv_sec + ru.ru_utime.tv_usec / 1e6 + (double)ru.ru_stime.tv_sec +
               ru.ru_stime.tv_usec / 1e6;
  printf("cpu %.0f\n", 100.0 * cpu / el);
  for (int i = 0; i < n; i++) close(cs[i].fd);
  return 0;
}
