/* SPDX-License-Identifier: MIT (see LICENSE) */
/* file.c: the file source. Through the engine's shared inotify descriptor (inotify.c)
 * it watches the parent directory of its file (and the directory of a symlink's
 * target), so that in-place writes, rename-over saves, delete + re-create, Kubernetes
 * `..data` symlink swaps and files that do not exist yet are all seen; and every
 * ancestor of that directory for its entry on the path, so that a directory renamed,
 * deleted or re-created (`mv conf conf.old; mkdir conf`), or one that does not exist
 * yet, is found again. Reads go through parse_job.c (the thread pool for large files).
 * Where inotify cannot be had it polls. */
#include "inotify.h"
#include "parse_job.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/inotify.h>
#include <sys/stat.h>
#include <unistd.h>

/* How long to wait for a writer that keeps the file open before reading anyway. */
#define MAX_WRITER_WAIT_MS 10000
#define DIR_RETRY_MS 1000
/* What an ancestor's watch reports: its entries coming, going and moving, and itself
 * going (the directory watch itself has inotify.c's full mask). */
#define ANCESTOR_MASK                                                              \
  (IN_CREATE | IN_DELETE | IN_MOVED_FROM | IN_MOVED_TO | IN_DELETE_SELF | IN_MOVE_SELF | \
   IN_ONLYDIR)

typedef struct file_source file_source;

struct file_source {
  rc__source base;
  rc__source_ctx *ctx;
  rc__inotify *in;     /* the engine's inotify service, once watching; borrowed */
  rc__inotify_listener listener;
  char *path;          /* absolute, as declared */
  char *dir, *name;    /* parent directory and base name of `path` */
  int wd;              /* watch on `dir`, -1 if not (yet) watched */
  /* The ancestors of `dir`: chain[k] watches the directory made of the first k of its
   * `parts` ("/" for k = 0), for its entry parts[k]; -1 where not watched (it does not
   * exist, nor do those below it). */
  char **parts;
  size_t nparts;
  int *chain;
  char *tdir, *tname;  /* directory and name of the resolved target, if in another dir */
  int twd;             /* watch on `tdir`, -1 if none */
  char *link_head;     /* first segment of a relative symlink target, e.g. "..data" */
  rc__format fmt;
  uint64_t settle_ms, grace_ms;
  /* last read */
  bool have;           /* `digest` describes the file's last content */
  bool present;        /* the file existed at the last check */
  uint8_t digest[16];
  /* A read that did not parse is not reported at once: it may be a save caught half
   * written. It is read again once writes settle, and reported only when the same bytes
   * come back (`suspect` holds their digest). */
  bool suspect_set;
  uint8_t suspect[16];
  uint64_t writer_wait_ms;
  uv_timer_t settle;   /* a modification without close: read when writes settle */
  uv_timer_t grace;    /* file vanished: report only if it stays away */
  uv_timer_t retry;    /* parent directory missing: try to watch it again */
  /* Hybrid: when inotify cannot be had (instance or watch limits), poll the file every
   * poll_ms and keep trying to watch it; back to events as soon as a watch works. */
  bool polling;
  uint64_t poll_ms;
  struct stat polled;  /* what the last poll saw: a read happens only when it changes */
  bool polled_ok;
  int handles;
  /* The failure last reported (a hash of its code and message), so that reading the
   * same failing file again (an attribute change, a second event of one save) is not a
   * second source.error: one event per failure. Cleared by any answer. */
  uint64_t failed;
  rc__parse_job *job;  /* read in flight on the thread pool */
  bool reread;         /* another event arrived during the job */
  bool stopping;
  void (*stop_done)(rc__source *);
};


static void check(file_source *s);
static void rewatch(file_source *s);
static bool writer_open(const char *path);
static void settle_cb(uv_timer_t *t);
static void retry_cb(uv_timer_t *t);
static void poll_tick(uv_timer_t *t);
static void start_polling(file_source *s, const rc_error *why);
static void missing(file_source *s);
static void source_maybe_done(file_source *s);

static void report(file_source *s, int code, const char *fmt, ...) RC__PRINTF(3, 4);
static void report(file_source *s, int code, const char *fmt, ...) {
  rc_error e = {0};
  va_list ap;
  va_start(ap, fmt);
  rc__verr(&e, code, s->path, 0, 0, fmt, ap);
  va_end(ap);
  uint64_t h = rc__hash64(e.message, strlen(e.message)) ^ (uint64_t)(unsigned)code;
  if (h == 0) h = 1;
  if (h == s->failed && rc__src_failing(s->ctx)) return;   /* said already */
  s->failed = h;
  rc__src_error(s->ctx, &e);
}

/* The file answered (a value, a parse error, or absence): a later failure is news. */
static void answered(file_source *s) { s->failed = 0; }

/* ---- events ---- */

static bool relevant_in_dir(const file_source *s, const char *name) {
  return strcmp(name, s->name) == 0 || (s->link_head && strcmp(name, s->link_head) == 0);
}

/* Whether `ev` (on watch chain[k]) changes which directory the path leads through:
 * the ancestor itself went, or its entry on the path came, went or moved. */
static bool path_changed(const file_source *s, size_t k, const struct inotify_event *ev) {
  if (ev->mask & (IN_DELETE_SELF | IN_MOVE_SELF | IN_IGNORED)) return true;
  return ev->len && strcmp(ev->name, s->parts[k]) == 0 &&
         (ev->mask & (IN_CREATE | IN_DELETE | IN_MOVED_FROM | IN_MOVED_TO));
}

/* What one inotify event means for this source (NULL: the queue overflowed). */
static void on_event(rc__inotify_listener *l, const struct inotify_event *ev) {
  file_source *s = (file_source *)((char *)l - offsetof(file_source, listener));
  if (s->stopping) return;
  if (!ev) { /* events were lost: watch afresh and re-read (the digest drops what did
              * not change) */
    rewatch(s);
    return;
  }
  for (size_t k = 0; k < s->nparts; k++) {
    if (s->chain[k] == ev->wd && s->chain[k] >= 0 && path_changed(s, k, ev)) {
      rewatch(s);
      return;
    }
  }
  bool in_target_dir = ev->wd == s->twd && s->twd >= 0;
  if (!in_target_dir && (ev->wd != s->wd || s->wd < 0)) return;
  if (ev->mask & IN_IGNORED) {
    if (in_target_dir) {
      s->twd = -1;
      check(s);
    } else {
      s->wd = -1;
      rewatch(s);
    }
    return;
  }
  if (ev->mask & (IN_DELETE_SELF | IN_MOVE_SELF)) {
    /* The directory itself went or was renamed: the watch follows the old one, so
     * watch whatever the path names now. */
    if (in_target_dir)
      check(s);
    else
      rewatch(s);
    return;
  }
  if (ev->len == 0) return;
  bool mine = in_target_dir ? strcmp(ev->name, s->tname) == 0 : relevant_in_dir(s, ev->name);
  /* A swap of any symlink in the directory may change where our path leads. */
  if (!mine && !(s->link_head && (ev->mask & IN_MOVED_TO))) return;
  if (ev->mask & IN_MODIFY) {
    /* Mid-write: wait for IN_CLOSE_WRITE, or for the writes to settle. */
    uv_timer_start(&s->settle, settle_cb, s->settle_ms, 0);
    return;
  }
  /* A writer closed the file, but another may have opened it already (a storm of
   * saves in place): read once nobody writes, or the settle timer's patience is out. */
  if ((ev->mask & IN_CLOSE_WRITE) && mine && !in_target_dir && writer_open(s->path)) {
    uv_timer_start(&s->settle, settle_cb, s->settle_ms, 0);
    return;
  }
  if ((ev->mask & IN_CREATE) && !(ev->mask & IN_ISDIR) && mine && !in_target_dir &&
      strcmp(ev->name, s->name) == 0) {
    struct stat st;
    char p[PATH_MAX];
    snprintf(p, sizeof p, "%s/%s", s->dir, ev->name);
    if (lstat(p, &st) == 0 && S_ISREG(st.st_mode) && st.st_size == 0) {
      /* A new empty file: its writer is about to fill it. */
      uv_timer_start(&s->settle, settle_cb, s->settle_ms, 0);
      return;
    }
  }
  check(s);
}

/* ---- reading ---- */

/* Whether the file at `path` is no longer what read `r` saw: replaced, or written to
 * (size or times moved) since the read ended, or while it ran. A parse error of such a
 * read is a save caught half way, not news: the write's own events bring the next read,
 * and a reread is asked for in case they were already handled. */
static bool changed_since(const char *path, const rc__parse_result *r) {
  struct stat now;
  if (stat(path, &now) != 0) return true;
  const struct stat *a = &r->after;
  return (size_t)a->st_size != r->len || now.st_ino != a->st_ino ||
         now.st_dev != a->st_dev || now.st_size != a->st_size ||
         now.st_mtim.tv_sec != a->st_mtim.tv_sec || now.st_mtim.tv_nsec != a->st_mtim.tv_nsec ||
         now.st_ctim.tv_sec != a->st_ctim.tv_sec || now.st_ctim.tv_nsec != a->st_ctim.tv_nsec;
}

/* Applies a finished read (loop thread; from parse_job, at once or later). */
static void read_done(void *ud, rc__parse_result *r) {
  file_source *s = ud;
  s->job = NULL;
  if (s->stopping || r->cancelled) {
    rc__value_unref(r->value);
    source_maybe_done(s);
    return;
  }
  if (r->err_no == ENOENT || r->err_no == ENOTDIR) {
    missing(s);
  } else if (r->err_no == EFBIG) {
    report(s, RC_ELIMIT, "%s is larger than the limit of %zu bytes (limits.max_bytes); "
           "the last good value stays", s->path, rc__src_limits(s->ctx)->max_bytes);
  } else if (r->err_no == EINVAL && r->kind) {
    report(s, RC_EIO, "%s is %s, not a regular file; the last good value stays", s->path,
           r->kind);
  } else if (r->err_no) {
    report(s, r->err_no == ENOMEM ? RC_ENOMEM : RC_EIO, "cannot read %s: %s", s->path,
           strerror(r->err_no));
  } else {
    uv_timer_stop(&s->grace);
    s->present = true;
    if (r->unchanged) rc__src_answered(s->ctx);
    bool same = s->suspect_set && memcmp(s->suspect, r->digest, sizeof s->suspect) == 0;
    /* Broken bytes may be a save caught half written. The writer is asked about first,
     * then the file: a writer that finished between the two shows in the file's times. */
    bool doubt = !r->unchanged && r->rc && !rc__src_initial(s->ctx) &&
                 s->writer_wait_ms < MAX_WRITER_WAIT_MS;
    bool writing = doubt && writer_open(s->path);
    if (doubt && !writing && changed_since(s->path, r)) {
      s->reread = true; /* stale: read what is there now */
    } else if (doubt && (writing || !same)) {
      /* Read again once writes settle; the same bytes then, with no writer and no change
       * since, are an error (twice, for file systems without leases); other bytes are
       * read anew. */
      s->suspect_set = true;
      memcpy(s->suspect, r->digest, sizeof s->suspect);
      if (writing) s->writer_wait_ms += s->settle_ms;
      uv_timer_start(&s->settle, settle_cb, s->settle_ms, 0);
    } else if (!r->unchanged) {
      s->writer_wait_ms = 0;
      s->have = true;
      s->suspect_set = false;
      memcpy(s->digest, r->digest, sizeof s->digest);
      answered(s);
      if (r->rc) /* the last good value stays; the error says where the file is wrong */
        rc__src_error(s->ctx, &r->err);
      else
        rc__src_deliver(s->ctx, r->value);
      r->value = NULL;
    }
  }
  rc__value_unref(r->value);
  if (s->reread && !s->stopping) {
    s->reread = false;
    check(s);
  }
}

/* Keeps the directory the path leads to watched when it is another: `link` is the
 * path's symlink text and `real` where it leads now, or both NULL when the path is not
 * a symlink (the file is then in the path's own directory). */
static void follow_target(file_source *s, const char *link, const char *real) {
  rc__free(s->link_head);
  s->link_head = NULL;
  if (link && link[0] != '/') {
    const char *slash = strchr(link, '/');
    size_t n = slash ? (size_t)(slash - link) : strlen(link);
    if (!(n == 1 && link[0] == '.') && !(n == 2 && link[0] == '.' && link[1] == '.'))
      s->link_head = rc__strndup(link, n);
  }
  const char *slash = real ? strrchr(real, '/') : NULL; /* no real: in s->dir */
  size_t dlen = slash ? (size_t)(slash - real) : 0;
  bool other_dir = slash && (strlen(s->dir) != dlen || strncmp(s->dir, real, dlen) != 0);
  if (!other_dir) {
    if (s->twd >= 0) rc__inotify_unwatch(s->in, s->twd);
    s->twd = -1;
    rc__free(s->tdir);
    rc__free(s->tname);
    s->tdir = s->tname = NULL;
    return;
  }
  if (s->tdir && strlen(s->tdir) == dlen && strncmp(s->tdir, real, dlen) == 0 && s->twd >= 0)
    return;
  if (s->twd >= 0) rc__inotify_unwatch(s->in, s->twd);
  rc__free(s->tdir);
  rc__free(s->tname);
  s->tdir = rc__strndup(real, dlen ? dlen : 1);
  s->tname = rc__strdup(slash + 1);
  s->twd = -1;
  if (s->tdir && s->tname && rc__inotify_watch(s->in, s->tdir, &s->twd) != 0) s->twd = -1;
  if (s->twd >= 0 && s->twd == s->wd) {
    /* The path's own directory under another name (a symlinked directory on the way):
     * inotify gives the same watch, whose events must stay the path's own (with the
     * check for a writer still at work), not a target directory's. */
    rc__inotify_unwatch(s->in, s->twd);
    s->twd = -1;
    rc__free(s->tdir);
    rc__free(s->tname);
    s->tdir = s->tname = NULL;
  }
}

/* Whether another process still has the file open for writing: a read lease is refused
 * (EAGAIN) exactly then. Where leases are not permitted, assume no writer. While we hold
 * the lease (a few microseconds) a writer opening the file breaks it, and the kernel
 * signals the holder: SIGIO by default, which would end the process. The break signal
 * is set to SIGURG instead, which is ignored unless handled; when the application
 * handles SIGURG itself, no lease is taken (no writer is assumed). */
static bool writer_open(const char *path) {
  struct sigaction sa;
  if (sigaction(SIGURG, NULL, &sa) != 0 || (sa.sa_flags & SA_SIGINFO) ||
      (sa.sa_handler != SIG_DFL && sa.sa_handler != SIG_IGN))
    return false;
  int fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK | O_NOCTTY);
  if (fd < 0) return false;
  struct stat st;
  bool busy = fstat(fd, &st) == 0 && S_ISREG(st.st_mode) &&
              fcntl(fd, F_SETSIG, SIGURG) == 0 &&
              fcntl(fd, F_SETLEASE, F_RDLCK) != 0 && errno == EAGAIN;
  if (!busy) fcntl(fd, F_SETLEASE, F_UNLCK);
  close(fd);
  return busy;
}

static void check(file_source *s) {
  if (s->stopping) return;
  uv_timer_stop(&s->settle);
  if (s->job) {
    s->reread = true;
    return;
  }
  /* One readlink tells whether the path is a symlink; only then is it resolved (a
   * realpath costs a readlink per component, on every change). */
  char link[PATH_MAX], real[PATH_MAX];
  const char *path = s->path;
  ssize_t n = readlink(s->path, link, sizeof link - 1);
  if (n >= 0) {
    link[n] = '\0';
    if (!realpath(s->path, real)) {
      if (errno == ENOENT || errno == ENOTDIR)
        missing(s);
      else
        report(s, RC_EIO, "cannot resolve %s: %s", s->path, strerror(errno));
      return;
    }
    if (s->in) follow_target(s, link, real);
    path = real;
  } else if (errno == EINVAL) { /* not a symlink */
    if (s->in) follow_target(s, NULL, NULL);
  } else if (errno == ENOENT || errno == ENOTDIR) {
    missing(s);
    return;
  } else {
    report(s, RC_EIO, "cannot resolve %s: %s", s->path, strerror(errno));
    return;
  }
  rc__parse_input in = {
    .path = path, .fmt = s->fmt, .limits = rc__src_limits(s->ctx), .name = s->path,
    /* force: the same bytes again still count as a delivery */
    .compare = s->have && s->present && !rc__src_repeats(s->ctx),
    .sync = rc__src_initial(s->ctx),
  };
  memcpy(in.last_digest, s->digest, sizeof in.last_digest);
  /* A small file is read (and read_done called) before submit returns, NULL. */
  rc__parse_job *j = rc__parse_submit(rc__src_host(s->ctx), &in, read_done, s);
  if (j) s->job = j;
}

/* The path does not lead to a file now. At start that is simply "absent"; later it may
 * be the middle of a save (rename dance, delete + re-create), so wait `grace_ms`. */
static void grace_cb(uv_timer_t *t) {
  file_source *s = t->data;
  if (s->stopping) return;
  if (access(s->path, F_OK) == 0) {
    check(s);
    return;
  }
  s->present = false;
  s->have = false; /* a re-created file with the same bytes is news again */
  answered(s);
  rc__src_deliver(s->ctx, NULL);
}

static void missing(file_source *s) {
  if (rc__src_initial(s->ctx)) {
    s->present = false;
    s->have = false;
    answered(s);
    rc__src_deliver(s->ctx, NULL);
    return;
  }
  if (!s->present) { /* still absent: nothing new */
    rc__src_answered(s->ctx);
    return;
  }
  if (!uv_is_active((uv_handle_t *)&s->grace))
    uv_timer_start(&s->grace, grace_cb, s->grace_ms, 0);
}

static void settle_cb(uv_timer_t *t) {
  file_source *s = t->data;
  if (s->stopping) return;
  /* Someone still writes without closing: wait, but not forever. */
  if (s->writer_wait_ms < MAX_WRITER_WAIT_MS && writer_open(s->path)) {
    s->writer_wait_ms += s->settle_ms;
    uv_timer_start(&s->settle, settle_cb, s->settle_ms, 0);
    return;
  }
  s->writer_wait_ms = 0;
  check(s);
}

/* Watches what the path names now: each ancestor of the directory down to the first
 * that does not exist, and the directory when it exists. New watches are made before
 * the old ones are dropped, so a directory in both keeps its watch (and events). An
 * ancestor that cannot be watched (no permission) is skipped. Returns 0 when the
 * directory is watched, 1 when it does not exist (an ancestor's watch will say when it
 * appears; the retry timer too), or an RC_E* code with `err` (inotify failed). */
static int watch_dir(file_source *s, rc_error *err) {
  int old_wd = s->wd;
  int *old = s->nparts ? rc__malloc(s->nparts * sizeof *old) : NULL;
  if (s->nparts && !old) return rc__err(err, RC_ENOMEM, s->path, 0, 0, "out of memory");
  if (old) memcpy(old, s->chain, s->nparts * sizeof *old);
  char path[PATH_MAX] = "/";
  size_t len = 1;
  bool exists = true;
  int e = 0;
  for (size_t k = 0; k < s->nparts; k++) {
    s->chain[k] = -1;
    if (exists) {
      e = rc__inotify_watch_mask(s->in, path, ANCESTOR_MASK, &s->chain[k]);
      if (e) s->chain[k] = -1;
      if (e == ENOENT || e == ENOTDIR) exists = false;
      else if (e == ENOSPC || e == ENOMEM) break;
    }
    size_t plen = strlen(s->parts[k]);
    if (len + plen + 2 > sizeof path) break;
    if (len > 1) path[len++] = '/';
    memcpy(path + len, s->parts[k], plen + 1);
    len += plen;
  }
  if (exists && e != ENOSPC && e != ENOMEM) {
    e = rc__inotify_watch(s->in, s->dir, &s->wd);
    if (e) s->wd = -1;
  } else if (e != ENOSPC && e != ENOMEM) {
    e = ENOENT;
    s->wd = -1;
  }
  for (size_t k = 0; k < s->nparts; k++) rc__inotify_unwatch(s->in, old[k]);
  rc__inotify_unwatch(s->in, old_wd);
  rc__free(old);
  if (e == 0) return 0;
  if (e == ENOENT || e == ENOTDIR) return 1;
  return rc__err(err, e == ENOMEM ? RC_ENOMEM : RC_ESYS, s->path, 0, 0,
                 "cannot watch directory %s: %s%s", s->dir, strerror(e),
                 e == ENOSPC ? " (see fs.inotify.max_user_watches)" : "");
}

/* The path may lead through other directories now (one renamed, deleted or made, or
 * events lost): watch afresh, then read. */
static void rewatch(file_source *s) {
  if (s->in && !s->polling) {
    rc_error err = {0};
    int rc = watch_dir(s, &err);
    if (rc < 0) {
      start_polling(s, &err);
    } else if (rc > 0 && !uv_is_active((uv_handle_t *)&s->retry)) {
      uv_timer_start(&s->retry, retry_cb, DIR_RETRY_MS, 0);
    }
  }
  check(s);
}

static void retry_cb(uv_timer_t *t) {
  file_source *s = t->data;
  if (s->stopping || s->wd >= 0) return;
  rc_error err = {0};
  int rc = watch_dir(s, &err);
  if (rc == 0) {
    check(s);
  } else if (rc < 0) {
    start_polling(s, &err); /* the directory is there, inotify is not */
  } else {
    uv_timer_start(&s->retry, retry_cb, DIR_RETRY_MS, 0);
  }
}

/* ---- source operations ---- */

static void handle_closed(uv_handle_t *h) {
  file_source *s = h->data;
  s->handles--;
  rc__host_handle_closed(rc__src_host(s->ctx));
  source_maybe_done(s);
}

static void source_maybe_done(file_source *s) {
  if (s->handles == 0 && !s->job && s->stop_done) {
    void (*done)(rc__source *) = s->stop_done;
    s->stop_done = NULL;
    done(&s->base);
  }
}

/* Joins the engine's inotify service (opened on demand) and watches the directory.
 * 0: watching; 1: the directory does not exist yet; < 0: inotify failed (err). */
static int go_realtime(file_source *s, rc_error *err) {
  if (!s->in) {
    s->in = rc__src_service(s->ctx, &rc__inotify_service, err);
    if (!s->in) return err && err->code ? err->code : RC_ESYS;
  }
  if (rc__inotify_listen(s->in, &s->listener))
    return rc__err(err, RC_ENOMEM, s->path, 0, 0, "out of memory");
  return watch_dir(s, err);
}

/* inotify failed for `s` (`why`): poll instead, and keep trying to watch. */
static void start_polling(file_source *s, const rc_error *why) {
  if (!s->polling)
    rc__src_state(s->ctx, s->path, why->code,
                  "cannot watch %s (%s): polling it every %llu ms and trying to watch again",
                  s->path, why->message, (unsigned long long)s->poll_ms);
  s->polling = true;
  rc__src_condition(s->ctx, RC__SRC_POLLING, true);
  uv_timer_start(&s->retry, poll_tick, s->poll_ms, 0);
}

/* A poll tick: try to watch again; otherwise read the file if its stat changed. */
static void poll_tick(uv_timer_t *t) {
  file_source *s = t->data;
  if (s->stopping || !s->polling) return;
  rc_error err = {0};
  if (go_realtime(s, &err) == 0) {
    s->polling = false;
    rc__src_condition(s->ctx, RC__SRC_POLLING, false);
    rc__src_state(s->ctx, s->path, 0, "watching %s with inotify again", s->path);
    check(s);
    return;
  }
  struct stat st;
  bool ok = stat(s->path, &st) == 0;
  bool same = ok == s->polled_ok &&
              (!ok || (st.st_ino == s->polled.st_ino && st.st_size == s->polled.st_size &&
                       st.st_mtim.tv_sec == s->polled.st_mtim.tv_sec &&
                       st.st_mtim.tv_nsec == s->polled.st_mtim.tv_nsec));
  s->polled_ok = ok;
  if (ok) s->polled = st;
  if (!same) check(s);
  uv_timer_start(&s->retry, poll_tick, s->poll_ms, 0);
}

static int fs_start(rc__source *base, rc_error *err) {
  file_source *s = (file_source *)base;
  uv_loop_t *loop = rc__src_loop(s->ctx);
  uv_timer_t *timers[] = {&s->settle, &s->grace, &s->retry};
  for (size_t i = 0; i < 3; i++) {
    int rc = uv_timer_init(loop, timers[i]);
    if (rc) return rc__err(err, RC_ESYS, NULL, 0, 0, "uv_timer_init: %s", uv_strerror(rc));
    timers[i]->data = s;
    s->handles++;
    rc__host_handle_opened(rc__src_host(s->ctx));
  }
  rc_error werr = {0};
  int rc = go_realtime(s, &werr);
  if (rc == RC_ENOMEM) {
    if (err) *err = werr;
    return rc;
  }
  if (rc < 0) { /* hybrid: no inotify for now */
    s->polled_ok = stat(s->path, &s->polled) == 0;
    start_polling(s, &werr);
    check(s);
    return 0;
  }
  if (rc > 0) {
    report(s, RC_EIO, "directory %s does not exist; waiting for it", s->dir);
    uv_timer_start(&s->retry, retry_cb, DIR_RETRY_MS, 0);
  }
  check(s);
  return 0;
}

static void fs_stop(rc__source *base, void (*done)(rc__source *)) {
  file_source *s = (file_source *)base;
  if (s->stopping) return;
  s->stopping = true;
  s->stop_done = done;
  if (s->in) {
    rc__inotify_unlisten(s->in, &s->listener);
    rc__inotify_unwatch(s->in, s->wd);
    rc__inotify_unwatch(s->in, s->twd);
    for (size_t k = 0; k < s->nparts; k++) rc__inotify_unwatch(s->in, s->chain[k]);
  }
  s->wd = s->twd = -1;
  for (size_t k = 0; k < s->nparts; k++) s->chain[k] = -1;
  rc__parse_cancel(s->job);
  uv_timer_t *timers[] = {&s->settle, &s->grace, &s->retry};
  bool any = false;
  for (size_t i = 0; i < 3; i++) {
    if (timers[i]->loop && !uv_is_closing((uv_handle_t *)timers[i])) {
      uv_close((uv_handle_t *)timers[i], handle_closed);
      any = true;
    }
  }
  if (!any) source_maybe_done(s);
}

static void fs_rescan(rc__source *base) { check((file_source *)base); }

static void fs_free(rc__source *base) {
  file_source *s = (file_source *)base;
  rc__free(s->path);
  rc__free(s->dir);
  rc__free(s->name);
  rc__free(s->tdir);
  rc__free(s->tname);
  rc__free(s->link_head);
  for (size_t k = 0; k < s->nparts; k++) rc__free(s->parts[k]);
  rc__free(s->parts);
  rc__free(s->chain);
  rc__free(s);
}

/* Splits `dir` into its parts and makes the (unwatched) chain. 0 or RC_ENOMEM. */
static int split_dir(file_source *s) {
  size_t n = 0;
  for (const char *p = s->dir; *p; p++)
    if (*p != '/' && (p == s->dir || p[-1] == '/')) n++;
  s->parts = rc__calloc(n ? n : 1, sizeof *s->parts);
  s->chain = rc__calloc(n ? n : 1, sizeof *s->chain);
  if (!s->parts || !s->chain) return RC_ENOMEM;
  for (const char *p = s->dir; *p;) {
    while (*p == '/') p++;
    if (!*p) break;
    const char *e = strchr(p, '/');
    size_t len = e ? (size_t)(e - p) : strlen(p);
    s->chain[s->nparts] = -1;
    if (!(s->parts[s->nparts] = rc__strndup(p, len))) return RC_ENOMEM;
    s->nparts++;
    p += len;
  }
  return 0;
}

static rc__source *fs_create(rc__source_ctx *ctx, rc_error *err) {
  file_source *s = rc__src_alloc(sizeof *s, err);
  if (!s) return NULL;
  s->ctx = ctx;
  s->listener.on_event = on_event;
  s->wd = s->twd = -1;
  s->settle_ms = (uint64_t)rc__opt_number(ctx, "settle_ms");
  s->grace_ms = (uint64_t)rc__opt_number(ctx, "missing_grace_ms");
  s->poll_ms = (uint64_t)rc__opt_number(ctx, "poll_ms");
  const char *path = rc__opt_string(ctx, "path");
  s->path = rc__strdup(path ? path : "");
  /* The format: the option, else the declared name's extension, else JSON. */
  s->fmt = rc__opt_format(ctx, s->path ? rc__format_from_path(s->path) : RC__FMT_AUTO);
  if (s->fmt == RC__FMT_AUTO) s->fmt = RC__FMT_JSON;
  const char *slash = s->path ? strrchr(s->path, '/') : NULL;
  if (s->path && slash && slash[1]) {
    s->dir = rc__strndup(s->path, slash == s->path ? 1 : (size_t)(slash - s->path));
    s->name = rc__strdup(slash + 1);
  }
  if (!s->path || !s->dir || !s->name || split_dir(s)) {
    if (s->path && *s->path && slash && slash[1])
      rc__err(err, RC_ENOMEM, NULL, 0, 0, "out of memory");
    else
      rc__src_policy_error(ctx, err, "file source needs a file path, got '%s'",
                           path ? path : "");
    fs_free(&s->base);
    return NULL;
  }
  return &s->base;
}

static const rc__opt_default file_defaults[] = {
  {"settle_ms", 25}, {"missing_grace_ms", 100}, {"poll_ms", 1000}, {NULL, 0},
};

const rc__source_kind rc__file_kind = {
  .name = "file", .flags = RC__SRC_FILE, .defaults = file_defaults,
  RC__SOURCE_FUNCS(fs),
};
