/* Leaves made ahead and removed behind, on a helper thread. A private
 * run's leaf costs a mkdir, two opens and an rmdir in cgroupfs, most of
 * pk's own CPU per spawn on cgroup_v2. A helper thread keeps a few fresh
 * leaves ready in the per-owner cgroup and removes the leaves of ended
 * runs, so the spawning thread only takes one. Every leaf is still used
 * by exactly one run and never reused: its cpu.stat and memory.peak are
 * that run's. When the helper is not running (not started yet, could not
 * start, a forked child), leaves are made and removed in line as before.
 * The pool's own memory (leaf paths, its lists) comes from libc, not
 * pk's allocator: what the helper thread allocates must not be charged
 * to (or fail) whichever call of the caller happens to run meanwhile. A
 * pooled leaf's path is therefore freed with free(). */
#include "group.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define PK__POOL_SIZE 4

typedef struct leaf {
  char *path;
  int dirfd, eventsfd;
} leaf;

static struct {
  pthread_mutex_t mu;
  pthread_cond_t work; /* the helper: something to make or remove */
  pthread_cond_t idle; /* the exit: the helper is between steps */
  pid_t pid;           /* the process the pool belongs to */
  char *dir;           /* the per-owner cgroup the leaves are made in */
  leaf ready[PK__POOL_SIZE];
  int nready;
  char **dead; /* leaves of ended runs, to remove */
  size_t ndead, dead_cap;
  bool running, busy, stop;
  bool failed; /* the last make failed: wait for the next take to retry */
} pool = {.mu = PTHREAD_MUTEX_INITIALIZER,
          .work = PTHREAD_COND_INITIALIZER,
          .idle = PTHREAD_COND_INITIALIZER};

static atomic_uint leaf_seq;
static pthread_once_t pool_once = PTHREAD_ONCE_INIT;

static void leaf_close(leaf *l) {
  if (l->dirfd >= 0)
    close(l->dirfd);
  if (l->eventsfd >= 0)
    close(l->eventsfd);
  l->dirfd = l->eventsfd = -1;
}

/* mkdir dir/run-N and open it; 0 or an errno. */
static int leaf_make(const char *dir, leaf *l) {
  l->dirfd = l->eventsfd = -1;
  size_t len = strlen(dir) + 32;
  l->path = malloc(len);
  if (l->path == NULL)
    return ENOMEM;
  snprintf(l->path, len, "%s/run-p%u", dir, atomic_fetch_add(&leaf_seq, 1));
  if (mkdir(l->path, 0755) != 0) {
    int e = errno;
    free(l->path);
    l->path = NULL;
    return e;
  }
  l->dirfd = open(l->path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (l->dirfd >= 0)
    l->eventsfd = openat(l->dirfd, "cgroup.events", O_RDONLY | O_CLOEXEC);
  if (l->dirfd < 0 || l->eventsfd < 0) {
    int e = errno;
    leaf_close(l);
    rmdir(l->path);
    free(l->path);
    l->path = NULL;
    return e;
  }
  return 0;
}

/* Remove a leaf whose run ended (killed and empty): rmdir, or, when the
 * run made cgroups inside it, everything below it deepest first. */
static void leaf_remove(char *path) {
  if (rmdir(path) != 0 && errno != ENOENT) {
    int fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    int ev = fd >= 0 ? openat(fd, "cgroup.events", O_RDONLY | O_CLOEXEC) : -1;
    if (fd >= 0 && ev >= 0)
      pk__cgtree_kill(fd, ev, pk__cgroup_has_kill(), 5000);
    if (ev >= 0)
      close(ev);
    if (fd >= 0)
      close(fd);
    pk__cgtree_remove(AT_FDCWD, path);
  }
  free(path);
}

static void *pool_main(void *arg) {
  (void)arg;
  pthread_mutex_lock(&pool.mu);
  for (;;) {
    while (!pool.stop && pool.ndead == 0 &&
           (pool.nready == PK__POOL_SIZE || pool.failed))
      pthread_cond_wait(&pool.work, &pool.mu);
    if (pool.stop)
      break;
    pool.busy = true;
    char *dead = pool.ndead > 0 ? pool.dead[--pool.ndead] : NULL;
    bool make = dead == NULL && pool.nready < PK__POOL_SIZE;
    char *dir = pool.dir;
    pthread_mutex_unlock(&pool.mu);
    leaf l = {NULL, -1, -1};
    int err = 0;
    if (dead != NULL)
      leaf_remove(dead);
    else if (make)
      err = leaf_make(dir, &l);
    pthread_mutex_lock(&pool.mu);
    pool.busy = false;
    pthread_cond_broadcast(&pool.idle);
    if (make && err != 0) {
      /* no leaf now (memory, limits, permissions): spawns make theirs in
       * line; the next take asks again */
      pool.failed = true;
    } else if (make && pool.stop) {
      leaf_close(&l);
      rmdir(l.path);
      free(l.path);
    } else if (make) {
      pool.ready[pool.nready++] = l;
    }
  }
  pool.running = false;
  pthread_cond_broadcast(&pool.idle);
  pthread_mutex_unlock(&pool.mu);
  return NULL;
}

/* A forked child owns nothing of the parent's pool (its leaves are the
 * parent's, its helper thread does not exist here). */
static void pool_prepare(void) { pthread_mutex_lock(&pool.mu); }
static void pool_parent(void) { pthread_mutex_unlock(&pool.mu); }
static void pool_child(void) {
  for (int i = 0; i < pool.nready; i++) {
    leaf_close(&pool.ready[i]);
    free(pool.ready[i].path);
  }
  for (size_t i = 0; i < pool.ndead; i++)
    free(pool.dead[i]);
  pool.nready = 0;
  pool.ndead = 0;
  pool.running = pool.busy = pool.stop = pool.failed = false;
  pool.pid = 0;
  pthread_mutex_init(&pool.mu, NULL);
  pthread_cond_init(&pool.work, NULL);
  pthread_cond_init(&pool.idle, NULL);
}
static void pool_register(void) {
  pthread_atfork(pool_prepare, pool_parent, pool_child);
}

/* Start the helper for dir (locked). */
static void pool_start(const char *dir) {
  if (pool.running || pool.stop)
    return;
  char *copy = strdup(dir);
  if (copy == NULL)
    return;
  free(pool.dir);
  pool.dir = copy;
  pool.pid = getpid();
  pthread_attr_t a;
  pthread_t t;
  if (pthread_attr_init(&a) != 0)
    return;
  pthread_attr_setdetachstate(&a, PTHREAD_CREATE_DETACHED);
  pthread_attr_setstacksize(&a, 64 * 1024);
  /* The helper must not take signals meant for the host's threads. */
  sigset_t all, old;
  sigfillset(&all);
  pthread_sigmask(SIG_SETMASK, &all, &old);
  pool.running = pthread_create(&t, &a, pool_main, NULL) == 0;
  pthread_sigmask(SIG_SETMASK, &old, NULL);
  pthread_attr_destroy(&a);
}

bool pk__pool_take(const char *dir, pk__group *g) {
  pthread_once(&pool_once, pool_register);
  pthread_mutex_lock(&pool.mu);
  bool mine =
      pool.pid == getpid() && pool.dir != NULL && strcmp(pool.dir, dir) == 0;
  bool got = false;
  if (mine && pool.running && pool.nready > 0) {
    leaf l = pool.ready[--pool.nready];
    g->path = l.path;
    g->dirfd = l.dirfd;
    g->eventsfd = l.eventsfd;
    g->pooled = true;
    got = true;
  } else if (!pool.running) {
    pool_start(dir); /* the first leaf is made in line */
  }
  pool.failed = false;
  pthread_cond_signal(&pool.work);
  pthread_mutex_unlock(&pool.mu);
  return got;
}

bool pk__pool_give_back(pk__group *g) {
  pthread_mutex_lock(&pool.mu);
  bool ok = pool.running && pool.pid == getpid();
  if (ok && pool.ndead == pool.dead_cap) {
    size_t cap = pool.dead_cap ? pool.dead_cap * 2 : 16;
    char **d = realloc(pool.dead, cap * sizeof(*d));
    if (d != NULL) {
      pool.dead = d;
      pool.dead_cap = cap;
    }
    ok = d != NULL;
  }
  if (ok) {
    pool.dead[pool.ndead++] = g->path;
    g->path = NULL;
    pthread_cond_signal(&pool.work);
  }
  pthread_mutex_unlock(&pool.mu);
  return ok;
}

void pk__pool_drain(void) {
  struct timespec soon; /* exit must not hang on a stuck lock */
  clock_gettime(CLOCK_REALTIME, &soon);
  soon.tv_sec += 1;
  if (pthread_mutex_timedlock(&pool.mu, &soon) != 0)
    return;
  if (pool.pid == getpid()) {
    pool.stop = true;
    pthread_cond_signal(&pool.work);
    /* let the helper finish a step (bounded: exit must not hang) */
    struct timespec until;
    clock_gettime(CLOCK_REALTIME, &until);
    until.tv_sec += 2;
    while (pool.running && (pool.busy || pool.ndead > 0) &&
           pthread_cond_timedwait(&pool.idle, &pool.mu, &until) == 0)
      ;
    for (int i = 0; i < pool.nready; i++) {
      leaf_close(&pool.ready[i]);
      rmdir(pool.ready[i].path);
      free(pool.ready[i].path);
    }
    pool.nready = 0;
    if (!pool.running || !pool.busy) {
      for (size_t i = 0; i < pool.ndead; i++)
        leaf_remove(pool.dead[i]);
      pool.ndead = 0;
    }
  }
  pthread_mutex_unlock(&pool.mu);
}

int pk__pool_settle(int timeout_ms) {
  struct timespec until;
  clock_gettime(CLOCK_REALTIME, &until);
  until.tv_sec += timeout_ms / 1000;
  until.tv_nsec += (long)(timeout_ms % 1000) * 1000000L;
  if (until.tv_nsec >= 1000000000L) {
    until.tv_sec++;
    until.tv_nsec -= 1000000000L;
  }
  pthread_mutex_lock(&pool.mu);
  pool.failed = false; /* refill what a failure left short */
  pthread_cond_signal(&pool.work);
  while (pool.running && pool.pid == getpid() &&
         (pool.busy || pool.ndead > 0 ||
          (pool.nready < PK__POOL_SIZE && !pool.failed)) &&
         pthread_cond_timedwait(&pool.idle, &pool.mu, &until) == 0)
    ;
  int n = pool.pid == getpid() ? pool.nready : 0;
  pthread_mutex_unlock(&pool.mu);
  return n;
}
