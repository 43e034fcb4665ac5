/* Whole-tree teardown (RELIABILITY R6) and a grandchild holding stdout
 * open (R7), on every mechanism this host has.
 *
 * Every node of a fixture tree prints "pid N"; the test learns each pid
 * (with its start time, so a recycled pid is never mistaken for a
 * survivor), tears the tree down through pk, and checks that every node
 * is gone. This process is a child subreaper (pkt_setup), so orphaned
 * nodes become our children and are reaped here by pid.
 *
 * PK_TREE_RUNS (default 100, as RELIABILITY R6 asks) sets how many kill runs
 * per mechanism the R6 figure is taken over (the spec is 100/100 for
 * cgroup_v2). */
#include "harness.h"

#include <dirent.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#define TREE_DEPTH "5"
#define TREE_WIDTH "3"
#define TREE_NODES 364 /* 1 + 3 + 9 + 27 + 81 + 243 */
#define MAX_NODES 1024
/* The hard bound on "kill -> every node gone". The spec is 250 ms for
 * cgroup; the figures printed against it are the measurement. A bound
 * near the figures fails on a loaded host (1.4 s seen for 364 nodes with
 * the process_group mechanism on 2 busy cores), so this one only catches
 * a teardown that is broken, not slow. */
#define GONE_BOUND_MS 4000
#define SPEC_MS 250
#define DRAIN_MS 200 /* pk's default drain */
/* A drain no scheduling delay comes near: a run that must end complete
 * does not race it, and ending before half of it shows the run ended on
 * EOF, not on the drain. */
#define LONG_DRAIN_MS 20000
#define WATCHDOG_MS 30000
#define DESTROY_RUNS 5

static pk_mechanism mechs[4];
static int nmechs;

static int setup(void **state) {
  int rc = pkt_setup(state);
  nmechs = pkt_mechanisms(mechs);
  for (int i = 0; i < nmechs; i++)
    print_message("mechanism available: %s\n", pk_mechanism_name(mechs[i]));
  return rc;
}

/* ------------------------------------------------------------ helpers */

/* State and start time (clock ticks since boot) of pid. */
static bool read_stat(pid_t pid, char *state, unsigned long long *start,
                      pid_t *ppid) {
  char path[64], buf[1024];
  snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
  FILE *f = fopen(path, "re");
  if (f == NULL)
    return false;
  size_t n = fread(buf, 1, sizeof(buf) - 1, f);
  fclose(f);
  buf[n] = '\0';
  const char *rp = strrchr(buf, ')');
  int pp = 0;
  if (rp == NULL ||
      sscanf(rp + 2,
             "%c %d %*d %*d %*d %*d %*u %*u %*u %*u %*u %*u %*u %*d %*d %*d "
             "%*d %*d %*d %llu",
             state, &pp, start) != 3)
    return false;
  if (ppid != NULL)
    *ppid = (pid_t)pp;
  return true;
}

typedef struct node {
  pid_t pid;
  unsigned long long start;
} node;

/* Alive: the same process (same start time), not a zombie. */
static bool node_alive(const node *nd) {
  char st;
  unsigned long long start;
  if (!read_stat(nd->pid, &st, &start, NULL))
    return false;
  return start == nd->start && st != 'Z' && st != 'X';
}

static void node_record(node *nd, pid_t pid) {
  char st;
  nd->pid = pid;
  if (!read_stat(pid, &st, &nd->start, NULL) || st == 'Z' || st == 'X')
    fail_msg("node %d is gone before the teardown", (int)pid);
}

/* Reap what is ours among the nodes and wait until none is alive, up to
 * limit_ms after t_from. Returns the ms from t_from to all-gone, or -1
 * (with *survivors set) if some outlived the limit. Call only once pk is
 * done with the run (it reaps its own direct child). */
static int64_t wait_gone(const node *nodes, int n, uint64_t t_from,
                         int64_t limit_ms, int *survivors) {
  int first = 0;
  for (;;) {
    while (first < n) {
      waitpid(nodes[first].pid, NULL, WNOHANG); /* ECHILD if not ours */
      if (node_alive(&nodes[first]))
        break;
      first++;
    }
    uint64_t now = pkt_now_ms();
    if (first == n)
      return (int64_t)(now - t_from);
    if ((int64_t)(now - t_from) > limit_ms) {
      int alive = 0;
      for (int i = first; i < n; i++)
        alive += node_alive(&nodes[i]);
      *survivors = alive;
      return -1;
    }
    usleep(500);
  }
}

static int count_alive(const node *nodes, int n) {
  int alive = 0;
  for (int i = 0; i < n; i++)
    alive += node_alive(&nodes[i]);
  return alive;
}

/* Pids listed in the children files of every task of `pid` ("self" for
 * this process). */
static int children_of(const char *pid, pid_t *out, int max) {
  char dir[64];
  snprintf(dir, sizeof(dir), "/proc/%s/task", pid);
  DIR *d = opendir(dir);
  if (d == NULL)
    return 0;
  int n = 0;
  struct dirent *e;
  while ((e = readdir(d)) != NULL) {
    if (e->d_name[0] == '.')
      continue;
    char path[400];
    snprintf(path, sizeof(path), "%s/%.64s/children", dir, e->d_name);
    FILE *f = fopen(path, "re");
    if (f == NULL)
      continue;
    long v;
    while (fscanf(f, "%ld", &v) == 1)
      if (n < max)
        out[n++] = (pid_t)v;
    fclose(f);
  }
  closedir(d);
  return n;
}

static bool contains(const pid_t *pids, int n, pid_t pid) {
  for (int i = 0; i < n; i++)
    if (pids[i] == pid)
      return true;
  return false;
}

static int runs_from_env(const char *name, int dflt) {
  const char *s = getenv(name);
  int v = s != NULL ? atoi(s) : 0;
  return v > 0 ? v : dflt;
}

static int cmp_i64(const void *a, const void *b) {
  int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
  return (x > y) - (x < y);
}

static void print_figures(const char *what, pk_mechanism m, int64_t *ms,
                          int n) {
  qsort(ms, (size_t)n, sizeof(*ms), cmp_i64);
  int within = 0;
  for (int i = 0; i < n; i++)
    within += ms[i] < SPEC_MS;
  print_message("%s: %s, %d runs of %d nodes: min %lld / median %lld / max "
                "%lld ms; %d/%d under %d ms\n",
                pk_mechanism_name(m), what, n, TREE_NODES, (long long)ms[0],
                (long long)ms[n / 2], (long long)ms[n - 1], within, n, SPEC_MS);
}

/* --------------------------------------------- a tree on a caller loop */

typedef struct tree_run {
  node nodes[MAX_NODES];
  int n;
  int bad_lines;
  bool exited, watchdog_fired;
  uint64_t t_exit;
  uv_loop_t loop;
  uv_timer_t watchdog;
  pk_proc *p;
} tree_run;

static void tree_line(pk_proc *p, pk_stream s, const char *line, size_t len,
                      void *data) {
  (void)p;
  tree_run *t = data;
  char buf[64];
  int pid;
  if (s != PK_STDOUT || len >= sizeof(buf)) {
    t->bad_lines++;
    return;
  }
  memcpy(buf, line, len);
  buf[len] = '\0';
  if (sscanf(buf, "pid %d", &pid) != 1 || t->n >= MAX_NODES) {
    t->bad_lines++;
    return;
  }
  t->nodes[t->n++].pid = (pid_t)pid;
}

static void tree_exit(pk_proc *p, void *data) {
  (void)p;
  tree_run *t = data;
  t->exited = true;
  t->t_exit = pkt_now_ms();
}

static void on_watchdog(uv_timer_t *h) {
  tree_run *t = h->data;
  t->watchdog_fired = true;
  if (!t->exited)
    pk_proc_kill(t->p, SIGKILL);
}

/* Start a tree on t->loop; returns once every node has reported. */
static void tree_start(tree_run *t, pk_runner *r, pk_cmd *cmd) {
  memset(t, 0, sizeof(*t));
  assert_int_equal(uv_loop_init(&t->loop), 0);
  uv_timer_init(&t->loop, &t->watchdog);
  t->watchdog.data = t;
  pk_start_opts o = {
      .loop = &t->loop, .on_line = tree_line, .on_exit = tree_exit, .data = t};
  PKT_ASSERT_OK(pk_start(r, cmd, &o, &t->p));
  uv_timer_start(&t->watchdog, on_watchdog, WATCHDOG_MS, 0);
}

/* True once every node has reported; false if the run ended first. */
static bool tree_came_up(tree_run *t) {
  while (t->n < TREE_NODES && !t->exited && !t->watchdog_fired)
    uv_run(&t->loop, UV_RUN_ONCE);
  assert_int_equal(t->bad_lines, 0);
  return t->n == TREE_NODES;
}

/* Record every node's start time; false if one is gone already. */
static bool tree_recorded(tree_run *t) {
  for (int i = 0; i < t->n; i++) {
    char st;
    if (!read_stat(t->nodes[i].pid, &st, &t->nodes[i].start, NULL) ||
        st == 'Z' || st == 'X')
      return false;
  }
  return true;
}

static void tree_wait_up(tree_run *t) {
  if (!tree_came_up(t))
    fail_msg("tree came up with %d of %d nodes", t->n, TREE_NODES);
  for (int i = 0; i < t->n; i++)
    node_record(&t->nodes[i], t->nodes[i].pid);
}

static void tree_run_to_exit(tree_run *t) {
  while (!t->exited && !t->watchdog_fired)
    uv_run(&t->loop, UV_RUN_ONCE);
  while (!t->exited) /* the watchdog killed it: let pk report */
    uv_run(&t->loop, UV_RUN_ONCE);
  assert_false(t->watchdog_fired);
}

static void tree_close(tree_run *t) {
  pk_proc_free(t->p);
  t->p = NULL;
  uv_close((uv_handle_t *)&t->watchdog, NULL);
  uv_run(&t->loop, UV_RUN_DEFAULT);
  assert_int_equal(uv_loop_close(&t->loop), 0);
}

static tree_run *tree_new(void) {
  tree_run *t = calloc(1, sizeof(*t));
  assert_non_null(t);
  return t;
}

/* ------------------------------------------------------- R6: kill runs */

/* (a) pk_proc_kill(SIGKILL) on a 364-node, depth-5 tree: every node gone,
 * measured from the kill; PK_TREE_RUNS runs per mechanism. */
static void tree_kill_all_gone(void **state) {
  (void)state;
  int runs = runs_from_env("PK_TREE_RUNS", 100);
  int64_t *gone = calloc((size_t)runs, sizeof(*gone));
  int64_t *reported = calloc((size_t)runs, sizeof(*reported));
  assert_non_null(gone);
  assert_non_null(reported);
  tree_run *t = tree_new();
  for (int i = 0; i < nmechs; i++) {
    pk_runner *r = pkt_runner(mechs[i], 0);
    pk_cmd *cmd = pkt_fixture("tree", TREE_DEPTH, TREE_WIDTH, NULL);
    for (int k = 0; k < runs; k++) {
      pkt_snapshot snap;
      pkt_snapshot_take(&snap);
      tree_start(t, r, cmd);
      tree_wait_up(t);
      uint64_t t_kill = pkt_now_ms();
      PKT_ASSERT_OK(pk_proc_kill(t->p, SIGKILL));
      tree_run_to_exit(t);
      int at_report = count_alive(t->nodes, t->n);
      int survivors = 0;
      gone[k] = wait_gone(t->nodes, t->n, t_kill, 5000, &survivors);
      reported[k] = (int64_t)(t->t_exit - t_kill);
      const pk_result *res = pk_proc_result(t->p);
      assert_int_equal(pk_result_mechanism(res), mechs[i]);
      assert_int_equal(pk_result_outcome(res), PK_OUTCOME_CANCELLED);
      assert_int_equal(pk_result_error(res), PK_ECANCELED);
      if (gone[k] < 0)
        fail_msg("%s run %d: %d of %d nodes still alive 5 s after the kill",
                 pk_mechanism_name(mechs[i]), k, survivors, t->n);
      if (at_report != 0)
        fail_msg("%s run %d: %d nodes alive when pk reported the end",
                 pk_mechanism_name(mechs[i]), k, at_report);
      if (gone[k] > GONE_BOUND_MS)
        fail_msg("%s run %d: tree took %lld ms to die (bound %d ms)",
                 pk_mechanism_name(mechs[i]), k, (long long)gone[k],
                 GONE_BOUND_MS);
      tree_close(t);
      pkt_snapshot_check(&snap);
    }
    print_figures("kill -> every node gone", mechs[i], gone, runs);
    print_figures("kill -> pk reported the end", mechs[i], reported, runs);
    pk_cmd_free(cmd);
    pk_runner_free(r);
  }
  free(t);
  free(gone);
  free(reported);
}

/* (a') The timeout tears the whole tree down: soft TERM (every node dies
 * of it) on even runs, SIGKILL at once (grace 0) on odd runs. The
 * figure is measured from the deadline.
 *
 * The deadline must fall once the whole tree is up: 2 s is plenty on an
 * idle host, not on a loaded one (forking 364 nodes took 1.7 s on 2 busy
 * cores). A round whose tree was not up in time is not the case under
 * test, so it is run again with twice the timeout, up to 16 s (the
 * watchdog is 30 s). */
static void tree_timeout_all_gone(void **state) {
  (void)state;
  int runs = runs_from_env("PK_TREE_TIMEOUT_RUNS", 2);
  tree_run *t = tree_new();
  for (int i = 0; i < nmechs; i++) {
    pk_runner *r = pkt_runner(mechs[i], 0);
    int timeout = 2000;
    for (int k = 0; k < runs; k++) {
      pkt_snapshot snap;
      pkt_snapshot_take(&snap);
      pk_cmd *cmd = pkt_fixture("tree", TREE_DEPTH, TREE_WIDTH, NULL);
      PKT_ASSERT_OK(pk_cmd_set_timeout(cmd, timeout, k % 2 ? 0 : 500, 0));
      uint64_t t0 = pkt_now_ms();
      tree_start(t, r, cmd);
      bool up = tree_came_up(t);
      uint64_t t_up = pkt_now_ms();
      /* Recorded, all alive, still before the deadline. */
      up = up && tree_recorded(t) && pkt_now_ms() - t0 < (uint64_t)timeout;
      if (!up) {
        print_message("%s: tree had %d of %d nodes up after %llu ms, "
                      "timeout %d ms: again with %d ms\n",
                      pk_mechanism_name(mechs[i]), t->n, TREE_NODES,
                      (unsigned long long)(t_up - t0), timeout, 2 * timeout);
        tree_run_to_exit(t);
        assert_int_equal(pk_result_outcome(pk_proc_result(t->p)),
                         PK_OUTCOME_TIMED_OUT);
        tree_close(t);
        pk_cmd_free(cmd);
        pkt_snapshot_check(&snap);
        if (timeout >= 16000)
          fail_msg("the tree never came up before its timeout");
        timeout *= 2;
        k--;
        continue;
      }
      tree_run_to_exit(t);
      int at_report = count_alive(t->nodes, t->n);
      uint64_t t_deadline = t0 + (uint64_t)timeout;
      int survivors = 0;
      int64_t gone = wait_gone(t->nodes, t->n, t_deadline, 5000, &survivors);
      const pk_result *res = pk_proc_result(t->p);
      assert_int_equal(pk_result_outcome(res), PK_OUTCOME_TIMED_OUT);
      assert_int_equal(pk_result_error(res), PK_ETIMEOUT);
      assert_int_equal(pk_result_signal(res), k % 2 ? SIGKILL : SIGTERM);
      print_message("%s: timeout (%s), tree up after %llu ms, reported %lld "
                    "ms and all gone %lld ms after the deadline\n",
                    pk_mechanism_name(mechs[i]), k % 2 ? "grace 0" : "TERM",
                    (unsigned long long)(t_up - t0),
                    (long long)(t->t_exit - t_deadline), (long long)gone);
      if (gone < 0)
        fail_msg("%d of %d nodes still alive 5 s after the deadline", survivors,
                 t->n);
      assert_true(gone <= GONE_BOUND_MS + 500); /* + timer lateness */
      assert_int_equal(at_report, 0); /* torn down before the report */
      tree_close(t);
      pk_cmd_free(cmd);
      pkt_snapshot_check(&snap);
    }
    pk_runner_free(r);
  }
  free(t);
}

/* ------------------------------------------ (b) destroy a running run */

/* Every descendant of root, found through /proc children files. */
static int walk_tree(pid_t root, node *nodes, int max) {
  int n = 0;
  nodes[n++].pid = root;
  for (int i = 0; i < n; i++) {
    char pid[32];
    pid_t kids[64];
    snprintf(pid, sizeof(pid), "%d", (int)nodes[i].pid);
    int k = children_of(pid, kids, 64);
    for (int j = 0; j < k && n < max; j++)
      nodes[n++].pid = kids[j];
  }
  return n;
}

/* After pk_proc_free: "nothing of the run outlives this call" (pk.h).
 * right_after is the number of nodes alive when the call returned. With
 * process_group this used to fail (killpg is asynchronous and teardown did
 * not wait: 21 to 236 of 364 nodes seen alive); group.c now waits for the
 * group, and this is its regression test, over DESTROY_RUNS rounds since
 * the failure was a race. */
static void check_destroyed(pk_mechanism m, const char *how, node *nodes, int n,
                            uint64_t t_kill, uint64_t t_freed,
                            int right_after) {
  int survivors = 0;
  int64_t gone = wait_gone(nodes, n, t_kill, 5000, &survivors);
  print_message("%s: %s: pk_proc_free took %llu ms, %d of %d nodes alive "
                "right after it, all gone after %lld ms\n",
                pk_mechanism_name(m), how,
                (unsigned long long)(t_freed - t_kill), right_after, n,
                (long long)gone);
  if (gone < 0)
    fail_msg("%d of %d nodes still alive 5 s after pk_proc_free", survivors, n);
  assert_true(gone <= GONE_BOUND_MS);
  if (right_after != 0)
    fail_msg("%s: %s: %d of %d nodes still alive when pk_proc_free "
             "returned (pk.h: nothing of the run outlives this call)",
             pk_mechanism_name(m), how, right_after, n);
}

/* pk_proc_free on a running handle with a private loop (opts NULL). The
 * test finds the nodes itself by walking /proc. */
static void tree_destroy_private_loop(void **state) {
  (void)state;
  node *nodes = calloc(MAX_NODES, sizeof(*nodes));
  assert_non_null(nodes);
  for (int i = 0; i < nmechs; i++) {
    pk_runner *r = pkt_runner(mechs[i], 0);
    pk_cmd *cmd = pkt_fixture("tree", TREE_DEPTH, TREE_WIDTH, NULL);
    for (int k = 0; k < DESTROY_RUNS; k++) {
      pkt_snapshot snap;
      pkt_snapshot_take(&snap);
      pk_proc *p = NULL;
      PKT_ASSERT_OK(pk_start(r, cmd, NULL, &p));
      pid_t root = (pid_t)pk_proc_pid(p);
      assert_true(root > 0);
      int n = 0;
      uint64_t t0 = pkt_now_ms();
      while ((n = walk_tree(root, nodes, MAX_NODES)) < TREE_NODES &&
             pkt_now_ms() - t0 < WATCHDOG_MS)
        usleep(2000); /* poll until every node has forked */
      assert_int_equal(n, TREE_NODES);
      for (int j = 0; j < n; j++)
        node_record(&nodes[j], nodes[j].pid);
      assert_false(pk_proc_done(p));
      uint64_t t_kill = pkt_now_ms();
      pk_proc_free(p);
      uint64_t t_freed = pkt_now_ms();
      int right_after = count_alive(nodes, n);
      check_destroyed(mechs[i], "private loop", nodes, n, t_kill, t_freed,
                      right_after);
      pkt_snapshot_check(&snap);
    }
    pk_cmd_free(cmd);
    pk_runner_free(r);
  }
  free(nodes);
}

/* pk_proc_free on a running handle on a caller's loop; the loop then
 * closes cleanly. */
static void tree_destroy_caller_loop(void **state) {
  (void)state;
  tree_run *t = tree_new();
  for (int i = 0; i < nmechs; i++) {
    pk_runner *r = pkt_runner(mechs[i], 0);
    pk_cmd *cmd = pkt_fixture("tree", TREE_DEPTH, TREE_WIDTH, NULL);
    for (int k = 0; k < DESTROY_RUNS; k++) {
      pkt_snapshot snap;
      pkt_snapshot_take(&snap);
      tree_start(t, r, cmd);
      tree_wait_up(t);
      assert_false(t->exited);
      uint64_t t_kill = pkt_now_ms();
      pk_proc_free(t->p);
      uint64_t t_freed = pkt_now_ms();
      int right_after = count_alive(t->nodes, t->n);
      t->p = NULL;
      uv_close((uv_handle_t *)&t->watchdog, NULL);
      uv_run(&t->loop, UV_RUN_DEFAULT);
      assert_int_equal(uv_loop_close(&t->loop), 0);
      check_destroyed(mechs[i], "caller loop", t->nodes, t->n, t_kill, t_freed,
                      right_after);
      pkt_snapshot_check(&snap);
    }
    pk_cmd_free(cmd);
    pk_runner_free(r);
  }
  free(t);
}

/* ------------------------------------------------ (c) setsid escapee */

/* A grandchild that calls setsid() leaves the process group (but not the
 * cgroup). The deadline must fall after the escape ("parent" is printed
 * after it): a round where it did not, on a busy host, is run again with
 * twice the timeout. */
static void setsid_escapee(void **state) {
  (void)state;
  int timeout = 500;
  for (int i = 0; i < nmechs; i++) {
    pkt_snapshot snap;
    pkt_snapshot_take(&snap);
    pk_runner *r = pkt_runner(mechs[i], 0);
    pk_cmd *cmd = pkt_fixture("setsid-escape", "60", NULL);
    PKT_ASSERT_OK(pk_cmd_set_timeout(cmd, timeout, 0, 0));
    pk_result *res = NULL;
    uint64_t t0 = pkt_now_ms();
    int rc = pk_output(r, cmd, &res);
    uint64_t ms = pkt_now_ms() - t0;
    assert_int_equal(rc, PK_ETIMEOUT);
    assert_int_equal(pk_result_outcome(res), PK_OUTCOME_TIMED_OUT);
    const char *out = pk_result_stdout(res, NULL);
    const char *esc = strstr(out, "escaped ");
    const char *par = strstr(out, "parent ");
    if (par == NULL && timeout < 8000) {
      print_message("%s: no escape within the %d ms timeout: again with %d "
                    "ms\n",
                    pk_mechanism_name(mechs[i]), timeout, 2 * timeout);
      pk_result_free(res);
      pk_cmd_free(cmd);
      pk_runner_free(r);
      pkt_snapshot_check(&snap); /* torn down all the same */
      timeout *= 2;
      i--;
      continue;
    }
    assert_non_null(esc);
    assert_non_null(par);
    node escapee;
    escapee.pid = (pid_t)atoi(esc + 8);
    assert_true(escapee.pid > 0);
    assert_int_not_equal(escapee.pid, pk_result_pid(res));
    bool alive = false;
    char st;
    pid_t ppid = 0;
    if (read_stat(escapee.pid, &st, &escapee.start, &ppid))
      alive = st != 'Z' && st != 'X';
    print_message("%s: setsid escapee %d %s after the run (%llu ms, "
                  "output_incomplete %d, error %s)\n",
                  pk_mechanism_name(mechs[i]), (int)escapee.pid,
                  alive ? "ALIVE" : "gone", (unsigned long long)ms,
                  (int)pk_result_output_incomplete(res),
                  pk_err_name(pk_result_error(res)));
    /* Gone on both: the cgroup holds it whatever its session; the
     * process-group fallback walks the live child's tree when the
     * deadline signals it, finds the descendant outside the group,
     * signals it with the group and reports it. */
    assert_false(alive);
    assert_false(pk_result_output_incomplete(res));
    if (mechs[i] == PK_MECH_CGROUP_V2)
      assert_int_equal(pk_result_escapees(res), 0);
    else
      assert_int_equal(pk_result_escapees(res), 1);
    if (read_stat(escapee.pid, &st, &escapee.start, &ppid) && st == 'Z' &&
        ppid == getpid())
      waitpid(escapee.pid, NULL, 0); /* our adopted orphan: reap it */
    pk_result_free(res);
    pk_cmd_free(cmd);
    pk_runner_free(r);
    pkt_snapshot_check(&snap);
  }
}

/* ------------------------------------- (d, e) R7: grandchild holds pipe */

typedef struct holder_run {
  pid_t before[256];
  int nbefore;
  pid_t gc[8];
  int ngc;
  bool looked, exited;
  int lines;
  pid_t holder; /* hold-pipe-signal's grandchild, from its stderr line */
  bool released;
} holder_run;

/* At the first line the grandchild exists (forked before the print): it
 * is a child of the direct child, or ours if that has exited already. */
static void holder_line(pk_proc *p, pk_stream s, const char *line, size_t len,
                        void *data) {
  (void)line, (void)len;
  holder_run *h = data;
  if (s != PK_STDOUT) {
    char buf[32];
    int pid;
    if (len < sizeof(buf)) {
      memcpy(buf, line, len);
      buf[len] = '\0';
      if (sscanf(buf, "holder %d", &pid) == 1)
        h->holder = (pid_t)pid;
    }
    return;
  }
  h->lines++;
  if (h->looked)
    return;
  h->looked = true;
  pid_t direct = (pid_t)pk_proc_pid(p), kids[256];
  char pid[32];
  snprintf(pid, sizeof(pid), "%d", (int)direct);
  int n = children_of(pid, kids, 128);
  n += children_of("self", kids + n, 128);
  for (int i = 0; i < n; i++)
    if (kids[i] != direct && !contains(h->before, h->nbefore, kids[i]) &&
        !contains(h->gc, h->ngc, kids[i]) && h->ngc < 8)
      h->gc[h->ngc++] = kids[i];
}

static void holder_exit(pk_proc *p, void *data) {
  (void)p;
  ((holder_run *)data)->exited = true;
}

/* True once pid, our child, has exited (a zombie: pk reaps its direct
 * child only when the run ends). */
static bool has_exited(pid_t pid) {
  siginfo_t si;
  memset(&si, 0, sizeof(si));
  return waitid(P_PID, (id_t)pid, &si, WEXITED | WNOHANG | WNOWAIT) == 0 &&
         si.si_pid == pid;
}

/* hold-pipe-signal: once the direct child has exited and pk has had a
 * loop pass to see it (the drain has begun), tell the holder to let go.
 * Events, not time, order the steps. */
static void maybe_release(holder_run *h, pk_proc *p, uv_loop_t *loop) {
  if (h->released || h->holder <= 0 || !has_exited((pid_t)pk_proc_pid(p)))
    return;
  uv_run(loop, UV_RUN_NOWAIT);
  assert_false(h->exited); /* the holder still holds the pipes */
  assert_int_equal(kill(h->holder, SIGUSR1), 0);
  h->released = true;
}

/* Run cmd on a caller loop; the grandchild must be found, the run must
 * end within bound_ms with stdout "hi\n" and the given incomplete flag,
 * and the grandchild must be gone afterwards (at once with cgroup_v2).
 * release: cmd is hold-pipe-signal; its holder is released (above). */
static void check_holder_loop(pk_mechanism m, pk_cmd *cmd, bool incomplete,
                              bool release, int64_t lo_ms, int64_t hi_ms) {
  pkt_snapshot snap;
  pkt_snapshot_take(&snap);
  pk_runner *r = pkt_runner(m, 0);
  holder_run h;
  memset(&h, 0, sizeof(h));
  h.nbefore = children_of("self", h.before, 256);
  uv_loop_t loop;
  assert_int_equal(uv_loop_init(&loop), 0);
  pk_start_opts o = {.loop = &loop,
                     .on_line = holder_line,
                     .on_exit = holder_exit,
                     .data = &h};
  pk_proc *p = NULL;
  uint64_t t0 = pkt_now_ms();
  PKT_ASSERT_OK(pk_start(r, cmd, &o, &p));
  while (!h.exited) {
    uv_run(&loop, UV_RUN_ONCE);
    if (release)
      maybe_release(&h, p, &loop);
  }
  int64_t ms = (int64_t)(pkt_now_ms() - t0);
  assert_int_equal(h.released, release);
  const pk_result *res = pk_proc_result(p);
  /* Normally exactly the grandchild; an ASan build of the fixture may
   * show LeakSanitizer's short-lived tracer child as well. Every one of
   * them is a descendant of the run and must be gone afterwards. */
  assert_true(h.ngc >= 1);
  node gc[8];
  int ngc = 0, alive_at_end = 0;
  for (int i = 0; i < h.ngc; i++) {
    char st;
    gc[ngc].pid = h.gc[i];
    if (!read_stat(gc[ngc].pid, &st, &gc[ngc].start, NULL))
      continue;
    alive_at_end += st != 'Z' && st != 'X';
    ngc++;
  }
  print_message("%s: %s %s: ended after %lld ms, output_incomplete %d, "
                "grandchild %d (+%d) %s when pk reported\n",
                pk_mechanism_name(m), pk_cmd_argv(cmd, 0), pk_cmd_argv(cmd, 1),
                (long long)ms, (int)pk_result_output_incomplete(res),
                (int)h.gc[0], h.ngc - 1, alive_at_end ? "alive" : "gone");
  assert_int_equal(pk_result_outcome(res), PK_OUTCOME_EXITED);
  assert_int_equal(pk_result_code(res), 0);
  assert_int_equal(pk_result_error(res), 0);
  assert_string_equal(pk_result_stdout(res, NULL), "hi\n");
  assert_int_equal(h.lines, 1);
  assert_int_equal(pk_result_output_incomplete(res), incomplete);
  if (ms < lo_ms || ms > hi_ms)
    fail_msg("ended after %lld ms, expected within [%lld, %lld]", (long long)ms,
             (long long)lo_ms, (long long)hi_ms);
  /* torn down before the report, on every mechanism */
  assert_int_equal(alive_at_end, 0);
  pk_proc_free(p);
  uv_run(&loop, UV_RUN_DEFAULT);
  assert_int_equal(uv_loop_close(&loop), 0);
  int survivors = 0;
  if (wait_gone(gc, ngc, pkt_now_ms(), GONE_BOUND_MS, &survivors) < 0)
    fail_msg("%d grandchildren survived the run", survivors);
  pk_runner_free(r);
  pkt_snapshot_check(&snap);
}

/* The same through pk_output: every child we gained (orphans come to us)
 * must be gone within the bound. */
static void check_holder_output(pk_mechanism m, pk_cmd *cmd, bool incomplete,
                                int64_t lo_ms, int64_t hi_ms) {
  pkt_snapshot snap;
  pkt_snapshot_take(&snap);
  pk_runner *r = pkt_runner(m, 0);
  pid_t before[256], after[256];
  int nbefore = children_of("self", before, 256);
  pk_result *res = NULL;
  uint64_t t0 = pkt_now_ms();
  PKT_ASSERT_OK(pk_output(r, cmd, &res));
  int64_t ms = (int64_t)(pkt_now_ms() - t0);
  assert_int_equal(pk_result_outcome(res), PK_OUTCOME_EXITED);
  assert_int_equal(pk_result_code(res), 0);
  assert_string_equal(pk_result_stdout(res, NULL), "hi\n");
  assert_int_equal(pk_result_output_incomplete(res), incomplete);
  if (ms < lo_ms || ms > hi_ms)
    fail_msg("pk_output took %lld ms, expected within [%lld, %lld]",
             (long long)ms, (long long)lo_ms, (long long)hi_ms);
  int nafter = children_of("self", after, 256);
  node gained[256];
  int ngained = 0;
  for (int i = 0; i < nafter; i++) {
    char st;
    if (contains(before, nbefore, after[i]))
      continue;
    gained[ngained].pid = after[i];
    if (read_stat(after[i], &st, &gained[ngained].start, NULL))
      ngained++;
  }
  int alive = count_alive(gained, ngained), survivors = 0;
  if (wait_gone(gained, ngained, pkt_now_ms(), GONE_BOUND_MS, &survivors) < 0)
    fail_msg("%d descendants survived pk_output", survivors);
  if (alive != 0)
    fail_msg("%d descendants still alive when pk_output returned", alive);
  pk_result_free(res);
  pk_runner_free(r);
  pkt_snapshot_check(&snap);
}

static pk_cmd *sh_cmd(const char *script) {
  pk_cmd *cmd;
  PKT_ASSERT_OK(pk_cmd_new("sh", &cmd));
  PKT_ASSERT_OK(pk_cmd_arg(cmd, "-c"));
  PKT_ASSERT_OK(pk_cmd_arg(cmd, script));
  return cmd;
}

/* Bounds for a run that ends by the default drain while a grandchild
 * holds stdout for 30 s: not before the drain (with room for libuv's
 * cached loop time on a busy host), and long before the 30 s. */
#define HELD_LO_MS (DRAIN_MS / 2)
#define HELD_HI_MS (DRAIN_MS + 10000)

/* (d) `hold-pipe 30`: the child exits at once, its grandchild keeps
 * stdout open for 30 s. pk returns after the drain, flags the output
 * incomplete, and tears the grandchild down. */
static void grandchild_holds_stdout(void **state) {
  (void)state;
  for (int i = 0; i < nmechs; i++) {
    pk_cmd *cmd = pkt_fixture("hold-pipe", "30", NULL);
    check_holder_loop(mechs[i], cmd, true, false, HELD_LO_MS, HELD_HI_MS);
    check_holder_output(mechs[i], cmd, true, HELD_LO_MS, HELD_HI_MS);
    pk_cmd_free(cmd);
  }
}

/* (d') A grandchild that lets go of stdout within the drain: complete.
 * It holds the pipe past the child's exit and lets go only when told,
 * after pk has seen that exit; the drain is long, so nothing races: the
 * run must end complete, on the EOF, well before the drain would. */
static void grandchild_closes_in_time(void **state) {
  (void)state;
  for (int i = 0; i < nmechs; i++) {
    pk_cmd *cmd = pkt_fixture("hold-pipe-signal", NULL);
    PKT_ASSERT_OK(pk_cmd_set_drain(cmd, LONG_DRAIN_MS));
    check_holder_loop(mechs[i], cmd, false, true, 0, LONG_DRAIN_MS / 2);
    pk_cmd_free(cmd);
    /* It keeps running, but not on our pipe: complete, and still torn
     * down with the run. (The shell's background child holds the pipe
     * for a moment, until its redirection: the long drain covers that.) */
    cmd = sh_cmd("sleep 30 >/dev/null 2>&1 & echo hi");
    PKT_ASSERT_OK(pk_cmd_set_drain(cmd, LONG_DRAIN_MS));
    check_holder_loop(mechs[i], cmd, false, false, 0, LONG_DRAIN_MS / 2);
    check_holder_output(mechs[i], cmd, false, 0, LONG_DRAIN_MS / 2);
    pk_cmd_free(cmd);
  }
}

/* (e) The classic: `sh -c 'sleep 30 & echo hi'`. */
static void sh_background_sleep(void **state) {
  (void)state;
  for (int i = 0; i < nmechs; i++) {
    pk_cmd *cmd = sh_cmd("sleep 30 & echo hi");
    check_holder_loop(mechs[i], cmd, true, false, HELD_LO_MS, HELD_HI_MS);
    check_holder_output(mechs[i], cmd, true, HELD_LO_MS, HELD_HI_MS);
    pk_cmd_free(cmd);
  }
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(tree_kill_all_gone),
      cmocka_unit_test(tree_timeout_all_gone),
      cmocka_unit_test(tree_destroy_private_loop),
      cmocka_unit_test(tree_destroy_caller_loop),
      cmocka_unit_test(setsid_escapee),
      cmocka_unit_test(grandchild_holds_stdout),
      cmocka_unit_test(grandchild_closes_in_time),
      cmocka_unit_test(sh_background_sleep),
  };
  return cmocka_run_group_tests(tests, setup, NULL);
}
