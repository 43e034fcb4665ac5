/* Windows helpers shared by the library, the doubles and the cassettes.
 * Not installed. */
#ifndef PK_WIN_H
#define PK_WIN_H

#include <stdbool.h>
#include <stddef.h>
#include <windows.h>

/* UTF-8 to UTF-16 (heap, pk__free); NULL when out of memory or s is not
 * valid UTF-8. */
PK_EXTERN wchar_t *pk__wide(const char *s);
/* The system's text for a Windows error code, without the trailing
 * period and newline, in buf; "Windows error N" when it has none. */
PK_EXTERN const char *pk__win_msg(DWORD err, char *buf, size_t len);

/* Running under wine (ntdll exports wine_get_version), which stubs some
 * of what Windows does: job accounting and limits, CPU rate control. */
PK_EXTERN bool pk__win_is_wine(void);

/* ---- CreateProcessW's inputs (spawn_win.c) ---- */

/* CreateProcessW's limit on lpCommandLine: 32767 UTF-16 units, the
 * terminating NUL included. */
#define PK__WIN_CMDLINE_MAX 32767

/* The command line for CreateProcessW from argc UTF-8 arguments, argv[0]
 * being the program (argv borrowed). Quoted so that the child's C runtime
 * (and CommandLineToArgvW) gives back exactly argv[1..]; argv[0] is quoted
 * when it holds a blank, never escaped. The rules are spelled out in
 * spawn_win.c. *out: a fresh NUL-terminated string (pk__free), writable as
 * CreateProcessW wants; NULL on error.
 * Errors: PK_EINVAL (NULL argv, out or argument, argc 0, an empty program
 * or one containing '"', invalid UTF-8, a result longer than
 * PK__WIN_CMDLINE_MAX units with its NUL), PK_ENOMEM. */
PK_EXTERN int pk__win_cmdline(const char *const *argv, size_t argc,
                              wchar_t **out);

/* The environment block for CreateProcessW (CREATE_UNICODE_ENVIRONMENT)
 * from the NULL-terminated UTF-8 "NAME=value" list envp (borrowed): the
 * entries sorted by name as Windows wants them (ordinal after upper-casing,
 * CompareStringOrdinal's ignore-case order), each NUL-terminated, then one
 * more NUL; no entry gives two NULs. Of entries whose names are equal
 * ignoring case, the last in envp is kept whole (its spelling of the name
 * too). A name may start with '=' (Windows' per-drive directories,
 * "=C:=C:\dir"); the value is everything after the first '=' past the
 * name's first character, and may be empty. *out: fresh (pk__free), NULL
 * on error.
 * Errors: PK_EINVAL (NULL envp or out; an entry with no '=' past its first
 * character, or an empty name: "", "NAME", "=value", "==value"; invalid
 * UTF-8), PK_ENOMEM. */
PK_EXTERN int pk__win_envblock(char *const *envp, wchar_t **out);

/* The PATH pk__resolve_program should search for cmd: NULL when cmd
 * inherits this process's (pk__cmd_path_env hands the C runtime's narrow
 * copy, in the ANSI code page; NULL has it read again as UTF-16), "" when
 * cmd unsets PATH, else cmd's own (UTF-8). Borrowed. */
const char *pk__win_path_env(const pk_cmd *cmd);

/* ---- job objects (real_runner_win.c, group_win.c) ---- */

/* A fresh job with kill-on-close (the tree dies with the last handle,
 * also when this process dies) and die-on-unhandled-exception (a crashing
 * member ends at once instead of waiting on an error dialog). NULL and
 * *err on failure. */
HANDLE pk__win_job_new(DWORD *err);
/* The job's accounting, which covers its whole tree (and its nested
 * jobs): CPU time in microseconds, peak committed memory in bytes; -1
 * for what is unknown, both under wine (its job accounting is a stub
 * that says 0). */
void pk__win_job_usage(HANDLE job, int64_t *cpu_us, int64_t *peak);
/* The runner of a group: its runs get jobs nested in the group's. */
int pk__win_runner_group(pk_group *g, pk_runner **out);
void pk__win_runner_group_free(pk_runner *r);
/* A run of the group holds a reference until it is freed. */
void pk__wgroup_ref(pk_group *g);
void pk__wgroup_unref(pk_group *g);
/* Put a run's child (created suspended; thread is its main thread, tid
 * that thread's id) into the group's job and then run_job, nested in it;
 * resume it, or leave it suspended until the group's resume. 0 or the
 * Windows error. */
DWORD pk__wgroup_admit(pk_group *g, HANDLE proc, HANDLE thread, DWORD tid,
                       HANDLE run_job);

#endif
