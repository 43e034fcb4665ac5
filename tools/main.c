/* pk: the command-line face of processkit. main and the dispatch; one
 * file per subcommand: run.c (pk run; report.c its --report), caps.c,
 * help.c (also --help and the usage shown with errors), record.c and
 * replay.c (both run through run.c), and cassette.c (pk cassette; its
 * subcommands in cassette_*.c).
 * Every command is an entry of usage.def: name, function, summary and
 * usage text, in one place (`pk help` lists them; gen_man.c makes pk.1
 * from the same entries).
 */
#include "cli.h"
#include "cli_os.h"

#include <stdarg.h>
#include <string.h>

#define PK_COMMAND(name, function, summary, synopsis, details)                 \
  {#name, function, summary, synopsis, details},
static const cli_command commands[] = {
#include "usage.def"
};

const cli_command *cli_find(const char *name) {
  for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++)
    if (strcmp(commands[i].name, name) == 0)
      return &commands[i];
  return NULL;
}

static bool is_help(const char *arg) {
  return strcmp(arg, "--help") == 0 || strcmp(arg, "-h") == 0;
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

int main(int argc, char **argv) {
  if (argc >= 2 && strcmp(argv[1], "__guardian") == 0) /* pk run's own */
    return pk_guardian_main(argc - 1, argv + 1);
  cli_os_init();
  if (argc < 2) {
    cli_overview(stderr);
    return EXIT_PK_USAGE;
  }
  if (is_help(argv[1]))
    return cmd_help(0, NULL);
  if (strcmp(argv[1], "--version") == 0) {
    printf("pk %d.%d.%d\n", PK_VERSION_MAJOR, PK_VERSION_MINOR,
           PK_VERSION_PATCH);
    return cli_flush();
  }
  const cli_command *c = cli_find(argv[1]);
  if (c == NULL)
    return cli_unknown(argv[1]);
  /* Help only as the first argument: later, "--help" may be PROGRAM's. */
  if (argc >= 3 && is_help(argv[2])) {
    cli_usage(stdout, c);
    return cli_flush();
  }
  return c->fn(argc - 2, argv + 2);
}
