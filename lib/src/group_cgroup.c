/* cgroup-v2 backend: each run gets a private leaf cgroup under this
 * process's own cgroup; the child enters it before exec; teardown is
 * cgroup.kill (fallback: freeze, then SIGKILL every member until empty).
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

/* Leaves of processes that died without tearing down (SIGKILL, abort)
 * stay behind as empty directories. Remove those whose creator is gone:
 * rmdir refuses populated ones, and the age check keeps us off a leaf
 * another pid namespace may be about to use. */
static void sweep_stale(const char *base) {
  DIR *d = opendir(base);
  if (d == NULL)
    return;
  struct dirent *e;
  time_t now = time(NULL);
  while ((e = readdir(d)) != NULL) {
    long pid;
    unsigned seq;
    char tail;
    if (sscanf(e->d_name, "pk-%ld-%u%c", &pid, &seq, &tail) != 2 || pid <= 0 ||
        pid == (long)getpid() || kill((pid_t)pid, 0) == 0 || errno != ESRCH)
      continue;
    struct stat st;
    if (fstatat(dirfd(d), e->d_name, &st, 0) == 0 && now - st.st_mtime > 10)
      unlinkat(dirfd(d), e->d_name, AT_REMOVEDIR);
  }
  closedir(d);
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
  sweep_stale(base);
  cg_base = strdup(base);
out:
  free(mnt);
  free(own);
}

const char *pk__cgroup_base(void) {
  pthread_once(&cg_once, cg_probe);
  return cg_base;
}

static int open_in(pk__group *g, const char *file, int flags) {
  return openat(g->dirfd, file, flags | O_CLOEXEC);
}

int pk__cgroup_create(pk__group *g, char **msg) {
  const char *base = pk__cgroup_base();
  if (base == NULL) {
    *msg = pk__sprintf("no writable cgroup-v2 hierarchy on this host");
    return PK_EUNSUPPORTED;
  }
  unsigned seq = atomic_fetch_add(&cg_seq, 1);
  g->path = pk__sprintf("%s/pk-%ld-%u", base, (long)getpid(), seq);
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

/* Read the member pids into a heap array. Returns count or <0. */
static ssize_t read_procs(pk__group *g, pid_t **out) {
  *out = NULL;
  int fd = open_in(g, "cgroup.procs", O_RDONLY);
  if (fd < 0)
    return PK__ERR(errno);
  pk__buf b = {0};
  char chunk[4096];
  ssize_t n;
  while ((n = read(fd, chunk, sizeof(chunk))) > 0)
    if (pk__buf_append(&b, chunk, (size_t)n) != 0)
      break;
  close(fd);
  size_t cnt = 0;
  for (size_t i = 0; i < b.len; i++)
    cnt += b.data[i] == '\n';
  pid_t *pids = pk__calloc(cnt + 1, sizeof(pid_t));
  if (pids == NULL) {
    pk__buf_release(&b);
    return PK_ENOMEM;
  }
  size_t k = 0;
  for (char *p = b.data; p != NULL && *p != '\0' && k < cnt;) {
    char *end;
    long v = strtol(p, &end, 10);
    if (end == p)
      break;
    pids[k++] = (pid_t)v;
    p = end + (*end == '\n');
  }
  pk__buf_release(&b);
  *out = pids;
  return (ssize_t)k;
}

/* Signal every listed member; PK_ESRCH when there were none. */
static int signal_members(pk__group *g, int sig) {
  pid_t *pids;
  ssize_t n = read_procs(g, &pids);
  if (n < 0)
    return (int)n;
  for (ssize_t i = 0; i < n; i++)
    kill(pids[i], sig);
  pk__free(pids);
  return n == 0 ? PK_ESRCH : 0;
}

static int write_file(pk__group *g, const char *file, const char *val) {
  int fd = open_in(g, file, O_WRONLY);
  if (fd < 0)
    return PK__ERR(errno);
  ssize_t n = write(fd, val, strlen(val));
  int e = errno;
  close(fd);
  return n < 0 ? PK__ERR(e) : 0;
}

bool pk__cgroup_empty(pk__group *g) {
  char buf[256];
  ssize_t n = pread(g->eventsfd, buf, sizeof(buf) - 1, 0);
  if (n <= 0)
    return false;
  buf[n] = '\0';
  return strstr(buf, "populated 0") != NULL;
}

int pk__cgroup_signal(pk__group *g, int sig) {
  if (g->dirfd < 0)
    return PK_ESRCH;
  if (pk__cgroup_empty(g))
    return PK_ESRCH;
  if (sig == SIGKILL && cg_has_kill && !(g->disable & PK_NO_CGROUP_KILL))
    return write_file(g, "cgroup.kill", "1");
  return signal_members(g, sig);
}

/* Wait until "populated 0", woken by kernfs notifications on
 * cgroup.events; between wake-ups the fallback re-kills members. */
int pk__cgroup_kill_all(pk__group *g, int timeout_ms) {
  if (g->dirfd < 0)
    return 0;
  bool use_kill = cg_has_kill && !(g->disable & PK_NO_CGROUP_KILL);
  if (use_kill)
    write_file(g, "cgroup.kill", "1");
  else
    write_file(g, "cgroup.freeze", "1");
  uint64_t deadline = pk__now_ns() + (uint64_t)timeout_ms * 1000000u;
  while (!pk__cgroup_empty(g)) {
    if (!use_kill)
      signal_members(g, SIGKILL);
    uint64_t now = pk__now_ns();
    if (now >= deadline)
      return PK_ETIMEOUT;
    struct pollfd pfd = {.fd = g->eventsfd, .events = POLLPRI};
    int wait = (int)((deadline - now) / 1000000u) + 1;
    poll(&pfd, 1, wait < 10 ? wait : 10);
  }
  return 0;
}

void pk__cgroup_destroy(pk__group *g) {
  if (g->path != NULL && rmdir(g->path) != 0 && errno == EBUSY) {
    pk__cgroup_kill_all(g, 5000);
    for (int i = 0; i < 100 && rmdir(g->path) != 0 && errno == EBUSY; i++)
      usleep(1000);
  }
  int *fds[] = {&g->dirfd, &g->eventsfd};
  for (size_t i = 0; i < 2; i++) {
    if (*fds[i] >= 0)
      close(*fds[i]);
    *fds[i] = -1;
  }
  pk__free(g->path);
  g->path = NULL;
}
