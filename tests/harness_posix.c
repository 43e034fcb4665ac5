/* The harness on POSIX hosts: subreaper, /proc-based leak snapshots,
 * pidfds and the privilege-dropping fixture copies. */
#include "harness.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

const char *pk__cgroup_base(void); /* internal, for leak checks */

int pkt_setup(void **state) {
  (void)state;
  if (prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) != 0)
    return -1;
  /* One blocking run creates the thread's cached loop and libuv's
   * process-wide signal pipe, both kept for the life of the thread. */
  pk_runner *r;
  pk_cmd *cmd;
  if (pk_real_runner_new(NULL, &r) != 0)
    return -1;
  int rc = pk_cmd_new(PK_FIXTURE, &cmd);
  if (rc == 0)
    rc = pk_cmd_arg(cmd, "exit");
  if (rc == 0)
    rc = pk_cmd_arg(cmd, "0");
  if (rc == 0)
    rc = pk_output(r, cmd, NULL);
  pk_cmd_free(cmd);
  pk_runner_free(r);
  return rc == 0 ? 0 : -1;
}

static int list_fds(int *out, int max) {
  DIR *d = opendir("/proc/self/fd");
  assert_non_null(d);
  int n = 0, self = dirfd(d);
  struct dirent *e;
  while ((e = readdir(d)) != NULL) {
    if (e->d_name[0] == '.')
      continue;
    int fd = atoi(e->d_name);
    if (fd != self && n < max)
      out[n++] = fd;
  }
  closedir(d);
  return n;
}

/* Sanitizers start llvm-symbolizer as our child to print reports; it is
 * theirs, not a leak of the code under test. */
static bool is_tool_process(pid_t pid) {
  char path[64], cmd[256] = "";
  snprintf(path, sizeof(path), "/proc/%d/cmdline", (int)pid);
  FILE *f = fopen(path, "re");
  if (f == NULL)
    return false;
  size_t len = fread(cmd, 1, sizeof(cmd) - 1, f);
  cmd[len] = '\0';
  fclose(f);
  return strstr(cmd, "llvm-symbolizer") != NULL;
}

/* Pids listed in /proc/self/task/ * /children. */
static int list_children(pid_t *out, int max) {
  DIR *d = opendir("/proc/self/task");
  assert_non_null(d);
  int n = 0;
  struct dirent *e;
  while ((e = readdir(d)) != NULL) {
    if (e->d_name[0] == '.')
      continue;
    char path[300];
    snprintf(path, sizeof(path), "/proc/self/task/%.64s/children", e->d_name);
    FILE *f = fopen(path, "re");
    if (f == NULL)
      continue;
    long pid;
    while (fscanf(f, "%ld", &pid) == 1)
      if (n < max && !is_tool_process((pid_t)pid))
        out[n++] = (pid_t)pid;
    fclose(f);
  }
  closedir(d);
  return n;
}

int pkt_count_children(void) {
  pid_t pids[4096];
  return list_children(pids, 4096);
}

int pkt_reap_children(void) {
  pid_t pids[4096];
  int n = list_children(pids, 4096), reaped = 0;
  for (int i = 0; i < n; i++)
    if (waitpid(pids[i], NULL, WNOHANG | __WALL) == pids[i])
      reaped++;
  return reaped;
}

/* cgroup directories below dirfd, at every depth. */
static int count_subdirs(int at) {
  int fd = openat(at, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  DIR *d = fd >= 0 ? fdopendir(fd) : NULL;
  if (d == NULL)
    return 0;
  int n = 0;
  struct dirent *e;
  while ((e = readdir(d)) != NULL) {
    if (e->d_type != DT_DIR || e->d_name[0] == '.')
      continue;
    int sub = openat(dirfd(d), e->d_name, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    n += 1 + (sub >= 0 ? count_subdirs(sub) : 0);
    if (sub >= 0)
      close(sub);
  }
  closedir(d);
  return n;
}

int pkt_count_cgroups(void) {
  const char *base = pk__cgroup_base();
  if (base == NULL)
    return -1;
  DIR *d = opendir(base);
  if (d == NULL)
    return -1;
  /* Only this process's per-owner cgroups (pk-<pid>-<start>-<ns>): other
   * test programs run in parallel. The per-owner directory itself lives
   * as long as the process; what runs leave behind is below it. */
  char mine[32];
  int n = 0, len = snprintf(mine, sizeof(mine), "pk-%d-", (int)getpid());
  struct dirent *e;
  while ((e = readdir(d)) != NULL) {
    if (strncmp(e->d_name, mine, (size_t)len) != 0)
      continue;
    int fd = openat(dirfd(d), e->d_name, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    n += fd >= 0 ? count_subdirs(fd) : 0;
    if (fd >= 0)
      close(fd);
  }
  closedir(d);
  return n;
}

char pkt_proc_state(pid_t pid) {
  char path[64], buf[512];
  snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
  FILE *f = fopen(path, "re");
  if (f == NULL)
    return 0;
  size_t n = fread(buf, 1, sizeof(buf) - 1, f);
  fclose(f);
  buf[n] = '\0';
  const char *rp = strrchr(buf, ')');
  return rp != NULL && rp[1] == ' ' ? rp[2] : 0;
}

char pkt_wait_state(pid_t pid, char st, int ms) {
  uint64_t end = pkt_now_ms() + (uint64_t)ms;
  while (pkt_proc_state(pid) != st && pkt_now_ms() < end)
    poll(NULL, 0, 2);
  return pkt_proc_state(pid);
}

int64_t pkt_cpu_ticks(pid_t pid) {
  char path[64], buf[1024];
  snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
  FILE *f = fopen(path, "re");
  if (f == NULL)
    return -1;
  size_t n = fread(buf, 1, sizeof(buf) - 1, f);
  fclose(f);
  buf[n] = '\0';
  const char *p = strrchr(buf, ')');
  unsigned long long ut = 0, st = 0;
  /* utime and stime: fields 14 and 15, counted from the state (3) */
  if (p == NULL || sscanf(p + 2,
                          "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u "
                          "%llu %llu",
                          &ut, &st) != 2)
    return -1;
  return (int64_t)(ut + st);
}

int pkt_pid_alive(pid_t pid) {
  char st = pkt_proc_state(pid);
  return st != 0 && st != 'Z' && st != 'X';
}

/* The leaf pool's helper thread (lib/src/cgroup_pool.c) makes leaves
 * ahead and removes them behind: counts are taken when it is settled,
 * without its ready leaves (a directory and two fds each), whose number
 * depends on what the helper could make, not on what a test leaked. */
int pk__pool_settle(int timeout_ms);

int pkt_pool_settle(void) { return pk__pool_settle(10000); }

void pkt_snapshot_take(pkt_snapshot *s) {
  int ready = pk__pool_settle(10000);
  memset(s, 0, sizeof(*s));
  s->nfds = list_fds(s->fds, 256) - 2 * ready;
  s->nchildren = pkt_count_children();
  s->ncgroups = pkt_count_cgroups() - ready;
}

void pkt_snapshot_check(const pkt_snapshot *s) {
  uint64_t deadline = pkt_now_ms() + 30000;
  while (pkt_count_children() > s->nchildren && pkt_now_ms() < deadline) {
    if (pkt_reap_children() == 0)
      usleep(2000);
  }
  int children = pkt_count_children();
  if (children != s->nchildren) {
    pid_t pids[64];
    int n = list_children(pids, 64);
    for (int i = 0; i < n; i++) {
      char path[64], cmd[256] = "";
      snprintf(path, sizeof(path), "/proc/%d/cmdline", (int)pids[i]);
      FILE *f = fopen(path, "re");
      if (f != NULL) {
        size_t len = fread(cmd, 1, sizeof(cmd) - 1, f);
        cmd[len] = '\0';
        fclose(f);
      }
      print_message("child %d: %s\n", (int)pids[i], cmd);
    }
    fail_msg("child processes: %d before, %d after", s->nchildren, children);
  }
  int fds[256];
  int ready = pk__pool_settle(10000);
  int n = list_fds(fds, 256) - 2 * ready;
  if (n != s->nfds) {
    char path[64], target[256];
    for (int i = 0; i < n; i++) {
      snprintf(path, sizeof(path), "/proc/self/fd/%d", fds[i]);
      ssize_t l = readlink(path, target, sizeof(target) - 1);
      target[l > 0 ? l : 0] = '\0';
      print_message("fd %d -> %s\n", fds[i], target);
    }
    fail_msg("open fds: %d before, %d after (%d ready leaves of the pool "
             "not counted)",
             s->nfds, n, ready);
  }
  ready = pk__pool_settle(10000);
  int cg = pkt_count_cgroups() - ready;
  if (cg != s->ncgroups)
    fail_msg("pk cgroup directories: %d before, %d after", s->ncgroups, cg);
}

pk_cmd *pkt_fixture_copy_cmd(const pkt_fixture_copy *c, const char *mode, ...) {
  va_list ap;
  va_start(ap, mode);
  pk_cmd *cmd = pkt_fixture_cmd_v(c->path, mode, ap);
  va_end(ap);
  return cmd;
}

/* Copies not removed yet: a test that fails (cmocka leaves it at the
 * failed assertion) never reaches its remove, so the process removes
 * what is left when it exits. */
static char copies[8][64];
static pid_t copies_pid;

static void copies_at_exit(void) {
  if (getpid() != copies_pid)
    return; /* a forked child: the copies are its parent's */
  for (int i = 0; i < 8; i++) {
    if (copies[i][0] == '\0')
      continue;
    char path[sizeof(copies) + 16]; /* gcc bounds it by the array */
    snprintf(path, sizeof(path), "%s/pk-fixture", copies[i]);
    unlink(path);
    rmdir(copies[i]);
  }
}

static void copies_note(const char *dir, bool add) {
  if (copies_pid != getpid()) {
    copies_pid = getpid();
    memset(copies, 0, sizeof(copies));
    atexit(copies_at_exit);
  }
  for (int i = 0; i < 8; i++) {
    if (add ? copies[i][0] == '\0' : strcmp(copies[i], dir) == 0) {
      snprintf(copies[i], sizeof(copies[i]), "%s", add ? dir : "");
      return;
    }
  }
}

/* /tmp itself, not $TMPDIR: that may be private to us as well. */
void pkt_fixture_copy_make(pkt_fixture_copy *c) {
  strcpy(c->dir, "/tmp/pk-fixture-XXXXXX");
  if (mkdtemp(c->dir) == NULL)
    fail_msg("mkdtemp %s: %s", c->dir, strerror(errno));
  copies_note(c->dir, true);
  assert_int_equal(chmod(c->dir, 0755), 0); /* mkdtemp made it 0700 */
  snprintf(c->path, sizeof(c->path), "%s/pk-fixture", c->dir);
  int in = open(PK_FIXTURE, O_RDONLY | O_CLOEXEC);
  if (in < 0)
    fail_msg("open %s: %s", PK_FIXTURE, strerror(errno));
  int out = open(c->path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0755);
  if (out < 0)
    fail_msg("create %s: %s", c->path, strerror(errno));
  char buf[65536];
  ssize_t n;
  while ((n = read(in, buf, sizeof(buf))) > 0)
    assert_int_equal(write(out, buf, (size_t)n), n);
  assert_int_equal(n, 0);
  assert_int_equal(fchmod(out, 0755), 0); /* whatever the umask */
  close(in);
  /* Closed before any exec: a writer still open would make it ETXTBSY. */
  assert_int_equal(close(out), 0);
}

void pkt_fixture_copy_remove(pkt_fixture_copy *c) {
  copies_note(c->dir, false);
  if (unlink(c->path) != 0)
    fail_msg("unlink %s: %s", c->path, strerror(errno));
  if (rmdir(c->dir) != 0)
    fail_msg("rmdir %s: %s", c->dir, strerror(errno));
  struct stat st;
  if (lstat(c->dir, &st) == 0 || errno != ENOENT)
    fail_msg("%s is still there", c->dir);
}

int pkt_pidfd(pid_t pid) {
  int fd = (int)syscall(SYS_pidfd_open, pid, 0);
  if (fd < 0)
    fail_msg("pidfd_open(%d): %s", (int)pid, strerror(errno));
  return fd;
}

int pkt_wait_pidfds(int *fds, int n, int ms) {
  struct pollfd *pfd = calloc((size_t)n + 1, sizeof(*pfd));
  assert_non_null(pfd);
  uint64_t deadline = pkt_now_ms() + (uint64_t)ms;
  int left = n;
  while (left > 0 && pkt_now_ms() < deadline) {
    int k = 0;
    for (int i = 0; i < n; i++)
      if (fds[i] >= 0)
        pfd[k++] = (struct pollfd){.fd = fds[i], .events = POLLIN};
    if (poll(pfd, (nfds_t)k, 100) < 0 && errno != EINTR)
      break;
    for (int i = 0, j = 0; i < n; i++) {
      if (fds[i] < 0)
        continue;
      if (pfd[j++].revents != 0) {
        close(fds[i]);
        fds[i] = -1;
        left--;
      }
    }
  }
  for (int i = 0; i < n; i++) {
    if (fds[i] >= 0) {
      syscall(SYS_pidfd_send_signal, fds[i], SIGKILL, NULL, 0);
      close(fds[i]);
      fds[i] = -1;
    }
  }
  free(pfd);
  return left;
}

void pkt_setenv(const char *name, const char *value) {
  int rc = uv_os_setenv(name, value);
  if (rc != 0)
    fail_msg("setenv %s: %s", name, uv_strerror(rc));
}

void pkt_unsetenv(const char *name) {
  int rc = uv_os_unsetenv(name);
  if (rc != 0)
    fail_msg("unsetenv %s: %s", name, uv_strerror(rc));
}
