/* SPDX-License-Identifier: MIT (see LICENSE) */
/* parse.h: the parsers' contract (private): bytes in, a value tree or an error with
 * file, line, column and a sentence out, within limits. Formats by name and by file
 * name; each parser is its own file in this folder. Any thread; reentrant. */
#ifndef RC_PARSE_H
#define RC_PARSE_H

#include "value.h"

/* ---- parsing: bytes in, value or an error with file, line, column, message ---- */
/* The deepest nesting a source's limits may allow: parsers recurse once per level, and
 * deeper could exhaust a thread's stack. The Lua loader reads it (reactcfg.constants). */
#define RC__PARSE_MAX_DEPTH_CAP 4096

typedef struct rc__parse_limits {
  size_t max_bytes;       /* default 256 MiB */
  uint32_t max_depth;     /* default 512 */
  size_t max_string;      /* default 64 MiB */
  size_t max_nodes;       /* default 50 million */
} rc__parse_limits;
void rc__parse_limits_default(rc__parse_limits *lim);
/* The limits in force for an input of `len` bytes: `lim`, or the defaults written into
 * *def when `lim` is NULL. NULL (with `err` filled, RC_ELIMIT) when `len` is already
 * beyond max_bytes. Every parser entry point starts with it. */
const rc__parse_limits *rc__parse_limits_for(const rc__parse_limits *lim,
                                             rc__parse_limits *def, size_t len,
                                             const char *file, rc_error *err);

/* Input buffers handed to parsers should have RC__PARSE_PADDING readable bytes after
 * `len` (the file reader allocates so); parsers must not depend on their content. */
#define RC__PARSE_PADDING 64

typedef enum rc__format {
  RC__FMT_AUTO = 0, RC__FMT_JSON, RC__FMT_DOTENV, RC__FMT_TEXT, RC__FMT_YAML, RC__FMT_TOML,
} rc__format;
/* "json", "dotenv"/"env", "text"; RC__FMT_AUTO for NULL or unknown. */
rc__format rc__format_from_name(const char *name, bool *known);
/* By extension: .json, .env (also a file named ".env" or "*.env"); RC__FMT_AUTO if none. */
rc__format rc__format_from_path(const char *path);
const char *rc__format_name(rc__format f);

/* 1-based line and column of byte `off` of `s`; columns count characters (UTF-8 lead
 * bytes). For error positions in every parser but YAML (which also counts a lone CR as a
 * line break, as libfyaml does). */
void rc__text_position(const char *s, size_t off, int *line, int *col);
/* The offset of the first byte of `s` that is not well-formed UTF-8 (strictly: no
 * overlong form, no encoded surrogate, nothing above U+10FFFF, no cut sequence), or `n`
 * when all of it is. */
size_t rc__utf8_invalid(const char *s, size_t n);

/* Parses `len` bytes (see RC__PARSE_PADDING; `cap` is the allocated size so a parser may
 * use the padding without copying when cap >= len + padding). On success *out is a new
 * value (refs 1). On failure returns RC_EPARSE / RC_ELIMIT / RC_ENOMEM and fills `err`
 * with `file` (may be NULL), 1-based line and column, and a message a person understands.
 * Thread: any; reentrant. */
int rc__parse(rc__format fmt, const char *data, size_t len, size_t cap, const char *file,
              const rc__parse_limits *lim, rc_value_t **out, rc_error *err);
/* rc__parse with the format given by name ("json", "yml", ...) and default limits, for
 * text handed in from Lua (no padding assumed). RC_EINVAL for an unknown name. */
int rc__parse_named(const char *format, const char *data, size_t len, const char *file,
                    rc_value_t **out, rc_error *err);
int rc__parse_json(const char *data, size_t len, size_t cap, const char *file,
                   const rc__parse_limits *lim, rc_value_t **out, rc_error *err);
int rc__parse_dotenv(const char *data, size_t len, const char *file,
                     const rc__parse_limits *lim, rc_value_t **out, rc_error *err);

#endif
