/* SPDX-License-Identifier: MIT (see LICENSE) */
/* websocket.c: the WebSocket source (RFC 6455). One connection to a ws:// or wss:// URL;
 * each message the server sends (text, or binary) is one complete document, parsed in
 * `format` and delivered when it differs from the last one. What it expects of a server:
 * the current document as the first message after every connect, then a message for
 * each new version; anything else on the connection (pings, pongs) is keepalive.
 *  - The connection is ours (stream.c: uv_tcp_t, TLS through OpenSSL with verification),
 *    the opening handshake too (handshake.c); the framing is wslay's (Debian libwslay):
 *    masking, control frames, fragmentation, UTF-8 of text messages, close codes, and a
 *    message larger than max_bytes refused (close 1009) before it is held whole.
 *  - Keepalive: a ping after `ping` without a frame from the server, and the connection
 *    judged dead when `ping` + `timeout` pass without one (wslay answers the server's
 *    pings itself). One timer per source, re-armed lazily, so an idle source wakes the
 *    loop once per `ping` and not per message.
 *  - Any failure (connect, TLS, a refused upgrade, a close from the server, a malformed
 *    frame, an oversized message, a dead peer) keeps the last value, reports an error and
 *    reconnects on the backoff schedule of rc__remote (jitter, ceiling, circuit breaker);
 *    the backoff is reset by the first message of a connection, not by the upgrade, so a
 *    server that accepts and drops every connection is still backed off from.
 *  - A message that does not parse is an error, but the connection stays: the next
 *    message is the next document. While a large message is parsed on the thread pool,
 *    only the newest of those that arrive meanwhile is kept (each is complete).
 * The TLS stream and wslay allocate with malloc (no allocator hook of ours), bounded by
 * max_bytes per message. */
#include "handshake.h"
#include "http_util.h"
#include "remote.h"
#include "stream.h"

#include <openssl/evp.h>
#include <openssl/rand.h>
#include <stdio.h>
#include <string.h>
#include <wslay/wslay.h>

/* Bytes the server leaves unread (our pongs, pings) before it counts as not reading. */
#define WS_MAX_QUEUED (1u << 20)

typedef enum { ST_IDLE, ST_CONNECTING, ST_UPGRADING, ST_OPEN } ws_state;

typedef struct ws_source {
  rc__remote r;
  /* options (borrowed) */
  const char *host, *resource, *shown;
  const char *user, *password;  /* the URL's user:password, sent as Basic; never shown */
  int port;
  bool tls;
  char **headers;               /* the policy's "name", "value", ..., NULL (owned) */
  rc__format fmt;
  uint64_t ping_ms;             /* 0: no keepalive of ours */
  SSL_CTX *tls_ctx;             /* made at the first wss connect */
  /* the connection */
  ws_state st;
  rc__stream *stream;
  rc__buf head;                 /* the answer to the upgrade, until its blank line */
  char key[RC__WS_KEY_LEN + 1];
  wslay_event_context_ptr ws;
  const char *in;               /* bytes being handed to wslay (recv_cb) */
  size_t in_len;
  uint64_t last_rx;             /* loop ms of the last bytes from the server */
  bool ping_sent;               /* since last_rx */
  bool grace;                   /* the timer found the server overdue once (io_timer_cb) */
  bool answered;                /* a message came on this connection */
  char close_reason[64];        /* of the server's close frame, printable */
  /* the newest message not parsed yet */
  rc__buf msg;
  bool msg_ready, msg_oom;
  uv_timer_t io_timer;          /* connect/upgrade deadline, then keepalive */
  bool timer_open, stopping, remote_done;
  void (*done)(rc__source *);
} ws_source;

static void conn_failed(ws_source *s, const rc_error *err, uint64_t retry_after_ms);

/* ===================================================================================
 * Timer: the deadline to be connected, then keepalive
 * =================================================================================== */

static void io_timer_cb(uv_timer_t *t);

static void arm(ws_source *s, uint64_t ms) {
  if (s->timer_open && !s->stopping) uv_timer_start(&s->io_timer, io_timer_cb, ms, 0);
}

static void send_frames(ws_source *s);

static void io_timer_cb(uv_timer_t *t) {
  ws_source *s = t->data;
  if (s->stopping) return;
  rc_error e = {0};
  uint64_t idle = rc__remote_now(&s->r) - s->last_rx, dead = s->ping_ms + s->r.timeout_ms;
  bool overdue = s->st == ST_CONNECTING || s->st == ST_UPGRADING ||
                 (s->st == ST_OPEN && s->ping_ms && idle >= dead);
  /* A loop that was held up (a long evaluation, a host between two runs) runs its timers
   * before it polls the sockets: the verdict waits for one more poll, so that what the
   * server sent meanwhile counts. (1 ms, not 0: libuv 1.44 would run a timer restarted
   * at 0 again in the same pass, before polling.) */
  if (overdue && !s->grace) {
    s->grace = true;
    arm(s, 1);
    return;
  }
  s->grace = false;
  if (s->st == ST_CONNECTING || s->st == ST_UPGRADING) {
    rc__err(&e, RC_EIO, s->shown, 0, 0, "no WebSocket connection to %s within %u ms (%s)",
            s->shown, s->r.timeout_ms, s->st == ST_CONNECTING ? "connecting"
                                                               : "waiting for the upgrade");
    conn_failed(s, &e, 0);
    return;
  }
  if (s->st != ST_OPEN || !s->ping_ms) return;
  if (idle >= dead) {
    rc__err(&e, RC_EIO, s->shown, 0, 0, "%s sent nothing for %llu ms and did not answer a "
            "ping: the connection is taken as dead", s->shown, (unsigned long long)idle);
    conn_failed(s, &e, 0);
    return;
  }
  if (idle >= s->ping_ms && !s->ping_sent) {
    struct wslay_event_msg ping = {.opcode = WSLAY_PING, .msg = NULL, .msg_length = 0};
    if (wslay_event_queue_msg(s->ws, &ping) == 0) s->ping_sent = true;
    send_frames(s);
    if (s->st != ST_OPEN) return;
  }
  arm(s, (s->ping_sent ? dead : s->ping_ms) - idle);
}

/* ===================================================================================
 * Documents
 * =================================================================================== */

static void take_message(ws_source *s);

static void parsed(rc__remote *r, int rc, rc_value_t *v, const rc_error *err) {
  ws_source *s = (ws_source *)r;
  /* A document that does not parse is reported; the connection stays for the next. */
  if (rc) rc__src_error(r->ctx, err);
  else rc__remote_deliver(r, v);
  take_message(s);
}

/* Parses the newest message, unless one is being parsed (its end comes back here). */
static void take_message(ws_source *s) {
  if (!s->msg_ready || s->r.job || s->stopping) return;
  s->msg_ready = false;
  rc__remote_parse_then(&s->r, s->fmt, s->msg.p ? s->msg.p : "", s->msg.n, s->shown,
                        parsed);
  /* Parsed, or copied for the thread pool: a large buffer is not kept for the next. */
  if (s->msg.cap > RC__PARSE_ASYNC_BYTES && !s->msg_ready) rc__buf_free(&s->msg);
}

/* ===================================================================================
 * wslay's callbacks: bytes in and out, masks, whole messages
 * =================================================================================== */

static ssize_t recv_cb(wslay_event_context_ptr ctx, uint8_t *buf, size_t len, int flags,
                       void *ud) {
  RC__UNUSED(flags);
  ws_source *s = ud;
  if (!s->in_len) {
    wslay_event_set_error(ctx, WSLAY_ERR_WOULDBLOCK);
    return -1;
  }
  size_t n = len < s->in_len ? len : s->in_len;
  memcpy(buf, s->in, n);
  s->in += n;
  s->in_len -= n;
  return (ssize_t)n;
}

static ssize_t send_cb(wslay_event_context_ptr ctx, const uint8_t *data, size_t len,
                       int flags, void *ud) {
  RC__UNUSED(flags);
  ws_source *s = ud;
  if (!s->stream || rc__stream_write(s->stream, data, len) != 0) {
    wslay_event_set_error(ctx, WSLAY_ERR_CALLBACK_FAILURE);
    return -1;
  }
  return (ssize_t)len;
}

/* Client frames are masked with keys a server cannot predict (RFC 6455 10.3). */
static int genmask_cb(wslay_event_context_ptr ctx, uint8_t *buf, size_t len, void *ud) {
  RC__UNUSED(ctx);
  RC__UNUSED(ud);
  return RAND_bytes(buf, (int)len) == 1 ? 0 : -1;
}

static void msg_cb(wslay_event_context_ptr ctx, const struct wslay_event_on_msg_recv_arg *a,
                   void *ud) {
  RC__UNUSED(ctx);
  ws_source *s = ud;
  if (a->opcode == WSLAY_TEXT_FRAME || a->opcode == WSLAY_BINARY_FRAME) {
    /* Only the newest counts: each message is a whole document. */
    rc__buf_reset(&s->msg);
    rc__buf_add(&s->msg, a->msg, a->msg_length);
    s->msg_oom = s->msg.oom;
    s->msg_ready = !s->msg.oom;
    s->msg.oom = 0;
  } else if (a->opcode == WSLAY_CONNECTION_CLOSE) {
    size_t j = 0;
    for (size_t i = 2; i < a->msg_length && j + 1 < sizeof s->close_reason; i++)
      s->close_reason[j++] = a->msg[i] >= 0x20 && a->msg[i] < 0x7f ? (char)a->msg[i] : '?';
    s->close_reason[j] = '\0';
  }
}

/* ===================================================================================
 * The connection
 * =================================================================================== */

/* Drops the connection; the source is idle until the next connect. */
static void teardown(ws_source *s) {
  rc__stream_close(s->stream);
  s->stream = NULL;
  if (s->ws) wslay_event_context_free(s->ws);
  s->ws = NULL;
  rc__buf_reset(&s->head);
  s->key[0] = '\0';
  s->st = ST_IDLE;
  s->ping_sent = s->answered = s->msg_oom = s->grace = false;
  s->close_reason[0] = '\0';
  if (s->timer_open) uv_timer_stop(&s->io_timer);
}

/* The connection failed: the last value stays, an error event, a reconnect on the
 * backoff schedule (or after `retry_after_ms` when the server asked for longer). */
static void conn_failed(ws_source *s, const rc_error *err, uint64_t retry_after_ms) {
  if (s->stopping) return;
  teardown(s);
  rc__remote_fail(&s->r, err, retry_after_ms);
}

static void fail_msg(ws_source *s, int code, const char *what) {
  rc_error e = {0};
  rc__err(&e, code, s->shown, 0, 0, "WebSocket %s: %s", s->shown, what);
  conn_failed(s, &e, 0);
}

/* Writes what wslay has queued (pongs, pings, a close). */
static void send_frames(ws_source *s) {
  if (s->st != ST_OPEN || !wslay_event_want_write(s->ws)) return;
  if (wslay_event_send(s->ws) != 0) {
    fail_msg(s, RC_EIO, "cannot write to the connection");
    return;
  }
  if (rc__stream_queued(s->stream) > WS_MAX_QUEUED)
    fail_msg(s, RC_EIO, "the server does not read what the source sends (pongs, pings)");
}

/* wslay stopped reading: the server closed, or sent what wslay refused (it then queued a
 * close with the reason, which send_frames has written). */
static void read_ended(ws_source *s) {
  rc_error e = {0};
  if (wslay_event_get_close_received(s->ws)) {
    unsigned code = wslay_event_get_status_code_received(s->ws);
    rc__err(&e, RC_EIO, s->shown, 0, 0, "%s closed the WebSocket (code %u%s%s)", s->shown,
            code, s->close_reason[0] ? ": " : "", s->close_reason);
    conn_failed(s, &e, 0);
    return;
  }
  unsigned code = wslay_event_get_status_code_sent(s->ws);
  switch (code) {
  case WSLAY_CODE_MESSAGE_TOO_BIG:
    rc__err(&e, RC_ELIMIT, s->shown, 0, 0, "a message from %s is larger than max_bytes "
            "(%zu bytes); the connection was closed (1009)", s->shown, s->r.max_bytes);
    break;
  case WSLAY_CODE_INVALID_FRAME_PAYLOAD_DATA:
    rc__err(&e, RC_EPARSE, s->shown, 0, 0, "%s sent a text message that is not UTF-8; the "
            "connection was closed (1007)", s->shown);
    break;
  case WSLAY_CODE_PROTOCOL_ERROR:
    rc__err(&e, RC_EPARSE, s->shown, 0, 0, "%s sent a malformed WebSocket frame; the "
            "connection was closed (1002)", s->shown);
    break;
  default:
    rc__err(&e, RC_EIO, s->shown, 0, 0, "the WebSocket to %s failed (close code %u)",
            s->shown, code);
  }
  conn_failed(s, &e, 0);
}

/* Hands bytes from the server to wslay, then acts on what it made of them. */
static void feed(ws_source *s, const char *p, size_t n) {
  s->in = p;
  s->in_len = n;
  int rc = wslay_event_recv(s->ws);
  s->in = NULL;
  s->in_len = 0;
  if (rc != 0) {
    fail_msg(s, rc == WSLAY_ERR_NOMEM ? RC_ENOMEM : RC_EIO, "cannot read the connection");
    return;
  }
  bool ended = !wslay_event_get_read_enabled(s->ws);
  send_frames(s);  /* pongs, and the close that answers or ends */
  bool open = s->st == ST_OPEN;
  if (open && s->msg_oom) {
    fail_msg(s, RC_ENOMEM, "out of memory for a message");
    open = false;
  }
  if (open && s->msg_ready && !s->answered) {
    /* The first message of a connection: the server works, the backoff starts over. */
    s->answered = true;
    rc__remote_success(&s->r);
  }
  /* A message that came before a failure is a document all the same. */
  take_message(s);
  if (open && ended && !s->stopping && s->st == ST_OPEN) read_ended(s);
}

/* The answer to the upgrade, as it arrives. Bytes after its head are frames already. */
static void upgrade_answer(ws_source *s, const char *p, size_t n) {
  rc_error e = {0};
  rc__buf_add(&s->head, p, n);
  if (s->head.oom) {
    fail_msg(s, RC_ENOMEM, "out of memory");
    return;
  }
  size_t len = rc__ws_head_len(s->head.p, s->head.n);
  if ((!len && s->head.n > RC__WS_MAX_HEAD) || len > RC__WS_MAX_HEAD) {
    rc__err(&e, RC_ELIMIT, s->shown, 0, 0, "the answer of %s to the WebSocket upgrade has "
            "no end within %u bytes", s->shown, RC__WS_MAX_HEAD);
    conn_failed(s, &e, 0);
    return;
  }
  if (!len) return;
  rc__ws_response res;
  if (rc__ws_response_check(s->head.p, len, s->key, s->shown, &res, &e) != 0) {
    bool busy = res.status == 429 || res.status == 503;
    conn_failed(s, &e, busy ? rc__retry_after_ms(res.retry_after) : 0);
    return;
  }
  struct wslay_event_callbacks cbs = {recv_cb, send_cb, genmask_cb, NULL, NULL, NULL, msg_cb};
  if (wslay_event_context_client_init(&s->ws, &cbs, s) != 0) {
    s->ws = NULL;
    fail_msg(s, RC_ENOMEM, "out of memory");
    return;
  }
  wslay_event_config_set_max_recv_msg_length(s->ws, s->r.max_bytes);
  s->st = ST_OPEN;
  s->last_rx = rc__remote_now(&s->r);
  if (s->ping_ms) arm(s, s->ping_ms);
  else uv_timer_stop(&s->io_timer);
  /* The frames that came with the head: fed from a copy, as `head` is reused. */
  size_t rest = s->head.n - len;
  if (!rest) {
    rc__buf_reset(&s->head);
    return;
  }
  char *copy = rc__malloc(rest);
  if (!copy) {
    fail_msg(s, RC_ENOMEM, "out of memory");
    return;
  }
  memcpy(copy, s->head.p + len, rest);
  rc__buf_reset(&s->head);
  feed(s, copy, rest);
  rc__free(copy);
}

static void on_data(void *ud, const char *p, size_t n) {
  ws_source *s = ud;
  s->last_rx = rc__remote_now(&s->r);
  s->ping_sent = s->grace = false;
  if (s->st == ST_UPGRADING) upgrade_answer(s, p, n);
  else if (s->st == ST_OPEN) feed(s, p, n);
}

static void on_failed(void *ud, const rc_error *err) { conn_failed(ud, err, 0); }

/* The Authorization value: the token as Bearer, or the URL's user:password as Basic.
 * NULL with `e` filled when the token cannot be read; `*out` must be wiped. */
static bool authorization(ws_source *s, rc__buf *out, rc_error *e) {
  const char *token = rc__token_get(&s->r.token, e);
  if (!token && e->code) return false;
  if (token) {
    rc__buf_adds(out, "Bearer ");
    rc__buf_adds(out, token);
  } else if (s->user || s->password) {
    rc__buf plain;
    rc__buf_init(&plain);
    rc__buf_printf(&plain, "%s:%s", s->user ? s->user : "", s->password ? s->password : "");
    if (!plain.oom && rc__buf_reserve(out, 4 * (plain.n / 3 + 1) + 8) == 0) {
      rc__buf_adds(out, "Basic ");
      int n = EVP_EncodeBlock((unsigned char *)out->p + out->n, (unsigned char *)plain.p,
                              (int)plain.n);
      out->n += (size_t)n;
    } else {
      out->oom = 1;
    }
    if (plain.p) explicit_bzero(plain.p, plain.n);
    rc__buf_free(&plain);
  }
  return true;
}

/* TCP (and TLS) is up: send the upgrade request. */
static void on_connected(void *ud) {
  ws_source *s = ud;
  rc_error e = {0};
  rc__buf auth, req;
  rc__buf_init(&auth);
  rc__buf_init(&req);
  if (!authorization(s, &auth, &e)) {
    conn_failed(s, &e, 0);
    return;
  }
  if (!rc__ws_new_key(s->key)) {
    rc__buf_free(&auth);
    fail_msg(s, RC_ESYS, "no random bytes for the handshake key");
    return;
  }
  rc__ws_request rq = {.host = s->host, .port = s->port, .tls = s->tls,
                       .resource = s->resource, .key = s->key, .headers = s->headers,
                       .authorization = auth.n ? auth.p : NULL};
  rc__ws_request_write(&req, &rq);
  int rc = auth.oom || req.oom ? RC_ENOMEM : rc__stream_write(s->stream, req.p, req.n);
  if (auth.p) explicit_bzero(auth.p, auth.n);
  if (req.p) explicit_bzero(req.p, req.n);
  rc__buf_free(&auth);
  rc__buf_free(&req);
  if (rc) {
    fail_msg(s, rc, "cannot send the upgrade request");
    return;
  }
  s->st = ST_UPGRADING;
}

static void connect_start(ws_source *s) {
  if (s->st != ST_IDLE || s->stopping) return;
  rc_error e = {0};
  if (s->tls && !s->tls_ctx) {
    s->tls_ctx = rc__stream_tls_context(s->r.ca_file, s->r.insecure, s->shown, &e);
    if (!s->tls_ctx) {
      rc__remote_fail(&s->r, &e, 0);
      return;
    }
  }
  rc__stream_opts o = {.host = s->host, .port = s->port, .tls = s->tls ? s->tls_ctx : NULL,
                       .shown = s->shown};
  rc__stream_callbacks cb = {.connected = on_connected, .data = on_data,
                             .failed = on_failed};
  s->stream = rc__stream_open(rc__src_host(s->r.ctx), &o, &cb, s, &e);
  if (!s->stream) {
    rc__remote_fail(&s->r, &e, 0);
    return;
  }
  s->st = ST_CONNECTING;
  arm(s, s->r.timeout_ms);
}

/* ===================================================================================
 * The source
 * =================================================================================== */

/* The remote timer: a reconnect (after a failure, on the backoff schedule). */
static void tick(rc__remote *r) { connect_start((ws_source *)r); }

static int ws_start(rc__source *base, rc_error *err) {
  ws_source *s = (ws_source *)base;
  int rc = rc__remote_start(&s->r, tick, err);
  if (rc) return rc;
  rc = uv_timer_init(rc__src_loop(s->r.ctx), &s->io_timer);
  if (rc) return rc__err(err, RC_ESYS, NULL, 0, 0, "uv_timer_init: %s", uv_strerror(rc));
  s->io_timer.data = s;
  s->timer_open = true;
  rc__host_handle_opened(rc__src_host(s->r.ctx));
  /* The first value comes with the first message; start never waits for it. */
  connect_start(s);
  return 0;
}

static void maybe_done(ws_source *s) {
  if (!s->remote_done || s->timer_open || !s->done) return;
  void (*done)(rc__source *) = s->done;
  s->done = NULL;
  done(&s->r.base);
}

static void timer_closed(uv_handle_t *h) {
  ws_source *s = h->data;
  rc__host_handle_closed(rc__src_host(s->r.ctx));
  s->timer_open = false;
  maybe_done(s);
}

static void remote_stopped(rc__source *base) {
  ws_source *s = (ws_source *)base;
  s->remote_done = true;
  maybe_done(s);
}

static void ws_stop(rc__source *base, void (*done)(rc__source *)) {
  ws_source *s = (ws_source *)base;
  if (s->stopping) return;
  if (s->st == ST_OPEN && wslay_event_queue_close(s->ws, WSLAY_CODE_GOING_AWAY, NULL, 0) == 0)
    wslay_event_send(s->ws);  /* a goodbye, as far as the socket takes it at once */
  teardown(s);
  s->stopping = true;
  s->done = done;
  if (s->timer_open) uv_close((uv_handle_t *)&s->io_timer, timer_closed);
  rc__remote_stop(&s->r, remote_stopped);
}

/* Reads again: a source between two connects connects now (a live one is current). */
/* A reload request: waiting for a reconnect, connect now; connected, the server sends
 * every new document as it comes, so the value is current (answered at once); while
 * connecting, the first message answers. */
static void ws_rescan(rc__source *base) {
  ws_source *s = (ws_source *)base;
  if (s->st == ST_IDLE) rc__remote_schedule(&s->r, 0);
  else if (s->st == ST_OPEN && !s->r.job) rc__src_answered(s->r.ctx);
}

/* token_env may hold the right token now: a failing source retries at once. */
static void ws_env_changed(rc__source *base) {
  ws_source *s = (ws_source *)base;
  if (s->st == ST_IDLE && rc__src_failing(s->r.ctx)) rc__remote_schedule(&s->r, 0);
}

static void ws_free(rc__source *base) {
  ws_source *s = (ws_source *)base;
  if (s->ws) wslay_event_context_free(s->ws);
  SSL_CTX_free(s->tls_ctx);
  rc__buf_free(&s->head);
  rc__buf_free(&s->msg);
  /* Header values may hold credentials a policy wrote inline. */
  for (size_t i = 0; s->headers && s->headers[i]; i++)
    explicit_bzero(s->headers[i], strlen(s->headers[i]));
  rc__opt_list_free(s->headers);
  rc__remote_free(&s->r);
  rc__free(s);
}

static rc__source *ws_create(rc__source_ctx *ctx, rc_error *err) {
  ws_source *s = rc__remote_new(sizeof *s, ctx, err);
  if (!s) return NULL;
  rc__buf_init(&s->head);
  rc__buf_init(&s->msg);
  s->host = rc__opt_string(ctx, "host");
  s->port = (int)rc__opt_number(ctx, "port");
  s->tls = rc__opt_bool(ctx, "tls", false);
  s->resource = rc__opt_string(ctx, "resource");
  s->user = rc__opt_string(ctx, "user");
  s->password = rc__opt_string(ctx, "password");
  s->ping_ms = (uint64_t)rc__opt_number(ctx, "ping_ms");
  s->fmt = rc__opt_format(ctx, RC__FMT_JSON);
  if (s->fmt == RC__FMT_AUTO) s->fmt = RC__FMT_JSON;
  const char *target = rc__opt_string(ctx, "target");
  s->shown = target ? target : s->host;
  if (!s->r.max_bytes) s->r.max_bytes = RC__NET_MAX_BODY_DEFAULT;
  if (!s->host || !s->resource || s->port <= 0 || s->port > 65535) {
    rc__src_policy_error(ctx, err, "websocket source needs a ws:// or wss:// url");
    ws_free(&s->r.base);
    return NULL;
  }
  if (rc__opt(ctx, "headers")) {
    s->headers = rc__opt_list(ctx, "headers");
    if (!s->headers) {
      rc__err(err, RC_ENOMEM, NULL, 0, 0, "out of memory");
      ws_free(&s->r.base);
      return NULL;
    }
  }
  return &s->r.base;
}

static const rc__opt_default ws_defaults[] = {
  RC__REMOTE_DEFAULTS, {"timeout_ms", 5000}, {"ping_ms", 20000}, {NULL, 0},
};

const rc__source_kind rc__websocket_kind = {
  .name = "websocket", .flags = RC__SRC_REMOTE, .defaults = ws_defaults,
  .create = ws_create, .start = ws_start, .stop = ws_stop, .rescan = ws_rescan,
  .free = ws_free, .env_changed = ws_env_changed,
};
