/* pk's CLI on POSIX hosts (see cli_os.h). */
#include "cli_os.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

void cli_os_init(void) {
  for (int fd = 0; fd < 3; fd++)
    if (fcntl(fd, F_GETFD) < 0 && errno == EBADF &&
        open("/dev/null", O_RDWR) < 0)
      break;
  signal(SIGPIPE, SIG_IGN);
}

void cli_os_run_begin(void) {
  /* The child gets default handlers. */
  signal(SIGTTOU, SIG_IGN);
  signal(SIGTTIN, SIG_IGN);
}

bool cli_os_job_control(void) { return true; }

bool cli_os_self(char *buf, size_t len) {
  ssize_t n = readlink("/proc/self/exe", buf, len - 1);
  if (n <= 0)
    return false;
  buf[n] = '\0';
  return true;
}

const int *cli_os_forwarded(size_t *n) {
  static const int fwd[] = {SIGINT, SIGTERM, SIGHUP, SIGQUIT};
  *n = sizeof(fwd) / sizeof(fwd[0]);
  return fwd;
}

void cli_os_forward(pk_proc *p, int sig) {
  if (pk_proc_kill(p, sig) == 0)
    pk_proc_kill(p, SIGCONT);
}

void cli_os_fd_limit(char *buf, size_t len) {
  struct rlimit rl;
  getrlimit(RLIMIT_NOFILE, &rl);
  snprintf(buf, len, "RLIMIT_NOFILE is %llu", (unsigned long long)rl.rlim_cur);
}

size_t cli_os_dir_len(const char *path) {
  const char *slash = strrchr(path, '/');
  return slash != NULL ? (size_t)(slash - path) + 1 : 0;
}
