/* process_group backend: setpgid in the child, killpg for the tree.
 *
 * A process may leave the group (setsid, setpgid). While the leader is
 * alive and unreaped its descendants can still be found by walking
 * /proc/<pid>/task/<tid>/children, so before signalling a live run the
 * tree is walked and every descendant outside the group is remembered
 * (by pidfd where possible, so a reused pid is never signalled), signalled
 * with the group and reported. Once the leader has exited its orphans are
 * reparented and can no longer be found: that gap is documented. */
#include "group.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#define PK__MAX_WALK 65536

typedef struct pidvec {
  pid_t *v;
  size_t n, cap;
} pidvec;

static int pidvec_push(pidvec *q, pid_t pid) {
  if (q->n == q->cap) {
    size_t cap = q->cap ? q->cap * 2 : 64;
    pid_t *v = pk__realloc(q->v, cap * sizeof(pid_t));
    if (v == NULL)
      return PK_ENOMEM;
    q->v = v;
    q->cap = cap;
  }
  q->v[q->n++] = pid;
  return 0;
}

/* Append the children of every thread of pid to q. */
static void push_children(pidvec *q, pid_t pid) {
  char path[64];
  snprintf(path, sizeof(path), "/proc/%d/task", (int)pid);
  DIR *d = opendir(path);
  if (d == NULL)
    return;
  struct dirent *t;
  while ((t = readdir(d)) != NULL) {
    if (t->d_name[0] == '.')
      continue;
    char cpath[300];
    snprintf(cpath, sizeof(cpath), "/proc/%d/task/%.32s/children", (int)pid,
             t->d_name);
    FILE *f = fopen(cpath, "re");
    long child;
    while (f != NULL && fscanf(f, "%ld", &child) == 1 && q->n < PK__MAX_WALK)
      pidvec_push(q, (pid_t)child);
    if (f != NULL)
      fclose(f);
  }
  closedir(d);
}

static bool known_escapee(const pk__group *g, pid_t pid) {
  for (int i = 0; i < g->nesc; i++)
    if (g->esc_pid[i] == pid)
      return true;
  return false;
}

static bool grow_escapees(pk__group *g) {
  if (g->nesc < g->esc_cap)
    return true;
  int cap = g->esc_cap ? g->esc_cap * 2 : 16;
  pid_t *pids = pk__realloc(g->esc_pid, (size_t)cap * sizeof(pid_t));
  if (pids == NULL)
    return false;
  g->esc_pid = pids;
  int *fds = pk__realloc(g->esc_fd, (size_t)cap * sizeof(int));
  if (fds == NULL)
    return false;
  g->esc_fd = fds;
  g->esc_cap = cap;
  return true;
}

/* Remember an escapee (and SIGSTOP it when stopping). One that cannot be
 * remembered gets sig right away: nothing found is ever left out. */
static void add_escapee(pk__group *g, pid_t pid, bool stop, int sig) {
  if (!grow_escapees(g)) {
    g->esc_untracked++;
    kill(pid, sig);
    return;
  }
  long fd = (g->disable & PK_NO_PIDFD) ? -1 : syscall(SYS_pidfd_open, pid, 0);
  g->esc_pid[g->nesc] = pid;
  g->esc_fd[g->nesc] = (int)fd;
  g->nesc++;
  if (stop)
    kill(pid, SIGSTOP);
}

/* Walk the leader's descendants; remember (and with stop, SIGSTOP) those
 * outside the group; sig is for any that cannot be remembered. Returns
 * how many new ones were found. */
static int find_escapees(pk__group *g, bool stop, int sig) {
  pidvec q = {0};
  int found = 0;
  if (pidvec_push(&q, g->leader) != 0)
    return 0;
  for (size_t i = 0; i < q.n; i++) {
    pid_t pid = q.v[i];
    if (i > 0 && getpgid(pid) != g->pgid && !known_escapee(g, pid)) {
      add_escapee(g, pid, stop, sig);
      found++;
    }
    push_children(&q, pid);
  }
  pk__free(q.v);
  return found;
}

static void signal_escapees(pk__group *g, int sig) {
  for (int i = 0; i < g->nesc; i++) {
    if (g->esc_fd[i] >= 0)
      syscall(SYS_pidfd_send_signal, g->esc_fd[i], sig, NULL, 0);
    else
      kill(g->esc_pid[i], sig); /* best effort against pid reuse */
  }
}

int pk__pgroup_signal(pk__group *g, int sig, bool leader_alive) {
  if (g->pgid <= 0)
    return PK_ESRCH;
  if (sig == SIGKILL) {
    pk__pgroup_kill(g, leader_alive);
    return 0;
  }
  if (leader_alive && sig != 0)
    find_escapees(g, false, sig);
  int rc = killpg(g->pgid, sig) < 0
               ? (errno == ESRCH ? PK_ESRCH : PK__ERR(errno))
               : 0;
  if (sig != 0)
    signal_escapees(g, sig);
  return rc;
}

void pk__pgroup_kill(pk__group *g, bool leader_alive) {
  if (g->pgid <= 0)
    return;
  if (leader_alive) {
    /* Freeze the group so nothing forks while we look, then walk until a
     * pass finds nobody new (escapees are stopped as they are found). */
    killpg(g->pgid, SIGSTOP);
    for (int pass = 0; pass < 8 && find_escapees(g, true, SIGKILL) > 0; pass++)
      ;
  }
  killpg(g->pgid, SIGKILL);
  signal_escapees(g, SIGKILL);
}

/* True if a process of group pgid is still running (zombies excepted:
 * they are dead, only waiting for whoever inherited them). */
bool pk__pgroup_live(pid_t pgid) {
  DIR *d = opendir("/proc");
  if (d == NULL)
    return false;
  bool live = false;
  struct dirent *e;
  while (!live && (e = readdir(d)) != NULL) {
    if (e->d_name[0] < '1' || e->d_name[0] > '9')
      continue;
    char path[300], buf[512];
    snprintf(path, sizeof(path), "/proc/%.32s/stat", e->d_name);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
      continue;
    ssize_t n = read(fd, buf, sizeof(buf) - 1);
    close(fd);
    if (n <= 0)
      continue;
    buf[n] = '\0';
    char *rp = strrchr(buf, ')'), state;
    long ppid, pgrp;
    if (rp != NULL && sscanf(rp + 1, " %c %ld %ld", &state, &ppid, &pgrp) == 3)
      live = pgrp == (long)pgid && state != 'Z' && state != 'X';
  }
  closedir(d);
  return live;
}

/* An escapee still runs: its pidfd is not readable yet (without a pidfd,
 * its /proc entry says it is not a zombie). */
static bool escapee_live(const pk__group *g, int i) {
  if (g->esc_fd[i] >= 0) {
    struct pollfd pfd = {.fd = g->esc_fd[i], .events = POLLIN};
    return poll(&pfd, 1, 0) == 0;
  }
  return pk__proc_running(g->esc_pid[i]);
}

static bool escapees_live(const pk__group *g) {
  for (int i = 0; i < g->nesc; i++)
    if (escapee_live(g, i))
      return true;
  return false;
}

int pk__pgroup_wait_gone(pk__group *g, int timeout_ms) {
  if (g->pgid <= 0)
    return 0;
  /* Cheap first: no member left at all (the common case). Only when some
   * remain (alive, or dead orphans not yet reaped by their new parent) is
   * /proc scanned. No signals: once the leader is reaped the pgid is only
   * ours while members exist. */
  bool members = killpg(g->pgid, 0) == 0;
  uint64_t deadline = pk__now_ns() + (uint64_t)timeout_ms * 1000000u;
  while ((members && pk__pgroup_live(g->pgid)) || escapees_live(g)) {
    if (pk__now_ns() >= deadline)
      return PK_ETIMEOUT;
    poll(NULL, 0, 1);
  }
  return 0;
}

void pk__pgroup_destroy(pk__group *g) {
  for (int i = 0; i < g->nesc; i++)
    if (g->esc_fd[i] >= 0)
      close(g->esc_fd[i]);
  g->esc_found += g->nesc + g->esc_untracked;
  g->nesc = g->esc_untracked = 0;
  pk__free(g->esc_pid);
  pk__free(g->esc_fd);
  g->esc_pid = NULL;
  g->esc_fd = NULL;
  g->esc_cap = 0;
  g->pgid = g->leader = 0;
}
