/* pk cassette SUBCOMMAND: work on cassette files without running
 * anything. The dispatch, lint and show; diff is cassette_diff.c, rm and
 * prune cassette_edit.c (cassette_cli.h). Entries are numbered from 1 in
 * file order everywhere. */
#include "cassette_cli.h"

#include <string.h>

/* ------------------------------------------------------------- lint */

/* The reader checks every rule of the format (and its limits) and stops
 * at the first problem: a file that does not parse is exit 1, not a pk
 * failure; a file that cannot be read is. */
int cas_lint(int argc, char **argv) {
  cas_args a;
  int rc = cas_parse("lint", argc, argv, 1, "", &a);
  if (rc != 0)
    return rc;
  pkc_file *f = NULL;
  pkc_error err;
  rc = pkc_load(a.pos[0], &f, &err);
  if (rc == PK_ECASSETTE_INVALID) {
    fprintf(stderr, "pk: %s: %s\n", pk_err_name(rc), err.msg);
    return 1;
  }
  if (rc != 0)
    return fail(rc, "%s", err.msg);
  printf("%s: ok, %zu entr%s (format version %d)%s\n", a.pos[0], f->nentries,
         f->nentries == 1 ? "y" : "ies", f->version,
         f->frozen ? ", frozen" : "");
  pkc_file_free(f);
  return cli_flush();
}

/* ------------------------------------------------------------- show */

/* "N  ID  command  -> end  out .., err ..  [flags]  recorded_at" */
static void show_line(size_t n, const pkc_entry *e) {
  printf("%zu  ", n);
  cas_put_plain(stdout, e->id);
  fputs("  ", stdout);
  cas_put_command(stdout, e);
  fputs("  -> ", stdout);
  cas_put_end(stdout, e);
  fputs("  out ", stdout);
  cas_put_size(stdout, e->total_bytes[PK_STDOUT], e->total_lines[PK_STDOUT]);
  fputs(", err ", stdout);
  cas_put_size(stdout, e->total_bytes[PK_STDERR], e->total_lines[PK_STDERR]);
  const char *sep = "  ";
  if (e->truncated) {
    printf("%s[truncated]", sep);
    sep = " ";
  }
  if (e->incomplete)
    printf("%s[incomplete]", sep);
  if (e->recorded_at != NULL) {
    fputs("  ", stdout);
    cas_put_plain(stdout, e->recorded_at);
  }
  fputc('\n', stdout);
}

static void show_list(const char *label, char **v, size_t n) {
  if (n == 0)
    return;
  printf("%s:", label);
  for (size_t i = 0; i < n; i++) {
    fputc(' ', stdout);
    cas_put_plain(stdout, v[i]);
  }
  fputc('\n', stdout);
}

static void show_stdin(const pkc_entry *e) {
  fputs("stdin: ", stdout);
  if (e->stdin_kind == PKC_STDIN_TERMINAL)
    fputs("a terminal (inherited, never read)\n", stdout);
  else if (e->stdin_kind == PKC_STDIN_INHERIT)
    fputs("inherited (not read)\n", stdout);
  else
    printf("%llu B, sha256 %s\n", (unsigned long long)e->stdin_bytes,
           e->stdin_sha256);
}

static void show_ms(int64_t us) {
  printf("%lld.%03lld ms", (long long)(us / 1000),
         (long long)((us < 0 ? -us : us) % 1000));
}

static void show_entry(size_t n, size_t total, const pkc_entry *e) {
  printf("entry %zu of %zu\nid: ", n, total);
  cas_put_plain(stdout, e->id);
  fputs("\nrecorded_at: ", stdout);
  cas_put_plain(stdout, e->recorded_at);
  fputs("\ncommand: ", stdout);
  cas_put_command(stdout, e);
  fputs("\ncwd: ", stdout);
  cas_put_plain(stdout, e->cwd);
  fputc('\n', stdout);
  show_list("env", e->env_names, e->nenv_names);
  if (e->env_digest != NULL)
    printf("env_digest: %s\n", e->env_digest);
  show_stdin(e);
  fputs("end: ", stdout);
  cas_put_end_full(stdout, e);
  fputc('\n', stdout);
  fputs("duration: ", stdout);
  show_ms(e->duration_us);
  fputs("\nstdout: ", stdout);
  cas_put_size(stdout, e->total_bytes[PK_STDOUT], e->total_lines[PK_STDOUT]);
  fputs("\nstderr: ", stdout);
  cas_put_size(stdout, e->total_bytes[PK_STDERR], e->total_lines[PK_STDERR]);
  fputc('\n', stdout);
  if (e->truncated)
    fputs("truncated: the recording cap cut the events short\n", stdout);
  if (e->incomplete)
    fputs("incomplete: the run's output was incomplete\n", stdout);
  show_list("placeholders", e->placeholders, e->nplaceholders);
  printf("events: %zu\n", e->nevents);
  static const char *const streams[] = {"?", "stdout", "stderr", "stdin"};
  for (size_t i = 0; i < e->nevents; i++) {
    const pkc_event *ev = &e->events[i];
    fputs("  ", stdout);
    show_ms(ev->t_us);
    printf("  %s  ", streams[(unsigned)ev->kind <= 3 ? ev->kind : 0]);
    cas_put_bytes(stdout, ev->data, ev->len);
    fputc('\n', stdout);
  }
}

int cas_show(int argc, char **argv) {
  cas_args a;
  int rc = cas_parse("show", argc, argv, 1, "entry", &a);
  pkc_file *f = NULL;
  if (rc == 0)
    rc = cas_load(a.pos[0], &f);
  size_t idx = 0;
  if (rc == 0 && a.entry != NULL)
    rc = cas_entry_index(a.entry, f, a.pos[0], &idx);
  if (rc == 0 && a.entry != NULL)
    show_entry(idx + 1, f->nentries, &f->entries[idx]);
  for (size_t i = 0; rc == 0 && a.entry == NULL && i < f->nentries; i++)
    show_line(i + 1, &f->entries[i]);
  pkc_file_free(f);
  return rc != 0 ? rc : cli_flush();
}

/* -------------------------------------------------------- dispatch */

static const struct {
  const char *name;
  int (*fn)(int argc, char **argv);
} subcommands[] = {
    {"lint", cas_lint}, {"show", cas_show},   {"diff", cas_diff},
    {"rm", cas_rm},     {"prune", cas_prune},
};

int cmd_cassette(int argc, char **argv) {
  const cli_command *self = cli_find("cassette");
  if (argc < 1) {
    fputs("pk: pk cassette needs a subcommand\n", stderr);
    cli_synopsis(stderr, self);
    return EXIT_PK_USAGE;
  }
  for (size_t i = 0; i < sizeof(subcommands) / sizeof(subcommands[0]); i++)
    if (strcmp(argv[0], subcommands[i].name) == 0)
      return subcommands[i].fn(argc - 1, argv + 1);
  fprintf(stderr, "pk: unknown cassette subcommand '%s'\n", argv[0]);
  cli_synopsis(stderr, self);
  return EXIT_PK_USAGE;
}
