/* io_internal.h - what io.c, stream.c, listener.c and udp.c share. */
#ifndef RILL_IO_INTERNAL_H
#define RILL_IO_INTERNAL_H

#include <stdlib.h>
#include <sys/socket.h>

#include "internal.h"

/* An object with an fd that loop close must abort (stream, listener, udp). */
typedef struct rill__io_obj rill__io_obj;
struct rill__io_obj {
  rill__io_obj *prev, *next;
  void (*loop_closing)(rill__io_obj *obj);
};

struct rill__fdw;
struct fd_wait;
struct rill__io {
  rill__io_obj *objs;
  struct rill__fdw **readers, **writers; /* indexed by fd */
  size_t cap;
  struct fd_wait *waits; /* the armed one-shot waits (rill_fd_wait) */
  /* fds of the caller's that got a watcher since the last poll: checked
   * before it (rill__io_check_new_fds), as libev aborts on a closed one */
  int *fresh;
  size_t nfresh, fresh_cap;
  int fresh_lost; /* an fd could not be noted (ENOMEM): check every watched fd */
  int nofile;     /* RLIMIT_NOFILE's soft limit, read at the first wait */
  int gone;       /* fds found closed by the last rill__io_check_new_fds */
};

/* Before libev polls (rill__ev_run): a caller's fd that was closed after
 * its watcher started and before libev handed it to the kernel would make
 * libev's epoll_ctl fail with EBADF, which libev treats as a fatal bug
 * (an assertion). One poll(2) over those fds finds them: their
 * add_reader/add_writer watchers stop (their callbacks never run, as with
 * asyncio's selector), their rill_fd_wait futures fail with RILL_EBADF.
 * Returns how many fds it found closed (then the poll must not block:
 * those failures are work, and the watchers were what it waited for). */
RILL__HIDDEN int rill__io_check_new_fds(rill_loop *loop);

/* A buffer the kernel copies received bytes into (read, recvfrom):
 * page-aligned, freed with free(); NULL on ENOMEM. The kernel's copy to
 * user space uses rep movsb, which on AMD Zen runs ~20x slower when
 * (destination - source) mod 64 is 8 to 31; a socket's data evidently
 * starts 64-byte aligned (an aligned destination is the fast case), and
 * malloc's blocks are only 16-byte aligned: a
 * 64 KiB loopback TCP round trip took 56 us reading into malloc + 16
 * against 24 us into an aligned buffer on the reference VM (issue 12's W4
 * 64 KiB cells; bench/README.md). */
static inline char *rill__io_buffer(size_t n) {
  void *p;
  return posix_memalign(&p, 4096, n) ? NULL : (char *)p;
}

/* uring.c: a loop's batched sends. An op lives in its owner (a stream);
 * done runs once its send completed, with res the bytes sent or -errno. */
typedef struct rill__uring_op rill__uring_op;
enum { RILL__OP_IDLE, RILL__OP_QUEUED, RILL__OP_DONE };
struct rill__uring_op {
  void (*done)(rill__uring_op *op);
  rill__uring_op *next, *qnext;
  int res, state;
  int recv, fd; /* what to do (set by rill__uring_queue) */
  void *p;
  size_t n;
};
/* Queues a send of p[0..n) on fd (a socket), or with recv set a receive
 * into it, made by the next rill__uring_submit, non-blocking; n is capped
 * at INT_MAX. p must stay put until op's done ran. -1 when the loop has no
 * ring (refused, or RILL_IO_URING=0): do it directly. */
RILL__HIDDEN int rill__uring_queue(rill_loop *loop, rill__uring_op *op, int recv, int fd, void *p,
                                   size_t n);
/* A receive with p NULL lands in the loop's read arena: the submit gives
 * each such op a slot of its own (p and n are set then, the slot's size
 * shared out among the group's); its owner reads the bytes at p, then
 * calls rill__uring_arena_put. An op given no slot (the arena full or not
 * allocated) is done with p still NULL and nothing read: its owner reads
 * by itself. -1 (do it directly) also while an earlier group's slots are
 * still held. */
RILL__HIDDEN void rill__uring_arena_put(rill_loop *loop);
/* Makes every queued op, two or more in one io_uring_enter (one alone, or
 * in a child forked after the ring was made, by its own syscall), then
 * runs their done. */
RILL__HIDDEN void rill__uring_submit(rill_loop *loop);
/* op's send completed and its done ran (submitting the batch if needed). */
RILL__HIDDEN void rill__uring_settle(rill_loop *loop, rill__uring_op *op);
RILL__HIDDEN void rill__uring_free(rill_loop *loop);

RILL__HIDDEN int rill__io_register(rill_loop *loop, rill__io_obj *obj);
RILL__HIDDEN void rill__io_unregister(rill_loop *loop, rill__io_obj *obj);
/* ev_io start/stop that keep loop->io_active (the loop polls while > 0). */
RILL__HIDDEN void rill__io_start(rill_loop *loop, ev_io *w);
RILL__HIDDEN void rill__io_stop(rill_loop *loop, ev_io *w);
/* 0 if fd is an open descriptor, else records RILL_EBADF/RILL_EINVAL. */
RILL__HIDDEN int rill__check_fd(int fd);
/* Records the code for err (and err itself) with a message; returns it. */
RILL__HIDDEN int rill__fail_errno(int err, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Records code (not err's own) with the message as given, and err as the
 * errno behind it (rill_last_error_errno): RILL_ESPAWN keeps exec's errno. */
RILL__HIDDEN int rill__fail_code_errno(int code, int err, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* Fails f with err's code, msg, and a payload keeping err and the partial
 * bytes (may be NULL/0). f must be pending. */
RILL__HIDDEN void rill__future_fail_io(rill_future *f, int code, int err, const char *msg,
                                      const void *partial, size_t partial_len);
/* Completes f DONE with a copy of data (bytes). */
RILL__HIDDEN int rill__future_set_bytes_raw(rill_future *f, const void *data, size_t len);
/* Completes f DONE with a stream reference (moved into f). */
RILL__HIDDEN void rill__future_set_stream(rill_future *f, rill_stream *s);

/* Numeric addresses: host may be a comma separated list; NULL = 127.0.0.1.
 * Fills up to cap entries; returns the count or a code (RILL_ENOHOST for a
 * name: DNS comes with rill_getaddrinfo). */
typedef struct rill__addr {
  struct sockaddr_storage ss;
  socklen_t len;
} rill__addr;
RILL__HIDDEN int rill__parse_addrs(const char *host, int port, rill__addr *out, size_t cap);
RILL__HIDDEN void rill__format_addr(const struct sockaddr *sa, socklen_t len, char *buf, size_t cap);

/* Streams (stream.c). kind from the fd. listener: counts live connections. */
RILL__HIDDEN rill_stream *rill__stream_new(rill_loop *loop, int fd, rill_listener *listener);
RILL__HIDDEN void rill__listener_conn_closed(rill_listener *l); /* listener.c */
RILL__HIDDEN void rill__listener_retain(rill_listener *l);
extern const char rill__stream_tag;

#endif
