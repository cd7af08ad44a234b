/* SPDX-License-Identifier: MIT (see LICENSE) */
/* test_admin.c: the admin endpoint's C API (rc_admin_start, rc_admin_address,
 * rc_admin_stop, rc_admin_free): refused addresses, port 0, requests answered while the
 * test's own thread runs the engine's loop, and a stop on the loop thread while a
 * connection thread waits for that loop (it must not wait forever), then requests from
 * libcurl in a thread of their own against an engine on its own thread. */
#include "admin.h"
#include "harness.h"

#include <curl/curl.h>
#include <pthread.h>

static const char POLICY[] =
  "local rc = require 'reactcfg'\n"
  "return rc.policy {\n"
  "  components = { app = { source = rc.file 'app.json', secret = { 'key' } } },\n"
  "}\n";

static size_t sink(char *p, size_t size, size_t n, void *ud) {
  rc__buf_add(ud, p, size * n);
  return size * n;
}

/* One request: the status (0: no answer), the body into `body` (if not NULL). */
static long request(const char *addr, const char *method, const char *path, const char *token,
                    rc__buf *body) {
  char url[512];
  snprintf(url, sizeof url, "http://%s%s", addr, path);
  CURL *h = curl_easy_init();
  rc__buf scratch;
  rc__buf_init(&scratch);
  struct curl_slist *hdrs = NULL;
  char auth[256];
  if (token) {
    snprintf(auth, sizeof auth, "Authorization: Bearer %s", token);
    hdrs = curl_slist_append(NULL, auth);
    curl_easy_setopt(h, CURLOPT_HTTPHEADER, hdrs);
  }
  curl_easy_setopt(h, CURLOPT_URL, url);
  curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, 20000L);
  if (!strcmp(method, "POST")) curl_easy_setopt(h, CURLOPT_POSTFIELDS, "");
  curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, sink);
  curl_easy_setopt(h, CURLOPT_WRITEDATA, body ? body : &scratch);
  long status = 0;
  if (curl_easy_perform(h) == CURLE_OK) curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &status);
  curl_slist_free_all(hdrs);
  curl_easy_cleanup(h);
  rc__buf_free(&scratch);
  return status;
}

/* ---- a request from another thread while the loop thread stops the endpoint ---- */

typedef struct client {
  const char *addr;
  long status;
} client;

static void *post_reload(void *arg) {
  client *c = arg;
  c->status = request(c->addr, "POST", "/reload", NULL, NULL);
  return NULL;
}

static int calls_in_flight(rc_admin_t *a) {
  pthread_mutex_lock(&a->mu);
  int n = a->calls;
  pthread_mutex_unlock(&a->mu);
  return n;
}

static void refused_addresses(harness *h) {
  rc_error err = {0};
  CHECK(rc_admin_start(h->eng, "nonsense", NULL, &err) == NULL);
  CHECK_EQ_INT(err.code, RC_EINVAL);
  memset(&err, 0, sizeof err);
  CHECK(rc_admin_start(h->eng, "0.0.0.0:0", NULL, &err) == NULL);
  CHECK_EQ_INT(err.code, RC_EINVAL);
  CHECK(strstr(err.message, "needs a token") != NULL);
  memset(&err, 0, sizeof err);
  CHECK(rc_admin_start(NULL, "127.0.0.1:0", NULL, &err) == NULL);
  CHECK_EQ_INT(err.code, RC_EINVAL);
  /* The port is taken: RC_ESYS. */
  rc_admin_t *a = rc_admin_start(h->eng, "127.0.0.1:0", NULL, &err);
  CHECK(a != NULL);
  if (a) {
    rc_admin_t *b = rc_admin_start(h->eng, rc_admin_address(a), NULL, &err);
    CHECK(b == NULL);
    CHECK_EQ_INT(err.code, RC_ESYS);
    rc_admin_free(b);
  }
  rc_admin_free(a);
  rc_admin_free(NULL);
}

/* The engine runs on the test's loop: a connection thread's POST waits for that loop;
 * stopping the endpoint here (the loop thread, loop not running) must serve it, not
 * wait forever in the join. */
static void stop_on_loop_thread(harness *h) {
  rc_error err = {0};
  rc_admin_t *a = rc_admin_start(h->eng, "127.0.0.1:0", NULL, &err);
  CHECK(a != NULL);
  if (!a) return;
  CHECK(strncmp(rc_admin_address(a), "127.0.0.1:", 10) == 0);
  CHECK(atoi(rc_admin_address(a) + 10) > 0);
  client c = {.addr = rc_admin_address(a)};
  pthread_t t;
  pthread_create(&t, NULL, post_reload, &c);
  /* Bounded wait (20 s) for the connection thread to be inside its engine call. */
  for (int i = 0; i < 2000 && calls_in_flight(a) == 0; i++) usleep(10000);
  CHECK_EQ_INT(calls_in_flight(a), 1);
  CHECK_EQ_INT(rc_admin_stop(a), 0);
  CHECK_EQ_INT(calls_in_flight(a), 0);
  CHECK_EQ_INT(rc_admin_stop(a), 0); /* idempotent */
  pthread_join(t, NULL);
  /* Its engine call was served; its answer may have been cut by the stop. */
  CHECK(c.status == 200 || c.status == 0);
  rc_admin_free(a);
}

/* An engine on its own thread, the endpoint started by the application. */
static void own_thread(harness *h) {
  char path[1024];
  h_path(h, "policy.lua", path, sizeof path);
  rc_error err = {0};
  rc_engine_t *eng = rc_engine_new(&err);
  CHECK_EQ_INT(rc_engine_load_policy(eng, path, &err), 0);
  CHECK_EQ_INT(rc_engine_start(eng, &err), 0);
  rc_admin_opts o = {.token = "tok"};
  rc_admin_t *a = rc_admin_start(eng, "127.0.0.1:0", &o, &err);
  CHECK(a != NULL);
  if (a) {
    rc__buf body;
    rc__buf_init(&body);
    CHECK_EQ_INT(request(rc_admin_address(a), "GET", "/config?path=app", NULL, &body), 200);
    CHECK(body.p && strstr(body.p, "\"<redacted>\"") && !strstr(body.p, "s3cret"));
    rc__buf_free(&body);
    CHECK_EQ_INT(request(rc_admin_address(a), "POST", "/unpin", NULL, NULL), 401);
    CHECK_EQ_INT(request(rc_admin_address(a), "POST", "/unpin", "tok", NULL), 200);
    CHECK_EQ_INT(request(rc_admin_address(a), "GET", "/readyz", NULL, NULL), 200);
  }
  rc_admin_free(a);
  rc_engine_free(eng);
}

int main(void) {
  curl_global_init(CURL_GLOBAL_ALL);
  harness h = {0};
  h_tmpdir(&h, "admin");
  h_write(&h, "app.json", "{\"port\": 8080, \"key\": \"s3cret\"}");
  CHECK_EQ_INT(h_start(&h, POLICY), 0);
  refused_addresses(&h);
  stop_on_loop_thread(&h);
  own_thread(&h);
  CHECK(h_finish(&h));
  curl_global_cleanup();
  return check_report("test_admin");
}
