/* `pk run` as a user types it: the real pk binary on a real pty, on every
 * mechanism. The test program is the session leader of its own session
 * (main forks once for that), each test's pty is its controlling
 * terminal, and pk is its child in a process group of its own, made the
 * foreground group, as a shell runs a job. So the test sees what a shell
 * sees: pk's stops through waitpid(WUNTRACED), the terminal's foreground
 * group through tcgetpgrp. Everything waits for an event (a marker on the
 * pty, a status change of pk) under one generous deadline; no test
 * sleeps for a fixed time to pass. */
#include "harness.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pty.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <termios.h>
#include <unistd.h>

extern char **environ;

#define TTY_DEADLINE_MS 20000 /* per test run; a hang fails, never waits */
#define TTY_TICK_MS 20        /* waitpid has no fd: poll the pty meanwhile */

typedef struct tty_run {
  int master, slave;
  pid_t pk;
  bool reaped;
  int status;
  char out[65536]; /* everything read from the pty */
  size_t len, seen;
  uint64_t deadline;
  struct termios saved; /* the modes before pk ran */
} tty_run;

static tty_run *current; /* for the teardown of a failed test */

static void tty_open(tty_run *t) {
  memset(t, 0, sizeof(*t));
  assert_int_equal(openpty(&t->master, &t->slave, NULL, NULL, NULL), 0);
  assert_int_equal(fcntl(t->master, F_SETFD, FD_CLOEXEC), 0);
  assert_int_equal(fcntl(t->slave, F_SETFD, FD_CLOEXEC), 0);
  assert_int_equal(fcntl(t->master, F_SETFL, O_NONBLOCK), 0);
  /* Our controlling terminal; its foreground group is now ours. */
  assert_int_equal(ioctl(t->slave, TIOCSCTTY, 0), 0);
  assert_int_equal(tcgetpgrp(t->master), getpgrp());
  assert_int_equal(tcgetattr(t->slave, &t->saved), 0);
  t->deadline = pkt_now_ms() + TTY_DEADLINE_MS;
  current = t;
}

enum {
  TTY_BG = 0,          /* a job of its own, left in the background */
  TTY_FG = 1,          /* ... made the terminal's foreground group */
  TTY_SIGCHLD_IGN = 2, /* pk starts with SIGCHLD ignored */
};

/* pk ARGS... on the pty, as a job of a shell (TTY_* flags). */
static void tty_start(tty_run *t, int flags, const char *const *args) {
  bool foreground = flags & TTY_FG;
  const char *argv[32];
  size_t n = 0;
  argv[n++] = PK_CLI;
  for (; args[n - 1] != NULL; n++) {
    assert_true(n < 31);
    argv[n] = args[n - 1];
  }
  argv[n] = NULL;
  pid_t pid = fork();
  assert_true(pid >= 0);
  if (pid == 0) {
    if (setpgid(0, 0) < 0 || (foreground && tcsetpgrp(t->slave, getpid()) < 0))
      _exit(120);
    if (dup2(t->slave, 0) < 0 || dup2(t->slave, 1) < 0 || dup2(t->slave, 2) < 0)
      _exit(121);
    static const int sigs[] = {SIGHUP, SIGTTOU, SIGTTIN, SIGPIPE};
    for (size_t i = 0; i < sizeof(sigs) / sizeof(sigs[0]); i++)
      signal(sigs[i], SIG_DFL);
    if (flags & TTY_SIGCHLD_IGN)
      signal(SIGCHLD, SIG_IGN);
    sigset_t none;
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, NULL);
    execve(PK_CLI, (char *const *)argv, environ);
    _exit(122);
  }
  setpgid(pid, pid); /* as a shell does: whichever runs first */
  t->pk = pid;
}

static uint64_t tty_left(const tty_run *t) {
  uint64_t now = pkt_now_ms();
  return now < t->deadline ? t->deadline - now : 0;
}

/* Read what the pty has, waiting up to ms for it. */
static void tty_pump(tty_run *t, int ms) {
  struct pollfd pf = {.fd = t->master, .events = POLLIN};
  if (poll(&pf, 1, ms) <= 0)
    return;
  if (t->len + 1 >= sizeof(t->out))
    fail_msg("pk wrote more than %zu bytes", sizeof(t->out));
  ssize_t n = read(t->master, t->out + t->len, sizeof(t->out) - 1 - t->len);
  if (n > 0) {
    t->len += (size_t)n;
    t->out[t->len] = '\0';
  }
}

/* Wait for marker in the output after the previous one; returns where
 * the text after it starts. */
static const char *tty_expect(tty_run *t, const char *marker) {
  for (;;) {
    const char *hit = strstr(t->out + t->seen, marker);
    if (hit != NULL) {
      t->seen = (size_t)(hit - t->out) + strlen(marker);
      return t->out + t->seen;
    }
    uint64_t left = tty_left(t);
    if (left == 0)
      fail_msg("no '%s' from pk within %d ms; the pty shows: %s", marker,
               TTY_DEADLINE_MS, t->out);
    tty_pump(t, (int)left);
  }
}

static void tty_type(tty_run *t, const char *keys) {
  size_t len = strlen(keys);
  assert_int_equal(write(t->master, keys, len), (ssize_t)len);
}

/* The first line of a /proc file of pid ("" if none), in buf. */
static const char *proc_read(pid_t pid, const char *file, char *buf,
                             size_t size) {
  char path[96];
  snprintf(path, sizeof(path), "/proc/%d/%s", (int)pid, file);
  FILE *f = fopen(path, "re");
  buf[0] = '\0';
  if (f != NULL) {
    if (fgets(buf, (int)size, f) == NULL)
      buf[0] = '\0';
    fclose(f);
  }
  buf[strcspn(buf, "\n")] = '\0';
  return buf;
}

/* For a failure message: pid's state, wait channel and children. */
static const char *proc_info(pid_t pid) {
  static char info[640];
  char stat[512], wchan[64], kids[64], file[64];
  const char *rp = strrchr(proc_read(pid, "stat", stat, sizeof(stat)), ')');
  snprintf(file, sizeof(file), "task/%d/children", (int)pid);
  char kstat[512], kwchan[64];
  pid_t kid = (pid_t)atoi(proc_read(pid, file, kids, sizeof(kids)));
  const char *krp =
      kid > 0 ? strrchr(proc_read(kid, "stat", kstat, sizeof(kstat)), ')')
              : NULL;
  snprintf(info, sizeof(info), "%c in %s, children %s: %c in %s",
           rp != NULL && rp[1] == ' ' ? rp[2] : '?',
           proc_read(pid, "wchan", wchan, sizeof(wchan)), kids,
           krp != NULL && krp[1] == ' ' ? krp[2] : '?',
           kid > 0 ? proc_read(kid, "wchan", kwchan, sizeof(kwchan)) : "");
  return info;
}

/* Until pk stops: the stop signal. */
static int tty_wait_stopped(tty_run *t) {
  for (;;) {
    int st;
    pid_t w = waitpid(t->pk, &st, WUNTRACED | WNOHANG);
    assert_true(w >= 0);
    if (w == t->pk && WIFSTOPPED(st))
      return WSTOPSIG(st);
    if (w == t->pk) {
      t->reaped = true;
      fail_msg("pk ended (status 0x%x) instead of stopping; pty: %s", st,
               t->out);
    }
    if (tty_left(t) == 0)
      fail_msg("pk did not stop within %d ms; pty: %s", TTY_DEADLINE_MS,
               t->out);
    tty_pump(t, TTY_TICK_MS);
  }
}

/* Until pk exits; it stays a zombie (its group number reserved) so the
 * terminal's foreground group can be compared with it. */
static void tty_wait_exit(tty_run *t) {
  for (;;) {
    siginfo_t si;
    memset(&si, 0, sizeof(si));
    assert_int_equal(
        waitid(P_PID, (id_t)t->pk, &si, WEXITED | WSTOPPED | WNOHANG | WNOWAIT),
        0);
    if (si.si_pid == t->pk && si.si_code == CLD_STOPPED)
      fail_msg("pk stopped (signal %d) instead of ending; pty: %s",
               si.si_status, t->out);
    if (si.si_pid == t->pk)
      break;
    if (tty_left(t) == 0)
      fail_msg("pk did not end within %d ms (state %s); pty: %s",
               TTY_DEADLINE_MS, proc_info(t->pk), t->out);
    tty_pump(t, TTY_TICK_MS);
  }
  for (size_t before = SIZE_MAX; before != t->len;) { /* pk's last words */
    before = t->len;
    tty_pump(t, 0);
  }
}

static int tty_reap(tty_run *t) {
  pid_t w;
  while ((w = waitpid(t->pk, &t->status, 0)) < 0 && errno == EINTR)
    ;
  assert_int_equal(w, t->pk);
  t->reaped = true;
  if (!WIFEXITED(t->status))
    fail_msg("pk did not exit normally (status 0x%x); pty: %s", t->status,
             t->out);
  return WEXITSTATUS(t->status);
}

/* pk exited with code; the terminal is back with pk's group, in the modes
 * it had before. */
static void tty_expect_end(tty_run *t, int code, bool foreground) {
  tty_wait_exit(t);
  pid_t fg = tcgetpgrp(t->master);
  int got = tty_reap(t);
  if (got != code)
    fail_msg("pk exit %d, expected %d; pty: %s", got, code, t->out);
  assert_int_equal(fg, foreground ? t->pk : getpgrp());
  struct termios now;
  assert_int_equal(tcgetattr(t->slave, &now), 0);
  assert_int_equal(now.c_lflag, t->saved.c_lflag);
  assert_int_equal(now.c_iflag, t->saved.c_iflag);
  assert_int_equal(now.c_oflag, t->saved.c_oflag);
  assert_int_equal(now.c_cflag, t->saved.c_cflag);
}

/* Give up the terminal (as its session leader: SIGHUP, ignored, to the
 * foreground group) and close it. */
static void tty_close(tty_run *t) {
  ioctl(t->slave, TIOCNOTTY);
  close(t->slave);
  close(t->master);
  current = NULL;
}

/* A failed test leaves pk running: kill it (its tree dies with the
 * terminal's hangup or reaches us as orphans), reap it, close the pty. */
static int tty_teardown(void **state) {
  (void)state;
  tty_run *t = current;
  if (t == NULL)
    return 0;
  if (t->pk > 0 && !t->reaped) {
    kill(t->pk, SIGKILL);
    waitpid(t->pk, NULL, 0);
  }
  tty_close(t);
  free(t);
  pkt_reap_children();
  return 0;
}

/* One run of a test on mechanism m: a snapshot, a fresh pty. */
static tty_run *tty_begin(pk_mechanism m, pkt_snapshot *snap) {
  print_message("mechanism %s\n", pk_mechanism_name(m));
  pkt_snapshot_take(snap);
  tty_run *t = malloc(sizeof(*t));
  assert_non_null(t);
  tty_open(t);
  return t;
}

static void tty_finish(tty_run *t, const pkt_snapshot *snap) {
  tty_close(t);
  free(t);
  pkt_snapshot_check(snap);
}

#define RUN_ARGS(mech, ...)                                                    \
  { "run", "--mechanism", pk_mechanism_name(mech), "--", __VA_ARGS__, NULL }

/* ------------------------------------------------------------- tests */

static void child_owns_the_terminal_then_pk_gets_it_back(void **state) {
  (void)state;
  pk_mechanism mechs[4];
  int n = pkt_mechanisms(mechs);
  for (int i = 0; i < n; i++) {
    pkt_snapshot snap;
    tty_run *t = tty_begin(mechs[i], &snap);
    const char *const args[] = RUN_ARGS(mechs[i], PK_FIXTURE, "tty-info");
    tty_start(t, TTY_FG, args);
    const char *info = tty_expect(t, "tty pid=");
    int pid, pgid, fg, ppid;
    assert_int_equal(
        sscanf(info, "%d pgid=%d fg=%d ppid=%d", &pid, &pgid, &fg, &ppid), 4);
    tty_expect(t, " end");
    print_message("pk %d, child %d in group %d, terminal's group %d\n",
                  (int)t->pk, pid, pgid, fg);
    assert_int_equal(ppid, t->pk);
    assert_int_equal(pgid, pid); /* a group of its own */
    assert_int_equal(fg, pgid);  /* ... in the foreground */
    assert_int_not_equal(fg, t->pk);
    /* The child left no echo, no canonical mode: pk restores both. */
    tty_expect_end(t, 0, true);
    tty_finish(t, &snap);
  }
}

static void reading_the_terminal_gets_the_typed_line(void **state) {
  (void)state;
  pk_mechanism mechs[4];
  int n = pkt_mechanisms(mechs);
  for (int i = 0; i < n; i++) {
    pkt_snapshot snap;
    tty_run *t = tty_begin(mechs[i], &snap);
    /* The repro: a shell reading the terminal. */
    const char *const args[] =
        RUN_ARGS(mechs[i], "/bin/sh", "-c", "read x; echo got:$x");
    tty_start(t, TTY_FG, args);
    tty_type(t, "hello\n"); /* typed ahead, as a user may */
    tty_expect(t, "got:hello");
    tty_expect_end(t, 0, true);
    tty_finish(t, &snap);
  }
}

/* The fixture counts SIGINTs ("sigint N" after each, on the terminal
 * directly) and prints the total on SIGTERM, which we send to pk to
 * forward. */
static int sigint_count(tty_run *t) {
  assert_int_equal(kill(t->pk, SIGTERM), 0);
  const char *p = tty_expect(t, "count=");
  tty_expect(t, " end");
  return atoi(p);
}

static void one_ctrl_c_is_one_sigint(void **state) {
  (void)state;
  pk_mechanism mechs[4];
  int n = pkt_mechanisms(mechs);
  for (int i = 0; i < n; i++) {
    pkt_snapshot snap;
    tty_run *t = tty_begin(mechs[i], &snap);
    const char *const args[] = RUN_ARGS(mechs[i], PK_FIXTURE, "count-sigint");
    tty_start(t, TTY_FG, args);
    tty_expect(t, "ready");
    /* pk stopped, the child counts the terminal's SIGINT alone; were pk
     * in the terminal's group too, its own SIGINT would wait, pending,
     * to be forwarded once pk runs again: a second one, never merged
     * with the first by a race. */
    assert_int_equal(kill(t->pk, SIGSTOP), 0);
    assert_int_equal(tty_wait_stopped(t), SIGSTOP);
    tty_type(t, "\x03");
    tty_expect(t, "sigint 1");
    assert_int_equal(kill(t->pk, SIGCONT), 0);
    int count = sigint_count(t);
    print_message("one Ctrl-C, %d SIGINT\n", count);
    assert_int_equal(count, 1);
    tty_expect_end(t, 0, true);
    tty_finish(t, &snap);
  }
}

static void kill_int_to_pk_is_forwarded_once(void **state) {
  (void)state;
  pk_mechanism mechs[4];
  int n = pkt_mechanisms(mechs);
  for (int i = 0; i < n; i++) {
    pkt_snapshot snap;
    tty_run *t = tty_begin(mechs[i], &snap);
    const char *const args[] = RUN_ARGS(mechs[i], PK_FIXTURE, "count-sigint");
    tty_start(t, TTY_FG, args);
    tty_expect(t, "ready"); /* through pk's output: its handlers are on */
    assert_int_equal(kill(t->pk, SIGINT), 0);
    tty_expect(t, "sigint 1");
    assert_int_equal(sigint_count(t), 1);
    tty_expect_end(t, 0, true);
    tty_finish(t, &snap);
  }
}

/* Also with SIGCHLD ignored (as a daemon may start pk): no SIGCHLD tells
 * of the stop then, and pk polls for it instead. */
static void ctrl_z_stops_pk_and_fg_resumes(void **state) {
  (void)state;
  pk_mechanism mechs[4];
  int n = pkt_mechanisms(mechs);
  for (int i = 0; i < 2 * n; i++) {
    pkt_snapshot snap;
    tty_run *t = tty_begin(mechs[i % n], &snap);
    int flags = TTY_FG | (i < n ? 0 : TTY_SIGCHLD_IGN);
    print_message("SIGCHLD %s\n", i < n ? "default" : "ignored");
    const char *const args[] = RUN_ARGS(mechs[i % n], PK_FIXTURE, "read-line");
    tty_start(t, flags, args);
    tty_expect(t, "ready");
    tty_type(t, "\x1a");
    /* The child stops; pk takes the terminal back and stops likewise. */
    assert_int_equal(tty_wait_stopped(t), SIGTSTP);
    assert_int_equal(tcgetpgrp(t->master), t->pk);
    /* `fg`: the terminal to pk's group, SIGCONT to it. */
    assert_int_equal(tcsetpgrp(t->slave, t->pk), 0);
    assert_int_equal(kill(-t->pk, SIGCONT), 0);
    tty_type(t, "hello\n");
    tty_expect(t, "got:hello");
    tty_expect_end(t, 0, true);
    tty_finish(t, &snap);
  }
}

/* pk's direct child (read from /proc once pk has one). */
static pid_t child_of(pid_t pk) {
  char path[64];
  snprintf(path, sizeof(path), "/proc/%d/task/%d/children", (int)pk, (int)pk);
  FILE *f = fopen(path, "re");
  long pid = 0;
  if (f != NULL) {
    if (fscanf(f, "%ld", &pid) != 1)
      pid = 0;
    fclose(f);
  }
  return (pid_t)pid;
}

static void background_run_keeps_the_terminal_and_obeys_signals(void **state) {
  (void)state;
  pk_mechanism mechs[4];
  int n = pkt_mechanisms(mechs);
  for (int i = 0; i < n; i++) {
    pkt_snapshot snap;
    tty_run *t = tty_begin(mechs[i], &snap);
    const char *const args[] = RUN_ARGS(mechs[i], PK_FIXTURE, "read-line");
    tty_start(t, TTY_BG, args);
    tty_expect(t, "ready");
    /* The child reads a terminal it does not own: SIGTTIN stops it. */
    pid_t child = 0;
    while ((child == 0 || pkt_proc_state(child) != 'T') && tty_left(t) > 0) {
      if (child == 0)
        child = child_of(t->pk);
      tty_pump(t, TTY_TICK_MS);
    }
    if (child == 0 || pkt_proc_state(child) != 'T')
      fail_msg("the background child did not stop on reading the terminal");
    assert_int_equal(tcgetpgrp(t->master), getpgrp()); /* untouched */
    /* SIGTERM to pk still ends the run: forwarded, then SIGCONT. */
    assert_int_equal(kill(t->pk, SIGTERM), 0);
    tty_expect_end(t, 128 + SIGTERM, false);
    tty_finish(t, &snap);
  }
}

/* The library itself (no pk binary): a foreground run hands this
 * process's terminal to the child's own group and takes it back with its
 * modes; without the option the terminal stays ours. */
static void library_foreground_run(void **state) {
  (void)state;
  pk_cmd *cmd = pkt_fixture("tty-info", NULL);
  PKT_ASSERT_OK(pk_cmd_set_timeout(cmd, TTY_DEADLINE_MS, 0, 0)); /* no hang */
  PKT_ASSERT_OK(pk_cmd_set_foreground(cmd, true));
  assert_true(pk_cmd_foreground(cmd));
  assert_int_equal(pk_cmd_set_setsid(cmd, true), PK_EINVAL);
  pk_cmd *copy;
  PKT_ASSERT_OK(pk_cmd_clone(cmd, &copy));
  assert_true(pk_cmd_foreground(copy));
  pk_cmd_free(copy);
  pk_mechanism mechs[4];
  int n = pkt_mechanisms(mechs);
  for (int i = 0; i < 2 * n; i++) {
    bool fg_wanted = i < n;
    pkt_snapshot snap;
    tty_run *t = tty_begin(mechs[i % n], &snap);
    PKT_ASSERT_OK(pk_cmd_set_foreground(cmd, fg_wanted));
    PKT_ASSERT_OK(pk_cmd_set_stdin_file(cmd, ptsname(t->master)));
    pk_runner *r = pkt_runner(mechs[i % n], 0);
    pk_result *res = NULL;
    PKT_ASSERT_OK(pk_output(r, cmd, &res));
    int pid, pgid, fg, ppid;
    const char *out = pk_result_stdout(res, NULL);
    if (sscanf(out, "tty pid=%d pgid=%d fg=%d ppid=%d", &pid, &pgid, &fg,
               &ppid) != 4)
      fail_msg("unexpected output: %s", out);
    print_message("foreground %d: child %d in group %d, terminal's %d\n",
                  fg_wanted, pid, pgid, fg);
    assert_int_equal(ppid, getpid());
    if (fg_wanted) {
      assert_int_equal(pgid, pid);
      assert_int_equal(fg, pid);
    } else {
      assert_int_equal(fg, getpgrp());
    }
    assert_int_equal(tcgetpgrp(t->master), getpgrp());
    struct termios now;
    assert_int_equal(tcgetattr(t->slave, &now), 0);
    if (fg_wanted) /* restored; without the option the child's modes stay */
      assert_int_equal(now.c_lflag, t->saved.c_lflag);
    pk_result_free(res);
    pk_runner_free(r);
    tty_finish(t, &snap);
  }
  pk_cmd_free(cmd);
}

int main(void) {
  /* A session of our own (a group leader cannot make one: fork first),
   * so a pty can be our controlling terminal and pk, our child, a job in
   * it: its group must not be orphaned for job-control stops to act. */
  if (setsid() < 0) {
    pid_t pid = fork();
    if (pid < 0)
      return 1;
    if (pid > 0) {
      int st;
      while (waitpid(pid, &st, 0) < 0)
        if (errno != EINTR)
          return 1;
      return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
    }
    if (prctl(PR_SET_PDEATHSIG, SIGKILL) < 0 || setsid() < 0)
      return 1;
  }
  /* A shell's dispositions: we hand the terminal around from the
   * background and give it up as a session leader. */
  signal(SIGTTOU, SIG_IGN);
  signal(SIGTTIN, SIG_IGN);
  signal(SIGHUP, SIG_IGN);
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_teardown(child_owns_the_terminal_then_pk_gets_it_back,
                                tty_teardown),
      cmocka_unit_test_teardown(reading_the_terminal_gets_the_typed_line,
                                tty_teardown),
      cmocka_unit_test_teardown(one_ctrl_c_is_one_sigint, tty_teardown),
      cmocka_unit_test_teardown(kill_int_to_pk_is_forwarded_once, tty_teardown),
      cmocka_unit_test_teardown(ctrl_z_stops_pk_and_fg_resumes, tty_teardown),
      cmocka_unit_test_teardown(
          background_run_keeps_the_terminal_and_obeys_signals, tty_teardown),
      cmocka_unit_test_teardown(library_foreground_run, tty_teardown),
  };
  return cmocka_run_group_tests(tests, pkt_setup, NULL);
}
