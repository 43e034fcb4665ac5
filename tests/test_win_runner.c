/* The job_object runner (Windows): whole-tree teardown, the ways out of a
 * job refused, no soft signals, 32-bit exit codes, POSIX-only options
 * refused, environment names without case, the job's accounting. Run
 * under wine in CI; every real process a test starts is gone when it
 * ends (handle counts and child processes are checked). */
#include "harness.h"
#include "win_run.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <uv.h>
#include <windows.h>

static pk_runner *runner(void) {
  pk_runner *r = NULL;
  PKT_ASSERT_OK(pk_real_runner_new(NULL, &r));
  return r;
}

/* ---- teardown ---- */

enum { TREE_NODES = 13 }; /* tree 2 3: 1 + 3 + 9 */

static void start_tree(pkt_run *r, pk_runner *rn, HANDLE *hs) {
  pk_cmd *cmd = pkt_fixture("tree", "2", "3", NULL);
  pkt_run_start(r, rn, cmd);
  pk_cmd_free(cmd);
  pkt_run_until_lines(r, TREE_NODES);
  for (int i = 0; i < TREE_NODES; i++)
    hs[i] = pkt_open_pid(r->lines[i], "pid ");
}

static void kill_ends_the_whole_tree(void **state) {
  (void)state;
  pk_runner *rn = runner();
  pkt_run r;
  HANDLE hs[TREE_NODES];
  start_tree(&r, rn, hs);
  PKT_ASSERT_OK(pk_proc_kill(r.p, PK_SIGKILL));
  pkt_run_until_exit(&r);
  const pk_result *res = pk_proc_result(r.p);
  assert_int_equal(pk_result_outcome(res), PK_OUTCOME_CANCELLED);
  assert_int_equal(pk_result_error(res), PK_ECANCELED);
  assert_int_equal(pk_result_code(res), 1); /* TerminateJobObject(job, 1) */
  assert_int_equal(pk_result_signal(res), 0);
  assert_int_equal(pk_result_mechanism(res), PK_MECH_JOB_OBJECT);
  assert_string_equal(pk_result_spawn_method(res), "create_suspended");
  pkt_assert_all_gone(hs, TREE_NODES);
  pkt_run_close(&r);
  pk_runner_free(rn);
}

static void free_while_running_ends_the_tree(void **state) {
  (void)state;
  pk_runner *rn = runner();
  pkt_run r;
  HANDLE hs[TREE_NODES];
  start_tree(&r, rn, hs);
  pk_proc_free(r.p); /* nothing of the run may outlive the call */
  r.p = NULL;
  pkt_assert_all_gone(hs, TREE_NODES);
  pkt_run_close(&r);
  pk_runner_free(rn);
}

/* A child cannot break away from its job (the job does not allow it),
 * and a detached child in a new process group is still in the job. */
static void ways_out_of_the_job_are_closed(void **state) {
  (void)state;
  pk_runner *rn = runner();
  pkt_run r;
  pk_cmd *cmd = pkt_fixture("escape", "60", NULL);
  pkt_run_start(&r, rn, cmd);
  pk_cmd_free(cmd);
  pkt_run_until_lines(&r, 2);
  if (strncmp(r.lines[0], "breakaway: refused", 18) != 0)
    fail_msg("a child broke away from the job: %s", r.lines[0]);
  HANDLE detached = pkt_open_pid(r.lines[1], "detached: pid ");
  PKT_ASSERT_OK(pk_proc_kill(r.p, PK_SIGKILL));
  pkt_run_until_exit(&r);
  pkt_assert_all_gone(&detached, 1);
  pkt_run_close(&r);
  pk_runner_free(rn);
}

/* A finished run leaves nothing active on the caller's loop: uv_run
 * returns once the run ended, before the handle is freed (stdout to a
 * file: no pipe either). */
static void a_finished_run_lets_the_loop_end(void **state) {
  (void)state;
  pk_runner *rn = runner();
  pk_cmd *cmd = pkt_fixture("echo", "x", NULL);
  PKT_ASSERT_OK(pk_cmd_set_output(cmd, PK_STDOUT, PK_OUT_NULL, NULL));
  uv_loop_t loop;
  assert_int_equal(uv_loop_init(&loop), 0);
  pk_start_opts o = {.loop = &loop};
  pk_proc *p = NULL;
  PKT_ASSERT_OK(pk_start(rn, cmd, &o, &p));
  uv_run(&loop, UV_RUN_DEFAULT); /* returns: nothing keeps it alive */
  assert_true(pk_proc_done(p));
  assert_int_equal(pk_result_code(pk_proc_result(p)), 0);
  pk_proc_free(p);
  uv_run(&loop, UV_RUN_DEFAULT);
  assert_int_equal(uv_loop_close(&loop), 0);
  pk_cmd_free(cmd);
  pk_runner_free(rn);
}

static void on_first_output(pk_proc *p, pk_stream s, const char *buf,
                            size_t len, void *data) {
  (void)s, (void)buf, (void)len;
  if (!*(bool *)data)
    PKT_ASSERT_OK(pk_proc_pause_output(p));
  *(bool *)data = true;
}

/* Output still in the pipes when the run finishes (the consumer paused
 * until the child was gone, no drain grace) is read to its end by pk
 * itself, next to libuv's own pending read on the same pipe. */
static void output_left_in_the_pipe_is_read_to_the_end(void **state) {
  (void)state;
  pk_runner *rn = runner();
  for (int round = 0; round < 5; round++) {
    pk_cmd *cmd = pkt_fixture("spew", "40000", "b", NULL);
    PKT_ASSERT_OK(pk_cmd_set_drain(cmd, 0));
    uv_loop_t loop;
    assert_int_equal(uv_loop_init(&loop), 0);
    bool paused = false;
    pk_start_opts o = {
        .loop = &loop, .on_output = on_first_output, .data = &paused};
    pk_proc *p = NULL;
    PKT_ASSERT_OK(pk_start(rn, cmd, &o, &p));
    while (!paused)
      uv_run(&loop, UV_RUN_ONCE);
    HANDLE h = OpenProcess(SYNCHRONIZE, FALSE, (DWORD)pk_proc_pid(p));
    assert_non_null(h);
    assert_int_equal(WaitForSingleObject(h, PKT_WAIT_MS), WAIT_OBJECT_0);
    CloseHandle(h);
    PKT_ASSERT_OK(pk_proc_resume_output(p));
    while (!pk_proc_done(p))
      uv_run(&loop, UV_RUN_ONCE);
    const pk_result *res = pk_proc_result(p);
    assert_int_equal(pk_result_code(res), 0);
    size_t n = 0, m = 0;
    pk_result_stdout(res, &n);
    pk_result_stderr(res, &m);
    assert_int_equal(n, 40000);
    assert_int_equal(m, 40000);
    pk_proc_free(p);
    uv_run(&loop, UV_RUN_DEFAULT);
    assert_int_equal(uv_loop_close(&loop), 0);
    pk_cmd_free(cmd);
  }
  pk_runner_free(rn);
}

/* ---- no signals ---- */

static void only_the_kill_and_the_probe(void **state) {
  (void)state;
  pk_runner *rn = runner();
  pkt_run r;
  pk_cmd *cmd = pkt_fixture("ignore-term", "60", NULL);
  pkt_run_start(&r, rn, cmd);
  pk_cmd_free(cmd);
  pkt_run_until_lines(&r, 1);
  assert_int_equal(pk_proc_kill(r.p, PK_SIGTERM), PK_EUNSUPPORTED);
  assert_int_equal(pk_proc_kill(r.p, PK_SIGINT), PK_EUNSUPPORTED);
  assert_int_equal(pk_proc_kill(r.p, PK_SIGSTOP), PK_EUNSUPPORTED);
  assert_int_equal(pk_proc_kill(r.p, 0), 0); /* alive */
  assert_false(r.exited);
  PKT_ASSERT_OK(pk_proc_kill(r.p, PK_SIGKILL));
  pkt_run_until_exit(&r);
  assert_int_equal(pk_proc_kill(r.p, 0), PK_ESRCH);
  assert_int_equal(pk_result_code(pk_proc_result(r.p)), 1);
  pkt_run_close(&r);
  pk_runner_free(rn);
}

/* No soft stop to wait for: a deadline ends the tree at once, not after
 * the grace (20 s here; the run must end well before it). */
static void timeout_terminates_without_the_grace(void **state) {
  (void)state;
  pk_runner *rn = runner();
  pk_cmd *cmd = pkt_fixture("sleep", "60", NULL);
  PKT_ASSERT_OK(pk_cmd_set_timeout(cmd, 200, 20000, PK_SIGTERM));
  pk_result *res = NULL;
  uint64_t t0 = pkt_now_ms();
  assert_int_equal(pk_output(rn, cmd, &res), PK_ETIMEOUT);
  uint64_t took = pkt_now_ms() - t0;
  assert_int_equal(pk_result_outcome(res), PK_OUTCOME_TIMED_OUT);
  assert_int_equal(pk_result_code(res), 1);
  assert_int_equal(pk_result_signal(res), 0);
  if (took >= 10000)
    fail_msg("the timed-out run took %llu ms: it waited for the grace",
             (unsigned long long)took);
  pk_result_free(res);
  pk_cmd_free(cmd);
  pk_runner_free(rn);
}

/* ---- exit codes ---- */

static void exit_codes_are_32_bit(void **state) {
  (void)state;
  pk_runner *rn = runner();
  static const int codes[] = {
      0,     1,          255, 256, 259 /* STILL_ACTIVE */,
      70000, -1073741510 /* STATUS_CONTROL_C_EXIT */};
  for (size_t i = 0; i < sizeof(codes) / sizeof(codes[0]); i++) {
    char arg[32];
    snprintf(arg, sizeof(arg), "%d", codes[i]);
    pk_cmd *cmd = pkt_fixture("exit", arg, NULL);
    int code = 12345;
    PKT_ASSERT_OK(pk_exit_code(rn, cmd, &code, NULL));
    assert_int_equal(code, codes[i]);
    pk_cmd_free(cmd);
  }
  pk_runner_free(rn);
}

/* ---- what Windows does not have ---- */

static void expect_unsupported(pk_runner *rn, pk_cmd *cmd, const char *what) {
  pk_result *res = NULL;
  assert_int_equal(pk_output(rn, cmd, &res), PK_EUNSUPPORTED);
  if (strstr(pk_result_errmsg(res), what) == NULL)
    fail_msg("the error does not name %s: %s", what, pk_result_errmsg(res));
  assert_int_equal(pk_result_outcome(res), PK_OUTCOME_NONE);
  pk_result_free(res);
  pk_cmd_free(cmd);
}

static void posix_only_options_are_refused(void **state) {
  (void)state;
  pk_runner *rn = runner();
  pk_cmd *cmd = pkt_fixture("echo", "x", NULL);
  PKT_ASSERT_OK(pk_cmd_set_user(cmd, 1000, 1000, NULL, 0));
  expect_unsupported(rn, cmd, "uid/gid");
  cmd = pkt_fixture("echo", "x", NULL);
  PKT_ASSERT_OK(pk_cmd_set_setsid(cmd, true));
  expect_unsupported(rn, cmd, "setsid");
  cmd = pkt_fixture("echo", "x", NULL);
  PKT_ASSERT_OK(pk_cmd_set_umask(cmd, 022));
  expect_unsupported(rn, cmd, "umask");
  cmd = pkt_fixture("echo", "x", NULL);
  PKT_ASSERT_OK(pk_cmd_set_foreground(cmd, true));
  expect_unsupported(rn, cmd, "foreground");
  cmd = pkt_fixture("echo", "x", NULL);
  PKT_ASSERT_OK(pk_cmd_set_mechanism(cmd, PK_MECH_CGROUP_V2));
  expect_unsupported(rn, cmd, "mechanism");
  pk_runner_free(rn);
  pk_runner *other = NULL;
  pk_real_opts o = {.mechanism = PK_MECH_PROCESS_GROUP};
  assert_int_equal(pk_real_runner_new(&o, &other), PK_EUNSUPPORTED);
  assert_null(other);
  o.mechanism = PK_MECH_JOB_OBJECT;
  PKT_ASSERT_OK(pk_real_runner_new(&o, &other));
  pk_runner_free(other);
}

/* What Windows does have: create_no_window is a creation flag there;
 * kill-on-parent-death is always true (the job dies with its holder). */
static void windows_options_run(void **state) {
  (void)state;
  pk_runner *rn = runner();
  pk_cmd *cmd = pkt_fixture("echo", "quiet", NULL);
  PKT_ASSERT_OK(pk_cmd_set_create_no_window(cmd, true));
  PKT_ASSERT_OK(pk_cmd_set_kill_on_parent_death(cmd, true));
  pk_result *res = NULL;
  PKT_ASSERT_OK(pk_output(rn, cmd, &res));
  assert_string_equal(pk_result_stdout(res, NULL), "quiet\n");
  pk_result_free(res);
  pk_cmd_free(cmd);
  pk_runner_free(rn);
}

/* ---- environment ---- */

static char *getenv_of(pk_runner *rn, pk_cmd *cmd, int *code) {
  pk_result *res = NULL;
  int rc = pk_output(rn, cmd, &res);
  *code = pk_result_code(res);
  assert_true(rc == 0 || rc == PK_EEXIT);
  char *text = NULL;
  PKT_ASSERT_OK(pk_result_text(res, PK_STDOUT, true, &text));
  pk_result_free(res);
  pk_cmd_free(cmd);
  return text;
}

/* Windows' variable names have no case: an override or a removal spelled
 * differently still meets the inherited variable, and the child sees one
 * entry. */
static void env_names_ignore_case(void **state) {
  (void)state;
  pkt_setenv("PKT_WIN_CASE", "parent");
  pk_runner *rn = runner();
  int code;
  pk_cmd *cmd = pkt_fixture("getenv", "PKT_WIN_CASE", NULL);
  char *t = getenv_of(rn, cmd, &code);
  assert_int_equal(code, 0);
  assert_string_equal(t, "parent");
  pk_free(t);
  cmd = pkt_fixture("getenv", "PKT_WIN_CASE", NULL);
  PKT_ASSERT_OK(pk_cmd_env_remove(cmd, "pkt_win_case"));
  t = getenv_of(rn, cmd, &code);
  assert_int_equal(code, 1);
  pk_free(t);
  cmd = pkt_fixture("env", NULL);
  PKT_ASSERT_OK(pk_cmd_env_set(cmd, "Pkt_Win_Case", "child"));
  t = getenv_of(rn, cmd, &code);
  assert_int_equal(code, 0);
  const char *hit = strstr(t, "Pkt_Win_Case=child");
  assert_non_null(hit);
  assert_null(strstr(t, "PKT_WIN_CASE=")); /* one entry, the override's */
  pk_free(t);
  /* The program lookup reads the PATH the child gets, however spelled. */
  char dir[1024];
  snprintf(dir, sizeof(dir), "%s", PK_FIXTURE);
  *strrchr(dir, '/') = '\0';
  PKT_ASSERT_OK(pk_cmd_new("pk-fixture", &cmd));
  PKT_ASSERT_OK(pk_cmd_arg(cmd, "exit"));
  PKT_ASSERT_OK(pk_cmd_arg(cmd, "5"));
  PKT_ASSERT_OK(pk_cmd_env_set(cmd, "Path", dir));
  t = getenv_of(rn, cmd, &code);
  assert_int_equal(code, 5);
  pk_free(t);
  cmd = pkt_fixture("env", NULL); /* the allow-list folds case too */
  PKT_ASSERT_OK(pk_cmd_inherit_env(cmd, "pkt_win_case"));
  t = getenv_of(rn, cmd, &code);
  assert_int_equal(code, 0);
  assert_non_null(strstr(t, "PKT_WIN_CASE=parent"));
  assert_null(strstr(t, "PATH=")); /* and nothing else came */
  pk_free(t);
  pk_runner_free(rn);
  pkt_unsetenv("PKT_WIN_CASE");
}

/* ---- stdin and files ---- */

static void stdin_and_files(void **state) {
  (void)state;
  pk_runner *rn = runner();
  size_t big = 3 * 1024 * 1024 + 17; /* past any pipe buffer */
  char *data = malloc(big);
  assert_non_null(data);
  for (size_t i = 0; i < big; i++)
    data[i] = (char)(i * 7);
  pk_cmd *cmd = pkt_fixture("stdin-len", NULL);
  PKT_ASSERT_OK(pk_cmd_set_stdin_bytes(cmd, data, big));
  pk_result *res = NULL;
  PKT_ASSERT_OK(pk_output(rn, cmd, &res));
  char want[32];
  snprintf(want, sizeof(want), "%zu\n", big);
  assert_string_equal(pk_result_stdout(res, NULL), want);
  pk_result_free(res);
  pk_cmd_free(cmd);
  free(data);

  char dir[1024], out[1100];
  snprintf(dir, sizeof(dir), "%s/pk-win-runner-XXXXXX", pkt_tmpdir());
  pkt_mkdtemp(dir);
  snprintf(out, sizeof(out), "%s/out.txt", dir);
  cmd = pkt_fixture("outerr", "to the file", "to the pipe", "0", NULL);
  PKT_ASSERT_OK(pk_cmd_set_output(cmd, PK_STDOUT, PK_OUT_FILE, out));
  PKT_ASSERT_OK(pk_output(rn, cmd, &res));
  assert_string_equal(pk_result_stdout(res, NULL), "");
  assert_string_equal(pk_result_stderr(res, NULL), "to the pipe\n");
  pk_result_free(res);
  pk_cmd_free(cmd);
  cmd = pkt_fixture("cat", NULL); /* the file back, through stdin */
  PKT_ASSERT_OK(pk_cmd_set_stdin_file(cmd, out));
  PKT_ASSERT_OK(pk_output(rn, cmd, &res));
  assert_string_equal(pk_result_stdout(res, NULL), "to the file\n");
  pk_result_free(res);
  pk_cmd_free(cmd);
  cmd = pkt_fixture("cat", NULL);
  PKT_ASSERT_OK(pk_cmd_set_stdin_file(cmd, dir)); /* a directory */
  assert_int_equal(pk_output(rn, cmd, &res), PK_EIO);
  assert_non_null(strstr(pk_result_errmsg(res), "stdin file"));
  pk_result_free(res);
  pk_cmd_free(cmd);
  pkt_rm_rf(dir);
  pk_runner_free(rn);
}

/* ---- accounting ---- */

/* The job's accounting is the whole tree's. wine keeps none (always 0):
 * there the figures must be unknown, never a made-up 0. */
static void accounting_is_the_jobs_or_unknown(void **state) {
  (void)state;
  pk_runner *rn = runner();
  pk_cmd *cmd = pkt_fixture("burn", "0.3", NULL);
  pk_result *res = NULL;
  PKT_ASSERT_OK(pk_output(rn, cmd, &res));
  if (pkt_under_wine()) {
    print_message("not verifiable under wine: its job accounting is a stub "
                  "(CPU time and peak memory are always 0); checked that pk "
                  "reports them unknown\n");
    assert_int_equal(pk_result_cpu_us(res), -1);
    assert_null(pk_result_cpu_scope(res));
    assert_int_equal(pk_result_peak_memory(res), -1);
    assert_null(pk_result_memory_scope(res));
  } else {
    assert_true(pk_result_cpu_us(res) >= 100000); /* 0.3 s of burning */
    assert_string_equal(pk_result_cpu_scope(res), "tree");
    assert_true(pk_result_peak_memory(res) > 0);
    assert_string_equal(pk_result_memory_scope(res), "tree");
  }
  pk_result_free(res);
  pk_cmd_free(cmd);
  pk_runner_free(rn);
}

#define T(f) cmocka_unit_test_setup_teardown(f, pkt_before, pkt_after)

int main(void) {
  const struct CMUnitTest tests[] = {
      T(kill_ends_the_whole_tree),
      T(free_while_running_ends_the_tree),
      T(a_finished_run_lets_the_loop_end),
      T(output_left_in_the_pipe_is_read_to_the_end),
      T(ways_out_of_the_job_are_closed),
      T(only_the_kill_and_the_probe),
      T(timeout_terminates_without_the_grace),
      T(exit_codes_are_32_bit),
      T(posix_only_options_are_refused),
      T(windows_options_run),
      T(env_names_ignore_case),
      T(stdin_and_files),
      T(accounting_is_the_jobs_or_unknown),
  };
  return cmocka_run_group_tests(tests, pkt_setup, NULL);
}
