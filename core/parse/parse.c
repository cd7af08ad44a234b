/* SPDX-License-Identifier: MIT (see LICENSE) */
/* parse.c: the front of the parsers: default limits, format names and detection by file
 * name, and rc__parse, which hands bytes to the parser of a format. The parsers
 * themselves are json_parse.cpp, dotenv.c, yaml_parse.c and toml.c; "text" is the bytes
 * as one string. */
#include "toml.h"
#include "value.h"
#include "yaml_parse.h"

#include <string.h>
#include <strings.h>

size_t rc__utf8_invalid(const char *str, size_t n) {
  const unsigned char *s = (const unsigned char *)str;
  size_t i = 0;
  while (i < n) {
    unsigned c = s[i];
    if (c < 0x80) {
      i++;
      continue;
    }
    size_t l = c < 0xC2 ? 0 : c < 0xE0 ? 2 : c < 0xF0 ? 3 : c < 0xF5 ? 4 : 0;
    if (!l || i + l > n) return i;
    for (size_t k = 1; k < l; k++)
      if ((s[i + k] & 0xC0) != 0x80) return i;
    /* the second byte's range excludes overlong forms, surrogates and > U+10FFFF */
    if ((c == 0xE0 && s[i + 1] < 0xA0) || (c == 0xED && s[i + 1] >= 0xA0) ||
        (c == 0xF0 && s[i + 1] < 0x90) || (c == 0xF4 && s[i + 1] >= 0x90))
      return i;
    i += l;
  }
  return n;
}

void rc__text_position(const char *s, size_t off, int *line, int *col) {
  int l = 1;
  size_t ls = 0;
  const char *nl;
  while ((nl = memchr(s + ls, '\n', off - ls)) != NULL) {
    l++;
    ls = (size_t)(nl - s) + 1;
  }
  int c = 1;
  for (size_t k = ls; k < off; k++)
    if (((unsigned char)s[k] & 0xC0) != 0x80) c++;
  *line = l;
  *col = c;
}

void rc__parse_limits_default(rc__parse_limits *lim) {
  lim->max_bytes = (size_t)256 << 20;
  lim->max_depth = 512;
  lim->max_string = (size_t)64 << 20;
  lim->max_nodes = 50000000;
}

rc__format rc__format_from_name(const char *name, bool *known) {
  static const struct {
    const char *name;
    rc__format fmt;
  } names[] = {
    {"json", RC__FMT_JSON}, {"dotenv", RC__FMT_DOTENV}, {"env", RC__FMT_DOTENV},
    {"text", RC__FMT_TEXT}, {"yaml", RC__FMT_YAML}, {"yml", RC__FMT_YAML},
    {"toml", RC__FMT_TOML}, {"auto", RC__FMT_AUTO},
  };
  if (known) *known = name == NULL; /* no name is not an unknown name */
  if (!name) return RC__FMT_AUTO;
  for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
    if (strcasecmp(name, names[i].name) == 0) {
      if (known) *known = true;
      return names[i].fmt;
    }
  }
  return RC__FMT_AUTO;
}

/* Besides the extensions, `.env.local`, `.env.production` and the like (dotenv's usual
 * per-environment names) are dotenv too. */
rc__format rc__format_from_path(const char *path) {
  if (!path) return RC__FMT_AUTO;
  const char *base = strrchr(path, '/');
  base = base ? base + 1 : path;
  if (strcmp(base, ".env") == 0 || strncmp(base, ".env.", 5) == 0) return RC__FMT_DOTENV;
  const char *dot = strrchr(base, '.');
  if (!dot || dot == base) return RC__FMT_AUTO;
  if (strcasecmp(dot, ".json") == 0) return RC__FMT_JSON;
  if (strcasecmp(dot, ".env") == 0) return RC__FMT_DOTENV;
  if (strcasecmp(dot, ".yaml") == 0 || strcasecmp(dot, ".yml") == 0) return RC__FMT_YAML;
  if (strcasecmp(dot, ".toml") == 0) return RC__FMT_TOML;
  return RC__FMT_AUTO;
}

const char *rc__format_name(rc__format f) {
  switch (f) {
  case RC__FMT_AUTO: return "auto";
  case RC__FMT_JSON: return "json";
  case RC__FMT_DOTENV: return "dotenv";
  case RC__FMT_TEXT: return "text";
  case RC__FMT_YAML: return "yaml";
  case RC__FMT_TOML: return "toml";
  }
  return "unknown";
}

static int parse_text(const char *data, size_t len, const char *file,
                      const rc__parse_limits *lim, rc_value_t **out, rc_error *err) {
  if (len > lim->max_string)
    return rc__err(err, RC_ELIMIT, file, 0, 0,
                   "text is %zu bytes, more than the limit of %zu bytes for a string", len,
                   lim->max_string);
  *out = rc__value_string(data, len);
  if (!*out) return rc__err(err, RC_ENOMEM, file, 0, 0, "out of memory reading text");
  return 0;
}

const rc__parse_limits *rc__parse_limits_for(const rc__parse_limits *lim,
                                             rc__parse_limits *def, size_t len,
                                             const char *file, rc_error *err) {
  if (!lim) {
    rc__parse_limits_default(def);
    lim = def;
  }
  if (len > lim->max_bytes) {
    rc__err(err, RC_ELIMIT, file, 0, 0, "input is %zu bytes, more than the limit of %zu bytes",
            len, lim->max_bytes);
    return NULL;
  }
  return lim;
}

/* RC__FMT_AUTO here means no better idea than the default: JSON. */
int rc__parse(rc__format fmt, const char *data, size_t len, size_t cap, const char *file,
              const rc__parse_limits *lim, rc_value_t **out, rc_error *err) {
  rc__parse_limits def;
  *out = NULL;
  if (!(lim = rc__parse_limits_for(lim, &def, len, file, err))) return RC_ELIMIT;
  switch (fmt) {
  case RC__FMT_DOTENV: return rc__parse_dotenv(data, len, file, lim, out, err);
  case RC__FMT_TEXT: return parse_text(data, len, file, lim, out, err);
  case RC__FMT_YAML: return rc__parse_yaml(data, len, file, lim, out, err);
  case RC__FMT_TOML: return rc__parse_toml(data, len, file, lim, out, err);
  case RC__FMT_AUTO:
  case RC__FMT_JSON: break;
  }
  return rc__parse_json(data, len, cap, file, lim, out, err);
}

int rc__parse_named(const char *format, const char *data, size_t len, const char *file,
                    rc_value_t **out, rc_error *err) {
  bool known;
  rc__format fmt = rc__format_from_name(format, &known);
  *out = NULL;
  if (!known)
    return rc__err(err, RC_EINVAL, file, 0, 0,
                   "unknown format '%s' (expected json, yaml, toml, dotenv, text)", format);
  return rc__parse(fmt, data, len, len, file, NULL, out, err);
}
