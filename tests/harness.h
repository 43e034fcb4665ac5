/* Test harness shared by every suite: fixture path, leak snapshots,
 * subreaper set-up and small helpers. */
#ifndef PK_TEST_HARNESS_H
#define PK_TEST_HARNESS_H

#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>
#include <pk/pk.h>
#include <sys/types.h>

/* What a real-process test must leave as it found: open fds, child
 * processes (including zombies), pk cgroup directories. */
typedef struct pkt_snapshot {
  int nfds;
  int fds[256];
  int nchildren;
  int ncgroups;
} pkt_snapshot;

/* Once per test program (a cmocka group setup is a good place): make
 * this process a child subreaper (orphans of the trees we start become
 * our children and are reaped by pid), and warm up libuv's and pk's
 * process-wide state so snapshots taken afterwards are stable. */
int pkt_setup(void **state);
void pkt_snapshot_take(pkt_snapshot *s);
/* Fail the test if fds, children or cgroup dirs differ from s. Waits up
 * to 30 s for orphans reparented to us to be reaped (by pid): a guardian
 * of a pk that exited needs a moment to notice, longer on a loaded host. */
void pkt_snapshot_check(const pkt_snapshot *s);
/* A cmocka setup / teardown pair around one test: a snapshot taken
 * before, checked after. */
int pkt_before(void **state);
int pkt_after(void **state);

/* Number of direct children of this process (any thread), zombies too. */
int pkt_count_children(void);
/* Reap exited children by pid (never waitpid(-1)); returns how many. */
int pkt_reap_children(void);
/* Number of cgroup directories (leaves and anything nested in them)
 * inside this process's per-owner cgroup pk-<pid>-* under the cgroup-v2
 * base (-1: no cgroup v2). */
int pkt_count_cgroups(void);
/* Wait until pk's leaf pool (leaves made ahead, removed behind by a
 * helper thread) is settled; how many ready leaves it holds (each is a
 * cgroup directory and two fds). pkt_snapshot_* call it themselves. */
int pkt_pool_settle(void);
/* Wait (at most ms) until pid is in state st ('T', 'Z'...); the state
 * it is in at the end (SIGSTOP and exits take effect asynchronously). */
char pkt_wait_state(pid_t pid, char st, int ms);
/* A shared group of mechanism m with default options (fails the test,
 * naming the reason, when it cannot be made). */
pk_group *pkt_group(pk_mechanism m);
/* CPU time (utime + stime, clock ticks) of pid so far, or -1. */
int64_t pkt_cpu_ticks(pid_t pid);
/* True if pid is alive and not a zombie. */
int pkt_pid_alive(pid_t pid);
/* The state letter of /proc/<pid>/stat ('R', 'S', 'T', 'Z'...), or 0. */
char pkt_proc_state(pid_t pid);

/* A pidfd of pid (fails the test if there is none). */
int pkt_pidfd(pid_t pid);
/* Wait (event-driven, at most ms) until every pidfd reports an exit;
 * returns how many did not. Those are then SIGKILLed (a test only passes
 * pidfds of processes it started) so a failure leaves nothing behind.
 * Closes every fd and sets it to -1. */
int pkt_wait_pidfds(int *fds, int n, int ms);

/* A command for the fixture: pkt_fixture("echo", "a", "b", NULL). */
pk_cmd *pkt_fixture(const char *mode, ...);
/* The same for another program, arguments as a va_list. */
pk_cmd *pkt_fixture_cmd_v(const char *program, const char *mode, va_list ap);

/* A copy of the fixture for commands that drop privileges
 * (pk_cmd_set_user): the dropped user must be able to exec it, and the
 * build directory may lie where only we can go (a checkout inside a
 * `mktemp -d` directory, mode 0700). The copy lives in a fresh directory
 * under /tmp, both mode 0755. */
typedef struct pkt_fixture_copy {
  char dir[64];
  char path[80];
} pkt_fixture_copy;
/* Make the copy (fails the test when it cannot). */
void pkt_fixture_copy_make(pkt_fixture_copy *c);
/* Remove the copy and its directory; fails the test if either is left. */
void pkt_fixture_copy_remove(pkt_fixture_copy *c);
/* As pkt_fixture, for the copy: pkt_fixture_copy_cmd(&c, "ids", NULL). */
pk_cmd *pkt_fixture_copy_cmd(const pkt_fixture_copy *c, const char *mode, ...);

/* A real runner forced to mechanism m with fallback bits. */
pk_runner *pkt_runner(pk_mechanism m, unsigned disable);

/* Mechanisms available here (cgroup_v2 only where it works). */
int pkt_mechanisms(pk_mechanism *out);

uint64_t pkt_now_ms(void);

/* Portable stand-ins (libuv's), so a suite builds on POSIX and Windows
 * alike; each fails the test when the call fails. */
void pkt_setenv(const char *name, const char *value);
void pkt_unsetenv(const char *name);
/* The variables pk's path normalization reads for the home and temporary
 * directories (libuv's uv_os_homedir / uv_os_tmpdir). */
#if defined(_WIN32)
#define PKT_HOME_VAR "USERPROFILE"
#define PKT_TMP_VAR "TMP"
#else
#define PKT_HOME_VAR "HOME"
#define PKT_TMP_VAR "TMPDIR"
#endif
/* mkdtemp: tmpl ends in XXXXXX and is rewritten in place. */
char *pkt_mkdtemp(char *tmpl);
void pkt_mkdir(const char *path);
/* rm -rf through libuv (no shell, any host): 0 when dir is gone (or was
 * never there), else the first error; pkt_rm_rf fails the test instead. */
int pkt_rm_tree(const char *dir);
/* The file's metadata through libuv (st_ino is the file id on Windows),
 * or false when there is no such file (st may be NULL). */
bool pkt_stat(const char *path, uv_stat_t *st);
void pkt_rm_rf(const char *dir);
/* A directory for temporary files: $TMPDIR (POSIX) or the user's temp
 * directory (Windows), without a trailing separator. */
const char *pkt_tmpdir(void);
/* Whether this host can run real child processes through pk (a host
 * without a real runner makes pk_real_runner_new say PK_EUNSUPPORTED);
 * suites skip their real-process cases with a printed reason when not. */
bool pkt_real_runs(void);

/* This host has POSIX signals (not Windows): see pk__host_signals. */
bool pkt_host_signals(void);
/* r ended because pk sent sig (a deadline, a kill): on a host with
 * signals, pk_result_signal is sig; without (Windows) the run was
 * terminated, exit code 1 and no signal, for a real run and a double. */
void pkt_assert_ended_by(const pk_result *r, int sig);
#define PKT_SKIP_UNLESS_REAL()                                                 \
  do {                                                                         \
    if (!pkt_real_runs()) {                                                    \
      print_message("skipped: no real runner on this host yet\n");             \
      skip();                                                                  \
    }                                                                          \
  } while (0)

/* pk's allocator replaced by one that fails once n more allocations were
 * made (n < 0: never fails), for out-of-memory tests;
 * pkt_restore_allocator puts the default back. */
void pkt_fail_after(long n);
void pkt_restore_allocator(void);

#define PKT_ASSERT_OK(expr)                                                    \
  do {                                                                         \
    int pkt_rc_ = (expr);                                                      \
    if (pkt_rc_ != 0)                                                          \
      fail_msg("%s -> %s (%s)", #expr, pk_err_name(pkt_rc_),                   \
               pk_strerror(pkt_rc_));                                          \
  } while (0)

#endif
