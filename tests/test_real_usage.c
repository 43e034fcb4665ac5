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
 * accounting), not the child's (rusage). The child polls for the file the
 * grandchild writes after burning, so the grandchild has burnt its 300 ms
 * before the run ends, on any host. */
static void tree_versus_child_scope(void **state) {
  (void)state;
  pk_mechanism mechs[4];
  int n = pkt_mechanisms(mechs);
  char dir[] = "/tmp/pk-usage-XXXXXX";
  assert_non_null(mkdtemp(dir));
  char script[1024], done[64];
  snprintf(done, sizeof(done), "%s/done", dir);
  for (int i = 0; i < n; i++) {
    pkt_snapshot snap;
    pkt_snapshot_take(&snap);
    unlink(done);
    snprintf(script, sizeof(script),
             "('%s' burn 300 >'%s' 2>/dev/null &); "
             "while [ ! -s '%s' ]; do '%s' sleep 0.2; done",
             PK_FIXTURE, done, done, PK_FIXTURE);
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
  unlink(done);
  assert_int_equal(rmdir(dir), 0);
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
      cmocka_unit_test(tree_versus_child_scope),
      cmocka_unit_test(unknown_is_minus_one),
  };
  return cmocka_run_group_tests(tests, pkt_setup, NULL);
}
