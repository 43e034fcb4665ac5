/* The cassette writer: the model as YAML through libyaml's emitter. Every
 * string is double-quoted (plain and block styles would normalize CR, NEL
 * and trailing spaces), numbers and booleans plain, one run or chunk per
 * line. The same model always gives the same bytes. */
#include "model.h"

#include "internal.h"

#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <yaml.h>

#define HEADER "# processkit cassette: see docs/cassette-format.md\n"

typedef struct wr {
  yaml_emitter_t em;
  pk__buf out;
  int rc; /* the first failure; later calls do nothing */
} wr;

static int on_write(void *data, unsigned char *buf, size_t size) {
  wr *w = data;
  return pk__buf_append(&w->out, buf, size) == 0;
}

static void emit(wr *w, yaml_event_t *ev, int ok) {
  if (w->rc != 0) {
    if (ok)
      yaml_event_delete(ev);
    return;
  }
  if (!ok || !yaml_emitter_emit(&w->em, ev)) /* takes ev in every case */
    w->rc = PK_ENOMEM;
}

static void scalar(wr *w, const char *s, size_t n, bool quoted) {
  yaml_event_t ev;
  yaml_scalar_style_t style =
      quoted ? YAML_DOUBLE_QUOTED_SCALAR_STYLE : YAML_PLAIN_SCALAR_STYLE;
  if (w->rc != 0)
    return;
  if (quoted && pkc_utf8_valid_prefix(s, n) != n) {
    w->rc = PK_EINVAL; /* the emitter takes UTF-8 only */
    return;
  }
  emit(w, &ev,
       yaml_scalar_event_initialize(&ev, NULL, NULL, (yaml_char_t *)s, (int)n,
                                    !quoted, quoted, style));
}

static void key(wr *w, const char *k) { scalar(w, k, strlen(k), false); }
static void str(wr *w, const char *s) { scalar(w, s, strlen(s), true); }

static void kv_str(wr *w, const char *k, const char *s) {
  if (s == NULL)
    return;
  key(w, k);
  str(w, s);
}

static void kv_int(wr *w, const char *k, int64_t v) {
  char b[24];
  int n = snprintf(b, sizeof(b), "%" PRId64, v);
  key(w, k);
  scalar(w, b, (size_t)n, false);
}

static void kv_uint(wr *w, const char *k, uint64_t v) {
  char b[24];
  int n = snprintf(b, sizeof(b), "%" PRIu64, v);
  key(w, k);
  scalar(w, b, (size_t)n, false);
}

static void kv_bool(wr *w, const char *k, bool v) {
  key(w, k);
  scalar(w, v ? "true" : "false", v ? 4 : 5, false);
}

/* Microseconds as milliseconds: "3", "3.25", "0.001". */
static void kv_ms(wr *w, const char *k, int64_t us) {
  char b[32];
  if (us < 0) {
    w->rc = w->rc ? w->rc : PK_EINVAL;
    return;
  }
  int n = snprintf(b, sizeof(b), "%" PRId64, us / 1000);
  int frac = (int)(us % 1000);
  if (frac != 0) {
    n += snprintf(b + n, sizeof(b) - (size_t)n, ".%03d", frac);
    while (b[n - 1] == '0')
      b[--n] = '\0';
  }
  key(w, k);
  scalar(w, b, (size_t)n, false);
}

static void start(wr *w, bool map, bool flow) {
  yaml_event_t ev;
  if (w->rc != 0)
    return;
  if (map)
    emit(w, &ev,
         yaml_mapping_start_event_initialize(&ev, NULL, NULL, 1,
                                             flow ? YAML_FLOW_MAPPING_STYLE
                                                  : YAML_BLOCK_MAPPING_STYLE));
  else
    emit(w, &ev,
         yaml_sequence_start_event_initialize(
             &ev, NULL, NULL, 1,
             flow ? YAML_FLOW_SEQUENCE_STYLE : YAML_BLOCK_SEQUENCE_STYLE));
}

static void end(wr *w, bool map) {
  yaml_event_t ev;
  if (w->rc != 0)
    return;
  if (map)
    emit(w, &ev, yaml_mapping_end_event_initialize(&ev));
  else
    emit(w, &ev, yaml_sequence_end_event_initialize(&ev));
}

static void kv_strv(wr *w, const char *k, char *const *v, size_t n,
                    bool always) {
  if (n == 0 && !always)
    return;
  key(w, k);
  start(w, false, true);
  for (size_t i = 0; i < n; i++)
    str(w, v[i]);
  end(w, false);
}

static void write_stdin(wr *w, const pkc_entry *e) {
  key(w, "stdin");
  start(w, true, true);
  if (e->stdin_kind == PKC_STDIN_TERMINAL) {
    kv_bool(w, "terminal", true);
  } else if (e->stdin_kind == PKC_STDIN_INHERIT) {
    kv_bool(w, "inherit", true);
  } else {
    if (!pkc_hex64_valid(e->stdin_sha256) && w->rc == 0)
      w->rc = PK_EINVAL;
    kv_str(w, "sha256", e->stdin_sha256);
    kv_uint(w, "bytes", e->stdin_bytes);
  }
  end(w, true);
}

static void write_signal(wr *w, int sig) {
  if (sig < 0 && w->rc == 0)
    w->rc = PK_EINVAL;
  kv_int(w, "signal", sig);
  kv_str(w, "name", pk_signal_name(sig));
}

static void write_exit(wr *w, const pkc_entry *e) {
  key(w, "exit");
  start(w, true, true);
  switch (e->end) {
  case PKC_END_EXIT:
    kv_int(w, "code", e->code);
    break;
  case PKC_END_SIGNAL:
    write_signal(w, e->signal);
    break;
  case PKC_END_TIMEOUT:
    kv_bool(w, "timed_out", true);
    if (e->signal != 0)
      write_signal(w, e->signal);
    else if (e->code >= 0) /* it handled the soft signal and exited */
      kv_int(w, "code", e->code);
    break;
  case PKC_END_ERROR:
    if (pkc_error_parse(pk_err_name(e->error)) != e->error && w->rc == 0)
      w->rc = PK_EINVAL; /* no stable name: the reader would refuse it */
    kv_str(w, "error", pk_err_name(e->error));
    if (e->os_errno != 0) {
      kv_int(w, "errno", e->os_errno);
      kv_str(w, "errno_name", pkc_errno_name(e->os_errno));
    }
    kv_str(w, "stage", e->stage);
    kv_str(w, "message", e->errmsg);
    break;
  default:
    w->rc = w->rc ? w->rc : PK_EINVAL;
  }
  end(w, true);
}

static void write_output(wr *w, const pkc_entry *e) {
  key(w, "output");
  start(w, true, true);
  kv_uint(w, "stdout_bytes", e->total_bytes[PK_STDOUT]);
  kv_uint(w, "stdout_lines", e->total_lines[PK_STDOUT]);
  kv_uint(w, "stderr_bytes", e->total_bytes[PK_STDERR]);
  kv_uint(w, "stderr_lines", e->total_lines[PK_STDERR]);
  end(w, true);
}

static void write_event(wr *w, const pkc_event *ev) {
  static const char *const text[] = {NULL, "stdout", "stderr", "stdin"};
  static const char *const b64[] = {NULL, "stdout_base64", "stderr_base64",
                                    "stdin_base64"};
  if (ev->kind < PKC_EV_STDOUT || ev->kind > PKC_EV_STDIN) {
    w->rc = w->rc ? w->rc : PK_EINVAL;
    return;
  }
  start(w, true, true);
  kv_ms(w, "t", ev->t_us);
  if (pkc_utf8_valid_prefix(ev->data, ev->len) == ev->len) {
    key(w, text[ev->kind]);
    scalar(w, ev->len ? ev->data : "", ev->len, true);
  } else if (w->rc == 0) {
    char *enc = pkc_base64(ev->data, ev->len);
    if (enc == NULL) {
      w->rc = PK_ENOMEM;
      return;
    }
    key(w, b64[ev->kind]);
    scalar(w, enc, strlen(enc), true);
    pk__free(enc);
  }
  end(w, true);
}

static void write_entry(wr *w, const pkc_entry *e) {
  start(w, true, false);
  kv_str(w, "id", e->id);
  if (e->recorded_at != NULL && !pkc_timestamp_valid(e->recorded_at))
    w->rc = w->rc ? w->rc : PK_EINVAL;
  kv_str(w, "recorded_at", e->recorded_at);
  if (e->program == NULL)
    w->rc = w->rc ? w->rc : PK_EINVAL;
  kv_str(w, "program", e->program);
  kv_strv(w, "args", e->args, e->nargs, true);
  kv_str(w, "cwd", e->cwd);
  kv_strv(w, "env", e->env_names, e->nenv_names, false);
  if (e->env_digest != NULL && !pkc_hex64_valid(e->env_digest))
    w->rc = w->rc ? w->rc : PK_EINVAL;
  kv_str(w, "env_digest", e->env_digest);
  write_stdin(w, e);
  write_exit(w, e);
  kv_ms(w, "duration_ms", e->duration_us);
  write_output(w, e);
  if (e->truncated)
    kv_bool(w, "truncated", true);
  if (e->incomplete)
    kv_bool(w, "incomplete", true);
  kv_strv(w, "placeholders", e->placeholders, e->nplaceholders, false);
  if (e->nevents != 0) {
    key(w, "events");
    start(w, false, false);
    for (size_t i = 0; i < e->nevents && w->rc == 0; i++)
      write_event(w, &e->events[i]);
    end(w, false);
  }
  end(w, true);
}

static void write_file(wr *w, const pkc_file *f) {
  yaml_event_t ev;
  emit(w, &ev, yaml_stream_start_event_initialize(&ev, YAML_UTF8_ENCODING));
  emit(w, &ev, yaml_document_start_event_initialize(&ev, NULL, NULL, NULL, 1));
  start(w, true, false);
  kv_int(w, "version", PKC_VERSION);
  kv_str(w, "pk", f->pk_version);
  if (f->frozen)
    kv_bool(w, "frozen", true);
  key(w, "entries");
  start(w, false, false);
  for (size_t i = 0; i < f->nentries && w->rc == 0; i++)
    write_entry(w, &f->entries[i]);
  end(w, false);
  end(w, true);
  emit(w, &ev, yaml_document_end_event_initialize(&ev, 1));
  emit(w, &ev, yaml_stream_end_event_initialize(&ev));
}

int pkc_emit(const pkc_file *f, char **out, size_t *len) {
  wr w;
  memset(&w, 0, sizeof(w));
  *out = NULL;
  *len = 0;
  if (f == NULL)
    return PK_EINVAL;
  if (!yaml_emitter_initialize(&w.em))
    return PK_ENOMEM;
  yaml_emitter_set_output(&w.em, on_write, &w);
  yaml_emitter_set_unicode(&w.em, 1);
  yaml_emitter_set_width(&w.em, -1);
  yaml_emitter_set_indent(&w.em, 2);
  yaml_emitter_set_break(&w.em, YAML_LN_BREAK);
  if (pk__buf_append(&w.out, HEADER, strlen(HEADER)) != 0)
    w.rc = PK_ENOMEM;
  if (w.rc == 0)
    write_file(&w, f);
  if (w.rc == 0 && !yaml_emitter_flush(&w.em))
    w.rc = PK_ENOMEM;
  yaml_emitter_delete(&w.em);
  if (w.rc != 0) {
    pk__buf_release(&w.out);
    return w.rc;
  }
  *out = w.out.data;
  *len = w.out.len;
  return 0;
}
