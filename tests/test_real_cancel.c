/* pk_proc_cancel from another thread ends a blocking wait promptly and
 * takes the whole tree down. */
#include "harness.h"

#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

typedef struct canceller {
  pk_proc *p;
  int rc;
} canceller;

static void *cancel_later(void *arg) {
  canceller *c = arg;
  usleep(100 * 1000); /* let the tree come up; the assertion is on the end */
  c->rc = pk_proc_cancel(c->p);
  return NULL;
}

static void cancel_from_other_thread(void **state) {
  (void)state;
  pk_mechanism mechs[4];
  int n = pkt_mechanisms(mechs);
  for (int i = 0; i < n; i++) {
    pkt_snapshot snap;
    pkt_snapshot_take(&snap);
    pk_runner *r = pkt_runner(mechs[i], 0);
    pk_cmd *cmd = pkt_fixture("tree", "2", "2", NULL);
    pk_proc *p = NULL;
    PKT_ASSERT_OK(pk_start(r, cmd, NULL, &p));
    canceller c = {p, -1};
    pthread_t t;
    uint64_t t0 = pkt_now_ms();
    assert_int_equal(pthread_create(&t, NULL, cancel_later, &c), 0);
    assert_int_equal(pk_proc_wait(p), PK_ECANCELED);
    uint64_t ms = pkt_now_ms() - t0;
    pthread_join(t, NULL);
    assert_int_equal(c.rc, 0);
    const pk_result *res = pk_proc_result(p);
    assert_int_equal(pk_result_outcome(res), PK_OUTCOME_CANCELLED);
    assert_int_equal(pk_result_signal(res), SIGKILL);
    assert_true(ms < 5000); /* the tree pauses forever: only cancel ends it */
    print_message("%s: cancelled after %llu ms\n", pk_mechanism_name(mechs[i]),
                  (unsigned long long)ms);
    pk_proc_free(p);
    pk_cmd_free(cmd);
    pk_runner_free(r);
    pkt_snapshot_check(&snap);
  }
}

/* Cancel after the end is harmless; the result stays "exited". */
static void cancel_after_end(void **state) {
  (void)state;
  pk_runner *r = pkt_runner(PK_MECH_AUTO, 0);
  pk_cmd *cmd = pkt_fixture("exit", "0", NULL);
  pk_proc *p = NULL;
  PKT_ASSERT_OK(pk_start(r, cmd, NULL, &p));
  PKT_ASSERT_OK(pk_proc_wait(p));
  PKT_ASSERT_OK(pk_proc_cancel(p));
  assert_int_equal(pk_result_outcome(pk_proc_result(p)), PK_OUTCOME_EXITED);
  assert_int_equal(pk_proc_cancel(NULL), PK_EINVAL);
  pk_proc_free(p);
  pk_cmd_free(cmd);
  pk_runner_free(r);
}

typedef struct esc_seen {
  pid_t escapee;
  bool parent;
} esc_seen;

static void esc_line(pk_proc *p, pk_stream s, const char *line, size_t len,
                     void *data) {
  (void)p, (void)s;
  esc_seen *e = data;
  if (len > 8 && memcmp(line, "escaped ", 8) == 0)
    e->escapee = (pid_t)atoi(line + 8);
  if (len > 7 && memcmp(line, "parent ", 7) == 0)
    e->parent = true;
}

/* Freeing a running process-group run also kills a descendant that left
 * the group with setsid, and reports it; with and without pidfds. */
static void free_kills_setsid_escapee(void **state) {
  (void)state;
  const unsigned variants[] = {0, PK_NO_PIDFD | PK_NO_CLONE3};
  for (size_t v = 0; v < 2; v++) {
    pkt_snapshot snap;
    pkt_snapshot_take(&snap);
    pk_runner *r = pkt_runner(PK_MECH_PROCESS_GROUP, variants[v]);
    pk_cmd *cmd = pkt_fixture("setsid-escape", "60", NULL);
    uv_loop_t loop;
    assert_int_equal(uv_loop_init(&loop), 0);
    esc_seen seen = {0, false};
    pk_start_opts o = {.loop = &loop, .on_line = esc_line, .data = &seen};
    pk_proc *p = NULL;
    PKT_ASSERT_OK(pk_start(r, cmd, &o, &p));
    uint64_t deadline = pkt_now_ms() + 10000;
    while (!seen.parent && pkt_now_ms() < deadline)
      uv_run(&loop, UV_RUN_ONCE);
    assert_true(seen.parent);
    assert_true(seen.escapee > 0);
    assert_true(pkt_pid_alive(seen.escapee));
    PKT_ASSERT_OK(pk_proc_kill(p, SIGKILL));
    uv_run(&loop, UV_RUN_DEFAULT);
    assert_true(pk_proc_done(p));
    assert_int_equal(pk_result_escapees(pk_proc_result(p)), 1);
    assert_false(pkt_pid_alive(seen.escapee));
    pk_proc_free(p);
    uv_run(&loop, UV_RUN_DEFAULT);
    assert_int_equal(uv_loop_close(&loop), 0);
    pk_cmd_free(cmd);
    pk_runner_free(r);
    pkt_snapshot_check(&snap);
  }
}

/* Freeing the handle from an output callback while pk reads what was
 * left in the pipes after the child was gone (the consumer paused until
 * then, no drain grace): nothing more reaches the callbacks, no exit
 * event, the tree and every fd are gone, and the loop ends. */
typedef struct free_in_cb {
  int outputs, exits;
  bool paused, freed;
  int pipe[2]; /* opened right after the free: takes a number pk let go */
} free_in_cb;

static void pause_then_free(pk_proc *p, pk_stream s, const char *buf,
                            size_t len, void *data) {
  (void)s, (void)buf, (void)len;
  free_in_cb *f = data;
  assert_false(f->freed); /* nothing after the free */
  f->outputs++;
  if (!f->paused) {
    f->paused = true;
    PKT_ASSERT_OK(pk_proc_pause_output(p));
  } else {
    f->freed = true;
    pk_proc_free(p);
    /* the caller goes on with its own fds: one of the numbers the run
     * used, and a byte in it that pk must not read */
    assert_int_equal(pipe(f->pipe), 0);
    assert_int_equal(fcntl(f->pipe[0], F_SETFL, O_NONBLOCK), 0);
    assert_int_equal(write(f->pipe[1], "x", 1), 1);
  }
}

static void count_exit(pk_proc *p, void *data) {
  (void)p;
  ((free_in_cb *)data)->exits++;
}

static void free_from_output_callback_at_the_end(void **state) {
  (void)state;
  pk_mechanism mechs[4];
  int n = pkt_mechanisms(mechs);
  for (int i = 0; i < n; i++) {
    for (int round = 0; round < 5; round++) {
      pkt_snapshot snap;
      pkt_snapshot_take(&snap);
      pk_runner *r = pkt_runner(mechs[i], 0);
      pk_cmd *cmd = pkt_fixture("spew", "40000", "b", NULL);
      PKT_ASSERT_OK(pk_cmd_set_drain(cmd, 0));
      uv_loop_t loop;
      assert_int_equal(uv_loop_init(&loop), 0);
      free_in_cb f = {0};
      pk_start_opts o = {.loop = &loop,
                         .on_output = pause_then_free,
                         .on_exit = count_exit,
                         .data = &f};
      pk_proc *p = NULL;
      PKT_ASSERT_OK(pk_start(r, cmd, &o, &p));
      while (!f.paused)
        uv_run(&loop, UV_RUN_ONCE);
      /* the child has written everything and exited (a zombie: pk has
       * not reaped it yet) */
      assert_int_equal(pkt_wait_state(pk_proc_pid(p), 'Z', 30000), 'Z');
      PKT_ASSERT_OK(pk_proc_resume_output(p));
      while (!f.freed && uv_run(&loop, UV_RUN_ONCE) != 0)
        ;
      assert_true(f.freed);
      uv_run(&loop, UV_RUN_DEFAULT); /* ends: nothing of the run is left */
      assert_int_equal(uv_loop_close(&loop), 0);
      assert_int_equal(f.exits, 0);
      assert_int_equal(f.outputs, 2);
      char c = 0;
      assert_int_equal(close(f.pipe[1]), 0);
      assert_int_equal(read(f.pipe[0], &c, 1), 1);
      assert_int_equal(c, 'x');
      assert_int_equal(close(f.pipe[0]), 0);
      pk_cmd_free(cmd);
      pk_runner_free(r);
      pkt_snapshot_check(&snap);
    }
  }
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(cancel_from_other_thread),
      cmocka_unit_test(cancel_after_end),
      cmocka_unit_test(free_kills_setsid_escapee),
      cmocka_unit_test(free_from_output_callback_at_the_end),
  };
  return cmocka_run_group_tests(tests, pkt_setup, NULL);
}
