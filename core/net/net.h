/* SPDX-License-Identifier: MIT (see LICENSE) */
/* net.h: the network core under the remote sources (HTTP, Consul, Vault, etcd): HTTP(S)
 * requests run by libcurl's multi "socket" interface on the engine's libuv loop.
 *
 * Why multi-socket on uv: the loop thread owns every source and must never block, and a
 * thread per request (or curl_easy_perform on the thread pool) would not scale to
 * hundreds of long watches. With CURLMOPT_SOCKETFUNCTION curl tells us which sockets it
 * waits on and we poll each with one uv_poll_t; with CURLMOPT_TIMERFUNCTION it tells us
 * its next deadline and we arm ONE uv_timer_t. When either fires we call
 * curl_multi_socket_action, so curl only runs when something happened: no threads of
 * ours, no busy polling, no blocking call. One multi handle serves every request, so
 * connections (HTTP/1.1 keep-alive, HTTP/2 over TLS), TLS sessions and the DNS cache
 * are shared between sources that talk to the same server.
 *
 * Threads: everything here runs on the loop thread; callbacks too. The one exception
 * is inside curl: a host NAME (not an IP literal) is resolved by curl's threaded resolver
 * (a short-lived thread per lookup, results cached for 60 s), never on the loop.
 * Secrets: request header values (tokens) are never logged, never put in an rc_error,
 * and our copies (the own client's request buffer too) are wiped before they are freed
 * (curl's own request buffer is not);
 * CURLOPT_VERBOSE stays off. URLs in messages lose user, password, query and fragment.
 * Proxies: as in curl, http_proxy / https_proxy / no_proxy from the environment apply.
 *
 * The own HTTP/1.1 client (h1.c): polls take another path. A request that is a GET over
 * plain http:// with opts.queue, buffered (no data callback), not RC__NET_HTTP_2, with no
 * user info in the URL and no low-speed limit, runs on a small client of ours (libuv TCP,
 * one send of a request built once, Debian's http-parser for the answer, a pool of
 * kept-alive connections per host:port, one uv timer for all its deadlines) unless a
 * proxy variable (http_proxy, HTTP_PROXY, all_proxy, ALL_PROXY) or RC_HTTP_CLIENT=curl
 * was in the environment at rc__net_new, which leaves every request to curl. Why: 1,000
 * rc.http sources polling a local nginx every second spent about 80% of their user time
 * inside libcurl 7.88 (its printf engine building each request, connection bookkeeping)
 * and made two polls per transfer; scripts/bench measured 5.13% of one core through curl
 * and 2.17% through the own client in the same run (issue 18). Results, messages, limits,
 * turns, cancel and close are the same on both paths; a redirect to https:// continues in
 * curl.
 */
#ifndef RC_NET_H
#define RC_NET_H

#include "internal.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <uv.h>

typedef struct rc__net rc__net;
typedef struct rc__net_request rc__net_request;

/* Defaults used when the matching option is 0. */
#define RC__NET_CONNECT_MS_DEFAULT 10000u            /* connect_ms */
#define RC__NET_MAX_QUEUED_ACTIVE 256   /* opts.queue requests in curl, per origin */
#define RC__NET_MAX_BODY_DEFAULT (16u * 1024 * 1024) /* max_body in buffered mode */
/* Response headers we keep per request (all of them, for rc__net_header_value). */
#define RC__NET_MAX_HEADER_BYTES (64u * 1024)
/* Connections open at once to one host:port. Requests over it wait in curl's queue (their
 * timeouts run while they wait). Consul allows 200 per client IP by default and every
 * blocking query holds one, so we stay well under that. */
#define RC__NET_MAX_HOST_CONNECTIONS 64
/* Connections curl's cache may hold (busy and idle) before it closes the oldest idle one;
 * it grows to 4 per request in flight. Enough for a burst to one host at the cap above
 * to stay open for the next one. */
#define RC__NET_CACHED_CONNECTIONS 64

typedef enum rc__net_method {
  RC__NET_GET = 0,
  RC__NET_PUT,
  RC__NET_POST,
  RC__NET_DELETE,
} rc__net_method;

/* Which HTTP version a request may use. */
typedef enum rc__net_http_version {
  RC__NET_HTTP_ANY = 0,  /* curl's choice: HTTP/2 where TLS negotiates it (ALPN), else
                            HTTP/1.1 */
  RC__NET_HTTP_1_1,      /* HTTP/1.1 only: one request at a time per connection */
  RC__NET_HTTP_2,        /* HTTP/2, requests to one server multiplexed over one
                            connection (they wait for it rather than open more): over
                            TLS where the server offers it (else HTTP/1.1); on http://
                            by prior knowledge, which needs rc__net_h2c_supported() */
} rc__net_http_version;

/* One extra request header. Name and value are copied by rc__net_start. The value is
 * treated as a secret: it appears nowhere but on the wire. */
typedef struct rc__net_header {
  const char *name;   /* "If-None-Match", "X-Consul-Token", ... */
  const char *value;  /* sent verbatim; an empty string sends "Name:" with no value */
} rc__net_header;

/* What to request. Everything is borrowed for the duration of rc__net_start only:
 * strings, the body and the header array are copied (or handed to curl, which copies
 * them). */
typedef struct rc__net_req_opts {
  const char *url;              /* http:// or https://; anything else is RC_EINVAL */
  rc__net_method method;        /* GET by default (0) */
  const void *body;             /* request body for PUT/POST/DELETE (ignored for GET); may
                                   be NULL. No Content-Type is sent unless `headers` has
                                   one (curl's form type is suppressed), and no "Expect:
                                   100-continue" round trip is made. */
  size_t body_len;              /* bytes of `body` */
  const rc__net_header *headers;
  size_t nheaders;
  /* Timeouts. connect_ms: TCP+TLS connect (0 = RC__NET_CONNECT_MS_DEFAULT).
   * total_ms: the whole transfer (0 = none: long polls and watch streams; use the
   * low-speed limit or the protocol's own wait to notice a dead peer). */
  uint32_t connect_ms;
  uint32_t total_ms;
  /* Abort when fewer than low_speed_bytes per second arrive for low_speed_secs seconds.
   * Both 0 = off. */
  uint32_t low_speed_bytes;
  uint32_t low_speed_secs;
  /* Largest response body accepted, decoded bytes. Exceeding it, or a Content-Length that
   * announces more, fails the request with RC_ELIMIT "body larger than N bytes".
   * 0 = RC__NET_MAX_BODY_DEFAULT in buffered mode, no limit in streaming mode (an endless
   * watch stream; the consumer bounds its own line buffer). */
  size_t max_body;
  /* Redirects to follow (3xx with Location); 0 = none, the 3xx is the result. */
  uint32_t max_redirects;
  /* TLS: the peer certificate and host name are verified unless `insecure`. ca_file:
   * a PEM bundle to trust instead of the system store (NULL = system store). */
  const char *ca_file;
  bool insecure;
  rc__net_http_version http_version;  /* RC__NET_HTTP_ANY (0) by default */
  /* The caller had this same URL accepted by rc__net_start before (a poller asking
   * again): it is not checked again here (curl still parses it for the transfer, and a
   * bad one then fails the request). Saves a parse per poll. */
  bool url_known;
  /* A short GET (a poll) that may wait its turn: at most RC__NET_MAX_QUEUED_ACTIVE such
   * requests per origin (scheme://authority) are in curl at once, the others wait in
   * order without an easy handle. A fleet starting at once then holds that many of
   * curl's handles and receive buffers (about 21 KB each) per server rather than one per
   * source, and a hung server holds only its own turns. Not for long polls or streams,
   * which would hold their turn. Ignored for other methods. */
  bool queue;
} rc__net_req_opts;

/* The outcome of one request, passed to the done callback. Everything is borrowed and
 * lives until the done callback returns. */
typedef struct rc__net_result {
  int code;             /* 0 when an HTTP response arrived, whatever its status; else
                           RC_EIO (connect, timeout, TLS, protocol), RC_ELIMIT (body or
                           headers too large), RC_ENOMEM, RC_ESTATE (cancelled by
                           rc__net_close) */
  const rc_error *err;  /* the sentence when code != 0 ("connection refused", "timed out
                           after 2000 ms", ...), with the URL (without credentials) in
                           err->file; NULL when code == 0 */
  long status;          /* HTTP status of the final response; 0 if none arrived */
  const char *body;     /* the whole body, NUL-terminated (buffered mode); "" when
                           empty, when streaming, or when code != 0 */
  size_t body_len;
  /* Frequently used response headers (final response, after redirects), NULL when
   * absent. Any other: rc__net_header_value(). */
  const char *etag, *last_modified, *content_type, *retry_after;
  long connects;        /* new connections this transfer opened; 0 = a kept-alive one
                           was reused */
  uint64_t duration_ns; /* from the start of the transfer to its end (curl's total
                           time); 0 when it never started */
} rc__net_result;

/* Called exactly once per request that was neither cancelled nor started after close,
 * on the loop thread. `req` and everything in `res` are valid until it returns; it may
 * start new requests, cancel others, or call rc__net_close. */
typedef void (*rc__net_done_fn)(void *ud, rc__net_request *req,
                                const rc__net_result *res);
/* Streaming mode: called for each chunk of the response body as it arrives (any status:
 * check rc__net_status). `data` is borrowed for the call. It may call rc__net_cancel on
 * this or any request, or rc__net_close; it must not wait. */
typedef void (*rc__net_data_fn)(void *ud, rc__net_request *req, const char *data,
                                size_t n);

typedef struct rc__net_callbacks {
  rc__net_done_fn done;  /* required */
  rc__net_data_fn data;  /* NULL = buffered mode: the body arrives in the done result */
} rc__net_callbacks;

/* ---- the network context ---- */

/* Creates the network context on `loop`: one curl multi handle and one uv timer. Calls
 * curl_global_init (reference-counted and thread-safe in the libcurl we require).
 * Ownership: the caller owns the result and ends it with rc__net_close; `loop` is
 * borrowed and must outlive the close's done callback.
 * Thread: the loop thread. Errors: NULL with `err` filled (RC_ENOMEM, RC_EINVAL for a
 * NULL loop, RC_ESYS when curl cannot be initialized). */
rc__net *rc__net_new(uv_loop_t *loop, rc_error *err);

/* Starts shutting the context down; `net` must not be used afterwards. Every request
 * still in flight is removed and its done callback IS called, once, with code RC_ESTATE
 * and the message "cancelled: network closed" (requests already cancelled get nothing);
 * those callbacks may not start requests (rc__net_start fails with RC_ESTATE). Then
 * curl's connections are closed and every uv handle is closed; `done(ud)` (may be NULL)
 * runs from the last close callback, on a later loop turn, after which all memory is
 * freed. Safe from inside any of our callbacks (the work is deferred until curl has
 * returned). NULL `net`: calls done(ud) at once. Thread: the loop thread. */
void rc__net_close(rc__net *net, void (*done)(void *ud), void *ud);

/* ---- requests ---- */

/* Starts a request; it runs as the loop runs. Returns a handle to it, owned by `net`:
 * the caller may use it until the done callback returns or until rc__net_cancel, and
 * not after. `opts` is copied. `cb->done` will be called exactly once unless the
 * request is cancelled (see rc__net_close for closing). Never calls a callback before
 * returning. Thread: the loop thread.
 * Errors: NULL with `err` filled: RC_EINVAL (no done callback, malformed URL, a scheme
 * other than http/https, a header name with ':' or CR/LF in name or value), RC_ENOMEM,
 * RC_ESTATE (the context is closing). */
rc__net_request *rc__net_start(rc__net *net, const rc__net_req_opts *opts,
                               const rc__net_callbacks *cb, void *ud, rc_error *err);

/* Cancels a request: no callback of it is called afterwards (not even done), and it is
 * freed (at once, or when curl returns if called from inside a curl-driven callback).
 * Safe from any of our callbacks, including this request's own data callback. From the
 * request's own done callback it does nothing (the request is finishing anyway).
 * NULL is ignored. Thread: the loop thread. */
void rc__net_cancel(rc__net_request *req);

/* A response header of the request's latest response (after redirects), matched
 * case-insensitively; the first one if it repeats. Returns NULL when absent. The string
 * is borrowed until the current data or done callback returns. Use it from those
 * callbacks; elsewhere the headers may be incomplete. Thread: the loop thread. */
const char *rc__net_header_value(const rc__net_request *req, const char *name);

/* HTTP status of the request's latest response, 0 before one arrives (useful in the data
 * callback). Thread: the loop thread. */
long rc__net_status(const rc__net_request *req);

/* Whether this libcurl can keep HTTP/2 connections without TLS (prior knowledge):
 * before 8.0 a reused one fails every request after the first (curl issue 10634), so
 * rc__net_start refuses RC__NET_HTTP_2 on http:// there. Thread: any. */
bool rc__net_h2c_supported(void);

/* Of those, the requests in curl (holding an easy handle): the others wait their turn
 * (opts.queue). For tests and diagnostics. */
size_t rc__net_in_flight(const rc__net *net);

/* Requests in flight (started, not yet done or cancelled): for tests and diagnostics. */
size_t rc__net_active(const rc__net *net);

/* Requests the own HTTP/1.1 client (h1.c) has taken since rc__net_new, redirects and
 * retries not counted again: for tests and diagnostics. Thread: the loop thread. */
size_t rc__net_h1_requests(const rc__net *net);

#endif
