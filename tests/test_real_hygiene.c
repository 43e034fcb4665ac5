/* What a child inherits, and how a failed start is reported (RELIABILITY
 * R9..R13), on every mechanism this host has:
 *   R9  signal hygiene: empty mask, default dispositions in the child
 *   R10 fd hygiene: the child sees exactly 0, 1, 2
 *   R11 exec failures: right code, stage and errno; no zombie, no leak
 *   R12 credentials: exact uid/gid/groups drop, setuid(0) fails after
 *   R13 environment: allow-list, clear, remove, override, bad names */
#include "harness.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/capability.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

extern char **environ;

static pk_mechanism mechs[4];
static int nmechs;

/* Spawn paths worth covering for what the child inherits. */
static const unsigned disables[] = {0, PK_NO_CLONE3, PK_NO_CLONE3 | PK_NO_PIDFD,
                                    PK_NO_CLOSE_RANGE};
#define NDISABLES (sizeof(disables) / sizeof(disables[0]))

/* The spawn method reported must match the path forced by `disable`, so
 * a silent fallback cannot pass for the path under test. */
static void check_method(const pk_result *res, unsigned disable) {
  const char *m = pk_result_spawn_method(res);
  assert_true(m[0] != '\0');
  if (disable & PK_NO_CLONE3)
    assert_string_not_equal(m, "clone3");
  if ((disable & PK_NO_CLONE3) && (disable & PK_NO_PIDFD))
    assert_string_equal(m, "clone+nopidfd");
}

/* Run cmd with pk_output; returns a heap copy of stdout (exit code 0
 * required). */
static char *run_stdout(pk_runner *r, const pk_cmd *cmd, unsigned disable) {
  pk_result *res = NULL;
  int rc = pk_output(r, cmd, &res);
  if (rc != 0)
    fail_msg("pk_output -> %s: %s", pk_err_name(rc),
             res ? pk_result_errmsg(res) : "");
  assert_int_equal(pk_result_outcome(res), PK_OUTCOME_EXITED);
  if (pk_result_code(res) != 0)
    fail_msg("fixture exited %d: %s", pk_result_code(res),
             pk_result_stderr(res, NULL));
  check_method(res, disable);
  char *out = strdup(pk_result_stdout(res, NULL));
  assert_non_null(out);
  pk_result_free(res);
  return out;
}

static int count_fds(void) {
  DIR *d = opendir("/proc/self/fd");
  assert_non_null(d);
  int n = 0;
  struct dirent *e;
  while ((e = readdir(d)) != NULL)
    if (e->d_name[0] != '.')
      n++;
  closedir(d);
  return n - 1; /* the directory's own fd */
}

/* Leaves of this process (below its per-owner cgroup), 0 without a
 * cgroup base. */
static int own_cgroups(void) {
  int ready = pkt_pool_settle(); /* the leaf pool's, made ahead */
  int n = pkt_count_cgroups();
  return n < 0 ? 0 : n - ready;
}

/* ------------------------------------------------------------------ R9 */

/* "SigBlk"/"SigIgn" of the calling thread, as a number. */
static unsigned long long thread_sigfield(const char *key) {
  char path[64], buf[4096];
  snprintf(path, sizeof(path), "/proc/self/task/%ld/status",
           (long)syscall(SYS_gettid));
  FILE *f = fopen(path, "re");
  assert_non_null(f);
  size_t n = fread(buf, 1, sizeof(buf) - 1, f);
  fclose(f);
  buf[n] = '\0';
  char pat[32];
  snprintf(pat, sizeof(pat), "\n%s:", key);
  const char *p = strstr(buf, pat);
  assert_non_null(p);
  return strtoull(p + strlen(pat), NULL, 16);
}

static void on_usr1(int sig) { (void)sig; }

#define SIGBIT(s) (1ull << ((s)-1))

static void r9_child_signal_state_is_clean(void **state) {
  (void)state;
  pkt_snapshot snap;
  pkt_snapshot_take(&snap);

  /* Parent state a careless spawner would leak into the child. */
  sigset_t block, old_mask;
  sigemptyset(&block);
  sigaddset(&block, SIGTERM);
  sigaddset(&block, SIGRTMIN + 3);
  assert_int_equal(pthread_sigmask(SIG_BLOCK, &block, &old_mask), 0);
  struct sigaction ign = {.sa_handler = SIG_IGN}, usr = {.sa_handler = on_usr1};
  struct sigaction old_pipe, old_int, old_hup, old_usr1;
  sigemptyset(&ign.sa_mask);
  sigemptyset(&usr.sa_mask);
  assert_int_equal(sigaction(SIGPIPE, &ign, &old_pipe), 0);
  assert_int_equal(sigaction(SIGINT, &ign, &old_int), 0);
  assert_int_equal(sigaction(SIGHUP, &ign, &old_hup), 0);
  assert_int_equal(sigaction(SIGUSR1, &usr, &old_usr1), 0);
  unsigned long long blk = thread_sigfield("SigBlk");
  unsigned long long ign_bits = thread_sigfield("SigIgn");

  char *outs[4 * NDISABLES] = {0};
  int nouts = 0;
  for (int i = 0; i < nmechs; i++) {
    for (size_t d = 0; d < NDISABLES; d++) {
      pk_runner *r = pkt_runner(mechs[i], disables[d]);
      pk_cmd *cmd = pkt_fixture("sigmask", NULL);
      outs[nouts++] = run_stdout(r, cmd, disables[d]);
      pk_cmd_free(cmd);
      pk_runner_free(r);
    }
  }

  /* Restore the parent before any assertion can end the test. */
  sigaction(SIGPIPE, &old_pipe, NULL);
  sigaction(SIGINT, &old_int, NULL);
  sigaction(SIGHUP, &old_hup, NULL);
  sigaction(SIGUSR1, &old_usr1, NULL);
  pthread_sigmask(SIG_SETMASK, &old_mask, NULL);

  /* The set-up really was in force while spawning. */
  assert_true(blk & SIGBIT(SIGTERM));
  assert_true(blk & SIGBIT(SIGRTMIN + 3));
  assert_true(ign_bits & SIGBIT(SIGPIPE));
  assert_true(ign_bits & SIGBIT(SIGINT));
  assert_true(ign_bits & SIGBIT(SIGHUP));
  /* ...and is gone again. */
  assert_int_equal(thread_sigfield("SigBlk") & SIGBIT(SIGTERM), 0);

  int k = 0;
  for (int i = 0; i < nmechs; i++) {
    for (size_t d = 0; d < NDISABLES; d++, k++) {
      if (strcmp(outs[k], "blocked 0000000000000000\n"
                          "ignored 0000000000000000\n") != 0)
        fail_msg("%s disable=%#x: child %s", pk_mechanism_name(mechs[i]),
                 disables[d], outs[k]);
      free(outs[k]);
    }
  }
  pkt_snapshot_check(&snap);
}

/* ----------------------------------------------------------------- R10 */

static void r10_only_std_fds_despite_leaky_parent(void **state) {
  (void)state;
  pkt_snapshot snap;
  pkt_snapshot_take(&snap);
  /* Every one of these is inheritable (no CLOEXEC). */
  int p[2], sp[2], ep, ev, high;
  assert_int_equal(pipe(p), 0);
  assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, sp), 0);
  assert_true((ep = epoll_create(1)) >= 0);
  assert_true((ev = eventfd(0, 0)) >= 0);
  assert_int_equal(high = dup2(p[0], 700), 700);
  int leaky[] = {p[0], p[1], sp[0], sp[1], ep, ev, high};
  for (size_t i = 0; i < sizeof(leaky) / sizeof(leaky[0]); i++)
    assert_int_equal(fcntl(leaky[i], F_GETFD) & FD_CLOEXEC, 0);

  for (int i = 0; i < nmechs; i++) {
    for (size_t d = 0; d < NDISABLES; d++) {
      pk_runner *r = pkt_runner(mechs[i], disables[d]);
      pk_cmd *cmd = pkt_fixture("fds", NULL);
      char *out = run_stdout(r, cmd, disables[d]);
      assert_string_equal(out, "0\n1\n2\n");
      free(out);
      /* stdin from bytes: a fourth pipe on our side, still 0,1,2. */
      PKT_ASSERT_OK(pk_cmd_set_stdin_bytes(cmd, "x", 1));
      out = run_stdout(r, cmd, disables[d]);
      assert_string_equal(out, "0\n1\n2\n");
      free(out);
      pk_cmd_free(cmd);
      pk_runner_free(r);
    }
  }
  for (size_t i = 0; i < sizeof(leaky) / sizeof(leaky[0]); i++)
    close(leaky[i]);
  pkt_snapshot_check(&snap);
}

typedef struct churner {
  pthread_t tid;
  atomic_int *stop;
  long iters;
  int errors;
} churner;

/* Open and close inheritable fds as fast as possible. */
static void *churn(void *arg) {
  churner *c = arg;
  while (!atomic_load(c->stop)) {
    int p[2], s[2];
    if (pipe(p) != 0) {
      c->errors++;
      continue;
    }
    int d = dup(p[0]);
    if (socketpair(AF_UNIX, SOCK_STREAM, 0, s) == 0) {
      close(s[0]);
      close(s[1]);
    }
    if (d >= 0)
      close(d);
    else
      c->errors++;
    close(p[0]);
    close(p[1]);
    c->iters++;
  }
  return NULL;
}

static void r10_only_std_fds_while_threads_open_fds(void **state) {
  (void)state;
  pkt_snapshot snap;
  pkt_snapshot_take(&snap);
  atomic_int stop = 0;
  churner ch[4];
  for (int i = 0; i < 4; i++) {
    ch[i] = (churner){.stop = &stop};
    assert_int_equal(pthread_create(&ch[i].tid, NULL, churn, &ch[i]), 0);
  }
  /* No cmocka assertion while the threads run: collect, then check. */
  struct {
    unsigned disable;
    int spawns;
  } plan[] = {
      {0, 200}, {PK_NO_CLOSE_RANGE, 50}, {PK_NO_CLONE3 | PK_NO_PIDFD, 50}};
  int spawns = 0, bad = 0, failed = 0, first_rc = 0;
  char first_bad[256] = "";
  for (int i = 0; i < nmechs; i++) {
    for (size_t k = 0; k < sizeof(plan) / sizeof(plan[0]); k++) {
      pk_runner *r = pkt_runner(mechs[i], plan[k].disable);
      pk_cmd *cmd = pkt_fixture("fds", NULL);
      for (int j = 0; j < plan[k].spawns; j++) {
        pk_result *res = NULL;
        int rc = pk_output(r, cmd, &res);
        spawns++;
        if (rc != 0 || pk_result_code(res) != 0) {
          if (failed++ == 0)
            first_rc = rc;
        } else if (strcmp(pk_result_stdout(res, NULL), "0\n1\n2\n") != 0) {
          if (bad++ == 0)
            snprintf(first_bad, sizeof(first_bad), "%s disable=%#x: %s",
                     pk_mechanism_name(mechs[i]), plan[k].disable,
                     pk_result_stdout(res, NULL));
        }
        pk_result_free(res);
      }
      pk_cmd_free(cmd);
      pk_runner_free(r);
    }
  }
  atomic_store(&stop, 1);
  long iters = 0;
  int errors = 0;
  for (int i = 0; i < 4; i++) {
    pthread_join(ch[i].tid, NULL);
    iters += ch[i].iters;
    errors += ch[i].errors;
  }
  print_message("%d spawns while 4 threads opened/closed fds %ld times\n",
                spawns, iters);
  if (failed != 0)
    fail_msg("%d of %d runs failed (first: %s)", failed, spawns,
             pk_err_name(first_rc));
  if (bad != 0)
    fail_msg("%d of %d children saw extra fds; first: %s", bad, spawns,
             first_bad);
  assert_int_equal(errors, 0);
  assert_true(iters > spawns); /* the threads really raced the spawns */
  pkt_snapshot_check(&snap);
}

static void r10_inherited_stdout_still_only_std_fds(void **state) {
  (void)state;
  pkt_snapshot snap;
  pkt_snapshot_take(&snap);
  char path[] = "/tmp/pk-hyg-out-XXXXXX";
  for (int i = 0; i < nmechs; i++) {
    int file = mkstemp(path);
    assert_true(file >= 0);
    fflush(stdout);
    int saved = dup(1); /* inheritable, on purpose */
    assert_true(saved >= 0);
    assert_int_equal(dup2(file, 1), 1);
    pk_runner *r = pkt_runner(mechs[i], 0);
    pk_cmd *cmd = pkt_fixture("fds", NULL);
    PKT_ASSERT_OK(pk_cmd_set_output(cmd, PK_STDOUT, PK_OUT_INHERIT, NULL));
    PKT_ASSERT_OK(pk_cmd_set_output(cmd, PK_STDERR, PK_OUT_INHERIT, NULL));
    pk_result *res = NULL;
    int rc = pk_output(r, cmd, &res);
    dup2(saved, 1); /* restore before any assertion */
    close(saved);
    PKT_ASSERT_OK(rc);
    assert_int_equal(pk_result_code(res), 0);
    assert_int_equal(pk_result_total_bytes(res, PK_STDOUT), 0);
    pk_result_free(res);
    pk_cmd_free(cmd);
    pk_runner_free(r);
    char buf[64] = {0};
    assert_true(pread(file, buf, sizeof(buf) - 1, 0) >= 0);
    close(file);
    unlink(path);
    assert_string_equal(buf, "0\n1\n2\n");
    memcpy(path + strlen(path) - 6, "XXXXXX", 6);
  }
  pkt_snapshot_check(&snap);
}

/* ----------------------------------------------------------------- R11 */

/* Capability drop in the effective set of the calling thread only (the
 * spawn happens on this thread, the child inherits its credentials). */
static void caps_get(struct __user_cap_data_struct d[2]) {
  struct __user_cap_header_struct h = {_LINUX_CAPABILITY_VERSION_3, 0};
  assert_int_equal(syscall(SYS_capget, &h, d), 0);
}

static int caps_set(struct __user_cap_data_struct d[2]) {
  struct __user_cap_header_struct h = {_LINUX_CAPABILITY_VERSION_3, 0};
  return (int)syscall(SYS_capset, &h, d);
}

enum kind {
  K_NOTFOUND_BARE,
  K_NOTFOUND_ABS,
  K_DENIED_ABS,
  K_DENIED_BARE,
  K_NOEXEC,
  K_BADCWD_MISSING,
  K_BADCWD_FILE,
  K_SETGROUPS,
  K_SETUID,
  K_COUNT
};

typedef struct failcase {
  const char *name;
  int rc;
  const char *stage;
  int os_errno;
  int drop_cap; /* -1: none */
  pk_cmd *cmd;
} failcase;

typedef struct failenv {
  char dir[64];
  char empty1[96], empty2[96], noexec[96], garbage[96], missing[96];
  pkt_fixture_copy fixture; /* for the cases that drop to 65534 */
  failcase k[K_COUNT];
} failenv;

static void write_file(const char *path, mode_t mode, const char *text) {
  int fd = open(path, O_CREAT | O_WRONLY | O_TRUNC | O_CLOEXEC, mode);
  assert_true(fd >= 0);
  assert_int_equal(write(fd, text, strlen(text)), (ssize_t)strlen(text));
  close(fd);
  assert_int_equal(chmod(path, mode), 0);
}

static void failenv_init(failenv *e) {
  strcpy(e->dir, "/tmp/pk-hyg-XXXXXX");
  assert_non_null(mkdtemp(e->dir));
  snprintf(e->empty1, sizeof(e->empty1), "%s/empty1", e->dir);
  snprintf(e->empty2, sizeof(e->empty2), "%s/empty2", e->dir);
  snprintf(e->noexec, sizeof(e->noexec), "%s/noexec", e->dir);
  snprintf(e->garbage, sizeof(e->garbage), "%s/garbage", e->dir);
  snprintf(e->missing, sizeof(e->missing), "%s/missing", e->dir);
  assert_int_equal(mkdir(e->empty1, 0755), 0);
  assert_int_equal(mkdir(e->empty2, 0755), 0);
  write_file(e->noexec, 0644, "#!/bin/sh\nexit 0\n");
  write_file(e->garbage, 0755, "\001\002\003 not a program\n");
  char path_dirs[200];
  snprintf(path_dirs, sizeof(path_dirs), "%s:%s", e->empty1, e->empty2);
  gid_t groups[] = {65534};
  failcase *k = e->k;
  pkt_fixture_copy_make(&e->fixture);

  k[K_NOTFOUND_BARE] =
      (failcase){"not found (PATH)", PK_ENOENT, "lookup", ENOENT, -1, NULL};
  PKT_ASSERT_OK(pk_cmd_new("pk-hyg-no-such-prog", &k[K_NOTFOUND_BARE].cmd));
  PKT_ASSERT_OK(pk_cmd_env_set(k[K_NOTFOUND_BARE].cmd, "PATH", path_dirs));

  k[K_NOTFOUND_ABS] =
      (failcase){"not found (absolute)", PK_ENOENT, "exec", ENOENT, -1, NULL};
  PKT_ASSERT_OK(pk_cmd_new(e->missing, &k[K_NOTFOUND_ABS].cmd));

  k[K_DENIED_ABS] = (failcase){
      "permission denied (absolute)", PK_EACCES, "exec", EACCES, -1, NULL};
  PKT_ASSERT_OK(pk_cmd_new(e->noexec, &k[K_DENIED_ABS].cmd));

  k[K_DENIED_BARE] = (failcase){
      "permission denied (PATH)", PK_EACCES, "lookup", EACCES, -1, NULL};
  PKT_ASSERT_OK(pk_cmd_new("noexec", &k[K_DENIED_BARE].cmd));
  PKT_ASSERT_OK(pk_cmd_env_set(k[K_DENIED_BARE].cmd, "PATH", e->dir));

  k[K_NOEXEC] =
      (failcase){"not executable", PK_ENOEXEC, "exec", ENOEXEC, -1, NULL};
  PKT_ASSERT_OK(pk_cmd_new(e->garbage, &k[K_NOEXEC].cmd));

  k[K_BADCWD_MISSING] =
      (failcase){"bad cwd (missing)",     PK_EBADCWD, "chdir", ENOENT, -1,
                 pkt_fixture("cwd", NULL)};
  PKT_ASSERT_OK(pk_cmd_set_cwd(k[K_BADCWD_MISSING].cmd, e->missing));

  k[K_BADCWD_FILE] =
      (failcase){"bad cwd (a file)",      PK_EBADCWD, "chdir", ENOTDIR, -1,
                 pkt_fixture("cwd", NULL)};
  PKT_ASSERT_OK(pk_cmd_set_cwd(k[K_BADCWD_FILE].cmd, e->garbage));

  /* As root every id change works; without CAP_SETGID / CAP_SETUID in
   * the spawning thread's effective set the drop fails at its stage. */
  k[K_SETGROUPS] = (failcase){
      "setgroups refused", PK_ESPAWN,
      "setgroups",         EPERM,
      CAP_SETGID,          pkt_fixture_copy_cmd(&e->fixture, "ids", NULL)};
  PKT_ASSERT_OK(pk_cmd_set_user(k[K_SETGROUPS].cmd, 65534, 65534, groups, 1));

  k[K_SETUID] = (failcase){
      "setuid refused", PK_ESPAWN,
      "setuid",         EPERM,
      CAP_SETUID,       pkt_fixture_copy_cmd(&e->fixture, "ids", NULL)};
  PKT_ASSERT_OK(pk_cmd_set_user(k[K_SETUID].cmd, 65534, 65534, groups, 1));
}

static void failenv_free(failenv *e) {
  for (int i = 0; i < K_COUNT; i++)
    pk_cmd_free(e->k[i].cmd);
  unlink(e->noexec);
  unlink(e->garbage);
  rmdir(e->empty1);
  rmdir(e->empty2);
  rmdir(e->dir);
  pkt_fixture_copy_remove(&e->fixture);
}

/* Run one failing case; returns the run's code, result in *res. Caps
 * are restored before returning. */
static int run_failcase(pk_runner *r, const failcase *k, pk_result **res) {
  struct __user_cap_data_struct saved[2], dropped[2];
  if (k->drop_cap >= 0) {
    caps_get(saved);
    memcpy(dropped, saved, sizeof(saved));
    dropped[k->drop_cap / 32].effective &= ~(1u << (k->drop_cap % 32));
    assert_int_equal(caps_set(dropped), 0);
  }
  int rc = pk_output(r, k->cmd, res);
  if (k->drop_cap >= 0)
    assert_int_equal(caps_set(saved), 0);
  return rc;
}

/* Returns 1 (after printing why) when code, stage or errno is wrong.
 * with_errno false: code and stage only (the repetition loop, which is
 * about leaks; the errno is checked once per kind and mechanism). */
static int check_failcase(const failcase *k, int rc, const pk_result *res,
                          pk_mechanism m, bool with_errno) {
  assert_true(pk_is_spawn_error(rc));
  assert_int_equal(pk_result_outcome(res), PK_OUTCOME_NONE);
  assert_int_equal(pk_result_code(res), -1);
  const char *stage = pk_result_stage(res);
  if (rc == k->rc && stage != NULL && strcmp(stage, k->stage) == 0 &&
      (!with_errno || pk_result_os_errno(res) == k->os_errno) &&
      pk_result_error(res) == k->rc)
    return 0;
  print_error("%s on %s: got %s stage %s errno %d (%s), want %s stage %s "
              "errno %d\n",
              k->name, pk_mechanism_name(m), pk_err_name(rc),
              stage ? stage : "(null)", pk_result_os_errno(res),
              pk_result_errmsg(res), pk_err_name(k->rc), k->stage, k->os_errno);
  return 1;
}

static void r11_each_failure_is_classified(void **state) {
  (void)state;
  pkt_snapshot snap;
  pkt_snapshot_take(&snap);
  failenv e;
  failenv_init(&e);
  int wrong = 0;
  for (int i = 0; i < nmechs; i++) {
    pk_runner *r = pkt_runner(mechs[i], 0);
    for (int j = 0; j < K_COUNT; j++) {
      const failcase *k = &e.k[j];
      pk_result *res = NULL;
      int rc = run_failcase(r, k, &res);
      wrong += check_failcase(k, rc, res, mechs[i], true);
      assert_non_null(strstr(pk_result_errmsg(res), pk_cmd_program(k->cmd)));
      assert_int_equal(pkt_count_children(), snap.nchildren); /* reaped */
      assert_int_equal(own_cgroups(), 0);
      pk_result_free(res);
    }
    pk_runner_free(r);
  }
  /* The uid change itself works once the capability is back. */
  pk_runner *r = pkt_runner(PK_MECH_AUTO, 0);
  char *out = run_stdout(r, e.k[K_SETUID].cmd, 0);
  assert_string_equal(out, "uid 65534 65534 65534\ngid 65534 65534 65534\n"
                           "groups 65534\nsetuid0 fail\n");
  free(out);
  pk_runner_free(r);
  failenv_free(&e);
  pkt_snapshot_check(&snap);
  if (wrong != 0)
    fail_msg("%d of %d failed starts misclassified (see above)", wrong,
             nmechs * K_COUNT);
}

static void r11_thousand_failures_leak_nothing(void **state) {
  (void)state;
  failenv e;
  failenv_init(&e);
  pk_runner *r[4];
  for (int i = 0; i < nmechs; i++)
    r[i] = pkt_runner(mechs[i], 0);
  /* Warm-up run of each kind so lazily created state is in the baseline. */
  for (int j = 0; j < K_COUNT; j++) {
    pk_result *res = NULL;
    (void)run_failcase(r[0], &e.k[j], &res);
    pk_result_free(res);
  }
  pkt_snapshot snap;
  pkt_snapshot_take(&snap);
  int fds0 = count_fds() - 2 * pkt_pool_settle();
  uint64_t t0 = pkt_now_ms();
  for (int n = 0; n < 1000; n++) {
    int mi = n % nmechs;
    const failcase *k = &e.k[(n / nmechs) % K_COUNT];
    pk_result *res = NULL;
    int rc = run_failcase(r[mi], k, &res);
    if (check_failcase(k, rc, res, mechs[mi], false) != 0)
      fail_msg("run %d misclassified", n);
    pk_result_free(res);
    int ready = pkt_pool_settle(); /* its leaves: two fds each */
    int children = pkt_count_children();
    if (children != snap.nchildren)
      fail_msg("run %d (%s): %d children left (zombie?)", n, k->name,
               children - snap.nchildren);
    int fds = count_fds() - 2 * ready;
    if (fds != fds0)
      fail_msg("run %d (%s): %d fds, %d before", n, k->name, fds, fds0);
    if (own_cgroups() != 0)
      fail_msg("run %d (%s): cgroup dir left behind", n, k->name);
  }
  print_message("1000 failed starts in %llu ms\n",
                (unsigned long long)(pkt_now_ms() - t0));
  for (int i = 0; i < nmechs; i++)
    pk_runner_free(r[i]);
  failenv_free(&e);
  pkt_snapshot_check(&snap);
}

static void r11_set_user_rejects_bad_arguments(void **state) {
  (void)state;
  pk_cmd *cmd = pkt_fixture("ids", NULL);
  gid_t g[2] = {1, 2};
  assert_int_equal(pk_cmd_set_user(cmd, 65534, 65534, g, 65537), PK_EINVAL);
  assert_int_equal(pk_cmd_set_user(cmd, 65534, 65534, g, (size_t)-1),
                   PK_EINVAL);
  assert_int_equal(pk_cmd_set_user(cmd, 65534, 65534, NULL, 2), PK_EINVAL);
  assert_int_equal(pk_cmd_set_user(cmd, (uid_t)-1, 65534, g, 2), PK_EINVAL);
  assert_int_equal(pk_cmd_set_user(cmd, 65534, (gid_t)-1, g, 2), PK_EINVAL);
  assert_int_equal(pk_cmd_set_user(NULL, 65534, 65534, g, 2), PK_EINVAL);
  /* Nothing of the rejected calls stuck: the child still runs as root. */
  pkt_snapshot snap;
  pkt_snapshot_take(&snap);
  pk_runner *r = pkt_runner(PK_MECH_AUTO, 0);
  char *out = run_stdout(r, cmd, 0);
  assert_non_null(strstr(out, "uid 0 0 0\n"));
  assert_non_null(strstr(out, "setuid0 ok\n"));
  free(out);
  pk_runner_free(r);
  pk_cmd_free(cmd);
  pkt_snapshot_check(&snap);
}

/* ----------------------------------------------------------------- R12 */

/* "groups a b c" -> sorted numbers. */
static int parse_groups(const char *out, unsigned *g, int max) {
  const char *p = strstr(out, "groups");
  assert_non_null(p);
  p += 6;
  int n = 0;
  while (*p == ' ' && n < max) {
    char *end;
    g[n++] = (unsigned)strtoul(p + 1, &end, 10);
    p = end;
  }
  assert_int_equal(*p, '\n');
  for (int i = 1; i < n; i++)
    for (int j = i; j > 0 && g[j - 1] > g[j]; j--) {
      unsigned t = g[j];
      g[j] = g[j - 1];
      g[j - 1] = t;
    }
  return n;
}

static void r12_credentials_drop_is_exact(void **state) {
  (void)state;
  if (geteuid() != 0)
    skip(); /* needs root to change ids */
  pkt_snapshot snap;
  pkt_snapshot_take(&snap);
  gid_t groups[] = {65534, 100};
  pkt_fixture_copy fixture; /* one that uid 65534 and 4242 can exec */
  pkt_fixture_copy_make(&fixture);
  for (int i = 0; i < nmechs; i++) {
    pk_runner *r = pkt_runner(mechs[i], 0);
    pk_cmd *cmd = pkt_fixture_copy_cmd(&fixture, "ids", NULL);
    PKT_ASSERT_OK(pk_cmd_set_user(cmd, 65534, 65534, groups, 2));
    char *out = run_stdout(r, cmd, 0);
    assert_int_equal(strncmp(out,
                             "uid 65534 65534 65534\n"
                             "gid 65534 65534 65534\n",
                             44),
                     0);
    unsigned g[8];
    assert_int_equal(parse_groups(out, g, 8), 2);
    assert_int_equal(g[0], 100);
    assert_int_equal(g[1], 65534);
    assert_non_null(strstr(out, "\nsetuid0 fail\n"));
    free(out);

    /* No supplementary groups at all, a different uid and gid. */
    PKT_ASSERT_OK(pk_cmd_set_user(cmd, 4242, 4343, NULL, 0));
    out = run_stdout(r, cmd, 0);
    assert_string_equal(out, "uid 4242 4242 4242\ngid 4343 4343 4343\n"
                             "groups\nsetuid0 fail\n");
    free(out);
    pk_cmd_free(cmd);
    pk_runner_free(r);
  }
  pkt_fixture_copy_remove(&fixture);
  pkt_snapshot_check(&snap);
}

/* ----------------------------------------------------------------- R13 */

static int cmp_str(const void *a, const void *b) {
  return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* The lines of text, sorted, joined with '\n' (heap). */
static char *sorted_lines(const char *text) {
  char *copy = strdup(text);
  assert_non_null(copy);
  size_t n = 0, cap = 16;
  char **v = malloc(cap * sizeof(*v));
  assert_non_null(v);
  for (char *save = NULL, *l = strtok_r(copy, "\n", &save); l != NULL;
       l = strtok_r(NULL, "\n", &save)) {
    if (n == cap) {
      v = realloc(v, (cap *= 2) * sizeof(*v));
      assert_non_null(v);
    }
    v[n++] = l;
  }
  qsort(v, n, sizeof(*v), cmp_str);
  size_t len = strlen(text) + 2;
  char *out = malloc(len);
  assert_non_null(out);
  out[0] = '\0';
  for (size_t i = 0; i < n; i++) {
    strcat(out, v[i]);
    strcat(out, "\n");
  }
  free(v);
  free(copy);
  return out;
}

static void assert_env(pk_runner *r, const pk_cmd *cmd, const char *want) {
  char *out = run_stdout(r, cmd, 0);
  char *got = sorted_lines(out), *exp = sorted_lines(want);
  if (strcmp(got, exp) != 0)
    fail_msg("child environment:\n%s-- expected:\n%s", got, exp);
  free(got);
  free(exp);
  free(out);
}

/* The parent's environment minus `drop`, one per line, plus `extra`. */
static char *parent_env_without(const char *drop, const char *extra) {
  size_t len = strlen(extra) + 1;
  for (char **e = environ; *e != NULL; e++)
    len += strlen(*e) + 1;
  char *s = malloc(len);
  assert_non_null(s);
  s[0] = '\0';
  size_t dl = strlen(drop);
  for (char **e = environ; *e != NULL; e++) {
    if (strchr(*e, '=') == NULL ||
        (strncmp(*e, drop, dl) == 0 && (*e)[dl] == '='))
      continue;
    strcat(s, *e);
    strcat(s, "\n");
  }
  strcat(s, extra);
  return s;
}

static void r13_environment_is_exact(void **state) {
  (void)state;
  pkt_snapshot snap;
  pkt_snapshot_take(&snap);
  assert_int_equal(setenv("PKT_HYG_A", "alpha", 1), 0);
  assert_int_equal(setenv("PKT_HYG_B", "beta", 1), 0);
  assert_int_equal(setenv("PKT_HYG_C", "c=1=2", 1), 0);
  unsetenv("PKT_HYG_UNSET");
  for (int i = 0; i < nmechs; i++) {
    pk_runner *r = pkt_runner(mechs[i], 0);

    /* Allow-list: exactly the listed (and present) variables, plus
     * overrides; an override of a listed one wins. */
    pk_cmd *cmd = pkt_fixture("env", NULL);
    PKT_ASSERT_OK(pk_cmd_inherit_env(cmd, "PKT_HYG_A"));
    PKT_ASSERT_OK(pk_cmd_inherit_env(cmd, "PKT_HYG_C"));
    PKT_ASSERT_OK(pk_cmd_inherit_env(cmd, "PKT_HYG_UNSET"));
    PKT_ASSERT_OK(pk_cmd_env_set(cmd, "PKT_HYG_NEW", "x=y"));
    assert_env(r, cmd, "PKT_HYG_A=alpha\nPKT_HYG_C=c=1=2\nPKT_HYG_NEW=x=y\n");
    PKT_ASSERT_OK(pk_cmd_env_set(cmd, "PKT_HYG_A", "over"));
    assert_env(r, cmd, "PKT_HYG_A=over\nPKT_HYG_C=c=1=2\nPKT_HYG_NEW=x=y\n");
    pk_cmd_free(cmd);

    /* Clear: exactly the overrides, in any order; empty values kept. */
    cmd = pkt_fixture("env", NULL);
    PKT_ASSERT_OK(pk_cmd_env_set(cmd, "ONE", "1"));
    PKT_ASSERT_OK(pk_cmd_env_clear(cmd));
    PKT_ASSERT_OK(pk_cmd_env_set(cmd, "TWO", "=2="));
    PKT_ASSERT_OK(pk_cmd_env_set(cmd, "EMPTY", ""));
    assert_env(r, cmd, "ONE=1\nTWO==2=\nEMPTY=\n");
    /* Later set wins; set then remove is gone; remove then set is back. */
    PKT_ASSERT_OK(pk_cmd_env_set(cmd, "ONE", "first"));
    PKT_ASSERT_OK(pk_cmd_env_set(cmd, "ONE", "second"));
    PKT_ASSERT_OK(pk_cmd_env_remove(cmd, "TWO"));
    PKT_ASSERT_OK(pk_cmd_env_remove(cmd, "EMPTY"));
    PKT_ASSERT_OK(pk_cmd_env_set(cmd, "EMPTY", "again"));
    assert_env(r, cmd, "ONE=second\nEMPTY=again\n");
    pk_cmd_free(cmd);

    /* No clear: the parent's environment minus the removed one. */
    cmd = pkt_fixture("env", NULL);
    PKT_ASSERT_OK(pk_cmd_env_remove(cmd, "PKT_HYG_B"));
    PKT_ASSERT_OK(pk_cmd_env_set(cmd, "PKT_HYG_D", "delta"));
    char *want = parent_env_without("PKT_HYG_B", "PKT_HYG_D=delta\n");
    assert_non_null(strstr(want, "PKT_HYG_A=alpha\n"));
    assert_env(r, cmd, want);
    free(want);
    pk_cmd_free(cmd);

    /* Plain run: the parent's environment exactly. */
    cmd = pkt_fixture("env", NULL);
    want = parent_env_without("PKT_HYG_NONE", "");
    assert_env(r, cmd, want);
    free(want);
    pk_cmd_free(cmd);
    pk_runner_free(r);
  }
  unsetenv("PKT_HYG_A");
  unsetenv("PKT_HYG_B");
  unsetenv("PKT_HYG_C");
  pkt_snapshot_check(&snap);
}

static void r13_bad_names_are_rejected(void **state) {
  (void)state;
  pk_cmd *cmd = pkt_fixture("env", NULL);
  const char *bad[] = {"", "A=B", "=", "=A", "A="};
  for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
    assert_int_equal(pk_cmd_env_set(cmd, bad[i], "v"), PK_EINVAL);
    assert_int_equal(pk_cmd_env_remove(cmd, bad[i]), PK_EINVAL);
    assert_int_equal(pk_cmd_inherit_env(cmd, bad[i]), PK_EINVAL);
  }
  assert_int_equal(pk_cmd_env_set(cmd, NULL, "v"), PK_EINVAL);
  assert_int_equal(pk_cmd_env_remove(cmd, NULL), PK_EINVAL);
  assert_int_equal(pk_cmd_inherit_env(cmd, NULL), PK_EINVAL);
  assert_int_equal(pk_cmd_env_set(NULL, "A", "v"), PK_EINVAL);
  /* '=' in a value is fine. */
  PKT_ASSERT_OK(pk_cmd_env_set(cmd, "OK", "a=b"));
  PKT_ASSERT_OK(pk_cmd_env_clear(cmd));
  /* None of the rejected calls left anything behind. */
  pkt_snapshot snap;
  pkt_snapshot_take(&snap);
  pk_runner *r = pkt_runner(PK_MECH_AUTO, 0);
  assert_env(r, cmd, "OK=a=b\n");
  pk_runner_free(r);
  pk_cmd_free(cmd);
  pkt_snapshot_check(&snap);
}

int main(void) {
  nmechs = pkt_mechanisms(mechs);
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(r9_child_signal_state_is_clean),
      cmocka_unit_test(r10_only_std_fds_despite_leaky_parent),
      cmocka_unit_test(r10_only_std_fds_while_threads_open_fds),
      cmocka_unit_test(r10_inherited_stdout_still_only_std_fds),
      cmocka_unit_test(r11_each_failure_is_classified),
      cmocka_unit_test(r11_thousand_failures_leak_nothing),
      cmocka_unit_test(r11_set_user_rejects_bad_arguments),
      cmocka_unit_test(r12_credentials_drop_is_exact),
      cmocka_unit_test(r13_environment_is_exact),
      cmocka_unit_test(r13_bad_names_are_rejected),
  };
  return cmocka_run_group_tests(tests, pkt_setup, NULL);
}
