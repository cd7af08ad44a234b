/* app.c: a small application embedding reactcfg. It loads a policy, starts the engine on
 * its own thread, prints every change as it is committed, and reads the configuration
 * from its main thread whenever it receives SIGUSR1. SIGINT/SIGTERM stop it cleanly.
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

static void on_event(void *ud, const rc_event_t *ev) {
  (void)ud;
  if (ev->type == RC_EVENT_COMMIT) return;
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
  rc_subscribe(eng, "**", on_change, NULL, NULL);
  rc_subscribe(eng, "settings.server", on_server, NULL, NULL);

  /* Block the signals before the engine thread starts, so only sigwait sees them. */
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGINT);
  sigaddset(&set, SIGTERM);
  sigaddset(&set, SIGUSR1);
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
    break;
  }
  rc_engine_stop(eng);
  rc_engine_free(eng);
  printf("example-app: stopped\n");
  return 0;
}
