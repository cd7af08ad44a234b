/* SPDX-License-Identifier: MIT (see LICENSE) */
/* inotify.h: one raw inotify descriptor per engine, shared by the file sources (and the
 * policy file's watch) as an engine service, driven by a uv_poll_t on the loop. Watches
 * on a directory are shared and counted. uv_fs_event is not used because it hides
 * IN_CLOSE_WRITE (a file is read once its writer is done) and IN_Q_OVERFLOW (rescan). */
#ifndef RC_INOTIFY_H
#define RC_INOTIFY_H

#include "source.h"

#include <sys/inotify.h>

typedef struct rc__inotify rc__inotify;

/* One party that wants the events. Each event is offered to every listener, which
 * checks the watch descriptor itself; `ev` is NULL when the kernel's queue overflowed
 * (events were lost: check everything). */
typedef struct rc__inotify_listener {
  void (*on_event)(struct rc__inotify_listener *l, const struct inotify_event *ev);
  size_t slot;   /* the service's: where it is listed (no need to set it) */
} rc__inotify_listener;

/* The service; a source gets the engine's instance with rc__src_service. */
extern const rc__service_kind rc__inotify_service;

/* Adds a listener (once; adding it again does nothing). 0 or RC_ENOMEM. Listeners
 * added while events are dispatched see the next batch. */
int rc__inotify_listen(rc__inotify *in, rc__inotify_listener *l);
/* Removes a listener; safe from inside a callback of the dispatch (it gets no further
 * event, and every other listener still gets the current one). */
void rc__inotify_unlisten(rc__inotify *in, rc__inotify_listener *l);
/* Watches `dir` (shared: a directory watched twice has one watch and two users) and
 * sets *wd. Returns 0, or an errno value (ENOENT, ENOSPC, ...: positive, never an RC_E*
 * code). */
int rc__inotify_watch(rc__inotify *in, const char *dir, int *wd);
/* The same with the events of `mask` (inotify's IN_*); a directory watched with several
 * masks gets their union. */
int rc__inotify_watch_mask(rc__inotify *in, const char *dir, uint32_t mask, int *wd);
/* Drops one user of watch `wd` (-1: nothing). */
void rc__inotify_unwatch(rc__inotify *in, int wd);

#endif
