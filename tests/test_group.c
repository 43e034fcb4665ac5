/* Shared groups (pk_group), on every mechanism this host has: runs
 * joining one group, the whole tree killed on destroy and by kill_all,
 * graceful shutdown with its report, signals, suspend/resume (including
 * a start into a suspended group, resumed from another thread), members,
 * adopt, stats, wait_any, and the option errors. Every test checks that
 * nothing is left: fds, children, cgroup directories. */
#include "harness.h"

#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <poll.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

/* ---- helpers ---------------------------------------------------------- */

/* Run body once per mechanism available here, each with a fresh group
 * of that mechanism (freed after it), checking that nothing is left. */
static void each_mechanism(void (*body)(pk_mechanism m, pk_group *g)) {
  pk_mechanism mechs[4];
  int n = pkt_mechanisms(mechs);
  for (int k = 0; k < n; k++) {
    pkt_snapshot snap;
    pkt_snapshot_take(&snap);
    pk_group *g = pkt_group(mechs[k]);
    body(mechs[k], g);
    pk_group_free(g);
    pkt_snapshot_check(&snap);
  }
}

/* The pids a run printed ("pid N" lines) and whether it said "ready". */
typedef struct seen {
  int pids[512];
  int npids;
  int ready;
} seen;

static void on_line(pk_proc *p, pk_stream s, const char *line, size_t len,
                    void *data) {
  (void)p, (void)s, (void)len;
  seen *v = data;
  int pid;
  if (sscanf(line, "pid %d", &pid) == 1 && v->npids < 512)
    v->pids[v->npids++] = pid;
  else if (strcmp(line, "ready") == 0)
    v->ready++;
}

static pk_proc *start(pk_group *g, pk_cmd *cmd, seen *v) {
  pk_start_opts so = {.on_line = on_line, .data = v};
  pk_proc *p = NULL;
  PKT_ASSERT_OK(pk_start(pk_group_runner(g), cmd, &so, &p));
  pk_cmd_free(cmd);
  return p;
}

/* Drive p's loop until cond holds (fails the test after 30 s). */
static void drive_until(pk_proc *p, const int *count, int want) {
  uint64_t end = pkt_now_ms() + 30000;
  while (*count < want) {
    size_t i;
    int rc = pk_proc_wait_any(&p, 1, 50, &i);
    if (rc == 0 && *count < want)
      fail_msg("the run ended before printing what the test waits for");
    if (pkt_now_ms() > end)
      fail_msg("timed out waiting for the run's output (%d of %d)", *count,
               want);
  }
}

/* pidfds of every pid in v (the test started them all). */
static int pidfds(const seen *v, int *fds) {
  for (int i = 0; i < v->npids; i++)
    fds[i] = pkt_pidfd(v->pids[i]);
  return v->npids;
}

/* ---- create, destroy --------------------------------------------------- */

/* Destroying the group kills every run's whole tree; the handles then
 * end killed and are freed after the group. */
static void free_kills_every_tree(void **state) {
  (void)state;
  pk_mechanism mechs[4];
  int n = pkt_mechanisms(mechs);
  for (int k = 0; k < n; k++) {
    pkt_snapshot snap;
    pkt_snapshot_take(&snap);
    pk_group *g = pkt_group(mechs[k]);
    seen a = {0}, b = {0};
    pk_proc *pa = start(g, pkt_fixture("tree", "2", "3", NULL), &a);
    pk_proc *pb = start(g, pkt_fixture("tree", "1", "2", NULL), &b);
    drive_until(pa, &a.npids, 13);
    drive_until(pb, &b.npids, 3);
    int fds[32];
    int nf = pidfds(&a, fds);
    nf += pidfds(&b, fds + nf);
    pk_group_free(g);
    assert_int_equal(pkt_wait_pidfds(fds, nf, 10000), 0);
    PKT_ASSERT_OK(pk_proc_wait(pa));
    PKT_ASSERT_OK(pk_proc_wait(pb));
    assert_int_equal(pk_result_outcome(pk_proc_result(pa)),
                     PK_OUTCOME_SIGNALLED);
    assert_int_equal(pk_result_signal(pk_proc_result(pb)), SIGKILL);
    pk_proc_free(pa);
    pk_proc_free(pb);
    pkt_snapshot_check(&snap);
  }
}

/* kill_all is idempotent and the group takes new runs afterwards; a run
 * of a group reports the group's mechanism and, on cgroup_v2, its own
 * tree's CPU time (its own leaf). */
static void kill_all_idempotent_in(pk_mechanism m, pk_group *g) {
  seen a = {0};
  pk_proc *pa = start(g, pkt_fixture("tree", "1", "3", NULL), &a);
  drive_until(pa, &a.npids, 4);
  int fds[8];
  int nf = pidfds(&a, fds);
  PKT_ASSERT_OK(pk_group_kill_all(g));
  assert_int_equal(pkt_wait_pidfds(fds, nf, 10000), 0);
  PKT_ASSERT_OK(pk_group_kill_all(g));
  PKT_ASSERT_OK(pk_proc_wait(pa));
  pk_proc_free(pa);

  pk_result *res = NULL;
  pk_cmd *c = pkt_fixture("echo", "again", NULL);
  PKT_ASSERT_OK(pk_output(pk_group_runner(g), c, &res));
  pk_cmd_free(c);
  size_t len;
  const char *out = pk_result_stdout(res, &len);
  assert_int_equal(len, 6);
  assert_memory_equal(out, "again\n", 6);
  assert_int_equal(pk_result_mechanism(res), m);
  if (m == PK_MECH_CGROUP_V2)
    assert_string_equal(pk_result_cpu_scope(res), "tree");
  pk_result_free(res);
}

static void kill_all_idempotent(void **state) {
  (void)state;
  each_mechanism(kill_all_idempotent_in);
}

/* Freeing one run's handle ends that run's tree only; the sibling runs
 * on until the group goes. */
static void release_one_run(void **state) {
  (void)state;
  pk_mechanism mechs[4];
  int n = pkt_mechanisms(mechs);
  for (int k = 0; k < n; k++) {
    pkt_snapshot snap;
    pkt_snapshot_take(&snap);
    pk_group *g = pkt_group(mechs[k]);
    seen a = {0}, b = {0};
    pk_proc *pa = start(g, pkt_fixture("tree", "1", "2", NULL), &a);
    pk_proc *pb = start(g, pkt_fixture("tree", "1", "2", NULL), &b);
    drive_until(pa, &a.npids, 3);
    drive_until(pb, &b.npids, 3);
    int fa[4], fb[4];
    int na = pidfds(&a, fa), nb = pidfds(&b, fb);
    pk_proc_free(pa);
    assert_int_equal(pkt_wait_pidfds(fa, na, 10000), 0);
    for (int i = 0; i < b.npids; i++)
      assert_true(pkt_pid_alive(b.pids[i]));
    pk_group_free(g);
    assert_int_equal(pkt_wait_pidfds(fb, nb, 10000), 0);
    pk_proc_free(pb);
    pkt_snapshot_check(&snap);
  }
}

/* ---- shutdown ---------------------------------------------------------- */

/* A tree that exits on SIGTERM: shutdown returns when it is gone, long
 * before the grace, without escalating; the run exited by its handler. */
static void shutdown_drains(void **state) {
  (void)state;
  pk_mechanism mechs[4];
  int n = pkt_mechanisms(mechs);
  for (int k = 0; k < n; k++) {
    pkt_snapshot snap;
    pkt_snapshot_take(&snap);
    pk_group_opts o;
    pk_group_opts_init(&o);
    o.mechanism = mechs[k];
    o.grace_ms = 60000;
    pk_group *g = NULL;
    PKT_ASSERT_OK(pk_group_new(&o, &g, NULL));
    seen a = {0};
    pk_proc *pa = start(g, pkt_fixture("handle-term", "600", NULL), &a);
    drive_until(pa, &a.ready, 1);
    pk_shutdown_report rep;
    PKT_ASSERT_OK(pk_group_shutdown(g, &rep));
    print_message("%s: shutdown drained=%d escalated=%d before=%zu after=%zu "
                  "elapsed=%lld ms\n",
                  pk_mechanism_name(mechs[k]), rep.drained, rep.escalated,
                  rep.members_before, rep.members_after,
                  (long long)rep.elapsed_ms);
    assert_true(rep.drained);
    assert_false(rep.escalated);
    assert_int_equal(rep.signal, SIGTERM);
    assert_int_equal(rep.signal_error, 0);
    assert_int_equal(rep.members_before, 1);
    assert_true(rep.elapsed_ms < 30000); /* not the 60 s grace */
    PKT_ASSERT_OK(pk_proc_wait(pa));
    assert_int_equal(pk_result_outcome(pk_proc_result(pa)), PK_OUTCOME_EXITED);
    assert_int_equal(pk_result_code(pk_proc_result(pa)), 42);
    pk_proc_free(pa);
    pk_group_free(g);
    pkt_snapshot_check(&snap);
  }
}

/* A tree that ignores SIGTERM: the full grace, then SIGKILL; without
 * escalation the survivor is spared (and killed with the group). */
static void shutdown_escalates_in(pk_mechanism m, pk_group *g) {
  (void)m;
  seen a = {0};
  pk_proc *pa = start(g, pkt_fixture("ignore-term", "600", NULL), &a);
  drive_until(pa, &a.ready, 1);
  int pid = pk_proc_pid(pa);

  pk_shutdown_report rep;
  PKT_ASSERT_OK(pk_group_stop(g, 300, false, &rep));
  assert_false(rep.drained);
  assert_false(rep.escalated);
  assert_true(rep.elapsed_ms >= 300);
  assert_int_equal(rep.members_after, 1);
  assert_true(pkt_pid_alive(pid));

  PKT_ASSERT_OK(pk_group_stop(g, 300, true, &rep));
  assert_false(rep.drained);
  assert_true(rep.escalated);
  assert_true(rep.elapsed_ms >= 300);
  assert_int_equal(rep.members_before, 1);
  assert_int_equal(rep.members_after, 0);
  PKT_ASSERT_OK(pk_proc_wait(pa));
  assert_int_equal(pk_result_signal(pk_proc_result(pa)), SIGKILL);
  pk_proc_free(pa);

  /* stop(0, true): kill at once, no soft signal */
  seen b = {0};
  pk_proc *pb = start(g, pkt_fixture("ignore-term", "600", NULL), &b);
  drive_until(pb, &b.ready, 1);
  PKT_ASSERT_OK(pk_group_stop(g, 0, true, &rep));
  assert_int_equal(rep.signal, 0);
  assert_true(rep.escalated);
  assert_int_equal(rep.members_before, 1);
  assert_int_equal(rep.members_after, 0);
  PKT_ASSERT_OK(pk_proc_wait(pb));
  pk_proc_free(pb);

  /* an empty group: nothing to do */
  PKT_ASSERT_OK(pk_group_shutdown(g, &rep));
  assert_true(rep.drained);
  assert_int_equal(rep.members_before, 0);
  assert_int_equal(pk_group_stop(g, -1, true, &rep), PK_EINVAL);
}

static void shutdown_escalates(void **state) {
  (void)state;
  each_mechanism(shutdown_escalates_in);
}

/* ---- signals ----------------------------------------------------------- */

static void signal_every_member_in(pk_mechanism m, pk_group *g) {
  (void)m;
  assert_int_equal(pk_group_signal(g, SIGTERM), 0); /* empty: fine */
  assert_int_equal(pk_group_signal(g, -1), PK_EINVAL);
  assert_int_equal(pk_group_signal(g, 1000), PK_EINVAL);
  seen a = {0}, b = {0};
  pk_proc *pa = start(g, pkt_fixture("handle-term", "600", NULL), &a);
  pk_proc *pb = start(g, pkt_fixture("handle-term", "600", NULL), &b);
  drive_until(pa, &a.ready, 1);
  drive_until(pb, &b.ready, 1);
  PKT_ASSERT_OK(pk_group_signal(g, 0));
  PKT_ASSERT_OK(pk_group_signal(g, SIGTERM));
  PKT_ASSERT_OK(pk_proc_wait(pa));
  PKT_ASSERT_OK(pk_proc_wait(pb));
  assert_int_equal(pk_result_code(pk_proc_result(pa)), 42);
  assert_int_equal(pk_result_code(pk_proc_result(pb)), 42);
  pk_proc_free(pa);
  pk_proc_free(pb);
}

static void signal_every_member(void **state) {
  (void)state;
  each_mechanism(signal_every_member_in);
}

/* ---- suspend / resume -------------------------------------------------- */

/* A frozen tree burns no CPU; resumed, it finishes. A hard kill goes
 * through a frozen tree; a graceful stop of one waits the whole grace. */
static void suspend_resume_in(pk_mechanism m, pk_group *g) {
  pk_cmd *c = pkt_fixture("burn", "1500", NULL);
  pk_proc *p = NULL;
  PKT_ASSERT_OK(pk_start(pk_group_runner(g), c, NULL, &p));
  pk_cmd_free(c);
  int pid = pk_proc_pid(p);
  assert_true(pid > 0);
  PKT_ASSERT_OK(pk_group_suspend(g));
  PKT_ASSERT_OK(pk_group_suspend(g)); /* level-triggered */
  assert_true(pk_group_suspended(g));
  if (m == PK_MECH_PROCESS_GROUP) {
    /* SIGSTOP takes effect asynchronously: wait for the state */
    assert_int_equal(pkt_wait_state(pid, 'T', 10000), 'T');
  }
  int64_t t0 = pkt_cpu_ticks(pid);
  poll(NULL, 0, 300);
  assert_int_equal(pkt_cpu_ticks(pid), t0);
  PKT_ASSERT_OK(pk_group_resume(g));
  assert_false(pk_group_suspended(g));
  PKT_ASSERT_OK(pk_proc_wait(p));
  assert_int_equal(pk_result_code(pk_proc_result(p)), 0);
  pk_proc_free(p);

  /* frozen + graceful stop: the whole grace, then the kill goes in */
  seen a = {0};
  pk_proc *pa = start(g, pkt_fixture("handle-term", "600", NULL), &a);
  drive_until(pa, &a.ready, 1);
  PKT_ASSERT_OK(pk_group_suspend(g));
  pk_shutdown_report rep;
  PKT_ASSERT_OK(pk_group_stop(g, 300, true, &rep));
  assert_true(rep.elapsed_ms >= 300);
  assert_false(rep.drained);
  assert_true(rep.escalated);
  assert_int_equal(rep.members_after, 0);
  PKT_ASSERT_OK(pk_proc_wait(pa));
  assert_int_equal(pk_result_signal(pk_proc_result(pa)), SIGKILL);
  pk_proc_free(pa);
  PKT_ASSERT_OK(pk_group_resume(g));
}

static void suspend_resume(void **state) {
  (void)state;
  each_mechanism(suspend_resume_in);
}

static void *resume_thread(void *arg) {
  return (void *)(intptr_t)pk_group_resume(arg);
}

/* A start into a suspended group does not spawn until the group is
 * resumed (here from another thread); a timeout or kill_all meanwhile
 * ends it without ever spawning. */
static void start_while_suspended_in(pk_mechanism m, pk_group *g) {
  (void)m;
  PKT_ASSERT_OK(pk_group_suspend(g));
  pk_cmd *c = pkt_fixture("echo", "late", NULL);
  pk_proc *p = NULL;
  PKT_ASSERT_OK(pk_start(pk_group_runner(g), c, NULL, &p));
  pk_cmd_free(c);
  size_t idx;
  assert_int_equal(pk_proc_wait_any(&p, 1, 200, &idx), PK_ETIMEOUT);
  assert_int_equal(pk_proc_pid(p), 0); /* never spawned */
  int *pids;
  size_t np;
  PKT_ASSERT_OK(pk_group_members(g, &pids, &np));
  assert_int_equal(np, 0);
  pk_free(pids);
  pthread_t t;
  assert_int_equal(pthread_create(&t, NULL, resume_thread, g), 0);
  void *trc;
  pthread_join(t, &trc);
  assert_int_equal((int)(intptr_t)trc, 0);
  PKT_ASSERT_OK(pk_proc_wait(p));
  size_t len;
  const char *out = pk_result_stdout(pk_proc_result(p), &len);
  assert_int_equal(len, 5);
  assert_memory_equal(out, "late\n", 5);
  assert_true(pk_result_pid(pk_proc_result(p)) > 0);
  pk_proc_free(p);

  /* a timeout while waiting: timed out, never spawned */
  PKT_ASSERT_OK(pk_group_suspend(g));
  c = pkt_fixture("echo", "never", NULL);
  PKT_ASSERT_OK(pk_cmd_set_timeout(c, 200, 0, SIGTERM));
  pk_result *res = NULL;
  assert_int_equal(pk_output(pk_group_runner(g), c, &res), PK_ETIMEOUT);
  assert_int_equal(pk_result_outcome(res), PK_OUTCOME_TIMED_OUT);
  assert_int_equal(pk_result_pid(res), 0);
  pk_result_free(res);

  /* kill_all while waiting: the run ends killed */
  PKT_ASSERT_OK(pk_start(pk_group_runner(g), c, NULL, &p));
  pk_cmd_free(c);
  PKT_ASSERT_OK(pk_group_kill_all(g));
  PKT_ASSERT_OK(pk_proc_wait(p));
  assert_int_equal(pk_result_signal(pk_proc_result(p)), SIGKILL);
  assert_int_equal(pk_result_pid(pk_proc_result(p)), 0);
  pk_proc_free(p);

  /* freed while waiting: nothing spawned, nothing left */
  c = pkt_fixture("echo", "freed", NULL);
  PKT_ASSERT_OK(pk_start(pk_group_runner(g), c, NULL, &p));
  pk_cmd_free(c);
  pk_proc_free(p);
  PKT_ASSERT_OK(pk_group_resume(g));
}

static void start_while_suspended(void **state) {
  (void)state;
  each_mechanism(start_while_suspended_in);
}

/* ---- members, adopt ---------------------------------------------------- */

static bool has_pid(const int *pids, size_t n, int pid) {
  for (size_t i = 0; i < n; i++)
    if (pids[i] == pid)
      return true;
  return false;
}

static void members_listed_in(pk_mechanism m, pk_group *g) {
  seen a = {0};
  pk_proc *pa = start(g, pkt_fixture("tree", "1", "2", NULL), &a);
  drive_until(pa, &a.npids, 3);
  int *pids;
  size_t np;
  PKT_ASSERT_OK(pk_group_members(g, &pids, &np));
  if (m == PK_MECH_CGROUP_V2) { /* the whole tree */
    assert_int_equal(np, 3);
    for (int i = 0; i < 3; i++)
      assert_true(has_pid(pids, np, a.pids[i]));
  } else { /* the leader */
    assert_int_equal(np, 1);
    assert_int_equal(pids[0], pk_proc_pid(pa));
  }
  pk_free(pids);
  pk_group_stats st;
  PKT_ASSERT_OK(pk_group_stats_get(g, &st));
  assert_int_equal(st.active, m == PK_MECH_CGROUP_V2 ? 3 : 1);
  pk_proc_free(pa);
  PKT_ASSERT_OK(pk_group_members(g, &pids, &np));
  assert_int_equal(np, 0);
  pk_free(pids);
  assert_int_equal(pk_group_members(g, NULL, &np), PK_EINVAL);
}

static void members_listed(void **state) {
  (void)state;
  each_mechanism(members_listed_in);
}

/* A child this test forked (not started by pk), adopted by pid or by
 * pidfd, is killed with the group; a reaped one cannot be adopted; an
 * exited, unreaped one is a no-op. */
static pid_t fork_sleeper(void) {
  pid_t pid = fork();
  assert_true(pid >= 0);
  if (pid == 0) {
    execl(PK_FIXTURE, PK_FIXTURE, "sleep", "600", (char *)NULL);
    _exit(127);
  }
  return pid;
}

static void adopt_external_in(pk_mechanism m, pk_group *g) {
  (void)m;
  pid_t a = fork_sleeper(), b = fork_sleeper();
  int fa = pkt_pidfd(a), fb = pkt_pidfd(b);
  PKT_ASSERT_OK(pk_group_adopt(g, a, -1));
  PKT_ASSERT_OK(pk_group_adopt(g, 0, fb));
  int *pids;
  size_t np;
  PKT_ASSERT_OK(pk_group_members(g, &pids, &np));
  assert_int_equal(np, 2);
  assert_true(has_pid(pids, np, a) && has_pid(pids, np, b));
  pk_free(pids);
  PKT_ASSERT_OK(pk_group_kill_all(g));
  int st;
  assert_int_equal(waitpid(a, &st, 0), a);
  assert_true(WIFSIGNALED(st) && WTERMSIG(st) == SIGKILL);
  assert_int_equal(waitpid(b, &st, 0), b);
  assert_true(WIFSIGNALED(st) && WTERMSIG(st) == SIGKILL);
  /* reaped: no such process, by pid or pidfd */
  assert_int_equal(pk_group_adopt(g, 0, fb), PK_ESRCH);
  close(fa);
  close(fb);
  /* exited but not reaped: a no-op */
  pid_t z = fork();
  if (z == 0)
    _exit(0);
  int fz = pkt_pidfd(z);
  struct pollfd pf = {.fd = fz, .events = POLLIN};
  assert_int_equal(poll(&pf, 1, 10000), 1);
  PKT_ASSERT_OK(pk_group_adopt(g, z, -1));
  assert_int_equal(waitpid(z, &st, 0), z);
  close(fz);
  assert_int_equal(pk_group_adopt(g, z, -1), PK_ESRCH);
  assert_int_equal(pk_group_adopt(g, 0, -1), PK_EINVAL);
}

static void adopt_external(void **state) {
  (void)state;
  each_mechanism(adopt_external_in);
}

/* ---- stats, wait_any ---------------------------------------------------- */

static void stats_scope_in(pk_mechanism m, pk_group *g) {
  pk_result *res = NULL;
  pk_cmd *c = pkt_fixture("burn", "200", NULL);
  PKT_ASSERT_OK(pk_output(pk_group_runner(g), c, &res));
  pk_cmd_free(c);
  pk_group_stats st;
  PKT_ASSERT_OK(pk_group_stats_get(g, &st));
  print_message("%s: group stats active=%lld cpu=%lld us peak=%lld "
                "oom=%lld; run cpu=%lld us (%s)\n",
                pk_mechanism_name(m), (long long)st.active,
                (long long)st.cpu_us, (long long)st.peak_memory,
                (long long)st.oom_kills, (long long)pk_result_cpu_us(res),
                pk_result_cpu_scope(res));
  assert_int_equal(st.active, 0);
  if (m == PK_MECH_CGROUP_V2) {
    /* the run's leaf is gone; the group's own count kept its CPU */
    assert_true(st.cpu_us >= 150000);
    assert_true(pk_result_cpu_us(res) >= 150000);
    assert_true(st.cpu_us >= pk_result_cpu_us(res));
  } else {
    assert_int_equal(st.cpu_us, -1);
    assert_int_equal(st.peak_memory, -1);
    assert_int_equal(st.oom_kills, -1);
    assert_string_equal(pk_result_cpu_scope(res), "child");
  }
  /* memory.peak / memory.events exist only with the memory controller */
  assert_true(st.peak_memory == -1 || st.peak_memory > 0);
  pk_result_free(res);
  assert_int_equal(pk_group_stats_get(g, NULL), PK_EINVAL);
}

static void stats_scope(void **state) {
  (void)state;
  each_mechanism(stats_scope_in);
}

static void wait_any_first_in(pk_mechanism m, pk_group *g) {
  (void)m;
  pk_proc *p[2];
  pk_cmd *c0 = pkt_fixture("sleep", "600", NULL);
  pk_cmd *c1 = pkt_fixture("exit", "3", NULL);
  PKT_ASSERT_OK(pk_start(pk_group_runner(g), c0, NULL, &p[0]));
  PKT_ASSERT_OK(pk_start(pk_group_runner(g), c1, NULL, &p[1]));
  pk_cmd_free(c0);
  pk_cmd_free(c1);
  size_t i = 99;
  PKT_ASSERT_OK(pk_proc_wait_any(p, 2, -1, &i));
  assert_int_equal(i, 1);
  assert_int_equal(pk_result_code(pk_proc_result(p[1])), 3);
  assert_false(pk_proc_done(p[0]));
  /* the loser is still usable */
  PKT_ASSERT_OK(pk_proc_kill(p[0], SIGKILL));
  assert_int_equal(pk_proc_wait(p[0]), PK_ECANCELED);
  assert_int_equal(pk_result_outcome(pk_proc_result(p[0])),
                   PK_OUTCOME_CANCELLED);
  assert_int_equal(pk_proc_wait_any(p, 0, 0, &i), PK_EINVAL);
  pk_proc_free(p[0]);
  pk_proc_free(p[1]);
}

static void wait_any_first(void **state) {
  (void)state;
  each_mechanism(wait_any_first_in);
}

/* ---- setsid, options ---------------------------------------------------- */

/* A run that starts a new session stays in the group: destroying the
 * group kills it and what it forked. */
static void setsid_stays_contained(void **state) {
  (void)state;
  pk_mechanism mechs[4];
  int n = pkt_mechanisms(mechs);
  for (int k = 0; k < n; k++) {
    pkt_snapshot snap;
    pkt_snapshot_take(&snap);
    pk_group *g = pkt_group(mechs[k]);
    pk_cmd *c = pkt_fixture("tree", "1", "2", NULL);
    PKT_ASSERT_OK(pk_cmd_set_setsid(c, true));
    seen a = {0};
    pk_proc *pa = start(g, c, &a);
    drive_until(pa, &a.npids, 3);
    int fds[4];
    int nf = pidfds(&a, fds);
    pk_group_free(g);
    assert_int_equal(pkt_wait_pidfds(fds, nf, 10000), 0);
    pk_proc_free(pa);
    pkt_snapshot_check(&snap);
  }
}

static void expect_new_error(const pk_group_opts *o, int want,
                             const char *in_msg) {
  pk_group *g = (pk_group *)1;
  char *msg = NULL;
  int rc = pk_group_new(o, &g, &msg);
  print_message("  -> %s: %s\n", pk_err_name(rc), msg ? msg : "(none)");
  assert_int_equal(rc, want);
  assert_null(g);
  assert_non_null(msg);
  if (strstr(msg, in_msg) == NULL)
    fail_msg("message \"%s\" does not name \"%s\"", msg, in_msg);
  pk_free(msg);
}

static void option_errors(void **state) {
  (void)state;
  pkt_snapshot snap;
  pkt_snapshot_take(&snap);
  pk_group_opts o;
  pk_group_opts_init(&o);
  o.memory_max = -1;
  expect_new_error(&o, PK_EINVAL, "memory_max");
  o.memory_max = 100;
  expect_new_error(&o, PK_EINVAL, "memory_max");
  pk_group_opts_init(&o);
  o.max_processes = -5;
  expect_new_error(&o, PK_EINVAL, "max_processes");
  pk_group_opts_init(&o);
  o.cpu_quota = NAN;
  expect_new_error(&o, PK_EINVAL, "cpu_quota");
  o.cpu_quota = 0.001;
  expect_new_error(&o, PK_EINVAL, "cpu_quota");
  o.cpu_quota = -1;
  expect_new_error(&o, PK_EINVAL, "cpu_quota");
  pk_group_opts_init(&o);
  o.grace_ms = -1;
  expect_new_error(&o, PK_EINVAL, "grace_ms");
  pk_group_opts_init(&o);
  o.shutdown_signal = 0;
  expect_new_error(&o, PK_EINVAL, "shutdown_signal");
  /* process groups have no limits at all */
  pk_group_opts_init(&o);
  o.mechanism = PK_MECH_PROCESS_GROUP;
  o.max_processes = 10;
  expect_new_error(&o, PK_EUNSUPPORTED, "max_processes");
  o.max_processes = 0;
  o.cpu_quota = 0.5;
  expect_new_error(&o, PK_EUNSUPPORTED, "cpu_quota");
  o.mechanism = PK_MECH_JOB_OBJECT;
  o.cpu_quota = 0;
  expect_new_error(&o, PK_EUNSUPPORTED, "job_object");
  assert_int_equal(pk_group_new(NULL, NULL, NULL), PK_EINVAL);
  assert_null(pk_group_runner(NULL));
  pk_group_free(NULL);
  pkt_snapshot_check(&snap);
}

/* The prediction agrees with what a group gets. */
static void prediction_agrees(void **state) {
  (void)state;
  pkt_snapshot snap;
  pkt_snapshot_take(&snap);
  pk_host_prediction pr;
  PKT_ASSERT_OK(pk_host_predict(&pr));
  pk_group *g = NULL;
  PKT_ASSERT_OK(pk_group_new(NULL, &g, NULL));
  assert_int_equal(pk_group_mechanism(g), pr.best);
  assert_null(pk_group_parent_death_scope(g));
  pk_group_free(g);
  pkt_snapshot_check(&snap);
}

/* The process_group caveat, and R8: a run's leader that exited but is
 * not reaped yet (its loop not driven) still probes alive on a process
 * group (kill(0) on the zombie's group succeeds) and is still a member;
 * once reaped, signalling the run is PK_ESRCH (through its pidfd: no
 * new process with a reused pid can be reached) and it is gone. */
static void zombie_probes_until_reaped(void **state) {
  (void)state;
  pkt_snapshot snap;
  pkt_snapshot_take(&snap);
  pk_group *g = pkt_group(PK_MECH_PROCESS_GROUP);
  pk_cmd *c = pkt_fixture("exit", "0", NULL);
  pk_proc *p = NULL;
  PKT_ASSERT_OK(pk_start(pk_group_runner(g), c, NULL, &p));
  pk_cmd_free(c);
  int pid = pk_proc_pid(p);
  assert_int_equal(pkt_wait_state(pid, 'Z', 10000), 'Z');
  assert_int_equal(killpg(pid, 0), 0); /* the caveat itself */
  PKT_ASSERT_OK(pk_group_signal(g, 0));
  int *pids;
  size_t n;
  PKT_ASSERT_OK(pk_group_members(g, &pids, &n));
  assert_int_equal(n, 1);
  assert_int_equal(pids[0], pid);
  pk_free(pids);
  pk_group_stats st; /* but nothing runs: it is not active */
  PKT_ASSERT_OK(pk_group_stats_get(g, &st));
  assert_int_equal(st.active, 0);
  PKT_ASSERT_OK(pk_proc_wait(p)); /* reaps */
  assert_int_equal(pk_proc_kill(p, SIGTERM), PK_ESRCH);
  assert_int_equal(pk_proc_kill(p, 0), PK_ESRCH);
  PKT_ASSERT_OK(pk_group_members(g, &pids, &n));
  assert_int_equal(n, 0);
  pk_free(pids);
  pk_proc_free(p);
  pk_group_free(g);
  pkt_snapshot_check(&snap);
}

/* Stress: 1,000 processes in one group (10 runs of a root and 99
 * children), killed at once by kill_all; nothing is left (every pid
 * gone, cgroup empty), on both mechanisms. */
typedef struct many {
  int pids[1100];
  int n;
} many;

static void many_line(pk_proc *p, pk_stream s, const char *line, size_t len,
                      void *data) {
  (void)p, (void)s, (void)len;
  many *m = data;
  int pid;
  if (sscanf(line, "pid %d", &pid) == 1 && m->n < 1100)
    m->pids[m->n++] = pid;
}

static void thousand_in_one_group(void **state) {
  (void)state;
  pk_mechanism mechs[4];
  int nm = pkt_mechanisms(mechs);
  for (int k = 0; k < nm; k++) {
    pkt_snapshot snap;
    pkt_snapshot_take(&snap);
    pk_group *g = pkt_group(mechs[k]);
    static many m;
    m.n = 0;
    pk_proc *p[10];
    pk_start_opts so = {.on_line = many_line, .data = &m};
    for (int i = 0; i < 10; i++) {
      pk_cmd *c = pkt_fixture("tree", "1", "99", NULL);
      PKT_ASSERT_OK(pk_start(pk_group_runner(g), c, &so, &p[i]));
      pk_cmd_free(c);
    }
    uint64_t end = pkt_now_ms() + 120000;
    size_t idx;
    while (m.n < 1000 && pkt_now_ms() < end)
      if (pk_proc_wait_any(p, 10, 50, &idx) == 0)
        fail_msg("run %zu ended before the group was killed", idx);
    assert_int_equal(m.n, 1000);
    int *pids;
    size_t n;
    PKT_ASSERT_OK(pk_group_members(g, &pids, &n));
    pk_free(pids);
    assert_int_equal(n, mechs[k] == PK_MECH_CGROUP_V2 ? 1000 : 10);
    uint64_t t0 = pkt_now_ms();
    PKT_ASSERT_OK(pk_group_kill_all(g));
    uint64_t ms = pkt_now_ms() - t0;
    int alive = 0;
    for (int i = 0; i < m.n; i++)
      alive += pkt_pid_alive(m.pids[i]);
    print_message("%s: 1000 processes in one group killed in %llu ms, %d "
                  "left running\n",
                  pk_mechanism_name(mechs[k]), (unsigned long long)ms, alive);
    assert_int_equal(alive, 0);
    for (int i = 0; i < 10; i++) {
      PKT_ASSERT_OK(pk_proc_wait(p[i]));
      assert_int_equal(pk_result_signal(pk_proc_result(p[i])), SIGKILL);
      pk_proc_free(p[i]);
    }
    pk_group_free(g);
    pkt_snapshot_check(&snap);
  }
}

/* Without cgroup.kill (the freeze + SIGKILL fallback) kill_all leaves
 * the group usable: not frozen, so the next start runs (a start into a
 * frozen leaf would hang in the spawner). */
static void kill_all_fallback_thaws(void **state) {
  (void)state;
  if (pk_mechanism_available(PK_MECH_CGROUP_V2) != 0) {
    print_message("cgroup_v2 unavailable here: nothing to check\n");
    return;
  }
  pkt_snapshot snap;
  pkt_snapshot_take(&snap);
  pk_group_opts o;
  pk_group_opts_init(&o);
  o.mechanism = PK_MECH_CGROUP_V2;
  o.disable = PK_NO_CGROUP_KILL;
  pk_group *g = NULL;
  PKT_ASSERT_OK(pk_group_new(&o, &g, NULL));
  pk_cmd *c = pkt_fixture("sleep", "600", NULL);
  pk_proc *p = NULL;
  PKT_ASSERT_OK(pk_start(pk_group_runner(g), c, NULL, &p));
  pk_cmd_free(c);
  PKT_ASSERT_OK(pk_group_kill_all(g));
  PKT_ASSERT_OK(pk_proc_wait(p));
  pk_proc_free(p);
  pk_result *res = NULL;
  c = pkt_fixture("echo", "thawed", NULL);
  PKT_ASSERT_OK(pk_cmd_set_timeout(c, 60000, 0, SIGKILL));
  PKT_ASSERT_OK(pk_output(pk_group_runner(g), c, &res));
  assert_int_equal(pk_result_outcome(res), PK_OUTCOME_EXITED);
  assert_string_equal(pk_result_stdout(res, NULL), "thawed\n");
  pk_result_free(res);
  pk_cmd_free(c);
  pk_group_free(g);
  pkt_snapshot_check(&snap);
}

/* A suspend from another thread while starts are under way: once it
 * returns, every run that was spawned is frozen (stopped), and every
 * later one waits for the resume; nothing runs in a suspended group. */
typedef struct racer {
  pk_group *g;
  pk_proc *p[30];
  atomic_int n;
} racer;

static void *start_many(void *arg) {
  racer *r = arg;
  for (int i = 0; i < 30; i++) {
    pk_cmd *c = pkt_fixture("burn", "60000", NULL);
    int rc = pk_start(pk_group_runner(r->g), c, NULL, &r->p[i]);
    pk_cmd_free(c);
    if (rc != 0)
      break;
    atomic_store(&r->n, i + 1);
  }
  return NULL;
}

static void suspend_races_starts_in(pk_mechanism m, pk_group *g) {
  racer r = {.g = g};
  atomic_init(&r.n, 0);
  pthread_t t;
  assert_int_equal(pthread_create(&t, NULL, start_many, &r), 0);
  /* suspend in the middle of the starts (after a few are spawned) */
  while (atomic_load(&r.n) < 5)
    sched_yield();
  PKT_ASSERT_OK(pk_group_suspend(g));
  pthread_join(t, NULL);
  assert_int_equal(atomic_load(&r.n), 30);
  int spawned = 0;
  for (int i = 0; i < 30; i++) {
    int pid = pk_proc_pid(r.p[i]);
    if (pid <= 0)
      continue; /* deferred: waits for the resume */
    spawned++;
    if (m == PK_MECH_PROCESS_GROUP)
      pkt_wait_state(pid, 'T', 10000);
    int64_t t0 = pkt_cpu_ticks(pid);
    poll(NULL, 0, 30);
    if (pkt_cpu_ticks(pid) != t0)
      fail_msg("run %d (pid %d) burns CPU in a suspended group", i, pid);
  }
  print_message("%s: %d of 30 runs spawned before the suspend, the rest "
                "deferred\n",
                pk_mechanism_name(m), spawned);
  PKT_ASSERT_OK(pk_group_resume(g));
  PKT_ASSERT_OK(pk_group_kill_all(g));
  assert_true(spawned >= 5);
  for (int i = 0; i < 30; i++) {
    PKT_ASSERT_OK(pk_proc_wait(r.p[i]));
    pk_proc_free(r.p[i]);
  }
}

static void suspend_races_starts(void **state) {
  (void)state;
  each_mechanism(suspend_races_starts_in);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(option_errors),
      cmocka_unit_test(prediction_agrees),
      cmocka_unit_test(free_kills_every_tree),
      cmocka_unit_test(kill_all_idempotent),
      cmocka_unit_test(release_one_run),
      cmocka_unit_test(shutdown_drains),
      cmocka_unit_test(shutdown_escalates),
      cmocka_unit_test(signal_every_member),
      cmocka_unit_test(suspend_resume),
      cmocka_unit_test(start_while_suspended),
      cmocka_unit_test(members_listed),
      cmocka_unit_test(adopt_external),
      cmocka_unit_test(stats_scope),
      cmocka_unit_test(wait_any_first),
      cmocka_unit_test(setsid_stays_contained),
      cmocka_unit_test(zombie_probes_until_reaped),
      cmocka_unit_test(thousand_in_one_group),
      cmocka_unit_test(kill_all_fallback_thaws),
      cmocka_unit_test(suspend_races_starts),
  };
  return cmocka_run_group_tests(tests, pkt_setup, NULL);
}
