/* Unit checks that need no child process (except the allocation-failure
 * run at the end): the error table, command validation and cloning,
 * mechanism names, and failing the Nth allocation. */
#include "harness.h"

#include "internal.h" /* struct pk_cmd, to check that a clone is deep */

#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#if !defined(_WIN32)
#include <execinfo.h> /* backtrace: where an injected failure happened */
#endif

/* ------------------------------------------------------------ errors */

typedef struct err_row {
  int code;
  const char *suffix, *name, *msg;
} err_row;

static const err_row err_table[] = {
#define ROW(suffix, value, name, msg) {PK_##suffix, #suffix, name, msg},
    PK_ERRNO_MAP(ROW)
#undef ROW
};
#define NERRS (sizeof(err_table) / sizeof(err_table[0]))

static bool is_snake_case(const char *s) {
  if (!islower((unsigned char)s[0]))
    return false;
  for (; *s; s++)
    if (!islower((unsigned char)*s) && *s != '_')
      return false;
  return s[-1] != '_';
}

static void error_table_names_and_messages(void **state) {
  (void)state;
  for (size_t i = 0; i < NERRS; i++) {
    const err_row *e = &err_table[i];
    assert_true(e->code < 0);
    assert_string_equal(pk_err_name(e->code), e->name);
    assert_string_equal(pk_strerror(e->code), e->msg);
    if (!is_snake_case(e->name))
      fail_msg("PK_%s: name '%s' is not snake_case", e->suffix, e->name);
    assert_true(strlen(e->msg) > 0);
    for (size_t j = 0; j < i; j++) {
      if (err_table[j].code == e->code)
        fail_msg("PK_%s and PK_%s share the code %d", err_table[j].suffix,
                 e->suffix, e->code);
      if (strcmp(err_table[j].name, e->name) == 0)
        fail_msg("PK_%s and PK_%s share the name %s", err_table[j].suffix,
                 e->suffix, e->name);
      if (strcmp(err_table[j].msg, e->msg) == 0)
        fail_msg("PK_%s and PK_%s share the message", err_table[j].suffix,
                 e->suffix);
    }
    /* OS codes are libuv's (> -4096); pk's own live at -30000 and below,
     * so the two ranges can never meet. */
    bool own = e->code <= -30000 && e->code > -31000;
    bool os = e->code > -4096;
    if (own == os)
      fail_msg("PK_%s = %d is in neither range", e->suffix, e->code);
  }
}

static void error_codes_are_stable(void **state) {
  (void)state;
  /* Values and names are API: never renumbered, never renamed. */
  static const struct {
    int code, value;
    const char *name;
  } fixed[] = {
      {PK_EINVAL, UV_EINVAL, "invalid_argument"},
      {PK_ENOMEM, UV_ENOMEM, "out_of_memory"},
      {PK_ENOENT, UV_ENOENT, "not_found"},
      {PK_EACCES, UV_EACCES, "permission_denied"},
      {PK_EIO, UV_EIO, "io"},
      {PK_ECANCELED, UV_ECANCELED, "cancelled"},
      {PK_ESRCH, UV_ESRCH, "no_such_process"},
      {PK_EBADCWD, -30000, "bad_cwd"},
      {PK_ESPAWN, -30001, "spawn_failed"},
      {PK_EEXIT, -30002, "exit"},
      {PK_ESIGNALLED, -30003, "signalled"},
      {PK_ETIMEOUT, -30004, "timeout"},
      {PK_EUNSUPPORTED, -30005, "unsupported"},
      {PK_ELIMIT, -30006, "resource_limit"},
      {PK_ETOOBIG, -30007, "output_too_large"},
      {PK_ECASSETTE_MISS, -30008, "cassette_miss"},
      {PK_ENOEXEC, -30009, "not_executable"},
      {PK_EUNEXPECTED, -30010, "unexpected_command"},
      {PK_ESTATUS_LOST, -30011, "status_lost"},
      {PK_ECASSETTE_NOT_FOUND, -30012, "cassette_not_found"},
      {PK_ECASSETTE_INVALID, -30013, "cassette_invalid"},
      {PK_ESECRET, -30014, "secret_in_cassette"},
      {PK_ECASSETTE_UNUSED, -30015, "cassette_unused"},
      {PK_ECASSETTE_FROZEN, -30016, "cassette_frozen"},
      {PK_ECASSETTE_STALE, -30017, "cassette_stale"},
      {PK_EPERM, UV_EPERM, "not_permitted"},
  };
  for (size_t i = 0; i < sizeof(fixed) / sizeof(fixed[0]); i++) {
    assert_int_equal(fixed[i].code, fixed[i].value);
    assert_string_equal(pk_err_name(fixed[i].code), fixed[i].name);
  }
  /* Every row of the table is pinned above. */
  assert_int_equal(NERRS, sizeof(fixed) / sizeof(fixed[0]));
#if !defined(_WIN32)
  /* PK__ERR(errno) relies on it; it is only used in POSIX code (libuv's
   * codes on Windows are its own, UV_ENOENT is -4058 there). */
  assert_int_equal(UV_ENOENT, -ENOENT);
#endif
}

/* The table's name for code, or NULL. */
static const char *table_name(int code) {
  for (size_t i = 0; i < NERRS; i++)
    if (err_table[i].code == code)
      return err_table[i].name;
  return NULL;
}

static void error_lookup_never_null(void **state) {
  (void)state;
  assert_string_equal(pk_err_name(0), "ok");
  assert_string_equal(pk_strerror(0), "success");
  /* Unknown codes get a generic text; libuv codes outside the table get
   * libuv's. */
  assert_string_equal(pk_err_name(UV_EPIPE), "EPIPE");
  assert_true(strlen(pk_strerror(UV_EPIPE)) > 0);
  static const int odd[] = {1,      42,      -29999,  -30018,
                            -31000, -100000, INT_MIN, INT_MAX};
  for (size_t i = 0; i < sizeof(odd) / sizeof(odd[0]); i++) {
    assert_string_equal(pk_err_name(odd[i]), "unknown");
    assert_string_equal(pk_strerror(odd[i]), "unknown error");
  }
  /* pk's range and around it (no libuv call for these), and every code
   * libuv knows. */
  for (int c = -31000; c <= 16; c = c == -4096 ? 0 : c + 1) {
    const char *n = pk_err_name(c), *m = pk_strerror(c);
    if (n == NULL || m == NULL || n[0] == '\0' || m[0] == '\0')
      fail_msg("code %d: empty or NULL name/message", c);
  }
#define UV_CODE(name, msg)                                                     \
  assert_string_equal(pk_err_name(UV_##name),                                  \
                      table_name(UV_##name) ? table_name(UV_##name) : #name);  \
  assert_true(strlen(pk_strerror(UV_##name)) > 0);
  UV_ERRNO_MAP(UV_CODE)
#undef UV_CODE
}

/* Counting libuv's allocator: pk_err_name/pk_strerror on a code nobody
 * knows must not allocate (libuv's uv_err_name/uv_strerror return a
 * fresh heap string for unknown codes, leaked on every call). */
static long uv_allocs;
static void *uv_count_malloc(size_t n) {
  uv_allocs++;
  return malloc(n);
}
static void *uv_count_realloc(void *p, size_t n) {
  uv_allocs += p == NULL;
  return realloc(p, n);
}
static void *uv_count_calloc(size_t n, size_t size) {
  uv_allocs++;
  return calloc(n, size);
}

static void error_lookup_does_not_allocate(void **state) {
  (void)state;
  static const int unknown[] = {-1000, -2500, -4000, -4093};
  assert_int_equal(uv_replace_allocator(uv_count_malloc, uv_count_realloc,
                                        uv_count_calloc, free),
                   0);
  uv_allocs = 0;
  for (size_t i = 0; i < sizeof(unknown) / sizeof(unknown[0]); i++) {
    (void)pk_err_name(unknown[i]);
    (void)pk_strerror(unknown[i]);
  }
  long allocs = uv_allocs;
  uv_replace_allocator(malloc, realloc, calloc, free);
  if (allocs != 0)
    fail_msg("pk_err_name/pk_strerror of unknown codes allocated %ld "
             "strings nobody frees (e.g. pk_err_name(-4000) = '%s')",
             allocs, pk_err_name(-4000));
}

static void error_classifiers(void **state) {
  (void)state;
  for (size_t i = 0; i < NERRS; i++) {
    int c = err_table[i].code;
    assert_int_equal(pk_is_not_found(c), c == PK_ENOENT);
    assert_int_equal(pk_is_timeout(c), c == PK_ETIMEOUT);
    assert_int_equal(pk_is_exit(c), c == PK_EEXIT || c == PK_ESIGNALLED);
    assert_int_equal(pk_is_unsupported(c), c == PK_EUNSUPPORTED);
    assert_int_equal(pk_is_spawn_error(c),
                     c == PK_ENOENT || c == PK_EACCES || c == PK_ENOEXEC ||
                         c == PK_EBADCWD || c == PK_ESPAWN);
  }
  static const int other[] = {0, 1, UV_EPIPE, -30011, -30013};
  for (size_t i = 0; i < sizeof(other) / sizeof(other[0]); i++) {
    int c = other[i];
    assert_false(pk_is_not_found(c) || pk_is_timeout(c) || pk_is_exit(c) ||
                 pk_is_unsupported(c) || pk_is_spawn_error(c));
  }
}

static void outcome_names(void **state) {
  (void)state;
  assert_string_equal(pk_outcome_name(PK_OUTCOME_NONE), "none");
  assert_string_equal(pk_outcome_name(PK_OUTCOME_EXITED), "exited");
  assert_string_equal(pk_outcome_name(PK_OUTCOME_SIGNALLED), "signalled");
  assert_string_equal(pk_outcome_name(PK_OUTCOME_TIMED_OUT), "timed_out");
  assert_string_equal(pk_outcome_name(PK_OUTCOME_CANCELLED), "cancelled");
}

/* -------------------------------------------------------- mechanisms */

static void mechanism_names_round_trip(void **state) {
  (void)state;
  static const struct {
    pk_mechanism m;
    const char *name;
  } all[] = {{PK_MECH_AUTO, "auto"},
             {PK_MECH_CGROUP_V2, "cgroup_v2"},
             {PK_MECH_PROCESS_GROUP, "process_group"},
             {PK_MECH_JOB_OBJECT, "job_object"}};
  for (size_t i = 0; i < sizeof(all) / sizeof(all[0]); i++) {
    assert_string_equal(pk_mechanism_name(all[i].m), all[i].name);
    pk_mechanism m = (pk_mechanism)99;
    assert_int_equal(pk_mechanism_parse(all[i].name, &m), 0);
    assert_int_equal(m, all[i].m);
  }
  static const char *const bad[] = {"",           "AUTO",          "cgroup",
                                    "cgroup_v2 ", "process-group", "bogus"};
  for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
    pk_mechanism m = PK_MECH_PROCESS_GROUP;
    assert_int_equal(pk_mechanism_parse(bad[i], &m), PK_EINVAL);
    assert_int_equal(m, PK_MECH_PROCESS_GROUP); /* untouched */
  }
  pk_mechanism m;
  assert_int_equal(pk_mechanism_parse(NULL, &m), PK_EINVAL);
  assert_int_equal(pk_mechanism_parse("auto", NULL), PK_EINVAL);
  assert_non_null(pk_mechanism_name((pk_mechanism)99));
  assert_int_equal(pk_mechanism_available((pk_mechanism)99), PK_EUNSUPPORTED);
  pk_mechanism best = pk_mechanism_best();
#if defined(_WIN32)
  /* Availability on a Windows host: job objects only. */
  int avail = 0;
  assert_int_equal(pk_mechanism_available(PK_MECH_AUTO), avail);
  assert_int_equal(pk_mechanism_available(PK_MECH_JOB_OBJECT), avail);
  assert_int_equal(pk_mechanism_available(PK_MECH_PROCESS_GROUP),
                   PK_EUNSUPPORTED);
  assert_int_equal(pk_mechanism_available(PK_MECH_CGROUP_V2), PK_EUNSUPPORTED);
  assert_int_equal(best, PK_MECH_JOB_OBJECT);
  assert_int_equal(pk_mechanism_available(best), avail);
#else
  /* Availability on this (Linux) host. */
  assert_int_equal(pk_mechanism_available(PK_MECH_AUTO), 0);
  assert_int_equal(pk_mechanism_available(PK_MECH_PROCESS_GROUP), 0);
  assert_int_equal(pk_mechanism_available(PK_MECH_JOB_OBJECT), PK_EUNSUPPORTED);
  assert_true(best == PK_MECH_CGROUP_V2 || best == PK_MECH_PROCESS_GROUP);
  assert_int_equal(pk_mechanism_available(best), 0);
#endif
  print_message("best mechanism here: %s\n", pk_mechanism_name(best));
}

/* ------------------------------------------------- command validation */

/* pk_cmd_errmsg texts that do not name their setter, reported at the end
 * of a test so every refusal is still checked. */
static char errmsg_problems[4096];
static size_t errmsg_len;
static int errmsg_bad;

/* Expect PK_EINVAL from a setter on cmd, with a message naming it. */
#define EXPECT_EINVAL(cmd, setter, ...)                                        \
  do {                                                                         \
    int rc_ = setter(__VA_ARGS__);                                             \
    if (rc_ != PK_EINVAL)                                                      \
      fail_msg("%s(%s) -> %s, expected invalid_argument", #setter,             \
               #__VA_ARGS__, pk_err_name(rc_));                                \
    if ((cmd) != NULL && strstr(pk_cmd_errmsg(cmd), #setter) == NULL)          \
      errmsg_note(#setter "(" #__VA_ARGS__ ")", pk_cmd_errmsg(cmd));           \
  } while (0)

static void errmsg_note(const char *call, const char *msg) {
  errmsg_bad++;
  if (errmsg_len < sizeof(errmsg_problems))
    errmsg_len += (size_t)snprintf(errmsg_problems + errmsg_len,
                                   sizeof(errmsg_problems) - errmsg_len,
                                   "\n  %s: '%s'", call, msg);
}

static void errmsg_check(void) {
  if (errmsg_bad == 0)
    return;
  print_error("%d refusals whose pk_cmd_errmsg does not name the setter:%s\n",
              errmsg_bad, errmsg_problems);
  errmsg_bad = 0;
  errmsg_len = 0;
  errmsg_problems[0] = '\0';
  fail();
}

static void cmd_new_and_args_validation(void **state) {
  (void)state;
  pk_cmd *c = (pk_cmd *)&c; /* must be reset to NULL on failure */
  assert_int_equal(pk_cmd_new(NULL, &c), PK_EINVAL);
  assert_null(c);
  c = (pk_cmd *)&c;
  assert_int_equal(pk_cmd_new("", &c), PK_EINVAL);
  assert_null(c);
  assert_int_equal(pk_cmd_new("x", NULL), PK_EINVAL);
  pk_cmd_free(NULL);
  pk_cmd *out = NULL;
  assert_int_equal(pk_cmd_clone(NULL, &out), PK_EINVAL);
  assert_null(out);

  PKT_ASSERT_OK(pk_cmd_new("prog", &c));
  assert_string_equal(pk_cmd_errmsg(c), "");
  assert_int_equal(pk_cmd_clone(c, NULL), PK_EINVAL);
  EXPECT_EINVAL(NULL, pk_cmd_arg, NULL, "a");
  EXPECT_EINVAL(c, pk_cmd_arg, c, NULL);
  EXPECT_EINVAL(NULL, pk_cmd_args, NULL, (const char *const[]){"a"}, 1);
  EXPECT_EINVAL(c, pk_cmd_args, c, NULL, 1);
  /* A NULL in the middle: nothing is appended. */
  PKT_ASSERT_OK(pk_cmd_arg(c, "first"));
  EXPECT_EINVAL(c, pk_cmd_args, c, (const char *const[]){"a", NULL, "b"}, 3);
  assert_int_equal(pk_cmd_argc(c), 1);
  PKT_ASSERT_OK(pk_cmd_args(c, NULL, 0));
  PKT_ASSERT_OK(pk_cmd_args(c, (const char *const[]){"b", "", "c d"}, 3));
  assert_int_equal(pk_cmd_argc(c), 4);
  assert_string_equal(pk_cmd_argv(c, 2), "");
  assert_string_equal(pk_cmd_argv(c, 3), "c d");
  assert_null(pk_cmd_argv(c, 4));
  assert_string_equal(pk_cmd_program(c), "prog");
  pk_cmd_free(c);
  errmsg_check();
}

static void cmd_env_and_paths_validation(void **state) {
  (void)state;
  pk_cmd *c;
  PKT_ASSERT_OK(pk_cmd_new("prog", &c));
  EXPECT_EINVAL(NULL, pk_cmd_env_set, NULL, "A", "1");
  EXPECT_EINVAL(c, pk_cmd_env_set, c, NULL, "1");
  EXPECT_EINVAL(c, pk_cmd_env_set, c, "", "1");
  EXPECT_EINVAL(c, pk_cmd_env_set, c, "A=B", "1");
  EXPECT_EINVAL(c, pk_cmd_env_set, c, "A", NULL);
  EXPECT_EINVAL(NULL, pk_cmd_env_remove, NULL, "A");
  EXPECT_EINVAL(c, pk_cmd_env_remove, c, NULL);
  EXPECT_EINVAL(c, pk_cmd_env_remove, c, "");
  EXPECT_EINVAL(c, pk_cmd_env_remove, c, "A=");
  EXPECT_EINVAL(NULL, pk_cmd_env_clear, NULL);
  EXPECT_EINVAL(NULL, pk_cmd_inherit_env, NULL, "PATH");
  EXPECT_EINVAL(c, pk_cmd_inherit_env, c, NULL);
  EXPECT_EINVAL(c, pk_cmd_inherit_env, c, "");
  EXPECT_EINVAL(c, pk_cmd_inherit_env, c, "A=B");
  PKT_ASSERT_OK(pk_cmd_env_set(c, "A", "")); /* empty value is fine */
  PKT_ASSERT_OK(pk_cmd_env_remove(c, "A"));
  PKT_ASSERT_OK(pk_cmd_env_clear(c));
  PKT_ASSERT_OK(pk_cmd_inherit_env(c, "PATH"));

  EXPECT_EINVAL(NULL, pk_cmd_set_cwd, NULL, "/tmp");
  EXPECT_EINVAL(c, pk_cmd_set_cwd, c, NULL);
  EXPECT_EINVAL(c, pk_cmd_set_cwd, c, "");
  assert_null(pk_cmd_cwd(c));
  PKT_ASSERT_OK(pk_cmd_set_cwd(c, "/tmp"));
  EXPECT_EINVAL(c, pk_cmd_set_cwd, c, "");
  assert_string_equal(pk_cmd_cwd(c), "/tmp"); /* a refusal changes nothing */

  /* stdin */
  assert_int_equal(pk_cmd_stdin_mode(c), PK_STDIN_CLOSED);
  EXPECT_EINVAL(NULL, pk_cmd_set_stdin_bytes, NULL, "x", 1);
  EXPECT_EINVAL(c, pk_cmd_set_stdin_bytes, c, NULL, 1);
  EXPECT_EINVAL(NULL, pk_cmd_set_stdin_file, NULL, "/dev/null");
  EXPECT_EINVAL(c, pk_cmd_set_stdin_file, c, NULL);
  EXPECT_EINVAL(c, pk_cmd_set_stdin_file, c, "");
  EXPECT_EINVAL(NULL, pk_cmd_set_stdin, NULL, PK_STDIN_CLOSED);
  EXPECT_EINVAL(c, pk_cmd_set_stdin, c, PK_STDIN_BYTES);
  EXPECT_EINVAL(c, pk_cmd_set_stdin, c, PK_STDIN_FILE);
  EXPECT_EINVAL(c, pk_cmd_set_stdin, c, (pk_stdin_mode)42);
  EXPECT_EINVAL(c, pk_cmd_set_stdin, c, (pk_stdin_mode)-1);
  assert_int_equal(pk_cmd_stdin_mode(c), PK_STDIN_CLOSED);
  PKT_ASSERT_OK(pk_cmd_set_stdin_bytes(c, NULL, 0));
  assert_int_equal(pk_cmd_stdin_mode(c), PK_STDIN_BYTES);
  PKT_ASSERT_OK(pk_cmd_set_stdin_bytes(c, "a\0b", 3));
  size_t len;
  assert_memory_equal(pk_cmd_stdin_data(c, &len), "a\0b", 3);
  assert_int_equal(len, 3);
  PKT_ASSERT_OK(pk_cmd_set_stdin_file(c, "/dev/null"));
  assert_int_equal(pk_cmd_stdin_mode(c), PK_STDIN_FILE);
  assert_string_equal(pk_cmd_stdin_path(c), "/dev/null");
  PKT_ASSERT_OK(pk_cmd_set_stdin(c, PK_STDIN_INHERIT));
  assert_int_equal(pk_cmd_stdin_mode(c), PK_STDIN_INHERIT);

  /* outputs */
  const char *path = "unset";
  EXPECT_EINVAL(NULL, pk_cmd_set_output, NULL, PK_STDOUT, PK_OUT_NULL, NULL);
  EXPECT_EINVAL(c, pk_cmd_set_output, c, (pk_stream)0, PK_OUT_NULL, NULL);
  EXPECT_EINVAL(c, pk_cmd_set_output, c, (pk_stream)3, PK_OUT_NULL, NULL);
  EXPECT_EINVAL(c, pk_cmd_set_output, c, (pk_stream)-1, PK_OUT_NULL, NULL);
  EXPECT_EINVAL(c, pk_cmd_set_output, c, PK_STDOUT, (pk_out_mode)9, NULL);
  EXPECT_EINVAL(c, pk_cmd_set_output, c, PK_STDOUT, PK_OUT_FILE, NULL);
  EXPECT_EINVAL(c, pk_cmd_set_output, c, PK_STDERR, PK_OUT_FILE, "");
  EXPECT_EINVAL(c, pk_cmd_set_output, c, PK_STDOUT, PK_OUT_CAPTURE, "/tmp/x");
  EXPECT_EINVAL(c, pk_cmd_set_output, c, PK_STDERR, PK_OUT_NULL, "/tmp/x");
  EXPECT_EINVAL(c, pk_cmd_set_output, c, PK_STDOUT, PK_OUT_INHERIT, "/tmp/x");
  assert_int_equal(pk_cmd_output_mode(c, PK_STDOUT, &path), PK_OUT_CAPTURE);
  assert_null(path);
  PKT_ASSERT_OK(pk_cmd_set_output(c, PK_STDERR, PK_OUT_FILE, "/tmp/err"));
  EXPECT_EINVAL(c, pk_cmd_set_output, c, PK_STDERR, PK_OUT_FILE, NULL);
  assert_int_equal(pk_cmd_output_mode(c, PK_STDERR, &path), PK_OUT_FILE);
  assert_string_equal(path, "/tmp/err");
  PKT_ASSERT_OK(pk_cmd_set_output(c, PK_STDERR, PK_OUT_NULL, NULL));
  assert_int_equal(pk_cmd_output_mode(c, PK_STDERR, &path), PK_OUT_NULL);
  assert_null(path); /* the old path is gone with the mode */
  pk_cmd_free(c);
  errmsg_check();
}

static void cmd_limits_and_numbers_validation(void **state) {
  (void)state;
  pk_cmd *c;
  PKT_ASSERT_OK(pk_cmd_new("prog", &c));
  /* capture limit: NONE needs 0 bytes, the others > 0 */
  EXPECT_EINVAL(NULL, pk_cmd_set_capture_limit, NULL, PK_LIMIT_NONE, 0);
  EXPECT_EINVAL(c, pk_cmd_set_capture_limit, c, PK_LIMIT_NONE, 1);
  EXPECT_EINVAL(c, pk_cmd_set_capture_limit, c, PK_LIMIT_HEAD, 0);
  EXPECT_EINVAL(c, pk_cmd_set_capture_limit, c, PK_LIMIT_TAIL, 0);
  EXPECT_EINVAL(c, pk_cmd_set_capture_limit, c, PK_LIMIT_FAIL, 0);
  EXPECT_EINVAL(c, pk_cmd_set_capture_limit, c, (pk_limit_policy)4, 10);
  EXPECT_EINVAL(c, pk_cmd_set_capture_limit, c, (pk_limit_policy)-1, 10);
  PKT_ASSERT_OK(pk_cmd_set_capture_limit(c, PK_LIMIT_NONE, 0));
  PKT_ASSERT_OK(pk_cmd_set_capture_limit(c, PK_LIMIT_HEAD, 1));
  PKT_ASSERT_OK(pk_cmd_set_capture_limit(c, PK_LIMIT_TAIL, SIZE_MAX / 2));
  PKT_ASSERT_OK(pk_cmd_set_capture_limit(c, PK_LIMIT_FAIL, 4096));

  /* timeout: >= 0, soft signal 0 (default) or a valid signal */
  EXPECT_EINVAL(NULL, pk_cmd_set_timeout, NULL, 100, -1, 0);
  EXPECT_EINVAL(c, pk_cmd_set_timeout, c, -1, -1, 0);
  EXPECT_EINVAL(c, pk_cmd_set_timeout, c, INT64_MIN, -1, 0);
  EXPECT_EINVAL(c, pk_cmd_set_timeout, c, 100, -1, -1);
  EXPECT_EINVAL(c, pk_cmd_set_timeout, c, 100, -1, PK_NSIG);
  EXPECT_EINVAL(c, pk_cmd_set_timeout, c, 100, -1, 1000);
  EXPECT_EINVAL(c, pk_cmd_set_timeout, c, 100, -1, INT32_MIN);
  assert_int_equal(pk_cmd_timeout_ms(c), 0);
  PKT_ASSERT_OK(pk_cmd_set_timeout(c, 1500, 0, PK_SIGINT));
  EXPECT_EINVAL(c, pk_cmd_set_timeout, c, -5, 0, 0);
  assert_int_equal(pk_cmd_timeout_ms(c), 1500);
  PKT_ASSERT_OK(pk_cmd_set_timeout(c, 0, -1, 0)); /* 0 disables */
  PKT_ASSERT_OK(pk_cmd_set_timeout(c, 1, 5, PK_NSIG - 1));

  EXPECT_EINVAL(NULL, pk_cmd_set_drain, NULL, 10);
  EXPECT_EINVAL(c, pk_cmd_set_drain, c, -1);
  assert_int_equal(pk_cmd_drain_ms(c), 200); /* the documented default */
  PKT_ASSERT_OK(pk_cmd_set_drain(c, 0));
  assert_int_equal(pk_cmd_drain_ms(c), 0);

  /* accepted exit codes: at least one, each 0..255 */
  EXPECT_EINVAL(NULL, pk_cmd_set_accepted, NULL, (const int[]){0}, 1);
  EXPECT_EINVAL(c, pk_cmd_set_accepted, c, NULL, 1);
  EXPECT_EINVAL(c, pk_cmd_set_accepted, c, (const int[]){0}, 0);
  EXPECT_EINVAL(c, pk_cmd_set_accepted, c, (const int[]){0, -1}, 2);
  EXPECT_EINVAL(c, pk_cmd_set_accepted, c, (const int[]){256}, 1);
  EXPECT_EINVAL(c, pk_cmd_set_accepted, c, (const int[]){INT32_MAX}, 1);
  PKT_ASSERT_OK(pk_cmd_set_accepted(c, (const int[]){0, 255}, 2));

  /* credentials */
  EXPECT_EINVAL(NULL, pk_cmd_set_user, NULL, 1, 1, NULL, 0);
  EXPECT_EINVAL(c, pk_cmd_set_user, c, 1, 1, NULL, 2);
  EXPECT_EINVAL(c, pk_cmd_set_user, c, (pk_uid_t)-1, 1, NULL, 0);
  EXPECT_EINVAL(c, pk_cmd_set_user, c, 1, (pk_gid_t)-1, NULL, 0);
  EXPECT_EINVAL(c, pk_cmd_set_user, c, 1, 1, (const pk_gid_t[]){1}, 65537);
  PKT_ASSERT_OK(pk_cmd_set_user(c, 1, 1, NULL, 0));
  PKT_ASSERT_OK(pk_cmd_set_user(c, 0, 0, (const pk_gid_t[]){0, 1}, 2));

  /* umask 0..0777 */
  EXPECT_EINVAL(NULL, pk_cmd_set_umask, NULL, 022);
  EXPECT_EINVAL(c, pk_cmd_set_umask, c, 01000);
  EXPECT_EINVAL(c, pk_cmd_set_umask, c, 04777);
  EXPECT_EINVAL(c, pk_cmd_set_umask, c, UINT32_MAX);
  PKT_ASSERT_OK(pk_cmd_set_umask(c, 0));
  PKT_ASSERT_OK(pk_cmd_set_umask(c, 0777));

  /* mechanism, flags */
  EXPECT_EINVAL(NULL, pk_cmd_set_mechanism, NULL, PK_MECH_AUTO);
  EXPECT_EINVAL(c, pk_cmd_set_mechanism, c, (pk_mechanism)4);
  EXPECT_EINVAL(c, pk_cmd_set_mechanism, c, (pk_mechanism)-1);
  assert_int_equal(pk_cmd_mechanism(c), PK_MECH_AUTO);
  PKT_ASSERT_OK(pk_cmd_set_mechanism(c, PK_MECH_PROCESS_GROUP));
  assert_int_equal(pk_cmd_mechanism(c), PK_MECH_PROCESS_GROUP);
  EXPECT_EINVAL(NULL, pk_cmd_set_setsid, NULL, true);
  EXPECT_EINVAL(NULL, pk_cmd_set_kill_on_parent_death, NULL, true);
  PKT_ASSERT_OK(pk_cmd_set_setsid(c, true));
  PKT_ASSERT_OK(pk_cmd_set_kill_on_parent_death(c, true));
  pk_cmd_free(c);
  errmsg_check();
}

/* -------------------------------------------------------------- clone */

static pk_cmd *full_cmd(void) {
  pk_cmd *c;
  PKT_ASSERT_OK(pk_cmd_new("/bin/prog", &c));
  PKT_ASSERT_OK(pk_cmd_args(c, (const char *const[]){"a", "b", "c"}, 3));
  PKT_ASSERT_OK(pk_cmd_env_set(c, "K1", "v1"));
  PKT_ASSERT_OK(pk_cmd_env_remove(c, "K2"));
  PKT_ASSERT_OK(pk_cmd_inherit_env(c, "PATH"));
  PKT_ASSERT_OK(pk_cmd_inherit_env(c, "HOME"));
  PKT_ASSERT_OK(pk_cmd_set_cwd(c, "/srv"));
  PKT_ASSERT_OK(pk_cmd_set_stdin_bytes(c, "in\0put", 6));
  PKT_ASSERT_OK(pk_cmd_set_output(c, PK_STDERR, PK_OUT_FILE, "/tmp/e"));
  PKT_ASSERT_OK(pk_cmd_set_capture_limit(c, PK_LIMIT_TAIL, 100));
  PKT_ASSERT_OK(pk_cmd_set_timeout(c, 5000, 100, PK_SIGINT));
  PKT_ASSERT_OK(pk_cmd_set_drain(c, 50));
  PKT_ASSERT_OK(pk_cmd_set_accepted(c, (const int[]){0, 3}, 2));
  PKT_ASSERT_OK(pk_cmd_set_user(c, 7, 8, (const pk_gid_t[]){9, 10}, 2));
  PKT_ASSERT_OK(pk_cmd_set_umask(c, 027));
  PKT_ASSERT_OK(pk_cmd_set_mechanism(c, PK_MECH_PROCESS_GROUP));
  return c;
}

/* Two heap pointers of different commands: both NULL or distinct. */
#define assert_not_shared(p, q)                                                \
  do {                                                                         \
    if ((p) != NULL || (q) != NULL)                                            \
      assert_ptr_not_equal(p, q);                                              \
  } while (0)

/* Field by field: equal values, no shared heap memory. */
static void assert_same_not_shared(const pk_cmd *a, const pk_cmd *b) {
  assert_string_equal(a->program, b->program);
  assert_not_shared(a->program, b->program);
  assert_int_equal(a->nargs, b->nargs);
  assert_not_shared(a->args, b->args);
  for (size_t i = 0; i < a->nargs; i++) {
    assert_string_equal(a->args[i], b->args[i]);
    assert_not_shared(a->args[i], b->args[i]);
  }
  assert_int_equal(a->nenv_ops, b->nenv_ops);
  assert_not_shared(a->env_ops, b->env_ops);
  for (size_t i = 0; i < a->nenv_ops; i++) {
    assert_string_equal(a->env_ops[i].name, b->env_ops[i].name);
    assert_not_shared(a->env_ops[i].name, b->env_ops[i].name);
    if (a->env_ops[i].value == NULL) {
      assert_null(b->env_ops[i].value);
    } else {
      assert_string_equal(a->env_ops[i].value, b->env_ops[i].value);
      assert_not_shared(a->env_ops[i].value, b->env_ops[i].value);
    }
  }
  assert_int_equal(a->ninherit, b->ninherit);
  assert_not_shared(a->inherit, b->inherit);
  for (size_t i = 0; i < a->ninherit; i++) {
    assert_string_equal(a->inherit[i], b->inherit[i]);
    assert_not_shared(a->inherit[i], b->inherit[i]);
  }
  assert_true((a->cwd == NULL) == (b->cwd == NULL));
  if (a->cwd != NULL)
    assert_string_equal(a->cwd, b->cwd);
  assert_not_shared(a->cwd, b->cwd);
  assert_int_equal(a->stdin_len, b->stdin_len);
  if (a->stdin_len > 0)
    assert_memory_equal(a->stdin_data, b->stdin_data, a->stdin_len);
  assert_not_shared(a->stdin_data, b->stdin_data);
  assert_true((a->out_path[PK_STDERR] == NULL) ==
              (b->out_path[PK_STDERR] == NULL));
  if (a->out_path[PK_STDERR] != NULL)
    assert_string_equal(a->out_path[PK_STDERR], b->out_path[PK_STDERR]);
  assert_not_shared(a->out_path[PK_STDERR], b->out_path[PK_STDERR]);
  assert_int_equal(a->naccepted, b->naccepted);
  if (a->naccepted > 0)
    assert_memory_equal(a->accepted, b->accepted, a->naccepted * sizeof(int));
  assert_not_shared(a->accepted, b->accepted);
  assert_int_equal(a->ngroups, b->ngroups);
  if (a->ngroups > 0)
    assert_memory_equal(a->groups, b->groups, a->ngroups * sizeof(pk_gid_t));
  assert_not_shared(a->groups, b->groups);
  assert_int_equal(a->timeout_ms, b->timeout_ms);
  assert_int_equal(a->grace_ms, b->grace_ms);
  assert_int_equal(a->soft_signal, b->soft_signal);
  assert_int_equal(a->drain_ms, b->drain_ms);
  assert_int_equal(a->limit_policy, b->limit_policy);
  assert_int_equal(a->limit_bytes, b->limit_bytes);
  assert_int_equal(a->umask, b->umask);
  assert_int_equal(a->uid, b->uid);
  assert_int_equal(a->mechanism, b->mechanism);
}

static void clone_is_deep(void **state) {
  (void)state;
  pk_cmd *orig = full_cmd();
  pk_cmd *copy = NULL;
  PKT_ASSERT_OK(pk_cmd_clone(orig, &copy));
  assert_same_not_shared(orig, copy);

  /* Mutate the copy in every way; the original keeps its values. */
  PKT_ASSERT_OK(pk_cmd_arg(copy, "d")); /* grows a full args array */
  PKT_ASSERT_OK(pk_cmd_env_set(copy, "K3", "v3"));
  PKT_ASSERT_OK(pk_cmd_inherit_env(copy, "TERM"));
  PKT_ASSERT_OK(pk_cmd_set_cwd(copy, "/var"));
  PKT_ASSERT_OK(pk_cmd_set_stdin_bytes(copy, "zz", 2));
  PKT_ASSERT_OK(pk_cmd_set_output(copy, PK_STDERR, PK_OUT_FILE, "/tmp/f"));
  PKT_ASSERT_OK(pk_cmd_set_timeout(copy, 1, 2, PK_SIGHUP));
  PKT_ASSERT_OK(pk_cmd_set_accepted(copy, (const int[]){7}, 1));
  PKT_ASSERT_OK(pk_cmd_set_user(copy, 1, 1, NULL, 0));
  PKT_ASSERT_OK(pk_cmd_set_mechanism(copy, PK_MECH_AUTO));
  copy->args[0][0] = 'X'; /* even writing through the copy's strings */
  copy->env_ops[0].value[0] = 'X';

  pk_cmd *fresh = full_cmd();
  assert_same_not_shared(fresh, orig); /* orig is as built */
  pk_cmd_free(fresh);
  assert_int_equal(pk_cmd_argc(copy), 4);
  assert_int_equal(pk_cmd_argc(orig), 3);

  /* The copy outlives the original intact (ASan checks the reads). */
  pk_cmd_free(orig);
  assert_string_equal(pk_cmd_argv(copy, 0), "X");
  assert_string_equal(pk_cmd_argv(copy, 3), "d");
  assert_string_equal(pk_cmd_cwd(copy), "/var");
  assert_string_equal(pk_cmd_program(copy), "/bin/prog");
  pk_cmd *again = NULL;
  PKT_ASSERT_OK(pk_cmd_clone(copy, &again));
  assert_same_not_shared(copy, again);
  pk_cmd_free(copy);
  pk_cmd_free(again);

  /* A bare command clones too (no optional parts). */
  pk_cmd *bare, *bare2;
  PKT_ASSERT_OK(pk_cmd_new("x", &bare));
  PKT_ASSERT_OK(pk_cmd_clone(bare, &bare2));
  assert_same_not_shared(bare, bare2);
  assert_int_equal(pk_cmd_argc(bare2), 0);
  assert_null(pk_cmd_cwd(bare2));
  PKT_ASSERT_OK(pk_cmd_arg(bare2, "y"));
  assert_int_equal(pk_cmd_argc(bare), 0);
  pk_cmd_free(bare);
  pk_cmd_free(bare2);
}

/* ------------------------------------------------- allocation failure */

/* A counting allocator that fails the Nth allocation (and, when
 * `persistent`, every one after it). */
static struct {
  long fail_at; /* 0: never */
  bool persistent;
  long calls;    /* allocation calls since arm */
  long live;     /* blocks handed out and not freed */
  long injected; /* failures returned */
  void *where[16];
  int nwhere;
} ta;

static bool ta_fail(void) {
  ta.calls++;
  if (ta.fail_at == 0 || ta.calls < ta.fail_at ||
      (!ta.persistent && ta.calls > ta.fail_at))
    return false;
  if (ta.injected++ == 0) {
#if !defined(_WIN32)
    ta.nwhere = backtrace(ta.where, 16);
#endif
  }
  return true;
}

static void *ta_malloc(size_t n) {
  if (ta_fail())
    return NULL;
  void *p = malloc(n);
  ta.live += p != NULL;
  return p;
}

static void *ta_calloc(size_t n, size_t size) {
  if (ta_fail())
    return NULL;
  void *p = calloc(n, size);
  ta.live += p != NULL;
  return p;
}

static void *ta_realloc(void *old, size_t n) {
  if (ta_fail())
    return NULL;
  void *p = realloc(old, n);
  ta.live += old == NULL && p != NULL;
  return p;
}

static void ta_free(void *p) {
  ta.live -= p != NULL;
  free(p);
}

static void ta_arm(long fail_at, bool persistent) {
  ta.fail_at = fail_at;
  ta.persistent = persistent;
  ta.calls = ta.injected = 0;
  ta.nwhere = 0;
}

static int ta_teardown(void **state) {
  (void)state;
  pk_replace_allocator(NULL, NULL, NULL, NULL);
  return 0;
}

typedef enum { STEP_BUILD = 1, STEP_CLONE, STEP_RUNNER, STEP_OUTPUT } step;

/* Build a command with args/env/cwd/stdin, clone it, run `echo hi` on
 * the fixture with pk_output. Returns 0 or the first error; *at says
 * which step failed. Frees everything. */
static int attempt(step *at, pk_result **res_out) {
  pk_cmd *cmd = NULL, *copy = NULL;
  pk_runner *runner = NULL;
  pk_result *res = NULL;
  *res_out = NULL;
  *at = STEP_BUILD;
  size_t args_ok = 0;
  int rc = pk_cmd_new(PK_FIXTURE, &cmd);
  if (rc == 0 && (rc = pk_cmd_arg(cmd, "echo")) == 0)
    args_ok = 1;
  if (rc == 0 && (rc = pk_cmd_args(cmd, (const char *const[]){"hi"}, 1)) == 0)
    args_ok = 2;
  if (rc == 0)
    rc = pk_cmd_env_set(cmd, "PK_UNIT", "1");
  if (rc == 0)
    rc = pk_cmd_env_remove(cmd, "PK_UNIT_NOT_SET");
  if (rc == 0)
    rc = pk_cmd_inherit_env(cmd, "PATH");
  if (rc == 0)
    rc = pk_cmd_set_cwd(cmd, "/");
  if (rc == 0)
    rc = pk_cmd_set_stdin_bytes(cmd, "input\n", 6);
  if (rc == 0)
    rc = pk_cmd_set_accepted(cmd, (const int[]){0}, 1);
  if (rc == 0)
    rc = pk_cmd_set_output(cmd, PK_STDERR, PK_OUT_NULL, NULL);
  if (rc != 0 && cmd != NULL) {
    /* The refused command is intact and usable. */
    long saved = ta.fail_at;
    ta.fail_at = 0;
    assert_int_equal(pk_cmd_argc(cmd), args_ok);
    pk_cmd *probe = NULL;
    PKT_ASSERT_OK(pk_cmd_clone(cmd, &probe));
    PKT_ASSERT_OK(pk_cmd_arg(probe, "more"));
    pk_cmd_free(probe);
    ta.fail_at = saved;
  }
  if (rc == 0) {
    *at = STEP_CLONE;
    rc = pk_cmd_clone(cmd, &copy);
    if (rc != 0)
      assert_null(copy);
  }
  if (rc == 0) {
    *at = STEP_RUNNER;
    rc = pk_real_runner_new(NULL, &runner);
    if (rc != 0)
      assert_null(runner);
  }
  if (rc == 0) {
    *at = STEP_OUTPUT;
    rc = pk_output(runner, copy, &res);
  }
  *res_out = res;
  pk_runner_free(runner);
  pk_cmd_free(copy);
  pk_cmd_free(cmd);
  return rc;
}

static const char *step_name(step s) {
  static const char *const names[] = {"?", "build", "clone", "runner",
                                      "pk_output"};
  return names[s];
}

static void print_where(void) {
#if !defined(_WIN32)
  char **syms = backtrace_symbols(ta.where, ta.nwhere);
  for (int i = 1; syms != NULL && i < ta.nwhere; i++)
    print_message("      %s\n", syms[i]);
  free(syms);
#endif
}

/* Fail allocation N = 1, 2, ... until a run completes untouched. Returns
 * the number of allocations a clean run makes. */
static long torture(bool persistent) {
  pkt_snapshot snap;
  pkt_snapshot_take(&snap);
  int bad = 0, per_step[STEP_OUTPUT + 1] = {0};
  long n;
  for (n = 1; n < 5000; n++) {
    ta_arm(n, persistent);
    pk_result *res = NULL;
    step at;
    int rc = attempt(&at, &res);
    ta.fail_at = 0;
    bool injected = ta.injected > 0;
    per_step[at] += rc == PK_ENOMEM;
    const char *why = NULL;
    if (rc != 0 && rc != PK_ENOMEM)
      why = "an error other than out_of_memory";
    else if (rc == PK_ENOMEM && !injected)
      why = "out_of_memory without an allocation failing";
    else if (rc == 0 && injected &&
             (persistent || strcmp(pk_result_stdout(res, NULL), "hi\n") != 0 ||
              pk_result_spawn_method(res)[0] == '\0'))
      /* One-shot: an optional allocation (a zero-copy read buffer) may
       * fail and be recovered from, but only with a complete result.
       * Persistent: nothing can recover, so success means swallowed. */
      why = "success although an allocation failed (failure swallowed)";
    else if (rc == 0 && strcmp(pk_result_stdout(res, NULL), "hi\n") != 0)
      why = "success with the wrong output";
    else if (res != NULL && rc != pk_result_error(res))
      why = "the verb and the result disagree";
    if (why != NULL) {
      bad++;
      print_error("%s N=%ld: %s: %s (%s)%s%s\n",
                  persistent ? "persistent" : "one-shot", n, step_name(at), why,
                  pk_err_name(rc), res ? ": " : "",
                  res ? pk_result_errmsg(res) : "");
      if (injected)
        print_where();
    }
    pk_result_free(res);
    if (ta.live != 0)
      fail_msg("%s N=%ld (%s): %ld blocks leaked",
               persistent ? "persistent" : "one-shot", n, step_name(at),
               ta.live);
    pkt_snapshot_check(&snap); /* no fd, child or cgroup left either */
    if (!injected)
      break; /* N is past the last allocation: the clean run */
  }
  assert_true(n < 5000);
  print_message("%s: %ld allocations in a clean run; out_of_memory from "
                "build %d, clone %d, runner %d, pk_output %d; %d bad\n",
                persistent ? "persistent" : "one-shot", n - 1,
                per_step[STEP_BUILD], per_step[STEP_CLONE],
                per_step[STEP_RUNNER], per_step[STEP_OUTPUT], bad);
  if (bad > 0)
    fail_msg("%d allocation-failure attempts misbehaved (see above)", bad);
  return n - 1;
}

/* Each attempt runs `echo hi` on the fixture through a real runner. */
static void alloc_failure_one_shot(void **state) {
  (void)state;
  PKT_SKIP_UNLESS_REAL();
  PKT_ASSERT_OK(
      pk_replace_allocator(ta_malloc, ta_realloc, ta_calloc, ta_free));
  assert_true(torture(false) > 10);
  pk_replace_allocator(NULL, NULL, NULL, NULL);
}

static void alloc_failure_persistent(void **state) {
  (void)state;
  PKT_SKIP_UNLESS_REAL();
  PKT_ASSERT_OK(
      pk_replace_allocator(ta_malloc, ta_realloc, ta_calloc, ta_free));
  assert_true(torture(true) > 10);
  pk_replace_allocator(NULL, NULL, NULL, NULL);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(error_table_names_and_messages),
      cmocka_unit_test(error_codes_are_stable),
      cmocka_unit_test(error_lookup_never_null),
      cmocka_unit_test(error_lookup_does_not_allocate),
      cmocka_unit_test(error_classifiers),
      cmocka_unit_test(outcome_names),
      cmocka_unit_test(mechanism_names_round_trip),
      cmocka_unit_test(cmd_new_and_args_validation),
      cmocka_unit_test(cmd_env_and_paths_validation),
      cmocka_unit_test(cmd_limits_and_numbers_validation),
      cmocka_unit_test(clone_is_deep),
      cmocka_unit_test_teardown(alloc_failure_one_shot, ta_teardown),
      cmocka_unit_test_teardown(alloc_failure_persistent, ta_teardown),
  };
  return cmocka_run_group_tests(tests, pkt_setup, NULL);
}
