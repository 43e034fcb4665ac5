/* R18, hostile host state, in the library: a host that ignores SIGCHLD
 * (the kernel auto-reaps) or reaps with waitpid(-1) behind pk's back.
 * execve resets a child's exit signal to SIGCHLD, so both can take the
 * status of pk's child; pk reads it back from the pidfd it held
 * (PIDFD_INFO_EXIT) and otherwise ends the run with a typed
 * status_lost error: never a hang or a made-up status. Every spawn path
 * is checked. */
#include "harness.h"

#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

static const unsigned paths[] = {0, PK_NO_CLONE3, PK_NO_PIDFD,
                                 PK_NO_CLONE3 | PK_NO_PIDFD};
#define NPATHS (sizeof(paths) / sizeof(paths[0]))

/* Does this kernel keep a reaped child's status for a pidfd holder
 * (PIDFD_INFO_EXIT, Linux 6.15)? Asked of a child of our own. */
static bool kernel_keeps_status(void) {
  pid_t pid = fork();
  if (pid == 0)
    _exit(100);
  int fd = (int)syscall(SYS_pidfd_open, pid, 0);
  waitpid(pid, NULL, 0);
  struct {
    uint64_t mask, cgroupid;
    uint32_t ids[11];
    int32_t exit_code;
  } info;
  memset(&info, 0, sizeof(info));
  info.mask = 1u << 3;
  bool yes = fd >= 0 && ioctl(fd, _IOWR(0xFF, 11, info), &info) == 0 &&
             (info.mask & (1u << 3)) && WEXITSTATUS(info.exit_code) == 100;
  if (fd >= 0)
    close(fd);
  return yes;
}

/* How often the host takes pk's children's statuses. */
static int nlost; /* runs that ended status_lost */

typedef enum taken { NEVER, SOMETIMES, ALWAYS } taken;

/* One verb's result: the real status, or (only where the status was
 * taken and cannot be recovered) a typed status_lost error. */
static void check_status(const char *what, pk_mechanism m, int rc,
                         const pk_result *res, bool lost_ok, int code,
                         int sig) {
  if (lost_ok && rc == PK_ESTATUS_LOST) {
    nlost++;
    assert_int_equal(pk_result_error(res), PK_ESTATUS_LOST);
    assert_non_null(strstr(pk_result_errmsg(res), "reaped by someone else"));
    return;
  }
  bool ok = rc == 0 &&
            (sig ? pk_result_signal(res) == sig : pk_result_code(res) == code);
  if (!ok)
    fail_msg("%s, %s, %s: wanted %s %d, got rc %s outcome %s code %d "
             "signal %d (%s)",
             what, pk_mechanism_name(m), pk_result_spawn_method(res),
             sig ? "signal" : "exit", sig ? sig : code, pk_err_name(rc),
             pk_outcome_name(pk_result_outcome(res)), pk_result_code(res),
             pk_result_signal(res), pk_result_errmsg(res));
}

/* Exit 7, a signal death, and a failed exec, on every mechanism and spawn
 * path. With a pidfd on a kernel that keeps the status, always exact. */
static void statuses_are_ours(const char *what, taken how) {
  bool keeps = kernel_keeps_status();
  print_message("%s: kernel keeps reaped statuses for pidfds: %s\n", what,
                keeps ? "yes" : "no");
  pk_mechanism mechs[4];
  int n = pkt_mechanisms(mechs);
  nlost = 0;
  for (int i = 0; i < n; i++) {
    for (size_t k = 0; k < NPATHS; k++) {
      bool exact = how == NEVER || (keeps && !(paths[k] & PK_NO_PIDFD));
      pk_runner *r = pkt_runner(mechs[i], paths[k]);
      pk_cmd *code = pkt_fixture("exit", "7", NULL);
      pk_cmd *sig = pkt_fixture("raise", "15", NULL);
      for (int round = 0; round < 5; round++) {
        pk_result *res = NULL;
        int rc = pk_output(r, code, &res);
        check_status(what, mechs[i], rc, res, !exact, 7, 0);
        pk_result_free(res);
        rc = pk_output(r, sig, &res);
        check_status(what, mechs[i], rc, res, !exact, 0, SIGTERM);
        pk_result_free(res);
      }
      pk_cmd *missing;
      PKT_ASSERT_OK(pk_cmd_new("/nonexistent/pk-hostile", &missing));
      assert_int_equal(pk_output(r, missing, NULL), PK_ENOENT);
      pk_cmd_free(missing);
      pk_cmd_free(code);
      pk_cmd_free(sig);
      pk_runner_free(r);
    }
  }
  print_message("%s: %d runs ended status_lost (no pidfd to ask)\n", what,
                nlost);
  if (how == ALWAYS) /* the no-pidfd paths cannot ask: the typed error */
    assert_true(nlost > 0);
}

static void sigchld_ignored(void **state) {
  (void)state;
  pkt_snapshot snap;
  pkt_snapshot_take(&snap);
  struct sigaction ign, old;
  memset(&ign, 0, sizeof(ign));
  ign.sa_handler = SIG_IGN;
  sigaction(SIGCHLD, &ign, &old);
  alarm(60); /* the bug this guards against is a hang */
  statuses_are_ours("SIGCHLD ignored", ALWAYS);
  alarm(0);
  sigaction(SIGCHLD, &old, NULL);
  pkt_snapshot_check(&snap);
}

static void sigchld_nocldwait(void **state) {
  (void)state;
  struct sigaction sa, old;
  memset(&sa, 0, sizeof(sa));
  sa.sa_handler = SIG_DFL;
  sa.sa_flags = SA_NOCLDWAIT;
  sigaction(SIGCHLD, &sa, &old);
  alarm(60);
  statuses_are_ours("SA_NOCLDWAIT", ALWAYS);
  alarm(0);
  sigaction(SIGCHLD, &old, NULL);
}

/* A host thread reaping anything it can, as some daemons do. */
typedef struct reaper {
  atomic_bool stop;
  atomic_int stolen; /* statuses it took */
} reaper;

static void *reap_loop(void *arg) {
  reaper *rp = arg;
  while (!atomic_load(&rp->stop)) {
    int st;
    pid_t pid = waitpid(-1, &st, WNOHANG);
    if (pid > 0)
      atomic_fetch_add(&rp->stolen, 1);
    else
      sched_yield();
  }
  return NULL;
}

static void host_waitpid_loop(void **state) {
  (void)state;
  reaper rp;
  atomic_init(&rp.stop, false);
  atomic_init(&rp.stolen, 0);
  pthread_t t;
  assert_int_equal(pthread_create(&t, NULL, reap_loop, &rp), 0);
  alarm(60);
  statuses_are_ours("a host waitpid(-1) loop", SOMETIMES);
  alarm(0);
  atomic_store(&rp.stop, true);
  pthread_join(t, NULL);
  print_message("the host loop reaped %d of pk's children\n",
                atomic_load(&rp.stolen));
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(sigchld_ignored),
      cmocka_unit_test(sigchld_nocldwait),
      cmocka_unit_test(host_waitpid_loop),
  };
  return cmocka_run_group_tests(tests, pkt_setup, NULL);
}
