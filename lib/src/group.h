/* Containment backends for one run's private group. Not installed. */
#ifndef PK_GROUP_H
#define PK_GROUP_H

#include "internal.h"

#include <pthread.h>
#include <stdatomic.h>

typedef struct pk__group {
  pk_mechanism mech;
  unsigned disable;
  /* cgroup_v2 */
  char *path;   /* leaf directory */
  int dirfd;    /* O_DIRECTORY fd for CLONE_INTO_CGROUP */
  bool pooled;  /* from the leaf pool: removed by its helper thread */
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

/* The cgroup-v2 directory per-owner cgroups go under (this process's own
 * cgroup), or NULL if there is no usable hierarchy. Probed once, with a
 * throwaway cgroup of its own; it never sweeps (read-only queries such as
 * pk caps rely on that). */
PK_EXTERN const char *pk__cgroup_base(void);
/* cgroup.kill exists on this kernel (probed with the base). */
bool pk__cgroup_has_kill(void);

/* Resolve AUTO and check availability. */
int pk__mechanism_resolve(pk_mechanism want, pk_mechanism *out);

/* Create a fresh private group; guard: the guardian watches this process
 * (cgroup_v2 only). On failure fills *msg (heap). */
int pk__group_create(pk__group *g, pk_mechanism m, unsigned disable, bool guard,
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
int pk__cgroup_create(pk__group *g, bool guard, char **msg);
/* A fresh leaf named prefix-N inside the cgroup directory parent (a
 * shared group's own cgroup). */
int pk__cgroup_create_in(pk__group *g, const char *parent, const char *prefix,
                         char **msg);
/* A small number from a cgroup file ("key N" line, or the first number
 * when key is NULL), or -1. */
int64_t pk__cgroup_read(int dirfd, const char *file, const char *key);
/* Make controller ctrl ("memory", "pids", "cpu") available to the
 * cgroups directly below the per-owner cgroup dir: enabled in this
 * process's cgroup's subtree_control and in dir's. pk never moves a
 * process to make that possible: PK_ELIMIT with the reason in *msg when
 * the controller is not delegated here, or the cgroup holds processes
 * and is not the root (the no-internal-processes rule). */
int pk__cgroup_enable(const char *dir, const char *ctrl, char **msg);
/* Best effort, for accounting only: enable ctrl below dir when dir
 * already has it (never touches an ancestor, never an error). */
void pk__cgroup_offer(const char *dir, const char *ctrl);
/* True if a process of process group pgid is still running (zombies
 * are dead, not running). */
bool pk__pgroup_live(pid_t pgid);
int pk__cgroup_signal(pk__group *g, int sig);
int pk__cgroup_kill_all(pk__group *g, int timeout_ms);
bool pk__cgroup_empty(pk__group *g);
void pk__cgroup_destroy(pk__group *g);
/* The cgroup's accounting of its whole subtree: CPU time from cpu.stat
 * (usage_usec, there with or without the cpu controller) and peak memory
 * from memory.peak (only with the memory controller). -1 for what cannot
 * be read; both -1 for a process-group run. */
void pk__cgroup_usage(pk__group *g, int64_t *cpu_us, int64_t *peak);

int pk__pgroup_signal(pk__group *g, int sig, bool leader_alive);
/* SIGKILL the group and every escapee (walking the tree first when the
 * leader is alive: stop, find, kill). Call before reaping the leader. */
void pk__pgroup_kill(pk__group *g, bool leader_alive);
/* Wait until no member or escapee still runs (no signals sent). */
int pk__pgroup_wait_gone(pk__group *g, int timeout_ms);
void pk__pgroup_destroy(pk__group *g);

/* ---- the leaf pool (cgroup_pool.c) ----
 * Take a fresh leaf of the per-owner cgroup dir made ahead by the helper
 * thread (fills path, dirfd, eventsfd; true), or false: make it in line
 * (the first call starts the helper). */
bool pk__pool_take(const char *dir, pk__group *g);
/* Hand an ended run's leaf (killed, empty) to the helper to remove:
 * true, and g->path is the helper's; false: remove it in line. */
bool pk__pool_give_back(pk__group *g);
/* At exit: stop the helper, remove the ready leaves and what is left to
 * remove (bounded wait). */
void pk__pool_drain(void);
/* For tests that count cgroup directories and fds: wait (up to
 * timeout_ms) until the helper is idle with a full pool and nothing left
 * to remove; how many leaves are ready (each holds two fds). */
PK_EXTERN int pk__pool_settle(int timeout_ms);

/* ---- the per-owner cgroup (cgroup_owner.c) ----
 * Every leaf of this process lives in base/pk-<pid>-<start>-<pidns>, the
 * identity of the owning process (start time: field 22 of
 * /proc/<pid>/stat; pidns: inode of /proc/self/ns/pid). The first call
 * sweeps the cgroups of owners that are provably dead, then creates ours;
 * with guard it also starts the guardian (once per process). *dir is
 * borrowed for the life of the process. On failure fills *msg (heap). */
int pk__owner_cgroup(bool guard, unsigned disable, const char **dir,
                     char **msg);

/* ---- the guardian (guardian.c) ----
 * Start the guardian of the per-owner cgroup dir. With a pidfd of this
 * process it needs nothing more; otherwise *pipe_wr gets the write end of
 * the pipe whose EOF tells it we are gone (close-on-exec; the caller
 * keeps it for the life of the process). */
int pk__guardian_start(const char *dir, unsigned disable, int *pipe_wr,
                       char **msg);

/* ---- cgroup-v2 subtrees (cgroup_tree.c) ----
 * A cgroup directory and every cgroup below it (runs may make their own).
 * True while a process lives in it or below ("populated 1"), or when
 * cgroup.events cannot be read. */
bool pk__cgtree_populated(int eventsfd);
/* Send sig to every member, at every level. PK_ESRCH when none. */
int pk__cgtree_signal(int dirfd, int sig);
/* Send sig to every member at every level; *sent (may be NULL) gets how
 * many. 0, or the first delivery failure other than ESRCH (a member that
 * already exited is not a failure), as a PK code. */
int pk__cgtree_signal_all(int dirfd, int sig, int *sent);
/* Every member at every level (heap array, pk__free; may be short when
 * memory runs out, never wrong). */
int pk__cgtree_pids(int dirfd, pid_t **pids, size_t *n);
/* Kill everything in and below the cgroup, then wait (up to timeout_ms)
 * until it is empty: cgroup.kill when use_kill, else freeze and SIGKILL
 * every member until empty. 0, or PK_ETIMEOUT. */
int pk__cgtree_kill(int dirfd, int eventsfd, bool use_kill, int timeout_ms);
/* Remove cgroup name (relative to parentfd; AT_FDCWD for a path) and
 * every cgroup below it, deepest first. 0, or a negative errno code. */
int pk__cgtree_remove(int parentfd, const char *name);

/* ---- shared groups (group_shared.c) and their runner ----
 * A run started through a group's runner asks the group for its leaf
 * (cgroup_v2: a cgroup inside the group's; process_group: a process
 * group of its own, tracked by the group) and holds a reference to the
 * group until the run is freed. A start into a suspended group waits in
 * the group's list until resume (or a kill) wakes its loop. */
enum { PK__GW_WAIT = 0, PK__GW_RESUME, PK__GW_KILL };
typedef struct pk__grp_wait {
  struct pk__grp_wait *next;
  uv_async_t async; /* wakes the run's loop */
  atomic_int state;
  bool queued;
} pk__grp_wait;

int pk__real_runner_group(pk_group *g, pk_mechanism mech, unsigned disable,
                          pk_runner **out);
void pk__real_runner_group_free(pk_runner *r);
void pk__grp_ref(pk_group *g);
void pk__grp_unref(pk_group *g);
pk_mechanism pk__grp_mech(const pk_group *g);
bool pk__grp_pdeath_child(const pk_group *g);
int pk__grp_leaf(pk_group *g, pk__group *leaf, char **msg);
void pk__grp_track(pk_group *g, const void *key, pid_t pid);
void pk__grp_untrack(pk_group *g, const void *key);
bool pk__grp_suspended(pk_group *g);
/* A start may go ahead (true: counted as under way, pk__grp_leave when
 * spawned or failed), or the group is suspended (false). */
bool pk__grp_enter(pk_group *g);
/* Queue w (its async initialised) if the group is suspended: true; else
 * counted as under way as by pk__grp_enter: false. */
bool pk__grp_defer(pk_group *g, pk__grp_wait *w);
void pk__grp_leave(pk_group *g);
/* A woken start's loop: PK__GW_KILL (end it unstarted), PK__GW_WAIT
 * (suspended again: keep waiting), or PK__GW_RESUME (go ahead, counted
 * as under way: pk__grp_leave after the spawn). */
int pk__grp_woken(pk_group *g, pk__grp_wait *w);
void pk__grp_undefer(pk_group *g, pk__grp_wait *w);

#endif
