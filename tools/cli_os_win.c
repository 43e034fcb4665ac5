/* pk's CLI on Windows (see cli_os.h). */
#include "cli_os.h"

#include <fcntl.h>
#include <io.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <windows.h>

/* Binary standard streams: the child's bytes are forwarded as they are. */
void cli_os_init(void) {
  for (int fd = 0; fd <= 2; fd++)
    _setmode(fd, _O_BINARY);
}

void cli_os_run_begin(void) {}

bool cli_os_job_control(void) { return false; }

bool cli_os_self(char *buf, size_t len) {
  DWORD n = GetModuleFileNameA(NULL, buf, (DWORD)len);
  return n > 0 && n < len;
}

/* What libuv sees on Windows: Ctrl-C, Ctrl-Break, the console closing. */
const int *cli_os_forwarded(size_t *n) {
  static const int fwd[] = {SIGINT, SIGBREAK, SIGHUP};
  *n = sizeof(fwd) / sizeof(fwd[0]);
  return fwd;
}

void cli_os_forward(pk_proc *p, int sig) {
  (void)sig;
  pk_proc_kill(p, PK_SIGKILL);
}

void cli_os_fd_limit(char *buf, size_t len) {
  snprintf(buf, len, "the C runtime's limit on open files is %d",
           _getmaxstdio());
}

size_t cli_os_dir_len(const char *path) {
  size_t n = 0;
  for (size_t i = 0; path[i] != '\0'; i++)
    if (path[i] == '/' || path[i] == '\\' || (i == 1 && path[i] == ':'))
      n = i + 1;
  return n;
}
