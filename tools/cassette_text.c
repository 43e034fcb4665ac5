/* pk cassette: arguments, loading and terminal-safe printing, shared by
 * the subcommands (cassette_cli.h). */
#include "cassette_cli.h"

#include <stdlib.h>
#include <string.h>

/* ------------------------------------------------------- arguments */

static int usage_error(const char *sub, const char *what, const char *arg) {
  fail(PK_EINVAL, "pk cassette %s: %s%s%s%s", sub, what, arg ? " '" : "",
       arg ? arg : "", arg ? "'" : "");
  cli_synopsis(stderr, cli_find("cassette"));
  return EXIT_PK_FAIL;
}

/* The slot of option name (after "--", up to '=' or the end), or NULL. */
static const char **option_slot(cas_args *a, const char *name, size_t n,
                                const char *allowed) {
  static const char *const names[] = {"entry", "match", "keep"};
  const char **slots[] = {&a->entry, &a->match, &a->keep};
  for (size_t i = 0; i < 3; i++)
    if (strlen(names[i]) == n && strncmp(name, names[i], n) == 0) {
      const char *p = strstr(allowed, names[i]);
      return p != NULL ? slots[i] : NULL;
    }
  return NULL;
}

int cas_parse(const char *sub, int argc, char **argv, size_t npos,
              const char *allowed, cas_args *a) {
  memset(a, 0, sizeof(*a));
  bool options = true;
  for (int i = 0; i < argc; i++) {
    const char *arg = argv[i];
    if (options && strcmp(arg, "--") == 0) {
      options = false;
    } else if (options && strncmp(arg, "--", 2) == 0) {
      const char *eq = strchr(arg + 2, '=');
      size_t n = eq ? (size_t)(eq - arg - 2) : strlen(arg + 2);
      const char **slot = option_slot(a, arg + 2, n, allowed);
      if (slot == NULL)
        return usage_error(sub, "unknown option", arg);
      if (*slot != NULL)
        return usage_error(sub, "option given twice:", arg);
      if (eq == NULL && i + 1 >= argc)
        return usage_error(sub, "option needs a value:", arg);
      *slot = eq ? eq + 1 : argv[++i];
    } else if (options && arg[0] == '-' && arg[1] != '\0') {
      return usage_error(sub, "unknown option", arg);
    } else if (a->npos < npos && arg[0] != '\0') {
      a->pos[a->npos++] = arg;
    } else {
      return usage_error(sub, arg[0] ? "unexpected argument" : "empty argument",
                         arg[0] ? arg : NULL);
    }
  }
  if (a->npos < npos)
    return usage_error(
        sub, npos == 2 ? "needs two cassette files" : "needs a CASSETTE file",
        NULL);
  return 0;
}

int cas_load(const char *path, pkc_file **f) {
  pkc_error err;
  int rc = pkc_load(path, f, &err);
  if (rc != 0)
    return fail(rc, "%s", err.msg);
  return 0;
}

int cas_entry_index(const char *text, const pkc_file *f, const char *path,
                    size_t *idx) {
  char *end = NULL;
  unsigned long long n = 0;
  if (text[0] >= '0' && text[0] <= '9')
    n = strtoull(text, &end, 10);
  if (end == NULL || *end != '\0' || n == 0 || n > f->nentries)
    return fail(PK_EINVAL,
                "--entry %s: %s has %zu entr%s; give a number from 1 to "
                "%zu (as pk cassette show lists them)",
                text, path, f->nentries, f->nentries == 1 ? "y" : "ies",
                f->nentries);
  *idx = (size_t)(n - 1);
  return 0;
}

char *cas_command_string(const pkc_entry *e) {
  size_t len = strlen(e->program) + 1;
  for (size_t i = 0; i < e->nargs; i++)
    len += strlen(e->args[i]) + 1;
  char *s = malloc(len);
  if (s == NULL)
    return NULL;
  size_t n = strlen(e->program);
  memcpy(s, e->program, n + 1);
  for (size_t i = 0; i < e->nargs; i++) {
    size_t m = strlen(e->args[i]);
    s[n++] = ' ';
    memcpy(s + n, e->args[i], m + 1);
    n += m;
  }
  return s;
}

/* ------------------------------------------------------------ text */

/* Length of the UTF-8 sequence at p (at most len bytes), 0 if invalid. */
static size_t utf8_seq(const unsigned char *p, size_t len) {
  size_t n = p[0] < 0x80 ? 1 : p[0] < 0xE0 ? 2 : p[0] < 0xF0 ? 3 : 4;
  if (n > len || pkc_utf8_valid_prefix((const char *)p, n) != n)
    return 0;
  return n;
}

/* Write s[0..len) with control characters escaped; inside quotes (q not
 * 0) also the quote character q and the backslash. */
static void put_escaped(FILE *f, const char *s, size_t len, char q) {
  const unsigned char *p = (const unsigned char *)s;
  for (size_t i = 0; i < len;) {
    unsigned c = p[i];
    size_t n = c == 0 ? 0 : utf8_seq(p + i, len - i);
    if (n == 1 && c >= 0x20 && c != 0x7f) {
      if (q != 0 && (c == (unsigned char)q || c == '\\'))
        fputc('\\', f);
      fputc((int)c, f);
    } else if (n == 1 && (c == '\n' || c == '\t' || c == '\r')) {
      fprintf(f, "\\%c", c == '\n' ? 'n' : c == '\t' ? 't' : 'r');
    } else if (n == 2 && c == 0xC2 && p[i + 1] < 0xA0) { /* C1 control */
      if (q == '\'')
        fprintf(f, "\\x%02x\\x%02x", c, p[i + 1]); /* $'...' has no \u */
      else
        fprintf(f, "\\u%04x", p[i + 1]);
    } else if (n > 1) {
      fwrite(p + i, 1, n, f);
    } else {
      fprintf(f, "\\x%02x", c);
      n = 1;
    }
    i += n;
  }
}

/* true when s is UTF-8 without control characters. */
static bool printable(const char *s, size_t len) {
  const unsigned char *p = (const unsigned char *)s;
  for (size_t i = 0; i < len;) {
    size_t n = p[i] == 0 ? 0 : utf8_seq(p + i, len - i);
    if (n == 0 || (n == 1 && (p[i] < 0x20 || p[i] == 0x7f)) ||
        (n == 2 && p[i] == 0xC2 && p[i + 1] < 0xA0))
      return false;
    i += n;
  }
  return true;
}

void cas_put_word(FILE *f, const char *s) {
  size_t len = strlen(s);
  if (len > 0 &&
      strspn(s, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
                "0123456789_@%+=:,./{}-") == len) {
    fputs(s, f);
  } else if (printable(s, len)) {
    fputc('\'', f);
    for (const char *p = s; *p; p++)
      fputs(*p == '\'' ? "'\\''" : (char[]){*p, 0}, f);
    fputc('\'', f);
  } else {
    fputs("$'", f);
    put_escaped(f, s, len, '\'');
    fputc('\'', f);
  }
}

void cas_put_command(FILE *f, const pkc_entry *e) {
  cas_put_word(f, e->program);
  for (size_t i = 0; i < e->nargs; i++) {
    fputc(' ', f);
    cas_put_word(f, e->args[i]);
  }
}

void cas_put_plain(FILE *f, const char *s) {
  if (s == NULL)
    fputc('-', f);
  else
    put_escaped(f, s, strlen(s), 0);
}

void cas_put_bytes(FILE *f, const char *p, size_t len) {
  if (pkc_utf8_valid_prefix(p, len) == len) {
    fputc('"', f);
    put_escaped(f, p, len, '"');
    fputc('"', f);
    return;
  }
  fputs("hex", f);
  for (size_t i = 0; i < len; i++)
    fprintf(f, " %02x", (unsigned char)p[i]);
}

void cas_put_end(FILE *f, const pkc_entry *e) {
  const char *sig = pk_signal_name(e->signal);
  switch (e->end) {
  case PKC_END_EXIT:
    fprintf(f, "exit %d", e->code);
    break;
  case PKC_END_SIGNAL:
    fprintf(f, "signal %d (%s)", e->signal, sig ? sig : "unknown");
    break;
  case PKC_END_TIMEOUT:
    fputs("timed out", f);
    break;
  case PKC_END_ERROR:
    fprintf(f, "error %s", pk_err_name(e->error));
    break;
  }
}

void cas_put_size(FILE *f, uint64_t bytes, uint64_t lines) {
  fprintf(f, "%llu B", (unsigned long long)bytes);
  if (bytes > 0)
    fprintf(f, " / %llu line%s", (unsigned long long)lines,
            lines == 1 ? "" : "s");
}

void cas_put_end_full(FILE *f, const pkc_entry *e) {
  cas_put_end(f, e);
  const char *sig = pk_signal_name(e->signal);
  if (e->end == PKC_END_TIMEOUT && e->signal != 0)
    fprintf(f, ", then signal %d (%s)", e->signal, sig ? sig : "unknown");
  if (e->end != PKC_END_ERROR)
    return;
  const char *name = pkc_errno_name(e->os_errno);
  if (e->os_errno != 0)
    fprintf(f, ", errno %d (%s)", e->os_errno, name ? name : "unknown");
  if (e->stage != NULL) {
    fputs(", stage ", f);
    cas_put_plain(f, e->stage);
  }
  if (e->errmsg != NULL) {
    fputs(": ", f);
    cas_put_plain(f, e->errmsg);
  }
}
