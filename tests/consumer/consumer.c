/* Uses an installed processkit: runs `echo hi` through the real runner
 * with pk_run and checks the text. Exit 0 on success. */
#include <pk/pk.h>

#include <stdio.h>
#include <string.h>

int main(void) {
  pk_runner *runner = NULL;
  pk_cmd *cmd = NULL;
  pk_result *res = NULL;
  char *text = NULL;
  int status = 1;
  int rc = pk_real_runner_new(NULL, &runner);
  if (rc == 0)
    rc = pk_cmd_new("echo", &cmd);
  if (rc == 0)
    rc = pk_cmd_arg(cmd, "hi");
  if (rc == 0)
    rc = pk_run(runner, cmd, &text, &res);
  if (rc != 0) {
    fprintf(stderr, "consumer: %s: %s\n", pk_err_name(rc),
            res ? pk_result_errmsg(res) : pk_strerror(rc));
  } else if (strcmp(text, "hi") != 0) {
    fprintf(stderr, "consumer: expected 'hi', got '%s'\n", text);
  } else {
    printf("consumer: ok (processkit %d.%d.%d, %s, %s)\n", PK_VERSION_MAJOR,
           PK_VERSION_MINOR, PK_VERSION_PATCH,
           pk_mechanism_name(pk_result_mechanism(res)),
           pk_result_spawn_method(res));
    status = 0;
  }
  pk_free(text);
  pk_result_free(res);
  pk_cmd_free(cmd);
  pk_runner_free(runner);
  return status;
}
