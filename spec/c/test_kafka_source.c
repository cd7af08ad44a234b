/* SPDX-License-Identifier: MIT (see LICENSE) */
/* test_kafka_source.c: rc.kafka end to end through the public C API against librdkafka's
 * mock cluster (in this process: Debian has no Kafka broker), so that the sanitizer build
 * checks its paths for leaks and memory errors (busted runs without leak checks): the
 * log read at start (latest record per key, a tombstone), a record followed, a bad
 * record, the broker down and up again (an error, then the recovery), and the engine
 * freed while the source probes the down broker on the thread pool. Waits are bounded
 * loop runs, never timing assertions. */
#include "harness.h"

#include <librdkafka/rdkafka.h>
#include <librdkafka/rdkafka_mock.h>

static rd_kafka_t *producer;
static rd_kafka_mock_cluster_t *cluster;

static void quiet(const rd_kafka_t *rk, int level, const char *fac, const char *buf) {
  (void)rk, (void)level, (void)fac, (void)buf;
}

static void produce(const char *topic, int partition, const char *key, const char *value) {
  rd_kafka_resp_err_t err = rd_kafka_producev(
    producer, RD_KAFKA_V_TOPIC(topic), RD_KAFKA_V_PARTITION(partition),
    RD_KAFKA_V_KEY(key, key ? strlen(key) : 0),
    RD_KAFKA_V_VALUE((void *)value, value ? strlen(value) : 0),
    RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY), RD_KAFKA_V_END);
  if (!err) err = rd_kafka_flush(producer, 10000);
  CHECK_EQ_STR(rd_kafka_err2name(err), "NO_ERROR");
}

static void test_log_outage_and_free(void) {
  const char *boot = rd_kafka_mock_cluster_bootstraps(cluster);
  CHECK_EQ_INT(rd_kafka_mock_topic_create(cluster, "cfg", 2, 1), 0);
  produce("cfg", 0, "a", "{\"v\": 1}");
  produce("cfg", 1, "gone", "1");
  produce("cfg", 1, "gone", NULL);
  produce("cfg", 0, "a", "{\"v\": 2}");
  harness h = {0};
  h_tmpdir(&h, "kafka");
  char policy[2048];
  snprintf(policy, sizeof policy,
           "local rc = require 'reactcfg'\n"
           "local opts = { brokers = '%s', topic = 'cfg', timeout = '300ms',\n"
           "  backoff = { min = '20ms', max = '100ms' }, circuit = false }\n"
           "local one = {}\n"
           "for k, v in pairs(opts) do one[k] = v end\n"
           "one.key = 'a'\n"
           "return rc.policy { components = {\n"
           "  all = { source = rc.kafka(opts) },\n"
           "  one = { source = rc.kafka(one) },\n"
           "} }\n",
           boot);
  CHECK_EQ_INT(h_start(&h, policy), 0);
  CHECK(h_find_change(&h, "added all - {\"a\":{\"v\":2}}") >= 0);
  CHECK(h_find_change(&h, "added one - {\"v\":2}") >= 0);
  produce("cfg", 1, "b", "[1, 2]");
  h_run(&h, h.commits + 1, -1, 5000, 50);
  CHECK(h_find_change(&h, "added all.b - [1,2]") >= 0);
  produce("cfg", 1, "b", "{bad");
  h_run(&h, 0, h.errors + 1, 5000, 50);
  CHECK(strstr(h.last_error, "(key 'b')") != NULL);
  /* The broker goes down: one error per component; back up: a record, the recovery. */
  int errors = h.errors;
  CHECK_EQ_INT(rd_kafka_mock_broker_set_down(cluster, -1), 0);
  h_run(&h, 0, errors + 2, 10000, 300);
  CHECK(h.errors >= errors + 2);
  CHECK_EQ_INT(rd_kafka_mock_broker_set_up(cluster, -1), 0);
  int recovered = h.recovered;
  produce("cfg", 0, "a", "{\"v\": 3}");
  for (int i = 0; i < 200 && (h.recovered < recovered + 2 ||
                              h_find_change(&h, "modified one.v 2 3") < 0); i++)
    h_run(&h, 0, -1, 0, 50);  /* 50 ms of the loop */
  CHECK(h.recovered >= recovered + 2);
  CHECK(h_find_change(&h, "modified one.v 2 3") >= 0);
  /* Down again, and freed while the probes wait for it on the thread pool. */
  CHECK_EQ_INT(rd_kafka_mock_broker_set_down(cluster, -1), 0);
  h_run(&h, 0, h.errors + 1, 10000, 100);
  CHECK(h_finish(&h));
  CHECK_EQ_INT(rd_kafka_mock_broker_set_up(cluster, -1), 0);
}

int main(void) {
  char errstr[256];
  rd_kafka_conf_t *conf = rd_kafka_conf_new();
  rd_kafka_conf_set(conf, "test.mock.num.brokers", "1", errstr, sizeof errstr);
  rd_kafka_conf_set(conf, "linger.ms", "0", errstr, sizeof errstr);
  rd_kafka_conf_set_log_cb(conf, quiet);
  producer = rd_kafka_new(RD_KAFKA_PRODUCER, conf, errstr, sizeof errstr);
  cluster = producer ? rd_kafka_handle_mock_cluster(producer) : NULL;
  CHECK(cluster != NULL);
  if (cluster) test_log_outage_and_free();
  if (producer) rd_kafka_destroy(producer);
  return check_report("test_kafka_source");
}
