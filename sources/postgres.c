/* SPDX-License-Identifier: MIT (see LICENSE) */
/* postgres.c: the PostgreSQL source. A query's result is the component's value
 * (pg_values.c: two columns named key and value become a table, any other shape an
 * array of rows); it runs again on every NOTIFY of the channel the source LISTENs on
 * (notifications that arrive together, or while it runs, make one more run) and every
 * `interval` besides, the fallback for whatever LISTEN misses.
 * libpq drives the protocol without ever blocking the loop: host names are resolved on
 * the thread pool (uv_getaddrinfo) and handed to libpq as `hostaddr` (libpq would call
 * getaddrinfo itself, blocking), the connection is made with PQconnectStartParams +
 * PQconnectPoll, statements go out with PQsendQuery / PQsendQueryParams (the query in
 * single-row mode, so a result over max_bytes is dropped row by row rather than held),
 * and libpq's socket is watched by a uv_poll_t. libpq may close its socket and open
 * another, with the same number, while connecting: each connect step gets a new handle,
 * the old one closed before the step. Once connected, libpq closes its socket only when
 * the connection is lost: the handle is closed then, before the loop runs again, so
 * libuv never holds a change for a closed descriptor.
 * Each connection sets up its session (statement_timeout from `timeout`, DateStyle ISO,
 * TimeZone UTC, extra_float_digits 3, IntervalStyle iso_8601: the texts pg_values.c
 * reads; default_transaction_read_only: the source never writes), then LISTENs, then
 * runs the query. That order means no change is missed across a reconnect: the run
 * after LISTEN sees everything committed before it, and anything later notifies.
 * Failures keep the last value (an error event) and retry on the backoff: a failed
 * connection (refused, a wrong password, lost, a server shutting down) is made again; a
 * failed query (an SQL error, the statement timeout) runs again on the same connection.
 * A query with no answer within twice `timeout` (a server that stopped answering)
 * drops the connection. The connection string (conninfo_env, conninfo_file, or an inline
 * `conninfo` without a password) is a secret: messages name user@host:port/db only, and
 * a password is cut out of any message libpq or the server writes. */
#include "pg_values.h"
#include "remote.h"

#include <arpa/inet.h>
#include <libpq-fe.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Longest NOTICE kept, for the message when the server then closes the connection. */
#define PG_NOTICE_MAX 300

typedef enum pg_phase {
  PG_DOWN,        /* no connection: the timer's next tick makes one */
  PG_RESOLVING,   /* host names on the thread pool */
  PG_CONNECTING,  /* PQconnectPoll steps */
  PG_SETUP,       /* the session's SETs */
  PG_LISTEN,      /* LISTEN */
  PG_IDLE,        /* connected (and listening): waiting for a NOTIFY or the interval */
  PG_QUERY,       /* the query runs */
} pg_phase;

struct pg_source;

/* The poll handle on libpq's socket. Allocated apart: its memory is freed in its close
 * callback, which may run after the source is gone. */
typedef struct pg_io {
  uv_poll_t poll;
  rc__host *host;
  struct pg_source *s;  /* NULL once closing */
  int fd;
  int events;           /* UV_READABLE | UV_WRITABLE it waits for now; 0: stopped */
} pg_io;

/* The deadline of a connection attempt or a query. Allocated apart, like pg_io. */
typedef struct pg_deadline {
  uv_timer_t timer;
  rc__host *host;
  struct pg_source *s;  /* NULL once closing */
} pg_deadline;

/* A host name being resolved on the thread pool. Counted as an open handle until its
 * callback has run (also when cancelled); `s` is NULL once the source gave up on it. */
typedef struct pg_resolve {
  uv_getaddrinfo_t req;
  rc__host *host;
  struct pg_source *s;
} pg_resolve;

typedef struct pg_source {
  rc__remote r;
  /* Options (borrowed from the description, or owned where said). */
  const char *query, *listen;
  const char *conninfo_inline, *conninfo_env;
  rc__token conninfo_file;     /* the file's text (a secret), re-read when it changes */
  char **params;               /* owned; NULL-terminated */
  size_t nparams;
  uint64_t interval_ms;
  /* The connection. */
  pg_phase phase;
  PGconn *conn;
  pg_io *io;
  pg_deadline *deadline;
  bool listening;              /* LISTEN works on this connection */
  bool listen_failed;          /* LISTEN failed (told once, until it works again) */
  uint64_t query_started_ns;   /* when the query in flight was sent (fetch-time metric) */
  bool want_query;             /* a NOTIFY or a rescan came while busy: run once more */
  bool flushing;               /* PQflush has more to send */
  bool have_digest;
  uint8_t conninfo_digest[16]; /* of the connection string in use (env_changed) */
  char *shown;                 /* "postgres://user@host:port/db": names it in messages */
  char *password;              /* cut out of messages (owned, wiped) */
  char notice[PG_NOTICE_MAX];  /* the server's last NOTICE or asynchronous error */
  /* Connecting: the parsed connection string and the host names to resolve first. */
  PQconninfoOption *opts;
  char **hosts, **addrs;       /* the host list, split; each one's addresses, "a,b" ("":
                                  not resolved here, "!": could not be) */
  size_t nhosts, next_host;
  pg_resolve *resolve;
  rc_error resolve_err;        /* the first host that could not be resolved */
  /* The query's result, built row by row. */
  rc__pg_result res;
  bool res_begun;
  rc_error res_err;            /* the first failure of this run (code 0: none) */
  /* A statement's failure (SETUP, LISTEN). */
  rc_error stmt_err;
} pg_source;

static void tick(rc__remote *r);
static void on_io(uv_poll_t *h, int status, int events);
static void run_query(pg_source *s);

/* ===================================================================================
 * Messages without secrets
 * =================================================================================== */

/* Replaces every occurrence of the password in `msg` by "<redacted>" (in place, cut to
 * the buffer). libpq and the server do not echo passwords; this is for the day one does.
 * Passwords shorter than 4 bytes are left alone: cutting them would garble messages. */
static void redact(const pg_source *s, char *msg, size_t cap) {
  if (!s->password || strlen(s->password) < 4) return;
  size_t plen = strlen(s->password);
  char out[600];
  size_t o = 0;
  for (const char *p = msg; *p && o + 11 < sizeof out;) {
    if (!strncmp(p, s->password, plen)) {
      memcpy(out + o, "<redacted>", 10);
      o += 10;
      p += plen;
    } else {
      out[o++] = *p++;
    }
  }
  if (o >= cap) o = cap - 1;
  memcpy(msg, out, o);
  msg[o] = '\0';
}

/* libpq's multi-line messages on one line: "a\nb\n" -> "a; b". */
static void one_line(char *m) {
  size_t n = strlen(m);
  while (n && (m[n - 1] == '\n' || m[n - 1] == ' ')) m[--n] = '\0';
  for (char *p = m; *p; p++) {
    if (*p == '\n') *p = ';';
    if (*p == '\t') *p = ' ';
  }
}

/* Fills `e` (RC_EIO at the connection's name) with "<what>: <libpq's message>". */
static void conn_error(pg_source *s, rc_error *e, const char *what, const char *libpq) {
  char m[512];
  snprintf(m, sizeof m, "%s", libpq && *libpq ? libpq : "no reason given");
  one_line(m);
  rc__err(e, RC_EIO, s->shown ? s->shown : "postgres", 0, 0, "%s: %s", what, m);
  if (s->notice[0] && !strstr(e->message, s->notice)) {
    size_t n = strlen(e->message);
    snprintf(e->message + n, sizeof e->message - n, " (the server said: %s)", s->notice);
  }
  redact(s, e->message, sizeof e->message);
}

/* An error result as "<primary message> (SQLSTATE xxxxx)". */
static void result_error(pg_source *s, rc_error *e, const char *what, const PGresult *res) {
  const char *primary = PQresultErrorField(res, PG_DIAG_MESSAGE_PRIMARY);
  const char *state = PQresultErrorField(res, PG_DIAG_SQLSTATE);
  char m[400];
  snprintf(m, sizeof m, "%s", primary ? primary : PQresultErrorMessage(res));
  one_line(m);
  rc__err(e, RC_EIO, s->shown ? s->shown : "postgres", 0, 0, "%s: %s%s%s%s", what, m,
          state ? " (SQLSTATE " : "", state ? state : "", state ? ")" : "");
  redact(s, e->message, sizeof e->message);
}

/* Notices and errors the server sends outside a query (RAISE NOTICE, "terminating
 * connection due to administrator command"): kept for the next message, never printed
 * (libpq's default writes them to stderr). */
static void on_notice(void *ud, const char *message) {
  pg_source *s = ud;
  snprintf(s->notice, sizeof s->notice, "%s", message);
  one_line(s->notice);
  redact(s, s->notice, sizeof s->notice);
}

/* ===================================================================================
 * Handles: the socket's poll handle and the deadline timer
 * =================================================================================== */

static void io_closed(uv_handle_t *h) {
  pg_io *io = h->data;
  rc__host_handle_closed(io->host);
  rc__free(io);
}

/* Stops watching now (before libpq may close the descriptor) and closes the handle. */
static void io_close(pg_source *s) {
  pg_io *io = s->io;
  if (!io) return;
  s->io = NULL;
  io->s = NULL;
  uv_poll_stop(&io->poll);
  uv_close((uv_handle_t *)&io->poll, io_closed);
}

/* Watches libpq's current socket for `events`, on a new handle when the socket is not
 * the one watched. False (the connection is then unusable) when there is no socket or
 * libuv refuses it. */
static bool watch(pg_source *s, int events, rc_error *e) {
  int fd = s->conn ? PQsocket(s->conn) : -1;
  if (s->io && s->io->fd != fd) io_close(s);
  if (fd < 0) {
    conn_error(s, e, "connection lost", s->conn ? PQerrorMessage(s->conn) : NULL);
    return false;
  }
  if (!s->io) {
    pg_io *io = rc__calloc(1, sizeof *io);
    if (!io) {
      rc__err(e, RC_ENOMEM, s->shown, 0, 0, "out of memory");
      return false;
    }
    int rc = uv_poll_init_socket(rc__src_loop(s->r.ctx), &io->poll, fd);
    if (rc) {
      rc__free(io);
      rc__err(e, RC_ESYS, s->shown, 0, 0, "uv_poll_init: %s", uv_strerror(rc));
      return false;
    }
    io->host = rc__src_host(s->r.ctx);
    io->s = s;
    io->fd = fd;
    io->poll.data = io;
    rc__host_handle_opened(io->host);
    s->io = io;
  }
  if (s->io->events != events) {
    int rc = uv_poll_start(&s->io->poll, events, on_io);
    if (rc) {
      rc__err(e, RC_ESYS, s->shown, 0, 0, "uv_poll_start: %s", uv_strerror(rc));
      return false;
    }
    s->io->events = events;
  }
  return true;
}

static void deadline_closed(uv_handle_t *h) {
  pg_deadline *d = h->data;
  rc__host_handle_closed(d->host);
  rc__free(d);
}

static void on_deadline(uv_timer_t *t);

static int deadline_open(pg_source *s, rc_error *err) {
  pg_deadline *d = rc__calloc(1, sizeof *d);
  if (!d) return rc__err(err, RC_ENOMEM, NULL, 0, 0, "out of memory");
  int rc = uv_timer_init(rc__src_loop(s->r.ctx), &d->timer);
  if (rc) {
    rc__free(d);
    return rc__err(err, RC_ESYS, NULL, 0, 0, "uv_timer_init: %s", uv_strerror(rc));
  }
  d->host = rc__src_host(s->r.ctx);
  d->s = s;
  d->timer.data = d;
  rc__host_handle_opened(d->host);
  s->deadline = d;
  return 0;
}

static void deadline_arm(pg_source *s, uint64_t ms) {
  if (s->deadline) uv_timer_start(&s->deadline->timer, on_deadline, ms, 0);
}

static void deadline_disarm(pg_source *s) {
  if (s->deadline) uv_timer_stop(&s->deadline->timer);
}

/* ===================================================================================
 * Connection lifecycle
 * =================================================================================== */

static void free_list(char **list, size_t n) {
  for (size_t i = 0; list && i < n; i++) rc__free(list[i]);
  rc__free(list);
}

/* Forgets the parsed connection string (wiping its password) and the resolution. */
static void connect_state_free(pg_source *s) {
  if (s->resolve) {
    s->resolve->s = NULL;
    uv_cancel((uv_req_t *)&s->resolve->req);  /* its callback still runs and frees it */
    s->resolve = NULL;
  }
  if (s->opts) {
    for (PQconninfoOption *o = s->opts; o->keyword; o++)
      if (o->val && !strcmp(o->keyword, "password")) explicit_bzero(o->val, strlen(o->val));
    PQconninfoFree(s->opts);
    s->opts = NULL;
  }
  free_list(s->hosts, s->nhosts);
  free_list(s->addrs, s->nhosts);
  s->hosts = s->addrs = NULL;
  s->nhosts = s->next_host = 0;
  s->resolve_err.code = 0;
}

/* Drops the connection, whatever its phase: the poll handle first (libpq closes the
 * socket in PQfinish), then libpq's state, then the half-built result. */
static void close_conn(pg_source *s) {
  io_close(s);
  deadline_disarm(s);
  connect_state_free(s);
  if (s->conn) {
    PQfinish(s->conn);
    s->conn = NULL;
  }
  if (s->res_begun) rc__pg_result_abort(&s->res);
  s->res_begun = false;
  s->phase = PG_DOWN;
  s->listening = false;
  s->flushing = false;
  s->notice[0] = '\0';
}

/* A failure of the connection: drop it, report, and connect again after the backoff. */
static void conn_failed(pg_source *s, const rc_error *e) {
  close_conn(s);
  rc__remote_fail(&s->r, e, 0);
}

/* A statement could not be sent: the connection is broken. */
static void send_failed(pg_source *s, const char *what) {
  rc_error e = {0};
  conn_error(s, &e, what, PQerrorMessage(s->conn));
  conn_failed(s, &e);
}

/* Sends what libpq holds; while it cannot send everything, waits for writable too. */
static bool flush(pg_source *s) {
  int f = PQflush(s->conn);
  rc_error e = {0};
  if (f < 0) {
    send_failed(s, "cannot send");
    return false;
  }
  s->flushing = f == 1;
  if (!watch(s, UV_READABLE | (s->flushing ? UV_WRITABLE : 0), &e)) {
    conn_failed(s, &e);
    return false;
  }
  return true;
}

/* The session the readers of pg_values.c expect, and the statement timeout. */
static void send_setup(pg_source *s) {
  char sql[400];
  snprintf(sql, sizeof sql,
           "SET statement_timeout = %u; SET DateStyle = 'ISO, YMD'; SET TimeZone = 'UTC'; "
           "SET IntervalStyle = 'iso_8601'; SET extra_float_digits = 3; "
           "SET default_transaction_read_only = on",
           (unsigned)(s->r.timeout_ms ? s->r.timeout_ms : 1));
  s->stmt_err.code = 0;
  s->phase = PG_SETUP;
  if (!PQsendQuery(s->conn, sql)) {
    send_failed(s, "cannot set up the session");
    return;
  }
  flush(s);
}

static void send_listen(pg_source *s) {
  char *id = PQescapeIdentifier(s->conn, s->listen, strlen(s->listen));
  if (!id) {
    send_failed(s, "cannot quote the channel name");
    return;
  }
  rc__buf sql;
  rc__buf_init(&sql);
  rc__buf_adds(&sql, "LISTEN ");
  rc__buf_adds(&sql, id);
  PQfreemem(id);
  if (sql.oom) {
    rc__buf_free(&sql);
    rc_error e = {0};
    rc__err(&e, RC_ENOMEM, s->shown, 0, 0, "out of memory");
    conn_failed(s, &e);
    return;
  }
  s->stmt_err.code = 0;
  s->phase = PG_LISTEN;
  int ok = PQsendQuery(s->conn, sql.p);
  rc__buf_free(&sql);
  if (!ok) {
    send_failed(s, "cannot send LISTEN");
    return;
  }
  flush(s);
}

/* Connected (and listening, when it could): the query runs at once, since anything
 * may have changed while there was no connection. */
static void ready(pg_source *s) {
  deadline_disarm(s);
  s->phase = PG_IDLE;
  run_query(s);
}

/* One PQconnectPoll step; the socket it leaves is watched for what it asks, by a new
 * handle each step. A step that gives up on one address closes that socket and opens
 * the next address's, which the kernel usually numbers the same: a handle kept across
 * the step would watch a descriptor number whose registration died with the old socket
 * (libuv then fails on it, or waits for ever). Closing first also keeps the rule that a
 * descriptor libpq may close is never watched. */
static void connect_step(pg_source *s) {
  io_close(s);
  PostgresPollingStatusType st = PQconnectPoll(s->conn);
  rc_error e = {0};
  switch (st) {
  case PGRES_POLLING_READING:
    if (!watch(s, UV_READABLE, &e)) conn_failed(s, &e);
    return;
  case PGRES_POLLING_WRITING:
    if (!watch(s, UV_WRITABLE, &e)) conn_failed(s, &e);
    return;
  case PGRES_POLLING_OK:
    if (PQsetnonblocking(s->conn, 1) != 0) {
      send_failed(s, "cannot make the connection non-blocking");
      return;
    }
    send_setup(s);
    return;
  default:
    io_close(s);  /* libpq may have closed the socket already */
    conn_error(s, &e, "cannot connect", PQerrorMessage(s->conn));
    conn_failed(s, &e);
    return;
  }
}

/* Option `key` of the parsed connection string, or NULL. */
static const char *opt_val(const PQconninfoOption *opts, const char *key) {
  for (const PQconninfoOption *o = opts; o->keyword; o++)
    if (!strcmp(o->keyword, key)) return o->val;
  return NULL;
}

/* Splits "a,b,c" (libpq's host list) into copies. */
static char **split(const char *list, size_t *n) {
  size_t count = 1;
  for (const char *p = list; *p; p++) count += *p == ',';
  char **out = rc__calloc(count, sizeof *out);
  if (!out) return NULL;
  const char *p = list;
  for (size_t i = 0; i < count; i++) {
    size_t len = strcspn(p, ",");
    out[i] = rc__strndup(p, len);
    if (!out[i]) {
      free_list(out, count);
      return NULL;
    }
    p += len + (p[len] == ',');
  }
  *n = count;
  return out;
}

/* "postgres://user@host:port/db" from the parsed connection string (no password). */
static char *shown_name(const PQconninfoOption *opts) {
  const char *user = opt_val(opts, "user"), *host = opt_val(opts, "host");
  const char *port = opt_val(opts, "port"), *db = opt_val(opts, "dbname");
  rc__buf b;
  rc__buf_init(&b);
  rc__buf_adds(&b, "postgres://");
  if (user) rc__buf_printf(&b, "%s@", user);
  rc__buf_adds(&b, host ? host : (host = getenv("PGHOST")) ? host : "");
  if (port) rc__buf_printf(&b, ":%s", port);
  rc__buf_printf(&b, "/%s", db ? db : "");
  char *out = b.oom ? NULL : rc__buf_take(&b);
  rc__buf_free(&b);
  return out;
}

/* core/base's settings for a peer gone without a word, as libpq's options. */
static const struct {
  const char *key, *val;
} PG_DEAD_PEER[] = {
    {"keepalives", "1"},
    {"keepalives_idle", RC__XSTR(RC__TCP_IDLE_S)},
    {"keepalives_interval", RC__XSTR(RC__TCP_INTVL_S)},
    {"keepalives_count", RC__XSTR(RC__TCP_PROBES)},
    {"tcp_user_timeout", RC__XSTR(RC__TCP_USER_TIMEOUT_MS)},
};

/* The first connect step, once every host name has an address. */
static void connect_libpq(pg_source *s) {
  size_t n = 0;
  for (PQconninfoOption *o = s->opts; o->keyword; o++) n++;
  size_t room = n + 6 + sizeof PG_DEAD_PEER / sizeof *PG_DEAD_PEER;
  const char **kw = rc__calloc(room, sizeof *kw), **val = rc__calloc(room, sizeof *val);
  rc__buf addrs;
  rc__buf_init(&addrs);
  rc_error e = {0};
  if (!kw || !val) {
    rc__free(kw);
    rc__free(val);
    rc__err(&e, RC_ENOMEM, s->shown, 0, 0, "out of memory");
    conn_failed(s, &e);
    return;
  }
  /* Each resolved name becomes as many list items as it has addresses (host, hostaddr
   * and a port list alike), so libpq still tries every address in turn as it would
   * have. A name from PGHOST is passed as `host` too: hostaddr pairs with the host list
   * item by item. */
  bool resolved = false, any = s->nhosts == 0;
  for (size_t i = 0; i < s->nhosts; i++) {
    resolved = resolved || s->addrs[i][0];
    any = any || s->addrs[i][0] != '!';
  }
  if (!any) {
    rc__free(kw);
    rc__free(val);
    e = s->resolve_err;
    conn_failed(s, &e);
    return;
  }
  const char *port = opt_val(s->opts, "port");
  size_t nports = 0;
  char **ports = port && strchr(port, ',') ? split(port, &nports) : NULL;
  if (nports != s->nhosts) {
    free_list(ports, nports);
    ports = NULL;
  }
  rc__buf hosts, plist;
  rc__buf_init(&hosts);
  rc__buf_init(&plist);
  size_t items = 0;
  for (size_t i = 0; resolved && i < s->nhosts; i++) {
    const char *a = s->addrs[i];
    if (*a == '!') continue;  /* not resolved: left out */
    do {
      size_t len = strcspn(a, ",");
      if (items++) {
        rc__buf_addc(&addrs, ',');
        rc__buf_addc(&hosts, ',');
        if (ports) rc__buf_addc(&plist, ',');
      }
      rc__buf_add(&addrs, a, len);
      rc__buf_adds(&hosts, s->hosts[i]);
      if (ports) rc__buf_adds(&plist, ports[i]);
      a += len + (a[len] == ',');
    } while (*a);
  }
  free_list(ports, nports);
  size_t k = 0;
  bool encoding = false;
  for (PQconninfoOption *o = s->opts; o->keyword; o++) {
    if (!o->val) continue;
    if (resolved && (!strcmp(o->keyword, "host") || !strcmp(o->keyword, "hostaddr") ||
                     (plist.n && !strcmp(o->keyword, "port"))))
      continue;
    encoding = encoding || !strcmp(o->keyword, "client_encoding");
    kw[k] = o->keyword;
    val[k++] = o->val;
  }
  if (resolved) {
    kw[k] = "host";
    val[k++] = hosts.p;
    kw[k] = "hostaddr";
    val[k++] = addrs.p;
  }
  if (plist.n) {
    kw[k] = "port";
    val[k++] = plist.p;
  }
  if (!encoding) {
    kw[k] = "client_encoding";
    val[k++] = "UTF8";
  }
  kw[k] = "fallback_application_name";
  val[k++] = "reactcfg";
  /* A server gone without a word is noticed in seconds, unless the connection string
   * says otherwise (libpq ignores these on a unix socket). */
  for (size_t i = 0; i < sizeof PG_DEAD_PEER / sizeof *PG_DEAD_PEER; i++) {
    if (opt_val(s->opts, PG_DEAD_PEER[i].key)) continue;
    kw[k] = PG_DEAD_PEER[i].key;
    val[k++] = PG_DEAD_PEER[i].val;
  }
  kw[k] = NULL;
  val[k] = NULL;
  bool oom = addrs.oom || hosts.oom || plist.oom;
  s->conn = oom ? NULL : PQconnectStartParams(kw, val, 0);
  rc__free(kw);
  rc__free(val);
  rc__buf_free(&addrs);
  rc__buf_free(&hosts);
  rc__buf_free(&plist);
  connect_state_free(s);
  if (!s->conn) {
    rc__err(&e, RC_ENOMEM, s->shown, 0, 0, "out of memory");
    conn_failed(s, &e);
    return;
  }
  PQsetNoticeProcessor(s->conn, on_notice, s);
  if (PQstatus(s->conn) == CONNECTION_BAD) {
    conn_error(s, &e, "cannot connect", PQerrorMessage(s->conn));
    conn_failed(s, &e);
    return;
  }
  s->phase = PG_CONNECTING;
  /* libpq's first step writes (the connect() in progress): wait for writable. */
  if (!watch(s, UV_WRITABLE, &e)) conn_failed(s, &e);
}

static void resolve_next(pg_source *s);

static void on_resolved(uv_getaddrinfo_t *req, int status, struct addrinfo *res) {
  pg_resolve *pr = req->data;
  pg_source *s = pr->s;
  rc__host_handle_closed(pr->host);
  if (!s) {
    uv_freeaddrinfo(res);
    rc__free(pr);
    return;
  }
  s->resolve = NULL;
  rc__free(pr);
  /* Every address, in the resolver's order: libpq tries them in turn. */
  rc__buf list;
  rc__buf_init(&list);
  for (struct addrinfo *ai = status == 0 ? res : NULL; ai; ai = ai->ai_next) {
    char addr[INET6_ADDRSTRLEN];
    const void *a = ai->ai_family == AF_INET6
                      ? (const void *)&((struct sockaddr_in6 *)ai->ai_addr)->sin6_addr
                      : (const void *)&((struct sockaddr_in *)ai->ai_addr)->sin_addr;
    if ((ai->ai_family != AF_INET && ai->ai_family != AF_INET6) ||
        !inet_ntop(ai->ai_family, a, addr, sizeof addr))
      continue;
    if (list.n) rc__buf_addc(&list, ',');
    rc__buf_adds(&list, addr);
  }
  uv_freeaddrinfo(res);
  rc_error e = {0};
  if (list.oom) {
    rc__buf_free(&list);
    rc__err(&e, RC_ENOMEM, s->shown, 0, 0, "out of memory");
    conn_failed(s, &e);
    return;
  }
  if (!list.n) {
    /* Left out of the lists (libpq skips a host it cannot resolve, too); the attempt
     * fails only when no host is left. */
    if (!s->resolve_err.code)
      rc__err(&s->resolve_err, RC_EIO, s->shown, 0, 0, "cannot resolve the host name %s: "
              "%s", s->hosts[s->next_host], status ? uv_strerror(status) : "no address");
    rc__buf_adds(&list, "!");
    if (list.oom) {
      rc__err(&e, RC_ENOMEM, s->shown, 0, 0, "out of memory");
      conn_failed(s, &e);
      return;
    }
  }
  char *copy = rc__buf_take(&list);
  rc__free(s->addrs[s->next_host]);
  s->addrs[s->next_host++] = copy;
  resolve_next(s);
}

/* A host to resolve: not empty, not a socket directory ("/...", "@..."), not already
 * an address. */
static bool needs_resolving(const char *h) {
  unsigned char buf[sizeof(struct in6_addr)];
  if (!h[0] || h[0] == '/' || h[0] == '@') return false;
  return inet_pton(AF_INET, h, buf) != 1 && inet_pton(AF_INET6, h, buf) != 1;
}

/* Resolves the next host name that needs it, or connects once none is left. */
static void resolve_next(pg_source *s) {
  while (s->next_host < s->nhosts && !needs_resolving(s->hosts[s->next_host]))
    s->next_host++;
  if (s->next_host == s->nhosts) {
    connect_libpq(s);
    return;
  }
  rc_error e = {0};
  pg_resolve *pr = rc__calloc(1, sizeof *pr);
  if (!pr) {
    rc__err(&e, RC_ENOMEM, s->shown, 0, 0, "out of memory");
    conn_failed(s, &e);
    return;
  }
  pr->host = rc__src_host(s->r.ctx);
  pr->s = s;
  pr->req.data = pr;
  struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM};
  int rc = uv_getaddrinfo(rc__src_loop(s->r.ctx), &pr->req, on_resolved,
                          s->hosts[s->next_host], NULL, &hints);
  if (rc) {
    rc__free(pr);
    rc__err(&e, RC_ESYS, s->shown, 0, 0, "cannot resolve the host name %s: %s",
            s->hosts[s->next_host], uv_strerror(rc));
    conn_failed(s, &e);
    return;
  }
  rc__host_handle_opened(pr->host);
  s->resolve = pr;
  s->phase = PG_RESOLVING;
}

/* The connection string: the inline option, the variable, or the file's text. NULL with
 * `e` filled when there is none. */
static const char *conninfo(pg_source *s, rc_error *e) {
  if (s->conninfo_inline) return s->conninfo_inline;
  if (s->conninfo_env) {
    const char *v = getenv(s->conninfo_env);
    if (!v || !*v)
      rc__err(e, RC_EIO, s->shown ? s->shown : "postgres", 0, 0,
              "the variable %s (conninfo_env) is not set", s->conninfo_env);
    return v && *v ? v : NULL;
  }
  rc_error te = {0};
  const char *v = rc__token_get(&s->conninfo_file, &te);
  if (!v) {
    rc__err(e, te.code ? te.code : RC_EIO, s->conninfo_file.file, 0, 0,
            "cannot read the connection string (conninfo_file): %s", te.message);
    return NULL;
  }
  return v;
}

/* Starts a connection: parses the connection string, then resolves host names and
 * connects (connect_libpq). */
static void connect_start(pg_source *s) {
  rc_error e = {0};
  close_conn(s);
  const char *ci = conninfo(s, &e);
  if (!ci) {
    /* env_changed compares with "none", not with the last string that worked. */
    rc__digest128("", 0, s->conninfo_digest);
    s->have_digest = true;
    rc__remote_fail(&s->r, &e, 0);
    return;
  }
  rc__digest128(ci, strlen(ci), s->conninfo_digest);
  s->have_digest = true;
  char *perr = NULL;
  s->opts = PQconninfoParse(ci, &perr);
  if (!s->opts) {
    /* libpq's message quotes the text around the mistake, which may be the password. */
    bool mem = !perr;
    PQfreemem(perr);
    rc__err(&e, mem ? RC_ENOMEM : RC_EPOLICY, s->shown ? s->shown : "postgres", 0, 0,
            "%s", mem ? "out of memory"
                      : "the connection string does not parse (libpq's message is left "
                        "out: it may quote the password)");
    rc__remote_fail(&s->r, &e, 0);
    return;
  }
  char *shown = shown_name(s->opts);
  const char *pw = opt_val(s->opts, "password");
  char *password = pw ? rc__strdup(pw) : NULL;
  if (!shown || (pw && !password)) {
    rc__free(shown);
    rc__free(password);
    rc__err(&e, RC_ENOMEM, "postgres", 0, 0, "out of memory");
    conn_failed(s, &e);
    return;
  }
  rc__free(s->shown);
  s->shown = shown;
  if (s->password) explicit_bzero(s->password, strlen(s->password));
  rc__free(s->password);
  s->password = password;
  /* Host names are resolved here, unless the string gives addresses itself. */
  const char *host = opt_val(s->opts, "host");
  if (!host) host = getenv("PGHOST");
  if (host && !opt_val(s->opts, "hostaddr")) {
    s->hosts = split(host, &s->nhosts);
    s->addrs = s->hosts ? rc__calloc(s->nhosts, sizeof *s->addrs) : NULL;
    for (size_t i = 0; s->addrs && i < s->nhosts; i++)
      if (!(s->addrs[i] = rc__strdup(""))) break;
    if (!s->hosts || !s->addrs || !s->addrs[s->nhosts - 1]) {
      rc__err(&e, RC_ENOMEM, s->shown, 0, 0, "out of memory");
      conn_failed(s, &e);
      return;
    }
  }
  s->phase = PG_RESOLVING;
  deadline_arm(s, s->r.timeout_ms);
  resolve_next(s);
}

/* ===================================================================================
 * The query
 * =================================================================================== */

static void run_query(pg_source *s) {
  if (s->phase != PG_IDLE || s->r.stopping) return;
  s->want_query = false;
  s->res_err.code = 0;
  s->res_begun = false;
  if (!PQsendQueryParams(s->conn, s->query, (int)s->nparams, NULL,
                         (const char *const *)s->params, NULL, NULL, 0)) {
    send_failed(s, "cannot send the query");
    return;
  }
  /* Rows one at a time: a result over max_bytes is dropped as it comes, not held. If
   * libpq refuses, the result comes whole, which the reader handles too. */
  PQsetSingleRowMode(s->conn);
  s->phase = PG_QUERY;
  s->query_started_ns = rc__mono_ns();
  uint64_t t = s->r.timeout_ms ? s->r.timeout_ms : 1;
  deadline_arm(s, 2 * t);
  flush(s);
}

/* Takes the rows of one result (a row in single-row mode, or all of them). */
static void take_rows(pg_source *s, const PGresult *res) {
  if (s->res_err.code) return;  /* the run failed: the rest is read and dropped */
  int ncols = PQnfields(res);
  if (!s->res_begun) {
    rc__pg_column *cols = rc__calloc(ncols ? (size_t)ncols : 1, sizeof *cols);
    if (!cols) {
      rc__err(&s->res_err, RC_ENOMEM, s->shown, 0, 0, "out of memory");
      return;
    }
    for (int i = 0; i < ncols; i++)
      cols[i] = (rc__pg_column){PQfname(res, i), PQftype(res, i), PQfmod(res, i)};
    s->res_begun = true;
    int rc = rc__pg_result_begin(&s->res, cols, (size_t)ncols, &s->r.limits,
                                 s->r.max_bytes, s->shown, &s->res_err);
    rc__free(cols);
    if (rc) return;
  }
  const char *texts[64];
  size_t lens[64];
  const char **t = ncols <= 64 ? texts : rc__calloc((size_t)ncols, sizeof *t);
  size_t *l = ncols <= 64 ? lens : rc__calloc((size_t)ncols, sizeof *l);
  if (!t || !l) {
    rc__err(&s->res_err, RC_ENOMEM, s->shown, 0, 0, "out of memory");
  } else {
    for (int row = 0; row < PQntuples(res) && !s->res_err.code; row++) {
      for (int i = 0; i < ncols; i++) {
        t[i] = PQgetisnull(res, row, i) ? NULL : PQgetvalue(res, row, i);
        l[i] = (size_t)PQgetlength(res, row, i);
      }
      rc__pg_result_row(&s->res, t, l, &s->res_err);
    }
  }
  if (t != texts) rc__free(t);
  if (l != lens) rc__free(l);
}

/* The query's run ended (its last result read). */
static void query_done(pg_source *s) {
  rc__remote *r = &s->r;
  deadline_disarm(s);
  rc__src_fetch_time(r->ctx, rc__mono_ns() - s->query_started_ns);
  s->phase = PG_IDLE;
  rc_value_t *v = NULL;
  if (!s->res_err.code && s->res_begun) {
    s->res_begun = false;
    rc__pg_result_end(&s->res, &v, &s->res_err);
  }
  if (s->res_begun) rc__pg_result_abort(&s->res);
  s->res_begun = false;
  if (s->res_err.code) {
    rc_error e = s->res_err;
    redact(s, e.message, sizeof e.message);
    if (PQstatus(s->conn) == CONNECTION_BAD) conn_failed(s, &e);
    else rc__remote_fail(r, &e, 0);  /* the retry runs the query again */
    return;
  }
  /* No rows: absent, so that the component's default (or on_missing) applies, as for an
   * empty Consul prefix. */
  if (v && v->len == 0) {
    rc__value_unref(v);
    v = NULL;
  }
  rc__remote_success(r);
  rc__remote_deliver(r, v);
  /* A delivery runs the engine, which may stop this source: then nothing more. */
  if (r->stopping || s->phase != PG_IDLE) return;
  if (s->want_query) rc__remote_schedule(r, 0);
  else rc__remote_schedule(r, rc__remote_splay(r, s->interval_ms));
}

/* ===================================================================================
 * Reading: results and notifications
 * =================================================================================== */

/* One result of the statement in flight. */
static void on_result(pg_source *s, PGresult *res) {
  ExecStatusType st = PQresultStatus(res);
  switch (s->phase) {
  case PG_SETUP:
  case PG_LISTEN:
    if (st != PGRES_COMMAND_OK && !s->stmt_err.code)
      result_error(s, &s->stmt_err, s->phase == PG_SETUP ? "cannot set up the session"
                                                         : "LISTEN failed", res);
    break;
  case PG_QUERY:
    if (st == PGRES_SINGLE_TUPLE || st == PGRES_TUPLES_OK) {
      take_rows(s, res);
    } else if (!s->res_err.code) {
      if (st == PGRES_COMMAND_OK || st == PGRES_EMPTY_QUERY)
        rc__err(&s->res_err, RC_EPARSE, s->shown, 0, 0, "the query returned no rows "
                "and no columns: it must be a SELECT (or return rows)");
      else if (st == PGRES_COPY_OUT || st == PGRES_COPY_IN || st == PGRES_COPY_BOTH)
        rc__err(&s->res_err, RC_EPARSE, s->shown, 0, 0, "the query started a COPY: it "
                "must be a SELECT (or return rows)");
      else
        result_error(s, &s->res_err, "query failed", res);
    }
    break;
  default:
    break;
  }
}

/* The statement in flight ended: the next step. */
static void statement_done(pg_source *s) {
  switch (s->phase) {
  case PG_SETUP:
    if (s->stmt_err.code) {
      conn_failed(s, &s->stmt_err);
      return;
    }
    if (s->listen) send_listen(s);
    else ready(s);
    return;
  case PG_LISTEN:
    if (s->stmt_err.code) {
      /* On a hot standby, or through a pooler in transaction mode: the interval's polls
       * still see every change, later. */
      if (!s->listen_failed)
        rc__src_state(s->r.ctx, s->shown, s->stmt_err.code, "%s; polling every %llu ms "
                      "only", s->stmt_err.message, (unsigned long long)s->interval_ms);
      s->listen_failed = true;
      s->listening = false;
      rc__src_condition(s->r.ctx, RC__SRC_POLLING, true);
    } else {
      if (s->listen_failed)
        rc__src_state(s->r.ctx, s->shown, 0, "LISTEN works again");
      s->listen_failed = false;
      s->listening = true;
      rc__src_condition(s->r.ctx, RC__SRC_POLLING, false);
    }
    if (!s->r.stopping && s->conn) ready(s);
    return;
  case PG_QUERY:
    query_done(s);
    return;
  default:
    return;
  }
}

/* Notifications on our channel ask for a run: now when idle and healthy, else after the
 * run in flight or at the retry the backoff set. */
static void notifications(pg_source *s) {
  bool ours = false;
  PGnotify *n;
  while ((n = PQnotifies(s->conn))) {
    ours = ours || (s->listen && !strcmp(n->relname, s->listen));
    PQfreemem(n);
  }
  if (!ours) return;
  s->want_query = true;
  if (s->phase == PG_IDLE && s->r.failures == 0 && !s->r.circuit_open)
    rc__remote_schedule(&s->r, 0);  /* the next loop turn: a burst is one run */
}

/* Reads what arrived and handles every complete result, in order. */
static void read_input(pg_source *s) {
  rc_error e = {0};
  if (!PQconsumeInput(s->conn)) {
    io_close(s);  /* libpq may have closed the socket */
    conn_error(s, &e, "connection lost", PQerrorMessage(s->conn));
    conn_failed(s, &e);
    return;
  }
  notifications(s);
  if (s->flushing && !flush(s)) return;
  while (s->conn && s->phase >= PG_SETUP && s->phase != PG_IDLE && !PQisBusy(s->conn)) {
    PGresult *res = PQgetResult(s->conn);
    if (!res) {
      statement_done(s);  /* may deliver, fail, send the next statement, or stop us */
      if (s->r.stopping) return;
      continue;
    }
    on_result(s, res);
    PQclear(res);
  }
  if (s->conn && PQstatus(s->conn) == CONNECTION_BAD) {
    io_close(s);
    conn_error(s, &e, "connection lost", PQerrorMessage(s->conn));
    conn_failed(s, &e);
    return;
  }
  if (s->conn && s->io && PQsocket(s->conn) != s->io->fd) io_close(s);
}

/* libuv reports an error on the socket (POLLERR: a refused connect, a reset) as status
 * UV_EBADF and stops the handle. libpq knows what happened better (SO_ERROR, the read
 * that fails), so the socket is handed to it as if ready, and watched again after. */
static void on_io(uv_poll_t *h, int status, int events) {
  pg_io *io = h->data;
  pg_source *s = io->s;
  if (!s || s->r.stopping || !s->conn) return;
  if (status < 0) {
    io->events = 0;  /* stopped by libuv */
    events = UV_READABLE | UV_WRITABLE;
  }
  if (s->phase == PG_CONNECTING) {
    connect_step(s);
    return;
  }
  if ((events & UV_WRITABLE) && s->flushing && !flush(s)) return;
  if (events & UV_READABLE) read_input(s);
  rc_error e = {0};
  if (status < 0 && s->conn && s->phase >= PG_SETUP &&
      !watch(s, UV_READABLE | (s->flushing ? UV_WRITABLE : 0), &e))
    conn_failed(s, &e);
}

static void on_deadline(uv_timer_t *t) {
  pg_deadline *d = t->data;
  pg_source *s = d->s;
  if (!s || s->r.stopping) return;
  rc_error e = {0};
  if (s->phase == PG_QUERY)
    rc__err(&e, RC_EIO, s->shown, 0, 0, "no answer to the query within %llu ms (twice "
            "the timeout): the connection is dropped",
            (unsigned long long)(2 * (uint64_t)s->r.timeout_ms));
  else
    rc__err(&e, RC_EIO, s->shown ? s->shown : "postgres", 0, 0,
            "cannot connect: no answer within %llu ms (timeout)",
            (unsigned long long)s->r.timeout_ms);
  conn_failed(s, &e);
}

/* ===================================================================================
 * The kind
 * =================================================================================== */

/* The remote timer: connect when there is no connection, else run the query (a poll,
 * a retry, or a NOTIFY's run). Busy phases ignore it: their end schedules the next. */
static void tick(rc__remote *r) {
  pg_source *s = (pg_source *)r;
  if (s->phase == PG_DOWN) connect_start(s);
  else if (s->phase == PG_IDLE) run_query(s);
  else if (s->phase == PG_QUERY) s->want_query = true;
}

static int pg_start(rc__source *base, rc_error *err) {
  pg_source *s = (pg_source *)base;
  int rc = deadline_open(s, err);
  if (!rc) rc = rc__remote_start(&s->r, tick, err);
  if (rc) return rc;
  /* The first value comes with the first result; start never waits for it. */
  connect_start(s);
  return 0;
}

static void pg_stop(rc__source *base, void (*done)(rc__source *)) {
  pg_source *s = (pg_source *)base;
  close_conn(s);
  if (s->deadline) {
    s->deadline->s = NULL;
    uv_close((uv_handle_t *)&s->deadline->timer, deadline_closed);
    s->deadline = NULL;
  }
  rc__remote_stop(&s->r, done);
}

/* A reload request: run the query now (or once the current step is over). */
static void pg_rescan(rc__source *base) {
  pg_source *s = (pg_source *)base;
  if (s->r.stopping) return;
  s->want_query = true;
  if (s->phase == PG_IDLE || s->phase == PG_DOWN) rc__remote_schedule(&s->r, 0);
}

/* A new connection string in the variable connects again at once with it. */
static void pg_env_changed(rc__source *base) {
  pg_source *s = (pg_source *)base;
  if (s->r.stopping || !s->conninfo_env) return;
  const char *v = getenv(s->conninfo_env);
  uint8_t d[16];
  rc__digest128(v ? v : "", v ? strlen(v) : 0, d);
  if (s->have_digest && !memcmp(d, s->conninfo_digest, sizeof d)) return;
  close_conn(s);
  rc__remote_schedule(&s->r, 0);
}

static void pg_free(rc__source *base) {
  pg_source *s = (pg_source *)base;
  close_conn(s);
  rc__remote_free(&s->r);
  rc__token_free(&s->conninfo_file);
  rc__opt_list_free(s->params);
  if (s->password) explicit_bzero(s->password, strlen(s->password));
  rc__free(s->password);
  rc__free(s->shown);
  rc__free(s);
}

static rc__source *pg_create(rc__source_ctx *ctx, rc_error *err) {
  pg_source *s = rc__remote_new(sizeof *s, ctx, err);
  if (!s) return NULL;
  if (!rc__token_init(&s->conninfo_file, NULL, rc__opt_string(ctx, "conninfo_file"))) {
    rc__remote_free(&s->r);
    rc__free(s);
    rc__err(err, RC_ENOMEM, NULL, 0, 0, "out of memory");
    return NULL;
  }
  s->query = rc__opt_string(ctx, "query");
  s->listen = rc__opt_string(ctx, "listen");
  s->conninfo_inline = rc__opt_string(ctx, "conninfo");
  s->conninfo_env = rc__opt_string(ctx, "conninfo_env");
  s->interval_ms = (uint64_t)rc__opt_number(ctx, "interval_ms");
  if (s->interval_ms < 1) s->interval_ms = 1;
  if (rc__opt(ctx, "params")) {
    s->params = rc__opt_list(ctx, "params");
    if (!s->params) {
      pg_free(&s->r.base);
      rc__err(err, RC_ENOMEM, NULL, 0, 0, "out of memory");
      return NULL;
    }
    while (s->params[s->nparams]) s->nparams++;
  }
  int given = !!s->conninfo_inline + !!s->conninfo_env + !!s->conninfo_file.file;
  if (!s->query || given != 1) {
    rc__src_policy_error(ctx, err, "postgres source needs a query and one of conninfo, "
                         "conninfo_env or conninfo_file");
    pg_free(&s->r.base);
    return NULL;
  }
  return &s->r.base;
}

static const rc__opt_default pg_defaults[] = {
  RC__REMOTE_DEFAULTS, {"timeout_ms", 10000}, {"interval_ms", 10000}, {NULL, 0},
};

const rc__source_kind rc__postgres_kind = {
  .name = "postgres", .flags = RC__SRC_REMOTE, .defaults = pg_defaults,
  RC__SOURCE_FUNCS(pg), .env_changed = pg_env_changed,
};
