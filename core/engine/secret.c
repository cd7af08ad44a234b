/* SPDX-License-Identifier: MIT (see LICENSE) */
/* secret.c: which paths are secret (`secret = true` or per path) and redaction of values
 * before they leave the engine's trusted side (events, the CLI, the REPL, the Lua
 * module). Only the C snapshot getters and the policy itself see secret values. */
#include "engine.h"

#include <string.h>

/* The component named by the first segment of `path`, or NULL. */
static const rc__component *component_of(const rc_engine_t *eng, const char *path) {
  rc__buf scratch;
  rc__buf_init(&scratch);
  size_t pos = 0, klen, index;
  const char *key;
  const rc__component *found = NULL;
  /* The engine's name index is a cache: filling it is not a change of the engine. */
  if (rc__path_next(path, &pos, &scratch, &key, &klen, &index) == 1 && key)
    found = rc__component_named((rc_engine_t *)eng, key, klen);
  rc__buf_free(&scratch);
  return found;
}

/* 2: everything at `path` is secret; 1: something below it is; 0: nothing. */
static int secrecy(const rc__component *c, const char *path) {
  if (!c) return 0;
  if (c->secret_all) return 2;
  int s = 0;
  for (size_t i = 0; i < c->nsecret && s < 2; i++) {
    if (rc__pattern_match(c->secret_paths[i], path))
      s = 2;
    else if (rc__pattern_touches(c->secret_paths[i], path))
      s = 1;
  }
  return s;
}

bool rc__path_is_secret(const rc_engine_t *eng, const char *path) {
  if (!path || !*path) {
    for (size_t i = 0; i < eng->ncomps; i++)
      if (eng->comps[i]->secret_all || eng->comps[i]->nsecret) return true;
    return false;
  }
  return secrecy(component_of(eng, path), path) > 0;
}

/* Keeps `path` NUL-terminated without counting the NUL, so segments append after it. */
static void terminate(rc__buf *path) {
  rc__buf_addc(path, '\0');
  if (!path->oom) path->n--;
}

static rc_value_t *redact_in(const rc__component *c, rc__buf *path, const rc_value_t *v) {
  int s = secrecy(c, path->p);
  if (s == 0) return rc__value_ref(v);
  if (s == 2) return rc__value_string(RC__REDACTED, strlen(RC__REDACTED));
  size_t mark = path->n;
  rc_type_t t = rc_value_type(v);
  if (t == RC_TYPE_OBJECT) {
    rc__object_builder b;
    rc__object_begin(&b);
    for (uint32_t i = 0; i < v->len; i++) {
      const rc__member *m = &v->u.members[i];
      rc__path_add_key(path, m->key, m->klen);
      terminate(path);
      rc_value_t *child = path->oom ? NULL : redact_in(c, path, m->val);
      path->n = mark;
      if (path->p) path->p[mark] = '\0';
      if (!child) {
        rc__object_abort(&b);
        return NULL;
      }
      rc__object_put(&b, m->key, m->klen, child);
    }
    return rc__object_end(&b);
  }
  if (t == RC_TYPE_ARRAY) {
    rc__array_builder b;
    rc__array_begin(&b);
    for (uint32_t i = 0; i < v->len; i++) {
      rc__path_add_index(path, i);
      terminate(path);
      rc_value_t *child = path->oom ? NULL : redact_in(c, path, v->u.items[i]);
      path->n = mark;
      if (path->p) path->p[mark] = '\0';
      if (!child) {
        rc__array_abort(&b);
        return NULL;
      }
      rc__array_push(&b, child);
    }
    return rc__array_end(&b);
  }
  return rc__value_ref(v); /* a scalar above a secret path holds nothing secret */
}

rc_value_t *rc__redact(const rc_engine_t *eng, const char *path, const rc_value_t *v) {
  if (!v) return NULL;
  if (!rc__path_is_secret(eng, path)) return rc__value_ref(v);
  if (path && *path) {
    rc__buf b;
    rc__buf_init(&b);
    rc__buf_add(&b, path, strlen(path) + 1);
    rc_value_t *out = b.oom ? NULL : (b.n--, redact_in(component_of(eng, path), &b, v));
    rc__buf_free(&b);
    return out;
  }
  /* The root: each component under its own name. */
  if (rc_value_type(v) != RC_TYPE_OBJECT) return rc__value_ref(v);
  rc__object_builder ob;
  rc__object_begin(&ob);
  for (uint32_t i = 0; i < v->len; i++) {
    const rc__member *m = &v->u.members[i];
    rc_value_t *child = rc__redact(eng, m->key, m->val);
    if (!child) {
      rc__object_abort(&ob);
      return NULL;
    }
    rc__object_put(&ob, m->key, m->klen, child);
  }
  return rc__object_end(&ob);
}
