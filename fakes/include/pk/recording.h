/* processkit test doubles: the recording runner and the dry-run runner.
 *
 * How to use the recording runner:
 *   1. Build the runner that really answers (a scripted runner, the real
 *      runner, ...), then wrap it: pk_recording_new(inner, &rec).
 *   2. Hand `rec` to the code under test. Every command it starts is
 *      recorded (a deep copy), then passed on to `inner` unchanged, so
 *      results are exactly the inner runner's.
 *   3. Ask what was run: pk_recording_count(rec), pk_recording_call(rec, i)
 *      or pk_recording_only_call(); read a call with pk_call_program,
 *      pk_call_argv, pk_call_cwd, pk_call_env, pk_call_has_flag, ...
 *      <pk/recording_cmocka.h> has assertion macros for cmocka users.
 *   4. pk_runner_free(rec), then free the inner runner (rec borrows it).
 *
 * How to use the dry-run runner:
 *   1. pk_dryrun_new(&r) gives a runner that never spawns: every command
 *      succeeds at once with exit 0 and no output.
 *   2. Read back what would have run: pk_dryrun_count(r) and
 *      pk_dryrun_line(r, i), each line rendered by pk_format_cmd().
 *
 * Both runners are safe to use from several threads at once; so are their
 * queries. Views they return (calls, lines) stay valid until the runner
 * is freed (or, for calls, until pk_recording_clear).
 */
#ifndef PK_RECORDING_H
#define PK_RECORDING_H

#include <pk/pk.h>

#ifdef __cplusplus
extern "C" {
#endif

/* ------------------------------------------------------------ rendering */

/* A one-line rendering of a command, shell-quoted where a word needs it,
 * followed by what differs from a plain run in parentheses:
 *   git commit -m 'a b' (cwd /tmp; env +A=1 -B; stdin 5 bytes)
 * env shows "cleared" or "only NAME,NAME" for the base environment, then
 * each override in order (+NAME=VALUE set, -NAME removed); stdin shows
 * "N bytes", "file PATH" or "inherited" (closed is the default, not
 * shown). cmd is borrowed. Returns a heap string (free with pk_free), or
 * NULL when out of memory or cmd is NULL. */
PK_EXTERN char *pk_format_cmd(const pk_cmd *cmd);

/* ------------------------------------------------------ recording runner */

typedef struct pk_call pk_call;

/* A runner that records each command, then delegates it to `inner`
 * (borrowed: it must outlive the recorder; the recorder never frees it).
 * A command is recorded before it is passed on, also when the inner
 * runner then fails to start it. Errors: PK_EINVAL (NULL inner or out),
 * PK_ENOMEM. A start fails with PK_ENOMEM when the copy cannot be made. */
PK_EXTERN int pk_recording_new(pk_runner *inner, pk_runner **out);

/* How many commands were recorded (0 when rec is not a recorder). */
PK_EXTERN size_t pk_recording_count(const pk_runner *rec);
/* Call i, in start order (borrowed view; valid until the recorder is
 * freed or cleared). NULL when i is out of range or rec is not a
 * recorder. */
PK_EXTERN const pk_call *pk_recording_call(const pk_runner *rec, size_t i);
/* The one recorded call. When not exactly one call was recorded, and why
 * is not NULL, *why receives a heap message (free with pk_free) such as
 * "expected exactly one call, recorded 2:\n  #0 git status\n  #1 git log".
 * Errors: PK_EINVAL (not a recorder, NULL out), PK_ESRCH (zero calls or
 * more than one), PK_ENOMEM (only for the message; *why stays NULL). */
PK_EXTERN int pk_recording_only_call(const pk_runner *rec, const pk_call **out,
                                     char **why);
/* Forget every recorded call; views handed out before become invalid.
 * Runs still going are unaffected. No-op when rec is not a recorder. */
PK_EXTERN void pk_recording_clear(pk_runner *rec);
/* All recorded calls, one per line: "  #0 git status\n  #1 git log\n"
 * ("  (no calls)\n" when none). Heap (free with pk_free); NULL when out of
 * memory or rec is not a recorder. */
PK_EXTERN char *pk_recording_format(const pk_runner *rec);

/* ---------------------------------------------------------- one call */
/* Accessors on a recorded call. Strings are borrowed from the call. A
 * NULL call gives NULL / 0 / false / PK_ENV_UNTOUCHED. */

/* The recorded command itself (a deep copy of what was started), for any
 * pk_cmd_* accessor this header does not mirror. */
PK_EXTERN const pk_cmd *pk_call_cmd(const pk_call *c);
/* Position of the call in the recorder (0-based, in start order). */
PK_EXTERN size_t pk_call_index(const pk_call *c);
PK_EXTERN const char *pk_call_program(const pk_call *c);
/* Number of arguments (the program not included). */
PK_EXTERN size_t pk_call_argc(const pk_call *c);
/* Argument i < pk_call_argc, else NULL. */
PK_EXTERN const char *pk_call_argv(const pk_call *c, size_t i);
/* Working directory, NULL when inherited. */
PK_EXTERN const char *pk_call_cwd(const pk_call *c);

/* True when an argument equals flag, or is "flag=value" (for flags that
 * start with '-'). Arguments after a "--" argument are operands, not
 * flags, and are not searched (unless flag is "--" itself). */
PK_EXTERN bool pk_call_has_flag(const pk_call *c, const char *flag);

/* What the call's environment overrides do to name (the last override
 * wins): PK_ENV_SET with *value (may be NULL) set to the value,
 * PK_ENV_REMOVED, or PK_ENV_UNTOUCHED (inherited if the base allows). */
PK_EXTERN pk_env_state pk_call_env(const pk_call *c, const char *name,
                                   const char **value);
/* The value name is set to, or NULL when removed or untouched. */
PK_EXTERN const char *pk_call_env_value(const pk_call *c, const char *name);
/* True when the call removes name. */
PK_EXTERN bool pk_call_env_removed(const pk_call *c, const char *name);
/* The overrides in call order: name of override i < pk_call_env_count,
 * with *value (may be NULL) its value, NULL for a removal. */
PK_EXTERN size_t pk_call_env_count(const pk_call *c);
PK_EXTERN const char *pk_call_env_name(const pk_call *c, size_t i,
                                       const char **value);
/* The base environment: cleared, or an allow-list of inherited names. */
PK_EXTERN bool pk_call_env_cleared(const pk_call *c);
PK_EXTERN size_t pk_call_inherit_count(const pk_call *c);
PK_EXTERN const char *pk_call_inherit_name(const pk_call *c, size_t i);

/* How stdin was given. */
PK_EXTERN pk_stdin_mode pk_call_stdin_mode(const pk_call *c);
/* The stdin bytes (may hold NULs; NUL-terminated for convenience) when
 * the mode is PK_STDIN_BYTES, else NULL with *len 0. len may be NULL. */
PK_EXTERN const void *pk_call_stdin(const pk_call *c, size_t *len);
/* The stdin file path when the mode is PK_STDIN_FILE, else NULL. */
PK_EXTERN const char *pk_call_stdin_path(const pk_call *c);

/* pk_format_cmd of the call. Heap (free with pk_free); NULL on ENOMEM. */
PK_EXTERN char *pk_call_format(const pk_call *c);
/* True when the call's program then arguments equal want[0..n) exactly
 * (want[0] is compared with the program as given, no basename). */
PK_EXTERN bool pk_call_argv_equal(const pk_call *c, const char *const *want,
                                  size_t n);
/* An element-by-element comparison of the call's argv with want[0..n),
 * for failure messages: one line per index, the first differing index
 * marked with '>' and every other differing one with '!', then the whole
 * call. Heap (free with pk_free); NULL on ENOMEM. */
PK_EXTERN char *pk_call_argv_diff(const pk_call *c, const char *const *want,
                                  size_t n);

/* ------------------------------------------------------- dry-run runner */

/* A runner that never spawns: each command is rendered with
 * pk_format_cmd and kept, then answered as a success (exit 0, no output)
 * through the same core pump as a real child. Errors: PK_EINVAL (NULL
 * out), PK_ENOMEM. A start fails with PK_ENOMEM when the line cannot be
 * kept. */
PK_EXTERN int pk_dryrun_new(pk_runner **out);
/* How many commands the runner answered (0 when r is not a dry-run). */
PK_EXTERN size_t pk_dryrun_count(const pk_runner *r);
/* Line i, in start order (borrowed; valid until the runner is freed), or
 * NULL when i is out of range or r is not a dry-run runner. */
PK_EXTERN const char *pk_dryrun_line(const pk_runner *r, size_t i);

#ifdef __cplusplus
}
#endif
#endif /* PK_RECORDING_H */
