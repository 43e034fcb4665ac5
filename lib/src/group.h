/* Containment backends for one run's private group. Not installed. */
#ifndef PK_GROUP_H
#define PK_GROUP_H

#include "internal.h"

typedef struct pk__group {
  pk_mechanism mech;
  unsigned disable;
  /* cgroup_v2 */
  char *path;   /* leaf directory */
  int dirfd;    /* O_DIRECTORY fd for CLONE_INTO_CGROUP */
  int eventsfd; /* cgroup.events, polled for "populated 0" */
  /* process_group */
  pid_t pgid, leader;
  /* descendants that left the process group (setsid/setpgid), found by
   * walking the live leader's tree; pidfds where available. Grown as
   * needed; one that cannot be tracked (no memory) is signalled at once
   * and counted in esc_untracked. esc_found: how many in all, kept after
   * destroy for the result. */
  pid_t *esc_pid;
  int *esc_fd;
  int nesc, esc_cap, esc_untracked, esc_found;
} pk__group;

/* The cgroup-v2 directory new leaves go under (this process's own
 * cgroup), or NULL if there is no usable hierarchy. Probed once. */
PK_EXTERN const char *pk__cgroup_base(void);

/* Resolve AUTO and check availability. */
int pk__mechanism_resolve(pk_mechanism want, pk_mechanism *out);

/* Create a fresh private group. On failure fills *msg (heap). */
int pk__group_create(pk__group *g, pk_mechanism m, unsigned disable,
                     char **msg);
/* The leader of the group has been spawned. */
void pk__group_set_leader(pk__group *g, pid_t pid);
/* Send sig to every process of the group. PK_ESRCH when it is empty.
 * leader_alive: the leader has not exited, so its tree can be walked for
 * processes that left a process group. */
int pk__group_signal(pk__group *g, int sig, bool leader_alive);
/* SIGKILL everything and wait (up to timeout_ms) until the group is
 * empty. Returns 0, or PK_ETIMEOUT if something survived. */
int pk__group_kill_all(pk__group *g, int timeout_ms);
/* Process groups: wait (up to timeout_ms) until no member still runs,
 * without signalling. 0, or PK_ETIMEOUT. No-op for cgroups. */
int pk__group_wait_gone(pk__group *g, int timeout_ms);
/* True if no live process is left in the group (cgroup only knows for
 * sure; process groups answer from killpg(pgid, 0)). */
bool pk__group_empty(pk__group *g);
/* Remove the group (cgroup: rmdir) and close its fds. Idempotent. */
void pk__group_destroy(pk__group *g);

/* Backend entry points (group_cgroup.c, group_pgroup.c). */
int pk__cgroup_create(pk__group *g, char **msg);
int pk__cgroup_signal(pk__group *g, int sig);
int pk__cgroup_kill_all(pk__group *g, int timeout_ms);
bool pk__cgroup_empty(pk__group *g);
void pk__cgroup_destroy(pk__group *g);

int pk__pgroup_signal(pk__group *g, int sig, bool leader_alive);
/* SIGKILL the group and every escapee (walking the tree first when the
 * leader is alive: stop, find, kill). Call before reaping the leader. */
void pk__pgroup_kill(pk__group *g, bool leader_alive);
/* Wait until no member or escapee still runs (no signals sent). */
int pk__pgroup_wait_gone(pk__group *g, int timeout_ms);
void pk__pgroup_destroy(pk__group *g);

#endif
