/* Shared by the pk subcommands (one file each). */
#ifndef PK_CLI_H
#define PK_CLI_H

#include <pk/pk.h>

#include <stdio.h>

#define EXIT_PK_FAIL 125
#define EXIT_PK_USAGE 2 /* no command, or an unknown one */

/* "pk: <error_name>: <message>" on stderr; returns EXIT_PK_FAIL. */
int fail(int err, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

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

/* pk run's parsed options. */
typedef struct run_args {
  double timeout_s, grace_s;
  bool have_grace;
  pk_mechanism mech;
  const char *report;
  char **argv; /* PROGRAM ARG... */
  int argc;
} run_args;

/* The subcommands, one file each. */
int cmd_run(int argc, char **argv);
int cmd_caps(int argc, char **argv);
int cmd_help(int argc, char **argv);
int cmd_record(int argc, char **argv);   /* not built yet */
int cmd_replay(int argc, char **argv);   /* not built yet */
int cmd_cassette(int argc, char **argv); /* not built yet */

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
