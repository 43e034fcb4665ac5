/* Helpers shared by the pk-bench sections. bench.c and bench_cassette.c
 * are the same on every host; what differs (the raw baselines, and the
 * sections that time one host's mechanisms) is in bench_posix.c and
 * bench_teardown.c, or bench_win.c. */
#ifndef PK_BENCH_H
#define PK_BENCH_H

#include <pk/pk.h>

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define MAX_BATCHES 64
#define MIB (1024ull * 1024ull)
#define BIG_PIPE (1 << 20)

/* Monotonic seconds. */
double now_s(void);
/* CPU seconds (user + system) of this process, children excluded. */
double cpu_s(void);
/* printf-style checking; mingw-w64's C99 stdio is gnu_printf there. */
#ifdef _WIN32
#define BENCH_PRINTF(f, a) __attribute__((format(gnu_printf, f, a)))
#else
#define BENCH_PRINTF(f, a) __attribute__((format(printf, f, a)))
#endif
/* Print "pk-bench: ..." to stderr and exit 1. */
__attribute__((noreturn)) BENCH_PRINTF(1, 2) void die(const char *fmt, ...);
/* Flush the figures printed so far: exit 1 quietly when the reader has
 * gone (`| head -1`: no point running the sections left), die on any
 * other write error. */
void flush_out(void);
/* Median of v[0..n), n <= MAX_BATCHES. */
double median(const double *v, int n);
/* "goal_NAME: met|missed (value <= goal)" (>= when !le). */
void print_goal(const char *name, double value, double goal, bool le);

/* What every section shares: the default real runner, the command that
 * exits 0 at once (/bin/true; on Windows, which has none, the fixture's
 * `exit 0`) and what the first run of it reported. */
typedef struct bench_ctx {
  pk_runner *runner;        /* default: pk_real_runner_new(NULL) */
  pk_runner *pgroup_runner; /* forced process_group; NULL where none */
  const char *fixture;
  char *true_argv[4];
  char true_text[4200]; /* true_argv joined with spaces, for the output */
  pk_cmd *true_cmd;
  char mechanism[32];
  char method[32];
} bench_ctx;

/* The spawn variants. V_RAW_CG and V_FORK exist only where
 * raw_extra_available says so. */
enum { V_RAW, V_PK, V_PGROUP, V_RAW_CG, V_FORK, V_COUNT };
/* Per-spawn microseconds of n spawns of the true command by one variant;
 * sets *cpu_us / *thread_cpu_us (may be NULL) to the parent-side CPU per
 * spawn, of the process and of this thread. */
double time_spawns(int variant, int n, bench_ctx *c, double *cpu_us,
                   double *thread_cpu_us);
/* pk_output of cmd through r, which must exit 0; the stdout byte count.
 * Records the mechanism and spawn method in c when c is not NULL. */
uint64_t pk_spawn(pk_runner *r, const pk_cmd *cmd, bench_ctx *c);

/* ---------------------------------- per host (bench_posix.c, _win.c) */

/* Process-wide setup before anything runs (SIGPIPE, the guardian). */
void bench_os_init(void);
/* The raw baseline: argv[0] started with argv and its stdout on a pipe
 * (a 1 MiB one when bigpipe), read to EOF and discarded, then waited
 * for; dies unless it exited 0. Returns the bytes read. POSIX:
 * posix_spawn + pipe2; Windows: CreatePipe + CreateProcessW. */
uint64_t raw_spawn(char *const argv[], bool bigpipe);
/* Whether the extra baseline V_RAW_CG (a contained spawn by hand in a
 * fresh cgroup) or V_FORK (fork + exec) exists on this host; the first
 * call for V_RAW_CG sets up its cgroup directory. */
bool raw_extra_available(int variant);
/* One spawn of an available extra baseline, as raw_spawn. */
void raw_extra_spawn(int variant, char *const argv[]);
/* Remove what raw_extra_available set up. */
void raw_extra_fini(void);
/* CPU seconds of the calling thread. */
double thread_cpu_s(void);
/* The careful writer's replace, the baseline of a cassette save: data
 * written to tmp, flushed to disk, renamed over path (and, on POSIX, the
 * directory dir flushed too). */
void raw_replace(const char *dir, const char *tmp, const char *path,
                 const char *data, size_t len);

/* The guardian section (cgroup_v2 only), and the fresh-process first
 * run it re-executes this program for (--first-run plain|guarded). */
void bench_guardian(int iters, int batches, bench_ctx *c);
int bench_first_run(const char *kind);

/* The teardown section: a 364-process tree killed through pk, per
 * mechanism, against killpg by hand. fixture: the pk-fixture path. */
void bench_teardown(const char *fixture, int batches);
/* The freeze section: pk_group_suspend / resume of a 40-process tree. */
void bench_freeze(const char *fixture, int batches);

/* ------------------------------------------------- bench_cassette.c */

/* The cassette section: only "replay", "load" or "save", or NULL for all
 * three. The replay's real run is git --version through c->runner, or
 * the true command when git is not on PATH. */
void bench_cassette(const char *only, int batches, bench_ctx *c);

#endif
