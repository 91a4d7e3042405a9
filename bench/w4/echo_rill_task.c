/* echo_rill_task.c - the echo server on rill's C stackful coroutines: one
 * task per connection awaiting readability, echoing the buffered bytes
 * without a copy (peek / write / consume).   echo_rill_task PORT */
#include <stdio.h>
#include <stdlib.h>

#include "rill.h"

static int echo(void *arg) {
  rill_stream *s = arg;
  for (;;) {
    rill_future *f = rill_stream_wait_readable(s);
    int rc = rill_await(f);
    rill_future_release(f);
    size_t len = 0;
    const void *p = rill_stream_peek(s, &len);
    if (rc || !len) break;
    if (rill_stream_write(s, p, len)) break;
    rill_stream_consume(s, len);
  }
  rill_stream_close(s);
  rill_stream_release(s);
  return RILL_OK;
}

static int serve(void *arg) {
  int port = *(int *)arg;
  rill_loop *loop = rill_loop_current();
  rill_listener *l = rill_tcp_listen(loop, "127.0.0.1", port, 1024, 0);
  if (!l) return fprintf(stderr, "%s\n", rill_last_error_message()), RILL_ESYS;
  printf("listening on 127.0.0.1:%d\n", port);
  fflush(stdout);
  for (;;) {
    rill_future *f = rill_listener_accept(l);
    if (rill_await(f)) break;
    rill_task *t = rill_spawn(loop, echo, rill_future_stream(f));
    rill_task_release(t);
    rill_future_release(f);
  }
  rill_listener_release(l);
  return RILL_OK;
}

int main(int argc, char **argv) {
  int port = argc > 1 ? atoi(argv[1]) : 0;
  return rill_run(serve, &port) == RILL_OK ? 0 : 1;
}
