/* Group options, the same on every platform: defaults and validation. */
#include "internal.h"

#include <string.h>

void pk_group_opts_init(pk_group_opts *o) {
  if (o == NULL)
    return;
  memset(o, 0, sizeof(*o));
  o->shutdown_signal = PK_SIGTERM;
  o->grace_ms = 2000;
  o->escalate = true;
}

bool pk__group_has_limits(const pk_group_opts *o) {
  return o->memory_max != 0 || o->max_processes != 0 || o->cpu_quota != 0;
}

int pk__group_check_opts(const pk_group_opts *o, char **msg) {
  const char *bad = NULL;
  if (o->memory_max < 0 || (o->memory_max > 0 && o->memory_max < 4096))
    bad = "memory_max must be 0 (none) or at least 4096 bytes";
  else if (o->max_processes < 0)
    bad = "max_processes must be 0 (none) or at least 1";
  else if (o->cpu_quota != o->cpu_quota /* NaN */ || o->cpu_quota < 0 ||
           (o->cpu_quota > 0 && o->cpu_quota < 0.01) || o->cpu_quota > 4096)
    bad = "cpu_quota must be 0 (none) or between 0.01 and 4096 CPU cores";
  else if (o->grace_ms < 0)
    bad = "grace_ms must not be negative";
  else if (o->shutdown_signal <= 0 || o->shutdown_signal >= PK_NSIG)
    bad = "shutdown_signal is not a signal number";
  if (bad != NULL)
    *msg = pk__sprintf("%s", bad);
  return bad != NULL ? PK_EINVAL : 0;
}

void pk__group_set_msg(char **errmsg, char *msg, int rc) {
  if (errmsg != NULL)
    *errmsg = msg != NULL ? msg : pk__strdup(pk_strerror(rc));
  else
    pk__free(msg);
}

int pk__group_new_begin(const pk_group_opts *opts, pk_group **out,
                        char **errmsg, pk_group_opts *o, char **msg) {
  if (errmsg != NULL)
    *errmsg = NULL;
  if (out == NULL)
    return PK_EINVAL;
  *out = NULL;
  pk_group_opts_init(o);
  if (opts != NULL)
    *o = *opts;
  return pk__group_check_opts(o, msg);
}
