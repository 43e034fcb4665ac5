/* The recording runner (around the scripted and the real runner), its
 * queries, renderings and cmocka macros; and the dry-run runner. */
#include "harness.h"

#include <pk/fakes.h>
#include <pk/recording.h>
#include <pk/recording_cmocka.h>

#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ------------------------------------------------------------- helpers */

static pk_cmd *cmd_of(const char *program, ...) {
  pk_cmd *c;
  PKT_ASSERT_OK(pk_cmd_new(program, &c));
  va_list ap;
  va_start(ap, program);
  const char *a;
  while ((a = va_arg(ap, const char *)) != NULL)
    PKT_ASSERT_OK(pk_cmd_arg(c, a));
  va_end(ap);
  return c;
}

static pk_runner *scripted_any(const char *out) {
  pk_runner *r;
  PKT_ASSERT_OK(pk_scripted_new(&r));
  PKT_ASSERT_OK(pk_script_fallback(r, pk_reply_ok(out)));
  return r;
}

static pk_runner *recorder(pk_runner *inner) {
  pk_runner *rec;
  PKT_ASSERT_OK(pk_recording_new(inner, &rec));
  assert_string_equal(pk_runner_name(rec), "recording");
  return rec;
}

/* Run cmd through r with pk_output; returns the verb's code. */
static int run(pk_runner *r, const pk_cmd *c, pk_result **res) {
  *res = NULL;
  return pk_output(r, c, res);
}

/* The results agree on everything user code can observe (durations
 * aside). */
static void assert_same_result(const pk_result *a, const pk_result *b) {
  assert_int_equal(pk_result_outcome(a), pk_result_outcome(b));
  assert_int_equal(pk_result_code(a), pk_result_code(b));
  assert_int_equal(pk_result_signal(a), pk_result_signal(b));
  assert_int_equal(pk_result_error(a), pk_result_error(b));
  assert_string_equal(pk_result_errmsg(a), pk_result_errmsg(b));
  assert_int_equal(pk_result_os_errno(a), pk_result_os_errno(b));
  const char *sa = pk_result_stage(a), *sb = pk_result_stage(b);
  assert_string_equal(sa ? sa : "-", sb ? sb : "-");
  size_t la, lb;
  const char *oa = pk_result_stdout(a, &la), *ob = pk_result_stdout(b, &lb);
  assert_int_equal(la, lb);
  assert_memory_equal(oa, ob, la);
  oa = pk_result_stderr(a, &la);
  ob = pk_result_stderr(b, &lb);
  assert_int_equal(la, lb);
  assert_memory_equal(oa, ob, la);
  assert_string_equal(pk_result_spawn_method(a), pk_result_spawn_method(b));
  for (pk_stream s = PK_STDOUT; s <= PK_STDERR; s++)
    assert_int_equal(pk_result_total_lines(a, s), pk_result_total_lines(b, s));
  assert_int_equal(pk_result_truncated(a), pk_result_truncated(b));
}

/* Check a rendering and free it. */
static void assert_text(char *got, const char *want) {
  assert_non_null(got);
  if (strcmp(got, want) != 0)
    fail_msg("rendering differs\n  want: %s\n  got:  %s", want, got);
  pk_free(got);
}

/* --------------------------------------------------------------- tests */

static void records_every_field(void **state) {
  (void)state;
  pk_runner *inner = scripted_any("out\n");
  pk_runner *rec = recorder(inner);
  pk_cmd *c = cmd_of("git", "commit", "-m", "a b", NULL);
  PKT_ASSERT_OK(pk_cmd_set_cwd(c, "/tmp"));
  PKT_ASSERT_OK(pk_cmd_env_set(c, "A", "1"));
  PKT_ASSERT_OK(pk_cmd_env_remove(c, "B"));
  PKT_ASSERT_OK(pk_cmd_set_stdin_bytes(c, "x\0y\0z", 5));
  pk_result *res;
  PKT_ASSERT_OK(run(rec, c, &res));
  assert_string_equal(pk_result_stdout(res, NULL), "out\n");
  pk_result_free(res);
  pk_cmd_free(c); /* the recorder keeps its own copy */

  assert_int_equal(pk_recording_count(rec), 1);
  assert_int_equal(pk_scripted_calls(inner), 1);
  const pk_call *call = pk_recording_call(rec, 0);
  assert_non_null(call);
  assert_null(pk_recording_call(rec, 1));
  assert_int_equal(pk_call_index(call), 0);
  assert_string_equal(pk_call_program(call), "git");
  assert_int_equal(pk_call_argc(call), 3);
  assert_string_equal(pk_call_argv(call, 0), "commit");
  assert_string_equal(pk_call_argv(call, 2), "a b");
  assert_null(pk_call_argv(call, 3));
  assert_string_equal(pk_call_cwd(call), "/tmp");
  assert_int_equal(pk_call_stdin_mode(call), PK_STDIN_BYTES);
  size_t len = 0;
  const char *in = pk_call_stdin(call, &len);
  assert_int_equal(len, 5);
  assert_memory_equal(in, "x\0y\0z", 5);
  assert_null(pk_call_stdin_path(call));
  assert_false(pk_call_env_cleared(call));
  assert_int_equal(pk_call_inherit_count(call), 0);
  assert_string_equal(pk_cmd_program(pk_call_cmd(call)), "git");
  assert_text(pk_call_format(call),
              "git commit -m 'a b' (cwd /tmp; env +A=1 -B; stdin 5 bytes)");
  pk_runner_free(rec);
  assert_int_equal(pk_scripted_calls(inner), 1); /* inner still usable */
  pk_runner_free(inner);
}

static void env_set_removed_untouched(void **state) {
  (void)state;
  pk_runner *inner = scripted_any(NULL);
  pk_runner *rec = recorder(inner);
  pk_cmd *c = cmd_of("tool", NULL);
  PKT_ASSERT_OK(pk_cmd_env_set(c, "A", "1"));
  PKT_ASSERT_OK(pk_cmd_env_remove(c, "B"));
  PKT_ASSERT_OK(pk_cmd_env_set(c, "C", "3"));
  PKT_ASSERT_OK(pk_cmd_env_remove(c, "C")); /* the last override wins */
  PKT_ASSERT_OK(pk_cmd_env_remove(c, "D"));
  PKT_ASSERT_OK(pk_cmd_env_set(c, "D", ""));
  pk_result *res;
  PKT_ASSERT_OK(run(rec, c, &res));
  pk_result_free(res);
  pk_cmd_free(c);
  const pk_call *call = pk_recording_call(rec, 0);
  const char *v = "stale";
  assert_int_equal(pk_call_env(call, "A", &v), PK_ENV_SET);
  assert_string_equal(v, "1");
  assert_int_equal(pk_call_env(call, "B", &v), PK_ENV_REMOVED);
  assert_null(v);
  assert_int_equal(pk_call_env(call, "C", NULL), PK_ENV_REMOVED);
  assert_int_equal(pk_call_env(call, "D", &v), PK_ENV_SET);
  assert_string_equal(v, "");
  assert_int_equal(pk_call_env(call, "E", &v), PK_ENV_UNTOUCHED);
  assert_null(v);
  assert_string_equal(pk_call_env_value(call, "A"), "1");
  assert_null(pk_call_env_value(call, "B"));
  assert_null(pk_call_env_value(call, "E"));
  assert_true(pk_call_env_removed(call, "B"));
  assert_true(pk_call_env_removed(call, "C"));
  assert_false(pk_call_env_removed(call, "A"));
  assert_false(pk_call_env_removed(call, "E"));
  /* Every override, in call order. */
  static const struct {
    const char *name, *value;
  } want[] = {{"A", "1"},  {"B", NULL}, {"C", "3"},
              {"C", NULL}, {"D", NULL}, {"D", ""}};
  assert_int_equal(pk_call_env_count(call), 6);
  for (size_t i = 0; i < 6; i++) {
    assert_string_equal(pk_call_env_name(call, i, &v), want[i].name);
    if (want[i].value == NULL)
      assert_null(v);
    else
      assert_string_equal(v, want[i].value);
  }
  assert_null(pk_call_env_name(call, 6, &v));
  assert_null(v);
  assert_text(pk_call_format(call), "tool (env +A=1 -B +C=3 -C -D +D='')");
  PK_ASSERT_CALL_ENV(call, "A", "1");
  PK_ASSERT_CALL_ENV(call, "D", "");
  PK_ASSERT_CALL_ENV_REMOVED(call, "B");
  PK_ASSERT_CALL_ENV_REMOVED(call, "C");
  PK_ASSERT_CALL_ENV_UNTOUCHED(call, "E");
  pk_runner_free(rec);
  pk_runner_free(inner);
}

static void cleared_and_allow_list(void **state) {
  (void)state;
  pk_runner *inner = scripted_any(NULL);
  pk_runner *rec = recorder(inner);
  pk_cmd *cleared = cmd_of("a", NULL), *allow = cmd_of("b", NULL);
  PKT_ASSERT_OK(pk_cmd_env_clear(cleared));
  PKT_ASSERT_OK(pk_cmd_env_set(cleared, "X", "1"));
  PKT_ASSERT_OK(pk_cmd_inherit_env(allow, "HOME"));
  PKT_ASSERT_OK(pk_cmd_inherit_env(allow, "PATH"));
  pk_result *res;
  PKT_ASSERT_OK(run(rec, cleared, &res));
  pk_result_free(res);
  PKT_ASSERT_OK(run(rec, allow, &res));
  pk_result_free(res);
  const pk_call *c0 = pk_recording_call(rec, 0),
                *c1 = pk_recording_call(rec, 1);
  assert_true(pk_call_env_cleared(c0));
  assert_int_equal(pk_call_inherit_count(c0), 0);
  assert_string_equal(pk_call_env_value(c0, "X"), "1");
  assert_false(pk_call_env_cleared(c1));
  assert_int_equal(pk_call_inherit_count(c1), 2);
  assert_string_equal(pk_call_inherit_name(c1, 0), "HOME");
  assert_string_equal(pk_call_inherit_name(c1, 1), "PATH");
  assert_null(pk_call_inherit_name(c1, 2));
  assert_text(pk_call_format(c0), "a (env cleared +X=1)");
  assert_text(pk_call_format(c1), "b (env only HOME,PATH)");
  pk_cmd_free(cleared);
  pk_cmd_free(allow);
  pk_runner_free(rec);
  pk_runner_free(inner);
}

static void stdin_modes(void **state) {
  (void)state;
  pk_runner *inner = scripted_any(NULL);
  pk_runner *rec = recorder(inner);
  pk_cmd *closed = cmd_of("p", NULL), *bytes = cmd_of("p", NULL);
  pk_cmd *file = cmd_of("p", NULL), *inherit = cmd_of("p", NULL);
  pk_cmd *empty = cmd_of("p", NULL);
  PKT_ASSERT_OK(pk_cmd_set_stdin_bytes(bytes, "\0", 1));
  PKT_ASSERT_OK(pk_cmd_set_stdin_file(file, "/dev/null"));
  PKT_ASSERT_OK(pk_cmd_set_stdin(inherit, PK_STDIN_INHERIT));
  PKT_ASSERT_OK(pk_cmd_set_stdin_bytes(empty, "", 0));
  pk_cmd *all[] = {closed, bytes, file, inherit, empty};
  for (size_t i = 0; i < 5; i++) {
    pk_result *res;
    PKT_ASSERT_OK(run(rec, all[i], &res));
    pk_result_free(res);
  }
  size_t len = 99;
  const pk_call *c = pk_recording_call(rec, 0);
  assert_int_equal(pk_call_stdin_mode(c), PK_STDIN_CLOSED);
  assert_null(pk_call_stdin(c, &len));
  assert_int_equal(len, 0);
  assert_text(pk_call_format(c), "p");
  c = pk_recording_call(rec, 1);
  assert_int_equal(pk_call_stdin_mode(c), PK_STDIN_BYTES);
  const char *d = pk_call_stdin(c, &len);
  assert_int_equal(len, 1);
  assert_int_equal(d[0], '\0');
  assert_text(pk_call_format(c), "p (stdin 1 byte)");
  c = pk_recording_call(rec, 2);
  assert_int_equal(pk_call_stdin_mode(c), PK_STDIN_FILE);
  assert_string_equal(pk_call_stdin_path(c), "/dev/null");
  assert_null(pk_call_stdin(c, NULL));
  assert_text(pk_call_format(c), "p (stdin file /dev/null)");
  c = pk_recording_call(rec, 3);
  assert_int_equal(pk_call_stdin_mode(c), PK_STDIN_INHERIT);
  assert_text(pk_call_format(c), "p (stdin inherited)");
  c = pk_recording_call(rec, 4);
  assert_int_equal(pk_call_stdin_mode(c), PK_STDIN_BYTES);
  assert_non_null(pk_call_stdin(c, &len));
  assert_int_equal(len, 0);
  assert_text(pk_call_format(c), "p (stdin 0 bytes)");
  for (size_t i = 0; i < 5; i++)
    pk_cmd_free(all[i]);
  pk_runner_free(rec);
  pk_runner_free(inner);
}

static void only_call_and_clear(void **state) {
  (void)state;
  pk_runner *inner = scripted_any(NULL);
  pk_runner *rec = recorder(inner);
  const pk_call *c = (const pk_call *)rec; /* must be overwritten */
  char *why = NULL;
  assert_int_equal(pk_recording_only_call(rec, &c, &why), PK_ESRCH);
  assert_null(c);
  assert_text(why, "expected exactly one call, recorded 0:\n  (no calls)\n");
  assert_text(pk_recording_format(rec), "  (no calls)\n");

  pk_cmd *st = cmd_of("git", "status", NULL);
  pk_cmd *lg = cmd_of("git", "log", "--format=%H %s", NULL);
  pk_result *res;
  PKT_ASSERT_OK(run(rec, st, &res));
  pk_result_free(res);
  PKT_ASSERT_OK(pk_recording_only_call(rec, &c, &why));
  assert_null(why);
  assert_ptr_equal(c, pk_recording_call(rec, 0));
  PKT_ASSERT_OK(pk_recording_only_call(rec, &c, NULL));
  assert_ptr_equal(PK_ONLY_CALL(rec), c);
  PK_ASSERT_ONLY_CALL(rec);
  PK_ASSERT_CALLED(rec, 1);

  PKT_ASSERT_OK(run(rec, lg, &res));
  pk_result_free(res);
  assert_int_equal(pk_recording_only_call(rec, &c, &why), PK_ESRCH);
  assert_null(c);
  assert_text(why, "expected exactly one call, recorded 2:\n"
                   "  #0 git status\n"
                   "  #1 git log '--format=%H %s'\n");
  assert_int_equal(pk_recording_only_call(rec, &c, NULL), PK_ESRCH);
  assert_text(pk_recording_format(rec),
              "  #0 git status\n  #1 git log '--format=%H %s'\n");
  PK_ASSERT_CALLED(rec, 2);

  pk_recording_clear(rec);
  assert_int_equal(pk_recording_count(rec), 0);
  assert_null(pk_recording_call(rec, 0));
  PKT_ASSERT_OK(run(rec, lg, &res));
  pk_result_free(res);
  c = PK_ONLY_CALL(rec);
  assert_int_equal(pk_call_index(c), 0);
  PK_ASSERT_CALL_ARGV(c, "git", "log", "--format=%H %s");
  pk_cmd_free(st);
  pk_cmd_free(lg);
  pk_runner_free(rec);
  pk_runner_free(inner);
}

static void has_flag_forms(void **state) {
  (void)state;
  pk_runner *inner = scripted_any(NULL);
  pk_runner *rec = recorder(inner);
  pk_cmd *cmd = cmd_of("git", "push", "--force", "--message=hi there", "-v",
                       "--empty=", "origin", "--", "--tags", "-n", NULL);
  pk_result *res;
  PKT_ASSERT_OK(run(rec, cmd, &res));
  pk_result_free(res);
  pk_cmd_free(cmd);
  const pk_call *c = PK_ONLY_CALL(rec);
  assert_true(pk_call_has_flag(c, "--force"));
  assert_true(pk_call_has_flag(c, "--message")); /* --name=value */
  assert_true(pk_call_has_flag(c, "--message=hi there"));
  assert_true(pk_call_has_flag(c, "-v"));
  assert_true(pk_call_has_flag(c, "--empty"));
  assert_true(pk_call_has_flag(c, "origin"));  /* an equal argument */
  assert_true(pk_call_has_flag(c, "--"));      /* itself */
  assert_false(pk_call_has_flag(c, "--forc")); /* no prefix match */
  assert_false(pk_call_has_flag(c, "--force-with-lease"));
  assert_false(pk_call_has_flag(c, "--mess"));
  assert_false(pk_call_has_flag(c, "--tags")); /* after --: an operand */
  assert_false(pk_call_has_flag(c, "-n"));
  assert_false(pk_call_has_flag(c, "push=x"));
  assert_false(pk_call_has_flag(c, "git")); /* the program is no flag */
  assert_false(pk_call_has_flag(c, ""));
  assert_false(pk_call_has_flag(c, NULL));
  assert_false(pk_call_has_flag(NULL, "--force"));
  PK_ASSERT_CALL_HAS_FLAG(c, "--force");
  PK_ASSERT_CALL_HAS_FLAG(c, "--message");
  pk_runner_free(rec);
  pk_runner_free(inner);
}

static void argv_macro_and_diff(void **state) {
  (void)state;
  pk_runner *inner = scripted_any(NULL);
  pk_runner *rec = recorder(inner);
  pk_cmd *cmd = cmd_of("git", "commit", "--amend", NULL);
  PKT_ASSERT_OK(pk_cmd_set_cwd(cmd, "/tmp"));
  pk_result *res;
  PKT_ASSERT_OK(run(rec, cmd, &res));
  pk_result_free(res);
  pk_cmd_free(cmd);
  const pk_call *c = PK_ONLY_CALL(rec);
  PK_ASSERT_CALL_ARGV(c, "git", "commit", "--amend");

  const char *const same[] = {"git", "commit", "--amend"};
  const char *const longer[] = {"git", "commit", "-m", "a b"};
  const char *const shorter[] = {"git"};
  const char *const prog[] = {"/usr/bin/git", "commit", "--amend"};
  assert_true(pk_call_argv_equal(c, same, 3));
  assert_false(pk_call_argv_equal(c, same, 2));
  assert_false(pk_call_argv_equal(c, longer, 4));
  assert_false(pk_call_argv_equal(c, shorter, 1));
  assert_false(pk_call_argv_equal(c, prog, 3)); /* no basename matching */
  assert_false(pk_call_argv_equal(c, NULL, 0));

  assert_text(pk_call_argv_diff(c, longer, 4),
              "argv differs at [2] (expected 4 elements, got 3):\n"
              "    [0] git\n"
              "    [1] commit\n"
              "  > [2] expected -m, got --amend\n"
              "  ! [3] expected 'a b', got (nothing)\n"
              "  call: git commit --amend (cwd /tmp)");
  assert_text(pk_call_argv_diff(c, shorter, 1),
              "argv differs at [1] (expected 1 elements, got 3):\n"
              "    [0] git\n"
              "  > [1] expected (nothing), got commit\n"
              "  ! [2] expected (nothing), got --amend\n"
              "  call: git commit --amend (cwd /tmp)");
  assert_text(pk_call_argv_diff(c, prog, 3),
              "argv differs at [0] (expected 3 elements, got 3):\n"
              "  > [0] expected /usr/bin/git, got git\n"
              "    [1] commit\n"
              "    [2] --amend\n"
              "  call: git commit --amend (cwd /tmp)");
  assert_text(pk_call_argv_diff(c, same, 3),
              "argv is as expected (3 elements)\n"
              "    [0] git\n"
              "    [1] commit\n"
              "    [2] --amend\n"
              "  call: git commit --amend (cwd /tmp)");
  assert_null(pk_call_argv_diff(NULL, same, 3));
  pk_runner_free(rec);
  pk_runner_free(inner);
}

static void quoting_in_renderings(void **state) {
  (void)state;
  pk_cmd *c = cmd_of("my tool", "it's", "", "$HOME", "a*b", "plain-arg", NULL);
  PKT_ASSERT_OK(pk_cmd_set_cwd(c, "/tmp/my dir"));
  PKT_ASSERT_OK(pk_cmd_env_set(c, "MSG", "hello world"));
  PKT_ASSERT_OK(pk_cmd_set_stdin_file(c, "/tmp/in put"));
  assert_text(pk_format_cmd(c),
              "'my tool' 'it'\\''s' '' '$HOME' 'a*b' plain-arg "
              "(cwd '/tmp/my dir'; env +MSG='hello world'; "
              "stdin file '/tmp/in put')");
  assert_null(pk_format_cmd(NULL));
  pk_cmd_free(c);
}

/* Each scenario through the inner runner directly and through the
 * recorder: the results must be identical. */
static void results_identical_to_inner(void **state) {
  (void)state;
  pk_runner *inner;
  PKT_ASSERT_OK(pk_scripted_new(&inner));
  PKT_ASSERT_OK(pk_script_program(inner, "ok", pk_reply_ok("yes\n")));
  PKT_ASSERT_OK(pk_script_program(inner, "bad", pk_reply_fail(3, "no\n")));
  PKT_ASSERT_OK(
      pk_script_program(inner, "sig", pk_reply_signalled(PK_SIGSEGV)));
  PKT_ASSERT_OK(pk_script_program(inner, "gone", pk_reply_not_found()));
  PKT_ASSERT_OK(pk_script_program(
      inner, "lines", pk_reply_lines((const char *[]){"a", "b", "c"}, 3)));
  PKT_ASSERT_OK(pk_script_program(inner, "slow", pk_reply_timed_out()));
  pk_runner *rec = recorder(inner);
  static const char *const progs[] = {"ok",    "bad",  "sig",    "gone",
                                      "lines", "slow", "nomatch"};
  size_t n = sizeof(progs) / sizeof(progs[0]);
  for (size_t i = 0; i < n; i++) {
    pk_cmd *c = cmd_of(progs[i], "arg", NULL);
    PKT_ASSERT_OK(pk_cmd_set_timeout(c, 50, 0, 0));
    pk_result *direct, *through;
    int rc1 = run(inner, c, &direct);
    int rc2 = run(rec, c, &through);
    assert_int_equal(rc1, rc2);
    assert_same_result(direct, through);
    pk_result_free(direct);
    pk_result_free(through);
    pk_cmd_free(c);
    /* Recorded before delegating, also when the inner start fails. */
    assert_int_equal(pk_recording_count(rec), i + 1);
    assert_string_equal(pk_call_program(pk_recording_call(rec, i)), progs[i]);
  }
  pk_runner_free(rec);
  pk_runner_free(inner);
}

static void on_line(pk_proc *p, pk_stream s, const char *line, size_t len,
                    void *data) {
  (void)p;
  if (s == PK_STDOUT)
    snprintf((char *)data + strlen(data), 64 - strlen(data), "[%.*s]", (int)len,
             line);
}

/* Kill, timeout and the clock go to the inner runner: a pending reply on
 * a scale-0 scripted runner times out at once, and a kill cancels it. */
static void signals_and_clock_reach_inner(void **state) {
  (void)state;
  pk_runner *inner;
  PKT_ASSERT_OK(pk_scripted_new(&inner));
  PKT_ASSERT_OK(pk_script_program(inner, "wait", pk_reply_pending()));
  PKT_ASSERT_OK(pk_script_program(
      inner, "lines", pk_reply_lines((const char *[]){"x", "y"}, 2)));
  pk_runner *rec = recorder(inner);
  pk_runner *rec2 = recorder(rec); /* a recorder around a recorder */

  pk_cmd *c = cmd_of("wait", NULL);
  PKT_ASSERT_OK(pk_cmd_set_timeout(c, 100000, 0, 0));
  uint64_t t0 = pkt_now_ms();
  pk_result *res;
  assert_int_equal(run(rec2, c, &res), PK_ETIMEOUT);
  assert_int_equal(pk_result_outcome(res), PK_OUTCOME_TIMED_OUT);
  assert_true(pkt_now_ms() - t0 < 5000); /* on the inner's clock */
  pk_result_free(res);

  PKT_ASSERT_OK(pk_cmd_set_timeout(c, 0, 0, 0));
  pk_proc *p;
  PKT_ASSERT_OK(pk_start(rec2, c, NULL, &p));
  assert_int_equal(pk_proc_pid(p), 0); /* the inner's exec, unchanged */
  PKT_ASSERT_OK(pk_proc_kill(p, PK_SIGKILL));
  assert_int_equal(pk_proc_wait(p), PK_ECANCELED);
  assert_int_equal(pk_result_outcome(pk_proc_result(p)), PK_OUTCOME_CANCELLED);
  assert_int_equal(pk_proc_kill(p, PK_SIGTERM), PK_ESRCH);
  pk_proc_free(p);

  /* Freed while running: release reaches the inner runner. */
  PKT_ASSERT_OK(pk_start(rec2, c, NULL, &p));
  pk_proc_free(p);

  char seen[64] = "";
  pk_cmd *l = cmd_of("lines", NULL);
  pk_start_opts o = {.on_line = on_line, .data = seen};
  PKT_ASSERT_OK(pk_start(rec2, l, &o, &p));
  PKT_ASSERT_OK(pk_proc_wait(p));
  assert_string_equal(seen, "[x][y]");
  pk_proc_free(p);

  assert_int_equal(pk_recording_count(rec2), 4);
  assert_int_equal(pk_recording_count(rec), 4);
  assert_string_equal(pk_call_program(pk_recording_call(rec, 3)), "lines");
  pk_cmd_free(c);
  pk_cmd_free(l);
  pk_runner_free(rec2);
  pk_runner_free(rec);
  pk_runner_free(inner);
}

static void around_real_runner(void **state) {
  (void)state;
  PKT_SKIP_UNLESS_REAL();
  pkt_snapshot snap;
  pkt_snapshot_take(&snap);
  pk_runner *inner = pkt_runner(PK_MECH_AUTO, 0);
  pk_runner *rec = recorder(inner);

  pk_cmd *echo = pkt_fixture("echo", "a b", "c", NULL);
  PKT_ASSERT_OK(pk_cmd_env_set(echo, "PK_REC", "1"));
  pk_result *direct, *through;
  PKT_ASSERT_OK(run(inner, echo, &direct));
  PKT_ASSERT_OK(run(rec, echo, &through));
  assert_string_equal(pk_result_stdout(through, NULL), "a b c\n");
  assert_same_result(direct, through);
  assert_true(pk_result_pid(through) > 0);
  pk_result_free(direct);
  pk_result_free(through);
  const pk_call *c = PK_ONLY_CALL(rec);
  PK_ASSERT_CALL_ARGV(c, PK_FIXTURE, "echo", "a b", "c");
  PK_ASSERT_CALL_ENV(c, "PK_REC", "1");

  pk_cmd *cat = pkt_fixture("cat", NULL);
  PKT_ASSERT_OK(pk_cmd_set_stdin_bytes(cat, "in\0put", 6));
  PKT_ASSERT_OK(run(rec, cat, &through));
  size_t len;
  const char *out = pk_result_stdout(through, &len);
  assert_int_equal(len, 6);
  assert_memory_equal(out, "in\0put", 6);
  pk_result_free(through);
  const void *in = pk_call_stdin(pk_recording_call(rec, 1), &len);
  assert_int_equal(len, 6);
  assert_memory_equal(in, "in\0put", 6);

  /* A live handle: the real pid shows through, a kill reaches the tree. */
  pk_cmd *slp = pkt_fixture("sleep", "30", NULL);
  pk_proc *p;
  PKT_ASSERT_OK(pk_start(rec, slp, NULL, &p));
  assert_true(pk_proc_pid(p) > 0);
  PKT_ASSERT_OK(pk_proc_kill(p, PK_SIGKILL));
  assert_int_equal(pk_proc_wait(p), PK_ECANCELED);
  assert_int_equal(pk_result_outcome(pk_proc_result(p)), PK_OUTCOME_CANCELLED);
  pk_proc_free(p);
  /* Freed while running. */
  PKT_ASSERT_OK(pk_start(rec, slp, NULL, &p));
  pk_proc_free(p);

  pk_cmd *missing = cmd_of("/nonexistent/pk-nope", NULL);
  assert_int_equal(run(inner, missing, &direct), PK_ENOENT);
  assert_int_equal(run(rec, missing, &through), PK_ENOENT);
  assert_same_result(direct, through);
  pk_result_free(direct);
  pk_result_free(through);
  assert_int_equal(pk_recording_count(rec), 5);

  pk_cmd_free(echo);
  pk_cmd_free(cat);
  pk_cmd_free(slp);
  pk_cmd_free(missing);
  pk_runner_free(rec);
  pk_runner_free(inner);
  pkt_snapshot_check(&snap);
}

/* ------------------------------------------------------------- threads */

#define NTHREADS 4
#define PER_THREAD 100

typedef struct worker {
  uv_thread_t t;
  pk_runner *r;
  int id;
  long bad;
} worker;

static void work(void *arg) {
  worker *w = arg;
  long bad = 0;
  for (int i = 0; i < PER_THREAD; i++) {
    char t[16], n[16];
    snprintf(t, sizeof(t), "t%d", w->id);
    snprintf(n, sizeof(n), "%d", i);
    pk_cmd *c;
    bad += pk_cmd_new("tool", &c) != 0;
    bad += pk_cmd_arg(c, t) != 0 || pk_cmd_arg(c, n) != 0;
    bad += pk_cmd_env_set(c, "THREAD", t) != 0;
    bad += pk_cmd_set_stdin_bytes(c, n, strlen(n) + 1) != 0; /* with NUL */
    pk_result *res = NULL;
    bad += pk_output(w->r, c, &res) != 0;
    bad += strcmp(pk_result_stdout(res, NULL), "ok\n") != 0;
    pk_result_free(res);
    pk_cmd_free(c);
  }
  w->bad = bad;
}

static void shared_by_threads(void **state) {
  (void)state;
  pk_runner *inner = scripted_any("ok\n");
  pk_runner *rec = recorder(inner);
  worker w[NTHREADS];
  for (int i = 0; i < NTHREADS; i++) {
    w[i] = (worker){.r = rec, .id = i};
    assert_int_equal(uv_thread_create(&w[i].t, work, &w[i]), 0);
  }
  for (int i = 0; i < NTHREADS; i++) {
    uv_thread_join(&w[i].t);
    assert_int_equal(w[i].bad, 0);
  }
  assert_int_equal(pk_recording_count(rec), NTHREADS * PER_THREAD);
  bool seen[NTHREADS][PER_THREAD] = {{false}};
  for (size_t k = 0; k < NTHREADS * PER_THREAD; k++) {
    const pk_call *c = pk_recording_call(rec, k);
    assert_int_equal(pk_call_index(c), k);
    assert_string_equal(pk_call_program(c), "tool");
    assert_int_equal(pk_call_argc(c), 2);
    int t = -1, i = -1;
    assert_int_equal(sscanf(pk_call_argv(c, 0), "t%d", &t), 1);
    assert_int_equal(sscanf(pk_call_argv(c, 1), "%d", &i), 1);
    assert_true(t >= 0 && t < NTHREADS && i >= 0 && i < PER_THREAD);
    assert_false(seen[t][i]);
    seen[t][i] = true;
    assert_string_equal(pk_call_env_value(c, "THREAD"), pk_call_argv(c, 0));
    size_t len;
    const char *in = pk_call_stdin(c, &len);
    assert_int_equal(len, strlen(pk_call_argv(c, 1)) + 1);
    assert_memory_equal(in, pk_call_argv(c, 1), len);
  }
  assert_int_equal(pk_scripted_calls(inner), NTHREADS * PER_THREAD);
  pk_runner_free(rec);
  pk_runner_free(inner);
}

/* -------------------------------------------------------------- dry-run */

static void dryrun_lines(void **state) {
  (void)state;
  pk_runner *d;
  PKT_ASSERT_OK(pk_dryrun_new(&d));
  assert_string_equal(pk_runner_name(d), "dryrun");
  pk_cmd *a = cmd_of("printf", "%s\\n", "it's", "", NULL);
  pk_cmd *b = cmd_of("/nonexistent/rm", "-rf", "a b", "$HOME", "x*", NULL);
  PKT_ASSERT_OK(pk_cmd_set_cwd(b, "/tmp"));
  PKT_ASSERT_OK(pk_cmd_env_remove(b, "HOME"));
  pk_cmd *c = cmd_of("make", "-j4", NULL);
  PKT_ASSERT_OK(pk_cmd_set_stdin_bytes(c, "abc", 3));
  pk_cmd *all[] = {a, b, c};
  for (size_t i = 0; i < 3; i++) {
    pk_result *res;
    PKT_ASSERT_OK(run(d, all[i], &res));
    assert_int_equal(pk_result_outcome(res), PK_OUTCOME_EXITED);
    assert_int_equal(pk_result_code(res), 0);
    size_t len = 9;
    pk_result_stdout(res, &len);
    assert_int_equal(len, 0);
    pk_result_stderr(res, &len);
    assert_int_equal(len, 0);
    assert_int_equal(pk_result_pid(res), 0); /* never spawned */
    pk_result_free(res);
  }
  char *text = NULL;
  PKT_ASSERT_OK(pk_run(d, c, &text, NULL));
  assert_string_equal(text, "");
  pk_free(text);
  assert_int_equal(pk_dryrun_count(d), 4);
  assert_string_equal(pk_dryrun_line(d, 0), "printf '%s\\n' 'it'\\''s' ''");
  assert_string_equal(pk_dryrun_line(d, 1),
                      "/nonexistent/rm -rf 'a b' '$HOME' 'x*' "
                      "(cwd /tmp; env -HOME)");
  assert_string_equal(pk_dryrun_line(d, 2), "make -j4 (stdin 3 bytes)");
  assert_string_equal(pk_dryrun_line(d, 3), pk_dryrun_line(d, 2));
  assert_null(pk_dryrun_line(d, 4));
  /* A timeout never fires before the instant answer. */
  PKT_ASSERT_OK(pk_cmd_set_timeout(c, 1, 0, 0));
  pk_result *res;
  PKT_ASSERT_OK(run(d, c, &res));
  assert_int_equal(pk_result_outcome(res), PK_OUTCOME_EXITED);
  pk_result_free(res);
  for (size_t i = 0; i < 3; i++)
    pk_cmd_free(all[i]);
  pk_runner_free(d);
}

static void dry_work(void *arg) {
  worker *w = arg;
  pk_runner *d = w->r;
  long bad = 0;
  for (int i = 0; i < PER_THREAD; i++) {
    pk_cmd *c = NULL;
    bad += pk_cmd_new("x", &c) != 0 || pk_cmd_arg(c, "a b") != 0;
    bad += pk_output(d, c, NULL) != 0;
    pk_cmd_free(c);
  }
  w->bad = bad;
}

static void dryrun_shared_by_threads(void **state) {
  (void)state;
  pk_runner *d;
  PKT_ASSERT_OK(pk_dryrun_new(&d));
  worker w[NTHREADS];
  for (int i = 0; i < NTHREADS; i++) {
    w[i] = (worker){.r = d, .id = i};
    assert_int_equal(uv_thread_create(&w[i].t, dry_work, &w[i]), 0);
  }
  for (int i = 0; i < NTHREADS; i++) {
    uv_thread_join(&w[i].t);
    assert_int_equal(w[i].bad, 0);
  }
  assert_int_equal(pk_dryrun_count(d), NTHREADS * PER_THREAD);
  for (size_t i = 0; i < NTHREADS * PER_THREAD; i++)
    assert_string_equal(pk_dryrun_line(d, i), "x 'a b'");
  pk_runner_free(d);
}

/* --------------------------------------------------------------- misuse */

static void misuse(void **state) {
  (void)state;
  pk_runner *out = (pk_runner *)&out;
  assert_int_equal(pk_recording_new(NULL, &out), PK_EINVAL);
  assert_null(out);
  pk_runner *inner = scripted_any(NULL);
  assert_int_equal(pk_recording_new(inner, NULL), PK_EINVAL);
  assert_int_equal(pk_dryrun_new(NULL), PK_EINVAL);
  /* Queries on runners of another kind. */
  assert_int_equal(pk_recording_count(inner), 0);
  assert_null(pk_recording_call(inner, 0));
  assert_null(pk_recording_format(inner));
  pk_recording_clear(inner);
  const pk_call *c;
  assert_int_equal(pk_recording_only_call(inner, &c, NULL), PK_EINVAL);
  assert_int_equal(pk_dryrun_count(inner), 0);
  assert_null(pk_dryrun_line(inner, 0));
  assert_int_equal(pk_recording_count(NULL), 0);
  pk_runner *rec = recorder(inner);
  assert_int_equal(pk_recording_only_call(rec, NULL, NULL), PK_EINVAL);
  assert_int_equal(pk_dryrun_count(rec), 0);
  /* Accessors on NULL. */
  assert_null(pk_call_program(NULL));
  assert_null(pk_call_cmd(NULL));
  assert_int_equal(pk_call_argc(NULL), 0);
  assert_null(pk_call_argv(NULL, 0));
  assert_null(pk_call_cwd(NULL));
  const char *v = "x";
  assert_int_equal(pk_call_env(NULL, "A", &v), PK_ENV_UNTOUCHED);
  assert_null(v);
  assert_int_equal(pk_call_env_count(NULL), 0);
  assert_false(pk_call_env_cleared(NULL));
  assert_int_equal(pk_call_stdin_mode(NULL), PK_STDIN_CLOSED);
  assert_null(pk_call_stdin(NULL, NULL));
  assert_null(pk_call_stdin_path(NULL));
  assert_null(pk_call_format(NULL));
  pk_runner_free(rec);
  pk_runner_free(inner);
  pk_runner_free(NULL);
}

/* ------------------------------------------------- allocation failures */

/* Fail allocation number fail_at (and every later one when persistent;
 * 0: never). Atomic: other tests allocate from several threads through
 * the same hooks. */
static atomic_long fail_at, allocs, live;
static atomic_bool persistent;

static bool should_fail(void) {
  if (fail_at <= 0)
    return false;
  long k = ++allocs;
  return persistent ? k >= fail_at : k == fail_at;
}
static void *t_malloc(size_t n) {
  void *p = should_fail() ? NULL : malloc(n);
  live += p != NULL;
  return p;
}
static void *t_calloc(size_t n, size_t s) {
  void *p = should_fail() ? NULL : calloc(n, s);
  live += p != NULL;
  return p;
}
static void *t_realloc(void *o, size_t n) {
  void *p = should_fail() ? NULL : realloc(o, n);
  live += o == NULL && p != NULL;
  return p;
}
static void t_free(void *p) {
  live -= p != NULL;
  free(p);
}

/* One attempt with every allocation from the Nth failing: each step
 * either works or says PK_ENOMEM / NULL, and nothing leaks. */
static int attempt(pk_runner *inner, pk_cmd *cmd, int *record_failed) {
  pk_runner *rec = NULL, *dry = NULL;
  int rc = pk_recording_new(inner, &rec);
  if (rc == 0) {
    pk_result *res = NULL;
    rc = pk_output(rec, cmd, &res);
    const char *stage = res != NULL ? pk_result_stage(res) : NULL;
    if (stage != NULL && strcmp(stage, "record") == 0) {
      /* The copy failed: nothing recorded, nothing delegated. */
      assert_int_equal(rc, PK_ENOMEM);
      assert_int_equal(pk_recording_count(rec), 0);
      ++*record_failed;
    }
    pk_result_free(res);
    assert_true(rc == 0 || rc == PK_ENOMEM);
    char *s = pk_recording_format(rec), *why = NULL;
    const pk_call *c = pk_recording_call(rec, 0);
    char *f = pk_call_format(c);
    char *diff = pk_call_argv_diff(c, (const char *const[]){"a"}, 1);
    const pk_call *only;
    int orc = pk_recording_only_call(rec, &only, &why);
    assert_true(c != NULL ? orc == 0 : orc == PK_ESRCH || orc == PK_ENOMEM);
    pk_free(s);
    pk_free(f);
    pk_free(diff);
    pk_free(why);
  }
  if (rc == 0 && (rc = pk_dryrun_new(&dry)) == 0) {
    rc = pk_output(dry, cmd, NULL);
    assert_true(rc == 0 || rc == PK_ENOMEM);
    assert_true(rc != 0 || pk_dryrun_line(dry, 0) != NULL);
  }
  pk_runner_free(dry);
  pk_runner_free(rec);
  return rc;
}

static void allocation_failures_in(bool persist) {
  persistent = persist;
  pk_runner *inner = scripted_any("x\n");
  pk_cmd *cmd = cmd_of("tool", "a b", NULL);
  PKT_ASSERT_OK(pk_cmd_env_set(cmd, "A", "1"));
  PKT_ASSERT_OK(pk_cmd_set_stdin_bytes(cmd, "in", 2));
  int record_failed = 0;
  PKT_ASSERT_OK(attempt(inner, cmd, &record_failed)); /* warm up */
  long n, enomem = 0;
  for (n = 1; n < 2000; n++) {
    long before = live;
    allocs = 0;
    fail_at = n;
    int rc = attempt(inner, cmd, &record_failed);
    fail_at = 0;
    if (live != before)
      fail_msg("N=%ld: %ld allocations leaked", n, live - before);
    assert_true(rc == 0 || rc == PK_ENOMEM);
    enomem += rc == PK_ENOMEM;
    if (allocs < n)
      break; /* the attempt needed fewer than n: all were exercised */
  }
  assert_true(n < 2000);
  assert_true(enomem > 0);
  assert_true(persist || record_failed > 0);
  pk_cmd_free(cmd);
  pk_runner_free(inner);
}

static void allocation_failures(void **state) {
  (void)state;
  allocation_failures_in(true);  /* every allocation from the Nth fails */
  allocation_failures_in(false); /* only the Nth fails */
}

int main(void) {
  pk_replace_allocator(t_malloc, t_realloc, t_calloc, t_free);
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(records_every_field),
      cmocka_unit_test(env_set_removed_untouched),
      cmocka_unit_test(cleared_and_allow_list),
      cmocka_unit_test(stdin_modes),
      cmocka_unit_test(only_call_and_clear),
      cmocka_unit_test(has_flag_forms),
      cmocka_unit_test(argv_macro_and_diff),
      cmocka_unit_test(quoting_in_renderings),
      cmocka_unit_test(results_identical_to_inner),
      cmocka_unit_test(signals_and_clock_reach_inner),
      cmocka_unit_test(around_real_runner),
      cmocka_unit_test(shared_by_threads),
      cmocka_unit_test(dryrun_lines),
      cmocka_unit_test(dryrun_shared_by_threads),
      cmocka_unit_test(misuse),
      cmocka_unit_test(allocation_failures),
  };
  return cmocka_run_group_tests(tests, pkt_setup, NULL);
}
