/* run.c: `reactcfg-lua --run [--json] POLICY`: runs the engine on this thread's libuv
 * loop and prints each commit and event as it happens, in a form for people or, with
 * --json, one JSON object per line for programs. SIGINT/SIGTERM stop it cleanly. */
#include "cli.h"
#include "engine.h"
#include "internal.h"
#include "value.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <uv.h>

typedef struct run_ctx {
  rc_engine_t *eng;
  bool json;
  uv_signal_t sigint, sigterm;
  int exit_code;
  FILE *record;          /* --record: every source event as one JSON line */
  bool record_secrets;   /* --record-secrets: secret values too */
} run_ctx;

/* Appends `s` as a JSON string. */
static void json_str(rc__buf *b, const char *s) {
  rc_value_t *v = rc__value_string(s, strlen(s));
  if (!v) {
    b->oom = 1;
    return;
  }
  rc__json_write(b, v, false, false);
  rc__value_unref(v);
}

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

static void emit_line(rc__buf *b) {
  if (b->oom) {
    fputs("reactcfg-lua: out of memory formatting output\n", stderr);
  } else {
    fwrite(b->p, 1, b->n, stdout);
    fputc('\n', stdout);
  }
  fflush(stdout);
  rc__buf_reset(b);
}

static void on_commit(void *ud, const rc_snapshot_t *snap, const rc_change_t *ch, size_t n) {
  run_ctx *ctx = ud;
  rc__buf b;
  rc__buf_init(&b);
  if (ctx->json) {
    rc__buf_printf(&b, "{\"revision\":%llu,\"time_ns\":%lld,\"changes\":[",
                   (unsigned long long)rc_snapshot_revision(snap),
                   (long long)rc_snapshot_time_ns(snap));
    for (size_t i = 0; i < n; i++) {
      rc__buf_adds(&b, i ? ",{\"path\":" : "{\"path\":");
      json_str(&b, ch[i].path);
      rc__buf_printf(&b, ",\"kind\":\"%s\",\"old\":", rc_change_kind_name(ch[i].kind));
      change_val(&b, ctx, &ch[i], ch[i].old_value);
      rc__buf_adds(&b, ",\"new\":");
      change_val(&b, ctx, &ch[i], ch[i].new_value);
      if (ch[i].secret) rc__buf_adds(&b, ",\"secret\":true");
      rc__buf_addc(&b, '}');
    }
    rc__buf_adds(&b, "]}");
    emit_line(&b);
  } else {
    rc__buf_printf(&b, "[rev %llu] %zu %s", (unsigned long long)rc_snapshot_revision(snap), n,
                   n == 1 ? "change" : "changes");
    emit_line(&b);
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
      emit_line(&b);
    }
  }
  rc__buf_free(&b);
}

static void on_event(void *ud, const rc_event_t *ev) {
  run_ctx *ctx = ud;
  if (ev->type == RC_EVENT_COMMIT) return; /* printed by on_commit, with its changes */
  rc__buf b;
  rc__buf_init(&b);
  if (ctx->json) {
    rc__buf_adds(&b, "{\"event\":");
    json_str(&b, ev->name);
    rc__buf_printf(&b, ",\"time_ns\":%lld", (long long)rc__real_ns());
    if (ev->component[0]) {
      rc__buf_adds(&b, ",\"component\":");
      json_str(&b, ev->component);
    }
    rc__buf_adds(&b, ",\"message\":");
    json_str(&b, ev->message);
    if (ev->file[0]) {
      rc__buf_adds(&b, ",\"file\":");
      json_str(&b, ev->file);
    }
    if (ev->line) rc__buf_printf(&b, ",\"line\":%d", ev->line);
    if (ev->column) rc__buf_printf(&b, ",\"column\":%d", ev->column);
    if (ev->code) rc__buf_printf(&b, ",\"code\":\"%s\"", rc_err_name(ev->code));
    rc__buf_addc(&b, '}');
  } else {
    bool bad = ev->type == RC_EVENT_SOURCE_ERROR || ev->type == RC_EVENT_POLICY_ERROR ||
               ev->type == RC_EVENT_REJECTED || ev->type == RC_EVENT_RESTART_REQUIRED;
    rc__buf_printf(&b, "%s %s", bad ? "!" : "*", ev->name);
    if (ev->component[0]) rc__buf_printf(&b, " [%s]", ev->component);
    rc__buf_addc(&b, ' ');
    if (ev->file[0] && ev->line)
      rc__buf_printf(&b, "%s:%d:%d: ", ev->file, ev->line, ev->column);
    rc__buf_adds(&b, ev->message);
  }
  emit_line(&b);
  rc__buf_free(&b);
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
  json_str(&b, c->name);
  if (ctx->eng->initial) rc__buf_adds(&b, ",\"initial\":true");
  if (err) {
    rc__buf_adds(&b, ",\"error\":");
    json_str(&b, err->message);
  } else if (!v) {
    rc__buf_adds(&b, ",\"absent\":true");
  } else if ((c->secret_all || c->nsecret) && !ctx->record_secrets) {
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

static void on_signal(uv_signal_t *s, int signum) {
  run_ctx *ctx = s->data;
  RC__UNUSED(signum);
  rc_engine_stop(ctx->eng);
  uv_close((uv_handle_t *)&ctx->sigint, NULL);
  uv_close((uv_handle_t *)&ctx->sigterm, NULL);
}

int cli_run(const char *policy, bool json, const char *record, bool record_secrets) {
  run_ctx ctx = {.json = json, .record_secrets = record_secrets};
  if (record) {
    ctx.record = fopen(record, "w");
    if (!ctx.record) {
      fprintf(stderr, "reactcfg-lua: cannot write %s: %s\n", record, strerror(errno));
      return 1;
    }
    fprintf(ctx.record, "{\"reactcfg_recording\":1,\"policy\":");
    fflush(ctx.record);
  }
  rc_error err = {0};
  char msg[1024];
  ctx.eng = rc_engine_new(&err);
  if (!ctx.eng) {
    fprintf(stderr, "reactcfg-lua: %s\n", err.message);
    if (ctx.record) fclose(ctx.record);
    return 1;
  }
  if (rc_engine_load_policy(ctx.eng, policy, &err) != 0) {
    cli_format_error(&err, policy, msg, sizeof msg);
    fprintf(stderr, "%s\n", msg);
    rc_engine_free(ctx.eng);
    if (ctx.record) fclose(ctx.record);
    return 1;
  }
  if (ctx.record) {
    rc__buf h;
    rc__buf_init(&h);
    json_str(&h, policy);
    fprintf(ctx.record, "%.*s}\n", (int)h.n, h.p ? h.p : "");
    rc__buf_free(&h);
    ctx.eng->record_fn = on_record;
    ctx.eng->record_ud = &ctx;
  }
  rc_engine_on_event(ctx.eng, on_event, &ctx);
  rc_subscribe(ctx.eng, "**", on_commit, &ctx, NULL);
  /* The loop and the signal watches need descriptors (epoll, an eventfd, the signal
   * pipe): with few left (ulimit -n), say so and stop rather than run on a loop that
   * was never made (libuv's calls on it end in a double free or an abort). */
  uv_loop_t loop;
  int uvrc = rc__fds_free(RC__LOOP_FDS) < RC__LOOP_FDS ? UV_EMFILE : uv_loop_init(&loop);
  if (uvrc) {
    fprintf(stderr, "reactcfg-lua: cannot start the event loop: %s (%s)\n",
            uv_strerror(uvrc), uv_err_name(uvrc));
    rc_engine_free(ctx.eng);
    if (ctx.record) fclose(ctx.record);
    return 1;
  }
  int sig_int = uv_signal_init(&loop, &ctx.sigint);
  int sig_term = sig_int ? sig_int : uv_signal_init(&loop, &ctx.sigterm);
  if (!sig_int && !sig_term) {
    ctx.sigint.data = ctx.sigterm.data = &ctx;
    sig_int = uv_signal_start(&ctx.sigint, on_signal, SIGINT);
    sig_term = uv_signal_start(&ctx.sigterm, on_signal, SIGTERM);
  }
  if (sig_int || sig_term) {
    int e = sig_int ? sig_int : sig_term;
    fprintf(stderr, "reactcfg-lua: cannot watch SIGINT and SIGTERM: %s (%s)\n",
            uv_strerror(e), uv_err_name(e));
    ctx.exit_code = 1;
  } else if (rc_engine_attach(ctx.eng, &loop, &err) != 0) {
    cli_format_error(&err, policy, msg, sizeof msg);
    fprintf(stderr, "%s\n", msg);
    ctx.exit_code = 1;
  }
  if (ctx.exit_code) {
    rc__loop_close_all(&loop);   /* the signal watches that were made */
  }
  uv_run(&loop, UV_RUN_DEFAULT);
  rc_engine_free(ctx.eng);
  rc__loop_close_all(&loop); /* our loop: nothing may keep it from closing */
  while (uv_loop_close(&loop) == UV_EBUSY) uv_run(&loop, UV_RUN_NOWAIT);
  if (ctx.record) fclose(ctx.record);
  return ctx.exit_code;
}
