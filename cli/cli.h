/* SPDX-License-Identifier: MIT (see LICENSE) */
/* cli.h: the parts of reactcfg-lua shared between its files. */
#ifndef RC_CLI_H
#define RC_CLI_H

#include "internal.h"
#include "reactcfg.h"

#include <stdbool.h>

/* The --help text (generated at build time from cli/reactcfg-lua.txt, like the man page
 * and the bash completion: scripts/gen-cli-docs). */
extern const char cli_usage[];

/* Formats an rc_error as "FILE:LINE: message" (or "FILE: message"). */
void cli_format_error(const rc_error *err, const char *fallback_file, char *out, size_t n);
/* --dump FILE [--format F] [--tagged]: prints FILE parsed, as JSON. Exit code. */
int cli_dump(const char *path, const char *format, bool tagged);
/* What `--run` was asked to do besides running the engine (main.c parses it). */
typedef struct cli_run_opts {
  bool json;               /* --json: one JSON object per line */
  bool cloudevents;        /* --cloudevents (with --json): each as a CloudEvents 1.0 event */
  const char *record;      /* --record FILE, or NULL */
  bool record_secrets;     /* --record-secrets */
  bool once;               /* --once: the first revision (and its outputs), then exit */
  bool dry_run;            /* --dry-run: render outputs to stdout, write and run nothing */
  const char *exec;        /* --exec "CMD ARGS": the child to supervise, or NULL */
  int exec_signal;         /* --exec-signal: what the child gets on a change (SIGHUP) */
  bool exec_restart;       /* --exec-restart: restart the child instead */
  const char *admin;       /* --admin ADDR: the admin endpoint's address, or NULL */
  int log_level;           /* --log-level: CLI_LOG_*; -1: info for people, debug in JSON */
} cli_run_opts;
/* How much --run prints besides commits: failures only, warnings too, what happens
 * (the default for people), and each reload's and module's start and end. */
enum { CLI_LOG_ERROR, CLI_LOG_WARN, CLI_LOG_INFO, CLI_LOG_DEBUG };
/* The level named `name` ("error", "warn", "info", "debug"), or -1. */
int cli_log_level(const char *name);
/* --run POLICY: runs the engine until SIGINT/SIGTERM (or --once's end, or the --exec
 * child's exit); SIGHUP re-reads every source (a reload with the trigger "signal").
 * Returns the exit code. */
int cli_run(const char *policy, const cli_run_opts *o);

/* One line of --run's output about something that happened, from the engine or from
 * the sidecar (sidecar.h). People's form: "* name [label] file:line:col: message" ('!'
 * for a failure); JSON: {"event", "time_ns", key: label, "message", "file", "line",
 * "column", "code", "text", "reload": {"id", "trigger", "module", "revision", "changes",
 * "duration_us"}}, absent fields left out. Strings are borrowed for the call. */
typedef struct cli_event {
  const char *name;        /* "source.error", "output.written", ... */
  bool bad;                /* a failure */
  const char *key;         /* what the label names in JSON: "component", "output"; NULL */
  const char *label;       /* NULL or "": none */
  const char *file;        /* NULL or "": none */
  int line, column;        /* 0: none */
  const char *code;        /* "EPARSE", or NULL */
  const char *message;
  const char *text;        /* rendered text (--dry-run), printed after people's line */
  uint64_t reload_id;      /* the engine's reload events: 0 or "" when absent */
  const char *trigger, *module;
  uint64_t revision, duration_us;
  size_t changes;
} cli_event;

/* Where --run's lines go (stdout, flushed per line) and in which form (output.c). */
typedef struct cli_output {
  bool json, cloudevents;
  char *source;            /* CloudEvents `source`: reactcfg://HOST/POLICY-PATH */
  char id_prefix[64];      /* CloudEvents ids: "<start ms>-<pid>-<count>" */
  uint64_t seq;
} cli_output;
/* Sets `out` up for `o`'s form; `policy` names the CloudEvents source. 0, or -1 out of
 * memory. cli_output_free frees what it holds. */
int cli_output_init(cli_output *out, const cli_run_opts *o, const char *policy);
void cli_output_free(cli_output *out);
/* Prints an event in the output's form. */
void cli_output_event(cli_output *out, const cli_event *ev);
/* Prints `body`, one JSON object, as it is or (--cloudevents) as the data of an event of
 * type "io.reactcfg.<type>" with `subject` (NULL: none); empties `body`. */
void cli_output_json(cli_output *out, const char *type, const char *subject, rc__buf *body);

/* Appends "file:line:column: ", or "file:line: " when the column is unknown (0), to b:
 * the position of an event or an error for people. */
void cli_add_position(rc__buf *b, const char *file, int line, int column);
/* Prints `line` (people's form) and empties it. */
void cli_output_text(rc__buf *line);
/* Appends `s` as a JSON string (b->oom set when out of memory). */
void cli_json_str(rc__buf *b, const char *s);

/* Lua mode (no arguments, -i, -e CODE, SCRIPT [ARGS], -): the REPL or a script run on a
 * plain Lua state with `rc` and `cjson`. argv as main's. Returns the exit code. */
int cli_lua(int argc, char **argv);
/* `reactcfg-lua attach ADDR [-e CODE]... [--json]` (argv[1] is "attach"): the REPL on a
running process's admin endpoint (attach.c, through repl.c). Returns the exit code. */
int cli_attach(int argc, char **argv);
/* `reactcfg-lua test FILE...` and `reactcfg-lua replay FILE POLICY [--compare OTHER]`
 * (argv[1] is the command), run by reactcfg.sim in a Lua state like cli_lua's. */
int cli_sim(int argc, char **argv);

#endif
