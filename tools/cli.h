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

/* --report FILE (report.c). */
int write_report(const run_args *a, const pk_result *r);

#endif
