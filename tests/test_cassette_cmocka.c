/* <pk/cassette_cmocka.h>: one cassette per test, named after the source
 * file and the function that opens it, under $PK_CASSETTE_DIR or the
 * directory pk_cassette_dir() baked in. Records on the first run,
 * replays after; a miss fails PK_CASSETTE_DONE; a test that fails before
 * DONE saves nothing. */
#include "harness.h"

#include <pk/cassette_cmocka.h>
#include <pk/fakes.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <uv.h>

#if !defined(_WIN32)
#include <sys/wait.h>
#include <unistd.h>
#endif

static char dir[1024];

static bool exists(const char *path) {
  uv_fs_t req;
  int rc = uv_fs_stat(NULL, &req, path, NULL);
  uv_fs_req_cleanup(&req);
  return rc == 0;
}

static int group_setup(void **state) {
  (void)state;
  snprintf(dir, sizeof(dir), "%s/pk-cascm-XXXXXX", pkt_tmpdir());
  pkt_mkdtemp(dir);
  pkt_setenv("PK_CASSETTE_DIR", dir);
  pkt_unsetenv("PK_RECORD_MODE");
  pkt_unsetenv("PK_RECORD_ONLY");
  pkt_unsetenv("PK_CASSETTE_STRICT");
  pkt_unsetenv("PK_CASSETTE_SAVE_FAILED");
  pkt_unsetenv("CI");
  return 0;
}

static int group_teardown(void **state) {
  (void)state;
  if (pkt_rm_tree(dir) != 0 || exists(dir))
    return -1;
  pkt_unsetenv("PK_CASSETTE_DIR");
  return 0;
}

static bool cassette_exists(const char *func) {
  char path[1200];
  snprintf(path, sizeof(path), "%s/test_cassette_cmocka/%s.yaml", dir, func);
  return exists(path);
}

static void git_status(pk_runner *r, const char *want) {
  pk_cmd *cmd;
  PKT_ASSERT_OK(pk_cmd_new_list(&cmd, "git", "status", "--short", NULL));
  char *text = NULL;
  PKT_ASSERT_OK(pk_run(r, cmd, &text, NULL));
  assert_string_equal(text, want);
  pk_free(text);
  pk_cmd_free(cmd);
}

/* The code under test, with its cassette: named after this function, so
 * both tests below share it. */
static void status_with_cassette(pk_runner *inner) {
  pk_runner *r = PK_CASSETTE_RUNNER(inner);
  git_status(r, "M a.c");
  PK_CASSETTE_DONE();
}

/* First run: records through the inner runner. */
static void first_run_records(void **state) {
  (void)state;
  assert_false(cassette_exists("status_with_cassette"));
  pk_runner *inner;
  PKT_ASSERT_OK(pk_scripted_new(&inner));
  PKT_ASSERT_OK(pk_script_program(inner, "git", pk_reply_ok(" M a.c\n")));
  status_with_cassette(inner);
  assert_int_equal(pk_scripted_calls(inner), 1);
  pk_runner_free(inner);
  assert_true(cassette_exists("status_with_cassette"));
}

/* Second run: replays; the inner runner knows nothing and is not asked. */
static void second_run_replays(void **state) {
  (void)state;
  pk_runner *inner;
  PKT_ASSERT_OK(pk_scripted_new(&inner));
  status_with_cassette(inner);
  assert_int_equal(pk_scripted_calls(inner), 0);
  pk_runner_free(inner);
}

/* Opened in the test itself: the cassette is named after the test. */
static void named_after_the_test(void **state) {
  (void)state;
  pk_runner *inner;
  PKT_ASSERT_OK(pk_scripted_new(&inner));
  PKT_ASSERT_OK(pk_script_program(inner, "git", pk_reply_ok("?? b\n")));
  pk_runner *r = PK_CASSETTE_RUNNER(inner);
  git_status(r, "?? b");
  assert_false(cassette_exists("named_after_the_test")); /* saved at DONE */
  PK_CASSETTE_DONE();
  assert_true(cassette_exists("named_after_the_test"));
  pk_runner_free(inner);
}

/* ---- a nested group, run in a child: its failures are the subject ---- */

#if !defined(_WIN32)

static pk_runner *nested_inner;

/* A miss the code under test swallows still fails DONE. */
static void nested_miss(void **state) {
  (void)state;
  pkt_setenv("PK_RECORD_MODE", "none");
  pk_runner *r = PK_CASSETTE_RUNNER(nested_inner);
  pkt_unsetenv("PK_RECORD_MODE");
  pk_cmd *cmd;
  PKT_ASSERT_OK(pk_cmd_new_list(&cmd, "git", "push", NULL));
  pk_result *res = NULL;
  assert_int_equal(pk_output(r, cmd, &res), PK_ECASSETTE_MISS);
  pk_result_free(res);
  pk_cmd_free(cmd);
  PK_CASSETTE_DONE(); /* must fail */
  _exit(40);          /* not reached when it does */
}

/* A test failing before DONE: what it recorded is not saved. */
static void nested_abandon(void **state) {
  (void)state;
  pk_runner *r = PK_CASSETTE_RUNNER(nested_inner);
  git_status(r, "M a.c");
  fail_msg("the test fails before PK_CASSETTE_DONE (expected)");
}

/* The next test's open closes the abandoned cassette without saving. */
static void nested_after(void **state) {
  (void)state;
  pk_runner *r = PK_CASSETTE_RUNNER(nested_inner);
  (void)r;
  PK_CASSETTE_DONE();
  if (cassette_exists("nested_abandon"))
    _exit(41);
}

static int nested_group(void) {
  const char *entry = "version: 1\n"
                      "entries:\n"
                      "- program: \"git\"\n"
                      "  args: [\"status\"]\n"
                      "  stdin: {sha256: "
                      "\"e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca4"
                      "95991b7852b855\", bytes: 0}\n"
                      "  exit: {code: 0}\n"
                      "  duration_ms: 1\n"
                      "  output: {stdout_bytes: 0, stdout_lines: 0, "
                      "stderr_bytes: 0, stderr_lines: 0}\n";
  char path[1200];
  snprintf(path, sizeof(path), "%s/test_cassette_cmocka/nested_miss.yaml", dir);
  FILE *fp = fopen(path, "w");
  if (fp == NULL || fputs(entry, fp) < 0 || fclose(fp) != 0)
    return 42;
  if (pk_scripted_new(&nested_inner) != 0 ||
      pk_script_program(nested_inner, "git", pk_reply_ok(" M a.c\n")) != 0)
    return 43;
  const struct CMUnitTest nested[] = {
      cmocka_unit_test(nested_miss),
      cmocka_unit_test(nested_abandon),
      cmocka_unit_test(nested_after),
  };
  return cmocka_run_group_tests_name("nested (2 failures expected)", nested,
                                     NULL, NULL);
}

#endif /* !_WIN32 */

static void failures_fail_the_test(void **state) {
  (void)state;
#if defined(_WIN32)
  /* The nested group's failures must not be this group's: it runs in a
   * forked child, and a cmocka group cannot run inside a test. */
  print_message("skipped: the nested group needs fork (none on Windows)\n");
  skip();
#else
  fflush(NULL);
  pid_t pid = fork();
  assert_true(pid >= 0);
  if (pid == 0) {
    int n = nested_group();
    fflush(NULL);
    _exit(n);
  }
  int st;
  pid_t got;
  while ((got = waitpid(pid, &st, 0)) < 0 && errno == EINTR)
    ;
  assert_int_equal(got, pid);
  assert_true(WIFEXITED(st));
  assert_int_equal(WEXITSTATUS(st), 2); /* nested_miss, nested_abandon */
  assert_false(cassette_exists("nested_abandon"));
  assert_false(cassette_exists("nested_after")); /* nothing recorded */
#endif
}

/* An absolute path: /... on POSIX; on Windows a drive's X:/... or X:\...,
 * or the /... a cross build bakes in (resolved on the current drive). */
static bool is_absolute(const char *p) {
#if defined(_WIN32)
  if (((p[0] >= 'A' && p[0] <= 'Z') || (p[0] >= 'a' && p[0] <= 'z')) &&
      p[1] == ':' && (p[2] == '/' || p[2] == '\\'))
    return true;
  return p[0] == '/' || p[0] == '\\';
#else
  return p[0] == '/';
#endif
}

/* Without PK_CASSETTE_DIR, the directory pk_cassette_dir() baked in: an
 * absolute path in the build tree, not the checkout's tests/. */
static void baked_directory(void **state) {
  (void)state;
  const char *baked = PK_CASSETTE_SOURCE_DIR;
  assert_true(is_absolute(baked));
  assert_null(strstr(baked, PK_SOURCE_DIR "/tests"));
  pkt_unsetenv("PK_CASSETTE_DIR");
  pk_runner *inner;
  PKT_ASSERT_OK(pk_scripted_new(&inner));
  PKT_ASSERT_OK(pk_script_program(inner, "git", pk_reply_ok("clean\n")));
  pk_runner *r = PK_CASSETTE_RUNNER(inner);
  git_status(r, "clean");
  PK_CASSETTE_DONE();
  pkt_setenv("PK_CASSETTE_DIR", dir);
  char path[1024];
  snprintf(path, sizeof(path), "%s/test_cassette_cmocka/baked_directory.yaml",
           baked);
  assert_true(exists(path));
  pkt_rm_rf(baked);
  pk_runner_free(inner);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(first_run_records),
      cmocka_unit_test(second_run_replays),
      cmocka_unit_test(named_after_the_test),
      cmocka_unit_test(failures_fail_the_test),
      cmocka_unit_test(baked_directory),
  };
  return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
