/* The `pk run` command line, run as a subprocess (fork/exec + pipes in
 * the test itself, never the library under test): exit status mapping,
 * pk's own failures, byte-exact stdin/stdout/stderr forwarding, timeouts,
 * signal forwarding and the --report file. */
#include "harness.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

extern char **environ;

#define CLI_DEADLINE_MS 60000 /* a hung pk fails the test, never the CI */

typedef struct bytes {
  char *data;
  size_t len, cap;
} bytes;

typedef struct cli_opts {
  const void *in; /* fed to pk's stdin, then EOF */
  size_t in_len;
  /* Send kill_sig to pk once its stdout contains kill_on. */
  const char *kill_on;
  int kill_sig;
} cli_opts;

typedef struct cli_res {
  int status; /* raw waitpid status */
  bytes out, err;
  uint64_t ms;
} cli_res;

static void bytes_add(bytes *b, const char *p, size_t n) {
  if (b->len + n + 1 > b->cap) {
    size_t cap = b->cap ? b->cap : 4096;
    while (cap < b->len + n + 1)
      cap *= 2;
    b->data = realloc(b->data, cap);
    assert_non_null(b->data);
    b->cap = cap;
  }
  memcpy(b->data + b->len, p, n);
  b->len += n;
  b->data[b->len] = '\0';
}

static void cli_res_free(cli_res *r) {
  free(r->out.data);
  free(r->err.data);
  memset(r, 0, sizeof(*r));
}

static void set_nonblock(int fd) {
  int fl = fcntl(fd, F_GETFL);
  assert_true(fl >= 0);
  assert_int_equal(fcntl(fd, F_SETFL, fl | O_NONBLOCK), 0);
}

/* fork + exec (not posix_spawn: lib/src/spawn.h, on the include path of
 * the tests, shadows <spawn.h>). The child gets the pipe ends at 0..2,
 * default dispositions and an empty signal mask. */
static pid_t spawn_cli(const char *const *args, int in_rd, int out_wr,
                       int err_wr) {
  const char *argv[64];
  size_t n = 0;
  argv[n++] = PK_CLI;
  for (; args[n - 1] != NULL; n++) {
    assert_true(n < 63);
    argv[n] = args[n - 1];
  }
  argv[n] = NULL;
  pid_t pid = fork();
  assert_true(pid >= 0);
  if (pid == 0) {
    if (dup2(in_rd, 0) < 0 || dup2(out_wr, 1) < 0 || dup2(err_wr, 2) < 0)
      _exit(120);
    signal(SIGPIPE, SIG_DFL);
    sigset_t none;
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, NULL);
    execve(PK_CLI, (char *const *)argv, environ);
    _exit(121);
  }
  return pid;
}

/* Run `pk ARGS...`, feeding o->in (may be NULL) on stdin; collect stdout,
 * stderr and the wait status. Always reaps pk (by pid). */
static void cli_run(const char *const *args, const cli_opts *o, cli_res *r) {
  static const cli_opts none = {0};
  if (o == NULL)
    o = &none;
  memset(r, 0, sizeof(*r));
  int in[2], out[2], err[2];
  assert_int_equal(pipe2(in, O_CLOEXEC), 0);
  assert_int_equal(pipe2(out, O_CLOEXEC), 0);
  assert_int_equal(pipe2(err, O_CLOEXEC), 0);
  uint64_t t0 = pkt_now_ms();
  pid_t pid = spawn_cli(args, in[0], out[1], err[1]);
  close(in[0]);
  close(out[1]);
  close(err[1]);
  int fds[3] = {in[1], out[0], err[0]};
  for (int i = 0; i < 3; i++)
    set_nonblock(fds[i]);
  size_t in_off = 0;
  if (o->in_len == 0) {
    close(fds[0]);
    fds[0] = -1;
  }
  bool killed = false, hung = false;
  char buf[65536];
  while (fds[1] >= 0 || fds[2] >= 0) {
    struct pollfd pf[3];
    for (int i = 0; i < 3; i++)
      pf[i] = (struct pollfd){.fd = fds[i], .events = i ? POLLIN : POLLOUT};
    uint64_t now = pkt_now_ms();
    if (now >= t0 + CLI_DEADLINE_MS) {
      if (!hung)
        kill(pid, SIGKILL); /* our own child */
      hung = true;
    }
    int wait = hung ? 1000 : (int)(t0 + CLI_DEADLINE_MS - now);
    int n = poll(pf, 3, wait);
    if (n < 0 && errno == EINTR)
      continue;
    assert_true(n >= 0);
    if (n == 0 && hung)
      break; /* something else holds the pipes: give up on them */
    if (fds[0] >= 0 && pf[0].revents != 0) {
      ssize_t w =
          write(fds[0], (const char *)o->in + in_off, o->in_len - in_off);
      if (w > 0)
        in_off += (size_t)w;
      if ((w < 0 && errno != EAGAIN && errno != EINTR) || in_off == o->in_len) {
        close(fds[0]);
        fds[0] = -1;
      }
    }
    for (int i = 1; i < 3; i++) {
      if (fds[i] < 0 || pf[i].revents == 0)
        continue;
      ssize_t got = read(fds[i], buf, sizeof(buf));
      if (got > 0) {
        bytes_add(i == 1 ? &r->out : &r->err, buf, (size_t)got);
      } else if (got == 0 || (errno != EAGAIN && errno != EINTR)) {
        close(fds[i]);
        fds[i] = -1;
      }
    }
    if (o->kill_on != NULL && !killed && r->out.data != NULL &&
        strstr(r->out.data, o->kill_on) != NULL) {
      assert_int_equal(kill(pid, o->kill_sig), 0);
      killed = true;
    }
  }
  for (int i = 0; i < 3; i++)
    if (fds[i] >= 0)
      close(fds[i]);
  pid_t w;
  while ((w = waitpid(pid, &r->status, 0)) < 0 && errno == EINTR)
    ;
  assert_int_equal(w, pid);
  r->ms = pkt_now_ms() - t0;
  if (hung)
    fail_msg("pk did not finish within %d ms", CLI_DEADLINE_MS);
  if (o->kill_on != NULL && !killed)
    fail_msg("pk never printed '%s' (stdout: %s)", o->kill_on,
             r->out.data ? r->out.data : "");
}

/* Exit status of a pk that exited (fails if pk itself died). */
static int exit_of(const cli_res *r) {
  if (!WIFEXITED(r->status))
    fail_msg("pk did not exit normally (status 0x%x); stderr: %s", r->status,
             r->err.data ? r->err.data : "");
  return WEXITSTATUS(r->status);
}

static const char *err_text(const cli_res *r) {
  return r->err.data ? r->err.data : "";
}

static const char *out_text(const cli_res *r) {
  return r->out.data ? r->out.data : "";
}

static void assert_prefix(const char *s, const char *prefix) {
  if (strncmp(s, prefix, strlen(prefix)) != 0)
    fail_msg("expected text starting with '%s', got '%s'", prefix, s);
}

/* Run pk, check its exit status, return the result (caller frees). */
static void expect_exit(const char *const *args, const cli_opts *o, int code,
                        cli_res *r) {
  cli_run(args, o, r);
  int got = exit_of(r);
  if (got != code)
    fail_msg("pk %s %s ...: exit %d, expected %d; stderr: %s", args[0],
             args[1] ? args[1] : "", got, code, err_text(r));
}

/* ------------------------------------------------------- exit status */

static void child_exit_code_is_pk_exit_code(void **state) {
  (void)state;
  pkt_snapshot snap;
  pkt_snapshot_take(&snap);
  static const char *const codes[] = {"0", "1", "3", "42", "255"};
  for (size_t i = 0; i < sizeof(codes) / sizeof(codes[0]); i++) {
    cli_res r;
    const char *const args[] = {"run",  "--",     PK_FIXTURE,
                                "exit", codes[i], NULL};
    expect_exit(args, NULL, atoi(codes[i]), &r);
    assert_int_equal(r.out.len, 0);
    assert_int_equal(r.err.len, 0); /* an exit code is data: no message */
    cli_res_free(&r);
  }
  /* PROGRAM without "--" is accepted too. */
  cli_res r;
  const char *const args[] = {"run", PK_FIXTURE, "exit", "3", NULL};
  expect_exit(args, NULL, 3, &r);
  cli_res_free(&r);
  pkt_snapshot_check(&snap);
}

static void signal_death_is_128_plus_n(void **state) {
  (void)state;
  pkt_snapshot snap;
  pkt_snapshot_take(&snap);
  static const int sigs[] = {SIGUSR1, SIGTERM, SIGKILL, SIGHUP};
  for (size_t i = 0; i < sizeof(sigs) / sizeof(sigs[0]); i++) {
    char num[8];
    snprintf(num, sizeof(num), "%d", sigs[i]);
    const char *const args[] = {"run", "--", PK_FIXTURE, "raise", num, NULL};
    cli_res r;
    expect_exit(args, NULL, 128 + sigs[i], &r);
    cli_res_free(&r);
  }
  pkt_snapshot_check(&snap);
}

static void timeout_is_124_and_prompt(void **state) {
  (void)state;
  pkt_snapshot snap;
  pkt_snapshot_take(&snap);
  const char *const args[] = {"run",      "--timeout", "0.2", "--",
                              PK_FIXTURE, "sleep",     "30",  NULL};
  cli_res r;
  expect_exit(args, NULL, 124, &r);
  print_message("timeout 0.2 s: pk returned after %llu ms\n",
                (unsigned long long)r.ms);
  assert_true(r.ms >= 150);  /* the timeout, not an early failure */
  assert_true(r.ms < 10000); /* not the 30 s sleep */
  cli_res_free(&r);
  /* A child ignoring TERM is KILLed after the grace. */
  const char *const ign[] = {"run", "--timeout", "0.2",      "--grace",
                             "0.3", "--",        PK_FIXTURE, "ignore-term",
                             "30",  NULL};
  expect_exit(ign, NULL, 124, &r);
  print_message("ignore-term, grace 0.3 s: %llu ms\n",
                (unsigned long long)r.ms);
  assert_true(r.ms >= 400);
  assert_true(r.ms < 10000);
  assert_string_equal(out_text(&r), "ready\n");
  cli_res_free(&r);
  pkt_snapshot_check(&snap);
}

static void timeout_kills_the_whole_tree(void **state) {
  (void)state;
  pkt_snapshot snap;
  pkt_snapshot_take(&snap);
  /* Up to 7 processes; survivors would be reparented to this subreaper
   * and fail the snapshot check. */
  const char *const args[] = {"run",  "--timeout", "1", "--", PK_FIXTURE,
                              "tree", "2",         "2", NULL};
  cli_res r;
  expect_exit(args, NULL, 124, &r);
  assert_true(r.ms < 10000);
  int lines = 0;
  for (size_t i = 0; i < r.out.len; i++)
    lines += r.out.data[i] == '\n';
  print_message("tree nodes started before the timeout: %d of 7\n", lines);
  assert_true(lines >= 1 && lines <= 7);
  cli_res_free(&r);
  pkt_snapshot_check(&snap);
}

static void fractional_seconds(void **state) {
  (void)state;
  pkt_snapshot snap;
  pkt_snapshot_take(&snap);
  const char *const slow[] = {"run",      "--timeout", "0.5", "--",
                              PK_FIXTURE, "sleep",     "30",  NULL};
  cli_res r;
  expect_exit(slow, NULL, 124, &r);
  print_message("timeout 0.5 s: %llu ms\n", (unsigned long long)r.ms);
  assert_true(r.ms >= 400);
  assert_true(r.ms < 10000);
  cli_res_free(&r);
  /* A child that finishes in time keeps its own exit code. */
  const char *const fast[] = {"run", "--timeout", "0.5",  "--grace", "0.25",
                              "--",  PK_FIXTURE,  "exit", "5",       NULL};
  expect_exit(fast, NULL, 5, &r);
  cli_res_free(&r);
  pkt_snapshot_check(&snap);
}

static void signals_to_pk_reach_the_child(void **state) {
  (void)state;
  pkt_snapshot snap;
  pkt_snapshot_take(&snap);
  /* "ready" arrives through pk's output callback, so pk is inside its
   * loop with the forwarding handlers installed when we signal it. */
  const char *const args[] = {"run",         "--", PK_FIXTURE,
                              "handle-term", "30", NULL};
  cli_opts o = {.kill_on = "ready\n", .kill_sig = SIGTERM};
  cli_res r;
  expect_exit(args, &o, 42, &r); /* the child's TERM handler exits 42 */
  assert_true(r.ms < 10000);
  cli_res_free(&r);
  pkt_snapshot_check(&snap);
}

/* ------------------------------------------------- spawn failures */

static void not_found_is_127(void **state) {
  (void)state;
  pkt_snapshot snap;
  pkt_snapshot_take(&snap);
  static const char *const progs[] = {"/nonexistent-pk-dir/prog",
                                      "pk-no-such-program-anywhere"};
  for (size_t i = 0; i < 2; i++) {
    const char *const args[] = {"run", "--", progs[i], "x", NULL};
    cli_res r;
    expect_exit(args, NULL, 127, &r);
    assert_prefix(err_text(&r), "pk: not_found:");
    assert_non_null(strstr(err_text(&r), progs[i]));
    assert_int_equal(r.out.len, 0);
    cli_res_free(&r);
  }
  pkt_snapshot_check(&snap);
}

static void not_executable_is_126(void **state) {
  (void)state;
  pkt_snapshot snap;
  pkt_snapshot_take(&snap);
  char dir[] = "/tmp/pk-cli-XXXXXX";
  assert_non_null(mkdtemp(dir));
  char noexec[64], badfmt[64];
  snprintf(noexec, sizeof(noexec), "%s/noexec", dir);
  snprintf(badfmt, sizeof(badfmt), "%s/badfmt", dir);
  int fd = open(noexec, O_CREAT | O_WRONLY | O_CLOEXEC, 0644);
  assert_true(fd >= 0);
  assert_int_equal(write(fd, "#!/bin/sh\nexit 0\n", 17), 17);
  close(fd);
  fd = open(badfmt, O_CREAT | O_WRONLY | O_CLOEXEC, 0755);
  assert_true(fd >= 0);
  assert_int_equal(write(fd,
                         "\x7f"
                         "ELF garbage",
                         12),
                   12);
  close(fd);
  const char *const a1[] = {"run", "--", noexec, NULL};
  cli_res r;
  expect_exit(a1, NULL, 126, &r);
  assert_prefix(err_text(&r), "pk: permission_denied:");
  cli_res_free(&r);
  const char *const a2[] = {"run", "--", badfmt, NULL};
  expect_exit(a2, NULL, 126, &r);
  assert_prefix(err_text(&r), "pk: not_executable:");
  cli_res_free(&r);
  unlink(noexec);
  unlink(badfmt);
  rmdir(dir);
  pkt_snapshot_check(&snap);
}

/* -------------------------------------------------- pk's own failures */

static void own_failures_are_125(void **state) {
  (void)state;
  pkt_snapshot snap;
  pkt_snapshot_take(&snap);
  /* Each would run the fixture with exit 3 if pk accepted it. */
#define FX "--", PK_FIXTURE, "exit", "3", NULL
  const char *const *cases[] = {
      (const char *const[]){"run", "--bogus", FX},
      (const char *const[]){"run", "-x", FX},
      (const char *const[]){"run", "--timeout", "abc", FX},
      (const char *const[]){"run", "--timeout", "-1", FX},
      (const char *const[]){"run", "--timeout", "", FX},
      (const char *const[]){"run", "--timeout", "1s", FX},
      (const char *const[]){"run", "--timeout", "nan", FX},
      (const char *const[]){"run", "--timeout", "inf", FX},
      (const char *const[]){"run", "--grace", "-0.5", FX},
      (const char *const[]){"run", "--mechanism", "bogus", FX},
      (const char *const[]){"run", "--mechanism", "job_object", FX},
      (const char *const[]){"run", "--mechanism", "", FX},
      (const char *const[]){"run", "--report", "", FX},
      (const char *const[]){"run", "--timeout", NULL},
      (const char *const[]){"run", "--", NULL},
      (const char *const[]){"run", NULL},
      (const char *const[]){"frobnicate", NULL},
      (const char *const[]){NULL},
  };
#undef FX
  /* Check every case, then report all that failed at once. */
  char failures[8192] = "";
  size_t flen = 0;
  int nfail = 0;
  for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
    char shown[256] = "pk";
    for (size_t k = 0; cases[i][k] != NULL; k++)
      snprintf(shown + strlen(shown), sizeof(shown) - strlen(shown), " '%s'",
               cases[i][k]);
    cli_res r;
    cli_run(cases[i], NULL, &r);
    int code = exit_of(&r);
    const char *why = NULL;
    if (code != 125)
      why = "exit status is not 125";
    else if (strncmp(err_text(&r), "pk: invalid_argument:", 21) != 0)
      why = "stderr does not start with 'pk: invalid_argument:'";
    else if (r.out.len != 0)
      why = "something was written to stdout";
    if (why != NULL && flen < sizeof(failures)) {
      nfail++;
      const char *e = err_text(&r);
      int eol = (int)strcspn(e, "\n");
      flen += (size_t)snprintf(failures + flen, sizeof(failures) - flen,
                               "\n  %s: %s (exit %d; stderr starts '%.*s')",
                               shown, why, code, eol, e);
    }
    cli_res_free(&r);
  }
  if (nfail > 0) {
    print_error("%d of %zu misuse cases wrong:%s\n", nfail,
                sizeof(cases) / sizeof(cases[0]), failures);
    fail();
  }
  pkt_snapshot_check(&snap);
}

static void help_is_not_an_error(void **state) {
  (void)state;
  const char *const args[] = {"--help", NULL};
  cli_res r;
  expect_exit(args, NULL, 0, &r);
  assert_prefix(out_text(&r), "usage: pk run");
  assert_int_equal(r.err.len, 0);
  cli_res_free(&r);
}

/* -------------------------------------------------------- byte paths */

static bool spew_ok(const bytes *b, size_t n) {
  if (b->len != n)
    return false;
  for (size_t i = 0; i < n; i++) {
    size_t col = i % 64;
    if (b->data[i] != (col == 63 ? '\n' : (char)('a' + col % 26)))
      return false;
  }
  return true;
}

static void stdout_and_stderr_byte_exact(void **state) {
  (void)state;
  pkt_snapshot snap;
  pkt_snapshot_take(&snap);
  cli_res r;
  const char *const a1[] = {"run",     "--", PK_FIXTURE, "spew",
                            "3000000", "1",  NULL};
  expect_exit(a1, NULL, 0, &r);
  assert_int_equal(r.out.len, 3000000);
  assert_true(spew_ok(&r.out, 3000000));
  assert_int_equal(r.err.len, 0);
  cli_res_free(&r);
  const char *const a2[] = {"run",     "--", PK_FIXTURE, "spew",
                            "3000000", "2",  NULL};
  expect_exit(a2, NULL, 0, &r);
  assert_int_equal(r.out.len, 0);
  assert_int_equal(r.err.len, 3000000);
  assert_true(spew_ok(&r.err, 3000000));
  cli_res_free(&r);
  const char *const ab[] = {"run",     "--", PK_FIXTURE, "spew",
                            "1000003", "b",  NULL};
  expect_exit(ab, NULL, 0, &r);
  assert_true(spew_ok(&r.out, 1000003));
  assert_true(spew_ok(&r.err, 1000003));
  cli_res_free(&r);
  /* Streams stay separate and nothing is added. */
  const char *const oe[] = {"run",    "--",     PK_FIXTURE, "outerr",
                            "to out", "to err", "6",        NULL};
  expect_exit(oe, NULL, 6, &r);
  assert_int_equal(r.out.len, 7);
  assert_memory_equal(r.out.data, "to out\n", 7);
  assert_int_equal(r.err.len, 7);
  assert_memory_equal(r.err.data, "to err\n", 7);
  cli_res_free(&r);
  pkt_snapshot_check(&snap);
}

static char *binary_blob(size_t n) {
  char *p = malloc(n);
  assert_non_null(p);
  for (size_t i = 0; i < n; i++)
    p[i] = (char)(unsigned char)((i * 7u + i / 256u) & 0xffu);
  return p;
}

static void stdin_passes_through_binary_safe(void **state) {
  (void)state;
  pkt_snapshot snap;
  pkt_snapshot_take(&snap);
  size_t n = 300001; /* several pipe buffers, every byte value, NULs */
  char *blob = binary_blob(n);
  cli_opts o = {.in = blob, .in_len = n};
  cli_res r;
  const char *const cat[] = {"run", "--", PK_FIXTURE, "cat", NULL};
  expect_exit(cat, &o, 0, &r);
  assert_int_equal(r.out.len, n);
  assert_memory_equal(r.out.data, blob, n);
  assert_int_equal(r.err.len, 0);
  cli_res_free(&r);
  /* The same bytes through stderr. */
  const char *const to_err[] = {"run", "--",           "/bin/sh",
                                "-c",  "exec cat >&2", NULL};
  expect_exit(to_err, &o, 0, &r);
  assert_int_equal(r.out.len, 0);
  assert_int_equal(r.err.len, n);
  assert_memory_equal(r.err.data, blob, n);
  cli_res_free(&r);
  /* No stdin given: the child reads EOF. */
  expect_exit(cat, NULL, 0, &r);
  assert_int_equal(r.out.len, 0);
  cli_res_free(&r);
  free(blob);
  pkt_snapshot_check(&snap);
}

/* ------------------------------------------------------------ report */

#define NKEYS 10
static const char *const report_keys[NKEYS] = {
    "program",      "args",
    "outcome",      "code",
    "signal",       "duration_ms",
    "mechanism",    "stdout_bytes",
    "stderr_bytes", "output_incomplete"};

typedef struct report {
  char *text;
  char *key[32], *val[32];
  int n;
} report;

static void report_read(const char *path, report *rep) {
  memset(rep, 0, sizeof(*rep));
  FILE *f = fopen(path, "re");
  if (f == NULL)
    fail_msg("report %s not written: %s", path, strerror(errno));
  char buf[8192];
  size_t len = fread(buf, 1, sizeof(buf) - 1, f);
  fclose(f);
  buf[len] = '\0';
  rep->text = strdup(buf);
  assert_non_null(rep->text);
  for (char *save = NULL, *line = strtok_r(rep->text, "\n", &save);
       line != NULL; line = strtok_r(NULL, "\n", &save)) {
    char *sep = strstr(line, ": ");
    if (sep == NULL)
      fail_msg("report line is not 'key: value': '%s'", line);
    assert_true(rep->n < 32);
    *sep = '\0';
    rep->key[rep->n] = line;
    rep->val[rep->n++] = sep + 2;
  }
}

static const char *report_get(const report *rep, const char *key) {
  const char *v = NULL;
  for (int i = 0; i < rep->n; i++) {
    if (strcmp(rep->key[i], key) == 0) {
      if (v != NULL)
        fail_msg("report key '%s' appears twice", key);
      v = rep->val[i];
    }
  }
  if (v == NULL)
    fail_msg("report has no '%s'", key);
  return v;
}

/* Exactly the documented keys; `extra` (may be NULL) is also allowed. */
static void report_keys_exact(const report *rep, const char *extra) {
  for (int i = 0; i < NKEYS; i++)
    (void)report_get(rep, report_keys[i]);
  for (int i = 0; i < rep->n; i++) {
    bool known = extra != NULL && strcmp(rep->key[i], extra) == 0;
    for (int k = 0; k < NKEYS && !known; k++)
      known = strcmp(rep->key[i], report_keys[k]) == 0;
    if (!known)
      fail_msg("report has an undocumented key '%s'", rep->key[i]);
  }
}

static long long report_int(const report *rep, const char *key) {
  const char *v = report_get(rep, key);
  char *end;
  errno = 0;
  long long n = strtoll(v, &end, 10);
  if (errno != 0 || end == v || *end != '\0')
    fail_msg("report %s is not an integer: '%s'", key, v);
  return n;
}

static void report_free(report *rep) { free(rep->text); }

typedef struct report_case {
  const char *const *args; /* after "run --report FILE" */
  int exit;
  const char *outcome, *code, *signal, *error;
  const char *mechanism;
  const char *args_yaml;
  long long out_bytes, err_bytes;
  uint64_t min_ms;
} report_case;

static void check_report_case(const char *path, const report_case *c) {
  const char *argv[32] = {"run", "--report", path};
  size_t n = 3;
  for (size_t i = 0; c->args[i] != NULL; i++)
    argv[n++] = c->args[i];
  argv[n] = NULL;
  unlink(path);
  cli_res r;
  expect_exit(argv, NULL, c->exit, &r);
  report rep;
  report_read(path, &rep);
  print_message("%s report:\n", c->outcome);
  for (int i = 0; i < rep.n; i++)
    print_message("  %s: %s\n", rep.key[i], rep.val[i]);
  report_keys_exact(&rep, c->error != NULL ? "error" : NULL);
  char prog[512];
  snprintf(prog, sizeof(prog), "\"%s\"", PK_FIXTURE);
  assert_string_equal(report_get(&rep, "program"), prog);
  assert_string_equal(report_get(&rep, "args"), c->args_yaml);
  assert_string_equal(report_get(&rep, "outcome"), c->outcome);
  assert_string_equal(report_get(&rep, "code"), c->code);
  assert_string_equal(report_get(&rep, "signal"), c->signal);
  assert_string_equal(report_get(&rep, "mechanism"), c->mechanism);
  assert_int_equal(report_int(&rep, "stdout_bytes"), c->out_bytes);
  assert_int_equal(report_int(&rep, "stderr_bytes"), c->err_bytes);
  assert_int_equal((long long)r.out.len, c->out_bytes);
  assert_string_equal(report_get(&rep, "output_incomplete"), "false");
  long long ms = report_int(&rep, "duration_ms");
  assert_true(ms >= (long long)c->min_ms);
  assert_true(ms <= (long long)r.ms); /* inside what we measured */
  if (c->error != NULL)
    assert_string_equal(report_get(&rep, "error"), c->error);
  report_free(&rep);
  cli_res_free(&r);
}

static void report_file(void **state) {
  (void)state;
  pkt_snapshot snap;
  pkt_snapshot_take(&snap);
  char dir[] = "/tmp/pk-cli-report-XXXXXX";
  assert_non_null(mkdtemp(dir));
  char path[64];
  snprintf(path, sizeof(path), "%s/report.yaml", dir);
  const char *best = pk_mechanism_name(pk_mechanism_best());
  assert_string_equal(best, pk_mechanism_available(PK_MECH_CGROUP_V2) == 0
                                ? "cgroup_v2"
                                : "process_group");
  char sig[8];
  snprintf(sig, sizeof(sig), "%d", SIGUSR1);
  char term[8];
  snprintf(term, sizeof(term), "%d", SIGTERM);

  /* Exited, with an argument that needs quoting. */
  const char *const exited[] = {"--", PK_FIXTURE, "outerr", "say \"hi\" \\o/",
                                "E",  "3",        NULL};
  report_case c1 = {.args = exited,
                    .exit = 3,
                    .outcome = "exited",
                    .code = "3",
                    .signal = "0",
                    .mechanism = best,
                    .args_yaml = "[\"outerr\", \"say \\\"hi\\\" \\\\o/\", "
                                 "\"E\", \"3\"]",
                    .out_bytes = 13,
                    .err_bytes = 2};
  check_report_case(path, &c1);

  /* Signalled, forced onto the process-group mechanism. */
  const char *const signalled[] = {
      "--mechanism", "process_group", "--", PK_FIXTURE, "raise", sig, NULL};
  char sig_yaml[32];
  snprintf(sig_yaml, sizeof(sig_yaml), "[\"raise\", \"%s\"]", sig);
  report_case c2 = {.args = signalled,
                    .exit = 128 + SIGUSR1,
                    .outcome = "signalled",
                    .code = "null",
                    .signal = sig,
                    .mechanism = "process_group",
                    .args_yaml = sig_yaml};
  check_report_case(path, &c2);

  /* Timed out: the tree got the soft signal (TERM). */
  const char *const timed[] = {"--timeout", "0.2", "--", PK_FIXTURE,
                               "sleep",     "30",  NULL};
  report_case c3 = {.args = timed,
                    .exit = 124,
                    .outcome = "timed_out",
                    .code = "null",
                    .signal = term,
                    .error = "timeout",
                    .mechanism = best,
                    .args_yaml = "[\"sleep\", \"30\"]",
                    .min_ms = 150};
  check_report_case(path, &c3);

  /* Forcing cgroup_v2 works where it is available, else fails as pk's
   * own error. */
  const char *const forced[] = {"--mechanism", "cgroup_v2", "--", PK_FIXTURE,
                                "exit",        "0",         NULL};
  if (pk_mechanism_available(PK_MECH_CGROUP_V2) == 0) {
    report_case c4 = {.args = forced,
                      .exit = 0,
                      .outcome = "exited",
                      .code = "0",
                      .signal = "0",
                      .mechanism = "cgroup_v2",
                      .args_yaml = "[\"exit\", \"0\"]"};
    check_report_case(path, &c4);
  } else {
    const char *const argv[] = {"run",      "--mechanism", "cgroup_v2", "--",
                                PK_FIXTURE, "exit",        "0",         NULL};
    cli_res r;
    expect_exit(argv, NULL, 125, &r);
    assert_prefix(err_text(&r), "pk: unsupported:");
    cli_res_free(&r);
  }
  unlink(path);
  rmdir(dir);
  pkt_snapshot_check(&snap);
}

int main(void) {
  signal(SIGPIPE, SIG_IGN); /* a pk that stops reading must not kill us */
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(child_exit_code_is_pk_exit_code),
      cmocka_unit_test(signal_death_is_128_plus_n),
      cmocka_unit_test(timeout_is_124_and_prompt),
      cmocka_unit_test(timeout_kills_the_whole_tree),
      cmocka_unit_test(fractional_seconds),
      cmocka_unit_test(signals_to_pk_reach_the_child),
      cmocka_unit_test(not_found_is_127),
      cmocka_unit_test(not_executable_is_126),
      cmocka_unit_test(own_failures_are_125),
      cmocka_unit_test(help_is_not_an_error),
      cmocka_unit_test(stdout_and_stderr_byte_exact),
      cmocka_unit_test(stdin_passes_through_binary_safe),
      cmocka_unit_test(report_file),
  };
  return cmocka_run_group_tests(tests, pkt_setup, NULL);
}
