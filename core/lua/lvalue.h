/* SPDX-License-Identifier: MIT (see LICENSE) */
/* lvalue.h: converting between the core value tree and Lua values (private contract).
 * Objects become tables, arrays become sequences tagged with the metatable
 * `reactcfg.array` (so an empty array survives a round trip), null becomes
 * `reactcfg.null` (a light userdata NULL, the same value as cjson.null). */
#ifndef RC_LVALUE_H
#define RC_LVALUE_H

#include "value.h"
#include <lua.h>

/* How deep a Lua value may nest when it becomes a config value (tables from a policy,
 * a default, emit, push): deeper is refused, which also catches cycles. */
#define RC__LUA_MAX_DEPTH 64

/* Pushes `v` (NULL pushes nil) as a plain Lua value; containers become fresh tables.
 * [-0, +1, m] */
void rc__lua_push_value(lua_State *L, const rc_value_t *v);
/* The same for a value the caller owns (NULL pushes nil): releases it whether the push
 * succeeds or raises (out of memory), so nothing leaks when it does. [-0, +1, m] */
void rc__lua_push_value_owned(lua_State *L, rc_value_t *v);

/* Converts the Lua value at `idx` into a new value (refs 1). Tables with only keys 1..n
 * (n >= 1), or with the `reactcfg.array` metatable, become arrays; other tables need
 * string keys and become objects; an empty untagged table is an empty object. Integers
 * stay integers. Functions, userdata (except null), threads, non-string keys, NaN keys,
 * and nesting deeper than `max_depth` (cycles hit this) are errors: returns NULL and
 * writes a message naming the path into `err` (size `errsz`). Never raises except for
 * memory errors. [-0, +0, m] */
rc_value_t *rc__lua_to_value(lua_State *L, int idx, int max_depth, char *err, size_t errsz);

/* What the engine's states tell conversions (a plain Lua state has none of it):
 * - spent: whether the running call's time budget is spent; conversions of large or
 *   shared tables ask it every few thousand nodes, then stop with an error instead of
 *   running on;
 * - dispose: takes what a stopped conversion had built (a value, the caller's
 *   reference) and releases it off the caller's thread, which freeing millions of nodes
 *   would hold for as long as the budget itself. */
typedef struct rc__lua_hooks {
  bool (*spent)(lua_State *L);
  void (*dispose)(lua_State *L, rc_value_t *v);
} rc__lua_hooks;
/* Sets L's hooks (once, at the state's creation; copied). [-0, +0, m] */
void rc__lua_set_hooks(lua_State *L, const rc__lua_hooks *h);

/* Pushes the shared `reactcfg.null` sentinel. [-0, +1, -] */
void rc__lua_push_null(lua_State *L);
/* Pushes the shared `reactcfg.array` metatable (created on first use in the registry).
 * [-0, +1, m] */
void rc__lua_push_array_mt(lua_State *L);

/* parse(text [, format]) -> value | nil, "format:line:col: message": the parsers from
 * Lua (a Lua source's ctx.parse, the Lua module's rc.parse), as a lua_CFunction; an
 * unknown format raises. (lparse.c) [-0, +1|2, v] */
int rc__lua_parse(lua_State *L);

/* Pushes field `field` of the module `module`, loaded with the global `require`.
 * [-0, +1, e] (lua_state.c) */
void rc__lua_require_field(lua_State *L, const char *module, const char *field);
/* The duration text at `idx` ("200ms", "1m30s") in ms, through reactcfg.duration.
 * Malformed text raises "<what>: <why>", or an argument error when `what` is NULL.
 * [-0, +0, e] (lua_state.c) */
double rc__lua_check_duration(lua_State *L, int idx, const char *what);

#endif
