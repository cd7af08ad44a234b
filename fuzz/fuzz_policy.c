/* SPDX-License-Identifier: MIT (see LICENSE) */
/* fuzz_policy.c: the libFuzzer target for policy loading: any text goes through the
 * loader in a fresh sandboxed state under a short load budget (50 ms) and a 64 MiB
 * memory cap, as a policy file would. It must give a policy or an error with a message,
 * never a crash, a leak, undefined behaviour or a hang past the budget (libFuzzer's
 * -timeout catches one). */
#include "lua_state.h"

#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static rc_engine_t *engine(void) {
  static rc_engine_t *eng;
  if (eng) return eng;
  eng = rc_engine_new(NULL);
  if (!eng) abort();
  /* A compile copies the limits of the state in force. */
  lua_mem *m = rc__lua_mem(eng->L);
  m->load_budget_ms = 50;
  m->limit = (size_t)64 << 20;
  eng->policy_path = rc__strdup("/fuzz/policy.lua");
  eng->policy_dir = rc__strdup("/fuzz");
  if (!eng->policy_path || !eng->policy_dir) abort();
  return eng;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (size > RC__POLICY_MAX_BYTES) return 0;
  rc_engine_t *eng = engine();
  rc__policy p;
  rc_error err = {0};
  int rc = rc__policy_compile(eng, (const char *)data, size, &p, &err);
  if (rc == 0)
    rc__policy_discard(eng, &p);
  else if (!err.message[0] || err.line < 0)
    abort(); /* a failure always says what */
  return 0;
}
