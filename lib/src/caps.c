/* The capability matrix: for each (mechanism, capability) the support
 * level and a one-line note. It is data: docs/platform-support.md is
 * generated from it (`pk caps --markdown`) and tests/test_caps.c checks
 * both the file and every cell's behaviour on this host. */
#include "internal.h"

typedef struct cell {
  pk_support level;
  const char *note;
} cell;

static const cell matrix[PK_MECH_JOB_OBJECT + 1][PK_CAP_COUNT] = {
    [PK_MECH_CGROUP_V2] =
        {
            [PK_CAP_CONTAIN_BEFORE_EXEC] =
                {PK_SUPPORT_FULL, "clone3(CLONE_INTO_CGROUP), or the child "
                                  "writes cgroup.procs before exec"},
            [PK_CAP_KILL_TREE] =
                {PK_SUPPORT_FULL,
                 "cgroup.kill, or freeze then SIGKILL every member"},
            [PK_CAP_SIGNAL_TREE] = {PK_SUPPORT_FULL,
                                    "every member listed in cgroup.procs"},
            [PK_CAP_ESCAPE_PROOF] =
                {PK_SUPPORT_FULL,
                 "setsid/setpgid cannot leave the cgroup, before or after "
                 "the direct child exits"},
            [PK_CAP_PRIVILEGE_DROP] =
                {PK_SUPPORT_FULL, "joins the cgroup first, then setgroups, "
                                  "setresgid, setresuid"},
        },
    [PK_MECH_PROCESS_GROUP] =
        {
            [PK_CAP_CONTAIN_BEFORE_EXEC] = {PK_SUPPORT_FULL,
                                            "setpgid in the child before exec"},
            [PK_CAP_KILL_TREE] =
                {PK_SUPPORT_PARTIAL,
                 "killpg, plus descendants that left the group while the "
                 "direct child is alive"},
            [PK_CAP_SIGNAL_TREE] =
                {PK_SUPPORT_PARTIAL,
                 "killpg, plus escapees found while the direct child is "
                 "alive"},
            [PK_CAP_ESCAPE_PROOF] =
                {PK_SUPPORT_PARTIAL,
                 "escapees are found by walking the live child's tree; "
                 "orphans of an exited child are out of reach"},
            [PK_CAP_PRIVILEGE_DROP] = {PK_SUPPORT_FULL,
                                       "setgroups, setresgid, setresuid"},
        },
    [PK_MECH_JOB_OBJECT] =
        {
            [PK_CAP_CONTAIN_BEFORE_EXEC] = {PK_SUPPORT_NONE,
                                            "no Windows backend yet"},
            [PK_CAP_KILL_TREE] = {PK_SUPPORT_NONE, "no Windows backend yet"},
            [PK_CAP_SIGNAL_TREE] = {PK_SUPPORT_NONE, "Windows has no signals"},
            [PK_CAP_ESCAPE_PROOF] = {PK_SUPPORT_NONE, "no Windows backend yet"},
            [PK_CAP_PRIVILEGE_DROP] = {PK_SUPPORT_NONE,
                                       "no Windows backend yet"},
        },
};

pk_support pk_capability_support(pk_mechanism m, pk_capability c,
                                 const char **note) {
  if (m == PK_MECH_AUTO)
    m = pk_mechanism_best();
  const cell *x =
      (unsigned)m <= PK_MECH_JOB_OBJECT && (unsigned)c < PK_CAP_COUNT
          ? &matrix[m][c]
          : NULL;
  if (note != NULL)
    *note = x != NULL && x->note != NULL ? x->note : "unknown";
  return x != NULL ? x->level : PK_SUPPORT_NONE;
}

const char *pk_capability_name(pk_capability c) {
  static const char *const names[PK_CAP_COUNT] = {
      [PK_CAP_CONTAIN_BEFORE_EXEC] = "contain_before_exec",
      [PK_CAP_KILL_TREE] = "kill_tree",
      [PK_CAP_SIGNAL_TREE] = "signal_tree",
      [PK_CAP_ESCAPE_PROOF] = "escape_proof",
      [PK_CAP_PRIVILEGE_DROP] = "privilege_drop",
  };
  return (unsigned)c < PK_CAP_COUNT ? names[c] : "unknown";
}

const char *pk_support_name(pk_support s) {
  return s == PK_SUPPORT_FULL      ? "full"
         : s == PK_SUPPORT_PARTIAL ? "partial"
                                   : "none";
}
