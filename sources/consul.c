/* SPDX-License-Identifier: MIT (see LICENSE) */
/* consul.c: the Consul KV source, by blocking queries (api-docs/features/blocking):
 * GET /v1/kv/<key>[?recurse]&index=<X-Consul-Index>&wait=<wait>. The rules every
 * client must follow, and which several well-known ones break:
 *  - the index going backwards (snapshot restore, tombstone GC) resets it to 0, and so
 *    does any failure: the first request after one is a plain read, not a blocking
 *    query on an index a restarted server may never reach;
 *  - an index is never below 1;
 *  - a return is no guarantee of a change: only different data is delivered;
 *  - a 404 still carries X-Consul-Index, so a missing key is awaited (value absent);
 *  - queries are rate limited (token bucket, burst 2), so churn or a server that never
 *    blocks degrades to polling instead of hammering;
 *  - a 400 is a configuration error (a rejected key): reported, retried only at the
 *    backoff ceiling;
 *  - with stale reads, an answer from a server out of touch with the leader for more
 *    than max_stale is read again once from the leader (consul-template's rule);
 *  - the ACL token goes in X-Consul-Token, never in the URL (it would end up in logs);
 *    a list filtered by ACLs (no token) is an error, not an empty prefix.
 * Hybrid: when blocking queries keep failing where a plain read might not (transport
 * error, timeout, 5xx: a proxy that cuts long requests; CONSUL_FALLBACK_AFTER in a row,
 * so that one blip stays an ordinary error), the failure is followed at once by a plain
 * GET; when that works the source polls with plain GETs every `poll_ms` and retries one
 * blocking query at a time, beside the polls, on its own backoff schedule, until one
 * answers; then it blocks again. */
#include "http_util.h"
#include "hybrid.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define CONSUL_BURST 2.0
/* Blocking queries failing in a row (transport, timeout, 5xx) before a plain GET is
 * tried in their place: the first failure is reported like any other. */
#define CONSUL_FALLBACK_AFTER 2

typedef struct consul_source {
  rc__remote r;
  const char *addr, *key, *prefix, *consistency;  /* borrowed from the options */
  char *shown;             /* the key's URL for messages (no query: no token there) */
  rc__format fmt;
  uint64_t wait_ms, rate_ms;
  uint64_t max_stale_ms;   /* stale reads: how far behind the leader is acceptable */
  bool fresh_next;         /* the next query skips ?stale (the last one was too old) */
  bool fresh_now;          /* the query in flight skipped it */
  uint64_t index;          /* last X-Consul-Index; 0 = read without blocking */
  double tokens;           /* rate limit bucket */
  uint64_t tokens_at;      /* uv_now of the last refill */
  /* Hybrid (see the top): the polls use r.req and r.timer; a blocking retry while
   * polling is `probe`, started by the hybrid timer. */
  rc__hybrid hy;
  rc__net_request *probe;  /* a blocking query tried while polling, or NULL */
  uint64_t probe_index;    /* the index that query blocks on */
  bool plain_next;         /* a blocking query failed: the next query is a plain GET */
  bool plain_now;          /* the query in flight is that plain GET */
  bool blocking_now;       /* the query in flight carries index + wait */
  bool reread_now;         /* a reload request: the next query does not block */
  uint32_t blocking_fails; /* blocking queries failed in a row (fallback kinds only) */
  char why[200];           /* how the blocking query failed, for the event */
} consul_source;

static void query(rc__remote *r);

/* ---- values ---- */

/* The bytes of one KV entry (base64 `Value`, null = empty) parsed by format. */
static int entry_value(consul_source *s, const rc_value_t *entry, const char *url,
                       rc_value_t **out, rc_error *e) {
  long i = rc__object_find(entry, "Value", 5);
  const rc_value_t *b64 = i >= 0 ? entry->u.members[i].val : NULL;
  if (!b64 || b64->type == RC_TYPE_NULL) {
    *out = s->fmt == RC__FMT_TEXT ? rc__value_string("", 0) : rc__value_null();
    return *out ? 0 : rc__err(e, RC_ENOMEM, url, 0, 0, "out of memory");
  }
  rc__buf raw;
  rc__buf_init(&raw);
  int rc = 0;
  if (b64->type != RC_TYPE_STRING || !rc__base64_decode(b64->u.s, b64->len, &raw)) {
    rc = rc__err(e, raw.oom ? RC_ENOMEM : RC_EPARSE, url, 0, 0,
                 "Consul returned a Value that is not base64");
  } else {
    rc = rc__remote_parse(&s->r, s->fmt, raw.p ? raw.p : "", raw.n, url, out, e);
  }
  rc__buf_free(&raw);
  return rc;
}

/* The value of a 200 response: the key's parsed value, or for a prefix an object of
 * keys relative to the prefix (folders, i.e. keys ending in '/', left out). */
static int response_value(consul_source *s, const rc__net_result *res, const char *url,
                          rc_value_t **out, rc_error *e) {
  rc_value_t *arr = NULL;
  *out = NULL;
  int rc = rc__remote_parse(&s->r, RC__FMT_JSON, res->body, res->body_len, url, &arr, e);
  if (rc) return rc;
  if (arr->type != RC_TYPE_ARRAY) {
    rc__value_unref(arr);
    return rc__err(e, RC_EPARSE, url, 0, 0, "Consul returned JSON that is not an array");
  }
  if (s->key) {
    const rc_value_t *entry = arr->len ? arr->u.items[0] : NULL;
    if (!entry || entry->type != RC_TYPE_OBJECT) {
      rc__value_unref(arr);
      return rc__err(e, RC_EPARSE, url, 0, 0, "Consul returned no KV entry");
    }
    rc = entry_value(s, entry, url, out, e);
    rc__value_unref(arr);
    return rc;
  }
  size_t plen = strlen(s->prefix);
  rc__object_builder b;
  rc__object_begin(&b);
  for (uint32_t i = 0; rc == 0 && i < arr->len; i++) {
    const rc_value_t *entry = arr->u.items[i];
    long k = entry->type == RC_TYPE_OBJECT ? rc__object_find(entry, "Key", 3) : -1;
    const rc_value_t *key = k >= 0 ? entry->u.members[k].val : NULL;
    if (!key || key->type != RC_TYPE_STRING || key->len < plen) continue;
    const char *rel = key->u.s + plen;
    size_t rlen = key->len - plen;
    if (rlen == 0 || rel[rlen - 1] == '/') continue;
    char where[512];
    snprintf(where, sizeof where, "%s (key %s)", url, key->u.s);
    rc_value_t *v = NULL;
    rc = entry_value(s, entry, where, &v, e);
    if (rc == 0) rc__object_put(&b, rel, rlen, v);
  }
  rc__value_unref(arr);
  if (rc) {
    rc__object_abort(&b);
    return rc;
  }
  *out = rc__object_end(&b);
  return *out ? 0 : rc__err(e, RC_ENOMEM, url, 0, 0, "out of memory");
}

/* ---- the loop ---- */

/* Takes a rate-limit token, or returns how long until one is there. */
static uint64_t take_token(consul_source *s) {
  uint64_t now = rc__remote_now(&s->r);
  if (s->rate_ms == 0) return 0;
  s->tokens += (double)(now - s->tokens_at) / (double)s->rate_ms;
  if (s->tokens > CONSUL_BURST) s->tokens = CONSUL_BURST;
  s->tokens_at = now;
  if (s->tokens >= 1.0) {
    s->tokens -= 1.0;
    return 0;
  }
  uint64_t wait = (uint64_t)((1.0 - s->tokens) * (double)s->rate_ms) + 1;
  return wait;
}

/* The next query: on the next loop turn; query() waits for a rate-limit token. */
static void next_query(consul_source *s) { rc__remote_schedule(&s->r, 0); }

/* Blocking queries keep failing in a way a plain GET might not (a transport error or
 * timeout, a 5xx without Retry-After: e.g. a proxy that cuts long requests): with the
 * fallback on, try a plain GET at once instead of reporting; true when that is what
 * happens. A server asking for a pause (Retry-After) gets it instead. */
static bool fall_back(consul_source *s, const rc__net_result *res) {
  if (!s->blocking_now || !rc__hybrid_enabled(&s->hy) || s->hy.polling) return false;
  bool kind = res->code == RC_EIO ||
              (res->code == 0 && res->status >= 500 && !res->retry_after);
  if (!kind || ++s->blocking_fails < CONSUL_FALLBACK_AFTER) return false;
  if (res->code == RC_EIO) {
    snprintf(s->why, sizeof s->why, "%.180s", res->err ? res->err->message : "no answer");
  } else {
    rc_error e = {0};
    rc__http_status_error(&e, s->shown, res, NULL);
    snprintf(s->why, sizeof s->why, "%.180s", e.message);
  }
  s->plain_next = true;
  next_query(s);
  return true;
}

/* The next query after a good answer: a poll after the poll interval while falling
 * back, else the next blocking query. */
static void after_answer(consul_source *s) {
  if (s->hy.polling) rc__remote_schedule(&s->r, rc__hybrid_poll_delay(&s->hy));
  else next_query(s);
}

/* A failed answer: the next request is a plain read, not a blocking query on the old
 * index. A server that came back may be a new one whose index starts lower (a restart
 * without its data, a restore): a query on the old index would sit there for the whole
 * wait before anything new were seen. */
static void failed(consul_source *s, const rc_error *e, uint64_t retry_after_ms) {
  s->index = 0;
  rc__remote_fail(&s->r, e, retry_after_ms);
}

static void on_done(void *ud, rc__net_request *req, const rc__net_result *res) {
  consul_source *s = ud;
  rc__remote *r = &s->r;
  r->req = NULL;
  if (res->code == RC_ESTATE) return;
  /* A blocking query waits for a change: its time is no fetch's. */
  if (!s->blocking_now) rc__src_fetch_time(r->ctx, res->duration_ns);
  if (fall_back(s, res)) return;
  /* The plain GET after a failed blocking query decides: it works (poll from now on) or
   * it is an ordinary failure (and the next try blocks again). */
  bool plain = s->plain_now;
  s->plain_now = false;
  if (res->code) {
    failed(s, res->err, 0);
    return;
  }
  const char *url = s->shown;
  rc_error e = {0};
  if (res->status == 400) {
    rc__http_status_error(&e, url, res, "Consul rejected the request (check the key)");
    rc__src_error(r->ctx, &e);
    s->index = 0;
    /* A configuration error does not heal by retrying soon. */
    rc__remote_schedule(r, r->backoff.max_ms);
    return;
  }
  if (res->status != 200 && res->status != 404) {
    rc__http_status_error(&e, url, res, res->status == 403 ? "permission denied" : NULL);
    bool busy = res->status == 429 || res->status == 503;
    failed(s, &e, busy ? rc__retry_after_ms(res->retry_after) : 0);
    return;
  }
  /* Lists are filtered, not refused, without read rights: an empty prefix would
   * otherwise read as "all keys deleted" (the empty-config failure of other tools). */
  const char *filtered = rc__net_header_value(req, "X-Consul-Results-Filtered-By-ACLs");
  if (filtered && strcmp(filtered, "true") == 0) {
    rc__err(&e, RC_EIO, url, 0, 0, "Consul filtered the results by ACL: the token is "
            "missing or lacks key:read on this prefix (the last value stays)");
    failed(s, &e, 0);
    return;
  }
  if (!s->fresh_now && s->consistency && strcmp(s->consistency, "stale") == 0) {
    const char *lc = rc__net_header_value(req, "X-Consul-LastContact");
    const char *kl = rc__net_header_value(req, "X-Consul-KnownLeader");
    bool old = lc && strtoull(lc, NULL, 10) > s->max_stale_ms;
    if (old || (kl && strcmp(kl, "false") == 0)) {
      s->fresh_next = true;  /* too old to trust: ask the leader once */
      s->plain_next = plain;
      next_query(s);
      return;
    }
  }
  char *end = NULL;
  const char *index = rc__net_header_value(req, "X-Consul-Index");
  unsigned long long idx = index ? strtoull(index, &end, 10) : 0;
  if (!index || end == index) {
    rc__err(&e, RC_EIO, url, 0, 0, "no X-Consul-Index in the response: is this Consul?");
    failed(s, &e, 0);
    return;
  }
  bool same = s->index && idx == s->index;
  if (idx < s->index) {
    /* Backwards (snapshot restore, GC): start over with a non-blocking read. */
    s->index = 0;
  } else {
    s->index = idx < 1 ? 1 : idx;
  }
  rc__remote_success(r);
  /* Only a blocking query that answered shows blocking works: the plain read after a
   * failure must not hide blocking queries that keep failing (the fallback counts them). */
  if (s->blocking_now) s->blocking_fails = 0;
  if (plain) rc__hybrid_enter(&s->hy, s->shown, s->why);
  if (same && r->delivered) {
    rc__remote_unchanged(r);
  } else if (res->status == 404) {
    rc__remote_deliver(r, NULL);  /* missing: absent, and awaited from this index */
  } else {
    rc_value_t *v = NULL;
    if (response_value(s, res, url, &v, &e) != 0) {
      /* Keep the last value; re-read without blocking after the backoff. */
      failed(s, &e, 0);
      return;
    }
    rc__remote_deliver(r, v);
  }
  if (!r->stopping) after_answer(s);
}

/* Starts a GET of the key or prefix: blocking (index + wait) when `blocking`, else a
 * plain read. `fresh` leaves out the consistency mode (a read from the leader). */
static rc__net_request *start_get(consul_source *s, bool blocking, bool fresh,
                                  rc__net_done_fn done, rc_error *e) {
  rc__remote *r = &s->r;
  const char *token = rc__token_get(&r->token, e);
  if (!token && e->code) return NULL;
  rc__buf url;
  rc__buf_init(&url);
  rc__buf_adds(&url, s->addr);
  rc__buf_adds(&url, "/v1/kv/");
  rc__url_path_escape(&url, s->key ? s->key : s->prefix);
  char sep = '?';
  if (s->prefix) {
    rc__buf_adds(&url, "?recurse");
    sep = '&';
  }
  if (s->consistency && !fresh) {
    rc__buf_printf(&url, "%c%s", sep, s->consistency);
    sep = '&';
  }
  if (blocking)
    rc__buf_printf(&url, "%cindex=%llu&wait=%llums", sep, (unsigned long long)s->index,
                   (unsigned long long)s->wait_ms);
  rc__net_header hs[1];
  size_t n = 0;
  if (token) hs[n++] = (rc__net_header){"X-Consul-Token", token};
  /* The server may hold the query for wait + wait/16 (its jitter). */
  uint64_t total = (blocking ? s->wait_ms + s->wait_ms / 16 : 0) + r->timeout_ms;
  rc__net_req_opts o = {
    .url = url.p, .headers = hs, .nheaders = n,
    .total_ms = total > UINT32_MAX ? UINT32_MAX : (uint32_t)total,
    .connect_ms = r->timeout_ms < RC__NET_CONNECT_MS_DEFAULT ? r->timeout_ms : 0,
    .max_body = r->max_bytes, .ca_file = r->ca_file, .insecure = r->insecure,
  };
  rc__net_callbacks cb = {.done = done};
  rc__net_request *req = NULL;
  if (url.oom) rc__err(e, RC_ENOMEM, s->addr, 0, 0, "out of memory");
  else req = rc__net_start(r->net, &o, &cb, s, e);
  rc__buf_free(&url);
  return req;
}

static void query(rc__remote *r) {
  consul_source *s = (consul_source *)r;
  if (r->req || r->stopping) return;
  uint64_t wait = take_token(s);
  if (wait) {
    rc__remote_schedule(r, wait);
    return;
  }
  rc_error e = {0};
  s->fresh_now = s->fresh_next;
  s->fresh_next = false;
  s->plain_now = s->plain_next;
  s->plain_next = false;
  /* Polls and the plain GET that decides on polling never block. */
  s->blocking_now = s->index && !s->fresh_now && !s->plain_now && !s->hy.polling &&
                   !s->reread_now;
  s->reread_now = false;
  r->req = start_get(s, s->blocking_now, s->fresh_now, on_done, &e);
  if (!r->req) {
    s->plain_now = false;
    rc__remote_fail(r, &e, 0);
  }
}

/* ---- hybrid: a blocking query retried while polling ---- */

static void on_probe_done(void *ud, rc__net_request *req, const rc__net_result *res) {
  consul_source *s = ud;
  rc__remote *r = &s->r;
  s->probe = NULL;
  if (res->code == RC_ESTATE) return;
  const char *index = rc__net_header_value(req, "X-Consul-Index");
  bool ok = res->code == 0 && (res->status == 200 || res->status == 404) && index;
  if (!ok || !s->hy.polling) {
    rc__hybrid_retry_later(&s->hy);
    return;
  }
  unsigned long long idx = strtoull(index, NULL, 10);
  /* A query that lasted its whole wait (same index) shows that long queries work again.
   * One back early because the data changed shows only that short ones get through (a
   * proxy may cut requests open for some seconds): its answer is taken like a poll's,
   * polling goes on, and the next blocking query starts at once from the new index. */
  bool whole_wait = idx == s->probe_index;
  rc__net_cancel(r->req);  /* this answer replaces the poll in flight */
  r->req = NULL;
  if (whole_wait) rc__hybrid_leave(&s->hy, s->shown);
  if (idx < s->index) {
    /* A poll answered after this query returned and saw newer data: keep that. */
    rc__remote_success(r);
    if (whole_wait) {
      next_query(s);
    } else {
      after_answer(s);
      rc__hybrid_arm(&s->hy, 0);
    }
    return;
  }
  s->fresh_now = false;
  s->plain_now = false;
  s->blocking_now = whole_wait;
  on_done(ud, req, res);
  if (!whole_wait && !r->stopping) rc__hybrid_arm(&s->hy, 0);
}

/* The hybrid timer: while polling, try one blocking query from the index the polls saw
 * (a query below it would answer at once and prove nothing). */
static void probe(rc__remote *r) {
  consul_source *s = (consul_source *)r;
  if (s->probe || !s->hy.polling) return;
  if (!s->index) {
    rc__hybrid_retry_later(&s->hy);
    return;
  }
  rc_error e = {0};
  s->probe_index = s->index;
  s->probe = start_get(s, true, false, on_probe_done, &e);
  if (!s->probe) rc__hybrid_retry_later(&s->hy);
}

static int consul_start(rc__source *base, rc_error *err) {
  consul_source *s = (consul_source *)base;
  int rc = rc__remote_use_net(&s->r, err);
  if (!rc) rc = rc__remote_start(&s->r, query, err);
  if (!rc) rc = rc__hybrid_start(&s->hy, probe, err);
  if (rc) return rc;
  s->tokens = CONSUL_BURST;
  s->tokens_at = rc__remote_now(&s->r);
  query(&s->r);
  return 0;
}

static void consul_stop(rc__source *base, void (*done)(rc__source *)) {
  consul_source *s = (consul_source *)base;
  rc__net_cancel(s->probe);
  s->probe = NULL;
  rc__hybrid_stop(&s->hy);
  rc__remote_stop(&s->r, done);
}

/* A reload request: a blocking query in flight gives way to a plain read now (not
 * held back by the rate limit), after which blocking starts over from its index. */
static void consul_rescan(rc__source *base) {
  consul_source *s = (consul_source *)base;
  rc__remote *r = &s->r;
  if (r->stopping) return;
  if (r->req && s->blocking_now) {
    rc__net_cancel(r->req);
    r->req = NULL;
  }
  if (r->req || r->job) return; /* a plain read in flight answers the request */
  if (s->tokens < 1.0) s->tokens = 1.0;
  s->reread_now = true;
  rc__remote_schedule(r, 0);
}

static void consul_free(rc__source *base) {
  consul_source *s = (consul_source *)base;
  rc__remote_free(&s->r);
  rc__free(s->shown);
  rc__free(s);
}

static rc__source *consul_create(rc__source_ctx *ctx, rc_error *err) {
  consul_source *s = rc__remote_new(sizeof *s, ctx, err);
  if (!s) return NULL;
  s->addr = rc__opt_string(ctx, "addr");
  s->key = rc__opt_string(ctx, "consul_key");
  s->prefix = rc__opt_string(ctx, "prefix");
  s->consistency = rc__opt_string(ctx, "consistency");
  s->wait_ms = (uint64_t)rc__opt_number(ctx, "wait_ms");
  s->rate_ms = (uint64_t)rc__opt_number(ctx, "rate_limit_ms");
  s->max_stale_ms = (uint64_t)rc__opt_number(ctx, "max_stale_ms");
  rc__hybrid_init(&s->hy, &s->r, "consul blocking query", "blocking queries work again");
  s->fmt = rc__opt_format(ctx, RC__FMT_JSON);
  if (s->fmt == RC__FMT_AUTO) s->fmt = RC__FMT_JSON;
  rc__buf shown;
  rc__buf_init(&shown);
  rc__buf_printf(&shown, "%s/v1/kv/%s", s->addr ? s->addr : "", s->key ? s->key
                 : s->prefix ? s->prefix : "");
  s->shown = shown.oom ? NULL : rc__buf_take(&shown);
  rc__buf_free(&shown);
  if (!s->addr || (!s->key == !s->prefix) || !s->shown) {
    if (s->shown)
      rc__src_policy_error(ctx, err, "consul source needs an addr and one of key or prefix");
    else
      rc__err(err, RC_ENOMEM, NULL, 0, 0, "out of memory");
    consul_free(&s->r.base);
    return NULL;
  }
  return &s->r.base;
}

static const rc__opt_default consul_defaults[] = {
  RC__REMOTE_DEFAULTS, {"timeout_ms", 10000}, {"wait_ms", 300000},
  {"rate_limit_ms", 250}, {"max_stale_ms", 2000}, {"poll_ms", 1000}, {NULL, 0},
};

const rc__source_kind rc__consul_kind = {
  .name = "consul", .flags = RC__SRC_REMOTE, .defaults = consul_defaults,
  RC__SOURCE_FUNCS(consul),
};
