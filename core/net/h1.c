/* SPDX-License-Identifier: MIT (see LICENSE) */
/* h1.c: a small HTTP/1.1 client on libuv for the poll case of core/net: plain-http GETs
 * that wait their turn (opts.queue), buffered, without a proxy. Why: 1,000 sources polling
 * at 1 Hz spent about 80% of their time inside libcurl's per-request bookkeeping and
 * request formatting (issue 18); this path builds the request once, writes it with one
 * call on a kept-alive connection and parses the answer with http-parser. net.c routes
 * (rc__h1_route) and owns the request; everything else still goes through curl.
 *
 * What must stay true: no callback of the caller runs inside rc__net_start (a failure
 * found while starting is reported from the timer, `late`); every user callback runs
 * between rc__net_enter and rc__net_leave, and after one we touch neither the request
 * nor the connection it had (the callback may have closed everything). */
#include "net_int.h"
#include "sigpipe.h"

#include <errno.h>
#include <http_parser.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>

#define H1_READ_BYTES (64 * 1024)
#define H1_IDLE_MS 118000u     /* curl's CURLOPT_MAXAGE_CONN default */
#define H1_DNS_MS 60000u       /* curl's DNS cache timeout default */
#define H1_MAX_ADDRS 4

/* ===================================================================================
 * Structures
 * =================================================================================== */

/* host:port with its addresses and its pool of idle connections. Lives until
 * rc__h1_teardown. */
typedef struct h1_origin {
  uint64_t hash;
  char *key;                  /* "host:port", host lower-cased */
  size_t keylen;
  char *host;                 /* for getaddrinfo and messages (IPv6 without brackets) */
  char port[8];
  struct sockaddr_storage addrs[H1_MAX_ADDRS];
  int naddrs;
  uint64_t addrs_until;       /* loop time; UINT64_MAX for an IP literal */
  struct h1_lookup *lookup;   /* a getaddrinfo in flight */
  rc__net_request *whead, *wtail;  /* waiting for that lookup */
  rc__net_request *chead, *ctail;  /* waiting for a connection (the cap below) */
  int nconns;                 /* open, idle or not (RC__NET_MAX_HOST_CONNECTIONS) */
  struct h1_conn *idle;       /* idle connections, most recently used first */
  struct h1_origin *next;     /* in its bucket */
} h1_origin;

typedef struct h1_lookup {
  uv_getaddrinfo_t req;
  rc__net *net;
  h1_origin *org;             /* NULL once the origin is gone (teardown) */
} h1_lookup;

typedef struct h1_conn {
  uv_tcp_t tcp;
  uv_connect_t connect;
  uv_write_t write;
  rc__net *net;
  h1_origin *org;             /* NULL once closing */
  rc__net_request *req;       /* the exchange it carries; NULL when idle */
  http_parser parser;
  struct h1_conn *prev, *next;  /* org->idle while idle */
  uint64_t idle_since;
  int addr_i;
  bool idle, connected, reused, got_bytes, complete, begun, in_value, writing, closing;
  rc__buf field, value;       /* the header being parsed (split across reads) */
} h1_conn;

static void h1_go(rc__net_request *r, bool fresh);
static void waiter_unlink(rc__net_request *r);
static void on_timer(uv_timer_t *t);

/* ===================================================================================
 * Timer: one for every deadline
 * =================================================================================== */

/* Makes the timer fire by `due` (loop time) at the latest. */
static void arm(rc__net *net, uint64_t due) {
  rc__h1 *h = &net->h1;
  if (net->closing) return;
  if (uv_is_active((uv_handle_t *)&h->timer) && h->timer_due <= due) return;
  uint64_t now = uv_now(net->loop);
  h->timer_due = due;
  uv_timer_start(&h->timer, on_timer, due > now ? due - now : 0, 0);
}

/* ===================================================================================
 * Connections
 * =================================================================================== */

static void on_conn_closed(uv_handle_t *hd) {
  h1_conn *c = hd->data;
  rc__net *net = c->net;
  rc__buf_free(&c->field);
  rc__buf_free(&c->value);
  rc__free(c);
  rc__net_handle_closed(net);
}

static void idle_unlink(h1_conn *c) {
  if (!c->idle) return;
  if (c->prev) c->prev->next = c->next;
  else c->org->idle = c->next;
  if (c->next) c->next->prev = c->prev;
  c->prev = c->next = NULL;
  c->idle = false;
}

/* Closes a connection (idle or not); its request, if any, no longer has it. */
static void conn_close(h1_conn *c) {
  if (c->closing) return;
  c->closing = true;
  idle_unlink(c);
  if (c->org) {
    c->org->nconns--;
    if (c->org->chead) arm(c->net, uv_now(c->net->loop));  /* a turn for a waiter */
  }
  c->org = NULL;
  if (c->req) {
    c->req->h1.conn = NULL;
    c->req = NULL;
  }
  uv_close((uv_handle_t *)&c->tcp, on_conn_closed);
}

/* After a complete exchange: back to its origin's pool, still reading so that the
 * server's close is seen at once (and the connection then closed). It keeps no loop
 * alive. */
static void conn_idle(h1_conn *c) {
  rc__net *net = c->net;
  h1_origin *o = c->org;
  c->req = NULL;
  c->idle = true;
  c->idle_since = uv_now(net->loop);
  c->prev = NULL;
  c->next = o->idle;
  if (o->idle) o->idle->prev = c;
  o->idle = c;
  uv_unref((uv_handle_t *)&c->tcp);
  /* A request waiting for a connection gets it from the timer, not from here: the
   * caller still has a request to report. */
  arm(net, o->chead ? c->idle_since : c->idle_since + H1_IDLE_MS);
}

/* ===================================================================================
 * Ending a request
 * =================================================================================== */

/* Reports the request's end (its connection already given back or closed). */
static void report(rc__net_request *r, int code, const rc_error *e) {
  r->h1.duration_ns = uv_hrtime() - r->h1.start_ns;
  rc__net_h1_done(r, code, e);
}

/* Fails the request: its connection (mid-exchange) is closed. Inside rc__net_start the
 * report waits for the timer. */
static void fail(rc__net_request *r, int code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void fail(rc__net_request *r, int code, const char *fmt, ...) {
  rc__net *net = r->net;
  if (r->h1.conn) conn_close(r->h1.conn);
  char msg[512];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(msg, sizeof msg, fmt, ap);
  va_end(ap);
  rc_error e;
  rc__err(&e, code, rc__net_url_shown(r), 0, 0, "%s", msg);
  if (net->h1.sync) {
    if (!r->h1.late && !(r->h1.late = rc__malloc(sizeof e))) {
      r->oom = true;  /* reported as "out of memory" by the timer */
    } else if (r->h1.late) {
      *r->h1.late = e;
    }
    r->h1.late_set = true;
    uv_ref((uv_handle_t *)&net->h1.timer);
    arm(net, uv_now(net->loop));
    return;
  }
  report(r, code, &e);
}

static void fail_flags(rc__net_request *r) {
  if (r->oom) fail(r, RC_ENOMEM, "out of memory");
  else if (r->too_big) fail(r, RC_ELIMIT, "body larger than %zu bytes", r->max_body);
  else
    fail(r, RC_ELIMIT, "response headers larger than %u bytes", RC__NET_MAX_HEADER_BYTES);
}

static uint32_t connect_limit(const rc__net_request *r) {
  return r->total_ms && r->total_ms < r->connect_ms ? r->total_ms : r->connect_ms;
}

/* The request's own deadline: connect (until connected) or total; 0 = none. */
static uint64_t due_of(const rc__net_request *r) {
  uint64_t d = r->h1.total_due;
  bool connected = r->h1.conn && r->h1.conn->connected;
  if (!connected && r->h1.connect_due && (!d || r->h1.connect_due < d))
    d = r->h1.connect_due;
  return d;
}

/* Fires for a failure found while starting, an expired request or an idle connection
 * past its age. Callbacks may end other requests: the scan starts over after each. */
static void on_timer(uv_timer_t *t) {
  rc__net *net = t->data;
  rc__h1 *h = &net->h1;
  uv_unref((uv_handle_t *)&h->timer);
  rc__net_enter(net);
  uint64_t now = uv_now(net->loop);
  for (;;) {
    if (net->closing) break;
    rc__net_request *hit = NULL;
    for (rc__net_request *r = h->inflight; r; r = r->h1.next) {
      uint64_t d = due_of(r);
      if (r->h1.late_set || (d && d <= now)) {
        hit = r;
        break;
      }
    }
    if (!hit) break;
    if (hit->h1.late_set) {
      if (hit->h1.late) {
        rc_error e = *hit->h1.late;
        report(hit, e.code, &e);
      } else {
        rc_error e;
        rc__err(&e, RC_ENOMEM, rc__net_url_shown(hit), 0, 0, "out of memory");
        report(hit, RC_ENOMEM, &e);
      }
    } else if (!(hit->h1.conn && hit->h1.conn->connected)) {
      fail(hit, RC_EIO, "connect timed out after %u ms", connect_limit(hit));
    } else {
      fail(hit, RC_EIO, "timed out after %u ms", hit->total_ms);
    }
  }
  /* Requests waiting for a connection of their origin: an idle one, or a new one
   * under the cap. */
  for (size_t i = 0; i < RC__H1_BUCKETS && !net->closing; i++)
    for (h1_origin *o = h->origins[i]; o && !net->closing; o = o->next) {
      rc__net_request *r;
      while (!net->closing && (r = o->chead) &&
             (o->idle || o->nconns < RC__NET_MAX_HOST_CONNECTIONS)) {
        waiter_unlink(r);
        h1_go(r, false);
      }
    }
  if (!net->closing) {
    uint64_t next = UINT64_MAX;
    for (rc__net_request *r = h->inflight; r; r = r->h1.next) {
      uint64_t d = r->h1.late_set ? now : due_of(r);  /* late: set by a callback above */
      if (d && d < next) next = d;
    }
    for (size_t i = 0; i < RC__H1_BUCKETS; i++)
      for (h1_origin *o = h->origins[i]; o; o = o->next)
        for (h1_conn *c = o->idle, *cn; c; c = cn) {
          cn = c->next;
          if (now - c->idle_since >= H1_IDLE_MS) conn_close(c);
          else if (c->idle_since + H1_IDLE_MS < next) next = c->idle_since + H1_IDLE_MS;
        }
    if (next != UINT64_MAX) {
      h->timer_due = next;
      uv_timer_start(&h->timer, on_timer, next > now ? next - now : 0, 0);
    }
  }
  rc__net_leave(net);
}

/* ===================================================================================
 * Parsing the response (http-parser callbacks: they only record)
 * =================================================================================== */

static int begin(h1_conn *c) {
  if (c->begun) return 0;
  c->begun = true;
  return rc__net_resp_begin(c->req, (long)c->parser.status_code) == 0 ? 0 : 1;
}

static int commit_header(h1_conn *c) {
  c->in_value = false;
  int rc = rc__net_resp_header(c->req, c->field.p ? c->field.p : "", c->field.n,
                               c->value.p ? c->value.p : "", c->value.n);
  rc__buf_reset(&c->field);
  rc__buf_reset(&c->value);
  return rc == 0 ? 0 : 1;
}

static int piece(h1_conn *c, rc__buf *b, const char *p, size_t n) {
  rc__net_request *r = c->req;
  if (r->resp.n + c->field.n + c->value.n + n + 2 > RC__NET_MAX_HEADER_BYTES) {
    r->headers_too_big = true;
    return 1;
  }
  rc__buf_add(b, p, n);
  if (b->oom) {
    r->oom = true;
    return 1;
  }
  return 0;
}

static int on_msg_begin(http_parser *p) {
  h1_conn *c = p->data;
  c->begun = c->in_value = false;
  rc__buf_reset(&c->field);
  rc__buf_reset(&c->value);
  return 0;
}

static int on_hfield(http_parser *p, const char *at, size_t n) {
  h1_conn *c = p->data;
  if (begin(c)) return 1;
  if (c->in_value && commit_header(c)) return 1;
  return piece(c, &c->field, at, n);
}

static int on_hvalue(http_parser *p, const char *at, size_t n) {
  h1_conn *c = p->data;
  c->in_value = true;
  return piece(c, &c->value, at, n);
}

static int on_hdone(http_parser *p) {
  h1_conn *c = p->data;
  if (begin(c)) return -1;  /* an error (1 and 2 mean "no body") */
  if (c->in_value && commit_header(c)) return -1;
  /* These have no body whatever their Content-Length says (a 304 may announce the
   * length of what it did not send); http-parser only knows when told. */
  unsigned s = p->status_code;
  return s == 204 || s == 304 || (s >= 100 && s < 200) ? 1 : 0;
}

static int on_body(http_parser *p, const char *at, size_t n) {
  h1_conn *c = p->data;
  rc__net_request *r = c->req;
  if (r->max_body && n > r->max_body - r->received) {
    r->too_big = true;
    return 1;
  }
  r->received += n;
  rc__buf_add(&r->body, at, n);
  if (r->body.oom) {
    r->oom = true;
    return 1;
  }
  return 0;
}

/* 1xx interim responses are skipped; the final one pauses the parser, so bytes after it
 * (which nobody asked for) are left unparsed and the connection is not kept. */
static int on_msg_done(http_parser *p) {
  h1_conn *c = p->data;
  if (p->status_code >= 100 && p->status_code < 200 && p->status_code != 101) return 0;
  c->complete = true;
  http_parser_pause(p, 1);
  return 0;
}

static const http_parser_settings SETTINGS = {
  .on_message_begin = on_msg_begin,
  .on_header_field = on_hfield,
  .on_header_value = on_hvalue,
  .on_headers_complete = on_hdone,
  .on_body = on_body,
  .on_message_complete = on_msg_done,
};

/* ===================================================================================
 * Requests: bytes, targets, redirects
 * =================================================================================== */

/* The parts of an http:// URL that the own client takes (anything unusual goes to curl:
 * user info, blanks or control bytes, hosts beyond letters, digits, '-', '.', '_'). */
typedef struct target {
  const char *host;
  size_t hlen;
  bool v6;
  unsigned port;
  const char *path;   /* path and query, without the fragment; may be empty */
  size_t plen;
} target;

static bool parse_target(const char *url, target *t) {
  if (strncasecmp(url, "http://", 7) != 0) return false;
  for (const unsigned char *q = (const unsigned char *)url; *q; q++)
    if (*q <= 0x20 || *q >= 0x7f) return false;
  const char *a = url + 7;
  size_t alen = strcspn(a, "/?#");
  if (memchr(a, '@', alen) || alen == 0) return false;
  const char *end = a + alen, *p = a;
  memset(t, 0, sizeof *t);
  if (*p == '[') {
    const char *rb = memchr(p, ']', alen);
    if (!rb) return false;
    t->host = p + 1;
    t->hlen = (size_t)(rb - p - 1);
    t->v6 = true;
    for (size_t i = 0; i < t->hlen; i++)
      if (!strchr("0123456789abcdefABCDEF:.", t->host[i])) return false;
    p = rb + 1;
  } else {
    t->host = p;
    while (p < end && *p != ':') {
      if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') ||
            (*p >= '0' && *p <= '9') || *p == '-' || *p == '.' || *p == '_'))
        return false;
      p++;
    }
    t->hlen = (size_t)(p - t->host);
  }
  if (t->hlen == 0 || t->hlen > 253) return false;
  t->port = 80;
  if (p < end) {
    if (*p != ':') return false;
    p++;
    if (p == end) return false;  /* "host:" */
    unsigned port = 0;
    for (; p < end; p++) {
      if (*p < '0' || *p > '9') return false;
      port = port * 10 + (unsigned)(*p - '0');
      if (port > 65535) return false;
    }
    if (port == 0) return false;
    t->port = port;
  }
  t->path = end;
  t->plen = strcspn(end, "#");
  return true;
}

/* Writes `port` (1..65535) in decimal to `out` (at least 5 bytes); returns the length. */
static size_t port_text(unsigned port, char *out) {
  char tmp[8];
  size_t n = 0;
  do tmp[n++] = (char)('0' + port % 10);
  while ((port /= 10) && n < 5);
  for (size_t i = 0; i < n; i++) out[i] = tmp[n - 1 - i];
  return n;
}

static bool has_line(const struct curl_slist *l, const char *name) {
  size_t n = strlen(name);
  for (; l; l = l->next)
    if (strncasecmp(l->data, name, n) == 0 && (l->data[n] == ':' || l->data[n] == ';'))
      return true;
  return false;
}

/* Builds the request's bytes for target `t`, in one buffer: request line, Host, our
 * User-Agent and Accept unless the caller sends its own, the caller's headers (on a
 * redirect to another origin without Authorization and Cookie, as curl does), the blank
 * line. The old buffer is wiped: header values are secrets. 0 or RC_ENOMEM. */
static int build_request(rc__net_request *r, const target *t, bool other_origin) {
  rc__buf b;
  rc__buf_init(&b);
  rc__buf_reserve(&b, 256);
  rc__buf_adds(&b, "GET ");
  if (t->plen == 0 || t->path[0] != '/') rc__buf_addc(&b, '/');
  rc__buf_add(&b, t->path, t->plen);
  rc__buf_adds(&b, " HTTP/1.1\r\n");
  if (!has_line(r->headers, "Host")) {
    rc__buf_adds(&b, "Host: ");
    if (t->v6) rc__buf_addc(&b, '[');
    rc__buf_add(&b, t->host, t->hlen);
    if (t->v6) rc__buf_addc(&b, ']');
    if (t->port != 80) {
      char num[8];
      rc__buf_addc(&b, ':');
      rc__buf_add(&b, num, port_text(t->port, num));
    }
    rc__buf_adds(&b, "\r\n");
  }
  if (!has_line(r->headers, "User-Agent"))
    rc__buf_adds(&b, "User-Agent: reactcfg/" RC_VERSION_STRING "\r\n");
  if (!has_line(r->headers, "Accept")) rc__buf_adds(&b, "Accept: */*\r\n");
  for (const struct curl_slist *l = r->headers; l; l = l->next) {
    const char *d = l->data;
    if (other_origin && (strncasecmp(d, "Authorization:", 14) == 0 ||
                         strncasecmp(d, "Authorization;", 14) == 0 ||
                         strncasecmp(d, "Cookie:", 7) == 0 || strncasecmp(d, "Cookie;", 7) == 0))
      continue;
    size_t n = strlen(d);
    if (n && d[n - 1] == ';' && !memchr(d, ':', n)) {
      rc__buf_add(&b, d, n - 1);  /* curl's "Name;" = send it empty */
      rc__buf_addc(&b, ':');
    } else {
      rc__buf_add(&b, d, n);
    }
    rc__buf_adds(&b, "\r\n");
  }
  rc__buf_adds(&b, "\r\n");
  if (b.oom) {
    if (b.p) explicit_bzero(b.p, b.n);
    rc__buf_free(&b);
    return RC_ENOMEM;
  }
  if (r->h1.reqbuf) {
    explicit_bzero(r->h1.reqbuf, r->h1.reqlen);
    rc__free(r->h1.reqbuf);
  }
  r->h1.reqlen = b.n;
  r->h1.reqbuf = rc__buf_take(&b);
  return 0;
}

/* The origin of `t`, made if new (IP literals get their address at once). Runs for every
 * poll: no printf. */
static h1_origin *origin_of(rc__net *net, const target *t) {
  char key[300];
  int klen = 0;
  if (t->v6) key[klen++] = '[';
  for (size_t i = 0; i < t->hlen; i++) {
    char ch = t->host[i];
    key[klen++] = ch >= 'A' && ch <= 'Z' ? (char)(ch - 'A' + 'a') : ch;
  }
  if (t->v6) key[klen++] = ']';
  key[klen++] = ':';
  klen += (int)port_text(t->port, key + klen);
  uint64_t hash = rc__hash64(key, (size_t)klen);
  h1_origin **b = &net->h1.origins[hash % RC__H1_BUCKETS];
  for (h1_origin *o = *b; o; o = o->next)
    if (o->hash == hash && o->keylen == (size_t)klen && memcmp(o->key, key, klen) == 0)
      return o;
  h1_origin *o = rc__calloc(1, sizeof *o);
  if (!o) return NULL;
  o->key = rc__strndup(key, (size_t)klen);
  o->host = rc__strndup(t->host, t->hlen);
  if (!o->key || !o->host) {
    rc__free(o->key);
    rc__free(o->host);
    rc__free(o);
    return NULL;
  }
  o->keylen = (size_t)klen;
  o->hash = hash;
  snprintf(o->port, sizeof o->port, "%u", t->port);
  struct sockaddr_in *a4 = (struct sockaddr_in *)&o->addrs[0];
  struct sockaddr_in6 *a6 = (struct sockaddr_in6 *)&o->addrs[0];
  if ((!t->v6 && uv_ip4_addr(o->host, (int)t->port, a4) == 0) ||
      (t->v6 && uv_ip6_addr(o->host, (int)t->port, a6) == 0)) {
    o->naddrs = 1;
    o->addrs_until = UINT64_MAX;
  }
  o->next = *b;
  *b = o;
  return o;
}

/* Points the request at `url` (a redirect's target, or the first one): its origin and
 * request bytes. 0, RC_ENOMEM, or RC_EINVAL when the own client cannot take it. */
static int aim(rc__net_request *r, const char *url, bool other_origin_check) {
  target t;
  if (!parse_target(url, &t)) return RC_EINVAL;
  h1_origin *o = origin_of(r->net, &t);
  if (!o) return RC_ENOMEM;
  bool other = other_origin_check && o != r->h1.org;
  if (build_request(r, &t, other) != 0) return RC_ENOMEM;
  r->h1.org = o;
  return 0;
}

/* ===================================================================================
 * The exchange
 * =================================================================================== */

static void retry(rc__net_request *r) {
  r->h1.retried = true;
  if (r->h1.conn) conn_close(r->h1.conn);
  r->h1.connect_due = uv_now(r->net->loop) + r->connect_ms;
  arm(r->net, r->h1.connect_due);
  h1_go(r, true);
}

/* The connection failed before or while the request went out, or while waiting for the
 * answer (`nread`: the libuv error; UV_EOF = the server closed it). A reused connection
 * that the server had closed meanwhile gets the request once more on a new one. */
static void conn_broke(h1_conn *c, int uverr) {
  rc__net_request *r = c->req;
  if (!c->got_bytes && c->reused && !r->h1.retried &&
      (uverr == UV_EOF || uverr == UV_ECONNRESET || uverr == UV_EPIPE)) {
    retry(r);
    return;
  }
  if (uverr == UV_EOF && !c->got_bytes)
    fail(r, RC_EIO, "server closed the connection without answering");
  else if (uverr == UV_EOF)
    fail(r, RC_EIO, "response ended early: the connection closed mid-response");
  else
    fail(r, RC_EIO, "connection lost: %s", strerror(-uverr));
}

static void on_written(uv_write_t *w, int status) {
  h1_conn *c = w->data;
  if (c->closing || status == UV_ECANCELED) return;
  c->writing = false;
  if (status >= 0 || !c->req) return;
  rc__net *net = c->net;
  rc__net_enter(net);
  conn_broke(c, status);
  rc__net_leave(net);
}

/* Sends the request on its connection: one send(), usually taken whole by the kernel.
 * With MSG_NOSIGNAL, not uv_try_write: a write() to a peer that has gone raises SIGPIPE,
 * and the host's disposition of it is not ours to change. What the socket did not take
 * at once (a request larger than the free send buffer: only with very large headers)
 * goes through uv_write, guarded while it tries at once; a later part of that write by
 * libuv is the one exposure left (as rc.websocket's notes say of uv_write). */
static void send_request(h1_conn *c) {
  rc__net_request *r = c->req;
  http_parser_init(&c->parser, HTTP_RESPONSE);
  c->parser.data = c;
  c->got_bytes = c->complete = c->begun = c->in_value = false;
  uv_os_fd_t fd;
  ssize_t n = UV_EAGAIN;
  if (uv_fileno((uv_handle_t *)&c->tcp, &fd) == 0) {
    do n = send(fd, r->h1.reqbuf, r->h1.reqlen, MSG_NOSIGNAL);
    while (n < 0 && errno == EINTR);
    if (n < 0) n = errno == EAGAIN || errno == EWOULDBLOCK ? UV_EAGAIN : -errno;
  }
  if (n == (ssize_t)r->h1.reqlen) return;
  if (n < 0 && n != UV_EAGAIN) {
    conn_broke(c, (int)n);
    return;
  }
  size_t at = n > 0 ? (size_t)n : 0;
  uv_buf_t b = uv_buf_init(r->h1.reqbuf + at, (unsigned)(r->h1.reqlen - at));
  c->write.data = c;
  rc__sigpipe_guard g;
  rc__sigpipe_block(&g);
  int rc = uv_write(&c->write, (uv_stream_t *)&c->tcp, &b, 1, on_written);
  rc__sigpipe_restore(&g);
  if (rc < 0) {
    conn_broke(c, rc);
    return;
  }
  c->writing = true;
}

static void on_alloc(uv_handle_t *hd, size_t want, uv_buf_t *buf) {
  RC__UNUSED(want);
  h1_conn *c = hd->data;
  rc__h1 *h = &c->net->h1;
  if (!h->rbuf) h->rbuf = rc__malloc(H1_READ_BYTES);
  *buf = uv_buf_init(h->rbuf, h->rbuf ? H1_READ_BYTES : 0);
}

/* Follows a redirect of a finished exchange, if it is one to follow: true when the
 * request goes on (or was reported). */
static bool redirect(rc__net_request *r) {
  long s = r->cur_status;
  if (!r->max_redirects || !(s == 301 || s == 302 || s == 303 || s == 307 || s == 308))
    return false;
  const char *loc = rc__net_header_value(r, "Location");
  if (!loc || !loc[0]) return false;
  if (r->h1.redirects >= r->max_redirects) {
    fail(r, RC_EIO, "more than %u redirects", r->max_redirects);
    return true;
  }
  /* Resolve it against the URL now requested, as curl does. */
  CURLU *u = curl_url();
  char *next = NULL;
  bool ok = u && curl_url_set(u, CURLUPART_URL, r->h1.target ? r->h1.target : r->url, 0) ==
                     CURLUE_OK &&
            curl_url_set(u, CURLUPART_URL, loc, 0) == CURLUE_OK &&
            curl_url_get(u, CURLUPART_URL, &next, 0) == CURLUE_OK;
  curl_url_cleanup(u);
  if (!ok) {
    curl_free(next);
    fail(r, RC_EIO, "bad redirect location");
    return true;
  }
  r->h1.redirects++;
  char *copy = rc__strdup(next);
  curl_free(next);
  if (!copy) {
    fail(r, RC_ENOMEM, "out of memory");
    return true;
  }
  if (r->h1.target) {
    explicit_bzero(r->h1.target, strlen(r->h1.target));
    rc__free(r->h1.target);
  }
  r->h1.target = copy;
  int rc = aim(r, copy, true);
  if (rc == RC_ENOMEM) {
    fail(r, RC_ENOMEM, "out of memory");
  } else if (rc != 0) {
    /* https, user info or anything else unusual: curl takes over with what is left. */
    rc_error e;
    if (rc__net_h1_to_curl(r, copy, r->max_redirects - r->h1.redirects, &e) != 0)
      report(r, e.code, &e);
  } else {
    r->h1.connect_due = uv_now(r->net->loop) + r->connect_ms;
    arm(r->net, r->h1.connect_due);
    h1_go(r, false);
  }
  return true;
}

/* After the parser ran over `n` bytes (or over the end of the stream, `eof`). */
static void after_parse(h1_conn *c, size_t used, size_t n, bool eof) {
  rc__net_request *r = c->req;
  if (r->oom || r->too_big || r->headers_too_big) {
    fail_flags(r);
    return;
  }
  if (c->complete) {
    bool keep = !eof && used == n && !c->writing && http_should_keep_alive(&c->parser) &&
                !r->net->closing;
    r->h1.conn = NULL;
    if (keep) conn_idle(c);
    else conn_close(c);
    if (redirect(r)) return;
    report(r, 0, NULL);
    return;
  }
  enum http_errno he = HTTP_PARSER_ERRNO(&c->parser);
  if (he == HPE_HEADER_OVERFLOW) {
    r->headers_too_big = true;
    fail_flags(r);
  } else if (eof) {
    fail(r, RC_EIO, "response ended early: %s", http_errno_description(he));
  } else if (he != HPE_OK) {
    fail(r, RC_EIO, "invalid HTTP response: %s", http_errno_description(he));
  }
}

static void on_read(uv_stream_t *st, ssize_t nread, const uv_buf_t *buf) {
  h1_conn *c = st->data;
  if (nread == 0 || c->closing) return;
  rc__net_request *r = c->req;
  if (!r) {
    conn_close(c);  /* idle: the server closed it (or said something unasked) */
    return;
  }
  rc__net *net = c->net;
  rc__net_enter(net);
  if (nread > 0) {
    c->got_bytes = true;
    size_t used = http_parser_execute(&c->parser, &SETTINGS, buf->base, (size_t)nread);
    after_parse(c, used, (size_t)nread, false);
  } else if (nread == UV_ENOBUFS) {
    fail(r, RC_ENOMEM, "out of memory");
  } else if (nread == UV_EOF && c->got_bytes) {
    http_parser_execute(&c->parser, &SETTINGS, NULL, 0);
    after_parse(c, 0, 0, true);
  } else {
    conn_broke(c, (int)nread);
  }
  rc__net_leave(net);
}

/* Gives the request connection `c` (connected or not). */
static void attach(h1_conn *c, rc__net_request *r) {
  c->req = r;
  r->h1.conn = c;
}

static void on_connect(uv_connect_t *cr, int status);

/* Opens a connection to address `i` of the request's origin. */
static void conn_open(rc__net_request *r, int i) {
  rc__net *net = r->net;
  h1_origin *o = r->h1.org;
  h1_conn *c = rc__calloc(1, sizeof *c);
  if (!c) {
    fail(r, RC_ENOMEM, "out of memory");
    return;
  }
  rc__buf_init(&c->field);
  rc__buf_init(&c->value);
  int rc = uv_tcp_init(net->loop, &c->tcp);
  if (rc < 0) {
    rc__free(c);
    fail(r, RC_EIO, "cannot connect: %s", uv_strerror(rc));
    return;
  }
  net->open_handles++;
  c->tcp.data = c;
  c->net = net;
  c->org = o;
  o->nconns++;
  c->addr_i = i;
  attach(c, r);
  r->h1.connects++;
  uv_tcp_nodelay(&c->tcp, 1);
  c->connect.data = c;
  rc = uv_tcp_connect(&c->connect, &c->tcp, (const struct sockaddr *)&o->addrs[i],
                      on_connect);
  if (rc < 0) {
    if (rc == UV_ECONNREFUSED) fail(r, RC_EIO, "connection refused");
    else fail(r, RC_EIO, "cannot connect: %s", strerror(-rc));
  }
}

static void on_connect(uv_connect_t *cr, int status) {
  h1_conn *c = cr->data;
  if (c->closing || status == UV_ECANCELED) return;
  rc__net_request *r = c->req;
  rc__net *net = c->net;
  rc__net_enter(net);
  if (status < 0) {
    h1_origin *o = c->org;
    int next = c->addr_i + 1;
    conn_close(c);
    if (next < o->naddrs) conn_open(r, next);  /* "localhost": ::1, then 127.0.0.1 */
    else if (status == UV_ECONNREFUSED) fail(r, RC_EIO, "connection refused");
    else fail(r, RC_EIO, "cannot connect: %s", strerror(-status));
  } else {
    c->connected = true;
    if (c->addr_i > 0) {
      /* Put the address that answered first for the next connections. */
      h1_origin *o = c->org;
      struct sockaddr_storage t = o->addrs[0];
      o->addrs[0] = o->addrs[c->addr_i];
      o->addrs[c->addr_i] = t;
      c->addr_i = 0;
    }
    uv_tcp_keepalive(&c->tcp, 1, 60);
    int rc = uv_read_start((uv_stream_t *)&c->tcp, on_alloc, on_read);
    if (rc < 0) fail(r, RC_EIO, "connection lost: %s", strerror(-rc));
    else send_request(c);
  }
  rc__net_leave(net);
}

static void waiter_unlink(rc__net_request *r) {
  if (!r->h1.waiting) return;
  h1_origin *o = r->h1.org;
  rc__net_request **head = r->h1.waiting == 1 ? &o->whead : &o->chead;
  rc__net_request **tail = r->h1.waiting == 1 ? &o->wtail : &o->ctail;
  if (r->h1.wprev) r->h1.wprev->h1.wnext = r->h1.wnext;
  else *head = r->h1.wnext;
  if (r->h1.wnext) r->h1.wnext->h1.wprev = r->h1.wprev;
  else *tail = r->h1.wprev;
  r->h1.wprev = r->h1.wnext = NULL;
  r->h1.waiting = 0;
}

/* Appends to the origin's lookup waiters (`which` 1) or connection waiters (2). */
static void waiter_append(rc__net_request *r, int which) {
  h1_origin *o = r->h1.org;
  rc__net_request **head = which == 1 ? &o->whead : &o->chead;
  rc__net_request **tail = which == 1 ? &o->wtail : &o->ctail;
  r->h1.waiting = which;
  r->h1.wnext = NULL;
  r->h1.wprev = *tail;
  if (*tail) (*tail)->h1.wnext = r;
  else *head = r;
  *tail = r;
}

static void on_resolved(uv_getaddrinfo_t *req, int status, struct addrinfo *res) {
  h1_lookup *lk = req->data;
  rc__net *net = lk->net;
  h1_origin *o = lk->org;
  if (o) {
    o->lookup = NULL;
    o->naddrs = 0;
    for (struct addrinfo *a = res; status == 0 && a && o->naddrs < H1_MAX_ADDRS;
         a = a->ai_next) {
      if (a->ai_addrlen > sizeof o->addrs[0]) continue;
      if (a->ai_family != AF_INET && a->ai_family != AF_INET6) continue;
      memcpy(&o->addrs[o->naddrs++], a->ai_addr, a->ai_addrlen);
    }
    if (o->naddrs) o->addrs_until = uv_now(net->loop) + H1_DNS_MS;
    rc__net_enter(net);
    rc__net_request *r;
    while (!net->closing && (r = o->whead)) {
      waiter_unlink(r);
      /* h1_go, not a connection each: the cap on connections holds here too. */
      if (o->naddrs) h1_go(r, false);
      else fail(r, RC_EIO, "cannot resolve host name \"%s\"", o->host);
    }
    rc__net_leave(net);  /* may tear down (and free the origin) */
  }
  uv_freeaddrinfo(res);
  rc__free(lk);
  rc__net_handle_closed(net);  /* the last thing: may free net */
}

/* Finds the request a connection: an idle one of its origin (unless `fresh`), else a new
 * one, after looking the host name up if its addresses are not known (or too old). */
static void h1_go(rc__net_request *r, bool fresh) {
  rc__net *net = r->net;
  h1_origin *o = r->h1.org;
  uint64_t now = uv_now(net->loop);
  h1_conn *c;
  while (!fresh && (c = o->idle)) {
    idle_unlink(c);
    if (now - c->idle_since >= H1_IDLE_MS) {
      conn_close(c);
      continue;
    }
    uv_ref((uv_handle_t *)&c->tcp);
    c->reused = true;
    attach(c, r);
    send_request(c);
    return;
  }
  if (o->nconns >= RC__NET_MAX_HOST_CONNECTIONS) {
    waiter_append(r, 2);  /* served by the timer when one is free */
    return;
  }
  if (o->naddrs && now < o->addrs_until) {
    conn_open(r, 0);
    return;
  }
  waiter_append(r, 1);
  if (o->lookup) return;
  h1_lookup *lk = rc__calloc(1, sizeof *lk);
  if (!lk) {
    waiter_unlink(r);
    fail(r, RC_ENOMEM, "out of memory");
    return;
  }
  lk->net = net;
  lk->org = o;
  lk->req.data = lk;
  struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM,
                           .ai_flags = AI_ADDRCONFIG};
  int rc = uv_getaddrinfo(net->loop, &lk->req, on_resolved, o->host, o->port, &hints);
  if (rc < 0) {
    rc__free(lk);
    waiter_unlink(r);
    fail(r, RC_EIO, "cannot resolve host name \"%s\"", o->host);
    return;
  }
  net->open_handles++;
  o->lookup = lk;
}

/* ===================================================================================
 * Interface for net.c
 * =================================================================================== */

void rc__h1_init(rc__net *net) {
  rc__h1 *h = &net->h1;
  const char *client = getenv("RC_HTTP_CLIENT");
  h->enabled = !(client && strcmp(client, "curl") == 0) && !getenv("http_proxy") &&
               !getenv("HTTP_PROXY") && !getenv("all_proxy") && !getenv("ALL_PROXY");
  uv_timer_init(net->loop, &h->timer);  /* cannot fail */
  h->timer.data = net;
  uv_unref((uv_handle_t *)&h->timer);
  net->open_handles++;
}

bool rc__h1_route(rc__net_request *r, const rc__net_req_opts *o, bool streaming) {
  target t;
  /* The own client has no low-speed limit: a caller that asks for one gets curl. */
  r->h1.on = r->net->h1.enabled && o->method == RC__NET_GET && o->queue &&
             o->http_version != RC__NET_HTTP_2 && !streaming &&
             !(o->low_speed_bytes && o->low_speed_secs) && parse_target(o->url, &t);
  return r->h1.on;
}

int rc__h1_launch(rc__net_request *r, rc_error *err) {
  rc__net *net = r->net;
  int rc = aim(r, r->url, false);
  if (rc != 0) return rc__err(err, RC_ENOMEM, NULL, 0, 0, "out of memory");
  net->h1.requests++;
  r->h1.start_ns = uv_hrtime();
  uint64_t now = uv_now(net->loop);
  r->h1.connect_due = now + r->connect_ms;
  r->h1.total_due = r->total_ms ? now + r->total_ms : 0;
  r->h1.prev = NULL;
  r->h1.next = net->h1.inflight;
  if (net->h1.inflight) net->h1.inflight->h1.prev = r;
  net->h1.inflight = r;
  r->h1.launched = true;
  arm(net, due_of(r));
  net->h1.sync++;
  h1_go(r, false);
  net->h1.sync--;
  return 0;
}

void rc__h1_release(rc__net_request *r) {
  rc__net *net = r->net;
  if (r->h1.launched) {
    if (r->h1.prev) r->h1.prev->h1.next = r->h1.next;
    else net->h1.inflight = r->h1.next;
    if (r->h1.next) r->h1.next->h1.prev = r->h1.prev;
    r->h1.prev = r->h1.next = NULL;
    r->h1.launched = false;
  }
  waiter_unlink(r);
  if (r->h1.conn) conn_close(r->h1.conn);
  if (r->h1.reqbuf) {
    explicit_bzero(r->h1.reqbuf, r->h1.reqlen);
    rc__free(r->h1.reqbuf);
    r->h1.reqbuf = NULL;
  }
  if (r->h1.target) {
    explicit_bzero(r->h1.target, strlen(r->h1.target));
    rc__free(r->h1.target);
    r->h1.target = NULL;
  }
  rc__free(r->h1.late);
  r->h1.late = NULL;
  r->h1.late_set = false;
  r->h1.org = NULL;
}

static void on_timer_closed(uv_handle_t *t) { rc__net_handle_closed(t->data); }

void rc__h1_teardown(rc__net *net) {
  rc__h1 *h = &net->h1;
  for (size_t i = 0; i < RC__H1_BUCKETS; i++)
    while (h->origins[i]) {
      h1_origin *o = h->origins[i];
      h->origins[i] = o->next;
      while (o->idle) conn_close(o->idle);
      if (o->lookup) {
        o->lookup->org = NULL;
        uv_cancel((uv_req_t *)&o->lookup->req);
      }
      rc__free(o->key);
      rc__free(o->host);
      rc__free(o);
    }
  rc__free(h->rbuf);
  h->rbuf = NULL;
  uv_timer_stop(&h->timer);
  uv_close((uv_handle_t *)&h->timer, on_timer_closed);
}
