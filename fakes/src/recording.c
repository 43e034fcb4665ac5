/* The recording runner: a decorator around any runner that keeps a deep
 * copy of each command before passing it on, plus the read side (calls,
 * flags, env, stdin) and the renderings used in failure messages. */
#include "pk/recording.h"
#include "fakes_internal.h"
#include "internal.h"

#include <pthread.h>
#include <string.h>

struct pk_call {
  pk_cmd *cmd;
  size_t index;
};

typedef struct recorder {
  pk_runner base;
  pk_runner *inner; /* borrowed */
  pthread_mutex_t mu;
  pk_call **calls;
  size_t n, cap;
} recorder;

static const pk_runner_vtable recorder_vtable;

static recorder *as_recorder(const pk_runner *r) {
  return r != NULL && r->vt == &recorder_vtable ? (recorder *)(void *)r : NULL;
}

/* ------------------------------------------------------------ rendering */

/* Append word w, shell-quoted when it needs it. */
static int append_quoted(pk__buf *b, const char *w) {
  char *q = pk__format_argv(w, NULL, 0);
  int rc = q == NULL ? PK_ENOMEM : pk__buf_append(b, q, strlen(q));
  pk__free(q);
  return rc;
}

static int append_str(pk__buf *b, const char *s) {
  return pk__buf_append(b, s, strlen(s));
}

/* program and args as one shell-quoted line. */
static int append_argv(pk__buf *b, const pk_cmd *cmd) {
  size_t n = pk_cmd_argc(cmd);
  const char **args = pk__calloc(n + 1, sizeof(char *));
  if (args == NULL)
    return PK_ENOMEM;
  for (size_t i = 0; i < n; i++)
    args[i] = pk_cmd_argv(cmd, i);
  char *line = pk__format_argv(pk_cmd_program(cmd), args, n);
  pk__free(args);
  int rc = line == NULL ? PK_ENOMEM : append_str(b, line);
  pk__free(line);
  return rc;
}

/* Start a parenthesised part: " (" before the first, "; " after. */
static int open_part(pk__buf *b, bool *first, const char *label) {
  int rc = append_str(b, *first ? " (" : "; ");
  *first = false;
  return rc == 0 ? append_str(b, label) : rc;
}

static int append_env(pk__buf *b, const pk_cmd *cmd, bool *first) {
  size_t nin = pk_cmd_inherit_count(cmd), nov = pk_cmd_env_count(cmd);
  bool cleared = pk_cmd_env_cleared(cmd);
  if (!cleared && nin == 0 && nov == 0)
    return 0;
  int rc = open_part(b, first, "env");
  if (rc == 0 && cleared)
    rc = append_str(b, " cleared");
  for (size_t i = 0; rc == 0 && i < nin; i++) {
    rc = append_str(b, i == 0 ? " only " : ",");
    rc = rc ? rc : append_quoted(b, pk_cmd_inherit_name(cmd, i));
  }
  for (size_t i = 0; rc == 0 && i < nov; i++) {
    const char *value = NULL, *name = pk_cmd_env_name(cmd, i, &value);
    rc = append_str(b, value != NULL ? " +" : " -");
    rc = rc ? rc : append_quoted(b, name);
    if (rc == 0 && value != NULL)
      rc = append_str(b, "=");
    if (rc == 0 && value != NULL)
      rc = append_quoted(b, value);
  }
  return rc;
}

static int append_stdin(pk__buf *b, const pk_cmd *cmd, bool *first) {
  size_t len = 0;
  switch (pk_cmd_stdin_mode(cmd)) {
  case PK_STDIN_BYTES: {
    pk_cmd_stdin_data(cmd, &len);
    char *t = pk__sprintf("stdin %zu byte%s", len, len == 1 ? "" : "s");
    int rc = t == NULL ? PK_ENOMEM : open_part(b, first, t);
    pk__free(t);
    return rc;
  }
  case PK_STDIN_FILE: {
    int rc = open_part(b, first, "stdin file ");
    return rc ? rc : append_quoted(b, pk_cmd_stdin_path(cmd));
  }
  case PK_STDIN_INHERIT:
    return open_part(b, first, "stdin inherited");
  default:
    return 0;
  }
}

static int append_cmd(pk__buf *b, const pk_cmd *cmd) {
  bool first = true;
  int rc = append_argv(b, cmd);
  if (rc == 0 && pk_cmd_cwd(cmd) != NULL) {
    rc = open_part(b, &first, "cwd ");
    rc = rc ? rc : append_quoted(b, pk_cmd_cwd(cmd));
  }
  rc = rc ? rc : append_env(b, cmd, &first);
  rc = rc ? rc : append_stdin(b, cmd, &first);
  if (rc == 0 && !first)
    rc = append_str(b, ")");
  return rc;
}

/* The buffer's text, or NULL (and the buffer released) on failure. */
static char *finish(pk__buf *b, int rc) {
  if (rc == 0)
    rc = pk__buf_append(b, "", 0); /* an empty buffer still gets storage */
  if (rc != 0) {
    pk__buf_release(b);
    return NULL;
  }
  return b->data;
}

char *pk_format_cmd(const pk_cmd *cmd) {
  if (cmd == NULL)
    return NULL;
  pk__buf b = {0};
  return finish(&b, append_cmd(&b, cmd));
}

/* --------------------------------------------------------------- runner */

/* Append a deep copy of cmd to the calls. */
static int record(recorder *r, const pk_cmd *cmd) {
  pk_call *c = pk__calloc(1, sizeof(*c));
  if (c == NULL || pk_cmd_clone(cmd, &c->cmd) != 0) {
    pk__free(c);
    return PK_ENOMEM;
  }
  pthread_mutex_lock(&r->mu);
  pk_call **v = r->calls;
  if (r->n == r->cap) {
    size_t cap = r->cap ? 2 * r->cap : 16;
    v = pk__realloc(r->calls, cap * sizeof(*v));
    if (v != NULL) {
      r->calls = v;
      r->cap = cap;
    }
  }
  if (v != NULL) {
    c->index = r->n;
    r->calls[r->n++] = c;
  }
  pthread_mutex_unlock(&r->mu);
  if (v == NULL) {
    pk_cmd_free(c->cmd);
    pk__free(c);
    return PK_ENOMEM;
  }
  return 0;
}

static int recorder_start(pk_runner *self, const pk_cmd *cmd, uv_loop_t *loop,
                          pk_events *ev, pk_exec **out, pk_exit_info *fail) {
  recorder *r = as_recorder(self);
  int rc = record(r, cmd);
  if (rc != 0) {
    fail->stage = "record";
    fail->errmsg = "recording runner: out of memory copying the command";
    return rc;
  }
  rc = r->inner->vt->start(r->inner, cmd, loop, ev, out, fail);
  /* The inner runner's execs go back to it (see recorder_signal). */
  if (rc == 0 && (*out)->runner == NULL)
    (*out)->runner = r->inner;
  return rc;
}

/* The core calls the recorder's table with the inner runner's exec: hand
 * it back to the runner that made it. */
static int recorder_signal(pk_exec *e, int sig) {
  return e->runner->vt->signal(e, sig);
}

static void recorder_release(pk_exec *e) { e->runner->vt->release(e); }

static double recorder_scale(const pk_runner *self) {
  const pk_runner *in = as_recorder(self)->inner;
  return in->vt->time_scale != NULL ? in->vt->time_scale(in) : 1.0;
}

static void call_free(pk_call *c) {
  pk_cmd_free(c->cmd);
  pk__free(c);
}

static void recorder_destroy(pk_runner *self) {
  recorder *r = as_recorder(self);
  for (size_t i = 0; i < r->n; i++)
    call_free(r->calls[i]);
  pk__free(r->calls);
  pthread_mutex_destroy(&r->mu);
  pk__free(r);
}

static const pk_runner_vtable recorder_vtable = {
    .name = "recording",
    .start = recorder_start,
    .signal = recorder_signal,
    .release = recorder_release,
    .destroy = recorder_destroy,
    .time_scale = recorder_scale,
};

int pk_recording_new(pk_runner *inner, pk_runner **out) {
  if (out != NULL)
    *out = NULL;
  if (inner == NULL || out == NULL)
    return PK_EINVAL;
  recorder *r = pk__calloc(1, sizeof(*r));
  if (r == NULL)
    return PK_ENOMEM;
  r->base.vt = &recorder_vtable;
  r->inner = inner;
  pthread_mutex_init(&r->mu, NULL);
  *out = &r->base;
  return 0;
}

/* -------------------------------------------------------------- queries */

size_t pk_recording_count(const pk_runner *rec) {
  recorder *r = as_recorder(rec);
  if (r == NULL)
    return 0;
  pthread_mutex_lock(&r->mu);
  size_t n = r->n;
  pthread_mutex_unlock(&r->mu);
  return n;
}

const pk_call *pk_recording_call(const pk_runner *rec, size_t i) {
  recorder *r = as_recorder(rec);
  if (r == NULL)
    return NULL;
  pthread_mutex_lock(&r->mu);
  const pk_call *c = i < r->n ? r->calls[i] : NULL;
  pthread_mutex_unlock(&r->mu);
  return c;
}

/* "  #i line\n" for every call. Called with the lock held. */
static char *format_locked(const recorder *r) {
  pk__buf b = {0};
  int rc = r->n == 0 ? append_str(&b, "  (no calls)\n") : 0;
  for (size_t i = 0; rc == 0 && i < r->n; i++) {
    char *head = pk__sprintf("  #%zu ", i);
    rc = head == NULL ? PK_ENOMEM : append_str(&b, head);
    pk__free(head);
    rc = rc ? rc : append_cmd(&b, r->calls[i]->cmd);
    rc = rc ? rc : append_str(&b, "\n");
  }
  return finish(&b, rc);
}

char *pk_recording_format(const pk_runner *rec) {
  recorder *r = as_recorder(rec);
  if (r == NULL)
    return NULL;
  pthread_mutex_lock(&r->mu);
  char *s = format_locked(r);
  pthread_mutex_unlock(&r->mu);
  return s;
}

static char *only_call_message(const recorder *r) {
  char *list = format_locked(r);
  char *msg = list == NULL ? NULL
                           : pk__sprintf("expected exactly one call, "
                                         "recorded %zu:\n%s",
                                         r->n, list);
  pk__free(list);
  return msg;
}

int pk_recording_only_call(const pk_runner *rec, const pk_call **out,
                           char **why) {
  recorder *r = as_recorder(rec);
  if (why != NULL)
    *why = NULL;
  if (r == NULL || out == NULL)
    return PK_EINVAL;
  pthread_mutex_lock(&r->mu);
  *out = r->n == 1 ? r->calls[0] : NULL;
  if (*out == NULL && why != NULL)
    *why = only_call_message(r);
  pthread_mutex_unlock(&r->mu);
  if (*out != NULL)
    return 0;
  return why != NULL && *why == NULL ? PK_ENOMEM : PK_ESRCH;
}

void pk_recording_clear(pk_runner *rec) {
  recorder *r = as_recorder(rec);
  if (r == NULL)
    return;
  pthread_mutex_lock(&r->mu);
  pk_call **calls = r->calls;
  size_t n = r->n;
  r->calls = NULL;
  r->n = r->cap = 0;
  pthread_mutex_unlock(&r->mu);
  for (size_t i = 0; i < n; i++)
    call_free(calls[i]);
  pk__free(calls);
}

/* ------------------------------------------------------------ one call */

const pk_cmd *pk_call_cmd(const pk_call *c) { return c ? c->cmd : NULL; }

size_t pk_call_index(const pk_call *c) { return c ? c->index : 0; }

const char *pk_call_program(const pk_call *c) {
  return c ? pk_cmd_program(c->cmd) : NULL;
}

size_t pk_call_argc(const pk_call *c) { return c ? pk_cmd_argc(c->cmd) : 0; }

const char *pk_call_argv(const pk_call *c, size_t i) {
  return c && i < pk_cmd_argc(c->cmd) ? pk_cmd_argv(c->cmd, i) : NULL;
}

const char *pk_call_cwd(const pk_call *c) {
  return c ? pk_cmd_cwd(c->cmd) : NULL;
}

bool pk_call_has_flag(const pk_call *c, const char *flag) {
  if (c == NULL || flag == NULL || flag[0] == '\0')
    return false;
  size_t len = strlen(flag);
  bool dash = flag[0] == '-' && strcmp(flag, "--") != 0;
  for (size_t i = 0; i < pk_cmd_argc(c->cmd); i++) {
    const char *a = pk_cmd_argv(c->cmd, i);
    if (strcmp(a, flag) == 0)
      return true;
    if (strcmp(a, "--") == 0)
      return false; /* operands follow */
    if (dash && strncmp(a, flag, len) == 0 && a[len] == '=')
      return true;
  }
  return false;
}

pk_env_state pk_call_env(const pk_call *c, const char *name,
                         const char **value) {
  if (value != NULL)
    *value = NULL;
  if (c == NULL || name == NULL)
    return PK_ENV_UNTOUCHED;
  return pk_cmd_env_state(c->cmd, name, value);
}

const char *pk_call_env_value(const pk_call *c, const char *name) {
  const char *v = NULL;
  return pk_call_env(c, name, &v) == PK_ENV_SET ? v : NULL;
}

bool pk_call_env_removed(const pk_call *c, const char *name) {
  return pk_call_env(c, name, NULL) == PK_ENV_REMOVED;
}

size_t pk_call_env_count(const pk_call *c) {
  return c ? pk_cmd_env_count(c->cmd) : 0;
}

const char *pk_call_env_name(const pk_call *c, size_t i, const char **value) {
  if (value != NULL)
    *value = NULL;
  if (c == NULL || i >= pk_cmd_env_count(c->cmd))
    return NULL;
  return pk_cmd_env_name(c->cmd, i, value);
}

bool pk_call_env_cleared(const pk_call *c) {
  return c != NULL && pk_cmd_env_cleared(c->cmd);
}

size_t pk_call_inherit_count(const pk_call *c) {
  return c ? pk_cmd_inherit_count(c->cmd) : 0;
}

const char *pk_call_inherit_name(const pk_call *c, size_t i) {
  return c && i < pk_cmd_inherit_count(c->cmd) ? pk_cmd_inherit_name(c->cmd, i)
                                               : NULL;
}

pk_stdin_mode pk_call_stdin_mode(const pk_call *c) {
  return c ? pk_cmd_stdin_mode(c->cmd) : PK_STDIN_CLOSED;
}

const void *pk_call_stdin(const pk_call *c, size_t *len) {
  size_t n = 0;
  const void *d = NULL;
  if (pk_call_stdin_mode(c) == PK_STDIN_BYTES)
    d = pk_cmd_stdin_data(c->cmd, &n);
  if (len != NULL)
    *len = n;
  return d;
}

const char *pk_call_stdin_path(const pk_call *c) {
  return pk_call_stdin_mode(c) == PK_STDIN_FILE ? pk_cmd_stdin_path(c->cmd)
                                                : NULL;
}

char *pk_call_format(const pk_call *c) {
  return c ? pk_format_cmd(c->cmd) : NULL;
}

/* ------------------------------------------------------------ argv diff */

/* Element i of the call: the program, then its args; NULL past the end. */
static const char *elem(const pk_call *c, size_t i) {
  return i == 0 ? pk_call_program(c) : pk_call_argv(c, i - 1);
}

static bool same(const char *a, const char *b) {
  return a != NULL && b != NULL && strcmp(a, b) == 0;
}

bool pk_call_argv_equal(const pk_call *c, const char *const *want, size_t n) {
  if (c == NULL || (want == NULL && n > 0) || n != pk_call_argc(c) + 1)
    return false;
  for (size_t i = 0; i < n; i++)
    if (!same(elem(c, i), want[i]))
      return false;
  return true;
}

static int append_elem(pk__buf *b, const char *w) {
  return w == NULL ? append_str(b, "(nothing)") : append_quoted(b, w);
}

/* One line of the diff: "  > [2] expected x, got y\n" or "    [0] git\n".*/
static int diff_line(pk__buf *b, size_t i, const char *want, const char *have,
                     bool *first_diff) {
  bool eq = same(want, have);
  const char *mark = eq ? "   " : *first_diff ? "  >" : "  !";
  if (!eq)
    *first_diff = false;
  char *head = pk__sprintf("%s [%zu] ", mark, i);
  int rc = head == NULL ? PK_ENOMEM : append_str(b, head);
  pk__free(head);
  if (eq)
    return rc ? rc : append_elem(b, have);
  rc = rc ? rc : append_str(b, "expected ");
  rc = rc ? rc : append_elem(b, want);
  rc = rc ? rc : append_str(b, ", got ");
  return rc ? rc : append_elem(b, have);
}

static size_t first_difference(const pk_call *c, const char *const *want,
                               size_t n, size_t have) {
  size_t i = 0;
  while (i < n && i < have && same(want[i], elem(c, i)))
    i++;
  return i;
}

char *pk_call_argv_diff(const pk_call *c, const char *const *want, size_t n) {
  if (c == NULL || (want == NULL && n > 0))
    return NULL;
  size_t have = pk_call_argc(c) + 1, rows = n > have ? n : have;
  pk__buf b = {0};
  char *head =
      pk_call_argv_equal(c, want, n)
          ? pk__sprintf("argv is as expected (%zu elements)\n", n)
          : pk__sprintf("argv differs at [%zu] (expected %zu elements, got "
                        "%zu):\n",
                        first_difference(c, want, n, have), n, have);
  int rc = head == NULL ? PK_ENOMEM : append_str(&b, head);
  pk__free(head);
  bool first_diff = true;
  for (size_t i = 0; rc == 0 && i < rows; i++) {
    rc = diff_line(&b, i, i < n ? want[i] : NULL, elem(c, i), &first_diff);
    rc = rc ? rc : append_str(&b, "\n");
  }
  rc = rc ? rc : append_str(&b, "  call: ");
  rc = rc ? rc : append_cmd(&b, c->cmd);
  return finish(&b, rc);
}
