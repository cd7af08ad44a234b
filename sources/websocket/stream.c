/* SPDX-License-Identifier: MIT (see LICENSE) */
/* stream.c: a client byte stream, plain or TLS, on the engine's loop (see stream.h).
 * The socket is ours, watched by a uv_poll_t: a non-blocking connect, recv() when it is
 * readable, and send() with MSG_NOSIGNAL from an output queue when it is writable. Not a
 * uv_tcp_t: libuv writes with writev(), and a write to a peer that has gone raises
 * SIGPIPE, which kills a host process that did not ignore it (the engine is a library:
 * the signal's disposition is the application's, not ours to change).
 * TLS runs on two memory BIOs: what recv() gets goes into one and SSL_read takes the
 * plaintext out; what SSL_write and the handshake produce comes out of the other into
 * the output queue. OpenSSL allocates with malloc (its allocator hook is process-wide,
 * not ours to take), outside rc_set_allocator, like libcurl's TLS. */
#include "stream.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/err.h>
#include <openssl/x509v3.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#define STREAM_READ_BYTES (64u * 1024)
/* Reads per wakeup before the loop gets its turn back (a fast peer cannot starve it). */
#define STREAM_READS_PER_WAKEUP 16

/* The socket and its poll handle: allocated together, freed by the close callback,
 * which closes the descriptor once libuv no longer watches it. */
typedef struct stream_sock {
  uv_poll_t poll;
  int fd;
  rc__stream *st;
} stream_sock;

struct rc__stream {
  rc__host *host;
  rc__stream_callbacks cb;
  void *ud;
  char *host_name, *shown;
  SSL_CTX *tls_ctx;          /* a reference, or NULL for plain TCP */
  SSL *ssl;                  /* once TCP is up, with TLS */
  BIO *rbio, *wbio;          /* owned by ssl */
  bool handshaking;
  uv_getaddrinfo_t gai;      /* the lookup; its callback runs even when cancelled */
  bool resolving;
  struct addrinfo *addrs, *next;  /* addresses found, the next one to try */
  stream_sock *sock;         /* the current attempt or connection */
  bool connecting;           /* waiting for the connect to finish */
  int handles;               /* poll handles not closed yet, plus the lookup */
  bool closed, failed;
  rc__buf out;               /* bytes to send; out.p + out_off onwards */
  size_t out_off;
  int events;                /* what the poll handle watches */
  rc_error attempt_err;      /* why the last address failed */
  char rbuf[STREAM_READ_BYTES];
};

static void maybe_free(rc__stream *st) {
  if (!st->closed || st->handles) return;
  SSL_free(st->ssl);
  SSL_CTX_free(st->tls_ctx);
  if (st->addrs) uv_freeaddrinfo(st->addrs);
  if (st->out.p) explicit_bzero(st->out.p, st->out.n);  /* requests carry credentials */
  rc__buf_free(&st->out);
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

static void sock_closed(uv_handle_t *h) {
  stream_sock *k = h->data;
  rc__stream *st = k->st;
  close(k->fd);
  rc__free(k);
  rc__host_handle_closed(st->host);
  st->handles--;
  maybe_free(st);
}

static void close_sock(rc__stream *st) {
  stream_sock *k = st->sock;
  if (!k) return;
  st->sock = NULL;
  st->connecting = false;
  uv_poll_stop(&k->poll);
  uv_close((uv_handle_t *)&k->poll, sock_closed);
}

static void on_poll(uv_poll_t *h, int status, int events);

/* Watches for reading, and for writing while output waits. */
static void watch(rc__stream *st) {
  if (!st->sock) return;
  int ev = st->connecting ? UV_WRITABLE
                          : UV_READABLE | (st->out.n > st->out_off ? UV_WRITABLE : 0);
  if (ev == st->events) return;
  st->events = ev;
  uv_poll_start(&st->sock->poll, ev, on_poll);
}

/* ===================================================================================
 * Writing
 * =================================================================================== */

/* Sends what the output queue holds, as far as the socket takes it now. 0, or the
 * errno-based failure in words (`*why`). */
static int flush_out(rc__stream *st, const char **why) {
  while (st->sock && !st->connecting && st->out_off < st->out.n) {
    ssize_t n = send(st->sock->fd, st->out.p + st->out_off, st->out.n - st->out_off,
                     MSG_NOSIGNAL | MSG_DONTWAIT);
    if (n < 0) {
      if (errno == EINTR) continue;
      if (errno == EAGAIN || errno == EWOULDBLOCK) break;
      *why = strerror(errno);
      return RC_EIO;
    }
    st->out_off += (size_t)n;
  }
  if (st->out_off == st->out.n) {
    if (st->out.p) explicit_bzero(st->out.p, st->out.n);
    rc__buf_reset(&st->out);
    st->out_off = 0;
  } else if (st->out_off > st->out.n / 2) {
    /* Keep the queue from only growing while a slow peer takes part of it. */
    memmove(st->out.p, st->out.p + st->out_off, st->out.n - st->out_off);
    st->out.n -= st->out_off;
    st->out_off = 0;
  }
  watch(st);
  return 0;
}

/* Queues bytes; with `from_bio`, `n` bytes read out of the TLS write BIO. */
static int queue_out(rc__stream *st, const void *p, size_t n, bool from_bio) {
  if (rc__buf_reserve(&st->out, n) != 0) return RC_ENOMEM;
  if (from_bio) {
    if (BIO_read(st->wbio, st->out.p + st->out.n, (int)n) != (int)n) return RC_EIO;
  } else {
    memcpy(st->out.p + st->out.n, p, n);
  }
  st->out.n += n;
  st->out.p[st->out.n] = '\0';
  return 0;
}

/* Moves whatever TLS produced (handshake records, encrypted data, alerts) to the queue. */
static int tls_drain(rc__stream *st) {
  size_t n;
  while ((n = BIO_ctrl_pending(st->wbio)) > 0) {
    int rc = queue_out(st, NULL, n, true);
    if (rc) return rc;
  }
  return 0;
}

int rc__stream_write(rc__stream *st, const void *p, size_t n) {
  if (st->closed || st->failed || !st->sock || st->connecting) return RC_EIO;
  int rc;
  if (!st->ssl) {
    rc = queue_out(st, p, n, false);
  } else {
    if (st->handshaking) return RC_EIO;
    ERR_clear_error();
    /* A memory BIO takes everything: SSL_write writes all of it or fails. */
    rc = n && SSL_write(st->ssl, p, (int)n) != (int)n ? RC_EIO : tls_drain(st);
  }
  const char *why = NULL;
  return rc ? rc : flush_out(st, &why);
}

size_t rc__stream_queued(const rc__stream *st) { return st->out.n - st->out_off; }

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

/* Queues what TLS wrote and sends it; false (reported) when that failed. */
static bool tls_send(rc__stream *st) {
  const char *why = "out of memory";
  if (tls_drain(st) == 0 && flush_out(st, &why) == 0) return true;
  failf(st, "the connection to %s failed while writing: %s", why);
  return false;
}

/* Handshakes, then hands over every plaintext byte TLS can decrypt from what arrived. */
static void tls_pump(rc__stream *st) {
  if (st->handshaking) {
    ERR_clear_error();
    int r = SSL_do_handshake(st->ssl);
    int e = r == 1 ? SSL_ERROR_NONE : SSL_get_error(st->ssl, r);
    if (!tls_send(st)) return;
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
    if (!tls_send(st)) return;
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
 * Connecting and reading
 * =================================================================================== */

static void try_next(rc__stream *st);

/* The connect finished: on to TLS, or to the owner. */
static void connected(rc__stream *st) {
  st->connecting = false;
  uv_freeaddrinfo(st->addrs);
  st->addrs = st->next = NULL;
  watch(st);
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

/* Reads what the socket holds; hands it on (decrypted, with TLS). */
static void read_ready(rc__stream *st) {
  for (int i = 0; i < STREAM_READS_PER_WAKEUP && st->sock; i++) {
    ssize_t n = recv(st->sock->fd, st->rbuf, sizeof st->rbuf, MSG_DONTWAIT);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) return;
    if (n < 0) {
      failf(st, "the connection to %s was lost: %s", strerror(errno));
      return;
    }
    if (n == 0) {
      failf(st, "%s closed the connection%s", "");
      return;
    }
    if (!st->ssl) {
      st->cb.data(st->ud, st->rbuf, (size_t)n);
    } else if (BIO_write(st->rbio, st->rbuf, (int)n) != (int)n) {
      failf(st, "TLS on %s: %s", "out of memory");
      return;
    } else {
      tls_pump(st);
    }
    if (st->closed || st->failed) return;
  }
}

static void on_poll(uv_poll_t *h, int status, int events) {
  stream_sock *k = h->data;
  rc__stream *st = k->st;
  if (st->closed || st->failed || k != st->sock) return;
  /* On POLLERR libuv stops the handle and says UV_EBADF: the socket's own error (a
   * refused connect, a reset) is read from it, and watching starts again if it lives. */
  if (status < 0) st->events = 0;
  if (st->connecting) {
    int soerr = 0;
    socklen_t len = sizeof soerr;
    if (getsockopt(k->fd, SOL_SOCKET, SO_ERROR, &soerr, &len) != 0) soerr = errno;
    if (soerr || status < 0) {
      rc__err(&st->attempt_err, RC_EIO, st->shown, 0, 0, "cannot connect to %s: %s",
              st->shown, soerr ? strerror(soerr) : uv_strerror(status));
      close_sock(st);
      try_next(st);
      return;
    }
    if (events & UV_WRITABLE) connected(st);
    return;
  }
  if (status < 0) events = UV_READABLE;  /* recv() says what went wrong */
  if (events & UV_WRITABLE) {
    const char *why = NULL;
    if (flush_out(st, &why) != 0) {
      failf(st, "the connection to %s failed while writing: %s", why);
      return;
    }
  }
  if (events & (UV_READABLE | UV_DISCONNECT)) read_ready(st);
  if (!st->closed && !st->failed) watch(st);
}

/* A socket set up as a client's: non-blocking, no delay, keepalive. -1 with errno. */
static int client_socket(const struct addrinfo *a) {
  int fd = socket(a->ai_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) return -1;
  int on = 1;
  setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &on, sizeof on);
  rc__tcp_dead_peer(fd);
  return fd;
}

/* Connects to the next address found, or reports why the last one failed. */
static void try_next(rc__stream *st) {
  while (st->next) {
    struct addrinfo *a = st->next;
    st->next = a->ai_next;
    int fd = client_socket(a);
    if (fd < 0) {
      rc__err(&st->attempt_err, RC_EIO, st->shown, 0, 0, "cannot connect to %s: %s",
              st->shown, strerror(errno));
      continue;
    }
    int r;
    do r = connect(fd, a->ai_addr, a->ai_addrlen);
    while (r != 0 && errno == EINTR);
    if (r != 0 && errno != EINPROGRESS) {
      rc__err(&st->attempt_err, RC_EIO, st->shown, 0, 0, "cannot connect to %s: %s",
              st->shown, strerror(errno));
      close(fd);
      continue;
    }
    stream_sock *k = rc__calloc(1, sizeof *k);
    if (!k || uv_poll_init_socket(rc__host_loop(st->host), &k->poll, fd) != 0) {
      rc__free(k);
      close(fd);
      rc__err(&st->attempt_err, RC_ENOMEM, st->shown, 0, 0, "cannot watch a socket for %s",
              st->shown);
      break;
    }
    k->poll.data = k;
    k->fd = fd;
    k->st = st;
    st->sock = k;
    st->handles++;
    rc__host_handle_opened(st->host);
    /* Connected at once (rare, loopback) or not: writability tells, on the loop. */
    st->connecting = true;
    st->events = 0;
    watch(st);
    return;
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
  rc__buf_init(&st->out);
  st->host = host;
  st->cb = *cb;
  st->ud = ud;
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
  close_sock(st);
  maybe_free(st);
}
