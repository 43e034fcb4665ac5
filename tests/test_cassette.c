/* Cassettes end to end: record through any runner (the scripted one here,
 * the real one in test_cassette_real.c), save, reopen, replay — modes,
 * repeats, misses and their messages, recorded errors, redaction and
 * normalization, character-safe chunking, and the save's file rules. */
#include "harness.h"

#include <pk/cassette.h>
#include <pk/fakes.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <uv.h>

typedef struct fx {
  char dir[1024];
  char path[1100];
  pk_runner *inner;
} fx;

/* The same file, not rewritten: same inode (file id) and mtime. */
static void assert_same_file(const uv_stat_t *a, const uv_stat_t *b) {
  assert_int_equal(a->st_ino, b->st_ino);
  assert_int_equal(a->st_mtim.tv_sec, b->st_mtim.tv_sec);
  assert_int_equal(a->st_mtim.tv_nsec, b->st_mtim.tv_nsec);
}

static int setup(void **state) {
  fx *f = test_calloc(1, sizeof(*f));
  snprintf(f->dir, sizeof(f->dir), "%s/pk-cassette-XXXXXX", pkt_tmpdir());
  pkt_mkdtemp(f->dir);
  snprintf(f->path, sizeof(f->path), "%s/c.yaml", f->dir);
  PKT_ASSERT_OK(pk_scripted_new(&f->inner));
  pkt_unsetenv("PK_RECORD_MODE");
  pkt_unsetenv("PK_RECORD_ONLY");
  pkt_unsetenv("PK_CASSETTE_STRICT");
  pkt_unsetenv("CI");
  *state = f;
  return 0;
}

static int teardown(void **state) {
  fx *f = *state;
  pk_runner_free(f->inner);
  pkt_rm_rf(f->dir);
  test_free(f);
  return 0;
}

static pk_cassette *open_mode(fx *f, pk_record_mode mode, bool with_inner) {
  pk_cassette_opts o;
  memset(&o, 0, sizeof(o));
  o.mode = mode;
  o.inner = with_inner ? f->inner : NULL;
  pk_cassette *c = NULL;
  char err[1024];
  int rc = pk_cassette_open(f->path, &o, &c, err, sizeof(err));
  if (rc != 0)
    fail_msg("open %s: %s: %s", f->path, pk_err_name(rc), err);
  return c;
}

static void close_ok(pk_cassette *c) {
  char err[4096];
  int rc = pk_cassette_close(c, err, sizeof(err));
  if (rc != 0)
    fail_msg("close: %s: %s", pk_err_name(rc), err);
}

static pk_result *run(pk_runner *r, const char *stdin_text, const char *prog,
                      ...) {
  va_list ap;
  va_start(ap, prog);
  pk_cmd *cmd;
  PKT_ASSERT_OK(pk_cmd_new(prog, &cmd));
  for (const char *a; (a = va_arg(ap, const char *)) != NULL;)
    PKT_ASSERT_OK(pk_cmd_arg(cmd, a));
  va_end(ap);
  if (stdin_text != NULL)
    PKT_ASSERT_OK(pk_cmd_set_stdin_bytes(cmd, stdin_text, strlen(stdin_text)));
  pk_result *res = NULL;
  pk_output(r, cmd, &res);
  pk_cmd_free(cmd);
  assert_non_null(res);
  return res;
}

static char *slurp(const char *path) {
  FILE *fp = fopen(path, "rb");
  assert_non_null(fp);
  static char buf[1 << 16];
  size_t n = fread(buf, 1, sizeof(buf) - 1, fp);
  fclose(fp);
  buf[n] = '\0';
  return buf;
}

static void assert_out(const pk_result *r, const char *out, const char *err) {
  size_t n;
  const char *s = pk_result_stdout(r, &n);
  assert_int_equal(n, strlen(out));
  assert_memory_equal(s, out, n);
  s = pk_result_stderr(r, &n);
  assert_int_equal(n, strlen(err));
  assert_memory_equal(s, err, n);
}

/* Record a timeline through the scripted runner, replay it with no inner
 * runner at all: same bytes, same order, same exit, nothing run. */
static void record_then_replay(void **state) {
  fx *f = *state;
  pk_reply *rep = pk_reply_timeline();
  PKT_ASSERT_OK(pk_reply_chunk(rep, PK_STDOUT, 0, "one\n", 4));
  PKT_ASSERT_OK(pk_reply_chunk(rep, PK_STDERR, 0, "warn\r\n  ", 8));
  PKT_ASSERT_OK(pk_reply_chunk(rep, PK_STDOUT, 0, "\xff\xfe bin", 6));
  PKT_ASSERT_OK(pk_reply_exit(rep, 0, 3));
  PKT_ASSERT_OK(pk_script_program(f->inner, "tool", rep));

  pk_cassette *c = open_mode(f, PK_RECORD_ONCE, true);
  assert_int_equal(pk_cassette_mode(c), PK_RECORD_ONCE);
  pk_result *r = run(pk_cassette_runner(c), NULL, "tool", "a b", "", NULL);
  assert_int_equal(pk_result_code(r), 3);
  pk_result_free(r);
  close_ok(c);
  assert_int_equal(pk_scripted_calls(f->inner), 1);

  uv_stat_t st;
  assert_true(pkt_stat(f->path, &st));
#if !defined(_WIN32) /* Windows has no permission bits: ACLs instead */
  assert_int_equal(st.st_mode & 0777, 0600);
#endif
  const char *text = slurp(f->path);
  assert_non_null(strstr(text, "\"warn\\r\\n  \""));

  c = open_mode(f, PK_RECORD_NONE, false);
  assert_int_equal(pk_cassette_entry_count(c), 1);
  r = run(pk_cassette_runner(c), NULL, "tool", "a b", "", NULL);
  assert_int_equal(pk_result_error(r), 0);
  assert_int_equal(pk_result_outcome(r), PK_OUTCOME_EXITED);
  assert_int_equal(pk_result_code(r), 3);
  assert_out(r, "one\n\xff\xfe bin", "warn\r\n  ");
  assert_string_equal(pk_result_spawn_method(r), "cassette");
  pk_result_free(r);
  close_ok(c);
  assert_int_equal(pk_scripted_calls(f->inner), 1);
}

/* none: a missing file is its own error; a miss never runs anything and
 * fails close even when the caller ignored it. */
static void none_mode_and_misses(void **state) {
  fx *f = *state;
  pk_cassette_opts o;
  memset(&o, 0, sizeof(o));
  o.mode = PK_RECORD_NONE;
  o.inner = f->inner;
  pk_cassette *c = NULL;
  char err[4096];
  assert_int_equal(pk_cassette_open(f->path, &o, &c, err, sizeof(err)),
                   PK_ECASSETTE_NOT_FOUND);
  assert_null(c);
  assert_non_null(strstr(err, f->path));

  PKT_ASSERT_OK(pk_script_program(f->inner, "git", pk_reply_ok("abc123\n")));
  c = open_mode(f, PK_RECORD_ONCE, true);
  pk_result_free(
      run(pk_cassette_runner(c), NULL, "git", "rev-parse", "HEAD", NULL));
  close_ok(c);

  c = open_mode(f, PK_RECORD_NONE, true);
  pk_result *r =
      run(pk_cassette_runner(c), NULL, "git", "rev-parse", "main", NULL);
  assert_int_equal(pk_result_error(r), PK_ECASSETTE_MISS);
  const char *m = pk_result_errmsg(r);
  assert_non_null(strstr(m, "git rev-parse main"));
  assert_non_null(strstr(m, "args[1]: recorded \"HEAD\", now \"main\""));
  assert_non_null(strstr(m, "PK_RECORD_MODE=new_episodes PK_RECORD_ONLY='c'"));
  pk_result_free(r);
  assert_int_equal(pk_scripted_calls(f->inner), 1); /* never a spawn */
  assert_int_equal(pk_cassette_miss_count(c), 1);
  assert_int_equal(pk_cassette_close(c, err, sizeof(err)), PK_ECASSETTE_MISS);
  assert_non_null(strstr(err, "git rev-parse main"));
}

/* Same key: recorded order, then the last repeats; strict refuses the
 * repeat and lists entries never played. */
static void repeats_and_strict(void **state) {
  fx *f = *state;
  PKT_ASSERT_OK(pk_script_program(f->inner, "n", pk_reply_ok("1\n")));
  PKT_ASSERT_OK(pk_script_then(f->inner, pk_reply_ok("2\n")));
  PKT_ASSERT_OK(pk_script_program(f->inner, "other", pk_reply_ok("o\n")));
  pk_cassette *c = open_mode(f, PK_RECORD_ONCE, true);
  pk_result_free(run(pk_cassette_runner(c), NULL, "n", NULL));
  pk_result_free(run(pk_cassette_runner(c), NULL, "n", NULL));
  pk_result_free(run(pk_cassette_runner(c), NULL, "other", NULL));
  close_ok(c);

  c = open_mode(f, PK_RECORD_NONE, false);
  const char *want[] = {"1\n", "2\n", "2\n"};
  for (int i = 0; i < 3; i++) {
    pk_result *r = run(pk_cassette_runner(c), NULL, "n", NULL);
    assert_out(r, want[i], "");
    pk_result_free(r);
  }
  size_t *unused, n;
  PKT_ASSERT_OK(pk_cassette_unused(c, &unused, &n));
  assert_int_equal(n, 1);
  assert_int_equal(unused[0], 2);
  pk_free(unused);
  close_ok(c); /* not strict: unused entries are fine */

  pk_cassette_opts o;
  memset(&o, 0, sizeof(o));
  o.mode = PK_RECORD_NONE;
  o.strict = true;
  char err[4096];
  PKT_ASSERT_OK(pk_cassette_open(f->path, &o, &c, err, sizeof(err)));
  pk_result_free(run(pk_cassette_runner(c), NULL, "n", NULL));
  pk_result_free(run(pk_cassette_runner(c), NULL, "n", NULL));
  pk_result *r = run(pk_cassette_runner(c), NULL, "n", NULL);
  assert_int_equal(pk_result_error(r), PK_ECASSETTE_MISS);
  assert_non_null(strstr(pk_result_errmsg(r), "already consumed"));
  pk_result_free(r);
  assert_int_equal(pk_cassette_close(c, err, sizeof(err)), PK_ECASSETTE_MISS);

  pkt_setenv("PK_CASSETTE_STRICT", "1");
  o.strict = false;
  PKT_ASSERT_OK(pk_cassette_open(f->path, &o, &c, err, sizeof(err)));
  pk_result_free(run(pk_cassette_runner(c), NULL, "n", NULL));
  assert_int_equal(pk_cassette_close(c, err, sizeof(err)), PK_ECASSETTE_UNUSED);
  assert_non_null(strstr(err, "never played"));
  pkt_unsetenv("PK_CASSETTE_STRICT");
}

/* stdin is part of the key: two inputs, two entries, a third misses. */
static void stdin_in_key(void **state) {
  fx *f = *state;
  PKT_ASSERT_OK(pk_script_program(f->inner, "cat", pk_reply_ok("x\n")));
  PKT_ASSERT_OK(pk_script_then(f->inner, pk_reply_ok("y\n")));
  pk_cassette *c = open_mode(f, PK_RECORD_ONCE, true);
  pk_result_free(run(pk_cassette_runner(c), "a\n", "cat", NULL));
  pk_result_free(run(pk_cassette_runner(c), "b\n", "cat", NULL));
  close_ok(c);
  c = open_mode(f, PK_RECORD_NONE, false);
  pk_result *r = run(pk_cassette_runner(c), "b\n", "cat", NULL);
  assert_out(r, "y\n", "");
  pk_result_free(r);
  r = run(pk_cassette_runner(c), "a\n", "cat", NULL);
  assert_out(r, "x\n", "");
  pk_result_free(r);
  r = run(pk_cassette_runner(c), "c\n", "cat", NULL);
  assert_int_equal(pk_result_error(r), PK_ECASSETTE_MISS);
  assert_non_null(strstr(pk_result_errmsg(r), "stdin: recorded"));
  pk_result_free(r);
  char err[4096];
  assert_int_equal(pk_cassette_close(c, err, sizeof(err)), PK_ECASSETTE_MISS);
}

/* Recorded errors replay as the same error, stage and errno; a timeout
 * as a timeout. */
static void recorded_errors(void **state) {
  fx *f = *state;
  PKT_ASSERT_OK(pk_script_program(f->inner, "nope", pk_reply_not_found()));
  PKT_ASSERT_OK(pk_script_program(f->inner, "slow", pk_reply_pending()));
  PKT_ASSERT_OK(
      pk_script_program(f->inner, "killed", pk_reply_signalled(PK_SIGKILL)));
  pk_cassette *c = open_mode(f, PK_RECORD_ONCE, true);
  pk_result_free(run(pk_cassette_runner(c), NULL, "nope", NULL));
  pk_cmd *cmd;
  PKT_ASSERT_OK(pk_cmd_new("slow", &cmd));
  PKT_ASSERT_OK(pk_cmd_set_timeout(cmd, 30, 0, PK_SIGTERM));
  pk_result *r = NULL;
  assert_int_equal(pk_output(pk_cassette_runner(c), cmd, &r), PK_ETIMEOUT);
  pk_result_free(r);
  pk_result_free(run(pk_cassette_runner(c), NULL, "killed", NULL));
  close_ok(c);

  c = open_mode(f, PK_RECORD_NONE, false);
  r = run(pk_cassette_runner(c), NULL, "nope", NULL);
  assert_int_equal(pk_result_error(r), PK_ENOENT);
  assert_string_equal(pk_result_stage(r), "lookup");
  assert_int_equal(pk_result_os_errno(r), ENOENT);
  pk_result_free(r);
  assert_int_equal(pk_output(pk_cassette_runner(c), cmd, &r), PK_ETIMEOUT);
  assert_int_equal(pk_result_outcome(r), PK_OUTCOME_TIMED_OUT);
  pk_result_free(r);
  r = run(pk_cassette_runner(c), NULL, "killed", NULL);
  assert_int_equal(pk_result_outcome(r), PK_OUTCOME_SIGNALLED);
  assert_int_equal(pk_result_signal(r), PK_SIGKILL);
  pk_result_free(r);
  close_ok(c);
  pk_cmd_free(cmd);
}

/* A character split across reads is carried, so both chunks stay text. */
static void utf8_split_across_chunks(void **state) {
  fx *f = *state;
  pk_reply *rep = pk_reply_timeline();
  PKT_ASSERT_OK(pk_reply_chunk(rep, PK_STDOUT, 0, "caf\xc3", 4));
  PKT_ASSERT_OK(pk_reply_chunk(rep, PK_STDOUT, 0, "\xa9 \xe2\x82", 4));
  PKT_ASSERT_OK(pk_reply_chunk(rep, PK_STDOUT, 0, "\xac!", 2));
  PKT_ASSERT_OK(pk_script_program(f->inner, "u", rep));
  pk_cassette *c = open_mode(f, PK_RECORD_ONCE, true);
  pk_result_free(run(pk_cassette_runner(c), NULL, "u", NULL));
  close_ok(c);
  const char *text = slurp(f->path);
  assert_null(strstr(text, "base64"));
  assert_non_null(strstr(text, "\"caf\""));
  assert_non_null(strstr(text, "\"\xc3\xa9 \""));
  assert_non_null(strstr(text, "\"\xe2\x82\xac!\""));
  c = open_mode(f, PK_RECORD_NONE, false);
  pk_result *r = run(pk_cassette_runner(c), NULL, "u", NULL);
  assert_out(r, "caf\xc3\xa9 \xe2\x82\xac!", "");
  pk_result_free(r);
  close_ok(c);
}

/* A registered secret never reaches the file (also split across chunks)
 * and comes back on replay, so matching still works. */
static void redaction_round_trip(void **state) {
  fx *f = *state;
  pk_reply *rep = pk_reply_timeline();
  PKT_ASSERT_OK(pk_reply_chunk(rep, PK_STDOUT, 0, "token=s3cr", 10));
  PKT_ASSERT_OK(pk_reply_chunk(rep, PK_STDOUT, 0, "et-value\n", 9));
  PKT_ASSERT_OK(pk_script_program(f->inner, "login", rep));
  pk_cassette *c = open_mode(f, PK_RECORD_ONCE, true);
  PKT_ASSERT_OK(pk_cassette_redact(c, "TOKEN", "s3cret-value"));
  pk_result *r = run(pk_cassette_runner(c), NULL, "login", "--token",
                     "s3cret-value", NULL);
  assert_out(r, "token=s3cret-value\n", "");
  pk_result_free(r);
  close_ok(c);
  const char *text = slurp(f->path);
  assert_null(strstr(text, "s3cret"));
  assert_non_null(strstr(text, "{{TOKEN}}"));

  c = open_mode(f, PK_RECORD_NONE, false);
  PKT_ASSERT_OK(pk_cassette_redact(c, "TOKEN", "s3cret-value"));
  r = run(pk_cassette_runner(c), NULL, "login", "--token", "s3cret-value",
          NULL);
  assert_int_equal(pk_result_error(r), 0);
  assert_out(r, "token=s3cret-value\n", "");
  pk_result_free(r);
  close_ok(c);
}

/* A credential-shaped value is refused at save, naming entry and field;
 * the file is left as it was. */
static void credential_shape_refused(void **state) {
  fx *f = *state;
  PKT_ASSERT_OK(pk_script_program(
      f->inner, "gh",
      pk_reply_ok("ghp_abcdefghijklmnopqrstuvwxyz0123456789\n")));
  pk_cassette *c = open_mode(f, PK_RECORD_ONCE, true);
  pk_result_free(run(pk_cassette_runner(c), NULL, "gh", "auth", "token", NULL));
  char err[4096];
  assert_int_equal(pk_cassette_close(c, err, sizeof(err)), PK_ESECRET);
  assert_non_null(strstr(err, "stdout"));
  assert_null(strstr(err, "ghp_abc"));
  assert_false(pkt_stat(f->path, NULL));
}

/* Saving with nothing new rewrites nothing. */
static void quiet_saves(void **state) {
  fx *f = *state;
  PKT_ASSERT_OK(pk_script_program(f->inner, "a", pk_reply_ok("a\n")));
  pk_cassette *c = open_mode(f, PK_RECORD_ONCE, true);
  pk_result_free(run(pk_cassette_runner(c), NULL, "a", NULL));
  close_ok(c);
  uv_stat_t st1, st2;
  assert_true(pkt_stat(f->path, &st1));
  c = open_mode(f, PK_RECORD_NEW_EPISODES, true);
  pk_result_free(run(pk_cassette_runner(c), NULL, "a", NULL)); /* a hit */
  PKT_ASSERT_OK(pk_cassette_save(c));
  close_ok(c);
  assert_true(pkt_stat(f->path, &st2));
  assert_same_file(&st1, &st2);
}

/* A symlink at the target is refused; the file it points to is left as
 * it was. */
static void symlink_target_refused(void **state) {
  fx *f = *state;
  PKT_ASSERT_OK(pk_script_program(f->inner, "a", pk_reply_ok("a\n")));
  pk_cassette *c = open_mode(f, PK_RECORD_ONCE, true);
  pk_result_free(run(pk_cassette_runner(c), NULL, "a", NULL));
  close_ok(c);
  uv_stat_t st1, st2;
  assert_true(pkt_stat(f->path, &st1));

  char link[1200];
  snprintf(link, sizeof(link), "%s/l.yaml", f->dir);
  uv_fs_t req;
  int rc = uv_fs_symlink(NULL, &req, f->path, link, 0, NULL);
  uv_fs_req_cleanup(&req);
#if defined(_WIN32)
  /* Making one takes a privilege or developer mode; wine (8) says it
   * made one and made nothing. */
  bool made = rc == 0 && uv_fs_lstat(NULL, &req, link, NULL) == 0 &&
              (req.statbuf.st_mode & S_IFMT) == S_IFLNK;
  uv_fs_req_cleanup(&req);
  if (!made) {
    print_message("skipped: cannot make a symlink on this host (%s)\n",
                  rc != 0 ? uv_strerror(rc) : "reported made, not there");
    skip();
  }
#else
  assert_int_equal(rc, 0);
#endif
  pk_cassette_opts o;
  memset(&o, 0, sizeof(o));
  o.mode = PK_RECORD_ALL;
  o.inner = f->inner;
  char err[4096];
  PKT_ASSERT_OK(pk_cassette_open(link, &o, &c, err, sizeof(err)));
  pk_result_free(run(pk_cassette_runner(c), NULL, "a", NULL));
  assert_int_equal(pk_cassette_close(c, err, sizeof(err)), PK_EACCES);
  assert_non_null(strstr(err, "symlink"));
  assert_true(pkt_stat(f->path, &st2));
  assert_same_file(&st1, &st2);
}

/* Misuse is a clear PK_EINVAL with a message. */
static void misuse_is_explained(void **state) {
  fx *f = *state;
  char err[256];
  pk_cassette *c = NULL;
  assert_int_equal(pk_cassette_open(NULL, NULL, &c, err, sizeof(err)),
                   PK_EINVAL);
  assert_null(c);
  assert_non_null(strstr(err, "no cassette path"));
  c = open_mode(f, PK_RECORD_ONCE, true);
  assert_int_equal(pk_cassette_redact(c, "S", "a{{b"), PK_EINVAL);
  assert_non_null(strstr(pk_cassette_errmsg(c), "'{{' or '}}'"));
  assert_int_equal(pk_cassette_placeholder(c, "bad name", "x"), PK_EINVAL);
  assert_int_equal(pk_cassette_redact(c, "S", ""), PK_EINVAL);
  close_ok(c);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup_teardown(record_then_replay, setup, teardown),
      cmocka_unit_test_setup_teardown(none_mode_and_misses, setup, teardown),
      cmocka_unit_test_setup_teardown(repeats_and_strict, setup, teardown),
      cmocka_unit_test_setup_teardown(stdin_in_key, setup, teardown),
      cmocka_unit_test_setup_teardown(recorded_errors, setup, teardown),
      cmocka_unit_test_setup_teardown(utf8_split_across_chunks, setup,
                                      teardown),
      cmocka_unit_test_setup_teardown(redaction_round_trip, setup, teardown),
      cmocka_unit_test_setup_teardown(credential_shape_refused, setup,
                                      teardown),
      cmocka_unit_test_setup_teardown(quiet_saves, setup, teardown),
      cmocka_unit_test_setup_teardown(symlink_target_refused, setup, teardown),
      cmocka_unit_test_setup_teardown(misuse_is_explained, setup, teardown),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
