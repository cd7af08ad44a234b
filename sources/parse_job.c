/* SPDX-License-Identifier: MIT (see LICENSE) */
/* parse_job.c: reading and parsing for every source (see parse_job.h). One job struct
 * holds copies of the input and receives the result; the same work function runs on the
 * loop or on the thread pool. Files are opened without blocking and checked to be
 * regular files before a byte is read, so a FIFO, a device or a directory at a watched
 * path is an error naming what it is, never a hang or an endless read. */
#include "parse_job.h"

#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

struct rc__parse_job {
  uv_work_t req;              /* first: cancelled as a uv_req_t */
  rc__host *host;
  rc__parse_done done;
  void *ud;
  /* input (owned copies) */
  char *path, *bytes, *name;
  size_t len;
  rc__format fmt;
  rc__parse_limits limits;
  bool compare;
  uint8_t last_digest[16];
  rc__parse_result res;
};

/* What a non-regular file is, for the message. */
static const char *file_kind(mode_t m) {
  if (S_ISDIR(m)) return "a directory";
  if (S_ISFIFO(m)) return "a FIFO";
  if (S_ISSOCK(m)) return "a socket";
  if (S_ISCHR(m)) return "a character device";
  if (S_ISBLK(m)) return "a block device";
  return "not a regular file";
}

/* Reads the whole regular file with RC__PARSE_PADDING spare bytes. Returns 0 or an
 * errno; EFBIG when it is longer than `max` (checked before reading, and while reading
 * in case it grows), so an oversized file never costs its size in memory; EINVAL with
 * *kind for anything but a regular file. O_NONBLOCK: opening a FIFO must not wait for a
 * writer. */
static int read_all(const char *path, size_t max, char **out, size_t *len, size_t *cap,
                    const char **kind, struct stat *after) {
  int fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK | O_NOCTTY);
  struct stat st;
  if (fd < 0) {
    /* A socket cannot be opened at all (ENXIO): say what is there rather than why the
     * open failed. */
    int e = errno;
    if (e == ENXIO && stat(path, &st) == 0 && !S_ISREG(st.st_mode)) {
      *kind = file_kind(st.st_mode);
      return EINVAL;
    }
    return e;
  }
  if (fstat(fd, &st) != 0) {
    int e = errno;
    close(fd);
    return e;
  }
  if (!S_ISREG(st.st_mode)) {
    *kind = file_kind(st.st_mode);
    close(fd);
    return EINVAL;
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
  if (fstat(fd, after) != 0) memset(after, 0, sizeof *after);
  close(fd);
  memset(p + n, 0, RC__PARSE_PADDING + 1);
  *out = p;
  *len = n;
  *cap = c;
  return 0;
}

static rc__format format_of(const rc__parse_job *j) {
  if (j->fmt != RC__FMT_AUTO) return j->fmt;
  rc__format f = j->path ? rc__format_from_path(j->path) : RC__FMT_AUTO;
  return f == RC__FMT_AUTO ? RC__FMT_JSON : f;
}

/* The work: on the loop or on a pool thread; touches only the job. */
static void run(rc__parse_job *j) {
  rc__parse_result *res = &j->res;
  const char *name = j->name ? j->name : j->path;
  if (!j->path) {
    res->rc = rc__parse(format_of(j), j->bytes, j->len, j->len, name, &j->limits,
                        &res->value, &res->err);
    return;
  }
  char *data = NULL;
  size_t len = 0, cap = 0;
  res->err_no = read_all(j->path, j->limits.max_bytes, &data, &len, &cap, &res->kind,
                          &res->after);
  if (res->err_no) return;
  res->len = len;
  rc__digest128(data, len, res->digest);
  if (j->compare && memcmp(res->digest, j->last_digest, sizeof res->digest) == 0) {
    res->unchanged = true;
    rc__free(data);
    return;
  }
  res->rc = rc__parse(format_of(j), data, len, cap, name, &j->limits, &res->value,
                      &res->err);
  rc__free(data);
}

static void job_free(rc__parse_job *j) {
  rc__value_unref(j->res.value);
  rc__free(j->path);
  rc__free(j->bytes);
  rc__free(j->name);
  rc__free(j);
}

static void work_cb(uv_work_t *req) { run(req->data); }

static void after_cb(uv_work_t *req, int status) {
  rc__parse_job *j = req->data;
  rc__host *host = j->host;
  if (status == UV_ECANCELED) {
    rc__value_unref(j->res.value);
    memset(&j->res, 0, sizeof j->res);
    j->res.cancelled = true;
  }
  j->done(j->ud, &j->res);
  j->res.value = NULL; /* the callback's now */
  job_free(j);
  rc__host_handle_closed(host);
}

/* Copies `in` into a new job; NULL on OOM. */
static rc__parse_job *job_new(rc__host *host, const rc__parse_input *in, bool copy_bytes) {
  rc__parse_job *j = rc__calloc(1, sizeof *j);
  if (!j) return NULL;
  j->host = host;
  j->fmt = in->fmt;
  if (in->limits) j->limits = *in->limits;
  else rc__parse_limits_default(&j->limits);
  j->compare = in->compare;
  memcpy(j->last_digest, in->last_digest, sizeof j->last_digest);
  bool ok = true;
  if (in->path) ok = (j->path = rc__strdup(in->path)) != NULL;
  if (ok && in->name) ok = (j->name = rc__strdup(in->name)) != NULL;
  if (ok && !in->path && copy_bytes) {
    ok = (j->bytes = rc__malloc(in->len + 1)) != NULL;
    if (ok) {
      memcpy(j->bytes, in->bytes, in->len);
      j->bytes[in->len] = '\0';
    }
  }
  j->len = in->len;
  if (!ok) {
    job_free(j);
    return NULL;
  }
  return j;
}

/* Whether `in` is large enough for the thread pool. */
static bool large(const rc__parse_input *in) {
  if (in->sync) return false;
  if (!in->path) return in->len >= RC__PARSE_ASYNC_BYTES;
  struct stat st;
  return stat(in->path, &st) == 0 && S_ISREG(st.st_mode) &&
         (size_t)st.st_size >= RC__PARSE_ASYNC_BYTES;
}

rc__parse_job *rc__parse_submit(rc__host *host, const rc__parse_input *in,
                                rc__parse_done done, void *ud) {
  if (large(in)) {
    rc__parse_job *j = job_new(host, in, true);
    if (j) {
      j->done = done;
      j->ud = ud;
      j->req.data = j;
      if (uv_queue_work(rc__host_loop(host), &j->req, work_cb, after_cb) == 0) {
        rc__host_handle_opened(host); /* engine free waits for the job like a handle */
        return j;
      }
      job_free(j);
    }
  }
  /* Small, or no memory or pool for a copy: run here, on the caller's bytes. */
  rc__parse_job *j = job_new(host, in, false);
  if (!j) {
    rc__parse_result res = {0};
    res.rc = rc__err(&res.err, RC_ENOMEM, in->name ? in->name : in->path, 0, 0,
                     "out of memory reading %s", in->name ? in->name : "the input");
    done(ud, &res);
    return NULL;
  }
  j->bytes = (char *)in->bytes; /* borrowed for the synchronous run */
  run(j);
  j->bytes = NULL;
  done(ud, &j->res);
  j->res.value = NULL;
  job_free(j);
  return NULL;
}

void rc__parse_cancel(rc__parse_job *job) {
  if (job) uv_cancel((uv_req_t *)&job->req);
}
