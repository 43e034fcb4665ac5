/* Uses an installed processkit-fakes: a scripted runner answers
 * `git rev-parse HEAD` without spawning anything, through pk_run (from
 * processkit). Exit 0 on success. */
#include <pk/fakes.h>

#include <stdio.h>
#include <string.h>

int main(void) {
  pk_runner *runner = NULL;
  pk_cmd *cmd = NULL;
  char *text = NULL;
  int status = 1;
  int rc = pk_scripted_new(&runner);
  if (rc == 0)
    rc = pk_script_program(runner, "git", pk_reply_ok("abc123\n"));
  if (rc == 0)
    rc = pk_cmd_new("git", &cmd);
  if (rc == 0)
    rc = pk_cmd_arg(cmd, "rev-parse");
  if (rc == 0)
    rc = pk_cmd_arg(cmd, "HEAD");
  if (rc == 0)
    rc = pk_run(runner, cmd, &text, NULL);
  if (rc != 0) {
    fprintf(stderr, "consumer_fakes: %s: %s\n", pk_err_name(rc),
            pk_strerror(rc));
  } else if (strcmp(text, "abc123") != 0) {
    fprintf(stderr, "consumer_fakes: expected 'abc123', got '%s'\n", text);
  } else if (pk_scripted_calls(runner) != 1) {
    fprintf(stderr, "consumer_fakes: %zu calls, expected 1\n",
            pk_scripted_calls(runner));
  } else {
    printf("consumer_fakes: ok (scripted runner)\n");
    status = 0;
  }
  pk_free(text);
  pk_cmd_free(cmd);
  pk_runner_free(runner);
  return status;
}
