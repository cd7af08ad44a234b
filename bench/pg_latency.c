/* SPDX-License-Identifier: MIT (see LICENSE) */
/* pg_latency.c: `reactcfg-bench pg-latency`: the time from a PostgreSQL UPDATE (sent) of
 * a settings row, whose statement trigger sends NOTIFY (the tables and trigger of
 * examples/policies/postgres-settings/schema.sql, loaded beforehand), to the engine's C
 * callback holding the new value through rc.postgres (LISTEN, then the source runs its
 * query again). Beside it, in the same run on the same updates:
 *  - "libpq-listen": a minimal libpq LISTEN client on a thread of its own, blocking
 *    poll() on libpq's socket, PQconsumeInput, PQnotifies, stamped as the notification
 *    is read; then it runs the engine's SELECT, stamped when answered
 *    ("libpq-listen+select": the same work as the engine's);
 *  - "psql": `psql` after `LISTEN`, its output read here and stamped when its
 *    "Asynchronous notification" line arrives. psql checks for notifications only after
 *    a command of its own, never while it waits for input, so a psql LISTEN loop is a
 *    polling loop: it is sent `SELECT;` every `psql_poll_ms` (its latency includes half
 *    that on average).
 * Updates come from another thread, one every `gap`; every timestamp is CLOCK_REALTIME.
 * One line per watcher:
 * pg-latency peer=<p> updates=<n> seen=<n> p50_us=.. p90_us=.. p99_us=.. max_us=.. */
#include "bench_engine.h"

#include <libpq-fe.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

int rc_bench_pg_latency_main(int argc, char **argv);

#define MAX_UPDATES 2000
#define APP "bench"
#define CHANNEL "config_changed" /* schema.sql's trigger notifies it */
#define QUERY "SELECT key, value FROM settings WHERE app = $1"

typedef struct bench {
  const char *conninfo;
  int n, gap_ms, psql_poll_ms;
  _Atomic int64_t update_ns[MAX_UPDATES + 1];
  _Atomic int64_t ours_ns[MAX_UPDATES + 1];
  _Atomic int64_t notify_ns[MAX_UPDATES + 1];  /* the peer: notification read */
  _Atomic int64_t select_ns[MAX_UPDATES + 1];  /* the peer: its SELECT answered */
  _Atomic int64_t psql_ns[MAX_UPDATES + 1];    /* psql printed the notification */
  _Atomic bool engine_ready, peer_ready, psql_ready, done;
  FILE *psql_in, *psql_out;                    /* psql's stdin and stdout */
} bench;

/* Runs `sql` with the settings value {"i": i} as $1; true when it worked. */
static bool exec_value(PGconn *c, const char *sql, int i) {
  char val[32];
  snprintf(val, sizeof val, "{\"i\": %d}", i);
  const char *params[] = {val};
  PGresult *r = PQexecParams(c, sql, 1, NULL, params, NULL, NULL, 0);
  bool ok = PQresultStatus(r) == PGRES_COMMAND_OK;
  if (!ok) fprintf(stderr, "reactcfg-bench pg-latency: %s", PQerrorMessage(c));
  PQclear(r);
  return ok;
}

static bool all_ready(bench *b) {
  return atomic_load(&b->engine_ready) && atomic_load(&b->peer_ready) &&
         atomic_load(&b->psql_ready);
}

/* Waits (up to 10 s) until every watcher holds the first value, then updates 1..n. */
static void *writer(void *arg) {
  bench *b = arg;
  PGconn *c = PQconnectdb(b->conninfo);
  for (int t = 0; t < 1000 && !all_ready(b); t++)
    usleep(10000);
  usleep(300000); /* the watchers settle */
  for (int i = 1; PQstatus(c) == CONNECTION_OK && i <= b->n; i++) {
    usleep((useconds_t)b->gap_ms * 1000);
    /* From the statement being sent: its commit sends the notification. */
    int64_t sent = rc__real_ns();
    if (exec_value(c, "UPDATE settings SET value = $1 WHERE app = '" APP "' AND key = 'k'",
                   i))
      atomic_store(&b->update_ns[i], sent);
  }
  usleep(500000);
  atomic_store(&b->done, true);
  PQfinish(c);
  return NULL;
}

/* The peer's value after a notification: i of the row the engine reads, or -1. */
static int select_value(PGconn *c) {
  const char *params[] = {APP};
  PGresult *r = PQexecParams(c, QUERY, 1, NULL, params, NULL, NULL, 0);
  int i = -1;
  if (PQresultStatus(r) == PGRES_TUPLES_OK && PQntuples(r) == 1)
    sscanf(PQgetvalue(r, 0, 1), "{\"i\": %d}", &i);
  PQclear(r);
  return i;
}

static void *listener(void *arg) {
  bench *b = arg;
  PGconn *c = PQconnectdb(b->conninfo);
  PGresult *r = PQexec(c, "LISTEN " CHANNEL);
  bool ok = PQresultStatus(r) == PGRES_COMMAND_OK;
  PQclear(r);
  if (!ok) fprintf(stderr, "reactcfg-bench pg-latency: LISTEN: %s", PQerrorMessage(c));
  atomic_store(&b->peer_ready, ok);
  while (ok && !atomic_load(&b->done)) {
    struct pollfd p = {.fd = PQsocket(c), .events = POLLIN};
    if (poll(&p, 1, 100) <= 0) continue;
    if (!PQconsumeInput(c)) break;
    int64_t notified = rc__real_ns();
    bool any = false;
    PGnotify *nf;
    while ((nf = PQnotifies(c))) {
      any = true;
      PQfreemem(nf);
    }
    if (!any) continue;
    int i = select_value(c);
    int64_t answered = rc__real_ns();
    if (i > 0 && i <= b->n && atomic_load(&b->notify_ns[i]) == 0) {
      atomic_store(&b->notify_ns[i], notified);
      atomic_store(&b->select_ns[i], answered);
    }
  }
  PQfinish(c);
  return NULL;
}

/* ---- the psql peer ---- */

/* psql reading commands from a pipe, its output (notifications included) into another;
 * -X: no psqlrc; -q -A -t: only what the commands print. */
static pid_t start_psql(bench *b) {
  int in[2], out[2];
  if (pipe(in) != 0) return -1;
  if (pipe(out) != 0) {
    close(in[0]), close(in[1]);
    return -1;
  }
  pid_t pid = fork();
  if (pid == 0) {
    dup2(in[0], 0);
    dup2(out[1], 1);
    close(in[0]), close(in[1]), close(out[0]), close(out[1]);
    execlp("psql", "psql", "-X", "-q", "-A", "-t", "-d", b->conninfo, (char *)NULL);
    _exit(127);
  }
  close(in[0]), close(out[1]);
  if (pid < 0) {
    close(in[1]), close(out[0]);
    return -1;
  }
  b->psql_in = fdopen(in[1], "w");
  b->psql_out = fdopen(out[0], "r");
  signal(SIGPIPE, SIG_IGN); /* psql gone: its writes fail, the run goes on */
  fprintf(b->psql_in, "LISTEN " CHANNEL ";\n\\echo listening\n");
  fflush(b->psql_in);
  return pid;
}

/* The k-th notification psql prints is the k-th update, since nothing else writes the
 * table while the run lasts. */
static void *psql_reader(void *arg) {
  bench *b = arg;
  char line[512];
  int seen = 0;
  while (fgets(line, sizeof line, b->psql_out)) {
    int64_t now = rc__real_ns();
    if (!strncmp(line, "listening", 9)) atomic_store(&b->psql_ready, true);
    else if (!strncmp(line, "Asynchronous notification", 25) && ++seen <= b->n)
      atomic_store(&b->psql_ns[seen], now);
  }
  return NULL;
}

/* psql's loop: one empty SELECT every psql_poll_ms until the run is done, then EOF. */
static void *psql_poller(void *arg) {
  bench *b = arg;
  while (!atomic_load(&b->done)) {
    usleep((useconds_t)b->psql_poll_ms * 1000);
    if (fputs("SELECT;\n", b->psql_in) < 0 || fflush(b->psql_in) != 0) break;
  }
  fclose(b->psql_in);
  return NULL;
}

/* ---- the engine ---- */

static void on_change(void *ud, const rc_snapshot_t *s, const rc_change_t *ch, size_t n) {
  (void)ch, (void)n;
  bench *b = ud;
  int64_t i = -1;
  if (rc_snapshot_get_int(s, "pg.k.i", &i) != 0) return;
  if (i == 0) atomic_store(&b->engine_ready, true);
  if (i > 0 && i <= b->n && atomic_load(&b->ours_ns[i]) == 0)
    atomic_store(&b->ours_ns[i], rc__real_ns());
}

static void report(const char *peer, bench *b, const _Atomic int64_t *seen_ns) {
  char prefix[64];
  snprintf(prefix, sizeof prefix, "pg-latency peer=%s updates=%d", peer, b->n);
  bench_latency_line(prefix, b->update_ns, seen_ns, b->n);
  if (seen_ns != b->ours_ns) {
    snprintf(prefix, sizeof prefix, "pg-latency paired peer=%s", peer);
    bench_paired_line(prefix, b->ours_ns, seen_ns, b->n);
  }
}

/* Whether `s` fits in a Lua long string [==[ ]==] (the policy's conninfo). */
static bool lua_long_string_ok(const char *s) { return !strstr(s, "]==]"); }

int rc_bench_pg_latency_main(int argc, char **argv) {
  static bench b;
  b.n = 200;
  b.gap_ms = 20;
  b.psql_poll_ms = 1;
  for (int i = 0; i < argc; i++) {
    if (!strcmp(argv[i], "--conninfo") && i + 1 < argc) b.conninfo = argv[++i];
    else if (!strcmp(argv[i], "--updates") && i + 1 < argc) b.n = atoi(argv[++i]);
    else if (!strcmp(argv[i], "--gap-ms") && i + 1 < argc) b.gap_ms = atoi(argv[++i]);
    else if (!strcmp(argv[i], "--psql-poll-ms") && i + 1 < argc)
      b.psql_poll_ms = atoi(argv[++i]);
    else b.conninfo = NULL, i = argc;
  }
  if (!b.conninfo || !lua_long_string_ok(b.conninfo) || b.n < 1 || b.n > MAX_UPDATES ||
      b.gap_ms < 0 || b.psql_poll_ms < 1) {
    fprintf(stderr, "usage: reactcfg-bench pg-latency --conninfo 'host=... dbname=...' "
                    "[--updates N (<= %d)] [--gap-ms MS] [--psql-poll-ms MS]\n"
                    "  the database needs examples/policies/postgres-settings/schema.sql\n",
            MAX_UPDATES);
    return 2;
  }
  /* The first value, before either watcher starts: both begin from it. */
  PGconn *c = PQconnectdb(b.conninfo);
  bool ok = PQstatus(c) == CONNECTION_OK &&
            exec_value(c, "INSERT INTO settings VALUES ('" APP "', 'k', $1) "
                          "ON CONFLICT (app, key) DO UPDATE SET value = EXCLUDED.value", 0);
  if (!ok && PQstatus(c) != CONNECTION_OK)
    fprintf(stderr, "reactcfg-bench pg-latency: %s", PQerrorMessage(c));
  PQfinish(c);
  if (!ok) return 1;

  /* The peer is not instrumented: a sanitizer run's preloaded runtime (the specs') must
   * not reach it (psql hung at exit with ASan preloaded). Only our children read it. */
  unsetenv("LD_PRELOAD");
  pid_t psql = start_psql(&b);
  if (psql < 0 || !b.psql_in || !b.psql_out) {
    fprintf(stderr, "reactcfg-bench pg-latency: cannot start psql\n");
    return 1;
  }
  pthread_t ls, wr, prd, ppo;
  pthread_create(&prd, NULL, psql_reader, &b);
  pthread_create(&ppo, NULL, psql_poller, &b);
  pthread_create(&ls, NULL, listener, &b);
  char policy[1024];
  snprintf(policy, sizeof policy,
           "local rc = require 'reactcfg'\nreturn rc.policy { components = {\n"
           "  pg = { source = rc.postgres { conninfo = [==[%s]==],\n"
           "         query = '" QUERY "', params = { '" APP "' },\n"
           "         listen = '" CHANNEL "', interval = '30s' },\n"
           "        startup = 'default' },\n} }\n", b.conninfo);
  uv_loop_t loop;
  rc_engine_t *eng = bench_engine("pg-latency", policy, &loop, "pg", on_change, &b);
  if (!eng) {
    atomic_store(&b.done, true);
    pthread_join(ls, NULL);
    pthread_join(ppo, NULL);
    pthread_join(prd, NULL);
    waitpid(psql, NULL, 0);
    return 1;
  }
  pthread_create(&wr, NULL, writer, &b);
  bench_run_until(&loop, &b.done);
  pthread_join(wr, NULL);
  pthread_join(ls, NULL);
  pthread_join(ppo, NULL);  /* closes psql's input: psql exits, its output ends */
  pthread_join(prd, NULL);
  waitpid(psql, NULL, 0);
  fclose(b.psql_out);
  report("reactcfg", &b, b.ours_ns);
  report("libpq-listen", &b, b.notify_ns);
  report("libpq-listen+select", &b, b.select_ns);
  report("psql", &b, b.psql_ns);
  bench_engine_free(eng, &loop);
  return 0;
}
