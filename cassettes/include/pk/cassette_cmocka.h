/* processkit: one cassette per cmocka test, in one line.
 *
 * How to use:
 *   1. Include <setjmp.h>, <stdarg.h>, <stddef.h>, <stdint.h> and
 *      <cmocka.h> first (cmocka needs them), then this header.
 *   2. In a test:
 *        static void test_status(void **state) {
 *          pk_runner *r = PK_CASSETTE_RUNNER(real_runner);
 *          ... hand r to the code under test ...
 *          PK_CASSETTE_DONE();
 *        }
 *      The cassette is <dir>/<source file stem>/<test function>.yaml,
 *      where <dir> is $PK_CASSETTE_DIR, else the directory the CMake
 *      helper pk_cassette_dir(target DIR) baked in (ctest runs tests in
 *      the build directory, so a relative path would land there), else
 *      "cassettes". The suite records on its first run (mode once) and
 *      replays after; in CI (CI set) it only replays.
 *   3. PK_CASSETTE_DONE() saves and fails the test when a command missed
 *      (even if the code under test swallowed the error), listing each
 *      miss with a paste-ready line to re-record this test only; with
 *      PK_CASSETTE_STRICT=1 also on repeats and unused entries.
 *
 * A test that fails before PK_CASSETTE_DONE (a cmocka assertion jumps out
 * of it) saves nothing new: a half-recorded cassette would replay as
 * misses forever. Its cassette is closed, without saving, by the next
 * PK_CASSETTE_RUNNER or at exit; set PK_CASSETTE_SAVE_FAILED=1 to save
 * it anyway. Options: PK_CASSETTE_RUNNER_OPTS(inner, &opts) (opts.inner
 * is set from inner).
 *
 * Not thread-safe across tests run in parallel threads of one process
 * (cmocka runs a group's tests one after the other).
 */
#ifndef PK_CASSETTE_CMOCKA_H
#define PK_CASSETTE_CMOCKA_H

#include <pk/cassette.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#ifdef __cplusplus
extern "C" {
#endif

#ifndef PK_CASSETTE_SOURCE_DIR
#define PK_CASSETTE_SOURCE_DIR "cassettes"
#endif

/* The test's open cassette (one translation unit runs one test at a
 * time). */
static pk_cassette *pk__cmocka_cassette;

static inline void pk__cmocka_cassette_abandon(void) {
  pk_cassette *c = pk__cmocka_cassette;
  pk__cmocka_cassette = NULL;
  if (c == NULL)
    return;
  const char *keep = getenv("PK_CASSETTE_SAVE_FAILED");
  if (keep == NULL || strcmp(keep, "1") != 0)
    pk_cassette_discard(c);
  pk_cassette_close(c, NULL, 0);
}

static inline pk_runner *pk__cmocka_cassette_open(pk_runner *inner,
                                                  const pk_cassette_opts *o,
                                                  const char *file,
                                                  const char *func, int line) {
  static int registered;
  if (!registered) {
    registered = 1;
    atexit(pk__cmocka_cassette_abandon);
  }
  pk__cmocka_cassette_abandon(); /* a test that failed before DONE */
  const char *dir = getenv("PK_CASSETTE_DIR");
  if (dir == NULL || *dir == '\0')
    dir = PK_CASSETTE_SOURCE_DIR;
  const char *base = file;
  for (const char *p = file; *p != '\0'; p++)
    if (*p == '/' || *p == '\\')
      base = p + 1;
  size_t stem = strcspn(base, ".");
  char path[4096];
  snprintf(path, sizeof(path), "%s/%.*s/%s.yaml", dir, (int)stem, base, func);
  pk_cassette_opts opts;
  if (o != NULL)
    opts = *o;
  else
    memset(&opts, 0, sizeof(opts));
  opts.inner = inner;
  char err[2048];
  int rc = pk_cassette_make_dirs(path);
  if (rc != 0) {
    print_error("%s: cannot create the cassette directory: %s\n", path,
                pk_strerror(rc));
    _fail(file, line);
  }
  rc = pk_cassette_open(path, &opts, &pk__cmocka_cassette, err, sizeof(err));
  if (rc != 0) {
    print_error("pk: %s: %s\n", pk_err_name(rc), err);
    _fail(file, line);
  }
  return pk_cassette_runner(pk__cmocka_cassette);
}

static inline void pk__cmocka_cassette_done(const char *file, int line) {
  pk_cassette *c = pk__cmocka_cassette;
  pk__cmocka_cassette = NULL;
  if (c == NULL)
    return;
  static char err[16384];
  int rc = pk_cassette_close(c, err, sizeof(err));
  if (rc != 0) {
    print_error("pk: %s: %s\n", pk_err_name(rc), err);
    _fail(file, line);
  }
}

#define PK_CASSETTE_RUNNER(inner)                                              \
  pk__cmocka_cassette_open((inner), NULL, __FILE__, __func__, __LINE__)
#define PK_CASSETTE_RUNNER_OPTS(inner, opts)                                   \
  pk__cmocka_cassette_open((inner), (opts), __FILE__, __func__, __LINE__)
#define PK_CASSETTE_DONE() pk__cmocka_cassette_done(__FILE__, __LINE__)

#ifdef __cplusplus
}
#endif
#endif /* PK_CASSETTE_CMOCKA_H */
