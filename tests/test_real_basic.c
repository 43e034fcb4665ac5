/* The real runner's verbs, results and command options, on every
 * mechanism this host has. */
#include "harness.h"

#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static pk_mechanism mechs[4];
static int nmechs;

/* Run `cmd` with pk_output on each mechanism; check() gets each result. */
static void each_mech(pk_cmd *cmd, void (*check)(const pk_result *)) {
  for (int i = 0; i < nmechs; i++) {
    pkt_snapshot snap;
    pkt_snapshot_take(&snap);
    pk_runner *r = pkt_runner(mechs[i], 0);
    pk_result *res = NULL;
    PKT_ASSERT_OK(pk_output(r, cmd, &res));
    assert_int_equal(pk_result_mechanism(res), mechs[i]);
    check(res);
    pk_result_free(res);
    pk_runner_free(r);
    pkt_snapshot_check(&snap);
  }
}

static void check_echo(const pk_result *res) {
  size_t len;
  const char *out = pk_result_stdout(res, &len);
  assert_int_equal(pk_result_outcome(res), PK_OUTCOME_EXITED);
  assert_int_equal(pk_result_code(res), 0);
  assert_string_equal(out, "hello world\n");
  assert_int_equal(len, 12);
  assert_int_equal(pk_result_total_lines(res, PK_STDOUT), 1);
  assert_int_equal(pk_result_total_bytes(res, PK_STDERR), 0);
  assert_false(pk_result_truncated(res));
  assert_false(pk_result_output_incomplete(res));
  assert_true(pk_result_pid(res) > 0);
  assert_true(pk_result_spawn_method(res)[0] != '\0');
}

static void output_echo(void **state) {
  (void)state;
  pk_cmd *cmd = pkt_fixture("echo", "hello", "world", NULL);
  each_mech(cmd, check_echo);
  pk_cmd_free(cmd);
}

static void check_split(const pk_result *res) {
  assert_int_equal(pk_result_code(res), 3);
  assert_string_equal(pk_result_stdout(res, NULL), "to out\n");
  assert_string_equal(pk_result_stderr(res, NULL), "to err\n");
  assert_int_equal(pk_result_error(res), 0);
}

static void output_nonzero_is_data(void **state) {
  (void)state;
  pk_cmd *cmd = pkt_fixture("outerr", "to out", "to err", "3", NULL);
  each_mech(cmd, check_split);
  pk_cmd_free(cmd);
}

static void check_signalled(const pk_result *res) {
  assert_int_equal(pk_result_outcome(res), PK_OUTCOME_SIGNALLED);
  assert_int_equal(pk_result_signal(res), SIGUSR1);
  assert_int_equal(pk_result_code(res), -1);
}

static void output_signalled(void **state) {
  (void)state;
  char sig[8];
  snprintf(sig, sizeof(sig), "%d", SIGUSR1);
  pk_cmd *cmd = pkt_fixture("raise", sig, NULL);
  each_mech(cmd, check_signalled);
  pk_cmd_free(cmd);
}

static void checked_and_run(void **state) {
  (void)state;
  pk_runner *r = pkt_runner(PK_MECH_AUTO, 0);
  pk_cmd *cmd = pkt_fixture("outerr", "  some text \n", "bad thing", "4", NULL);
  pk_result *res = NULL;
  char *text = NULL;
  text = (char *)"untouched";
  assert_int_equal(pk_run(r, cmd, &text, &res), PK_EEXIT);
  assert_true(pk_is_exit(PK_EEXIT));
  assert_null(text); /* a failed verb gives no text: it is on the result */
  assert_string_equal(pk_result_stdout(res, NULL), "  some text \n\n");
  assert_int_equal(pk_result_code(res), 4);
  assert_int_equal(pk_result_error(res), PK_EEXIT);
  assert_non_null(strstr(pk_result_errmsg(res), "exited with code 4"));
  assert_non_null(strstr(pk_result_errmsg(res), "bad thing"));
  assert_string_equal(pk_result_stderr(res, NULL), "bad thing\n");
  pk_free(text);
  pk_result_free(res);

  int ok[] = {0, 4};
  PKT_ASSERT_OK(pk_cmd_set_accepted(cmd, ok, 2));
  PKT_ASSERT_OK(pk_checked(r, cmd, &res));
  assert_int_equal(pk_result_code(res), 4);
  pk_result_free(res);
  PKT_ASSERT_OK(pk_run(r, cmd, &text, NULL));
  assert_string_equal(text, "some text");
  pk_free(text);
  pk_cmd_free(cmd);

  cmd = pkt_fixture("raise", "15", NULL);
  assert_int_equal(pk_checked(r, cmd, &res), PK_ESIGNALLED);
  assert_non_null(strstr(pk_result_errmsg(res), "signal 15"));
  pk_result_free(res);
  pk_cmd_free(cmd);
  pk_runner_free(r);
}

static void exit_code_and_probe(void **state) {
  (void)state;
  pk_runner *r = pkt_runner(PK_MECH_AUTO, 0);
  int code;
  bool yes;
  pk_cmd *cmd = pkt_fixture("exit", "17", NULL);
  PKT_ASSERT_OK(pk_exit_code(r, cmd, &code, NULL));
  assert_int_equal(code, 17);
  pk_result *res = NULL;
  assert_int_equal(pk_probe(r, cmd, &yes, &res), PK_EEXIT);
  assert_int_equal(pk_result_code(res), 17);
  pk_result_free(res);
  pk_cmd_free(cmd);
  cmd = pkt_fixture("exit", "0", NULL);
  PKT_ASSERT_OK(pk_probe(r, cmd, &yes, NULL));
  assert_true(yes);
  pk_cmd_free(cmd);
  cmd = pkt_fixture("exit", "1", NULL);
  PKT_ASSERT_OK(pk_probe(r, cmd, &yes, NULL));
  assert_false(yes);
  pk_cmd_free(cmd);
  pk_runner_free(r);
}

static void not_found_names_dirs(void **state) {
  (void)state;
  pkt_snapshot snap;
  pkt_snapshot_take(&snap);
  pk_runner *r = pkt_runner(PK_MECH_AUTO, 0);
  pk_cmd *cmd;
  PKT_ASSERT_OK(pk_cmd_new("pk-no-such-program", &cmd));
  PKT_ASSERT_OK(pk_cmd_env_set(cmd, "PATH", "/nonexistent-a:/nonexistent-b"));
  pk_result *res = NULL;
  assert_int_equal(pk_output(r, cmd, &res), PK_ENOENT);
  assert_true(pk_is_not_found(pk_result_error(res)));
  assert_true(pk_is_spawn_error(PK_ENOENT));
  assert_int_equal(pk_result_outcome(res), PK_OUTCOME_NONE);
  assert_non_null(strstr(pk_result_errmsg(res), "pk-no-such-program"));
  assert_non_null(
      strstr(pk_result_errmsg(res), "/nonexistent-a:/nonexistent-b"));
  pk_result_free(res);
  pk_cmd_free(cmd);
  PKT_ASSERT_OK(pk_cmd_new("/nonexistent/prog", &cmd));
  assert_int_equal(pk_output(r, cmd, &res), PK_ENOENT);
  assert_string_equal(pk_result_stage(res), "exec");
  pk_result_free(res);
  pk_cmd_free(cmd);
  pk_runner_free(r);
  pkt_snapshot_check(&snap);
}

static void bad_cwd_is_distinct(void **state) {
  (void)state;
  pkt_snapshot snap;
  pkt_snapshot_take(&snap);
  pk_runner *r = pkt_runner(PK_MECH_AUTO, 0);
  pk_cmd *cmd = pkt_fixture("cwd", NULL);
  PKT_ASSERT_OK(pk_cmd_set_cwd(cmd, "/nonexistent-dir-pk"));
  pk_result *res = NULL;
  assert_int_equal(pk_output(r, cmd, &res), PK_EBADCWD);
  assert_string_equal(pk_result_stage(res), "chdir");
  assert_non_null(strstr(pk_result_errmsg(res), "/nonexistent-dir-pk"));
  pk_result_free(res);
  PKT_ASSERT_OK(pk_cmd_set_cwd(cmd, "/tmp"));
  PKT_ASSERT_OK(pk_output(r, cmd, &res));
  assert_string_equal(pk_result_stdout(res, NULL), "/tmp\n");
  pk_result_free(res);
  pk_cmd_free(cmd);
  pk_runner_free(r);
  pkt_snapshot_check(&snap);
}

static void not_executable(void **state) {
  (void)state;
  char dir[] = "/tmp/pk-test-XXXXXX";
  assert_non_null(mkdtemp(dir));
  char noexec[64], badfmt[64];
  snprintf(noexec, sizeof(noexec), "%s/noexec", dir);
  snprintf(badfmt, sizeof(badfmt), "%s/badfmt", dir);
  int fd = open(noexec, O_CREAT | O_WRONLY, 0644);
  assert_true(fd >= 0);
  close(fd);
  fd = open(badfmt, O_CREAT | O_WRONLY, 0755);
  assert_true(fd >= 0);
  assert_int_equal(write(fd,
                         "\x7f"
                         "ELF garbage",
                         12),
                   12);
  close(fd);
  pk_runner *r = pkt_runner(PK_MECH_AUTO, 0);
  pk_cmd *cmd;
  pk_result *res = NULL;
  PKT_ASSERT_OK(pk_cmd_new(noexec, &cmd));
  assert_int_equal(pk_output(r, cmd, &res), PK_EACCES);
  pk_result_free(res);
  pk_cmd_free(cmd);
  PKT_ASSERT_OK(pk_cmd_new(badfmt, &cmd));
  assert_int_equal(pk_output(r, cmd, &res), PK_ENOEXEC);
  assert_int_equal(pk_result_os_errno(res), 8 /* ENOEXEC */);
  pk_result_free(res);
  pk_cmd_free(cmd);
  /* A bare name found on PATH but not executable. */
  PKT_ASSERT_OK(pk_cmd_new("noexec", &cmd));
  PKT_ASSERT_OK(pk_cmd_env_set(cmd, "PATH", dir));
  assert_int_equal(pk_output(r, cmd, &res), PK_EACCES);
  assert_non_null(strstr(pk_result_errmsg(res), "not executable"));
  pk_result_free(res);
  pk_cmd_free(cmd);
  pk_runner_free(r);
  unlink(noexec);
  unlink(badfmt);
  rmdir(dir);
}

static void stdin_modes(void **state) {
  (void)state;
  pk_runner *r = pkt_runner(PK_MECH_AUTO, 0);
  pk_cmd *cmd = pkt_fixture("cat", NULL);
  pk_result *res = NULL;
  PKT_ASSERT_OK(pk_output(r, cmd, &res)); /* default: EOF at once */
  assert_int_equal(pk_result_total_bytes(res, PK_STDOUT), 0);
  pk_result_free(res);
  PKT_ASSERT_OK(pk_cmd_set_stdin_bytes(cmd, "a\0b\n", 4));
  PKT_ASSERT_OK(pk_output(r, cmd, &res));
  size_t len;
  const char *out = pk_result_stdout(res, &len);
  assert_int_equal(len, 4);
  assert_memory_equal(out, "a\0b\n", 4);
  pk_result_free(res);
  char path[] = "/tmp/pk-stdin-XXXXXX";
  int fd = mkstemp(path);
  assert_true(fd >= 0);
  assert_int_equal(write(fd, "from file\n", 10), 10);
  close(fd);
  PKT_ASSERT_OK(pk_cmd_set_stdin_file(cmd, path));
  PKT_ASSERT_OK(pk_output(r, cmd, &res));
  assert_string_equal(pk_result_stdout(res, NULL), "from file\n");
  pk_result_free(res);
  unlink(path);
  assert_int_equal(pk_output(r, cmd, &res), PK_EIO);
  assert_non_null(strstr(pk_result_errmsg(res), path));
  pk_result_free(res);
  pk_cmd_free(cmd);
  pk_runner_free(r);
}

static void output_to_file_and_null(void **state) {
  (void)state;
  pk_runner *r = pkt_runner(PK_MECH_AUTO, 0);
  char path[] = "/tmp/pk-out-XXXXXX";
  int fd = mkstemp(path);
  assert_true(fd >= 0);
  close(fd);
  pk_cmd *cmd = pkt_fixture("outerr", "O", "E", "0", NULL);
  PKT_ASSERT_OK(pk_cmd_set_output(cmd, PK_STDOUT, PK_OUT_FILE, path));
  PKT_ASSERT_OK(pk_cmd_set_output(cmd, PK_STDERR, PK_OUT_NULL, NULL));
  assert_int_equal(pk_cmd_set_output(cmd, PK_STDERR, PK_OUT_FILE, NULL),
                   PK_EINVAL);
  pk_result *res = NULL;
  PKT_ASSERT_OK(pk_output(r, cmd, &res));
  assert_int_equal(pk_result_total_bytes(res, PK_STDOUT), 0);
  assert_int_equal(pk_result_total_bytes(res, PK_STDERR), 0);
  pk_result_free(res);
  char buf[16] = {0};
  fd = open(path, O_RDONLY);
  assert_int_equal(read(fd, buf, sizeof(buf)), 2);
  close(fd);
  assert_string_equal(buf, "O\n");
  unlink(path);
  pk_cmd_free(cmd);
  pk_runner_free(r);
}

static void umask_and_setsid(void **state) {
  (void)state;
  pk_runner *r = pkt_runner(PK_MECH_AUTO, 0);
  pk_cmd *cmd = pkt_fixture("umask", NULL);
  PKT_ASSERT_OK(pk_cmd_set_umask(cmd, 027));
  assert_int_equal(pk_cmd_set_umask(cmd, 01000), PK_EINVAL);
  char *text = NULL;
  PKT_ASSERT_OK(pk_run(r, cmd, &text, NULL));
  assert_string_equal(text, "0027");
  pk_free(text);
  pk_cmd_free(cmd);
  for (int i = 0; i < nmechs; i++) {
    pk_runner *rm = pkt_runner(mechs[i], 0);
    cmd = pkt_fixture("pgid", NULL);
    PKT_ASSERT_OK(pk_cmd_set_setsid(cmd, true));
    pk_result *res = NULL;
    PKT_ASSERT_OK(pk_checked(rm, cmd, &res));
    int pid, pgid, sid, ppid;
    assert_int_equal(sscanf(pk_result_stdout(res, NULL),
                            "pid %d pgid %d sid %d ppid %d", &pid, &pgid, &sid,
                            &ppid),
                     4);
    assert_int_equal(pid, pgid);
    assert_int_equal(pid, sid);
    assert_int_equal(ppid, getpid());
    pk_result_free(res);
    pk_cmd_free(cmd);
    pk_runner_free(rm);
  }
  pk_runner_free(r);
}

static void mechanism_is_reported_and_cgroup_is_private(void **state) {
  (void)state;
  if (pk_mechanism_available(PK_MECH_CGROUP_V2) != 0) {
    assert_int_equal(pk_mechanism_best(), PK_MECH_PROCESS_GROUP);
    skip();
  }
  assert_int_equal(pk_mechanism_best(), PK_MECH_CGROUP_V2);
  pk_runner *r = pkt_runner(PK_MECH_AUTO, 0);
  pk_cmd *cmd = pkt_fixture("cgroup", NULL);
  char *a = NULL, *b = NULL;
  PKT_ASSERT_OK(pk_run(r, cmd, &a, NULL));
  PKT_ASSERT_OK(pk_run(r, cmd, &b, NULL));
  assert_non_null(strstr(a, "0::/"));
  assert_non_null(strstr(a, "/pk-"));
  assert_string_not_equal(a, b); /* a fresh group per run */
  pk_free(a);
  pk_free(b);
  pk_cmd_free(cmd);
  pk_runner_free(r);
}

static void lines_callback_on_caller_loop(void **state);

int main(void) {
  nmechs = pkt_mechanisms(mechs);
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(output_echo),
      cmocka_unit_test(output_nonzero_is_data),
      cmocka_unit_test(output_signalled),
      cmocka_unit_test(checked_and_run),
      cmocka_unit_test(exit_code_and_probe),
      cmocka_unit_test(not_found_names_dirs),
      cmocka_unit_test(bad_cwd_is_distinct),
      cmocka_unit_test(not_executable),
      cmocka_unit_test(stdin_modes),
      cmocka_unit_test(output_to_file_and_null),
      cmocka_unit_test(umask_and_setsid),
      cmocka_unit_test(mechanism_is_reported_and_cgroup_is_private),
      cmocka_unit_test(lines_callback_on_caller_loop),
  };
  return cmocka_run_group_tests(tests, pkt_setup, NULL);
}

/* ------------------------------------------------ event API, own loop */

typedef struct lines_seen {
  char text[4096];
  size_t len;
  int exits;
} lines_seen;

static void on_line(pk_proc *p, pk_stream s, const char *line, size_t len,
                    void *data) {
  (void)p;
  lines_seen *ls = data;
  ls->len += (size_t)snprintf(ls->text + ls->len, sizeof(ls->text) - ls->len,
                              "%d:%.*s|", (int)s, (int)len, line);
}

static void on_exit_cb(pk_proc *p, void *data) {
  lines_seen *ls = data;
  ls->exits++;
  assert_true(pk_proc_done(p));
  assert_non_null(pk_proc_result(p));
}

static void lines_callback_on_caller_loop(void **state) {
  (void)state;
  pkt_snapshot snap;
  pkt_snapshot_take(&snap);
  uv_loop_t loop;
  assert_int_equal(uv_loop_init(&loop), 0);
  pk_runner *r = pkt_runner(PK_MECH_AUTO, 0);
  pk_cmd *cmd = pkt_fixture("lines", "3", NULL);
  lines_seen ls = {0};
  pk_start_opts o = {
      .loop = &loop, .on_line = on_line, .on_exit = on_exit_cb, .data = &ls};
  pk_proc *p = NULL;
  PKT_ASSERT_OK(pk_start(r, cmd, &o, &p));
  assert_int_equal(ls.exits, 0); /* never from inside pk_start */
  assert_true(pk_proc_pid(p) > 0);
  assert_int_equal(pk_proc_wait(p), PK_EINVAL); /* caller's loop */
  uv_run(&loop, UV_RUN_DEFAULT);
  assert_int_equal(ls.exits, 1);
  assert_string_equal(ls.text, "1:line 1|1:line 2|1:line 3|");
  assert_int_equal(pk_proc_kill(p, SIGTERM), PK_ESRCH);
  pk_proc_free(p);
  uv_run(&loop, UV_RUN_DEFAULT);
  assert_int_equal(uv_loop_close(&loop), 0);
  pk_cmd_free(cmd);
  pk_runner_free(r);
  pkt_snapshot_check(&snap);
}
