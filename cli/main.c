/* main.c: reactcfg-lua's entry point: parses the command line and dispatches to
 * --version, --check, --run, --dump, the scenario runner and replay (`test`, `replay`),
 * or to Lua mode (the REPL, -e, scripts; repl.c). */
#include "cli.h"

#include <stdio.h>
#include <string.h>

static const char USAGE[] =
  "usage: reactcfg-lua [options]\n"
  "       reactcfg-lua [-i] [-e CODE]... [SCRIPT [ARGS...] | -]\n"
  "  (no arguments)          the interactive Lua REPL (reads a script if stdin is not\n"
  "                          a terminal); -i: the REPL after the other arguments\n"
  "  -e CODE                 run CODE; errors as 'reactcfg-lua: message', exit 1\n"
  "  SCRIPT [ARGS...]        run the Lua file SCRIPT with `arg` set; '-' reads stdin\n"
  "  --version               print the version and exit\n"
  "  --check POLICY          load and check POLICY; exit 0 if it loads, else print\n"
  "                          POLICY:LINE: message on stderr and exit 1\n"
  "  --run [--json] POLICY   run the engine on POLICY and print every commit and event\n"
  "                          (--json: one JSON object per line); SIGINT/SIGTERM stop it\n"
  "      --record FILE       also write every source event with its time to FILE\n"
  "      --record-secrets    include the values of secret components in the recording\n"
  "  test FILE...            run scenario files (docs/REPL.md); print each result and\n"
  "                          'N passed, M failed'; exit 0 only when all pass\n"
  "  replay FILE POLICY [--compare OTHER]\n"
  "                          replay a recording on POLICY on virtual time and print the\n"
  "                          commits; with --compare, where OTHER decides differently\n"
  "  --dump FILE [--format F] [--tagged]\n"
  "                          parse FILE (json, yaml, toml, dotenv, text; by extension\n"
  "                          unless --format) and print it as JSON, or as toml-test's\n"
  "                          type-tagged JSON; errors as FILE:LINE:COL: message, exit 1\n"
  "  -h, --help              this text\n";

void cli_format_error(const rc_error *err, const char *fallback_file, char *out, size_t n) {
  const char *file = err->file[0] ? err->file : fallback_file;
  if (file && err->line > 0)
    snprintf(out, n, "%s:%d: %s", file, err->line, err->message);
  else if (file && strncmp(err->message, file, strlen(file)) != 0)
    snprintf(out, n, "%s: %s", file, err->message);
  else
    snprintf(out, n, "%s", err->message);
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
        !strcmp(a, "--record"))
      return false;
  }
  return true;
}

int main(int argc, char **argv) {
  if (argc >= 2 && (!strcmp(argv[1], "test") || !strcmp(argv[1], "replay")))
    return cli_sim(argc, argv);
  if (lua_mode(argc, argv)) return cli_lua(argc, argv);
  bool json = false, tagged = false, record_secrets = false;
  const char *mode = NULL, *policy = NULL, *format = NULL, *record = NULL;
  for (int i = 1; i < argc; i++) {
    const char *a = argv[i];
    if (!strcmp(a, "--version")) {
      printf("reactcfg-lua %s\n", rc_version());
      return 0;
    } else if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
      fputs(USAGE, stdout);
      return 0;
    } else if (!strcmp(a, "--json")) {
      json = true;
    } else if (!strcmp(a, "--tagged")) {
      tagged = true;
    } else if (!strcmp(a, "--record-secrets")) {
      record_secrets = true;
    } else if (!strcmp(a, "--record")) {
      if (i + 1 >= argc) {
        fprintf(stderr, "reactcfg-lua: --record needs a file name\n");
        return 2;
      }
      record = argv[++i];
    } else if (!strcmp(a, "--format")) {
      if (i + 1 >= argc) {
        fprintf(stderr, "reactcfg-lua: --format needs a format name\n");
        return 2;
      }
      format = argv[++i];
    } else if (!strcmp(a, "--check") || !strcmp(a, "--run") || !strcmp(a, "--dump")) {
      if (mode) {
        fprintf(stderr, "reactcfg-lua: %s and %s cannot be combined\n", mode, a);
        return 2;
      }
      mode = a;
    } else if (a[0] == '-' && a[1]) {
      fprintf(stderr, "reactcfg-lua: unknown option '%s'\n%s", a, USAGE);
      return 2;
    } else if (!policy) {
      policy = a;
    } else {
      fprintf(stderr, "reactcfg-lua: unexpected argument '%s'\n%s", a, USAGE);
      return 2;
    }
  }
  if (!mode) {
    fprintf(stderr, "reactcfg-lua: which mode? use --check, --run or --dump\n%s", USAGE);
    return 2;
  }
  if (!policy) {
    fprintf(stderr, "reactcfg-lua: %s needs a %s\n%s", mode,
            strcmp(mode, "--dump") ? "POLICY file" : "FILE", USAGE);
    return 2;
  }
  if ((json || record || record_secrets) && strcmp(mode, "--run") != 0) {
    fprintf(stderr, "reactcfg-lua: --json, --record and --record-secrets go with --run\n");
    return 2;
  }
  if ((tagged || format) && strcmp(mode, "--dump") != 0) {
    fprintf(stderr, "reactcfg-lua: --tagged and --format go with --dump\n");
    return 2;
  }
  if (strcmp(mode, "--dump") == 0) return cli_dump(policy, format, tagged);
  return strcmp(mode, "--check") == 0 ? check(policy)
                                      : cli_run(policy, json, record, record_secrets);
}
