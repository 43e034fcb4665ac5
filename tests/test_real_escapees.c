/* process_group mechanism: every setsid escapee found while the direct
 * child is alive dies with the run, however many there are (there was a
 * fixed table of 64; the rest were stopped and left behind). */
#include "harness.h"

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#define NESC 500

typedef struct seen {
  pid_t pid[NESC];
  int n;
  bool ready;
} seen;

static void on_line(pk_proc *p, pk_stream s, const char *line, size_t len,
                    void *data) {
  (void)p, (void)s;
  seen *w = data;
  int pid;
  if (len == 5 && memcmp(line, "ready", 5) == 0)
    w->ready = true;
  else if (sscanf(line, "escaped %d", &pid) == 1 && w->n < NESC)
    w->pid[w->n++] = pid;
}

/* pidfds of every escapee, taken while they surely run (before the kill),
 * so a reused pid can never be mistaken for one of them. */
static void open_pidfds(const seen *w, int *fds) {
  for (int i = 0; i < w->n; i++)
    fds[i] = pkt_pidfd(w->pid[i]);
}

static void kill_with_escapees(bool by_free) {
  pkt_snapshot snap;
  pkt_snapshot_take(&snap);
  uv_loop_t loop;
  assert_int_equal(uv_loop_init(&loop), 0);
  pk_runner *r = pkt_runner(PK_MECH_PROCESS_GROUP, 0);
  pk_cmd *cmd = pkt_fixture("escapees", "500", "120", NULL);
  static seen w;
  memset(&w, 0, sizeof(w));
  pk_start_opts o = {.loop = &loop, .on_line = on_line, .data = &w};
  pk_proc *p;
  PKT_ASSERT_OK(pk_start(r, cmd, &o, &p));
  uint64_t deadline = pkt_now_ms() + 60000;
  while (!w.ready && !pk_proc_done(p) && pkt_now_ms() < deadline)
    uv_run(&loop, UV_RUN_ONCE);
  assert_true(w.ready);
  assert_int_equal(w.n, NESC);
  static int fds[NESC];
  open_pidfds(&w, fds);
  int escapees = -1;
  if (by_free) {
    pk_proc_free(p); /* the leader still runs: the tree is walked */
  } else {
    PKT_ASSERT_OK(pk_proc_kill(p, SIGKILL));
    while (!pk_proc_done(p))
      uv_run(&loop, UV_RUN_ONCE);
    escapees = pk_result_escapees(pk_proc_result(p));
    pk_proc_free(p);
  }
  uv_run(&loop, UV_RUN_DEFAULT);
  assert_int_equal(uv_loop_close(&loop), 0);
  int left = pkt_wait_pidfds(fds, NESC, 10000);
  print_message("%d of %d escapees survived; reported %d\n", left, NESC,
                escapees);
  assert_int_equal(left, 0);
  if (!by_free)
    assert_int_equal(escapees, NESC);
  pk_cmd_free(cmd);
  pk_runner_free(r);
  pkt_snapshot_check(&snap);
}

static void five_hundred_escapees_die_on_kill(void **state) {
  (void)state;
  kill_with_escapees(false);
}

static void five_hundred_escapees_die_on_free(void **state) {
  (void)state;
  kill_with_escapees(true);
}

static int setup(void **state) {
  struct rlimit rl; /* 500 pidfds here and 500 in the runner */
  if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < 4096) {
    rl.rlim_cur = rl.rlim_max < 4096 ? rl.rlim_max : 4096;
    setrlimit(RLIMIT_NOFILE, &rl);
  }
  return pkt_setup(state);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(five_hundred_escapees_die_on_kill),
      cmocka_unit_test(five_hundred_escapees_die_on_free),
  };
  return cmocka_run_group_tests(tests, setup, NULL);
}
