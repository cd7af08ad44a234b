/* SPDX-License-Identifier: MIT (see LICENSE) */
/* token.c: tokens from an environment variable or a file (see token.h). */
#include "token.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* Token files are small; a larger one is a misconfiguration, not a token. */
#define TOKEN_FILE_MAX 16384

bool rc__token_init(rc__token *t, const char *env, const char *file) {
  *t = (rc__token){.mtime_ns = -1};
  t->env = env ? rc__strdup(env) : NULL;
  t->file = file ? rc__strdup(file) : NULL;
  if ((env && !t->env) || (file && !t->file)) {
    rc__token_free(t);
    return false;
  }
  return true;
}

static void set_secret(rc__token *t, char *v) {
  if (t->value) {
    explicit_bzero(t->value, strlen(t->value));
    rc__free(t->value);
  }
  t->value = v;
}

/* Reads the token file when it changed since the last read (size or mtime). */
static int read_token_file(rc__token *t, rc_error *err) {
  struct stat st;
  if (stat(t->file, &st) != 0)
    return rc__err(err, RC_EIO, t->file, 0, 0, "cannot read the token file %s: %s", t->file,
                   strerror(errno));
  int64_t mt = (int64_t)st.st_mtim.tv_sec * 1000000000 + st.st_mtim.tv_nsec;
  if (t->value && mt == t->mtime_ns && (int64_t)st.st_size == t->size) return 0;
  if (st.st_size > TOKEN_FILE_MAX)
    return rc__err(err, RC_ELIMIT, t->file, 0, 0, "token file %s is larger than %d bytes",
                   t->file, TOKEN_FILE_MAX);
  int fd = open(t->file, O_RDONLY | O_CLOEXEC);
  if (fd < 0)
    return rc__err(err, RC_EIO, t->file, 0, 0, "cannot read the token file %s: %s", t->file,
                   strerror(errno));
  char buf[TOKEN_FILE_MAX + 1];
  ssize_t n = read(fd, buf, TOKEN_FILE_MAX);
  int e = errno;
  close(fd);
  if (n < 0)
    return rc__err(err, RC_EIO, t->file, 0, 0, "cannot read the token file %s: %s", t->file,
                   strerror(e));
  /* A trailing newline (echo, Kubernetes secrets) is not part of the token. */
  while (n > 0 && (buf[n - 1] == '\n' || buf[n - 1] == '\r' || buf[n - 1] == ' ')) n--;
  char *v = rc__strndup(buf, (size_t)n);
  explicit_bzero(buf, sizeof buf);
  if (!v) return rc__err(err, RC_ENOMEM, t->file, 0, 0, "out of memory");
  set_secret(t, v);
  t->mtime_ns = mt;
  t->size = (int64_t)st.st_size;
  return 0;
}

const char *rc__token_get(rc__token *t, rc_error *err) {
  if (t->file) return read_token_file(t, err) ? NULL : t->value;
  if (!t->env) return NULL;
  const char *v = getenv(t->env);
  if (!v || !*v) {
    rc__err(err, RC_EIO, NULL, 0, 0, "the token variable %s is not set", t->env);
    return NULL;
  }
  if (!t->value || strcmp(v, t->value) != 0) {
    char *copy = rc__strdup(v);
    if (!copy) {
      rc__err(err, RC_ENOMEM, NULL, 0, 0, "out of memory");
      return NULL;
    }
    set_secret(t, copy);
  }
  return t->value;
}

void rc__token_free(rc__token *t) {
  set_secret(t, NULL);
  rc__free(t->env);
  rc__free(t->file);
  t->env = t->file = NULL;
}

