/* SPDX-License-Identifier: MIT (see LICENSE) */
/* output.c: the lines `reactcfg-lua --run` prints: for people, one JSON object per line
 * (--json), or each of those objects as the data of a CloudEvents 1.0 event in structured
 * JSON mode (--json --cloudevents). All three forms are contracts scripts read. */
#include "cli.h"
#include "internal.h"
#include "value.h"

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

void cli_json_str(rc__buf *b, const char *s) {
  rc_value_t *v = rc__value_string(s, strlen(s));
  if (!v) {
    b->oom = 1;
    return;
  }
  rc__json_write(b, v, false, false);
  rc__value_unref(v);
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

/* Appends `s` percent-encoded where a URI path may not hold it as is (RFC 3986). */
static void uri_path(rc__buf *b, const char *s) {
  for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
    if ((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') ||
        strchr("/-._~!$&'()*+,;=:@", *p))
      rc__buf_addc(b, (char)*p);
    else
      rc__buf_printf(b, "%%%02X", *p);
  }
}

int cli_output_init(cli_output *out, const cli_run_opts *o, const char *policy) {
  memset(out, 0, sizeof *out);
  out->json = o->json;
  out->cloudevents = o->cloudevents;
  if (!out->cloudevents) return 0;
  /* source: reactcfg://HOST/ABSOLUTE-POLICY-PATH, one per running policy, so that
   * (source, id) is unique across the machines of a fleet. */
  char host[256] = "localhost", abs[PATH_MAX];
  if (gethostname(host, sizeof host - 1) != 0) strcpy(host, "localhost");
  host[sizeof host - 1] = '\0';
  rc__buf b;
  rc__buf_init(&b);
  rc__buf_adds(&b, "reactcfg://");
  uri_path(&b, host);
  const char *path = realpath(policy, abs) ? abs : policy;
  if (path[0] != '/') rc__buf_addc(&b, '/');
  uri_path(&b, path);
  rc__buf_addc(&b, '\0');
  if (b.oom) {
    rc__buf_free(&b);
    return -1;
  }
  out->source = b.p;
  /* ids: this run's start and pid, then a count; never reused by a later run. */
  snprintf(out->id_prefix, sizeof out->id_prefix, "%lld-%ld",
           (long long)(rc__real_ns() / 1000000), (long)getpid());
  return 0;
}

void cli_output_free(cli_output *out) {
  free(out->source);
  out->source = NULL;
}

/* RFC 3339 in UTC with microseconds: 2026-12-06T07:31:02.123456Z. */
static void rfc3339(rc__buf *b, int64_t ns) {
  time_t s = (time_t)(ns / 1000000000);
  struct tm tm;
  gmtime_r(&s, &tm);
  rc__buf_printf(b, "%04d-%02d-%02dT%02d:%02d:%02d.%06dZ", tm.tm_year + 1900, tm.tm_mon + 1,
                 tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
                 (int)((ns % 1000000000) / 1000));
}

void cli_add_position(rc__buf *b, const char *file, int line, int column) {
  if (column > 0) rc__buf_printf(b, "%s:%d:%d: ", file, line, column);
  else rc__buf_printf(b, "%s:%d: ", file, line);
}

void cli_output_json(cli_output *out, const char *type, const char *subject, rc__buf *body) {
  if (!out->cloudevents) {
    emit_line(body);
    return;
  }
  rc__buf b;
  rc__buf_init(&b);
  rc__buf_printf(&b, "{\"specversion\":\"1.0\",\"id\":\"%s-%llu\",\"source\":", out->id_prefix,
                 (unsigned long long)++out->seq);
  cli_json_str(&b, out->source);
  rc__buf_adds(&b, ",\"type\":");
  char t[128];
  snprintf(t, sizeof t, "io.reactcfg.%s", type);
  cli_json_str(&b, t);
  if (subject && subject[0]) {
    rc__buf_adds(&b, ",\"subject\":");
    cli_json_str(&b, subject);
  }
  rc__buf_adds(&b, ",\"time\":\"");
  rfc3339(&b, rc__real_ns());
  rc__buf_adds(&b, "\",\"datacontenttype\":\"application/json\",\"data\":");
  rc__buf_add(&b, body->p, body->n);
  rc__buf_addc(&b, '}');
  if (body->oom) b.oom = 1;
  emit_line(&b);
  rc__buf_free(&b);
  rc__buf_reset(body);
}

static bool about_component(const cli_event *ev) {
  return !ev->key || strcmp(ev->key, "component") == 0;
}

/* "reload": {"id", "trigger", "module", "revision", "changes", "duration_us"}: nested, so
 * that a top-level "revision" still means a commit line. */
static void reload_fields(rc__buf *b, const cli_event *ev) {
  rc__buf_printf(b, ",\"reload\":{\"id\":%llu", (unsigned long long)ev->reload_id);
  if (ev->trigger && ev->trigger[0]) {
    rc__buf_adds(b, ",\"trigger\":");
    cli_json_str(b, ev->trigger);
  }
  if (ev->module && ev->module[0]) {
    rc__buf_adds(b, ",\"module\":");
    cli_json_str(b, ev->module);
  }
  if (ev->revision) rc__buf_printf(b, ",\"revision\":%llu", (unsigned long long)ev->revision);
  rc__buf_printf(b, ",\"changes\":%zu", ev->changes);
  if (ev->duration_us)
    rc__buf_printf(b, ",\"duration_us\":%llu", (unsigned long long)ev->duration_us);
  rc__buf_addc(b, '}');
}

void cli_output_event(cli_output *out, const cli_event *ev) {
  rc__buf b;
  rc__buf_init(&b);
  bool label = ev->label && ev->label[0], file = ev->file && ev->file[0];
  if (out->json) {
    rc__buf_adds(&b, "{\"event\":");
    cli_json_str(&b, ev->name);
    rc__buf_printf(&b, ",\"time_ns\":%lld", (long long)rc__real_ns());
    if (label) {
      rc__buf_printf(&b, ",\"%s\":", ev->key ? ev->key : "component");
      cli_json_str(&b, ev->label);
    }
    rc__buf_adds(&b, ",\"message\":");
    cli_json_str(&b, ev->message);
    if (file) {
      rc__buf_adds(&b, ",\"file\":");
      cli_json_str(&b, ev->file);
    }
    if (ev->line) rc__buf_printf(&b, ",\"line\":%d", ev->line);
    if (ev->column) rc__buf_printf(&b, ",\"column\":%d", ev->column);
    if (ev->code) rc__buf_printf(&b, ",\"code\":\"%s\"", ev->code);
    if (ev->text) {
      rc__buf_adds(&b, ",\"text\":");
      cli_json_str(&b, ev->text);
    }
    if (ev->reload_id) reload_fields(&b, ev);
    rc__buf_addc(&b, '}');
    cli_output_json(out, ev->name, label ? ev->label : (ev->module ? ev->module : NULL), &b);
  } else {
    rc__buf_printf(&b, "%s %s", ev->bad ? "!" : "*", ev->name);
    if (label) rc__buf_printf(&b, " [%s]", ev->label);
    rc__buf_addc(&b, ' ');
    if (file && ev->line)
      cli_add_position(&b, ev->file, ev->line, ev->column);
    else if (file && !about_component(ev))
      rc__buf_printf(&b, "%s: ", ev->file); /* the engine's print no file without a line */
    rc__buf_adds(&b, ev->message);
    if (ev->text) {
      rc__buf_printf(&b, "\n%s", ev->text);
      if (!ev->text[0] || ev->text[strlen(ev->text) - 1] != '\n') rc__buf_addc(&b, '\n');
      rc__buf_printf(&b, "==> end of %s", ev->label ? ev->label : "output");
    }
    emit_line(&b);
  }
  rc__buf_free(&b);
}

void cli_output_text(rc__buf *line) { emit_line(line); }
