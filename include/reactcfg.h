/* SPDX-License-Identifier: MIT (see LICENSE) */
/* reactcfg.h: the public C API of reactcfg, a hot-reload engine for configuration.
 * An application creates an engine, loads a Lua policy that declares components and
 * where each comes from, starts the engine, then reads consistent snapshots from any
 * thread and receives path-level change lists on the engine's loop thread.
 * This is the only installed header; docs/C-API.md is generated from it. */
#ifndef REACTCFG_H
#define REACTCFG_H

#include <stddef.h>
#include <stdint.h>
#include <stdbool.h>

#ifdef __cplusplus
extern "C" {
#endif

#define RC_VERSION_MAJOR 0
#define RC_VERSION_MINOR 1
#define RC_VERSION_PATCH 0
#define RC_VERSION_STRING "0.1.0"

#if defined(RC_BUILDING_LIBRARY) && defined(__GNUC__)
#define RC_API __attribute__((visibility("default")))
#else
#define RC_API
#endif

/* ===================================================================================
 * Errors
 * Fallible functions return 0 or a negative RC_E* code. Detail (what, where) goes into an
 * optional caller-owned rc_error; pass NULL when you only need the code.
 * =================================================================================== */

#define RC_ERRORS(X)                                   \
  X(OK, 0, "success")                                  \
  X(EINVAL, -1, "invalid argument")                    \
  X(ENOMEM, -2, "out of memory")                       \
  X(EPARSE, -3, "malformed input")                     \
  X(EPOLICY, -4, "policy error")                       \
  X(EIO, -5, "input/output error")                     \
  X(ESTATE, -6, "operation not allowed in this state") \
  X(ENOTFOUND, -7, "no such path")                     \
  X(ETYPE, -8, "value has another type")               \
  X(ELIMIT, -9, "limit exceeded")                      \
  X(ESYS, -10, "system call failed")                   \
  X(EPENDING, -11, "in progress: completed later")     \
  X(ESTALE, -12, "too late: it is over")               \
  X(ETIMEDOUT, -13, "no answer in time")               \
  X(EREFUSED, -14, "refused")

enum {
#define RC_X_ENUM(name, code, text) RC_##name = code,
  RC_ERRORS(RC_X_ENUM)
#undef RC_X_ENUM
};

/* Where and why something failed. `file` is empty and `line`/`column` are 0 when they do
 * not apply. Strings are truncated to fit; they are always NUL-terminated. */
typedef struct rc_error {
  int code;          /* the RC_E* code also returned by the function */
  int line;          /* 1-based, 0 if unknown */
  int column;        /* 1-based, 0 if unknown */
  char file[256];
  char message[512];
} rc_error;

/* Symbolic name of a code ("EPARSE") and a short English text. Thread: any.
 * Both return static strings; an unknown code gives "EUNKNOWN" / "unknown error". */
RC_API const char *rc_err_name(int code);
RC_API const char *rc_strerror(int code);

/* ===================================================================================
 * Allocation
 * =================================================================================== */

/* Replaces the allocator used for all of reactcfg's C memory (not Lua's, which has its
 * own accounting allocator). `fn` behaves like realloc(ptr, size) with size 0 meaning
 * free; it must be thread-safe. Call before creating any engine; values and strings
 * allocated by one allocator must not be freed after switching to another.
 * Thread: any, but not concurrently with any other reactcfg call. Never fails. */
RC_API void rc_set_allocator(void *(*fn)(void *ud, void *ptr, size_t size), void *ud);

/* Frees memory that reactcfg returned to the caller (e.g. rc_value_to_json). NULL is
 * ignored. Thread: any. */
RC_API void rc_free(void *ptr);

/* ===================================================================================
 * Values
 * Values are immutable trees owned by the snapshot they were read from: a pointer
 * obtained from a snapshot stays valid until that snapshot is released. Reading a value
 * never locks, never allocates (except rc_value_to_json) and never runs Lua.
 * =================================================================================== */

typedef struct rc_value rc_value_t;

typedef enum rc_type {
  RC_TYPE_NULL = 0,
  RC_TYPE_BOOL,
  RC_TYPE_INT,      /* signed 64-bit */
  RC_TYPE_FLOAT,    /* IEEE double */
  RC_TYPE_STRING,   /* bytes with a length; also NUL-terminated */
  RC_TYPE_ARRAY,
  RC_TYPE_OBJECT,   /* string keys, insertion order kept, unique keys */
  RC_TYPE_DATETIME, /* a date, a time, or both, with or without offset (TOML) */
} rc_type_t;

/* A date-time value as written in the source, with its kind and precision kept. */
typedef enum rc_datetime_kind {
  RC_DATETIME_OFFSET = 1,   /* 1979-05-27T07:32:00Z, 1979-05-27T00:32:00.999-07:00 */
  RC_DATETIME_LOCAL,        /* 1979-05-27T07:32:00 (no offset) */
  RC_DATE_LOCAL,            /* 1979-05-27 */
  RC_TIME_LOCAL,            /* 07:32:00.999999 */
} rc_datetime_kind_t;

typedef struct rc_datetime {
  rc_datetime_kind_t kind;
  int year, month, day;          /* 0 for RC_TIME_LOCAL */
  int hour, minute, second;      /* 0 for RC_DATE_LOCAL */
  int nanosecond;                /* 0..999999999 */
  int precision;                 /* digits of fractional seconds written: 0..9 */
  int offset_minutes;            /* RC_DATETIME_OFFSET only: east of UTC */
  bool offset_z;                 /* written as "Z" rather than "+00:00" */
} rc_datetime_t;

/* Type of `v`; RC_TYPE_NULL for a NULL pointer. Thread: any. */
RC_API rc_type_t rc_value_type(const rc_value_t *v);
/* Name of a type: "null", "boolean", "integer", "float", "string", "array", "object",
 * "datetime". */
RC_API const char *rc_type_name(rc_type_t t);

/* Scalar accessors. Each returns 0 and stores the value, or RC_ETYPE when `v` has another
 * type (rc_value_number accepts integers and floats), leaving *out untouched; RC_EINVAL
 * when `out` is NULL (`len` may be NULL). The string pointer is borrowed from `v`.
 * Thread: any. */
RC_API int rc_value_bool(const rc_value_t *v, bool *out);
RC_API int rc_value_int(const rc_value_t *v, int64_t *out);
RC_API int rc_value_number(const rc_value_t *v, double *out);
RC_API int rc_value_string(const rc_value_t *v, const char **out, size_t *len);
RC_API int rc_value_datetime(const rc_value_t *v, rc_datetime_t *out);

/* Number of elements of an array or members of an object; 0 for anything else. */
RC_API size_t rc_value_len(const rc_value_t *v);
/* Element `i` of an array or the value of member `i` of an object (insertion order);
 * NULL when out of range or not a container. Borrowed from `v`. */
RC_API const rc_value_t *rc_value_at(const rc_value_t *v, size_t i);
/* Key of member `i` of an object (NUL-terminated, length in *len if not NULL); NULL when
 * out of range or not an object. Borrowed from `v`. */
RC_API const char *rc_value_key_at(const rc_value_t *v, size_t i, size_t *len);
/* Member `key` of an object, found in O(log n); NULL if absent. Borrowed from `v`. */
RC_API const rc_value_t *rc_value_get(const rc_value_t *v, const char *key);
/* The value at `path` below `v` (syntax: `db.pool.max`, `rules[3].host`, `flags["a.b"]`);
 * NULL if absent or the path is malformed. Borrowed from `v`. */
RC_API const rc_value_t *rc_value_find(const rc_value_t *v, const char *path);
/* Whether two values are equal in type and content (floats compare by bits, so NaN equals
 * itself). Thread: any. */
RC_API bool rc_value_equal(const rc_value_t *a, const rc_value_t *b);

/* JSON text of `v` (compact, or indented with 2 spaces when `pretty`). Ownership: the
 * caller frees the result with rc_free(). Errors: NULL on out of memory. Thread: any. */
RC_API char *rc_value_to_json(const rc_value_t *v, bool pretty);

/* ===================================================================================
 * Snapshots
 * A snapshot is one committed revision of the whole configuration: an object whose
 * members are the components (`settings`, `db_url`, ...). Snapshots are immutable and
 * reference-counted; any thread reads them without locks and never sees half a wave.
 * =================================================================================== */

typedef struct rc_snapshot rc_snapshot_t;
typedef struct rc_engine rc_engine_t;

/* Returns the snapshot currently committed, with one reference taken for the caller.
 * Ownership: the caller must pass it to rc_snapshot_release() exactly once.
 * Thread: any thread; never blocks; never runs Lua. Each call makes atomic
 * read-modify-writes on counters every reading thread shares (an engine-wide one and the
 * snapshot's reference count): for reads on a hot path from many threads, use a reader
 * (rc_reader_new) and compiled paths instead.
 * Errors: returns NULL only if `eng` is NULL or has no committed snapshot yet (before
 * rc_engine_start/rc_engine_attach returned). */
RC_API rc_snapshot_t *rc_snapshot_acquire(rc_engine_t *eng);
/* Drops one reference; the last one frees the snapshot and every value only it holds.
 * NULL is ignored. Thread: any. */
RC_API void rc_snapshot_release(rc_snapshot_t *snap);
/* Takes one more reference to a snapshot the caller already holds (for example inside a
 * change callback, to keep it past the callback). Returns `snap`. Thread: any. */
RC_API rc_snapshot_t *rc_snapshot_retain(rc_snapshot_t *snap);

/* Revision number: 1 for the first commit, +1 per commit. Thread: any. */
RC_API uint64_t rc_snapshot_revision(const rc_snapshot_t *snap);
/* Wall-clock time of the commit in nanoseconds since the epoch (CLOCK_REALTIME). */
RC_API int64_t rc_snapshot_time_ns(const rc_snapshot_t *snap);
/* The root object (one member per present component). Borrowed from `snap`. */
RC_API const rc_value_t *rc_snapshot_root(const rc_snapshot_t *snap);
/* The value at `path` (first segment is the component name); NULL if absent.
 * Borrowed from `snap`. Thread: any. */
RC_API const rc_value_t *rc_snapshot_get(const rc_snapshot_t *snap, const char *path);

/* Typed reads by path. Each returns 0 and stores the value, RC_ENOTFOUND when the path is
 * absent, RC_ETYPE when the value has another type (get_number accepts integers), or
 * RC_EINVAL when `out` is NULL (`len` may be NULL). Strings are borrowed from `snap`.
 * Thread: any; never blocks. */
RC_API int rc_snapshot_get_string(const rc_snapshot_t *snap, const char *path,
                                  const char **out, size_t *len);
RC_API int rc_snapshot_get_int(const rc_snapshot_t *snap, const char *path, int64_t *out);
RC_API int rc_snapshot_get_number(const rc_snapshot_t *snap, const char *path, double *out);
RC_API int rc_snapshot_get_bool(const rc_snapshot_t *snap, const char *path, bool *out);

/* ===================================================================================
 * Readers
 * For hot paths: a reader is one thread's handle on the engine's snapshots. It keeps a
 * reference to the snapshot it last returned and takes a new one only when the engine
 * has committed since, so a read is one load of a word that only the engine writes (no
 * read-modify-write on memory other threads touch, no lock, no allocation): reads
 * scale with threads. rc_snapshot_acquire remains for code that reads now and then.
 *
 * The pinning rule: a reader holds exactly one snapshot, the one its last
 * rc_reader_snapshot returned, and nothing else. When the engine commits, that one
 * becomes old and stays alive until the reader's next rc_reader_snapshot (which drops
 * it and returns the new one), rc_reader_idle or rc_reader_free. So a reader that stops
 * reading pins at most one old snapshot; call rc_reader_idle before a thread blocks or
 * sleeps for long, to pin none. The engine's own reclamation never waits for readers.
 * =================================================================================== */

typedef struct rc_reader rc_reader_t;

/* Creates a reader of `eng`'s snapshots for one thread. Holds nothing until its first
 * rc_reader_snapshot. Ownership: free with rc_reader_free() before or after the
 * engine; the engine keeps no list of its readers.
 * Thread: any. Errors: NULL when `eng` is NULL or out of memory. Never runs Lua. */
RC_API rc_reader_t *rc_reader_new(rc_engine_t *eng);

/* Returns the current snapshot: the one already held when the engine has committed
 * nothing since (one load and a compare), else a reference to the new one, dropping the
 * old (which frees the old snapshot's unshared values on this thread if it was the last
 * holder). Ownership: borrowed from the reader, valid until the next rc_reader_snapshot,
 * rc_reader_idle or rc_reader_free on this reader; rc_snapshot_retain it to keep it
 * longer. Revisions never go backwards, and a commit visible to rc_snapshot_acquire
 * or rc_engine_revision is visible here too.
 * Thread: one thread at a time per reader (a reader is not shared; use one per thread).
 * Never blocks; never runs Lua. Errors: NULL when nothing is committed yet (before
 * start/attach), or after the engine was freed (calling it then is a bug: do not). */
RC_API const rc_snapshot_t *rc_reader_snapshot(rc_reader_t *r);

/* Drops the reader's snapshot so that it pins nothing (the next rc_reader_snapshot
 * takes the current one again). Pointers from the last rc_reader_snapshot become
 * invalid. Thread: the reader's thread. Never fails. */
RC_API void rc_reader_idle(rc_reader_t *r);

/* Drops the reader's snapshot and frees the reader. NULL is ignored. May run after
 * rc_engine_free. Thread: the reader's thread (or any once no thread uses it). */
RC_API void rc_reader_free(rc_reader_t *r);

/* ===================================================================================
 * Compiled paths
 * A path parsed once (same syntax as rc_snapshot_get), for lookups that skip parsing.
 * A compiled path also remembers, per key, the position where it found that key last
 * time, and tries that position first in the next object (objects keep their key order
 * between revisions unless the key set changes); the hint is always checked against
 * the key, so a stale one costs one comparison and never a wrong answer.
 * =================================================================================== */

typedef struct rc_path rc_path_t;

/* Compiles `path` (`db.pool.max`, `rules[3].host`, `flags["a.b"]`; "" is the root).
 * Returns the compiled path, or NULL with `err` filled: RC_EINVAL for a malformed path
 * (`column` = 1-based byte where it goes wrong), RC_ENOMEM. Ownership: free with
 * rc_path_free(); `path` is not kept. Thread: any. Never runs Lua. */
RC_API rc_path_t *rc_path_compile(const char *path, rc_error *err);

/* Frees a compiled path. NULL is ignored. Thread: any, once no thread uses it. */
RC_API void rc_path_free(rc_path_t *path);

/* The value at `path` in `snap`; NULL if absent (or either argument is NULL). Gives the
 * same answer as rc_snapshot_get with the source text. Borrowed from `snap`.
 * Thread: any; one compiled path may be used by many threads at once (its position
 * hints are atomic). Never blocks, never allocates, never runs Lua. */
RC_API const rc_value_t *rc_snapshot_get_path(const rc_snapshot_t *snap,
                                              const rc_path_t *path);

/* Typed reads by compiled path, as the rc_snapshot_get_* functions: 0 and the value,
 * RC_ENOTFOUND when absent, RC_ETYPE for another type (get_number accepts integers).
 * Strings are borrowed from `snap`. Thread: any; never blocks. */
RC_API int rc_snapshot_get_string_path(const rc_snapshot_t *snap, const rc_path_t *path,
                                       const char **out, size_t *len);
RC_API int rc_snapshot_get_int_path(const rc_snapshot_t *snap, const rc_path_t *path,
                                    int64_t *out);
RC_API int rc_snapshot_get_number_path(const rc_snapshot_t *snap, const rc_path_t *path,
                                       double *out);
RC_API int rc_snapshot_get_bool_path(const rc_snapshot_t *snap, const rc_path_t *path,
                                     bool *out);

/* ===================================================================================
 * Changes and subscriptions
 * =================================================================================== */

typedef enum rc_change_kind {
  RC_CHANGE_ADDED = 1,
  RC_CHANGE_REMOVED,
  RC_CHANGE_MODIFIED,
  RC_CHANGE_TOUCHED,            /* a `force` component delivered an unchanged value:
                                   old_value == new_value, reported anyway */
} rc_change_kind_t;

/* One changed path. `old_value` is NULL for an addition, `new_value` NULL for a removal.
 * An added or removed subtree is one change at the subtree's path. Everything is borrowed
 * and valid only during the callback that received it. */
typedef struct rc_change {
  const char *path;             /* "settings.db.pool.max", "rules[3].host", 'flags["a.b"]' */
  rc_change_kind_t kind;
  const rc_value_t *old_value;
  const rc_value_t *new_value;
  bool secret;                  /* the path is (or holds) a `secret` value: anything that
                                   prints or logs the change must redact the values */
} rc_change_t;

/* "added", "removed", "modified", "touched". */
RC_API const char *rc_change_kind_name(rc_change_kind_t kind);

/* Called after a commit with the changes that match the subscription's pattern, in path
 * order within each component. `snap` is the new snapshot, borrowed for the call (take
 * rc_snapshot_retain to keep it). Runs on the loop thread; must not block; may call
 * rc_unsubscribe (even for itself) and any snapshot function. */
typedef void (*rc_change_fn)(void *ud, const rc_snapshot_t *snap,
                             const rc_change_t *changes, size_t n);

/* Subscribes `fn` to changes whose path matches `pattern`. A pattern is a path whose
 * segments may be `*` (any one segment) or `**` (any number of segments). A change
 * matches when its path and the pattern agree on every segment they both have: so `db`
 * receives changes anywhere below `db`, and `db.host` also receives a change that replaced
 * all of `db`. `**` receives everything.
 * Returns a subscription id (> 0), or RC_EINVAL for a malformed pattern, RC_ENOMEM.
 * Ownership: `pattern` is copied; `ud` is borrowed until rc_unsubscribe or engine free.
 * Thread: any. Never runs Lua. */
RC_API int rc_subscribe(rc_engine_t *eng, const char *pattern, rc_change_fn fn, void *ud,
                        rc_error *err);
/* Removes a subscription; after it returns on the loop thread (or from a callback) `fn`
 * is not called again; from another thread, a callback already running may finish.
 * Returns 0 or RC_ENOTFOUND. Thread: any. */
RC_API int rc_unsubscribe(rc_engine_t *eng, int id);

/* ===================================================================================
 * Events
 * =================================================================================== */

typedef enum rc_event_type {
  RC_EVENT_COMMIT = 1,         /* "commit": a new snapshot was committed */
  RC_EVENT_SOURCE_ERROR,       /* "source.error": a source failed (read, parse, watch) */
  RC_EVENT_SOURCE_RECOVERED,   /* "source.recovered": a failed source delivers again */
  RC_EVENT_POLICY_ERROR,       /* "policy.error": the policy raised or was rejected */
  RC_EVENT_STARTED,            /* "engine.started" */
  RC_EVENT_STOPPED,            /* "engine.stopped" */
  RC_EVENT_REJECTED,           /* "change.rejected": validate refused a new value; the
                                  previous one stays (message: the reason) */
  RC_EVENT_FILTERED,           /* "change.filtered": filter, only or ignore dropped it */
  RC_EVENT_RESTART_REQUIRED,   /* "restart.required": a `dynamic = false` path changed;
                                  the running value stays (message: the paths) */
  RC_EVENT_COMPONENT_STATE,    /* "component.state": a condition turned a component
                                  active (source started) or inactive (source stopped) */
  RC_EVENT_POLICY_RELOADED,    /* "policy.reloaded": a new policy version is in force */
  /* A reload is one attempt to change the running configuration: the changes one wave
   * found (or a rollback, an unpin), applied by the reload modules, then committed. Its
   * events carry `reload_id` and `trigger`. */
  RC_EVENT_RELOAD_STARTED,     /* "reload.started": changes found, modules about to run */
  RC_EVENT_MODULE_STARTED,     /* "module.started": `module` is applying the changes */
  RC_EVENT_MODULE_COMPLETED,   /* "module.completed": `module` applied them
                                  (`duration_us`) */
  RC_EVENT_MODULE_FAILED,      /* "module.failed": `module` refused them or did not answer
                                  within its timeout (`code`: its code or RC_ETIMEDOUT) */
  RC_EVENT_RELOAD_COMPLETED,   /* "reload.completed": committed (`revision`, `changes`,
                                  `duration_us`), or nothing to commit */
  RC_EVENT_RELOAD_FAILED,      /* "reload.failed": a module refused; message: the reason */
  RC_EVENT_RELOAD_ROLLEDBACK,  /* "reload.rolledback": the modules that had applied were
                                  given the reverse changes; the running revision stays */
  RC_EVENT_PINNED,             /* "engine.pinned": a rollback pinned the configuration;
                                  source changes are recorded, not applied */
  RC_EVENT_UNPINNED,           /* "engine.unpinned": changes are applied again */
  RC_EVENT_POLICY_LOG,         /* "policy.log": the policy called print (message: its
                                  arguments as print shows them; file and line: the
                                  call; component: whose function ran, or ""). With no
                                  event handler at all it goes to stderr instead,
                                  prefixed "[policy] " */
} rc_event_type_t;

/* One event. Strings are borrowed for the duration of the callback; absent ones are "". */
typedef struct rc_event {
  rc_event_type_t type;
  const char *name;         /* "source.error", ... as listed above */
  const char *component;    /* component concerned, or "" */
  const char *message;      /* human-readable detail */
  const char *file;         /* file concerned (source file or policy), or "" */
  int line, column;         /* position in `file`, 0 if unknown */
  int code;                 /* RC_E* code for errors, 0 otherwise */
  uint64_t revision;        /* "commit", "reload.completed": the new revision */
  size_t changes;           /* "commit", "reload.*": number of changes */
  uint64_t reload_id;       /* "reload.*", "module.*", "commit": the reload, else 0 */
  const char *trigger;      /* "reload.*": what started it: "source:<name>[,<name>...]",
                               "request", "signal", "policy", "rollback", "unpin", "push";
                               else "" */
  const char *module;       /* "module.*": the module's name, else "" */
  uint64_t duration_us;     /* "module.completed/failed", "reload.completed/failed" */
} rc_event_t;

typedef void (*rc_event_fn)(void *ud, const rc_event_t *ev);

/* Adds an event handler, called on the loop thread for every event after the ones added
 * before it; it must not block. Returns its id (> 0), or RC_EINVAL / RC_ENOMEM.
 * Ownership: `ud` is borrowed until the handler is removed or the engine is freed.
 * Thread: any; a handler added while events are emitted gets the next event. */
RC_API int rc_engine_add_event_handler(rc_engine_t *eng, rc_event_fn fn, void *ud);

/* Removes handler `id`; after it returns on the loop thread it is not called again (from
 * another thread, a call already running may finish). Returns 0 or RC_ENOTFOUND.
 * Thread: any. */
RC_API int rc_engine_remove_event_handler(rc_engine_t *eng, int id);

/* Sets the first event handler (NULL removes it), the one rc_engine_on_event has always
 * set; handlers added with rc_engine_add_event_handler run after it. Ownership: `ud` is
 * borrowed until replaced or the engine is freed. Thread: any. */
RC_API void rc_engine_on_event(rc_engine_t *eng, rc_event_fn fn, void *ud);

/* ===================================================================================
 * Engine lifecycle
 * new -> load_policy -> start (own thread) | attach (your loop) -> stop -> free
 * =================================================================================== */

/* Creates an engine with its Lua state. Ownership: free with rc_engine_free().
 * Errors: NULL with `err` filled (RC_ENOMEM). Thread: any. */
RC_API rc_engine_t *rc_engine_new(rc_error *err);

/* Loads the policy file at `path` (Lua text, sandboxed; see docs/POLICY.md). Relative
 * paths inside it are relative to the policy's directory. The file is checked fully:
 * unknown keys, bad durations, unknown formats are errors with file and line.
 * Returns 0, or RC_EPOLICY / RC_EIO / RC_ENOMEM with `err` filled.
 * Thread: before start/attach only, on the thread that created the engine. Runs Lua. */
RC_API int rc_engine_load_policy(rc_engine_t *eng, const char *path, rc_error *err);

/* Lets policies `require` the Lua module `name` (found on the engine's package.path and
 * package.cpath, e.g. "lpeg"); by default they may require only reactcfg's own modules.
 * A table module is given to the policy as a read-only view. Call it before
 * rc_engine_load_policy. Returns 0, RC_EINVAL (no name, or a path), RC_ESTATE (the
 * engine has started), RC_ENOMEM. Thread: the creating thread, before start/attach. */
RC_API int rc_engine_allow_module(rc_engine_t *eng, const char *name);

/* Whether the engine watches the policy file and reloads it when it changes (default:
 * on). A new version replaces the running one only if it loads and its first evaluation
 * succeeds; otherwise a "policy.error" event says why and the running policy stays.
 * The replaced (or refused) version's Lua state is freed on a thread the engine starts
 * for that on first use, so that freeing a large heap does not hold the loop; that
 * thread runs only rc_set_allocator's free and ends in rc_engine_free.
 * Thread: before rc_engine_start/attach. */
RC_API void rc_engine_set_policy_reload(rc_engine_t *eng, bool on);

/* Starts the engine on its own thread with its own libuv loop. Before returning it reads
 * every source once and commits revision 1, so a snapshot is available at once.
 * Returns 0, RC_ESTATE (no policy, or already started), RC_ESYS, RC_ENOMEM.
 * Thread: the creating thread. Runs Lua (on the engine thread, while the caller waits). */
RC_API int rc_engine_start(rc_engine_t *eng, rc_error *err);

/* Embedded mode: attaches the engine to `loop` (a uv_loop_t* the application owns and
 * runs) instead of starting a thread. Reads every source and commits revision 1 before
 * returning. From then on the loop's thread is the engine's loop thread.
 * Returns 0, RC_ESTATE, RC_ESYS, RC_ENOMEM. Thread: the loop's thread. Runs Lua. */
RC_API int rc_engine_attach(rc_engine_t *eng, void *uv_loop, rc_error *err);

/* Stops watching: every source stops, every handle starts closing, no callback runs
 * after it returns (own-thread mode: the thread is joined). In embedded mode the handles
 * finish closing when the application's loop runs next, or in rc_engine_free.
 * Idempotent. Returns 0. Thread: any thread except, in own-thread mode, the loop thread.
 * In embedded mode: the loop thread. */
RC_API int rc_engine_stop(rc_engine_t *eng);

/* Stops if needed and frees the engine, its Lua state and every snapshot only it holds
 * (waiting for the thread that frees replaced policy versions, if it was started).
 * Snapshots acquired by the caller stay valid until released. NULL is ignored.
 * Thread: the creating thread (embedded mode: the loop thread, not inside a callback). */
RC_API void rc_engine_free(rc_engine_t *eng);

/* Sets (value != NULL) or unsets an environment variable of this process and makes the
 * engine's env sources look again at once. setenv() in a multi-threaded process races
 * with the engine thread reading the environment; this call does the change on the loop
 * thread instead. Returns 0, RC_EINVAL, RC_ENOMEM. Thread: any. */
RC_API int rc_engine_setenv(rc_engine_t *eng, const char *name, const char *value);

/* ============================================================================ * Reloads: requested reloads, pushed values, reload modules, history and rollback
 * =================================================================================== */

/* Re-reads the sources of the named components now (all components when `components` is
 * NULL), past their debounce, a cache_for hold and remote poll intervals (a blocking
 * query or a watch is re-established with a fresh read); what they read goes through the
 * policy and the reload modules as one reload with the trigger "request", ended by a
 * "reload.completed" (possibly with no change) or "reload.failed" event. It also resets
 * the backoff after failed reloads. Returns 0, RC_ENOTFOUND (a name is no component:
 * nothing happens), RC_ESTATE (not running), RC_ENOMEM. Thread: any (from another
 * thread it waits for the loop to take the request). */
RC_API int rc_engine_reload(rc_engine_t *eng, const char *const *components, size_t n);

/* Gives component `component` (whose source is `rc.push()`) a value the application
 * fetched itself: `len` bytes of `text` in `format` ("json", "yaml", "toml", "dotenv",
 * "text"), parsed on the loop thread like a file of that format within the source's
 * limits, then through the whole policy (trigger "push"). Ownership: `text` is copied.
 * Returns 0, RC_EPARSE / RC_ELIMIT with `err` filled (file "push:<component>", line,
 * column), RC_ENOTFOUND (no such component), RC_EINVAL (its source is not rc.push(), or
 * an unknown format), RC_ESTATE (not running), RC_ENOMEM. Thread: any. */
RC_API int rc_engine_push(rc_engine_t *eng, const char *component, const char *text,
                          size_t len, const char *format, rc_error *err);

/* One module's part of one reload: passed to the module's apply function. */
typedef struct rc_reload rc_reload_t;

/* A reload module's apply function: the application applies `changes` (the ones under
 * the module's pattern; `n` > 0) from `snap`, the candidate snapshot (not yet current:
 * readers still see the running revision). Returns RC_OK (applied), another RC_E* code
 * (refused: the reload is rolled back), or RC_EPENDING, and then calls rc_reload_done(r)
 * exactly once, from any thread, within the module's timeout. In a rollback the same
 * function is called with the reverse changes (new -> old; rc_reload_is_rollback says
 * so) and `snap` the running revision. Ownership: `snap`, `changes` and their values are
 * borrowed until the function returns; rc_snapshot_retain keeps `snap` longer. Runs on
 * the loop thread; reloads run one at a time, modules in registration order. */
typedef int (*rc_module_fn)(void *ud, rc_reload_t *r, const rc_snapshot_t *snap,
                            const rc_change_t *changes, size_t n);

/* Registers a reload module: `apply` gets every reload whose changes touch `pattern`
 * (as in rc_subscribe; "" or "**" for all) and must answer within `timeout_ms` (0: 10 s).
 * Modules run in the order they were registered, before any that the policy declares.
 * Ownership: `name` and `pattern` are copied; `ud` is borrowed until the engine is
 * freed. Returns the module's id (> 0), or RC_EINVAL (no name or apply, a malformed
 * pattern, a name already used) / RC_ENOMEM with `err` filled. Thread: any. */
RC_API int rc_module_register(rc_engine_t *eng, const char *name, const char *pattern,
                              rc_module_fn apply, uint32_t timeout_ms, void *ud,
                              rc_error *err);

/* Ends a module's part of a reload it answered RC_EPENDING: `code` RC_OK (applied) or an
 * RC_E* code (refused), `message` (copied; may be NULL) the reason. Returns 0, or
 * RC_ESTALE when the reload is already over (the module's timeout passed: the answer is
 * ignored). After it returns, `r` must not be used. Thread: any. */
RC_API int rc_reload_done(rc_reload_t *r, int code, const char *message);

/* The reason of a refusal a module gives by returning its code at once: call it from the
 * apply function before returning (the last call wins; `message` is copied, NULL clears
 * it). Events and rc_engine_rollback's error then say why instead of "refused". Thread:
 * the module's apply function. */
RC_API void rc_reload_set_reason(rc_reload_t *r, const char *message);

/* The reload's id (as in its events), and whether this call is a rollback (the reverse
 * of changes the module applied earlier in the same reload). Thread: the module's apply
 * function, or any thread until rc_reload_done. */
RC_API uint64_t rc_reload_id(const rc_reload_t *r);
RC_API bool rc_reload_is_rollback(const rc_reload_t *r);

/* Makes the configuration of `revision` (one of the last `history` revisions, policy key
 * `history`, default 16) current again as a new revision, through the reload modules like
 * any reload (trigger "rollback"), and then pins it: sources keep watching and their
 * changes are recorded, but none is applied until rc_engine_unpin. A rollback a module
 * refuses leaves everything as it was (not pinned). Returns 0 (done, or already the
 * running configuration), RC_ENOTFOUND (not in the history), RC_EREFUSED (a module
 * refused: `err` says which), RC_EPENDING (a module answers later: the outcome comes as
 * events), RC_ESTATE (not running), RC_ENOMEM. Thread: any. */
RC_API int rc_engine_rollback(rc_engine_t *eng, uint64_t revision, rc_error *err);

/* Applies the sources' latest values again (trigger "unpin") after a rollback. Returns 0
 * (also when not pinned), RC_ESTATE. Thread: any. */
RC_API int rc_engine_unpin(rc_engine_t *eng);

/* Whether a rollback pinned the configuration. Thread: any. */
RC_API bool rc_engine_pinned(rc_engine_t *eng);

/* ===================================================================================
 * Admin endpoint
 * An HTTP/1.1 endpoint (libmicrohttpd) for operators and tools: GET /metrics, /healthz,
 * /readyz, /status, /config[?path=P], /history, /diff?from=N&to=M, /explain?revision=N,
 * /events (Server-Sent Events); POST /reload[?component=a,b], /rollback?revision=N, /unpin. Off unless
 * started here, by the policy (`admin = { listen = ..., token_env = ... }`) or by
 * `reactcfg-lua --run --admin ADDR`. See docs/OPERATIONS.md.
 * It serves from threads of its own (one per connection, at most `max_connections`);
 * the engine's loop thread never waits on a client. Secrets are always redacted.
 * =================================================================================== */

typedef struct rc_admin rc_admin_t;

/* Options of rc_admin_start; a zeroed struct (or NULL) takes every default. */
typedef struct rc_admin_opts {
  const char *token;          /* bearer token (copied), or NULL/"" for none. With one,
                                 every POST needs "Authorization: Bearer <token>"; on a
                                 non-loopback address every request but /healthz and
                                 /readyz needs it, and without one such an address is
                                 refused */
  unsigned max_connections;   /* open connections at once (0: 32); more are refused */
  unsigned max_streams;       /* /events streams at once (0: 8); more get 503 */
  unsigned timeout_s;         /* a connection idle this long is closed (0: 10) */
  size_t max_request_bytes;   /* request line and headers together (0: 16 KiB): longer
                                 ones get 414/431 */
  size_t max_body_bytes;      /* request body (0: 4 KiB): a longer one gets 413 (and one
                                 without a Content-Length 411) before it is read */
} rc_admin_opts;

/* Starts serving `eng`'s admin endpoint on `listen`: "HOST:PORT" (an IPv4 address,
 * "[IPv6]:PORT" or a name; port 0 picks a free one, see rc_admin_address) or
 * "unix:/PATH" (a stream socket created with mode 0600; a stale socket file at PATH is
 * replaced). A loopback address or a unix socket needs no token; any other address needs
 * `opts->token`. The engine should be started or attached (until then /readyz answers
 * 503). Ownership: the caller owns the result and frees it with rc_admin_free before
 * rc_engine_free; `listen` and `opts` are copied. Thread: any. Never runs Lua.
 * Errors: NULL with `err` filled: RC_EINVAL (a malformed address, a non-loopback address
 * without a token), RC_ESYS (the address cannot be bound: in use, no permission),
 * RC_ENOMEM. */
RC_API rc_admin_t *rc_admin_start(rc_engine_t *eng, const char *listen,
                                  const rc_admin_opts *opts, rc_error *err);

/* The address the endpoint listens on, with the port it was given ("127.0.0.1:40123",
 * "unix:/run/app/reactcfg.sock"). Borrowed from `a` until rc_admin_free. Thread: any. */
RC_API const char *rc_admin_address(const rc_admin_t *a);

/* Stops serving: stops listening, ends /events streams, closes every connection (an
 * answer being sent may be cut) and joins the endpoint's threads; a unix socket's file
 * is removed. Idempotent; returns 0.
 * Thread: any thread; on the engine's loop thread only outside the engine's callbacks
 * (requests the endpoint's threads are waiting on are run before it returns). */
RC_API int rc_admin_stop(rc_admin_t *a);

/* Stops if needed and frees the endpoint. NULL is ignored. Thread: as rc_admin_stop. */
RC_API void rc_admin_free(rc_admin_t *a);

/* Revision of the current snapshot: the one rc_snapshot_acquire would return at this
 * instant (0 before the first commit), never behind what a reader already sees.
 * Thread: any; never blocks (two atomic read-modify-writes on an engine-wide counter,
 * like rc_snapshot_acquire; a reader's rc_reader_snapshot is the cheap way to follow
 * commits on a hot path). */
RC_API uint64_t rc_engine_revision(rc_engine_t *eng);

/* ===================================================================================
 * Operations: metrics and status (docs/OPERATIONS.md lists every metric and state)
 * =================================================================================== */

/* The engine's metrics in the Prometheus text exposition format 0.0.4, every name
 * prefixed `reactcfg_`: reloads by trigger and failures by reason, reload and module
 * durations (histograms), the revision, commits and changes by kind, each component's
 * source health and errors, policy evaluation times and errors, whether the
 * configuration is pinned. Ready to serve as the body of a `/metrics` response
 * (Content-Type: text/plain; version=0.0.4). Labels carry names (components, modules,
 * source kinds, reasons), never values, so a secret never shows here.
 * Ownership: the caller frees the result with rc_free().
 * Thread: any, at any time from rc_engine_new to rc_engine_free; never blocks on the
 * loop (the loop only writes plain counters; this takes a lock that only the creation
 * of a component or a module, and a source error, also take); never runs Lua.
 * Errors: NULL when `eng` is NULL or out of memory. */
RC_API char *rc_engine_metrics_text(rc_engine_t *eng);

/* The engine's status as one JSON object (UTF-8, no trailing newline):
 *   {"revision": N, "pinned": bool, "time": unix seconds, "reload_backoff_seconds": s,
 *    "components": [{"name", "kind", "target", "state", "errors", "rejected",
 *      "last_success", "next_retry", "value_age_seconds",
 *      "last_error": null | {"message", "code", "time", "file", "line", "column"}}]}
 * `kind` and `target` describe the source (target: the path, the URL without
 * credentials, the key; null without a source); times are Unix seconds or null (never,
 * or no retry pending); `state` is one of "ok", "failing" (its last read failed; the
 * last good value stays), "stale" (a value from the cache; the source has not answered
 * yet), "circuit-open" (failed too often: no request until a cool-down ends),
 * "polling" (works, but polls instead of watching in real time), "inactive" (its
 * condition is false: source stopped), "waiting" (no first value yet). Error messages
 * are the events' (secret components' quoted text redacted).
 * Ownership: the caller frees the result with rc_free().
 * Thread: any, like rc_engine_metrics_text; never runs Lua.
 * Errors: NULL when `eng` is NULL or out of memory. */
RC_API char *rc_engine_status_json(rc_engine_t *eng);

/* Keeps the decisions behind each of the next committed revisions, the last `revisions`
 * of them (0, the default: keeps none and formats nothing), for
 * rc_engine_explain_json. Changing it drops what was kept. Returns 0, RC_EINVAL (NULL
 * engine, more than 4096), RC_ENOMEM. Thread: any. */
RC_API int rc_engine_trace(rc_engine_t *eng, size_t revisions);

/* Why `revision` holds what it holds, as one JSON object, the shape of the test bench's
 * explain (docs/REPL.md):
 *   {"revision": N, "at_ms": ms since start, "changes": [{"path", "kind"}],
 *    "trace": [{"at_ms", "component", "kind", "message"}], "dropped": n}
 * `trace` lists what happened since the revision before, in order: source deliveries,
 * debounce and throttle decisions, conditions, update/transform/validate/filter results,
 * the diff, the reload modules, the commit (`kind` "decision"), and the events among
 * them (`kind` their name); values are short and secrets redacted; past 64 KiB of lines
 * the rest are only counted (`dropped`). Changed paths come without values.
 * Ownership: the caller frees the result with rc_free(). Thread: any; never runs Lua.
 * Errors: NULL when the revision is not kept (tracing off, too old) or out of memory. */
RC_API char *rc_engine_explain_json(rc_engine_t *eng, uint64_t revision);

/* Library version string, e.g. "0.1.0". Thread: any. */
RC_API const char *rc_version(void);

#ifdef __cplusplus
}
#endif
#endif /* REACTCFG_H */
