/* bindings/ruby/src/fiber.c - Fiber slots: the cap on live task fibers and the idle fibers reused by new tasks. */
#include "rill_ruby.h"

long live_fibers;
VALUE *idle_fibers;
long idle_n;
static long idle_capa;
VALUE idle_owner = Qnil;
long fiber_cap;


long rr_compute_fiber_cap(void) {
  const char *env = getenv("RILL_RUBY_MAX_FIBERS");
  if (env && atol(env) > 0) return atol(env);
  long max_maps = 65530, used = 0;
  FILE *fp = fopen("/proc/sys/vm/max_map_count", "r");
  if (fp) {
    if (fscanf(fp, "%ld", &max_maps) != 1) max_maps = 65530;
    fclose(fp);
  }
  fp = fopen("/proc/self/maps", "r");
  if (fp) {
    int c;
    while ((c = fgetc(fp)) != EOF)
      if (c == '\n') used++;
    fclose(fp);
  }
  /* Two maps per fiber stack; Ruby's fiber pool grows by up to 1024
   * stacks at once; keep room for the rest of the process. */
  long cap = (max_maps - used - 2 * 1024 - 3000) / 2;
  return cap < 64 ? 64 : cap;
}

void slotq_remove(rtask *rt) {
  if (!rt->queued) return;
  rloop *lp = rt->lp;
  if (rt->qprev) rt->qprev->qnext = rt->qnext;
  else lp->slotq_head = rt->qnext;
  if (rt->qnext) rt->qnext->qprev = rt->qprev;
  else lp->slotq_tail = rt->qprev;
  rt->qprev = rt->qnext = NULL;
  rt->queued = 0;
}

/* Idle fibers: a task's fiber, once its block is done, parks (yields)
 * and is reused by the next task that starts; this avoids Ruby's costly
 * fiber creation (stack mmap/munmap and page faults) per task. */
#define RR_IDLE_MAX 1024

/* Fibers cannot be resumed across threads: the idle list serves one thread. */
int idle_usable(void) { return idle_n > 0 && rb_thread_current() == idle_owner; }
VALUE idle_pop(void) { return idle_fibers[--idle_n]; }

static int idle_push(VALUE fib) {
  if (idle_n == 0) idle_owner = rb_thread_current();
  else if (idle_owner != rb_thread_current()) return 0;
  if (idle_n == idle_capa) {
    long nc = idle_capa ? idle_capa * 2 : 64;
    VALUE *p = realloc(idle_fibers, (size_t)nc * sizeof *p);
    if (!p) return 0;
    idle_fibers = p;
    idle_capa = nc;
  }
  idle_fibers[idle_n++] = fib;
  return 1;
}

/* Give freed room (a fiber slot, or an idle fiber) to the waiting tasks. */
static void grant_slots(rloop *lp) {
  while (lp->slotq_head && (idle_usable() || live_fibers + idle_n < fiber_cap)) {
    rtask *w = lp->slotq_head;
    slotq_remove(w);
    if (!w->slot || rill_future_set_none(w->slot) != 0) continue;
    w->has_slot = 1;
    live_fibers++;
    if (idle_usable()) w->fiber = idle_pop();
  }
}

/* A parked fiber (its task is done, or it was never used): to the idle
 * list, from which waiting tasks of this loop get it at once. */
static void park_fiber(rloop *lp, VALUE fib) {
  /* Kept even past RR_IDLE_MAX while the loop runs: ending a fiber now
   * costs a syscall (its stack goes back to Ruby's pool with madvise);
   * Rill.run trims the list when it returns. */
  if (!idle_push(fib)) {
    /* another thread's list, or no memory: drop it (the GC reclaims it) */
  }
  grant_slots(lp);
}

/* At the end of Rill.run: keep RR_IDLE_MAX idle fibers, let the GC have
 * the others. */
void trim_idle(void) {
  if (idle_n > RR_IDLE_MAX) {
    for (long i = RR_IDLE_MAX; i < idle_n; i++) idle_fibers[i] = Qnil;
    idle_n = RR_IDLE_MAX;
  }
}

/* The task gives back its slot: its fiber is parked (finished or never
 * started) or abandoned (suspended mid-body when the task is destroyed). */
void slot_release(rtask *rt) {
  VALUE fib = rt->fiber;
  rt->fiber = Qnil;
  if (!rt->has_slot) return;
  rt->has_slot = 0;
  live_fibers--;
  if (!NIL_P(fib) && (rt->finished || !rt->started)) park_fiber(rt->lp, fib);
  else grant_slots(rt->lp);
}
