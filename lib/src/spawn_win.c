/* Windows: the command line and the environment block CreateProcessW
 * takes, built from pk's UTF-8 argv and envp. Pure: no process, no handle,
 * no global state. */
#include "internal.h"
#include "win.h"

#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <wchar.h>

/* ---- command line ----
 *
 * Windows hands a child one string; the child's C runtime (MSVCRT/UCRT's
 * argv parser, and CommandLineToArgvW, which agree on everything this
 * encoder produces) splits it again:
 *
 *   - Arguments are separated by spaces and tabs outside quotes.
 *   - '"' opens or closes a quoted section; spaces and tabs inside one
 *     belong to the argument.
 *   - 2n backslashes followed by '"' give n backslashes, and the '"'
 *     opens or closes a quote; 2n+1 backslashes followed by '"' give n
 *     backslashes and a literal '"'. Backslashes not followed by '"' are
 *     literal.
 *   - argv[0] (the program) is split by simpler rules: up to the next '"'
 *     when it starts with one, else up to the first space or tab, with no
 *     escapes at all.
 *
 * So the encoder:
 *
 *   - passes an argument as-is unless it is empty or contains a space,
 *     tab, newline, vertical tab or '"' (newline and vertical tab split
 *     nothing today, but some parsers treat them as blanks);
 *   - otherwise wraps it in quotes, doubles each run of backslashes that
 *     precedes a '"' or the closing quote, and writes '"' as \";
 *   - writes argv[0] quoted when it holds a blank, never escaped, and
 *     refuses a program name that is empty or contains '"' (no file name
 *     can, and argv[0]'s rules have no way to write one).
 *
 * The encoder never emits "" inside a quoted section (the one place the
 * runtimes' versions disagree: pre-2008 msvcrt, ucrt and shell32 each
 * read it differently). */

#define BLANKS " \t\n\v"

static int append_backslashes(pk__buf *b, size_t n) {
  int rc = pk__buf_reserve(b, n);
  if (rc == 0) {
    memset(b->data + b->len, '\\', n);
    b->len += n;
    b->data[b->len] = '\0';
  }
  return rc;
}

static int append_quoted(pk__buf *b, const char *s) {
  int rc = pk__buf_append(b, "\"", 1);
  for (const char *p = s; rc == 0;) {
    size_t plain = strcspn(p, "\\\"");
    if ((rc = pk__buf_append(b, p, plain)) != 0)
      break;
    p += plain;
    size_t bs = strspn(p, "\\");
    p += bs;
    /* Before a quote (literal or closing) each backslash is doubled. */
    bool quote_next = *p == '"' || *p == '\0';
    if ((rc = append_backslashes(b, quote_next ? 2 * bs : bs)) != 0)
      break;
    if (*p == '\0')
      return pk__buf_append(b, "\"", 1);
    if (*p == '"') {
      rc = pk__buf_append(b, "\\\"", 2);
      p++;
    }
  }
  return rc;
}

static int append_arg(pk__buf *b, const char *s) {
  if (*s != '\0' && strpbrk(s, BLANKS "\"") == NULL)
    return pk__buf_append(b, s, strlen(s));
  return append_quoted(b, s);
}

static int append_program(pk__buf *b, const char *s) {
  if (*s == '\0' || strchr(s, '"') != NULL)
    return PK_EINVAL;
  bool quote = strpbrk(s, BLANKS) != NULL;
  int rc = quote ? pk__buf_append(b, "\"", 1) : 0;
  if (rc == 0)
    rc = pk__buf_append(b, s, strlen(s));
  if (rc == 0 && quote)
    rc = pk__buf_append(b, "\"", 1);
  return rc;
}

/* s (n bytes and a NUL) in UTF-16, NUL included; PK_EINVAL when s is not
 * UTF-8 or takes more than max units. */
static int widen(const char *s, size_t n, size_t max, wchar_t **out) {
  if (n >= INT_MAX)
    return PK_EINVAL;
  int units = MultiByteToWideChar(CP_UTF8, MB_ERR_INVALID_CHARS, s, (int)n + 1,
                                  NULL, 0);
  if (units <= 0 || (size_t)units > max)
    return PK_EINVAL;
  wchar_t *w = pk__malloc((size_t)units * sizeof(wchar_t));
  if (w == NULL)
    return PK_ENOMEM;
  MultiByteToWideChar(CP_UTF8, MB_ERR_INVALID_CHARS, s, (int)n + 1, w, units);
  *out = w;
  return 0;
}

int pk__win_cmdline(const char *const *argv, size_t argc, wchar_t **out) {
  if (out == NULL)
    return PK_EINVAL;
  *out = NULL;
  if (argv == NULL || argc == 0)
    return PK_EINVAL;
  pk__buf b = {0};
  int rc = 0;
  for (size_t i = 0; i < argc && rc == 0; i++) {
    if (argv[i] == NULL)
      rc = PK_EINVAL;
    else if (i == 0)
      rc = append_program(&b, argv[0]);
    else if ((rc = pk__buf_append(&b, " ", 1)) == 0)
      rc = append_arg(&b, argv[i]);
    /* A UTF-16 unit takes at most 3 UTF-8 bytes: stop once it cannot
     * fit, however long the rest is. */
    if (rc == 0 && b.len > 3 * (PK__WIN_CMDLINE_MAX - 1))
      rc = PK_EINVAL;
  }
  if (rc == 0)
    rc = widen(b.data, b.len, PK__WIN_CMDLINE_MAX, out);
  pk__buf_release(&b);
  return rc;
}

/* ---- environment block ---- */

typedef struct env_entry {
  const wchar_t *s;       /* "NAME=value" in the staging buffer */
  size_t name_len, units; /* UTF-16 units, without the NUL */
  size_t index;           /* in envp: of two equal names the later wins */
} env_entry;

/* Where the name of "NAME=value" ends: the first '=' after a leading one
 * ("=C:=C:\dir" names C:'s working directory). NULL when there is none or
 * the name would be empty. */
static const char *env_name_end(const char *s) {
  const char *start = s + (s[0] == '=');
  const char *eq = strchr(start, '=');
  return eq != NULL && eq > start ? eq : NULL;
}

static int name_cmp(const env_entry *a, const env_entry *b) {
  /* Windows' own order: ordinal, after upper-casing both. */
  int r = CompareStringOrdinal(a->s, (int)a->name_len, b->s, (int)b->name_len,
                               TRUE);
  return r == 0 ? 0 : r - CSTR_EQUAL;
}

static int entry_cmp(const void *pa, const void *pb) {
  const env_entry *a = pa, *b = pb;
  int r = name_cmp(a, b);
  if (r != 0)
    return r;
  return a->index < b->index ? -1 : a->index > b->index;
}

/* Validate envp, convert it into one staging buffer and list its entries;
 * *total: the units of all entries with their NULs. */
static int env_stage(char *const *envp, size_t n, wchar_t **stage,
                     env_entry **ents, size_t *total) {
  size_t sum = 0;
  for (size_t i = 0; i < n; i++) {
    if (env_name_end(envp[i]) == NULL || strlen(envp[i]) >= INT_MAX)
      return PK_EINVAL;
    int u = MultiByteToWideChar(CP_UTF8, MB_ERR_INVALID_CHARS, envp[i], -1,
                                NULL, 0);
    if (u <= 0)
      return PK_EINVAL;
    sum += (size_t)u;
  }
  *stage = pk__malloc(sum * sizeof(wchar_t));
  *ents = pk__malloc(n * sizeof(env_entry));
  if (*stage == NULL || *ents == NULL)
    return PK_ENOMEM;
  wchar_t *w = *stage;
  for (size_t i = 0; i < n; i++) {
    int u = MultiByteToWideChar(CP_UTF8, MB_ERR_INVALID_CHARS, envp[i], -1, w,
                                (int)(sum - (size_t)(w - *stage)));
    const wchar_t *eq = wcschr(w + (w[0] == L'='), L'=');
    (*ents)[i] = (env_entry){.s = w,
                             .name_len = (size_t)(eq - w),
                             .units = (size_t)u - 1,
                             .index = i};
    w += u;
  }
  *total = sum;
  return 0;
}

int pk__win_envblock(char *const *envp, wchar_t **out) {
  if (out == NULL)
    return PK_EINVAL;
  *out = NULL;
  if (envp == NULL)
    return PK_EINVAL;
  size_t n = 0;
  while (envp[n] != NULL)
    n++;
  wchar_t *stage = NULL;
  env_entry *ents = NULL;
  size_t total = 0;
  int rc = env_stage(envp, n, &stage, &ents, &total);
  wchar_t *block = NULL;
  if (rc == 0) /* the entries kept need at most what all of them take */
    block = pk__malloc((total + 2) * sizeof(wchar_t));
  if (rc == 0 && block == NULL)
    rc = PK_ENOMEM;
  if (rc == 0) {
    qsort(ents, n, sizeof(*ents), entry_cmp);
    wchar_t *w = block;
    for (size_t i = 0; i < n; i++) {
      if (i + 1 < n && name_cmp(&ents[i], &ents[i + 1]) == 0)
        continue; /* a later entry of the same name follows */
      memcpy(w, ents[i].s, (ents[i].units + 1) * sizeof(wchar_t));
      w += ents[i].units + 1;
    }
    if (w == block) /* no entry: the block is one empty string */
      *w++ = L'\0';
    *w = L'\0';
    *out = block;
  }
  pk__free(stage);
  pk__free(ents);
  return rc;
}
