/* Capture limits and big streams (R3), line counting, and large stdin into
 * children that do not read it (R4). */
#include "harness.h"

#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define KIB ((size_t)1024)
#define MIB (1024 * KIB)
#define GIB (1024 * MIB)

static pk_mechanism mechs[4];
static int nmechs;

/* ------------------------------------------------------------ helpers */

/* Byte i of the fixture's spew pattern: every 64th byte is '\n'. */
static char pattern_at(uint64_t i) {
  unsigned col = (unsigned)(i % 64);
  return col == 63 ? '\n' : (char)('a' + col % 26);
}

/* Index of the first byte of buf that differs from the pattern starting
 * at offset `from`, or -1 when all match. */
static long pattern_mismatch(const char *buf, size_t len, uint64_t from) {
  for (size_t i = 0; i < len; i++)
    if (buf[i] != pattern_at(from + i))
      return (long)i;
  return -1;
}

static void assert_pattern(const char *buf, size_t len, uint64_t from,
                           const char *what) {
  long bad = pattern_mismatch(buf, len, from);
  if (bad >= 0)
    fail_msg("%s: byte %ld (stream offset %llu) is 0x%02x, want 0x%02x", what,
             bad, (unsigned long long)(from + (uint64_t)bad),
             (unsigned)(unsigned char)buf[bad],
             (unsigned)(unsigned char)pattern_at(from + (uint64_t)bad));
}

/* A field of /proc/self/status in kB ("VmHWM", "VmRSS"). */
static long status_kb(const char *key) {
  FILE *f = fopen("/proc/self/status", "re");
  assert_non_null(f);
  char line[256];
  long v = -1;
  size_t klen = strlen(key);
  while (fgets(line, sizeof(line), f) != NULL)
    if (strncmp(line, key, klen) == 0 && line[klen] == ':')
      v = atol(line + klen + 1);
  fclose(f);
  assert_true(v >= 0);
  return v;
}

/* Reset the peak-RSS mark to the current RSS (kernel >= 4.0). */
static void reset_hwm(void) {
  int fd = open("/proc/self/clear_refs", O_WRONLY | O_CLOEXEC);
  assert_true(fd >= 0);
  assert_int_equal(write(fd, "5", 1), 1);
  close(fd);
}

static double secs_since(uint64_t t0_ms) {
  return (double)(pkt_now_ms() - t0_ms) / 1000.0;
}

/* ------------------------------------- R3: 1 GiB on both streams, capped */

static void big_capped(pk_limit_policy policy, const char *name) {
  const uint64_t total = GIB;
  const size_t cap = MIB;
  pkt_snapshot snap;
  pkt_snapshot_take(&snap);
  pk_runner *r = pkt_runner(PK_MECH_AUTO, 0);
  pk_cmd *cmd = pkt_fixture("spew", "1073741824", "b", NULL);
  PKT_ASSERT_OK(pk_cmd_set_capture_limit(cmd, policy, cap));
  pk_result *res = NULL;

  reset_hwm();
  long hwm_before = status_kb("VmHWM");
  uint64_t t0 = pkt_now_ms();
  PKT_ASSERT_OK(pk_output(r, cmd, &res));
  double secs = secs_since(t0);
  long growth_kb = status_kb("VmHWM") - hwm_before;

  assert_int_equal(pk_result_outcome(res), PK_OUTCOME_EXITED);
  assert_int_equal(pk_result_code(res), 0);
  assert_int_equal(pk_result_error(res), 0);
  assert_true(pk_result_truncated(res));
  assert_false(pk_result_output_incomplete(res));
  for (int s = PK_STDOUT; s <= PK_STDERR; s++) {
    const char *what = s == PK_STDOUT ? "stdout" : "stderr";
    assert_int_equal(pk_result_total_bytes(res, (pk_stream)s), total);
    assert_int_equal(pk_result_total_lines(res, (pk_stream)s), total / 64);
    size_t len;
    const char *buf = s == PK_STDOUT ? pk_result_stdout(res, &len)
                                     : pk_result_stderr(res, &len);
    assert_int_equal(len, cap);
    assert_pattern(buf, len, policy == PK_LIMIT_TAIL ? total - cap : 0, what);
    if (policy == PK_LIMIT_TAIL)
      assert_int_equal(buf[len - 1], '\n'); /* the very last byte written */
    else
      assert_int_equal(buf[0], 'a');
  }
  print_message("R3 %s: 2 x 1 GiB in %.2f s (%.0f MiB/s) on %s, peak RSS "
                "growth %ld KiB (limit %zu KiB)\n",
                name, secs, 2048.0 / secs,
                pk_mechanism_name(pk_result_mechanism(res)), growth_kb,
                (2 * cap + 8 * MIB) / KIB);
  if ((size_t)growth_kb * KIB >= 2 * cap + 8 * MIB)
    fail_msg("peak RSS grew by %ld KiB, limit %zu KiB", growth_kb,
             (2 * cap + 8 * MIB) / KIB);
  pk_result_free(res);
  pk_cmd_free(cmd);
  pk_runner_free(r);
  pkt_snapshot_check(&snap);
}

static void tail_1gib_both_streams(void **state) {
  (void)state;
  big_capped(PK_LIMIT_TAIL, "tail");
}

static void head_1gib_both_streams(void **state) {
  (void)state;
  big_capped(PK_LIMIT_HEAD, "head");
}

/* PK_LIMIT_FAIL: the tree is killed as soon as a stream passes the limit;
 * a 1 TiB spew would take minutes if it ran to completion. */
static void fail_policy_kills_early(void **state) {
  (void)state;
  const size_t cap = MIB;
  for (int m = 0; m < nmechs; m++) {
    pkt_snapshot snap;
    pkt_snapshot_take(&snap);
    pk_runner *r = pkt_runner(mechs[m], 0);
    pk_cmd *cmd = pkt_fixture("spew", "1099511627776", "b", NULL);
    PKT_ASSERT_OK(pk_cmd_set_capture_limit(cmd, PK_LIMIT_FAIL, cap));
    pk_result *res = NULL;
    uint64_t t0 = pkt_now_ms();
    assert_int_equal(pk_output(r, cmd, &res), PK_ETOOBIG);
    double secs = secs_since(t0);
    assert_non_null(res);
    assert_int_equal(pk_result_error(res), PK_ETOOBIG);
    assert_int_equal(pk_result_outcome(res), PK_OUTCOME_SIGNALLED);
    assert_int_equal(pk_result_signal(res), SIGKILL);
    assert_true(pk_result_truncated(res));
    assert_non_null(strstr(pk_result_errmsg(res), "1048576-byte limit"));
    bool over = false;
    for (int s = PK_STDOUT; s <= PK_STDERR; s++) {
      uint64_t tb = pk_result_total_bytes(res, (pk_stream)s);
      size_t len;
      const char *buf = s == PK_STDOUT ? pk_result_stdout(res, &len)
                                       : pk_result_stderr(res, &len);
      over |= tb > cap;
      assert_true(tb < 64 * MIB); /* killed promptly, not run on */
      assert_int_equal(len, tb < cap ? tb : cap);
      assert_pattern(buf, len, 0, s == PK_STDOUT ? "stdout" : "stderr");
    }
    assert_true(over);
    print_message("R3 fail on %s: killed after %llu+%llu bytes in %.2f s\n",
                  pk_mechanism_name(mechs[m]),
                  (unsigned long long)pk_result_total_bytes(res, PK_STDOUT),
                  (unsigned long long)pk_result_total_bytes(res, PK_STDERR),
                  secs);
    assert_true(secs < 10.0);
    pk_result_free(res);
    pk_cmd_free(cmd);
    pk_runner_free(r);
    pkt_snapshot_check(&snap);
  }
}

static void none_policy_captures_all(void **state) {
  (void)state;
  const uint64_t total = 32 * MIB;
  pkt_snapshot snap;
  pkt_snapshot_take(&snap);
  pk_runner *r = pkt_runner(PK_MECH_AUTO, 0);
  pk_cmd *cmd = pkt_fixture("spew", "33554432", "b", NULL);
  PKT_ASSERT_OK(pk_cmd_set_capture_limit(cmd, PK_LIMIT_NONE, 0));
  pk_result *res = NULL;
  PKT_ASSERT_OK(pk_output(r, cmd, &res));
  assert_int_equal(pk_result_code(res), 0);
  assert_false(pk_result_truncated(res));
  size_t olen, elen;
  const char *out = pk_result_stdout(res, &olen);
  const char *err = pk_result_stderr(res, &elen);
  assert_int_equal(olen, total);
  assert_int_equal(elen, total);
  assert_pattern(out, olen, 0, "stdout");
  assert_pattern(err, elen, 0, "stderr");
  assert_int_equal(out[olen], '\0');
  assert_int_equal(pk_result_total_lines(res, PK_STDOUT), total / 64);
  assert_int_equal(pk_result_total_lines(res, PK_STDERR), total / 64);
  pk_result_free(res);
  pk_cmd_free(cmd);
  pk_runner_free(r);
  pkt_snapshot_check(&snap);
}

/* Each policy at the limit (nothing dropped) and one byte past it. An
 * unaligned limit makes the tail ring wrap mid-read. */
static void limit_boundaries(void **state) {
  (void)state;
  static const struct {
    pk_limit_policy policy;
    size_t limit;
  } cases[] = {
      {PK_LIMIT_HEAD, 65536},  {PK_LIMIT_TAIL, 65536},  {PK_LIMIT_FAIL, 65536},
      {PK_LIMIT_HEAD, 100003}, {PK_LIMIT_TAIL, 100003}, {PK_LIMIT_FAIL, 100003},
  };
  pkt_snapshot snap;
  pkt_snapshot_take(&snap);
  pk_runner *r = pkt_runner(PK_MECH_AUTO, 0);
  for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
    size_t limit = cases[i].limit;
    pk_limit_policy pol = cases[i].policy;
    size_t sizes[] = {limit - 1, limit, limit + 1, 3 * limit + 17};
    for (size_t k = 0; k < 4; k++) {
      char n[32];
      snprintf(n, sizeof(n), "%zu", sizes[k]);
      pk_cmd *cmd = pkt_fixture("spew", n, "1", NULL);
      PKT_ASSERT_OK(pk_cmd_set_capture_limit(cmd, pol, limit));
      pk_result *res = NULL;
      int rc = pk_output(r, cmd, &res);
      bool over = sizes[k] > limit;
      size_t len;
      const char *out = pk_result_stdout(res, &len);
      if (pol == PK_LIMIT_FAIL && over) {
        assert_int_equal(rc, PK_ETOOBIG);
        assert_int_equal(pk_result_error(res), PK_ETOOBIG);
      } else {
        assert_int_equal(rc, 0);
        assert_int_equal(pk_result_code(res), 0);
      }
      if (pol != PK_LIMIT_FAIL || !over)
        assert_int_equal(pk_result_total_bytes(res, PK_STDOUT), sizes[k]);
      assert_true(pk_result_truncated(res) == over);
      size_t want = over ? limit : sizes[k];
      assert_int_equal(len, want);
      uint64_t from = pol == PK_LIMIT_TAIL ? sizes[k] - want : 0;
      assert_pattern(out, len, from, "stdout");
      pk_result_free(res);
      pk_cmd_free(cmd);
    }
  }
  pk_runner_free(r);
  pkt_snapshot_check(&snap);
}

/* ------------------------------------------------------- line counting */

static void line_counts(void **state) {
  (void)state;
  static const struct {
    const char *in;
    size_t len;
    uint64_t lines;
  } cases[] = {
      {"", 0, 0},     {"\n", 1, 1},     {"abc", 3, 1},
      {"a\nb", 3, 2}, {"a\nb\n", 4, 2}, {"\n\n\n", 3, 3},
      {"a\0b", 3, 1}, {"\n\nx", 3, 3},  {"x\n\n", 3, 2},
  };
  pkt_snapshot snap;
  pkt_snapshot_take(&snap);
  pk_runner *r = pkt_runner(PK_MECH_AUTO, 0);
  pk_cmd *cmd = pkt_fixture("cat", NULL);
  for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
    PKT_ASSERT_OK(pk_cmd_set_stdin_bytes(cmd, cases[i].in, cases[i].len));
    pk_result *res = NULL;
    PKT_ASSERT_OK(pk_output(r, cmd, &res));
    assert_int_equal(pk_result_total_bytes(res, PK_STDOUT), cases[i].len);
    if (pk_result_total_lines(res, PK_STDOUT) != cases[i].lines)
      fail_msg("case %zu: %llu lines, want %llu", i,
               (unsigned long long)pk_result_total_lines(res, PK_STDOUT),
               (unsigned long long)cases[i].lines);
    assert_int_equal(pk_result_total_lines(res, PK_STDERR), 0);
    pk_result_free(res);
  }
  pk_cmd_free(cmd);

  /* The spew pattern: 1000 bytes = 15 full lines + a 40-byte tail, on
   * stderr only; counted in full even when the capture keeps 10 bytes. */
  cmd = pkt_fixture("spew", "1000", "2", NULL);
  PKT_ASSERT_OK(pk_cmd_set_capture_limit(cmd, PK_LIMIT_HEAD, 10));
  pk_result *res = NULL;
  PKT_ASSERT_OK(pk_output(r, cmd, &res));
  assert_int_equal(pk_result_total_lines(res, PK_STDERR), 16);
  assert_int_equal(pk_result_total_bytes(res, PK_STDERR), 1000);
  assert_int_equal(pk_result_total_lines(res, PK_STDOUT), 0);
  assert_int_equal(pk_result_total_bytes(res, PK_STDOUT), 0);
  assert_true(pk_result_truncated(res));
  pk_result_free(res);
  pk_cmd_free(cmd);

  /* Output that ends in '\n' exactly at a pipe-read boundary. */
  cmd = pkt_fixture("spew", "131072", "1", NULL);
  PKT_ASSERT_OK(pk_output(r, cmd, &res));
  assert_int_equal(pk_result_total_lines(res, PK_STDOUT), 131072 / 64);
  pk_result_free(res);
  pk_cmd_free(cmd);
  pk_runner_free(r);
  pkt_snapshot_check(&snap);
}

/* ------------------------------------------ R4: big stdin, early exits */

/* Run body with SIGPIPE at its default disposition and unblocked, so a
 * SIGPIPE leaking out of pk kills this process. */
typedef struct sigpipe_state {
  struct sigaction old_act;
  sigset_t old_mask;
} sigpipe_state;

static void sigpipe_default(sigpipe_state *st) {
  struct sigaction sa;
  memset(&sa, 0, sizeof(sa));
  sa.sa_handler = SIG_DFL;
  sigemptyset(&sa.sa_mask);
  assert_int_equal(sigaction(SIGPIPE, &sa, &st->old_act), 0);
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGPIPE);
  assert_int_equal(pthread_sigmask(SIG_UNBLOCK, &set, &st->old_mask), 0);
}

static void sigpipe_restore(sigpipe_state *st) {
  sigset_t pending;
  sigpending(&pending);
  assert_false(sigismember(&pending, SIGPIPE));
  pthread_sigmask(SIG_SETMASK, &st->old_mask, NULL);
  sigaction(SIGPIPE, &st->old_act, NULL);
}

static char *big_stdin(size_t len) {
  char *buf = malloc(len);
  assert_non_null(buf);
  uint64_t x = 0x9e3779b97f4a7c15u; /* xorshift64: every byte value */
  for (size_t i = 0; i < len; i++) {
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    buf[i] = (char)(x >> 32);
  }
  return buf;
}

static void stdin_into_child_that_never_reads(void **state) {
  (void)state;
  const size_t len = 64 * MIB;
  char *data = big_stdin(len);
  sigpipe_state sp;
  sigpipe_default(&sp);
  static const char *const delays[] = {"0", "0.1"};
  for (int m = 0; m < nmechs; m++) {
    for (size_t d = 0; d < 2; d++) {
      pkt_snapshot snap;
      pkt_snapshot_take(&snap);
      pk_runner *r = pkt_runner(mechs[m], 0);
      pk_cmd *cmd = pkt_fixture("noread", delays[d], NULL);
      PKT_ASSERT_OK(pk_cmd_set_stdin_bytes(cmd, data, len));
      pk_result *res = NULL;
      uint64_t t0 = pkt_now_ms();
      PKT_ASSERT_OK(pk_output(r, cmd, &res));
      double secs = secs_since(t0);
      assert_int_equal(pk_result_outcome(res), PK_OUTCOME_EXITED);
      assert_int_equal(pk_result_code(res), 7);
      assert_int_equal(pk_result_error(res), 0);
      assert_string_equal(pk_result_errmsg(res), "");
      assert_true(secs < 60.0); /* no hang; 10 s was passed on a loaded host */
      /* The other verbs agree: exit 7 is the answer, not a pipe error. */
      int code = -1;
      PKT_ASSERT_OK(pk_exit_code(r, cmd, &code, NULL));
      assert_int_equal(code, 7);
      assert_int_equal(pk_checked(r, cmd, NULL), PK_EEXIT);
      pk_result_free(res);
      pk_cmd_free(cmd);
      pk_runner_free(r);
      pkt_snapshot_check(&snap);
    }
  }
  sigpipe_restore(&sp);
  free(data);
}

static void stdin_64mib_counted(void **state) {
  (void)state;
  const size_t len = 64 * MIB;
  char *data = big_stdin(len);
  sigpipe_state sp;
  sigpipe_default(&sp);
  for (int m = 0; m < nmechs; m++) {
    pkt_snapshot snap;
    pkt_snapshot_take(&snap);
    pk_runner *r = pkt_runner(mechs[m], 0);
    pk_cmd *cmd = pkt_fixture("stdin-len", NULL);
    PKT_ASSERT_OK(pk_cmd_set_stdin_bytes(cmd, data, len));
    char *text = NULL;
    PKT_ASSERT_OK(pk_run(r, cmd, &text, NULL));
    char want[32];
    snprintf(want, sizeof(want), "%zu", len);
    assert_string_equal(text, want);
    pk_free(text);
    pk_cmd_free(cmd);
    pk_runner_free(r);
    pkt_snapshot_check(&snap);
  }
  sigpipe_restore(&sp);
  free(data);
}

static void cat_echoes_8mib_binary(void **state) {
  (void)state;
  const size_t len = 8 * MIB + 13; /* not a multiple of any buffer size */
  char *data = big_stdin(len);
  sigpipe_state sp;
  sigpipe_default(&sp);
  for (int m = 0; m < nmechs; m++) {
    pkt_snapshot snap;
    pkt_snapshot_take(&snap);
    pk_runner *r = pkt_runner(mechs[m], 0);
    pk_cmd *cmd = pkt_fixture("cat", NULL);
    PKT_ASSERT_OK(pk_cmd_set_stdin_bytes(cmd, data, len));
    pk_result *res = NULL;
    PKT_ASSERT_OK(pk_output(r, cmd, &res));
    assert_int_equal(pk_result_code(res), 0);
    size_t olen;
    const char *out = pk_result_stdout(res, &olen);
    assert_int_equal(olen, len);
    assert_int_equal(pk_result_total_bytes(res, PK_STDOUT), len);
    assert_true(memcmp(out, data, len) == 0);
    assert_false(pk_result_truncated(res));
    pk_result_free(res);
    pk_cmd_free(cmd);
    pk_runner_free(r);
    pkt_snapshot_check(&snap);
  }
  sigpipe_restore(&sp);
  free(data);
}

int main(void) {
  nmechs = pkt_mechanisms(mechs);
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(tail_1gib_both_streams),
      cmocka_unit_test(head_1gib_both_streams),
      cmocka_unit_test(fail_policy_kills_early),
      cmocka_unit_test(none_policy_captures_all),
      cmocka_unit_test(limit_boundaries),
      cmocka_unit_test(line_counts),
      cmocka_unit_test(stdin_into_child_that_never_reads),
      cmocka_unit_test(stdin_64mib_counted),
      cmocka_unit_test(cat_echoes_8mib_binary),
  };
  return cmocka_run_group_tests(tests, pkt_setup, NULL);
}
