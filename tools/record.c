/* pk record CASSETTE [options] -- PROGRAM [ARG...]: run for real,
 * contained as by pk run, pass the output through, and append the run to
 * CASSETTE (created when missing). The run itself is run.c's. */
#include "cli.h"

#include <string.h>

/* CASSETTE first, then pk run's options for a recording. */
int cassette_command(run_kind kind, int argc, char **argv) {
  const char *name = kind == RUN_RECORD ? "record" : "replay";
  if (argc < 1 || argv[0][0] == '\0' || strcmp(argv[0], "--") == 0 ||
      argv[0][0] == '-') {
    fail(PK_EINVAL, "pk %s needs a CASSETTE file first", name);
    cli_synopsis(stderr, cli_find(name));
    return EXIT_PK_FAIL;
  }
  return run_command(kind, argv[0], argc - 1, argv + 1);
}

int cmd_record(int argc, char **argv) {
  return cassette_command(RUN_RECORD, argc, argv);
}
