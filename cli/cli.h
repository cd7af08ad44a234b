/* cli.h: the parts of reactcfg-lua shared between its files. */
#ifndef RC_CLI_H
#define RC_CLI_H

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
  const char *record;      /* --record FILE, or NULL */
  bool record_secrets;     /* --record-secrets */
  bool once;               /* --once: the first revision (and its outputs), then exit */
  bool dry_run;            /* --dry-run: render outputs to stdout, write and run nothing */
  const char *exec;        /* --exec "CMD ARGS": the child to supervise, or NULL */
  int exec_signal;         /* --exec-signal: what the child gets on a change (SIGHUP) */
  bool exec_restart;       /* --exec-restart: restart the child instead */
} cli_run_opts;
/* --run POLICY: runs the engine until SIGINT/SIGTERM (or --once's end, or the --exec
 * child's exit). Returns the exit code. */
int cli_run(const char *policy, const cli_run_opts *o);

/* One line of --run's output about something that happened, from the engine or from
 * the sidecar (sidecar.h). People's form: "* name [label] file:line:col: message" ('!'
 * for a failure); JSON: {"event", "time_ns", key: label, "message", "file", "line",
 * "column", "code", "text"}, absent fields left out. */
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
} cli_event;
void cli_print_event(bool json, const cli_event *ev);

/* Lua mode (no arguments, -i, -e CODE, SCRIPT [ARGS], -): the REPL or a script run on a
 * plain Lua state with `rc` and `cjson`. argv as main's. Returns the exit code. */
int cli_lua(int argc, char **argv);
/* `reactcfg-lua test FILE...` and `reactcfg-lua replay FILE POLICY [--compare OTHER]`
 * (argv[1] is the command), run by reactcfg.sim in a Lua state like cli_lua's. */
int cli_sim(int argc, char **argv);

#endif
