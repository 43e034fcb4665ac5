/* cgroup-v2 backend: each run gets a private leaf cgroup in this
 * process's per-owner cgroup (cgroup_owner.c) under its own cgroup; the
 * child enters it before exec; teardown is cgroup.kill (fallback: freeze,
 * then SIGKILL every member until empty), over the leaf's whole subtree.
 */
#include "group.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/utsname.h>
#include <time.h>
#include <unistd.h>

static char *cg_base;
static bool cg_has_kill;
static pthread_once_t cg_once = PTHREAD_ONCE_INIT;
static atomic_uint cg_seq;

/* Mount point of the cgroup2 filesystem from /proc/self/mountinfo. */
static char *find_cgroup2_mount(void) {
  FILE *f = fopen("/proc/self/mountinfo", "re");
  if (f == NULL)
    return NULL;
  char line[4096];
  char *found = NULL;
  while (found == NULL && fgets(line, sizeof(line), f) != NULL) {
    char *sep = strstr(line, " - ");
    if (sep == NULL || strncmp(sep + 3, "cgroup2 ", 8) != 0)
      continue;
    char *save = NULL, *tok = strtok_r(line, " ", &save);
    for (int i = 0; tok != NULL && i < 4; i++)
      tok = strtok_r(NULL, " ", &save);
    if (tok != NULL)
      found = strdup(tok);
  }
  fclose(f);
  return found;
}

/* Our own cgroup-v2 path ("0::/path" in /proc/self/cgroup). */
static char *own_cgroup_path(void) {
  FILE *f = fopen("/proc/self/cgroup", "re");
  if (f == NULL)
    return NULL;
  char line[4096];
  char *found = NULL;
  while (found == NULL && fgets(line, sizeof(line), f) != NULL) {
    if (strncmp(line, "0::", 3) == 0) {
      line[strcspn(line, "\n")] = '\0';
      found = strdup(line + 3);
    }
  }
  fclose(f);
  return found;
}

/* Linux 5.14 or later (cgroup.kill), from uname. */
static bool kernel_has_kill(void) {
  struct utsname u;
  int major = 0, minor = 0;
  if (uname(&u) != 0 || sscanf(u.release, "%d.%d", &major, &minor) != 2)
    return false;
  return major > 5 || (major == 5 && minor >= 14);
}

int pk_host_predict(pk_host_prediction *out) {
  if (out == NULL)
    return PK_EINVAL;
  memset(out, 0, sizeof(*out));
  out->best = PK_MECH_PROCESS_GROUP;
  char *mnt = find_cgroup2_mount();
  char *own = own_cgroup_path();
  char base[4096], file[4200];
  if (mnt == NULL) {
    snprintf(out->reason, sizeof(out->reason),
             "no cgroup2 filesystem is mounted");
  } else if (own == NULL) {
    snprintf(out->reason, sizeof(out->reason),
             "this process is in no cgroup-v2 cgroup (/proc/self/cgroup)");
  } else {
    snprintf(base, sizeof(base), "%s%s", mnt, strcmp(own, "/") == 0 ? "" : own);
    snprintf(file, sizeof(file), "%s/cgroup.procs", base);
    if (access(base, W_OK | X_OK) != 0 || access(file, W_OK) != 0) {
      snprintf(out->reason, sizeof(out->reason),
               "this process's cgroup is not writable (%s)", strerror(errno));
    } else {
      out->cgroup_v2 = true;
      out->best = PK_MECH_CGROUP_V2;
      size_t n = strlen(base); /* a longer path is cut, for display */
      if (n >= sizeof(out->cgroup_base))
        n = sizeof(out->cgroup_base) - 1;
      memcpy(out->cgroup_base, base, n);
      /* The root cgroup has no cgroup.kill of its own; children do. */
      snprintf(file, sizeof(file), "%s/cgroup.kill", base);
      out->cgroup_kill =
          strcmp(own, "/") == 0 ? kernel_has_kill() : access(file, F_OK) == 0;
    }
  }
  free(mnt);
  free(own);
  return 0;
}

static void cg_probe(void) {
  char *mnt = find_cgroup2_mount();
  char *own = own_cgroup_path();
  char base[4096], probe[4200], killf[4300];
  if (mnt == NULL || own == NULL)
    goto out;
  snprintf(base, sizeof(base), "%s%s", mnt, strcmp(own, "/") == 0 ? "" : own);
  snprintf(probe, sizeof(probe), "%s/pk-probe-%ld", base, (long)getpid());
  if (mkdir(probe, 0755) != 0 && errno != EEXIST)
    goto out;
  snprintf(killf, sizeof(killf), "%s/cgroup.kill", probe);
  cg_has_kill = access(killf, W_OK) == 0;
  rmdir(probe);
  cg_base = strdup(base);
out:
  free(mnt);
  free(own);
}

const char *pk__cgroup_base(void) {
  pthread_once(&cg_once, cg_probe);
  return cg_base;
}

bool pk__cgroup_has_kill(void) {
  pthread_once(&cg_once, cg_probe);
  return cg_has_kill;
}

static int open_in(pk__group *g, const char *file, int flags) {
  return openat(g->dirfd, file, flags | O_CLOEXEC);
}

int pk__cgroup_create_in(pk__group *g, const char *parent, const char *prefix,
                         char **msg) {
  unsigned seq = atomic_fetch_add(&cg_seq, 1);
  g->path = pk__sprintf("%s/%s-%u", parent, prefix, seq);
  if (g->path == NULL)
    return PK_ENOMEM;
  if (mkdir(g->path, 0755) != 0) {
    int e = errno;
    *msg = pk__sprintf("cannot create cgroup %s: %s", g->path, strerror(e));
    pk__free(g->path);
    g->path = NULL;
    return e == ENOSPC || e == EAGAIN ? PK_ELIMIT : PK__ERR(e);
  }
  g->dirfd = open(g->path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (g->dirfd >= 0) {
    g->eventsfd = open_in(g, "cgroup.events", O_RDONLY);
  }
  if (g->dirfd < 0 || g->eventsfd < 0) {
    int e = errno;
    *msg = pk__sprintf("cannot open cgroup %s: %s", g->path, strerror(e));
    pk__cgroup_destroy(g);
    return e == EMFILE || e == ENFILE ? PK_ELIMIT : PK__ERR(e);
  }
  return 0;
}

int pk__cgroup_create(pk__group *g, bool guard, char **msg) {
  const char *owner;
  int rc = pk__owner_cgroup(guard, g->disable, &owner, msg);
  if (rc != 0)
    return rc;
  if (pk__pool_take(owner, g))
    return 0;
  return pk__cgroup_create_in(g, owner, "run", msg);
}

/* The whole of a small cgroup file, NUL-terminated; false if unreadable. */
static bool read_small(const char *dir, const char *file, char *buf,
                       size_t size) {
  char path[4400];
  snprintf(path, sizeof(path), "%s/%s", dir, file);
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0)
    return false;
  ssize_t n = read(fd, buf, size - 1);
  close(fd);
  buf[n > 0 ? n : 0] = '\0';
  buf[strcspn(buf, "\n")] = '\0';
  return n >= 0;
}

/* ctrl is a word of the space-separated list. */
static bool has_word(const char *list, const char *ctrl) {
  size_t k = strlen(ctrl);
  for (const char *p = list; (p = strstr(p, ctrl)) != NULL; p += k)
    if ((p == list || p[-1] == ' ') && (p[k] == '\0' || p[k] == ' '))
      return true;
  return false;
}

/* Enable ctrl in dir's cgroup.subtree_control (a no-op if it is). */
static int enable_below(const char *dir, const char *ctrl, bool is_base,
                        char **msg) {
  char have[512], type[4400];
  if (!read_small(dir, "cgroup.controllers", have, sizeof(have)) ||
      !has_word(have, ctrl)) {
    snprintf(type, sizeof(type), "%s/cgroup.type", dir);
    if (access(type, F_OK) != 0) /* only the root has no cgroup.type */
      *msg = pk__sprintf(
          "the %s controller is not available at the root of this "
          "cgroup-v2 hierarchy, %s (cgroup.controllers lists: %s): a "
          "cgroup-v1 hierarchy holds it (a hybrid layout) or the kernel "
          "lacks it, so a %s limit cannot be enforced here",
          ctrl, dir, have[0] ? have : "nothing", ctrl);
    else
      *msg = pk__sprintf(
          "the %s controller is not available in cgroup %s (its "
          "cgroup.controllers lists: %s): the parent cgroup has not delegated "
          "it, so a %s limit cannot be enforced here",
          ctrl, dir, have[0] ? have : "nothing", ctrl);
    return PK_ELIMIT;
  }
  char on[512];
  if (read_small(dir, "cgroup.subtree_control", on, sizeof(on)) &&
      has_word(on, ctrl))
    return 0;
  char path[4400], val[64];
  snprintf(path, sizeof(path), "%s/cgroup.subtree_control", dir);
  snprintf(val, sizeof(val), "+%s", ctrl);
  int fd = open(path, O_WRONLY | O_CLOEXEC);
  ssize_t n = fd >= 0 ? write(fd, val, strlen(val)) : -1;
  int e = errno;
  if (fd >= 0)
    close(fd);
  if (n >= 0)
    return 0;
  if (e == EBUSY && is_base)
    *msg = pk__sprintf(
        "cannot enable the %s controller in %s: %s. This process's own "
        "cgroup holds processes and is not the cgroup-v2 root, and the "
        "no-internal-processes rule forbids handing controllers down from "
        "it; pk does not move this process to another cgroup to make room, "
        "so a %s limit cannot be enforced here",
        ctrl, path, strerror(e), ctrl);
  else
    *msg = pk__sprintf("cannot enable the %s controller in %s: %s", ctrl, path,
                       strerror(e));
  return PK_ELIMIT;
}

void pk__cgroup_offer(const char *dir, const char *ctrl) {
  char have[512], val[64], path[4400];
  if (!read_small(dir, "cgroup.controllers", have, sizeof(have)) ||
      !has_word(have, ctrl))
    return;
  snprintf(path, sizeof(path), "%s/cgroup.subtree_control", dir);
  snprintf(val, sizeof(val), "+%s", ctrl);
  int fd = open(path, O_WRONLY | O_CLOEXEC);
  if (fd >= 0) {
    ssize_t n = write(fd, val, strlen(val));
    (void)n; /* best effort: accounting only */
    close(fd);
  }
}

int pk__cgroup_enable(const char *dir, const char *ctrl, char **msg) {
  const char *base = pk__cgroup_base();
  if (base == NULL) {
    *msg = pk__sprintf("no usable cgroup-v2 hierarchy");
    return PK_ELIMIT;
  }
  int rc = enable_below(base, ctrl, true, msg);
  return rc != 0 ? rc : enable_below(dir, ctrl, false, msg);
}

/* The first number after "key " in a small cgroup file, or -1 (with
 * *missing set when the file does not exist). */
static int64_t read_stat(int dirfd, const char *file, const char *key,
                         bool *missing) {
  int fd = openat(dirfd, file, O_RDONLY | O_CLOEXEC);
  *missing = fd < 0 && errno == ENOENT;
  if (fd < 0)
    return -1;
  char buf[1024];
  ssize_t n = read(fd, buf, sizeof(buf) - 1);
  close(fd);
  if (n <= 0)
    return -1;
  buf[n] = '\0';
  const char *p = buf;
  if (key != NULL) {
    size_t k = strlen(key);
    for (p = buf; p != NULL; p = strchr(p, '\n'), p = p ? p + 1 : NULL)
      if (strncmp(p, key, k) == 0 && p[k] == ' ')
        break;
    if (p == NULL)
      return -1;
    p += k + 1;
  }
  char *end;
  long long v = strtoll(p, &end, 10);
  return end == p || v < 0 ? -1 : (int64_t)v;
}

/* memory.peak is only there when the memory controller is enabled for
 * the leaves; once a leaf lacks it, later runs do not look (each run's
 * teardown is on the spawn path). */
static atomic_bool cg_no_peak;

int64_t pk__cgroup_read(int dirfd, const char *file, const char *key) {
  bool missing;
  return read_stat(dirfd, file, key, &missing);
}

void pk__cgroup_usage(pk__group *g, int64_t *cpu_us, int64_t *peak) {
  *cpu_us = *peak = -1;
  if (g->mech != PK_MECH_CGROUP_V2 || g->dirfd < 0)
    return;
  bool missing;
  *cpu_us = read_stat(g->dirfd, "cpu.stat", "usage_usec", &missing);
  if (atomic_load(&cg_no_peak))
    return;
  *peak = read_stat(g->dirfd, "memory.peak", NULL, &missing);
  if (missing)
    atomic_store(&cg_no_peak, true);
}

static bool use_kill(const pk__group *g) {
  return cg_has_kill && !(g->disable & PK_NO_CGROUP_KILL);
}

bool pk__cgroup_empty(pk__group *g) {
  return !pk__cgtree_populated(g->eventsfd);
}

int pk__cgroup_signal(pk__group *g, int sig) {
  if (g->dirfd < 0 || pk__cgroup_empty(g))
    return PK_ESRCH;
  if (sig == SIGKILL && use_kill(g)) {
    int fd = open_in(g, "cgroup.kill", O_WRONLY);
    ssize_t n = fd >= 0 ? write(fd, "1", 1) : -1;
    int e = errno;
    if (fd >= 0)
      close(fd);
    return n < 0 ? PK__ERR(e) : 0;
  }
  return pk__cgtree_signal(g->dirfd, sig);
}

int pk__cgroup_kill_all(pk__group *g, int timeout_ms) {
  if (g->dirfd < 0)
    return 0;
  return pk__cgtree_kill(g->dirfd, g->eventsfd, use_kill(g), timeout_ms);
}

/* A leaf whose processes made cgroups of their own is removed deepest
 * first, after the kill. */
void pk__cgroup_destroy(pk__group *g) {
  if (g->path != NULL && g->pooled && pk__pool_give_back(g))
    g->path = NULL; /* the helper removes it */
  if (g->path != NULL && rmdir(g->path) != 0 && errno != ENOENT) {
    pk__cgroup_kill_all(g, 5000);
    pk__cgtree_remove(AT_FDCWD, g->path);
  }
  int *fds[] = {&g->dirfd, &g->eventsfd};
  for (size_t i = 0; i < 2; i++) {
    if (*fds[i] >= 0)
      close(*fds[i]);
    *fds[i] = -1;
  }
  if (g->pooled)
    free(g->path); /* the pool's memory is libc's */
  else
    pk__free(g->path);
  g->path = NULL;
  g->pooled = false;
}
