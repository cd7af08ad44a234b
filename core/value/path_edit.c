/* SPDX-License-Identifier: MIT (see LICENSE) */
/* path_edit.c: persistent edits of value trees by path (a new tree shares every
 * unchanged subtree with the old one), and walking a tree with each node's path. Used to
 * keep static paths (dynamic = false) and to redact secrets. */
#include "value.h"

#include <string.h>

/* A copy of array `arr` with item `i` replaced by `val` (moved in; NULL removes it). */
static rc_value_t *array_with(const rc_value_t *arr, size_t i, rc_value_t *val) {
  rc__array_builder b;
  rc__array_begin(&b);
  for (uint32_t k = 0; k < arr->len; k++) {
    if (k == i) {
      if (val) rc__array_push(&b, val);
    } else {
      rc__array_push(&b, rc__value_ref(arr->u.items[k]));
    }
  }
  return rc__array_end(&b);
}

/* The edit below one segment, recursively; `pos` is the parse position in `path`. */
static rc_value_t *with_at(const rc_value_t *v, const char *path, size_t pos,
                           rc_value_t *sub, int *status) {
  rc__buf scratch;
  rc__buf_init(&scratch);
  const char *key;
  size_t klen, index;
  int r = rc__path_next(path, &pos, &scratch, &key, &klen, &index);
  if (r <= 0) {
    rc__buf_free(&scratch);
    if (r < 0) {
      rc__value_unref(sub);
      *status = RC_EINVAL;
      return NULL;
    }
    return sub; /* the whole value is replaced */
  }
  rc_value_t *out = NULL;
  if (key) {
    char *k = rc__strndup(key, klen);
    const rc_value_t *child = NULL;
    if (v && rc_value_type(v) == RC_TYPE_OBJECT) {
      long at = rc__object_find(v, key, klen);
      if (at >= 0) child = v->u.members[at].val;
    }
    rc_value_t *nc = k ? with_at(child, path, pos, sub, status) : NULL;
    if (!k) rc__value_unref(sub);
    if (*status == 0 && (nc || child))
      out = rc__object_with(v && rc_value_type(v) == RC_TYPE_OBJECT ? v : NULL, k, nc);
    else if (*status == 0)
      out = rc__value_ref(v);
    rc__free(k);
    if (!out && *status == 0) *status = RC_ENOMEM;
  } else if (v && rc_value_type(v) == RC_TYPE_ARRAY && index < v->len) {
    rc_value_t *nc = with_at(v->u.items[index], path, pos, sub, status);
    out = *status == 0 ? array_with(v, index, nc) : NULL;
    if (!out && *status == 0) *status = RC_ENOMEM;
  } else {
    /* An index past the end of (or into a non-) array: nothing there to edit. */
    rc__value_unref(sub);
    out = rc__value_ref(v);
  }
  rc__buf_free(&scratch);
  return out;
}

rc_value_t *rc__value_with_path(const rc_value_t *v, const char *path, rc_value_t *sub,
                                int *status) {
  *status = 0;
  return with_at(v, path, 0, sub, status);
}
