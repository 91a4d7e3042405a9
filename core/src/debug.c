/* debug.c - the task dump: every pending task, its state, what it awaits. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"

typedef struct text {
  char *buf;
  size_t len, cap;
  int failed;
} text;

static void append(text *t, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void append(text *t, const char *fmt, ...) {
  if (t->failed) return;
  for (;;) {
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(t->buf + t->len, t->cap - t->len, fmt, ap);
    va_end(ap);
    if (n < 0) {
      t->failed = 1;
      return;
    }
    if ((size_t)n < t->cap - t->len) {
      t->len += (size_t)n;
      return;
    }
    size_t cap = t->cap * 2 + (size_t)n + 1;
    char *buf = realloc(t->buf, cap);
    if (!buf) {
      t->failed = 1;
      return;
    }
    t->buf = buf;
    t->cap = cap;
  }
}

static const char *state_name(int state) {
  switch (state) {
  case RILL_PENDING: return "pending";
  case RILL_DONE: return "done";
  case RILL_FAILED: return "failed";
  default: return "cancelled";
  }
}

char *rill_loop_dump_tasks(rill_loop *loop) {
  if (rill__loop_check(loop)) return NULL;
  text t = {malloc(256), 0, 256, 0};
  if (!t.buf) {
    rill__fail(RILL_ENOMEM, "out of memory for the task dump");
    return NULL;
  }
  t.buf[0] = 0;
  append(&t, "%d pending task%s\n", loop->task_count, loop->task_count == 1 ? "" : "s");
  for (rill_task *task = loop->tasks_head; task; task = rill__task_next(task)) {
    append(&t, "  %s: ", rill__task_name(task));
    switch (task->wait) {
    case RILL__T_NEW:
    case RILL__T_READY: append(&t, "ready to run"); break;
    case RILL__T_RUNNING: append(&t, "running"); break;
    case RILL__T_TIMER:
      append(&t, "sleeping, wakes in %.3f s", task->extra->timer.when - loop->now);
      break;
    case RILL__T_FUTURE: {
      rill_task *inner = rill__as_task(task->awaiting);
      if (inner) append(&t, "awaiting task %s (%s)", rill__task_name(inner), state_name(inner->fut.state));
      else if (task->awaiting)
        append(&t, "awaiting a %s (%s)", task->awaiting->type->name, state_name(task->awaiting->state));
      break;
    }
    default: append(&t, "done"); break;
    }
    if (task->must_cancel || task->cancelling) append(&t, ", cancel requested x%d", task->cancelling);
    append(&t, "\n");
  }
  if (t.failed) {
    free(t.buf);
    rill__fail(RILL_ENOMEM, "out of memory for the task dump");
    return NULL;
  }
  return t.buf;
}
