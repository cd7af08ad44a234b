/* SPDX-License-Identifier: MIT (see LICENSE) */
/* h1.h: the own plain-HTTP/1.1 client of core/net (h1.c), for the poll case only: GETs
 * over http:// that wait their turn (opts.queue), buffered, no proxy. net.c routes such
 * requests here and everything else to curl; the state below is embedded in net.c's
 * request and context (net_int.h), so a poll allocates nothing for it. */
#ifndef RC_NET_H1_H
#define RC_NET_H1_H

#include "internal.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <uv.h>

struct rc__net;
struct rc__net_request;
struct h1_conn;
struct h1_origin;
struct rc__net_req_opts;

#define RC__H1_BUCKETS 64

/* Per context: one timer for every deadline of the own client (requests' connect and
 * total timeouts, idle connections' age), the origins with their connection pools, and
 * one read buffer (reads are consumed synchronously on the loop thread). */
typedef struct rc__h1 {
  bool enabled;                       /* no proxy in the environment, RC_HTTP_CLIENT
                                         is not "curl" (read once at rc__net_new) */
  uv_timer_t timer;
  uint64_t timer_due;                 /* loop time it is due at while active */
  struct h1_origin *origins[RC__H1_BUCKETS];
  struct rc__net_request *inflight;   /* launched own-client requests (deadlines) */
  char *rbuf;                         /* RC__H1_READ_BYTES, made at the first read */
  size_t requests;                    /* requests launched on the own client */
  int sync;                           /* inside rc__h1_launch: failures wait */
} rc__h1;

/* Per request. */
typedef struct rc__h1_req {
  bool on;                            /* routed to the own client */
  bool launched;                      /* on net->h1.inflight */
  bool retried;                       /* a reused connection failed: tried once more */
  struct rc__net_request *prev, *next;    /* net->h1.inflight */
  struct rc__net_request *wprev, *wnext;  /* its origin's requests waiting for an
                                             address or a connection */
  int waiting;                        /* on which list: 0 none, 1 address, 2 connection */
  struct h1_conn *conn;               /* while it holds a connection */
  struct h1_origin *org;
  char *target;                       /* the URL now requested (after redirects) */
  char *reqbuf;                       /* the request bytes: holds header secrets */
  size_t reqlen;
  uint64_t start_ns;                  /* uv_hrtime at launch */
  uint64_t connect_due, total_due;    /* loop times; 0 = none */
  uint32_t redirects;                 /* followed so far */
  long connects;                      /* connections it opened */
  uint64_t duration_ns;
  bool late_set;                      /* `late` (or out of memory) is to be reported */
  rc_error *late;                     /* a failure found while starting, reported from
                                         the timer (never inside rc__net_start) */
} rc__h1_req;

/* Reads RC_HTTP_CLIENT and the proxy variables; starts the timer. 0 = one uv handle
 * opened (closed by rc__h1_teardown). */
void rc__h1_init(struct rc__net *net);
/* Whether this request goes to the own client (see net.h). Sets r->h1.on. */
bool rc__h1_route(struct rc__net_request *r, const struct rc__net_req_opts *o,
                  bool streaming);
/* Starts a routed request; it is on net->active already. 0, or RC_ENOMEM with `err`
 * filled (nothing else fails here: later failures come through the done callback). */
int rc__h1_launch(struct rc__net_request *r, rc_error *err);
/* Detaches a request being freed (done, cancelled or closed): its connection, if it
 * had one mid-exchange, is closed; its buffers are wiped and freed. */
void rc__h1_release(struct rc__net_request *r);
/* Closes the idle connections, the origins and the timer (rc__net_close, after every
 * request was reported). */
void rc__h1_teardown(struct rc__net *net);

#endif
