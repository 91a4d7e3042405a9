/* echo_server.c - a TCP echo server on rill's callback face.
 *
 *   echo_server PORT [LOOPS]
 *
 * Listens on 127.0.0.1:PORT and echoes every read back until the peer
 * closes. LOOPS threads each run their own loop with their own listener on
 * the same port (SO_REUSEPORT). Prints "listening on 127.0.0.1:PORT" when
 * ready; exits 0 on SIGINT/SIGTERM after closing listeners and connections. */
#include "server_common.h"

static int on_event(rill_stream *s, int event, const void *data, size_t len, int err, void *arg) {
  (void)err, (void)arg;
  if (event == RILL_STREAM_DATA) rill_stream_write(s, data, len);
  return 0; /* on EOF: close (after flushing what is left) */
}

static void on_accept(rill_listener *l, rill_stream *s, void *arg) {
  (void)l;
  conn *c = conn_new(arg, s);
  if (!c || rill_stream_set_callback(s, on_event, c, conn_free)) {
    if (c) conn_free(c);
    rill_stream_abort(s);
  }
}

int main(int argc, char **argv) { return serve(argc, argv, on_accept); }
