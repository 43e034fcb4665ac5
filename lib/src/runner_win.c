/* Windows: groups. The job_object group is not built yet: creating one
 * fails with PK_EUNSUPPORTED and says so, and the calls on a group (which
 * cannot exist) are refused the same way. The guardian and the subreaper
 * are Linux-only for good. */
#include "internal.h"

#include <stdio.h>
#include <string.h>

#define NOT_YET "job_object groups are not built yet (Windows)"

int pk_host_predict(pk_host_prediction *out) {
  if (out == NULL)
    return PK_EINVAL;
  memset(out, 0, sizeof(*out));
  out->best = PK_MECH_JOB_OBJECT;
  snprintf(out->reason, sizeof(out->reason), "%s", "Windows has no cgroups");
  return 0;
}

void pk_group_opts_init(pk_group_opts *o) {
  if (o == NULL)
    return;
  memset(o, 0, sizeof(*o));
  o->shutdown_signal = PK_SIGTERM;
  o->grace_ms = 2000;
  o->escalate = true;
}

int pk_group_new(const pk_group_opts *opts, pk_group **out, char **msg) {
  (void)opts;
  if (out != NULL)
    *out = NULL;
  if (msg != NULL)
    *msg = pk__strdup(NOT_YET);
  return PK_EUNSUPPORTED;
}

void pk_group_free(pk_group *g) { (void)g; }
pk_mechanism pk_group_mechanism(const pk_group *g) {
  (void)g;
  return PK_MECH_JOB_OBJECT;
}
const char *pk_group_parent_death_scope(const pk_group *g) {
  (void)g;
  return "none";
}
pk_runner *pk_group_runner(pk_group *g) {
  (void)g;
  return NULL;
}
int pk_group_kill_all(pk_group *g) {
  (void)g;
  return PK_EUNSUPPORTED;
}
int pk_group_stop(pk_group *g, int64_t grace_ms, bool escalate,
                  pk_shutdown_report *rep) {
  (void)g, (void)grace_ms, (void)escalate, (void)rep;
  return PK_EUNSUPPORTED;
}
int pk_group_shutdown(pk_group *g, pk_shutdown_report *rep) {
  (void)g, (void)rep;
  return PK_EUNSUPPORTED;
}
int pk_group_signal(pk_group *g, int sig) {
  (void)g, (void)sig;
  return PK_EUNSUPPORTED;
}
int pk_group_suspend(pk_group *g) {
  (void)g;
  return PK_EUNSUPPORTED;
}
int pk_group_resume(pk_group *g) {
  (void)g;
  return PK_EUNSUPPORTED;
}
bool pk_group_suspended(const pk_group *g) {
  (void)g;
  return false;
}
int pk_group_members(pk_group *g, int **pids, size_t *n) {
  (void)g, (void)pids, (void)n;
  return PK_EUNSUPPORTED;
}
int pk_group_adopt(pk_group *g, int pid, int pidfd) {
  (void)g, (void)pid, (void)pidfd;
  return PK_EUNSUPPORTED;
}
int pk_group_stats_get(pk_group *g, pk_group_stats *out) {
  (void)g, (void)out;
  return PK_EUNSUPPORTED;
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
