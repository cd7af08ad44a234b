/* SPDX-License-Identifier: MIT (see LICENSE) */
/* source.h: the source interface. A source kind turns one place where configuration lives
 * into values for one component, and sees the engine only through the calls below (its
 * context): deliver a value or an error, read its options, know whether this is the
 * initial read, reach the loop and the engine's shared services. It never sees an engine
 * or component structure. Each kind is one rc__source_kind, listed once in registry.c;
 * its Lua half (options and their checks) is lua/reactcfg/sources/<kind>.lua.
 * Everything here runs on the loop thread unless a comment says otherwise. */
#ifndef RC_SOURCE_H
#define RC_SOURCE_H

#include "parse.h"

#include <stdbool.h>
#include <uv.h>

typedef struct rc__source rc__source;
typedef struct rc__source_kind rc__source_kind;
/* The engine's side of one source (its component, its options). Opaque here. */
typedef struct rc__source_ctx rc__source_ctx;
/* The engine as a shared service or a handle that outlives its source sees it: the loop
 * and the count of open handles. Lives as long as the engine. Opaque here. */
typedef struct rc__host rc__host;

/* ===================================================================================
 * What a kind is
 * =================================================================================== */

/* Flags: everything generic the engine does for a source is chosen by these, never by
 * the kind's name. */
enum {
  /* Its last good value goes to the policy's last-known-good cache. */
  RC__SRC_CACHEABLE = 1u << 0,
  /* Its first value may come after start (over a network): `startup` defaults to "wait". */
  RC__SRC_WAITS = 1u << 1,
  /* It retries with backoff and a circuit breaker: the component's `retry` applies. */
  RC__SRC_RETRY = 1u << 2,
  /* It watches the local file named by its `path` option (with `format`): the engine
   * uses it to watch the policy file itself. */
  RC__SRC_FILE = 1u << 3,
  /* Its values come from the application (rc_engine_push), not from the source. */
  RC__SRC_PUSHED = 1u << 4,
};
/* A source reached over the network. */
#define RC__SRC_REMOTE (RC__SRC_CACHEABLE | RC__SRC_WAITS | RC__SRC_RETRY)

/* A numeric option's default, used when the description lacks it (rc__opt_number) and
 * read by the kind's Lua normalizer (h.default), so each default is written once. In a
 * kind's table the first entry for a key wins (its own before shared ones). */
typedef struct rc__opt_default {
  const char *key;
  double value;
} rc__opt_default;

/* A service several sources of an engine share (the inotify descriptor, the curl multi
 * core), opened on first use (rc__src_service) and closed when the engine stops. */
typedef struct rc__service_kind {
  const char *name;
  /* Opens the service on the host's loop. It counts as open handles what it opens
   * (rc__host_handle_opened) and closes them in `close`. NULL with `err` filled. */
  void *(*open)(rc__host *host, rc_error *err);
  /* Starts closing. Sources using it have been stopped before. */
  void (*close)(void *svc, rc__host *host);
} rc__service_kind;

struct rc__source_kind {
  const char *name;                /* the description's `kind`: "file", "http", ... */
  unsigned flags;                  /* RC__SRC_* */
  const rc__opt_default *defaults; /* ended by { NULL, 0 }; may be NULL */
  /* Creates a source (not started) from its options, read through `ctx`, and returns
   * it; the engine then sets its `kind` and `ctx`. No delivery from here. NULL with
   * `err` filled (RC_EPOLICY for unusable options, RC_ENOMEM). */
  rc__source *(*create)(rc__source_ctx *ctx, rc_error *err);
  /* Starts watching. Delivers the current value before returning when it can (the
   * initial read); otherwise the first value comes later and the component's startup
   * policy applies. 0 or an RC_E* code with `err` filled. */
  int (*start)(rc__source *s, rc_error *err);
  /* Stops: nothing is delivered after it returns. Calls done(s) once its handles are
   * closed and its thread-pool work ended (at once if none); the engine then frees it. */
  void (*stop)(rc__source *s, void (*done)(rc__source *s));
  /* Reads again now, past poll intervals (a blocking query or a watch starts over with a
   * fresh read): a reload request, a queue overflow. Every read it causes ends in a
   * delivery, an error or rc__src_answered. NULL: nothing to re-read. */
  void (*rescan)(rc__source *s);
  /* The process environment changed (rc_engine_setenv). NULL: not interested. */
  void (*env_changed)(rc__source *s);
  /* Frees a created or stopped source. */
  void (*free)(rc__source *s);
};

/* The functions of a kind whose own are named <prefix>_create, _start, _stop, _rescan and
 * _free, for its rc__source_kind initializer. */
#define RC__SOURCE_FUNCS(prefix)                                                     \
  .create = prefix##_create, .start = prefix##_start, .stop = prefix##_stop,          \
  .rescan = prefix##_rescan, .free = prefix##_free

/* The first member of every source's own structure. */
struct rc__source {
  const rc__source_kind *kind;
  rc__source_ctx *ctx;
};

/* ===================================================================================
 * Delivering (a source never touches configuration state: the engine decides the rest)
 * =================================================================================== */

/* A new zeroed source structure of `size` bytes (for a kind's create), or NULL with
 * `err` filled (RC_ENOMEM). */
void *rc__src_alloc(size_t size, rc_error *err);

/* A new value (moved in; NULL = absent). Dropped once the source is retired. */
void rc__src_deliver(rc__source_ctx *ctx, rc_value_t *v);
/* The source read and nothing changed (a 304, the same bytes, the same environment):
 * a reload request waiting for this read goes on. A delivery or an error says as much. */
void rc__src_answered(rc__source_ctx *ctx);
/* A failure (copied): the last good value stays; a source.error event. */
void rc__src_error(rc__source_ctx *ctx, const rc_error *err);
/* Metadata about the source's latest read (moved in: an object, or NULL for none), which
 * a policy function reads as ctx.<field> (a Redis key's time to live as ctx.ttl). It
 * takes effect at the next evaluation and causes none by itself; set it before
 * delivering the value it describes. Dropped when the source stops. */
void rc__src_set_meta(rc__source_ctx *ctx, rc_value_t *meta);
/* The value last delivered is no longer valid (a time to live without a fresh read ran
 * out): the component's value becomes absent as if the source had delivered nothing,
 * without reporting a recovery (a failing source stays failing). */
void rc__src_withdraw(rc__source_ctx *ctx);
/* Whether the last delivery was an error (a source that answers again unchanged delivers
 * its value again, so that the engine reports the recovery and undoes an on_error). */
bool rc__src_failing(const rc__source_ctx *ctx);
/* Whether the engine is reading initial values: deliver before returning, read on the
 * loop rather than the thread pool, and a missing file is absent at once. */
bool rc__src_initial(const rc__source_ctx *ctx);
/* Whether content read again unchanged must still be delivered (the component's
 * `force`). */
bool rc__src_repeats(const rc__source_ctx *ctx);
/* A component.state event ("polling instead of watching", "circuit open"). `file` names
 * what it is about (a path, a URL) or NULL. */
void rc__src_state(rc__source_ctx *ctx, const char *file, int code, const char *fmt, ...)
  RC__PRINTF(4, 5);
/* What a source says about how it watches, for the engine's status and metrics (it
 * reports the event itself, with rc__src_state): its circuit breaker is open, or it
 * polls instead of watching in real time. `on` turns the condition on or off. */
typedef enum { RC__SRC_CIRCUIT_OPEN = 1u << 0, RC__SRC_POLLING = 1u << 1 } rc__src_cond;
void rc__src_condition(rc__source_ctx *ctx, rc__src_cond cond, bool on);
/* After a failure: the source reads again in `delay_ms` (the status's next retry). */
void rc__src_retry_in(rc__source_ctx *ctx, uint64_t delay_ms);
/* One read of a remote source took `ns`, from the request to the whole answer (for the
 * fetch-duration histogram of its kind). Not for reads that wait for a change (a
 * blocking query, a watch stream). */
void rc__src_fetch_time(rc__source_ctx *ctx, uint64_t ns);
/* Any event about this source's component (policy.error from a Lua source's code). */
void rc__src_event(rc__source_ctx *ctx, rc_event_type_t type, const char *file, int line,
                   int code, const char *fmt, ...) RC__PRINTF(6, 7);
/* The component's name, for messages (borrowed; "" once the source is retired). */
const char *rc__src_name(const rc__source_ctx *ctx);
/* Fills `err` with RC_EPOLICY at the component's declaration in the policy:
 * "component '<name>': <message>". Returns RC_EPOLICY. */
int rc__src_policy_error(const rc__source_ctx *ctx, rc_error *err, const char *fmt, ...)
  RC__PRINTF(3, 4);

/* ===================================================================================
 * Options: the description the kind's Lua normalizer made, as an immutable value
 * =================================================================================== */

/* Option `key` (borrowed: lives as long as the source), or NULL when absent. */
const rc_value_t *rc__opt(const rc__source_ctx *ctx, const char *key);
/* A string option (borrowed), NULL when absent or not a string. */
const char *rc__opt_string(const rc__source_ctx *ctx, const char *key);
/* A number option, else the kind's default for `key`, else 0. */
double rc__opt_number(const rc__source_ctx *ctx, const char *key);
/* A boolean option, else `dflt`. */
bool rc__opt_bool(const rc__source_ctx *ctx, const char *key, bool dflt);
/* The `format` option, or `dflt` when absent. */
rc__format rc__opt_format(const rc__source_ctx *ctx, rc__format dflt);
/* The parser limits: the `limits` option over the defaults (borrowed; a job for another
 * thread copies them). */
const rc__parse_limits *rc__src_limits(const rc__source_ctx *ctx);
/* A list option as a NULL-terminated array of copies: a sequence of strings in order, or
 * a table of string pairs as "k", "v", ... in key order. NULL when absent or out of
 * memory. Free with rc__opt_list_free. */
char **rc__opt_list(const rc__source_ctx *ctx, const char *key);
void rc__opt_list_free(char **list);

/* ===================================================================================
 * The loop, handles and shared services
 * =================================================================================== */

uv_loop_t *rc__src_loop(const rc__source_ctx *ctx);
rc__host *rc__src_host(const rc__source_ctx *ctx);
/* The engine's instance of service `k`, opened on first use. NULL with `err` filled. */
void *rc__src_service(rc__source_ctx *ctx, const rc__service_kind *k, rc_error *err);

uv_loop_t *rc__host_loop(rc__host *host);
/* Every handle a source or service opens is counted, so that the engine is freed only
 * after the last close callback ran (and after thread-pool work ended). */
void rc__host_handle_opened(rc__host *host);
void rc__host_handle_closed(rc__host *host);

#endif
