/* pk cassette diff A B: compare two cassettes entry by entry, ignoring
 * timing (recorded_at, durations, event times). Entries are paired by id
 * (entries without an id by position among those without one); the
 * order of entries of different commands is not compared, as replay does
 * not depend on it. Exit 0 when the same, 1 when not. */
#include "cassette_cli.h"

#include <stdlib.h>
#include <string.h>

static const pkc_file *sort_file; /* qsort has no context argument */

static int by_id(const void *x, const void *y) {
  const pkc_entry *e = sort_file->entries;
  return strcmp(e[*(const size_t *)x].id, e[*(const size_t *)y].id);
}

/* pair[i]: the entry of b paired with a's entry i, or SIZE_MAX; used[j]:
 * b's entry j is paired. */
static int pair_entries(const pkc_file *a, const pkc_file *b, size_t *pair,
                        bool *used) {
  size_t *order = malloc((b->nentries + 1) * sizeof(size_t));
  if (order == NULL)
    return fail(PK_ENOMEM, "out of memory");
  size_t nid = 0, next_noid = 0;
  for (size_t j = 0; j < b->nentries; j++)
    if (b->entries[j].id != NULL)
      order[nid++] = j;
  sort_file = b;
  qsort(order, nid, sizeof(size_t), by_id);
  for (size_t i = 0; i < a->nentries; i++) {
    const char *id = a->entries[i].id;
    pair[i] = SIZE_MAX;
    if (id == NULL) { /* the next entry of b without an id */
      for (; next_noid < b->nentries && b->entries[next_noid].id != NULL;
           next_noid++)
        ;
      if (next_noid < b->nentries)
        pair[i] = next_noid++;
      continue;
    }
    size_t lo = 0, hi = nid; /* the first of b's ids >= id */
    while (lo < hi) {
      size_t mid = lo + (hi - lo) / 2;
      if (strcmp(b->entries[order[mid]].id, id) < 0)
        lo = mid + 1;
      else
        hi = mid;
    }
    for (; lo < nid && strcmp(b->entries[order[lo]].id, id) == 0; lo++)
      if (!used[order[lo]]) {
        pair[i] = order[lo];
        break;
      }
    if (pair[i] != SIZE_MAX)
      used[pair[i]] = true;
  }
  for (size_t i = 0; i < a->nentries; i++)
    if (a->entries[i].id == NULL && pair[i] != SIZE_MAX)
      used[pair[i]] = true;
  free(order);
  return 0;
}

/* ------------------------------------------------------- the fields */

static bool str_eq(const char *x, const char *y) {
  return x == y || (x != NULL && y != NULL && strcmp(x, y) == 0);
}

static void field(const char *name) { printf("    %s: ", name); }

static void word_or_none(const char *s) {
  if (s == NULL)
    fputs("(none)", stdout);
  else
    cas_put_word(stdout, s);
}

static void diff_str(const char *name, const char *x, const char *y) {
  if (str_eq(x, y))
    return;
  field(name);
  word_or_none(x);
  fputs(" -> ", stdout);
  word_or_none(y);
  fputc('\n', stdout);
}

static void diff_args(const pkc_entry *x, const pkc_entry *y) {
  if (x->nargs != y->nargs)
    printf("    args: %zu -> %zu arguments\n", x->nargs, y->nargs);
  size_t n = x->nargs > y->nargs ? x->nargs : y->nargs;
  for (size_t i = 0; i < n; i++) {
    char name[32];
    snprintf(name, sizeof(name), "args[%zu]", i);
    const char *s = i < x->nargs ? x->args[i] : NULL;
    const char *t = i < y->nargs ? y->args[i] : NULL;
    diff_str(name, s, t);
  }
}

static void put_strv(char **v, size_t n) {
  if (n == 0)
    fputs("(none)", stdout);
  for (size_t i = 0; i < n; i++) {
    if (i > 0)
      fputc(' ', stdout);
    cas_put_plain(stdout, v[i]);
  }
}

static void diff_strv(const char *name, char **v, size_t nv, char **w,
                      size_t nw) {
  bool same = nv == nw;
  for (size_t i = 0; same && i < nv; i++)
    same = strcmp(v[i], w[i]) == 0;
  if (same)
    return;
  field(name);
  put_strv(v, nv);
  fputs(" -> ", stdout);
  put_strv(w, nw);
  fputc('\n', stdout);
}

static void put_stdin(const pkc_entry *e) {
  if (e->stdin_kind == PKC_STDIN_TERMINAL)
    fputs("terminal", stdout);
  else if (e->stdin_kind == PKC_STDIN_INHERIT)
    fputs("inherited", stdout);
  else
    printf("%llu B sha256 %.12s", (unsigned long long)e->stdin_bytes,
           e->stdin_sha256);
}

static void diff_stdin(const pkc_entry *x, const pkc_entry *y) {
  if (x->stdin_kind == y->stdin_kind &&
      (x->stdin_kind != PKC_STDIN_BYTES ||
       (x->stdin_bytes == y->stdin_bytes &&
        strcmp(x->stdin_sha256, y->stdin_sha256) == 0)))
    return;
  field("stdin");
  put_stdin(x);
  fputs(" -> ", stdout);
  put_stdin(y);
  fputc('\n', stdout);
}

static void diff_end(const pkc_entry *x, const pkc_entry *y) {
  bool same = x->end == y->end;
  if (same && x->end == PKC_END_EXIT)
    same = x->code == y->code;
  else if (same && x->end != PKC_END_ERROR)
    same = x->signal == y->signal;
  else if (same)
    same = x->error == y->error && x->os_errno == y->os_errno &&
           str_eq(x->stage, y->stage) && str_eq(x->errmsg, y->errmsg);
  if (same)
    return;
  field("exit");
  cas_put_end_full(stdout, x);
  fputs(" -> ", stdout);
  cas_put_end_full(stdout, y);
  fputc('\n', stdout);
}

/* The bytes of one stream, all events together (heap; NULL when out of
 * memory). */
static char *stream(const pkc_entry *e, pkc_event_kind kind, size_t *len) {
  *len = 0;
  for (size_t i = 0; i < e->nevents; i++)
    if (e->events[i].kind == kind)
      *len += e->events[i].len;
  char *p = malloc(*len + 1), *q = p;
  for (size_t i = 0; p != NULL && i < e->nevents; i++)
    if (e->events[i].kind == kind) {
      memcpy(q, e->events[i].data, e->events[i].len);
      q += e->events[i].len;
    }
  return p;
}

/* Returns true when the bytes differ (or cannot be compared). */
static bool diff_stream(const char *name, const pkc_entry *x,
                        const pkc_entry *y, pkc_event_kind kind) {
  size_t nx, ny, at = 0;
  char *bx = stream(x, kind, &nx), *by = stream(y, kind, &ny);
  if (bx != NULL && by != NULL)
    for (; at < nx && at < ny && bx[at] == by[at]; at++)
      ;
  int s = kind == PKC_EV_STDOUT ? PK_STDOUT : PK_STDERR;
  bool same = bx != NULL && by != NULL && nx == ny && at == nx &&
              x->total_bytes[s] == y->total_bytes[s] &&
              x->total_lines[s] == y->total_lines[s];
  if (!same) {
    field(name);
    cas_put_size(stdout, x->total_bytes[s], x->total_lines[s]);
    fputs(" -> ", stdout);
    cas_put_size(stdout, y->total_bytes[s], y->total_lines[s]);
    if (bx == NULL || by == NULL)
      fputs(" (out of memory comparing the bytes)", stdout);
    else if (nx != ny || at != nx)
      printf(", recorded bytes differ from byte %zu", at);
    fputc('\n', stdout);
  }
  free(bx);
  free(by);
  return !same;
}

/* The events as pkc_entry_equal compares them, ignoring their times. */
static bool events_same(const pkc_entry *x, const pkc_entry *y) {
  if (x->nevents != y->nevents)
    return false;
  for (size_t i = 0; i < x->nevents; i++) {
    const pkc_event *v = &x->events[i], *w = &y->events[i];
    if (v->kind != w->kind || v->len != w->len ||
        (v->len != 0 && memcmp(v->data, w->data, v->len) != 0))
      return false;
  }
  return true;
}

static void diff_flag(const char *name, bool x, bool y) {
  if (x != y)
    printf("    %s: %s -> %s\n", name, x ? "yes" : "no", y ? "yes" : "no");
}

static void diff_entry(size_t i, size_t j, const pkc_entry *x,
                       const pkc_entry *y) {
  printf("changed: entry %zu", i + 1);
  if (i != j)
    printf(" (B: %zu)", j + 1);
  fputs("  ", stdout);
  cas_put_plain(stdout, x->id);
  fputs("  ", stdout);
  cas_put_command(stdout, x);
  fputc('\n', stdout);
  diff_str("id", x->id, y->id);
  diff_str("program", x->program, y->program);
  diff_args(x, y);
  diff_str("cwd", x->cwd, y->cwd);
  diff_strv("env", x->env_names, x->nenv_names, y->env_names, y->nenv_names);
  diff_str("env_digest", x->env_digest, y->env_digest);
  diff_stdin(x, y);
  diff_end(x, y);
  bool out = diff_stream("stdout", x, y, PKC_EV_STDOUT);
  bool err = diff_stream("stderr", x, y, PKC_EV_STDERR);
  diff_flag("truncated", x->truncated, y->truncated);
  diff_flag("incomplete", x->incomplete, y->incomplete);
  diff_strv("placeholders", x->placeholders, x->nplaceholders, y->placeholders,
            y->nplaceholders);
  if (!out && !err && !events_same(x, y))
    printf("    events: same bytes, split, interleaved or fed differently "
           "(%zu -> %zu events)\n",
           x->nevents, y->nevents);
}

static void only_in(const char *which, size_t i, const pkc_entry *e) {
  printf("only in %s: entry %zu  ", which, i + 1);
  cas_put_plain(stdout, e->id);
  fputs("  ", stdout);
  cas_put_command(stdout, e);
  fputc('\n', stdout);
}

/* Prints the differences; returns whether there were any. */
static bool diff_files(const pkc_file *a, const pkc_file *b, const size_t *pair,
                       const bool *used) {
  bool differ = false;
  if (a->frozen != b->frozen) {
    printf("frozen: %s -> %s\n", a->frozen ? "yes" : "no",
           b->frozen ? "yes" : "no");
    differ = true;
  }
  for (size_t i = 0; i < a->nentries; i++) {
    if (pair[i] == SIZE_MAX) {
      only_in("A", i, &a->entries[i]);
      differ = true;
    } else if (!pkc_entry_equal(&a->entries[i], &b->entries[pair[i]], true)) {
      diff_entry(i, pair[i], &a->entries[i], &b->entries[pair[i]]);
      differ = true;
    }
  }
  for (size_t j = 0; j < b->nentries; j++)
    if (!used[j]) {
      only_in("B", j, &b->entries[j]);
      differ = true;
    }
  return differ;
}

int cas_diff(int argc, char **argv) {
  cas_args args;
  int rc = cas_parse("diff", argc, argv, 2, "", &args);
  pkc_file *a = NULL, *b = NULL;
  if (rc == 0)
    rc = cas_load(args.pos[0], &a);
  if (rc == 0)
    rc = cas_load(args.pos[1], &b);
  size_t *pair = NULL;
  bool *used = NULL;
  if (rc == 0) {
    pair = malloc((a->nentries + 1) * sizeof(size_t));
    used = calloc(b->nentries + 1, sizeof(bool));
    rc = pair && used ? pair_entries(a, b, pair, used)
                      : fail(PK_ENOMEM, "out of memory");
  }
  bool differ = rc == 0 && diff_files(a, b, pair, used);
  free(pair);
  free(used);
  pkc_file_free(a);
  pkc_file_free(b);
  if (rc == 0)
    rc = cli_flush();
  return rc != 0 ? rc : differ ? 1 : 0;
}
