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
 * A section or figure that does not apply on this host says so on a
 * `NAME: skipped (why)` line.
 */
#include "bench.h"

#include <pk/pk.h>

#include <errno.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <uv.h>

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

double now_s(void) { return (double)uv_hrtime() / 1e9; }

double cpu_s(void) {
  uv_rusage_t ru;
  int rc = uv_getrusage(&ru);
  if (rc != 0)
    die("uv_getrusage: %s", uv_strerror(rc));
  return (double)(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) +
         (double)(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e6;
}

void die(const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  fputs("pk-bench: ", stderr);
  vfprintf(stderr, fmt, ap);
  fputc('\n', stderr);
  va_end(ap);
  exit(1);
}

void flush_out(void) {
  if (fflush(stdout) == 0 && !ferror(stdout))
    return;
  if (errno == EPIPE)
    exit(1);
  die("stdout: %s", strerror(errno));
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

/* ------------------------------------------------------------------ pk */

uint64_t pk_spawn(pk_runner *r, const pk_cmd *cmd, bench_ctx *c) {
  pk_result *res = NULL;
  int rc = pk_output(r, cmd, &res);
  if (rc != 0 || pk_result_code(res) != 0)
    die("pk_output %s: %s (code %d): %s", pk_cmd_program(cmd), pk_strerror(rc),
        res ? pk_result_code(res) : -1, res ? pk_result_errmsg(res) : "");
  uint64_t n = pk_result_total_bytes(res, PK_STDOUT);
  if (c != NULL) {
    snprintf(c->mechanism, sizeof(c->mechanism), "%s",
             pk_mechanism_name(pk_result_mechanism(res)));
    snprintf(c->method, sizeof(c->method), "%s", pk_result_spawn_method(res));
  }
  pk_result_free(res);
  return n;
}

/* The true command: /bin/true where a run finds it, else (Windows) the
 * fixture's `exit 0`, so the raw baseline starts the same program. */
static void ctx_init(bench_ctx *c, const char *fixture) {
  memset(c, 0, sizeof(*c));
  c->fixture = fixture;
  char *path = NULL;
  if (pk_cmd_new("/bin/true", &c->true_cmd) != 0)
    die("cannot create the true command");
  bool have_true = pk_cmd_which(c->true_cmd, &path, NULL) == 0;
  pk_free(path);
  c->true_argv[0] = (char *)(have_true ? "/bin/true" : fixture);
  if (!have_true) {
    c->true_argv[1] = "exit";
    c->true_argv[2] = "0";
    pk_cmd_free(c->true_cmd);
    if (pk_cmd_new_argv((const char **)c->true_argv, 3, &c->true_cmd) != 0)
      die("cannot create the true command");
  }
  snprintf(c->true_text, sizeof(c->true_text), "%s%s", c->true_argv[0],
           have_true ? "" : " exit 0");
  if (pk_real_runner_new(NULL, &c->runner) != 0)
    die("cannot create the pk runner");
  pk_real_opts pg = {.mechanism = PK_MECH_PROCESS_GROUP};
  if (pk_real_runner_new(&pg, &c->pgroup_runner) != 0)
    c->pgroup_runner = NULL; /* no process groups here (Windows) */
}

static void ctx_free(bench_ctx *c) {
  pk_cmd_free(c->true_cmd);
  pk_runner_free(c->runner);
  pk_runner_free(c->pgroup_runner);
}

/* ------------------------------------------------------ spawn section */

double time_spawns(int variant, int n, bench_ctx *c, double *cpu_us,
                   double *thread_cpu_us) {
  double t0 = now_s(), c0 = cpu_s(), tc0 = thread_cpu_s();
  for (int i = 0; i < n; i++) {
    if (variant == V_RAW)
      raw_spawn(c->true_argv, false);
    else if (variant == V_PK)
      pk_spawn(c->runner, c->true_cmd, NULL);
    else if (variant == V_PGROUP)
      pk_spawn(c->pgroup_runner, c->true_cmd, NULL);
    else
      raw_extra_spawn(variant, c->true_argv);
  }
  if (cpu_us != NULL)
    *cpu_us = (cpu_s() - c0) * 1e6 / n;
  if (thread_cpu_us != NULL)
    *thread_cpu_us = (thread_cpu_s() - tc0) * 1e6 / n;
  return (now_s() - t0) * 1e6 / n;
}

static void bench_spawn(const opts *o, bench_ctx *c) {
  double us[V_COUNT][MAX_BATCHES], cpu[V_COUNT][MAX_BATCHES],
      tcpu[V_COUNT][MAX_BATCHES];
  int per = o->iters / o->batches > 0 ? o->iters / o->batches : 1;
  pk_spawn(c->runner, c->true_cmd, c); /* warm up, learn the mechanism */
  int vs[V_COUNT], nv = 0;
  vs[nv++] = V_RAW;
  vs[nv++] = V_PK;
  if (c->pgroup_runner != NULL)
    vs[nv++] = V_PGROUP;
  bool raw_cg =
      strcmp(c->mechanism, "cgroup_v2") == 0 && raw_extra_available(V_RAW_CG);
  if (raw_cg)
    vs[nv++] = V_RAW_CG;
  for (int k = 0; k < nv; k++)
    time_spawns(vs[k], 20, c, NULL, NULL);
  for (int b = 0; b < o->batches; b++) {
    for (int k = 0; k < nv; k++) {
      int v = vs[(b + k) % nv]; /* rotate who goes first */
      us[v][b] = time_spawns(v, per, c, &cpu[v][b], &tcpu[v][b]);
    }
  }
  double raw = median(us[V_RAW], o->batches);
  double pk = median(us[V_PK], o->batches);
  printf("spawn_mechanism: %s\n", c->mechanism);
  printf("spawn_method: %s\n", c->method);
  printf("spawn_command: %s\n", c->true_text);
  printf("spawn_iters: %d x %d batches per variant\n", per, o->batches);
  printf("spawn_us_raw: %.2f\n", raw);
  printf("spawn_us_pk: %.2f\n", pk);
  printf("spawn_ratio: %.3f\n", pk / raw);
  printf("spawn_parent_cpu_us_raw: %.2f\n", median(cpu[V_RAW], o->batches));
  printf("spawn_parent_cpu_us_pk: %.2f\n", median(cpu[V_PK], o->batches));
  printf("spawn_thread_cpu_us_raw: %.2f\n", median(tcpu[V_RAW], o->batches));
  printf("spawn_thread_cpu_us_pk: %.2f\n", median(tcpu[V_PK], o->batches));
  if (c->pgroup_runner != NULL) {
    double pg = median(us[V_PGROUP], o->batches);
    printf("spawn_us_pk_process_group: %.2f\n", pg);
    printf("spawn_ratio_process_group: %.3f\n", pg / raw);
    printf("spawn_parent_cpu_us_pk_process_group: %.2f\n",
           median(cpu[V_PGROUP], o->batches));
  } else {
    printf("spawn_process_group: skipped (no process_group mechanism)\n");
  }
  if (raw_cg) {
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
  raw_extra_fini();
  flush_out();
}

/* ---------------------------------------------------- parent memory */

#define BIG_PARENT (512 * MIB)

/* Each batch measures the small parent on both sides of the big one
 * (half before, half after), so drift on a shared machine hits both. */
static void bench_mem(const opts *o, bench_ctx *c) {
  if (!raw_extra_available(V_FORK)) {
    /* CreateProcess copies nothing of the parent: there is no fork cost
     * that grows with it to compare against */
    printf("mem: skipped (no fork on this host)\n");
    return;
  }
  enum { PK_SMALL, PK_BIG, FORK_SMALL, FORK_BIG, M_COUNT };
  double us[M_COUNT][MAX_BATCHES];
  int batches = o->batches;
  int half = o->iters / o->batches / 4 > 0 ? o->iters / o->batches / 4 : 1;
  int per_fork_big = half / 2 > 0 ? half / 2 : 1;
  for (int b = 0; b < batches; b++) {
    double pk_a = time_spawns(V_PK, half, c, NULL, NULL);
    double fork_a = time_spawns(V_FORK, half, c, NULL, NULL);
    char *mem = malloc(BIG_PARENT);
    if (mem == NULL)
      die("cannot allocate 512 MiB");
    memset(mem, 0x5a, BIG_PARENT);
    keep(mem);
    if (b % 2) {
      us[FORK_BIG][b] = time_spawns(V_FORK, per_fork_big, c, NULL, NULL);
      us[PK_BIG][b] = time_spawns(V_PK, 2 * half, c, NULL, NULL);
    } else {
      us[PK_BIG][b] = time_spawns(V_PK, 2 * half, c, NULL, NULL);
      us[FORK_BIG][b] = time_spawns(V_FORK, per_fork_big, c, NULL, NULL);
    }
    keep(mem);
    free(mem);
    us[FORK_SMALL][b] = (fork_a + time_spawns(V_FORK, half, c, NULL, NULL)) / 2;
    us[PK_SMALL][b] = (pk_a + time_spawns(V_PK, half, c, NULL, NULL)) / 2;
  }
  raw_extra_fini();
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
  flush_out();
}

/* ----------------------------------------------------- capture section */

enum { C_RAW, C_RAW_BIG, C_PK, C_COUNT };

/* GB/s of one capture; *cpu gets the parent's CPU seconds per GiB. */
static double time_capture(int variant, const opts *o, bench_ctx *c,
                           pk_cmd *cmd, double *cpu) {
  char size[32];
  snprintf(size, sizeof(size), "%llu", (unsigned long long)o->capture_bytes);
  char *const argv[] = {(char *)o->fixture, "spew", size, "1", NULL};
  double t0 = now_s(), c0 = cpu_s();
  uint64_t n = variant == C_PK ? pk_spawn(c->runner, cmd, NULL)
                               : raw_spawn(argv, variant == C_RAW_BIG);
  double dt = now_s() - t0;
  *cpu = (cpu_s() - c0) / ((double)n / (double)(1ull << 30));
  if (n != o->capture_bytes)
    die("capture variant %d got %llu bytes, want %llu", variant,
        (unsigned long long)n, (unsigned long long)o->capture_bytes);
  return (double)n / dt / 1e9;
}

static void bench_capture(const opts *o, bench_ctx *c) {
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
      gbps[v][r] = time_capture(v, o, c, cmd, &cpu[v][r]);
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
  flush_out();
}

/* ------------------------------------------------------------- main */

/* A bare loop of one kind of spawn, to run under strace -c or perf. */
static int loop_mode(const char *kind, int n, bench_ctx *c) {
  int v = strcmp(kind, "raw") == 0      ? V_RAW
          : strcmp(kind, "pk") == 0     ? V_PK
          : strcmp(kind, "pgroup") == 0 ? V_PGROUP
          : strcmp(kind, "fork") == 0   ? V_FORK
                                        : -1;
  if (v < 0 || n <= 0)
    die("--loop raw|pk|pgroup|fork N");
  if ((v == V_PGROUP && c->pgroup_runner == NULL) ||
      (v == V_FORK && !raw_extra_available(v)))
    die("--loop %s: not available on this host", kind);
  printf("loop_%s_us: %.2f\n", kind, time_spawns(v, n, c, NULL, NULL));
  return 0;
}

static long long num_arg(const char *s, long long lo, long long hi,
                         const char *what) {
  char *end;
  errno = 0;
  long long v = strtoll(s, &end, 10);
  if (errno != 0 || end == s || *end != '\0' || v < lo || v > hi)
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
  long long loop_n = 0;
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
      o.capture_bytes = (uint64_t)num_arg(v, 1, 1LL << 40, "--capture-bytes");
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
  bench_os_init();
  if (first_run != NULL)
    return bench_first_run(first_run);
  bench_ctx c;
  ctx_init(&c, o.fixture);
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
      bench_guardian(o.iters, o.batches, &c);
    if (want(&o, "teardown"))
      bench_teardown(o.fixture, o.batches);
    if (want(&o, "freeze"))
      bench_freeze(o.fixture, o.batches);
    /* cassette: replay, load and save; each also on its own. */
    bool cas_part = o.only != NULL && (strcmp(o.only, "replay") == 0 ||
                                       strcmp(o.only, "load") == 0 ||
                                       strcmp(o.only, "save") == 0);
    if (want(&o, "cassette") || cas_part)
      bench_cassette(cas_part ? o.only : NULL, o.batches, &c);
  }
  ctx_free(&c);
  return rc;
}
