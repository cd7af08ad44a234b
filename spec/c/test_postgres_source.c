/* SPDX-License-Identifier: MIT (see LICENSE) */
/* test_postgres_source.c: rc.postgres (sources/postgres.c) end to end through the public C
 * API against a real PostgreSQL 15 started here (as the `postgres` user when run as
 * root, which initdb refuses), so that the sanitizer build checks its paths for leaks
 * and memory errors: the first value, a change by NOTIFY, the server stopped mid-watch
 * and started again, a wrong password, and the engine freed while a query runs on the
 * server, while host names are resolved, and while connecting. Each run counts its
 * commits and errors after the loop ran, and checks that every handle closed. The
 * behaviour itself is specified in spec/lua/remote_postgres_spec.lua. */
#include "harness.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <sys/socket.h>
#include <sys/wait.h>

#define BIN "/usr/lib/postgresql/15/bin"

static char pg_dir[512];
static int pg_port;
static int as_root;

static int sh(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static int sh(const char *fmt, ...) {
  char cmd[4096];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(cmd, sizeof cmd, fmt, ap);
  va_end(ap);
  int rc = system(cmd);
  return rc == -1 ? -1 : WEXITSTATUS(rc);
}

/* `cmd` as the server's owner. */
static int owner(const char *cmd) {
  if (as_root)
    return sh("runuser -u postgres -- sh -c '%s' >>'%s/owner.log' 2>&1", cmd, pg_dir);
  return sh("sh -c '%s' >>'%s/owner.log' 2>&1", cmd, pg_dir);
}

static int free_port(void) {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
  socklen_t len = sizeof a;
  if (fd < 0 || bind(fd, (struct sockaddr *)&a, sizeof a) || getsockname(fd,
      (struct sockaddr *)&a, &len)) {
    perror("free port");
    exit(2);
  }
  close(fd);
  return ntohs(a.sin_port);
}

static int pg_sql(const char *sql) {
  char path[600];
  snprintf(path, sizeof path, "%s/stmt.sql", pg_dir);
  FILE *f = fopen(path, "w");
  if (!f) return -1;
  fputs(sql, f);
  fclose(f);
  return sh(BIN "/psql -X -q -v ON_ERROR_STOP=1 -h '%s' -p %d -U postgres -d app -f '%s' "
            ">/dev/null", pg_dir, pg_port, path);
}

static int pg_start(void) {
  char cmd[1200];
  snprintf(cmd, sizeof cmd, BIN "/pg_ctl -D %s/data -l %s/server.log -w -t 60 start", pg_dir,
           pg_dir);
  return owner(cmd);
}

static int pg_stop(void) {
  char cmd[1200];
  snprintf(cmd, sizeof cmd, BIN "/pg_ctl -D %s/data -m fast -w -t 60 stop", pg_dir);
  return owner(cmd);
}

/* A cluster in a new directory with a database `app`, a notifying table, a slow
 * function and a role with a password. A watchdog stops it if this process dies. */
static void pg_setup(void) {
  as_root = getuid() == 0;
  const char *base = getenv("RC_TEST_TMP");
  if (!base || !*base) base = "/tmp";
  mkdir(base, 0755);
  snprintf(pg_dir, sizeof pg_dir, "%s/pgc.XXXXXX", base);
  if (!mkdtemp(pg_dir)) {
    perror("mkdtemp");
    exit(2);
  }
  if (as_root && sh("chown postgres:postgres '%s'", pg_dir) != 0) exit(2);
  pg_port = free_port();
  char cmd[1200];
  snprintf(cmd, sizeof cmd, BIN "/initdb -D %s/data -U postgres -A trust -E UTF8 --no-locale "
           "--no-sync", pg_dir);
  if (owner(cmd) != 0 ||
      sh("printf \"listen_addresses = '127.0.0.1'\\nunix_socket_directories = '%s'\\n"
         "port = %d\\nfsync = off\\n\" >> '%s/data/postgresql.conf'", pg_dir, pg_port,
         pg_dir) != 0 ||
      sh("printf 'local all reader scram-sha-256\\nlocal all all trust\\n"
         "host all all 127.0.0.1/32 trust\\n' > '%s/data/pg_hba.conf'", pg_dir) != 0) {
    fprintf(stderr, "cannot make a PostgreSQL cluster (see %s/owner.log)\n", pg_dir);
    exit(2);
  }
  /* In a session of its own: a ctest timeout kills this process group, not it. */
  sh("setsid sh -c \"while kill -0 %d 2>/dev/null; do sleep 1; done; %s " BIN "/pg_ctl -D "
     "'%s/data' -m immediate stop; rm -rf '%s'\" >/dev/null 2>&1 </dev/null &",
     (int)getpid(), as_root ? "runuser -u postgres --" : "", pg_dir, pg_dir);
  if (pg_start() != 0) {
    fprintf(stderr, "cannot start PostgreSQL (see %s/server.log)\n", pg_dir);
    exit(2);
  }
  sh(BIN "/psql -X -q -h '%s' -p %d -U postgres -d postgres -c 'CREATE DATABASE app' "
     ">/dev/null", pg_dir, pg_port);
  if (pg_sql("CREATE TABLE settings (key text PRIMARY KEY, value jsonb);\n"
             "CREATE TABLE slow (on_ boolean);\n"
             "CREATE FUNCTION notify_settings() RETURNS trigger LANGUAGE plpgsql AS $$\n"
             "BEGIN PERFORM pg_notify('settings_changed', ''); RETURN NULL; END $$;\n"
             "CREATE TRIGGER s AFTER INSERT OR UPDATE OR DELETE ON settings\n"
             "  FOR EACH STATEMENT EXECUTE FUNCTION notify_settings();\n"
             "CREATE TRIGGER t AFTER INSERT OR UPDATE OR DELETE ON slow\n"
             "  FOR EACH STATEMENT EXECUTE FUNCTION notify_settings();\n"
             "CREATE FUNCTION maybe_sleep() RETURNS boolean LANGUAGE plpgsql AS $$\n"
             "BEGIN IF EXISTS (SELECT 1 FROM slow) THEN PERFORM pg_sleep(20); END IF;\n"
             "RETURN true; END $$;\n"
             "CREATE ROLE reader LOGIN PASSWORD 'R1ght-Pass-7';\n"
             "GRANT SELECT ON settings TO reader;\n"
             "INSERT INTO settings VALUES ('n', '1');\n") != 0) {
    fprintf(stderr, "cannot create the schema\n");
    exit(2);
  }
}

static void pg_teardown(void) {
  pg_stop();
  sh("rm -rf '%s'", pg_dir);
}

/* harness.h's h_run, with a timer that also stops the loop: libuv 1.44's UV_RUN_ONCE
 * runs a timer that is due when it starts and then still polls, for as long as the next
 * timer is away (here the 1 h interval), so a deadline that falls due between two turns
 * would hang h_run. Runs until `commits` and `errors` are reached (at most `limit_ms`),
 * then `quiet_ms` more so that anything extra is counted. */
static void on_expiry(uv_timer_t *t) {
  *(int *)t->data = 1;
  uv_stop(t->loop);
}

static void run(harness *h, int commits, int errors, int limit_ms, int quiet_ms) {
  int expired = 0;
  uv_timer_t t;
  uv_timer_init(&h->loop, &t);
  t.data = &expired;
  uv_timer_start(&t, on_expiry, (uint64_t)limit_ms, 0);
  while (!expired && (h->commits < commits || h->errors < errors))
    uv_run(&h->loop, UV_RUN_ONCE);
  expired = 0;
  uv_timer_start(&t, on_expiry, (uint64_t)quiet_ms, 0);
  while (!expired) uv_run(&h->loop, UV_RUN_ONCE);
  uv_close((uv_handle_t *)&t, NULL);
  uv_run(&h->loop, UV_RUN_NOWAIT);
}

/* A policy with one component `cfg` from rc.postgres with these options. */
static int start(harness *h, const char *name, const char *opts, const char *extra) {
  h_tmpdir(h, name);
  char policy[2048];
  snprintf(policy, sizeof policy,
           "local rc = require \"reactcfg\"\n"
           "return rc.policy { components = { cfg = { source = rc.postgres {\n"
           "  query = 'SELECT key, value FROM settings WHERE (SELECT maybe_sleep())',\n"
           "  listen = 'settings_changed', interval = '1h',\n"
           "  backoff = { min = '50ms', max = '200ms' }, %s }%s } } }\n",
           opts, extra ? extra : "");
  return h_start(h, policy);
}

static void conninfo(char *out, size_t n, const char *user, const char *password) {
  snprintf(out, n, "conninfo = 'host=%s port=%d dbname=app user=%s%s%s'", pg_dir, pg_port,
           user, password ? " password=" : "", password ? password : "");
}

/* The first value, a change by NOTIFY, the server stopped and started again. */
static void test_watch_and_restart(void) {
  harness h = {0};
  char ci[800];
  conninfo(ci, sizeof ci, "postgres", NULL);
  CHECK_EQ_INT(start(&h, "pg-watch", ci, NULL), 0);
  run(&h, 1, 0, 5000, 100);
  CHECK_EQ_INT(h.commits, 1);
  CHECK(h_find_change(&h, "added cfg - {\"n\":1}") >= 0);
  pg_sql("UPDATE settings SET value = '2'");
  run(&h, 2, 0, 5000, 200);
  CHECK_EQ_INT(h.commits, 2);
  CHECK(h_find_change(&h, "modified cfg.n 1 2") >= 0);
  CHECK_EQ_INT(h.errors, 0);
  /* Down: the connection is lost and connecting fails; the value stays. */
  pg_stop();
  run(&h, 2, 2, 5000, 0);
  CHECK(h.errors >= 2);
  CHECK_EQ_INT(h.commits, 2);
  pg_start();
  pg_sql("UPDATE settings SET value = '3'");
  run(&h, 3, 0, 10000, 200);
  CHECK_EQ_INT(h.commits, 3);
  CHECK(h_find_change(&h, "modified cfg.n 2 3") >= 0);
  CHECK(h.recovered >= 1);
  CHECK(h_finish(&h));
}

/* A wrong password: errors without it, nothing committed but the start. */
static void test_wrong_password(void) {
  harness h = {0};
  char ci[800];
  conninfo(ci, sizeof ci, "reader", NULL);
  /* The password goes in a file (an inline one is refused at load). */
  char opts[900];
  h_tmpdir(&h, "pg-password");
  char file[700];
  h_path(&h, "conninfo", file, sizeof file);
  FILE *f = fopen(file, "w");
  fprintf(f, "host=%s port=%d dbname=app user=reader password=wr0ng-Pass-5\n", pg_dir,
          pg_port);
  fclose(f);
  snprintf(opts, sizeof opts, "conninfo_file = 'conninfo', circuit = false");
  char policy[2048];
  snprintf(policy, sizeof policy,
           "local rc = require \"reactcfg\"\n"
           "return rc.policy { components = { cfg = { source = rc.postgres {\n"
           "  query = 'SELECT key, value FROM settings', listen = 'settings_changed',\n"
           "  backoff = { min = '50ms', max = '100ms' }, %s }, startup = 'default' } } }\n",
           opts);
  CHECK_EQ_INT(h_start(&h, policy), 0);
  run(&h, 1, 3, 5000, 0);
  CHECK(h.errors >= 3);
  CHECK(strstr(h.last_error, "password authentication failed") != NULL);
  CHECK(strstr(h.last_error, "wr0ng") == NULL);
  CHECK_EQ_INT(h.commits, 1);  /* the start, without the component */
  CHECK(h_finish(&h));
}

/* Freed while the query sleeps on the server: the connection is dropped mid-query. */
static void test_free_mid_query(void) {
  harness h = {0};
  char ci[800];
  conninfo(ci, sizeof ci, "postgres", NULL);
  CHECK_EQ_INT(start(&h, "pg-midquery", ci, NULL), 0);
  run(&h, 1, 0, 5000, 0);
  CHECK_EQ_INT(h.commits, 1);
  pg_sql("INSERT INTO slow VALUES (true)");  /* notifies: the next run sleeps 20 s */
  run(&h, 1, 0, 0, 300);
  CHECK_EQ_INT(h.commits, 1);
  CHECK_EQ_INT(h.errors, 0);
  CHECK(h_finish(&h));
  pg_sql("DELETE FROM slow");
}

/* Freed at once after attach (startup = "default" does not wait): while a host name is
 * resolved on the thread pool, and while connecting. */
static void test_free_while_connecting(void) {
  for (int i = 0; i < 2; i++) {
    harness h = {0};
    char ci[800];
    if (i == 0)
      snprintf(ci, sizeof ci, "conninfo = 'host=localhost port=%d dbname=app user=postgres'",
               pg_port);
    else
      conninfo(ci, sizeof ci, "postgres", NULL);
    CHECK_EQ_INT(start(&h, "pg-connecting", ci, ", startup = 'default'"), 0);
    CHECK_EQ_INT(h.commits, 1);
    CHECK(h_finish(&h));
  }
}

/* A host list whose first address refuses: libpq moves to the next socket (the poll
 * handle is made anew for it) and the value comes. */
static void test_next_host(void) {
  harness h = {0};
  char ci[800];
  snprintf(ci, sizeof ci, "conninfo = 'host=127.0.0.1,localhost port=1,%d dbname=app "
           "user=postgres'", pg_port);
  CHECK_EQ_INT(start(&h, "pg-next-host", ci, NULL), 0);
  run(&h, 1, 0, 5000, 100);
  CHECK_EQ_INT(h.commits, 1);
  CHECK_EQ_INT(h.errors, 0);
  CHECK(h_finish(&h));
}

int main(void) {
  pg_setup();
  test_watch_and_restart();
  test_wrong_password();
  test_free_mid_query();
  test_free_while_connecting();
  test_next_host();
  pg_teardown();
  return check_report("test_postgres_source");
}
