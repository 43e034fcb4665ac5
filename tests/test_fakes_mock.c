/* The cmocka mock runner: checks and replies from cmocka's own queues.
 * Failure paths (unexpected call, missing reply, mismatch, unmet
 * expectation) must fail the test that hits them, so each runs in a fresh
 * copy of this program (started with libuv's uv_spawn, selected by
 * PK_MOCK_CHILD) whose status and output the parent checks. */
#include "harness.h"

#include <pk/mock.h>

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

static pk_runner *new_mock(void) {
  pk_runner *r;
  PKT_ASSERT_OK(pk_mock_new(&r));
  assert_string_equal(pk_runner_name(r), "mock");
  return r;
}

/* ------------------------------------------------------- happy paths */

static void checks_program_args_cwd(void **state) {
  (void)state;
  pk_runner *r = new_mock();
  /* cmocka's own macros, one per parameter. */
  expect_string(pk_mock_run, program, "git");
  expect_value(pk_mock_run, argc, 3);
  expect_string(pk_mock_run, argv, "log -n 5");
  expect_string(pk_mock_run, cwd, "/src");
  expect_any(pk_mock_run, cmd);
  will_return(pk_mock_run, pk_reply_ok("abc fix\n"));
  /* The helpers: no args and the inherited cwd are both "". */
  pk_mock_expect_call_in("", "make", "");
  pk_mock_will_reply(pk_reply_ok("built\n"));
  pk_cmd *c = cmd_of("git", "log", "-n", "5", NULL);
  PKT_ASSERT_OK(pk_cmd_set_cwd(c, "/src"));
  char *text = NULL;
  PKT_ASSERT_OK(pk_run(r, c, &text, NULL));
  assert_string_equal(text, "abc fix");
  pk_free(text);
  pk_cmd_free(c);
  c = cmd_of("make", NULL);
  PKT_ASSERT_OK(pk_run(r, c, &text, NULL));
  assert_string_equal(text, "built");
  pk_free(text);
  pk_cmd_free(c);
  assert_int_equal(pk_mock_calls(r), 2);
  pk_runner_free(r);
}

/* Code under test: a tiny deploy step that shells out three times. */
static int deploy(pk_runner *r, char **rev, int *apply_code) {
  pk_cmd *fetch = cmd_of("git", "fetch", "origin", NULL);
  pk_cmd *head = cmd_of("git", "rev-parse", "HEAD", NULL);
  pk_cmd *apply = cmd_of("kubectl", "apply", "-f", "deploy.yaml", NULL);
  int rc = pk_checked(r, fetch, NULL);
  if (rc == 0)
    rc = pk_run(r, head, rev, NULL);
  if (rc == 0)
    rc = pk_exit_code(r, apply, apply_code, NULL);
  pk_cmd_free(fetch);
  pk_cmd_free(head);
  pk_cmd_free(apply);
  return rc;
}

static void several_calls_in_order(void **state) {
  (void)state;
  pk_runner *r = new_mock();
  pk_mock_expect_call("git", "fetch origin");
  pk_mock_will_reply(pk_reply_ok(NULL));
  pk_mock_expect_call("git", "rev-parse HEAD");
  pk_mock_will_reply(pk_reply_ok("0123abc\n"));
  pk_mock_expect_call("kubectl", "apply -f deploy.yaml");
  pk_mock_will_reply(pk_reply_fail(3, "forbidden\n"));
  char *rev = NULL;
  int code = -1;
  PKT_ASSERT_OK(deploy(r, &rev, &code));
  assert_string_equal(rev, "0123abc");
  assert_int_equal(code, 3);
  pk_free(rev);
  assert_int_equal(pk_mock_calls(r), 3);
  pk_runner_free(r);
}

static void reply_kinds(void **state) {
  (void)state;
  pk_runner *r = new_mock();
  pk_cmd *c = cmd_of("tool", NULL);
  pk_result *res = NULL;
  pk_mock_expect_call("tool", "");
  pk_mock_will_reply(pk_reply_fail(2, "bad flag\n"));
  assert_int_equal(pk_checked(r, c, &res), PK_EEXIT);
  assert_int_equal(pk_result_code(res), 2);
  assert_string_equal(pk_result_stderr(res, NULL), "bad flag\n");
  pk_result_free(res);
  pk_mock_expect_call("tool", "");
  pk_mock_will_reply(pk_reply_signalled(PK_SIGSEGV));
  assert_int_equal(pk_checked(r, c, &res), PK_ESIGNALLED);
  assert_int_equal(pk_result_signal(res), PK_SIGSEGV);
  pk_result_free(res);
  pk_mock_expect_call("tool", "");
  pk_mock_will_reply(pk_reply_timed_out());
  PKT_ASSERT_OK(pk_cmd_set_timeout(c, 5000, -1, 0));
  uint64_t t0 = pkt_now_ms();
  assert_int_equal(pk_output(r, c, &res), PK_ETIMEOUT);
  assert_true(pkt_now_ms() - t0 < 1000); /* scale 0: no waiting */
  assert_int_equal(pk_result_outcome(res), PK_OUTCOME_TIMED_OUT);
  pk_result_free(res);
  pk_mock_expect_call("tool", "");
  pk_mock_will_reply(pk_reply_not_found());
  assert_int_equal(pk_output(r, c, &res), PK_ENOENT);
  assert_int_equal(pk_result_os_errno(res), ENOENT);
  assert_non_null(strstr(pk_result_errmsg(res), "tool"));
  pk_result_free(res);
  pk_mock_expect_call("tool", "");
  pk_mock_will_reply(pk_reply_spawn_error(EACCES));
  assert_int_equal(pk_output(r, c, &res), PK_EACCES);
  assert_string_equal(pk_result_stage(res), "exec");
  pk_result_free(res);
  assert_int_equal(pk_mock_calls(r), 5);
  pk_cmd_free(c);
  pk_runner_free(r);
}

typedef struct seen {
  char text[256];
  size_t len;
  int exits;
} seen;

static void on_line(pk_proc *p, pk_stream s, const char *line, size_t len,
                    void *data) {
  (void)p;
  seen *sn = data;
  sn->len += (size_t)snprintf(sn->text + sn->len, sizeof(sn->text) - sn->len,
                              "%d:%.*s|", (int)s, (int)len, line);
}

static void on_exit_cb(pk_proc *p, void *data) {
  (void)p;
  ((seen *)data)->exits++;
}

static void lines_and_live_handle(void **state) {
  (void)state;
  pk_runner *r = new_mock();
  const char *lines[] = {"alpha", "beta", "gamma"};
  pk_mock_expect_call("tail", "-f log");
  pk_mock_will_reply(pk_reply_lines(lines, 3));
  pk_mock_expect_call("tail", "-f log");
  pk_mock_will_reply(pk_reply_pending());
  pk_cmd *c = cmd_of("tail", "-f", "log", NULL);
  seen sn = {0};
  pk_start_opts o = {.on_line = on_line, .on_exit = on_exit_cb, .data = &sn};
  pk_proc *p = NULL;
  PKT_ASSERT_OK(pk_start(r, c, &o, &p));
  assert_int_equal(sn.exits, 0); /* never from inside pk_start */
  PKT_ASSERT_OK(pk_proc_wait(p));
  assert_string_equal(sn.text, "1:alpha|1:beta|1:gamma|");
  assert_int_equal(sn.exits, 1);
  assert_int_equal(pk_proc_pid(p), 0); /* a double has no pid */
  pk_proc_free(p);
  PKT_ASSERT_OK(pk_start(r, c, NULL, &p)); /* pending: ends by a kill */
  PKT_ASSERT_OK(pk_proc_kill(p, PK_SIGKILL));
  assert_int_equal(pk_proc_wait(p), PK_ECANCELED);
  assert_int_equal(pk_result_outcome(pk_proc_result(p)), PK_OUTCOME_CANCELLED);
  pk_proc_free(p);
  pk_cmd_free(c);
  pk_runner_free(r);
}

/* A checker over the whole command: data points at the expected token. */
static int token_and_stdin(LargestIntegralType value,
                           LargestIntegralType data) {
  const pk_cmd *c = (const pk_cmd *)(uintptr_t)value;
  const char *want = (const char *)(uintptr_t)data;
  const char *have = NULL;
  size_t len = 0;
  const char *in = pk_cmd_stdin_data(c, &len);
  return pk_cmd_env_state(c, "TOKEN", &have) == PK_ENV_SET &&
         strcmp(have, want) == 0 && len == 6 && memcmp(in, "title\n", 6) == 0;
}

static void cmd_checker_sees_env_and_stdin(void **state) {
  (void)state;
  pk_runner *r = new_mock();
  pk_mock_expect_cmd("gh", "pr create", token_and_stdin,
                     cast_ptr_to_largest_integral_type("s3cret"));
  pk_mock_will_reply(pk_reply_ok("https://example/pr/1\n"));
  pk_cmd *c = cmd_of("gh", "pr", "create", NULL);
  PKT_ASSERT_OK(pk_cmd_env_set(c, "TOKEN", "s3cret"));
  PKT_ASSERT_OK(pk_cmd_set_stdin_bytes(c, "title\n", 6));
  char *url = NULL;
  PKT_ASSERT_OK(pk_run(r, c, &url, NULL));
  assert_string_equal(url, "https://example/pr/1");
  pk_free(url);
  pk_cmd_free(c);
  pk_runner_free(r);
}

/* will_return_count hands out one reply several times: owned (and freed)
 * once. ASan / valgrind catch a double free. */
static void one_reply_served_several_times(void **state) {
  (void)state;
  pk_runner *r = new_mock();
  pk_reply *pong = pk_reply_ok("pong\n");
  will_return_count(pk_mock_run, pong, 3);
  for (int i = 0; i < 3; i++)
    pk_mock_expect_call("ping", "-c 1 host");
  pk_cmd *c = cmd_of("ping", "-c", "1", "host", NULL);
  for (int i = 0; i < 3; i++) {
    char *t = NULL;
    PKT_ASSERT_OK(pk_run(r, c, &t, NULL));
    assert_string_equal(t, "pong");
    pk_free(t);
  }
  assert_int_equal(pk_mock_calls(r), 3);
  pk_cmd_free(c);
  pk_runner_free(r);
}

static void time_scale_and_misuse(void **state) {
  (void)state;
  pk_runner *r = new_mock();
  pk_cmd *c = cmd_of("slow", NULL);
  PKT_ASSERT_OK(pk_cmd_set_timeout(c, 150, 0, 0));
  PKT_ASSERT_OK(pk_mock_set_time_scale(r, 1));
  pk_mock_expect_call("slow", "");
  pk_mock_will_reply(pk_reply_timed_out());
  uint64_t t0 = pkt_now_ms();
  assert_int_equal(pk_output(r, c, NULL), PK_ETIMEOUT);
  assert_true(pkt_now_ms() - t0 >= 140); /* real time now */
  assert_int_equal(pk_mock_set_time_scale(r, -1), PK_EINVAL);
  pk_runner *scripted = NULL;
  PKT_ASSERT_OK(pk_scripted_new(&scripted));
  assert_int_equal(pk_mock_set_time_scale(scripted, 0), PK_EINVAL);
  assert_int_equal(pk_mock_calls(scripted), 0);
  assert_int_equal(pk_mock_calls(NULL), 0);
  assert_int_equal(pk_mock_new(NULL), PK_EINVAL);
  pk_runner_free(scripted);
  /* A reply queued as NULL (a constructor out of memory) is PK_ENOMEM. */
  pk_mock_expect_any_call();
  will_return(pk_mock_run, NULL);
  pk_result *res = NULL;
  assert_int_equal(pk_output(r, c, &res), PK_ENOMEM);
  assert_non_null(strstr(pk_result_errmsg(res), "NULL"));
  pk_result_free(res);
  assert_int_equal(pk_mock_calls(r), 1);
  pk_cmd_free(c);
  pk_runner_free(r);
}

typedef struct other {
  uv_thread_t t;
  pk_runner *r;
  pk_cmd *c;
  int rc;
  char msg[256];
} other;

static void run_elsewhere(void *arg) {
  other *o = arg;
  pk_result *res = NULL;
  o->rc = pk_output(o->r, o->c, &res);
  snprintf(o->msg, sizeof(o->msg), "%s", pk_result_errmsg(res));
  pk_result_free(res);
}

/* From another thread the runner refuses before touching cmocka: the
 * queued expectation is still there for the owner's call. */
static void other_thread_is_refused(void **state) {
  (void)state;
  pk_runner *r = new_mock();
  pk_mock_expect_call("git", "status");
  pk_mock_will_reply(pk_reply_ok("clean\n"));
  other o = {.r = r, .c = cmd_of("git", "status", NULL)};
  assert_int_equal(uv_thread_create(&o.t, run_elsewhere, &o), 0);
  assert_int_equal(uv_thread_join(&o.t), 0);
  assert_int_equal(o.rc, PK_EINVAL);
  assert_non_null(strstr(o.msg, "another thread"));
  assert_int_equal(pk_mock_calls(r), 0);
  char *text = NULL;
  PKT_ASSERT_OK(pk_run(r, o.c, &text, NULL));
  assert_string_equal(text, "clean");
  pk_free(text);
  pk_cmd_free(o.c);
  pk_runner_free(r);
}

/* ------------------------------------------------ allocation failures */

static struct {
  long fail_at, calls, live;
  bool injected;
} ta;

static bool ta_fail(void) {
  if (ta.fail_at == 0 || ++ta.calls != ta.fail_at)
    return false;
  ta.injected = true;
  return true;
}

static void *ta_malloc(size_t n) {
  void *p = ta_fail() ? NULL : malloc(n);
  ta.live += p != NULL;
  return p;
}

static void *ta_calloc(size_t n, size_t size) {
  void *p = ta_fail() ? NULL : calloc(n, size);
  ta.live += p != NULL;
  return p;
}

static void *ta_realloc(void *old, size_t n) {
  void *p = ta_fail() ? NULL : realloc(old, n);
  ta.live += old == NULL && p != NULL;
  return p;
}

static void ta_free(void *p) {
  ta.live -= p != NULL;
  free(p);
}

static void ta_arm(long fail_at) {
  ta.fail_at = fail_at;
  ta.calls = 0;
  ta.injected = false;
}

/* One attempt with the Nth allocation failing; true if one was failed.
 * An ENOMEM before the checks consumes nothing: the queued call is then
 * made again, unfailed, so the queues end empty. */
static bool attempt(long n) {
  ta_arm(0);
  pk_reply *reply = pk_reply_ok("x\n");
  pk_cmd *c = cmd_of("git", "status", "--short", NULL);
  ta_arm(n);
  pk_runner *r = NULL;
  int rc = pk_mock_new(&r);
  if (rc == 0) {
    pk_mock_expect_call("git", "status --short");
    pk_mock_will_reply(reply);
    rc = pk_output(r, c, NULL);
  } else {
    pk_reply_free(reply);
  }
  bool injected = ta.injected;
  ta_arm(0);
  if (rc != 0 && rc != PK_ENOMEM)
    fail_msg("N=%ld: %s", n, pk_err_name(rc));
  if (r != NULL && pk_mock_calls(r) == 0) {
    assert_int_equal(rc, PK_ENOMEM);
    PKT_ASSERT_OK(pk_output(r, c, NULL));
  }
  pk_runner_free(r);
  pk_cmd_free(c);
  if (ta.live != 0)
    fail_msg("N=%ld: %ld blocks leaked", n, ta.live);
  return injected;
}

static void allocation_failures(void **state) {
  (void)state;
  PKT_ASSERT_OK(
      pk_replace_allocator(ta_malloc, ta_realloc, ta_calloc, ta_free));
  long n = 1;
  while (attempt(n) && n < 5000)
    n++;
  pk_replace_allocator(NULL, NULL, NULL, NULL);
  print_message("%ld allocations in a clean run, each one failed once\n",
                n - 1);
  assert_true(n > 5 && n < 5000);
}

/* ------------------------------------ failures, each in a fresh child */

static pk_runner *child_runner;
static pk_cmd *child_cmd;

static int child_setup(void **state) {
  (void)state;
  PKT_ASSERT_OK(pk_mock_new(&child_runner));
  child_cmd = cmd_of("svn", "push", NULL);
  return 0;
}

static int child_teardown(void **state) {
  (void)state;
  pk_cmd_free(child_cmd);
  pk_runner_free(child_runner);
  return 0;
}

static void child_unexpected(void **state) {
  (void)state;
  pk_output(child_runner, child_cmd, NULL);
  print_message("ran on\n"); /* not reached: cmocka ended the test */
}

static void child_no_reply(void **state) {
  (void)state;
  pk_mock_expect_call("svn", "push");
  pk_output(child_runner, child_cmd, NULL);
  print_message("ran on\n");
}

static void child_mismatch(void **state) {
  (void)state;
  pk_mock_expect_call("git", "push");
  pk_mock_will_reply(pk_reply_ok(NULL));
  pk_output(child_runner, child_cmd, NULL);
  print_message("ran on\n");
}

static pk_reply *child_unused;

static void child_unmet(void **state) {
  (void)state;
  pk_mock_expect_call("svn", "push");
  child_unused = pk_reply_ok(NULL); /* never taken: freed by the child */
  pk_mock_will_reply(child_unused);
}

static void child_ok(void **state) {
  (void)state;
  pk_mock_expect_call("svn", "push");
  pk_mock_will_reply(pk_reply_ok("done\n"));
  char *t = NULL;
  PKT_ASSERT_OK(pk_run(child_runner, child_cmd, &t, NULL));
  assert_string_equal(t, "done");
  pk_free(t);
}

static const struct CMUnitTest child_tests[] = {
    cmocka_unit_test(child_unexpected), cmocka_unit_test(child_no_reply),
    cmocka_unit_test(child_mismatch),   cmocka_unit_test(child_unmet),
    cmocka_unit_test(child_ok),
};

/* Run one child scenario and leave the process without leak checks: a
 * failed check abandons a run, as documented. */
static int child_main(const char *name) {
  for (size_t i = 0; i < sizeof(child_tests) / sizeof(child_tests[0]); i++) {
    if (strcmp(child_tests[i].name, name) != 0)
      continue;
    const struct CMUnitTest one[1] = {child_tests[i]};
    cmocka_set_message_output(CM_OUTPUT_STDOUT);
    int failed =
        cmocka_run_group_tests_name(name, one, child_setup, child_teardown);
    pk_reply_free(child_unused);
    fflush(stdout);
    fflush(stderr);
    _Exit(failed);
  }
  _Exit(100);
}

typedef struct child_out {
  int64_t exit_status;
  int term_signal;
  char text[32768]; /* its stdout, then its stderr */
} child_out;

/* The environment for the child: ours without cmocka's output switches,
 * plus the scenario (heap strings, NULL-terminated). */
static char **child_env(const char *name) {
  uv_env_item_t *items = NULL;
  int n = 0;
  assert_int_equal(uv_os_environ(&items, &n), 0);
  char **env = calloc((size_t)n + 2, sizeof(char *));
  assert_non_null(env);
  size_t k = 0;
  for (int i = 0; i < n; i++) {
    if (strncmp(items[i].name, "CMOCKA_", 7) == 0 ||
        strcmp(items[i].name, "PK_MOCK_CHILD") == 0)
      continue;
    size_t len = strlen(items[i].name) + strlen(items[i].value) + 2;
    env[k] = malloc(len);
    assert_non_null(env[k]);
    snprintf(env[k++], len, "%s=%s", items[i].name, items[i].value);
  }
  uv_os_free_environ(items, n);
  size_t len = strlen("PK_MOCK_CHILD=") + strlen(name) + 1;
  env[k] = malloc(len);
  assert_non_null(env[k]);
  snprintf(env[k], len, "PK_MOCK_CHILD=%s", name);
  return env;
}

/* The child's two output pipes, read to their ends, and its exit. */
typedef struct child_run {
  uv_process_t proc;
  uv_pipe_t pipe[2]; /* stdout, stderr */
  char buf[2][16384];
  size_t len[2];
  child_out *out;
} child_run;

static void child_alloc(uv_handle_t *h, size_t hint, uv_buf_t *b) {
  (void)hint;
  child_run *cr = h->data;
  int i = h == (uv_handle_t *)&cr->pipe[1];
  *b = uv_buf_init(cr->buf[i] + cr->len[i],
                   (unsigned)(sizeof(cr->buf[i]) - 1 - cr->len[i]));
}

static void child_read(uv_stream_t *s, ssize_t n, const uv_buf_t *b) {
  (void)b;
  child_run *cr = s->data;
  int i = s == (uv_stream_t *)&cr->pipe[1];
  if (n > 0)
    cr->len[i] += (size_t)n;
  else if (n < 0) /* the end (or a full buffer: UV_ENOBUFS) */
    uv_close((uv_handle_t *)s, NULL);
}

static void child_exit(uv_process_t *p, int64_t status, int sig) {
  child_run *cr = p->data;
  cr->out->exit_status = status;
  cr->out->term_signal = sig;
  uv_close((uv_handle_t *)p, NULL);
}

static void run_child(const char *name, child_out *o) {
  char exe[4096];
  size_t exe_len = sizeof(exe);
  assert_int_equal(uv_exepath(exe, &exe_len), 0);
  char **env = child_env(name);
  uv_loop_t loop;
  assert_int_equal(uv_loop_init(&loop), 0);
  child_run *cr = calloc(1, sizeof(*cr));
  assert_non_null(cr);
  cr->out = o;
  o->exit_status = -1;
  o->term_signal = 0;
  uv_stdio_container_t stdio[3];
  stdio[0].flags = UV_IGNORE;
  for (int i = 0; i < 2; i++) {
    assert_int_equal(uv_pipe_init(&loop, &cr->pipe[i], 0), 0);
    cr->pipe[i].data = cr;
    stdio[i + 1].flags = UV_CREATE_PIPE | UV_WRITABLE_PIPE;
    stdio[i + 1].data.stream = (uv_stream_t *)&cr->pipe[i];
  }
  char *argv[] = {exe, NULL};
  uv_process_options_t opts = {.exit_cb = child_exit,
                               .file = exe,
                               .args = argv,
                               .env = env,
                               .stdio_count = 3,
                               .stdio = stdio};
  cr->proc.data = cr;
  int rc = uv_spawn(&loop, &cr->proc, &opts);
  for (size_t i = 0; env[i] != NULL; i++)
    free(env[i]);
  free(env);
  if (rc != 0) {
    uv_close((uv_handle_t *)&cr->proc, NULL);
    for (int i = 0; i < 2; i++)
      uv_close((uv_handle_t *)&cr->pipe[i], NULL);
  } else {
    for (int i = 0; i < 2; i++)
      assert_int_equal(
          uv_read_start((uv_stream_t *)&cr->pipe[i], child_alloc, child_read),
          0);
  }
  uv_run(&loop, UV_RUN_DEFAULT); /* until the pipes and the process close */
  assert_int_equal(uv_loop_close(&loop), 0);
  snprintf(o->text, sizeof(o->text), "%.*s%.*s", (int)cr->len[0], cr->buf[0],
           (int)cr->len[1], cr->buf[1]);
  free(cr);
  if (rc != 0)
    fail_msg("spawn %s: %s", exe, uv_strerror(rc));
}

/* The child's test failed for the expected reason (and only that one). */
static void expect_child_failure(const char *name, const char *why,
                                 const char *also) {
  pkt_snapshot snap;
  pkt_snapshot_take(&snap);
  static child_out o;
  run_child(name, &o);
  if (o.term_signal != 0 || o.exit_status != 1 ||
      strstr(o.text, "[  FAILED  ] 1 test(s)") == NULL ||
      strstr(o.text, why) == NULL || strstr(o.text, also) == NULL ||
      strstr(o.text, "ran on") != NULL)
    fail_msg("child %s: exit %d, signal %d, wanted a failure saying '%s' and "
             "'%s':\n%s",
             name, (int)o.exit_status, o.term_signal, why, also, o.text);
  pkt_snapshot_check(&snap);
}

static void unexpected_call_fails_the_test(void **state) {
  (void)state;
  expect_child_failure("child_unexpected",
                       "Could not get value to check parameter program of "
                       "function pk_mock_run",
                       "[  FAILED  ] child_unexpected");
}

static void missing_reply_fails_the_test(void **state) {
  (void)state;
  expect_child_failure("child_no_reply",
                       "Could not get value to mock function pk_mock_run",
                       "[  FAILED  ] child_no_reply");
}

static void mismatch_fails_the_test(void **state) {
  (void)state;
  expect_child_failure("child_mismatch", "\"svn\" != \"git\"",
                       "[  FAILED  ] child_mismatch");
}

static void unmet_expectation_fails_the_test(void **state) {
  (void)state;
  expect_child_failure("child_unmet", "has remaining non-returned values",
                       "haven't been checked");
}

/* The control: the same child machinery reports a passing scenario. */
static void child_control_passes(void **state) {
  (void)state;
  static child_out o;
  run_child("child_ok", &o);
  if (o.term_signal != 0 || o.exit_status != 0 ||
      strstr(o.text, "[  PASSED  ] 1 test(s)") == NULL)
    fail_msg("child_ok: exit %d, signal %d:\n%s", (int)o.exit_status,
             o.term_signal, o.text);
}

int main(void) {
  const char *child = getenv("PK_MOCK_CHILD");
  if (child != NULL)
    return child_main(child);
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(checks_program_args_cwd),
      cmocka_unit_test(several_calls_in_order),
      cmocka_unit_test(reply_kinds),
      cmocka_unit_test(lines_and_live_handle),
      cmocka_unit_test(cmd_checker_sees_env_and_stdin),
      cmocka_unit_test(one_reply_served_several_times),
      cmocka_unit_test(time_scale_and_misuse),
      cmocka_unit_test(other_thread_is_refused),
      cmocka_unit_test(allocation_failures),
      cmocka_unit_test(unexpected_call_fails_the_test),
      cmocka_unit_test(missing_reply_fails_the_test),
      cmocka_unit_test(mismatch_fails_the_test),
      cmocka_unit_test(unmet_expectation_fails_the_test),
      cmocka_unit_test(child_control_passes),
  };
  return cmocka_run_group_tests(tests, pkt_setup, NULL);
}
