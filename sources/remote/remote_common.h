/* remote_common.h: what the remote sources (http.c, consul.c, vault.c, etcd.c) share:
 * the engine's one network context, a poll timer, retry with exponential backoff +
 * jitter + ceiling, Retry-After, tokens read from an env var or a file, body parsing,
 * "deliver only what changed", and hybrid watching. Loop thread only, like every
 * source. */
#ifndef RC_REMOTE_COMMON_H
#define RC_REMOTE_COMMON_H

#include "engine.h"
#include "net.h"

/* Exponential backoff with jitter and a ceiling, reset on success. */
typedef struct rc__backoff {
  uint64_t min_ms, max_ms;  /* first delay, ceiling */
  uint64_t cur_ms;          /* next base delay; 0 = reset */
} rc__backoff;

/* A secret read from an environment variable or a file (the file is re-read when its
 * size or mtime change). Never printed; wiped when replaced or freed. */
typedef struct rc__token {
  char *env, *file;         /* where it comes from (names, not secrets) */
  char *value;              /* NULL until read, or when none is configured */
  int64_t mtime_ns;
  int64_t size;
} rc__token;

/* The part every remote source starts with (first member: a cast from rc__source). */
typedef struct rc__remote rc__remote;
/* The end of a parse (rc__remote_parse_then): `v` (owned; NULL when rc != 0) or `err`. */
typedef void (*rc__parsed_fn)(rc__remote *r, int rc, rc_value_t *v, const rc_error *err);

struct rc__remote {
  rc__source base;
  rc__net *net;             /* the engine's; borrowed */
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
  rc__parse_limits limits;  /* copied: base.comp is NULL once retired */
  char *ca_file;
  bool insecure;
  uint32_t timeout_ms;      /* per request, on top of a blocking query's wait */
  size_t max_bytes;         /* largest body (net limit) */
  rc_value_t *last;         /* last delivered value (NULL = absent) */
  bool delivered;           /* `last` means something */
  struct rc__parse_job *job;  /* a parse on the thread pool, or NULL */
};

/* Fills the shared fields from c's source description: token_env, token_file, ca_file,
 * insecure, timeout_ms (default `timeout_dflt`), max_bytes, backoff_min_ms (default
 * `backoff_min_dflt`) and backoff_max_ms (default 1 min). A string lost to OOM reads as
 * absent (a missing token then fails the first request, visibly). */
void rc__remote_init(rc__remote *r, const rc__source_ops *ops, rc__component *c,
                     uint32_t timeout_dflt, uint64_t backoff_min_dflt);
/* Opens the timer and takes the engine's network (creating it on first use). `tick`
 * runs for every timer expiry. 0 or an RC_E* code with `err` filled. */
int rc__remote_start(rc__remote *r, void (*tick)(rc__remote *), rc_error *err);
/* Cancels the request, closes the timer; `done` runs when it is closed. */
void rc__remote_stop(rc__remote *r, void (*done)(rc__source *));
/* Frees the shared fields (not `r` itself). */
void rc__remote_free(rc__remote *r);
/* Runs `tick` after `ms` (0 = on the next loop turn). */
void rc__remote_schedule(rc__remote *r, uint64_t ms);
/* `ms` less up to 10% at random: a fleet started together does not poll in step. */
uint64_t rc__remote_splay(rc__remote *r, uint64_t ms);

/* Reports a failure (an error event; the last value stays) and schedules the retry:
 * the next backoff delay, or `retry_after_ms` when that is longer. */
void rc__remote_fail(rc__remote *r, const rc_error *err, uint64_t retry_after_ms);
/* The next backoff delay, with jitter in [d/2, d]; doubles up to the ceiling. */
uint64_t rc__backoff_next(rc__backoff *b, uint64_t *rng);
/* A success: the next failure starts from the first delay again. */
void rc__remote_success(rc__remote *r);
/* Delivers `v` (moved in; NULL = absent) unless it equals the last delivery; a source
 * that was failing gets the value again so that the engine reports its recovery. */
void rc__remote_deliver(rc__remote *r, rc_value_t *v);
/* The source answered but nothing changed (304, a blocking query timing out). Reports
 * recovery if the source was failing. */
void rc__remote_unchanged(rc__remote *r);

/* The current token (borrowed until the next call), NULL when none is configured. On a
 * configured token that cannot be read: NULL with `err` filled (RC_EIO). */
const char *rc__token_get(rc__token *t, rc_error *err);
void rc__token_free(rc__token *t);

/* Parses a body and calls `fn` with the result: at once on the loop for a small body,
 * from the thread pool for one of RC__REMOTE_ASYNC_BYTES or more (the body is copied).
 * While r->job is set the source starts nothing else; stop waits for the job. */
#define RC__REMOTE_ASYNC_BYTES ((size_t)1 << 20)
void rc__remote_parse_then(rc__remote *r, rc__format fmt, const char *body, size_t len,
                           const char *url, rc__parsed_fn fn);
/* Milliseconds asked by a Retry-After header (seconds or an HTTP date), 0 if none. */
uint64_t rc__retry_after_ms(const char *v);
/* Parses a body into *out (NULL on failure with `err` filled). `url` names the input in
 * messages. */
int rc__remote_parse(rc__remote *r, rc__format fmt, const char *body, size_t len,
                     const char *url, rc_value_t **out, rc_error *err);
/* "HTTP 503 Service Unavailable: <first line of the body>" into err (RC_EIO), `url` as
 * the file. Returns RC_EIO. */
int rc__remote_status_error(rc_error *err, const char *url, const rc__net_result *res,
                            const char *what);
/* Appends `s` percent-encoded, keeping '/' (a path in a URL). */
void rc__url_path_escape(rc__buf *b, const char *s);
/* Member `key` of object `o` (borrowed), NULL if `o` is not an object or lacks it. */
const rc_value_t *rc__json_member(const rc_value_t *o, const char *key);
/* A number member as a double (`dflt` when absent or not a number). */
double rc__json_number(const rc_value_t *o, const char *key, double dflt);
/* base64 (RFC 4648, with padding) into `out`; returns false if malformed. */
bool rc__base64_decode(const char *s, size_t n, rc__buf *out);

/* ===================================================================================
 * Hybrid watching: a realtime watch (Consul blocking queries, an etcd watch stream)
 * that fails in a way plain reads do not falls back to polling every `poll_ms`, keeps
 * retrying the realtime way on its own backoff schedule, and stops polling once that
 * works again. Each switch is a component.state event. The source keeps its own
 * request logic; this holds the mode, the retry timer and the sentences.
 * =================================================================================== */

struct rc__hybrid_timer;  /* the retry timer, allocated apart: it may outlive the source */

typedef struct rc__hybrid {
  rc__remote *r;            /* the source this belongs to; borrowed */
  uint64_t poll_ms;         /* the fallback's poll interval; 0 = no fallback */
  bool polling;             /* falling back: polling while retrying the realtime way */
  bool probe_due;           /* the retry timer fired; the source retries when it can */
  rc__backoff backoff;      /* delays between realtime retries (the source's min/max) */
  const char *what;         /* "consul blocking query": "<what> failed (...); ..." */
  const char *again;        /* "blocking queries work again": "<again>; polling stopped" */
  void (*fire)(rc__remote *r);  /* runs when the retry timer expires */
  struct rc__hybrid_timer *timer;  /* NULL when the fallback is off or stopped */
} rc__hybrid;

/* Fills `h` for source `r` (after rc__remote_init): poll_ms from the description
 * (default 1 s; 0 turns the fallback off), the retry backoff from r's. `what` and
 * `again` are static strings for the events. */
void rc__hybrid_init(rc__hybrid *h, rc__remote *r, const char *what, const char *again);
/* Opens the retry timer (nothing when the fallback is off); `fire` runs on each expiry
 * unless the source is stopping. 0 or an RC_E* code with `err` filled. */
int rc__hybrid_start(rc__hybrid *h, void (*fire)(rc__remote *), rc_error *err);
/* Stops and closes the retry timer. Call it from the source's stop, before
 * rc__remote_stop; the timer's memory is freed by its close callback, so the source
 * may be freed before that runs. */
void rc__hybrid_stop(rc__hybrid *h);
/* Whether the fallback is configured (and not stopped). */
bool rc__hybrid_enabled(const rc__hybrid *h);
/* Enters polling: the event "<what> failed (<why>); polling every <poll> while retrying
 * it" (`file`: where, e.g. the URL) and the first realtime retry on the backoff. */
void rc__hybrid_enter(rc__hybrid *h, const char *file, const char *why);
/* Leaves polling: the event "<again>; polling stopped"; the retry timer stops. */
void rc__hybrid_leave(rc__hybrid *h, const char *file);
/* A realtime retry failed: the next one after the next backoff delay. */
void rc__hybrid_retry_later(rc__hybrid *h);
/* Runs `fire` after `ms` (replacing any pending expiry). */
void rc__hybrid_arm(rc__hybrid *h, uint64_t ms);
/* The delay until the next poll: poll_ms less up to 10% at random. */
uint64_t rc__hybrid_poll_delay(rc__hybrid *h);

#endif
