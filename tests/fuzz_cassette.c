/* libFuzzer target for the cassette reader (RELIABILITY C4): any input is
 * either refused with PK_ECASSETTE_INVALID and a located message, or read;
 * what is read is written back, and parse(emit(x)) == x with emit giving
 * the same bytes again. Built with -DPK_FUZZ=ON by clang (tools/dev fuzz).
 */
#include "model.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void die(const char *what, const char *detail) {
  fprintf(stderr, "fuzz_cassette: %s\n%s\n", what, detail ? detail : "");
  abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  pkc_file *f = NULL, *g = NULL;
  pkc_error err;
  int rc = pkc_parse("fuzz", (const char *)data, size, &f, &err);
  if (rc != 0) {
    if (f != NULL || err.code != rc || strncmp(err.msg, "fuzz:", 5) != 0)
      die("a rejection without its message", err.msg);
    if (rc != PK_ECASSETTE_INVALID && rc != PK_ENOMEM)
      die("an unexpected error code", err.msg);
    return 0;
  }
  char *a = NULL, *b = NULL;
  size_t na = 0, nb = 0;
  if (pkc_emit(f, &a, &na) != 0)
    die("emit refused what parse accepted", NULL);
  if (pkc_parse("emitted", a, na, &g, &err) != 0)
    die(err.msg, a);
  if (!pkc_file_equal(f, g))
    die("parse(emit(x)) != x", a);
  if (pkc_emit(g, &b, &nb) != 0 || na != nb || memcmp(a, b, na) != 0)
    die("emit is not deterministic", a);
  pk_free(a);
  pk_free(b);
  pkc_file_free(f);
  pkc_file_free(g);
  return 0;
}
