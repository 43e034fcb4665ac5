/* The capability matrix: docs/platform-support.md must be what
 * `pk caps --markdown` prints, and every cell must describe what the
 * mechanisms available here really do. */
#include "harness.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/inotify.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

/* `test_caps --predict`: a fresh process (no pk state at all) that only
 * predicts, prints "best cgroup_v2 kill" and exits. */
static int predict_only(void) {
  pk_host_prediction hp;
  if (pk_host_predict(&hp) != 0)
    return 1;
  printf("%d %d %d\n", (int)hp.best, hp.cgroup_v2, hp.cgroup_kill);
  return 0;
}

static char *slurp_cmd(const char *cmd) {
  FILE *f = popen(cmd, "r");
  assert_non_null(f);
  size_t cap = 1 << 16, len = 0;
  char *buf = malloc(cap);
  size_t n;
  while ((n = fread(buf + len, 1, cap - len - 1, f)) > 0)
    len += n;
  buf[len] = '\0';
  assert_int_equal(pclose(f), 0);
  return buf;
}

static char *slurp_file(const char *path) {
  FILE *f = fopen(path, "r");
  assert_non_null(f);
  size_t cap = 1 << 16;
  char *buf = malloc(cap);
  size_t len = fread(buf, 1, cap - 1, f);
  buf[len] = '\0';
  fclose(f);
  return buf;
}

static void docs_match_the_data(void **state) {
  (void)state;
  char *generated = slurp_cmd(PK_CLI " caps --markdown");
  char *file = slurp_file(PK_SOURCE_DIR "/docs/platform-support.md");
  if (strcmp(generated, file) != 0)
    fail_msg("docs/platform-support.md is stale: regenerate it with "
             "`build/tools/pk caps --markdown > docs/platform-support.md`");
  free(generated);
  free(file);
  for (int m = PK_MECH_CGROUP_V2; m <= PK_MECH_JOB_OBJECT; m++)
    for (int c = 0; c < PK_CAP_COUNT; c++) {
      const char *note = NULL;
      pk_capability_support((pk_mechanism)m, (pk_capability)c, &note);
      assert_true(note != NULL && strlen(note) > 5);
    }
}

/* ------------------------------------------------- behaviour, per cell */

typedef struct pids {
  pid_t v[64];
  int n;
} pids;

static void collect(pk_proc *p, pk_stream s, const char *line, size_t len,
                    void *data) {
  (void)p, (void)s, (void)len;
  pids *ps = data;
  if (strncmp(line, "pid ", 4) == 0 && ps->n < 64)
    ps->v[ps->n++] = (pid_t)atoi(line + 4);
}

static int alive_count(const pids *ps) {
  int n = 0;
  for (int i = 0; i < ps->n; i++)
    n += pkt_pid_alive(ps->v[i]);
  return n;
}

/* kill_tree / signal_tree: `tree 2 2` (7 processes) ended by sig from
 * pk_proc_kill; every member must be gone when pk reports the end. */
static void tree_ends_by(pk_mechanism m, int sig) {
  pkt_snapshot snap;
  pkt_snapshot_take(&snap);
  pk_runner *r = pkt_runner(m, 0);
  pk_cmd *cmd = pkt_fixture("tree", "2", "2", NULL);
  uv_loop_t loop;
  assert_int_equal(uv_loop_init(&loop), 0);
  pids ps = {.n = 0};
  pk_start_opts o = {.loop = &loop, .on_line = collect, .data = &ps};
  pk_proc *p = NULL;
  PKT_ASSERT_OK(pk_start(r, cmd, &o, &p));
  uint64_t deadline = pkt_now_ms() + 10000;
  while (ps.n < 7 && pkt_now_ms() < deadline)
    uv_run(&loop, UV_RUN_ONCE);
  assert_int_equal(ps.n, 7);
  PKT_ASSERT_OK(pk_proc_kill(p, sig));
  while (!pk_proc_done(p))
    uv_run(&loop, UV_RUN_ONCE);
  assert_int_equal(alive_count(&ps), 0);
  pk_proc_free(p);
  uv_run(&loop, UV_RUN_DEFAULT);
  assert_int_equal(uv_loop_close(&loop), 0);
  pk_cmd_free(cmd);
  pk_runner_free(r);
  pkt_snapshot_check(&snap);
}

/* escape_proof after the direct child exited normally: a setsid'd
 * descendant is caught (full) or, by design, out of reach (partial). */
static void escapee_after_exit(pk_mechanism m, pk_support level) {
  pkt_snapshot snap;
  pkt_snapshot_take(&snap);
  pk_runner *r = pkt_runner(m, 0);
  /* The parent exits at once; the escapee, in its own session with its
   * stdio on /dev/null, would sleep 30 s. */
  pk_cmd *cmd = pkt_fixture("setsid-escape", "0", "30", NULL);
  pk_result *res = NULL;
  PKT_ASSERT_OK(pk_checked(r, cmd, &res));
  const char *text = strstr(pk_result_stdout(res, NULL), "escaped ");
  assert_non_null(text);
  assert_false(pk_result_output_incomplete(res));
  pid_t esc = (pid_t)atoi(text + 8);
  pk_result_free(res);
  assert_true(esc > 0);
  if (level == PK_SUPPORT_FULL) {
    assert_false(pkt_pid_alive(esc));
  } else {
    /* The documented gap: it outlives the run. It is our descendant
     * (adopted by us, the subreaper), so the test ends it. */
    assert_true(pkt_pid_alive(esc));
    assert_int_equal(kill(esc, SIGKILL), 0);
    assert_int_equal(waitpid(esc, NULL, 0), esc);
  }
  pk_cmd_free(cmd);
  pk_runner_free(r);
  pkt_snapshot_check(&snap);
}

/* fixture: a copy uid 65534 can exec wherever the build directory is. */
static void contain_before_exec(pk_mechanism m,
                                const pkt_fixture_copy *fixture) {
  pk_runner *r = pkt_runner(m, 0);
  pk_cmd *cmd = pkt_fixture_copy_cmd(
      fixture, m == PK_MECH_CGROUP_V2 ? "cgroup" : "pgid", NULL);
  PKT_ASSERT_OK(pk_cmd_set_user(cmd, 65534, 65534, NULL, 0)); /* and drop */
  pk_result *res = NULL;
  PKT_ASSERT_OK(pk_checked(r, cmd, &res));
  const char *out = pk_result_stdout(res, NULL);
  if (m == PK_MECH_CGROUP_V2) {
    char mine[32];
    snprintf(mine, sizeof(mine), "/pk-%d-", (int)getpid());
    assert_non_null(strstr(out, mine));
  } else {
    int pid, pgid;
    assert_int_equal(sscanf(out, "pid %d pgid %d", &pid, &pgid), 2);
    assert_int_equal(pid, pgid);
  }
  pk_result_free(res);
  pk_cmd_free(cmd);
  pk_runner_free(r);
}

/* ------------------------------------------------ groups: helpers */

/* Start cmd in g with its "pid N" lines collected; drive until want. */
static pk_proc *start_collect(pk_group *g, pk_cmd *cmd, pids *ps, int want) {
  pk_start_opts so = {.on_line = collect, .data = ps};
  pk_proc *p = NULL;
  PKT_ASSERT_OK(pk_start(pk_group_runner(g), cmd, &so, &p));
  pk_cmd_free(cmd);
  uint64_t end = pkt_now_ms() + 30000;
  size_t i;
  while (ps->n < want && pkt_now_ms() < end)
    if (pk_proc_wait_any(&p, 1, 50, &i) == 0 && ps->n < want)
      fail_msg("the run ended early");
  assert_int_equal(ps->n, want);
  return p;
}

/* ------------------------------------------------ the cells */

/* escape_proof on cgroup_v2 (partial): a setsid escapee stays and dies
 * with the run; a process that writes itself into another cgroup (we
 * are root) leaves and outlives it. */
static void cgroup_escape(void) {
  escapee_after_exit(PK_MECH_CGROUP_V2, PK_SUPPORT_FULL);
  pk_host_prediction hp;
  PKT_ASSERT_OK(pk_host_predict(&hp));
  char procs[4200];
  snprintf(procs, sizeof(procs), "%s/cgroup.procs", hp.cgroup_base);
  pkt_snapshot snap;
  pkt_snapshot_take(&snap);
  pk_runner *r = pkt_runner(PK_MECH_CGROUP_V2, 0);
  pk_cmd *cmd = pkt_fixture("cgroup-leave", procs, "600", NULL);
  pk_proc *p = NULL;
  PKT_ASSERT_OK(pk_start(r, cmd, NULL, &p));
  pid_t pid = pk_proc_pid(p);
  /* the direct child leaves its leaf; the run's own teardown still ends
   * it (it is pk's child), but only after proving it left */
  char path[64], line[4096] = "";
  snprintf(path, sizeof(path), "/proc/%d/cgroup", (int)pid);
  uint64_t end = pkt_now_ms() + 10000;
  while (pkt_now_ms() < end) { /* its cgroup-v2 line ("0::/...") */
    FILE *f = fopen(path, "r");
    line[0] = '\0';
    while (f != NULL && fgets(line, sizeof(line), f) != NULL &&
           strncmp(line, "0::", 3) != 0)
      line[0] = '\0';
    if (f != NULL)
      fclose(f);
    if (strncmp(line, "0::", 3) == 0 && strstr(line, "/pk-") == NULL)
      break;
    poll(NULL, 0, 5);
  }
  print_message("  escape_proof: the child wrote %s and is now in %s", procs,
                line);
  assert_int_equal(strncmp(line, "0::", 3), 0);
  assert_null(strstr(line, "/pk-"));
  pk_proc_free(p); /* must not wait for the escaped child */
  assert_false(pkt_pid_alive(pid));
  pk_cmd_free(cmd);
  pk_runner_free(r);
  pkt_snapshot_check(&snap);
}

static void graceful_shutdown(pk_mechanism m) {
  pkt_snapshot snap;
  pkt_snapshot_take(&snap);
  pk_group *g = pkt_group(m);
  pk_start_opts so = {0};
  pk_proc *p = NULL;
  pk_cmd *c = pkt_fixture("handle-term", "600", NULL);
  PKT_ASSERT_OK(pk_start(pk_group_runner(g), c, &so, &p));
  pk_cmd_free(c);
  /* TERM ends it (by its handler, or before it is installed by default:
   * either way the tree drains without a kill) */
  pk_shutdown_report rep;
  uint64_t t0 = pkt_now_ms();
  PKT_ASSERT_OK(pk_group_stop(g, 60000, true, &rep));
  assert_true(rep.drained || rep.members_before == 0);
  assert_false(rep.escalated);
  assert_true(pkt_now_ms() - t0 < 30000);
  PKT_ASSERT_OK(pk_proc_wait(p));
  pk_proc_free(p);
  pk_group_free(g);
  pkt_snapshot_check(&snap);
}

/* adopt: a process this test forks, which forks once more after it was
 * adopted. full: the later child is a member and dies with the group;
 * partial: only the adopted process is. */
static void adopt_cell(pk_mechanism m, pk_support level) {
  pkt_snapshot snap;
  pkt_snapshot_take(&snap);
  pk_group *g = pkt_group(m);
  int go[2], back[2];
  assert_int_equal(pipe2(go, O_CLOEXEC), 0);
  assert_int_equal(pipe2(back, O_CLOEXEC), 0);
  pid_t a = fork();
  assert_true(a >= 0);
  if (a == 0) {
    char b;
    if (read(go[0], &b, 1) != 1)
      _exit(1);
    pid_t c = fork();
    if (c == 0) {
      execl(PK_FIXTURE, PK_FIXTURE, "sleep", "600", (char *)NULL);
      _exit(127);
    }
    if (write(back[1], &c, sizeof(c)) != (ssize_t)sizeof(c))
      _exit(1);
    pause();
    _exit(0);
  }
  close(go[0]);
  close(back[1]);
  int fa = pkt_pidfd(a);
  PKT_ASSERT_OK(pk_group_adopt(g, a, -1));
  assert_int_equal(write(go[1], "x", 1), 1);
  pid_t c = 0;
  assert_int_equal(read(back[0], &c, sizeof(c)), (ssize_t)sizeof(c));
  close(go[1]);
  close(back[0]);
  int fc = pkt_pidfd(c);
  int *mem;
  size_t n;
  PKT_ASSERT_OK(pk_group_members(g, &mem, &n));
  bool has_c = false;
  for (size_t i = 0; i < n; i++)
    has_c = has_c || mem[i] == c;
  pk_free(mem);
  PKT_ASSERT_OK(pk_group_kill_all(g));
  assert_int_equal(pkt_wait_pidfds(&fa, 1, 10000), 0);
  assert_int_equal(waitpid(a, NULL, 0), a);
  if (level == PK_SUPPORT_FULL) {
    assert_true(has_c);
    assert_int_equal(pkt_wait_pidfds(&fc, 1, 10000), 0);
  } else {
    assert_false(has_c);
    bool alive = pkt_pid_alive(c);
    pkt_wait_pidfds(&fc, 1, 0); /* the documented gap: the test ends it */
    assert_true(alive);
  }
  pk_group_free(g);
  pkt_snapshot_check(&snap);
}

static void suspend_cell(pk_mechanism m) {
  pkt_snapshot snap;
  pkt_snapshot_take(&snap);
  pk_group *g = pkt_group(m);
  pk_cmd *c = pkt_fixture("burn", "60000", NULL);
  pk_proc *p = NULL;
  PKT_ASSERT_OK(pk_start(pk_group_runner(g), c, NULL, &p));
  pk_cmd_free(c);
  int pid = pk_proc_pid(p);
  PKT_ASSERT_OK(pk_group_suspend(g));
  if (m == PK_MECH_PROCESS_GROUP)
    pkt_wait_state(pid, 'T', 10000);
  int64_t t0 = pkt_cpu_ticks(pid);
  poll(NULL, 0, 200);
  assert_int_equal(pkt_cpu_ticks(pid), t0);
  PKT_ASSERT_OK(pk_group_resume(g));
  /* running again: it burns CPU (event: the tick count moves) */
  uint64_t end = pkt_now_ms() + 30000;
  while (pkt_cpu_ticks(pid) == t0 && pkt_now_ms() < end)
    poll(NULL, 0, 10);
  assert_true(pkt_cpu_ticks(pid) > t0);
  pk_group_free(g);
  pk_proc_free(p);
  pkt_snapshot_check(&snap);
}

static void members_cell(pk_mechanism m, pk_support level) {
  pkt_snapshot snap;
  pkt_snapshot_take(&snap);
  pk_group *g = pkt_group(m);
  pids ps = {.n = 0};
  pk_proc *p = start_collect(g, pkt_fixture("tree", "1", "2", NULL), &ps, 3);
  int *mem;
  size_t n;
  PKT_ASSERT_OK(pk_group_members(g, &mem, &n));
  pk_free(mem);
  assert_int_equal(n, level == PK_SUPPORT_FULL ? 3 : 1);
  pk_group_stats st;
  PKT_ASSERT_OK(pk_group_stats_get(g, &st));
  assert_int_equal(st.active, (int64_t)n);
  pk_group_free(g);
  pk_proc_free(p);
  pkt_snapshot_check(&snap);
}

static void stats_cell(pk_mechanism m, pk_capability c, pk_support level) {
  pkt_snapshot snap;
  pkt_snapshot_take(&snap);
  pk_group *g = pkt_group(m);
  pk_result *res = NULL;
  pk_cmd *cmd = pkt_fixture("burn", "200", NULL);
  PKT_ASSERT_OK(pk_output(pk_group_runner(g), cmd, &res));
  pk_cmd_free(cmd);
  pk_group_stats st;
  PKT_ASSERT_OK(pk_group_stats_get(g, &st));
  if (c == PK_CAP_GROUP_STATS) {
    if (level == PK_SUPPORT_FULL) {
      assert_true(st.cpu_us >= 150000);
      assert_true(st.peak_memory == -1 || st.peak_memory > 0);
    } else {
      assert_int_equal(st.cpu_us, -1);
      assert_int_equal(st.peak_memory, -1);
      assert_int_equal(st.active, 0);
    }
  } else {
    assert_true(pk_result_cpu_us(res) >= 150000);
    assert_string_equal(pk_result_cpu_scope(res),
                        level == PK_SUPPORT_FULL ? "tree" : "child");
    assert_true(pk_result_peak_memory(res) > 0);
  }
  pk_result_free(res);
  pk_group_free(g);
  pkt_snapshot_check(&snap);
}

/* A limit: enforced (proven) where the host can, else PK_ELIMIT with
 * the reason; PK_EUNSUPPORTED where the mechanism has none. */
static void limit_cell(pk_mechanism m, pk_capability c, pk_support level) {
  pkt_snapshot snap;
  pkt_snapshot_take(&snap);
  pk_group_opts o;
  pk_group_opts_init(&o);
  o.mechanism = m;
  const char *opt = pk_capability_name(c);
  if (c == PK_CAP_MEMORY_MAX)
    o.memory_max = 64 << 20;
  else if (c == PK_CAP_MAX_PROCESSES)
    o.max_processes = 20;
  else
    o.cpu_quota = 0.2;
  pk_group *g = NULL;
  char *msg = NULL;
  int rc = pk_group_new(&o, &g, &msg);
  if (level == PK_SUPPORT_NONE) {
    assert_int_equal(rc, PK_EUNSUPPORTED);
    assert_non_null(strstr(msg, opt));
    pk_free(msg);
    pkt_snapshot_check(&snap);
    return;
  }
  if (rc != 0) {
    print_message("  %s: not enforceable on this host: %s: %s\n", opt,
                  pk_err_name(rc), msg);
    assert_int_equal(rc, PK_ELIMIT);
    assert_non_null(strstr(msg, opt));
    assert_null(g);
    pk_free(msg);
    pkt_snapshot_check(&snap);
    return;
  }
  print_message("  %s: enforced here; proving it\n", opt);
  pk_result *res = NULL;
  if (c == PK_CAP_MEMORY_MAX) {
    pk_cmd *cmd = pkt_fixture("touch", "16", NULL);
    PKT_ASSERT_OK(pk_output(pk_group_runner(g), cmd, &res));
    assert_int_equal(pk_result_code(res), 0); /* under the cap: fine */
    pk_result_free(res);
    pk_cmd_free(cmd);
    cmd = pkt_fixture("touch", "256", NULL);
    PKT_ASSERT_OK(pk_output(pk_group_runner(g), cmd, &res));
    assert_int_equal(pk_result_outcome(res), PK_OUTCOME_SIGNALLED);
    assert_int_equal(pk_result_signal(res), SIGKILL); /* the OOM killer */
    pk_group_stats st;
    PKT_ASSERT_OK(pk_group_stats_get(g, &st));
    print_message("  memory_max: touch 256 MiB killed; oom_kills %lld, "
                  "peak %lld\n",
                  (long long)st.oom_kills, (long long)st.peak_memory);
    assert_true(st.oom_kills >= 1);
    assert_true(st.peak_memory <= (int64_t)64 << 20);
    pk_cmd_free(cmd);
  } else if (c == PK_CAP_MAX_PROCESSES) {
    /* 1 + 40 forks: at most 20 processes ever exist */
    pids ps = {.n = 0};
    pk_start_opts so = {.on_line = collect, .data = &ps};
    pk_proc *p = NULL;
    pk_cmd *cmd = pkt_fixture("tree", "1", "40", NULL);
    PKT_ASSERT_OK(pk_cmd_set_timeout(cmd, 60000, 0, SIGKILL));
    PKT_ASSERT_OK(pk_start(pk_group_runner(g), cmd, &so, &p));
    pk_cmd_free(cmd);
    uint64_t end = pkt_now_ms() + 60000;
    int *mem = NULL;
    size_t n = 0;
    /* the fork loop ends (successes plus failures) within the timeout;
     * members never exceed the cap */
    for (;;) {
      size_t i;
      pk_proc_wait_any(&p, 1, 100, &i);
      pk_free(mem);
      PKT_ASSERT_OK(pk_group_members(g, &mem, &n));
      assert_true(n <= 20);
      if (ps.n >= 20 || pkt_now_ms() > end || pk_proc_done(p))
        break;
    }
    pk_free(mem);
    print_message("  max_processes: %d of 41 processes started under 20\n",
                  ps.n);
    assert_int_equal(ps.n, 20);
    pk_group_kill_all(g);
    pk_proc_wait(p);
    pk_proc_free(p);
  } else {
    pk_cmd *cmd = pkt_fixture("burn", "400", NULL);
    PKT_ASSERT_OK(pk_output(pk_group_runner(g), cmd, &res));
    /* 400 ms of CPU at 0.2 cores needs about 2 s of wall time */
    print_message("  cpu_quota: 400 ms of CPU took %lld ms at 0.2 cores\n",
                  (long long)pk_result_duration_ms(res));
    assert_true(pk_result_duration_ms(res) >= 1500);
    pk_cmd_free(cmd);
  }
  pk_result_free(res);
  pk_group_free(g);
  pkt_snapshot_check(&snap);
}

static void inherit_env_cell(pk_mechanism m) {
  pk_runner *r = pkt_runner(m, 0);
  setenv("PK_MATRIX_KEEP", "kept", 1);
  setenv("PK_MATRIX_DROP", "dropped", 1);
  pk_cmd *cmd = pkt_fixture("env", NULL);
  PKT_ASSERT_OK(pk_cmd_inherit_env(cmd, "PK_MATRIX_KEEP"));
  pk_result *res = NULL;
  PKT_ASSERT_OK(pk_checked(r, cmd, &res));
  const char *out = pk_result_stdout(res, NULL);
  assert_non_null(strstr(out, "PK_MATRIX_KEEP=kept"));
  assert_null(strstr(out, "PK_MATRIX_DROP"));
  assert_null(strstr(out, "PATH=")); /* nothing else came along */
  pk_result_free(res);
  pk_cmd_free(cmd);
  pk_runner_free(r);
}

/* setsid: the new session's tree still dies with the run. */
static void setsid_cell(pk_mechanism m) {
  pkt_snapshot snap;
  pkt_snapshot_take(&snap);
  pk_group *g = pkt_group(m);
  pk_cmd *cmd = pkt_fixture("tree", "1", "2", NULL);
  PKT_ASSERT_OK(pk_cmd_set_setsid(cmd, true));
  pids ps = {.n = 0};
  pk_proc *p = start_collect(g, cmd, &ps, 3);
  PKT_ASSERT_OK(pk_proc_kill(p, SIGKILL));
  assert_int_equal(pk_proc_wait(p), PK_ECANCELED);
  assert_int_equal(alive_count(&ps), 0);
  pk_proc_free(p);
  pk_group_free(g);
  pkt_snapshot_check(&snap);
}

static void no_window_cell(pk_mechanism m) {
  pk_runner *r = pkt_runner(m, 0);
  pk_cmd *cmd = pkt_fixture("echo", "same", NULL);
  PKT_ASSERT_OK(pk_cmd_set_create_no_window(cmd, true));
  assert_true(pk_cmd_create_no_window(cmd));
  pk_result *res = NULL;
  PKT_ASSERT_OK(pk_checked(r, cmd, &res));
  assert_string_equal(pk_result_stdout(res, NULL), "same\n");
  assert_int_equal(pk_cmd_set_create_no_window(NULL, true), PK_EINVAL);
  pk_result_free(res);
  pk_cmd_free(cmd);
  pk_runner_free(r);
}

/* kill_on_parent_death / owner death: an owner process (forked here)
 * makes a group with kill_on_parent_death, starts `tree 1 2`, reports
 * its scope and the pids, and is SIGKILLed. */
static void owner_main(pk_mechanism m, int wfd) {
  pk_group_opts o;
  pk_group_opts_init(&o);
  o.mechanism = m;
  o.kill_on_parent_death = true;
  pk_group *g = NULL;
  char *msg = NULL;
  setenv("PK_GUARDIAN", PK_GUARDIAN_BIN, 1);
  if (pk_group_new(&o, &g, &msg) != 0) {
    dprintf(wfd, "error %s\n", msg);
    _exit(10);
  }
  pids ps = {.n = 0};
  pk_start_opts so = {.on_line = collect, .data = &ps};
  pk_proc *p = NULL;
  pk_cmd *c = pkt_fixture("tree", "1", "2", NULL);
  if (pk_start(pk_group_runner(g), c, &so, &p) != 0)
    _exit(11);
  uint64_t end = pkt_now_ms() + 30000;
  size_t i;
  while (ps.n < 3 && pkt_now_ms() < end)
    if (pk_proc_wait_any(&p, 1, 50, &i) == 0)
      _exit(12);
  dprintf(wfd, "%s %d %d %d %d\n", pk_group_parent_death_scope(g),
          pk_proc_pid(p), (int)ps.v[0], (int)ps.v[1], (int)ps.v[2]);
  for (;;)
    pause();
}

static void parent_death_cell(pk_mechanism m, pk_support level) {
  pkt_snapshot snap;
  pkt_snapshot_take(&snap);
  int pfd[2];
  assert_int_equal(pipe2(pfd, O_CLOEXEC), 0);
  pid_t owner = fork();
  assert_true(owner >= 0);
  if (owner == 0) {
    close(pfd[0]);
    owner_main(m, pfd[1]);
  }
  close(pfd[1]);
  char buf[256] = "", scope[16] = "";
  ssize_t got = 0, r;
  while ((r = read(pfd[0], buf + got, sizeof(buf) - 1 - (size_t)got)) > 0 &&
         !memchr(buf, '\n', (size_t)(got += r)))
    ;
  close(pfd[0]);
  int leader, v[3];
  bool ok =
      sscanf(buf, "%15s %d %d %d %d", scope, &leader, &v[0], &v[1], &v[2]) == 5;
  int lfd = ok ? (int)syscall(SYS_pidfd_open, leader, 0) : -1, fds[3];
  for (int i = 0; i < 3; i++)
    fds[i] = ok ? (int)syscall(SYS_pidfd_open, v[i], 0) : -1;
  assert_int_equal(kill(owner, SIGKILL), 0); /* first: nothing is left */
  assert_int_equal(waitpid(owner, NULL, 0), owner);
  if (!ok || lfd < 0 || fds[0] < 0 || fds[1] < 0 || fds[2] < 0)
    fail_msg("the owner reported \"%s\" (pidfd: %s)", buf, strerror(errno));
  assert_string_equal(scope, level == PK_SUPPORT_FULL ? "tree" : "child");
  assert_int_equal(pkt_wait_pidfds(&lfd, 1, 10000), 0); /* always */
  if (level == PK_SUPPORT_FULL) {
    assert_int_equal(pkt_wait_pidfds(fds, 3, 10000), 0);
  } else { /* the grandchildren outlive it: the documented scope */
    assert_int_equal(pkt_wait_pidfds(fds, 1, 10000), 0);
    bool alive = pkt_pid_alive(v[1]) && pkt_pid_alive(v[2]);
    pkt_wait_pidfds(fds + 1, 2, 0);
    assert_true(alive);
  }
  pkt_snapshot_check(&snap);
}

static void owner_death_cell(pk_mechanism m, pk_support level) {
  if (level == PK_SUPPORT_FULL) {
    parent_death_cell(m, level); /* the group's guardian, as above */
    return;
  }
  pk_real_opts o = {.mechanism = m, .kill_on_owner_death = true};
  pk_runner *r = NULL;
  assert_int_equal(pk_real_runner_new(&o, &r), PK_EUNSUPPORTED);
  assert_null(r);
}

/* subreaper, in a forked process (it changes the whole process): a run
 * whose setsid escapee outlives the direct child. process_group: the
 * escapee comes back and is killed (1), a live run beside it is never
 * touched; cgroup_v2: the escapee died with the run, nothing comes back
 * (0). */
static void subreaper_main(pk_mechanism m, int wfd) {
  int n = -1;
  if (pk_subreaper_kill_orphans(&n) != PK_EINVAL || n != 0)
    _exit(10);
  if (pk_subreaper_enable() != 0 || !pk_subreaper_enabled())
    _exit(11);
  pk_runner *r = pkt_runner(m, 0);
  pk_cmd *c = pkt_fixture("setsid-escape", "0", "600", NULL);
  pk_result *res = NULL;
  if (pk_output(r, c, &res) != 0)
    _exit(12);
  int esc = 0;
  const char *out = pk_result_stdout(res, NULL);
  const char *p = out != NULL ? strstr(out, "escaped ") : NULL;
  if (p == NULL || sscanf(p, "escaped %d", &esc) != 1)
    _exit(13);
  pk_cmd *c2 = pkt_fixture("sleep", "600", NULL);
  pk_proc *live = NULL;
  if (pk_start(r, c2, NULL, &live) != 0)
    _exit(14);
  int killed = -1;
  if (pk_subreaper_kill_orphans(&killed) != 0)
    _exit(15);
  bool live_ok = pk_proc_kill(live, 0) == 0;
  pk_proc_free(live);
  dprintf(wfd, "%d %d %d\n", esc, killed, live_ok);
  _exit(0);
}

static void subreaper_cell(pk_mechanism m, pk_support level) {
  pkt_snapshot snap;
  pkt_snapshot_take(&snap);
  int pfd[2];
  assert_int_equal(pipe2(pfd, O_CLOEXEC), 0);
  pid_t child = fork();
  assert_true(child >= 0);
  if (child == 0) {
    close(pfd[0]);
    subreaper_main(m, pfd[1]);
  }
  close(pfd[1]);
  char buf[128] = "";
  ssize_t got = read(pfd[0], buf, sizeof(buf) - 1);
  close(pfd[0]);
  int st;
  assert_int_equal(waitpid(child, &st, 0), child);
  if (!WIFEXITED(st) || WEXITSTATUS(st) != 0)
    fail_msg("the subreaper process failed (status %d)", st);
  int esc = 0, killed = -1, live_ok = 0;
  assert_true(got > 0);
  assert_int_equal(sscanf(buf, "%d %d %d", &esc, &killed, &live_ok), 3);
  assert_int_equal(killed, level == PK_SUPPORT_FULL ? 1 : 0);
  assert_true(live_ok);
  assert_false(pkt_pid_alive(esc));
  pkt_snapshot_check(&snap);
}

/* What this host is, for the output: which configuration the matrix
 * ran in. */
static void describe_host(void) {
  pk_host_prediction hp;
  PKT_ASSERT_OK(pk_host_predict(&hp));
  const char *vm = getenv("PK_IN_VM") != NULL ? "in the CI VM, " : "";
  if (!hp.cgroup_v2) {
    print_message("matrix: %sunavailable cgroup_v2 (%s)\n", vm, hp.reason);
    return;
  }
  char path[4200], ctl[512] = "";
  snprintf(path, sizeof(path), "%s/cgroup.controllers", hp.cgroup_base);
  FILE *f = fopen(path, "r");
  if (f != NULL) {
    if (fgets(ctl, sizeof(ctl), f) == NULL)
      ctl[0] = '\0';
    fclose(f);
  }
  ctl[strcspn(ctl, "\n")] = '\0';
  snprintf(path, sizeof(path), "%s/cgroup.type", hp.cgroup_base);
  print_message(
      "matrix: %scgroup_v2 at %s (%s; controllers: %s)\n", vm, hp.cgroup_base,
      access(path, F_OK) != 0 ? "the hierarchy's root" : "below the root",
      ctl[0] ? ctl : "none");
}

static void every_cell_behaves(void **state) {
  (void)state;
  describe_host();
  pk_mechanism mechs[4];
  int n = pkt_mechanisms(mechs);
  pkt_fixture_copy fixture;
  pkt_fixture_copy_make(&fixture);
  for (int i = 0; i < n; i++) {
    pk_mechanism m = mechs[i];
    print_message("matrix: ran %s\n", pk_mechanism_name(m));
    for (int c = 0; c < PK_CAP_COUNT; c++) {
      pk_support level = pk_capability_support(m, (pk_capability)c, NULL);
      print_message("  %-22s %s\n", pk_capability_name((pk_capability)c),
                    pk_support_name(level));
      switch ((pk_capability)c) {
      case PK_CAP_CONTAIN_BEFORE_EXEC:
      case PK_CAP_PRIVILEGE_DROP:
        /* contained, also after dropping to 65534 */
        contain_before_exec(m, &fixture);
        break;
      case PK_CAP_KILL_TREE:
        tree_ends_by(m, SIGKILL);
        break;
      case PK_CAP_SIGNAL_TREE:
        tree_ends_by(m, SIGTERM); /* the nodes keep TERM's default action */
        break;
      case PK_CAP_ESCAPE_PROOF:
        if (m == PK_MECH_CGROUP_V2)
          cgroup_escape();
        else
          escapee_after_exit(m, level);
        break;
      case PK_CAP_GRACEFUL_SHUTDOWN:
        graceful_shutdown(m);
        break;
      case PK_CAP_ADOPT:
        adopt_cell(m, level);
        break;
      case PK_CAP_SUSPEND_RESUME:
        suspend_cell(m);
        break;
      case PK_CAP_MEMBERS:
        members_cell(m, level);
        break;
      case PK_CAP_GROUP_STATS:
      case PK_CAP_RUN_STATS:
        stats_cell(m, (pk_capability)c, level);
        break;
      case PK_CAP_MEMORY_MAX:
      case PK_CAP_MAX_PROCESSES:
      case PK_CAP_CPU_QUOTA:
        limit_cell(m, (pk_capability)c, level);
        break;
      case PK_CAP_INHERIT_ENV:
        inherit_env_cell(m);
        break;
      case PK_CAP_SETSID:
        setsid_cell(m);
        break;
      case PK_CAP_CREATE_NO_WINDOW:
        assert_int_equal(level, PK_SUPPORT_NOOP);
        no_window_cell(m);
        break;
      case PK_CAP_KILL_ON_PARENT_DEATH:
        parent_death_cell(m, level);
        break;
      case PK_CAP_OWNER_DEATH_TREE_KILL:
        owner_death_cell(m, level);
        break;
      case PK_CAP_SUBREAPER:
        subreaper_cell(m, level);
        break;
      default:
        fail_msg("capability %d has no behaviour check", c);
      }
    }
  }
  pkt_fixture_copy_remove(&fixture);
  /* job_object: every door refused here (its cells are checked by
   * test_win_caps, under wine) */
  print_message("matrix: unavailable job_object (Windows only; this is "
                "Linux)\n");
  assert_int_equal(pk_mechanism_available(PK_MECH_JOB_OBJECT), PK_EUNSUPPORTED);
  pk_group_opts o;
  pk_group_opts_init(&o);
  o.mechanism = PK_MECH_JOB_OBJECT;
  pk_group *g = NULL;
  assert_int_equal(pk_group_new(&o, &g, NULL), PK_EUNSUPPORTED);
  pk_real_opts ro = {.mechanism = PK_MECH_JOB_OBJECT};
  pk_runner *r = NULL;
  assert_int_equal(pk_real_runner_new(&ro, &r), PK_EUNSUPPORTED);
}

/* The prediction agrees with what pk finds by trying, and a process that
 * only predicts creates nothing: watched with inotify on the cgroup-v2
 * base, a fresh process running `test_caps --predict` makes no directory
 * (no probe, no per-owner cgroup, no sweep). */
static void prediction_is_side_effect_free(void **state) {
  char *self = *state;
  pk_host_prediction hp;
  PKT_ASSERT_OK(pk_host_predict(&hp));
  assert_int_equal(pk_host_predict(NULL), PK_EINVAL);
  assert_int_equal(hp.best, pk_mechanism_best());
  assert_int_equal(hp.cgroup_v2,
                   pk_mechanism_available(PK_MECH_CGROUP_V2) == 0);
  if (!hp.cgroup_v2) {
    assert_true(hp.reason[0] != '\0');
    print_message("no cgroup v2 here (%s): the inotify check is skipped\n",
                  hp.reason);
  }
  int in = -1;
  if (hp.cgroup_v2) {
    in = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
    assert_true(in >= 0);
    assert_true(inotify_add_watch(in, hp.cgroup_base, IN_CREATE) >= 0);
  }
  int out[2];
  assert_int_equal(pipe2(out, O_CLOEXEC), 0);
  pid_t pid = fork();
  assert_true(pid >= 0);
  if (pid == 0) {
    dup2(out[1], 1);
    execl(self, self, "--predict", (char *)NULL);
    _exit(127);
  }
  close(out[1]);
  char line[64] = "";
  ssize_t n = read(out[0], line, sizeof(line) - 1);
  close(out[0]);
  int status;
  assert_int_equal(waitpid(pid, &status, 0), pid);
  assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
  assert_true(n > 0);
  line[n] = '\0';
  char want[64];
  snprintf(want, sizeof(want), "%d %d %d\n", (int)hp.best, hp.cgroup_v2,
           hp.cgroup_kill);
  assert_string_equal(line, want);
  if (in < 0)
    return;
  /* Every directory made in the base while it ran; none may be its. */
  char probe[64], owner[64];
  snprintf(probe, sizeof(probe), "pk-probe-%d", (int)pid);
  snprintf(owner, sizeof(owner), "pk-%d-", (int)pid);
  char buf[8192] __attribute__((aligned(__alignof__(struct inotify_event))));
  ssize_t len;
  while ((len = read(in, buf, sizeof(buf))) > 0)
    for (char *p = buf; p < buf + len;) {
      const struct inotify_event *ev = (const struct inotify_event *)p;
      if (ev->len > 0 && (strcmp(ev->name, probe) == 0 ||
                          strncmp(ev->name, owner, strlen(owner)) == 0))
        fail_msg("predicting created %s/%s", hp.cgroup_base, ev->name);
      p += sizeof(*ev) + ev->len;
    }
  close(in);
}

int main(int argc, char **argv) {
  if (argc == 2 && strcmp(argv[1], "--predict") == 0)
    return predict_only();
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_prestate(prediction_is_side_effect_free, argv[0]),
      cmocka_unit_test(docs_match_the_data),
      cmocka_unit_test(every_cell_behaves),
  };
  return cmocka_run_group_tests(tests, pkt_setup, NULL);
}
