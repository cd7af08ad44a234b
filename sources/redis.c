/* SPDX-License-Identifier: MIT (see LICENSE) */
/* redis.c: the Redis source. A string key (parsed in `format`), a hash (a table of its
 * fields) or a key prefix (a table keyed by the rest of each key name, found with SCAN,
 * never KEYS), followed by keyspace notifications, through hiredis's async API on the
 * engine's loop. The rules it keeps (shared/research/wave2-protocols.md, Redis):
 *  - notifications are off by default: CONFIG GET shows which classes are on, CONFIG SET
 *    adds the missing ones (K g $ h x e) to what was there; where CONFIG is refused
 *    (managed servers, ACLs, rename-command) the source says so once and polls every
 *    `interval` while retrying on the backoff schedule (hybrid.h);
 *  - a subscribed connection (RESP2) runs nothing else: one connection reads, one
 *    listens;
 *  - pub/sub is fire-and-forget: after every (re)connect, subscribe first, then read, so
 *    that nothing falls between the two;
 *  - FLUSHALL/FLUSHDB send no keyspace notification: client tracking (OPTIN, redirected
 *    to the listening connection, so no key is ever tracked) sends a null invalidation
 *    on a flush, and the source reads again;
 *  - every read is one MULTI/EXEC (TYPE, GETRANGE bounded by max_bytes, HGETALL, PTTL):
 *    value, type and time to live of one moment; a prefix is SCANned, then read key by
 *    key, and a notification re-reads only its key;
 *  - a key that expires or is deleted is absent; its TTL is ctx.ttl (seconds, at the
 *    read); `ttl` in the options makes the value absent after that long without a
 *    fresh read (rc__src_withdraw), and reads again every ttl/2 while all is well.
 * Debian ships hiredis 0.14, whose libuv adapter drops poll errors (a refused connect
 * then hangs for ever) and whose handles the engine could not count: the small adapter
 * below replaces it. hiredis 0.14 has no TLS and allocates with malloc (aborting on OOM):
 * replies are bounded by max_bytes before it allocates them (reply functions that
 * count), and unparsed input by the same bound. */
#include "hybrid.h"
#include "sigpipe.h"

#include <arpa/inet.h>
#include <hiredis/async.h>
#include <hiredis/hiredis.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Keys per SCAN step: the server's effort per call, not a limit. */
#define REDIS_SCAN_COUNT "1000"
/* Keys a notification may mark for re-reading before the source reads everything. */
#define REDIS_DIRTY_MAX 1024
/* Room for protocol overhead beyond max_bytes in one reply. */
#define REDIS_REPLY_SLACK 65536
/* The classes of keyspace notifications the source needs: K keyspace channel, g generic
 * (del, expire, rename), $ strings, h hashes, x expired, e evicted. */
#define REDIS_NOTIFY_NEEDED "Kg$hxe"
#define REDIS_TRACKING_CHANNEL "__redis__:invalidate"

typedef enum { MODE_KEY, MODE_HASH, MODE_PREFIX } redis_mode;
typedef enum { ST_IDLE, ST_RESOLVING, ST_CONNECTING, ST_READY } redis_state;

typedef struct redis_source redis_source;

/* Counts the bytes of one reply as hiredis builds it, and refuses it past `max` before
 * hiredis allocates the rest (a NULL object is an out-of-memory error to hiredis: the
 * connection is dropped and the error says why). */
typedef struct redis_budget {
  redisReplyObjectFunctions *orig;  /* hiredis's own functions */
  redisReplyObjectFunctions fns;    /* the counting ones, installed in the reader */
  size_t used, max;
  bool over;
} redis_budget;

/* One connection: hiredis's async context and what the source knows about it. */
typedef struct redis_conn {
  redisAsyncContext *ac;   /* NULL when closed */
  redis_source *s;
  const char *role;        /* "reading" or "listening", for messages */
  redis_budget budget;
} redis_conn;

/* One key read (MULTI ... EXEC). */
typedef struct redis_item {
  char *key;               /* the full key name (owned) */
  rc_value_t *value;       /* owned; NULL = absent */
  int64_t pttl;            /* ms to expiry; -1 = none, -2 = no such key */
  size_t bytes;            /* raw bytes read */
} redis_item;

/* What the source knows of each key it delivered: for ctx.ttl and the byte limit. */
typedef struct redis_entry {
  char *key;               /* owned */
  uint64_t expires_at;     /* loop ms; 0 = no expiry */
  size_t bytes;
} redis_entry;

/* A name lookup in flight on the thread pool; outlives the source if need be. */
typedef struct redis_resolve {
  uv_getaddrinfo_t req;
  redis_source *s;         /* NULL once abandoned */
  rc__host *host;
} redis_resolve;

struct redis_source {
  rc__remote r;
  rc__hybrid hy;           /* polling while notifications are unavailable */
  redis_mode mode;
  const char *host, *user, *url_password, *name;  /* borrowed from the options */
  size_t name_len;
  int port, db;
  rc__format fmt;
  uint64_t ttl_ms;         /* 0: no `ttl` */
  char *shown;             /* "redis://host:port/db key" for messages (no password) */
  char *channel;           /* __keyspace@<db>__:<key>, or the pattern of a prefix */
  size_t channel_plen;     /* length of "__keyspace@<db>__:" */
  char *match;             /* SCAN MATCH pattern of a prefix */
  char ip[64];
  redis_state st;
  redis_conn cmd, sub;
  redis_resolve *resolving;
  bool subscribing;        /* the listening connection is being set up */
  int sub_pending;         /* subscribe confirmations still awaited */
  long long sub_id;        /* CLIENT ID of the listening connection; 0: unknown */
  bool realtime;           /* subscribed with notifications on */
  bool probing;            /* a hybrid retry's CONFIG GET is in flight */
  bool told_tracking;      /* said once that flushes cannot be followed */
  /* Reads: one at a time; what notifications ask for meanwhile waits in `want_all` /
   * `dirty` and is read right after. */
  bool reading, want_all, read_all_now;
  uint64_t read_started_ns;  /* when the read in progress began (fetch-time metric) */
  char **dirty;            /* keys changed (prefix mode), owned */
  size_t ndirty;
  char **scanned;          /* keys found by the SCAN in progress, owned */
  size_t nscanned, scanned_cap;
  redis_item *items;
  size_t nitems, pending;
  bool read_failed;
  rc_error read_err;
  rc__buf raw;             /* key mode: the string read, parsed after the EXEC */
  bool raw_present;
  uint64_t parse_gen, gen; /* a parse that outlived its connection is dropped */
  redis_entry *entries;
  size_t nentries;
  uv_timer_t io_timer;     /* no answer within timeout_ms while waiting for one */
  uv_timer_t ttl_timer;    /* `ttl`: no fresh read for that long */
  int timers_open;
  bool stopping, remote_done;
  void (*done)(rc__source *);
};

static void conn_failed(redis_source *s, const rc_error *err);
static void kick_read(redis_source *s);
static void subscribe(redis_source *s);

/* ===================================================================================
 * hiredis on the engine's loop
 * =================================================================================== */

/* hiredis's event hooks on one uv_poll_t, modelled on its adapters/libuv.h with two
 * changes: a poll error (POLLERR: a refused connect, a reset) is handed to hiredis,
 * which reads the socket error and fails the connection (0.14's adapter returns and the
 * connection hangs), and the handle is counted by the host, its memory ours. */
typedef struct redis_poll {
  uv_poll_t handle;
  redisAsyncContext *ac;   /* NULL once hiredis cleaned up */
  rc__host *host;
  int events;
} redis_poll;

static void poll_cb(uv_poll_t *h, int status, int events) {
  redis_poll *p = h->data;
  if (status < 0) {
    /* libuv stopped the handle; reading surfaces the error (or the connect's). */
    if (p->ac) redisAsyncHandleRead(p->ac);
    if (p->ac && p->events) uv_poll_start(&p->handle, p->events, poll_cb);
    return;
  }
  if (p->ac && (events & UV_READABLE)) redisAsyncHandleRead(p->ac);
  if (p->ac && (events & UV_WRITABLE)) {
    /* hiredis writes with write(): a server gone since the last read raises SIGPIPE. */
    rc__sigpipe_guard g;
    rc__sigpipe_block(&g);
    redisAsyncHandleWrite(p->ac);
    rc__sigpipe_restore(&g);
  }
  /* A reply still arriving is held whole in the reader's buffer: bound it too. */
  if (p->ac) {
    redis_conn *c = p->ac->data;
    const redisReader *rd = p->ac->c.reader;
    if (c && c->ac == p->ac && rd && rd->len - rd->pos > c->budget.max) {
      c->budget.over = true;
      rc_error e = {0};
      rc__err(&e, RC_ELIMIT, c->s->shown, 0, 0, "a reply from Redis is larger than "
              "max_bytes (%zu bytes)", c->s->r.max_bytes);
      conn_failed(c->s, &e);
    }
  }
}

static void poll_set(redis_poll *p, int add, int del) {
  p->events = (p->events | add) & ~del;
  if (p->events) uv_poll_start(&p->handle, p->events, poll_cb);
  else uv_poll_stop(&p->handle);
}

static void ev_add_read(void *pd) { poll_set(pd, UV_READABLE, 0); }
static void ev_del_read(void *pd) { poll_set(pd, 0, UV_READABLE); }
static void ev_add_write(void *pd) { poll_set(pd, UV_WRITABLE, 0); }
static void ev_del_write(void *pd) { poll_set(pd, 0, UV_WRITABLE); }

static void poll_closed(uv_handle_t *h) {
  redis_poll *p = h->data;
  rc__host_handle_closed(p->host);
  rc__free(p);
}

/* hiredis is freeing the context: the handle goes (its close callback frees it). */
static void ev_cleanup(void *pd) {
  redis_poll *p = pd;
  p->ac = NULL;
  uv_close((uv_handle_t *)&p->handle, poll_closed);
}

static int attach(redisAsyncContext *ac, uv_loop_t *loop, rc__host *host) {
  redis_poll *p = rc__calloc(1, sizeof *p);
  if (!p) return RC_ENOMEM;
  if (uv_poll_init(loop, &p->handle, ac->c.fd) != 0) {
    rc__free(p);
    return RC_ESYS;
  }
  p->handle.data = p;
  p->ac = ac;
  p->host = host;
  rc__host_handle_opened(host);
  ac->ev.data = p;
  ac->ev.addRead = ev_add_read;
  ac->ev.delRead = ev_del_read;
  ac->ev.addWrite = ev_add_write;
  ac->ev.delWrite = ev_del_write;
  ac->ev.cleanup = ev_cleanup;
  return 0;
}

/* ---- replies bounded while hiredis builds them ---- */

static bool charge(const redisReadTask *t, size_t n) {
  redis_budget *b = t->privdata;
  if (!t->parent) b->used = 0;  /* the first object of a new reply */
  b->used += n + sizeof(redisReply);
  if (b->used <= b->max) return true;
  b->over = true;
  return false;
}

static void *budget_string(const redisReadTask *t, char *str, size_t len) {
  redis_budget *b = t->privdata;
  return charge(t, len) ? b->orig->createString(t, str, len) : NULL;
}

static void *budget_array(const redisReadTask *t, int n) {
  redis_budget *b = t->privdata;
  return charge(t, (size_t)(n > 0 ? n : 0) * sizeof(void *))
         ? b->orig->createArray(t, n) : NULL;
}

static void *budget_integer(const redisReadTask *t, long long v) {
  redis_budget *b = t->privdata;
  return charge(t, 0) ? b->orig->createInteger(t, v) : NULL;
}

static void *budget_nil(const redisReadTask *t) {
  redis_budget *b = t->privdata;
  return charge(t, 0) ? b->orig->createNil(t) : NULL;
}

/* ===================================================================================
 * Connections
 * =================================================================================== */

/* The connection closes without calling back into the source: replies still pending
 * come back NULL and are ignored (conn->ac no longer matches). From inside one of its
 * own callbacks hiredis frees the context once the callback returns. */
static void conn_close(redis_conn *c) {
  redisAsyncContext *ac = c->ac;
  c->ac = NULL;
  if (ac) redisAsyncFree(ac);
}

static void on_connect(const redisAsyncContext *ac, int status) {
  redis_conn *c = ac->data;
  if (!c || c->ac != ac || status == REDIS_OK) return;
  c->ac = NULL;  /* hiredis frees it after this returns */
  rc_error e = {0};
  rc__err(&e, RC_EIO, c->s->shown, 0, 0, "cannot connect to Redis at %s: %s",
          c->s->shown, ac->errstr[0] ? ac->errstr : "connection failed");
  conn_failed(c->s, &e);
}

static void on_disconnect(const redisAsyncContext *ac, int status) {
  RC__UNUSED(status);
  redis_conn *c = ac->data;
  if (!c || c->ac != ac) return;
  c->ac = NULL;  /* hiredis frees it after this returns */
  rc_error e = {0};
  if (c->budget.over)
    rc__err(&e, RC_ELIMIT, c->s->shown, 0, 0, "a reply from Redis is larger than "
            "max_bytes (%zu bytes)", c->s->r.max_bytes);
  else
    rc__err(&e, RC_EIO, c->s->shown, 0, 0, "the %s connection to Redis was lost: %s",
            c->role, ac->errstr[0] ? ac->errstr : "closed by the server");
  conn_failed(c->s, &e);
}

/* Opens connection `c` to s->ip. 0 or an RC_E* code with `err` filled. */
static int conn_open(redis_source *s, redis_conn *c, rc_error *err) {
  redisAsyncContext *ac = redisAsyncConnect(s->ip, s->port);
  if (!ac) return rc__err(err, RC_ENOMEM, s->shown, 0, 0, "out of memory");
  if (ac->err) {
    rc__err(err, RC_EIO, s->shown, 0, 0, "cannot connect to Redis at %s: %s", s->shown,
            ac->errstr);
    redisAsyncFree(ac);
    return RC_EIO;
  }
  int rc = attach(ac, rc__src_loop(s->r.ctx), rc__src_host(s->r.ctx));
  if (rc) {
    redisAsyncFree(ac);
    return rc__err(err, rc, s->shown, 0, 0, "cannot watch the Redis connection");
  }
  c->s = s;
  c->budget.orig = ac->c.reader->fn;
  c->budget.fns = (redisReplyObjectFunctions){budget_string, budget_array, budget_integer,
                                               budget_nil, c->budget.orig->freeObject};
  c->budget.max = s->r.max_bytes + REDIS_REPLY_SLACK;
  c->budget.over = false;
  ac->c.reader->fn = &c->budget.fns;
  ac->c.reader->privdata = &c->budget;
  ac->data = c;
  c->ac = ac;
  rc__tcp_dead_peer(ac->c.fd);   /* a peer gone without a word is noticed (~8 s) */
  redisAsyncSetConnectCallback(ac, on_connect);
  redisAsyncSetDisconnectCallback(ac, on_disconnect);
  return 0;
}

/* Sends one command (argv binary-safe; lens NULL: C strings). False when hiredis
 * refused it (the context is going away). */
static bool send_cmd(redis_conn *c, redisCallbackFn *fn, void *pd, int argc,
                     const char **argv, const size_t *lens) {
  size_t l[8];
  if (!lens) {
    for (int i = 0; i < argc && i < 8; i++) l[i] = strlen(argv[i]);
    lens = l;
  }
  return c->ac && redisAsyncCommandArgv(c->ac, fn, pd, argc, argv, lens) == REDIS_OK;
}

/* The source's connection that a callback's context belongs to, or NULL when the
 * reply is stale (its connection was closed) or there is none (teardown). */
static redis_source *owner(redisAsyncContext *ac, void *reply) {
  redis_conn *c = ac->data;
  if (!reply || !c || c->ac != ac || c->s->stopping) return NULL;
  return c->s;
}

/* ---- the deadline: no answer within timeout_ms while one is awaited ---- */

static bool awaiting(const redis_source *s) {
  return s->st == ST_RESOLVING || s->st == ST_CONNECTING || s->subscribing ||
         (s->cmd.ac && s->cmd.ac->replies.head);
}

/* Re-arms the deadline after progress, or stops it when nothing is awaited. */
static void io_timer_cb(uv_timer_t *t);
static void deadline(redis_source *s) {
  if (!(s->timers_open & 1) || s->stopping) return;
  if (awaiting(s)) uv_timer_start(&s->io_timer, io_timer_cb, s->r.timeout_ms, 0);
  else uv_timer_stop(&s->io_timer);
}

static void io_timer_cb(uv_timer_t *t) {
  redis_source *s = t->data;
  if (s->stopping || !awaiting(s)) return;
  rc_error e = {0};
  rc__err(&e, RC_EIO, s->shown, 0, 0, "no answer from Redis at %s within %" PRIu32
          " ms", s->shown, s->r.timeout_ms);
  conn_failed(s, &e);
}

/* ===================================================================================
 * Reads
 * =================================================================================== */

static void free_items(redis_source *s) {
  for (size_t i = 0; i < s->nitems; i++) {
    rc__free(s->items[i].key);
    rc__value_unref(s->items[i].value);
  }
  rc__free(s->items);
  s->items = NULL;
  s->nitems = s->pending = 0;
}

static void free_list(char **list, size_t n) {
  for (size_t i = 0; i < n; i++) rc__free(list[i]);
  rc__free(list);
}

static void free_entries(redis_source *s) {
  for (size_t i = 0; i < s->nentries; i++) rc__free(s->entries[i].key);
  rc__free(s->entries);
  s->entries = NULL;
  s->nentries = 0;
}

/* Forgets every read in progress (a connection failed or the source stops). */
static void reset_reads(redis_source *s) {
  free_items(s);
  free_list(s->scanned, s->nscanned);
  s->scanned = NULL;
  s->nscanned = s->scanned_cap = 0;
  free_list(s->dirty, s->ndirty);
  s->dirty = NULL;
  s->ndirty = 0;
  rc__buf_reset(&s->raw);
  s->reading = false;
  s->read_failed = false;
  s->want_all = true;
  s->gen++;
}

/* The name below the prefix (prefix mode) or the key itself. */
static const char *rel_name(const redis_source *s, const char *key) {
  return s->mode == MODE_PREFIX ? key + s->name_len : key;
}

/* Parses `len` bytes of `what` in the source's format into *out. */
static int parse_bytes(redis_source *s, const char *bytes, size_t len, const char *key,
                       const char *field, rc_value_t **out, rc_error *e) {
  char where[512];
  if (field)
    snprintf(where, sizeof where, "%s (key %.200s, field %.100s)", s->shown, key, field);
  else if (s->mode == MODE_PREFIX)
    snprintf(where, sizeof where, "%s (key %.200s)", s->shown, key);
  else
    snprintf(where, sizeof where, "%s", s->shown);
  return rc__remote_parse(&s->r, s->fmt, bytes, len, where, out, e);
}

/* A hash's fields as an object, each value parsed in the source's format. */
static int hash_value(redis_source *s, const char *key, const redisReply *h,
                      rc_value_t **out, size_t *bytes, rc_error *e) {
  if (h->type == REDIS_REPLY_ERROR)
    return rc__err(e, RC_EIO, s->shown, 0, 0, "Redis refused HGETALL %.200s: %s", key,
                   h->str);
  if (h->type != REDIS_REPLY_ARRAY || h->elements % 2)
    return rc__err(e, RC_EPARSE, s->shown, 0, 0, "unexpected reply to HGETALL %.200s", key);
  if (h->elements / 2 > s->r.limits.max_nodes)
    return rc__err(e, RC_ELIMIT, s->shown, 0, 0, "hash %.200s has more than %zu fields",
                   key, s->r.limits.max_nodes);
  rc__object_builder b;
  rc__object_begin(&b);
  int rc = 0;
  for (size_t i = 0; rc == 0 && i < h->elements; i += 2) {
    const redisReply *f = h->element[i], *v = h->element[i + 1];
    if (f->type != REDIS_REPLY_STRING || v->type != REDIS_REPLY_STRING) {
      rc = rc__err(e, RC_EPARSE, s->shown, 0, 0, "unexpected reply to HGETALL %.200s", key);
      break;
    }
    *bytes += f->len + v->len;
    if (*bytes > s->r.max_bytes) {
      rc = rc__err(e, RC_ELIMIT, s->shown, 0, 0, "%.200s is larger than max_bytes (%zu "
                   "bytes)", key, s->r.max_bytes);
      break;
    }
    rc_value_t *fv = NULL;
    rc = parse_bytes(s, v->str, v->len, key, f->str, &fv, e);
    if (rc == 0) rc__object_put(&b, f->str, f->len, fv);
  }
  if (rc) {
    rc__object_abort(&b);
    return rc;
  }
  *out = rc__object_end(&b);
  return *out ? 0 : rc__err(e, RC_ENOMEM, s->shown, 0, 0, "out of memory");
}

/* One EXEC reply (TYPE, GETRANGE, HGETALL, PTTL) into `it`. In key mode the string is
 * kept raw (s->raw) and parsed afterwards, maybe on the thread pool. */
static int item_from_reply(redis_source *s, redis_item *it, const redisReply *rep,
                           rc_error *e) {
  const char *key = it->key;
  if (rep->type == REDIS_REPLY_ERROR)
    return rc__err(e, RC_EIO, s->shown, 0, 0, "Redis refused to read %.200s: %s", key,
                   rep->str);
  if (rep->type != REDIS_REPLY_ARRAY || rep->elements != 4 ||
      rep->element[0]->type != REDIS_REPLY_STATUS)
    return rc__err(e, RC_EPARSE, s->shown, 0, 0, "unexpected reply to the read of %.200s",
                   key);
  const char *type = rep->element[0]->str;
  const redisReply *str = rep->element[1], *hash = rep->element[2], *ttl = rep->element[3];
  it->pttl = ttl->type == REDIS_REPLY_INTEGER ? ttl->integer : -1;
  if (strcmp(type, "none") == 0) {
    it->pttl = -2;
    return 0;
  }
  bool is_string = strcmp(type, "string") == 0, is_hash = strcmp(type, "hash") == 0;
  if ((s->mode == MODE_KEY && !is_string) || (s->mode == MODE_HASH && !is_hash) ||
      (!is_string && !is_hash))
    return rc__err(e, RC_EPARSE, s->shown, 0, 0, "%.200s is a %s in Redis; rc.redis reads %s",
                   key, type, s->mode == MODE_KEY ? "a string with key = (a hash with "
                   "hash =)" : s->mode == MODE_HASH ? "a hash with hash = (a string "
                   "with key =)" : "strings and hashes");
  if (is_hash) return hash_value(s, key, hash, &it->value, &it->bytes, e);
  if (str->type == REDIS_REPLY_ERROR)
    return rc__err(e, RC_EIO, s->shown, 0, 0, "Redis refused GETRANGE %.200s: %s", key,
                   str->str);
  if (str->type != REDIS_REPLY_STRING)
    return rc__err(e, RC_EPARSE, s->shown, 0, 0, "unexpected reply to GETRANGE %.200s", key);
  if (str->len > s->r.max_bytes)
    return rc__err(e, RC_ELIMIT, s->shown, 0, 0, "%.200s is larger than max_bytes (%zu "
                   "bytes)", key, s->r.max_bytes);
  it->bytes = str->len;
  if (s->mode == MODE_KEY) {
    rc__buf_reset(&s->raw);
    rc__buf_add(&s->raw, str->str, str->len);
    s->raw_present = true;
    return s->raw.oom ? rc__err(e, RC_ENOMEM, s->shown, 0, 0, "out of memory") : 0;
  }
  return parse_bytes(s, str->str, str->len, key, NULL, &it->value, e);
}

static void finish_read(redis_source *s);

static void on_exec(redisAsyncContext *ac, void *reply, void *pd) {
  redis_source *s = owner(ac, reply);
  if (!s) return;
  size_t i = (size_t)(uintptr_t)pd;
  deadline(s);
  if (!s->reading || i >= s->nitems || s->pending == 0) return;
  rc_error e = {0};
  if (item_from_reply(s, &s->items[i], reply, &e) != 0 && !s->read_failed) {
    s->read_failed = true;
    s->read_err = e;
  }
  if (--s->pending == 0) finish_read(s);
}

/* Reads the keys `keys` (moved in, `n` of them): one MULTI/EXEC each, pipelined. */
static void read_keys(redis_source *s, char **keys, size_t n) {
  free_items(s);
  s->items = n ? rc__calloc(n, sizeof *s->items) : NULL;
  if (n && !s->items) {
    free_list(keys, n);
    s->read_failed = true;
    rc__err(&s->read_err, RC_ENOMEM, s->shown, 0, 0, "out of memory");
    finish_read(s);
    return;
  }
  for (size_t i = 0; i < n; i++) s->items[i] = (redis_item){.key = keys[i], .pttl = -2};
  rc__free(keys);
  s->nitems = s->pending = n;
  s->raw_present = false;
  char end[32];
  snprintf(end, sizeof end, "%zu", s->r.max_bytes ? s->r.max_bytes : (size_t)-1 / 2);
  for (size_t i = 0; i < n; i++) {
    const char *k = s->items[i].key;
    const char *multi[] = {"MULTI"}, *type[] = {"TYPE", k},
               *range[] = {"GETRANGE", k, "0", end}, *hall[] = {"HGETALL", k},
               *pttl[] = {"PTTL", k}, *exec[] = {"EXEC"};
    if (!send_cmd(&s->cmd, NULL, NULL, 1, multi, NULL) ||
        !send_cmd(&s->cmd, NULL, NULL, 2, type, NULL) ||
        !send_cmd(&s->cmd, NULL, NULL, 4, range, NULL) ||
        !send_cmd(&s->cmd, NULL, NULL, 2, hall, NULL) ||
        !send_cmd(&s->cmd, NULL, NULL, 2, pttl, NULL) ||
        !send_cmd(&s->cmd, on_exec, (void *)(uintptr_t)i, 1, exec, NULL)) {
      rc_error e = {0};
      rc__err(&e, RC_EIO, s->shown, 0, 0, "cannot send a command to Redis at %s", s->shown);
      conn_failed(s, &e);
      return;
    }
  }
  deadline(s);
  if (n == 0) finish_read(s);
}

static int cmp_str(const void *a, const void *b) {
  return strcmp(*(char *const *)a, *(char *const *)b);
}

static void scan_from(redis_source *s, const char *cursor);

static void on_scan(redisAsyncContext *ac, void *reply, void *pd) {
  RC__UNUSED(pd);
  redis_source *s = owner(ac, reply);
  if (!s || !s->reading) return;
  deadline(s);
  const redisReply *rep = reply;
  rc_error e = {0};
  if (rep->type == REDIS_REPLY_ERROR) {
    rc__err(&e, RC_EIO, s->shown, 0, 0, "Redis refused SCAN: %s", rep->str);
  } else if (rep->type != REDIS_REPLY_ARRAY || rep->elements != 2 ||
             rep->element[0]->type != REDIS_REPLY_STRING ||
             rep->element[1]->type != REDIS_REPLY_ARRAY) {
    rc__err(&e, RC_EPARSE, s->shown, 0, 0, "unexpected reply to SCAN");
  } else {
    const redisReply *keys = rep->element[1];
    for (size_t i = 0; i < keys->elements && !e.code; i++) {
      const redisReply *k = keys->element[i];
      /* The key itself is no member (no name below the prefix); NUL bytes cannot be
       * table keys here. */
      if (k->type != REDIS_REPLY_STRING || k->len <= s->name_len || strlen(k->str) != k->len)
        continue;
      if (s->nscanned >= s->r.limits.max_nodes) {
        rc__err(&e, RC_ELIMIT, s->shown, 0, 0, "more than %zu keys under the prefix",
                s->r.limits.max_nodes);
        break;
      }
      if (RC__GROW(s->scanned, s->scanned_cap, s->nscanned + 1, 64)) {
        rc__err(&e, RC_ENOMEM, s->shown, 0, 0, "out of memory");
        break;
      }
      if (!(s->scanned[s->nscanned] = rc__strdup(k->str))) {
        rc__err(&e, RC_ENOMEM, s->shown, 0, 0, "out of memory");
        break;
      }
      s->nscanned++;
    }
    if (!e.code && strcmp(rep->element[0]->str, "0") != 0) {
      scan_from(s, rep->element[0]->str);
      return;
    }
  }
  if (e.code) {
    s->read_failed = true;
    s->read_err = e;
    finish_read(s);
    return;
  }
  /* SCAN may return a key twice: sorted, the copies are neighbours. */
  if (s->nscanned) qsort(s->scanned, s->nscanned, sizeof *s->scanned, cmp_str);
  size_t n = 0;
  for (size_t i = 0; i < s->nscanned; i++) {
    if (n && strcmp(s->scanned[n - 1], s->scanned[i]) == 0) rc__free(s->scanned[i]);
    else s->scanned[n++] = s->scanned[i];
  }
  char **keys = s->scanned;
  s->scanned = NULL;
  s->nscanned = s->scanned_cap = 0;
  read_keys(s, keys, n);
}

static void scan_from(redis_source *s, const char *cursor) {
  const char *argv[] = {"SCAN", cursor, "MATCH", s->match, "COUNT", REDIS_SCAN_COUNT};
  if (!send_cmd(&s->cmd, on_scan, NULL, 6, argv, NULL)) {
    rc_error e = {0};
    rc__err(&e, RC_EIO, s->shown, 0, 0, "cannot send a command to Redis at %s", s->shown);
    conn_failed(s, &e);
    return;
  }
  deadline(s);
}

/* Starts the next read if one is wanted and none runs: everything (after a connect, a
 * flush, a failure, a poll) or the keys notifications named. */
static void kick_read(redis_source *s) {
  /* While subscribing, reads wait: the one after the subscription misses nothing. */
  if (s->stopping || s->st != ST_READY || s->reading || s->r.job || s->subscribing) return;
  if (s->mode != MODE_PREFIX && s->ndirty) {
    free_list(s->dirty, s->ndirty);
    s->dirty = NULL;
    s->ndirty = 0;
    s->want_all = true;
  }
  if (!s->want_all && !s->ndirty) return;
  s->reading = true;
  s->read_started_ns = rc__mono_ns();
  s->read_failed = false;
  s->read_all_now = s->want_all;
  s->want_all = false;
  if (!s->read_all_now) {
    char **keys = s->dirty;
    size_t n = s->ndirty;
    s->dirty = NULL;
    s->ndirty = 0;
    read_keys(s, keys, n);
    return;
  }
  free_list(s->dirty, s->ndirty);
  s->dirty = NULL;
  s->ndirty = 0;
  if (s->mode == MODE_PREFIX) {
    scan_from(s, "0");
    return;
  }
  char **keys = rc__calloc(1, sizeof *keys);
  if (keys && !(keys[0] = rc__strdup(s->name))) {
    rc__free(keys);
    keys = NULL;
  }
  if (!keys) {
    s->read_failed = true;
    rc__err(&s->read_err, RC_ENOMEM, s->shown, 0, 0, "out of memory");
    finish_read(s);
    return;
  }
  read_keys(s, keys, 1);
}

/* A notification named `key` (a full key name). */
static void key_changed(redis_source *s, const char *key, size_t len) {
  if (s->mode != MODE_PREFIX || s->want_all) {
    s->want_all = true;
  } else if (len > s->name_len && strlen(key) == len &&
             memcmp(key, s->name, s->name_len) == 0) {
    for (size_t i = 0; i < s->ndirty; i++)
      if (strcmp(s->dirty[i], key) == 0) goto queued;
    if (s->ndirty % 16 == 0) {
      char **p = s->ndirty < REDIS_DIRTY_MAX
                 ? rc__realloc(s->dirty, (s->ndirty + 16) * sizeof *p) : NULL;
      if (!p) {
        s->want_all = true;  /* too many to list: read everything */
        goto queued;
      }
      s->dirty = p;
    }
    if ((s->dirty[s->ndirty] = rc__strdup(key))) s->ndirty++;
    else s->want_all = true;
  }
queued:
  kick_read(s);
}

/* ---- the end of a read ---- */

static void set_entry(redis_source *s, const redis_item *it, uint64_t now) {
  size_t i = 0;
  while (i < s->nentries && strcmp(s->entries[i].key, it->key) != 0) i++;
  bool present = it->pttl != -2 && (it->value || s->mode == MODE_KEY);
  if (!present) {
    if (i < s->nentries) {
      rc__free(s->entries[i].key);
      s->entries[i] = s->entries[--s->nentries];
    }
    return;
  }
  if (i == s->nentries) {
    redis_entry *p = rc__realloc(s->entries, (s->nentries + 1) * sizeof *p);
    char *k = p ? rc__strdup(it->key) : NULL;
    if (p) s->entries = p;
    if (!k) return;  /* only ctx.ttl and the byte count miss it */
    s->entries[s->nentries++] = (redis_entry){.key = k};
  }
  s->entries[i].expires_at = it->pttl >= 0 ? now + (uint64_t)it->pttl : 0;
  s->entries[i].bytes = it->bytes;
}

/* ctx.ttl: seconds until the first of the keys expires, or none. */
static rc_value_t *make_meta(redis_source *s, uint64_t now) {
  uint64_t first = 0;
  for (size_t i = 0; i < s->nentries; i++)
    if (s->entries[i].expires_at && (!first || s->entries[i].expires_at < first))
      first = s->entries[i].expires_at;
  if (!first) return NULL;
  double secs = first > now ? (double)(first - now) / 1000.0 : 0.0;
  rc__object_builder b;
  rc__object_begin(&b);
  rc__object_put(&b, "ttl", 3, rc__value_float(secs));
  return rc__object_end(&b);
}

static void ttl_timer_cb(uv_timer_t *t);

/* A read succeeded with `v` (owned; NULL = absent). */
static void complete_read(redis_source *s, rc_value_t *v) {
  rc__remote *r = &s->r;
  uint64_t now = rc__remote_now(r);
  rc__remote_success(r);
  rc__src_set_meta(r->ctx, make_meta(s, now));
  rc__remote_deliver(r, v);
  if (s->ttl_ms && (s->timers_open & 2))
    uv_timer_start(&s->ttl_timer, ttl_timer_cb, s->ttl_ms, 0);
  s->reading = false;
  /* The next read: a poll while notifications are off, and with `ttl` at least every
   * ttl/2, so that a value the server still holds is never withdrawn. */
  uint64_t next = s->realtime ? 0 : rc__hybrid_poll_delay(&s->hy);
  uint64_t refresh = s->ttl_ms ? (s->ttl_ms / 2 ? s->ttl_ms / 2 : 1) : 0;
  if (refresh && (!next || refresh < next)) next = refresh;
  if (next) rc__remote_schedule(r, next);
  kick_read(s);
}

static void key_parsed(rc__remote *r, int rc, rc_value_t *v, const rc_error *err) {
  redis_source *s = (redis_source *)r;
  if (s->parse_gen != s->gen || s->st != ST_READY) {
    /* Its connection failed meanwhile: the read after the reconnect decides. */
    rc__value_unref(v);
    kick_read(s);
    return;
  }
  if (rc) {
    s->reading = false;
    s->want_all = true;
    rc__remote_fail(r, err, 0);
    return;
  }
  complete_read(s, v);
}

static void finish_read(redis_source *s) {
  rc__remote *r = &s->r;
  deadline(s);
  rc__src_fetch_time(r->ctx, rc__mono_ns() - s->read_started_ns);
  if (s->read_failed) {
    free_items(s);
    s->reading = false;
    s->want_all = true;  /* the retry reads everything */
    rc__remote_fail(r, &s->read_err, 0);
    return;
  }
  uint64_t now = rc__remote_now(r);
  if (s->mode == MODE_KEY) {
    set_entry(s, &s->items[0], now);
    bool present = s->items[0].pttl != -2 && s->raw_present;
    free_items(s);
    if (!present) {
      complete_read(s, NULL);
      return;
    }
    s->parse_gen = s->gen;
    rc__remote_parse_then(r, s->fmt, s->raw.p ? s->raw.p : "", s->raw.n, s->shown,
                          key_parsed);
    return;
  }
  if (s->mode == MODE_HASH) {
    set_entry(s, &s->items[0], now);
    rc_value_t *v = s->items[0].value;
    s->items[0].value = NULL;
    free_items(s);
    complete_read(s, v);
    return;
  }
  /* Prefix: a table built anew after a SCAN, else the keys read over the last value. */
  rc_value_t *v = NULL;
  bool oom = false;
  rc__object_builder b;
  if (s->read_all_now) {
    free_entries(s);
    rc__object_begin(&b);
  } else {
    v = rc__value_ref(r->last);
  }
  for (size_t i = 0; i < s->nitems; i++) {
    redis_item *it = &s->items[i];
    set_entry(s, it, now);
    const char *rel = rel_name(s, it->key);
    rc_value_t *mv = it->value;
    it->value = NULL;
    if (s->read_all_now) {
      if (mv) rc__object_put(&b, rel, strlen(rel), mv);
    } else if (!oom && (mv || (v && rc__object_get(v, rel)))) {
      rc_value_t *nv = rc__object_with(v, rel, mv);  /* mv moved in, v kept */
      rc__value_unref(v);
      v = nv;
      oom = !nv;
    } else {
      rc__value_unref(mv);
    }
  }
  free_items(s);
  if (s->read_all_now) {
    v = rc__object_end(&b);
    oom = !v;
  }
  size_t total = 0;
  for (size_t i = 0; i < s->nentries; i++) total += s->entries[i].bytes;
  rc_error e = {0};
  if (oom) {
    rc__err(&e, RC_ENOMEM, s->shown, 0, 0, "out of memory");
  } else if (total > r->max_bytes) {
    rc__err(&e, RC_ELIMIT, s->shown, 0, 0, "the keys under the prefix are larger than "
            "max_bytes together (%zu bytes)", r->max_bytes);
  }
  if (e.code) {
    rc__value_unref(v);
    s->reading = false;
    s->want_all = true;
    rc__remote_fail(r, &e, 0);
    return;
  }
  /* A prefix without keys is absent, as a missing key is. */
  if (v && v->type == RC_TYPE_OBJECT && v->len == 0) {
    rc__value_unref(v);
    v = NULL;
  }
  complete_read(s, v);
}

/* `ttl`: no fresh read for that long. The value becomes absent (a failing source stays
 * failing) and the next read starts from nothing. */
static void ttl_timer_cb(uv_timer_t *t) {
  redis_source *s = t->data;
  rc__remote *r = &s->r;
  if (s->stopping || (r->delivered && !r->last)) return;
  rc__src_state(r->ctx, s->shown, 0, "no fresh read from Redis for %" PRIu64 " ms (ttl): "
                "the value is treated as absent until the next read", s->ttl_ms);
  rc__value_unref(r->last);
  r->last = NULL;
  r->delivered = true;
  free_entries(s);
  rc__src_set_meta(r->ctx, NULL);
  s->want_all = true;
  rc__src_withdraw(r->ctx);
}

/* ===================================================================================
 * Connecting: AUTH, SELECT, notifications, then the listening connection
 * =================================================================================== */

/* Fails and tears down when `rep` is an error; true when it was one. */
static bool refused(redis_source *s, const redisReply *rep, const char *what) {
  if (rep->type != REDIS_REPLY_ERROR) return false;
  rc_error e = {0};
  rc__err(&e, RC_EIO, s->shown, 0, 0, "Redis at %s refused %s: %s", s->shown, what,
          rep->str);
  conn_failed(s, &e);
  return true;
}

static void on_auth(redisAsyncContext *ac, void *reply, void *pd) {
  RC__UNUSED(pd);
  redis_source *s = owner(ac, reply);
  if (!s) return;
  deadline(s);
  /* The server's message names no password (WRONGPASS ..., ERR AUTH <password> ...). */
  refused(s, reply, "the credentials (AUTH)");
}

static void on_select(redisAsyncContext *ac, void *reply, void *pd) {
  RC__UNUSED(pd);
  redis_source *s = owner(ac, reply);
  if (!s) return;
  deadline(s);
  refused(s, reply, "SELECT");
}

/* Notifications cannot be had: poll (saying so once, however often this repeats). */
static void no_notifications(redis_source *s, const char *why) {
  bool probe = s->probing;
  s->probing = false;
  s->realtime = false;
  if (probe) {  /* a retry while polling: the polls go on */
    rc__hybrid_retry_later(&s->hy);
    return;
  }
  if (!s->hy.polling) rc__hybrid_enter(&s->hy, s->shown, why);
  s->want_all = true;  /* a (re)connect: read now, then every interval */
  kick_read(s);
}

static void on_config_set(redisAsyncContext *ac, void *reply, void *pd) {
  RC__UNUSED(pd);
  redis_source *s = owner(ac, reply);
  if (!s) return;
  deadline(s);
  const redisReply *rep = reply;
  if (rep->type == REDIS_REPLY_ERROR) {
    char why[300];
    snprintf(why, sizeof why, "they are off on the server, and CONFIG SET was refused: "
             "%.200s", rep->str);
    no_notifications(s, why);
    return;
  }
  subscribe(s);
}

/* Whether the flags of notify-keyspace-events `v` include `c` ('A' stands for
 * g$lshzxetd). */
static bool has_flag(const char *v, char c) {
  return strchr(v, c) || (strchr(v, 'A') && strchr("g$lshzxetd", c));
}

static void on_config_get(redisAsyncContext *ac, void *reply, void *pd) {
  RC__UNUSED(pd);
  redis_source *s = owner(ac, reply);
  if (!s) return;
  if (s->st == ST_CONNECTING) s->st = ST_READY;  /* the last answer of the handshake */
  deadline(s);
  const redisReply *rep = reply;
  if (rep->type == REDIS_REPLY_ERROR || rep->type != REDIS_REPLY_ARRAY ||
      rep->elements != 2 || rep->element[1]->type != REDIS_REPLY_STRING) {
    char why[300];
    snprintf(why, sizeof why, "CONFIG GET notify-keyspace-events was refused: %.200s",
             rep->type == REDIS_REPLY_ERROR ? rep->str : "unexpected reply");
    no_notifications(s, why);
    return;
  }
  const char *cur = rep->element[1]->str;
  char want[64];
  snprintf(want, sizeof want, "%.40s", cur);
  size_t n = strlen(want);
  for (const char *f = REDIS_NOTIFY_NEEDED; *f; f++)
    if (!has_flag(cur, *f)) want[n++] = *f;
  want[n] = '\0';
  if (strcmp(want, cur) == 0) {
    subscribe(s);
    return;
  }
  const char *argv[] = {"CONFIG", "SET", "notify-keyspace-events", want};
  if (!send_cmd(&s->cmd, on_config_set, NULL, 4, argv, NULL)) return;
  deadline(s);
}

/* Asks which notification classes are on (and turns on the missing ones). */
static void ask_config(redis_source *s) {
  const char *argv[] = {"CONFIG", "GET", "notify-keyspace-events"};
  if (send_cmd(&s->cmd, on_config_get, NULL, 3, argv, NULL)) deadline(s);
}

/* ---- the listening connection ---- */

static void on_tracking(redisAsyncContext *ac, void *reply, void *pd) {
  RC__UNUSED(pd);
  redis_source *s = owner(ac, reply);
  if (!s) return;
  deadline(s);
  const redisReply *rep = reply;
  if (rep->type == REDIS_REPLY_ERROR && !s->told_tracking) {
    s->told_tracking = true;
    rc__src_state(s->r.ctx, s->shown, 0, "Redis refused client tracking (%.200s): a "
                  "FLUSHALL or FLUSHDB is seen only at the next change or reconnect",
                  rep->str);
  }
}

/* Subscribed: ask for flush messages, leave polling, and read everything (anything
 * published before the subscription was lost). */
static void subscribed(redis_source *s) {
  s->subscribing = false;
  if (s->sub_id > 0) {
    char id[32];
    snprintf(id, sizeof id, "%lld", s->sub_id);
    const char *argv[] = {"CLIENT", "TRACKING", "ON", "REDIRECT", id, "OPTIN"};
    send_cmd(&s->cmd, on_tracking, NULL, 6, argv, NULL);
  } else if (!s->told_tracking) {
    s->told_tracking = true;
    rc__src_state(s->r.ctx, s->shown, 0, "Redis did not tell its CLIENT ID: a FLUSHALL "
                  "or FLUSHDB is seen only at the next change or reconnect");
  }
  s->realtime = true;
  if (s->hy.polling) rc__hybrid_leave(&s->hy, s->shown);
  s->want_all = true;
  deadline(s);
  kick_read(s);
}

static void on_message(redisAsyncContext *ac, void *reply, void *pd) {
  RC__UNUSED(pd);
  redis_source *s = owner(ac, reply);
  if (!s) return;
  const redisReply *rep = reply;
  if (rep->type != REDIS_REPLY_ARRAY || rep->elements < 3 ||
      rep->element[0]->type != REDIS_REPLY_STRING)
    return;
  const char *kind = rep->element[0]->str;
  if (strcmp(kind, "subscribe") == 0 || strcmp(kind, "psubscribe") == 0) {
    if (s->subscribing && --s->sub_pending <= 0) subscribed(s);
    else deadline(s);
    return;
  }
  /* ["message", channel, payload] or ["pmessage", pattern, channel, payload] */
  bool pm = strcmp(kind, "pmessage") == 0;
  if (!pm && strcmp(kind, "message") != 0) return;
  if (rep->elements < (pm ? 4u : 3u)) return;
  const redisReply *ch = rep->element[pm ? 2 : 1], *payload = rep->element[pm ? 3 : 2];
  if (ch->type != REDIS_REPLY_STRING) return;
  if (strcmp(ch->str, REDIS_TRACKING_CHANNEL) == 0) {
    /* A null invalidation: the server flushed a database (maybe ours). Key lists are
     * left to the keyspace notifications. */
    if (payload->type == REDIS_REPLY_NIL) {
      s->want_all = true;
      kick_read(s);
    }
    return;
  }
  if (ch->len > s->channel_plen && memcmp(ch->str, s->channel, s->channel_plen) == 0)
    key_changed(s, ch->str + s->channel_plen, ch->len - s->channel_plen);
}

static void on_client_id(redisAsyncContext *ac, void *reply, void *pd) {
  RC__UNUSED(pd);
  redis_source *s = owner(ac, reply);
  if (!s) return;
  deadline(s);
  const redisReply *rep = reply;
  s->sub_id = rep->type == REDIS_REPLY_INTEGER ? rep->integer : 0;
}

static void on_sub_auth(redisAsyncContext *ac, void *reply, void *pd) {
  RC__UNUSED(pd);
  redis_source *s = owner(ac, reply);
  if (!s) return;
  deadline(s);
  refused(s, reply, "the credentials (AUTH) on the listening connection");
}

/* Sends AUTH on `c` when a password is configured. False when it could not be sent
 * (conn_failed has run) or the password is unreadable (reported). */
static bool send_auth(redis_source *s, redis_conn *c, redisCallbackFn *fn) {
  rc_error e = {0};
  const char *pw = s->url_password ? s->url_password : rc__token_get(&s->r.token, &e);
  if (!pw && e.code) {
    conn_failed(s, &e);
    return false;
  }
  if (!pw && !s->user) return true;
  if (!pw) {
    rc__err(&e, RC_EPOLICY, s->shown, 0, 0, "a user is named in addr but no password is "
            "given (password_env, password_file or the URL)");
    conn_failed(s, &e);
    return false;
  }
  const char *argv[] = {"AUTH", s->user ? s->user : pw, pw};
  return send_cmd(c, fn, NULL, s->user ? 3 : 2, argv, NULL);
}

static void subscribe(redis_source *s) {
  s->probing = false;
  if (s->subscribing || s->sub.ac) return;
  rc_error e = {0};
  if (conn_open(s, &s->sub, &e) != 0) {
    conn_failed(s, &e);
    return;
  }
  s->subscribing = true;
  s->sub_id = 0;
  if (!send_auth(s, &s->sub, on_sub_auth)) return;
  const char *id[] = {"CLIENT", "ID"};
  bool ok = send_cmd(&s->sub, on_client_id, NULL, 2, id, NULL);
  if (s->mode == MODE_PREFIX) {
    const char *sub[] = {"SUBSCRIBE", REDIS_TRACKING_CHANNEL};
    const char *psub[] = {"PSUBSCRIBE", s->channel};
    ok = ok && send_cmd(&s->sub, on_message, NULL, 2, sub, NULL) &&
         send_cmd(&s->sub, on_message, NULL, 2, psub, NULL);
  } else {
    const char *sub[] = {"SUBSCRIBE", REDIS_TRACKING_CHANNEL, s->channel};
    ok = ok && send_cmd(&s->sub, on_message, NULL, 3, sub, NULL);
  }
  s->sub_pending = 2;
  if (!ok) {
    rc__err(&e, RC_EIO, s->shown, 0, 0, "cannot send a command to Redis at %s", s->shown);
    conn_failed(s, &e);
    return;
  }
  deadline(s);
}

/* Opens the reading connection and sends the handshake (hiredis queues it until the
 * connection is up): AUTH, SELECT, CONFIG GET. */
static void connect_to_ip(redis_source *s) {
  rc_error e = {0};
  s->st = ST_CONNECTING;
  if (conn_open(s, &s->cmd, &e) != 0) {
    conn_failed(s, &e);
    return;
  }
  if (!send_auth(s, &s->cmd, on_auth)) return;
  if (s->db) {
    char db[16];
    snprintf(db, sizeof db, "%d", s->db);
    const char *argv[] = {"SELECT", db};
    if (!send_cmd(&s->cmd, on_select, NULL, 2, argv, NULL)) return;
  }
  ask_config(s);
}

static void resolved(uv_getaddrinfo_t *req, int status, struct addrinfo *res) {
  redis_resolve *q = req->data;
  redis_source *s = q->s;
  rc__host_handle_closed(q->host);
  rc__free(q);
  if (!s) {
    uv_freeaddrinfo(res);
    return;
  }
  s->resolving = NULL;
  rc_error e = {0};
  if (status != 0 || !res) {
    rc__err(&e, RC_EIO, s->shown, 0, 0, "cannot resolve the Redis host %.200s: %s",
            s->host, uv_strerror(status ? status : UV_EAI_NONAME));
  } else if (uv_ip_name(res->ai_addr, s->ip, sizeof s->ip) != 0) {
    rc__err(&e, RC_EIO, s->shown, 0, 0, "cannot use the address of %.200s", s->host);
  }
  uv_freeaddrinfo(res);
  if (e.code) conn_failed(s, &e);
  else connect_to_ip(s);
}

/* Connects: a literal address at once, a name through the thread pool (hiredis would
 * resolve it on the loop, blocking). */
static void connect_start(redis_source *s) {
  if (s->st != ST_IDLE || s->stopping) return;
  unsigned char buf[16];
  if (inet_pton(AF_INET, s->host, buf) == 1 || inet_pton(AF_INET6, s->host, buf) == 1) {
    snprintf(s->ip, sizeof s->ip, "%s", s->host);
    connect_to_ip(s);
    return;
  }
  rc_error e = {0};
  redis_resolve *q = rc__calloc(1, sizeof *q);
  if (!q) {
    rc__err(&e, RC_ENOMEM, s->shown, 0, 0, "out of memory");
    conn_failed(s, &e);
    return;
  }
  q->s = s;
  q->host = rc__src_host(s->r.ctx);
  q->req.data = q;
  struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM};
  char port[8];
  snprintf(port, sizeof port, "%d", s->port);
  int rc = uv_getaddrinfo(rc__src_loop(s->r.ctx), &q->req, resolved, s->host, port, &hints);
  if (rc) {
    rc__free(q);
    rc__err(&e, RC_EIO, s->shown, 0, 0, "cannot resolve the Redis host %.200s: %s",
            s->host, uv_strerror(rc));
    conn_failed(s, &e);
    return;
  }
  rc__host_handle_opened(q->host);  /* the engine waits for the callback */
  s->resolving = q;
  s->st = ST_RESOLVING;
  deadline(s);
}

/* Closes both connections and forgets reads in progress; the next connect starts from
 * the beginning. Polling, once entered, stays until notifications work again. */
static void teardown(redis_source *s) {
  if (s->resolving) {
    s->resolving->s = NULL;  /* its callback frees it */
    uv_cancel((uv_req_t *)&s->resolving->req);
    s->resolving = NULL;
  }
  conn_close(&s->sub);
  conn_close(&s->cmd);
  s->st = ST_IDLE;
  s->subscribing = s->realtime = s->probing = false;
  s->sub_pending = 0;
  reset_reads(s);
  deadline(s);
}

/* A connection failed (or answered what makes it useless): the last value stays, an
 * error event, and a reconnect on the backoff schedule. */
static void conn_failed(redis_source *s, const rc_error *err) {
  if (s->stopping) return;
  teardown(s);
  rc__remote_fail(&s->r, err, 0);
}

/* ===================================================================================
 * The source
 * =================================================================================== */

/* The remote timer: a reconnect after a failure, a poll, a refresh (ttl) or a retry. */
static void tick(rc__remote *r) {
  redis_source *s = (redis_source *)r;
  if (s->st == ST_IDLE) {
    connect_start(s);
  } else if (s->st == ST_READY) {
    s->want_all = true;
    kick_read(s);
  }
}

/* The hybrid timer while polling: are notifications available now? */
static void probe(rc__remote *r) {
  redis_source *s = (redis_source *)r;
  if (!s->hy.polling || s->probing || s->subscribing || s->realtime) return;
  if (s->st != ST_READY) {
    rc__hybrid_retry_later(&s->hy);
    return;
  }
  s->probing = true;
  ask_config(s);
}

static void timer_closed(uv_handle_t *h);

static int redis_start(rc__source *base, rc_error *err) {
  redis_source *s = (redis_source *)base;
  int rc = rc__remote_start(&s->r, tick, err);
  if (!rc) rc = rc__hybrid_start(&s->hy, probe, err);
  if (rc) return rc;
  uv_loop_t *loop = rc__src_loop(s->r.ctx);
  uv_timer_t *timers[] = {&s->io_timer, &s->ttl_timer};
  for (int i = 0; i < 2; i++) {
    if (uv_timer_init(loop, timers[i]) != 0)
      return rc__err(err, RC_ESYS, NULL, 0, 0, "uv_timer_init failed");
    timers[i]->data = s;
    s->timers_open |= 1 << i;
    rc__host_handle_opened(rc__src_host(s->r.ctx));
  }
  /* With `ttl`, a value from the cache counts as read at start. */
  if (s->ttl_ms) uv_timer_start(&s->ttl_timer, ttl_timer_cb, s->ttl_ms, 0);
  connect_start(s);
  return 0;
}

static void maybe_done(redis_source *s) {
  if (!s->remote_done || s->timers_open || !s->done) return;
  void (*done)(rc__source *) = s->done;
  s->done = NULL;
  done(&s->r.base);
}

static void timer_closed(uv_handle_t *h) {
  redis_source *s = h->data;
  rc__host_handle_closed(rc__src_host(s->r.ctx));
  s->timers_open &= ~((uv_timer_t *)h == &s->io_timer ? 1 : 2);
  maybe_done(s);
}

static void remote_stopped(rc__source *base) {
  redis_source *s = (redis_source *)base;
  s->remote_done = true;
  maybe_done(s);
}

static void redis_stop(rc__source *base, void (*done)(rc__source *)) {
  redis_source *s = (redis_source *)base;
  if (s->stopping) return;
  teardown(s);
  s->stopping = true;
  s->done = done;
  rc__hybrid_stop(&s->hy);
  if (s->timers_open & 1) uv_close((uv_handle_t *)&s->io_timer, timer_closed);
  if (s->timers_open & 2) uv_close((uv_handle_t *)&s->ttl_timer, timer_closed);
  rc__remote_stop(&s->r, remote_stopped);
}

static void redis_rescan(rc__source *base) {
  redis_source *s = (redis_source *)base;
  s->want_all = true;
  kick_read(s);
}

/* password_env may hold the right password now: a failing source retries at once. */
static void redis_env_changed(rc__source *base) {
  redis_source *s = (redis_source *)base;
  if (s->st == ST_IDLE && rc__src_failing(s->r.ctx)) rc__remote_schedule(&s->r, 0);
}

static void redis_free(rc__source *base) {
  redis_source *s = (redis_source *)base;
  reset_reads(s);
  free_entries(s);
  rc__buf_free(&s->raw);
  rc__remote_free(&s->r);
  rc__free(s->shown);
  rc__free(s->channel);
  rc__free(s->match);
  rc__free(s);
}

/* Appends `s` to `b` with the glob characters of PSUBSCRIBE and SCAN MATCH escaped. */
static void add_glob_escaped(rc__buf *b, const char *s) {
  for (; *s; s++) {
    if (strchr("*?[]\\", *s)) rc__buf_addc(b, '\\');
    rc__buf_addc(b, *s);
  }
}

static rc__source *redis_create(rc__source_ctx *ctx, rc_error *err) {
  redis_source *s = rc__remote_new(sizeof *s, ctx, err);
  if (!s) return NULL;
  rc__buf_init(&s->raw);
  s->cmd.role = "reading";
  s->sub.role = "listening";
  s->host = rc__opt_string(ctx, "host");
  s->user = rc__opt_string(ctx, "user");
  s->url_password = rc__opt_string(ctx, "password");
  s->port = (int)rc__opt_number(ctx, "port");
  s->db = (int)rc__opt_number(ctx, "db");
  s->ttl_ms = (uint64_t)rc__opt_number(ctx, "ttl_ms");
  const char *key = rc__opt_string(ctx, "redis_key"), *hash = rc__opt_string(ctx, "hash"),
             *prefix = rc__opt_string(ctx, "prefix");
  s->mode = key ? MODE_KEY : hash ? MODE_HASH : MODE_PREFIX;
  s->name = key ? key : hash ? hash : prefix;
  s->fmt = rc__opt_format(ctx, s->mode == MODE_HASH ? RC__FMT_TEXT : RC__FMT_JSON);
  if (s->fmt == RC__FMT_AUTO) s->fmt = RC__FMT_JSON;
  rc__hybrid_init(&s->hy, &s->r, "redis keyspace notifications",
                  "keyspace notifications work again");
  if (!s->host || !s->name || s->port <= 0 || !s->hy.poll_ms) {
    rc__src_policy_error(ctx, err, "redis source needs a host, a port, an interval and one "
                         "of key, hash or prefix");
    redis_free(&s->r.base);
    return NULL;
  }
  s->name_len = strlen(s->name);
  const char *target = rc__opt_string(ctx, "target");
  s->shown = rc__strdup(target ? target : s->host);
  rc__buf b;
  rc__buf_init(&b);
  rc__buf_printf(&b, "__keyspace@%d__:", s->db);
  s->channel_plen = b.n;
  if (s->mode == MODE_PREFIX) {
    add_glob_escaped(&b, s->name);
    rc__buf_addc(&b, '*');
  } else {
    rc__buf_adds(&b, s->name);
  }
  s->channel = b.oom ? NULL : rc__buf_take(&b);
  rc__buf_reset(&b);
  add_glob_escaped(&b, s->name);
  rc__buf_addc(&b, '*');
  s->match = b.oom ? NULL : rc__buf_take(&b);
  rc__buf_free(&b);
  if (!s->shown || !s->channel || !s->match) {
    rc__err(err, RC_ENOMEM, NULL, 0, 0, "out of memory");
    redis_free(&s->r.base);
    return NULL;
  }
  s->want_all = true;
  return &s->r.base;
}

static const rc__opt_default redis_defaults[] = {
  RC__REMOTE_DEFAULTS, {"timeout_ms", 5000}, {"poll_ms", 1000}, {"port", 6379},
  {NULL, 0},
};

const rc__source_kind rc__redis_kind = {
  .name = "redis", .flags = RC__SRC_REMOTE, .defaults = redis_defaults,
  RC__SOURCE_FUNCS(redis), .env_changed = redis_env_changed,
};
