/* processkit test doubles: the scripted runner and its replies.
 *
 * How to use:
 *   1. pk_scripted_new(&runner) gives a pk_runner that never spawns.
 *   2. Teach it commands: pk_script_prefix(runner, (const char *[]){"git",
 *      "rev-parse", "HEAD"}, 3, pk_reply_ok("abc123\n")). Rules are tried
 *      in registration order; the first match answers.
 *   3. Hand the runner to the code under test; every verb, line callback,
 *      capture limit, timeout and cancellation behaves as with a real
 *      child, because replies go through the same core pump.
 *   4. A command no rule matches fails with PK_EUNEXPECTED, naming the
 *      command and the closest rule (never a surprise spawn).
 *
 * Output goes where the command sends it (captured, a file, the parent's
 * own stream, or nowhere), as a real child's would.
 *
 * Replies are built with pk_reply_* and owned by whoever they are passed
 * to (a rule takes its reply, also when it fails). Delays are on the
 * runner's clock: pk_scripted_set_time_scale(r, 0) (the default) plays
 * every reply at once, in order; 1 plays in real time. The command's own
 * timeout and grace run on the same clock.
 */
#ifndef PK_FAKES_H
#define PK_FAKES_H

#include <pk/pk.h>

#ifdef __cplusplus
extern "C" {
#endif

/* ----------------------------------------------------------------- reply */

typedef struct pk_reply pk_reply;

/* Constructors return NULL only when out of memory; passing NULL to a
 * rule then fails that rule with PK_ENOMEM, so chains need no checks. */

/* Exit 0 with this stdout (may be NULL). */
PK_EXTERN pk_reply *pk_reply_ok(const char *stdout_text);
/* Exit `code` with this stderr (may be NULL). */
PK_EXTERN pk_reply *pk_reply_fail(int code, const char *stderr_text);
/* Exit 0 after printing each line (a '\n' is added), one chunk per line
 * so line callbacks see them one by one. */
PK_EXTERN pk_reply *pk_reply_lines(const char *const *lines, size_t n);
/* Killed by signal sig. */
PK_EXTERN pk_reply *pk_reply_signalled(int sig);
/* Runs into the command's own timeout: it does not exit by itself, so
 * the command's deadline, soft signal, grace and the reply's traps decide
 * the end exactly as for a real child. Without a timeout on the command
 * it ends at once as a timed-out run killed by SIGTERM. */
PK_EXTERN pk_reply *pk_reply_timed_out(void);
/* Never exits on its own: ends only through the command's timeout or a
 * cancellation / signal (a terminating signal ends it signalled). */
PK_EXTERN pk_reply *pk_reply_pending(void);
/* The program is not found (PK_ENOENT, as the real runner reports it). */
PK_EXTERN pk_reply *pk_reply_not_found(void);
/* The spawn fails at exec with this errno (classified like a real one). */
PK_EXTERN pk_reply *pk_reply_spawn_error(int os_errno);
/* The spawn fails at `stage` ("chdir", "setuid", "cgroup", "exec"...)
 * with this errno, classified like the real runner: chdir gives
 * PK_EBADCWD, exec the not-found / permission / not-executable family,
 * other stages PK_ESPAWN. */
PK_EXTERN pk_reply *pk_reply_spawn_error_at(const char *stage, int os_errno);
/* An empty timeline: add pieces with pk_reply_chunk, end it with
 * pk_reply_exit (default: exit 0 after the last piece). */
PK_EXTERN pk_reply *pk_reply_timeline(void);

/* Append output (copied) to any reply, after what it already prints and
 * before it ends. delay_ms is waited first, on the runner's clock.
 * Errors: PK_EINVAL (NULL reply, bad stream), PK_ENOMEM. */
PK_EXTERN int pk_reply_chunk(pk_reply *r, pk_stream s, int64_t delay_ms,
                             const void *data, size_t len);
PK_EXTERN int pk_reply_stdout(pk_reply *r, const char *text);
PK_EXTERN int pk_reply_stderr(pk_reply *r, const char *text);
/* The run's output did not end in time (a grandchild kept the pipe):
 * the end comes after the command's drain and the result is flagged
 * output_incomplete. Errors: PK_EINVAL. */
PK_EXTERN int pk_reply_incomplete(pk_reply *r);
/* Set how a timeline (or any reply) ends: exit code, after delay_ms. */
PK_EXTERN int pk_reply_exit(pk_reply *r, int64_t delay_ms, int code);

/* A reply decided at run time. fn sees the command and its stdin bytes
 * (a file's content for file stdin, empty when closed or inherited) and
 * builds the reply into `out` with pk_reply_chunk / pk_reply_exit.
 * Returning non-zero fails the run with that error. fn runs on the loop's
 * thread, from inside the run. */
typedef int (*pk_reply_fn)(const pk_cmd *cmd, const char *stdin_data,
                           size_t stdin_len, pk_reply *out, void *data);
PK_EXTERN pk_reply *pk_reply_callback(pk_reply_fn fn, void *data);

/* A dialog: reads stdin line by line; each expected line is answered with
 * its output. Any other line ends the run with exit 1 and a stderr
 * message naming both. Then exit 0. */
PK_EXTERN pk_reply *pk_reply_dialog(void);
PK_EXTERN int pk_reply_dialog_step(pk_reply *r, const char *expect_line,
                                   const char *answer);

/* How the reply's "process" handles a signal that arrives while it runs
 * (by default every terminating signal ends it signalled, like a process
 * with default dispositions; SIGKILL and SIGSTOP cannot be changed):
 * pk_reply_trap exits with `code` instead (a handler that exits), and
 * pk_reply_ignore makes the signal do nothing (so a timeout's grace ends
 * in SIGKILL). Errors: PK_EINVAL (NULL reply, SIGKILL/SIGSTOP, bad
 * signal or code), PK_ENOMEM. */
PK_EXTERN int pk_reply_trap(pk_reply *r, int sig, int code);
PK_EXTERN int pk_reply_ignore(pk_reply *r, int sig);

/* Free a reply nobody took. NULL is a no-op. */
PK_EXTERN void pk_reply_free(pk_reply *r);

/* ------------------------------------------------------ scripted runner */

/* A runner answering from rules. Safe to use from several threads.
 * Errors: PK_ENOMEM. */
PK_EXTERN int pk_scripted_new(pk_runner **out);
/* The runner's clock: 0 (default) plays replies at once, in order; 1
 * real time; 0.1 ten times faster. Errors: PK_EINVAL (not scripted,
 * negative). */
PK_EXTERN int pk_scripted_set_time_scale(pk_runner *r, double scale);

/* Match when program then args start with argv[0..n) element-wise
 * ({"git","branch"} matches `git branch -a`, not `git branches`). A rule's
 * program without '/' also matches a command's program by basename. */
PK_EXTERN int pk_script_prefix(pk_runner *r, const char *const *argv, size_t n,
                               pk_reply *reply);
/* Same, each element an fnmatch(3) pattern. */
PK_EXTERN int pk_script_glob(pk_runner *r, const char *const *patterns,
                             size_t n, pk_reply *reply);
/* This program, any arguments. */
PK_EXTERN int pk_script_program(pk_runner *r, const char *program,
                                pk_reply *reply);
/* A predicate over the whole command (cwd, env, stdin are visible through
 * the pk_cmd accessors). desc names the rule in error messages. */
typedef bool (*pk_script_pred)(const pk_cmd *cmd, void *data);
PK_EXTERN int pk_script_match(pk_runner *r, pk_script_pred pred, void *data,
                              const char *desc, pk_reply *reply);
/* Give the most recent rule one more reply: a rule's replies are served
 * once each in order, then the last one repeats. */
PK_EXTERN int pk_script_then(pk_runner *r, pk_reply *reply);
/* The answer when no rule matches (instead of PK_EUNEXPECTED). */
PK_EXTERN int pk_script_fallback(pk_runner *r, pk_reply *reply);
/* How many commands the runner answered (any rule or the fallback). */
PK_EXTERN size_t pk_scripted_calls(const pk_runner *r);

#ifdef __cplusplus
}
#endif
#endif /* PK_FAKES_H */
