/* SPDX-License-Identifier: MIT (see LICENSE) */
/* stream.h: a client byte stream on the engine's loop, for a source that speaks its own
 * protocol over TCP: the host name resolved on the thread pool, its addresses tried in
 * turn, then optionally TLS through OpenSSL on memory BIOs. The socket stays libuv's
 * (uv_tcp_t reads and writes on the loop); OpenSSL only encrypts and decrypts, and
 * verifies the peer's certificate chain and name unless the context says not to.
 * A stream is allocated apart from its owner and freed by its last close callback, so it
 * may outlive the owner's stop; its handles are counted by the host. Loop thread only. */
#ifndef RC_WS_STREAM_H
#define RC_WS_STREAM_H

#include "source.h"

#include <openssl/ssl.h>

typedef struct rc__stream rc__stream;

typedef struct rc__stream_opts {
  const char *host;   /* a name or an IP literal (IPv6 without brackets); copied */
  int port;
  SSL_CTX *tls;       /* NULL: plain TCP; else a client context (rc__stream_tls_context),
                         referenced by the stream */
  const char *shown;  /* what messages name (no credentials); copied */
} rc__stream_opts;

/* Never called after rc__stream_close, nor from inside a call of this API. */
typedef struct rc__stream_callbacks {
  /* The connection is up (after the TLS handshake, with TLS). */
  void (*connected)(void *ud);
  /* Bytes from the peer, decrypted; borrowed for the call. */
  void (*data)(void *ud, const char *p, size_t n);
  /* It failed, or the peer closed it (RC_EIO, with the reason): nothing more comes, and
   * the owner closes it. Called at most once. */
  void (*failed)(void *ud, const rc_error *err);
} rc__stream_callbacks;

/* A client TLS context: TLS 1.2 at least; the peer's chain verified against `ca_file` (a
 * PEM bundle) or else the system's store (OpenSSL's default paths, SSL_CERT_FILE and
 * SSL_CERT_DIR), unless `insecure`. Free with SSL_CTX_free. NULL with `err` filled
 * (`shown` names the source). */
SSL_CTX *rc__stream_tls_context(const char *ca_file, bool insecure, const char *shown,
                                rc_error *err);

/* Starts connecting; the callbacks report the rest. NULL with `err` filled (RC_ENOMEM,
 * RC_EIO when the lookup cannot start). */
rc__stream *rc__stream_open(rc__host *host, const rc__stream_opts *o,
                            const rc__stream_callbacks *cb, void *ud, rc_error *err);
/* Sends `n` bytes (copied; encrypted with TLS) once connected. 0, or RC_EIO/RC_ENOMEM
 * (the owner then fails the connection; `failed` is not called for it). */
int rc__stream_write(rc__stream *st, const void *p, size_t n);
/* Bytes handed to the socket and not yet written (a peer that does not read). */
size_t rc__stream_queued(const rc__stream *st);
/* Closes it: no callback after this. NULL is ignored. */
void rc__stream_close(rc__stream *st);

#endif
