/* SPDX-License-Identifier: MIT (see LICENSE) */
/* test_net.c: the network core (core/net/net.c) against a real nginx and against sockets the
 * test opens itself: plain GETs with validators, conditional GETs, methods and headers,
 * many requests on one loop, keep-alive (also when the server ends an idle connection),
 * refused and hanging servers, body limits, streaming, cancelling, closing with transfers
 * in flight, TLS, and allocation failures.
 * Every callback is counted; each test ends with its loop closed (uv_loop_close is 0). */
#include "check.h"
#include "failalloc.h"
#include "net.h"
#include "net_fixture.h"
#include "nginx_fixture.h"

#include <stdlib.h>
#include <uv.h>

static nginx_fixture ngx;
static char base[128];      /* http://127.0.0.1:PORT */
static char tls_base[128];  /* https://127.0.0.1:TLS_PORT, or "" */

#define TOKEN "s3cr3t-t0ken-value"

/* ===================================================================================
 * Helpers
 * =================================================================================== */

/* What the callbacks of one request saw. */
typedef struct got {
  int done;               /* done callbacks */
  int code;
  long status;
  char *body;             /* copy of the body (malloc) */
  size_t body_len;
  char etag[128], last_modified[128], content_type[128];
  char retry_after[32], consul_index[32];
  char content_length[32];  /* via rc__net_header_value, mixed case */
  char message[512];
  long connects;
  int chunks;             /* data callbacks */
  size_t streamed;        /* bytes through the data callback */
  long stream_status;     /* rc__net_status seen in the first data callback */
  char stream_type[64];   /* Content-Type seen in the first data callback */
  /* actions */
  bool cancel_in_data;    /* cancel this request from its first data callback */
  rc__net_request *cancel_other;  /* cancel this one from our done callback */
  bool start_in_data;     /* start `next` from the first data callback */
  bool close_in_done;     /* close the net from our done callback */
  bool close_in_data;     /* close the net from our first data callback */
  rc__net *net;
  struct got *next;       /* a request to start from our done (or data) callback */
  char next_url[256];
  int start_fail_code;    /* code of an rc__net_start that failed from a callback */
  rc__net_request *self;
} got;

static void copy(char *dst, size_t n, const char *src) {
  snprintf(dst, n, "%s", src ? src : "");
}

static void got_free(got *g) {
  free(g->body);
  g->body = NULL;
}

static void on_done(void *ud, rc__net_request *req, const rc__net_result *res);
static void on_data(void *ud, rc__net_request *req, const char *data, size_t n);

static rc__net_request *start(rc__net *net, const rc__net_req_opts *o, got *g,
                              bool stream, rc_error *err) {
  rc__net_callbacks cb = {.done = on_done, .data = stream ? on_data : NULL};
  g->net = net;
  g->self = rc__net_start(net, o, &cb, g, err);
  return g->self;
}

static rc__net_request *get(rc__net *net, const char *url, got *g) {
  rc__net_req_opts o = {.url = url, .total_ms = 10000};
  rc_error err = {0};
  rc__net_request *r = start(net, &o, g, false, &err);
  if (!r) fprintf(stderr, "rc__net_start(%s): %s\n", url, err.message);
  return r;
}

static void start_next(got *g) {
  got *n = g->next;
  g->next = NULL;
  rc__net_req_opts o = {.url = g->next_url, .total_ms = 10000};
  rc_error err = {0};
  if (!start(g->net, &o, n, false, &err)) g->start_fail_code = err.code;
}

static void on_done(void *ud, rc__net_request *req, const rc__net_result *res) {
  got *g = ud;
  g->done++;
  g->code = res->code;
  g->status = res->status;
  free(g->body);
  g->body = malloc(res->body_len + 1);
  memcpy(g->body, res->body, res->body_len + 1);
  g->body_len = res->body_len;
  copy(g->etag, sizeof g->etag, res->etag);
  copy(g->last_modified, sizeof g->last_modified, res->last_modified);
  copy(g->content_type, sizeof g->content_type, res->content_type);
  copy(g->retry_after, sizeof g->retry_after, res->retry_after);
  copy(g->consul_index, sizeof g->consul_index, rc__net_header_value(req, "X-Consul-Index"));
  copy(g->content_length, sizeof g->content_length,
       rc__net_header_value(req, "cOnTeNt-LeNgTh"));
  copy(g->message, sizeof g->message, res->err ? res->err->message : "");
  g->connects = res->connects;
  rc__net_cancel(req);  /* from its own done callback: must do nothing */
  if (g->cancel_other) rc__net_cancel(g->cancel_other);
  if (g->next) start_next(g);
  if (g->close_in_done) rc__net_close(g->net, NULL, NULL);
}

static void on_data(void *ud, rc__net_request *req, const char *data, size_t n) {
  got *g = ud;
  (void)data;
  if (g->chunks++ == 0) {
    g->stream_status = rc__net_status(req);
    copy(g->stream_type, sizeof g->stream_type,
         rc__net_header_value(req, "content-type"));
    if (g->start_in_data && g->next) start_next(g);
    if (g->cancel_in_data) rc__net_cancel(req);
    if (g->close_in_data) rc__net_close(g->net, nf_on_closed, NULL);
  }
  g->streamed += n;
}

static void end_loop(uv_loop_t *loop) {
  uv_run(loop, UV_RUN_DEFAULT);
  CHECK_EQ_INT(uv_loop_close(loop), 0);
}

/* A socket listening on 127.0.0.1 that the test never accepts from: connections
 * complete (the kernel's backlog) and then nothing is ever said. */
static int hang_fd = -1, hang_port;
static void hang_open(void) {
  hang_fd = socket(AF_INET, SOCK_STREAM, 0);
  struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = 0};
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof a;
  if (hang_fd < 0 || bind(hang_fd, (struct sockaddr *)&a, sizeof a) != 0 ||
      listen(hang_fd, 512) != 0 ||
      getsockname(hang_fd, (struct sockaddr *)&a, &len) != 0) {
    perror("hang socket");
    exit(2);
  }
  hang_port = ntohs(a.sin_port);
}

static void url(char *out, size_t n, const char *b, const char *path) {
  snprintf(out, n, "%s%s", b, path);
}

/* ===================================================================================
 * Tests
 * =================================================================================== */

static void test_get_200(void) {
  uv_loop_t loop;
  uv_loop_init(&loop);
  rc__net *net = nf_new_net(&loop);
  char u[256];
  url(u, sizeof u, base, "/hello.txt");
  got g = {0};
  CHECK(get(net, u, &g) != NULL);
  CHECK_EQ_INT(g.done, 0);  /* never called before rc__net_start returns */
  CHECK_EQ_INT(rc__net_active(net), 1);
  nf_run_until(&loop, &g.done, 1, 10000);
  CHECK_EQ_INT(g.done, 1);
  CHECK_EQ_INT(g.code, 0);
  CHECK_EQ_INT(g.status, 200);
  CHECK_EQ_STR(g.body, "hello, world\n");
  CHECK_EQ_INT(g.body_len, 13);
  CHECK(g.etag[0] == '"');
  CHECK(strstr(g.last_modified, "GMT") != NULL);
  CHECK_EQ_STR(g.content_type, "text/plain");
  CHECK_EQ_STR(g.content_length, "13");
  CHECK_EQ_STR(g.retry_after, "");
  CHECK_EQ_INT(g.connects, 1);
  CHECK_EQ_INT(rc__net_active(net), 0);
  got_free(&g);

  /* A host name (resolved off the loop by curl; may also try ::1 first). */
  snprintf(u, sizeof u, "http://localhost:%d/hello.txt", ngx.port);
  got n = {0};
  CHECK(get(net, u, &n) != NULL);
  nf_run_until(&loop, &n.done, 1, 10000);
  CHECK_EQ_INT(n.done, 1);
  CHECK_EQ_INT(n.status, 200);
  if (n.code) fprintf(stderr, "localhost: %s\n", n.message);
  got_free(&n);

  /* 404 is a response, not a failure. */
  url(u, sizeof u, base, "/missing.txt");
  got m = {0};
  CHECK(get(net, u, &m) != NULL);
  nf_run_until(&loop, &m.done, 1, 10000);
  CHECK_EQ_INT(m.done, 1);
  CHECK_EQ_INT(m.code, 0);
  CHECK_EQ_INT(m.status, 404);
  got_free(&m);
  nf_close_net(&loop, net);
  end_loop(&loop);
}

static void test_conditional_get(void) {
  uv_loop_t loop;
  uv_loop_init(&loop);
  rc__net *net = nf_new_net(&loop);
  char u[256];
  url(u, sizeof u, base, "/hello.txt");
  got first = {0};
  get(net, u, &first);
  nf_run_until(&loop, &first.done, 1, 10000);
  CHECK_EQ_INT(first.status, 200);

  rc__net_header inm[] = {{"If-None-Match", first.etag}};
  rc__net_req_opts o = {.url = u, .headers = inm, .nheaders = 1, .total_ms = 10000};
  got g = {0};
  CHECK(start(net, &o, &g, false, NULL) != NULL);
  nf_run_until(&loop, &g.done, 1, 10000);
  CHECK_EQ_INT(g.code, 0);
  CHECK_EQ_INT(g.status, 304);
  CHECK_EQ_INT(g.body_len, 0);
  CHECK_EQ_STR(g.etag, first.etag);

  rc__net_header ims[] = {{"If-Modified-Since", first.last_modified}};
  o.headers = ims;
  got h = {0};
  start(net, &o, &h, false, NULL);
  nf_run_until(&loop, &h.done, 1, 10000);
  CHECK_EQ_INT(h.status, 304);

  rc__net_header other[] = {{"If-None-Match", "\"not-the-etag\""}};
  o.headers = other;
  got k = {0};
  start(net, &o, &k, false, NULL);
  nf_run_until(&loop, &k.done, 1, 10000);
  CHECK_EQ_INT(k.status, 200);
  CHECK_EQ_STR(k.body, "hello, world\n");
  got_free(&first);
  got_free(&g);
  got_free(&h);
  got_free(&k);
  nf_close_net(&loop, net);
  end_loop(&loop);
}

static void test_headers_and_methods(void) {
  uv_loop_t loop;
  uv_loop_init(&loop);
  rc__net *net = nf_new_net(&loop);
  char u[256];
  url(u, sizeof u, base, "/echo");
  rc__net_header hs[] = {{"X-Vault-Token", TOKEN}, {"X-Empty", ""}};
  rc__net_req_opts o = {.url = u, .headers = hs, .nheaders = 2, .total_ms = 10000};
  got g = {0};
  start(net, &o, &g, false, NULL);
  nf_run_until(&loop, &g.done, 1, 10000);
  CHECK_EQ_INT(g.status, 200);
  CHECK_EQ_STR(g.body, "GET|" TOKEN "|");
  CHECK_EQ_STR(g.consul_index, "42");
  CHECK_EQ_STR(g.retry_after, "7");

  o.method = RC__NET_POST;
  o.body = "{}";
  o.body_len = 2;
  got p = {0};
  start(net, &o, &p, false, NULL);
  nf_run_until(&loop, &p.done, 1, 10000);
  CHECK_EQ_INT(p.status, 200);
  CHECK_EQ_STR(p.body, "POST|" TOKEN "|");

  /* PUT a body through WebDAV, read it back, DELETE it. */
  url(u, sizeof u, base, "/dav/k/v.json");
  rc__net_req_opts put = {.url = u, .method = RC__NET_PUT, .body = "{\"a\":1}",
                          .body_len = 7, .total_ms = 10000};
  got pu = {0}, rd = {0}, de = {0}, gone = {0};
  start(net, &put, &pu, false, NULL);
  nf_run_until(&loop, &pu.done, 1, 10000);
  CHECK_EQ_INT(pu.status, 201);
  get(net, u, &rd);
  nf_run_until(&loop, &rd.done, 1, 10000);
  CHECK_EQ_STR(rd.body, "{\"a\":1}");
  rc__net_req_opts del = {.url = u, .method = RC__NET_DELETE, .total_ms = 10000};
  start(net, &del, &de, false, NULL);
  nf_run_until(&loop, &de.done, 1, 10000);
  CHECK_EQ_INT(de.status, 204);
  get(net, u, &gone);
  nf_run_until(&loop, &gone.done, 1, 10000);
  CHECK_EQ_INT(gone.status, 404);

  /* Redirects: the 3xx itself unless asked to follow. */
  url(u, sizeof u, base, "/moved");
  got r0 = {0}, r1 = {0};
  get(net, u, &r0);
  nf_run_until(&loop, &r0.done, 1, 10000);
  CHECK_EQ_INT(r0.status, 301);
  rc__net_req_opts follow = {.url = u, .max_redirects = 3, .total_ms = 10000};
  start(net, &follow, &r1, false, NULL);
  nf_run_until(&loop, &r1.done, 1, 10000);
  CHECK_EQ_INT(r1.status, 200);
  CHECK_EQ_STR(r1.body, "hello, world\n");
  CHECK_EQ_STR(r1.content_type, "text/plain");

  got *all[] = {&g, &p, &pu, &rd, &de, &gone, &r0, &r1};
  for (size_t i = 0; i < sizeof all / sizeof *all; i++) {
    CHECK_EQ_INT(all[i]->done, 1);
    got_free(all[i]);
  }
  nf_close_net(&loop, net);
  end_loop(&loop);
}

static void test_bad_arguments(void) {
  uv_loop_t loop;
  uv_loop_init(&loop);
  rc__net *net = nf_new_net(&loop);
  got g = {0};
  rc_error err = {0};
  rc__net_req_opts o = {.url = "ftp://127.0.0.1/x"};
  CHECK(start(net, &o, &g, false, &err) == NULL);
  CHECK_EQ_INT(err.code, RC_EINVAL);
  CHECK(strstr(err.message, "scheme") != NULL);
  o.url = "http://[::1";
  CHECK(start(net, &o, &g, false, &err) == NULL);
  CHECK_EQ_INT(err.code, RC_EINVAL);
  CHECK(strstr(err.message, "malformed URL") != NULL);
  /* A header value with CR/LF is refused, and the value is not repeated. */
  rc__net_header bad[] = {{"X-Consul-Token", TOKEN "\r\nX-Evil: 1"}};
  rc__net_req_opts h = {.url = base, .headers = bad, .nheaders = 1};
  CHECK(start(net, &h, &g, false, &err) == NULL);
  CHECK_EQ_INT(err.code, RC_EINVAL);
  CHECK(strstr(err.message, "X-Consul-Token") != NULL);
  CHECK(strstr(err.message, TOKEN) == NULL);
  rc__net_callbacks none = {0};
  CHECK(rc__net_start(net, &o, &none, NULL, &err) == NULL);
  CHECK_EQ_INT(err.code, RC_EINVAL);
  /* HTTP/2 without TLS, where this libcurl cannot reuse such connections. */
  rc__net_req_opts h2c = {.url = base, .http_version = RC__NET_HTTP_2};
  if (!rc__net_h2c_supported()) {
    CHECK(start(net, &h2c, &g, false, &err) == NULL);
    CHECK_EQ_INT(err.code, RC_EINVAL);
    CHECK(strstr(err.message, "HTTP/2 without TLS needs libcurl 8.0") != NULL);
  }
  h2c.http_version = (rc__net_http_version)7;
  CHECK(start(net, &h2c, &g, false, &err) == NULL);
  CHECK_EQ_INT(err.code, RC_EINVAL);
  CHECK_EQ_INT(g.done, 0);
  CHECK_EQ_INT(rc__net_active(net), 0);
  /* A URL the caller says was accepted before is not checked again: a bad one then
   * fails the request through its callback. */
  o.url = "http://[::1";
  o.url_known = true;
  CHECK(start(net, &o, &g, false, &err) != NULL);
  nf_run_until(&loop, &g.done, 1, 10000);
  CHECK(g.code != 0);
  CHECK_EQ_INT(rc__net_active(net), 0);
  got_free(&g);
  nf_close_net(&loop, net);
  rc__net_close(NULL, nf_on_closed, NULL);  /* NULL: done at once */
  end_loop(&loop);
}

#define MANY 200
static void test_many_concurrent(void) {
  uv_loop_t loop;
  uv_loop_init(&loop);
  rc__net *net = nf_new_net(&loop);
  char u[256];
  url(u, sizeof u, base, "/hello.txt");
  static got gs[MANY];
  memset(gs, 0, sizeof gs);
  int started = 0;
  for (int i = 0; i < MANY; i++) started += get(net, u, &gs[i]) != NULL;
  CHECK_EQ_INT(started, MANY);
  CHECK_EQ_INT(rc__net_active(net), MANY);
  /* Count completions as they come. */
  int done = 0;
  uv_timer_t guard;
  uv_timer_init(&loop, &guard);
  uv_unref((uv_handle_t *)&guard);
  nf_expired = false;
  uv_timer_start(&guard, nf_on_expire, 30000, 0);
  while (!nf_expired && uv_run(&loop, UV_RUN_ONCE)) {
  }
  uv_close((uv_handle_t *)&guard, NULL);
  uv_run(&loop, UV_RUN_NOWAIT);
  int ok = 0, calls = 0;
  long connects = 0;
  for (int i = 0; i < MANY; i++) {
    calls += gs[i].done;
    done += gs[i].done == 1;
    ok += gs[i].code == 0 && gs[i].status == 200 && gs[i].body &&
          strcmp(gs[i].body, "hello, world\n") == 0;
    connects += gs[i].connects;
    got_free(&gs[i]);
  }
  CHECK_EQ_INT(calls, MANY);
  CHECK_EQ_INT(done, MANY);
  CHECK_EQ_INT(ok, MANY);
  CHECK(connects >= 1);
  CHECK(connects <= RC__NET_MAX_HOST_CONNECTIONS);  /* reused, never over the cap */
  CHECK_EQ_INT(rc__net_active(net), 0);
  nf_close_net(&loop, net);
  end_loop(&loop);
}

/* Queued requests (opts.queue): at most RC__NET_MAX_QUEUED_ACTIVE of one origin in curl
 * at once, the others wait without an easy handle and start as turns free up, oldest
 * first; every one completes, and another origin's request is not held. A queued
 * request can be cancelled (no callback), and closing the context reports those still
 * waiting as cancelled. */
#define QUEUED (RC__NET_MAX_QUEUED_ACTIVE * 2 + 50)
static void test_queued(void) {
  uv_loop_t loop;
  uv_loop_init(&loop);
  rc__net *net = nf_new_net(&loop);
  char u[256];
  url(u, sizeof u, base, "/hello.txt");
  static got gs[QUEUED];
  memset(gs, 0, sizeof gs);
  rc__net_req_opts o = {.url = u, .total_ms = 10000, .queue = true};
  rc_error err = {0};
  int started = 0;
  for (int i = 0; i < QUEUED; i++) started += start(net, &o, &gs[i], false, &err) != NULL;
  CHECK_EQ_INT(started, QUEUED);
  CHECK_EQ_INT(rc__net_active(net), QUEUED);
  CHECK_EQ_INT(rc__net_in_flight(net), RC__NET_MAX_QUEUED_ACTIVE);
  rc__net_cancel(gs[QUEUED - 1].self);  /* still waiting: gone, no callback */
  CHECK_EQ_INT(rc__net_active(net), QUEUED - 1);
  int done = 0;
  size_t most = 0;
  for (int turns = 0; done < QUEUED - 1 && turns < 100000; turns++) {
    uv_run(&loop, UV_RUN_ONCE);
    if (rc__net_in_flight(net) > most) most = rc__net_in_flight(net);
    done = 0;
    for (int i = 0; i < QUEUED - 1; i++) done += gs[i].done;
  }
  CHECK_EQ_INT(done, QUEUED - 1);
  CHECK(most <= RC__NET_MAX_QUEUED_ACTIVE);
  CHECK_EQ_INT(gs[QUEUED - 1].done, 0);
  int ok = 0;
  for (int i = 0; i < QUEUED - 1; i++) {
    ok += gs[i].code == 0 && gs[i].status == 200;
    got_free(&gs[i]);
  }
  CHECK_EQ_INT(ok, QUEUED - 1);
  CHECK_EQ_INT(rc__net_active(net), 0);
  /* Turns are per origin: one origin's full turns do not hold another's request. */
  memset(gs, 0, sizeof gs);
  for (int i = 0; i < RC__NET_MAX_QUEUED_ACTIVE + 1; i++) start(net, &o, &gs[i], false, &err);
  char other[256];
  snprintf(other, sizeof other, "http://localhost:%s/hello.txt", strrchr(base, ':') + 1);
  rc__net_req_opts o2 = {.url = other, .total_ms = 10000, .queue = true};
  got g2 = {0};
  CHECK(start(net, &o2, &g2, false, &err) != NULL);
  CHECK_EQ_INT(rc__net_in_flight(net), RC__NET_MAX_QUEUED_ACTIVE + 1);
  nf_run_until(&loop, &g2.done, 1, 10000);
  CHECK_EQ_INT(g2.status, 200);
  got_free(&g2);
  for (int i = 0; i < RC__NET_MAX_QUEUED_ACTIVE + 1; i++) {
    nf_run_until(&loop, &gs[i].done, 1, 10000);
    CHECK_EQ_INT(gs[i].status, 200);
    got_free(&gs[i]);
  }
  CHECK_EQ_INT(rc__net_active(net), 0);
  /* Waiting ones when the context closes: each reported once, as cancelled. */
  memset(gs, 0, sizeof gs);
  for (int i = 0; i < RC__NET_MAX_QUEUED_ACTIVE + 3; i++) start(net, &o, &gs[i], false, &err);
  CHECK_EQ_INT(rc__net_in_flight(net), RC__NET_MAX_QUEUED_ACTIVE);
  nf_close_net(&loop, net);
  int cancelled = 0;
  for (int i = 0; i < RC__NET_MAX_QUEUED_ACTIVE + 3; i++) {
    CHECK_EQ_INT(gs[i].done, 1);
    cancelled += gs[i].code == RC_ESTATE;
    got_free(&gs[i]);
  }
  CHECK(cancelled >= 3);
  end_loop(&loop);
}

static void test_keepalive(void) {
  uv_loop_t loop;
  uv_loop_init(&loop);
  rc__net *net = nf_new_net(&loop);
  char u[256];
  url(u, sizeof u, base, "/hello.txt");
  /* Each starts the next from its done callback: the connection is back in the cache. */
  got a = {0}, b = {0}, c = {0};
  a.next = &b;
  copy(a.next_url, sizeof a.next_url, u);
  b.next = &c;
  copy(b.next_url, sizeof b.next_url, u);
  get(net, u, &a);
  nf_run_until(&loop, &c.done, 1, 10000);
  CHECK_EQ_INT(a.done, 1);
  CHECK_EQ_INT(b.done, 1);
  CHECK_EQ_INT(c.done, 1);
  CHECK_EQ_INT(a.connects, 1);
  CHECK_EQ_INT(b.connects, 0);
  CHECK_EQ_INT(c.connects, 0);
  CHECK_EQ_INT(c.status, 200);
  /* Later, from outside any callback, too. */
  got d = {0};
  get(net, u, &d);
  nf_run_until(&loop, &d.done, 1, 10000);
  CHECK_EQ_INT(d.connects, 0);
  got_free(&a);
  got_free(&b);
  got_free(&c);
  got_free(&d);
  nf_close_net(&loop, net);
  end_loop(&loop);
}

/* A small keep-alive server on the test's own loop: answers every request with a 200
 * "ok" and keeps the connection open until ka_drop closes them all (as a server does
 * when its keep-alive timeout ends). */
typedef struct ka_server {
  uv_tcp_t listener;
  uv_tcp_t conns[4];
  bool open[4];
  int accepted, answered, port;
} ka_server;

static void ka_alloc(uv_handle_t *h, size_t want, uv_buf_t *buf) {
  static char space[4096];
  (void)h, (void)want;
  *buf = uv_buf_init(space, sizeof space);
}

static void ka_written(uv_write_t *w, int status) {
  (void)status;
  free(w);
}

static void ka_read(uv_stream_t *st, ssize_t n, const uv_buf_t *buf) {
  ka_server *k = st->data;
  static const char answer[] = "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok";
  if (n <= 0 || !memmem(buf->base, (size_t)n, "\r\n\r\n", 4)) return;
  uv_write_t *w = malloc(sizeof *w);
  uv_buf_t b = uv_buf_init((char *)answer, sizeof answer - 1);
  k->answered++;
  if (uv_write(w, st, &b, 1, ka_written) != 0) free(w);
}

static void ka_accept(uv_stream_t *l, int status) {
  ka_server *k = l->data;
  if (status < 0 || k->accepted >= 4) return;
  uv_tcp_t *c = &k->conns[k->accepted];
  uv_tcp_init(l->loop, c);
  c->data = k;
  k->open[k->accepted++] = true;
  if (uv_accept(l, (uv_stream_t *)c) == 0)
    uv_read_start((uv_stream_t *)c, ka_alloc, ka_read);
}

static void ka_drop(ka_server *k) {
  for (int i = 0; i < k->accepted; i++)
    if (k->open[i]) {
      uv_close((uv_handle_t *)&k->conns[i], NULL);
      k->open[i] = false;
    }
}

static void ka_open(uv_loop_t *loop, ka_server *k) {
  memset(k, 0, sizeof *k);
  struct sockaddr_in a;
  uv_ip4_addr("127.0.0.1", 0, &a);
  uv_tcp_init(loop, &k->listener);
  k->listener.data = k;
  int len = sizeof a;
  CHECK_EQ_INT(uv_tcp_bind(&k->listener, (struct sockaddr *)&a, 0), 0);
  CHECK_EQ_INT(uv_listen((uv_stream_t *)&k->listener, 16, ka_accept), 0);
  uv_tcp_getsockname(&k->listener, (struct sockaddr *)&a, &len);
  k->port = ntohs(a.sin_port);
}

/* An idle kept-alive connection that the server closes: its poll handle (kept while the
 * connection is idle in curl's cache) sees the end once and stops, the loop does not
 * spin on it, and the next request opens a new connection. */
static void test_keepalive_server_closes(void) {
  uv_loop_t loop;
  uv_loop_init(&loop);
  ka_server k;
  ka_open(&loop, &k);
  rc__net *net = nf_new_net(&loop);
  char u[128];
  snprintf(u, sizeof u, "http://127.0.0.1:%d/x", k.port);
  got a = {0}, b = {0}, c = {0};
  get(net, u, &a);
  nf_run_until(&loop, &a.done, 1, 10000);
  CHECK_EQ_INT(a.status, 200);
  CHECK_EQ_INT(a.connects, 1);
  get(net, u, &b);  /* kept alive: same connection */
  nf_run_until(&loop, &b.done, 1, 10000);
  CHECK_EQ_INT(b.status, 200);
  CHECK_EQ_INT(b.connects, 0);
  ka_drop(&k);
  /* Let the loop notice the close; a handle still polling an ended socket would make
   * it turn without end (thousands of turns here, not a handful). */
  CHECK(nf_turns_for(&loop, 100) <= 20);
  get(net, u, &c);
  nf_run_until(&loop, &c.done, 1, 10000);
  CHECK_EQ_INT(c.code, 0);
  CHECK_EQ_INT(c.status, 200);
  CHECK_EQ_INT(c.connects, 1);
  CHECK_EQ_INT(k.accepted, 2);
  CHECK_EQ_INT(k.answered, 3);
  got_free(&a);
  got_free(&b);
  got_free(&c);
  ka_drop(&k);
  uv_close((uv_handle_t *)&k.listener, NULL);
  nf_close_net(&loop, net);
  end_loop(&loop);
}

static void test_refused(void) {
  uv_loop_t loop;
  uv_loop_init(&loop);
  rc__net *net = nf_new_net(&loop);
  char u[256];
  snprintf(u, sizeof u, "http://user:pw@127.0.0.1:%d/x?token=" TOKEN, nginx_free_port());
  rc__net_header hs[] = {{"X-Consul-Token", TOKEN}};
  rc__net_req_opts o = {.url = u, .headers = hs, .nheaders = 1, .total_ms = 5000};
  got g = {0};
  rc_error copyerr = {0};
  CHECK(start(net, &o, &g, false, &copyerr) != NULL);
  nf_run_until(&loop, &g.done, 1, 10000);
  CHECK_EQ_INT(g.done, 1);
  CHECK_EQ_INT(g.code, RC_EIO);
  CHECK_EQ_STR(g.message, "connection refused");
  CHECK_EQ_INT(g.status, 0);
  CHECK_EQ_INT(g.body_len, 0);
  CHECK(strstr(g.message, TOKEN) == NULL);
  got_free(&g);
  nf_close_net(&loop, net);
  end_loop(&loop);
}

/* The err->file of a failure names the URL without credentials or query. */
static char last_file[256];
static void on_done_file(void *ud, rc__net_request *req, const rc__net_result *res) {
  (void)req;
  (*(int *)ud)++;
  copy(last_file, sizeof last_file, res->err ? res->err->file : "");
}
static void test_error_names_url_without_secrets(void) {
  uv_loop_t loop;
  uv_loop_init(&loop);
  rc__net *net = nf_new_net(&loop);
  char u[256], want[256];
  int port = nginx_free_port();
  snprintf(u, sizeof u, "http://user:" TOKEN "@127.0.0.1:%d/v1/kv/app?token=" TOKEN,
           port);
  snprintf(want, sizeof want, "http://127.0.0.1:%d/v1/kv/app", port);
  int n = 0;
  rc__net_req_opts o = {.url = u, .total_ms = 5000};
  rc__net_callbacks cb = {.done = on_done_file};
  CHECK(rc__net_start(net, &o, &cb, &n, NULL) != NULL);
  nf_run_until(&loop, &n, 1, 10000);
  CHECK_EQ_INT(n, 1);
  CHECK_EQ_STR(last_file, want);
  nf_close_net(&loop, net);
  end_loop(&loop);
}

static int ticks;
static void on_tick(uv_timer_t *t) {
  (void)t;
  ticks++;
}

static void test_timeout(void) {
  uv_loop_t loop;
  uv_loop_init(&loop);
  rc__net *net = nf_new_net(&loop);
  char u[256];
  snprintf(u, sizeof u, "http://127.0.0.1:%d/never", hang_port);
  /* A ticking timer proves the loop keeps turning while the request waits. */
  uv_timer_t tick;
  uv_timer_init(&loop, &tick);
  uv_unref((uv_handle_t *)&tick);
  ticks = 0;
  uv_timer_start(&tick, on_tick, 10, 10);
  rc__net_req_opts o = {.url = u, .total_ms = 300};
  got g = {0};
  start(net, &o, &g, false, NULL);
  nf_run_until(&loop, &g.done, 1, 10000);
  CHECK_EQ_INT(g.done, 1);
  CHECK_EQ_INT(g.code, RC_EIO);
  CHECK_EQ_STR(g.message, "timed out after 300 ms");
  CHECK(ticks > 0);

  /* Low-speed limit on an endless wait (no total timeout). */
  rc__net_req_opts slow = {.url = u, .low_speed_bytes = 1, .low_speed_secs = 1};
  got s = {0};
  start(net, &slow, &s, false, NULL);
  nf_run_until(&loop, &s.done, 1, 10000);
  CHECK_EQ_INT(s.done, 1);
  CHECK_EQ_INT(s.code, RC_EIO);
  CHECK_EQ_STR(s.message, "transfer too slow: under 1 bytes/s for 1 s");
  uv_close((uv_handle_t *)&tick, NULL);
  got_free(&g);
  got_free(&s);
  nf_close_net(&loop, net);
  end_loop(&loop);
}

static void test_max_body(void) {
  uv_loop_t loop;
  uv_loop_init(&loop);
  rc__net *net = nf_new_net(&loop);
  char u[256];
  /* Content-Length announces more than allowed. */
  url(u, sizeof u, base, "/big.bin");
  rc__net_req_opts o = {.url = u, .max_body = 1000, .total_ms = 10000};
  got g = {0};
  start(net, &o, &g, false, NULL);
  nf_run_until(&loop, &g.done, 1, 10000);
  CHECK_EQ_INT(g.code, RC_ELIMIT);
  CHECK_EQ_STR(g.message, "body larger than 1000 bytes");
  CHECK_EQ_INT(g.body_len, 0);
  /* No Content-Length (gzip, chunked): stopped while the body arrives. */
  url(u, sizeof u, base, "/gz/big.txt");
  got z = {0};
  o.url = u;
  start(net, &o, &z, false, NULL);
  nf_run_until(&loop, &z.done, 1, 10000);
  CHECK_EQ_INT(z.code, RC_ELIMIT);
  CHECK_EQ_STR(z.message, "body larger than 1000 bytes");
  CHECK_EQ_STR(z.content_length, "");  /* the chunked path was the one tested */
  /* Exactly at the limit is fine. */
  url(u, sizeof u, base, "/hello.txt");
  rc__net_req_opts exact = {.url = u, .max_body = 13, .total_ms = 10000};
  got e = {0};
  start(net, &exact, &e, false, NULL);
  nf_run_until(&loop, &e.done, 1, 10000);
  CHECK_EQ_INT(e.code, 0);
  CHECK_EQ_INT(e.status, 200);
  /* The connection aborted mid-body is not reused wrongly: the next request works. */
  url(u, sizeof u, base, "/hello.txt");
  got after = {0};
  get(net, u, &after);
  nf_run_until(&loop, &after.done, 1, 10000);
  CHECK_EQ_STR(after.body, "hello, world\n");
  got_free(&g);
  got_free(&z);
  got_free(&e);
  got_free(&after);
  nf_close_net(&loop, net);
  end_loop(&loop);
}

static void test_huge_headers(void) {
  uv_loop_t loop;
  uv_loop_init(&loop);
  rc__net *net = nf_new_net(&loop);
  char u[256];
  url(u, sizeof u, base, "/bigheaders");
  got g = {0};
  get(net, u, &g);
  nf_run_until(&loop, &g.done, 1, 10000);
  CHECK_EQ_INT(g.done, 1);
  CHECK_EQ_INT(g.code, RC_ELIMIT);
  CHECK_EQ_STR(g.message, "response headers larger than 65536 bytes");
  got_free(&g);
  nf_close_net(&loop, net);
  end_loop(&loop);
}

#define LINES 20000
static void test_streaming(void) {
  uv_loop_t loop;
  uv_loop_init(&loop);
  rc__net *net = nf_new_net(&loop);
  char u[256];
  url(u, sizeof u, base, "/lines.ndjson");
  rc__net_req_opts o = {.url = u, .total_ms = 10000};
  got g = {0};
  start(net, &o, &g, true, NULL);
  nf_run_until(&loop, &g.done, 1, 10000);
  CHECK_EQ_INT(g.done, 1);
  CHECK_EQ_INT(g.code, 0);
  CHECK_EQ_INT(g.status, 200);
  CHECK_EQ_INT(g.stream_status, 200);
  CHECK_EQ_STR(g.stream_type, "application/x-ndjson");
  CHECK(g.chunks > 1);
  CHECK_EQ_INT(g.streamed, (size_t)LINES * 16);
  CHECK_EQ_INT(g.body_len, 0);  /* nothing buffered */
  got_free(&g);

  /* A stream of events spread in time (echo module): each line arrives as written. */
  if (ngx.echo) {
    url(u, sizeof u, base, "/watch");
    got w = {0};
    start(net, &o, &w, true, NULL);
    nf_run_until(&loop, &w.done, 1, 10000);
    CHECK_EQ_INT(w.done, 1);
    CHECK_EQ_INT(w.code, 0);
    CHECK(w.chunks >= 2);
    CHECK_EQ_INT(w.streamed, 16);  /* two lines of 8 bytes */
    got_free(&w);
  }
  /* max_body applies to a stream when set. */
  url(u, sizeof u, base, "/lines.ndjson");
  rc__net_req_opts lim = {.url = u, .total_ms = 10000, .max_body = 5000};
  got l = {0};
  start(net, &lim, &l, true, NULL);
  nf_run_until(&loop, &l.done, 1, 10000);
  CHECK_EQ_INT(l.code, RC_ELIMIT);
  got_free(&l);
  nf_close_net(&loop, net);
  end_loop(&loop);
}

static void on_cancel_timer(uv_timer_t *t) {
  rc__net_cancel(t->data);
  uv_close((uv_handle_t *)t, NULL);
}

static void test_cancel(void) {
  uv_loop_t loop;
  uv_loop_init(&loop);
  rc__net *net = nf_new_net(&loop);
  char hang[256], big[256], hello[256];
  snprintf(hang, sizeof hang, "http://127.0.0.1:%d/never", hang_port);
  url(big, sizeof big, base, "/lines.ndjson");
  url(hello, sizeof hello, base, "/hello.txt");

  /* In flight, from a timer: no callback, the loop runs dry (no handle left behind). */
  rc__net_req_opts o = {.url = hang};
  got a = {0};
  rc__net_request *ra = start(net, &o, &a, false, NULL);
  uv_timer_t t;
  uv_timer_init(&loop, &t);
  t.data = ra;
  uv_timer_start(&t, on_cancel_timer, 50, 0);
  uv_run(&loop, UV_RUN_DEFAULT);
  CHECK_EQ_INT(a.done, 0);
  CHECK_EQ_INT(rc__net_active(net), 0);

  /* From its own data callback: no more data, no done. */
  rc__net_req_opts s = {.url = big, .total_ms = 10000};
  got b = {0};
  b.cancel_in_data = true;
  start(net, &s, &b, true, NULL);
  uv_run(&loop, UV_RUN_DEFAULT);
  CHECK_EQ_INT(b.chunks, 1);
  CHECK_EQ_INT(b.done, 0);
  CHECK_EQ_INT(rc__net_active(net), 0);

  /* From another request's done callback. */
  got c = {0}, d = {0};
  rc__net_request *rd = start(net, &o, &d, false, NULL);
  c.cancel_other = rd;
  get(net, hello, &c);
  uv_run(&loop, UV_RUN_DEFAULT);
  CHECK_EQ_INT(c.done, 1);
  CHECK_EQ_INT(d.done, 0);
  CHECK_EQ_INT(rc__net_active(net), 0);

  /* Starting a request from a data callback (inside curl) works too. */
  got e = {0}, f = {0};
  e.start_in_data = true;
  e.next = &f;
  copy(e.next_url, sizeof e.next_url, hello);
  start(net, &s, &e, true, NULL);
  uv_run(&loop, UV_RUN_DEFAULT);
  CHECK_EQ_INT(e.done, 1);
  CHECK_EQ_INT(f.done, 1);
  CHECK_EQ_STR(f.body, "hello, world\n");

  /* Cancel right after start, before the loop ran. */
  got g = {0};
  rc__net_cancel(get(net, hello, &g));
  rc__net_cancel(NULL);
  uv_run(&loop, UV_RUN_DEFAULT);
  CHECK_EQ_INT(g.done, 0);
  got_free(&c);
  got_free(&e);
  got_free(&f);
  nf_close_net(&loop, net);
  end_loop(&loop);
}

#define HANGING 20
#define STREAMS 5
static rc__net *close_me;
static void on_close_timer(uv_timer_t *t) {
  rc__net_close(close_me, nf_on_closed, NULL);
  uv_close((uv_handle_t *)t, NULL);
}

static void test_close_in_flight(void) {
  uv_loop_t loop;
  uv_loop_init(&loop);
  rc__net *net = nf_new_net(&loop);
  char hang[256], big[256], hello[256];
  snprintf(hang, sizeof hang, "http://127.0.0.1:%d/never", hang_port);
  url(big, sizeof big, base, "/slow.ndjson");
  url(hello, sizeof hello, base, "/hello.txt");
  static got gs[HANGING + STREAMS], extra;
  memset(gs, 0, sizeof gs);
  memset(&extra, 0, sizeof extra);
  rc__net_req_opts o = {.url = hang};
  for (int i = 0; i < HANGING; i++) {
    if (i == 0) {  /* a cancelled one gets no callback from close */
      gs[i].next = &extra;
      copy(gs[i].next_url, sizeof gs[i].next_url, hello);
    }
    start(net, &o, &gs[i], false, NULL);
  }
  rc__net_req_opts s = {.url = big, .low_speed_bytes = 1, .low_speed_secs = 30};
  for (int i = HANGING; i < HANGING + STREAMS; i++) start(net, &s, &gs[i], true, NULL);
  rc__net_cancel(gs[1].self);
  close_me = net;
  int before = nf_closed_count;
  uv_timer_t t;
  uv_timer_init(&loop, &t);
  uv_timer_start(&t, on_close_timer, 100, 0);
  uv_run(&loop, UV_RUN_DEFAULT);
  CHECK_EQ_INT(nf_closed_count, before + 1);
  int cancelled = 0, calls = 0;
  for (int i = 0; i < HANGING + STREAMS; i++) {
    calls += gs[i].done;
    cancelled += gs[i].code == RC_ESTATE &&
                 strcmp(gs[i].message, "cancelled: network closed") == 0;
    got_free(&gs[i]);
  }
  CHECK_EQ_INT(calls, HANGING + STREAMS - 1);
  CHECK_EQ_INT(cancelled, HANGING + STREAMS - 1);
  /* gs[0] tried to start a request from its cancelled callback: refused. */
  CHECK_EQ_INT(gs[0].start_fail_code, RC_ESTATE);
  CHECK_EQ_INT(extra.done, 0);
  end_loop(&loop);

  /* Closing from a done callback while another request hangs. */
  uv_loop_init(&loop);
  net = nf_new_net(&loop);
  got a = {0}, b = {0};
  start(net, &o, &b, false, NULL);
  a.close_in_done = true;
  get(net, hello, &a);
  uv_run(&loop, UV_RUN_DEFAULT);
  CHECK_EQ_INT(a.done, 1);
  CHECK_EQ_INT(a.status, 200);
  CHECK_EQ_INT(b.done, 1);
  CHECK_EQ_INT(b.code, RC_ESTATE);
  got_free(&a);
  got_free(&b);
  end_loop(&loop);

  /* Closing from a data callback of a stream (inside curl: deferred until it returns). */
  uv_loop_init(&loop);
  net = nf_new_net(&loop);
  got c = {0}, d = {0};
  c.close_in_data = true;
  rc__net_req_opts s2 = {.url = big, .total_ms = 10000};
  start(net, &s2, &c, true, NULL);
  start(net, &o, &d, false, NULL);
  before = nf_closed_count;
  uv_run(&loop, UV_RUN_DEFAULT);
  CHECK_EQ_INT(nf_closed_count, before + 1);
  CHECK_EQ_INT(c.chunks, 1);
  CHECK_EQ_INT(c.done, 1);
  CHECK_EQ_INT(c.code, RC_ESTATE);
  CHECK_EQ_INT(d.done, 1);
  CHECK_EQ_INT(d.code, RC_ESTATE);
  got_free(&c);
  got_free(&d);
  end_loop(&loop);
}

static void test_tls(void) {
  if (!tls_base[0]) return;
  uv_loop_t loop;
  uv_loop_init(&loop);
  rc__net *net = nf_new_net(&loop);
  char u[256];
  url(u, sizeof u, tls_base, "/hello.txt");
  got a = {0}, b = {0}, c = {0};
  get(net, u, &a);
  nf_run_until(&loop, &a.done, 1, 10000);
  CHECK_EQ_INT(a.code, RC_EIO);
  CHECK(strncmp(a.message, "TLS certificate verification failed: ", 37) == 0);
  if (a.code != RC_EIO) fprintf(stderr, "tls: %s\n", a.message);
  rc__net_req_opts o = {.url = u, .ca_file = ngx.cert, .total_ms = 10000};
  start(net, &o, &b, false, NULL);
  nf_run_until(&loop, &b.done, 1, 10000);
  CHECK_EQ_INT(b.code, 0);
  CHECK_EQ_INT(b.status, 200);
  CHECK_EQ_STR(b.body, "hello, world\n");
  rc__net_req_opts in = {.url = u, .insecure = true, .total_ms = 10000};
  start(net, &in, &c, false, NULL);
  nf_run_until(&loop, &c.done, 1, 10000);
  CHECK_EQ_INT(c.code, 0);
  CHECK_EQ_INT(c.status, 200);
  got_free(&a);
  got_free(&b);
  got_free(&c);
  nf_close_net(&loop, net);
  end_loop(&loop);
}

/* Every allocation of ours failing in turn: a clean error or success, never a crash or
 * a leak (ASan checks the leaks; fa_live our own blocks). */
static void test_alloc_failures(void) {
  char u[256];
  url(u, sizeof u, base, "/hello.txt");
  bool succeeded = false;
  for (long n = 0; n < 200 && !succeeded; n++) {
    uv_loop_t loop;
    uv_loop_init(&loop);
    fa_live = 0;
    fa_install(n);
    rc_error err = {0};
    rc__net *net = rc__net_new(&loop, &err);
    if (!net) {
      CHECK_EQ_INT(err.code, RC_ENOMEM);
    } else {
      got g = {0};
      rc__net_req_opts o = {.url = u, .total_ms = 10000};
      rc__net_request *r = start(net, &o, &g, false, &err);
      if (!r) {
        CHECK_EQ_INT(err.code, RC_ENOMEM);
      } else {
        nf_run_until(&loop, &g.done, 1, 10000);
        CHECK_EQ_INT(g.done, 1);
        CHECK(g.code == 0 || g.code == RC_ENOMEM);
        succeeded = g.code == 0 && g.status == 200;
      }
      got_free(&g);
      rc__net_close(net, NULL, NULL);
      uv_run(&loop, UV_RUN_DEFAULT);
    }
    fa_uninstall();
    CHECK_EQ_INT(fa_live, 0);
    CHECK_EQ_INT(uv_loop_close(&loop), 0);
  }
  CHECK(succeeded);
}

/* ===================================================================================
 * Server
 * =================================================================================== */

static const char LOCATIONS[] =
  "    location = /echo {\n"
  "      add_header X-Consul-Index 42;\n"
  "      add_header Retry-After 7;\n"
  "      return 200 \"$request_method|$http_x_vault_token|$http_x_empty\";\n"
  "    }\n"
  "    location = /moved { return 301 /hello.txt; }\n"
  "    location /dav/ {\n"
  "      dav_methods PUT DELETE;\n"
  "      create_full_put_path on;\n"
  "    }\n"
  "    location /gz/ {\n"
  "      gzip on;\n"
  "      gzip_types *;\n"
  "      gzip_min_length 0;\n"
  "    }\n"
  "    location = /slow.ndjson { limit_rate 1k; }\n";

static const char ECHO_LOCATIONS[] =
  "    location = /watch {\n"
  "      echo '{\"n\":1}';\n"
  "      echo_flush;\n"
  "      echo_sleep 0.3;\n"
  "      echo '{\"n\":2}';\n"
  "    }\n";

static void write_files(void) {
  nginx_write(&ngx, "hello.txt", "hello, world\n", 13);
  static char big[100000];
  for (size_t i = 0; i < sizeof big; i++) big[i] = (char)('a' + i % 26);
  nginx_write(&ngx, "big.bin", big, sizeof big);
  nginx_write(&ngx, "gz/big.txt", big, sizeof big);
  static char lines[LINES * 16 + 1];
  for (int i = 0; i < LINES; i++) snprintf(lines + i * 16, 17, "{\"n\":%08d}\n", i);
  nginx_write(&ngx, "lines.ndjson", lines, (size_t)LINES * 16);
  nginx_write(&ngx, "slow.ndjson", lines, (size_t)LINES * 16);
  char p[700];
  snprintf(p, sizeof p, "%s/dav", ngx.www);
  mkdir(p, 0777);
}

int main(void) {
  signal(SIGPIPE, SIG_IGN);
  /* curl honours proxy variables; these tests talk to 127.0.0.1 directly. */
  const char *proxies[] = {"http_proxy", "HTTP_PROXY", "https_proxy", "HTTPS_PROXY",
                           "all_proxy", "ALL_PROXY"};
  for (size_t i = 0; i < sizeof proxies / sizeof *proxies; i++) unsetenv(proxies[i]);
  /* /bigheaders: twenty 3500-byte headers (nginx takes up to 4 KiB per parameter), over
   * the 64 KiB we keep. */
  static char locations[sizeof LOCATIONS + sizeof ECHO_LOCATIONS + 20 * 3600 + 100];
  const char *echo = access(NGINX_ECHO_MODULE, R_OK) == 0 ? ECHO_LOCATIONS : "";
  size_t n = sizeof locations;
  size_t at = (size_t)snprintf(locations, n, "%s%s", LOCATIONS, echo);
  at += (size_t)snprintf(locations + at, n - at, "    location = /bigheaders {\n");
  for (int i = 0; i < 20; i++) {
    at += (size_t)snprintf(locations + at, n - at, "      add_header X-Big-%d ", i);
    memset(locations + at, 'x', 3500);
    at += 3500;
    at += (size_t)snprintf(locations + at, n - at, ";\n");
  }
  snprintf(locations + at, n - at, "      return 204;\n    }\n");
  bool tls = system("command -v openssl >/dev/null 2>&1") == 0;
  if (nginx_start(&ngx, "net", locations, tls) != 0) {
    CHECK(!"nginx started");
    return check_report("test_net");
  }
  write_files();
  snprintf(base, sizeof base, "http://127.0.0.1:%d", ngx.port);
  if (ngx.tls_port)
    snprintf(tls_base, sizeof tls_base, "https://127.0.0.1:%d", ngx.tls_port);
  else
    fprintf(stderr, "test_net: no openssl CLI, TLS tests skipped\n");
  hang_open();

  test_get_200();
  test_conditional_get();
  test_headers_and_methods();
  test_bad_arguments();
  test_many_concurrent();
  test_queued();
  test_keepalive();
  test_keepalive_server_closes();
  test_refused();
  test_error_names_url_without_secrets();
  test_timeout();
  test_max_body();
  test_huge_headers();
  test_streaming();
  test_cancel();
  test_close_in_flight();
  test_tls();
  test_alloc_failures();

  close(hang_fd);
  if (check_failed) nginx_print_log_(&ngx);
  nginx_stop(&ngx);
  return check_report("test_net");
}
