/* pk help, pk --help, pk COMMAND --help and the usage shown with errors:
 * every text comes from usage.def, as the man page's does (gen_man.c). */
#include "cli.h"

#include <errno.h>
#include <string.h>

#define PK_PROGRAM(summary, synopsis, description)                             \
  static const char program_synopsis[] = synopsis;                             \
  static const char program_description[] = description;
#include "usage.def"

/* The lines of synopsis, the first after "usage: ", the others under it. */
static void print_synopsis(FILE *f, const char *synopsis) {
  const char *prefix = "usage: ";
  for (const char *p = synopsis; *p != '\0';) {
    size_t n = strcspn(p, "\n");
    fprintf(f, "%s%.*s\n", prefix, (int)n, p);
    prefix = "       ";
    p += n + (p[n] == '\n');
  }
}

void cli_synopsis(FILE *f, const cli_command *c) {
  print_synopsis(f, c->synopsis);
}

void cli_usage(FILE *f, const cli_command *c) {
  print_synopsis(f, c->synopsis);
  fprintf(f, "\n%s", c->details);
}

#define PK_COMMAND(name, function, summary, synopsis, details) {#name, summary},
static const struct {
  const char *name, *summary;
} listed[] = {
#include "usage.def"
};

void cli_overview(FILE *f) {
  print_synopsis(f, program_synopsis);
  fprintf(f, "\n%s\ncommands:\n", program_description);
  for (size_t i = 0; i < sizeof(listed) / sizeof(listed[0]); i++)
    fprintf(f, "  %-10s %s\n", listed[i].name, listed[i].summary);
  fputs("\nRun 'pk help COMMAND' for a command's usage and options.\n", f);
}

int cli_unknown(const char *name) {
  fprintf(stderr,
          "pk: unknown command '%s'\n"
          "Run 'pk help' for the list of commands.\n",
          name);
  return EXIT_PK_USAGE;
}

int cli_flush(void) {
  if (fflush(stdout) == 0)
    return 0;
  return fail(PK_EIO, "cannot write to stdout: %s", strerror(errno));
}

int cmd_help(int argc, char **argv) {
  if (argc == 0) {
    cli_overview(stdout);
    return cli_flush();
  }
  const cli_command *c = cli_find(argv[0]);
  if (c == NULL)
    return cli_unknown(argv[0]);
  if (argc > 1) {
    fprintf(stderr, "pk: help takes one COMMAND, got '%s' too\n", argv[1]);
    cli_synopsis(stderr, cli_find("help"));
    return EXIT_PK_USAGE;
  }
  cli_usage(stdout, c);
  return cli_flush();
}
