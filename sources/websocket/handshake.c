/* SPDX-License-Identifier: MIT (see LICENSE) */
/* handshake.c: the WebSocket opening handshake on the client's side (see handshake.h):
 * the Upgrade request and a strict, bounded reading of the answer. SHA-1, base64 and the
 * random key come from OpenSSL (libcrypto), which the TLS stream links anyway. */
#include "handshake.h"

#include <openssl/evp.h>
#include <openssl/rand.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

/* RFC 6455 section 1.3. */
#define WS_GUID "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"

bool rc__ws_new_key(char key[RC__WS_KEY_LEN + 1]) {
  unsigned char raw[16];
  if (RAND_bytes(raw, sizeof raw) != 1) return false;
  EVP_EncodeBlock((unsigned char *)key, raw, sizeof raw);  /* 24 chars and a NUL */
  return true;
}

void rc__ws_accept(const char *key, char out[RC__WS_ACCEPT_LEN + 1]) {
  char in[128];
  int n = snprintf(in, sizeof in, "%.64s%s", key, WS_GUID);
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int mdlen = 0;
  if (n < 0 || EVP_Digest(in, (size_t)n, md, &mdlen, EVP_sha1(), NULL) != 1 || mdlen != 20) {
    out[0] = '\0';  /* matches no answer: the upgrade is refused, never wrongly accepted */
    return;
  }
  EVP_EncodeBlock((unsigned char *)out, md, mdlen);  /* 28 chars and a NUL */
}

void rc__ws_request_write(rc__buf *out, const rc__ws_request *rq) {
  bool v6 = strchr(rq->host, ':') != NULL;
  rc__buf_printf(out, "GET %s HTTP/1.1\r\nHost: %s%s%s", rq->resource, v6 ? "[" : "",
                 rq->host, v6 ? "]" : "");
  if (rq->port != (rq->tls ? 443 : 80)) rc__buf_printf(out, ":%d", rq->port);
  rc__buf_printf(out, "\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                 "Sec-WebSocket-Key: %s\r\nSec-WebSocket-Version: 13\r\n"
                 "User-Agent: reactcfg/" RC_VERSION_STRING "\r\n", rq->key);
  if (rq->authorization) {
    rc__buf_adds(out, "Authorization: ");
    rc__buf_adds(out, rq->authorization);
    rc__buf_adds(out, "\r\n");
  }
  for (size_t i = 0; rq->headers && rq->headers[i] && rq->headers[i + 1]; i += 2) {
    rc__buf_adds(out, rq->headers[i]);
    rc__buf_adds(out, ": ");
    rc__buf_adds(out, rq->headers[i + 1]);
    rc__buf_adds(out, "\r\n");
  }
  rc__buf_adds(out, "\r\n");
}

size_t rc__ws_head_len(const char *p, size_t n) {
  for (size_t i = 3; i < n; i++)
    if (p[i] == '\n' && p[i - 1] == '\r' && p[i - 2] == '\n' && p[i - 3] == '\r')
      return i + 1;
  return 0;
}

/* ===================================================================================
 * Reading the answer
 * =================================================================================== */

/* RFC 9110 5.6.2: the characters of a token (a header name). */
static bool tchar(unsigned char c) {
  return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
         (c && strchr("!#$%&'*+-.^_`|~", c));
}

/* The end of the line starting at `p` (its CR), or NULL when the line does not end in
 * CRLF before `end` or holds a bare CR or LF. */
static const char *line_end(const char *p, const char *end) {
  for (const char *q = p; q < end; q++) {
    if (*q == '\r') return q + 1 < end && q[1] == '\n' ? q : NULL;
    if (*q == '\n') return NULL;
  }
  return NULL;
}

static bool name_is(const char *name, size_t n, const char *want) {
  return strlen(want) == n && strncasecmp(name, want, n) == 0;
}

/* Whether the comma-separated list `v` (n bytes) holds `token`, case-insensitively. */
static bool list_has(const char *v, size_t n, const char *token) {
  size_t tl = strlen(token), i = 0;
  while (i < n) {
    while (i < n && (v[i] == ' ' || v[i] == '\t' || v[i] == ',')) i++;
    size_t start = i;
    while (i < n && v[i] != ',') i++;
    size_t stop = i;
    while (stop > start && (v[stop - 1] == ' ' || v[stop - 1] == '\t')) stop--;
    if (stop - start == tl && strncasecmp(v + start, token, tl) == 0) return true;
  }
  return false;
}

/* Copies printable ASCII of `v` into `out` (others become '?'), cut to fit. */
static void printable(char *out, size_t cap, const char *v, size_t n) {
  size_t j = 0;
  for (size_t i = 0; i < n && j + 1 < cap; i++)
    out[j++] = v[i] >= 0x20 && v[i] < 0x7f ? v[i] : '?';
  out[j] = '\0';
}

static int malformed(rc_error *err, const char *shown, const char *what) {
  return rc__err(err, RC_EPARSE, shown, 0, 0, "the answer of %s to the WebSocket upgrade is "
                 "not well-formed HTTP/1.1: %s", shown, what);
}

int rc__ws_response_check(const char *head, size_t len, const char *key,
                          const char *shown, rc__ws_response *res, rc_error *err) {
  memset(res, 0, sizeof *res);
  const char *p = head, *end = head + len;
  /* HTTP-version SP status-code SP [reason-phrase] CRLF (RFC 9112 4). */
  const char *eol = line_end(p, end);
  if (!eol) return malformed(err, shown, "no status line");
  if (eol - p < 12 || memcmp(p, "HTTP/1.", 7) != 0 || p[7] < '0' || p[7] > '9' ||
      p[8] != ' ')
    return malformed(err, shown, "the status line does not start with HTTP/1.x");
  int status = 0;
  for (int i = 9; i < 12; i++) {
    if (p[i] < '0' || p[i] > '9') return malformed(err, shown, "no three-digit status");
    status = status * 10 + (p[i] - '0');
  }
  if (p + 12 < eol && p[12] != ' ') return malformed(err, shown, "no three-digit status");
  for (const char *q = p + 12; q < eol; q++)
    if ((unsigned char)*q < 0x20 && *q != '\t')
      return malformed(err, shown, "a control character in the status line");
  if (p + 13 < eol) printable(res->reason, sizeof res->reason, p + 13, (size_t)(eol - p - 13));
  res->status = status;

  /* Header lines, then the blank line that ends the head. */
  bool upgrade = false, connection = false, accept_ok = false, extension = false,
       protocol = false;
  int accepts = 0, lines = 0;
  char want[RC__WS_ACCEPT_LEN + 1];
  rc__ws_accept(key, want);
  p = eol + 2;
  for (;;) {
    eol = line_end(p, end);
    if (!eol) return malformed(err, shown, "a header line without CRLF");
    if (eol == p) {
      p += 2;
      break;
    }
    if (++lines > RC__WS_MAX_HEADER_LINES)
      return rc__err(err, RC_ELIMIT, shown, 0, 0, "the answer of %s to the WebSocket "
                     "upgrade has more than %d header lines", shown, RC__WS_MAX_HEADER_LINES);
    if (*p == ' ' || *p == '\t')
      return malformed(err, shown, "a folded header line (obsolete line folding)");
    const char *name = p;
    while (p < eol && tchar((unsigned char)*p)) p++;
    size_t nlen = (size_t)(p - name);
    if (!nlen || p == eol || *p != ':')
      return malformed(err, shown, "a header line that is not 'name: value'");
    p++;
    while (p < eol && (*p == ' ' || *p == '\t')) p++;
    const char *v = p, *vend = eol;
    while (vend > v && (vend[-1] == ' ' || vend[-1] == '\t')) vend--;
    for (const char *q = v; q < vend; q++)
      if (((unsigned char)*q < 0x20 && *q != '\t') || *q == 0x7f)
        return malformed(err, shown, "a control character in a header value");
    size_t vlen = (size_t)(vend - v);
    if (name_is(name, nlen, "Upgrade")) {
      upgrade = upgrade || (vlen == 9 && strncasecmp(v, "websocket", 9) == 0);
    } else if (name_is(name, nlen, "Connection")) {
      connection = connection || list_has(v, vlen, "upgrade");
    } else if (name_is(name, nlen, "Sec-WebSocket-Accept")) {
      accepts++;
      accept_ok = vlen == RC__WS_ACCEPT_LEN && want[0] &&
                  memcmp(v, want, RC__WS_ACCEPT_LEN) == 0;
    } else if (name_is(name, nlen, "Sec-WebSocket-Extensions")) {
      extension = extension || vlen > 0;
    } else if (name_is(name, nlen, "Sec-WebSocket-Protocol")) {
      protocol = protocol || vlen > 0;
    } else if (name_is(name, nlen, "Retry-After")) {
      printable(res->retry_after, sizeof res->retry_after, v, vlen);
    }
    p = eol + 2;
  }
  if (p != end) return malformed(err, shown, "bytes after the blank line in the head");

  if (status != 101)
    return rc__err(err, RC_EIO, shown, 0, 0, "%s refused the WebSocket upgrade: HTTP %d%s%s",
                   shown, status, res->reason[0] ? " " : "", res->reason);
  /* RFC 6455 4.1, the client's checks of the answer, in its order. */
  const char *wrong = !upgrade      ? "no 'Upgrade: websocket'"
                      : !connection ? "no 'Connection: upgrade'"
                      : accepts > 1 ? "more than one Sec-WebSocket-Accept"
                      : !accept_ok  ? "a missing or wrong Sec-WebSocket-Accept"
                      : extension   ? "an extension that was not offered"
                      : protocol    ? "a subprotocol that was not offered"
                                    : NULL;
  if (wrong)
    return rc__err(err, RC_EIO, shown, 0, 0, "%s answered the WebSocket upgrade with %s",
                   shown, wrong);
  return 0;
}
