/* pk_cmd: a deep-copied description of one command. */
#include "internal.h"

#include <stdarg.h>

#include <stdlib.h>
#include <string.h>

extern char **environ;

/* Record why a setter refused (a static string) and return PK_EINVAL. */
static int invalid(pk_cmd *c, const char *why) {
  if (c != NULL)
    c->errmsg = why;
  return PK_EINVAL;
}

const char *pk_cmd_errmsg(const pk_cmd *c) {
  return c != NULL && c->errmsg != NULL ? c->errmsg : "";
}

int pk_cmd_new(const char *program, pk_cmd **out) {
  if (out == NULL)
    return PK_EINVAL;
  *out = NULL;
  if (program == NULL || program[0] == '\0')
    return PK_EINVAL;
  pk_cmd *c = pk__calloc(1, sizeof(*c));
  if (c == NULL)
    return PK_ENOMEM;
  c->program = pk__strdup(program);
  if (c->program == NULL) {
    pk__free(c);
    return PK_ENOMEM;
  }
  c->grace_ms = -1;
  c->drain_ms = 200;
  c->max_line = PK_DEFAULT_MAX_LINE;
  c->soft_signal = PK_SIGTERM;
  *out = c;
  return 0;
}

int pk_cmd_new_argv(const char *const *argv, size_t argc, pk_cmd **out) {
  if (out != NULL)
    *out = NULL;
  if (argv == NULL || argc == 0 || out == NULL)
    return PK_EINVAL;
  pk_cmd *c;
  int rc = pk_cmd_new(argv[0], &c);
  if (rc == 0 && (rc = pk_cmd_args(c, argv + 1, argc - 1)) != 0)
    pk_cmd_free(c);
  if (rc == 0)
    *out = c;
  return rc;
}

int pk_cmd_new_list(pk_cmd **out, const char *program, ...) {
  if (out != NULL)
    *out = NULL;
  if (out == NULL)
    return PK_EINVAL;
  pk_cmd *c;
  int rc = pk_cmd_new(program, &c);
  if (rc != 0)
    return rc;
  va_list ap;
  va_start(ap, program);
  for (const char *a; rc == 0 && (a = va_arg(ap, const char *)) != NULL;)
    rc = pk_cmd_arg(c, a);
  va_end(ap);
  if (rc != 0)
    pk_cmd_free(c);
  else
    *out = c;
  return rc;
}

void pk__strv_free(char **v) {
  if (v == NULL)
    return;
  for (char **p = v; *p != NULL; p++)
    pk__free(*p);
  pk__free(v);
}

static void strv_free_n(char **v, size_t n) {
  for (size_t i = 0; i < n; i++)
    pk__free(v[i]);
  pk__free(v);
}

void pk_cmd_free(pk_cmd *c) {
  if (c == NULL)
    return;
  pk__free(c->program);
  strv_free_n(c->args, c->nargs);
  for (size_t i = 0; i < c->nenv_ops; i++) {
    pk__free(c->env_ops[i].name);
    pk__free(c->env_ops[i].value);
  }
  pk__free(c->env_ops);
  strv_free_n(c->inherit, c->ninherit);
  pk__free(c->cwd);
  pk__free(c->stdin_data);
  pk__free(c->stdin_path);
  for (int i = 0; i < 3; i++)
    pk__free(c->out_path[i]);
  pk__free(c->accepted);
  pk__free(c->groups);
  pk__free(c);
}

/* Copy n strings; NULL on ENOMEM (nothing leaked). */
static char **strv_dup(char *const *v, size_t n) {
  char **d = pk__calloc(n + 1, sizeof(char *));
  if (d == NULL)
    return NULL;
  for (size_t i = 0; i < n; i++) {
    if ((d[i] = pk__strdup(v[i])) == NULL) {
      strv_free_n(d, i);
      return NULL;
    }
  }
  return d;
}

static char *dup_or_null(const char *s, bool *fail) {
  if (s == NULL)
    return NULL;
  char *d = pk__strdup(s);
  if (d == NULL)
    *fail = true;
  return d;
}

int pk_cmd_clone(const pk_cmd *src, pk_cmd **out) {
  if (src == NULL || out == NULL)
    return PK_EINVAL;
  pk_cmd *c = pk__calloc(1, sizeof(*c));
  if (c == NULL)
    return PK_ENOMEM;
  *c = *src;
  bool fail = false;
  c->program = dup_or_null(src->program, &fail);
  c->args = strv_dup(src->args, src->nargs);
  c->cap_args = src->nargs;
  c->inherit = strv_dup(src->inherit, src->ninherit);
  c->env_ops = pk__calloc(src->nenv_ops + 1, sizeof(pk__env_op));
  c->nenv_ops = 0;
  if (c->env_ops != NULL) {
    for (size_t i = 0; i < src->nenv_ops; i++, c->nenv_ops++) {
      c->env_ops[i].name = dup_or_null(src->env_ops[i].name, &fail);
      c->env_ops[i].value = dup_or_null(src->env_ops[i].value, &fail);
    }
  }
  c->cwd = dup_or_null(src->cwd, &fail);
  c->stdin_data = src->stdin_data == NULL
                      ? NULL
                      : pk__memdup(src->stdin_data, src->stdin_len);
  fail |= src->stdin_data != NULL && c->stdin_data == NULL;
  c->stdin_path = dup_or_null(src->stdin_path, &fail);
  for (int i = 0; i < 3; i++)
    c->out_path[i] = dup_or_null(src->out_path[i], &fail);
  c->accepted = src->accepted == NULL
                    ? NULL
                    : pk__memdup(src->accepted, src->naccepted * sizeof(int));
  fail |= src->accepted != NULL && c->accepted == NULL;
  c->groups = src->groups == NULL
                  ? NULL
                  : pk__memdup(src->groups, src->ngroups * sizeof(pk_gid_t));
  fail |= src->groups != NULL && c->groups == NULL;
  if (fail || c->args == NULL || c->inherit == NULL || c->env_ops == NULL) {
    if (c->args == NULL)
      c->nargs = 0;
    if (c->inherit == NULL)
      c->ninherit = 0;
    pk_cmd_free(c);
    return PK_ENOMEM;
  }
  *out = c;
  return 0;
}

int pk_cmd_arg(pk_cmd *c, const char *arg) {
  if (c == NULL || arg == NULL)
    return invalid(c, "pk_cmd_arg: the argument is NULL");
  if (c->nargs == c->cap_args) {
    size_t cap = c->cap_args ? c->cap_args * 2 : 8;
    char **a = pk__realloc(c->args, cap * sizeof(char *));
    if (a == NULL)
      return PK_ENOMEM;
    c->args = a;
    c->cap_args = cap;
  }
  char *d = pk__strdup(arg);
  if (d == NULL)
    return PK_ENOMEM;
  c->args[c->nargs++] = d;
  return 0;
}

int pk_cmd_args(pk_cmd *c, const char *const *args, size_t n) {
  if (c == NULL || (args == NULL && n > 0))
    return invalid(c, "pk_cmd_args: args is NULL");
  for (size_t i = 0; i < n; i++)
    if (args[i] == NULL)
      return invalid(c, "pk_cmd_args: an argument is NULL");
  size_t before = c->nargs;
  for (size_t i = 0; i < n; i++) {
    int rc = pk_cmd_arg(c, args[i]);
    if (rc != 0) {
      while (c->nargs > before)
        pk__free(c->args[--c->nargs]);
      return rc;
    }
  }
  return 0;
}

static bool env_name_ok(const char *name) {
  return name != NULL && name[0] != '\0' && strchr(name, '=') == NULL;
}

static int env_push(pk_cmd *c, const char *name, const char *value,
                    const char *why) {
  if (c == NULL || !env_name_ok(name))
    return invalid(c, why);
  pk__env_op *ops =
      pk__realloc(c->env_ops, (c->nenv_ops + 1) * sizeof(pk__env_op));
  if (ops == NULL)
    return PK_ENOMEM;
  c->env_ops = ops;
  char *n = pk__strdup(name);
  char *v = value == NULL ? NULL : pk__strdup(value);
  if (n == NULL || (value != NULL && v == NULL)) {
    pk__free(n);
    pk__free(v);
    return PK_ENOMEM;
  }
  ops[c->nenv_ops].name = n;
  ops[c->nenv_ops].value = v;
  c->nenv_ops++;
  return 0;
}

int pk_cmd_env_set(pk_cmd *c, const char *name, const char *value) {
  if (value == NULL)
    return invalid(c, "pk_cmd_env_set: value is NULL (use pk_cmd_env_remove)");
  return env_push(c, name, value,
                  "pk_cmd_env_set: name must be non-empty and contain no '='");
}

int pk_cmd_env_remove(pk_cmd *c, const char *name) {
  return env_push(
      c, name, NULL,
      "pk_cmd_env_remove: name must be non-empty and contain no '='");
}

int pk_cmd_env_clear(pk_cmd *c) {
  if (c == NULL)
    return PK_EINVAL;
  c->env_clear = true;
  return 0;
}

int pk_cmd_inherit_env(pk_cmd *c, const char *name) {
  if (c == NULL || !env_name_ok(name))
    return invalid(
        c, "pk_cmd_inherit_env: name must be non-empty and contain no '='");
  char **v = pk__realloc(c->inherit, (c->ninherit + 2) * sizeof(char *));
  if (v == NULL)
    return PK_ENOMEM;
  c->inherit = v;
  if ((v[c->ninherit] = pk__strdup(name)) == NULL)
    return PK_ENOMEM;
  v[++c->ninherit] = NULL;
  return 0;
}

/* Replace *slot with a copy of s (NULL clears). */
static int set_str(char **slot, const char *s) {
  char *d = NULL;
  if (s != NULL && (d = pk__strdup(s)) == NULL)
    return PK_ENOMEM;
  pk__free(*slot);
  *slot = d;
  return 0;
}

int pk_cmd_set_cwd(pk_cmd *c, const char *dir) {
  if (c == NULL || dir == NULL || dir[0] == '\0')
    return invalid(c, "pk_cmd_set_cwd: directory is NULL or empty");
  return set_str(&c->cwd, dir);
}

int pk_cmd_set_stdin_bytes(pk_cmd *c, const void *data, size_t len) {
  if (c == NULL || (data == NULL && len > 0))
    return invalid(
        c, "pk_cmd_set_stdin_bytes: data is NULL with a non-zero length");
  char *d = pk__memdup(data == NULL ? "" : data, len);
  if (d == NULL)
    return PK_ENOMEM;
  pk__free(c->stdin_data);
  c->stdin_data = d;
  c->stdin_len = len;
  c->stdin_mode = PK_STDIN_BYTES;
  return 0;
}

int pk_cmd_set_stdin_file(pk_cmd *c, const char *path) {
  if (c == NULL || path == NULL || path[0] == '\0')
    return invalid(c, "pk_cmd_set_stdin_file: path is NULL or empty");
  int rc = set_str(&c->stdin_path, path);
  if (rc == 0)
    c->stdin_mode = PK_STDIN_FILE;
  return rc;
}

int pk_cmd_set_stdin(pk_cmd *c, pk_stdin_mode mode) {
  if (c == NULL || (mode != PK_STDIN_CLOSED && mode != PK_STDIN_INHERIT))
    return invalid(c,
                   "pk_cmd_set_stdin: only PK_STDIN_CLOSED or PK_STDIN_INHERIT "
                   "(bytes and files have their own setters)");
  c->stdin_mode = mode;
  return 0;
}

int pk_cmd_set_output(pk_cmd *c, pk_stream s, pk_out_mode mode,
                      const char *path) {
  if (c == NULL || (s != PK_STDOUT && s != PK_STDERR) ||
      (unsigned)mode > PK_OUT_FILE)
    return invalid(c, "pk_cmd_set_output: stream must be PK_STDOUT or "
                      "PK_STDERR and mode a pk_out_mode");
  if ((mode == PK_OUT_FILE) != (path != NULL && path[0] != '\0'))
    return invalid(
        c,
        "pk_cmd_set_output: PK_OUT_FILE needs a path, other modes take none");
  int rc = set_str(&c->out_path[s], path);
  if (rc == 0)
    c->out_mode[s] = mode;
  return rc;
}

int pk_cmd_set_capture_limit(pk_cmd *c, pk_limit_policy policy, size_t bytes) {
  if (c == NULL || (unsigned)policy > PK_LIMIT_FAIL ||
      (policy == PK_LIMIT_NONE) != (bytes == 0))
    return invalid(c, "pk_cmd_set_capture_limit: PK_LIMIT_NONE takes 0 bytes, "
                      "the other policies more than 0");
  c->limit_policy = policy;
  c->limit_bytes = bytes;
  return 0;
}

int pk_cmd_set_timeout(pk_cmd *c, int64_t timeout_ms, int64_t grace_ms,
                       int soft_signal) {
  if (c == NULL || timeout_ms < 0 || soft_signal < 0 || soft_signal >= PK_NSIG)
    return invalid(c, "pk_cmd_set_timeout: timeout must be >= 0 and the soft "
                      "signal a valid signal number");
  c->timeout_ms = timeout_ms;
  c->timeout_set = true;
  c->grace_ms = grace_ms;
  c->soft_signal = soft_signal == 0 ? PK_SIGTERM : soft_signal;
  return 0;
}

int pk_cmd_set_drain(pk_cmd *c, int64_t drain_ms) {
  if (c == NULL || drain_ms < 0)
    return invalid(c, "pk_cmd_set_drain: drain must be >= 0");
  c->drain_ms = drain_ms;
  return 0;
}

int pk_cmd_set_max_line(pk_cmd *c, size_t bytes) {
  if (c == NULL || bytes == 0)
    return invalid(c, "pk_cmd_set_max_line: the maximum must be >= 1 byte");
  c->max_line = bytes;
  return 0;
}

size_t pk_cmd_max_line(const pk_cmd *c) { return c->max_line; }

int pk_cmd_set_accepted(pk_cmd *c, const int *codes, size_t n) {
  if (c == NULL || codes == NULL || n == 0)
    return invalid(c, "pk_cmd_set_accepted: needs at least one code");
  for (size_t i = 0; i < n; i++)
    if (codes[i] < 0 || codes[i] > 255)
      return invalid(c, "pk_cmd_set_accepted: exit codes are 0..255");
  int *d = pk__memdup(codes, n * sizeof(int));
  if (d == NULL)
    return PK_ENOMEM;
  pk__free(c->accepted);
  c->accepted = d;
  c->naccepted = n;
  return 0;
}

bool pk__cmd_accepts(const pk_cmd *c, int code) {
  if (c->accepted == NULL)
    return code == 0;
  for (size_t i = 0; i < c->naccepted; i++)
    if (c->accepted[i] == code)
      return true;
  return false;
}

int pk_cmd_set_user(pk_cmd *c, pk_uid_t uid, pk_gid_t gid,
                    const pk_gid_t *groups, size_t ngroups) {
  if (c == NULL || (groups == NULL && ngroups > 0) || ngroups > 65536 ||
      uid == (pk_uid_t)-1 || gid == (pk_gid_t)-1)
    return invalid(c, "pk_cmd_set_user: uid/gid must not be -1 and groups must "
                      "match ngroups (<= 65536)");
  pk_gid_t *g = NULL;
  if (ngroups > 0 &&
      (g = pk__memdup(groups, ngroups * sizeof(pk_gid_t))) == NULL)
    return PK_ENOMEM;
  pk__free(c->groups);
  c->groups = g;
  c->ngroups = ngroups;
  c->uid = uid;
  c->gid = gid;
  c->set_user = true;
  return 0;
}

int pk_cmd_set_setsid(pk_cmd *c, bool on) {
  if (c == NULL)
    return PK_EINVAL;
  if (on && c->foreground)
    return invalid(c, "pk_cmd_set_setsid: a foreground run keeps the "
                      "terminal (pk_cmd_set_foreground)");
  c->setsid = on;
  return 0;
}

int pk_cmd_set_foreground(pk_cmd *c, bool on) {
  if (c == NULL)
    return PK_EINVAL;
  if (on && c->setsid)
    return invalid(c, "pk_cmd_set_foreground: a new session (pk_cmd_set_"
                      "setsid) has no controlling terminal");
  c->foreground = on;
  return 0;
}

int pk_cmd_set_umask(pk_cmd *c, unsigned mode) {
  if (c == NULL || mode > 0777)
    return invalid(c, "pk_cmd_set_umask: umask must be within 0..0777");
  c->set_umask = true;
  c->umask = mode;
  return 0;
}

int pk_cmd_set_create_no_window(pk_cmd *c, bool on) {
  if (c == NULL)
    return PK_EINVAL;
  c->no_window = on;
  return 0;
}

bool pk_cmd_create_no_window(const pk_cmd *c) {
  return c != NULL && c->no_window;
}

int pk_cmd_set_kill_on_parent_death(pk_cmd *c, bool on) {
  if (c == NULL)
    return PK_EINVAL;
  c->pdeathsig = on;
  return 0;
}

int pk_cmd_set_mechanism(pk_cmd *c, pk_mechanism m) {
  if (c == NULL || (unsigned)m > PK_MECH_JOB_OBJECT)
    return invalid(c, "pk_cmd_set_mechanism: not a pk_mechanism");
  c->mechanism = m;
  return 0;
}

const char *pk_cmd_program(const pk_cmd *c) { return c->program; }
size_t pk_cmd_argc(const pk_cmd *c) { return c->nargs; }
const char *pk_cmd_argv(const pk_cmd *c, size_t i) {
  return i < c->nargs ? c->args[i] : NULL;
}
const char *pk_cmd_cwd(const pk_cmd *c) { return c->cwd; }
pk_stdin_mode pk_cmd_stdin_mode(const pk_cmd *c) { return c->stdin_mode; }
const void *pk_cmd_stdin_data(const pk_cmd *c, size_t *len) {
  if (len != NULL)
    *len = c->stdin_len;
  return c->stdin_data;
}
const char *pk_cmd_stdin_path(const pk_cmd *c) { return c->stdin_path; }
pk_out_mode pk_cmd_output_mode(const pk_cmd *c, pk_stream s,
                               const char **path) {
  if (path != NULL)
    *path = c->out_path[s];
  return c->out_mode[s];
}
int64_t pk_cmd_timeout_ms(const pk_cmd *c) { return c->timeout_ms; }
bool pk_cmd_timeout_set(const pk_cmd *c) { return c->timeout_set; }
const int *pk_cmd_accepted(const pk_cmd *c, size_t *n) {
  if (n != NULL)
    *n = c->naccepted;
  return c->accepted;
}

pk_env_state pk_cmd_env_state(const pk_cmd *c, const char *name,
                              const char **value) {
  pk_env_state st = PK_ENV_UNTOUCHED;
  const char *v = NULL;
  for (size_t i = 0; name != NULL && i < c->nenv_ops; i++) {
    if (strcmp(c->env_ops[i].name, name) == 0) {
      v = c->env_ops[i].value;
      st = v != NULL ? PK_ENV_SET : PK_ENV_REMOVED;
    }
  }
  if (value != NULL)
    *value = v;
  return st;
}

size_t pk_cmd_env_count(const pk_cmd *c) { return c->nenv_ops; }

const char *pk_cmd_env_name(const pk_cmd *c, size_t i, const char **value) {
  if (value != NULL)
    *value = i < c->nenv_ops ? c->env_ops[i].value : NULL;
  return i < c->nenv_ops ? c->env_ops[i].name : NULL;
}

bool pk_cmd_env_cleared(const pk_cmd *c) { return c->env_clear; }
size_t pk_cmd_inherit_count(const pk_cmd *c) { return c->ninherit; }
const char *pk_cmd_inherit_name(const pk_cmd *c, size_t i) {
  return i < c->ninherit ? c->inherit[i] : NULL;
}
int64_t pk_cmd_drain_ms(const pk_cmd *c) { return c->drain_ms; }
pk_mechanism pk_cmd_mechanism(const pk_cmd *c) { return c->mechanism; }
bool pk_cmd_foreground(const pk_cmd *c) { return c->foreground; }

/* ---- environment ---- */

static int ascii_lower(char c) {
  return c >= 'A' && c <= 'Z' ? c + ('a' - 'A') : (unsigned char)c;
}

/* entry is "NAME=...". fold: Windows' names are case-insensitive (ASCII),
 * as its environment block is. */
static bool name_matches(const char *entry, const char *name, bool fold) {
  size_t n = strlen(name);
  if (!fold)
    return strncmp(entry, name, n) == 0 && entry[n] == '=';
  for (size_t i = 0; i < n; i++)
    if (entry[i] == '\0' || ascii_lower(entry[i]) != ascii_lower(name[i]))
      return false;
  return entry[n] == '=';
}

/* name equals want, ignoring ASCII case. */
static bool name_matches_plain(const char *name, const char *want) {
  size_t i = 0;
  for (; name[i] != '\0' && want[i] != '\0'; i++)
    if (ascii_lower(name[i]) != ascii_lower(want[i]))
      return false;
  return name[i] == want[i];
}

static bool inherited(const pk_cmd *c, const char *entry, bool fold) {
  if (c->env_clear)
    return false;
  if (c->ninherit == 0)
    return true;
  for (size_t i = 0; i < c->ninherit; i++)
    if (name_matches(entry, c->inherit[i], fold))
      return true;
  return false;
}

/* Index of NAME in v[0..n), or n. */
static size_t env_find(char **v, size_t n, const char *name, bool fold) {
  for (size_t i = 0; i < n; i++)
    if (name_matches(v[i], name, fold))
      return i;
  return n;
}

int pk__cmd_build_env_from(const pk_cmd *c, char *const *base, bool fold,
                           char ***out) {
  size_t nenv = 0;
  for (char *const *e = base; e != NULL && *e != NULL; e++)
    nenv++;
  char **v = pk__calloc(nenv + c->nenv_ops + 1, sizeof(char *));
  if (v == NULL)
    return PK_ENOMEM;
  size_t n = 0;
  for (size_t i = 0; i < nenv; i++) {
    /* (Windows' per-drive entries, "=C:=C:\dir", start with '=') */
    const char *name_end = base[i] + (fold && base[i][0] == '=' ? 1 : 0);
    if (!inherited(c, base[i], fold) || strchr(name_end, '=') == NULL)
      continue;
    if ((v[n++] = pk__strdup(base[i])) == NULL)
      goto nomem;
  }
  for (size_t i = 0; i < c->nenv_ops; i++) {
    const pk__env_op *op = &c->env_ops[i];
    size_t at;
    while ((at = env_find(v, n, op->name, fold)) < n) {
      pk__free(v[at]);
      v[at] = v[--n];
      v[n] = NULL;
    }
    if (op->value != NULL &&
        (v[n++] = pk__sprintf("%s=%s", op->name, op->value)) == NULL)
      goto nomem;
  }
  *out = v;
  return 0;
nomem:
  pk__strv_free(v);
  return PK_ENOMEM;
}

int pk__cmd_build_env(const pk_cmd *c, char ***out) {
  return pk__cmd_build_env_from(c, environ, false, out);
}

const char *pk__cmd_path_env(const pk_cmd *c) {
  return pk__cmd_path_env_fold(c, false);
}

const char *pk__cmd_path_env_fold(const pk_cmd *c, bool fold) {
  const char *path = NULL;
  bool from_ops = false;
  for (size_t i = 0; i < c->nenv_ops; i++) {
    const char *name = c->env_ops[i].name;
    if (fold ? name_matches_plain(name, "PATH") : strcmp(name, "PATH") == 0) {
      path = c->env_ops[i].value;
      from_ops = true;
    }
  }
  if (from_ops)
    return path;
  return getenv("PATH");
}
