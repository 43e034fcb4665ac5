/* Shell-style patterns, the same on every host: what fnmatch(3) does with
 * flags 0 in the C locale (Windows has no fnmatch). Bytes, not characters;
 * '*' and '?' also match '/'; a backslash quotes the next byte (a pattern
 * ending in one matches nothing); a '[' with no closing ']' is an ordinary
 * byte. */
#include "internal.h"

#include <ctype.h>
#include <string.h>

static bool in_class(const char *name, size_t len, unsigned char c) {
  static const struct {
    const char *name;
    int (*is)(int);
  } classes[] = {{"alnum", isalnum}, {"alpha", isalpha}, {"blank", isblank},
                 {"cntrl", iscntrl}, {"digit", isdigit}, {"graph", isgraph},
                 {"lower", islower}, {"print", isprint}, {"punct", ispunct},
                 {"space", isspace}, {"upper", isupper}, {"xdigit", isxdigit}};
  for (size_t i = 0; i < sizeof(classes) / sizeof(classes[0]); i++)
    if (strlen(classes[i].name) == len &&
        memcmp(classes[i].name, name, len) == 0)
      return c < 128 && classes[i].is(c) != 0;
  return false;
}

/* One bracket expression at p (just past '['). Returns the byte after its
 * ']' and sets *hit, or NULL when it is not closed (then '[' is literal;
 * glibc's fnmatch differs there in corner cases, such as "[a-", which it
 * never matches). */
static const char *bracket(const char *p, unsigned char c, bool *hit) {
  bool negate = *p == '!' || *p == '^';
  if (negate)
    p++;
  bool match = false, first = true;
  while (*p != '\0' && (first || *p != ']')) {
    first = false;
    const char *end = p[0] == '[' && p[1] == ':' ? strstr(p + 2, ":]") : NULL;
    if (end != NULL) { /* "[:name:]"; without ":]" the '[' is a member */
      if (in_class(p + 2, (size_t)(end - p - 2), c))
        match = true;
      p = end + 2;
      continue;
    }
    unsigned char lo = (unsigned char)*p;
    if (lo == '\\' && p[1] != '\0')
      lo = (unsigned char)*++p;
    p++;
    unsigned char hi = lo;
    if (p[0] == '-' && p[1] != ']' && p[1] != '\0') {
      hi = (unsigned char)p[1];
      p += 2;
      if (hi == '\\' && *p != '\0')
        hi = (unsigned char)*p++;
    }
    if (lo <= c && c <= hi)
      match = true;
  }
  if (*p != ']')
    return NULL;
  *hit = match != negate;
  return p + 1;
}

bool pk__glob_match(const char *pat, const char *s) {
  /* Backtracking over the last '*' only: linear in practice, never
   * exponential. */
  const char *star = NULL, *resume = NULL;
  for (;;) {
    if (*pat == '*') {
      while (*pat == '*')
        pat++;
      if (*pat == '\0')
        return true;
      star = pat;
      resume = s;
      continue;
    }
    if (*s == '\0') {
      if (*pat == '\0')
        return true;
      goto backtrack;
    }
    if (*pat == '?') {
      pat++;
      s++;
      continue;
    }
    if (*pat == '[') {
      bool hit = false;
      const char *next = bracket(pat + 1, (unsigned char)*s, &hit);
      if (next != NULL) {
        if (!hit)
          goto backtrack;
        pat = next;
        s++;
        continue;
      }
      /* unclosed: an ordinary '[' */
    }
    {
      const char *lit = pat;
      if (*lit == '\\' && *++lit == '\0')
        return false; /* a trailing backslash: fnmatch's error */
      if (*lit == *s) {
        pat = lit + 1;
        s++;
        continue;
      }
    }
  backtrack:
    if (star == NULL || *resume == '\0')
      return false;
    pat = star;
    s = ++resume;
  }
}
