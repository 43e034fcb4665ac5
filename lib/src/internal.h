/* Internal declarations shared by lib/ sources. Not installed. */
#ifndef PK_INTERNAL_H
#define PK_INTERNAL_H

#include "pk/runner_impl.h"

#include <stdarg.h>

/* ---- allocation (alloc.c) ----
 * Exported (not in the public headers) so pk's own layers, fakes/ and
 * cassettes/, allocate through the same hook, also as shared libraries. */
/* printf-style checking; mingw-w64's C99 stdio is gnu_printf there. */
#if defined(__MINGW32__)
#define PK__PRINTF(f, a) __attribute__((format(gnu_printf, f, a)))
#else
#define PK__PRINTF(f, a) __attribute__((format(printf, f, a)))
#endif

PK_EXTERN void *pk__malloc(size_t n);
PK_EXTERN void *pk__calloc(size_t n, size_t size);
PK_EXTERN void *pk__realloc(void *p, size_t n);
PK_EXTERN void pk__free(void *p);
PK_EXTERN char *pk__strdup(const char *s);
PK_EXTERN void *pk__memdup(const void *p, size_t n);
/* printf into a fresh heap string; NULL on ENOMEM. */
PK_EXTERN char *pk__sprintf(const char *fmt, ...) PK__PRINTF(1, 2);
PK_EXTERN char *pk__vsprintf(const char *fmt, va_list ap);

/* ---- growable byte buffer ----
 * Invariant: data is NULL or NUL-terminated at len (storage lent past
 * len by pk__buf_reserve is re-terminated when the bytes are committed). */
typedef struct pk__buf {
  char *data;
  size_t len;
  size_t cap;
} pk__buf;
/* memmem(3), which Windows lacks. */
PK_EXTERN const void *pk__memmem(const void *hay, size_t hlen,
                                 const void *needle, size_t nlen);

PK_EXTERN int pk__buf_append(pk__buf *b, const void *p, size_t n);
/* Make room for n more bytes (plus the NUL) without changing len. */
PK_EXTERN int pk__buf_reserve(pk__buf *b, size_t n);
PK_EXTERN void pk__buf_release(pk__buf *b);

/* ---- command internals (cmd.c) ---- */
typedef struct pk__env_op {
  char *name;
  char *value; /* NULL: remove */
} pk__env_op;

struct pk_cmd {
  char *program;
  char **args;
  size_t nargs, cap_args;
  pk__env_op *env_ops;
  size_t nenv_ops;
  bool env_clear;
  char **inherit;
  size_t ninherit;
  char *cwd;
  pk_stdin_mode stdin_mode;
  char *stdin_data;
  size_t stdin_len;
  char *stdin_path;
  pk_out_mode out_mode[3];
  char *out_path[3];
  pk_limit_policy limit_policy;
  size_t limit_bytes;
  int64_t timeout_ms, grace_ms, drain_ms;
  size_t max_line;
  bool timeout_set;
  int soft_signal;
  int *accepted;
  size_t naccepted;
  bool set_user;
  pk_uid_t uid;
  pk_gid_t gid;
  pk_gid_t *groups;
  size_t ngroups;
  bool setsid;
  bool foreground;
  bool set_umask;
  unsigned umask;
  bool pdeathsig;
  bool no_window; /* create_no_window: Windows only, kept for views */
  pk_mechanism mechanism;
  const char *errmsg; /* why the last setter said PK_EINVAL */
};

bool pk__cmd_accepts(const pk_cmd *cmd, int code);
/* NULL-terminated envp for the child (heap; free with pk__strv_free). */
int pk__cmd_build_env(const pk_cmd *cmd, char ***out);
/* The same from the "NAME=value" list base (borrowed); fold: names are
 * equal ignoring ASCII case (Windows). */
int pk__cmd_build_env_from(const pk_cmd *cmd, char *const *base, bool fold,
                           char ***out);
/* The PATH the lookup should use (borrowed; may be NULL). */
const char *pk__cmd_path_env(const pk_cmd *cmd);
/* The same, fold: the name PATH in any ASCII case (Windows). */
const char *pk__cmd_path_env_fold(const pk_cmd *cmd, bool fold);
void pk__strv_free(char **v);

/* pk_start for the blocking verbs: runs on the thread's cached loop. */
int pk__start_blocking(pk_runner *r, const pk_cmd *cmd, pk_proc **out);

/* ---- result internals (result.c) ---- */
struct pk_result {
  pk_outcome outcome;
  int code, signal;
  int error;
  char *errmsg;
  char *stage;
  int os_errno;
  pk__buf out[3];
  uint64_t total_bytes[3], total_lines[3];
  bool truncated;
  bool incomplete;
  int64_t duration_ns;
  pk_mechanism mechanism;
  char *spawn_method;
  int pid;
  int escapees;
  int64_t cpu_us, peak_memory;          /* -1: unknown */
  const char *cpu_scope, *memory_scope; /* static strings, or NULL */
};
pk_result *pk__result_new(void);
/* Replace the error message (printf-style). Keeps the old one on ENOMEM.*/
void pk__result_set_errmsg(pk_result *r, const char *fmt, ...) PK__PRINTF(2, 3);

/* ---- program lookup (path.c) ---- */
/* Resolve program like execvp. On success *resolved is a heap path. On
 * failure returns PK_ENOENT / PK_EACCES and *msg describes what was
 * searched (heap). cwd is the child's cwd for relative PATH entries. */
PK_EXTERN int pk__resolve_program(const char *program, const char *path_env,
                                  const char *cwd, char **resolved, char **msg);

/* errno -> negative code (libuv values on Unix) */
#define PK__ERR(e) (-(e))

/* ---- files (fileio.c): libuv's synchronous fs calls ----
 * Flags are UV_FS_O_*; errors are negative PK_E / UV_E codes. */
PK_EXTERN int pk__fd_open(const char *path, int flags, int mode);
/* Bytes read (0 at EOF) or an error; EINTR is retried. */
PK_EXTERN int64_t pk__fd_read(int fd, void *buf, size_t len);
PK_EXTERN int pk__fd_write_all(int fd, const void *data, size_t len);
PK_EXTERN int pk__fd_close(int fd);
/* 0 and *size for a regular file, 1 for anything else, or an error. */
PK_EXTERN int pk__fd_regular_size(int fd, uint64_t *size);
PK_EXTERN bool pk__fd_is_tty(int fd);
/* The working directory into buf, or NULL. */
PK_EXTERN const char *pk__cwd(char *buf, size_t len);

/* ---- patterns (glob.c) ----
 * fnmatch(pat, s, 0) in the C locale, on every host. */
PK_EXTERN bool pk__glob_match(const char *pat, const char *s);

/* ---- host state (host_posix.c) ----
 * Before pk's first event loop: fill closed fds 0-2 with /dev/null and
 * make sure libuv's one-time descriptors can be opened (libuv aborts
 * otherwise). Retried until it succeeds. PK_ELIMIT when descriptors ran
 * out. */
int pk__host_check(void);
/* libuv's EMFILE/ENFILE are pk's resource_limit; others unchanged. */
int pk__map_uv_error(int rc);
/* Sleep until one of the loops has work (I/O, or its next timer is due)
 * or timeout_ms passes (-1: no bound); the caller then runs them with
 * UV_RUN_NOWAIT. May return early. */
void pk__loops_wait(uv_loop_t *const *loops, size_t n, int timeout_ms);

/* Whether this host has POSIX signals. Without them (Windows) a run is
 * ended only by termination, which reports exit code 1, and every signal
 * but the kill (and 0, the probe) is PK_EUNSUPPORTED; the doubles follow
 * the host as a real run there would. */
PK_EXTERN bool pk__host_signals(void);

/* ---- the drain after the child's exit (drain.c), for real runners ----
 * From the drain timer t (callback cb): true when pk is behind (a writer
 * still holds a pipe and bytes wait: t is re-armed, read on), false when
 * the run should finish now. *extra_ms: how long it read on so far. */
bool pk__drain_behind(uv_timer_t *t, uv_timer_cb cb, const pk_cmd *cmd,
                      bool held, bool data, int64_t *extra_ms);
/* The child exited: true when the run should finish in this call (no
 * pipe open and now); else arms t: for the next loop turn when no pipe
 * is open, or the drain grace (unless already armed). */
bool pk__drain_arm(uv_timer_t *t, uv_timer_cb cb, const pk_cmd *cmd,
                   bool pipes_open, bool now);

/* ---- group options (group_opts.c) ---- */
bool pk__group_has_limits(const pk_group_opts *o);
/* PK_EINVAL with *msg (heap) naming the bad option, or 0. */
int pk__group_check_opts(const pk_group_opts *o, char **msg);
/* pk_group_new's start on every host: *errmsg and *out cleared, *o the
 * options (the defaults where opts is NULL), checked. 0, or PK_EINVAL (out
 * NULL; a bad option, named in *msg). */
int pk__group_new_begin(const pk_group_opts *opts, pk_group **out,
                        char **errmsg, pk_group_opts *o, char **msg);
/* Hand msg (heap, may be NULL: pk_strerror(rc)) to *errmsg, or free it. */
void pk__group_set_msg(char **errmsg, char *msg, int rc);

/* ---- time ---- */
uint64_t pk__now_ns(void);

/* The live direct children of real runs (subreaper.c), which the
 * subreaper sweep never touches. */
void pk__leader_add(pid_t pid);
void pk__leader_remove(pid_t pid);
/* Around a spawn until its child is added (the sweep waits meanwhile). */
void pk__leader_spawn_begin(void);
void pk__leader_spawn_end(void);

/* The state letter of /proc/<pid>/stat ('R', 'S', 'T', 'Z'...), or 0
 * when there is no such process; running: exists and is not a zombie. */
char pk__proc_state(pid_t pid);
bool pk__proc_running(pid_t pid);

#endif
