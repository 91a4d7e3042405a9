/* send_batch: what one loopback TCP send costs made by its own send(2)
 * against made in a batch through io_uring (IORING_OP_SEND, MSG_DONTWAIT,
 * one io_uring_enter for the batch), as core/src/uring.c does for a loop
 * iteration's coalesced writes. Measured here, not assumed: the saving is
 * the kernel entries (0.7 us each on the reference VM) less io_uring's own
 * per-op work.
 *
 *   bench_send_batch CONNS ROUNDS [SIZE]
 *
 * CONNS connected pairs on 127.0.0.1; each round sends SIZE bytes (1024)
 * on every pair, alternately by send(2) and by one batch, then reads them
 * back on the other ends (not timed). Prints microseconds per send. */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <linux/io_uring.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

static double now(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return (double)t.tv_sec + (double)t.tv_nsec * 1e-9;
}

static int ring_fd;
static struct io_uring_sqe *sqes;
static unsigned *sq_tail, *sq_mask, *sq_array, *cq_head, *cq_tail, *cq_mask;
static struct io_uring_cqe *cqes;

static int ring_setup(unsigned entries) {
  struct io_uring_params p;
  memset(&p, 0, sizeof p);
  ring_fd = (int)syscall(__NR_io_uring_setup, entries, &p);
  if (ring_fd < 0) return -1;
  size_t sqsz = p.sq_off.array + p.sq_entries * sizeof(unsigned);
  size_t cqsz = p.cq_off.cqes + p.cq_entries * sizeof(struct io_uring_cqe);
  char *sq = mmap(0, sqsz, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_POPULATE, ring_fd, IORING_OFF_SQ_RING);
  char *cq = mmap(0, cqsz, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_POPULATE, ring_fd, IORING_OFF_CQ_RING);
  sqes = mmap(0, p.sq_entries * sizeof(struct io_uring_sqe), PROT_READ | PROT_WRITE,
              MAP_SHARED | MAP_POPULATE, ring_fd, IORING_OFF_SQES);
  if (sq == MAP_FAILED || cq == MAP_FAILED || sqes == MAP_FAILED) return -1;
  sq_tail = (unsigned *)(sq + p.sq_off.tail);
  sq_mask = (unsigned *)(sq + p.sq_off.ring_mask);
  sq_array = (unsigned *)(sq + p.sq_off.array);
  cq_head = (unsigned *)(cq + p.cq_off.head);
  cq_tail = (unsigned *)(cq + p.cq_off.tail);
  cq_mask = (unsigned *)(cq + p.cq_off.ring_mask);
  cqes = (struct io_uring_cqe *)(cq + p.cq_off.cqes);
  return 0;
}

int main(int argc, char **argv) {
  if (argc < 3) {
    fprintf(stderr, "usage: %s CONNS ROUNDS [SIZE]\n", argv[0]);
    return 2;
  }
  int n = atoi(argv[1]), rounds = atoi(argv[2]), size = argc > 3 ? atoi(argv[3]) : 1024;
  if (n < 1 || n > 256 || rounds < 1 || size < 1 || size > 65536) {
    fprintf(stderr, "CONNS 1..256, ROUNDS >= 1, SIZE 1..65536\n");
    return 2;
  }
  int l = socket(AF_INET, SOCK_STREAM, 0);
  struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
  socklen_t al = sizeof a;
  if (bind(l, (void *)&a, sizeof a) || listen(l, 1024) || getsockname(l, (void *)&a, &al)) {
    perror("listen");
    return 1;
  }
  int *s = calloc((size_t)n, sizeof *s), *c = calloc((size_t)n, sizeof *c), one = 1;
  for (int i = 0; i < n; i++) {
    c[i] = socket(AF_INET, SOCK_STREAM, 0);
    if (connect(c[i], (void *)&a, sizeof a) || (s[i] = accept(l, 0, 0)) < 0) {
      perror("connect");
      return 1;
    }
    setsockopt(s[i], IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    setsockopt(c[i], IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  }
  char *buf = aligned_alloc(4096, 65536), *rb = aligned_alloc(4096, 65536);
  memset(buf, 'x', 65536);
  if (ring_setup(256)) {
    perror("io_uring_setup");
    return 1;
  }
  double t_send = 0, t_ring = 0;
  for (int r = 0; r < rounds; r++) {
    for (int mode = 0; mode < 2; mode++) {
      double t0 = now();
      if (mode == 0) {
        for (int i = 0; i < n; i++)
          if (send(s[i], buf, (size_t)size, MSG_DONTWAIT | MSG_NOSIGNAL) != size) abort();
      } else {
        unsigned tail = *sq_tail;
        for (int i = 0; i < n; i++, tail++) {
          unsigned idx = tail & *sq_mask;
          struct io_uring_sqe *e = &sqes[idx];
          memset(e, 0, sizeof *e);
          e->opcode = IORING_OP_SEND;
          e->fd = s[i];
          e->addr = (uintptr_t)buf;
          e->len = (unsigned)size;
          e->msg_flags = MSG_DONTWAIT | MSG_NOSIGNAL;
          e->user_data = (uint64_t)i;
          sq_array[idx] = idx;
        }
        atomic_store_explicit((_Atomic unsigned *)sq_tail, tail, memory_order_release);
        if (syscall(__NR_io_uring_enter, ring_fd, n, n, IORING_ENTER_GETEVENTS, NULL, 0) != n) abort();
        unsigned h = *cq_head, t = atomic_load_explicit((_Atomic unsigned *)cq_tail, memory_order_acquire);
        for (; h != t; h++)
          if (cqes[h & *cq_mask].res != size) abort();
        atomic_store_explicit((_Atomic unsigned *)cq_head, h, memory_order_release);
      }
      double dt = now() - t0;
      if (mode == 0) t_send += dt;
      else t_ring += dt;
      for (int i = 0; i < n; i++)
        for (int left = size; left > 0;) {
          ssize_t got = read(c[i], rb, (size_t)left);
          if (got <= 0) abort();
          left -= (int)got;
        }
    }
  }
  printf("conns %d, %d bytes: send(2) %.3f us/send, io_uring batch %.3f us/send (%.2fx)\n", n, size,
         t_send / rounds / n * 1e6, t_ring / rounds / n * 1e6, t_send / t_ring);
  return 0;
}
