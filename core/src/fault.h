/* fault.h - OOM injection, SQLite-style (test builds only).
 *
 * Force-included (-include fault.h) into every core source of the test
 * library rill_fault (tests/core/CMakeLists.txt, RILL_OOM_TESTS): every
 * malloc/calloc/realloc/posix_memalign/free of the core, and libev's through the
 * allocator rill installs, goes through fault.c, which counts live blocks
 * and can fail the Nth allocation. Never part of librill. */
#ifndef RILL_FAULT_H
#define RILL_FAULT_H
#ifdef RILL_FAULT_INJECTION
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#ifdef __cplusplus
extern "C" {
#endif
void *rill__fault_malloc(size_t n);
void *rill__fault_calloc(size_t n, size_t size);
void *rill__fault_realloc(void *p, size_t n);
int rill__fault_posix_memalign(void **pp, size_t align, size_t n);
void rill__fault_free(void *p);

/* The test's controls. fail_at = N: the Nth allocation from now fails
 * (once; 0: none). */
void rill__fault_arm(long fail_at);
long rill__fault_calls(void);   /* allocations attempted since armed */
long rill__fault_failed(void);  /* injected failures since armed */
long rill__fault_live(void);    /* blocks allocated and not yet freed */
#ifdef __cplusplus
}
#endif

#ifndef RILL_FAULT_IMPL
#define malloc(n) rill__fault_malloc(n)
#define calloc(n, s) rill__fault_calloc(n, s)
#define realloc(p, n) rill__fault_realloc(p, n)
#define posix_memalign(pp, a, n) rill__fault_posix_memalign(pp, a, n)
#define free(p) rill__fault_free(p)
#endif
#endif
#endif
