/* pk-bench, cassette section: replay, load and save, each against a
 * baseline measured in the same run.
 *
 *   replay  one run answered from a loaded 1,000-entry cassette (mode
 *           none), against the scripted runner answering the same command
 *           (same core, no cassette) and a real run of it (git --version,
 *           or /bin/true when git is not on PATH).
 *   load    pk_cassette_open (mode none) of a 10,000-entry cassette,
 *           against libyaml parsing the same file to events.
 *   save    pk_cassette_save of 10,000 recorded entries, against writing
 *           the same bytes with write + fsync + rename + fsync(dir).
 *
 * The cassettes are recorded here, through a scripted inner runner (one
 * entry per distinct `git log ...` command: seven arguments, two short
 * stdout chunks), into a temporary directory under uv_os_tmpdir ($TMPDIR
 * or /tmp; the user's temporary directory on Windows).
 */
#include "bench.h"

#include <pk/cassette.h>
#include <pk/fakes.h>

#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <uv.h>
#include <yaml.h>

#define DIR_MAX 4096

#define REPLAY_ENTRIES 1000
#define BIG_ENTRIES 10000
#define GOAL_REPLAY_SPEEDUP 300.0
#define GOAL_LOAD_MS 200.0

typedef struct cas_bench {
  char dir[DIR_MAX];
  char replay_path[DIR_MAX + 32];
  char big_path[DIR_MAX + 32];
  char raw_path[DIR_MAX + 32];
  char raw_tmp[DIR_MAX + 32];
  int batches;
} cas_bench;

/* ---------------------------------------------------------- helpers */

/* Remove a file if it is there. */
static void rm_file(const char *path) {
  uv_fs_t req;
  uv_fs_unlink(NULL, &req, path, NULL);
  uv_fs_req_cleanup(&req);
}

static void run_ok(pk_runner *r, const pk_cmd *cmd) {
  pk_result *res = NULL;
  int rc = pk_output(r, cmd, &res);
  if (rc != 0 || pk_result_code(res) != 0)
    die("pk_output %s: %s (code %d): %s", pk_cmd_program(cmd), pk_strerror(rc),
        res ? pk_result_code(res) : -1, res ? pk_result_errmsg(res) : "");
  pk_result_free(res);
}

/* Per-run microseconds of n runs of cmd through r. */
static double time_runs(pk_runner *r, const pk_cmd *cmd, int n) {
  double t0 = now_s();
  for (int i = 0; i < n; i++)
    run_ok(r, cmd);
  return (now_s() - t0) * 1e6 / n;
}

static pk_cassette *open_cas(const char *path, pk_record_mode mode,
                             pk_runner *inner) {
  pk_cassette_opts o = {.mode = mode, .inner = inner};
  pk_cassette *c;
  char err[1024];
  int rc = pk_cassette_open(path, &o, &c, err, sizeof(err));
  if (rc != 0)
    die("pk_cassette_open %s: %s: %s", path, pk_err_name(rc), err);
  return c;
}

static void close_cas(pk_cassette *c) {
  char err[1024];
  int rc = pk_cassette_close(c, err, sizeof(err));
  if (rc != 0)
    die("pk_cassette_close: %s: %s", pk_err_name(rc), err);
}

static void save_cas(pk_cassette *c) {
  int rc = pk_cassette_save(c);
  if (rc != 0)
    die("pk_cassette_save: %s: %s", pk_err_name(rc), pk_cassette_errmsg(c));
}

/* ------------------------------------------------------- generation */

static uint64_t fnv1a(const char *s) {
  uint64_t h = 1469598103934665603ull;
  for (; *s; s++)
    h = (h ^ (unsigned char)*s) * 1099511628211ull;
  return h;
}

/* The scripted answer to `git log -1 --format=%H %s --stat REV -- PATH`:
 * a commit line, then a stat line, as two chunks. */
static int gen_reply(const pk_cmd *cmd, const char *in, size_t inlen,
                     pk_reply *out, void *data) {
  (void)in;
  (void)inlen;
  (void)data;
  const char *rev = pk_cmd_argv(cmd, 4), *path = pk_cmd_argv(cmd, 6);
  uint64_t h = fnv1a(rev);
  char line[256];
  int n = snprintf(
      line, sizeof(line), "%016llx%016llx%08x Fix the parser for %s\n",
      (unsigned long long)h, (unsigned long long)~h, (unsigned)(h >> 7), rev);
  int rc = pk_reply_chunk(out, PK_STDOUT, 0, line, (size_t)n);
  n = snprintf(line, sizeof(line), " %s | %u ++-\n", path,
               (unsigned)(h % 40) + 3);
  if (rc == 0)
    rc = pk_reply_chunk(out, PK_STDOUT, 0, line, (size_t)n);
  return rc == 0 ? pk_reply_exit(out, 0, 0) : rc;
}

static pk_runner *gen_runner(void) {
  pk_runner *r;
  if (pk_scripted_new(&r) != 0 ||
      pk_script_fallback(r, pk_reply_callback(gen_reply, NULL)) != 0)
    die("cannot create the scripted runner");
  return r;
}

/* Run n distinct commands through the cassette (recording them). */
static void record_n(pk_cassette *c, int n) {
  for (int i = 0; i < n; i++) {
    char rev[32], path[64];
    snprintf(rev, sizeof(rev), "v1.%d", i);
    snprintf(path, sizeof(path), "src/mod%d/file%d.c", i % 37, i);
    const char *argv[] = {"git",    "log", "-1", "--format=%H %s",
                          "--stat", rev,   "--", path};
    pk_cmd *cmd;
    if (pk_cmd_new_argv(argv, sizeof(argv) / sizeof(argv[0]), &cmd) != 0)
      die("pk_cmd_new_argv");
    run_ok(pk_cassette_runner(c), cmd);
    pk_cmd_free(cmd);
  }
}

/* A fresh cassette at path (any old file removed) of n recorded entries,
 * still open with its scripted inner runner in *inner; saved once when
 * save is true. *gen_s: the seconds it took. */
static pk_cassette *record_fresh(const char *path, int n, bool save,
                                 pk_runner **inner, double *gen_s) {
  rm_file(path);
  *inner = gen_runner();
  double t0 = now_s();
  pk_cassette *c = open_cas(path, PK_RECORD_ALL, *inner);
  record_n(c, n);
  if (save)
    save_cas(c);
  *gen_s = now_s() - t0;
  return c;
}

static void close_discarding(pk_cassette *c, pk_runner *inner) {
  pk_cassette_discard(c); /* saved already: close writes nothing */
  close_cas(c);
  pk_runner_free(inner);
}

/* ----------------------------------------------------------- replay */

/* git on PATH (heap, pk_free), or NULL. */
static char *find_git(void) {
  pk_cmd *cmd;
  char *path = NULL;
  if (pk_cmd_new("git", &cmd) != 0)
    die("pk_cmd_new");
  if (pk_cmd_which(cmd, &path, NULL) != 0)
    path = NULL;
  pk_cmd_free(cmd);
  return path;
}

static void bench_replay(cas_bench *b, bench_ctx *ctx) {
  pk_runner *real = ctx->runner;
  char *found = find_git();
  const char *git_argv[] = {"git", "--version"};
  const char **argv = found ? git_argv : (const char **)ctx->true_argv;
  size_t argc = 2;
  if (found == NULL)
    for (argc = 0; argv[argc] != NULL;)
      argc++;
  pk_cmd *cmd;
  if (pk_cmd_new_argv(argv, argc, &cmd) != 0)
    die("pk_cmd_new_argv");
  /* 999 generated entries, then the target recorded for real. */
  pk_runner *inner;
  double gen_s;
  pk_cassette *c =
      record_fresh(b->replay_path, REPLAY_ENTRIES - 1, true, &inner, &gen_s);
  close_discarding(c, inner);
  c = open_cas(b->replay_path, PK_RECORD_NEW_EPISODES, real);
  run_ok(pk_cassette_runner(c), cmd);
  close_cas(c);

  c = open_cas(b->replay_path, PK_RECORD_NONE, NULL);
  if (pk_cassette_entry_count(c) != REPLAY_ENTRIES)
    die("replay cassette has %zu entries, want %d", pk_cassette_entry_count(c),
        REPLAY_ENTRIES);
  pk_runner *cas = pk_cassette_runner(c);
  pk_result *res = NULL;
  if (pk_output(cas, cmd, &res) != 0)
    die("replay of %s failed", argv[0]);
  pk_runner *scripted;
  if (pk_scripted_new(&scripted) != 0 ||
      pk_script_program(scripted, argv[0],
                        pk_reply_ok(pk_result_stdout(res, NULL))) != 0)
    die("cannot create the scripted runner");
  pk_result_free(res);

  enum { R_CAS, R_SCRIPTED, R_REAL, R_COUNT };
  pk_runner *runners[R_COUNT] = {cas, scripted, real};
  int per[R_COUNT] = {300, 300, 20};
  double us[R_COUNT][MAX_BATCHES];
  for (int v = 0; v < R_COUNT; v++) /* warm up */
    time_runs(runners[v], cmd, per[v] / 10);
  for (int i = 0; i < b->batches; i++)
    for (int k = 0; k < R_COUNT; k++) {
      int v = (i + k) % R_COUNT; /* rotate who goes first */
      us[v][i] = time_runs(runners[v], cmd, per[v]);
    }
  close_cas(c);
  pk_runner_free(scripted);
  pk_cmd_free(cmd);

  double rep = median(us[R_CAS], b->batches);
  double scr = median(us[R_SCRIPTED], b->batches);
  double rl = median(us[R_REAL], b->batches);
  printf("replay_command: %s%s\n", found ? found : ctx->true_text,
         found ? " --version" : " (git not on PATH)");
  pk_free(found);
  printf("replay_entries: %d\n", REPLAY_ENTRIES);
  printf("replay_iters: %d replays, %d scripted, %d real x %d batches\n",
         per[R_CAS], per[R_SCRIPTED], per[R_REAL], b->batches);
  printf("replay_us: %.2f\n", rep);
  printf("replay_us_scripted: %.2f\n", scr);
  printf("replay_ratio_scripted: %.3f\n", rep / scr);
  printf("replay_us_real: %.2f\n", rl);
  printf("replay_speedup: %.1f\n", rl / rep);
  print_goal("replay_speedup", rl / rep, GOAL_REPLAY_SPEEDUP, false);
  flush_out();
}

/* ------------------------------------------------------- load, save */

static char *read_file(const char *path, size_t *len) {
  FILE *f = fopen(path, "rb");
  if (f == NULL)
    die("%s: %s", path, strerror(errno));
  fseek(f, 0, SEEK_END);
  long n = ftell(f);
  rewind(f);
  char *data = n >= 0 ? malloc((size_t)n + 1) : NULL;
  if (data == NULL || fread(data, 1, (size_t)n, f) != (size_t)n)
    die("%s: cannot read", path);
  fclose(f);
  *len = (size_t)n;
  return data;
}

/* Wall and CPU milliseconds of one load, save or baseline: on a loaded machine
 * the CPU figure is the steadier one. */
typedef struct ms_pair {
  double wall, cpu;
} ms_pair;

static ms_pair ms_since(double t0, double c0) {
  return (ms_pair){(now_s() - t0) * 1e3, (cpu_s() - c0) * 1e3};
}

/* libyaml's parser over the file, every event, nothing built. */
static ms_pair time_libyaml(const char *path) {
  double t0 = now_s(), c0 = cpu_s();
  FILE *f = fopen(path, "rb");
  yaml_parser_t p;
  if (f == NULL || !yaml_parser_initialize(&p))
    die("%s: cannot parse", path);
  yaml_parser_set_input_file(&p, f);
  for (bool done = false; !done;) {
    yaml_event_t ev;
    if (!yaml_parser_parse(&p, &ev))
      die("%s: libyaml: %s", path, p.problem ? p.problem : "error");
    done = ev.type == YAML_STREAM_END_EVENT;
    yaml_event_delete(&ev);
  }
  yaml_parser_delete(&p);
  fclose(f);
  return ms_since(t0, c0);
}

static ms_pair time_load(const char *path) {
  double t0 = now_s(), c0 = cpu_s();
  pk_cassette *c = open_cas(path, PK_RECORD_NONE, NULL);
  ms_pair ms = ms_since(t0, c0);
  if (pk_cassette_entry_count(c) != BIG_ENTRIES)
    die("%s: %zu entries, want %d", path, pk_cassette_entry_count(c),
        BIG_ENTRIES);
  close_cas(c);
  return ms;
}

/* One save of BIG_ENTRIES new recordings into a file that is not there
 * yet (a save writes only what this session recorded and has not saved,
 * so each timed save needs a session of its own; recording is not
 * timed). */
static ms_pair time_save(const char *path) {
  pk_runner *inner;
  double gen_s;
  pk_cassette *c = record_fresh(path, BIG_ENTRIES, false, &inner, &gen_s);
  double t0 = now_s(), c0 = cpu_s();
  save_cas(c);
  ms_pair ms = ms_since(t0, c0);
  close_discarding(c, inner);
  uv_fs_t req;
  int rc = uv_fs_stat(NULL, &req, path, NULL);
  uint64_t size = req.statbuf.st_size;
  uv_fs_req_cleanup(&req);
  if (rc != 0 || size < BIG_ENTRIES * 100ull)
    die("%s: the save wrote %llu bytes", path, (unsigned long long)size);
  return ms;
}

/* The same bytes, the way a careful writer replaces a file. */
static ms_pair time_raw_write(cas_bench *b, const char *data, size_t len) {
  rm_file(b->raw_path);
  double t0 = now_s(), c0 = cpu_s();
  raw_replace(b->dir, b->raw_tmp, b->raw_path, data, len);
  return ms_since(t0, c0);
}

/* Medians of a pk figure and its baseline over the batches. */
typedef struct pair_stats {
  double pk, raw, pk_cpu, raw_cpu;
} pair_stats;

static pair_stats stats_of(ms_pair v[2][MAX_BATCHES], int n) {
  double w[4][MAX_BATCHES];
  for (int i = 0; i < n; i++) {
    w[0][i] = v[0][i].wall;
    w[1][i] = v[1][i].wall;
    w[2][i] = v[0][i].cpu;
    w[3][i] = v[1][i].cpu;
  }
  return (pair_stats){median(w[0], n), median(w[1], n), median(w[2], n),
                      median(w[3], n)};
}

static void bench_save(cas_bench *b, double gen_s) {
  size_t len;
  char *data = read_file(b->big_path, &len);
  ms_pair ms[2][MAX_BATCHES];
  for (int i = 0; i < b->batches; i++) {
    bool pk_first = i % 2 == 0;
    if (pk_first)
      ms[0][i] = time_save(b->big_path);
    ms[1][i] = time_raw_write(b, data, len);
    if (!pk_first)
      ms[0][i] = time_save(b->big_path);
  }
  free(data);
  pair_stats st = stats_of(ms, b->batches);
  printf("save_entries: %d (%zu bytes; recorded in %.2f s)\n", BIG_ENTRIES, len,
         gen_s);
  printf("save_ms_10k: %.2f\n", st.pk);
  printf("save_ms_raw_write_fsync_rename: %.2f\n", st.raw);
  printf("save_ratio: %.2f\n", st.pk / st.raw);
  printf("save_cpu_ms_10k: %.2f\n", st.pk_cpu);
  printf("save_cpu_ms_raw_write_fsync_rename: %.2f\n", st.raw_cpu);
  flush_out();
}

static void bench_load(cas_bench *b) {
  size_t len;
  free(read_file(b->big_path, &len));
  ms_pair ms[2][MAX_BATCHES];
  time_libyaml(b->big_path); /* warm the page cache */
  for (int i = 0; i < b->batches; i++) {
    bool pk_first = i % 2 == 0;
    if (pk_first)
      ms[0][i] = time_load(b->big_path);
    ms[1][i] = time_libyaml(b->big_path);
    if (!pk_first)
      ms[0][i] = time_load(b->big_path);
  }
  pair_stats st = stats_of(ms, b->batches);
  printf("load_entries: %d (%zu bytes)\n", BIG_ENTRIES, len);
  printf("load_ms_10k: %.2f\n", st.pk);
  printf("load_ms_raw_libyaml_events: %.2f\n", st.raw);
  printf("load_ratio: %.2f\n", st.pk / st.raw);
  printf("load_cpu_ms_10k: %.2f\n", st.pk_cpu);
  printf("load_cpu_ms_raw_libyaml_events: %.2f\n", st.raw_cpu);
  print_goal("load_ms_10k", st.pk, GOAL_LOAD_MS, true);
  flush_out();
}

/* ------------------------------------------------------------ entry */

static void teardown(cas_bench *b);

/* The bench in progress, for an early exit (die, or a reader that went
 * away): its files and directory are removed at exit either way. */
static cas_bench *live;

static void teardown_at_exit(void) {
  if (live != NULL)
    teardown(live);
}

static void setup(cas_bench *b, int batches) {
  /* The cassette's own environment knobs would change what is measured. */
  uv_os_unsetenv("PK_RECORD_MODE");
  uv_os_unsetenv("PK_RECORD_ONLY");
  uv_os_unsetenv("PK_CASSETTE_STRICT");
  char tmp[DIR_MAX - 64];
  size_t tlen = sizeof(tmp);
  int rc = uv_os_tmpdir(tmp, &tlen);
  if (rc != 0)
    die("uv_os_tmpdir: %s", uv_strerror(rc));
  char templ[DIR_MAX];
  snprintf(templ, sizeof(templ), "%s/pk-bench-cassette-XXXXXX", tmp);
  uv_fs_t req;
  rc = uv_fs_mkdtemp(NULL, &req, templ, NULL);
  if (rc < 0)
    die("mkdtemp %s: %s", templ, uv_strerror(rc));
  snprintf(b->dir, sizeof(b->dir), "%s", req.path);
  uv_fs_req_cleanup(&req);
  live = b;
  static bool registered;
  if (!registered && atexit(teardown_at_exit) == 0)
    registered = true;
  snprintf(b->replay_path, sizeof(b->replay_path), "%s/replay.yaml", b->dir);
  snprintf(b->big_path, sizeof(b->big_path), "%s/big.yaml", b->dir);
  snprintf(b->raw_path, sizeof(b->raw_path), "%s/raw.yaml", b->dir);
  snprintf(b->raw_tmp, sizeof(b->raw_tmp), "%s/raw.yaml.tmp", b->dir);
  b->batches = batches;
}

static void teardown(cas_bench *b) {
  live = NULL;
  rm_file(b->replay_path);
  rm_file(b->big_path);
  rm_file(b->raw_path);
  rm_file(b->raw_tmp);
  uv_fs_t req;
  int rc = uv_fs_rmdir(NULL, &req, b->dir, NULL);
  uv_fs_req_cleanup(&req);
  if (rc != 0)
    fprintf(stderr, "pk-bench: %s left behind: %s\n", b->dir, uv_strerror(rc));
}

static bool want(const char *only, const char *name) {
  return only == NULL || strcmp(only, name) == 0;
}

void bench_cassette(const char *only, int batches, bench_ctx *ctx) {
  cas_bench b;
  setup(&b, batches);
  if (want(only, "replay"))
    bench_replay(&b, ctx);
  if (want(only, "save") || want(only, "load")) {
    pk_runner *inner;
    double gen_s;
    pk_cassette *c =
        record_fresh(b.big_path, BIG_ENTRIES, true, &inner, &gen_s);
    close_discarding(c, inner);
    if (want(only, "save"))
      bench_save(&b, gen_s); /* leaves big_path as the last save wrote it */
    if (want(only, "load"))
      bench_load(&b);
  }
  teardown(&b);
}
