/* embed.c - rill inside a host's own poll set (a GUI or game loop), as
 * uv_backend_fd / uv_backend_timeout: the host polls the backend fd with
 * the backend timeout and calls rill_loop_run_once(loop, 0) when it is
 * readable or the timeout passed. */
#include <errno.h>
#include <math.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "internal.h"

/* libev has no ev_backend_fd; ev_embed, which watches an embeddable
 * loop's backend fd from another loop, reads it: start one on a
 * throwaway loop and take the fd from its io watcher. */
static int libev_backend_fd(struct ev_loop *ev) {
  if (!(ev_backend(ev) & ev_embeddable_backends())) return -1;
  struct ev_loop *outer = ev_loop_new(EVFLAG_AUTO | EVFLAG_NOENV);
  if (!outer) return -1;
  ev_embed w;
  ev_embed_init(&w, NULL, ev);
  ev_embed_start(outer, &w);
  int fd = w.io.fd;
  ev_embed_stop(outer, &w);
  ev_loop_destroy(outer);
  return fd;
}

/* libev's ev_async_send writes its wake-up pipe only while libev itself
 * sleeps in the kernel; a host sleeping in its own poll would never hear
 * it. So an exposed loop has one more eventfd in its backend set, written
 * by every wake-up (rill__loop_wake) and drained by its watcher. */
static void wake_cb(struct ev_loop *ev, ev_io *w, int revents) {
  (void)ev, (void)revents;
  uint64_t n;
  while (read(w->fd, &n, sizeof n) < 0 && errno == EINTR) {
  }
}

void rill__loop_wake(rill_loop *loop) {
  ev_async_send(loop->ev, &loop->async);
  int fd = atomic_load_explicit(&loop->wake_fd, memory_order_acquire);
  if (fd > 0) {
    uint64_t one = 1;
    ssize_t r = write(fd, &one, sizeof one); /* async-signal-safe */
    (void)r; /* EAGAIN: the counter is full, so it is readable anyway */
  }
}

void rill__embed_close(rill_loop *loop) {
  /* Under ts_lock: rill_call_soon_threadsafe wakes under it too, so no
   * thread writes to the fd once it is closed. */
  pthread_mutex_lock(&loop->ts_lock);
  int fd = atomic_exchange(&loop->wake_fd, 0);
  pthread_mutex_unlock(&loop->ts_lock);
  if (fd <= 0) return;
  ev_io_stop(loop->ev, &loop->wake_io);
  close(fd);
}

int rill_loop_backend_fd(rill_loop *loop) {
  int rc = rill__loop_check(loop);
  if (rc) return rc;
  int fd = libev_backend_fd(loop->ev);
  if (fd < 0) return rill__fail(RILL_ESYS, "this libev backend has no pollable fd");
  if (atomic_load(&loop->wake_fd) <= 0) {
    int efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    if (efd < 0) return rill__fail(RILL_ESYS, "eventfd: %s", strerror(errno));
    ev_io_init(&loop->wake_io, wake_cb, efd, EV_READ);
    ev_io_start(loop->ev, &loop->wake_io);
    rill__ev_run(loop, EVRUN_NOWAIT); /* into the kernel's set now */
    atomic_store_explicit(&loop->wake_fd, efd, memory_order_release);
  }
  /* From now on every iteration collects libev's events without blocking
   * (also when the ready queue is not empty), so the fd does not stay
   * readable with events nobody took. */
  loop->backend_exposed = 1;
  return fd;
}

double rill_loop_backend_timeout(rill_loop *loop) {
  if (rill__loop_check(loop)) return NAN;
  /* libev hands fd changes to the kernel when it polls: a watcher started
   * by the last batch must be in the set before the host waits on it. */
  int polled = !loop->running;
  if (polled) rill__ev_run(loop, EVRUN_NOWAIT);
  if (loop->ready.head || loop->late.head ||
      atomic_load_explicit(&loop->ts_pending, memory_order_relaxed)) {
    /* The host does not wait and runs the iteration next: that iteration
     * takes this poll as its own. A second poll right after this one would
     * find the fds whose watchers the callbacks just stopped still ready
     * (their tasks have not read yet) and make libev drop them from the
     * kernel's set, to add them back when the tasks wait again: two
     * epoll_ctl per one-shot wait (the Ruby scheduler's io_wait). */
    loop->host_polled = polled;
    return 0;
  }
  double t = INFINITY;
  rill__timer *next = rill__timer_peek(loop);
  if (next) {
    t = next->when - rill__clock();
    if (t < 0) t = 0;
  }
  double p = rill__process_timeout(loop);
  return p < t ? p : t;
}
