/* pk.exe under wine: the CLI's main job on Windows. pk run (output, exit
 * codes, timeout), pk caps (the job_object column), and a real command
 * recorded into a cassette and replayed with the program gone. Each pk
 * is run through pk's own real runner. */
#include "harness.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <uv.h>

/* pk ARGS... (NULL-terminated); *out its stdout, returns its exit code. */
static int pk(char **out, const char *first, ...) {
  pk_cmd *cmd;
  PKT_ASSERT_OK(pk_cmd_new(PK_CLI, &cmd));
  va_list ap;
  va_start(ap, first);
  for (const char *a = first; a != NULL; a = va_arg(ap, const char *))
    PKT_ASSERT_OK(pk_cmd_arg(cmd, a));
  va_end(ap);
  PKT_ASSERT_OK(pk_cmd_set_timeout(cmd, 60000, 0, PK_SIGKILL));
  pk_runner *r = NULL;
  PKT_ASSERT_OK(pk_real_runner_new(NULL, &r));
  pk_result *res = NULL;
  int rc = pk_output(r, cmd, &res);
  if (rc != 0 && rc != PK_EEXIT)
    fail_msg("pk %s: %s: %s", first, pk_err_name(rc), pk_result_errmsg(res));
  int code = pk_result_code(res);
  *out = strdup(pk_result_stdout(res, NULL));
  if (code != 0)
    print_message("pk %s: exit %d; stderr: %s", first, code,
                  pk_result_stderr(res, NULL));
  pk_result_free(res);
  pk_runner_free(r);
  pk_cmd_free(cmd);
  return code;
}

static void run_forwards_output_and_codes(void **state) {
  (void)state;
  char *out = NULL;
  assert_int_equal(pk(&out, "--version", NULL), 0);
  assert_memory_equal(out, "pk ", 3);
  free(out);
  assert_int_equal(pk(&out, "run", "--", PK_FIXTURE, "echo", "hi", NULL), 0);
  assert_string_equal(out, "hi\n");
  free(out);
  assert_int_equal(pk(&out, "run", "--", PK_FIXTURE, "exit", "7", NULL), 7);
  free(out);
  /* A deadline: 124, the tree terminated (no grace to wait for). */
  uint64_t t0 = pkt_now_ms();
  assert_int_equal(pk(&out, "run", "--timeout", "0.3", "--grace", "20", "--",
                      PK_FIXTURE, "sleep", "60", NULL),
                   124);
  if (pkt_now_ms() - t0 >= 15000)
    fail_msg("pk run waited for the grace");
  free(out);
  assert_int_equal(pk(&out, "run", "--", "pk-no-such-program", NULL), 127);
  free(out);
}

static void caps_reports_job_object(void **state) {
  (void)state;
  char *out = NULL;
  assert_int_equal(pk(&out, "caps", NULL), 0);
  assert_non_null(strstr(out, "job_object"));
  assert_non_null(strstr(out, "contain_before_exec"));
  free(out);
}

/* The README's main job: record a real command, then replay it with the
 * program gone. */
static void record_then_replay_without_the_program(void **state) {
  (void)state;
  char dir[1024], prog[1100], cas[1100];
  snprintf(dir, sizeof(dir), "%s/pk-win-cli-XXXXXX", pkt_tmpdir());
  pkt_mkdtemp(dir);
  snprintf(prog, sizeof(prog), "%s/tool.exe", dir);
  snprintf(cas, sizeof(cas), "%s/tool.yaml", dir);
  uv_fs_t req;
  PKT_ASSERT_OK(uv_fs_copyfile(NULL, &req, PK_FIXTURE, prog, 0, NULL));
  uv_fs_req_cleanup(&req);
  char *out = NULL;
  assert_int_equal(
      pk(&out, "record", cas, "--", prog, "outerr", "recorded", "e", "3", NULL),
      3);
  assert_string_equal(out, "recorded\n");
  free(out);
  PKT_ASSERT_OK(uv_fs_unlink(NULL, &req, prog, NULL));
  uv_fs_req_cleanup(&req);
  assert_int_equal(
      pk(&out, "replay", cas, "--", prog, "outerr", "recorded", "e", "3", NULL),
      3);
  assert_string_equal(out, "recorded\n");
  free(out);
  /* What was not recorded is a miss, never a run. */
  assert_int_equal(pk(&out, "replay", cas, "--", prog, "echo", "x", NULL), 125);
  free(out);
  pkt_rm_rf(dir);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(run_forwards_output_and_codes),
      cmocka_unit_test(caps_reports_job_object),
      cmocka_unit_test(record_then_replay_without_the_program),
  };
  return cmocka_run_group_tests(tests, pkt_setup, NULL);
}
