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
  X(ESYS, -10, "system call failed")

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
 * Thread: any thread; never blocks; never runs Lua.
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
  uint64_t revision;        /* for "commit": the new revision */
  size_t changes;           /* for "commit": number of changes */
} rc_event_t;

typedef void (*rc_event_fn)(void *ud, const rc_event_t *ev);

/* Sets the one event callback (NULL removes it). It runs on the loop thread and must not
 * block. Ownership: `ud` is borrowed until replaced or the engine is freed.
 * Thread: before rc_engine_start/attach, or on the loop thread. */
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

/* Stops if needed and frees the engine, its Lua state and every snapshot only it holds.
 * Snapshots acquired by the caller stay valid until released. NULL is ignored.
 * Thread: the creating thread (embedded mode: the loop thread, not inside a callback). */
RC_API void rc_engine_free(rc_engine_t *eng);

/* Sets (value != NULL) or unsets an environment variable of this process and makes the
 * engine's env sources look again at once. setenv() in a multi-threaded process races
 * with the engine thread reading the environment; this call does the change on the loop
 * thread instead. Returns 0, RC_EINVAL, RC_ENOMEM. Thread: any. */
RC_API int rc_engine_setenv(rc_engine_t *eng, const char *name, const char *value);

/* Revision of the last commit (0 before the first). Thread: any. */
RC_API uint64_t rc_engine_revision(rc_engine_t *eng);

/* Library version string, e.g. "0.1.0". Thread: any. */
RC_API const char *rc_version(void);

#ifdef __cplusplus
}
#endif
#endif /* REACTCFG_H */
