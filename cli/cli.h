/* cli.h: the parts of reactcfg-lua shared between its files. */
#ifndef RC_CLI_H
#define RC_CLI_H

#include "reactcfg.h"

/* Formats an rc_error as "FILE:LINE: message" (or "FILE: message"). */
void cli_format_error(const rc_error *err, const char *fallback_file, char *out, size_t n);
/* --dump FILE [--format F] [--tagged]: prints FILE parsed, as JSON. Exit code. */
int cli_dump(const char *path, const char *format, bool tagged);
/* --run [--json] POLICY: runs the engine until SIGINT/SIGTERM. Returns the exit code. */
int cli_run(const char *policy, bool json, const char *record, bool record_secrets);

/* Lua mode (no arguments, -i, -e CODE, SCRIPT [ARGS], -): the REPL or a script run on a
 * plain Lua state with `rc` and `cjson`. argv as main's. Returns the exit code. */
int cli_lua(int argc, char **argv);
/* `reactcfg-lua test FILE...` and `reactcfg-lua replay FILE POLICY [--compare OTHER]`
 * (argv[1] is the command), run by reactcfg.sim in a Lua state like cli_lua's. */
int cli_sim(int argc, char **argv);

#endif
