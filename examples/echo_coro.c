/* echo_coro.c - a TCP echo server on rill's awaitable face, one C
 * coroutine per connection (README: "I/O"). echo_coro [PORT]: listens on
 * 127.0.0.1:PORT (default 8888); Ctrl+C ends it (rill_run cancels main). */
#include <stdio.h>
#include <stdlib.h>
#include <rill.h>

static int echo(void *arg) { /* one connection: read, write back, until EOF */
  rill_stream *s = arg;
  for (;;) {
    rill_future *r = rill_stream_read(s, 65536);
    size_t len = 0;
    const void *data = rill_await(r) == RILL_OK ? rill_future_bytes(r, &len) : NULL;
    if (len) rill_stream_write(s, data, len); /* buffered; drain() waits for the peer */
    rill_future_release(r);
    if (!len) break; /* EOF, or the connection failed */
  }
  rill_stream_close(s); /* flushes what is buffered */
  rill_stream_release(s);
  return RILL_OK;
}

static int serve(void *arg) {
  rill_loop *loop = rill_loop_current();
  rill_listener *l = rill_tcp_listen(loop, "127.0.0.1", *(int *)arg, 0, 0);
  if (!l) return rill_last_error();
  printf("listening on 127.0.0.1:%d\n", rill_listener_port(l));
  fflush(stdout);
  int rc;
  for (;;) {
    rill_future *a = rill_listener_accept(l);
    if ((rc = rill_await(a)) == RILL_OK) /* a new connection: its own coroutine */
      rill_task_release(rill_spawn(loop, echo, rill_future_stream(a)));
    rill_future_release(a);
    if (rc < 0) break; /* RILL_ECANCELLED: Ctrl+C */
  }
  rill_listener_close(l);
  rill_listener_release(l);
  return rc;
}

int main(int argc, char **argv) {
  int port = argc > 1 ? atoi(argv[1]) : 8888;
  int rc = rill_run(serve, &port);
  return rc == RILL_OK || rc == RILL_EINTR ? 0 : 1;
}
