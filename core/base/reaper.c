/* SPDX-License-Identifier: MIT (see LICENSE) */
/* reaper.c: frees large things on a thread of its own. A replaced or refused policy
 * version's Lua state can hold millions of tables, and a conversion stopped by the time
 * budget can leave as many value nodes: freeing them takes tens to hundreds of
 * milliseconds, which the engine's loop must not wait for (the loop is back within the
 * time budget plus 10 ms, whatever a policy does). The thread starts on first use and
 * ends when its owner frees it, after everything queued was freed. */
#include "internal.h"

#include <pthread.h>
#include <signal.h>

typedef struct reap_item {
  void (*fn)(void *);
  void *p;
  struct reap_item *next;
} reap_item;

struct rc__reaper {
  pthread_mutex_t mu;
  pthread_cond_t cv;
  reap_item *head, *tail;
  bool stopping;
  pthread_t thread;
};

static void *reaper_thread(void *arg) {
  rc__reaper *r = arg;
  pthread_mutex_lock(&r->mu);
  for (;;) {
    while (!r->head && !r->stopping) pthread_cond_wait(&r->cv, &r->mu);
    reap_item *it = r->head;
    if (!it) break; /* stopping, and nothing left */
    r->head = it->next;
    if (!r->head) r->tail = NULL;
    pthread_mutex_unlock(&r->mu);
    it->fn(it->p);
    rc__free(it);
    pthread_mutex_lock(&r->mu);
  }
  pthread_mutex_unlock(&r->mu);
  return NULL;
}

/* A reaper with its thread running, or NULL. The thread takes no signals: they are the
 * application's. */
static rc__reaper *reaper_new(void) {
  rc__reaper *r = rc__calloc(1, sizeof *r);
  if (!r) return NULL;
  if (pthread_mutex_init(&r->mu, NULL) != 0) goto fail_mu;
  if (pthread_cond_init(&r->cv, NULL) != 0) goto fail_cv;
  sigset_t all, old;
  sigfillset(&all);
  pthread_sigmask(SIG_SETMASK, &all, &old);
  int rc = pthread_create(&r->thread, NULL, reaper_thread, r);
  pthread_sigmask(SIG_SETMASK, &old, NULL);
  if (rc == 0) return r;
  pthread_cond_destroy(&r->cv);
fail_cv:
  pthread_mutex_destroy(&r->mu);
fail_mu:
  rc__free(r);
  return NULL;
}

void rc__reap(rc__reaper **rp, void (*fn)(void *), void *p) {
  if (!*rp) *rp = reaper_new();
  reap_item *it = *rp ? rc__malloc(sizeof *it) : NULL;
  if (!it) { /* no thread or no memory for the note: freed here, late but freed */
    fn(p);
    return;
  }
  it->fn = fn;
  it->p = p;
  it->next = NULL;
  rc__reaper *r = *rp;
  pthread_mutex_lock(&r->mu);
  if (r->tail)
    r->tail->next = it;
  else
    r->head = it;
  r->tail = it;
  pthread_cond_signal(&r->cv);
  pthread_mutex_unlock(&r->mu);
}

void rc__reaper_free(rc__reaper *r) {
  if (!r) return;
  pthread_mutex_lock(&r->mu);
  r->stopping = true;
  pthread_cond_signal(&r->cv);
  pthread_mutex_unlock(&r->mu);
  pthread_join(r->thread, NULL);
  pthread_cond_destroy(&r->cv);
  pthread_mutex_destroy(&r->mu);
  rc__free(r);
}
