/* SPDX-License-Identifier: MIT (see LICENSE) */
/* remote.h: the driver every source reached over a network starts with: a timer for
 * polls and retries, retry with exponential backoff + jitter + a ceiling, a circuit
 * breaker, tokens, parsing (on the thread pool for large bodies), "deliver only what
 * changed", and the engine's HTTP core (net.h) for the kinds that speak HTTP. A kind
 * embeds rc__remote first and writes only its protocol. Loop thread only. */
#ifndef RC_REMOTE_H
#define RC_REMOTE_H

#include "backoff.h"
#include "net.h"
#include "parse_job.h"
#include "token.h"

/* The retry defaults of every remote kind: the first line of its defaults table, which
 * then adds timeout_ms and its own (rc__opt_default). Chosen so that a source finds its
 * server again within a few seconds of its return, however long it was away: retries
 * are at most 5 s apart, and the breaker's cool-down is no longer than that (a longer
 * one would be the real ceiling). A fleet still spreads out (jitter, rate limits). */
#define RC__REMOTE_DEFAULTS                                                   \
  {"backoff_min_ms", 1000}, {"backoff_max_ms", 5000}, {"circuit_failures", 5}, \
    {"circuit_cooldown_ms", 5000}

/* The part every remote source starts with (first member: a cast from rc__source). */
typedef struct rc__remote rc__remote;
/* The end of a parse (rc__remote_parse_then): `v` (owned; NULL when rc != 0) or `err`. */
typedef void (*rc__parsed_fn)(rc__remote *r, int rc, rc_value_t *v, const rc_error *err);

struct rc__remote {
  rc__source base;
  rc__source_ctx *ctx;
  rc__net *net;             /* the engine's HTTP core (rc__remote_use_net); borrowed */
  rc__net_request *req;     /* in flight, or NULL */
  uv_timer_t timer;         /* next poll or retry */
  bool timer_open, stopping;
  void (*tick)(struct rc__remote *r);  /* what the timer runs */
  void (*stop_done)(rc__source *);
  rc__backoff backoff;
  /* Circuit breaker: after `circuit_failures` failures in a row (0: never) no request
   * for `circuit_cooldown_ms`, then one probe; a success closes it. */
  uint32_t failures, circuit_failures;
  uint64_t circuit_cooldown_ms;
  bool circuit_open;
  uint64_t rng;             /* xorshift state for jitter */
  rc__token token;
  rc__parse_limits limits;  /* the source's, bounded by max_bytes */
  const char *ca_file;      /* borrowed from the options */
  bool insecure;
  uint32_t timeout_ms;      /* per request, on top of a blocking query's wait */
  size_t max_bytes;         /* largest body (net limit) */
  rc_value_t *last;         /* last delivered value (NULL = absent) */
  bool delivered;           /* `last` means something */
  rc__parse_job *job;       /* a parse on the thread pool, or NULL */
  rc__parsed_fn parsed;     /* what the job's end calls */
};

/* A new source structure of `size` bytes (a kind's own, starting with rc__remote) with
 * the shared fields filled from the source's options: token_env, token_file, ca_file,
 * insecure, timeout_ms, max_bytes, backoff_min_ms, backoff_max_ms, circuit_failures,
 * circuit_cooldown_ms (their defaults come from the kind). NULL with `err` filled
 * (RC_ENOMEM). */
void *rc__remote_new(size_t size, rc__source_ctx *ctx, rc_error *err);
/* Opens the timer; `tick` runs for every timer expiry. 0 or an RC_E* code with `err`
 * filled. */
int rc__remote_start(rc__remote *r, void (*tick)(rc__remote *), rc_error *err);
/* Takes the engine's HTTP core (opened on first use) into r->net. 0 or an RC_E* code. */
int rc__remote_use_net(rc__remote *r, rc_error *err);
/* Cancels the request and the parse, closes the timer; `done` runs when all ended. */
void rc__remote_stop(rc__remote *r, void (*done)(rc__source *));
/* Frees the shared fields (not `r` itself). */
void rc__remote_free(rc__remote *r);
/* Runs `tick` after `ms` (0 = on the next loop turn). */
void rc__remote_schedule(rc__remote *r, uint64_t ms);
/* `ms` less up to 10% at random: a fleet started together does not poll in step. */
uint64_t rc__remote_splay(rc__remote *r, uint64_t ms);
/* The loop's clock, ms. */
uint64_t rc__remote_now(const rc__remote *r);

/* Reports a failure (an error event; the last value stays) and schedules the retry:
 * the next backoff delay, or `retry_after_ms` when that is longer. */
void rc__remote_fail(rc__remote *r, const rc_error *err, uint64_t retry_after_ms);
/* A success: the next failure starts from the first delay again. */
void rc__remote_success(rc__remote *r);
/* Delivers `v` (moved in; NULL = absent) unless it equals the last delivery; a source
 * that was failing gets the value again so that the engine reports its recovery. */
void rc__remote_deliver(rc__remote *r, rc_value_t *v);
/* The source answered but nothing changed (304, a blocking query timing out). Reports
 * recovery if the source was failing. */
void rc__remote_unchanged(rc__remote *r);

/* Parses a body and calls `fn` with the result: at once for a small body, from the
 * thread pool for a large one (the body is copied). While r->job is set the source
 * starts nothing else; stop waits for the job. `url` names the input in messages. */
void rc__remote_parse_then(rc__remote *r, rc__format fmt, const char *body, size_t len,
                           const char *url, rc__parsed_fn fn);
/* Parses a body here, into *out (NULL on failure with `err` filled). */
int rc__remote_parse(rc__remote *r, rc__format fmt, const char *body, size_t len,
                     const char *url, rc_value_t **out, rc_error *err);

#endif
