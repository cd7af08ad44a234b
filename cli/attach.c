/* SPDX-License-Identifier: MIT (see LICENSE) */
/* attach.c: `reactcfg-lua attach ADDR`: the functions of the REPL connected to a running
 * process's admin endpoint (docs/OPERATIONS.md): status(), get(path), history(),
 * diff(a, b), reload(...), rollback(n), unpin(), events(), ready(), metrics(). HTTP
 * through libcurl (blocking: the REPL waits for each answer anyway); the functions
 * themselves are Lua (ATTACH_LUA below) over one C request function. */
#include "attach.h"

#include "lvalue.h"

#include <curl/curl.h>
#include <lauxlib.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Where the endpoint is: a base URL, and a unix socket path or NULL. */
typedef struct target {
  char url[512];
  char unix_path[256];
  char auth[600];      /* "Authorization: Bearer ..." or "" */
} target;

static target tgt;


int attach_target(const char *addr) {
  memset(&tgt, 0, sizeof tgt);
  if (!strncmp(addr, "unix:", 5)) {
    if (strlen(addr + 5) >= sizeof tgt.unix_path) return -1;
    strcpy(tgt.unix_path, addr + 5);
    strcpy(tgt.url, "http://localhost");
  } else if (!strncmp(addr, "http://", 7)) {
    if (strlen(addr) >= sizeof tgt.url) return -1;
    strcpy(tgt.url, addr);
    size_t n = strlen(tgt.url);
    if (n && tgt.url[n - 1] == '/') tgt.url[n - 1] = '\0';
  } else {
    if (snprintf(tgt.url, sizeof tgt.url, "http://%s", addr) >= (int)sizeof tgt.url) return -1;
  }
  const char *token = getenv("REACTCFG_ADMIN_TOKEN");
  if (token && *token) snprintf(tgt.auth, sizeof tgt.auth, "Authorization: Bearer %s", token);
  return 0;
}

/* ---- one request ---- */

static volatile sig_atomic_t interrupted;
static void on_sigint(int sig) {
  RC__UNUSED(sig);
  interrupted = 1;
}

typedef struct transfer {
  rc__buf body;
  lua_State *L;
  int on_line;         /* stack index of a function called with each complete line */
  size_t scanned;      /* body bytes already split into lines */
  bool failed;         /* on_line raised: its error is at the top of the stack */
} transfer;

static size_t on_data(char *p, size_t size, size_t n, void *ud) {
  transfer *t = ud;
  rc__buf_add(&t->body, p, size * n);
  if (t->body.oom) return 0;
  if (!t->on_line) return size * n;
  /* A stream: hand each complete line over, keep the rest. */
  char *start = t->body.p, *nl;
  while ((nl = memchr(start, '\n', t->body.n - (size_t)(start - t->body.p)))) {
    lua_pushvalue(t->L, t->on_line);
    lua_pushlstring(t->L, start, (size_t)(nl - start));
    if (lua_pcall(t->L, 1, 0, 0) != LUA_OK) {
      t->failed = true;
      return 0;
    }
    start = nl + 1;
  }
  size_t rest = t->body.n - (size_t)(start - t->body.p);
  memmove(t->body.p, start, rest);
  t->body.n = rest;
  return size * n;
}

/* Ctrl-C ends a stream (events()); it is how a tail is meant to stop. */
static int on_progress(void *ud, curl_off_t a, curl_off_t b, curl_off_t c, curl_off_t d) {
  RC__UNUSED(ud);
  RC__UNUSED(a);
  RC__UNUSED(b);
  RC__UNUSED(c);
  RC__UNUSED(d);
  return interrupted ? 1 : 0;
}

/* __request(method, path_and_query [, on_line]) -> status, body, content_type.
 * With on_line the answer is a stream: on_line(line) for each line until the server
 * ends it or Ctrl-C (then status is 0). Raises when the endpoint cannot be reached. */
static int l_request(lua_State *L) {
  const char *method = luaL_checkstring(L, 1);
  const char *path = luaL_checkstring(L, 2);
  bool stream = !lua_isnoneornil(L, 3);
  if (stream) luaL_checktype(L, 3, LUA_TFUNCTION);
  char url[2048];
  if (snprintf(url, sizeof url, "%s%s", tgt.url, path) >= (int)sizeof url)
    return luaL_error(L, "request too long");
  CURL *h = curl_easy_init();
  if (!h) return luaL_error(L, "cannot create an HTTP handle");
  transfer t = {.L = L, .on_line = stream ? 3 : 0};
  rc__buf_init(&t.body);
  struct curl_slist *hdrs = tgt.auth[0] ? curl_slist_append(NULL, tgt.auth) : NULL;
  curl_easy_setopt(h, CURLOPT_URL, url);
  if (tgt.unix_path[0]) curl_easy_setopt(h, CURLOPT_UNIX_SOCKET_PATH, tgt.unix_path);
  if (!strcmp(method, "POST")) {
    curl_easy_setopt(h, CURLOPT_POST, 1L);
    curl_easy_setopt(h, CURLOPT_POSTFIELDS, "");
  }
  if (hdrs) curl_easy_setopt(h, CURLOPT_HTTPHEADER, hdrs);
  curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_data);
  curl_easy_setopt(h, CURLOPT_WRITEDATA, &t);
  curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS, 5000L);
  curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
  struct sigaction sa = {0}, old;
  if (stream) {
    interrupted = 0;
    sa.sa_handler = on_sigint;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, &old);
    curl_easy_setopt(h, CURLOPT_NOPROGRESS, 0L);
    curl_easy_setopt(h, CURLOPT_XFERINFOFUNCTION, on_progress);
  } else {
    curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, 30000L);
  }
  CURLcode rc = curl_easy_perform(h);
  if (stream) sigaction(SIGINT, &old, NULL);
  long status = 0;
  curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &status);
  const char *ctype = NULL;
  curl_easy_getinfo(h, CURLINFO_CONTENT_TYPE, &ctype);
  char type[128];
  snprintf(type, sizeof type, "%s", ctype ? ctype : "");
  char why[CURL_ERROR_SIZE];
  snprintf(why, sizeof why, "%s", curl_easy_strerror(rc));
  curl_slist_free_all(hdrs);
  curl_easy_cleanup(h);
  if (t.failed) {
    rc__buf_free(&t.body);
    return lua_error(L); /* on_line's error, at the top */
  }
  bool stopped = stream && rc == CURLE_ABORTED_BY_CALLBACK;
  if (rc != CURLE_OK && !stopped) {
    rc__buf_free(&t.body);
    return luaL_error(L, "cannot reach the admin endpoint at %s: %s",
                      tgt.unix_path[0] ? tgt.unix_path : tgt.url, why);
  }
  lua_pushinteger(L, stopped ? 0 : status);
  lua_pushlstring(L, t.body.p ? t.body.p : "", t.body.n);
  lua_pushstring(L, type);
  rc__buf_free(&t.body);
  return 3;
}

/* __escape(s) -> s percent-encoded for a query string. */
static int l_escape(lua_State *L) {
  size_t n;
  const char *s = luaL_checklstring(L, 1, &n);
  char *e = curl_easy_escape(NULL, s, (int)n);
  if (!e) return luaL_error(L, "out of memory");
  lua_pushstring(L, e);
  curl_free(e);
  return 1;
}

/* ---- the functions people call ---- */

/* Called with (request, escape, json, cjson); returns the table of functions. Each
 * returns the decoded answer (tables keep the answer's text for --json in their
 * metatable); an HTTP error raises "STATUS: message". */
static const char ATTACH_LUA[] =
  "local request, escape, json, cjson, parse = ...\n"
  "-- The engine's own JSON parser: integers stay integers (cjson makes them floats).\n"
  "local function decode(text)\n"
  "  local v, err = parse(text, 'json')\n"
  "  if v == nil and err then error(err, 0) end\n"
  "  return v\n"
  "end\n"
  "local raw_mt = {}\n"
  "local function call(method, path)\n"
  "  local status, body, ctype = request(method, path)\n"
  "  if ctype:find('json', 1, true) then\n"
  "    local ok, v = pcall(decode, body)\n"
  "    if not ok then error('malformed JSON from the endpoint: ' .. tostring(v), 0) end\n"
  "    if status >= 300 then\n"
  "      error(('%d: %s'):format(status, type(v) == 'table' and v.error or body), 0)\n"
  "    end\n"
  "    if type(v) == 'table' then return setmetatable(v, { __index = raw_mt, raw = body }) end\n"
  "    return v\n"
  "  end\n"
  "  if status >= 300 then error(('%d: %s'):format(status, body), 0) end\n"
  "  return body\n"
  "end\n"
  "local A = {}\n"
  "function A.status() return call('GET', '/status') end\n"
  "function A.get(path)\n"
  "  if path == nil or path == '' then return call('GET', '/config') end\n"
  "  return call('GET', '/config?path=' .. escape(tostring(path)))\n"
  "end\n"
  "function A.history() return call('GET', '/history') end\n"
  "function A.diff(a, b)\n"
  "  if math.type(a) ~= 'integer' or math.type(b) ~= 'integer' then\n"
  "    error('diff(a, b): two revision numbers expected', 2)\n"
  "  end\n"
  "  return call('GET', ('/diff?from=%d&to=%d'):format(a, b))\n"
  "end\n"
  "function A.reload(...)\n"
  "  local names = select('#', ...) == 1 and type(...) == 'table' and ... or { ... }\n"
  "  if #names == 0 then return call('POST', '/reload') end\n"
  "  local parts = {}\n"
  "  for i, n in ipairs(names) do parts[i] = escape(tostring(n)) end\n"
  "  return call('POST', '/reload?component=' .. table.concat(parts, ','))\n"
  "end\n"
  "function A.rollback(n)\n"
  "  if math.type(n) ~= 'integer' then error('rollback(n): a revision number expected', 2) end\n"
  "  return call('POST', ('/rollback?revision=%d'):format(n))\n"
  "end\n"
  "function A.unpin() return call('POST', '/unpin') end\n"
  "function A.explain(n)\n"
  "  if math.type(n) ~= 'integer' then error('explain(n): a revision number expected', 2) end\n"
  "  return call('GET', ('/explain?revision=%d'):format(n))\n"
  "end\n"
  "function A.ready() return call('GET', '/readyz') end\n"
  "function A.metrics() return call('GET', '/metrics') end\n"
  "-- events(): prints each live event until Ctrl-C (or the process stops).\n"
  "function A.events()\n"
  "  local name\n"
  "  local status = request('GET', '/events', function(line)\n"
  "    local ev = line:match('^event: (.*)')\n"
  "    if ev then name = ev return end\n"
  "    local data = line:match('^data: (.*)')\n"
  "    if not data then return end\n"
  "    if json then io.stdout:write(data, '\\n') io.stdout:flush() return end\n"
  "    local ok, e = pcall(decode, data)\n"
  "    if not ok or type(e) ~= 'table' then return end\n"
  "    local t = os.date('!%H:%M:%S', (e.time_ns or 0) // 1000000000)\n"
  "    local out = { t, e.event or name or '?' }\n"
  "    if e.component then out[#out + 1] = '[' .. e.component .. ']' end\n"
  "    if e.message then out[#out + 1] = e.message end\n"
  "    if e.revision then out[#out + 1] = '(revision ' .. e.revision .. ')' end\n"
  "    io.stdout:write(table.concat(out, ' '), '\\n')\n"
  "    io.stdout:flush()\n"
  "  end)\n"
  "  if status == 0 then io.stdout:write('\\n') end -- Ctrl-C: the prompt on a line of its own\n"
  "  if status >= 300 then error(('%d: cannot stream events'):format(status), 0) end\n"
  "end\n"
  "function A.help()\n"
  "  io.stdout:write([[\n"
  "reactcfg-lua attach: the REPL on a running process's admin endpoint.\n"
  "  status()               the engine's status\n"
  "  get([path])            the running configuration, or the value at path\n"
  "                         (secrets are redacted by the process)\n"
  "  history()              the revisions kept, with time, trigger and changes\n"
  "  diff(a, b)             what changed from revision a to revision b\n"
  "  reload(['name', ...])  re-read sources now (all without names)\n"
  "  rollback(n), unpin()   back to kept revision n and pin it; apply sources again\n"
  "  ready(), metrics()     readiness; the Prometheus metrics text\n"
  "  explain(n)             the decisions behind revision n (when the process keeps\n"
  "                         them: --run --admin keeps the last 16)\n"
  "  events()               print live events until Ctrl-C\n"
  "  pp(value, ...)         pretty-print values\n"

  "]])\n"
  "end\n"
  "-- --json: a table as the endpoint's own text; anything else through cjson.\n"
  "local function show_json(...)\n"
  "  for i = 1, select('#', ...) do\n"
  "    local v = select(i, ...)\n"
  "    local mt = type(v) == 'table' and getmetatable(v)\n"
  "    local text = mt and mt.raw or cjson.encode(v)\n"
  "    io.stdout:write((text:gsub('\\n$', '')), '\\n')\n"
  "  end\n"
  "  io.stdout:flush()\n"
  "end\n"
  "return A, show_json\n";

/* Registry key of the JSON printer ATTACH_LUA returns. */
static const char SHOW_JSON_KEY = 'j';

int attach_open(lua_State *L, bool json) {
  if (luaL_loadbufferx(L, ATTACH_LUA, sizeof ATTACH_LUA - 1, "=attach", "t") != LUA_OK)
    return lua_error(L);
  lua_pushcfunction(L, l_request);
  lua_pushcfunction(L, l_escape);
  lua_pushboolean(L, json);
  lua_getglobal(L, "cjson");
  lua_pushcfunction(L, rc__lua_parse);
  lua_call(L, 5, 2);                                /* stack: A, show_json */
  lua_rawsetp(L, LUA_REGISTRYINDEX, &SHOW_JSON_KEY);
  lua_pushnil(L);
  while (lua_next(L, -2)) {                         /* stack: A, name, fn */
    lua_setglobal(L, lua_tostring(L, -2));
  }
  lua_pop(L, 1);
  return 0;
}

bool attach_show_json(lua_State *L, int n) {
  lua_rawgetp(L, LUA_REGISTRYINDEX, &SHOW_JSON_KEY);
  lua_insert(L, -(n + 1));
  return lua_pcall(L, n, 0, 0) == LUA_OK;
}
