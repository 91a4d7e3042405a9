/* stack.c - internal: the pool that hands out coroutine stacks.
 *
 * Stacks are carved from slabs: one anonymous MAP_NORESERVE mapping of about
 * 16 MiB holds many stacks, so 100k coroutines cost a few hundred mmaps
 * (which the kernel merges into a handful of VMAs) instead of 100k, and
 * pages are committed only when a coroutine touches them. There is no guard
 * page (each would be a VMA of its own, and vm.max_map_count is 65530).
 *
 * Overflow is caught after the fact by the stack's lowest 64 bytes, which
 * must still be zero: a fresh mapping's page reads as zero without being
 * committed, so a shallow coroutine costs one page (its top), not two (a
 * written canary pattern at the low end cost a second page per coroutine).
 * Even reading that page commits it, so when a coroutine ends the canary
 * is read only if the lowest bytes of its top page are no longer zero (its
 * frames went past that page); in debug mode, always. The trade-off:
 * an overflow that writes only zeros over those 64 bytes goes unseen in
 * normal mode; frames hold return addresses and saved registers, and
 * debug mode still fills the whole lowest page with a pattern.
 *
 * Free stacks form a LIFO list threaded through their highest bytes (the
 * top page, which every coroutine that ran has committed), so the stack
 * reused next is the one whose pages are still hot. Once more than 16 MiB
 * of stacks are free, a returned stack that grew past its top page is
 * trimmed back to it (MADV_DONTNEED, which also zeroes the low end again),
 * so a burst of deep coroutines does not pin its memory forever.
 * Single-threaded by contract: no locks. */
#include "ctx.h"

#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <unistd.h>

/* The pool reads and writes the ends of stacks whose last frames may have
 * died without returning (a coroutine that finished, or overflowed, deep in
 * a call chain), so ASan may still hold them poisoned. The few words the
 * pool owns are touched unchecked; rill__ctx_make unpoisons the rest. */
#define NO_ASAN __attribute__((no_sanitize_address))

#if defined(__has_include)
#if __has_include(<valgrind/memcheck.h>)
#include <valgrind/memcheck.h>
#define RILL_STACK_VALGRIND 1
#endif
#endif

enum {
  CANARY_WORDS = 8, /* 64 bytes */
  /* Target slab size: big enough that slabs are rare, small enough that a
   * pool of a few coroutines does not reserve much address space. */
  SLAB_BYTES = 16 << 20,
  /* Free stacks kept whole, in bytes; past this a returned stack that grew
   * beyond its top page is trimmed back to it. A lone stack reused over and
   * over (spawn, run, finish) is never trimmed. */
  WARM_BYTES = 16 << 20,
};


struct rill__stack_pool {
  size_t stack_size;
  size_t page_size;
  size_t trim_after;   /* free stacks kept whole */
  size_t slab_bytes;   /* stacks_per_slab * stack_size */
  void *free_head;     /* LIFO of free stacks, link stored in the top word */
  size_t free_count;
  char *carve_next;    /* untouched stacks left in the newest slab */
  char *carve_end;
  void **slabs;
  size_t slab_count;
  size_t slab_cap;
};

/* A free stack's link: its highest word, in the top page (resident). */
static void **link_of(const rill__stack_pool *pool, void *stack_lo) {
  return (void **)((char *)stack_lo + pool->stack_size) - 1;
}

NO_ASAN static void *free_link(const rill__stack_pool *pool, void *stack_lo) {
  void **w = link_of(pool, stack_lo);
#ifdef RILL_STACK_VALGRIND
  VALGRIND_MAKE_MEM_DEFINED(w, sizeof *w); /* written by set_free_link */
#endif
  return *w;
}

NO_ASAN static void set_free_link(const rill__stack_pool *pool, void *stack_lo, void *next) {
  void **w = link_of(pool, stack_lo);
#ifdef RILL_STACK_VALGRIND
  /* Memcheck made the dead frames there no-access. */
  VALGRIND_MAKE_MEM_UNDEFINED(w, sizeof *w);
#endif
  *w = next;
}

rill__stack_pool *rill__stack_pool_new(size_t stack_size) {
  long page = sysconf(_SC_PAGESIZE);
  size_t page_size = page > 0 ? (size_t)page : 4096;
  /* At least the canary page and one page to run on. */
  if (stack_size < 2 * page_size)
    stack_size = 2 * page_size;
  if (stack_size > SIZE_MAX / 4) {
    errno = ENOMEM;
    return NULL;
  }
  stack_size = (stack_size + page_size - 1) & ~(page_size - 1);

  rill__stack_pool *pool = calloc(1, sizeof *pool);
  if (!pool)
    return NULL;
  size_t per_slab = SLAB_BYTES / stack_size;
  pool->stack_size = stack_size;
  pool->page_size = page_size;
  pool->trim_after = WARM_BYTES / stack_size > 16 ? WARM_BYTES / stack_size : 16;
  pool->slab_bytes = (per_slab ? per_slab : 1) * stack_size;
  return pool;
}

void rill__stack_pool_free(rill__stack_pool *pool) {
  if (!pool)
    return;
  for (size_t i = 0; i < pool->slab_count; i++)
    munmap(pool->slabs[i], pool->slab_bytes);
  free(pool->slabs);
  free(pool);
}

size_t rill__stack_pool_stack_size(const rill__stack_pool *pool) { return pool->stack_size; }

static int add_slab(rill__stack_pool *pool) {
  if (pool->slab_count == pool->slab_cap) {
    size_t cap = pool->slab_cap ? pool->slab_cap * 2 : 16;
    void **slabs = realloc(pool->slabs, cap * sizeof *slabs);
    if (!slabs)
      return -1;
    pool->slabs = slabs;
    pool->slab_cap = cap;
  }
  void *slab = mmap(NULL, pool->slab_bytes, PROT_READ | PROT_WRITE,
                    MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
  if (slab == MAP_FAILED)
    return -1;
#ifdef MADV_NOHUGEPAGE
  /* With THP "always", the first touch of a stack could commit a 2 MiB
   * page; a suspended coroutine must cost only the 4 KiB pages it used. */
  madvise(slab, pool->slab_bytes, MADV_NOHUGEPAGE);
#endif
  pool->slabs[pool->slab_count++] = slab;
  pool->carve_next = slab;
  pool->carve_end = (char *)slab + pool->slab_bytes;
  return 0;
}

void *rill__stack_get(rill__stack_pool *pool) {
  char *lo;
  if (pool->free_head) {
    lo = pool->free_head;
    pool->free_head = free_link(pool, lo);
    pool->free_count--;
  } else {
    if (pool->carve_next == pool->carve_end && add_slab(pool) != 0) {
      errno = ENOMEM;
      return NULL;
    }
    lo = pool->carve_next;
    pool->carve_next += pool->stack_size;
  }
  return lo;
}

/* The OR of the 64 bytes at p, zeroed after if clear. Memcheck may have
 * made them no-access when the frames there returned. */
NO_ASAN static uint64_t low_words(void *p, int clear) {
  uint64_t *w = p;
#ifdef RILL_STACK_VALGRIND
  VALGRIND_MAKE_MEM_DEFINED(w, CANARY_WORDS * sizeof *w);
#endif
  uint64_t any = 0;
  for (int i = 0; i < CANARY_WORDS; i++) {
    any |= w[i];
    if (clear)
      w[i] = 0;
  }
  return any;
}

/* A coroutine that outgrew its top page left frames in the lowest bytes of
 * that page; a shallow one did not. The page is always resident
 * (rill__ctx_make wrote the first frame there), so unlike probing the pages
 * below, which would fault each one in, the check is free. Zeroes the words
 * for the stack's next use. */
static int went_deep(char *top_page) { return low_words(top_page, 1) != 0; }

void rill__stack_put(rill__stack_pool *pool, void *stack_lo) {
  char *lo = stack_lo;
  size_t page = pool->page_size;
  if (pool->free_count >= pool->trim_after && pool->stack_size >= 3 * page) {
    char *top_page = lo + pool->stack_size - page;
    if (went_deep(top_page))
      /* Keep the top page; the low end reads as zero again. */
      madvise(lo, (size_t)(top_page - lo), MADV_DONTNEED);
  }
  set_free_link(pool, lo, pool->free_head);
  pool->free_head = lo;
  pool->free_count++;
}

/* Reading the low end of a stack no frame reached would fault a page in
 * (the zero page still counts in RSS), so the canary is read only when the
 * lowest bytes of the top page show the coroutine went past that page. */
int rill__stack_ok(const rill__stack_pool *pool, const void *stack_lo, int always) {
  char *lo = (char *)stack_lo;
  if (!always && pool->stack_size >= 2 * pool->page_size &&
      !low_words(lo + pool->stack_size - pool->page_size, 0))
    return 1;
  return low_words(lo, 0) == 0;
}

/* Debug mode's guard area: the lowest page past the canary. A constant
 * pattern that no frame is likely to write whole. 4 KiB per check, only
 * in debug mode. */
#define GUARD_WORD 0xdeadc0dedeadc0deu
#define GUARD_BYTES 4096

NO_ASAN void rill__stack_fill_page(void *stack_lo) {
  uint64_t *w = (uint64_t *)stack_lo + CANARY_WORDS;
  for (size_t i = 0; i < GUARD_BYTES / 8 - CANARY_WORDS; i++)
    w[i] = GUARD_WORD;
}

NO_ASAN int rill__stack_page_ok(const void *stack_lo) {
  const uint64_t *w = (const uint64_t *)stack_lo + CANARY_WORDS;
#ifdef RILL_STACK_VALGRIND
  VALGRIND_MAKE_MEM_DEFINED(w, GUARD_BYTES - CANARY_WORDS * 8);
#endif
  uint64_t diff = 0;
  for (size_t i = 0; i < GUARD_BYTES / 8 - CANARY_WORDS; i++)
    diff |= w[i] ^ GUARD_WORD;
  return diff == 0;
}
