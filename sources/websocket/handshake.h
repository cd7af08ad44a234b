/* SPDX-License-Identifier: MIT (see LICENSE) */
/* handshake.h: the WebSocket opening handshake (RFC 6455 section 4.1) on the client's
 * side: the HTTP/1.1 Upgrade request, and the reading of the server's answer, bounded
 * and strict: a status line, header lines (no obsolete folding, no control bytes), 101
 * with `Upgrade: websocket`, `Connection: upgrade` and the Sec-WebSocket-Accept the key
 * asks for, no extension or subprotocol we did not offer. Pure functions: no I/O. */
#ifndef RC_WS_HANDSHAKE_H
#define RC_WS_HANDSHAKE_H

#include "internal.h"

#define RC__WS_KEY_LEN 24            /* base64 of 16 random bytes */
#define RC__WS_ACCEPT_LEN 28         /* base64 of a SHA-1 digest */
#define RC__WS_MAX_HEAD (16u * 1024) /* the longest response head we read */
#define RC__WS_MAX_HEADER_LINES 100  /* header lines in it */

/* A fresh Sec-WebSocket-Key (NUL-terminated). False when no random bytes were had. */
bool rc__ws_new_key(char key[RC__WS_KEY_LEN + 1]);
/* The Sec-WebSocket-Accept a server must answer to `key`: base64(SHA-1(key + GUID)). */
void rc__ws_accept(const char *key, char out[RC__WS_ACCEPT_LEN + 1]);

/* What the request says. Everything is borrowed for the call. */
typedef struct rc__ws_request {
  const char *host;          /* as in the URL; an IPv6 literal without brackets */
  int port;
  bool tls;                  /* wss: the default port is 443, not 80 */
  const char *resource;      /* path and query, at least "/" */
  const char *key;           /* rc__ws_new_key */
  char *const *headers;      /* "name", "value", ..., NULL (the policy's); may be NULL */
  const char *authorization; /* the Authorization value, or NULL */
} rc__ws_request;

/* Appends the opening handshake's request to `out` (out->oom on failure). The caller
 * wipes `out` once sent: it may hold a credential. */
void rc__ws_request_write(rc__buf *out, const rc__ws_request *rq);

/* The length of the response head at the start of `p` (through its blank line), or 0
 * while it has not all arrived. */
size_t rc__ws_head_len(const char *p, size_t n);

/* What the answer said, for messages and retries. */
typedef struct rc__ws_response {
  int status;               /* the status code; 0 when the status line is malformed */
  char reason[64];          /* its reason phrase, printable ASCII only, cut */
  char retry_after[64];     /* the Retry-After value, "" when absent */
} rc__ws_response;

/* Reads a response head of `len` bytes (rc__ws_head_len) to the request made with `key`.
 * 0 when the server accepted the upgrade; RC_EIO when it answered something else than 101
 * (res->status says what) or left out or got wrong a header the upgrade needs; RC_EPARSE
 * when the head is not well-formed HTTP/1.1; RC_ELIMIT past RC__WS_MAX_HEADER_LINES.
 * `err` names `shown` (the URL without credentials) and never quotes a header value
 * beyond the status line's reason. */
int rc__ws_response_check(const char *head, size_t len, const char *key,
                          const char *shown, rc__ws_response *res, rc_error *err);

#endif
