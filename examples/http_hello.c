/* http_hello.c - a minimal keep-alive HTTP/1.1 server: GET / answers
 * "Hello, World!" (13 bytes); anything else 404. Pipelined requests are
 * answered in order. Drivable by wrk:
 *
 *   http_hello PORT [LOOPS]     then   wrk -t1 -c50 -d5s http://127.0.0.1:PORT/ */
#include <string.h>

#include "server_common.h"

static const char OK[] =
    "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 13\r\n\r\nHello, World!";
static const char NOT_FOUND[] =
    "HTTP/1.1 404 Not Found\r\nContent-Type: text/plain\r\nContent-Length: 9\r\n\r\nNot Found";
#define MAX_REQUEST 8192

/* Answers every complete request in p[0..len); returns the bytes used, or
 * -1 to close the connection. */
static long answer(rill_stream *s, const char *p, size_t len) {
  size_t used = 0;
  for (;;) {
    const char *end = memmem(p + used, len - used, "\r\n\r\n", 4);
    if (!end) return (long)used;
    const char *req = p + used;
    size_t n = (size_t)(end - req) + 4;
    int root = n >= 6 && memcmp(req, "GET / ", 6) == 0;
    if (root) rill_stream_write(s, OK, sizeof OK - 1);
    else rill_stream_write(s, NOT_FOUND, sizeof NOT_FOUND - 1);
    if (memmem(req, n, "Connection: close", 17)) return -1;
    used += n;
  }
}

static int on_event(rill_stream *s, int event, const void *data, size_t len, int err, void *arg) {
  (void)err;
  conn *c = arg;
  if (event != RILL_STREAM_DATA) return 0;
  long used;
  if (!c->len) { /* the common case: whole requests in one read, no copy */
    used = answer(s, data, len);
    if (used >= 0 && (size_t)used == len) return 0;
  } else {
    used = 0;
  }
  if (used < 0) return rill_stream_close(s), 0;
  size_t rest = len - (size_t)used;
  if (c->len + rest > MAX_REQUEST) return rill_stream_close(s), 0;
  if (c->cap < c->len + rest) {
    char *b = realloc(c->buf, MAX_REQUEST);
    if (!b) return rill_stream_abort(s), 0;
    c->buf = b;
    c->cap = MAX_REQUEST;
  }
  memcpy(c->buf + c->len, (const char *)data + used, rest);
  c->len += rest;
  used = answer(s, c->buf, c->len);
  if (used < 0) return rill_stream_close(s), 0;
  memmove(c->buf, c->buf + used, c->len - (size_t)used);
  c->len -= (size_t)used;
  return 0;
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
