/* The cassette reader: libyaml's event parser driven by a small recursive
 * descent over the schema (docs/cassette-format.md). Cassettes are
 * untrusted input (RELIABILITY C1): no aliases, anchors or tags, bounded
 * depth, scalar size, event count and file size, and every rejection says
 * FILE:LINE:COL. Nothing is built from the YAML but the model itself. */
#include "model.h"

#include "internal.h"

#include <errno.h>
#include <limits.h>
#include <nettle/base64.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <yaml.h>

#define VERSIONS_HINT "this pk reads format versions 1..1"
#define NEWER_HINT "a newer pk? " VERSIONS_HINT
_Static_assert(PKC_VERSION_MIN == 1 && PKC_VERSION == 1,
               "update VERSIONS_HINT");

typedef struct rd {
  yaml_parser_t p;
  yaml_event_t ev; /* the current event (valid when have) */
  bool have;
  const char *name;
  const char *data;
  size_t len;
  pkc_error *err;
  const pkc_limits *lim;
  size_t depth;
  size_t nevents;
  yaml_mark_t key; /* where the current mapping key starts */
} rd;

/* A short printable rendering of a scalar for messages. */
static void shown(char *dst, size_t cap, const unsigned char *s, size_t n) {
  size_t i = 0, j = 0;
  for (; i < n && j + 4 < cap; i++)
    dst[j++] = (s[i] >= 0x20 && s[i] < 0x7f) ? (char)s[i] : '?';
  if (i < n)
    memcpy(dst + j, "...", 3), j += 3;
  dst[j] = '\0';
}

static int failv(rd *r, size_t line, size_t col, const char *hint,
                 const char *fmt, va_list ap) {
  pkc_error *e = r->err;
  char what[320];
  vsnprintf(what, sizeof(what), fmt, ap);
  e->code = PK_ECASSETTE_INVALID;
  e->line = line;
  e->column = col;
  if (line != 0)
    snprintf(e->msg, sizeof(e->msg), "%s:%zu:%zu: %s%s%s%s", r->name, line, col,
             what, hint ? " (" : "", hint ? hint : "", hint ? ")" : "");
  else
    snprintf(e->msg, sizeof(e->msg), "%s: %s%s%s%s", r->name, what,
             hint ? " (" : "", hint ? hint : "", hint ? ")" : "");
  return PK_ECASSETTE_INVALID;
}

PK__PRINTF(4, 5)
static int fail_at(rd *r, yaml_mark_t m, const char *hint, const char *fmt,
                   ...) {
  va_list ap;
  va_start(ap, fmt);
  int rc = failv(r, m.line + 1, m.column + 1, hint, fmt, ap);
  va_end(ap);
  return rc;
}

/* At the current event. */
PK__PRINTF(3, 4)
static int fail(rd *r, const char *hint, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  int rc = failv(r, r->ev.start_mark.line + 1, r->ev.start_mark.column + 1,
                 hint, fmt, ap);
  va_end(ap);
  return rc;
}

PK__PRINTF(3, 4)
static int fail_file(rd *r, const char *hint, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  int rc = failv(r, 0, 0, hint, fmt, ap);
  va_end(ap);
  return rc;
}

/* libyaml's reader errors carry a byte offset, not a mark. */
static yaml_mark_t mark_of_offset(const rd *r, size_t off) {
  yaml_mark_t m = {0, 0, 0};
  if (off > r->len)
    off = r->len;
  for (size_t i = 0; i < off; i++) {
    unsigned char c = (unsigned char)r->data[i];
    if (c == '\n')
      m.line++, m.column = 0;
    else if ((c & 0xC0) != 0x80)
      m.column++;
  }
  return m;
}

static int parser_failed(rd *r) {
  yaml_parser_t *p = &r->p;
  if (p->error == YAML_MEMORY_ERROR) {
    r->err->code = PK_ENOMEM;
    snprintf(r->err->msg, sizeof(r->err->msg), "%s: out of memory", r->name);
    return PK_ENOMEM;
  }
  const char *problem = p->problem ? p->problem : "parse error";
  if (p->error == YAML_READER_ERROR) {
    /* libyaml points past a bad UTF-8 sequence; name its first byte. */
    size_t off = pkc_utf8_valid_prefix(r->data, r->len);
    if (off > p->problem_offset)
      off = p->problem_offset;
    return fail_at(r, mark_of_offset(r, off), "a cassette is UTF-8 text", "%s",
                   problem);
  }
  if (p->context != NULL) {
    char hint[64];
    snprintf(hint, sizeof(hint), "at %zu:%zu; not valid YAML",
             p->context_mark.line + 1, p->context_mark.column + 1);
    return fail_at(r, p->problem_mark, hint, "%s %s", problem, p->context);
  }
  return fail_at(r, p->problem_mark, "not valid YAML", "%s", problem);
}

/* Make the next event current, applying the rules that hold everywhere. */
static int next(rd *r) {
  if (r->have)
    yaml_event_delete(&r->ev);
  r->have = false;
  if (!yaml_parser_parse(&r->p, &r->ev))
    return parser_failed(r);
  r->have = true;
  yaml_event_t *e = &r->ev;
  const yaml_char_t *anchor = NULL, *tag = NULL;
  switch (e->type) {
  case YAML_ALIAS_EVENT:
    return fail(r, "cassettes are plain data", "alias '*%.40s' not allowed",
                (const char *)e->data.alias.anchor);
  case YAML_SCALAR_EVENT:
    anchor = e->data.scalar.anchor, tag = e->data.scalar.tag;
    if (e->data.scalar.length > r->lim->max_scalar_bytes)
      return fail(r, "split the output or lower the recording cap",
                  "a scalar of %zu bytes is over the limit of %zu",
                  e->data.scalar.length, r->lim->max_scalar_bytes);
    break;
  case YAML_SEQUENCE_START_EVENT:
    anchor = e->data.sequence_start.anchor, tag = e->data.sequence_start.tag;
    r->depth++;
    break;
  case YAML_MAPPING_START_EVENT:
    anchor = e->data.mapping_start.anchor, tag = e->data.mapping_start.tag;
    r->depth++;
    break;
  case YAML_SEQUENCE_END_EVENT:
  case YAML_MAPPING_END_EVENT:
    r->depth--;
    break;
  default:
    break;
  }
  if (anchor != NULL)
    return fail(r, "cassettes are plain data", "anchor '&%.40s' not allowed",
                (const char *)anchor);
  if (tag != NULL)
    return fail(r, "cassettes are plain data; binary output is *_base64",
                "tag '%.60s' not allowed", (const char *)tag);
  if (r->depth > r->lim->max_depth)
    return fail(r, "a cassette nests 5 levels deep",
                "nesting deeper than %zu levels", r->lim->max_depth);
  return 0;
}

/* ---- scalars */

static const char *sval(const rd *r) {
  return (const char *)r->ev.data.scalar.value;
}
static size_t slen(const rd *r) { return r->ev.data.scalar.length; }
static bool is_plain(const rd *r) {
  return r->ev.data.scalar.style == YAML_PLAIN_SCALAR_STYLE;
}

static const char *kind_of(const rd *r) {
  switch (r->ev.type) {
  case YAML_SEQUENCE_START_EVENT:
    return "a sequence";
  case YAML_MAPPING_START_EVENT:
    return "a mapping";
  case YAML_SCALAR_EVENT:
    return is_plain(r) ? "a plain scalar" : "a quoted string";
  default:
    return "something else";
  }
}

/* A string value: any non-plain scalar (plain ones are numbers, booleans
 * and keys; see the format's "Strings"). The bytes are copied. */
static int get_bytes(rd *r, const char *what, char **out, size_t *len) {
  if (r->ev.type != YAML_SCALAR_EVENT || is_plain(r)) {
    if (r->ev.type == YAML_SCALAR_EVENT) {
      char s[48];
      shown(s, sizeof(s), r->ev.data.scalar.value, slen(r));
      return fail(r, "quote string values",
                  "%s must be a quoted string, "
                  "found plain '%s'",
                  what, s);
    }
    return fail(r, NULL, "%s must be a quoted string, found %s", what,
                kind_of(r));
  }
  char *s = pk__malloc(slen(r) + 1);
  if (s == NULL)
    return PK_ENOMEM;
  memcpy(s, sval(r), slen(r) + 1);
  *out = s;
  *len = slen(r);
  return 0;
}

/* A string field that becomes a C string: no NUL inside. */
static int get_str(rd *r, const char *what, char **out) {
  size_t n = 0;
  if (*out != NULL) /* duplicate keys are caught before; stay safe */
    pk__free(*out), *out = NULL;
  int rc = get_bytes(r, what, out, &n);
  if (rc == 0 && strlen(*out) != n) {
    pk__free(*out), *out = NULL;
    return fail(r, NULL, "%s contains a NUL character", what);
  }
  return rc;
}

static int need_plain(rd *r, const char *what, const char *type) {
  if (r->ev.type == YAML_SCALAR_EVENT && is_plain(r))
    return 0;
  return fail(r, r->ev.type == YAML_SCALAR_EVENT ? "do not quote it" : NULL,
              "%s must be %s, found %s", what, type, kind_of(r));
}

/* Decimal digits only, no leading zeros. */
/* Every byte of s[0..n) is a digit (a fraction: leading zeros fine). */
static bool all_digits(const char *s, size_t n) {
  for (size_t i = 0; i < n; i++)
    if (s[i] < '0' || s[i] > '9')
      return false;
  return true;
}

static bool digits(const char *s, size_t n) {
  if (n == 0 || (n > 1 && s[0] == '0'))
    return false;
  for (size_t i = 0; i < n; i++)
    if (s[i] < '0' || s[i] > '9')
      return false;
  return true;
}

static int get_int(rd *r, const char *what, int64_t min, int64_t max,
                   int64_t *out) {
  int rc = need_plain(r, what, "an integer");
  if (rc != 0)
    return rc;
  const char *s = sval(r);
  size_t n = slen(r), neg = (n > 0 && s[0] == '-');
  if (!digits(s + neg, n - neg) || (neg && min >= 0))
    return fail(r, neg && min >= 0 ? "it cannot be negative" : NULL,
                "%s must be %s integer, found '%.40s'", what,
                min >= 0 ? "a non-negative" : "an", s);
  errno = 0;
  char *end;
  long long v = strtoll(s, &end, 10);
  if (errno != 0 || end != s + n || v < min || v > max)
    return fail(r, NULL, "%s %.40s is out of range (%lld..%lld)", what, s,
                (long long)min, (long long)max);
  *out = v;
  return 0;
}

static int get_u64(rd *r, const char *what, uint64_t *out) {
  int64_t v;
  int rc = get_int(r, what, 0, INT64_MAX, &v);
  if (rc == 0)
    *out = (uint64_t)v;
  return rc;
}

static int get_i32(rd *r, const char *what, int *out) {
  int64_t v;
  int rc = get_int(r, what, INT_MIN, INT_MAX, &v);
  if (rc == 0)
    *out = (int)v;
  return rc;
}

/* Milliseconds with up to three decimals, into microseconds, exactly. */
static int get_ms(rd *r, const char *what, int64_t *us) {
  int rc = need_plain(r, what, "a number of milliseconds");
  if (rc != 0)
    return rc;
  const char *s = sval(r), *dot = memchr(s, '.', slen(r));
  size_t n = slen(r), ni = dot ? (size_t)(dot - s) : n;
  size_t nf = dot ? n - ni - 1 : 0;
  if (!digits(s, ni) || (dot && (nf == 0 || nf > 3)) ||
      (nf != 0 && !all_digits(dot + 1, nf)))
    return fail(r, "milliseconds with at most 3 decimals, e.g. 12.5",
                "%s must be a non-negative number, found '%.40s'", what, s);
  int64_t v = 0;
  int64_t frac = 0;
  for (size_t i = 0, scale = 100; i < nf; i++, scale /= 10)
    frac += (int64_t)((size_t)(dot[1 + i] - '0') * scale);
  for (size_t i = 0; i < ni; i++) {
    if (v > (INT64_MAX / 1000 - (s[i] - '0')) / 10)
      return fail(r, NULL, "%s %.40s is out of range", what, s);
    v = v * 10 + (s[i] - '0');
  }
  if (frac > INT64_MAX - v * 1000)
    return fail(r, NULL, "%s %.40s is out of range", what, s);
  *us = v * 1000 + frac;
  return 0;
}

static int get_bool(rd *r, const char *what, bool *out) {
  int rc = need_plain(r, what, "true or false");
  if (rc != 0)
    return rc;
  if (strcmp(sval(r), "true") == 0 || strcmp(sval(r), "false") == 0) {
    *out = sval(r)[0] == 't';
    return 0;
  }
  return fail(r, "only true and false are booleans",
              "%s must be true or false, found '%.20s'", what, sval(r));
}

/* A flag that is written only when set. */
static int get_true(rd *r, const char *what, bool *out) {
  int rc = get_bool(r, what, out);
  if (rc == 0 && !*out)
    return fail(r, "leave the key out instead", "%s: false is not allowed",
                what);
  return rc;
}

static int get_hex64(rd *r, const char *what, char out[65]) {
  char *s = NULL;
  int rc = get_str(r, what, &s);
  if (rc != 0)
    return rc;
  if (!pkc_hex64_valid(s)) {
    pk__free(s);
    return fail(r, "a sha256 is 64 lowercase hex digits",
                "%s is not a sha256 digest", what);
  }
  memcpy(out, s, 65);
  pk__free(s);
  return 0;
}

/* Canonical base64 only: what the writer produces (padding, no spaces). */
static int get_base64(rd *r, const char *what, char **out, size_t *len) {
  if (r->ev.type != YAML_SCALAR_EVENT || is_plain(r))
    return get_bytes(r, what, out, len); /* the same message */
  const char *s = sval(r);
  size_t n = slen(r);
  uint8_t *d = pk__malloc(BASE64_DECODE_LENGTH(n) + 1);
  char *back = pk__malloc(BASE64_ENCODE_RAW_LENGTH(BASE64_DECODE_LENGTH(n)));
  if (d == NULL || back == NULL) {
    pk__free(d), pk__free(back);
    return PK_ENOMEM;
  }
  struct base64_decode_ctx ctx;
  size_t dn = 0;
  base64_decode_init(&ctx);
  bool ok = n % 4 == 0 && base64_decode_update(&ctx, &dn, d, n, s) &&
            base64_decode_final(&ctx);
  if (ok) {
    base64_encode_raw(back, dn, d);
    ok = BASE64_ENCODE_RAW_LENGTH(dn) == n && memcmp(back, s, n) == 0;
  }
  pk__free(back);
  if (!ok) {
    pk__free(d);
    return fail(r, "standard alphabet, padded, no spaces",
                "%s is not valid base64", what);
  }
  d[dn] = '\0';
  *out = (char *)d;
  *len = dn;
  return 0;
}

/* ---- collections */

static int expect(rd *r, yaml_event_type_t t, const char *what,
                  const char *type) {
  if (r->ev.type == t)
    return 0;
  return fail(r, NULL, "%s must be %s, found %s", what, type, kind_of(r));
}

/* Step to the next key of the mapping whose start was current. Returns 1
 * at its end; else 0 with *k the key's index in keys and the value's first
 * event current. Unknown and repeated keys are rejected here. */
static int map_next(rd *r, const char *const *keys, size_t nkeys,
                    unsigned *seen, int *k, const char *where) {
  int rc = next(r);
  if (rc != 0)
    return rc;
  if (r->ev.type == YAML_MAPPING_END_EVENT)
    return 1;
  if (r->ev.type != YAML_SCALAR_EVENT)
    return fail(r, NULL, "a key in %s must be a word, found %s", where,
                kind_of(r));
  char s[48];
  shown(s, sizeof(s), r->ev.data.scalar.value, slen(r));
  for (size_t i = 0; i < nkeys; i++) {
    if (strlen(keys[i]) == slen(r) && memcmp(keys[i], sval(r), slen(r)) == 0) {
      if (*seen & (1u << i))
        return fail(r, "each key once", "duplicate key '%s' in %s", s, where);
      *seen |= 1u << i;
      *k = (int)i;
      r->key = r->ev.start_mark;
      return next(r);
    }
  }
  /* A file whose first key is not even version is not a cassette at all
   * (a newer pk would still start with version). */
  if (*seen == 0 && strcmp(where, "the cassette") == 0)
    return fail(r, "a cassette starts with version: 1",
                "not a cassette: the first key must be 'version', found "
                "'%s'",
                s);
  return fail(r, NEWER_HINT, "unknown key '%s' in %s", s, where);
}

static int get_strv(rd *r, const char *what, char ***out, size_t *n) {
  int rc = expect(r, YAML_SEQUENCE_START_EVENT, what, "a sequence of strings");
  if (rc != 0)
    return rc;
  while ((rc = next(r)) == 0 && r->ev.type != YAML_SEQUENCE_END_EVENT) {
    if ((rc = pkc__grow(out, *n, sizeof(**out))) != 0)
      return rc;
    (*out)[*n] = NULL;
    rc = get_str(r, what, &(*out)[*n]);
    if ((*out)[*n] != NULL)
      (*n)++;
    if (rc != 0)
      return rc;
  }
  return rc;
}

/* ---- the schema */

#define COUNT(a) (sizeof(a) / sizeof((a)[0]))
#define BIT(k) (1u << (k))

static int read_stdin(rd *r, pkc_entry *e) {
  static const char *const keys[] = {"sha256", "bytes", "terminal", "inherit"};
  yaml_mark_t at = r->ev.start_mark;
  int rc = expect(r, YAML_MAPPING_START_EVENT, "stdin", "a mapping");
  unsigned seen = 0;
  int k = -1;
  bool b = false;
  while (rc == 0 &&
         (rc = map_next(r, keys, COUNT(keys), &seen, &k, "stdin")) == 0) {
    if (k == 0)
      rc = get_hex64(r, "stdin.sha256", e->stdin_sha256);
    else if (k == 1)
      rc = get_u64(r, "stdin.bytes", &e->stdin_bytes);
    else
      rc = get_true(r, keys[k], &b);
  }
  if (rc < 0)
    return rc;
  if (seen == (BIT(0) | BIT(1)))
    e->stdin_kind = PKC_STDIN_BYTES;
  else if (seen == BIT(2))
    e->stdin_kind = PKC_STDIN_TERMINAL;
  else if (seen == BIT(3))
    e->stdin_kind = PKC_STDIN_INHERIT;
  else
    return fail_at(r, at,
                   "{sha256: ..., bytes: N}, {terminal: true} or "
                   "{inherit: true}",
                   "stdin has the wrong set of keys");
  return 0;
}

enum {
  X_CODE,
  X_SIGNAL,
  X_NAME,
  X_TIMED_OUT,
  X_ERROR,
  X_ERRNO,
  X_ERRNO_NAME,
  X_STAGE,
  X_MESSAGE
};

static int exit_kind(rd *r, yaml_mark_t at, unsigned seen, pkc_entry *e) {
  static const char *const names[] = {"code",       "signal", "name",
                                      "timed_out",  "error",  "errno",
                                      "errno_name", "stage",  "message"};
  unsigned allowed;
  if (seen & BIT(X_ERROR)) {
    e->end = PKC_END_ERROR;
    allowed = BIT(X_ERROR) | BIT(X_ERRNO) | BIT(X_ERRNO_NAME) | BIT(X_STAGE) |
              BIT(X_MESSAGE);
  } else if (seen & BIT(X_TIMED_OUT)) {
    e->end = PKC_END_TIMEOUT;
    /* Ended by a signal, or exited (code) after the soft signal. */
    allowed = BIT(X_TIMED_OUT) | BIT(X_SIGNAL) | BIT(X_NAME) | BIT(X_CODE);
    if ((seen & BIT(X_CODE)) && (seen & BIT(X_SIGNAL)))
      return fail_at(r, at, "a timed-out run ended one way",
                     "exit.code does not go with exit.signal");
    if (!(seen & BIT(X_CODE)))
      e->code = -1;
  } else if (seen & BIT(X_CODE)) {
    e->end = PKC_END_EXIT;
    allowed = BIT(X_CODE);
  } else if (seen & BIT(X_SIGNAL)) {
    e->end = PKC_END_SIGNAL;
    allowed = BIT(X_SIGNAL) | BIT(X_NAME);
  } else {
    return fail_at(r, at, "see docs/cassette-format.md",
                   "exit needs one of code, signal, timed_out or error");
  }
  if ((seen & BIT(X_NAME)) && !(seen & BIT(X_SIGNAL)))
    return fail_at(r, at, NULL, "exit.name needs exit.signal");
  for (unsigned i = 0; i < COUNT(names); i++)
    if ((seen & ~allowed) & BIT(i))
      return fail_at(r, at, "one way to end per run",
                     "exit.%s does not go with this kind of exit", names[i]);
  return 0;
}

/* exit.name and exit.errno_name win over the numbers when this system
 * knows them (numbers differ across systems, names do not). */
static int exit_names(rd *r, yaml_mark_t at, unsigned seen, pkc_entry *e,
                      char *const names[3]) {
  int v;
  if (names[0] != NULL && (v = pk_signal_parse(names[0])) > 0)
    e->signal = v;
  if (names[1] != NULL && (e->error = pkc_error_parse(names[1])) == 0)
    return fail_at(r, at, NEWER_HINT, "unknown error name '%.40s'", names[1]);
  if (names[2] != NULL && (v = pkc_errno_parse(names[2])) > 0)
    e->os_errno = v;
  else if (names[2] != NULL && !(seen & BIT(X_ERRNO)))
    return fail_at(r, at, "give exit.errno too", "unknown errno name '%.40s'",
                   names[2]);
  return exit_kind(r, at, seen, e);
}

static int read_exit(rd *r, pkc_entry *e) {
  static const char *const keys[] = {"code",       "signal", "name",
                                     "timed_out",  "error",  "errno",
                                     "errno_name", "stage",  "message"};
  yaml_mark_t at = r->ev.start_mark;
  int rc = expect(r, YAML_MAPPING_START_EVENT, "exit", "a mapping");
  unsigned seen = 0;
  int k = -1;
  bool b = false;
  char *names[3] = {NULL, NULL, NULL}; /* name, error, errno_name */
  while (rc == 0 &&
         (rc = map_next(r, keys, COUNT(keys), &seen, &k, "exit")) == 0) {
    switch (k) {
    case X_CODE:
      rc = get_i32(r, "exit.code", &e->code);
      break;
    case X_SIGNAL:
      rc = get_i32(r, "exit.signal", &e->signal);
      if (rc == 0 && e->signal < 0)
        rc = fail(r, NULL, "exit.signal cannot be negative");
      break;
    case X_TIMED_OUT:
      rc = get_true(r, "exit.timed_out", &b);
      break;
    case X_ERRNO:
      rc = get_i32(r, "exit.errno", &e->os_errno);
      break;
    case X_STAGE:
      rc = get_str(r, "exit.stage", &e->stage);
      break;
    case X_MESSAGE:
      rc = get_str(r, "exit.message", &e->errmsg);
      break;
    case X_NAME:
      rc = get_str(r, "exit.name", &names[0]);
      break;
    case X_ERROR:
      rc = get_str(r, "exit.error", &names[1]);
      break;
    default:
      rc = get_str(r, "exit.errno_name", &names[2]);
      break;
    }
  }
  if (rc >= 0)
    rc = exit_names(r, at, seen, e, names);
  for (int i = 0; i < 3; i++)
    pk__free(names[i]);
  return rc < 0 ? rc : 0;
}

static int read_output(rd *r, pkc_entry *e) {
  static const char *const keys[] = {"stdout_bytes", "stdout_lines",
                                     "stderr_bytes", "stderr_lines"};
  yaml_mark_t at = r->ev.start_mark;
  int rc = expect(r, YAML_MAPPING_START_EVENT, "output", "a mapping");
  unsigned seen = 0;
  int k = -1;
  while (rc == 0 &&
         (rc = map_next(r, keys, COUNT(keys), &seen, &k, "output")) == 0) {
    int s = k < 2 ? PK_STDOUT : PK_STDERR;
    rc = get_u64(r, keys[k],
                 k % 2 == 0 ? &e->total_bytes[s] : &e->total_lines[s]);
  }
  if (rc < 0)
    return rc;
  for (size_t i = 0; i < COUNT(keys); i++)
    if (!(seen & BIT(i)))
      return fail_at(r, at, "all four counts are written",
                     "output.%s is missing", keys[i]);
  return 0;
}

static int read_event(rd *r, pkc_event *ev) {
  static const char *const keys[] = {
      "t",           "stdout",        "stderr",
      "stdin",       "stdout_base64", "stderr_base64",
      "stdin_base64"};
  yaml_mark_t at = r->ev.start_mark;
  int rc = expect(r, YAML_MAPPING_START_EVENT, "an event", "a mapping");
  unsigned seen = 0;
  int k = -1;
  while (rc == 0 &&
         (rc = map_next(r, keys, COUNT(keys), &seen, &k, "an event")) == 0) {
    if (k == 0) {
      rc = get_ms(r, "t", &ev->t_us);
      continue;
    }
    if (seen & ~(BIT(0) | BIT((unsigned)k)))
      return fail_at(r, r->key, "one chunk per event",
                     "an event has one data key");
    ev->kind = (pkc_event_kind)((k - 1) % 3 + 1);
    rc = k <= 3 ? get_bytes(r, keys[k], &ev->data, &ev->len)
                : get_base64(r, keys[k], &ev->data, &ev->len);
  }
  if (rc < 0)
    return rc;
  if (!(seen & BIT(0)))
    return fail_at(r, at, NULL, "an event needs t");
  if (seen == BIT(0))
    return fail_at(r, at, "e.g. {t: 2, stdout: \"hi\\n\"}",
                   "an event needs stdout, stderr or stdin data");
  return 0;
}

static int read_events(rd *r, pkc_entry *e) {
  int rc = expect(r, YAML_SEQUENCE_START_EVENT, "events", "a sequence");
  while (rc == 0 && (rc = next(r)) == 0 &&
         r->ev.type != YAML_SEQUENCE_END_EVENT) {
    if (++r->nevents > r->lim->max_events)
      return fail(r, "split the cassette", "more than %zu events",
                  r->lim->max_events);
    if ((rc = pkc__grow(&e->events, e->nevents, sizeof(*e->events))) != 0)
      return rc;
    pkc_event *ev = &e->events[e->nevents++];
    memset(ev, 0, sizeof(*ev));
    rc = read_event(r, ev);
  }
  return rc;
}

enum {
  E_ID,
  E_AT,
  E_PROGRAM,
  E_ARGS,
  E_CWD,
  E_ENV,
  E_ENV_DIGEST,
  E_STDIN,
  E_EXIT,
  E_DURATION,
  E_OUTPUT,
  E_TRUNCATED,
  E_INCOMPLETE,
  E_PLACEHOLDERS,
  E_EVENTS
};

static int entry_field(rd *r, int k, pkc_entry *e) {
  switch (k) {
  case E_ID:
    return get_str(r, "id", &e->id);
  case E_AT: {
    int rc = get_str(r, "recorded_at", &e->recorded_at);
    if (rc == 0 && !pkc_timestamp_valid(e->recorded_at))
      return fail(r, "RFC 3339 UTC, e.g. \"2026-11-29T12:00:00.123Z\"",
                  "recorded_at is not a UTC timestamp");
    return rc;
  }
  case E_PROGRAM:
    return get_str(r, "program", &e->program);
  case E_ARGS:
    return get_strv(r, "args", &e->args, &e->nargs);
  case E_CWD:
    return get_str(r, "cwd", &e->cwd);
  case E_ENV:
    return get_strv(r, "env", &e->env_names, &e->nenv_names);
  case E_ENV_DIGEST: {
    char hex[65];
    int rc = get_hex64(r, "env_digest", hex);
    if (rc == 0 && (e->env_digest = pk__strdup(hex)) == NULL)
      rc = PK_ENOMEM;
    return rc;
  }
  case E_STDIN:
    return read_stdin(r, e);
  case E_EXIT:
    return read_exit(r, e);
  case E_DURATION:
    return get_ms(r, "duration_ms", &e->duration_us);
  case E_OUTPUT:
    return read_output(r, e);
  case E_TRUNCATED:
    return get_bool(r, "truncated", &e->truncated);
  case E_INCOMPLETE:
    return get_bool(r, "incomplete", &e->incomplete);
  case E_PLACEHOLDERS:
    return get_strv(r, "placeholders", &e->placeholders, &e->nplaceholders);
  default:
    return read_events(r, e);
  }
}

static int read_entry(rd *r, pkc_entry *e) {
  static const char *const keys[] = {
      "id",     "recorded_at", "program",    "args",         "cwd",
      "env",    "env_digest",  "stdin",      "exit",         "duration_ms",
      "output", "truncated",   "incomplete", "placeholders", "events"};
  static const int required[] = {E_PROGRAM, E_ARGS,     E_STDIN,
                                 E_EXIT,    E_DURATION, E_OUTPUT};
  yaml_mark_t at = r->ev.start_mark;
  int rc = expect(r, YAML_MAPPING_START_EVENT, "an entry", "a mapping");
  unsigned seen = 0;
  int k = -1;
  while (rc == 0 &&
         (rc = map_next(r, keys, COUNT(keys), &seen, &k, "an entry")) == 0)
    rc = entry_field(r, k, e);
  if (rc < 0)
    return rc;
  for (size_t i = 0; i < COUNT(required); i++)
    if (!(seen & BIT(required[i])))
      return fail_at(r, at, "see docs/cassette-format.md",
                     "the entry has no '%s'", keys[required[i]]);
  return 0;
}

static int read_entries(rd *r, pkc_file *f) {
  int rc = expect(r, YAML_SEQUENCE_START_EVENT, "entries", "a sequence");
  while (rc == 0 && (rc = next(r)) == 0 &&
         r->ev.type != YAML_SEQUENCE_END_EVENT) {
    pkc_entry e;
    memset(&e, 0, sizeof(e));
    rc = read_entry(r, &e);
    if (rc == 0)
      rc = pkc_file_add(f, &e, false);
    pkc_entry_clear(&e);
  }
  return rc;
}

static int read_version(rd *r, pkc_file *f) {
  int64_t v;
  int rc = get_int(r, "version", 0, INT_MAX, &v);
  if (rc != 0)
    return rc;
  if (v < PKC_VERSION_MIN || v > PKC_VERSION)
    return fail(r,
                v > PKC_VERSION ? "upgrade pk to read it; " VERSIONS_HINT
                                : VERSIONS_HINT,
                "unsupported cassette format version %lld", (long long)v);
  f->version = (int)v;
  return 0;
}

static int read_root(rd *r, pkc_file *f) {
  static const char *const keys[] = {"version", "pk", "frozen", "entries"};
  int rc = next(r); /* stream start */
  if (rc == 0)
    rc = next(r);
  if (rc != 0)
    return rc;
  if (r->ev.type == YAML_STREAM_END_EVENT)
    return fail(r, "a cassette starts with version: 1", "the file is empty");
  if ((rc = next(r)) != 0)
    return rc;
  if (r->ev.type != YAML_MAPPING_START_EVENT)
    return fail(r, "a cassette starts with version: 1",
                "a cassette is a mapping, found %s", kind_of(r));
  unsigned seen = 0;
  int k = -1;
  while ((rc = map_next(r, keys, COUNT(keys), &seen, &k, "the cassette")) ==
         0) {
    if (seen == BIT(k) && k != 0)
      return fail_at(r, r->key,
                     "upgrade pk if the file is newer; " VERSIONS_HINT,
                     "version must be the first key");
    if (k == 0)
      rc = read_version(r, f);
    else if (k == 1)
      rc = get_str(r, "pk", &f->pk_version);
    else if (k == 2)
      rc = get_bool(r, "frozen", &f->frozen);
    else
      rc = read_entries(r, f);
    if (rc != 0)
      return rc;
  }
  if (rc < 0)
    return rc;
  if (seen == 0)
    return fail(r, VERSIONS_HINT, "no version (not a cassette?)");
  if ((rc = next(r)) != 0) /* document end */
    return rc;
  if ((rc = next(r)) != 0)
    return rc;
  if (r->ev.type != YAML_STREAM_END_EVENT)
    return fail(r, NULL, "a cassette is one YAML document");
  return 0;
}

static const pkc_limits default_limits = {
    PKC_MAX_FILE_BYTES, PKC_MAX_SCALAR_BYTES, PKC_MAX_DEPTH, PKC_MAX_EVENTS};

int pkc_parse_limited(const char *name, const char *data, size_t len,
                      const pkc_limits *lim, pkc_file **out, pkc_error *err) {
  pkc_error local;
  rd r;
  memset(&r, 0, sizeof(r));
  r.name = name != NULL ? name : "<cassette>";
  r.err = err != NULL ? err : &local;
  r.lim = lim != NULL ? lim : &default_limits;
  r.data = data;
  r.len = len;
  memset(r.err, 0, sizeof(*r.err));
  *out = NULL;
  if (data == NULL && len != 0)
    return PK_EINVAL;
  if (len > r.lim->max_file_bytes)
    return fail_file(&r, "split it into several cassettes",
                     "%zu bytes is over the limit of %zu for a cassette", len,
                     r.lim->max_file_bytes);
  pkc_file *f = pkc_file_new();
  if (f == NULL || !yaml_parser_initialize(&r.p)) {
    pkc_file_free(f);
    r.err->code = PK_ENOMEM;
    snprintf(r.err->msg, sizeof(r.err->msg), "%s: out of memory", r.name);
    return PK_ENOMEM;
  }
  yaml_parser_set_encoding(&r.p, YAML_UTF8_ENCODING);
  yaml_parser_set_input_string(&r.p, (const unsigned char *)(data ? data : ""),
                               len);
  int rc = read_root(&r, f);
  if (r.have)
    yaml_event_delete(&r.ev);
  yaml_parser_delete(&r.p);
  if (rc != 0) {
    if (rc == PK_ENOMEM && r.err->msg[0] == '\0') {
      r.err->code = PK_ENOMEM;
      snprintf(r.err->msg, sizeof(r.err->msg), "%s: out of memory", r.name);
    }
    pkc_file_free(f);
    return rc;
  }
  *out = f;
  return 0;
}

int pkc_parse(const char *name, const char *data, size_t len, pkc_file **out,
              pkc_error *err) {
  return pkc_parse_limited(name, data, len, NULL, out, err);
}

static int load_fail(pkc_error *err, int code, const char *path,
                     const char *what) {
  err->code = code;
  snprintf(err->msg, sizeof(err->msg), "%s: %s", path, what);
  return code;
}

int pkc_load(const char *path, pkc_file **out, pkc_error *err) {
  pkc_error local;
  if (err == NULL)
    err = &local;
  memset(err, 0, sizeof(*err));
  *out = NULL;
  if (path == NULL)
    return load_fail(err, PK_EINVAL, "(null)", "no path");
  /* O_NONBLOCK: a FIFO (or a device) at path is refused below by fstat
   * instead of blocking the open until a writer shows up. A regular
   * file reads the same with or without it. */
  int fd =
      pk__fd_open(path, UV_FS_O_RDONLY | UV_FS_O_NOCTTY | UV_FS_O_NONBLOCK, 0);
  if (fd < 0) {
    if (fd == UV_ENOENT || fd == UV_ENOTDIR)
      return load_fail(err, PK_ECASSETTE_NOT_FOUND, path,
                       "no such cassette file");
    return load_fail(err, fd == UV_EACCES ? PK_EACCES : PK_EIO, path,
                     uv_strerror(fd));
  }
  uint64_t size = 0;
  char *buf = NULL;
  int rc = pk__fd_regular_size(fd, &size);
  if (rc < 0) {
    rc = load_fail(err, PK_EIO, path, uv_strerror(rc));
    goto out;
  }
  if (rc == 1) {
    rc = load_fail(err, PK_ECASSETTE_INVALID, path, "not a regular file");
    goto out;
  }
  if (size > PKC_MAX_FILE_BYTES) {
    char what[160];
    snprintf(what, sizeof(what),
             "%lld bytes is over the limit of %zu for a cassette (split it "
             "into several cassettes)",
             (long long)size, PKC_MAX_FILE_BYTES);
    rc = load_fail(err, PK_ECASSETTE_INVALID, path, what);
    goto out;
  }
  /* Read to EOF: one byte past the limit if the file grew meanwhile. */
  size_t cap = (size_t)size + 1, len = 0;
  if ((buf = pk__malloc(cap)) == NULL) {
    rc = load_fail(err, PK_ENOMEM, path, "out of memory");
    goto out;
  }
  for (;;) {
    if (len == cap) {
      if (cap > PKC_MAX_FILE_BYTES)
        break; /* pkc_parse rejects it by its length */
      char *nb = pk__realloc(buf, cap * 2);
      if (nb == NULL) {
        rc = load_fail(err, PK_ENOMEM, path, "out of memory");
        goto out;
      }
      buf = nb, cap *= 2;
    }
    int64_t n = pk__fd_read(fd, buf + len, cap - len);
    if (n < 0) {
      rc = load_fail(err, PK_EIO, path, uv_strerror((int)n));
      goto out;
    }
    if (n == 0)
      break;
    len += (size_t)n;
  }
  rc = pkc_parse(path, buf, len, out, err);
out:
  pk__free(buf);
  pk__fd_close(fd);
  return rc;
}
