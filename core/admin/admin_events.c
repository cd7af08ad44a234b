/* SPDX-License-Identifier: MIT (see LICENSE) */
/* admin_events.c: GET /events, the engine's events as Server-Sent Events. The loop
 * thread formats each event once into a ring of the last ADMIN_RING messages (under the
 * endpoint's mutex, never waiting on a client); each stream, on its connection's thread,
 * sends what it has not sent yet. A stream that falls more than the ring behind is told
 * how many it missed. The handler is registered only while a stream is open, so an
 * endpoint nobody streams from costs the engine nothing (events are not even formatted
 * without listeners). */
#include "admin.h"

#include <microhttpd.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#define KEEPALIVE_S 15

static void field(rc__buf *b, const char *key, const char *s) {
  if (!s || !*s) return;
  rc__buf_printf(b, ",\"%s\":", key);
  rc__json_write_string(b, s, strlen(s));
}

void admin_event_json(rc__buf *b, const rc_event_t *ev) {
  rc__buf_adds(b, "{\"event\":");
  rc__json_write_string(b, ev->name, strlen(ev->name));
  rc__buf_printf(b, ",\"time_ns\":%lld", (long long)rc__real_ns());
  field(b, "component", ev->component);
  field(b, "message", ev->message);
  field(b, "file", ev->file);
  if (ev->line) rc__buf_printf(b, ",\"line\":%d,\"column\":%d", ev->line, ev->column);
  if (ev->code) rc__buf_printf(b, ",\"code\":\"%s\"", rc_err_name(ev->code));
  if (ev->revision)
    rc__buf_printf(b, ",\"revision\":%llu", (unsigned long long)ev->revision);
  if (ev->changes) rc__buf_printf(b, ",\"changes\":%zu", ev->changes);
  if (ev->reload_id)
    rc__buf_printf(b, ",\"reload_id\":%llu", (unsigned long long)ev->reload_id);
  field(b, "trigger", ev->trigger);
  field(b, "module", ev->module);
  if (ev->duration_us)
    rc__buf_printf(b, ",\"duration_us\":%llu", (unsigned long long)ev->duration_us);
  rc__buf_addc(b, '}');
}

/* The engine's handler (loop thread): one SSE message per event into the ring. */
static void on_event(void *ud, const rc_event_t *ev) {
  rc_admin_t *a = ud;
  rc__buf b;
  rc__buf_init(&b);
  rc__buf_printf(&b, "event: %s\ndata: ", ev->name);
  admin_event_json(&b, ev);
  rc__buf_adds(&b, "\n\n");
  if (b.oom) {
    rc__buf_free(&b);
    return; /* the stream sees a gap in the ids */
  }
  char *msg = rc__buf_take(&b);
  pthread_mutex_lock(&a->mu);
  if (a->ring) {
    size_t slot = a->next_seq % a->ring_cap;
    rc__free(a->ring[slot]);
    a->ring[slot] = msg;
    msg = NULL;
    a->next_seq++;
    pthread_cond_broadcast(&a->cv);
  }
  pthread_mutex_unlock(&a->mu);
  rc__free(msg);
}

/* One open stream. */
typedef struct stream {
  rc_admin_t *a;
  uint64_t seq;        /* the next message to send */
  rc__buf pending;     /* what MHD has not taken yet */
  size_t off;
} stream;

/* Waits (on the connection's thread) for messages past s->seq, at most KEEPALIVE_S;
 * moves them into s->pending. Returns false when the endpoint closes. */
static bool wait_messages(stream *s) {
  rc_admin_t *a = s->a;
  struct timespec until;
  clock_gettime(CLOCK_REALTIME, &until);
  until.tv_sec += KEEPALIVE_S;
  pthread_mutex_lock(&a->mu);
  while (!a->closing && s->seq == a->next_seq)
    if (pthread_cond_timedwait(&a->cv, &a->mu, &until) != 0) break;
  bool open = !a->closing;
  if (open && s->seq == a->next_seq) rc__buf_adds(&s->pending, ": keepalive\n\n");
  if (open && a->next_seq - s->seq > a->ring_cap) {
    uint64_t lost = a->next_seq - a->ring_cap - s->seq;
    rc__buf_printf(&s->pending, "event: dropped\ndata: {\"dropped\":%llu}\n\n",
                   (unsigned long long)lost);
    s->seq = a->next_seq - a->ring_cap;
  }
  for (; open && s->seq < a->next_seq; s->seq++) {
    const char *m = a->ring[s->seq % a->ring_cap];
    if (!m) continue;
    rc__buf_printf(&s->pending, "id: %llu\n", (unsigned long long)s->seq + 1);
    rc__buf_adds(&s->pending, m);
  }
  pthread_mutex_unlock(&a->mu);
  return open && !s->pending.oom;
}

/* MHD asks for the next bytes; blocking here holds only this connection's thread. */
static ssize_t read_stream(void *cls, uint64_t pos, char *buf, size_t max) {
  RC__UNUSED(pos);
  stream *s = cls;
  if (s->off == s->pending.n) {
    rc__buf_reset(&s->pending);
    s->off = 0;
    if (!wait_messages(s)) return MHD_CONTENT_READER_END_OF_STREAM;
  }
  size_t n = s->pending.n - s->off;
  if (n > max) n = max;
  memcpy(buf, s->pending.p + s->off, n);
  s->off += n;
  return (ssize_t)n;
}

/* The stream's connection is gone: the last stream out unregisters the handler. */
static void free_stream(void *cls) {
  stream *s = cls;
  rc_admin_t *a = s->a;
  pthread_mutex_lock(&a->mu);
  int id = --a->streams == 0 ? a->handler_id : 0;
  if (id) a->handler_id = 0;
  pthread_mutex_unlock(&a->mu);
  if (id) rc_engine_remove_event_handler(a->eng, id);
  rc__buf_free(&s->pending);
  rc__free(s);
}

int admin_events_respond(rc_admin_t *a, struct MHD_Connection *c) {
  stream *s = rc__calloc(1, sizeof *s);
  if (!s) return MHD_NO;
  s->a = a;
  rc__buf_init(&s->pending);
  pthread_mutex_lock(&a->mu);
  bool full = a->closing || a->streams >= (int)a->o.max_streams;
  if (!full && !a->ring) {
    a->ring = rc__calloc(ADMIN_RING, sizeof *a->ring);
    a->ring_cap = a->ring ? ADMIN_RING : 0;
  }
  bool ok = !full && a->ring;
  bool first = ok && a->streams++ == 0;
  s->seq = a->next_seq; /* live events only: what happens from now on */
  pthread_mutex_unlock(&a->mu);
  if (!ok) {
    rc__free(s);
    admin_reply r = {0};
    admin_error(&r, 503, full ? "too many /events streams" : "out of memory");
    struct MHD_Response *resp =
      MHD_create_response_from_buffer_with_free_callback(r.len, r.body, rc__free);
    if (!resp) return MHD_NO;
    MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, r.type);
    enum MHD_Result q = MHD_queue_response(c, r.status, resp);
    MHD_destroy_response(resp);
    return q;
  }
  if (first) {
    int id = rc_engine_add_event_handler(a->eng, on_event, a);
    pthread_mutex_lock(&a->mu);
    if (id > 0) a->handler_id = id;
    pthread_mutex_unlock(&a->mu);
  }
  /* The first bytes go out at once, so a client knows the stream is open. */
  rc__buf_adds(&s->pending, ": reactcfg events\n\n");
  struct MHD_Response *resp =
    MHD_create_response_from_callback(MHD_SIZE_UNKNOWN, 4096, read_stream, s, free_stream);
  if (!resp) {
    free_stream(s);
    return MHD_NO;
  }
  MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, "text/event-stream");
  MHD_add_response_header(resp, MHD_HTTP_HEADER_CACHE_CONTROL, "no-store");
  enum MHD_Result q = MHD_queue_response(c, MHD_HTTP_OK, resp);
  MHD_destroy_response(resp);
  return q;
}

void admin_events_close(rc_admin_t *a) {
  pthread_mutex_lock(&a->mu);
  int id = a->handler_id;
  a->handler_id = 0;
  char **ring = a->ring;
  size_t cap = a->ring_cap;
  a->ring = NULL;
  a->ring_cap = 0;
  pthread_mutex_unlock(&a->mu);
  if (id) {
    rc_engine_remove_event_handler(a->eng, id);
    /* From another thread a call of the handler may still be running: one turn of the
     * loop after the removal, it is over. */
    if (!rc__on_loop_thread(a->eng)) admin_query_alive(a);
  }
  for (size_t i = 0; i < cap; i++) rc__free(ring[i]);
  rc__free(ring);
}
