/* fault.c - the counting, failing allocator behind fault.h (test builds
 * only). Single counters, not thread-safe: the sweep runs one loop in one
 * thread (thread-safe submission from other threads is not swept). */
#define RILL_FAULT_IMPL 1
#include "fault.h"
#include <errno.h>
/* Force-included before the line above: the real functions here. */
#undef malloc
#undef calloc
#undef realloc
#undef posix_memalign
#undef free

static long fail_at, calls, failed, live;
static const void *last_site; /* who asked for the last failed block */
const void *rill__fault_last_site(void);
const void *rill__fault_last_site(void) { return last_site; }

void rill__fault_arm(long n) {
  fail_at = n;
  calls = failed = 0;
}
long rill__fault_calls(void) { return calls; }
long rill__fault_failed(void) { return failed; }
long rill__fault_live(void) { return live; }

#define fail_now() fail_now_at(__builtin_return_address(0))
static int fail_now_at(const void *site) {
  if (++calls == fail_at) {
    failed++;
    last_site = site;
    return 1;
  }
  return 0;
}

void *rill__fault_malloc(size_t n) {
  if (fail_now()) return NULL;
  void *p = malloc(n);
  if (p) live++;
  return p;
}

void *rill__fault_calloc(size_t n, size_t size) {
  if (fail_now()) return NULL;
  void *p = calloc(n, size);
  if (p) live++;
  return p;
}

void *rill__fault_realloc(void *p, size_t n) {
  if (fail_now()) return NULL;
  void *q = realloc(p, n);
  if (q && !p) live++;
  return q;
}

int rill__fault_posix_memalign(void **pp, size_t align, size_t n) {
  if (fail_now()) return ENOMEM;
  int rc = posix_memalign(pp, align, n);
  if (!rc) live++;
  return rc;
}

void rill__fault_free(void *p) {
  if (p) live--;
  free(p);
}
