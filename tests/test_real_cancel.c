/* pk_proc_cancel from another thread ends a blocking wait promptly and
 * takes the whole tree down. */
#include "harness.h"

#include <pthread.h>
#include <signal.h>
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

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(cancel_from_other_thread),
      cmocka_unit_test(cancel_after_end),
      cmocka_unit_test(free_kills_setsid_escapee),
  };
  return cmocka_run_group_tests(tests, pkt_setup, NULL);
}
