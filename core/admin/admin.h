/* SPDX-License-Identifier: MIT (see LICENSE) */
/* admin.h: the admin endpoint's private parts, shared by its files: admin.c (sockets,
 * the HTTP server, limits and the bearer token), admin_routes.c (what each endpoint
 * answers), admin_query.c (the answers only the loop thread can compute) and
 * admin_events.c (the /events stream). */
#ifndef RC_ADMIN_H
#define RC_ADMIN_H

#include "engine.h"

#include <pthread.h>

struct MHD_Connection;

/* One answer: status, content type (static), body (owned, rc__free; may be NULL). */
typedef struct admin_reply {
  unsigned status;
  const char *type;
  char *body;
  size_t len;
} admin_reply;

struct rc_admin {
  rc_engine_t *eng;
  struct MHD_Daemon *daemon;
  int fd;                     /* the listening socket (ours until the daemon takes it) */
  char address[320];          /* what rc_admin_address returns */
  char *unix_path;            /* owned; the socket file to remove at stop, or NULL */
  char *token;                /* owned; NULL: no token */
  bool remote;                /* bound beyond loopback: reads need the token too */
  rc_admin_opts o;            /* with the defaults filled in; o.token unused */
  pthread_mutex_t mu;         /* guards everything below */
  pthread_cond_t cv;          /* calls ending, events arriving, closing */
  bool closing;
  bool stopped;
  int calls;                  /* connection threads inside an engine call */
  /* /events: a ring of the last events as SSE messages; the loop thread appends (the
   * handler is registered only while a stream is open), streams read by sequence. */
  int streams;
  int handler_id;             /* 0: not registered */
  char **ring;                /* owned; ring_cap slots, each an owned message or NULL */
  size_t ring_cap;
  uint64_t next_seq;          /* sequence of the next message; message s is at s % cap */
};

#define ADMIN_RING 512

/* Enters an engine call from a connection thread: false when the endpoint is closing
 * (answer 503). Every true is paired with admin_leave. */
bool admin_enter(rc_admin_t *a);
void admin_leave(rc_admin_t *a);

/* Fills `r` with status and a JSON body {"error": message} (message formatted). */
void admin_error(admin_reply *r, unsigned status, const char *fmt, ...) RC__PRINTF(3, 4);
/* Takes `b`'s text as a JSON body with status 200 (500 when b ran out of memory). */
void admin_json(admin_reply *r, rc__buf *b);

/* ---- admin_routes.c ---- */
/* Answers GET or POST `url` (query arguments read from `c`). Returns false when the
 * answer is the /events stream (admin_events_respond queued it), true when `r` holds it. */
bool admin_route(rc_admin_t *a, struct MHD_Connection *c, const char *method,
                 const char *url, admin_reply *r);

/* ---- admin_query.c (each runs its work on the loop thread through rc__call_on_loop;
 * called between admin_enter and admin_leave) ---- */
/* The running configuration (or the value at `path`) as redacted JSON. */
void admin_query_config(rc_admin_t *a, const char *path, admin_reply *r);
/* The revisions kept for rollback, with time, trigger and change count. */
void admin_query_history(rc_admin_t *a, admin_reply *r);
/* The changes from revision `from` to `to` (redacted). */
void admin_query_diff(rc_admin_t *a, uint64_t from, uint64_t to, admin_reply *r);
/* 200 when every component that must wait (startup "wait" or "fail") has a value, else
 * 503 with the reason. */
void admin_query_ready(rc_admin_t *a, admin_reply *r);
/* Whether the engine runs (its loop answers). */
bool admin_query_alive(rc_admin_t *a);

/* ---- admin_events.c ---- */
/* Queues the /events stream on `c`: 200 text/event-stream, or 503 past max_streams.
 * Returns MHD's verdict. */
int admin_events_respond(rc_admin_t *a, struct MHD_Connection *c);
/* Ends every stream (closing is set) and frees the ring. */
void admin_events_close(rc_admin_t *a);
/* Appends an event's JSON (name, time_ns, component, ...) to `b`. */
void admin_event_json(rc__buf *b, const rc_event_t *ev);

#endif
