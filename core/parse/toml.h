/* SPDX-License-Identifier: MIT (see LICENSE) */
/* toml.h: the TOML 1.0.0 parser and the type-tagged JSON of the toml-test suite
 * (private). toml.c states the rules it enforces; tagged_json.c writes the tagged form
 * used by `reactcfg-lua --dump --tagged` and by the conformance test. */
#ifndef RC_TOML_H
#define RC_TOML_H

#include "parse.h"

/* Parses `len` bytes of TOML 1.0.0 (nothing is read past `len`; the bytes need not be
 * NUL-terminated). On success returns 0 and stores a new object (refs 1) in *out, its
 * members in document order; tables become objects, arrays (static or of tables) arrays,
 * date-times RC_TYPE_DATETIME values. On failure returns RC_EPARSE (malformed TOML,
 * including input that is not UTF-8 and every redefinition the specification forbids),
 * RC_ELIMIT (beyond `lim`: input bytes, nesting depth of tables, arrays and inline tables,
 * bytes of one string or key, number of nodes) or RC_ENOMEM, leaves *out NULL and fills
 * `err` (may be NULL) with `file` (may be NULL), the 1-based line and column (columns
 * count characters) of the offending character, and a sentence saying what was
 * expected. `lim` NULL means the defaults. Thread: any; reentrant. */
int rc__parse_toml(const char *data, size_t len, const char *file,
                   const rc__parse_limits *lim, rc_value_t **out, rc_error *err);

/* Appends `v` as toml-test's tagged JSON: tables as objects and arrays as arrays, every
 * scalar as {"type": T, "value": TEXT} with T one of string, integer, float, bool,
 * datetime, datetime-local, date-local, time-local. Floats are "inf", "-inf", "nan" or
 * the shortest decimal that reads back to the same double; date-times are written by
 * rc__datetime_format. A null (not a TOML value) is written as JSON null. Compact, no
 * spaces. Allocation failure sets b->oom. */
void rc__tagged_json_write(rc__buf *b, const rc_value_t *v);

#endif
