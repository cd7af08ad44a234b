/* SPDX-License-Identifier: MIT (see LICENSE) */
/* sidecar.c: what `reactcfg-lua --run` does on a change besides printing it
 * (docs/SIDECAR.md): after each commit it renders the policy's outputs and writes those
 * whose bytes changed (a "wave"; one at a time, commits arriving meanwhile make one more),
 * then runs their commands and tells the --exec child (a signal, or a restart). The child
 * starts after the first wave; its exit ends the run. */
#include "sidecar.h"
#include "engine.h"

#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#define KILL_AFTER_MS 10000    /* a child asked to stop for a restart gets SIGKILL then */
#define COMMAND_TIMEOUT_MS 60000

typedef enum { CHILD_NONE, CHILD_RUNNING, CHILD_RESTARTING, CHILD_EXITED } child_state;

typedef struct command command;

struct sidecar {
  uv_loop_t *loop;
  rc_engine_t *eng;
  sidecar_host host;
  bool dry, exec_restart;
  int exec_signal;
  render *r;
  char **exec_argv;            /* --exec, or NULL */

  /* waves */
  uv_timer_t kick;             /* starts the next wave on a loop turn of its own */
  bool busy;                   /* a wave's writes or commands are in flight */
  bool pending;                /* a commit (or a reload) arrived since the wave began */
  bool reload;                 /* read the outputs again before the next wave */
  size_t jobs_left, commands_left;
  bool *changed;               /* per output of the running wave */
  char **shown;                /* --dry-run: per output, the text printed (secrets out) */
  size_t nchanged;
  bool once_waiting;           /* --once: finished() after the next quiet moment */
  int failures;

  /* the --exec child */
  uv_process_t child;
  child_state child_state;
  bool child_open;             /* the handle is initialized and not yet closed */
  bool child_stopping;         /* a stop signal was passed on: its exit ends the run */
  int child_status;
  uv_timer_t kill_timer;

  command *commands;           /* running, or closing */
  bool closing;
};

struct command {
  uv_process_t proc;
  uv_timer_t timer;
  sidecar *sc;
  char *label, *words;
  int open;                    /* handles not yet closed */
  command *next;
};

/* ---- events ---- */

static void emit(sidecar *sc, const char *name, bool bad, const char *label,
                 const char *file, const char *text, const char *fmt, ...) RC__PRINTF(7, 8);

static void emit(sidecar *sc, const char *name, bool bad, const char *label,
                 const char *file, const char *text, const char *fmt, ...) {
  char msg[1024];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(msg, sizeof msg, fmt, ap);
  va_end(ap);
  cli_event ev = {.name = name, .bad = bad, .key = label ? "output" : NULL, .label = label,
                  .file = file, .message = msg, .text = text};
  if (sc->host.event) sc->host.event(sc->host.ud, &ev);
}

/* The words of argv as one line, for messages. */
static void words_of(char **argv, char *out, size_t n) {
  size_t used = 0;
  out[0] = '\0';
  for (char **a = argv; a && *a && used < n; a++)
    used += (size_t)snprintf(out + used, n - used, "%s%s", a == argv ? "" : " ", *a);
}

static int status_of(int64_t exit_status, int term_signal) {
  return term_signal ? 128 + term_signal : (int)exit_status;
}

/* ---- the --exec child ---- */

static void child_start(sidecar *sc);

static void child_closed(uv_handle_t *h) {
  sidecar *sc = h->data;
  sc->child_open = false;
  /* A restart starts the new child only once the old handle is gone. */
  if (sc->child_state == CHILD_RESTARTING && !sc->closing) child_start(sc);
}

static void child_exited(uv_process_t *p, int64_t exit_status, int term_signal) {
  sidecar *sc = p->data;
  uv_timer_stop(&sc->kill_timer);
  int status = status_of(exit_status, term_signal);
  if (sc->child_state == CHILD_RESTARTING && !sc->child_stopping && !sc->closing) {
    emit(sc, "exec.restarting", false, NULL, NULL, NULL,
         "%s (pid %d) exited with status %d; starting it again", sc->exec_argv[0],
         p->pid, status);
    uv_close((uv_handle_t *)p, child_closed);
    return;
  }
  sc->child_state = CHILD_EXITED;
  sc->child_status = status;
  emit(sc, "exec.exited", !sc->child_stopping && status != 0, NULL, NULL, NULL,
       "%s (pid %d) exited with status %d", sc->exec_argv[0], p->pid, status);
  uv_close((uv_handle_t *)p, child_closed);
  if (sc->host.finished) sc->host.finished(sc->host.ud);
}

static void child_start(sidecar *sc) {
  uv_stdio_container_t stdio[3] = {{.flags = UV_INHERIT_FD, .data.fd = 0},
                                   {.flags = UV_INHERIT_FD, .data.fd = 1},
                                   {.flags = UV_INHERIT_FD, .data.fd = 2}};
  /* Its own session: a Ctrl-C in the terminal reaches it once, passed on by us. */
  uv_process_options_t opt = {.exit_cb = child_exited, .file = sc->exec_argv[0],
                              .args = sc->exec_argv, .stdio = stdio, .stdio_count = 3,
                              .flags = UV_PROCESS_DETACHED};
  bool again = sc->child_state == CHILD_RESTARTING;
  sc->child.data = sc;
  int rc = uv_spawn(sc->loop, &sc->child, &opt);
  if (rc != 0) {
    /* uv_spawn initialized the handle even when it failed: it must be closed. */
    uv_close((uv_handle_t *)&sc->child, NULL);
    sc->child_state = CHILD_EXITED;
    sc->child_status = 127;
    sc->failures++;
    emit(sc, "exec.error", true, NULL, NULL, NULL, "cannot start %s: %s", sc->exec_argv[0],
         uv_strerror(rc));
    if (sc->host.finished) sc->host.finished(sc->host.ud);
    return;
  }
  sc->child_open = true;
  sc->child_state = CHILD_RUNNING;
  char line[1024];
  words_of(sc->exec_argv, line, sizeof line);
  emit(sc, again ? "exec.restarted" : "exec.started", false, NULL, NULL, NULL,
       "%s (pid %d)", line, sc->child.pid);
}

static void kill_now(uv_timer_t *t) {
  sidecar *sc = t->data;
  if (sc->child_state == CHILD_RESTARTING && sc->child_open) {
    emit(sc, "exec.killed", true, NULL, NULL, NULL,
         "%s did not stop within %d s of SIGTERM: sent SIGKILL", sc->exec_argv[0],
         KILL_AFTER_MS / 1000);
    uv_process_kill(&sc->child, SIGKILL);
  }
}

/* Tells the running child about a change: `action` is a signal or RENDER_RESTART. */
static void child_notify(sidecar *sc, int action) {
  if (sc->child_state != CHILD_RUNNING) return;
  if (action == RENDER_RESTART) {
    sc->child_state = CHILD_RESTARTING;
    uv_process_kill(&sc->child, SIGTERM);
    uv_timer_start(&sc->kill_timer, kill_now, KILL_AFTER_MS, 0);
    return;
  }
  int rc = uv_process_kill(&sc->child, action);
  const char *abbrev = sigabbrev_np(action);
  emit(sc, "exec.signaled", rc != 0, NULL, NULL, NULL, "%s SIG%s to %s (pid %d)%s%s",
       rc ? "could not send" : "sent", abbrev ? abbrev : "?", sc->exec_argv[0],
       sc->child.pid, rc ? ": " : "", rc ? uv_strerror(rc) : "");
}

bool sidecar_signal(sidecar *sc, int signum) {
  if (!sc || (sc->child_state != CHILD_RUNNING && sc->child_state != CHILD_RESTARTING))
    return false;
  sc->child_stopping = true;
  if (sc->child_open) uv_process_kill(&sc->child, signum);
  return true;
}

int sidecar_child_status(const sidecar *sc) {
  return sc && sc->child_state == CHILD_EXITED ? sc->child_status : -1;
}

/* ---- commands of outputs ---- */

static void wave_done(sidecar *sc);

static void command_closed(uv_handle_t *h) {
  command *c = h->data;
  if (--c->open > 0) return;
  sidecar *sc = c->sc;
  for (command **p = &sc->commands; *p; p = &(*p)->next)
    if (*p == c) {
      *p = c->next;
      break;
    }
  rc__free(c->label);
  rc__free(c->words);
  rc__free(c);
}

static void command_end(command *c) {
  uv_timer_stop(&c->timer);
  if (!uv_is_closing((uv_handle_t *)&c->timer)) uv_close((uv_handle_t *)&c->timer, command_closed);
  if (!uv_is_closing((uv_handle_t *)&c->proc)) uv_close((uv_handle_t *)&c->proc, command_closed);
}

static void command_exited(uv_process_t *p, int64_t exit_status, int term_signal) {
  command *c = p->data;
  sidecar *sc = c->sc;
  int status = status_of(exit_status, term_signal);
  if (status != 0) sc->failures++;
  emit(sc, status ? "command.failed" : "command.finished", status != 0, c->label, NULL,
       NULL, "%s: exit status %d", c->words, status);
  command_end(c);
  if (sc->commands_left > 0 && --sc->commands_left == 0) wave_done(sc);
}

static void command_timeout(uv_timer_t *t) {
  command *c = t->data;
  emit(c->sc, "command.killed", true, c->label, NULL, NULL,
       "%s ran longer than %d s: sent SIGKILL", c->words, COMMAND_TIMEOUT_MS / 1000);
  uv_process_kill(&c->proc, SIGKILL);
}

/* Runs `argv` without a shell: no stdin, its output on our stderr (our stdout carries
 * --run's lines). Returns whether it started; the wave waits for it. */
static bool command_start(sidecar *sc, const render_output *o) {
  command *c = rc__calloc(1, sizeof *c);
  char words[1024];
  words_of(o->argv, words, sizeof words);
  if (!c || !(c->label = rc__strdup(o->name)) || !(c->words = rc__strdup(words))) {
    if (c) rc__free(c->label);
    rc__free(c);
    sc->failures++;
    emit(sc, "command.failed", true, o->name, NULL, NULL, "%s: out of memory", words);
    return false;
  }
  c->sc = sc;
  uv_stdio_container_t stdio[3] = {{.flags = UV_IGNORE},
                                   {.flags = UV_INHERIT_FD, .data.fd = 2},
                                   {.flags = UV_INHERIT_FD, .data.fd = 2}};
  uv_process_options_t opt = {.exit_cb = command_exited, .file = o->argv[0],
                              .args = o->argv, .stdio = stdio, .stdio_count = 3};
  c->proc.data = c->timer.data = c;
  uv_timer_init(sc->loop, &c->timer);
  c->open = 2;
  c->next = sc->commands;
  sc->commands = c;
  int rc = uv_spawn(sc->loop, &c->proc, &opt);
  if (rc != 0) {
    sc->failures++;
    emit(sc, "command.failed", true, o->name, NULL, NULL, "%s: cannot start: %s", words,
         uv_strerror(rc));
    command_end(c);
    return false;
  }
  uv_timer_start(&c->timer, command_timeout, COMMAND_TIMEOUT_MS, 0);
  return true;
}

/* ---- waves ---- */

static void start_wave(sidecar *sc);

static void on_kick(uv_timer_t *t) {
  sidecar *sc = t->data;
  if (sc->busy || sc->closing) return;
  if (!sc->pending) {
    if (sc->once_waiting) {
      sc->once_waiting = false;
      if (sc->host.finished) sc->host.finished(sc->host.ud);
    }
    return;
  }
  sc->pending = false;
  if (sc->reload) {
    sc->reload = false;
    rc_error err = {0};
    if (render_load(sc->r, &err) != 0) {
      sc->failures++;
      emit(sc, "output.error", true, NULL, err.file, NULL,
           "the reloaded policy's outputs cannot be read (the previous ones stay): %s",
           err.message);
    }
  }
  start_wave(sc);
}

static void kick(sidecar *sc) {
  if (!sc->closing) uv_timer_start(&sc->kick, on_kick, 0, 0);
}

static void wave_done(sidecar *sc) {
  sc->busy = false;
  kick(sc); /* the next wave if a commit came meanwhile, or --once's end */
}

/* Every write of the wave is done: commands of changed outputs, then the child. */
static void wave_written(sidecar *sc) {
  bool any = false, restart = false;
  int sigs[8];
  size_t nsigs = 0;
  int fallback = sc->exec_restart ? RENDER_RESTART : sc->exec_signal;
  for (size_t i = 0; i < sc->nchanged; i++) {
    const render_output *o = render_get(sc->r, i);
    if (!sc->changed[i] || !o) continue;
    any = true;
    if (o->argv && !sc->dry && command_start(sc, o)) sc->commands_left++;
    int action = o->signal ? o->signal : fallback;
    if (action == RENDER_RESTART) {
      restart = true;
    } else if (action > 0) {
      bool seen = false;
      for (size_t k = 0; k < nsigs; k++) seen = seen || sigs[k] == action;
      if (!seen && nsigs < sizeof sigs / sizeof *sigs) sigs[nsigs++] = action;
    }
  }
  if (sc->exec_argv && !sc->dry) {
    if (sc->child_state == CHILD_NONE) {
      child_start(sc);
    } else if (render_count(sc->r) == 0) {
      child_notify(sc, fallback);              /* no outputs: every commit counts */
    } else if (any) {
      if (restart) child_notify(sc, RENDER_RESTART);
      for (size_t k = 0; k < nsigs && !restart; k++) child_notify(sc, sigs[k]);
    }
  }
  if (sc->commands_left == 0) wave_done(sc);
}

static void written(atomic_job *job) {
  sidecar *sc = job->ud;
  const render_output *o = render_get(sc->r, job->index);
  const char *name = o ? o->name : "?";
  if (sc->closing) {
    atomic_job_free(job);
    return;
  }
  if (job->code) {
    sc->failures++;
    emit(sc, "output.error", true, name, job->target[0] ? job->target : job->path, NULL,
         "%s", job->message);
  } else if (sc->dry) {
    char cmd[600] = "";
    if (job->changed && o && o->argv) {
      char words[500];
      words_of(o->argv, words, sizeof words);
      snprintf(cmd, sizeof cmd, "; would run: %s", words);
    }
    const char *shown = sc->shown && sc->shown[job->index] ? sc->shown[job->index] : "";
    emit(sc, "output.rendered", false, name, job->target, shown, "%zu bytes, %s%s",
         job->len, job->changed ? "would change the file" : "the same as the file", cmd);
    sc->changed[job->index] = job->changed;
  } else if (job->changed) {
    emit(sc, "output.written", false, name, job->target, NULL, "%zu bytes", job->len);
    sc->changed[job->index] = true;
  }
  atomic_job_free(job);
  if (--sc->jobs_left == 0) wave_written(sc);
}

static void shown_free(sidecar *sc) {
  for (size_t i = 0; sc->shown && i < sc->nchanged; i++) rc__free(sc->shown[i]);
  rc__free(sc->shown);
  sc->shown = NULL;
}

/* Renders every output on the committed snapshot and queues the writes (--dry-run: the
 * comparisons; the text it prints is rendered again with the secrets left out, while
 * the comparison uses the real bytes). */
static void start_wave(sidecar *sc) {
  sc->busy = true;
  size_t n = render_count(sc->r);
  shown_free(sc);
  rc__free(sc->changed);
  sc->changed = rc__calloc(n ? n : 1, sizeof *sc->changed);
  sc->nchanged = sc->changed ? n : 0;
  if (sc->dry) sc->shown = rc__calloc(n ? n : 1, sizeof *sc->shown);
  sc->jobs_left = sc->commands_left = 0;
  rc_snapshot_t *snap = rc_snapshot_acquire(sc->eng);
  const rc_value_t *root = snap ? snap->root : NULL;
  rc_value_t *redacted = sc->dry && root ? render_redacted(sc->eng, root) : NULL;
  size_t queued = 0;
  for (size_t i = 0; i < sc->nchanged; i++) {
    const render_output *o = render_get(sc->r, i);
    char *text = NULL;
    size_t len = 0;
    rc_error err = {0};
    if (render_run(sc->r, i, root, &text, &len, &err) != 0) {
      sc->failures++;
      emit(sc, "output.error", true, o->name, err.file[0] ? err.file : NULL, NULL,
           "cannot render: %s", err.message);
      continue;
    }
    if (sc->shown) {
      size_t shown_len;
      if (!redacted || render_run(sc->r, i, redacted, &sc->shown[i], &shown_len, &err) != 0)
        sc->shown[i] = rc__strdup("(cannot show it without its secrets)\n");
    }
    atomic_job *job = atomic_job_new(o->path, text, len, o->mode, sc->dry);
    rc__free(text);
    if (job) {
      job->ud = sc;
      job->index = i;
    }
    if (!job || atomic_job_queue(sc->loop, job, written) != 0) {
      atomic_job_free(job);
      sc->failures++;
      emit(sc, "output.error", true, o->name, o->path, NULL, "cannot queue the write");
      continue;
    }
    queued++;
  }
  rc__value_unref(redacted);
  rc_snapshot_release(snap);
  sc->jobs_left = queued;
  if (queued == 0) wave_written(sc);
}

void sidecar_commit(sidecar *sc) {
  if (!sc) return;
  sc->pending = true;
  if (!sc->busy) kick(sc);
}

void sidecar_policy_reloaded(sidecar *sc) {
  if (!sc) return;
  sc->reload = true;
  sidecar_commit(sc);
}

void sidecar_once(sidecar *sc) {
  if (!sc) return;
  sc->once_waiting = true;
  sidecar_commit(sc);
}

int sidecar_failures(const sidecar *sc) { return sc ? sc->failures : 0; }

/* ---- life ---- */

char **sidecar_split_words(const char *cmd, rc_error *err) {
  size_t cap = 8, n = 0;
  char **argv = rc__calloc(cap, sizeof *argv);
  bool oom = argv == NULL;
  rc__buf w;
  rc__buf_init(&w);
  const char *p = cmd;
  while (!oom) {
    while (*p == ' ' || *p == '\t') p++;
    if (!*p) break;
    char quote = 0;
    rc__buf_reset(&w);
    for (; *p && (quote || (*p != ' ' && *p != '\t')); p++) {
      if (quote && *p == quote)
        quote = 0;
      else if (!quote && (*p == '\'' || *p == '"'))
        quote = *p;
      else if (*p == '\\' && quote != '\'' && p[1])
        rc__buf_addc(&w, *++p);
      else
        rc__buf_addc(&w, *p);
    }
    if (quote) {
      rc__err(err, RC_EINVAL, NULL, 0, 0, "--exec: the %c quote is never closed", quote);
      argv_free(argv);
      rc__buf_free(&w);
      return NULL;
    }
    if (n + 2 > cap) {
      char **bigger = rc__realloc(argv, cap * 2 * sizeof *argv);
      if (!bigger) {
        oom = true;
        break;
      }
      argv = bigger;
      cap *= 2;
    }
    argv[n] = w.oom ? NULL : rc__strndup(w.p ? w.p : "", w.n);
    oom = argv[n] == NULL;
    if (!oom) argv[++n] = NULL;
  }
  rc__buf_free(&w);
  if (oom) {
    argv_free(argv);
    rc__err(err, RC_ENOMEM, NULL, 0, 0, "out of memory");
    return NULL;
  }
  if (n == 0) {
    argv_free(argv);
    rc__err(err, RC_EINVAL, NULL, 0, 0, "--exec needs a command");
    return NULL;
  }
  return argv;
}

void argv_free(char **argv) {
  for (char **a = argv; a && *a; a++) rc__free(*a);
  rc__free(argv);
}

sidecar *sidecar_new(uv_loop_t *loop, rc_engine_t *eng, const char *policy,
                     const cli_run_opts *o, const sidecar_host *host, rc_error *err) {
  sidecar *sc = rc__calloc(1, sizeof *sc);
  if (!sc) {
    rc__err(err, RC_ENOMEM, NULL, 0, 0, "out of memory");
    return NULL;
  }
  sc->loop = loop;
  sc->eng = eng;
  sc->host = *host;
  sc->dry = o->dry_run;
  sc->exec_restart = o->exec_restart;
  sc->exec_signal = o->exec_signal ? o->exec_signal : SIGHUP;
  sc->child_status = -1;
  if (o->exec && !(sc->exec_argv = sidecar_split_words(o->exec, err))) {
    rc__free(sc);
    return NULL;
  }
  if (!(sc->r = render_new(eng, policy, err))) {
    argv_free(sc->exec_argv);
    rc__free(sc);
    return NULL;
  }
  uv_timer_init(loop, &sc->kick);
  uv_timer_init(loop, &sc->kill_timer);
  sc->kick.data = sc->kill_timer.data = sc;
  return sc;
}

void sidecar_close(sidecar *sc) {
  if (!sc || sc->closing) return;
  sc->closing = true;
  uv_close((uv_handle_t *)&sc->kick, NULL);
  uv_close((uv_handle_t *)&sc->kill_timer, NULL);
  if (sc->child_open && !uv_is_closing((uv_handle_t *)&sc->child)) {
    /* Only when the run ends for another reason than the child: it must not outlive us. */
    if (sc->child_state == CHILD_RUNNING || sc->child_state == CHILD_RESTARTING)
      uv_process_kill(&sc->child, SIGTERM);
    uv_close((uv_handle_t *)&sc->child, child_closed);
  }
  for (command *c = sc->commands; c; c = c->next) command_end(c);
}

void sidecar_free(sidecar *sc) {
  if (!sc) return;
  render_free(sc->r);
  argv_free(sc->exec_argv);
  shown_free(sc);
  rc__free(sc->changed);
  rc__free(sc);
}
