/* SPDX-License-Identifier: MIT (see LICENSE) */
/* kafka.c: the Kafka source. A topic read as a configuration log (a compacted topic):
 * from the beginning of every partition, the latest record per key wins and a record
 * with a null value (a tombstone) removes its key; then new records follow as they come.
 * With `key` the value is that key's latest record parsed in `format` (absent after a
 * tombstone); without, a table key -> parsed value. Through librdkafka (Debian 2.0),
 * whose queues signal a pipe watched by a uv_poll_t on the engine's loop: no thread of
 * ours polls (the library's own threads do its networking). The rules it keeps
 * (shared/research/wave2-protocols.md, Kafka):
 *  - partitions are read directly (the simple consumer: rd_kafka_consume_start_queue),
 *    never through a consumer group: no group id, no commits, no rebalances;
 *  - the first value is complete only when every partition reached the high watermark
 *    it had at start (asked before reading; a partition's end-of-file event or a record
 *    at or past it); until then nothing is delivered and start waits (RC__SRC_WAITS);
 *  - records are kept raw until the value is built, so only each key's latest record is
 *    parsed: a bad record that a later one replaced is no error;
 *  - librdkafka's calls that wait for a broker (metadata, watermarks, stopping the
 *    fetchers, destroy) run on the libuv thread pool, never on the loop;
 *  - a broker outage (librdkafka's error callback) is a failure of the remote driver:
 *    the last value stays, a source.error, and probes (a metadata request on the pool)
 *    on the backoff schedule under the circuit breaker; librdkafka reconnects by itself,
 *    with the same backoff bounds, and a probe that works or a record that arrives is
 *    the recovery. A record that does not parse, or beyond max_bytes, is an error of
 *    its key (the key keeps its last good value) without a retry: reading again would
 *    read the same bytes.
 * The client (librdkafka handle, pipe, poll handle) is allocated apart from the source:
 * stop detaches it, and it is destroyed on the thread pool after its last job ended. */
#include "remote.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <librdkafka/rdkafka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* How often the topic's partitions are asked again while all is well (a partition added
 * to the topic is read from then on); librdkafka's own metadata refresh default. */
#define KAFKA_REFRESH_MS 300000
/* Messages taken from librdkafka per loop turn; more wait for the next turn. */
#define KAFKA_DRAIN_BATCH 2000

typedef struct kafka_source kafka_source;

/* librdkafka's handle and what ties it to the loop. Outlives its source. */
typedef struct kafka_client {
  kafka_source *s;          /* NULL once the source stopped */
  rc__host *host;
  rd_kafka_t *rk;
  rd_kafka_topic_t *rkt;
  rd_kafka_queue_t *q;      /* records and per-partition events */
  rd_kafka_queue_t *mainq;  /* the error callback */
  int fds[2];               /* librdkafka writes to [1] when a queue turns non-empty */
  uv_poll_t poll;
  uv_timer_t drain;         /* more to take than one turn's batch */
  unsigned inited;          /* 1: poll, 2: timer */
  int handles;              /* of those, not yet closed */
  int jobs;                 /* thread-pool jobs using rk */
  int32_t *started;         /* partitions being fetched */
  int nstarted;
  bool closing;
  uv_work_t destroy;
} kafka_client;

/* The latest record of one key. */
typedef struct kafka_entry {
  char *key;                /* owned, klen bytes + NUL */
  size_t klen;
  char *raw;                /* latest record not yet parsed (owned), or NULL */
  size_t raw_len;
  bool pending;             /* `raw` (or a tombstone) waits to be applied */
  bool tomb;                /* the pending record is a tombstone */
  bool too_big;             /* the pending record was over max_bytes (not kept) */
  int32_t partition;        /* where the pending record is, for messages */
  int64_t offset;
  rc_value_t *value;        /* the last record that parsed (owned); NULL: absent */
  size_t bytes;             /* size of the record `value` came from */
} kafka_entry;

/* A metadata + watermarks request, run on the thread pool. */
typedef struct kafka_discover {
  uv_work_t work;
  kafka_client *c;
  uint32_t timeout_ms;
  bool watermarks;          /* also ask each partition's high watermark */
  int nparts;
  int32_t *ids;
  int64_t *lo, *hi;
  rd_kafka_resp_err_t err;
  char msg[256];
} kafka_discover;

struct kafka_source {
  rc__remote r;
  kafka_client *c;
  const char *brokers, *topic;   /* borrowed from the options */
  const char *key;               /* one key, or NULL: all keys */
  size_t key_len;
  char **config;                 /* librdkafka properties "name", "value", ... (owned) */
  rc__format fmt;
  char *shown;                   /* "kafka <topic> at <brokers>" for messages */
  /* Partitions: the high watermark each had at start, and whether it was reached. */
  int nparts;
  int32_t *part_ids;
  int64_t *start_hi;
  bool *reached;
  bool discovered, discovering, complete;
  bool broken;                   /* a broker failure was reported and not yet cleared */
  /* The keys: entries, and an open-addressing index of entry number + 1. */
  kafka_entry *entries;
  size_t nentries, entries_cap;
  uint32_t *index;
  size_t index_cap;
  bool dirty;                    /* entries changed since the last delivery */
  size_t skipped_nokey;          /* records without a key (all-keys mode) */
};

static void client_drain(kafka_client *c);
static void discovered(kafka_source *s, kafka_discover *d);

/* ===================================================================================
 * The client: librdkafka on the loop
 * =================================================================================== */

static void client_free(kafka_client *c) {
  if (c->fds[0] >= 0) close(c->fds[0]);
  if (c->fds[1] >= 0) close(c->fds[1]);
  rc__host *host = c->host;
  rc__free(c->started);
  rc__free(c);
  rc__host_handle_closed(host);
}

/* On the pool: stops the fetchers and destroys the handle (both wait for its threads). */
static void destroy_work(uv_work_t *w) {
  kafka_client *c = w->data;
  for (int i = 0; i < c->nstarted; i++) rd_kafka_consume_stop(c->rkt, c->started[i]);
  if (c->q) rd_kafka_queue_destroy(c->q);
  if (c->mainq) rd_kafka_queue_destroy(c->mainq);
  if (c->rkt) rd_kafka_topic_destroy(c->rkt);
  if (c->rk) rd_kafka_destroy(c->rk);
}

static void destroy_done(uv_work_t *w, int status) {
  RC__UNUSED(status);
  client_free(w->data);
}

/* The last handle closed and the last job ended: destroy, on the pool. */
static void client_maybe_destroy(kafka_client *c) {
  if (!c->closing || c->handles || c->jobs) return;
  c->destroy.data = c;
  if (!c->rk || uv_queue_work(rc__host_loop(c->host), &c->destroy, destroy_work,
                              destroy_done) != 0) {
    /* No pool (it refused): the loop waits for librdkafka this once. */
    destroy_work(&c->destroy);
    client_free(c);
  }
}

static void client_handle_closed(uv_handle_t *h) {
  kafka_client *c = h->data;
  rc__host_handle_closed(c->host);
  c->handles--;
  client_maybe_destroy(c);
}

/* Detaches the client from its source and starts ending it. */
static void client_close(kafka_client *c) {
  if (!c || c->closing) return;
  c->closing = true;
  c->s = NULL;
  /* The poll handle goes before the pipe does (client_free, after destroy). */
  if (c->inited & 1) uv_close((uv_handle_t *)&c->poll, client_handle_closed);
  if (c->inited & 2) uv_close((uv_handle_t *)&c->drain, client_handle_closed);
  client_maybe_destroy(c);
}

/* librdkafka's log lines would go to stderr from its threads: they are dropped; what
 * matters reaches the error callback. */
static void log_cb(const rd_kafka_t *rk, int level, const char *fac, const char *buf) {
  RC__UNUSED(rk);
  RC__UNUSED(level);
  RC__UNUSED(fac);
  RC__UNUSED(buf);
}

static void kafka_broker_error(kafka_source *s, const char *what);

/* Served by rd_kafka_poll on the loop (the main queue). */
static void error_cb(rd_kafka_t *rk, int err, const char *reason, void *opaque) {
  RC__UNUSED(rk);
  kafka_client *c = opaque;
  if (!c->s || c->closing) return;
  char msg[512];
  snprintf(msg, sizeof msg, "%s: %.400s", rd_kafka_err2name((rd_kafka_resp_err_t)err),
           reason);
  kafka_broker_error(c->s, msg);
}

static void on_poll(uv_poll_t *h, int status, int events) {
  RC__UNUSED(status);
  RC__UNUSED(events);
  client_drain(h->data);
}

static void on_drain_timer(uv_timer_t *t) { client_drain(t->data); }

/* Creates the client for `s`. NULL with `err` filled. */
static kafka_client *client_new(kafka_source *s, rc_error *err) {
  kafka_client *c = rc__calloc(1, sizeof *c);
  if (!c) {
    rc__err(err, RC_ENOMEM, s->shown, 0, 0, "out of memory");
    return NULL;
  }
  c->fds[0] = c->fds[1] = -1;
  c->host = rc__src_host(s->r.ctx);
  rc__host_handle_opened(c->host);  /* the client itself, until client_free */
  c->s = s;
  char errstr[512] = "";
  rd_kafka_conf_t *conf = rd_kafka_conf_new();
  rd_kafka_topic_conf_t *tconf = rd_kafka_topic_conf_new();
  char bmin[32], bmax[32], tmo[32];
  uint64_t bo_min = s->r.backoff.min_ms > 3600000 ? 3600000 : s->r.backoff.min_ms;
  uint64_t bo_max = s->r.backoff.max_ms > 3600000 ? 3600000 : s->r.backoff.max_ms;
  uint32_t sock_ms = s->r.timeout_ms < 10 ? 10 : s->r.timeout_ms;
  snprintf(bmin, sizeof bmin, "%" PRIu64, bo_min);
  snprintf(bmax, sizeof bmax, "%" PRIu64, bo_max);
  snprintf(tmo, sizeof tmo, "%" PRIu32, sock_ms);
  /* Ours first; the policy's `config` after, except what the source depends on
   * (checked by the Lua half). */
  const char *props[] = {
    "bootstrap.servers", s->brokers, "client.id", "reactcfg",
    "enable.partition.eof", "true", "reconnect.backoff.ms", bmin,
    "reconnect.backoff.max.ms", bmax, "socket.timeout.ms", tmo,
    "log.connection.close", "false",
    /* A configuration log that does not exist is an error to report, not a topic to
     * create (librdkafka's consumer default too; the Lua half refuses it in `config`).
     * librdkafka's mock cluster creates topics whatever the request says, so the specs
     * cannot show the missing topic's error. */
    "allow.auto.create.topics", "false", NULL,
  };
  bool ok = conf && tconf;
  for (int i = 0; ok && props[i]; i += 2)
    ok = rd_kafka_conf_set(conf, props[i], props[i + 1], errstr, sizeof errstr) ==
         RD_KAFKA_CONF_OK;
  for (int i = 0; ok && s->config && s->config[i] && s->config[i + 1]; i += 2)
    ok = rd_kafka_conf_set(conf, s->config[i], s->config[i + 1], errstr, sizeof errstr) ==
         RD_KAFKA_CONF_OK;
  /* A partition whose beginning was removed by retention is read from its new start. */
  ok = ok && rd_kafka_topic_conf_set(tconf, "auto.offset.reset", "earliest", errstr,
                                     sizeof errstr) == RD_KAFKA_CONF_OK;
  if (!ok) {
    if (conf) rd_kafka_conf_destroy(conf);
    if (tconf) rd_kafka_topic_conf_destroy(tconf);
    rc__err(err, RC_EPOLICY, s->shown, 0, 0, "librdkafka refused the configuration: %s",
            errstr[0] ? errstr : "out of memory");
    client_free(c);
    return NULL;
  }
  /* The SASL password comes from password_env / password_file (never the policy), read
   * when the client is made: at start, and so at every start after a reload. */
  rc_error te = {0};
  const char *pw = ok ? rc__token_get(&s->r.token, &te) : NULL;
  if (te.code) {
    rd_kafka_conf_destroy(conf);
    rd_kafka_topic_conf_destroy(tconf);
    *err = te;
    client_free(c);
    return NULL;
  }
  if (pw && rd_kafka_conf_set(conf, "sasl.password", pw, errstr, sizeof errstr) !=
              RD_KAFKA_CONF_OK) {
    rd_kafka_conf_destroy(conf);
    rd_kafka_topic_conf_destroy(tconf);
    /* librdkafka's message could quote the value: not shown. */
    rc__err(err, RC_EPOLICY, s->shown, 0, 0, "librdkafka refused the SASL password");
    client_free(c);
    return NULL;
  }
  rd_kafka_conf_set_opaque(conf, c);
  rd_kafka_conf_set_log_cb(conf, log_cb);
  rd_kafka_conf_set_error_cb(conf, error_cb);
  c->rk = rd_kafka_new(RD_KAFKA_CONSUMER, conf, errstr, sizeof errstr);
  if (!c->rk) {
    rd_kafka_conf_destroy(conf);
    rd_kafka_topic_conf_destroy(tconf);
    rc__err(err, RC_EIO, s->shown, 0, 0, "cannot create the Kafka client: %s", errstr);
    client_free(c);
    return NULL;
  }
  c->rkt = rd_kafka_topic_new(c->rk, s->topic, tconf);  /* takes tconf */
  if (!c->rkt) rd_kafka_topic_conf_destroy(tconf);
  c->q = rd_kafka_queue_new(c->rk);
  c->mainq = rd_kafka_queue_get_main(c->rk);
  uv_loop_t *loop = rc__src_loop(s->r.ctx);
  int rc = !c->rkt || !c->q || !c->mainq ? UV_ENOMEM : 0;
  if (!rc && pipe2(c->fds, O_NONBLOCK | O_CLOEXEC) != 0) rc = uv_translate_sys_error(errno);
  if (!rc) rc = uv_poll_init(loop, &c->poll, c->fds[0]);
  if (!rc) {
    c->poll.data = c;
    c->inited |= 1;
    c->handles++;
    rc__host_handle_opened(c->host);
    rc = uv_timer_init(loop, &c->drain);
  }
  if (!rc) {
    c->drain.data = c;
    c->inited |= 2;
    c->handles++;
    rc__host_handle_opened(c->host);
    rc = uv_poll_start(&c->poll, UV_READABLE, on_poll);
  }
  if (rc) {
    rc__err(err, RC_ESYS, s->shown, 0, 0, "cannot watch the Kafka client: %s",
            uv_strerror(rc));
    client_close(c);
    return NULL;
  }
  static const char one = 1;
  rd_kafka_queue_io_event_enable(c->q, c->fds[1], &one, 1);
  rd_kafka_queue_io_event_enable(c->mainq, c->fds[1], &one, 1);
  return c;
}

/* ===================================================================================
 * Keys
 * =================================================================================== */

static uint32_t key_hash(const char *k, size_t n) { return (uint32_t)rc__hash64(k, n); }

/* The entry of key `k` (creating it when `create`), or NULL (absent, or out of memory:
 * *oom set). */
static kafka_entry *entry_for(kafka_source *s, const char *k, size_t n, bool create,
                              bool *oom) {
  if (s->index_cap) {
    size_t mask = s->index_cap - 1;
    for (size_t i = key_hash(k, n) & mask;; i = (i + 1) & mask) {
      uint32_t e = s->index[i];
      if (!e) break;
      kafka_entry *en = &s->entries[e - 1];
      if (en->klen == n && memcmp(en->key, k, n) == 0) return en;
    }
  }
  if (!create) return NULL;
  if ((s->nentries + 1) * 2 > s->index_cap) {
    size_t cap = s->index_cap ? s->index_cap * 2 : 64;
    uint32_t *idx = rc__calloc(cap, sizeof *idx);
    if (!idx) goto oom;
    for (size_t j = 0; j < s->nentries; j++) {
      size_t i = key_hash(s->entries[j].key, s->entries[j].klen) & (cap - 1);
      while (idx[i]) i = (i + 1) & (cap - 1);
      idx[i] = (uint32_t)j + 1;
    }
    rc__free(s->index);
    s->index = idx;
    s->index_cap = cap;
  }
  if (RC__GROW(s->entries, s->entries_cap, s->nentries + 1, 32)) goto oom;
  char *key = rc__strndup(k, n);
  if (!key) goto oom;
  kafka_entry *en = &s->entries[s->nentries++];
  *en = (kafka_entry){.key = key, .klen = n};
  size_t i = key_hash(k, n) & (s->index_cap - 1);
  while (s->index[i]) i = (i + 1) & (s->index_cap - 1);
  s->index[i] = (uint32_t)s->nentries;
  return en;
oom:
  *oom = true;
  return NULL;
}

static void entries_free(kafka_source *s) {
  for (size_t i = 0; i < s->nentries; i++) {
    rc__free(s->entries[i].key);
    rc__free(s->entries[i].raw);
    rc__value_unref(s->entries[i].value);
  }
  rc__free(s->entries);
  rc__free(s->index);
  s->entries = NULL;
  s->index = NULL;
  s->nentries = s->entries_cap = s->index_cap = 0;
}

/* "the key 'x'" or "the record without a key", for messages. */
static void key_name(char *out, size_t n, const kafka_entry *en) {
  snprintf(out, n, "key '%.*s'", (int)(en->klen > 200 ? 200 : en->klen), en->key);
}

/* Keeps one record (the latest so far of its key). */
static void take_record(kafka_source *s, const rd_kafka_message_t *m) {
  const char *k = m->key;
  size_t klen = m->key ? m->key_len : 0;
  if (s->key) {
    if (!k || klen != s->key_len || memcmp(k, s->key, klen) != 0) return;
  } else if (!k) {
    s->skipped_nokey++;  /* a record without a key belongs to no key */
    return;
  }
  bool oom = false;
  kafka_entry *en = entry_for(s, k, klen, true, &oom);
  rc_error e = {0};
  if (!en) {
    rc__err(&e, RC_ENOMEM, s->shown, 0, 0, "out of memory");
    rc__src_error(s->r.ctx, &e);
    return;
  }
  rc__free(en->raw);
  en->raw = NULL;
  en->raw_len = 0;
  en->pending = true;
  en->tomb = m->payload == NULL;
  en->partition = m->partition;
  en->offset = m->offset;
  /* Refused before it is copied; reported only if no later record replaces it. */
  en->too_big = !en->tomb && m->len > s->r.max_bytes;
  s->dirty = true;
  if (en->tomb || en->too_big) return;
  en->raw = rc__malloc(m->len + 1);
  if (!en->raw) {
    en->pending = false;
    rc__err(&e, RC_ENOMEM, s->shown, 0, 0, "out of memory");
    rc__src_error(s->r.ctx, &e);
    return;
  }
  memcpy(en->raw, m->payload, m->len);
  en->raw[m->len] = '\0';
  en->raw_len = m->len;
}

static int cmp_entry(const void *a, const void *b) {
  const kafka_entry *x = *(kafka_entry *const *)a, *y = *(kafka_entry *const *)b;
  size_t n = x->klen < y->klen ? x->klen : y->klen;
  int c = memcmp(x->key, y->key, n);
  return c ? c : (x->klen > y->klen) - (x->klen < y->klen);
}

/* Applies the pending records (each key's latest parsed now) and delivers the value if
 * it changed. A record that does not parse is an error of its key. */
static void deliver_current(kafka_source *s) {
  rc__remote *r = &s->r;
  if (!s->complete || !s->dirty) return;
  s->dirty = false;
  rc_error first = {0};
  size_t nerr = 0, total = 0, present = 0;
  for (size_t i = 0; i < s->nentries; i++) {
    kafka_entry *en = &s->entries[i];
    if (en->pending) {
      en->pending = false;
      if (en->tomb) {
        rc__value_unref(en->value);
        en->value = NULL;
        en->bytes = 0;
      } else if (en->too_big) {
        /* The key keeps its last good value. */
        char name[256];
        key_name(name, sizeof name, en);
        if (nerr++ == 0)
          rc__err(&first, RC_ELIMIT, s->shown, 0, 0, "the record of %s at partition %"
                  PRId32 " offset %" PRId64 " is larger than max_bytes (%zu bytes)", name,
                  en->partition, en->offset, r->max_bytes);
      } else {
        char where[512];
        char name[256];
        key_name(name, sizeof name, en);
        snprintf(where, sizeof where, "%s (%s)", s->shown, name);
        rc_value_t *v = NULL;
        rc_error e = {0};
        if (rc__remote_parse(r, s->fmt, en->raw, en->raw_len, where, &v, &e) == 0) {
          rc__value_unref(en->value);
          en->value = v;
          en->bytes = en->raw_len;
        } else if (nerr++ == 0) {
          first = e;
        }
        rc__free(en->raw);
        en->raw = NULL;
        en->raw_len = 0;
      }
    }
    if (en->value) {
      total += en->bytes;
      present++;
    }
  }
  rc_value_t *v = NULL;
  rc_error e = {0};
  if (total > r->max_bytes) {
    rc__err(&e, RC_ELIMIT, s->shown, 0, 0, "the latest records of the topic's keys are "
            "larger than max_bytes together (%zu bytes)", r->max_bytes);
  } else if (s->key) {
    v = s->nentries ? rc__value_ref(s->entries[0].value) : NULL;
  } else if (present > r->limits.max_nodes) {
    rc__err(&e, RC_ELIMIT, s->shown, 0, 0, "the topic has more than %zu keys",
            r->limits.max_nodes);
  } else if (present) {
    kafka_entry **list = rc__malloc(present * sizeof *list);
    if (list) {
      size_t n = 0;
      for (size_t i = 0; i < s->nentries; i++)
        if (s->entries[i].value) list[n++] = &s->entries[i];
      qsort(list, n, sizeof *list, cmp_entry);
      rc__object_builder b;
      rc__object_begin(&b);
      for (size_t i = 0; i < n; i++)
        rc__object_put(&b, list[i]->key, list[i]->klen, rc__value_ref(list[i]->value));
      rc__free(list);
      v = rc__object_end(&b);
    }
    if (!v) rc__err(&e, RC_ENOMEM, s->shown, 0, 0, "out of memory");
  }
  if (e.code) {
    rc__src_error(r->ctx, &e);
    return;
  }
  /* The other keys' changes apply even when one key's record is bad; an unchanged
   * value is not delivered again then (that would report a recovery). */
  bool same = r->delivered &&
              ((!v && !r->last) || (v && r->last && rc_value_equal(v, r->last)));
  if (nerr == 0 || !same) rc__remote_deliver(r, v);
  else rc__value_unref(v);
  if (nerr && !r->stopping) {
    if (nerr > 1) {
      char more[64];
      snprintf(more, sizeof more, " (and %zu more keys)", nerr - 1);
      size_t l = strlen(first.message);
      snprintf(first.message + l, sizeof first.message - l, "%s", more);
    }
    rc__src_error(r->ctx, &first);
  }
}

/* ===================================================================================
 * Records and events
 * =================================================================================== */

static int part_index(const kafka_source *s, int32_t id) {
  for (int i = 0; i < s->nparts; i++)
    if (s->part_ids[i] == id) return i;
  return -1;
}

/* Whether every partition reached the high watermark it had at start. */
static bool all_reached(const kafka_source *s) {
  for (int i = 0; i < s->nparts; i++)
    if (!s->reached[i]) return false;
  return true;
}

static void take_message(kafka_source *s, const rd_kafka_message_t *m) {
  int p = part_index(s, m->partition);
  if (m->err == RD_KAFKA_RESP_ERR__PARTITION_EOF) {
    if (p >= 0 && m->offset >= s->start_hi[p]) s->reached[p] = true;
    return;
  }
  if (m->err) {
    rc_error e = {0};
    rc__err(&e, RC_EIO, s->shown, 0, 0, "Kafka: %s (partition %" PRId32 "): %.300s",
            rd_kafka_err2name(m->err), m->partition, rd_kafka_message_errstr(m));
    kafka_broker_error(s, e.message);
    return;
  }
  if (p >= 0 && m->offset + 1 >= s->start_hi[p]) s->reached[p] = true;
  take_record(s, m);
}

/* A record arrived, or a probe worked: a reported broker failure is over. */
static void broker_ok(kafka_source *s) {
  if (!s->broken) return;
  s->broken = false;
  rc__remote_success(&s->r);
  if (s->complete && !s->dirty) rc__remote_unchanged(&s->r);
}

/* Takes what librdkafka has queued: the main queue's callbacks, then up to a batch of
 * messages; the pipe is emptied first, so a message queued meanwhile writes to it
 * again. */
static void client_drain(kafka_client *c) {
  if (c->closing) return;
  char junk[256];
  while (read(c->fds[0], junk, sizeof junk) > 0) {
  }
  rd_kafka_poll(c->rk, 0);
  kafka_source *s = c->s;
  bool got = false;
  for (int n = 0; s && c->s == s && n < KAFKA_DRAIN_BATCH; n++) {
    rd_kafka_message_t *m = rd_kafka_consume_queue(c->q, 0);
    if (!m) goto drained;
    if (!m->err) got = true;
    take_message(s, m);
    rd_kafka_message_destroy(m);
  }
  /* A full batch: the rest on the next turn (the pipe is written only when a queue
   * turns non-empty). */
  if (!c->closing) uv_timer_start(&c->drain, on_drain_timer, 0, 0);
drained:
  if (!s || c->s != s || s->r.stopping) return;
  if (got) broker_ok(s);
  if (s->r.stopping) return;
  if (!s->complete && s->discovered && all_reached(s)) {
    s->complete = true;
    s->dirty = true;
    if (s->skipped_nokey)
      rc__src_state(s->r.ctx, s->shown, 0, "%zu records without a key were skipped",
                    s->skipped_nokey);
  }
  deliver_current(s);
}

/* ===================================================================================
 * Metadata and watermarks, on the thread pool
 * =================================================================================== */

static void discover_work(uv_work_t *w) {
  kafka_discover *d = w->data;
  kafka_client *c = d->c;
  const struct rd_kafka_metadata *md = NULL;
  d->err = rd_kafka_metadata(c->rk, 0, c->rkt, &md, (int)d->timeout_ms);
  if (d->err) {
    snprintf(d->msg, sizeof d->msg, "cannot read the topic's metadata: %s",
             rd_kafka_err2str(d->err));
    return;
  }
  const struct rd_kafka_metadata_topic *t = md->topic_cnt == 1 ? &md->topics[0] : NULL;
  if (!t || t->err) {
    d->err = t ? t->err : RD_KAFKA_RESP_ERR__UNKNOWN_TOPIC;
    snprintf(d->msg, sizeof d->msg, "%s", d->err == RD_KAFKA_RESP_ERR_UNKNOWN_TOPIC_OR_PART
             ? "the topic does not exist" : rd_kafka_err2str(d->err));
  } else if (t->partition_cnt <= 0) {
    d->err = RD_KAFKA_RESP_ERR__UNKNOWN_PARTITION;
    snprintf(d->msg, sizeof d->msg, "the topic has no partitions");
  } else {
    d->nparts = t->partition_cnt;
    d->ids = rc__calloc((size_t)d->nparts, sizeof *d->ids);
    d->lo = rc__calloc((size_t)d->nparts, sizeof *d->lo);
    d->hi = rc__calloc((size_t)d->nparts, sizeof *d->hi);
    if (!d->ids || !d->lo || !d->hi) {
      d->err = RD_KAFKA_RESP_ERR__FAIL;
      snprintf(d->msg, sizeof d->msg, "out of memory");
    }
    for (int i = 0; !d->err && i < d->nparts; i++) {
      d->ids[i] = t->partitions[i].id;
      if (!d->watermarks) continue;
      d->err = rd_kafka_query_watermark_offsets(c->rk, rd_kafka_topic_name(c->rkt),
                                                d->ids[i], &d->lo[i], &d->hi[i],
                                                (int)d->timeout_ms);
      if (d->err)
        snprintf(d->msg, sizeof d->msg, "cannot read the end of partition %" PRId32 ": %s",
                 d->ids[i], rd_kafka_err2str(d->err));
    }
  }
  rd_kafka_metadata_destroy(md);
}

static void discover_free(kafka_discover *d) {
  rc__free(d->ids);
  rc__free(d->lo);
  rc__free(d->hi);
  rc__free(d);
}

static void discover_done(uv_work_t *w, int status) {
  kafka_discover *d = w->data;
  kafka_client *c = d->c;
  c->jobs--;
  if (status == UV_ECANCELED) {
    d->err = RD_KAFKA_RESP_ERR__DESTROY;
    snprintf(d->msg, sizeof d->msg, "cancelled");
  }
  if (c->s && !c->closing) discovered(c->s, d);
  discover_free(d);
  client_maybe_destroy(c);
}

/* Asks the topic's partitions (and, before the first read, their high watermarks). */
static void discover(kafka_source *s) {
  if (s->discovering || !s->c) return;
  rc_error e = {0};
  kafka_discover *d = rc__calloc(1, sizeof *d);
  if (!d) {
    rc__err(&e, RC_ENOMEM, s->shown, 0, 0, "out of memory");
    rc__remote_fail(&s->r, &e, 0);
    return;
  }
  d->c = s->c;
  d->timeout_ms = s->r.timeout_ms;
  d->watermarks = !s->discovered;
  d->work.data = d;
  if (uv_queue_work(rc__src_loop(s->r.ctx), &d->work, discover_work, discover_done) != 0) {
    rc__free(d);
    rc__err(&e, RC_ESYS, s->shown, 0, 0, "the thread pool refused work");
    rc__remote_fail(&s->r, &e, 0);
    return;
  }
  s->c->jobs++;
  s->discovering = true;
}

/* Starts fetching partitions of `d` not yet fetched, from their beginning. */
static int start_partitions(kafka_source *s, const kafka_discover *d, rc_error *err) {
  kafka_client *c = s->c;
  int n = s->nparts;
  int32_t *ids = rc__realloc(s->part_ids, (size_t)(n + d->nparts) * sizeof *ids);
  if (ids) s->part_ids = ids;
  int64_t *hi = rc__realloc(s->start_hi, (size_t)(n + d->nparts) * sizeof *hi);
  if (hi) s->start_hi = hi;
  bool *reached = rc__realloc(s->reached, (size_t)(n + d->nparts) * sizeof *reached);
  if (reached) s->reached = reached;
  int32_t *started = rc__realloc(c->started, (size_t)(n + d->nparts) * sizeof *started);
  if (started) c->started = started;
  if (!ids || !hi || !reached || !started)
    return rc__err(err, RC_ENOMEM, s->shown, 0, 0, "out of memory");
  for (int i = 0; i < d->nparts; i++) {
    if (part_index(s, d->ids[i]) >= 0) continue;
    if (rd_kafka_consume_start_queue(c->rkt, d->ids[i], RD_KAFKA_OFFSET_BEGINNING,
                                     c->q) != 0)
      return rc__err(err, RC_EIO, s->shown, 0, 0, "cannot read partition %" PRId32 ": %s",
                     d->ids[i], rd_kafka_err2str(rd_kafka_last_error()));
    c->started[c->nstarted++] = d->ids[i];
    s->part_ids[s->nparts] = d->ids[i];
    /* Known at the first discovery; a partition added later counts as reached. */
    s->start_hi[s->nparts] = d->watermarks ? d->hi[i] : 0;
    s->reached[s->nparts] = !d->watermarks || d->hi[i] <= d->lo[i];
    s->nparts++;
  }
  return 0;
}

static void discovered(kafka_source *s, kafka_discover *d) {
  s->discovering = false;
  rc_error e = {0};
  if (d->err) {
    rc__err(&e, RC_EIO, s->shown, 0, 0, "Kafka: %s", d->msg);
    s->broken = true;
    rc__remote_fail(&s->r, &e, 0);
    return;
  }
  if (start_partitions(s, d, &e) != 0) {
    s->broken = true;
    rc__remote_fail(&s->r, &e, 0);
    return;
  }
  bool first = !s->discovered;
  s->discovered = true;
  if (first) {
    s->broken = false;
    rc__remote_success(&s->r);
    client_drain(s->c);  /* an empty topic is complete at once */
  } else {
    broker_ok(s);
  }
  rc__remote_schedule(&s->r, KAFKA_REFRESH_MS);
}

/* A failure of the brokers (or of the client's link to them): reported once per
 * outage; the remote driver's retries probe until it is over. */
static void kafka_broker_error(kafka_source *s, const char *what) {
  if (s->broken || s->r.stopping) return;
  s->broken = true;
  rc_error e = {0};
  rc__err(&e, RC_EIO, s->shown, 0, 0, "Kafka: %s", what);
  rc__remote_fail(&s->r, &e, 0);
}

/* ===================================================================================
 * The source
 * =================================================================================== */

/* Makes the client and asks the topic's partitions. A configuration librdkafka refuses
 * is the policy's error (RC_EPOLICY, returned); anything else (the password's variable
 * unset) is a failure retried on the backoff schedule. */
static int connect_client(kafka_source *s, rc_error *err) {
  rc_error e = {0};
  s->c = client_new(s, &e);
  if (s->c) {
    discover(s);
    return 0;
  }
  if (e.code == RC_EPOLICY) {
    *err = e;
    return e.code;
  }
  s->broken = true;
  rc__remote_fail(&s->r, &e, 0);
  return 0;
}

/* The remote timer: the first discovery, a probe while brokers fail, the periodic look
 * for new partitions, or a new try at making the client. */
static void tick(rc__remote *r) {
  kafka_source *s = (kafka_source *)r;
  rc_error e = {0};
  if (s->c) discover(s);
  else if (connect_client(s, &e) != 0) rc__remote_fail(r, &e, 0);
}

static int kafka_start(rc__source *base, rc_error *err) {
  kafka_source *s = (kafka_source *)base;
  int rc = rc__remote_start(&s->r, tick, err);
  return rc ? rc : connect_client(s, err);
}

/* password_env may be set now: a source without a client tries again at once. */
static void kafka_env_changed(rc__source *base) {
  kafka_source *s = (kafka_source *)base;
  if (!s->c) rc__remote_schedule(&s->r, 0);
}

static void kafka_stop(rc__source *base, void (*done)(rc__source *)) {
  kafka_source *s = (kafka_source *)base;
  client_close(s->c);
  s->c = NULL;
  rc__remote_stop(&s->r, done);
}

static void kafka_free(rc__source *base) {
  kafka_source *s = (kafka_source *)base;
  entries_free(s);
  rc__free(s->part_ids);
  rc__free(s->start_hi);
  rc__free(s->reached);
  rc__opt_list_free(s->config);
  rc__free(s->shown);
  rc__remote_free(&s->r);
  rc__free(s);
}

static rc__source *kafka_create(rc__source_ctx *ctx, rc_error *err) {
  kafka_source *s = rc__remote_new(sizeof *s, ctx, err);
  if (!s) return NULL;
  s->brokers = rc__opt_string(ctx, "brokers");
  s->topic = rc__opt_string(ctx, "topic");
  s->key = rc__opt_string(ctx, "kafka_key");
  s->key_len = s->key ? strlen(s->key) : 0;
  s->fmt = rc__opt_format(ctx, RC__FMT_JSON);
  if (s->fmt == RC__FMT_AUTO) s->fmt = RC__FMT_JSON;
  s->config = rc__opt_list(ctx, "config");
  if (!s->brokers || !s->topic || (rc__opt(ctx, "config") && !s->config)) {
    if (!s->brokers || !s->topic)
      rc__src_policy_error(ctx, err, "kafka source needs brokers and a topic");
    else
      rc__err(err, RC_ENOMEM, NULL, 0, 0, "out of memory");
    kafka_free(&s->r.base);
    return NULL;
  }
  /* librdkafka judges the policy's properties here, at load, not at the first start. */
  if (s->config) {
    char errstr[512] = "";
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    bool ok = conf != NULL;
    for (int i = 0; ok && s->config[i] && s->config[i + 1]; i += 2)
      ok = rd_kafka_conf_set(conf, s->config[i], s->config[i + 1], errstr, sizeof errstr) ==
           RD_KAFKA_CONF_OK;
    if (conf) rd_kafka_conf_destroy(conf);
    if (!ok) {
      rc__src_policy_error(ctx, err, "librdkafka refused the configuration: %s",
                           errstr[0] ? errstr : "out of memory");
      kafka_free(&s->r.base);
      return NULL;
    }
  }
  const char *target = rc__opt_string(ctx, "target");
  s->shown = rc__strdup(target ? target : s->topic);
  if (!s->shown) {
    rc__err(err, RC_ENOMEM, NULL, 0, 0, "out of memory");
    kafka_free(&s->r.base);
    return NULL;
  }
  return &s->r.base;
}

static const rc__opt_default kafka_defaults[] = {
  RC__REMOTE_DEFAULTS, {"timeout_ms", 5000}, {NULL, 0},
};

const rc__source_kind rc__kafka_kind = {
  .name = "kafka", .flags = RC__SRC_REMOTE, .defaults = kafka_defaults,
  .create = kafka_create, .start = kafka_start, .stop = kafka_stop, .free = kafka_free,
  .env_changed = kafka_env_changed,
};
