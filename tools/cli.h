/* Shared by the pk subcommands (one file each). */
#ifndef PK_CLI_H
#define PK_CLI_H

#include <pk/pk.h>

#include "internal.h" /* PK__PRINTF */

#include <stdbool.h>
#include <stdio.h>

/* isfinite without the C runtime's macro (mingw-w64's converts to
 * float): false for NaN and the infinities. */
static inline bool cli_finite(double v) { return v - v == 0.0; }

#define EXIT_PK_FAIL 125
#define EXIT_PK_USAGE 2 /* no command, or an unknown one */

/* "pk: <error_name>: <message>" on stderr; returns EXIT_PK_FAIL. */
int fail(int err, const char *fmt, ...) PK__PRINTF(2, 3);

/* One subcommand: main.c's table, expanded from usage.def (the one source
 * of the usage text, shared with the man page's generator). */
typedef struct cli_command {
  const char *name;
  int (*fn)(int argc, char **argv); /* argv: the arguments after NAME */
  const char *summary, *synopsis, *details;
} cli_command;

/* The command called name, or NULL (main.c). */
const cli_command *cli_find(const char *name);

/* help.c: the texts, all from usage.def. */
void cli_overview(FILE *f);                       /* every command */
void cli_usage(FILE *f, const cli_command *c);    /* synopsis + details */
void cli_synopsis(FILE *f, const cli_command *c); /* "usage: ..." lines */
/* "pk: unknown command 'name'" and a hint on stderr; EXIT_PK_USAGE. */
int cli_unknown(const char *name);
/* Flushes stdout: 0, or EXIT_PK_FAIL with a message if it failed. */
int cli_flush(void);

/* Which command parsed the options: they share one run (run.c). */
typedef enum run_kind {
  RUN_PLAIN = 0, /* pk run [--cassette C] */
  RUN_RECORD,    /* pk record C */
  RUN_REPLAY,    /* pk replay C */
} run_kind;

/* pk run's (and record's, replay's) parsed options. */
typedef struct run_args {
  run_kind kind;
  double timeout_s, grace_s;
  bool have_grace;
  pk_mechanism mech;
  const char *report;
  const char *cassette; /* --cassette, or record's / replay's CASSETTE */
  int mode;             /* --mode: a pk_record_mode, 0 when not given */
  char **redact;        /* NAME=VALUE (borrowed from argv) */
  int nredact;
  bool keep_paths;
  double speed; /* replay pace (0: at once) */
  /* resource limits (0: none): the run goes into a pk_group with them */
  int64_t memory_max, max_processes;
  double cpu_quota;
  bool subreaper;       /* --subreaper: kill orphans that escaped the run */
  int subreaper_killed; /* how many it killed (for the report) */
  char **argv;          /* PROGRAM ARG... */
  int argc;
} run_args;

/* run.c: parse the options of `kind` (argv after the command name, and
 * for record/replay after CASSETTE) and run. Returns the exit status. */
int run_command(run_kind kind, const char *cassette, int argc, char **argv);
/* record.c: `pk record|replay CASSETTE ...`: checks CASSETTE, then
 * run_command. */
int cassette_command(run_kind kind, int argc, char **argv);

/* The subcommands, one file each. */
int cmd_run(int argc, char **argv);
int cmd_caps(int argc, char **argv);
int cmd_help(int argc, char **argv);
int cmd_record(int argc, char **argv);
int cmd_replay(int argc, char **argv);
int cmd_cassette(int argc, char **argv);

/* --report FILE (report.c): a temporary file next to FILE, made before
 * the run and renamed onto FILE after it. Each call prints its own
 * "pk: ..." message and returns EXIT_PK_FAIL on failure. */
typedef struct report_file {
  const char *path; /* FILE, borrowed (argv) */
  char *tmp;        /* the temporary file while it exists, else NULL */
  int fd;           /* open on tmp until written, else -1 */
} report_file;

/* Before the spawn: refuses a symlink or non-regular FILE, creates the
 * temporary file (O_EXCL, 0644 less the umask). */
int report_open(report_file *rf, const char *path);
/* After the run: writes, fsyncs and renames into place. On failure the
 * temporary file is removed and FILE is left as it was. */
int report_commit(report_file *rf, const run_args *a, const pk_result *r);
/* Removes the temporary file if it still exists; a no-op after
 * report_commit or on {.fd = -1}. */
void report_discard(report_file *rf);

#endif
