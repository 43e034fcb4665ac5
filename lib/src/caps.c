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
                                    "every member listed in cgroup.procs, at "
                                    "every level; EPERM is an error"},
            [PK_CAP_ESCAPE_PROOF] =
                {PK_SUPPORT_PARTIAL,
                 "setsid, setpgid and double forks stay in the cgroup; a "
                 "process allowed to write another cgroup's cgroup.procs "
                 "(root, or the owner inside a delegated subtree) can move "
                 "itself out"},
            [PK_CAP_PRIVILEGE_DROP] = {PK_SUPPORT_FULL,
                                       "joins the cgroup first, then "
                                       "setgroups, setresgid, setresuid"},
            [PK_CAP_GRACEFUL_SHUTDOWN] =
                {PK_SUPPORT_FULL, "soft signal to every member, ends early "
                                  "when cgroup.events says empty, then "
                                  "cgroup.kill"},
            [PK_CAP_ADOPT] = {PK_SUPPORT_FULL,
                              "moved into a leaf of the group; what it forks "
                              "afterwards is contained"},
            [PK_CAP_SUSPEND_RESUME] =
                {PK_SUPPORT_FULL,
                 "cgroup.freeze; a start while frozen waits for resume"},
            [PK_CAP_MEMBERS] = {PK_SUPPORT_FULL, "the whole tree"},
            [PK_CAP_GROUP_STATS] =
                {PK_SUPPORT_FULL,
                 "cpu.stat; memory.peak and OOM kills where the memory "
                 "controller is enabled (else unknown, -1)"},
            [PK_CAP_RUN_STATS] = {PK_SUPPORT_FULL,
                                  "the run's own leaf: CPU of its whole tree; "
                                  "peak memory of the tree with the memory "
                                  "controller, else of the direct child"},
            [PK_CAP_MEMORY_MAX] = {PK_SUPPORT_FULL,
                                   "memory.max; needs the memory controller "
                                   "delegated (the real cgroup-v2 root), "
                                   "else PK_ELIMIT"},
            [PK_CAP_MAX_PROCESSES] = {PK_SUPPORT_FULL,
                                      "pids.max (processes and threads); needs "
                                      "the pids controller, else PK_ELIMIT"},
            [PK_CAP_CPU_QUOTA] = {PK_SUPPORT_FULL,
                                  "cpu.max over a 100 ms period; needs the "
                                  "cpu controller, else PK_ELIMIT"},
            [PK_CAP_INHERIT_ENV] = {PK_SUPPORT_FULL,
                                    "allow-list of inherited variables"},
            [PK_CAP_SETSID] = {PK_SUPPORT_FULL,
                               "the new session stays in the cgroup"},
            [PK_CAP_CREATE_NO_WINDOW] = {PK_SUPPORT_NOOP,
                                         "a Windows console flag: accepted, "
                                         "nothing to do here"},
            [PK_CAP_KILL_ON_PARENT_DEATH] =
                {PK_SUPPORT_FULL,
                 "groups: the whole tree, through the guardian; a command's "
                 "own flag: the direct child (PR_SET_PDEATHSIG)"},
            [PK_CAP_OWNER_DEATH_TREE_KILL] =
                {PK_SUPPORT_FULL, "the guardian kills the per-owner cgroup "
                                  "however the owner ends"},
            [PK_CAP_SUBREAPER] = {PK_SUPPORT_NOOP,
                                  "not needed: escapees never leave the "
                                  "cgroup, so none come back"},
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
                 "orphans of an exited child are out of reach (see "
                 "subreaper)"},
            [PK_CAP_PRIVILEGE_DROP] = {PK_SUPPORT_FULL,
                                       "setgroups, setresgid, setresuid"},
            [PK_CAP_GRACEFUL_SHUTDOWN] = {PK_SUPPORT_FULL,
                                          "killpg of every run's group, ends "
                                          "early when none runs, then SIGKILL"},
            [PK_CAP_ADOPT] = {PK_SUPPORT_PARTIAL,
                              "the process is tracked and signalled on its "
                              "own; its forks are not contained"},
            [PK_CAP_SUSPEND_RESUME] = {PK_SUPPORT_FULL,
                                       "SIGSTOP / SIGCONT to every run's "
                                       "group; a start while stopped waits"},
            [PK_CAP_MEMBERS] =
                {PK_SUPPORT_PARTIAL, "tracked leaders only (a run's direct "
                                     "child until reaped, adopted processes)"},
            [PK_CAP_GROUP_STATS] =
                {PK_SUPPORT_PARTIAL, "active count only; CPU and memory "
                                     "unknown (-1)"},
            [PK_CAP_RUN_STATS] =
                {PK_SUPPORT_PARTIAL,
                 "rusage of the direct child and what it waited for"},
            [PK_CAP_MEMORY_MAX] = {PK_SUPPORT_NONE, "no limits: "
                                                    "PK_EUNSUPPORTED"},
            [PK_CAP_MAX_PROCESSES] = {PK_SUPPORT_NONE,
                                      "no limits: PK_EUNSUPPORTED"},
            [PK_CAP_CPU_QUOTA] = {PK_SUPPORT_NONE,
                                  "no limits: PK_EUNSUPPORTED"},
            [PK_CAP_INHERIT_ENV] = {PK_SUPPORT_FULL,
                                    "allow-list of inherited variables"},
            [PK_CAP_SETSID] = {PK_SUPPORT_FULL,
                               "the new session's group is the run's own "
                               "(pgid = pid), which pk tracks"},
            [PK_CAP_CREATE_NO_WINDOW] = {PK_SUPPORT_NOOP,
                                         "a Windows console flag: accepted, "
                                         "nothing to do here"},
            [PK_CAP_KILL_ON_PARENT_DEATH] =
                {PK_SUPPORT_PARTIAL,
                 "the direct child only (PR_SET_PDEATHSIG, Linux), and "
                 "thread-scoped: it fires when the starting thread ends"},
            [PK_CAP_OWNER_DEATH_TREE_KILL] = {PK_SUPPORT_NONE,
                                              "needs a cgroup: "
                                              "PK_EUNSUPPORTED"},
            [PK_CAP_SUBREAPER] = {PK_SUPPORT_FULL,
                                  "opt-in, process-wide (Linux): escapees "
                                  "come back and are killed"},
        },
    [PK_MECH_JOB_OBJECT] =
        {
            [PK_CAP_CONTAIN_BEFORE_EXEC] = {PK_SUPPORT_FULL,
                                            "created suspended, put into the "
                                            "job, then resumed"},
            [PK_CAP_KILL_TREE] = {PK_SUPPORT_FULL,
                                  "TerminateJobObject (every member exits "
                                  "1); kill-on-close with the last handle"},
            [PK_CAP_SIGNAL_TREE] = {PK_SUPPORT_NONE,
                                    "Windows has no signals: the kill and the "
                                    "probe (0) only, others PK_EUNSUPPORTED"},
            [PK_CAP_ESCAPE_PROOF] =
                {PK_SUPPORT_PARTIAL,
                 "breaking away is refused and detached children stay in "
                 "the job; a process a service starts on a member's behalf "
                 "(WMI, the task scheduler, a COM server) is outside it"},
            [PK_CAP_PRIVILEGE_DROP] = {PK_SUPPORT_NONE,
                                       "POSIX only: PK_EUNSUPPORTED"},
            [PK_CAP_GRACEFUL_SHUTDOWN] =
                {PK_SUPPORT_PARTIAL,
                 "no soft signal: with escalation the tree is terminated at "
                 "once, without it the grace is waited for it to end"},
            [PK_CAP_ADOPT] =
                {PK_SUPPORT_FULL,
                 "into the group's job, by pid: what it starts "
                 "afterwards is contained"},
            [PK_CAP_SUSPEND_RESUME] =
                {PK_SUPPORT_PARTIAL,
                 "every thread of every member, one by one until none is "
                 "new (not atomic); level-triggered; a start while "
                 "suspended waits"},
            [PK_CAP_MEMBERS] = {PK_SUPPORT_FULL,
                                "the job's process list: the whole tree"},
            [PK_CAP_GROUP_STATS] =
                {PK_SUPPORT_PARTIAL,
                 "the job's CPU time and peak committed memory; no OOM "
                 "count (-1); unknown under wine (its accounting is a "
                 "stub)"},
            [PK_CAP_RUN_STATS] = {PK_SUPPORT_FULL,
                                  "each run's own job, nested in its group's: "
                                  "CPU and peak committed memory of its tree "
                                  "(unknown under wine)"},
            [PK_CAP_MEMORY_MAX] = {PK_SUPPORT_FULL,
                                   "job memory limit: committed memory of "
                                   "the tree; wine does not enforce it "
                                   "(PK_ELIMIT there)"},
            [PK_CAP_MAX_PROCESSES] = {PK_SUPPORT_PARTIAL,
                                      "active-process limit: processes, not "
                                      "threads; wine does not enforce it "
                                      "(PK_ELIMIT there)"},
            [PK_CAP_CPU_QUOTA] = {PK_SUPPORT_PARTIAL,
                                  "hard CPU rate cap over all CPUs "
                                  "(approximate); wine refuses it "
                                  "(PK_ELIMIT there)"},
            [PK_CAP_INHERIT_ENV] = {PK_SUPPORT_FULL,
                                    "allow-list of inherited variables, "
                                    "names without case"},
            [PK_CAP_SETSID] = {PK_SUPPORT_NONE, "POSIX only: PK_EUNSUPPORTED"},
            [PK_CAP_CREATE_NO_WINDOW] = {PK_SUPPORT_FULL,
                                         "CREATE_NO_WINDOW for a console "
                                         "child"},
            [PK_CAP_KILL_ON_PARENT_DEATH] =
                {PK_SUPPORT_FULL, "always: the job dies with this process "
                                  "(kill-on-close), the whole tree"},
            [PK_CAP_OWNER_DEATH_TREE_KILL] =
                {PK_SUPPORT_FULL, "kill-on-close: only the owner holds the "
                                  "job, however it ends"},
            [PK_CAP_SUBREAPER] = {PK_SUPPORT_NONE,
                                  "Linux only; not needed: breaking away "
                                  "is refused"},
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
      [PK_CAP_GRACEFUL_SHUTDOWN] = "graceful_shutdown",
      [PK_CAP_ADOPT] = "adopt",
      [PK_CAP_SUSPEND_RESUME] = "suspend_resume",
      [PK_CAP_MEMBERS] = "members",
      [PK_CAP_GROUP_STATS] = "group_stats",
      [PK_CAP_RUN_STATS] = "run_stats",
      [PK_CAP_MEMORY_MAX] = "memory_max",
      [PK_CAP_MAX_PROCESSES] = "max_processes",
      [PK_CAP_CPU_QUOTA] = "cpu_quota",
      [PK_CAP_INHERIT_ENV] = "inherit_env",
      [PK_CAP_SETSID] = "setsid",
      [PK_CAP_CREATE_NO_WINDOW] = "create_no_window",
      [PK_CAP_KILL_ON_PARENT_DEATH] = "kill_on_parent_death",
      [PK_CAP_OWNER_DEATH_TREE_KILL] = "owner_death_tree_kill",
      [PK_CAP_SUBREAPER] = "subreaper",
  };
  return (unsigned)c < PK_CAP_COUNT ? names[c] : "unknown";
}

const char *pk_support_name(pk_support s) {
  return s == PK_SUPPORT_FULL      ? "full"
         : s == PK_SUPPORT_PARTIAL ? "partial"
         : s == PK_SUPPORT_NOOP    ? "no-op"
                                   : "none";
}
