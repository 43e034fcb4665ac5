/* pk cassette: reserved. Its usage (the spec) is in usage.def already; a later
 * change, built on cassettes/, fills in this function. Until then it
 * fails with PK_EUNSUPPORTED (exit 125). */
#include "cli.h"

int cmd_cassette(int argc, char **argv) {
  (void)argc;
  (void)argv;
  /* Not built yet: the cassette CLI change replaces this body. */
  return fail(PK_EUNSUPPORTED, "pk cassette is not built yet");
}
