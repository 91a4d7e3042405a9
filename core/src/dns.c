/* dns.c - getaddrinfo / getnameinfo on the thread pool, as awaitable
 * futures. The blocking resolver runs on a pool thread; the future carries
 * the result as a pointer value with a rill-owned tag, freed (freeaddrinfo)
 * with the future, or at once when a cancel dropped it. */
#include <errno.h>
#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "internal.h"

static const char addrinfo_tag = 'a';
static const char nameinfo_tag = 'n';

typedef struct gai_request {
  char *host, *service;
  struct addrinfo hints;
  int has_hints;
} gai_request;

typedef struct gni_request {
  struct sockaddr_storage addr;
  socklen_t addrlen;
  int flags;
} gni_request;

typedef struct nameinfo_result {
  char host[NI_MAXHOST];
  char service[NI_MAXSERV];
} nameinfo_result;

static char *dup_or_null(const char *s, int *failed) {
  if (!s) return NULL;
  size_t n = strlen(s) + 1;
  char *c = malloc(n);
  if (!c) *failed = 1;
  else memcpy(c, s, n);
  return c;
}

/* A resolver failure as a rill code: the name does not exist, or the
 * resolution itself failed (no server reachable, bad service, ...). */
static int gai_code(int rc) {
  switch (rc) {
  case EAI_NONAME:
#ifdef EAI_NODATA
  case EAI_NODATA:
#endif
#ifdef EAI_ADDRFAMILY
  case EAI_ADDRFAMILY:
#endif
    return RILL_ENOHOST;
  case EAI_MEMORY: return RILL_ENOMEM;
  default: return RILL_EDNS;
  }
}

static void fail_gai(rill_work *w, int rc, int saved_errno, const char *what, const char *a,
                     const char *b) {
  char msg[512];
  const char *why = rc == EAI_SYSTEM ? strerror(saved_errno) : gai_strerror(rc);
  snprintf(msg, sizeof msg, "%s(%s%s%s): %s", what, a ? a : "NULL", b ? ", " : "", b ? b : "", why);
  rill_work_fail(w, gai_code(rc), msg, NULL, NULL, NULL);
}

static void free_addrinfo(void *p) { freeaddrinfo(p); }

static void gai_work(rill_work *w, void *arg) {
  gai_request *r = arg;
  struct addrinfo *res = NULL;
  int rc = getaddrinfo(r->host, r->service, r->has_hints ? &r->hints : NULL, &res);
  if (rc == 0) rill_work_set_pointer(w, res, free_addrinfo, &addrinfo_tag);
  else fail_gai(w, rc, errno, "getaddrinfo", r->host, r->service);
}

static void gai_free(void *arg) {
  gai_request *r = arg;
  free(r->host);
  free(r->service);
  free(r);
}

rill_future *rill_getaddrinfo(rill_loop *loop, const char *host, const char *service,
                              const struct addrinfo *hints) {
  if (rill__loop_check(loop)) return NULL;
  if (!host && !service) {
    rill__fail(RILL_EINVAL, "host and service are both NULL");
    return NULL;
  }
  if (hints && (hints->ai_addrlen || hints->ai_addr || hints->ai_canonname || hints->ai_next)) {
    rill__fail(RILL_EINVAL, "hints may only set ai_flags, ai_family, ai_socktype, ai_protocol");
    return NULL;
  }
  gai_request *r = calloc(1, sizeof *r);
  int failed = !r;
  if (r) {
    r->host = dup_or_null(host, &failed);
    r->service = dup_or_null(service, &failed);
    if (hints) {
      r->has_hints = 1;
      r->hints.ai_flags = hints->ai_flags;
      r->hints.ai_family = hints->ai_family;
      r->hints.ai_socktype = hints->ai_socktype;
      r->hints.ai_protocol = hints->ai_protocol;
    }
  }
  if (failed) {
    if (r) gai_free(r);
    rill__fail(RILL_ENOMEM, "out of memory starting getaddrinfo");
    return NULL;
  }
  rill_future *f = rill_run_in_thread(loop, gai_work, r, gai_free);
  if (!f) gai_free(r);
  return f;
}

const struct addrinfo *rill_future_addrinfo(const rill_future *future) {
  if (!future) {
    rill__fail(RILL_EINVAL, "future is NULL");
    return NULL;
  }
  return rill_future_pointer(future, &addrinfo_tag);
}

static void gni_work(rill_work *w, void *arg) {
  gni_request *r = arg;
  nameinfo_result *res = calloc(1, sizeof *res);
  if (!res) {
    rill_work_fail(w, RILL_ENOMEM, "out of memory in getnameinfo", NULL, NULL, NULL);
    return;
  }
  int rc = getnameinfo((struct sockaddr *)&r->addr, r->addrlen, res->host, sizeof res->host,
                       res->service, sizeof res->service, r->flags);
  if (rc == 0) {
    rill_work_set_pointer(w, res, free, &nameinfo_tag);
    return;
  }
  int saved = errno;
  free(res);
  char family[32];
  snprintf(family, sizeof family, "family %d", (int)r->addr.ss_family);
  fail_gai(w, rc, saved, "getnameinfo", family, NULL);
}

rill_future *rill_getnameinfo(rill_loop *loop, const struct sockaddr *addr, size_t addrlen,
                              int flags) {
  if (rill__loop_check(loop)) return NULL;
  if (!addr) {
    rill__fail(RILL_EINVAL, "addr is NULL");
    return NULL;
  }
  if (addrlen < sizeof(sa_family_t) || addrlen > sizeof(struct sockaddr_storage)) {
    rill__fail(RILL_EINVAL, "addrlen %zu is not a socket address length", addrlen);
    return NULL;
  }
  gni_request *r = calloc(1, sizeof *r);
  if (!r) {
    rill__fail(RILL_ENOMEM, "out of memory starting getnameinfo");
    return NULL;
  }
  memcpy(&r->addr, addr, addrlen);
  r->addrlen = (socklen_t)addrlen;
  r->flags = flags;
  rill_future *f = rill_run_in_thread(loop, gni_work, r, free);
  if (!f) free(r);
  return f;
}

int rill_future_nameinfo(const rill_future *future, const char **host, const char **service) {
  int rc = rill__future_check(future);
  if (rc) return rc;
  if (future->state != RILL_DONE) return rill__fail(RILL_ESTATE, "the future has no value (not done)");
  const nameinfo_result *res = rill_future_pointer(future, &nameinfo_tag);
  if (!res) return rill__fail(RILL_ETYPE, "the future is not a rill_getnameinfo result");
  if (host) *host = res->host;
  if (service) *service = res->service;
  return RILL_OK;
}
