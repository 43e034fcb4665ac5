/* kill-on-parent-death: the direct child dies with the spawning thread's
 * process; without the option it survives (and this test cleans it up,
 * since it is our own descendant). */
#include "harness.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

typedef struct ready {
  bool seen;
} ready;

static void on_line(pk_proc *p, pk_stream s, const char *line, size_t len,
                    void *data) {
  (void)p, (void)s;
  if (len == 5 && memcmp(line, "ready", 5) == 0)
    ((ready *)data)->seen = true;
}

/* In a forked intermediate: start the fixture, report its pid on fd,
 * then wait to be killed. Never returns. */
static void intermediate(int fd, bool pdeath) {
  uv_loop_t loop;
  uv_loop_init(&loop);
  pk_runner *r = pkt_runner(PK_MECH_PROCESS_GROUP, 0);
  pk_cmd *cmd = pkt_fixture("sleep", "60", NULL);
  pk_cmd_set_kill_on_parent_death(cmd, pdeath);
  pk_proc *p;
  ready rd = {false};
  pk_start_opts o = {.loop = &loop, .on_line = on_line, .data = &rd};
  if (pk_start(r, cmd, &o, &p) != 0)
    _exit(3);
  int pid = pk_proc_pid(p);
  if (write(fd, &pid, sizeof(pid)) != (ssize_t)sizeof(pid))
    _exit(4);
  for (;;)
    pause();
}

/* Start an intermediate, kill it, and return the grandchild's pid. */
static pid_t orphan_after_parent_death(bool pdeath) {
  int fds[2];
  assert_int_equal(pipe(fds), 0);
  pid_t mid = fork();
  assert_true(mid >= 0);
  if (mid == 0) {
    close(fds[0]);
    intermediate(fds[1], pdeath);
  }
  close(fds[1]);
  int gpid = 0;
  assert_int_equal(read(fds[0], &gpid, sizeof(gpid)), sizeof(gpid));
  close(fds[0]);
  assert_true(gpid > 0);
  assert_int_equal(kill(mid, SIGKILL), 0);
  assert_int_equal(waitpid(mid, NULL, 0), mid);
  return gpid;
}

/* Wait (bounded) for our adopted orphan gpid to end; its status or -1. */
static int wait_orphan(pid_t gpid, int ms) {
  uint64_t end = pkt_now_ms() + (uint64_t)ms;
  int st;
  while (pkt_now_ms() < end) {
    pid_t w = waitpid(gpid, &st, WNOHANG);
    if (w == gpid)
      return st;
    usleep(2000);
  }
  return -1;
}

static void child_dies_with_parent(void **state) {
  (void)state;
  pkt_snapshot snap;
  pkt_snapshot_take(&snap);
  pid_t gpid = orphan_after_parent_death(true);
  int st = wait_orphan(gpid, 5000);
  assert_true(st != -1);
  assert_true(WIFSIGNALED(st));
  assert_int_equal(WTERMSIG(st), SIGKILL);
  pkt_snapshot_check(&snap);
}

static void child_survives_without_option(void **state) {
  (void)state;
  pkt_snapshot snap;
  pkt_snapshot_take(&snap);
  pid_t gpid = orphan_after_parent_death(false);
  assert_int_equal(wait_orphan(gpid, 300), -1);
  assert_true(pkt_pid_alive(gpid));
  /* Our own descendant, adopted by us as subreaper: clean it up. */
  assert_int_equal(kill(gpid, SIGKILL), 0);
  assert_true(wait_orphan(gpid, 5000) != -1);
  pkt_snapshot_check(&snap);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(child_dies_with_parent),
      cmocka_unit_test(child_survives_without_option),
  };
  return cmocka_run_group_tests(tests, pkt_setup, NULL);
}
