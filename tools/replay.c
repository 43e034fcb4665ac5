/* pk replay CASSETTE [options] -- PROGRAM [ARG...]: never spawn; write
 * the matching entry's stdout and stderr byte-exact in their recorded
 * order and exit as pk run would have. The run itself is run.c's (the
 * cassette runner plays the entry through the same pump). */
#include "cli.h"

int cmd_replay(int argc, char **argv) {
  return cassette_command(RUN_REPLAY, argc, argv);
}
