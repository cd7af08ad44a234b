/* SPDX-License-Identifier: MIT (see LICENSE) */
/* vault.c: the Vault source. KV v2 (the default): reads GET /v1/<mount>/data/<path> with
 * X-Vault-Token every `interval` (KV has no lease to time re-reads by); a new version is
 * delivered,
 * a deleted or destroyed latest version (404 with a body whose data is null) is
 * "absent", a 403 is an error event. The token is kept alive: lookup-self learns its
 * TTL, renew-self runs at about 2/3 of it (the reference client's rhythm), and when
 * renewal stops extending it (max TTL) a clear error is reported the moment it expires.
 * Dynamic secrets (lease = true): GET /v1/<path> returns credentials with a lease; it
 * is renewed (sys/leases/renew) at about 2/3 of its duration, and when renewal stops
 * extending it (the lease's max TTL) or fails, new credentials are read before it ends.
 * One request at a time: the timer runs whichever of read / renew is due first. */
#include "http_util.h"
#include "remote.h"

#include <stdio.h>
#include <string.h>

typedef struct vault_source {
  rc__remote r;
  const char *addr;         /* borrowed from the options */
  char *url, *shown;
  uint64_t interval_ms;
  bool renew;               /* keep the token alive */
  /* what the next tick does, in uv_now() milliseconds; 0 = nothing planned */
  uint64_t read_at, renew_at, expire_at;
  uint64_t token_hash;      /* the token lookup-self described; 0 = look it up */
  uint64_t increment_s;     /* TTL to ask for at renewal (the token's creation TTL) */
  bool expiry_reported;
  enum { OP_READ, OP_LOOKUP, OP_RENEW, OP_LEASE } op;  /* the request in flight */
  /* dynamic secrets */
  bool lease;               /* the path is a dynamic secret with a lease */
  char *lease_id;           /* the current lease, or NULL */
  uint64_t lease_s;         /* its duration as granted at read time (what renewals ask) */
  uint64_t lease_renew_at;  /* when to renew it; 0 = not renewable any more */
} vault_source;

static void tick(rc__remote *r);
static bool capped(const rc_value_t *body);

static uint64_t now_ms(const vault_source *s) { return rc__remote_now(&s->r); }

/* Arms the timer for the earliest thing planned. */
static void plan(vault_source *s) {
  uint64_t at = s->read_at;
  if (s->renew_at && s->renew_at < at) at = s->renew_at;
  if (s->lease_renew_at && s->lease_renew_at < at) at = s->lease_renew_at;
  if (s->expire_at && !s->expiry_reported && s->expire_at < at) at = s->expire_at;
  uint64_t now = now_ms(s);
  rc__remote_schedule(&s->r, at > now ? at - now : 0);
}

static void fail(vault_source *s, const rc_error *e, uint64_t retry_after) {
  /* The failed step is retried after the backoff; reads wait as long. */
  uint64_t d = rc__backoff_next(&s->r.backoff, &s->r.rng);
  if (retry_after > d) d = retry_after;
  rc__src_error(s->r.ctx, e);
  uint64_t at = now_ms(s) + d;
  if (s->op == OP_READ || s->read_at < at) s->read_at = at;
  if (s->op == OP_RENEW) s->renew_at = at;
  if (s->op == OP_LEASE) s->lease_renew_at = at;
  plan(s);
}

/* ---- dynamic secrets: the lease of the credentials ---- */

/* Plans what keeps credentials valid: renewing the lease at 2/3 of `ld_s`, or (not
 * renewable, or capped) reading new credentials at 2/3 of what is left. */
static void plan_lease(vault_source *s, uint64_t ld_s, bool renewable) {
  uint64_t now = now_ms(s), ld_ms = ld_s * 1000;
  if (ld_s == 0) { /* no expiry: read again at the interval */
    s->lease_renew_at = 0;
    s->read_at = now + rc__remote_splay(&s->r, s->interval_ms);
    return;
  }
  uint64_t at = now + rc__remote_splay(&s->r, ld_ms * 2 / 3);
  if (renewable) {
    s->lease_renew_at = at;
    s->read_at = now + ld_ms * 10; /* read only when renewal stops working */
  } else {
    s->lease_renew_at = 0;
    s->read_at = at;
  }
}

static void after_lease_read(vault_source *s, const rc_value_t *body) {
  const rc_value_t *id = rc__object_get(body, "lease_id");
  const rc_value_t *renewable = rc__object_get(body, "renewable");
  rc__free(s->lease_id);
  s->lease_id = id && id->type == RC_TYPE_STRING && id->len ? rc__strdup(id->u.s) : NULL;
  s->lease_s = (uint64_t)rc__object_number(body, "lease_duration", 0);
  plan_lease(s, s->lease_s, s->lease_id && renewable && renewable->type == RC_TYPE_BOOL &&
                              renewable->u.b);
}

static void after_lease_renew(vault_source *s, const rc__net_result *res,
                              const rc_value_t *body) {
  if (res->status != 200) {
    /* Expired, revoked or not renewable: new credentials now. */
    s->lease_renew_at = 0;
    s->read_at = now_ms(s);
    return;
  }
  uint64_t ld = (uint64_t)rc__object_number(body, "lease_duration", 0);
  /* Less than asked for: the lease's max TTL is near; read new credentials in time. */
  plan_lease(s, ld, ld >= s->lease_s && !capped(body));
}

/* Vault's own explanation, from its body {"errors": ["permission denied", ...]}, as
 * plain text joined by "; " (printable bytes only), into `out`; false when the body is
 * not that. Said without quotes: these are Vault's words, never secret values, and an
 * event about a secret component redacts quoted text, which would hide them. */
static bool vault_errors(vault_source *s, const rc__net_result *res, char *out, size_t n) {
  rc_value_t *body = NULL;
  rc_error ignored = {0};
  if (!res->body_len || rc__remote_parse(&s->r, RC__FMT_JSON, res->body, res->body_len,
                                         s->shown, &body, &ignored) != 0)
    return false;
  const rc_value_t *errs = rc__object_get(body, "errors");
  size_t o = 0;
  for (uint32_t i = 0; errs && errs->type == RC_TYPE_ARRAY && i < errs->len; i++) {
    const rc_value_t *m = errs->u.items[i];
    if (m->type != RC_TYPE_STRING) continue;
    if (o && o + 2 < n) {
      out[o++] = ';';
      out[o++] = ' ';
    }
    for (size_t k = 0; k < m->len && o + 1 < n; k++) {
      unsigned char ch = (unsigned char)m->u.s[k];
      out[o++] = ch < 0x20 || ch == 0x7f || ch == '"' || ch == '\'' ? ' ' : (char)ch;
    }
  }
  out[o] = '\0';
  rc__value_unref(body);
  return o > 0;
}

/* An error for an HTTP status: what it means (`what`, may be NULL), the status, and
 * Vault's explanation when it gave one (else the body's first line). */
static int vault_status_error(vault_source *s, const rc__net_result *res, const char *what,
                              rc_error *e) {
  char why[256];
  if (!vault_errors(s, res, why, sizeof why))
    return rc__http_status_error(e, s->shown, res, what);
  return rc__err(e, RC_EIO, s->shown, 0, 0, "%s%sHTTP %ld: %s", what ? what : "",
                 what ? ": " : "", res->status, why);
}

static int status_error(vault_source *s, const rc__net_result *res, rc_error *e) {
  const char *what = res->status == 403 ? "permission denied (is the token valid and "
                                          "allowed to read this path?)"
                     : res->status == 503 ? "Vault is sealed or unavailable"
                                          : NULL;
  return vault_status_error(s, res, what, e);
}

/* ---- token lifetime ---- */

/* The token will expire at `at` and cannot be extended: stop renewing. */
static void final_expiry(vault_source *s, uint64_t at) {
  s->renew_at = 0;
  s->expire_at = at;
}

static void after_lookup(vault_source *s, const rc_value_t *data) {
  uint64_t now = now_ms(s);
  double ttl = rc__object_number(data, "ttl", 0);
  const rc_value_t *renewable = rc__object_get(data, "renewable");
  double creation = rc__object_number(data, "creation_ttl", ttl);
  s->increment_s = (uint64_t)(creation > 0 ? creation : ttl);
  s->expiry_reported = false;
  if (ttl <= 0) {  /* root and other tokens without expiry */
    s->renew_at = s->expire_at = 0;
    return;
  }
  uint64_t ttl_ms = (uint64_t)(ttl * 1000);
  if (!s->renew || !renewable || renewable->type != RC_TYPE_BOOL || !renewable->u.b) {
    final_expiry(s, now + ttl_ms);
    return;
  }
  s->expire_at = now + ttl_ms;
  s->renew_at = now + rc__remote_splay(&s->r, ttl_ms * 2 / 3);
}

/* Vault warns when it capped a TTL ("... exceeded the effective max_ttl of ..."). */
static bool capped(const rc_value_t *body) {
  const rc_value_t *w = rc__object_get(body, "warnings");
  for (uint32_t i = 0; w && w->type == RC_TYPE_ARRAY && i < w->len; i++)
    if (w->u.items[i]->type == RC_TYPE_STRING && strstr(w->u.items[i]->u.s, "max_ttl"))
      return true;
  return false;
}

static void after_renew(vault_source *s, const rc_value_t *body) {
  const rc_value_t *auth = rc__object_get(body, "auth");
  uint64_t now = now_ms(s);
  double ld = rc__object_number(auth, "lease_duration", 0);
  uint64_t ld_ms = (uint64_t)(ld * 1000);
  s->expiry_reported = false;
  if (ld <= 0) {
    s->renew_at = s->expire_at = 0;
    return;
  }
  /* Less than asked for: the max TTL caps it, and the next renewal cannot go further. */
  if ((uint64_t)ld < s->increment_s || capped(body)) {
    final_expiry(s, now + ld_ms);
    return;
  }
  s->expire_at = now + ld_ms;
  s->renew_at = now + rc__remote_splay(&s->r, ld_ms * 2 / 3);
}

/* ---- responses ---- */

static void on_read(vault_source *s, const rc__net_result *res, rc_value_t *body) {
  rc_error e = {0};
  if (s->lease && res->status == 200) {
    const rc_value_t *data = rc__object_get(body, "data");
    if (!data || data->type != RC_TYPE_OBJECT) {
      rc__err(&e, RC_EPARSE, s->shown, 0, 0, "not a secret with data (is the path a "
                                             "dynamic secret?)");
      fail(s, &e, 0);
      return;
    }
    rc__remote_success(&s->r);
    rc__remote_deliver(&s->r, rc__value_ref(data));
    after_lease_read(s, body);
    plan(s);
    return;
  }
  if (!s->lease && (res->status == 200 || res->status == 404)) {
    /* 404: no such secret ({"errors":[]}) or its latest version deleted or destroyed
     * (a full body with data.data = null): absent either way. */
    const rc_value_t *data = rc__object_get(rc__object_get(body, "data"), "data");
    if (res->status == 200 && (!data || (data->type != RC_TYPE_OBJECT &&
                                         data->type != RC_TYPE_NULL))) {
      rc__err(&e, RC_EPARSE, s->shown, 0, 0, "not a KV v2 response (is the mount KV v2?)");
      fail(s, &e, 0);
      return;
    }
    rc__remote_success(&s->r);
    rc__remote_deliver(&s->r, data && data->type == RC_TYPE_OBJECT
                                ? rc__value_ref(data) : NULL);
    s->read_at = now_ms(s) + rc__remote_splay(&s->r, s->interval_ms);
    plan(s);
    return;
  }
  status_error(s, res, &e);
  bool busy = res->status == 429 || res->status == 503;
  fail(s, &e, busy ? rc__retry_after_ms(res->retry_after) : 0);
}

static void on_token(vault_source *s, const rc__net_result *res, rc_value_t *body) {
  rc_error e = {0};
  if (res->status == 200) {
    if (s->op == OP_LOOKUP) after_lookup(s, rc__object_get(body, "data"));
    else after_renew(s, body);
    rc__remote_success(&s->r);
    plan(s);
    return;
  }
  if (s->op == OP_RENEW && res->status == 400) {
    /* "lease is not renewable": it lives until its expiry, which stays planned. */
    s->renew_at = 0;
    plan(s);
    return;
  }
  if (s->op == OP_LOOKUP && res->status == 403) {
    /* A least-privilege token may read its secrets without being allowed to look itself
     * up (no auth/token/lookup-self in its policy): it is used as it is, unrenewed, and
     * not looked up again until it changes. Said once, as a state: reads go on. */
    char why[256];
    if (!vault_errors(s, res, why, sizeof why)) snprintf(why, sizeof why, "HTTP 403");
    s->renew_at = s->expire_at = 0;
    rc__src_state(s->r.ctx, s->shown, 0, "the Vault token may not look itself up (%s): it "
                  "is used without renewal; allow auth/token/lookup-self and "
                  "auth/token/renew-self to have it kept alive", why);
    plan(s);
    return;
  }
  const char *what = s->op == OP_LOOKUP ? "token lookup failed" : "token renewal failed";
  vault_status_error(s, res, what, &e);
  if (s->op == OP_LOOKUP) s->token_hash = 0;  /* look it up again after the backoff */
  fail(s, &e, 0);
}

static void on_done(void *ud, rc__net_request *req, const rc__net_result *res) {
  RC__UNUSED(req);
  vault_source *s = ud;
  s->r.req = NULL;
  if (res->code == RC_ESTATE) return;
  rc__src_fetch_time(s->r.ctx, res->duration_ns);
  if (res->code) {
    if (s->op == OP_LOOKUP) s->token_hash = 0;
    fail(s, res->err, 0);
    return;
  }
  rc_value_t *body = NULL;
  rc_error e = {0};
  bool want_body = res->status == 200 || (s->op == OP_READ && res->status == 404 &&
                                          !s->lease);
  if (want_body && res->body_len &&
      rc__remote_parse(&s->r, RC__FMT_JSON, res->body, res->body_len, s->shown, &body,
                       &e) != 0) {
    fail(s, &e, 0);
    return;
  }
  if (s->op == OP_READ) {
    on_read(s, res, body);
  } else if (s->op == OP_LEASE) {
    if (res->status == 200) rc__remote_success(&s->r);
    after_lease_renew(s, res, body);
    plan(s);
  } else {
    on_token(s, res, body);
  }
  rc__value_unref(body);
}

/* ---- requests ---- */

static void start_request(vault_source *s, const char *path, rc__net_method m,
                          const char *body, const char *token) {
  rc__remote *r = &s->r;
  rc_error e = {0};
  char url[2048];
  if (path) snprintf(url, sizeof url, "%s%s", s->addr, path);
  rc__net_header hs[1] = {{"X-Vault-Token", token}};
  rc__net_req_opts o = {
    .url = path ? url : s->url, .method = m,
    .body = body, .body_len = body ? strlen(body) : 0,
    .headers = hs, .nheaders = 1, .total_ms = r->timeout_ms,
    .connect_ms = r->timeout_ms < RC__NET_CONNECT_MS_DEFAULT ? r->timeout_ms : 0,
    .max_body = r->max_bytes, .ca_file = r->ca_file, .insecure = r->insecure,
  };
  rc__net_callbacks cb = {.done = on_done};
  r->req = rc__net_start(r->net, &o, &cb, s, &e);
  if (!r->req) fail(s, &e, 0);
}

static void tick(rc__remote *r) {
  vault_source *s = (vault_source *)r;
  if (r->req || r->stopping) return;
  uint64_t now = now_ms(s);
  rc_error e = {0};
  const char *token = rc__token_get(&r->token, &e);
  if (!token) {
    if (!e.code) rc__err(&e, RC_EIO, NULL, 0, 0, "no Vault token configured");
    s->op = OP_READ;
    fail(s, &e, 0);
    return;
  }
  uint64_t h = rc__hash64(token, strlen(token));
  if (s->renew && h != s->token_hash) {
    /* A new token (first start, or the token file was rewritten): learn its TTL. */
    s->token_hash = h;
    s->op = OP_LOOKUP;
    start_request(s, "/v1/auth/token/lookup-self", RC__NET_GET, NULL, token);
    return;
  }
  if (s->expire_at && !s->expiry_reported && now >= s->expire_at && !s->renew_at) {
    s->expiry_reported = true;
    rc__err(&e, RC_EIO, s->shown, 0, 0,
            "the Vault token expired: it reached its max TTL or was not renewable; "
            "give the source a new token (the last value stays)");
    rc__src_error(r->ctx, &e);
  }
  if (s->renew_at && now >= s->renew_at) {
    char body[64];
    snprintf(body, sizeof body, "{\"increment\":\"%llus\"}",
             (unsigned long long)s->increment_s);
    s->op = OP_RENEW;
    start_request(s, "/v1/auth/token/renew-self", RC__NET_POST, body, token);
    return;
  }
  if (s->lease_renew_at && now >= s->lease_renew_at && s->lease_id) {
    rc__buf b;
    rc__buf_init(&b);
    rc__buf_adds(&b, "{\"lease_id\":");
    rc__json_write_string(&b, s->lease_id, strlen(s->lease_id));
    rc__buf_printf(&b, ",\"increment\":%llu}", (unsigned long long)s->lease_s);
    s->op = OP_LEASE;
    if (!b.oom) start_request(s, "/v1/sys/leases/renew", RC__NET_PUT, b.p, token);
    rc__buf_free(&b);
    if (r->req) return;
  }
  if (now >= s->read_at) {
    s->op = OP_READ;
    start_request(s, NULL, RC__NET_GET, NULL, token);
    return;
  }
  plan(s);
}

static int vault_start(rc__source *base, rc_error *err) {
  vault_source *s = (vault_source *)base;
  int rc = rc__remote_use_net(&s->r, err);
  if (!rc) rc = rc__remote_start(&s->r, tick, err);
  if (rc) return rc;
  s->read_at = now_ms(s);
  tick(&s->r);
  return 0;
}

static void vault_stop(rc__source *base, void (*done)(rc__source *)) {
  rc__remote_stop((rc__remote *)base, done);
}

/* A reload request: the secret is read now (after the request in flight, if any). */
static void vault_rescan(rc__source *base) {
  vault_source *s = (vault_source *)base;
  if (s->r.stopping) return;
  s->read_at = now_ms(s);
  if (!s->r.req && !s->r.job) rc__remote_schedule(&s->r, 0);
}

static void vault_free(rc__source *base) {
  vault_source *s = (vault_source *)base;
  rc__remote_free(&s->r);
  rc__free(s->url);
  rc__free(s->shown);
  rc__free(s->lease_id);
  rc__free(s);
}

static rc__source *vault_create(rc__source_ctx *ctx, rc_error *err) {
  vault_source *s = rc__remote_new(sizeof *s, ctx, err);
  if (!s) return NULL;
  s->addr = rc__opt_string(ctx, "addr");
  const char *mount = rc__opt_string(ctx, "mount"), *path = rc__opt_string(ctx, "path");
  s->interval_ms = (uint64_t)rc__opt_number(ctx, "interval_ms");
  if (s->interval_ms < 1) s->interval_ms = 1;
  s->renew = rc__opt_bool(ctx, "renew", true);
  s->lease = rc__opt_bool(ctx, "lease", false);
  if (!s->addr || !mount || !path) {
    rc__src_policy_error(ctx, err, "vault source needs an addr, a mount and a path");
    vault_free(&s->r.base);
    return NULL;
  }
  rc__buf u;
  rc__buf_init(&u);
  rc__buf_adds(&u, s->addr);
  rc__buf_adds(&u, "/v1/");
  if (!s->lease) { /* KV v2: <mount>/data/<path>; a dynamic secret: <path> as given */
    rc__url_path_escape(&u, mount);
    rc__buf_adds(&u, "/data/");
  }
  rc__url_path_escape(&u, path);
  s->url = u.oom ? NULL : rc__buf_take(&u);
  rc__buf_free(&u);
  s->shown = s->url ? rc__strdup(s->url) : NULL;
  if (!s->url || !s->shown) {
    rc__err(err, RC_ENOMEM, NULL, 0, 0, "out of memory");
    vault_free(&s->r.base);
    return NULL;
  }
  return &s->r.base;
}

static const rc__opt_default vault_defaults[] = {
  RC__REMOTE_DEFAULTS, {"timeout_ms", 10000}, {"interval_ms", 30000}, {NULL, 0},
};

const rc__source_kind rc__vault_kind = {
  .name = "vault", .flags = RC__SRC_REMOTE, .defaults = vault_defaults,
  RC__SOURCE_FUNCS(vault),
};
