/* SPDX-License-Identifier: MIT (see LICENSE) */
/* kafka_mock.c: a Kafka cluster for the rc.kafka specs. Debian has no Kafka broker, so
 * this is librdkafka's mock cluster (a Kafka protocol implementation inside librdkafka,
 * rdkafka_mock.h) in a process of its own, plus a producer that writes into it. The
 * spec drives it through two FIFOs in a directory it made (spec/lua/kafka.lua):
 *   DIR/cmd  one command per line, from the spec:
 *     topic NAME PARTITIONS              create a topic
 *     produce TOPIC PARTITION KEY VALUE  one record; KEY and VALUE in hex, "-" = null
 *                                        (a null value is a tombstone); waits until
 *                                        the cluster acknowledged it
 *     down ID | up ID                    a broker (-1: all) refuses connections / is back
 *     quit
 *   DIR/ack  one line per command: "ok" or "error <why>"; first "LISTENING <bootstraps>".
 * Usage: kafka-mock DIR [BROKERS] */
#include <librdkafka/rdkafka.h>
#include <librdkafka/rdkafka_mock.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static rd_kafka_resp_err_t last_dr;

static void dr_cb(rd_kafka_t *rk, const rd_kafka_message_t *m, void *opaque) {
  (void)rk;
  (void)opaque;
  last_dr = m->err;
}

static void quiet(const rd_kafka_t *rk, int level, const char *fac, const char *buf) {
  (void)rk;
  (void)level;
  (void)fac;
  (void)buf;
}

/* Decodes hex `s` into a new buffer (*len bytes); "-" is NULL. */
static char *unhex(const char *s, size_t *len) {
  *len = 0;
  if (strcmp(s, "-") == 0) return NULL;
  size_t n = strlen(s) / 2;
  char *out = malloc(n + 1);
  for (size_t i = 0; i < n; i++) {
    unsigned v;
    sscanf(s + 2 * i, "%2x", &v);
    out[i] = (char)v;
  }
  *len = n;
  return out;
}

int main(int argc, char **argv) {
  if (argc < 2) {
    fprintf(stderr, "usage: kafka-mock DIR [BROKERS]\n");
    return 2;
  }
  const char *brokers = argc > 2 ? argv[2] : "1";
  char errstr[512], path[4096];
  rd_kafka_conf_t *conf = rd_kafka_conf_new();
  if (rd_kafka_conf_set(conf, "test.mock.num.brokers", brokers, errstr, sizeof errstr) ||
      rd_kafka_conf_set(conf, "linger.ms", "0", errstr, sizeof errstr) ||
      rd_kafka_conf_set(conf, "message.timeout.ms", "10000", errstr, sizeof errstr)) {
    fprintf(stderr, "kafka-mock: %s\n", errstr);
    return 1;
  }
  rd_kafka_conf_set_dr_msg_cb(conf, dr_cb);
  rd_kafka_conf_set_log_cb(conf, quiet);
  rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, errstr, sizeof errstr);
  if (!rk) {
    fprintf(stderr, "kafka-mock: %s\n", errstr);
    return 1;
  }
  rd_kafka_mock_cluster_t *mc = rd_kafka_handle_mock_cluster(rk);
  snprintf(path, sizeof path, "%s/cmd", argv[1]);
  FILE *in = fopen(path, "r");
  snprintf(path, sizeof path, "%s/ack", argv[1]);
  FILE *out = fopen(path, "w");
  if (!mc || !in || !out) {
    fprintf(stderr, "kafka-mock: no mock cluster or no FIFOs in %s\n", argv[1]);
    return 1;
  }
  setvbuf(out, NULL, _IOLBF, 0);
  fprintf(out, "LISTENING %s\n", rd_kafka_mock_cluster_bootstraps(mc));
  char line[1 << 16];
  while (fgets(line, sizeof line, in)) {
    char cmd[32] = "", a[256] = "", c[sizeof line] = "", d[sizeof line] = "";
    int b = 0;
    int n = sscanf(line, "%31s %255s %d %s %s", cmd, a, &b, c, d);
    rd_kafka_resp_err_t err = RD_KAFKA_RESP_ERR_NO_ERROR;
    if (strcmp(cmd, "quit") == 0) {
      fprintf(out, "ok\n");
      break;
    } else if (strcmp(cmd, "topic") == 0 && n >= 3) {
      err = rd_kafka_mock_topic_create(mc, a, b, 1);
    } else if (strcmp(cmd, "produce") == 0 && n == 5) {
      size_t klen, vlen;
      char *key = unhex(c, &klen), *val = unhex(d, &vlen);
      last_dr = RD_KAFKA_RESP_ERR__IN_PROGRESS;
      err = rd_kafka_producev(rk, RD_KAFKA_V_TOPIC(a), RD_KAFKA_V_PARTITION(b),
                              RD_KAFKA_V_KEY(key, klen), RD_KAFKA_V_VALUE(val, vlen),
                              RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY), RD_KAFKA_V_END);
      if (!err) err = rd_kafka_flush(rk, 15000);
      if (!err) err = last_dr;
      free(key);
      free(val);
    } else if ((strcmp(cmd, "down") == 0 || strcmp(cmd, "up") == 0) && n >= 2) {
      int id = atoi(a);
      err = strcmp(cmd, "down") == 0 ? rd_kafka_mock_broker_set_down(mc, id)
                                     : rd_kafka_mock_broker_set_up(mc, id);
    } else {
      fprintf(out, "error unknown command\n");
      continue;
    }
    if (err) fprintf(out, "error %s\n", rd_kafka_err2str(err));
    else fprintf(out, "ok\n");
  }
  rd_kafka_destroy(rk);
  return 0;
}
