/* engine.h: the engine's private structure and the calls shared between the engine's
 * files (lifecycle, policy, wave, snapshot, subscriptions) and the sources in watchers/.
 * Everything here runs on the loop thread unless its comment says otherwise. */
#ifndef RC_ENGINE_H
#define RC_ENGINE_H

#include "scheduler.h"
#include "value.h"

#include <lua.h>
#include <pthread.h>
#include <stdatomic.h>
#include <uv.h>

typedef struct rc__source rc__source;
typedef struct rc__component rc__component;
typedef struct rc__filewatch rc__filewatch;

/* What a source kind provides. A source never touches config state: it calls
 * rc__deliver / rc__deliver_error and the engine decides the rest. */
typedef struct rc__source_ops {
  const char *kind;
  /* Starts watching and delivers the current value synchronously (initial read).
   * Returns 0 or an RC_E* code with `err` filled; a source that cannot read yet (file
   * missing) still returns 0 and delivers "absent". */
  int (*start)(rc__source *s, rc_error *err);
  /* Stops watching; closes handles. `done` is called from the last close callback (or
   * at once), after which `s` may be freed. */
  void (*stop)(rc__source *s, void (*done)(rc__source *s));
  /* Re-read now (inotify overflow, setenv). */
  void (*rescan)(rc__source *s);
  void (*free)(rc__source *s);
} rc__source_ops;

struct rc__source {
  const rc__source_ops *ops;
  rc_engine_t *eng;
  rc__component *comp;
};

/* One named component of the policy. */
struct rc__component {
  rc_engine_t *eng;
  char *name;
  int index;              /* position in eng->comps, also its scheduler slot */
  int line;               /* declaration line in the policy (for messages) */
  rc__source *src;
  rc_value_t *default_value;  /* owned; NULL if none */
  rc_value_t *value;          /* owned; last good value from the source, NULL = absent */
  rc_value_t *pending;        /* owned; delivered, waiting for its debounce to pass */
  bool has_pending;           /* pending may be NULL meaning "absent" */
  rc_value_t *held;           /* owned; past debounce, waiting for a throttle token (the
                                 scheduler's held flag says whether it is set; NULL may
                                 mean "absent") */
  bool keep_on_missing;       /* on_missing = "keep" */
  bool in_error;              /* last delivery was an error */
  bool dirty;                 /* must be re-evaluated in the next wave */
  /* Dependencies and update (#4): a component with either is "derived": its value in the
   * root is `result`, recomputed in dependency order when it or a dependency is dirty. */
  int update_ref;             /* luaL_ref of `update` (the Lua state owns it), or
                                 LUA_NOREF */
  int *deps;                  /* owned; indices into eng->comps */
  size_t ndeps;
  bool derived;               /* has update or depends_on */
  bool changed;               /* evaluated with a new value in the running wave */
  bool evaluated;             /* has been evaluated once (the first wave always does) */
  rc_value_t *result;         /* owned; last good result of a derived component, NULL =
                                 absent */
  rc_value_t *seen;           /* owned; the source value (or default) of the last
                                 evaluation, to tell a real change from a re-delivery */
  uint64_t debounce_ms, debounce_max_ms;
  uint64_t throttle_ms;       /* throttle `every`; 0 = no throttle */
  uint32_t throttle_burst;    /* throttle `burst` (tokens), at least 1 */
  /* Source description from the policy (read by the source's create function). */
  char *src_kind, *src_path, *src_name, *src_prefix, *src_format;
  bool src_lower;
  uint64_t src_interval_ms, src_settle_ms, src_missing_grace_ms;
  rc__parse_limits limits;    /* parser limits: the defaults, or the source's `limits` */
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

/* Requests posted from other threads to the loop thread (rc__post). */
typedef struct rc__request {
  enum { RC__REQ_STOP, RC__REQ_SETENV } kind;
  char *name, *value;
  struct rc__request *next;
} rc__request;

typedef enum { RC__ST_NEW, RC__ST_LOADED, RC__ST_RUNNING, RC__ST_STOPPING, RC__ST_STOPPED }
  rc__state;

struct rc_engine {
  rc__state state;
  lua_State *L;
  char *policy_path, *policy_dir;
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
  pthread_mutex_t req_mu;
  rc__request *requests;
  uv_timer_t sched_timer;        /* next debounce deadline or throttle release */
  uv_timer_t wave_timer;         /* runs a wave at the end of this loop turn */
  uv_timer_t retire_timer;       /* frees retired snapshots once no reader races */
  int open_handles;              /* handles not yet closed; free waits for 0 */
  bool handles_init;
  bool initial;                  /* delivering the initial values: no debounce */
  rc__sched sched;

  rc__filewatch *files;          /* the shared inotify watcher, created on demand */

  /* committed state */
  _Atomic(struct rc_snapshot *) current;
  _Atomic int acquiring;         /* readers between load and incref (snapshot.c) */
  struct rc_snapshot *retired;   /* replaced snapshots not yet released */
  _Atomic uint64_t revision;

  /* notification */
  pthread_mutex_t sub_mu;
  _Atomic(rc__sub *) subs;
  int next_sub_id;
  int notifying;                 /* depth of subscription walks (unlink deferred) */
  rc_event_fn event_fn;
  void *event_ud;
  rc__changeset cs;              /* reused between waves */
};

struct rc_snapshot {
  _Atomic uint32_t refs;
  uint64_t revision;
  int64_t time_ns;
  rc_value_t *root;
  struct rc_snapshot *next_retired;
};

/* ---- engine.c ---- */
/* Emits an event to the event callback (loop thread). Strings may be NULL. */
void rc__emit(rc_engine_t *eng, rc_event_type_t type, const char *component,
              const char *file, int line, int col, int code, const char *fmt, ...)
  RC__PRINTF(8, 9);
/* Emits the "commit" event for a new revision. */
void rc__emit_commit(rc_engine_t *eng, uint64_t revision, size_t changes);
/* Emits a source.error for `c` from an rc_error. */
void rc__emit_error(rc_engine_t *eng, rc__component *c, const rc_error *err);
/* Initializes a handle's bookkeeping: every handle the engine or a source opens is
 * counted so that free can wait for all close callbacks. */
void rc__handle_opened(rc_engine_t *eng);
/* Starts closing every handle of `loop` not already closing (a loop we own, at the end:
 * a policy's luv handles must not keep it from closing). */
void rc__loop_close_all(uv_loop_t *loop);
void rc__handle_closed(rc_engine_t *eng);

/* ---- delivery from sources (wave.c) ---- */
/* A source has a new value for its component (`v` moved in; NULL = absent). */
void rc__deliver(rc__component *c, rc_value_t *v);
/* A source failed; the last good value stays. `err` is copied. */
void rc__deliver_error(rc__component *c, const rc_error *err);
/* Evaluates every dirty component and commits if anything changed. */
void rc__wave(rc_engine_t *eng);
/* Arms the scheduler timer for the earliest pending deadline. */
void rc__reschedule(rc_engine_t *eng);

/* ---- snapshot.c ---- */
/* Publishes a new root (moved in) as revision+1; returns the new snapshot (borrowed; the
 * engine holds it) or NULL on OOM (root released). */
struct rc_snapshot *rc__publish(rc_engine_t *eng, rc_value_t *root);
/* Releases retired snapshots whose readers are gone; returns how many remain. */
int rc__retire_sweep(rc_engine_t *eng);
/* Drops the engine's current snapshot and all retired ones (engine free). */
void rc__snapshots_drop(rc_engine_t *eng);

/* ---- subscribe.c ---- */
/* Calls every subscriber whose pattern matches some change (loop thread). */
void rc__notify_subscribers(rc_engine_t *eng, const struct rc_snapshot *snap,
                            const rc_change_t *changes, size_t n);
void rc__subs_free(rc_engine_t *eng);
/* Whether `path` matches `pattern` under the subscription rule (see rc_subscribe). */
bool rc__pattern_match(const char *pattern, const char *path);

/* ---- policy.c ---- */
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
/* Closes a state made by rc__lua_new_state (and its allocator's bookkeeping). */
void rc__lua_close(lua_State *L);
/* Frees every component (engine free, failed load). */
void rc__components_free(rc_engine_t *eng);
/* Pushes a change list as a Lua array of { path, kind, old, new }. [-0, +1, m] */
void rc__lua_push_changes(lua_State *L, const rc_change_t *changes, size_t n);
/* Runs the policy's on_change handler after a commit (loop thread). */
void rc__lua_on_change(rc_engine_t *eng, const struct rc_snapshot *snap,
                       const rc_change_t *changes, size_t n);
/* The value component `c` contributes to the root (borrowed; NULL = absent). */
const rc_value_t *rc__component_value(const rc__component *c);
/* Calls the update function of `c` with its source value and a ctx of its previous
 * result and its dependencies' values; on success stores the converted result in *out
 * (owned; NULL = absent). On failure (error, time budget, unconvertible result) emits a
 * policy.error naming the component and returns its code (loop thread; runs Lua). */
int rc__lua_update(rc_engine_t *eng, rc__component *c, rc_value_t **out);
/* Installs `require` preloaders for the embedded modules on `L`, and the `null` and
 * `array_mt` fields on the reactcfg module once loaded. [-0, +0, m] */
void rc__lua_preload(lua_State *L);

/* ---- sources (watchers/) ---- */
rc__source *rc__file_source_new(rc__component *c, rc_error *err);
rc__source *rc__env_source_new(rc__component *c, rc_error *err);
void rc__env_rescan_all(rc_engine_t *eng);
/* Closes the shared inotify watcher; `done` when its handle is closed. */
void rc__filewatch_close(rc_engine_t *eng);

#endif
