/* Windows suites: a run driven from its own loop with its stdout lines
 * collected, and checks on processes by pid. */
#ifndef PK_TEST_WIN_RUN_H
#define PK_TEST_WIN_RUN_H

#include "harness.h"

#include <uv.h>
#include <windows.h>

/* A bound on waiting for lines from a loaded host, not a pace. */
#define PKT_WAIT_MS 60000

typedef struct pkt_run {
  uv_loop_t loop;
  uv_timer_t guard;
  bool guard_fired;
  pk_proc *p;
  char lines[32][128];
  int nlines;
  bool exited;
} pkt_run;

/* pk_start cmd on rn from r's own loop (cmd may be freed afterwards). */
void pkt_run_start(pkt_run *r, pk_runner *rn, pk_cmd *cmd);
/* Run the loop until n stdout lines arrived; fails the test when the run
 * ends first or after PKT_WAIT_MS. */
void pkt_run_until_lines(pkt_run *r, int n);
/* Run the loop until the run ended (fails after PKT_WAIT_MS). */
void pkt_run_until_exit(pkt_run *r);
/* Free the run (ending it if it still runs) and close the loop. */
void pkt_run_close(pkt_run *r);

/* This program runs under wine (ntdll exports wine_get_version). */
bool pkt_under_wine(void);
/* A handle on the process whose pid follows prefix in line. */
HANDLE pkt_open_pid(const char *line, const char *prefix);
/* Every process of hs has ended, at once (pk's teardown returns only when
 * the job holds no process); closes the handles. */
void pkt_assert_all_gone(HANDLE *hs, int n);
/* The suspend count of pid's first thread (SuspendThread's previous
 * count, undone at once), or -1 when it has none. */
int pkt_suspend_count(DWORD pid);

#endif
