/* SPDX-License-Identifier: MIT (see LICENSE) */
/* sidecar.h: the parts of `reactcfg-lua --run` that act on a change for an application
 * that is not C (docs/SIDECAR.md): rendering the policy's outputs (render.c), writing
 * them atomically (atomic.c), running their commands and supervising the --exec child
 * (sidecar.c). Private to the CLI; loop thread only unless a comment says otherwise. */
#ifndef RC_CLI_SIDECAR_H
#define RC_CLI_SIDECAR_H

#include "cli.h"
#include "internal.h"
#include "value.h"

#include <limits.h>
#include <uv.h>

/* ---- render.c: the outputs of the policy and their templates ---- */

#define RENDER_RESTART (-1)   /* an output's `signal = "restart"` */
#define RENDER_NO_SIGNAL (-2) /* `signal = false` */

typedef struct render_output {
  char *name;
  char *path;                 /* absolute (the loader resolved it) */
  char *template_path;        /* the template file, or NULL when `text` is given */
  char *text;                 /* the inline template, or NULL */
  size_t text_len;
  int mode;                   /* permissions of a new file, -1: 0644 */
  char **argv;                /* `command`, NULL-terminated, or NULL */
  int signal;                 /* 0: the --exec default; a SIG* number; RENDER_* */
  int line;                   /* where the policy declares it */
} render_output;

typedef struct render render;
/* Reads the outputs of `policy` (loaded in `eng` already) into a Lua state of its own.
 * NULL with `err` filled ("policy:line: message") when they cannot be read. */
render *render_new(rc_engine_t *eng, const char *policy, rc_error *err);
/* Reads the policy's outputs again (after a reload); on failure the old list stays. */
int render_load(render *r, rc_error *err);
void render_free(render *r);
size_t render_count(const render *r);
const render_output *render_get(const render *r, size_t i);
/* Renders output `i` on the configuration `root`: `*out` (owned, rc__free) and `*len`.
 * Reads the template file each time. RC_EPOLICY with "file:line: message" in `err` when
 * the template fails (the time budget included), RC_EIO when it cannot be read. Runs Lua. */
int render_run(render *r, size_t i, const rc_value_t *root, char **out, size_t *len,
               rc_error *err);
/* `root` with every secret scalar replaced by "<redacted>", the shape kept (what
 * --dry-run renders, since it prints the text). A new reference; NULL on OOM. */
rc_value_t *render_redacted(const rc_engine_t *eng, const rc_value_t *root);
/* "HUP", "SIGUSR1", "restart" as a signal number or RENDER_RESTART; 0 if unknown. */
int render_signal_number(const char *name);

/* ---- atomic.c: compare, then write atomically, on the thread pool ---- */

typedef struct atomic_job {
  uv_work_t req;
  /* in: copies owned by the job */
  char *path, *data;
  size_t len;
  int mode;                   /* of a new file; -1: 0644 */
  bool dry;                   /* compare only */
  /* out, read in the done callback */
  bool changed;               /* the bytes differ (and, unless dry, were written) */
  int code;                   /* 0 or RC_E* */
  char message[700];
  char target[PATH_MAX];      /* the file written (a symlink's target) */
  void (*done)(struct atomic_job *job);
  void *ud;
  size_t index;
} atomic_job;
atomic_job *atomic_job_new(const char *path, const char *data, size_t len, int mode,
                           bool dry);
/* Queues the job; `done` runs on the loop thread afterwards (and frees it, or not). */
int atomic_job_queue(uv_loop_t *loop, atomic_job *job, void (*done)(atomic_job *job));
void atomic_job_free(atomic_job *job);

/* ---- sidecar.c: render waves, commands, the --exec child ---- */

typedef struct sidecar sidecar;
/* What the sidecar tells `--run`. */
typedef struct sidecar_host {
  void (*event)(void *ud, const cli_event *ev);
  /* --once: every render, write and command is done; or the --exec child has exited
   * (and is not being restarted). --run stops the engine then. */
  void (*finished)(void *ud);
  void *ud;
} sidecar_host;

/* NULL with `err` filled when the outputs cannot be read or --exec cannot be parsed. */
sidecar *sidecar_new(uv_loop_t *loop, rc_engine_t *eng, const char *policy,
                     const cli_run_opts *o, const sidecar_host *host, rc_error *err);
/* A revision was committed: render (waves coalesce; one runs at a time). */
void sidecar_commit(sidecar *sc);
/* The policy was reloaded: read its outputs again, then render. */
void sidecar_policy_reloaded(sidecar *sc);
/* --once: calls host->finished once the first render and its commands are done. */
void sidecar_once(sidecar *sc);
/* SIGINT/SIGTERM arrived: passes it to the --exec child. True when a child took it: the
 * host waits for the child's exit (host->finished) before it stops. */
bool sidecar_signal(sidecar *sc, int signum);
/* Closes every handle (the loop runs their close callbacks); processes keep running. */
void sidecar_close(sidecar *sc);
/* After the loop has finished. NULL ok. */
void sidecar_free(sidecar *sc);
/* Failures so far: renders, writes, commands. */
int sidecar_failures(const sidecar *sc);
/* The --exec child's exit status (128 + signal when a signal ended it), or -1. */
int sidecar_child_status(const sidecar *sc);
/* Splits --exec's "CMD ARGS" into words (spaces separate; '...' and "..." group; a
 * backslash escapes the next character). NULL-terminated, owned (argv_free); NULL with
 * a message in `err` when a quote is not closed or there is no word. */
char **sidecar_split_words(const char *cmd, rc_error *err);
void argv_free(char **argv);

#endif
