/* Windows: the real runner on Job Objects.
 *
 * Each run gets a fresh job with kill-on-close. The child is created
 * suspended, assigned to the job, then resumed, so even what it starts
 * in its first instant is inside. It inherits exactly its three standard
 * handles (PROC_THREAD_ATTRIBUTE_HANDLE_LIST). Capture pipes are
 * overlapped named pipes (uv_pipe) handed to libuv, so the core pump is
 * the one every platform uses; a thread-pool wait on the process handle
 * wakes the loop when the child exits. The tree ends with
 * TerminateJobObject(job, 1): a killed process exits 1, never
 * "signalled" (Windows has no signals); the core still reports timeouts
 * and cancellations as such. Closing the job handle kills whatever is
 * left, also when this process dies. */
#include "internal.h"
#include "win.h"

#include <errno.h>
#include <io.h>
#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#define READ_BUF (64 * 1024)
#define TEARDOWN_MS 5000

typedef struct win_runner {
  pk_runner base;
  pk_real_opts opts;
  pk_group *grp; /* a group's runner: every run's job nests in its job */
} win_runner;

typedef struct win_exec {
  pk_exec base;
  uv_loop_t *loop;
  pk_events *ev;
  const pk_cmd *cmd; /* borrowed: the core's copy outlives us */
  pk_group *grp;     /* a group's run: a reference, dropped when freed */
  HANDLE job, proc;
  /* exit: a thread-pool wait on proc sends exit_async */
  HANDLE wait;
  uv_async_t exit_async;
  bool have_async;
  bool exited;
  DWORD code;
  int64_t cpu_us, peak; /* the job's accounting, -1 unknown */
  /* output */
  uv_pipe_t out[3];
  bool out_open[3];
  char *rbuf;
  uv_timer_t drain;
  int64_t drain_extra_ms;
  /* stdin (bytes): one write of the whole buffer */
  uv_pipe_t in;
  bool in_open;
  uv_write_t in_req;
  bool paused; /* flow control: not reading the pipes */
  /* lifecycle */
  bool finished, released;
  int closing;
} win_exec;

/* ------------------------------------------------------------ teardown */

static void exec_maybe_free(win_exec *e) {
  if (e->released && e->closing == 0) {
    if (e->grp != NULL)
      pk__wgroup_unref(e->grp);
    pk__free(e->rbuf);
    pk__free(e);
  }
}

static void on_closed(uv_handle_t *h) {
  win_exec *e = h->data;
  e->closing--;
  exec_maybe_free(e);
}

static void close_handle(win_exec *e, void *h) {
  uv_handle_t *hh = h;
  if (uv_is_closing(hh))
    return;
  hh->data = e;
  e->closing++;
  uv_close(hh, on_closed);
}

static void close_out(win_exec *e, int s) {
  if (!e->out_open[s])
    return;
  e->out_open[s] = false;
  close_handle(e, &e->out[s]);
}

static void close_in(win_exec *e) {
  if (!e->in_open)
    return;
  e->in_open = false;
  close_handle(e, &e->in);
}

static bool check_exit(win_exec *e) {
  if (e->exited)
    return true;
  if (e->proc == NULL || WaitForSingleObject(e->proc, 0) != WAIT_OBJECT_0)
    return false;
  DWORD code = 1;
  GetExitCodeProcess(e->proc, &code);
  e->code = code;
  e->exited = true;
  return true;
}

static DWORD job_active(HANDLE job) {
  JOBOBJECT_BASIC_ACCOUNTING_INFORMATION a;
  if (!QueryInformationJobObject(job, JobObjectBasicAccountingInformation, &a,
                                 sizeof(a), NULL))
    return 0;
  return a.ActiveProcesses;
}

/* Terminate every member (each exits 1) and wait, bounded, until the job
 * holds no process. */
static void job_kill(HANDLE job) {
  if (job_active(job) == 0)
    return;
  TerminateJobObject(job, 1);
  ULONGLONG end = GetTickCount64() + TEARDOWN_MS;
  while (job_active(job) > 0 && GetTickCount64() < end)
    Sleep(1);
}

void pk__win_job_usage(HANDLE job, int64_t *cpu_us, int64_t *peak) {
  *cpu_us = *peak = -1;
  if (pk__win_is_wine())
    return;
  JOBOBJECT_BASIC_ACCOUNTING_INFORMATION a;
  if (QueryInformationJobObject(job, JobObjectBasicAccountingInformation, &a,
                                sizeof(a), NULL))
    *cpu_us = (a.TotalUserTime.QuadPart + a.TotalKernelTime.QuadPart) / 10;
  JOBOBJECT_EXTENDED_LIMIT_INFORMATION x;
  if (QueryInformationJobObject(job, JobObjectExtendedLimitInformation, &x,
                                sizeof(x), NULL) &&
      x.PeakJobMemoryUsed > 0)
    *peak = (int64_t)x.PeakJobMemoryUsed;
}

static void stop_exit_wait(win_exec *e) {
  if (e->wait != NULL) /* returns once a running callback has finished */
    UnregisterWaitEx(e->wait, INVALID_HANDLE_VALUE);
  e->wait = NULL;
}

/* Kill whatever is left of the tree and release the OS resources. */
static void teardown(win_exec *e) {
  stop_exit_wait(e);
  if (e->have_async) { /* an async keeps a caller's loop alive: not now */
    close_handle(e, &e->exit_async);
    e->have_async = false;
  }
  if (e->job != NULL) {
    job_kill(e->job);
    pk__win_job_usage(e->job, &e->cpu_us, &e->peak);
    CloseHandle(e->job);
    e->job = NULL;
  }
  if (e->proc != NULL) {
    if (!check_exit(e) && WaitForSingleObject(e->proc, TEARDOWN_MS) == 0)
      check_exit(e);
    if (!e->exited) { /* cannot happen short of a broken job: say killed */
      e->exited = true;
      e->code = 1;
    }
    CloseHandle(e->proc);
    e->proc = NULL;
  }
  close_in(e);
}

/* The OS handle of an open capture pipe, or NULL. */
static HANDLE out_handle(win_exec *e, int s) {
  uv_os_fd_t h;
  if (!e->out_open[s] || uv_fileno((uv_handle_t *)&e->out[s], &h) != 0)
    return NULL;
  return h;
}

/* Bytes waiting in the pipe; false once its writers are all gone and it
 * is empty (PeekNamedPipe then says the pipe is broken). */
static bool pipe_peek(win_exec *e, int s, DWORD *avail) {
  HANDLE h = out_handle(e, s);
  *avail = 0;
  return h != NULL && PeekNamedPipe(h, NULL, 0, NULL, avail, NULL);
}

/* Someone (a grandchild) still holds the write end: no EOF is coming.
 * A pipe with bytes left is held while any process of the job lives. */
static bool pipe_held(win_exec *e, int s) {
  DWORD avail;
  if (!pipe_peek(e, s, &avail))
    return false;
  return avail == 0 || (e->job != NULL && job_active(e->job) > 0);
}

static bool pipe_has_data(win_exec *e, int s) {
  DWORD avail;
  return pipe_peek(e, s, &avail) && avail > 0;
}

/* Read what is left in a pipe whose writers are gone, then close it. */
static void drain_rest(win_exec *e, int s) {
  HANDLE h = out_handle(e, s);
  HANDLE done = h != NULL ? CreateEventW(NULL, TRUE, FALSE, NULL) : NULL;
  for (int i = 0; done != NULL && i < 64 && !e->released; i++) {
    DWORD avail = 0, got = 0;
    if (!PeekNamedPipe(h, NULL, 0, NULL, &avail, NULL) || avail == 0)
      break;
    OVERLAPPED ov;
    memset(&ov, 0, sizeof(ov));
    /* The handle is on libuv's completion port: the event's low bit set
     * keeps this read's packet out of it (libuv would take the stack's
     * OVERLAPPED for one of its own requests). */
    ov.hEvent = (HANDLE)((uintptr_t)done | 1);
    if (!ReadFile(h, e->rbuf, avail < READ_BUF ? avail : READ_BUF, &got, &ov) &&
        (GetLastError() != ERROR_IO_PENDING ||
         !GetOverlappedResult(h, &ov, &got, TRUE)))
      break;
    if (got == 0)
      break;
    pk_events_output(e->ev, (pk_stream)s, e->rbuf, got);
  }
  if (done != NULL)
    CloseHandle(done);
  close_out(e, s);
}

static void set_usage(const win_exec *e, pk_exit_info *info) {
  if (e->cpu_us >= 0) {
    info->have_cpu = true;
    info->cpu_us = e->cpu_us;
    info->cpu_scope = "tree";
  }
  if (e->peak >= 0) {
    info->have_memory = true;
    info->peak_memory = e->peak;
    info->memory_scope = "tree";
  }
}

static void finish_run(win_exec *e) {
  uv_timer_stop(&e->drain);
  bool incomplete = pipe_held(e, PK_STDOUT) || pipe_held(e, PK_STDERR);
  teardown(e);
  drain_rest(e, PK_STDOUT);
  drain_rest(e, PK_STDERR);
  e->finished = true;
  if (e->released) /* freed from an output callback: no exit event */
    return;
  pk_exit_info info;
  memset(&info, 0, sizeof(info));
  info.outcome = PK_OUTCOME_EXITED;
  info.code = (int)e->code; /* 32 bits: NTSTATUS codes are negative */
  info.output_incomplete = incomplete;
  info.mechanism = PK_MECH_JOB_OBJECT;
  info.spawn_method = "create_suspended";
  info.pid = e->base.pid;
  set_usage(e, &info);
  e->base.pid = 0;
  pk_events_exit(e->ev, &info); /* last: the user may act on it */
}

static void on_drain(uv_timer_t *t) {
  win_exec *e = t->data;
  bool held = pipe_held(e, PK_STDOUT) || pipe_held(e, PK_STDERR);
  bool data = pipe_has_data(e, PK_STDOUT) || pipe_has_data(e, PK_STDERR);
  if (!pk__drain_behind(&e->drain, on_drain, e->cmd, held, data,
                        &e->drain_extra_ms))
    finish_run(e);
}

/* The child has exited: finish once the pipes are closed, or after the
 * drain grace (drain.c). `now`: finish from this call when nothing is
 * left to wait for; else from the next loop turn (callers inside the
 * core's output path must not see the run end under them). Never while
 * paused. */
static void finish_when_done(win_exec *e, bool now) {
  if (e->finished || e->paused || !check_exit(e))
    return;
  if (pk__drain_arm(&e->drain, on_drain, e->cmd,
                    e->out_open[PK_STDOUT] || e->out_open[PK_STDERR], now))
    finish_run(e);
}

/* --------------------------------------------------------- loop events */

static void on_exit_async(uv_async_t *a) { finish_when_done(a->data, true); }

static void CALLBACK on_exit_signalled(void *arg, BOOLEAN timed_out) {
  (void)timed_out;
  win_exec *e = arg;
  uv_async_send(&e->exit_async);
}

static void on_alloc(uv_handle_t *h, size_t hint, uv_buf_t *buf) {
  (void)hint;
  win_exec *e = h->data;
  pk_stream s = h == (uv_handle_t *)&e->out[PK_STDOUT] ? PK_STDOUT : PK_STDERR;
  char *lent;
  size_t n = pk_events_buffer(e->ev, s, &lent); /* read into the capture */
  *buf = n > 0 ? uv_buf_init(lent, (unsigned)(n > UINT_MAX ? UINT_MAX : n))
               : uv_buf_init(e->rbuf, READ_BUF);
}

static void on_read(uv_stream_t *h, ssize_t n, const uv_buf_t *buf) {
  win_exec *e = h->data;
  int s = h == (uv_stream_t *)&e->out[PK_STDOUT] ? PK_STDOUT : PK_STDERR;
  if (n > 0) {
    pk_events_output(e->ev, (pk_stream)s, buf->base, (size_t)n);
    return;
  }
  if (n == 0)
    return;
  close_out(e, s); /* EOF: every writer is gone */
  finish_when_done(e, true);
}

/* The child read it all, exited, or closed its stdin: either way done
 * (a child that stops reading is no failure; its exit status wins). */
static void on_stdin_written(uv_write_t *w, int status) {
  (void)status;
  close_in(w->data);
}

/* ------------------------------------------------------------- start */

/* The child's three handles (inheritable, ours to close) and our ends of
 * the pipes (CRT descriptors, as uv_pipe_open takes them). */
typedef struct hplan {
  HANDLE child[3];
  int parent[3];
} hplan;

static void hplan_close(hplan *p, bool parent_too) {
  for (int i = 0; i < 3; i++) {
    if (p->child[i] != NULL)
      CloseHandle(p->child[i]);
    p->child[i] = NULL;
    if (parent_too && p->parent[i] >= 0)
      pk__fd_close(p->parent[i]);
    if (parent_too)
      p->parent[i] = -1;
  }
}

static int win_rc(DWORD err) {
  switch (err) {
  case ERROR_TOO_MANY_OPEN_FILES:
  case ERROR_NO_SYSTEM_RESOURCES:
  case ERROR_NOT_ENOUGH_MEMORY:
  case ERROR_OUTOFMEMORY:
  case ERROR_COMMITMENT_LIMIT:
    return PK_ELIMIT;
  default:
    return PK_EIO;
  }
}

/* An inheritable copy of h (the original is left as it is). */
static int inheritable(HANDLE h, HANDLE *out, const char *what, char **msg) {
  if (DuplicateHandle(GetCurrentProcess(), h, GetCurrentProcess(), out, 0, TRUE,
                      DUPLICATE_SAME_ACCESS))
    return 0;
  DWORD err = GetLastError();
  char buf[256];
  *msg = pk__sprintf("cannot hand the %s to the child: %s", what,
                     pk__win_msg(err, buf, sizeof(buf)));
  *out = NULL;
  return win_rc(err);
}

/* UTF-8 to UTF-16: 0, PK_ENOMEM, or PK_EINVAL (not UTF-8). */
static int widen(const char *s, wchar_t **out) {
  if ((*out = pk__wide(s)) != NULL)
    return 0;
  return MultiByteToWideChar(CP_UTF8, MB_ERR_INVALID_CHARS, s, -1, NULL, 0) > 0
             ? PK_ENOMEM
             : PK_EINVAL;
}

static int open_file(const char *path, bool write, const char *what,
                     HANDLE *out, char **msg) {
  SECURITY_ATTRIBUTES sa = {sizeof(sa), NULL, TRUE};
  wchar_t *w;
  int rc = widen(path, &w);
  if (rc == PK_ENOMEM)
    return rc;
  HANDLE h = INVALID_HANDLE_VALUE;
  DWORD err = ERROR_INVALID_NAME;
  if (w != NULL) {
    h = CreateFileW(w, write ? GENERIC_WRITE : GENERIC_READ,
                    FILE_SHARE_READ | FILE_SHARE_WRITE | FILE_SHARE_DELETE, &sa,
                    write ? CREATE_ALWAYS : OPEN_EXISTING,
                    FILE_ATTRIBUTE_NORMAL, NULL);
    err = GetLastError();
    pk__free(w);
  }
  if (h == INVALID_HANDLE_VALUE) {
    char buf[256];
    *msg = pk__sprintf("cannot open %s %s: %s", what, path,
                       pk__win_msg(err, buf, sizeof(buf)));
    *out = NULL;
    return win_rc(err);
  }
  *out = h;
  return 0;
}

/* A pipe: ours (overlapped, for libuv) and the child's (inheritable). */
static int make_pipe(bool child_reads, int *parent, HANDLE *child, char **msg) {
  uv_file fds[2];
  int rc = child_reads ? uv_pipe(fds, 0, UV_NONBLOCK_PIPE)
                       : uv_pipe(fds, UV_NONBLOCK_PIPE, 0);
  if (rc != 0) {
    *msg = pk__sprintf("cannot create a pipe: %s", uv_strerror(rc));
    return rc == UV_EMFILE ? PK_ELIMIT : PK_EIO;
  }
  int mine = child_reads ? fds[1] : fds[0];
  int theirs = child_reads ? fds[0] : fds[1];
  rc = inheritable((HANDLE)uv_get_osfhandle(theirs), child, "pipe", msg);
  pk__fd_close(theirs);
  if (rc != 0) {
    pk__fd_close(mine);
    return rc;
  }
  *parent = mine;
  return 0;
}

/* This process's standard handle n, or the null device when it has none
 * (a GUI program, or a closed one). */
static int inherit_std(DWORD which, bool write, HANDLE *out, char **msg) {
  HANDLE h = GetStdHandle(which);
  if (h == NULL || h == INVALID_HANDLE_VALUE)
    return open_file("NUL", write, "null device", out, msg);
  return inheritable(h, out, "standard handle", msg);
}

static int plan_stdin(const pk_cmd *cmd, hplan *p, char **msg) {
  switch (pk_cmd_stdin_mode(cmd)) {
  case PK_STDIN_INHERIT:
    return inherit_std(STD_INPUT_HANDLE, false, &p->child[0], msg);
  case PK_STDIN_FILE:
    return open_file(pk_cmd_stdin_path(cmd), false, "stdin file", &p->child[0],
                     msg);
  case PK_STDIN_BYTES:
    return make_pipe(true, &p->parent[0], &p->child[0], msg);
  default:
    return open_file("NUL", false, "stdin", &p->child[0], msg);
  }
}

static int plan_output(const pk_cmd *cmd, int s, hplan *p, char **msg) {
  const char *path;
  switch (pk_cmd_output_mode(cmd, (pk_stream)s, &path)) {
  case PK_OUT_INHERIT:
    return inherit_std(s == 1 ? STD_OUTPUT_HANDLE : STD_ERROR_HANDLE, true,
                       &p->child[s], msg);
  case PK_OUT_NULL:
    return open_file("NUL", true, "output", &p->child[s], msg);
  case PK_OUT_FILE:
    return open_file(path, true, s == 1 ? "stdout file" : "stderr file",
                     &p->child[s], msg);
  default:
    return make_pipe(false, &p->parent[s], &p->child[s], msg);
  }
}

static int plan_handles(const pk_cmd *cmd, hplan *p, char **msg) {
  for (int i = 0; i < 3; i++) {
    p->child[i] = NULL;
    p->parent[i] = -1;
  }
  int rc = plan_stdin(cmd, p, msg);
  for (int s = PK_STDOUT; rc == 0 && s <= PK_STDERR; s++)
    rc = plan_output(cmd, s, p, msg);
  if (rc != 0)
    hplan_close(p, true);
  return rc;
}

/* What CreateProcessW's error means, as pk's code and an errno (for the
 * result and cassettes: the same numbers as a POSIX host's). */
static int create_error(DWORD err, bool have_cwd, const char **stage,
                        int *os_errno) {
  *stage = "exec";
  switch (err) {
  case ERROR_FILE_NOT_FOUND:
  case ERROR_PATH_NOT_FOUND:
    *os_errno = ENOENT;
    return PK_ENOENT;
  case ERROR_DIRECTORY:
    if (have_cwd) {
      *stage = "chdir";
      *os_errno = ENOENT;
      return PK_EBADCWD;
    }
    *os_errno = ENOENT;
    return PK_ENOENT;
  case ERROR_ACCESS_DENIED:
    *os_errno = EACCES;
    return PK_EACCES;
  case ERROR_BAD_EXE_FORMAT:
  case ERROR_EXE_MACHINE_TYPE_MISMATCH:
  case ERROR_BAD_FORMAT:
    *os_errno = ENOEXEC;
    return PK_ENOEXEC;
  default:
    *stage = "clone";
    *os_errno = win_rc(err) == PK_ELIMIT ? ENOMEM : EIO;
    return win_rc(err) == PK_ELIMIT ? PK_ELIMIT : PK_ESPAWN;
  }
}

HANDLE pk__win_job_new(DWORD *err) {
  HANDLE job = CreateJobObjectW(NULL, NULL);
  if (job == NULL) {
    *err = GetLastError();
    return NULL;
  }
  JOBOBJECT_EXTENDED_LIMIT_INFORMATION li;
  memset(&li, 0, sizeof(li));
  li.BasicLimitInformation.LimitFlags =
      JOB_OBJECT_LIMIT_KILL_ON_JOB_CLOSE |
      JOB_OBJECT_LIMIT_DIE_ON_UNHANDLED_EXCEPTION;
  if (!SetInformationJobObject(job, JobObjectExtendedLimitInformation, &li,
                               sizeof(li))) {
    *err = GetLastError();
    CloseHandle(job);
    return NULL;
  }
  return job;
}

/* The environment block: NULL (inherit this process's as it is) when the
 * command changes nothing, else built from the UTF-16 environment. */
static int build_envblock(const pk_cmd *cmd, wchar_t **out) {
  *out = NULL;
  if (pk_cmd_env_count(cmd) == 0 && !cmd->env_clear && cmd->ninherit == 0)
    return 0;
  wchar_t *strings = GetEnvironmentStringsW();
  size_t n = 0;
  for (const wchar_t *p = strings; p != NULL && *p != L'\0'; p += wcslen(p) + 1)
    n++;
  char **base = pk__calloc(n + 1, sizeof(char *));
  int rc = base != NULL ? 0 : PK_ENOMEM;
  size_t i = 0;
  for (const wchar_t *p = strings; rc == 0 && p != NULL && *p != L'\0';
       p += wcslen(p) + 1) {
    int len = WideCharToMultiByte(CP_UTF8, 0, p, -1, NULL, 0, NULL, NULL);
    if (len <= 0)
      continue; /* not convertible: left out */
    if ((base[i] = pk__malloc((size_t)len)) == NULL)
      rc = PK_ENOMEM;
    else
      WideCharToMultiByte(CP_UTF8, 0, p, -1, base[i++], len, NULL, NULL);
  }
  if (strings != NULL)
    FreeEnvironmentStringsW(strings);
  char **envp = NULL;
  if (rc == 0)
    rc = pk__cmd_build_env_from(cmd, base, true, &envp);
  if (rc == 0)
    rc = pk__win_envblock(envp, out);
  pk__strv_free(base);
  pk__strv_free(envp);
  return rc;
}

static int build_cmdline(const pk_cmd *cmd, wchar_t **out) {
  const char **argv = pk__calloc(cmd->nargs + 1, sizeof(char *));
  if (argv == NULL)
    return PK_ENOMEM;
  argv[0] = cmd->program;
  for (size_t i = 0; i < cmd->nargs; i++)
    argv[i + 1] = cmd->args[i];
  int rc = pk__win_cmdline(argv, cmd->nargs + 1, out);
  pk__free(argv);
  return rc;
}

/* The options Windows has no equivalent for. */
static const char *posix_only(const pk_cmd *cmd) {
  if (cmd->set_user)
    return "uid/gid";
  if (cmd->setsid)
    return "setsid";
  if (cmd->set_umask)
    return "umask";
  if (cmd->foreground)
    return "foreground (terminal job control)";
  return NULL;
}

/* 0 when path is a directory, PK_EBADCWD when not, or PK_ENOMEM. */
static int check_dir(const char *path) {
  wchar_t *w;
  int rc = widen(path, &w);
  if (rc != 0)
    return rc == PK_ENOMEM ? rc : PK_EBADCWD;
  DWORD a = GetFileAttributesW(w);
  pk__free(w);
  return a != INVALID_FILE_ATTRIBUTES && (a & FILE_ATTRIBUTE_DIRECTORY)
             ? 0
             : PK_EBADCWD;
}

typedef struct spawn_in {
  wchar_t *app, *cmdline, *env, *cwd;
} spawn_in;

static void spawn_in_free(spawn_in *in) {
  pk__free(in->app);
  pk__free(in->cmdline);
  pk__free(in->env);
  pk__free(in->cwd);
}

/* Everything CreateProcessW needs, from the command. */
static int prepare(const pk_cmd *cmd, spawn_in *in, pk_exit_info *fail,
                   char **msg) {
  char *path = NULL;
  int rc = pk__resolve_program(cmd->program, pk__win_path_env(cmd), cmd->cwd,
                               &path, msg);
  if (rc != 0) {
    fail->stage = "lookup";
    fail->os_errno = rc == PK_EACCES ? EACCES : ENOENT;
    return rc;
  }
  if (cmd->cwd != NULL && (rc = check_dir(cmd->cwd)) != 0) {
    pk__free(path);
    if (rc == PK_ENOMEM)
      return rc;
    fail->stage = "chdir";
    fail->os_errno = ENOENT;
    *msg = pk__sprintf("%s: working directory %s is not usable (chdir: no "
                       "such directory)",
                       cmd->program, cmd->cwd);
    return PK_EBADCWD;
  }
  rc = widen(path, &in->app);
  pk__free(path);
  if (rc == 0 && cmd->cwd != NULL)
    rc = widen(cmd->cwd, &in->cwd);
  if (rc != 0)
    return rc;
  if ((rc = build_cmdline(cmd, &in->cmdline)) != 0) {
    fail->stage = "exec";
    if (rc == PK_EINVAL)
      *msg = pk__sprintf("%s: the command line is not valid for Windows "
                         "(longer than %d UTF-16 units, or not UTF-8)",
                         cmd->program, PK__WIN_CMDLINE_MAX - 1);
    return rc;
  }
  if ((rc = build_envblock(cmd, &in->env)) != 0) {
    fail->stage = "exec";
    if (rc == PK_EINVAL)
      *msg = pk__sprintf("%s: the environment is not valid for Windows (an "
                         "empty name, or not UTF-8)",
                         cmd->program);
  }
  return rc;
}

/* The suspended child into its job (nested in its group's), then
 * resumed (or left for the group's resume). */
static int admit(win_exec *e, const PROCESS_INFORMATION *pi, pk_exit_info *fail,
                 char **msg) {
  DWORD err = 0;
  if (e->grp != NULL)
    err = pk__wgroup_admit(e->grp, pi->hProcess, pi->hThread, pi->dwThreadId,
                           e->job);
  else if (!AssignProcessToJobObject(e->job, pi->hProcess))
    err = GetLastError();
  else
    ResumeThread(pi->hThread);
  if (err == 0)
    return 0;
  TerminateProcess(pi->hProcess, 1);
  char buf[256];
  fail->stage = "job";
  if (err == ERROR_NOT_ENOUGH_QUOTA) { /* the group's max_processes */
    fail->os_errno = EAGAIN;
    *msg = pk__sprintf("%s: the group's job refused the child: %s",
                       e->cmd->program, pk__win_msg(err, buf, sizeof(buf)));
    return PK_ELIMIT;
  }
  fail->os_errno = EPERM;
  *msg = pk__sprintf("%s: cannot put the child into its job: %s",
                     e->cmd->program, pk__win_msg(err, buf, sizeof(buf)));
  return PK_ESPAWN;
}

/* CreateProcessW, suspended, with exactly the three handles inherited;
 * into the job; resumed. */
static int create_in_job(win_exec *e, const spawn_in *in, hplan *p,
                         pk_exit_info *fail, char **msg) {
  const pk_cmd *cmd = e->cmd;
  DWORD err = 0;
  char buf[256];
  if ((e->job = pk__win_job_new(&err)) == NULL) {
    fail->stage = "job";
    fail->os_errno = win_rc(err) == PK_ELIMIT ? ENOMEM : EIO;
    *msg = pk__sprintf("%s: cannot create a job object: %s", cmd->program,
                       pk__win_msg(err, buf, sizeof(buf)));
    return win_rc(err) == PK_ELIMIT ? PK_ELIMIT : PK_ESPAWN;
  }
  SIZE_T size = 0;
  InitializeProcThreadAttributeList(NULL, 1, 0, &size);
  LPPROC_THREAD_ATTRIBUTE_LIST attrs = pk__malloc(size);
  if (attrs == NULL)
    return PK_ENOMEM;
  BOOL ok = InitializeProcThreadAttributeList(attrs, 1, 0, &size);
  if (ok) {
    ok = UpdateProcThreadAttribute(attrs, 0, PROC_THREAD_ATTRIBUTE_HANDLE_LIST,
                                   p->child, sizeof(p->child), NULL, NULL);
    STARTUPINFOEXW si;
    memset(&si, 0, sizeof(si));
    si.StartupInfo.cb = sizeof(si);
    si.StartupInfo.dwFlags = STARTF_USESTDHANDLES;
    si.StartupInfo.hStdInput = p->child[0];
    si.StartupInfo.hStdOutput = p->child[1];
    si.StartupInfo.hStdError = p->child[2];
    si.lpAttributeList = attrs;
    DWORD flags = CREATE_SUSPENDED | CREATE_UNICODE_ENVIRONMENT |
                  EXTENDED_STARTUPINFO_PRESENT |
                  (pk_cmd_create_no_window(cmd) ? CREATE_NO_WINDOW : 0);
    PROCESS_INFORMATION pi;
    if (ok)
      ok = CreateProcessW(in->app, in->cmdline, NULL, NULL, TRUE, flags,
                          in->env, in->cwd, &si.StartupInfo, &pi);
    err = ok ? 0 : GetLastError();
    DeleteProcThreadAttributeList(attrs);
    if (ok) {
      e->proc = pi.hProcess;
      e->base.pid = (int)pi.dwProcessId;
      int rc = admit(e, &pi, fail, msg);
      CloseHandle(pi.hThread);
      if (rc != 0) {
        pk__free(attrs);
        return rc;
      }
    }
  } else {
    err = GetLastError();
  }
  pk__free(attrs);
  if (err == 0)
    return 0;
  int rc = create_error(err, cmd->cwd != NULL, &fail->stage, &fail->os_errno);
  *msg = rc == PK_EBADCWD
             ? pk__sprintf("%s: working directory %s is not usable (%s: %s)",
                           cmd->program, cmd->cwd, fail->stage,
                           pk__win_msg(err, buf, sizeof(buf)))
             : pk__sprintf("%s: %s (%s: %s)", cmd->program, pk_strerror(rc),
                           fail->stage, pk__win_msg(err, buf, sizeof(buf)));
  return rc;
}

static int watch_output(win_exec *e, hplan *p) {
  for (int s = PK_STDOUT; s <= PK_STDERR; s++) {
    if (p->parent[s] < 0)
      continue;
    int rc = uv_pipe_init(e->loop, &e->out[s], 0);
    if (rc != 0)
      return rc;
    e->out[s].data = e;
    e->out_open[s] = true;
    if ((rc = uv_pipe_open(&e->out[s], p->parent[s])) != 0)
      return rc;
    p->parent[s] = -1; /* owned by the pipe handle now */
    if ((rc = uv_read_start((uv_stream_t *)&e->out[s], on_alloc, on_read)))
      return rc;
  }
  return 0;
}

static int watch_exit(win_exec *e) {
  int rc = uv_async_init(e->loop, &e->exit_async, on_exit_async);
  if (rc != 0)
    return rc;
  e->have_async = true;
  e->exit_async.data = e;
  if (!RegisterWaitForSingleObject(&e->wait, e->proc, on_exit_signalled, e,
                                   INFINITE, WT_EXECUTEONLYONCE)) {
    e->wait = NULL;
    return UV_EIO;
  }
  return 0;
}

/* The whole stdin in one write (libuv keeps the buffers' list; the bytes
 * are the command's, which outlives the run). */
static int start_stdin(win_exec *e, hplan *p) {
  if (p->parent[0] < 0)
    return 0;
  int rc = uv_pipe_init(e->loop, &e->in, 0);
  if (rc != 0)
    return rc;
  e->in.data = e;
  e->in_open = true;
  if ((rc = uv_pipe_open(&e->in, p->parent[0])) != 0)
    return rc;
  p->parent[0] = -1;
  size_t len;
  const char *data = pk_cmd_stdin_data(e->cmd, &len);
  if (len == 0) {
    close_in(e);
    return 0;
  }
  const size_t chunk = (size_t)1 << 30;
  size_t n = (len + chunk - 1) / chunk;
  uv_buf_t *bufs = pk__calloc(n, sizeof(uv_buf_t));
  if (bufs == NULL)
    return UV_ENOMEM;
  for (size_t i = 0; i < n; i++) {
    size_t off = i * chunk, m = len - off < chunk ? len - off : chunk;
    bufs[i] = uv_buf_init((char *)data + off, (unsigned)m);
  }
  e->in_req.data = e;
  rc = uv_write(&e->in_req, (uv_stream_t *)&e->in, bufs, (unsigned)n,
                on_stdin_written);
  pk__free(bufs);
  return rc;
}

static void release_handles(win_exec *e) {
  e->released = true;
  for (int s = PK_STDOUT; s <= PK_STDERR; s++)
    close_out(e, s);
  close_in(e);
  stop_exit_wait(e);
  if (e->have_async)
    close_handle(e, &e->exit_async);
  close_handle(e, &e->drain);
  exec_maybe_free(e);
}

/* The child's handles are inheritable from their making to their close:
 * pk's own spawns take turns over that window, so one run's pipe never
 * reaches another run's child. (Another library's CreateProcess with
 * inherited handles and no handle list, in another thread, still could
 * pick them up: Windows has no way to close that window.) */
static SRWLOCK spawn_lock = SRWLOCK_INIT;

static int launch(win_exec *e, pk_exit_info *fail, char **msg) {
  const pk_cmd *cmd = e->cmd;
  spawn_in in = {NULL, NULL, NULL, NULL};
  hplan p;
  int rc = prepare(cmd, &in, fail, msg);
  if (rc == 0) {
    AcquireSRWLockExclusive(&spawn_lock);
    if ((rc = plan_handles(cmd, &p, msg)) != 0)
      fail->stage = "fds";
    if (rc == 0) {
      rc = create_in_job(e, &in, &p, fail, msg);
      hplan_close(&p, rc != 0); /* the child has its copies */
    }
    ReleaseSRWLockExclusive(&spawn_lock);
  }
  spawn_in_free(&in);
  if (rc != 0) {
    teardown(e);
    return rc;
  }
  if ((rc = watch_output(e, &p)) == 0 && (rc = watch_exit(e)) == 0)
    rc = start_stdin(e, &p);
  if (rc != 0) {
    hplan_close(&p, true);
    teardown(e);
    if (rc == UV_ENOMEM)
      return PK_ENOMEM;
    *msg = pk__sprintf("%s: cannot watch the child: %s", cmd->program,
                       uv_strerror(rc));
    fail->stage = "watch";
    return PK_ESPAWN;
  }
  return 0;
}

static void fail_message(int rc, char *msg, pk_exit_info *fail) {
  static __thread char msgbuf[1024];
  snprintf(msgbuf, sizeof(msgbuf), "%s", msg ? msg : pk_strerror(rc));
  pk__free(msg);
  fail->errmsg = msgbuf;
}

static int win_start(pk_runner *self, const pk_cmd *cmd, uv_loop_t *loop,
                     pk_events *ev, pk_exec **out, pk_exit_info *fail) {
  win_runner *wr = (win_runner *)self;
  pk_mechanism want =
      cmd->mechanism != PK_MECH_AUTO ? cmd->mechanism : wr->opts.mechanism;
  fail->mechanism = PK_MECH_JOB_OBJECT;
  if (want != PK_MECH_AUTO && want != PK_MECH_JOB_OBJECT) {
    fail->errmsg = "containment mechanism not available on this host (Windows "
                   "has job_object only)";
    fail->stage = "group";
    return PK_EUNSUPPORTED;
  }
  const char *opt = posix_only(cmd);
  if (opt != NULL) {
    char *msg = pk__sprintf("%s: %s is POSIX only: not supported on Windows",
                            cmd->program, opt);
    fail_message(PK_EUNSUPPORTED, msg, fail);
    fail->stage = "spawn";
    return PK_EUNSUPPORTED;
  }
  win_exec *e = pk__calloc(1, sizeof(*e));
  char *rbuf = pk__malloc(READ_BUF);
  if (e == NULL || rbuf == NULL) {
    pk__free(e);
    pk__free(rbuf);
    return PK_ENOMEM;
  }
  e->base.runner = self;
  e->loop = loop;
  e->ev = ev;
  e->cmd = cmd;
  e->rbuf = rbuf;
  e->cpu_us = e->peak = -1;
  if ((e->grp = wr->grp) != NULL)
    pk__wgroup_ref(e->grp);
  uv_timer_init(loop, &e->drain);
  e->drain.data = e;
  char *msg = NULL;
  int rc = launch(e, fail, &msg);
  if (rc != 0) {
    fail_message(rc, msg, fail);
    release_handles(e);
    return rc;
  }
  *out = &e->base;
  return 0;
}

static int win_signal(pk_exec *base, int sig) {
  win_exec *e = (win_exec *)base;
  if (sig != 0 && sig != PK_SIGKILL)
    return PK_EUNSUPPORTED; /* Windows has no signals */
  if (e->finished)
    return PK_ESRCH;
  if (check_exit(e)) {
    if (sig == PK_SIGKILL && e->job != NULL) /* its descendants must go */
      TerminateJobObject(e->job, 1);
    return PK_ESRCH;
  }
  if (sig == 0)
    return 0;
  if (!TerminateJobObject(e->job, 1))
    return GetLastError() == ERROR_ACCESS_DENIED ? PK_EPERM : PK_EIO;
  return 0;
}

static void win_release(pk_exec *base) {
  win_exec *e = (win_exec *)base;
  if (!e->finished) {
    uv_timer_stop(&e->drain);
    teardown(e);
    e->finished = true;
  }
  release_handles(e);
}

static int win_pause(pk_exec *base, bool on) {
  win_exec *e = (win_exec *)base;
  if (e->finished)
    return PK_ESRCH;
  e->paused = on;
  for (int s = PK_STDOUT; s <= PK_STDERR; s++) {
    if (!e->out_open[s])
      continue;
    uv_stream_t *h = (uv_stream_t *)&e->out[s];
    int rc = on ? uv_read_stop(h) : uv_read_start(h, on_alloc, on_read);
    if (rc != 0)
      return PK_EIO;
  }
  if (on)
    uv_timer_stop(&e->drain); /* a slow consumer is not a held pipe */
  else
    finish_when_done(e, false);
  return 0;
}

static int win_close_output(pk_exec *base, pk_stream s) {
  win_exec *e = (win_exec *)base;
  if (e->finished)
    return PK_ESRCH;
  close_out(e, (int)s);
  finish_when_done(e, false);
  return 0;
}

static void win_destroy(pk_runner *self) {
  if (((win_runner *)self)->grp == NULL) /* a group frees its own */
    pk__free(self);
}

static const pk_runner_vtable win_vtable = {
    .name = "real",
    .start = win_start,
    .signal = win_signal,
    .release = win_release,
    .pause = win_pause,
    .close_output = win_close_output,
    .destroy = win_destroy,
};

int pk_real_runner_new(const pk_real_opts *opts, pk_runner **out) {
  if (out == NULL)
    return PK_EINVAL;
  *out = NULL;
  pk_mechanism m = opts != NULL ? opts->mechanism : PK_MECH_AUTO;
  if (m != PK_MECH_AUTO && m != PK_MECH_JOB_OBJECT)
    return PK_EUNSUPPORTED;
  int rc = pk__host_check();
  if (rc != 0)
    return rc;
  win_runner *r = pk__calloc(1, sizeof(*r));
  if (r == NULL)
    return PK_ENOMEM;
  r->base.vt = &win_vtable;
  if (opts != NULL)
    r->opts = *opts; /* kill_on_owner_death: every job dies with us */
  *out = &r->base;
  return 0;
}

int pk__win_runner_group(pk_group *g, pk_runner **out) {
  int rc = pk__host_check();
  if (rc != 0)
    return rc;
  win_runner *r = pk__calloc(1, sizeof(*r));
  if (r == NULL)
    return PK_ENOMEM;
  r->base.vt = &win_vtable;
  r->opts.mechanism = PK_MECH_JOB_OBJECT;
  r->grp = g;
  *out = &r->base;
  return 0;
}

void pk__win_runner_group_free(pk_runner *r) { pk__free(r); }
