/* The contract suite: one table of scenarios, each run against the real
 * runner (through pk-fixture) and against the scripted runner scripted to
 * match; and each recorded from the real runner into a cassette and
 * replayed from it. Every verb's return code, every observable of the
 * result and the sequence of callbacks must be identical; the few fields
 * that differ by nature are left out in one place, check_excluded(), which
 * says why. A double is only trusted while it passes this contract.
 *
 * Where the double cannot yet match the real runner, the scenario's reply
 * names the differing fields in `gap`: the suite then requires that
 * difference (and no other) and prints it, so a fix to the double fails the
 * suite until the note is removed.
 *
 * Every scripted run must also end as the scenario wants (its gap aside).
 * On a host without a real runner yet (Windows) that is all a scenario can
 * check: it runs its scripted side, says so, and is reported skipped; the
 * cassette cases, recorded from the real runner, skip. */
#include "harness.h"

#include <pk/cassette.h>
#include <pk/fakes.h>

#include "internal.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <uv.h>

/* ------------------------------------------------------------- table */

typedef enum verb {
  V_OUTPUT,
  V_CHECKED,
  V_RUN,
  V_EXIT_CODE,
  V_PROBE,
  V_START, /* pk_start + on_line/on_output/on_exit + pk_proc_wait */
  V_COUNT
} verb;

static const char *const verb_names[V_COUNT] = {"pk_output", "pk_checked",
                                                "pk_run",    "pk_exit_code",
                                                "pk_probe",  "pk_start"};

#define ALL_VERBS ((1u << V_COUNT) - 1)
#define VERB(v) (1u << (v))

/* What a pk_start run does to its handle (bulk verbs cannot act). */
typedef enum action {
  ACT_NONE,
  ACT_KILL_AT_START, /* pk_proc_kill(SIGKILL) right after pk_start */
  ACT_KILL_ON_LINE,  /* pk_proc_kill(SIGKILL) from the first on_line */
  ACT_TERM_ON_LINE,  /* pk_proc_kill(SIGTERM) from the first on_line */
  ACT_CANCEL_ON_LINE /* pk_proc_cancel from the first on_line */
} action;

typedef pk_reply *(*reply_fn)(void);

/* One way of scripting the double for a scenario. */
typedef struct variant {
  reply_fn reply;
  /* Fields where this double is known to differ from the real runner
   * ("signal,code"; "signal@0": at time scale 0 only); NULL: none. */
  const char *gap;
} variant;

/* What the real run must have done, so a misbehaving fixture cannot make
 * both sides agree on the wrong thing. */
typedef struct want {
  pk_outcome outcome;
  int code, sig;
  int err; /* pk_output's / pk_proc_wait's return */
} want;

typedef struct scenario {
  const char *name;
  const char *program;  /* NULL: the fixture; "@NOEXEC": see noexec */
  const char *args[6];  /* fixture mode and arguments; "@PIDFILE": pidfile */
  const char *path_env; /* PATH for the child; NULL: inherited */
  int64_t timeout_ms, grace_ms;
  int soft_signal;
  pk_limit_policy limit;
  size_t limit_bytes;
  const char *in; /* stdin bytes (in_len of them); NULL: closed */
  size_t in_len;
  const char *in_file; /* stdin from this file */
  const char *cwd;
  int64_t drain_ms;      /* 0: CONTRACT_DRAIN_MS */
  pk_out_mode stdout_to; /* PK_OUT_CAPTURE (0) or PK_OUT_NULL */
  int accepted[4];
  size_t naccepted;
  unsigned verbs;
  action act;
  want want;
  variant variants[3];
  /* Fields the real runner itself does not reproduce from run to run,
   * compared nowhere for this scenario (racy_why says why). */
  const char *racy, *racy_why;
  /* Why a cassette cannot record and replay this scenario meaningfully
   * (NULL: it can, and the replay must match the recorded run). */
  const char *no_replay;
  /* Why the scenario means nothing on a host without POSIX signals and
   * execute permissions (Windows); NULL: it runs there too, pk's kills
   * reporting exit code 1 (host_want). */
  const char *posix_only;
} scenario;

/* ----------------------------------------------------------- replies */

static pk_reply *must(pk_reply *r) {
  assert_non_null(r);
  return r;
}

static pk_reply *r_hello(void) { return must(pk_reply_ok("hello world\n")); }
static pk_reply *r_ok_empty(void) { return must(pk_reply_ok(NULL)); }
static pk_reply *r_exit1(void) { return must(pk_reply_fail(1, NULL)); }
static pk_reply *r_sigterm(void) {
  return must(pk_reply_signalled(PK_SIGTERM));
}
static pk_reply *r_sigkill(void) {
  return must(pk_reply_signalled(PK_SIGKILL));
}
static pk_reply *r_not_found(void) { return must(pk_reply_not_found()); }
static pk_reply *r_eacces(void) { return must(pk_reply_spawn_error(EACCES)); }
static pk_reply *r_enoexec(void) { return must(pk_reply_spawn_error(ENOEXEC)); }
static pk_reply *r_enoent(void) { return must(pk_reply_spawn_error(ENOENT)); }
static pk_reply *r_hi(void) { return must(pk_reply_ok("hi\n")); }
static pk_reply *r_chdir_enoent(void) {
  return must(pk_reply_spawn_error_at("chdir", ENOENT));
}
static pk_reply *r_hi_incomplete(void) {
  pk_reply *r = must(pk_reply_ok("hi\n"));
  PKT_ASSERT_OK(pk_reply_incomplete(r));
  return r;
}
static pk_reply *r_pending(void) { return must(pk_reply_pending()); }
static pk_reply *r_timed_out(void) { return must(pk_reply_timed_out()); }

/* fail() prints stderr first, stdout is appended after it. */
static pk_reply *r_split_fail(void) {
  pk_reply *r = must(pk_reply_fail(3, "ERR\n"));
  PKT_ASSERT_OK(pk_reply_stdout(r, "OUT\n"));
  return r;
}

/* The order the fixture writes in: stdout, stderr, then exit 3. */
static pk_reply *r_split_timeline(void) {
  pk_reply *r = must(pk_reply_timeline());
  PKT_ASSERT_OK(pk_reply_chunk(r, PK_STDOUT, 0, "OUT\n", 4));
  PKT_ASSERT_OK(pk_reply_chunk(r, PK_STDERR, 5, "ERR\n", 4));
  PKT_ASSERT_OK(pk_reply_exit(r, 5, 3));
  return r;
}

/* outerr OUT ERR 0 */
static pk_reply *r_split_timeline0(void) {
  pk_reply *r = must(pk_reply_timeline());
  PKT_ASSERT_OK(pk_reply_chunk(r, PK_STDOUT, 0, "OUT\n", 4));
  PKT_ASSERT_OK(pk_reply_chunk(r, PK_STDERR, 0, "ERR\n", 4));
  return r;
}

static const char *const five[] = {"line 1", "line 2", "line 3", "line 4",
                                   "line 5"};

static pk_reply *r_lines5(void) { return must(pk_reply_lines(five, 5)); }

/* All five lines in one piece, as a pipe read usually brings them. */
static pk_reply *r_lines5_one_chunk(void) {
  const char *all = "line 1\nline 2\nline 3\nline 4\nline 5\n";
  pk_reply *r = must(pk_reply_timeline());
  PKT_ASSERT_OK(pk_reply_chunk(r, PK_STDOUT, 0, all, strlen(all)));
  return r;
}

static pk_reply *r_pending_ready(void) {
  pk_reply *r = must(pk_reply_pending());
  PKT_ASSERT_OK(pk_reply_stdout(r, "ready\n"));
  return r;
}

/* ignore-term: prints "ready", ignores TERM, so a timeout's grace ends in
 * SIGKILL. */
static pk_reply *r_pending_ready_ignore_term(void) {
  pk_reply *r = r_pending_ready();
  PKT_ASSERT_OK(pk_reply_ignore(r, PK_SIGTERM));
  return r;
}

/* handle-term: prints "ready", exits 42 on TERM. */
static pk_reply *r_pending_ready_trap_term(void) {
  pk_reply *r = r_pending_ready();
  PKT_ASSERT_OK(pk_reply_trap(r, PK_SIGTERM, 42));
  return r;
}

static int echo_stdin(const pk_cmd *cmd, const char *in, size_t len,
                      pk_reply *out, void *data) {
  (void)cmd, (void)data;
  return len > 0 ? pk_reply_chunk(out, PK_STDOUT, 0, in, len) : 0;
}

static pk_reply *r_echo_stdin(void) {
  return must(pk_reply_callback(echo_stdin, NULL));
}

/* The same echo as a dialog that expects each line of the stdin. */
static pk_reply *r_echo_dialog(void) {
  pk_reply *r = must(pk_reply_dialog());
  PKT_ASSERT_OK(pk_reply_dialog_step(r, "one", "one\n"));
  PKT_ASSERT_OK(pk_reply_dialog_step(r, "two", "two\n"));
  PKT_ASSERT_OK(pk_reply_dialog_step(r, "three", "three"));
  return r;
}

/* pk-fixture's spew pattern: 64-byte lines, 63 letters a..z a..z a..k
 * and a '\n'. */
#define SPEW_CHUNK (64 * 1024)

static void spew_pattern(char *buf, size_t len) {
  for (size_t i = 0; i < len; i++) {
    size_t col = i % 64;
    buf[i] = col == 63 ? '\n' : (char)('a' + col % 26);
  }
}

/* What `pk-fixture spew total 1|2|b` writes, chunk for chunk. */
static pk_reply *spew_reply(size_t total, bool out, bool err) {
  static char chunk[SPEW_CHUNK];
  spew_pattern(chunk, sizeof(chunk));
  pk_reply *r = must(pk_reply_timeline());
  size_t left_out = out ? total : 0, left_err = err ? total : 0;
  while (left_out > 0 || left_err > 0) {
    size_t n = left_out < SPEW_CHUNK ? left_out : SPEW_CHUNK;
    if (n > 0)
      PKT_ASSERT_OK(pk_reply_chunk(r, PK_STDOUT, 0, chunk, n));
    left_out -= n;
    n = left_err < SPEW_CHUNK ? left_err : SPEW_CHUNK;
    if (n > 0)
      PKT_ASSERT_OK(pk_reply_chunk(r, PK_STDERR, 0, chunk, n));
    left_err -= n;
  }
  return r;
}

#define MIB (1024u * 1024u)

static pk_reply *r_spew100(void) { return spew_reply(100, true, true); }
static pk_reply *r_spew_1m_out(void) { return spew_reply(MIB, true, false); }
static pk_reply *r_spew_1m_both(void) { return spew_reply(MIB, true, true); }
static pk_reply *r_spew_4m_out(void) {
  return spew_reply(4 * MIB, true, false);
}

/* ------------------------------------------------------------ scenarios */

#define EXITED(c)                                                              \
  { PK_OUTCOME_EXITED, (c), 0, 0 }
#define SIGNALLED(s)                                                           \
  { PK_OUTCOME_SIGNALLED, -1, (s), 0 }
#define TIMED_OUT(c, s)                                                        \
  { PK_OUTCOME_TIMED_OUT, (c), (s), PK_ETIMEOUT }
#define CANCELLED                                                              \
  { PK_OUTCOME_CANCELLED, -1, PK_SIGKILL, PK_ECANCELED }
#define TIMEOUT_VERBS (VERB(V_OUTPUT) | VERB(V_START))
/* The scenarios a cassette cannot replay, and why (no_replay). */
#define NO_REPLAY_CANCELLED                                                    \
  "a cancelled run is never recorded, by design: it says nothing about the "   \
  "command"
#define NO_REPLAY_SIGNAL                                                       \
  "a signal sent mid-run from a callback: the cassette records the end it "    \
  "caused, not the signal, and the replay answers a signal with the "          \
  "default disposition (the child's handler is not recorded)"

/* The scenarios a host without signals cannot run (posix_only). */
#define NO_SIGNALS_RAISE "the child kills itself with a signal"
#define NO_SIGNALS_SOFT                                                        \
  "the child handles SIGTERM: without signals pk has no soft stop, a "         \
  "deadline ends the tree at once and pk_proc_kill(SIGTERM) is "               \
  "PK_EUNSUPPORTED (test_win_runner)"

static const scenario scenarios[] = {
    {.name = "exit 0 with text",
     .args = {"echo", "hello", "world"},
     .verbs = ALL_VERBS,
     .want = EXITED(0),
     .variants = {{r_hello, NULL}}},
    {.name = "exit 0, no output",
     .args = {"exit", "0"},
     .verbs = ALL_VERBS,
     .want = EXITED(0),
     .variants = {{r_ok_empty, NULL}}},
    {.name = "exit 1, probe says no",
     .args = {"exit", "1"},
     .verbs = ALL_VERBS,
     .want = EXITED(1),
     .variants = {{r_exit1, NULL}}},
    {.name = "exit 3, stdout and stderr split",
     .args = {"outerr", "OUT", "ERR", "3"},
     .verbs = ALL_VERBS,
     .want = EXITED(3),
     .variants = {{r_split_fail, NULL}, {r_split_timeline, NULL}}},
    {.name = "exit 3 in the accepted set",
     .args = {"outerr", "OUT", "ERR", "3"},
     .accepted = {0, 3},
     .naccepted = 2,
     .verbs = ALL_VERBS,
     .want = EXITED(3),
     .variants = {{r_split_fail, NULL}, {r_split_timeline, NULL}}},
    {.name = "killed by SIGTERM",
     .args = {"raise", "15"},
     .verbs = ALL_VERBS,
     .want = SIGNALLED(PK_SIGTERM),
     .variants = {{r_sigterm, NULL}},
     .posix_only = NO_SIGNALS_RAISE},
    {.name = "killed by SIGKILL",
     .args = {"raise", "9"},
     .verbs = ALL_VERBS,
     .want = SIGNALLED(PK_SIGKILL),
     .variants = {{r_sigkill, NULL}},
     .posix_only = NO_SIGNALS_RAISE},
    {.name = "five lines through line callbacks",
     .args = {"lines", "5"},
     .verbs = ALL_VERBS,
     .want = EXITED(0),
     .variants = {{r_lines5, NULL}, {r_lines5_one_chunk, NULL}}},
    {.name = "final line without newline, both streams",
     .args = {"spew", "100", "b"},
     .verbs = ALL_VERBS,
     .want = EXITED(0),
     .variants = {{r_spew100, NULL}}},
    {.name = "stdin bytes echoed, no final newline",
     .args = {"cat"},
     .in = "one\ntwo\nthree",
     .in_len = 13,
     .verbs = ALL_VERBS,
     .want = EXITED(0),
     .variants = {{r_echo_stdin, NULL}, {r_echo_dialog, NULL}}},
    {.name = "stdin from a file echoed",
     .args = {"cat"},
     .in_file = PK_SOURCE_DIR "/.clang-format",
     .verbs = ALL_VERBS,
     .want = EXITED(0),
     .variants = {{r_echo_stdin, NULL}}},
    {.name = "binary stdin echoed (stdout is not text)",
     .args = {"cat"},
     .in = "a\0b\n",
     .in_len = 4,
     .verbs = ALL_VERBS,
     .want = EXITED(0),
     .variants = {{r_echo_stdin, NULL}}},
    {.name = "1 MiB stdout over a head cap",
     .args = {"spew", "1048576", "1"},
     .limit = PK_LIMIT_HEAD,
     .limit_bytes = 5000,
     .verbs = ALL_VERBS,
     .want = EXITED(0),
     .variants = {{r_spew_1m_out, NULL}}},
    {.name = "1 MiB on both streams over a tail cap",
     .args = {"spew", "1048576", "b"},
     .limit = PK_LIMIT_TAIL,
     .limit_bytes = 5000,
     .verbs = ALL_VERBS,
     .want = EXITED(0),
     .variants = {{r_spew_1m_both, NULL}}},
    /* The core SIGKILLs the run at the first byte over the cap. */
    {.name = "4 MiB stdout over a fail cap",
     .args = {"spew", "4194304", "1"},
     .limit = PK_LIMIT_FAIL,
     .limit_bytes = 5000,
     .verbs = VERB(V_OUTPUT) | VERB(V_CHECKED),
     .want = {PK_OUTCOME_SIGNALLED, -1, PK_SIGKILL, PK_ETOOBIG},
     .variants = {{r_spew_4m_out, NULL}},
     .racy = "total_bytes,total_lines",
     .racy_why = "how much the real child wrote before the kill landed (a "
                 "replay ends at the recorded chunk that crossed the cap)"},
    {.name = "not found on an empty PATH",
     .program = "pk-contract-no-such-program",
     .path_env = "",
     .verbs = ALL_VERBS,
     .want = {PK_OUTCOME_NONE, -1, 0, PK_ENOENT},
     .variants = {{r_not_found, NULL}}},
    {.name = "not executable",
     .program = PK_SOURCE_DIR "/.clang-format",
     .verbs = ALL_VERBS,
     .want = {PK_OUTCOME_NONE, -1, 0, PK_EACCES},
     .variants = {{r_eacces, NULL}},
     .posix_only = "Windows has no execute permission: a file that is not "
                   "a program is ENOEXEC (the next scenario)"},
    {.name = "not a program (exec says ENOEXEC)",
     .program = "@NOEXEC",
     .verbs = ALL_VERBS,
     .want = {PK_OUTCOME_NONE, -1, 0, PK_ENOEXEC},
     .variants = {{r_enoexec, NULL}}},
    /* A spawn error at exec would read ENOENT as not found: the failure
     * belongs to the chdir stage. */
    {.name = "working directory missing",
     .args = {"echo", "x"},
     .cwd = "/nonexistent/pk-contract",
     .verbs = ALL_VERBS,
     .want = {PK_OUTCOME_NONE, -1, 0, PK_EBADCWD},
     .variants = {{r_chdir_enoent, NULL}, {r_enoent, "rc,error,stage"}}},
    /* The player routes output by the command's stream mode. */
    {.name = "stdout to /dev/null",
     .args = {"outerr", "OUT", "ERR", "0"},
     .stdout_to = PK_OUT_NULL,
     .verbs = ALL_VERBS,
     .want = EXITED(0),
     .variants = {{r_split_timeline0, NULL}}},
    /* The output ends after the drain, flagged incomplete; a plain reply
     * is complete (the known difference that proves the check works). */
    {.name = "a grandchild holds the pipe past the drain",
     .args = {"hold-pipe", "30"},
     .drain_ms = 100,
     .verbs = TIMEOUT_VERBS,
     .want = EXITED(0),
     .variants = {{r_hi_incomplete, NULL}, {r_hi, "output_incomplete"}}},
    {.name = "timeout, the default TERM ends it",
     .args = {"sleep", "30"},
     .timeout_ms = 150,
     .grace_ms = 5000,
     .verbs = TIMEOUT_VERBS,
     .want = TIMED_OUT(-1, PK_SIGTERM),
     .variants = {{r_pending, NULL}, {r_timed_out, NULL}}},
    {.name = "timeout, soft signal SIGINT",
     .args = {"sleep", "30"},
     .timeout_ms = 150,
     .grace_ms = 5000,
     .soft_signal = PK_SIGINT,
     .verbs = TIMEOUT_VERBS,
     .want = TIMED_OUT(-1, PK_SIGINT),
     .variants = {{r_pending, NULL}, {r_timed_out, NULL}}},
    {.name = "timeout, grace 0 kills at once",
     .args = {"sleep", "30"},
     .timeout_ms = 150,
     .grace_ms = 0,
     .verbs = TIMEOUT_VERBS,
     .want = TIMED_OUT(-1, PK_SIGKILL),
     .variants = {{r_pending, NULL}, {r_timed_out, NULL}}},
    /* ignore-term and handle-term must handle TERM by the deadline: 1.5 s
     * leaves a loaded host time for that. */
    {.name = "timeout, TERM ignored, KILL after the grace",
     .args = {"ignore-term", "30"},
     .timeout_ms = 1500,
     .grace_ms = 100,
     .verbs = TIMEOUT_VERBS,
     .want = TIMED_OUT(-1, PK_SIGKILL),
     .variants = {{r_pending_ready_ignore_term, NULL}}},
    {.name = "timeout, the child exits 42 on TERM",
     .args = {"handle-term", "30"},
     .timeout_ms = 1500,
     .grace_ms = 5000,
     .verbs = TIMEOUT_VERBS,
     .want = TIMED_OUT(42, 0),
     .variants = {{r_pending_ready_trap_term, NULL}},
     .posix_only = NO_SIGNALS_SOFT},
    {.name = "pk_proc_kill(SIGKILL) right after pk_start",
     .args = {"sleep", "30"},
     .verbs = VERB(V_START),
     .act = ACT_KILL_AT_START,
     .want = CANCELLED,
     .variants = {{r_pending, NULL}},
     .no_replay = NO_REPLAY_CANCELLED},
    {.name = "pk_proc_kill(SIGKILL) from on_line",
     .args = {"ignore-term", "30"},
     .verbs = VERB(V_START),
     .act = ACT_KILL_ON_LINE,
     .want = CANCELLED,
     .variants = {{r_pending_ready, NULL}},
     .no_replay = NO_REPLAY_CANCELLED},
    {.name = "pk_proc_cancel from on_line",
     .args = {"ignore-term", "30"},
     .verbs = VERB(V_START),
     .act = ACT_CANCEL_ON_LINE,
     .want = CANCELLED,
     .variants = {{r_pending_ready, NULL}},
     .no_replay = NO_REPLAY_CANCELLED},
    {.name = "pk_proc_kill(SIGTERM) from on_line",
     .args = {"pidfile", "@PIDFILE", "30"},
     .verbs = VERB(V_START),
     .act = ACT_TERM_ON_LINE,
     .want = SIGNALLED(PK_SIGTERM),
     .variants = {{r_pending_ready, NULL}},
     .no_replay = NO_REPLAY_SIGNAL,
     .posix_only = NO_SIGNALS_SOFT},
    {.name = "pk_proc_kill(SIGTERM) from on_line, TERM handled",
     .args = {"handle-term", "30"},
     .verbs = VERB(V_START),
     .act = ACT_TERM_ON_LINE,
     .want = EXITED(42),
     .variants = {{r_pending_ready_trap_term, NULL}},
     .no_replay = NO_REPLAY_SIGNAL,
     .posix_only = NO_SIGNALS_SOFT},
};

#define NSCENARIOS (sizeof(scenarios) / sizeof(scenarios[0]))

/* Paths made per test process: the fixture's pid file, and an executable
 * file that is not a program (exec fails with ENOEXEC). */
static char pidfile[1100], noexec[1100];
/* pkt_real_runs(), asked once. */
static bool real_runs;

/* unlink / rmdir through libuv (every host); 0 or a libuv error. */
static int remove_file(const char *path) {
  uv_fs_t req;
  int rc = uv_fs_unlink(NULL, &req, path, NULL);
  uv_fs_req_cleanup(&req);
  return rc;
}

static int remove_dir(const char *path) {
  uv_fs_t req;
  int rc = uv_fs_rmdir(NULL, &req, path, NULL);
  uv_fs_req_cleanup(&req);
  return rc;
}

/* path with this text in it, mode 0755; 0 or a libuv error. */
static int write_executable(const char *path, const char *text) {
  int fd =
      pk__fd_open(path, UV_FS_O_WRONLY | UV_FS_O_CREAT | UV_FS_O_TRUNC, 0755);
  if (fd < 0)
    return fd;
  int rc = pk__fd_write_all(fd, text, strlen(text));
  int rc_close = pk__fd_close(fd);
  if (rc == 0)
    rc = rc_close;
  uv_fs_t req;
  int rc_mode = uv_fs_chmod(NULL, &req, path, 0755, NULL); /* not umask's */
  uv_fs_req_cleanup(&req);
  return rc != 0 ? rc : rc_mode;
}

static const char *expand(const char *s) {
  if (s == NULL)
    return PK_FIXTURE;
  if (strcmp(s, "@PIDFILE") == 0)
    return pidfile;
  return strcmp(s, "@NOEXEC") == 0 ? noexec : s;
}

/* The drain of every scenario that does not set its own. Not pk's 200 ms:
 * when the loop is starved past the drain after the child's exit, the
 * drain timer runs before the pending reads and the real run is flagged
 * output_incomplete although every writer is gone (seen for '1 MiB stdout
 * over a head cap' on a loaded host). The scenarios are about what a run
 * delivers, not about the drain, which has its own scenario and tests. */
#define CONTRACT_DRAIN_MS 20000

static pk_cmd *build_cmd(const scenario *sc) {
  pk_cmd *cmd;
  PKT_ASSERT_OK(pk_cmd_new(expand(sc->program), &cmd));
  for (size_t i = 0; i < 6 && sc->args[i] != NULL; i++)
    PKT_ASSERT_OK(pk_cmd_arg(cmd, expand(sc->args[i])));
  if (sc->in_file != NULL)
    PKT_ASSERT_OK(pk_cmd_set_stdin_file(cmd, sc->in_file));
  if (sc->cwd != NULL)
    PKT_ASSERT_OK(pk_cmd_set_cwd(cmd, sc->cwd));
  PKT_ASSERT_OK(pk_cmd_set_drain(cmd, sc->drain_ms > 0 ? sc->drain_ms
                                                       : CONTRACT_DRAIN_MS));
  if (sc->stdout_to != PK_OUT_CAPTURE)
    PKT_ASSERT_OK(pk_cmd_set_output(cmd, PK_STDOUT, sc->stdout_to, NULL));
  if (sc->path_env != NULL)
    PKT_ASSERT_OK(pk_cmd_env_set(cmd, "PATH", sc->path_env));
  if (sc->timeout_ms > 0)
    PKT_ASSERT_OK(
        pk_cmd_set_timeout(cmd, sc->timeout_ms, sc->grace_ms, sc->soft_signal));
  if (sc->limit != PK_LIMIT_NONE)
    PKT_ASSERT_OK(pk_cmd_set_capture_limit(cmd, sc->limit, sc->limit_bytes));
  if (sc->in != NULL)
    PKT_ASSERT_OK(pk_cmd_set_stdin_bytes(cmd, sc->in, sc->in_len));
  if (sc->naccepted > 0)
    PKT_ASSERT_OK(pk_cmd_set_accepted(cmd, sc->accepted, sc->naccepted));
  return cmd;
}

/* ---------------------------------------------------------- observing */

typedef struct bytes {
  char *data;
  size_t len, cap;
} bytes;

/* Called from loop callbacks, where a cmocka failure must not longjmp. */
static void bytes_add(bytes *b, const void *p, size_t n) {
  if (b->len + n + 1 > b->cap) {
    size_t cap = b->cap ? b->cap : 256;
    while (cap < b->len + n + 1)
      cap *= 2;
    char *d = realloc(b->data, cap);
    if (d == NULL)
      abort();
    b->data = d;
    b->cap = cap;
  }
  if (n > 0)
    memcpy(b->data + b->len, p, n);
  b->len += n;
  b->data[b->len] = '\0';
}

/* Everything one verb call showed its caller. */
typedef struct obs {
  const scenario *sc;
  int rc;
  pk_result *res;
  int code;   /* pk_exit_code's *code */
  bool yes;   /* pk_probe's *yes */
  char *text; /* pk_run's *stdout_text */
  /* pk_start only */
  bytes lines[3]; /* each on_line, then '\n' */
  size_t nlines[3];
  bytes output[3]; /* on_output chunks, concatenated */
  int exits;       /* on_exit calls */
  int late;        /* output callbacks after on_exit */
  int early;       /* callbacks from inside pk_start / pk_proc_* */
  bool in_call, acted, done_after_act;
  int act_rc;
} obs;

static void obs_release(obs *o) {
  pk_result_free(o->res);
  pk_free(o->text);
  for (int s = 0; s < 3; s++) {
    free(o->lines[s].data);
    free(o->output[s].data);
  }
  memset(o, 0, sizeof(*o));
}

static void act(obs *o, pk_proc *p) {
  o->acted = true;
  o->in_call = true;
  switch (o->sc->act) {
  case ACT_KILL_AT_START:
  case ACT_KILL_ON_LINE:
    o->act_rc = pk_proc_kill(p, PK_SIGKILL);
    break;
  case ACT_TERM_ON_LINE:
    o->act_rc = pk_proc_kill(p, PK_SIGTERM);
    break;
  case ACT_CANCEL_ON_LINE:
    o->act_rc = pk_proc_cancel(p);
    break;
  case ACT_NONE:
    break;
  }
  o->in_call = false;
  o->done_after_act = pk_proc_done(p);
}

static void note_callback(obs *o) {
  o->early += o->in_call;
  o->late += o->exits > 0;
}

static void on_line(pk_proc *p, pk_stream s, const char *line, size_t len,
                    void *data) {
  obs *o = data;
  note_callback(o);
  bytes_add(&o->lines[s], line, len);
  bytes_add(&o->lines[s], "\n", 1);
  o->nlines[s]++;
  if (!o->acted && o->sc->act >= ACT_KILL_ON_LINE)
    act(o, p);
}

static void on_output(pk_proc *p, pk_stream s, const char *buf, size_t len,
                      void *data) {
  (void)p;
  obs *o = data;
  note_callback(o);
  bytes_add(&o->output[s], buf, len);
}

static void on_exit_cb(pk_proc *p, void *data) {
  obs *o = data;
  o->early += o->in_call;
  o->exits++;
  if (!pk_proc_done(p) || pk_proc_result(p) == NULL)
    o->early += 100; /* on_exit before the result exists: never right */
}

static void run_start(pk_runner *r, const pk_cmd *cmd, obs *o) {
  pk_start_opts so = {.on_line = on_line,
                      .on_output = on_output,
                      .on_exit = on_exit_cb,
                      .data = o};
  pk_proc *p = NULL;
  o->in_call = true;
  PKT_ASSERT_OK(pk_start(r, cmd, &so, &p));
  o->in_call = false;
  if (o->sc->act == ACT_KILL_AT_START)
    act(o, p);
  o->rc = pk_proc_wait(p);
  o->res = pk_proc_take_result(p);
  pk_proc_free(p);
}

static void run_verb(pk_runner *r, const pk_cmd *cmd, verb v, obs *o) {
  switch (v) {
  case V_OUTPUT:
    o->rc = pk_output(r, cmd, &o->res);
    break;
  case V_CHECKED:
    o->rc = pk_checked(r, cmd, &o->res);
    break;
  case V_RUN:
    o->rc = pk_run(r, cmd, &o->text, &o->res);
    break;
  case V_EXIT_CODE:
    o->rc = pk_exit_code(r, cmd, &o->code, &o->res);
    break;
  case V_PROBE:
    o->rc = pk_probe(r, cmd, &o->yes, &o->res);
    break;
  case V_START:
  case V_COUNT:
    run_start(r, cmd, o);
    break;
  }
}

/* ---------------------------------------------------------- comparing */

typedef struct cmp {
  const scenario *sc;
  const variant *var;
  const char *label; /* "reply #2", "replay": the double's side */
  bool replay;       /* the double is a cassette replaying the real run */
  verb v;
  const char *mech;
  double scale;
  int unexpected; /* differences outside the variant's gap */
  int known;      /* differences inside it */
  char *seen;     /* ",field" of each known gap already printed */
  size_t seen_size;
} cmp;

/* Is field (up to a '[') one of the comma-separated names in list? A
 * name may end in "@S": it then holds at time scale S only. */
static bool listed(const char *list, const char *field, double scale) {
  size_t flen = strcspn(field, "[");
  for (const char *p = list; p != NULL && *p != '\0';) {
    size_t n = strcspn(p, ","), name = strcspn(p, ",@");
    bool at_scale = name == n || strtod(p + name + 1, NULL) == scale;
    if (name == flen && strncmp(p, field, name) == 0 && at_scale)
      return true;
    p += n + (p[n] == ',');
  }
  return false;
}

/* Does any name of list hold at this scale? */
static bool holds_at(const char *list, double scale) {
  for (const char *p = list; p != NULL && *p != '\0';) {
    size_t n = strcspn(p, ","), name = strcspn(p, ",@");
    if (name == n || strtod(p + name + 1, NULL) == scale)
      return true;
    p += n + (p[n] == ',');
  }
  return false;
}

static void differ(cmp *c, const char *field, const char *real,
                   const char *fake) {
  if (listed(c->sc->racy, field, c->scale))
    return;
  bool known = listed(c->var->gap, field, c->scale);
  if (known) {
    c->known++;
    if (listed(c->seen, field, c->scale))
      return; /* one line per known gap of a scenario is enough */
    size_t len = strlen(c->seen);
    snprintf(c->seen + len, c->seen_size - len, ",%.*s",
             (int)strcspn(field, "["), field);
  } else {
    c->unexpected++;
  }
  print_message("%s: '%s' %s, %s, %s, scale %g: %s: real %s, %s %s\n",
                known ? "known gap" : "CONTRACT BROKEN", c->sc->name, c->label,
                verb_names[c->v], c->mech, c->scale, field, real,
                c->replay ? "replayed" : "scripted", fake);
}

static void cmp_ll(cmp *c, const char *field, long long a, long long b) {
  char x[32], y[32];
  if (a == b)
    return;
  snprintf(x, sizeof(x), "%lld", a);
  snprintf(y, sizeof(y), "%lld", b);
  differ(c, field, x, y);
}

static void cmp_err(cmp *c, const char *field, int a, int b) {
  char x[64], y[64];
  if (a == b)
    return;
  snprintf(x, sizeof(x), "%d (%s)", a, pk_err_name(a));
  snprintf(y, sizeof(y), "%d (%s)", b, pk_err_name(b));
  differ(c, field, x, y);
}

static void cmp_str(cmp *c, const char *field, const char *a, const char *b) {
  char x[300], y[300];
  if (a == b || (a != NULL && b != NULL && strcmp(a, b) == 0))
    return;
  snprintf(x, sizeof(x), a ? "\"%.280s\"" : "%s", a ? a : "NULL");
  snprintf(y, sizeof(y), b ? "\"%.280s\"" : "%s", b ? b : "NULL");
  differ(c, field, x, y);
}

/* "N bytes, from offset K: 'excerpt'" (non-printables as '.'). */
static void describe(char *out, size_t size, const char *d, size_t len,
                     size_t at) {
  char ex[33];
  size_t n = 0;
  for (size_t i = at; i < len && n < 32; i++, n++)
    ex[n] = d[i] >= 32 && d[i] < 127 ? d[i] : '.';
  ex[n] = '\0';
  snprintf(out, size, "%zu bytes, from offset %zu: '%s'", len, at, ex);
}

static void cmp_mem(cmp *c, const char *field, const char *a, size_t alen,
                    const char *b, size_t blen) {
  size_t at = 0;
  while (at < alen && at < blen && a[at] == b[at])
    at++;
  if (at == alen && at == blen)
    return;
  char x[128], y[128];
  describe(x, sizeof(x), a, alen, at);
  describe(y, sizeof(y), b, blen, at);
  differ(c, field, x, y);
}

/* The replay's part of check_excluded(). */
static void check_replayed(cmp *c, const obs *real, const obs *fake) {
  const pk_result *a = real->res, *b = fake->res;
  if (pk_result_outcome(b) != PK_OUTCOME_NONE)
    cmp_str(c, "spawn_method", "cassette", pk_result_spawn_method(b));
  double ra = pk_result_duration_s(a), rb = pk_result_duration_s(b);
  if (rb > ra + 1e-6 || rb < ra - 0.010) {
    char x[32], y[32];
    snprintf(x, sizeof(x), "%.6f s", ra);
    snprintf(y, sizeof(y), "%.6f s", rb);
    differ(c, "duration", x, y);
  }
  cmp_ll(c, "escapees", 0, pk_result_escapees(b));
  cmp_str(c, "errmsg", pk_result_errmsg(a), pk_result_errmsg(b));
}

/* The only observables the contract leaves out, and why:
 * - pid: a real child has one; a double has none and says so (0).
 * - duration: wall-clock time; a double at scale 0 takes none.
 * - mechanism: the containment backend the real child ran in; a double
 *   contains nothing.
 * - spawn_method: how the real runner spawned ("clone3"...); a double
 *   reports "scripted".
 * - the errmsg of a spawn error: the runner writes it (the real one lists
 *   the PATH it searched), so only its "program: " opening is contract.
 *   Every other errmsg is written by the core from the command and is
 *   compared in full.
 * - on_output chunk boundaries: pipe reads against reply pieces; the bytes
 *   they carry, concatenated per stream, are compared.
 * - the order of callbacks across stdout and stderr: two pipes read as
 *   each becomes ready, and no fixture mode orders its writes across them.
 *   The order within each stream, and "everything before on_exit", are
 *   compared.
 * A cassette replays what the real run recorded, so for a replay:
 * - spawn_method is "cassette";
 * - duration is the recorded one, cut to the cassette's 10 ms steps: at
 *   most the real run's and less than 10 ms below it;
 * - escapees: what the host's containment found, not what the command
 *   did; the format has no field for it and a replay reports 0;
 * - the errmsg of a spawn error is recorded as the real runner wrote it
 *   and compared in full.
 * What each side must still look like is checked here. */
static void check_excluded(cmp *c, const obs *real, const obs *fake) {
  assert_int_equal(pk_result_pid(fake->res), 0);
  if (pk_result_outcome(real->res) != PK_OUTCOME_NONE)
    assert_true(pk_result_pid(real->res) > 0);
  if (c->replay) {
    check_replayed(c, real, fake);
  } else if (pk_is_spawn_error(pk_result_error(real->res))) {
    const char *prog = expand(c->sc->program);
    const char *a = pk_result_errmsg(real->res);
    const char *b = pk_result_errmsg(fake->res);
    size_t n = strlen(prog);
    bool ok_a = strncmp(a, prog, n) == 0 && strncmp(a + n, ": ", 2) == 0;
    bool ok_b = strncmp(b, prog, n) == 0 && strncmp(b + n, ": ", 2) == 0;
    if (!ok_a || !ok_b)
      cmp_str(c, "errmsg", a, b);
  } else {
    cmp_str(c, "errmsg", pk_result_errmsg(real->res),
            pk_result_errmsg(fake->res));
  }
}

static void cmp_result(cmp *c, const pk_result *a, const pk_result *b) {
  if (pk_result_outcome(a) != pk_result_outcome(b))
    differ(c, "outcome", pk_outcome_name(pk_result_outcome(a)),
           pk_outcome_name(pk_result_outcome(b)));
  cmp_ll(c, "code", pk_result_code(a), pk_result_code(b));
  cmp_ll(c, "signal", pk_result_signal(a), pk_result_signal(b));
  cmp_err(c, "error", pk_result_error(a), pk_result_error(b));
  cmp_str(c, "stage", pk_result_stage(a), pk_result_stage(b));
  cmp_ll(c, "os_errno", pk_result_os_errno(a), pk_result_os_errno(b));
  static const char *const names[3][3] = {
      {"", "", ""},
      {"stdout", "total_bytes[stdout]", "total_lines[stdout]"},
      {"stderr", "total_bytes[stderr]", "total_lines[stderr]"}};
  for (int s = PK_STDOUT; s <= PK_STDERR; s++) {
    size_t alen, blen;
    const char *ad = s == PK_STDOUT ? pk_result_stdout(a, &alen)
                                    : pk_result_stderr(a, &alen);
    const char *bd = s == PK_STDOUT ? pk_result_stdout(b, &blen)
                                    : pk_result_stderr(b, &blen);
    cmp_mem(c, names[s][0], ad, alen, bd, blen);
    cmp_ll(c, names[s][1], (long long)pk_result_total_bytes(a, (pk_stream)s),
           (long long)pk_result_total_bytes(b, (pk_stream)s));
    cmp_ll(c, names[s][2], (long long)pk_result_total_lines(a, (pk_stream)s),
           (long long)pk_result_total_lines(b, (pk_stream)s));
  }
  cmp_ll(c, "truncated", pk_result_truncated(a), pk_result_truncated(b));
  cmp_ll(c, "output_incomplete", pk_result_output_incomplete(a),
         pk_result_output_incomplete(b));
  if (!c->replay)
    cmp_ll(c, "escapees", pk_result_escapees(a), pk_result_escapees(b));
}

static void cmp_callbacks(cmp *c, const obs *a, const obs *b) {
  static const char *const names[3][3] = {
      {"", "", ""},
      {"lines[stdout]", "nlines[stdout]", "output[stdout]"},
      {"lines[stderr]", "nlines[stderr]", "output[stderr]"}};
  for (int s = PK_STDOUT; s <= PK_STDERR; s++) {
    cmp_mem(c, names[s][0], a->lines[s].data, a->lines[s].len, b->lines[s].data,
            b->lines[s].len);
    cmp_ll(c, names[s][1], (long long)a->nlines[s], (long long)b->nlines[s]);
    cmp_mem(c, names[s][2], a->output[s].data, a->output[s].len,
            b->output[s].data, b->output[s].len);
  }
  cmp_ll(c, "on_exit calls", a->exits, b->exits);
  cmp_ll(c, "callbacks after on_exit", a->late, b->late);
  cmp_ll(c, "callbacks inside a call", a->early, b->early);
  cmp_err(c, "action rc", a->act_rc, b->act_rc);
  cmp_ll(c, "done right after the action", a->done_after_act,
         b->done_after_act);
}

static void cmp_obs(cmp *c, const obs *real, const obs *fake) {
  cmp_err(c, "rc", real->rc, fake->rc);
  if (c->v == V_EXIT_CODE)
    cmp_ll(c, "*code", real->code, fake->code);
  if (c->v == V_PROBE)
    cmp_ll(c, "*yes", real->yes, fake->yes);
  if (c->v == V_RUN)
    cmp_str(c, "*stdout_text", real->text, fake->text);
  assert_non_null(real->res);
  assert_non_null(fake->res);
  check_excluded(c, real, fake);
  cmp_result(c, real->res, fake->res);
  if (c->v == V_START)
    cmp_callbacks(c, real, fake);
}

/* What the scenario wants on this host: where pk ends the run (a kill, a
 * deadline, a fail cap), a host without signals reports exit code 1
 * (Windows: TerminateJobObject(job, 1)), never a signal. */
static want host_want(const scenario *sc) {
  want w = sc->want;
  if (!pkt_host_signals() && w.sig != 0) {
    if (w.outcome == PK_OUTCOME_SIGNALLED)
      w.outcome = PK_OUTCOME_EXITED;
    w.code = 1;
    w.sig = 0;
  }
  return w;
}

/* A scenario that means nothing here is skipped, saying why. */
#define SKIP_UNLESS_MEANINGFUL(sc)                                             \
  do {                                                                         \
    if ((sc)->posix_only != NULL && !pkt_host_signals()) {                     \
      print_message("not run on this host: %s\n", (sc)->posix_only);           \
      skip();                                                                  \
    }                                                                          \
  } while (0)

/* One observable of a run against the scenario's want (fail_msg names
 * the side and the verb). */
static void want_eq(const scenario *sc, verb v, const char *who,
                    const char *field, long long got, long long wanted) {
  if (got != wanted)
    fail_msg("'%s' %s: %s: %s is %lld, the scenario wants %lld", sc->name,
             verb_names[v], who, field, got, wanted);
}

/* A run did what the scenario means, whatever the other side does: the
 * real run, so a misbehaving fixture cannot make both sides agree on the
 * wrong thing, and each scripted reply, which is all a host without a real
 * runner can check. who names the side ("the real run", "reply #2"); the
 * fields of gap (a reply's known difference, NULL for the real run) are
 * left out. */
static void check_want(const scenario *sc, verb v, const obs *o,
                       const char *who, const char *gap, double scale) {
  const pk_result *r = o->res;
  assert_non_null(r);
  want w = host_want(sc);
  if ((!listed(gap, "outcome", scale) && pk_result_outcome(r) != w.outcome) ||
      (!listed(gap, "code", scale) && pk_result_code(r) != w.code) ||
      (!listed(gap, "signal", scale) && pk_result_signal(r) != w.sig))
    fail_msg("'%s' %s: %s ended %s, code %d, signal %d (%s); "
             "the scenario wants %s, code %d, signal %d",
             sc->name, verb_names[v], who,
             pk_outcome_name(pk_result_outcome(r)), pk_result_code(r),
             pk_result_signal(r), pk_result_errmsg(r),
             pk_outcome_name(w.outcome), w.code, w.sig);
  if ((v == V_OUTPUT || v == V_START) && !listed(gap, "rc", scale))
    want_eq(sc, v, who, "rc", o->rc, w.err);
  if (v == V_START) {
    if (!listed(gap, "on_exit calls", scale))
      want_eq(sc, v, who, "on_exit calls", o->exits, 1);
    if (!listed(gap, "callbacks inside a call", scale))
      want_eq(sc, v, who, "callbacks inside a call", o->early, 0);
    if (!listed(gap, "callbacks after on_exit", scale))
      want_eq(sc, v, who, "callbacks after on_exit", o->late, 0);
    want_eq(sc, v, who, "acted", o->acted, sc->act != ACT_NONE);
  }
}

static void check_real(const scenario *sc, verb v, const obs *o) {
  check_want(sc, v, o, "the real run", NULL, 0);
}

/* ------------------------------------------------------------- running */

typedef struct run_state {
  const scenario *sc;
  double scale;
  bool all_mechanisms;
} run_state;

/* The double scripted with one variant: one rule for the command. */
static pk_runner *scripted_for(const pk_cmd *cmd, const variant *var,
                               double scale) {
  pk_runner *r;
  PKT_ASSERT_OK(pk_scripted_new(&r));
  PKT_ASSERT_OK(pk_scripted_set_time_scale(r, scale));
  const char *argv[8];
  size_t n = pk_cmd_argc(cmd) + 1;
  assert_true(n <= 8);
  argv[0] = pk_cmd_program(cmd);
  for (size_t i = 1; i < n; i++)
    argv[i] = pk_cmd_argv(cmd, i - 1);
  PKT_ASSERT_OK(pk_script_prefix(r, argv, n, var->reply()));
  return r;
}

static const char *const reply_labels[3] = {"reply #1", "reply #2", "reply #3"};

static size_t nvariants(const scenario *sc) {
  size_t n = 0;
  while (n < 3 && sc->variants[n].reply != NULL)
    n++;
  return n;
}

/* Run every verb of the scenario on the double, once per variant; each
 * run must end as the scenario says (its gap aside). */
static void observe_fakes(const run_state *st, const pk_cmd *cmd,
                          obs fakes[3][V_COUNT]) {
  const scenario *sc = st->sc;
  for (size_t i = 0; i < nvariants(sc); i++) {
    pk_runner *r = scripted_for(cmd, &sc->variants[i], st->scale);
    size_t calls = 0;
    for (int v = 0; v < V_COUNT; v++) {
      if (!(sc->verbs & VERB(v)))
        continue;
      fakes[i][v].sc = sc;
      run_verb(r, cmd, (verb)v, &fakes[i][v]);
      check_want(sc, (verb)v, &fakes[i][v], reply_labels[i],
                 sc->variants[i].gap, st->scale);
      calls++;
    }
    assert_int_equal(pk_scripted_calls(r), calls);
    pk_runner_free(r);
  }
}

/* Run every verb on the real runner with mechanism m and compare. */
static void compare_mechanism(const run_state *st, const pk_cmd *cmd,
                              pk_mechanism m, obs fakes[3][V_COUNT],
                              cmp *totals, char seen[3][256]) {
  const scenario *sc = st->sc;
  pk_runner *real = pkt_runner(m, 0);
  for (int v = 0; v < V_COUNT; v++) {
    if (!(sc->verbs & VERB(v)))
      continue;
    obs o = {.sc = sc};
    run_verb(real, cmd, (verb)v, &o);
    check_real(sc, (verb)v, &o);
    for (size_t i = 0; i < nvariants(sc); i++) {
      cmp c = {.sc = sc,
               .var = &sc->variants[i],
               .label = reply_labels[i],
               .v = (verb)v,
               .mech = pk_mechanism_name(m),
               .scale = st->scale,
               .seen = seen[i],
               .seen_size = sizeof(seen[i])};
      cmp_obs(&c, &o, &fakes[i][v]);
      totals[i].unexpected += c.unexpected;
      totals[i].known += c.known;
    }
    obs_release(&o);
  }
  pk_runner_free(real);
}

static void run_scenario(void **state) {
  const run_state *st = *state;
  const scenario *sc = st->sc;
  SKIP_UNLESS_MEANINGFUL(sc);
  pkt_snapshot snap;
  pkt_snapshot_take(&snap);
  pk_cmd *cmd = build_cmd(sc);
  obs fakes[3][V_COUNT];
  memset(fakes, 0, sizeof(fakes));
  observe_fakes(st, cmd, fakes);
  cmp totals[3];
  memset(totals, 0, sizeof(totals));
  char seen[3][256] = {"", "", ""};
  bool real = real_runs;
  if (real) {
    pk_mechanism mechs[4];
    int nm = st->all_mechanisms ? pkt_mechanisms(mechs) : 1;
    if (!st->all_mechanisms)
      mechs[0] = pk_mechanism_best();
    for (int k = 0; k < nm; k++)
      compare_mechanism(st, cmd, mechs[k], fakes, totals, seen);
  }
  for (size_t i = 0; i < 3; i++)
    for (int v = 0; v < V_COUNT; v++)
      obs_release(&fakes[i][v]);
  pk_cmd_free(cmd);
  remove_file(pidfile);
  pkt_snapshot_check(&snap);
  if (!real) {
    /* What ran: the double, scripted with each reply, through every verb
     * of the scenario, each ending as the scenario wants. */
    print_message("scripted side ran (%zu reply(s), checked against the "
                  "scenario's expected end); real side not run\n",
                  nvariants(sc));
    PKT_SKIP_UNLESS_REAL();
  }
  for (size_t i = 0; i < nvariants(sc); i++) {
    if (totals[i].unexpected > 0)
      fail_msg("'%s' reply #%zu: %d difference(s) from the real runner (see "
               "above)",
               sc->name, i + 1, totals[i].unexpected);
    if (holds_at(sc->variants[i].gap, st->scale) && totals[i].known == 0)
      fail_msg("'%s' reply #%zu: the known gap (%s) is gone: remove it from "
               "the table",
               sc->name, i + 1, sc->variants[i].gap);
  }
}

/* ------------------------------------------------------ cassette replay */

static pk_cassette *cassette_open(const char *path,
                                  const pk_cassette_opts *opts) {
  char err[512] = "";
  pk_cassette *c = NULL;
  int rc = pk_cassette_open(path, opts, &c, err, sizeof(err));
  if (rc != 0)
    fail_msg("pk_cassette_open(%s) -> %s: %s", path, pk_err_name(rc), err);
  return c;
}

static void cassette_close(pk_cassette *c) {
  char err[4096] = "";
  int rc = pk_cassette_close(c, err, sizeof(err));
  if (rc != 0)
    fail_msg("pk_cassette_close -> %s: %s", pk_err_name(rc), err);
}

/* Run every verb of the scenario on the real runner (the best mechanism)
 * through a cassette that records them all into path, one entry each. */
static void record_real(const scenario *sc, const pk_cmd *cmd, const char *path,
                        obs real[V_COUNT]) {
  pk_runner *inner = pkt_runner(pk_mechanism_best(), 0);
  pk_cassette_opts opts = {.mode = PK_RECORD_ALL, .inner = inner};
  pk_cassette *c = cassette_open(path, &opts);
  for (int v = 0; v < V_COUNT; v++) {
    if (!(sc->verbs & VERB(v)))
      continue;
    real[v].sc = sc;
    run_verb(pk_cassette_runner(c), cmd, (verb)v, &real[v]);
    check_real(sc, (verb)v, &real[v]);
  }
  cassette_close(c);
  pk_runner_free(inner);
}

/* Replay every verb from path, nothing real behind it, and compare each
 * with the run it recorded. Strict: each verb plays its own entry, once. */
static void compare_replay(const scenario *sc, const pk_cmd *cmd,
                           const char *path, double speed, obs real[V_COUNT],
                           cmp *total, char *seen, size_t seen_size) {
  static const variant none = {NULL, NULL};
  pk_cassette_opts opts = {
      .mode = PK_RECORD_NONE, .strict = true, .speed = speed};
  pk_cassette *c = cassette_open(path, &opts);
  for (int v = 0; v < V_COUNT; v++) {
    if (!(sc->verbs & VERB(v)))
      continue;
    obs o = {.sc = sc};
    run_verb(pk_cassette_runner(c), cmd, (verb)v, &o);
    cmp k = {.sc = sc,
             .var = &none,
             .label = "replay",
             .replay = true,
             .v = (verb)v,
             .mech = pk_mechanism_name(pk_mechanism_best()),
             .scale = speed > 0 ? 1 / speed : 0,
             .seen = seen,
             .seen_size = seen_size};
    cmp_obs(&k, &real[v], &o);
    total->unexpected += k.unexpected;
    obs_release(&o);
  }
  cassette_close(c);
}

/* Scenarios whose replay depends on the recorded pace (a deadline, a
 * drain) are replayed at speed 1 too. */
static bool paced(const scenario *sc) {
  return sc->timeout_ms > 0 || sc->drain_ms > 0;
}

static void run_cassette(void **state) {
  const run_state *st = *state;
  const scenario *sc = st->sc;
  SKIP_UNLESS_MEANINGFUL(sc);
  if (sc->no_replay != NULL) {
    print_message("not replayed: %s\n", sc->no_replay);
    skip();
  }
  /* The cassette is recorded from the real runner: without one there is
   * nothing to replay. */
  PKT_SKIP_UNLESS_REAL();
  pkt_snapshot snap;
  pkt_snapshot_take(&snap);
  char dir[1100], path[1200];
  snprintf(dir, sizeof(dir), "%s/pk-contract-cassette-XXXXXX", pkt_tmpdir());
  pkt_mkdtemp(dir);
  snprintf(path, sizeof(path), "%s/c.yaml", dir);
  pk_cmd *cmd = build_cmd(sc);
  obs real[V_COUNT];
  memset(real, 0, sizeof(real));
  record_real(sc, cmd, path, real);
  cmp total = {0};
  char seen[256] = "";
  compare_replay(sc, cmd, path, 0, real, &total, seen, sizeof(seen));
  if (paced(sc))
    compare_replay(sc, cmd, path, 1, real, &total, seen, sizeof(seen));
  for (int v = 0; v < V_COUNT; v++)
    obs_release(&real[v]);
  pk_cmd_free(cmd);
  remove_file(pidfile);
  /* The cassette is the only file: rmdir fails on anything left over. */
  assert_int_equal(remove_file(path), 0);
  assert_int_equal(remove_dir(dir), 0);
  pkt_snapshot_check(&snap);
  if (total.unexpected > 0)
    fail_msg("'%s': %d difference(s) between the real run and its replay "
             "(see above)",
             sc->name, total.unexpected);
}

/* The table's own sanity: every scenario runs something and is scripted. */
static void table_is_complete(void **state) {
  (void)state;
  for (size_t i = 0; i < NSCENARIOS; i++) {
    const scenario *sc = &scenarios[i];
    assert_true(sc->verbs != 0);
    assert_true(nvariants(sc) > 0);
    assert_true((sc->act == ACT_NONE) || sc->verbs == VERB(V_START));
    assert_true((sc->racy == NULL) == (sc->racy_why == NULL));
    /* A cancelled run is never recorded: nothing to replay. */
    if (sc->want.outcome == PK_OUTCOME_CANCELLED)
      assert_non_null(sc->no_replay);
  }
}

static struct CMUnitTest scale0_tests[NSCENARIOS + 1];
static struct CMUnitTest scale1_tests[NSCENARIOS];
static struct CMUnitTest cassette_tests[NSCENARIOS];
static run_state states[3][NSCENARIOS];
static char names[3][NSCENARIOS][128];

/* scale 0 (instant double) against every mechanism; scale 1 (the double
 * in real time) against the best one. */
static void fill_group(struct CMUnitTest *tests, int g, double scale,
                       bool all) {
  for (size_t i = 0; i < NSCENARIOS; i++) {
    states[g][i] = (run_state){&scenarios[i], scale, all};
    snprintf(names[g][i], sizeof(names[g][i]), "scale %g: %s", scale,
             scenarios[i].name);
    tests[i] = (struct CMUnitTest){names[g][i], run_scenario, NULL, NULL,
                                   &states[g][i]};
  }
}

/* Recorded from the real runner, then replayed at speed 0 (and 1 where
 * paced() says so). */
static void fill_cassette_group(void) {
  for (size_t i = 0; i < NSCENARIOS; i++) {
    states[2][i] = (run_state){&scenarios[i], 0, false};
    snprintf(names[2][i], sizeof(names[2][i]), "cassette: %s",
             scenarios[i].name);
    cassette_tests[i] = (struct CMUnitTest){names[2][i], run_cassette, NULL,
                                            NULL, &states[2][i]};
  }
}

int main(void) {
  /* The cassettes' modes are the suite's: no override from outside. */
  pkt_unsetenv("PK_RECORD_MODE");
  pkt_unsetenv("PK_RECORD_ONLY");
  pkt_unsetenv("PK_CASSETTE_STRICT");
  const char *tmp = pkt_tmpdir();
  int pid = (int)uv_os_getpid();
  snprintf(pidfile, sizeof(pidfile), "%s/pk-contract-%d.pid", tmp, pid);
  snprintf(noexec, sizeof(noexec), "%s/pk-contract-%d.noexec", tmp, pid);
  if (write_executable(noexec, "not a program\n") != 0)
    return 1;
  real_runs = pkt_real_runs();
  if (!real_runs)
    print_message(
        "contract: no real runner on this host yet: each scenario runs its "
        "scripted side only (every reply through every verb, checked against "
        "the end the scenario wants) and is then reported skipped; the "
        "comparison with the real runner and the cassette replay of a real "
        "recording are skipped\n");
  fill_group(scale0_tests, 0, 0, true);
  scale0_tests[NSCENARIOS] =
      (struct CMUnitTest)cmocka_unit_test(table_is_complete);
  fill_group(scale1_tests, 1, 1, false);
  fill_cassette_group();
  int failed = cmocka_run_group_tests_name("contract, time scale 0",
                                           scale0_tests, pkt_setup, NULL);
  failed += cmocka_run_group_tests_name("contract, time scale 1", scale1_tests,
                                        pkt_setup, NULL);
  failed += cmocka_run_group_tests_name("contract, cassette replay",
                                        cassette_tests, pkt_setup, NULL);
  remove_file(noexec);
  return failed;
}
