/* alloc.c - the loop's small-object allocator (futures, tasks, handles,
 * callback nodes) and large arrays.
 *
 * Why: on the virtual machines rill is measured on, the first touch of a
 * 4 KiB page costs 15-30 us, a transparent huge page costs one fault for
 * 512 of them. Objects therefore come from 2 MiB chunks madvised for huge
 * pages, carved by size class with per-class free lists. Every object holds
 * a reference to its loop, so the chunks are unmapped when the loop's last
 * reference goes. Under ASan or valgrind the allocator steps aside (plain
 * malloc) so those tools still see every object.
 *
 * Memory goes back too: each chunk counts its live objects; once two
 * chunks are empty, a sweep drops their objects from the free lists and
 * unmaps them (the chunk being carved is kept). A sweep costs one pass
 * over the free lists, and needs at least a chunk's worth of frees since
 * the last one emptied a chunk, so it is rare.
 *
 * Where a process has huge pages turned off (Ruby 3.1 does it for itself
 * with PR_SET_THP_DISABLE; a system may set them to "never"), every 4 KiB
 * page of a chunk would fault on its first touch. The arena then asks the
 * kernel to fill the pages ahead of the carving, 64 KiB at a time
 * (MADV_POPULATE_WRITE, Linux 5.14): one call instead of 16 faults, about
 * 40 % less per page on the VMs we measure on (bench/README.md), and
 * never more than 64 KiB ahead of what is used. */
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <valgrind/valgrind.h>

#include "internal.h"

#if defined(__SANITIZE_ADDRESS__)
#define RILL__ARENA_OFF 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer) || __has_feature(memory_sanitizer)
#define RILL__ARENA_OFF 1
#endif
#endif
#if !defined(RILL__ARENA_OFF) && defined(RILL_FAULT_INJECTION)
#define RILL__ARENA_OFF 1 /* every object through the counted malloc */
#endif
#ifndef RILL__ARENA_OFF
#define RILL__ARENA_OFF 0
#endif

#define CHUNK_SIZE ((size_t)2 << 20)
#define GRANULE 16
#define MAX_SMALL RILL__ARENA_MAX_SMALL
#define CLASSES (MAX_SMALL / GRANULE)
#define BIG_THRESHOLD ((size_t)256 << 10)
#define POPULATE_STEP ((size_t)64 << 10)
#ifndef MADV_POPULATE_WRITE
#define MADV_POPULATE_WRITE 23 /* Linux 5.14; older kernels say EINVAL */
#endif

typedef struct free_obj {
  struct free_obj *next;
} free_obj;

typedef struct chunk {
  struct chunk *next;
  size_t live; /* objects handed out and not yet returned */
} chunk;

struct rill__arena {
  int disabled;
  free_obj *free[CLASSES];
  char *bump, *bump_end;
  chunk *chunks;
  chunk *bump_chunk; /* the chunk being carved */
  size_t empty;      /* chunks whose live count fell to 0 */
  int populate;      /* no huge pages here: fill pages ahead of the bump */
  char *ready_end;   /* the bump chunk's pages below this are filled (its end
                      * when not filling: the carve's check then never fires) */
};

/* Chunks are CHUNK_SIZE-aligned (map_huge), so an object finds its own. */
static chunk *chunk_of(void *p) {
  return (chunk *)((uintptr_t)p & ~(uintptr_t)(CHUNK_SIZE - 1));
}

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

/* Huge pages system-wide: "never" in the sysfs setting turns them off. */
static int thp_never;
static pthread_once_t thp_once = PTHREAD_ONCE_INIT;
static void read_thp_setting(void) {
  FILE *f = fopen("/sys/kernel/mm/transparent_hugepage/enabled", "r");
  if (!f) return;
  char buf[128] = {0};
  if (fgets(buf, sizeof buf, f)) thp_never = strstr(buf, "[never]") != NULL;
  fclose(f);
}

/* Whether chunks of this process get 4 KiB pages only. */
static int no_huge_pages(void) {
#ifdef PR_GET_THP_DISABLE
  if (prctl(PR_GET_THP_DISABLE, 0, 0, 0, 0) == 1) return 1;
#endif
  pthread_once(&thp_once, read_thp_setting);
  return thp_never;
}

rill__arena *rill__arena_new(void) {
  rill__arena *a = calloc(1, sizeof *a);
  if (!a) return NULL;
  a->disabled = RILL__ARENA_OFF || RUNNING_ON_VALGRIND || getenv("RILL_NO_ARENA");
  a->populate = !a->disabled && no_huge_pages();
  return a;
}

/* Fills the bump chunk's pages up to at least `need` (and up to 64 KiB
 * past ready_end) in one call; a kernel without MADV_POPULATE_WRITE turns
 * it off for this arena (the pages then fault one by one, as before). */
static void populate_ahead(rill__arena *a, char *need) {
  while (a->ready_end < need) {
    size_t n = (size_t)(a->bump_end - a->ready_end);
    if (n > POPULATE_STEP) n = POPULATE_STEP;
    if (madvise(a->ready_end, n, MADV_POPULATE_WRITE) != 0) {
      a->populate = 0;
      a->ready_end = a->bump_end;
      return;
    }
    a->ready_end += n;
  }
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
    if (chunk_of(obj)->live++ == 0) a->empty--;
    return obj;
  }
  size_t rounded = (cls + 1) * GRANULE;
  if ((size_t)(a->bump_end - a->bump) < rounded) {
    chunk *c = map_huge(CHUNK_SIZE);
    if (!c) return NULL;
    a->bump_end = (char *)c + CHUNK_SIZE;
    a->ready_end = a->populate ? (char *)c : a->bump_end;
    if (a->populate) populate_ahead(a, (char *)c + GRANULE);
    c->next = a->chunks;
    c->live = 0;
    a->empty++; /* empty until the carve below */
    a->chunks = c;
    a->bump_chunk = c;
    /* The chunk header takes the first granule. */
    a->bump = (char *)c + GRANULE * ((sizeof(chunk) + GRANULE - 1) / GRANULE);
    a->bump_end = (char *)c + CHUNK_SIZE;
  }
  void *p = a->bump;
  a->bump += rounded;
  if (RILL__UNLIKELY(a->bump > a->ready_end)) populate_ahead(a, a->bump);
  if (a->bump_chunk->live++ == 0) a->empty--;
  return p;
}

/* Unmaps every empty chunk but the one being carved, after dropping its
 * objects from the free lists. */
static void sweep(rill__arena *a) {
  for (size_t cls = 0; cls < CLASSES; cls++) {
    free_obj **link = &a->free[cls];
    while (*link) {
      chunk *c = chunk_of(*link);
      if (c->live == 0 && c != a->bump_chunk) *link = (*link)->next;
      else link = &(*link)->next;
    }
  }
  a->empty = 0;
  for (chunk **link = &a->chunks; *link;) {
    chunk *c = *link;
    if (c->live == 0 && c != a->bump_chunk) {
      *link = c->next;
      munmap(c, CHUNK_SIZE);
    } else {
      if (c->live == 0) a->empty++;
      link = &c->next;
    }
  }
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
  if (--chunk_of(p)->live == 0 && ++a->empty >= 2) sweep(a);
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

/* ---------------------------------------------------------------- */
/* libev's allocator                                                  */

/* Given back to the system when libev cannot get memory, so that the
 * retry (and whatever the caller does about RILL_ENOMEM) has some room. */
#define RESERVE_SIZE ((size_t)256 << 10)
static void *_Atomic reserve;
static _Thread_local int ev_oom;
static pthread_once_t ev_alloc_once = PTHREAD_ONCE_INIT;

static void *ev_alloc(void *ptr, long size) {
  if (size <= 0) {
    free(ptr);
    return NULL;
  }
  void *p = realloc(ptr, (size_t)size);
  if (RILL__LIKELY(p != NULL)) return p;
  ev_oom = 1;
  free(atomic_exchange(&reserve, NULL));
  if ((p = realloc(ptr, (size_t)size))) return p;
  /* libev cannot go on without it (it would abort itself). */
  fprintf(stderr, "rill: out of memory inside libev (%ld bytes), aborting\n", size);
  abort();
}

static void install_once(void) { ev_set_allocator(ev_alloc); }

void rill__ev_allocator_install(void) {
  pthread_once(&ev_alloc_once, install_once);
#ifndef RILL_FAULT_INJECTION /* there, every allocation is counted */
  if (!atomic_load(&reserve)) {
    void *r = malloc(RESERVE_SIZE);
    void *expected = NULL;
    if (r && !atomic_compare_exchange_strong(&reserve, &expected, r)) free(r);
  }
#endif
}

/* A binding's module can be unloaded (Lua closes its C modules, dlclose):
 * the reserve goes with the library. */
__attribute__((destructor)) static void reserve_free(void) { free(atomic_exchange(&reserve, NULL)); }

int rill__ev_oom_take(void) {
  int was = ev_oom;
  ev_oom = 0;
  return was;
}
