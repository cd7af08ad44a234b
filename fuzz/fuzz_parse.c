/* SPDX-License-Identifier: MIT (see LICENSE) */
/* fuzz_parse.c: one libFuzzer target per format, chosen at compile time by RC_FUZZ_FORMAT
 * (a value of rc__format). Any input must give a value or an error, never a crash, a
 * leak or undefined behaviour; a syntax error must have a line and a column; a JSON value
 * must also survive a write/parse round trip. */
#include "parse.h"

#include <stdlib.h>
#include <string.h>

#ifndef RC_FUZZ_FORMAT
#error "define RC_FUZZ_FORMAT"
#endif

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  /* The parsers may read RC__PARSE_PADDING bytes past the end: give them a copy. */
  char *buf = malloc(size + RC__PARSE_PADDING + 1);
  if (!buf) return 0;
  memcpy(buf, data, size);
  memset(buf + size, 0, RC__PARSE_PADDING + 1);
  rc__parse_limits lim;
  rc__parse_limits_default(&lim);
  lim.max_depth = 128;
  lim.max_nodes = 100000;
  rc_value_t *v = NULL;
  rc_error err;
  int rc = rc__parse((rc__format)RC_FUZZ_FORMAT, buf, size, size + RC__PARSE_PADDING + 1,
                     "fuzz", &lim, &v, &err);
  if (rc == 0) {
    if (!v) abort(); /* success must give a value */
    if ((rc__format)RC_FUZZ_FORMAT == RC__FMT_JSON) {
      rc__buf b;
      rc__buf_init(&b);
      rc__json_write(&b, v, false, false);
      rc__buf_reserve(&b, RC__PARSE_PADDING);
      rc_value_t *again = NULL;
      if (!b.oom && rc__parse_json(b.p, b.n, b.cap, "again", &lim, &again, &err) != 0)
        abort(); /* our own output must parse */
      /* NaN cannot appear in JSON input, so a round trip must give an equal value. */
      if (again && !rc_value_equal(v, again)) abort();
      rc__value_unref(again);
      rc__buf_free(&b);
    }
    rc__value_unref(v);
  } else if (v || err.line < 0 || err.column < 0 || !err.message[0]) {
    abort(); /* a failure gives no value, and a message */
  } else if (rc == RC_EPARSE && (err.line < 1 || err.column < 1)) {
    abort(); /* a syntax error says where it is */
  }
  free(buf);
  return 0;
}
