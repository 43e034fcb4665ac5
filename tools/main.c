/* pk: the command-line face of processkit. main and the dispatch; one
 * file per subcommand: run.c (pk run, report.c its --report), caps.c.
 *
 *   pk run [--timeout SEC] [--grace SEC] [--mechanism M] [--report FILE]
 *          -- PROGRAM [ARG...]
 *   pk caps [--markdown]
 */
#include "cli.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdarg.h>
#include <string.h>

void usage(FILE *f) {
  fputs("usage: pk run [--timeout SEC] [--grace SEC]\n"
        "              [--mechanism auto|cgroup_v2|process_group]\n"
        "              [--report FILE] -- PROGRAM [ARG...]\n"
        "       pk caps [--markdown]\n",
        f);
}

int fail(int err, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  fprintf(stderr, "pk: %s: ", pk_err_name(err));
  vfprintf(stderr, fmt, ap);
  fputc('\n', stderr);
  va_end(ap);
  return EXIT_PK_FAIL;
}

/* Started with fd 0, 1 or 2 closed: /dev/null there, before anything of
 * pk's can take the number and reach the child as a standard stream. */
static void fill_closed_std_fds(void) {
  for (int fd = 0; fd < 3; fd++)
    if (fcntl(fd, F_GETFD) < 0 && errno == EBADF &&
        open("/dev/null", O_RDWR) < 0)
      return;
}

int main(int argc, char **argv) {
  if (argc >= 2 && strcmp(argv[1], "__guardian") == 0) /* pk run's own */
    return pk_guardian_main(argc - 1, argv + 1);
  fill_closed_std_fds();
  signal(SIGPIPE, SIG_IGN);
  if (argc >= 2 && strcmp(argv[1], "run") == 0)
    return cmd_run(argc - 2, argv + 2);
  if (argc >= 2 && strcmp(argv[1], "caps") == 0)
    return cmd_caps(argc - 2, argv + 2);
  if (argc >= 2 &&
      (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0)) {
    usage(stdout);
    return 0;
  }
  fail(PK_EINVAL, "unknown command '%s'", argc >= 2 ? argv[1] : "");
  usage(stderr);
  return EXIT_PK_FAIL;
}
