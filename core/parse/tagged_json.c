/* SPDX-License-Identifier: MIT (see LICENSE) */
/* tagged_json.c: a value as toml-test's type-tagged JSON, where every scalar is an object
 * {"type": ..., "value": "..."} whose value is always a string, so the suite compares
 * decoders without trusting any JSON library's number handling. */
#include "toml.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>


static void scalar(rc__buf *b, const char *type, const char *text, size_t n) {
  rc__buf_adds(b, "{\"type\":\"");
  rc__buf_adds(b, type);
  rc__buf_adds(b, "\",\"value\":");
  rc__json_write_string(b, text, n);
  rc__buf_addc(b, '}');
}

static const char *datetime_type(rc_datetime_kind_t k) {
  switch (k) {
  case RC_DATETIME_OFFSET: return "datetime";
  case RC_DATETIME_LOCAL: return "datetime-local";
  case RC_DATE_LOCAL: return "date-local";
  case RC_TIME_LOCAL: return "time-local";
  }
  return "datetime";
}

void rc__tagged_json_write(rc__buf *b, const rc_value_t *v) {
  char tmp[64];
  size_t n;
  if (b->oom) return;
  switch (rc_value_type(v)) {
  case RC_TYPE_NULL: rc__buf_adds(b, "null"); return;
  case RC_TYPE_BOOL:
    scalar(b, "bool", v->u.b ? "true" : "false", v->u.b ? 4 : 5);
    return;
  case RC_TYPE_INT:
    n = (size_t)snprintf(tmp, sizeof tmp, "%lld", (long long)v->u.i);
    scalar(b, "integer", tmp, n);
    return;
  case RC_TYPE_FLOAT:
    n = rc__double_text(v->u.f, tmp, sizeof tmp);
    scalar(b, "float", tmp, n);
    return;
  case RC_TYPE_STRING: scalar(b, "string", v->u.s, v->len); return;
  case RC_TYPE_DATETIME:
    n = rc__datetime_format(v->u.dt, tmp, sizeof tmp);
    scalar(b, datetime_type(v->u.dt->kind), tmp, n);
    return;
  case RC_TYPE_ARRAY:
    rc__buf_addc(b, '[');
    for (uint32_t i = 0; i < v->len; i++) {
      if (i) rc__buf_addc(b, ',');
      rc__tagged_json_write(b, v->u.items[i]);
    }
    rc__buf_addc(b, ']');
    return;
  case RC_TYPE_OBJECT:
    rc__buf_addc(b, '{');
    for (uint32_t i = 0; i < v->len; i++) {
      const rc__member *m = &v->u.members[i];
      if (i) rc__buf_addc(b, ',');
      rc__json_write_string(b, m->key, m->klen);
      rc__buf_addc(b, ':');
      rc__tagged_json_write(b, m->val);
    }
    rc__buf_addc(b, '}');
    return;
  }
}
