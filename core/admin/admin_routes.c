/* SPDX-License-Identifier: MIT (see LICENSE) */
/* admin_routes.c: what each admin endpoint answers, on the connection's thread. Reads go
 * through the engine's thread-safe API or admin_query.c; POSTs through rc_engine_reload,
 * rc_engine_rollback and rc_engine_unpin, as an application thread would call them.
 * Every answer is JSON except /metrics (Prometheus text) and /events (SSE). */
#include "admin.h"

#include <errno.h>
#include <microhttpd.h>
#include <stdlib.h>
#include <string.h>

static const char *arg(struct MHD_Connection *c, const char *name) {
  return MHD_lookup_connection_value(c, MHD_GET_ARGUMENT_KIND, name);
}

/* A revision number argument: > 0, digits only. */
static bool revision_arg(struct MHD_Connection *c, const char *name, uint64_t *out) {
  const char *s = arg(c, name);
  if (!s || !*s || strspn(s, "0123456789") != strlen(s)) return false;
  errno = 0;
  unsigned long long v = strtoull(s, NULL, 10);
  if (errno || v == 0) return false;
  *out = v;
  return true;
}

/* ---- reads ---- */

/* The engine's own texts (rc_engine_metrics_text, rc_engine_status_json): any thread,
 * no call on the loop. */
static void owned_text(admin_reply *r, char *text, const char *type) {
  if (!text) {
    admin_error(r, 500, "out of memory");
    return;
  }
  r->status = 200;
  r->type = type;
  r->len = strlen(text);
  r->body = text;
}

static void metrics(rc_admin_t *a, admin_reply *r) {
  owned_text(r, rc_engine_metrics_text(a->eng), "text/plain; version=0.0.4; charset=utf-8");
}

static void status(rc_admin_t *a, admin_reply *r) {
  owned_text(r, rc_engine_status_json(a->eng), "application/json");
}

/* GET /explain?revision=N: the decisions behind a revision, when the engine keeps them
 * (rc_engine_trace). */
static void explain(rc_admin_t *a, struct MHD_Connection *c, admin_reply *r) {
  uint64_t rev;
  if (!revision_arg(c, "revision", &rev)) {
    admin_error(r, 400, "explain needs ?revision=N (a revision number)");
    return;
  }
  char *text = rc_engine_explain_json(a->eng, rev);
  if (!text) {
    admin_error(r, 404, "no decisions kept for revision %llu (the engine keeps those of "
                "the last revisions only when tracing: rc_engine_trace)",
                (unsigned long long)rev);
    return;
  }
  owned_text(r, text, "application/json");
}

/* ---- changes ---- */

/* POST /reload[?component=a,b]: the names are split at commas into one block. */
static void reload(rc_admin_t *a, struct MHD_Connection *c, admin_reply *r) {
  const char *list = arg(c, "component");
  char *copy = list && *list ? rc__strdup(list) : NULL;
  const char *names[64];
  size_t n = 0;
  if (list && *list && !copy) {
    admin_error(r, 500, "out of memory");
    return;
  }
  for (char *save = NULL, *t = copy ? strtok_r(copy, ",", &save) : NULL; t;
       t = strtok_r(NULL, ",", &save)) {
    if (n == sizeof names / sizeof *names) {
      rc__free(copy);
      admin_error(r, 400, "at most 64 components per reload");
      return;
    }
    names[n++] = t;
  }
  int rc = rc_engine_reload(a->eng, n ? names : NULL, n);
  if (rc == RC_ENOTFOUND)
    admin_error(r, 404, "no such component in '%s'", list);
  else if (rc == RC_ESTATE)
    admin_error(r, 503, "the engine is not running");
  else if (rc)
    admin_error(r, 500, "%s", rc_strerror(rc));
  else {
    rc__buf b;
    rc__buf_init(&b);
    rc__buf_adds(&b, "{\"reload\":\"requested\",\"components\":[");
    for (size_t i = 0; i < n; i++) {
      if (i) rc__buf_addc(&b, ',');
      rc__json_write_string(&b, names[i], strlen(names[i]));
    }
    rc__buf_adds(&b, "]}");
    admin_json(r, &b);
  }
  rc__free(copy);
}

static void rollback(rc_admin_t *a, struct MHD_Connection *c, admin_reply *r) {
  uint64_t rev;
  if (!revision_arg(c, "revision", &rev)) {
    admin_error(r, 400, "rollback needs ?revision=N (a revision number)");
    return;
  }
  rc_error err = {0};
  int rc = rc_engine_rollback(a->eng, rev, &err);
  const char *msg = err.message[0] ? err.message : rc_strerror(rc);
  switch (rc) {
    case 0: case RC_EPENDING: {
      rc__buf b;
      rc__buf_init(&b);
      rc__buf_printf(&b, "{\"rollback\":%llu,\"state\":\"%s\",\"revision\":%llu,"
                     "\"pinned\":%s}", (unsigned long long)rev,
                     rc ? "pending" : "done",
                     (unsigned long long)rc_engine_revision(a->eng),
                     rc_engine_pinned(a->eng) ? "true" : "false");
      admin_json(r, &b);
      if (rc) r->status = 202;
      break;
    }
    case RC_ENOTFOUND: admin_error(r, 404, "%s", msg); break;
    case RC_EREFUSED: admin_error(r, 409, "%s", msg); break;
    case RC_ESTATE: admin_error(r, 409, "%s", msg); break;
    default: admin_error(r, 500, "%s", msg); break;
  }
}

static void unpin(rc_admin_t *a, admin_reply *r) {
  int rc = rc_engine_unpin(a->eng);
  if (rc == RC_ESTATE) {
    admin_error(r, 503, "the engine is not running");
    return;
  }
  if (rc) {
    admin_error(r, 500, "%s", rc_strerror(rc));
    return;
  }
  rc__buf b;
  rc__buf_init(&b);
  rc__buf_printf(&b, "{\"pinned\":false,\"revision\":%llu}",
                 (unsigned long long)rc_engine_revision(a->eng));
  admin_json(r, &b);
}

/* ---- the table ---- */

typedef enum { GET, POST } verb;

bool admin_route(rc_admin_t *a, struct MHD_Connection *c, const char *method,
                 const char *url, admin_reply *r) {
  verb v = strcmp(method, "POST") == 0 ? POST : GET;
  static const struct { const char *path; verb v; } table[] = {
    {"/metrics", GET}, {"/healthz", GET}, {"/readyz", GET}, {"/status", GET},
    {"/config", GET}, {"/history", GET}, {"/diff", GET}, {"/explain", GET},
    {"/events", GET},
    {"/reload", POST}, {"/rollback", POST}, {"/unpin", POST},
  };
  size_t i = 0, n = sizeof table / sizeof *table;
  while (i < n && strcmp(table[i].path, url) != 0) i++;
  if (i == n) {
    admin_error(r, 404, "no endpoint %s (see docs/OPERATIONS.md)", url);
    return true;
  }
  if (table[i].v != v) {
    admin_error(r, 405, "%s takes %s", url, table[i].v == GET ? "GET" : "POST");
    return true;
  }
  if (!strcmp(url, "/events")) {
    if (admin_events_respond(a, c) == MHD_YES) return false;
    admin_error(r, 500, "cannot open the stream");
    return true;
  }
  if (!admin_enter(a)) {
    admin_error(r, 503, "the admin endpoint is stopping");
    return true;
  }
  if (!strcmp(url, "/metrics")) {
    metrics(a, r);
  } else if (!strcmp(url, "/healthz")) {
    if (admin_query_alive(a)) {
      r->status = 200;
      r->type = "text/plain";
      r->body = rc__strdup("ok\n");
      r->len = r->body ? 3 : 0;
    } else {
      admin_error(r, 503, "the engine is not running");
    }
  } else if (!strcmp(url, "/readyz")) {
    admin_query_ready(a, r);
  } else if (!strcmp(url, "/status")) {
    status(a, r);
  } else if (!strcmp(url, "/config")) {
    admin_query_config(a, arg(c, "path"), r);
  } else if (!strcmp(url, "/history")) {
    admin_query_history(a, r);
  } else if (!strcmp(url, "/diff")) {
    uint64_t from, to;
    if (revision_arg(c, "from", &from) && revision_arg(c, "to", &to))
      admin_query_diff(a, from, to, r);
    else
      admin_error(r, 400, "diff needs ?from=N&to=M (revision numbers)");
  } else if (!strcmp(url, "/explain")) {
    explain(a, c, r);
  } else if (!strcmp(url, "/reload")) {
    reload(a, c, r);
  } else if (!strcmp(url, "/rollback")) {
    rollback(a, c, r);
  } else if (!strcmp(url, "/unpin")) {
    unpin(a, r);
  }
  admin_leave(a);
  return true;
}
