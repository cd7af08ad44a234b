/* SPDX-License-Identifier: MIT (see LICENSE) */
/* events.c: the engine's events and the handlers they go to. Handlers are kept in an
 * array under a mutex (any thread adds or removes one); the loop thread calls them in
 * order from a copy taken under the lock, so a handler may add or remove handlers, and a
 * removed one is not called again once the removal returned on the loop thread. */
#include "engine.h"

#include <stdio.h>
#include <string.h>

const char *rc__event_name(rc_event_type_t t) {
  switch (t) {
    case RC_EVENT_COMMIT: return "commit";
    case RC_EVENT_SOURCE_ERROR: return "source.error";
    case RC_EVENT_SOURCE_RECOVERED: return "source.recovered";
    case RC_EVENT_POLICY_ERROR: return "policy.error";
    case RC_EVENT_STARTED: return "engine.started";
    case RC_EVENT_STOPPED: return "engine.stopped";
    case RC_EVENT_REJECTED: return "change.rejected";
    case RC_EVENT_FILTERED: return "change.filtered";
    case RC_EVENT_RESTART_REQUIRED: return "restart.required";
    case RC_EVENT_COMPONENT_STATE: return "component.state";
    case RC_EVENT_POLICY_RELOADED: return "policy.reloaded";
    case RC_EVENT_RELOAD_STARTED: return "reload.started";
    case RC_EVENT_MODULE_STARTED: return "module.started";
    case RC_EVENT_MODULE_COMPLETED: return "module.completed";
    case RC_EVENT_MODULE_FAILED: return "module.failed";
    case RC_EVENT_RELOAD_COMPLETED: return "reload.completed";
    case RC_EVENT_RELOAD_FAILED: return "reload.failed";
    case RC_EVENT_RELOAD_ROLLEDBACK: return "reload.rolledback";
    case RC_EVENT_PINNED: return "engine.pinned";
    case RC_EVENT_UNPINNED: return "engine.unpinned";
    case RC_EVENT_POLICY_LOG: return "policy.log";
  }
  return "unknown";
}

/* ---- handlers ---- */

/* Counts the handlers with a function (under handler_mu). */
static void count_listeners(rc_engine_t *eng) {
  size_t n = 0;
  for (size_t i = 0; i < eng->nhandlers; i++) n += eng->handlers[i].fn != NULL;
  atomic_store_explicit(&eng->nlisteners, n, memory_order_relaxed);
}

bool rc__events_wanted(rc_engine_t *eng) {
  /* Relaxed: a handler added from another thread hears events from some turn on; which
   * turn is not ordered with anything else. */
  return atomic_load_explicit(&eng->nlisteners, memory_order_relaxed) > 0;
}

/* Slot 0 is rc_engine_on_event's (empty when fn is NULL); the others are added ones. */
static int add_handler(rc_engine_t *eng, int id, rc_event_fn fn, void *ud) {
  if (RC__GROW(eng->handlers, eng->caphandlers, eng->nhandlers + 1, 4)) return RC_ENOMEM;
  eng->handlers[eng->nhandlers++] = (rc__handler){id, fn, ud};
  return id;
}

void rc_engine_on_event(rc_engine_t *eng, rc_event_fn fn, void *ud) {
  if (!eng) return;
  pthread_mutex_lock(&eng->handler_mu);
  if (eng->nhandlers == 0 || eng->handlers[0].id != 0) {
    /* The first handler goes in front of any added before it. */
    if (add_handler(eng, 0, fn, ud) == 0 && eng->nhandlers > 1) {
      rc__handler first = eng->handlers[eng->nhandlers - 1];
      memmove(eng->handlers + 1, eng->handlers, (eng->nhandlers - 1) * sizeof *eng->handlers);
      eng->handlers[0] = first;
    }
  } else {
    eng->handlers[0].fn = fn;
    eng->handlers[0].ud = ud;
  }
  eng->handlers_changed++;
  count_listeners(eng);
  pthread_mutex_unlock(&eng->handler_mu);
}

int rc_engine_add_event_handler(rc_engine_t *eng, rc_event_fn fn, void *ud) {
  if (!eng || !fn) return RC_EINVAL;
  pthread_mutex_lock(&eng->handler_mu);
  int rc = add_handler(eng, ++eng->next_handler_id, fn, ud);
  eng->handlers_changed++;
  count_listeners(eng);
  pthread_mutex_unlock(&eng->handler_mu);
  return rc;
}

int rc_engine_remove_event_handler(rc_engine_t *eng, int id) {
  if (!eng || id <= 0) return RC_ENOTFOUND;
  int rc = RC_ENOTFOUND;
  pthread_mutex_lock(&eng->handler_mu);
  for (size_t i = 0; i < eng->nhandlers; i++) {
    if (eng->handlers[i].id != id) continue;
    memmove(eng->handlers + i, eng->handlers + i + 1,
            (eng->nhandlers - i - 1) * sizeof *eng->handlers);
    eng->nhandlers--;
    rc = 0;
    break;
  }
  eng->handlers_changed++;
  count_listeners(eng);
  pthread_mutex_unlock(&eng->handler_mu);
  return rc;
}

void rc__handlers_free(rc_engine_t *eng) {
  rc__free(eng->handlers);
  eng->handlers = NULL;
  eng->nhandlers = eng->caphandlers = 0;
  atomic_store_explicit(&eng->nlisteners, 0, memory_order_relaxed);
}

/* ---- emitting (loop thread) ---- */

/* Whether handler `id` is still registered. */
static bool alive(rc_engine_t *eng, int id) {
  bool found = false;
  pthread_mutex_lock(&eng->handler_mu);
  for (size_t i = 0; i < eng->nhandlers && !found; i++) found = eng->handlers[i].id == id;
  pthread_mutex_unlock(&eng->handler_mu);
  return found;
}

void rc__emit_event(rc_engine_t *eng, rc_event_t *ev) {
  if (!rc__events_wanted(eng)) return;
  ev->name = rc__event_name(ev->type);
  if (!ev->component) ev->component = "";
  if (!ev->file) ev->file = "";
  if (!ev->message) ev->message = "";
  if (!ev->trigger) ev->trigger = "";
  if (!ev->module) ev->module = "";
  /* Handlers are called from a copy, so that one may add or remove handlers; when the
   * list changed meanwhile (the generation moved), each is checked before its call. */
  rc__handler local[16], *list = local;
  pthread_mutex_lock(&eng->handler_mu);
  size_t n = eng->nhandlers;
  if (n > 16 && !(list = rc__malloc(n * sizeof *list))) {
    list = local;
    n = 16; /* out of memory: the first sixteen handlers still hear of it */
  }
  if (n) memcpy(list, eng->handlers, n * sizeof *list);
  uint64_t gen = eng->handlers_changed;
  pthread_mutex_unlock(&eng->handler_mu);
  for (size_t i = 0; i < n; i++) {
    if (!list[i].fn) continue;
    pthread_mutex_lock(&eng->handler_mu);
    bool changed = eng->handlers_changed != gen;
    pthread_mutex_unlock(&eng->handler_mu);
    if (changed && !alive(eng, list[i].id)) continue;
    list[i].fn(list[i].ud, ev);
  }
  if (list != local) rc__free(list);
}

void rc__emit(rc_engine_t *eng, rc_event_type_t type, const char *component,
              const char *file, int line, int col, int code, const char *fmt, ...) {
  /* Counted here, the one place every policy error passes, listeners or not. */
  if (type == RC_EVENT_POLICY_ERROR) rc__count(&eng->metrics.policy_errors, 1);
  /* The ring keeps events among the decisions, as the test bench's explain shows them;
   * engine.started and engine.stopped frame no revision. */
  bool ring = type != RC_EVENT_STARTED && type != RC_EVENT_STOPPED && rc__trace_ring_on(eng);
  if (!rc__events_wanted(eng) && !ring) return;
  char msg[1024];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(msg, sizeof msg, fmt, ap);
  va_end(ap);
  if (ring) rc__trace_ring_add(eng, component, rc__event_name(type), msg);
  rc_event_t ev = {.type = type, .component = component, .message = msg, .file = file,
                   .line = line, .column = col, .code = code};
  rc__emit_event(eng, &ev);
}

void rc__emit_commit(rc_engine_t *eng, uint64_t revision, size_t changes,
                     uint64_t reload_id) {
  if (!rc__events_wanted(eng)) return;
  char msg[64];
  snprintf(msg, sizeof msg, "revision %llu: %zu %s", (unsigned long long)revision, changes,
           changes == 1 ? "change" : "changes");
  rc_event_t ev = {.type = RC_EVENT_COMMIT, .message = msg, .revision = revision,
                   .changes = changes, .reload_id = reload_id};
  rc__emit_event(eng, &ev);
}

/* A parser's message may quote the input ("invalid value 'hunter2'"): for a component
 * with secrets, every quoted run is redacted. */
static void redact_quoted(const char *in, char *out, size_t n) {
  size_t o = 0;
  char quote = 0;
  for (const char *p = in; *p && o + 1 < n; p++) {
    if (!quote && (*p == '\'' || *p == '"')) {
      quote = *p;
      out[o++] = *p;
      const char *mark = "...";
      for (const char *m = mark; *m && o + 1 < n; m++) out[o++] = *m;
    } else if (quote && *p == quote) {
      quote = 0;
      out[o++] = *p;
    } else if (!quote) {
      out[o++] = *p;
    }
  }
  out[o] = '\0';
}

void rc__emit_error(rc_engine_t *eng, rc__component *c, const rc_error *err) {
  char msg[sizeof err->message];
  const char *text = err->message;
  if (c && (c->secret_all || c->nsecret)) {
    redact_quoted(err->message, msg, sizeof msg);
    text = msg;
  }
  if (c) rc__health_error(c, err, text);
  rc__emit(eng, RC_EVENT_SOURCE_ERROR, c ? c->name : NULL, err->file, err->line,
           err->column, err->code, "%s", text);
}
