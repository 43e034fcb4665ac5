/* pk__win_cmdline and pk__win_envblock: what the Windows spawner hands
 * CreateProcessW. Command lines are checked against shell32's parser,
 * CommandLineToArgvW (the rules the C runtime's argv parser follows too):
 * a table of awkward arguments, then every string of up to 5 symbols over
 * {a, space, tab, ", \}, then random argument lists, must all come back
 * exactly. Environment blocks are checked against tables of expected
 * blocks. Both fail each allocation in turn and must say PK_ENOMEM and
 * leak nothing. */
#include "harness.h"

#include "internal.h"
#include "win.h"

#include <ctype.h>
#include <shellapi.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <wchar.h>

/* ---------------------------------------------------------- helpers */

/* s with control characters and quotes escaped, for failure messages. */
static const char *show(const char *s) {
  static char buf[4][512];
  static int slot;
  char *o = buf[slot++ % 4], *end = o + sizeof(buf[0]) - 8;
  char *p = o;
  *p++ = '\'';
  for (; *s != '\0' && p < end; s++) {
    if (*s == '\t')
      p += sprintf(p, "\\t");
    else if (*s == '\n')
      p += sprintf(p, "\\n");
    else if (*s == '\v')
      p += sprintf(p, "\\v");
    else
      *p++ = *s;
  }
  *p++ = '\'';
  *p = '\0';
  return o;
}

/* A wide string in UTF-8 (static buffer), for failure messages. */
static const char *narrow(const wchar_t *w) {
  static char buf[2][4096];
  static int slot;
  char *o = buf[slot++ % 2];
  if (WideCharToMultiByte(CP_UTF8, 0, w, -1, o, (int)sizeof(buf[0]), NULL,
                          NULL) <= 0)
    snprintf(o, sizeof(buf[0]), "(unprintable)");
  return o;
}

/* Build argv's command line and parse it back with CommandLineToArgvW:
 * fail unless every argument after argv[0] comes back exactly, and
 * argv[0] too (it has its own rules, and the tests' programs follow
 * them). */
static void round_trip(const char *const *argv, size_t argc) {
  wchar_t *line = NULL;
  int rc = pk__win_cmdline(argv, argc, &line);
  if (rc != 0)
    fail_msg("pk__win_cmdline(%s...) -> %s", show(argv[argc - 1]),
             pk_err_name(rc));
  int n = 0;
  wchar_t **back = CommandLineToArgvW(line, &n);
  assert_non_null(back);
  if ((size_t)n != argc)
    fail_msg("[%s]: %d arguments back, want %zu", narrow(line), n, argc);
  for (size_t i = 0; i < argc; i++) {
    wchar_t *want = pk__wide(argv[i]);
    assert_non_null(want);
    if (wcscmp(want, back[i]) != 0)
      fail_msg("[%s]: argument %zu is [%s], want %s", narrow(line), i,
               narrow(back[i]), show(argv[i]));
    pk__free(want);
  }
  LocalFree(back);
  pk__free(line);
}

/* The command line for argv, in UTF-8 (static buffer); fails the test
 * when it is refused. */
static const char *cmdline_of(const char *const *argv, size_t argc) {
  static char buf[1024];
  wchar_t *line = NULL;
  int rc = pk__win_cmdline(argv, argc, &line);
  if (rc != 0)
    fail_msg("pk__win_cmdline -> %s", pk_err_name(rc));
  snprintf(buf, sizeof(buf), "%s", narrow(line));
  pk__free(line);
  return buf;
}

/* A small deterministic generator (the same lists on every run). */
static unsigned next(unsigned *seed) {
  *seed = *seed * 1103515245u + 12345u;
  return (*seed >> 16) & 0x7fff;
}

/* -------------------------------------------------- command line: table */

static const char *const awkward[] = {
    "",
    "plain",
    "a b",
    " ",
    "  leading and trailing  ",
    "tab\there",
    "\t",
    "new\nline",
    "vertical\vtab",
    "\"",
    "\"\"",
    "say \"hi\"",
    "a\"b",
    "\\",
    "\\\\",
    "a\\",
    "a\\\\",
    "a b\\",
    "a b\\\\",
    "\\\"",
    "\\\\\"",
    "a\\\"b",
    "a\\\\\"b",
    "\"a b\"",
    "\\\\server\\share",
    "\\\\server\\share dir\\",
    "C:\\Program Files\\",
    "C:\\path\\to\\file.txt",
    "é 日本",
    "日本語",
    "😀 emoji",
    "--opt=\"x y\"",
    "%PATH%",
    "^&|<>()",
    "'single'",
};

static void table(void **state) {
  (void)state;
  size_t n = sizeof(awkward) / sizeof(awkward[0]);
  for (size_t i = 0; i < n; i++) {
    const char *argv[] = {"prog", awkward[i]};
    round_trip(argv, 2);
  }
  /* All of them at once, in one command line. */
  const char *all[sizeof(awkward) / sizeof(awkward[0]) + 1] = {"prog"};
  for (size_t i = 0; i < n; i++)
    all[i + 1] = awkward[i];
  round_trip(all, n + 1);
  const char *prog_only[] = {"prog"};
  round_trip(prog_only, 1);
}

/* The encoding itself, where more than one would parse back the same:
 * quotes only when needed, backslashes doubled only before a quote. */
static void exact_encoding(void **state) {
  (void)state;
  static const struct {
    const char *arg, *want;
  } cases[] = {
      {"plain", "p plain"},
      {"", "p \"\""},
      {"a b", "p \"a b\""},
      {"a\\b", "p a\\b"},
      {"a\\", "p a\\"},
      {"a b\\", "p \"a b\\\\\""},
      {"a\"b", "p \"a\\\"b\""},
      {"a\\\"b", "p \"a\\\\\\\"b\""},
      {"\\\\server\\share", "p \\\\server\\share"},
      {"x\ny", "p \"x\ny\""},
      {"é", "p é"},
  };
  for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
    const char *argv[] = {"p", cases[i].arg};
    const char *got = cmdline_of(argv, 2);
    if (strcmp(got, cases[i].want) != 0)
      fail_msg("%s: [%s], want [%s]", show(cases[i].arg), got, cases[i].want);
  }
}

/* argv[0]: quoted when it has a blank, its backslashes left alone. */
static void program_name(void **state) {
  (void)state;
  const char *const progs[] = {
      "prog",
      "C:\\Program Files\\App\\app.exe",
      "C:\\dir with space\\",
      "\\\\server\\share\\tool.exe",
      "日本\\ツール.exe",
  };
  for (size_t i = 0; i < sizeof(progs) / sizeof(progs[0]); i++) {
    const char *argv[] = {progs[i], "a b", "c\\"};
    round_trip(argv, 3);
  }
  const char *spaced[] = {"C:\\dir x\\p.exe", "y"};
  assert_string_equal(cmdline_of(spaced, 2), "\"C:\\dir x\\p.exe\" y");
  const char *trailing[] = {"C:\\dir x\\"};
  assert_string_equal(cmdline_of(trailing, 1), "\"C:\\dir x\\\"");
}

/* --------------------------------------- command line: every short arg */

static const char alphabet[] = {'a', ' ', '\t', '"', '\\'};
#define NSYM sizeof(alphabet)

/* The idx-th string of length len over the alphabet. */
static void gen(size_t len, size_t idx, char *out) {
  for (size_t i = 0; i < len; i++) {
    out[i] = alphabet[idx % NSYM];
    idx /= NSYM;
  }
  out[len] = '\0';
}

static void every_short_string(void **state) {
  (void)state;
  enum { MAXLEN = 5, TOTAL = 1 + 5 + 25 + 125 + 625 + 3125 };
  static char strs[TOTAL][MAXLEN + 1];
  size_t k = 0;
  for (size_t len = 0; len <= MAXLEN; len++) {
    size_t count = 1;
    for (size_t i = 0; i < len; i++)
      count *= NSYM;
    for (size_t idx = 0; idx < count; idx++)
      gen(len, idx, strs[k++]);
  }
  assert_int_equal(k, TOTAL);
  for (size_t i = 0; i < TOTAL; i++) {
    /* Alone, then between neighbours (what one argument's trailing
     * backslashes or quotes do to the next). */
    const char *one[] = {"prog", strs[i]};
    round_trip(one, 2);
    const char *three[] = {"prog", strs[i], strs[(i * 7 + 3) % TOTAL], strs[i]};
    round_trip(three, 4);
  }
  printf("cmdline: %d strings round-trip through CommandLineToArgvW\n", TOTAL);
}

/* Random lists of up to 6 arguments of up to 12 symbols, blanks and a
 * non-ASCII letter included. */
static void random_lists(void **state) {
  (void)state;
  static const char *const sym[] = {"a",  " ", "\t", "\"", "\\",   "\n",
                                    "\v", "é", "日", "=",  "\\\\", "\"\""};
  unsigned seed = 12345;
  for (int iter = 0; iter < 20000; iter++) {
    char args[6][64];
    const char *argv[7] = {"prog"};
    size_t argc = 1 + (size_t)(next(&seed) % 7);
    for (size_t a = 1; a < argc; a++) {
      args[a - 1][0] = '\0';
      unsigned len = next(&seed) % 13;
      for (unsigned i = 0; i < len; i++)
        strcat(args[a - 1], sym[next(&seed) % 12]);
      argv[a] = args[a - 1];
    }
    round_trip(argv, argc);
  }
}

/* ------------------------------------------------ command line: refusals */

static void cmdline_refusals(void **state) {
  (void)state;
  wchar_t *line = (wchar_t *)1;
  const char *ok[] = {"prog", "a"};
  assert_int_equal(pk__win_cmdline(ok, 2, NULL), PK_EINVAL);
  assert_int_equal(pk__win_cmdline(NULL, 2, &line), PK_EINVAL);
  assert_null(line);
  assert_int_equal(pk__win_cmdline(ok, 0, &line), PK_EINVAL);
  const char *null_arg[] = {"prog", NULL};
  assert_int_equal(pk__win_cmdline(null_arg, 2, &line), PK_EINVAL);
  const char *empty_prog[] = {"", "a"};
  assert_int_equal(pk__win_cmdline(empty_prog, 2, &line), PK_EINVAL);
  const char *quoted_prog[] = {"pr\"og", "a"};
  assert_int_equal(pk__win_cmdline(quoted_prog, 2, &line), PK_EINVAL);
  /* Not UTF-8: a stray continuation byte, a cut sequence, an overlong
   * '/', an encoded surrogate, a byte that never occurs. */
  static const char *const bad[] = {"\x80", "a\xc3", "\xc0\xaf", "\xed\xa0\x80",
                                    "\xff"};
  for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
    const char *argv[] = {"prog", bad[i]};
    if (pk__win_cmdline(argv, 2, &line) != PK_EINVAL)
      fail_msg("invalid UTF-8 #%zu accepted", i);
    assert_null(line);
    const char *prog[] = {bad[i]};
    assert_int_equal(pk__win_cmdline(prog, 1, &line), PK_EINVAL);
  }
}

/* Up to PK__WIN_CMDLINE_MAX units with the NUL, counted in UTF-16 units
 * whatever the UTF-8 length. */
static void cmdline_limit(void **state) {
  (void)state;
  /* "p " and the argument: 2 + n units. */
  size_t fit = PK__WIN_CMDLINE_MAX - 1 - 2;
  static const struct {
    const char *unit; /* UTF-8 of one symbol */
    size_t units;     /* UTF-16 units it takes */
  } syms[] = {{"a", 1}, {"é", 1}, {"日", 1}, {"😀", 2}};
  for (size_t s = 0; s < sizeof(syms) / sizeof(syms[0]); s++) {
    size_t bytes = strlen(syms[s].unit), count = fit / syms[s].units;
    char *arg = malloc((count + 1) * bytes + 1);
    assert_non_null(arg);
    for (size_t i = 0; i < count; i++)
      memcpy(arg + i * bytes, syms[s].unit, bytes);
    arg[count * bytes] = '\0';
    const char *argv[] = {"p", arg};
    wchar_t *line = NULL;
    assert_int_equal(pk__win_cmdline(argv, 2, &line), 0);
    assert_int_equal(wcslen(line), PK__WIN_CMDLINE_MAX - 1);
    pk__free(line);
    /* One symbol more is too long. */
    memcpy(arg + count * bytes, syms[s].unit, bytes);
    arg[(count + 1) * bytes] = '\0';
    assert_int_equal(pk__win_cmdline(argv, 2, &line), PK_EINVAL);
    assert_null(line);
    free(arg);
  }
  /* Far too long, in many arguments. */
  static char big[4096];
  memset(big, 'x', sizeof(big) - 1);
  const char *many[40] = {"p"};
  for (size_t i = 1; i < 40; i++)
    many[i] = big;
  wchar_t *line = NULL;
  assert_int_equal(pk__win_cmdline(many, 40, &line), PK_EINVAL);
  assert_null(line);
}

/* ------------------------------------------------------ environment */

/* Build the block for envp and compare it, unit for unit, with the
 * entries want (NULL-terminated) followed by the final NUL. */
static void check_block(char *const *envp, const char *const *want) {
  wchar_t *block = NULL;
  int rc = pk__win_envblock(envp, &block);
  if (rc != 0)
    fail_msg("pk__win_envblock -> %s", pk_err_name(rc));
  const wchar_t *p = block;
  size_t i = 0;
  for (; want[i] != NULL; i++) {
    wchar_t *w = pk__wide(want[i]);
    assert_non_null(w);
    if (wcscmp(p, w) != 0)
      fail_msg("entry %zu is [%s], want %s", i, narrow(p), show(want[i]));
    p += wcslen(p) + 1;
    pk__free(w);
  }
  if (i == 0) /* an empty block is one empty string */
    p++;
  if (*p != L'\0')
    fail_msg("entry %zu is [%s], want the end of the block", i, narrow(p));
  pk__free(block);
}

#define ENV(...) ((char *const[]){__VA_ARGS__, NULL})
#define WANT(...) ((const char *const[]){__VA_ARGS__, NULL})

static void env_sorted(void **state) {
  (void)state;
  /* Upper-cased ordinal order: '_' (0x5F) sorts after 'Z' and after
   * lower-case letters too, which would not hold lower-cased. */
  check_block(ENV("b=2", "_u=3", "A=1", "Z=4", "a2=5"),
              WANT("A=1", "a2=5", "b=2", "Z=4", "_u=3"));
  check_block(ENV("PATH=C:\\bin", "ComSpec=C:\\cmd.exe", "windir=C:\\W"),
              WANT("ComSpec=C:\\cmd.exe", "PATH=C:\\bin", "windir=C:\\W"));
  /* By name only: "A" before "A_B" whatever follows the name. */
  check_block(ENV("A_B=1", "A=~"), WANT("A=~", "A_B=1"));
  check_block(ENV("ONE=1"), WANT("ONE=1"));
}

static void env_duplicates(void **state) {
  (void)state;
  check_block(ENV("Path=1", "PATH=2", "path=3"), WANT("path=3"));
  check_block(ENV("X=1", "Y=2", "x=3"), WANT("x=3", "Y=2"));
  check_block(ENV("X=1", "X=1"), WANT("X=1"));
  check_block(ENV("A=1", "B=2", "a=", "C=3", "b=two"),
              WANT("a=", "b=two", "C=3"));
  /* Non-ASCII names compare upper-cased too (and U+00C9 sorts after
   * 'Z'). */
  check_block(ENV("ÉTÉ=1", "été=2", "Été=3", "ZZ=4"), WANT("ZZ=4", "Été=3"));
}

static void env_leading_equals(void **state) {
  (void)state;
  check_block(ENV("A=1", "=ExitCode=00000000", "=C:=C:\\dir", "=::=::\\"),
              WANT("=::=::\\", "=C:=C:\\dir", "=ExitCode=00000000", "A=1"));
  /* Drive entries are names like the others: case-insensitive, last
   * wins. */
  check_block(ENV("=C:=C:\\one", "=c:=C:\\two"), WANT("=c:=C:\\two"));
  /* The value is everything after the name's '=', '=' included. */
  check_block(ENV("A=B=C", "E=", "D=="), WANT("A=B=C", "D==", "E="));
}

static void env_unicode(void **state) {
  (void)state;
  check_block(ENV("GREETING=é 日本 😀", "日本=語"),
              WANT("GREETING=é 日本 😀", "日本=語"));
}

static void env_empty(void **state) {
  (void)state;
  char *const none[] = {NULL};
  wchar_t *block = NULL;
  assert_int_equal(pk__win_envblock(none, &block), 0);
  assert_int_equal(block[0], L'\0');
  assert_int_equal(block[1], L'\0');
  pk__free(block);
}

/* Exactly two NULs after the last entry, and none inside. */
static void env_terminated(void **state) {
  (void)state;
  wchar_t *block = NULL;
  assert_int_equal(pk__win_envblock(ENV("B=2", "A=1"), &block), 0);
  static const wchar_t want[] = L"A=1\0B=2\0"; /* and the literal's NUL */
  assert_memory_equal(block, want, sizeof(want));
  pk__free(block);
}

static void env_refusals(void **state) {
  (void)state;
  wchar_t *block = (wchar_t *)1;
  assert_int_equal(pk__win_envblock(ENV("A=1"), NULL), PK_EINVAL);
  assert_int_equal(pk__win_envblock(NULL, &block), PK_EINVAL);
  assert_null(block);
  static const char *const bad[] = {
      "",   "NAME", "=value", "==value", "=",
      "==", "=C:",  "\xff=1", "A=\xc3",  "A=\xed\xa0\x80"};
  for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
    /* Alone and among good entries. */
    char *alone[] = {(char *)bad[i], NULL};
    char *among[] = {"A=1", (char *)bad[i], "B=2", NULL};
    block = (wchar_t *)1;
    if (pk__win_envblock(alone, &block) != PK_EINVAL)
      fail_msg("entry %s accepted", show(bad[i]));
    assert_null(block);
    if (pk__win_envblock(among, &block) != PK_EINVAL)
      fail_msg("entry %s accepted among others", show(bad[i]));
  }
}

/* Random lists over a few names in random case: one entry per name
 * ignoring case (the last given), in strictly increasing order. */
static void env_random(void **state) {
  (void)state;
  static const char *const names[] = {"path", "a", "a_", "_", "z", "=c:"};
  unsigned seed = 777;
  for (int iter = 0; iter < 2000; iter++) {
    char strs[12][32];
    char *envp[13];
    size_t n = (size_t)(next(&seed) % 13);
    for (size_t i = 0; i < n; i++) {
      const char *name = names[next(&seed) % 6];
      size_t len = strlen(name);
      for (size_t c = 0; c < len; c++)
        strs[i][c] = (char)(next(&seed) % 2 ? toupper(name[c]) : name[c]);
      snprintf(strs[i] + len, sizeof(strs[i]) - len, "=%zu", i);
      envp[i] = strs[i];
    }
    envp[n] = NULL;
    /* want: for each entry, kept iff no later entry has its name. */
    wchar_t *block = NULL;
    assert_int_equal(pk__win_envblock(envp, &block), 0);
    size_t kept = 0;
    const wchar_t *prev = NULL;
    for (const wchar_t *p = block; *p != L'\0'; p += wcslen(p) + 1) {
      const wchar_t *eq = wcschr(p + 1, L'=');
      /* the index after the '=' says which entry it is */
      size_t idx = (size_t)wcstoul(eq + 1, NULL, 10);
      assert_true(idx < n);
      for (size_t j = idx + 1; j < n; j++) {
        size_t lj = (size_t)(strchr(envp[j] + 1, '=') - envp[j]);
        size_t li = (size_t)(strchr(envp[idx] + 1, '=') - envp[idx]);
        if (lj == li && _strnicmp(envp[j], envp[idx], li) == 0)
          fail_msg("kept %s though %s follows it", envp[idx], envp[j]);
      }
      if (prev != NULL) {
        const wchar_t *peq = wcschr(prev + 1, L'=');
        int r = CompareStringOrdinal(prev, (int)(peq - prev), p, (int)(eq - p),
                                     TRUE);
        if (r != CSTR_LESS_THAN)
          fail_msg("[%s] not before [%s]", narrow(prev), narrow(p));
      }
      prev = p;
      kept++;
    }
    /* and every name given is there */
    size_t distinct = 0;
    for (size_t i = 0; i < n; i++) {
      size_t li = (size_t)(strchr(envp[i] + 1, '=') - envp[i]);
      bool later = false;
      for (size_t j = i + 1; j < n && !later; j++) {
        size_t lj = (size_t)(strchr(envp[j] + 1, '=') - envp[j]);
        later = lj == li && _strnicmp(envp[j], envp[i], li) == 0;
      }
      distinct += !later;
    }
    assert_int_equal(kept, distinct);
    pk__free(block);
  }
}

/* ------------------------------------------------------- out of memory */

/* A counting allocator that fails the Nth allocation and every one after
 * it, and counts the blocks still live. */
static struct { long fail_at, calls, live; } ca;

static bool ca_fail(void) { return ++ca.calls >= ca.fail_at; }
static void *ca_malloc(size_t n) {
  void *p = ca_fail() ? NULL : malloc(n);
  ca.live += p != NULL;
  return p;
}
static void *ca_calloc(size_t n, size_t size) {
  void *p = ca_fail() ? NULL : calloc(n, size);
  ca.live += p != NULL;
  return p;
}
static void *ca_realloc(void *old, size_t n) {
  void *p = ca_fail() ? NULL : realloc(old, n);
  ca.live += old == NULL && p != NULL;
  return p;
}
static void ca_free(void *p) {
  ca.live -= p != NULL;
  free(p);
}

typedef int (*build_fn)(wchar_t **out);

static int build_cmdline(wchar_t **out) {
  static char long_arg[600];
  memset(long_arg, 'x', sizeof(long_arg) - 1);
  const char *argv[] = {"C:\\a b\\p.exe", "x y", long_arg, "\"q\\\"", "é"};
  return pk__win_cmdline(argv, 5, out);
}

static int build_envblock(wchar_t **out) {
  return pk__win_envblock(ENV("B=2", "a=1", "=C:=C:\\", "A=3"), out);
}

/* Fail allocation 1, 2, ... until the call succeeds: each failure is
 * PK_ENOMEM with *out NULL and nothing left allocated. */
static void fail_each(build_fn build) {
  pk_replace_allocator(ca_malloc, ca_realloc, ca_calloc, ca_free);
  long n = 1;
  for (;; n++) {
    ca.fail_at = n;
    ca.calls = ca.live = 0;
    wchar_t *out = (wchar_t *)1;
    int rc = build(&out);
    if (rc == 0) {
      pk__free(out);
      break;
    }
    if (rc != PK_ENOMEM || out != NULL || ca.live != 0) {
      pk_replace_allocator(NULL, NULL, NULL, NULL);
      fail_msg("allocation %ld failed: rc %s, out %p, %ld blocks live", n,
               pk_err_name(rc), (void *)out, ca.live);
    }
  }
  long live = ca.live;
  pk_replace_allocator(NULL, NULL, NULL, NULL);
  assert_int_equal(live, 0);
  assert_true(n > 1);
}

static void out_of_memory(void **state) {
  (void)state;
  fail_each(build_cmdline);
  fail_each(build_envblock);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(table),          cmocka_unit_test(exact_encoding),
      cmocka_unit_test(program_name),   cmocka_unit_test(every_short_string),
      cmocka_unit_test(random_lists),   cmocka_unit_test(cmdline_refusals),
      cmocka_unit_test(cmdline_limit),  cmocka_unit_test(env_sorted),
      cmocka_unit_test(env_duplicates), cmocka_unit_test(env_leading_equals),
      cmocka_unit_test(env_unicode),    cmocka_unit_test(env_empty),
      cmocka_unit_test(env_terminated), cmocka_unit_test(env_refusals),
      cmocka_unit_test(env_random),     cmocka_unit_test(out_of_memory),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
