/* Unit tests of the gitw example, one per test double. None needs git:
 * ctest runs this with a PATH where git does not exist. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "gitw.h"

#include <pk/fakes.h>
#include <pk/mock.h>
#include <pk/recording.h>
#include <pk/recording_cmocka.h>

#include <stdlib.h>
#include <string.h>

#define ID "0123456789abcdef0123456789abcdef01234567"
#define ARGS(...)                                                              \
  (const char *const[]){__VA_ARGS__},                                          \
      sizeof((const char *const[]){__VA_ARGS__}) / sizeof(const char *)

/* 1. Scripted runner: teach it answers, test the parsing. */
static void head_and_branch_with_scripted_runner(void **state) {
  (void)state;
  pk_runner *r;
  assert_int_equal(pk_scripted_new(&r), 0);
  assert_int_equal(pk_script_prefix(r, ARGS("git", "rev-parse", "HEAD"),
                                    pk_reply_ok(ID "\n")),
                   0);
  assert_int_equal(pk_script_prefix(r, ARGS("git", "rev-parse", "--abbrev-ref"),
                                    pk_reply_ok("main\n")),
                   0);
  gitw *g;
  assert_int_equal(gitw_new(r, "/repo", &g), 0);
  char id[41];
  assert_int_equal(gitw_head(g, id), 0);
  assert_string_equal(id, ID);
  char *branch = NULL;
  assert_int_equal(gitw_branch(g, &branch), 0);
  assert_string_equal(branch, "main");
  pk_free(branch);
  gitw_free(g);
  pk_runner_free(r);
}

/* Failures come back typed: a failing git is PK_EEXIT, garbage output is
 * PK_EINVAL, a missing git is PK_ENOENT. */
static void failures_with_scripted_runner(void **state) {
  (void)state;
  pk_runner *r;
  assert_int_equal(pk_scripted_new(&r), 0);
  assert_int_equal(
      pk_script_prefix(r, ARGS("git", "rev-parse"),
                       pk_reply_fail(128, "fatal: not a git repository\n")),
      0);
  assert_int_equal(pk_script_then(r, pk_reply_ok("not-an-id\n")), 0);
  assert_int_equal(pk_script_then(r, pk_reply_not_found()), 0);
  gitw *g;
  assert_int_equal(gitw_new(r, "/repo", &g), 0);
  char id[41];
  assert_int_equal(gitw_head(g, id), PK_EEXIT);
  assert_int_equal(gitw_head(g, id), PK_EINVAL);
  assert_int_equal(gitw_head(g, id), PK_ENOENT);
  gitw_free(g);
  pk_runner_free(r);
}

/* 2. Recording runner: check the exact command the wrapper built. */
static void commit_is_built_right_recording(void **state) {
  (void)state;
  pk_runner *answers, *rec;
  assert_int_equal(pk_scripted_new(&answers), 0);
  assert_int_equal(pk_script_program(answers, "git", pk_reply_ok(NULL)), 0);
  assert_int_equal(pk_recording_new(answers, &rec), 0);
  gitw *g;
  assert_int_equal(gitw_new(rec, "/repo", &g), 0);
  assert_int_equal(gitw_commit_all(g, "fix: the thing\n"), 0);
  const pk_call *call = PK_ONLY_CALL(rec);
  PK_ASSERT_CALL_ARGV(call, "git", "commit", "-a", "-F", "-");
  PK_ASSERT_CALL_ENV(call, "GIT_TERMINAL_PROMPT", "0");
  assert_string_equal(pk_call_cwd(call), "/repo");
  size_t len;
  const char *in = pk_call_stdin(call, &len);
  assert_int_equal(len, strlen("fix: the thing\n"));
  assert_memory_equal(in, "fix: the thing\n", len);
  gitw_free(g);
  pk_runner_free(rec);
  pk_runner_free(answers);
}

/* 3. cmocka mock runner: expectations in cmocka's own idiom. */
static void is_clean_with_mock_runner(void **state) {
  (void)state;
  pk_runner *r;
  assert_int_equal(pk_mock_new(&r), 0);
  gitw *g;
  assert_int_equal(gitw_new(r, "/repo", &g), 0);
  pk_mock_expect_call_in("/repo", "git", "diff --quiet");
  pk_mock_will_reply(pk_reply_fail(1, NULL)); /* 1: dirty */
  pk_mock_expect_call_in("/repo", "git", "diff --quiet");
  pk_mock_will_reply(pk_reply_ok(NULL)); /* 0: clean */
  bool clean = true;
  assert_int_equal(gitw_is_clean(g, &clean), 0);
  assert_false(clean);
  assert_int_equal(gitw_is_clean(g, &clean), 0);
  assert_true(clean);
  gitw_free(g);
  pk_runner_free(r);
}

/* 4. Dry-run runner: see what would run, run nothing. */
static void dry_run_shows_the_commands(void **state) {
  (void)state;
  pk_runner *r;
  assert_int_equal(pk_dryrun_new(&r), 0);
  gitw *g;
  assert_int_equal(gitw_new(r, "/repo", &g), 0);
  assert_int_equal(gitw_commit_all(g, "msg"), 0);
  bool clean;
  assert_int_equal(gitw_is_clean(g, &clean), 0);
  assert_true(clean);
  assert_int_equal(pk_dryrun_count(r), 2);
  assert_non_null(strstr(pk_dryrun_line(r, 0), "git commit -a -F -"));
  assert_non_null(strstr(pk_dryrun_line(r, 1), "git diff --quiet"));
  gitw_free(g);
  pk_runner_free(r);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(head_and_branch_with_scripted_runner),
      cmocka_unit_test(failures_with_scripted_runner),
      cmocka_unit_test(commit_is_built_right_recording),
      cmocka_unit_test(is_clean_with_mock_runner),
      cmocka_unit_test(dry_run_shows_the_commands),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
