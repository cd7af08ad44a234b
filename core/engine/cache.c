/* SPDX-License-Identifier: MIT (see LICENSE) */
/* cache.c: the last-known-good cache. For each cacheable component (a source of a
 * cacheable kind: the remote ones; or
 * startup = "cached"), its latest source value that the policy accepted (not one a
 * validate, filter or reload module refused) is kept in <cache dir>/<name>.json, so a
 * later start can begin from it while the server is down. Writes are atomic (a
 * temporary file renamed over the old one); secret components are cached only when the
 * policy says so. The file holds { "saved_ns": ..., "component": ..., "value": ...,
 * "datetimes": [paths] }: date-times (TOML) have no JSON type, so their paths are listed
 * and read back as date-times, not as strings that the source's next answer would
 * "change". */
#include "engine.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

bool rc__cache_wanted(const rc_engine_t *eng, const rc__component *c) {
  if (!eng->cache_dir) return false;
  bool cacheable = c->kind && (c->kind->flags & RC__SRC_CACHEABLE);
  if (!cacheable && c->startup != RC__START_CACHED && !c->cache_for_ms) return false;
  return eng->cache_secrets || !(c->secret_all || c->nsecret);
}

static void cache_path(const rc_engine_t *eng, const rc__component *c, char *out, size_t n,
                       bool tmp) {
  snprintf(out, n, "%s/%s.json%s", eng->cache_dir, c->name, tmp ? ".tmp" : "");
}

/* The date-time written as `text`, read back by the TOML parser (the one that makes
 * date-times), or NULL when it is not one. */
static rc_value_t *datetime_from_text(const char *text) {
  char src[96];
  int n = snprintf(src, sizeof src, "v = %s\n", text);
  if (n < 0 || (size_t)n >= sizeof src) return NULL;
  rc_value_t *doc = NULL;
  rc_error err = {0};
  if (rc__parse_named("toml", src, (size_t)n, "cache", &doc, &err) != 0) return NULL;
  const rc_value_t *v = rc_value_get(doc, "v");
  rc_value_t *dt = v && v->type == RC_TYPE_DATETIME ? rc__value_ref(v) : NULL;
  rc__value_unref(doc);
  return dt;
}

/* `v` (owned) with the strings at the listed paths turned back into date-times. */
static rc_value_t *restore_datetimes(rc_value_t *v, const rc_value_t *paths) {
  for (uint32_t i = 0; v && paths && paths->type == RC_TYPE_ARRAY && i < paths->len; i++) {
    const rc_value_t *p = paths->u.items[i];
    if (p->type != RC_TYPE_STRING) continue;
    const rc_value_t *text = rc_value_find(v, p->u.s);
    rc_value_t *dt = text && text->type == RC_TYPE_STRING ? datetime_from_text(text->u.s)
                                                         : NULL;
    if (!dt) continue;
    int status = 0;
    rc_value_t *next = rc__value_with_path(v, p->u.s, dt, &status);
    if (status != 0) continue; /* keeps the string */
    rc__value_unref(v);
    v = next;
  }
  return v;
}

rc_value_t *rc__cache_load(const rc_engine_t *eng, const rc__component *c,
                           int64_t *saved_ns) {
  if (!rc__cache_wanted(eng, c)) return NULL;
  char path[4096];
  cache_path(eng, c, path, sizeof path, false);
  FILE *f = fopen(path, "rb");
  if (!f) return NULL;
  rc__buf b;
  rc__buf_init(&b);
  char chunk[8192];
  size_t got;
  while ((got = fread(chunk, 1, sizeof chunk, f)) > 0) rc__buf_add(&b, chunk, got);
  fclose(f);
  rc_value_t *doc = NULL, *v = NULL;
  rc_error err = {0};
  if (!b.oom && rc__parse_named("json", b.p ? b.p : "", b.n, path, &doc, &err) == 0) {
    const rc_value_t *saved = rc_value_get(doc, "saved_ns");
    int64_t ns = 0;
    if (saved && rc_value_int(saved, &ns) == 0) *saved_ns = ns;
    v = restore_datetimes(rc__value_ref(rc_value_get(doc, "value")),
                          rc_value_get(doc, "datetimes"));
  }
  rc__value_unref(doc);
  rc__buf_free(&b);
  return v;
}

/* Appends the paths of the date-times in `v` as JSON strings (comma-separated);
 * `path` holds v's own path and is restored on return. */
static void datetime_paths(const rc_value_t *v, rc__buf *path, rc__buf *out) {
  size_t at = path->n;
  if (v->type == RC_TYPE_DATETIME) {
    if (out->n) rc__buf_addc(out, ',');
    rc__json_write_string(out, path->p ? path->p : "", path->n);
  } else if (v->type == RC_TYPE_ARRAY) {
    for (uint32_t i = 0; i < v->len; i++) {
      rc__path_add_index(path, i);
      datetime_paths(v->u.items[i], path, out);
      path->n = at;
    }
  } else if (v->type == RC_TYPE_OBJECT) {
    for (uint32_t i = 0; i < v->len; i++) {
      rc__path_add_key(path, v->u.members[i].key, v->u.members[i].klen);
      datetime_paths(v->u.members[i].val, path, out);
      path->n = at;
    }
  }
}

/* Writes one component's value; 0 or errno. */
static int write_one(rc_engine_t *eng, rc__component *c) {
  char path[4096], tmp[4096];
  cache_path(eng, c, path, sizeof path, false);
  cache_path(eng, c, tmp, sizeof tmp, true);
  rc__buf b;
  rc__buf_init(&b);
  /* cache_for reads saved_ns as the time of the answer, not of this write. */
  int64_t saved = c->fetched_ns ? c->fetched_ns : rc__real_ns();
  rc__buf_printf(&b, "{\"saved_ns\":%lld,\"component\":", (long long)saved);
  rc__json_write_string(&b, c->name, strlen(c->name));
  rc__buf_adds(&b, ",\"value\":");
  if (c->value)
    rc__json_write(&b, c->value, false, false);
  else
    rc__buf_adds(&b, "null");
  if (c->value) {
    rc__buf path, list;
    rc__buf_init(&path);
    rc__buf_init(&list);
    datetime_paths(c->value, &path, &list);
    if (list.n) {
      rc__buf_adds(&b, ",\"datetimes\":[");
      rc__buf_add(&b, list.p, list.n);
      rc__buf_addc(&b, ']');
    }
    b.oom = b.oom || path.oom || list.oom;
    rc__buf_free(&path);
    rc__buf_free(&list);
  }
  rc__buf_adds(&b, "}\n");
  if (b.oom) {
    rc__buf_free(&b);
    return ENOMEM;
  }
  int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  int e = fd < 0 ? errno : 0;
  if (!e && write(fd, b.p, b.n) != (ssize_t)b.n) e = errno ? errno : EIO;
  if (fd >= 0 && fsync(fd) != 0 && !e) e = errno;
  if (fd >= 0 && close(fd) != 0 && !e) e = errno;
  if (!e && rename(tmp, path) != 0) e = errno;
  if (e) unlink(tmp);
  rc__buf_free(&b);
  return e;
}

void rc__cache_store_all(rc_engine_t *eng) {
  bool made = false;
  for (size_t i = 0; i < eng->ncomps; i++) {
    rc__component *c = eng->comps[i];
    /* Only values a source delivered: a cached value read back is not written again. */
    if (!rc__cache_wanted(eng, c) || c->stale || !c->delivered || c->in_error ||
        c->refused)
      continue;
    if (c->value == c->cache_written) continue;
    if (!made) {
      if (mkdir(eng->cache_dir, 0700) != 0 && errno != EEXIST) {
        rc__emit(eng, RC_EVENT_SOURCE_ERROR, NULL, eng->cache_dir, 0, 0, RC_EIO,
                 "cannot create the cache directory: %s", strerror(errno));
        return;
      }
      made = true;
    }
    int e = write_one(eng, c);
    if (e) {
      rc__emit(eng, RC_EVENT_SOURCE_ERROR, c->name, eng->cache_dir, 0, 0, RC_EIO,
               "cannot write the cached value: %s", strerror(e));
      continue;
    }
    rc__value_unref(c->cache_written);
    c->cache_written = rc__value_ref(c->value);
  }
}
