/* SPDX-License-Identifier: MIT (see LICENSE) */
/* internal.h: what every reactcfg source file shares: allocation, growable buffers,
 * hashing and filling an rc_error. Private: never installed. */
#ifndef RC_INTERNAL_H
#define RC_INTERNAL_H

#include "reactcfg.h"
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define RC__PRINTF(f, a) __attribute__((format(printf, f, a)))
#define RC__UNUSED(x) ((void)(x))

/* ---- allocation: every C allocation goes through these (rc_set_allocator) ---- */
void *rc__malloc(size_t n);                 /* NULL on failure */
void *rc__calloc(size_t n, size_t size);    /* zeroed; NULL on failure or overflow */
void *rc__realloc(void *p, size_t n);       /* on failure returns NULL, `p` stays valid */
void rc__free(void *p);                     /* NULL ok; preserves errno */
char *rc__strdup(const char *s);            /* NULL on failure */
char *rc__strndup(const char *s, size_t n); /* copies n bytes + NUL; NULL on failure */
/* Makes room in a growable array for at least `need` elements: when *cap is smaller it
 * doubles (starting from `first`) until `need` fits and reallocates. `items` is the
 * address of the array pointer (any element type; `size` bytes each). Returns 0, or
 * RC_ENOMEM (allocation failure or size overflow) with the array and *cap unchanged.
 * RC__GROW(arr, cap, need, first) passes the element size from the array and checks the
 * capacity inline (hot paths). */
int rc__grow(void *items, size_t *cap, size_t need, size_t size, size_t first);
#define RC__GROW(arr, cap, need, first) \
  ((need) <= (cap) ? 0 : rc__grow(&(arr), &(cap), (need), sizeof *(arr), (first)))
/* Copies `src` into `dst` (size n > 0), cut to fit and NUL-terminated; returns the length
 * copied. For hot paths where snprintf("%s") would parse a format each time. */
size_t rc__strcpy_cut(char *dst, size_t n, const char *src);

/* Blocks of RC__BIG_BLOCK bytes (the document arenas' chunks), of which up to RC__BIG_KEEP
 * freed ones are kept for the next taker: the C library gives a freed block this big back
 * to the kernel, and the next document would fault every page of it in again (half of a
 * large JSON parse's time). rc_set_allocator frees the kept ones first. Thread: any. */
#define RC__BIG_BLOCK ((size_t)8 << 20)
#define RC__BIG_KEEP 8
void *rc__big_get(void);     /* a kept block or a new one; NULL on failure */
void rc__big_put(void *p);   /* NULL ok: kept, or freed when RC__BIG_KEEP are */

/* ---- growable byte buffer; on allocation failure `oom` is set and later appends are
 * no-ops, so callers check once at the end. `p` is always NUL-terminated when non-NULL. */
typedef struct rc__buf {
  char *p;
  size_t n, cap;
  int oom;
} rc__buf;
void rc__buf_init(rc__buf *b);
void rc__buf_free(rc__buf *b);
void rc__buf_reset(rc__buf *b); /* n = 0, keeps capacity */
int rc__buf_reserve(rc__buf *b, size_t extra); /* 0 or RC_ENOMEM */
void rc__buf_add(rc__buf *b, const void *data, size_t n);
void rc__buf_adds(rc__buf *b, const char *s);
void rc__buf_addc(rc__buf *b, char c);
void rc__buf_printf(rc__buf *b, const char *fmt, ...) RC__PRINTF(2, 3);
char *rc__buf_take(rc__buf *b); /* returns p (caller frees with rc__free), resets b */

/* ---- hashing (hash.c): fast, not cryptographic ---- */
uint64_t rc__hash64(const void *data, size_t n);
/* A 128-bit digest: equal digests mean equal content (collision odds about 2^-128). */
void rc__digest128(const void *data, size_t n, uint8_t out[16]);

/* ---- errors ---- */
/* Fills `err` (if not NULL) and returns `code`. `file` may be NULL. */
int rc__err(rc_error *err, int code, const char *file, int line, int col, const char *fmt,
            ...) RC__PRINTF(6, 7);
int rc__verr(rc_error *err, int code, const char *file, int line, int col, const char *fmt,
             va_list ap);

/* ---- numbers as text, in the "C" locale (number.c) ---- */
/* strtod, with '.' as the decimal point whatever the process's locale. */
double rc__strtod_c(const char *s, char **end);
/* The same on `n` bytes that need not be NUL-terminated; NaN with *nomem set when a
 * copy of a long text could not be allocated. */
double rc__strntod_c(const char *s, size_t n, bool *nomem);
/* The shortest of %.15g, %.16g, %.17g that reads back to `f` ("nan", "inf", "-inf" for
 * the others) into `out` (size `n`, 32 is enough); returns its length. */
size_t rc__double_text(double f, char *out, size_t n);

/* ---- descriptors (fds.c) ---- */
/* How many of `want` (at most 64) file descriptors could be opened now. */
int rc__fds_free(int want);
/* Descriptors the first libuv loop of a process needs; with fewer free, libuv aborts
 * instead of failing (its signal pipe), so callers check rc__fds_free first. */
#define RC__LOOP_FDS 6

/* ---- freeing off the caller's thread (reaper.c) ---- */
/* A thread that frees what its owner hands it, in order (a Lua state of a replaced
 * policy version, a value tree a stopped conversion built), so that the owner's thread
 * (the engine's loop) does not wait for it. */
typedef struct rc__reaper rc__reaper;
/* Queues fn(p) for *rp's thread, creating the reaper on first use (*rp NULL). Without a
 * thread or memory for the note, runs fn(p) here and now. `fn` runs on another thread:
 * it may only touch what `p` owns and what is safe from any thread (rc__free, atomic
 * references). Thread: the owner's, one at a time. Never fails. */
void rc__reap(rc__reaper **rp, void (*fn)(void *), void *p);
/* Runs everything still queued, ends the thread and frees the reaper; NULL: nothing. */
void rc__reaper_free(rc__reaper *r);

/* ---- TCP peers gone without a word (tcp.c) ---- */
/* A connection whose peer's host vanished (no FIN, no RST: power cut, network gone) looks
 * alive for ever to an idle client, and for about 15 minutes to one with data unsent.
 * Keepalive probes after RC__TCP_IDLE_S idle seconds, RC__TCP_PROBES of them
 * RC__TCP_INTVL_S apart, and unacknowledged data given up after RC__TCP_USER_TIMEOUT_MS,
 * notice it in about 8 s; the kernel sends the probes (no wakeup of ours). */
#define RC__TCP_IDLE_S 5
#define RC__TCP_INTVL_S 1
#define RC__TCP_PROBES 3
#define RC__TCP_USER_TIMEOUT_MS 8000
#define RC__XSTR(x) RC__STR(x)
#define RC__STR(x) #x
/* Sets the above on TCP socket `fd` (anything else: ignored, as are failures). */
void rc__tcp_dead_peer(int fd);

/* ---- time ---- */
uint64_t rc__mono_ns(void);  /* CLOCK_MONOTONIC */
int64_t rc__real_ns(void);   /* CLOCK_REALTIME */

#endif
