/* remote_common.c: the machinery the remote sources share (see remote_common.h): the
 * engine's network context, the poll/retry timer, backoff, tokens, parsing, and
 * delivering only real changes. */
#include "remote_common.h"

#include <curl/curl.h>
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

/* A Retry-After longer than this is taken as this: a server cannot park a source. */
#define RETRY_AFTER_MAX_MS (60u * 60 * 1000)
/* Token files are small; a larger one is a misconfiguration, not a token. */
#define TOKEN_FILE_MAX 16384

/* ===================================================================================
 * The engine's network context (one per engine, created on first use)
 * =================================================================================== */

static void net_closed(void *ud) { rc__handle_closed(ud); }

static rc__net *engine_net(rc_engine_t *eng, rc_error *err) {
  if (eng->net) return eng->net;
  eng->net = rc__net_new(eng->loop, err);
  /* Counted as one handle: engine free waits until its last close callback ran. */
  if (eng->net) rc__handle_opened(eng);
  return eng->net;
}

void rc__net_engine_close(rc_engine_t *eng) {
  rc__net *net = eng->net;
  eng->net = NULL;
  if (net) rc__net_close(net, net_closed, eng);
}

/* ===================================================================================
 * Lifecycle
 * =================================================================================== */

static uint64_t rnd(uint64_t *s) {
  uint64_t x = *s;
  x ^= x << 13;
  x ^= x >> 7;
  x ^= x << 17;
  return *s = x;
}

void rc__remote_init(rc__remote *r, const rc__source_ops *ops, rc__component *c,
                     uint32_t timeout_dflt, uint64_t backoff_min_dflt) {
  r->base.ops = ops;
  r->base.eng = c->eng;
  r->base.comp = c;
  r->limits = c->limits;
  r->rng = (uv_hrtime() ^ (uint64_t)(uintptr_t)r) | 1;
  r->token.env = rc__desc_string(c, "token_env");
  r->token.file = rc__desc_string(c, "token_file");
  r->token.mtime_ns = -1;
  r->ca_file = rc__desc_string(c, "ca_file");
  r->insecure = rc__desc_bool(c, "insecure", false);
  r->timeout_ms = (uint32_t)rc__desc_number(c, "timeout_ms", timeout_dflt);
  /* A response is held in memory whole: the net core's default bounds it unless the
   * policy says otherwise (max_bytes, or a smaller limits.max_bytes). */
  size_t dflt = c->limits.max_bytes < RC__NET_MAX_BODY_DEFAULT ? c->limits.max_bytes
                                                                : RC__NET_MAX_BODY_DEFAULT;
  r->max_bytes = (size_t)rc__desc_number(c, "max_bytes", (double)dflt);
  r->backoff.min_ms =
    (uint64_t)rc__desc_number(c, "backoff_min_ms", (double)backoff_min_dflt);
  r->backoff.max_ms = (uint64_t)rc__desc_number(c, "backoff_max_ms", 60000);
  if (r->backoff.min_ms < 1) r->backoff.min_ms = 1;
  if (r->backoff.max_ms < r->backoff.min_ms) r->backoff.max_ms = r->backoff.min_ms;
  r->circuit_failures = (uint32_t)rc__desc_number(c, "circuit_failures", 5);
  r->circuit_cooldown_ms = (uint64_t)rc__desc_number(c, "circuit_cooldown_ms", 30000);
  /* The body limit bounds the parser too. */
  if (r->max_bytes && r->max_bytes < r->limits.max_bytes)
    r->limits.max_bytes = r->max_bytes;
}

static void on_timer(uv_timer_t *t) {
  rc__remote *r = t->data;
  if (!r->stopping && r->tick) r->tick(r);
}

int rc__remote_start(rc__remote *r, void (*tick)(rc__remote *), rc_error *err) {
  rc_engine_t *eng = r->base.eng;
  r->net = engine_net(eng, err);
  if (!r->net) return err && err->code ? err->code : RC_ENOMEM;
  int rc = uv_timer_init(eng->loop, &r->timer);
  if (rc) return rc__err(err, RC_ESYS, NULL, 0, 0, "uv_timer_init: %s", uv_strerror(rc));
  r->timer.data = r;
  r->timer_open = true;
  r->tick = tick;
  rc__handle_opened(eng);
  return 0;
}

void rc__remote_schedule(rc__remote *r, uint64_t ms) {
  if (r->stopping || !r->timer_open) return;
  uv_timer_start(&r->timer, on_timer, ms, 0);
}

uint64_t rc__remote_splay(rc__remote *r, uint64_t ms) {
  uint64_t span = ms / 10;
  return span ? ms - rnd(&r->rng) % span : ms;
}

/* Stopped once the timer is closed and no parse job is left. */
static void maybe_stopped(rc__remote *r) {
  if (!r->stopping || r->timer_open || r->job || !r->stop_done) return;
  void (*done)(rc__source *) = r->stop_done;
  r->stop_done = NULL;
  done(&r->base);
}

static void timer_closed(uv_handle_t *h) {
  rc__remote *r = h->data;
  rc__handle_closed(r->base.eng);
  r->timer_open = false;
  maybe_stopped(r);
}

void rc__remote_stop(rc__remote *r, void (*done)(rc__source *)) {
  if (r->stopping) return;
  r->stopping = true;
  r->stop_done = done;
  rc__net_cancel(r->req);
  r->req = NULL;
  if (r->job) uv_cancel((uv_req_t *)r->job);  /* a job already running still ends */
  if (r->timer_open && !uv_is_closing((uv_handle_t *)&r->timer))
    uv_close((uv_handle_t *)&r->timer, timer_closed);
  else
    maybe_stopped(r);
}

void rc__remote_free(rc__remote *r) {
  rc__token_free(&r->token);
  rc__free(r->ca_file);
  rc__value_unref(r->last);
}

/* ===================================================================================
 * Outcomes
 * =================================================================================== */

uint64_t rc__backoff_next(rc__backoff *b, uint64_t *rng) {
  uint64_t d = b->cur_ms ? b->cur_ms : b->min_ms;
  b->cur_ms = d >= b->max_ms / 2 ? b->max_ms : d * 2;
  /* "Equal jitter": at least half the delay, so retries still spread out but never
   * collapse to zero. */
  uint64_t half = d / 2;
  return half + (half ? rnd(rng) % (half + 1) : 0) + (d & 1);
}

static void circuit_event(rc__remote *r, const char *fmt, unsigned long long n) {
  rc__component *c = r->base.comp;
  if (c) rc__emit(r->base.eng, RC_EVENT_COMPONENT_STATE, c->name, NULL, 0, 0, 0, fmt, n);
}

void rc__remote_success(rc__remote *r) {
  r->backoff.cur_ms = 0;
  r->failures = 0;
  if (r->circuit_open) {
    r->circuit_open = false;
    circuit_event(r, "circuit closed: the source answers again (after %llu ms open or "
                     "more)", (unsigned long long)r->circuit_cooldown_ms);
  }
}

void rc__remote_fail(rc__remote *r, const rc_error *err, uint64_t retry_after_ms) {
  rc__deliver_error(r->base.comp, err);
  uint64_t d = rc__backoff_next(&r->backoff, &r->rng);
  r->failures++;
  if (r->circuit_failures && r->failures >= r->circuit_failures) {
    /* Open (or still open after a failed probe): leave the server alone for a while. */
    if (!r->circuit_open)
      circuit_event(r, "circuit open after %llu failures in a row: no request until the "
                       "cool-down ends, then one probe", (unsigned long long)r->failures);
    r->circuit_open = true;
    if (d < r->circuit_cooldown_ms) d = r->circuit_cooldown_ms;
  }
  rc__remote_schedule(r, retry_after_ms > d ? retry_after_ms : d);
}

void rc__remote_deliver(rc__remote *r, rc_value_t *v) {
  rc__component *c = r->base.comp;
  bool same = r->delivered &&
              ((!v && !r->last) || (v && r->last && rc_value_equal(v, r->last)));
  if (same && !(c && c->in_error)) {
    rc__value_unref(v);
    return;
  }
  rc__value_unref(r->last);
  r->last = rc__value_ref(v);
  r->delivered = true;
  rc__deliver(c, v);
}

void rc__remote_unchanged(rc__remote *r) {
  rc__component *c = r->base.comp;
  if (c && c->in_error && r->delivered) rc__deliver(c, rc__value_ref(r->last));
}

/* ===================================================================================
 * Tokens
 * =================================================================================== */

static void set_secret(rc__token *t, char *v) {
  if (t->value) {
    explicit_bzero(t->value, strlen(t->value));
    rc__free(t->value);
  }
  t->value = v;
}

/* Reads the token file when it changed since the last read (size or mtime). */
static int read_token_file(rc__token *t, rc_error *err) {
  struct stat st;
  if (stat(t->file, &st) != 0)
    return rc__err(err, RC_EIO, t->file, 0, 0, "cannot read the token file %s: %s", t->file,
                   strerror(errno));
  int64_t mt = (int64_t)st.st_mtim.tv_sec * 1000000000 + st.st_mtim.tv_nsec;
  if (t->value && mt == t->mtime_ns && (int64_t)st.st_size == t->size) return 0;
  if (st.st_size > TOKEN_FILE_MAX)
    return rc__err(err, RC_ELIMIT, t->file, 0, 0, "token file %s is larger than %d bytes",
                   t->file, TOKEN_FILE_MAX);
  int fd = open(t->file, O_RDONLY | O_CLOEXEC);
  if (fd < 0)
    return rc__err(err, RC_EIO, t->file, 0, 0, "cannot read the token file %s: %s", t->file,
                   strerror(errno));
  char buf[TOKEN_FILE_MAX + 1];
  ssize_t n = read(fd, buf, TOKEN_FILE_MAX);
  int e = errno;
  close(fd);
  if (n < 0)
    return rc__err(err, RC_EIO, t->file, 0, 0, "cannot read the token file %s: %s", t->file,
                   strerror(e));
  /* A trailing newline (echo, Kubernetes secrets) is not part of the token. */
  while (n > 0 && (buf[n - 1] == '\n' || buf[n - 1] == '\r' || buf[n - 1] == ' ')) n--;
  char *v = rc__strndup(buf, (size_t)n);
  explicit_bzero(buf, sizeof buf);
  if (!v) return rc__err(err, RC_ENOMEM, t->file, 0, 0, "out of memory");
  set_secret(t, v);
  t->mtime_ns = mt;
  t->size = (int64_t)st.st_size;
  return 0;
}

const char *rc__token_get(rc__token *t, rc_error *err) {
  if (t->file) return read_token_file(t, err) ? NULL : t->value;
  if (!t->env) return NULL;
  const char *v = getenv(t->env);
  if (!v || !*v) {
    rc__err(err, RC_EIO, NULL, 0, 0, "the token variable %s is not set", t->env);
    return NULL;
  }
  if (!t->value || strcmp(v, t->value) != 0) {
    char *copy = rc__strdup(v);
    if (!copy) {
      rc__err(err, RC_ENOMEM, NULL, 0, 0, "out of memory");
      return NULL;
    }
    set_secret(t, copy);
  }
  return t->value;
}

void rc__token_free(rc__token *t) {
  set_secret(t, NULL);
  rc__free(t->env);
  rc__free(t->file);
  t->env = t->file = NULL;
}

/* ===================================================================================
 * HTTP helpers
 * =================================================================================== */

uint64_t rc__retry_after_ms(const char *v) {
  if (!v || !*v) return 0;
  uint64_t ms;
  if (*v >= '0' && *v <= '9') {
    char *end;
    unsigned long long s = strtoull(v, &end, 10);
    ms = s > RETRY_AFTER_MAX_MS / 1000 ? RETRY_AFTER_MAX_MS : (uint64_t)s * 1000;
  } else {
    time_t at = curl_getdate(v, NULL);
    time_t now = time(NULL);
    if (at <= now) return 0;
    ms = (uint64_t)(at - now) * 1000;
  }
  return ms > RETRY_AFTER_MAX_MS ? RETRY_AFTER_MAX_MS : ms;
}

/* A parse on the thread pool. The uv_work_t comes first: r->job is cancelled as a
 * uv_req_t. */
typedef struct rc__parse_job {
  uv_work_t req;
  rc__remote *r;
  rc__format fmt;
  char *body, *url;
  size_t len;
  rc__parse_limits limits;
  rc__parsed_fn fn;
  int rc;
  rc_value_t *value;
  rc_error err;
} rc__parse_job;

static void job_work(uv_work_t *req) {
  rc__parse_job *j = req->data;
  j->rc = rc__parse(j->fmt, j->body, j->len, j->len, j->url, &j->limits, &j->value,
                    &j->err);
}

static void job_after(uv_work_t *req, int status) {
  rc__parse_job *j = req->data;
  rc__remote *r = j->r;
  r->job = NULL;
  rc__handle_closed(r->base.eng);
  if (status == 0 && !r->stopping) {
    j->fn(r, j->rc, j->value, &j->err);
    j->value = NULL;
  }
  rc__value_unref(j->value);
  rc__free(j->body);
  rc__free(j->url);
  rc__free(j);
  maybe_stopped(r);
}

void rc__remote_parse_then(rc__remote *r, rc__format fmt, const char *body, size_t len,
                           const char *url, rc__parsed_fn fn) {
  rc_error e = {0};
  rc__parse_job *j = NULL;
  if (len >= RC__REMOTE_ASYNC_BYTES && (j = rc__calloc(1, sizeof *j))) {
    j->body = rc__malloc(len + 1);
    j->url = rc__strdup(url ? url : "");
    if (j->body && j->url) {
      memcpy(j->body, body, len);
      j->body[len] = '\0';
      j->r = r;
      j->fmt = fmt;
      j->len = len;
      j->limits = r->limits;
      j->fn = fn;
      j->req.data = j;
      if (uv_queue_work(r->base.eng->loop, &j->req, job_work, job_after) == 0) {
        r->job = j;
        rc__handle_opened(r->base.eng);  /* engine free waits for it like a handle */
        return;
      }
    }
    rc__free(j->body);
    rc__free(j->url);
    rc__free(j);
  }
  /* Small, or no memory for a copy: parse here. */
  rc_value_t *v = NULL;
  int rc = rc__remote_parse(r, fmt, body, len, url, &v, &e);
  fn(r, rc, v, &e);
}

int rc__remote_parse(rc__remote *r, rc__format fmt, const char *body, size_t len,
                     const char *url, rc_value_t **out, rc_error *err) {
  return rc__parse(fmt, body, len, len, url, &r->limits, out, err);
}

int rc__remote_status_error(rc_error *err, const char *url, const rc__net_result *res,
                            const char *what) {
  /* The first line of the body, printable bytes only: servers explain themselves there
   * (Consul's plain text, Vault's {"errors":[...]}). */
  char detail[161];
  size_t n = 0;
  for (size_t i = 0; i < res->body_len && n < sizeof detail - 1; i++) {
    unsigned char ch = (unsigned char)res->body[i];
    if (ch == '\n' || ch == '\r') break;
    detail[n++] = ch < 0x20 || ch == 0x7f ? ' ' : (char)ch;
  }
  detail[n] = '\0';
  return rc__err(err, RC_EIO, url, 0, 0, "%s%sHTTP %ld%s%s", what ? what : "",
                 what ? ": " : "", res->status, n ? ": " : "", detail);
}

void rc__url_path_escape(rc__buf *b, const char *s) {
  static const char hex[] = "0123456789ABCDEF";
  for (; *s; s++) {
    unsigned char ch = (unsigned char)*s;
    if ((ch >= 'A' && ch <= 'Z') || (ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9') ||
        ch == '-' || ch == '.' || ch == '_' || ch == '~' || ch == '/') {
      rc__buf_addc(b, (char)ch);
    } else {
      rc__buf_addc(b, '%');
      rc__buf_addc(b, hex[ch >> 4]);
      rc__buf_addc(b, hex[ch & 15]);
    }
  }
}

static int b64val(unsigned char ch) {
  if (ch >= 'A' && ch <= 'Z') return ch - 'A';
  if (ch >= 'a' && ch <= 'z') return ch - 'a' + 26;
  if (ch >= '0' && ch <= '9') return ch - '0' + 52;
  if (ch == '+') return 62;
  if (ch == '/') return 63;
  return -1;
}

bool rc__base64_decode(const char *s, size_t n, rc__buf *out) {
  while (n && s[n - 1] == '=') n--;
  if (n % 4 == 1) return false;
  uint32_t acc = 0;
  int bits = 0;
  for (size_t i = 0; i < n; i++) {
    int v = b64val((unsigned char)s[i]);
    if (v < 0) return false;
    acc = (acc << 6) | (uint32_t)v;
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      rc__buf_addc(out, (char)((acc >> bits) & 0xff));
    }
  }
  return !out->oom;
}

const rc_value_t *rc__json_member(const rc_value_t *o, const char *key) {
  if (!o || o->type != RC_TYPE_OBJECT) return NULL;
  long i = rc__object_find(o, key, strlen(key));
  return i >= 0 ? o->u.members[i].val : NULL;
}

double rc__json_number(const rc_value_t *o, const char *key, double dflt) {
  const rc_value_t *v = rc__json_member(o, key);
  if (!v) return dflt;
  if (v->type == RC_TYPE_INT) return (double)v->u.i;
  if (v->type == RC_TYPE_FLOAT) return v->u.f;
  return dflt;
}

/* ===================================================================================
 * Hybrid watching (see remote_common.h)
 * =================================================================================== */

/* The retry timer lives in its own allocation: a source is freed as soon as its stop is
 * done, while this timer's close callback may still be pending. */
typedef struct rc__hybrid_timer {
  uv_timer_t t;
  rc_engine_t *eng;
  rc__hybrid *h;            /* NULL once stopped: the source may be gone */
} rc__hybrid_timer;

void rc__hybrid_init(rc__hybrid *h, rc__remote *r, const char *what, const char *again) {
  h->r = r;
  h->what = what;
  h->again = again;
  h->poll_ms = r->base.comp ? (uint64_t)rc__desc_number(r->base.comp, "poll_ms", 1000)
                            : 1000;
  h->backoff.min_ms = r->backoff.min_ms;
  h->backoff.max_ms = r->backoff.max_ms;
  h->backoff.cur_ms = 0;
}

static void hybrid_timer_cb(uv_timer_t *t) {
  rc__hybrid_timer *ht = t->data;
  rc__hybrid *h = ht->h;
  if (h && !h->r->stopping && h->fire) h->fire(h->r);
}

static void hybrid_timer_closed(uv_handle_t *hd) {
  rc__hybrid_timer *ht = hd->data;
  rc__handle_closed(ht->eng);
  rc__free(ht);
}

int rc__hybrid_start(rc__hybrid *h, void (*fire)(rc__remote *), rc_error *err) {
  h->fire = fire;
  if (!h->poll_ms) return 0;
  rc_engine_t *eng = h->r->base.eng;
  rc__hybrid_timer *ht = rc__calloc(1, sizeof *ht);
  if (!ht) return rc__err(err, RC_ENOMEM, NULL, 0, 0, "out of memory");
  int rc = uv_timer_init(eng->loop, &ht->t);
  if (rc) {
    rc__free(ht);
    return rc__err(err, RC_ESYS, NULL, 0, 0, "uv_timer_init: %s", uv_strerror(rc));
  }
  ht->t.data = ht;
  ht->eng = eng;
  ht->h = h;
  rc__handle_opened(eng);
  h->timer = ht;
  return 0;
}

void rc__hybrid_stop(rc__hybrid *h) {
  rc__hybrid_timer *ht = h->timer;
  h->timer = NULL;
  h->polling = h->probe_due = false;
  if (!ht) return;
  ht->h = NULL;
  uv_timer_stop(&ht->t);
  uv_close((uv_handle_t *)&ht->t, hybrid_timer_closed);
}

bool rc__hybrid_enabled(const rc__hybrid *h) { return h->poll_ms && h->timer; }

/* "1s", "1500ms": the poll interval as a policy would write it. */
static void duration_text(char *buf, size_t n, uint64_t ms) {
  if (ms % 1000 == 0) snprintf(buf, n, "%llus", (unsigned long long)(ms / 1000));
  else snprintf(buf, n, "%llums", (unsigned long long)ms);
}

void rc__hybrid_arm(rc__hybrid *h, uint64_t ms) {
  if (h->timer && !h->r->stopping) uv_timer_start(&h->timer->t, hybrid_timer_cb, ms, 0);
}

void rc__hybrid_retry_later(rc__hybrid *h) {
  rc__hybrid_arm(h, rc__backoff_next(&h->backoff, &h->r->rng));
}

void rc__hybrid_enter(rc__hybrid *h, const char *file, const char *why) {
  rc__component *c = h->r->base.comp;
  h->polling = true;
  h->probe_due = false;
  h->backoff.cur_ms = 0;
  char every[32];
  duration_text(every, sizeof every, h->poll_ms);
  if (c)
    rc__emit(h->r->base.eng, RC_EVENT_COMPONENT_STATE, c->name, file, 0, 0, 0,
             "%s failed (%s); polling every %s while retrying it", h->what,
             why && *why ? why : "no reason given", every);
  rc__hybrid_retry_later(h);
}

void rc__hybrid_leave(rc__hybrid *h, const char *file) {
  rc__component *c = h->r->base.comp;
  h->polling = false;
  h->probe_due = false;
  h->backoff.cur_ms = 0;
  if (h->timer) uv_timer_stop(&h->timer->t);
  if (c)
    rc__emit(h->r->base.eng, RC_EVENT_COMPONENT_STATE, c->name, file, 0, 0, 0,
             "%s; polling stopped", h->again);
}

uint64_t rc__hybrid_poll_delay(rc__hybrid *h) {
  return rc__remote_splay(h->r, h->poll_ms);
}
