/* SPDX-License-Identifier: MIT (see LICENSE) */
/* test_scheduler.c: debounce and throttle decisions on a virtual clock. Debounce: a
 * burst coalesces into one firing after the quiet period, a long burst fires at its max
 * wait, slots are independent, and a zero debounce fires at once. Throttle: `burst`
 * values pass, the next is held until the refill time, refills cap at the burst, and
 * debounce feeds the throttle. */
#include "check.h"
#include "scheduler.h"

static size_t take(rc__sched *s, uint64_t now, size_t *out) {
  return rc__sched_take_due(s, now, out, s->n);
}

int main(void) {
  rc__sched s;
  size_t due[4];
  uint64_t next = 0;
  CHECK_EQ_INT(rc__sched_init(&s, 3), 0);
  rc__sched_config(&s, 0, 200, 1000);  /* "200ms, at most 1s" */
  rc__sched_config(&s, 1, 50, 50);
  rc__sched_config(&s, 2, 0, 0);

  /* nothing armed */
  CHECK(!rc__sched_next(&s, &next));
  CHECK_EQ_INT((int)take(&s, 0, due), 0);

  /* a burst of events 100ms apart: each pushes the firing back by the quiet period */
  for (uint64_t t = 0; t <= 400; t += 100) rc__sched_event(&s, 0, t);
  CHECK(rc__sched_next(&s, &next));
  CHECK_EQ_INT((int)next, 600);
  CHECK_EQ_INT((int)take(&s, 599, due), 0);
  CHECK_EQ_INT((int)take(&s, 600, due), 1);
  CHECK_EQ_INT((int)due[0], 0);
  CHECK_EQ_INT((int)take(&s, 10000, due), 0); /* fired once only */

  /* an endless burst still fires at the max wait after its first event */
  int fired = 0;
  for (uint64_t t = 2000; t < 4000; t += 100) {
    fired += (int)take(&s, t, due);
    rc__sched_event(&s, 0, t);
  }
  /* first event at 2000: deadline 3000; the next burst starts at 3000 */
  CHECK_EQ_INT(fired, 1);
  CHECK(rc__sched_next(&s, &next));
  CHECK_EQ_INT((int)next, 4000); /* the second burst began at 3000: deadline 4000 */

  /* independent slots, earliest first, indices ascending */
  rc__sched_cancel(&s, 0);
  rc__sched_event(&s, 1, 5000);
  rc__sched_event(&s, 0, 5000);
  CHECK(rc__sched_next(&s, &next));
  CHECK_EQ_INT((int)next, 5050);
  CHECK_EQ_INT((int)take(&s, 5050, due), 1);
  CHECK_EQ_INT((int)due[0], 1);
  CHECK_EQ_INT((int)take(&s, 5200, due), 1);
  CHECK_EQ_INT((int)due[0], 0);

  /* zero debounce: due at once */
  rc__sched_event(&s, 2, 7000);
  CHECK(rc__sched_next(&s, &next));
  CHECK_EQ_INT((int)next, 7000);
  rc__sched_event(&s, 0, 7000);
  rc__sched_event(&s, 1, 6990);
  CHECK_EQ_INT((int)take(&s, 7040, due), 2);
  CHECK_EQ_INT((int)due[0], 1);
  CHECK_EQ_INT((int)due[1], 2);

  rc__sched_free(&s);

  /* throttle: every 100ms, burst 3; slot 1 has no throttle */
  CHECK_EQ_INT(rc__sched_init(&s, 2), 0);
  rc__sched_throttle_config(&s, 0, 100, 3);
  CHECK(rc__sched_throttle_offer(&s, 1, 5));  /* no throttle: always at once */
  CHECK_EQ_INT((int)rc__sched_throttle_next_token(&s, 1, 5), 5);
  CHECK_EQ_INT((int)rc__sched_throttle_next_token(&s, 0, 0), 0);
  CHECK(rc__sched_throttle_offer(&s, 0, 0));  /* a burst of 3 passes at once */
  CHECK(rc__sched_throttle_offer(&s, 0, 1));
  CHECK(rc__sched_throttle_offer(&s, 0, 2));
  CHECK(!rc__sched_throttle_offer(&s, 0, 3)); /* the 4th is held ... */
  CHECK(s.slots[0].held);
  CHECK_EQ_INT((int)rc__sched_throttle_next_token(&s, 0, 3), 100); /* ... until 0 + every */
  CHECK(rc__sched_next(&s, &next));
  CHECK_EQ_INT((int)next, 100);
  CHECK(!rc__sched_throttle_offer(&s, 0, 50)); /* a newer value: still held, same time */
  CHECK(s.slots[0].held);
  CHECK(rc__sched_next(&s, &next));
  CHECK_EQ_INT((int)next, 100);
  CHECK_EQ_INT((int)rc__sched_take_released(&s, 99, due, s.n), 0);
  CHECK_EQ_INT((int)rc__sched_take_released(&s, 100, due, s.n), 1); /* released at refill */
  CHECK_EQ_INT((int)due[0], 0);
  CHECK(!s.slots[0].held);
  CHECK(!rc__sched_next(&s, &next));            /* nothing armed or held */
  CHECK_EQ_INT((int)rc__sched_take_released(&s, 1000, due, s.n), 0); /* released once */
  /* the release took the token of t=100: the next one comes at 200 */
  CHECK_EQ_INT((int)rc__sched_throttle_next_token(&s, 0, 150), 200);

  /* a long pause refills only up to the burst: 3 pass, the 4th is held */
  CHECK_EQ_INT((int)rc__sched_throttle_next_token(&s, 0, 10000), 10000);
  CHECK(rc__sched_throttle_offer(&s, 0, 10000));
  CHECK(rc__sched_throttle_offer(&s, 0, 10000));
  CHECK(rc__sched_throttle_offer(&s, 0, 10000));
  CHECK(!rc__sched_throttle_offer(&s, 0, 10000));
  CHECK(rc__sched_next(&s, &next));
  CHECK_EQ_INT((int)next, 10100);
  CHECK_EQ_INT((int)rc__sched_take_released(&s, 10100, due, s.n), 1);

  /* a partial refill: 250ms after 10100 earns 2 tokens (at 10200 and 10300) */
  CHECK(rc__sched_throttle_offer(&s, 0, 10350));
  CHECK(rc__sched_throttle_offer(&s, 0, 10350));
  CHECK(!rc__sched_throttle_offer(&s, 0, 10350));
  CHECK(rc__sched_next(&s, &next));
  CHECK_EQ_INT((int)next, 10400);
  /* a value offered once the token is there (timer late) is applied and supersedes the
   * held one: nothing is left to release */
  CHECK(rc__sched_throttle_offer(&s, 0, 10450));
  CHECK(!s.slots[0].held);
  CHECK_EQ_INT((int)rc__sched_take_released(&s, 10450, due, s.n), 0);
  CHECK(!rc__sched_next(&s, &next));
  rc__sched_free(&s);

  /* debounce 50ms then throttle every 1000ms, burst 1 (default 0 burst means 1) */
  CHECK_EQ_INT(rc__sched_init(&s, 1), 0);
  rc__sched_config(&s, 0, 50, 50);
  rc__sched_throttle_config(&s, 0, 1000, 0);
  rc__sched_event(&s, 0, 20000);
  CHECK(rc__sched_next(&s, &next));
  CHECK_EQ_INT((int)next, 20050);
  CHECK_EQ_INT((int)take(&s, 20050, due), 1);
  CHECK(rc__sched_throttle_offer(&s, 0, 20050));  /* debounced value takes the token */
  rc__sched_event(&s, 0, 20100);
  CHECK_EQ_INT((int)take(&s, 20150, due), 1);
  CHECK(!rc__sched_throttle_offer(&s, 0, 20150)); /* next debounced value is held */
  CHECK(rc__sched_next(&s, &next));
  CHECK_EQ_INT((int)next, 21050);
  rc__sched_event(&s, 0, 20200);                  /* debounce due before the release */
  CHECK(rc__sched_next(&s, &next));
  CHECK_EQ_INT((int)next, 20250);
  CHECK_EQ_INT((int)take(&s, 20250, due), 1);
  CHECK(!rc__sched_throttle_offer(&s, 0, 20250)); /* replaces the held value */
  CHECK(rc__sched_next(&s, &next));
  CHECK_EQ_INT((int)next, 21050);
  CHECK_EQ_INT((int)rc__sched_take_released(&s, 21049, due, s.n), 0);
  CHECK_EQ_INT((int)rc__sched_take_released(&s, 21050, due, s.n), 1);
  CHECK(!rc__sched_next(&s, &next));
  rc__sched_free(&s);
  return check_report("scheduler");
}
