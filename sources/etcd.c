/* SPDX-License-Identifier: MIT (see LICENSE) */
/* etcd.c: the etcd v3 source, through the JSON gateway (observed behaviour:
 * spec/servers/ETCD-GATEWAY.md): authenticate (with a user), range the key or prefix,
 * deliver, then one watch stream from the range's revision + 1 that applies events and
 * delivers once per message.
 * A broken stream (a member killed, "no leader", a silent peer) is resumed on the next
 * endpoint from the last applied mod_revision + 1: etcd replays every event since, so
 * nothing is lost or repeated and a fleet does not re-read whole prefixes after each
 * blip. Only when history is gone (compaction), the store went back (a restore) or the
 * cluster changed is the state rebuilt from a full range, delivered only if it differs.
 * Failures move to the next endpoint: at once while some endpoint is untried, then
 * with backoff; the last value stays meanwhile.
 * Hybrid: when the watch cannot be established (no "created" within the unary timeout,
 * or a failure) or dies right after (before it has been up ETCD_WATCH_STABLE_MS),
 * ETCD_FALLBACK_AFTER times in a row and on every endpoint in turn, a range is tried at
 * once; if it works, the source polls with ranges every `poll_ms` (delivered only if
 * different, as after a compaction) and retries the watch on its own backoff schedule,
 * one request at a time: a retry is a watch from the last polled revision + 1 that must
 * be created within the unary timeout and then stay up ETCD_WATCH_STABLE_MS, after
 * which polling stops and the watch goes on. */
#include "http_util.h"
#include "hybrid.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The server sends a progress notification every 10 min on an idle watch (we ask for
 * them); a stream silent for longer than this is taken as dead and reopened. */
#define ETCD_WATCH_SILENT_S 660
/* Kept of a non-200 watch body, for the error message. */
#define ETCD_ERRBODY_MAX 512
/* A watch up this long is working: its end is a break to resume, not a watch that
 * cannot work (hybrid). A guess: long enough to see a proxy cut it, short enough that
 * the polling it ends does not linger. */
#define ETCD_WATCH_STABLE_MS 1000
/* Watches failing in a row (and at least one per endpoint) before a range is tried in
 * their place: a single break is reported like any other. */
#define ETCD_FALLBACK_AFTER 2

typedef struct etcd_source {
  rc__remote r;
  char **endpoints;        /* base URLs, no trailing '/' */
  size_t nend, cur;        /* how many; the one in use */
  size_t tried;            /* endpoints failed since the last working watch */
  const char *key;         /* the key, or the prefix (borrowed from the options) */
  bool prefix;
  char *key_b64, *end_b64; /* request fields; end_b64 NULL for a single key */
  const char *user, *password_env;  /* borrowed from the options */
  char *auth;              /* token from /v3/auth/authenticate (a secret), or NULL */
  bool auth_retried;       /* one re-authentication per failure, not a loop */
  rc__format fmt;
  rc_value_t *state;       /* key: its value (NULL = absent); prefix: rel key -> value */
  bool synced;             /* `state` and `next_rev` come from a range (else: range) */
  int64_t next_rev;        /* the watch starts here: every earlier revision is applied */
  char *cluster_id;        /* of the last range, to notice a different cluster */
  /* Paging a prefix's range (`page` keys per request, 0 = one request): every page is
   * read at the first page's revision, so together they are one snapshot. */
  uint32_t page;
  int64_t page_rev;        /* the first page's revision; 0 = no paged range going on */
  char *page_from;         /* base64 key the next page starts at (last key + "\0") */
  rc_value_t **kvs;        /* owned refs: the kvs of the pages read so far */
  size_t nkvs, kvs_cap;
  rc__buf line;            /* watch: an incomplete line; or a non-200 body */
  bool ended;              /* the watch in flight was ended by one of its messages */
  /* Hybrid (see the top). */
  rc__hybrid hy;
  bool watching;           /* the request in flight is the watch */
  uint64_t created_at;     /* uv_now when that watch was created; 0 = not (yet) */
  uint32_t unstable;       /* watches failed in a row before being up for long */
  bool trying_poll;        /* the next range decides whether polling works */
  bool probing;            /* the watch in flight is a retry while polling */
  char why[200];           /* how the watch failed, for the event */
} etcd_source;

static void begin(rc__remote *r);
static void watch(etcd_source *s);
static void range(etcd_source *s);
static void next_step(etcd_source *s);

/* ===================================================================================
 * Small helpers
 * =================================================================================== */

static void b64_encode(rc__buf *b, const unsigned char *p, size_t n) {
  static const char t[] =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  for (size_t i = 0; i < n; i += 3) {
    uint32_t v = (uint32_t)p[i] << 16;
    if (i + 1 < n) v |= (uint32_t)p[i + 1] << 8;
    if (i + 2 < n) v |= p[i + 2];
    rc__buf_addc(b, t[(v >> 18) & 63]);
    rc__buf_addc(b, t[(v >> 12) & 63]);
    rc__buf_addc(b, i + 1 < n ? t[(v >> 6) & 63] : '=');
    rc__buf_addc(b, i + 2 < n ? t[v & 63] : '=');
  }
}

static char *b64_dup(const void *p, size_t n) {
  rc__buf b;
  rc__buf_init(&b);
  b64_encode(&b, p, n);
  rc__buf_addc(&b, '\0');
  if (b.oom) {
    rc__buf_free(&b);
    return NULL;
  }
  return rc__buf_take(&b);
}

/* Appends `s` as a JSON string literal. */
static void json_str(rc__buf *b, const char *s) {
  rc__buf_addc(b, '"');
  for (; *s; s++) {
    unsigned char ch = (unsigned char)*s;
    if (ch == '"' || ch == '\\') {
      rc__buf_addc(b, '\\');
      rc__buf_addc(b, (char)ch);
    } else if (ch < 0x20) {
      rc__buf_printf(b, "\\u%04x", ch);
    } else {
      rc__buf_addc(b, (char)ch);
    }
  }
  rc__buf_addc(b, '"');
}

/* An int64 field: the gateway sends them as strings (they may need 64 bits), and omits
 * zeros. Returns `dflt` when absent or malformed. */
static int64_t json_i64(const rc_value_t *o, const char *k, int64_t dflt) {
  const rc_value_t *v = rc__object_get(o, k);
  if (!v) return dflt;
  if (v->type == RC_TYPE_INT) return v->u.i;
  if (v->type != RC_TYPE_STRING) return dflt;
  char *end;
  long long n = strtoll(v->u.s, &end, 10);
  return end == v->u.s || *end ? dflt : (int64_t)n;
}

static bool json_true(const rc_value_t *o, const char *k) {
  const rc_value_t *v = rc__object_get(o, k);
  return v && v->type == RC_TYPE_BOOL && v->u.b;
}

static const char *json_string(const rc_value_t *o, const char *k) {
  const rc_value_t *v = rc__object_get(o, k);
  return v && v->type == RC_TYPE_STRING ? v->u.s : NULL;
}

static const char *endpoint(const etcd_source *s) { return s->endpoints[s->cur]; }

/* ===================================================================================
 * Outcomes
 * =================================================================================== */

/* Ends the request in flight (we are inside its callbacks or about to replace it). A
 * watch retried while polling that ends this way failed: the next retry after the
 * backoff. */
static void drop_request(etcd_source *s) {
  rc__net_cancel(s->r.req);
  s->r.req = NULL;
  s->ended = true;
  s->watching = false;
  s->created_at = 0;
  if (s->probing) {
    s->probing = false;
    rc__hybrid_retry_later(&s->hy);
  }
}

/* A failure of the watch (hybrid). While polling, a retried watch that fails is not
 * reported: polling goes on (a poll at once) and the watch is retried later. Else,
 * when the watch failed on every endpoint in turn without staying up, a range is tried
 * at once instead of reporting: if it works the source polls. True when handled. */
static bool watch_failed(etcd_source *s, const rc_error *e) {
  if (!s->watching) return false;
  if (s->probing) {
    drop_request(s);
    rc__remote_schedule(&s->r, 0);
    return true;
  }
  if (!rc__hybrid_enabled(&s->hy) || s->hy.polling) return false;
  uint64_t now = rc__remote_now(&s->r);
  if (s->created_at && now - s->created_at >= ETCD_WATCH_STABLE_MS) {
    s->unstable = 0;  /* it worked for a while: a break to resume, as usual */
    return false;
  }
  /* The next member's watch may work; and one failure is no pattern yet. */
  if (++s->unstable < s->nend || s->unstable < ETCD_FALLBACK_AFTER) return false;
  s->unstable = 0;
  snprintf(s->why, sizeof s->why, "%.180s", e->message);
  s->trying_poll = true;
  drop_request(s);
  rc__remote_schedule(&s->r, 0);
  return true;
}

/* A failure of the current endpoint: reported (the last value stays), then the next
 * endpoint is tried, at once while some endpoint is untried since the last success
 * (a dead member should cost no backoff when another one serves), else after the
 * backoff. */
static void fail_over(etcd_source *s, const rc_error *e) {
  rc__remote *r = &s->r;
  if (watch_failed(s, e)) return;
  s->trying_poll = false;  /* the range deciding on polling failed: ordinary failure */
  drop_request(s);
  s->cur = (s->cur + 1) % s->nend;
  if (++s->tried < s->nend) {
    rc__src_error(r->ctx, e);
    rc__remote_schedule(r, 0);
  } else {
    rc__remote_fail(r, e, 0);
  }
}

/* A failure no other endpoint would fix (bad credentials, no permission): reported,
 * retried after the backoff on the same endpoint. */
static void fail_here(etcd_source *s, const rc_error *e) {
  if (s->probing && watch_failed(s, e)) return;
  s->trying_poll = false;
  drop_request(s);
  rc__remote_fail(&s->r, e, 0);
}

/* 401 "invalid auth token": with a user, authenticate again (once) and start over. */
static bool reauth(etcd_source *s) {
  if (!s->user || s->auth_retried) return false;
  s->auth_retried = true;
  if (s->auth) explicit_bzero(s->auth, strlen(s->auth));
  rc__free(s->auth);
  s->auth = NULL;
  drop_request(s);
  rc__remote_schedule(&s->r, 0);
  return true;
}

/* History we need is gone or no longer ours: ends the watch and rebuilds the state from
 * a full range (delivered only if it differs). Said in a component.state event, as it
 * costs a full read. */
static void resync(etcd_source *s, const char *why) {
  rc__src_state(s->r.ctx, endpoint(s), 0, "etcd: %s; reading the %s again", why,
                s->prefix ? "prefix" : "key");
  s->synced = false;
  drop_request(s);
  rc__remote_schedule(&s->r, 0);
}

/* A unary call failed at the HTTP level: the right kind of retry for its status. */
static void http_failure(etcd_source *s, const rc__net_result *res, const char *what) {
  rc_error e = {0};
  if (res->code) {
    fail_over(s, res->err);
    return;
  }
  if (res->status == 401 && reauth(s)) return;
  rc__http_status_error(&e, endpoint(s), res, what);
  /* 5xx: this member cannot serve (no quorum, timing out); 4xx: it would be the same
   * everywhere. */
  if (res->status >= 500 || res->status == 404) fail_over(s, &e);
  else fail_here(s, &e);
}

/* ===================================================================================
 * Values
 * =================================================================================== */

/* The value of one kv's base64 `value`, parsed by format (empty: "" for text, else
 * null, as an empty etcd value has no JSON reading). */
static int kv_value(etcd_source *s, const rc_value_t *kv, const char *where,
                    rc_value_t **out, rc_error *e) {
  const char *b64 = json_string(kv, "value");
  if (!b64 || !*b64) {
    *out = s->fmt == RC__FMT_TEXT ? rc__value_string("", 0) : rc__value_null();
    return *out ? 0 : rc__err(e, RC_ENOMEM, where, 0, 0, "out of memory");
  }
  rc__buf raw;
  rc__buf_init(&raw);
  int rc;
  if (!rc__base64_decode(b64, strlen(b64), &raw))
    rc = rc__err(e, raw.oom ? RC_ENOMEM : RC_EPARSE, where, 0, 0,
                 "etcd returned a value that is not base64");
  else
    rc = rc__remote_parse(&s->r, s->fmt, raw.p ? raw.p : "", raw.n, where, out, e);
  rc__buf_free(&raw);
  return rc;
}

/* The key of a kv, decoded, NUL-terminated, into `k`; false when unusable (not base64,
 * a NUL inside, outside the prefix, or the prefix itself). *rel is the part after the
 * prefix. */
static bool kv_key(const etcd_source *s, const rc_value_t *kv, rc__buf *k,
                   const char **rel) {
  const char *b64 = json_string(kv, "key");
  if (!b64 || !rc__base64_decode(b64, strlen(b64), k)) return false;
  rc__buf_addc(k, '\0');
  if (k->oom || strlen(k->p) != k->n - 1) return false;
  size_t plen = strlen(s->key);
  if (!s->prefix) {
    *rel = k->p;
    return strcmp(k->p, s->key) == 0;
  }
  if (k->n - 1 <= plen || memcmp(k->p, s->key, plen) != 0) return false;
  *rel = k->p + plen;
  return true;
}

/* The value a relative key had before (borrowed; NULL if none). */
static const rc_value_t *old_value(const etcd_source *s, const char *rel) {
  if (!s->prefix) return s->state;
  long i = s->state ? rc__object_find(s->state, rel, strlen(rel)) : -1;
  return i >= 0 ? s->state->u.members[i].val : NULL;
}

/* A value that does not parse is reported and the key keeps the value it had: one bad
 * write must not empty a configuration. */
static rc_value_t *value_or_old(etcd_source *s, const rc_value_t *kv, const char *key,
                                const char *rel) {
  char where[512];
  snprintf(where, sizeof where, "%s (key %s)", endpoint(s), key);
  rc_error e = {0};
  rc_value_t *v = NULL;
  if (kv_value(s, kv, where, &v, &e) == 0) return v;
  rc__src_error(s->r.ctx, &e);
  return rc__value_ref(old_value(s, rel));
}

/* Replaces the state by `n` kvs of a range (all its pages, in key order). Returns 0 or
 * RC_ENOMEM. */
static int state_from_range(etcd_source *s, rc_value_t *const *kvs, size_t n) {
  rc__buf k;
  rc__buf_init(&k);
  rc_value_t *next = NULL;
  if (!s->prefix) {
    for (size_t i = 0; i < n; i++) {
      const char *rel;
      rc__buf_reset(&k);
      if (kv_key(s, kvs[i], &k, &rel)) {
        next = value_or_old(s, kvs[i], k.p, rel);
        break;
      }
    }
    rc__buf_free(&k);
    rc__value_unref(s->state);
    s->state = next;
    return 0;
  }
  /* kvs come sorted by key: one pass through a builder. */
  rc__object_builder b;
  rc__object_begin(&b);
  for (size_t i = 0; i < n; i++) {
    const char *rel;
    rc__buf_reset(&k);
    if (!kv_key(s, kvs[i], &k, &rel)) continue;
    rc_value_t *v = value_or_old(s, kvs[i], k.p, rel);
    if (v) rc__object_put(&b, rel, strlen(rel), v);
  }
  rc__buf_free(&k);
  next = rc__object_end(&b);
  if (!next) return RC_ENOMEM;
  rc__value_unref(s->state);
  s->state = next;
  return 0;
}

/* Applies one watch event (a PUT has no "type"; a DELETE's kv has no value). */
static int apply_event(etcd_source *s, const rc_value_t *ev) {
  const rc_value_t *kv = rc__object_get(ev, "kv");
  const char *type = json_string(ev, "type");
  bool del = type && strcmp(type, "DELETE") == 0;
  rc__buf k;
  rc__buf_init(&k);
  const char *rel;
  int rc = 0;
  if (kv_key(s, kv, &k, &rel)) {
    rc_value_t *v = del ? NULL : value_or_old(s, kv, k.p, rel);
    if (!s->prefix) {
      rc__value_unref(s->state);
      s->state = v;
    } else {
      rc_value_t *next = rc__object_with(s->state, rel, v);
      if (next) {
        rc__value_unref(s->state);
        s->state = next;
      } else {
        rc = RC_ENOMEM;
      }
    }
  }
  rc__buf_free(&k);
  return rc;
}

/* ===================================================================================
 * Requests
 * =================================================================================== */

/* Starts a POST of `body` to `path` on the current endpoint. Watch streams send
 * hasleader, so that a member cut off from the leader ends the stream instead of
 * staying silent. Returns false (and has failed over) when it could not start. */
static bool post(etcd_source *s, const char *path, const rc__buf *body, bool stream,
                 rc__net_done_fn done, rc__net_data_fn data, bool with_auth) {
  rc__remote *r = &s->r;
  s->watching = stream;
  s->created_at = 0;
  rc_error e = {0};
  const char *token = NULL;
  if (with_auth) {
    token = s->auth;
    if (!token && !s->user) {
      token = rc__token_get(&r->token, &e);
      if (!token && e.code) {
        fail_here(s, &e);
        return false;
      }
    }
  }
  rc__buf url;
  rc__buf_init(&url);
  rc__buf_adds(&url, endpoint(s));
  rc__buf_adds(&url, path);
  rc__net_header hs[3];
  size_t n = 0;
  hs[n++] = (rc__net_header){"Content-Type", "application/json"};
  if (token) hs[n++] = (rc__net_header){"Authorization", token};  /* bare, no Bearer */
  if (stream) hs[n++] = (rc__net_header){"Grpc-Metadata-hasleader", "true"};
  uint32_t t = r->timeout_ms;
  rc__net_req_opts o = {
    .url = url.p, .method = RC__NET_POST, .body = body->p, .body_len = body->n,
    .headers = hs, .nheaders = n,
    /* Always a deadline on unary calls: a token naming a raft index far ahead makes
     * etcd hold the request until the cluster gets there. */
    .total_ms = stream ? 0 : t,
    .connect_ms = t < RC__NET_CONNECT_MS_DEFAULT ? t : 0,
    .low_speed_bytes = stream ? 1 : 0, .low_speed_secs = stream ? ETCD_WATCH_SILENT_S : 0,
    /* A stream's limit would count every byte it ever carries: watch lines are
     * bounded one by one in on_watch_data instead. */
    .max_body = stream ? 0 : r->max_bytes, .ca_file = r->ca_file, .insecure = r->insecure,
  };
  rc__net_callbacks cb = {.done = done, .data = data};
  s->ended = false;
  if (url.oom || body->oom) rc__err(&e, RC_ENOMEM, endpoint(s), 0, 0, "out of memory");
  else r->req = rc__net_start(r->net, &o, &cb, s, &e);
  rc__buf_free(&url);
  if (!r->req) {
    fail_over(s, &e);
    return false;
  }
  return true;
}

/* Appends "key" and, for a prefix, "range_end" members. */
static void range_fields(const etcd_source *s, rc__buf *b) {
  rc__buf_printf(b, "\"key\":\"%s\"", s->key_b64);
  if (s->end_b64) rc__buf_printf(b, ",\"range_end\":\"%s\"", s->end_b64);
}

/* ---- the watch ---- */

/* One message of the watch stream. */
static void watch_message(etcd_source *s, const char *p, size_t n) {
  rc__remote *r = &s->r;
  rc_error e = {0};
  rc_value_t *msg = NULL;
  if (rc__remote_parse(r, RC__FMT_JSON, p, n, endpoint(s), &msg, &e) != 0) {
    fail_over(s, &e);
    return;
  }
  const rc_value_t *err = rc__object_get(msg, "error");
  const rc_value_t *res = rc__object_get(msg, "result");
  if (err || !res) {
    /* The stream's own error shape, e.g. "etcdserver: no leader" with hasleader. */
    const char *m = json_string(err, "message");
    rc__err(&e, RC_EIO, endpoint(s), 0, 0, "etcd ended the watch: %s",
            m ? m : "unexpected message");
    rc__value_unref(msg);
    fail_over(s, &e);
    return;
  }
  if (json_true(res, "canceled")) {
    int64_t compacted = json_i64(res, "compact_revision", 0);
    const char *why = json_string(res, "cancel_reason");
    if (compacted > 0) {
      /* Revisions we have not seen are gone (the server leaves the stream open). */
      char text[96];
      snprintf(text, sizeof text, "history compacted up to revision %lld",
               (long long)compacted);
      rc__value_unref(msg);
      resync(s, text);
      return;
    }
    if (why && strstr(why, "invalid auth token") && reauth(s)) {
      rc__value_unref(msg);
      return;
    }
    rc__err(&e, RC_EIO, endpoint(s), 0, 0, "etcd cancelled the watch: %s",
            why ? why : "no reason given");
    rc__value_unref(msg);
    /* An auth or permission refusal is the same on every member. */
    if (why && (strstr(why, "Unauthenticated") || strstr(why, "PermissionDenied") ||
                strstr(why, "InvalidArgument")))
      fail_here(s, &e);
    else
      fail_over(s, &e);
    return;
  }
  if (json_true(res, "created")) {
    const rc_value_t *hdr = rc__object_get(res, "header");
    const char *cid = json_string(hdr, "cluster_id");
    int64_t now = json_i64(hdr, "revision", 0);
    char why[128];
    why[0] = '\0';
    if (cid && s->cluster_id && strcmp(cid, s->cluster_id) != 0)
      snprintf(why, sizeof why, "the endpoint belongs to another cluster (a recreate?)");
    else if (now + 1 < s->next_rev)
      snprintf(why, sizeof why, "the revision went back from %lld to %lld (a restore?)",
               (long long)(s->next_rev - 1), (long long)now);
    if (why[0]) {
      rc__value_unref(msg);
      resync(s, why);
      return;
    }
    /* A working watch, not just a working range: only now may the next failure start
     * again from the first endpoint round and the first backoff delay (a member whose
     * watch always fails must not make a tight loop). */
    s->tried = 0;
    s->auth_retried = false;
    uint64_t t = rc__remote_now(r);
    s->created_at = t ? t : 1;
    /* A retry while polling must stay up a while before polling stops. */
    if (s->probing) rc__hybrid_arm(&s->hy, ETCD_WATCH_STABLE_MS);
    rc__remote_success(r);
    /* A resumed watch delivers nothing until the next change: the recovery from a
     * failover is reported now. */
    rc__remote_unchanged(r);
    if (r->stopping) {
      rc__value_unref(msg);
      return;
    }
  }
  /* One transaction's events share a revision, and a revision is never split across
   * messages: what is below `from` is already in the state. */
  const rc_value_t *evs = rc__object_get(res, "events");
  int64_t from = s->next_rev;
  bool applied = false;
  for (uint32_t i = 0; evs && evs->type == RC_TYPE_ARRAY && i < evs->len; i++) {
    const rc_value_t *ev = evs->u.items[i];
    int64_t rev = json_i64(rc__object_get(ev, "kv"), "mod_revision", 0);
    if (rev < from) continue;
    if (apply_event(s, ev) != 0) {
      rc__err(&e, RC_ENOMEM, endpoint(s), 0, 0, "out of memory");
      rc__value_unref(msg);
      fail_here(s, &e);
      return;
    }
    /* Resume after the last event applied, never past one not seen. */
    if (rev + 1 > s->next_rev) s->next_rev = rev + 1;
    applied = true;
  }
  rc__value_unref(msg);
  if (applied) rc__remote_deliver(r, rc__value_ref(s->state));
}

/* Splits the stream into lines (a message may span chunks) and handles each. */
static void on_watch_data(void *ud, rc__net_request *req, const char *data, size_t n) {
  etcd_source *s = ud;
  if (s->ended || s->r.stopping) return;
  if (rc__net_status(req) != 200) {
    /* Kept for the error message in on_watch_done. */
    size_t room = ETCD_ERRBODY_MAX > s->line.n ? ETCD_ERRBODY_MAX - s->line.n : 0;
    rc__buf_add(&s->line, data, n < room ? n : room);
    return;
  }
  /* A delivery runs the engine, which may stop this source: then nothing more. */
  while (n && !s->ended && !s->r.stopping) {
    const char *nl = memchr(data, '\n', n);
    size_t take = nl ? (size_t)(nl - data) : n;
    if (s->r.max_bytes && s->line.n + take > s->r.max_bytes) {
      rc_error e = {0};
      rc__err(&e, RC_ELIMIT, endpoint(s), 0, 0,
              "a watch message is larger than %zu bytes", s->r.max_bytes);
      fail_over(s, &e);
      return;
    }
    if (!nl) {
      rc__buf_add(&s->line, data, n);
      return;
    }
    const char *p = data;
    size_t len = take;
    if (s->line.n) {
      rc__buf_add(&s->line, data, take);
      p = s->line.p;
      len = s->line.n;
    }
    if (s->line.oom) {
      rc_error e = {0};
      rc__err(&e, RC_ENOMEM, endpoint(s), 0, 0, "out of memory");
      fail_over(s, &e);
      return;
    }
    if (len) watch_message(s, p, len);
    rc__buf_reset(&s->line);
    data += take + 1;
    n -= take + 1;
  }
}

/* The stream ended without one of its messages ending it: a broken connection (a
 * member killed), a timeout, or the server closing it. */
static void on_watch_done(void *ud, rc__net_request *req, const rc__net_result *res) {
  RC__UNUSED(req);
  etcd_source *s = ud;
  s->r.req = NULL;
  if (res->code == RC_ESTATE) return;  /* the network closed: we are stopping */
  if (res->code == 0 && res->status == 200 && s->line.n && !s->ended) {
    /* The last line of a stream ended by the server has no '\n' ("no leader"). */
    watch_message(s, s->line.p, s->line.n);
    if (s->ended) return;
  }
  rc_error e = {0};
  if (res->code) {
    fail_over(s, res->err);
  } else if (res->status != 200) {
    rc__net_result copy = *res;
    copy.body = s->line.p ? s->line.p : "";
    copy.body_len = s->line.n;
    rc__http_status_error(&e, endpoint(s), &copy, "etcd refused the watch");
    if (res->status == 401 && reauth(s)) return;
    fail_over(s, &e);
  } else {
    rc__err(&e, RC_EIO, endpoint(s), 0, 0, "etcd ended the watch stream");
    fail_over(s, &e);
  }
}

static void watch(etcd_source *s) {
  rc__buf body;
  rc__buf_init(&body);
  rc__buf_adds(&body, "{\"create_request\":{");
  range_fields(s, &body);
  rc__buf_printf(&body, ",\"start_revision\":\"%lld\",\"progress_notify\":true}}",
                 (long long)s->next_rev);
  rc__buf_reset(&s->line);
  post(s, "/v3/watch", &body, true, on_watch_done, on_watch_data, true);
  rc__buf_free(&body);
}

/* ---- the range ---- */

static void range_request(etcd_source *s);

/* Forgets the pages of a paged range (a new range starts from the first page). */
static void pages_reset(etcd_source *s) {
  for (size_t i = 0; i < s->nkvs; i++) rc__value_unref(s->kvs[i]);
  s->nkvs = 0;
  s->page_rev = 0;
  rc__free(s->page_from);
  s->page_from = NULL;
}

/* Keeps a page's kvs and, when etcd says there are `more`, where the next page starts:
 * just after its last key. Returns 0 or RC_ENOMEM. */
static int keep_page(etcd_source *s, const rc_value_t *kvs, bool more) {
  uint32_t n = kvs && kvs->type == RC_TYPE_ARRAY ? kvs->len : 0;
  if (RC__GROW(s->kvs, s->kvs_cap, s->nkvs + n, 64)) return RC_ENOMEM;
  for (uint32_t i = 0; i < n; i++) s->kvs[s->nkvs++] = rc__value_ref(kvs->u.items[i]);
  rc__free(s->page_from);
  s->page_from = NULL;
  if (!more || !n) return 0;
  const char *last = json_string(kvs->u.items[n - 1], "key");
  rc__buf key;
  rc__buf_init(&key);
  if (!last || !rc__base64_decode(last, strlen(last), &key)) {
    rc__buf_free(&key);
    return 0; /* an unusable key: kv_key skips it; the range ends here */
  }
  rc__buf_addc(&key, '\0');
  if (!key.oom) s->page_from = b64_dup(key.p, key.n);
  bool oom = key.oom || !s->page_from;
  rc__buf_free(&key);
  return oom ? RC_ENOMEM : 0;
}

static void range_parsed(rc__remote *r, int rc, rc_value_t *v, const rc_error *err) {
  etcd_source *s = (etcd_source *)r;
  if (rc) {
    fail_over(s, err);
    return;
  }
  const rc_value_t *hdr = rc__object_get(v, "header");
  int64_t rev = json_i64(hdr, "revision", -1);
  rc_error e = {0};
  if (rev < 0) {
    rc__value_unref(v);
    rc__err(&e, RC_EIO, endpoint(s), 0, 0, "etcd's range answer has no header.revision");
    fail_over(s, &e);
    return;
  }
  if (!s->page_rev) s->page_rev = rev;
  if (keep_page(s, rc__object_get(v, "kvs"), json_true(v, "more")) != 0) {
    rc__value_unref(v);
    rc__err(&e, RC_ENOMEM, endpoint(s), 0, 0, "out of memory");
    fail_here(s, &e);
    return;
  }
  if (s->page_from) { /* more pages, read at the first page's revision */
    rc__value_unref(v);
    if (!r->stopping) range_request(s);
    return;
  }
  rev = s->page_rev;
  const char *cid = json_string(hdr, "cluster_id");
  char *cid_copy = cid ? rc__strdup(cid) : NULL;
  int built = state_from_range(s, s->kvs, s->nkvs);
  pages_reset(s);
  if (built != 0 || (cid && !cid_copy)) {
    rc__free(cid_copy);
    rc__value_unref(v);
    rc__err(&e, RC_ENOMEM, endpoint(s), 0, 0, "out of memory");
    fail_here(s, &e);
    return;
  }
  rc__value_unref(v);
  rc__free(s->cluster_id);
  s->cluster_id = cid_copy;
  /* The range is a consistent snapshot at `rev`: watch from the next revision. */
  s->next_rev = rev + 1;
  s->synced = true;
  if (s->trying_poll) {
    /* The watch failed, a range works: poll. */
    s->trying_poll = false;
    rc__hybrid_enter(&s->hy, endpoint(s), s->why);
  }
  if (s->hy.polling) {
    /* Polling is how this source works for now: a good poll is a success. */
    s->tried = 0;
    rc__remote_success(r);
  }
  rc__remote_deliver(r, rc__value_ref(s->state));
  if (r->stopping) return;
  if (s->hy.polling && !s->hy.probe_due)
    rc__remote_schedule(r, rc__hybrid_poll_delay(&s->hy));
  else
    next_step(s);
}

static void on_range_done(void *ud, rc__net_request *req, const rc__net_result *res) {
  RC__UNUSED(req);
  etcd_source *s = ud;
  s->r.req = NULL;
  if (res->code == RC_ESTATE) return;
  rc__src_fetch_time(s->r.ctx, res->duration_ns);
  if (res->code || res->status != 200) {
    pages_reset(s);
    http_failure(s, res, res->status == 403 ? "permission denied" : NULL);
    return;
  }
  rc__remote_parse_then(&s->r, RC__FMT_JSON, res->body, res->body_len, endpoint(s),
                        range_parsed);
}

/* One range request: the whole key or prefix, or the next page of a paged range. */
static void range_request(etcd_source *s) {
  rc__buf body;
  rc__buf_init(&body);
  rc__buf_printf(&body, "{\"key\":\"%s\"", s->page_from ? s->page_from : s->key_b64);
  if (s->end_b64) rc__buf_printf(&body, ",\"range_end\":\"%s\"", s->end_b64);
  if (s->prefix && s->page) rc__buf_printf(&body, ",\"limit\":\"%u\"", s->page);
  if (s->page_rev) rc__buf_printf(&body, ",\"revision\":\"%lld\"", (long long)s->page_rev);
  rc__buf_addc(&body, '}');
  post(s, "/v3/kv/range", &body, false, on_range_done, NULL, true);
  rc__buf_free(&body);
}

/* A range from the first page. */
static void range(etcd_source *s) {
  pages_reset(s);
  range_request(s);
}

/* ---- authentication ---- */

static void on_auth_done(void *ud, rc__net_request *req, const rc__net_result *res) {
  RC__UNUSED(req);
  etcd_source *s = ud;
  s->r.req = NULL;
  if (res->code == RC_ESTATE) return;
  if (res->code || res->status != 200) {
    http_failure(s, res, res->status == 400 ? "etcd refused the user or password" : NULL);
    return;
  }
  rc_error e = {0};
  rc_value_t *v = NULL;
  const char *tok = NULL;
  if (rc__remote_parse(&s->r, RC__FMT_JSON, res->body, res->body_len, endpoint(s), &v,
                       &e) == 0)
    tok = json_string(v, "token");
  char *copy = tok && *tok ? rc__strdup(tok) : NULL;
  rc__value_unref(v);
  if (!copy) {
    if (!e.code)
      rc__err(&e, tok ? RC_ENOMEM : RC_EIO, endpoint(s), 0, 0,
              "etcd's authenticate answer has no token");
    fail_over(s, &e);
    return;
  }
  s->auth = copy;
  next_step(s);
}

static void authenticate(etcd_source *s) {
  rc_error e = {0};
  const char *pw = s->password_env ? getenv(s->password_env) : NULL;
  if (!pw) {
    rc__err(&e, RC_EIO, NULL, 0, 0, "the password variable %s is not set",
            s->password_env ? s->password_env : "(none)");
    rc__remote_fail(&s->r, &e, 0);
    return;
  }
  rc__buf body;
  rc__buf_init(&body);
  rc__buf_adds(&body, "{\"name\":");
  json_str(&body, s->user);
  rc__buf_adds(&body, ",\"password\":");
  json_str(&body, pw);
  rc__buf_addc(&body, '}');
  post(s, "/v3/auth/authenticate", &body, false, on_auth_done, NULL, false);
  if (body.p) explicit_bzero(body.p, body.n);  /* it holds the password */
  rc__buf_free(&body);
}

/* After authentication or a range: a range if the state is not synced, a range being
 * the next poll, or the one deciding on polling; else the watch (while polling: the
 * retry of the watch, which must be created within the unary timeout). */
static void next_step(etcd_source *s) {
  if (!s->synced || s->trying_poll || (s->hy.polling && !s->hy.probe_due)) {
    range(s);
    return;
  }
  /* With the fallback on, a watch must be created within the unary timeout: a proxy
   * that holds it without an answer is a watch that cannot be established. */
  uint64_t deadline = s->r.timeout_ms;
  if (s->hy.polling) {
    s->hy.probe_due = false;
    s->probing = true;
  }
  watch(s);
  if (s->watching) rc__hybrid_arm(&s->hy, deadline);
}

/* The timer's tick: authenticate if needed, then the next step. */
static void begin(rc__remote *r) {
  etcd_source *s = (etcd_source *)r;
  if (r->req || r->job || r->stopping) return;
  if (s->user && !s->auth) authenticate(s);
  else next_step(s);
}

/* The hybrid timer. Not polling: the watch's creation deadline. Polling: time for a
 * retry of the watch (after the poll in flight, if any); a retry not created in time
 * (it failed: poll on); or a retry up long enough (polling stops, the watch goes on). */
static void hybrid_fire(rc__remote *r) {
  etcd_source *s = (etcd_source *)r;
  if (!s->hy.polling) {
    /* The creation deadline of a watch (armed by next_step for the latest watch). */
    if (s->watching && r->req && !s->created_at) {
      rc_error e = {0};
      rc__err(&e, RC_EIO, endpoint(s), 0, 0, "etcd did not confirm the watch within %u ms",
              r->timeout_ms);
      fail_over(s, &e);
    }
    return;
  }
  if (s->probing) {
    if (!s->created_at) {
      drop_request(s);
      rc__remote_schedule(r, 0);
      return;
    }
    s->probing = false;
    s->unstable = 0;
    rc__hybrid_leave(&s->hy, endpoint(s));
    return;
  }
  s->hy.probe_due = true;
  if (r->req || r->job) return;  /* a poll in flight: range_parsed starts the watch */
  begin(r);
}

/* ===================================================================================
 * Source operations
 * =================================================================================== */

static int etcd_start(rc__source *base, rc_error *err) {
  rc__remote *r = (rc__remote *)base;
  int rc = rc__remote_use_net(r, err);
  if (!rc) rc = rc__remote_start(r, begin, err);
  if (!rc) rc = rc__hybrid_start(&((etcd_source *)r)->hy, hybrid_fire, err);
  if (rc) return rc;
  /* The first value arrives with the first range; start never waits for it. */
  begin(r);
  return 0;
}

static void etcd_stop(rc__source *base, void (*done)(rc__source *)) {
  rc__hybrid_stop(&((etcd_source *)base)->hy);
  rc__remote_stop((rc__remote *)base, done);
}

/* A reload request: the watch ends and the key or prefix is read again (delivered only
 * if it differs), then watched from there. */
static void etcd_rescan(rc__source *base) {
  etcd_source *s = (etcd_source *)base;
  if (s->r.stopping || s->r.job) return; /* a range being parsed answers the request */
  s->synced = false;
  drop_request(s);
  rc__remote_schedule(&s->r, 0);
}

static void etcd_free(rc__source *base) {
  etcd_source *s = (etcd_source *)base;
  rc__remote_free(&s->r);
  rc__opt_list_free(s->endpoints);
  rc__free(s->key_b64);
  rc__free(s->end_b64);
  rc__free(s->cluster_id);
  if (s->auth) explicit_bzero(s->auth, strlen(s->auth));
  rc__free(s->auth);
  rc__value_unref(s->state);
  pages_reset(s);
  rc__free(s->kvs);
  rc__buf_free(&s->line);
  rc__free(s);
}

/* The range fields of the key or prefix. A prefix's range_end is the prefix with
 * trailing 0xff bytes dropped and the last byte incremented; "" (every key) is the
 * range ["\0", "\0"), i.e. from the smallest key to the end. */
static bool make_range(etcd_source *s) {
  size_t n = strlen(s->key);
  if (!s->prefix) return (s->key_b64 = b64_dup(s->key, n)) != NULL;
  if (n == 0) {
    s->key_b64 = b64_dup("", 1);
    s->end_b64 = b64_dup("", 1);
    return s->key_b64 && s->end_b64;
  }
  s->key_b64 = b64_dup(s->key, n);
  unsigned char *end = (unsigned char *)rc__strdup(s->key);
  if (!end) return false;
  while (n && end[n - 1] == 0xff) n--;
  if (n) end[n - 1]++;
  s->end_b64 = n ? b64_dup(end, n) : b64_dup("", 1);
  rc__free(end);
  return s->key_b64 && s->end_b64;
}

static rc__source *etcd_create(rc__source_ctx *ctx, rc_error *err) {
  etcd_source *s = rc__remote_new(sizeof *s, ctx, err);
  if (!s) return NULL;
  rc__hybrid_init(&s->hy, &s->r, "etcd watch", "the etcd watch works again");
  rc__buf_init(&s->line);
  s->endpoints = rc__opt_list(ctx, "endpoints");
  while (s->endpoints && s->endpoints[s->nend]) s->nend++;
  s->key = rc__opt_string(ctx, "etcd_key");
  if (!s->key) {
    s->key = rc__opt_string(ctx, "prefix");
    s->prefix = s->key != NULL;
  }
  s->user = rc__opt_string(ctx, "user");
  s->password_env = rc__opt_string(ctx, "password_env");
  double page = rc__opt_number(ctx, "page");
  s->page = page < 1 ? 0 : page > 1e6 ? 1000000 : (uint32_t)page;
  s->fmt = rc__opt_format(ctx, RC__FMT_JSON);
  if (s->fmt == RC__FMT_AUTO) s->fmt = RC__FMT_JSON;
  if (!s->nend || !s->key) {
    rc__src_policy_error(ctx, err, "etcd source needs endpoints and one of key or prefix");
    etcd_free(&s->r.base);
    return NULL;
  }
  if (!make_range(s)) {
    rc__err(err, RC_ENOMEM, NULL, 0, 0, "out of memory");
    etcd_free(&s->r.base);
    return NULL;
  }
  return &s->r.base;
}

/* The first entry for a key wins: etcd retries sooner than the common default. */
static const rc__opt_default etcd_defaults[] = {
  {"backoff_min_ms", 500}, RC__REMOTE_DEFAULTS, {"timeout_ms", 10000}, {"page", 500},
  {"poll_ms", 1000}, {NULL, 0},
};

const rc__source_kind rc__etcd_kind = {
  .name = "etcd", .flags = RC__SRC_REMOTE, .defaults = etcd_defaults,
  RC__SOURCE_FUNCS(etcd),
};
