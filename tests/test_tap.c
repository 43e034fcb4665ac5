/* The seam's tap (pk_events_tap): a decorator sees the raw output the
 * inner runner emitted, the final result the core decided, and the end of
 * the run on every path, without re-implementing the pump. */
#include "harness.h"

#include <pk/fakes.h>
#include <pk/runner_impl.h>

#include <signal.h>
#include <string.h>

typedef struct seen {
  char out[64];
  size_t nout;
  size_t results, dones;
  pk_outcome outcome;
  int error;
  bool done_after_result;
} seen;

typedef struct deco {
  pk_runner base;
  pk_runner *inner;
  seen *seen;
  int taps; /* attach this many taps */
} deco;

static void t_output(void *data, pk_stream s, const char *buf, size_t len) {
  seen *w = data;
  assert_int_equal(s, PK_STDOUT);
  assert_true(w->nout + len < sizeof(w->out));
  memcpy(w->out + w->nout, buf, len);
  w->nout += len;
}

static void t_result(void *data, const pk_cmd *cmd, const pk_result *r) {
  seen *w = data;
  assert_non_null(cmd);
  assert_string_equal(pk_cmd_program(cmd), "tool");
  w->results++;
  w->outcome = pk_result_outcome(r);
  w->error = pk_result_error(r);
}

static void t_done(void *data) {
  seen *w = data;
  w->dones++;
  w->done_after_result = w->results == 1;
}

static const pk_tap tap = {t_output, t_result, t_done};

static int d_start(pk_runner *self, const pk_cmd *cmd, uv_loop_t *loop,
                   pk_events *ev, pk_exec **out, pk_exit_info *fail) {
  deco *d = (deco *)self;
  for (int i = 0; i < d->taps; i++) {
    int rc = pk_events_tap(ev, &tap, d->seen);
    if (rc != 0)
      return rc;
  }
  return d->inner->vt->start(d->inner, cmd, loop, ev, out, fail);
}

static void d_destroy(pk_runner *self) { (void)self; }

static const pk_runner_vtable deco_vt = {
    .name = "deco", .start = d_start, .destroy = d_destroy};

typedef struct fixture {
  pk_runner *scripted;
  deco d;
  seen w;
} fixture;

static int setup(void **state) {
  fixture *f = test_calloc(1, sizeof(*f));
  PKT_ASSERT_OK(pk_scripted_new(&f->scripted));
  f->d.base.vt = &deco_vt;
  f->d.inner = f->scripted;
  f->d.seen = &f->w;
  f->d.taps = 1;
  *state = f;
  return 0;
}

static int teardown(void **state) {
  fixture *f = *state;
  pk_runner_free(f->scripted);
  test_free(f);
  return 0;
}

/* The tap sees every byte even past a truncating capture limit, and the
 * result after the core's decision (here: too big). */
static void raw_stream_and_final_result(void **state) {
  fixture *f = *state;
  pk_reply *r = pk_reply_ok("0123456789abcdef");
  PKT_ASSERT_OK(pk_script_program(f->scripted, "tool", r));
  pk_cmd *cmd;
  PKT_ASSERT_OK(pk_cmd_new("tool", &cmd));
  PKT_ASSERT_OK(pk_cmd_set_capture_limit(cmd, PK_LIMIT_FAIL, 4));
  pk_result *res = NULL;
  assert_int_equal(pk_output(&f->d.base, cmd, &res), PK_ETOOBIG);
  assert_int_equal(pk_result_error(res), PK_ETOOBIG);
  assert_int_equal(f->w.nout, 16);
  assert_memory_equal(f->w.out, "0123456789abcdef", 16);
  assert_int_equal(f->w.results, 1);
  assert_int_equal(f->w.error, PK_ETOOBIG);
  assert_int_equal(f->w.dones, 1);
  assert_true(f->w.done_after_result);
  pk_result_free(res);
  pk_cmd_free(cmd);
}

/* A timeout the core decided after the runner's own end is what the
 * result hook reports. */
static void sees_timeout(void **state) {
  fixture *f = *state;
  PKT_ASSERT_OK(pk_script_program(f->scripted, "tool", pk_reply_pending()));
  pk_cmd *cmd;
  PKT_ASSERT_OK(pk_cmd_new("tool", &cmd));
  PKT_ASSERT_OK(pk_cmd_set_timeout(cmd, 50, 0, SIGTERM));
  pk_result *res = NULL;
  pk_output(&f->d.base, cmd, &res);
  assert_int_equal(pk_result_outcome(res), PK_OUTCOME_TIMED_OUT);
  assert_int_equal(f->w.outcome, PK_OUTCOME_TIMED_OUT);
  assert_int_equal(f->w.results, 1);
  assert_int_equal(f->w.dones, 1);
  pk_result_free(res);
  pk_cmd_free(cmd);
}

/* A start that fails still reports its result, then done. */
static void sees_spawn_error(void **state) {
  fixture *f = *state;
  PKT_ASSERT_OK(pk_script_program(f->scripted, "tool", pk_reply_not_found()));
  pk_cmd *cmd;
  PKT_ASSERT_OK(pk_cmd_new("tool", &cmd));
  pk_result *res = NULL;
  assert_int_equal(pk_output(&f->d.base, cmd, &res), PK_ENOENT);
  assert_int_equal(f->w.results, 1);
  assert_int_equal(f->w.error, PK_ENOENT);
  assert_int_equal(f->w.outcome, PK_OUTCOME_NONE);
  assert_int_equal(f->w.dones, 1);
  pk_result_free(res);
  pk_cmd_free(cmd);
}

/* Freed before it ended: no result, but done. */
static void freed_while_running(void **state) {
  fixture *f = *state;
  PKT_ASSERT_OK(pk_script_program(f->scripted, "tool", pk_reply_pending()));
  pk_cmd *cmd;
  PKT_ASSERT_OK(pk_cmd_new("tool", &cmd));
  pk_proc *p;
  PKT_ASSERT_OK(pk_start(&f->d.base, cmd, NULL, &p));
  pk_proc_free(p);
  assert_int_equal(f->w.results, 0);
  assert_int_equal(f->w.dones, 1);
  pk_cmd_free(cmd);
}

/* Four taps fit; a fifth is PK_ELIMIT, reported as the start's error. */
static void tap_limit(void **state) {
  fixture *f = *state;
  PKT_ASSERT_OK(pk_script_program(f->scripted, "tool", pk_reply_ok("x")));
  pk_cmd *cmd;
  PKT_ASSERT_OK(pk_cmd_new("tool", &cmd));
  f->d.taps = 4;
  pk_result *res = NULL;
  PKT_ASSERT_OK(pk_output(&f->d.base, cmd, &res));
  assert_int_equal(f->w.results, 4);
  assert_int_equal(f->w.dones, 4);
  assert_int_equal(f->w.nout, 4);
  pk_result_free(res);
  memset(&f->w, 0, sizeof(f->w));
  f->d.taps = 5;
  assert_int_equal(pk_output(&f->d.base, cmd, &res), PK_ELIMIT);
  pk_result_free(res);
  assert_int_equal(pk_events_tap(NULL, &tap, NULL), PK_EINVAL);
  pk_cmd_free(cmd);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup_teardown(raw_stream_and_final_result, setup,
                                      teardown),
      cmocka_unit_test_setup_teardown(sees_timeout, setup, teardown),
      cmocka_unit_test_setup_teardown(sees_spawn_error, setup, teardown),
      cmocka_unit_test_setup_teardown(freed_while_running, setup, teardown),
      cmocka_unit_test_setup_teardown(tap_limit, setup, teardown),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
