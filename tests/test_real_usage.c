/* Per-run resource use on the result (issue 8's stats): CPU time and
 * peak memory, with the scope each mechanism can account — the whole tree
 * on cgroup_v2 (cpu.stat; memory.peak where the memory controller is on),
 * the direct child and what it waited for on process_group (rusage) —
 * and -1 ("unknown"), never 0, where nothing was measured. The fixture
 * burns CPU by its own CPU clock and touches memory page by page, so the
 * lower bounds hold however loaded the host is. */
#include "harness.h"

#include <pk/fakes.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static pk_result *run_cmd(pk_runner *r, pk_cmd *cmd) {
  pk_result *res = NULL;
  PKT_ASSERT_OK(pk_output(r, cmd, &res));
  assert_int_equal(pk_result_code(res), 0);
  pk_cmd_free(cmd);
  return res;
}

/* The direct child's own CPU and memory, on every mechanism. */
static void child_cpu_and_memory(void **state) {
  (void)state;
  pk_mechanism mechs[4];
  int n = pkt_mechanisms(mechs);
  for (int i = 0; i < n; i++) {
    pkt_snapshot snap;
    pkt_snapshot_take(&snap);
    pk_runner *r = pkt_runner(mechs[i], 0);
    bool tree = mechs[i] == PK_MECH_CGROUP_V2;
    pk_result *res = run_cmd(r, pkt_fixture("burn", "150", NULL));
    print_message("%s: burn 150 ms -> %lld us (%s)\n",
                  pk_mechanism_name(mechs[i]), (long long)pk_result_cpu_us(res),
                  pk_result_cpu_scope(res));
    /* The tree's accounting starts when the child joins its cgroup:
     * with clone3 at once, on the fallback path just before exec (under
     * valgrind, whose emulation of that window costs ~20 ms, the slice
     * before the join is charged outside). The child's own rusage covers
     * all of it. */
    assert_true(pk_result_cpu_us(res) >= (tree ? 120000 : 150000));
    assert_string_equal(pk_result_cpu_scope(res), tree ? "tree" : "child");
    pk_result_free(res);

    res = run_cmd(r, pkt_fixture("touch", "64", NULL));
    print_message("%s: touch 64 MiB -> peak %lld bytes (%s)\n",
                  pk_mechanism_name(mechs[i]),
                  (long long)pk_result_peak_memory(res),
                  pk_result_memory_scope(res));
    assert_true(pk_result_peak_memory(res) >= (int64_t)64 << 20);
    assert_non_null(pk_result_memory_scope(res));
    if (!tree)
      assert_string_equal(pk_result_memory_scope(res), "child");
    pk_result_free(res);
    pk_runner_free(r);
    pkt_snapshot_check(&snap);
  }
}

/* A grandchild the child never waits for: its CPU is the tree's (cgroup
 * accounting), not the child's (rusage). The child blocks reading a FIFO
 * the grandchild writes after burning 300 ms by its own CPU clock, so the
 * grandchild has burnt it before the run ends and the child itself uses
 * next to no CPU, on any host. The directory is made and removed by the
 * test's setup and teardown, so a failure leaves nothing behind. */
typedef struct fifo_dir {
  char dir[32], fifo[64];
} fifo_dir;

static int fifo_setup(void **state) {
  fifo_dir *d = calloc(1, sizeof(*d));
  snprintf(d->dir, sizeof(d->dir), "/tmp/pk-usage-XXXXXX");
  if (d == NULL || mkdtemp(d->dir) == NULL)
    return -1;
  snprintf(d->fifo, sizeof(d->fifo), "%s/fifo", d->dir);
  if (mkfifo(d->fifo, 0600) != 0)
    return -1;
  *state = d;
  return 0;
}

static int fifo_teardown(void **state) {
  fifo_dir *d = *state;
  int rc = unlink(d->fifo) == 0 && rmdir(d->dir) == 0 ? 0 : -1;
  free(d);
  return rc;
}

static void tree_versus_child_scope(void **state) {
  fifo_dir *d = *state;
  pk_mechanism mechs[4];
  int n = pkt_mechanisms(mechs);
  char script[1024];
  snprintf(script, sizeof(script),
           "('%s' burn 300 >'%s' 2>/dev/null &); read x <'%s'", PK_FIXTURE,
           d->fifo, d->fifo);
  for (int i = 0; i < n; i++) {
    pkt_snapshot snap;
    pkt_snapshot_take(&snap);
    pk_cmd *cmd;
    PKT_ASSERT_OK(pk_cmd_new_list(&cmd, "/bin/sh", "-c", script, NULL));
    pk_runner *r = pkt_runner(mechs[i], 0);
    pk_result *res = run_cmd(r, cmd);
    int64_t us = pk_result_cpu_us(res);
    print_message("%s: unwaited grandchild burnt 300 ms -> %lld us (%s)\n",
                  pk_mechanism_name(mechs[i]), (long long)us,
                  pk_result_cpu_scope(res));
    if (mechs[i] == PK_MECH_CGROUP_V2)
      assert_true(us >= 300000);
    else
      assert_true(us >= 0 && us < 300000);
    pk_result_free(res);
    pk_runner_free(r);
    pkt_snapshot_check(&snap);
  }
}

/* Nothing measured is unknown, never 0: a double, and a spawn failure. */
static void unknown_is_minus_one(void **state) {
  (void)state;
  pk_runner *s;
  PKT_ASSERT_OK(pk_scripted_new(&s));
  PKT_ASSERT_OK(pk_script_program(s, "tool", pk_reply_ok("x\n")));
  pk_cmd *cmd;
  PKT_ASSERT_OK(pk_cmd_new("tool", &cmd));
  pk_result *res = run_cmd(s, cmd);
  assert_int_equal(pk_result_cpu_us(res), -1);
  assert_int_equal(pk_result_peak_memory(res), -1);
  assert_null(pk_result_cpu_scope(res));
  assert_null(pk_result_memory_scope(res));
  pk_result_free(res);
  pk_runner_free(s);

  pk_runner *r = pkt_runner(PK_MECH_AUTO, 0);
  PKT_ASSERT_OK(pk_cmd_new("/nonexistent/pk-usage-tool", &cmd));
  res = NULL;
  assert_int_equal(pk_output(r, cmd, &res), PK_ENOENT);
  assert_int_equal(pk_result_cpu_us(res), -1);
  assert_int_equal(pk_result_peak_memory(res), -1);
  pk_result_free(res);
  pk_cmd_free(cmd);
  pk_runner_free(r);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(child_cpu_and_memory),
      cmocka_unit_test_setup_teardown(tree_versus_child_scope, fifo_setup,
                                      fifo_teardown),
      cmocka_unit_test(unknown_is_minus_one),
  };
  return cmocka_run_group_tests(tests, pkt_setup, NULL);
}
