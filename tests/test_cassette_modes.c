/* Cassettes beyond the basics of test_cassette.c: every record mode and
 * its environment overrides, the `all` session rule across processes,
 * several processes and threads recording into one file, staleness,
 * path normalization, environment hygiene (C3), the matching options,
 * pass-through programs, cancelled and capped runs, paced replay, the
 * golden fixtures, discard and repeated saves. The inner runner is the
 * scripted one: nothing here spawns a real process (the forks are this
 * test's own children; Windows has no fork, so there the other
 * "processes" are other recording sessions in this one). */
#include "harness.h"

#include "internal.h"
#include "model.h"

#include <pk/cassette.h>
#include <pk/fakes.h>

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <uv.h>

#if !defined(_WIN32)
#include <sys/wait.h>
#include <unistd.h>
#endif

#define EMPTY_SHA                                                              \
  "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"

typedef struct fx {
  char dir[1024];
  char path[1100];
  pk_runner *inner;
} fx;

static void clear_env(void) {
  pkt_unsetenv("PK_RECORD_MODE");
  pkt_unsetenv("PK_RECORD_ONLY");
  pkt_unsetenv("PK_CASSETTE_STRICT");
  pkt_unsetenv("CI");
}

static int setup(void **state) {
  fx *f = test_calloc(1, sizeof(*f));
  snprintf(f->dir, sizeof(f->dir), "%s/pk-casmodes-XXXXXX", pkt_tmpdir());
  pkt_mkdtemp(f->dir);
  snprintf(f->path, sizeof(f->path), "%s/c.yaml", f->dir);
  PKT_ASSERT_OK(pk_scripted_new(&f->inner));
  clear_env();
  *state = f;
  return 0;
}

/* Remove a file that may not be there. */
static void remove_file(const char *path) {
  uv_fs_t req;
  int rc = uv_fs_unlink(NULL, &req, path, NULL);
  uv_fs_req_cleanup(&req);
  if (rc != 0 && rc != UV_ENOENT)
    fail_msg("unlink %s: %s", path, uv_strerror(rc));
}

static int teardown(void **state) {
  fx *f = *state;
  pk_runner_free(f->inner);
  pkt_rm_rf(f->dir);
  clear_env();
  test_free(f);
  return 0;
}

static pk_cassette *open_opts(const char *path, const pk_cassette_opts *o) {
  pk_cassette *c = NULL;
  char err[2048];
  int rc = pk_cassette_open(path, o, &c, err, sizeof(err));
  if (rc != 0)
    fail_msg("open %s: %s: %s", path, pk_err_name(rc), err);
  return c;
}

static pk_cassette *open_mode(fx *f, pk_record_mode mode) {
  pk_cassette_opts o = {.mode = mode, .inner = f->inner};
  return open_opts(f->path, &o);
}

static void close_ok(pk_cassette *c) {
  char err[4096];
  int rc = pk_cassette_close(c, err, sizeof(err));
  if (rc != 0)
    fail_msg("close: %s: %s", pk_err_name(rc), err);
}

static pk_cmd *cmd_of(const char *prog, const char *a1, const char *a2) {
  pk_cmd *cmd;
  PKT_ASSERT_OK(pk_cmd_new(prog, &cmd));
  if (a1 != NULL)
    PKT_ASSERT_OK(pk_cmd_arg(cmd, a1));
  if (a2 != NULL)
    PKT_ASSERT_OK(pk_cmd_arg(cmd, a2));
  return cmd;
}

/* Run cmd (borrowed) and return the result (never NULL). */
static pk_result *run_cmd(pk_cassette *c, const pk_cmd *cmd) {
  pk_result *res = NULL;
  pk_output(pk_cassette_runner(c), cmd, &res);
  assert_non_null(res);
  return res;
}

static pk_result *run2(pk_cassette *c, const char *prog, const char *a1,
                       const char *a2) {
  pk_cmd *cmd = cmd_of(prog, a1, a2);
  pk_result *res = run_cmd(c, cmd);
  pk_cmd_free(cmd);
  return res;
}

static void assert_stdout(const pk_result *r, const char *want) {
  size_t n;
  const char *s = pk_result_stdout(r, &n);
  if (n != strlen(want) || memcmp(s, want, n) != 0)
    fail_msg("stdout: want \"%s\", got \"%.*s\" (error %s: %s)", want, (int)n,
             s ? s : "", pk_err_name(pk_result_error(r)),
             pk_result_errmsg(r) ? pk_result_errmsg(r) : "");
}

/* Run and check stdout; frees the result. */
static void expect(pk_cassette *c, const char *prog, const char *a1,
                   const char *want) {
  pk_result *r = run2(c, prog, a1, NULL);
  assert_int_equal(pk_result_error(r), 0);
  assert_stdout(r, want);
  pk_result_free(r);
}

static void expect_miss(pk_cassette *c, const char *prog, const char *a1) {
  pk_result *r = run2(c, prog, a1, NULL);
  assert_int_equal(pk_result_error(r), PK_ECASSETTE_MISS);
  pk_result_free(r);
}

static char *slurp(const char *path) {
  FILE *fp = fopen(path, "rb");
  assert_non_null(fp);
  static char buf[1 << 18];
  size_t n = fread(buf, 1, sizeof(buf) - 1, fp);
  fclose(fp);
  buf[n] = '\0';
  return buf;
}

static void write_text(const char *path, const char *text) {
  FILE *fp = fopen(path, "wb");
  assert_non_null(fp);
  assert_int_equal(fwrite(text, 1, strlen(text), fp), strlen(text));
  assert_int_equal(fclose(fp), 0);
}

static pkc_file *load(const char *path) {
  pkc_file *file = NULL;
  pkc_error err;
  memset(&err, 0, sizeof(err));
  int rc = pkc_load(path, &file, &err);
  if (rc != 0)
    fail_msg("load %s: %s: %s", path, pk_err_name(rc), err.msg);
  return file;
}

/* An entry's stdout, joined (static buffer). */
static const char *entry_stdout(const pkc_entry *e) {
  static char buf[8192];
  size_t n = 0;
  for (size_t i = 0; i < e->nevents; i++)
    if (e->events[i].kind == PKC_EV_STDOUT &&
        n + e->events[i].len < sizeof(buf)) {
      memcpy(buf + n, e->events[i].data, e->events[i].len);
      n += e->events[i].len;
    }
  buf[n] = '\0';
  return buf;
}

/* The file's entries as "prog:stdout" lines, for order checks. */
static void assert_entries(const char *path, const char *const *want,
                           size_t n) {
  pkc_file *file = load(path);
  if (file->nentries != n)
    fail_msg("%s: %zu entries, want %zu", path, file->nentries, n);
  for (size_t i = 0; i < n; i++) {
    char got[256];
    snprintf(got, sizeof(got), "%.60s:%.180s", file->entries[i].program,
             entry_stdout(&file->entries[i]));
    if (strcmp(got, want[i]) != 0)
      fail_msg("entry %zu: want \"%s\", got \"%s\"", i, want[i], got);
  }
  pkc_file_free(file);
}

/* Record a ("a1\n") and b ("b1\n") with mode once. */
static void seed_ab(fx *f) {
  PKT_ASSERT_OK(pk_script_program(f->inner, "a", pk_reply_ok("a1\n")));
  PKT_ASSERT_OK(pk_script_then(f->inner, pk_reply_ok("a2\n")));
  PKT_ASSERT_OK(pk_script_program(f->inner, "b", pk_reply_ok("b1\n")));
  PKT_ASSERT_OK(pk_script_program(f->inner, "c", pk_reply_ok("c1\n")));
  PKT_ASSERT_OK(pk_script_program(f->inner, "d", pk_reply_ok("d1\n")));
  pk_cassette *c = open_mode(f, PK_RECORD_ONCE);
  expect(c, "a", NULL, "a1\n");
  expect(c, "b", NULL, "b1\n");
  close_ok(c);
  assert_int_equal(pk_scripted_calls(f->inner), 2);
}

/* ------------------------------------------------------------ modes */

/* new_episodes: a hit replays, a miss records and is appended after the
 * file's entries, which keep their order. */
static void mode_new_episodes(void **state) {
  fx *f = *state;
  seed_ab(f);
  pk_cassette *c = open_mode(f, PK_RECORD_NEW_EPISODES);
  assert_int_equal(pk_cassette_mode(c), PK_RECORD_NEW_EPISODES);
  expect(c, "b", NULL, "b1\n");
  assert_int_equal(pk_scripted_calls(f->inner), 2); /* replayed */
  expect(c, "c", NULL, "c1\n");
  assert_int_equal(pk_scripted_calls(f->inner), 3); /* recorded */
  expect(c, "a", NULL, "a1\n");
  assert_int_equal(pk_cassette_miss_count(c), 0);
  close_ok(c);
  const char *want[] = {"a:a1\n", "b:b1\n", "c:c1\n"};
  assert_entries(f->path, want, 3);
}

/* all: everything runs and records; what the file held is replaced. */
static void mode_all(void **state) {
  fx *f = *state;
  seed_ab(f);
  pk_cassette *c = open_mode(f, PK_RECORD_ALL);
  expect(c, "a", NULL, "a2\n"); /* ran again: the second reply */
  expect(c, "d", NULL, "d1\n");
  assert_int_equal(pk_scripted_calls(f->inner), 4);
  close_ok(c);
  const char *want[] = {"a:a2\n", "d:d1\n"};
  assert_entries(f->path, want, 2);
}

/* once on an existing file replays; a miss records nothing. */
static void mode_once_existing(void **state) {
  fx *f = *state;
  seed_ab(f);
  pk_cassette *c = open_mode(f, PK_RECORD_ONCE);
  expect(c, "a", NULL, "a1\n");
  expect_miss(c, "c", NULL);
  assert_int_equal(pk_scripted_calls(f->inner), 2);
  char err[4096];
  assert_int_equal(pk_cassette_close(c, err, sizeof(err)), PK_ECASSETTE_MISS);
  assert_non_null(strstr(err, "c: no entry"));
  const char *want[] = {"a:a1\n", "b:b1\n"};
  assert_entries(f->path, want, 2);
}

/* DEFAULT is once, or none when CI is set (then a missing file is an
 * error that says why). */
static void mode_default_and_ci(void **state) {
  fx *f = *state;
  pk_cassette *c = open_mode(f, PK_RECORD_DEFAULT);
  assert_int_equal(pk_cassette_mode(c), PK_RECORD_ONCE);
  close_ok(c);
  assert_false(pkt_stat(f->path, NULL)); /* nothing recorded */

  pkt_setenv("CI", "true");
  pk_cassette_opts o = {.mode = PK_RECORD_DEFAULT, .inner = f->inner};
  char err[2048];
  assert_int_equal(pk_cassette_open(f->path, &o, &c, err, sizeof(err)),
                   PK_ECASSETTE_NOT_FOUND);
  assert_null(c);
  assert_non_null(strstr(err, "CI is set"));
  seed_ab(f); /* mode once given explicitly: records under CI too */
  c = open_opts(f->path, &o);
  assert_int_equal(pk_cassette_mode(c), PK_RECORD_NONE);
  expect(c, "a", NULL, "a1\n");
  close_ok(c);
  pkt_setenv("CI", ""); /* empty counts as unset */
  c = open_opts(f->path, &o);
  assert_int_equal(pk_cassette_mode(c), PK_RECORD_ONCE);
  close_ok(c);
  pkt_unsetenv("CI");
}

/* PK_RECORD_MODE overrides the code; a bad value is an error naming it. */
static void mode_env_override(void **state) {
  fx *f = *state;
  seed_ab(f);
  pkt_setenv("PK_RECORD_MODE", "all");
  pk_cassette *c = open_mode(f, PK_RECORD_NONE);
  assert_int_equal(pk_cassette_mode(c), PK_RECORD_ALL);
  close_ok(c);
  pkt_setenv("PK_RECORD_MODE", "none");
  c = open_mode(f, PK_RECORD_ALL);
  assert_int_equal(pk_cassette_mode(c), PK_RECORD_NONE);
  close_ok(c);
  const char *bad[] = {"bogus-mode", "default", "NONE"};
  for (size_t i = 0; i < 3; i++) {
    pkt_setenv("PK_RECORD_MODE", bad[i]);
    pk_cassette_opts o = {.mode = PK_RECORD_NONE};
    char err[2048];
    assert_int_equal(pk_cassette_open(f->path, &o, &c, err, sizeof(err)),
                     PK_EINVAL);
    assert_null(c);
    char want[64];
    snprintf(want, sizeof(want), "PK_RECORD_MODE=%s", bad[i]);
    assert_non_null(strstr(err, want));
  }
  pkt_unsetenv("PK_RECORD_MODE");
}

/* PK_RECORD_ONLY / opts.record_only: the matching cassette records, the
 * others become none. */
static void mode_record_only(void **state) {
  fx *f = *state;
  seed_ab(f);
  const char *match[] = {"c", "c.yaml", "*/c.yaml", "[bc]"};
  for (size_t i = 0; i < 4; i++) {
    pkt_setenv("PK_RECORD_ONLY", match[i]);
    pk_cassette *c = open_mode(f, PK_RECORD_NEW_EPISODES);
    assert_int_equal(pk_cassette_mode(c), PK_RECORD_NEW_EPISODES);
    close_ok(c);
  }
  pkt_setenv("PK_RECORD_ONLY", "other*");
  pk_cassette *c = open_mode(f, PK_RECORD_NEW_EPISODES);
  assert_int_equal(pk_cassette_mode(c), PK_RECORD_NONE);
  expect(c, "a", NULL, "a1\n");
  expect_miss(c, "c", NULL);
  assert_int_equal(pk_scripted_calls(f->inner), 2);
  char err[4096];
  assert_int_equal(pk_cassette_close(c, err, sizeof(err)), PK_ECASSETTE_MISS);
  pkt_unsetenv("PK_RECORD_ONLY");

  pk_cassette_opts o = {.mode = PK_RECORD_ALL,
                        .inner = f->inner,
                        .record_only = "nothing-like-it"};
  c = open_opts(f->path, &o);
  assert_int_equal(pk_cassette_mode(c), PK_RECORD_NONE);
  close_ok(c);
  pkt_setenv("PK_RECORD_ONLY", "c"); /* the environment wins */
  c = open_opts(f->path, &o);
  assert_int_equal(pk_cassette_mode(c), PK_RECORD_ALL);
  pk_cassette_discard(c);
  close_ok(c);
  pkt_unsetenv("PK_RECORD_ONLY");
}

static const char frozen_yaml[] =
    "version: 1\n"
    "frozen: true\n"
    "entries:\n"
    "- program: \"hello\"\n"
    "  args: []\n"
    "  stdin: {sha256: \"" EMPTY_SHA "\", bytes: 0}\n"
    "  exit: {code: 0}\n"
    "  duration_ms: 1\n"
    "  output: {stdout_bytes: 3, stdout_lines: 1, stderr_bytes: 0, "
    "stderr_lines: 0}\n"
    "  events:\n"
    "  - {t: 0, stdout: \"hi\\n\"}\n";

/* A frozen cassette refuses a recording mode; none replays it. A missing
 * file in none is not found. */
static void mode_frozen_and_missing(void **state) {
  fx *f = *state;
  pk_cassette_opts o = {.mode = PK_RECORD_NONE, .inner = f->inner};
  pk_cassette *c = NULL;
  char err[2048];
  assert_int_equal(pk_cassette_open(f->path, &o, &c, err, sizeof(err)),
                   PK_ECASSETTE_NOT_FOUND);
  assert_null(c);
  assert_non_null(strstr(err, f->path));

  write_text(f->path, frozen_yaml);
  pk_record_mode rec[] = {PK_RECORD_NEW_EPISODES, PK_RECORD_ALL};
  for (size_t i = 0; i < 2; i++) {
    o.mode = rec[i];
    assert_int_equal(pk_cassette_open(f->path, &o, &c, err, sizeof(err)),
                     PK_ECASSETTE_FROZEN);
    assert_null(c);
    assert_non_null(strstr(err, "frozen"));
  }
  o.mode = PK_RECORD_ONCE; /* the file exists: replay only, allowed */
  c = open_opts(f->path, &o);
  expect(c, "hello", NULL, "hi\n");
  close_ok(c);
  o.mode = PK_RECORD_NONE;
  c = open_opts(f->path, &o);
  expect(c, "hello", NULL, "hi\n");
  close_ok(c);
  assert_string_equal(slurp(f->path), frozen_yaml); /* untouched */
}

/* --------------------------------------------------------- processes */

/* One recording session, as another process runs it: record each
 * program of progs (reply: "<prog>\n") into path with mode new_episodes
 * and close. The result says what failed (cmocka's asserts must not run
 * in a forked child or another thread). */
static int record_session(const char *path, const char *const *progs,
                          size_t n) {
  pk_runner *inner;
  if (pk_scripted_new(&inner) != 0)
    return 11;
  for (size_t i = 0; i < n; i++) {
    char out[64];
    snprintf(out, sizeof(out), "%s\n", progs[i]);
    if (pk_script_program(inner, progs[i], pk_reply_ok(out)) != 0)
      return 12;
  }
  pk_cassette_opts o = {.mode = PK_RECORD_NEW_EPISODES, .inner = inner};
  pk_cassette *c;
  if (pk_cassette_open(path, &o, &c, NULL, 0) != 0)
    return 13;
  int bad = 0;
  for (size_t i = 0; i < n; i++) {
    pk_cmd *cmd;
    pk_result *r = NULL;
    if (pk_cmd_new(progs[i], &cmd) != 0)
      return 14;
    if (pk_output(pk_cassette_runner(c), cmd, &r) != 0 ||
        pk_result_code(r) != 0)
      bad = 15;
    pk_result_free(r);
    pk_cmd_free(cmd);
  }
  if (pk_cassette_close(c, NULL, 0) != 0)
    return 16;
  pk_runner_free(inner);
  return bad;
}

/* Recorder k's ten programs: "p<k>-<j>". */
static void recorder_progs(int k, char names[10][16], const char *progs[10]) {
  for (int j = 0; j < 10; j++) {
    snprintf(names[j], sizeof(names[j]), "p%d-%d", k, j);
    progs[j] = names[j];
  }
}

#if !defined(_WIN32)
/* In a forked child: wait for the gate (a pipe the parent closes; -1:
 * none), then record. */
static int child_record(const char *path, const char *const *progs, size_t n,
                        int gate) {
  char b;
  if (gate >= 0 && read(gate, &b, 1) < 0)
    return 10;
  return record_session(path, progs, n);
}

static void wait_child(pid_t pid) {
  int st;
  pid_t got;
  while ((got = waitpid(pid, &st, 0)) < 0 && errno == EINTR)
    ;
  assert_int_equal(got, pid);
  if (!WIFEXITED(st) || WEXITSTATUS(st) != 0)
    fail_msg("child %d: %s %d", (int)pid, WIFEXITED(st) ? "exit" : "signal",
             WIFEXITED(st) ? WEXITSTATUS(st) : WTERMSIG(st));
}
#else
/* Windows has no fork: a recorder is a thread with its own session
 * (cassette, inner runner, lock handle, save), started at a barrier. */
typedef struct recorder {
  uv_thread_t th;
  uv_barrier_t *start;
  const char *path;
  int k;
  int rc;
} recorder;

static void recorder_main(void *arg) {
  recorder *r = arg;
  char names[10][16];
  const char *progs[10];
  recorder_progs(r->k, names, progs);
  uv_barrier_wait(r->start);
  r->rc = record_session(r->path, progs, 10);
}
#endif

/* The `all` session rule across processes: A opens under all; B (another
 * process) records X into the same file and saves; A records Y and
 * saves. The file holds X and Y, and none of what it held when A opened
 * (docs/cassette-format.md, "Recording sessions and merging"). */
static void all_session_across_processes(void **state) {
  fx *f = *state;
  seed_ab(f);
  pk_cassette *a = open_mode(f, PK_RECORD_ALL);
  const char *x[] = {"x"};
#if defined(_WIN32)
  print_message("note: no fork on Windows: B is another session of this "
                "process\n");
  assert_int_equal(record_session(f->path, x, 1), 0);
#else
  fflush(NULL);
  pid_t pid = fork();
  assert_true(pid >= 0);
  if (pid == 0)
    _exit(child_record(f->path, x, 1, -1));
  wait_child(pid);
#endif
  const char *mid[] = {"a:a1\n", "b:b1\n", "x:x\n"};
  assert_entries(f->path, mid, 3);
  PKT_ASSERT_OK(pk_script_program(f->inner, "y", pk_reply_ok("y\n")));
  expect(a, "y", NULL, "y\n");
  close_ok(a);
  const char *want[] = {"x:x\n", "y:y\n"};
  assert_entries(f->path, want, 2);
}

/* Four processes record ten commands each into one file at the same
 * time: all forty are there, ids unique. A few rounds. */
static void processes_record_concurrently(void **state) {
  fx *f = *state;
#if defined(_WIN32)
  print_message("note: no fork on Windows: the four recorders are threads, "
                "each with its own session\n");
#endif
  for (int round = 0; round < 4; round++) {
    remove_file(f->path);
#if defined(_WIN32)
    uv_barrier_t start;
    assert_int_equal(uv_barrier_init(&start, 4), 0);
    recorder rec[4];
    for (int k = 0; k < 4; k++) {
      rec[k] = (recorder){.start = &start, .path = f->path, .k = k};
      assert_int_equal(uv_thread_create(&rec[k].th, recorder_main, &rec[k]), 0);
    }
    for (int k = 0; k < 4; k++) {
      assert_int_equal(uv_thread_join(&rec[k].th), 0);
      if (rec[k].rc != 0)
        fail_msg("recorder %d: %d", k, rec[k].rc);
    }
    uv_barrier_destroy(&start);
#else
    int gate[2];
    assert_int_equal(pipe(gate), 0);
    pid_t pids[4];
    fflush(NULL);
    for (int k = 0; k < 4; k++) {
      pids[k] = fork();
      assert_true(pids[k] >= 0);
      if (pids[k] == 0) {
        close(gate[1]);
        char names[10][16];
        const char *progs[10];
        recorder_progs(k, names, progs);
        _exit(child_record(f->path, progs, 10, gate[0]));
      }
    }
    close(gate[0]);
    close(gate[1]); /* all children start now */
    for (int k = 0; k < 4; k++)
      wait_child(pids[k]);
#endif
    pkc_file *file = load(f->path);
    assert_int_equal(file->nentries, 40);
    bool seen[4][10] = {{false}};
    for (size_t i = 0; i < file->nentries; i++) {
      int k, j;
      assert_int_equal(sscanf(file->entries[i].program, "p%d-%d", &k, &j), 2);
      assert_false(seen[k][j]);
      seen[k][j] = true;
      for (size_t m = 0; m < i; m++)
        assert_string_not_equal(file->entries[m].id, file->entries[i].id);
    }
    pkc_file_free(file);
  }
  /* No temporary file left behind by the savers (dot files are not
   * theirs: Windows keeps its lock file, .pk-cassettes.lock). */
  uv_fs_t req;
  int n = uv_fs_scandir(NULL, &req, f->dir, 0, NULL);
  assert_true(n >= 0);
  int seen_files = 0;
  uv_dirent_t de;
  while (uv_fs_scandir_next(&req, &de) != UV_EOF)
    if (de.name[0] != '.') {
      if (strcmp(de.name, "c.yaml") != 0)
        fail_msg("left in %s: %s", f->dir, de.name);
      seen_files++;
    }
  uv_fs_req_cleanup(&req);
  assert_int_equal(seen_files, 1);
}

/* ----------------------------------------------------------- threads */

static int echo_reply(const pk_cmd *cmd, const char *in, size_t inlen,
                      pk_reply *out, void *data) {
  (void)in, (void)inlen, (void)data;
  char buf[128];
  snprintf(buf, sizeof(buf), "%s:%s\n", pk_cmd_program(cmd),
           pk_cmd_argc(cmd) > 0 ? pk_cmd_argv(cmd, 0) : "");
  return pk_reply_chunk(out, PK_STDOUT, 0, buf, strlen(buf));
}

typedef struct worker {
  pthread_t th;
  pk_cassette *c;
  int id;
  int bad;
} worker;

static void *worker_main(void *arg) {
  worker *w = arg;
  for (int j = 0; j < 25; j++) {
    char prog[16], a[16], want[64];
    snprintf(prog, sizeof(prog), "t%d", w->id);
    snprintf(a, sizeof(a), "%d", j);
    snprintf(want, sizeof(want), "%s:%s\n", prog, a);
    pk_cmd *cmd;
    pk_result *r = NULL;
    if (pk_cmd_new(prog, &cmd) != 0 || pk_cmd_arg(cmd, a) != 0) {
      w->bad++;
      continue;
    }
    size_t n = 0;
    const char *s = NULL;
    if (pk_output(pk_cassette_runner(w->c), cmd, &r) == 0)
      s = pk_result_stdout(r, &n);
    if (s == NULL || n != strlen(want) || memcmp(s, want, n) != 0)
      w->bad++;
    pk_result_free(r);
    pk_cmd_free(cmd);
  }
  return NULL;
}

static void run_workers(pk_cassette *c) {
  worker w[8];
  for (int i = 0; i < 8; i++) {
    w[i] = (worker){.c = c, .id = i};
    assert_int_equal(pthread_create(&w[i].th, NULL, worker_main, &w[i]), 0);
  }
  for (int i = 0; i < 8; i++) {
    assert_int_equal(pthread_join(w[i].th, NULL), 0);
    assert_int_equal(w[i].bad, 0);
  }
}

/* Eight threads record 25 runs each through one cassette runner; then
 * eight threads replay them at once. */
static void threads_record_and_replay(void **state) {
  fx *f = *state;
  const char *pat[] = {"t*"};
  PKT_ASSERT_OK(
      pk_script_glob(f->inner, pat, 1, pk_reply_callback(echo_reply, NULL)));
  pk_cassette *c = open_mode(f, PK_RECORD_NEW_EPISODES);
  run_workers(c);
  close_ok(c);
  assert_int_equal(pk_scripted_calls(f->inner), 200);
  pkc_file *file = load(f->path);
  assert_int_equal(file->nentries, 200);
  pkc_file_free(file);

  pk_cassette_opts o = {.mode = PK_RECORD_NONE, .strict = true};
  c = open_opts(f->path, &o);
  run_workers(c);
  close_ok(c); /* strict: each entry played exactly once */
  assert_int_equal(pk_scripted_calls(f->inner), 200);
}

/* --------------------------------------------------------- staleness */

static const char stale_yaml[] =
    "version: 1\n"
    "entries:\n"
    "- recorded_at: \"2001-02-03T04:05:06.000Z\"\n"
    "  program: \"old\"\n"
    "  args: []\n"
    "  stdin: {sha256: \"" EMPTY_SHA "\", bytes: 0}\n"
    "  exit: {code: 0}\n"
    "  duration_ms: 1\n"
    "  output: {stdout_bytes: 4, stdout_lines: 1, stderr_bytes: 0, "
    "stderr_lines: 0}\n"
    "  events:\n"
    "  - {t: 0, stdout: \"old\\n\"}\n";

static void staleness(void **state) {
  fx *f = *state;
  write_text(f->path, stale_yaml);
  pk_cassette_opts o = {
      .mode = PK_RECORD_NONE, .max_age_s = 3600, .stale = PK_STALE_FAIL};
  pk_cassette *c = open_opts(f->path, &o);
  pk_result *r = run2(c, "old", NULL, NULL);
  assert_int_equal(pk_result_error(r), PK_ECASSETTE_STALE);
  assert_non_null(strstr(pk_result_errmsg(r), "2001-02-03T04:05:06"));
  pk_result_free(r);
  close_ok(c);

  o.stale = PK_STALE_WARN;
  c = open_opts(f->path, &o);
  expect(c, "old", NULL, "old\n");
  assert_int_equal(pk_cassette_stale_count(c), 1);
  close_ok(c);

  o.stale = PK_STALE_IGNORE; /* and a young enough entry is not stale */
  c = open_opts(f->path, &o);
  expect(c, "old", NULL, "old\n");
  assert_int_equal(pk_cassette_stale_count(c), 0);
  close_ok(c);

  PKT_ASSERT_OK(pk_script_program(f->inner, "old", pk_reply_ok("new\n")));
  o.mode = PK_RECORD_NEW_EPISODES;
  o.stale = PK_STALE_RERECORD;
  o.inner = f->inner;
  c = open_opts(f->path, &o);
  expect(c, "old", NULL, "new\n");
  assert_int_equal(pk_scripted_calls(f->inner), 1);
  close_ok(c);
  const char *text = slurp(f->path);
  assert_null(strstr(text, "2001-02-03"));
  const char *want[] = {"old:new\n"};
  assert_entries(f->path, want, 1);

  /* The fresh entry is not stale: it replays under FAIL. */
  o.mode = PK_RECORD_NONE;
  o.stale = PK_STALE_FAIL;
  c = open_opts(f->path, &o);
  expect(c, "old", NULL, "new\n");
  close_ok(c);
}

/* ------------------------------------------------------ normalization */

typedef struct machine {
  char root[1024], home[1024], work[1024];
} machine;

/* dir as the system spells it, the way a working directory reads back
 * ('\\' separators on Windows). Leaves the process in dir. */
static void spelled_by_system(char *dir, size_t len) {
  int rc = uv_chdir(dir);
  if (rc != 0)
    fail_msg("chdir %s: %s", dir, uv_strerror(rc));
  char buf[1024];
  assert_non_null(pk__cwd(buf, sizeof(buf)));
  assert_true(strlen(buf) < len);
  snprintf(dir, len, "%s", buf);
}

static void machine_make(machine *m) {
  snprintf(m->root, sizeof(m->root), "%s/pk-casnorm-XXXXXX", pkt_tmpdir());
  pkt_mkdtemp(m->root);
  spelled_by_system(m->root, sizeof(m->root));
  snprintf(m->home, sizeof(m->home), "%.900s/home-dir", m->root);
  snprintf(m->work, sizeof(m->work), "%.900s/work-dir", m->root);
  pkt_mkdir(m->home);
  pkt_mkdir(m->work);
  spelled_by_system(m->home, sizeof(m->home));
  spelled_by_system(m->work, sizeof(m->work));
}

static void machine_enter(const machine *m) {
  pkt_setenv(PKT_HOME_VAR, m->home);
  pkt_setenv(PKT_TMP_VAR, m->root);
  assert_int_equal(uv_chdir(m->work), 0);
}

/* s as a double-quoted YAML scalar writes it ('\\' doubled). */
static const char *yaml_escaped(const char *s) {
  static char buf[2048];
  size_t n = 0;
  for (; *s != '\0' && n + 2 < sizeof(buf); s++) {
    if (*s == '\\')
      buf[n++] = '\\';
    buf[n++] = *s;
  }
  buf[n] = '\0';
  return buf;
}

static int tool_paths(const pk_cmd *cmd, const char *in, size_t inlen,
                      pk_reply *out, void *data) {
  (void)cmd, (void)in, (void)inlen, (void)data;
  char cwd[1024], buf[4096];
  assert_non_null(pk__cwd(cwd, sizeof(cwd)));
  snprintf(buf, sizeof(buf), "home=%s/.cfg cwd=%s/f.txt tmp=%s/x\n",
           getenv(PKT_HOME_VAR), cwd, getenv(PKT_TMP_VAR));
  return pk_reply_chunk(out, PK_STDOUT, 0, buf, strlen(buf));
}

/* Paths are written as {{pk.home}}, {{pk.tmp}}, {{pk.cwd}} and come back
 * as the replaying machine's; matching on cwd works across machines. */
static void normalize_paths(void **state) {
  fx *f = *state;
  char oldcwd[1024];
  assert_non_null(pk__cwd(oldcwd, sizeof(oldcwd)));
  char *oldhome =
      getenv(PKT_HOME_VAR) ? pk__strdup(getenv(PKT_HOME_VAR)) : NULL;
  char *oldtmp = getenv(PKT_TMP_VAR) ? pk__strdup(getenv(PKT_TMP_VAR)) : NULL;
  machine m1, m2;
  machine_make(&m1);
  machine_make(&m2);

  PKT_ASSERT_OK(
      pk_script_program(f->inner, "tool", pk_reply_callback(tool_paths, NULL)));
  machine_enter(&m1);
  pk_cassette_opts o = {.mode = PK_RECORD_ONCE,
                        .inner = f->inner,
                        .normalize_paths = true,
                        .match = PK_MATCH_CWD};
  pk_cassette *c = open_opts(f->path, &o);
  pk_cmd *cmd = cmd_of("tool", NULL, NULL);
  char arg[1100];
  snprintf(arg, sizeof(arg), "%s/in.txt", m1.work);
  PKT_ASSERT_OK(pk_cmd_arg(cmd, arg));
  pk_result *r = run_cmd(c, cmd);
  char want[4096];
  snprintf(want, sizeof(want), "home=%s/.cfg cwd=%s/f.txt tmp=%s/x\n", m1.home,
           m1.work, m1.root);
  assert_stdout(r, want);
  pk_result_free(r);
  pk_cmd_free(cmd);
  close_ok(c);
  const char *text = slurp(f->path);
  assert_null(strstr(text, m1.root));
  assert_null(strstr(text, yaml_escaped(m1.root)));
  assert_non_null(strstr(text, "\"{{pk.cwd}}/in.txt\""));
  assert_non_null(strstr(text, "cwd: \"{{pk.cwd}}\""));
  assert_non_null(strstr(text, "home={{pk.home}}/.cfg cwd={{pk.cwd}}/f.txt "
                               "tmp={{pk.tmp}}/x"));

  machine_enter(&m2);
  o.mode = PK_RECORD_NONE;
  c = open_opts(f->path, &o);
  snprintf(arg, sizeof(arg), "%s/in.txt", m2.work);
  cmd = cmd_of("tool", arg, NULL);
  r = run_cmd(c, cmd);
  snprintf(want, sizeof(want), "home=%s/.cfg cwd=%s/f.txt tmp=%s/x\n", m2.home,
           m2.work, m2.root);
  assert_int_equal(pk_result_error(r), 0);
  assert_stdout(r, want);
  pk_result_free(r);
  /* Another cwd is another key under PK_MATCH_CWD. */
  PKT_ASSERT_OK(pk_cmd_set_cwd(cmd, m2.home));
  r = run_cmd(c, cmd);
  assert_int_equal(pk_result_error(r), PK_ECASSETTE_MISS);
  assert_non_null(strstr(pk_result_errmsg(r), "cwd: recorded"));
  pk_result_free(r);
  pk_cmd_free(cmd);
  char err[4096];
  assert_int_equal(pk_cassette_close(c, err, sizeof(err)), PK_ECASSETTE_MISS);

  assert_int_equal(uv_chdir(oldcwd), 0);
  if (oldhome != NULL)
    pkt_setenv(PKT_HOME_VAR, oldhome);
  else
    pkt_unsetenv(PKT_HOME_VAR);
  if (oldtmp != NULL)
    pkt_setenv(PKT_TMP_VAR, oldtmp);
  else
    pkt_unsetenv(PKT_TMP_VAR);
  pk__free(oldhome);
  pk__free(oldtmp);
  pkt_rm_rf(m1.root);
  pkt_rm_rf(m2.root);
}

/* --------------------------------------------------------------- env */

/* C3: env values are never written; a secret-looking inherited variable
 * is redacted from the output; only the names the command touched (and
 * match_env) are listed. */
static void env_values_never_written(void **state) {
  fx *f = *state;
  pkt_setenv("MY_API_TOKEN", "canary-inherited-9c1f2a7b3d");
  pkt_setenv("PKT_PLAIN", "canary-plain-inherited-55e1");
  PKT_ASSERT_OK(
      pk_script_program(f->inner, "envtool",
                        pk_reply_ok("using canary-inherited-9c1f2a7b3d and "
                                    "canary-set-password-7a8b9c\n")));
  const char *menv[] = {"PKT_MATCHED"};
  pkt_setenv("PKT_MATCHED", "canary-matched-value-3e4f");
  pk_cassette_opts o = {.mode = PK_RECORD_ONCE,
                        .inner = f->inner,
                        .match_env = menv,
                        .nmatch_env = 1};
  pk_cassette *c = open_opts(f->path, &o);
  pk_cmd *cmd = cmd_of("envtool", NULL, NULL);
  PKT_ASSERT_OK(pk_cmd_env_set(cmd, "PKT_SET", "canary-set-value-1d2e3f"));
  PKT_ASSERT_OK(
      pk_cmd_env_set(cmd, "DB_PASSWORD", "canary-set-password-7a8b9c"));
  PKT_ASSERT_OK(pk_cmd_env_remove(cmd, "PKT_REMOVED"));
  pk_result *r = run_cmd(c, cmd);
  assert_stdout(r, "using canary-inherited-9c1f2a7b3d and "
                   "canary-set-password-7a8b9c\n");
  pk_result_free(r);
  close_ok(c);

  const char *text = slurp(f->path);
  assert_null(strstr(text, "canary"));
  assert_null(strstr(text, "Y2FuYXJ5")); /* "canary" in base64 */
  assert_non_null(strstr(text, "{{MY_API_TOKEN}}"));
  assert_non_null(strstr(text, "{{DB_PASSWORD}}"));
  pkc_file *file = load(f->path);
  assert_int_equal(file->nentries, 1);
  const pkc_entry *e = &file->entries[0];
  const char *names[] = {"PKT_SET", "DB_PASSWORD", "PKT_REMOVED",
                         "PKT_MATCHED"};
  assert_int_equal(e->nenv_names, 4);
  for (size_t i = 0; i < 4; i++) {
    bool found = false;
    for (size_t j = 0; j < e->nenv_names; j++)
      found = found || strcmp(e->env_names[j], names[i]) == 0;
    if (!found)
      fail_msg("env name %s not listed", names[i]);
  }
  assert_non_null(e->env_digest);
  pkc_file_free(file);

  /* Replay restores the values. */
  o.mode = PK_RECORD_NONE;
  c = open_opts(f->path, &o);
  r = run_cmd(c, cmd);
  assert_int_equal(pk_result_error(r), 0);
  assert_stdout(r, "using canary-inherited-9c1f2a7b3d and "
                   "canary-set-password-7a8b9c\n");
  pk_result_free(r);
  close_ok(c);
  pk_cmd_free(cmd);
  pkt_unsetenv("MY_API_TOKEN");
  pkt_unsetenv("PKT_PLAIN");
  pkt_unsetenv("PKT_MATCHED");
}

static int echo_password(const pk_cmd *cmd, const char *in, size_t inlen,
                         pk_reply *out, void *data) {
  (void)in, (void)inlen, (void)data;
  const char *v = NULL;
  pk_cmd_env_state(cmd, "DB_PASSWORD", &v);
  char buf[256];
  snprintf(buf, sizeof(buf), "pw=%s\n", v ? v : "");
  return pk_reply_chunk(out, PK_STDOUT, 0, buf, strlen(buf));
}

static pk_result *run_pw(pk_cassette *c, const char *pw) {
  pk_cmd *cmd = cmd_of("db", pw, NULL);
  PKT_ASSERT_OK(pk_cmd_env_set(cmd, "DB_PASSWORD", pw));
  pk_result *r = run_cmd(c, cmd);
  pk_cmd_free(cmd);
  return r;
}

/* Two runs set the same secret-looking variable to different values
 * (also passed as an argument): neither value reaches the file, and
 * both come back on replay. */
static void env_secret_two_values(void **state) {
  fx *f = *state;
  PKT_ASSERT_OK(pk_script_program(f->inner, "db",
                                  pk_reply_callback(echo_password, NULL)));
  const char *pw[] = {"canary-first-pw-11aa", "canary-second-pw-22bb"};
  pk_cassette *c = open_mode(f, PK_RECORD_ONCE);
  for (int i = 0; i < 2; i++)
    pk_result_free(run_pw(c, pw[i]));
  close_ok(c);
  assert_null(strstr(slurp(f->path), "canary"));
  pk_cassette_opts o = {.mode = PK_RECORD_NONE};
  c = open_opts(f->path, &o);
  for (int i = 0; i < 2; i++) {
    pk_result *r = run_pw(c, pw[i]);
    char want[64];
    snprintf(want, sizeof(want), "pw=%s\n", pw[i]);
    assert_int_equal(pk_result_error(r), 0);
    assert_stdout(r, want);
    pk_result_free(r);
  }
  close_ok(c);
}

/* ---------------------------------------------------------- matching */

/* match_env: the variables' values join the key through a digest. */
static void match_env_digest(void **state) {
  fx *f = *state;
  PKT_ASSERT_OK(pk_script_program(f->inner, "build", pk_reply_ok("one\n")));
  PKT_ASSERT_OK(pk_script_then(f->inner, pk_reply_ok("two\n")));
  const char *menv[] = {"PKT_TARGET"};
  pk_cassette_opts o = {.mode = PK_RECORD_NEW_EPISODES,
                        .inner = f->inner,
                        .match_env = menv,
                        .nmatch_env = 1};
  pk_cassette *c = open_opts(f->path, &o);
  pkt_setenv("PKT_TARGET", "target-value-alpha");
  expect(c, "build", NULL, "one\n");
  pkt_setenv("PKT_TARGET", "target-value-beta");
  expect(c, "build", NULL, "two\n");
  close_ok(c);
  assert_null(strstr(slurp(f->path), "target-value"));

  o.mode = PK_RECORD_NONE;
  c = open_opts(f->path, &o);
  expect(c, "build", NULL, "two\n");
  pkt_setenv("PKT_TARGET", "target-value-alpha");
  expect(c, "build", NULL, "one\n");
  pkt_unsetenv("PKT_TARGET");
  pk_result *r = run2(c, "build", NULL, NULL);
  assert_int_equal(pk_result_error(r), PK_ECASSETTE_MISS);
  assert_non_null(strstr(pk_result_errmsg(r), "environment variables"));
  pk_result_free(r);
  /* The command's own setting counts, not only the inherited value. */
  pk_cmd *cmd = cmd_of("build", NULL, NULL);
  PKT_ASSERT_OK(pk_cmd_env_set(cmd, "PKT_TARGET", "target-value-beta"));
  r = run_cmd(c, cmd);
  assert_stdout(r, "two\n");
  pk_result_free(r);
  pk_cmd_free(cmd);
  char err[4096];
  assert_int_equal(pk_cassette_close(c, err, sizeof(err)), PK_ECASSETTE_MISS);
}

/* PK_MATCH_CWD and PK_MATCH_NO_STDIN. */
static void match_cwd_and_stdin(void **state) {
  fx *f = *state;
  PKT_ASSERT_OK(pk_script_program(f->inner, "ls", pk_reply_ok("listing\n")));
  pk_cassette *c = open_mode(f, PK_RECORD_ONCE);
  pk_cmd *cmd = cmd_of("ls", NULL, NULL);
  PKT_ASSERT_OK(pk_cmd_set_cwd(cmd, "/pk-test/one"));
  PKT_ASSERT_OK(pk_cmd_set_stdin_bytes(cmd, "in-a", 4));
  pk_result_free(run_cmd(c, cmd));
  close_ok(c);

  pk_cmd *other = cmd_of("ls", NULL, NULL);
  PKT_ASSERT_OK(pk_cmd_set_cwd(other, "/pk-test/two"));
  PKT_ASSERT_OK(pk_cmd_set_stdin_bytes(other, "in-a", 4));
  pk_cassette_opts o = {.mode = PK_RECORD_NONE};
  c = open_opts(f->path, &o); /* cwd is informational by default */
  pk_result *r = run_cmd(c, other);
  assert_stdout(r, "listing\n");
  pk_result_free(r);
  close_ok(c);
  o.match = PK_MATCH_CWD;
  c = open_opts(f->path, &o);
  r = run_cmd(c, other);
  assert_int_equal(pk_result_error(r), PK_ECASSETTE_MISS);
  assert_non_null(
      strstr(pk_result_errmsg(r), "cwd: recorded \"/pk-test/one\""));
  pk_result_free(r);
  r = run_cmd(c, cmd);
  assert_stdout(r, "listing\n");
  pk_result_free(r);
  char err[4096];
  assert_int_equal(pk_cassette_close(c, err, sizeof(err)), PK_ECASSETTE_MISS);

  PKT_ASSERT_OK(pk_cmd_set_stdin_bytes(other, "in-b", 4));
  o.match = 0;
  c = open_opts(f->path, &o);
  expect_miss(c, "ls", NULL); /* no stdin: another key */
  assert_int_equal(pk_cassette_close(c, err, sizeof(err)), PK_ECASSETTE_MISS);
  o.match = PK_MATCH_NO_STDIN;
  c = open_opts(f->path, &o);
  r = run_cmd(c, other);
  assert_stdout(r, "listing\n");
  pk_result_free(r);
  expect(c, "ls", NULL, "listing\n");
  close_ok(c);
  pk_cmd_free(cmd);
  pk_cmd_free(other);
}

typedef struct matcher_data {
  int calls;
} matcher_data;

/* Same program, and the first argument's prefix before '@'. */
static bool my_matcher(const pk_cmd *cmd, const char *program,
                       const char *const *args, size_t nargs, const char *cwd,
                       void *data) {
  matcher_data *md = data;
  (void)cwd;
  md->calls++;
  if (strcmp(pk_cmd_program(cmd), program) != 0 || nargs != 1 ||
      pk_cmd_argc(cmd) != 1)
    return false;
  const char *a = pk_cmd_argv(cmd, 0);
  size_t n = strcspn(a, "@");
  return strncmp(a, args[0], n) == 0 && (args[0][n] == '@' || !args[0][n]);
}

static void match_custom(void **state) {
  fx *f = *state;
  PKT_ASSERT_OK(pk_script_program(f->inner, "fetch", pk_reply_ok("pkg-a\n")));
  PKT_ASSERT_OK(pk_script_then(f->inner, pk_reply_ok("pkg-b\n")));
  pk_cassette *c = open_mode(f, PK_RECORD_ONCE);
  expect(c, "fetch", "a@1.0", "pkg-a\n");
  expect(c, "fetch", "b@1.0", "pkg-b\n");
  close_ok(c);
  matcher_data md = {0};
  pk_cassette_opts o = {
      .mode = PK_RECORD_NONE, .matcher = my_matcher, .matcher_data = &md};
  c = open_opts(f->path, &o);
  expect(c, "fetch", "b@2.0", "pkg-b\n");
  expect(c, "fetch", "a@3.0", "pkg-a\n");
  expect(c, "fetch", "a", "pkg-a\n");
  assert_true(md.calls > 0);
  expect_miss(c, "fetch", "c@1.0");
  expect_miss(c, "other", "a@1.0");
  char err[4096];
  assert_int_equal(pk_cassette_close(c, err, sizeof(err)), PK_ECASSETTE_MISS);
}

/* A placeholder makes a volatile value (a port) drop out of the key and
 * come back as the new value on replay. */
static void match_placeholder(void **state) {
  fx *f = *state;
  PKT_ASSERT_OK(pk_script_program(
      f->inner, "server", pk_reply_ok("listening on 127.0.0.1:41234\n")));
  pk_cassette *c = open_mode(f, PK_RECORD_ONCE);
  PKT_ASSERT_OK(pk_cassette_placeholder(c, "PORT", "41234"));
  expect(c, "server", "--port=41234", "listening on 127.0.0.1:41234\n");
  close_ok(c);
  const char *text = slurp(f->path);
  assert_null(strstr(text, "41234"));
  assert_non_null(strstr(text, "\"--port={{PORT}}\""));

  pk_cassette_opts o = {.mode = PK_RECORD_NONE};
  c = open_opts(f->path, &o);
  PKT_ASSERT_OK(pk_cassette_placeholder(c, "PORT", "50777"));
  expect(c, "server", "--port=50777", "listening on 127.0.0.1:50777\n");
  expect_miss(c, "server", "--port=41234");
  char err[4096];
  assert_int_equal(pk_cassette_close(c, err, sizeof(err)), PK_ECASSETTE_MISS);
  c = open_opts(f->path, &o);
  assert_int_equal(pk_cassette_placeholder(c, "bad name", "x"), PK_EINVAL);
  assert_int_equal(pk_cassette_placeholder(c, "P", ""), PK_EINVAL);
  close_ok(c);
}

static void expect3(pk_cassette *c, const char *a1, const char *a2,
                    const char *a3, const char *want) {
  pk_cmd *cmd = cmd_of("git", a1, a2);
  if (a3 != NULL)
    PKT_ASSERT_OK(pk_cmd_arg(cmd, a3));
  pk_result *r = run_cmd(c, cmd);
  if (want == NULL)
    assert_int_equal(pk_result_error(r), PK_ECASSETTE_MISS);
  else
    assert_stdout(r, want);
  pk_result_free(r);
  pk_cmd_free(cmd);
}

/* ignore_flag drops "--since=X" and "--since X" from the key. */
static void match_ignore_flag(void **state) {
  fx *f = *state;
  PKT_ASSERT_OK(pk_script_program(f->inner, "git", pk_reply_ok("log\n")));
  pk_cassette *c = open_mode(f, PK_RECORD_ONCE);
  PKT_ASSERT_OK(pk_cassette_ignore_flag(c, "--since"));
  expect3(c, "log", "--since=2020-01-01", "main", "log\n");
  close_ok(c);
  pk_cassette_opts o = {.mode = PK_RECORD_NONE};
  c = open_opts(f->path, &o);
  assert_int_equal(pk_cassette_ignore_flag(c, ""), PK_EINVAL);
  expect3(c, "log", "--since=2021-01-01", "main", NULL); /* not yet */
  PKT_ASSERT_OK(pk_cassette_ignore_flag(c, "--since"));
  expect3(c, "log", "--since=2024-05-06", "main", "log\n");
  pk_cmd *cmd = cmd_of("git", "log", "--since");
  PKT_ASSERT_OK(pk_cmd_arg(cmd, "yesterday"));
  PKT_ASSERT_OK(pk_cmd_arg(cmd, "main"));
  pk_result *r = run_cmd(c, cmd);
  assert_stdout(r, "log\n");
  pk_result_free(r);
  pk_cmd_free(cmd);
  expect3(c, "log", "main", NULL, "log\n");
  expect3(c, "log", "--sincere", "main", NULL); /* a different flag */
  expect3(c, "log", "dev", NULL, NULL);
  char err[4096];
  assert_int_equal(pk_cassette_close(c, err, sizeof(err)), PK_ECASSETTE_MISS);
}

/* match_glob: commands matching the patterns answer each other. */
static void match_glob(void **state) {
  fx *f = *state;
  PKT_ASSERT_OK(pk_script_program(f->inner, "curl", pk_reply_ok("{}\n")));
  const char *pat[] = {"curl", "-s", "http://localhost:*/api"};
  pk_cassette *c = open_mode(f, PK_RECORD_ONCE);
  PKT_ASSERT_OK(pk_cassette_match_glob(c, pat, 3));
  pk_result_free(run2(c, "/usr/bin/curl", "-s", "http://localhost:1234/api"));
  close_ok(c);
  pk_cassette_opts o = {.mode = PK_RECORD_NONE};
  c = open_opts(f->path, &o);
  pk_result *r = run2(c, "curl", "-s", "http://localhost:9999/api");
  assert_int_equal(pk_result_error(r), PK_ECASSETTE_MISS); /* no glob yet */
  pk_result_free(r);
  PKT_ASSERT_OK(pk_cassette_match_glob(c, pat, 3));
  r = run2(c, "curl", "-s", "http://localhost:9999/api");
  assert_stdout(r, "{}\n");
  pk_result_free(r);
  r = run2(c, "curl", "-s", "http://example.com/api");
  assert_int_equal(pk_result_error(r), PK_ECASSETTE_MISS);
  pk_result_free(r);
  char err[4096];
  assert_int_equal(pk_cassette_close(c, err, sizeof(err)), PK_ECASSETTE_MISS);
}

/* -------------------------------------------------------- passthrough */

/* Pass-through programs run through the inner runner in every mode and
 * are never recorded. */
static void passthrough_every_mode(void **state) {
  fx *f = *state;
  seed_ab(f);
  PKT_ASSERT_OK(pk_script_program(f->inner, "date", pk_reply_ok("today\n")));
  const char *pt[] = {"date"};
  pk_record_mode modes[] = {PK_RECORD_NONE, PK_RECORD_ONCE,
                            PK_RECORD_NEW_EPISODES, PK_RECORD_ALL};
  size_t calls = pk_scripted_calls(f->inner);
  for (size_t i = 0; i < 4; i++) {
    pk_cassette_opts o = {.mode = modes[i],
                          .inner = f->inner,
                          .passthrough = pt,
                          .npassthrough = 1};
    pk_cassette *c = open_opts(f->path, &o);
    expect(c, "date", NULL, "today\n");
    expect(c, "/bin/date", "+%s", "today\n"); /* by basename too */
    calls += 2;
    assert_int_equal(pk_scripted_calls(f->inner), calls);
    if (modes[i] == PK_RECORD_ALL)
      pk_cassette_discard(c); /* keep a and b for the next check */
    close_ok(c);
    assert_null(strstr(slurp(f->path), "date"));
  }
  /* Without an inner runner a pass-through program cannot run. */
  pk_cassette_opts o = {
      .mode = PK_RECORD_NONE, .passthrough = pt, .npassthrough = 1};
  pk_cassette *c = open_opts(f->path, &o);
  pk_result *r = run2(c, "date", NULL, NULL);
  assert_int_equal(pk_result_error(r), PK_EINVAL);
  pk_result_free(r);
  close_ok(c);
  const char *want[] = {"a:a1\n", "b:b1\n"};
  assert_entries(f->path, want, 2);
}

/* -------------------------------------------------- cancelled, capped */

/* A cancelled run, and a run freed before its end, are never recorded. */
static void cancelled_not_recorded(void **state) {
  fx *f = *state;
  PKT_ASSERT_OK(pk_script_program(f->inner, "hang", pk_reply_pending()));
  PKT_ASSERT_OK(pk_script_program(f->inner, "ok", pk_reply_ok("ok\n")));
  pk_cassette *c = open_mode(f, PK_RECORD_NEW_EPISODES);
  pk_cmd *cmd = cmd_of("hang", NULL, NULL);
  pk_proc *p;
  PKT_ASSERT_OK(pk_start(pk_cassette_runner(c), cmd, NULL, &p));
  PKT_ASSERT_OK(pk_proc_cancel(p));
  pk_proc_wait(p);
  assert_int_equal(pk_result_outcome(pk_proc_result(p)), PK_OUTCOME_CANCELLED);
  pk_proc_free(p);
  PKT_ASSERT_OK(pk_start(pk_cassette_runner(c), cmd, NULL, &p));
  pk_proc_free(p); /* mid-run */
  pk_cmd_free(cmd);
  expect(c, "ok", NULL, "ok\n");
  close_ok(c);
  const char *want[] = {"ok:ok\n"};
  assert_entries(f->path, want, 1);
}

/* The recording cap keeps the first bytes and marks the entry; the
 * totals are the run's. */
static void recording_cap(void **state) {
  fx *f = *state;
  char big[1001];
  for (int i = 0; i < 1000; i++)
    big[i] = (char)('a' + i % 26);
  big[1000] = '\0';
  pk_reply *rep = pk_reply_timeline();
  PKT_ASSERT_OK(pk_reply_chunk(rep, PK_STDOUT, 0, big, 60));
  PKT_ASSERT_OK(pk_reply_chunk(rep, PK_STDERR, 0, big, 30));
  PKT_ASSERT_OK(pk_reply_chunk(rep, PK_STDOUT, 0, big + 60, 940));
  PKT_ASSERT_OK(pk_script_program(f->inner, "spew", rep));
  pk_cassette_opts o = {
      .mode = PK_RECORD_ONCE, .inner = f->inner, .max_entry_bytes = 100};
  pk_cassette *c = open_opts(f->path, &o);
  pk_result *r = run2(c, "spew", NULL, NULL);
  size_t n;
  pk_result_stdout(r, &n);
  assert_int_equal(n, 1000); /* the live run is not capped */
  pk_result_free(r);
  close_ok(c);
  const char *text = slurp(f->path);
  assert_non_null(strstr(text, "truncated: true"));
  assert_non_null(strstr(text, "stdout_bytes: 1000"));
  assert_non_null(strstr(text, "stderr_bytes: 30"));
  pkc_file *file = load(f->path);
  assert_true(file->entries[0].truncated);
  assert_int_equal(file->entries[0].total_bytes[PK_STDOUT], 1000);
  pkc_file_free(file);

  o.mode = PK_RECORD_NONE;
  c = open_opts(f->path, &o);
  r = run2(c, "spew", NULL, NULL);
  char want[101];
  memcpy(want, big, 70); /* 60 + 30 + 10 = the first 100 bytes */
  want[70] = '\0';
  assert_stdout(r, want);
  pk_result_stderr(r, &n);
  assert_int_equal(n, 30);
  pk_result_free(r);
  close_ok(c);
}

/* ------------------------------------------------------------- pacing */

static const char paced_yaml[] =
    "version: 1\n"
    "entries:\n"
    "- program: \"paced\"\n"
    "  args: []\n"
    "  stdin: {sha256: \"" EMPTY_SHA "\", bytes: 0}\n"
    "  exit: {code: 0}\n"
    "  duration_ms: 300\n"
    "  output: {stdout_bytes: 5, stdout_lines: 0, stderr_bytes: 3, "
    "stderr_lines: 0}\n"
    "  events:\n"
    "  - {t: 0, stdout: \"a\"}\n"
    "  - {t: 0, stderr: \"E1\"}\n"
    "  - {t: 0.5, stdout: \"bc\"}\n"
    "  - {t: 0.5, stderr: \"2\"}\n"
    "  - {t: 300, stdout: \"de\"}\n";

typedef struct chunks {
  char log[256];
} chunks;

static void on_chunk(pk_proc *p, pk_stream s, const char *buf, size_t len,
                     void *data) {
  (void)p;
  chunks *ch = data;
  size_t n = strlen(ch->log);
  snprintf(ch->log + n, sizeof(ch->log) - n, "%c:%.*s|",
           s == PK_STDOUT ? 'o' : 'e', (int)len, buf);
}

static void paced_replay(void **state) {
  fx *f = *state;
  write_text(f->path, paced_yaml);
  pk_cassette_opts o = {.mode = PK_RECORD_NONE, .speed = 1};
  pk_cassette *c = open_opts(f->path, &o);
  uint64_t t0 = pkt_now_ms();
  expect(c, "paced", NULL, "abcde");
  uint64_t took = pkt_now_ms() - t0;
  if (took < 250)
    fail_msg("speed 1 replayed a 300 ms entry in %llu ms",
             (unsigned long long)took);
  close_ok(c);

  o.speed = 0; /* at once, order kept */
  c = open_opts(f->path, &o);
  for (int i = 0; i < 3; i++) {
    chunks ch = {{0}};
    pk_start_opts so = {.on_output = on_chunk, .data = &ch};
    pk_cmd *cmd = cmd_of("paced", NULL, NULL);
    pk_proc *p;
    t0 = pkt_now_ms();
    PKT_ASSERT_OK(pk_start(pk_cassette_runner(c), cmd, &so, &p));
    PKT_ASSERT_OK(pk_proc_wait(p));
    assert_string_equal(ch.log, "o:a|e:E1|o:bc|e:2|o:de|");
    assert_int_equal(pk_result_code(pk_proc_result(p)), 0);
    pk_proc_free(p);
    pk_cmd_free(cmd);
  }
  close_ok(c);
}

/* ------------------------------------------------------------ goldens */

/* Build the entry's command: program, args with user placeholders given
 * a value (registered on both cassettes), stdin closed. */
static pk_cmd *golden_cmd(const pkc_entry *e, pk_cassette *c1,
                          pk_cassette *c2) {
  pk_cmd *cmd;
  PKT_ASSERT_OK(pk_cmd_new(e->program, &cmd));
  for (size_t i = 0; i < e->nplaceholders; i++) {
    if (strncmp(e->placeholders[i], "pk.", 3) == 0)
      continue;
    char value[128];
    snprintf(value, sizeof(value), "golden-%s-value", e->placeholders[i]);
    PKT_ASSERT_OK(pk_cassette_redact(c1, e->placeholders[i], value));
    PKT_ASSERT_OK(pk_cassette_redact(c2, e->placeholders[i], value));
  }
  for (size_t i = 0; i < e->nargs; i++) {
    char arg[1024] = "";
    const char *a = e->args[i];
    while (*a != '\0') {
      const char *open = strstr(a, "{{"), *close;
      if (open == NULL || (close = strstr(open, "}}")) == NULL) {
        strncat(arg, a, sizeof(arg) - strlen(arg) - 1);
        break;
      }
      strncat(arg, a, (size_t)(open - a));
      char value[128];
      snprintf(value, sizeof(value), "golden-%.*s-value",
               (int)(close - open - 2), open + 2);
      strncat(arg, value, sizeof(arg) - strlen(arg) - 1);
      a = close + 2;
    }
    PKT_ASSERT_OK(pk_cmd_arg(cmd, arg));
  }
  return cmd;
}

static void golden_check(const char *path, const pkc_entry *e,
                         const pk_result *r) {
  char what[512];
  snprintf(what, sizeof(what), "%.300s: entry %.40s (%.100s)", path, e->id,
           e->program);
  {
    size_t n;
    const char *s = pk_result_stdout(r, &n);
    size_t m = 0;
    for (size_t i = 0; i < e->nevents; i++)
      if (e->events[i].kind == PKC_EV_STDOUT) {
        if (m + e->events[i].len > n ||
            memcmp(s + m, e->events[i].data, e->events[i].len) != 0)
          fail_msg("%s: stdout differs at %zu", what, m);
        m += e->events[i].len;
      }
    if (m != n)
      fail_msg("%s: stdout %zu bytes, recorded %zu", what, n, m);
    s = pk_result_stderr(r, &n);
    m = 0;
    for (size_t i = 0; i < e->nevents; i++)
      if (e->events[i].kind == PKC_EV_STDERR) {
        if (m + e->events[i].len > n ||
            memcmp(s + m, e->events[i].data, e->events[i].len) != 0)
          fail_msg("%s: stderr differs at %zu", what, m);
        m += e->events[i].len;
      }
    if (m != n)
      fail_msg("%s: stderr %zu bytes, recorded %zu", what, n, m);
  }
  switch (e->end) {
  case PKC_END_EXIT:
    if (pk_result_outcome(r) != PK_OUTCOME_EXITED ||
        pk_result_code(r) != e->code)
      fail_msg("%s: want exit %d, got outcome %d code %d (%s: %s)", what,
               e->code, (int)pk_result_outcome(r), pk_result_code(r),
               pk_err_name(pk_result_error(r)),
               pk_result_errmsg(r) ? pk_result_errmsg(r) : "");
    break;
  case PKC_END_SIGNAL:
    assert_int_equal(pk_result_outcome(r), PK_OUTCOME_SIGNALLED);
    assert_int_equal(pk_result_signal(r), e->signal);
    break;
  case PKC_END_TIMEOUT:
    assert_int_equal(pk_result_outcome(r), PK_OUTCOME_TIMED_OUT);
    if (e->signal != 0)
      assert_int_equal(pk_result_signal(r), e->signal);
    break;
  case PKC_END_ERROR:
    if (pk_result_error(r) != e->error)
      fail_msg("%s: want error %s, got %s (%s)", what, pk_err_name(e->error),
               pk_err_name(pk_result_error(r)),
               pk_result_errmsg(r) ? pk_result_errmsg(r) : "");
    if (e->os_errno != 0)
      assert_int_equal(pk_result_os_errno(r), e->os_errno);
    if (e->stage != NULL)
      assert_string_equal(pk_result_stage(r), e->stage);
    break;
  }
  /* A truncated entry is missing bytes: its replay says so. */
  assert_int_equal(pk_result_output_incomplete(r),
                   e->incomplete || e->truncated);
}

/* Every golden fixture replays (frozen, mode none) exactly as written:
 * the hand-written ones and one pk recorded on Linux (exit code, stdin
 * digest, binary output, a signal death, a lookup failure, a timeout),
 * on every host the suite runs on. */
static void golden_fixtures(void **state) {
  (void)state;
  const char *names[] = {"git.yaml", "binary.yaml", "errors.yaml",
                         "recorded-linux.yaml"};
  for (size_t k = 0; k < sizeof(names) / sizeof(names[0]); k++) {
    char path[1024];
    snprintf(path, sizeof(path), "%s/fixtures/cassettes/%s", PK_SOURCE_DIR,
             names[k]);
    pkc_file *file = load(path);
    assert_true(file->frozen);
    assert_true(file->nentries > 0);
    /* Entries whose stdin cannot be rebuilt (a digest of bytes we do not
     * have, a terminal) are looked up without the stdin in the key. */
    pk_cassette_opts o = {.mode = PK_RECORD_NONE};
    pk_cassette *plain = open_opts(path, &o);
    o.match = PK_MATCH_NO_STDIN;
    pk_cassette *nostdin = open_opts(path, &o);
    for (size_t i = 0; i < file->nentries; i++) {
      const pkc_entry *e = &file->entries[i];
      bool empty = e->stdin_kind == PKC_STDIN_BYTES && e->stdin_bytes == 0;
      pk_cmd *cmd = golden_cmd(e, plain, nostdin);
      pk_result *r = NULL;
      pk_output(pk_cassette_runner(empty ? plain : nostdin), cmd, &r);
      assert_non_null(r);
      if (pk_result_error(r) == PK_ECASSETTE_MISS)
        fail_msg("%s: entry %s missed: %s", path, e->id, pk_result_errmsg(r));
      golden_check(path, e, r);
      if (e->end != PKC_END_ERROR) /* a lookup failure spawned nothing */
        assert_string_equal(pk_result_spawn_method(r), "cassette");
      pk_result_free(r);
      pk_cmd_free(cmd);
    }
    close_ok(plain);
    close_ok(nostdin);
    pkc_file_free(file);
  }
}

/* ----------------------------------------------------- discard, saves */

static void discard_and_double_save(void **state) {
  fx *f = *state;
  PKT_ASSERT_OK(pk_script_program(f->inner, "a", pk_reply_ok("a\n")));
  PKT_ASSERT_OK(pk_script_program(f->inner, "b", pk_reply_ok("b\n")));
  pk_cassette *c = open_mode(f, PK_RECORD_ONCE);
  expect(c, "a", NULL, "a\n");
  pk_cassette_discard(c);
  PKT_ASSERT_OK(pk_cassette_save(c));
  close_ok(c);
  assert_false(pkt_stat(f->path, NULL));

  pk_record_mode modes[] = {PK_RECORD_NEW_EPISODES, PK_RECORD_ALL};
  for (size_t i = 0; i < 2; i++) {
    remove_file(f->path);
    c = open_mode(f, modes[i]);
    expect(c, "a", NULL, "a\n");
    PKT_ASSERT_OK(pk_cassette_save(c));
    uv_stat_t st1, st2;
    assert_true(pkt_stat(f->path, &st1));
    PKT_ASSERT_OK(pk_cassette_save(c)); /* nothing new: not rewritten */
    assert_true(pkt_stat(f->path, &st2));
    assert_int_equal(st1.st_ino, st2.st_ino); /* the file id on Windows */
    assert_int_equal(st1.st_mtim.tv_sec, st2.st_mtim.tv_sec);
    assert_int_equal(st1.st_mtim.tv_nsec, st2.st_mtim.tv_nsec);
    expect(c, "b", NULL, "b\n");
    PKT_ASSERT_OK(pk_cassette_save(c));
    close_ok(c);
    const char *want[] = {"a:a\n", "b:b\n"};
    assert_entries(f->path, want, 2);
  }
}

/* Two runs of one command with the same output are two entries: the
 * replay under strict plays both, and the file lists both. */
static void identical_runs_both_kept(void **state) {
  fx *f = *state;
  PKT_ASSERT_OK(pk_script_program(f->inner, "same", pk_reply_ok("same\n")));
  pk_record_mode modes[] = {PK_RECORD_ONCE, PK_RECORD_ALL};
  for (size_t i = 0; i < 2; i++) {
    pk_cassette *c = open_mode(f, modes[i]);
    for (int k = 0; k < 3; k++)
      expect(c, "same", NULL, "same\n");
    close_ok(c);
    const char *want[] = {"same:same\n", "same:same\n", "same:same\n"};
    assert_entries(f->path, want, 3);
    pk_cassette_opts o = {.mode = PK_RECORD_NONE, .strict = true};
    c = open_opts(f->path, &o);
    for (int k = 0; k < 3; k++)
      expect(c, "same", NULL, "same\n");
    close_ok(c);
  }
}

/* A command whose argument is not UTF-8 cannot be saved (format 1 keeps
 * commands as text): it fails with invalid_argument before the inner
 * runner sees it, and the session's other recordings are still saved
 * (the unsavable one used to stay in the session and fail every save).
 * Registered as a secret, the same bytes become {{NAME}} and record. */
static void non_utf8_command_runs_nothing(void **state) {
  fx *f = *state;
  PKT_ASSERT_OK(pk_script_program(f->inner, "a", pk_reply_ok("a1\n")));
  PKT_ASSERT_OK(pk_script_program(f->inner, "b", pk_reply_ok("b1\n")));
  pk_cassette *c = open_mode(f, PK_RECORD_NEW_EPISODES);
  expect(c, "a", NULL, "a1\n");
  pk_result *r = run2(c, "b", "caf\xe9", NULL);
  assert_int_equal(pk_result_error(r), PK_EINVAL);
  assert_non_null(strstr(pk_result_errmsg(r), "args[0] is not valid UTF-8"));
  pk_result_free(r);
  assert_int_equal(pk_scripted_calls(f->inner), 1); /* b never ran */
  assert_int_equal(pk_cassette_miss_count(c), 0);
  PKT_ASSERT_OK(pk_cassette_save(c));
  PKT_ASSERT_OK(pk_cassette_redact(c, "ACCENT", "caf\xe9"));
  r = run2(c, "b", "caf\xe9", NULL);
  assert_int_equal(pk_result_error(r), 0);
  pk_result_free(r);
  close_ok(c);
  const char *want[] = {"a:a1\n", "b:b1\n"};
  assert_entries(f->path, want, 2);
  pkc_file *file = load(f->path);
  assert_string_equal(file->entries[1].args[0], "{{ACCENT}}");
  pkc_file_free(file);
}

int main(void) {
#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)
  const struct CMUnitTest tests[] = {
      T(mode_new_episodes),
      T(mode_all),
      T(mode_once_existing),
      T(mode_default_and_ci),
      T(mode_env_override),
      T(mode_record_only),
      T(mode_frozen_and_missing),
      T(all_session_across_processes),
      T(processes_record_concurrently),
      T(staleness),
      T(normalize_paths),
      T(env_values_never_written),
      T(env_secret_two_values),
      T(match_env_digest),
      T(match_cwd_and_stdin),
      T(match_custom),
      T(match_placeholder),
      T(match_ignore_flag),
      T(match_glob),
      T(passthrough_every_mode),
      T(cancelled_not_recorded),
      T(recording_cap),
      T(paced_replay),
      T(golden_fixtures),
      T(discard_and_double_save),
      T(identical_runs_both_kept),
      T(non_utf8_command_runs_nothing),
      T(threads_record_and_replay), /* last: it leaves threads behind */
  };
#undef T
  return cmocka_run_group_tests(tests, NULL, NULL);
}
