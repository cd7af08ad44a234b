/* SPDX-License-Identifier: MIT (see LICENSE) */
/* http_util.h: small pieces of HTTP the remote sources share: Retry-After, an error from
 * a status line and body, percent-encoding a path, base64. */
#ifndef RC_HTTP_UTIL_H
#define RC_HTTP_UTIL_H

#include "net.h"

/* Milliseconds asked by a Retry-After header (seconds or an HTTP date), 0 if none; at
 * most an hour (a server cannot park a source). */
uint64_t rc__retry_after_ms(const char *v);
/* "<what>: HTTP 503: <first line of the body>" into err (RC_EIO), `url` as the file.
 * Returns RC_EIO. */
int rc__http_status_error(rc_error *err, const char *url, const rc__net_result *res,
                          const char *what);
/* Appends `s` percent-encoded, keeping '/' (a path in a URL). */
void rc__url_path_escape(rc__buf *b, const char *s);
/* base64 (RFC 4648, with padding) into `out`; returns false if malformed. */
bool rc__base64_decode(const char *s, size_t n, rc__buf *out);

#endif
