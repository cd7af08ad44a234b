/* SPDX-License-Identifier: MIT (see LICENSE) */
/* metrics.c: the metrics registry (metrics.h) and its Prometheus text exposition (format
 * 0.0.4), rc_engine_metrics_text. Values are written by the loop thread and read here from
 * any thread; a histogram read while the loop observes may show the newest observation
 * in its buckets and not yet in its sum, never a count that disagrees with its buckets
 * (the count is the sum of the buckets read). */
#include "engine.h"
#include "registry.h"

#include <stdio.h>
#include <string.h>

/* Upper bounds of the histogram buckets, in ns and as written in `le`. */
static const uint64_t BOUND_NS[RC__HIST_BOUNDS] = {
  50000, 100000, 250000, 500000, 1000000, 2500000, 5000000, 10000000, 25000000, 50000000,
  100000000, 250000000, 500000000, 1000000000, 2500000000, 5000000000, 10000000000,
};
static const char *const BOUND_TEXT[RC__HIST_BOUNDS] = {
  "5e-05", "0.0001", "0.00025", "0.0005", "0.001", "0.0025", "0.005", "0.01", "0.025",
  "0.05", "0.1", "0.25", "0.5", "1", "2.5", "5", "10",
};

void rc__observe(rc__histogram *h, uint64_t ns) {
  size_t i = 0;
  while (i < RC__HIST_BOUNDS && ns > BOUND_NS[i]) i++;
  rc__count(&h->bucket[i], 1);
  rc__count(&h->sum_ns, ns);
}

rc__trigger_kind rc__trigger_kind_of(const char *t) {
  static const char *const NAMES[RC__TRIG_N - 1] = {"source", "request", "signal", "push",
                                                    "policy", "rollback", "unpin"};
  for (int i = 0; i < RC__TRIG_N - 1; i++) {
    size_t n = strlen(NAMES[i]);
    if (strncmp(t, NAMES[i], n) == 0 && (t[n] == '\0' || t[n] == ':')) return (rc__trigger_kind)i;
  }
  return RC__TRIG_OTHER;
}

/* ---- the registry ---- */

void rc__metrics_init(rc__metrics *m) {
  pthread_mutex_init(&m->mu, NULL);
  m->health_tail = &m->health;
  m->modules_tail = &m->modules;
  m->spare.name = "";
  m->spare_module.name = "";
}

void rc__metrics_free(rc__metrics *m) {
  while (m->health) {
    rc__health *h = m->health;
    m->health = h->next;
    rc__free(h->name);
    rc__free(h->target);
    rc__free(h);
  }
  while (m->modules) {
    rc__module_metrics *s = m->modules;
    m->modules = s->next;
    rc__free(s->name);
    rc__free(s);
  }
  rc__free(m->health_index);
  rc__free(m->spare.target);
  pthread_mutex_destroy(&m->mu);
}

/* The index slot where `name` is or would go (the index has a free slot). */
static size_t health_slot(const rc__metrics *m, const char *name) {
  size_t mask = m->health_slots - 1;
  size_t i = (size_t)rc__hash64(name, strlen(name)) & mask;
  while (m->health_index[i] && strcmp(m->health_index[i]->name, name) != 0)
    i = (i + 1) & mask;
  return i;
}

/* Makes room for one more record in the index: 0, or -1 without memory. */
static int health_index_grow(rc__metrics *m) {
  if (2 * (m->health_count + 1) <= m->health_slots) return 0;
  size_t slots = m->health_slots ? m->health_slots * 2 : 64;
  rc__health **old = m->health_index;
  size_t old_slots = m->health_slots;
  rc__health **idx = rc__calloc(slots, sizeof *idx);
  if (!idx) return -1;
  m->health_index = idx;
  m->health_slots = slots;
  for (size_t i = 0; i < old_slots; i++)
    if (old[i]) m->health_index[health_slot(m, old[i]->name)] = old[i];
  rc__free(old);
  return 0;
}

/* A component name's record, found through the index (a policy of 10,000 components
 * looked each name up along the whole list: quadratic load). */
rc__health *rc__health_for(rc__metrics *m, const char *name) {
  pthread_mutex_lock(&m->mu);
  rc__health *h = NULL;
  if (health_index_grow(m) != 0) { /* no memory for the index: the list still finds it */
    for (h = m->health; h && strcmp(h->name, name) != 0;) h = h->next;
  } else {
    size_t i = health_slot(m, name);
    h = m->health_index[i];
    if (!h && (h = rc__calloc(1, sizeof *h))) {
      if ((h->name = rc__strdup(name))) { /* appended: the lists keep declaration order */
        *m->health_tail = h;
        m->health_tail = &h->next;
        m->health_index[i] = h;
        m->health_count++;
      } else {
        rc__free(h);
        h = NULL;
      }
    }
  }
  pthread_mutex_unlock(&m->mu);
  return h ? h : &m->spare;
}

rc__module_metrics *rc__module_metrics_for(rc__metrics *m, const char *name) {
  pthread_mutex_lock(&m->mu);
  rc__module_metrics *s = m->modules;
  while (s && strcmp(s->name, name) != 0) s = s->next;
  if (!s && (s = rc__calloc(1, sizeof *s))) {
    if ((s->name = rc__strdup(name))) {
      *m->modules_tail = s;
      m->modules_tail = &s->next;
    } else {
      rc__free(s);
      s = NULL;
    }
  }
  pthread_mutex_unlock(&m->mu);
  return s ? s : &m->spare_module;
}

/* ===================================================================================
 * Text exposition
 * =================================================================================== */

static uint64_t load(_Atomic uint64_t *v) { return atomic_load_explicit(v, memory_order_relaxed); }

static void family(rc__buf *b, const char *name, const char *type, const char *help) {
  rc__buf_printf(b, "# HELP reactcfg_%s %s\n# TYPE reactcfg_%s %s\n", name, help, name, type);
}

/* A label value: backslash, double quote and newline escaped. */
static void label_value(rc__buf *b, const char *s) {
  for (; s && *s; s++) {
    if (*s == '\\') rc__buf_adds(b, "\\\\");
    else if (*s == '"') rc__buf_adds(b, "\\\"");
    else if (*s == '\n') rc__buf_adds(b, "\\n");
    else rc__buf_addc(b, *s);
  }
}

/* `{k1="v1",k2="v2"}` from a NULL-ended list of pairs (empty when there are none). */
static void labels(rc__buf *b, const char *const *kv) {
  if (!kv || !kv[0]) return;
  rc__buf_addc(b, '{');
  for (size_t i = 0; kv[i]; i += 2) {
    rc__buf_printf(b, "%s%s=\"", i ? "," : "", kv[i]);
    label_value(b, kv[i + 1]);
    rc__buf_addc(b, '"');
  }
  rc__buf_addc(b, '}');
}

static void sample_u(rc__buf *b, const char *name, const char *const *kv, uint64_t v) {
  rc__buf_printf(b, "reactcfg_%s", name);
  labels(b, kv);
  rc__buf_printf(b, " %llu\n", (unsigned long long)v);
}

static void sample_f(rc__buf *b, const char *name, const char *const *kv, double v) {
  char num[32];
  rc__double_text(v, num, sizeof num);
  rc__buf_printf(b, "reactcfg_%s", name);
  labels(b, kv);
  rc__buf_printf(b, " %s\n", num);
}

/* The lines of one histogram series (cumulative buckets, +Inf, sum, count). */
static void histogram(rc__buf *b, const char *name, const char *label, const char *value,
                      rc__histogram *h) {
  uint64_t cum = 0;
  char series[128];
  for (size_t i = 0; i <= RC__HIST_BOUNDS; i++) {
    cum += load(&h->bucket[i]);
    rc__buf_printf(b, "reactcfg_%s_bucket{", name);
    if (label) {
      rc__buf_printf(b, "%s=\"", label);
      label_value(b, value);
      rc__buf_adds(b, "\",");
    }
    rc__buf_printf(b, "le=\"%s\"} %llu\n", i < RC__HIST_BOUNDS ? BOUND_TEXT[i] : "+Inf",
                   (unsigned long long)cum);
  }
  const char *kv[] = {label, value, NULL};
  snprintf(series, sizeof series, "%s_sum", name);
  sample_f(b, series, label ? kv : NULL, (double)load(&h->sum_ns) / 1e9);
  snprintf(series, sizeof series, "%s_count", name);
  sample_u(b, series, label ? kv : NULL, cum);
}

/* Wall-clock seconds of a loop-clock time (ms, 0: never). */
static double wall_seconds(uint64_t loop_ms, uint64_t mono_ms, int64_t real_ns) {
  return ((double)real_ns / 1e6 - (double)(mono_ms - loop_ms)) / 1e3;
}

static void engine_metrics(rc__buf *b, rc_engine_t *eng) {
  rc__metrics *m = &eng->metrics;
  static const char *const TRIGGERS[RC__TRIG_N] = {"source", "request", "signal", "push",
                                                   "policy", "rollback", "unpin", "other"};
  family(b, "reload_attempts_total", "counter",
         "Reloads started (a wave that changed something, a request, a rollback, an unpin), "
         "by what started them.");
  for (int i = 0; i < RC__TRIG_N; i++) {
    const char *kv[] = {"trigger", TRIGGERS[i], NULL};
    sample_u(b, "reload_attempts_total", kv, load(&m->reload_attempts[i]));
  }
  static const char *const REASONS[RC__FAIL_N] = {"refused", "timeout", "error"};
  family(b, "reload_failures_total", "counter",
         "Reloads rolled back: a module refused, a module did not answer in time, or an "
         "internal error (out of memory).");
  for (int i = 0; i < RC__FAIL_N; i++) {
    const char *kv[] = {"reason", REASONS[i], NULL};
    sample_u(b, "reload_failures_total", kv, load(&m->reload_failures[i]));
  }
  family(b, "reload_duration_seconds", "histogram",
         "Time from a reload's start to its commit or rollback, modules included.");
  histogram(b, "reload_duration_seconds", NULL, NULL, &m->reload_duration);
  family(b, "reload_backoff_seconds", "gauge",
         "How long the next reload waits after reloads failed in a row (0: none).");
  sample_f(b, "reload_backoff_seconds", NULL, (double)load(&m->backoff_ms) / 1e3);
  family(b, "revision", "gauge", "The revision of the running configuration.");
  sample_u(b, "revision", NULL, rc_engine_revision(eng));
  family(b, "commits_total", "counter", "Revisions committed (revision 1 included).");
  sample_u(b, "commits_total", NULL, load(&m->commits));
  family(b, "changes_total", "counter", "Changed paths committed, by kind.");
  for (int k = RC_CHANGE_ADDED; k <= RC_CHANGE_TOUCHED; k++) {
    const char *kv[] = {"kind", rc_change_kind_name((rc_change_kind_t)k), NULL};
    sample_u(b, "changes_total", kv, load(&m->changes[k - 1]));
  }
  family(b, "pinned", "gauge", "1 while a rollback pins the configuration, else 0.");
  sample_u(b, "pinned", NULL, rc_engine_pinned(eng) ? 1 : 0);
  family(b, "policy_eval_duration_seconds", "histogram",
         "Time of each call into a policy function (update, validate, condition, ...).");
  histogram(b, "policy_eval_duration_seconds", NULL, NULL, &m->policy_eval);
  family(b, "policy_errors_total", "counter",
         "Policy errors: a function that raised or ran out of time, a policy reload that "
         "failed, a luv callback that raised.");
  sample_u(b, "policy_errors_total", NULL, load(&m->policy_errors));
  family(b, "source_fetch_duration_seconds", "histogram",
         "Time of one read of a remote source, from the request to its answer, by kind.");
  /* A kind's series appears with its first read (most kinds are never used). */
  for (size_t i = 0; i < RC__METRIC_KINDS && rc__source_kinds[i]; i++) {
    uint64_t n = 0;
    for (size_t j = 0; j <= RC__HIST_BOUNDS; j++) n += load(&m->fetch[i].bucket[j]);
    if (n) histogram(b, "source_fetch_duration_seconds", "kind", rc__source_kinds[i]->name,
                     &m->fetch[i]);
  }
}

/* The per-component and per-module families (under mu). */
static void component_metrics(rc__buf *b, rc__metrics *m) {
  uint64_t mono_ms = rc__mono_ns() / 1000000;
  int64_t real_ns = rc__real_ns();
  family(b, "source_up", "gauge",
         "1 when the source of an active component answers (its last read worked), else 0.");
  for (rc__health *h = m->health; h; h = h->next) {
    unsigned f = atomic_load_explicit(&h->flags, memory_order_relaxed);
    if (!atomic_load(&h->present) || !(f & RC__H_ACTIVE)) continue;
    unsigned sf = atomic_load_explicit(&h->src_flags, memory_order_relaxed);
    bool up = (f & RC__H_ANSWERED) && !(f & RC__H_FAILING) && !(sf & RC__SRC_CIRCUIT_OPEN);
    const char *kv[] = {"component", h->name, "kind", h->kind ? h->kind : "none", NULL};
    sample_u(b, "source_up", kv, up);
  }
  family(b, "source_errors_total", "counter", "Errors a component's source reported.");
  for (rc__health *h = m->health; h; h = h->next) {
    if (!atomic_load(&h->present)) continue;
    const char *kv[] = {"component", h->name, "kind", h->kind ? h->kind : "none", NULL};
    sample_u(b, "source_errors_total", kv, load(&h->errors));
  }
  family(b, "source_last_success_timestamp_seconds", "gauge",
         "When a component's source last answered (a value or 'unchanged'), Unix time.");
  for (rc__health *h = m->health; h; h = h->next) {
    uint64_t t = load(&h->last_success_ms);
    if (!atomic_load(&h->present) || !t) continue;
    const char *kv[] = {"component", h->name, NULL};
    sample_f(b, "source_last_success_timestamp_seconds", kv, wall_seconds(t, mono_ms, real_ns));
  }
  family(b, "changes_rejected_total", "counter",
         "Values of a component refused by its validate function or by a reload module.");
  for (rc__health *h = m->health; h; h = h->next) {
    if (!atomic_load(&h->present)) continue;
    const char *kv[] = {"component", h->name, NULL};
    sample_u(b, "changes_rejected_total", kv, load(&h->rejected));
  }
  family(b, "module_apply_duration_seconds", "histogram",
         "Time a reload module took to apply (or roll back) a reload's changes.");
  for (rc__module_metrics *s = m->modules; s; s = s->next)
    histogram(b, "module_apply_duration_seconds", "module", s->name, &s->apply);
  family(b, "module_failures_total", "counter",
         "Reloads a module refused or did not answer in time.");
  for (rc__module_metrics *s = m->modules; s; s = s->next) {
    const char *kv[] = {"module", s->name, NULL};
    sample_u(b, "module_failures_total", kv, load(&s->failures));
  }
}

char *rc_engine_metrics_text(rc_engine_t *eng) {
  if (!eng) return NULL;
  rc__buf b;
  rc__buf_init(&b);
  engine_metrics(&b, eng);
  pthread_mutex_lock(&eng->metrics.mu);
  component_metrics(&b, &eng->metrics);
  pthread_mutex_unlock(&eng->metrics.mu);
  if (b.oom) {
    rc__buf_free(&b);
    return NULL;
  }
  return rc__buf_take(&b);
}
