/* Uses an installed processkit-mock: a cmocka test whose mock runner
 * checks the command and answers it (the reply comes from
 * processkit-fakes, the verb from processkit). Exit 0 on success. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>
#include <pk/mock.h>

static void git_log_is_mocked(void **state) {
  (void)state;
  pk_runner *runner = NULL;
  pk_cmd *cmd = NULL;
  char *text = NULL;
  assert_int_equal(pk_mock_new(&runner), 0);
  pk_mock_expect_call("git", "log -n 1");
  pk_mock_will_reply(pk_reply_ok("abc fix\n"));
  assert_int_equal(pk_cmd_new("git", &cmd), 0);
  assert_int_equal(pk_cmd_arg(cmd, "log"), 0);
  assert_int_equal(pk_cmd_arg(cmd, "-n"), 0);
  assert_int_equal(pk_cmd_arg(cmd, "1"), 0);
  assert_int_equal(pk_run(runner, cmd, &text, NULL), 0);
  assert_string_equal(text, "abc fix");
  assert_int_equal(pk_mock_calls(runner), 1);
  pk_free(text);
  pk_cmd_free(cmd);
  pk_runner_free(runner);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(git_log_is_mocked),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
