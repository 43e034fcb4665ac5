/* pk run --report FILE: a YAML summary of the run.
 *
 * All YAML goes through libyaml's emitter. Text is double-quoted; a byte
 * string that is not valid UTF-8 (argv is bytes) is written as a
 * `!!binary` scalar holding its base64. */
#include "cli.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <yaml.h>

#define BINARY_TAG "tag:yaml.org,2002:binary"

/* ------------------------------------------------------------ emitting */

typedef struct out {
  yaml_emitter_t em;
  int fd;
  int write_errno; /* first write(2) failure */
} out;

static int on_write(void *data, unsigned char *buf, size_t size) {
  out *o = data;
  while (size > 0) {
    ssize_t n = write(o->fd, buf, size);
    if (n < 0 && errno == EINTR)
      continue;
    if (n <= 0) {
      o->write_errno = n < 0 ? errno : EIO;
      return 0;
    }
    buf += n;
    size -= (size_t)n;
  }
  return 1;
}

/* Strict UTF-8 (RFC 3629: no overlong forms, no surrogates, at most
 * U+10FFFF) — exactly what libyaml accepts in a scalar. */
static bool utf8_valid(const unsigned char *s, size_t len) {
  size_t i = 0;
  while (i < len) {
    unsigned c = s[i];
    size_t w = c < 0x80             ? 1
               : (c & 0xe0) == 0xc0 ? 2
               : (c & 0xf0) == 0xe0 ? 3
               : (c & 0xf8) == 0xf0 ? 4
                                    : 0;
    if (w == 0 || i + w > len)
      return false;
    unsigned long v = w == 1 ? c : c & (0x7fu >> w);
    for (size_t k = 1; k < w; k++) {
      if ((s[i + k] & 0xc0) != 0x80)
        return false;
      v = v << 6 | (s[i + k] & 0x3fu);
    }
    static const unsigned long min[5] = {0, 0, 0x80, 0x800, 0x10000};
    if (v < min[w] || v > 0x10ffff || (v >= 0xd800 && v <= 0xdfff))
      return false;
    i += w;
  }
  return true;
}

static char *base64(const unsigned char *s, size_t len) {
  static const char abc[] =
      "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  char *b = malloc((len + 2) / 3 * 4 + 1), *p = b;
  for (size_t i = 0; b != NULL && i < len; i += 3) {
    unsigned long v = (unsigned long)s[i] << 16;
    if (i + 1 < len)
      v |= (unsigned long)s[i + 1] << 8;
    if (i + 2 < len)
      v |= s[i + 2];
    *p++ = abc[v >> 18 & 63];
    *p++ = abc[v >> 12 & 63];
    *p++ = i + 1 < len ? abc[v >> 6 & 63] : '=';
    *p++ = i + 2 < len ? abc[v & 63] : '=';
  }
  if (b != NULL)
    *p = '\0';
  return b;
}

static int emit(out *o, yaml_event_t *ev, int init_ok) {
  if (!init_ok)
    return 0;
  return yaml_emitter_emit(&o->em, ev); /* takes the event, also on failure */
}

/* A plain scalar: a key, a number, true/false/null. */
static int plain(out *o, const char *s) {
  yaml_event_t ev;
  return emit(o, &ev,
              yaml_scalar_event_initialize(&ev, NULL, NULL,
                                           (const yaml_char_t *)s, -1, 1, 0,
                                           YAML_PLAIN_SCALAR_STYLE));
}

/* Text: double-quoted if valid UTF-8, else !!binary with its base64. */
static int text(out *o, const char *s) {
  const unsigned char *u = (const unsigned char *)s;
  size_t len = strlen(s);
  yaml_event_t ev;
  if (utf8_valid(u, len))
    return emit(o, &ev,
                yaml_scalar_event_initialize(&ev, NULL, NULL, u, (int)len, 0, 1,
                                             YAML_DOUBLE_QUOTED_SCALAR_STYLE));
  char *b64 = base64(u, len);
  if (b64 == NULL)
    return 0;
  int ok = emit(o, &ev,
                yaml_scalar_event_initialize(&ev, NULL,
                                             (const yaml_char_t *)BINARY_TAG,
                                             (const yaml_char_t *)b64, -1, 0, 0,
                                             YAML_DOUBLE_QUOTED_SCALAR_STYLE));
  free(b64);
  return ok;
}

static int pair_plain(out *o, const char *key, const char *val) {
  return plain(o, key) && plain(o, val);
}

static int pair_int(out *o, const char *key, long long v) {
  char num[24];
  snprintf(num, sizeof(num), "%lld", v);
  return pair_plain(o, key, num);
}

static int pair_text(out *o, const char *key, const char *val) {
  return plain(o, key) && text(o, val);
}

static int emit_args(out *o, const run_args *a) {
  yaml_event_t ev;
  if (!plain(o, "args") ||
      !emit(o, &ev,
            yaml_sequence_start_event_initialize(&ev, NULL, NULL, 1,
                                                 YAML_FLOW_SEQUENCE_STYLE)))
    return 0;
  for (int i = 1; i < a->argc; i++)
    if (!text(o, a->argv[i]))
      return 0;
  return emit(o, &ev, yaml_sequence_end_event_initialize(&ev));
}

static int emit_fields(out *o, const run_args *a, const pk_result *r) {
  pk_outcome oc = pk_result_outcome(r);
  int code = pk_result_code(r);
  int err = pk_result_error(r);
  int ok = pair_text(o, "program", a->argv[0]) && emit_args(o, a);
  ok = ok &&
       (oc == PK_OUTCOME_NONE ? pair_plain(o, "outcome", "null")
                              : pair_text(o, "outcome", pk_outcome_name(oc)));
  ok = ok &&
       (code >= 0 ? pair_int(o, "code", code) : pair_plain(o, "code", "null"));
  ok = ok && pair_int(o, "signal", pk_result_signal(r)) &&
       pair_int(o, "duration_ms", (long long)pk_result_duration_ms(r)) &&
       pair_text(o, "mechanism", pk_mechanism_name(pk_result_mechanism(r))) &&
       pair_int(o, "stdout_bytes",
                (long long)pk_result_total_bytes(r, PK_STDOUT)) &&
       pair_int(o, "stderr_bytes",
                (long long)pk_result_total_bytes(r, PK_STDERR)) &&
       pair_plain(o, "output_incomplete",
                  pk_result_output_incomplete(r) ? "true" : "false");
  return ok && (err == 0 || pair_text(o, "error", pk_err_name(err)));
}

/* One document: a block mapping of the fields, no "---" / "...". */
static int emit_report(out *o, const run_args *a, const pk_result *r) {
  yaml_event_t ev;
  return emit(o, &ev,
              yaml_stream_start_event_initialize(&ev, YAML_UTF8_ENCODING)) &&
         emit(o, &ev,
              yaml_document_start_event_initialize(&ev, NULL, NULL, NULL, 1)) &&
         emit(o, &ev,
              yaml_mapping_start_event_initialize(&ev, NULL, NULL, 1,
                                                  YAML_BLOCK_MAPPING_STYLE)) &&
         emit_fields(o, a, r) &&
         emit(o, &ev, yaml_mapping_end_event_initialize(&ev)) &&
         emit(o, &ev, yaml_document_end_event_initialize(&ev, 1)) &&
         emit(o, &ev, yaml_stream_end_event_initialize(&ev)) &&
         yaml_emitter_flush(&o->em);
}

int write_report(const run_args *a, const pk_result *r) {
  out o = {.fd =
               open(a->report, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0666)};
  if (o.fd < 0)
    return fail(PK_EIO, "cannot write report %s: %s", a->report,
                strerror(errno));
  if (!yaml_emitter_initialize(&o.em)) {
    close(o.fd);
    return fail(PK_ENOMEM, "cannot write report %s: out of memory", a->report);
  }
  yaml_emitter_set_output(&o.em, on_write, &o);
  yaml_emitter_set_unicode(&o.em, 1); /* UTF-8 as is, not \u escapes */
  yaml_emitter_set_width(&o.em, -1);  /* one line per key */
  int ok = emit_report(&o, a, r);
  yaml_emitter_delete(&o.em);
  int close_errno = close(o.fd) != 0 ? errno : 0;
  if (!ok && o.write_errno != 0)
    return fail(PK_EIO, "cannot write report %s: %s", a->report,
                strerror(o.write_errno));
  if (!ok) /* the emitter refuses only on memory: every scalar is valid */
    return fail(PK_ENOMEM, "cannot write report %s: out of memory", a->report);
  if (close_errno != 0)
    return fail(PK_EIO, "cannot write report %s: %s", a->report,
                strerror(close_errno));
  return 0;
}
