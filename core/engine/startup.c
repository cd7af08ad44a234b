/* SPDX-License-Identifier: MIT (see LICENSE) */
/* startup.c: what start does about sources whose first value comes later (remote
 * sources, Lua sources that emit from a callback). Per component (`startup`): "wait"
 * up to its timeout for the first answer, "cached" starts from the last-known-good value
 * on disk (marked stale until the source answers), "default" starts without it, "fail"
 * waits and makes start fail when no value came. Every component waits at the same time,
 * and every failure is reported in one error. */
#include "engine.h"

#include <stdio.h>
#include <string.h>

static bool waits(const rc__component *c) {
  return c->src && !c->delivered &&
         (c->startup == RC__START_WAIT || c->startup == RC__START_FAIL);
}

/* startup = "cached": the value saved by an earlier run, if any. */
static void use_cache(rc_engine_t *eng, rc__component *c) {
  int64_t saved_ns = 0;
  rc_value_t *v = rc__cache_load(eng, c, &saved_ns);
  if (!v) {
    rc__emit(eng, RC_EVENT_COMPONENT_STATE, c->name, eng->cache_dir, 0, 0, 0,
             "component '%s': no cached value yet; starting without one", c->name);
    return;
  }
  rc__value_unref(c->value);
  c->value = v;
  c->dirty = true;
  c->stale = true;
  rc__health_value_time(c, saved_ns);
  rc__health_sync(c);
  rc__emit(eng, RC_EVENT_COMPONENT_STATE, c->name, eng->cache_dir, 0, 0, 0,
           "component '%s': starting from the cached value saved %lld s ago; stale until "
           "the source answers", c->name,
           (long long)((rc__real_ns() - saved_ns) / 1000000000));
}

static void wake(uv_timer_t *t) { *(bool *)t->data = true; }

int rc__startup(rc_engine_t *eng, rc_error *err) {
  uint64_t longest = 0;
  for (size_t i = 0; i < eng->ncomps; i++) {
    rc__component *c = eng->comps[i];
    if (!c->src || c->delivered) continue;
    if (c->startup == RC__START_CACHED) use_cache(eng, c);
    if (waits(c) && c->startup_timeout_ms > longest) longest = c->startup_timeout_ms;
  }
  if (longest) {
    /* Run the loop until every waiting source answered or its timeout passed. */
    bool expired = false;
    uv_timer_t timer;
    uv_timer_init(eng->loop, &timer);
    timer.data = &expired;
    uint64_t start = uv_now(eng->loop);
    for (;;) {
      uint64_t now = uv_now(eng->loop), next = 0;
      for (size_t i = 0; i < eng->ncomps; i++) {
        const rc__component *c = eng->comps[i];
        uint64_t end = start + c->startup_timeout_ms;
        if (waits(c) && end > now && (!next || end < next)) next = end;
      }
      if (!next) break;
      expired = false;
      uv_timer_start(&timer, wake, next - now, 0);
      while (!expired) {
        uv_run(eng->loop, UV_RUN_ONCE);
        bool any = false;
        for (size_t i = 0; i < eng->ncomps && !any; i++) any = waits(eng->comps[i]);
        if (!any) break;
      }
      uv_update_time(eng->loop);
    }
    uv_close((uv_handle_t *)&timer, NULL);
    uv_run(eng->loop, UV_RUN_NOWAIT);
  }
  /* Whoever did not answer: report, and collect the "fail" ones into one error. */
  char failed[768];
  size_t used = 0, nfailed = 0;
  failed[0] = '\0';
  for (size_t i = 0; i < eng->ncomps; i++) {
    rc__component *c = eng->comps[i];
    bool silent = waits(c);
    bool bad = c->startup == RC__START_FAIL && c->src && (silent || (c->in_error && !c->value));
    if (silent && !bad)
      rc__emit(eng, RC_EVENT_SOURCE_ERROR, c->name, c->target, 0, 0, RC_EIO,
               "no first value within %llu ms; starting without it (the source keeps "
               "trying)", (unsigned long long)c->startup_timeout_ms);
    if (bad && used < sizeof failed - 1) {
      used += (size_t)snprintf(failed + used, sizeof failed - used, "%s%s (%s)",
                               nfailed ? "; " : "", c->name,
                               silent ? "no answer in time" : "its source failed");
      nfailed++;
    }
  }
  if (nfailed)
    return rc__err(err, RC_EIO, eng->policy_path, 0, 0,
                   "start failed: %zu %s with startup = \"fail\" got no value: %s", nfailed,
                   nfailed == 1 ? "component" : "components", failed);
  return 0;
}
