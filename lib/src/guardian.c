/* The guardian: one helper process per owning process that kills the
 * owner's whole cgroup when the owner is gone, whichever thread or signal
 * ended it (a parent-death signal would follow the spawning thread and
 * reach the direct child only).
 *
 * It lives outside every leaf (it stays in the owner's own cgroup, the
 * base), so neither a frozen leaf nor a kill of the owner's cgroup takes
 * it along. It holds a pidfd of the owner (fallback: the read end of a
 * pipe whose write end only the owner holds, close-on-exec) and the
 * owner's cgroup directory; when the owner is gone it writes cgroup.kill
 * there (fallback: freeze + SIGKILL loop), removes the leaves deepest
 * first, then the directory, and exits.
 *
 * It is not our child: the helper forks once more and the first process
 * exits at once (we reap it), so the guardian is adopted by init, or by
 * the nearest child subreaper above us (then a host that is itself a
 * subreaper adopts it). It runs in a session of its own (out of reach of
 * the terminal's signals) with /dev/null and two pipes as fds 0-2 and
 * nothing else of ours. Protocol: ARGV0 1 pidfd|pipe kill|freeze DIR,
 * fd 0 the owner handle, fd 1 the ready pipe ("ok", or an error line). */
#include "group.h"
#include "spawner.h"

#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#ifndef PK_GUARDIAN_INSTALLED
#define PK_GUARDIAN_INSTALLED "/usr/local/libexec/processkit/pk-guardian"
#endif
#define PK__GUARDIAN_READY_MS 10000
#define PK__GUARDIAN_KILL_MS 10000

extern char **environ;

static pthread_mutex_t use_mu = PTHREAD_MUTEX_INITIALIZER;
static char *use_program, *use_arg; /* pk_guardian_use */
static const char anchor;           /* an address inside this object */

int pk_guardian_use(const char *program, const char *first_arg) {
  char *p = program ? pk__strdup(program) : NULL;
  char *a = program && first_arg ? pk__strdup(first_arg) : NULL;
  if ((program && p == NULL) || (program && first_arg && a == NULL)) {
    pk__free(p);
    pk__free(a);
    return PK_ENOMEM;
  }
  pthread_mutex_lock(&use_mu);
  char *old_p = use_program, *old_a = use_arg;
  use_program = p;
  use_arg = a;
  pthread_mutex_unlock(&use_mu);
  pk__free(old_p);
  pk__free(old_a);
  return 0;
}

/* Directory of the library (or, linked statically, of the program). */
static char *object_dir(void) {
  Dl_info info;
  char exe[PATH_MAX];
  const char *file = NULL;
  if (dladdr(&anchor, &info) != 0 && info.dli_fname != NULL &&
      info.dli_fname[0] == '/') {
    file = info.dli_fname;
  } else {
    ssize_t n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
    exe[n > 0 ? n : 0] = '\0';
    file = n > 0 ? exe : NULL;
  }
  char *dir = file ? pk__strdup(file) : NULL;
  char *slash = dir ? strrchr(dir, '/') : NULL;
  if (slash != NULL)
    slash[slash == dir ? 1 : 0] = '\0';
  return dir;
}

/* PK_GUARDIAN if set; else next to the library, in ../libexec/processkit
 * from there, and in the configured install directory. */
static int find_helper(char **path, char **msg) {
  const char *env = getenv("PK_GUARDIAN");
  char *dir = NULL, *cand[3] = {NULL, NULL, NULL};
  if (env != NULL && env[0] != '\0') {
    cand[0] = pk__strdup(env);
  } else if ((dir = object_dir()) != NULL) {
    cand[0] = pk__sprintf("%s/pk-guardian", dir);
    cand[1] = pk__sprintf("%s/../libexec/processkit/pk-guardian", dir);
  }
  if (env == NULL || env[0] == '\0')
    cand[2] = pk__strdup(PK_GUARDIAN_INSTALLED);
  int rc = PK_ENOENT;
  for (int i = 0; i < 3 && rc != 0; i++) {
    if (cand[i] != NULL && access(cand[i], X_OK) == 0) {
      *path = cand[i];
      cand[i] = NULL;
      rc = 0;
    }
  }
  if (rc != 0)
    *msg = pk__sprintf("pk-guardian not found (tried %s%s%s%s%s); install it "
                       "next to the library or set PK_GUARDIAN",
                       cand[0] ? cand[0] : "", cand[1] ? ", " : "",
                       cand[1] ? cand[1] : "", cand[2] ? ", " : "",
                       cand[2] ? cand[2] : "");
  for (int i = 0; i < 3; i++)
    pk__free(cand[i]);
  pk__free(dir);
  return rc;
}

/* The program and its optional first argument (heap copies). */
static int guardian_program(char **path, char **arg, char **msg) {
  pthread_mutex_lock(&use_mu);
  *path = use_program ? pk__strdup(use_program) : NULL;
  *arg = use_arg ? pk__strdup(use_arg) : NULL;
  bool set = use_program != NULL,
       bad = (use_program && *path == NULL) || (use_arg && *arg == NULL);
  pthread_mutex_unlock(&use_mu);
  if (bad)
    return PK_ENOMEM;
  return set ? 0 : find_helper(path, msg);
}

/* What the guardian watches: a pidfd of this process, else a pipe. */
static int owner_handle(unsigned disable, int *hold, int *wr, char **msg) {
  *hold = *wr = -1;
  if (!(disable & PK_NO_PIDFD)) {
    long fd = syscall(SYS_pidfd_open, getpid(), 0);
    if (fd >= 0) {
      *hold = (int)fd;
      return 0;
    }
  }
  int p[2];
  if (pipe2(p, O_CLOEXEC) != 0) {
    *msg = pk__sprintf("cannot create the guardian pipe: %s", strerror(errno));
    return errno == EMFILE || errno == ENFILE ? PK_ELIMIT : PK_EIO;
  }
  *hold = p[0];
  *wr = p[1];
  return 0;
}

/* Read the guardian's first line: "ok", or why it cannot guard. */
static int await_ready(int fd, const char *path, char **msg) {
  char buf[512];
  struct pollfd pfd = {.fd = fd, .events = POLLIN};
  int n = poll(&pfd, 1, PK__GUARDIAN_READY_MS);
  ssize_t len = n > 0 ? read(fd, buf, sizeof(buf) - 1) : -1;
  buf[len > 0 ? len : 0] = '\0';
  buf[strcspn(buf, "\n")] = '\0';
  if (strcmp(buf, "ok") == 0)
    return 0;
  *msg = pk__sprintf("guardian %s did not start: %s", path,
                     n == 0   ? "no answer in time"
                     : buf[0] ? buf
                              : "it exited");
  return n == 0 ? PK_ETIMEOUT : PK_ESPAWN;
}

typedef struct gspawn {
  char *path, *arg;
  int hold, wr, ready[2], null;
} gspawn;

static int spawn_it(gspawn *s, const char *dir, unsigned disable, char **msg) {
  bool pipe_mode = s->wr >= 0;
  bool use_kill = pk__cgroup_has_kill() && !(disable & PK_NO_CGROUP_KILL);
  char *argv[7], **a = argv;
  *a++ = s->path;
  if (s->arg != NULL)
    *a++ = s->arg;
  *a++ = "1";
  *a++ = pipe_mode ? "pipe" : "pidfd";
  *a++ = use_kill ? "kill" : "freeze";
  *a++ = (char *)dir;
  *a = NULL;
  pk__spawn_plan plan;
  memset(&plan, 0, sizeof(plan));
  plan.path = s->path;
  plan.argv = argv;
  plan.envp = environ;
  plan.fd[0] = s->hold;
  plan.fd[1] = s->ready[1];
  plan.fd[2] = s->null;
  plan.setsid = true;
  plan.cgroup_dirfd = -1;
  plan.disable = disable & (PK_NO_CLONE3 | PK_NO_PIDFD | PK_NO_CLOSE_RANGE);
  pk__spawn_out so;
  int rc = pk__spawn(&plan, &so);
  close(s->ready[1]);
  s->ready[1] = -1;
  if (rc != 0) {
    *msg = pk__sprintf("cannot start the guardian %s: %s (%s: %s)", s->path,
                       pk_strerror(rc), pk__stage_name(so.stage),
                       strerror(so.err));
    return rc;
  }
  /* The helper forks the guardian and exits; reap it. ECHILD: a host
   * that ignores SIGCHLD (or reaps with waitpid(-1)) took it first. */
  if ((rc = await_ready(s->ready[0], s->path, msg)) != 0 && so.pidfd >= 0)
    syscall(SYS_pidfd_send_signal, so.pidfd, SIGKILL, NULL, 0);
  else if (rc != 0) /* unreaped (unless the host ignores SIGCHLD) */
    kill(so.pid, SIGKILL);
  siginfo_t si;
  pk__waitid(so.pid, so.pidfd, &si, WEXITED, NULL);
  if (so.pidfd >= 0)
    close(so.pidfd);
  return rc;
}

int pk__guardian_start(const char *dir, unsigned disable, int *pipe_wr,
                       char **msg) {
  gspawn s = {NULL, NULL, -1, -1, {-1, -1}, -1};
  int rc = guardian_program(&s.path, &s.arg, msg);
  if (rc == 0)
    rc = owner_handle(disable, &s.hold, &s.wr, msg);
  if (rc == 0 && (pipe2(s.ready, O_CLOEXEC) != 0 ||
                  (s.null = open("/dev/null", O_RDWR | O_CLOEXEC)) < 0)) {
    *msg = pk__sprintf("cannot prepare the guardian: %s", strerror(errno));
    rc = errno == EMFILE || errno == ENFILE ? PK_ELIMIT : PK_EIO;
  }
  if (rc == 0)
    rc = spawn_it(&s, dir, disable, msg);
  int fds[] = {s.hold, s.ready[0], s.ready[1], s.null};
  for (size_t i = 0; i < sizeof(fds) / sizeof(fds[0]); i++)
    if (fds[i] >= 0)
      close(fds[i]);
  if (rc == 0)
    *pipe_wr = s.wr;
  else if (s.wr >= 0)
    close(s.wr);
  pk__free(s.path);
  pk__free(s.arg);
  return rc;
}

/* ------------------------------------------------------ the guardian */

/* Until the owner is gone: its pidfd turns readable, or the pipe reads
 * EOF (nobody else holds the write end). */
static void wait_owner(int fd, bool pipe_mode) {
  char buf[64];
  for (;;) {
    struct pollfd pfd = {.fd = fd, .events = POLLIN};
    if (poll(&pfd, 1, -1) < 0 && errno == EINTR)
      continue;
    if (!pipe_mode || read(fd, buf, sizeof(buf)) <= 0)
      return;
  }
}

static void say(const char *what, const char *detail) {
  char line[512];
  int n = snprintf(line, sizeof(line), "%s%s\n", what, detail);
  if (n > 0 && write(1, line, strlen(line)) < 0)
    return; /* nobody to tell */
}

int pk_guardian_main(int argc, char **argv) {
  signal(SIGPIPE, SIG_IGN); /* an owner gone before our "ok" */
  if (argc != 5 || strcmp(argv[1], "1") != 0) {
    say("usage: pk-guardian 1 pidfd|pipe kill|freeze DIR", " (run by pk)");
    return 2;
  }
  const char *dir = argv[4];
  int dirfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  int ev =
      dirfd >= 0 ? openat(dirfd, "cgroup.events", O_RDONLY | O_CLOEXEC) : -1;
  if (ev < 0) {
    char what[300];
    snprintf(what, sizeof(what), "cannot open %.256s: ", dir);
    say(what, strerror(errno));
    return 1;
  }
  pid_t pid = fork(); /* so that we are not the owner's child */
  if (pid < 0) {
    say("cannot fork: ", strerror(errno));
    return 1;
  }
  if (pid > 0) /* the owner waits for this one: leave at once */
    _exit(0);
  say("ok", "");
  dup2(2, 1); /* the owner reads EOF from here on */
  wait_owner(0, strcmp(argv[2], "pipe") == 0);
  pk__cgtree_kill(dirfd, ev, strcmp(argv[3], "kill") == 0,
                  PK__GUARDIAN_KILL_MS);
  close(ev);
  close(dirfd);
  return pk__cgtree_remove(AT_FDCWD, dir) == 0 ? 0 : 1;
}
