/* ctx_test.c - standalone test of the context switch and the stack pool
 * (core/src/ctx.c, stack.c, ctx/<arch>.S). Plain C, no framework, so it can
 * be built by run.sh for every backend, sanitizer and architecture.
 *
 *   ctx_test              run every check, exit 0 if all pass, 1 otherwise
 *   ctx_test --asan-bug   overflow a buffer on a coroutine stack; an ASan
 *                         build must report it as a stack-buffer-overflow
 *
 * RILL_CTX_TEST_STACKS (default 100000) sets the many-stacks count. */
#include "ctx.h"

#include <errno.h>
#include <fenv.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>
#ifdef RILL_CTX_UCONTEXT
#include <ucontext.h>
#endif

#if defined(__has_include)
#if __has_include(<valgrind/valgrind.h>)
#include <valgrind/valgrind.h>
#endif
#endif
#ifndef RUNNING_ON_VALGRIND
#define RUNNING_ON_VALGRIND 0
#endif

#if defined(__has_feature)
#if __has_feature(address_sanitizer)
#define SANITIZED 1
#endif
#if __has_feature(thread_sanitizer)
#define SANITIZED 1
#define TSAN 1
#endif
#endif
#if defined(__SANITIZE_ADDRESS__)
#define SANITIZED 1
#endif
#if defined(__SANITIZE_THREAD__)
#define SANITIZED 1
#define TSAN 1
#endif
#ifdef SANITIZED
static const int sanitized = 1;
#else
static const int sanitized = 0;
#endif
/* TSan counts each fiber as a thread and dies past 8128 of them. */
#ifdef TSAN
static const int tsan = 1;
#else
static const int tsan = 0;
#endif

#ifdef RILL_CTX_UCONTEXT
static const char backend[] = "ucontext";
#elif defined(__x86_64__)
static const char backend[] = "x86_64 asm";
#elif defined(__aarch64__)
static const char backend[] = "aarch64 asm";
#else
static const char backend[] = "ucontext (implicit)";
#endif

static int checks, failures;
#define CHECK(cond)                                                                      \
  do {                                                                                   \
    checks++;                                                                            \
    if (!(cond)) {                                                                       \
      failures++;                                                                        \
      fprintf(stderr, "%s:%d: %s: CHECK(%s) failed\n", __FILE__, __LINE__, __func__,     \
              #cond);                                                                    \
    }                                                                                    \
  } while (0)

enum { STACK_SIZE = 64 << 10 };

/* --- a minimal scheduler, used the way the core uses the interface ----- */

struct co {
  rill__ctx ctx;
  rill__ctx caller; /* zero: the stack that resumed us */
  rill__stack_pool *pool;
  void *stack;
  void (*body)(struct co *);
  int id;
  int done;
  intptr_t value;
};

static void co_entry(void *arg) {
  struct co *c = arg;
  c->body(c);
  c->done = 1;
  rill__ctx_switch_final(&c->ctx, &c->caller);
}

static int co_start(struct co *c, rill__stack_pool *pool, void (*body)(struct co *), int id) {
  memset(c, 0, sizeof *c);
  c->pool = pool;
  c->body = body;
  c->id = id;
  c->stack = rill__stack_get(pool);
  if (!c->stack)
    return -1;
  return rill__ctx_make(&c->ctx, c->stack, rill__stack_pool_stack_size(pool), co_entry, c);
}

static void co_yield(struct co *c) {
  CHECK(rill__stack_ok(c->pool, c->stack, 1));
  rill__ctx_switch(&c->ctx, &c->caller);
}

/* Returns 1 once the coroutine has finished (its stack is back in the pool). */
static int co_resume(struct co *c) {
  rill__ctx_switch(&c->caller, &c->ctx);
  if (!c->done) {
    /* The core's cheap overflow check: the saved sp lies in the stack. */
    char *sp = c->ctx.sp, *lo = c->stack;
    CHECK(sp > lo + 64 && sp < lo + rill__stack_pool_stack_size(c->pool));
    return 0;
  }
  CHECK(rill__stack_ok(c->pool, c->stack, 1));
  rill__ctx_destroy(&c->ctx);
  rill__stack_put(c->pool, c->stack);
  c->stack = NULL;
  return 1;
}

/* Resume from a deeper frame each time: a coroutine must not care where
 * its caller's stack pointer is. */
static int __attribute__((noinline)) co_resume_at_depth(struct co *c, int depth) {
  volatile char pad[64];
  pad[0] = (char)depth;
  if (depth > 0)
    return co_resume_at_depth(c, depth - 1) + pad[0] - depth;
  return co_resume(c);
}

static void tiny_body(struct co *c);

/* --- ordering -------------------------------------------------------------- */

static int order[64];
static int n_order;
static void record(int event) {
  if (n_order < 64)
    order[n_order++] = event;
}

static int order_is(const int *want, int n) {
  if (n != n_order || memcmp(want, order, (size_t)n * sizeof *want) != 0) {
    fprintf(stderr, "  order:");
    for (int i = 0; i < n_order; i++)
      fprintf(stderr, " %d", order[i]);
    fprintf(stderr, "\n  want: ");
    for (int i = 0; i < n; i++)
      fprintf(stderr, " %d", want[i]);
    fprintf(stderr, "\n");
    return 0;
  }
  return 1;
}

/* Locals (an array, doubles) must survive every suspension unchanged. */
static void pingpong_body(struct co *c) {
  int steps = c->id == 1 ? 3 : 2;
  int arr[32];
  double f[8];
  for (int i = 0; i < 32; i++)
    arr[i] = i * c->id;
  for (int i = 0; i < 8; i++)
    f[i] = 0.5 * i + c->id;
  for (int step = 0; step < steps; step++) {
    record(c->id * 10 + step);
    if (step + 1 < steps)
      co_yield(c);
    for (int i = 0; i < 32; i++)
      CHECK(arr[i] == i * c->id);
    for (int i = 0; i < 8; i++)
      CHECK(f[i] == 0.5 * i + c->id);
  }
  c->value = c->id * 100;
}

static void test_pingpong(rill__stack_pool *pool) {
  struct co a, b;
  n_order = 0;
  CHECK(co_start(&a, pool, pingpong_body, 1) == 0);
  CHECK(co_start(&b, pool, pingpong_body, 2) == 0);
  CHECK(co_resume_at_depth(&a, 0) == 0);
  record(1);
  CHECK(co_resume_at_depth(&b, 3) == 0);
  record(2);
  CHECK(co_resume_at_depth(&a, 7) == 0);
  record(3);
  CHECK(co_resume_at_depth(&b, 1) == 1);
  record(4);
  CHECK(co_resume_at_depth(&a, 2) == 1);
  record(5);
  static const int want[] = {10, 1, 20, 2, 11, 3, 21, 4, 12, 5};
  CHECK(order_is(want, 10));
  CHECK(a.value == 100 && b.value == 200);
}

/* Coroutine to coroutine, without passing through the caller: A starts B,
 * B hands back to A; later main resumes B where it left A. */
static struct co *handoff_a, *handoff_b;

static void handoff_a_body(struct co *c) {
  record(30);
  rill__ctx_switch(&c->ctx, &handoff_b->ctx);
  record(32);
  co_yield(c);
  record(34);
}

static void handoff_b_body(struct co *c) {
  record(31);
  rill__ctx_switch(&c->ctx, &handoff_a->ctx);
  record(33);
}

static void test_handoff(rill__stack_pool *pool) {
  struct co a, b;
  handoff_a = &a;
  handoff_b = &b;
  n_order = 0;
  CHECK(co_start(&a, pool, handoff_a_body, 3) == 0);
  CHECK(co_start(&b, pool, handoff_b_body, 4) == 0);
  CHECK(co_resume(&a) == 0);
  record(3);
  CHECK(co_resume(&b) == 1);
  record(4);
  CHECK(co_resume(&a) == 1);
  record(5);
  static const int want[] = {30, 31, 32, 3, 33, 4, 34, 5};
  CHECK(order_is(want, 8));
}

/* A context made but never run (a spawn abandoned before its first step)
 * must be destroyable: nothing leaks (valgrind checks), TSan stays sane. */
static void test_destroy_unstarted(rill__stack_pool *pool) {
  for (int i = 0; i < 100; i++) {
    struct co c;
    CHECK(co_start(&c, pool, tiny_body, 1) == 0);
    rill__ctx_destroy(&c.ctx);
    rill__stack_put(pool, c.stack);
  }
  struct co c; /* and the stack is fine for the next one */
  CHECK(co_start(&c, pool, tiny_body, 7) == 0);
  CHECK(co_resume(&c) == 0);
  CHECK(co_resume(&c) == 1);
  CHECK(c.value == 7);
}

/* --- registers ------------------------------------------------------------- */

/* Pins values in the callee-saved registers across one switch; the other
 * side does the same with different values. */
#if defined(__x86_64__)
#define CALLEE_SAVED_REGS 5
static void __attribute__((noinline)) switch_keeping_regs(rill__ctx *from, rill__ctx *to,
                                                          uint64_t seed, int *bad) {
  register uint64_t r0 __asm__("rbx") = seed + 1;
  register uint64_t r1 __asm__("r12") = seed + 2;
  register uint64_t r2 __asm__("r13") = seed + 3;
  register uint64_t r3 __asm__("r14") = seed + 4;
  register uint64_t r4 __asm__("r15") = seed + 5;
  __asm__ volatile("" : "+r"(r0), "+r"(r1), "+r"(r2), "+r"(r3), "+r"(r4));
  rill__ctx_switch(from, to);
  __asm__ volatile("" : "+r"(r0), "+r"(r1), "+r"(r2), "+r"(r3), "+r"(r4));
  *bad = (r0 != seed + 1) + (r1 != seed + 2) + (r2 != seed + 3) + (r3 != seed + 4) +
         (r4 != seed + 5);
}
#elif defined(__aarch64__)
#define CALLEE_SAVED_REGS 18
static void __attribute__((noinline)) switch_keeping_regs(rill__ctx *from, rill__ctx *to,
                                                          uint64_t seed, int *bad) {
  register uint64_t x19 __asm__("x19") = seed + 1;
  register uint64_t x20 __asm__("x20") = seed + 2;
  register uint64_t x21 __asm__("x21") = seed + 3;
  register uint64_t x22 __asm__("x22") = seed + 4;
  register uint64_t x23 __asm__("x23") = seed + 5;
  register uint64_t x24 __asm__("x24") = seed + 6;
  register uint64_t x25 __asm__("x25") = seed + 7;
  register uint64_t x26 __asm__("x26") = seed + 8;
  register uint64_t x27 __asm__("x27") = seed + 9;
  register uint64_t x28 __asm__("x28") = seed + 10;
  register double d8 __asm__("d8") = (double)seed + 0.25;
  register double d9 __asm__("d9") = (double)seed + 1.25;
  register double d10 __asm__("d10") = (double)seed + 2.25;
  register double d11 __asm__("d11") = (double)seed + 3.25;
  register double d12 __asm__("d12") = (double)seed + 4.25;
  register double d13 __asm__("d13") = (double)seed + 5.25;
  register double d14 __asm__("d14") = (double)seed + 6.25;
  register double d15 __asm__("d15") = (double)seed + 7.25;
  __asm__ volatile("" : "+r"(x19), "+r"(x20), "+r"(x21), "+r"(x22), "+r"(x23), "+r"(x24),
                   "+r"(x25), "+r"(x26), "+r"(x27), "+r"(x28));
  __asm__ volatile("" : "+w"(d8), "+w"(d9), "+w"(d10), "+w"(d11), "+w"(d12), "+w"(d13),
                   "+w"(d14), "+w"(d15));
  rill__ctx_switch(from, to);
  __asm__ volatile("" : "+r"(x19), "+r"(x20), "+r"(x21), "+r"(x22), "+r"(x23), "+r"(x24),
                   "+r"(x25), "+r"(x26), "+r"(x27), "+r"(x28));
  __asm__ volatile("" : "+w"(d8), "+w"(d9), "+w"(d10), "+w"(d11), "+w"(d12), "+w"(d13),
                   "+w"(d14), "+w"(d15));
  *bad = (x19 != seed + 1) + (x20 != seed + 2) + (x21 != seed + 3) + (x22 != seed + 4) +
         (x23 != seed + 5) + (x24 != seed + 6) + (x25 != seed + 7) + (x26 != seed + 8) +
         (x27 != seed + 9) + (x28 != seed + 10) + (d8 != (double)seed + 0.25) +
         (d9 != (double)seed + 1.25) + (d10 != (double)seed + 2.25) +
         (d11 != (double)seed + 3.25) + (d12 != (double)seed + 4.25) +
         (d13 != (double)seed + 5.25) + (d14 != (double)seed + 6.25) +
         (d15 != (double)seed + 7.25);
}
#else
#define CALLEE_SAVED_REGS 0
static void switch_keeping_regs(rill__ctx *from, rill__ctx *to, uint64_t seed, int *bad) {
  (void)seed;
  rill__ctx_switch(from, to);
  *bad = 0;
}
#endif

#if defined(__x86_64__)
static unsigned get_mxcsr(void) {
  unsigned v;
  __asm__ volatile("stmxcsr %0" : "=m"(v));
  return v;
}
static unsigned get_x87cw(void) {
  unsigned short v;
  __asm__ volatile("fnstcw %0" : "=m"(v));
  return v;
}
#define MXCSR_RC 0x6000u /* rounding control */
#define X87_RC 0x0c00u
#endif

static int regs_bad_in_co;
static int fp_bad_in_co;

/* The coroutine side of test_registers: three rounds of pinned registers,
 * then (x86-64) its own rounding mode kept across a suspension. */
static void regs_body(struct co *c) {
  for (int round = 0; round < 3; round++) {
    int bad;
    switch_keeping_regs(&c->ctx, &c->caller, 0x1000u * (uint64_t)(round + 1), &bad);
    regs_bad_in_co += bad;
  }
#if defined(__x86_64__)
  /* MXCSR and the x87 control word are callee-saved in the SysV ABI, so
   * each context keeps its own rounding mode. */
  fesetround(FE_TOWARDZERO);
  co_yield(c);
  fp_bad_in_co += (get_mxcsr() & MXCSR_RC) != 0x6000u;
  fp_bad_in_co += (get_x87cw() & X87_RC) != 0x0c00u;
  fp_bad_in_co += fegetround() != FE_TOWARDZERO;
  fesetround(FE_TONEAREST);
#else
  co_yield(c);
#endif
}

static void test_registers(rill__stack_pool *pool) {
  struct co c;
  regs_bad_in_co = 0;
  fp_bad_in_co = 0;
  CHECK(co_start(&c, pool, regs_body, 5) == 0);
  /* The first switch starts the coroutine; the next three resume its
   * rounds, the last of which runs on to its final suspension. */
  int bad_total = 0;
  for (int round = 0; round < 4; round++) {
    int bad;
    switch_keeping_regs(&c.caller, &c.ctx, 0xabc000u + (uint64_t)round, &bad);
    bad_total += bad;
  }
  CHECK(bad_total == 0);
  CHECK(regs_bad_in_co == 0);
  CHECK(!c.done);
#if defined(__x86_64__)
  /* The coroutine is suspended with FE_TOWARDZERO; we never set it. */
  CHECK(fegetround() == FE_TONEAREST);
  CHECK((get_mxcsr() & MXCSR_RC) == 0);
  CHECK((get_x87cw() & X87_RC) == 0);
  fesetround(FE_UPWARD);
  CHECK(co_resume(&c) == 1);
  CHECK(fegetround() == FE_UPWARD);
  CHECK((get_mxcsr() & MXCSR_RC) == 0x4000u);
  CHECK((get_x87cw() & X87_RC) == 0x0800u);
  fesetround(FE_TONEAREST);
  CHECK(fp_bad_in_co == 0);
#else
  CHECK(co_resume(&c) == 1);
#endif
  printf("  callee-saved registers pinned across switches: %d per side%s\n",
         CALLEE_SAVED_REGS,
#if defined(__x86_64__)
         ", rounding mode per context"
#else
         ""
#endif
  );
}

/* --- canary ---------------------------------------------------------------- */

static void test_canary(void) {
  rill__stack_pool *pool = rill__stack_pool_new(STACK_SIZE);
  CHECK(pool != NULL);
  CHECK(rill__stack_pool_stack_size(pool) == STACK_SIZE);
  unsigned char *s = rill__stack_get(pool);
  CHECK(s != NULL);
  /* A shallow coroutine costs its top page only: neither getting the
   * stack nor the end-of-coroutine check commits the low end. */
  CHECK(rill__stack_ok(pool, s, 0));
  unsigned char resident = 1;
  CHECK(mincore(s, 4096, &resident) == 0);
  CHECK(!(resident & 1));
  CHECK(rill__stack_ok(pool, s, 1));
  s[64] ^= 0xff; /* the usable area starts above the canary */
  CHECK(rill__stack_ok(pool, s, 1));
  s[64] ^= 0xff;
  s[63] = 0x5a; /* an overflow reaching the low end */
  CHECK(!rill__stack_ok(pool, s, 1));
  /* Not always: the low end is read only when the frames went past the
   * top page (its lowest bytes are no longer zero), so a shallow stack
   * is not faulted in. */
  CHECK(rill__stack_ok(pool, s, 0));
  unsigned char *top_page = s + STACK_SIZE - 4096;
  top_page[8] = 1;
  CHECK(!rill__stack_ok(pool, s, 0));
  s[63] = 0;
  CHECK(rill__stack_ok(pool, s, 0));
  top_page[8] = 0;
  rill__stack_put(pool, s);
  unsigned char *again = rill__stack_get(pool); /* LIFO: the same stack */
  CHECK(again == s);
  CHECK(rill__stack_ok(pool, again, 1));
  rill__stack_put(pool, again);
  rill__stack_pool_free(pool);

  CHECK(rill__stack_pool_new(SIZE_MAX / 2) == NULL);
  pool = rill__stack_pool_new((size_t)1 << 50); /* a PiB: mmap must fail */
  CHECK(pool != NULL);
  errno = 0;
  CHECK(rill__stack_get(pool) == NULL);
  CHECK(errno == ENOMEM);
  rill__stack_pool_free(pool);
}

/* --- many stacks, mappings, RSS ------------------------------------------- */

static long count_maps(void) {
  FILE *f = fopen("/proc/self/maps", "r");
  if (!f)
    return -1;
  long lines = 0;
  int ch;
  while ((ch = fgetc(f)) != EOF)
    lines += ch == '\n';
  fclose(f);
  return lines;
}

static long rss_bytes(void) {
  FILE *f = fopen("/proc/self/statm", "r");
  long size, resident;
  if (!f)
    return -1;
  int n = fscanf(f, "%ld %ld", &size, &resident);
  fclose(f);
  return n == 2 ? resident * sysconf(_SC_PAGESIZE) : -1;
}

static int cmp_ptr(const void *a, const void *b) {
  uintptr_t x = (uintptr_t) * (void *const *)a, y = (uintptr_t) * (void *const *)b;
  return x < y ? -1 : x > y;
}

static void tiny_body(struct co *c) {
  volatile char buf[256];
  memset((char *)buf, c->id & 0x7f, sizeof buf);
  co_yield(c);
  c->value = buf[255];
}

static void test_many_stacks(void) {
  const char *env = getenv("RILL_CTX_TEST_STACKS");
  long n = env ? atol(env) : 100000;
  FILE *f = fopen("/proc/sys/vm/max_map_count", "r");
  long max_maps = -1;
  if (f) {
    if (fscanf(f, "%ld", &max_maps) != 1)
      max_maps = -1;
    fclose(f);
  }
  void **stacks = calloc((size_t)n, sizeof *stacks);
  CHECK(stacks != NULL);
  if (!stacks)
    return;
  long maps_before = count_maps();
  rill__stack_pool *pool = rill__stack_pool_new(STACK_SIZE);
  long got = 0;
  for (long i = 0; i < n; i++) {
    stacks[i] = rill__stack_get(pool);
    if (!stacks[i])
      break;
    got++;
  }
  CHECK(got == n);
  long maps_during = count_maps();
  int canaries = 1;
  for (long i = 0; i < got; i++)
    canaries &= rill__stack_ok(pool, stacks[i], 1);
  CHECK(canaries);
  qsort(stacks, (size_t)got, sizeof *stacks, cmp_ptr);
  int disjoint = 1;
  for (long i = 1; i < got; i++)
    disjoint &= (uintptr_t)stacks[i] - (uintptr_t)stacks[i - 1] >= STACK_SIZE;
  CHECK(disjoint);
  /* All of them still run (first, middle, last). */
  long pick[3] = {0, got / 2, got - 1};
  for (int k = 0; k < 3 && got > 0; k++) {
    struct co c;
    memset(&c, 0, sizeof c);
    c.pool = pool;
    c.body = tiny_body;
    c.id = k + 1;
    c.stack = stacks[pick[k]];
    CHECK(rill__ctx_make(&c.ctx, c.stack, STACK_SIZE, co_entry, &c) == 0);
    CHECK(co_resume(&c) == 0);
    CHECK(co_resume(&c) == 1); /* puts the stack back */
    CHECK(c.value == k + 1);
    stacks[pick[k]] = rill__stack_get(pool);
  }
  for (long i = 0; i < got; i++)
    rill__stack_put(pool, stacks[i]);
  rill__stack_pool_free(pool);
  long maps_after = count_maps();
  printf("  %ld stacks of %d KiB: /proc/self/maps %ld -> %ld lines (max_map_count %ld), "
         "%ld after free\n",
         got, STACK_SIZE >> 10, maps_before, maps_during, max_maps, maps_after);
  /* The sanitizers' runtimes map shadow of their own as memory is touched. */
  CHECK(maps_during - maps_before < (tsan ? 2000 : 64));
  if (!sanitized)
    CHECK(maps_after - maps_before < 8);
  free(stacks);
}

/* Suspended coroutines that touched little must cost little: the canary
 * page and the top page or two. */
static void test_rss_per_coroutine(void) {
  long n = RUNNING_ON_VALGRIND || tsan ? 1000 : 10000;
  struct co *cos = calloc((size_t)n, sizeof *cos);
  CHECK(cos != NULL);
  if (!cos)
    return;
  rill__stack_pool *pool = rill__stack_pool_new(STACK_SIZE);
  long rss0 = rss_bytes();
  for (long i = 0; i < n; i++) {
    CHECK(co_start(&cos[i], pool, tiny_body, (int)(i % 100) + 1) == 0);
    CHECK(co_resume(&cos[i]) == 0);
  }
  long rss1 = rss_bytes();
  long per = (rss1 - rss0) / n;
  int finished = 0;
  for (long i = 0; i < n; i++)
    finished += co_resume(&cos[i]);
  CHECK(finished == n);
  printf("  %ld suspended coroutines: RSS +%ld KiB, %ld bytes each\n", n, (rss1 - rss0) >> 10,
         per);
#ifdef RILL_CTX_UCONTEXT
  /* Each suspended context also holds a ucontext_t (4.5 KiB on AArch64). */
  long limit = 12 * 1024 + 2 * 4096 + 2 * (long)sizeof(ucontext_t);
#else
  long limit = 12 * 1024;
#endif
  if (!sanitized && !RUNNING_ON_VALGRIND)
    CHECK(per <= limit);
  rill__stack_pool_free(pool);
  free(cos);
}

/* A burst of deep coroutines must not pin their pages once they finish. */
static void __attribute__((noinline)) go_deep(int id) {
  char buf[44 << 10];
  memset(buf, 1 + id % 255, sizeof buf); /* never zero: see went_deep */
  __asm__ volatile("" : : "r"(buf) : "memory");
}

static void deep_body(struct co *c) {
  go_deep(c->id);
  co_yield(c);
}

static void test_trim(void) {
  enum { N = 1000 };
  struct co *cos = calloc(N, sizeof *cos);
  CHECK(cos != NULL);
  if (!cos)
    return;
  rill__stack_pool *pool = rill__stack_pool_new(STACK_SIZE);
  long rss0 = rss_bytes();
  for (int i = 0; i < N; i++) {
    CHECK(co_start(&cos[i], pool, deep_body, i + 1) == 0);
    CHECK(co_resume(&cos[i]) == 0);
  }
  long rss1 = rss_bytes();
  int finished = 0;
  for (int i = 0; i < N; i++)
    finished += co_resume(&cos[i]);
  CHECK(finished == N);
  long rss2 = rss_bytes();
  /* Reuse: trimmed stacks read back as zeros and still work. */
  for (int i = 0; i < N; i++) {
    CHECK(co_start(&cos[i], pool, tiny_body, i + 1) == 0);
    CHECK(co_resume(&cos[i]) == 0);
  }
  for (int i = 0; i < N; i++)
    CHECK(co_resume(&cos[i]) == 1);
  printf("  %d deep coroutines: RSS +%ld KiB while suspended, +%ld KiB after they "
         "finished\n",
         N, (rss1 - rss0) >> 10, (rss2 - rss0) >> 10);
  if (!sanitized && !RUNNING_ON_VALGRIND) {
    CHECK(rss1 - rss0 > (long)N * (40 << 10));
    CHECK(rss2 - rss0 < (long)N * (28 << 10));
  }
  rill__stack_pool_free(pool);
  free(cos);
}

/* A stack reused after a coroutine finished with live frames must not
 * trip ASan on the old frames' poison, and fake stacks must survive. */
static void __attribute__((noinline)) nest_and_finish(struct co *c, int depth) {
  volatile char local[100];
  local[0] = (char)depth;
  if (depth > 0) {
    nest_and_finish(c, depth - 1);
  } else {
    co_yield(c);
    c->done = 1;
    rill__ctx_switch_final(&c->ctx, &c->caller); /* finish from deep inside */
  }
  c->value += local[0];
}

static void deep_finish_body(struct co *c) { nest_and_finish(c, 20); }

static void test_reuse_after_deep_finish(rill__stack_pool *pool) {
  for (int round = 0; round < 4; round++) {
    struct co c;
    CHECK(co_start(&c, pool, round % 2 ? pingpong_body : deep_finish_body, 1) == 0);
    n_order = 0;
    int done = 0;
    for (int i = 0; i < 5 && !done; i++)
      done = co_resume(&c);
    CHECK(done);
  }
}

/* --- speed ----------------------------------------------------------------- */

static void bench_body(struct co *c) {
  for (;;)
    rill__ctx_switch(&c->ctx, &c->caller);
}

static int cmp_double(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return x < y ? -1 : x > y;
}

static double now_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec * 1e9 + (double)ts.tv_nsec;
}

static void bench(rill__stack_pool *pool) {
  long switches = 10 * 1000 * 1000;
  if (RUNNING_ON_VALGRIND)
    switches = 100 * 1000;
#ifdef RILL_CTX_UCONTEXT
  else if (1)
    switches = 1000 * 1000; /* a signal-mask syscall each way */
#endif
  else if (sanitized)
    switches = 1000 * 1000;
  struct co c;
  CHECK(co_start(&c, pool, bench_body, 1) == 0);
  for (int i = 0; i < 1000; i++) /* warm up */
    rill__ctx_switch(&c.caller, &c.ctx);
  /* 50 rounds; the fastest is the figure least disturbed by other load on
   * the machine, the median shows how much there was. */
  enum { ROUNDS = 50 };
  double ns[ROUNDS];
  for (int round = 0; round < ROUNDS; round++) {
    double t0 = now_ns();
    for (long i = 0; i < switches / ROUNDS / 2; i++)
      rill__ctx_switch(&c.caller, &c.ctx);
    ns[round] = (now_ns() - t0) / (double)(switches / ROUNDS);
  }
  qsort(ns, ROUNDS, sizeof ns[0], cmp_double);
  /* bench_body never finishes: drop it without running it out. */
  rill__ctx_destroy(&c.ctx);
  rill__stack_put(pool, c.stack);
  printf("  %ld switches: %.2f ns per switch one way (fastest of %d rounds; median %.2f)\n",
         switches, ns[0], ROUNDS, ns[ROUNDS / 2]);
}

/* --- ASan must still see real bugs ------------------------------------------ */

static void buggy_body(struct co *c) {
  char buf[16];
  char *volatile p = buf; /* through a pointer: for ASan, not UBSan's bounds check */
  memset(buf, 0, sizeof buf);
  p[16] = 1; /* one past the end */
  c->value = buf[0];
}

static int asan_bug(void) {
  rill__stack_pool *pool = rill__stack_pool_new(STACK_SIZE);
  struct co c;
  if (co_start(&c, pool, buggy_body, 1) != 0)
    return 2;
  co_resume(&c);
  fprintf(stderr, "ctx_test: the overflow was not reported\n");
  return 0; /* the runner expects a failing exit */
}

int main(int argc, char **argv) {
  setvbuf(stdout, NULL, _IOLBF, 0);
  if (argc > 1 && strcmp(argv[1], "--asan-bug") == 0)
    return asan_bug();
  printf("ctx_test: backend %s%s%s\n", backend, sanitized ? ", sanitized" : "",
         RUNNING_ON_VALGRIND ? ", under valgrind" : "");
  rill__stack_pool *pool = rill__stack_pool_new(STACK_SIZE);
  CHECK(pool != NULL);
  if (!pool)
    return 1;
  test_pingpong(pool);
  test_handoff(pool);
  test_destroy_unstarted(pool);
  test_registers(pool);
  test_reuse_after_deep_finish(pool);
  test_canary();
  test_many_stacks();
  test_rss_per_coroutine();
  test_trim();
  bench(pool);
  rill__stack_pool_free(pool);
  printf("ctx_test: %d checks, %d failed\n", checks, failures);
  return failures ? 1 : 0;
}
