/* alloc.c - the loop's small-object allocator (futures, tasks, handles,
 * callback nodes) and large arrays.
 *
 * Why: on the virtual machines rill is measured on, the first touch of a
 * 4 KiB page costs 15-30 us, a transparent huge page costs one fault for
 * 512 of them. Objects therefore come from 2 MiB chunks madvised for huge
 * pages, carved by size class with per-class free lists. Every object holds
 * a reference to its loop, so the chunks are unmapped when the loop's last
 * reference goes. Under ASan or valgrind the allocator steps aside (plain
 * malloc) so those tools still see every object. */
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <valgrind/valgrind.h>

#include "internal.h"

#if defined(__SANITIZE_ADDRESS__)
#define RILL__ARENA_OFF 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer) || __has_feature(memory_sanitizer)
#define RILL__ARENA_OFF 1
#endif
#endif
#ifndef RILL__ARENA_OFF
#define RILL__ARENA_OFF 0
#endif

#define CHUNK_SIZE ((size_t)2 << 20)
#define GRANULE 16
#define MAX_SMALL 1024
#define CLASSES (MAX_SMALL / GRANULE)
#define BIG_THRESHOLD ((size_t)256 << 10)

typedef struct free_obj {
  struct free_obj *next;
} free_obj;

typedef struct chunk {
  struct chunk *next;
} chunk;

struct rill__arena {
  int disabled;
  free_obj *free[CLASSES];
  char *bump, *bump_end;
  chunk *chunks;
};

static void *map_huge(size_t size) {
  /* Over-map by one chunk so the region can be aligned to 2 MiB (a huge
   * page needs an aligned range), then give back the slack. */
  size_t span = size + CHUNK_SIZE;
  char *raw = mmap(NULL, span, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (raw == MAP_FAILED) return NULL;
  char *aligned = (char *)(((uintptr_t)raw + CHUNK_SIZE - 1) & ~(uintptr_t)(CHUNK_SIZE - 1));
  if (aligned > raw) munmap(raw, (size_t)(aligned - raw));
  char *end = aligned + size;
  if (raw + span > end) munmap(end, (size_t)(raw + span - end));
#ifdef MADV_HUGEPAGE
  madvise(aligned, size, MADV_HUGEPAGE);
#endif
  return aligned;
}

rill__arena *rill__arena_new(void) {
  rill__arena *a = calloc(1, sizeof *a);
  if (a) a->disabled = RILL__ARENA_OFF || RUNNING_ON_VALGRIND || getenv("RILL_NO_ARENA");
  return a;
}

void rill__arena_free(rill__arena *a) {
  if (!a) return;
  for (chunk *c = a->chunks, *next; c; c = next) {
    next = c->next;
    munmap(c, CHUNK_SIZE);
  }
  free(a);
}

void *rill__alloc(rill_loop *loop, size_t size) {
  rill__arena *a = loop->arena;
  if (size > MAX_SMALL || a->disabled) return malloc(size);
  size_t cls = (size + GRANULE - 1) / GRANULE - 1;
  free_obj *obj = a->free[cls];
  if (obj) {
    a->free[cls] = obj->next;
    return obj;
  }
  size_t rounded = (cls + 1) * GRANULE;
  if ((size_t)(a->bump_end - a->bump) < rounded) {
    chunk *c = map_huge(CHUNK_SIZE);
    if (!c) return NULL;
    c->next = a->chunks;
    a->chunks = c;
    /* The chunk header takes the first granule. */
    a->bump = (char *)c + GRANULE * ((sizeof(chunk) + GRANULE - 1) / GRANULE);
    a->bump_end = (char *)c + CHUNK_SIZE;
  }
  void *p = a->bump;
  a->bump += rounded;
  return p;
}

void rill__dealloc(rill_loop *loop, void *p, size_t size) {
  if (!p) return;
  rill__arena *a = loop->arena;
  if (size > MAX_SMALL || a->disabled) {
    free(p);
    return;
  }
  size_t cls = (size + GRANULE - 1) / GRANULE - 1;
  free_obj *obj = p;
  obj->next = a->free[cls];
  a->free[cls] = obj;
}

void *rill__alloc_array(size_t size) {
  if (size < BIG_THRESHOLD || RILL__ARENA_OFF || RUNNING_ON_VALGRIND) return malloc(size ? size : 1);
  size_t rounded = (size + CHUNK_SIZE - 1) & ~(CHUNK_SIZE - 1);
  return map_huge(rounded);
}

void rill__free_array(void *p, size_t size) {
  if (!p) return;
  if (size < BIG_THRESHOLD || RILL__ARENA_OFF || RUNNING_ON_VALGRIND) {
    free(p);
    return;
  }
  munmap(p, (size + CHUNK_SIZE - 1) & ~(CHUNK_SIZE - 1));
}
