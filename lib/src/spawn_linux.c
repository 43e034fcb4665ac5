/* Linux spawner. The parent prepares everything (argv, envp, resolved
 * path, fd plan, cgroup fds); the child runs raw system calls only and
 * reports a failure as {stage, errno} over a close-on-exec pipe.
 *
 * Paths, best first (each has a tested fallback, see PK_NO_*):
 *   clone3(CLONE_VM|CLONE_VFORK|CLONE_PIDFD|CLONE_INTO_CGROUP)
 *   clone(CLONE_VM|CLONE_VFORK|CLONE_PIDFD), cgroup joined by the child
 *   clone(CLONE_VM|CLONE_VFORK) + pidfd_open
 *   clone(CLONE_VM|CLONE_VFORK) with no pidfd (exit seen by polling)
 * CLONE_VM keeps the cost independent of the parent's memory.
 *
 * Children are created with an exit signal of 0 and waited for with
 * __WALL, so a child that fails before exec is never auto-reaped and
 * never signals the host. execve resets the exit signal to SIGCHLD
 * (de_thread), so from exec on a host that ignores SIGCHLD, or reaps with
 * waitpid(-1), can take the status: see pk__pidfd_exit_status. While the
 * child shares our memory it touches nothing but its own stack and the
 * plan, and never calls a libc function that takes locks or uses TLS
 * state beyond errno.
 */
#include "internal.h"
#include "spawner.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/sched.h>
#include <poll.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#ifndef CLONE_PIDFD
#define CLONE_PIDFD 0x00001000
#endif
#ifndef CLONE_INTO_CGROUP
#define CLONE_INTO_CGROUP 0x200000000ULL
#endif
#ifndef CLOSE_RANGE_CLOEXEC
#define CLOSE_RANGE_CLOEXEC (1U << 2)
#endif

#define PK__CHILD_STACK (64 * 1024)

const char *pk__stage_name(int stage) {
  static const char *const names[] = {
      "none",    "clone",  "signals",   "cgroup",    "setsid",
      "setpgid", "chdir",  "fds",       "close_fds", "setgroups",
      "setgid",  "setuid", "pdeathsig", "exec",      "tcsetpgrp"};
  if (stage < 0 || (size_t)stage >= sizeof(names) / sizeof(names[0]))
    return "unknown";
  return names[stage];
}

int pk__spawn_error_code(int stage, int err) {
  if (stage == PK__STAGE_CHDIR)
    return PK_EBADCWD;
  if (stage == PK__STAGE_EXEC) {
    if (err == ENOENT || err == ENOTDIR)
      return PK_ENOENT;
    if (err == EACCES || err == EPERM)
      return PK_EACCES;
    if (err == ENOEXEC)
      return PK_ENOEXEC;
  }
  if (stage == PK__STAGE_CLONE &&
      (err == EMFILE || err == ENFILE || err == EAGAIN || err == ENOMEM))
    return PK_ELIMIT;
  return PK_ESPAWN;
}

/* ------------------------------------------------------------ the child */

typedef struct child_ctx {
  const pk__spawn_plan *plan;
  int errfd;
  pid_t parent;
  int procsfd;      /* cgroup.procs, when joining by a write */
  bool join_cgroup; /* write to cgroup.procs (no CLONE_INTO_CGROUP) */
} child_ctx;

/* The kernel's struct sigaction layout for rt_sigaction. */
struct kernel_sigaction {
  void (*handler)(int);
  unsigned long flags;
  void (*restorer)(void);
  uint64_t mask;
};

/* The child shares our memory and the sanitizers' per-thread state: it
 * must not touch either, so its code is not instrumented at all. */
#if defined(__has_attribute) &&                                                \
    __has_attribute(disable_sanitizer_instrumentation)
#define PK__NOSAN __attribute__((disable_sanitizer_instrumentation))
#else
#define PK__NOSAN __attribute__((no_sanitize("address", "undefined", "thread")))
#endif

PK__NOSAN static long sys(long nr, long a, long b, long c, long d) {
  return syscall(nr, a, b, c, d);
}

PK__NOSAN __attribute__((noreturn)) static void child_fail(child_ctx *c,
                                                           int stage) {
  int msg[2] = {stage, errno};
  while (sys(SYS_write, c->errfd, (long)msg, sizeof(msg), 0) < 0 &&
         errno == EINTR)
    ;
  sys(SYS_exit_group, 127, 0, 0, 0);
  __builtin_unreachable();
}

/* Move each source fd out of 0..2 first so dup2 cannot clobber another. */
PK__NOSAN static int child_place_fds(const pk__spawn_plan *p) {
  int fd[3];
  for (int i = 0; i < 3; i++) {
    fd[i] = p->fd[i];
    if (fd[i] >= 0 && fd[i] < 3 && fd[i] != i) {
      long nfd = sys(SYS_fcntl, fd[i], F_DUPFD_CLOEXEC, 3, 0);
      if (nfd < 0)
        return -1;
      fd[i] = (int)nfd;
    }
  }
  for (int i = 0; i < 3; i++) {
    if (fd[i] == i) {
      if (sys(SYS_fcntl, i, F_SETFD, 0, 0) < 0)
        return -1;
    } else if (sys(SYS_dup2, fd[i], i, 0, 0) < 0) {
      return -1;
    }
  }
  return 0;
}

/* Mark every fd >= 3 close-on-exec (the error pipe already is). */
PK__NOSAN static int child_close_fds(child_ctx *c) {
  if (!(c->plan->disable & PK_NO_CLOSE_RANGE) &&
      sys(SYS_close_range, 3, ~0L, CLOSE_RANGE_CLOEXEC, 0) == 0)
    return 0;
  long dir = sys(SYS_open, (long)"/proc/self/fd",
                 O_RDONLY | O_DIRECTORY | O_CLOEXEC, 0, 0);
  if (dir >= 0) {
    char buf[4096] __attribute__((aligned(8)));
    long n;
    while ((n = sys(SYS_getdents64, dir, (long)buf, sizeof(buf), 0)) > 0) {
      for (long off = 0; off < n;) {
        struct {
          uint64_t ino;
          int64_t off;
          unsigned short reclen;
          unsigned char type;
          char name[];
        } *d = (void *)(buf + off);
        int fd = 0;
        const char *s = d->name;
        for (; *s >= '0' && *s <= '9'; s++)
          fd = fd * 10 + (*s - '0');
        if (*s == '\0' && s != d->name && fd > 2 && fd != dir)
          sys(SYS_fcntl, fd, F_SETFD, FD_CLOEXEC, 0);
        off += d->reclen;
      }
    }
    sys(SYS_close, dir, 0, 0, 0);
    if (n == 0)
      return 0;
  }
  /* Last resort: every possible descriptor number. */
  struct rlimit rl;
  long max = 1L << 16;
  if (sys(SYS_prlimit64, 0, RLIMIT_NOFILE, 0, (long)&rl) == 0 &&
      rl.rlim_cur != RLIM_INFINITY && rl.rlim_cur < (1u << 20))
    max = (long)rl.rlim_cur;
  for (long fd = 3; fd < max; fd++)
    sys(SYS_fcntl, fd, F_SETFD, FD_CLOEXEC, 0);
  return 0;
}

PK__NOSAN static int child_main(void *arg) {
  child_ctx *c = arg;
  const pk__spawn_plan *p = c->plan;
  struct kernel_sigaction dfl = {SIG_DFL, 0, NULL, 0};
  for (int sig = 1; sig < 65; sig++) {
    if (sig != SIGKILL && sig != SIGSTOP)
      sys(SYS_rt_sigaction, sig, (long)&dfl, 0, 8);
  }
  if (c->join_cgroup && sys(SYS_write, c->procsfd, (long)"0", 1, 0) < 0)
    child_fail(c, PK__STAGE_CGROUP);
  if (p->setsid && sys(SYS_setsid, 0, 0, 0, 0) < 0)
    child_fail(c, PK__STAGE_SETSID);
  if (!p->setsid && p->setpgid && sys(SYS_setpgid, 0, 0, 0, 0) < 0)
    child_fail(c, PK__STAGE_SETPGID);
  if (p->foreground) {
    pid_t self = (pid_t)sys(SYS_getpid, 0, 0, 0, 0);
    if (sys(SYS_ioctl, p->tty_fd, TIOCSPGRP, (long)&self, 0) < 0)
      child_fail(c, PK__STAGE_TCSETPGRP);
  }
  if (p->cwd != NULL && sys(SYS_chdir, (long)p->cwd, 0, 0, 0) < 0)
    child_fail(c, PK__STAGE_CHDIR);
  if (p->set_umask)
    sys(SYS_umask, (long)p->umask, 0, 0, 0);
  if (child_place_fds(p) < 0)
    child_fail(c, PK__STAGE_FDS);
  if (child_close_fds(c) < 0)
    child_fail(c, PK__STAGE_CLOSE_FDS);
  if (p->set_user) {
    if (sys(SYS_setgroups, (long)p->ngroups, (long)p->groups, 0, 0) < 0)
      child_fail(c, PK__STAGE_SETGROUPS);
    if (sys(SYS_setresgid, p->gid, p->gid, p->gid, 0) < 0)
      child_fail(c, PK__STAGE_SETGID);
    if (sys(SYS_setresuid, p->uid, p->uid, p->uid, 0) < 0)
      child_fail(c, PK__STAGE_SETUID);
  }
  if (p->pdeathsig) {
    if (sys(SYS_prctl, PR_SET_PDEATHSIG, SIGKILL, 0, 0) < 0)
      child_fail(c, PK__STAGE_PDEATHSIG);
    if (sys(SYS_getppid, 0, 0, 0, 0) != c->parent)
      sys(SYS_exit_group, 127, 0, 0, 0);
  }
  uint64_t empty = 0;
  sys(SYS_rt_sigprocmask, SIG_SETMASK, (long)&empty, 0, 8);
  sys(SYS_execve, (long)p->path, (long)p->argv, (long)p->envp, 0);
  child_fail(c, PK__STAGE_EXEC);
}

/* ------------------------------------------------------- clone variants */

#if defined(__x86_64__)
/* long pk__clone3_vm(struct clone_args *args, size_t size,
 *                    int (*fn)(void *), void *arg)
 * Parent: returns the pid (or -errno). Child: runs fn(arg) on the new
 * stack, then exits with its return value. rdx and r8 survive syscall. */
long pk__clone3_vm(struct clone_args *args, size_t size, int (*fn)(void *),
                   void *arg);
__asm__(".text\n"
        ".globl pk__clone3_vm\n"
        ".hidden pk__clone3_vm\n"
        ".type pk__clone3_vm,@function\n"
        "pk__clone3_vm:\n"
        "  movq %rcx, %r8\n"
        "  movl $435, %eax\n"
        "  syscall\n"
        "  testq %rax, %rax\n"
        "  jz 1f\n"
        "  ret\n"
        "1:\n"
        "  xorl %ebp, %ebp\n"
        "  movq %r8, %rdi\n"
        "  callq *%rdx\n"
        "  movl %eax, %edi\n"
        "  movl $231, %eax\n"
        "  syscall\n"
        "  hlt\n"
        ".size pk__clone3_vm, .-pk__clone3_vm\n");
#define PK__HAVE_CLONE3_VM 1
#endif

static int spawn_clone3(child_ctx *c, char *stack, pk__spawn_out *out) {
#ifdef PK__HAVE_CLONE3_VM
  int pidfd = -1;
  struct clone_args args;
  memset(&args, 0, sizeof(args));
  bool want_pidfd = !(c->plan->disable & PK_NO_PIDFD);
  args.flags = CLONE_VM | CLONE_VFORK | (want_pidfd ? CLONE_PIDFD : 0);
  args.pidfd = want_pidfd ? (__u64)(uintptr_t)&pidfd : 0;
  args.exit_signal = 0; /* until exec, see the top of this file */
  args.stack = (__u64)(uintptr_t)stack;
  args.stack_size = PK__CHILD_STACK;
  if (c->plan->cgroup_dirfd >= 0) {
    args.flags |= CLONE_INTO_CGROUP;
    args.cgroup = (__u64)(unsigned)c->plan->cgroup_dirfd;
  }
  c->join_cgroup = false;
  long pid = pk__clone3_vm(&args, sizeof(args), child_main, c);
  if (pid < 0)
    return (int)-pid;
  out->pid = (pid_t)pid;
  out->pidfd = pidfd;
  out->method = want_pidfd ? "clone3" : "clone3+nopidfd";
  return 0;
#else
  (void)c, (void)stack, (void)out;
  return ENOSYS;
#endif
}

static int spawn_clone(child_ctx *c, char *stack, bool want_pidfd,
                       pk__spawn_out *out) {
  int pidfd = -1;
  int flags = CLONE_VM | CLONE_VFORK; /* exit signal 0 */
  if (want_pidfd)
    flags |= CLONE_PIDFD;
  c->join_cgroup = c->plan->cgroup_dirfd >= 0;
  pid_t pid = clone(child_main, stack + PK__CHILD_STACK, flags, c,
                    want_pidfd ? &pidfd : NULL);
  if (pid < 0)
    return errno;
  out->pid = pid;
  out->pidfd = want_pidfd ? pidfd : -1;
  out->method = want_pidfd ? "clone" : "clone+nopidfd";
  if (!want_pidfd && !(c->plan->disable & PK_NO_PIDFD)) {
    long fd = syscall(SYS_pidfd_open, pid, 0);
    if (fd >= 0) {
      out->pidfd = (int)fd;
      out->method = "clone+pidfd_open";
    }
  }
  return 0;
}

/* Only these mean "this way of cloning is not available here". */
static bool clone_unsupported(int err) {
  return err == ENOSYS || err == EINVAL || err == EPERM || err == E2BIG;
}

static int do_clone(child_ctx *c, char *stack, pk__spawn_out *out) {
  unsigned dis = c->plan->disable;
  int err = ENOSYS;
  if (!(dis & PK_NO_CLONE3)) {
    err = spawn_clone3(c, stack, out);
    if (err == 0 || !clone_unsupported(err))
      return err;
  }
  /* Without CLONE_INTO_CGROUP the child joins by writing cgroup.procs. */
  if (c->plan->cgroup_dirfd >= 0) {
    c->procsfd =
        openat(c->plan->cgroup_dirfd, "cgroup.procs", O_WRONLY | O_CLOEXEC);
    if (c->procsfd < 0)
      return errno;
  }
  if (!(dis & PK_NO_PIDFD)) {
    err = spawn_clone(c, stack, true, out);
    if (err != 0 && clone_unsupported(err))
      err = spawn_clone(c, stack, false, out);
  } else {
    err = spawn_clone(c, stack, false, out);
  }
  if (c->procsfd >= 0)
    close(c->procsfd);
  return err;
}

/* waitid with the kernel's fifth argument: the rusage of the reaped
 * child (with the descendants it waited for); glibc's waitid drops it. */
static int waitid_ru(idtype_t type, id_t id, siginfo_t *si, int options,
                     struct rusage *ru) {
  if (ru == NULL)
    return waitid(type, id, si, options);
  return (int)syscall(SYS_waitid, (int)type, id, si, options, ru);
}

int pk__waitid(pid_t pid, int pidfd, siginfo_t *si, int options,
               struct rusage *ru) {
  int rc;
  options |= __WALL; /* our children have an exit signal of 0 */
  for (;;) {
    memset(si, 0, sizeof(*si));
    if (ru != NULL)
      memset(ru, 0, sizeof(*ru));
    if (pidfd >= 0) {
      rc = waitid_ru((idtype_t)P_PIDFD, (id_t)pidfd, si, options, ru);
      if (rc < 0 && errno == EAGAIN && !(options & WNOHANG)) {
        /* libuv made the pidfd non-blocking: wait for it to be readable */
        struct pollfd pfd = {.fd = pidfd, .events = POLLIN};
        poll(&pfd, 1, -1);
        continue;
      }
      /* P_PIDFD (5.4) may be missing where pidfds exist (5.2, 5.3) */
      if (rc < 0 && errno == EINVAL)
        rc = waitid_ru(P_PID, (id_t)pid, si, options, ru);
    } else {
      rc = waitid_ru(P_PID, (id_t)pid, si, options, ru);
    }
    if (rc == 0 || errno != EINTR)
      return rc;
  }
}

/* struct pidfd_info of <linux/pidfd.h> (Linux 6.15: PIDFD_INFO_EXIT),
 * its first version, declared here for older headers. */
struct pk__pidfd_info {
  uint64_t mask;
  uint64_t cgroupid;
  uint32_t pid, tgid, ppid, ruid, rgid, euid, egid, suid, sgid, fsuid, fsgid;
  int32_t exit_code;
};
#define PK__PIDFD_GET_INFO _IOWR(0xFF, 11, struct pk__pidfd_info)
#define PK__PIDFD_INFO_EXIT (1ULL << 3)

/* The reaper unlinks the child (our waitid says ECHILD) a moment before
 * the kernel records its exit for pidfd holders: a kernel that has the
 * ioctl is asked again for a short while. */
int pk__pidfd_exit_status(int pidfd, int *status) {
  for (int tries = 0; pidfd >= 0 && tries < 200; tries++) {
    struct pk__pidfd_info info;
    memset(&info, 0, sizeof(info));
    info.mask = PK__PIDFD_INFO_EXIT;
    int rc = ioctl(pidfd, PK__PIDFD_GET_INFO, &info);
    if (rc == 0 && (info.mask & PK__PIDFD_INFO_EXIT)) {
      *status = info.exit_code;
      return 0;
    }
    if (rc != 0 && errno != ESRCH)
      break; /* ENOTTY, EINVAL: no such ioctl here */
    struct timespec ms = {0, 1000000};
    nanosleep(&ms, NULL);
  }
  return PK_EUNSUPPORTED;
}

/* Reap a child that failed before exec. */
static void reap(pid_t pid, int pidfd) {
  siginfo_t si;
  pk__waitid(pid, pidfd, &si, WEXITED, NULL);
}

/* The child's stack, one per thread: the parent thread is suspended
 * (CLONE_VFORK) for as long as a child runs on it. Unmapped at thread
 * exit. */
static __thread char *tl_stack;
static pthread_key_t stack_key;
static pthread_once_t stack_once = PTHREAD_ONCE_INIT;

static void stack_release(void *stack) { munmap(stack, PK__CHILD_STACK); }
static void stack_key_init(void) {
  pthread_key_create(&stack_key, stack_release);
}

static char *child_stack(void) {
  if (tl_stack == NULL) {
    char *s = mmap(NULL, PK__CHILD_STACK, PROT_READ | PROT_WRITE,
                   MAP_PRIVATE | MAP_ANONYMOUS | MAP_STACK, -1, 0);
    if (s == MAP_FAILED)
      return NULL;
    pthread_once(&stack_once, stack_key_init);
    pthread_setspecific(stack_key, s);
    tl_stack = s;
  }
  return tl_stack;
}

int pk__spawn(const pk__spawn_plan *plan, pk__spawn_out *out) {
  out->pid = 0;
  out->pidfd = -1;
  out->method = "";
  out->stage = PK__STAGE_NONE;
  out->err = 0;
  int errpipe[2];
  if (pipe2(errpipe, O_CLOEXEC) < 0) {
    out->stage = PK__STAGE_CLONE;
    out->err = errno;
    return pk__spawn_error_code(out->stage, out->err);
  }
  char *stack = child_stack();
  if (stack == NULL) {
    out->stage = PK__STAGE_CLONE;
    out->err = errno;
    close(errpipe[0]);
    close(errpipe[1]);
    return pk__spawn_error_code(out->stage, out->err);
  }
  child_ctx ctx = {.plan = plan,
                   .errfd = errpipe[1],
                   .parent = plan->pdeathsig ? getpid() : 0,
                   .procsfd = -1};
  sigset_t all, old;
  sigfillset(&all);
  pthread_sigmask(SIG_SETMASK, &all, &old);
  int saved_errno = errno;
  int err = do_clone(&ctx, stack, out);
  errno = saved_errno;
  pthread_sigmask(SIG_SETMASK, &old, NULL);
  close(errpipe[1]);
  if (err != 0) {
    close(errpipe[0]);
    out->stage = PK__STAGE_CLONE;
    out->err = err;
    return pk__spawn_error_code(out->stage, out->err);
  }
  int msg[2];
  ssize_t n;
  do
    n = read(errpipe[0], msg, sizeof(msg));
  while (n < 0 && errno == EINTR);
  close(errpipe[0]);
  if (n == 0)
    return 0;
  out->stage = n == (ssize_t)sizeof(msg) ? msg[0] : PK__STAGE_CLONE;
  out->err = n == (ssize_t)sizeof(msg) ? msg[1] : EIO;
  reap(out->pid, out->pidfd);
  if (out->pidfd >= 0)
    close(out->pidfd);
  out->pidfd = -1;
  return pk__spawn_error_code(out->stage, out->err);
}
