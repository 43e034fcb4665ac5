/* processkit: pk_client, a small base for typed wrappers around one CLI.
 *
 * A wrapper library for a tool (git, kubectl, ...) is a client plus a few
 * functions that build a command, run it with a verb and parse the
 * output. The client holds the program, the runner and defaults (env,
 * timeout, cwd, accepted exit codes) shared by every command of the tool.
 *
 * How to use:
 *   1. pk_client_new("git", runner, &git): the runner is borrowed (a real
 *      runner in production, a double in tests).
 *   2. Set defaults: pk_client_env_set(git, "GIT_TERMINAL_PROMPT", "0"),
 *      pk_client_set_timeout(git, 30000, -1, 0), pk_client_set_cwd(...).
 *   3. In each wrapper function: pk_client_cmd_args(git, args, n, &cmd),
 *      add what this call needs (pk_cmd_set_cwd, pk_cmd_env_set, stdin...),
 *      run it with pk_client_run / _output / _checked / _exit_code /
 *      _probe / _start, parse the result, pk_cmd_free(cmd).
 *   4. pk_client_free(git), then pk_runner_free(runner).
 *
 * Defaults fill only what a command did not set itself: an environment
 * variable the command set or removed keeps the command's choice; the
 * timeout only when the command never called pk_cmd_set_timeout; the
 * cwd only when the command has none; the accepted codes only when the
 * command did not call pk_cmd_set_accepted. The verbs apply the defaults
 * to a private copy of the command: the caller's pk_cmd never changes.
 *
 * Threads: the verbs and pk_client_apply only read the client, so one
 * client may serve several threads at once (as far as its runner allows;
 * the real and scripted runners do) while nobody modifies it. The setters
 * need exclusive access.
 */
#ifndef PK_CLIENT_H
#define PK_CLIENT_H

#include "pk.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct pk_client pk_client;

/* New client for `program` (copied; looked up like pk_cmd_new's) running
 * through `runner` (borrowed: it must outlive the client).
 * Errors: PK_EINVAL (NULL or empty program, NULL runner, NULL out),
 * PK_ENOMEM. */
PK_EXTERN int pk_client_new(const char *program, pk_runner *runner,
                            pk_client **out);
/* Free a client (never its runner). NULL is a no-op. */
PK_EXTERN void pk_client_free(pk_client *c);

/* The program and runner the client was made with (borrowed). */
PK_EXTERN const char *pk_client_program(const pk_client *c);
PK_EXTERN pk_runner *pk_client_runner(const pk_client *c);

/* ------------------------------------------------------------- defaults */

/* Default NAME=VALUE for every command that leaves NAME untouched (both
 * copied). Replaces an earlier default for NAME (set or removal).
 * Errors: PK_EINVAL (empty name or one containing '=', NULL value),
 * PK_ENOMEM (the defaults are unchanged). */
PK_EXTERN int pk_client_env_set(pk_client *c, const char *name,
                                const char *value);
/* Default removal of NAME from the child's environment, for every command
 * that leaves NAME untouched. Replaces an earlier default for NAME.
 * Errors: PK_EINVAL, PK_ENOMEM (the defaults are unchanged). */
PK_EXTERN int pk_client_env_remove(pk_client *c, const char *name);

/* Default timeout, grace and soft signal with pk_cmd_set_timeout's
 * meaning, for commands that did not call pk_cmd_set_timeout (one that
 * set 0, "no timeout", keeps it). timeout_ms 0 removes the default.
 * Errors: PK_EINVAL (negative timeout, bad signal). */
PK_EXTERN int pk_client_set_timeout(pk_client *c, int64_t timeout_ms,
                                    int64_t grace_ms, int soft_signal);

/* Default working directory (copied) for commands without one; NULL
 * removes the default. Errors: PK_EINVAL (empty dir), PK_ENOMEM (the
 * default is unchanged). */
PK_EXTERN int pk_client_set_cwd(pk_client *c, const char *dir);

/* Default accepted exit codes (copied, each 0..255) for commands that did
 * not set their own; codes NULL with n 0 removes the default.
 * Errors: PK_EINVAL, PK_ENOMEM (the default is unchanged). */
PK_EXTERN int pk_client_set_accepted(pk_client *c, const int *codes, size_t n);

/* Why the last setter on c returned PK_EINVAL (static text), or "". */
PK_EXTERN const char *pk_client_errmsg(const pk_client *c);

/* ------------------------------------------------------------- commands */

/* A new command for the client's program, no arguments, defaults NOT
 * applied (the verbs apply them). Free it with pk_cmd_free.
 * Errors: PK_EINVAL (NULL c or out), PK_ENOMEM. */
PK_EXTERN int pk_client_cmd(const pk_client *c, pk_cmd **out);
/* The same with n arguments (each copied).
 * Errors: PK_EINVAL (NULL c or out, args NULL with n > 0, a NULL
 * argument), PK_ENOMEM. */
PK_EXTERN int pk_client_cmd_args(const pk_client *c, const char *const *args,
                                 size_t n, pk_cmd **out);

/* A copy of cmd with the client's defaults applied as the verbs apply
 * them (free with pk_cmd_free): for inspection, or to hand to code that
 * takes a pk_cmd and a runner. cmd is borrowed and not changed.
 * Errors: PK_EINVAL (NULL argument), PK_ENOMEM. */
PK_EXTERN int pk_client_apply(const pk_client *c, const pk_cmd *cmd,
                              pk_cmd **out);

/* ---------------------------------------------------------------- verbs */
/* Each applies the defaults to a copy of cmd (borrowed, unchanged) and
 * calls the pk verb of the same name on the client's runner, with the
 * same outputs and errors (see pk.h). On PK_EINVAL (NULL c or cmd) or
 * PK_ENOMEM while copying, nothing runs and the outputs are cleared as
 * the pk verb clears them (*out = NULL, *text = NULL, *code = -1,
 * *yes = false). */

PK_EXTERN int pk_client_output(const pk_client *c, const pk_cmd *cmd,
                               pk_result **out);
PK_EXTERN int pk_client_checked(const pk_client *c, const pk_cmd *cmd,
                                pk_result **out);
PK_EXTERN int pk_client_run(const pk_client *c, const pk_cmd *cmd,
                            char **stdout_text, pk_result **out);
PK_EXTERN int pk_client_exit_code(const pk_client *c, const pk_cmd *cmd,
                                  int *code, pk_result **out);
PK_EXTERN int pk_client_probe(const pk_client *c, const pk_cmd *cmd, bool *yes,
                              pk_result **out);
/* pk_start with the defaults applied. The handle does not refer to cmd
 * (it may be freed at once) nor to the client. opts as for pk_start.
 * Errors: as pk_start. */
PK_EXTERN int pk_client_start(const pk_client *c, const pk_cmd *cmd,
                              const pk_start_opts *opts, pk_proc **out);

#ifdef __cplusplus
}
#endif
#endif /* PK_CLIENT_H */
