/* SPDX-License-Identifier: MIT (see LICENSE) */
/* run.c: `reactcfg-lua --run [--json] POLICY`: runs the engine on this thread's libuv
 * loop and prints each commit and event as it happens, in a form for people or, with
 * --json, one JSON object per line for programs (both forms are a contract: scripts read
 * them; --cloudevents wraps each JSON object as a CloudEvents 1.0 event). SIGINT/SIGTERM
 * stop it cleanly, however many arrive; SIGHUP re-reads every source. With outputs, --once,
 * --dry-run or --exec it drives the sidecar (sidecar.c) after each commit. */
#include "cli.h"
#include "engine.h"
#include "internal.h"
#include "sidecar.h"
#include "value.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/signalfd.h>
#include <unistd.h>
#include <uv.h>

typedef struct run_ctx {
  rc_engine_t *eng;
  cli_run_opts o;
  uv_loop_t loop;
  int sigfd;             /* SIGINT, SIGTERM, SIGHUP: blocked, read from a signalfd */
  uv_poll_t sigpoll;
  bool started;          /* attach returned: the engine may be stopped */
  bool stop_asked;       /* a signal came while it was starting */
  bool stopping;
  int exit_code;
  FILE *record;          /* --record: every source event as one JSON line */
  cli_output out;        /* how lines are printed */
  sidecar *sc;
  rc_admin_t *admin;     /* --admin */
  rc__buf failures;      /* --once: one line per failure, listed at the end */
  int nfailures;
} run_ctx;

static void json_val(rc__buf *b, const rc_value_t *v) {
  if (v)
    rc__json_write(b, v, false, false);
  else
    rc__buf_adds(b, "null");
}

/* A change's value, with its secret parts redacted. */
static void change_val(rc__buf *b, const run_ctx *ctx, const rc_change_t *ch,
                       const rc_value_t *v) {
  if (!ch->secret || !v) {
    json_val(b, v);
    return;
  }
  rc_value_t *r = rc__redact(ctx->eng, ch->path, v);
  if (!r) {
    b->oom = 1;
    return;
  }
  json_val(b, r);
  rc__value_unref(r);
}

static void on_commit(void *ud, const rc_snapshot_t *snap, const rc_change_t *ch, size_t n) {
  run_ctx *ctx = ud;
  rc__buf b;
  rc__buf_init(&b);
  if (ctx->o.json) {
    rc__buf_printf(&b, "{\"revision\":%llu,\"time_ns\":%lld,\"changes\":[",
                   (unsigned long long)rc_snapshot_revision(snap),
                   (long long)rc_snapshot_time_ns(snap));
    for (size_t i = 0; i < n; i++) {
      rc__buf_adds(&b, i ? ",{\"path\":" : "{\"path\":");
      cli_json_str(&b, ch[i].path);
      rc__buf_printf(&b, ",\"kind\":\"%s\",\"old\":", rc_change_kind_name(ch[i].kind));
      change_val(&b, ctx, &ch[i], ch[i].old_value);
      rc__buf_adds(&b, ",\"new\":");
      change_val(&b, ctx, &ch[i], ch[i].new_value);
      if (ch[i].secret) rc__buf_adds(&b, ",\"secret\":true");
      rc__buf_addc(&b, '}');
    }
    rc__buf_adds(&b, "]}");
    cli_output_json(&ctx->out, "commit", NULL, &b);
  } else {
    rc__buf_printf(&b, "[rev %llu] %zu %s", (unsigned long long)rc_snapshot_revision(snap), n,
                   n == 1 ? "change" : "changes");
    cli_output_text(&b);
    for (size_t i = 0; i < n; i++) {
      rc__buf_printf(&b, "  %-9s %s", rc_change_kind_name(ch[i].kind), ch[i].path);
      switch (ch[i].kind) {
        case RC_CHANGE_ADDED:
          rc__buf_adds(&b, " = ");
          change_val(&b, ctx, &ch[i], ch[i].new_value);
          break;
        case RC_CHANGE_REMOVED:
          rc__buf_adds(&b, " (was ");
          change_val(&b, ctx, &ch[i], ch[i].old_value);
          rc__buf_addc(&b, ')');
          break;
        case RC_CHANGE_MODIFIED:
          rc__buf_adds(&b, ": ");
          change_val(&b, ctx, &ch[i], ch[i].old_value);
          rc__buf_adds(&b, " -> ");
          change_val(&b, ctx, &ch[i], ch[i].new_value);
          break;
        case RC_CHANGE_TOUCHED:
          rc__buf_adds(&b, " (unchanged, forced) = ");
          change_val(&b, ctx, &ch[i], ch[i].new_value);
          break;
      }
      cli_output_text(&b);
    }
  }
  rc__buf_free(&b);
  sidecar_commit(ctx->sc);
}

static bool about_component(const cli_event *ev) {
  return !ev->key || strcmp(ev->key, "component") == 0;
}

/* --once lists what failed at the end, one line each:
 * "  settings: file:line:col: message (source.error)". */
static void note_failure(run_ctx *ctx, const cli_event *ev) {
  if (!ctx->o.once || !ev->bad) return;
  ctx->nfailures++;
  rc__buf *f = &ctx->failures;
  if (ev->label && ev->label[0])
    rc__buf_printf(f, "  %s%s: ", about_component(ev) ? "" : "output ", ev->label);
  else
    rc__buf_adds(f, "  ");
  if (ev->file && ev->file[0] && ev->line)
    cli_add_position(f, ev->file, ev->line, ev->column);
  else if (ev->file && ev->file[0] && !about_component(ev))
    rc__buf_printf(f, "%s: ", ev->file);
  rc__buf_printf(f, "%s (%s)\n", ev->message, ev->name);
}

/* A reload's and a module's start and end are debug lines: people see a reload through
 * its commit line, and only its failures get lines of their own by default (JSON gets
 * every event by default). */
static bool debug_event(rc_event_type_t t) {
  return t == RC_EVENT_RELOAD_STARTED || t == RC_EVENT_RELOAD_COMPLETED ||
         t == RC_EVENT_MODULE_STARTED || t == RC_EVENT_MODULE_COMPLETED;
}

static bool bad_event(rc_event_type_t t) {
  switch (t) {
    case RC_EVENT_SOURCE_ERROR: case RC_EVENT_POLICY_ERROR: case RC_EVENT_REJECTED:
    case RC_EVENT_RESTART_REQUIRED: case RC_EVENT_MODULE_FAILED: case RC_EVENT_RELOAD_FAILED:
    case RC_EVENT_RELOAD_ROLLEDBACK:
      return true;
    default:
      return false;
  }
}

/* The --log-level an event line needs to be printed. */
static int event_level(rc_event_type_t t) {
  if (t == RC_EVENT_RESTART_REQUIRED) return CLI_LOG_WARN; /* the value waits, no harm */
  if (bad_event(t)) return CLI_LOG_ERROR;
  return debug_event(t) ? CLI_LOG_DEBUG : CLI_LOG_INFO;
}

/* Whether a line of `level` is printed. */
static bool shown(const run_ctx *ctx, int level) {
  int max = ctx->o.log_level >= 0 ? ctx->o.log_level
                                  : ctx->o.json ? CLI_LOG_DEBUG : CLI_LOG_INFO;
  return level <= max;
}

static void on_event(void *ud, const rc_event_t *ev) {
  run_ctx *ctx = ud;
  if (ev->type == RC_EVENT_COMMIT) return; /* printed by on_commit, with its changes */
  if (ev->type == RC_EVENT_POLICY_RELOADED) sidecar_policy_reloaded(ctx->sc);
  bool print = shown(ctx, event_level(ev->type));
  if (!print && !ctx->o.once) return;
  cli_event ce = {.name = ev->name, .bad = bad_event(ev->type), .key = "component",
                  .label = ev->component, .file = ev->file, .line = ev->line,
                  .column = ev->column, .code = ev->code ? rc_err_name(ev->code) : NULL,
                  .message = ev->message, .reload_id = ev->reload_id,
                  .trigger = ev->trigger, .module = ev->module, .duration_us = ev->duration_us,
                  .revision = ev->type == RC_EVENT_RELOAD_COMPLETED ||
                                      ev->type == RC_EVENT_PINNED
                                  ? ev->revision
                                  : 0,
                  .changes = ev->changes};
  if (print) cli_output_event(&ctx->out, &ce);
  /* restart.required is a warning for --once: the value is there, only not applied. */
  if (ev->type != RC_EVENT_RESTART_REQUIRED) note_failure(ctx, &ce);
}

/* The sidecar's events print like the engine's. */
static void on_sidecar_event(void *ud, const cli_event *ev) {
  run_ctx *ctx = ud;
  if (shown(ctx, ev->bad ? CLI_LOG_ERROR : CLI_LOG_INFO)) cli_output_event(&ctx->out, ev);
  note_failure(ctx, ev);
}

/* --record: one line per source event, { t (ms since start), component, value |
 * absent | error | secret }, flushed at once so a killed run keeps what it saw. A secret
 * component's value is left out unless --record-secrets. */
static void on_record(void *ud, rc__component *c, const rc_value_t *v, const rc_error *err) {
  run_ctx *ctx = ud;
  rc__buf b;
  rc__buf_init(&b);
  rc__buf_printf(&b, "{\"t\":%llu,\"component\":",
                 (unsigned long long)(rc__now(ctx->eng) - ctx->eng->epoch_ms));
  cli_json_str(&b, c->name);
  if (ctx->eng->initial) rc__buf_adds(&b, ",\"initial\":true");
  if (err) {
    rc__buf_adds(&b, ",\"error\":");
    cli_json_str(&b, err->message);
  } else if (!v) {
    rc__buf_adds(&b, ",\"absent\":true");
  } else if ((c->secret_all || c->nsecret) && !ctx->o.record_secrets) {
    rc__buf_adds(&b, ",\"secret\":true");
  } else {
    rc__buf_adds(&b, ",\"value\":");
    rc__json_write(&b, v, false, false);
  }
  rc__buf_addc(&b, '}');
  if (!b.oom) {
    fwrite(b.p, 1, b.n, ctx->record);
    fputc('\n', ctx->record);
    fflush(ctx->record);
  }
  rc__buf_free(&b);
}

/* ---- stopping, and the signals that ask for it ---- */

/* Stops the engine and the sidecar; the loop then runs out. Idempotent. */
static void run_stop(run_ctx *ctx) {
  if (ctx->stopping) return;
  ctx->stopping = true;
  rc_engine_stop(ctx->eng);
  sidecar_close(ctx->sc);
}

/* The sidecar is done (--once), or the --exec child has exited. */
static void on_finished(void *ud) { run_stop(ud); }

/* SIGHUP re-reads every source now (a reload with the trigger "signal"), also with an
 * --exec child: it is the sidecar's to signal the child when the configuration changes.
 * SIGINT or SIGTERM: before start has returned it is noted (the engine cannot stop yet);
 * with an --exec child running it goes to the child, whose exit ends the run. */
static void on_signal(run_ctx *ctx, int signum) {
  if (signum == SIGHUP) {
    if (ctx->started && !ctx->stopping) rc__reload_request(ctx->eng, NULL, 0, "signal");
    return;
  }
  if (!ctx->started) {
    ctx->stop_asked = true;
    return;
  }
  if (sidecar_signal(ctx->sc, signum)) return;
  run_stop(ctx);
}

static void on_sigfd(uv_poll_t *p, int status, int events) {
  run_ctx *ctx = p->data;
  RC__UNUSED(status);
  RC__UNUSED(events);
  struct signalfd_siginfo si;
  while (read(ctx->sigfd, &si, sizeof si) == (ssize_t)sizeof si) on_signal(ctx, (int)si.ssi_signo);
}

/* SIGINT and SIGTERM are blocked in every thread (threads made later inherit the mask)
 * and read from a signalfd on the loop. A signal can then never take its default
 * action: with libuv's signal handles, closing the last one gave SIGINT back its default,
 * and a second Ctrl-C during shutdown killed the process (status 130). Children started
 * by libuv get an empty mask. Returns 0 or -1. */
static int signals_open(run_ctx *ctx) {
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGINT);
  sigaddset(&set, SIGTERM);
  sigaddset(&set, SIGHUP);
  if (pthread_sigmask(SIG_BLOCK, &set, NULL) != 0) return -1;
  /* A shell starts background commands with SIGINT ignored, and an ignored signal never
   * reaches the signalfd; blocked, the default action cannot run. */
  signal(SIGINT, SIG_DFL);
  signal(SIGTERM, SIG_DFL);
  signal(SIGHUP, SIG_DFL);
  ctx->sigfd = signalfd(-1, &set, SFD_NONBLOCK | SFD_CLOEXEC);
  if (ctx->sigfd < 0) return -1;
  if (uv_poll_init(&ctx->loop, &ctx->sigpoll, ctx->sigfd) != 0) {
    close(ctx->sigfd);
    ctx->sigfd = -1;
    return -1;
  }
  ctx->sigpoll.data = ctx;
  uv_poll_start(&ctx->sigpoll, UV_READABLE, on_sigfd);
  uv_unref((uv_handle_t *)&ctx->sigpoll); /* the loop ends when the engine has stopped */
  return 0;
}

/* ---- the run ---- */

/* Loads the policy, starts the engine and the sidecar. 0, or the exit code. */
static int start(run_ctx *ctx, const char *policy) {
  rc_error err = {0};
  char msg[1024];
  ctx->eng = rc_engine_new(&err);
  if (!ctx->eng) {
    fprintf(stderr, "reactcfg-lua: %s\n", err.message);
    return 1;
  }
  /* With --admin, /explain (attach's explain()) has the last 16 revisions' decisions. */
  if (ctx->o.admin) rc_engine_trace(ctx->eng, 16);
  /* Before the load: what the policy prints while it loads is an event like the rest. */
  rc_engine_on_event(ctx->eng, on_event, ctx);
  if (rc_engine_load_policy(ctx->eng, policy, &err) != 0) {
    cli_format_error(&err, policy, msg, sizeof msg);
    fprintf(stderr, "%s\n", msg);
    return 1;
  }
  sidecar_host host = {.event = on_sidecar_event, .finished = on_finished, .ud = ctx};
  ctx->sc = sidecar_new(&ctx->loop, ctx->eng, policy, &ctx->o, &host, &err);
  if (!ctx->sc) {
    cli_format_error(&err, policy, msg, sizeof msg);
    fprintf(stderr, "%s\n", msg);
    return 1;
  }
  if (ctx->record) {
    rc__buf h;
    rc__buf_init(&h);
    cli_json_str(&h, policy);
    fprintf(ctx->record, "%.*s}\n", (int)h.n, h.p ? h.p : "");
    rc__buf_free(&h);
    ctx->eng->record_fn = on_record;
    ctx->eng->record_ud = ctx;
  }
  rc_subscribe(ctx->eng, "**", on_commit, ctx, NULL);
  int rc = rc_engine_attach(ctx->eng, &ctx->loop, &err);
  ctx->started = true;
  if (rc != 0) {
    cli_format_error(&err, policy, msg, sizeof msg);
    fprintf(stderr, "%s\n", msg);
    if (ctx->o.once) {
      ctx->nfailures++;
      rc__buf_printf(&ctx->failures, "  %s\n", msg);
    }
    run_stop(ctx);
    return 1;
  }
  if (ctx->o.admin) {
    /* The token from the environment, never from the command line (ps shows that). */
    rc_admin_opts ao = {.token = getenv("REACTCFG_ADMIN_TOKEN")};
    ctx->admin = rc_admin_start(ctx->eng, ctx->o.admin, &ao, &err);
    if (!ctx->admin) {
      fprintf(stderr, "reactcfg-lua: --admin: %s\n", err.message);
      run_stop(ctx);
      return 1;
    }
    fprintf(stderr, "reactcfg-lua: admin endpoint on %s\n", rc_admin_address(ctx->admin));
  }
  if (ctx->stop_asked)
    run_stop(ctx);
  else if (ctx->o.once)
    sidecar_once(ctx->sc);
  return 0;
}

int cli_run(const char *policy, const cli_run_opts *o) {
  run_ctx ctx = {.o = *o, .sigfd = -1};
  rc__buf_init(&ctx.failures);
  if (o->record) {
    ctx.record = fopen(o->record, "w");
    if (!ctx.record) {
      fprintf(stderr, "reactcfg-lua: cannot write %s: %s\n", o->record, strerror(errno));
      return 1;
    }
    fprintf(ctx.record, "{\"reactcfg_recording\":1,\"policy\":");
    fflush(ctx.record);
  }
  /* The loop and the signal watch need descriptors (epoll, an eventfd, the signalfd):
   * with few left (ulimit -n), say so and stop rather than run on a loop that was never
   * made (libuv's calls on it end in a double free or an abort). */
  int uvrc = rc__fds_free(RC__LOOP_FDS) < RC__LOOP_FDS ? UV_EMFILE : uv_loop_init(&ctx.loop);
  if (uvrc) {
    fprintf(stderr, "reactcfg-lua: cannot start the event loop: %s (%s)\n",
            uv_strerror(uvrc), uv_err_name(uvrc));
    if (ctx.record) fclose(ctx.record);
    return 1;
  }
  if (signals_open(&ctx) != 0) {
    fprintf(stderr, "reactcfg-lua: cannot watch SIGINT, SIGTERM and SIGHUP: %s\n",
            strerror(errno));
    rc__loop_close_all(&ctx.loop);
    while (uv_loop_close(&ctx.loop) == UV_EBUSY) uv_run(&ctx.loop, UV_RUN_NOWAIT);
    if (ctx.record) fclose(ctx.record);
    return 1;
  }
  if (cli_output_init(&ctx.out, o, policy) != 0) {
    fputs("reactcfg-lua: out of memory\n", stderr);
    ctx.exit_code = 1;
  } else {
    ctx.exit_code = start(&ctx, policy);
  }
  if (ctx.exit_code == 0 || ctx.started) uv_run(&ctx.loop, UV_RUN_DEFAULT);
  /* The engine has stopped: the endpoint's threads wait on nothing, joining them is safe. */
  rc_admin_free(ctx.admin);
  sidecar_close(ctx.sc);
  if (!uv_is_closing((uv_handle_t *)&ctx.sigpoll)) uv_close((uv_handle_t *)&ctx.sigpoll, NULL);
  rc_engine_free(ctx.eng);
  rc__loop_close_all(&ctx.loop); /* our loop: nothing may keep it from closing */
  while (uv_loop_close(&ctx.loop) == UV_EBUSY) uv_run(&ctx.loop, UV_RUN_NOWAIT);
  close(ctx.sigfd);
  int child = sidecar_child_status(ctx.sc);
  sidecar_free(ctx.sc);
  if (ctx.record) fclose(ctx.record);
  if (child >= 0 && ctx.exit_code == 0) ctx.exit_code = child;
  if (o->once && ctx.nfailures > 0) {
    fprintf(stderr, "reactcfg-lua: --once failed: %d %s:\n%.*s", ctx.nfailures,
            ctx.nfailures == 1 ? "problem" : "problems", (int)ctx.failures.n,
            ctx.failures.p ? ctx.failures.p : "");
    if (ctx.exit_code == 0) ctx.exit_code = 1;
  }
  rc__buf_free(&ctx.failures);
  cli_output_free(&ctx.out);
  return ctx.exit_code;
}
