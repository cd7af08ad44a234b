/* SPDX-License-Identifier: MIT (see LICENSE) */
/* http.c: the HTTP source. Polls a URL at an interval with a conditional GET (RFC 9110:
 * If-None-Match from the last ETag, If-Modified-Since from the last Last-Modified, sent
 * back verbatim); a 304 keeps the last value and delivers nothing. A 200 whose body is
 * byte-for-byte the last one (servers without validators) is not parsed again.
 * Failures keep the last value, report an error and retry with backoff. */
#include "http_util.h"
#include "remote.h"

#include <string.h>
#include <strings.h>

#define HTTP_MAX_REDIRECTS 5
#define HTTP_MAX_HEADERS 32
#define POLL_SLOT_MAX_MS 50

typedef struct http_source {
  rc__remote r;
  const char *url;           /* borrowed from the options */
  char **headers;            /* "name", "value", ... NULL (the policy's headers) */
  rc__format fmt;            /* RC__FMT_AUTO: by Content-Type, then by the URL */
  uint64_t interval_ms;
  rc__net_http_version http_version;
  char *etag, *last_modified;  /* validators of the last 200 */
  bool have_body;            /* body_digest describes the last parsed body */
  bool url_known;            /* rc__net_start accepted the URL once */
  uint8_t body_digest[16];
} http_source;

static void poll_now(rc__remote *r);

static void set_str(char **dst, const char *v) {
  if (!v) return;  /* a response without the validator keeps the old one (304) */
  if (*dst && strcmp(*dst, v) == 0) return; /* the usual 304: no copy per poll */
  char *copy = rc__strdup(v);
  if (!copy) return;
  rc__free(*dst);
  *dst = copy;
}

static void forget_validators(http_source *s) {
  rc__free(s->etag);
  rc__free(s->last_modified);
  s->etag = s->last_modified = NULL;
  s->have_body = false;
}

/* The format of a body: the option, else the Content-Type, else the URL's extension,
 * else JSON. */
static rc__format body_format(const http_source *s, const char *ctype) {
  if (s->fmt != RC__FMT_AUTO) return s->fmt;
  if (ctype) {
    if (strcasestr(ctype, "json")) return RC__FMT_JSON;
    if (strcasestr(ctype, "yaml")) return RC__FMT_YAML;
    if (strcasestr(ctype, "toml")) return RC__FMT_TOML;
  }
  /* The path only: "?x=1.json" says nothing. */
  size_t n = strcspn(s->url, "?#");
  char path[1024];
  if (n >= sizeof path) n = sizeof path - 1;
  memcpy(path, s->url, n);
  path[n] = '\0';
  rc__format f = rc__format_from_path(path);
  return f == RC__FMT_AUTO ? RC__FMT_JSON : f;
}

/* The delay to the next poll: the interval less up to 10% (rc__remote_splay), then
 * moved earlier onto a boundary of the loop's clock, every interval/100 ms (at most
 * POLL_SLOT_MAX_MS). Polls of sources that fall in the same slot then run in one loop
 * turn and their answers arrive together: with 1,000 sources polling every second the
 * loop went from about 500 epoll_wait calls (and as many sleeps and wake-ups) a second
 * to about 110, and the CPU they cost by about a fifth (scripts/bench fleet). A poll
 * never comes later than the interval, and at most a slot earlier than the splay asked;
 * the splay still spreads the sources over the last tenth of it. */
static uint64_t next_poll_ms(http_source *s, uint64_t now) {
  uint64_t d = rc__remote_splay(&s->r, s->interval_ms);
  uint64_t slot = s->interval_ms / 100;
  if (slot > POLL_SLOT_MAX_MS) slot = POLL_SLOT_MAX_MS;
  if (slot < 2) return d;
  uint64_t due = (now + d) / slot * slot;
  return due > now ? due - now : d;
}

static void schedule_next(http_source *s) {
  rc__remote_schedule(&s->r, next_poll_ms(s, rc__remote_now(&s->r)));
}

/* The body of a 200 is parsed (maybe on the thread pool). */
static void parsed(rc__remote *r, int rc, rc_value_t *v, const rc_error *err) {
  http_source *s = (http_source *)r;
  if (rc) {
    /* No validators: the next poll must fetch (and judge) the body again rather than
     * get a 304 that would read as a recovery. */
    forget_validators(s);
    rc__remote_fail(r, err, 0);
    return;
  }
  s->have_body = true;
  rc__remote_success(r);
  rc__remote_deliver(r, v);
  schedule_next(s);
}

/* The server answered but nothing changed (a 304, or the same bytes): keep its
 * validators, report recovery if the source was failing, poll again later. */
static void unchanged(http_source *s, const rc__net_result *res) {
  rc__remote *r = &s->r;
  set_str(&s->etag, res->etag);
  set_str(&s->last_modified, res->last_modified);
  rc__remote_success(r);
  rc__remote_unchanged(r);
  schedule_next(s);
}

static void on_done(void *ud, rc__net_request *req, const rc__net_result *res) {
  RC__UNUSED(req);
  http_source *s = ud;
  rc__remote *r = &s->r;
  r->req = NULL;
  if (res->code == RC_ESTATE) return;  /* the network closed under us: we are stopping */
  rc__src_fetch_time(r->ctx, res->duration_ns);
  if (res->code) {
    rc__remote_fail(r, res->err, 0);
    return;
  }
  rc_error e = {0};
  if (res->status == 304) {
    unchanged(s, res);
    return;
  }
  if (res->status < 200 || res->status > 299) {
    rc__http_status_error(&e, s->url, res, NULL);
    bool busy = res->status == 429 || res->status == 503;
    rc__remote_fail(r, &e, busy ? rc__retry_after_ms(res->retry_after) : 0);
    return;
  }
  uint8_t digest[16];
  rc__digest128(res->body, res->body_len, digest);
  if (s->have_body && memcmp(digest, s->body_digest, sizeof digest) == 0) {
    unchanged(s, res);
    return;
  }
  /* The validators count only once the body proved good (parsed). */
  forget_validators(s);
  set_str(&s->etag, res->etag);
  set_str(&s->last_modified, res->last_modified);
  memcpy(s->body_digest, digest, sizeof digest);
  rc__remote_parse_then(r, body_format(s, res->content_type), res->body, res->body_len,
                        s->url, parsed);
}

/* Starts one GET. The Authorization line is built in a buffer that is wiped once
 * rc__net_start has copied it. */
static void poll_now(rc__remote *r) {
  http_source *s = (http_source *)r;
  if (r->req || r->job || r->stopping) return;
  rc_error e = {0};
  const char *token = rc__token_get(&r->token, &e);
  if (!token && e.code) {
    rc__remote_fail(r, &e, 0);
    return;
  }
  rc__net_header hs[HTTP_MAX_HEADERS + 3];
  size_t n = 0;
  for (size_t i = 0; s->headers && s->headers[i] && s->headers[i + 1] &&
                     n < HTTP_MAX_HEADERS; i += 2)
    hs[n++] = (rc__net_header){s->headers[i], s->headers[i + 1]};
  if (s->etag) hs[n++] = (rc__net_header){"If-None-Match", s->etag};
  /* RFC 9110 13.1.3: ignored next to If-None-Match; sent anyway for servers that only
   * keep dates. */
  if (s->last_modified) hs[n++] = (rc__net_header){"If-Modified-Since", s->last_modified};
  rc__buf auth;
  rc__buf_init(&auth);
  if (token) {
    rc__buf_adds(&auth, "Bearer ");
    rc__buf_adds(&auth, token);
    if (auth.oom) {
      rc__buf_free(&auth);
      rc__err(&e, RC_ENOMEM, s->url, 0, 0, "out of memory");
      rc__remote_fail(r, &e, 0);
      return;
    }
    hs[n++] = (rc__net_header){"Authorization", auth.p};
  }
  uint32_t t = r->timeout_ms;
  rc__net_req_opts o = {
    .url = s->url, .headers = hs, .nheaders = n, .total_ms = t,
    .connect_ms = t && t < RC__NET_CONNECT_MS_DEFAULT ? t : 0,
    .max_body = r->max_bytes, .max_redirects = HTTP_MAX_REDIRECTS,
    .ca_file = r->ca_file, .insecure = r->insecure, .http_version = s->http_version,
    .url_known = s->url_known, .queue = true,
  };
  rc__net_callbacks cb = {.done = on_done};
  r->req = rc__net_start(r->net, &o, &cb, s, &e);
  if (auth.p) explicit_bzero(auth.p, auth.n);
  rc__buf_free(&auth);
  if (!r->req) rc__remote_fail(r, &e, 0);
  else s->url_known = true;
}

static int http_start(rc__source *base, rc_error *err) {
  rc__remote *r = (rc__remote *)base;
  int rc = rc__remote_use_net(r, err);
  if (!rc) rc = rc__remote_start(r, poll_now, err);
  if (rc) return rc;
  /* The first value arrives with the first response; start never waits for it. */
  poll_now(r);
  return 0;
}

static void http_stop(rc__source *base, void (*done)(rc__source *)) {
  rc__remote_stop((rc__remote *)base, done);
}

static void http_rescan(rc__source *base) { poll_now((rc__remote *)base); }

static void http_free(rc__source *base) {
  http_source *s = (http_source *)base;
  rc__remote_free(&s->r);
  /* Header values may hold credentials a policy wrote inline. */
  for (size_t i = 0; s->headers && s->headers[i]; i++)
    explicit_bzero(s->headers[i], strlen(s->headers[i]));
  rc__opt_list_free(s->headers);
  forget_validators(s);
  rc__free(s);
}

static rc__source *http_create(rc__source_ctx *ctx, rc_error *err) {
  http_source *s = rc__remote_new(sizeof *s, ctx, err);
  if (!s) return NULL;
  s->url = rc__opt_string(ctx, "url");
  s->headers = rc__opt_list(ctx, "headers");
  s->interval_ms = (uint64_t)rc__opt_number(ctx, "interval_ms");
  if (s->interval_ms < 1) s->interval_ms = 1;
  s->fmt = rc__opt_format(ctx, RC__FMT_AUTO);
  const char *version = rc__opt_string(ctx, "http_version");
  s->http_version = version && !strcmp(version, "2") ? RC__NET_HTTP_2 : RC__NET_HTTP_1_1;
  if (!s->url) {
    rc__src_policy_error(ctx, err, "http source needs a url");
    http_free(&s->r.base);
    return NULL;
  }
  if (s->http_version == RC__NET_HTTP_2 && !strncmp(s->url, "http:", 5) &&
      !rc__net_h2c_supported()) {
    rc__src_policy_error(ctx, err, "http_version = \"2\" on an http:// URL needs libcurl "
                         "8.0 or newer (older ones cannot reuse such connections); use "
                         "https:// or \"1.1\"");
    http_free(&s->r.base);
    return NULL;
  }
  return &s->r.base;
}

static const rc__opt_default http_defaults[] = {
  RC__REMOTE_DEFAULTS, {"timeout_ms", 5000}, {"interval_ms", 1000}, {NULL, 0},
};

const rc__source_kind rc__http_kind = {
  .name = "http", .flags = RC__SRC_REMOTE, .defaults = http_defaults,
  RC__SOURCE_FUNCS(http),
};
