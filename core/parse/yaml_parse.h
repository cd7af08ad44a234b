/* SPDX-License-Identifier: MIT (see LICENSE) */
/* yaml_parse.h: the YAML parser (private). YAML 1.2 bytes become a value tree through
 * libfyaml's event API; yaml_parse.c states the rules (exactly one document, the YAML 1.2
 * core schema, which tags are honoured, anchors and merge keys, what YAML 1.2 allows that
 * we refuse, limits). */
#ifndef RC_YAML_PARSE_H
#define RC_YAML_PARSE_H

#include "parse.h"

/* Parses `len` bytes of UTF-8 YAML (nothing is read past `len`). On success returns 0 and
 * stores a new value (refs 1) in *out: an empty stream gives null. On failure returns
 * RC_EPARSE (malformed YAML, an unsupported tag, a duplicate key, a complex key, more
 * than one document, a YAML version other than 1.2 or 1.1, input that is not UTF-8),
 * RC_ELIMIT (beyond `lim`: input bytes, nesting depth, scalar length, or nodes counted
 * with every alias expanded) or RC_ENOMEM, sets
 * *out to NULL and fills `err` (may be NULL) with `file` (may be NULL), a 1-based line
 * and column, and a message. `lim` NULL means the defaults.
 * Thread: any; reentrant. libfyaml's own memory comes from malloc, not rc__malloc
 * (libfyaml 0.7 has no allocator hook). */
int rc__parse_yaml(const char *data, size_t len, const char *file,
                   const rc__parse_limits *lim, rc_value_t **out, rc_error *err);

#endif
