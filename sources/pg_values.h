/* SPDX-License-Identifier: MIT (see LICENSE) */
/* pg_values.h: a PostgreSQL query result (text format, as libpq hands it over) turned
 * into one value, row by row, within the source's limits. Two columns named key and
 * value become an object; any other shape an array of row objects. Column types are
 * kept: integers, floats, numerics, booleans, dates and timestamps as date-times, json
 * and jsonb parsed, arrays of those as arrays; NULL is absent (null inside an array).
 * Knows nothing of libpq or the loop (the source hands it columns and texts), so that it
 * can be tested without a server. Any thread; one builder per result. */
#ifndef RC_PG_VALUES_H
#define RC_PG_VALUES_H

#include "parse.h"

#include <stdbool.h>
#include <stdint.h>

/* The type OIDs read here (pg_type.oid: fixed since PostgreSQL 7, see the server's
 * src/include/catalog/pg_type.dat). Any other type is read as its text. */
enum {
  RC__PG_BOOL = 16,
  RC__PG_INT8 = 20,
  RC__PG_INT2 = 21,
  RC__PG_INT4 = 23,
  RC__PG_OID = 26,
  RC__PG_JSON = 114,
  RC__PG_FLOAT4 = 700,
  RC__PG_FLOAT8 = 701,
  RC__PG_DATE = 1082,
  RC__PG_TIME = 1083,
  RC__PG_TIMESTAMP = 1114,
  RC__PG_TIMESTAMPTZ = 1184,
  RC__PG_NUMERIC = 1700,
  RC__PG_JSONB = 3802,
};

/* One column of a result: its name, type and type modifier (PQfname, PQftype, PQfmod;
 * the modifier says a numeric's scale). */
typedef struct rc__pg_column {
  const char *name;   /* borrowed for the builder's begin call only (copied) */
  uint32_t oid;
  int32_t typmod;     /* -1: none */
} rc__pg_column;

/* A result being built. Fields are private to pg_values.c. */
typedef struct rc__pg_result {
  size_t ncols;
  rc__pg_column *cols;         /* owned copies (names too) */
  bool kv;                     /* the key/value shape */
  size_t key_col, value_col;   /* with kv */
  rc__object_builder obj;      /* kv: key -> value */
  rc__array_builder rows;      /* else: one object per row */
  rc__buf keys;                /* kv: every key, NUL-separated, to name a duplicate */
  size_t nkeys;                /* kv: keys put (rows whose value is not NULL) */
  size_t nrows;
  size_t bytes, max_bytes;     /* text received so far; the most accepted (0: no limit) */
  size_t nodes;                /* values built so far, against limits.max_nodes */
  rc__parse_limits limits;
  char *where;                 /* names the result in messages (owned copy) */
  rc__buf scratch;             /* an array element's text, unescaped */
} rc__pg_result;

/* Starts a result with the given columns. `limits` (copied) bound strings, depth and
 * values; `max_bytes` bounds the sum of every field's text (0: none). `where` (copied)
 * names the result in messages, e.g. "postgres://app@db:5432/app". 0, or RC_EPARSE (two
 * columns with one name) / RC_ENOMEM with `err` filled; abort it either way on failure. */
int rc__pg_result_begin(rc__pg_result *b, const rc__pg_column *cols, size_t ncols,
                        const rc__parse_limits *limits, size_t max_bytes,
                        const char *where, rc_error *err);
/* Adds one row: `texts[i]` is column i's text (NULL: SQL NULL) of `lens[i]` bytes (a
 * libpq value is NUL-terminated at its length; any text passed here must be too).
 * 0, or an RC_E* code with `err` filled (a value that does not read as its type, a
 * limit passed, memory): the result is then unusable, abort it. */
int rc__pg_result_row(rc__pg_result *b, const char *const *texts, const size_t *lens,
                      rc_error *err);
/* Ends the result: *out is the object or array (owned). RC_EPARSE when two rows share a
 * key (with kv), RC_ENOMEM; the builder is released either way. */
int rc__pg_result_end(rc__pg_result *b, rc_value_t **out, rc_error *err);
/* Releases a result that is not ended. Safe on a zeroed or already ended builder. */
void rc__pg_result_abort(rc__pg_result *b);

#endif
