/* The fixture on Windows, without pk's runner (there is none here yet):
 * each mode is started with uv_spawn, its stdout and stderr read through
 * libuv pipes, and its output and exit code checked against what the
 * Linux fixture prints. Modes Windows does not have exit 2 with
 * "pk-fixture: MODE: not supported on Windows". */
#include "harness.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <uv.h>
#include <windows.h>
/* after windows.h */
#include <tlhelp32.h>

#define RUN_TIMEOUT_MS 30000

/* PK_FIXTURE made absolute with its drive: a build under wine has it as
 * "/tmp/...", which a child with another working directory would look
 * for on that directory's drive. */
static char fixture[MAX_PATH];

/* One run of the fixture. */
typedef struct run {
  uv_loop_t loop;
  uv_process_t proc;
  uv_pipe_t in, out, err;
  uv_timer_t timer;
  uv_write_t write;
  uv_shutdown_t shutdown;
  char *outbuf, *errbuf;
  size_t outlen, errlen;
  const char *input; /* written to stdin, then closed (NULL: no stdin) */
  size_t input_len;
  int stop_at_lines; /* > 0: uv_run returns once stdout has that many */
  int exited, out_eof, err_eof, timed_out;
  int64_t status;
  int term_signal;
  uint64_t start_ms, exit_ms, eof_ms;
} run;

static void on_alloc(uv_handle_t *h, size_t hint, uv_buf_t *buf) {
  (void)h;
  char *base = malloc(hint);
  *buf = uv_buf_init(base, base != NULL ? (unsigned)hint : 0);
}

static int count_lines(const char *s, size_t len) {
  int n = 0;
  for (size_t i = 0; i < len; i++)
    n += s[i] == '\n';
  return n;
}

static void append(char **buf, size_t *len, const char *s, size_t n) {
  char *p = realloc(*buf, *len + n + 1);
  assert_non_null(p);
  memcpy(p + *len, s, n);
  *len += n;
  p[*len] = '\0';
  *buf = p;
}

static void on_read(uv_stream_t *s, ssize_t n, const uv_buf_t *buf) {
  run *r = s->data;
  int is_out = s == (uv_stream_t *)&r->out;
  if (n > 0) {
    append(is_out ? &r->outbuf : &r->errbuf, is_out ? &r->outlen : &r->errlen,
           buf->base, (size_t)n);
    if (is_out && r->stop_at_lines > 0 &&
        count_lines(r->outbuf, r->outlen) >= r->stop_at_lines)
      uv_stop(&r->loop);
  } else if (n < 0) {
    if (is_out) {
      r->out_eof = 1;
      r->eof_ms = pkt_now_ms();
    } else {
      r->err_eof = 1;
    }
    uv_close((uv_handle_t *)s, NULL);
  }
  free(buf->base);
}

static void on_proc_exit(uv_process_t *p, int64_t status, int sig) {
  run *r = p->data;
  r->exited = 1;
  r->status = status;
  r->term_signal = sig;
  r->exit_ms = pkt_now_ms();
  uv_close((uv_handle_t *)p, NULL);
}

static void on_timeout(uv_timer_t *t) {
  run *r = t->data;
  r->timed_out = 1;
  if (!r->exited)
    uv_process_kill(&r->proc, SIGKILL);
  uv_stop(&r->loop);
}

static void on_shutdown(uv_shutdown_t *req, int status) {
  (void)status;
  uv_close((uv_handle_t *)req->handle, NULL);
}

static void on_write(uv_write_t *req, int status) {
  (void)status;
  run *r = req->data;
  r->shutdown.data = r;
  if (uv_shutdown(&r->shutdown, (uv_stream_t *)&r->in, on_shutdown) != 0)
    uv_close((uv_handle_t *)&r->in, NULL);
}

/* Start the fixture with ARGS (mode first, NULL-terminated) and ENV (NULL:
 * ours) in CWD (NULL: ours); the loop is not run yet. */
static void run_start(run *r, const char *const *args, char **env,
                      const char *cwd) {
  char *argv[32] = {fixture};
  size_t argc = 1;
  for (; args[argc - 1] != NULL && argc < 31; argc++)
    argv[argc] = (char *)args[argc - 1];
  argv[argc] = NULL;
  assert_int_equal(uv_loop_init(&r->loop), 0);
  uv_pipe_init(&r->loop, &r->in, 0);
  uv_pipe_init(&r->loop, &r->out, 0);
  uv_pipe_init(&r->loop, &r->err, 0);
  r->in.data = r->out.data = r->err.data = r->proc.data = r->timer.data = r;
  uv_stdio_container_t stdio[3];
  stdio[0].flags =
      r->input != NULL ? UV_CREATE_PIPE | UV_READABLE_PIPE : UV_IGNORE;
  stdio[0].data.stream = (uv_stream_t *)&r->in;
  stdio[1].flags = UV_CREATE_PIPE | UV_WRITABLE_PIPE;
  stdio[1].data.stream = (uv_stream_t *)&r->out;
  stdio[2].flags = UV_CREATE_PIPE | UV_WRITABLE_PIPE;
  stdio[2].data.stream = (uv_stream_t *)&r->err;
  uv_process_options_t o = {.exit_cb = on_proc_exit,
                            .file = fixture,
                            .args = argv,
                            .env = env,
                            .cwd = cwd,
                            .stdio_count = 3,
                            .stdio = stdio};
  r->start_ms = pkt_now_ms();
  int rc = uv_spawn(&r->loop, &r->proc, &o);
  if (rc != 0)
    fail_msg("uv_spawn %s: %s", fixture, uv_strerror(rc));
  uv_read_start((uv_stream_t *)&r->out, on_alloc, on_read);
  uv_read_start((uv_stream_t *)&r->err, on_alloc, on_read);
  if (r->input != NULL) {
    uv_buf_t b = uv_buf_init((char *)r->input, (unsigned)r->input_len);
    r->write.data = r;
    assert_int_equal(
        uv_write(&r->write, (uv_stream_t *)&r->in, &b, 1, on_write), 0);
  } else {
    uv_close((uv_handle_t *)&r->in, NULL);
  }
  uv_timer_init(&r->loop, &r->timer);
  uv_timer_start(&r->timer, on_timeout, RUN_TIMEOUT_MS, 0);
  uv_unref((uv_handle_t *)&r->timer); /* a guard, not a reason to run */
}

/* Run until the process exited and both pipes reached their end. */
static void run_finish(run *r) {
  r->stop_at_lines = 0;
  uv_run(&r->loop, UV_RUN_DEFAULT);
  uv_close((uv_handle_t *)&r->timer, NULL);
  uv_run(&r->loop, UV_RUN_DEFAULT);
  assert_int_equal(uv_loop_close(&r->loop), 0);
  if (r->timed_out)
    fail_msg("the fixture did not finish in %d ms", RUN_TIMEOUT_MS);
  assert_true(r->exited && r->out_eof && r->err_eof);
  if (r->outbuf == NULL)
    append(&r->outbuf, &r->outlen, "", 0);
  if (r->errbuf == NULL)
    append(&r->errbuf, &r->errlen, "", 0);
}

static void run_release(run *r) {
  free(r->outbuf);
  free(r->errbuf);
}

/* Run ARGS to the end with INPUT on stdin (NULL: none). */
static void run_args(run *r, const char *input, const char *const *args) {
  memset(r, 0, sizeof(*r));
  r->input = input;
  r->input_len = input != NULL ? strlen(input) : 0;
  run_start(r, args, NULL, NULL);
  run_finish(r);
}

/* Run ARGS and check exit code, stdout and stderr exactly. */
static void expect(const char *const *args, const char *input, int64_t status,
                   const char *out, const char *err) {
  run r;
  run_args(&r, input, args);
  assert_string_equal(r.outbuf, out);
  assert_string_equal(r.errbuf, err);
  assert_int_equal(r.status, status);
  run_release(&r);
}

#define ARGS(...) ((const char *const[]){__VA_ARGS__, NULL})

static int setup(void **state) {
  DWORD n = GetFullPathNameA(PK_FIXTURE, sizeof(fixture), fixture, NULL);
  if (n == 0 || n >= sizeof(fixture))
    return -1;
  return pkt_setup(state);
}

static pkt_snapshot before_test;

static int before(void **state) {
  (void)state;
  pkt_snapshot_take(&before_test);
  return 0;
}

static int after(void **state) {
  (void)state;
  pkt_snapshot_check(&before_test);
  return 0;
}

/* ---- output and exit codes --------------------------------------------- */

static void echo_exit_stderr(void **state) {
  (void)state;
  expect(ARGS("echo", "a", "b c", ""), NULL, 0, "a b c \n", "");
  expect(ARGS("echo"), NULL, 0, "\n", "");
  expect(ARGS("exit", "3"), NULL, 3, "", "");
  expect(ARGS("exit", "0"), NULL, 0, "", "");
  expect(ARGS("exit", "x"), NULL, 2, "",
         "pk-fixture: bad exit code: 'x' (want -2147483648..2147483647)\n");
  expect(ARGS("stderr", "oops"), NULL, 0, "", "oops\n");
  expect(ARGS("outerr", "to out", "to err", "5"), NULL, 5, "to out\n",
         "to err\n");
  expect(ARGS("lines", "3"), NULL, 0, "line 1\nline 2\nline 3\n", "");
}

static void usage_errors(void **state) {
  (void)state;
  expect(ARGS("bogus"), NULL, 2, "", "pk-fixture: unknown mode 'bogus'\n");
  expect(ARGS("exit"), NULL, 2, "",
         "pk-fixture: mode 'exit' needs 1 argument(s)\n");
  expect(ARGS("sleep", "-1"), NULL, 2, "", "pk-fixture: bad SECS: '-1'\n");
  expect(ARGS("spew", "10", "x"), NULL, 2, "",
         "pk-fixture: bad WHERE: 'x' (want 1, 2 or b)\n");
  run r;
  memset(&r, 0, sizeof(r));
  const char *none[] = {NULL};
  run_start(&r, none, NULL, NULL);
  run_finish(&r);
  assert_int_equal(r.status, 2);
  assert_string_equal(r.errbuf,
                      "pk-fixture: usage: pk-fixture MODE [ARGS...]\n");
  run_release(&r);
}

static void check_pattern(const char *buf, size_t len) {
  for (size_t i = 0; i < len; i++) {
    size_t col = i % 64;
    char want = col == 63 ? '\n' : (char)('a' + col % 26);
    if (buf[i] != want)
      fail_msg("byte %zu: 0x%02x, want 0x%02x", i, (unsigned char)buf[i],
               (unsigned char)want);
  }
}

static void spew(void **state) {
  (void)state;
  run r;
  run_args(&r, NULL, ARGS("spew", "200000", "b"));
  assert_int_equal(r.status, 0);
  assert_int_equal(r.outlen, 200000);
  assert_int_equal(r.errlen, 200000);
  check_pattern(r.outbuf, r.outlen);
  check_pattern(r.errbuf, r.errlen);
  run_release(&r);
  run_args(&r, NULL, ARGS("spew", "1000", "2"));
  assert_int_equal(r.outlen, 0);
  assert_int_equal(r.errlen, 1000);
  run_release(&r);
}

/* ---- stdin ------------------------------------------------------------- */

static void stdin_modes(void **state) {
  (void)state;
  expect(ARGS("cat"), "abc\r\ndef\nno newline", 0, "abc\r\ndef\nno newline",
         "");
  expect(ARGS("read-line"), "hello there\r\nmore\n", 0,
         "ready\ngot:hello there\n", "");
  size_t n = 300000;
  char *big = malloc(n + 1);
  assert_non_null(big);
  memset(big, 'x', n);
  big[n] = '\0';
  expect(ARGS("stdin-len"), big, 0, "300000\n", "");
  expect(ARGS("cat"), "", 0, "", "");
  free(big);
}

/* ---- time, CPU, memory ------------------------------------------------- */

static void sleep_noread(void **state) {
  (void)state;
  run r;
  run_args(&r, NULL, ARGS("sleep", "0.3"));
  assert_int_equal(r.status, 0);
  assert_true(r.exit_ms - r.start_ms >= 250);
  run_release(&r);
  run_args(&r, NULL, ARGS("noread", "0.1"));
  assert_int_equal(r.status, 7);
  run_release(&r);
}

static void burn_touch(void **state) {
  (void)state;
  run r;
  run_args(&r, NULL, ARGS("burn", "300"));
  assert_string_equal(r.outbuf, "burnt\n");
  assert_int_equal(r.status, 0);
  /* CPU time runs no faster than the clock */
  assert_true(r.exit_ms - r.start_ms >= 250);
  run_release(&r);
  expect(ARGS("touch", "32"), NULL, 0, "touched\n", "");
}

/* ---- environment and working directory --------------------------------- */

static void env_getenv(void **state) {
  (void)state;
  char *env[] = {"PK_FIX_A=1", "PK_FIX_B=with space", NULL};
  run r;
  memset(&r, 0, sizeof(r));
  run_start(&r, ARGS("env"), env, NULL);
  run_finish(&r);
  assert_int_equal(r.status, 0);
  assert_non_null(strstr(r.outbuf, "PK_FIX_A=1\n"));
  assert_non_null(strstr(r.outbuf, "PK_FIX_B=with space\n"));
  run_release(&r);
  pkt_setenv("PK_FIX_C", "see");
  expect(ARGS("getenv", "PK_FIX_C"), NULL, 0, "see\n", "");
  pkt_unsetenv("PK_FIX_C");
  expect(ARGS("getenv", "PK_FIX_C"), NULL, 1, "", "");
}

static void cwd(void **state) {
  (void)state;
  char dir[1024];
  size_t len = sizeof(dir);
  assert_int_equal(uv_os_tmpdir(dir, &len), 0);
  run r;
  memset(&r, 0, sizeof(r));
  run_start(&r, ARGS("cwd"), NULL, dir);
  run_finish(&r);
  assert_int_equal(r.status, 0);
  char want[1100];
  snprintf(want, sizeof(want), "%s\n", dir);
  if (_stricmp(r.outbuf, want) != 0)
    fail_msg("cwd printed '%s', want '%s'", r.outbuf, want);
  run_release(&r);
}

/* ---- processes --------------------------------------------------------- */

static bool pid_alive(DWORD pid) {
  HANDLE h = OpenProcess(SYNCHRONIZE, FALSE, pid);
  if (h == NULL)
    return false;
  bool alive = WaitForSingleObject(h, 0) == WAIT_TIMEOUT;
  CloseHandle(h);
  return alive;
}

static void pidfile(void **state) {
  (void)state;
  char path[1100];
  size_t len = sizeof(path) - 32;
  assert_int_equal(uv_os_tmpdir(path, &len), 0);
  snprintf(path + len, sizeof(path) - len, "\\pk-fixture-%lu.pid",
           (unsigned long)GetCurrentProcessId());
  run r;
  memset(&r, 0, sizeof(r));
  r.stop_at_lines = 1;
  run_start(&r, ARGS("pidfile", path, "60"), NULL, NULL);
  uv_run(&r.loop, UV_RUN_DEFAULT);
  assert_false(r.timed_out);
  assert_string_equal(r.outbuf, "ready\n");
  FILE *f = fopen(path, "rb");
  assert_non_null(f);
  char line[64] = "";
  assert_non_null(fgets(line, sizeof(line), f));
  fclose(f);
  char want[64];
  snprintf(want, sizeof(want), "%d\n", r.proc.pid);
  assert_string_equal(line, want);
  assert_true(pid_alive((DWORD)r.proc.pid));
  assert_int_equal(uv_process_kill(&r.proc, SIGKILL), 0);
  run_finish(&r);
  assert_int_equal(r.term_signal, SIGKILL);
  assert_int_equal(remove(path), 0);
  run_release(&r);
}

/* hold-pipe: the fixture exits at once, its child keeps stdout open for
 * the second it sleeps. */
static void hold_pipe(void **state) {
  (void)state;
  run r;
  run_args(&r, NULL, ARGS("hold-pipe", "1"));
  assert_string_equal(r.outbuf, "hi\n");
  assert_string_equal(r.errbuf, "");
  assert_int_equal(r.status, 0);
  if (r.eof_ms < r.exit_ms + 500)
    fail_msg("stdout ended %d ms after the exit, want the holder's second",
             (int)(r.eof_ms - r.exit_ms));
  run_release(&r);
}

/* Processes alive now: how many have their pid in PIDS, and how many
 * their parent's. */
static void count_in_tree(const DWORD *pids, int n, int *members,
                          int *children) {
  HANDLE snap = CreateToolhelp32Snapshot(TH32CS_SNAPPROCESS, 0);
  assert_true(snap != INVALID_HANDLE_VALUE);
  PROCESSENTRY32W e;
  e.dwSize = sizeof(e);
  *members = *children = 0;
  for (BOOL ok = Process32FirstW(snap, &e); ok; ok = Process32NextW(snap, &e))
    for (int i = 0; i < n; i++) {
      *members += e.th32ProcessID == pids[i];
      *children += e.th32ParentProcessID == pids[i];
    }
  CloseHandle(snap);
}

/* tree 2 3: 1 + 3 + 9 nodes, each printing "pid PID" and then waiting;
 * every node but the root is a child of another node. Killed one by one
 * (there is no runner here to kill the tree), none is left. */
static void tree(void **state) {
  (void)state;
  enum { NODES = 13 };
  run r;
  memset(&r, 0, sizeof(r));
  r.stop_at_lines = NODES;
  run_start(&r, ARGS("tree", "2", "3"), NULL, NULL);
  uv_run(&r.loop, UV_RUN_DEFAULT);
  if (r.timed_out || r.outbuf == NULL)
    fail_msg("tree: %d lines in %d ms; stderr: %s",
             r.outbuf ? count_lines(r.outbuf, r.outlen) : 0, RUN_TIMEOUT_MS,
             r.errbuf ? r.errbuf : "");
  assert_int_equal(count_lines(r.outbuf, r.outlen), NODES);
  DWORD pids[NODES];
  HANDLE procs[NODES];
  const char *p = r.outbuf;
  int root = -1;
  for (int i = 0; i < NODES; i++) {
    unsigned long pid = 0;
    assert_int_equal(sscanf(p, "pid %lu\n", &pid), 1);
    pids[i] = (DWORD)pid;
    root = pids[i] == (DWORD)r.proc.pid ? i : root;
    procs[i] = OpenProcess(SYNCHRONIZE | PROCESS_TERMINATE |
                               PROCESS_QUERY_LIMITED_INFORMATION,
                           FALSE, pids[i]);
    assert_non_null(procs[i]);
    p = strchr(p, '\n') + 1;
  }
  assert_int_equal(root, 0); /* the root prints first */
  int members, children;
  count_in_tree(pids, NODES, &members, &children);
  assert_int_equal(members, NODES);
  assert_int_equal(children, NODES - 1);
  for (int i = 0; i < NODES; i++)
    assert_true(TerminateProcess(procs[i], 9));
  assert_int_equal(WaitForMultipleObjects(NODES, procs, TRUE, 10000),
                   WAIT_OBJECT_0);
  for (int i = 0; i < NODES; i++) {
    DWORD code = 0;
    assert_true(GetExitCodeProcess(procs[i], &code));
    assert_int_equal(code, 9);
    CloseHandle(procs[i]);
  }
  count_in_tree(pids, NODES, &members, &children);
  assert_int_equal(members, 0);
  assert_int_equal(children, 0);
  run_finish(&r); /* the root's exit and every stdout holder gone: EOF */
  assert_int_equal(r.status, 9);
  assert_string_equal(r.errbuf, "");
  run_release(&r);
}

/* A leaf tree: one line, no child. */
static void tree_leaf(void **state) {
  (void)state;
  run r;
  memset(&r, 0, sizeof(r));
  r.stop_at_lines = 1;
  run_start(&r, ARGS("tree", "0", "5"), NULL, NULL);
  uv_run(&r.loop, UV_RUN_DEFAULT);
  char want[64];
  snprintf(want, sizeof(want), "pid %d\n", r.proc.pid);
  assert_string_equal(r.outbuf, want);
  assert_int_equal(pkt_count_children(), before_test.nchildren + 1);
  uv_process_kill(&r.proc, SIGKILL);
  run_finish(&r);
  run_release(&r);
}

/* ignore-term / handle-term: the console control events are set up (wine
 * cannot deliver Ctrl-Break to check them), the line printed, the sleep
 * kept. */
static void soft_stop_modes(void **state) {
  (void)state;
  expect(ARGS("ignore-term", "0"), NULL, 0, "ready\n", "");
  expect(ARGS("handle-term", "0.01"), NULL, 0, "ready\n", "");
}

/* ---- what Windows does not have ---------------------------------------- */

static void unsupported(void **state) {
  (void)state;
  static const char *const names[] = {"raise",         "hold-pipe-signal",
                                      "setsid-escape", "escapees",
                                      "cgroup-nest",   "fds",
                                      "cgroup",        "sigmask",
                                      "ids",           "umask",
                                      "pgid",          "cgroup-leave",
                                      "tty-info",      "count-sigint"};
  for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
    char want[128];
    snprintf(want, sizeof(want), "pk-fixture: %s: not supported on Windows\n",
             names[i]);
    expect(ARGS(names[i]), NULL, 2, "", want);
    expect(ARGS(names[i], "1", "2"), NULL, 2, "", want);
  }
}

#define T(f) cmocka_unit_test_setup_teardown(f, before, after)

int main(void) {
  const struct CMUnitTest tests[] = {
      T(echo_exit_stderr), T(usage_errors), T(spew),       T(stdin_modes),
      T(sleep_noread),     T(burn_touch),   T(env_getenv), T(cwd),
      T(pidfile),          T(hold_pipe),    T(tree),       T(tree_leaf),
      T(soft_stop_modes),  T(unsupported),
  };
  return cmocka_run_group_tests(tests, setup, NULL);
}
