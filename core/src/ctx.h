/* ctx.h - internal: machine context switch and pooled coroutine stacks.
 *
 * Backends: ctx/x86_64.S, ctx/aarch64.S (hand-written switch), or
 * the ucontext backend in ctx.c (fallback; forced with -DRILL_CTX_UCONTEXT, and under
 * TSan). ASan fiber hooks and valgrind stack registration live here too, so
 * the rest of the core never thinks about them.
 *
 * Stacks come from a pool of slabs (one mmap holds many stacks, lazily
 * committed, MAP_NORESERVE). There is no guard page per stack: with
 * vm.max_map_count at 65530 a PROT_NONE page per stack caps a process near
 * 32k coroutines. Overflow is caught by the saved stack pointer at every
 * switch out, and by a canary at the low end of each stack (64 bytes that
 * must still be zero, so it costs no page) when a coroutine ends. */
#ifndef RILL_CTX_H
#define RILL_CTX_H

#include <stddef.h>

typedef struct rill__ctx {
  void *sp;          /* saved stack pointer (asm backends) */
  void *uctx;        /* ucontext_t * (ucontext backend) */
  void *stack_lo;    /* lowest address of this context's stack (NULL: thread stack) */
  size_t stack_size; /* its size (0: unknown, thread stack) */
  void *asan_fake;   /* ASan fake-stack handle saved across a switch */
  unsigned valgrind_id;
} rill__ctx;

typedef struct rill__stack_pool rill__stack_pool;

/* A pool handing out stacks of stack_size bytes (rounded up to pages).
 * NULL on ENOMEM. */
rill__stack_pool *rill__stack_pool_new(size_t stack_size);
/* Unmaps every slab. All stacks must have been returned. */
void rill__stack_pool_free(rill__stack_pool *pool);
size_t rill__stack_pool_stack_size(const rill__stack_pool *pool);
/* Lowest address of a free stack, NULL on ENOMEM. */
void *rill__stack_get(rill__stack_pool *pool);
/* Returns a stack to the pool. */
void rill__stack_put(rill__stack_pool *pool, void *stack_lo);
/* 1 if the canary (the lowest 64 bytes, zero) at the low end is intact.
 * Unless always, read only when the frames went past the top page. */
int rill__stack_ok(const rill__stack_pool *pool, const void *stack_lo, int always);
/* Debug mode: the whole lowest page of the stack (past the canary) is
 * filled with a pattern, and checked at every switch out, so frames that
 * skip over the 64-byte canary are caught too. */
void rill__stack_fill_page(void *stack_lo);
int rill__stack_page_ok(const void *stack_lo);

/* Prepares ctx so that the first rill__ctx_switch to it calls entry(arg) on
 * the stack [stack_lo, stack_lo + size). entry must never return: it ends
 * with rill__ctx_switch_final. Returns 0, or -1 (ucontext ENOMEM). */
int rill__ctx_make(rill__ctx *ctx, void *stack_lo, size_t size, void (*entry)(void *),
                   void *arg);
/* Releases what rill__ctx_make allocated (ucontext backend), deregisters
 * the stack from valgrind. */
void rill__ctx_destroy(rill__ctx *ctx);
/* Saves the running context in from and resumes to. Returns when
 * something switches back to from. */
void rill__ctx_switch(rill__ctx *from, rill__ctx *to);
/* As rill__ctx_switch, for a context that will never be resumed (tells
 * ASan its fake stack can go). */
void rill__ctx_switch_final(rill__ctx *from, rill__ctx *to);

/* Copy-stack coroutines (coro.c): 1 if a suspended context's state lies
 * wholly in [sp, stack top), so its frames can be copied out and back (the
 * assembly backends); 0 with ucontext, whose saved registers sit below the
 * frame address it records. */
int rill__ctx_can_copy(void);
/* Before copying frames into [p, p + n) of a coroutine stack, or out of it:
 * clears ASan's poison of the frames that were there (their redzones), and
 * for a destination tells valgrind the bytes are addressable. */
void rill__ctx_copy_prepare(void *p, size_t n, int destination);

#endif
