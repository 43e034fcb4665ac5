/* Signal names, the same table on every host (pk.h: PK_SIG*). */
#include "internal.h"

#include <string.h>

static const struct {
  int sig;
  const char *name;
} signal_names[] = {
#define N(s)                                                                   \
  { s, &#s[3] } /* "PK_SIGHUP" -> "SIGHUP" */
    N(PK_SIGHUP),    N(PK_SIGINT),  N(PK_SIGQUIT),
    N(PK_SIGILL),    N(PK_SIGTRAP), N(PK_SIGABRT),
    N(PK_SIGBUS),    N(PK_SIGFPE),  N(PK_SIGKILL),
    N(PK_SIGUSR1),   N(PK_SIGSEGV), N(PK_SIGUSR2),
    N(PK_SIGPIPE),   N(PK_SIGALRM), N(PK_SIGTERM),
    N(PK_SIGCHLD),   N(PK_SIGCONT), N(PK_SIGSTOP),
    N(PK_SIGTSTP),   N(PK_SIGTTIN), N(PK_SIGTTOU),
    N(PK_SIGURG),    N(PK_SIGXCPU), N(PK_SIGXFSZ),
    N(PK_SIGVTALRM), N(PK_SIGPROF), N(PK_SIGWINCH),
    N(PK_SIGSYS)
#undef N
};

const char *pk_signal_name(int sig) {
  for (size_t i = 0; i < sizeof(signal_names) / sizeof(signal_names[0]); i++)
    if (signal_names[i].sig == sig)
      return signal_names[i].name;
  return NULL;
}

int pk_signal_parse(const char *name) {
  if (name == NULL)
    return -1;
  for (size_t i = 0; i < sizeof(signal_names) / sizeof(signal_names[0]); i++)
    if (strcmp(signal_names[i].name, name) == 0)
      return signal_names[i].sig;
  return -1;
}
