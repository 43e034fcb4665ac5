/* The bulk verbs, built once on pk_start + the core pump, so they behave
 * the same on every runner. */
#include "internal.h"

#include <string.h>

void pk_runner_free(pk_runner *r) {
  if (r != NULL)
    r->vt->destroy(r);
}

const char *pk_runner_name(const pk_runner *r) {
  return r != NULL ? r->vt->name : "";
}

/* Run to completion on a private loop; *res always receives a result
 * when the run started (NULL only on misuse or ENOMEM). */
static int run_to_end(pk_runner *r, const pk_cmd *cmd, pk_result **res) {
  *res = NULL;
  pk_proc *p;
  int rc = pk__start_blocking(r, cmd, &p);
  if (rc != 0)
    return rc;
  rc = pk_proc_wait(p);
  *res = pk_proc_take_result(p);
  pk_proc_free(p);
  return rc;
}

static int give(pk_result *res, pk_result **out, int rc) {
  if (out != NULL)
    *out = res;
  else
    pk_result_free(res);
  return rc;
}

/* First line of stderr, for error messages. */
static int first_line_len(const char *s, size_t len) {
  const char *nl = memchr(s, '\n', len);
  size_t n = nl ? (size_t)(nl - s) : len;
  return (int)(n > 200 ? 200 : n);
}

static int fail_signalled(pk_result *res, const pk_cmd *cmd) {
  res->error = PK_ESIGNALLED;
  const char *name = pk_signal_name(res->signal);
  pk__result_set_errmsg(res, "%s: killed by signal %d (%s)", cmd->program,
                        res->signal, name != NULL ? name : "unnamed");
  return PK_ESIGNALLED;
}

static int fail_exit(pk_result *res, const pk_cmd *cmd) {
  size_t elen;
  const char *err = pk_result_stderr(res, &elen);
  res->error = PK_EEXIT;
  if (elen > 0)
    pk__result_set_errmsg(res, "%s: exited with code %d: %.*s", cmd->program,
                          res->code, first_line_len(err, elen), err);
  else
    pk__result_set_errmsg(res, "%s: exited with code %d", cmd->program,
                          res->code);
  return PK_EEXIT;
}

int pk_output(pk_runner *r, const pk_cmd *cmd, pk_result **out) {
  pk_result *res;
  int rc = run_to_end(r, cmd, &res);
  return give(res, out, rc);
}

/* The checking rule shared by pk_checked, pk_run. */
static int check(pk_result *res, const pk_cmd *cmd) {
  if (res->outcome == PK_OUTCOME_SIGNALLED)
    return fail_signalled(res, cmd);
  if (res->outcome == PK_OUTCOME_EXITED && !pk__cmd_accepts(cmd, res->code))
    return fail_exit(res, cmd);
  return 0;
}

int pk_checked(pk_runner *r, const pk_cmd *cmd, pk_result **out) {
  pk_result *res;
  int rc = run_to_end(r, cmd, &res);
  if (rc == 0 && res != NULL)
    rc = check(res, cmd);
  return give(res, out, rc);
}

int pk_run(pk_runner *r, const pk_cmd *cmd, char **text, pk_result **out) {
  if (text != NULL)
    *text = NULL;
  pk_result *res;
  int rc = run_to_end(r, cmd, &res);
  if (rc == 0 && res != NULL)
    rc = check(res, cmd);
  if (rc == 0 && res != NULL && text != NULL)
    rc = pk_result_text(res, PK_STDOUT, true, text); /* NULL on failure */
  return give(res, out, rc);
}

int pk_exit_code(pk_runner *r, const pk_cmd *cmd, int *code, pk_result **out) {
  if (code != NULL)
    *code = -1;
  pk_result *res;
  int rc = run_to_end(r, cmd, &res);
  if (rc == 0 && res->outcome == PK_OUTCOME_SIGNALLED)
    rc = fail_signalled(res, cmd);
  if (rc == 0 && code != NULL)
    *code = res->code;
  return give(res, out, rc);
}

int pk_probe(pk_runner *r, const pk_cmd *cmd, bool *yes, pk_result **out) {
  if (yes != NULL)
    *yes = false;
  pk_result *res;
  int rc = run_to_end(r, cmd, &res);
  if (rc == 0 && res->outcome == PK_OUTCOME_SIGNALLED)
    rc = fail_signalled(res, cmd);
  else if (rc == 0 && res->code != 0 && res->code != 1)
    rc = fail_exit(res, cmd);
  if (rc == 0 && yes != NULL)
    *yes = res->code == 0;
  return give(res, out, rc);
}
