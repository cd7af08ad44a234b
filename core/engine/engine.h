/* SPDX-License-Identifier: MIT (see LICENSE) */
/* engine.h: the engine's private structure and the calls shared between the engine's
 * files (lifecycle, policy, wave, snapshot, subscriptions). Sources never include it:
 * they see the engine through sources/source.h, implemented in source_ctx.c.
 * Everything here runs on the loop thread unless its comment says otherwise. */
#ifndef RC_ENGINE_H
#define RC_ENGINE_H

#include "metrics.h"
#include "parse.h"
#include "scheduler.h"
#include "snapshot.h"
#include "source.h"

#include <lua.h>
#include <pthread.h>
#include <stdatomic.h>
#include <uv.h>

typedef struct rc__component rc__component;

/* What a source error does to the component's value (on_error). */
typedef enum { RC__ONERR_UNSET, RC__ONERR_KEEP, RC__ONERR_DEFAULT } rc__on_error;
/* What start does about a source whose first value comes later (startup). */
typedef enum { RC__START_DEFAULT, RC__START_WAIT, RC__START_CACHED, RC__START_FAIL }
  rc__startup_mode;

/* One named component of the policy. */
struct rc__component {
  rc_engine_t *eng;
  char *name;
  int index;              /* position in eng->comps, also its scheduler slot */
  int line;               /* declaration line in the policy (for messages) */
  rc__source *src;
  rc__health *health;         /* its name's record in eng->metrics (NULL: none) */
  rc_value_t *default_value;  /* owned; NULL if none */
  rc_value_t *value;          /* owned; last good value from the source, NULL = absent */
  rc_value_t *pending;        /* owned; delivered, waiting for its debounce to pass */
  bool has_pending;           /* pending may be NULL meaning "absent" */
  rc_value_t *held;           /* owned; past debounce, waiting for a throttle token (the
                                 scheduler's held flag says whether it is set; NULL may
                                 mean "absent") */
  bool keep_on_missing;       /* on_missing = "keep" */
  bool in_error;              /* last delivery was an error */
  bool delivered;             /* the source delivered (or failed) at least once */
  bool stale;                 /* the value came from the cache; the source has not
                                 answered yet */
  rc__startup_mode startup;   /* see startup.c */
  uint64_t startup_timeout_ms;
  rc_value_t *cache_written;  /* owned; the value last written to the cache */
  /* cache_for (fetch_once.c): after an answer the source is stopped and the value held
   * for cache_for_ms (0: watched as usual), then fetched again. */
  uint64_t cache_for_ms;
  uint64_t refetch_at;        /* loop ms when the stopped source starts again; 0: none */
  int64_t fetched_ns;         /* wall time of the answer `value` came from (0: unknown) */
  bool answered;              /* answered since the last check: its source is stopped */
  bool dirty;                 /* must be re-evaluated in the next wave */
  /* The policy's functions for this component (luaL_ref in eng->L, unreferenced when the
   * component is freed), LUA_NOREF when absent. */
  int update_ref, condition_ref, validate_ref, transform_ref, filter_ref, debounce_ref,
      on_error_ref;
  rc__on_error on_error;      /* what a source error does when there is no function */
  int *deps;                  /* owned; indices into eng->comps */
  size_t ndeps;
  /* A "processed" component (any function, dependency, condition, path rule or force)
   * contributes `result`, recomputed in dependency order by evaluate.c; a plain one
   * contributes its source value or default directly. */
  bool processed;
  bool evaluated;             /* has been evaluated once (the first wave always does) */
  bool active;                /* its condition holds (always, without a condition) */
  bool starting;              /* its source is starting: deliveries land directly */
  bool src_borrowed;          /* src belongs to the previous policy until a reload commits */
  bool touched;               /* force: delivered again unchanged; notify anyway */
  bool committed;             /* `result` was committed once (dynamic = false applies) */
  bool rejected;              /* a reload module refused its last value (reverted) */
  bool refused;               /* the source's current value did not make it through the
                                 policy (a transform, update, validate or filter refused
                                 it, or a reload module did): the cache keeps the last
                                 value that did */
  bool reread;                /* a reload request re-reads it: its next value skips
                                 debounce and throttle */
  bool reread_wait;           /* the request waits for this re-read's answer */
  bool read_by_condition;     /* some condition read this component */
  bool depended_on;           /* some component lists it in depends_on */
  uint64_t evaluated_at;      /* eng->stamp when last evaluated */
  uint64_t changed_at;        /* eng->stamp when its contribution last changed */
  int *reads;                 /* owned; components its condition read last time */
  size_t nreads, reads_cap;
  rc_value_t *result;         /* owned; last good result of a processed component, NULL =
                                 absent */
  rc_value_t *seen;           /* owned; the source value (or default) of the last
                                 evaluation, to tell a real change from a re-delivery */
  /* Path rules, relative to the component: `only`/`ignore` narrow what counts as a
   * change; `static_*` are not applied after the first commit (dynamic = false);
   * `secret_*` are redacted outside the C getters and the policy. Full paths (starting
   * with the component's name), owned. */
  char **only, **ignore, **static_paths, **secret_paths;
  size_t nonly, nignore, nstatic, nsecret;
  bool static_all, secret_all, force;
  /* The source: its kind (from the registry), its options (the normalized description
   * without functions, owned), the normalized description itself for kinds that read
   * functions from it (luaL_ref, or LUA_NOREF), what it watches as shown to people
   * (path, URL without credentials, key: owned), and the identity that a policy reload
   * compares to keep a running source (owned). */
  const rc__source_kind *kind;
  rc_value_t *src_opts;
  int src_desc_ref;
  char *target;
  char *src_key;
  /* Set for the engine's private components (the policy file's watch): deliveries go
   * here instead of into the pipeline. */
  void (*deliver_hook)(rc__component *c, rc_value_t *v);
  uint64_t debounce_ms, debounce_max_ms;
  uint64_t throttle_ms;       /* throttle `every`; 0 = no throttle */
  uint32_t throttle_burst;    /* throttle `burst` (tokens), at least 1 */
};

typedef struct rc__sub {
  int id;
  char *pattern;
  rc_change_fn fn;
  void *ud;
  _Atomic bool dead;
  /* Appended at the tail under sub_mu while the loop thread may be walking: atomic. */
  _Atomic(struct rc__sub *) next;
} rc__sub;

/* Requests posted from other threads to the loop thread (engine.c). A CALL runs `fn` on
 * the loop and hands its result back to the caller waiting in rc__call_on_loop (the
 * request then lives on that caller's stack); the others are heap-allocated and freed by
 * the loop once run. */
typedef struct rc__request {
  enum { RC__REQ_SETENV, RC__REQ_CALL, RC__REQ_MODULE_DONE } kind;
  char *name, *value;                   /* SETENV */
  int (*fn)(rc_engine_t *eng, void *arg);  /* CALL */
  void *arg;                            /* CALL: fn's; MODULE_DONE: the rc_reload_t */
  int result;                           /* CALL */
  bool done;                            /* CALL: answered (under req_mu) */
  struct rc__request *next;
} rc__request;

/* An event handler (events.c); id 0 is rc_engine_on_event's. */
typedef struct rc__handler {
  int id;
  rc_event_fn fn;
  void *ud;
} rc__handler;

/* A reload module (modules.c): a C one (fn) or one the policy declares (lua_ref). */
typedef struct rc__module {
  int id;
  char *name;               /* owned */
  char **patterns;          /* owned; the changes it gets: under any of them ("" = all) */
  size_t npatterns;
  rc_module_fn fn;          /* C module, or NULL */
  void *ud;
  int lua_ref;              /* policy module: its apply function (luaL_ref), or LUA_NOREF */
  uint32_t timeout_ms;
  rc__module_metrics *metrics;  /* its series (loop thread; found at its first call) */
} rc__module;

/* One committed revision kept for rollback (history.c). */
typedef struct rc__revision {
  struct rc_snapshot *snap;  /* retained */
  uint64_t reload_id;
  char trigger[64];
  size_t changes;
} rc__revision;

struct rc__txn;

/* The decisions behind the last revisions (trace_ring.c), kept while rc_engine_trace has
 * turned it on. */
typedef struct rc__trace_ring {
  pthread_mutex_t mu;            /* guards everything below but `on` */
  _Atomic bool on;               /* read without the lock: skip formatting when off */
  struct { uint64_t revision; char *json; } *slots;  /* a ring of `cap` */
  size_t cap, n, head;
  rc__buf pending;               /* the trace lines since the last commit, as JSON items */
  size_t pending_items, dropped;
} rc__trace_ring;

typedef enum { RC__ST_NEW, RC__ST_LOADED, RC__ST_RUNNING, RC__ST_STOPPING, RC__ST_STOPPED }
  rc__state;

struct rc_engine {
  rc__state state;
  lua_State *L;
  char *policy_path, *policy_dir;
  char *policy_real;             /* the policy file's absolute path (its watch) */
  int on_change_ref;             /* luaL_ref of the policy's on_change, or LUA_NOREF */

  rc__component **comps;
  size_t ncomps;
  int *order;                    /* owned; component indices in dependency order */

  uv_loop_t *loop;
  uv_loop_t own_loop;
  bool owns_loop;                /* rc_engine_start: loop and thread are ours */
  pthread_t thread;
  bool thread_started;
  pthread_mutex_t ready_mu;
  pthread_cond_t ready_cv;
  int ready_rc;                  /* -1 while starting */
  rc_error ready_err;

  uv_async_t wake;               /* other threads -> loop */
  pthread_mutex_t req_mu;        /* guards the three below */
  rc__request *requests;
  bool accepting;                /* the loop takes requests (wake is open and running) */
  bool stop_requested;           /* rc_engine_stop from another thread: needs no memory */
  uv_timer_t sched_timer;        /* next debounce deadline or throttle release */
  uv_timer_t wave_timer;         /* runs a wave at the end of this loop turn */
  uv_timer_t retire_timer;       /* frees retired snapshots once no reader races */
  uv_timer_t fetch_timer;        /* cache_for: stops answered sources, restarts due ones */
  uint64_t fetch_due;            /* when fetch_timer fires (loop ms) */
  int open_handles;              /* handles not yet closed; free waits for 0 */
  bool handles_init;
  bool initial;                  /* delivering the initial values: no debounce */
  rc__sched sched;

  /* Services the sources share (an inotify descriptor, a curl multi), opened on first
   * use and closed at stop (source_ctx.c). */
#define RC__MAX_SERVICES 8
  struct {
    const rc__service_kind *kind;
    void *svc;
  } services[RC__MAX_SERVICES];
  size_t nservices;
  struct rc__source_ctx *retired_srcs;/* stopped sources waiting for their done callback */

  /* evaluation (evaluate.c) */
  uint64_t stamp;                /* logical clock of evaluations and changes */
  int eval_errors;               /* policy functions that failed in the running wave */
  rc__component *calling;        /* whose function runs now (policy.log), or NULL */
  bool trial;                    /* evaluating a reloaded policy before it commits */
  int on_error_ref;              /* the policy-level on_error function, or LUA_NOREF */
  rc__on_error on_error;         /* the policy-level on_error action */

  /* simulation (the REPL, scenarios, replay): a virtual clock for the scheduler, and
   * hooks that see every decision (trace) and every delivery (record) */
  bool virtual_clock;            /* the scheduler's time is vnow, moved by rc__advance */
  uint64_t vnow;                 /* virtual time, ms */
  uint64_t clock_offset;         /* added to uv_now() after virtual time ran ahead */
  uint64_t epoch_ms;             /* rc__now() at attach: traces show times since then */
  bool no_sources;               /* attach starts no source: values come from pushes */
  void (*trace_fn)(void *ud, const char *component, const char *msg);
  void *trace_ud;
  void (*record_fn)(void *ud, rc__component *c, const rc_value_t *v, const rc_error *err);
  void *record_ud;
  /* Called at attach while initial values are read: may rc__deliver values (replay's
   * recorded initial values) that revision 1 then holds. */
  void (*seed_fn)(void *ud, rc_engine_t *eng);
  void *seed_ud;

  /* last-known-good cache (cache.c): the policy's `cache` */
  char *cache_dir;               /* owned; NULL: no cache */
  bool cache_secrets;            /* secret components are cached too */

  /* policy hot reload (reload.c) */
  rc__component *policy_watch;   /* watches the policy file; not in comps */
  bool watch_policy;             /* reload the policy when its file changes (default) */
  uint64_t policy_hash;          /* hash of the policy text in force */
  uint64_t reloads;              /* successful reloads */

  /* committed state (snapshot.h; the revision is the current snapshot's) */
  rc__snapdomain snaps;

  /* notification */
  pthread_mutex_t sub_mu;
  _Atomic(rc__sub *) subs;
  int next_sub_id;
  int notifying;                 /* depth of subscription walks (unlink deferred) */
  rc__changeset cs;              /* reused between waves */

  /* Lua states (core/policy/lua_state.c): each policy version runs in its own state. The
   * modules the embedder allowed (copies) are given to every version's state; replaced
   * versions' states wait in `retiring` until their luv handles closed, then are
   * closed by `reaper`'s thread (freeing a big heap would hold the loop). */
  char **allowed;
  size_t nallowed;
  struct rc__retiring *retiring;
  rc__reaper *reaper;            /* started on first use; joined by rc_engine_free */
  uint8_t policy_digest[16];     /* 128-bit digest of the policy text in force (reload.c
                                    compares it: a 64-bit hash could drop a change) */
  struct rc__name_index *names;  /* `comps` by name (component.c), rebuilt on change */

  /* event handlers (events.c), guarded by handler_mu */
  pthread_mutex_t handler_mu;
  rc__handler *handlers;
  size_t nhandlers, caphandlers;
  int next_handler_id;
  uint64_t handlers_changed;     /* generation: a handler was added or removed */
  _Atomic size_t nlisteners;     /* handlers with a function: with none, events are not
                                    even formatted (rc__events_wanted) */

  /* reload transactions (txn.c, modules.c, history.c) */
  pthread_t loop_thread;         /* the loop's thread, once attached */
  bool loop_thread_known;
  pthread_cond_t req_cv;         /* answers to rc__call_on_loop */
  pthread_mutex_t mod_mu;        /* guards the C modules (registered from any thread) */
  rc__module **cmods;            /* C modules, in registration order */
  size_t ncmods, capcmods;
  int next_module_id;
  rc__module **pmods;            /* the policy's modules, in declaration order */
  size_t npmods;
  struct rc__txn *txn;           /* the reload in progress, or NULL */
  uint64_t next_reload_id;
  bool wave_deferred;            /* a wave was asked for while a reload ran or backed off */
  char trigger[128];             /* what the next wave's reload is: "source:a,b", ... */
  bool requested;                /* the next wave answers a reload request */
  int request_waits;             /* components whose requested re-read has not answered
                                    (-1 while the request is still asking) */
  uint64_t request_deadline;     /* rc__now when the request stops waiting; 0: none */
  uint64_t last_txn_id;          /* the last reload that ended, and how: 0 or its code */
  int last_txn_code;
  char last_txn_msg[512];
  uv_timer_t txn_timer;          /* the waiting module's timeout; the backoff's end */
  uint32_t fail_streak;          /* reloads failed in a row */
  uint64_t retry_at;             /* loop ms before which no reload starts (backoff) */
  uint64_t backoff_min_ms, backoff_max_ms;  /* the policy's reload backoff */
  _Atomic bool pinned;           /* a rollback pinned the configuration */
  rc__revision *hist;            /* the last `hist_cap` committed revisions, a ring */
  size_t hist_cap, hist_n, hist_head;
  char *admin_listen;            /* the policy's admin endpoint address (owned), or NULL */
  char *admin_token_env;         /* the variable holding its token (owned), or NULL */
  struct rc_admin *admin;        /* the endpoint the policy asked for, started at attach
                                    and freed at stop (owned), or NULL */
  char *policy_pending;          /* a policy text that arrived during a reload (owned) */
  size_t policy_pending_len;

  /* what /metrics and /status read from any thread (metrics.c, health.c, status.c) */
  rc__metrics metrics;
  rc__trace_ring tring;          /* explain from any thread (trace_ring.c) */
};

/* Defaults of the reload machinery. */
#define RC__HISTORY_DEFAULT 16           /* revisions kept for rollback (`history`) */
#define RC__RELOAD_BACKOFF_MIN_MS 1000   /* after a failed reload (`reload_backoff`) */
#define RC__RELOAD_BACKOFF_MAX_MS 30000
#define RC__MODULE_TIMEOUT_MS 10000      /* a module's, unless it gives its own */
#define RC__REQUEST_WAIT_MS 10000        /* a reload request waits this long for answers */
#define RC__TXN_PIN 1                    /* a rollback: pin once committed */

/* ---- txn.c: one reload at a time ---- */
/* Starts a reload of `root` (moved in) over the running `old_root` (moved in) with the
 * changes in eng->cs (taken over); runs the modules now, or as they answer. */
void rc__txn_begin(rc_engine_t *eng, rc_value_t *root, rc_value_t *old_root,
                   const char *trigger, int flags);
/* A reload that found nothing to change (a request, say): its two events. */
void rc__txn_nothing(rc_engine_t *eng, const char *trigger, const char *why);
/* A pending module's answer arrived (the request rc_reload_done posted). */
void rc__txn_module_done(rc_engine_t *eng, rc_reload_t *r);
/* The id of the reload in progress, 0 if none. */
uint64_t rc__txn_id(const rc_engine_t *eng);
/* Whether a reload may start now (none running, no backoff after failures). */
bool rc__txn_may_start(rc_engine_t *eng);
/* The next time something of the reload machinery is due (a module's timeout, the end
 * of the backoff, a request's wait), false if none; rc__txn_run_due runs what is due at
 * `now` (the virtual clock calls it); rc__txn_arm sets the real timer. */
bool rc__txn_next_deadline(const rc_engine_t *eng, uint64_t *due);
void rc__txn_run_due(rc_engine_t *eng, uint64_t now);
void rc__txn_arm(rc_engine_t *eng);
/* Drops the reload in progress without committing (engine stop). */
void rc__txn_abandon(rc_engine_t *eng);
/* Drops a module's reference to its part of a reload without answering (a Lua module's
 * done function collected unanswered). */
void rc__reload_release(rc_reload_t *r);
/* Pins the configuration at `revision` (a rollback committed). */
void rc__pin(rc_engine_t *eng, uint64_t revision);

/* ---- modules.c ---- */
/* A copy of the module list (C modules, then the policy's), owned by the caller; NULL
 * when there are none, or out of memory (*oom set). */
rc__module **rc__modules_snapshot(rc_engine_t *eng, size_t *n, bool *oom);
/* Whether `ch` is under one of m's patterns. */
bool rc__module_matches(const rc__module *m, const rc_change_t *ch);
/* A policy module (its apply function's reference set by the caller). NULL on OOM. */
rc__module *rc__module_new_lua(const char *name, const char *const *patterns, size_t n,
                               uint32_t timeout_ms);
/* Replaces the policy's modules with `mods` (moved in), freeing the old ones. */
void rc__policy_modules_set(rc_engine_t *eng, rc__module **mods, size_t n);
void rc__policy_modules_free(lua_State *L, rc__module **mods, size_t n);
void rc__modules_free(rc_engine_t *eng);

/* ---- history.c ---- */
void rc__history_push(rc_engine_t *eng, struct rc_snapshot *snap, uint64_t reload_id,
                      const char *trigger, size_t changes);
/* Keeps at most `cap` revisions from now on (the policy's `history`). */
void rc__history_resize(rc_engine_t *eng, size_t cap);
const rc__revision *rc__history_find(const rc_engine_t *eng, uint64_t revision);
void rc__history_free(rc_engine_t *eng);

/* ---- request.c ---- */
/* A reload request (rc_engine_reload) with its trigger ("request", "signal"). */
int rc__reload_request(rc_engine_t *eng, const char *const *names, size_t n,
                       const char *trigger);
/* c's source answered a read (a value, an error, or nothing new): a request waiting for
 * it may go on. */
void rc__answered(rc__component *c);
/* A request whose sources did not all answer by its deadline goes on without them. */
void rc__request_timeout(rc_engine_t *eng, uint64_t now);

/* ---- events.c ---- */
/* Whether anyone listens to events: callers skip formatting a message nobody reads (a
 * commit's events cost more than the rest of a small wave). Loop thread. */
bool rc__events_wanted(rc_engine_t *eng);
/* The event's name ("source.error", ...). */
const char *rc__event_name(rc_event_type_t t);
/* Emits `ev` (its name and empty strings filled in) to every handler (loop thread). */
void rc__emit_event(rc_engine_t *eng, rc_event_t *ev);
/* Emits an event (loop thread). Strings may be NULL. */
void rc__emit(rc_engine_t *eng, rc_event_type_t type, const char *component,
              const char *file, int line, int col, int code, const char *fmt, ...)
  RC__PRINTF(8, 9);
/* Emits the "commit" event for a new revision. */
void rc__emit_commit(rc_engine_t *eng, uint64_t revision, size_t changes,
                     uint64_t reload_id);
/* Emits a source.error for `c` from an rc_error. */
void rc__emit_error(rc_engine_t *eng, rc__component *c, const rc_error *err);
void rc__handlers_free(rc_engine_t *eng);

/* ---- engine.c ---- */
/* Runs fn(eng, arg) on the loop thread and returns its result: at once when called
 * there, else through the request queue while the caller waits. RC_ESTATE when the loop
 * takes no requests (not running, or stopping). */
int rc__call_on_loop(rc_engine_t *eng, int (*fn)(rc_engine_t *eng, void *arg), void *arg);
/* Whether the caller runs on the engine's loop thread. Any thread. */
bool rc__on_loop_thread(rc_engine_t *eng);
/* Runs the requests other threads queued (the loop thread; the admin endpoint's stop
 * serves its threads' waiting calls this way). Returns whether a stop was asked. */
bool rc__requests_run(rc_engine_t *eng);
/* Posts the end of a pending module's part (rc_reload_done) to the loop thread. */
int rc__post_module_done(rc_engine_t *eng, void *reload);
/* Initializes a handle's bookkeeping: every handle the engine or a source opens is
 * counted so that free can wait for all close callbacks. */
void rc__handle_opened(rc_engine_t *eng);
/* Starts closing every handle of `loop` not already closing (a loop we own, at the end:
 * a policy's luv handles must not keep it from closing). */
void rc__loop_close_all(uv_loop_t *loop);
void rc__handle_closed(rc_engine_t *eng);

/* ---- delivery (deliver.c), scheduling (schedule.c), waves (wave.c) ---- */
/* A source has a new value for its component (`v` moved in; NULL = absent). */
void rc__deliver(rc__component *c, rc_value_t *v);
/* A source failed; the last good value stays. `err` is copied. */
void rc__deliver_error(rc__component *c, const rc_error *err);
/* Evaluates every dirty component and, if anything changed, starts a reload (txn.c);
 * deferred while one runs or failed ones back off. */
void rc__wave(rc_engine_t *eng);
/* Adds to what the next reload is: `kind` ("source", "request", ...) and a name (a
 * component's, or NULL). Sources' names accumulate; another kind stays the first. */
void rc__trigger(rc_engine_t *eng, const char *kind, const char *name);
/* After a commit: every component's value counts as committed; the cache is written. */
void rc__commit_done(rc_engine_t *eng, const struct rc_snapshot *snap,
                     const rc__changeset *cs);
/* After a refused reload: components whose value differs from `root` (the running
 * revision's) go back to it. */
void rc__components_revert(rc_engine_t *eng, const rc_value_t *root);
/* Arms the scheduler timer for the earliest pending deadline. */
void rc__reschedule(rc_engine_t *eng);
/* Runs a wave at the start of the next loop turn, so that everything delivered in this
 * turn (an overflow rescan, several env variables) becomes one commit. */
void rc__schedule_wave(rc_engine_t *eng);
/* Makes `v` (moved in; NULL = absent) c's source value, due in the next wave. */
void rc__set_value(rc__component *c, rc_value_t *v);
/* The throttle stage for a value `v` (moved in) that passed debounce at `now`: applies
 * it when a token is available and returns true (the caller runs a wave); otherwise
 * holds it in place of any older held value and returns false. */
bool rc__throttle(rc__component *c, rc_value_t *v, uint64_t now);
/* The scheduler's clock in ms: the loop's time, or the virtual time. */
uint64_t rc__now(const rc_engine_t *eng);
/* Virtual clock on or off. Off again, time goes on from the virtual time reached. */
void rc__set_virtual_clock(rc_engine_t *eng, bool on);
/* Moves the virtual clock by `ms`, running every debounce and throttle deadline that
 * falls on the way at its own time (waves included). */
void rc__advance(rc_engine_t *eng, uint64_t ms);
/* The component named `name`, or NULL. */
rc__component *rc__find_component(const rc_engine_t *eng, const char *name);
/* Delivers `v` (moved in; NULL = absent), or `err` when not NULL, into component
 * `component` as if its source had. 0, RC_ENOTFOUND (no such component) or RC_ESTATE. */
int rc__push(rc_engine_t *eng, const char *component, rc_value_t *v, const rc_error *err);
/* A decision for explain (trace.c): formatted only when a trace hook is set. */
void rc__trace(rc_engine_t *eng, const rc__component *c, const char *fmt, ...)
  RC__PRINTF(3, 4);
/* ---- trace_ring.c ---- */
void rc__trace_ring_init(rc__trace_ring *r);
void rc__trace_ring_free(rc__trace_ring *r);
/* Whether the ring keeps decisions (a relaxed load, inline: every decision asks). */
static inline bool rc__trace_ring_on(rc_engine_t *eng) {
  return atomic_load_explicit(&eng->tring.on, memory_order_relaxed);
}
/* One line for the revision being made: a decision ("decision") or an event (its name). */
void rc__trace_ring_add(rc_engine_t *eng, const char *component, const char *kind,
                        const char *message);
/* `revision` was committed with `cs`: the lines since the last commit become its entry. */
void rc__trace_ring_commit(rc_engine_t *eng, uint64_t revision, const rc__changeset *cs);
/* A decision with a value, shown as short JSON (secrets redacted). */
void rc__trace_value(rc_engine_t *eng, const rc__component *c, const char *what,
                     const rc_value_t *v);

/* ---- health.c: each component's health record (loop thread) ---- */
/* Gives c the record of its name (at creation). */
void rc__health_link(rc__component *c);
/* Mirrors c's state into its record's flags. */
void rc__health_sync(rc__component *c);
/* c's source answered (a value, absent, or "unchanged"). */
void rc__health_success(rc__component *c);
/* c's value was obtained at `wall_ns` (a cached one: when it was saved). */
void rc__health_value_time(rc__component *c, int64_t wall_ns);
/* c's source failed with `err`; `message` is what events say (secrets redacted). */
void rc__health_error(rc__component *c, const rc_error *err, const char *message);
/* A value of c was refused (validate, or a reload module). */
void rc__health_rejected(rc__component *c);
/* c's source tries again in `delay_ms` (0: it does not wait to retry). */
void rc__health_retry(rc__component *c, uint64_t delay_ms);
/* c's source's own condition (rc__src_cond) turned on or off. */
void rc__health_source_flag(rc__component *c, unsigned flag, bool on);
/* After a policy was installed: the records of its components are the present ones. */
void rc__health_install(rc_engine_t *eng);

/* ---- startup.c ---- */
/* At attach, after the sources started: applies each component's startup policy
 * (cached values, waiting for late first values up to their timeouts). Returns 0, or
 * RC_EIO with `err` listing every component whose startup = "fail" got no value. Runs
 * the loop while waiting (must not be called from a callback of that loop). */
int rc__startup(rc_engine_t *eng, rc_error *err);

/* ---- cache.c ---- */
/* Whether c's last-known-good value goes to the cache (remote sources, or startup =
 * "cached"; secret ones only when the policy allows). */
bool rc__cache_wanted(const rc_engine_t *eng, const rc__component *c);
/* c's cached value (owned) and when it was saved (ns since the epoch), or NULL. */
rc_value_t *rc__cache_load(const rc_engine_t *eng, const rc__component *c, int64_t *saved_ns);
/* Writes the values of cacheable components that changed since their last write
 * (atomically: a temporary file renamed over). Failures are reported as events. */
void rc__cache_store_all(rc_engine_t *eng);

/* ---- fetch_once.c (cache_for) ---- */
/* A reload request: c's held answer is fetched again now. Returns whether its source
 * started. */
bool rc__fetch_once_now(rc__component *c);
/* c's source answered (a value or "absent"): for a cache_for component, its source is
 * stopped right after the current callback and the value held for cache_for. */
void rc__fetch_once_answered(rc__component *c);
/* At a source start: when the policy's cache holds an answer for c younger than its
 * cache_for, takes it as c's value, schedules the next fetch and returns true (the
 * source is not started). False otherwise. */
bool rc__fetch_once_cached(rc__component *c);
/* fetch_timer's callback: stops answered sources, starts those whose time is up. */
void rc__fetch_once_run(uv_timer_t *t);

/* ---- reload.c ---- */
/* A policy text that arrived while a reload ran (eng->policy_pending): reloaded now. */
void rc__policy_reload_pending(rc_engine_t *eng);
/* Starts watching the policy file (when eng->watch_policy); its changes reload the
 * policy. Returns 0 or an RC_E* code with `err` filled. */
int rc__policy_watch_start(rc_engine_t *eng, rc_error *err);
void rc__policy_watch_stop(rc_engine_t *eng);
void rc__policy_watch_free(rc_engine_t *eng);

/* ---- evaluate.c ---- */
/* Evaluates every component that is due (see evaluate.c). Returns the number of policy
 * functions that failed (each already reported). Loop thread; runs Lua. */
int rc__evaluate(rc_engine_t *eng);

/* ---- snapshot.c (more in snapshot.h) ---- */
/* A snapshot of `root` (moved in) as revision+1, not published (one reference, the
 * caller's); NULL on OOM (root released). */
struct rc_snapshot *rc__snapshot_make(rc_engine_t *eng, rc_value_t *root);
/* Makes `snap` (from rc__snapshot_make; the caller's reference becomes the engine's)
 * the current snapshot. */
void rc__snapshot_publish(rc_engine_t *eng, struct rc_snapshot *snap);

/* ---- subscribe.c ---- */
/* Calls every subscriber whose pattern matches some change (loop thread). */
void rc__notify_subscribers(rc_engine_t *eng, const struct rc_snapshot *snap,
                            const rc_change_t *changes, size_t n);
void rc__subs_free(rc_engine_t *eng);
/* Whether `pattern` is a well-formed subscription pattern. */
bool rc__pattern_valid(const char *pattern);
/* Whether change `ch` is one a subscriber to `pattern` gets ("" and "**": all). */
bool rc__change_matches(const char *pattern, const rc_change_t *ch);
/* Whether `path` is at or below what `pattern` names (see rc_subscribe). */
bool rc__pattern_match(const char *pattern, const char *path);
/* Whether `path` is at, below, or above what `pattern` names (a value at `path` may hold
 * the pattern's target). */
bool rc__pattern_touches(const char *pattern, const char *path);

/* ---- secret.c (loop thread) ---- */
/* Whether the value at `path` (full path, starting with a component's name; "" = the
 * root) is secret or holds a secret. */
bool rc__path_is_secret(const rc_engine_t *eng, const char *path);
/* `v` (the value at `path`) with every secret part replaced by the string "<redacted>";
 * a new reference to `v` itself when nothing in it is secret. NULL on OOM. */
rc_value_t *rc__redact(const rc_engine_t *eng, const char *path, const rc_value_t *v);
#define RC__REDACTED "<redacted>"

/* ---- core/policy: lua_state.c, preload.c, compile.c, on_change.c ---- */
/* A compiled policy: what one load of the policy text produced. Owned by whoever holds
 * it until rc__policy_install moves it into the engine or rc__policy_discard frees it. */
typedef struct rc__policy {
  rc__component **comps;
  size_t ncomps;
  int *order;
  int on_change_ref, on_error_ref;
  rc__on_error on_error;
  uint64_t call_budget_ms, load_budget_ms;  /* 0: the defaults */
  size_t memory;                            /* 0: the default cap */
  char *cache_dir;                          /* owned; the policy's cache, or NULL */
  bool cache_secrets;
  lua_State *L;                             /* owned; the version's own Lua state */
  rc__module **mods;                        /* owned; the policy's reload modules */
  size_t nmods;
  long history;                             /* revisions kept; -1: the default */
  uint64_t backoff_min_ms, backoff_max_ms;  /* reload_backoff; 0: the defaults */
  char *admin_listen;                       /* owned; the policy's admin.listen, or NULL */
  char *admin_token_env;                    /* owned; admin.token_env, or NULL */
} rc__policy;
/* Runs the loader on `text` (eng->policy_path and policy_dir name it) into `p`.
 * Returns 0, or RC_EPOLICY / RC_ENOMEM with `err` filled ("file:line: message"); on
 * failure `p` holds nothing. Runs Lua (load budget). */
int rc__policy_compile(rc_engine_t *eng, const char *text, size_t len, rc__policy *p,
                       rc_error *err);
void rc__policy_discard(rc_engine_t *eng, rc__policy *p);
/* Frees the engine's components and takes `p`'s (p is left empty), with its limits. */
void rc__policy_install(rc_engine_t *eng, rc__policy *p);
/* The largest policy file read: parsing Lua text runs in C, beyond the count hook's
 * reach, so the size bounds that time (about 40 ms for 8 MiB; scripts/bench hostile). */
#define RC__POLICY_MAX_BYTES ((size_t)8 << 20)
/* Reads a policy file (owned result, rc__free): opened without blocking, a regular file
 * of at most RC__POLICY_MAX_BYTES. NULL with `err` filled (what it is when it is not a
 * regular file). */
char *rc__read_policy(const char *path, size_t *len, rc_error *err);
/* Creates the engine's Lua state with our modules preloaded. NULL on OOM. */
lua_State *rc__lua_new_state(rc_engine_t *eng);
/* Opens luv on the engine's loop (called once the loop is known). */
int rc__lua_open_luv(rc_engine_t *eng, rc_error *err);
/* Calls the function below its `nargs` arguments, protected, with a traceback handler
 * and a time budget (the default one for calls into a policy); on error fills `err` and
 * pops it. Nested calls share the outermost budget. [-(nargs+1), +nres|0, -] */
int rc__lua_pcall(lua_State *L, int nargs, int nres, rc_error *err);
int rc__lua_pcall_budget(lua_State *L, int nargs, int nres, uint64_t budget_ms,
                         rc_error *err);
/* The engine whose state `L` is, or NULL (the Lua module's own state). [-0, +0, -] */
rc_engine_t *rc__lua_engine(lua_State *L);
/* print in a policy, as package.preload["reactcfg.policy_log"]: log(text) emits a
 * policy.log event at the caller's caller (the policy line that called print), or
 * writes "[policy] text" to stderr when nobody listens; nothing in a state whose
 * registry has RC__LUA_QUIET_KEY set (a second reading of a policy the engine already
 * read, whose prints were said then). [-1, +0, m] */
#define RC__LUA_QUIET_KEY "reactcfg.quiet"
int rc__lua_policy_log(lua_State *L);
/* Closes a state made by rc__lua_new_state (and its allocator's bookkeeping). */
void rc__lua_close(lua_State *L);
/* Opens luv in state L on `loop` (a reloaded version's state, made while running). */
int rc__lua_open_luv_on(lua_State *L, uv_loop_t *loop, rc_error *err);
/* Lets policies of state L require module `name` (rc_engine_allow_module). */
int rc__lua_allow(lua_State *L, const char *name, rc_error *err);
/* Retires a replaced (or stopped) version's state: its luv callbacks no longer run, its
 * luv handles are closed and its requests cancelled, and the state is closed once none
 * is left (at once when there are none). Sources that used it must be stopped first. */
void rc__lua_retire(rc_engine_t *eng, lua_State *L);
/* Closes retired states still waiting (engine free, after the loop ran dry). */
void rc__lua_retired_close_all(rc_engine_t *eng);
/* Arms the load budget of L around several protected calls, which then share it (as
 * nested calls share the outermost one's); disarm after. */
void rc__lua_budget_arm(lua_State *L, uint64_t budget_ms);
void rc__lua_budget_disarm(lua_State *L);
/* ---- component.c ---- */
/* Reads the normalized component at the top of L's stack into a new struct, stored in
 * *slot as soon as it exists (the caller owns and frees it, rc__component_free, whether
 * this returns or raises). 0, RC_EPOLICY with `err` filled (a bad default, an unknown
 * source kind), or RC_ENOMEM. Memory errors of Lua raise: call it protected.
 * [-0, +0, m] */
int rc__component_from_lua(rc_engine_t *eng, lua_State *L, int index, rc__component **slot,
                           rc_error *err);
/* Reads an `on_error` field of the table at `idx`. [-0, +0, m] */
void rc__on_error_from_lua(lua_State *L, int idx, int *ref, rc__on_error *action);
/* The value component `c` contributes to the root (borrowed; NULL = absent). */
const rc_value_t *rc__component_value(const rc__component *c);
/* Frees one component (not its source; its Lua references die with its version's
 * state, which the caller retires). */
void rc__component_free(rc__component *c);
/* Frees every component (engine free, failed load). */
void rc__components_free(rc_engine_t *eng);
/* Components by name: an open-addressing index of comps[0..n) (names are unique), so
 * that matching names costs O(1) rather than a walk of every component. */
typedef struct rc__name_index {
  rc__component **comps;      /* the array it indexes (borrowed) */
  size_t n, mask;
  rc__component **slots;      /* owned */
} rc__name_index;
int rc__name_index_build(rc__name_index *ix, rc__component **comps, size_t n);
rc__component *rc__name_index_find(const rc__name_index *ix, const char *name, size_t len);
void rc__name_index_free(rc__name_index *ix);
/* The component of the engine's current components named name[0..len), or NULL: through
 * an index the engine keeps and rebuilds when its components change. */
rc__component *rc__component_named(rc_engine_t *eng, const char *name, size_t len);
/* Drops that index (an array of components is about to be freed). */
void rc__component_names_forget(rc_engine_t *eng);
/* ---- source_ctx.c: a component's source through the source interface ---- */
/* Creates c's source from its kind and options (not started). 0 or an RC_E* code with
 * `err` filled. */
int rc__source_create(rc__component *c, rc_error *err);
/* Creates the source of `c` (if needed) and starts it: the initial value is delivered
 * directly into c->value. Returns 0 or an RC_E* code with `err` filled. */
int rc__source_start(rc__component *c, rc_error *err);
/* The metadata c's running source attached to its latest read (rc__src_set_meta;
 * borrowed until the source's next read or its stop), or NULL. */
const rc_value_t *rc__source_meta(const rc__component *c);
/* Hands a running source to component `c` (a policy reload keeps it). */
void rc__source_adopt(rc__source *s, rc__component *c);
/* Stops `s` (the engine is stopping; it is freed with its component). */
void rc__source_stop(rc__source *s);
/* Stops `s` and frees it once its handles are closed; it delivers nothing more. */
void rc__source_retire(rc_engine_t *eng, rc__source *s);
/* Frees a source and its context (created, or stopped with its handles closed). */
void rc__source_free(rc__source *s);
/* Whether `s` used its version's Lua state (a Lua source): it cannot be kept by a
 * reload, whose version has a state of its own. */
bool rc__source_uses_lua(const rc__source *s);
/* Frees retired sources whose stop never completed (engine free, loop gone). */
void rc__retired_free_all(rc_engine_t *eng);
/* The parser limits of c's source (its `limits` option over the defaults). */
void rc__source_limits(const rc__component *c, rc__parse_limits *out);
/* Tells every source that wants to know that the process environment changed. */
void rc__sources_env_changed(rc_engine_t *eng);
/* Closes the services the sources shared (engine stop, after the sources stopped). */
void rc__services_close(rc_engine_t *eng);
/* Pushes a change list as a Lua array of { path, kind, old, new, secret }; with
 * `redact` (the engine whose secrets apply), secret values are redacted. [-0, +1, m] */
void rc__lua_push_changes(lua_State *L, const rc_change_t *changes, size_t n,
                          const rc_engine_t *redact);
/* Runs the policy's on_change handler after a commit (loop thread). */
/* Calls a policy module's apply(changes, snapshot, reload) (policy_call.c). Returns
 * RC_OK, RC_EPENDING (it called for reload.done later), or RC_EREFUSED with `msg` filled
 * (it raised, returned false, or ran out of its time budget). */
int rc__lua_module_apply(rc_engine_t *eng, rc__module *m, rc_reload_t *r,
                         const struct rc_snapshot *snap, const rc_change_t *changes,
                         size_t n, char *msg, size_t msgsz);
void rc__lua_on_change(rc_engine_t *eng, const struct rc_snapshot *snap,
                       const rc_change_t *changes, size_t n);


/* ---- policy_call.c (loop thread; runs Lua) ---- */
typedef enum { RC__CALL_VALUE, RC__CALL_VERDICT, RC__CALL_BOOL, RC__CALL_DURATION }
  rc__call_kind;
/* One call fn(arg, ctx) of a component's function; ctx = { name, previous, <deps> }. */
typedef struct rc__call {
  rc__component *c;
  int ref;                  /* the function */
  const char *what;         /* its key, for messages: "update", "validate", ... */
  const rc_value_t *arg;    /* first argument (borrowed; NULL = nil) */
  rc__call_kind kind;
  rc_value_t *value;        /* VALUE: the result (owned by the caller; NULL = nil) */
  bool ok;                  /* VERDICT / BOOL: the first result's truth */
  char reason[256];         /* VERDICT: the second result when false */
  uint64_t ms;              /* DURATION: the result in milliseconds */
} rc__call;
/* Makes the call. On failure (error, time budget, unconvertible result) emits a
 * policy.error naming the component, counts it in eng->eval_errors and returns its code;
 * then nothing is owned by the caller. */
int rc__lua_call(rc_engine_t *eng, rc__call *call);
/* Evaluates c's condition with a view of the other components, recording in c->reads
 * which ones it read. 0 with *active set, or an error code (reported as above). */
int rc__lua_condition(rc_engine_t *eng, rc__component *c, bool *active);
/* Calls on_error function `ref` for a source error of `c`. Returns 1 with *value set
 * (owned) when the handler returned a value to use, 0 with *action set otherwise, or a
 * negative code after reporting a failure (*action = keep). */
int rc__lua_on_error(rc_engine_t *eng, rc__component *c, int ref, const rc_error *err,
                     rc__on_error *action, rc_value_t **value);
/* Installs `require` preloaders for the embedded modules on `L`, and the `null` and
 * `array_mt` fields on the reactcfg module once loaded. [-0, +0, m] */
void rc__lua_preload(lua_State *L);

#endif
