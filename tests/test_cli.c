/* The `pk run` command line, run as a subprocess (fork/exec + pipes in
 * the test itself, never the library under test): exit status mapping,
 * pk's own failures, byte-exact stdin/stdout/stderr forwarding, timeouts,
 * signal forwarding, the --report file, and the pk cassette commands. */
#include "harness.h"
#include "internal.h" /* pk__free, for pkc_emit's buffer */
#include "model.h"    /* pkc_load, pkc_emit: the cassettes pk edits */

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>
#include <yaml.h>

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
 * default dispositions, an empty signal mask and a session of its own:
 * no controlling terminal, whatever terminal ctest was started from
 * (test_cli_tty covers pk on a terminal). */
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
    if (setsid() < 0 || dup2(in_rd, 0) < 0 || dup2(out_wr, 1) < 0 ||
        dup2(err_wr, 2) < 0)
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
  /* A child ignoring TERM is KILLed after the grace. It must be ignoring
   * TERM by the deadline: 1 s, not 0.2, leaves a loaded host time. */
  const char *const ign[] = {"run", "--timeout", "1",        "--grace",
                             "0.3", "--",        PK_FIXTURE, "ignore-term",
                             "30",  NULL};
  expect_exit(ign, NULL, 124, &r);
  print_message("ignore-term, timeout 1 s, grace 0.3 s: %llu ms\n",
                (unsigned long long)r.ms);
  assert_true(r.ms >= 1200);
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
  /* A child that finishes in time keeps its own exit code (in time even
   * on a loaded host). */
  const char *const fast[] = {"run", "--timeout", "5.5",  "--grace", "0.25",
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
  assert_prefix(out_text(&r), "usage: pk COMMAND");
  assert_int_equal(r.err.len, 0);
  cli_res_free(&r);
}

/* ------------------------------------------------------ help, usage */

/* Every command pk help lists: the test's own copy, so that dropping one
 * from the table fails here. */
static const char *const all_commands[] = {"run",    "caps",     "record",
                                           "replay", "cassette", "help"};
#define NCOMMANDS (sizeof(all_commands) / sizeof(all_commands[0]))

static void version_on_stdout(void **state) {
  (void)state;
  char want[64];
  snprintf(want, sizeof(want), "pk %d.%d.%d\n", PK_VERSION_MAJOR,
           PK_VERSION_MINOR, PK_VERSION_PATCH);
  cli_res r;
  expect_exit((const char *const[]){"--version", NULL}, NULL, 0, &r);
  assert_string_equal(out_text(&r), want);
  assert_int_equal(r.err.len, 0);
  cli_res_free(&r);
}

/* pk help, pk --help and pk -h: the same overview, on stdout, listing
 * every command with its summary. */
static void help_lists_every_command(void **state) {
  (void)state;
  cli_res help;
  expect_exit((const char *const[]){"help", NULL}, NULL, 0, &help);
  assert_prefix(out_text(&help), "usage: pk COMMAND");
  assert_int_equal(help.err.len, 0);
  for (size_t i = 0; i < NCOMMANDS; i++) {
    char line[64];
    snprintf(line, sizeof(line), "\n  %-10s ", all_commands[i]);
    if (strstr(out_text(&help), line) == NULL)
      fail_msg("pk help does not list %s:\n%s", all_commands[i],
               out_text(&help));
  }
  static const char *const same[] = {"--help", "-h"};
  for (size_t i = 0; i < 2; i++) {
    cli_res r;
    expect_exit((const char *const[]){same[i], NULL}, NULL, 0, &r);
    assert_string_equal(out_text(&r), out_text(&help));
    assert_int_equal(r.err.len, 0);
    cli_res_free(&r);
  }
  cli_res_free(&help);
}

static void help_run_is_the_full_usage(void **state) {
  (void)state;
  cli_res r;
  expect_exit((const char *const[]){"help", "run", NULL}, NULL, 0, &r);
  assert_prefix(out_text(&r), "usage: pk run [--timeout SEC]");
  static const char *const opts[] = {"--timeout SEC",       "--grace SEC",
                                     "--mechanism M",       "--report FILE",
                                     "--cassette CASSETTE", "--mode MODE"};
  for (size_t i = 0; i < sizeof(opts) / sizeof(opts[0]); i++)
    if (strstr(out_text(&r), opts[i]) == NULL)
      fail_msg("pk help run does not describe %s", opts[i]);
  assert_int_equal(r.err.len, 0);
  cli_res_free(&r);
}

/* pk help X, pk X --help and pk X -h print the same text, for every
 * command (the reserved ones too). */
static void help_x_equals_x_help(void **state) {
  (void)state;
  for (size_t i = 0; i < NCOMMANDS; i++) {
    const char *x = all_commands[i];
    char want[64];
    snprintf(want, sizeof(want), "usage: pk %s ", x);
    cli_res help;
    expect_exit((const char *const[]){"help", x, NULL}, NULL, 0, &help);
    assert_prefix(out_text(&help), want);
    static const char *const flags[] = {"--help", "-h"};
    for (size_t k = 0; k < 2; k++) {
      cli_res r;
      expect_exit((const char *const[]){x, flags[k], NULL}, NULL, 0, &r);
      if (strcmp(out_text(&r), out_text(&help)) != 0)
        fail_msg("pk %s %s differs from pk help %s:\n%s\n---\n%s", x, flags[k],
                 x, out_text(&r), out_text(&help));
      assert_int_equal(r.err.len, 0);
      cli_res_free(&r);
    }
    cli_res_free(&help);
  }
}

/* A bare pk: the overview on stderr (not stdout), exit 2. */
static void bare_pk_is_a_usage_error(void **state) {
  (void)state;
  cli_res help, r;
  expect_exit((const char *const[]){"help", NULL}, NULL, 0, &help);
  expect_exit((const char *const[]){NULL}, NULL, 2, &r);
  assert_int_equal(r.out.len, 0);
  assert_string_equal(err_text(&r), out_text(&help));
  cli_res_free(&r);
  cli_res_free(&help);
}

static void unknown_command_is_a_usage_error(void **state) {
  (void)state;
  const char *const *cases[] = {
      (const char *const[]){"frobnicate", NULL},
      (const char *const[]){"frobnicate", "--help", NULL},
      (const char *const[]){"help", "frobnicate", NULL},
      (const char *const[]){"--frobnicate", NULL},
      (const char *const[]){"", NULL},
      (const char *const[]){"Run", "--", PK_FIXTURE, "exit", "3", NULL},
  };
  for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
    const char *name =
        strcmp(cases[i][0], "help") == 0 ? cases[i][1] : cases[i][0];
    char want[128];
    snprintf(want, sizeof(want),
             "pk: unknown command '%s'\n"
             "Run 'pk help' for the list of commands.\n",
             name);
    cli_res r;
    expect_exit(cases[i], NULL, 2, &r);
    assert_string_equal(err_text(&r), want);
    assert_int_equal(r.out.len, 0);
    cli_res_free(&r);
  }
  cli_res r; /* help takes one command */
  expect_exit((const char *const[]){"help", "run", "caps", NULL}, NULL, 2, &r);
  assert_prefix(err_text(&r), "pk: help takes one COMMAND");
  assert_int_equal(r.out.len, 0);
  cli_res_free(&r);
}

/* The reserved cassette commands fail as pk's own failure, run nothing. */
/* pk cassette stays reserved until its subcommands land. */
/* A temporary directory with a copy of the fixture: recorded with the
 * copy's path, then the copy is removed, so a replay provably runs
 * nothing (the program is not there). */
typedef struct cas_dir {
  char dir[64], prog[96], cas[96];
  pkt_snapshot snap; /* pk's guardians must be gone at the end */
} cas_dir;

static void cas_dir_make(cas_dir *d) {
  pkt_snapshot_take(&d->snap);
  snprintf(d->dir, sizeof(d->dir), "/tmp/pk-cli-cas-XXXXXX");
  assert_non_null(mkdtemp(d->dir));
  snprintf(d->prog, sizeof(d->prog), "%s/tool", d->dir);
  snprintf(d->cas, sizeof(d->cas), "%s/c.yaml", d->dir);
  char cmd[512];
  snprintf(cmd, sizeof(cmd), "cp '%s' '%s'", PK_FIXTURE, d->prog);
  assert_int_equal(system(cmd), 0);
}

static void cas_dir_remove(cas_dir *d) {
  char cmd[128];
  snprintf(cmd, sizeof(cmd), "rm -rf '%s'", d->dir);
  assert_int_equal(system(cmd), 0);
  assert_int_equal(access(d->dir, F_OK), -1);
  pkt_snapshot_check(&d->snap);
}

/* The README's main job: record a real command, make the program
 * unavailable, replay it byte-exact with its exit status. */
static void record_then_replay_without_the_program(void **state) {
  (void)state;
  cas_dir d;
  cas_dir_make(&d);
  cli_res r;
  expect_exit((const char *const[]){"record", d.cas, "--", d.prog, "outerr",
                                    "to out", "to err", "3", NULL},
              NULL, 3, &r);
  assert_string_equal(out_text(&r), "to out\n");
  assert_string_equal(err_text(&r), "to err\n");
  cli_res_free(&r);
  struct stat st;
  assert_int_equal(stat(d.cas, &st), 0);
  assert_int_equal(st.st_mode & 0777, 0600);
  assert_int_equal(unlink(d.prog), 0);
  expect_exit((const char *const[]){"replay", d.cas, "--", d.prog, "outerr",
                                    "to out", "to err", "3", NULL},
              NULL, 3, &r);
  assert_string_equal(out_text(&r), "to out\n");
  assert_string_equal(err_text(&r), "to err\n");
  cli_res_free(&r);
  /* A different argument is a miss: 125, the nearest entry named. */
  expect_exit((const char *const[]){"replay", d.cas, "--", d.prog, "outerr",
                                    "to out", "to err", "4", NULL},
              NULL, 125, &r);
  assert_prefix(err_text(&r), "pk: cassette_miss: ");
  assert_non_null(strstr(err_text(&r), "args[3]: recorded \"3\", now \"4\""));
  /* The hint works with pk replay: it never records, pk record does. */
  char hint[256];
  snprintf(hint, sizeof(hint),
           "\n  (pk replay never records: record it with pk record %s -- "
           "PROGRAM [ARG...])\n",
           d.cas);
  assert_non_null(strstr(err_text(&r), hint));
  assert_int_equal(r.out.len, 0);
  cli_res_free(&r);
  cas_dir_remove(&d);
}

/* stdin is part of the key: two inputs are two entries; a third input
 * replays as a miss. */
static void record_keys_on_stdin(void **state) {
  (void)state;
  cas_dir d;
  cas_dir_make(&d);
  const char *in[] = {"a\n", "b\n"};
  for (int i = 0; i < 2; i++) {
    cli_opts o = {.in = in[i], .in_len = 2};
    cli_res r;
    expect_exit(
        (const char *const[]){"record", d.cas, "--", d.prog, "cat", NULL}, &o,
        0, &r);
    assert_string_equal(out_text(&r), in[i]);
    cli_res_free(&r);
  }
  assert_int_equal(unlink(d.prog), 0);
  for (int i = 1; i >= 0; i--) {
    cli_opts o = {.in = in[i], .in_len = 2};
    cli_res r;
    expect_exit(
        (const char *const[]){"replay", d.cas, "--", d.prog, "cat", NULL}, &o,
        0, &r);
    assert_string_equal(out_text(&r), in[i]);
    cli_res_free(&r);
  }
  cli_opts o = {.in = "c\n", .in_len = 2};
  cli_res r;
  expect_exit((const char *const[]){"replay", d.cas, "--", d.prog, "cat", NULL},
              &o, 125, &r);
  assert_prefix(err_text(&r), "pk: cassette_miss: ");
  assert_non_null(strstr(err_text(&r), "stdin: recorded"));
  cli_res_free(&r);
  cas_dir_remove(&d);
}

/* A replay that cannot give back every recorded byte (a truncated entry
 * of a golden cassette) says so on stderr and keeps the recorded status
 * (70000 as an exit status is 70000 & 0xff). */
static void replay_of_a_truncated_entry_warns(void **state) {
  (void)state;
  cli_opts o = {.in = "", .in_len = 0};
  cli_res r;
  expect_exit(
      (const char *const[]){
          "replay", PK_SOURCE_DIR "/fixtures/cassettes/errors.yaml",
          "--keep-paths", "--", "/opt/tool/bin/weird", "--big", NULL},
      &o, 70000 & 0xff, &r);
  assert_string_equal(out_text(&r), "xxxx");
  assert_non_null(
      strstr(err_text(&r), "pk: warning: the replayed output is incomplete"));
  cli_res_free(&r);
}

/* pk run --cassette follows the record mode; a missing cassette and a
 * bad mode are errors of their own. */
static void run_with_a_cassette(void **state) {
  (void)state;
  cas_dir d;
  cas_dir_make(&d);
  cli_res r;
  expect_exit((const char *const[]){"run", "--cassette", d.cas, "--mode",
                                    "none", "--", d.prog, "echo", "x", NULL},
              NULL, 125, &r);
  assert_prefix(err_text(&r), "pk: cassette_not_found: ");
  cli_res_free(&r);
  expect_exit((const char *const[]){"run", "--cassette", d.cas, "--mode",
                                    "sometimes", "--", d.prog, "echo", NULL},
              NULL, 125, &r);
  assert_prefix(err_text(&r), "pk: invalid_argument: --mode must be");
  cli_res_free(&r);
  expect_exit((const char *const[]){"run", "--cassette", d.cas, "--mode",
                                    "once", "--", d.prog, "echo", "x", NULL},
              NULL, 0, &r);
  assert_string_equal(out_text(&r), "x\n");
  cli_res_free(&r);
  assert_int_equal(unlink(d.prog), 0);
  expect_exit((const char *const[]){"run", "--cassette", d.cas, "--", d.prog,
                                    "echo", "x", NULL},
              NULL, 0, &r);
  assert_string_equal(out_text(&r), "x\n");
  cli_res_free(&r);
  setenv("PK_RECORD_MODE", "bogus", 1);
  expect_exit((const char *const[]){"run", "--cassette", d.cas, "--", d.prog,
                                    "echo", "x", NULL},
              NULL, 125, &r);
  unsetenv("PK_RECORD_MODE");
  assert_prefix(err_text(&r), "pk: invalid_argument: PK_RECORD_MODE=bogus");
  cli_res_free(&r);
  expect_exit((const char *const[]){"replay", "--", d.prog, NULL}, NULL, 125,
              &r);
  assert_prefix(err_text(&r), "pk: invalid_argument: pk replay needs a "
                              "CASSETTE");
  cli_res_free(&r);
  cas_dir_remove(&d);
}

/* The man page, generated from the same table: every section, every
 * command with its synopsis as pk help prints it, every variable. */
static void man_page_documents_every_command(void **state) {
  (void)state;
  FILE *f = fopen(PK_MAN, "r");
  if (f == NULL)
    fail_msg("cannot open %s: %s", PK_MAN, strerror(errno));
  bytes man = {0};
  char buf[4096];
  size_t got;
  while ((got = fread(buf, 1, sizeof(buf), f)) > 0)
    bytes_add(&man, buf, got);
  assert_int_equal(fclose(f), 0);
  assert_non_null(man.data);
  static const char *const parts[] = {
      ".TH PK 1 ",
      ".SH NAME\npk \\- ",
      ".SH SYNOPSIS\n",
      ".SH DESCRIPTION\n",
      ".SH COMMANDS\n",
      ".SH \"EXIT STATUS\"\n",
      ".SH ENVIRONMENT\n",
      ".B 124\n",
      ".B 125\n",
      ".B 128+N\n",
      ".B PK_RECORD_MODE\n",
      ".B PK_RECORD_ONLY\n",
      ".B PK_CASSETTE_DIR\n",
      ".B CI\n",
      ".B PK_CASSETTE_STRICT\n",
  };
  for (size_t i = 0; i < sizeof(parts) / sizeof(parts[0]); i++)
    if (strstr(man.data, parts[i]) == NULL)
      fail_msg("%s lacks '%s'", PK_MAN, parts[i]);
  for (size_t i = 0; i < NCOMMANDS; i++) {
    char want[256];
    snprintf(want, sizeof(want), ".SS \"pk %s\"\n", all_commands[i]);
    if (strstr(man.data, want) == NULL)
      fail_msg("%s lacks the command %s", PK_MAN, all_commands[i]);
    /* The first synopsis line of pk help X, as roff (- is \-). */
    cli_res r;
    expect_exit((const char *const[]){"help", all_commands[i], NULL}, NULL, 0,
                &r);
    const char *line = out_text(&r) + strlen("usage: ");
    size_t n = 0;
    for (const char *p = line; *p != '\n' && n + 3 < sizeof(want); p++) {
      if (*p == '-')
        want[n++] = '\\';
      want[n++] = *p;
    }
    want[n] = '\0';
    if (strstr(man.data, want) == NULL)
      fail_msg("%s lacks pk help %s's synopsis '%s'", PK_MAN, all_commands[i],
               want);
    cli_res_free(&r);
  }
  free(man.data);
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

/* Every report is read with libyaml's parser (never by matching text):
 * one document, a mapping with exactly the documented keys, each text
 * value a double-quoted scalar — !!binary (base64) when the bytes are
 * not UTF-8 — that decodes to exactly what pk was given. */

#define NKEYS 14
static const char *const report_keys[NKEYS] = {"program",
                                               "args",
                                               "outcome",
                                               "code",
                                               "signal",
                                               "duration_ms",
                                               "mechanism",
                                               "stdout_bytes",
                                               "stderr_bytes",
                                               "output_incomplete",
                                               "cpu_us",
                                               "cpu_scope",
                                               "peak_memory_bytes",
                                               "memory_scope"};

#define BINARY_TAG "tag:yaml.org,2002:binary"

typedef struct report {
  yaml_document_t doc;
  yaml_node_t *root;
} report;

static char *slurp(const char *path, size_t *len) {
  FILE *f = fopen(path, "re");
  if (f == NULL)
    fail_msg("report %s not written: %s", path, strerror(errno));
  bytes b = {0};
  char buf[8192];
  size_t n;
  while ((n = fread(buf, 1, sizeof(buf), f)) > 0)
    bytes_add(&b, buf, n);
  assert_int_equal(ferror(f), 0);
  fclose(f);
  if (b.data == NULL)
    bytes_add(&b, "", 0);
  *len = b.len;
  return b.data;
}

static const char *node_str(const yaml_node_t *n) {
  return (const char *)n->data.scalar.value;
}

static const char *node_tag(const yaml_node_t *n) {
  return (const char *)n->tag;
}

static void report_read(const char *path, report *rep) {
  memset(rep, 0, sizeof(*rep));
  size_t len;
  char *text = slurp(path, &len);
  yaml_parser_t p;
  assert_true(yaml_parser_initialize(&p));
  yaml_parser_set_input_string(&p, (const unsigned char *)text, len);
  if (!yaml_parser_load(&p, &rep->doc))
    fail_msg("report %s is not valid YAML: %s at line %zu col %zu\n%s", path,
             p.problem ? p.problem : "?", p.problem_mark.line + 1,
             p.problem_mark.column + 1, text);
  rep->root = yaml_document_get_root_node(&rep->doc);
  if (rep->root == NULL || rep->root->type != YAML_MAPPING_NODE)
    fail_msg("report %s is not a YAML mapping:\n%s", path, text);
  yaml_document_t more;
  assert_true(yaml_parser_load(&p, &more));
  bool single = yaml_document_get_root_node(&more) == NULL;
  yaml_document_delete(&more);
  yaml_parser_delete(&p);
  if (!single)
    fail_msg("report %s holds more than one document:\n%s", path, text);
  print_message("report:\n%s", text);
  free(text);
  /* Keys: plain scalars, each once. */
  yaml_node_pair_t *a = rep->root->data.mapping.pairs.start;
  yaml_node_pair_t *end = rep->root->data.mapping.pairs.top;
  for (; a < end; a++) {
    yaml_node_t *k = yaml_document_get_node(&rep->doc, a->key);
    if (k->type != YAML_SCALAR_NODE ||
        k->data.scalar.style != YAML_PLAIN_SCALAR_STYLE)
      fail_msg("report key is not a plain scalar");
    for (yaml_node_pair_t *b = a + 1; b < end; b++)
      if (strcmp(node_str(k),
                 node_str(yaml_document_get_node(&rep->doc, b->key))) == 0)
        fail_msg("report key '%s' appears twice", node_str(k));
  }
}

static void report_free(report *rep) { yaml_document_delete(&rep->doc); }

static yaml_node_t *report_find(const report *rep, const char *key) {
  yaml_document_t *doc = (yaml_document_t *)&rep->doc;
  for (yaml_node_pair_t *a = rep->root->data.mapping.pairs.start;
       a < rep->root->data.mapping.pairs.top; a++)
    if (strcmp(node_str(yaml_document_get_node(doc, a->key)), key) == 0)
      return yaml_document_get_node(doc, a->value);
  return NULL;
}

static yaml_node_t *report_node(const report *rep, const char *key) {
  yaml_node_t *n = report_find(rep, key);
  if (n == NULL)
    fail_msg("report has no '%s'", key);
  return n;
}

/* Exactly the documented keys; `extra` (may be NULL) is also allowed. */
static void report_keys_exact(const report *rep, const char *extra) {
  for (int i = 0; i < NKEYS; i++)
    (void)report_node(rep, report_keys[i]);
  if (extra != NULL)
    (void)report_node(rep, extra);
  int n = (int)(rep->root->data.mapping.pairs.top -
                rep->root->data.mapping.pairs.start);
  if (n != NKEYS + (extra != NULL))
    fail_msg("report has %d keys, expected %d", n, NKEYS + (extra != NULL));
}

/* A plain scalar (number, true/false, null) as written. */
static const char *report_plain(const report *rep, const char *key) {
  yaml_node_t *n = report_node(rep, key);
  if (n->type != YAML_SCALAR_NODE ||
      n->data.scalar.style != YAML_PLAIN_SCALAR_STYLE)
    fail_msg("report %s is not a plain scalar", key);
  return node_str(n);
}

static long long report_int(const report *rep, const char *key) {
  const char *v = report_plain(rep, key);
  char *end;
  errno = 0;
  long long n = strtoll(v, &end, 10);
  if (errno != 0 || end == v || *end != '\0')
    fail_msg("report %s is not an integer: '%s'", key, v);
  return n;
}

static int b64_value(int c) {
  static const char abc[] =
      "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  const char *p = c != 0 ? strchr(abc, c) : NULL;
  return p != NULL ? (int)(p - abc) : -1;
}

/* Strict base64 (padded, no whitespace) into b. */
static void b64_decode(const char *s, size_t len, bytes *b) {
  if (len % 4 != 0)
    fail_msg("!!binary value '%s' is not padded base64", s);
  for (size_t i = 0; i < len; i += 4) {
    int v[4];
    int pad = 0;
    for (size_t k = 0; k < 4; k++) {
      v[k] = b64_value(s[i + k]);
      if (s[i + k] == '=' && i + 4 == len && k >= 2) {
        v[k] = 0;
        pad++;
      } else if (v[k] < 0 || pad > 0) {
        fail_msg("!!binary value '%s' is not base64", s);
      }
    }
    unsigned long w = (unsigned long)v[0] << 18 | (unsigned long)v[1] << 12 |
                      (unsigned long)v[2] << 6 | (unsigned long)v[3];
    char out[3] = {(char)(w >> 16), (char)(w >> 8 & 0xff), (char)(w & 0xff)};
    bytes_add(b, out, (size_t)(3 - pad));
  }
}

/* The bytes a text scalar stands for (caller frees b->data); *binary
 * tells whether it was written as !!binary. Text is double-quoted. */
static void scalar_bytes(const yaml_node_t *n, bytes *b, bool *binary) {
  memset(b, 0, sizeof(*b));
  if (n->type != YAML_SCALAR_NODE ||
      n->data.scalar.style != YAML_DOUBLE_QUOTED_SCALAR_STYLE)
    fail_msg("report text '%s' is not a double-quoted scalar",
             n->type == YAML_SCALAR_NODE ? node_str(n) : "(not a scalar)");
  *binary = strcmp(node_tag(n), BINARY_TAG) == 0;
  if (*binary)
    b64_decode(node_str(n), n->data.scalar.length, b);
  else if (strcmp(node_tag(n), YAML_STR_TAG) == 0)
    bytes_add(b, node_str(n), n->data.scalar.length);
  else
    fail_msg("report text has tag %s", node_tag(n));
  if (b->data == NULL)
    bytes_add(b, "", 0);
}

static void assert_text(const yaml_node_t *n, const char *want, bool binary) {
  bytes b;
  bool was_binary;
  scalar_bytes(n, &b, &was_binary);
  if (b.len != strlen(want) || memcmp(b.data, want, b.len) != 0)
    fail_msg("report text decodes to '%s', expected '%s'", b.data, want);
  if (was_binary != binary)
    fail_msg("'%s' written %s", want, binary ? "as text" : "as !!binary");
  free(b.data);
}

static void assert_report_text(const report *rep, const char *key,
                               const char *want) {
  assert_text(report_node(rep, key), want, false);
}

/* args: a sequence decoding to want[] (NULL-terminated); bin[i] (may be
 * NULL) says which are written as !!binary. */
static void assert_report_args(const report *rep, const char *const *want,
                               const bool *bin) {
  yaml_node_t *seq = report_node(rep, "args");
  if (seq->type != YAML_SEQUENCE_NODE)
    fail_msg("report args is not a sequence");
  yaml_node_item_t *it = seq->data.sequence.items.start;
  size_t n = 0;
  for (; want[n] != NULL; n++, it++) {
    if (it >= seq->data.sequence.items.top)
      fail_msg("report args has %zu items, expected more", n);
    assert_text(yaml_document_get_node((yaml_document_t *)&rep->doc, *it),
                want[n], bin != NULL && bin[n]);
  }
  if (it != seq->data.sequence.items.top)
    fail_msg("report args has more than %zu items", n);
}

/* The names in dir are exactly want[] (NULL-terminated, any order): no
 * temporary file was left behind, nothing was created. */
static void assert_dir_is(const char *dir, const char *const *want) {
  size_t nwant = 0;
  while (want[nwant] != NULL)
    nwant++;
  DIR *d = opendir(dir);
  assert_non_null(d);
  size_t seen = 0;
  struct dirent *e;
  while ((e = readdir(d)) != NULL) {
    if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
      continue;
    bool known = false;
    for (size_t i = 0; i < nwant && !known; i++)
      known = strcmp(e->d_name, want[i]) == 0;
    if (!known) {
      closedir(d);
      fail_msg("%s holds an unexpected '%s'", dir, e->d_name);
    }
    seen++;
  }
  closedir(d);
  if (seen != nwant)
    fail_msg("%s holds %zu names, expected %zu", dir, seen, nwant);
}

typedef struct report_case {
  const char *const *args; /* after "run --report FILE" */
  const char *program;     /* NULL: PK_FIXTURE */
  int exit;
  const char *outcome, *code, *signal, *error;
  const char *mechanism;
  const char *const *want_args; /* args after PROGRAM */
  long long out_bytes, err_bytes;
  uint64_t min_ms;
} report_case;

static void check_report_case_with(const char *dir, const report_case *c,
                                   const cli_opts *o) {
  char path[256];
  snprintf(path, sizeof(path), "%s/report.yaml", dir);
  const char *argv[32] = {"run", "--report", path};
  size_t n = 3;
  for (size_t i = 0; c->args[i] != NULL; i++)
    argv[n++] = c->args[i];
  argv[n] = NULL;
  unlink(path);
  cli_res r;
  expect_exit(argv, o, c->exit, &r);
  assert_dir_is(dir, (const char *const[]){"report.yaml", NULL});
  report rep;
  report_read(path, &rep);
  report_keys_exact(&rep, c->error != NULL ? "error" : NULL);
  assert_report_text(&rep, "program", c->program ? c->program : PK_FIXTURE);
  assert_report_args(&rep, c->want_args, NULL);
  if (strcmp(c->outcome, "null") == 0)
    assert_string_equal(report_plain(&rep, "outcome"), "null");
  else
    assert_report_text(&rep, "outcome", c->outcome);
  assert_string_equal(report_plain(&rep, "code"), c->code);
  assert_string_equal(report_plain(&rep, "signal"), c->signal);
  assert_report_text(&rep, "mechanism", c->mechanism);
  assert_int_equal(report_int(&rep, "stdout_bytes"), c->out_bytes);
  assert_int_equal(report_int(&rep, "stderr_bytes"), c->err_bytes);
  assert_int_equal((long long)r.out.len, c->out_bytes);
  assert_string_equal(report_plain(&rep, "output_incomplete"), "false");
  /* Measured for a run that ran (its CPU may round to 0 us); null when
   * it never started, never a made-up 0. */
  if (strcmp(c->outcome, "null") == 0) {
    assert_string_equal(report_plain(&rep, "cpu_us"), "null");
    assert_string_equal(report_plain(&rep, "peak_memory_bytes"), "null");
  } else {
    assert_true(report_int(&rep, "cpu_us") >= 0);
    assert_true(report_int(&rep, "peak_memory_bytes") > 0);
  }
  long long ms = report_int(&rep, "duration_ms");
  assert_true(ms >= (long long)c->min_ms);
  assert_true(ms <= (long long)r.ms); /* inside what we measured */
  if (c->error != NULL)
    assert_report_text(&rep, "error", c->error);
  report_free(&rep);
  cli_res_free(&r);
}

static void check_report_case(const char *dir, const report_case *c) {
  check_report_case_with(dir, c, NULL);
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
                    .want_args = exited + 2,
                    .out_bytes = 13,
                    .err_bytes = 2};
  check_report_case(dir, &c1);

  /* Signalled, forced onto the process-group mechanism. */
  const char *const signalled[] = {
      "--mechanism", "process_group", "--", PK_FIXTURE, "raise", sig, NULL};
  report_case c2 = {.args = signalled,
                    .exit = 128 + SIGUSR1,
                    .outcome = "signalled",
                    .code = "null",
                    .signal = sig,
                    .mechanism = "process_group",
                    .want_args = signalled + 4};
  check_report_case(dir, &c2);

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
                    .want_args = timed + 4,
                    .min_ms = 150};
  check_report_case(dir, &c3);

  /* Not started: no outcome, and the error says why. */
  const char *const missing[] = {"--", "/nonexistent-pk-dir/prog", "x", NULL};
  report_case c5 = {.args = missing,
                    .program = "/nonexistent-pk-dir/prog",
                    .exit = 127,
                    .outcome = "null",
                    .code = "null",
                    .signal = "0",
                    .error = "not_found",
                    .mechanism = best,
                    .want_args = missing + 2};
  check_report_case(dir, &c5);

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
                      .want_args = forced + 4};
    check_report_case(dir, &c4);
  } else {
    const char *const argv[] = {"run",      "--mechanism", "cgroup_v2", "--",
                                PK_FIXTURE, "exit",        "0",         NULL};
    cli_res r;
    expect_exit(argv, NULL, 125, &r);
    assert_prefix(err_text(&r), "pk: unsupported:");
    cli_res_free(&r);
  }
  assert_int_equal(unlink(path), 0);
  assert_int_equal(rmdir(dir), 0);
  pkt_snapshot_check(&snap);
}

/* A signal to pk is forwarded and the run returns normally: the report
 * is written (and no temporary file is left) on that path too. */
static void report_after_a_forwarded_signal(void **state) {
  (void)state;
  pkt_snapshot snap;
  pkt_snapshot_take(&snap);
  char dir[] = "/tmp/pk-cli-report-XXXXXX";
  assert_non_null(mkdtemp(dir));
  char sig[8];
  snprintf(sig, sizeof(sig), "%d", SIGINT);
  const char *const handled[] = {"--", PK_FIXTURE, "handle-term", "30", NULL};
  report_case c1 = {.args = handled,
                    .exit = 42, /* the child's TERM handler */
                    .outcome = "exited",
                    .code = "42",
                    .signal = "0",
                    .mechanism = pk_mechanism_name(pk_mechanism_best()),
                    .want_args = handled + 2,
                    .out_bytes = 6};
  cli_opts o = {.kill_on = "ready\n", .kill_sig = SIGTERM};
  check_report_case_with(dir, &c1, &o);
  const char *const killed[] = {"--", PK_FIXTURE, "ignore-term", "30", NULL};
  report_case c2 = {.args = killed,
                    .exit = 128 + SIGINT,
                    .outcome = "signalled",
                    .code = "null",
                    .signal = sig,
                    .mechanism = pk_mechanism_name(pk_mechanism_best()),
                    .want_args = killed + 2,
                    .out_bytes = 6};
  o.kill_sig = SIGINT;
  check_report_case_with(dir, &c2, &o);
  char path[64];
  snprintf(path, sizeof(path), "%s/report.yaml", dir);
  assert_int_equal(unlink(path), 0);
  assert_int_equal(rmdir(dir), 0);
  pkt_snapshot_check(&snap);
}

/* A scratch directory for one test, and names inside it. */
typedef struct scratch {
  char dir[32];
  char path[8][96];
} scratch;

static void scratch_init(scratch *sc, const char *const *names) {
  memset(sc, 0, sizeof(*sc));
  snprintf(sc->dir, sizeof(sc->dir), "/tmp/pk-cli-report-XXXXXX");
  assert_non_null(mkdtemp(sc->dir));
  for (size_t i = 0; names[i] != NULL; i++) {
    assert_true(i < 8);
    snprintf(sc->path[i], sizeof(sc->path[i]), "%s/%s", sc->dir, names[i]);
  }
}

static void write_file(const char *path, const char *text) {
  int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
  assert_true(fd >= 0);
  assert_int_equal(write(fd, text, strlen(text)), (ssize_t)strlen(text));
  assert_int_equal(close(fd), 0);
}

static void assert_file_is(const char *path, const char *text) {
  size_t len;
  char *got = slurp(path, &len);
  if (len != strlen(text) || memcmp(got, text, len) != 0)
    fail_msg("%s holds '%s', expected '%s'", path, got, text);
  free(got);
}

/* `pk run --report REPORT -- fixture pidfile MARKER 0` must fail as pk's
 * own error naming REPORT, before the command could create MARKER. */
static void expect_refused(const char *report_path, const char *marker,
                           const char *prefix) {
  const char *const args[] = {"run",  "--report", report_path,
                              "--",   PK_FIXTURE, "pidfile",
                              marker, "0",        NULL};
  cli_res r;
  expect_exit(args, NULL, 125, &r);
  assert_prefix(err_text(&r), prefix);
  if (strstr(err_text(&r), report_path) == NULL)
    fail_msg("message does not name %s: %s", report_path, err_text(&r));
  assert_int_equal(r.out.len, 0);
  if (access(marker, F_OK) == 0)
    fail_msg("the command ran although --report %s was refused", report_path);
  cli_res_free(&r);
}

static void report_bad_path_runs_nothing(void **state) {
  (void)state;
  pkt_snapshot snap;
  pkt_snapshot_take(&snap);
  scratch sc;
  scratch_init(&sc,
               (const char *const[]){"marker", "file", "sub", "missing/r.yaml",
                                     "file/r.yaml", NULL});
  write_file(sc.path[1], "a regular file\n");
  assert_int_equal(mkdir(sc.path[2], 0700), 0);
  expect_refused(sc.path[3], sc.path[0], "pk: not_found:");
  expect_refused(sc.path[4], sc.path[0], "pk: not_found:");
  expect_refused(sc.path[2], sc.path[0], "pk: invalid_argument:");
  /* Never replaced by a regular file, not even by root. */
  expect_refused("/dev/null", sc.path[0], "pk: invalid_argument:");
  struct stat st;
  assert_int_equal(stat("/dev/null", &st), 0);
  assert_true(S_ISCHR(st.st_mode));
  assert_dir_is(sc.dir, (const char *const[]){"file", "sub", NULL});
  assert_dir_is(sc.path[2], (const char *const[]){NULL});
  assert_file_is(sc.path[1], "a regular file\n");
  assert_int_equal(rmdir(sc.path[2]), 0);
  assert_int_equal(unlink(sc.path[1]), 0);
  assert_int_equal(rmdir(sc.dir), 0);
  pkt_snapshot_check(&snap);
}

static void report_refuses_a_symlink(void **state) {
  (void)state;
  pkt_snapshot snap;
  pkt_snapshot_take(&snap);
  scratch sc;
  scratch_init(&sc, (const char *const[]){"marker", "precious", "r.yaml",
                                          "nowhere", "dangling.yaml", NULL});
  /* The planted link of the issue: a report path in a shared directory
   * that points at someone's file. */
  write_file(sc.path[1], "precious contents\n");
  assert_int_equal(symlink(sc.path[1], sc.path[2]), 0);
  assert_int_equal(symlink(sc.path[3], sc.path[4]), 0);
  expect_refused(sc.path[2], sc.path[0], "pk: invalid_argument:");
  expect_refused(sc.path[4], sc.path[0], "pk: invalid_argument:");
  assert_file_is(sc.path[1], "precious contents\n");
  char target[96] = "";
  assert_true(readlink(sc.path[2], target, sizeof(target) - 1) > 0);
  assert_string_equal(target, sc.path[1]);
  assert_dir_is(sc.dir, (const char *const[]){"precious", "r.yaml",
                                              "dangling.yaml", NULL});
  for (int i = 1; i <= 4; i++)
    if (i != 3)
      assert_int_equal(unlink(sc.path[i]), 0);
  assert_int_equal(rmdir(sc.dir), 0);
  pkt_snapshot_check(&snap);
}

/* A full file system: a 4 KiB tmpfs, mounted in a mount namespace of
 * this test process's own (so nothing shows outside it, even if the test
 * fails), filled up. The old report stays as it was; no temporary file
 * remains; pk says io and exits 125. */
static void report_full_disk_leaves_nothing(void **state) {
  (void)state;
  if (unshare(CLONE_NEWNS) != 0) {
    print_message("skipped: a private mount namespace needs CAP_SYS_ADMIN "
                  "(%s)\n",
                  strerror(errno));
    skip();
  }
  assert_int_equal(mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL), 0);
  pkt_snapshot snap;
  pkt_snapshot_take(&snap);
  scratch sc;
  scratch_init(&sc, (const char *const[]){"r.yaml", "filler", NULL});
  assert_int_equal(mount("tmpfs", sc.dir, "tmpfs", MS_NOSUID | MS_NODEV,
                         "size=4k,mode=0700"),
                   0);
  write_file(sc.path[0], "old report\n");
  int fd = open(sc.path[1], O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
  assert_true(fd >= 0);
  char block[4096] = {0};
  ssize_t w;
  while ((w = write(fd, block, sizeof(block))) > 0)
    ;
  assert_int_equal(w, -1);
  assert_int_equal(errno, ENOSPC);
  assert_int_equal(close(fd), 0);
  const char *const args[] = {"run",      "--report", sc.path[0], "--",
                              PK_FIXTURE, "exit",     "0",        NULL};
  cli_res r;
  expect_exit(args, NULL, 125, &r);
  assert_prefix(err_text(&r), "pk: io:");
  assert_non_null(strstr(err_text(&r), sc.path[0]));
  cli_res_free(&r);
  assert_file_is(sc.path[0], "old report\n");
  assert_dir_is(sc.dir, (const char *const[]){"r.yaml", "filler", NULL});
  assert_int_equal(umount2(sc.dir, 0), 0);
  assert_int_equal(rmdir(sc.dir), 0);
  pkt_snapshot_check(&snap);
}

/* Bytes that are not UTF-8 (as !!binary), and text that trips writers
 * that escape by hand, come back exactly through a YAML parser. */
static void report_round_trips_any_argument(void **state) {
  (void)state;
  pkt_snapshot snap;
  pkt_snapshot_take(&snap);
  static const struct {
    const char *s;
    bool binary;
  } args[] = {
      {"echo", false},
      {"say \"hi\" 'there' \\o/ \\\"", false},
      {"line1\nline2\n", false},
      {"cr\r", false},
      {"\r\n", false},
      {"nel\xc2\x85"
       "after",
       false},
      {"ls\xe2\x80\xa8ps\xe2\x80\xa9", false},
      {"trailing spaces   ", false},
      {"   leading", false},
      {" ", false},
      {"", false},
      {"tab\there\t", false},
      {"ctl\x01\x1b\x7f", false},
      {"\xef\xbb\xbf"
       "bom",
       false},
      {"\xef\xbf\xbe", false},
      {"null", false},
      {"~", false},
      {"0x1f", false},
      {"true", false},
      {"- dash: colon # hash {a: [b]} &x *y !z", false},
      {"h\xc3\xa9llo \xe2\x9c\x93 \xf0\x9f\x98\x80", false},
      {"\xff", true},
      {"a\xc3(", true},
      {"\xc0\xaf", true},
      {"\xed\xa0\x80", true},
      {"\xf4\x90\x80\x80", true},
      {"trunc\xe2\x82", true},
      {"latin1 caf\xe9 \"q\"\n", true},
  };
  enum { NARGS = sizeof(args) / sizeof(args[0]) };
  scratch sc;
  scratch_init(&sc, (const char *const[]){"r.yaml", "prog-\xff\xfe", NULL});
  assert_int_equal(symlink(PK_FIXTURE, sc.path[1]), 0);
  const char *argv[NARGS + 6] = {"run", "--report", sc.path[0], "--",
                                 sc.path[1]};
  const char *want[NARGS + 1];
  bool bin[NARGS];
  for (size_t i = 0; i < NARGS; i++) {
    argv[5 + i] = want[i] = args[i].s;
    bin[i] = args[i].binary;
  }
  argv[5 + NARGS] = want[NARGS] = NULL;
  cli_res r;
  expect_exit(argv, NULL, 0, &r);
  assert_dir_is(sc.dir, (const char *const[]){"r.yaml", "prog-\xff\xfe", NULL});
  report rep;
  report_read(sc.path[0], &rep);
  report_keys_exact(&rep, NULL);
  assert_text(report_node(&rep, "program"), sc.path[1], true);
  assert_report_args(&rep, want, bin);
  assert_report_text(&rep, "outcome", "exited");
  assert_string_equal(report_plain(&rep, "code"), "0");
  assert_int_equal(report_int(&rep, "stdout_bytes"), (long long)r.out.len);
  report_free(&rep);
  cli_res_free(&r);
  assert_int_equal(unlink(sc.path[0]), 0);
  assert_int_equal(unlink(sc.path[1]), 0);
  assert_int_equal(rmdir(sc.dir), 0);
  pkt_snapshot_check(&snap);
}

/* ------------------------------------------------------ pk cassette */

#define FIXTURES PK_SOURCE_DIR "/fixtures/cassettes"

static pkc_file *load_ok(const char *path) {
  pkc_file *f = NULL;
  pkc_error err;
  if (pkc_load(path, &f, &err) != 0)
    fail_msg("%s", err.msg);
  return f;
}

static void emit_to(const pkc_file *f, const char *path) {
  char *data = NULL;
  size_t len = 0;
  assert_int_equal(pkc_emit(f, &data, &len), 0);
  assert_int_equal(strlen(data), len);
  write_file(path, data);
  pk__free(data);
}

/* A fixture as the writer writes it (ids renumbered), frozen or not. */
static void cassette_from(const char *fixture, const char *path, bool frozen) {
  pkc_file *f = load_ok(fixture);
  f->frozen = frozen;
  assert_int_equal(pkc_renumber_ids(f), 0);
  emit_to(f, path);
  pkc_file_free(f);
}

static char *text_of(const char *path) {
  size_t len;
  char *s = slurp(path, &len);
  assert_int_equal(strlen(s), len);
  return s;
}

static void assert_unchanged(const char *path, const char *before) {
  char *now = text_of(path);
  assert_string_equal(now, before);
  free(now);
}

/* before, less the entries marked in remove (n of them): each entry's
 * text starts at a line "- id: ". */
static char *without_entries(const char *before, const bool *remove, size_t n) {
  bytes b = {0};
  const char *p = strstr(before, "\n- id: ");
  assert_non_null(p);
  bytes_add(&b, before, (size_t)(p + 1 - before));
  for (size_t i = 0; i < n; i++) {
    assert_non_null(p);
    const char *start = p + 1;
    p = strstr(start, "\n- id: ");
    const char *end = p != NULL ? p + 1 : start + strlen(start);
    if (!remove[i])
      bytes_add(&b, start, (size_t)(end - start));
  }
  assert_null(p);
  return b.data;
}

/* After rm or prune removed the marked entries of before: the file
 * loads, equals what the writer makes of before less those entries (ids
 * renumbered), is 0600, and (ids_kept) is before's text with those
 * entries cut out, the others byte-exact. */
static void assert_rewritten(const char *path, const char *before,
                             const bool *remove, size_t n, bool ids_kept) {
  pkc_file *want = NULL, *got = load_ok(path);
  pkc_error err;
  assert_int_equal(pkc_parse("before", before, strlen(before), &want, &err), 0);
  assert_int_equal(want->nentries, n);
  size_t k = 0;
  for (size_t i = 0; i < n; i++)
    if (remove[i])
      pkc_entry_clear(&want->entries[i]);
    else
      want->entries[k++] = want->entries[i];
  want->nentries = k;
  assert_int_equal(pkc_renumber_ids(want), 0);
  char *data = NULL;
  size_t len = 0;
  assert_int_equal(pkc_emit(want, &data, &len), 0);
  char *now = text_of(path);
  assert_string_equal(now, data);
  assert_true(pkc_file_equal(want, got));
  if (ids_kept) {
    char *cut = without_entries(before, remove, n);
    assert_string_equal(now, cut);
    free(cut);
  }
  struct stat st;
  assert_int_equal(lstat(path, &st), 0);
  assert_true(S_ISREG(st.st_mode));
  assert_int_equal(st.st_mode & 0777, 0600);
  free(now);
  pk__free(data);
  pkc_file_free(want);
  pkc_file_free(got);
}

static void expect_fail(const char *const *args, const cli_opts *o, int code,
                        const char *prefix) {
  cli_res r;
  expect_exit(args, o, code, &r);
  assert_prefix(err_text(&r), prefix);
  assert_int_equal(r.out.len, 0);
  cli_res_free(&r);
}

static void cassette_usage_errors(void **state) {
  (void)state;
  const char *c = FIXTURES "/git.yaml";
  expect_fail((const char *const[]){"cassette", NULL}, NULL, 2,
              "pk: pk cassette needs a subcommand\nusage: pk cassette lint");
  expect_fail((const char *const[]){"cassette", "frob", c, NULL}, NULL, 2,
              "pk: unknown cassette subcommand 'frob'\nusage: ");
  const char *const *const bad[] = {
      (const char *const[]){"cassette", "lint", NULL},
      (const char *const[]){"cassette", "lint", c, c, NULL},
      (const char *const[]){"cassette", "lint", "", NULL},
      (const char *const[]){"cassette", "lint", c, "--entry", "1", NULL},
      (const char *const[]){"cassette", "show", c, "--bogus", NULL},
      (const char *const[]){"cassette", "show", c, "--entry", NULL},
      (const char *const[]){"cassette", "show", c, "-x", NULL},
      (const char *const[]){"cassette", "show", c, "--entry=1", "--entry=2",
                            NULL},
      (const char *const[]){"cassette", "diff", c, NULL},
      (const char *const[]){"cassette", "rm", c, NULL},
      (const char *const[]){"cassette", "rm", c, "--entry", "1", "--match", "*",
                            NULL},
      (const char *const[]){"cassette", "prune", c, NULL},
      (const char *const[]){"cassette", "prune", c, "--match", "*", NULL},
  };
  for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
    cli_res r;
    expect_exit(bad[i], NULL, 125, &r);
    assert_prefix(err_text(&r), "pk: invalid_argument: pk cassette ");
    assert_non_null(strstr(err_text(&r), "\nusage: pk cassette lint"));
    assert_int_equal(r.out.len, 0);
    cli_res_free(&r);
  }
  /* --help shows the usage, exit 0. */
  cli_res r;
  expect_exit((const char *const[]){"cassette", "--help", NULL}, NULL, 0, &r);
  assert_prefix(out_text(&r), "usage: pk cassette lint CASSETTE\n");
  assert_null(strstr(out_text(&r), "not built"));
  cli_res_free(&r);
}

static void cassette_lint(void **state) {
  (void)state;
  static const char *const good[][2] = {
      {"git.yaml", "4 entries (format version 1), frozen"},
      {"errors.yaml", "5 entries (format version 1), frozen"},
      {"binary.yaml", "3 entries (format version 1), frozen"},
  };
  for (size_t i = 0; i < 3; i++) {
    char path[512], want[1024];
    snprintf(path, sizeof(path), "%s/%s", FIXTURES, good[i][0]);
    snprintf(want, sizeof(want), "%s: ok, %s\n", path, good[i][1]);
    cli_res r;
    expect_exit((const char *const[]){"cassette", "lint", path, NULL}, NULL, 0,
                &r);
    assert_string_equal(out_text(&r), want);
    assert_int_equal(r.err.len, 0);
    cli_res_free(&r);
  }
  /* Every hostile fixture: exit 1, "pk: cassette_invalid: FILE:L:C: ". */
  static const char *const hostile[][2] = {
      {"alias_bomb.yaml", ":5:5: anchor"},
      {"bad_base64.yaml", ":10:27: stdout_base64"},
      {"deep.yaml", ":2:11: "},
      {"duplicate_key.yaml", ":7:3: duplicate key 'exit'"},
      {"invalid_utf8.yaml", ":3:16: "},
      {"tag.yaml", ":10:20: tag"},
      {"unknown_key.yaml", ":9:3: unknown key 'retries'"},
      {"version99.yaml", ":1:10: unsupported cassette format version 99"},
  };
  for (size_t i = 0; i < sizeof(hostile) / sizeof(hostile[0]); i++) {
    char path[512], want[1024];
    snprintf(path, sizeof(path), "%s/hostile/%s", FIXTURES, hostile[i][0]);
    snprintf(want, sizeof(want), "pk: cassette_invalid: %s%s", path,
             hostile[i][1]);
    cli_res r;
    expect_exit((const char *const[]){"cassette", "lint", path, NULL}, NULL, 1,
                &r);
    assert_prefix(err_text(&r), want);
    assert_int_equal(r.out.len, 0);
    assert_non_null(strchr(err_text(&r), '\n'));
    assert_int_equal(strchr(err_text(&r), '\n')[1], '\0'); /* one line */
    cli_res_free(&r);
  }
  /* A file pk cannot read is pk's failure, not a lint finding. */
  expect_fail(
      (const char *const[]){"cassette", "lint", "/nonexistent/c.yaml", NULL},
      NULL, 125,
      "pk: cassette_not_found: /nonexistent/c.yaml: no such cassette");
  scratch sc;
  scratch_init(&sc, (const char *const[]){"empty.yaml", NULL});
  write_file(sc.path[0], "version: 1\nentries: []\n");
  cli_res r;
  expect_exit((const char *const[]){"cassette", "lint", sc.path[0], NULL}, NULL,
              0, &r);
  assert_non_null(strstr(out_text(&r), ": ok, 0 entries (format version 1)\n"));
  cli_res_free(&r);
  assert_int_equal(unlink(sc.path[0]), 0);
  assert_int_equal(rmdir(sc.dir), 0);
}

static void cassette_show_lists(void **state) {
  (void)state;
  cli_res r;
  expect_exit(
      (const char *const[]){"cassette", "show", FIXTURES "/errors.yaml", NULL},
      NULL, 0, &r);
  assert_string_equal(
      out_text(&r),
      "1  4e0a1f7b8c2d-1  no-such-tool --version  -> error not_found  out 0 "
      "B, err 0 B  2026-11-29T12:00:00Z\n"
      "2  9c8b7a6f5e4d-1  sleep 60  -> timed out  out 0 B, err 0 B  "
      "2026-11-29T12:00:01Z\n"
      "3  2b3c4d5e6f70-1  sh -c 'kill -9 $$'  -> signal 9 (SIGKILL)  out 6 B "
      "/ 0 lines, err 0 B  [incomplete]  2026-11-29T12:00:02Z\n"
      "4  8a9b0c1d2e3f-1  /opt/tool/bin/weird  -> exit -2147483648  out 0 B, "
      "err 0 B  2026-11-29T12:00:03Z\n"
      "5  8a9b0c1d2e3f-2  /opt/tool/bin/weird --big  -> exit 70000  out 4096 "
      "B / 0 lines, err 0 B  [truncated]  2026-11-29T12:00:04Z\n");
  assert_int_equal(r.err.len, 0);
  cli_res_free(&r);
  /* Placeholders as written, not quoted. */
  expect_exit(
      (const char *const[]){"cassette", "show", FIXTURES "/git.yaml", NULL},
      NULL, 0, &r);
  assert_non_null(
      strstr(out_text(&r),
             "\n4  d2e5f7a8b9c0-1  git push "
             "https://{{GH_TOKEN}}@github.com/example/repo.git main  -> exit "
             "128  out 0 B, err 55 B / 1 line  2026-11-29T12:00:02Z\n"));
  cli_res_free(&r);
  expect_fail(
      (const char *const[]){"cassette", "show", "/nonexistent.yaml", NULL},
      NULL, 125, "pk: cassette_not_found: ");
  expect_fail((const char *const[]){"cassette", "show",
                                    FIXTURES "/hostile/tag.yaml", NULL},
              NULL, 125,
              "pk: cassette_invalid: " FIXTURES "/hostile/tag.yaml:10:20: ");
}

static void cassette_show_entry(void **state) {
  (void)state;
  cli_res r;
  expect_exit((const char *const[]){"cassette", "show", FIXTURES "/binary.yaml",
                                    "--entry", "2", NULL},
              NULL, 0, &r);
  assert_string_equal(
      out_text(&r),
      "entry 2 of 3\n"
      "id: 7f6e5d4c3b2a-1\n"
      "recorded_at: 2026-11-29T12:00:00.500Z\n"
      "command: printf 'progress\\r50%%\\rdone  \\n'\n"
      "cwd: -\n"
      "stdin: 0 B, sha256 "
      "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855\n"
      "end: exit 0\n"
      "duration: 0.250 ms\n"
      "stdout: 20 B / 1 line\n"
      "stderr: 2 B / 0 lines\n"
      "events: 2\n"
      "  0.100 ms  stdout  \"progress\\r50%\\rdone  \\n\"\n"
      "  0.200 ms  stderr  hex ff fe\n");
  cli_res_free(&r);
  expect_exit((const char *const[]){"cassette", "show", FIXTURES "/binary.yaml",
                                    "--entry=1", NULL},
              NULL, 0, &r);
  assert_non_null(
      strstr(out_text(&r), "\n  1.000 ms  stdout  hex 00 ff fe 80 c3 a8 29\n"));
  cli_res_free(&r);
  expect_exit((const char *const[]){"cassette", "show", FIXTURES "/errors.yaml",
                                    "--entry", "1", NULL},
              NULL, 0, &r);
  assert_non_null(strstr(out_text(&r),
                         "\nend: error not_found, errno 2 (ENOENT), stage "
                         "lookup: no-such-tool: not found in PATH\n"));
  cli_res_free(&r);
  expect_exit((const char *const[]){"cassette", "show", FIXTURES "/git.yaml",
                                    "--entry", "2", NULL},
              NULL, 0, &r);
  assert_non_null(
      strstr(out_text(&r), "\ncwd: {{pk.cwd}}\nenv: GIT_DIR HOME\n"));
  assert_non_null(strstr(out_text(&r), "\nplaceholders: pk.cwd\n"));
  cli_res_free(&r);
  static const char *const out_of_range[] = {"0", "4", "-1", "x", "1x", ""};
  for (size_t i = 0; i < sizeof(out_of_range) / sizeof(*out_of_range); i++)
    expect_fail((const char *const[]){"cassette", "show",
                                      FIXTURES "/binary.yaml", "--entry",
                                      out_of_range[i], NULL},
                NULL, 125, "pk: invalid_argument: --entry ");
}

/* Nothing from a cassette reaches the terminal as a control character:
 * no escape sequences, bells or C1 controls, in the list or in full. */
static void assert_terminal_safe(const bytes *b) {
  const unsigned char *p = (const unsigned char *)b->data;
  for (size_t i = 0; i < b->len; i++) {
    if ((p[i] < 0x20 && p[i] != '\n') || p[i] == 0x7f)
      fail_msg("control byte 0x%02x at %zu: %s", p[i], i, b->data);
    if (p[i] == 0xC2 && i + 1 < b->len && p[i + 1] < 0xA0)
      fail_msg("C1 control at %zu: %s", i, b->data);
  }
}

static void cassette_show_is_terminal_safe(void **state) {
  (void)state;
  scratch sc;
  scratch_init(&sc, (const char *const[]){"c.yaml", NULL});
  write_file(sc.path[0],
             "version: 1\n"
             "entries:\n"
             "- id: \"\\e[2J-1\"\n"
             "  program: \"printf\"\n"
             "  args: [\"\\e[2J\\u0085x\", \"it's\", \"\", \"caf\\u00e9\"]\n"
             "  stdin: {terminal: true}\n"
             "  exit: {error: \"io\", message: \"bad\\rthing\\a\"}\n"
             "  duration_ms: 1\n"
             "  output: {stdout_bytes: 15, stdout_lines: 0, stderr_bytes: 4, "
             "stderr_lines: 0}\n"
             "  events:\n"
             "  - {t: 1, stdout: \"\\e]0;pwned\\a\\\"\\\\\"}\n"
             "  - {t: 2, stderr: \"\\u009b31m\"}\n");
  cli_res r;
  expect_exit((const char *const[]){"cassette", "show", sc.path[0], NULL}, NULL,
              0, &r);
  assert_terminal_safe(&r.out);
  assert_prefix(out_text(&r), "1  \\x1b[2J-1  printf $'\\x1b[2J\\xc2\\x85x' "
                              "'it'\\''s' '' 'caf\xc3\xa9'  -> error io  out ");
  cli_res_free(&r);
  expect_exit((const char *const[]){"cassette", "show", sc.path[0], "--entry",
                                    "1", NULL},
              NULL, 0, &r);
  assert_terminal_safe(&r.out);
  assert_non_null(strstr(out_text(&r), "\nstdin: a terminal"));
  assert_non_null(strstr(out_text(&r), "\nend: error io: bad\\rthing\\x07\n"));
  assert_non_null(strstr(
      out_text(&r), "\n  1.000 ms  stdout  \"\\x1b]0;pwned\\x07\\\"\\\\\"\n"
                    "  2.000 ms  stderr  \"\\u009b31m\"\n"));
  cli_res_free(&r);
  assert_int_equal(unlink(sc.path[0]), 0);
  assert_int_equal(rmdir(sc.dir), 0);
}

static void cassette_diff(void **state) {
  (void)state;
  scratch sc;
  scratch_init(&sc, (const char *const[]){"a.yaml", "b.yaml", "t.yaml", NULL});
  cassette_from(FIXTURES "/errors.yaml", sc.path[0], false);
  /* Only timing differs: the same. */
  pkc_file *f = load_ok(sc.path[0]);
  for (size_t i = 0; i < f->nentries; i++) {
    f->entries[i].duration_us += 1000;
    for (size_t j = 0; j < f->entries[i].nevents; j++)
      f->entries[i].events[j].t_us += 7;
  }
  pk__free(f->entries[0].recorded_at);
  f->entries[0].recorded_at = pk__strdup("2030-01-01T00:00:00Z");
  emit_to(f, sc.path[2]);
  cli_res r;
  expect_exit(
      (const char *const[]){"cassette", "diff", sc.path[0], sc.path[2], NULL},
      NULL, 0, &r);
  assert_int_equal(r.out.len, 0);
  assert_int_equal(r.err.len, 0);
  cli_res_free(&r);
  /* B: entry 5 exits 7, entry 3 printed something else, entry 1 has
   * another id (so it is only in A, and B's only in B). */
  f->entries[4].code = 7;
  f->entries[2].events[0].data[5] = '!';
  pk__free(f->entries[0].id);
  f->entries[0].id = pk__strdup("000000000000-1");
  f->frozen = true;
  emit_to(f, sc.path[1]);
  pkc_file_free(f);
  expect_exit(
      (const char *const[]){"cassette", "diff", sc.path[0], sc.path[1], NULL},
      NULL, 1, &r);
  assert_int_equal(r.err.len, 0);
  const char *out = out_text(&r);
  assert_prefix(out, "frozen: no -> yes\nonly in A: entry 1  ");
  assert_non_null(strstr(out, "  no-such-tool --version\nchanged: entry 3  "));
  assert_non_null(strstr(out, "  sh -c 'kill -9 $$'\n    stdout: 6 B / 0 "
                              "lines -> 6 B / 0 lines, recorded bytes differ "
                              "from byte 5\nchanged: entry 5  "));
  assert_non_null(
      strstr(out, "  /opt/tool/bin/weird --big\n    exit: exit 70000 -> exit "
                  "7\nonly in B: entry 1  000000000000-1  no-such-tool "
                  "--version\n"));
  cli_res_free(&r);
  /* Reversed: the other way round. */
  expect_exit(
      (const char *const[]){"cassette", "diff", sc.path[1], sc.path[0], NULL},
      NULL, 1, &r);
  assert_non_null(strstr(out_text(&r), "    exit: exit 7 -> exit 70000\n"));
  cli_res_free(&r);
  /* Entries without ids pair by position: the arguments are named. */
  assert_int_equal(unlink(sc.path[1]), 0);
  assert_int_equal(unlink(sc.path[2]), 0);
  static const char *entry = "version: 1\n"
                             "entries:\n"
                             "- program: \"git\"\n"
                             "  args: [\"log\", \"%s\"]\n"
                             "  stdin: {inherit: true}\n"
                             "  exit: {code: 0}\n"
                             "  duration_ms: 1\n"
                             "  output: {stdout_bytes: 0, stdout_lines: 0, "
                             "stderr_bytes: 0, stderr_lines: 0}\n";
  char text[1024];
  snprintf(text, sizeof(text), entry, "-1");
  write_file(sc.path[1], text);
  snprintf(text, sizeof(text), entry, "-2");
  write_file(sc.path[2], text);
  expect_exit(
      (const char *const[]){"cassette", "diff", sc.path[1], sc.path[2], NULL},
      NULL, 1, &r);
  assert_string_equal(out_text(&r), "changed: entry 1  -  git log -1\n"
                                    "    args[1]: -1 -> -2\n");
  cli_res_free(&r);
  /* pk's failures: 125, whichever file it is. */
  expect_fail((const char *const[]){"cassette", "diff", sc.path[0],
                                    "/nonexistent.yaml", NULL},
              NULL, 125, "pk: cassette_not_found: /nonexistent.yaml");
  expect_fail((const char *const[]){"cassette", "diff",
                                    FIXTURES "/hostile/deep.yaml", sc.path[0],
                                    NULL},
              NULL, 125, "pk: cassette_invalid: ");
  assert_dir_is(sc.dir,
                (const char *const[]){"a.yaml", "b.yaml", "t.yaml", NULL});
  for (int i = 0; i < 3; i++)
    assert_int_equal(unlink(sc.path[i]), 0);
  assert_int_equal(rmdir(sc.dir), 0);
}

static void cassette_rm(void **state) {
  (void)state;
  scratch sc;
  scratch_init(&sc, (const char *const[]){"c.yaml", "frozen.yaml", "l.yaml",
                                          "bad.yaml", NULL});
  const char *c = sc.path[0];
  cassette_from(FIXTURES "/errors.yaml", c, false);
  char *before = text_of(c);
  cli_res r;
  expect_exit((const char *const[]){"cassette", "rm", c, "--entry", "2", NULL},
              NULL, 0, &r);
  char want[512];
  snprintf(want, sizeof(want), "%s: removed 1 of 5 entries, 4 left\n", c);
  assert_string_equal(out_text(&r), want);
  assert_int_equal(r.err.len, 0);
  cli_res_free(&r);
  assert_rewritten(c, before, (const bool[]){0, 1, 0, 0, 0}, 5, true);
  free(before);
  /* --match: every entry whose "program arg..." matches. */
  before = text_of(c);
  expect_exit((const char *const[]){"cassette", "rm", c, "--match",
                                    "/opt/tool/bin/weird*", NULL},
              NULL, 0, &r);
  snprintf(want, sizeof(want), "%s: removed 2 of 4 entries, 2 left\n", c);
  assert_string_equal(out_text(&r), want);
  cli_res_free(&r);
  assert_rewritten(c, before, (const bool[]){0, 0, 1, 1}, 4, true);
  free(before);
  /* No match: exit 1, the file untouched. */
  before = text_of(c);
  expect_fail((const char *const[]){"cassette", "rm", c, "--match=xyz*", NULL},
              NULL, 1, "pk: ");
  expect_exit((const char *const[]){"cassette", "rm", c, "--match", "sh", NULL},
              NULL, 1, &r); /* the whole string must match */
  assert_non_null(strstr(err_text(&r), "matches 'sh'; nothing removed\n"));
  cli_res_free(&r);
  expect_fail((const char *const[]){"cassette", "rm", c, "--entry", "3", NULL},
              NULL, 125, "pk: invalid_argument: --entry 3: ");
  assert_unchanged(c, before);
  /* Frozen: refused, untouched. */
  cassette_from(FIXTURES "/errors.yaml", sc.path[1], true);
  char *frozen = text_of(sc.path[1]);
  expect_fail(
      (const char *const[]){"cassette", "rm", sc.path[1], "--entry", "1", NULL},
      NULL, 125, "pk: cassette_frozen: ");
  assert_unchanged(sc.path[1], frozen);
  free(frozen);
  /* A symlink: refused; the link and its target stay as they are. */
  assert_int_equal(symlink(c, sc.path[2]), 0);
  expect_fail(
      (const char *const[]){"cassette", "rm", sc.path[2], "--entry", "1", NULL},
      NULL, 125, "pk: permission_denied: ");
  struct stat st;
  assert_int_equal(lstat(sc.path[2], &st), 0);
  assert_true(S_ISLNK(st.st_mode));
  assert_unchanged(c, before);
  /* A cassette that does not parse, or is not there. */
  write_file(sc.path[3], "version: 1\nentries: [\n");
  expect_fail(
      (const char *const[]){"cassette", "rm", sc.path[3], "--match", "*", NULL},
      NULL, 125, "pk: cassette_invalid: ");
  assert_unchanged(sc.path[3], "version: 1\nentries: [\n");
  expect_fail((const char *const[]){"cassette", "rm", "/nonexistent/c.yaml",
                                    "--entry", "1", NULL},
              NULL, 125, "pk: cassette_not_found: ");
  /* Remove the rest: an empty cassette that still loads. */
  expect_exit((const char *const[]){"cassette", "rm", c, "--match", "*", NULL},
              NULL, 0, &r);
  cli_res_free(&r);
  pkc_file *f = load_ok(c);
  assert_int_equal(f->nentries, 0);
  pkc_file_free(f);
  free(before);
  assert_dir_is(sc.dir, (const char *const[]){"c.yaml", "frozen.yaml", "l.yaml",
                                              "bad.yaml", NULL});
  for (int i = 0; i < 4; i++)
    assert_int_equal(unlink(sc.path[i]), 0);
  assert_int_equal(rmdir(sc.dir), 0);
}

static void cassette_prune(void **state) {
  (void)state;
  scratch sc;
  scratch_init(&sc,
               (const char *const[]){"c.yaml", "keep", "frozen.yaml", NULL});
  const char *c = sc.path[0], *keep = sc.path[1];
  cassette_from(FIXTURES "/git.yaml", c, false);
  char *before = text_of(c);
  /* Keeping all: nothing removed, exit 0, the file untouched. */
  write_file(keep, "1\n2\n3\n4\n4\n");
  cli_res r;
  expect_exit(
      (const char *const[]){"cassette", "prune", c, "--keep", keep, NULL}, NULL,
      0, &r);
  char want[512];
  snprintf(want, sizeof(want), "%s: removed 0 of 4 entries, 4 left\n", c);
  assert_string_equal(out_text(&r), want);
  cli_res_free(&r);
  assert_unchanged(c, before);
  /* Bad lines name FILE:LINE; nothing is removed. */
  static const char *const bad[][2] = {
      {"1\n\nx\n", ":3: 'x' is not an entry number"},
      {"# c\n0\n", ":2: '0' is not an entry number"},
      {"-1\n", ":1: '-1' is not"},
      {"2 3\n", ":1: '2 3' is not"},
      {"1\n5\n", ":2: "},
  };
  for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
    assert_int_equal(unlink(keep), 0);
    write_file(keep, bad[i][0]);
    char prefix[512];
    snprintf(prefix, sizeof(prefix), "pk: invalid_argument: %s%s", keep,
             bad[i][1]);
    expect_fail(
        (const char *const[]){"cassette", "prune", c, "--keep", keep, NULL},
        NULL, 125, prefix);
    assert_unchanged(c, before);
  }
  expect_fail((const char *const[]){"cassette", "prune", c, "--keep",
                                    "/nonexistent/keep", NULL},
              NULL, 125, "pk: not_found: --keep /nonexistent/keep");
  /* Comments, blank lines and spaces are ignored. */
  assert_int_equal(unlink(keep), 0);
  write_file(keep, "# entries the tests use\n1\n\n  3  \r\n4 # the push\n");
  expect_exit(
      (const char *const[]){"cassette", "prune", c, "--keep", keep, NULL}, NULL,
      0, &r);
  snprintf(want, sizeof(want), "%s: removed 1 of 4 entries, 3 left\n", c);
  assert_string_equal(out_text(&r), want);
  cli_res_free(&r);
  assert_rewritten(c, before, (const bool[]){0, 1, 0, 0}, 4, true);
  free(before);
  /* '-': the list on stdin. */
  before = text_of(c);
  cli_opts o = {.in = "2\n", .in_len = 2};
  expect_exit(
      (const char *const[]){"cassette", "prune", c, "--keep", "-", NULL}, &o, 0,
      &r);
  cli_res_free(&r);
  assert_rewritten(c, before, (const bool[]){1, 0, 1}, 3, true);
  o = (cli_opts){.in = "2\n", .in_len = 2};
  expect_fail(
      (const char *const[]){"cassette", "prune", c, "--keep", "-", NULL}, &o,
      125, "pk: invalid_argument: stdin:1: ");
  free(before);
  /* Frozen: refused. */
  cassette_from(FIXTURES "/git.yaml", sc.path[2], true);
  char *frozen = text_of(sc.path[2]);
  expect_fail((const char *const[]){"cassette", "prune", sc.path[2], "--keep",
                                    keep, NULL},
              NULL, 125, "pk: cassette_frozen: ");
  assert_unchanged(sc.path[2], frozen);
  free(frozen);
  assert_dir_is(sc.dir,
                (const char *const[]){"c.yaml", "keep", "frozen.yaml", NULL});
  for (int i = 0; i < 3; i++)
    assert_int_equal(unlink(sc.path[i]), 0);
  assert_int_equal(rmdir(sc.dir), 0);
}

/* On a real recording: the same command twice is <digest>-1 and -2;
 * removing the first renumbers the second, which diff then pairs with
 * the first (equal but for timing): only the old -2 is left over. The
 * rest still replays. */
static void cassette_commands_on_a_recording(void **state) {
  (void)state;
  cas_dir d;
  cas_dir_make(&d);
  const char *const runs[][6] = {
      {d.prog, "outerr", "out", "err", "3", NULL},
      {d.prog, "outerr", "out", "err", "3", NULL},
      {d.prog, "outerr", "x", "y", "0", NULL},
  };
  for (int i = 0; i < 3; i++) {
    const char *args[10] = {"record", d.cas, "--"};
    for (int j = 0; runs[i][j] != NULL; j++)
      args[3 + j] = runs[i][j];
    cli_res r;
    expect_exit(args, NULL, i < 2 ? 3 : 0, &r);
    cli_res_free(&r);
  }
  cli_res r;
  expect_exit((const char *const[]){"cassette", "lint", d.cas, NULL}, NULL, 0,
              &r);
  assert_non_null(strstr(out_text(&r), ": ok, 3 entries (format version 1)\n"));
  cli_res_free(&r);
  pkc_file *f = load_ok(d.cas);
  char id1[32];
  snprintf(id1, sizeof(id1), "%s", f->entries[0].id);
  assert_int_equal(strlen(id1), 14);
  assert_string_equal(id1 + 12, "-1");
  char id2[32];
  snprintf(id2, sizeof(id2), "%.12s-2", id1);
  assert_string_equal(f->entries[1].id, id2);
  /* The program as recorded: {{pk.tmp}}/... unless TMPDIR is elsewhere. */
  char prog[128];
  snprintf(prog, sizeof(prog), "%s", f->entries[0].program);
  assert_non_null(strstr(prog, "/tool"));
  pkc_file_free(f);
  expect_exit((const char *const[]){"cassette", "show", d.cas, NULL}, NULL, 0,
              &r);
  char want[512];
  snprintf(want, sizeof(want),
           "1  %s  %s outerr out err 3  -> exit 3  out 4 B / 1 line, err 4 B "
           "/ 1 line  ",
           id1, prog);
  assert_prefix(out_text(&r), want);
  snprintf(want, sizeof(want), "\n2  %s  %s outerr out err 3  -> exit 3  ", id2,
           prog);
  assert_non_null(strstr(out_text(&r), want));
  cli_res_free(&r);
  char copy[128];
  snprintf(copy, sizeof(copy), "%s/before.yaml", d.dir);
  char *before = text_of(d.cas);
  write_file(copy, before);
  expect_exit(
      (const char *const[]){"cassette", "rm", d.cas, "--entry", "1", NULL},
      NULL, 0, &r);
  cli_res_free(&r);
  assert_rewritten(d.cas, before, (const bool[]){1, 0, 0}, 3, false);
  f = load_ok(d.cas);
  assert_string_equal(f->entries[0].id, id1); /* was -2 */
  pkc_file_free(f);
  free(before);
  expect_exit((const char *const[]){"cassette", "diff", copy, d.cas, NULL},
              NULL, 1, &r);
  snprintf(want, sizeof(want), "only in A: entry 2  %s  %s outerr out err 3\n",
           id2, prog);
  assert_string_equal(out_text(&r), want);
  cli_res_free(&r);
  assert_int_equal(unlink(d.prog), 0);
  expect_exit((const char *const[]){"replay", d.cas, "--", d.prog, "outerr",
                                    "x", "y", "0", NULL},
              NULL, 0, &r);
  assert_string_equal(out_text(&r), "x\n");
  cli_res_free(&r);
  cas_dir_remove(&d);
}

/* A cassette path that is a FIFO or a directory is refused at once by
 * every command (opening a FIFO used to wait for a writer forever), and
 * record runs nothing. */
static void cassette_that_is_not_a_file(void **state) {
  (void)state;
  cas_dir d;
  cas_dir_make(&d);
  char fifo[128], dir[128], mark[128];
  snprintf(fifo, sizeof(fifo), "%s/fifo.yaml", d.dir);
  snprintf(dir, sizeof(dir), "%s/dir.yaml", d.dir);
  snprintf(mark, sizeof(mark), "%s/ran", d.dir);
  assert_int_equal(mkfifo(fifo, 0600), 0);
  assert_int_equal(mkdir(dir, 0700), 0);
  const char *paths[] = {fifo, dir};
  for (int i = 0; i < 2; i++) {
    char want[256];
    snprintf(want, sizeof(want), "pk: cassette_invalid: %s: not a regular file",
             paths[i]);
    expect_fail(
        (const char *const[]){"record", paths[i], "--", "touch", mark, NULL},
        NULL, 125, want);
    assert_int_equal(access(mark, F_OK), -1); /* nothing ran */
    expect_fail((const char *const[]){"replay", paths[i], "--", d.prog, "echo",
                                      "x", NULL},
                NULL, 125, want);
    expect_fail((const char *const[]){"cassette", "show", paths[i], NULL}, NULL,
                125, want);
    expect_fail((const char *const[]){"cassette", "lint", paths[i], NULL}, NULL,
                1, want);
  }
  cas_dir_remove(&d);
}

/* How a run ended replays as pk record saw it: the same exit status and
 * the same "pk: ..." line, for a missing program (127), a file that is
 * not executable (126), a timeout (124: the line gives the recorded
 * time, never "after 0.000 s") and a SIGKILL (137). */
static void record_and_replay_every_ending(void **state) {
  (void)state;
  cas_dir d;
  cas_dir_make(&d);
  char missing[128], noexec[128];
  snprintf(missing, sizeof(missing), "%s/missing", d.dir);
  snprintf(noexec, sizeof(noexec), "%s/noexec", d.dir);
  write_file(noexec, "#!/bin/sh\necho x\n");
  assert_int_equal(chmod(noexec, 0644), 0);
  const struct {
    const char *args[8];
    int code;
    const char *line; /* the start of stderr, both times */
  } cases[] = {
      {{missing, NULL}, 127, "pk: not_found: "},
      {{noexec, NULL}, 126, "pk: permission_denied: "},
      {{"--timeout", "0.3", "--", d.prog, "sleep", "5", NULL},
       124,
       "pk: timeout: "},
      {{d.prog, "raise", "9", NULL}, 137, ""},
  };
  for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
    const char *argv[16] = {"record", d.cas};
    size_t n = 2;
    if (strcmp(cases[i].args[0], "--timeout") != 0)
      argv[n++] = "--";
    for (size_t j = 0; cases[i].args[j] != NULL; j++)
      argv[n++] = cases[i].args[j];
    argv[n] = NULL;
    cli_res rec, rep;
    expect_exit(argv, NULL, cases[i].code, &rec);
    assert_prefix(err_text(&rec), cases[i].line);
    /* Replay: the same command without record's --timeout. */
    const char *rargv[16] = {"replay", d.cas, "--"};
    n = 3;
    for (size_t j = 0; cases[i].args[j] != NULL; j++)
      if (strcmp(cases[i].args[j], "--timeout") == 0)
        j += 2; /* --timeout 0.3 -- */
      else
        rargv[n++] = cases[i].args[j];
    rargv[n] = NULL;
    expect_exit(rargv, NULL, cases[i].code, &rep);
    if (cases[i].code == 124) {
      assert_non_null(strstr(err_text(&rec), "timed out after 0.300 s"));
      assert_null(strstr(err_text(&rep), "after 0.000 s"));
      assert_non_null(strstr(err_text(&rep), "timed out after 0.3"));
    } else {
      assert_string_equal(err_text(&rep), err_text(&rec));
    }
    cli_res_free(&rec);
    cli_res_free(&rep);
  }
  cas_dir_remove(&d);
}

/* pk record of a command that is not UTF-8 fails before running it
 * (it could not be saved): exit 125, no side effect, the file as it
 * was. */
static void record_refuses_non_utf8_before_running(void **state) {
  (void)state;
  cas_dir d;
  cas_dir_make(&d);
  char mark[128];
  snprintf(mark, sizeof(mark), "%s/ran", d.dir);
  cli_res r;
  expect_exit(
      (const char *const[]){"record", d.cas, "--", d.prog, "echo", "x", NULL},
      NULL, 0, &r);
  cli_res_free(&r);
  char *before = text_of(d.cas);
  expect_fail((const char *const[]){"record", d.cas, "--", "touch", mark,
                                    "caf\xe9", NULL},
              NULL, 125, "pk: invalid_argument: ");
  assert_int_equal(access(mark, F_OK), -1);
  char *after = text_of(d.cas);
  assert_string_equal(after, before);
  free(before);
  free(after);
  cas_dir_remove(&d);
}

/* pk record through a symlink (or a dangling one) is refused before the
 * command runs, not after it ran and the save refused it. */
static void record_refuses_a_symlink_before_running(void **state) {
  (void)state;
  cas_dir d;
  cas_dir_make(&d);
  char real[128], link1[128], link2[128], mark[128];
  snprintf(real, sizeof(real), "%s/real.yaml", d.dir);
  snprintf(link1, sizeof(link1), "%s/link.yaml", d.dir);
  snprintf(link2, sizeof(link2), "%s/dangling.yaml", d.dir);
  snprintf(mark, sizeof(mark), "%s/ran", d.dir);
  write_file(real, "version: 1\nentries: []\n");
  assert_int_equal(symlink(real, link1), 0);
  assert_int_equal(symlink("nowhere.yaml", link2), 0);
  const char *links[] = {link1, link2};
  for (int i = 0; i < 2; i++) {
    char want[256];
    snprintf(want, sizeof(want), "pk: permission_denied: %s: not a regular",
             links[i]);
    expect_fail(
        (const char *const[]){"record", links[i], "--", "touch", mark, NULL},
        NULL, 125, want);
    assert_int_equal(access(mark, F_OK), -1);
  }
  char *text = text_of(real);
  assert_string_equal(text, "version: 1\nentries: []\n");
  free(text);
  cas_dir_remove(&d);
}

/* ------------------------------------------------------ limits, subreaper */

/* Whether this host enforces a group limit, asked of the library. */
static int limit_verdict(const char *opt) {
  pk_group_opts o;
  pk_group_opts_init(&o);
  if (strcmp(opt, "--memory-max") == 0)
    o.memory_max = 64 << 20;
  else if (strcmp(opt, "--max-processes") == 0)
    o.max_processes = 20;
  else
    o.cpu_quota = 0.5;
  pk_group *g = NULL;
  int rc = pk_group_new(&o, &g, NULL);
  pk_group_free(g);
  return rc;
}

/* A cap pk cannot enforce here runs nothing and exits 125 naming the
 * option and the reason; one it can runs. Bad values are usage errors
 * naming the option; process_group has no caps. */
static void limits_on_the_command_line(void **state) {
  (void)state;
  pkt_snapshot snap;
  pkt_snapshot_take(&snap);
  scratch sc;
  scratch_init(&sc, (const char *const[]){"marker", NULL});
  const char *opts[][3] = {{"--memory-max", "64M", "memory_max"},
                           {"--max-processes", "20", "max_processes"},
                           {"--cpu-quota", "0.5", "cpu_quota"}};
  for (size_t i = 0; i < 3; i++) {
    int verdict = limit_verdict(opts[i][0]);
    const char *const args[] = {"run",      opts[i][0], opts[i][1],
                                "--",       PK_FIXTURE, "pidfile",
                                sc.path[0], "0",        NULL};
    cli_res r;
    print_message("%s %s: the library says %s\n", opts[i][0], opts[i][1],
                  pk_err_name(verdict));
    if (verdict == 0) {
      expect_exit(args, NULL, 0, &r);
      assert_int_equal(unlink(sc.path[0]), 0);
    } else {
      assert_int_equal(verdict, PK_ELIMIT);
      expect_exit(args, NULL, 125, &r);
      char want[64];
      snprintf(want, sizeof(want), "pk: resource_limit: %s: ", opts[i][2]);
      assert_prefix(err_text(&r), want);
      assert_int_equal(access(sc.path[0], F_OK), -1);
    }
    cli_res_free(&r);
    const char *const pg[] = {
        "run", "--mechanism", "process_group", opts[i][0], opts[i][1],
        "--",  PK_FIXTURE,    "exit",          "0",        NULL};
    expect_exit(pg, NULL, 125, &r);
    assert_prefix(err_text(&r), "pk: unsupported: ");
    assert_non_null(strstr(err_text(&r), opts[i][2]));
    cli_res_free(&r);
  }
  const char *bad[][2] = {{"--memory-max", "0"},      {"--memory-max", "5X"},
                          {"--memory-max", "-1M"},    {"--max-processes", "0"},
                          {"--max-processes", "2.5"}, {"--cpu-quota", "abc"},
                          {"--cpu-quota", "0.001"}};
  for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
    const char *const args[] = {"run",      bad[i][0], bad[i][1], "--",
                                PK_FIXTURE, "exit",    "0",       NULL};
    cli_res r;
    expect_exit(args, NULL, 125, &r);
    assert_prefix(err_text(&r), "pk: invalid_argument: ");
    assert_non_null(strstr(err_text(&r), bad[i][0]));
    cli_res_free(&r);
  }
  assert_int_equal(rmdir(sc.dir), 0);
  pkt_snapshot_check(&snap);
}

/* The pid in an "escaped PID" line of out. */
static pid_t escaped_pid(const char *out) {
  const char *p = strstr(out, "escaped ");
  int pid = 0;
  if (p == NULL || sscanf(p, "escaped %d", &pid) != 1)
    fail_msg("no escapee reported in: %s", out);
  return (pid_t)pid;
}

/* A setsid escapee that outlives the run's direct child: out of reach
 * of process_group alone, killed by --subreaper (and counted). */
static void subreaper_catches_escapees(void **state) {
  (void)state;
  pkt_snapshot snap;
  pkt_snapshot_take(&snap);
  scratch sc;
  scratch_init(&sc, (const char *const[]){"r.yaml", NULL});
  const char *const plain[] = {"run", "--mechanism", "process_group",
                               "--",  PK_FIXTURE,    "setsid-escape",
                               "0",   "600",         NULL};
  cli_res r;
  expect_exit(plain, NULL, 0, &r);
  pid_t esc = escaped_pid(out_text(&r));
  int fd = pkt_pidfd(esc);
  bool survived = pkt_pid_alive(esc);
  pkt_wait_pidfds(&fd, 1, 0); /* kills it: the test's own descendant */
  assert_true(survived);
  cli_res_free(&r);

  const char *const sub[] = {"run", "--subreaper", "--report",      sc.path[0],
                             "--",  PK_FIXTURE,    "setsid-escape", "0",
                             "600", NULL};
  expect_exit(sub, NULL, 0, &r);
  esc = escaped_pid(out_text(&r));
  assert_false(pkt_pid_alive(esc));
  report rep;
  report_read(sc.path[0], &rep);
  assert_int_equal(report_int(&rep, "subreaper_killed"), 1);
  assert_true(report_int(&rep, "cpu_us") >= 0);
  report_free(&rep);
  cli_res_free(&r);
  const char *const both[] = {"run",         "--mechanism", "cgroup_v2",
                              "--subreaper", "--",          PK_FIXTURE,
                              "exit",        "0",           NULL};
  expect_exit(both, NULL, 125, &r);
  assert_prefix(err_text(&r), "pk: invalid_argument: --subreaper");
  cli_res_free(&r);
  assert_int_equal(unlink(sc.path[0]), 0);
  assert_int_equal(rmdir(sc.dir), 0);
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
      cmocka_unit_test(version_on_stdout),
      cmocka_unit_test(help_lists_every_command),
      cmocka_unit_test(help_run_is_the_full_usage),
      cmocka_unit_test(help_x_equals_x_help),
      cmocka_unit_test(bare_pk_is_a_usage_error),
      cmocka_unit_test(unknown_command_is_a_usage_error),
      cmocka_unit_test(record_then_replay_without_the_program),
      cmocka_unit_test(record_keys_on_stdin),
      cmocka_unit_test(run_with_a_cassette),
      cmocka_unit_test(replay_of_a_truncated_entry_warns),
      cmocka_unit_test(man_page_documents_every_command),
      cmocka_unit_test(stdout_and_stderr_byte_exact),
      cmocka_unit_test(stdin_passes_through_binary_safe),
      cmocka_unit_test(report_file),
      cmocka_unit_test(report_after_a_forwarded_signal),
      cmocka_unit_test(report_bad_path_runs_nothing),
      cmocka_unit_test(report_refuses_a_symlink),
      cmocka_unit_test(report_round_trips_any_argument),
      cmocka_unit_test(report_full_disk_leaves_nothing),
      cmocka_unit_test(cassette_usage_errors),
      cmocka_unit_test(cassette_lint),
      cmocka_unit_test(cassette_show_lists),
      cmocka_unit_test(cassette_show_entry),
      cmocka_unit_test(cassette_show_is_terminal_safe),
      cmocka_unit_test(cassette_diff),
      cmocka_unit_test(cassette_rm),
      cmocka_unit_test(cassette_prune),
      cmocka_unit_test(cassette_commands_on_a_recording),
      cmocka_unit_test(cassette_that_is_not_a_file),
      cmocka_unit_test(record_and_replay_every_ending),
      cmocka_unit_test(record_refuses_non_utf8_before_running),
      cmocka_unit_test(record_refuses_a_symlink_before_running),
      cmocka_unit_test(limits_on_the_command_line),
      cmocka_unit_test(subreaper_catches_escapees),
  };
  return cmocka_run_group_tests(tests, pkt_setup, NULL);
}
