/* pk-bench on POSIX hosts: the raw baselines (posix_spawn, fork + exec,
 * a contained spawn by hand in a fresh cgroup), the careful writer's
 * replace, and the guardian section. */
#include "bench.h"

#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

extern char **environ;

#define READ_BUF (64 * 1024)

void bench_os_init(void) {
  signal(SIGPIPE, SIG_IGN);
  if (getenv("PK_GUARDIAN") == NULL)
    setenv("PK_GUARDIAN", PK_BENCH_GUARDIAN, 1);
}

double thread_cpu_s(void) {
  struct timespec ts;
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* ------------------------------------------------------- raw baselines */

/* Read fd to EOF into a 64 KiB buffer, discarding. Returns bytes read. */
static uint64_t drain_fd(int fd) {
  static char buf[READ_BUF];
  uint64_t total = 0;
  for (;;) {
    ssize_t n = read(fd, buf, sizeof(buf));
    if (n > 0) {
      total += (uint64_t)n;
    } else if (n == 0) {
      return total;
    } else if (errno != EINTR) {
      die("read: %s", strerror(errno));
    }
  }
}

static void wait_ok(pid_t pid, const char *what) {
  int st;
  while (waitpid(pid, &st, 0) < 0)
    if (errno != EINTR)
      die("waitpid %s: %s", what, strerror(errno));
  if (!WIFEXITED(st) || WEXITSTATUS(st) != 0)
    die("%s did not exit 0 (status 0x%x)", what, st);
}

uint64_t raw_spawn(char *const argv[], bool bigpipe) {
  int p[2];
  if (pipe2(p, O_CLOEXEC) < 0)
    die("pipe2: %s", strerror(errno));
  if (bigpipe && fcntl(p[0], F_SETPIPE_SZ, BIG_PIPE) < 0)
    die("F_SETPIPE_SZ: %s", strerror(errno));
  posix_spawn_file_actions_t fa;
  posix_spawn_file_actions_init(&fa);
  posix_spawn_file_actions_adddup2(&fa, p[1], 1);
  pid_t pid;
  int rc = posix_spawn(&pid, argv[0], &fa, NULL, argv, environ);
  posix_spawn_file_actions_destroy(&fa);
  if (rc != 0)
    die("posix_spawn %s: %s", argv[0], strerror(rc));
  close(p[1]);
  uint64_t n = drain_fd(p[0]);
  close(p[0]);
  wait_ok(pid, argv[0]);
  return n;
}

/* The same spawn contained by hand, pk's kernel floor on cgroup_v2, as
 * a vfork-style spawner does it (posix_spawn's way, which glibc 2.36
 * cannot aim at a cgroup): a fresh cgroup (mkdir, open its cgroup.procs),
 * clone(CLONE_VM | CLONE_VFORK), the child joins the cgroup and execs
 * with a pipe on stdout; read to EOF, waitpid, rmdir. raw_cg_dir: a
 * directory of the bench's own under the cgroup-v2 base (NULL:
 * unavailable). */
static char *raw_cg_dir;
static bool raw_cg_tried;
static unsigned raw_cg_seq;

typedef struct cg_child {
  int procs, out;
  char *const *argv;
} cg_child;

static int cg_child_main(void *arg) {
  const cg_child *c = arg;
  if (write(c->procs, "0", 1) != 1)
    _exit(126);
  dup2(c->out, 1);
  execve(c->argv[0], c->argv, environ);
  _exit(127);
}

static void raw_cgroup_spawn(char *const argv[]) {
  static char stack[64 * 1024] __attribute__((aligned(16)));
  char leaf[4400], procs[4500];
  snprintf(leaf, sizeof(leaf), "%s/l%u", raw_cg_dir, raw_cg_seq++);
  snprintf(procs, sizeof(procs), "%s/cgroup.procs", leaf);
  if (mkdir(leaf, 0755) != 0)
    die("mkdir %s: %s", leaf, strerror(errno));
  int p[2];
  cg_child c = {.procs = open(procs, O_WRONLY | O_CLOEXEC), .argv = argv};
  if (c.procs < 0 || pipe2(p, O_CLOEXEC) < 0)
    die("open/pipe2: %s", strerror(errno));
  c.out = p[1];
  pid_t pid = clone(cg_child_main, stack + sizeof(stack),
                    CLONE_VM | CLONE_VFORK | SIGCHLD, &c);
  if (pid < 0)
    die("clone: %s", strerror(errno));
  close(p[1]);
  close(c.procs);
  drain_fd(p[0]);
  close(p[0]);
  wait_ok(pid, argv[0]);
  if (rmdir(leaf) != 0)
    die("rmdir %s: %s", leaf, strerror(errno));
}

static void raw_cg_init(void) {
  raw_cg_tried = true;
  pk_host_prediction hp;
  if (pk_host_predict(&hp) != 0 || !hp.cgroup_v2)
    return;
  char dir[4200];
  snprintf(dir, sizeof(dir), "%s/pk-bench-raw-%d", hp.cgroup_base,
           (int)getpid());
  if (mkdir(dir, 0755) == 0)
    raw_cg_dir = strdup(dir);
}

/* fork() + execve: what a fork-based spawner costs. */
static void raw_fork(char *const argv[]) {
  int p[2];
  if (pipe2(p, O_CLOEXEC) < 0)
    die("pipe2: %s", strerror(errno));
  pid_t pid = fork();
  if (pid < 0)
    die("fork: %s", strerror(errno));
  if (pid == 0) {
    dup2(p[1], 1);
    execve(argv[0], argv, environ);
    _exit(127);
  }
  close(p[1]);
  drain_fd(p[0]);
  close(p[0]);
  wait_ok(pid, argv[0]);
}

bool raw_extra_available(int variant) {
  if (variant == V_FORK)
    return true;
  if (variant == V_RAW_CG && !raw_cg_tried)
    raw_cg_init();
  return variant == V_RAW_CG && raw_cg_dir != NULL;
}

void raw_extra_spawn(int variant, char *const argv[]) {
  if (variant == V_FORK)
    raw_fork(argv);
  else if (variant == V_RAW_CG && raw_cg_dir != NULL)
    raw_cgroup_spawn(argv);
  else
    die("spawn variant %d is not available on this host", variant);
}

void raw_extra_fini(void) {
  if (raw_cg_dir != NULL)
    rmdir(raw_cg_dir);
  free(raw_cg_dir);
  raw_cg_dir = NULL;
  raw_cg_tried = false;
}

void raw_replace(const char *dir, const char *tmp, const char *path,
                 const char *data, size_t len) {
  int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  if (fd < 0)
    die("%s: %s", tmp, strerror(errno));
  for (size_t off = 0; off < len;) {
    ssize_t n = write(fd, data + off, len - off);
    if (n < 0 && errno != EINTR)
      die("write: %s", strerror(errno));
    off += n > 0 ? (size_t)n : 0;
  }
  if (fsync(fd) != 0 || close(fd) != 0 || rename(tmp, path) != 0)
    die("%s: %s", path, strerror(errno));
  int dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dfd < 0 || fsync(dfd) != 0)
    die("%s: %s", dir, strerror(errno));
  close(dfd);
}

/* ---------------------------------------------------- guardian section */

/* kill_on_owner_death costs one spawn of the guardian at a process's
 * first guarded run, and (nearly) nothing per run after that. The first
 * run is measured in fresh processes (this program re-executed with
 * --first-run), against the first unguarded run of a fresh process. */
int bench_first_run(const char *kind) {
  pk_real_opts o = {.kill_on_owner_death = strcmp(kind, "guarded") == 0};
  pk_runner *r;
  pk_cmd *cmd;
  if (pk_real_runner_new(&o, &r) != 0 || pk_cmd_new("/bin/true", &cmd) != 0)
    die("cannot create the runner (kill_on_owner_death needs cgroup_v2)");
  double t0 = now_s();
  pk_spawn(r, cmd, NULL);
  printf("%.2f\n", (now_s() - t0) * 1e6);
  pk_cmd_free(cmd);
  pk_runner_free(r);
  return 0;
}

static double time_first_run(const char *self, const char *kind) {
  char *const argv[] = {(char *)self, "--first-run", (char *)kind, NULL};
  int p[2];
  if (pipe2(p, O_CLOEXEC) < 0)
    die("pipe2: %s", strerror(errno));
  posix_spawn_file_actions_t fa;
  posix_spawn_file_actions_init(&fa);
  posix_spawn_file_actions_adddup2(&fa, p[1], 1);
  pid_t pid;
  int rc = posix_spawn(&pid, self, &fa, NULL, argv, environ);
  posix_spawn_file_actions_destroy(&fa);
  if (rc != 0)
    die("posix_spawn %s: %s", self, strerror(rc));
  close(p[1]);
  char buf[64] = "";
  ssize_t n = read(p[0], buf, sizeof(buf) - 1);
  buf[n > 0 ? n : 0] = '\0';
  close(p[0]);
  wait_ok(pid, "pk-bench --first-run");
  return strtod(buf, NULL);
}

static const char *self_path(void) {
  static char self[4096];
  ssize_t n = readlink("/proc/self/exe", self, sizeof(self) - 1);
  if (n <= 0)
    die("readlink /proc/self/exe: %s", strerror(errno));
  self[n] = '\0';
  return self;
}

void bench_guardian(int iters, int batches, bench_ctx *c) {
  if (pk_mechanism_best() != PK_MECH_CGROUP_V2) {
    printf("guardian: skipped (needs cgroup_v2)\n");
    return;
  }
  const char *self = self_path();
  double first[2][MAX_BATCHES], run[2][MAX_BATCHES];
  pk_real_opts go = {.kill_on_owner_death = true};
  pk_runner *guarded;
  if (pk_real_runner_new(&go, &guarded) != 0)
    die("cannot create a guarded runner");
  pk_spawn(guarded, c->true_cmd, NULL); /* this process's guardian */
  int per = iters / batches / 4 > 0 ? iters / batches / 4 : 1;
  for (int b = 0; b < batches; b++) {
    first[0][b] = time_first_run(self, "plain");
    first[1][b] = time_first_run(self, "guarded");
    double t0 = now_s();
    for (int i = 0; i < per; i++)
      pk_spawn(c->runner, c->true_cmd, NULL);
    double t1 = now_s();
    for (int i = 0; i < per; i++)
      pk_spawn(guarded, c->true_cmd, NULL);
    run[0][b] = (t1 - t0) * 1e6 / per;
    run[1][b] = (now_s() - t1) * 1e6 / per;
  }
  pk_runner_free(guarded);
  double fp = median(first[0], batches), fg = median(first[1], batches);
  double rp = median(run[0], batches), rg = median(run[1], batches);
  printf("guardian_iters: %d fresh processes, %d x %d runs per variant\n",
         batches, per, batches);
  printf("guardian_first_run_us_plain: %.2f\n", fp);
  printf("guardian_first_run_us: %.2f\n", fg);
  printf("guardian_us_first_run: %.2f\n", fg - fp);
  printf("guardian_first_run_ratio: %.3f\n", fg / fp);
  printf("guardian_run_us_plain: %.2f\n", rp);
  printf("guardian_run_us: %.2f\n", rg);
  printf("guardian_us_per_run: %.2f\n", rg - rp);
  printf("guardian_run_ratio: %.3f\n", rg / rp);
  flush_out();
}
