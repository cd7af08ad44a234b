/* SPDX-License-Identifier: MIT (see LICENSE) */
/* registry.c: every source kind, one line each. A new kind is its own C file here (or in
 * a folder of its own), its Lua half in lua/reactcfg/sources/<kind>.lua, and one line
 * below; the order is the order of the constructors' listings in messages. */
#include "registry.h"

#include <string.h>

/* One line per kind: X(name) stands for `const rc__source_kind rc__<name>_kind`, defined
 * in the kind's own file. */
#define RC__SOURCE_KINDS(X) \
  X(file)                   \
  X(env)                    \
  X(lua)                    \
  X(push)                   \
  X(http)                   \
  X(consul)                 \
  X(vault)                  \
  X(etcd)                   \
  X(redis)                  \
  X(postgres)               \
  X(websocket)              \
  X(kafka)                  \
  X(exec)

#define RC__DECLARE(name) extern const rc__source_kind rc__##name##_kind;
#define RC__ENTRY(name) &rc__##name##_kind,
RC__SOURCE_KINDS(RC__DECLARE)
const rc__source_kind *const rc__source_kinds[] = {RC__SOURCE_KINDS(RC__ENTRY) NULL};

const rc__source_kind *rc__kind_find(const char *name) {
  for (size_t i = 0; name && rc__source_kinds[i]; i++)
    if (strcmp(rc__source_kinds[i]->name, name) == 0) return rc__source_kinds[i];
  return NULL;
}

const rc__source_kind *rc__kind_with(unsigned flags) {
  for (size_t i = 0; rc__source_kinds[i]; i++)
    if ((rc__source_kinds[i]->flags & flags) == flags) return rc__source_kinds[i];
  return NULL;
}
