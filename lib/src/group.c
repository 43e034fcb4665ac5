/* Linux: which mechanisms this host has, and dispatch to the containment
 * backends (cgroup_v2, process groups). */
#include "group.h"

#include <errno.h>
#include <signal.h>
#include <string.h>

int pk_mechanism_available(pk_mechanism m) {
  switch (m) {
  case PK_MECH_AUTO:
  case PK_MECH_PROCESS_GROUP:
    return 0;
  case PK_MECH_CGROUP_V2:
    return pk__cgroup_base() != NULL ? 0 : PK_EUNSUPPORTED;
  default:
    return PK_EUNSUPPORTED;
  }
}

pk_mechanism pk_mechanism_best(void) {
  return pk__cgroup_base() != NULL ? PK_MECH_CGROUP_V2 : PK_MECH_PROCESS_GROUP;
}

int pk__mechanism_resolve(pk_mechanism want, pk_mechanism *out) {
  if (want == PK_MECH_AUTO)
    want = pk_mechanism_best();
  int rc = pk_mechanism_available(want);
  if (rc == 0)
    *out = want;
  return rc;
}

int pk__group_create(pk__group *g, pk_mechanism m, unsigned disable, bool guard,
                     char **msg) {
  memset(g, 0, sizeof(*g));
  g->dirfd = g->eventsfd = -1;
  g->mech = m;
  g->disable = disable;
  *msg = NULL;
  if (m == PK_MECH_CGROUP_V2)
    return pk__cgroup_create(g, guard, msg);
  if (m == PK_MECH_PROCESS_GROUP && guard) {
    *msg = pk__sprintf("kill_on_owner_death needs the cgroup_v2 mechanism");
    return PK_EUNSUPPORTED;
  }
  if (m == PK_MECH_PROCESS_GROUP)
    return 0;
  *msg = pk__sprintf("mechanism %s is not supported on this platform",
                     pk_mechanism_name(m));
  return PK_EUNSUPPORTED;
}

void pk__group_set_leader(pk__group *g, pid_t pid) {
  if (g->mech == PK_MECH_PROCESS_GROUP)
    g->pgid = g->leader = pid;
}

int pk__group_signal(pk__group *g, int sig, bool leader_alive) {
  if (g->mech == PK_MECH_CGROUP_V2)
    return pk__cgroup_signal(g, sig);
  return pk__pgroup_signal(g, sig, leader_alive);
}

int pk__group_kill_all(pk__group *g, int timeout_ms) {
  if (g->mech == PK_MECH_CGROUP_V2)
    return pk__cgroup_kill_all(g, timeout_ms);
  pk__pgroup_kill(g, false);
  return pk__pgroup_wait_gone(g, timeout_ms);
}

int pk__group_wait_gone(pk__group *g, int timeout_ms) {
  if (g->mech != PK_MECH_PROCESS_GROUP)
    return 0;
  return pk__pgroup_wait_gone(g, timeout_ms);
}

bool pk__group_empty(pk__group *g) {
  if (g->mech == PK_MECH_CGROUP_V2)
    return pk__cgroup_empty(g);
  return g->pgid <= 0 || (killpg(g->pgid, 0) < 0 && errno == ESRCH);
}

void pk__group_destroy(pk__group *g) {
  if (g->mech == PK_MECH_CGROUP_V2)
    pk__cgroup_destroy(g);
  else
    pk__pgroup_destroy(g);
}
