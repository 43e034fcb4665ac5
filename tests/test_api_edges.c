/* Edges of the library API a C user meets in the first week: empty
 * captures are strings, over-long lines, out-parameters of failed verbs,
 * spawn-method names, command constructors and a spawn-free which.
 *
 * Every allocation pk makes in this program is filled with junk first
 * (pk_replace_allocator), so reading memory pk never wrote shows up on
 * every run instead of by luck. */
#include "harness.h"
#include "internal.h"

#include <pk/fakes.h>
#include <pk/mock.h>
#include <pk/recording.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#if !defined(_WIN32)
#include <fcntl.h>
#include <unistd.h>
#endif

/* ---------------------------------------------------- a junk allocator */

#define JUNK 0x5a
typedef struct hdr {
  size_t n;
  size_t pad; /* keep 16-byte alignment */
} hdr;

static void *junk_malloc(size_t n) {
  hdr *h = malloc(sizeof(hdr) + n);
  if (h == NULL)
    return NULL;
  h->n = n;
  memset(h + 1, JUNK, n);
  return h + 1;
}

static void *junk_realloc(void *p, size_t n) {
  if (p == NULL)
    return junk_malloc(n);
  hdr *old = (hdr *)p - 1;
  size_t was = old->n;
  hdr *h = realloc(old, sizeof(hdr) + n);
  if (h == NULL)
    return NULL;
  if (n > was)
    memset((char *)(h + 1) + was, JUNK, n - was);
  h->n = n;
  return h + 1;
}

static void *junk_calloc(size_t n, size_t size) {
  void *p = junk_malloc(n * size);
  if (p != NULL)
    memset(p, 0, n * size);
  return p;
}

static void junk_free(void *p) {
  if (p != NULL)
    free((hdr *)p - 1);
}

/* ------------------------------------------------------ empty captures */

static void assert_empty_streams(const pk_result *res, const char *who) {
  for (int s = PK_STDOUT; s <= PK_STDERR; s++) {
    size_t len = 99;
    const char *b = s == PK_STDOUT ? pk_result_stdout(res, &len)
                                   : pk_result_stderr(res, &len);
    if (b == NULL || len != 0 || b[0] != '\0')
      fail_msg("%s: empty %s is not an empty string (len %zu, first byte "
               "0x%02x)",
               who, s == PK_STDOUT ? "stdout" : "stderr", len,
               b ? (unsigned char)b[0] : 0);
  }
}

static void empty_capture_is_a_string_on_every_real_path(void **state) {
  (void)state;
  PKT_SKIP_UNLESS_REAL();
  pk_mechanism mechs[4];
  int n = pkt_mechanisms(mechs);
  static const unsigned paths[] = {0, PK_NO_CLONE3, PK_NO_PIDFD,
                                   PK_NO_CLONE3 | PK_NO_PIDFD};
  for (int i = 0; i < n; i++) {
    for (size_t k = 0; k < sizeof(paths) / sizeof(paths[0]); k++) {
      pkt_snapshot snap;
      pkt_snapshot_take(&snap);
      pk_runner *r = pkt_runner(mechs[i], paths[k]);
      pk_cmd *cmd = pkt_fixture("exit", "0", NULL);
      for (int round = 0; round < 20; round++) {
        pk_result *res = NULL;
        PKT_ASSERT_OK(pk_output(r, cmd, &res));
        assert_int_equal(pk_result_code(res), 0);
        assert_empty_streams(res, pk_result_spawn_method(res));
        pk_result_free(res);
      }
      pk_cmd_free(cmd);
      pk_runner_free(r);
      pkt_snapshot_check(&snap);
    }
  }
}

static void empty_capture_is_a_string_on_every_double(void **state) {
  (void)state;
  pk_cmd *cmd;
  PKT_ASSERT_OK(pk_cmd_new_list(&cmd, "git", "status", NULL));
  pk_runner *runners[3];
  PKT_ASSERT_OK(pk_scripted_new(&runners[0]));
  PKT_ASSERT_OK(pk_script_fallback(runners[0], pk_reply_ok("")));
  PKT_ASSERT_OK(pk_dryrun_new(&runners[1]));
  PKT_ASSERT_OK(pk_mock_new(&runners[2]));
  static const char *const names[] = {"scripted", "dryrun", "mock"};
  for (int i = 0; i < 3; i++) {
    if (i == 2) {
      pk_mock_expect_call("git", "status");
      pk_mock_will_reply(pk_reply_ok(""));
    }
    pk_result *res = NULL;
    PKT_ASSERT_OK(pk_output(runners[i], cmd, &res));
    assert_empty_streams(res, names[i]);
    /* The doubles name themselves (pk.h says so). */
    assert_string_equal(pk_result_spawn_method(res), names[i]);
    pk_result_free(res);
    pk_runner_free(runners[i]);
  }
  pk_cmd_free(cmd);
}

/* ------------------------------------------------------ over-long lines */

typedef struct lines {
  pk__buf whole;  /* every delivery, "L:<line>\n" or "P<more>:<piece>\n" */
  int nlines;     /* deliveries to on_line */
  int nfinished;  /* pieced lines that ended (more == false) */
  size_t longest; /* longest single delivery */
} lines;

static void rec(lines *l, const char *tag, const char *b, size_t n) {
  pk__buf_append(&l->whole, tag, strlen(tag));
  pk__buf_append(&l->whole, b, n);
  pk__buf_append(&l->whole, "\n", 1);
  if (n > l->longest)
    l->longest = n;
}

static void on_line(pk_proc *p, pk_stream s, const char *b, size_t n,
                    void *data) {
  (void)p, (void)s;
  lines *l = data;
  l->nlines++;
  rec(l, "L:", b, n);
}

static void on_piece(pk_proc *p, pk_stream s, const char *b, size_t n,
                     bool more, void *data) {
  (void)p, (void)s;
  lines *l = data;
  assert_true(n > 0); /* a piece is never empty */
  l->nfinished += !more;
  rec(l, more ? "P1:" : "P0:", b, n);
}

/* Run cmd with a max line of `max` and return what the callbacks saw. */
static void run_lines(pk_runner *r, pk_cmd *cmd, bool pieces, lines *l,
                      uint64_t *total) {
  memset(l, 0, sizeof(*l));
  pk_start_opts o = {
      .on_line = on_line, .on_line_piece = pieces ? on_piece : NULL, .data = l};
  pk_proc *p;
  PKT_ASSERT_OK(pk_start(r, cmd, &o, &p));
  PKT_ASSERT_OK(pk_proc_wait(p));
  *total = pk_result_total_lines(pk_proc_result(p), PK_STDOUT);
  pk_proc_free(p);
}

/* The text the callbacks must see for `text` split at `max`. */
static char *expected(const char *text, size_t max, bool pieces) {
  pk__buf b = {0};
  const char *t = text;
  while (*t) {
    const char *nl = strchr(t, '\n');
    size_t n = nl ? (size_t)(nl - t) : strlen(t);
    if (n <= max) {
      pk__buf_append(&b, "L:", 2);
      pk__buf_append(&b, t, n);
      pk__buf_append(&b, "\n", 1);
    } else {
      for (size_t off = 0; off < n; off += max) {
        size_t k = n - off < max ? n - off : max;
        bool more = off + k < n;
        const char *tag = !pieces ? "L:" : more ? "P1:" : "P0:";
        pk__buf_append(&b, tag, strlen(tag));
        pk__buf_append(&b, t + off, k);
        pk__buf_append(&b, "\n", 1);
      }
    }
    t += n + (nl != NULL);
  }
  return b.data;
}

/* Lines around the maximum: shorter, exactly, one more, a multiple (the
 * case that used to invent an empty line), an empty line, and a final
 * unterminated over-long line. */
static const char *line_text(size_t max) {
  static char buf[256];
  char *w = buf;
  size_t lens[] = {max - 1, max, max + 1, 3 * max, 0, 2 * max + 2};
  char c = 'a';
  for (size_t i = 0; i < sizeof(lens) / sizeof(lens[0]); i++, c++) {
    memset(w, c, lens[i]);
    w += lens[i];
    if (i + 1 < sizeof(lens) / sizeof(lens[0]))
      *w++ = '\n';
  }
  *w = '\0';
  return buf;
}

static void check_lines(pk_runner *r, pk_cmd *cmd, const char *text,
                        size_t max) {
  for (int pieces = 0; pieces < 2; pieces++) {
    lines l;
    uint64_t total;
    run_lines(r, cmd, pieces, &l, &total);
    char *want = expected(text, max, pieces);
    assert_non_null(l.whole.data);
    assert_string_equal(l.whole.data, want);
    assert_true(l.longest <= max);
    if (pieces) /* every line reaches exactly one callback, whole or not */
      assert_int_equal((uint64_t)(l.nlines + l.nfinished), total);
    pk__free(want);
    pk__buf_release(&l.whole);
  }
}

static void long_lines_scripted(void **state) {
  (void)state;
  const size_t max = 7;
  const char *text = line_text(max);
  pk_runner *r;
  PKT_ASSERT_OK(pk_scripted_new(&r));
  /* One chunk per byte too: read boundaries must not matter. */
  pk_reply *rep = pk_reply_ok("");
  for (const char *t = text; *t; t++) {
    char one[2] = {*t, '\0'};
    PKT_ASSERT_OK(pk_reply_chunk(rep, PK_STDOUT, 0, one, 1));
  }
  PKT_ASSERT_OK(pk_script_program(r, "bytewise", rep));
  PKT_ASSERT_OK(pk_script_fallback(r, pk_reply_ok(text)));
  pk_cmd *whole, *bytewise;
  PKT_ASSERT_OK(pk_cmd_new_list(&whole, "whole", NULL));
  PKT_ASSERT_OK(pk_cmd_new_list(&bytewise, "bytewise", NULL));
  PKT_ASSERT_OK(pk_cmd_set_max_line(whole, max));
  PKT_ASSERT_OK(pk_cmd_set_max_line(bytewise, max));
  check_lines(r, whole, text, max);
  check_lines(r, bytewise, text, max);
  pk_cmd_free(whole);
  pk_cmd_free(bytewise);
  pk_runner_free(r);
}

/* The fixture's cat writes the text back as it reads it. */
static void long_lines_real(void **state) {
  (void)state;
  PKT_SKIP_UNLESS_REAL();
  const size_t max = 7;
  const char *text = line_text(max);
  pk_cmd *cmd = pkt_fixture("cat", NULL);
  PKT_ASSERT_OK(pk_cmd_set_stdin_bytes(cmd, text, strlen(text)));
  PKT_ASSERT_OK(pk_cmd_set_max_line(cmd, max));
  pk_runner *r = pkt_runner(PK_MECH_AUTO, 0);
  check_lines(r, cmd, text, max);
  pk_runner_free(r);
  pk_cmd_free(cmd);
}

static void max_line_is_validated(void **state) {
  (void)state;
  pk_cmd *cmd;
  PKT_ASSERT_OK(pk_cmd_new("x", &cmd));
  assert_int_equal(pk_cmd_max_line(cmd), PK_DEFAULT_MAX_LINE);
  assert_int_equal(pk_cmd_set_max_line(cmd, 0), PK_EINVAL);
  assert_non_null(strstr(pk_cmd_errmsg(cmd), "pk_cmd_set_max_line"));
  PKT_ASSERT_OK(pk_cmd_set_max_line(cmd, 3));
  pk_cmd *copy;
  PKT_ASSERT_OK(pk_cmd_clone(cmd, &copy));
  assert_int_equal(pk_cmd_max_line(copy), 3);
  pk_cmd_free(copy);
  pk_cmd_free(cmd);
}

/* ------------------------------------------------- failed verbs' outputs */

static void failed_verbs_leave_no_output(void **state) {
  (void)state;
  pk_runner *r;
  PKT_ASSERT_OK(pk_scripted_new(&r));
  PKT_ASSERT_OK(pk_script_program(r, "fails", pk_reply_fail(3, "no\n")));
  PKT_ASSERT_OK(pk_script_program(r, "two", pk_reply_fail(2, "")));
  pk_cmd *fails, *two, *unknown;
  PKT_ASSERT_OK(pk_cmd_new_list(&fails, "fails", NULL));
  PKT_ASSERT_OK(pk_cmd_new_list(&two, "two", NULL));
  PKT_ASSERT_OK(pk_cmd_new_list(&unknown, "unknown", NULL));
  const pk_cmd *cmds[] = {fails, unknown};
  for (int i = 0; i < 2; i++) {
    char *text = (char *)"untouched";
    pk_result *res = NULL;
    assert_true(pk_run(r, cmds[i], &text, &res) != 0);
    assert_null(text);
    assert_non_null(res); /* the result still tells what happened */
    pk_result_free(res);
  }
  int code = 7;
  assert_int_equal(pk_exit_code(r, unknown, &code, NULL), PK_EUNEXPECTED);
  assert_int_equal(code, -1);
  bool yes = true;
  assert_int_equal(pk_probe(r, two, &yes, NULL), PK_EEXIT);
  assert_false(yes);
  pk_cmd_free(fails);
  pk_cmd_free(two);
  pk_cmd_free(unknown);
  pk_runner_free(r);
}

/* --------------------------------------------------------- constructors */

static void constructors_build_the_same_command(void **state) {
  (void)state;
  const char *argv[] = {"git", "log", "-n", "5", ""};
  pk_cmd *a, *b;
  PKT_ASSERT_OK(pk_cmd_new_argv(argv, 5, &a));
  PKT_ASSERT_OK(pk_cmd_new_list(&b, "git", "log", "-n", "5", "", NULL));
  const pk_cmd *both[] = {a, b};
  for (int i = 0; i < 2; i++) {
    assert_string_equal(pk_cmd_program(both[i]), "git");
    assert_int_equal(pk_cmd_argc(both[i]), 4);
    for (size_t k = 0; k < 4; k++)
      assert_string_equal(pk_cmd_argv(both[i], k), argv[k + 1]);
  }
  pk_cmd_free(a);
  pk_cmd_free(b);
  pk_cmd *c = (pk_cmd *)1;
  assert_int_equal(pk_cmd_new_argv(argv, 0, &c), PK_EINVAL);
  assert_null(c);
  const char *bad[] = {"git", NULL};
  c = (pk_cmd *)1;
  assert_int_equal(pk_cmd_new_argv(bad, 2, &c), PK_EINVAL);
  assert_null(c);
  const char *empty[] = {""};
  assert_int_equal(pk_cmd_new_argv(empty, 1, &c), PK_EINVAL);
  assert_int_equal(pk_cmd_new_list(&c, NULL, NULL), PK_EINVAL);
  assert_null(c);
  PKT_ASSERT_OK(pk_cmd_new_list(&c, "true", NULL));
  assert_int_equal(pk_cmd_argc(c), 0);
  pk_cmd_free(c);
}

/* -------------------------------------------------------------- which */

/* The scratch programs are #!/bin/sh scripts, told apart from plain files
 * by their execute bits: POSIX only. */
#if !defined(_WIN32)
typedef struct scratch {
  char dir[1024];
  char exe[1100], noexec[1100], sub[1100];
} scratch;

static void scratch_make(scratch *s) {
  snprintf(s->dir, sizeof(s->dir), "%s/pk-which-XXXXXX", pkt_tmpdir());
  pkt_mkdtemp(s->dir);
  snprintf(s->exe, sizeof(s->exe), "%s/tool", s->dir);
  snprintf(s->noexec, sizeof(s->noexec), "%s/plain", s->dir);
  snprintf(s->sub, sizeof(s->sub), "%s/sub", s->dir);
  int fd = open(s->exe, O_WRONLY | O_CREAT, 0755);
  assert_true(fd >= 0);
  assert_int_equal(write(fd, "#!/bin/sh\necho ran\n", 19), 19);
  close(fd);
  fd = open(s->noexec, O_WRONLY | O_CREAT, 0644);
  assert_true(fd >= 0);
  close(fd);
  pkt_mkdir(s->sub);
}

static void scratch_remove(scratch *s) {
  unlink(s->exe);
  unlink(s->noexec);
  rmdir(s->sub);
  assert_int_equal(rmdir(s->dir), 0);
}

/* which agrees with a run of the same command: same file, or same error
 * and message. */
static void agree(pk_runner *r, pk_cmd *cmd, int want) {
  char *path = NULL, *msg = NULL;
  int rc = pk_cmd_which(cmd, &path, &msg);
  assert_int_equal(rc, want);
  pk_result *res = NULL;
  int run = pk_output(r, cmd, &res);
  if (want == 0) {
    assert_non_null(path);
    assert_null(msg);
    assert_int_equal(run, 0);
    assert_string_equal(pk_result_stdout(res, NULL), "ran\n");
  } else {
    assert_null(path);
    assert_non_null(msg);
    assert_int_equal(run, want);
    assert_string_equal(msg, pk_result_errmsg(res));
  }
  pk_result_free(res);
  pk_free(path);
  pk_free(msg);
}

#endif

static void which_resolves_as_a_run_would(void **state) {
  (void)state;
#if defined(_WIN32)
  print_message("skipped: the programs it looks up are #!/bin/sh scripts "
                "told apart by their execute bits (POSIX)\n");
  skip();
#else
  PKT_SKIP_UNLESS_REAL();
  scratch s;
  scratch_make(&s);
  pk_runner *r = pkt_runner(PK_MECH_AUTO, 0);
  pk_cmd *cmd;
  /* The child's PATH: a directory with a non-executable "plain" first. */
  char path_env[2300];
  snprintf(path_env, sizeof(path_env), "%s:%s", s.sub, s.dir);
  PKT_ASSERT_OK(pk_cmd_new_list(&cmd, "tool", NULL));
  PKT_ASSERT_OK(pk_cmd_env_set(cmd, "PATH", path_env));
  agree(r, cmd, 0);
  char *found = NULL;
  PKT_ASSERT_OK(pk_cmd_which(cmd, &found, NULL));
  assert_string_equal(found, s.exe);
  pk_free(found);
  pk_cmd_free(cmd);
  /* Not on the child's PATH (though perhaps on ours). */
  PKT_ASSERT_OK(pk_cmd_new_list(&cmd, "sh", NULL));
  PKT_ASSERT_OK(pk_cmd_env_set(cmd, "PATH", s.dir));
  agree(r, cmd, PK_ENOENT);
  pk_cmd_free(cmd);
  /* Found but not executable. */
  PKT_ASSERT_OK(pk_cmd_new_list(&cmd, "plain", NULL));
  PKT_ASSERT_OK(pk_cmd_env_set(cmd, "PATH", s.dir));
  agree(r, cmd, PK_EACCES);
  pk_cmd_free(cmd);
  /* A relative path is taken from the child's cwd. */
  PKT_ASSERT_OK(pk_cmd_new_list(&cmd, "./tool", NULL));
  PKT_ASSERT_OK(pk_cmd_set_cwd(cmd, s.dir));
  agree(r, cmd, 0);
  pk_cmd_free(cmd);
  PKT_ASSERT_OK(pk_cmd_new_list(&cmd, "./missing", NULL));
  PKT_ASSERT_OK(pk_cmd_set_cwd(cmd, s.dir));
  agree(r, cmd, PK_ENOENT);
  pk_cmd_free(cmd);
  assert_int_equal(pk_cmd_which(NULL, &found, NULL), PK_EINVAL);
  pk_runner_free(r);
  scratch_remove(&s);
#endif
}

int main(void) {
  pk_replace_allocator(junk_malloc, junk_realloc, junk_calloc, junk_free);
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(empty_capture_is_a_string_on_every_real_path),
      cmocka_unit_test(empty_capture_is_a_string_on_every_double),
      cmocka_unit_test(long_lines_scripted),
      cmocka_unit_test(long_lines_real),
      cmocka_unit_test(max_line_is_validated),
      cmocka_unit_test(failed_verbs_leave_no_output),
      cmocka_unit_test(constructors_build_the_same_command),
      cmocka_unit_test(which_resolves_as_a_run_would),
  };
  return cmocka_run_group_tests(tests, pkt_setup, NULL);
}
