/* uring.c - one io_uring per loop, for the reads and sends of an iteration.
 *
 * Each read of a ready socket (stream.c, from libev's callbacks) and each
 * send of coalesced writes (stream.c's flush nodes, from the late queue)
 * would cost a syscall of its own: at W4's 100
 * connections two kernel entries per request, 0.7 us each on the
 * reference VM before any TCP work. Here they are queued instead, and the
 * loop makes each group (the reads after ev_run, the sends after the late
 * queue) in one io_uring_enter. Every op carries MSG_DONTWAIT, so the
 * kernel never parks one: it completes inline (bytes, or -EAGAIN), and
 * the enter returns with every completion posted (it waits for all of
 * them, which with MSG_DONTWAIT is never long). What a socket did not take
 * or give goes the usual way: the stream's watchers.
 *
 * A group of one is made by its own syscall (the ring would only add to
 * it). The ring is made for a loop's first group of two or more. Where
 * io_uring is missing or refused (an old kernel, seccomp), with
 * RILL_IO_URING=0 in the environment when the loop is made, or in a child
 * forked after the ring was made (it is the parent's), each op is made by
 * its own syscall. No allocation happens per op: an op lives in its stream.
 * The awaitable face reads into its stream's buffer; the callback face,
 * whose bytes are borrowed for the call, into a slot of the loop's read
 * arena, held until its callback ran (a new group takes no slot while an
 * earlier group's are held: those streams read by themselves). */
#include <errno.h>
#include <linux/io_uring.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "io_internal.h"

/* valgrind's memcheck does not see the kernel write a ring's receive into
 * its buffer: tell it (a no-op outside valgrind; absent without its
 * headers). */
#if defined(__has_include)
#if __has_include(<valgrind/memcheck.h>)
#include <valgrind/memcheck.h>
#endif
#endif
#ifndef VALGRIND_MAKE_MEM_DEFINED
#define VALGRIND_MAKE_MEM_DEFINED(p, n) ((void)(p), (void)(n))
#endif

#define RING_ENTRIES 256
/* The read arena: a group's callback-face reads share ARENA_SPAN, each
 * slot between SLOT_MIN and SLOT_MAX (a lone read gets what the direct
 * path's shared buffer had). Slots start a cache line apart modulo a page,
 * so a group's small reads do not all fall in the same cache sets (the
 * stride is a slot and a line). */
#define ARENA_SPAN (4u << 20)
#define SLOT_MAX (256u * 1024)
#define SLOT_MIN 4096u
#define SLOT_SKEW 64u

struct rill__uring {
  int fd;
  unsigned gen; /* rill__fork_gen when made */
  unsigned entries;
  unsigned *sq_tail, *sq_mask, *sq_array;
  unsigned *cq_head, *cq_tail, *cq_mask;
  struct io_uring_sqe *sqes;
  struct io_uring_cqe *cqes;
  void *sq_map, *cq_map;
  size_t sq_size, cq_size, sqes_size;
};

atomic_uint rill__fork_gen;

static int ring_setup(unsigned entries, struct io_uring_params *p, unsigned flags) {
  memset(p, 0, sizeof *p);
  p->flags = flags;
  return (int)syscall(__NR_io_uring_setup, entries, p);
}

static void ring_unmap(struct rill__uring *r) {
  if (r->sqes && r->sqes != MAP_FAILED) munmap(r->sqes, r->sqes_size);
  if (r->cq_map && r->cq_map != MAP_FAILED && r->cq_map != r->sq_map) munmap(r->cq_map, r->cq_size);
  if (r->sq_map && r->sq_map != MAP_FAILED) munmap(r->sq_map, r->sq_size);
}

static struct rill__uring *ring_new(void) {
  struct rill__uring *r = calloc(1, sizeof *r);
  if (!r) return NULL;
  struct io_uring_params p;
  /* COOP_TASKRUN (5.19): no interrupt to run completion work; the loop
   * enters the kernel each iteration anyway. */
  int fd = ring_setup(RING_ENTRIES, &p, IORING_SETUP_COOP_TASKRUN);
  if (fd < 0 && errno == EINVAL) fd = ring_setup(RING_ENTRIES, &p, 0);
  if (fd < 0) {
    free(r);
    return NULL;
  }
  r->fd = fd;
  r->entries = p.sq_entries;
  r->sq_size = p.sq_off.array + p.sq_entries * sizeof(unsigned);
  r->cq_size = p.cq_off.cqes + p.cq_entries * sizeof(struct io_uring_cqe);
  int single = (p.features & IORING_FEAT_SINGLE_MMAP) != 0;
  if (single && r->cq_size > r->sq_size) r->sq_size = r->cq_size;
  r->sq_map = mmap(NULL, r->sq_size, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_POPULATE, fd,
                   IORING_OFF_SQ_RING);
  if (r->sq_map == MAP_FAILED) goto fail;
  r->cq_map = single ? r->sq_map
                     : mmap(NULL, r->cq_size, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_POPULATE,
                            fd, IORING_OFF_CQ_RING);
  if (r->cq_map == MAP_FAILED) goto fail;
  r->sqes_size = p.sq_entries * sizeof(struct io_uring_sqe);
  r->sqes = mmap(NULL, r->sqes_size, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_POPULATE, fd,
                 IORING_OFF_SQES);
  if (r->sqes == MAP_FAILED) goto fail;
  char *sq = r->sq_map, *cq = r->cq_map;
  r->sq_tail = (unsigned *)(sq + p.sq_off.tail);
  r->sq_mask = (unsigned *)(sq + p.sq_off.ring_mask);
  r->sq_array = (unsigned *)(sq + p.sq_off.array);
  r->cq_head = (unsigned *)(cq + p.cq_off.head);
  r->cq_tail = (unsigned *)(cq + p.cq_off.tail);
  r->cq_mask = (unsigned *)(cq + p.cq_off.ring_mask);
  r->cqes = (struct io_uring_cqe *)(cq + p.cq_off.cqes);
  r->gen = atomic_load_explicit(&rill__fork_gen, memory_order_relaxed);
  return r;
fail:
  ring_unmap(r);
  close(fd);
  free(r);
  return NULL;
}

static void arena_free(rill_loop *loop) {
  free(loop->read_arena);
  loop->read_arena = NULL;
  loop->read_arena_cap = 0;
}

void rill__uring_free(rill_loop *loop) {
  arena_free(loop);
  struct rill__uring *r = loop->uring;
  if (!r) return;
  ring_unmap(r);
  close(r->fd);
  free(r);
  loop->uring = NULL;
}

int rill__uring_queue(rill_loop *loop, rill__uring_op *op, int recv, int fd, void *p, size_t n) {
  if (loop->uring_off || (!p && loop->read_arena_busy)) return -1;
  op->recv = recv;
  op->fd = fd;
  op->p = p;
  op->n = n > 0x7fffffff ? 0x7fffffff : n; /* the rest after this one completes */
  op->state = RILL__OP_QUEUED;
  op->qnext = NULL;
  if (loop->uring_tail) loop->uring_tail->qnext = op;
  else loop->uring_head = op;
  loop->uring_tail = op;
  loop->uring_count++;
  return 0;
}

static void finish(rill__uring_op *op, int res, rill__uring_op **done) {
  op->res = res;
  op->state = RILL__OP_DONE;
  op->next = *done;
  *done = op;
}

/* One op by its own syscall, as the stream would have made it. */
static void direct(rill__uring_op *op, rill__uring_op **done) {
  ssize_t n = op->recv ? recv(op->fd, op->p, op->n, MSG_DONTWAIT)
                       : send(op->fd, op->p, op->n, MSG_DONTWAIT | MSG_NOSIGNAL);
  finish(op, n < 0 ? -errno : (int)n, done);
}

/* Takes every posted completion; returns how many. */
static unsigned reap(struct rill__uring *r, rill__uring_op **done) {
  unsigned head = *r->cq_head, n = 0;
  unsigned tail = atomic_load_explicit((_Atomic unsigned *)r->cq_tail, memory_order_acquire);
  for (; head != tail; head++, n++) {
    struct io_uring_cqe *c = &r->cqes[head & *r->cq_mask];
    rill__uring_op *op = (rill__uring_op *)(uintptr_t)c->user_data;
    if (op->recv && c->res > 0) VALGRIND_MAKE_MEM_DEFINED(op->p, (size_t)c->res);
    finish(op, c->res, done);
  }
  atomic_store_explicit((_Atomic unsigned *)r->cq_head, head, memory_order_release);
  return n;
}

/* Up to r->entries ops from *list through the ring, in one enter (more
 * only if the kernel took part of the batch); *list moves past them. 0,
 * or -1 if the ring refused them (*list stays). */
static int ring_batch(struct rill__uring *r, rill__uring_op **list, rill__uring_op **done) {
  unsigned tail = *r->sq_tail, count = 0;
  rill__uring_op *op = *list;
  for (; op && count < r->entries; op = op->qnext, count++, tail++) {
    unsigned idx = tail & *r->sq_mask;
    struct io_uring_sqe *e = &r->sqes[idx];
    memset(e, 0, sizeof *e);
    e->opcode = op->recv ? IORING_OP_RECV : IORING_OP_SEND;
    e->fd = op->fd;
    e->addr = (uintptr_t)op->p;
    e->len = (unsigned)op->n;
    e->msg_flags = op->recv ? MSG_DONTWAIT : MSG_DONTWAIT | MSG_NOSIGNAL;
    e->user_data = (uintptr_t)op;
    r->sq_array[idx] = idx;
  }
  atomic_store_explicit((_Atomic unsigned *)r->sq_tail, tail, memory_order_release);
  unsigned unsubmitted = count, inflight = 0;
  while (unsubmitted || inflight) {
    /* Submit what is left and wait for all of it: with MSG_DONTWAIT each
     * completes inline. A partial submit returns without waiting. */
    int rc = (int)syscall(__NR_io_uring_enter, r->fd, unsubmitted, unsubmitted + inflight,
                          IORING_ENTER_GETEVENTS, NULL, 0);
    if (rc == 0 && unsubmitted && !inflight) {
      break; /* took none and none pending: refused */
    } else if (rc >= 0) {
      unsubmitted -= (unsigned)rc;
      inflight += (unsigned)rc;
    } else if (errno != EINTR && !((errno == EAGAIN || errno == EBUSY) && inflight)) {
      break;
    }
    inflight -= reap(r, done);
  }
  if (!unsubmitted && !inflight) {
    *list = op;
    return 0;
  }
  /* Refused (it should not be). The kernel takes SQEs in order: an op it
   * took and did not complete has an unknown outcome, and fails (EIO:
   * never sent twice); the ones it did not take stay QUEUED at *list, for
   * the caller to make by themselves. Their SQEs stay in a ring nobody
   * enters again. */
  rill__uring_op *o = *list;
  for (unsigned i = 0; i < count - unsubmitted; i++, o = o->qnext)
    if (o->state == RILL__OP_QUEUED) finish(o, -EIO, done);
  return -1;
}

void rill__uring_arena_put(rill_loop *loop) {
  if (loop->read_arena_busy) loop->read_arena_busy--;
}

/* Gives each arena read of *list a slot. Past the arena's span (over a
 * thousand reads in one group) or without memory for it, an op gets none:
 * it completes at once with p still NULL, off *list, and its owner reads
 * by itself. Returns how many ops are left on *list. */
static unsigned place_arena_reads(rill_loop *loop, rill__uring_op **list, unsigned count,
                                  rill__uring_op **done) {
  unsigned k = 0;
  for (rill__uring_op *op = *list; op; op = op->qnext) k += op->recv && !op->p;
  if (!k) return count;
  size_t slot = ARENA_SPAN / k;
  slot = slot > SLOT_MAX ? SLOT_MAX : slot < SLOT_MIN ? SLOT_MIN : slot & ~(size_t)(SLOT_MIN - 1);
  size_t stride = slot + SLOT_SKEW, slots = ARENA_SPAN / stride;
  if (slots > k) slots = k;
  size_t need = slots * stride;
  /* read_arena_busy is 0 here: rill__uring_queue turns arena reads away
   * while an earlier group's slots are held, and every op queued since is
   * in this submit. */
  if (need > loop->read_arena_cap && !loop->read_arena_busy) {
    arena_free(loop);
    if ((loop->read_arena = rill__io_buffer(need))) loop->read_arena_cap = need;
  }
  if (need > loop->read_arena_cap || loop->read_arena_busy) slots = 0;
  rill__uring_op **link = list;
  unsigned i = 0;
  for (rill__uring_op *op = *list; op; op = *link) {
    if (!op->recv || op->p) {
      link = &op->qnext;
    } else if (i < slots) {
      op->p = loop->read_arena + (size_t)i * stride;
      op->n = slot;
      i++;
      loop->read_arena_busy++; /* put back by the owner once it used the bytes */
      link = &op->qnext;
    } else {
      *link = op->qnext;
      count--;
      finish(op, -ENOBUFS, done);
    }
  }
  return count;
}

void rill__uring_submit(rill_loop *loop) {
  rill__uring_op *list = loop->uring_head, *done = NULL;
  if (!list) return;
  unsigned count = loop->uring_count;
  loop->uring_head = loop->uring_tail = NULL;
  loop->uring_count = 0;
  count = place_arena_reads(loop, &list, count, &done);
  /* One op gains nothing from the ring: its own syscall is cheaper. So is
   * a ring made before a fork (it is the parent's). */
  struct rill__uring *r = NULL;
  if (count > 1 && !loop->uring_off) {
    r = loop->uring;
    if (!r && !(r = loop->uring = ring_new())) loop->uring_off = 1;
    if (r && r->gen != atomic_load_explicit(&rill__fork_gen, memory_order_relaxed)) r = NULL;
  }
  while (r && list) {
    if (ring_batch(r, &list, &done) < 0) {
      loop->uring_off = 1;
      break;
    }
  }
  for (rill__uring_op *op = list; op; op = op->qnext)
    if (op->state == RILL__OP_QUEUED) direct(op, &done);
  /* Handlers run last, so each sees every other op settled, in the order
   * the ops completed (the list was built backwards); one that ran early
   * through rill__uring_settle is skipped. */
  rill__uring_op *fwd = NULL;
  while (done) {
    rill__uring_op *op = done;
    done = op->next;
    op->next = fwd;
    fwd = op;
  }
  done = fwd;
  while (done) {
    rill__uring_op *op = done;
    done = op->next;
    if (op->state == RILL__OP_DONE) {
      op->state = RILL__OP_IDLE;
      op->done(op);
    }
  }
}

void rill__uring_settle(rill_loop *loop, rill__uring_op *op) {
  if (op->state == RILL__OP_QUEUED) rill__uring_submit(loop);
  if (op->state == RILL__OP_DONE) {
    op->state = RILL__OP_IDLE;
    op->done(op);
  }
}
