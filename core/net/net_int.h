/* SPDX-License-Identifier: MIT (see LICENSE) */
/* net_int.h: the structures of core/net shared by net.c (curl) and h1.c (the own
 * HTTP/1.1 client), and the few functions of net.c that h1.c calls back: one request
 * type, one list of requests in flight and one header store serve both paths, so
 * rc__net_result, rc__net_header_value and the per-origin turns read the same. */
#ifndef RC_NET_INT_H
#define RC_NET_INT_H

#include "h1.h"
#include "net.h"

#include <curl/curl.h>

/* Idle easy handles kept for reuse: a fleet of pollers has a few dozen requests in
 * flight at its busiest moments, and each handle made anew costs an init and a cleanup
 * (about 5 KB each). */
#define POOL_MAX 64
#define ORIGIN_BUCKETS 64
#define RC__NET_KNOWN_HEADERS 4

typedef struct poll_ctx poll_ctx;
typedef struct sock_slot sock_slot;

/* Which list a request is on; it is on exactly one, or none while its done callback
 * runs. */
typedef enum where {
  W_NONE = 0,  /* finishing (done callback running) or being freed */
  W_ACTIVE,    /* added to the multi handle */
  W_ADDS,      /* started from inside curl: added when curl returns */
  W_DOOMED,    /* cancelled from inside curl: removed and freed when curl returns */
  W_QUEUED,    /* waiting for a turn of its origin (RC__NET_MAX_QUEUED_ACTIVE) */
} where;

struct rc__net_request {
  rc__net *net;
  CURL *easy;
  bool added;                /* curl_multi_add_handle succeeded */
  where where;
  rc__net_request *prev, *next;
  bool turn;                 /* holds a turn of its origin (org->launched) */
  rc__net_callbacks cb;
  void *ud;
  struct curl_slist *headers;  /* request headers; wiped before they are freed */
  char *url;                 /* as given; may hold credentials: wiped before freed */
  char *url_shown;           /* the URL without credentials, query or fragment, and */
  char *host;                /* the host name, for messages: made when first needed */
  rc__buf body;              /* buffered mode */
  rc__buf resp;              /* response headers: "name\0value\0" ... */
  uint32_t known[RC__NET_KNOWN_HEADERS];  /* where ETag, Last-Modified, Content-Type and
                                             Retry-After start in resp, + 1; 0: absent */
  size_t max_body;           /* 0 = no limit */
  size_t received;           /* body bytes of the current response */
  long cur_status;           /* status of the response whose headers are arriving */
  uint32_t connect_ms, total_ms, low_speed_bytes, low_speed_secs, max_redirects;
  bool too_big, headers_too_big, oom;
  bool tls;                  /* https:// */
  struct origin *org;        /* opts.queue: the origin whose turns it takes; else NULL */
  bool insecure;
  rc__net_method method;
  rc__net_http_version http_version;
  char *ca_file;             /* a copy: a queued request sets its options later */
  rc__h1_req h1;             /* the own client's state (h1.c) */
  char errbuf[CURL_ERROR_SIZE];
};

struct rc__net {
  uv_loop_t *loop;
  CURLM *multi;
  uv_timer_t timer;
  poll_ctx *polls;           /* open poll handles (doubly linked) */
  poll_ctx *spare;           /* ready contexts (singly linked) */
  int nspare;
  sock_slot *socks;          /* by descriptor, up to the highest connection socket seen */
  size_t nsocks;
  long maxconnects;          /* CURLMOPT_MAXCONNECTS as last set */
  uint64_t timer_due;        /* loop time the timer is due at, while it is active */
  rc__net_request *active, *adds, *doomed;
  size_t nactive;            /* requests not yet done or cancelled (waiting ones too) */
  size_t nwaiting;           /* of which waiting for a turn, without an easy handle */
  struct origin *origins[ORIGIN_BUCKETS];  /* by hash of their key */
  struct origin *ready;      /* origins with a free turn and requests waiting for it */
  uv_timer_t pump_timer;     /* runs on_pump on the next loop turn */
  CURL *pool[POOL_MAX];
  int npool;
  int busy;                  /* depth of drive(): curl or our dispatch is running */
  int in_curl;               /* inside curl_multi_socket_action */
  bool closing, torn_down;
  int open_handles;          /* uv handles not yet closed */
  void (*close_done)(void *ud);
  void *close_ud;
  rc__h1 h1;                 /* the own client (h1.c) */
};

/* ---- net.c, for h1.c ---- */

/* The request's URL for messages (no credentials, query or fragment); "" out of memory. */
const char *rc__net_url_shown(rc__net_request *r);
/* A response's status line arrived: the kept headers and the body start over. 0, or
 * RC_ENOMEM (r->oom set). */
int rc__net_resp_begin(rc__net_request *r, long status);
/* One response header (name and value trimmed by the caller or not: leading and trailing
 * blanks of the value are dropped). 0, or -1 with r->oom, r->headers_too_big or
 * r->too_big (a Content-Length above max_body) set. */
int rc__net_resp_header(rc__net_request *r, const char *name, size_t nlen,
                        const char *value, size_t vlen);
/* An own-client request ended: off the active list, done callback, freed. */
void rc__net_h1_done(rc__net_request *r, int code, const rc_error *e);
/* An own-client request continues in curl from `url` (a redirect to https; it may be
 * the own client's buffer, so it is copied before that is freed), with
 * `redirects` more to follow. 0, or an error with `err` filled (the caller reports it). */
int rc__net_h1_to_curl(rc__net_request *r, const char *url, uint32_t redirects,
                       rc_error *err);
/* Around every own-client callback that may call user code: rc__net_close from inside
 * is deferred to the outermost leave. */
void rc__net_enter(rc__net *net);
void rc__net_leave(rc__net *net);
/* One uv handle (or request) of the context's own ended: the last one frees it. */
void rc__net_handle_closed(rc__net *net);

#endif
