/* pk_client: defaults fill only what a command did not set, every verb
 * goes through the client's runner, misuse and out-of-memory paths, a real
 * child, and an example wrapper (client + functions + parsers). */
#include "harness.h"

#include <pk/client.h>
#include <pk/fakes.h>

#include <ctype.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define ARGV(...)                                                              \
  (const char *const[]){__VA_ARGS__},                                          \
      sizeof((const char *const[]){__VA_ARGS__}) / sizeof(const char *)

/* ------------------------------------------------------------- helpers */

/* What the scripted runner saw of the last command (a predicate rule
 * records it; the scripted runner calls predicates under its lock). */
typedef struct seen {
  int calls;
  pk_env_state foo, gitdir;
  char foo_val[64];
  int64_t timeout_ms;
  char cwd[128]; /* "" when the command had none */
} seen;

static bool record(const pk_cmd *cmd, void *data) {
  seen *s = data;
  const char *v = NULL;
  s->calls++;
  s->foo = pk_cmd_env_state(cmd, "FOO", &v);
  snprintf(s->foo_val, sizeof(s->foo_val), "%s", v ? v : "");
  s->gitdir = pk_cmd_env_state(cmd, "GIT_DIR", NULL);
  s->timeout_ms = pk_cmd_timeout_ms(cmd);
  const char *cwd = pk_cmd_cwd(cmd);
  snprintf(s->cwd, sizeof(s->cwd), "%s", cwd ? cwd : "");
  return true;
}

/* A scripted runner whose only rule records every command into *s. */
static pk_runner *recording(seen *s, pk_reply *reply) {
  pk_runner *r;
  PKT_ASSERT_OK(pk_scripted_new(&r));
  PKT_ASSERT_OK(pk_script_match(r, record, s, "records the command", reply));
  return r;
}

/* A "tool" client with every kind of default set. */
static pk_client *tool_client(pk_runner *r) {
  pk_client *c;
  PKT_ASSERT_OK(pk_client_new("tool", r, &c));
  PKT_ASSERT_OK(pk_client_env_set(c, "FOO", "default"));
  PKT_ASSERT_OK(pk_client_env_remove(c, "GIT_DIR"));
  PKT_ASSERT_OK(pk_client_set_timeout(c, 5000, 100, 0));
  PKT_ASSERT_OK(pk_client_set_cwd(c, "/client/dir"));
  return c;
}

static pk_cmd *client_cmd(const pk_client *c, const char *arg) {
  pk_cmd *cmd;
  PKT_ASSERT_OK(pk_client_cmd_args(c, &arg, 1, &cmd));
  return cmd;
}

/* ------------------------------------------------------------ defaults */

static void defaults_fill_an_unset_command(void **state) {
  (void)state;
  seen s = {0};
  pk_runner *r = recording(&s, pk_reply_ok("ok\n"));
  pk_client *c = tool_client(r);
  assert_string_equal(pk_client_program(c), "tool");
  assert_ptr_equal(pk_client_runner(c), r);
  pk_cmd *cmd = client_cmd(c, "status");
  assert_string_equal(pk_cmd_program(cmd), "tool");
  assert_int_equal(pk_cmd_argc(cmd), 1);
  assert_string_equal(pk_cmd_argv(cmd, 0), "status");
  pk_result *res = NULL;
  PKT_ASSERT_OK(pk_client_output(c, cmd, &res));
  assert_string_equal(pk_result_stdout(res, NULL), "ok\n");
  pk_result_free(res);
  assert_int_equal(s.calls, 1);
  assert_int_equal(s.foo, PK_ENV_SET);
  assert_string_equal(s.foo_val, "default");
  assert_int_equal(s.gitdir, PK_ENV_REMOVED);
  assert_int_equal(s.timeout_ms, 5000);
  assert_string_equal(s.cwd, "/client/dir");
  /* The caller's command is not changed by the verb. */
  assert_int_equal(pk_cmd_env_state(cmd, "FOO", NULL), PK_ENV_UNTOUCHED);
  assert_int_equal(pk_cmd_env_count(cmd), 0);
  assert_int_equal(pk_cmd_timeout_ms(cmd), 0);
  assert_null(pk_cmd_cwd(cmd));
  pk_cmd_free(cmd);
  pk_client_free(c);
  pk_runner_free(r);
}

static void command_settings_win(void **state) {
  (void)state;
  seen s = {0};
  pk_runner *r = recording(&s, pk_reply_ok(NULL));
  pk_client *c = tool_client(r);
  pk_cmd *cmd = client_cmd(c, "x");
  PKT_ASSERT_OK(pk_cmd_env_set(cmd, "FOO", "mine"));
  PKT_ASSERT_OK(pk_cmd_set_timeout(cmd, 250, -1, 0));
  PKT_ASSERT_OK(pk_cmd_set_cwd(cmd, "/own"));
  PKT_ASSERT_OK(pk_client_output(c, cmd, NULL));
  assert_int_equal(s.foo, PK_ENV_SET);
  assert_string_equal(s.foo_val, "mine");
  assert_int_equal(s.gitdir, PK_ENV_REMOVED); /* untouched: default */
  assert_int_equal(s.timeout_ms, 250);
  assert_string_equal(s.cwd, "/own");
  pk_cmd_free(cmd);
  pk_client_free(c);
  pk_runner_free(r);
}

/* A removal in the command beats a default value, and a value in the
 * command beats a default removal. */
static void command_env_removal_and_set_win(void **state) {
  (void)state;
  seen s = {0};
  pk_runner *r = recording(&s, pk_reply_ok(NULL));
  pk_client *c = tool_client(r);
  pk_cmd *cmd = client_cmd(c, "x");
  PKT_ASSERT_OK(pk_cmd_env_remove(cmd, "FOO"));
  PKT_ASSERT_OK(pk_cmd_env_set(cmd, "GIT_DIR", "/repo/.git"));
  PKT_ASSERT_OK(pk_client_output(c, cmd, NULL));
  assert_int_equal(s.foo, PK_ENV_REMOVED);
  assert_int_equal(s.gitdir, PK_ENV_SET);
  /* The last override in the command counts, as for pk_cmd itself. */
  PKT_ASSERT_OK(pk_cmd_env_set(cmd, "FOO", "again"));
  PKT_ASSERT_OK(pk_cmd_env_remove(cmd, "FOO"));
  pk_cmd *applied;
  PKT_ASSERT_OK(pk_client_apply(c, cmd, &applied));
  assert_int_equal(pk_cmd_env_state(applied, "FOO", NULL), PK_ENV_REMOVED);
  assert_int_equal(pk_cmd_env_count(applied), pk_cmd_env_count(cmd));
  pk_cmd_free(applied);
  pk_cmd_free(cmd);
  pk_client_free(c);
  pk_runner_free(r);
}

/* A later default replaces an earlier one; 0 / NULL remove a default. */
static void defaults_replace_and_clear(void **state) {
  (void)state;
  seen s = {0};
  pk_runner *r = recording(&s, pk_reply_ok(NULL));
  pk_client *c = tool_client(r);
  PKT_ASSERT_OK(pk_client_env_set(c, "FOO", "second"));
  PKT_ASSERT_OK(pk_client_env_set(c, "GIT_DIR", "/d"));
  pk_cmd *cmd = client_cmd(c, "x");
  pk_cmd *applied;
  PKT_ASSERT_OK(pk_client_apply(c, cmd, &applied));
  const char *v = NULL;
  assert_int_equal(pk_cmd_env_state(applied, "FOO", &v), PK_ENV_SET);
  assert_string_equal(v, "second");
  assert_int_equal(pk_cmd_env_state(applied, "GIT_DIR", &v), PK_ENV_SET);
  assert_string_equal(v, "/d");
  assert_int_equal(pk_cmd_env_count(applied), 2); /* one per name */
  pk_cmd_free(applied);
  PKT_ASSERT_OK(pk_client_env_remove(c, "FOO"));
  PKT_ASSERT_OK(pk_client_set_timeout(c, 0, -1, 0));
  PKT_ASSERT_OK(pk_client_set_cwd(c, NULL));
  PKT_ASSERT_OK(pk_client_output(c, cmd, NULL));
  assert_int_equal(s.foo, PK_ENV_REMOVED);
  assert_int_equal(s.timeout_ms, 0);
  assert_string_equal(s.cwd, "");
  pk_cmd_free(cmd);
  pk_client_free(c);
  pk_runner_free(r);
}

/* The default timeout really bounds the run; the default accepted codes
 * really decide pk_client_checked, unless the command has its own. */
static void default_timeout_and_accepted_take_effect(void **state) {
  (void)state;
  pk_runner *r;
  PKT_ASSERT_OK(pk_scripted_new(&r));
  PKT_ASSERT_OK(pk_script_prefix(r, ARGV("grep", "hang"), pk_reply_pending()));
  PKT_ASSERT_OK(pk_script_program(r, "grep", pk_reply_fail(1, NULL)));
  pk_client *c;
  PKT_ASSERT_OK(pk_client_new("grep", r, &c));
  PKT_ASSERT_OK(pk_client_set_timeout(c, 60000, 10000, PK_SIGINT));
  int codes[] = {0, 1};
  PKT_ASSERT_OK(pk_client_set_accepted(c, codes, 2));
  pk_cmd *cmd = client_cmd(c, "hang");
  pk_result *res = NULL;
  assert_int_equal(pk_client_output(c, cmd, &res), PK_ETIMEOUT);
  assert_int_equal(pk_result_outcome(res), PK_OUTCOME_TIMED_OUT);
  pkt_assert_ended_by(res, PK_SIGINT); /* the default's */
  pk_result_free(res);
  /* A command that says "no timeout" on purpose keeps it: the pending
   * run then ends only by cancellation, not by the default. */
  PKT_ASSERT_OK(pk_cmd_set_timeout(cmd, 0, -1, 0));
  pk_cmd *applied = NULL;
  PKT_ASSERT_OK(pk_client_apply(c, cmd, &applied));
  assert_int_equal(pk_cmd_timeout_ms(applied), 0);
  pk_cmd_free(applied);
  pk_cmd_free(cmd);
  cmd = client_cmd(c, "pattern");
  PKT_ASSERT_OK(pk_client_checked(c, cmd, &res)); /* 1 accepted */
  assert_int_equal(pk_result_code(res), 1);
  pk_result_free(res);
  PKT_ASSERT_OK(pk_cmd_set_accepted(cmd, (const int[]){0}, 1));
  assert_int_equal(pk_client_checked(c, cmd, NULL), PK_EEXIT);
  pk_cmd_free(cmd);
  cmd = client_cmd(c, "pattern");
  PKT_ASSERT_OK(pk_client_set_accepted(c, NULL, 0)); /* back to {0} */
  assert_int_equal(pk_client_checked(c, cmd, NULL), PK_EEXIT);
  pk_cmd_free(cmd);
  pk_client_free(c);
  pk_runner_free(r);
}

/* --------------------------------------------------------------- verbs */

static void on_line(pk_proc *p, pk_stream s, const char *line, size_t len,
                    void *data) {
  (void)p, (void)s;
  char *buf = data;
  strncat(buf, line, len);
  strcat(buf, "|");
}

static bool foo_is_default(const pk_cmd *cmd, void *data) {
  (void)data;
  const char *v = NULL;
  return pk_cmd_env_state(cmd, "FOO", &v) == PK_ENV_SET &&
         strcmp(v, "default") == 0;
}

static void every_verb_goes_through_the_client(void **state) {
  (void)state;
  pk_runner *r;
  PKT_ASSERT_OK(pk_scripted_new(&r));
  /* Commands without the default FOO match no rule (PK_EUNEXPECTED).
   * The rule's replies are served once each, in order; the last repeats. */
  PKT_ASSERT_OK(pk_script_match(r, foo_is_default, NULL, "FOO=default",
                                pk_reply_fail(3, NULL)));
  PKT_ASSERT_OK(pk_script_then(r, pk_reply_fail(3, "bad\n")));
  PKT_ASSERT_OK(pk_script_then(r, pk_reply_ok("  text \n")));
  PKT_ASSERT_OK(pk_script_then(r, pk_reply_fail(1, NULL)));
  PKT_ASSERT_OK(pk_script_then(r, pk_reply_ok(NULL)));
  PKT_ASSERT_OK(pk_script_then(r, pk_reply_lines(ARGV("a", "b"))));
  pk_client *c = tool_client(r);
  pk_cmd *cmd = client_cmd(c, "x");
  int code = 0;
  PKT_ASSERT_OK(pk_client_exit_code(c, cmd, &code, NULL));
  assert_int_equal(code, 3);
  pk_result *res = NULL;
  assert_int_equal(pk_client_checked(c, cmd, &res), PK_EEXIT);
  assert_int_equal(pk_result_code(res), 3);
  assert_non_null(strstr(pk_result_errmsg(res), "bad"));
  pk_result_free(res);
  char *text = NULL;
  PKT_ASSERT_OK(pk_client_run(c, cmd, &text, &res));
  assert_string_equal(text, "text");
  assert_int_equal(pk_result_code(res), 0);
  pk_free(text);
  pk_result_free(res);
  bool yes = true;
  PKT_ASSERT_OK(pk_client_probe(c, cmd, &yes, NULL));
  assert_false(yes);
  PKT_ASSERT_OK(pk_client_probe(c, cmd, &yes, NULL));
  assert_true(yes);
  char lines[64] = "";
  pk_start_opts o = {.on_line = on_line, .data = lines};
  pk_proc *p = NULL;
  PKT_ASSERT_OK(pk_client_start(c, cmd, &o, &p));
  pk_cmd_free(cmd); /* the handle holds its own copy */
  PKT_ASSERT_OK(pk_proc_wait(p));
  assert_string_equal(lines, "a|b|");
  pk_proc_free(p);
  cmd = client_cmd(c, "y");
  PKT_ASSERT_OK(pk_client_output(c, cmd, &res));
  assert_string_equal(pk_result_stdout(res, NULL), "a\nb\n");
  pk_result_free(res);
  assert_int_equal(pk_scripted_calls(r), 7);
  /* The same command straight on the runner lacks FOO: no rule. */
  assert_int_equal(pk_output(r, cmd, NULL), PK_EUNEXPECTED);
  pk_cmd_free(cmd);
  pk_client_free(c);
  pk_runner_free(r);
}

/* -------------------------------------------------------------- misuse */

static void misuse_is_einval(void **state) {
  (void)state;
  pk_runner *r;
  PKT_ASSERT_OK(pk_scripted_new(&r));
  pk_client *c = (pk_client *)&c; /* poisoned: must be cleared */
  assert_int_equal(pk_client_new(NULL, r, &c), PK_EINVAL);
  assert_null(c);
  assert_int_equal(pk_client_new("", r, &c), PK_EINVAL);
  assert_int_equal(pk_client_new("git", NULL, &c), PK_EINVAL);
  assert_int_equal(pk_client_new("git", r, NULL), PK_EINVAL);
  assert_null(pk_client_program(NULL));
  assert_null(pk_client_runner(NULL));
  assert_string_equal(pk_client_errmsg(NULL), "");
  pk_client_free(NULL);
  c = tool_client(r);
  assert_string_equal(pk_client_errmsg(c), "");
  assert_int_equal(pk_client_env_set(NULL, "A", "1"), PK_EINVAL);
  assert_int_equal(pk_client_env_set(c, NULL, "1"), PK_EINVAL);
  assert_int_equal(pk_client_env_set(c, "", "1"), PK_EINVAL);
  assert_int_equal(pk_client_env_set(c, "A=B", "1"), PK_EINVAL);
  assert_int_equal(pk_client_env_set(c, "FOO", NULL), PK_EINVAL);
  assert_non_null(strstr(pk_client_errmsg(c), "pk_client_env_set"));
  assert_int_equal(pk_client_env_remove(c, NULL), PK_EINVAL);
  assert_int_equal(pk_client_env_remove(c, "FOO="), PK_EINVAL);
  assert_int_equal(pk_client_set_timeout(c, -1, -1, 0), PK_EINVAL);
  assert_int_equal(pk_client_set_timeout(c, 10, -1, -1), PK_EINVAL);
  assert_int_equal(pk_client_set_timeout(c, 10, -1, PK_NSIG), PK_EINVAL);
  assert_non_null(strstr(pk_client_errmsg(c), "pk_client_set_timeout"));
  assert_int_equal(pk_client_set_cwd(c, ""), PK_EINVAL);
  assert_int_equal(pk_client_set_cwd(NULL, "/"), PK_EINVAL);
  int bad[] = {0, 256}, neg[] = {-1};
  assert_int_equal(pk_client_set_accepted(c, NULL, 1), PK_EINVAL);
  assert_int_equal(pk_client_set_accepted(c, bad, 0), PK_EINVAL);
  assert_int_equal(pk_client_set_accepted(c, bad, 2), PK_EINVAL);
  assert_int_equal(pk_client_set_accepted(c, neg, 1), PK_EINVAL);
  assert_non_null(strstr(pk_client_errmsg(c), "0..255"));
  /* Refused setters left the defaults as they were. */
  pk_cmd *cmd = client_cmd(c, "x"), *applied;
  PKT_ASSERT_OK(pk_client_apply(c, cmd, &applied));
  const char *v = NULL;
  assert_int_equal(pk_cmd_env_state(applied, "FOO", &v), PK_ENV_SET);
  assert_string_equal(v, "default");
  assert_int_equal(pk_cmd_timeout_ms(applied), 5000);
  assert_string_equal(pk_cmd_cwd(applied), "/client/dir");
  pk_cmd_free(applied);
  /* Commands. */
  pk_cmd *out = cmd;
  assert_int_equal(pk_client_cmd(NULL, &out), PK_EINVAL);
  assert_null(out);
  assert_int_equal(pk_client_cmd(c, NULL), PK_EINVAL);
  out = cmd;
  assert_int_equal(pk_client_cmd_args(c, NULL, 1, &out), PK_EINVAL);
  assert_null(out);
  assert_int_equal(pk_client_cmd_args(c, ARGV("a", NULL), &out), PK_EINVAL);
  assert_null(out);
  assert_int_equal(pk_client_cmd_args(c, ARGV("a"), NULL), PK_EINVAL);
  PKT_ASSERT_OK(pk_client_cmd_args(c, NULL, 0, &out)); /* no args is fine */
  assert_int_equal(pk_cmd_argc(out), 0);
  pk_cmd_free(out);
  assert_int_equal(pk_client_apply(NULL, cmd, &applied), PK_EINVAL);
  assert_null(applied);
  assert_int_equal(pk_client_apply(c, NULL, &applied), PK_EINVAL);
  assert_int_equal(pk_client_apply(c, cmd, NULL), PK_EINVAL);
  /* Verbs clear their outputs and run nothing. */
  for (int i = 0; i < 2; i++) {
    const pk_client *vc = i == 0 ? NULL : c;
    const pk_cmd *vcmd = i == 0 ? cmd : NULL;
    pk_result *res = (pk_result *)&res;
    char *text = (char *)&text;
    int code = 7;
    bool yes = true;
    pk_proc *p = (pk_proc *)&p;
    assert_int_equal(pk_client_output(vc, vcmd, &res), PK_EINVAL);
    assert_null(res);
    res = (pk_result *)&res;
    assert_int_equal(pk_client_checked(vc, vcmd, &res), PK_EINVAL);
    assert_null(res);
    assert_int_equal(pk_client_run(vc, vcmd, &text, &res), PK_EINVAL);
    assert_null(text);
    assert_int_equal(pk_client_exit_code(vc, vcmd, &code, NULL), PK_EINVAL);
    assert_int_equal(code, -1);
    assert_int_equal(pk_client_probe(vc, vcmd, &yes, NULL), PK_EINVAL);
    assert_false(yes);
    assert_int_equal(pk_client_start(vc, vcmd, NULL, &p), PK_EINVAL);
    assert_null(p);
  }
  assert_int_equal(pk_client_start(c, cmd, NULL, NULL), PK_EINVAL);
  assert_int_equal(pk_scripted_calls(r), 0);
  pk_cmd_free(cmd);
  pk_client_free(c);
  pk_runner_free(r);
}

/* ------------------------------------------------------- out of memory */

/* Build a client with every default, a command and its applied copy. */
static int build_everything(pk_runner *r, pk_client **cp, pk_cmd **ap) {
  pk_client *c = NULL;
  pk_cmd *cmd = NULL;
  *ap = NULL;
  int rc = pk_client_new("tool", r, &c);
  if (rc == 0)
    rc = pk_client_env_set(c, "FOO", "one");
  if (rc == 0)
    rc = pk_client_env_set(c, "FOO", "two"); /* replaces */
  if (rc == 0)
    rc = pk_client_env_remove(c, "GIT_DIR");
  if (rc == 0)
    rc = pk_client_set_cwd(c, "/d");
  if (rc == 0)
    rc = pk_client_set_accepted(c, (const int[]){0, 1}, 2);
  if (rc == 0)
    rc = pk_client_cmd_args(c, ARGV("a", "b"), &cmd);
  if (rc == 0)
    rc = pk_client_apply(c, cmd, ap);
  pk_cmd_free(cmd);
  if (rc != 0) {
    pk_client_free(c);
    c = NULL;
  }
  *cp = c;
  return rc;
}

/* Fail the 1st, 2nd, ... allocation until everything succeeds: each step
 * reports PK_ENOMEM and leaks nothing (ASan / valgrind check that). */
static void enomem_at_every_allocation(void **state) {
  (void)state;
  pk_runner *r;
  PKT_ASSERT_OK(pk_scripted_new(&r));
  pk_client *c = NULL;
  pk_cmd *applied = NULL;
  long n = 0;
  for (;; n++) {
    pkt_fail_after(n);
    int rc = build_everything(r, &c, &applied);
    pkt_restore_allocator();
    if (rc == 0)
      break;
    assert_int_equal(rc, PK_ENOMEM);
    assert_null(c);
    assert_null(applied);
    assert_true(n < 1000);
  }
  assert_true(n > 10); /* the loop did fail some allocations */
  const char *v = NULL;
  assert_int_equal(pk_cmd_env_state(applied, "FOO", &v), PK_ENV_SET);
  assert_string_equal(v, "two");
  assert_int_equal(pk_cmd_env_state(applied, "GIT_DIR", NULL), PK_ENV_REMOVED);
  assert_string_equal(pk_cmd_cwd(applied), "/d");
  assert_int_equal(pk_cmd_argc(applied), 2);
  pk_cmd_free(applied);
  pk_client_free(c);
  pk_runner_free(r);
}

/* A setter that ran out of memory leaves the client as it was, and it
 * keeps working; a verb that cannot copy the command runs nothing. */
static void enomem_leaves_client_usable(void **state) {
  (void)state;
  pk_runner *r;
  PKT_ASSERT_OK(pk_scripted_new(&r));
  PKT_ASSERT_OK(pk_script_program(r, "tool", pk_reply_ok("fine\n")));
  pk_client *c = tool_client(r);
  for (long n = 0; n < 3; n++) { /* value, name, table */
    pkt_fail_after(n);
    int rc_new = pk_client_env_set(c, "NEW", "x");
    pkt_fail_after(0);
    int rc_old = pk_client_env_set(c, "FOO", "changed");
    int rc_cwd = pk_client_set_cwd(c, "/other");
    int rc_acc = pk_client_set_accepted(c, (const int[]){2}, 1);
    pkt_restore_allocator();
    assert_int_equal(rc_new, PK_ENOMEM);
    assert_int_equal(rc_old, PK_ENOMEM);
    assert_int_equal(rc_cwd, PK_ENOMEM);
    assert_int_equal(rc_acc, PK_ENOMEM);
  }
  pk_cmd *cmd = client_cmd(c, "x"), *applied;
  PKT_ASSERT_OK(pk_client_apply(c, cmd, &applied));
  const char *v = NULL;
  assert_int_equal(pk_cmd_env_state(applied, "NEW", NULL), PK_ENV_UNTOUCHED);
  assert_int_equal(pk_cmd_env_state(applied, "FOO", &v), PK_ENV_SET);
  assert_string_equal(v, "default");
  assert_string_equal(pk_cmd_cwd(applied), "/client/dir");
  pk_cmd_free(applied);
  pk_result *res = (pk_result *)&res;
  char *text = (char *)&text;
  int code = 7;
  bool yes = true;
  pk_proc *p = (pk_proc *)&p;
  pkt_fail_after(0);
  int rcs[] = {pk_client_output(c, cmd, &res),
               pk_client_run(c, cmd, &text, NULL),
               pk_client_exit_code(c, cmd, &code, NULL),
               pk_client_probe(c, cmd, &yes, NULL),
               pk_client_checked(c, cmd, NULL),
               pk_client_start(c, cmd, NULL, &p),
               pk_client_apply(c, cmd, &applied)};
  pkt_restore_allocator();
  for (size_t i = 0; i < sizeof(rcs) / sizeof(rcs[0]); i++)
    assert_int_equal(rcs[i], PK_ENOMEM);
  assert_null(res);
  assert_null(text);
  assert_int_equal(code, -1);
  assert_false(yes);
  assert_null(p);
  assert_null(applied);
  assert_int_equal(pk_scripted_calls(r), 0);
  PKT_ASSERT_OK(pk_client_run(c, cmd, &text, NULL));
  assert_string_equal(text, "fine");
  pk_free(text);
  pk_cmd_free(cmd);
  pk_client_free(c);
  pk_runner_free(r);
}

/* The same through a whole run on the scripted runner: every failed
 * allocation (in the client, the core or the double) ends the verb with
 * PK_ENOMEM, leaks nothing, and the next run works. */
static void enomem_at_every_allocation_of_a_run(void **state) {
  (void)state;
  pk_runner *r;
  PKT_ASSERT_OK(pk_scripted_new(&r));
  PKT_ASSERT_OK(pk_script_program(r, "tool", pk_reply_ok("fine\n")));
  pk_client *c = tool_client(r);
  pk_cmd *cmd = client_cmd(c, "x");
  long n = 0;
  for (;; n++) {
    char *text = NULL;
    pkt_fail_after(n);
    int rc = pk_client_run(c, cmd, &text, NULL);
    pkt_restore_allocator();
    if (rc == 0) {
      assert_string_equal(text, "fine");
      pk_free(text);
      break;
    }
    assert_int_equal(rc, PK_ENOMEM);
    assert_null(text);
    assert_true(n < 1000);
  }
  assert_true(n > 1);
  pk_cmd_free(cmd);
  pk_client_free(c);
  pk_runner_free(r);
}

/* ------------------------------------------------------------- threads */

typedef struct worker {
  const pk_client *c;
  pthread_t tid;
  int ok;
} worker;

static void *work(void *arg) {
  worker *w = arg;
  for (int i = 0; i < 50; i++) {
    pk_cmd *cmd = NULL;
    char *text = NULL;
    if (pk_client_cmd_args(w->c, ARGV("x"), &cmd) == 0 &&
        pk_client_run(w->c, cmd, &text, NULL) == 0 && strcmp(text, "ok") == 0)
      w->ok++;
    pk_free(text);
    pk_cmd_free(cmd);
  }
  return NULL;
}

static void one_client_serves_several_threads(void **state) {
  (void)state;
  pk_runner *r;
  PKT_ASSERT_OK(pk_scripted_new(&r));
  PKT_ASSERT_OK(pk_script_match(r, foo_is_default, NULL, "FOO=default",
                                pk_reply_ok("ok\n")));
  pk_client *c = tool_client(r);
  worker w[4];
  for (int i = 0; i < 4; i++) {
    w[i] = (worker){.c = c};
    assert_int_equal(pthread_create(&w[i].tid, NULL, work, &w[i]), 0);
  }
  for (int i = 0; i < 4; i++) {
    assert_int_equal(pthread_join(w[i].tid, NULL), 0);
    assert_int_equal(w[i].ok, 50);
  }
  assert_int_equal(pk_scripted_calls(r), 200);
  pk_client_free(c);
  pk_runner_free(r);
}

/* ----------------------------------------------------------- real child */

static void real_child_gets_the_defaults(void **state) {
  (void)state;
  PKT_SKIP_UNLESS_REAL();
  pkt_setenv("PKT_CLIENT_PARENT", "inherited");
  pkt_snapshot snap;
  pkt_snapshot_take(&snap);
  pk_runner *r;
  PKT_ASSERT_OK(pk_real_runner_new(NULL, &r));
  pk_client *c;
  PKT_ASSERT_OK(pk_client_new(PK_FIXTURE, r, &c));
  PKT_ASSERT_OK(pk_client_env_set(c, "PKT_CLIENT_VAR", "from the client"));
  PKT_ASSERT_OK(pk_client_env_remove(c, "PKT_CLIENT_PARENT"));
  PKT_ASSERT_OK(pk_client_set_cwd(c, "/"));
  PKT_ASSERT_OK(pk_client_set_timeout(c, 30000, -1, 0));
  pk_cmd *cmd;
  PKT_ASSERT_OK(pk_client_cmd_args(c, ARGV("getenv", "PKT_CLIENT_VAR"), &cmd));
  char *text = NULL;
  PKT_ASSERT_OK(pk_client_run(c, cmd, &text, NULL));
  assert_string_equal(text, "from the client");
  pk_free(text);
  PKT_ASSERT_OK(pk_cmd_env_set(cmd, "PKT_CLIENT_VAR", "own"));
  PKT_ASSERT_OK(pk_client_run(c, cmd, &text, NULL));
  assert_string_equal(text, "own");
  pk_free(text);
  pk_cmd_free(cmd);
  /* The default removal hides the parent's variable (getenv exits 1)... */
  PKT_ASSERT_OK(
      pk_client_cmd_args(c, ARGV("getenv", "PKT_CLIENT_PARENT"), &cmd));
  int code = -1;
  PKT_ASSERT_OK(pk_client_exit_code(c, cmd, &code, NULL));
  assert_int_equal(code, 1);
  PKT_ASSERT_OK(pk_exit_code(r, cmd, &code, NULL)); /* ...only via client */
  assert_int_equal(code, 0);
  pk_cmd_free(cmd);
  PKT_ASSERT_OK(pk_client_cmd_args(c, ARGV("cwd"), &cmd));
  PKT_ASSERT_OK(pk_client_run(c, cmd, &text, NULL));
#if defined(_WIN32) /* "/" is the current drive's root */
  assert_true(strlen(text) == 3 && strcmp(text + 1, ":\\") == 0);
#else
  assert_string_equal(text, "/");
#endif
  pk_free(text);
  pk_cmd_free(cmd);
  pk_client_free(c);
  pk_runner_free(r);
  pkt_snapshot_check(&snap);
  pkt_unsetenv("PKT_CLIENT_PARENT");
}

/* ---------------------------------------- example: a tiny git wrapper */
/* What a wrapper library looks like: a client with the tool's defaults,
 * one short function per operation, and a parser per output format. */

#define GIT_EPARSE PK_EIO /* git answered, but not in the expected shape */

static int git_new(pk_runner *r, pk_client **out) {
  int rc = pk_client_new("git", r, out);
  if (rc == 0)
    rc = pk_client_env_set(*out, "GIT_TERMINAL_PROMPT", "0");
  if (rc == 0)
    rc = pk_client_env_set(*out, "LC_ALL", "C");
  if (rc == 0)
    rc = pk_client_set_timeout(*out, 30000, -1, 0);
  if (rc != 0) {
    pk_client_free(*out);
    *out = NULL;
  }
  return rc;
}

/* Parser: an object id is exactly 40 lowercase hex digits. */
static int parse_oid(const char *text, char oid[41]) {
  if (strlen(text) != 40)
    return GIT_EPARSE;
  for (int i = 0; i < 40; i++)
    if (!isxdigit((unsigned char)text[i]) || isupper((unsigned char)text[i]))
      return GIT_EPARSE;
  memcpy(oid, text, 41);
  return 0;
}

/* HEAD's object id in repo. */
static int git_head(const pk_client *git, const char *repo, char oid[41]) {
  pk_cmd *cmd = NULL;
  char *text = NULL;
  int rc = pk_client_cmd_args(git, ARGV("rev-parse", "HEAD"), &cmd);
  if (rc == 0)
    rc = pk_cmd_set_cwd(cmd, repo);
  if (rc == 0)
    rc = pk_client_run(git, cmd, &text, NULL);
  if (rc == 0)
    rc = parse_oid(text, oid);
  pk_free(text);
  pk_cmd_free(cmd);
  return rc;
}

/* Is commit a an ancestor of b? (git answers with exit 0 / 1.) */
static int git_is_ancestor(const pk_client *git, const char *a, const char *b,
                           bool *yes) {
  pk_cmd *cmd = NULL;
  int rc =
      pk_client_cmd_args(git, ARGV("merge-base", "--is-ancestor", a, b), &cmd);
  if (rc == 0)
    rc = pk_client_probe(git, cmd, yes, NULL);
  pk_cmd_free(cmd);
  return rc;
}

static bool git_in_repo_without_prompt(const pk_cmd *cmd, void *data) {
  (void)data;
  const char *v = NULL;
  return pk_cmd_cwd(cmd) != NULL && strcmp(pk_cmd_cwd(cmd), "/repo") == 0 &&
         pk_cmd_env_state(cmd, "GIT_TERMINAL_PROMPT", &v) == PK_ENV_SET &&
         strcmp(v, "0") == 0 && pk_cmd_timeout_ms(cmd) == 30000;
}

static void example_git_wrapper(void **state) {
  (void)state;
  static const char oid[] = "0123456789abcdef0123456789abcdef01234567";
  pk_runner *r;
  PKT_ASSERT_OK(pk_scripted_new(&r));
  PKT_ASSERT_OK(pk_script_match(r, git_in_repo_without_prompt, NULL,
                                "git in /repo, no prompt",
                                pk_reply_ok("0123456789abcdef0123456789abcdef"
                                            "01234567\n")));
  PKT_ASSERT_OK(pk_script_then(r, pk_reply_ok("HEAD\n")));
  PKT_ASSERT_OK(
      pk_script_then(r, pk_reply_fail(128, "fatal: not a git repository\n")));
  PKT_ASSERT_OK(pk_script_prefix(r, ARGV("git", "merge-base", "--is-ancestor"),
                                 pk_reply_ok(NULL)));
  PKT_ASSERT_OK(pk_script_then(r, pk_reply_fail(1, NULL)));
  pk_client *git;
  PKT_ASSERT_OK(git_new(r, &git));
  char got[41] = "";
  PKT_ASSERT_OK(git_head(git, "/repo", got));
  assert_string_equal(got, oid);
  assert_int_equal(git_head(git, "/repo", got), GIT_EPARSE);
  assert_int_equal(git_head(git, "/repo", got), PK_EEXIT);
  assert_int_equal(git_head(git, "/elsewhere", got), PK_EUNEXPECTED);
  bool yes = false;
  PKT_ASSERT_OK(git_is_ancestor(git, "v1", "main", &yes));
  assert_true(yes);
  PKT_ASSERT_OK(git_is_ancestor(git, "main", "v1", &yes));
  assert_false(yes);
  pk_client_free(git);
  pk_runner_free(r);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(defaults_fill_an_unset_command),
      cmocka_unit_test(command_settings_win),
      cmocka_unit_test(command_env_removal_and_set_win),
      cmocka_unit_test(defaults_replace_and_clear),
      cmocka_unit_test(default_timeout_and_accepted_take_effect),
      cmocka_unit_test(every_verb_goes_through_the_client),
      cmocka_unit_test(misuse_is_einval),
      cmocka_unit_test(enomem_at_every_allocation),
      cmocka_unit_test(enomem_leaves_client_usable),
      cmocka_unit_test(enomem_at_every_allocation_of_a_run),
      cmocka_unit_test(one_client_serves_several_threads),
      cmocka_unit_test(real_child_gets_the_defaults),
      cmocka_unit_test(example_git_wrapper),
  };
  return cmocka_run_group_tests(tests, pkt_setup, NULL);
}
