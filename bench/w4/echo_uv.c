/* echo_uv.c - a libuv echo server (uv_try_write first, uv_write for the
 * rest).   echo_uv PORT */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <uv.h>

static char buf[65536];
static uv_loop_t *loop;

static void on_alloc(uv_handle_t *h, size_t s, uv_buf_t *b) {
  (void)h, (void)s;
  *b = uv_buf_init(buf, sizeof buf);
}
static void on_close(uv_handle_t *h) { free(h); }
static void on_written(uv_write_t *w, int st) {
  (void)st;
  free(w->data);
  free(w);
}
static void on_read(uv_stream_t *s, ssize_t n, const uv_buf_t *b) {
  if (n < 0) return uv_close((uv_handle_t *)s, on_close);
  if (n == 0) return;
  uv_buf_t out = uv_buf_init(b->base, (unsigned)n);
  int w = uv_try_write(s, &out, 1);
  if (w < 0) w = 0;
  if (w < n) {
    uv_write_t *req = malloc(sizeof *req);
    char *copy = malloc((size_t)(n - w));
    memcpy(copy, b->base + w, (size_t)(n - w));
    req->data = copy;
    uv_buf_t rest = uv_buf_init(copy, (unsigned)(n - w));
    uv_write(req, s, &rest, 1, on_written);
  }
}
static void on_conn(uv_stream_t *server, int st) {
  if (st < 0) return;
  uv_tcp_t *c = malloc(sizeof *c);
  uv_tcp_init(loop, c);
  if (uv_accept(server, (uv_stream_t *)c) == 0) {
    uv_tcp_nodelay(c, 1);
    uv_read_start((uv_stream_t *)c, on_alloc, on_read);
  } else {
    uv_close((uv_handle_t *)c, on_close);
  }
}

int main(int argc, char **argv) {
  int port = argc > 1 ? atoi(argv[1]) : 0;
  loop = uv_default_loop();
  uv_tcp_t server;
  uv_tcp_init(loop, &server);
  struct sockaddr_in addr;
  uv_ip4_addr("127.0.0.1", port, &addr);
  if (uv_tcp_bind(&server, (const struct sockaddr *)&addr, 0) || uv_listen((uv_stream_t *)&server, 1024, on_conn))
    return fprintf(stderr, "listen failed\n"), 1;
  printf("listening on 127.0.0.1:%d\n", port);
  fflush(stdout);
  return uv_run(loop, UV_RUN_DEFAULT);
}
