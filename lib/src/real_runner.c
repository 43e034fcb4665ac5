/* The real runner: each run spawned by pk's own spawner into a fresh
 * private group; output, exit and stdin driven by libuv; the whole tree
 * torn down when the run ends, times out or is released. */
#include "foreground.h"
#include "group.h"
#include "spawner.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/wait.h>
#include <unistd.h>

#define PK__READ_BUF (64 * 1024)
#define PK__STDIN_INLINE (64 * 1024) /* written before spawn: never blocks */
#define PK__TEARDOWN_MS 5000

typedef struct real_runner {
  pk_runner base;
  pk_real_opts opts;
  pk_group *grp; /* a shared group's runner: every run joins it */
} real_runner;

typedef struct real_exec {
  pk_exec base;
  uv_loop_t *loop;
  pk_events *ev;
  const pk_cmd *cmd; /* borrowed: the core's copy outlives us */
  pk__group group;
  pk_mechanism mech;
  /* a run of a shared group (a reference, dropped when freed), and its
   * start while the group is suspended: deferred until resume, with the
   * signals sent meanwhile kept pending as a frozen process's are */
  pk_group *grp;
  pk__grp_wait wait;
  bool deferred;
  sigset_t pending;
  pk__fg fg; /* a foreground run: the terminal's job control */
  int pidfd;
  const char *method;
  char msg[512]; /* errmsg of a lost status */
  unsigned disable;
  /* exit */
  uv_poll_t exit_poll;   /* on the pidfd */
  uv_timer_t exit_timer; /* no pidfd: a poll backing off to 32 ms */
  uint64_t exit_every;
  bool have_exit_poll, have_exit_timer;
  bool exited, reaped;
  bool have_ru; /* ru: the reaped child's resource use */
  struct rusage ru;
  int64_t tree_cpu_us, tree_peak; /* the cgroup's accounting, -1 unknown */
  bool lost; /* someone else reaped the child and the status is unknown */
  pk_outcome outcome;
  int code, signo;
  /* output */
  uv_pipe_t out[3];
  bool out_open[3];
  bool out_big[3]; /* pipe enlarged for a heavy writer */
  char *rbuf;
  uv_timer_t drain;
  int64_t drain_extra_ms; /* drain extended while data was still waiting */
  /* stdin */
  int in_fd;
  uv_poll_t in_poll;
  bool have_in_poll;
  size_t in_off;
  bool paused; /* flow control: not reading the pipes */
  /* lifecycle */
  bool finished, released;
  bool torn_down; /* teardown ran: the tree is gone and reaped */
  int closing;
} real_exec;

/* ------------------------------------------------------------ teardown */

static void exec_maybe_free(real_exec *e) {
  if (e->released && e->closing == 0) {
    if (e->grp != NULL)
      pk__grp_unref(e->grp); /* after the run's leaf is gone */
    pk__free(e->rbuf);
    pk__free(e);
  }
}

static void on_closed(uv_handle_t *h) {
  real_exec *e = h->data;
  e->closing--;
  exec_maybe_free(e);
}

static void close_handle(real_exec *e, void *h) {
  uv_handle_t *hh = h;
  if (uv_is_closing(hh))
    return;
  hh->data = e;
  e->closing++;
  uv_close(hh, on_closed);
}

static void close_out(real_exec *e, int s) {
  if (!e->out_open[s])
    return;
  e->out_open[s] = false;
  close_handle(e, &e->out[s]);
}

static void stop_stdin(real_exec *e) {
  if (e->have_in_poll) {
    uv_poll_stop(&e->in_poll);
    close_handle(e, &e->in_poll);
    e->have_in_poll = false;
  }
  if (e->in_fd >= 0)
    close(e->in_fd);
  e->in_fd = -1;
}

static void set_status(real_exec *e, bool exited, int value) {
  e->exited = true;
  e->outcome = exited ? PK_OUTCOME_EXITED : PK_OUTCOME_SIGNALLED;
  if (exited)
    e->code = value;
  else
    e->signo = value;
  if (e->have_exit_poll)
    uv_poll_stop(&e->exit_poll);
  if (e->have_exit_timer)
    uv_timer_stop(&e->exit_timer);
}

/* Someone else reaped our child: the kernel (the host ignores SIGCHLD)
 * or a host's waitpid(-1). The pidfd we held may still know the status;
 * else the run ends with PK_ESTATUS_LOST, never a spin. */
static void status_taken(real_exec *e) {
  int st;
  e->reaped = true;
  pk__leader_remove(e->base.pid);
  if (pk__pidfd_exit_status(e->pidfd, &st) == 0) {
    set_status(e, WIFEXITED(st),
               WIFEXITED(st) ? WEXITSTATUS(st) : WTERMSIG(st));
    return;
  }
  set_status(e, true, 0);
  e->outcome = PK_OUTCOME_NONE;
  e->lost = true;
}

/* Record the exit status without reaping (the zombie keeps the pid and
 * process group reserved until we are done with the tree). */
static bool check_exit(real_exec *e) {
  if (e->exited)
    return true;
  siginfo_t si;
  int rc =
      pk__waitid(e->base.pid, e->pidfd, &si, WEXITED | WNOHANG | WNOWAIT, NULL);
  if (rc != 0 && errno == ECHILD)
    status_taken(e);
  else if (rc == 0 && si.si_pid != 0)
    set_status(e, si.si_code == CLD_EXITED, si.si_status);
  return e->exited;
}

static void reap(real_exec *e) {
  if (e->reaped || e->base.pid <= 0)
    return;
  pk__leader_remove(e->base.pid);
  siginfo_t si;
  e->have_ru = pk__waitid(e->base.pid, e->pidfd, &si, WEXITED, &e->ru) == 0 &&
               si.si_pid != 0;
  e->reaped = true;
}

/* Read what is left in a pipe whose writers are gone, then close it. */
static void drain_rest(real_exec *e, int s) {
  uv_os_fd_t fd;
  if (!e->out_open[s] || uv_fileno((uv_handle_t *)&e->out[s], &fd) != 0)
    return;
  /* Released from an output callback: the pipe is closed (its number
   * may be reused already) and nothing more may reach the callbacks. */
  for (int i = 0; i < 64 && !e->released; i++) {
    ssize_t n = read(fd, e->rbuf, PK__READ_BUF);
    if (n <= 0)
      break;
    pk_events_output(e->ev, (pk_stream)s, e->rbuf, (size_t)n);
  }
  close_out(e, s);
}

/* Kill whatever is left of the tree, reap, release OS resources. */
static void teardown(real_exec *e) {
  /* Once only: a second pass (a release from an output callback while
   * finish_run reads what is left) would signal a process group whose
   * leader is reaped, and whose id may be someone else's by then. */
  if (e->torn_down)
    return;
  e->torn_down = true;
  if (e->grp != NULL) /* before the reap frees the pgid for reuse */
    pk__grp_untrack(e->grp, e);
  if (e->group.mech == PK_MECH_PROCESS_GROUP) {
    /* SIGKILL the group while the unreaped leader still reserves the
     * pgid, then reap, then wait out members that are still dying. */
    bool alive = !check_exit(e);
    pk__pgroup_kill(&e->group, alive);
    if (alive)
      kill(e->base.pid, SIGKILL);
    reap(e);
    pk__group_wait_gone(&e->group, PK__TEARDOWN_MS);
  } else {
    if (!pk__group_empty(&e->group))
      pk__group_kill_all(&e->group, PK__TEARDOWN_MS);
    /* A direct child that moved itself out of its leaf (root may write
     * another cgroup's cgroup.procs) is still ours: never wait on it. */
    if (e->base.pid > 0 && !check_exit(e))
      kill(e->base.pid, SIGKILL);
    reap(e);
    /* The leaf's accounting covers the whole tree; read before rmdir. */
    pk__cgroup_usage(&e->group, &e->tree_cpu_us, &e->tree_peak);
  }
  pk__fg_end(&e->fg); /* the terminal goes back once the tree is gone */
  stop_stdin(e);
  pk__group_destroy(&e->group);
  /* Close the watcher before its fd: libuv would otherwise unregister
   * the fd number later, when it may belong to someone else. */
  if (e->have_exit_poll) {
    close_handle(e, &e->exit_poll);
    e->have_exit_poll = false;
  }
  if (e->pidfd >= 0)
    close(e->pidfd);
  e->pidfd = -1;
}

/* The fd of an open capture pipe, or -1. */
static int out_fd(real_exec *e, int s) {
  uv_os_fd_t fd;
  if (!e->out_open[s] || uv_fileno((uv_handle_t *)&e->out[s], &fd) != 0)
    return -1;
  return fd;
}

/* Someone (a grandchild) still holds the write end: no EOF is coming. A
 * pipe whose writers are all gone polls POLLHUP even with bytes left. */
static bool pipe_held(real_exec *e, int s) {
  struct pollfd p = {.fd = out_fd(e, s), .events = POLLIN};
  return p.fd >= 0 && poll(&p, 1, 0) >= 0 && !(p.revents & POLLHUP);
}

static bool pipe_has_data(real_exec *e, int s) {
  int fd = out_fd(e, s), n = 0;
  return fd >= 0 && ioctl(fd, FIONREAD, &n) == 0 && n > 0;
}

/* Resource use: the cgroup's (whole tree) where it was read, else the
 * reaped child's rusage (it and the descendants it waited for). */
static void set_usage(const real_exec *e, pk_exit_info *info) {
  if (e->tree_cpu_us >= 0) {
    info->have_cpu = true;
    info->cpu_us = e->tree_cpu_us;
    info->cpu_scope = "tree";
  } else if (e->have_ru) {
    info->have_cpu = true;
    info->cpu_us =
        (int64_t)e->ru.ru_utime.tv_sec * 1000000 + e->ru.ru_utime.tv_usec +
        (int64_t)e->ru.ru_stime.tv_sec * 1000000 + e->ru.ru_stime.tv_usec;
    info->cpu_scope = "child";
  }
  if (e->tree_peak >= 0) {
    info->have_memory = true;
    info->peak_memory = e->tree_peak;
    info->memory_scope = "tree";
  } else if (e->have_ru) {
    info->have_memory = true;
    info->peak_memory = (int64_t)e->ru.ru_maxrss * 1024; /* KiB on Linux */
    info->memory_scope = "child";
  }
}

static void finish_run(real_exec *e) {
  uv_timer_stop(&e->drain);
  /* Incomplete: a writer still held a pipe when pk stopped waiting (a
   * pipe whose writers are gone is read to its end below). */
  bool incomplete = pipe_held(e, PK_STDOUT) || pipe_held(e, PK_STDERR);
  teardown(e);
  drain_rest(e, PK_STDOUT);
  drain_rest(e, PK_STDERR);
  e->finished = true;
  if (e->released) /* freed from an output callback: no exit event */
    return;
  pk_exit_info info;
  memset(&info, 0, sizeof(info));
  info.outcome = e->outcome;
  info.code = e->code;
  info.signal = e->signo;
  info.output_incomplete = incomplete;
  info.mechanism = e->group.mech;
  info.spawn_method = e->method;
  info.pid = e->base.pid;
  info.escapees = e->group.esc_found;
  set_usage(e, &info);
  if (e->lost) {
    info.error = PK_ESTATUS_LOST;
    info.stage = "wait";
    info.os_errno = ECHILD;
    snprintf(e->msg, sizeof(e->msg),
             "%s: its exit status was reaped by someone else (the host "
             "ignores SIGCHLD or reaps with waitpid(-1)) and this kernel "
             "cannot recover it (PIDFD_INFO_EXIT needs Linux 6.15 and a "
             "pidfd)",
             pk_cmd_program(e->cmd));
    info.errmsg = e->msg;
  }
  e->base.pid = 0;
  pk_events_exit(e->ev, &info); /* last: the user may act on it */
}

static void on_drain(uv_timer_t *t) {
  real_exec *e = t->data;
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
static void finish_when_done(real_exec *e, bool now) {
  if (e->finished || e->paused || !check_exit(e))
    return;
  if (pk__drain_arm(&e->drain, on_drain, e->cmd,
                    e->out_open[PK_STDOUT] || e->out_open[PK_STDERR], now))
    finish_run(e);
}

static void maybe_finish(real_exec *e) { finish_when_done(e, true); }

/* --------------------------------------------------------- loop events */

static void on_exit_poll(uv_poll_t *h, int status, int events) {
  (void)status, (void)events;
  maybe_finish(h->data);
}

/* Without a pidfd nothing signals the exit (the child's exit signal is
 * 0, see spawn_linux.c): poll, quickly at first, then every 32 ms. */
static void on_exit_timer(uv_timer_t *t) {
  real_exec *e = t->data;
  maybe_finish(e);
  if (!e->exited) {
    e->exit_every = e->exit_every < 32 ? e->exit_every * 2 : 32;
    uv_timer_start(&e->exit_timer, on_exit_timer, e->exit_every, 0);
  }
}

static void on_alloc(uv_handle_t *h, size_t hint, uv_buf_t *buf) {
  (void)hint;
  real_exec *e = h->data;
  pk_stream s = h == (uv_handle_t *)&e->out[PK_STDOUT] ? PK_STDOUT : PK_STDERR;
  char *lent;
  size_t n = pk_events_buffer(e->ev, s, &lent); /* read into the capture */
  *buf = n > 0 ? uv_buf_init(lent, (unsigned)(n > UINT_MAX ? UINT_MAX : n))
               : uv_buf_init(e->rbuf, PK__READ_BUF);
}

static void on_read(uv_stream_t *h, ssize_t n, const uv_buf_t *buf) {
  real_exec *e = h->data;
  int s = h == (uv_stream_t *)&e->out[PK_STDOUT] ? PK_STDOUT : PK_STDERR;
  if (n > 0) {
    if (n >= 16 * 1024 && !e->out_big[s]) { /* a heavy writer: 1 MiB pipe */
      uv_os_fd_t fd;
      if (uv_fileno((uv_handle_t *)h, &fd) == 0)
        fcntl(fd, F_SETPIPE_SZ, 1 << 20);
      e->out_big[s] = true;
    }
    pk_events_output(e->ev, (pk_stream)s, buf->base, (size_t)n);
    return;
  }
  if (n == 0)
    return;
  close_out(e, s);
  maybe_finish(e);
}

/* Write to the child's stdin without letting SIGPIPE reach this process:
 * block it around the write and consume one we caused. */
static ssize_t write_nosigpipe(int fd, const char *p, size_t len) {
  sigset_t pipe_set, old, pending;
  sigemptyset(&pipe_set);
  sigaddset(&pipe_set, SIGPIPE);
  pthread_sigmask(SIG_BLOCK, &pipe_set, &old);
  sigpending(&pending);
  bool was_pending = sigismember(&pending, SIGPIPE);
  ssize_t n = write(fd, p, len);
  int err = errno;
  if (n < 0 && err == EPIPE && !was_pending) {
    struct timespec zero = {0, 0};
    sigtimedwait(&pipe_set, NULL, &zero);
  }
  pthread_sigmask(SIG_SETMASK, &old, NULL);
  errno = err;
  return n;
}

/* Returns true when stdin is finished (all written, or the child is not
 * reading: EPIPE is not a failure, the child's exit status wins). */
static bool pump_stdin(real_exec *e) {
  size_t len;
  const char *data = pk_cmd_stdin_data(e->cmd, &len);
  while (e->in_off < len) {
    ssize_t n = write_nosigpipe(e->in_fd, data + e->in_off, len - e->in_off);
    if (n < 0 && errno == EINTR)
      continue;
    if (n < 0)
      return errno != EAGAIN;
    e->in_off += (size_t)n;
  }
  return true;
}

static void on_stdin_writable(uv_poll_t *h, int status, int events) {
  (void)events;
  real_exec *e = h->data;
  if (status < 0 || pump_stdin(e))
    stop_stdin(e);
}

/* ------------------------------------------------------------- start */

typedef struct fdplan {
  int child[3];  /* fds the child gets at 0..2 (-1: unset) */
  int parent[3]; /* our ends of capture pipes / stdin pipe */
} fdplan;

static void fdplan_close(fdplan *f, bool parent_too) {
  for (int i = 0; i < 3; i++) {
    if (f->child[i] > 2)
      close(f->child[i]);
    f->child[i] = -1;
    if (parent_too && f->parent[i] >= 0)
      close(f->parent[i]);
    if (parent_too)
      f->parent[i] = -1;
  }
}

/* errno of a failed open/pipe -> PK code: running out of descriptors is
 * a resource limit, anything else an I/O error. */
static int fd_error(int err) {
  return err == EMFILE || err == ENFILE ? PK_ELIMIT : PK_EIO;
}

/* Open path for the child; on failure set *rc and describe it in *msg. */
static int open_or_fail(const char *path, int flags, const char *what,
                        char **msg, int *rc) {
  int fd = open(path, flags | O_CLOEXEC, 0666);
  if (fd < 0) {
    *rc = fd_error(errno);
    *msg = pk__sprintf("cannot open %s %s: %s", what, path, strerror(errno));
  }
  return fd;
}

static int make_pipe(int p[2], char **msg) {
  if (pipe2(p, O_CLOEXEC) == 0)
    return 0;
  *msg = pk__sprintf("cannot create a pipe: %s", strerror(errno));
  return fd_error(errno);
}

static int plan_stdin(const pk_cmd *cmd, fdplan *f, char **msg) {
  int rc = 0;
  switch (pk_cmd_stdin_mode(cmd)) {
  case PK_STDIN_INHERIT:
    f->child[0] = 0;
    return 0;
  case PK_STDIN_FILE:
    f->child[0] =
        open_or_fail(pk_cmd_stdin_path(cmd), O_RDONLY, "stdin file", msg, &rc);
    return rc;
  case PK_STDIN_BYTES: {
    int p[2];
    if ((rc = make_pipe(p, msg)) != 0)
      return rc;
    f->child[0] = p[0];
    f->parent[0] = p[1];
    return 0;
  }
  default:
    f->child[0] = open_or_fail("/dev/null", O_RDONLY, "stdin", msg, &rc);
    return rc;
  }
}

static int plan_output(const pk_cmd *cmd, int s, fdplan *f, char **msg) {
  const char *path;
  int rc = 0;
  switch (pk_cmd_output_mode(cmd, (pk_stream)s, &path)) {
  case PK_OUT_INHERIT:
    f->child[s] = s;
    return 0;
  case PK_OUT_NULL:
    f->child[s] = open_or_fail("/dev/null", O_WRONLY, "output", msg, &rc);
    return rc;
  case PK_OUT_FILE:
    f->child[s] =
        open_or_fail(path, O_WRONLY | O_CREAT | O_TRUNC,
                     s == 1 ? "stdout file" : "stderr file", msg, &rc);
    return rc;
  default: {
    int p[2];
    if ((rc = make_pipe(p, msg)) != 0)
      return rc;
    f->parent[s] = p[0];
    f->child[s] = p[1];
    return 0;
  }
  }
}

static int plan_fds(const pk_cmd *cmd, fdplan *f, char **msg) {
  for (int i = 0; i < 3; i++)
    f->child[i] = f->parent[i] = -1;
  int rc = plan_stdin(cmd, f, msg);
  for (int s = PK_STDOUT; rc == 0 && s <= PK_STDERR; s++)
    rc = plan_output(cmd, s, f, msg);
  if (rc != 0)
    fdplan_close(f, true);
  return rc;
}

/* Small stdin goes into the pipe before the spawn (it cannot block);
 * larger stdin is pumped from the loop. */
static int start_stdin(real_exec *e, int fd) {
  size_t len;
  pk_cmd_stdin_data(e->cmd, &len);
  e->in_fd = fd;
  if (fd < 0)
    return 0;
  if (fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK) < 0)
    return PK_EIO;
  if (pump_stdin(e)) {
    stop_stdin(e);
    return 0;
  }
  int rc = uv_poll_init(e->loop, &e->in_poll, fd);
  if (rc == 0) {
    e->have_in_poll = true;
    e->in_poll.data = e;
    rc = uv_poll_start(&e->in_poll, UV_WRITABLE, on_stdin_writable);
  }
  return rc;
}

static int watch_exit(real_exec *e) {
  int rc;
  if (e->pidfd >= 0) {
    if ((rc = uv_poll_init(e->loop, &e->exit_poll, e->pidfd)) != 0)
      return rc;
    e->have_exit_poll = true;
    e->exit_poll.data = e;
    return uv_poll_start(&e->exit_poll, UV_READABLE, on_exit_poll);
  }
  uv_timer_init(e->loop, &e->exit_timer);
  e->have_exit_timer = true;
  e->exit_timer.data = e;
  e->exit_every = 1;
  return uv_timer_start(&e->exit_timer, on_exit_timer, 0, 0);
}

static int watch_output(real_exec *e, fdplan *f) {
  for (int s = PK_STDOUT; s <= PK_STDERR; s++) {
    if (f->parent[s] < 0)
      continue;
    int rc = uv_pipe_init(e->loop, &e->out[s], 0);
    if (rc != 0)
      return rc;
    e->out[s].data = e;
    e->out_open[s] = true;
    if ((rc = uv_pipe_open(&e->out[s], f->parent[s])) != 0)
      return rc;
    f->parent[s] = -1; /* owned by the pipe handle now */
    if ((rc = uv_read_start((uv_stream_t *)&e->out[s], on_alloc, on_read)))
      return rc;
  }
  return 0;
}

static void spawn_message(const pk_cmd *cmd, const pk__spawn_out *so, int rc,
                          pk_exit_info *fail, char **msg) {
  const char *stage = pk__stage_name(so->stage);
  fail->stage = stage;
  fail->os_errno = so->err;
  if (rc == PK_EBADCWD)
    *msg = pk__sprintf("%s: working directory %s is not usable (%s: %s)",
                       cmd->program, cmd->cwd ? cmd->cwd : "?", stage,
                       strerror(so->err));
  else
    *msg = pk__sprintf("%s: %s (%s: %s)", cmd->program, pk_strerror(rc), stage,
                       strerror(so->err));
}

static void build_plan(real_exec *e, const pk_cmd *cmd, const char *path,
                       char **argv, char **envp, fdplan *f,
                       pk__spawn_plan *plan) {
  memset(plan, 0, sizeof(*plan));
  plan->path = path;
  plan->argv = argv;
  plan->envp = envp;
  for (int i = 0; i < 3; i++)
    plan->fd[i] = f->child[i];
  plan->cwd = cmd->cwd;
  plan->set_umask = cmd->set_umask;
  plan->umask = (mode_t)cmd->umask;
  plan->setsid = cmd->setsid;
  plan->foreground = e->fg.ttyfd >= 0; /* its own group, on any mechanism */
  plan->tty_fd = e->fg.ttyfd;
  plan->setpgid = e->group.mech == PK_MECH_PROCESS_GROUP || plan->foreground;
  plan->set_user = cmd->set_user;
  plan->uid = cmd->uid;
  plan->gid = cmd->gid;
  plan->groups = cmd->groups;
  plan->ngroups = cmd->ngroups;
  plan->pdeathsig =
      cmd->pdeathsig || (e->grp != NULL && pk__grp_pdeath_child(e->grp));
  plan->cgroup_dirfd = e->group.dirfd;
  plan->disable = e->disable;
}

static char **build_argv(const pk_cmd *cmd) {
  char **argv = pk__calloc(cmd->nargs + 2, sizeof(char *));
  if (argv == NULL)
    return NULL;
  argv[0] = cmd->program;
  for (size_t i = 0; i < cmd->nargs; i++)
    argv[i + 1] = cmd->args[i];
  return argv;
}

/* Everything up to and including the spawn. */
static int spawn_into(real_exec *e, const pk_cmd *cmd, fdplan *f,
                      pk_exit_info *fail, char **msg) {
  char *path = NULL, **envp = NULL, **argv = NULL;
  int rc = pk__resolve_program(cmd->program, pk__cmd_path_env(cmd), cmd->cwd,
                               &path, msg);
  if (rc != 0) {
    fail->stage = "lookup";
    fail->os_errno = rc == PK_EACCES ? EACCES : ENOENT;
    return rc;
  }
  if ((rc = pk__cmd_build_env(cmd, &envp)) != 0 ||
      (argv = build_argv(cmd)) == NULL) {
    rc = PK_ENOMEM;
    goto out;
  }
  if (cmd->foreground &&
      (rc = pk__fg_begin(&e->fg, e->loop, &e->group, msg)) != 0)
    goto out;
  if ((rc = plan_fds(cmd, f, msg)) != 0)
    goto out;
  pk__spawn_plan plan;
  build_plan(e, cmd, path, argv, envp, f, &plan);
  pk__spawn_out so;
  pk__leader_spawn_begin();
  rc = pk__spawn(&plan, &so);
  if (rc == 0)
    pk__leader_add(so.pid);
  pk__leader_spawn_end();
  if (rc != 0) {
    spawn_message(cmd, &so, rc, fail, msg);
    fdplan_close(f, true);
    goto out;
  }
  e->base.pid = so.pid;
  e->pidfd = so.pidfd;
  e->method = so.method;
  pk__group_set_leader(&e->group, so.pid);
  if (e->grp != NULL)
    pk__grp_track(e->grp, e, so.pid);
  pk__fg_started(&e->fg, so.pid);
  fdplan_close(f, false);
out:
  pk__free(path);
  pk__free(argv);
  pk__strv_free(envp);
  return rc;
}

/* Undo a start that failed after the child existed. */
static void abort_started(real_exec *e, fdplan *f) {
  pk__group_kill_all(&e->group, PK__TEARDOWN_MS);
  if (e->group.mech == PK_MECH_PROCESS_GROUP || !e->exited)
    kill(e->base.pid, SIGKILL);
  for (int s = PK_STDOUT; s <= PK_STDERR; s++)
    if (f->parent[s] >= 0)
      close(f->parent[s]);
  e->exited = true;
  teardown(e);
  for (int s = PK_STDOUT; s <= PK_STDERR; s++)
    close_out(e, s);
}

static void init_exec(real_exec *e, real_runner *rr, const pk_cmd *cmd,
                      uv_loop_t *loop, pk_events *ev) {
  e->base.runner = &rr->base;
  e->loop = loop;
  e->ev = ev;
  e->cmd = cmd;
  e->pidfd = -1;
  e->in_fd = -1;
  e->method = "";
  e->disable = rr->opts.disable;
  e->group.dirfd = e->group.eventsfd = -1;
  e->tree_cpu_us = e->tree_peak = -1;
  sigemptyset(&e->pending);
  e->fg.ttyfd = -1;
  uv_timer_init(loop, &e->drain);
  e->drain.data = e;
}

static void release_handles(real_exec *e) {
  e->released = true;
  if (e->deferred) {
    pk__grp_undefer(e->grp, &e->wait);
    close_handle(e, &e->wait.async);
    e->deferred = false;
  }
  for (int s = PK_STDOUT; s <= PK_STDERR; s++)
    close_out(e, s);
  stop_stdin(e);
  if (e->have_exit_poll)
    close_handle(e, &e->exit_poll);
  if (e->have_exit_timer)
    close_handle(e, &e->exit_timer);
  pk__fg_end(&e->fg);
  uv_handle_t *fgh[PK__FG_HANDLES];
  for (int i = 0, n = pk__fg_handles(&e->fg, fgh); i < n; i++)
    close_handle(e, fgh[i]);
  close_handle(e, &e->drain);
  exec_maybe_free(e);
}

/* Make the run's group, spawn into it and watch it. On failure nothing
 * of the run is left but e's loop handles; rc and *msg say why. */
static int launch(real_exec *e, bool guard, pk_exit_info *fail, char **msg) {
  const pk_cmd *cmd = e->cmd;
  fdplan f;
  for (int i = 0; i < 3; i++)
    f.child[i] = f.parent[i] = -1;
  int rc = e->grp != NULL
               ? pk__grp_leaf(e->grp, &e->group, msg)
               : pk__group_create(&e->group, e->mech, e->disable, guard, msg);
  if (rc == 0 && (rc = spawn_into(e, cmd, &f, fail, msg)) != 0)
    pk__group_destroy(&e->group);
  if (rc == 0) {
    int in_fd = f.parent[0];
    f.parent[0] = -1;
    if ((rc = watch_output(e, &f)) == 0 && (rc = watch_exit(e)) == 0)
      rc = start_stdin(e, in_fd);
    else if (in_fd >= 0)
      close(in_fd);
    if (rc != 0) {
      abort_started(e, &f);
      *msg = pk__sprintf("%s: cannot watch the child: %s", cmd->program,
                         uv_strerror(rc));
      rc = PK_ESPAWN;
    }
  }
  return rc;
}

static void fail_message(int rc, char *msg, pk_exit_info *fail) {
  static __thread char msgbuf[1024];
  snprintf(msgbuf, sizeof(msgbuf), "%s", msg ? msg : pk_strerror(rc));
  pk__free(msg);
  fail->errmsg = msgbuf;
}

/* ---- a start deferred while its group is suspended ---- */

static void on_deferred_killed(uv_timer_t *t) {
  real_exec *e = t->data;
  pk_exit_info info;
  memset(&info, 0, sizeof(info));
  info.outcome = PK_OUTCOME_SIGNALLED;
  info.signal = SIGKILL;
  info.mechanism = e->mech;
  info.spawn_method = "";
  e->finished = true;
  pk_events_exit(e->ev, &info);
}

/* End a run that never started, as killed, from the next loop turn. */
static void end_deferred(real_exec *e) {
  if (e->deferred) {
    pk__grp_undefer(e->grp, &e->wait);
    close_handle(e, &e->wait.async);
    e->deferred = false;
  }
  uv_timer_start(&e->drain, on_deferred_killed, 0, 0);
}

static void on_group_woken(uv_async_t *a) {
  real_exec *e = a->data;
  if (!e->deferred || e->finished)
    return;
  int st = pk__grp_woken(e->grp, &e->wait);
  if (st == PK__GW_KILL) {
    end_deferred(e);
    return;
  }
  if (st == PK__GW_WAIT)
    return; /* not resumed, or suspended again before we got here */
  e->deferred = false;
  close_handle(e, &e->wait.async);
  char *msg = NULL;
  pk_exit_info info;
  memset(&info, 0, sizeof(info));
  int rc = launch(e, false, &info, &msg);
  pk__grp_leave(e->grp); /* counted by pk__grp_woken */
  if (rc != 0) {
    fail_message(rc, msg, &info);
    info.error = rc;
    info.mechanism = e->mech;
    info.spawn_method = "";
    e->finished = true;
    pk_events_exit(e->ev, &info);
    return;
  }
  for (int sig = 1; sig < NSIG; sig++) /* what arrived while waiting */
    if (sigismember(&e->pending, sig) == 1)
      pk__group_signal(&e->group, sig, true);
}

/* A group's start while it is suspended waits for the resume: 1
 * (deferred), 0 (start now: counted as under way, so a suspend waits for
 * the spawn), or a PK error (no way to wait: never spawn into a frozen
 * group, whose child would freeze inside the spawner). */
static int defer_start(real_exec *e) {
  if (e->grp == NULL || pk__grp_enter(e->grp))
    return 0;
  if (uv_async_init(e->loop, &e->wait.async, on_group_woken) != 0)
    return PK_ELIMIT;
  e->wait.async.data = e;
  if (pk__grp_defer(e->grp, &e->wait)) {
    e->deferred = true;
    return 1;
  }
  close_handle(e, &e->wait.async);
  return 0;
}

static int real_start(pk_runner *self, const pk_cmd *cmd, uv_loop_t *loop,
                      pk_events *ev, pk_exec **out, pk_exit_info *fail) {
  real_runner *rr = (real_runner *)self;
  char *msg = NULL;
  pk_mechanism mech;
  pk_mechanism want =
      cmd->mechanism != PK_MECH_AUTO ? cmd->mechanism : rr->opts.mechanism;
  if (rr->grp != NULL && want != PK_MECH_AUTO &&
      want != pk__grp_mech(rr->grp)) {
    fail->errmsg = "the command forces a containment mechanism other than "
                   "its group's";
    fail->stage = "group";
    return PK_EINVAL;
  }
  if (rr->grp != NULL)
    want = pk__grp_mech(rr->grp);
  if (pk__mechanism_resolve(want, &mech) != 0) {
    fail->errmsg = "containment mechanism not available on this host";
    fail->stage = "group";
    return PK_EUNSUPPORTED;
  }
  real_exec *e = pk__calloc(1, sizeof(*e));
  char *rbuf = pk__malloc(PK__READ_BUF);
  if (e == NULL || rbuf == NULL) {
    pk__free(e);
    pk__free(rbuf);
    return PK_ENOMEM;
  }
  init_exec(e, rr, cmd, loop, ev);
  e->rbuf = rbuf;
  e->mech = mech;
  if ((e->grp = rr->grp) != NULL)
    pk__grp_ref(e->grp);
  int rc = defer_start(e);
  if (rc == 1) {
    *out = &e->base;
    return 0;
  }
  if (rc == 0) {
    rc = launch(e, rr->opts.kill_on_owner_death, fail, &msg);
    if (e->grp != NULL)
      pk__grp_leave(e->grp);
  } else {
    msg = pk__sprintf("%s: cannot wait for the suspended group's resume (no "
                      "descriptor for an event)",
                      cmd->program);
  }
  if (rc != 0) {
    fail_message(rc, msg, fail);
    fail->mechanism = mech;
    release_handles(e);
    return rc;
  }
  *out = &e->base;
  return 0;
}

static int real_signal(pk_exec *base, int sig) {
  real_exec *e = (real_exec *)base;
  if (e->finished)
    return PK_ESRCH;
  if (e->deferred) { /* not started: KILL ends it, others wait with it */
    if (sig == SIGKILL)
      end_deferred(e);
    else if (sig > 0)
      sigaddset(&e->pending, sig);
    return 0;
  }
  if (check_exit(e)) {
    if (sig == SIGKILL) /* the child is gone; its descendants must go */
      pk__group_signal(&e->group, SIGKILL, false);
    return PK_ESRCH;
  }
  if (sig == 0)
    return 0;
  int rc = pk__group_signal(&e->group, sig, true);
  if (rc == PK_ESRCH && e->group.mech == PK_MECH_CGROUP_V2)
    return PK_ESRCH;
  if (e->group.mech == PK_MECH_PROCESS_GROUP && e->cmd->setsid == false &&
      rc != 0)
    kill(e->base.pid, sig);
  return rc == PK_ESRCH ? 0 : rc;
}

static void real_release(pk_exec *base) {
  real_exec *e = (real_exec *)base;
  if (!e->finished) {
    uv_timer_stop(&e->drain);
    teardown(e);
    e->finished = true;
  }
  release_handles(e);
}

static int real_pause(pk_exec *base, bool on) {
  real_exec *e = (real_exec *)base;
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
  if (on && e->base.pid > 0)  /* (a never-started run's end is on it) */
    uv_timer_stop(&e->drain); /* a slow consumer is not a held pipe */
  else
    finish_when_done(e, false);
  return 0;
}

static int real_close_output(pk_exec *base, pk_stream s) {
  real_exec *e = (real_exec *)base;
  if (e->finished)
    return PK_ESRCH;
  close_out(e, (int)s);
  finish_when_done(e, false);
  return 0;
}

static void real_destroy(pk_runner *self) {
  if (((real_runner *)self)->grp == NULL) /* a group frees its own */
    pk__free(self);
}

static const pk_runner_vtable real_vtable = {
    .name = "real",
    .start = real_start,
    .signal = real_signal,
    .release = real_release,
    .pause = real_pause,
    .close_output = real_close_output,
    .destroy = real_destroy,
};

int pk_real_runner_new(const pk_real_opts *opts, pk_runner **out) {
  if (out == NULL)
    return PK_EINVAL;
  *out = NULL;
  int rc = pk__host_check();
  if (rc != 0)
    return rc;
  real_runner *r = pk__calloc(1, sizeof(*r));
  if (r == NULL)
    return PK_ENOMEM;
  r->base.vt = &real_vtable;
  if (opts != NULL)
    r->opts = *opts;
  pk_mechanism m = r->opts.mechanism;
  if ((m != PK_MECH_AUTO && pk_mechanism_available(m) != 0) ||
      (r->opts.kill_on_owner_death &&
       (m == PK_MECH_AUTO ? pk_mechanism_best() : m) != PK_MECH_CGROUP_V2)) {
    pk__free(r);
    return PK_EUNSUPPORTED;
  }
  *out = &r->base;
  return 0;
}

int pk__real_runner_group(pk_group *g, pk_mechanism mech, unsigned disable,
                          pk_runner **out) {
  real_runner *r = pk__calloc(1, sizeof(*r));
  if (r == NULL)
    return PK_ENOMEM;
  r->base.vt = &real_vtable;
  r->opts.mechanism = mech;
  r->opts.disable = disable;
  r->grp = g;
  *out = &r->base;
  return 0;
}

void pk__real_runner_group_free(pk_runner *r) { pk__free(r); }
