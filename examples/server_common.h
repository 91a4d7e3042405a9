/* server_common.h - what echo_server.c and http_hello.c share: N loops on
 * N threads, each with its own SO_REUSEPORT listener on 127.0.0.1:PORT,
 * and a clean exit on SIGINT/SIGTERM (a side thread waits for the signal
 * with sigwait and tells each loop through rill_call_soon_threadsafe). */
#ifndef SERVER_COMMON_H
#define SERVER_COMMON_H

#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>

#include "rill.h"

typedef struct conn conn;
typedef struct server {
  rill_loop *loop;
  rill_listener *listener;
  conn *conns; /* live connections, closed at shutdown */
  pthread_t thread;
  int port, flags;
  rill_accept_fn on_accept;
  pthread_mutex_t *ready_lock;
  pthread_cond_t *ready_cond;
  int *ready, failed;
} server;

struct conn {
  conn *prev, *next;
  server *srv;
  rill_stream *stream;
  char *buf; /* http_hello: a partial request */
  size_t len, cap;
};

static conn *conn_new(server *srv, rill_stream *s) {
  conn *c = calloc(1, sizeof *c);
  if (!c) return NULL;
  c->srv = srv;
  c->stream = s;
  c->next = srv->conns;
  if (srv->conns) srv->conns->prev = c;
  srv->conns = c;
  return c;
}

/* free_arg of the stream callback: runs after the LOST event. */
static void conn_free(void *arg) {
  conn *c = arg;
  if (c->prev) c->prev->next = c->next;
  else c->srv->conns = c->next;
  if (c->next) c->next->prev = c->prev;
  free(c->buf);
  free(c);
}

static void server_shutdown(void *arg) {
  server *srv = arg;
  rill_listener_close(srv->listener);
  for (conn *c = srv->conns; c; c = c->next) rill_stream_close(c->stream);
}

static void *server_thread(void *arg) {
  server *srv = arg;
  srv->loop = rill_loop_new();
  srv->listener = srv->loop ? rill_tcp_listen(srv->loop, "127.0.0.1", srv->port, 1024, srv->flags) : NULL;
  if (!srv->listener || rill_listener_set_callback(srv->listener, srv->on_accept, srv, NULL)) {
    fprintf(stderr, "listen on 127.0.0.1:%d: %s\n", srv->port, rill_last_error_message());
    srv->failed = 1;
  }
  pthread_mutex_lock(srv->ready_lock);
  (*srv->ready)++;
  pthread_cond_signal(srv->ready_cond);
  pthread_mutex_unlock(srv->ready_lock);
  if (!srv->failed) rill_loop_run(srv->loop); /* until the listener and every connection closed */
  rill_listener_release(srv->listener);
  rill_loop_free(srv->loop);
  return NULL;
}

/* Runs the server: returns the exit status. */
static int serve(int argc, char **argv, rill_accept_fn on_accept) {
  if (argc < 2) {
    fprintf(stderr, "usage: %s PORT [LOOPS]\n", argv[0]);
    return 2;
  }
  int port = atoi(argv[1]);
  int loops = argc > 2 ? atoi(argv[2]) : 1;
  if (port <= 0 || port > 65535 || loops < 1 || loops > 64) {
    fprintf(stderr, "usage: %s PORT [LOOPS]  (PORT 1-65535, LOOPS 1-64)\n", argv[0]);
    return 2;
  }
  /* Every thread inherits the mask: only sigwait below sees the signals. */
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGINT);
  sigaddset(&set, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &set, NULL);

  pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
  pthread_cond_t cond = PTHREAD_COND_INITIALIZER;
  int ready = 0, failed = 0;
  server *srv = calloc((size_t)loops, sizeof *srv);
  for (int i = 0; i < loops; i++) {
    srv[i].port = port;
    srv[i].flags = loops > 1 ? RILL_LISTEN_REUSEPORT : 0;
    srv[i].on_accept = on_accept;
    srv[i].ready_lock = &lock;
    srv[i].ready_cond = &cond;
    srv[i].ready = &ready;
    pthread_create(&srv[i].thread, NULL, server_thread, &srv[i]);
  }
  pthread_mutex_lock(&lock);
  while (ready < loops) pthread_cond_wait(&cond, &lock);
  pthread_mutex_unlock(&lock);
  for (int i = 0; i < loops; i++) failed |= srv[i].failed;
  if (!failed) {
    printf("listening on 127.0.0.1:%d\n", port);
    fflush(stdout);
    int sig;
    sigwait(&set, &sig);
  }
  for (int i = 0; i < loops; i++)
    if (!srv[i].failed) rill_call_soon_threadsafe(srv[i].loop, server_shutdown, &srv[i], NULL);
  for (int i = 0; i < loops; i++) pthread_join(srv[i].thread, NULL);
  free(srv);
  return failed ? 1 : 0;
}

#endif
