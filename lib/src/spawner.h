/* The raw spawner: one child, prepared entirely in the parent, started
 * with a CLONE_VM|CLONE_VFORK clone so its cost does not depend on the
 * parent's memory. Not installed. */
#ifndef PK_SPAWN_H
#define PK_SPAWN_H

#include <signal.h>
#include <stdbool.h>
#include <sys/resource.h>
#include <sys/types.h>

enum pk__stage {
  PK__STAGE_NONE = 0,
  PK__STAGE_CLONE,
  PK__STAGE_SIGNALS,
  PK__STAGE_CGROUP,
  PK__STAGE_SETSID,
  PK__STAGE_SETPGID,
  PK__STAGE_CHDIR,
  PK__STAGE_FDS,
  PK__STAGE_CLOSE_FDS,
  PK__STAGE_SETGROUPS,
  PK__STAGE_SETGID,
  PK__STAGE_SETUID,
  PK__STAGE_PDEATHSIG,
  PK__STAGE_EXEC,
  PK__STAGE_TCSETPGRP,
};

const char *pk__stage_name(int stage);

typedef struct pk__spawn_plan {
  const char *path;  /* resolved program path */
  char *const *argv; /* NULL-terminated */
  char *const *envp; /* NULL-terminated */
  int fd[3];         /* placed at 0, 1, 2 */
  const char *cwd;   /* NULL: inherit */
  bool set_umask;
  mode_t umask;
  bool setsid;
  bool setpgid; /* new process group (process_group mechanism) */
  /* Foreground: after setpgid the child makes its new group the
   * foreground group of tty_fd (its controlling terminal) before exec;
   * all signals are still blocked there, so SIGTTOU cannot stop it, and
   * it never runs a line of its program in the background. */
  bool foreground;
  int tty_fd;
  bool set_user;
  uid_t uid;
  gid_t gid;
  const gid_t *groups;
  size_t ngroups;
  bool pdeathsig;
  int cgroup_dirfd; /* -1: none. clone3 CLONE_INTO_CGROUP, else the
                       child writes itself into its cgroup.procs */
  unsigned disable; /* PK_NO_* */
} pk__spawn_plan;

typedef struct pk__spawn_out {
  pid_t pid;
  int pidfd;          /* -1 when pidfds are unavailable */
  const char *method; /* static string */
  int stage;          /* failing stage, PK__STAGE_NONE on success */
  int err;            /* errno at that stage */
} pk__spawn_out;

/* Spawn. Returns 0 on success (child exec'd); else a negative PK_E code
 * with out->stage/out->err set; a child that failed is already reaped. */
int pk__spawn(const pk__spawn_plan *plan, pk__spawn_out *out);

/* waitid on a child by pidfd (falling back to its pid when P_PIDFD is
 * unknown to the kernel) or by pid when pidfd < 0; retries EINTR. Adds
 * __WALL: children are spawned with an exit signal of 0. ru (may be NULL)
 * gets the reaped child's resource use. */
int pk__waitid(pid_t pid, int pidfd, siginfo_t *si, int options,
               struct rusage *ru);

/* The wait status of a child someone else reaped (a host that ignores
 * SIGCHLD, or a waitpid(-1) of its own), read from the pidfd we held
 * (PIDFD_GET_INFO with PIDFD_INFO_EXIT, Linux 6.15). PK_EUNSUPPORTED
 * when the kernel cannot tell. */
int pk__pidfd_exit_status(int pidfd, int *status);

/* Classify a failed stage/errno into a PK_E code. */
int pk__spawn_error_code(int stage, int err);

#endif
