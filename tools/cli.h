/* Shared by the pk subcommands (one file each). */
#ifndef PK_CLI_H
#define PK_CLI_H

#include <pk/pk.h>

#include <stdio.h>

#define EXIT_PK_FAIL 125

/* "pk: <error_name>: <message>" on stderr; returns EXIT_PK_FAIL. */
int fail(int err, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void usage(FILE *f);

/* pk run's parsed options. */
typedef struct run_args {
  double timeout_s, grace_s;
  bool have_grace;
  pk_mechanism mech;
  const char *report;
  char **argv; /* PROGRAM ARG... */
  int argc;
} run_args;

int cmd_run(int argc, char **argv);
int cmd_caps(int argc, char **argv);

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
