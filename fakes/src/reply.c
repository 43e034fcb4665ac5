/* Reply constructors: a reply is a timeline of output pieces and an end. */
#include "fakes_internal.h"

#include "internal.h"

#include <string.h>

pk_reply *pk__reply_new(reply_end end) {
  pk_reply *r = pk__calloc(1, sizeof(*r));
  if (r != NULL)
    r->end = end;
  return r;
}

void pk_reply_free(pk_reply *r) {
  if (r == NULL)
    return;
  for (size_t i = 0; i < r->nsteps; i++)
    pk__free(r->steps[i].data);
  pk__free(r->steps);
  for (size_t i = 0; i < r->ndialog; i++) {
    pk__free(r->dialog[i].expect);
    pk__free(r->dialog[i].answer);
  }
  pk__free(r->dialog);
  pk__free(r->stage);
  pk__free(r->errmsg);
  pk__free(r);
}

int pk_reply_chunk(pk_reply *r, pk_stream s, int64_t delay_ms, const void *data,
                   size_t len) {
  if (r == NULL || (s != PK_STDOUT && s != PK_STDERR) || delay_ms < 0 ||
      (data == NULL && len > 0))
    return PK_EINVAL;
  reply_step *steps =
      pk__realloc(r->steps, (r->nsteps + 1) * sizeof(reply_step));
  if (steps == NULL)
    return PK_ENOMEM;
  r->steps = steps;
  char *copy = pk__memdup(len > 0 ? data : "", len);
  if (copy == NULL)
    return PK_ENOMEM;
  steps[r->nsteps++] = (reply_step){s, delay_ms, copy, len};
  return 0;
}

static int text_chunk(pk_reply *r, pk_stream s, const char *text) {
  if (r == NULL)
    return PK_EINVAL;
  if (text == NULL || text[0] == '\0')
    return 0;
  return pk_reply_chunk(r, s, 0, text, strlen(text));
}

int pk_reply_stdout(pk_reply *r, const char *text) {
  return text_chunk(r, PK_STDOUT, text);
}

int pk_reply_stderr(pk_reply *r, const char *text) {
  return text_chunk(r, PK_STDERR, text);
}

int pk_reply_exit(pk_reply *r, int64_t delay_ms, int code) {
  if (r == NULL || delay_ms < 0 || code < 0 || code > 255)
    return PK_EINVAL;
  r->end = END_EXIT;
  r->code = code;
  r->end_delay_ms = delay_ms;
  return 0;
}

/* Build a reply, freeing it if a step fails. */
static pk_reply *with_text(pk_reply *r, pk_stream s, const char *text) {
  if (r != NULL && text_chunk(r, s, text) != 0) {
    pk_reply_free(r);
    return NULL;
  }
  return r;
}

pk_reply *pk_reply_ok(const char *stdout_text) {
  return with_text(pk__reply_new(END_EXIT), PK_STDOUT, stdout_text);
}

pk_reply *pk_reply_fail(int code, const char *stderr_text) {
  pk_reply *r = pk__reply_new(END_EXIT);
  if (r != NULL)
    r->code = code < 0 || code > 255 ? 1 : code;
  return with_text(r, PK_STDERR, stderr_text);
}

pk_reply *pk_reply_lines(const char *const *lines, size_t n) {
  pk_reply *r = pk__reply_new(END_EXIT);
  for (size_t i = 0; r != NULL && i < n; i++) {
    char *line = lines[i] ? pk__sprintf("%s\n", lines[i]) : NULL;
    if (line == NULL ||
        pk_reply_chunk(r, PK_STDOUT, 0, line, strlen(line)) != 0) {
      pk__free(line);
      pk_reply_free(r);
      return NULL;
    }
    pk__free(line);
  }
  return r;
}

pk_reply *pk_reply_signalled(int sig) {
  pk_reply *r = pk__reply_new(END_SIGNAL);
  if (r != NULL)
    r->sig = sig > 0 && sig < PK_NSIG ? sig : PK_SIGKILL;
  return r;
}

pk_reply *pk_reply_timed_out(void) { return pk__reply_new(END_TIMEOUT); }
pk_reply *pk_reply_pending(void) { return pk__reply_new(END_PENDING); }
pk_reply *pk_reply_not_found(void) { return pk__reply_new(END_NOT_FOUND); }
pk_reply *pk_reply_timeline(void) { return pk__reply_new(END_EXIT); }

pk_reply *pk_reply_spawn_error(int os_errno) {
  pk_reply *r = pk__reply_new(END_SPAWN_ERROR);
  if (r != NULL)
    r->os_errno = os_errno;
  return r;
}

pk_reply *pk_reply_spawn_error_at(const char *stage, int os_errno) {
  pk_reply *r = pk_reply_spawn_error(os_errno);
  if (r != NULL && stage != NULL && (r->stage = pk__strdup(stage)) == NULL) {
    pk_reply_free(r);
    return NULL;
  }
  return r;
}

int pk_reply_incomplete(pk_reply *r) {
  if (r == NULL)
    return PK_EINVAL;
  r->incomplete = true;
  return 0;
}

pk_reply *pk_reply_callback(pk_reply_fn fn, void *data) {
  if (fn == NULL)
    return NULL;
  pk_reply *r = pk__reply_new(END_EXIT);
  if (r != NULL) {
    r->fn = fn;
    r->fn_data = data;
  }
  return r;
}

pk_reply *pk_reply_dialog(void) {
  pk_reply *r = pk__reply_new(END_EXIT);
  if (r != NULL)
    r->is_dialog = true;
  return r;
}

static int set_trap(pk_reply *r, int sig, int action) {
  if (r == NULL || sig <= 0 || sig >= 65 || sig == PK_SIGKILL ||
      sig == PK_SIGSTOP)
    return PK_EINVAL;
  r->trap[sig] = (short)action;
  return 0;
}

int pk_reply_trap(pk_reply *r, int sig, int code) {
  if (code < 0 || code > 255)
    return PK_EINVAL;
  return set_trap(r, sig, 1 + code);
}

int pk_reply_ignore(pk_reply *r, int sig) { return set_trap(r, sig, -1); }

int pk_reply_dialog_step(pk_reply *r, const char *expect_line,
                         const char *answer) {
  if (r == NULL || !r->is_dialog || expect_line == NULL)
    return PK_EINVAL;
  dialog_step *d =
      pk__realloc(r->dialog, (r->ndialog + 1) * sizeof(dialog_step));
  if (d == NULL)
    return PK_ENOMEM;
  r->dialog = d;
  char *e = pk__strdup(expect_line);
  char *a = pk__strdup(answer ? answer : "");
  if (e == NULL || a == NULL) {
    pk__free(e);
    pk__free(a);
    return PK_ENOMEM;
  }
  d[r->ndialog++] = (dialog_step){e, a};
  return 0;
}
