/* The opt-in subreaper mode (Linux): this process becomes a child
 * subreaper, so descendants of its runs that escaped their process group
 * (setsid, a double fork) come back to it as orphans when their parent
 * exits, and pk_subreaper_kill_orphans ends them. The live direct
 * children of pk's runs are in a registry (real_runner.c adds and
 * removes them) and are never touched, nor is this process's guardian. */
#include "internal.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#define PK__ORPHAN_ROUNDS 200

static pthread_mutex_t reg_mu = PTHREAD_MUTEX_INITIALIZER;
/* Held shared by each spawn until its child is registered, exclusive by
 * the sweep while it lists the orphans: a child just spawned is never
 * taken for one. */
static pthread_rwlock_t spawn_lk = PTHREAD_RWLOCK_INITIALIZER;

void pk__leader_spawn_begin(void) { pthread_rwlock_rdlock(&spawn_lk); }
void pk__leader_spawn_end(void) { pthread_rwlock_unlock(&spawn_lk); }
static pid_t *reg;
static size_t nreg, reg_cap;

void pk__leader_add(pid_t pid) {
  pthread_mutex_lock(&reg_mu);
  if (nreg == reg_cap) {
    size_t cap = reg_cap ? reg_cap * 2 : 32;
    pid_t *p = pk__realloc(reg, cap * sizeof(*p));
    if (p != NULL) {
      reg = p;
      reg_cap = cap;
    }
  }
  if (nreg < reg_cap) /* out of memory: only the sweep loses track */
    reg[nreg++] = pid;
  pthread_mutex_unlock(&reg_mu);
}

void pk__leader_remove(pid_t pid) {
  pthread_mutex_lock(&reg_mu);
  for (size_t i = 0; i < nreg; i++) {
    if (reg[i] == pid) {
      reg[i] = reg[--nreg];
      break;
    }
  }
  pthread_mutex_unlock(&reg_mu);
}

static bool is_leader(pid_t pid) {
  pthread_mutex_lock(&reg_mu);
  bool found = false;
  for (size_t i = 0; !found && i < nreg; i++)
    found = reg[i] == pid;
  pthread_mutex_unlock(&reg_mu);
  return found;
}

int pk_subreaper_enable(void) {
  return prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) == 0 ? 0 : PK__ERR(errno);
}

bool pk_subreaper_enabled(void) {
  int on = 0;
  return prctl(PR_GET_CHILD_SUBREAPER, &on, 0, 0, 0) == 0 && on != 0;
}

/* This process's guardian: its command line names our per-owner cgroup
 * (pk-<our pid>-...). */
static bool is_guardian(pid_t pid) {
  char path[64], cmd[4096], want[32];
  int wlen = snprintf(want, sizeof(want), "/pk-%d-", (int)getpid());
  snprintf(path, sizeof(path), "/proc/%d/cmdline", (int)pid);
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  ssize_t n = fd >= 0 ? read(fd, cmd, sizeof(cmd)) : -1;
  if (fd >= 0)
    close(fd);
  return n > 0 && memmem(cmd, (size_t)n, want, (size_t)wlen) != NULL;
}

/* The children of pid (every thread's), appended to out (up to cap). */
static size_t children_of(pid_t pid, pid_t *out, size_t n, size_t cap) {
  char path[64];
  snprintf(path, sizeof(path), "/proc/%d/task", (int)pid);
  DIR *d = opendir(path);
  if (d == NULL)
    return n;
  struct dirent *e;
  while ((e = readdir(d)) != NULL) {
    if (e->d_name[0] == '.')
      continue;
    char cpath[128];
    snprintf(cpath, sizeof(cpath), "/proc/%d/task/%.16s/children", (int)pid,
             e->d_name);
    FILE *f = fopen(cpath, "re");
    long c;
    while (f != NULL && n < cap && fscanf(f, "%ld", &c) == 1)
      out[n++] = (pid_t)c;
    if (f != NULL)
      fclose(f);
  }
  closedir(d);
  return n;
}

/* SIGSTOP then SIGKILL an orphan and everything below it (stopped first
 * so that nothing forks past the walk), then reap the orphan. How many
 * processes were killed. */
static int kill_subtree(pid_t root) {
  enum { CAP = 4096 };
  pid_t *q = pk__calloc(CAP, sizeof(pid_t));
  int killed = 0;
  if (q == NULL) {
    killed = pk__proc_running(root) && kill(root, SIGKILL) == 0;
  } else {
    size_t n = 0;
    q[n++] = root;
    for (size_t i = 0; i < n; i++) {
      kill(q[i], SIGSTOP);
      n = children_of(q[i], q, n, CAP);
    }
    for (size_t i = 0; i < n; i++) /* a zombie was dead already */
      killed += pk__proc_running(q[i]) && kill(q[i], SIGKILL) == 0;
    pk__free(q);
  }
  /* ours to reap (we are its subreaper); bounded, should the kill not
   * have taken */
  for (int i = 0; i < 5000 && waitpid(root, NULL, WNOHANG) == 0; i++)
    poll(NULL, 0, 1);
  return killed;
}

int pk_subreaper_kill_orphans(int *killed) {
  if (killed != NULL)
    *killed = 0;
  if (!pk_subreaper_enabled())
    return PK_EINVAL;
  int total = 0;
  enum { CAP = 1024 };
  pid_t kids[CAP], tried[CAP];
  size_t ntried = 0;
  /* The descendants of a killed orphan come to us in turn: go round
   * until no new orphan is left (one that could not be killed, EPERM or
   * stuck, is tried once, not again every round). */
  for (int round = 0; round < PK__ORPHAN_ROUNDS; round++) {
    pthread_rwlock_wrlock(&spawn_lk);
    size_t n = children_of(getpid(), kids, 0, CAP);
    size_t m = 0;
    for (size_t i = 0; i < n; i++) {
      bool seen = false;
      for (size_t j = 0; j < ntried && !seen; j++)
        seen = tried[j] == kids[i];
      if (!seen && !is_leader(kids[i]) && !is_guardian(kids[i]))
        kids[m++] = kids[i];
    }
    pthread_rwlock_unlock(&spawn_lk);
    if (m == 0)
      break;
    for (size_t i = 0; i < m; i++) {
      if (ntried < CAP)
        tried[ntried++] = kids[i];
      total += kill_subtree(kids[i]);
    }
  }
  if (killed != NULL)
    *killed = total;
  return 0;
}
