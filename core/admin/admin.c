/* SPDX-License-Identifier: MIT (see LICENSE) */
/* admin.c: the admin endpoint's life: the listening socket (TCP or a 0600 unix socket),
 * libmicrohttpd on threads of its own (one per connection, bounded), the limits on what
 * a client may send, the bearer token, and a stop that never waits on the loop thread
 * while the loop thread waits on it. What each endpoint answers is in admin_routes.c. */
#include "admin.h"

#include <arpa/inet.h>
#include <errno.h>
#include <microhttpd.h>
#include <netdb.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

/* ---- replies ---- */

void admin_error(admin_reply *r, unsigned status, const char *fmt, ...) {
  char msg[600];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(msg, sizeof msg, fmt, ap);
  va_end(ap);
  rc__buf b;
  rc__buf_init(&b);
  rc__buf_adds(&b, "{\"error\":");
  rc__json_write_string(&b, msg, strlen(msg));
  rc__buf_adds(&b, "}\n");
  rc__free(r->body);
  r->status = status;
  r->type = "application/json";
  r->len = b.oom ? 0 : b.n;
  r->body = b.oom ? (rc__buf_free(&b), NULL) : rc__buf_take(&b);
}

void admin_json(admin_reply *r, rc__buf *b) {
  if (b->oom) {
    rc__buf_free(b);
    admin_error(r, 500, "out of memory");
    return;
  }
  rc__buf_addc(b, '\n');
  r->status = 200;
  r->type = "application/json";
  r->len = b->n;
  r->body = rc__buf_take(b);
}

/* ---- engine calls from connection threads ---- */

bool admin_enter(rc_admin_t *a) {
  pthread_mutex_lock(&a->mu);
  bool ok = !a->closing;
  if (ok) a->calls++;
  pthread_mutex_unlock(&a->mu);
  return ok;
}

void admin_leave(rc_admin_t *a) {
  pthread_mutex_lock(&a->mu);
  a->calls--;
  pthread_cond_broadcast(&a->cv);
  pthread_mutex_unlock(&a->mu);
}

/* ---- requests ---- */

/* What one request has sent so far (MHD's per-request pointer). */
typedef struct request {
  size_t body;        /* bytes of body received */
  bool answered;      /* a response is queued (an early 401 or 413) */
} request;

/* Compares without stopping at the first difference, so the time taken says nothing
 * about how much of a guess was right. */
static bool same_secret(const char *a, const char *b) {
  size_t la = strlen(a), lb = strlen(b);
  unsigned char d = la != lb;
  for (size_t i = 0; i < lb; i++) d |= (unsigned char)(a[i % (la ? la : 1)] ^ b[i]);
  return d == 0 && la == lb;
}

/* Whether the request carries the bearer token (or none is needed). */
static bool authorized(rc_admin_t *a, struct MHD_Connection *c, const char *method,
                       const char *url) {
  if (!a->token) return true;
  bool post = strcmp(method, "POST") == 0;
  bool probe = !strcmp(url, "/healthz") || !strcmp(url, "/readyz");
  if (!post && (!a->remote || probe)) return true;
  const char *h =
    MHD_lookup_connection_value(c, MHD_HEADER_KIND, MHD_HTTP_HEADER_AUTHORIZATION);
  if (!h || strncasecmp(h, "Bearer ", 7) != 0) return false;
  h += 7;
  while (*h == ' ') h++;
  return same_secret(a->token, h);
}

static enum MHD_Result queue(struct MHD_Connection *c, admin_reply *r) {
  struct MHD_Response *resp =
    r->body ? MHD_create_response_from_buffer_with_free_callback(r->len, r->body, rc__free)
            : MHD_create_response_from_buffer(0, (void *)"", MHD_RESPMEM_PERSISTENT);
  if (!resp) {
    rc__free(r->body);
    return MHD_NO;
  }
  r->body = NULL; /* the response owns it */
  MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE,
                          r->type ? r->type : "text/plain");
  MHD_add_response_header(resp, MHD_HTTP_HEADER_CACHE_CONTROL, "no-store");
  if (r->status == 401)
    MHD_add_response_header(resp, MHD_HTTP_HEADER_WWW_AUTHENTICATE, "Bearer");
  enum MHD_Result ok = MHD_queue_response(c, r->status, resp);
  MHD_destroy_response(resp);
  return ok;
}

static enum MHD_Result queue_error(struct MHD_Connection *c, unsigned status,
                                   const char *msg) {
  admin_reply r = {0};
  admin_error(&r, status, "%s", msg);
  return queue(c, &r);
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *c, const char *url,
                                  const char *method, const char *version,
                                  const char *upload, size_t *upload_size, void **req_cls) {
  RC__UNUSED(version);
  RC__UNUSED(upload);
  rc_admin_t *a = cls;
  request *rq = *req_cls;
  if (!rq) { /* headers are in: decide before reading any body */
    rq = rc__calloc(1, sizeof *rq);
    if (!rq) return MHD_NO;
    *req_cls = rq;
    if (strcmp(method, "GET") && strcmp(method, "HEAD") && strcmp(method, "POST")) {
      rq->answered = true;
      return queue_error(c, 405, "only GET and POST are served");
    }
    if (!authorized(a, c, method, url)) {
      rq->answered = true;
      return queue_error(c, 401, "a bearer token is needed (Authorization: Bearer ...)");
    }
    const char *cl = MHD_lookup_connection_value(c, MHD_HEADER_KIND,
                                                 MHD_HTTP_HEADER_CONTENT_LENGTH);
    if (cl && strtoull(cl, NULL, 10) > a->o.max_body_bytes) {
      rq->answered = true;
      return queue_error(c, 413, "request body too large");
    }
    /* MHD can answer only before a body is read, so a body must say its length: then
     * the check above bounds it before a byte of it is taken. */
    if (MHD_lookup_connection_value(c, MHD_HEADER_KIND,
                                    MHD_HTTP_HEADER_TRANSFER_ENCODING)) {
      rq->answered = true;
      return queue_error(c, 411, "a request body needs a Content-Length");
    }
    return MHD_YES;
  }
  if (*upload_size) { /* a body (none of ours needs one): counted, dropped */
    rq->body += *upload_size;
    *upload_size = 0;
    /* Past its announced length (checked above) only if MHD miscounted: close. */
    return rq->body > a->o.max_body_bytes ? MHD_NO : MHD_YES;
  }
  if (rq->answered) return MHD_YES;
  rq->answered = true;
  admin_reply r = {0};
  if (!admin_route(a, c, method, url, &r)) return MHD_YES; /* the /events stream */
  return queue(c, &r);
}

static void on_completed(void *cls, struct MHD_Connection *c, void **req_cls,
                         enum MHD_RequestTerminationCode toe) {
  RC__UNUSED(cls);
  RC__UNUSED(c);
  RC__UNUSED(toe);
  rc__free(*req_cls);
  *req_cls = NULL;
}

/* ---- the listening socket ---- */

static bool loopback(const struct sockaddr *sa) {
  if (sa->sa_family == AF_INET)
    return (ntohl(((const struct sockaddr_in *)sa)->sin_addr.s_addr) >> 24) == 127;
  if (sa->sa_family == AF_INET6) {
    const struct in6_addr *a6 = &((const struct sockaddr_in6 *)sa)->sin6_addr;
    if (IN6_IS_ADDR_LOOPBACK(a6)) return true;
    return IN6_IS_ADDR_V4MAPPED(a6) && a6->s6_addr[12] == 127;
  }
  return false;
}

/* "unix:/PATH": a stream socket whose file has mode 0600 before it listens, so no
 * other user can connect in between. */
static int listen_unix(rc_admin_t *a, const char *path, rc_error *err) {
  struct sockaddr_un sun = {.sun_family = AF_UNIX};
  if (strlen(path) >= sizeof sun.sun_path)
    return rc__err(err, RC_EINVAL, NULL, 0, 0, "unix socket path too long: %s", path);
  strcpy(sun.sun_path, path);
  struct stat st;
  if (lstat(path, &st) == 0) {
    if (!S_ISSOCK(st.st_mode))
      return rc__err(err, RC_EINVAL, NULL, 0, 0, "%s exists and is not a socket", path);
    unlink(path); /* a stale socket from an earlier run */
  }
  int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return rc__err(err, RC_ESYS, NULL, 0, 0, "socket: %s", strerror(errno));
  if (bind(fd, (struct sockaddr *)&sun, sizeof sun) != 0 || chmod(path, 0600) != 0 ||
      listen(fd, 64) != 0) {
    int e = errno;
    close(fd);
    unlink(path);
    return rc__err(err, RC_ESYS, NULL, 0, 0, "cannot listen on unix:%s: %s", path,
                   strerror(e));
  }
  a->unix_path = rc__strdup(path);
  if (!a->unix_path) {
    close(fd);
    unlink(path);
    return rc__err(err, RC_ENOMEM, NULL, 0, 0, "out of memory");
  }
  a->fd = fd;
  snprintf(a->address, sizeof a->address, "unix:%s", path);
  return 0;
}

/* "HOST:PORT" or "[V6]:PORT": the first address of HOST that binds. */
static int listen_tcp(rc_admin_t *a, const char *listen_at, rc_error *err) {
  char host[256];
  const char *colon = strrchr(listen_at, ':');
  const char *h = listen_at;
  size_t hl = colon ? (size_t)(colon - listen_at) : 0;
  if (hl >= 2 && h[0] == '[' && h[hl - 1] == ']') {
    h++;
    hl -= 2;
  }
  if (!colon || !colon[1] || hl == 0 || hl >= sizeof host ||
      strspn(colon + 1, "0123456789") != strlen(colon + 1))
    return rc__err(err, RC_EINVAL, NULL, 0, 0, "malformed admin address '%s' (expected "
                   "HOST:PORT or unix:/PATH)", listen_at);
  memcpy(host, h, hl);
  host[hl] = '\0';
  struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM,
                           .ai_flags = AI_PASSIVE | AI_NUMERICSERV}, *res = NULL;
  int g = getaddrinfo(host, colon + 1, &hints, &res);
  if (g) return rc__err(err, RC_EINVAL, NULL, 0, 0, "admin address '%s': %s", listen_at,
                        gai_strerror(g));
  int e = 0;
  for (struct addrinfo *ai = res; ai; ai = ai->ai_next) {
    if (!loopback(ai->ai_addr) && !a->token) {
      freeaddrinfo(res);
      return rc__err(err, RC_EINVAL, NULL, 0, 0, "admin address '%s' is not loopback: it "
                     "needs a token", listen_at);
    }
    int fd = socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC, ai->ai_protocol);
    if (fd < 0) {
      e = errno;
      continue;
    }
    int one = 1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    if (bind(fd, ai->ai_addr, ai->ai_addrlen) != 0 || listen(fd, 64) != 0) {
      e = errno;
      close(fd);
      continue;
    }
    struct sockaddr_storage ss;
    socklen_t sl = sizeof ss;
    getsockname(fd, (struct sockaddr *)&ss, &sl);
    char ip[INET6_ADDRSTRLEN] = "?";
    unsigned port = 0;
    if (ss.ss_family == AF_INET) {
      struct sockaddr_in *s4 = (struct sockaddr_in *)&ss;
      inet_ntop(AF_INET, &s4->sin_addr, ip, sizeof ip);
      port = ntohs(s4->sin_port);
      snprintf(a->address, sizeof a->address, "%s:%u", ip, port);
    } else {
      struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)&ss;
      inet_ntop(AF_INET6, &s6->sin6_addr, ip, sizeof ip);
      port = ntohs(s6->sin6_port);
      snprintf(a->address, sizeof a->address, "[%s]:%u", ip, port);
    }
    a->remote = !loopback((struct sockaddr *)&ss);
    a->fd = fd;
    freeaddrinfo(res);
    return 0;
  }
  freeaddrinfo(res);
  return rc__err(err, RC_ESYS, NULL, 0, 0, "cannot listen on %s: %s", listen_at,
                 strerror(e ? e : EADDRNOTAVAIL));
}

/* ---- start, stop ---- */

rc_admin_t *rc_admin_start(rc_engine_t *eng, const char *listen_at,
                           const rc_admin_opts *opts, rc_error *err) {
  if (!eng || !listen_at || !*listen_at) {
    rc__err(err, RC_EINVAL, NULL, 0, 0, "an engine and an address are needed");
    return NULL;
  }
  rc_admin_t *a = rc__calloc(1, sizeof *a);
  if (!a) {
    rc__err(err, RC_ENOMEM, NULL, 0, 0, "out of memory");
    return NULL;
  }
  a->eng = eng;
  a->fd = -1;
  pthread_mutex_init(&a->mu, NULL);
  pthread_cond_init(&a->cv, NULL);
  if (opts) a->o = *opts;
  a->o.token = NULL;
  if (!a->o.max_connections) a->o.max_connections = 32;
  if (!a->o.max_streams) a->o.max_streams = 8;
  if (!a->o.timeout_s) a->o.timeout_s = 10;
  if (!a->o.max_request_bytes) a->o.max_request_bytes = 16 * 1024;
  if (!a->o.max_body_bytes) a->o.max_body_bytes = 4 * 1024;
  if (opts && opts->token && *opts->token && !(a->token = rc__strdup(opts->token))) {
    rc__err(err, RC_ENOMEM, NULL, 0, 0, "out of memory");
    rc_admin_free(a);
    return NULL;
  }
  int rc = strncmp(listen_at, "unix:", 5) == 0 ? listen_unix(a, listen_at + 5, err)
                                                : listen_tcp(a, listen_at, err);
  if (rc) {
    rc_admin_free(a);
    return NULL;
  }
  /* MHD's memory pool per connection holds the request line and headers (what a
   * client may send) and the response headers: bounded by max_request_bytes. */
  unsigned flags = MHD_USE_THREAD_PER_CONNECTION | MHD_USE_INTERNAL_POLLING_THREAD |
                   MHD_USE_POLL;
  a->daemon = MHD_start_daemon(
    flags, 0, NULL, NULL, on_request, a,
    MHD_OPTION_LISTEN_SOCKET, a->fd,
    MHD_OPTION_CONNECTION_LIMIT, a->o.max_connections,
    MHD_OPTION_CONNECTION_TIMEOUT, a->o.timeout_s,
    MHD_OPTION_CONNECTION_MEMORY_LIMIT, a->o.max_request_bytes,
    MHD_OPTION_NOTIFY_COMPLETED, on_completed, a,
    MHD_OPTION_END);
  if (!a->daemon) {
    rc__err(err, RC_ESYS, NULL, 0, 0, "cannot start the HTTP server on %s", a->address);
    rc_admin_free(a);
    return NULL;
  }
  a->fd = -1; /* the daemon's now: it closes it */
  return a;
}

const char *rc_admin_address(const rc_admin_t *a) { return a ? a->address : ""; }

int rc_admin_stop(rc_admin_t *a) {
  if (!a) return 0;
  pthread_mutex_lock(&a->mu);
  if (a->stopped) {
    pthread_mutex_unlock(&a->mu);
    return 0;
  }
  a->closing = true;
  pthread_cond_broadcast(&a->cv); /* /events streams end */
  /* A connection thread may be waiting for the loop: on the loop thread, serve it here,
   * or joining it below would wait forever. */
  if (rc__on_loop_thread(a->eng)) {
    while (a->calls > 0) {
      pthread_mutex_unlock(&a->mu);
      rc__requests_run(a->eng);
      pthread_mutex_lock(&a->mu);
      if (a->calls == 0) break;
      struct timespec ts;
      clock_gettime(CLOCK_REALTIME, &ts);
      ts.tv_nsec += 5 * 1000000;
      if (ts.tv_nsec >= 1000000000) {
        ts.tv_sec++;
        ts.tv_nsec -= 1000000000;
      }
      pthread_cond_timedwait(&a->cv, &a->mu, &ts);
    }
  }
  pthread_mutex_unlock(&a->mu);
  if (a->daemon) MHD_stop_daemon(a->daemon);
  a->daemon = NULL;
  admin_events_close(a);
  if (a->fd >= 0) close(a->fd);
  a->fd = -1;
  if (a->unix_path) unlink(a->unix_path);
  pthread_mutex_lock(&a->mu);
  a->stopped = true;
  pthread_mutex_unlock(&a->mu);
  return 0;
}

void rc_admin_free(rc_admin_t *a) {
  if (!a) return;
  rc_admin_stop(a);
  pthread_mutex_destroy(&a->mu);
  pthread_cond_destroy(&a->cv);
  rc__free(a->unix_path);
  if (a->token) memset(a->token, 0, strlen(a->token));
  rc__free(a->token);
  rc__free(a);
}
