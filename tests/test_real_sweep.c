/* cgroup_v2 leftovers: cgroups that runs create inside their leaf are
 * removed (deepest first) at teardown, and the cgroups of owners that are
 * provably dead (pid + start time + pid namespace) are killed and removed
 * by the next process's first run, never by a read-only query (pk caps).
 *
 * The sweep test works in a sandbox cgroup of its own: the processes it
 * starts there see the sandbox as their base, so no other test program
 * (or other pk process on the host) sweeps the fabricated owners first. */
#include "harness.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

const char *pk__cgroup_base(void); /* internal */

static bool have_cgroup;

/* --------------------------------------------------------- helpers */

static void write_file(const char *dir, const char *file, const char *val) {
  char path[4096];
  snprintf(path, sizeof(path), "%s/%s", dir, file);
  int fd = open(path, O_WRONLY | O_CLOEXEC);
  if (fd < 0 || write(fd, val, strlen(val)) < 0)
    fail_msg("write %s: %s", path, strerror(errno));
  close(fd);
}

/* A child of ours that only waits to be killed. */
static pid_t idler(void) {
  pid_t pid = fork();
  assert_true(pid >= 0);
  if (pid == 0)
    for (;;)
      pause();
  return pid;
}

/* An idler moved into cgroup dir. */
static pid_t idler_in(const char *dir) {
  pid_t pid = idler();
  char num[32];
  snprintf(num, sizeof(num), "%d", (int)pid);
  write_file(dir, "cgroup.procs", num);
  return pid;
}

static unsigned long long start_time(pid_t pid) {
  char path[64], buf[1024];
  snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
  FILE *f = fopen(path, "re");
  assert_non_null(f);
  size_t n = fread(buf, 1, sizeof(buf) - 1, f);
  fclose(f);
  buf[n] = '\0';
  char *p = strrchr(buf, ')');
  for (int field = 2; field < 22 && p != NULL; field++)
    p = strchr(p + 1, ' ');
  unsigned long long start = 0;
  assert_non_null(p);
  assert_int_equal(sscanf(p, " %llu", &start), 1);
  return start;
}

static unsigned long long pidns(void) {
  char link[64];
  ssize_t n = readlink("/proc/self/ns/pid", link, sizeof(link) - 1);
  assert_true(n > 0);
  link[n] = '\0';
  unsigned long long ns = 0;
  assert_int_equal(sscanf(link, "pid:[%llu]", &ns), 1);
  return ns;
}

static bool exists(const char *path) { return access(path, F_OK) == 0; }

/* Run argv (the pk CLI) as a process placed in cgroup dir; its status. */
static int run_in(const char *dir, char *const argv[]) {
  char procs[4200];
  snprintf(procs, sizeof(procs), "%s/cgroup.procs", dir);
  pid_t pid = fork();
  assert_true(pid >= 0);
  if (pid == 0) {
    int fd = open(procs, O_WRONLY | O_CLOEXEC);
    int null = open("/dev/null", O_WRONLY);
    if (fd < 0 || write(fd, "0", 1) != 1 || null < 0)
      _exit(120);
    dup2(null, 1);
    dup2(null, 2);
    execv(argv[0], argv);
    _exit(121);
  }
  int st;
  assert_int_equal(waitpid(pid, &st, 0), pid);
  return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}

/* Wait (event-driven, bounded) until nothing lives in cgroup dir. */
static void wait_unpopulated(const char *dir) {
  char path[4096], buf[256];
  snprintf(path, sizeof(path), "%s/cgroup.events", dir);
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  assert_true(fd >= 0);
  uint64_t deadline = pkt_now_ms() + 10000;
  for (;;) {
    ssize_t n = pread(fd, buf, sizeof(buf) - 1, 0);
    buf[n > 0 ? n : 0] = '\0';
    if (strstr(buf, "populated 0") != NULL || pkt_now_ms() > deadline)
      break;
    struct pollfd pfd = {.fd = fd, .events = POLLPRI};
    poll(&pfd, 1, 100);
  }
  close(fd);
  assert_non_null(strstr(buf, "populated 0"));
}

/* rmdir dir and everything below it, deepest first. */
static void remove_tree(const char *dir) {
  DIR *d = opendir(dir);
  struct dirent *e;
  while (d != NULL && (e = readdir(d)) != NULL) {
    if (e->d_type != DT_DIR || e->d_name[0] == '.')
      continue;
    char sub[4096];
    snprintf(sub, sizeof(sub), "%s/%s", dir, e->d_name);
    remove_tree(sub);
  }
  if (d != NULL)
    closedir(d);
  if (rmdir(dir) != 0 && errno != ENOENT)
    fail_msg("rmdir %s: %s", dir, strerror(errno));
}

/* ------------------------------------------------------ the sweep */

enum { DEAD, DEAD_NESTED, OTHER_NS, LIVE, REUSED, NCASES };

static char sandbox[4096];

typedef struct fabric {
  const char *sandbox;
  char dir[NCASES][4200]; /* the owner cgroup of each case */
  pid_t idler[NCASES];    /* one process in each case's leaf */
  int pidfd[NCASES];
  pid_t owner_x, owner_z; /* X will die; Z lives on */
} fabric;

/* owner cgroup + run-0 leaf (+ run-0/nested for the nested case). */
static void fabricate(fabric *f, int c, pid_t pid, unsigned long long start,
                      unsigned long long ns) {
  char leaf[4300];
  snprintf(f->dir[c], sizeof(f->dir[c]), "%s/pk-%d-%llu-%llu%s", f->sandbox,
           (int)pid, start, ns, c == DEAD_NESTED ? ".1" : "");
  assert_int_equal(mkdir(f->dir[c], 0755), 0);
  snprintf(leaf, sizeof(leaf), "%s/run-0", f->dir[c]);
  assert_int_equal(mkdir(leaf, 0755), 0);
  if (c == DEAD_NESTED) {
    strcat(leaf, "/nested");
    assert_int_equal(mkdir(leaf, 0755), 0);
  }
  f->idler[c] = idler_in(leaf);
  f->pidfd[c] = pkt_pidfd(f->idler[c]);
}

static void fabric_setup(fabric *f) {
  f->sandbox = sandbox;
  snprintf(sandbox, sizeof(sandbox), "%s/pkt-sweep-%d", pk__cgroup_base(),
           (int)getpid());
  assert_int_equal(mkdir(f->sandbox, 0755), 0);
  unsigned long long ns = pidns();
  f->owner_x = idler();
  f->owner_z = idler();
  unsigned long long sx = start_time(f->owner_x), sz = start_time(f->owner_z);
  fabricate(f, DEAD, f->owner_x, sx, ns);
  fabricate(f, DEAD_NESTED, f->owner_x, sx, ns);
  fabricate(f, OTHER_NS, f->owner_x, sx, ns + 1);
  fabricate(f, LIVE, f->owner_z, sz, ns);
  fabricate(f, REUSED, f->owner_z, sz + 1, ns);
  /* X is gone for good: its cgroups now belong to a dead owner. */
  assert_int_equal(kill(f->owner_x, SIGKILL), 0);
  assert_int_equal(waitpid(f->owner_x, NULL, 0), f->owner_x);
}

static void fabric_teardown(fabric *f) {
  for (int c = 0; c < NCASES; c++) {
    if (f->pidfd[c] >= 0)
      close(f->pidfd[c]);
    kill(f->idler[c], SIGKILL); /* ours; the dead ones are zombies */
    assert_int_equal(waitpid(f->idler[c], NULL, 0), f->idler[c]);
  }
  kill(f->owner_z, SIGKILL);
  assert_int_equal(waitpid(f->owner_z, NULL, 0), f->owner_z);
  /* pk run's guardian (reparented to us) may still be removing its own
   * cgroup in the sandbox: wait until it has exited. */
  wait_unpopulated(f->sandbox);
  remove_tree(f->sandbox);
}

static bool swept(int c) {
  return c == DEAD || c == DEAD_NESTED || c == REUSED;
}

static void dead_owners_swept_on_first_run_only(void **state) {
  (void)state;
  if (!have_cgroup)
    skip();
  pkt_snapshot snap;
  pkt_snapshot_take(&snap);
  static fabric f;
  fabric_setup(&f);
  char *caps[] = {PK_CLI, "caps", NULL};
  assert_int_equal(run_in(f.sandbox, caps), 0);
  for (int c = 0; c < NCASES; c++) { /* a query changes nothing */
    assert_true(exists(f.dir[c]));
    assert_true(pkt_pid_alive(f.idler[c]));
  }
  char *run[] = {PK_CLI, "run", "--", "/bin/true", NULL};
  assert_int_equal(run_in(f.sandbox, run), 0);
  int dead[NCASES], ndead = 0;
  for (int c = 0; c < NCASES; c++) {
    assert_true(exists(f.dir[c]) != swept(c));
    if (swept(c)) {
      dead[ndead++] = f.pidfd[c];
      f.pidfd[c] = -1;
    } else {
      assert_true(pkt_pid_alive(f.idler[c]));
    }
  }
  assert_int_equal(pkt_wait_pidfds(dead, ndead, 10000), 0);
  fabric_teardown(&f);
  pkt_snapshot_check(&snap);
}

/* ---------------------------------------- nested cgroups at teardown */

typedef struct nest {
  int pid[2], n;
  bool ready;
} nest;

static void on_line(pk_proc *p, pk_stream s, const char *line, size_t len,
                    void *data) {
  (void)p, (void)s;
  nest *w = data;
  int pid;
  if (len == 5 && memcmp(line, "ready", 5) == 0)
    w->ready = true;
  else if (sscanf(line, "escaped %d", &pid) == 1 && w->n < 2)
    w->pid[w->n++] = pid;
}

/* The run's processes make cgroups inside its leaf (two levels) and move
 * there; the run ends by a clean exit of the direct child or by a kill;
 * either way nothing lives on and no cgroup is left. */
static void nested_removed(unsigned disable, bool kill_early) {
  pkt_snapshot snap;
  pkt_snapshot_take(&snap);
  uv_loop_t loop;
  assert_int_equal(uv_loop_init(&loop), 0);
  pk_runner *r = pkt_runner(PK_MECH_CGROUP_V2, disable);
  pk_cmd *cmd =
      pkt_fixture("cgroup-nest", kill_early ? "120" : "0", "120", NULL);
  nest w = {{0, 0}, 0, false};
  pk_start_opts o = {.loop = &loop, .on_line = on_line, .data = &w};
  pk_proc *p;
  PKT_ASSERT_OK(pk_start(r, cmd, &o, &p));
  while (!w.ready && !pk_proc_done(p))
    uv_run(&loop, UV_RUN_ONCE);
  assert_true(w.ready);
  assert_int_equal(w.n, 2);
  if (kill_early)
    PKT_ASSERT_OK(pk_proc_kill(p, SIGKILL));
  while (!pk_proc_done(p))
    uv_run(&loop, UV_RUN_ONCE);
  for (int i = 0; i < w.n; i++)
    assert_false(pkt_pid_alive(w.pid[i]));
  assert_int_equal(pk_result_outcome(pk_proc_result(p)),
                   kill_early ? PK_OUTCOME_CANCELLED : PK_OUTCOME_EXITED);
  pk_proc_free(p);
  uv_run(&loop, UV_RUN_DEFAULT);
  assert_int_equal(uv_loop_close(&loop), 0);
  pk_cmd_free(cmd);
  pk_runner_free(r);
  pkt_snapshot_check(&snap); /* no leaf, no nested cgroup left */
}

static void nested_cgroups_removed(void **state) {
  (void)state;
  if (!have_cgroup)
    skip();
  nested_removed(0, false);
  nested_removed(0, true);
}

static void nested_cgroups_removed_without_cgroup_kill(void **state) {
  (void)state;
  if (!have_cgroup)
    skip();
  nested_removed(PK_NO_CGROUP_KILL, false);
  nested_removed(PK_NO_CGROUP_KILL | PK_NO_CLONE3, true);
}

static int setup(void **state) {
  have_cgroup = pk_mechanism_available(PK_MECH_CGROUP_V2) == 0;
  print_message("cgroup_v2 %s\n", have_cgroup ? "available" : "missing");
  return pkt_setup(state);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(nested_cgroups_removed),
      cmocka_unit_test(nested_cgroups_removed_without_cgroup_kill),
      cmocka_unit_test(dead_owners_swept_on_first_run_only),
  };
  return cmocka_run_group_tests(tests, setup, NULL);
}
