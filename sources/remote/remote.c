/* SPDX-License-Identifier: MIT (see LICENSE) */
/* remote.c: the driver the remote sources share (see remote.h): options, the poll/retry
 * timer, backoff and the circuit breaker, parsing, delivering only real changes, and the
 * engine's HTTP core as a shared service. */
#include "remote.h"

#include <string.h>

/* ===================================================================================
 * The engine's HTTP core, as a service shared by every source that speaks HTTP
 * =================================================================================== */

static void net_closed(void *ud) { rc__host_handle_closed(ud); }

static void *net_open(rc__host *host, rc_error *err) {
  rc__net *net = rc__net_new(rc__host_loop(host), err);
  /* Counted as one handle: engine free waits until its last close callback ran. */
  if (net) rc__host_handle_opened(host);
  return net;
}

static void net_close(void *svc, rc__host *host) { rc__net_close(svc, net_closed, host); }

static const rc__service_kind net_service = {"net", net_open, net_close};

int rc__remote_use_net(rc__remote *r, rc_error *err) {
  if (!r->net) r->net = rc__src_service(r->ctx, &net_service, err);
  return r->net ? 0 : err && err->code ? err->code : RC_ENOMEM;
}

/* ===================================================================================
 * Lifecycle
 * =================================================================================== */

void *rc__remote_new(size_t size, rc__source_ctx *ctx, rc_error *err) {
  rc__remote *r = rc__src_alloc(size, err);
  if (!r) return NULL;
  r->ctx = ctx;
  r->limits = *rc__src_limits(ctx);
  r->rng = rc__rand_seed(r);
  if (!rc__token_init(&r->token, rc__opt_string(ctx, "token_env"),
                      rc__opt_string(ctx, "token_file"))) {
    rc__free(r);
    rc__err(err, RC_ENOMEM, NULL, 0, 0, "out of memory");
    return NULL;
  }
  r->ca_file = rc__opt_string(ctx, "ca_file");
  r->insecure = rc__opt_bool(ctx, "insecure", false);
  r->timeout_ms = (uint32_t)rc__opt_number(ctx, "timeout_ms");
  /* A response is held in memory whole: the net core's default bounds it unless the
   * policy says otherwise (max_bytes, or a smaller limits.max_bytes). */
  size_t dflt = r->limits.max_bytes < RC__NET_MAX_BODY_DEFAULT ? r->limits.max_bytes
                                                                : RC__NET_MAX_BODY_DEFAULT;
  r->max_bytes = rc__opt(ctx, "max_bytes") ? (size_t)rc__opt_number(ctx, "max_bytes") : dflt;
  r->backoff.min_ms = (uint64_t)rc__opt_number(ctx, "backoff_min_ms");
  r->backoff.max_ms = (uint64_t)rc__opt_number(ctx, "backoff_max_ms");
  if (r->backoff.min_ms < 1) r->backoff.min_ms = 1;
  if (r->backoff.max_ms < r->backoff.min_ms) r->backoff.max_ms = r->backoff.min_ms;
  r->circuit_failures = (uint32_t)rc__opt_number(ctx, "circuit_failures");
  r->circuit_cooldown_ms = (uint64_t)rc__opt_number(ctx, "circuit_cooldown_ms");
  /* The body limit bounds the parser too. */
  if (r->max_bytes && r->max_bytes < r->limits.max_bytes)
    r->limits.max_bytes = r->max_bytes;
  return r;
}

static void on_timer(uv_timer_t *t) {
  rc__remote *r = t->data;
  if (!r->stopping && r->tick) r->tick(r);
}

int rc__remote_start(rc__remote *r, void (*tick)(rc__remote *), rc_error *err) {
  int rc = uv_timer_init(rc__src_loop(r->ctx), &r->timer);
  if (rc) return rc__err(err, RC_ESYS, NULL, 0, 0, "uv_timer_init: %s", uv_strerror(rc));
  r->timer.data = r;
  r->timer_open = true;
  r->tick = tick;
  rc__host_handle_opened(rc__src_host(r->ctx));
  return 0;
}

void rc__remote_schedule(rc__remote *r, uint64_t ms) {
  if (r->stopping || !r->timer_open) return;
  uv_timer_start(&r->timer, on_timer, ms, 0);
}

uint64_t rc__remote_splay(rc__remote *r, uint64_t ms) {
  uint64_t span = ms / 10;
  return span ? ms - rc__rand(&r->rng) % span : ms;
}

uint64_t rc__remote_now(const rc__remote *r) { return uv_now(rc__src_loop(r->ctx)); }

/* Stopped once the timer is closed and no parse job is left. */
static void maybe_stopped(rc__remote *r) {
  if (!r->stopping || r->timer_open || r->job || !r->stop_done) return;
  void (*done)(rc__source *) = r->stop_done;
  r->stop_done = NULL;
  done(&r->base);
}

static void timer_closed(uv_handle_t *h) {
  rc__remote *r = h->data;
  rc__host_handle_closed(rc__src_host(r->ctx));
  r->timer_open = false;
  maybe_stopped(r);
}

void rc__remote_stop(rc__remote *r, void (*done)(rc__source *)) {
  if (r->stopping) return;
  r->stopping = true;
  r->stop_done = done;
  rc__net_cancel(r->req);
  r->req = NULL;
  rc__parse_cancel(r->job);  /* a job already running still ends */
  if (r->timer_open && !uv_is_closing((uv_handle_t *)&r->timer))
    uv_close((uv_handle_t *)&r->timer, timer_closed);
  else
    maybe_stopped(r);
}

void rc__remote_free(rc__remote *r) {
  rc__token_free(&r->token);
  rc__value_unref(r->last);
}

/* ===================================================================================
 * Outcomes
 * =================================================================================== */

void rc__remote_success(rc__remote *r) {
  r->backoff.cur_ms = 0;
  r->failures = 0;
  if (r->circuit_open) {
    r->circuit_open = false;
    rc__src_condition(r->ctx, RC__SRC_CIRCUIT_OPEN, false);
    rc__src_state(r->ctx, NULL, 0, "circuit closed: the source answers again (after %llu ms "
                  "open or more)", (unsigned long long)r->circuit_cooldown_ms);
  }
}

void rc__remote_fail(rc__remote *r, const rc_error *err, uint64_t retry_after_ms) {
  rc__src_error(r->ctx, err);
  uint64_t d = rc__backoff_next(&r->backoff, &r->rng);
  r->failures++;
  if (r->circuit_failures && r->failures >= r->circuit_failures) {
    /* Open (or still open after a failed probe): leave the server alone for a while. */
    if (!r->circuit_open)
      rc__src_state(r->ctx, NULL, 0, "circuit open after %llu failures in a row: no request "
                    "for %llu ms (the cool-down; retries are at most %llu ms apart), then "
                    "one probe", (unsigned long long)r->failures,
                    (unsigned long long)r->circuit_cooldown_ms,
                    (unsigned long long)r->backoff.max_ms);
    r->circuit_open = true;
    rc__src_condition(r->ctx, RC__SRC_CIRCUIT_OPEN, true);
    if (d < r->circuit_cooldown_ms) d = r->circuit_cooldown_ms;
  }
  if (retry_after_ms > d) d = retry_after_ms;
  rc__src_retry_in(r->ctx, d);
  rc__remote_schedule(r, d);
}

void rc__remote_deliver(rc__remote *r, rc_value_t *v) {
  bool same = r->delivered &&
              ((!v && !r->last) || (v && r->last && rc_value_equal(v, r->last)));
  if (same && !rc__src_failing(r->ctx)) {
    rc__value_unref(v);
    rc__src_answered(r->ctx);
    return;
  }
  rc__value_unref(r->last);
  r->last = rc__value_ref(v);
  r->delivered = true;
  rc__src_deliver(r->ctx, v);
}

void rc__remote_unchanged(rc__remote *r) {
  if (rc__src_failing(r->ctx) && r->delivered) rc__src_deliver(r->ctx, rc__value_ref(r->last));
  else rc__src_answered(r->ctx);
}

/* ===================================================================================
 * Parsing
 * =================================================================================== */

static void parsed(void *ud, rc__parse_result *res) {
  rc__remote *r = ud;
  r->job = NULL;
  if (!res->cancelled && !r->stopping) {
    r->parsed(r, res->rc, res->rc ? NULL : res->value, &res->err);
    res->value = NULL;
  }
  rc__value_unref(res->value);
  maybe_stopped(r);
}

void rc__remote_parse_then(rc__remote *r, rc__format fmt, const char *body, size_t len,
                           const char *url, rc__parsed_fn fn) {
  r->parsed = fn;
  rc__parse_input in = {.bytes = body, .len = len, .fmt = fmt, .limits = &r->limits,
                        .name = url ? url : ""};
  /* A small body is parsed (and `fn` called) before submit returns, NULL. */
  rc__parse_job *j = rc__parse_submit(rc__src_host(r->ctx), &in, parsed, r);
  if (j) r->job = j;
}

int rc__remote_parse(rc__remote *r, rc__format fmt, const char *body, size_t len,
                     const char *url, rc_value_t **out, rc_error *err) {
  return rc__parse(fmt, body, len, len, url, &r->limits, out, err);
}
