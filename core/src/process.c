/* process.c - child processes: spawn with argv, env, cwd and stdio; an
 * awaitable exit status; signals; no zombies, on any loop.
 *
 * posix_spawnp (vfork-fast, reports exec failures) with every fd rill
 * makes close-on-exec. Each child is reaped by pid, never waitpid(-1), so
 * other code's children are left alone: with a pidfd (Linux >= 5.3) an
 * ev_io on it says when the child ended; without one a 20 ms ev_timer
 * polls waitpid(pid, WNOHANG). A watched child counts as loop work
 * (io_active), so rill_loop_run keeps going until it ended, and a busy
 * loop still polls for it. Loop close kills (SIGKILL) and reaps children
 * still running, as asyncio's transports do on close. */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "internal.h"
#include "io_internal.h"

extern char **environ;

struct rill_process {
  int refs; /* the caller's + the loop's while the child is unreaped */
  rill_loop *loop;
  pid_t pid;
  int pidfd; /* -1 without pidfd */
  int exited, returncode;
  int fds[3]; /* parent ends of pipes, -1 if none or taken */
  int watching;
  ev_io io;
  ev_timer poll;
  rill_future *exit_fut; /* INT returncode, set on exit */
  rill_process *prev, *next; /* loop->processes while watched */
};

static int open_pidfd(pid_t pid) {
#ifdef SYS_pidfd_open
  static int disabled = -1;
  if (disabled < 0) {
    const char *e = getenv("RILL_NO_PIDFD"); /* tests force the fallback */
    disabled = e && e[0] == '1';
  }
  if (!disabled) return (int)syscall(SYS_pidfd_open, pid, 0);
#endif
  (void)pid;
  errno = ENOSYS;
  return -1;
}

/* ---------------------------------------------------------------- */
/* Exit                                                               */

static void unwatch(rill_process *p) {
  rill_loop *loop = p->loop;
  if (!p->watching) return;
  p->watching = 0;
  if (p->pidfd >= 0) ev_io_stop(loop->ev, &p->io);
  else ev_timer_stop(loop->ev, &p->poll);
  loop->io_active--;
  if (p->prev) p->prev->next = p->next;
  else loop->processes = p->next;
  if (p->next) p->next->prev = p->prev;
  p->prev = p->next = NULL;
}

static void process_unref(rill_process *p) {
  if (--p->refs > 0) return;
  rill_loop *loop = p->loop;
  for (int i = 0; i < 3; i++)
    if (p->fds[i] >= 0) close(p->fds[i]);
  if (p->pidfd >= 0) close(p->pidfd);
  rill_future_release(p->exit_fut);
  free(p);
  rill__loop_release(loop);
}

/* Reaps the child if it has ended (block: wait for it). 1 if reaped. */
static int try_reap(rill_process *p, int block) {
  int status = 0;
  pid_t r;
  do r = waitpid(p->pid, &status, block ? 0 : WNOHANG);
  while (r < 0 && errno == EINTR);
  if (r == 0) return 0;
  p->exited = 1;
  /* r < 0: reaped by other code (waitpid(-1), SIGCHLD ignored); the status
   * is lost: 255, as asyncio reports for an unknown child. */
  p->returncode = r < 0 ? 255 : WIFSIGNALED(status) ? -WTERMSIG(status) : WEXITSTATUS(status);
  unwatch(p);
  if (p->exit_fut->state == RILL_PENDING) rill_future_set_int(p->exit_fut, p->returncode);
  process_unref(p); /* the loop's */
  return 1;
}

static void pidfd_cb(struct ev_loop *ev, ev_io *w, int revents) {
  (void)ev, (void)revents;
  try_reap(RILL__CONTAINER(w, rill_process, io), 0);
}

static void poll_cb(struct ev_loop *ev, ev_timer *w, int revents) {
  (void)ev, (void)revents;
  try_reap(RILL__CONTAINER(w, rill_process, poll), 0);
}

/* ---------------------------------------------------------------- */
/* Spawn                                                              */

static int set_nonblock(int fd) {
  int fl = fcntl(fd, F_GETFL);
  return fl < 0 ? -1 : fcntl(fd, F_SETFL, fl | O_NONBLOCK);
}

/* A close-on-exec copy of fd at 3 or above (so dup2 onto 0..2 never finds
 * the source already in place), the original closed. */
static int lift_fd(int fd) {
  if (fd >= 3) return fd;
  int copy = fcntl(fd, F_DUPFD_CLOEXEC, 3);
  int e = errno;
  close(fd);
  errno = e;
  return copy;
}

rill_process *rill_process_spawn(rill_loop *loop, const char *const argv[],
                                 const char *const envp[], const char *cwd, const int stdio[3]) {
  if (rill__loop_check(loop)) return NULL;
  if (!argv || !argv[0] || !argv[0][0]) {
    rill__fail(RILL_EINVAL, "argv must hold a program name");
    return NULL;
  }
  int modes[3] = {RILL_STDIO_INHERIT, RILL_STDIO_INHERIT, RILL_STDIO_INHERIT};
  for (int i = 0; stdio && i < 3; i++) {
    modes[i] = stdio[i];
    if (modes[i] < RILL_STDIO_INHERIT || modes[i] > RILL_STDIO_STDOUT ||
        (modes[i] == RILL_STDIO_STDOUT && i != 2)) {
      rill__fail(RILL_EINVAL, "stdio[%d] = %d is not a valid mode", i, modes[i]);
      return NULL;
    }
  }
  rill_process *p = calloc(1, sizeof *p);
  if (!p) {
    rill__fail(RILL_ENOMEM, "out of memory spawning %s", argv[0]);
    return NULL;
  }
  p->pidfd = -1;
  p->fds[0] = p->fds[1] = p->fds[2] = -1;
  int child_end[3] = {-1, -1, -1};
  int rc = RILL_OK, err = 0;
  const char *what = "pipe";
  for (int i = 0; i < 3 && !rc; i++) {
    if (modes[i] != RILL_STDIO_PIPE) continue;
    int fds[2];
    if (pipe2(fds, O_CLOEXEC) != 0) {
      err = errno, rc = RILL_ESYS;
      break;
    }
    int mine = i == 0 ? fds[1] : fds[0], theirs = i == 0 ? fds[0] : fds[1];
    child_end[i] = lift_fd(theirs);
    p->fds[i] = mine;
    if (child_end[i] < 0 || set_nonblock(mine) != 0) err = errno, rc = RILL_ESYS;
  }
  posix_spawn_file_actions_t fa;
  posix_spawnattr_t attr;
  int fa_ok = 0, attr_ok = 0;
  if (!rc) {
    what = "posix_spawn setup";
    if ((err = posix_spawn_file_actions_init(&fa)) == 0) fa_ok = 1;
    if (!err && (err = posix_spawnattr_init(&attr)) == 0) attr_ok = 1;
    for (int i = 0; i < 3 && !err; i++) {
      if (modes[i] == RILL_STDIO_PIPE) err = posix_spawn_file_actions_adddup2(&fa, child_end[i], i);
      else if (modes[i] == RILL_STDIO_DEVNULL)
        err = posix_spawn_file_actions_addopen(&fa, i, "/dev/null", i == 0 ? O_RDONLY : O_WRONLY, 0);
      else if (modes[i] == RILL_STDIO_STDOUT) err = posix_spawn_file_actions_adddup2(&fa, 1, 2);
    }
    if (!err && cwd) err = posix_spawn_file_actions_addchdir_np(&fa, cwd);
    /* The child starts with no signal blocked and every signal at its
     * default action (a loop thread may block some; SIGPIPE may be
     * ignored in the parent). */
    sigset_t none, all;
    sigemptyset(&none);
    sigfillset(&all);
    sigdelset(&all, SIGKILL);
    sigdelset(&all, SIGSTOP);
    if (!err) err = posix_spawnattr_setsigmask(&attr, &none);
    if (!err) err = posix_spawnattr_setsigdefault(&attr, &all);
    if (!err) err = posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF);
    if (err) rc = RILL_ESYS;
  }
  if (!rc) {
    what = NULL;
    err = posix_spawnp(&p->pid, argv[0], &fa, &attr, (char *const *)argv,
                       envp ? (char *const *)envp : environ);
    if (err) rc = RILL_ESPAWN;
  }
  if (fa_ok) posix_spawn_file_actions_destroy(&fa);
  if (attr_ok) posix_spawnattr_destroy(&attr);
  for (int i = 0; i < 3; i++)
    if (child_end[i] >= 0) close(child_end[i]);
  if (!rc && !(p->exit_fut = rill_future_new(loop))) {
    /* The child runs already: it must still be reaped. */
    kill(p->pid, SIGKILL);
    waitpid(p->pid, NULL, 0);
    rc = RILL_ENOMEM, err = ENOMEM, what = "the exit future";
  }
  if (rc) {
    for (int i = 0; i < 3; i++)
      if (p->fds[i] >= 0) close(p->fds[i]);
    free(p);
    if (rc == RILL_ESPAWN)
      rill__fail_code_errno(rc, err, "could not start %s%s%s: %s", argv[0], cwd ? " in " : "",
                            cwd ? cwd : "", strerror(err));
    else rill__fail_code_errno(rc, err, "spawning %s: %s failed: %s", argv[0], what, strerror(err));
    return NULL;
  }
  p->refs = 2; /* the caller's and the loop's until reaped */
  p->loop = loop;
  rill__loop_retain(loop);
  p->pidfd = open_pidfd(p->pid);
  if (p->pidfd >= 0) {
    ev_io_init(&p->io, pidfd_cb, p->pidfd, EV_READ);
    ev_io_start(loop->ev, &p->io);
  } else {
    ev_timer_init(&p->poll, poll_cb, 0.02, 0.02);
    ev_timer_start(loop->ev, &p->poll);
  }
  p->watching = 1;
  loop->io_active++;
  p->next = loop->processes;
  if (p->next) p->next->prev = p;
  loop->processes = p;
  return p;
}

/* ---------------------------------------------------------------- */
/* Using it                                                           */

int rill_process_pid(const rill_process *p) {
  if (!p) return rill__fail(RILL_EINVAL, "process is NULL");
  return (int)p->pid;
}

static int check_which(const rill_process *p, int which) {
  if (!p) return rill__fail(RILL_EINVAL, "process is NULL");
  if (which < 0 || which > 2) return rill__fail(RILL_EINVAL, "which must be 0, 1 or 2");
  if (p->fds[which] < 0) return rill__fail(RILL_ESTATE, "stdio %d is not a pipe of this process (or was taken)", which);
  return RILL_OK;
}

int rill_process_fd(const rill_process *p, int which) {
  int rc = check_which(p, which);
  return rc ? rc : p->fds[which];
}

int rill_process_take_fd(rill_process *p, int which) {
  int rc = check_which(p, which);
  if (rc) return rc;
  int fd = p->fds[which];
  p->fds[which] = -1;
  return fd;
}

rill_stream *rill_process_stream(rill_process *p, int which) {
  int fd = rill_process_take_fd(p, which);
  if (fd < 0) return NULL;
  rill_stream *s = rill_stream_open_fd(p->loop, fd);
  if (!s) p->fds[which] = fd; /* still the process's */
  return s;
}

rill_future *rill_process_wait(rill_process *p) {
  if (!p) {
    rill__fail(RILL_EINVAL, "process is NULL");
    return NULL;
  }
  /* A shield per waiter: cancelling one wait never cancels the exit. */
  return rill_shield(p->loop, p->exit_fut);
}

int rill_process_returncode(const rill_process *p, int *out) {
  if (!p || !out) return rill__fail(RILL_EINVAL, "process or out is NULL");
  if (!p->exited) return rill__fail(RILL_ESTATE, "the process is still running");
  *out = p->returncode;
  return RILL_OK;
}

int rill_process_send_signal(rill_process *p, int signum) {
  if (!p) return rill__fail(RILL_EINVAL, "process is NULL");
  if (signum < 0 || signum >= 65) return rill__fail(RILL_EINVAL, "%d is not a signal", signum);
  if (p->exited) return rill__fail(RILL_ESTATE, "the process has exited");
  int r;
#ifdef SYS_pidfd_send_signal
  if (p->pidfd >= 0) r = (int)syscall(SYS_pidfd_send_signal, p->pidfd, signum, NULL, 0);
  else
#endif
    r = kill(p->pid, signum); /* safe: unreaped, so the pid is still ours */
  if (r != 0) return rill__fail(RILL_ESYS, "signal %d to process %d: %s", signum, (int)p->pid, strerror(errno));
  return RILL_OK;
}

int rill_process_kill(rill_process *p) { return rill_process_send_signal(p, SIGKILL); }

void rill_process_release(rill_process *p) {
  if (p) process_unref(p);
}

/* Loop close: children still running are killed and reaped. */
void rill__process_close(rill_loop *loop) {
  while (loop->processes) {
    rill_process *p = loop->processes;
    rill_process_send_signal(p, SIGKILL);
    try_reap(p, 1);
  }
}

double rill__process_timeout(rill_loop *loop) {
  for (rill_process *p = loop->processes; p; p = p->next)
    if (p->pidfd < 0) return 0.02; /* the waitpid poll of the fallback */
  return 1e300 * 1e300;
}
