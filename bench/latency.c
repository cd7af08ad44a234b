/* SPDX-License-Identifier: MIT (see LICENSE) */
/* latency.c: `reactcfg-bench latency`, the time from a completed save of a small JSON file
 * to the moment a watcher holds the new content. Three ways of saving (in place, temp file
 * renamed over, Kubernetes-style symlink swap) against three kinds of watcher: a minimal
 * raw-inotify reader (the floor), the engine through its public API, or any external
 * program that speaks a two-line protocol. Every timestamp is CLOCK_REALTIME, so a peer
 * in another process is measured on the same clock as the saves. */
#include "reactcfg.h"

#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <limits.h>
#include <math.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/inotify.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

int rc_bench_latency_main(int argc, char **argv);

enum {
  PAD_LEN = 200,              /* bytes of padding: the file is about 230 bytes */
  DEFAULT_SAVES = 200,
  DEFAULT_WARMUP = 5,         /* saves before the measured ones, not counted */
  DEFAULT_GAP_MS = 20,        /* minimum time from one save to the next */
  SETTLE_MS = 5,              /* quiet time after an observation before the next save */
  MISS_MS = 2000,             /* a save not seen within this long is missed */
  READY_MS = 10000,           /* how long an external peer may take to say "ready" */
};

static const char FILE_NAME[] = "config.json";
static const char STOP_NAME[] = ".bench-stop";

/* =====================================================================================
 * Clocks
 * ===================================================================================== */

static int64_t ts_ns(const struct timespec *ts) {
  return (int64_t)ts->tv_sec * 1000000000 + ts->tv_nsec;
}

/* Wall clock: the one clock every peer, in this process or another, can read. */
static int64_t now_rt(void) {
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  return ts_ns(&ts);
}

/* Monotonic clock: only for pacing the saves and for timeouts, never for results. */
static int64_t now_mono(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return ts_ns(&ts);
}

static struct timespec to_ts(int64_t ns) {
  struct timespec ts = {(time_t)(ns / 1000000000), (long)(ns % 1000000000)};
  return ts;
}

static void sleep_until_mono(int64_t deadline) {
  struct timespec ts = to_ts(deadline);
  while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, NULL) == EINTR) {
  }
}

static void sleep_us(int64_t us) {
  sleep_until_mono(now_mono() + us * 1000);
}

/* =====================================================================================
 * Observations
 * Each watcher calls rec_add() once per time it took a new content into account, with
 * the seq it saw (-1 when the content was not one complete save). The saving thread waits
 * on the same lock for the seq it has just written.
 * ===================================================================================== */

typedef struct obs {
  int64_t t_ns;   /* CLOCK_REALTIME when the watcher held the content */
  long seq;       /* seq read, or -1 for a torn or invalid content */
} obs;

typedef struct recorder {
  pthread_mutex_t mu;
  pthread_cond_t cv;     /* signalled on every observation; waits on CLOCK_MONOTONIC */
  obs *v;
  size_t n, cap;
  unsigned char *seen;   /* seen[seq] once seq was observed, for seq in [0, nseq) */
  long nseq;
  int oom;               /* an observation was lost for want of memory */
} recorder;

/* A condition variable whose timed waits take CLOCK_MONOTONIC deadlines. */
static void cond_init_mono(pthread_cond_t *cv) {
  pthread_condattr_t ca;
  pthread_condattr_init(&ca);
  pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
  pthread_cond_init(cv, &ca);
  pthread_condattr_destroy(&ca);
}

static int rec_init(recorder *r, long nseq) {
  memset(r, 0, sizeof *r);
  cond_init_mono(&r->cv);
  pthread_mutex_init(&r->mu, NULL);
  r->nseq = nseq;
  r->seen = calloc((size_t)nseq, 1);
  return r->seen ? 0 : -1;
}

static void rec_free(recorder *r) {
  pthread_cond_destroy(&r->cv);
  pthread_mutex_destroy(&r->mu);
  free(r->v);
  free(r->seen);
}

/* Thread: any watcher thread. Holds the lock only to append. */
static void rec_add(recorder *r, int64_t t_ns, long seq) {
  pthread_mutex_lock(&r->mu);
  if (r->n == r->cap) {
    size_t cap = r->cap ? r->cap * 2 : 1024;
    obs *v = realloc(r->v, cap * sizeof *v);
    if (!v) {
      r->oom = 1;
      pthread_mutex_unlock(&r->mu);
      return;
    }
    r->v = v;
    r->cap = cap;
  }
  r->v[r->n++] = (obs){t_ns, seq};
  if (seq >= 0 && seq < r->nseq) r->seen[seq] = 1;
  pthread_cond_broadcast(&r->cv);
  pthread_mutex_unlock(&r->mu);
}

/* Waits until `seq` has been observed or the monotonic `deadline` passes.
 * Returns 1 when it was observed. */
static int rec_wait(recorder *r, long seq, int64_t deadline) {
  struct timespec ts = to_ts(deadline);
  pthread_mutex_lock(&r->mu);
  int rv = 0;
  while (!(rv = r->seen[seq]))
    if (pthread_cond_timedwait(&r->cv, &r->mu, &ts) == ETIMEDOUT) {
      rv = r->seen[seq];
      break;
    }
  pthread_mutex_unlock(&r->mu);
  return rv;
}

/* =====================================================================================
 * Saves
 * The content of save K is `{"seq": K, "pad": "<PAD_LEN letters>"}` and a newline. A
 * prefix of it is never valid JSON, so a watcher that parses too early fails loudly
 * rather than seeing an old or half value.
 * ===================================================================================== */

typedef enum save_mode { MODE_INPLACE, MODE_RENAME, MODE_SYMLINK } save_mode;
static const char *const MODE_NAMES[] = {"inplace", "rename", "symlink"};

typedef struct bench {
  save_mode mode;
  char dir[PATH_MAX];      /* private temporary directory */
  char file[PATH_MAX];     /* dir/config.json: what every watcher is pointed at */
  char data[64];           /* symlink mode: current ..<unique> directory name */
  unsigned long uniq;
  int pause_us;            /* in-place mode: pause between the two write() calls */
} bench;

static int format_save(char *buf, size_t size, long seq) {
  char pad[PAD_LEN + 1];
  for (int i = 0; i < PAD_LEN; i++) pad[i] = (char)('a' + (seq + i) % 26);
  pad[PAD_LEN] = 0;
  return snprintf(buf, size, "{\"seq\": %ld, \"pad\": \"%s\"}\n", seq, pad);
}

/* The seq of `buf` if it is exactly one complete save, else -1. */
static long parse_save(const char *buf, size_t len) {
  static const char head[] = "{\"seq\": ";
  if (len < sizeof head || memcmp(buf, head, sizeof head - 1) != 0) return -1;
  char *end;
  errno = 0;
  long seq = strtol(buf + sizeof head - 1, &end, 10);
  if (errno || end == buf + sizeof head - 1 || seq < 0) return -1;
  char want[PAD_LEN + 64];
  int n = format_save(want, sizeof want, seq);
  return (size_t)n == len && memcmp(want, buf, len) == 0 ? seq : -1;
}

static int write_all(int fd, const char *p, size_t n) {
  while (n > 0) {
    ssize_t w = write(fd, p, n);
    if (w < 0) {
      if (errno == EINTR) continue;
      return -1;
    }
    p += w;
    n -= (size_t)w;
  }
  return 0;
}

static int write_file(const char *path, const char *buf, size_t len) {
  int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) return -1;
  int rv = write_all(fd, buf, len);
  if (close(fd) != 0) rv = -1;
  return rv;
}

/* dir/name into a PATH_MAX buffer. The directory is checked to be short at start, so
 * only the result of a misuse is truncated; -1 tells it. */
static int join_path(char *out, const char *dir, const char *name) {
  size_t d = strlen(dir), n = strlen(name);
  if (d + 1 + n >= PATH_MAX) {
    out[0] = 0;
    return -1;
  }
  memcpy(out, dir, d);
  out[d] = '/';
  memcpy(out + d + 1, name, n + 1);
  return 0;
}

/* Symlink mode: a fresh ..<unique> directory holding config.json, like the kubelet's
 * timestamped payload directories. */
static int make_data_dir(bench *b, const char *buf, size_t len, char *name, size_t size) {
  char p[PATH_MAX], f[PATH_MAX];
  snprintf(name, size, "..%lld_%06lu", (long long)(now_rt() / 1000000000), ++b->uniq);
  join_path(p, b->dir, name);
  if (mkdir(p, 0755) != 0) return -1;
  join_path(f, p, FILE_NAME);
  return write_file(f, buf, len);
}

/* Writes save 0 before any watcher starts. */
static int setup_files(bench *b) {
  char buf[PAD_LEN + 64];
  int n = format_save(buf, sizeof buf, 0);
  if (b->mode != MODE_SYMLINK) return write_file(b->file, buf, (size_t)n);
  char p[PATH_MAX];
  if (make_data_dir(b, buf, (size_t)n, b->data, sizeof b->data) != 0) return -1;
  join_path(p, b->dir, "..data");
  if (symlink(b->data, p) != 0) return -1;
  return symlink("..data/config.json", b->file);
}

/* Performs save `seq` and returns the CLOCK_REALTIME at which it completed (after the
 * close, the rename or the ..data swap), or -1. */
static int64_t do_save(bench *b, long seq) {
  char buf[PAD_LEN + 64], p[PATH_MAX], q[PATH_MAX];
  size_t len = (size_t)format_save(buf, sizeof buf, seq);
  int64_t t;
  switch (b->mode) {
  case MODE_INPLACE: {
    /* Two writes with a pause: a watcher that reads on the first modification sees a
     * truncated file. The split falls inside the padding. */
    int fd = open(b->file, O_WRONLY | O_TRUNC | O_CLOEXEC);
    if (fd < 0) return -1;
    size_t half = len - PAD_LEN / 2 - 3;
    int rv = write_all(fd, buf, half);
    if (b->pause_us > 0) sleep_us(b->pause_us);
    if (rv == 0) rv = write_all(fd, buf + half, len - half);
    if (close(fd) != 0) rv = -1;
    t = now_rt();
    return rv == 0 ? t : -1;
  }
  case MODE_RENAME:
    join_path(p, b->dir, ".config.json.tmp");
    if (write_file(p, buf, len) != 0 || rename(p, b->file) != 0) return -1;
    return now_rt();
  case MODE_SYMLINK: {
    /* The kubelet's AtomicWriter: payload dir, ..data_tmp -> it, rename over ..data,
     * then remove the old payload. */
    char name[64];
    if (make_data_dir(b, buf, len, name, sizeof name) != 0) return -1;
    join_path(p, b->dir, "..data_tmp");
    unlink(p);
    if (symlink(name, p) != 0) return -1;
    join_path(q, b->dir, "..data");
    if (rename(p, q) != 0) return -1;
    t = now_rt();
    join_path(p, b->dir, b->data);
    join_path(q, p, FILE_NAME);
    unlink(q);
    rmdir(p);
    memcpy(b->data, name, sizeof b->data);
    return t;
  }
  }
  return -1;
}

static int rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw) {
  (void)st, (void)flag, (void)ftw;
  remove(path); /* best effort: a leftover temporary directory is harmless */
  return 0;
}

/* =====================================================================================
 * Peer: floor
 * What a hand-written minimal watcher achieves: inotify on the directory, a blocking
 * read(), and on the event that completes a save, fopen + read + strtol, all on the
 * thread that read the event. No event loop, no debounce, no thread hop.
 * ===================================================================================== */

typedef struct peer {
  const char *name;
  recorder *rec;
  bench *b;
  /* floor */
  int ifd;
  pthread_t thread;
  int thread_started;
  /* reactcfg */
  rc_engine_t *eng;
  int source_errors;       /* touched on the loop thread only, read after stop */
  /* external */
  char **argv;             /* the command, `argc` words */
  int argc;
  pid_t pid;
  FILE *out;
  pthread_mutex_t mu;
  pthread_cond_t cv;        /* CLOCK_MONOTONIC, like the recorder's */
  int ready;               /* 1 once "ready" was read, -1 at EOF before it */
  long bad_lines;
} peer;

static long read_save_file(const char *path) {
  char buf[PAD_LEN + 128];
  FILE *f = fopen(path, "re");
  if (!f) return -1;
  size_t n = fread(buf, 1, sizeof buf, f);
  fclose(f);
  return parse_save(buf, n);
}

static void *floor_main(void *arg) {
  peer *pe = arg;
  /* Symlink saves complete when ..data is renamed over; the others when config.json is
   * closed after writing (in place) or moved over (rename). */
  const char *target = pe->b->mode == MODE_SYMLINK ? "..data" : FILE_NAME;
  char buf[16384] __attribute__((aligned(__alignof__(struct inotify_event))));
  for (;;) {
    ssize_t n = read(pe->ifd, buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return NULL;
    int stop = 0;
    for (char *p = buf; p < buf + n;) {
      const struct inotify_event *e = (const struct inotify_event *)p;
      p += sizeof *e + e->len;
      if (e->mask & IN_Q_OVERFLOW) {
        rec_add(pe->rec, now_rt(), read_save_file(pe->b->file));
        continue;
      }
      if (e->len == 0) continue;
      if (strcmp(e->name, STOP_NAME) == 0) stop = 1;
      else if (strcmp(e->name, target) == 0) {
        long seq = read_save_file(pe->b->file);
        rec_add(pe->rec, now_rt(), seq);
      }
    }
    if (stop) return NULL;
  }
}

static int floor_start(peer *pe) {
  const uint32_t mask = IN_CLOSE_WRITE | IN_MOVED_TO | IN_CREATE;
  pe->ifd = inotify_init1(IN_CLOEXEC);
  if (pe->ifd < 0 || inotify_add_watch(pe->ifd, pe->b->dir, mask) < 0) {
    fprintf(stderr, "latency: inotify: %s\n", strerror(errno));
    return -1;
  }
  int e = pthread_create(&pe->thread, NULL, floor_main, pe);
  if (e != 0) {
    fprintf(stderr, "latency: pthread_create: %s\n", strerror(e));
    return -1;
  }
  pe->thread_started = 1;
  return 0;
}

static void floor_stop(peer *pe) {
  if (pe->thread_started) {
    char p[PATH_MAX];
    join_path(p, pe->b->dir, STOP_NAME);
    write_file(p, "", 0);
    pthread_join(pe->thread, NULL);
  }
  if (pe->ifd >= 0) close(pe->ifd);
}

/* =====================================================================================
 * Peer: reactcfg
 * The engine on its own thread, as an application would use it: a policy with one file
 * component and no debounce, a subscription on it, snapshots read in the callback.
 * ===================================================================================== */

static const char POLICY[] =
  "local rc = require \"reactcfg\"\n"
  "return rc.policy { components = { cfg = { source = rc.file \"config.json\","
  " debounce = \"0ms\" } } }\n";

/* Runs on the engine's loop thread after each commit that touched `cfg`. */
static void on_cfg(void *ud, const rc_snapshot_t *snap, const rc_change_t *changes,
                   size_t n) {
  (void)changes, (void)n;
  peer *pe = ud;
  int64_t t = now_rt();
  int64_t seq;
  const char *pad;
  size_t plen;
  long s = -1;
  if (rc_snapshot_get_int(snap, "cfg.seq", &seq) == 0 &&
      rc_snapshot_get_string(snap, "cfg.pad", &pad, &plen) == 0 && plen == PAD_LEN)
    s = (long)seq;
  rec_add(pe->rec, t, s);
}

static void on_event(void *ud, const rc_event_t *ev) {
  peer *pe = ud;
  if (ev->type == RC_EVENT_SOURCE_ERROR) pe->source_errors++;
}

static int reactcfg_start(peer *pe) {
  char path[PATH_MAX];
  rc_error err = {0};
  join_path(path, pe->b->dir, "policy.lua");
  if (write_file(path, POLICY, sizeof POLICY - 1) != 0) return -1;
  pe->eng = rc_engine_new(&err);
  int rv = pe->eng ? 0 : -1;
  if (rv == 0) rv = rc_engine_load_policy(pe->eng, path, &err);
  if (rv == 0) rc_engine_on_event(pe->eng, on_event, pe);
  if (rv == 0) rv = rc_subscribe(pe->eng, "cfg", on_cfg, pe, &err) > 0 ? 0 : -1;
  if (rv == 0) rv = rc_engine_start(pe->eng, &err);
  if (rv != 0) {
    if (err.file[0]) fprintf(stderr, "latency: %s:%d: %s\n", err.file, err.line, err.message);
    else fprintf(stderr, "latency: reactcfg: %s (%s)\n", err.message, rc_err_name(err.code));
  }
  return rv;
}

static void reactcfg_stop(peer *pe) {
  if (!pe->eng) return;
  rc_engine_stop(pe->eng);
  if (pe->source_errors > 0)
    fprintf(stderr, "latency: reactcfg reported %d source.error events (torn reads "
            "it refused to commit)\n", pe->source_errors);
  rc_engine_free(pe->eng);
  pe->eng = NULL;
}

/* =====================================================================================
 * Peer: external program
 * Started as `CMD... FILE`. It prints "ready" once it watches, then one line per change
 * it took into account: "<CLOCK_REALTIME ns> <seq>", seq -1 for an invalid content.
 * ===================================================================================== */

static void *external_reader(void *arg) {
  peer *pe = arg;
  char *line = NULL;
  size_t cap = 0;
  ssize_t len;
  while ((len = getline(&line, &cap, pe->out)) >= 0) {
    long long t;
    long seq;
    if (!pe->ready && strncmp(line, "ready", 5) == 0) {
      pthread_mutex_lock(&pe->mu);
      pe->ready = 1;
      pthread_cond_broadcast(&pe->cv);
      pthread_mutex_unlock(&pe->mu);
    } else if (sscanf(line, "%lld %ld", &t, &seq) == 2) {
      rec_add(pe->rec, (int64_t)t, seq < 0 ? -1 : seq);
    } else {
      pe->bad_lines++;
    }
  }
  free(line);
  pthread_mutex_lock(&pe->mu);
  if (!pe->ready) pe->ready = -1;
  pthread_cond_broadcast(&pe->cv);
  pthread_mutex_unlock(&pe->mu);
  return NULL;
}

static int external_start(peer *pe) {
  int fds[2];
  if (pipe2(fds, O_CLOEXEC) != 0) {
    fprintf(stderr, "latency: pipe: %s\n", strerror(errno));
    return -1;
  }
  size_t argc = (size_t)pe->argc;
  char **args = calloc(argc + 2, sizeof *args);
  if (!args) return -1;
  memcpy(args, pe->argv, argc * sizeof *args);
  args[argc] = pe->b->file;
  pe->pid = fork();
  if (pe->pid < 0) {
    fprintf(stderr, "latency: fork: %s\n", strerror(errno));
    free(args);
    return -1;
  }
  if (pe->pid == 0) {
    dup2(fds[1], STDOUT_FILENO);
    int nul = open("/dev/null", O_RDONLY);
    if (nul >= 0) dup2(nul, STDIN_FILENO);
    execvp(args[0], args);
    fprintf(stderr, "latency: cannot run %s: %s\n", args[0], strerror(errno));
    _exit(127);
  }
  free(args);
  close(fds[1]);
  pe->out = fdopen(fds[0], "r");
  if (!pe->out || pthread_create(&pe->thread, NULL, external_reader, pe) != 0) return -1;
  pe->thread_started = 1;
  struct timespec ts = to_ts(now_mono() + (int64_t)READY_MS * 1000000);
  pthread_mutex_lock(&pe->mu);
  while (pe->ready == 0)
    if (pthread_cond_timedwait(&pe->cv, &pe->mu, &ts) == ETIMEDOUT) break;
  int ready = pe->ready;
  pthread_mutex_unlock(&pe->mu);
  if (ready != 1) fprintf(stderr, "latency: %s never printed \"ready\"\n", pe->argv[0]);
  return ready == 1 ? 0 : -1;
}

static void external_stop(peer *pe) {
  if (pe->pid > 0) {
    kill(pe->pid, SIGTERM);
    waitpid(pe->pid, NULL, 0);
    pe->pid = 0;
  }
  if (pe->thread_started) pthread_join(pe->thread, NULL);
  pe->thread_started = 0;
  if (pe->out) fclose(pe->out);
  pe->out = NULL;
  if (pe->bad_lines)
    fprintf(stderr, "latency: %ld unreadable lines from %s\n", pe->bad_lines, pe->name);
}

/* =====================================================================================
 * The run and its summary
 * ===================================================================================== */

typedef enum peer_kind { PEER_FLOOR, PEER_REACTCFG, PEER_EXTERNAL } peer_kind;

static int cmp_i64(const void *a, const void *b) {
  int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
  return (x > y) - (x < y);
}

/* Nearest-rank percentile of sorted `v`, in whole microseconds. */
static long long pct_us(const int64_t *v, size_t n, double p) {
  size_t k = (size_t)ceil(p * (double)n);
  if (k < 1) k = 1;
  return llround((double)v[k - 1] / 1000.0);
}

typedef struct result {
  size_t n, observed, missed, torn, dup;
  int64_t *lat;   /* sorted latencies of the observed saves, ns */
} result;

/* Pairs observations with saves. Only observations after the first measured save began
 * count: before that the peer may still be reporting its start or the warm-up. */
static int summarize(recorder *r, const int64_t *begin, const int64_t *done, long first,
                     long last, result *res) {
  long nsaves = last - first + 1;
  memset(res, 0, sizeof *res);
  res->n = (size_t)nsaves;
  res->lat = malloc((size_t)nsaves * sizeof *res->lat);
  int64_t *firstobs = malloc((size_t)nsaves * sizeof *firstobs);
  if (!res->lat || !firstobs) {
    free(firstobs);
    return -1;
  }
  for (long i = 0; i < nsaves; i++) firstobs[i] = INT64_MIN;
  for (size_t i = 0; i < r->n; i++) {
    const obs *o = &r->v[i];
    if (o->t_ns < begin[first]) continue;
    if (o->seq < 0 || o->seq > last) {
      res->torn++;
    } else if (o->seq < first) {
      res->dup++;    /* a warm-up save seen again */
    } else if (firstobs[o->seq - first] != INT64_MIN) {
      res->dup++;
    } else {
      firstobs[o->seq - first] = o->t_ns;
    }
  }
  for (long k = first; k <= last; k++) {
    int64_t t = firstobs[k - first];
    if (t == INT64_MIN || t - done[k] > (int64_t)MISS_MS * 1000000) res->missed++;
    else res->lat[res->observed++] = t - done[k];
  }
  free(firstobs);
  qsort(res->lat, res->observed, sizeof *res->lat, cmp_i64);
  return 0;
}

static void usage(FILE *f) {
  fprintf(f,
    "usage: reactcfg-bench latency [--mode inplace|rename|symlink] [--saves N]\n"
    "         [--warmup N] [--gap-ms N] [--pause-us N] [--dir DIR] [--name NAME] [--keep]\n"
    "         [--peer floor|reactcfg|CMD...]\n"
    "Saves a small JSON file N times and prints the latency from each completed save to\n"
    "the moment the peer holds the new content (CLOCK_REALTIME on both sides):\n"
    "  latency mode=M peer=P n=N p50_us= p90_us= p99_us= max_us= missed= torn= dup=\n"
    "--peer CMD... must come last: the program is run as `CMD... FILE`, prints \"ready\"\n"
    "once watching, then `<realtime_ns> <seq>` per change it sees (seq -1 if invalid).\n");
}

static int parse_long(const char *s, long lo, long hi, long *out) {
  char *end;
  errno = 0;
  long v = strtol(s, &end, 10);
  if (errno || *s == 0 || *end != 0 || v < lo || v > hi) return -1;
  *out = v;
  return 0;
}

/* `argv` holds the arguments after the subcommand name, as reactcfg_bench.c's dispatch
 * table passes them (argv[argc] need not be NULL). Returns the process exit code:
 * 0 when the run completed (missed saves are a result, not a failure), 1 when the run
 * could not be set up, 2 for bad usage. */
int rc_bench_latency_main(int argc, char **argv) {
  bench b = {.mode = MODE_INPLACE, .pause_us = 1000};
  long saves = DEFAULT_SAVES, warmup = DEFAULT_WARMUP, gap_ms = DEFAULT_GAP_MS;
  const char *parent = getenv("TMPDIR"), *name = NULL;
  int keep = 0;
  peer_kind kind = PEER_FLOOR;
  char **ext = NULL;
  int next = 0;
  if (!parent || !*parent) parent = "/tmp";

  for (int i = 0; i < argc; i++) {
    const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
    long n;
    if (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0) {
      usage(stdout);
      return 0;
    } else if (strcmp(a, "--keep") == 0) {
      keep = 1;
    } else if (!v) {
      usage(stderr);
      return 2;
    } else if (strcmp(a, "--mode") == 0) {
      int m = -1;
      for (int k = 0; k < 3; k++)
        if (strcmp(v, MODE_NAMES[k]) == 0) m = k;
      if (m < 0) {
        fprintf(stderr, "latency: unknown mode %s\n", v);
        return 2;
      }
      b.mode = (save_mode)m;
      i++;
    } else if (strcmp(a, "--saves") == 0 && parse_long(v, 1, 1000000, &n) == 0) {
      saves = n;
      i++;
    } else if (strcmp(a, "--warmup") == 0 && parse_long(v, 0, 1000, &n) == 0) {
      warmup = n;
      i++;
    } else if (strcmp(a, "--gap-ms") == 0 && parse_long(v, 1, 60000, &n) == 0) {
      gap_ms = n;
      i++;
    } else if (strcmp(a, "--pause-us") == 0 && parse_long(v, 0, 1000000, &n) == 0) {
      b.pause_us = (int)n;
      i++;
    } else if (strcmp(a, "--dir") == 0) {
      parent = v;
      i++;
    } else if (strcmp(a, "--name") == 0) {
      name = v;
      i++;
    } else if (strcmp(a, "--peer") == 0) {
      if (strcmp(v, "floor") == 0 && i + 2 == argc) kind = PEER_FLOOR;
      else if (strcmp(v, "reactcfg") == 0 && i + 2 == argc) kind = PEER_REACTCFG;
      else {
        kind = PEER_EXTERNAL;
        ext = argv + i + 1;
        next = argc - (i + 1);
      }
      break;
    } else {
      fprintf(stderr, "latency: bad option or value: %s %s\n", a, v);
      usage(stderr);
      return 2;
    }
  }
  if (!name) {
    if (kind == PEER_EXTERNAL) {
      const char *slash = strrchr(ext[0], '/');
      name = slash ? slash + 1 : ext[0];
    } else {
      name = kind == PEER_FLOOR ? "floor" : "reactcfg";
    }
  }

  if (strlen(parent) > 1024) {
    fprintf(stderr, "latency: directory name too long: %s\n", parent);
    return 2;
  }
  snprintf(b.dir, sizeof b.dir, "%s/rc-latency-XXXXXX", parent);
  if (!mkdtemp(b.dir)) {
    fprintf(stderr, "latency: mkdtemp in %s: %s\n", parent, strerror(errno));
    return 1;
  }
  join_path(b.file, b.dir, FILE_NAME);

  /* The child must not inherit a SIGPIPE death if it exits while we still write. */
  signal(SIGPIPE, SIG_IGN);

  long total = warmup + saves;
  recorder rec;
  peer pe = {.name = name, .rec = &rec, .b = &b, .ifd = -1, .argv = ext, .argc = next};
  pthread_mutex_init(&pe.mu, NULL);
  cond_init_mono(&pe.cv);
  int64_t *begin = calloc((size_t)total + 1, sizeof *begin);
  int64_t *done = calloc((size_t)total + 1, sizeof *done);
  int rv = 1;
  if (rec_init(&rec, total + 1) != 0 || !begin || !done) goto out_nomem;
  if (setup_files(&b) != 0) {
    fprintf(stderr, "latency: cannot write files in %s: %s\n", b.dir, strerror(errno));
    goto out;
  }
  int started = kind == PEER_FLOOR      ? floor_start(&pe)
                : kind == PEER_REACTCFG ? reactcfg_start(&pe)
                                        : external_start(&pe);
  if (started != 0) {
    fprintf(stderr, "latency: peer %s did not start\n", name);
    goto stop;
  }
  sleep_us(50000); /* let the peer finish whatever it does right after starting */

  for (long k = 1; k <= total; k++) {
    int64_t m0 = now_mono();
    begin[k] = now_rt();
    done[k] = do_save(&b, k);
    if (done[k] < 0) {
      fprintf(stderr, "latency: save %ld failed: %s\n", k, strerror(errno));
      goto stop;
    }
    int64_t deadline = m0 + (int64_t)MISS_MS * 1000000;
    rec_wait(&rec, k, deadline);
    int64_t next = m0 + gap_ms * 1000000;
    int64_t settle = now_mono() + (int64_t)SETTLE_MS * 1000000;
    sleep_until_mono(next > settle ? next : settle);
  }
  rv = 0;

stop:
  if (kind == PEER_FLOOR) floor_stop(&pe);
  else if (kind == PEER_REACTCFG) reactcfg_stop(&pe);
  else external_stop(&pe);
  if (rv == 0) {
    result res;
    if (summarize(&rec, begin, done, warmup + 1, total, &res) != 0) goto out_nomem;
    char p50[32] = "-", p90[32] = "-", p99[32] = "-", mx[32] = "-";
    if (res.observed > 0) {
      snprintf(p50, sizeof p50, "%lld", pct_us(res.lat, res.observed, 0.50));
      snprintf(p90, sizeof p90, "%lld", pct_us(res.lat, res.observed, 0.90));
      snprintf(p99, sizeof p99, "%lld", pct_us(res.lat, res.observed, 0.99));
      snprintf(mx, sizeof mx, "%lld", pct_us(res.lat, res.observed, 1.0));
    }
    printf("latency mode=%s peer=%s n=%zu p50_us=%s p90_us=%s p99_us=%s max_us=%s "
           "missed=%zu torn=%zu dup=%zu\n",
           MODE_NAMES[b.mode], name, res.n, p50, p90, p99, mx, res.missed, res.torn,
           res.dup);
    fflush(stdout);
    free(res.lat);
    if (rec.oom) fprintf(stderr, "latency: observations lost to out of memory\n");
  }
  goto out;

out_nomem:
  fprintf(stderr, "latency: out of memory\n");
  rv = 1;
out:
  if (keep) fprintf(stderr, "latency: kept %s\n", b.dir);
  else nftw(b.dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
  rec_free(&rec);
  free(begin);
  free(done);
  pthread_cond_destroy(&pe.cv);
  pthread_mutex_destroy(&pe.mu);
  return rv;
}
