/* timer.c - the loop's timer heap, ordered by (deadline, insertion order)
 * so equal deadlines fire FIFO; removal is O(log n) so cancelled timers
 * never linger in the heap. */
#include <stdlib.h>
#include <string.h>

#include "internal.h"

static int before(const rill__timer *a, const rill__timer *b) {
  return a->when < b->when || (a->when == b->when && a->seq < b->seq);
}

static void place(rill_loop *loop, size_t i, rill__timer *t) {
  loop->heap[i] = t;
  t->heap_index = i;
}

static void sift_up(rill_loop *loop, size_t i, rill__timer *t) {
  while (i > 0) {
    size_t parent = (i - 1) / 2;
    if (!before(t, loop->heap[parent])) break;
    place(loop, i, loop->heap[parent]);
    i = parent;
  }
  place(loop, i, t);
}

static void sift_down(rill_loop *loop, size_t i, rill__timer *t) {
  size_t n = loop->heap_len;
  for (;;) {
    size_t child = 2 * i + 1;
    if (child >= n) break;
    if (child + 1 < n && before(loop->heap[child + 1], loop->heap[child])) child++;
    if (!before(loop->heap[child], t)) break;
    place(loop, i, loop->heap[child]);
    i = child;
  }
  place(loop, i, t);
}

int rill__timer_start(rill_loop *loop, rill__timer *t, double when) {
  if (loop->heap_len == loop->heap_cap) {
    /* rill__alloc_array: a large heap (100,000 sleeping tasks) is in huge
     * pages, not a realloc's fresh 4 KiB pages at each doubling */
    size_t cap = loop->heap_cap ? loop->heap_cap * 2 : 64;
    rill__timer **heap = rill__alloc_array(cap * sizeof *heap);
    if (!heap) return rill__fail(RILL_ENOMEM, "out of memory growing the timer heap");
    if (loop->heap_len) memcpy(heap, loop->heap, loop->heap_len * sizeof *heap);
    rill__free_array(loop->heap, loop->heap_cap * sizeof *heap);
    loop->heap = heap;
    loop->heap_cap = cap;
  }
  t->when = when;
  t->seq = loop->timer_seq++;
  sift_up(loop, loop->heap_len++, t);
  return RILL_OK;
}

void rill__timer_stop(rill_loop *loop, rill__timer *t) {
  size_t i = t->heap_index;
  if (i == RILL__NOT_IN_HEAP) return;
  t->heap_index = RILL__NOT_IN_HEAP;
  rill__timer *last = loop->heap[--loop->heap_len];
  if (last == t) return;
  if (i > 0 && before(last, loop->heap[(i - 1) / 2])) sift_up(loop, i, last);
  else sift_down(loop, i, last);
}

rill__timer *rill__timer_peek(rill_loop *loop) {
  return loop->heap_len ? loop->heap[0] : NULL;
}

void rill__timer_pop(rill_loop *loop) {
  rill__timer *top = loop->heap[0];
  top->heap_index = RILL__NOT_IN_HEAP;
  rill__timer *last = loop->heap[--loop->heap_len];
  if (loop->heap_len) sift_down(loop, 0, last);
}
