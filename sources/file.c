/* file.c: the file source. One raw inotify descriptor per engine, driven by a uv_poll_t
 * on the loop, watches the parent directory of every file (and the directory of a
 * symlink's target), so that in-place writes, rename-over saves, delete + re-create,
 * Kubernetes `..data` symlink swaps and files that do not exist yet are all seen.
 * uv_fs_event is not used because it hides IN_CLOSE_WRITE and IN_Q_OVERFLOW. */
#include "engine.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/inotify.h>
#include <sys/stat.h>
#include <unistd.h>

/* Files larger than this are read and parsed on the libuv thread pool. */
#define ASYNC_READ_BYTES ((size_t)1 << 20)
/* How long to wait for a writer that keeps the file open before reading anyway. */
#define MAX_WRITER_WAIT_MS 10000
#define DIR_RETRY_MS 1000

#define WATCH_MASK                                                                 \
  (IN_CLOSE_WRITE | IN_MOVED_TO | IN_MOVED_FROM | IN_CREATE | IN_DELETE | IN_MODIFY | \
   IN_ATTRIB | IN_DELETE_SELF | IN_MOVE_SELF | IN_ONLYDIR)

typedef struct file_source file_source;

typedef struct dirwatch {
  int wd;
  int users;
} dirwatch;

struct rc__filewatch {
  rc_engine_t *eng;
  int fd;
  uv_poll_t poll;
  dirwatch *dirs;
  size_t ndirs, dcap;
  file_source **srcs;
  size_t nsrcs, scap;
  bool closing;
};

/* Result of a read done on the thread pool. */
typedef struct read_job {
  uv_work_t req;
  file_source *src;
  char *path;
  uint64_t last_hash;
  size_t last_size;
  bool had_content;
  /* results */
  int err_no;            /* open/read errno, 0 if read */
  bool unchanged;
  uint64_t hash;
  size_t size;
  int parse_rc;
  rc_value_t *value;
  rc_error perr;
} read_job;

struct file_source {
  rc__source base;
  char *path;          /* absolute, as declared */
  char *dir, *name;    /* parent directory and base name of `path` */
  int wd;              /* watch on `dir`, -1 if not (yet) watched */
  char *tdir, *tname;  /* directory and name of the resolved target, if in another dir */
  int twd;             /* watch on `tdir`, -1 if none */
  char *link_head;     /* first segment of a relative symlink target, e.g. "..data" */
  rc__format fmt;
  uint64_t settle_ms, grace_ms;
  /* last read */
  bool have;           /* hash/size describe the file's last content */
  bool present;        /* the file existed at the last check */
  uint64_t hash;
  size_t size;
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
  read_job *job;       /* read in flight on the thread pool */
  bool reread;         /* another event arrived during the job */
  bool stopping;
  void (*stop_done)(rc__source *);
};

static void check(file_source *s);

/* ---- the shared inotify descriptor ---- */

static void fw_remove_src(rc__filewatch *fw, file_source *s) {
  for (size_t i = 0; i < fw->nsrcs; i++) {
    if (fw->srcs[i] == s) {
      fw->srcs[i] = fw->srcs[--fw->nsrcs];
      return;
    }
  }
}

/* Adds (or shares) a watch on `dir`. Returns the wd or -errno. */
static int dir_watch_add(rc__filewatch *fw, const char *dir) {
  int wd = inotify_add_watch(fw->fd, dir, WATCH_MASK);
  if (wd < 0) return -errno;
  for (size_t i = 0; i < fw->ndirs; i++) {
    if (fw->dirs[i].wd == wd) {
      fw->dirs[i].users++;
      return wd;
    }
  }
  if (fw->ndirs == fw->dcap) {
    size_t cap = fw->dcap ? fw->dcap * 2 : 8;
    dirwatch *d = rc__realloc(fw->dirs, cap * sizeof *d);
    if (!d) {
      inotify_rm_watch(fw->fd, wd);
      return -ENOMEM;
    }
    fw->dirs = d;
    fw->dcap = cap;
  }
  fw->dirs[fw->ndirs++] = (dirwatch){wd, 1};
  return wd;
}

static void dir_watch_drop(rc__filewatch *fw, int wd) {
  if (wd < 0) return;
  for (size_t i = 0; i < fw->ndirs; i++) {
    if (fw->dirs[i].wd == wd) {
      if (--fw->dirs[i].users == 0) {
        inotify_rm_watch(fw->fd, wd);
        fw->dirs[i] = fw->dirs[--fw->ndirs];
      }
      return;
    }
  }
}

/* The kernel removed watch `wd` (its directory was deleted or unmounted). */
static void dir_watch_gone(rc__filewatch *fw, int wd) {
  for (size_t i = 0; i < fw->ndirs; i++) {
    if (fw->dirs[i].wd == wd) {
      fw->dirs[i] = fw->dirs[--fw->ndirs];
      return;
    }
  }
}

static void settle_cb(uv_timer_t *t);
static void retry_cb(uv_timer_t *t);
static void poll_tick(uv_timer_t *t);
static void start_polling(file_source *s, const rc_error *why);

static bool relevant_in_dir(const file_source *s, const char *name) {
  return strcmp(name, s->name) == 0 || (s->link_head && strcmp(name, s->link_head) == 0);
}

/* What one inotify event means for one source. */
static void on_event(file_source *s, const struct inotify_event *ev, bool in_target_dir) {
  if (ev->mask & IN_IGNORED) {
    if (in_target_dir) {
      s->twd = -1;
      check(s);
    } else {
      s->wd = -1;
      check(s);
      uv_timer_start(&s->retry, retry_cb, DIR_RETRY_MS, 0);
    }
    return;
  }
  if (ev->mask & (IN_DELETE_SELF | IN_MOVE_SELF)) {
    check(s);
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

static void poll_cb(uv_poll_t *p, int status, int events) {
  rc__filewatch *fw = p->data;
  RC__UNUSED(events);
  if (status < 0 || fw->closing) return;
  char buf[64 * 1024] __attribute__((aligned(__alignof__(struct inotify_event))));
  for (;;) {
    ssize_t n = read(fw->fd, buf, sizeof buf);
    if (n <= 0) break;
    for (char *q = buf; q < buf + n;) {
      const struct inotify_event *ev = (const struct inotify_event *)q;
      q += sizeof *ev + ev->len;
      if (ev->mask & IN_Q_OVERFLOW) {
        /* Events were lost: re-read everything, the hash drops what did not change. */
        for (size_t i = 0; i < fw->nsrcs; i++) check(fw->srcs[i]);
        continue;
      }
      if (ev->mask & IN_IGNORED) dir_watch_gone(fw, ev->wd);
      /* Sources may stop from inside check() via callbacks: walk a copy of the count
       * and re-check bounds each turn. */
      for (size_t i = 0; i < fw->nsrcs; i++) {
        file_source *s = fw->srcs[i];
        if (s->stopping) continue;
        if (ev->wd == s->wd) on_event(s, ev, false);
        else if (ev->wd == s->twd) on_event(s, ev, true);
      }
    }
  }
}

static void fw_closed(uv_handle_t *h) {
  rc__filewatch *fw = h->data;
  rc_engine_t *eng = fw->eng;
  close(fw->fd);
  rc__free(fw->dirs);
  rc__free(fw->srcs);
  rc__free(fw);
  rc__handle_closed(eng);
}

static rc__filewatch *fw_get(rc_engine_t *eng, rc_error *err) {
  if (eng->files) return eng->files;
  rc__filewatch *fw = rc__calloc(1, sizeof *fw);
  if (!fw) {
    rc__err(err, RC_ENOMEM, NULL, 0, 0, "out of memory");
    return NULL;
  }
  fw->eng = eng;
  fw->fd = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
  if (fw->fd < 0) {
    rc__err(err, RC_ESYS, NULL, 0, 0, "inotify_init1: %s (see fs.inotify.max_user_instances)",
            strerror(errno));
    rc__free(fw);
    return NULL;
  }
  int rc = uv_poll_init(eng->loop, &fw->poll, fw->fd);
  fw->poll.data = fw;
  if (rc == 0) rc = uv_poll_start(&fw->poll, UV_READABLE, poll_cb);
  if (rc) {
    rc__err(err, RC_ESYS, NULL, 0, 0, "uv_poll on inotify: %s", uv_strerror(rc));
    close(fw->fd);
    rc__free(fw);
    return NULL;
  }
  fw->poll.data = fw;
  rc__handle_opened(eng);
  eng->files = fw;
  return fw;
}

void rc__filewatch_close(rc_engine_t *eng) {
  rc__filewatch *fw = eng->files;
  if (!fw || fw->closing) return;
  fw->closing = true;
  eng->files = NULL;
  uv_close((uv_handle_t *)&fw->poll, fw_closed);
}

/* ---- reading ---- */

/* Reads the whole file with RC__PARSE_PADDING spare bytes. Returns 0 or an errno; EFBIG
 * when the file is longer than `max` (checked before reading, and while reading in case
 * it grows), so an oversized file never costs its size in memory. */
static int read_all(const char *path, size_t max, char **out, size_t *len, size_t *cap) {
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) return errno;
  struct stat st;
  if (fstat(fd, &st) != 0) {
    int e = errno;
    close(fd);
    return e;
  }
  if (S_ISDIR(st.st_mode)) {
    close(fd);
    return EISDIR;
  }
  if ((size_t)st.st_size > max) {
    close(fd);
    return EFBIG;
  }
  size_t c = (size_t)st.st_size + RC__PARSE_PADDING + 1;
  char *p = rc__malloc(c);
  if (!p) {
    close(fd);
    return ENOMEM;
  }
  size_t n = 0;
  for (;;) {
    if (n + RC__PARSE_PADDING + 1 >= c) { /* the file grew while we read */
      char *q = rc__realloc(p, c * 2);
      if (!q) {
        rc__free(p);
        close(fd);
        return ENOMEM;
      }
      p = q;
      c *= 2;
    }
    ssize_t r = read(fd, p + n, c - n - RC__PARSE_PADDING - 1);
    if (r < 0) {
      if (errno == EINTR) continue;
      int e = errno;
      rc__free(p);
      close(fd);
      return e;
    }
    if (r == 0) break;
    n += (size_t)r;
    if (n > max) {
      rc__free(p);
      close(fd);
      return EFBIG;
    }
  }
  close(fd);
  memset(p + n, 0, RC__PARSE_PADDING + 1);
  *out = p;
  *len = n;
  *cap = c;
  return 0;
}

static rc__format format_for(const file_source *s) {
  if (s->fmt != RC__FMT_AUTO) return s->fmt;
  rc__format f = rc__format_from_path(s->path);
  return f == RC__FMT_AUTO ? RC__FMT_JSON : f;
}

/* Reads, hashes and (if changed) parses; runs on the loop or on the thread pool. */
static void do_read(read_job *j, const char *display, rc__format fmt,
                    const rc__parse_limits *lim) {
  char *data = NULL;
  size_t len = 0, cap = 0;
  j->err_no = read_all(j->path, lim->max_bytes, &data, &len, &cap);
  if (j->err_no) return;
  j->hash = rc__hash64(data, len);
  j->size = len;
  if (j->had_content && j->hash == j->last_hash && j->size == j->last_size) {
    j->unchanged = true;
    rc__free(data);
    return;
  }
  j->parse_rc = rc__parse(fmt, data, len, cap, display, lim, &j->value, &j->perr);
  rc__free(data);
}

static void missing(file_source *s);

/* Applies a finished read to the source (loop thread). */
static void apply_read(file_source *s, read_job *j) {
  if (j->err_no == ENOENT || j->err_no == ENOTDIR) {
    missing(s);
    return;
  }
  if (j->err_no == EFBIG) {
    rc_error e = {0};
    rc__err(&e, RC_ELIMIT, s->path, 0, 0, "%s is larger than the limit of %zu bytes "
            "(limits.max_bytes); the last good value stays", s->path,
            s->base.comp->limits.max_bytes);
    rc__deliver_error(s->base.comp, &e);
    return;
  }
  if (j->err_no) {
    rc_error e = {0};
    rc__err(&e, RC_EIO, s->path, 0, 0, "cannot read %s: %s", s->path, strerror(j->err_no));
    rc__deliver_error(s->base.comp, &e);
    return;
  }
  uv_timer_stop(&s->grace);
  s->present = true;
  if (j->unchanged) return;
  s->have = true;
  s->hash = j->hash;
  s->size = j->size;
  if (j->parse_rc) {
    /* The last good value stays in force; the error says where the file is wrong. */
    rc__deliver_error(s->base.comp, &j->perr);
    return;
  }
  rc__deliver(s->base.comp, j->value);
  j->value = NULL;
}

static void job_work(uv_work_t *req) {
  read_job *j = req->data;
  do_read(j, j->src->path, format_for(j->src), &j->src->base.comp->limits);
}

static void source_maybe_done(file_source *s);

static void job_after(uv_work_t *req, int status) {
  read_job *j = req->data;
  file_source *s = j->src;
  s->job = NULL;
  rc__handle_closed(s->base.eng);
  if (status == 0 && !s->stopping) apply_read(s, j);
  rc__value_unref(j->value);
  rc__free(j->path);
  rc__free(j);
  if (s->stopping) {
    source_maybe_done(s);
    return;
  }
  if (s->reread) {
    s->reread = false;
    check(s);
  }
}

/* Resolves where the path leads now and keeps the target directory watched. */
static void follow_target(file_source *s, const char *real) {
  rc__filewatch *fw = s->base.eng->files;
  rc__free(s->link_head);
  s->link_head = NULL;
  char link[PATH_MAX];
  ssize_t n = readlink(s->path, link, sizeof link - 1);
  if (n > 0) {
    link[n] = '\0';
    if (link[0] != '/') {
      char *slash = strchr(link, '/');
      if (slash) *slash = '\0';
      if (strcmp(link, ".") && strcmp(link, "..")) s->link_head = rc__strdup(link);
    }
  }
  const char *slash = strrchr(real, '/');
  size_t dlen = slash ? (size_t)(slash - real) : 0;
  bool other_dir = slash && (strlen(s->dir) != dlen || strncmp(s->dir, real, dlen) != 0);
  if (!other_dir) {
    if (s->twd >= 0) dir_watch_drop(fw, s->twd);
    s->twd = -1;
    rc__free(s->tdir);
    rc__free(s->tname);
    s->tdir = s->tname = NULL;
    return;
  }
  if (s->tdir && strlen(s->tdir) == dlen && strncmp(s->tdir, real, dlen) == 0 && s->twd >= 0)
    return;
  if (s->twd >= 0) dir_watch_drop(fw, s->twd);
  rc__free(s->tdir);
  rc__free(s->tname);
  s->tdir = rc__strndup(real, dlen ? dlen : 1);
  s->tname = rc__strdup(slash + 1);
  s->twd = (s->tdir && s->tname) ? dir_watch_add(fw, s->tdir) : -1;
  if (s->twd < 0) s->twd = -1;
}

/* Whether another process still has the file open for writing: a read lease is refused
 * (EAGAIN) exactly then. Where leases are not permitted, assume no writer. */
static bool writer_open(const char *path) {
  int fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK);
  if (fd < 0) return false;
  bool busy = fcntl(fd, F_SETLEASE, F_RDLCK) != 0 && errno == EAGAIN;
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
  char real[PATH_MAX];
  if (!realpath(s->path, real)) {
    if (errno == ENOENT || errno == ENOTDIR) {
      missing(s);
    } else {
      rc_error e = {0};
      rc__err(&e, RC_EIO, s->path, 0, 0, "cannot resolve %s: %s", s->path, strerror(errno));
      rc__deliver_error(s->base.comp, &e);
    }
    return;
  }
  if (s->base.eng->files) follow_target(s, real);
  struct stat st;
  read_job *j = rc__calloc(1, sizeof *j);
  char *path = rc__strdup(real);
  if (!j || !path) {
    rc__free(j);
    rc__free(path);
    rc_error e = {0};
    rc__err(&e, RC_ENOMEM, s->path, 0, 0, "out of memory reading %s", s->path);
    rc__deliver_error(s->base.comp, &e);
    return;
  }
  j->src = s;
  j->path = path;
  /* force: the same bytes again still count as a delivery. */
  j->had_content = s->have && s->present && !(s->base.comp && s->base.comp->force);
  j->last_hash = s->hash;
  j->last_size = s->size;
  bool big = stat(real, &st) == 0 && (size_t)st.st_size > ASYNC_READ_BYTES;
  if (big && !s->base.eng->initial) {
    j->req.data = j;
    if (uv_queue_work(s->base.eng->loop, &j->req, job_work, job_after) == 0) {
      s->job = j;
      rc__handle_opened(s->base.eng); /* engine free waits for the job too */
      return;
    }
  }
  do_read(j, s->path, format_for(s), &s->base.comp->limits);
  apply_read(s, j);
  rc__value_unref(j->value);
  rc__free(j->path);
  rc__free(j);
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
  rc__deliver(s->base.comp, NULL);
}

static void missing(file_source *s) {
  if (s->base.eng->initial) {
    s->present = false;
    s->have = false;
    rc__deliver(s->base.comp, NULL);
    return;
  }
  if (!s->present) return;
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

static int watch_dir(file_source *s, rc_error *err) {
  rc__filewatch *fw = s->base.eng->files;
  int wd = dir_watch_add(fw, s->dir);
  if (wd >= 0) {
    s->wd = wd;
    return 0;
  }
  if (wd == -ENOENT || wd == -ENOTDIR) return 1; /* retried by the retry timer */
  return rc__err(err, RC_ESYS, s->path, 0, 0, "cannot watch directory %s: %s%s", s->dir,
                 strerror(-wd), wd == -ENOSPC ? " (see fs.inotify.max_user_watches)" : "");
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
  rc__handle_closed(s->base.eng);
  source_maybe_done(s);
}

static void source_maybe_done(file_source *s) {
  if (s->handles == 0 && !s->job && s->stop_done) {
    void (*done)(rc__source *) = s->stop_done;
    s->stop_done = NULL;
    done(&s->base);
  }
}

/* Registers `s` with the shared watcher (created on demand) and watches its directory.
 * 0: watching; 1: the directory does not exist yet; < 0: inotify failed (err). */
static int go_realtime(file_source *s, rc_error *err) {
  rc__filewatch *fw = fw_get(s->base.eng, err);
  if (!fw) return err && err->code ? err->code : RC_ESYS;
  bool listed = false;
  for (size_t i = 0; i < fw->nsrcs; i++) listed = listed || fw->srcs[i] == s;
  if (!listed) {
    if (fw->nsrcs == fw->scap) {
      size_t cap = fw->scap ? fw->scap * 2 : 8;
      file_source **v = rc__realloc(fw->srcs, cap * sizeof *v);
      if (!v) return rc__err(err, RC_ENOMEM, s->path, 0, 0, "out of memory");
      fw->srcs = v;
      fw->scap = cap;
    }
    fw->srcs[fw->nsrcs++] = s;
  }
  return watch_dir(s, err);
}

/* inotify failed for `s` (`why`): poll instead, and keep trying to watch. */
static void start_polling(file_source *s, const rc_error *why) {
  if (!s->polling)
    rc__emit(s->base.eng, RC_EVENT_COMPONENT_STATE, s->base.comp ? s->base.comp->name : NULL,
             s->path, 0, 0, why->code,
             "cannot watch %s (%s): polling it every %llu ms and trying to watch again",
             s->path, why->message, (unsigned long long)s->poll_ms);
  s->polling = true;
  uv_timer_start(&s->retry, poll_tick, s->poll_ms, 0);
}

/* A poll tick: try to watch again; otherwise read the file if its stat changed. */
static void poll_tick(uv_timer_t *t) {
  file_source *s = t->data;
  if (s->stopping || !s->polling) return;
  rc_error err = {0};
  if (go_realtime(s, &err) == 0) {
    s->polling = false;
    rc__emit(s->base.eng, RC_EVENT_COMPONENT_STATE, s->base.comp ? s->base.comp->name : NULL,
             s->path, 0, 0, 0, "watching %s with inotify again", s->path);
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
  rc_engine_t *eng = base->eng;
  uv_timer_t *timers[] = {&s->settle, &s->grace, &s->retry};
  for (size_t i = 0; i < 3; i++) {
    uv_timer_init(eng->loop, timers[i]);
    timers[i]->data = s;
    s->handles++;
    rc__handle_opened(eng);
  }
  s->poll_ms = (uint64_t)rc__desc_number(base->comp, "poll_ms", 1000);
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
    rc_error e = {0};
    rc__err(&e, RC_EIO, s->path, 0, 0, "directory %s does not exist; waiting for it", s->dir);
    rc__deliver_error(base->comp, &e);
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
  rc__filewatch *fw = base->eng->files;
  if (fw) {
    fw_remove_src(fw, s);
    dir_watch_drop(fw, s->wd);
    dir_watch_drop(fw, s->twd);
  }
  s->wd = s->twd = -1;
  if (s->job) uv_cancel((uv_req_t *)&s->job->req);
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
  rc__free(s);
}

static const rc__source_ops file_ops = {"file", fs_start, fs_stop, fs_rescan, fs_free};

rc__source *rc__file_source_new(rc__component *c, rc_error *err) {
  file_source *s = rc__calloc(1, sizeof *s);
  if (!s) {
    rc__err(err, RC_ENOMEM, NULL, 0, 0, "out of memory");
    return NULL;
  }
  s->base.ops = &file_ops;
  s->base.eng = c->eng;
  s->base.comp = c;
  s->wd = s->twd = -1;
  s->settle_ms = c->src_settle_ms;
  s->grace_ms = c->src_missing_grace_ms;
  bool known = true;
  s->fmt = c->src_format ? rc__format_from_name(c->src_format, &known) : RC__FMT_AUTO;
  s->path = rc__strdup(c->src_path ? c->src_path : "");
  const char *slash = s->path ? strrchr(s->path, '/') : NULL;
  if (s->path && slash && slash[1]) {
    s->dir = rc__strndup(s->path, slash == s->path ? 1 : (size_t)(slash - s->path));
    s->name = rc__strdup(slash + 1);
  }
  if (!s->path || !s->dir || !s->name) {
    rc__err(err, RC_EPOLICY, c->eng->policy_path, c->line, 0,
            "component '%s': file source needs a file path, got '%s'", c->name,
            c->src_path ? c->src_path : "");
    fs_free(&s->base);
    return NULL;
  }
  return &s->base;
}
