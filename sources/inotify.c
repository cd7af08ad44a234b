/* SPDX-License-Identifier: MIT (see LICENSE) */
/* inotify.c: the engine's shared inotify descriptor (see inotify.h). Listeners are kept
 * in an array walked by index; one removed during a dispatch is only marked, and the
 * array is compacted once no dispatch runs, so a listener that stops another (a policy
 * reload retiring sources from inside an event) never makes a third miss the event. */
#include "inotify.h"

#include <errno.h>
#include <string.h>
#include <unistd.h>

#define WATCH_MASK                                                                 \
  (IN_CLOSE_WRITE | IN_MOVED_TO | IN_MOVED_FROM | IN_CREATE | IN_DELETE | IN_MODIFY | \
   IN_ATTRIB | IN_DELETE_SELF | IN_MOVE_SELF | IN_ONLYDIR)

struct rc__inotify {
  rc__host *host;
  int fd;
  uv_poll_t poll;
  /* Users of each watch, indexed by its descriptor (the kernel hands them out counting
   * up from 1 per instance), so watching and unwatching cost O(1) with many files. */
  int *users;
  size_t ucap;
  rc__inotify_listener **listeners;  /* NULL entries: removed, not yet compacted */
  size_t n, cap;
  int dispatching;                   /* depth of dispatches running */
  bool holes;                        /* NULL entries to compact */
  size_t nholes;                     /* removals since the last compaction */
};

/* ---- listeners ---- */

static bool listed(const rc__inotify *in, const rc__inotify_listener *l) {
  return l->slot < in->n && in->listeners[l->slot] == l;
}

int rc__inotify_listen(rc__inotify *in, rc__inotify_listener *l) {
  if (listed(in, l)) return 0;
  if (RC__GROW(in->listeners, in->cap, in->n + 1, 8)) return RC_ENOMEM;
  l->slot = in->n;
  in->listeners[in->n++] = l;
  return 0;
}

static void compact(rc__inotify *in) {
  size_t k = 0;
  for (size_t i = 0; i < in->n; i++) {
    if (!in->listeners[i]) continue;
    in->listeners[k] = in->listeners[i];
    in->listeners[k]->slot = k;
    k++;
  }
  in->n = k;
  in->holes = false;
}

void rc__inotify_unlisten(rc__inotify *in, rc__inotify_listener *l) {
  if (!listed(in, l)) return;
  in->listeners[l->slot] = NULL;
  in->holes = true;
  /* Compacting is linear: done once a dispatch is over, or when a good share of the
   * list is holes (many sources stopping one after the other). */
  if (!in->dispatching && (++in->nholes > in->n / 4 || in->nholes > 64)) {
    compact(in);
    in->nholes = 0;
  }
}

/* ---- directory watches ---- */

int rc__inotify_watch_mask(rc__inotify *in, const char *dir, uint32_t mask, int *out) {
  int wd = inotify_add_watch(in->fd, dir, mask | IN_MASK_ADD);
  if (wd < 0) return errno;
  if ((size_t)wd >= in->ucap) {
    size_t cap = in->ucap ? in->ucap : 64;
    while (cap <= (size_t)wd) cap *= 2;
    int *u = rc__realloc(in->users, cap * sizeof *u);
    if (!u) {
      if (!((size_t)wd < in->ucap && in->users[wd])) inotify_rm_watch(in->fd, wd);
      return ENOMEM;
    }
    memset(u + in->ucap, 0, (cap - in->ucap) * sizeof *u);
    in->users = u;
    in->ucap = cap;
  }
  in->users[wd]++;
  *out = wd;
  return 0;
}

int rc__inotify_watch(rc__inotify *in, const char *dir, int *out) {
  return rc__inotify_watch_mask(in, dir, WATCH_MASK, out);
}

void rc__inotify_unwatch(rc__inotify *in, int wd) {
  if (wd < 0 || (size_t)wd >= in->ucap || in->users[wd] == 0) return;
  if (--in->users[wd] == 0) inotify_rm_watch(in->fd, wd);
}

/* The kernel removed watch `wd` (its directory was deleted, moved away or unmounted). */
static void watch_gone(rc__inotify *in, int wd) {
  if (wd >= 0 && (size_t)wd < in->ucap) in->users[wd] = 0;
}

/* ---- dispatch ---- */

/* Offers `ev` to every listener present when the dispatch began. */
static void dispatch(rc__inotify *in, const struct inotify_event *ev) {
  in->dispatching++;
  size_t n = in->n;
  for (size_t i = 0; i < n; i++) {
    rc__inotify_listener *l = in->listeners[i];
    if (l) l->on_event(l, ev);
  }
  if (--in->dispatching == 0 && in->holes) {
    compact(in);
    in->nholes = 0;
  }
}

static void poll_cb(uv_poll_t *p, int status, int events) {
  rc__inotify *in = p->data;
  RC__UNUSED(events);
  if (status < 0) return;
  char buf[64 * 1024] __attribute__((aligned(__alignof__(struct inotify_event))));
  for (;;) {
    ssize_t n = read(in->fd, buf, sizeof buf);
    if (n <= 0) break;
    for (char *q = buf; q < buf + n;) {
      const struct inotify_event *ev = (const struct inotify_event *)q;
      q += sizeof *ev + ev->len;
      if (ev->mask & IN_Q_OVERFLOW) {
        dispatch(in, NULL);
        continue;
      }
      if (ev->mask & IN_IGNORED) watch_gone(in, ev->wd);
      dispatch(in, ev);
    }
  }
}

/* ---- the service ---- */

static void closed(uv_handle_t *h) {
  rc__inotify *in = h->data;
  rc__host *host = in->host;
  close(in->fd);
  rc__free(in->users);
  rc__free(in->listeners);
  rc__free(in);
  rc__host_handle_closed(host);
}

static void *open_service(rc__host *host, rc_error *err) {
  rc__inotify *in = rc__calloc(1, sizeof *in);
  if (!in) {
    rc__err(err, RC_ENOMEM, NULL, 0, 0, "out of memory");
    return NULL;
  }
  in->host = host;
  in->fd = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
  if (in->fd < 0) {
    rc__err(err, errno == ENOMEM ? RC_ENOMEM : RC_ESYS, NULL, 0, 0,
            "inotify_init1: %s (see fs.inotify.max_user_instances)", strerror(errno));
    rc__free(in);
    return NULL;
  }
  int rc = uv_poll_init(rc__host_loop(host), &in->poll, in->fd);
  if (rc) {
    rc__err(err, RC_ESYS, NULL, 0, 0, "uv_poll on inotify: %s", uv_strerror(rc));
    close(in->fd);
    rc__free(in);
    return NULL;
  }
  in->poll.data = in;
  rc__host_handle_opened(host);
  rc = uv_poll_start(&in->poll, UV_READABLE, poll_cb);
  if (rc) {
    /* The handle is in the loop now: it leaves through uv_close, like at stop. */
    rc__err(err, RC_ESYS, NULL, 0, 0, "uv_poll on inotify: %s", uv_strerror(rc));
    uv_close((uv_handle_t *)&in->poll, closed);
    return NULL;
  }
  return in;
}

static void close_service(void *svc, rc__host *host) {
  RC__UNUSED(host);
  rc__inotify *in = svc;
  uv_close((uv_handle_t *)&in->poll, closed);
}

const rc__service_kind rc__inotify_service = {"inotify", open_service, close_service};
