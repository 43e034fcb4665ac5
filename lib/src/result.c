/* pk_result: what one run produced. */
#include "internal.h"

#include <ctype.h>
#include <string.h>
#include <time.h>

pk_result *pk__result_new(void) {
  pk_result *r = pk__calloc(1, sizeof(*r));
  if (r != NULL) {
    r->code = -1;
    r->cpu_us = -1;
    r->peak_memory = -1;
  }
  return r;
}

void pk__result_set_errmsg(pk_result *r, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  char *m = pk__vsprintf(fmt, ap);
  va_end(ap);
  if (m == NULL)
    return;
  pk__free(r->errmsg);
  r->errmsg = m;
}

void pk_result_free(pk_result *r) {
  if (r == NULL)
    return;
  pk__free(r->errmsg);
  pk__free(r->stage);
  pk__free(r->spawn_method);
  for (int i = 0; i < 3; i++)
    pk__buf_release(&r->out[i]);
  pk__free(r);
}

const char *pk_outcome_name(pk_outcome o) {
  switch (o) {
  case PK_OUTCOME_EXITED:
    return "exited";
  case PK_OUTCOME_SIGNALLED:
    return "signalled";
  case PK_OUTCOME_TIMED_OUT:
    return "timed_out";
  case PK_OUTCOME_CANCELLED:
    return "cancelled";
  default:
    return "none";
  }
}

pk_outcome pk_result_outcome(const pk_result *r) { return r->outcome; }
int pk_result_code(const pk_result *r) { return r->code; }
int pk_result_signal(const pk_result *r) { return r->signal; }
int pk_result_error(const pk_result *r) { return r->error; }
const char *pk_result_errmsg(const pk_result *r) {
  return r->errmsg ? r->errmsg : "";
}
const char *pk_result_stage(const pk_result *r) { return r->stage; }
int pk_result_os_errno(const pk_result *r) { return r->os_errno; }

static const char *stream_bytes(const pk_result *r, int s, size_t *len) {
  if (len != NULL)
    *len = r->out[s].len;
  return r->out[s].data ? r->out[s].data : "";
}
const char *pk_result_stdout(const pk_result *r, size_t *len) {
  return stream_bytes(r, PK_STDOUT, len);
}
const char *pk_result_stderr(const pk_result *r, size_t *len) {
  return stream_bytes(r, PK_STDERR, len);
}
int pk_result_text(const pk_result *r, pk_stream s, bool trim, char **out) {
  if (out != NULL)
    *out = NULL;
  if (r == NULL || out == NULL || (s != PK_STDOUT && s != PK_STDERR))
    return PK_EINVAL;
  size_t len;
  const char *p = stream_bytes(r, (int)s, &len);
  if (memchr(p, '\0', len) != NULL)
    return PK_EINVAL;
  while (trim && len > 0 && isspace((unsigned char)p[0]))
    p++, len--;
  while (trim && len > 0 && isspace((unsigned char)p[len - 1]))
    len--;
  *out = pk__memdup(p, len);
  return *out != NULL ? 0 : PK_ENOMEM;
}

uint64_t pk_result_total_bytes(const pk_result *r, pk_stream s) {
  return (s == PK_STDOUT || s == PK_STDERR) ? r->total_bytes[(int)s] : 0;
}
uint64_t pk_result_total_lines(const pk_result *r, pk_stream s) {
  return (s == PK_STDOUT || s == PK_STDERR) ? r->total_lines[(int)s] : 0;
}
bool pk_result_truncated(const pk_result *r) { return r->truncated; }
bool pk_result_output_incomplete(const pk_result *r) { return r->incomplete; }
int64_t pk_result_duration_ms(const pk_result *r) {
  return r->duration_ns / 1000000;
}
double pk_result_duration_s(const pk_result *r) {
  return (double)r->duration_ns / 1e9;
}
pk_mechanism pk_result_mechanism(const pk_result *r) { return r->mechanism; }
const char *pk_result_spawn_method(const pk_result *r) {
  return r->spawn_method ? r->spawn_method : "";
}
int pk_result_pid(const pk_result *r) { return r->pid; }
int pk_result_escapees(const pk_result *r) { return r->escapees; }
int64_t pk_result_cpu_us(const pk_result *r) { return r->cpu_us; }
int64_t pk_result_peak_memory(const pk_result *r) { return r->peak_memory; }
const char *pk_result_cpu_scope(const pk_result *r) { return r->cpu_scope; }
const char *pk_result_memory_scope(const pk_result *r) {
  return r->memory_scope;
}

uint64_t pk__now_ns(void) { return uv_hrtime(); }
