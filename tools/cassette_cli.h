/* pk cassette: shared by its files. cassette.c dispatches and holds lint
 * and show, cassette_diff.c diff, cassette_edit.c rm and prune,
 * cassette_text.c the arguments, loading and the terminal-safe printing
 * they share. The cassette itself is cassettes/'s model (model.h). */
#ifndef PK_CASSETTE_CLI_H
#define PK_CASSETTE_CLI_H

#include "cli.h"
#include "model.h"

#include <stdio.h>

/* One subcommand's arguments: positionals and the options it takes. */
typedef struct cas_args {
  const char *pos[2];
  size_t npos;
  const char *entry, *match, *keep; /* option values (argv), or NULL */
} cas_args;

/* Parse `pk cassette SUB ARGS...`: exactly npos positionals and only the
 * options named in allowed (a space-separated subset of "entry match
 * keep"; each --NAME VALUE or --NAME=VALUE, at most once). On a usage
 * error prints "pk: invalid_argument: ..." and the synopsis and returns
 * EXIT_PK_FAIL; else 0. */
int cas_parse(const char *sub, int argc, char **argv, size_t npos,
              const char *allowed, cas_args *a);

/* pkc_load, or print "pk: ERROR_NAME: message" and return EXIT_PK_FAIL
 * (a file that does not parse is cassette_invalid here too). */
int cas_load(const char *path, pkc_file **f);

/* text (an entry number from 1, as show prints them) as an index into
 * f's entries; else prints invalid_argument naming path and returns
 * EXIT_PK_FAIL. */
int cas_entry_index(const char *text, const pkc_file *f, const char *path,
                    size_t *idx);

/* "program arg..." joined by single spaces, as written (heap, free()),
 * what --match GLOB is matched against; NULL when out of memory. */
char *cas_command_string(const pkc_entry *e);

/* Terminal-safe printing: no byte of a cassette reaches the terminal as
 * a control character. This is display text, not YAML. */
/* One shell word: as is when plain, '...' when it needs quoting, $'...'
 * with \n, \xNN escapes when it holds control characters or bytes that
 * are not UTF-8. Placeholders ({{NAME}}) stay as written. */
void cas_put_word(FILE *f, const char *s);
/* program and args as shell words, space-separated. */
void cas_put_command(FILE *f, const pkc_entry *e);
/* s with control characters (and bytes that are not UTF-8) escaped as
 * \n, \t, \r, \xNN, \u0085; no quotes. "-" for NULL. */
void cas_put_plain(FILE *f, const char *s);
/* Output bytes: "text" with the escapes above (and \" \\) when they are
 * UTF-8, else "hex 00 ff ..."; "" for none. */
void cas_put_bytes(FILE *f, const char *p, size_t len);
/* How the entry ended: "exit 3", "signal 9 (SIGKILL)", "timed out",
 * "error not_found". */
void cas_put_end(FILE *f, const pkc_entry *e);
/* The same with the details: the final signal of a timeout; errno, stage
 * and message of an error. */
void cas_put_end_full(FILE *f, const pkc_entry *e);
/* "12 B / 2 lines" (the lines only when there are bytes). */
void cas_put_size(FILE *f, uint64_t bytes, uint64_t lines);

/* The subcommands (argv after the subcommand's name). */
int cas_lint(int argc, char **argv);
int cas_show(int argc, char **argv);
int cas_diff(int argc, char **argv);
int cas_rm(int argc, char **argv);
int cas_prune(int argc, char **argv);

#endif
