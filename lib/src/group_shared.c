/* Shared groups (pk_group): one container for many runs. On cgroup_v2 the
 * group is a cgroup in this process's per-owner cgroup, with a leaf per
 * run (made by the real runner through pk__grp_leaf) and per adopted
 * process; the group's limits are written to its own cgroup, and every
 * whole-group operation acts on that directory. On process_group every
 * run is its own process group and the group tracks the leaders (and
 * adopted processes, by pidfd where there is one). */
#include "group.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#define PK__GROUP_KILL_MS 30000
#define PK__FREEZE_MS 5000

typedef struct member {
  const void *key; /* the run (real exec) it belongs to; NULL: adopted */
  pid_t pid;       /* a run's leader is also its process group */
  int pidfd;       /* adopted, where pidfd_open works; else -1 */
} member;

struct pk_group {
  pk_runner *runner;
  pk_group_opts opts;
  pk_mechanism mech;
  pthread_mutex_t mu;
  atomic_int refs; /* the group itself + every run not yet freed */
  bool suspended;
  /* cgroup_v2 */
  pk__group cg; /* the group's own cgroup (path, dirfd, eventsfd) */
  /* process_group: tracked leaders and adopted processes */
  member *m;
  size_t nm, cap;
  pk__grp_wait *waiting; /* runs whose start waits for a resume */
  int starting;          /* spawns under way: a suspend waits for them */
  pthread_cond_t started;
};

/* ------------------------------------------------------------- limits */

static int write_file(int dirfd, const char *file, const char *val) {
  int fd = openat(dirfd, file, O_WRONLY | O_CLOEXEC);
  ssize_t n = fd >= 0 ? write(fd, val, strlen(val)) : -1;
  int e = errno;
  if (fd >= 0)
    close(fd);
  return n < 0 ? PK__ERR(e) : 0;
}

/* Write one limit into the group's cgroup and read it back: a cap that
 * did not take is no cap. */
static int apply_limit(pk_group *g, const char *ctrl, const char *file,
                       const char *val, const char *opt, char **msg) {
  const char *owner;
  int rc = pk__owner_cgroup(g->opts.kill_on_parent_death, g->opts.disable,
                            &owner, msg);
  if (rc == 0)
    rc = pk__cgroup_enable(owner, ctrl, msg);
  if (rc != 0) {
    char *why = *msg;
    *msg = pk__sprintf("%s: %s", opt, why ? why : pk_strerror(rc));
    pk__free(why);
    return rc;
  }
  if ((rc = write_file(g->cg.dirfd, file, val)) != 0) {
    *msg = pk__sprintf("%s: cannot write %s to %s/%s: %s", opt, val, g->cg.path,
                       file, pk_strerror(rc));
    return PK_ELIMIT;
  }
  char back[128] = "";
  int fd = openat(g->cg.dirfd, file, O_RDONLY | O_CLOEXEC);
  ssize_t n = fd >= 0 ? read(fd, back, sizeof(back) - 1) : -1;
  if (fd >= 0)
    close(fd);
  back[n > 0 ? n : 0] = '\0';
  back[strcspn(back, "\n")] = '\0';
  if (strncmp(back, val, strcspn(val, " ")) != 0 || back[0] == '\0') {
    *msg = pk__sprintf("%s: %s/%s reads \"%s\" after writing \"%s\"", opt,
                       g->cg.path, file, back, val);
    return PK_ELIMIT;
  }
  /* Per-run leaves get the controller too (their own memory.peak). */
  write_file(g->cg.dirfd, "cgroup.subtree_control",
             strcmp(ctrl, "memory") == 0 ? "+memory"
             : strcmp(ctrl, "pids") == 0 ? "+pids"
                                         : "+cpu");
  return 0;
}

static int apply_limits(pk_group *g, char **msg) {
  char val[64];
  int rc = 0;
  const pk_group_opts *o = &g->opts;
  if (rc == 0 && o->memory_max > 0) {
    int64_t v = o->memory_max & ~(int64_t)4095; /* the kernel's rounding */
    snprintf(val, sizeof(val), "%lld", (long long)v);
    rc = apply_limit(g, "memory", "memory.max", val, "memory_max", msg);
    /* no swap behind the cap, where swap is accounted */
    if (rc == 0)
      write_file(g->cg.dirfd, "memory.swap.max", "0");
  }
  if (rc == 0 && o->max_processes > 0) {
    snprintf(val, sizeof(val), "%lld", (long long)o->max_processes);
    rc = apply_limit(g, "pids", "pids.max", val, "max_processes", msg);
  }
  if (rc == 0 && o->cpu_quota > 0) {
    snprintf(val, sizeof(val), "%lld 100000",
             (long long)(o->cpu_quota * 100000.0 + 0.5));
    rc = apply_limit(g, "cpu", "cpu.max", val, "cpu_quota", msg);
  }
  return rc;
}

/* -------------------------------------------------------- create, free */

static void group_release(pk_group *g) {
  if (g->mech == PK_MECH_CGROUP_V2 && g->cg.path != NULL) {
    /* Leaves of runs are gone by now; adopted leaves may remain. */
    if (rmdir(g->cg.path) != 0 && errno != ENOENT) {
      pk__cgroup_kill_all(&g->cg, PK__GROUP_KILL_MS);
      pk__cgtree_remove(AT_FDCWD, g->cg.path);
    }
  }
  pk__cgroup_destroy(&g->cg);
  for (size_t i = 0; i < g->nm; i++)
    if (g->m[i].pidfd >= 0)
      close(g->m[i].pidfd);
  pk__free(g->m);
  pk__real_runner_group_free(g->runner);
  pthread_cond_destroy(&g->started);
  pthread_mutex_destroy(&g->mu);
  pk__free(g);
}

void pk__grp_ref(pk_group *g) { atomic_fetch_add(&g->refs, 1); }

void pk__grp_unref(pk_group *g) {
  if (atomic_fetch_sub(&g->refs, 1) == 1)
    group_release(g);
}

int pk_group_new(const pk_group_opts *opts, pk_group **out, char **errmsg) {
  pk_group_opts o;
  char *msg = NULL;
  int rc = pk__group_new_begin(opts, out, errmsg, &o, &msg);
  if (out == NULL)
    return rc;
  pk_mechanism mech = PK_MECH_AUTO;
  if (rc == 0 && (rc = pk__host_check()) != 0)
    msg = pk__sprintf("this host cannot run an event loop");
  if (rc == 0 && o.mechanism == PK_MECH_AUTO && pk__group_has_limits(&o) &&
      pk_mechanism_best() != PK_MECH_CGROUP_V2) {
    msg = pk__sprintf("resource limits need a cgroup-v2 hierarchy this "
                      "process can write to, and there is none");
    rc = PK_ELIMIT;
  }
  if (rc == 0 && pk__mechanism_resolve(o.mechanism, &mech) != 0) {
    msg = pk__sprintf("mechanism %s is not available on this host",
                      pk_mechanism_name(o.mechanism));
    rc = PK_EUNSUPPORTED;
  }
  if (rc == 0 && mech != PK_MECH_CGROUP_V2 && pk__group_has_limits(&o)) {
    msg = pk__sprintf("mechanism %s has no resource limits (%s)",
                      pk_mechanism_name(mech),
                      o.memory_max      ? "memory_max"
                      : o.max_processes ? "max_processes"
                                        : "cpu_quota");
    rc = PK_EUNSUPPORTED;
  }
  pk_group *g = rc == 0 ? pk__calloc(1, sizeof(*g)) : NULL;
  if (rc == 0 && g == NULL)
    rc = PK_ENOMEM;
  if (rc != 0) {
    pk__group_set_msg(errmsg, msg, rc);
    return rc;
  }
  g->opts = o;
  g->mech = mech;
  atomic_init(&g->refs, 1);
  pthread_mutex_init(&g->mu, NULL);
  pthread_cond_init(&g->started, NULL);
  g->cg.dirfd = g->cg.eventsfd = -1;
  g->cg.mech = mech;
  g->cg.disable = o.disable;
  if (mech == PK_MECH_CGROUP_V2) {
    const char *owner;
    rc = pk__owner_cgroup(o.kill_on_parent_death, o.disable, &owner, &msg);
    /* Where the memory controller reaches the per-owner cgroup already,
     * hand it down so the group and its runs account peak memory and
     * OOM kills (nothing above the owner is touched for that). */
    if (rc == 0)
      pk__cgroup_offer(owner, "memory");
    if (rc == 0)
      rc = pk__cgroup_create_in(&g->cg, owner, "group", &msg);
    if (rc == 0)
      pk__cgroup_offer(g->cg.path, "memory");
    if (rc == 0)
      rc = apply_limits(g, &msg);
  }
  if (rc == 0)
    rc = pk__real_runner_group(g, mech, o.disable, &g->runner);
  if (rc != 0) {
    pk__group_set_msg(errmsg, msg, rc);
    group_release(g);
    return rc;
  }
  *out = g;
  return 0;
}

pk_mechanism pk_group_mechanism(const pk_group *g) {
  return g != NULL ? g->mech : PK_MECH_AUTO;
}

const char *pk_group_parent_death_scope(const pk_group *g) {
  if (g == NULL || !g->opts.kill_on_parent_death)
    return NULL;
  return g->mech == PK_MECH_CGROUP_V2 ? "tree" : "child";
}

pk_runner *pk_group_runner(pk_group *g) { return g != NULL ? g->runner : NULL; }

/* ----------------------------------------------- the real runner's side */

pk_mechanism pk__grp_mech(const pk_group *g) { return g->mech; }

bool pk__grp_pdeath_child(const pk_group *g) {
  return g->opts.kill_on_parent_death && g->mech == PK_MECH_PROCESS_GROUP;
}

int pk__grp_leaf(pk_group *g, pk__group *leaf, char **msg) {
  if (g->mech != PK_MECH_CGROUP_V2)
    return pk__group_create(leaf, g->mech, g->opts.disable, false, msg);
  memset(leaf, 0, sizeof(*leaf));
  leaf->dirfd = leaf->eventsfd = -1;
  leaf->mech = PK_MECH_CGROUP_V2;
  leaf->disable = g->opts.disable;
  *msg = NULL;
  return pk__cgroup_create_in(leaf, g->cg.path, "run", msg);
}

static int add_member(pk_group *g, const void *key, pid_t pid, int pidfd) {
  if (g->nm == g->cap) {
    size_t cap = g->cap ? g->cap * 2 : 16;
    member *m = pk__realloc(g->m, cap * sizeof(*m));
    if (m == NULL)
      return PK_ENOMEM;
    g->m = m;
    g->cap = cap;
  }
  g->m[g->nm++] = (member){key, pid, pidfd};
  return 0;
}

static void drop_member(pk_group *g, size_t i) {
  if (g->m[i].pidfd >= 0)
    close(g->m[i].pidfd);
  g->m[i] = g->m[--g->nm];
}

void pk__grp_track(pk_group *g, const void *key, pid_t pid) {
  if (g->mech != PK_MECH_PROCESS_GROUP)
    return;
  pthread_mutex_lock(&g->mu);
  if (add_member(g, key, pid, -1) != 0)
    killpg(pid, SIGKILL); /* untracked would be uncontained */
  pthread_mutex_unlock(&g->mu);
}

void pk__grp_untrack(pk_group *g, const void *key) {
  pthread_mutex_lock(&g->mu);
  for (size_t i = 0; i < g->nm; i++)
    if (g->m[i].key == key)
      drop_member(g, i--);
  pthread_mutex_unlock(&g->mu);
}

bool pk__grp_suspended(pk_group *g) {
  pthread_mutex_lock(&g->mu);
  bool s = g->suspended;
  pthread_mutex_unlock(&g->mu);
  return s;
}

bool pk__grp_enter(pk_group *g) {
  pthread_mutex_lock(&g->mu);
  bool go = !g->suspended;
  g->starting += go;
  pthread_mutex_unlock(&g->mu);
  return go;
}

bool pk__grp_defer(pk_group *g, pk__grp_wait *w) {
  pthread_mutex_lock(&g->mu);
  bool s = g->suspended;
  if (s) {
    atomic_store(&w->state, PK__GW_WAIT);
    w->next = g->waiting;
    g->waiting = w;
    w->queued = true;
  } else {
    g->starting++;
  }
  pthread_mutex_unlock(&g->mu);
  return s;
}

void pk__grp_leave(pk_group *g) {
  pthread_mutex_lock(&g->mu);
  if (--g->starting == 0)
    pthread_cond_broadcast(&g->started);
  pthread_mutex_unlock(&g->mu);
}

void pk__grp_undefer(pk_group *g, pk__grp_wait *w) {
  pthread_mutex_lock(&g->mu);
  for (pk__grp_wait **pp = &g->waiting; *pp != NULL; pp = &(*pp)->next) {
    if (*pp == w) {
      *pp = w->next;
      break;
    }
  }
  w->queued = false;
  pthread_mutex_unlock(&g->mu);
}

/* Wake the waiting starts (locked). Resume: each goes ahead when its
 * loop gets to it (pk__grp_woken), staying listed until then so that a
 * kill meanwhile still reaches it. Kill: every one ends unstarted. */
static void wake_waiting(pk_group *g, int state) {
  for (pk__grp_wait *w = g->waiting, *next; w != NULL; w = next) {
    next = w->next;
    if (state == PK__GW_KILL) {
      w->queued = false;
      atomic_store(&w->state, PK__GW_KILL);
    } else if (atomic_load(&w->state) == PK__GW_WAIT) {
      atomic_store(&w->state, PK__GW_RESUME);
    } else {
      continue;
    }
    uv_async_send(&w->async);
  }
  if (state == PK__GW_KILL)
    g->waiting = NULL;
}

int pk__grp_woken(pk_group *g, pk__grp_wait *w) {
  pthread_mutex_lock(&g->mu);
  int st = atomic_load(&w->state);
  if (st == PK__GW_RESUME && g->suspended) {
    atomic_store(&w->state, PK__GW_WAIT); /* suspended again: wait on */
    st = PK__GW_WAIT;
  } else if (st == PK__GW_RESUME) {
    for (pk__grp_wait **pp = &g->waiting; *pp != NULL; pp = &(*pp)->next) {
      if (*pp == w) {
        *pp = w->next;
        break;
      }
    }
    w->queued = false;
    g->starting++; /* under way: a kill or suspend waits for the spawn */
  }
  pthread_mutex_unlock(&g->mu);
  return st;
}

/* ------------------------------------------------------------ liveness */

/* An adopted process still runs (not a zombie). */
static bool adopted_live(const member *m) {
  if (m->pidfd >= 0) {
    struct pollfd p = {.fd = m->pidfd, .events = POLLIN};
    if (poll(&p, 1, 0) > 0)
      return false;
  }
  return pk__proc_running(m->pid);
}

/* Process groups: a tracked run or adopted process still runs. Locked. */
static bool pgroup_live(pk_group *g) {
  for (size_t i = 0; i < g->nm; i++) {
    bool live = g->m[i].key != NULL ? pk__pgroup_live(g->m[i].pid)
                                    : adopted_live(&g->m[i]);
    if (live)
      return true;
  }
  return false;
}

static bool group_empty(pk_group *g) {
  if (g->mech == PK_MECH_CGROUP_V2)
    return !pk__cgtree_populated(g->cg.eventsfd);
  pthread_mutex_lock(&g->mu);
  bool live = pgroup_live(g);
  pthread_mutex_unlock(&g->mu);
  return !live;
}

/* Wait up to ms for the tree to empty; true if it did. */
static bool wait_empty(pk_group *g, int64_t ms) {
  uint64_t deadline = pk__now_ns() + (uint64_t)ms * 1000000u;
  int nap = 1;
  while (!group_empty(g)) {
    uint64_t now = pk__now_ns();
    if (now >= deadline)
      return false;
    int left = (int)((deadline - now) / 1000000u) + 1;
    int wait = nap < left ? nap : left;
    if (g->mech == PK_MECH_CGROUP_V2) {
      struct pollfd p = {.fd = g->cg.eventsfd, .events = POLLPRI};
      poll(&p, 1, wait < 50 ? wait : 50);
    } else {
      poll(NULL, 0, wait);
      nap = nap < 16 ? nap * 2 : 16;
    }
  }
  return true;
}

/* ------------------------------------------------------------- signals */

static int send_member(const member *m, int sig) {
  int rc;
  if (m->key != NULL)
    rc = killpg(m->pid, sig);
  else if (m->pidfd >= 0)
    rc = (int)syscall(SYS_pidfd_send_signal, m->pidfd, sig, NULL, 0);
  else
    rc = kill(m->pid, sig);
  return rc != 0 && errno != ESRCH ? PK__ERR(errno) : 0;
}

/* Process groups: sig to every tracked member; the first real failure. */
static int pgroup_send(pk_group *g, int sig, size_t *sent) {
  int err = 0;
  pthread_mutex_lock(&g->mu);
  for (size_t i = 0; i < g->nm; i++) {
    int rc = send_member(&g->m[i], sig);
    if (rc != 0 && err == 0)
      err = rc;
  }
  if (sent != NULL)
    *sent = g->nm;
  pthread_mutex_unlock(&g->mu);
  return err;
}

static int kill_tree(pk_group *g, bool wait) {
  pthread_mutex_lock(&g->mu);
  wake_waiting(g, PK__GW_KILL);
  while (g->starting > 0) /* a spawn under way is killed with the rest */
    pthread_cond_wait(&g->started, &g->mu);
  pthread_mutex_unlock(&g->mu);
  if (g->mech == PK_MECH_CGROUP_V2) {
    int rc;
    if (!wait) {
      rc = pk__cgroup_signal(&g->cg, SIGKILL);
      rc = rc == PK_ESRCH ? 0 : rc;
    } else {
      rc = pk__cgroup_kill_all(&g->cg, PK__GROUP_KILL_MS);
    }
    /* Without cgroup.kill the kill freezes the tree first; the group
     * stays usable, so it is thawed again unless suspended on purpose
     * (a start into a frozen leaf would hang in the spawner). */
    pthread_mutex_lock(&g->mu);
    if (!g->suspended)
      write_file(g->cg.dirfd, "cgroup.freeze", "0");
    pthread_mutex_unlock(&g->mu);
    return rc;
  }
  int rc = pgroup_send(g, SIGKILL, NULL);
  if (wait && !wait_empty(g, PK__GROUP_KILL_MS))
    return PK_ETIMEOUT;
  return rc;
}

int pk_group_kill_all(pk_group *g) {
  if (g == NULL)
    return PK_EINVAL;
  return kill_tree(g, true);
}

int pk_group_signal(pk_group *g, int sig) {
  if (g == NULL || sig < 0 || sig >= NSIG)
    return PK_EINVAL;
  if (sig == SIGKILL)
    return kill_tree(g, false);
  if (g->mech == PK_MECH_CGROUP_V2)
    return pk__cgtree_signal_all(g->cg.dirfd, sig, NULL);
  return pgroup_send(g, sig, NULL);
}

void pk_group_free(pk_group *g) {
  if (g == NULL)
    return;
  kill_tree(g, true);
  if (g->mech == PK_MECH_CGROUP_V2)
    write_file(g->cg.dirfd, "cgroup.freeze", "0");
  pk__grp_unref(g);
}

/* ------------------------------------------------------------ shutdown */

static size_t count_members(pk_group *g) {
  if (g->mech == PK_MECH_CGROUP_V2) {
    pid_t *pids = NULL;
    size_t n = 0;
    pk__cgtree_pids(g->cg.dirfd, &pids, &n);
    pk__free(pids);
    return n;
  }
  size_t n = 0;
  pthread_mutex_lock(&g->mu);
  for (size_t i = 0; i < g->nm; i++)
    n += g->m[i].key != NULL ? pk__pgroup_live(g->m[i].pid)
                             : adopted_live(&g->m[i]);
  pthread_mutex_unlock(&g->mu);
  return n;
}

int pk_group_stop(pk_group *g, int64_t grace_ms, bool escalate,
                  pk_shutdown_report *rep) {
  pk_shutdown_report r;
  memset(&r, 0, sizeof(r));
  if (rep != NULL)
    *rep = r;
  if (g == NULL || grace_ms < 0)
    return PK_EINVAL;
  uint64_t t0 = pk__now_ns();
  int rc = 0;
  r.members_before = count_members(g);
  if (grace_ms > 0 && r.members_before > 0) {
    r.signal = g->opts.shutdown_signal;
    r.signal_error = pk_group_signal(g, r.signal);
    r.drained = wait_empty(g, grace_ms);
  } else {
    r.drained = r.members_before == 0;
  }
  if (!r.drained && escalate) {
    r.escalated = true;
    rc = kill_tree(g, true);
  }
  r.members_after = count_members(g);
  r.elapsed_ms = (int64_t)((pk__now_ns() - t0) / 1000000u);
  if (rep != NULL)
    *rep = r;
  return rc;
}

int pk_group_shutdown(pk_group *g, pk_shutdown_report *rep) {
  if (g == NULL)
    return pk_group_stop(NULL, 0, false, rep);
  return pk_group_stop(g, g->opts.grace_ms, g->opts.escalate, rep);
}

/* ------------------------------------------------------ suspend, resume */

static int cgroup_freeze(pk_group *g, bool on) {
  int rc = write_file(g->cg.dirfd, "cgroup.freeze", on ? "1" : "0");
  if (rc != 0 || !on)
    return rc;
  uint64_t deadline = pk__now_ns() + (uint64_t)PK__FREEZE_MS * 1000000u;
  for (;;) {
    char buf[256];
    ssize_t n = pread(g->cg.eventsfd, buf, sizeof(buf) - 1, 0);
    buf[n > 0 ? n : 0] = '\0';
    if (strstr(buf, "frozen 1") != NULL)
      return 0;
    if (pk__now_ns() >= deadline)
      return PK_ETIMEOUT;
    struct pollfd p = {.fd = g->cg.eventsfd, .events = POLLPRI};
    poll(&p, 1, 10);
  }
}

int pk_group_suspend(pk_group *g) {
  if (g == NULL)
    return PK_EINVAL;
  pthread_mutex_lock(&g->mu);
  g->suspended = true;    /* before freezing: a start now waits */
  while (g->starting > 0) /* and one under way finishes its spawn first */
    pthread_cond_wait(&g->started, &g->mu);
  pthread_mutex_unlock(&g->mu);
  if (g->mech == PK_MECH_CGROUP_V2)
    return cgroup_freeze(g, true);
  return pgroup_send(g, SIGSTOP, NULL);
}

int pk_group_resume(pk_group *g) {
  if (g == NULL)
    return PK_EINVAL;
  int rc = g->mech == PK_MECH_CGROUP_V2 ? cgroup_freeze(g, false)
                                        : pgroup_send(g, SIGCONT, NULL);
  pthread_mutex_lock(&g->mu);
  g->suspended = false;
  wake_waiting(g, PK__GW_RESUME);
  pthread_mutex_unlock(&g->mu);
  return rc;
}

bool pk_group_suspended(const pk_group *g) {
  return g != NULL && pk__grp_suspended((pk_group *)g);
}

/* ------------------------------------------------------------- members */

int pk_group_members(pk_group *g, int **pids, size_t *n) {
  if (pids != NULL)
    *pids = NULL;
  if (n != NULL)
    *n = 0;
  if (g == NULL || pids == NULL || n == NULL)
    return PK_EINVAL;
  if (g->mech == PK_MECH_CGROUP_V2) {
    pid_t *p = NULL;
    pk__cgtree_pids(g->cg.dirfd, &p, n);
    *pids = p;
    return 0;
  }
  pthread_mutex_lock(&g->mu);
  int *out = pk__calloc(g->nm + 1, sizeof(int));
  size_t k = 0;
  for (size_t i = 0; out != NULL && i < g->nm; i++) {
    const member *m = &g->m[i];
    if (m->key != NULL || adopted_live(m)) /* a leader until reaped */
      out[k++] = (int)m->pid;
  }
  pthread_mutex_unlock(&g->mu);
  if (out == NULL)
    return PK_ENOMEM;
  *pids = out;
  *n = k;
  return 0;
}

/* ---------------------------------------------------------------- adopt */

/* The pid a pidfd refers to (fdinfo "Pid:"), -1 when it has been
 * reaped, 0 when unknown. */
static pid_t pidfd_pid(int pidfd) {
  char path[64], buf[1024];
  snprintf(path, sizeof(path), "/proc/self/fdinfo/%d", pidfd);
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0)
    return 0;
  ssize_t n = read(fd, buf, sizeof(buf) - 1);
  close(fd);
  buf[n > 0 ? n : 0] = '\0';
  const char *p = strstr(buf, "\nPid:");
  long v = 0;
  return p != NULL && sscanf(p + 5, "%ld", &v) == 1 ? (pid_t)v : 0;
}

int pk_group_adopt(pk_group *g, int pid, int pidfd) {
  if (g == NULL || (pidfd < 0 && pid <= 0))
    return PK_EINVAL;
  if (pidfd >= 0) {
    pid = pidfd_pid(pidfd);
    if (pid == 0)
      return PK_EINVAL; /* not a pidfd */
    if (pid < 0)
      return PK_ESRCH;
  }
  char st = pk__proc_state(pid);
  if (st == 0)
    return PK_ESRCH;
  if (st == 'Z' || st == 'X')
    return 0; /* exited, not reaped: nothing left to contain */
  if (g->mech == PK_MECH_CGROUP_V2) {
    pk__group leaf;
    char *msg = NULL, val[32];
    int rc = pk__grp_leaf(g, &leaf, &msg);
    pk__free(msg);
    if (rc != 0)
      return rc;
    snprintf(val, sizeof(val), "%d", pid);
    rc = write_file(leaf.dirfd, "cgroup.procs", val);
    if (rc == PK_ESRCH && pk__proc_state(pid) == 'Z')
      rc = 0;
    /* The leaf stays (its process runs in it) until the group goes. */
    if (rc != 0)
      rmdir(leaf.path);
    pk__free(leaf.path);
    leaf.path = NULL;
    pk__cgroup_destroy(&leaf);
    return rc;
  }
  int fd = -1;
  if (!(g->opts.disable & PK_NO_PIDFD))
    fd = pidfd >= 0 ? fcntl(pidfd, F_DUPFD_CLOEXEC, 3)
                    : (int)syscall(SYS_pidfd_open, pid, 0);
  pthread_mutex_lock(&g->mu);
  int rc = add_member(g, NULL, pid, fd);
  if (rc == 0 && g->suspended) /* joins as the group is: stopped */
    rc = send_member(&g->m[g->nm - 1], SIGSTOP);
  pthread_mutex_unlock(&g->mu);
  if (rc == PK_ENOMEM && fd >= 0)
    close(fd);
  return rc;
}

/* ---------------------------------------------------------------- stats */

int pk_group_stats_get(pk_group *g, pk_group_stats *out) {
  if (out != NULL)
    out->active = out->cpu_us = out->peak_memory = out->oom_kills = -1;
  if (g == NULL || out == NULL)
    return PK_EINVAL;
  out->active = (int64_t)count_members(g);
  if (g->mech != PK_MECH_CGROUP_V2)
    return 0;
  out->cpu_us = pk__cgroup_read(g->cg.dirfd, "cpu.stat", "usage_usec");
  out->peak_memory = pk__cgroup_read(g->cg.dirfd, "memory.peak", NULL);
  out->oom_kills = pk__cgroup_read(g->cg.dirfd, "memory.events", "oom_kill");
  return 0;
}
