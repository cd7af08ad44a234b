/* SPDX-License-Identifier: MIT (see LICENSE) */
/* app.c: a small application embedding reactcfg. It loads a policy, starts the engine on
 * its own thread, applies the database pool's size through a reload module (which refuses
 * a size above what the application allows: the change is then rolled back and never
 * committed), prints every change as it is committed, and reads the configuration from
 * its main thread whenever it receives SIGUSR1; SIGHUP re-reads every source now.
 * SIGINT/SIGTERM stop it cleanly.
 * Usage: example-app [POLICY]   (default: examples/policy.lua) */
#include <reactcfg.h>

#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>

/* Runs on the engine's thread after each commit, with the changes under "**". */
static void on_change(void *ud, const rc_snapshot_t *snap, const rc_change_t *ch, size_t n) {
  (void)ud;
  printf("revision %llu:\n", (unsigned long long)rc_snapshot_revision(snap));
  for (size_t i = 0; i < n; i++) {
    if (ch[i].secret) { /* the policy marked it secret: never print the value */
      printf("  %-8s %-32s (secret)\n", rc_change_kind_name(ch[i].kind), ch[i].path);
      continue;
    }
    char *old = ch[i].old_value ? rc_value_to_json(ch[i].old_value, false) : NULL;
    char *new = ch[i].new_value ? rc_value_to_json(ch[i].new_value, false) : NULL;
    printf("  %-8s %-32s %s%s%s\n", rc_change_kind_name(ch[i].kind), ch[i].path,
           old ? old : "", old && new ? " -> " : "", new ? new : "");
    rc_free(old);
    rc_free(new);
  }
  fflush(stdout);
}

/* Only the server section: a subscription by pattern. */
static void on_server(void *ud, const rc_snapshot_t *snap, const rc_change_t *ch, size_t n) {
  (void)ud;
  (void)ch;
  int64_t port = 0;
  if (rc_snapshot_get_int(snap, "settings.server.port", &port) == 0)
    printf("  -> server section changed (%zu change%s); would rebind to port %lld\n", n,
           n == 1 ? "" : "s", (long long)port);
  fflush(stdout);
}

/* The connection pool: a reload module applies settings.database.pool.max to it before
 * the revision is committed, and refuses a size above POOL_LIMIT. */
#define POOL_LIMIT 50
typedef struct pool {
  int64_t size; /* connections the application keeps open (engine thread only) */
} pool;

/* Runs on the engine's thread; `snap` is the candidate revision (or, in a rollback, the
 * running one to go back to). Answering at once; a slow resize could return RC_EPENDING
 * and call rc_reload_done(r, ...) later from any thread. */
static int apply_pool(void *ud, rc_reload_t *r, const rc_snapshot_t *snap,
                      const rc_change_t *changes, size_t n) {
  pool *p = ud;
  (void)changes;
  (void)n;
  int64_t max = 0;
  if (rc_snapshot_get_int(snap, "settings.database.pool.max", &max) != 0) return RC_OK;
  if (!rc_reload_is_rollback(r) && max > POOL_LIMIT) {
    char why[96];
    snprintf(why, sizeof why, "%lld connections is above the pool's limit of %d",
             (long long)max, POOL_LIMIT);
    rc_reload_set_reason(r, why); /* events say why */
    return RC_EREFUSED;
  }
  printf("  pool: %s %lld to %lld connections\n",
         rc_reload_is_rollback(r) ? "restored from" : "resized from", (long long)p->size,
         (long long)max);
  fflush(stdout);
  p->size = max;
  return RC_OK;
}

/* Revision 1 is committed without modules: the pool starts at the size it commits (and
 * follows every later commit). The engine's thread, like apply_pool. */
static void on_pool(void *ud, const rc_snapshot_t *snap, const rc_change_t *ch, size_t n) {
  pool *p = ud;
  (void)ch;
  (void)n;
  rc_snapshot_get_int(snap, "settings.database.pool.max", &p->size);
}

static void on_event(void *ud, const rc_event_t *ev) {
  (void)ud;
  switch (ev->type) { /* a reload shows as its revision; only a refusal is news */
    case RC_EVENT_COMMIT: case RC_EVENT_RELOAD_STARTED: case RC_EVENT_RELOAD_COMPLETED:
    case RC_EVENT_MODULE_STARTED: case RC_EVENT_MODULE_COMPLETED:
      return;
    default:
      break;
  }
  if (ev->file[0] && ev->line)
    printf("[%s] %s %s:%d:%d: %s\n", ev->name, ev->component, ev->file, ev->line, ev->column,
           ev->message);
  else
    printf("[%s] %s %s\n", ev->name, ev->component, ev->message);
  fflush(stdout);
}

/* A read from the main thread: lock-free, consistent within the snapshot. */
static void print_status(rc_engine_t *eng) {
  rc_snapshot_t *snap = rc_snapshot_acquire(eng);
  const char *mode = "?", *url = "?";
  int64_t port = 0, pool_max = 0;
  rc_snapshot_get_string(snap, "mode", &mode, NULL);
  rc_snapshot_get_int(snap, "settings.server.port", &port);
  rc_snapshot_get_int(snap, "settings.database.pool.max", &pool_max);
  rc_snapshot_get_string(snap, "settings.database.url", &url, NULL);
  printf("status (main thread, revision %llu): mode=%s port=%lld pool.max=%lld db=%s\n",
         (unsigned long long)rc_snapshot_revision(snap), mode, (long long)port,
         (long long)pool_max, url);
  fflush(stdout);
  rc_snapshot_release(snap);
}

int main(int argc, char **argv) {
  const char *policy = argc > 1 ? argv[1] : "examples/policy.lua";
  rc_error err = {0};
  rc_engine_t *eng = rc_engine_new(&err);
  if (!eng) {
    fprintf(stderr, "example-app: %s\n", err.message);
    return 1;
  }
  if (rc_engine_load_policy(eng, policy, &err) != 0) {
    fprintf(stderr, "%s:%d: %s\n", err.file, err.line, err.message);
    rc_engine_free(eng);
    return 1;
  }
  rc_engine_on_event(eng, on_event, NULL);
  pool db_pool = {0};
  if (rc_module_register(eng, "pool", "settings.database.pool.**", apply_pool, 0, &db_pool,
                         &err) < 0) {
    fprintf(stderr, "example-app: %s\n", err.message);
    rc_engine_free(eng);
    return 1;
  }
  rc_subscribe(eng, "settings.database.pool", on_pool, &db_pool, NULL);
  rc_subscribe(eng, "**", on_change, NULL, NULL);
  rc_subscribe(eng, "settings.server", on_server, NULL, NULL);

  /* Block the signals before the engine thread starts, so only sigwait sees them. */
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGINT);
  sigaddset(&set, SIGTERM);
  sigaddset(&set, SIGUSR1);
  sigaddset(&set, SIGHUP);
  pthread_sigmask(SIG_BLOCK, &set, NULL);

  if (rc_engine_start(eng, &err) != 0) {
    fprintf(stderr, "example-app: cannot start: %s\n", err.message);
    rc_engine_free(eng);
    return 1;
  }
  printf("example-app: watching (policy %s); SIGUSR1 prints a status line, Ctrl-C stops\n",
         policy);
  print_status(eng);
  for (;;) {
    int sig = 0;
    sigwait(&set, &sig);
    if (sig == SIGUSR1) {
      print_status(eng);
      continue;
    }
    if (sig == SIGHUP) {
      rc_engine_reload(eng, NULL, 0); /* re-read every source now */
      continue;
    }
    break;
  }
  rc_engine_stop(eng);
  rc_engine_free(eng);
  printf("example-app: stopped\n");
  return 0;
}
