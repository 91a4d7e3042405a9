/* w5_libuv.c - W5 on libuv's thread pool (uv_queue_work; its size is
 * UV_THREADPOOL_SIZE, set from threads=): `inflight` requests outstanding,
 * each after_work callback queues the next. */
#define _POSIX_C_SOURCE 200809L
#include <stdint.h>
#include <uv.h>

#include "w5_common.h"

static w5_params P;
static long sum, next, done;

typedef struct job {
  uv_work_t req;
  long index, value;
} job;

static void work(uv_work_t *req) {
  job *j = (job *)req;
  j->value = j->index + 1;
}

static void after(uv_work_t *req, int status);

static void submit(uv_loop_t *loop, job *j) {
  j->index = next++;
  if (uv_queue_work(loop, &j->req, work, after) != 0) {
    fprintf(stderr, "bench: FAILED: uv_queue_work\n");
    exit(1);
  }
}

static void after(uv_work_t *req, int status) {
  job *j = (job *)req;
  if (status != 0) exit(1);
  sum += j->value;
  done++;
  if (next < P.jobs) submit(req->loop, j);
}

int main(int argc, char **argv) {
  P = w5_parse(argc, argv);
  char size[32];
  snprintf(size, sizeof size, "%ld", P.threads);
  setenv("UV_THREADPOOL_SIZE", size, 1);
  uv_loop_t *loop = uv_default_loop();
  job *jobs = calloc((size_t)P.inflight, sizeof *jobs);
  double t0 = w5_now();
  for (long i = 0; i < P.inflight && next < P.jobs; i++) submit(loop, &jobs[i]);
  uv_run(loop, UV_RUN_DEFAULT);
  double wall = w5_now() - t0;
  if (done != P.jobs) {
    fprintf(stderr, "bench: FAILED: %ld of %ld jobs\n", done, P.jobs);
    return 1;
  }
  w5_result("libuv", uv_version_string(), P, sum, wall);
  uv_loop_close(loop);
  free(jobs);
  return 0;
}
