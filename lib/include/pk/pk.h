/* processkit for C: run child processes with whole-tree containment.
 *
 * How to use:
 *   1. Describe a command: pk_cmd_new("git"), pk_cmd_arg(cmd, "status"),
 *      and any options (pk_cmd_set_cwd, pk_cmd_set_timeout, ...).
 *   2. Get a runner: pk_real_runner_new(NULL, &runner) for real, contained
 *      runs, or a test double from fakes/ (same interface).
 *   3. Run it with a verb: pk_output() (exit code is data), pk_run()
 *      (trimmed stdout, non-zero exit is an error), pk_exit_code(),
 *      pk_probe(), pk_checked(); or pk_start() for a live handle with line
 *      callbacks, optionally on your own uv_loop_t.
 *   4. Read the pk_result, then pk_result_free(); pk_cmd_free();
 *      pk_runner_free().
 *
 * Every function returns 0 or a negative PK_E* code. Details of a failed
 * run (program, stage, errno, searched directories, output) live on the
 * pk_result of that run. Strings passed in are copied unless noted.
 */
#ifndef PK_PK_H
#define PK_PK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#if !defined(_WIN32)
#include <signal.h>
#endif

#include <uv.h>

#ifdef __cplusplus
extern "C" {
#endif

#if defined(_WIN32)
#define PK_EXTERN __declspec(dllexport)
#elif defined(__GNUC__)
#define PK_EXTERN __attribute__((visibility("default")))
#else
#define PK_EXTERN
#endif

/* User and group ids: uid_t and gid_t on POSIX; Windows has neither (a
 * run that asks for them there fails with PK_EUNSUPPORTED). */
#if defined(_WIN32)
typedef unsigned int pk_uid_t;
typedef unsigned int pk_gid_t;
#else
typedef uid_t pk_uid_t;
typedef gid_t pk_gid_t;
#endif

#define PK_VERSION_MAJOR 0
#define PK_VERSION_MINOR 1
#define PK_VERSION_PATCH 0

/* ---------------------------------------------------------------- errors */

/* OS-level errors reuse libuv's (negative errno) values; processkit's own
 * codes live in their own range starting at -30000. Never renumbered.
 * XX(suffix, value, stable_name, message) */
#define PK_ERRNO_MAP(XX)                                                       \
  XX(EINVAL, UV_EINVAL, "invalid_argument", "invalid argument")                \
  XX(ENOMEM, UV_ENOMEM, "out_of_memory", "out of memory")                      \
  XX(ENOENT, UV_ENOENT, "not_found", "program not found")                      \
  XX(EACCES, UV_EACCES, "permission_denied", "permission denied")              \
  XX(EIO, UV_EIO, "io", "input/output error")                                  \
  XX(ECANCELED, UV_ECANCELED, "cancelled", "run was cancelled")                \
  XX(ESRCH, UV_ESRCH, "no_such_process", "process already exited")             \
  XX(EPERM, UV_EPERM, "not_permitted", "operation not permitted")              \
  XX(EBADCWD, -30000, "bad_cwd", "working directory is not usable")            \
  XX(ESPAWN, -30001, "spawn_failed", "could not start the process")            \
  XX(EEXIT, -30002, "exit", "process exited with a non-accepted code")         \
  XX(ESIGNALLED, -30003, "signalled", "process was killed by a signal")        \
  XX(ETIMEOUT, -30004, "timeout", "process ran past its timeout")              \
  XX(EUNSUPPORTED, -30005, "unsupported",                                      \
     "not supported on this platform or mechanism")                            \
  XX(ELIMIT, -30006, "resource_limit", "a resource limit was reached")         \
  XX(ETOOBIG, -30007, "output_too_large", "output exceeded its limit")         \
  XX(ECASSETTE_MISS, -30008, "cassette_miss", "no cassette entry matched")     \
  XX(ENOEXEC, -30009, "not_executable", "file is not executable")              \
  XX(EUNEXPECTED, -30010, "unexpected_command",                                \
     "no scripted rule matched the command")                                   \
  XX(ESTATUS_LOST, -30011, "status_lost",                                      \
     "the exit status was reaped by someone else")                             \
  XX(ECASSETTE_NOT_FOUND, -30012, "cassette_not_found",                        \
     "the cassette file does not exist")                                       \
  XX(ECASSETTE_INVALID, -30013, "cassette_invalid",                            \
     "the cassette file is not valid")                                         \
  XX(ESECRET, -30014, "secret_in_cassette",                                    \
     "a secret would be written to the cassette")                              \
  XX(ECASSETTE_UNUSED, -30015, "cassette_unused",                              \
     "cassette entries were never played")                                     \
  XX(ECASSETTE_FROZEN, -30016, "cassette_frozen",                              \
     "the cassette is frozen and refuses recording")                           \
  XX(ECASSETTE_STALE, -30017, "cassette_stale",                                \
     "a cassette entry is older than allowed")

typedef enum pk_errno {
#define PK__XX(suffix, value, name, msg) PK_##suffix = (value),
  PK_ERRNO_MAP(PK__XX)
#undef PK__XX
} pk_errno;

/* Human-readable message for a code; never NULL (unknown codes get a
 * generic text). For codes outside pk's table the text lives in a
 * thread-local buffer, valid until the next call on that thread. */
PK_EXTERN const char *pk_strerror(int err);
/* Stable snake_case name ("not_found", "timeout"...); never NULL. */
PK_EXTERN const char *pk_err_name(int err);

/* Classifier helpers: true when err belongs to that family. */
PK_EXTERN bool pk_is_not_found(int err);
PK_EXTERN bool pk_is_timeout(int err);
PK_EXTERN bool pk_is_exit(int err);
PK_EXTERN bool pk_is_spawn_error(int err); /* not found, EACCES, ENOEXEC,
                                              bad cwd, spawn failure */
PK_EXTERN bool pk_is_unsupported(int err);

/* --------------------------------------------------------------- signals */

/* Signal numbers as pk speaks them: on POSIX hosts the host's own
 * (PK_SIGTERM is SIGTERM); Windows has no signals, so there pk uses Linux's
 * numbers, and a cassette or a scripted double means the same thing on
 * every host. Signal arguments below are in [1, PK_NSIG). */
#define PK_NSIG 65
#if defined(_WIN32)
#define PK_SIGHUP 1
#define PK_SIGINT 2
#define PK_SIGQUIT 3
#define PK_SIGILL 4
#define PK_SIGTRAP 5
#define PK_SIGABRT 6
#define PK_SIGBUS 7
#define PK_SIGFPE 8
#define PK_SIGKILL 9
#define PK_SIGUSR1 10
#define PK_SIGSEGV 11
#define PK_SIGUSR2 12
#define PK_SIGPIPE 13
#define PK_SIGALRM 14
#define PK_SIGTERM 15
#define PK_SIGCHLD 17
#define PK_SIGCONT 18
#define PK_SIGSTOP 19
#define PK_SIGTSTP 20
#define PK_SIGTTIN 21
#define PK_SIGTTOU 22
#define PK_SIGURG 23
#define PK_SIGXCPU 24
#define PK_SIGXFSZ 25
#define PK_SIGVTALRM 26
#define PK_SIGPROF 27
#define PK_SIGWINCH 28
#define PK_SIGSYS 31
#else
#define PK_SIGHUP SIGHUP
#define PK_SIGINT SIGINT
#define PK_SIGQUIT SIGQUIT
#define PK_SIGILL SIGILL
#define PK_SIGTRAP SIGTRAP
#define PK_SIGABRT SIGABRT
#define PK_SIGBUS SIGBUS
#define PK_SIGFPE SIGFPE
#define PK_SIGKILL SIGKILL
#define PK_SIGUSR1 SIGUSR1
#define PK_SIGSEGV SIGSEGV
#define PK_SIGUSR2 SIGUSR2
#define PK_SIGPIPE SIGPIPE
#define PK_SIGALRM SIGALRM
#define PK_SIGTERM SIGTERM
#define PK_SIGCHLD SIGCHLD
#define PK_SIGCONT SIGCONT
#define PK_SIGSTOP SIGSTOP
#define PK_SIGTSTP SIGTSTP
#define PK_SIGTTIN SIGTTIN
#define PK_SIGTTOU SIGTTOU
#define PK_SIGURG SIGURG
#define PK_SIGXCPU SIGXCPU
#define PK_SIGXFSZ SIGXFSZ
#define PK_SIGVTALRM SIGVTALRM
#define PK_SIGPROF SIGPROF
#define PK_SIGWINCH SIGWINCH
#define PK_SIGSYS SIGSYS
#endif

/* "SIGTERM" for PK_SIGTERM; NULL for a number pk has no name for. */
PK_EXTERN const char *pk_signal_name(int sig);
/* The number of a name pk_signal_name gives ("SIGTERM"); -1 if unknown. */
PK_EXTERN int pk_signal_parse(const char *name);

/* ------------------------------------------------------------- allocator */

/* Replace the allocator used by every pk object. Call before creating any
 * object. Any function may be NULL to keep the default. Errors: none. */
PK_EXTERN int pk_replace_allocator(void *(*malloc_fn)(size_t),
                                   void *(*realloc_fn)(void *, size_t),
                                   void *(*calloc_fn)(size_t, size_t),
                                   void (*free_fn)(void *));

/* ------------------------------------------------------------ mechanisms */

typedef enum pk_mechanism {
  PK_MECH_AUTO = 0,      /* best available on this host */
  PK_MECH_CGROUP_V2,     /* private leaf cgroup, cgroup.kill teardown */
  PK_MECH_PROCESS_GROUP, /* setpgid + killpg */
  PK_MECH_JOB_OBJECT,    /* Windows: a job object with kill-on-close */
} pk_mechanism;

/* What this host would give, predicted without creating anything: no
 * cgroup is made, nothing is swept, no guardian starts (it reads
 * /proc/self/mountinfo and /proc/self/cgroup and checks permissions).
 * pk_mechanism_best() and pk_mechanism_available() instead make a
 * throwaway cgroup once to be sure. */
typedef struct pk_host_prediction {
  pk_mechanism best; /* what PK_MECH_AUTO is expected to pick */
  bool cgroup_v2;    /* a writable cgroup-v2 hierarchy is expected */
  bool cgroup_kill;  /* cgroup.kill is expected (Linux 5.14+) */
  /* Why cgroup_v2 is not expected, or "" (a sentence, for people). */
  char reason[160];
  /* The cgroup-v2 directory runs would go under, or "". */
  char cgroup_base[1024];
} pk_host_prediction;
/* Errors: PK_EINVAL (NULL). */
PK_EXTERN int pk_host_predict(pk_host_prediction *out);

/* "cgroup_v2", "process_group", "job_object" or "auto". */
PK_EXTERN const char *pk_mechanism_name(pk_mechanism m);
/* Parse a name as above into *out. Errors: PK_EINVAL. */
PK_EXTERN int pk_mechanism_parse(const char *name, pk_mechanism *out);
/* What PK_MECH_AUTO resolves to on this host (probed once). */
PK_EXTERN pk_mechanism pk_mechanism_best(void);
/* 0 if mechanism m can be used here, else PK_EUNSUPPORTED. */
PK_EXTERN int pk_mechanism_available(pk_mechanism m);

/* The capability matrix: what each mechanism guarantees, as data (the
 * platform-support table in docs/ is generated from it). */
typedef enum pk_capability {
  PK_CAP_CONTAIN_BEFORE_EXEC = 0, /* the child is contained before exec */
  PK_CAP_KILL_TREE,               /* kill on destroy: the whole tree */
  PK_CAP_SIGNAL_TREE,             /* any signal reaches every member */
  PK_CAP_ESCAPE_PROOF,            /* no descendant can leave */
  PK_CAP_PRIVILEGE_DROP,          /* uid/gid drop keeps containment */
  PK_CAP_GRACEFUL_SHUTDOWN,       /* soft signal, grace, kill */
  PK_CAP_ADOPT,                   /* pk_group_adopt */
  PK_CAP_SUSPEND_RESUME,          /* pk_group_suspend / _resume */
  PK_CAP_MEMBERS,                 /* pk_group_members */
  PK_CAP_GROUP_STATS,             /* group CPU time / peak memory */
  PK_CAP_RUN_STATS,               /* per-run CPU time / peak memory */
  PK_CAP_MEMORY_MAX,              /* limits: memory */
  PK_CAP_MAX_PROCESSES,           /* limits: processes */
  PK_CAP_CPU_QUOTA,               /* limits: CPU */
  PK_CAP_INHERIT_ENV,             /* environment allow-list */
  PK_CAP_SETSID,                  /* a new session stays contained */
  PK_CAP_CREATE_NO_WINDOW,        /* Windows console flag */
  PK_CAP_KILL_ON_PARENT_DEATH,    /* runs die with their parent */
  PK_CAP_OWNER_DEATH_TREE_KILL,   /* the whole tree, however the owner ends */
  PK_CAP_SUBREAPER,               /* orphans of escapees come back */
  PK_CAP_COUNT
} pk_capability;

typedef enum pk_support {
  PK_SUPPORT_NONE = 0, /* refused: PK_EUNSUPPORTED */
  PK_SUPPORT_PARTIAL,  /* works within the limits the note names */
  PK_SUPPORT_FULL,
  PK_SUPPORT_NOOP /* accepted and does nothing here (documented) */
} pk_support;

/* Support level of capability c under mechanism m (AUTO: the best one
 * here); *note (may be NULL) gets a static one-line explanation. */
PK_EXTERN pk_support pk_capability_support(pk_mechanism m, pk_capability c,
                                           const char **note);
/* "contain_before_exec", ... / "full", "partial", "none", "no-op". */
PK_EXTERN const char *pk_capability_name(pk_capability c);
PK_EXTERN const char *pk_support_name(pk_support s);

/* --------------------------------------------------------------- command */

typedef struct pk_cmd pk_cmd;

typedef enum pk_stdin_mode {
  PK_STDIN_CLOSED = 0, /* default: the child reads EOF at once */
  PK_STDIN_BYTES,      /* bytes given with pk_cmd_set_stdin_bytes */
  PK_STDIN_FILE,       /* a file opened read-only */
  PK_STDIN_INHERIT,    /* the parent's stdin */
} pk_stdin_mode;

typedef enum pk_out_mode {
  PK_OUT_CAPTURE = 0, /* default: through the core pump into the result */
  PK_OUT_INHERIT,     /* the parent's fd 1 / fd 2 */
  PK_OUT_NULL,        /* /dev/null */
  PK_OUT_FILE,        /* a file, created/truncated with mode 0666 & ~umask */
} pk_out_mode;

typedef enum pk_stream { PK_STDOUT = 1, PK_STDERR = 2 } pk_stream;

typedef enum pk_limit_policy {
  PK_LIMIT_NONE = 0, /* unbounded capture */
  PK_LIMIT_HEAD,     /* keep the first N bytes, count the rest */
  PK_LIMIT_TAIL,     /* keep the last N bytes, count the rest */
  PK_LIMIT_FAIL,     /* kill the tree and fail with PK_ETOOBIG */
} pk_limit_policy;

/* New command for `program`: a bare name is looked up on PATH like execvp
 * (the child's PATH if the command sets one, else the parent's); a name
 * containing '/' is used as given. program is copied.
 * Errors: PK_EINVAL (NULL or empty program, NUL bytes), PK_ENOMEM. */
PK_EXTERN int pk_cmd_new(const char *program, pk_cmd **out);
/* A command from an argument vector: argv[0] is the program, argv[1..]
 * its arguments (each copied). Errors: PK_EINVAL (argc 0, a NULL or
 * empty program, a NULL argument), PK_ENOMEM. */
PK_EXTERN int pk_cmd_new_argv(const char *const *argv, size_t argc,
                              pk_cmd **out);
/* A command from a NULL-terminated list of strings, program first:
 * pk_cmd_new_list(&cmd, "git", "rev-parse", "HEAD", NULL). Copied.
 * Errors: as pk_cmd_new_argv. */
PK_EXTERN int pk_cmd_new_list(pk_cmd **out, const char *program, ...)
#if defined(__GNUC__)
    __attribute__((sentinel))
#endif
    ;
/* Resolve the program exactly as a run of cmd would, without spawning:
 * a bare name on the child's PATH (the command's PATH override, else the
 * parent's) relative to the command's cwd, skipping entries that are not
 * executable regular files; a name with '/' is checked where the child
 * would exec it. *path gets the file (heap, pk_free). *errmsg (may be
 * NULL) gets, on failure, the message a run would put on its result
 * (heap, pk_free). Errors: PK_ENOENT, PK_EACCES (found, not
 * executable), PK_EINVAL, PK_ENOMEM. */
PK_EXTERN int pk_cmd_which(const pk_cmd *cmd, char **path, char **errmsg);
/* Free a command; NULL is a no-op. */
PK_EXTERN void pk_cmd_free(pk_cmd *cmd);
/* Deep copy. Errors: PK_ENOMEM. */
PK_EXTERN int pk_cmd_clone(const pk_cmd *cmd, pk_cmd **out);

/* Append one argument (copied). Errors: PK_EINVAL, PK_ENOMEM. */
PK_EXTERN int pk_cmd_arg(pk_cmd *cmd, const char *arg);
/* Append n arguments (each copied). Errors: PK_EINVAL, PK_ENOMEM. */
PK_EXTERN int pk_cmd_args(pk_cmd *cmd, const char *const *args, size_t n);

/* Set NAME=VALUE in the child's environment (copied). A name must be
 * non-empty and contain no '=' . Errors: PK_EINVAL, PK_ENOMEM. */
PK_EXTERN int pk_cmd_env_set(pk_cmd *cmd, const char *name, const char *value);
/* Remove NAME from the child's environment. Errors: PK_EINVAL, PK_ENOMEM. */
PK_EXTERN int pk_cmd_env_remove(pk_cmd *cmd, const char *name);
/* Start from an empty environment (overrides still apply). */
PK_EXTERN int pk_cmd_env_clear(pk_cmd *cmd);
/* Allow-list: only the named parent variables are inherited (plus
 * overrides). May be called several times. Errors: PK_EINVAL, PK_ENOMEM. */
PK_EXTERN int pk_cmd_inherit_env(pk_cmd *cmd, const char *name);

/* Working directory of the child (copied). Errors: PK_EINVAL, PK_ENOMEM. */
PK_EXTERN int pk_cmd_set_cwd(pk_cmd *cmd, const char *dir);

/* stdin from bytes (copied; may contain NULs). Errors: PK_ENOMEM. */
PK_EXTERN int pk_cmd_set_stdin_bytes(pk_cmd *cmd, const void *data, size_t len);
/* stdin from a file path (opened at start). Errors: PK_EINVAL, PK_ENOMEM */
PK_EXTERN int pk_cmd_set_stdin_file(pk_cmd *cmd, const char *path);
/* PK_STDIN_CLOSED or PK_STDIN_INHERIT; the other modes have their own
 * setters. Errors: PK_EINVAL. */
PK_EXTERN int pk_cmd_set_stdin(pk_cmd *cmd, pk_stdin_mode mode);

/* Route stdout or stderr. `path` is required for PK_OUT_FILE and must be
 * NULL otherwise. Errors: PK_EINVAL, PK_ENOMEM. */
PK_EXTERN int pk_cmd_set_output(pk_cmd *cmd, pk_stream stream, pk_out_mode mode,
                                const char *path);

/* Capture limit applied to each captured stream. PK_LIMIT_NONE needs
 * bytes == 0; the others need bytes > 0. Errors: PK_EINVAL. */
PK_EXTERN int pk_cmd_set_capture_limit(pk_cmd *cmd, pk_limit_policy policy,
                                       size_t bytes);

/* Timeout for the whole run. On expiry the soft signal (default SIGTERM)
 * goes to the whole tree, then after grace_ms (default 2000 when grace_ms
 * is negative; 0 means KILL at once) SIGKILL. timeout_ms 0 disables.
 * Windows has no soft signal: the tree is terminated at the deadline,
 * without waiting for the grace. The run still ends timed out.
 * Errors: PK_EINVAL (negative timeout, bad signal). */
PK_EXTERN int pk_cmd_set_timeout(pk_cmd *cmd, int64_t timeout_ms,
                                 int64_t grace_ms, int soft_signal);

/* How long to wait for output EOF after the main child exited before the
 * tree is torn down and the output flagged incomplete. Default 200 ms.
 * The wait is for a pipe that is held open with nothing in it: while
 * bytes are still waiting to be read (pk behind on a loaded host) it is
 * extended, by at most 10 s in all. Errors: PK_EINVAL. */
PK_EXTERN int pk_cmd_set_drain(pk_cmd *cmd, int64_t drain_ms);

/* The longest line delivered whole to an on_line callback, in bytes
 * (default PK_DEFAULT_MAX_LINE, 1 MiB). A longer line is delivered in
 * pieces of `bytes` bytes, the last one holding the rest: to
 * on_line_piece when it is set (so pieces can be told from lines), else
 * to on_line. A line of exactly `bytes` bytes is one line. The capture
 * and the counters are not affected. Errors: PK_EINVAL (0). */
#define PK_DEFAULT_MAX_LINE ((size_t)1 << 20)
PK_EXTERN int pk_cmd_set_max_line(pk_cmd *cmd, size_t bytes);
PK_EXTERN size_t pk_cmd_max_line(const pk_cmd *cmd);

/* Exit codes that count as success for pk_run / pk_checked / pk_probe's
 * error path (default {0}). Copied. Errors: PK_EINVAL, PK_ENOMEM. */
PK_EXTERN int pk_cmd_set_accepted(pk_cmd *cmd, const int *codes, size_t n);

/* Credentials applied in the child: setgroups -> setresgid -> setresuid.
 * groups may be NULL with ngroups 0 (clears supplementary groups).
 * POSIX only: on Windows the run fails with PK_EUNSUPPORTED (so do
 * setsid, umask and foreground below).
 * Errors: PK_EINVAL, PK_ENOMEM. */
PK_EXTERN int pk_cmd_set_user(pk_cmd *cmd, pk_uid_t uid, pk_gid_t gid,
                              const pk_gid_t *groups, size_t ngroups);
/* Start the child in a new session (implies a new process group).
 * Errors: PK_EINVAL (the command is a foreground one). */
PK_EXTERN int pk_cmd_set_setsid(pk_cmd *cmd, bool on);
/* Run the child as the terminal's foreground job, the way a shell runs a
 * command typed at its prompt (sudo's model). It applies when, at start,
 * this process has a controlling terminal (/dev/tty, whatever fd 0 is)
 * and its process group is that terminal's foreground group; otherwise
 * (in the background, no terminal) the run starts as without it. Then:
 *   - the child gets a process group of its own, on every mechanism, and
 *     that group becomes the terminal's foreground group before the child
 *     runs a line of its program, so it reads the terminal and the
 *     terminal's signals (Ctrl-C, Ctrl-\, Ctrl-Z) reach the run only,
 *     once (not this process);
 *   - when the child stops (Ctrl-Z, SIGTTIN, SIGSTOP), the terminal and
 *     the modes saved at start go back to this process's group and this
 *     process stops itself with the same signal, so its shell sees the job
 *     stop (all threads stop; in an orphaned process group, where such a
 *     stop would be discarded, the child is continued at once instead);
 *   - when this process is continued (SIGCONT) and holds the terminal, the
 *     terminal and the child's modes go back to the child, and the whole
 *     tree gets SIGCONT;
 *   - when the run ends, the foreground group and the terminal modes saved
 *     at start are restored (unless another group took the terminal
 *     meanwhile, e.g. the shell after a `bg`).
 * Stops are seen through SIGCHLD: while such a run lasts, libuv's handler
 * is installed for SIGCHLD and SIGCONT where they are at their default
 * disposition; a host's own disposition is kept (SIGCHLD ignored or
 * handled: stops are polled for every 50 ms; SIGCONT handled: only a
 * continue after our own stop is seen). One foreground run at a time.
 * With the terminal's tostop mode, this process writing to the terminal
 * while the child holds it gets SIGTTOU (pk run ignores it).
 * Errors: PK_EINVAL (together with pk_cmd_set_setsid: a new session has
 * no terminal). A platform without job control fails the run with
 * PK_EUNSUPPORTED (Windows). */
PK_EXTERN int pk_cmd_set_foreground(pk_cmd *cmd, bool on);
/* Umask of the child (0..0777). Errors: PK_EINVAL. */
PK_EXTERN int pk_cmd_set_umask(pk_cmd *cmd, unsigned mode);
/* Linux: SIGKILL the direct child if the spawning thread dies. Covers the
 * direct child only. Windows: always so, for the whole tree (the job dies
 * with this process); accepted. */
PK_EXTERN int pk_cmd_set_kill_on_parent_death(pk_cmd *cmd, bool on);
/* Windows: start a console child without a console window. Elsewhere
 * a documented no-op (accepted, kept, changes nothing), so portable code
 * can set it unconditionally. Errors: PK_EINVAL (NULL). */
PK_EXTERN int pk_cmd_set_create_no_window(pk_cmd *cmd, bool on);
PK_EXTERN bool pk_cmd_create_no_window(const pk_cmd *cmd);
/* Force the containment mechanism of this run (default PK_MECH_AUTO).
 * An unavailable mechanism fails the run with PK_EUNSUPPORTED. */
PK_EXTERN int pk_cmd_set_mechanism(pk_cmd *cmd, pk_mechanism m);

/* Why the last setter on cmd returned PK_EINVAL (static text naming the
 * setter and the rule), or "" if none did. */
PK_EXTERN const char *pk_cmd_errmsg(const pk_cmd *cmd);

/* Read-only views (borrowed, valid until the command changes), for
 * runners, predicates and recorders. */
PK_EXTERN const char *pk_cmd_program(const pk_cmd *cmd);
PK_EXTERN size_t pk_cmd_argc(const pk_cmd *cmd); /* args, not program */
PK_EXTERN const char *pk_cmd_argv(const pk_cmd *cmd, size_t i);
PK_EXTERN const char *pk_cmd_cwd(const pk_cmd *cmd); /* NULL: inherited */
PK_EXTERN pk_stdin_mode pk_cmd_stdin_mode(const pk_cmd *cmd);
PK_EXTERN const void *pk_cmd_stdin_data(const pk_cmd *cmd, size_t *len);
PK_EXTERN const char *pk_cmd_stdin_path(const pk_cmd *cmd);
PK_EXTERN pk_out_mode pk_cmd_output_mode(const pk_cmd *cmd, pk_stream s,
                                         const char **path);
PK_EXTERN int64_t pk_cmd_timeout_ms(const pk_cmd *cmd);
/* True once pk_cmd_set_timeout was called (even with 0: "no timeout" on
 * purpose, which defaults such as a pk_client's must not override). */
PK_EXTERN bool pk_cmd_timeout_set(const pk_cmd *cmd);
/* The accepted exit codes, or NULL for the default {0}. */
PK_EXTERN const int *pk_cmd_accepted(const pk_cmd *cmd, size_t *n);
PK_EXTERN int64_t pk_cmd_drain_ms(const pk_cmd *cmd);
PK_EXTERN pk_mechanism pk_cmd_mechanism(const pk_cmd *cmd);
PK_EXTERN bool pk_cmd_foreground(const pk_cmd *cmd);

typedef enum pk_env_state {
  PK_ENV_UNTOUCHED = 0, /* no override: inherited (if the base allows) */
  PK_ENV_SET,           /* set by pk_cmd_env_set (*value is the value) */
  PK_ENV_REMOVED,       /* removed by pk_cmd_env_remove */
} pk_env_state;

/* What the command's overrides do to NAME (the last one wins). value may
 * be NULL; it is borrowed. */
PK_EXTERN pk_env_state pk_cmd_env_state(const pk_cmd *cmd, const char *name,
                                        const char **value);
/* The overrides in call order: name and value (NULL for a removal) of
 * override i < pk_cmd_env_count. */
PK_EXTERN size_t pk_cmd_env_count(const pk_cmd *cmd);
PK_EXTERN const char *pk_cmd_env_name(const pk_cmd *cmd, size_t i,
                                      const char **value);
/* The base environment: cleared, an allow-list (names via
 * pk_cmd_inherit_count / pk_cmd_inherit_name), or everything. */
PK_EXTERN bool pk_cmd_env_cleared(const pk_cmd *cmd);
PK_EXTERN size_t pk_cmd_inherit_count(const pk_cmd *cmd);
PK_EXTERN const char *pk_cmd_inherit_name(const pk_cmd *cmd, size_t i);

/* ---------------------------------------------------------------- result */

typedef struct pk_result pk_result;

typedef enum pk_outcome {
  PK_OUTCOME_NONE = 0,  /* never ran (spawn error) */
  PK_OUTCOME_EXITED,    /* exited normally: see pk_result_code */
  PK_OUTCOME_SIGNALLED, /* killed by a signal: see pk_result_signal */
  PK_OUTCOME_TIMED_OUT, /* ran past its timeout and was torn down */
  PK_OUTCOME_CANCELLED, /* killed on request (pk_proc_kill / free) */
} pk_outcome;

/* "none", "exited", "signalled", "timed_out", "cancelled". */
PK_EXTERN const char *pk_outcome_name(pk_outcome o);

PK_EXTERN void pk_result_free(pk_result *r); /* NULL is a no-op */
PK_EXTERN pk_outcome pk_result_outcome(const pk_result *r);
/* Exit code when the process exited, else -1: 0..255 on POSIX; on
 * Windows the whole 32-bit exit code as a signed int, so NTSTATUS codes
 * are negative (STATUS_CONTROL_C_EXIT, 0xC000013A, is -1073741510) and a
 * process may exit -1 (check pk_result_outcome first). A run that pk
 * killed on Windows (timeout, pk_proc_kill, a fail cap) exited 1. */
PK_EXTERN int pk_result_code(const pk_result *r);
/* Signal number when the process was killed by one, else 0 (always 0 on
 * Windows). */
PK_EXTERN int pk_result_signal(const pk_result *r);
/* 0, or the error of the run (spawn failure, timeout, too big...). */
PK_EXTERN int pk_result_error(const pk_result *r);
/* A one-line description of the error naming the program (and stage,
 * errno, searched directories when they apply); "" when no error. */
PK_EXTERN const char *pk_result_errmsg(const pk_result *r);
/* Spawn stage that failed ("exec", "chdir", "cgroup", "setuid"...) or
 * NULL; and the errno seen there (0 if none). */
PK_EXTERN const char *pk_result_stage(const pk_result *r);
PK_EXTERN int pk_result_os_errno(const pk_result *r);

/* Captured bytes (borrowed; may contain NULs; NUL-terminated for
 * convenience). len may be NULL. Never NULL (empty string). */
PK_EXTERN const char *pk_result_stdout(const pk_result *r, size_t *len);
PK_EXTERN const char *pk_result_stderr(const pk_result *r, size_t *len);
/* A heap copy of a captured stream as text (free with pk_free), with
 * leading and trailing whitespace removed when trim is true.
 * Errors: PK_EINVAL (bad stream, or the bytes contain a NUL so they are
 * not text), PK_ENOMEM. */
PK_EXTERN int pk_result_text(const pk_result *r, pk_stream s, bool trim,
                             char **out);
/* Total bytes and lines the child wrote on a stream, including what a
 * capture limit dropped. A final line without '\n' counts as a line. */
PK_EXTERN uint64_t pk_result_total_bytes(const pk_result *r, pk_stream s);
PK_EXTERN uint64_t pk_result_total_lines(const pk_result *r, pk_stream s);
/* True when a capture limit dropped bytes of any stream. */
PK_EXTERN bool pk_result_truncated(const pk_result *r);
/* True when output EOF did not arrive within the drain grace after the
 * main child exited (a grandchild held a pipe) and the tree was torn
 * down. */
PK_EXTERN bool pk_result_output_incomplete(const pk_result *r);
PK_EXTERN int64_t pk_result_duration_ms(const pk_result *r);
PK_EXTERN double pk_result_duration_s(const pk_result *r);
PK_EXTERN pk_mechanism pk_result_mechanism(const pk_result *r);
/* How the run was started, for logs and tests: the real runner's spawn
 * path ("clone3", "clone", "clone+pidfd_open"...); a double names itself
 * ("scripted", "dryrun", "mock"); "" when the run never started (a spawn
 * or lookup failure). */
PK_EXTERN const char *pk_result_spawn_method(const pk_result *r);
/* process_group mechanism: how many descendants had left the run's
 * process group (setsid/setpgid) and were found, signalled with it and
 * killed at teardown. They can only be found while the direct child is
 * alive (a timeout, a cancellation, a free while running); orphans of an
 * exited child are out of reach. Always 0 for cgroup_v2, which contains
 * them anyway. */
PK_EXTERN int pk_result_escapees(const pk_result *r);
/* Process id of the direct child (0 if none). */
PK_EXTERN int pk_result_pid(const pk_result *r);
/* Resource use of the run, -1 when it could not be measured (never a
 * made-up 0: doubles, replays, spawn failures, or nothing readable).
 * CPU time (user + system) in microseconds: on cgroup_v2 the whole tree
 * (the leaf's cpu.stat, from the moment the child joined it: at once
 * with clone3, just before exec on the fallback path); on process_group
 * the direct child and the descendants it waited for (its rusage). Peak memory
 * in bytes: the whole tree's memory.peak where the cgroup's memory controller
 * is enabled, else the direct child's peak resident set (rusage, also covering
 * the descendants it waited for). The scopes say which: "tree", "child", or
 * NULL when unknown. */
PK_EXTERN int64_t pk_result_cpu_us(const pk_result *r);
PK_EXTERN int64_t pk_result_peak_memory(const pk_result *r);
PK_EXTERN const char *pk_result_cpu_scope(const pk_result *r);
PK_EXTERN const char *pk_result_memory_scope(const pk_result *r);

/* ---------------------------------------------------------------- runner */

typedef struct pk_runner pk_runner;

/* Free a runner; NULL is a no-op. Runs must have finished. */
PK_EXTERN void pk_runner_free(pk_runner *r);
/* Short name of the implementation ("real", "scripted"...). */
PK_EXTERN const char *pk_runner_name(const pk_runner *r);

/* Fallback switches for the real runner: each forces the code path used
 * when that kernel feature is missing (for tests and odd hosts). */
enum {
  PK_NO_CLONE3 = 1u << 0,
  PK_NO_PIDFD = 1u << 1,
  PK_NO_CLOSE_RANGE = 1u << 2,
  PK_NO_CGROUP_KILL = 1u << 3,
};

typedef struct pk_real_opts {
  pk_mechanism mechanism; /* default for commands left on AUTO */
  unsigned disable;       /* PK_NO_* bits */
  /* Whole-tree kill when this process dies (cgroup_v2 only), however it
   * ends: exit, SIGKILL, a crash, whichever thread. The leaves of one
   * process live in one per-owner cgroup, and one guardian process per
   * owning process (the pk-guardian helper, see pk_guardian_use) watches
   * the owner and kills that whole cgroup (frozen runs too) when the
   * owner is gone, then removes it. Started at the first guarded run
   * (once per process, also after fork); a start failure fails that run
   * (see pk_real_runner_new) and is retried at the next. Cost: one spawn
   * of the helper at the first guarded run, nothing per run after that;
   * one idle process per owner. The guardian is not our child (the
   * helper forks once more and we reap the first process): it is
   * adopted by init, or by the nearest child subreaper above us (so a
   * host that is itself a subreaper adopts it), and sits in a session
   * of its own, out of reach of the terminal's signals. It holds a pidfd
   * of this process (no pidfd_open, or PK_NO_PIDFD: a close-on-exec
   * pipe, whose EOF an exec or a close of all descriptors would also
   * trigger) and nothing else of ours. A process that execs keeps its
   * guardian until the new image exits; a guardian that is killed is
   * not replaced.
   * PK_NO_CGROUP_KILL of the runner that starts it makes it use the
   * freeze + SIGKILL fallback.
   * Windows: every run is so without a helper (its job object has
   * kill-on-close and only this process holds it); accepted. */
  bool kill_on_owner_death;
} pk_real_opts;

/* The real runner: every run in a fresh private group (best mechanism
 * unless forced). opts may be NULL; it is copied. Safe to use from several
 * threads at once.
 * Host state: the first runner (or the first run of any runner) puts
 * /dev/null on any of fd 0, 1, 2 the host left closed, so that none of
 * pk's or libuv's descriptors can reach a child as a standard stream, and
 * checks that libuv's one-time descriptors can be opened (libuv aborts
 * the process when they cannot).
 * On Windows every run gets a job object with kill-on-close: the child is
 * created suspended, put into the job, then resumed, and inherits only
 * its three standard handles; the PK_NO_* bits do not apply there.
 * Errors: PK_EUNSUPPORTED (forced mechanism unavailable; kill_on_owner_death
 * with a mechanism other than cgroup_v2 on Linux), PK_ELIMIT (no free
 * descriptors for an event loop: RLIMIT_NOFILE), PK_ENOMEM. A guarded run
 * (kill_on_owner_death) fails to start, with the reason in its errmsg, with
 * PK_ENOENT when no pk-guardian helper is found (the message names every path
 * tried), PK_ESPAWN or PK_ETIMEOUT when it does not start, PK_EUNSUPPORTED when
 * the command forces process_group. */
PK_EXTERN int pk_real_runner_new(const pk_real_opts *opts, pk_runner **out);

/* Which program the guardian is (process-wide; both strings copied):
 * program run with first_arg (may be NULL) before the guardian's own
 * arguments; that program must call pk_guardian_main with the arguments
 * from first_arg on (the pk CLI re-executes itself as `pk __guardian`).
 * program NULL restores the default lookup: $PK_GUARDIAN if set, else
 * pk-guardian next to the library (or, linked statically, the program),
 * in ../libexec/processkit from there, then in the installed libexec
 * directory. Affects guardians started later. Errors: PK_ENOMEM. */
PK_EXTERN int pk_guardian_use(const char *program, const char *first_arg);
/* The guardian itself: the whole main() of pk-guardian. argv[0] is the
 * program name (or first_arg); the rest comes from pk. Returns the exit
 * status (0 when it killed and removed the owner's cgroup). Only
 * meaningful in a process pk started as a guardian. */
PK_EXTERN int pk_guardian_main(int argc, char **argv);

/* ----------------------------------------------------------------- verbs */
/* All verbs exist on every runner. `out` (may be NULL) receives the
 * result of the run, also when the verb fails after the run started or
 * failed to spawn; free it with pk_result_free. Every other
 * out-parameter is written on every call and holds a value only when the
 * verb returns 0: pk_run's text is NULL, pk_exit_code's code -1 and
 * pk_probe's answer false whenever the verb fails. */

/* Run to completion, capturing. A non-zero exit or a signal is data:
 * returns 0. Errors: spawn errors (PK_ENOENT, PK_EACCES, PK_ENOEXEC,
 * PK_EBADCWD, PK_ESPAWN), PK_ETIMEOUT, PK_ETOOBIG, PK_EUNSUPPORTED,
 * PK_EINVAL, PK_ENOMEM. */
PK_EXTERN int pk_output(pk_runner *r, const pk_cmd *cmd, pk_result **out);
/* Like pk_output, but an exit code outside the accepted set is PK_EEXIT
 * and a signal death PK_ESIGNALLED (the result still carries stdout,
 * stderr and the code). */
PK_EXTERN int pk_checked(pk_runner *r, const pk_cmd *cmd, pk_result **out);
/* pk_checked, then *stdout_text = stdout with leading and trailing
 * whitespace trimmed (heap, free with pk_free; NULL whenever the verb
 * fails, the output of a failed run is on the result). Errors: as
 * pk_checked, plus PK_EINVAL when stdout holds NUL bytes (it is not
 * text; the result still has the bytes). */
PK_EXTERN int pk_run(pk_runner *r, const pk_cmd *cmd, char **stdout_text,
                     pk_result **out);
/* The exit code (non-zero is data; -1 whenever the verb fails). Errors
 * as pk_output, plus PK_ESIGNALLED. */
PK_EXTERN int pk_exit_code(pk_runner *r, const pk_cmd *cmd, int *code,
                           pk_result **out);
/* Exit 0 -> true, 1 -> false, anything else PK_EEXIT (or the run's
 * error); *yes is false whenever the verb fails. */
PK_EXTERN int pk_probe(pk_runner *r, const pk_cmd *cmd, bool *yes,
                       pk_result **out);

/* Free memory returned by pk (pk_run's text). NULL is a no-op. */
PK_EXTERN void pk_free(void *p);

/* --------------------------------------------------- live handle (start) */

typedef struct pk_proc pk_proc;

typedef struct pk_start_opts {
  /* NULL: a private loop driven by pk_proc_wait(). Else callbacks fire
   * from this loop (never from inside pk_start) and the caller runs it;
   * pk never runs or closes it. */
  uv_loop_t *loop;
  /* Each complete line of a captured stream, without its '\n'; a final
   * unterminated line is delivered at EOF. line is borrowed. A line
   * longer than the command's maximum (pk_cmd_set_max_line) arrives in
   * pieces: here when on_line_piece is NULL, else there. */
  void (*on_line)(pk_proc *p, pk_stream s, const char *line, size_t len,
                  void *data);
  /* Optional: the pieces of an over-long line, in order, each at most
   * the maximum line length; `more` is true for every piece but the
   * last (which may be shorter, never empty). Joining the pieces up to
   * one with more == false gives the whole line. Every line of a stream
   * reaches exactly one of on_line (whole) or on_line_piece (in pieces),
   * so lines delivered == pk_result_total_lines. */
  void (*on_line_piece)(pk_proc *p, pk_stream s, const char *piece, size_t len,
                        bool more, void *data);
  /* Raw chunks of a captured stream as they arrive. */
  void (*on_output)(pk_proc *p, pk_stream s, const char *buf, size_t len,
                    void *data);
  /* The run finished (result available with pk_proc_result). Called once,
   * from the loop. */
  void (*on_exit)(pk_proc *p, void *data);
  void *data;
} pk_start_opts;

/* Start a run. Misuse and a host without room for a loop are reported
 * here (PK_EINVAL, PK_ENOMEM, PK_ELIMIT); a spawn failure arrives later,
 * through the exit callback / pk_proc_wait, like every other outcome. opts may
 * be NULL (private loop, no callbacks). */
PK_EXTERN int pk_start(pk_runner *r, const pk_cmd *cmd,
                       const pk_start_opts *opts, pk_proc **out);
/* Private-loop handles only: drive the run to its end. Returns the run's
 * error as pk_output would (0 for any exit). Errors: PK_EINVAL when the
 * handle runs on a caller's loop. */
PK_EXTERN int pk_proc_wait(pk_proc *p);
/* True once the run has finished. */
PK_EXTERN bool pk_proc_done(const pk_proc *p);
/* Send sig to the whole tree (SIGKILL tears the group down). The run ends
 * with outcome cancelled when sig is SIGKILL. Call it on the thread that
 * runs the handle's loop; from other threads use pk_proc_cancel.
 * Windows has no signals: PK_SIGKILL terminates the tree (every member
 * exits 1), 0 probes, and any other signal is PK_EUNSUPPORTED.
 * Errors: PK_ESRCH when the run has finished, PK_EINVAL. */
PK_EXTERN int pk_proc_kill(pk_proc *p, int sig);
/* Cancel the run from any thread (pk_proc_kill must be called on the
 * loop's thread): the whole tree is killed from the loop soon after,
 * and the run ends cancelled unless it already ended. The handle must
 * stay alive until then (do not race this with pk_proc_free).
 * Errors: PK_EINVAL. */
PK_EXTERN int pk_proc_cancel(pk_proc *p);
/* Flow control for a consumer slower than the child: while paused, no
 * output is read (no on_output / on_line calls); a real child blocks
 * once its pipe is full, a double's timeline waits. Timeouts, signals
 * and cancellation still act; the run's end is reported only after
 * resuming, except that a run pk ends itself (timeout, cancellation,
 * SIGKILL, a capture limit) resumes on its own so it can finish.
 * Level-triggered: pausing twice needs one resume. Call on the loop's
 * thread (from a callback is fine).
 * Errors: PK_ESRCH (the run has finished), PK_EUNSUPPORTED (a runner
 * without flow control), PK_EINVAL. */
PK_EXTERN int pk_proc_pause_output(pk_proc *p);
PK_EXTERN int pk_proc_resume_output(pk_proc *p);
/* Stop reading stream s for good, like a reader that went away (a
 * `| head -1`): the child's next write to it fails with SIGPIPE (EPIPE
 * if it ignores SIGPIPE), and no more of s reaches callbacks or the
 * capture. Idempotent. Call on the loop's thread.
 * Errors: PK_ESRCH (finished), PK_EUNSUPPORTED, PK_EINVAL (bad stream).*/
PK_EXTERN int pk_proc_close_output(pk_proc *p, pk_stream s);
/* The result once done (borrowed, owned by the handle), else NULL. */
PK_EXTERN const pk_result *pk_proc_result(const pk_proc *p);
/* Take ownership of the result (the handle keeps none). NULL if not
 * done. */
PK_EXTERN pk_result *pk_proc_take_result(pk_proc *p);
/* pid of the direct child, or 0 (no pid: not started, or a double). */
PK_EXTERN int pk_proc_pid(const pk_proc *p);
/* Free the handle. A running tree is killed and reaped first, whatever
 * the mechanism; nothing of the run outlives this call. NULL is a no-op.*/
PK_EXTERN void pk_proc_free(pk_proc *p);

/* Wait until one of n handles started with a private loop has finished
 * (driving all of their loops meanwhile). *index gets the position of a
 * finished one (the lowest when several are). Handles that finished
 * before the call count at once; nothing is consumed, so the others stay
 * usable (wait for them, kill them). timeout_ms < 0 waits for ever.
 * Errors: PK_EINVAL (n 0, NULL, a handle on a caller's loop),
 * PK_ETIMEOUT (none finished in time: *index untouched). */
PK_EXTERN int pk_proc_wait_any(pk_proc *const *procs, size_t n,
                               int64_t timeout_ms, size_t *index);

/* ------------------------------------------------------------ subreaper */

/* Opt-in, process-wide (Linux): make this process a child subreaper
 * (PR_SET_CHILD_SUBREAPER). Descendants that left their run's process
 * group (setsid, a double fork) and outlived their parent then become
 * children of this process instead of init, where
 * pk_subreaper_kill_orphans can end them even after the run's direct
 * child exited, which the process_group mechanism alone cannot. It
 * changes the whole process: orphans of anything it started (not only
 * pk's runs) come to it, and code that waits for any child
 * (waitpid(-1)) sees them. cgroup_v2 contains such escapees anyway.
 * Errors: the prctl's (PK_EINVAL off Linux builds). */
PK_EXTERN int pk_subreaper_enable(void);
PK_EXTERN bool pk_subreaper_enabled(void);
/* Kill (SIGSTOP the subtree, then SIGKILL) and reap every orphan that
 * came to this process, with everything below it, except the live
 * direct children of pk's runs and pk's guardian. *killed (may be NULL)
 * gets how many processes it killed. Call it when no child of this
 * process's own is expected, e.g. after the runs ended.
 * Errors: PK_EINVAL (subreaper mode is off). */
PK_EXTERN int pk_subreaper_kill_orphans(int *killed);

/* ------------------------------------------------------ groups (shared) */

/* A group is one container holding many runs (a test's servers, a
 * build's workers): signalled, frozen, inspected, limited and torn down
 * as one. Runs join it through its runner (pk_group_runner); on
 * cgroup_v2 each run gets its own leaf inside the group's cgroup, so a
 * run's stats and its release (pk_proc_free, a timeout, a cancellation:
 * that run's whole subtree) work as for a private run, while the
 * group's limits cover every run. On process_group each run is its own
 * process group, tracked by the group. On job_object (Windows) the group
 * is a job and each run's job is nested in it, the same way. Thread-safe. */
typedef struct pk_group pk_group;

typedef struct pk_group_opts {
  pk_mechanism mechanism; /* AUTO: the best available */
  unsigned disable;       /* PK_NO_* bits, as for the real runner */
  /* Graceful shutdown: this signal, then up to grace_ms for the tree to
   * empty, then SIGKILL when escalate. Defaults SIGTERM, 2000, true. */
  int shutdown_signal;
  int64_t grace_ms;
  bool escalate;
  /* Resource limits over the whole group, 0 for none. memory_max in
   * bytes (at least 4096); max_processes (at least 1) counts every
   * process and thread of the tree (cgroup pids.max); cpu_quota in CPU
   * cores (0.5 is half a core, 2 is two; at least 0.01). */
  int64_t memory_max;
  int64_t max_processes;
  double cpu_quota;
  /* Kill the runs when this process dies. cgroup_v2: the whole tree,
   * whichever way this process ends (the guardian, see pk_real_opts);
   * process_group: each run's direct child (PR_SET_PDEATHSIG, so it is
   * thread-scoped: it fires when the thread that started the run ends).
   * pk_group_parent_death_scope says which. */
  bool kill_on_parent_death;
} pk_group_opts;

/* The defaults above; everything else off. */
PK_EXTERN void pk_group_opts_init(pk_group_opts *opts);

/* Create a group (opts NULL: defaults). On failure *errmsg (may be NULL)
 * gets the reason (heap, pk_free). Errors: PK_EINVAL (a bad option: the
 * message names it), PK_EUNSUPPORTED (a forced mechanism that is not
 * available, or that has no such limit: process_group has none),
 * PK_ELIMIT (a limit this host cannot enforce: the controller is not
 * delegated, or this process is not at the cgroup-v2 root; no group is
 * created, and pk never moves this process to another cgroup to make
 * room), PK_ENOMEM, or the error of creating the cgroup. */
PK_EXTERN int pk_group_new(const pk_group_opts *opts, pk_group **out,
                           char **errmsg);
/* Kill the whole tree (every run, every adopted process), wait until it
 * is gone, and free the group. Handles of its runs stay valid (their
 * runs end killed) and must still be freed; start nothing through the
 * runner afterwards. NULL is a no-op. */
PK_EXTERN void pk_group_free(pk_group *g);
PK_EXTERN pk_mechanism pk_group_mechanism(const pk_group *g);
/* "tree" (cgroup_v2), "child" (process_group), or NULL when
 * kill_on_parent_death is off. */
PK_EXTERN const char *pk_group_parent_death_scope(const pk_group *g);
/* The group's runner (borrowed: it lives as long as the group; do not
 * pk_runner_free it). Every verb and pk_start work through it. */
PK_EXTERN pk_runner *pk_group_runner(pk_group *g);

/* SIGKILL the whole tree and wait until it is gone. Idempotent; the
 * group stays usable. Runs whose start is waiting for a resume end
 * killed. Errors: PK_ETIMEOUT (something survived 30 s), PK_EINVAL. */
PK_EXTERN int pk_group_kill_all(pk_group *g);

typedef struct pk_shutdown_report {
  int signal;            /* the soft signal sent (0: none, grace 0) */
  int signal_error;      /* 0, or why delivering it failed (a PK code) */
  size_t members_before; /* processes (cgroup) or tracked leaders */
  size_t members_after;
  bool drained;   /* the tree emptied within the grace */
  bool escalated; /* survivors were sent SIGKILL */
  int64_t elapsed_ms;
} pk_shutdown_report;

/* Graceful stop: the shutdown signal to every member, then wait up to
 * grace_ms for the tree to empty (ending at once when it does), then
 * SIGKILL what is left when escalate. grace_ms 0: kill at once. A frozen
 * (suspended) tree cannot act on the soft signal: it waits the full
 * grace. Without escalation survivors keep running in the group (its
 * destruction still kills them). rep may be NULL.
 * job_object has no soft signal (signal_error is PK_EUNSUPPORTED in the
 * report): with escalate the tree is terminated at once; without, the
 * grace is waited for it to end by itself.
 * Errors: PK_EINVAL (negative grace), PK_ETIMEOUT (escalated and
 * something survived the kill). A failed soft signal is in the report,
 * not an error. */
PK_EXTERN int pk_group_stop(pk_group *g, int64_t grace_ms, bool escalate,
                            pk_shutdown_report *rep);
/* pk_group_stop with the group's options. */
PK_EXTERN int pk_group_shutdown(pk_group *g, pk_shutdown_report *rep);

/* Send sig to the group. SIGKILL is the atomic tree kill (as
 * pk_group_kill_all, without waiting); other signals go to every member
 * (cgroup: every process of the tree; process_group: every run's
 * process group and every adopted process). 0 only checks. An empty
 * group is not an error. job_object: PK_SIGKILL and 0 only, others
 * PK_EUNSUPPORTED. Errors: PK_EINVAL (bad signal), or a real
 * delivery failure such as PK_EPERM; a member that already exited is
 * none. */
PK_EXTERN int pk_group_signal(pk_group *g, int sig);

/* Freeze / thaw the whole tree: cgroup.freeze on cgroup_v2 (returns
 * once the kernel reports the tree frozen), SIGSTOP / SIGCONT to every
 * member on process_group, every thread of every member on job_object
 * (pass after pass until none is new; the resume undoes exactly what pk
 * suspended). Level-triggered: suspending twice needs one resume. A run
 * started while the group is suspended does not start until resume (its
 * pk_start returns at once; a blocking verb blocks until another thread
 * resumes the group; a timeout, cancellation or free ends it meanwhile;
 * on job_object it is created suspended), so no spawner ever waits
 * inside the kernel for a thaw. Any thread.
 * Errors: PK_EPERM and other delivery failures, PK_ETIMEOUT (cgroup_v2:
 * not frozen within 5 s; job_object: threads still appearing after 100
 * passes), PK_EINVAL. */
PK_EXTERN int pk_group_suspend(pk_group *g);
PK_EXTERN int pk_group_resume(pk_group *g);
PK_EXTERN bool pk_group_suspended(const pk_group *g);

/* The group's members now: every process of the tree on cgroup_v2; the
 * tracked leaders (each run's direct child while it is not reaped, and
 * adopted processes while they run) on process_group. *pids is heap
 * (pk_free), *n its length. Errors: PK_EINVAL, PK_ENOMEM. */
PK_EXTERN int pk_group_members(pk_group *g, int **pids, size_t *n);

/* Put a running process this caller controls into the group, by pid
 * (pidfd < 0) or by pidfd (pid ignored). cgroup_v2: it moves into a leaf
 * of the group (out of its previous cgroup), and every process it forks
 * afterwards is contained; the descendants it already had are not moved.
 * process_group: it is tracked and signalled on its own (its process
 * group is not touched, so its forks are not contained). job_object: it
 * joins the group's job, and what it starts afterwards is contained; by
 * pid only (a pidfd is PK_EUNSUPPORTED), never pk's own (PK_EINVAL).
 * A process that has exited but is not reaped yet is a successful no-op.
 * pk never reaps an adopted process. Errors: PK_ESRCH (no such process,
 * or reaped), PK_EPERM, PK_EINVAL, PK_ENOMEM. */
PK_EXTERN int pk_group_adopt(pk_group *g, int pid, int pidfd);

/* Accounting of the whole group; -1 where the mechanism cannot measure
 * it (never a made-up 0). */
typedef struct pk_group_stats {
  int64_t active;      /* processes running now (process_group: leaders) */
  int64_t cpu_us;      /* CPU time of the tree so far (cgroup cpu.stat) */
  int64_t peak_memory; /* bytes (memory.peak: memory controller) */
  int64_t oom_kills;   /* memory.events oom_kill (memory controller) */
} pk_group_stats;
PK_EXTERN int pk_group_stats_get(pk_group *g, pk_group_stats *out);

#ifdef __cplusplus
}
#endif
#endif /* PK_PK_H */
