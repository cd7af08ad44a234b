/* SPDX-License-Identifier: MIT (see LICENSE) */
/* http_util.c: small pieces of HTTP the remote sources share (see http_util.h). */
#include "http_util.h"

#include <curl/curl.h>
#include <stdlib.h>
#include <time.h>

/* A Retry-After longer than this is taken as this: a server cannot park a source. */
#define RETRY_AFTER_MAX_MS (60u * 60 * 1000)

uint64_t rc__retry_after_ms(const char *v) {
  if (!v || !*v) return 0;
  uint64_t ms;
  if (*v >= '0' && *v <= '9') {
    char *end;
    unsigned long long s = strtoull(v, &end, 10);
    ms = s > RETRY_AFTER_MAX_MS / 1000 ? RETRY_AFTER_MAX_MS : (uint64_t)s * 1000;
  } else {
    time_t at = curl_getdate(v, NULL);
    time_t now = time(NULL);
    if (at <= now) return 0;
    ms = (uint64_t)(at - now) * 1000;
  }
  return ms > RETRY_AFTER_MAX_MS ? RETRY_AFTER_MAX_MS : ms;
}

int rc__http_status_error(rc_error *err, const char *url, const rc__net_result *res,
                          const char *what) {
  /* The first line of the body, printable bytes only: servers explain themselves there
   * (Consul's plain text, Vault's {"errors":[...]}). */
  char detail[161];
  size_t n = 0;
  for (size_t i = 0; i < res->body_len && n < sizeof detail - 1; i++) {
    unsigned char ch = (unsigned char)res->body[i];
    if (ch == '\n' || ch == '\r') break;
    detail[n++] = ch < 0x20 || ch == 0x7f ? ' ' : (char)ch;
  }
  detail[n] = '\0';
  return rc__err(err, RC_EIO, url, 0, 0, "%s%sHTTP %ld%s%s", what ? what : "",
                 what ? ": " : "", res->status, n ? ": " : "", detail);
}

void rc__url_path_escape(rc__buf *b, const char *s) {
  static const char hex[] = "0123456789ABCDEF";
  for (; *s; s++) {
    unsigned char ch = (unsigned char)*s;
    if ((ch >= 'A' && ch <= 'Z') || (ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9') ||
        ch == '-' || ch == '.' || ch == '_' || ch == '~' || ch == '/') {
      rc__buf_addc(b, (char)ch);
    } else {
      rc__buf_addc(b, '%');
      rc__buf_addc(b, hex[ch >> 4]);
      rc__buf_addc(b, hex[ch & 15]);
    }
  }
}

static int b64val(unsigned char ch) {
  if (ch >= 'A' && ch <= 'Z') return ch - 'A';
  if (ch >= 'a' && ch <= 'z') return ch - 'a' + 26;
  if (ch >= '0' && ch <= '9') return ch - '0' + 52;
  if (ch == '+') return 62;
  if (ch == '/') return 63;
  return -1;
}

bool rc__base64_decode(const char *s, size_t n, rc__buf *out) {
  while (n && s[n - 1] == '=') n--;
  if (n % 4 == 1) return false;
  uint32_t acc = 0;
  int bits = 0;
  for (size_t i = 0; i < n; i++) {
    int v = b64val((unsigned char)s[i]);
    if (v < 0) return false;
    acc = (acc << 6) | (uint32_t)v;
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      rc__buf_addc(out, (char)((acc >> bits) & 0xff));
    }
  }
  return !out->oom;
}
