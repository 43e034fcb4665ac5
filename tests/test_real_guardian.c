/* kill_on_owner_death (cgroup_v2): when the process that owns runs dies,
 * however it dies, its guardian kills every process of every run (setsid
 * escapees and frozen runs included) and removes its per-owner cgroup.
 *
 * The owner is a child this test forks (so the test may SIGKILL it); the
 * runs' processes and the guardian are reparented to this test, a child
 * subreaper, which waits on their pidfds and reaps them. */
#include "harness.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

const char *pk__cgroup_base(void); /* internal */

#define MAXP 64

static bool have_cgroup;

/* ------------------------------------------------------------ owner */

typedef struct seen {
  int pid[MAXP], n;
  int trees, readies;
} seen;

static void on_line(pk_proc *p, pk_stream s, const char *line, size_t len,
                    void *data) {
  (void)p, (void)s;
  seen *w = data;
  int pid;
  if (len == 5 && memcmp(line, "ready", 5) == 0)
    w->readies++;
  else if ((sscanf(line, "escaped %d", &pid) == 1 ||
            (sscanf(line, "pid %d", &pid) == 1 && ++w->trees)) &&
           w->n < MAXP)
    w->pid[w->n++] = pid;
}

static void owner_fail(int fd, const char *what, int rc) {
  dprintf(fd, "error %s: %s\n", what, pk_err_name(rc));
  _exit(3);
}

/* The cgroup-v2 directory of pid (its leaf, for a run's child). */
static void cgroup_dir_of(pid_t pid, char *out, size_t size) {
  char path[64], line[4096], own[4096] = "/";
  snprintf(path, sizeof(path), "/proc/%d/cgroup", (int)pid);
  FILE *f = fopen(path, "re");
  while (f != NULL && fgets(line, sizeof(line), f) != NULL)
    if (strncmp(line, "0::", 3) == 0)
      snprintf(own, sizeof(own), "%s", line + 3);
  if (f != NULL)
    fclose(f);
  own[strcspn(own, "\n")] = '\0';
  /* The base is this test's own cgroup at the root of the hierarchy
   * part it can see; pid's path extends it. */
  const char *base = pk__cgroup_base();
  FILE *g = fopen("/proc/self/cgroup", "re");
  char self[4096] = "/";
  while (g != NULL && fgets(line, sizeof(line), g) != NULL)
    if (strncmp(line, "0::", 3) == 0)
      snprintf(self, sizeof(self), "%s", line + 3);
  if (g != NULL)
    fclose(g);
  self[strcspn(self, "\n")] = '\0';
  size_t skip = strcmp(self, "/") == 0 ? 0 : strlen(self);
  snprintf(out, size, "%s%s", base, own + skip);
}

/* Freeze the leaf of pid and wait until the kernel says it is frozen. */
static int freeze_leaf_of(pid_t pid) {
  char dir[4096], path[4200], buf[256] = "";
  cgroup_dir_of(pid, dir, sizeof(dir));
  snprintf(path, sizeof(path), "%s/cgroup.freeze", dir);
  int fd = open(path, O_WRONLY | O_CLOEXEC);
  if (fd < 0 || write(fd, "1", 1) != 1)
    return -1;
  close(fd);
  snprintf(path, sizeof(path), "%s/cgroup.events", dir);
  fd = open(path, O_RDONLY | O_CLOEXEC);
  for (int i = 0; fd >= 0 && i < 1000 && !strstr(buf, "frozen 1"); i++) {
    struct pollfd pfd = {.fd = fd, .events = POLLPRI};
    ssize_t n = pread(fd, buf, sizeof(buf) - 1, 0);
    buf[n > 0 ? n : 0] = '\0';
    if (!strstr(buf, "frozen 1"))
      poll(&pfd, 1, 10);
  }
  if (fd >= 0)
    close(fd);
  return strstr(buf, "frozen 1") ? 0 : -1;
}

/* The guardian of owner: not the owner's child (it double-forks), so,
 * this test being a child subreaper, one of ours; its command line names
 * the owner's cgroup pk-<owner>-... Or 0. */
static bool pid_is_guardian_of(pid_t pid, pid_t owner) {
  char path[64], cmd[4096], want[32];
  int wlen = snprintf(want, sizeof(want), "/pk-%d-", (int)owner);
  snprintf(path, sizeof(path), "/proc/%d/cmdline", (int)pid);
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  ssize_t n = fd >= 0 ? read(fd, cmd, sizeof(cmd)) : -1;
  if (fd >= 0)
    close(fd);
  return n > 0 && memmem(cmd, (size_t)n, want, (size_t)wlen) != NULL;
}

static pid_t find_guardian(pid_t owner) {
  char path[128];
  snprintf(path, sizeof(path), "/proc/self/task/%d/children", (int)getpid());
  FILE *f = fopen(path, "re");
  long pid;
  pid_t found = 0;
  while (f != NULL && found == 0 && fscanf(f, "%ld", &pid) == 1)
    if (pid_is_guardian_of((pid_t)pid, owner))
      found = (pid_t)pid;
  if (f != NULL)
    fclose(f);
  return found;
}

/* In the forked owner: a run whose child forks setsid escapees, and a
 * tree run (frozen when asked); report every pid on fd, then "done"; with
 * exit_after, leave with _exit(0) instead of waiting to be killed. Never
 * returns. */
/* exit_after >= 0: exit normally once the test closes that pipe (after
 * it looked at the owner's cgroup); else wait to be killed. */
static void owner_main(int fd, unsigned disable, bool freeze, int exit_after) {
  uv_loop_t loop;
  uv_loop_init(&loop);
  pk_real_opts o = {.mechanism = PK_MECH_CGROUP_V2,
                    .disable = disable,
                    .kill_on_owner_death = true};
  pk_runner *r;
  int rc = pk_real_runner_new(&o, &r);
  if (rc != 0)
    owner_fail(fd, "runner", rc);
  pk_cmd *esc = pkt_fixture("escapees", "3", "120", NULL);
  pk_cmd *tree = pkt_fixture("tree", "2", "2", NULL);
  seen w = {{0}, 0, 0, 0};
  pk_start_opts so = {.loop = &loop, .on_line = on_line, .data = &w};
  pk_proc *p1, *p2;
  if ((rc = pk_start(r, esc, &so, &p1)) != 0 ||
      (rc = pk_start(r, tree, &so, &p2)) != 0)
    owner_fail(fd, "start", rc);
  while ((w.readies < 1 || w.trees < 7) && !pk_proc_done(p1) &&
         !pk_proc_done(p2))
    uv_run(&loop, UV_RUN_ONCE);
  if (w.readies < 1 || w.trees < 7)
    owner_fail(fd, "runs",
               pk_result_error(pk_proc_result(pk_proc_done(p1) ? p1 : p2)));
  if (freeze && freeze_leaf_of(pk_proc_pid(p2)) != 0)
    owner_fail(fd, "freeze", PK_EIO);
  dprintf(fd, "pid %d\npid %d\n", pk_proc_pid(p1), pk_proc_pid(p2));
  for (int i = 0; i < w.n; i++)
    dprintf(fd, "pid %d\n", w.pid[i]);
  dprintf(fd, "done\n");
  char c;
  if (exit_after >= 0) {
    while (read(exit_after, &c, 1) < 0 && errno == EINTR)
      ;
    _exit(0);
  }
  for (;;)
    pause();
}

/* ------------------------------------------------------------- test */

typedef struct owned {
  pid_t owner, guardian;
  int pidfd[MAXP + 1], n;
  int go; /* exit_after: closing it lets the owner exit, else -1 */
} owned;

static pid_t start_owner(unsigned disable, bool freeze, bool exit_after,
                         owned *o) {
  int fds[2], go[2] = {-1, -1};
  assert_int_equal(pipe2(fds, O_CLOEXEC), 0);
  if (exit_after)
    assert_int_equal(pipe2(go, O_CLOEXEC), 0);
  pid_t pid = fork();
  assert_true(pid >= 0);
  if (pid == 0) {
    close(fds[0]);
    if (go[1] >= 0)
      close(go[1]);
    owner_main(fds[1], disable, freeze, go[0]);
  }
  close(fds[1]);
  if (go[0] >= 0)
    close(go[0]);
  FILE *f = fdopen(fds[0], "r");
  char line[256];
  int v;
  memset(o, 0, sizeof(*o));
  o->owner = pid;
  o->go = go[1];
  while (fgets(line, sizeof(line), f) != NULL && strcmp(line, "done\n")) {
    if (sscanf(line, "pid %d", &v) == 1 && o->n < MAXP)
      o->pidfd[o->n++] = pkt_pidfd(v);
    else
      fail_msg("owner: %s", line);
  }
  fclose(f);
  o->guardian = find_guardian(pid);
  assert_true(o->guardian > 0); /* and so not a child of the owner */
  o->pidfd[o->n++] = pkt_pidfd(o->guardian);
  return pid;
}

/* This test's view of the owner's per-owner cgroups. */
static int owner_dirs(pid_t owner) {
  DIR *d = opendir(pk__cgroup_base());
  assert_non_null(d);
  char mine[32];
  int n = 0, len = snprintf(mine, sizeof(mine), "pk-%d-", (int)owner);
  struct dirent *e;
  while ((e = readdir(d)) != NULL)
    n += strncmp(e->d_name, mine, (size_t)len) == 0;
  closedir(d);
  return n;
}

static void remove_owner_dirs(pid_t owner) {
  DIR *d = opendir(pk__cgroup_base());
  assert_non_null(d);
  char mine[32];
  int len = snprintf(mine, sizeof(mine), "pk-%d-", (int)owner);
  struct dirent *e;
  while ((e = readdir(d)) != NULL)
    if (strncmp(e->d_name, mine, (size_t)len) == 0)
      assert_int_equal(unlinkat(dirfd(d), e->d_name, AT_REMOVEDIR), 0);
  closedir(d);
}

static void owner_death(unsigned disable, bool freeze, bool exit_normally) {
  pkt_snapshot snap;
  pkt_snapshot_take(&snap);
  owned o;
  pid_t owner = start_owner(disable, freeze, exit_normally, &o);
  print_message("owner %d: %d processes, guardian %d%s\n", (int)owner, o.n - 1,
                (int)o.guardian, freeze ? ", one run frozen" : "");
  assert_int_equal(o.n, 2 + 3 + 7 + 1);
  assert_int_equal(owner_dirs(owner), 1);
  if (exit_normally) /* only now: its guardian removes the cgroup */
    close(o.go);
  else
    assert_int_equal(kill(owner, SIGKILL), 0);
  int st;
  assert_int_equal(waitpid(owner, &st, 0), owner);
  assert_true(exit_normally ? WIFEXITED(st) : WIFSIGNALED(st));
  /* Every process of both runs and then the guardian itself end. */
  int left = pkt_wait_pidfds(o.pidfd, o.n, 10000);
  if (left != 0)
    fail_msg("%d of %d processes (guardian included) outlived the owner", left,
             o.n);
  assert_int_equal(owner_dirs(owner), 0); /* removed before it exited */
  pkt_snapshot_check(&snap);
}

static void sigkill_kills_tree(void **state) {
  (void)state;
  if (!have_cgroup)
    skip();
  owner_death(0, false, false);
}

static void sigkill_kills_frozen_tree(void **state) {
  (void)state;
  if (!have_cgroup)
    skip();
  owner_death(0, true, false);
}

static void sigkill_kills_tree_on_fallbacks(void **state) {
  (void)state;
  if (!have_cgroup)
    skip();
  /* pipe instead of pidfd, freeze + SIGKILL instead of cgroup.kill */
  owner_death(PK_NO_PIDFD | PK_NO_CGROUP_KILL | PK_NO_CLONE3, true, false);
}

static void normal_exit_kills_tree_and_guardian_exits(void **state) {
  (void)state;
  if (!have_cgroup)
    skip();
  owner_death(0, false, true);
  owner_death(PK_NO_PIDFD, false, true);
}

static void *guarded_run(void *arg) {
  pk_cmd *cmd = pkt_fixture("exit", "0", NULL);
  intptr_t rc = pk_output(arg, cmd, NULL);
  pk_cmd_free(cmd);
  return (void *)rc;
}

/* In a forked owner: 4 threads make their first guarded runs at once.
 * Exit 0 when all succeeded; the test counts the guardians. */
static int threads_owner(void) {
  pk_real_opts o = {.mechanism = PK_MECH_CGROUP_V2,
                    .kill_on_owner_death = true};
  pk_runner *r;
  pthread_t t[4];
  if (pk_real_runner_new(&o, &r) != 0)
    return 1;
  for (int i = 0; i < 4; i++)
    if (pthread_create(&t[i], NULL, guarded_run, r) != 0)
      return 2;
  int bad = 0;
  for (int i = 0; i < 4; i++) {
    void *rc;
    pthread_join(t[i], &rc);
    bad += rc != NULL;
  }
  return bad ? 3 : 0;
}

static void one_guardian_for_many_threads(void **state) {
  (void)state;
  if (!have_cgroup)
    skip();
  pkt_snapshot snap;
  pkt_snapshot_take(&snap);
  int go[2];
  assert_int_equal(pipe2(go, O_CLOEXEC), 0);
  pid_t owner = fork();
  assert_true(owner >= 0);
  if (owner == 0) {
    int rc = threads_owner();
    char c = (char)rc;
    if (write(go[1], &c, 1) != 1)
      _exit(9);
    for (;;)
      pause(); /* until the test kills us */
  }
  close(go[1]);
  char c = 9;
  assert_int_equal(read(go[0], &c, 1), 1);
  close(go[0]);
  assert_int_equal(c, 0);
  char path[128];
  snprintf(path, sizeof(path), "/proc/self/task/%d/children", (int)getpid());
  FILE *f = fopen(path, "re");
  int matching = 0, fds[1] = {-1};
  long pid;
  while (f != NULL && fscanf(f, "%ld", &pid) == 1)
    if (pid_is_guardian_of((pid_t)pid, owner) && matching++ == 0)
      fds[0] = pkt_pidfd((pid_t)pid);
  if (f != NULL)
    fclose(f);
  assert_int_equal(matching, 1); /* one guardian, however many threads */
  assert_int_equal(kill(owner, SIGKILL), 0);
  assert_int_equal(waitpid(owner, NULL, 0), owner);
  assert_int_equal(pkt_wait_pidfds(fds, 1, 10000), 0);
  assert_int_equal(owner_dirs(owner), 0);
  pkt_snapshot_check(&snap);
}

/* In a forked child: a guarded run with PK_GUARDIAN set to env (NULL:
 * unset) must fail with PK_ENOENT naming want; exit 0 when it does. */
static int missing_helper_child(const char *env, const char *want) {
  if (env != NULL)
    setenv("PK_GUARDIAN", env, 1);
  else
    unsetenv("PK_GUARDIAN");
  pk_real_opts o = {.mechanism = PK_MECH_CGROUP_V2,
                    .kill_on_owner_death = true};
  pk_runner *r;
  pk_cmd *cmd = pkt_fixture("exit", "0", NULL);
  pk_result *res = NULL;
  if (pk_real_runner_new(&o, &r) != 0)
    return 1;
  int rc = pk_output(r, cmd, &res);
  const char *msg = res ? pk_result_errmsg(res) : "";
  printf("%s: %s\n", pk_err_name(rc), msg);
  return rc == PK_ENOENT && strstr(msg, want) != NULL ? 0 : 2;
}

static void missing_helper_is_a_typed_error(void **state) {
  (void)state;
  if (!have_cgroup)
    skip();
  pkt_snapshot snap;
  pkt_snapshot_take(&snap);
  const char *envs[2] = {"/nonexistent/pk-guardian", NULL};
  const char *wants[2] = {"/nonexistent/pk-guardian",
                          "libexec/processkit/pk-guardian"};
  for (int i = 0; i < 2; i++) {
    fflush(stdout);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0)
      _exit(missing_helper_child(envs[i], wants[i]));
    int st;
    assert_int_equal(waitpid(pid, &st, 0), pid);
    assert_true(WIFEXITED(st));
    assert_int_equal(WEXITSTATUS(st), 0);
    remove_owner_dirs(pid); /* empty: the child had no run */
  }
  pkt_snapshot_check(&snap);
}

static void process_group_is_unsupported(void **state) {
  (void)state;
  pk_real_opts o = {.mechanism = PK_MECH_PROCESS_GROUP,
                    .kill_on_owner_death = true};
  pk_runner *r = NULL;
  assert_int_equal(pk_real_runner_new(&o, &r), PK_EUNSUPPORTED);
  assert_null(r);
  if (!have_cgroup)
    return;
  /* A guarded runner refuses a command that forces process_group. */
  o.mechanism = PK_MECH_CGROUP_V2;
  PKT_ASSERT_OK(pk_real_runner_new(&o, &r));
  pk_cmd *cmd = pkt_fixture("exit", "0", NULL);
  PKT_ASSERT_OK(pk_cmd_set_mechanism(cmd, PK_MECH_PROCESS_GROUP));
  pk_result *res = NULL;
  assert_int_equal(pk_output(r, cmd, &res), PK_EUNSUPPORTED);
  assert_non_null(strstr(pk_result_errmsg(res), "kill_on_owner_death"));
  pk_result_free(res);
  pk_cmd_free(cmd);
  pk_runner_free(r);
}

/* pk run turns the guardian on (the CLI re-executes itself as it):
 * kill -9 of pk ends the tree it ran. */
static void pk_run_tree_dies_with_pk(void **state) {
  (void)state;
  if (!have_cgroup)
    skip();
  pkt_snapshot snap;
  pkt_snapshot_take(&snap);
  int out[2];
  assert_int_equal(pipe2(out, O_CLOEXEC), 0);
  pid_t pk = fork();
  assert_true(pk >= 0);
  if (pk == 0) {
    dup2(out[1], 1);
    execl(PK_CLI, PK_CLI, "run", "--", PK_FIXTURE, "escapees", "3", "120",
          (char *)NULL);
    _exit(127);
  }
  close(out[1]);
  FILE *f = fdopen(out[0], "r");
  char line[256];
  int fds[5], n = 0, v;
  fds[n++] = -1; /* the direct child: its pid is not printed */
  while (fgets(line, sizeof(line), f) != NULL && strcmp(line, "ready\n"))
    if (sscanf(line, "escaped %d", &v) == 1 && n < 4)
      fds[n++] = pkt_pidfd(v);
  pid_t guardian = find_guardian(pk);
  assert_true(guardian > 0);
  fds[0] = pkt_pidfd(guardian);
  assert_int_equal(n, 4);
  assert_int_equal(kill(pk, SIGKILL), 0);
  assert_int_equal(waitpid(pk, NULL, 0), pk);
  fclose(f);
  assert_int_equal(pkt_wait_pidfds(fds, n, 10000), 0);
  assert_int_equal(owner_dirs(pk), 0);
  pkt_snapshot_check(&snap);
}

static int setup(void **state) {
  have_cgroup = pk_mechanism_available(PK_MECH_CGROUP_V2) == 0;
  print_message("cgroup_v2 %s\n", have_cgroup ? "available" : "missing");
  setenv("PK_GUARDIAN", PK_GUARDIAN_BIN, 1);
  return pkt_setup(state);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(sigkill_kills_tree),
      cmocka_unit_test(sigkill_kills_frozen_tree),
      cmocka_unit_test(sigkill_kills_tree_on_fallbacks),
      cmocka_unit_test(normal_exit_kills_tree_and_guardian_exits),
      cmocka_unit_test(pk_run_tree_dies_with_pk),
      cmocka_unit_test(one_guardian_for_many_threads),
      cmocka_unit_test(missing_helper_is_a_typed_error),
      cmocka_unit_test(process_group_is_unsupported),
  };
  return cmocka_run_group_tests(tests, setup, NULL);
}
