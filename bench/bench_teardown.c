/* The teardown section: kill a 364-process tree (depth 5, width 3) through
 * pk and time until no member is left, per mechanism (issue 8's
 * teardown_ms_cgroup, goal < 50 ms; teardown_ms_pgroup). "No member left"
 * is measured from outside pk: a pidfd of every node, polled until each
 * reports its exit; this process is a child subreaper, so the orphaned
 * nodes come back to it and are reaped by pid afterwards. The baseline is
 * the same tree killed by hand: kill(-pgid, SIGKILL) on its process group.
 */
#include "bench.h"

#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#define TREE_NODES 364 /* 1 + 3 + 9 + 27 + 81 + 243 */
#define GOAL_TEARDOWN_MS_CGROUP 50.0

typedef struct tree {
  uv_loop_t loop;
  pk_proc *proc;
  pid_t pid[TREE_NODES];
  int n;
  bool ended;
} tree;

static void on_line(pk_proc *p, pk_stream s, const char *line, size_t len,
                    void *data) {
  (void)s, (void)len;
  tree *t = data;
  if (strncmp(line, "pid ", 4) == 0 && t->n < TREE_NODES)
    t->pid[t->n++] = (pid_t)atoi(line + 4);
  if (t->n == TREE_NODES)
    uv_stop(&t->loop);
  (void)p;
}

static void on_exit_cb(pk_proc *p, void *data) {
  (void)p;
  tree *t = data;
  t->ended = true;
  uv_stop(&t->loop);
}

/* Poll pidfds until every one reports an exit; ms it took from t0. */
static double wait_all_gone(int *fds, int n, double t0) {
  struct pollfd pf[TREE_NODES];
  int left = n;
  for (int i = 0; i < n; i++)
    pf[i] = (struct pollfd){.fd = fds[i], .events = POLLIN};
  while (left > 0) {
    int rc = poll(pf, (nfds_t)n, 10000);
    if (rc < 0 && errno == EINTR)
      continue;
    if (rc <= 0)
      die("teardown: %d of %d nodes still alive after 10 s", left, n);
    for (int i = 0; i < n; i++)
      if (pf[i].fd >= 0 && (pf[i].revents & (POLLIN | POLLHUP))) {
        close(pf[i].fd);
        pf[i].fd = -1;
        left--;
      }
  }
  return (now_s() - t0) * 1e3;
}

/* Reap whatever orphans came back to this subreaper (by pid). */
static void reap(const tree *t) {
  for (int i = 0; i < t->n; i++)
    while (waitpid(t->pid[i], NULL, WNOHANG) < 0 && errno == EINTR)
      ;
}

/* One tree: start, wait until every node reported, kill (through pk, or
 * by hand when r is NULL), return the ms until every node is gone. */
static double one_teardown(pk_runner *r, const char *fixture) {
  tree t;
  memset(&t, 0, sizeof(t));
  uv_loop_init(&t.loop);
  pk_cmd *cmd;
  if (pk_cmd_new_list(&cmd, fixture, "tree", "5", "3", NULL) != 0)
    die("teardown: cannot build the command");
  pk_start_opts so = {
      .loop = &t.loop, .on_line = on_line, .on_exit = on_exit_cb, .data = &t};
  pk_runner *run_with = r;
  pk_real_opts pg = {.mechanism = PK_MECH_PROCESS_GROUP};
  if (r == NULL && pk_real_runner_new(&pg, &run_with) != 0)
    die("teardown: cannot create a process-group runner");
  if (pk_start(run_with, cmd, &so, &t.proc) != 0)
    die("teardown: pk_start failed");
  while (t.n < TREE_NODES && !t.ended)
    uv_run(&t.loop, UV_RUN_ONCE);
  if (t.n < TREE_NODES)
    die("teardown: the tree came up with %d of %d nodes", t.n, TREE_NODES);
  int fds[TREE_NODES];
  for (int i = 0; i < t.n; i++)
    if ((fds[i] = (int)syscall(SYS_pidfd_open, t.pid[i], 0)) < 0)
      die("teardown: pidfd_open %d: %s", (int)t.pid[i], strerror(errno));
  double t0 = now_s();
  if (r != NULL)
    pk_proc_kill(t.proc, SIGKILL);
  else /* the baseline: the root is the group leader (process_group) */
    kill(-t.pid[0], SIGKILL);
  double ms = wait_all_gone(fds, t.n, t0);
  while (!t.ended)
    uv_run(&t.loop, UV_RUN_ONCE);
  pk_proc_free(t.proc);
  while (uv_run(&t.loop, UV_RUN_NOWAIT) != 0)
    ;
  uv_loop_close(&t.loop);
  pk_cmd_free(cmd);
  if (r == NULL)
    pk_runner_free(run_with);
  reap(&t);
  return ms;
}

void bench_teardown(const char *fixture, int batches) {
  if (prctl(PR_SET_CHILD_SUBREAPER, 1) != 0)
    die("teardown: PR_SET_CHILD_SUBREAPER: %s", strerror(errno));
  pk_real_opts cg = {.mechanism = PK_MECH_CGROUP_V2};
  pk_real_opts pg = {.mechanism = PK_MECH_PROCESS_GROUP};
  pk_runner *rcg = NULL, *rpg = NULL;
  bool have_cg = pk_mechanism_available(PK_MECH_CGROUP_V2) == 0 &&
                 pk_real_runner_new(&cg, &rcg) == 0;
  if (pk_real_runner_new(&pg, &rpg) != 0)
    die("teardown: cannot create a process-group runner");
  double v[3][MAX_BATCHES];
  for (int b = 0; b < batches; b++) {
    v[0][b] = one_teardown(NULL, fixture);
    v[1][b] = one_teardown(rpg, fixture);
    if (have_cg)
      v[2][b] = one_teardown(rcg, fixture);
  }
  double raw = median(v[0], batches), pgm = median(v[1], batches);
  printf("teardown_nodes: %d (depth 5, width 3), %d trees per variant\n",
         TREE_NODES, batches);
  printf("teardown_ms_raw_killpg: %.2f\n", raw);
  printf("teardown_ms_pgroup: %.2f\n", pgm);
  printf("teardown_pgroup_ratio: %.3f\n", pgm / raw);
  if (have_cg) {
    double cgm = median(v[2], batches);
    printf("teardown_ms_cgroup: %.2f\n", cgm);
    printf("teardown_cgroup_ratio: %.3f\n", cgm / raw);
    print_goal("teardown_ms_cgroup", cgm, GOAL_TEARDOWN_MS_CGROUP, true);
  } else {
    printf("teardown_ms_cgroup: skipped (no cgroup v2 here)\n");
  }
  flush_out();
  pk_runner_free(rcg);
  pk_runner_free(rpg);
  prctl(PR_SET_CHILD_SUBREAPER, 0);
}

/* ------------------------------------------------------ freeze section */

typedef struct freeze_tree {
  int lines;
} freeze_tree;

static void count_line(pk_proc *p, pk_stream s, const char *line, size_t len,
                       void *data) {
  (void)p, (void)s, (void)len;
  if (strncmp(line, "pid ", 4) == 0)
    ((freeze_tree *)data)->lines++;
}

/* pk_group_suspend / pk_group_resume of a 40-process tree (depth 3,
 * width 3), per mechanism: suspend returns once the kernel reports the
 * tree frozen (cgroup.events "frozen 1"), or once SIGSTOP was sent to
 * every run's group (process_group). Medians over `batches` cycles. */
void bench_freeze(const char *fixture, int batches) {
  pk_mechanism mechs[2] = {PK_MECH_CGROUP_V2, PK_MECH_PROCESS_GROUP};
  const char *names[2] = {"cgroup", "pgroup"};
  printf("freeze_tree: 40 processes (depth 3, width 3), %d cycles\n", batches);
  for (int k = 0; k < 2; k++) {
    if (pk_mechanism_available(mechs[k]) != 0) {
      printf("freeze_us_%s: skipped (unavailable)\n", names[k]);
      continue;
    }
    pk_group_opts o;
    pk_group_opts_init(&o);
    o.mechanism = mechs[k];
    pk_group *g = NULL;
    if (pk_group_new(&o, &g, NULL) != 0)
      die("freeze: cannot create a %s group", names[k]);
    pk_cmd *cmd = NULL;
    if (pk_cmd_new_list(&cmd, fixture, "tree", "3", "3", NULL) != 0)
      die("freeze: pk_cmd_new_list");
    freeze_tree t = {0};
    pk_start_opts so = {.on_line = count_line, .data = &t};
    pk_proc *p = NULL;
    if (pk_start(pk_group_runner(g), cmd, &so, &p) != 0)
      die("freeze: pk_start");
    size_t idx;
    double until = now_s() + 60;
    while (t.lines < 40 && now_s() < until)
      pk_proc_wait_any(&p, 1, 50, &idx);
    if (t.lines < 40)
      die("freeze: the tree did not start");
    double fz[MAX_BATCHES], th[MAX_BATCHES];
    for (int b = 0; b < batches; b++) {
      double t0 = now_s();
      if (pk_group_suspend(g) != 0)
        die("freeze: pk_group_suspend");
      double t1 = now_s();
      if (pk_group_resume(g) != 0)
        die("freeze: pk_group_resume");
      double t2 = now_s();
      fz[b] = (t1 - t0) * 1e6;
      th[b] = (t2 - t1) * 1e6;
    }
    printf("freeze_us_%s: %.1f\n", names[k], median(fz, batches));
    printf("thaw_us_%s: %.1f\n", names[k], median(th, batches));
    pk_group_free(g);
    pk_proc_wait(p);
    pk_proc_free(p);
    pk_cmd_free(cmd);
  }
  flush_out();
}
