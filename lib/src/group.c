/* Mechanism selection and dispatch to the containment backends. */
#include "group.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

const char *pk_mechanism_name(pk_mechanism m) {
  switch (m) {
  case PK_MECH_CGROUP_V2:
    return "cgroup_v2";
  case PK_MECH_PROCESS_GROUP:
    return "process_group";
  case PK_MECH_JOB_OBJECT:
    return "job_object";
  default:
    return "auto";
  }
}

int pk_mechanism_parse(const char *name, pk_mechanism *out) {
  static const pk_mechanism all[] = {PK_MECH_AUTO, PK_MECH_CGROUP_V2,
                                     PK_MECH_PROCESS_GROUP, PK_MECH_JOB_OBJECT};
  if (name == NULL || out == NULL)
    return PK_EINVAL;
  for (size_t i = 0; i < sizeof(all) / sizeof(all[0]); i++) {
    if (strcmp(name, pk_mechanism_name(all[i])) == 0) {
      *out = all[i];
      return 0;
    }
  }
  return PK_EINVAL;
}

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

int pk__group_create(pk__group *g, pk_mechanism m, unsigned disable,
                     char **msg) {
  memset(g, 0, sizeof(*g));
  g->dirfd = g->eventsfd = -1;
  g->mech = m;
  g->disable = disable;
  *msg = NULL;
  if (m == PK_MECH_CGROUP_V2)
    return pk__cgroup_create(g, msg);
  if (m == PK_MECH_PROCESS_GROUP)
    return 0;
  *msg = pk__sprintf("mechanism %s is not supported on this platform",
                     pk_mechanism_name(m));
  return PK_EUNSUPPORTED;
}

void pk__group_set_leader(pk__group *g, pid_t pid) {
  if (g->mech == PK_MECH_PROCESS_GROUP)
    g->pgid = pid;
}

int pk__group_signal(pk__group *g, int sig) {
  if (g->mech == PK_MECH_CGROUP_V2)
    return pk__cgroup_signal(g, sig);
  if (g->pgid <= 0)
    return PK_ESRCH;
  if (killpg(g->pgid, sig) < 0)
    return errno == ESRCH ? PK_ESRCH : PK__ERR(errno);
  return 0;
}

/* True if a process of group pgid is still running (zombies excepted:
 * they are dead, only waiting for whoever inherited them). */
static bool pgroup_has_live(pid_t pgid) {
  DIR *d = opendir("/proc");
  if (d == NULL)
    return false;
  bool live = false;
  struct dirent *e;
  while (!live && (e = readdir(d)) != NULL) {
    if (e->d_name[0] < '1' || e->d_name[0] > '9')
      continue;
    char path[300], buf[512];
    snprintf(path, sizeof(path), "/proc/%.32s/stat", e->d_name);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
      continue;
    ssize_t n = read(fd, buf, sizeof(buf) - 1);
    close(fd);
    if (n <= 0)
      continue;
    buf[n] = '\0';
    char *rp = strrchr(buf, ')'), state;
    long ppid, pgrp;
    if (rp != NULL && sscanf(rp + 1, " %c %ld %ld", &state, &ppid, &pgrp) == 3)
      live = pgrp == (long)pgid && state != 'Z' && state != 'X';
  }
  closedir(d);
  return live;
}

int pk__group_kill_all(pk__group *g, int timeout_ms) {
  if (g->mech == PK_MECH_CGROUP_V2)
    return pk__cgroup_kill_all(g, timeout_ms);
  if (g->pgid > 0)
    killpg(g->pgid, SIGKILL);
  return pk__group_wait_gone(g, timeout_ms);
}

int pk__group_wait_gone(pk__group *g, int timeout_ms) {
  if (g->mech != PK_MECH_PROCESS_GROUP || g->pgid <= 0)
    return 0;
  /* Cheap first: no member left at all (common case). Only when some
   * remain (alive, or dead orphans not yet reaped by their new parent)
   * scan /proc for one still running. No signals here: the leader may be
   * reaped already, so the pgid is only ours while members exist. */
  if (killpg(g->pgid, 0) != 0)
    return 0;
  uint64_t deadline = pk__now_ns() + (uint64_t)timeout_ms * 1000000u;
  while (pgroup_has_live(g->pgid)) {
    if (pk__now_ns() >= deadline)
      return PK_ETIMEOUT;
    poll(NULL, 0, 1);
  }
  return 0;
}

bool pk__group_empty(pk__group *g) {
  if (g->mech == PK_MECH_CGROUP_V2)
    return pk__cgroup_empty(g);
  return g->pgid <= 0 || (killpg(g->pgid, 0) < 0 && errno == ESRCH);
}

void pk__group_destroy(pk__group *g) {
  if (g->mech == PK_MECH_CGROUP_V2)
    pk__cgroup_destroy(g);
  g->pgid = 0;
}
