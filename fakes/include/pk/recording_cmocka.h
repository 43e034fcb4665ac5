/* processkit: cmocka assertions over a recording runner's calls.
 *
 * How to use:
 *   1. Include <setjmp.h>, <stdarg.h>, <stddef.h>, <stdint.h> and
 *      <cmocka.h> first (cmocka needs them), then this header.
 *   2. Wrap the runner the code under test gets with pk_recording_new().
 *   3. Assert on what ran:
 *        PK_ASSERT_CALLED(rec, 1);
 *        const pk_call *c = PK_ONLY_CALL(rec);
 *        PK_ASSERT_CALL_ARGV(c, "git", "commit", "-m", "x");
 *        PK_ASSERT_CALL_ENV(c, "GIT_AUTHOR_NAME", "bot");
 *   On failure each macro prints a readable account of the call(s) with
 *   cmocka's print_error() and fails the test at the macro's line.
 *
 * The recorder itself (pk/recording.h) needs no cmocka; only this header
 * does, so other test frameworks can use the recorder as it is.
 */
#ifndef PK_RECORDING_CMOCKA_H
#define PK_RECORDING_CMOCKA_H

#include <pk/recording.h>

#include <string.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Print a heap message from the library (or a fallback), then free it. */
static inline void pk__cmocka_print(char *msg) {
  const char *m = msg != NULL ? msg : "(out of memory formatting)\n";
  size_t len = strlen(m);
  print_error("%s%s", m, len > 0 && m[len - 1] == '\n' ? "" : "\n");
  pk_free(msg);
}

/* "  call: git commit ..." */
static inline void pk__cmocka_print_call(const pk_call *c) {
  char *f = pk_call_format(c);
  print_error("  call: %s\n", f != NULL ? f : "(out of memory formatting)");
  pk_free(f);
}

/* Fail unless exactly n calls were recorded; lists the calls. */
#define PK_ASSERT_CALLED(rec, n)                                               \
  do {                                                                         \
    size_t pk_want_ = (size_t)(n);                                             \
    size_t pk_have_ = pk_recording_count(rec);                                 \
    if (pk_have_ != pk_want_) {                                                \
      print_error("expected %zu call(s), recorded %zu:\n", pk_want_,           \
                  pk_have_);                                                   \
      pk__cmocka_print(pk_recording_format(rec));                              \
      fail();                                                                  \
    }                                                                          \
  } while (0)

static inline const pk_call *pk__cmocka_only_call(const pk_runner *rec,
                                                  const char *file, int line) {
  const pk_call *c = NULL;
  char *why = NULL;
  if (pk_recording_only_call(rec, &c, &why) != 0) {
    pk__cmocka_print(why);
    _fail(file, line);
  }
  return c;
}

/* The one recorded call; fails (listing the calls) unless exactly one. */
#define PK_ONLY_CALL(rec) pk__cmocka_only_call((rec), __FILE__, __LINE__)
#define PK_ASSERT_ONLY_CALL(rec) ((void)PK_ONLY_CALL(rec))

/* Fail unless the call's program then args are exactly the given words;
 * prints an element-by-element diff. PK_ASSERT_CALL_ARGV(c, "git", "st")*/
#define PK_ASSERT_CALL_ARGV(call, ...)                                         \
  do {                                                                         \
    const char *const pk_want_[] = {__VA_ARGS__};                              \
    size_t pk_n_ = sizeof(pk_want_) / sizeof(pk_want_[0]);                     \
    if (!pk_call_argv_equal((call), pk_want_, pk_n_)) {                        \
      pk__cmocka_print(pk_call_argv_diff((call), pk_want_, pk_n_));            \
      fail();                                                                  \
    }                                                                          \
  } while (0)

/* Fail unless the call has the flag (see pk_call_has_flag). */
#define PK_ASSERT_CALL_HAS_FLAG(call, flag)                                    \
  do {                                                                         \
    if (!pk_call_has_flag((call), (flag))) {                                   \
      print_error("flag %s not among the arguments\n", (flag));                \
      pk__cmocka_print_call(call);                                             \
      fail();                                                                  \
    }                                                                          \
  } while (0)

static inline const char *pk__cmocka_env_text(pk_env_state s) {
  return s == PK_ENV_SET       ? "set"
         : s == PK_ENV_REMOVED ? "removed"
                               : "untouched";
}

/* 0 when name is in state want (with value, for PK_ENV_SET), else prints
 * what it is instead and returns -1. */
static inline int pk__cmocka_env_check(const pk_call *c, const char *name,
                                       pk_env_state want, const char *value) {
  const char *have = NULL;
  pk_env_state s = pk_call_env(c, name, &have);
  if (s == want &&
      (want != PK_ENV_SET || (have && value && strcmp(have, value) == 0)))
    return 0;
  if (want == PK_ENV_SET)
    print_error("env %s: expected set to '%s', ", name, value ? value : "");
  else
    print_error("env %s: expected %s, ", name, pk__cmocka_env_text(want));
  if (s == PK_ENV_SET)
    print_error("got set to '%s'\n", have ? have : "");
  else
    print_error("got %s\n", pk__cmocka_env_text(s));
  pk__cmocka_print_call(c);
  return -1;
}

/* Fail unless the call sets name to value. */
#define PK_ASSERT_CALL_ENV(call, name, value)                                  \
  do {                                                                         \
    if (pk__cmocka_env_check((call), (name), PK_ENV_SET, (value)) != 0)        \
      fail();                                                                  \
  } while (0)

/* Fail unless the call removes name. */
#define PK_ASSERT_CALL_ENV_REMOVED(call, name)                                 \
  do {                                                                         \
    if (pk__cmocka_env_check((call), (name), PK_ENV_REMOVED, NULL) != 0)       \
      fail();                                                                  \
  } while (0)

/* Fail unless the call leaves name alone (no override). */
#define PK_ASSERT_CALL_ENV_UNTOUCHED(call, name)                               \
  do {                                                                         \
    if (pk__cmocka_env_check((call), (name), PK_ENV_UNTOUCHED, NULL) != 0)     \
      fail();                                                                  \
  } while (0)

#ifdef __cplusplus
}
#endif
#endif /* PK_RECORDING_CMOCKA_H */
