/* names.c - the 1.1 names of 1.0 functions (rill.h "Naming"): each is the
 * 1.0 function under the rule's name; both stay exported. */
#include "internal.h"

int rill_future_is_done(const rill_future *f) { return rill_future_done(f); }
int rill_handle_is_cancelled(const rill_handle *h) { return rill_handle_cancelled(h); }
int rill_timeout_is_expired(const rill_timeout *t) { return rill_timeout_expired(t); }
int rill_task_is_cancel_requested(rill_task *t) { return rill_task_cancel_requested(t); }
int rill_loop_debug(const rill_loop *loop) { return rill_loop_get_debug(loop); }
rill_task *rill_task_current(void) { return rill_current_task(); }
const char *rill_error_name(int code) { return rill_err_name(code); }
int rill_task_resume_on(rill_task *t, rill_future *awaited) { return rill_task_wait(t, awaited); }
int rill_task_resume_soon(rill_task *t) { return rill_task_yield(t); }
int rill_task_resume_after(rill_task *t, double seconds) { return rill_task_sleep(t, seconds); }
size_t rill_future_child_count(rill_future *f) { return rill_gather_count(f); }
rill_future *rill_future_child(rill_future *f, size_t i) { return rill_gather_child(f, i); }
