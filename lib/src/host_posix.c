/* Host process state pk relies on, checked before pk's first event loop:
 * the standard descriptors, and the descriptors libuv opens once per
 * process in its first loop (it aborts when it cannot). */
#include "internal.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

static pthread_mutex_t host_mu = PTHREAD_MUTEX_INITIALIZER;
static bool host_ready;

/* A host may start with fd 0, 1 or 2 closed: put /dev/null there, so no
 * descriptor of pk's or libuv's takes a standard number and reaches a
 * child as its stdin, stdout or stderr. */
static void fill_std_fds(void) {
  for (int fd = 0; fd < 3; fd++) {
    if (fcntl(fd, F_GETFD) >= 0 || errno != EBADF)
      continue;
    int n = open("/dev/null", O_RDWR); /* the lowest free number: fd */
    if (n > 2)
      close(n);
  }
}

/* libuv's first uv_loop_init opens a signal pipe for the process and
 * calls abort() when it cannot: make sure it can (two pipes' worth of
 * room: that pipe and the loop's own epoll and eventfd), then let it. */
static int prime_libuv(void) {
  int a[2], b[2];
  if (pipe2(a, O_CLOEXEC) != 0)
    return PK_ELIMIT;
  int rc = pipe2(b, O_CLOEXEC) == 0 ? 0 : PK_ELIMIT;
  if (rc == 0) {
    close(b[0]);
    close(b[1]);
  }
  close(a[0]);
  close(a[1]);
  if (rc != 0)
    return rc;
  uv_loop_t loop;
  if (uv_loop_init(&loop) != 0)
    return PK_ELIMIT;
  uv_loop_close(&loop);
  return 0;
}

int pk__host_check(void) {
  pthread_mutex_lock(&host_mu);
  int rc = 0;
  if (!host_ready) {
    fill_std_fds();
    rc = prime_libuv();
    host_ready = rc == 0;
  }
  pthread_mutex_unlock(&host_mu);
  return rc;
}

bool pk__host_signals(void) { return true; }

int pk__map_uv_error(int rc) {
  return rc == UV_EMFILE || rc == UV_ENFILE ? PK_ELIMIT : rc;
}

void pk__loops_wait(uv_loop_t *const *loops, size_t n, int timeout_ms) {
  struct pollfd one, *pfd = n == 1 ? &one : pk__calloc(n, sizeof(*pfd));
  int wait = timeout_ms;
  for (size_t i = 0; i < n; i++) {
    if (pfd != NULL) {
      pfd[i].fd = uv_backend_fd(loops[i]);
      pfd[i].events = POLLIN;
    }
    int t = uv_backend_timeout(loops[i]);
    if (t >= 0 && (wait < 0 || t < wait))
      wait = t;
  }
  if (pfd == NULL) { /* no memory for the set: wait on the first only */
    pfd = &one;
    one.fd = uv_backend_fd(loops[0]);
    one.events = POLLIN;
    n = 1;
    if (wait < 0 || wait > 10)
      wait = 10;
  }
  poll(pfd, (nfds_t)n, wait);
  if (pfd != &one)
    pk__free(pfd);
}

char pk__proc_state(pid_t pid) {
  char path[64], buf[512];
  snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0)
    return 0;
  ssize_t n = read(fd, buf, sizeof(buf) - 1);
  close(fd);
  buf[n > 0 ? n : 0] = '\0';
  const char *rp = strrchr(buf, ')'); /* the name may hold ')' */
  return rp != NULL && rp[1] == ' ' ? rp[2] : 0;
}

bool pk__proc_running(pid_t pid) {
  char st = pk__proc_state(pid);
  return st != 0 && st != 'Z' && st != 'X';
}
