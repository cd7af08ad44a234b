/* SPDX-License-Identifier: MIT (see LICENSE) */
/* admin_query.c: the admin endpoint's answers that read the loop thread's state (which
 * paths are secret, the history ring, each component's startup): the small part runs on
 * the loop through rc__call_on_loop and hands back values (immutable, reference-counted);
 * turning them into JSON text happens on the connection's thread. */
#include "admin.h"

#include <stdio.h>
#include <string.h>
#include <time.h>

/* RFC 3339 in UTC with milliseconds. */
static void rfc3339(rc__buf *b, int64_t ns) {
  time_t s = (time_t)(ns / 1000000000);
  struct tm tm;
  gmtime_r(&s, &tm);
  rc__buf_printf(b, "\"%04d-%02d-%02dT%02d:%02d:%02d.%03dZ\"", tm.tm_year + 1900,
                 tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
                 (int)((ns % 1000000000) / 1000000));
}

static void not_running(admin_reply *r, int rc) {
  if (rc == RC_ESTATE) admin_error(r, 503, "the engine is not running");
  else admin_error(r, 500, "%s", rc_strerror(rc));
}

/* ---- /config ---- */

typedef struct config_q {
  const char *path;
  uint64_t revision;
  rc_value_t *value;   /* out: redacted, owned (NULL: absent) */
} config_q;

static int do_config(rc_engine_t *eng, void *arg) {
  config_q *q = arg;
  rc_snapshot_t *snap = rc_snapshot_acquire(eng);
  if (!snap) return RC_ESTATE;
  q->revision = rc_snapshot_revision(snap);
  const rc_value_t *v =
    q->path[0] ? rc_snapshot_get(snap, q->path) : rc_snapshot_root(snap);
  int rc = 0;
  if (!v) rc = RC_ENOTFOUND;
  else if (!(q->value = rc__redact(eng, q->path, v))) rc = RC_ENOMEM;
  rc_snapshot_release(snap);
  return rc;
}

void admin_query_config(rc_admin_t *a, const char *path, admin_reply *r) {
  config_q q = {.path = path ? path : ""};
  int rc = rc__call_on_loop(a->eng, do_config, &q);
  if (rc == RC_ENOTFOUND) {
    admin_error(r, 404, "no value at '%s'", q.path);
    return;
  }
  if (rc) {
    not_running(r, rc);
    return;
  }
  rc__buf b;
  rc__buf_init(&b);
  rc__json_write(&b, q.value, true, false);
  rc__value_unref(q.value);
  admin_json(r, &b);
}

/* ---- /history ---- */

static void revision_json(rc__buf *b, const rc__revision *rv) {
  rc__buf_printf(b, "{\"revision\":%llu,\"time\":", (unsigned long long)rv->snap->revision);
  rfc3339(b, rv->snap->time_ns);
  rc__buf_printf(b, ",\"time_ns\":%lld,\"trigger\":", (long long)rv->snap->time_ns);
  rc__json_write_string(b, rv->trigger, strlen(rv->trigger));
  rc__buf_printf(b, ",\"changes\":%zu,\"reload_id\":%llu}", rv->changes,
                 (unsigned long long)rv->reload_id);
}

/* The ring is small (policy key `history`), so its JSON is written on the loop. */
static int do_history(rc_engine_t *eng, void *arg) {
  rc__buf *b = arg;
  rc__buf_printf(b, "{\"current\":%llu,\"pinned\":%s,\"kept\":%zu,\"revisions\":[",
                 (unsigned long long)rc_engine_revision(eng),
                 rc_engine_pinned(eng) ? "true" : "false", eng->hist_cap);
  for (size_t i = 0; i < eng->hist_n; i++) {
    if (i) rc__buf_addc(b, ',');
    revision_json(b, &eng->hist[(eng->hist_head + i) % eng->hist_cap]);
  }
  rc__buf_adds(b, "]}");
  return 0;
}

void admin_query_history(rc_admin_t *a, admin_reply *r) {
  rc__buf b;
  rc__buf_init(&b);
  int rc = rc__call_on_loop(a->eng, do_history, &b);
  if (rc) {
    rc__buf_free(&b);
    not_running(r, rc);
    return;
  }
  admin_json(r, &b);
}

/* ---- /diff ---- */

typedef struct diff_q {
  uint64_t from, to, missing;
  rc__buf *out;
} diff_q;

/* Revision `rev`: one of the history, or the current one. Borrowed (the current one
 * holds one reference the caller drops through *cur). */
static const struct rc_snapshot *find_revision(rc_engine_t *eng, uint64_t rev,
                                               rc_snapshot_t **cur) {
  const rc__revision *h = rc__history_find(eng, rev);
  if (h) return h->snap;
  rc_snapshot_t *s = rc_snapshot_acquire(eng);
  if (s && rc_snapshot_revision(s) == rev) {
    *cur = s;
    return s;
  }
  rc_snapshot_release(s);
  return NULL;
}

/* A change's value with its secret parts redacted. */
static void change_value(rc__buf *b, rc_engine_t *eng, const rc_change_t *ch,
                         const rc_value_t *v) {
  if (!v) {
    rc__buf_adds(b, "null");
    return;
  }
  rc_value_t *red = ch->secret ? rc__redact(eng, ch->path, v) : NULL;
  if (ch->secret && !red) {
    b->oom = 1;
    return;
  }
  rc__json_write(b, red ? red : v, false, false);
  rc__value_unref(red);
}

/* Diffs are usually small next to the configuration (shared subtrees are skipped
 * without a walk), and the redaction needs the loop's secret paths: written here. */
static int do_diff(rc_engine_t *eng, void *arg) {
  diff_q *q = arg;
  rc_snapshot_t *cur_a = NULL, *cur_b = NULL;
  const struct rc_snapshot *sa = find_revision(eng, q->from, &cur_a);
  const struct rc_snapshot *sb = find_revision(eng, q->to, &cur_b);
  if (!sa || !sb) {
    q->missing = sa ? q->to : q->from;
    rc_snapshot_release(cur_a);
    rc_snapshot_release(cur_b);
    return RC_ENOTFOUND;
  }
  rc__changeset cs;
  rc__changeset_init(&cs);
  int rc = rc__diff(sa->root, sb->root, "", &cs);
  if (!rc) {
    rc__diff_finish(&cs);
    rc__buf *b = q->out;
    rc__buf_printf(b, "{\"from\":%llu,\"to\":%llu,\"changes\":[",
                   (unsigned long long)q->from, (unsigned long long)q->to);
    for (size_t i = 0; i < cs.n; i++) {
      rc_change_t *ch = &cs.items[i];
      ch->secret = rc__path_is_secret(eng, ch->path);
      rc__buf_adds(b, i ? ",{\"path\":" : "{\"path\":");
      rc__json_write_string(b, ch->path, strlen(ch->path));
      rc__buf_printf(b, ",\"kind\":\"%s\",\"old\":", rc_change_kind_name(ch->kind));
      change_value(b, eng, ch, ch->old_value);
      rc__buf_adds(b, ",\"new\":");
      change_value(b, eng, ch, ch->new_value);
      if (ch->secret) rc__buf_adds(b, ",\"secret\":true");
      rc__buf_addc(b, '}');
    }
    rc__buf_adds(b, "]}");
  }
  rc__changeset_free(&cs);
  rc_snapshot_release(cur_a);
  rc_snapshot_release(cur_b);
  return rc;
}

void admin_query_diff(rc_admin_t *a, uint64_t from, uint64_t to, admin_reply *r) {
  rc__buf b;
  rc__buf_init(&b);
  diff_q q = {.from = from, .to = to, .out = &b};
  int rc = rc__call_on_loop(a->eng, do_diff, &q);
  if (rc == RC_ENOTFOUND) {
    rc__buf_free(&b);
    admin_error(r, 404, "revision %llu is neither kept (policy key `history`) nor current",
                (unsigned long long)q.missing);
    return;
  }
  if (rc) {
    rc__buf_free(&b);
    not_running(r, rc);
    return;
  }
  admin_json(r, &b);
}

/* ---- /readyz, /healthz ---- */

/* "Must wait": startup "wait" or "fail" (the modes that hold start for a first value).
 * An inactive component (its condition does not hold) waits for nothing. */
static int do_ready(rc_engine_t *eng, void *arg) {
  rc__buf *why = arg;
  int waiting = 0;
  for (size_t i = 0; i < eng->ncomps; i++) {
    const rc__component *c = eng->comps[i];
    if (c->startup != RC__START_WAIT && c->startup != RC__START_FAIL) continue;
    if (!c->active || rc__component_value(c)) continue;
    rc__buf_printf(why, "%scomponent '%s' has no value yet (startup = \"%s\")",
                   waiting++ ? "; " : "", c->name,
                   c->startup == RC__START_WAIT ? "wait" : "fail");
  }
  return waiting ? RC_EPENDING : 0;
}

void admin_query_ready(rc_admin_t *a, admin_reply *r) {
  rc__buf why;
  rc__buf_init(&why);
  int rc = rc__call_on_loop(a->eng, do_ready, &why);
  if (rc == RC_EPENDING)
    admin_error(r, 503, "not ready: %s", why.oom ? "out of memory" : why.p);
  else if (rc)
    not_running(r, rc);
  else {
    rc__buf b;
    rc__buf_init(&b);
    rc__buf_printf(&b, "{\"ready\":true,\"revision\":%llu}",
                   (unsigned long long)rc_engine_revision(a->eng));
    admin_json(r, &b);
  }
  rc__buf_free(&why);
}

static int do_nothing(rc_engine_t *eng, void *arg) {
  RC__UNUSED(eng);
  RC__UNUSED(arg);
  return 0;
}

bool admin_query_alive(rc_admin_t *a) {
  return rc__call_on_loop(a->eng, do_nothing, NULL) == 0;
}
