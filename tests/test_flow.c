/* Flow control through the seam: pausing and resuming a run's output,
 * and closing a stream like a reader that went away, on the real runner
 * and on the scripted runner (the player), with the same observable
 * behaviour. */
#include "harness.h"

#include <pk/fakes.h>

#include <stdlib.h>
#include <string.h>

#define WATCHDOG_MS 20000

typedef struct flow {
  uv_loop_t loop;
  uv_timer_t timer, watchdog;
  pk_proc *p;
  uint64_t bytes, chunks;
  uint64_t at_pause; /* bytes when the pause took effect */
  uint64_t in_pause; /* bytes seen while paused (must stay 0) */
  bool paused, done, done_while_paused, stuck;
  bool close_first;  /* close stdout at the first chunk instead */
  uint64_t pause_ms; /* resume this long after pausing (0: never) */
} flow;

/* 300 ms into the pause: nothing may have arrived; then resume. */
static void on_timer(uv_timer_t *t) {
  flow *f = t->data;
  f->paused = false;
  PKT_ASSERT_OK(pk_proc_resume_output(f->p));
}

static void on_out(pk_proc *p, pk_stream s, const char *b, size_t n,
                   void *data) {
  (void)b, (void)s;
  flow *f = data;
  if (f->paused)
    f->in_pause += n;
  f->bytes += n;
  f->chunks++;
  if (f->chunks == 1 && f->close_first) {
    PKT_ASSERT_OK(pk_proc_close_output(p, PK_STDOUT));
    PKT_ASSERT_OK(pk_proc_close_output(p, PK_STDOUT)); /* idempotent */
  } else if (f->chunks == 1) {
    PKT_ASSERT_OK(pk_proc_pause_output(p));
    PKT_ASSERT_OK(pk_proc_pause_output(p)); /* level-triggered */
    f->paused = true;
    f->at_pause = f->bytes;
    if (f->pause_ms > 0)
      uv_timer_start(&f->timer, on_timer, f->pause_ms, 0);
  }
}

static void on_end(pk_proc *p, void *data) {
  (void)p;
  flow *f = data;
  f->done = true;
  f->done_while_paused = f->paused;
  uv_stop(&f->loop); /* UV_RUN_ONCE would otherwise wait for the watchdog */
}

static void on_watchdog(uv_timer_t *t) {
  flow *f = t->data;
  f->stuck = true;
  pk_proc_kill(f->p, PK_SIGKILL);
}

/* Run cmd on r; pause at the first chunk, resume `pause_ms` later (0:
 * never, let the command's timeout end it). */
static const pk_result *flow_run(flow *f, pk_runner *r, pk_cmd *cmd,
                                 uint64_t pause_ms) {
  assert_int_equal(uv_loop_init(&f->loop), 0);
  uv_timer_init(&f->loop, &f->timer);
  uv_timer_init(&f->loop, &f->watchdog);
  f->timer.data = f->watchdog.data = f;
  f->pause_ms = pause_ms;
  pk_start_opts o = {
      .loop = &f->loop, .on_output = on_out, .on_exit = on_end, .data = f};
  PKT_ASSERT_OK(pk_start(r, cmd, &o, &f->p));
  uv_timer_start(&f->watchdog, on_watchdog, WATCHDOG_MS, 0);
  while (!f->done)
    uv_run(&f->loop, UV_RUN_ONCE);
  assert_false(f->stuck);
  return pk_proc_result(f->p);
}

static void flow_end(flow *f) {
  pk_proc_free(f->p);
  uv_close((uv_handle_t *)&f->timer, NULL);
  uv_close((uv_handle_t *)&f->watchdog, NULL);
  uv_run(&f->loop, UV_RUN_DEFAULT);
  assert_int_equal(uv_loop_close(&f->loop), 0);
}

static pk_runner *scripted(pk_reply *rep) {
  pk_runner *r;
  PKT_ASSERT_OK(pk_scripted_new(&r));
  PKT_ASSERT_OK(pk_script_fallback(r, rep));
  return r;
}

/* Ten chunks of `n` bytes, `gap` ms apart, then exit 0. */
static pk_reply *chunks(size_t n, int64_t gap) {
  pk_reply *rep = pk_reply_ok("");
  char *buf = malloc(n);
  memset(buf, 'x', n);
  for (int i = 0; i < 10; i++)
    PKT_ASSERT_OK(pk_reply_chunk(rep, PK_STDOUT, gap, buf, n));
  free(buf);
  return rep;
}

/* ------------------------------------------------------------ pausing */

static void check_paused_run(const flow *f, const pk_result *res,
                             uint64_t total) {
  assert_int_equal(f->in_pause, 0);   /* nothing arrived while paused */
  assert_false(f->done_while_paused); /* nor did the end */
  assert_true(f->at_pause < total);
  assert_int_equal(f->bytes, total);
  assert_int_equal(pk_result_total_bytes(res, PK_STDOUT), total);
  assert_int_equal(pk_result_outcome(res), PK_OUTCOME_EXITED);
  assert_int_equal(pk_result_code(res), 0);
  assert_false(pk_result_output_incomplete(res));
}

static void pause_real(void **state) {
  (void)state;
  PKT_SKIP_UNLESS_REAL();
  pkt_snapshot snap;
  pkt_snapshot_take(&snap);
  pk_runner *r = pkt_runner(PK_MECH_AUTO, 0);
  pk_cmd *cmd = pkt_fixture("spew", "4194304", "1", NULL);
  flow f = {0};
  const pk_result *res = flow_run(&f, r, cmd, 300);
  check_paused_run(&f, res, 4194304);
  flow_end(&f);
  pk_cmd_free(cmd);
  pk_runner_free(r);
  pkt_snapshot_check(&snap);
}

static void pause_scripted(void **state) {
  (void)state;
  pk_runner *r = scripted(chunks(100, 1));
  pk_cmd *cmd;
  PKT_ASSERT_OK(pk_cmd_new_list(&cmd, "tool", NULL));
  flow f = {0};
  const pk_result *res = flow_run(&f, r, cmd, 300);
  check_paused_run(&f, res, 1000);
  assert_int_equal(f.at_pause, 100); /* one chunk, then the pause */
  flow_end(&f);
  pk_cmd_free(cmd);
  pk_runner_free(r);
}

/* The end of a child that exits while paused is reported after resuming,
 * with all its output. */
static void exit_while_paused(void **state) {
  (void)state;
#if defined(_WIN32)
  print_message("skipped: the child is a /bin/sh script (POSIX only)\n");
  skip();
#else
  PKT_SKIP_UNLESS_REAL();
  pk_runner *r = pkt_runner(PK_MECH_AUTO, 0);
  pk_cmd *cmd;
  PKT_ASSERT_OK(pk_cmd_new_list(&cmd, "/bin/sh", "-c",
                                "echo one; sleep 0.05; echo two", NULL));
  flow f = {0};
  const pk_result *res = flow_run(&f, r, cmd, 500);
  assert_false(f.done_while_paused);
  assert_string_equal(pk_result_stdout(res, NULL), "one\ntwo\n");
  assert_int_equal(pk_result_code(res), 0);
  flow_end(&f);
  pk_cmd_free(cmd);
  pk_runner_free(r);
#endif
}

/* A consumer that never resumes does not hold a run past its timeout:
 * on the real runner, and on the scripted one. */
static void check_timeout_while_paused(pk_runner *r, pk_cmd *cmd) {
  PKT_ASSERT_OK(pk_cmd_set_timeout(cmd, 300, 100, 0));
  flow f = {0};
  const pk_result *res = flow_run(&f, r, cmd, 0);
  assert_int_equal(pk_result_outcome(res), PK_OUTCOME_TIMED_OUT);
  assert_int_equal(pk_result_error(res), PK_ETIMEOUT);
  flow_end(&f);
  pk_cmd_free(cmd);
  pk_runner_free(r);
}

static void timeout_while_paused(void **state) {
  (void)state;
  PKT_SKIP_UNLESS_REAL();
  check_timeout_while_paused(pkt_runner(PK_MECH_AUTO, 0),
                             pkt_fixture("spew", "1000000000000", "1", NULL));
}

static void timeout_while_paused_scripted(void **state) {
  (void)state;
  check_timeout_while_paused(scripted(chunks(100, 50)),
                             pkt_fixture("tool", NULL));
}

/* ------------------------------------------------------------ closing */

static const pk_result *close_run(flow *f, pk_runner *r, pk_cmd *cmd) {
  memset(f, 0, sizeof(*f));
  f->close_first = true;
  return flow_run(f, r, cmd, 0);
}

static void close_real(void **state) {
  (void)state;
#if defined(_WIN32)
  print_message("skipped: a reader going away is SIGPIPE, and the second "
                "child a /bin/sh script (POSIX only)\n");
  skip();
#else
  PKT_SKIP_UNLESS_REAL();
  pkt_snapshot snap;
  pkt_snapshot_take(&snap);
  pk_runner *r = pkt_runner(PK_MECH_AUTO, 0);
  /* Default SIGPIPE: the child dies of it, as under `| head -1`. */
  pk_cmd *cmd = pkt_fixture("spew", "1000000000000", "1", NULL);
  flow f;
  const pk_result *res = close_run(&f, r, cmd);
  assert_int_equal(pk_result_outcome(res), PK_OUTCOME_SIGNALLED);
  assert_int_equal(pk_result_signal(res), PK_SIGPIPE);
  assert_int_equal(pk_result_total_bytes(res, PK_STDOUT), f.bytes);
  flow_end(&f);
  pk_cmd_free(cmd);
  /* SIGPIPE ignored: the write fails with EPIPE and the child decides
   * (the fixture exits 1). */
  char script[512];
  snprintf(script, sizeof(script), "trap '' PIPE; exec %s spew 1000000000000 1",
           PK_FIXTURE);
  PKT_ASSERT_OK(pk_cmd_new_list(&cmd, "/bin/sh", "-c", script, NULL));
  res = close_run(&f, r, cmd);
  assert_int_equal(pk_result_outcome(res), PK_OUTCOME_EXITED);
  assert_int_equal(pk_result_code(res), 1);
  flow_end(&f);
  pk_cmd_free(cmd);
  pk_runner_free(r);
  pkt_snapshot_check(&snap);
#endif
}

static void close_scripted(void **state) {
  (void)state;
  pk_cmd *cmd;
  PKT_ASSERT_OK(pk_cmd_new_list(&cmd, "tool", NULL));
  pk_runner *r = scripted(chunks(100, 0));
  flow f;
  const pk_result *res = close_run(&f, r, cmd);
  if (pkt_host_signals()) { /* the next write raises SIGPIPE */
    assert_int_equal(pk_result_outcome(res), PK_OUTCOME_SIGNALLED);
    assert_int_equal(pk_result_signal(res), PK_SIGPIPE);
  } else { /* writes fail and the child goes on, to its own end */
    assert_int_equal(pk_result_outcome(res), PK_OUTCOME_EXITED);
    assert_int_equal(pk_result_code(res), 0);
  }
  assert_int_equal(f.bytes, 100); /* nothing after the close */
  flow_end(&f);
  pk_runner_free(r);
  pk_reply *rep = chunks(100, 0);
  PKT_ASSERT_OK(pk_reply_ignore(rep, PK_SIGPIPE));
  r = scripted(rep);
  res = close_run(&f, r, cmd);
  assert_int_equal(pk_result_outcome(res), PK_OUTCOME_EXITED);
  assert_int_equal(pk_result_code(res), 0);
  assert_int_equal(f.bytes, 100);
  flow_end(&f);
  pk_runner_free(r);
  pk_cmd_free(cmd);
}

static void misuse(void **state) {
  (void)state;
  assert_int_equal(pk_proc_pause_output(NULL), PK_EINVAL);
  assert_int_equal(pk_proc_resume_output(NULL), PK_EINVAL);
  assert_int_equal(pk_proc_close_output(NULL, PK_STDOUT), PK_EINVAL);
  pk_runner *r = scripted(pk_reply_ok("hi\n"));
  pk_cmd *cmd;
  PKT_ASSERT_OK(pk_cmd_new_list(&cmd, "tool", NULL));
  pk_proc *p;
  PKT_ASSERT_OK(pk_start(r, cmd, NULL, &p));
  assert_int_equal(pk_proc_close_output(p, (pk_stream)0), PK_EINVAL);
  PKT_ASSERT_OK(pk_proc_wait(p));
  assert_int_equal(pk_proc_pause_output(p), PK_ESRCH);
  assert_int_equal(pk_proc_close_output(p, PK_STDERR), PK_ESRCH);
  pk_proc_free(p);
  pk_cmd_free(cmd);
  pk_runner_free(r);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(pause_real),
      cmocka_unit_test(pause_scripted),
      cmocka_unit_test(exit_while_paused),
      cmocka_unit_test(timeout_while_paused),
      cmocka_unit_test(timeout_while_paused_scripted),
      cmocka_unit_test(close_real),
      cmocka_unit_test(close_scripted),
      cmocka_unit_test(misuse),
  };
  return cmocka_run_group_tests(tests, pkt_setup, NULL);
}
