/* pk cassette rm and prune: remove entries and rewrite the cassette as
 * the library saves one: under the lock on its directory, renumbered
 * ids, emitted by the writer, replaced atomically (file.h). Frozen
 * cassettes are refused. */
#include "cassette_cli.h"
#include "file.h"
#include "internal.h"

#include <ctype.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

/* Marks the entries to remove in remove[] (zeroed, one per entry);
 * prints its own message and returns EXIT_PK_FAIL on failure. */
typedef int (*select_fn)(const pkc_file *f, const char *path, void *ctx,
                         bool *remove);

/* Drop the marked entries, renumber the ids, write the file. */
static int rewrite(const char *path, pkc_file *f, const bool *remove) {
  size_t k = 0;
  for (size_t i = 0; i < f->nentries; i++)
    if (remove[i])
      pkc_entry_clear(&f->entries[i]);
    else
      f->entries[k++] = f->entries[i];
  f->nentries = k;
  char *data = NULL, msg[1024];
  size_t len = 0;
  int rc = pkc_renumber_ids(f);
  if (rc == 0 && (rc = pkc_emit(f, &data, &len)) != 0)
    rc = fail(rc, "%s: cannot render the cassette (not changed)", path);
  else if (rc != 0)
    rc = fail(rc, "out of memory");
  if (rc == 0 && (rc = pkc_replace_file(path, data, len, msg, sizeof(msg))))
    rc = fail(rc, "%s", msg);
  pk__free(data);
  return rc;
}

/* Lock, load, select, rewrite. none: the message when nothing is
 * selected (exit 1, the file untouched); NULL when that is success. */
static int edit(const char *path, select_fn sel, void *ctx, const char *none) {
  char msg[1024];
  int lock = -1, rc = pkc_lock_dir(path, &lock, msg, sizeof(msg));
  uv_fs_t req;
  int st = rc != 0 ? uv_fs_stat(NULL, &req, path, NULL) : 0;
  if (rc != 0)
    uv_fs_req_cleanup(&req);
  if (rc != 0 && (st == UV_ENOENT || st == UV_ENOTDIR))
    return fail(PK_ECASSETTE_NOT_FOUND, "%s: no such cassette file", path);
  if (rc != 0)
    return fail(rc, "%s", msg);
  pkc_file *f = NULL;
  bool *remove = NULL;
  rc = cas_load(path, &f);
  if (rc == 0 && f->frozen)
    rc = fail(PK_ECASSETTE_FROZEN,
              "%s is frozen (a hand-made cassette): not changed; edit it by "
              "hand, or remove \"frozen: true\" first",
              path);
  if (rc == 0 && (remove = calloc(f->nentries + 1, sizeof(bool))) == NULL)
    rc = fail(PK_ENOMEM, "out of memory");
  if (rc == 0)
    rc = sel(f, path, ctx, remove);
  size_t n = 0, total = f != NULL ? f->nentries : 0;
  for (size_t i = 0; rc == 0 && i < total; i++)
    n += remove[i];
  if (rc == 0 && n == 0 && none != NULL) {
    fprintf(stderr, "pk: %s: %s; nothing removed\n", path, none);
    rc = 1;
  }
  if (rc == 0 && n > 0)
    rc = rewrite(path, f, remove);
  if (rc == 0)
    printf("%s: removed %zu of %zu entr%s, %zu left\n", path, n, total,
           total == 1 ? "y" : "ies", total - n);
  pkc_unlock(lock);
  free(remove);
  pkc_file_free(f);
  return rc != 0 ? rc : cli_flush();
}

/* --------------------------------------------------------------- rm */

typedef struct rm_ctx {
  const char *entry, *glob;
} rm_ctx;

static int select_rm(const pkc_file *f, const char *path, void *ctx,
                     bool *remove) {
  const rm_ctx *r = ctx;
  if (r->entry != NULL) {
    size_t idx;
    int rc = cas_entry_index(r->entry, f, path, &idx);
    if (rc == 0)
      remove[idx] = true;
    return rc;
  }
  for (size_t i = 0; i < f->nentries; i++) {
    char *s = cas_command_string(&f->entries[i]);
    if (s == NULL)
      return fail(PK_ENOMEM, "out of memory");
    remove[i] = pk__glob_match(r->glob, s);
    free(s);
  }
  return 0;
}

int cas_rm(int argc, char **argv) {
  cas_args a;
  int rc = cas_parse("rm", argc, argv, 1, "entry match", &a);
  if (rc != 0)
    return rc;
  if ((a.entry == NULL) == (a.match == NULL)) {
    fail(PK_EINVAL, "pk cassette rm: give one of --entry N and --match GLOB");
    cli_synopsis(stderr, cli_find("cassette"));
    return EXIT_PK_FAIL;
  }
  rm_ctx r = {a.entry, a.match};
  char none[512];
  snprintf(none, sizeof(none), "no entry's \"program arg...\" matches '%s'",
           a.match ? a.match : "");
  return edit(a.pos[0], select_rm, &r, none);
}

/* ------------------------------------------------------------ prune */

/* One number of the keep list and where it was. */
typedef struct keep_num {
  size_t n, line;
} keep_num;

typedef struct keep_list {
  const char *name; /* FILE, or "stdin" for "-" */
  keep_num *v;
  size_t len;
} keep_list;

/* One line: blank, a comment, or an entry number (0 when not one). */
static int keep_line(char *s, size_t *n) {
  char *hash = strchr(s, '#');
  if (hash != NULL)
    *hash = '\0';
  while (isspace((unsigned char)*s))
    s++;
  size_t len = strlen(s);
  while (len > 0 && isspace((unsigned char)s[len - 1]))
    s[--len] = '\0';
  *n = 0;
  if (len == 0)
    return 0; /* nothing to keep on this line */
  if (strspn(s, "0123456789") != len)
    return -1;
  errno = 0;
  unsigned long long v = strtoull(s, NULL, 10);
  if (errno != 0 || v == 0 || v > SIZE_MAX / 2)
    return -1;
  *n = (size_t)v;
  return 0;
}

/* getline(3), which Windows' C runtime lacks: the next line of in with
 * its '\n' into *line (grown as needed); its length, or -1 at EOF (or
 * out of memory, with errno ENOMEM). */
static long read_line(char **line, size_t *cap, FILE *in) {
  size_t n = 0;
  int c;
  while ((c = fgetc(in)) != EOF) {
    if (n + 2 > *cap) {
      size_t ncap = *cap ? 2 * *cap : 128;
      char *nl = realloc(*line, ncap);
      if (nl == NULL) {
        errno = ENOMEM;
        return -1;
      }
      *line = nl;
      *cap = ncap;
    }
    (*line)[n++] = (char)c;
    if (c == '\n')
      break;
  }
  if (n == 0)
    return -1;
  (*line)[n] = '\0';
  return (long)n;
}

static int keep_read(const char *file, keep_list *k) {
  k->name = strcmp(file, "-") == 0 ? "stdin" : file;
  FILE *in = strcmp(file, "-") == 0 ? stdin : fopen(file, "r");
  if (in == NULL)
    return fail(errno == ENOENT ? PK_ENOENT : PK_EIO, "--keep %s: %s", file,
                strerror(errno));
  char *line = NULL;
  size_t cap = 0, lineno = 0, cap_v = 0;
  int rc = 0;
  while (rc == 0 && read_line(&line, &cap, in) >= 0) {
    size_t n;
    lineno++;
    if (keep_line(line, &n) != 0)
      rc = fail(PK_EINVAL,
                "%s:%zu: '%s' is not an entry number (one number from 1 per "
                "line, as pk cassette show lists them; blank lines and # "
                "comments are ignored)",
                k->name, lineno, line);
    else if (n > 0 && k->len == cap_v) {
      cap_v = cap_v ? 2 * cap_v : 16;
      keep_num *v = realloc(k->v, cap_v * sizeof(keep_num));
      rc = v ? 0 : fail(PK_ENOMEM, "out of memory");
      k->v = v ? v : k->v;
    }
    if (rc == 0 && n > 0)
      k->v[k->len++] = (keep_num){n, lineno};
  }
  if (rc == 0 && ferror(in))
    rc = fail(PK_EIO, "--keep %s: cannot read: %s", file, strerror(errno));
  free(line);
  if (in != stdin)
    fclose(in);
  return rc;
}

static int select_prune(const pkc_file *f, const char *path, void *ctx,
                        bool *remove) {
  const keep_list *k = ctx;
  for (size_t i = 0; i < f->nentries; i++)
    remove[i] = true;
  for (size_t i = 0; i < k->len; i++) {
    if (k->v[i].n > f->nentries)
      return fail(PK_EINVAL,
                  "%s:%zu: %s has no entry %zu (it has %zu); nothing removed",
                  k->name, k->v[i].line, path, k->v[i].n, f->nentries);
    remove[k->v[i].n - 1] = false;
  }
  return 0;
}

int cas_prune(int argc, char **argv) {
  cas_args a;
  int rc = cas_parse("prune", argc, argv, 1, "keep", &a);
  if (rc == 0 && a.keep == NULL) {
    fail(PK_EINVAL, "pk cassette prune: --keep FILE is required");
    cli_synopsis(stderr, cli_find("cassette"));
    rc = EXIT_PK_FAIL;
  }
  keep_list k = {0};
  if (rc == 0)
    rc = keep_read(a.keep, &k); /* before the lock: stdin may be slow */
  if (rc == 0)
    rc = edit(a.pos[0], select_prune, &k, NULL);
  free(k.v);
  return rc;
}
