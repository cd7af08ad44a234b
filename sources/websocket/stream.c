/* stream.c: a client byte stream, plain or TLS, on the engine's loop (see stream.h).
 * TLS runs on two memory BIOs: what the socket reads goes into one and SSL_read takes the
 * plaintext out; what SSL_write and the handshake produce comes out of the other and is
 * written with uv_write. OpenSSL allocates with malloc (its allocator hook is process-
 * wide, not ours to take), outside rc_set_allocator, like libcurl's TLS. */
#include "stream.h"

#include <openssl/err.h>
#include <openssl/x509v3.h>
#include <arpa/inet.h>
#include <stdio.h>
#include <string.h>

#define STREAM_READ_BYTES (64u * 1024)

struct rc__stream {
  rc__host *host;
  rc__stream_callbacks cb;
  void *ud;
  char *host_name, *shown;
  int port;
  SSL_CTX *tls_ctx;          /* a reference, or NULL for plain TCP */
  SSL *ssl;                  /* once TCP is up, with TLS */
  BIO *rbio, *wbio;          /* owned by ssl */
  bool handshaking;
  uv_getaddrinfo_t gai;      /* the lookup; its callback runs even when cancelled */
  bool resolving;
  struct addrinfo *addrs, *next;  /* addresses found, the next one to try */
  uv_tcp_t *tcp;             /* the current attempt or connection (own allocation) */
  uv_connect_t conn_req;     /* one attempt at a time */
  int handles;               /* tcp handles not closed yet, plus the lookup */
  bool closed, failed;
  size_t queued;
  rc_error attempt_err;      /* why the last address failed */
  char rbuf[STREAM_READ_BYTES];
};

/* A write in flight: its bytes follow it. */
typedef struct stream_write {
  uv_write_t req;
  rc__stream *st;
  size_t n;
  char data[];
} stream_write;

static void maybe_free(rc__stream *st) {
  if (!st->closed || st->handles) return;
  SSL_free(st->ssl);
  SSL_CTX_free(st->tls_ctx);
  if (st->addrs) uv_freeaddrinfo(st->addrs);
  rc__free(st->host_name);
  rc__free(st->shown);
  rc__free(st);
}

static void fail(rc__stream *st, const rc_error *err) {
  if (st->closed || st->failed) return;
  st->failed = true;
  st->cb.failed(st->ud, err);
}

static void failf(rc__stream *st, const char *fmt, const char *detail) {
  rc_error e = {0};
  rc__err(&e, RC_EIO, st->shown, 0, 0, fmt, st->shown, detail);
  fail(st, &e);
}

static void tcp_closed(uv_handle_t *h) {
  rc__stream *st = h->data;
  rc__free(h);
  rc__host_handle_closed(st->host);
  st->handles--;
  maybe_free(st);
}

static void close_tcp(rc__stream *st) {
  if (!st->tcp) return;
  uv_read_stop((uv_stream_t *)st->tcp);
  uv_close((uv_handle_t *)st->tcp, tcp_closed);
  st->tcp = NULL;
}

/* ===================================================================================
 * Writing
 * =================================================================================== */

static void written(uv_write_t *req, int status) {
  stream_write *w = (stream_write *)req;
  rc__stream *st = w->st;
  st->queued -= w->n;
  rc__free(w);
  if (status < 0 && status != UV_ECANCELED)
    failf(st, "the connection to %s failed while writing: %s", uv_strerror(status));
}

/* Queues `n` bytes on the socket. With `from_bio`, they are read out of the TLS write BIO
 * instead of `p`. */
static int write_raw(rc__stream *st, const void *p, size_t n, bool from_bio) {
  if (!st->tcp) return RC_EIO;
  stream_write *w = rc__malloc(sizeof *w + n);
  if (!w) return RC_ENOMEM;
  if (from_bio) {
    if (BIO_read(st->wbio, w->data, (int)n) != (int)n) {
      rc__free(w);
      return RC_EIO;
    }
  } else {
    memcpy(w->data, p, n);
  }
  w->st = st;
  w->n = n;
  uv_buf_t b = uv_buf_init(w->data, (unsigned)n);
  if (uv_write(&w->req, (uv_stream_t *)st->tcp, &b, 1, written) != 0) {
    rc__free(w);
    return RC_EIO;
  }
  st->queued += n;
  return 0;
}

/* Writes whatever TLS produced (handshake records, encrypted data, alerts). */
static int tls_flush(rc__stream *st) {
  size_t n;
  while ((n = BIO_ctrl_pending(st->wbio)) > 0) {
    if (n > STREAM_READ_BYTES) n = STREAM_READ_BYTES;
    int rc = write_raw(st, NULL, n, true);
    if (rc) return rc;
  }
  return 0;
}

int rc__stream_write(rc__stream *st, const void *p, size_t n) {
  if (st->closed || st->failed || !st->tcp) return RC_EIO;
  if (!st->ssl) return write_raw(st, p, n, false);
  if (st->handshaking) return RC_EIO;
  ERR_clear_error();
  /* A memory BIO takes everything: SSL_write writes all of it or fails. */
  if (n && SSL_write(st->ssl, p, (int)n) != (int)n) return RC_EIO;
  return tls_flush(st);
}

size_t rc__stream_queued(const rc__stream *st) { return st->queued; }

/* ===================================================================================
 * TLS
 * =================================================================================== */

SSL_CTX *rc__stream_tls_context(const char *ca_file, bool insecure, const char *shown,
                                rc_error *err) {
  ERR_clear_error();
  SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());
  if (!ctx) {
    rc__err(err, RC_ENOMEM, shown, 0, 0, "cannot set up TLS (out of memory)");
    return NULL;
  }
  SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
  SSL_CTX_set_verify(ctx, insecure ? SSL_VERIFY_NONE : SSL_VERIFY_PEER, NULL);
  if (!insecure) {
    int ok = ca_file ? SSL_CTX_load_verify_locations(ctx, ca_file, NULL)
                     : SSL_CTX_set_default_verify_paths(ctx);
    if (ok != 1) {
      char why[200];
      ERR_error_string_n(ERR_get_error(), why, sizeof why);
      rc__err(err, RC_EIO, shown, 0, 0, "TLS: cannot read the CA certificates %s%s: %s",
              ca_file ? "in " : "of the system", ca_file ? ca_file : "", why);
      SSL_CTX_free(ctx);
      return NULL;
    }
  }
  return ctx;
}

/* Why a TLS call failed, in words: an untrusted certificate first, else OpenSSL's
 * error queue. */
static void tls_failed(rc__stream *st, bool handshake) {
  long v = SSL_get_verify_result(st->ssl);
  char why[256];
  if (handshake && v != X509_V_OK) {
    snprintf(why, sizeof why, "the server's certificate is not trusted (%s)",
             X509_verify_cert_error_string(v));
  } else {
    unsigned long e = ERR_get_error();
    if (e) ERR_error_string_n(e, why, sizeof why);
    else snprintf(why, sizeof why, "%s", "the TLS session failed");
  }
  failf(st, handshake ? "TLS handshake with %s failed: %s" : "TLS error on %s: %s", why);
}

/* Handshakes, then hands over every plaintext byte TLS can decrypt from what arrived. */
static void tls_pump(rc__stream *st) {
  if (st->handshaking) {
    ERR_clear_error();
    int r = SSL_do_handshake(st->ssl);
    int e = r == 1 ? SSL_ERROR_NONE : SSL_get_error(st->ssl, r);
    if (tls_flush(st) != 0) {
      failf(st, "the connection to %s failed while writing: %s", "TLS handshake");
      return;
    }
    if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE) return;
    if (e != SSL_ERROR_NONE) {
      tls_failed(st, true);
      return;
    }
    st->handshaking = false;
    st->cb.connected(st->ud);
    if (st->closed || st->failed) return;
  }
  char buf[16384];
  for (;;) {
    ERR_clear_error();
    int r = SSL_read(st->ssl, buf, sizeof buf);
    if (r > 0) {
      st->cb.data(st->ud, buf, (size_t)r);
      if (st->closed || st->failed) return;
      continue;
    }
    int e = SSL_get_error(st->ssl, r);
    if (tls_flush(st) != 0) {
      failf(st, "the connection to %s failed while writing: %s", "TLS");
      return;
    }
    if (e == SSL_ERROR_WANT_READ) return;
    if (e == SSL_ERROR_ZERO_RETURN) {
      failf(st, "%s closed the connection%s", " (TLS close_notify)");
      return;
    }
    tls_failed(st, false);
    return;
  }
}

static int tls_begin(rc__stream *st) {
  st->ssl = SSL_new(st->tls_ctx);
  st->rbio = BIO_new(BIO_s_mem());
  st->wbio = BIO_new(BIO_s_mem());
  if (!st->ssl || !st->rbio || !st->wbio) {
    BIO_free(st->rbio);
    BIO_free(st->wbio);
    st->rbio = st->wbio = NULL;
    return RC_ENOMEM;
  }
  SSL_set_bio(st->ssl, st->rbio, st->wbio);
  SSL_set_connect_state(st->ssl);
  unsigned char ip[16];
  bool literal = inet_pton(AF_INET, st->host_name, ip) == 1 ||
                 inet_pton(AF_INET6, st->host_name, ip) == 1;
  /* SNI names a host, never an address (RFC 6066 3); the certificate is checked against
   * the name or the address (OpenSSL 3 takes either here). */
  if (!literal && SSL_set_tlsext_host_name(st->ssl, st->host_name) != 1) return RC_ENOMEM;
  if (SSL_set1_host(st->ssl, st->host_name) != 1) return RC_ENOMEM;
  st->handshaking = true;
  return 0;
}

/* ===================================================================================
 * Connecting
 * =================================================================================== */

static void alloc_cb(uv_handle_t *h, size_t suggested, uv_buf_t *buf) {
  RC__UNUSED(suggested);
  rc__stream *st = h->data;
  *buf = uv_buf_init(st->rbuf, sizeof st->rbuf);
}

static void on_read(uv_stream_t *h, ssize_t n, const uv_buf_t *buf) {
  rc__stream *st = h->data;
  if (st->closed || st->failed || n == 0) return;
  if (n < 0) {
    if (n == UV_EOF) failf(st, "%s closed the connection%s", "");
    else failf(st, "the connection to %s was lost: %s", uv_strerror((int)n));
    return;
  }
  if (!st->ssl) {
    st->cb.data(st->ud, buf->base, (size_t)n);
    return;
  }
  if (BIO_write(st->rbio, buf->base, (int)n) != (int)n) {
    failf(st, "TLS on %s: %s", "out of memory");
    return;
  }
  tls_pump(st);
}

static void try_next(rc__stream *st);

static void on_connect(uv_connect_t *req, int status) {
  rc__stream *st = req->data;
  if (st->closed || st->failed) return;
  if (status < 0) {
    rc__err(&st->attempt_err, RC_EIO, st->shown, 0, 0, "cannot connect to %s: %s",
            st->shown, uv_strerror(status));
    close_tcp(st);
    try_next(st);
    return;
  }
  uv_freeaddrinfo(st->addrs);
  st->addrs = st->next = NULL;
  uv_tcp_nodelay(st->tcp, 1);
  /* The kernel notices a peer gone without a word too, whatever the protocol's pings. */
  uv_tcp_keepalive(st->tcp, 1, 30);
  int rc = uv_read_start((uv_stream_t *)st->tcp, alloc_cb, on_read);
  if (rc) {
    failf(st, "cannot read from %s: %s", uv_strerror(rc));
    return;
  }
  if (!st->tls_ctx) {
    st->cb.connected(st->ud);
    return;
  }
  if (tls_begin(st) != 0) {
    failf(st, "TLS on %s: %s", "cannot set up the session (out of memory)");
    return;
  }
  tls_pump(st);
}

/* Connects to the next address found, or reports why the last one failed. */
static void try_next(rc__stream *st) {
  while (st->next) {
    struct addrinfo *a = st->next;
    st->next = a->ai_next;
    uv_tcp_t *tcp = rc__malloc(sizeof *tcp);
    if (!tcp) {
      rc__err(&st->attempt_err, RC_ENOMEM, st->shown, 0, 0, "out of memory");
      break;
    }
    int rc = uv_tcp_init(rc__host_loop(st->host), tcp);
    if (rc) {
      rc__free(tcp);
      rc__err(&st->attempt_err, RC_ESYS, st->shown, 0, 0, "uv_tcp_init: %s", uv_strerror(rc));
      break;
    }
    tcp->data = st;
    st->tcp = tcp;
    st->handles++;
    rc__host_handle_opened(st->host);
    st->conn_req.data = st;
    rc = uv_tcp_connect(&st->conn_req, tcp, a->ai_addr, on_connect);
    if (rc == 0) return;
    rc__err(&st->attempt_err, RC_EIO, st->shown, 0, 0, "cannot connect to %s: %s", st->shown,
            uv_strerror(rc));
    close_tcp(st);
  }
  if (!st->attempt_err.code)
    rc__err(&st->attempt_err, RC_EIO, st->shown, 0, 0, "cannot connect to %s: no address",
            st->shown);
  fail(st, &st->attempt_err);
}

static void resolved(uv_getaddrinfo_t *req, int status, struct addrinfo *res) {
  rc__stream *st = req->data;
  st->resolving = false;
  st->handles--;
  rc__host_handle_closed(st->host);
  if (st->closed) {
    if (res) uv_freeaddrinfo(res);
    maybe_free(st);
    return;
  }
  if (status != 0 || !res) {
    if (res) uv_freeaddrinfo(res);
    failf(st, "cannot resolve the host of %s: %s",
          uv_strerror(status ? status : UV_EAI_NONAME));
    return;
  }
  st->addrs = st->next = res;
  try_next(st);
}

rc__stream *rc__stream_open(rc__host *host, const rc__stream_opts *o,
                            const rc__stream_callbacks *cb, void *ud, rc_error *err) {
  rc__stream *st = rc__calloc(1, sizeof *st);
  if (st) {
    st->host_name = rc__strdup(o->host);
    st->shown = rc__strdup(o->shown ? o->shown : o->host);
  }
  if (!st || !st->host_name || !st->shown) {
    if (st) {
      rc__free(st->host_name);
      rc__free(st->shown);
    }
    rc__free(st);
    rc__err(err, RC_ENOMEM, o->shown, 0, 0, "out of memory");
    return NULL;
  }
  st->host = host;
  st->cb = *cb;
  st->ud = ud;
  st->port = o->port;
  if (o->tls && SSL_CTX_up_ref(o->tls) == 1) st->tls_ctx = o->tls;
  char port[8];
  snprintf(port, sizeof port, "%d", o->port);
  struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM};
  st->gai.data = st;
  int rc = (o->tls && !st->tls_ctx) ? UV_ENOMEM
           : uv_getaddrinfo(rc__host_loop(host), &st->gai, resolved, st->host_name, port,
                            &hints);
  if (rc) {
    rc__err(err, rc == UV_ENOMEM ? RC_ENOMEM : RC_EIO, st->shown, 0, 0,
            "cannot resolve the host of %s: %s", st->shown, uv_strerror(rc));
    st->closed = true;
    maybe_free(st);
    return NULL;
  }
  st->resolving = true;
  st->handles++;
  rc__host_handle_opened(host);  /* the engine waits for the lookup's callback */
  return st;
}

void rc__stream_close(rc__stream *st) {
  if (!st || st->closed) return;
  st->closed = true;
  if (st->resolving) uv_cancel((uv_req_t *)&st->gai);
  close_tcp(st);
  maybe_free(st);
}
