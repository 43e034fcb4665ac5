/* pk-bench: processkit against raw C baselines, measured in the same run.
 *
 *   pk-bench [--fixture PATH]
 *            [--only
 * spawn|mem|capture|guardian|teardown|freeze|cassette|replay| load|save]
 *            [--iters N] [--batches B] [--capture-bytes N]
 *            [--capture-rounds R]
 *   pk-bench --loop raw|pk|pgroup|fork N     (for strace / perf stat)
 *   pk-bench --first-run plain|guarded       (one fresh process's first
 *                                             run, in us; for guardian)
 *
 * Prints `name: value` lines. Every pk figure has a baseline measured in
 * the same process, interleaved in batches so a noisy machine hurts both
 * sides alike; figures are medians over the batches. Goals are reported,
 * never enforced: the exit status is non-zero only when a run fails.
 */
#include "bench.h"

#include <pk/pk.h>

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <spawn.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

extern char **environ;

#define READ_BUF (64 * 1024)
#define BIG_PIPE (1 << 20)
#define MIB (1024ull * 1024ull)

#define GOAL_SPAWN_RATIO 1.10
#define GOAL_SPAWN_RATIO_512MIB 1.2
#define GOAL_CAPTURE_RATIO 0.9

typedef struct opts {
  const char *fixture;
  const char *only;
  int iters;   /* spawns per variant in the spawn section */
  int batches; /* batches per variant */
  uint64_t capture_bytes;
  int capture_rounds;
} opts;

/* ------------------------------------------------------------- helpers */

double now_s(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* CPU seconds (user + system) this process has used; children excluded,
 * so it is the parent-side cost of a spawn or of a capture. */
double cpu_s(void) {
  struct rusage ru;
  getrusage(RUSAGE_SELF, &ru);
  return (double)(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) +
         (double)(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e6;
}

/* CPU seconds of the calling thread only (a helper thread of pk's moves
 * work off it without removing it: cpu_s shows the whole process). */
static double thread_cpu_s(void) {
  struct timespec ts;
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}
static double last_thread_cpu;

/* CPU of the last time_spawns / time_capture call, same unit as its
 * result's denominator (per spawn in us, per GiB in s). */
static double last_cpu;

void die(const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  fputs("pk-bench: ", stderr);
  vfprintf(stderr, fmt, ap);
  fputc('\n', stderr);
  va_end(ap);
  exit(1);
}

static int cmp_double(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return (x > y) - (x < y);
}

double median(const double *v, int n) {
  double s[MAX_BATCHES];
  memcpy(s, v, (size_t)n * sizeof(double));
  qsort(s, (size_t)n, sizeof(double), cmp_double);
  return n % 2 ? s[n / 2] : (s[n / 2 - 1] + s[n / 2]) / 2;
}

void print_goal(const char *name, double value, double goal, bool le) {
  bool met = le ? value <= goal : value >= goal;
  printf("goal_%s: %s (%.3f %s %.2f)\n", name, met ? "met" : "missed", value,
         le ? "<=" : ">=", goal);
}

/* Keep a buffer alive and its contents observable to the compiler. */
static void keep(void *p) { __asm__ volatile("" : : "r"(p) : "memory"); }

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

/* posix_spawn with a pipe on stdout, read to EOF, waitpid. */
static uint64_t raw_spawn(char *const argv[], bool bigpipe) {
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
  pk_host_prediction hp;
  if (pk_host_predict(&hp) != 0 || !hp.cgroup_v2)
    return;
  char dir[4200];
  snprintf(dir, sizeof(dir), "%s/pk-bench-raw-%d", hp.cgroup_base,
           (int)getpid());
  if (mkdir(dir, 0755) == 0)
    raw_cg_dir = strdup(dir);
}

static void raw_cg_fini(void) {
  if (raw_cg_dir != NULL)
    rmdir(raw_cg_dir);
  free(raw_cg_dir);
  raw_cg_dir = NULL;
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

/* ------------------------------------------------------------------ pk */

typedef struct pk_ctx {
  pk_runner *runner;        /* default: pk_real_runner_new(NULL) */
  pk_runner *pgroup_runner; /* forced process_group, for diagnosis */
  pk_cmd *true_cmd;
  char mechanism[32];
  char method[32];
} pk_ctx;

static uint64_t pk_spawn(pk_runner *r, const pk_cmd *cmd, pk_ctx *ctx) {
  pk_result *res = NULL;
  int rc = pk_output(r, cmd, &res);
  if (rc != 0 || pk_result_code(res) != 0)
    die("pk_output %s: %s (code %d): %s", pk_cmd_program(cmd), pk_strerror(rc),
        res ? pk_result_code(res) : -1, res ? pk_result_errmsg(res) : "");
  uint64_t n = pk_result_total_bytes(res, PK_STDOUT);
  if (ctx != NULL) {
    snprintf(ctx->mechanism, sizeof(ctx->mechanism), "%s",
             pk_mechanism_name(pk_result_mechanism(res)));
    snprintf(ctx->method, sizeof(ctx->method), "%s",
             pk_result_spawn_method(res));
  }
  pk_result_free(res);
  return n;
}

static void pk_ctx_init(pk_ctx *c) {
  memset(c, 0, sizeof(*c));
  pk_real_opts pg = {.mechanism = PK_MECH_PROCESS_GROUP};
  if (pk_real_runner_new(NULL, &c->runner) != 0 ||
      pk_real_runner_new(&pg, &c->pgroup_runner) != 0 ||
      pk_cmd_new("/bin/true", &c->true_cmd) != 0)
    die("cannot create the pk runner or command");
}

static void pk_ctx_free(pk_ctx *c) {
  pk_cmd_free(c->true_cmd);
  pk_runner_free(c->runner);
  pk_runner_free(c->pgroup_runner);
}

/* ------------------------------------------------------ spawn section */

enum { V_RAW, V_PK, V_PGROUP, V_RAW_CG, V_COUNT };

/* Per-spawn microseconds of n spawns of one variant. */
static double time_spawns(int variant, int n, pk_ctx *c) {
  static char *const true_argv[] = {"/bin/true", NULL};
  double t0 = now_s(), c0 = cpu_s(), tc0 = thread_cpu_s();
  for (int i = 0; i < n; i++) {
    if (variant == V_RAW)
      raw_spawn(true_argv, false);
    else if (variant == V_PK)
      pk_spawn(c->runner, c->true_cmd, NULL);
    else if (variant == V_PGROUP)
      pk_spawn(c->pgroup_runner, c->true_cmd, NULL);
    else if (variant == V_RAW_CG)
      raw_cgroup_spawn(true_argv);
    else
      raw_fork(true_argv);
  }
  last_cpu = (cpu_s() - c0) * 1e6 / n;
  last_thread_cpu = (thread_cpu_s() - tc0) * 1e6 / n;
  return (now_s() - t0) * 1e6 / n;
}

static void bench_spawn(const opts *o, pk_ctx *c) {
  double us[V_COUNT][MAX_BATCHES], cpu[V_COUNT][MAX_BATCHES],
      tcpu[V_COUNT][MAX_BATCHES];
  int per = o->iters / o->batches > 0 ? o->iters / o->batches : 1;
  pk_spawn(c->runner, c->true_cmd, c); /* warm up, learn the mechanism */
  raw_cg_init();
  int nv = raw_cg_dir != NULL ? V_COUNT : V_RAW_CG;
  for (int v = 0; v < nv; v++)
    time_spawns(v, 20, c);
  for (int b = 0; b < o->batches; b++) {
    for (int k = 0; k < nv; k++) {
      int v = (b + k) % nv; /* rotate who goes first */
      us[v][b] = time_spawns(v, per, c);
      cpu[v][b] = last_cpu;
      tcpu[v][b] = last_thread_cpu;
    }
  }
  double raw = median(us[V_RAW], o->batches);
  double pk = median(us[V_PK], o->batches);
  double pg = median(us[V_PGROUP], o->batches);
  printf("spawn_mechanism: %s\n", c->mechanism);
  printf("spawn_method: %s\n", c->method);
  printf("spawn_iters: %d x %d batches per variant\n", per, o->batches);
  printf("spawn_us_raw: %.2f\n", raw);
  printf("spawn_us_pk: %.2f\n", pk);
  printf("spawn_ratio: %.3f\n", pk / raw);
  printf("spawn_parent_cpu_us_raw: %.2f\n", median(cpu[V_RAW], o->batches));
  printf("spawn_parent_cpu_us_pk: %.2f\n", median(cpu[V_PK], o->batches));
  printf("spawn_thread_cpu_us_raw: %.2f\n", median(tcpu[V_RAW], o->batches));
  printf("spawn_thread_cpu_us_pk: %.2f\n", median(tcpu[V_PK], o->batches));
  printf("spawn_us_pk_process_group: %.2f\n", pg);
  printf("spawn_ratio_process_group: %.3f\n", pg / raw);
  printf("spawn_parent_cpu_us_pk_process_group: %.2f\n",
         median(cpu[V_PGROUP], o->batches));
  if (raw_cg_dir != NULL && strcmp(c->mechanism, "cgroup_v2") == 0) {
    /* pk against the same contained spawn written by hand: what pk adds
     * on top of the kernel's own cost of a fresh cgroup */
    double rc = median(us[V_RAW_CG], o->batches);
    printf("spawn_us_raw_cgroup: %.2f\n", rc);
    printf("spawn_ratio_raw_cgroup_vs_raw: %.3f\n", rc / raw);
    printf("spawn_ratio_vs_raw_cgroup: %.3f\n", pk / rc);
    printf("spawn_parent_cpu_us_raw_cgroup: %.2f\n",
           median(cpu[V_RAW_CG], o->batches));
    print_goal("spawn_ratio_vs_raw_cgroup", pk / rc, GOAL_SPAWN_RATIO, true);
  }
  print_goal("spawn_ratio", pk / raw, GOAL_SPAWN_RATIO, true);
  raw_cg_fini();
  fflush(stdout);
}

/* ---------------------------------------------------- parent memory */

#define BIG_PARENT (512 * MIB)

/* Each batch measures the small parent on both sides of the big one
 * (half before, half after), so drift on a shared machine hits both. */
static void bench_mem(const opts *o, pk_ctx *c) {
  enum { PK_SMALL, PK_BIG, FORK_SMALL, FORK_BIG, M_COUNT };
  double us[M_COUNT][MAX_BATCHES];
  int batches = o->batches;
  int half = o->iters / o->batches / 4 > 0 ? o->iters / o->batches / 4 : 1;
  int per_fork_big = half / 2 > 0 ? half / 2 : 1;
  for (int b = 0; b < batches; b++) {
    double pk_a = time_spawns(V_PK, half, c);
    double fork_a = time_spawns(V_COUNT, half, c);
    char *mem = malloc(BIG_PARENT);
    if (mem == NULL)
      die("cannot allocate 512 MiB");
    memset(mem, 0x5a, BIG_PARENT);
    keep(mem);
    if (b % 2) {
      us[FORK_BIG][b] = time_spawns(V_COUNT, per_fork_big, c);
      us[PK_BIG][b] = time_spawns(V_PK, 2 * half, c);
    } else {
      us[PK_BIG][b] = time_spawns(V_PK, 2 * half, c);
      us[FORK_BIG][b] = time_spawns(V_COUNT, per_fork_big, c);
    }
    keep(mem);
    free(mem);
    us[FORK_SMALL][b] = (fork_a + time_spawns(V_COUNT, half, c)) / 2;
    us[PK_SMALL][b] = (pk_a + time_spawns(V_PK, half, c)) / 2;
  }
  double pks = median(us[PK_SMALL], batches);
  double pkb = median(us[PK_BIG], batches);
  double fks = median(us[FORK_SMALL], batches);
  double fkb = median(us[FORK_BIG], batches);
  printf("spawn_512mib_iters: pk %d, fork %d x %d batches per variant\n",
         2 * half, per_fork_big, batches);
  printf("spawn_us_pk_small_parent: %.2f\n", pks);
  printf("spawn_us_pk_512mib_parent: %.2f\n", pkb);
  printf("spawn_ratio_512mib: %.3f\n", pkb / pks);
  printf("spawn_us_fork_small_parent: %.2f\n", fks);
  printf("spawn_us_fork_512mib_parent: %.2f\n", fkb);
  printf("spawn_ratio_512mib_raw_fork: %.3f\n", fkb / fks);
  print_goal("spawn_ratio_512mib", pkb / pks, GOAL_SPAWN_RATIO_512MIB, true);
  fflush(stdout);
}

/* ----------------------------------------------------- capture section */

enum { C_RAW, C_RAW_BIG, C_PK, C_COUNT };

static double time_capture(int variant, const opts *o, pk_ctx *c, pk_cmd *cmd) {
  char size[32];
  snprintf(size, sizeof(size), "%llu", (unsigned long long)o->capture_bytes);
  char *const argv[] = {(char *)o->fixture, "spew", size, "1", NULL};
  double t0 = now_s(), c0 = cpu_s();
  uint64_t n = variant == C_PK ? pk_spawn(c->runner, cmd, NULL)
                               : raw_spawn(argv, variant == C_RAW_BIG);
  double dt = now_s() - t0;
  last_cpu = (cpu_s() - c0) / ((double)n / (double)(1ull << 30));
  if (n != o->capture_bytes)
    die("capture variant %d got %llu bytes, want %llu", variant,
        (unsigned long long)n, (unsigned long long)o->capture_bytes);
  return (double)n / dt / 1e9;
}

static void bench_capture(const opts *o, pk_ctx *c) {
  char size[32];
  snprintf(size, sizeof(size), "%llu", (unsigned long long)o->capture_bytes);
  pk_cmd *cmd;
  if (pk_cmd_new(o->fixture, &cmd) != 0 || pk_cmd_arg(cmd, "spew") != 0 ||
      pk_cmd_arg(cmd, size) != 0 || pk_cmd_arg(cmd, "1") != 0 ||
      pk_cmd_set_capture_limit(cmd, PK_LIMIT_TAIL, MIB) != 0)
    die("cannot build the capture command");
  double gbps[C_COUNT][MAX_BATCHES], cpu[C_COUNT][MAX_BATCHES];
  for (int r = 0; r < o->capture_rounds; r++)
    for (int k = 0; k < C_COUNT; k++) {
      int v = (r + k) % C_COUNT;
      gbps[v][r] = time_capture(v, o, c, cmd);
      cpu[v][r] = last_cpu;
    }
  pk_cmd_free(cmd);
  double raw = median(gbps[C_RAW], o->capture_rounds);
  double big = median(gbps[C_RAW_BIG], o->capture_rounds);
  double pk = median(gbps[C_PK], o->capture_rounds);
  double best = raw > big ? raw : big;
  printf("capture_bytes: %llu x %d rounds per variant\n",
         (unsigned long long)o->capture_bytes, o->capture_rounds);
  printf("capture_gbps_raw: %.3f\n", raw);
  printf("capture_gbps_raw_bigpipe: %.3f\n", big);
  printf("capture_gbps_pk: %.3f\n", pk);
  printf("capture_baseline: %s\n", raw > big ? "raw" : "raw_bigpipe");
  printf("capture_ratio: %.3f\n", pk / best);
  printf("capture_parent_cpu_s_per_gib_raw: %.3f\n",
         median(cpu[C_RAW], o->capture_rounds));
  printf("capture_parent_cpu_s_per_gib_raw_bigpipe: %.3f\n",
         median(cpu[C_RAW_BIG], o->capture_rounds));
  printf("capture_parent_cpu_s_per_gib_pk: %.3f\n",
         median(cpu[C_PK], o->capture_rounds));
  print_goal("capture_ratio", pk / best, GOAL_CAPTURE_RATIO, false);
  fflush(stdout);
}

/* ---------------------------------------------------- guardian section */

/* kill_on_owner_death costs one spawn of the guardian at a process's
 * first guarded run, and (nearly) nothing per run after that. The first
 * run is measured in fresh processes (this program re-executed with
 * --first-run), against the first unguarded run of a fresh process. */
static int first_run_mode(const char *kind) {
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

static void bench_guardian(const opts *o, pk_ctx *c, const char *self) {
  if (pk_mechanism_best() != PK_MECH_CGROUP_V2) {
    printf("guardian: skipped (needs cgroup_v2)\n");
    return;
  }
  double first[2][MAX_BATCHES], run[2][MAX_BATCHES];
  pk_real_opts go = {.kill_on_owner_death = true};
  pk_runner *guarded;
  if (pk_real_runner_new(&go, &guarded) != 0)
    die("cannot create a guarded runner");
  pk_spawn(guarded, c->true_cmd, NULL); /* this process's guardian */
  int per = o->iters / o->batches / 4 > 0 ? o->iters / o->batches / 4 : 1;
  for (int b = 0; b < o->batches; b++) {
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
  double fp = median(first[0], o->batches), fg = median(first[1], o->batches);
  double rp = median(run[0], o->batches), rg = median(run[1], o->batches);
  printf("guardian_iters: %d fresh processes, %d x %d runs per variant\n",
         o->batches, per, o->batches);
  printf("guardian_first_run_us_plain: %.2f\n", fp);
  printf("guardian_first_run_us: %.2f\n", fg);
  printf("guardian_us_first_run: %.2f\n", fg - fp);
  printf("guardian_first_run_ratio: %.3f\n", fg / fp);
  printf("guardian_run_us_plain: %.2f\n", rp);
  printf("guardian_run_us: %.2f\n", rg);
  printf("guardian_us_per_run: %.2f\n", rg - rp);
  printf("guardian_run_ratio: %.3f\n", rg / rp);
  fflush(stdout);
}

/* ------------------------------------------------------------- main */

/* A bare loop of one kind of spawn, to run under strace -c or perf. */
static int loop_mode(const char *kind, int n, pk_ctx *c) {
  int v = strcmp(kind, "raw") == 0      ? V_RAW
          : strcmp(kind, "pk") == 0     ? V_PK
          : strcmp(kind, "pgroup") == 0 ? V_PGROUP
          : strcmp(kind, "fork") == 0   ? V_COUNT
                                        : -1;
  if (v < 0 || n <= 0)
    die("--loop raw|pk|pgroup|fork N");
  printf("loop_%s_us: %.2f\n", kind, time_spawns(v, n, c));
  return 0;
}

static const char *self_path(void) {
  static char self[4096];
  ssize_t n = readlink("/proc/self/exe", self, sizeof(self) - 1);
  if (n <= 0)
    die("readlink /proc/self/exe: %s", strerror(errno));
  self[n] = '\0';
  return self;
}

static long num_arg(const char *s, long lo, long hi, const char *what) {
  char *end;
  errno = 0;
  long v = strtol(s, &end, 10);
  if (errno != 0 || *end != '\0' || v < lo || v > hi)
    die("bad %s: '%s'", what, s);
  return v;
}

static bool want(const opts *o, const char *section) {
  return o->only == NULL || strcmp(o->only, section) == 0;
}

int main(int argc, char **argv) {
  opts o = {.fixture = PK_BENCH_FIXTURE,
            .iters = 2000,
            .batches = 10,
            .capture_bytes = 1024 * MIB,
            .capture_rounds = 5};
  const char *loop = NULL, *first_run = NULL;
  long loop_n = 0;
  for (int i = 1, step = 2; i < argc; i += step, step = 2) {
    const char *a = argv[i];
    const char *v = i + 1 < argc ? argv[i + 1] : NULL;
    if (v == NULL)
      die("option %s needs a value", a);
    if (strcmp(a, "--fixture") == 0)
      o.fixture = v;
    else if (strcmp(a, "--only") == 0)
      o.only = v;
    else if (strcmp(a, "--iters") == 0)
      o.iters = (int)num_arg(v, 1, 1000000, "--iters");
    else if (strcmp(a, "--batches") == 0)
      o.batches = (int)num_arg(v, 1, MAX_BATCHES, "--batches");
    else if (strcmp(a, "--capture-bytes") == 0)
      o.capture_bytes = (uint64_t)num_arg(v, 1, 1L << 40, "--capture-bytes");
    else if (strcmp(a, "--capture-rounds") == 0)
      o.capture_rounds = (int)num_arg(v, 1, MAX_BATCHES, "--capture-rounds");
    else if (strcmp(a, "--first-run") == 0)
      first_run = v;
    else if (strcmp(a, "--loop") == 0 && i + 2 < argc) {
      loop = v;
      loop_n = num_arg(argv[i + 2], 1, 10000000, "loop count");
      step = 3;
    } else
      die("unknown option %s", a);
  }
  static const char *const sections[] = {
      "spawn",  "mem",      "capture", "guardian", "teardown",
      "freeze", "cassette", "replay",  "load",     "save"};
  bool known = o.only == NULL;
  for (size_t i = 0; !known && i < sizeof(sections) / sizeof(*sections); i++)
    known = strcmp(o.only, sections[i]) == 0;
  if (!known)
    die("--only "
        "spawn|mem|capture|guardian|teardown|freeze|cassette|replay|load|"
        "save");
  signal(SIGPIPE, SIG_IGN);
  if (getenv("PK_GUARDIAN") == NULL)
    setenv("PK_GUARDIAN", PK_BENCH_GUARDIAN, 1);
  if (first_run != NULL)
    return first_run_mode(first_run);
  pk_ctx c;
  pk_ctx_init(&c);
  int rc = 0;
  if (loop != NULL) {
    rc = loop_mode(loop, (int)loop_n, &c);
  } else {
    if (want(&o, "spawn"))
      bench_spawn(&o, &c);
    if (want(&o, "mem"))
      bench_mem(&o, &c);
    if (want(&o, "capture"))
      bench_capture(&o, &c);
    if (want(&o, "guardian"))
      bench_guardian(&o, &c, self_path());
    if (want(&o, "teardown"))
      bench_teardown(o.fixture, o.batches);
    if (want(&o, "freeze"))
      bench_freeze(o.fixture, o.batches);
    /* cassette: replay, load and save; each also on its own. */
    bool cas_part = o.only != NULL && (strcmp(o.only, "replay") == 0 ||
                                       strcmp(o.only, "load") == 0 ||
                                       strcmp(o.only, "save") == 0);
    if (want(&o, "cassette") || cas_part)
      bench_cassette(cas_part ? o.only : NULL, o.batches, c.runner);
  }
  pk_ctx_free(&c);
  return rc;
}
