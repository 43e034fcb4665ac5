/* pk run: one contained command, output forwarded as it arrives.
 *
 * Exit status: the child's code; 128+N if killed by signal N; 124 on
 * timeout; 125 when pk itself fails; 126 found but not executable; 127
 * not found. */
#include "cli.h"
#include "cli_os.h"
#include "sink.h"

#include <pk/cassette.h>

#include <errno.h>
#include <math.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>

typedef struct run_state {
  pk_proc *proc;
  bool ended;    /* the run finished (on_exit) */
  bool paused;   /* the child's output is paused for a slow reader */
  bool closing;  /* handles are being closed: the loop may end */
  bool stopping; /* pk was signalled: a stalled reader is not waited for */
  int io_err;    /* errno of a failed write of pk's own output */
  int io_fd;     /* ... on this descriptor */
  sink out[3];   /* [1] stdout, [2] stderr */
  uv_signal_t sigs[4];
  size_t nsigs;
} run_state;

static int parse_seconds(const char *opt, const char *s, double *out) {
  char *end;
  errno = 0;
  double v = s != NULL ? strtod(s, &end) : 0;
  if (s == NULL || end == s || *end != '\0' || errno != 0 || !cli_finite(v) ||
      v < 0 || v > 1e9)
    return fail(PK_EINVAL, "%s needs a number of seconds >= 0, got '%s'", opt,
                s ? s : "");
  *out = v;
  return 0;
}

/* SIZE: bytes, or a number with K, M, G or T (powers of 1024; "MiB",
 * "M" and "MB" alike). */
static int parse_size(const char *opt, const char *s, int64_t *out) {
  char *end;
  errno = 0;
  double v = s != NULL ? strtod(s, &end) : 0;
  static const char units[] = "KMGT";
  double mul = 1;
  if (s != NULL && end != s && *end != '\0') {
    const char *u = strchr(units, *end);
    if (u != NULL && *end != '\0') {
      for (const char *k = units; k <= u; k++)
        mul *= 1024;
      end++;
      if (*end == 'i' && end[1] == 'B')
        end += 2;
      else if (*end == 'B')
        end++;
    }
  }
  if (s == NULL || end == s || *end != '\0' || errno != 0 || !cli_finite(v) ||
      v <= 0 || v * mul > 9e18)
    return fail(PK_EINVAL,
                "%s needs a size in bytes, or with K, M, G or T (e.g. 64M), "
                "got '%s'",
                opt, s ? s : "");
  *out = (int64_t)(v * mul);
  return 0;
}

/* Which options each command takes. */
static bool allowed(run_kind k, const char *o) {
  static const struct {
    const char *opt;
    unsigned kinds; /* 1 << run_kind */
  } table[] = {
      {"--timeout", 1u << RUN_PLAIN | 1u << RUN_RECORD},
      {"--grace", 1u << RUN_PLAIN | 1u << RUN_RECORD},
      {"--mechanism", 1u << RUN_PLAIN | 1u << RUN_RECORD},
      {"--report", 1u << RUN_PLAIN},
      {"--cassette", 1u << RUN_PLAIN},
      {"--mode", 1u << RUN_PLAIN},
      {"--redact", 1u << RUN_PLAIN | 1u << RUN_RECORD | 1u << RUN_REPLAY},
      {"--keep-paths", 1u << RUN_PLAIN | 1u << RUN_RECORD | 1u << RUN_REPLAY},
      {"--speed", 1u << RUN_PLAIN | 1u << RUN_REPLAY},
      {"--memory-max", 1u << RUN_PLAIN | 1u << RUN_RECORD},
      {"--max-processes", 1u << RUN_PLAIN | 1u << RUN_RECORD},
      {"--cpu-quota", 1u << RUN_PLAIN | 1u << RUN_RECORD},
      {"--subreaper", 1u << RUN_PLAIN | 1u << RUN_RECORD},
  };
  for (size_t i = 0; i < sizeof(table) / sizeof(table[0]); i++)
    if (strcmp(table[i].opt, o) == 0)
      return (table[i].kinds & 1u << k) != 0;
  return false;
}

static const char *kind_name(run_kind k) {
  return k == RUN_RECORD ? "record" : k == RUN_REPLAY ? "replay" : "run";
}

static int usage_error(run_kind k, const char *fmt, const char *arg) {
  fail(PK_EINVAL, fmt, arg);
  cli_synopsis(stderr, cli_find(kind_name(k)));
  return EXIT_PK_FAIL;
}

static int parse_run(int argc, char **argv, run_args *a) {
  int i = 0;
  while (i < argc) {
    const char *o = argv[i];
    const char *v = i + 1 < argc ? argv[i + 1] : NULL;
    if (strcmp(o, "--") == 0) {
      i++;
      break;
    }
    if (o[0] != '-')
      break; /* PROGRAM without "--" */
    if (!allowed(a->kind, o))
      return usage_error(a->kind, "unknown option '%s'", o);
    int step = 2;
    if (strcmp(o, "--timeout") == 0) {
      if (parse_seconds(o, v, &a->timeout_s))
        return EXIT_PK_FAIL;
    } else if (strcmp(o, "--grace") == 0) {
      if (parse_seconds(o, v, &a->grace_s))
        return EXIT_PK_FAIL;
      a->have_grace = true;
    } else if (strcmp(o, "--mechanism") == 0) {
      if (v == NULL || pk_mechanism_parse(v, &a->mech) != 0 ||
          a->mech == PK_MECH_JOB_OBJECT)
        return fail(PK_EINVAL,
                    "--mechanism must be auto, cgroup_v2 or process_group, "
                    "got '%s'",
                    v ? v : "");
    } else if (strcmp(o, "--report") == 0) {
      if (v == NULL || v[0] == '\0')
        return fail(PK_EINVAL, "--report needs a file name");
      a->report = v;
    } else if (strcmp(o, "--cassette") == 0) {
      if (v == NULL || v[0] == '\0')
        return fail(PK_EINVAL, "--cassette needs a file name");
      a->cassette = v;
    } else if (strcmp(o, "--mode") == 0) {
      pk_record_mode m;
      if (v == NULL || pk_record_mode_parse(v, &m) != 0 ||
          m == PK_RECORD_DEFAULT)
        return fail(PK_EINVAL,
                    "--mode must be none, once, new_episodes or all, got "
                    "'%s'",
                    v ? v : "");
      a->mode = (int)m;
    } else if (strcmp(o, "--redact") == 0) {
      const char *eq = v != NULL ? strchr(v, '=') : NULL;
      if (eq == NULL || eq == v || eq[1] == '\0')
        return fail(PK_EINVAL, "--redact needs NAME=VALUE, got '%s'",
                    v ? v : "");
      a->redact[a->nredact++] = (char *)v;
    } else if (strcmp(o, "--memory-max") == 0) {
      if (parse_size(o, v, &a->memory_max))
        return EXIT_PK_FAIL;
    } else if (strcmp(o, "--max-processes") == 0) {
      char *end = NULL;
      long long n = v != NULL ? strtoll(v, &end, 10) : 0;
      if (v == NULL || end == v || *end != '\0' || n < 1 || n > 4194304)
        return fail(PK_EINVAL,
                    "--max-processes needs a whole number from 1 to "
                    "4194304, got '%s'",
                    v ? v : "");
      a->max_processes = n;
    } else if (strcmp(o, "--cpu-quota") == 0) {
      char *end = NULL;
      a->cpu_quota = v != NULL ? strtod(v, &end) : -1;
      if (v == NULL || end == v || *end != '\0' || !cli_finite(a->cpu_quota) ||
          a->cpu_quota < 0.01 || a->cpu_quota > 4096)
        return fail(PK_EINVAL,
                    "--cpu-quota needs a number of CPU cores from 0.01 to "
                    "4096 (0.5: half a core), got '%s'",
                    v ? v : "");
    } else if (strcmp(o, "--subreaper") == 0) {
      a->subreaper = true;
      step = 1;
    } else if (strcmp(o, "--keep-paths") == 0) {
      a->keep_paths = true;
      step = 1;
    } else if (strcmp(o, "--speed") == 0) {
      char *end = NULL;
      a->speed = v != NULL ? strtod(v, &end) : -1;
      if (v == NULL || end == v || *end != '\0' || !cli_finite(a->speed) ||
          a->speed < 0 || a->speed > 1e6)
        return fail(PK_EINVAL,
                    "--speed needs a factor >= 0 (1: the recorded pace, 0: "
                    "at once), got '%s'",
                    v ? v : "");
    }
    i += step;
  }
  if (a->mode != 0 && a->cassette == NULL)
    return fail(PK_EINVAL, "--mode needs --cassette");
  if ((a->nredact > 0 || a->keep_paths || a->speed > 0) && a->cassette == NULL)
    return fail(PK_EINVAL, "--redact, --keep-paths and --speed need "
                           "--cassette");
  if (a->subreaper && a->mech == PK_MECH_CGROUP_V2)
    return fail(PK_EINVAL, "--subreaper is for the process_group mechanism "
                           "(cgroup_v2 contains escapees by itself)");
  if (a->subreaper)
    a->mech = PK_MECH_PROCESS_GROUP;
  if (i >= argc)
    return usage_error(a->kind, "no program given%s", "");
  a->argv = argv + i;
  a->argc = argc - i;
  return 0;
}

static int build_cmd(const run_args *a, pk_cmd **out) {
  pk_cmd *cmd;
  int rc = pk_cmd_new(a->argv[0], &cmd);
  if (rc == 0)
    rc =
        pk_cmd_args(cmd, (const char *const *)a->argv + 1, (size_t)a->argc - 1);
  if (rc == 0)
    rc = pk_cmd_set_stdin(cmd, PK_STDIN_INHERIT);
  /* Forwarded as it arrives; keep only a bounded tail in memory. */
  if (rc == 0)
    rc = pk_cmd_set_capture_limit(cmd, PK_LIMIT_TAIL, 64 * 1024);
  if (rc == 0 && a->timeout_s > 0)
    rc = pk_cmd_set_timeout(
        cmd, (int64_t)ceil(a->timeout_s * 1000.0),
        a->have_grace ? (int64_t)ceil(a->grace_s * 1000.0) : -1, 0);
  if (rc == 0)
    rc = pk_cmd_set_mechanism(cmd, a->mech);
  /* The terminal's job when pk is its foreground job (see pk.h), where
   * the host has job control. */
  if (rc == 0 && cli_os_job_control())
    rc = pk_cmd_set_foreground(cmd, true);
  if (rc != 0) {
    pk_cmd_free(cmd);
    return rc;
  }
  *out = cmd;
  return 0;
}

static void run_close_handles(run_state *st) {
  if (st->closing)
    return;
  st->closing = true;
  for (size_t i = 0; i < st->nsigs; i++)
    uv_close((uv_handle_t *)&st->sigs[i], NULL);
  for (int s = 1; s <= 2; s++)
    sink_close(&st->out[s]);
}

/* Pause while a reader is behind; resume when every queue is short. */
static void flow(run_state *st) {
  bool behind = !st->stopping && (sink_pending(&st->out[1]) > SINK_LOW ||
                                  sink_pending(&st->out[2]) > SINK_LOW);
  if (st->ended || behind == st->paused)
    return;
  int rc =
      behind ? pk_proc_pause_output(st->proc) : pk_proc_resume_output(st->proc);
  if (rc == 0)
    st->paused = behind;
}

/* A sink changed: its reader went away (the child's stream is closed
 * too, so the child sees the broken pipe itself), a write failed (pk
 * failed: the tree is torn down), a queue crossed a mark, or, once the
 * run has ended, the last queued bytes were written. */
static void on_sink(sink *k, void *data) {
  run_state *st = data;
  if (k->gone && !st->ended)
    pk_proc_close_output(st->proc, (pk_stream)k->fd);
  if (k->err != 0 && st->io_err == 0) {
    st->io_err = k->err;
    st->io_fd = k->fd;
    if (!st->ended)
      pk_proc_kill(st->proc, SIGKILL);
  }
  if (!st->ended)
    flow(st);
  else if (sink_pending(&st->out[1]) + sink_pending(&st->out[2]) == 0)
    run_close_handles(st);
}

static void on_output(pk_proc *p, pk_stream s, const char *buf, size_t len,
                      void *data) {
  (void)p;
  run_state *st = data;
  if (st->stopping && sink_pending(&st->out[s]) > SINK_HIGH)
    return; /* signalled with a stalled reader: not kept */
  sink_write(&st->out[s], buf, len);
}

/* A signal sent to pk (the terminal's own reach a foreground child
 * directly): forwarded once, then SIGCONT so a stopped tree acts on it. */
static void on_signal(uv_signal_t *h, int sig) {
  run_state *st = h->data;
  if (st->ended) { /* waiting for a reader: give up on it */
    run_close_handles(st);
    return;
  }
  /* Forwarded; from now on a stalled reader does not hold the run: the
   * output is read again (what the reader cannot take is dropped) so the
   * end of the child is seen. */
  st->stopping = true;
  flow(st);
  cli_os_forward(st->proc, sig);
}

/* The run ended. Output of a run that ended by itself is written to the
 * end (the loop keeps going until the reader took it, went away, or pk
 * is signalled); a run pk ended (timeout, kill, failure) does not wait
 * for a stalled reader. */
static void on_exit_cb(pk_proc *p, void *data) {
  run_state *st = data;
  st->ended = true;
  const pk_result *r = pk_proc_result(p);
  pk_outcome o = pk_result_outcome(r);
  bool by_itself = (o == PK_OUTCOME_EXITED || o == PK_OUTCOME_SIGNALLED) &&
                   pk_result_error(r) == 0 && st->io_err == 0 && !st->stopping;
  if (!by_itself) {
    sink_drop(&st->out[1]);
    sink_drop(&st->out[2]);
  }
  if (sink_pending(&st->out[1]) + sink_pending(&st->out[2]) == 0)
    run_close_handles(st);
}

static int exit_status(const pk_result *r) {
  int err = pk_result_error(r);
  switch (pk_result_outcome(r)) {
  case PK_OUTCOME_EXITED: /* an error with an exit is pk's own failure */
    return err != 0 ? EXIT_PK_FAIL : pk_result_code(r);
  case PK_OUTCOME_SIGNALLED:
    return err != 0 ? EXIT_PK_FAIL : 128 + pk_result_signal(r);
  case PK_OUTCOME_TIMED_OUT:
    return 124;
  default:
    break;
  }
  if (err == PK_ENOENT)
    return 127;
  if (err == PK_EACCES || err == PK_ENOEXEC)
    return 126;
  return EXIT_PK_FAIL;
}

static int drive(pk_runner *runner, const pk_cmd *cmd, run_state *st,
                 pk_result **out) {
  uv_loop_t loop;
  int rc = uv_loop_init(&loop);
  if (rc != 0)
    return rc;
  for (int s = 1; s <= 2; s++)
    sink_init(&st->out[s], &loop, s, on_sink, st);
  pk_start_opts opts = {
      .loop = &loop, .on_output = on_output, .on_exit = on_exit_cb, .data = st};
  const int *fwd = cli_os_forwarded(&st->nsigs);
  for (size_t i = 0; i < st->nsigs; i++) {
    uv_signal_init(&loop, &st->sigs[i]);
    st->sigs[i].data = st;
  }
  rc = pk_start(runner, cmd, &opts, &st->proc);
  if (rc == 0) {
    for (size_t i = 0; i < st->nsigs; i++)
      uv_signal_start(&st->sigs[i], on_signal, fwd[i]);
    uv_run(&loop, UV_RUN_DEFAULT);
    *out = pk_proc_take_result(st->proc);
    pk_proc_free(st->proc);
  }
  run_close_handles(st);
  uv_run(&loop, UV_RUN_DEFAULT);
  uv_loop_close(&loop);
  return rc;
}

/* With cgroup_v2 the whole tree dies with pk, however pk ends: pk
 * re-executes itself as the guardian (`pk __guardian`). */
static bool use_guardian(pk_mechanism m) {
  char self[4096];
  if ((m == PK_MECH_AUTO ? pk_mechanism_best() : m) != PK_MECH_CGROUP_V2 ||
      !cli_os_self(self, sizeof(self)))
    return false;
  return pk_guardian_use(self, "__guardian") == 0;
}

/* The runner: a real one, or with limits a group that has them (a cap
 * that cannot be enforced here fails before anything runs). */
static int new_runner(const run_args *a, pk_runner **out, pk_group **grp) {
  *grp = NULL;
  if (a->memory_max == 0 && a->max_processes == 0 && a->cpu_quota == 0) {
    pk_real_opts o = {.mechanism = a->mech};
    o.kill_on_owner_death = use_guardian(a->mech);
    return pk_real_runner_new(&o, out);
  }
  pk_group_opts o;
  pk_group_opts_init(&o);
  o.mechanism = a->mech;
  o.memory_max = a->memory_max;
  o.max_processes = a->max_processes;
  o.cpu_quota = a->cpu_quota;
  o.kill_on_parent_death = use_guardian(a->mech);
  char *msg = NULL;
  int rc = pk_group_new(&o, grp, &msg);
  if (rc != 0) {
    fail(rc, "%s", msg ? msg : pk_strerror(rc));
    pk_free(msg);
    return EXIT_PK_FAIL;
  }
  *out = pk_group_runner(*grp);
  return 0;
}

/* stdin for a cassette run: read whole unless it is a terminal (then
 * the child inherits it and the entry says so), so its digest is part
 * of the key exactly as in the library. */
static int read_stdin(pk_cmd *cmd, char **data) {
  *data = NULL;
  if (pk__fd_is_tty(0))
    return 0;
  size_t len = 0, cap = 0;
  char *buf = NULL;
  for (;;) {
    if (len == cap) {
      size_t ncap = cap ? 2 * cap : 65536;
      char *nb = realloc(buf, ncap);
      if (nb == NULL) {
        free(buf);
        return PK_ENOMEM;
      }
      buf = nb;
      cap = ncap;
    }
    int64_t n = pk__fd_read(0, buf + len, cap - len); /* EINTR retried */
    if (n < 0) {
      free(buf);
      fail(PK_EIO, "cannot read stdin: %s", uv_strerror((int)n));
      return PK_EIO;
    }
    if (n == 0)
      break;
    len += (size_t)n;
  }
  *data = buf;
  return pk_cmd_set_stdin_bytes(cmd, buf != NULL ? buf : "", len);
}

/* Open --cassette / CASSETTE for this command: record runs for real and
 * appends; replay never spawns; run follows the record mode. */
static int open_cassette(const run_args *a, pk_runner *inner,
                         pk_cassette **out) {
  pk_cassette_opts o;
  memset(&o, 0, sizeof(o));
  o.inner = inner;
  o.normalize_paths = !a->keep_paths;
  o.speed = a->speed;
  if (a->kind == RUN_RECORD) {
    o.mode = PK_RECORD_NEW_EPISODES;
    o.always_record = true;
  } else if (a->kind == RUN_REPLAY) {
    o.mode = PK_RECORD_NONE;
  } else {
    o.mode = (pk_record_mode)a->mode;
  }
  char err[4096];
  int rc = pk_cassette_open(a->cassette, &o, out, err, sizeof(err));
  if (rc != 0)
    return fail(rc, "%s", err);
  if (a->kind == RUN_REPLAY && pk_cassette_mode(*out) != PK_RECORD_NONE) {
    pk_cassette_close(*out, NULL, 0);
    *out = NULL;
    return fail(PK_EINVAL, "pk replay never records: unset PK_RECORD_MODE "
                           "(or set it to none)");
  }
  for (int i = 0; i < a->nredact; i++) {
    char *eq = strchr(a->redact[i], '=');
    *eq = '\0';
    rc = pk_cassette_redact(*out, a->redact[i], eq + 1);
    *eq = '=';
    if (rc != 0) {
      fail(rc, "--redact %s: %s", a->redact[i], pk_cassette_errmsg(*out));
      pk_cassette_close(*out, NULL, 0);
      *out = NULL;
      return EXIT_PK_FAIL;
    }
  }
  return 0;
}

int run_command(run_kind kind, const char *cassette, int argc, char **argv) {
  run_args a;
  memset(&a, 0, sizeof(a));
  a.kind = kind;
  a.cassette = cassette;
  a.redact = calloc((size_t)argc + 1, sizeof(char *));
  if (a.redact == NULL)
    return fail(PK_ENOMEM, "out of memory");
  int status = parse_run(argc, argv, &a);
  if (status != 0) {
    free(a.redact);
    return status;
  }
  if (a.mech != PK_MECH_AUTO && pk_mechanism_available(a.mech) != 0) {
    free(a.redact);
    return fail(PK_EUNSUPPORTED, "mechanism %s is not available here",
                pk_mechanism_name(a.mech));
  }
  report_file rep = {.fd = -1};
  if (a.report != NULL && report_open(&rep, a.report) != 0) {
    free(a.redact);
    return EXIT_PK_FAIL; /* before the spawn: the command never runs */
  }
  pk_runner *real = NULL;
  pk_cassette *cas = NULL;
  pk_cmd *cmd = NULL;
  pk_result *res = NULL;
  char *stdin_data = NULL;
  run_state st;
  memset(&st, 0, sizeof(st));
  /* pk writes the child's output to the terminal while the child is its
   * foreground job (tostop), and takes the terminal back from the
   * background: neither may stop pk. The child gets default handlers. */
  cli_os_run_begin();
  pk_group *grp = NULL;
  if (a.subreaper && (status = pk_subreaper_enable()) != 0) {
    status = fail(status, "cannot become a child subreaper");
    goto out;
  }
  int rc = kind == RUN_REPLAY ? 0 : new_runner(&a, &real, &grp);
  if (rc == EXIT_PK_FAIL) {
    status = EXIT_PK_FAIL;
    goto out;
  }
  if (rc == 0 && a.cassette != NULL && open_cassette(&a, real, &cas) != 0) {
    status = EXIT_PK_FAIL;
    goto out;
  }
  if (rc == 0)
    rc = build_cmd(&a, &cmd);
  if (rc == 0 && cas != NULL && (rc = read_stdin(cmd, &stdin_data)) != 0 &&
      rc == PK_EIO) {
    status = EXIT_PK_FAIL;
    goto out;
  }
  if (rc == 0)
    rc = drive(cas != NULL ? pk_cassette_runner(cas) : real, cmd, &st, &res);
  /* The run is over: what escaped it and came back to us goes too. */
  if (a.subreaper)
    pk_subreaper_kill_orphans(&a.subreaper_killed);
  if (rc == UV_EMFILE || rc == UV_ENFILE)
    rc = PK_ELIMIT; /* one name for running out of descriptors */
  if (rc == PK_ELIMIT) {
    char limit[128];
    cli_os_fd_limit(limit, sizeof(limit));
    status = fail(rc,
                  "cannot open the descriptors an event loop and a run need "
                  "(%s)",
                  limit);
  } else if (rc != 0) {
    status = fail(rc, "%s", pk_strerror(rc));
  } else if (st.io_err != 0) {
    status = fail(PK_EIO, "cannot write the child's %s: %s",
                  st.io_fd == 1 ? "stdout" : "stderr", strerror(st.io_err));
  } else {
    int err = pk_result_error(res);
    status = exit_status(res);
    if (err != 0)
      fprintf(stderr, "pk: %s: %s\n", pk_err_name(err), pk_result_errmsg(res));
    /* The library's hint (PK_RECORD_MODE=...) is refused by pk replay. */
    if (err == PK_ECASSETTE_MISS && kind == RUN_REPLAY)
      fprintf(stderr,
              "  (pk replay never records: record it with pk record %s -- "
              "PROGRAM [ARG...])\n",
              a.cassette);
    /* A replay that cannot give back every byte says so (the exit
     * status stays the recorded one). */
    if (kind == RUN_REPLAY && err == 0 && pk_result_output_incomplete(res))
      fprintf(stderr,
              "pk: warning: the replayed output is incomplete (the recording "
              "was cut at its size cap, or the run's output did not end "
              "within its drain)\n");
    if (a.report != NULL && report_commit(&rep, &a, res) != 0)
      status = EXIT_PK_FAIL;
  }
out:
  if (cas != NULL) {
    /* Saves what was recorded; a miss was reported by the run itself. */
    static char err[16384];
    int crc = pk_cassette_close(cas, err, sizeof(err));
    if (crc != 0 && !(crc == PK_ECASSETTE_MISS && res != NULL &&
                      pk_result_error(res) == PK_ECASSETTE_MISS))
      status = fail(crc, "%s", err);
  }
  report_discard(&rep);
  pk_result_free(res);
  pk_cmd_free(cmd);
  if (grp != NULL)
    pk_group_free(grp); /* its runner is the group's */
  else
    pk_runner_free(real);
  free(stdin_data);
  free(a.redact);
  return status;
}

int cmd_run(int argc, char **argv) {
  return run_command(RUN_PLAIN, NULL, argc, argv);
}
