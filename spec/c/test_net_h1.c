/* SPDX-License-Identifier: MIT (see LICENSE) */
/* test_net_h1.c: the own HTTP/1.1 client of core/net (h1.c), which net.c gives plain-http
 * polls (GET, opts.queue, buffered), against a small hostile server of the test's own on
 * a thread: bodies by Content-Length, chunked and until close, keep-alive and the server
 * closing kept-alive connections, truncated, garbage, oversized and silent answers,
 * refused connections, redirects, cancelling and closing; and the routing itself
 * (RC_HTTP_CLIENT=curl, non-poll requests). Every callback is counted; each test ends
 * with its loop closed (uv_loop_close is 0). */
#include "check.h"
#include "failalloc.h"
#include "net.h"
#include "net_fixture.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <unistd.h>
#include <uv.h>

#define TOKEN "s3cr3t-t0ken-value"

/* ===================================================================================
 * The server: one thread, poll() over the listener and its connections. What it answers
 * depends on the request's path.
 * =================================================================================== */

#define MAX_CONNS 100

typedef struct sconn {
  int fd;
  char buf[16384];
  size_t n;
  int served;  /* requests answered on it */
} sconn;

static struct {
  int lfd, port, wake[2];
  pthread_t th;
  sconn conns[MAX_CONNS];
  atomic_int accepted;      /* connections accepted */
  atomic_int requests;      /* requests seen */
  pthread_mutex_t mu;
  char last[4096];          /* the last request's bytes */
} srv;

static void send_all(int fd, const char *p, size_t n) {
  while (n) {
    ssize_t w = send(fd, p, n, MSG_NOSIGNAL);
    if (w <= 0) return;
    p += w;
    n -= (size_t)w;
  }
}

static void sconn_close(sconn *c) {
  close(c->fd);
  c->fd = -1;
  c->n = 0;
  c->served = 0;
}

/* Answers one request (its head is c->buf[0..len)). Returns false when the connection
 * is to be closed now. */
static bool answer(sconn *c, size_t len) {
  char path[256] = "";
  sscanf(c->buf, "GET %255s", path);
  path[strcspn(path, "?")] = '\0';
  pthread_mutex_lock(&srv.mu);
  snprintf(srv.last, sizeof srv.last, "%.*s", (int)len, c->buf);
  pthread_mutex_unlock(&srv.mu);
  srv.requests++;
  int fd = c->fd;
  c->served++;
#define SEND(s) send_all(fd, s, strlen(s))
  if (!strcmp(path, "/cl")) {
    SEND("HTTP/1.1 200 OK\r\nContent-Length: 5\r\nETag: \"e1\"\r\n"
         "Last-Modified: Mon, 01 Jan 2024 00:00:00 GMT\r\nContent-Type: text/plain\r\n"
         "Retry-After: 7\r\nX-Split: a b  \r\n\r\nhello");
  } else if (!strcmp(path, "/chunked")) {
    SEND("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nhel\r\n");
    usleep(10000);
    SEND("2\r\nlo\r\n0\r\n\r\n");
  } else if (!strcmp(path, "/close")) {
    SEND("HTTP/1.1 200 OK\r\nConnection: close\r\n\r\nuntil ");
    usleep(10000);
    SEND("close");
    return false;
  } else if (!strcmp(path, "/flaky")) {
    /* Like a server whose keep-alive timeout ended just as the request came. */
    if (c->served > 1) return false;
    SEND("HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok");
  } else if (!strcmp(path, "/midbody")) {
    SEND("HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nshort");
    return false;
  } else if (!strcmp(path, "/garbage")) {
    SEND("SSH-2.0-OpenSSH_9.2\r\n\xff\xfe\x00garbage\r\n\r\n");
  } else if (!strcmp(path, "/nothing")) {
    return false;
  } else if (!strcmp(path, "/big")) {
    SEND("HTTP/1.1 200 OK\r\nContent-Length: 1000000\r\n\r\n");
    static char chunk[4096];
    memset(chunk, 'x', sizeof chunk);
    send_all(fd, chunk, sizeof chunk);
  } else if (!strcmp(path, "/bigchunked")) {
    SEND("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n");
    static char chunk[256 + 8];
    memcpy(chunk, "100\r\n", 5);  /* 256 bytes a chunk */
    memset(chunk + 5, 'z', 256);
    memcpy(chunk + 261, "\r\n", 2);
    for (int i = 0; i < 8; i++) send_all(fd, chunk, 263);
  } else if (!strcmp(path, "/hugeheaders")) {
    SEND("HTTP/1.1 200 OK\r\n");
    static char line[4200];
    for (int i = 0; i < 20; i++) {
      int k = snprintf(line, sizeof line, "X-Big-%d: ", i);
      memset(line + k, 'y', 3500);
      memcpy(line + k + 3500, "\r\n", 3);
      SEND(line);
    }
    SEND("Content-Length: 0\r\n\r\n");
  } else if (!strcmp(path, "/interim")) {
    SEND("HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 103 Early Hints\r\nLink: </a>\r\n\r\n"
         "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok");
  } else if (!strcmp(path, "/redirect")) {
    SEND("HTTP/1.1 302 Found\r\nLocation: /cl\r\nContent-Length: 3\r\n\r\nxyz");
  } else if (!strcmp(path, "/elsewhere")) {
    char a[256];
    snprintf(a, sizeof a, "HTTP/1.1 307 Moved\r\nLocation: http://localhost:%d/cl\r\n"
             "Content-Length: 0\r\n\r\n", srv.port);
    SEND(a);
  } else if (!strcmp(path, "/tls")) {
    /* to an https:// port where nobody listens: curl takes the request over */
    SEND("HTTP/1.1 301 Moved\r\nLocation: https://127.0.0.1:1/x\r\n"
         "Content-Length: 0\r\n\r\n");
  } else if (!strcmp(path, "/loop")) {
    SEND("HTTP/1.1 301 Moved\r\nLocation: /loop\r\nContent-Length: 0\r\n\r\n");
  } else if (!strcmp(path, "/tagged")) {
    SEND("HTTP/1.1 302 Found\r\nETag: \"r\"\r\nContent-Type: x/redirect\r\n"
         "Location: /dup\r\nContent-Length: 0\r\n\r\n");
  } else if (!strcmp(path, "/dup")) {
    SEND("HTTP/1.1 200 OK\r\netag: \"first\"\r\nETag: \"second\"\r\n"
         "Content-Length: 2\r\n\r\nok");
  } else if (!strcmp(path, "/notmod")) {
    SEND("HTTP/1.1 304 Not Modified\r\nETag: \"e1\"\r\nContent-Length: 5000000\r\n\r\n");
  } else if (!strcmp(path, "/hang")) {
    /* read, never answer */
  } else {
    SEND("HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n");
  }
#undef SEND
  return true;
}

static void *server_main(void *arg) {
  (void)arg;
  for (;;) {
    struct pollfd p[MAX_CONNS + 2];
    int idx[MAX_CONNS + 2];
    int n = 0;
    p[n++] = (struct pollfd){.fd = srv.wake[0], .events = POLLIN};
    p[n++] = (struct pollfd){.fd = srv.lfd, .events = POLLIN};
    for (int i = 0; i < MAX_CONNS; i++)
      if (srv.conns[i].fd >= 0) {
        idx[n] = i;
        p[n++] = (struct pollfd){.fd = srv.conns[i].fd, .events = POLLIN};
      }
    if (poll(p, (nfds_t)n, -1) < 0) continue;
    if (p[0].revents) {
      char cmd = 0;
      if (read(srv.wake[0], &cmd, 1) != 1 || cmd == 'q') break;
      /* 'd': drop every connection, as a server ending its keep-alives; 'r': the same
       * with a reset (SO_LINGER 0), as a crashed or firewalled peer. */
      for (int i = 0; cmd == 'd' || cmd == 'r' ? i < MAX_CONNS : 0; i++)
        if (srv.conns[i].fd >= 0) {
          struct linger lg = {.l_onoff = 1, .l_linger = 0};
          if (cmd == 'r') setsockopt(srv.conns[i].fd, SOL_SOCKET, SO_LINGER, &lg, sizeof lg);
          sconn_close(&srv.conns[i]);
        }
      continue;
    }
    if (p[1].revents & POLLIN) {
      int fd = accept(srv.lfd, NULL, NULL);
      if (fd >= 0) {
        srv.accepted++;
        int i = 0;
        while (i < MAX_CONNS && srv.conns[i].fd >= 0) i++;
        if (i == MAX_CONNS) close(fd);
        else srv.conns[i] = (sconn){.fd = fd};
      }
    }
    for (int k = 2; k < n; k++) {
      if (!p[k].revents) continue;
      sconn *c = &srv.conns[idx[k]];
      if (c->fd < 0) continue;
      ssize_t r = recv(c->fd, c->buf + c->n, sizeof c->buf - 1 - c->n, 0);
      if (r <= 0) {
        sconn_close(c);
        continue;
      }
      c->n += (size_t)r;
      c->buf[c->n] = '\0';
      char *end;
      while (c->fd >= 0 && (end = strstr(c->buf, "\r\n\r\n"))) {
        size_t len = (size_t)(end + 4 - c->buf);
        bool keep = answer(c, len);
        if (!keep) {
          sconn_close(c);
          break;
        }
        memmove(c->buf, c->buf + len, c->n - len + 1);
        c->n -= len;
      }
    }
  }
  for (int i = 0; i < MAX_CONNS; i++)
    if (srv.conns[i].fd >= 0) sconn_close(&srv.conns[i]);
  return NULL;
}

static void server_start(void) {
  for (int i = 0; i < MAX_CONNS; i++) srv.conns[i].fd = -1;
  pthread_mutex_init(&srv.mu, NULL);
  srv.lfd = socket(AF_INET, SOCK_STREAM, 0);
  int one = 1;
  setsockopt(srv.lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = 0};
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof a;
  if (srv.lfd < 0 || bind(srv.lfd, (struct sockaddr *)&a, sizeof a) != 0 ||
      listen(srv.lfd, 128) != 0 || getsockname(srv.lfd, (struct sockaddr *)&a, &len) != 0 ||
      pipe(srv.wake) != 0) {
    perror("test server");
    exit(2);
  }
  srv.port = ntohs(a.sin_port);
  pthread_create(&srv.th, NULL, server_main, NULL);
}

/* Sends a command to the server thread and waits until it was carried out (the thread
 * handles commands before anything else in its turn). */
static void server_cmd(char cmd) {
  if (write(srv.wake[1], &cmd, 1) != 1) abort();
  for (int i = 0; i < 100; i++) {
    struct pollfd p = {.fd = srv.wake[0], .events = POLLIN};
    if (poll(&p, 1, 0) == 0) break;  /* taken */
    usleep(1000);
  }
  usleep(20000);
}

static void server_stop(void) {
  if (write(srv.wake[1], "q", 1) != 1) abort();
  pthread_join(srv.th, NULL);
  close(srv.lfd);
  close(srv.wake[0]);
  close(srv.wake[1]);
}

/* ===================================================================================
 * Client helpers
 * =================================================================================== */

typedef struct got {
  int done, code;
  long status, connects;
  char body[256];
  size_t body_len;
  char message[512], file[256];
  char etag[64], last_modified[64], content_type[64], retry_after[16], split[16];
  rc__net *net;
  bool close_in_done;
  rc__net_request *cancel_other;
} got;

static void copy(char *dst, size_t n, const char *src) {
  snprintf(dst, n, "%s", src ? src : "");
}

static void on_done(void *ud, rc__net_request *req, const rc__net_result *res) {
  got *g = ud;
  g->done++;
  g->code = res->code;
  g->status = res->status;
  g->connects = res->connects;
  g->body_len = res->body_len;
  copy(g->body, sizeof g->body, res->body);
  copy(g->message, sizeof g->message, res->err ? res->err->message : "");
  copy(g->file, sizeof g->file, res->err ? res->err->file : "");
  copy(g->etag, sizeof g->etag, res->etag);
  copy(g->last_modified, sizeof g->last_modified, res->last_modified);
  copy(g->content_type, sizeof g->content_type, res->content_type);
  copy(g->retry_after, sizeof g->retry_after, res->retry_after);
  copy(g->split, sizeof g->split, rc__net_header_value(req, "x-split"));
  rc__net_cancel(req);  /* from its own done callback: does nothing */
  if (g->cancel_other) rc__net_cancel(g->cancel_other);
  if (g->close_in_done) rc__net_close(g->net, NULL, NULL);
}

static rc__net_request *poll_url(rc__net *net, const char *url, got *g, uint32_t total_ms,
                                 size_t max_body, uint32_t redirects) {
  rc__net_header hs[] = {{"X-Token", TOKEN}, {"X-Empty", ""}};
  rc__net_req_opts o = {.url = url, .headers = hs, .nheaders = 2, .total_ms = total_ms,
                        .max_body = max_body, .max_redirects = redirects, .queue = true,
                        .http_version = RC__NET_HTTP_1_1};
  rc__net_callbacks cb = {.done = on_done};
  rc_error err = {0};
  g->net = net;
  rc__net_request *r = rc__net_start(net, &o, &cb, g, &err);
  if (!r && err.code != RC_ENOMEM)
    fprintf(stderr, "rc__net_start(%s): %s\n", url, err.message);
  return r;
}

/* Runs the loop until *count >= want, nothing is left, or a safety limit passed. */
static void run_until(uv_loop_t *loop, const int *count, int want) {
  nf_run_until(loop, count, want, 20000);
}

static void finish(uv_loop_t *loop, rc__net *net) {
  nf_close_net(loop, net);
  CHECK_EQ_INT(uv_loop_close(loop), 0);
}

static rc__net *new_net(uv_loop_t *loop) {
  uv_loop_init(loop);
  return nf_new_net(loop);
}

static char *u(const char *path) {
  static char bufs[8][256];
  static int i;
  char *b = bufs[i++ % 8];
  snprintf(b, 256, "http://127.0.0.1:%d%s", srv.port, path);
  return b;
}

/* One poll of `path` on a fresh context; `g` gets the result. */
static void one(const char *path, got *g, uint32_t total_ms, size_t max_body) {
  uv_loop_t loop;
  rc__net *net = new_net(&loop);
  memset(g, 0, sizeof *g);
  CHECK(poll_url(net, u(path), g, total_ms, max_body, 0) != NULL);
  run_until(&loop, &g->done, 1);
  CHECK_EQ_INT(g->done, 1);
  CHECK_EQ_INT(rc__net_h1_requests(net), 1);
  finish(&loop, net);
}

/* ===================================================================================
 * Tests
 * =================================================================================== */

static void test_bodies(void) {
  got g;
  one("/cl", &g, 5000, 0);
  CHECK_EQ_INT(g.code, 0);
  CHECK_EQ_INT(g.status, 200);
  CHECK_EQ_STR(g.body, "hello");
  CHECK_EQ_INT(g.body_len, 5);
  CHECK_EQ_STR(g.etag, "\"e1\"");
  CHECK_EQ_STR(g.last_modified, "Mon, 01 Jan 2024 00:00:00 GMT");
  CHECK_EQ_STR(g.content_type, "text/plain");
  CHECK_EQ_STR(g.retry_after, "7");
  CHECK_EQ_STR(g.split, "a b");
  CHECK_EQ_INT(g.connects, 1);
  /* The request went out as one would expect, with the caller's headers. */
  pthread_mutex_lock(&srv.mu);
  char want[128];
  snprintf(want, sizeof want, "GET /cl HTTP/1.1\r\nHost: 127.0.0.1:%d\r\n", srv.port);
  CHECK(strncmp(srv.last, want, strlen(want)) == 0);
  CHECK(strstr(srv.last, "\r\nUser-Agent: reactcfg/") != NULL);
  CHECK(strstr(srv.last, "\r\nAccept: */*\r\n") != NULL);
  CHECK(strstr(srv.last, "\r\nX-Token: " TOKEN "\r\n") != NULL);
  CHECK(strstr(srv.last, "\r\nX-Empty:\r\n") != NULL);
  pthread_mutex_unlock(&srv.mu);

  one("/chunked", &g, 5000, 0);
  CHECK_EQ_INT(g.code, 0);
  CHECK_EQ_STR(g.body, "hello");
  one("/close", &g, 5000, 0);
  CHECK_EQ_INT(g.code, 0);
  CHECK_EQ_STR(g.body, "until close");
  one("/interim", &g, 5000, 0);
  CHECK_EQ_INT(g.code, 0);
  CHECK_EQ_INT(g.status, 200);
  CHECK_EQ_STR(g.body, "ok");
  /* A 304 may announce a length it does not send, over max_body too. */
  one("/notmod", &g, 5000, 100);
  CHECK_EQ_INT(g.code, 0);
  CHECK_EQ_INT(g.status, 304);
  CHECK_EQ_STR(g.etag, "\"e1\"");
  one("/missing", &g, 5000, 0);
  CHECK_EQ_INT(g.code, 0);
  CHECK_EQ_INT(g.status, 404);
}

static void test_keepalive(void) {
  uv_loop_t loop;
  rc__net *net = new_net(&loop);
  int before = srv.accepted;
  got a = {0}, b = {0}, c = {0};
  poll_url(net, u("/cl"), &a, 5000, 0, 0);
  run_until(&loop, &a.done, 1);
  poll_url(net, u("/chunked"), &b, 5000, 0, 0);
  run_until(&loop, &b.done, 1);
  CHECK_EQ_INT(a.code, 0);
  CHECK_EQ_INT(a.connects, 1);
  CHECK_EQ_INT(b.code, 0);
  CHECK_EQ_STR(b.body, "hello");
  CHECK_EQ_INT(b.connects, 0);
  CHECK_EQ_INT(srv.accepted - before, 1);

  /* The server ends the idle connection: seen while idle, the next poll opens one. */
  server_cmd('d');
  /* The loop sees the end once and the connection goes; one still read after its end
   * would make the loop turn without end (thousands of turns here, not a handful). */
  CHECK(nf_turns_for(&loop, 100) <= 20);
  poll_url(net, u("/cl"), &c, 5000, 0, 0);
  run_until(&loop, &c.done, 1);
  CHECK_EQ_INT(c.code, 0);
  CHECK_EQ_STR(c.body, "hello");
  CHECK_EQ_INT(c.connects, 1);
  CHECK_EQ_INT(srv.accepted - before, 2);
  CHECK_EQ_INT(rc__net_h1_requests(net), 3);
  finish(&loop, net);
}

/* The server closes a kept-alive connection just as the next request arrives: that
 * request is sent again once, on a new connection, and succeeds. */
static void test_retry_on_reused(void) {
  uv_loop_t loop;
  rc__net *net = new_net(&loop);
  int before = srv.accepted, seen = srv.requests;
  got a = {0}, b = {0};
  poll_url(net, u("/flaky"), &a, 5000, 0, 0);
  run_until(&loop, &a.done, 1);
  CHECK_EQ_INT(a.code, 0);
  CHECK_EQ_STR(a.body, "ok");
  poll_url(net, u("/flaky"), &b, 5000, 0, 0);
  run_until(&loop, &b.done, 1);
  CHECK_EQ_INT(b.done, 1);
  CHECK_EQ_INT(b.code, 0);
  CHECK_EQ_STR(b.body, "ok");
  CHECK_EQ_INT(b.connects, 1);
  CHECK_EQ_INT(srv.accepted - before, 2);
  CHECK_EQ_INT(srv.requests - seen, 3);

  /* The server resets the kept-alive connection and the next poll goes out before the
   * loop has seen it: the send fails, the poll is sent again on a new connection, and
   * no SIGPIPE reaches the process (its default disposition would end this test). */
  signal(SIGPIPE, SIG_DFL);
  got c = {0}, d = {0};
  poll_url(net, u("/cl"), &c, 5000, 0, 0);
  run_until(&loop, &c.done, 1);
  CHECK_EQ_INT(c.code, 0);
  server_cmd('r');
  poll_url(net, u("/cl"), &d, 5000, 0, 0);
  run_until(&loop, &d.done, 1);
  CHECK_EQ_INT(d.code, 0);
  CHECK_EQ_STR(d.body, "hello");
  CHECK_EQ_INT(d.connects, 1);
  signal(SIGPIPE, SIG_IGN);
  finish(&loop, net);
}

static void test_failures(void) {
  got g;
  one("/midbody", &g, 5000, 0);
  CHECK_EQ_INT(g.code, RC_EIO);
  CHECK(strncmp(g.message, "response ended early", 20) == 0);
  CHECK_EQ_STR(g.body, "");
  one("/garbage", &g, 5000, 0);
  CHECK_EQ_INT(g.code, RC_EIO);
  CHECK(strncmp(g.message, "invalid HTTP response", 21) == 0);
  one("/nothing", &g, 5000, 0);
  CHECK_EQ_INT(g.code, RC_EIO);
  CHECK_EQ_STR(g.message, "server closed the connection without answering");
  one("/big", &g, 5000, 1000);
  CHECK_EQ_INT(g.code, RC_ELIMIT);
  CHECK_EQ_STR(g.message, "body larger than 1000 bytes");
  one("/bigchunked", &g, 5000, 1000);
  CHECK_EQ_INT(g.code, RC_ELIMIT);
  CHECK_EQ_STR(g.message, "body larger than 1000 bytes");
  one("/hugeheaders", &g, 5000, 0);
  CHECK_EQ_INT(g.code, RC_ELIMIT);
  CHECK_EQ_STR(g.message, "response headers larger than 65536 bytes");
  one("/hang?token=" TOKEN, &g, 300, 0);
  CHECK_EQ_INT(g.code, RC_EIO);
  CHECK_EQ_STR(g.message, "timed out after 300 ms");
  char want[128];
  snprintf(want, sizeof want, "http://127.0.0.1:%d/hang", srv.port);
  CHECK_EQ_STR(g.file, want);  /* no query: it may hold secrets */

  /* Refused: a port nobody listens on. */
  int s = socket(AF_INET, SOCK_STREAM, 0);
  struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = 0};
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof a;
  bind(s, (struct sockaddr *)&a, sizeof a);
  getsockname(s, (struct sockaddr *)&a, &len);
  close(s);
  uv_loop_t loop;
  rc__net *net = new_net(&loop);
  char url[128];
  snprintf(url, sizeof url, "http://127.0.0.1:%d/x", ntohs(a.sin_port));
  memset(&g, 0, sizeof g);
  poll_url(net, url, &g, 5000, 0, 0);
  run_until(&loop, &g.done, 1);
  CHECK_EQ_INT(g.code, RC_EIO);
  CHECK_EQ_STR(g.message, "connection refused");
  CHECK_EQ_INT(g.status, 0);
  /* A name that does not resolve. */
  got h = {0};
  poll_url(net, "http://no-such-host.invalid/x", &h, 5000, 0, 0);
  run_until(&loop, &h.done, 1);
  CHECK_EQ_INT(h.code, RC_EIO);
  CHECK_EQ_STR(h.message, "cannot resolve host name \"no-such-host.invalid\"");
  CHECK_EQ_INT(rc__net_h1_requests(net), 2);
  finish(&loop, net);
}

static void test_names_and_redirects(void) {
  uv_loop_t loop;
  rc__net *net = new_net(&loop);
  got a = {0}, b = {0}, c = {0}, d = {0};
  char url[128];
  snprintf(url, sizeof url, "http://localhost:%d/cl", srv.port);
  poll_url(net, url, &a, 5000, 0, 0);
  run_until(&loop, &a.done, 1);
  CHECK_EQ_INT(a.code, 0);
  CHECK_EQ_STR(a.body, "hello");
  poll_url(net, u("/redirect"), &b, 5000, 0, 3);
  run_until(&loop, &b.done, 1);
  CHECK_EQ_INT(b.code, 0);
  CHECK_EQ_INT(b.status, 200);
  CHECK_EQ_STR(b.body, "hello");
  poll_url(net, u("/loop"), &c, 5000, 0, 2);
  run_until(&loop, &c.done, 1);
  CHECK_EQ_INT(c.code, RC_EIO);
  CHECK_EQ_STR(c.message, "more than 2 redirects");
  /* Not followed without max_redirects: the 3xx is the result. */
  poll_url(net, u("/redirect"), &d, 5000, 0, 0);
  run_until(&loop, &d.done, 1);
  CHECK_EQ_INT(d.code, 0);
  CHECK_EQ_INT(d.status, 302);
  CHECK_EQ_STR(d.body, "xyz");
  CHECK_EQ_INT(rc__net_h1_requests(net), 4);
  /* The result's headers are the final response's (none of the redirect's), the first
   * of a repeated one, matched whatever their case. */
  got t = {0};
  poll_url(net, u("/tagged"), &t, 5000, 0, 3);
  run_until(&loop, &t.done, 1);
  CHECK_EQ_INT(t.code, 0);
  CHECK_EQ_STR(t.body, "ok");
  CHECK_EQ_STR(t.etag, "\"first\"");
  CHECK_EQ_STR(t.content_type, "");

  /* To another origin: the caller's headers go along, but not Authorization or Cookie
   * (as curl does). */
  got e = {0}, f = {0};
  rc__net_header hs[] = {{"Authorization", "Bearer " TOKEN}, {"X-Other", "1"}};
  rc__net_req_opts o = {.url = u("/elsewhere"), .headers = hs, .nheaders = 2,
                        .total_ms = 5000, .max_redirects = 3, .queue = true};
  rc__net_callbacks cb = {.done = on_done};
  rc__net_start(net, &o, &cb, &e, NULL);
  run_until(&loop, &e.done, 1);
  CHECK_EQ_INT(e.code, 0);
  CHECK_EQ_STR(e.body, "hello");
  pthread_mutex_lock(&srv.mu);
  CHECK(strstr(srv.last, "GET /cl HTTP/1.1\r\n") == srv.last);
  CHECK(strstr(srv.last, "\r\nHost: localhost:") != NULL);
  CHECK(strstr(srv.last, "\r\nX-Other: 1\r\n") != NULL);
  CHECK(strstr(srv.last, TOKEN) == NULL);
  pthread_mutex_unlock(&srv.mu);
  /* To https://: curl goes on from there (here to a refused connection). */
  poll_url(net, u("/tls"), &f, 5000, 0, 3);
  run_until(&loop, &f.done, 1);
  CHECK_EQ_INT(f.done, 1);
  CHECK_EQ_INT(f.code, RC_EIO);
  CHECK_EQ_STR(f.message, "connection refused");
  CHECK_EQ_STR(f.file, "https://127.0.0.1:1/x");
  CHECK_EQ_INT(rc__net_h1_requests(net), 7);
  finish(&loop, net);
}

static void on_cancel_timer(uv_timer_t *t) {
  rc__net_cancel(t->data);
  uv_close((uv_handle_t *)t, NULL);
}

static void test_cancel_and_close(void) {
  uv_loop_t loop;
  rc__net *net = new_net(&loop);
  /* Cancelled in flight from a timer: no callback, nothing left behind. */
  got a = {0};
  rc__net_request *ra = poll_url(net, u("/hang"), &a, 0, 0, 0);
  uv_timer_t t;
  uv_timer_init(&loop, &t);
  t.data = ra;
  uv_timer_start(&t, on_cancel_timer, 50, 0);
  uv_run(&loop, UV_RUN_DEFAULT);
  CHECK_EQ_INT(a.done, 0);
  CHECK_EQ_INT(rc__net_active(net), 0);
  /* Cancelled right after start, and from another request's done callback. */
  got b = {0}, c = {0}, d = {0};
  rc__net_cancel(poll_url(net, u("/cl"), &b, 5000, 0, 0));
  rc__net_request *rd = poll_url(net, u("/hang"), &d, 0, 0, 0);
  c.cancel_other = rd;
  poll_url(net, u("/cl"), &c, 5000, 0, 0);
  run_until(&loop, &c.done, 1);
  uv_run(&loop, UV_RUN_DEFAULT);
  CHECK_EQ_INT(b.done, 0);
  CHECK_EQ_INT(c.done, 1);
  CHECK_EQ_INT(c.code, 0);
  CHECK_EQ_INT(d.done, 0);
  CHECK_EQ_INT(rc__net_active(net), 0);
  /* Closed with requests in flight: each gets its one "cancelled" callback. */
  static got gs[5];
  memset(gs, 0, sizeof gs);
  for (int i = 0; i < 5; i++) poll_url(net, u("/hang"), &gs[i], 0, 0, 0);
  CHECK_EQ_INT(rc__net_active(net), 5);
  CHECK_EQ_INT(rc__net_in_flight(net), 5);
  uv_run(&loop, UV_RUN_NOWAIT);
  int before = nf_closed_count;
  rc__net_close(net, nf_on_closed, NULL);
  uv_run(&loop, UV_RUN_DEFAULT);
  CHECK_EQ_INT(nf_closed_count, before + 1);
  for (int i = 0; i < 5; i++) {
    CHECK_EQ_INT(gs[i].done, 1);
    CHECK_EQ_INT(gs[i].code, RC_ESTATE);
    CHECK_EQ_STR(gs[i].message, "cancelled: network closed");
  }
  CHECK_EQ_INT(uv_loop_close(&loop), 0);

  /* Closed from a done callback while another request hangs. */
  net = new_net(&loop);
  got e = {0}, f = {0};
  poll_url(net, u("/hang"), &f, 0, 0, 0);
  e.close_in_done = true;
  poll_url(net, u("/cl"), &e, 5000, 0, 0);
  uv_run(&loop, UV_RUN_DEFAULT);
  CHECK_EQ_INT(e.done, 1);
  CHECK_EQ_INT(e.code, 0);
  CHECK_EQ_INT(f.done, 1);
  CHECK_EQ_INT(f.code, RC_ESTATE);
  CHECK_EQ_INT(uv_loop_close(&loop), 0);
}

/* Which requests the own client takes. */
static void test_routing(void) {
  uv_loop_t loop;
  rc__net *net = new_net(&loop);
  rc__net_callbacks cb = {.done = on_done};
  got a = {0}, b = {0};
  /* Not a poll (no opts.queue): curl. */
  rc__net_req_opts o = {.url = u("/cl"), .total_ms = 5000};
  rc__net_start(net, &o, &cb, &a, NULL);
  run_until(&loop, &a.done, 1);
  CHECK_EQ_INT(a.code, 0);
  CHECK_EQ_STR(a.body, "hello");
  /* User info in the URL: curl. */
  char url[128];
  snprintf(url, sizeof url, "http://user:pw@127.0.0.1:%d/cl", srv.port);
  o = (rc__net_req_opts){.url = url, .total_ms = 5000, .queue = true};
  rc__net_start(net, &o, &cb, &b, NULL);
  run_until(&loop, &b.done, 1);
  CHECK_EQ_INT(b.code, 0);
  CHECK_EQ_INT(rc__net_h1_requests(net), 0);
  finish(&loop, net);

  /* RC_HTTP_CLIENT=curl: every request through curl, with the same result. */
  setenv("RC_HTTP_CLIENT", "curl", 1);
  net = new_net(&loop);
  got c = {0};
  poll_url(net, u("/cl"), &c, 5000, 0, 0);
  run_until(&loop, &c.done, 1);
  CHECK_EQ_INT(c.code, 0);
  CHECK_EQ_STR(c.body, "hello");
  CHECK_EQ_INT(rc__net_h1_requests(net), 0);
  finish(&loop, net);
  unsetenv("RC_HTTP_CLIENT");
  /* A proxy in the environment: curl too. */
  setenv("http_proxy", "http://127.0.0.1:9", 1);
  net = new_net(&loop);
  CHECK_EQ_INT(rc__net_h1_requests(net), 0);
  got d = {0};
  poll_url(net, u("/cl"), &d, 5000, 0, 0);
  run_until(&loop, &d.done, 1);
  CHECK_EQ_INT(d.done, 1);
  CHECK_EQ_INT(rc__net_h1_requests(net), 0);
  finish(&loop, net);
  unsetenv("http_proxy");
}

/* Many polls at once to one origin: the turns (RC__NET_MAX_QUEUED_ACTIVE) and the cap on
 * connections (RC__NET_MAX_HOST_CONNECTIONS) hold. */
#define MANY 300
static void test_many(void) {
  uv_loop_t loop;
  rc__net *net = new_net(&loop);
  static got gs[MANY];
  memset(gs, 0, sizeof gs);
  static int done_all;
  int before = srv.accepted;
  /* By name: they all wait for one lookup, then for connections under the cap. */
  char url[128];
  snprintf(url, sizeof url, "http://localhost:%d/cl", srv.port);
  for (int i = 0; i < MANY; i++) poll_url(net, url, &gs[i], 10000, 0, 0);
  CHECK_EQ_INT(rc__net_active(net), MANY);
  CHECK(rc__net_in_flight(net) <= RC__NET_MAX_QUEUED_ACTIVE);
  done_all = 0;
  for (;;) {
    done_all = 0;
    for (int i = 0; i < MANY; i++) done_all += gs[i].done;
    if (done_all == MANY || !uv_run(&loop, UV_RUN_ONCE)) break;
  }
  int ok = 0;
  for (int i = 0; i < MANY; i++) ok += gs[i].done == 1 && gs[i].code == 0;
  CHECK_EQ_INT(ok, MANY);
  CHECK(srv.accepted - before <= RC__NET_MAX_HOST_CONNECTIONS);
  CHECK_EQ_INT(rc__net_h1_requests(net), MANY);
  finish(&loop, net);
}

/* The Nth allocation fails, for every N until a whole run succeeds: a redirected poll,
 * then one on the kept-alive connection. Each ends once, as a success or RC_ENOMEM, and
 * nothing leaks. */
static void test_alloc_failures(void) {
  bool succeeded = false;
  for (long n = 0; n < 400 && !succeeded; n++) {
    uv_loop_t loop;
    uv_loop_init(&loop);
    fa_live = 0;
    fa_install(n);
    rc_error err = {0};
    rc__net *net = rc__net_new(&loop, &err);
    if (!net) {
      CHECK_EQ_INT(err.code, RC_ENOMEM);
    } else {
      got a = {0}, b = {0};
      bool ok = false;
      if (poll_url(net, u("/redirect"), &a, 5000, 0, 3)) {
        run_until(&loop, &a.done, 1);
        CHECK_EQ_INT(a.done, 1);
        CHECK(a.code == 0 || a.code == RC_ENOMEM);
        if (a.code == 0) CHECK_EQ_STR(a.body, "hello");
        if (a.code == 0 && poll_url(net, u("/cl"), &b, 5000, 0, 0)) {
          run_until(&loop, &b.done, 1);
          CHECK_EQ_INT(b.done, 1);
          CHECK(b.code == 0 || b.code == RC_ENOMEM);
          ok = b.code == 0 && b.status == 200 && fa_failures == 0;
        }
      }
      rc__net_close(net, NULL, NULL);
      uv_run(&loop, UV_RUN_DEFAULT);
      succeeded = ok;
    }
    fa_uninstall();
    fa_failures = 0;
    CHECK_EQ_INT(fa_live, 0);
    CHECK_EQ_INT(uv_loop_close(&loop), 0);
  }
  CHECK(succeeded);
}

int main(void) {
  signal(SIGPIPE, SIG_IGN);
  const char *proxies[] = {"http_proxy", "HTTP_PROXY", "https_proxy", "HTTPS_PROXY",
                           "all_proxy", "ALL_PROXY", "RC_HTTP_CLIENT"};
  for (size_t i = 0; i < sizeof proxies / sizeof *proxies; i++) unsetenv(proxies[i]);
  server_start();
  test_bodies();
  test_keepalive();
  test_retry_on_reused();
  test_failures();
  test_names_and_redirects();
  test_cancel_and_close();
  test_routing();
  test_many();
  test_alloc_failures();
  server_stop();
  return check_report("test_net_h1");
}
