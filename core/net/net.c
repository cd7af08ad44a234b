/* SPDX-License-Identifier: MIT (see LICENSE) */
/* net.c: HTTP(S) requests for the remote sources, run by one curl multi handle on the
 * engine's libuv loop through curl's socket interface (one uv_poll_t per socket curl
 * waits on, one uv_timer_t for curl's deadline). See net.h for the contract.
 *
 * What must stay true: we never call into curl_multi_* from inside one of curl's own
 * callbacks (curl refuses recursive calls). The only user callback that runs inside
 * curl is the streaming data callback, so cancel, start and close called from there are
 * recorded and carried out when curl_multi_socket_action has returned (drive()). */
#include "net_int.h"

#include <curl/curl.h>
#include <errno.h>
#include <stdlib.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

/* 7.80: curl_url_strerror; 7.84: a thread-safe curl_global_init (engines on threads). */
#if LIBCURL_VERSION_NUM < 0x075400
#error "reactcfg needs libcurl 7.84.0 or newer"
#endif

/* Poll contexts kept ready so that curl's socket callback need not allocate: failing
 * there would leave curl's multi handle unusable. */
#define SPARE_POLLS_MIN 4
#define SPARE_POLLS_MAX 32

/* ===================================================================================
 * Structures
 * =================================================================================== */

struct poll_ctx {
  uv_poll_t poll;
  curl_socket_t fd;
  rc__net *net;
  int events;                    /* UV_READABLE | UV_WRITABLE polled for now; 0 = none */
  bool parked;                   /* curl no longer watches it: its connection is idle in
                                    curl's cache (see on_socket) */
  struct poll_ctx *prev, *next;  /* net->polls while open; net->spare (next only) */
};

/* The origin (scheme://authority of the URL) of queued requests (opts.queue): its turns
 * in curl and its requests waiting for one, oldest first. A hung server then holds only
 * the turns of its own origin. It exists while it has either (or on_pump holds it). */
typedef struct origin {
  uint64_t hash;
  char *key;
  size_t len;
  uint32_t launched;                 /* its requests holding an easy handle */
  uint32_t pins;                     /* on_pump is using it */
  bool ready;                        /* on net->ready */
  struct rc__net_request *head, *tail;  /* waiting (W_QUEUED) */
  struct origin *next;               /* in its bucket */
  struct origin *next_ready;
} origin;


/* What we know about one descriptor number; net->socks is indexed by it. */
struct sock_slot {
  poll_ctx *pc;  /* its poll context while one is open, parked or not */
  bool conn;     /* a connection socket: curl will close it through on_close_socket */
};

static void drive(rc__net *net, curl_socket_t s, int flags);
static void teardown(rc__net *net);
static void on_pump(uv_timer_t *t);
static int launch(rc__net_request *r, const void *body, size_t body_len, rc_error *err);

/* ===================================================================================
 * Lists
 * =================================================================================== */

static rc__net_request **list_head(rc__net_request *r, where w) {
  switch (w) {
    case W_ACTIVE: return &r->net->active;
    case W_ADDS: return &r->net->adds;
    case W_DOOMED: return &r->net->doomed;
    case W_QUEUED: return &r->org->head;
    default: return NULL;
  }
}

static void list_push(rc__net_request *r, where w) {
  rc__net_request **head = list_head(r, w);
  r->where = w;
  r->prev = NULL;
  r->next = *head;
  if (*head) (*head)->prev = r;
  *head = r;
}

/* Appends to its origin's waiting list: served oldest first. */
static void queue_append(rc__net_request *r) {
  origin *o = r->org;
  r->where = W_QUEUED;
  r->next = NULL;
  r->prev = o->tail;
  if (o->tail) o->tail->next = r;
  else o->head = r;
  o->tail = r;
  r->net->nwaiting++;
}

static void list_unlink(rc__net_request *r) {
  if (r->where == W_QUEUED) {
    if (r->org->tail == r) r->org->tail = r->prev;
    r->net->nwaiting--;
  }
  rc__net_request **head = list_head(r, r->where);
  if (head) {
    if (r->prev) r->prev->next = r->next;
    else *head = r->next;
    if (r->next) r->next->prev = r->prev;
  }
  r->prev = r->next = NULL;
  r->where = W_NONE;
}

/* ---- origins of queued requests ---- */

/* "scheme://authority" of `url`: up to the path, query or fragment. */
static size_t origin_len(const char *url) {
  const char *p = strstr(url, "://");
  p = p ? p + 3 : url;
  return (size_t)(p - url) + strcspn(p, "/?#");
}

/* The origin of `url`, made if new. NULL out of memory. */
static origin *origin_get(rc__net *net, const char *url) {
  size_t len = origin_len(url);
  uint64_t h = rc__hash64(url, len);
  origin **b = &net->origins[h % ORIGIN_BUCKETS];
  for (origin *o = *b; o; o = o->next)
    if (o->hash == h && o->len == len && memcmp(o->key, url, len) == 0) return o;
  origin *o = rc__calloc(1, sizeof *o);
  if (!o || !(o->key = rc__malloc(len + 1))) {
    rc__free(o);
    return NULL;
  }
  memcpy(o->key, url, len);
  o->key[len] = '\0';
  o->len = len;
  o->hash = h;
  o->next = *b;
  *b = o;
  return o;
}

static void origin_free(origin *o) {
  explicit_bzero(o->key, o->len);  /* the authority may hold credentials */
  rc__free(o->key);
  rc__free(o);
}

/* Frees an origin with nothing left: no turn taken, nobody waiting, not in use. */
static void origin_release(rc__net *net, origin *o) {
  if (o->launched || o->head || o->pins || o->ready) return;
  for (origin **p = &net->origins[o->hash % ORIGIN_BUCKETS]; *p; p = &(*p)->next)
    if (*p == o) {
      *p = o->next;
      break;
    }
  origin_free(o);
}

/* A turn of `o` is free and requests wait for it: on_pump starts them (from the loop,
 * never inside a caller's call). */
static void origin_wake(rc__net *net, origin *o) {
  if (o->ready || !o->head || o->launched >= RC__NET_MAX_QUEUED_ACTIVE || net->closing)
    return;
  o->ready = true;
  o->next_ready = net->ready;
  net->ready = o;
  uv_timer_start(&net->pump_timer, on_pump, 0, 0);
}

/* Some request still waiting for a turn, or NULL. */
static rc__net_request *first_waiting(rc__net *net) {
  for (size_t i = 0; i < ORIGIN_BUCKETS; i++)
    for (origin *o = net->origins[i]; o; o = o->next)
      if (o->head) return o->head;
  return NULL;
}

/* ===================================================================================
 * Closing and freeing
 * =================================================================================== */

/* The last handle is closed: tell the owner and free everything left. */
static void maybe_finish(rc__net *net) {
  if (!net->torn_down || net->open_handles > 0) return;
  while (net->spare) {
    poll_ctx *pc = net->spare;
    net->spare = pc->next;
    rc__free(pc);
  }
  rc__free(net->socks);
  void (*done)(void *) = net->close_done;
  void *ud = net->close_ud;
  rc__free(net);
  curl_global_cleanup();
  if (done) done(ud);
}

static void on_poll_closed(uv_handle_t *h) {
  poll_ctx *pc = h->data;
  rc__net *net = pc->net;
  net->open_handles--;
  if (!net->torn_down && net->nspare < SPARE_POLLS_MAX) {
    pc->next = net->spare;
    net->spare = pc;
    net->nspare++;
  } else {
    rc__free(pc);
  }
  maybe_finish(net);
}

static void on_timer_closed(uv_handle_t *h) {
  rc__net *net = h->data;
  net->open_handles--;
  maybe_finish(net);
}

static sock_slot *slot_of(rc__net *net, curl_socket_t fd) {
  return fd >= 0 && (size_t)fd < net->nsocks ? &net->socks[fd] : NULL;
}

static void poll_release(rc__net *net, poll_ctx *pc) {
  sock_slot *slot = slot_of(net, pc->fd);
  if (slot && slot->pc == pc) slot->pc = NULL;
  if (pc->prev) pc->prev->next = pc->next;
  else net->polls = pc->next;
  if (pc->next) pc->next->prev = pc->prev;
  pc->prev = pc->next = NULL;
  uv_close((uv_handle_t *)&pc->poll, on_poll_closed);
}

/* Frees a request that is on no list and no longer in the multi handle. Its easy handle
 * goes back to the pool. Our copies of the request headers are wiped first: they may
 * hold tokens. */
static void req_free(rc__net_request *r) {
  rc__net *net = r->net;
  for (struct curl_slist *h = r->headers; h; h = h->next)
    explicit_bzero(h->data, strlen(h->data));
  curl_slist_free_all(r->headers);
  if (r->h1.on) rc__h1_release(r);
  origin *org = r->org;
  if (org && r->turn) {
    org->launched--;  /* its turn is free */
    r->turn = false;
    origin_wake(net, org);
  }
  if (r->easy) {
    if (!net->torn_down && net->npool < POOL_MAX) {
      curl_easy_reset(r->easy);
      net->pool[net->npool++] = r->easy;
    } else {
      curl_easy_cleanup(r->easy);
    }
  }
  rc__buf_free(&r->body);
  rc__buf_free(&r->resp);
  if (r->url) explicit_bzero(r->url, strlen(r->url));
  rc__free(r->url);
  rc__free(r->url_shown);
  rc__free(r->host);
  rc__free(r->ca_file);
  rc__free(r);
  if (org) origin_release(net, org);
}

/* ===================================================================================
 * Results
 * =================================================================================== */

/* Makes the printable form of the request's URL (no user, password, query or fragment:
 * they may carry secrets) and its host name. Only messages need them, so this runs when
 * the first one is written rather than for every request. */
static void describe_url(rc__net_request *r) {
  if (r->url_shown || !r->url) return;
  CURLU *u = curl_url();
  char *shown = NULL, *host = NULL;
  if (u && curl_url_set(u, CURLUPART_URL, r->url, 0) == CURLUE_OK) {
    curl_url_set(u, CURLUPART_USER, NULL, 0);
    curl_url_set(u, CURLUPART_PASSWORD, NULL, 0);
    curl_url_set(u, CURLUPART_QUERY, NULL, 0);
    curl_url_set(u, CURLUPART_FRAGMENT, NULL, 0);
    if (curl_url_get(u, CURLUPART_URL, &shown, 0) == CURLUE_OK &&
        curl_url_get(u, CURLUPART_HOST, &host, 0) == CURLUE_OK) {
      r->url_shown = rc__strdup(shown);
      r->host = rc__strdup(host);
    }
  }
  curl_free(shown);
  curl_free(host);
  curl_url_cleanup(u);
}

/* The URL for messages; "" when memory ran out making it. The own client's messages use
 * it too (net_int.h). */
const char *rc__net_url_shown(rc__net_request *r) {
  describe_url(r);
  return r->url_shown ? r->url_shown : "";
}

/* Copies curl's error text, first letter lower-cased, without a trailing newline. */
static void curl_text(const rc__net_request *r, CURLcode rc, char *out, size_t n) {
  const char *t = r->errbuf[0] ? r->errbuf : curl_easy_strerror(rc);
  snprintf(out, n, "%s", t);
  size_t len = strlen(out);
  while (len && (out[len - 1] == '\n' || out[len - 1] == '\r')) out[--len] = '\0';
  if (out[0] >= 'A' && out[0] <= 'Z' && !(out[1] >= 'A' && out[1] <= 'Z'))
    out[0] = (char)(out[0] - 'A' + 'a');
}

static bool starts_with(const char *s, const char *prefix) {
  return strncmp(s, prefix, strlen(prefix)) == 0;
}

/* Turns a failed transfer into one sentence. The wording of timeouts depends on curl's
 * error text only to tell which timer fired; an unknown text reads as the total one. */
static int describe_failure(rc__net_request *r, CURLcode rc, rc_error *e) {
  const char *file = rc__net_url_shown(r);
  char text[CURL_ERROR_SIZE + 16];
  curl_text(r, rc, text, sizeof text);
  if (r->oom || rc == CURLE_OUT_OF_MEMORY)
    return rc__err(e, RC_ENOMEM, file, 0, 0, "out of memory");
  if (r->too_big)
    return rc__err(e, RC_ELIMIT, file, 0, 0, "body larger than %zu bytes", r->max_body);
  if (r->headers_too_big)
    return rc__err(e, RC_ELIMIT, file, 0, 0, "response headers larger than %u bytes",
                   RC__NET_MAX_HEADER_BYTES);
  switch (rc) {
    case CURLE_COULDNT_CONNECT: {
      long os = 0;
      curl_easy_getinfo(r->easy, CURLINFO_OS_ERRNO, &os);
      if (os == ECONNREFUSED) return rc__err(e, RC_EIO, file, 0, 0, "connection refused");
      if (os)
        return rc__err(e, RC_EIO, file, 0, 0, "cannot connect: %s", strerror((int)os));
      return rc__err(e, RC_EIO, file, 0, 0, "cannot connect: %s", text);
    }
    case CURLE_COULDNT_RESOLVE_HOST:
      return rc__err(e, RC_EIO, file, 0, 0, "cannot resolve host name \"%s\"",
                     r->host ? r->host : "");
    case CURLE_OPERATION_TIMEDOUT:
      if (starts_with(r->errbuf, "Operation too slow"))
        return rc__err(e, RC_EIO, file, 0, 0,
                       "transfer too slow: under %u bytes/s for %u s", r->low_speed_bytes,
                       r->low_speed_secs);
      if (starts_with(r->errbuf, "Connection timed out") ||
          starts_with(r->errbuf, "Resolving timed out") ||
          starts_with(r->errbuf, "SSL connection timeout"))
        return rc__err(e, RC_EIO, file, 0, 0, "connect timed out after %u ms",
                       r->total_ms && r->total_ms < r->connect_ms ? r->total_ms
                                                                   : r->connect_ms);
      return rc__err(e, RC_EIO, file, 0, 0, "timed out after %u ms", r->total_ms);
    case CURLE_PEER_FAILED_VERIFICATION: {
      const char *detail = text;
      if (starts_with(detail, "SSL certificate problem: ")) detail += 25;
      return rc__err(e, RC_EIO, file, 0, 0, "TLS certificate verification failed: %s",
                     detail);
    }
    case CURLE_SSL_CACERT_BADFILE:
      return rc__err(e, RC_EIO, file, 0, 0, "cannot use the CA file: %s", text);
    case CURLE_SSL_CONNECT_ERROR:
      return rc__err(e, RC_EIO, file, 0, 0, "TLS handshake failed: %s", text);
    case CURLE_GOT_NOTHING:
      return rc__err(e, RC_EIO, file, 0, 0,
                     "server closed the connection without answering");
    case CURLE_SEND_ERROR:
    case CURLE_RECV_ERROR:
      return rc__err(e, RC_EIO, file, 0, 0, "connection lost: %s", text);
    case CURLE_PARTIAL_FILE:
      return rc__err(e, RC_EIO, file, 0, 0, "response ended early: %s", text);
    case CURLE_TOO_MANY_REDIRECTS:
      return rc__err(e, RC_EIO, file, 0, 0, "more than %u redirects", r->max_redirects);
    default:
      return rc__err(e, RC_EIO, file, 0, 0, "%s", text);
  }
}

static const char *known_value(const rc__net_request *r, int i);

/* Fills the result of a finished (or cancelled-by-close) request. `e` receives the
 * failure text. */
static void fill_result(rc__net_request *r, int code, rc__net_result *res,
                        const rc_error *e) {
  memset(res, 0, sizeof *res);
  res->code = code;
  res->err = code ? e : NULL;
  res->body = "";
  if (r->h1.on) {
    res->status = r->cur_status;
    res->connects = r->h1.connects;
    res->duration_ns = r->h1.duration_ns;
  } else if (r->added) {
    curl_easy_getinfo(r->easy, CURLINFO_RESPONSE_CODE, &res->status);
    curl_easy_getinfo(r->easy, CURLINFO_NUM_CONNECTS, &res->connects);
    curl_off_t us = 0;
    if (curl_easy_getinfo(r->easy, CURLINFO_TOTAL_TIME_T, &us) == CURLE_OK && us > 0)
      res->duration_ns = (uint64_t)us * 1000;
  }
  if (code == 0 && r->body.p) {
    res->body = r->body.p;
    res->body_len = r->body.n;
  }
  res->etag = known_value(r, 0);
  res->last_modified = known_value(r, 1);
  res->content_type = known_value(r, 2);
  res->retry_after = known_value(r, 3);
}

/* Calls the request's done callback with its result, then frees it. */
static void complete(rc__net_request *r, int code, const rc_error *e) {
  rc__net_result res;
  fill_result(r, code, &res, e);
  r->cb.done(r->ud, r, &res);
  req_free(r);
}

/* A transfer has ended (curl reported it done): remove it and call its done callback. */
static void finish(rc__net_request *r, CURLcode rc) {
  rc__net *net = r->net;
  list_unlink(r);
  net->nactive--;
  rc_error e;
  memset(&e, 0, sizeof e);
  int code = rc == CURLE_OK && !r->oom && !r->too_big && !r->headers_too_big
               ? 0
               : describe_failure(r, rc, &e);
  /* Out of the multi handle first: the connection goes back to the cache, so a request
   * started from the callback can reuse it. */
  curl_multi_remove_handle(net->multi, r->easy);
  complete(r, code, &e);
}

/* Reads curl's completion messages and finishes those transfers. Stops when the context
 * starts closing: teardown reports what is left as cancelled. */
static void dispatch_done(rc__net *net) {
  CURLMsg *m;
  int left;
  while (!net->closing && (m = curl_multi_info_read(net->multi, &left))) {
    if (m->msg != CURLMSG_DONE) continue;
    CURL *easy = m->easy_handle;
    CURLcode rc = m->data.result;  /* `m` dies with the removal in finish() */
    char *priv = NULL;
    curl_easy_getinfo(easy, CURLINFO_PRIVATE, &priv);
    rc__net_request *r = (rc__net_request *)(void *)priv;
    if (r && r->where == W_ACTIVE) finish(r, rc);
  }
}

/* ===================================================================================
 * curl callbacks (they run inside curl_multi_socket_action)
 * =================================================================================== */

static size_t on_write(char *p, size_t size, size_t n, void *ud) {
  rc__net_request *r = ud;
  size_t len = size * n;
  if (r->where != W_ACTIVE || r->net->closing) return 0;  /* cancelled: abort */
  if (r->max_body && len > r->max_body - r->received) {
    r->too_big = true;
    return 0;
  }
  r->received += len;
  if (r->cb.data) {
    r->cb.data(r->ud, r, p, len);
    return r->where == W_ACTIVE && !r->net->closing ? len : 0;
  }
  rc__buf_add(&r->body, p, len);
  if (r->body.oom) {
    r->oom = true;
    return 0;
  }
  return len;
}

/* ---- the kept response headers, for both clients ---- */

int rc__net_resp_begin(rc__net_request *r, long status) {
  rc__buf_reset(&r->resp);
  /* One allocation for a usual set of headers rather than a few doublings from 64. */
  if (rc__buf_reserve(&r->resp, 511) != 0) {
    r->oom = true;
    return RC_ENOMEM;
  }
  r->received = 0;
  rc__buf_reset(&r->body);
  r->cur_status = status;
  memset(r->known, 0, sizeof r->known);
  return 0;
}

/* The headers every result carries (rc__net_result), by index into r->known. */
static const struct {
  const char *name;
  size_t len;
} KNOWN[RC__NET_KNOWN_HEADERS] = {
  {"ETag", 4}, {"Last-Modified", 13}, {"Content-Type", 12}, {"Retry-After", 11}};

/* Remembers where a header of KNOWN starts in r->resp (the first one if it repeats), so
 * that each result does not look them up among all the headers: four scans a poll were
 * about 1% of a polling fleet's user time. */
static void note_known(rc__net_request *r, const char *name, size_t nlen, size_t at) {
  for (int i = 0; i < RC__NET_KNOWN_HEADERS; i++)
    if (nlen == KNOWN[i].len && !r->known[i] && strncasecmp(name, KNOWN[i].name, nlen) == 0) {
      r->known[i] = (uint32_t)at + 1;
      return;
    }
}

static const char *known_value(const rc__net_request *r, int i) {
  if (!r->known[i] || !r->resp.p) return NULL;
  const char *name = r->resp.p + r->known[i] - 1;
  return name + KNOWN[i].len + 1;
}

int rc__net_resp_header(rc__net_request *r, const char *p, size_t nlen, const char *v,
                        size_t vlen) {
  const char *vend = v + vlen;
  while (v < vend && (*v == ' ' || *v == '\t')) v++;
  while (vend > v && (vend[-1] == ' ' || vend[-1] == '\t')) vend--;
  vlen = (size_t)(vend - v);
  if (r->resp.n + nlen + vlen + 2 > RC__NET_MAX_HEADER_BYTES) {
    r->headers_too_big = true;
    return -1;
  }
  size_t at = r->resp.n;
  rc__buf_add(&r->resp, p, nlen);
  rc__buf_addc(&r->resp, '\0');
  rc__buf_add(&r->resp, v, vlen);
  rc__buf_addc(&r->resp, '\0');
  if (r->resp.oom) {
    r->oom = true;
    return -1;
  }
  note_known(r, p, nlen, at);
  /* A 304 may announce the size of the representation it did not send; a followed
   * redirect's body is skipped. */
  bool redirect = r->cur_status >= 300 && r->cur_status < 400 && r->max_redirects > 0;
  if (r->max_body && nlen == 14 && strncasecmp(p, "Content-Length", 14) == 0 &&
      r->cur_status >= 200 && r->cur_status != 304 && !redirect) {
    char num[32];
    snprintf(num, sizeof num, "%.*s", (int)(vlen < 31 ? vlen : 31), v);
    char *endp;
    errno = 0;
    unsigned long long cl = strtoull(num, &endp, 10);
    if (endp != num && (errno == ERANGE || cl > r->max_body)) {
      r->too_big = true;
      return -1;
    }
  }
  return 0;
}

/* Keeps every header of the latest response (a new status line starts over: redirects,
 * 100 Continue) and refuses a Content-Length above max_body before any body arrives. */
static size_t on_header(char *p, size_t size, size_t n, void *ud) {
  rc__net_request *r = ud;
  size_t len = size * n;
  if (r->where != W_ACTIVE || r->net->closing) return 0;
  if (len >= 5 && memcmp(p, "HTTP/", 5) == 0) {
    const char *sp = memchr(p, ' ', len);
    return rc__net_resp_begin(r, sp ? strtol(sp + 1, NULL, 10) : 0) == 0 ? len : 0;
  }
  size_t end = len;
  while (end && (p[end - 1] == '\r' || p[end - 1] == '\n')) end--;
  /* Obsolete line folding (RFC 9112 5.2) is dropped rather than joined. */
  if (end == 0 || p[0] == ' ' || p[0] == '\t') return len;
  const char *colon = memchr(p, ':', end);
  if (!colon || colon == p) return len;
  size_t nlen = (size_t)(colon - p);
  const char *v = colon + 1;
  return rc__net_resp_header(r, p, nlen, v, (size_t)(p + end - v)) == 0 ? len : 0;
}

static void on_poll(uv_poll_t *h, int status, int events) {
  poll_ctx *pc = h->data;
  if (pc->parked) {
    /* An idle kept-alive connection became readable: the server closed it or sent
     * something unasked. Curl finds out when it next checks the connection; until then
     * there is nothing to read for anyone, and a closed peer would wake us every turn. */
    uv_poll_stop(&pc->poll);
    pc->events = 0;
    return;
  }
  int flags = 0;
  if (status < 0) {
    flags = CURL_CSELECT_ERR;
  } else {
    if (events & UV_READABLE) flags |= CURL_CSELECT_IN;
    if (events & UV_WRITABLE) flags |= CURL_CSELECT_OUT;
  }
  drive(pc->net, pc->fd, flags);
}

/* CURLMOPT_SOCKETFUNCTION: start, change or stop polling one socket.
 *
 * curl says "remove" whenever a transfer ends, also when the connection stays open in its
 * cache for the next request, and asks again when the next request reuses it. Closing and
 * reopening the poll handle each time costs five syscalls (FIONBIO, two epoll_ctl to
 * probe the descriptor, one to add it, one to delete it: about 3 epoll_ctl per request
 * measured with 1,000 pollers), and even uv_poll_start with new events costs two (libuv
 * deletes and re-adds). So a connection socket keeps its poll handle for as long as
 * it is open: on "remove" it is parked (stopped, unreferenced, unknown to curl) and
 * taken back when curl wants the same descriptor again; it is closed when curl closes
 * the socket (on_close_socket). Events are changed only when they differ. Other sockets
 * (the threaded resolver's) are closed by curl without telling us, so their handles go
 * on "remove", as before. */
static int on_socket(CURL *easy, curl_socket_t s, int what, void *userp, void *socketp) {
  RC__UNUSED(easy);
  rc__net *net = userp;
  poll_ctx *pc = socketp;
  sock_slot *slot = slot_of(net, s);
  if (what == CURL_POLL_REMOVE) {
    if (!pc) return 0;
    curl_multi_assign(net->multi, s, NULL);
    if (slot && slot->conn && slot->pc == pc) {
      /* Parked. Curl may still close this descriptor without telling us (a connect
       * abandoned mid-way), and a handle left with a pending epoll change on a closed
       * descriptor makes libuv abort; so a handle whose interest would have to change
       * is stopped. A connection that ends a transfer, though, was waiting to read:
       * that interest stays registered as it is (no change is pending), which saves
       * the two or three epoll_ctl calls of stopping it now and starting it again for
       * the next request on the same connection. on_poll stops it if it fires while
       * parked. */
      pc->parked = true;
      uv_unref((uv_handle_t *)&pc->poll);  /* an idle connection keeps no loop alive */
      if (pc->events && pc->events != UV_READABLE) {
        uv_poll_stop(&pc->poll);
        pc->events = 0;
      }
      return 0;
    }
    poll_release(net, pc);
    return 0;
  }
  if (!pc && slot && slot->pc) {
    pc = slot->pc;  /* a kept-alive connection in use again */
    pc->parked = false;
    uv_ref((uv_handle_t *)&pc->poll);
    curl_multi_assign(net->multi, s, pc);
  }
  if (!pc) {
    if (net->spare) {
      pc = net->spare;
      net->spare = pc->next;
      net->nspare--;
    } else if (!(pc = rc__malloc(sizeof *pc))) {
      return -1;  /* curl fails the transfers; nothing else we can do here */
    }
    memset(pc, 0, sizeof *pc);
    if (uv_poll_init_socket(net->loop, &pc->poll, s) != 0) {
      pc->next = net->spare;
      net->spare = pc;
      net->nspare++;
      return -1;
    }
    pc->poll.data = pc;
    pc->fd = s;
    pc->net = net;
    if (slot && slot->conn) slot->pc = pc;
    pc->next = net->polls;
    if (net->polls) net->polls->prev = pc;
    net->polls = pc;
    net->open_handles++;
    curl_multi_assign(net->multi, s, pc);
  }
  int events = 0;
  if (what & CURL_POLL_IN) events |= UV_READABLE;
  if (what & CURL_POLL_OUT) events |= UV_WRITABLE;
  if (events != pc->events) {
    uv_poll_start(&pc->poll, events, on_poll);
    pc->events = events;
  }
  return 0;
}

/* CURLOPT_SOCKOPTFUNCTION: curl made a connection socket, which it will close through
 * on_close_socket: that is what makes keeping a poll handle on it safe (a handle left on
 * a closed descriptor would, when closed, unregister whatever reused the number). If the
 * table cannot grow, the socket is simply never parked. */
static int on_open_socket(void *userp, curl_socket_t s, curlsocktype purpose) {
  rc__net *net = userp;
  if (purpose != CURLSOCKTYPE_IPCXN || s < 0) return CURL_SOCKOPT_OK;
  rc__tcp_dead_peer(s); /* a peer gone without a word: about 8 s (internal.h) */
  if ((size_t)s >= net->nsocks) {
    size_t n = net->nsocks ? net->nsocks : 64;
    while (n <= (size_t)s) n *= 2;
    sock_slot *t = rc__realloc(net->socks, n * sizeof *t);
    if (!t) return CURL_SOCKOPT_OK;
    memset(t + net->nsocks, 0, (n - net->nsocks) * sizeof *t);
    net->socks = t;
    net->nsocks = n;
  }
  /* A handle still kept for this number belongs to a socket curl closed without its
   * close callback: it goes now, before the new socket is registered anywhere. */
  if (net->socks[s].pc) poll_release(net, net->socks[s].pc);
  net->socks[s] = (sock_slot){.pc = NULL, .conn = true};
  return CURL_SOCKOPT_OK;
}

/* CURLOPT_CLOSESOCKETFUNCTION: curl closes a connection socket. Its poll handle, parked
 * or not, is closed first, while the descriptor is still open. */
static int on_close_socket(void *userp, curl_socket_t s) {
  rc__net *net = userp;
  sock_slot *slot = slot_of(net, s);
  if (slot) {
    if (slot->pc) poll_release(net, slot->pc);
    *slot = (sock_slot){0};
  }
  return close(s);
}

static void on_timeout(uv_timer_t *t) { drive(t->data, CURL_SOCKET_TIMEOUT, 0); }

/* CURLMOPT_TIMERFUNCTION: curl's next deadline. A 0 delay fires on the next loop turn,
 * never from inside this callback (curl forbids the recursion). curl often repeats the
 * deadline it gave last (several times per request); restarting the timer for it would
 * only take it out of libuv's timer heap and put it back. */
static int on_timer_change(CURLM *multi, long timeout_ms, void *userp) {
  RC__UNUSED(multi);
  rc__net *net = userp;
  if (net->torn_down) return 0;
  if (timeout_ms < 0) {
    uv_timer_stop(&net->timer);
    return 0;
  }
  uint64_t due = uv_now(net->loop) + (uint64_t)timeout_ms;
  if (uv_is_active((uv_handle_t *)&net->timer) && due == net->timer_due) return 0;
  net->timer_due = due;
  uv_timer_start(&net->timer, on_timeout, (uint64_t)timeout_ms, 0);
  return 0;
}

/* ===================================================================================
 * Driving curl
 * =================================================================================== */

/* Requests started from inside curl join the multi handle now. */
static void flush_adds(rc__net *net) {
  rc__net_request *r;
  while (!net->closing && (r = net->adds)) {
    list_unlink(r);
    list_push(r, W_ACTIVE);
    if (curl_multi_add_handle(net->multi, r->easy) == CURLM_OK) {
      r->added = true;
      continue;
    }
    list_unlink(r);
    net->nactive--;
    rc_error e;
    rc__err(&e, RC_ENOMEM, rc__net_url_shown(r), 0, 0, "out of memory");
    complete(r, RC_ENOMEM, &e);
  }
}

/* Requests cancelled from inside curl leave the multi handle now. */
static void reap_doomed(rc__net *net) {
  rc__net_request *r;
  while ((r = net->doomed)) {
    list_unlink(r);
    if (r->added) curl_multi_remove_handle(net->multi, r->easy);
    req_free(r);
  }
}

/* Lets curl act on socket `s` (or on its timer), then does what its callbacks could not
 * do inside it, then reports finished transfers. */
static void drive(rc__net *net, curl_socket_t s, int flags) {
  int running;
  net->busy++;
  net->in_curl++;
  curl_multi_socket_action(net->multi, s, flags, &running);
  net->in_curl--;
  reap_doomed(net);
  flush_adds(net);
  dispatch_done(net);
  net->busy--;
  if (net->busy == 0 && net->closing && !net->torn_down) teardown(net);
}

/* ===================================================================================
 * Context
 * =================================================================================== */

rc__net *rc__net_new(uv_loop_t *loop, rc_error *err) {
  if (!loop) {
    rc__err(err, RC_EINVAL, NULL, 0, 0, "rc__net_new: no loop");
    return NULL;
  }
  if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
    rc__err(err, RC_ESYS, NULL, 0, 0, "cannot initialize libcurl");
    return NULL;
  }
  rc__net *net = rc__calloc(1, sizeof *net);
  if (!net) goto oom;
  net->loop = loop;
  net->multi = curl_multi_init();
  if (!net->multi) goto oom;
  curl_multi_setopt(net->multi, CURLMOPT_SOCKETFUNCTION, on_socket);
  curl_multi_setopt(net->multi, CURLMOPT_SOCKETDATA, net);
  curl_multi_setopt(net->multi, CURLMOPT_TIMERFUNCTION, on_timer_change);
  curl_multi_setopt(net->multi, CURLMOPT_TIMERDATA, net);
  curl_multi_setopt(net->multi, CURLMOPT_MAX_HOST_CONNECTIONS,
                    (long)RC__NET_MAX_HOST_CONNECTIONS);
  while (net->nspare < SPARE_POLLS_MIN) {
    poll_ctx *pc = rc__malloc(sizeof *pc);
    if (!pc) goto oom;
    pc->next = net->spare;
    net->spare = pc;
    net->nspare++;
  }
  uv_timer_init(loop, &net->timer);  /* cannot fail */
  net->timer.data = net;
  uv_timer_init(loop, &net->pump_timer);
  net->pump_timer.data = net;
  uv_unref((uv_handle_t *)&net->pump_timer);  /* the requests keep the loop alive */
  net->open_handles = 2;
  rc__h1_init(net);  /* its timer: one more handle */
  return net;

oom:
  if (net) {
    if (net->multi) curl_multi_cleanup(net->multi);
    while (net->spare) {
      poll_ctx *pc = net->spare;
      net->spare = pc->next;
      rc__free(pc);
    }
    rc__free(net);
  }
  curl_global_cleanup();
  rc__err(err, RC_ENOMEM, NULL, 0, 0, "out of memory");
  return NULL;
}

/* Reports every request still in flight as cancelled, then closes curl and our
 * handles. Runs outside curl (busy == 0). */
static void teardown(rc__net *net) {
  net->busy++;  /* callbacks below must not re-enter teardown */
  rc__net_request *r;
  while ((r = net->active) || (r = net->adds) || (r = first_waiting(net))) {
    list_unlink(r);
    net->nactive--;
    if (r->added) curl_multi_remove_handle(net->multi, r->easy);
    rc_error e;
    rc__err(&e, RC_ESTATE, rc__net_url_shown(r), 0, 0, "cancelled: network closed");
    rc__net_result res;
    fill_result(r, RC_ESTATE, &res, &e);
    r->added = false;
    r->cb.done(r->ud, r, &res);
    req_free(r);
  }
  reap_doomed(net);
  /* Origins left only on the ready list (on_pump will not run again). */
  for (size_t i = 0; i < ORIGIN_BUCKETS; i++)
    while (net->origins[i]) {
      origin *o = net->origins[i];
      net->origins[i] = o->next;
      origin_free(o);
    }
  net->ready = NULL;
  rc__h1_teardown(net);
  net->torn_down = true;  /* from here req_free no longer pools */
  for (int i = 0; i < net->npool; i++) curl_easy_cleanup(net->pool[i]);
  net->npool = 0;
  curl_multi_cleanup(net->multi);  /* closes the cached connections */
  net->multi = NULL;
  while (net->polls) poll_release(net, net->polls);
  uv_close((uv_handle_t *)&net->timer, on_timer_closed);
  uv_close((uv_handle_t *)&net->pump_timer, on_timer_closed);
  net->busy--;
}

void rc__net_close(rc__net *net, void (*done)(void *ud), void *ud) {
  if (!net) {
    if (done) done(ud);
    return;
  }
  if (net->closing) return;
  net->closing = true;
  net->close_done = done;
  net->close_ud = ud;
  if (net->busy == 0) teardown(net);
}

/* ---- for the own client (net_int.h) ---- */

void rc__net_enter(rc__net *net) { net->busy++; }

void rc__net_leave(rc__net *net) {
  net->busy--;
  if (net->busy == 0 && net->closing && !net->torn_down) teardown(net);
}

void rc__net_handle_closed(rc__net *net) {
  net->open_handles--;
  maybe_finish(net);
}

void rc__net_h1_done(rc__net_request *r, int code, const rc_error *e) {
  list_unlink(r);
  r->net->nactive--;
  complete(r, code, e);
}

int rc__net_h1_to_curl(rc__net_request *r, const char *url, uint32_t redirects,
                       rc_error *err) {
  char *copy = rc__strdup(url);
  if (!copy) return rc__err(err, RC_ENOMEM, NULL, 0, 0, "out of memory");
  rc__h1_release(r);  /* may free `url` (the own client's current target) */
  r->h1.on = false;
  list_unlink(r);
  if (r->url) explicit_bzero(r->url, strlen(r->url));
  rc__free(r->url);
  r->url = copy;
  rc__free(r->url_shown);
  rc__free(r->host);
  r->url_shown = r->host = NULL;
  r->tls = strncasecmp(copy, "https:", 6) == 0;
  r->max_redirects = redirects;
  return launch(r, NULL, 0, err);
}

size_t rc__net_h1_requests(const rc__net *net) { return net ? net->h1.requests : 0; }

bool rc__net_h2c_supported(void) {
  const curl_version_info_data *v = curl_version_info(CURLVERSION_NOW);
  return v->version_num >= 0x080000 && (v->features & CURL_VERSION_HTTP2);
}

size_t rc__net_active(const rc__net *net) { return net ? net->nactive : 0; }

size_t rc__net_in_flight(const rc__net *net) { return net ? net->nactive - net->nwaiting : 0; }

/* ===================================================================================
 * Requests
 * =================================================================================== */

static bool header_ok(const rc__net_header *h) {
  if (!h->name || !h->name[0] || !h->value) return false;
  for (const char *p = h->name; *p; p++)
    if (*p == ':' || *p == ' ' || *p == '\t' || *p == '\r' || *p == '\n') return false;
  for (const char *p = h->value; *p; p++)
    if (*p == '\r' || *p == '\n') return false;
  return true;
}

static bool has_header(const rc__net_req_opts *o, const char *name) {
  for (size_t i = 0; i < o->nheaders; i++)
    if (strcasecmp(o->headers[i].name, name) == 0) return true;
  return false;
}

/* Appends "Name: value" (or "Name;" for an empty value, curl's way to send it empty)
 * to the request's header list. The formatting buffer is wiped: values may be tokens. */
static int add_header(rc__net_request *r, const char *name, const char *value) {
  rc__buf line;
  rc__buf_init(&line);
  rc__buf_adds(&line, name);
  if (value && value[0]) {
    rc__buf_adds(&line, ": ");
    rc__buf_adds(&line, value);
  } else if (value) {
    rc__buf_addc(&line, ';');
  } else {
    rc__buf_addc(&line, ':');  /* NULL value: remove a header curl would add */
  }
  struct curl_slist *l = line.oom ? NULL : curl_slist_append(r->headers, line.p);
  if (line.p) explicit_bzero(line.p, line.n);
  rc__buf_free(&line);
  if (!l) return RC_ENOMEM;
  r->headers = l;
  return 0;
}

/* Parses the URL once, to refuse a bad one now rather than in the callback, and keeps a
 * copy for messages (describe_url). */
static int parse_url(rc__net_request *r, const char *url, rc_error *err) {
  CURLU *u = curl_url();
  if (!u) return rc__err(err, RC_ENOMEM, NULL, 0, 0, "out of memory");
  int rc = 0;
  char *scheme = NULL, *host = NULL;
  CURLUcode uc = curl_url_set(u, CURLUPART_URL, url, 0);
  if (uc == CURLUE_OUT_OF_MEMORY) {
    rc = rc__err(err, RC_ENOMEM, NULL, 0, 0, "out of memory");
    goto out;
  }
  if (uc != CURLUE_OK) {
    rc = rc__err(err, RC_EINVAL, NULL, 0, 0, "malformed URL: %s", curl_url_strerror(uc));
    goto out;
  }
  if (curl_url_get(u, CURLUPART_SCHEME, &scheme, 0) != CURLUE_OK ||
      (strcmp(scheme, "http") != 0 && strcmp(scheme, "https") != 0)) {
    rc = rc__err(err, RC_EINVAL, NULL, 0, 0,
                 "unsupported URL scheme \"%s\" (want http or https)",
                 scheme ? scheme : "");
    goto out;
  }
  r->tls = strcmp(scheme, "https") == 0;
  if (curl_url_get(u, CURLUPART_HOST, &host, 0) != CURLUE_OK) {
    rc = rc__err(err, RC_EINVAL, NULL, 0, 0, "malformed URL: no host");
    goto out;
  }
  if (!(r->url = rc__strdup(url)))
    rc = rc__err(err, RC_ENOMEM, NULL, 0, 0, "out of memory");
out:
  curl_free(scheme);
  curl_free(host);
  curl_url_cleanup(u);
  return rc;
}

/* Sets every curl option of the request (`body`: that of a PUT, POST or DELETE, copied by
 * curl). Returns the first curl error. */
static CURLcode set_options(rc__net_request *r, const void *body, size_t body_len) {
  CURL *e = r->easy;
  CURLcode c = CURLE_OK;
#define SET(opt, val)                                  \
  do {                                                 \
    CURLcode c_ = curl_easy_setopt(e, opt, val);       \
    if (c_ != CURLE_OK && c == CURLE_OK) c = c_;       \
  } while (0)
  SET(CURLOPT_URL, r->url);
  SET(CURLOPT_PRIVATE, (void *)r);
  SET(CURLOPT_NOSIGNAL, 1L);
  SET(CURLOPT_ERRORBUFFER, r->errbuf);
  SET(CURLOPT_WRITEFUNCTION, on_write);
  SET(CURLOPT_WRITEDATA, (void *)r);
  SET(CURLOPT_HEADERFUNCTION, on_header);
  SET(CURLOPT_HEADERDATA, (void *)r);
  SET(CURLOPT_SOCKOPTFUNCTION, on_open_socket);
  SET(CURLOPT_SOCKOPTDATA, (void *)r->net);
  SET(CURLOPT_CLOSESOCKETFUNCTION, on_close_socket);
  SET(CURLOPT_CLOSESOCKETDATA, (void *)r->net);
  SET(CURLOPT_USERAGENT, "reactcfg/" RC_VERSION_STRING);
  SET(CURLOPT_ACCEPT_ENCODING, "");  /* all curl decodes; max_body counts decoded bytes */
#if LIBCURL_VERSION_NUM >= 0x075500
  SET(CURLOPT_PROTOCOLS_STR, "http,https");
  SET(CURLOPT_REDIR_PROTOCOLS_STR, "http,https");
#else
  SET(CURLOPT_PROTOCOLS, (long)(CURLPROTO_HTTP | CURLPROTO_HTTPS));
  SET(CURLOPT_REDIR_PROTOCOLS, (long)(CURLPROTO_HTTP | CURLPROTO_HTTPS));
#endif
  if (r->max_redirects) {
    SET(CURLOPT_FOLLOWLOCATION, 1L);
    SET(CURLOPT_MAXREDIRS, (long)r->max_redirects);
  }
  SET(CURLOPT_CONNECTTIMEOUT_MS, (long)r->connect_ms);
  if (r->total_ms) SET(CURLOPT_TIMEOUT_MS, (long)r->total_ms);
  if (r->low_speed_bytes && r->low_speed_secs) {
    SET(CURLOPT_LOW_SPEED_LIMIT, (long)r->low_speed_bytes);
    SET(CURLOPT_LOW_SPEED_TIME, (long)r->low_speed_secs);
  }
  /* A dead peer on a long watch (a blocking query, a watch stream) is noticed by TCP
   * keep-alive probes: on_open_socket sets them on each new connection. */
  SET(CURLOPT_SSL_VERIFYPEER, r->insecure ? 0L : 1L);
  SET(CURLOPT_SSL_VERIFYHOST, r->insecure ? 0L : 2L);
  if (r->ca_file) SET(CURLOPT_CAINFO, r->ca_file);
  bool with_body = r->method != RC__NET_GET && (r->method != RC__NET_DELETE || body_len);
  if (with_body) {
    /* curl copies the body; POSTFIELDSIZE must come first. */
    SET(CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)body_len);
    SET(CURLOPT_COPYPOSTFIELDS, body_len ? (const char *)body : "");
  }
  switch (r->method) {
    case RC__NET_GET: SET(CURLOPT_HTTPGET, 1L); break;
    case RC__NET_POST: break;  /* POSTFIELDS makes it a POST */
    case RC__NET_PUT: SET(CURLOPT_CUSTOMREQUEST, "PUT"); break;
    case RC__NET_DELETE: SET(CURLOPT_CUSTOMREQUEST, "DELETE"); break;
  }
  SET(CURLOPT_HTTPHEADER, r->headers);
  switch (r->http_version) {
    case RC__NET_HTTP_ANY: break;
    case RC__NET_HTTP_1_1: SET(CURLOPT_HTTP_VERSION, (long)CURL_HTTP_VERSION_1_1); break;
    case RC__NET_HTTP_2:
      SET(CURLOPT_HTTP_VERSION, r->tls ? (long)CURL_HTTP_VERSION_2TLS
                                       : (long)CURL_HTTP_VERSION_2_PRIOR_KNOWLEDGE);
      SET(CURLOPT_PIPEWAIT, 1L);
      break;
  }
#undef SET
  return c;
}

/* Sizes curl's connection cache. Left alone, curl allows 4 connections per transfer in
 * the multi handle *at the moment one ends*: a fleet of pollers has only a few transfers
 * at a time, so the connections a burst opened were closed as it ebbed and opened again
 * for the next one (about 90 new connections a second for 1,000 sources polling every
 * second). The limit here is 4 per transfer at the busiest moment so far, and never
 * below RC__NET_CACHED_CONNECTIONS; idle connections still go when the server closes
 * them or after curl's idle limit (CURLOPT_MAXAGE_CONN, 118 s by default). */
static void cache_fit(rc__net *net) {
  long want = (long)(net->nactive - net->nwaiting) * 4;
  if (want < RC__NET_CACHED_CONNECTIONS) want = RC__NET_CACHED_CONNECTIONS;
  if (want <= net->maxconnects) return;
  curl_multi_setopt(net->multi, CURLMOPT_MAXCONNECTS, want);
  net->maxconnects = want;
}

/* Gives a request its easy handle and options and adds it to the multi handle (or, inside
 * curl, to the list added when curl returns). 0, or an error with `err` filled; the
 * request is then on no list and the caller frees it. */
static int launch(rc__net_request *r, const void *body, size_t body_len, rc_error *err) {
  rc__net *net = r->net;
  if (r->org && !r->turn) {
    r->org->launched++;  /* req_free gives the turn back */
    r->turn = true;
  }
  if (r->h1.on) {
    list_push(r, W_ACTIVE);
    if (rc__h1_launch(r, err) != 0) {
      list_unlink(r);
      return RC_ENOMEM;
    }
    return 0;
  }
  r->easy = net->npool ? net->pool[--net->npool] : curl_easy_init();
  if (!r->easy) return rc__err(err, RC_ENOMEM, NULL, 0, 0, "out of memory");
  CURLcode c = set_options(r, body, body_len);
  if (c == CURLE_OUT_OF_MEMORY) return rc__err(err, RC_ENOMEM, NULL, 0, 0, "out of memory");
  if (c != CURLE_OK)
    return rc__err(err, RC_EINVAL, rc__net_url_shown(r), 0, 0, "libcurl refused an option: %s",
                   curl_easy_strerror(c));
  cache_fit(net);
  if (net->in_curl) {
    list_push(r, W_ADDS);  /* curl is running: join when it returns (flush_adds) */
    return 0;
  }
  list_push(r, W_ACTIVE);
  if (curl_multi_add_handle(net->multi, r->easy) != CURLM_OK) {
    list_unlink(r);
    return rc__err(err, RC_ENOMEM, NULL, 0, 0, "out of memory");
  }
  r->added = true;
  return 0;
}

/* Starts the waiting requests of each origin with free turns, oldest first. From the
 * loop (the pump timer, started by origin_wake), never inside a caller's call: a request
 * that cannot start is reported through its done callback. */
static void on_pump(uv_timer_t *t) {
  rc__net *net = t->data;
  net->busy++;
  origin *o;
  while (!net->closing && (o = net->ready)) {
    net->ready = o->next_ready;
    o->ready = false;
    o->pins++;  /* a failed start's callback may free requests of this origin */
    rc__net_request *r;
    while (!net->closing && (r = o->head) && o->launched < RC__NET_MAX_QUEUED_ACTIVE) {
      list_unlink(r);
      rc_error e;
      if (launch(r, NULL, 0, &e) != 0) {
        net->nactive--;
        complete(r, e.code, &e);
      }
    }
    o->pins--;
    origin_release(net, o);
  }
  net->busy--;
  if (net->busy == 0 && net->closing && !net->torn_down) teardown(net);
}

rc__net_request *rc__net_start(rc__net *net, const rc__net_req_opts *o,
                               const rc__net_callbacks *cb, void *ud, rc_error *err) {
  if (!net || !o || !cb || !cb->done || !o->url) {
    rc__err(err, RC_EINVAL, NULL, 0, 0,
            "rc__net_start: missing net, options, URL or done callback");
    return NULL;
  }
  if (net->closing) {
    rc__err(err, RC_ESTATE, NULL, 0, 0, "network is closing");
    return NULL;
  }
  if ((unsigned)o->method > RC__NET_DELETE || (o->body_len && !o->body) ||
      (unsigned)o->http_version > RC__NET_HTTP_2) {
    rc__err(err, RC_EINVAL, NULL, 0, 0, "rc__net_start: bad method, body or HTTP version");
    return NULL;
  }
  for (size_t i = 0; i < o->nheaders; i++) {
    if (!header_ok(&o->headers[i])) {
      /* Name only: the value may be a secret. */
      rc__err(err, RC_EINVAL, NULL, 0, 0, "invalid request header \"%s\"",
              o->headers[i].name ? o->headers[i].name : "(null)");
      return NULL;
    }
  }
  rc__net_request *r = rc__calloc(1, sizeof *r);
  if (!r) {
    rc__err(err, RC_ENOMEM, NULL, 0, 0, "out of memory");
    return NULL;
  }
  r->net = net;
  r->cb = *cb;
  r->ud = ud;
  rc__buf_init(&r->body);
  rc__buf_init(&r->resp);
  r->connect_ms = o->connect_ms ? o->connect_ms : RC__NET_CONNECT_MS_DEFAULT;
  r->total_ms = o->total_ms;
  r->low_speed_bytes = o->low_speed_bytes;
  r->low_speed_secs = o->low_speed_secs;
  r->max_redirects = o->max_redirects;
  r->max_body = o->max_body ? o->max_body : cb->data ? 0 : RC__NET_MAX_BODY_DEFAULT;
  if (o->url_known) {
    if (!(r->url = rc__strdup(o->url))) goto oom;
    r->tls = strncasecmp(o->url, "https:", 6) == 0;
  } else if (parse_url(r, o->url, err) != 0) {
    goto fail;
  }
  if (o->http_version == RC__NET_HTTP_2 && !r->tls && !rc__net_h2c_supported()) {
    rc__err(err, RC_EINVAL, rc__net_url_shown(r), 0, 0,
            "HTTP/2 without TLS needs libcurl 8.0 or newer (this one is %s)",
            curl_version_info(CURLVERSION_NOW)->version);
    goto fail;
  }

  /* Keep curl's socket callback from needing to allocate. */
  while (net->nspare < SPARE_POLLS_MIN) {
    poll_ctx *pc = rc__malloc(sizeof *pc);
    if (!pc) goto oom;
    pc->next = net->spare;
    net->spare = pc;
    net->nspare++;
  }
  for (size_t i = 0; i < o->nheaders; i++)
    if (add_header(r, o->headers[i].name, o->headers[i].value)) goto oom;
  if (o->method != RC__NET_GET) {
    /* No "Expect: 100-continue" round trip, and no made-up form content type. */
    if (!has_header(o, "Expect") && add_header(r, "Expect", NULL)) goto oom;
    if (!has_header(o, "Content-Type") && add_header(r, "Content-Type", NULL)) goto oom;
  }
  r->method = o->method;
  r->insecure = o->insecure;
  r->http_version = o->http_version;
  if (o->ca_file && !(r->ca_file = rc__strdup(o->ca_file))) goto oom;
  if (o->queue && o->method == RC__NET_GET && !(r->org = origin_get(net, r->url))) goto oom;
  rc__h1_route(r, o, cb->data != NULL);
  net->nactive++;
  if (r->org && (r->org->head || r->org->launched >= RC__NET_MAX_QUEUED_ACTIVE)) {
    queue_append(r);  /* its turn comes when one of its origin's ends (on_pump) */
    return r;
  }
  if (launch(r, o->body, o->body_len, err) != 0) {
    net->nactive--;
    goto fail;
  }
  return r;

oom:
  rc__err(err, RC_ENOMEM, NULL, 0, 0, "out of memory");
fail:
  req_free(r);
  return NULL;
}

void rc__net_cancel(rc__net_request *r) {
  if (!r || (r->where != W_ACTIVE && r->where != W_ADDS && r->where != W_QUEUED)) return;
  rc__net *net = r->net;
  list_unlink(r);
  net->nactive--;
  if (net->in_curl) {
    list_push(r, W_DOOMED);  /* its callbacks now refuse data; freed when curl returns */
    return;
  }
  if (r->added) curl_multi_remove_handle(net->multi, r->easy);
  req_free(r);
}

const char *rc__net_header_value(const rc__net_request *r, const char *name) {
  if (!r || !name || !r->resp.p) return NULL;
  const char *p = r->resp.p, *end = r->resp.p + r->resp.n;
  while (p < end) {
    const char *v = p + strlen(p) + 1;
    if (strcasecmp(p, name) == 0) return v;
    p = v + strlen(v) + 1;
  }
  return NULL;
}

long rc__net_status(const rc__net_request *r) {
  if (!r) return 0;
  return r->cur_status;
}
