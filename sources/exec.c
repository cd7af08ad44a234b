/* SPDX-License-Identifier: MIT (see LICENSE) */
/* exec.c: the command source. Runs a program without a shell (uv_spawn on the engine's
 * loop) every `interval` and parses what it prints on standard output; a non-zero exit,
 * a signal, a timeout or output beyond max_bytes is a source error naming the last
 * lines of its standard error. It is a remote source (rc__remote): a command is most
 * often a client for some service (vault-cli, aws, kubectl), so failures retry with
 * backoff and the circuit breaker, the last good value is cached, and start waits.
 * What must stay true:
 *  - the child gets exactly the environment the policy names (`env`, `pass_env`), the
 *    engine's own only with `inherit_env`; the program is looked up like execvp, in
 *    env.PATH when given, else in the engine's PATH, relative to `cwd`;
 *  - the child leads a process group of its own, and every kill (timeout, output over
 *    max_bytes, stop) is SIGKILL to the group, so a shell script's own children go too
 *    and nothing holds the pipes open;
 *  - a run is allocated apart from the source: stop detaches it and kills the group,
 *    and the run closes its handles only after libuv reaped the child (a process handle
 *    closed earlier would leave a zombie). The engine counts its handles, so it is not
 *    freed before the run ended. */
#include "remote.h"

#include <errno.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

extern char **environ;

/* Bytes of standard error kept (its end) for the message of a failed run. */
#define EXEC_ERR_TAIL 2048
/* Lines of standard error shown in that message. */
#define EXEC_ERR_LINES 5
/* The search path when neither env.PATH nor the engine's PATH is set (glibc's default). */
#define EXEC_DEFAULT_PATH "/bin:/usr/bin"

typedef struct exec_source exec_source;

/* One run of the command. Outlives its source when the source stops first. */
typedef struct exec_run {
  exec_source *s;            /* NULL once the source stopped: the run only ends */
  rc__host *host;
  uv_process_t proc;
  uv_pipe_t out, err;
  uv_timer_t timer;
  int open;                  /* handles not closed yet */
  unsigned inited;           /* which handles exist (bits: out, err, timer, proc) */
  int pid;
  uint64_t started_ns;       /* when it was spawned (fetch-time metric) */
  bool spawned, exited, out_done, err_done, finished;
  bool timed_out, over_limit;
  int64_t status;
  int term_signal;
  size_t max_bytes;
  rc__buf stdout_buf;
  char tail[EXEC_ERR_TAIL];  /* the end of standard error */
  size_t tail_len;
  char out_chunk[16384], err_chunk[1024];
} exec_run;

struct exec_source {
  rc__remote r;
  char **argv;               /* the command, NULL-terminated (owned) */
  char **env;                /* "NAME", "value", ... (owned) */
  char **pass;               /* names of the engine's variables passed on (owned) */
  bool inherit;
  const char *cwd;           /* borrowed from the options */
  uint8_t inputs[16];        /* digest of the last run's environment and search path */
  bool have_inputs;
  rc__format fmt;
  uint64_t interval_ms;
  char *shown;               /* "exec <program>" for messages */
  exec_run *run;             /* in flight, or NULL */
};

/* ===================================================================================
 * One run
 * =================================================================================== */

static void run_handle_closed(uv_handle_t *h) {
  exec_run *run = h->data;
  rc__host_handle_closed(run->host);
  if (--run->open == 0) {
    rc__buf_free(&run->stdout_buf);
    rc__free(run);
  }
}

/* Closes every handle the run has; the last close callback frees it. */
static void run_close_all(exec_run *run) {
  uv_handle_t *hs[] = {(uv_handle_t *)&run->out, (uv_handle_t *)&run->err,
                       (uv_handle_t *)&run->timer, (uv_handle_t *)&run->proc};
  for (unsigned i = 0; i < 4; i++)
    if ((run->inited & (1u << i)) && !uv_is_closing(hs[i]))
      uv_close(hs[i], run_handle_closed);
  if (run->open == 0) {
    rc__buf_free(&run->stdout_buf);
    rc__free(run);
  }
}

/* SIGKILL to the child's process group (it leads one: UV_PROCESS_DETACHED). Also after
 * the leader was reaped, while a descendant in the group may hold the pipes: Linux never
 * hands out a number that is still a live group's id, so -pid names no other group. */
static void run_kill(exec_run *run) {
  if (run->spawned && !run->finished) uv_kill(-run->pid, SIGKILL);
}

/* The last EXEC_ERR_LINES non-empty lines of standard error, joined by " | ", into `b`. */
static void add_tail(rc__buf *b, const exec_run *run) {
  const char *t = run->tail;
  size_t n = run->tail_len;
  while (n && (t[n - 1] == '\n' || t[n - 1] == '\r' || t[n - 1] == ' ')) n--;
  size_t start = n;
  int lines = 0;
  while (start > 0) {
    if (t[start - 1] == '\n' && ++lines == EXEC_ERR_LINES) break;
    start--;
  }
  if (start == n) return;
  rc__buf_adds(b, ": ");
  for (size_t i = start; i < n; i++) {
    char c = t[i];
    if (c == '\n') rc__buf_adds(b, " | ");
    else if (c == '\r' || c == '\t') rc__buf_addc(b, ' ');
    else if ((unsigned char)c >= 0x20) rc__buf_addc(b, c);
  }
}

static void report(exec_source *s, exec_run *run);

/* Ends the run once the child was reaped and both pipes are done: reports to the source
 * (if it still runs) and closes every handle. */
static void run_maybe_finish(exec_run *run) {
  if (run->finished || !run->exited || !run->out_done || !run->err_done) return;
  run->finished = true;
  exec_source *s = run->s;
  if (s) {
    s->run = NULL;
    run->s = NULL;
    rc__src_fetch_time(s->r.ctx, rc__mono_ns() - run->started_ns);
    report(s, run);
  }
  run_close_all(run);
}

static void on_exit_cb(uv_process_t *p, int64_t status, int term_signal) {
  exec_run *run = p->data;
  run->exited = true;
  run->status = status;
  run->term_signal = term_signal;
  run_maybe_finish(run);
}

static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf) {
  RC__UNUSED(suggested);
  exec_run *run = h->data;
  if ((uv_pipe_t *)h == &run->out)
    *buf = uv_buf_init(run->out_chunk, sizeof run->out_chunk);
  else
    *buf = uv_buf_init(run->err_chunk, sizeof run->err_chunk);
}

/* A pipe is done: EOF, an error, or no longer wanted. */
static void pipe_done(exec_run *run, uv_stream_t *st) {
  uv_read_stop(st);
  if (st == (uv_stream_t *)&run->out) run->out_done = true;
  else run->err_done = true;
  run_maybe_finish(run);
}

static void on_read(uv_stream_t *st, ssize_t n, const uv_buf_t *buf) {
  exec_run *run = st->data;
  if (n < 0) {
    pipe_done(run, st);
    return;
  }
  if (st == (uv_stream_t *)&run->err) {
    /* Keep the end: drop the oldest half when full. */
    size_t len = (size_t)n;
    const char *p = buf->base;
    if (len >= sizeof run->tail) {
      p += len - sizeof run->tail / 2;
      len = sizeof run->tail / 2;
      run->tail_len = 0;
    } else if (run->tail_len + len > sizeof run->tail) {
      size_t keep = sizeof run->tail / 2 > len ? sizeof run->tail / 2 - len : 0;
      if (keep > run->tail_len) keep = run->tail_len;
      memmove(run->tail, run->tail + run->tail_len - keep, keep);
      run->tail_len = keep;
    }
    memcpy(run->tail + run->tail_len, p, len);
    run->tail_len += len;
    return;
  }
  if (run->stdout_buf.n + (size_t)n > run->max_bytes) {
    /* Never held beyond the limit: the command is killed and the run fails. */
    run->over_limit = true;
    run_kill(run);
    pipe_done(run, st);
    return;
  }
  rc__buf_add(&run->stdout_buf, buf->base, (size_t)n);
}

/* Kills the group and stops waiting for the pipes (a descendant that left the group
 * could hold them): the run ends once the child was reaped. */
static void run_abort(exec_run *run) {
  run_kill(run);
  uv_timer_stop(&run->timer);
  if (!run->out_done) pipe_done(run, (uv_stream_t *)&run->out);
  if (!run->err_done && !run->finished) pipe_done(run, (uv_stream_t *)&run->err);
}

static void on_timeout(uv_timer_t *t) {
  exec_run *run = t->data;
  run->timed_out = true;
  run_abort(run);
}

/* ===================================================================================
 * Spawning
 * =================================================================================== */

/* `name`'s value in the "NAME", "value", ... list, or NULL. */
static const char *pair_get(char **pairs, const char *name) {
  for (size_t i = 0; pairs && pairs[i] && pairs[i + 1]; i += 2)
    if (strcmp(pairs[i], name) == 0) return pairs[i + 1];
  return NULL;
}

static bool env_has(char **env, size_t n, const char *name, size_t nlen) {
  for (size_t i = 0; i < n; i++)
    if (strncmp(env[i], name, nlen) == 0 && env[i][nlen] == '=') return true;
  return false;
}

/* "NAME=value" (owned), or NULL out of memory. */
static char *env_entry(const char *name, const char *value) {
  size_t a = strlen(name), b = strlen(value);
  char *e = rc__malloc(a + b + 2);
  if (!e) return NULL;
  memcpy(e, name, a);
  e[a] = '=';
  memcpy(e + a + 1, value, b + 1);
  return e;
}

/* The child's environment (NULL-terminated, owned; rc__opt_list_free frees it): `env`,
 * then the `pass_env` variables the engine has, then with `inherit_env` every other
 * variable of the engine. The first entry for a name wins. NULL out of memory. */
static char **child_env(const exec_source *s) {
  size_t cap = 1, n = 0;
  for (size_t i = 0; s->env && s->env[i]; i += 2) cap++;
  for (size_t i = 0; s->pass && s->pass[i]; i++) cap++;
  if (s->inherit)
    for (char **e = environ; e && *e; e++) cap++;
  char **out = rc__calloc(cap, sizeof *out);
  if (!out) return NULL;
  bool ok = true;
  for (size_t i = 0; ok && s->env && s->env[i] && s->env[i + 1]; i += 2)
    ok = (out[n++] = env_entry(s->env[i], s->env[i + 1])) != NULL;
  for (size_t i = 0; ok && s->pass && s->pass[i]; i++) {
    const char *v = getenv(s->pass[i]);
    if (v && !env_has(out, n, s->pass[i], strlen(s->pass[i])))
      ok = (out[n++] = env_entry(s->pass[i], v)) != NULL;
  }
  for (char **e = environ; ok && s->inherit && e && *e; e++) {
    const char *eq = strchr(*e, '=');
    if (eq && !env_has(out, n, *e, (size_t)(eq - *e)))
      ok = (out[n++] = rc__strdup(*e)) != NULL;
  }
  if (!ok) {
    rc__opt_list_free(out);
    return NULL;
  }
  return out;
}

/* Whether `path` is a regular file we may execute; sets *seen when it exists. */
static bool executable(const char *path, bool *seen) {
  struct stat st;
  if (stat(path, &st) != 0) return false;
  *seen = true;
  return S_ISREG(st.st_mode) && access(path, X_OK) == 0;
}

/* The program to run, found as execvp would: a name with a slash is a path (relative to
 * cwd), a bare name is searched in PATH (an empty entry is cwd). Owned, or NULL with
 * `err` filled. */
static char *resolve(const exec_source *s, rc_error *err) {
  const char *name = s->argv[0];
  rc__buf b;
  rc__buf_init(&b);
  bool seen = false;
  if (strchr(name, '/')) {
    if (name[0] != '/') rc__buf_printf(&b, "%s/", s->cwd);
    rc__buf_adds(&b, name);
    if (!b.oom && executable(b.p, &seen)) return rc__buf_take(&b);
  } else {
    const char *path = pair_get(s->env, "PATH");
    if (!path) path = getenv("PATH");
    if (!path || !*path) path = EXEC_DEFAULT_PATH;
    for (const char *p = path;; p++) {
      const char *end = strchr(p, ':');
      size_t len = end ? (size_t)(end - p) : strlen(p);
      rc__buf_reset(&b);
      if (len == 0) rc__buf_adds(&b, s->cwd);
      else rc__buf_add(&b, p, len);
      rc__buf_printf(&b, "/%s", name);
      if (!b.oom && executable(b.p, &seen)) return rc__buf_take(&b);
      if (!end) break;
      p = end;
    }
  }
  bool oom = b.oom;
  rc__buf_free(&b);
  if (oom) rc__err(err, RC_ENOMEM, s->shown, 0, 0, "out of memory");
  else if (seen)
    rc__err(err, RC_EIO, s->shown, 0, 0, "cannot run %.200s: not an executable file",
            name);
  else if (strchr(name, '/'))
    rc__err(err, RC_EIO, s->shown, 0, 0, "cannot run %.200s: no such file", name);
  else
    rc__err(err, RC_EIO, s->shown, 0, 0, "cannot run %.200s: not found in PATH", name);
  return NULL;
}

/* A digest of what a run takes from the engine's environment: the child's environment
 * `env` and the search path a bare program name is looked up in. */
static void inputs_digest(const exec_source *s, char **env, uint8_t out[16]) {
  rc__buf b;
  rc__buf_init(&b);
  for (char **e = env; e && *e; e++) rc__buf_add(&b, *e, strlen(*e) + 1);
  const char *path = pair_get(s->env, "PATH");
  if (!path) path = getenv("PATH");
  if (!strchr(s->argv[0], '/') && path) rc__buf_adds(&b, path);
  if (b.oom) memset(out, 0, 16); /* out of memory: the caller runs again to be safe */
  else rc__digest128(b.p ? b.p : "", b.n, out);
  rc__buf_free(&b);
}

static int init_handle(exec_run *run, int rc, uv_handle_t *h, unsigned bit) {
  if (rc) return rc;
  h->data = run;
  run->inited |= bit;
  run->open++;
  rc__host_handle_opened(run->host);
  return 0;
}

/* Starts one run. 0, or an RC_E* code with `err` filled (nothing left running). */
static int run_start(exec_source *s, rc_error *err) {
  char *file = resolve(s, err);
  if (!file) return err->code;
  char **env = child_env(s);
  exec_run *run = rc__calloc(1, sizeof *run);
  if (!env || !run) {
    rc__free(file);
    rc__opt_list_free(env);
    rc__free(run);
    return rc__err(err, RC_ENOMEM, s->shown, 0, 0, "out of memory");
  }
  inputs_digest(s, env, s->inputs);
  s->have_inputs = true;
  run->host = rc__src_host(s->r.ctx);
  run->started_ns = rc__mono_ns();
  run->max_bytes = s->r.max_bytes;
  rc__buf_init(&run->stdout_buf);
  uv_loop_t *loop = rc__src_loop(s->r.ctx);
  int rc = init_handle(run, uv_pipe_init(loop, &run->out, 0), (uv_handle_t *)&run->out, 1);
  rc = init_handle(run, rc ? rc : uv_pipe_init(loop, &run->err, 0),
                   (uv_handle_t *)&run->err, 2);
  rc = init_handle(run, rc ? rc : uv_timer_init(loop, &run->timer),
                   (uv_handle_t *)&run->timer, 4);
  if (!rc) {
    uv_stdio_container_t stdio[3] = {
      {.flags = UV_IGNORE},
      {.flags = UV_CREATE_PIPE | UV_WRITABLE_PIPE, .data.stream = (uv_stream_t *)&run->out},
      {.flags = UV_CREATE_PIPE | UV_WRITABLE_PIPE, .data.stream = (uv_stream_t *)&run->err},
    };
    uv_process_options_t o = {
      .exit_cb = on_exit_cb, .file = file, .args = s->argv, .env = env, .cwd = s->cwd,
      .flags = UV_PROCESS_DETACHED, .stdio_count = 3, .stdio = stdio,
    };
    rc = uv_spawn(loop, &run->proc, &o);
    /* libuv initialises the process handle even when the spawn fails: it is closed
     * like the others. */
    init_handle(run, 0, (uv_handle_t *)&run->proc, 8);
  }
  rc__free(file);
  rc__opt_list_free(env);
  if (rc) {
    rc__err(err, RC_EIO, s->shown, 0, 0, "cannot run %.200s: %s", s->argv[0],
            uv_strerror(rc));
    run->exited = run->out_done = run->err_done = run->finished = true;
    run_close_all(run);
    return RC_EIO;
  }
  run->spawned = true;
  run->pid = run->proc.pid;
  run->s = s;
  s->run = run;
  uv_timer_start(&run->timer, on_timeout, s->r.timeout_ms, 0);
  uv_read_start((uv_stream_t *)&run->out, on_alloc, on_read);
  uv_read_start((uv_stream_t *)&run->err, on_alloc, on_read);
  return 0;
}

/* ===================================================================================
 * The source
 * =================================================================================== */

static void parsed(rc__remote *r, int rc, rc_value_t *v, const rc_error *err) {
  exec_source *s = (exec_source *)r;
  if (rc) {
    rc__remote_fail(r, err, 0);
    return;
  }
  rc__remote_success(r);
  rc__remote_deliver(r, v);
  rc__remote_schedule(r, rc__remote_splay(r, s->interval_ms));
}

/* A run ended: its output parsed and delivered, or its failure reported. */
static void report(exec_source *s, exec_run *run) {
  rc__remote *r = &s->r;
  if (r->stopping) return;
  rc_error e = {0};
  rc__buf m;
  rc__buf_init(&m);
  if (run->over_limit) {
    rc__buf_printf(&m, "%s printed more than max_bytes (%zu bytes) and was killed",
                   s->argv[0], run->max_bytes);
  } else if (run->timed_out) {
    rc__buf_printf(&m, "%s did not finish within %" PRIu32 " ms and was killed",
                   s->argv[0], r->timeout_ms);
    add_tail(&m, run);
  } else if (run->term_signal) {
    rc__buf_printf(&m, "%s was killed by signal %d (%s)", s->argv[0], run->term_signal,
                   strsignal(run->term_signal));
    add_tail(&m, run);
  } else if (run->status != 0) {
    rc__buf_printf(&m, "%s exited with status %" PRId64, s->argv[0], run->status);
    add_tail(&m, run);
  } else if (run->stdout_buf.oom) {
    rc__buf_adds(&m, "out of memory");
  } else {
    rc__buf_free(&m);
    rc__remote_parse_then(r, s->fmt, run->stdout_buf.p ? run->stdout_buf.p : "",
                          run->stdout_buf.n, s->shown, parsed);
    return;
  }
  rc__err(&e, run->over_limit ? RC_ELIMIT : run->stdout_buf.oom ? RC_ENOMEM : RC_EIO,
          s->shown, 0, 0, "%s", m.p ? m.p : "the command failed");
  rc__buf_free(&m);
  rc__remote_fail(r, &e, 0);
}

/* The remote timer: the next run (first, interval, retry). */
static void tick(rc__remote *r) {
  exec_source *s = (exec_source *)r;
  if (s->run || r->job || r->stopping) return;
  rc_error e = {0};
  if (run_start(s, &e) != 0) rc__remote_fail(r, &e, 0);
}

static int exec_start(rc__source *base, rc_error *err) {
  exec_source *s = (exec_source *)base;
  int rc = rc__remote_start(&s->r, tick, err);
  if (rc) return rc;
  rc__remote_schedule(&s->r, 0);
  return 0;
}

static void exec_stop(rc__source *base, void (*done)(rc__source *)) {
  exec_source *s = (exec_source *)base;
  exec_run *run = s->run;
  if (run) {
    /* Detached: it ends on its own once the killed child was reaped. */
    s->run = NULL;
    run->s = NULL;
    run_abort(run);
  }
  rc__remote_stop(&s->r, done);
}

/* Runs again now when idle (a reload request, or a changed environment). */
static void exec_rescan(rc__source *base) {
  exec_source *s = (exec_source *)base;
  if (!s->run && !s->r.job) rc__remote_schedule(&s->r, 0);
}

/* The engine's environment changed (rc_engine_setenv): run again only when what a run
 * takes from it changed (`pass_env`, `inherit_env`, the PATH a bare name is found in),
 * and never while the circuit is open: its probe runs at the end of the cool-down. */
static void exec_env_changed(rc__source *base) {
  exec_source *s = (exec_source *)base;
  if (s->r.circuit_open) return;
  if (s->have_inputs) {
    char **env = child_env(s);
    uint8_t now[16];
    inputs_digest(s, env, now);
    rc__opt_list_free(env);
    if (env && memcmp(now, s->inputs, sizeof now) == 0) return;
  }
  exec_rescan(base);
}

static void exec_free(rc__source *base) {
  exec_source *s = (exec_source *)base;
  rc__opt_list_free(s->argv);
  rc__opt_list_free(s->env);
  rc__opt_list_free(s->pass);
  rc__free(s->shown);
  rc__remote_free(&s->r);
  rc__free(s);
}

static rc__source *exec_create(rc__source_ctx *ctx, rc_error *err) {
  exec_source *s = rc__remote_new(sizeof *s, ctx, err);
  if (!s) return NULL;
  s->argv = rc__opt_list(ctx, "command");
  s->env = rc__opt_list(ctx, "env");
  s->pass = rc__opt_list(ctx, "pass_env");
  s->inherit = rc__opt_bool(ctx, "inherit_env", false);
  s->cwd = rc__opt_string(ctx, "cwd");
  s->fmt = rc__opt_format(ctx, RC__FMT_JSON);
  if (s->fmt == RC__FMT_AUTO) s->fmt = RC__FMT_JSON;
  s->interval_ms = (uint64_t)rc__opt_number(ctx, "interval_ms");
  if ((rc__opt(ctx, "env") && !s->env) || (rc__opt(ctx, "pass_env") && !s->pass)) {
    rc__err(err, RC_ENOMEM, NULL, 0, 0, "out of memory");
    exec_free(&s->r.base);
    return NULL;
  }
  if (!s->argv || !s->argv[0] || !s->argv[0][0] || !s->cwd || s->interval_ms < 1) {
    bool oom = rc__opt(ctx, "command") && !s->argv;
    if (oom) rc__err(err, RC_ENOMEM, NULL, 0, 0, "out of memory");
    else
      rc__src_policy_error(ctx, err, "exec source needs a command, a cwd and an interval");
    exec_free(&s->r.base);
    return NULL;
  }
  rc__buf b;
  rc__buf_init(&b);
  rc__buf_printf(&b, "exec %s", s->argv[0]);
  s->shown = rc__buf_take(&b);
  if (!s->shown) {
    rc__err(err, RC_ENOMEM, NULL, 0, 0, "out of memory");
    exec_free(&s->r.base);
    return NULL;
  }
  return &s->r.base;
}

static const rc__opt_default exec_defaults[] = {
  RC__REMOTE_DEFAULTS, {"timeout_ms", 5000}, {"interval_ms", 30000}, {NULL, 0},
};

const rc__source_kind rc__exec_kind = {
  .name = "exec", .flags = RC__SRC_REMOTE, .defaults = exec_defaults,
  RC__SOURCE_FUNCS(exec), .env_changed = exec_env_changed,
};
