/* ctx.c - internal: the C side of the context switch.
 *
 * The register save/restore lives in ctx/<arch>.S. This file wraps it with
 * what the tools need to follow a stack switch (ASan and TSan fiber hooks,
 * valgrind stack registration), and holds the ucontext backend used under
 * TSan, on request, and on architectures without a hand-written switch.
 * Without sanitizers the wrappers compile to a jump into the assembly. */
#include "ctx.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

/* The assembly backends cover LP64 ELF targets; anything else (x32, Mach-O,
 * other CPUs) falls back to ucontext even if the build picked a .S file,
 * which then assembles to nothing. */
#if !defined(RILL_CTX_UCONTEXT) &&                                                  \
    !((defined(__x86_64__) || defined(__aarch64__)) && defined(__LP64__) && defined(__ELF__))
#define RILL_CTX_UCONTEXT 1
#endif

#if defined(__has_feature)
#if __has_feature(address_sanitizer)
#define RILL_CTX_ASAN 1
#endif
#if __has_feature(thread_sanitizer)
#define RILL_CTX_TSAN 1
#endif
#endif
#if defined(__SANITIZE_ADDRESS__) && !defined(RILL_CTX_ASAN)
#define RILL_CTX_ASAN 1
#endif
#if defined(__SANITIZE_THREAD__) && !defined(RILL_CTX_TSAN)
#define RILL_CTX_TSAN 1
#endif
#if defined(RILL_CTX_ASAN) || defined(RILL_CTX_TSAN)
#define RILL_CTX_HOOKS 1
#endif

#if defined(__has_include)
#if __has_include(<valgrind/valgrind.h>)
#include <valgrind/valgrind.h>
#define RILL_CTX_VALGRIND 1
#if __has_include(<valgrind/memcheck.h>)
#include <valgrind/memcheck.h>
#define RILL_CTX_MEMCHECK 1
#endif
#endif
#endif

#ifdef RILL_CTX_UCONTEXT
#include <ucontext.h>
#else
/* ctx/<arch>.S: saves callee-saved state on the current stack, stores sp in
 * from->sp, loads to->sp, restores. rill__ctx_asm_init lays out a first
 * frame below top that "returns" into a trampoline calling entry(arg). */
void rill__ctx_asm_switch(rill__ctx *from, rill__ctx *to);
void *rill__ctx_asm_init(void *top, void (*entry)(void *), void *arg);
#endif

/* --- sanitizer hooks ---------------------------------------------------- */

/* Everything between "leave" and "arrive" is inlined into the switch
 * functions: TSan pairs each instrumented function's entry and exit on the
 * fiber current at that moment, so a helper that returned on another
 * fiber would underflow that fiber's shadow stack. */
#define ALWAYS_INLINE static inline __attribute__((always_inline))

#ifdef RILL_CTX_ASAN
void __sanitizer_start_switch_fiber(void **fake_stack_save, const void *bottom, size_t size);
void __sanitizer_finish_switch_fiber(void *fake_stack_save, const void **bottom_old,
                                     size_t *size_old);
void __asan_unpoison_memory_region(void const volatile *addr, size_t size);

/* A ctx with stack_lo NULL is the thread's own stack, whose bounds ASan
 * needs when we switch back to it. finish_switch_fiber reports the bounds
 * of the stack just left, so we learn them on the first switch out. */
static _Thread_local const void *thread_stack_lo;
static _Thread_local size_t thread_stack_size;
static _Thread_local rill__ctx *leaving;

ALWAYS_INLINE void hook_leave(rill__ctx *from, rill__ctx *to, int final) {
  const void *lo = to->stack_lo;
  size_t size = to->stack_size;
  if (!lo) {
    lo = thread_stack_lo;
    size = thread_stack_size;
  }
  leaving = from;
  /* NULL for a context that is never resumed frees its fake stack. */
  __sanitizer_start_switch_fiber(final ? NULL : &from->asan_fake, lo, size);
}

ALWAYS_INLINE void hook_arrive(rill__ctx *self) {
  const void *lo;
  size_t size;
  __sanitizer_finish_switch_fiber(self->asan_fake, &lo, &size);
  self->asan_fake = NULL;
  if (leaving && !leaving->stack_lo) {
    thread_stack_lo = lo;
    thread_stack_size = size;
  }
}

static void hook_make(rill__ctx *ctx) {
  /* A pooled stack may carry the poison of frames that never returned. */
  __asan_unpoison_memory_region(ctx->stack_lo, ctx->stack_size);
  ctx->asan_fake = NULL;
}

static void hook_destroy(rill__ctx *ctx) { (void)ctx; }

#elif defined(RILL_CTX_TSAN)
void *__tsan_get_current_fiber(void);
void *__tsan_create_fiber(unsigned flags);
void __tsan_destroy_fiber(void *fiber);
void __tsan_switch_to_fiber(void *fiber, unsigned flags);

/* Under TSan, asan_fake holds the TSan fiber (the two sanitizers never
 * coexist). A thread-stack ctx borrows the thread's current fiber. */
ALWAYS_INLINE void hook_leave(rill__ctx *from, rill__ctx *to, int final) {
  (void)final;
  if (!from->stack_lo)
    from->asan_fake = __tsan_get_current_fiber();
  __tsan_switch_to_fiber(to->asan_fake, 0);
}

ALWAYS_INLINE void hook_arrive(rill__ctx *self) { (void)self; }

static void hook_make(rill__ctx *ctx) { ctx->asan_fake = __tsan_create_fiber(0); }

static void hook_destroy(rill__ctx *ctx) {
  if (!ctx->asan_fake)
    return;
  /* A fiber destroyed without ever having been current corrupts TSan's
   * trace state (seen after a few thousand such fibers), so visit it. */
  void *self = __tsan_get_current_fiber();
  __tsan_switch_to_fiber(ctx->asan_fake, 0);
  __tsan_switch_to_fiber(self, 0);
  __tsan_destroy_fiber(ctx->asan_fake);
  ctx->asan_fake = NULL;
}
#endif

/* --- first entry ---------------------------------------------------------- */

#if defined(RILL_CTX_HOOKS) || defined(RILL_CTX_UCONTEXT)
/* How a fresh context reaches entry: through ctx_start, the first code on
 * the new stack, which runs the arrival hook. With the assembly backends
 * this sits at the top of the new stack. With ucontext it is on the heap,
 * because a ucontext_t (4.5 KiB on AArch64) at the top would push the
 * coroutine's first frames out of the top page, where stack.c looks for
 * signs of a deep stack. */
struct ctx_start {
#ifdef RILL_CTX_UCONTEXT
  ucontext_t uc; /* the fresh context */
#endif
  rill__ctx *ctx;
  void (*entry)(void *);
  void *arg;
};

static void ctx_start(void *p) {
  struct ctx_start *start = p;
  rill__ctx *ctx = start->ctx;
  void (*entry)(void *) = start->entry;
  void *arg = start->arg;
#ifdef RILL_CTX_UCONTEXT
  ctx->uctx = NULL; /* its registers are loaded; rill__ctx_destroy must not free it */
  free(start);
#endif
#ifdef RILL_CTX_HOOKS
  hook_arrive(ctx);
#else
  (void)ctx;
#endif
  entry(arg);
  abort(); /* entry must end with rill__ctx_switch_final */
}
#endif

/* --- backends ------------------------------------------------------------- */

#ifdef RILL_CTX_UCONTEXT
/* makecontext passes ints; split the pointer so it survives on LP64. */
static void ctx_start_uc(unsigned hi, unsigned lo) {
  ctx_start((void *)(((uintptr_t)hi << 16 << 16) | (uintptr_t)lo));
}

/* The fresh context's ucontext_t is the start block on the heap; uctx
 * points there until ctx_start frees it. */
static int backend_make(rill__ctx *ctx, void (*entry)(void *), void *arg) {
  struct ctx_start *start = malloc(sizeof *start);
  if (!start)
    return -1;
  start->ctx = ctx;
  start->entry = entry;
  start->arg = arg;
  if (getcontext(&start->uc) != 0) {
    free(start);
    return -1;
  }
  start->uc.uc_link = NULL;
  start->uc.uc_stack.ss_sp = ctx->stack_lo;
  start->uc.uc_stack.ss_size = ctx->stack_size;
  uintptr_t p = (uintptr_t)start;
  makecontext(&start->uc, (void (*)(void))ctx_start_uc, 2, (unsigned)(p >> 16 >> 16),
              (unsigned)p);
  ctx->uctx = &start->uc;
  return 0;
}

/* A suspended context's registers live in a ucontext_t on its own stack, in
 * this frame, which stays alive exactly as long as the context is
 * suspended. That covers the zero-initialised thread-stack ctx too. The
 * frame's address stands in for the saved stack pointer, which the core
 * compares with the stack's low end (not &uc: under ASan's use-after-return
 * mode locals live on a fake stack elsewhere). */
ALWAYS_INLINE void backend_switch(rill__ctx *from, rill__ctx *to) {
  ucontext_t uc;
  /* ASan's swapcontext interceptor clears the shadow of uc_stack if set. */
  uc.uc_stack.ss_sp = NULL;
  uc.uc_stack.ss_size = 0;
  uc.uc_stack.ss_flags = 0;
  from->uctx = &uc;
  from->sp = __builtin_frame_address(0);
  swapcontext(&uc, to->uctx);
}

ALWAYS_INLINE void backend_switch_final(rill__ctx *from, rill__ctx *to) {
  from->uctx = NULL;
  setcontext(to->uctx);
  abort();
}
#else
static int backend_make(rill__ctx *ctx, void (*entry)(void *), void *arg) {
  char *top = (char *)ctx->stack_lo + ctx->stack_size;
#ifdef RILL_CTX_HOOKS
  uintptr_t at = ((uintptr_t)top - sizeof(struct ctx_start)) & ~(uintptr_t)15;
  struct ctx_start *start = (struct ctx_start *)at;
  start->ctx = ctx;
  start->entry = entry;
  start->arg = arg;
  ctx->sp = rill__ctx_asm_init(start, ctx_start, start);
#else
  ctx->sp = rill__ctx_asm_init(top, entry, arg);
#endif
  return 0;
}

#define backend_switch rill__ctx_asm_switch
#define backend_switch_final rill__ctx_asm_switch
#endif

/* --- the interface -------------------------------------------------------- */

int rill__ctx_make(rill__ctx *ctx, void *stack_lo, size_t size, void (*entry)(void *),
                   void *arg) {
  memset(ctx, 0, sizeof *ctx);
  ctx->stack_lo = stack_lo;
  ctx->stack_size = size;
#ifdef RILL_CTX_HOOKS
  hook_make(ctx);
#endif
  if (backend_make(ctx, entry, arg) != 0) {
#ifdef RILL_CTX_HOOKS
    hook_destroy(ctx);
#endif
    return -1;
  }
#ifdef RILL_CTX_VALGRIND
  /* Lets valgrind tell a stack switch from a huge frame. */
  ctx->valgrind_id = VALGRIND_STACK_REGISTER(stack_lo, (char *)stack_lo + size);
#endif
  return 0;
}

void rill__ctx_destroy(rill__ctx *ctx) {
#ifdef RILL_CTX_VALGRIND
  if (ctx->stack_lo)
    VALGRIND_STACK_DEREGISTER(ctx->valgrind_id);
#endif
#ifdef RILL_CTX_HOOKS
  hook_destroy(ctx);
#endif
#ifdef RILL_CTX_UCONTEXT
  if (!ctx->sp) /* never suspended: uctx is NULL or a start block never run */
    free(ctx->uctx);
#endif
  ctx->uctx = NULL;
  ctx->sp = NULL;
}

void rill__ctx_switch(rill__ctx *from, rill__ctx *to) {
#ifdef RILL_CTX_HOOKS
  hook_leave(from, to, 0);
  backend_switch(from, to);
  hook_arrive(from);
#else
  backend_switch(from, to); /* asm backend: a tail jump */
#endif
}

void rill__ctx_switch_final(rill__ctx *from, rill__ctx *to) {
#ifdef RILL_CTX_HOOKS
  hook_leave(from, to, 1);
#endif
  backend_switch_final(from, to);
}

int rill__ctx_can_copy(void) {
#ifdef RILL_CTX_UCONTEXT
  return 0;
#else
  return 1;
#endif
}

void rill__ctx_copy_prepare(void *p, size_t n, int destination) {
#ifdef RILL_CTX_ASAN
  __asan_unpoison_memory_region(p, n);
#endif
#ifdef RILL_CTX_MEMCHECK
  if (destination)
    VALGRIND_MAKE_MEM_UNDEFINED(p, n);
#endif
  (void)p;
  (void)n;
  (void)destination;
}
