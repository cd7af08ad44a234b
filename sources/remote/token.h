/* SPDX-License-Identifier: MIT (see LICENSE) */
/* token.h: a secret (an API token) read from an environment variable or a file, the file
 * re-read when its size or mtime change. Never printed; wiped when replaced or freed. */
#ifndef RC_TOKEN_H
#define RC_TOKEN_H

#include "internal.h"

typedef struct rc__token {
  char *env, *file;         /* where it comes from (names, not secrets; owned) */
  char *value;              /* NULL until read, or when none is configured */
  int64_t mtime_ns;
  int64_t size;
} rc__token;

/* A token from the variable `env` or the file `file` (copied; both NULL: none). False
 * on OOM (then nothing is kept). */
bool rc__token_init(rc__token *t, const char *env, const char *file);
/* The current token (borrowed until the next call), NULL when none is configured. On a
 * configured token that cannot be read: NULL with `err` filled (RC_EIO). */
const char *rc__token_get(rc__token *t, rc_error *err);
void rc__token_free(rc__token *t);

#endif
