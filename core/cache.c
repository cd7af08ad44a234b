/* cache.c: the last-known-good cache. For each cacheable component (a remote source, or
 * startup = "cached"), its latest source value is kept in <cache dir>/<name>.json, so a
 * later start can begin from it while the server is down. Writes are atomic (a
 * temporary file renamed over the old one); secret components are cached only when the
 * policy says so. The file holds { "saved_ns": ..., "component": ..., "value": ... }. */
#include "engine.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static bool remote(const rc__component *c) {
  static const char *const kinds[] = {"http", "consul", "vault", "etcd"};
  for (size_t i = 0; i < sizeof kinds / sizeof *kinds; i++)
    if (c->src_kind && strcmp(c->src_kind, kinds[i]) == 0) return true;
  return false;
}

bool rc__cache_wanted(const rc_engine_t *eng, const rc__component *c) {
  if (!eng->cache_dir) return false;
  if (!remote(c) && c->startup != RC__START_CACHED && !c->cache_for_ms) return false;
  return eng->cache_secrets || !(c->secret_all || c->nsecret);
}

static void cache_path(const rc_engine_t *eng, const rc__component *c, char *out, size_t n,
                       bool tmp) {
  snprintf(out, n, "%s/%s.json%s", eng->cache_dir, c->name, tmp ? ".tmp" : "");
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
    v = rc__value_ref(rc_value_get(doc, "value"));
  }
  rc__value_unref(doc);
  rc__buf_free(&b);
  return v;
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
    if (!rc__cache_wanted(eng, c) || c->stale || !c->delivered || c->in_error) continue;
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
