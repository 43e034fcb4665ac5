/* pk_client: a program, a borrowed runner and defaults that fill what a
 * command did not set itself. */
#include "internal.h"

#include "pk/client.h"

#include <string.h>

struct pk_client {
  char *program;
  pk_runner *runner; /* borrowed */
  pk__env_op *env;   /* one entry per name; value NULL: removal */
  size_t nenv;
  int64_t timeout_ms; /* 0: no default */
  int64_t grace_ms;
  int soft_signal;
  char *cwd;     /* NULL: no default */
  int *accepted; /* NULL: no default */
  size_t naccepted;
  const char *errmsg; /* why the last setter said PK_EINVAL */
};

static int invalid(pk_client *c, const char *why) {
  if (c != NULL)
    c->errmsg = why;
  return PK_EINVAL;
}

const char *pk_client_errmsg(const pk_client *c) {
  return c != NULL && c->errmsg != NULL ? c->errmsg : "";
}

int pk_client_new(const char *program, pk_runner *runner, pk_client **out) {
  if (out == NULL)
    return PK_EINVAL;
  *out = NULL;
  if (program == NULL || program[0] == '\0' || runner == NULL)
    return PK_EINVAL;
  pk_client *c = pk__calloc(1, sizeof(*c));
  if (c == NULL)
    return PK_ENOMEM;
  if ((c->program = pk__strdup(program)) == NULL) {
    pk__free(c);
    return PK_ENOMEM;
  }
  c->runner = runner;
  c->grace_ms = -1;
  *out = c;
  return 0;
}

void pk_client_free(pk_client *c) {
  if (c == NULL)
    return;
  for (size_t i = 0; i < c->nenv; i++) {
    pk__free(c->env[i].name);
    pk__free(c->env[i].value);
  }
  pk__free(c->env);
  pk__free(c->program);
  pk__free(c->cwd);
  pk__free(c->accepted);
  pk__free(c);
}

const char *pk_client_program(const pk_client *c) {
  return c != NULL ? c->program : NULL;
}

pk_runner *pk_client_runner(const pk_client *c) {
  return c != NULL ? c->runner : NULL;
}

/* ------------------------------------------------------------- defaults */

static pk__env_op *env_find(const pk_client *c, const char *name) {
  for (size_t i = 0; i < c->nenv; i++)
    if (strcmp(c->env[i].name, name) == 0)
      return &c->env[i];
  return NULL;
}

/* Record the default for name (value NULL: removal). All allocation
 * happens before anything changes, so ENOMEM leaves the defaults as they
 * were. */
static int env_put(pk_client *c, const char *name, const char *value) {
  char *v = NULL;
  if (value != NULL && (v = pk__strdup(value)) == NULL)
    return PK_ENOMEM;
  pk__env_op *slot = env_find(c, name);
  if (slot == NULL) {
    char *n = pk__strdup(name);
    pk__env_op *env =
        n == NULL ? NULL : pk__realloc(c->env, (c->nenv + 1) * sizeof(*env));
    if (env == NULL) {
      pk__free(n);
      pk__free(v);
      return PK_ENOMEM;
    }
    c->env = env;
    slot = &env[c->nenv++];
    slot->name = n;
    slot->value = NULL;
  }
  pk__free(slot->value);
  slot->value = v;
  return 0;
}

static bool env_name_ok(const char *name) {
  return name != NULL && name[0] != '\0' && strchr(name, '=') == NULL;
}

int pk_client_env_set(pk_client *c, const char *name, const char *value) {
  if (c == NULL || !env_name_ok(name) || value == NULL)
    return invalid(c, "pk_client_env_set: name must be non-empty and contain "
                      "no '=', value must not be NULL");
  return env_put(c, name, value);
}

int pk_client_env_remove(pk_client *c, const char *name) {
  if (c == NULL || !env_name_ok(name))
    return invalid(
        c, "pk_client_env_remove: name must be non-empty and contain no '='");
  return env_put(c, name, NULL);
}

int pk_client_set_timeout(pk_client *c, int64_t timeout_ms, int64_t grace_ms,
                          int soft_signal) {
  if (c == NULL || timeout_ms < 0 || soft_signal < 0 || soft_signal >= PK_NSIG)
    return invalid(c, "pk_client_set_timeout: timeout must be >= 0 and the "
                      "soft signal a valid signal number");
  c->timeout_ms = timeout_ms;
  c->grace_ms = grace_ms;
  c->soft_signal = soft_signal;
  return 0;
}

int pk_client_set_cwd(pk_client *c, const char *dir) {
  if (c == NULL || (dir != NULL && dir[0] == '\0'))
    return invalid(c, "pk_client_set_cwd: directory is empty");
  char *d = NULL;
  if (dir != NULL && (d = pk__strdup(dir)) == NULL)
    return PK_ENOMEM;
  pk__free(c->cwd);
  c->cwd = d;
  return 0;
}

int pk_client_set_accepted(pk_client *c, const int *codes, size_t n) {
  if (c == NULL || (codes == NULL) != (n == 0))
    return invalid(c, "pk_client_set_accepted: give codes and their count, "
                      "or NULL and 0 to remove the default");
  for (size_t i = 0; i < n; i++)
    if (codes[i] < 0 || codes[i] > 255)
      return invalid(c, "pk_client_set_accepted: exit codes are 0..255");
  int *d = NULL;
  if (n > 0 && (d = pk__memdup(codes, n * sizeof(int))) == NULL)
    return PK_ENOMEM;
  pk__free(c->accepted);
  c->accepted = d;
  c->naccepted = n;
  return 0;
}

/* ------------------------------------------------------------- commands */

int pk_client_cmd(const pk_client *c, pk_cmd **out) {
  if (out != NULL)
    *out = NULL;
  if (c == NULL || out == NULL)
    return PK_EINVAL;
  return pk_cmd_new(c->program, out);
}

int pk_client_cmd_args(const pk_client *c, const char *const *args, size_t n,
                       pk_cmd **out) {
  if (out != NULL)
    *out = NULL;
  pk_cmd *cmd = NULL;
  int rc = pk_client_cmd(c, out == NULL ? NULL : &cmd);
  if (rc != 0)
    return rc;
  if ((rc = pk_cmd_args(cmd, args, n)) != 0) {
    pk_cmd_free(cmd);
    return rc;
  }
  *out = cmd;
  return 0;
}

/* Environment defaults for the names cmd leaves untouched. */
static int apply_env(const pk_client *c, pk_cmd *cmd) {
  for (size_t i = 0; i < c->nenv; i++) {
    const pk__env_op *d = &c->env[i];
    if (pk_cmd_env_state(cmd, d->name, NULL) != PK_ENV_UNTOUCHED)
      continue;
    int rc = d->value != NULL ? pk_cmd_env_set(cmd, d->name, d->value)
                              : pk_cmd_env_remove(cmd, d->name);
    if (rc != 0)
      return rc;
  }
  return 0;
}

/* The other defaults, each only where cmd has nothing of its own (a
 * command that set "no timeout" explicitly keeps it). */
static int apply_rest(const pk_client *c, pk_cmd *cmd) {
  int rc = 0;
  if (c->timeout_ms > 0 && !pk_cmd_timeout_set(cmd))
    rc = pk_cmd_set_timeout(cmd, c->timeout_ms, c->grace_ms, c->soft_signal);
  if (rc == 0 && c->cwd != NULL && pk_cmd_cwd(cmd) == NULL)
    rc = pk_cmd_set_cwd(cmd, c->cwd);
  if (rc == 0 && c->accepted != NULL && pk_cmd_accepted(cmd, NULL) == NULL)
    rc = pk_cmd_set_accepted(cmd, c->accepted, c->naccepted);
  return rc;
}

int pk_client_apply(const pk_client *c, const pk_cmd *cmd, pk_cmd **out) {
  if (out != NULL)
    *out = NULL;
  if (c == NULL || cmd == NULL || out == NULL)
    return PK_EINVAL;
  pk_cmd *copy;
  int rc = pk_cmd_clone(cmd, &copy);
  if (rc != 0)
    return rc;
  if ((rc = apply_env(c, copy)) != 0 || (rc = apply_rest(c, copy)) != 0) {
    pk_cmd_free(copy);
    return rc;
  }
  *out = copy;
  return 0;
}

/* ---------------------------------------------------------------- verbs */

/* The copy a verb runs, or an error with *res cleared like the verbs
 * clear it. */
static int prepare(const pk_client *c, const pk_cmd *cmd, pk_cmd **copy,
                   pk_result **res) {
  if (res != NULL)
    *res = NULL;
  return pk_client_apply(c, cmd, copy);
}

int pk_client_output(const pk_client *c, const pk_cmd *cmd, pk_result **out) {
  pk_cmd *copy;
  int rc = prepare(c, cmd, &copy, out);
  if (rc == 0)
    rc = pk_output(c->runner, copy, out);
  pk_cmd_free(copy);
  return rc;
}

int pk_client_checked(const pk_client *c, const pk_cmd *cmd, pk_result **out) {
  pk_cmd *copy;
  int rc = prepare(c, cmd, &copy, out);
  if (rc == 0)
    rc = pk_checked(c->runner, copy, out);
  pk_cmd_free(copy);
  return rc;
}

int pk_client_run(const pk_client *c, const pk_cmd *cmd, char **stdout_text,
                  pk_result **out) {
  if (stdout_text != NULL)
    *stdout_text = NULL;
  pk_cmd *copy;
  int rc = prepare(c, cmd, &copy, out);
  if (rc == 0)
    rc = pk_run(c->runner, copy, stdout_text, out);
  pk_cmd_free(copy);
  return rc;
}

int pk_client_exit_code(const pk_client *c, const pk_cmd *cmd, int *code,
                        pk_result **out) {
  if (code != NULL)
    *code = -1;
  pk_cmd *copy;
  int rc = prepare(c, cmd, &copy, out);
  if (rc == 0)
    rc = pk_exit_code(c->runner, copy, code, out);
  pk_cmd_free(copy);
  return rc;
}

int pk_client_probe(const pk_client *c, const pk_cmd *cmd, bool *yes,
                    pk_result **out) {
  if (yes != NULL)
    *yes = false;
  pk_cmd *copy;
  int rc = prepare(c, cmd, &copy, out);
  if (rc == 0)
    rc = pk_probe(c->runner, copy, yes, out);
  pk_cmd_free(copy);
  return rc;
}

int pk_client_start(const pk_client *c, const pk_cmd *cmd,
                    const pk_start_opts *opts, pk_proc **out) {
  if (out != NULL)
    *out = NULL;
  if (out == NULL)
    return PK_EINVAL;
  pk_cmd *copy;
  int rc = pk_client_apply(c, cmd, &copy);
  if (rc == 0)
    rc = pk_start(c->runner, copy, opts, out); /* the handle clones copy */
  pk_cmd_free(copy);
  return rc;
}
