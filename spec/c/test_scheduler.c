/* test_scheduler.c: debounce decisions on a virtual clock: a burst coalesces into one
 * firing after the quiet period, a long burst fires at its max wait, slots are
 * independent, and a zero debounce fires at once. */
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
  return check_report("scheduler");
}
