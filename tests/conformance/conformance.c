/* conformance.c - the conformance scenarios (transcript.txt) in C: the
 * group runs on C coroutines and leaves with rill_group_exit_await; the
 * early task is a step task with RILL_TASK_SKIP_CANCELLED_START. Prints
 * the transcript's lines; conformance_check.cmake compares them. */
#include <stdio.h>
#include <string.h>

#include "rill.h"

static rill_loop *loop;

static int fail(const char *what, int code) {
  rill_future_fail(rill_task_future(rill_current_task()), code, what, NULL, NULL, NULL);
  return code;
}
static int c1(void *arg) {
  (void)arg;
  rill_sleep(0.01);
  return fail("c1", -1001);
}
static int c2(void *arg) {
  (void)arg;
  if (rill_sleep(10.0) == RILL_ECANCELLED) return fail("c2", -1002);
  return 0;
}
static int c3(void *arg) {
  (void)arg;
  return rill_sleep(10.0);
}

static int group_main(void *arg) {
  (void)arg;
  rill_group *g = rill_group_new(loop, rill_current_task());
  rill_task *t1 = rill_group_spawn(g, c1, NULL), *t2 = rill_group_spawn(g, c2, NULL),
            *t3 = rill_group_spawn(g, c3, NULL);
  int body_rc = rill_sleep(10.0);
  if (body_rc == RILL_ECANCELLED) body_rc = RILL_EEXCEPTION; /* the body fails handling it */
  int rc = rill_group_exit_await(g, body_rc);
  if (rc == RILL_EGROUP) {
    printf("errors:");
    for (size_t i = 0; i < rill_group_exit_error_count(g); i++) {
      rill_task *child = NULL;
      if (rill_group_exit_error(g, i, &child) == 1)
        printf(" %s", rill_future_error_message(rill_task_future(child)));
      else
        printf(" body");
    }
    printf("\n");
  } else {
    printf("group gave %d\n", rc);
  }
  printf("c3: %s\n", rill_future_state(rill_task_future(t3)) == RILL_CANCELLED ? "cancelled" : "not cancelled");
  rill_task_release(t1);
  rill_task_release(t2);
  rill_task_release(t3);
  rill_group_release(g);
  return 0;
}

static int early_ran;
static void early_step(rill_task *t, void *arg) {
  (void)arg;
  early_ran = 1;
  rill_future_set_none(rill_task_future(t));
}

int main(void) {
  setvbuf(stdout, NULL, _IONBF, 0);
  loop = rill_loop_new();
  rill_task *main_task = rill_spawn(loop, group_main, NULL);
  rill_loop_run_until(loop, rill_task_future(main_task));
  rill_task_release(main_task);

  rill_task *early = rill_task_new_v2(loop, early_step, NULL, NULL, RILL_TASK_SKIP_CANCELLED_START);
  rill_task_cancel(early, NULL);
  rill_loop_run_until(loop, rill_task_future(early));
  printf("early: %s, %s\n", early_ran ? "ran" : "never ran",
         rill_future_state(rill_task_future(early)) == RILL_CANCELLED ? "cancelled" : "not cancelled");
  rill_task_release(early);
  rill_loop_free(loop);
  return 0;
}
