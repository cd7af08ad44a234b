/* SPDX-License-Identifier: MIT (see LICENSE) */
/* attach.h: `reactcfg-lua attach ADDR` (attach.c): the admin endpoint's client functions
 * for the REPL in repl.c. */
#ifndef RC_CLI_ATTACH_H
#define RC_CLI_ATTACH_H

#include "cli.h"

#include <lua.h>
#include <stdbool.h>

/* Remembers where the endpoint is: "HOST:PORT", "http://HOST:PORT" or "unix:/PATH"; the
 * token comes from REACTCFG_ADMIN_TOKEN. 0, or -1 when the address is too long. */
int attach_target(const char *addr);
/* Sets the globals status, get, history, diff, reload, rollback, unpin, ready, metrics,
 * events and help; with `json`, events() prints each event's JSON. Needs the global
 * `cjson`. [-0, +0, e] */
int attach_open(lua_State *L, bool json);
/* Prints the `n` values at the top as JSON (one line each) and pops them; false (the
 * message at the top) when one cannot be. [-n, +(0|1), -] */
bool attach_show_json(lua_State *L, int n);

#endif
