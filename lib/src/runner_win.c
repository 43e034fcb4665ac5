/* Windows: the host prediction, and what is Linux-only for good (the
 * guardian and the subreaper; a job object needs neither: it dies with
 * its holder and nothing leaves it). */
#include "internal.h"

#include <stdio.h>
#include <string.h>

int pk_host_predict(pk_host_prediction *out) {
  if (out == NULL)
    return PK_EINVAL;
  memset(out, 0, sizeof(*out));
  out->best = PK_MECH_JOB_OBJECT;
  snprintf(out->reason, sizeof(out->reason), "%s",
           "Windows: job objects (there are no cgroups)");
  return 0;
}

int pk_subreaper_enable(void) { return PK_EUNSUPPORTED; }
bool pk_subreaper_enabled(void) { return false; }
int pk_subreaper_kill_orphans(int *killed) {
  if (killed != NULL)
    *killed = 0;
  return PK_EUNSUPPORTED;
}

int pk_guardian_use(const char *program, const char *first_arg) {
  (void)program, (void)first_arg;
  return PK_EUNSUPPORTED;
}
int pk_guardian_main(int argc, char **argv) {
  (void)argc, (void)argv;
  return 2;
}
