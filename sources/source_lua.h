/* SPDX-License-Identifier: MIT (see LICENSE) */
/* source_lua.h: the part of the source interface for kinds whose options hold Lua
 * functions (rc.lua_source): the engine's Lua state and protected, budgeted calls into
 * it. Loop thread only; every other kind needs none of this. */
#ifndef RC_SOURCE_LUA_H
#define RC_SOURCE_LUA_H

#include "source.h"

#include <lua.h>

/* The engine's Lua state (the policy's). */
lua_State *rc__src_lua(const rc__source_ctx *ctx);
/* Pushes option `key` of the description as the policy made it (functions included), or
 * nil once the source is retired; returns its Lua type. [-0, +1, m] (call it protected) */
int rc__src_lua_push_option(const rc__source_ctx *ctx, const char *key);
/* Calls the function below its `nargs` arguments like a call into the policy: protected,
 * with a traceback and the policy's time budget. 0, or an RC_E* code with `err` filled
 * (the error popped). [-(nargs+1), +nres|0, -] */
int rc__src_lua_pcall(const rc__source_ctx *ctx, int nargs, int nres, rc_error *err);
/* The policy file and its directory (a Lua source's ctx.dir). */
const char *rc__src_policy_path(const rc__source_ctx *ctx);
const char *rc__src_policy_dir(const rc__source_ctx *ctx);

#endif
