/* SPDX-License-Identifier: MIT (see LICENSE) */
/* error.c: error codes, their names and texts (one X-macro list in reactcfg.h), and the
 * helper that fills an rc_error with position and message. */
#include "internal.h"

#include <stdio.h>
#include <string.h>
#include <time.h>

const char *rc_err_name(int code) {
  switch (code) {
#define X(name, c, text) \
  case c: return #name;
    RC_ERRORS(X)
#undef X
  }
  return "EUNKNOWN";
}

const char *rc_strerror(int code) {
  switch (code) {
#define X(name, c, text) \
  case c: return text;
    RC_ERRORS(X)
#undef X
  }
  return "unknown error";
}

int rc__verr(rc_error *err, int code, const char *file, int line, int col, const char *fmt,
             va_list ap) {
  if (!err) return code;
  err->code = code;
  err->line = line;
  err->column = col;
  snprintf(err->file, sizeof err->file, "%s", file ? file : "");
  vsnprintf(err->message, sizeof err->message, fmt, ap);
  return code;
}

int rc__err(rc_error *err, int code, const char *file, int line, int col, const char *fmt,
            ...) {
  va_list ap;
  va_start(ap, fmt);
  rc__verr(err, code, file, line, col, fmt, ap);
  va_end(ap);
  return code;
}

uint64_t rc__mono_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

int64_t rc__real_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

const char *rc_version(void) { return RC_VERSION_STRING; }
