/* Helpers shared by the pk-bench sections (bench.c, bench_cassette.c). */
#ifndef PK_BENCH_H
#define PK_BENCH_H

#include <pk/pk.h>

#include <stdbool.h>

#define MAX_BATCHES 64

/* Monotonic seconds. */
double now_s(void);
/* CPU seconds (user + system) of this process, children excluded. */
double cpu_s(void);
/* Print "pk-bench: ..." to stderr and exit 1. */
__attribute__((noreturn, format(printf, 1, 2))) void die(const char *fmt, ...);
/* Median of v[0..n), n <= MAX_BATCHES. */
double median(const double *v, int n);
/* "goal_NAME: met|missed (value <= goal)" (>= when !le). */
void print_goal(const char *name, double value, double goal, bool le);

/* The cassette section: only "replay", "load" or "save", or NULL for all
 * three. real (borrowed): the real runner for the replay's real run. */
void bench_cassette(const char *only, int batches, pk_runner *real);

/* The teardown section: a 364-process tree killed through pk, per
 * mechanism, against killpg by hand. fixture: the pk-fixture path. */
void bench_teardown(const char *fixture, int batches);
/* The freeze section: pk_group_suspend / resume of a 40-process tree. */
void bench_freeze(const char *fixture, int batches);

#endif
