/* Many spawns (R1), every fallback path (R15) and many children on one
 * loop (a small R2). Each test checks fds, children, cgroup directories
 * and pk's own live heap blocks against a snapshot.
 *
 * PK_STRESS_SPAWNS sets the number of sequential spawns (default 2000). */
#include "harness.h"

#include <fcntl.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

/* Sanitizers keep freed memory (quarantine, shadow): RSS says nothing. */
#if defined(__has_feature)
#if __has_feature(address_sanitizer) || __has_feature(thread_sanitizer)
#define PKT_SANITIZED 1
#endif
#endif
#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
#define PKT_SANITIZED 1
#endif

static pk_mechanism mechs[4];
static int nmechs;
static int nspawns = 2000;
static char tmpdir[] = "/tmp/pk-stress-XXXXXX";
static char noexec_path[64];

/* ------------------------------------------- counting allocator for pk */

static atomic_long live_blocks;

static void *count_malloc(size_t n) {
  void *p = malloc(n);
  if (p != NULL)
    atomic_fetch_add(&live_blocks, 1);
  return p;
}

static void *count_calloc(size_t n, size_t size) {
  void *p = calloc(n, size);
  if (p != NULL)
    atomic_fetch_add(&live_blocks, 1);
  return p;
}

static void *count_realloc(void *old, size_t n) {
  void *p = realloc(old, n);
  if (p != NULL && old == NULL)
    atomic_fetch_add(&live_blocks, 1);
  return p;
}

static void count_free(void *p) {
  if (p != NULL)
    atomic_fetch_sub(&live_blocks, 1);
  free(p);
}

/* Snapshot plus pk's live heap blocks. */
typedef struct leak_snap {
  pkt_snapshot s;
  long blocks;
} leak_snap;

/* pk's live heap blocks, less the leaf pool's ready leaves (one block
 * each, their path; how many depends on the helper thread, settled
 * first). */
static long blocks_now(void) {
  int ready = pkt_pool_settle();
  return atomic_load(&live_blocks) - ready;
}

static void snap_take(leak_snap *s) {
  pkt_snapshot_take(&s->s);
  s->blocks = blocks_now();
}

static void snap_check(const leak_snap *s) {
  pkt_snapshot_check(&s->s);
  long now = blocks_now();
  if (now != s->blocks)
    fail_msg("pk heap blocks: %ld before, %ld after", s->blocks, now);
}

/* ------------------------------------------------------------ helpers */

static long rss_kb(void) {
  FILE *f = fopen("/proc/self/status", "re");
  assert_non_null(f);
  char line[256];
  long v = -1;
  while (fgets(line, sizeof(line), f) != NULL)
    if (strncmp(line, "VmRSS:", 6) == 0)
      v = atol(line + 6);
  fclose(f);
  assert_true(v >= 0);
  return v;
}

/* NULL when `method` is what the fallback bits force, else what is
 * wrong with it. PK_NO_CLOSE_RANGE and PK_NO_CGROUP_KILL do not change
 * how the child is cloned. */
static const char *method_problem(unsigned bits, const char *method) {
  bool clone3 = strncmp(method, "clone3", 6) == 0;
  bool nopidfd = strstr(method, "nopidfd") != NULL;
  if ((bits & PK_NO_CLONE3) && (bits & PK_NO_PIDFD))
    return strcmp(method, "clone+nopidfd") == 0 ? NULL : "want clone+nopidfd";
  if ((bits & PK_NO_CLONE3) && clone3)
    return "clone3 used although disabled";
  if ((bits & PK_NO_PIDFD) && !nopidfd)
    return "a pidfd used although disabled";
  if (!(bits & PK_NO_PIDFD) && nopidfd)
    return "no pidfd although available";
#if defined(__x86_64__)
  if (!(bits & PK_NO_CLONE3) && !clone3)
    return "clone3 not used although available";
#endif
  return NULL;
}

static const char *bits_name(unsigned bits, char *buf, size_t len) {
  static const struct {
    unsigned bit;
    const char *name;
  } names[] = {{PK_NO_CLONE3, "no_clone3"},
               {PK_NO_PIDFD, "no_pidfd"},
               {PK_NO_CLOSE_RANGE, "no_close_range"},
               {PK_NO_CGROUP_KILL, "no_cgroup_kill"}};
  size_t n = 0;
  buf[0] = '\0';
  for (size_t i = 0; i < 4; i++)
    if (bits & names[i].bit)
      n += (size_t)snprintf(buf + n, len - n, "%s%s", n ? "|" : "",
                            names[i].name);
  if (n == 0)
    snprintf(buf, len, "none");
  return buf;
}

/* ----------------------------------------- R1: mixed sequential spawns */

enum {
  MIX_OK,
  MIX_EXIT,
  MIX_NOENT_EXEC,
  MIX_NOENT_PATH,
  MIX_EACCES,
  MIX_BADCWD,
  MIX_N
};

typedef struct mix {
  pk_cmd *cmd[MIX_N];
  int counts[MIX_N];
  char method[32]; /* spawn method of the runs that started */
} mix;

static void mix_init(mix *m) {
  memset(m, 0, sizeof(*m));
  m->cmd[MIX_OK] = pkt_fixture("echo", "hi", NULL);
  m->cmd[MIX_EXIT] = pkt_fixture("exit", "3", NULL);
  PKT_ASSERT_OK(pk_cmd_new("/nonexistent-pk/prog", &m->cmd[MIX_NOENT_EXEC]));
  PKT_ASSERT_OK(pk_cmd_new("pk-no-such-program", &m->cmd[MIX_NOENT_PATH]));
  PKT_ASSERT_OK(
      pk_cmd_env_set(m->cmd[MIX_NOENT_PATH], "PATH", "/nonexistent-pk"));
  PKT_ASSERT_OK(pk_cmd_new(noexec_path, &m->cmd[MIX_EACCES]));
  m->cmd[MIX_BADCWD] = pkt_fixture("cwd", NULL);
  PKT_ASSERT_OK(pk_cmd_set_cwd(m->cmd[MIX_BADCWD], "/nonexistent-pk-dir"));
}

static void mix_free(mix *m) {
  for (int i = 0; i < MIX_N; i++)
    pk_cmd_free(m->cmd[i]);
}

static void mix_run(pk_runner *r, mix *m, int i) {
  static const int want_rc[MIX_N] = {0,         0,         PK_ENOENT,
                                     PK_ENOENT, PK_EACCES, PK_EBADCWD};
  int kind = i % MIX_N;
  pk_result *res = NULL;
  int rc = pk_output(r, m->cmd[kind], &res);
  if (rc != want_rc[kind])
    fail_msg("spawn %d (kind %d): %s, want %s: %s", i, kind, pk_err_name(rc),
             pk_err_name(want_rc[kind]), pk_result_errmsg(res));
  assert_non_null(res);
  if (kind == MIX_OK) {
    assert_int_equal(pk_result_code(res), 0);
    assert_string_equal(pk_result_stdout(res, NULL), "hi\n");
  } else if (kind == MIX_EXIT) {
    assert_int_equal(pk_result_code(res), 3);
  } else {
    assert_int_equal(pk_result_outcome(res), PK_OUTCOME_NONE);
    assert_int_equal(pk_result_error(res), want_rc[kind]);
  }
  const char *method = pk_result_spawn_method(res);
  if (kind == MIX_OK || kind == MIX_EXIT) {
    if (m->method[0] != '\0' && strcmp(m->method, method) != 0)
      fail_msg("spawn method changed from %s to %s", m->method, method);
    snprintf(m->method, sizeof(m->method), "%s", method);
  }
  m->counts[kind]++;
  pk_result_free(res);
}

static void many_sequential_spawns(void **state) {
  (void)state;
  pk_mechanism mech = pk_mechanism_best();
  leak_snap s;
  snap_take(&s);
  pk_runner *r = pkt_runner(mech, 0);
  mix m;
  mix_init(&m);
  int warm = nspawns < 100 ? nspawns : 100;
  uint64_t t0 = pkt_now_ms();
  for (int i = 0; i < warm; i++)
    mix_run(r, &m, i);
  long rss0 = rss_kb();
  for (int i = warm; i < nspawns; i++)
    mix_run(r, &m, i);
  uint64_t ms = pkt_now_ms() - t0;
  long rss1 = rss_kb();
  mix_free(&m);
  pk_runner_free(r);
  print_message("R1: %d spawns on %s via %s in %.2f s (%.0f spawns/s), "
                "RSS %ld -> %ld KiB\n",
                nspawns, pk_mechanism_name(mech), m.method, (double)ms / 1000.0,
                (double)nspawns * 1000.0 / (double)(ms ? ms : 1), rss0, rss1);
  for (int k = 0; k < MIX_N; k++)
    assert_true(m.counts[k] >= nspawns / MIX_N);
  /* A bound for a hang or a collapse, not the figure (printed above): on
   * a loaded 2-core host 2000 spawns took 115 s (17/s). */
  assert_true(ms < 300000);
#ifndef PKT_SANITIZED
  if (rss1 - rss0 > 4096)
    fail_msg("RSS grew by %ld KiB over %d spawns", rss1 - rss0, nspawns);
#endif
  snap_check(&s);
}

/* ------------------------------------------ R15: every fallback path */

/* Problems found on one path are printed and counted, so every path
 * still runs and the output lists them all before the test fails. */
typedef struct problems {
  int n;
} problems;

__attribute__((format(printf, 2, 3))) static void
problem(problems *pr, const char *fmt, ...) {
  char line[512];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(line, sizeof(line), fmt, ap);
  va_end(ap);
  print_message("PROBLEM: %s\n", line);
  pr->n++;
}

typedef struct tree_seen {
  pid_t pids[64];
  int n;
  int exits;
  bool bad_line;
} tree_seen;

static void tree_line(pk_proc *p, pk_stream s, const char *line, size_t len,
                      void *data) {
  (void)p;
  tree_seen *t = data;
  int pid = 0;
  char buf[64];
  if (s != PK_STDOUT || len >= sizeof(buf)) {
    t->bad_line = true;
    return;
  }
  memcpy(buf, line, len);
  buf[len] = '\0';
  if (sscanf(buf, "pid %d", &pid) != 1 || pid <= 0 || t->n >= 64) {
    t->bad_line = true;
    return;
  }
  t->pids[t->n++] = (pid_t)pid;
}

static void tree_exit(pk_proc *p, void *data) {
  (void)p;
  ((tree_seen *)data)->exits++;
}

/* tree 3 3: 1 + 3 + 9 + 27 = 40 processes, each pausing forever, torn
 * down by pk_proc_free on a caller-owned loop. */
static void fallback_tree_teardown(pk_runner *r, const char *where,
                                   problems *pr) {
  enum { NODES = 40 };
  long blocks0 = blocks_now();
  uv_loop_t loop;
  assert_int_equal(uv_loop_init(&loop), 0);
  pk_cmd *cmd = pkt_fixture("tree", "3", "3", NULL);
  PKT_ASSERT_OK(pk_cmd_set_timeout(cmd, 30000, 0, SIGKILL)); /* safety */
  tree_seen t;
  memset(&t, 0, sizeof(t));
  pk_start_opts o = {
      .loop = &loop, .on_line = tree_line, .on_exit = tree_exit, .data = &t};
  pk_proc *p = NULL;
  PKT_ASSERT_OK(pk_start(r, cmd, &o, &p));
  uint64_t deadline = pkt_now_ms() + 20000;
  while (t.n < NODES && t.exits == 0 && pkt_now_ms() < deadline)
    uv_run(&loop, UV_RUN_ONCE);
  assert_false(t.bad_line);
  assert_int_equal(t.exits, 0);
  assert_int_equal(t.n, NODES);
  for (int i = 0; i < NODES; i++)
    assert_true(pkt_pid_alive(t.pids[i]));
  pid_t leader = (pid_t)pk_proc_pid(p);
  assert_int_equal(leader, t.pids[0]);
  uint64_t t0 = pkt_now_ms();
  pk_proc_free(p); /* "nothing of the run outlives this call" */
  uint64_t ms = pkt_now_ms() - t0;
  /* pk must have reaped its direct child: it is no longer ours to wait
   * for (WNOWAIT: look, do not reap). */
  siginfo_t si;
  memset(&si, 0, sizeof(si));
  if (waitid(P_PID, (id_t)leader, &si, WEXITED | WNOHANG | WNOWAIT | __WALL) ==
      0)
    problem(pr, "%s: pk_proc_free returned without reaping the child %d (%s)",
            where, (int)leader, si.si_pid != 0 ? "a zombie" : "still running");
  int survivors = 0;
  for (int i = 0; i < NODES; i++)
    survivors += pkt_pid_alive(t.pids[i]);
  if (survivors != 0)
    problem(pr, "%s: %d of %d tree processes alive after pk_proc_free", where,
            survivors, NODES);
  print_message("    tree of %d torn down in %llu ms, %d survivors\n", NODES,
                (unsigned long long)ms, survivors);
  if (ms > 5000)
    problem(pr, "%s: pk_proc_free of the tree took %llu ms", where,
            (unsigned long long)ms);
  uv_run(&loop, UV_RUN_DEFAULT);
  assert_int_equal(uv_loop_close(&loop), 0);
  assert_int_equal(t.exits, 0); /* freed, not finished: no callback */
  pk_cmd_free(cmd);
  long leaked = blocks_now() - blocks0;
  if (leaked != 0)
    problem(pr, "%s: pk_proc_free of a running tree left %ld pk heap block(s)",
            where, leaked);
}

/* R7: a grandchild holds stdout for 30 s; the run ends after the drain. */
static void fallback_hold_pipe(pk_runner *r, const char *where, problems *pr) {
  pk_cmd *cmd = pkt_fixture("hold-pipe", "30", NULL);
  pk_result *res = NULL;
  uint64_t t0 = pkt_now_ms();
  PKT_ASSERT_OK(pk_output(r, cmd, &res));
  uint64_t ms = pkt_now_ms() - t0;
  assert_int_equal(pk_result_code(res), 0);
  assert_string_equal(pk_result_stdout(res, NULL), "hi\n");
  if (!pk_result_output_incomplete(res))
    problem(pr, "%s: hold-pipe output not marked incomplete", where);
  /* The holder keeps the pipe 30 s: well under that is prompt. 6.8 s
   * was seen at load 60 with 1,000 other processes to scan in /proc. */
  if (ms > 15000)
    problem(pr, "%s: hold-pipe run took %llu ms", where,
            (unsigned long long)ms);
  pk_result_free(res);
  pk_cmd_free(cmd);
}

/* R10: the child sees only 0, 1, 2 while we hold inheritable fds. */
static void fallback_fds(pk_runner *r, const char *where, problems *pr) {
  int pfd[2];
  assert_int_equal(pipe(pfd), 0); /* no O_CLOEXEC on purpose */
  int high = dup2(pfd[0], 900);
  assert_int_equal(high, 900);
  pk_cmd *cmd = pkt_fixture("fds", NULL);
  pk_result *res = NULL;
  PKT_ASSERT_OK(pk_output(r, cmd, &res));
  const char *out = pk_result_stdout(res, NULL);
  if (strcmp(out, "0\n1\n2\n") != 0)
    problem(pr, "%s: child fds are [%s], want [0 1 2]", where, out);
  pk_result_free(res);
  pk_cmd_free(cmd);
  close(high);
  close(pfd[0]);
  close(pfd[1]);
}

static void fallback_one(pk_mechanism mech, unsigned bits, int spawns,
                         problems *pr) {
  char name[96], where[160];
  bits_name(bits, name, sizeof(name));
  snprintf(where, sizeof(where), "%s with %s", pk_mechanism_name(mech), name);
  pkt_snapshot snap;
  pkt_snapshot_take(&snap);
  long blocks0 = blocks_now();
  pk_runner *r = pkt_runner(mech, bits);
  mix m;
  mix_init(&m);
  uint64_t t0 = pkt_now_ms();
  for (int i = 0; i < spawns; i++)
    mix_run(r, &m, i);
  uint64_t ms = pkt_now_ms() - t0;
  mix_free(&m);
  print_message("R15 %-13s %-52s method %-16s %d spawns %.0f/s\n",
                pk_mechanism_name(mech), name, m.method, spawns,
                (double)spawns * 1000.0 / (double)(ms ? ms : 1));
  const char *wrong = method_problem(bits, m.method);
  if (wrong != NULL)
    problem(pr, "%s: spawn method %s: %s", where, m.method, wrong);
  long before_tree = blocks_now();
  fallback_tree_teardown(r, where, pr);
  long tree_leak = blocks_now() - before_tree;
  fallback_hold_pipe(r, where, pr);
  fallback_fds(r, where, pr);
  pk_runner_free(r);
  pkt_snapshot_check(&snap);
  long other = blocks_now() - blocks0 - tree_leak;
  if (other != 0)
    problem(pr, "%s: %ld pk heap block(s) left by spawns/hold-pipe/fds", where,
            other);
}

static void every_fallback_path(void **state) {
  (void)state;
  static const unsigned sets[] = {
      0,
      PK_NO_CLONE3,
      PK_NO_PIDFD,
      PK_NO_CLOSE_RANGE,
      PK_NO_CGROUP_KILL,
      PK_NO_CLONE3 | PK_NO_PIDFD,
      PK_NO_CLONE3 | PK_NO_PIDFD | PK_NO_CLOSE_RANGE | PK_NO_CGROUP_KILL,
  };
  int spawns = nspawns < 300 ? nspawns : 300;
  problems pr;
  memset(&pr, 0, sizeof(pr));
  for (int m = 0; m < nmechs; m++)
    for (size_t i = 0; i < sizeof(sets) / sizeof(sets[0]); i++)
      fallback_one(mechs[m], sets[i], spawns, &pr);
  if (pr.n > 0)
    fail_msg("%d problem(s) on the fallback paths (see PROBLEM lines)", pr.n);
}

/* pk_proc_free of a running run kills it and reaps the direct child
 * before returning, on every mechanism and spawn path; a zombie left
 * behind would pile up in a long-running caller. */
static void free_while_running_reaps(void **state) {
  (void)state;
  enum { ROUNDS = 50 };
  static const unsigned sets[] = {0, PK_NO_CLONE3 | PK_NO_PIDFD};
  problems pr;
  memset(&pr, 0, sizeof(pr));
  for (int m = 0; m < nmechs; m++) {
    for (size_t b = 0; b < 2; b++) {
      char name[96];
      bits_name(sets[b], name, sizeof(name));
      leak_snap s;
      snap_take(&s);
      pk_runner *r = pkt_runner(mechs[m], sets[b]);
      pk_cmd *cmd = pkt_fixture("sleep", "30", NULL);
      int unreaped = 0, running = 0;
      for (int i = 0; i < ROUNDS; i++) {
        pk_proc *p = NULL;
        PKT_ASSERT_OK(pk_start(r, cmd, NULL, &p));
        pid_t pid = (pid_t)pk_proc_pid(p);
        assert_true(pid > 0);
        pk_proc_free(p);
        siginfo_t si;
        memset(&si, 0, sizeof(si));
        if (waitid(P_PID, (id_t)pid, &si,
                   WEXITED | WNOHANG | WNOWAIT | __WALL) == 0) {
          unreaped++;
          running += si.si_pid == 0;
        }
      }
      print_message("free while running on %s with %s: %d of %d children "
                    "left unreaped (%d still running)\n",
                    pk_mechanism_name(mechs[m]), name, unreaped, ROUNDS,
                    running);
      if (unreaped > 0)
        problem(&pr,
                "%s with %s: pk_proc_free returned %d of %d times "
                "without reaping the child",
                pk_mechanism_name(mechs[m]), name, unreaped, ROUNDS);
      pk_cmd_free(cmd);
      pk_runner_free(r);
      snap_check(&s); /* reaps what pk left, by pid */
    }
  }
  if (pr.n > 0)
    fail_msg("%d problem(s) (see PROBLEM lines)", pr.n);
}

/* ------------------------------------- R2 (small): 200 on one loop */

typedef struct conc {
  pk_proc *p;
  int exits;
  char out[32];
  size_t len;
} conc;

static void conc_output(pk_proc *p, pk_stream s, const char *buf, size_t len,
                        void *data) {
  (void)p;
  conc *c = data;
  if (s == PK_STDOUT && c->len + len < sizeof(c->out)) {
    memcpy(c->out + c->len, buf, len);
    c->len += len;
  }
}

static void conc_exit(pk_proc *p, void *data) {
  conc *c = data;
  c->exits++;
  assert_ptr_equal(p, c->p);
}

static void raise_nofile(struct rlimit *old, rlim_t want) {
  assert_int_equal(getrlimit(RLIMIT_NOFILE, old), 0);
  struct rlimit rl = *old;
  if (rl.rlim_cur != RLIM_INFINITY && rl.rlim_cur < want) {
    rl.rlim_cur =
        rl.rlim_max == RLIM_INFINITY || rl.rlim_max > want ? want : rl.rlim_max;
    assert_int_equal(setrlimit(RLIMIT_NOFILE, &rl), 0);
  }
}

static void concurrent_on_one_loop(void **state) {
  (void)state;
  enum { N = 200 };
  struct rlimit old_nofile;
  raise_nofile(&old_nofile, 4096);
  for (int m = 0; m < nmechs; m++) {
    leak_snap s;
    snap_take(&s);
    pk_runner *r = pkt_runner(mechs[m], 0);
    uv_loop_t loop;
    assert_int_equal(uv_loop_init(&loop), 0);
    conc *cs = calloc(N, sizeof(*cs));
    assert_non_null(cs);
    uint64_t t0 = pkt_now_ms();
    for (int i = 0; i < N; i++) {
      char num[16];
      snprintf(num, sizeof(num), "%d", i);
      pk_cmd *cmd = pkt_fixture("echo", num, NULL);
      pk_start_opts o = {.loop = &loop,
                         .on_output = conc_output,
                         .on_exit = conc_exit,
                         .data = &cs[i]};
      PKT_ASSERT_OK(pk_start(r, cmd, &o, &cs[i].p));
      pk_cmd_free(cmd); /* pk_start keeps its own copy */
    }
    int alive = pkt_count_children();
    for (int i = 0; i < N; i++)
      assert_int_equal(cs[i].exits, 0); /* never from inside pk_start */
    uv_run(&loop, UV_RUN_DEFAULT);
    uint64_t ms = pkt_now_ms() - t0;
    for (int i = 0; i < N; i++) {
      if (cs[i].exits != 1)
        fail_msg("child %d: on_exit fired %d times", i, cs[i].exits);
      const pk_result *res = pk_proc_result(cs[i].p);
      assert_non_null(res);
      assert_int_equal(pk_result_error(res), 0);
      assert_int_equal(pk_result_code(res), 0);
      char want[16];
      snprintf(want, sizeof(want), "%d\n", i);
      assert_string_equal(pk_result_stdout(res, NULL), want);
      assert_int_equal(cs[i].len, strlen(want));
      assert_memory_equal(cs[i].out, want, cs[i].len);
      pk_proc_free(cs[i].p);
    }
    uv_run(&loop, UV_RUN_DEFAULT);
    assert_int_equal(uv_loop_close(&loop), 0);
    for (int i = 0; i < N; i++)
      assert_int_equal(cs[i].exits, 1);
    print_message("R2: %d children on one loop on %s in %.2f s "
                  "(%d children alive after the starts)\n",
                  N, pk_mechanism_name(mechs[m]), (double)ms / 1000.0, alive);
    assert_true(ms < 30000);
    free(cs);
    pk_runner_free(r);
    snap_check(&s);
  }
  assert_int_equal(setrlimit(RLIMIT_NOFILE, &old_nofile), 0);
}

/* ------------------------------------------------------------- main */

static int group_setup(void **state) {
  if (mkdtemp(tmpdir) == NULL)
    return -1;
  snprintf(noexec_path, sizeof(noexec_path), "%s/noexec", tmpdir);
  int fd = open(noexec_path, O_CREAT | O_WRONLY | O_CLOEXEC, 0644);
  if (fd < 0)
    return -1;
  close(fd);
  return pkt_setup(state);
}

static int group_teardown(void **state) {
  (void)state;
  unlink(noexec_path);
  rmdir(tmpdir);
  return 0;
}

int main(void) {
  pk_replace_allocator(count_malloc, count_realloc, count_calloc, count_free);
  const char *env = getenv("PK_STRESS_SPAWNS");
  if (env != NULL && atoi(env) > 0)
    nspawns = atoi(env);
  nmechs = pkt_mechanisms(mechs);
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(many_sequential_spawns),
      cmocka_unit_test(every_fallback_path),
      cmocka_unit_test(free_while_running_reaps),
      cmocka_unit_test(concurrent_on_one_loop),
  };
  return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
