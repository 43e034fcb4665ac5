/* pk caps: what each containment mechanism gives, on this host or as the
 * whole matrix (docs/platform-support.md). */
#include "cli.h"

#include <string.h>

static const pk_mechanism all_mechs[] = {
    PK_MECH_CGROUP_V2, PK_MECH_PROCESS_GROUP, PK_MECH_JOB_OBJECT};
#define NMECHS (sizeof(all_mechs) / sizeof(all_mechs[0]))

/* The fine print, as prose (part of the generated page). */
static const char caveats[] =
    "\n## Caveats\n\n"
    "**Limits need the real cgroup-v2 root.** pk enables the memory, pids "
    "or cpu controller in this process's own cgroup and hands it down. The "
    "no-internal-processes rule allows that only where the cgroup holds no "
    "process, or at the root of the hierarchy. A process in an ordinary "
    "cgroup (a systemd service or session, a container's namespace root) "
    "gets `PK_ELIMIT` with the reason, and so does a hybrid layout whose "
    "controllers are bound to cgroup v1. pk never moves the calling "
    "process to make room, and never creates a group whose cap did not "
    "take. CI proves the limits in a small VM where pk runs at the real "
    "root.\n\n"
    "**cgroup_v2 escape is possible for the privileged.** A process that "
    "may write another cgroup's `cgroup.procs` (root, or the same user "
    "inside a delegated subtree) can move itself out of its leaf; it is "
    "then no longer pk's. setsid, setpgid and double forks cannot leave a "
    "cgroup.\n\n"
    "**Starting into a suspended group.** A frozen cgroup freezes a new "
    "child before exec, inside the spawner, which would block the loop's "
    "thread. pk therefore defers such a start: nothing is spawned until "
    "the group is resumed (from any thread); a timeout, cancellation, "
    "kill_all or free ends the waiting run without spawning it. The same "
    "holds on process_group, for one meaning of suspended.\n\n"
    "**Frozen trees and graceful shutdown.** A hard kill goes through a "
    "frozen tree (`cgroup.kill`, SIGKILL), but a frozen process cannot act "
    "on the soft signal, so a graceful shutdown of a suspended group waits "
    "its whole grace before escalating. Resume first.\n\n"
    "**process_group: leaders, zombies, pid reuse.** Members are the "
    "tracked leaders only. `kill(pid, 0)` on a zombie leader succeeds, so "
    "a zombie probes alive until it is reaped; pk's own probes read the "
    "process state and count a zombie as gone, and a run's handle answers "
    "`PK_ESRCH` through its pidfd once the child has exited. Signalling "
    "by pid is best-effort against pid reuse; pk signals runs through "
    "their unreaped leader's process group and adopted processes through "
    "pidfds where the kernel has them.\n\n"
    "**kill_on_parent_death is thread-scoped on process_group.** "
    "`PR_SET_PDEATHSIG` fires when the thread that started the run ends, "
    "not only the process, and covers the direct child only. The race of "
    "a parent dying before the child armed it is closed by comparing "
    "`getppid()` in the child with the pid pk captured before the spawn, "
    "which also holds when pk runs as PID 1. On cgroup_v2 a group's runs "
    "are covered as a whole tree by the guardian.\n\n"
    "**setsid and process groups.** A new session has a new process "
    "group; it is the run's own (pgid = pid), which pk tracks, so "
    "kill-on-destroy still holds. Descendants that make sessions of their "
    "own are escapees: found while the direct child lives, otherwise out "
    "of reach unless the subreaper mode is on.\n\n"
    "**The subreaper mode changes the whole process.** Every orphan of "
    "anything the process started comes to it, and a `waitpid(-1)` of the "
    "host sees them. It is an explicit opt-in "
    "(`pk_subreaper_enable`); `pk run --subreaper` uses it.\n\n"
    "**Statistics are never invented.** A figure a mechanism cannot "
    "measure is -1 (null in reports): process_group has no group CPU or "
    "memory, and peak memory of a tree needs the cgroup's memory "
    "controller.\n\n"
    "**Windows: a killed run exited 1.** Windows has no signals. pk ends a "
    "tree with `TerminateJobObject(job, 1)`, so a run pk killed reports "
    "outcome exited with code 1, the same as a voluntary `exit(1)`; "
    "`pk_result_signal` is always 0 there. Timeouts and cancellations "
    "still end as timed out and cancelled. Exit codes are 32 bits: "
    "`STATUS_CONTROL_C_EXIT` is -1073741510. The doubles answer pk's own "
    "kills the same way on Windows, so a test means the same thing with a "
    "real child and a scripted one.\n\n"
    "**Windows: no soft stop.** A timeout terminates the tree at its "
    "deadline instead of sending a soft signal and waiting the grace, and "
    "`pk_proc_kill` and `pk_group_signal` refuse every signal but the "
    "kill and the probe with `PK_EUNSUPPORTED`.\n\n"
    "**Windows: suspension is per thread.** pk suspends every thread of "
    "every member once, pass after pass until a pass finds nothing new, "
    "and resumes exactly the threads it suspended: level-triggered like "
    "the other mechanisms, but not atomic like `cgroup.freeze`. A run "
    "started while the group is suspended is created suspended and waits "
    "for the resume.\n\n"
    "**Windows under wine (CI).** wine keeps no job accounting (CPU time "
    "and peak memory are always 0, so pk reports them unknown there), "
    "accepts memory and process limits without enforcing them and refuses "
    "CPU rate control, so pk refuses every job limit under wine with "
    "`PK_ELIMIT`. Those cells are reported as not verifiable under wine; "
    "the others are checked there.";

/* The whole matrix as the Markdown page docs/platform-support.md. */
static void caps_markdown(void) {
  puts("<!-- Generated by `pk caps --markdown` from lib/src/caps.c; "
       "tests/test_caps.c fails if they drift. Do not edit. -->\n"
       "# Platform support\n\n"
       "What each containment mechanism guarantees. `pk_mechanism_best()` "
       "picks cgroup_v2 where a writable cgroup-v2 hierarchy exists, else "
       "process_group, and job_object on Windows; `pk caps` shows this "
       "host, starting with "
       "`pk_host_predict()`'s prediction, which creates nothing (no cgroup, "
       "no sweep).\n\n"
       "Levels: **full** works as the row says; **partial** works within "
       "the limits its note names; **none** is refused with "
       "`PK_EUNSUPPORTED` (never a silent no-op); **no-op** is accepted and "
       "documented to change nothing on that mechanism. macOS and the BSDs "
       "would use the process_group column (less the Linux-only cells: "
       "`PR_SET_PDEATHSIG`, the subreaper); pk has no spawner for them yet, "
       "so that column is untested there. job_object is Windows'; "
       "tests/test_win_caps.c checks its cells under wine in CI. "
       "tests/test_caps.c checks every cell of every mechanism available on "
       "the host it runs on, and prints which ran and which were "
       "unavailable and why.\n");
  printf("| capability |");
  for (size_t m = 0; m < NMECHS; m++)
    printf(" %s |", pk_mechanism_name(all_mechs[m]));
  printf("\n|---|");
  for (size_t m = 0; m < NMECHS; m++)
    printf("---|");
  putchar('\n');
  for (int c = 0; c < PK_CAP_COUNT; c++) {
    printf("| %s |", pk_capability_name((pk_capability)c));
    for (size_t m = 0; m < NMECHS; m++) {
      const char *note;
      pk_support s =
          pk_capability_support(all_mechs[m], (pk_capability)c, &note);
      printf(" **%s**: %s |", pk_support_name(s), note);
    }
    putchar('\n');
  }
  puts(caveats);
}

/* This host: which mechanisms work and what they give. */
static void caps_host(void) {
  pk_host_prediction hp;
  pk_host_predict(&hp);
  printf("predicted (nothing created): %s; cgroup_v2 %s%s%s; cgroup.kill "
         "%s\n",
         pk_mechanism_name(hp.best), hp.cgroup_v2 ? "at " : "no (",
         hp.cgroup_v2 ? hp.cgroup_base : hp.reason, hp.cgroup_v2 ? "" : ")",
         hp.cgroup_kill ? "yes" : "no");
  printf("best: %s\n", pk_mechanism_name(pk_mechanism_best()));
  for (size_t m = 0; m < NMECHS; m++) {
    bool ok = pk_mechanism_available(all_mechs[m]) == 0;
    printf("%s: %s\n", pk_mechanism_name(all_mechs[m]),
           ok ? "available" : "unavailable");
    for (int c = 0; ok && c < PK_CAP_COUNT; c++) {
      const char *note;
      pk_support s =
          pk_capability_support(all_mechs[m], (pk_capability)c, &note);
      printf("  %-22s %-8s %s\n", pk_capability_name((pk_capability)c),
             pk_support_name(s), note);
    }
  }
}

int cmd_caps(int argc, char **argv) {
  if (argc == 1 && strcmp(argv[0], "--markdown") == 0)
    caps_markdown();
  else if (argc == 0)
    caps_host();
  else
    return fail(PK_EINVAL, "pk caps takes only --markdown, got '%s'", argv[0]);
  return fflush(stdout) == 0 ? 0 : EXIT_PK_FAIL;
}
