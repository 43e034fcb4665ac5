/* Windows: program lookup on PATH, done in the parent so the error can
 * name every directory searched (path_posix.c: execvp's rules). These are
 * the rules a CreateProcess user expects, minus its implicit places
 * (pk_cmd_which uses them, and the job_object runner will).
 *
 * 1. A program with '/' or '\' in it, or a drive prefix ("C:x"), is a
 *    path and is not searched. A relative path is taken from cwd (NULL:
 *    this process's current directory, and the result stays relative):
 *    "x\y" -> <cwd>\x\y; a rooted "\x" -> x at the root of cwd's drive;
 *    a drive-relative "C:x" -> <cwd>\x when cwd is on drive C:, else as
 *    given (Windows takes it from this process's current directory on
 *    C:). "C:\..." and "\\server\share\..." are absolute.
 * 2. A bare name is looked for in the directories of path_env, in order
 *    (NULL: this process's PATH, read from the C runtime's environment as
 *    UTF-16, since its narrow copy is in the ANSI code page). Entries are
 *    split on ';' outside double quotes, the quotes are removed
 *    ("C:\Program Files\x", "C:\a;b"), empty entries are ignored and
 *    relative ones are taken from cwd as in 1.
 *    The current directory is NOT searched unless PATH names it ("."):
 *    cmd.exe and CreateProcess look there first, so a file dropped into
 *    the working directory would shadow a system program. pk does what
 *    NoDefaultCurrentDirectoryInExePath asks of them (and what Go's
 *    exec.LookPath does since 1.19). CreateProcess's other implicit
 *    places (the caller's directory, the system directories) are not
 *    searched either: only PATH.
 * 3. Extensions come from this process's PATHEXT, ';'-separated, empty
 *    entries ignored (unset or no entries: ".COM;.EXE;.BAT;.CMD"), and are
 *    compared ignoring ASCII case. A name's extension is what follows the
 *    last '.' of its last component.
 *    - "tool.EXE", an extension PATHEXT lists: the name as is, only.
 *    - "tool", no extension: tool + each extension in order, never the
 *      bare file. CreateProcess would run tool.exe, not tool; and an
 *      extensionless file beside tool.cmd is usually a POSIX shell script
 *      (npm's .bin, Git for Windows) that Windows cannot run.
 *    - "python3.11" or "x.py", another extension: the name + each
 *      extension in order, then the name as is, last (CreateProcess runs
 *      an executable image whatever its extension; Python's shutil.which
 *      uses the same order).
 *    Every candidate in a directory is tried before the next directory.
 * 4. A candidate counts when it exists and is not a directory: Windows
 *    has no execute bit, and whether a file is a runnable image is for
 *    CreateProcess to say, so there is no PK_EACCES here. .bat and .cmd
 *    files are returned; the spawner decides how to run them.
 *
 * Joined parts get a '\' between them; the parts keep their separators.
 * Messages on PK_ENOENT: "P: not found in PATH (searched: <PATH>;
 * extensions: <PATHEXT>)", or for a path "P: not found (tried: <path>;
 * extensions: ...)"; the extensions are left out when P has a listed one.
 * PK_EINVAL: the program, path_env or cwd is not valid UTF-8. */
#include "internal.h"
#include "win.h"

#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#define PK__DEFAULT_PATHEXT ".COM;.EXE;.BAT;.CMD"

enum { EXT_NONE, EXT_LISTED, EXT_OTHER };

typedef struct lookup {
  const char *program;
  const char *pathext; /* never empty */
  int kind;            /* EXT_* of program */
} lookup;

static bool is_sep(char c) { return c == '/' || c == '\\'; }

static bool has_drive(const char *s) {
  char c = (char)(s[0] | 0x20);
  return c >= 'a' && c <= 'z' && s[1] == ':';
}

static bool valid_utf8(const char *s) {
  return MultiByteToWideChar(CP_UTF8, MB_ERR_INVALID_CHARS, s, -1, NULL, 0) > 0;
}

/* A variable of the C runtime's environment as UTF-8 (heap); *out is NULL
 * when it is unset. 0 or PK_ENOMEM. */
static int env_utf8(const wchar_t *name, char **out) {
  *out = NULL;
  const wchar_t *w = _wgetenv(name);
  if (w == NULL)
    return 0;
  int n = WideCharToMultiByte(CP_UTF8, 0, w, -1, NULL, 0, NULL, NULL);
  if (n <= 0)
    return 0;
  char *s = pk__malloc((size_t)n);
  if (s == NULL)
    return PK_ENOMEM;
  WideCharToMultiByte(CP_UTF8, 0, w, -1, s, n, NULL, NULL);
  *out = s;
  return 0;
}

/* The next non-empty ';'-separated entry of *p (start, length); false at
 * the end. */
static bool next_ext(const char **p, const char **start, size_t *len) {
  while (**p == ';')
    (*p)++;
  if (**p == '\0')
    return false;
  *start = *p;
  while (**p != '\0' && **p != ';')
    (*p)++;
  *len = (size_t)(*p - *start);
  return true;
}

static bool has_entry(const char *list) {
  const char *e;
  size_t len;
  return list != NULL && next_ext(&list, &e, &len);
}

static bool ext_equal(const char *a, const char *b, size_t n) {
  for (size_t i = 0; i < n; i++) {
    char x = a[i], y = b[i];
    if (x >= 'A' && x <= 'Z')
      x = (char)(x + 32);
    if (y >= 'A' && y <= 'Z')
      y = (char)(y + 32);
    if (x != y)
      return false;
  }
  return true;
}

static int ext_kind(const char *name, const char *pathext) {
  const char *base = name;
  for (const char *p = name; *p != '\0'; p++)
    if (is_sep(*p) || *p == ':')
      base = p + 1;
  const char *dot = strrchr(base, '.');
  if (dot == NULL)
    return EXT_NONE;
  size_t n = strlen(dot), len;
  const char *e;
  while (next_ext(&pathext, &e, &len))
    if (len == n && ext_equal(e, dot, n))
      return EXT_LISTED;
  return EXT_OTHER;
}

/* dir (n bytes) then name, with one '\\' between them. */
static char *join(const char *dir, size_t n, const char *name, size_t m) {
  if (n == 0 || is_sep(dir[n - 1]))
    return pk__sprintf("%.*s%.*s", (int)n, dir, (int)m, name);
  return pk__sprintf("%.*s\\%.*s", (int)n, dir, (int)m, name);
}

/* p (n bytes) as seen from cwd, following rule 1 (heap). */
static char *from_cwd(const char *cwd, const char *p, size_t n) {
  if (cwd == NULL || cwd[0] == '\0' || (n >= 2 && is_sep(p[0]) && is_sep(p[1])))
    return pk__sprintf("%.*s", (int)n, p);
  if (n >= 2 && has_drive(p)) {
    if (n >= 3 && is_sep(p[2]))
      return pk__sprintf("%.*s", (int)n, p);
    if (has_drive(cwd) && ((cwd[0] ^ p[0]) | 0x20) == 0x20)
      return join(cwd, strlen(cwd), p + 2, n - 2);
    return pk__sprintf("%.*s", (int)n, p);
  }
  if (n >= 1 && is_sep(p[0]))
    return has_drive(cwd) ? pk__sprintf("%.2s%.*s", cwd, (int)n, p)
                          : pk__sprintf("%.*s", (int)n, p);
  return join(cwd, strlen(cwd), p, n);
}

/* 0: a file that is not a directory; 1: not there; PK_ENOMEM. */
static int probe(const char *path) {
  wchar_t *w = pk__wide(path);
  if (w == NULL)
    return PK_ENOMEM; /* every part was checked to be valid UTF-8 */
  DWORD attr = GetFileAttributesW(w);
  pk__free(w);
  return attr == INVALID_FILE_ATTRIBUTES || (attr & FILE_ATTRIBUTE_DIRECTORY)
             ? 1
             : 0;
}

/* Probe cand; on a hit it is stored in *found, else freed. */
static int take(char *cand, char **found) {
  if (cand == NULL)
    return PK_ENOMEM;
  int rc = probe(cand);
  if (rc == 0)
    *found = cand;
  else
    pk__free(cand);
  return rc;
}

/* The candidates of base (a full path to the program, rule 3): 0 and
 * *found, 1 when none is there, or PK_ENOMEM. */
static int try_base(const lookup *l, const char *base, char **found) {
  int rc;
  if (l->kind == EXT_LISTED)
    return take(pk__strdup(base), found);
  const char *p = l->pathext, *e;
  size_t len;
  while (next_ext(&p, &e, &len))
    if ((rc = take(pk__sprintf("%s%.*s", base, (int)len, e), found)) != 1)
      return rc;
  return l->kind == EXT_OTHER ? take(pk__strdup(base), found) : 1;
}

/* The next entry of a PATH list at *p, quotes removed, in *out (heap,
 * possibly empty); false at the end of the list. */
static bool next_dir(const char **p, char **out, int *rc) {
  const char *s = *p;
  if (*s == '\0')
    return false;
  *out = pk__malloc(strlen(s) + 1);
  if (*out == NULL) {
    *rc = PK_ENOMEM;
    return false;
  }
  size_t n = 0;
  bool quoted = false;
  for (; *s != '\0' && (quoted || *s != ';'); s++) {
    if (*s == '"')
      quoted = !quoted;
    else
      (*out)[n++] = *s;
  }
  (*out)[n] = '\0';
  *p = *s == ';' ? s + 1 : s;
  return true;
}

static int search(const lookup *l, const char *path, const char *cwd,
                  char **found) {
  int rc = 1;
  char *dir = NULL;
  size_t plen = strlen(l->program);
  while (rc == 1 && next_dir(&path, &dir, &rc)) {
    if (dir[0] != '\0') {
      char *full = from_cwd(cwd, dir, strlen(dir));
      char *base = full ? join(full, strlen(full), l->program, plen) : NULL;
      rc = base ? try_base(l, base, found) : PK_ENOMEM;
      pk__free(base);
      pk__free(full);
    }
    pk__free(dir);
  }
  return rc;
}

/* The PATH (path_env, else this process's) in *path: *owned is the copy
 * to free, if one was made. */
static int get_path(const char *path_env, const char **path, char **owned) {
  *owned = NULL;
  *path = path_env;
  if (path_env != NULL)
    return 0;
  int rc = env_utf8(L"PATH", owned);
  *path = *owned ? *owned : "";
  return rc;
}

static int not_found(const lookup *l, const char *where, const char *what,
                     char **msg) {
  const char *sep = l->kind == EXT_LISTED ? "" : "; extensions: ";
  const char *exts = l->kind == EXT_LISTED ? "" : l->pathext;
  *msg = pk__sprintf("%s: %s (%s%s%s)", l->program, where, what, sep, exts);
  return *msg ? PK_ENOENT : PK_ENOMEM;
}

static int resolve(lookup *l, const char *path_env, const char *cwd,
                   char **resolved, char **msg) {
  l->kind = ext_kind(l->program, l->pathext);
  int rc;
  if (strpbrk(l->program, "/\\") != NULL || has_drive(l->program)) {
    char *base = from_cwd(cwd, l->program, strlen(l->program));
    if (base == NULL)
      return PK_ENOMEM;
    rc = try_base(l, base, resolved);
    if (rc == 1) {
      char *what = pk__sprintf("tried: %s", base);
      rc = what ? not_found(l, "not found", what, msg) : PK_ENOMEM;
      pk__free(what);
    }
    pk__free(base);
    return rc;
  }
  const char *path;
  char *owned;
  if ((rc = get_path(path_env, &path, &owned)) == 0) {
    rc = search(l, path, cwd, resolved);
    if (rc == 1) {
      char *what = pk__sprintf("searched: %s", path[0] ? path : "(empty PATH)");
      rc = what ? not_found(l, "not found in PATH", what, msg) : PK_ENOMEM;
      pk__free(what);
    }
  }
  pk__free(owned);
  return rc;
}

int pk__resolve_program(const char *program, const char *path_env,
                        const char *cwd, char **resolved, char **msg) {
  *resolved = NULL;
  *msg = NULL;
  const char *bad = !valid_utf8(program)                        ? "program"
                    : path_env != NULL && !valid_utf8(path_env) ? "PATH"
                    : cwd != NULL && !valid_utf8(cwd)           ? "cwd"
                                                                : NULL;
  if (bad != NULL) {
    *msg = pk__sprintf("the %s is not valid UTF-8", bad);
    return PK_EINVAL;
  }
  char *pathext;
  if (env_utf8(L"PATHEXT", &pathext) != 0)
    return PK_ENOMEM;
  lookup l = {program, has_entry(pathext) ? pathext : PK__DEFAULT_PATHEXT,
              EXT_NONE};
  int rc = resolve(&l, path_env, cwd, resolved, msg);
  pk__free(pathext);
  return rc;
}

const char *pk__win_path_env(const pk_cmd *cmd) {
  const char *path = pk__cmd_path_env_fold(cmd, true);
  if (path == getenv("PATH"))
    return NULL; /* inherited: the narrow copy is in the ANSI code page */
  return path != NULL ? path : "";
}

int pk_cmd_which(const pk_cmd *cmd, char **path, char **errmsg) {
  if (path != NULL)
    *path = NULL;
  if (errmsg != NULL)
    *errmsg = NULL;
  if (cmd == NULL || path == NULL)
    return PK_EINVAL;
  char *msg = NULL;
  int rc = pk__resolve_program(cmd->program, pk__win_path_env(cmd), cmd->cwd,
                               path, &msg);
  if (errmsg != NULL)
    *errmsg = msg;
  else
    pk__free(msg);
  return rc;
}
