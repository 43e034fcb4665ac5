/* The scripted runner: rules, replies, and the core behaviours (verbs,
 * lines, limits, timeouts, cancellation) it must share with a real child. */
#include "harness.h"

#include "internal.h" /* pk__fd_*: files through libuv, on every host */

#include <pk/fakes.h>
#include <pk/recording.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

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

static pk_runner *scripted(void) {
  pk_runner *r;
  PKT_ASSERT_OK(pk_scripted_new(&r));
  assert_string_equal(pk_runner_name(r), "scripted");
  return r;
}

#define ARGV(...)                                                              \
  (const char *const[]){__VA_ARGS__},                                          \
      sizeof((const char *const[]){__VA_ARGS__}) / sizeof(const char *)

static void prefix_is_element_wise(void **state) {
  (void)state;
  pk_runner *r = scripted();
  PKT_ASSERT_OK(
      pk_script_prefix(r, ARGV("git", "branch"), pk_reply_ok("main\n")));
  pk_cmd *yes = cmd_of("git", "branch", "-a", NULL);
  pk_cmd *abs = cmd_of("/usr/bin/git", "branch", NULL);
  pk_cmd *no1 = cmd_of("git", "branches", NULL);
  pk_cmd *no2 = cmd_of("rm", "branch", NULL);
  char *text = NULL;
  PKT_ASSERT_OK(pk_run(r, yes, &text, NULL));
  assert_string_equal(text, "main");
  pk_free(text);
  PKT_ASSERT_OK(pk_run(r, abs, &text, NULL)); /* basename match */
  pk_free(text);
  pk_result *res = NULL;
  assert_int_equal(pk_output(r, no1, &res), PK_EUNEXPECTED);
  assert_string_equal(pk_err_name(PK_EUNEXPECTED), "unexpected_command");
  assert_false(pk_is_not_found(PK_EUNEXPECTED));
  const char *msg = pk_result_errmsg(res);
  assert_non_null(strstr(msg, "git branches"));
  assert_non_null(strstr(msg, "closest rule: #1 prefix git branch"));
  pk_result_free(res);
  assert_int_equal(pk_output(r, no2, &res), PK_EUNEXPECTED);
  pk_result_free(res);
  assert_int_equal(pk_scripted_calls(r), 2);
  pk_cmd_free(yes);
  pk_cmd_free(abs);
  pk_cmd_free(no1);
  pk_cmd_free(no2);
  pk_runner_free(r);
}

static bool has_cwd_tmp(const pk_cmd *c, void *data) {
  (void)data;
  return pk_cmd_cwd(c) != NULL && strcmp(pk_cmd_cwd(c), "/tmp") == 0;
}

static void glob_program_predicate_fallback_order(void **state) {
  (void)state;
  pk_runner *r = scripted();
  PKT_ASSERT_OK(pk_script_match(r, has_cwd_tmp, NULL, "cwd is /tmp",
                                pk_reply_ok("pred\n")));
  PKT_ASSERT_OK(
      pk_script_glob(r, ARGV("kubectl", "get", "pod*"), pk_reply_ok("glob\n")));
  PKT_ASSERT_OK(pk_script_program(r, "kubectl", pk_reply_ok("any\n")));
  PKT_ASSERT_OK(pk_script_fallback(r, pk_reply_fail(9, "fallback\n")));
  char *t = NULL;
  pk_cmd *c = cmd_of("kubectl", "get", "pods", "-A", NULL);
  PKT_ASSERT_OK(pk_run(r, c, &t, NULL));
  assert_string_equal(t, "glob");
  pk_free(t);
  PKT_ASSERT_OK(pk_cmd_set_cwd(c, "/tmp")); /* first rule wins now */
  PKT_ASSERT_OK(pk_run(r, c, &t, NULL));
  assert_string_equal(t, "pred");
  pk_free(t);
  pk_cmd_free(c);
  c = cmd_of("kubectl", "apply", NULL);
  PKT_ASSERT_OK(pk_run(r, c, &t, NULL));
  assert_string_equal(t, "any");
  pk_free(t);
  pk_cmd_free(c);
  c = cmd_of("helm", NULL);
  int code = 0;
  PKT_ASSERT_OK(pk_exit_code(r, c, &code, NULL));
  assert_int_equal(code, 9);
  pk_cmd_free(c);
  pk_runner_free(r);
}

static void sequence_then_last_repeats(void **state) {
  (void)state;
  pk_runner *r = scripted();
  PKT_ASSERT_OK(pk_script_program(r, "poll", pk_reply_fail(1, NULL)));
  PKT_ASSERT_OK(pk_script_then(r, pk_reply_fail(2, NULL)));
  PKT_ASSERT_OK(pk_script_then(r, pk_reply_ok("done")));
  pk_cmd *c = cmd_of("poll", NULL);
  int want[] = {1, 2, 0, 0};
  for (int i = 0; i < 4; i++) {
    int code = -1;
    PKT_ASSERT_OK(pk_exit_code(r, c, &code, NULL));
    assert_int_equal(code, want[i]);
  }
  pk_cmd_free(c);
  pk_runner_free(r);
}

static void replies_map_to_results(void **state) {
  (void)state;
  pk_runner *r = scripted();
  pk_reply *ok = pk_reply_ok("out\n");
  PKT_ASSERT_OK(pk_reply_stderr(ok, "warn\n"));
  PKT_ASSERT_OK(pk_script_program(r, "ok", ok));
  PKT_ASSERT_OK(pk_script_program(r, "sig", pk_reply_signalled(PK_SIGSEGV)));
  PKT_ASSERT_OK(pk_script_program(r, "nf", pk_reply_not_found()));
  PKT_ASSERT_OK(pk_script_program(r, "perm", pk_reply_spawn_error(EACCES)));
  PKT_ASSERT_OK(pk_script_program(r, "to", pk_reply_timed_out()));
  pk_result *res = NULL;
  pk_cmd *c = cmd_of("ok", NULL);
  PKT_ASSERT_OK(pk_output(r, c, &res));
  assert_string_equal(pk_result_stdout(res, NULL), "out\n");
  assert_string_equal(pk_result_stderr(res, NULL), "warn\n");
  assert_int_equal(pk_result_pid(res), 0);
  assert_string_equal(pk_result_spawn_method(res), "scripted");
  pk_result_free(res);
  pk_cmd_free(c);
  c = cmd_of("sig", NULL);
  assert_int_equal(pk_checked(r, c, &res), PK_ESIGNALLED);
  assert_int_equal(pk_result_signal(res), PK_SIGSEGV);
  pk_result_free(res);
  pk_cmd_free(c);
  c = cmd_of("nf", NULL);
  assert_int_equal(pk_output(r, c, &res), PK_ENOENT);
  assert_int_equal(pk_result_os_errno(res), ENOENT);
  pk_result_free(res);
  pk_cmd_free(c);
  c = cmd_of("perm", NULL);
  assert_int_equal(pk_output(r, c, &res), PK_EACCES);
  assert_string_equal(pk_result_stage(res), "exec");
  pk_result_free(res);
  pk_cmd_free(c);
  c = cmd_of("to", NULL);
  PKT_ASSERT_OK(pk_cmd_set_timeout(c, 5000, -1, 0));
  assert_int_equal(pk_output(r, c, &res), PK_ETIMEOUT);
  assert_int_equal(pk_result_outcome(res), PK_OUTCOME_TIMED_OUT);
  assert_true(pk_result_duration_ms(res) < 1000); /* scale 0: instant */
  pk_result_free(res);
  pk_cmd_free(c);
  pk_runner_free(r);
}

/* pending: ends only by the command's timeout (on the runner's clock). */
static void pending_ends_by_timeout_or_cancel(void **state) {
  (void)state;
  pk_runner *r = scripted();
  PKT_ASSERT_OK(pk_script_program(r, "hang", pk_reply_pending()));
  pk_cmd *c = cmd_of("hang", NULL);
  PKT_ASSERT_OK(pk_cmd_set_timeout(c, 60000, 10000, 0));
  pk_result *res = NULL;
  uint64_t t0 = pkt_now_ms();
  assert_int_equal(pk_output(r, c, &res), PK_ETIMEOUT);
  assert_true(pkt_now_ms() - t0 < 2000);
  pkt_assert_ended_by(res, PK_SIGTERM);
  pk_result_free(res);
  pk_cmd_free(c);
  c = cmd_of("hang", NULL);
  pk_proc *p = NULL;
  PKT_ASSERT_OK(pk_start(r, c, NULL, &p));
  assert_int_equal(pk_proc_pid(p), 0); /* a double has no pid */
  PKT_ASSERT_OK(pk_proc_kill(p, PK_SIGKILL));
  assert_false(pk_proc_done(p)); /* never inside the call */
  assert_int_equal(pk_proc_wait(p), PK_ECANCELED);
  assert_int_equal(pk_result_outcome(pk_proc_result(p)), PK_OUTCOME_CANCELLED);
  pk_proc_free(p);
  pk_cmd_free(c);
  pk_runner_free(r);
}

/* Traps and ignores model a child that handles or ignores TERM. */
static void traps_and_ignores(void **state) {
  (void)state;
  pk_runner *r = scripted();
  pk_reply *h = pk_reply_pending();
  PKT_ASSERT_OK(pk_reply_stdout(h, "ready\n"));
  PKT_ASSERT_OK(pk_reply_trap(h, PK_SIGTERM, 42));
  PKT_ASSERT_OK(pk_script_program(r, "handler", h));
  pk_reply *ig = pk_reply_pending();
  PKT_ASSERT_OK(pk_reply_ignore(ig, PK_SIGTERM));
  PKT_ASSERT_OK(pk_script_program(r, "stubborn", ig));
  pk_reply *bad = pk_reply_pending();
  assert_int_equal(pk_reply_trap(bad, PK_SIGKILL, 1), PK_EINVAL);
  assert_int_equal(pk_reply_ignore(bad, PK_SIGSTOP), PK_EINVAL);
  pk_reply_free(bad);
  pk_result *res = NULL;
  pk_cmd *c = cmd_of("handler", NULL);
  PKT_ASSERT_OK(pk_cmd_set_timeout(c, 300, 500, 0));
  assert_int_equal(pk_output(r, c, &res), PK_ETIMEOUT);
  if (pkt_host_signals())
    assert_int_equal(pk_result_code(res), 42); /* its own exit, kept */
  else /* no soft signal to trap: terminated at the deadline */
    pkt_assert_ended_by(res, PK_SIGKILL);
  assert_string_equal(pk_result_stdout(res, NULL), "ready\n");
  pk_result_free(res);
  pk_cmd_free(c);
  c = cmd_of("stubborn", NULL);
  PKT_ASSERT_OK(pk_cmd_set_timeout(c, 300, 500, 0));
  assert_int_equal(pk_output(r, c, &res), PK_ETIMEOUT);
  pkt_assert_ended_by(res, PK_SIGKILL); /* grace ran out */
  pk_result_free(res);
  pk_cmd_free(c);
  pk_runner_free(r);
}

/* Output goes where the command sends it; stage-specific spawn errors
 * and incomplete output read like the real runner's. */
static void output_modes_stages_incomplete(void **state) {
  (void)state;
  pk_runner *r = scripted();
  pk_reply *oe = pk_reply_ok("to file\n");
  PKT_ASSERT_OK(pk_reply_stderr(oe, "dropped\n"));
  PKT_ASSERT_OK(pk_script_program(r, "w", oe));
  PKT_ASSERT_OK(
      pk_script_program(r, "cd", pk_reply_spawn_error_at("chdir", ENOENT)));
  pk_reply *inc = pk_reply_ok("hi\n");
  PKT_ASSERT_OK(pk_reply_incomplete(inc));
  PKT_ASSERT_OK(pk_script_program(r, "held", inc));
  /* An existing file, overwritten. */
  char dir[1024], path[1100];
  snprintf(dir, sizeof(dir), "%s/pk-scripted-XXXXXX", pkt_tmpdir());
  pkt_mkdtemp(dir);
  snprintf(path, sizeof(path), "%s/out", dir);
  int fd =
      pk__fd_open(path, UV_FS_O_WRONLY | UV_FS_O_CREAT | UV_FS_O_EXCL, 0600);
  assert_true(fd >= 0);
  PKT_ASSERT_OK(pk__fd_close(fd));
  pk_cmd *c = cmd_of("w", NULL);
  PKT_ASSERT_OK(pk_cmd_set_output(c, PK_STDOUT, PK_OUT_FILE, path));
  PKT_ASSERT_OK(pk_cmd_set_output(c, PK_STDERR, PK_OUT_NULL, NULL));
  pk_result *res = NULL;
  PKT_ASSERT_OK(pk_output(r, c, &res));
  assert_int_equal(pk_result_total_bytes(res, PK_STDOUT), 0);
  assert_int_equal(pk_result_total_bytes(res, PK_STDERR), 0);
  pk_result_free(res);
  char buf[32] = {0};
  fd = pk__fd_open(path, UV_FS_O_RDONLY, 0);
  assert_true(fd >= 0);
  assert_int_equal(pk__fd_read(fd, buf, sizeof(buf)), 8);
  PKT_ASSERT_OK(pk__fd_close(fd));
  uv_fs_t req;
  assert_int_equal(uv_fs_unlink(NULL, &req, path, NULL), 0);
  uv_fs_req_cleanup(&req);
  assert_int_equal(uv_fs_rmdir(NULL, &req, dir, NULL), 0);
  uv_fs_req_cleanup(&req);
  assert_string_equal(buf, "to file\n");
  pk_cmd_free(c);
  c = cmd_of("cd", NULL);
  assert_int_equal(pk_output(r, c, &res), PK_EBADCWD);
  assert_string_equal(pk_result_stage(res), "chdir");
  pk_result_free(res);
  pk_cmd_free(c);
  c = cmd_of("held", NULL);
  PKT_ASSERT_OK(pk_output(r, c, &res));
  assert_true(pk_result_output_incomplete(res));
  assert_string_equal(pk_result_stdout(res, NULL), "hi\n");
  pk_result_free(res);
  pk_cmd_free(c);
  pk_runner_free(r);
}

typedef struct seen {
  char text[512];
  size_t len;
  uint64_t at[8];
  int n;
} seen;

static void on_line(pk_proc *p, pk_stream s, const char *line, size_t len,
                    void *data) {
  (void)p;
  seen *sn = data;
  if (sn->n < 8)
    sn->at[sn->n++] = pkt_now_ms();
  sn->len += (size_t)snprintf(sn->text + sn->len, sizeof(sn->text) - sn->len,
                              "%d:%.*s|", (int)s, (int)len, line);
}

static void lines_and_timeline_order(void **state) {
  (void)state;
  pk_runner *r = scripted();
  PKT_ASSERT_OK(pk_script_program(r, "l", pk_reply_lines(ARGV("a", "b", "c"))));
  pk_reply *tl = pk_reply_timeline();
  PKT_ASSERT_OK(pk_reply_chunk(tl, PK_STDOUT, 0, "one\ntw", 6));
  PKT_ASSERT_OK(pk_reply_chunk(tl, PK_STDERR, 100, "err\n", 4));
  PKT_ASSERT_OK(pk_reply_chunk(tl, PK_STDOUT, 100, "o\n", 2));
  PKT_ASSERT_OK(pk_reply_exit(tl, 0, 3));
  PKT_ASSERT_OK(pk_script_program(r, "t", tl));
  /* The same at 30 s steps, for scale 0: played at once, it ends long
   * before the 60 s it would take in real time, whatever the host's load
   * (a 100 ms timeline could not tell "at once" from "slow host"). */
  tl = pk_reply_timeline();
  PKT_ASSERT_OK(pk_reply_chunk(tl, PK_STDOUT, 0, "one\ntw", 6));
  PKT_ASSERT_OK(pk_reply_chunk(tl, PK_STDERR, 30000, "err\n", 4));
  PKT_ASSERT_OK(pk_reply_chunk(tl, PK_STDOUT, 30000, "o\n", 2));
  PKT_ASSERT_OK(pk_reply_exit(tl, 0, 3));
  PKT_ASSERT_OK(pk_script_program(r, "t-slow", tl));
  pk_cmd *c = cmd_of("l", NULL);
  seen sn = {0};
  pk_start_opts o = {.on_line = on_line, .data = &sn};
  pk_proc *p = NULL;
  PKT_ASSERT_OK(pk_start(r, c, &o, &p));
  PKT_ASSERT_OK(pk_proc_wait(p));
  assert_string_equal(sn.text, "1:a|1:b|1:c|");
  pk_proc_free(p);
  pk_cmd_free(c);
  for (int scale = 0; scale <= 1; scale++) {
    PKT_ASSERT_OK(pk_scripted_set_time_scale(r, scale));
    memset(&sn, 0, sizeof(sn));
    c = cmd_of(scale == 0 ? "t-slow" : "t", NULL);
    uint64_t t0 = pkt_now_ms();
    PKT_ASSERT_OK(pk_start(r, c, &o, &p));
    PKT_ASSERT_OK(pk_proc_wait(p));
    uint64_t ms = pkt_now_ms() - t0;
    assert_string_equal(sn.text, "1:one|2:err|1:two|");
    assert_int_equal(pk_result_code(pk_proc_result(p)), 3);
    if (scale == 0)
      assert_true(ms < 30000);
    else
      assert_true(ms >= 190 && sn.at[2] - sn.at[1] >= 90);
    pk_proc_free(p);
    pk_cmd_free(c);
  }
  assert_int_equal(pk_scripted_set_time_scale(r, -1), PK_EINVAL);
  pk_runner_free(r);
}

static int sort_reply(const pk_cmd *cmd, const char *in, size_t len,
                      pk_reply *out, void *data) {
  (void)cmd, (void)data;
  char buf[256];
  size_t n = len < sizeof(buf) - 1 ? len : sizeof(buf) - 1;
  memcpy(buf, in, n);
  buf[n] = '\0';
  char *lines[16];
  int k = 0;
  for (char *save = NULL, *t = strtok_r(buf, "\n", &save); t && k < 16;
       t = strtok_r(NULL, "\n", &save))
    lines[k++] = t;
  for (int i = 1; i < k; i++)
    for (int j = i; j > 0 && strcmp(lines[j - 1], lines[j]) > 0; j--) {
      char *x = lines[j];
      lines[j] = lines[j - 1];
      lines[j - 1] = x;
    }
  for (int i = 0; i < k; i++) {
    pk_reply_stdout(out, lines[i]);
    pk_reply_stdout(out, "\n");
  }
  return 0;
}

static void callback_and_dialog_see_stdin(void **state) {
  (void)state;
  pk_runner *r = scripted();
  PKT_ASSERT_OK(
      pk_script_program(r, "sort", pk_reply_callback(sort_reply, NULL)));
  pk_reply *d = pk_reply_dialog();
  PKT_ASSERT_OK(pk_reply_dialog_step(d, "continue? [y/n]", "continuing\n"));
  PKT_ASSERT_OK(pk_reply_dialog_step(d, "really?", "done\n"));
  PKT_ASSERT_OK(pk_script_program(r, "ask", d));
  pk_cmd *c = cmd_of("sort", NULL);
  PKT_ASSERT_OK(pk_cmd_set_stdin_bytes(c, "pear\napple\nfig\n", 15));
  char *t = NULL;
  PKT_ASSERT_OK(pk_run(r, c, &t, NULL));
  assert_string_equal(t, "apple\nfig\npear");
  pk_free(t);
  pk_cmd_free(c);
  c = cmd_of("ask", NULL);
  PKT_ASSERT_OK(pk_cmd_set_stdin_bytes(c, "continue? [y/n]\nreally?\n", 24));
  pk_result *res = NULL;
  PKT_ASSERT_OK(pk_checked(r, c, &res));
  assert_string_equal(pk_result_stdout(res, NULL), "continuing\ndone\n");
  pk_result_free(res);
  PKT_ASSERT_OK(pk_cmd_set_stdin_bytes(c, "continue? [y/n]\nnope\n", 21));
  assert_int_equal(pk_checked(r, c, &res), PK_EEXIT);
  assert_non_null(strstr(pk_result_stderr(res, NULL), "expected 'really?'"));
  pk_result_free(res);
  pk_cmd_free(c);
  pk_runner_free(r);
}

static void capture_limit_applies(void **state) {
  (void)state;
  pk_runner *r = scripted();
  pk_reply *big = pk_reply_timeline();
  char chunk[1000];
  memset(chunk, 'x', sizeof(chunk));
  for (int i = 0; i < 100; i++)
    PKT_ASSERT_OK(pk_reply_chunk(big, PK_STDOUT, 0, chunk, sizeof(chunk)));
  PKT_ASSERT_OK(pk_script_program(r, "big", big));
  pk_cmd *c = cmd_of("big", NULL);
  PKT_ASSERT_OK(pk_cmd_set_capture_limit(c, PK_LIMIT_HEAD, 2500));
  pk_result *res = NULL;
  PKT_ASSERT_OK(pk_output(r, c, &res));
  size_t len;
  pk_result_stdout(res, &len);
  assert_int_equal(len, 2500);
  assert_true(pk_result_truncated(res));
  assert_int_equal(pk_result_total_bytes(res, PK_STDOUT), 100000);
  pk_result_free(res);
  PKT_ASSERT_OK(pk_cmd_set_capture_limit(c, PK_LIMIT_FAIL, 2500));
  assert_int_equal(pk_output(r, c, &res), PK_ETOOBIG);
  pk_result_free(res);
  pk_cmd_free(c);
  pk_runner_free(r);
}

typedef struct worker {
  uv_thread_t t;
  pk_runner *r;
  int bad;
} worker;

static void many(void *arg) {
  worker *w = arg;
  pk_cmd *c;
  if (pk_cmd_new("echo", &c) != 0 || pk_cmd_arg(c, "x") != 0) {
    w->bad = -1;
    pk_cmd_free(c);
    return;
  }
  for (int i = 0; i < 200; i++) {
    char *t = NULL;
    if (pk_run(w->r, c, &t, NULL) != 0 || strcmp(t, "x") != 0)
      w->bad++;
    pk_free(t);
  }
  pk_cmd_free(c);
}

static void shared_by_threads(void **state) {
  (void)state;
  pk_runner *r = scripted();
  PKT_ASSERT_OK(pk_script_program(r, "echo", pk_reply_ok("x\n")));
  worker w[4];
  for (int i = 0; i < 4; i++) {
    w[i] = (worker){.r = r};
    assert_int_equal(uv_thread_create(&w[i].t, many, &w[i]), 0);
  }
  for (int i = 0; i < 4; i++) {
    uv_thread_join(&w[i].t);
    assert_int_equal(w[i].bad, 0);
  }
  assert_int_equal(pk_scripted_calls(r), 800);
  pk_runner_free(r);
}

static void misuse_is_einval(void **state) {
  (void)state;
  /* Runners of another kind: the dry-run double, and a real runner where
   * this host has one (none is started). */
  pk_runner *others[2] = {NULL, NULL};
  PKT_ASSERT_OK(pk_dryrun_new(&others[0]));
  if (pkt_real_runs())
    others[1] = pkt_runner(PK_MECH_AUTO, 0);
  else
    print_message("no real runner on this host yet: the dry-run one only\n");
  for (int i = 0; i < 2 && others[i] != NULL; i++) {
    pk_runner *other = others[i];
    assert_int_equal(pk_script_program(other, "x", pk_reply_ok(NULL)),
                     PK_EINVAL);
    assert_int_equal(pk_scripted_set_time_scale(other, 1), PK_EINVAL);
    pk_runner_free(other);
  }
  pk_runner *r = scripted();
  assert_int_equal(pk_script_then(r, pk_reply_ok(NULL)),
                   PK_EINVAL); /* no rule */
  assert_int_equal(pk_script_program(r, "x", NULL), PK_ENOMEM);
  assert_int_equal(pk_script_prefix(r, NULL, 0, pk_reply_ok(NULL)), PK_EINVAL);
  assert_int_equal(pk_reply_chunk(NULL, PK_STDOUT, 0, "x", 1), PK_EINVAL);
  pk_cmd *c = cmd_of("x", NULL);
  pk_result *res = NULL;
  assert_int_equal(pk_output(r, c, &res), PK_EUNEXPECTED);
  assert_non_null(strstr(pk_result_errmsg(res), "no rules registered"));
  pk_result_free(res);
  pk_cmd_free(c);
  pk_runner_free(r);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(prefix_is_element_wise),
      cmocka_unit_test(glob_program_predicate_fallback_order),
      cmocka_unit_test(sequence_then_last_repeats),
      cmocka_unit_test(replies_map_to_results),
      cmocka_unit_test(pending_ends_by_timeout_or_cancel),
      cmocka_unit_test(traps_and_ignores),
      cmocka_unit_test(output_modes_stages_incomplete),
      cmocka_unit_test(lines_and_timeline_order),
      cmocka_unit_test(callback_and_dialog_see_stdin),
      cmocka_unit_test(capture_limit_applies),
      cmocka_unit_test(shared_by_threads),
      cmocka_unit_test(misuse_is_einval),
  };
  return cmocka_run_group_tests(tests, pkt_setup, NULL);
}
