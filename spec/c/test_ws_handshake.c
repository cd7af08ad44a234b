/* SPDX-License-Identifier: MIT (see LICENSE) */
/* test_ws_handshake.c: the WebSocket opening handshake of rc.websocket (sources/websocket/
 * handshake.c): the accept value of RFC 6455's own example, fresh keys, the request's
 * exact text, where a response head ends, and the reading of the answer: a good upgrade
 * in its variants, each header the upgrade needs missing or wrong, refusals with their
 * status and Retry-After, malformed heads of every kind, the header-line bound, every
 * truncation of a good head, messages that never quote a header value, and the request
 * built under an allocator failing at each allocation in turn. */
#include "check.h"
#include "failalloc.h"
#include "websocket/handshake.h"

#include <openssl/evp.h>

static const char *KEY = "dGhlIHNhbXBsZSBub25jZQ==";      /* RFC 6455 1.3 */
static const char *ACCEPT = "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="; /* its answer */

/* Checks `head` against KEY; returns the code, with the message in `msg` (256). */
static int check(const char *head, rc__ws_response *res, char *msg) {
  rc_error err;
  memset(&err, 0, sizeof err);
  int rc = rc__ws_response_check(head, strlen(head), KEY, "ws://h/x", res, &err);
  snprintf(msg, 256, "%.255s", rc ? err.message : "");
  if (rc) CHECK_EQ_STR(err.file, "ws://h/x");
  return rc;
}

#define GOOD_HEAD                                                                  \
  "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n" \
  "Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n\r\n"

static void test_keys(void) {
  char out[RC__WS_ACCEPT_LEN + 1];
  rc__ws_accept(KEY, out);
  CHECK_EQ_STR(out, ACCEPT);
  char a[RC__WS_KEY_LEN + 1], b[RC__WS_KEY_LEN + 1];
  CHECK(rc__ws_new_key(a));
  CHECK(rc__ws_new_key(b));
  CHECK_EQ_INT(strlen(a), 24);
  CHECK(strcmp(a, b) != 0);
  unsigned char raw[32];
  CHECK_EQ_INT(EVP_DecodeBlock(raw, (const unsigned char *)a, 24), 18);  /* 16 + padding */
  CHECK(a[22] == '=' && a[23] == '=');
}

static void test_request(void) {
  char *headers[] = {"X-Tenant", "blue", NULL};
  rc__ws_request rq = {.host = "cfg.example", .port = 443, .tls = true,
                       .resource = "/live?v=1", .key = KEY, .headers = headers,
                       .authorization = "Bearer t0k"};
  rc__buf b;
  rc__buf_init(&b);
  rc__ws_request_write(&b, &rq);
  CHECK_EQ_STR(b.p, "GET /live?v=1 HTTP/1.1\r\nHost: cfg.example\r\nUpgrade: websocket\r\n"
                    "Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
                    "Sec-WebSocket-Version: 13\r\nUser-Agent: reactcfg/" RC_VERSION_STRING
                    "\r\nAuthorization: Bearer t0k\r\nX-Tenant: blue\r\n\r\n");
  /* A port other than the scheme's is in Host; an IPv6 literal is bracketed. */
  rc__buf_reset(&b);
  rc__ws_request rq2 = {.host = "::1", .port = 443, .tls = false, .resource = "/",
                        .key = KEY};
  rc__ws_request_write(&b, &rq2);
  CHECK(strstr(b.p, "GET / HTTP/1.1\r\nHost: [::1]:443\r\n") == b.p);
  CHECK(!strstr(b.p, "Authorization"));
  rc__buf_free(&b);
}

static void test_head_len(void) {
  const char *h = GOOD_HEAD;
  size_t n = strlen(h);
  CHECK_EQ_INT(rc__ws_head_len(h, n), n);
  for (size_t i = 0; i < n; i++) CHECK_EQ_INT(rc__ws_head_len(h, i), 0);
  char more[512];
  snprintf(more, sizeof more, "%s\x81\x02hi", h);
  CHECK_EQ_INT(rc__ws_head_len(more, strlen(more)), n);
  CHECK_EQ_INT(rc__ws_head_len("HTTP/1.1 101 OK\n\n", 17), 0);  /* bare LF never ends it */
}

static void test_accepted(void) {
  rc__ws_response res;
  char msg[256];
  CHECK_EQ_INT(check(GOOD_HEAD, &res, msg), 0);
  CHECK_EQ_INT(res.status, 101);
  CHECK_EQ_STR(res.reason, "Switching Protocols");
  /* Names in any case, values trimmed, Connection as a list, Upgrade in any case,
   * an empty reason phrase, other headers ignored, an empty extension list. */
  CHECK_EQ_INT(check("HTTP/1.1 101\r\nupgrade:WebSocket \r\nconnection: keep-alive, "
                     "upgrade\r\nSEC-WEBSOCKET-ACCEPT:\ts3pPLMBiTxaQ9kYGzzhZRbK+xOo=\t\r\n"
                     "Server: x\r\nSec-WebSocket-Extensions: \r\n\r\n", &res, msg), 0);
  CHECK_EQ_STR(res.reason, "");
  CHECK_EQ_INT(check("HTTP/1.0 101 \r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                     "Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n\r\n", &res, msg),
               0);
}

static void test_refused(void) {
  rc__ws_response res;
  char msg[256];
  CHECK_EQ_INT(check("HTTP/1.1 503 Service Unavailable\r\nRetry-After: 7\r\n"
                     "Content-Length: 0\r\n\r\n", &res, msg), RC_EIO);
  CHECK_EQ_INT(res.status, 503);
  CHECK_EQ_STR(res.retry_after, "7");
  CHECK_EQ_STR(msg, "ws://h/x refused the WebSocket upgrade: HTTP 503 Service Unavailable");
  CHECK_EQ_INT(check("HTTP/1.1 200 OK\r\n\r\n", &res, msg), RC_EIO);
  CHECK_EQ_STR(msg, "ws://h/x refused the WebSocket upgrade: HTTP 200 OK");
  /* A reason with control or non-ASCII bytes is shown with '?' in their place. */
  CHECK_EQ_INT(check("HTTP/1.1 403 No\tway \xc3\xa9\r\n\r\n", &res, msg), RC_EIO);
  CHECK_EQ_STR(res.reason, "No?way ??");
}

/* A 101 missing or getting wrong what RFC 6455 4.1 asks of it. */
static void test_wrong_upgrade(void) {
  static const struct { const char *head, *says; } cases[] = {
    {"HTTP/1.1 101 S\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: "
     "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n\r\n", "no 'Upgrade: websocket'"},
    {"HTTP/1.1 101 S\r\nUpgrade: h2c\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: "
     "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n\r\n", "no 'Upgrade: websocket'"},
    {"HTTP/1.1 101 S\r\nUpgrade: websocket\r\nConnection: keep-alive\r\n"
     "Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n\r\n", "no 'Connection: upgrade'"},
    {"HTTP/1.1 101 S\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n",
     "a missing or wrong Sec-WebSocket-Accept"},
    {"HTTP/1.1 101 S\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
     "Sec-WebSocket-Accept: SECRETSECRETSECRETSECRET1234\r\n\r\n",
     "a missing or wrong Sec-WebSocket-Accept"},
    {"HTTP/1.1 101 S\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
     "Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo\r\n\r\n",
     "a missing or wrong Sec-WebSocket-Accept"},
    {"HTTP/1.1 101 S\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
     "Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n"
     "Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n\r\n",
     "more than one Sec-WebSocket-Accept"},
    {"HTTP/1.1 101 S\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
     "Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n"
     "Sec-WebSocket-Extensions: permessage-deflate\r\n\r\n",
     "an extension that was not offered"},
    {"HTTP/1.1 101 S\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
     "Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n"
     "Sec-WebSocket-Protocol: chat\r\n\r\n", "a subprotocol that was not offered"},
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    rc__ws_response res;
    char msg[256], want[256];
    CHECK_EQ_INT(check(cases[i].head, &res, msg), RC_EIO);
    snprintf(want, sizeof want, "ws://h/x answered the WebSocket upgrade with %s",
             cases[i].says);
    CHECK_EQ_STR(msg, want);
    CHECK(!strstr(msg, "SECRET"));
  }
}

static void test_malformed(void) {
  static const struct { const char *head, *says; } cases[] = {
    {"HTTP/2 101 S\r\n\r\n", "the status line does not start with HTTP/1.x"},
    {"ICY 200 OK\r\n\r\n", "the status line does not start with HTTP/1.x"},
    {"HTTP/1.1  101 S\r\n\r\n", "no three-digit status"},
    {"HTTP/1.1 10\r\n\r\n", "the status line does not start with HTTP/1.x"},
    {"HTTP/1.1 1O1 S\r\n\r\n", "no three-digit status"},
    {"HTTP/1.1 1012 S\r\n\r\n", "no three-digit status"},
    {"HTTP/1.1 101 S\x01\r\n\r\n", "a control character in the status line"},
    {"HTTP/1.1 101 S\nUpgrade: websocket\r\n\r\n", "no status line"},
    {"HTTP/1.1 101 S\r\nUpgrade: websocket\n\r\n", "a header line without CRLF"},
    {"HTTP/1.1 101 S\r\nUpgrade:\r websocket\r\n\r\n", "a header line without CRLF"},
    {"HTTP/1.1 101 S\r\nUpgrade: websocket\r\n  continued\r\n\r\n",
     "a folded header line (obsolete line folding)"},
    {"HTTP/1.1 101 S\r\nUpgrade websocket\r\n\r\n", "a header line that is not 'name: value'"},
    {"HTTP/1.1 101 S\r\nUpgrade : websocket\r\n\r\n",
     "a header line that is not 'name: value'"},
    {"HTTP/1.1 101 S\r\n: websocket\r\n\r\n", "a header line that is not 'name: value'"},
    {"HTTP/1.1 101 S\r\nX-A: a\x7f\r\n\r\n", "a control character in a header value"},
    {"HTTP/1.1 101 S\r\nX-A: a\x1b[31m\r\n\r\n", "a control character in a header value"},
    {"HTTP/1.1 101 S\r\n\r\nextra", "bytes after the blank line in the head"},
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    rc__ws_response res;
    char msg[256], want[256];
    CHECK_EQ_INT(check(cases[i].head, &res, msg), RC_EPARSE);
    snprintf(want, sizeof want, "the answer of ws://h/x to the WebSocket upgrade is not "
             "well-formed HTTP/1.1: %s", cases[i].says);
    CHECK_EQ_STR(msg, want);
  }
  /* A NUL inside the head (strlen would stop there: given with its length). */
  static const char nul[] = "HTTP/1.1 101 S\r\nX-A: a\0b\r\n\r\n";
  rc__ws_response res;
  rc_error err;
  memset(&err, 0, sizeof err);
  CHECK_EQ_INT(rc__ws_response_check(nul, sizeof nul - 1, KEY, "ws://h/x", &res, &err),
               RC_EPARSE);
}

static void test_bounds(void) {
  rc__buf b;
  rc__buf_init(&b);
  rc__buf_adds(&b, "HTTP/1.1 101 S\r\n");
  for (int i = 0; i <= RC__WS_MAX_HEADER_LINES; i++) rc__buf_printf(&b, "X-%d: v\r\n", i);
  rc__buf_adds(&b, "\r\n");
  rc__ws_response res;
  rc_error err;
  memset(&err, 0, sizeof err);
  CHECK_EQ_INT(rc__ws_response_check(b.p, b.n, KEY, "ws://h/x", &res, &err), RC_ELIMIT);
  CHECK_EQ_STR(err.message, "the answer of ws://h/x to the WebSocket upgrade has more than "
                            "100 header lines");
  rc__buf_free(&b);
  /* Every truncation of a good head is refused (and read only within its length). */
  const char *good = GOOD_HEAD;
  size_t n = strlen(good);
  int refused = 0;
  for (size_t i = 0; i < n; i++) {
    char *cut = rc__malloc(i ? i : 1);
    memcpy(cut, good, i);
    memset(&err, 0, sizeof err);
    if (rc__ws_response_check(cut, i, KEY, "ws://h/x", &res, &err) != 0) refused++;
    rc__free(cut);
  }
  CHECK_EQ_INT(refused, n);
}

/* The request under an allocator that fails allocation N, for each N until it is built:
 * out.oom says so, nothing leaks, and the request built in the end is the whole one. */
static void test_alloc_failure(void) {
  char *headers[] = {"X-Long", "vvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvv"
                               "vvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvv",
                     NULL};
  rc__ws_request rq = {.host = "cfg.example", .port = 8443, .tls = true,
                       .resource = "/live", .key = KEY, .headers = headers,
                       .authorization = "Bearer t0k"};
  rc__buf want;
  rc__buf_init(&want);
  rc__ws_request_write(&want, &rq);
  int built = 0, refused = 0;
  for (long n = 0; n < 64 && !built; n++) {
    fa_install(n);
    rc__buf b;
    rc__buf_init(&b);
    rc__ws_request_write(&b, &rq);
    if (!b.oom) {
      built = 1;
      CHECK_EQ_STR(b.p, want.p);
    } else {
      refused++;
    }
    rc__buf_free(&b);
    fa_uninstall();
    CHECK_EQ_INT(fa_live, 0);
  }
  CHECK(built);
  CHECK(refused > 0);
  rc__buf_free(&want);
}

int main(void) {
  test_keys();
  test_request();
  test_head_len();
  test_accepted();
  test_refused();
  test_wrong_upgrade();
  test_malformed();
  test_bounds();
  test_alloc_failure();
  return check_report("ws_handshake");
}
