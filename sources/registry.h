/* SPDX-License-Identifier: MIT (see LICENSE) */
/* registry.h: the list of source kinds (registry.c). The engine finds a kind here by the
 * name a policy's description carries, or by a flag; it names no kind itself. */
#ifndef RC_REGISTRY_H
#define RC_REGISTRY_H

#include "source.h"

/* Every kind, in registry order, ended by NULL. */
extern const rc__source_kind *const rc__source_kinds[];
/* The kind called `name`, or NULL. */
const rc__source_kind *rc__kind_find(const char *name);
/* The first kind with every flag of `flags`, or NULL. */
const rc__source_kind *rc__kind_with(unsigned flags);

#endif
