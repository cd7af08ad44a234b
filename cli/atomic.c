/* SPDX-License-Identifier: MIT (see LICENSE) */
/* atomic.c: writes one rendered output file on the thread pool, only when its bytes
 * change: compare with the file as it is, else write a temporary file in the same
 * directory, fsync it, give it the old file's mode and owner, rename it over the old
 * one and fsync the directory. A reader sees the old file or the new one, never a part.
 * The job carries copies of everything it needs; the loop thread reads the result in
 * the done callback. */
#include "sidecar.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static int fail(atomic_job *job, const char *what, const char *path) {
  int e = errno;
  job->code = e == ENOMEM ? RC_ENOMEM : RC_EIO;
  /* Truncated if it must be: a message, not a path to use. */
  int n = snprintf(job->message, sizeof job->message, "%s %s: %s", what, path, strerror(e));
  RC__UNUSED(n);
  return -1;
}

/* Copies `s` into `out` (size PATH_MAX); false (ENAMETOOLONG) when it does not fit. */
static bool copy_path(char *out, const char *s) {
  size_t n = strlen(s);
  if (n >= PATH_MAX) {
    errno = ENAMETOOLONG;
    return false;
  }
  memcpy(out, s, n + 1);
  return true;
}

/* Whether the file at `path` holds exactly `data` (false when it cannot be read). */
static bool same_bytes(const char *path, const char *data, size_t len) {
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) return false;
  struct stat st;
  bool same = fstat(fd, &st) == 0 && S_ISREG(st.st_mode) && (size_t)st.st_size == len;
  char buf[16384];
  size_t at = 0;
  while (same) {
    ssize_t n = read(fd, buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      same = n == 0 && at == len;
      break;
    }
    same = at + (size_t)n <= len && memcmp(buf, data + at, (size_t)n) == 0;
    at += (size_t)n;
  }
  close(fd);
  return same;
}

/* mkdir -p of the directory part of `path` (mode 0755). */
static int make_parents(char *path) {
  for (char *p = path + 1; *p; p++) {
    if (*p != '/') continue;
    *p = '\0';
    int rc = mkdir(path, 0755);
    *p = '/';
    if (rc != 0 && errno != EEXIST) return -1;
  }
  return 0;
}

static int write_all(int fd, const char *data, size_t len) {
  while (len > 0) {
    ssize_t n = write(fd, data, len);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return -1;
    data += n;
    len -= (size_t)n;
  }
  return 0;
}

/* The work, on a pool thread. */
static int write_file(atomic_job *job) {
  /* A symlink is followed: the file it names is replaced (created if need be), the
   * link stays. */
  char target[PATH_MAX];
  if (!copy_path(target, job->path)) return fail(job, "cannot write", job->path);
  for (int hops = 0;; hops++) {
    struct stat st;
    if (lstat(target, &st) != 0 || !S_ISLNK(st.st_mode)) break;
    char link[PATH_MAX];
    ssize_t n = hops < 40 ? readlink(target, link, sizeof link - 1) : -1;
    if (hops >= 40) errno = ELOOP;
    if (n < 0) return fail(job, "cannot follow the link", target);
    link[n] = '\0';
    char *slash = strrchr(target, '/');
    size_t keep = link[0] == '/' || !slash ? 0 : (size_t)(slash - target) + 1;
    if (keep + (size_t)n >= PATH_MAX) {
      errno = ENAMETOOLONG;
      return fail(job, "cannot follow the link", target);
    }
    memcpy(target + keep, link, (size_t)n + 1);
  }
  memcpy(job->target, target, sizeof target);
  if (same_bytes(target, job->data, job->len)) return 0;
  job->changed = true;
  if (job->dry) return 0;
  struct stat old;
  bool exists = stat(target, &old) == 0;
  if (!exists && make_parents(target) != 0) return fail(job, "cannot create the directory of", target);
  /* The temporary file: ".NAME.reactcfg-XXXXXX" in the same directory. */
  char dir[PATH_MAX], tmp[PATH_MAX + 32];
  memcpy(dir, target, sizeof dir);
  char *slash = strrchr(dir, '/');
  char base[NAME_MAX + 1];
  size_t blen = strlen(slash ? slash + 1 : dir);
  if (blen > NAME_MAX - 20) {
    errno = ENAMETOOLONG;
    return fail(job, "cannot write", target);
  }
  memcpy(base, slash ? slash + 1 : dir, blen + 1);
  if (slash == dir)
    dir[1] = '\0';
  else if (slash)
    *slash = '\0';
  else
    memcpy(dir, ".", 2);
  size_t dlen = strlen(dir);
  memcpy(tmp, dir, dlen);
  memcpy(tmp + dlen, "/.", 2);
  memcpy(tmp + dlen + 2, base, blen);
  memcpy(tmp + dlen + 2 + blen, ".reactcfg-XXXXXX", 17);
  int fd = mkstemp(tmp);
  if (fd < 0) return fail(job, "cannot create a temporary file beside", target);
  mode_t mode = exists ? old.st_mode & 07777 : (mode_t)(job->mode >= 0 ? job->mode : 0644);
  const char *what = NULL;
  if (write_all(fd, job->data, job->len) != 0) what = "cannot write";
  else if (fchmod(fd, mode) != 0) what = "cannot set the mode of";
  else if (exists && (old.st_uid != geteuid() || old.st_gid != getegid()) &&
           fchown(fd, old.st_uid, old.st_gid) != 0)
    what = "cannot keep the owner of";
  else if (fsync(fd) != 0) what = "cannot sync";
  if (what) {
    fail(job, what, target);
    close(fd);
    unlink(tmp);
    return -1;
  }
  if (close(fd) != 0) {
    fail(job, "cannot write", target);
    unlink(tmp);
    return -1;
  }
  if (rename(tmp, target) != 0) {
    fail(job, "cannot replace", target);
    unlink(tmp);
    return -1;
  }
  /* The rename itself is durable once the directory is synced. */
  int dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dfd >= 0) {
    fsync(dfd);
    close(dfd);
  }
  return 0;
}

static void work(uv_work_t *req) {
  atomic_job *job = req->data;
  job->code = 0;
  job->changed = false;
  write_file(job);
}

static void after(uv_work_t *req, int status) {
  atomic_job *job = req->data;
  if (status == UV_ECANCELED && !job->code) {
    job->code = RC_ESTATE;
    snprintf(job->message, sizeof job->message, "cancelled");
  }
  job->done(job);
}

atomic_job *atomic_job_new(const char *path, const char *data, size_t len, int mode,
                           bool dry) {
  atomic_job *job = rc__calloc(1, sizeof *job);
  if (!job) return NULL;
  job->path = rc__strdup(path);
  job->data = rc__malloc(len ? len : 1);
  if (!job->path || !job->data) {
    atomic_job_free(job);
    return NULL;
  }
  memcpy(job->data, data, len);
  job->len = len;
  job->mode = mode;
  job->dry = dry;
  job->req.data = job;
  return job;
}

int atomic_job_queue(uv_loop_t *loop, atomic_job *job, void (*done)(atomic_job *job)) {
  job->done = done;
  int rc = uv_queue_work(loop, &job->req, work, after);
  return rc ? RC_ESYS : 0;
}

void atomic_job_free(atomic_job *job) {
  if (!job) return;
  rc__free(job->path);
  rc__free(job->data);
  rc__free(job);
}
