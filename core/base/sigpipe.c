/* SPDX-License-Identifier: MIT (see LICENSE) */
/* sigpipe.c: a write to a peer that has gone raises SIGPIPE, whose default ends the
 * process. The engine is a library: the signal's disposition is the application's, so
 * instead of ignoring it process-wide, calls into a library that writes with write()
 * (hiredis 0.14 has no hook for send() with MSG_NOSIGNAL) run with SIGPIPE blocked in
 * the calling thread; a SIGPIPE they raise (sent to that thread) is then taken out of the
 * pending set before the mask is restored, and the write fails with EPIPE as it should. */
#include "sigpipe.h"

#include <pthread.h>
#include <time.h>

void rc__sigpipe_block(rc__sigpipe_guard *g) {
  sigset_t pipe_only, pending;
  sigemptyset(&pipe_only);
  sigaddset(&pipe_only, SIGPIPE);
  g->blocked = pthread_sigmask(SIG_BLOCK, &pipe_only, &g->old) == 0;
  g->pending_before = g->blocked && sigpending(&pending) == 0 &&
                      sigismember(&pending, SIGPIPE) == 1;
}

void rc__sigpipe_restore(rc__sigpipe_guard *g) {
  if (!g->blocked) return;
  sigset_t pipe_only, pending;
  sigemptyset(&pipe_only);
  sigaddset(&pipe_only, SIGPIPE);
  /* Only a SIGPIPE that was not pending before is ours to take. */
  if (!g->pending_before && sigpending(&pending) == 0 && sigismember(&pending, SIGPIPE) == 1) {
    const struct timespec now = {0, 0};
    sigtimedwait(&pipe_only, NULL, &now);
  }
  pthread_sigmask(SIG_SETMASK, &g->old, NULL);
}
