/* pk: the command-line face of processkit.
 *
 *   pk run [--timeout SEC] [--grace SEC] [--mechanism M] [--report FILE]
 *          -- PROGRAM [ARG...]
 *
 * Exit status: the child's code; 128+N if killed by signal N; 124 on
 * timeout; 125 when pk itself fails; 126 found but not executable; 127
 * not found. */
#include <pk/pk.h>

#include <errno.h>
#include <math.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define EXIT_PK_FAIL 125

typedef struct run_args {
  double timeout_s, grace_s;
  bool have_grace;
  pk_mechanism mech;
  const char *report;
  char **argv; /* PROGRAM ARG... */
  int argc;
} run_args;

typedef struct run_state {
  bool out_closed[3];
  pk_proc *proc;
  uv_signal_t sigs[3];
} run_state;

static void usage(FILE *f) {
  fputs("usage: pk run [--timeout SEC] [--grace SEC]\n"
        "              [--mechanism auto|cgroup_v2|process_group]\n"
        "              [--report FILE] -- PROGRAM [ARG...]\n"
        "       pk caps [--markdown]\n",
        f);
}

static int fail(int err, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
static int fail(int err, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  fprintf(stderr, "pk: %s: ", pk_err_name(err));
  vfprintf(stderr, fmt, ap);
  fputc('\n', stderr);
  va_end(ap);
  return EXIT_PK_FAIL;
}

static int parse_seconds(const char *opt, const char *s, double *out) {
  char *end;
  errno = 0;
  double v = s != NULL ? strtod(s, &end) : 0;
  if (s == NULL || end == s || *end != '\0' || errno != 0 || !isfinite(v) ||
      v < 0 || v > 1e9)
    return fail(PK_EINVAL, "%s needs a number of seconds >= 0, got '%s'", opt,
                s ? s : "");
  *out = v;
  return 0;
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
    } else {
      fail(PK_EINVAL, "unknown option '%s'", o);
      usage(stderr);
      return EXIT_PK_FAIL;
    }
    i += 2;
  }
  if (i >= argc) {
    fail(PK_EINVAL, "no program given");
    usage(stderr);
    return EXIT_PK_FAIL;
  }
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
  if (rc != 0) {
    pk_cmd_free(cmd);
    return rc;
  }
  *out = cmd;
  return 0;
}

static void on_output(pk_proc *p, pk_stream s, const char *buf, size_t len,
                      void *data) {
  (void)p;
  run_state *st = data;
  while (len > 0 && !st->out_closed[s]) {
    ssize_t n = write((int)s, buf, len);
    if (n < 0 && errno == EINTR)
      continue;
    if (n < 0) {
      st->out_closed[s] = true; /* reader gone: keep counting, stop writing */
      break;
    }
    buf += n;
    len -= (size_t)n;
  }
}

static void on_signal(uv_signal_t *h, int sig) {
  run_state *st = h->data;
  pk_proc_kill(st->proc, sig);
}

static void on_exit_cb(pk_proc *p, void *data) {
  (void)p;
  run_state *st = data;
  for (int i = 0; i < 3; i++)
    uv_close((uv_handle_t *)&st->sigs[i], NULL);
}

/* YAML double-quoted scalar. */
static void yaml_str(FILE *f, const char *s) {
  fputc('"', f);
  for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
    if (*p == '"' || *p == '\\')
      fprintf(f, "\\%c", *p);
    else if (*p < 0x20 || *p == 0x7f)
      fprintf(f, "\\x%02x", *p);
    else
      fputc(*p, f);
  }
  fputc('"', f);
}

static int write_report(const run_args *a, const pk_result *r) {
  FILE *f = fopen(a->report, "we");
  if (f == NULL)
    return fail(PK_EIO, "cannot write report %s: %s", a->report,
                strerror(errno));
  fputs("program: ", f);
  yaml_str(f, a->argv[0]);
  fputs("\nargs: [", f);
  for (int i = 1; i < a->argc; i++) {
    fputs(i > 1 ? ", " : "", f);
    yaml_str(f, a->argv[i]);
  }
  pk_outcome o = pk_result_outcome(r);
  fprintf(f, "]\noutcome: %s\n",
          o == PK_OUTCOME_NONE ? "null" : pk_outcome_name(o));
  if (pk_result_code(r) >= 0)
    fprintf(f, "code: %d\n", pk_result_code(r));
  else
    fputs("code: null\n", f);
  fprintf(f, "signal: %d\n", pk_result_signal(r));
  fprintf(f, "duration_ms: %lld\n", (long long)pk_result_duration_ms(r));
  fprintf(f, "mechanism: %s\n", pk_mechanism_name(pk_result_mechanism(r)));
  fprintf(f, "stdout_bytes: %llu\n",
          (unsigned long long)pk_result_total_bytes(r, PK_STDOUT));
  fprintf(f, "stderr_bytes: %llu\n",
          (unsigned long long)pk_result_total_bytes(r, PK_STDERR));
  fprintf(f, "output_incomplete: %s\n",
          pk_result_output_incomplete(r) ? "true" : "false");
  if (pk_result_error(r) != 0)
    fprintf(f, "error: %s\n", pk_err_name(pk_result_error(r)));
  if (fclose(f) != 0)
    return fail(PK_EIO, "cannot write report %s: %s", a->report,
                strerror(errno));
  return 0;
}

static int exit_status(const pk_result *r) {
  int err = pk_result_error(r);
  switch (pk_result_outcome(r)) {
  case PK_OUTCOME_EXITED:
    return pk_result_code(r);
  case PK_OUTCOME_SIGNALLED:
    return 128 + pk_result_signal(r);
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

static int drive(pk_runner *runner, const pk_cmd *cmd, pk_result **out) {
  uv_loop_t loop;
  run_state st;
  memset(&st, 0, sizeof(st));
  int rc = uv_loop_init(&loop);
  if (rc != 0)
    return rc;
  pk_start_opts opts = {.loop = &loop,
                        .on_output = on_output,
                        .on_exit = on_exit_cb,
                        .data = &st};
  rc = pk_start(runner, cmd, &opts, &st.proc);
  if (rc == 0) {
    static const int fwd[3] = {SIGINT, SIGTERM, SIGHUP};
    for (int i = 0; i < 3; i++) {
      uv_signal_init(&loop, &st.sigs[i]);
      st.sigs[i].data = &st;
      uv_signal_start(&st.sigs[i], on_signal, fwd[i]);
    }
    uv_run(&loop, UV_RUN_DEFAULT);
    *out = pk_proc_take_result(st.proc);
    pk_proc_free(st.proc);
    uv_run(&loop, UV_RUN_DEFAULT);
  }
  uv_loop_close(&loop);
  return rc;
}

static int cmd_run(int argc, char **argv) {
  run_args a = {0};
  int status = parse_run(argc, argv, &a);
  if (status != 0)
    return status;
  if (a.mech != PK_MECH_AUTO && pk_mechanism_available(a.mech) != 0)
    return fail(PK_EUNSUPPORTED, "mechanism %s is not available here",
                pk_mechanism_name(a.mech));
  pk_runner *runner = NULL;
  pk_cmd *cmd = NULL;
  pk_result *res = NULL;
  int rc = pk_real_runner_new(NULL, &runner);
  if (rc == 0)
    rc = build_cmd(&a, &cmd);
  if (rc == 0)
    rc = drive(runner, cmd, &res);
  if (rc != 0) {
    status = fail(rc, "%s", pk_strerror(rc));
  } else {
    int err = pk_result_error(res);
    status = exit_status(res);
    if (err != 0)
      fprintf(stderr, "pk: %s: %s\n", pk_err_name(err), pk_result_errmsg(res));
    if (a.report != NULL && write_report(&a, res) != 0)
      status = EXIT_PK_FAIL;
  }
  pk_result_free(res);
  pk_cmd_free(cmd);
  pk_runner_free(runner);
  return status;
}

static const pk_mechanism all_mechs[] = {
    PK_MECH_CGROUP_V2, PK_MECH_PROCESS_GROUP, PK_MECH_JOB_OBJECT};
#define NMECHS (sizeof(all_mechs) / sizeof(all_mechs[0]))

/* The whole matrix as the Markdown page docs/platform-support.md. */
static void caps_markdown(void) {
  puts("<!-- Generated by `pk caps --markdown` from lib/src/caps.c; "
       "tests/test_caps.c fails if they drift. Do not edit. -->\n"
       "# Platform support\n\n"
       "What each containment mechanism guarantees. `pk_mechanism_best()` "
       "picks cgroup_v2 where a writable cgroup-v2 hierarchy exists, else "
       "process_group; `pk caps` shows this host.\n");
  printf("| capability |");
  for (size_t m = 0; m < NMECHS; m++)
    printf(" %s |", pk_mechanism_name(all_mechs[m]));
  printf("\n|---|");
  for (size_t m = 0; m < NMECHS; m++)
    printf("---|");
  putchar('\n');
  for (int c = 0; c < PK_CAP_COUNT; c++) {
    printf("| %s |", pk_capability_name((pk_capability)c));
    for (size_t m = 0; m < NMECHS; m++) {
      const char *note;
      pk_support s =
          pk_capability_support(all_mechs[m], (pk_capability)c, &note);
      printf(" **%s**: %s |", pk_support_name(s), note);
    }
    putchar('\n');
  }
}

/* This host: which mechanisms work and what they give. */
static void caps_host(void) {
  printf("best: %s\n", pk_mechanism_name(pk_mechanism_best()));
  for (size_t m = 0; m < NMECHS; m++) {
    bool ok = pk_mechanism_available(all_mechs[m]) == 0;
    printf("%s: %s\n", pk_mechanism_name(all_mechs[m]),
           ok ? "available" : "unavailable");
    for (int c = 0; ok && c < PK_CAP_COUNT; c++) {
      const char *note;
      pk_support s =
          pk_capability_support(all_mechs[m], (pk_capability)c, &note);
      printf("  %-20s %-8s %s\n", pk_capability_name((pk_capability)c),
             pk_support_name(s), note);
    }
  }
}

static int cmd_caps(int argc, char **argv) {
  if (argc == 1 && strcmp(argv[0], "--markdown") == 0)
    caps_markdown();
  else if (argc == 0)
    caps_host();
  else
    return fail(PK_EINVAL, "pk caps takes only --markdown, got '%s'", argv[0]);
  return fflush(stdout) == 0 ? 0 : EXIT_PK_FAIL;
}

int main(int argc, char **argv) {
  signal(SIGPIPE, SIG_IGN);
  if (argc >= 2 && strcmp(argv[1], "run") == 0)
    return cmd_run(argc - 2, argv + 2);
  if (argc >= 2 && strcmp(argv[1], "caps") == 0)
    return cmd_caps(argc - 2, argv + 2);
  if (argc >= 2 &&
      (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0)) {
    usage(stdout);
    return 0;
  }
  fail(PK_EINVAL, "unknown command '%s'", argc >= 2 ? argv[1] : "");
  usage(stderr);
  return EXIT_PK_FAIL;
}
