/* SPDX-License-Identifier: MIT (see LICENSE) */
/* parse_job.h: reading and parsing for every source, on the loop for small inputs and on
 * the libuv thread pool for large ones. A job carries copies of everything it needs
 * (the bytes or the path, the format, the limits, the name shown in messages), never a
 * pointer into a source or a component that the loop may retire meanwhile. */
#ifndef RC_PARSE_JOB_H
#define RC_PARSE_JOB_H

#include "source.h"

#include <sys/stat.h>

/* Inputs of at least this many bytes go to the thread pool (unless `sync`). */
#define RC__PARSE_ASYNC_BYTES ((size_t)1 << 20)

typedef struct rc__parse_input {
  /* What to parse: the file at `path` (read whole, bounded by limits->max_bytes), or
   * `len` bytes at `bytes`. Both are copied when the job leaves the loop. */
  const char *path;
  const char *bytes;
  size_t len;
  rc__format fmt;                 /* RC__FMT_AUTO: by the path's name, else JSON */
  const rc__parse_limits *limits; /* copied */
  const char *name;               /* the input's name in messages (copied) */
  /* Reading a file: when `compare` and its bytes are those last seen (`last_digest`),
   * the result says `unchanged` and nothing is parsed. */
  bool compare;
  uint8_t last_digest[16];
  bool sync;                      /* run on the loop whatever the size (initial reads) */
} rc__parse_input;

typedef struct rc__parse_result {
  bool cancelled;        /* stopped before it ran: nothing below is set */
  int err_no;            /* reading: 0, or errno (ENOENT, EFBIG: larger than max_bytes,
                            EINVAL: not a regular file; `kind` says what it is) */
  const char *kind;      /* with EINVAL: "a directory", "a FIFO", ... */
  bool unchanged;        /* reading: the same bytes as `last_digest`; not parsed */
  uint8_t digest[16];    /* reading: of the bytes read (exact comparison's stand-in) */
  size_t len;            /* reading: how many bytes were read */
  struct stat after;     /* reading: the file as it was when the read ended (a writer
                            may have changed it since: compare with a fresh stat) */
  int rc;                /* 0, or the parser's RC_E* code with `err` */
  rc_value_t *value;     /* owned by the callback when rc == 0 (NULL: nothing) */
  rc_error err;
} rc__parse_result;

/* Called on the loop with the result (also when cancelled). */
typedef void (*rc__parse_done)(void *ud, rc__parse_result *res);

typedef struct rc__parse_job rc__parse_job;

/* Reads and parses `in`. Small inputs (or `sync`) are done before this returns, `done`
 * included, and NULL is returned; a large one goes to the thread pool and the job is
 * returned: `done` runs later on the loop, and until then the host counts an open
 * handle (the engine is not freed before). NULL too when the pool refused it or memory
 * ran out, after `done` reported that (res->rc = RC_ENOMEM, or a run on the loop). */
rc__parse_job *rc__parse_submit(rc__host *host, const rc__parse_input *in,
                                rc__parse_done done, void *ud);
/* Cancels a job that has not started; `done` still runs, with `cancelled` set when the
 * cancel came in time. */
void rc__parse_cancel(rc__parse_job *job);

#endif
