/* Whole-subtree operations on a cgroup-v2 directory: a run's leaf may
 * hold cgroups its processes created, and an owner's cgroup holds its
 * leaves. Used by teardown, the stale sweep and the guardian. */
#include "group.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define PK__CG_MAX_DEPTH 32

typedef int (*subdir_fn)(int parentfd, const char *name, int depth, void *arg);

/* Call fn for every cgroup directly below dirfd; sums what fn returns
 * (negative returns are ignored: best effort over the rest). */
static int each_subdir(int dirfd, int depth, subdir_fn fn, void *arg) {
  int fd = openat(dirfd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  DIR *d = fd >= 0 ? fdopendir(fd) : NULL;
  if (d == NULL) {
    if (fd >= 0)
      close(fd);
    return 0;
  }
  int sum = 0;
  struct dirent *e;
  while ((e = readdir(d)) != NULL) {
    if (e->d_type != DT_DIR || strcmp(e->d_name, ".") == 0 ||
        strcmp(e->d_name, "..") == 0)
      continue;
    int n = fn(dirfd, e->d_name, depth + 1, arg);
    sum += n > 0 ? n : 0;
  }
  closedir(d);
  return sum;
}

typedef struct walk {
  int sig; /* signal to send; 0 with pids: only list */
  int err; /* first delivery failure other than ESRCH (an errno) */
  pid_t *pids;
  size_t n, cap;
  bool list;
} walk;

static void walk_add(walk *w, pid_t pid) {
  if (w->n == w->cap) {
    size_t cap = w->cap ? w->cap * 2 : 64;
    pid_t *p = pk__realloc(w->pids, cap * sizeof(*p));
    if (p == NULL)
      return; /* out of memory: the listing is short, never wrong */
    w->pids = p;
    w->cap = cap;
  }
  w->pids[w->n++] = pid;
}

/* Signal (or list) the members in dirfd's own cgroup.procs; how many. */
static int signal_procs(int dirfd, walk *w) {
  int fd = openat(dirfd, "cgroup.procs", O_RDONLY | O_CLOEXEC);
  if (fd < 0)
    return 0;
  FILE *f = fdopen(fd, "r");
  if (f == NULL) {
    close(fd);
    return 0;
  }
  int n = 0;
  long pid;
  while (fscanf(f, "%ld", &pid) == 1) {
    if (w->list)
      walk_add(w, (pid_t)pid);
    else if (kill((pid_t)pid, w->sig) != 0 && errno != ESRCH && w->err == 0)
      w->err = errno;
    n++;
  }
  fclose(f);
  return n;
}

static int signal_below(int dirfd, walk *w, int depth);

static int signal_sub(int parentfd, const char *name, int depth, void *arg) {
  int fd = openat(parentfd, name, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0)
    return 0;
  int n = signal_below(fd, arg, depth);
  close(fd);
  return n;
}

static int signal_below(int dirfd, walk *w, int depth) {
  int n = signal_procs(dirfd, w);
  if (depth < PK__CG_MAX_DEPTH)
    n += each_subdir(dirfd, depth, signal_sub, w);
  return n;
}

int pk__cgtree_signal(int dirfd, int sig) {
  walk w = {.sig = sig};
  return signal_below(dirfd, &w, 0) > 0 ? 0 : PK_ESRCH;
}

int pk__cgtree_signal_all(int dirfd, int sig, int *sent) {
  walk w = {.sig = sig};
  int n = signal_below(dirfd, &w, 0);
  if (sent != NULL)
    *sent = n;
  return w.err != 0 ? PK__ERR(w.err) : 0;
}

int pk__cgtree_pids(int dirfd, pid_t **pids, size_t *n) {
  walk w = {.list = true};
  signal_below(dirfd, &w, 0);
  *pids = w.pids;
  *n = w.n;
  return 0;
}

bool pk__cgtree_populated(int eventsfd) {
  char buf[256];
  ssize_t n = pread(eventsfd, buf, sizeof(buf) - 1, 0);
  if (n <= 0)
    return true; /* cannot tell: assume the worst */
  buf[n] = '\0';
  return strstr(buf, "populated 0") == NULL;
}

static int write_at(int dirfd, const char *file, const char *val) {
  int fd = openat(dirfd, file, O_WRONLY | O_CLOEXEC);
  if (fd < 0)
    return PK__ERR(errno);
  ssize_t n = write(fd, val, strlen(val));
  int e = errno;
  close(fd);
  return n < 0 ? PK__ERR(e) : 0;
}

/* cgroup.kill covers the subtree and penetrates a frozen group; without
 * it, freezing stops forks and SIGKILL (which a frozen task still
 * receives) goes to every member, again at every wake-up. */
int pk__cgtree_kill(int dirfd, int eventsfd, bool use_kill, int timeout_ms) {
  if (use_kill && write_at(dirfd, "cgroup.kill", "1") != 0)
    use_kill = false;
  if (!use_kill)
    write_at(dirfd, "cgroup.freeze", "1");
  uint64_t deadline = pk__now_ns() + (uint64_t)timeout_ms * 1000000u;
  while (pk__cgtree_populated(eventsfd)) {
    if (!use_kill) {
      walk w = {.sig = SIGKILL};
      signal_below(dirfd, &w, 0);
    }
    uint64_t now = pk__now_ns();
    if (now >= deadline)
      return PK_ETIMEOUT;
    struct pollfd pfd = {.fd = eventsfd, .events = POLLPRI};
    int wait = (int)((deadline - now) / 1000000u) + 1;
    poll(&pfd, 1, wait < 10 ? wait : 10);
  }
  return 0;
}

static int remove_sub(int parentfd, const char *name, int depth, void *arg) {
  (void)arg;
  int fd =
      openat(parentfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
  if (fd >= 0 && depth < PK__CG_MAX_DEPTH)
    each_subdir(fd, depth, remove_sub, NULL);
  if (fd >= 0)
    close(fd);
  /* A cgroup whose last task just exited can be busy for a moment. */
  for (int i = 0; i < 100; i++) {
    if (unlinkat(parentfd, name, AT_REMOVEDIR) == 0 || errno == ENOENT)
      return 0;
    if (errno != EBUSY)
      break;
    poll(NULL, 0, 1);
  }
  return PK__ERR(errno);
}

int pk__cgtree_remove(int parentfd, const char *name) {
  return remove_sub(parentfd, name, 0, NULL);
}
