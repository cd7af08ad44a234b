/* SPDX-License-Identifier: MIT (see LICENSE) */
/* main.c: reactcfg-lua's entry point: parses the command line and dispatches to
 * --version, --check, --run, --dump, the scenario runner and replay (`test`, `replay`),
 * or to Lua mode (the REPL, -e, scripts; repl.c). */
#include "cli.h"
#include "sidecar.h"

#include <stdio.h>
#include <string.h>

void cli_format_error(const rc_error *err, const char *fallback_file, char *out, size_t n) {
  const char *file = err->file[0] ? err->file : fallback_file;
  if (file && err->line > 0)
    snprintf(out, n, "%s:%d: %s", file, err->line, err->message);
  else if (file && strncmp(err->message, file, strlen(file)) != 0)
    snprintf(out, n, "%s: %s", file, err->message);
  else
    snprintf(out, n, "%s", err->message);
}

int cli_log_level(const char *name) {
  static const char *const NAMES[] = {"error", "warn", "info", "debug"};
  for (int i = 0; i < 4; i++)
    if (strcmp(name, NAMES[i]) == 0) return i;
  return -1;
}

static int check(const char *policy) {
  rc_error err = {0};
  rc_engine_t *eng = rc_engine_new(&err);
  if (!eng) {
    fprintf(stderr, "reactcfg-lua: %s\n", err.message);
    return 1;
  }
  int rc = rc_engine_load_policy(eng, policy, &err);
  rc_engine_free(eng);
  if (rc) {
    char msg[1024];
    cli_format_error(&err, policy, msg, sizeof msg);
    fprintf(stderr, "%s\n", msg);
    return 1;
  }
  printf("%s: ok\n", policy);
  return 0;
}

/* Lua mode when there are no arguments, or the first is -i, -e, '-', or a file name and
 * no option of the other modes follows (those keep their meaning anywhere). */
static bool lua_mode(int argc, char **argv) {
  if (argc < 2) return true;
  const char *first = argv[1];
  if (!strcmp(first, "-i") || !strcmp(first, "-e") || !strcmp(first, "-")) return true;
  if (first[0] == '-') return false;
  for (int i = 2; i < argc; i++) {
    const char *a = argv[i];
    if (!strcmp(a, "--check") || !strcmp(a, "--run") || !strcmp(a, "--dump") ||
        !strcmp(a, "--record") || !strcmp(a, "--admin"))
      return false;
  }
  return true;
}

/* Takes the value of option argv[*i] ("--exec CMD"); NULL (after a message) when none. */
static const char *value_of(int argc, char **argv, int *i, const char *what) {
  if (*i + 1 >= argc) {
    fprintf(stderr, "reactcfg-lua: %s needs %s\n", argv[*i], what);
    return NULL;
  }
  return argv[++*i];
}

int main(int argc, char **argv) {
  if (argc >= 2 && (!strcmp(argv[1], "test") || !strcmp(argv[1], "replay")))
    return cli_sim(argc, argv);
  if (argc >= 2 && !strcmp(argv[1], "attach")) return cli_attach(argc, argv);
  /* `run POLICY ...` is `--run POLICY ...`. */
  bool run_command = argc >= 2 && !strcmp(argv[1], "run");
  if (!run_command && lua_mode(argc, argv)) return cli_lua(argc, argv);
  bool tagged = false;
  cli_run_opts ro = {.log_level = -1};
  const char *mode = run_command ? "--run" : NULL, *policy = NULL, *format = NULL,
             *exec_signal = NULL;
  for (int i = run_command ? 2 : 1; i < argc; i++) {
    const char *a = argv[i];
    if (!strcmp(a, "--version")) {
      printf("reactcfg-lua %s\n", rc_version());
      return 0;
    } else if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
      fputs(cli_usage, stdout);
      return 0;
    } else if (!strcmp(a, "--json")) {
      ro.json = true;
    } else if (!strcmp(a, "--cloudevents")) {
      ro.json = ro.cloudevents = true; /* CloudEvents in JSON structured mode */
    } else if (!strcmp(a, "--tagged")) {
      tagged = true;
    } else if (!strcmp(a, "--record-secrets")) {
      ro.record_secrets = true;
    } else if (!strcmp(a, "--once")) {
      ro.once = true;
    } else if (!strcmp(a, "--dry-run")) {
      ro.dry_run = true;
    } else if (!strcmp(a, "--exec-restart")) {
      ro.exec_restart = true;
    } else if (!strcmp(a, "--admin")) {
      if (!(ro.admin = value_of(argc, argv, &i, "an address (HOST:PORT or unix:/PATH)")))
        return 2;
    } else if (!strcmp(a, "--record")) {
      if (!(ro.record = value_of(argc, argv, &i, "a file name"))) return 2;
    } else if (!strcmp(a, "--exec")) {
      if (!(ro.exec = value_of(argc, argv, &i, "a command (\"CMD ARGS\")"))) return 2;
    } else if (!strcmp(a, "--exec-signal")) {
      if (!(exec_signal = value_of(argc, argv, &i, "a signal name (HUP, USR1, ...)"))) return 2;
    } else if (!strcmp(a, "--log-level")) {
      const char *level = value_of(argc, argv, &i, "a level (error, warn, info, debug)");
      if (!level) return 2;
      if ((ro.log_level = cli_log_level(level)) < 0) {
        fprintf(stderr, "reactcfg-lua: --log-level: unknown level '%s' (error, warn, info, "
                        "debug)\n", level);
        return 2;
      }
    } else if (!strcmp(a, "--format")) {
      if (!(format = value_of(argc, argv, &i, "a format name"))) return 2;
    } else if (!strcmp(a, "--check") || !strcmp(a, "--run") || !strcmp(a, "--dump")) {
      if (mode && !(run_command && !strcmp(a, "--run"))) {
        fprintf(stderr, "reactcfg-lua: %s and %s cannot be combined\n", mode, a);
        return 2;
      }
      mode = a;
    } else if (a[0] == '-' && a[1]) {
      fprintf(stderr, "reactcfg-lua: unknown option '%s'\n%s", a, cli_usage);
      return 2;
    } else if (!policy) {
      policy = a;
    } else {
      fprintf(stderr, "reactcfg-lua: unexpected argument '%s'\n%s", a, cli_usage);
      return 2;
    }
  }
  if (!mode) {
    fprintf(stderr, "reactcfg-lua: which mode? use --check, --run or --dump\n%s", cli_usage);
    return 2;
  }
  if (!policy) {
    fprintf(stderr, "reactcfg-lua: %s needs a %s\n%s", mode,
            strcmp(mode, "--dump") ? "POLICY file" : "FILE", cli_usage);
    return 2;
  }
  bool run = strcmp(mode, "--run") == 0;
  if ((ro.json || ro.record || ro.record_secrets || ro.once || ro.dry_run || ro.exec ||
       exec_signal || ro.exec_restart || ro.log_level >= 0 || ro.admin) && !run) {
    fprintf(stderr, "reactcfg-lua: --json, --cloudevents, --record, --record-secrets, "
                    "--once, --dry-run, --exec, --log-level and --admin go with --run\n");
    return 2;
  }
  if ((exec_signal || ro.exec_restart) && !ro.exec) {
    fprintf(stderr, "reactcfg-lua: --exec-signal and --exec-restart go with --exec\n");
    return 2;
  }
  if (ro.exec && (ro.once || ro.dry_run)) {
    fprintf(stderr, "reactcfg-lua: --exec supervises a child for the whole run: it cannot "
                    "be combined with --once or --dry-run\n");
    return 2;
  }
  if (exec_signal && ro.exec_restart) {
    fprintf(stderr, "reactcfg-lua: --exec-signal and --exec-restart cannot be combined\n");
    return 2;
  }
  if (ro.exec) {
    rc_error err = {0};
    char **words = sidecar_split_words(ro.exec, &err);
    if (!words) {
      fprintf(stderr, "reactcfg-lua: %s\n", err.message);
      return 2;
    }
    argv_free(words);
  }
  if (exec_signal) {
    ro.exec_signal = render_signal_number(exec_signal);
    if (ro.exec_signal <= 0) {
      fprintf(stderr, "reactcfg-lua: --exec-signal: unknown signal '%s' (HUP, INT, QUIT, "
                      "TERM, USR1, USR2, WINCH, ALRM)\n", exec_signal);
      return 2;
    }
  }
  if ((tagged || format) && strcmp(mode, "--dump") != 0) {
    fprintf(stderr, "reactcfg-lua: --tagged and --format go with --dump\n");
    return 2;
  }
  if (strcmp(mode, "--dump") == 0) return cli_dump(policy, format, tagged);
  return strcmp(mode, "--check") == 0 ? check(policy) : cli_run(policy, &ro);
}
