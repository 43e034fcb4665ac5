/* The per-owner cgroup. Every leaf of this process lives in one cgroup
 * named after the owning process (pk-<pid>-<start>-<pidns>), so that the
 * guardian can kill all of them with one write, and a later process can
 * tell whether the owner of a leftover cgroup is provably dead: same pid
 * namespace, and no process with that pid or one that started at another
 * time (the pid was reused). Such cgroups are killed and removed at a
 * process's first run, never by a read-only query. */
#include "group.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define PK__SWEEP_MS 5000

typedef struct owner_id {
  long pid;
  unsigned long long start, ns; /* 0: unknown (never taken for dead) */
} owner_id;

static pthread_mutex_t owner_mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_once_t atfork_once = PTHREAD_ONCE_INIT;
static struct {
  pid_t pid; /* the process this state belongs to (forks start over) */
  char *dir;
  bool guarded;
  int pipe_wr;
} owner = {0, NULL, false, -1};

/* pid (field 1) and start time (field 22) of a /proc/<pid>/stat file. */
static int read_stat(const char *path, long *pid, unsigned long long *start) {
  char buf[1024];
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0)
    return PK__ERR(errno);
  ssize_t n = read(fd, buf, sizeof(buf) - 1);
  int e = errno;
  close(fd);
  if (n <= 0)
    return n < 0 ? PK__ERR(e) : PK_EIO;
  buf[n] = '\0';
  char *p = strrchr(buf, ')'); /* the name may hold spaces and ')' */
  for (int field = 2; field < 22 && p != NULL; field++)
    p = strchr(p + 1, ' '); /* ends on the space before field 22 */
  if (p == NULL || sscanf(buf, "%ld", pid) != 1 ||
      sscanf(p, " %llu", start) != 1)
    return PK_EIO;
  return 0;
}

static unsigned long long pidns_self(void) {
  char link[64];
  unsigned long long ns = 0;
  ssize_t n = readlink("/proc/self/ns/pid", link, sizeof(link) - 1);
  if (n <= 0)
    return 0;
  link[n] = '\0';
  return sscanf(link, "pid:[%llu]", &ns) == 1 ? ns : 0;
}

/* Our identity. When /proc is not our pid namespace's (its "self" is
 * not us), start and ns stay 0: nobody can prove such an owner dead. */
static void self_id(owner_id *id) {
  long pid;
  unsigned long long start;
  id->pid = (long)getpid();
  id->start = id->ns = 0;
  if (read_stat("/proc/self/stat", &pid, &start) == 0 && pid == id->pid) {
    id->start = start;
    id->ns = pidns_self();
  }
}

static bool owner_dead(const owner_id *o, const owner_id *self) {
  char path[64];
  long pid;
  unsigned long long start;
  if (self->ns == 0 || o->ns != self->ns || o->start == 0)
    return false;
  snprintf(path, sizeof(path), "/proc/%ld/stat", o->pid);
  int rc = read_stat(path, &pid, &start);
  if (rc == PK__ERR(ENOENT) || rc == PK__ERR(ESRCH))
    return true;
  return rc == 0 && start != o->start;
}

/* "pk-<pid>-<start>-<ns>", optionally ".<n>" (a reused identity). */
static bool parse_name(const char *name, owner_id *o) {
  int end = 0;
  if (sscanf(name, "pk-%ld-%llu-%llu%n", &o->pid, &o->start, &o->ns, &end) != 3)
    return false;
  return o->pid > 0 && (name[end] == '\0' || name[end] == '.');
}

static void sweep_one(int basefd, const char *name) {
  int fd =
      openat(basefd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
  if (fd < 0)
    return;
  int ev = openat(fd, "cgroup.events", O_RDONLY | O_CLOEXEC);
  if (ev >= 0) {
    pk__cgtree_kill(fd, ev, pk__cgroup_has_kill(), PK__SWEEP_MS);
    close(ev);
  }
  close(fd);
  pk__cgtree_remove(basefd, name);
}

static void sweep_dead(const char *base, const owner_id *self) {
  DIR *d = opendir(base);
  if (d == NULL)
    return;
  struct dirent *e;
  owner_id o;
  while ((e = readdir(d)) != NULL)
    if (parse_name(e->d_name, &o) && owner_dead(&o, self))
      sweep_one(dirfd(d), e->d_name);
  closedir(d);
}

/* Sweep, then make our cgroup. It can exist already when this process
 * exec'd after using pk (same pid, same start): take a fresh name, as
 * the old image's guardian may be about to remove the old one. */
static int owner_create(const owner_id *self, char **msg) {
  const char *base = pk__cgroup_base();
  if (base == NULL) {
    *msg = pk__sprintf("no writable cgroup-v2 hierarchy on this host");
    return PK_EUNSUPPORTED;
  }
  sweep_dead(base, self);
  int e = EEXIST;
  for (int n = 0; n < 100 && e == EEXIST; n++) {
    pk__free(owner.dir);
    owner.dir =
        pk__sprintf(n ? "%s/pk-%ld-%llu-%llu.%d" : "%s/pk-%ld-%llu-%llu", base,
                    self->pid, self->start, self->ns, n);
    if (owner.dir == NULL)
      return PK_ENOMEM;
    e = mkdir(owner.dir, 0755) == 0 ? 0 : errno;
  }
  if (e == 0)
    return 0;
  *msg = pk__sprintf("cannot create cgroup %s: %s", owner.dir, strerror(e));
  return e == ENOSPC || e == EAGAIN ? PK_ELIMIT : PK__ERR(e);
}

/* A forked child is an owner of its own: it makes its own cgroup (and
 * guardian) at its first run and must not hold the parent's pipe. */
static void atfork_prepare(void) { pthread_mutex_lock(&owner_mu); }
static void atfork_parent(void) { pthread_mutex_unlock(&owner_mu); }
static void atfork_child(void) {
  if (owner.pipe_wr >= 0)
    close(owner.pipe_wr);
  owner.pipe_wr = -1;
  owner.pid = 0;
  owner.guarded = false;
  pthread_mutex_unlock(&owner_mu);
}
static void atfork_register(void) {
  pthread_atfork(atfork_prepare, atfork_parent, atfork_child);
}

int pk__owner_cgroup(bool guard, unsigned disable, const char **dir,
                     char **msg) {
  pthread_once(&atfork_once, atfork_register);
  pthread_mutex_lock(&owner_mu);
  int rc = 0;
  if (owner.pid != getpid()) {
    owner_id self;
    self_id(&self);
    owner.guarded = false;
    rc = owner_create(&self, msg);
    owner.pid = rc == 0 ? getpid() : 0;
  }
  if (rc == 0 && guard && !owner.guarded) {
    rc = pk__guardian_start(owner.dir, disable, &owner.pipe_wr, msg);
    owner.guarded = rc == 0;
  }
  *dir = owner.dir;
  pthread_mutex_unlock(&owner_mu);
  return rc;
}

/* At a normal exit an unguarded owner removes its cgroup if it is empty
 * (best effort: a killed one leaves it to the next sweep; a guarded one
 * leaves it to its guardian). */
__attribute__((destructor)) static void owner_exit(void) {
  if (pthread_mutex_trylock(&owner_mu) != 0)
    return;
  if (owner.pid == getpid() && owner.dir != NULL && !owner.guarded) {
    pk__pool_drain(); /* its ready leaves live in the owner's cgroup */
    rmdir(owner.dir);
  }
  pthread_mutex_unlock(&owner_mu);
}
