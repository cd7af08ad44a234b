/* SPDX-License-Identifier: MIT (see LICENSE) */
/* sigpipe.h: SIGPIPE around a library's write() (see sigpipe.c). Private. */
#ifndef RC_SIGPIPE_H
#define RC_SIGPIPE_H

#include <signal.h>
#include <stdbool.h>

/* Between block and restore (same thread), a write to a peer that has gone fails with
 * EPIPE instead of raising SIGPIPE in the host; restore takes out a SIGPIPE raised
 * meanwhile (one already pending before is left alone) and restores the mask. */
typedef struct rc__sigpipe_guard {
  sigset_t old;
  bool blocked, pending_before;
} rc__sigpipe_guard;
void rc__sigpipe_block(rc__sigpipe_guard *g);
void rc__sigpipe_restore(rc__sigpipe_guard *g);

#endif
