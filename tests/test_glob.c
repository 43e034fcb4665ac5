/* pk__glob_match: the pattern matcher scripted rules, cassette matching and
 * PK_RECORD_ONLY use on every host. A table of cases on every host; where
 * the C library has fnmatch(3), a differential run against it over every
 * short pattern and subject from a small alphabet. */
#include "harness.h"

#include "internal.h"

#include <stdio.h>
#include <string.h>
#if !defined(_WIN32)
#include <fnmatch.h>
#endif

typedef struct {
  const char *pat, *s;
  bool match;
} gcase;

static const gcase cases[] = {
    {"", "", true},
    {"", "a", false},
    {"a", "a", true},
    {"a", "b", false},
    {"*", "", true},
    {"*", "/usr/bin/git", true},
    {"*/git", "/usr/bin/git", true},
    {"git*", "git-lfs", true},
    {"g?t", "git", true},
    {"g?t", "gt", false},
    {"?", "/", true},
    {"a*b*c", "aXbYbZc", true},
    {"a*b*c", "aXbYbZ", false},
    {"[abc]", "b", true},
    {"[abc]", "d", false},
    {"[!abc]", "d", true},
    {"[^abc]", "a", false},
    {"[a-c]x", "bx", true},
    {"[a-c]x", "dx", false},
    {"[]]", "]", true},
    {"[!]]", "a", true},
    {"[a-]", "-", true},
    {"[[:digit:]]*", "7up", true},
    {"[[:digit:]]*", "up", false},
    {"[[:upper:][:digit:]]", "Q", true},
    {"[", "[", true},
    {"[a", "[a", true},
    {"[a-", "[a-", true},
    {"[[-", "[[-", true},
    {"\\*", "*", true},
    {"\\*", "a", false},
    {"\\?x", "?x", true},
    {"a\\", "a\\", false}, /* a trailing backslash is an error */
    {"--*=*", "--token=abc", true},
    {"*.yaml", "dir/x.yaml", true},
    {"*.yaml", "x.yml", false},
    {"**a", "bbba", true},
};

static void table(void **state) {
  (void)state;
  for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
    bool got = pk__glob_match(cases[i].pat, cases[i].s);
    if (got != cases[i].match)
      fail_msg("pattern '%s' on '%s': got %d, want %d", cases[i].pat,
               cases[i].s, got, cases[i].match);
  }
}

/* No pattern makes it exponential: 30 stars against a long non-match. */
static void no_blowup(void **state) {
  (void)state;
  char pat[64], s[4096];
  for (int i = 0; i < 30; i++)
    pat[i * 2] = '*', pat[i * 2 + 1] = 'a';
  strcpy(pat + 60, "b");
  memset(s, 'a', sizeof(s) - 1);
  s[sizeof(s) - 1] = '\0';
  assert_false(pk__glob_match(pat, s));
}

#if !defined(_WIN32)
/* Every pattern of up to 4 symbols from an alphabet with every special
 * byte, against every subject of up to 3 bytes: identical to fnmatch. */
static const char pat_alpha[] = "ab*?[]!-\\:";
static const char sub_alpha[] = "ab]-\\[";

static size_t gen(const char *alpha, size_t len, size_t idx, char *out) {
  size_t k = strlen(alpha);
  for (size_t i = 0; i < len; i++) {
    out[i] = alpha[idx % k];
    idx /= k;
  }
  out[len] = '\0';
  return len;
}

/* Where a '[' is never closed the two differ by design (pk: an ordinary
 * '['; glibc: sometimes no match at all), so such patterns are left to
 * the table. */
static bool closed_brackets(const char *pat) {
  for (const char *p = pat; *p != '\0'; p++) {
    if (*p == '\\' && p[1] != '\0') {
      p++;
      continue;
    }
    if (*p != '[')
      continue;
    const char *q = p + 1;
    if (*q == '!' || *q == '^')
      q++;
    if (*q == ']')
      q++;
    while (*q != '\0' && *q != ']')
      q += q[0] == '\\' && q[1] != '\0' ? 2 : 1;
    if (*q != ']')
      return false;
  }
  return true;
}

static void same_as_fnmatch(void **state) {
  (void)state;
  size_t np = strlen(pat_alpha), ns = strlen(sub_alpha), checked = 0;
  char pat[8], s[8];
  for (size_t pl = 0; pl <= 4; pl++) {
    size_t pn = 1;
    for (size_t i = 0; i < pl; i++)
      pn *= np;
    for (size_t pi = 0; pi < pn; pi++) {
      gen(pat_alpha, pl, pi, pat);
      if (!closed_brackets(pat))
        continue;
      for (size_t sl = 0; sl <= 3; sl++) {
        size_t sn = 1;
        for (size_t i = 0; i < sl; i++)
          sn *= ns;
        for (size_t si = 0; si < sn; si++) {
          gen(sub_alpha, sl, si, s);
          bool want = fnmatch(pat, s, 0) == 0;
          if (pk__glob_match(pat, s) != want)
            fail_msg("pattern '%s' on '%s': fnmatch says %d", pat, s, want);
          checked++;
        }
      }
    }
  }
  printf("glob: %zu pattern/subject pairs agree with fnmatch\n", checked);
  assert_true(checked > 100000);
}
#endif

int main(void) {
  const struct CMUnitTest tests[] = {
    cmocka_unit_test(table),
    cmocka_unit_test(no_blowup),
#if !defined(_WIN32)
    cmocka_unit_test(same_as_fnmatch),
#endif
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
