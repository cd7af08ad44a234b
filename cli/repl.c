/* SPDX-License-Identifier: MIT (see LICENSE) */
/* repl.c: reactcfg-lua as a Lua 5.4 interpreter: the interactive REPL (libedit editing,
 * persistent history, multi-line input, tab completion, pretty-printed results) and the
 * non-interactive runs (-e CODE, a script file with arguments, a script on stdin). One
 * plain Lua state with the standard libraries, `cjson`, and `reactcfg` as the global `rc`. */
#include "attach.h"
#include "cli.h"
#include "lvalue.h"

#include <lauxlib.h>
#include <lualib.h>
#include <editline/readline.h>
#include <errno.h>
#include <fcntl.h>
#include <langinfo.h>
#include <locale.h>
#include <poll.h>
#include <signal.h>
#include <termios.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

extern int luaopen_cjson(lua_State *L);
extern int luaopen_reactcfg(lua_State *L);

#define PROMPT "> "
#define PROMPT2 ">> "
#define HISTORY_MAX 1000
#define PP_DEPTH 6

/* Registry key of the table the prelude returns ({ show = ..., ... }). */
static const char PRELUDE_KEY = 'p';

/* The state Lua code runs on, for the line editor's callbacks and the SIGINT handler. */
static lua_State *repl_L;
static volatile sig_atomic_t in_readline;
/* attach --json: results are printed as JSON (attach.c), not pretty-printed. */
static bool show_as_json;

/* ---- the prelude: pretty printer and help, embedded as Lua source ---- */

/* Called with (colour, max_depth, null); returns { show = f, pp = f, help = f }. `show`
 * prints REPL results: tables nested with sorted keys, ancestors met again marked as
 * cycles, depth limited, JSON's null (a NULL light userdata) as `null`; colour only when
 * asked. Uses raw access, so printing runs no
 * metamethods except __tostring of non-table values. */
static const char PRELUDE[] =
  "local color, maxdepth, null = ...\n"
  "local C = color and { key = '\\27[36m', str = '\\27[32m', num = '\\27[33m',\n"
  "  kw = '\\27[35m', dim = '\\27[90m', off = '\\27[0m' } or nil\n"
  "local function paint(c, s) if C then return C[c] .. s .. C.off end return s end\n"
  "local kw = {}\n"
  "for w in ('and break do else elseif end false for function goto if in local nil not '\n"
  "  .. 'or repeat return then true until while'):gmatch('%a+') do kw[w] = true end\n"
  "local rank = { number = 1, string = 2 }\n"
  "local function before(a, b)\n"
  "  local ta, tb = type(a), type(b)\n"
  "  if ta ~= tb then\n"
  "    local ra, rb = rank[ta] or 3, rank[tb] or 3\n"
  "    if ra ~= rb then return ra < rb end\n"
  "    return ta < tb\n"
  "  end\n"
  "  if ta == 'number' or ta == 'string' then return a < b end\n"
  "  return tostring(a) < tostring(b)\n"
  "end\n"
  "local function scalar(v)\n"
  "  local t = type(v)\n"
  "  if t == 'string' then return paint('str', string.format('%q', v)) end\n"
  "  if t == 'number' then return paint('num', tostring(v)) end\n"
  "  if t == 'boolean' or t == 'nil' then return paint('kw', tostring(v)) end\n"
  "  if v == null then return paint('kw', 'null') end\n"
  "  return paint('dim', tostring(v))\n"
  "end\n"
  "local function keytext(k)\n"
  "  if type(k) == 'string' and k:match('^[%a_][%w_]*$') and not kw[k] then\n"
  "    return paint('key', k)\n"
  "  end\n"
  "  return '[' .. scalar(k) .. ']'\n"
  "end\n"
  "local function render(v, indent, depth, open)\n"
  "  if type(v) ~= 'table' then return scalar(v) end\n"
  "  if open[v] then return paint('dim', '<cycle: ' .. tostring(v) .. '>') end\n"
  "  if next(v) == nil then return '{}' end\n"
  "  if depth >= maxdepth then return paint('dim', '{...}') end\n"
  "  open[v] = true\n"
  "  local n, items, keys = 0, {}, {}\n"
  "  while rawget(v, n + 1) ~= nil do n = n + 1 end\n"
  "  for k in next, v do\n"
  "    if not (math.type(k) == 'integer' and k >= 1 and k <= n) then keys[#keys + 1] = k end\n"
  "  end\n"
  "  table.sort(keys, before)\n"
  "  -- One line when every item is on one line and it all fits; escapes count as width.\n"
  "  local inner, simple, width = indent .. '  ', true, 0\n"
  "  for i = 1, n do\n"
  "    items[#items + 1] = render(rawget(v, i), inner, depth + 1, open)\n"
  "  end\n"
  "  for _, k in ipairs(keys) do\n"
  "    items[#items + 1] = keytext(k) .. ' = ' .. render(rawget(v, k), inner, depth + 1, open)\n"
  "  end\n"
  "  open[v] = nil\n"
  "  for _, s in ipairs(items) do\n"
  "    width = width + #s + 2\n"
  "    if s:find('\\n') then simple = false end\n"
  "  end\n"
  "  if simple and width + #indent < 72 then\n"
  "    return '{ ' .. table.concat(items, ', ') .. ' }'\n"
  "  end\n"
  "  return '{\\n' .. inner .. table.concat(items, ',\\n' .. inner) .. ',\\n' .. indent .. '}'\n"
  "end\n"
  "local function show(...)\n"
  "  local out = {}\n"
  "  for i = 1, select('#', ...) do out[i] = render((select(i, ...)), '', 0, {}) end\n"
  "  io.stdout:write(table.concat(out, '\\t'), '\\n')\n"
  "  io.stdout:flush()\n"
  "end\n"
  "local function help()\n"
  "  io.stdout:write([[\n"
  "reactcfg-lua: Lua 5.4 with the reactcfg module as `rc` and `cjson`.\n"
  "  help()                 this text\n"
  "  pp(value, ...)         pretty-print values (as the REPL prints results)\n"
  "  rc.engine(POLICY)      an engine on a policy file; e:start(), e:run('1s'),\n"
  "                         e:run_until(fn, '5s'), e:get('path'), e:revision(),\n"
  "                         e:commits(), e:events(), e:setenv(k, v), e:reload(),\n"
  "                         e:rollback(rev), e:unpin(), e:stop(), e:close()\n"
  "  rc.file, rc.env, ...   the policy vocabulary (see docs/POLICY.md)\n"
  "  cjson.encode/decode    JSON\n"
  "The test bench (docs/REPL.md), on a virtual clock:\n"
  "  policy('policy.lua')   load a policy (its sources run; { sources = false }: none)\n"
  "  push('name', value)    deliver a value as the component's source would;\n"
  "  push_text('name', text, 'yaml'), fail('name', 'why')\n"
  "  advance('5s'), now()   move virtual time (debounce, throttle run on the way);\n"
  "  live('2s')             run real sources and real time for a while\n"
  "  get('path'), snapshot(), components(), history(), events(), revision()\n"
  "  diff(a, b)             two revisions, two files or two values\n"
  "  explain([rev])         what the engine decided and why (modules included)\n"
  "  reload(['name', ...])  re-read sources now, past debounce (trigger 'request')\n"
  "  rollback(rev), unpin() back to a kept revision and pin it; apply sources again\n"
  "  pinned(), revisions()  whether pinned; the revisions kept for rollback\n"
  "  reload_policy()        load the same policy file again (a fresh session)\n"
  "  expect('path', v), expect_commits(n), expect_event('name', 'pattern')\n"
  "Type an expression to see its value; an unfinished statement continues on a '>>'\n"
  "line. Tab completes globals and fields (after '.' or ':'). Ctrl-C clears the line,\n"
  "Ctrl-D exits.\n"
  "]])\n"
  "end\n"
  "return { show = show, pp = show, help = help }\n";

/* ---- running chunks ---- */

/* Message handler: the error as a string, with a traceback. [-1, +1, m] */
static int msghandler(lua_State *L) {
  const char *msg = lua_tostring(L, 1);
  if (!msg) {
    if (luaL_callmeta(L, 1, "__tostring") && lua_type(L, -1) == LUA_TSTRING) return 1;
    msg = lua_pushfstring(L, "(error object is a %s value)", luaL_typename(L, 1));
  }
  luaL_traceback(L, L, msg, 1);
  return 1;
}

/* Message handler without the traceback, for -e and the prompt. [-1, +1, m] */
static int msghandler_short(lua_State *L) {
  if (lua_tostring(L, 1)) return 1;
  if (luaL_callmeta(L, 1, "__tostring") && lua_type(L, -1) == LUA_TSTRING) return 1;
  lua_pushfstring(L, "(error object is a %s value)", luaL_typename(L, 1));
  return 1;
}

/* Hook set by SIGINT while Lua runs: raise "interrupted!" at the next event. */
static void lstop(lua_State *L, lua_Debug *ar) {
  (void)ar;
  lua_sethook(L, NULL, 0, 0);
  luaL_error(L, "interrupted!");
}

/* SIGINT: at the prompt, the handler only writes a byte to a pipe; the prompt's key
 * reader (read_key) waits on the terminal and that pipe, and cancels the input outside
 * the handler. A flag alone could be lost: a signal that arrives while the editor is busy
 * redrawing, not blocked in read(), would only be seen after the next key. While Lua
 * runs, stop it at the next hook event, as lua.c does (lua_sethook is signal-safe).
 * The editor's own signal handling is off (rl_catch_signals = 0): it would restore the
 * cooked terminal around our handler, and keys typed in that window are echoed twice or
 * lost. */
static int sigint_pipe[2] = {-1, -1};
/* Set by read_key when Ctrl-C cancelled the input: the line it ends is dropped, and so
 * is any unfinished statement it continued. */
static bool cancelled;

static void on_sigint(int sig) {
  (void)sig;
  if (in_readline) {
    int saved = errno;
    ssize_t w = sigint_pipe[1] >= 0 ? write(sigint_pipe[1], "i", 1) : 0;
    (void)w; /* a full pipe already holds a pending Ctrl-C */
    errno = saved;
  } else if (repl_L) {
    lua_sethook(repl_L, lstop, LUA_MASKCALL | LUA_MASKRET | LUA_MASKCOUNT, 1);
  }
}

/* One byte from `fd`, waiting for it; -1 at end of input or on an error. */
static int read_byte(int fd) {
  for (;;) {
    unsigned char c;
    ssize_t got = read(fd, &c, 1);
    if (got == 1) return c;
    if (got < 0 && (errno == EINTR || errno == EAGAIN)) {
      struct pollfd p = {fd, POLLIN, 0};
      poll(&p, 1, -1);
      continue;
    }
    return -1;
  }
}

/* The editor's key reader: one character from the terminal (UTF-8 decoded: libedit
 * takes a character per call, and a byte of a multi-byte sequence is not one), or EOF.
 * A Ctrl-C noted by the handler ends the input as Enter would, with `cancelled` set so
 * that the caller drops it; the text stays on the screen, above a fresh prompt. */
static int read_key(FILE *in) {
  int fd = fileno(in);
  for (;;) {
    struct pollfd p[2] = {{fd, POLLIN, 0}, {sigint_pipe[0], POLLIN, 0}};
    int n = poll(p, sigint_pipe[0] >= 0 ? 2 : 1, -1);
    if (n < 0 && errno != EINTR) return EOF;
    if (n > 0 && (p[1].revents & POLLIN)) {
      char drain[64];
      while (read(sigint_pipe[0], drain, sizeof drain) > 0) {}
      cancelled = true;
      return '\n';
    }
    if (n <= 0 || !(p[0].revents & (POLLIN | POLLHUP | POLLERR))) continue;
    int c = read_byte(fd);
    if (c < 0) return EOF;
    /* A NUL is what a Ctrl-D typed ahead while the terminal was still cooked becomes;
     * libedit would take it as a quoted-insert and then insert the next Ctrl-D as text. */
    if (c == 0) continue;
    if ((c >= 0x80 && c < 0xc0) || c >= 0xf8) return 0xfffd; /* not a lead byte */
    int more = c >= 0xf0 ? 3 : c >= 0xe0 ? 2 : c >= 0xc0 ? 1 : 0;
    int cp = more == 3 ? c & 0x07 : more == 2 ? c & 0x0f : more == 1 ? c & 0x1f : c;
    for (int i = 0; i < more; i++) {
      int b = read_byte(fd);
      if (b < 0) return EOF;
      if ((b & 0xc0) != 0x80) return 0xfffd; /* malformed: the replacement character */
      cp = (cp << 6) | (b & 0x3f);
    }
    return cp;
  }
}

/* Opens the pipe the SIGINT handler writes to (both ends non-blocking). Without it,
 * Ctrl-C at the prompt does nothing (Lua code can still be interrupted). */
static void sigint_pipe_open(void) {
  if (sigint_pipe[0] >= 0 || pipe(sigint_pipe) != 0) return;
  for (int i = 0; i < 2; i++) {
    fcntl(sigint_pipe[i], F_SETFL, fcntl(sigint_pipe[i], F_GETFL) | O_NONBLOCK);
    fcntl(sigint_pipe[i], F_SETFD, FD_CLOEXEC);
  }
}

/* Calls the function below its `narg` arguments, protected, with a message handler.
 * Returns the status; on error the message replaces function and arguments.
 * [-(narg+1), +(nres|1), -] */
static int docall(lua_State *L, int narg, int nres, bool traceback) {
  int base = lua_gettop(L) - narg;
  lua_pushcfunction(L, traceback ? msghandler : msghandler_short);
  lua_insert(L, base);
  int status = lua_pcall(L, narg, nres, base);
  lua_remove(L, base);
  return status;
}

/* Prints the message at the top as "reactcfg-lua: message" and pops it. [-1, +0, -] */
static void report(lua_State *L) {
  const char *msg = lua_tostring(L, -1);
  fprintf(stderr, "reactcfg-lua: %s\n", msg ? msg : "(error object is not a string)");
  fflush(stderr);
  lua_pop(L, 1);
}

/* ---- tab completion ---- */

/* Pushes field `name` of the value at `idx` without running metamethods: raw lookup,
 * then through __index tables (at most 16 levels). [-0, +1, m] */
static void raw_field(lua_State *L, int idx, const char *name, size_t len) {
  idx = lua_absindex(L, idx);
  lua_pushvalue(L, idx);                            /* stack: t */
  for (int level = 0; level < 16; level++) {
    if (lua_type(L, -1) == LUA_TTABLE) {
      lua_pushlstring(L, name, len);
      if (lua_rawget(L, -2) != LUA_TNIL) {          /* stack: t, v */
        lua_remove(L, -2);
        return;
      }
      lua_pop(L, 1);
    }
    if (!lua_getmetatable(L, -1)) break;            /* stack: t, mt */
    lua_pushliteral(L, "__index");
    lua_rawget(L, -2);                              /* stack: t, mt, index */
    lua_remove(L, -2);
    lua_remove(L, -2);                              /* stack: index */
    if (lua_type(L, -1) != LUA_TTABLE) break;
  }
  lua_pop(L, 1);
  lua_pushnil(L);
}

/* Adds to the list at `list` every identifier key of the value at `idx` (and of its
 * __index tables) that starts with `part`, as `head` .. key. [-0, +0, m] */
static void collect(lua_State *L, int idx, int list, const char *head, const char *part) {
  size_t plen = strlen(part);
  lua_pushvalue(L, idx);                            /* stack: t */
  for (int level = 0; level < 16; level++) {
    if (lua_type(L, -1) == LUA_TTABLE) {
      lua_pushnil(L);
      while (lua_next(L, -2)) {                     /* stack: t, k, v */
        size_t klen;
        const char *k = lua_type(L, -2) == LUA_TSTRING ? lua_tolstring(L, -2, &klen) : NULL;
        if (k && klen >= plen && memcmp(k, part, plen) == 0 && strlen(k) == klen) {
          lua_pushfstring(L, "%s%s", head, k);
          lua_rawseti(L, list, (lua_Integer)lua_rawlen(L, list) + 1);
        }
        lua_pop(L, 1);                              /* stack: t, k */
      }
    }
    if (!lua_getmetatable(L, -1)) break;
    lua_pushliteral(L, "__index");
    lua_rawget(L, -2);
    lua_remove(L, -2);
    lua_remove(L, -2);                              /* stack: index */
    if (lua_type(L, -1) != LUA_TTABLE) break;
  }
  lua_pop(L, 1);
}

/* (text) -> list of completions of `text`: a global, or a field after the last '.' or
 * ':' of a dotted path walked from the globals. Runs no Lua code. [-1, +1, m] */
static int l_complete(lua_State *L) {
  const char *text = luaL_checkstring(L, 1);
  lua_newtable(L);
  int list = lua_gettop(L);
  const char *sep = strpbrk(text, ".:") ? text + strlen(text) : NULL;
  while (sep && sep > text && sep[-1] != '.' && sep[-1] != ':') sep--;
  lua_pushglobaltable(L);                           /* stack: text, list, value */
  if (!sep) {
    collect(L, -1, list, "", text);
    lua_pop(L, 1);
    return 1;
  }
  /* Walk the path up to the separator: each segment ends at '.' or ':'. */
  const char *p = text, *end = sep - 1;
  while (p < end) {
    const char *q = p;
    while (q < end && *q != '.' && *q != ':') q++;
    raw_field(L, -1, p, (size_t)(q - p));
    lua_remove(L, -2);
    if (lua_isnil(L, -1)) return 1;                 /* nothing to complete */
    p = q + 1;
  }
  lua_pushlstring(L, text, (size_t)(sep - text));   /* stack: ..., value, head */
  collect(L, -2, list, lua_tostring(L, -1), sep);
  lua_pop(L, 2);
  return 1;
}

/* (prefix) -> names of the loaded policy's components (reactcfg.sim). [-1, +1, e] */
static int l_complete_component(lua_State *L) {
  rc__lua_require_field(L, "reactcfg.sim", "complete_component");
  lua_insert(L, 1);
  lua_call(L, 1, 1);
  return 1;
}

static char **matches;       /* completions from the last l_complete, malloc'd */
static size_t n_matches;

/* The editor's generator over `matches`; the editor frees each string it gets (so they come
 * from malloc, not rc__malloc). */
static char *next_match(const char *text, int state) {
  (void)text;
  static size_t i;
  if (state == 0) i = 0;
  return i < n_matches ? matches[i++] : NULL;
}

/* The editor's completion entry: runs l_complete protected (a memory error must not
 * unwind through libedit) and hands it the matches. [-0, +0, -] */
static char **complete(const char *text, int start, int end) {
  (void)end;
  rl_attempted_completion_over = 1;                 /* never fall back to file names */
  rl_completion_append_character = '\0';            /* no space after a name */
  lua_State *L = repl_L;
  for (size_t i = 0; i < n_matches; i++) free(matches[i]);
  free(matches);
  matches = NULL;
  n_matches = 0;
  int top = lua_gettop(L);
  /* Inside a string ("push('se<TAB>"), complete the loaded policy's component names. */
  bool quoted = start > 0 && (rl_line_buffer[start - 1] == '"' ||
                              rl_line_buffer[start - 1] == '\'');
  if (quoted) {
    lua_pushcfunction(L, l_complete_component);
  } else {
    lua_pushcfunction(L, l_complete);
  }
  lua_pushstring(L, text);
  if (lua_pcall(L, 1, 1, 0) == LUA_OK && lua_istable(L, -1)) {
    size_t n = (size_t)lua_rawlen(L, -1);
    matches = n ? malloc(n * sizeof *matches) : NULL;
    for (size_t i = 0; matches && i < n; i++) {
      lua_rawgeti(L, -1, (lua_Integer)i + 1);
      char *s = strdup(lua_tostring(L, -1));
      lua_pop(L, 1);
      if (s) matches[n_matches++] = s;
    }
  }
  lua_settop(L, top);
  if (n_matches == 0) return NULL;
  char **out = rl_completion_matches(text, next_match);
  n_matches = 0;                                    /* libedit owns the strings now */
  return out;
}

/* ---- the REPL ---- */

static char history_path[4096];

/* The history file holds one statement per line, plain text (not the editor's own
 * format, so that it stays readable and moves between editors). Its last HISTORY_MAX
 * lines are loaded; a longer file is cut down to them (temp file + rename). A missing
 * file is created, so that an unwritable place is noticed now: it is then left alone. */
static void history_start(void) {
  const char *env = getenv("REACTCFG_HISTORY");
  const char *home = getenv("HOME");
  if (env && *env)
    snprintf(history_path, sizeof history_path, "%s", env);
  else if (home && *home)
    snprintf(history_path, sizeof history_path, "%s/.reactcfg_history", home);
  stifle_history(HISTORY_MAX);
  if (!history_path[0]) return;
  FILE *f = fopen(history_path, "r");
  if (!f) {
    f = fopen(history_path, "a");
    if (!f) history_path[0] = '\0';
    if (f) fclose(f);
    return;
  }
  char *lines[HISTORY_MAX] = {0};
  size_t n = 0, cap = 0;
  char *line = NULL;
  ssize_t len;
  while ((len = getline(&line, &cap, f)) >= 0) {
    if (len > 0 && line[len - 1] == '\n') line[--len] = '\0';
    if (!*line) continue;
    free(lines[n % HISTORY_MAX]);
    lines[n % HISTORY_MAX] = strdup(line);
    n++;
  }
  free(line);
  fclose(f);
  size_t first = n > HISTORY_MAX ? n - HISTORY_MAX : 0;
  for (size_t i = first; i < n; i++)
    if (lines[i % HISTORY_MAX]) add_history(lines[i % HISTORY_MAX]);
  if (n > HISTORY_MAX) {
    char tmp[sizeof history_path + 8];
    snprintf(tmp, sizeof tmp, "%s.tmp", history_path);
    FILE *out = fopen(tmp, "w");
    bool ok = out != NULL;
    for (size_t i = first; ok && i < n; i++)
      ok = fprintf(out, "%s\n", lines[i % HISTORY_MAX] ? lines[i % HISTORY_MAX] : "") > 0;
    if (out && fclose(out) != 0) ok = false;
    if (!ok || rename(tmp, history_path) != 0) remove(tmp);
  }
  for (size_t i = 0; i < HISTORY_MAX; i++) free(lines[i]);
}

/* Records one complete statement: in memory, and appended to the file at once so that a
 * crash or kill loses nothing. Newlines become spaces: the file holds one line each. */
static void history_add(const char *stmt) {
  char *line = strdup(stmt);
  if (!line) return;
  for (char *c = line; *c; c++)
    if (*c == '\n') *c = ' ';
  if (*line) {
    add_history(line);
    FILE *f = history_path[0] ? fopen(history_path, "a") : NULL;
    if (f) {
      fprintf(f, "%s\n", line);
      fclose(f);
    }
  }
  free(line);
}

/* Reads one line with `prompt` and pushes it; false at end of input or when Ctrl-C
 * cancelled it (`cancelled` says which). The terminal leaves canonical mode and stops
 * echoing before the prompt is shown, as GNU readline does: libedit switches to raw mode
 * only when it reads the first key, and a key typed in between would be echoed twice, or
 * (Ctrl-D) taken by the terminal as end of input and reach the editor as a NUL.
 * [-0, +(0|1), m] */
static bool pushline(lua_State *L, const char *prompt) {
  struct termios saved;
  bool tty = tcgetattr(STDIN_FILENO, &saved) == 0;
  if (tty) {
    struct termios raw = saved;
    raw.c_lflag &= ~(tcflag_t)(ECHO | ICANON);
    raw.c_cc[VMIN] = 1;
    raw.c_cc[VTIME] = 0;
    tcsetattr(STDIN_FILENO, TCSANOW, &raw);
  }
  cancelled = false;
  in_readline = 1;
  char *line = readline(prompt);
  in_readline = 0;
  if (tty) tcsetattr(STDIN_FILENO, TCSANOW, &saved);
  if (!line) return false;
  if (cancelled) {
    free(line);
    return false;
  }
  lua_pushstring(L, line);
  free(line);
  return true;
}

/* Is the error at the top the "unexpected <eof>" of an unfinished statement?
 * [-0, +0, -] */
static bool incomplete(lua_State *L, int status) {
  static const char mark[] = "<eof>";
  size_t len;
  const char *msg = lua_tolstring(L, -1, &len);
  return status == LUA_ERRSYNTAX && len >= sizeof mark - 1 &&
         strcmp(msg + len - (sizeof mark - 1), mark) == 0;
}

/* Reads a statement (several lines while unfinished) and pushes it compiled, first as
 * "return <line>" so that expressions show their value. Returns -1 at end of input, -2
 * when Ctrl-C cancelled it (nothing pushed: an unfinished statement is dropped whole),
 * else the compile status with the chunk or message pushed. [-0, +(0|1), m] */
static int loadline(lua_State *L) {
  if (!pushline(L, PROMPT)) return cancelled ? -2 : -1; /* stack: line */
  const char *line = lua_tostring(L, -1);
  const char *ret = lua_pushfstring(L, "return %s", line);
  if (luaL_loadbuffer(L, ret, strlen(ret), "=stdin") == LUA_OK) {
    lua_remove(L, -2);                              /* stack: line, chunk */
    history_add(line);
    lua_remove(L, -2);
    return LUA_OK;
  }
  lua_pop(L, 2);                                    /* stack: line */
  for (;;) {
    size_t len;
    const char *code = lua_tolstring(L, -1, &len);
    int status = luaL_loadbuffer(L, code, len, "=stdin");
    if (!incomplete(L, status)) {
      history_add(lua_tostring(L, -2));
      lua_remove(L, -2);                            /* stack: chunk or message */
      return status;
    }
    if (!pushline(L, PROMPT2)) {
      if (cancelled) {
        lua_pop(L, 2);                              /* the unfinished statement goes */
        return -2;
      }
      history_add(lua_tostring(L, -2));
      lua_remove(L, -2);                            /* stack: message */
      return status;
    }
    lua_remove(L, -2);                              /* stack: code, next */
    lua_pushliteral(L, "\n");
    lua_insert(L, -2);
    lua_concat(L, 3);                               /* stack: code .. "\n" .. next */
  }
}

/* Prints the `n` values at the top through the prelude's show() and pops them.
 * [-n, +0, -] */
static void show(lua_State *L, int n) {
  if (show_as_json) {
    if (!attach_show_json(L, n)) report(L);
    return;
  }
  lua_rawgetp(L, LUA_REGISTRYINDEX, &PRELUDE_KEY);
  lua_getfield(L, -1, "show");
  lua_remove(L, -2);
  lua_insert(L, -(n + 1));                          /* stack: show, values... */
  if (docall(L, n, 0, false) != LUA_OK) report(L);
}

/* The interactive loop, until end of input. [-0, +0, m] */
static void repl(lua_State *L) {
  /* libedit keeps the line as wide characters and converts it back through the locale:
   * the REPL reads and writes UTF-8 whatever locale the environment names. */
  const char *loc = setlocale(LC_CTYPE, "");
  if (!loc || strcmp(nl_langinfo(CODESET), "UTF-8") != 0) setlocale(LC_CTYPE, "C.UTF-8");
  rl_readline_name = "reactcfg";
  rl_catch_signals = 0;
  sigint_pipe_open();
  rl_getc_function = read_key;
  rl_attempted_completion_function = complete;
  rl_basic_word_break_characters = " \t\n\"\\'`><=;+-*/%^~#&|{}()[],";
  rl_completion_append_character = '\0';
  rl_completer_quote_characters = "\"'"; /* so a completion inside a string is one word */
  history_start();
  for (;;) {
    int top = lua_gettop(L);
    int status = loadline(L);
    if (status == -1) break;
    if (status == -2) continue;                     /* Ctrl-C: a fresh prompt */
    if (status == LUA_OK) status = docall(L, 0, LUA_MULTRET, true);
    if (status == LUA_OK) {
      int n = lua_gettop(L) - top;
      if (n > 0) show(L, n);
    } else {
      report(L);
    }
    lua_settop(L, top);
  }
  fputc('\n', stdout);
  fflush(stdout);
}

/* ---- the command line ---- */

typedef struct lua_args {
  int argc;
  char **argv;
  int exit_code;
} lua_args;

/* Sets the global `arg` as lua.c does: arg[0] the script, arg[1..] its arguments,
 * negative indices what came before. [-0, +0, m] */
static void create_arg(lua_State *L, char **argv, int argc, int script) {
  lua_createtable(L, argc - script - 1, script + 1);
  for (int i = 0; i < argc; i++) {
    lua_pushstring(L, argv[i]);
    lua_rawseti(L, -2, i - script);
  }
  lua_setglobal(L, "arg");
}

/* Loads and runs a script (NULL: stdin) with the arguments after it, protected; reports
 * a failure. [-0, +0, m] */
static int run_script(lua_State *L, const char *path, char **args, int nargs) {
  int status = luaL_loadfile(L, path);
  if (status == LUA_OK) {
    luaL_checkstack(L, nargs, "too many arguments to the script");
    for (int i = 0; i < nargs; i++) lua_pushstring(L, args[i]);
    status = docall(L, nargs, 0, true);
  }
  if (status != LUA_OK) report(L);
  return status;
}

/* The standard libraries, `cjson`, `reactcfg` as `rc`. [-0, +0, e] */
static void open_libs(lua_State *L) {
  luaL_openlibs(L);
  luaL_requiref(L, "cjson", luaopen_cjson, 1);
  luaL_requiref(L, "reactcfg", luaopen_reactcfg, 0);
  lua_setglobal(L, "rc");
  lua_pop(L, 1);
}

/* The test bench as globals: policy, push, advance, explain, ... (reactcfg.sim), with
 * the REPL's defaults (the policy's real sources run). [-0, +0, e] */
static void open_bench(lua_State *L) {
  rc__lua_require_field(L, "reactcfg.sim", "install_repl");
  lua_pushglobaltable(L);
  lua_call(L, 1, 0);
}

/* The prelude: the globals pp and help, and the printer `show` uses. [-0, +0, e] */
static int open_prelude(lua_State *L) {
  bool color = isatty(STDOUT_FILENO) && !getenv("NO_COLOR");
  if (luaL_loadbufferx(L, PRELUDE, sizeof PRELUDE - 1, "=repl", "t") != LUA_OK)
    return lua_error(L);
  lua_pushboolean(L, color);
  lua_pushinteger(L, PP_DEPTH);
  lua_pushlightuserdata(L, NULL); /* JSON's null, as the engine's values give it */
  lua_call(L, 3, 1);                                /* stack: prelude */
  lua_getfield(L, -1, "pp");
  lua_setglobal(L, "pp");
  lua_getfield(L, -1, "help");
  lua_setglobal(L, "help");
  lua_rawsetp(L, LUA_REGISTRYINDEX, &PRELUDE_KEY);
  return 0;
}

/* Opens the libraries, then does what the command line asks. [-0, +0, e] */
static int l_main(lua_State *L) {
  lua_args *a = lua_touserdata(L, 1);
  lua_settop(L, 0);
  repl_L = L;
  open_libs(L);
  open_bench(L);
  open_prelude(L);

  /* Options first (-e CODE, -i), then a script (a file, or '-' for stdin) and its args. */
  bool interactive = false, ran = false;
  int i = 1, script = 0;
  for (; i < a->argc; i++) {
    const char *o = a->argv[i];
    if (!strcmp(o, "-i")) {
      interactive = true;
    } else if (!strcmp(o, "-e")) {
      if (++i >= a->argc) {
        fprintf(stderr, "reactcfg-lua: -e needs code to run\n");
        a->exit_code = 2;
        return 0;
      }
      ran = true;
      const char *code = a->argv[i];
      int status = luaL_loadbuffer(L, code, strlen(code), "=(command line)");
      if (status == LUA_OK) status = docall(L, 0, 0, false);
      if (status != LUA_OK) {
        report(L);
        a->exit_code = 1;
        return 0;
      }
    } else if (!strcmp(o, "--")) {
      if (i + 1 < a->argc) script = i + 1;
      break;
    } else if (o[0] == '-' && o[1]) {
      fprintf(stderr, "reactcfg-lua: unknown option '%s'\n", o);
      a->exit_code = 2;
      return 0;
    } else {
      script = i;
      break;
    }
  }
  if (!script && !ran && !interactive && !isatty(STDIN_FILENO)) script = -1;
  if (script) {
    const char *path = NULL;
    int first = script;
    if (script > 0 && strcmp(a->argv[script], "-") != 0) path = a->argv[script];
    if (script > 0) {
      create_arg(L, a->argv, a->argc, script);
      first = script + 1;
    } else {
      first = a->argc;
    }
    if (run_script(L, path, a->argv + first, a->argc - first) != LUA_OK) {
      a->exit_code = 1;
      return 0;
    }
    ran = true;
  }
  if (interactive || !ran) repl(L);
  return 0;
}

/* Runs `code` as the prompt does: as an expression whose values are printed, else as
 * a statement. Returns the status (the error reported). [-0, +0, m] */
static int run_shown(lua_State *L, const char *code) {
  int top = lua_gettop(L);
  lua_pushfstring(L, "return %s;", code);
  int status = luaL_loadbuffer(L, lua_tostring(L, -1), lua_rawlen(L, -1), "=(command line)");
  lua_remove(L, -2);
  if (status != LUA_OK) {
    lua_pop(L, 1);
    status = luaL_loadbuffer(L, code, strlen(code), "=(command line)");
  }
  if (status == LUA_OK) status = docall(L, 0, LUA_MULTRET, false);
  if (status == LUA_OK) {
    int n = lua_gettop(L) - top;
    if (n > 0) show(L, n);
  } else {
    report(L);
  }
  lua_settop(L, top);
  return status;
}

/* `attach ADDR [-e CODE]... [--json]`: the REPL (or the -e codes) with the admin
 * endpoint's functions as globals. [-0, +0, e] */
static int l_attach(lua_State *L) {
  lua_args *a = lua_touserdata(L, 1);
  lua_settop(L, 0);
  repl_L = L;
  const char *addr = NULL;
  bool json = false, codes = false;
  for (int i = 2; i < a->argc; i++) {
    const char *o = a->argv[i];
    if (!strcmp(o, "--json")) {
      json = true;
    } else if (!strcmp(o, "-e")) {
      if (++i >= a->argc) {
        fprintf(stderr, "reactcfg-lua: -e needs code to run\n");
        a->exit_code = 2;
        return 0;
      }
      codes = true;
    } else if (o[0] == '-' && o[1]) {
      fprintf(stderr, "reactcfg-lua: attach: unknown option '%s'\n", o);
      a->exit_code = 2;
      return 0;
    } else if (!addr) {
      addr = o;
    } else {
      fprintf(stderr, "reactcfg-lua: attach: unexpected argument '%s'\n", o);
      a->exit_code = 2;
      return 0;
    }
  }
  if (!addr || attach_target(addr) != 0) {
    fprintf(stderr, "reactcfg-lua: attach needs an address: HOST:PORT, http://HOST:PORT "
                    "or unix:/PATH\n");
    a->exit_code = 2;
    return 0;
  }
  luaL_openlibs(L);
  luaL_requiref(L, "cjson", luaopen_cjson, 1);
  lua_pop(L, 1);
  open_prelude(L);
  attach_open(L, json);
  show_as_json = json;
  for (int i = 2; i < a->argc; i++) {
    if (strcmp(a->argv[i], "-e") != 0) continue;
    if (run_shown(L, a->argv[++i]) != LUA_OK) {
      a->exit_code = 1;
      return 0;
    }
  }
  if (!codes) repl(L);
  return 0;
}

/* Runs `body` (l_main or l_attach) on a fresh state with the REPL's Ctrl-C handling;
 * returns the exit code it chose (1 when it raised). */
static int run_interactive(int argc, char **argv, lua_CFunction body) {
  lua_State *L = luaL_newstate();
  if (!L) {
    fprintf(stderr, "reactcfg-lua: cannot create a Lua state: out of memory\n");
    return 1;
  }
  struct sigaction sa = {0}, old;
  sa.sa_handler = on_sigint;
  sigemptyset(&sa.sa_mask);
  sigaction(SIGINT, &sa, &old);
  lua_args a = {argc, argv, 0};
  lua_pushcfunction(L, body);
  lua_pushlightuserdata(L, &a);
  if (lua_pcall(L, 1, 0, 0) != LUA_OK) {
    report(L);
    a.exit_code = 1;
  }
  sigaction(SIGINT, &old, NULL);
  repl_L = NULL;
  lua_close(L);
  for (size_t i = 0; i < n_matches; i++) free(matches[i]);
  free(matches);
  fflush(stdout);
  return a.exit_code;
}

int cli_attach(int argc, char **argv) { return run_interactive(argc, argv, l_attach); }

/* `test FILE...` / `replay FILE POLICY [--compare OTHER]` through reactcfg.sim.
 * [-0, +0, e] */
static int l_sim(lua_State *L) {
  lua_args *a = lua_touserdata(L, 1);
  lua_settop(L, 0);
  open_libs(L);
  rc__lua_require_field(L, "reactcfg.sim", "main");
  lua_createtable(L, a->argc, 0);
  for (int i = 1; i < a->argc; i++) {
    lua_pushstring(L, a->argv[i]);
    lua_rawseti(L, -2, i);
  }
  lua_call(L, 1, 1);
  a->exit_code = (int)lua_tointeger(L, -1);
  return 0;
}

int cli_sim(int argc, char **argv) {
  lua_State *L = luaL_newstate();
  if (!L) {
    fprintf(stderr, "reactcfg-lua: cannot create a Lua state: out of memory\n");
    return 1;
  }
  lua_args a = {argc, argv, 0};
  lua_pushcfunction(L, l_sim);
  lua_pushlightuserdata(L, &a);
  if (lua_pcall(L, 1, 0, 0) != LUA_OK) {
    fprintf(stderr, "reactcfg-lua: %s\n", lua_tostring(L, -1));
    a.exit_code = 1;
  }
  lua_close(L);
  fflush(stdout);
  return a.exit_code;
}

int cli_lua(int argc, char **argv) { return run_interactive(argc, argv, l_main); }
