/* pk__resolve_program on Windows (path_win.c): PATH order, PATHEXT order,
 * names with and without extensions, quoted and empty PATH entries,
 * relative, rooted and drive-relative paths, directories skipped, the
 * current directory never searched implicitly, the process PATH read as
 * UTF-16, the not-found messages, invalid UTF-8, out of memory. All in a
 * fresh temporary tree that is removed at the end. */
#include "harness.h"

#if !defined(_WIN32)
/* POSIX builds every test_*.c: there the lookup is path_posix.c's, which
 * test_api_edges and the real-process suites cover. */
static void windows_only(void **state) {
  (void)state;
  print_message("skipped: Windows's lookup rules (path_win.c)\n");
  skip();
}

int main(void) {
  const struct CMUnitTest tests[] = {cmocka_unit_test(windows_only)};
  return cmocka_run_group_tests(tests, NULL, NULL);
}
#else
#include "internal.h"
#include "win.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <wchar.h>

#define DEFAULT_EXTS ".COM;.EXE;.BAT;.CMD"

/* The tree, relative to the temporary directory; a trailing '\\' makes a
 * directory. Parents come before their children; removed in reverse. */
static const char *const tree[] = {
    "a\\",
    "a\\tool.exe",
    "a\\tool.cmd",
    "a\\noext",
    "a\\dir.exe\\",
    "a\\x.py",
    "a\\ver.1.exe",
    "a\\ver.1",
    "a\\data.bin",
    "a\\data.bin.cmd",
    "b\\",
    "b\\tool.exe",
    "b\\script.bat",
    "b\\dir.exe",
    "b\\noext",
    "c d\\",
    "c d\\spaced.exe",
    "s;t\\",
    "s;t\\semi.cmd",
    "\xce\xa9\\", /* U+03A9, in no ANSI code page wine picks here */
    "\xce\xa9\\omega.exe",
};
#define NTREE (sizeof(tree) / sizeof(tree[0]))

static char root[1100];   /* the temporary directory */
static wchar_t *old_path; /* this process's PATH and PATHEXT, restored */
static wchar_t *old_pathext;
static char start_cwd[1100];

static char *at(const char *rel) { /* root\rel, static, one at a time */
  static char buf[4][1300];
  static int i;
  i = (i + 1) % 4;
  snprintf(buf[i], sizeof(buf[i]), "%s\\%s", root, rel);
  return buf[i];
}

static wchar_t *wdup_env(const wchar_t *name) {
  const wchar_t *v = _wgetenv(name);
  return v ? _wcsdup(v) : NULL;
}

/* _wputenv "NAME=value"; an empty value removes the variable. */
static void wsetenv(const wchar_t *name, const wchar_t *value) {
  size_t n = wcslen(name) + (value ? wcslen(value) : 0) + 2;
  wchar_t *s = malloc(n * sizeof(wchar_t));
  assert_non_null(s);
  swprintf(s, n, L"%ls=%ls", name, value ? value : L"");
  assert_int_equal(_wputenv(s), 0);
  free(s);
}

static bool exists(const char *path) {
  uv_fs_t req;
  int rc = uv_fs_stat(NULL, &req, path, NULL);
  uv_fs_req_cleanup(&req);
  return rc == 0;
}

static int setup(void **state) {
  (void)state;
  snprintf(root, sizeof(root), "%s\\pk-path-XXXXXX", pkt_tmpdir());
  pkt_mkdtemp(root);
  for (size_t i = 0; i < NTREE; i++) {
    size_t n = strlen(tree[i]);
    char rel[64];
    snprintf(rel, sizeof(rel), "%s", tree[i]);
    if (rel[n - 1] == '\\') {
      rel[n - 1] = '\0';
      pkt_mkdir(at(rel));
      continue;
    }
    int fd = pk__fd_open(at(rel), UV_FS_O_CREAT | UV_FS_O_WRONLY, 0644);
    assert_true(fd >= 0);
    assert_int_equal(pk__fd_close(fd), 0);
  }
  size_t len = sizeof(start_cwd);
  assert_int_equal(uv_cwd(start_cwd, &len), 0);
  old_path = wdup_env(L"PATH");
  old_pathext = wdup_env(L"PATHEXT");
  wsetenv(L"PATHEXT", NULL); /* the default, whatever wine sets */
  return 0;
}

static int teardown(void **state) {
  (void)state;
  assert_int_equal(uv_chdir(start_cwd), 0);
  wsetenv(L"PATH", old_path);
  wsetenv(L"PATHEXT", old_pathext);
  free(old_path);
  free(old_pathext);
  for (size_t i = NTREE; i-- > 0;) {
    char rel[64];
    size_t n = strlen(tree[i]);
    snprintf(rel, sizeof(rel), "%s", tree[i]);
    uv_fs_t req;
    int rc;
    if (rel[n - 1] == '\\') {
      rel[n - 1] = '\0';
      rc = uv_fs_rmdir(NULL, &req, at(rel), NULL);
    } else {
      rc = uv_fs_unlink(NULL, &req, at(rel), NULL);
    }
    uv_fs_req_cleanup(&req);
    assert_int_equal(rc, 0);
  }
  uv_fs_t req;
  assert_int_equal(uv_fs_rmdir(NULL, &req, root, NULL), 0);
  uv_fs_req_cleanup(&req);
  assert_false(exists(root));
  return 0;
}

/* Resolve and expect a path (want != NULL) or PK_ENOENT. */
static void expect(const char *prog, const char *path, const char *cwd,
                   const char *want) {
  char *got = NULL, *msg = NULL;
  int rc = pk__resolve_program(prog, path, cwd, &got, &msg);
  if (want != NULL) {
    if (rc != 0)
      fail_msg("%s: %s (%s)", prog, pk_err_name(rc), msg ? msg : "");
    assert_null(msg);
    assert_string_equal(got, want);
  } else {
    if (rc != PK_ENOENT)
      fail_msg("%s: %s, found %s", prog, pk_err_name(rc), got ? got : "");
    assert_null(got);
    assert_non_null(msg);
  }
  pk__free(got);
  pk__free(msg);
}

static char *path_of(const char *d1, const char *d2) { /* static */
  static char buf[2700];
  if (d2 == NULL)
    snprintf(buf, sizeof(buf), "%s", at(d1));
  else
    snprintf(buf, sizeof(buf), "%s;%s", at(d1), at(d2));
  return buf;
}

static void search_order(void **state) {
  (void)state;
  expect("tool", path_of("a", "b"), NULL, at("a\\tool.EXE"));
  expect("tool", path_of("b", "a"), NULL, at("b\\tool.EXE"));
  /* Every extension in a before b: a's tool.cmd beats b's tool.exe. */
  wsetenv(L"PATHEXT", L".CMD;.EXE");
  expect("tool", path_of("b", "a"), NULL, at("b\\tool.EXE"));
  expect("tool", path_of("a", "b"), NULL, at("a\\tool.CMD"));
  wsetenv(L"PATHEXT", NULL);
  expect("script", path_of("a", "b"), NULL, at("b\\script.BAT"));
  /* A separator at the end of an entry is not doubled. */
  char p[1400];
  snprintf(p, sizeof(p), "%s\\", at("b"));
  expect("script", p, NULL, at("b\\script.BAT"));
}

static void pathext_order(void **state) {
  (void)state;
  wsetenv(L"PATHEXT", L".CMD;.EXE");
  expect("tool", path_of("a", NULL), NULL, at("a\\tool.CMD"));
  wsetenv(L"PATHEXT", L";.exe;;");
  expect("tool", path_of("a", NULL), NULL, at("a\\tool.exe"));
  expect("script", path_of("b", NULL), NULL, NULL);
  /* No entries at all: the default. */
  wsetenv(L"PATHEXT", L";;");
  expect("tool", path_of("a", NULL), NULL, at("a\\tool.EXE"));
  wsetenv(L"PATHEXT", NULL);
  expect("script", path_of("b", NULL), NULL, at("b\\script.BAT"));
}

static void explicit_extension(void **state) {
  (void)state;
  const char *ab = path_of("a", "b");
  expect("tool.cmd", ab, NULL, at("a\\tool.cmd"));
  expect("tool.exe", ab, NULL, at("a\\tool.exe"));
  expect("script.bat", ab, NULL, at("b\\script.bat"));
  /* Case does not matter, and the name is kept as given. */
  expect("tool.CmD", ab, NULL, at("a\\tool.CmD"));
  expect("SCRIPT.Bat", ab, NULL, at("b\\SCRIPT.Bat"));
  wsetenv(L"PATHEXT", L".exe;.bat");
  expect("TOOL.EXE", ab, NULL, at("a\\TOOL.EXE"));
  /* An extension PATHEXT lists is not extended: tool.cmd.exe is not
   * looked for, and .cmd is not listed now, so tool.cmd is "other":
   * extended first, then as is. */
  expect("tool.cmd", ab, NULL, at("a\\tool.cmd"));
  wsetenv(L"PATHEXT", NULL);
  /* Another extension: extended first, then as is. */
  expect("x.py", ab, NULL, at("a\\x.py"));
  expect("ver.1", ab, NULL, at("a\\ver.1.EXE"));
  expect("data.bin", ab, NULL, at("a\\data.bin.CMD"));
  /* No extension: never the bare file. */
  expect("noext", ab, NULL, NULL);
  expect("spaced.exe", ab, NULL, NULL);
}

static void quoted_and_empty_entries(void **state) {
  (void)state;
  char p[3000];
  snprintf(p, sizeof(p), ";;\"%s\";;", at("c d"));
  expect("spaced", p, NULL, at("c d\\spaced.EXE"));
  /* ';' inside quotes does not split; quotes anywhere are removed. */
  snprintf(p, sizeof(p), "%s;\"%s\"", at("a"), at("s;t"));
  expect("semi", p, NULL, at("s;t\\semi.CMD"));
  snprintf(p, sizeof(p), "%s\\\"c d\"", root);
  expect("spaced", p, NULL, at("c d\\spaced.EXE"));
  /* Nothing to search. */
  expect("tool", "", NULL, NULL);
  expect("tool", ";;\"\";", NULL, NULL);
  /* Unquoted, the ';' splits the entry. */
  snprintf(p, sizeof(p), "%s", at("s;t"));
  expect("semi", p, NULL, NULL);
}

static void relative_and_absolute_paths(void **state) {
  (void)state;
  char want[1400], prog[1400];
  /* Relative: from cwd, both separators, kept as given. */
  expect("a\\tool", NULL, root, at("a\\tool.EXE"));
  expect("a/tool.cmd", NULL, root, at("a/tool.cmd"));
  expect("./b/script", NULL, root, at("./b/script.BAT"));
  snprintf(want, sizeof(want), "%s\\", root);
  expect("b\\script", NULL, want, at("b\\script.BAT"));
  expect("a\\noext", NULL, root, NULL);
  expect("a\\dir.exe", NULL, root, NULL);
  expect("a\\dir", NULL, root, NULL);
  /* A path is not searched on PATH. */
  expect("a\\tool", path_of("b", NULL), at("b"), NULL);
  /* Absolute, cwd ignored. */
  snprintf(prog, sizeof(prog), "%s/b/script", root);
  snprintf(want, sizeof(want), "%s/b/script.BAT", root);
  expect(prog, NULL, at("a"), want);
  expect(at("a\\tool.cmd"), NULL, "Q:\\elsewhere", at("a\\tool.cmd"));
  /* Rooted: at the root of cwd's drive. */
  assert_true(root[1] == ':');
  snprintf(prog, sizeof(prog), "%s\\a\\tool", root + 2);
  expect(prog, NULL, at("b"), at("a\\tool.EXE"));
  /* cwd NULL: relative to this process's current directory, and left
   * relative. */
  assert_int_equal(uv_chdir(root), 0);
  expect("a\\tool", NULL, NULL, "a\\tool.EXE");
  expect(".\\b/script.bat", NULL, NULL, ".\\b/script.bat");
  assert_int_equal(uv_chdir(start_cwd), 0);
}

static void drive_relative(void **state) {
  (void)state;
  char prog[64], want[1400];
  char drive = root[0];
  /* On cwd's drive: from cwd. */
  snprintf(prog, sizeof(prog), "%c:tool", drive);
  expect(prog, NULL, at("a"), at("a\\tool.EXE"));
  snprintf(prog, sizeof(prog), "%c:b\\script", drive ^ 0x20);
  expect(prog, NULL, root, at("b\\script.BAT"));
  /* cwd on another drive (or none): as given, Windows takes it from this
   * process's current directory on that drive. */
  assert_int_equal(uv_chdir(at("a")), 0);
  snprintf(prog, sizeof(prog), "%c:tool", drive);
  snprintf(want, sizeof(want), "%c:tool.EXE", drive);
  expect(prog, NULL, NULL, want);
  expect(prog, NULL, drive == 'Q' ? "R:\\x" : "Q:\\x", want);
  assert_int_equal(uv_chdir(start_cwd), 0);
  /* A drive prefix makes a path: not searched. */
  snprintf(prog, sizeof(prog), "%c:script", drive);
  expect(prog, path_of("b", NULL), at("a"), NULL);
}

static void directories_skipped(void **state) {
  (void)state;
  expect("dir", path_of("a", "b"), NULL, at("b\\dir.EXE"));
  expect("dir.exe", path_of("a", "b"), NULL, at("b\\dir.exe"));
  expect("dir", path_of("a", NULL), NULL, NULL);
  /* A PATH entry that is a file is no directory to search. */
  expect("tool", at("b\\tool.exe"), NULL, NULL);
}

static void not_found_messages(void **state) {
  (void)state;
  char *got = NULL, *msg = NULL, want[4000];
  const char *ab = path_of("a", "b");
  assert_int_equal(pk__resolve_program("nothere", ab, NULL, &got, &msg),
                   PK_ENOENT);
  snprintf(want, sizeof(want),
           "nothere: not found in PATH (searched: %s; extensions: %s)", ab,
           DEFAULT_EXTS);
  assert_null(got);
  assert_string_equal(msg, want);
  pk__free(msg);
  /* An extension PATHEXT lists: no extensions were tried. */
  assert_int_equal(pk__resolve_program("noext.exe", ab, NULL, &got, &msg),
                   PK_ENOENT);
  snprintf(want, sizeof(want), "noext.exe: not found in PATH (searched: %s)",
           ab);
  assert_string_equal(msg, want);
  pk__free(msg);
  assert_int_equal(pk__resolve_program("tool", "", NULL, &got, &msg),
                   PK_ENOENT);
  assert_string_equal(msg, "tool: not found in PATH (searched: (empty PATH); "
                           "extensions: " DEFAULT_EXTS ")");
  pk__free(msg);
  wsetenv(L"PATHEXT", L".Exe;.Cmd");
  assert_int_equal(pk__resolve_program("a\\noext", NULL, root, &got, &msg),
                   PK_ENOENT);
  snprintf(want, sizeof(want),
           "a\\noext: not found (tried: %s; extensions: .Exe;.Cmd)",
           at("a\\noext"));
  assert_string_equal(msg, want);
  pk__free(msg);
  wsetenv(L"PATHEXT", NULL);
  assert_int_equal(pk__resolve_program("a\\dir.exe", NULL, root, &got, &msg),
                   PK_ENOENT);
  snprintf(want, sizeof(want), "a\\dir.exe: not found (tried: %s)",
           at("a\\dir.exe"));
  assert_string_equal(msg, want);
  pk__free(msg);
  assert_null(got);
}

static void current_directory_not_searched(void **state) {
  (void)state;
  assert_int_equal(uv_chdir(at("a")), 0);
  expect("tool", path_of("b", NULL), NULL, at("b\\tool.EXE"));
  expect("tool.cmd", path_of("b", NULL), NULL, NULL);
  expect("x.py", path_of("b", NULL), at("a"), NULL);
  expect("tool.cmd", "", at("a"), NULL);
  /* Unless PATH names it. */
  expect("tool.cmd", ".", NULL, ".\\tool.cmd");
  expect("tool.cmd", ".", at("b"), NULL);
  expect("script", ".", at("b"), at("b\\.\\script.BAT"));
  /* A relative entry is taken from cwd. */
  expect("script", "..\\b", at("a"), at("a\\..\\b\\script.BAT"));
  assert_int_equal(uv_chdir(start_cwd), 0);
}

static void process_path(void **state) {
  (void)state;
  char *got = NULL, *msg = NULL;
  pkt_setenv("PATH", path_of("b", NULL));
  expect("tool", NULL, NULL, at("b\\tool.EXE"));
  pkt_setenv("PATH", path_of("a", "b"));
  expect("script", NULL, NULL, at("b\\script.BAT"));
  /* Read as UTF-16: a directory no ANSI code page can name. */
  wchar_t wpath[1200];
  int n = MultiByteToWideChar(CP_UTF8, 0, at("\xce\xa9"), -1, wpath, 1200);
  assert_true(n > 0);
  wsetenv(L"PATH", wpath);
  expect("omega", NULL, NULL, at("\xce\xa9\\omega.EXE"));
  /* pk_cmd_which: the inherited PATH, the command's own, none. */
  pk_cmd *cmd;
  PKT_ASSERT_OK(pk_cmd_new_list(&cmd, "omega", NULL));
  PKT_ASSERT_OK(pk_cmd_which(cmd, &got, NULL));
  assert_string_equal(got, at("\xce\xa9\\omega.EXE"));
  pk_free(got);
  PKT_ASSERT_OK(pk_cmd_env_set(cmd, "PATH", path_of("c d", "\xce\xa9")));
  PKT_ASSERT_OK(pk_cmd_which(cmd, &got, NULL));
  assert_string_equal(got, at("\xce\xa9\\omega.EXE"));
  pk_free(got);
  PKT_ASSERT_OK(pk_cmd_env_remove(cmd, "PATH"));
  assert_int_equal(pk_cmd_which(cmd, &got, &msg), PK_ENOENT);
  assert_null(got);
  assert_string_equal(msg, "omega: not found in PATH (searched: (empty "
                           "PATH); extensions: " DEFAULT_EXTS ")");
  pk_free(msg);
  pk_cmd_free(cmd);
  PKT_ASSERT_OK(pk_cmd_new_list(&cmd, "a\\tool", NULL));
  PKT_ASSERT_OK(pk_cmd_set_cwd(cmd, root));
  PKT_ASSERT_OK(pk_cmd_which(cmd, &got, NULL));
  assert_string_equal(got, at("a\\tool.EXE"));
  pk_free(got);
  pk_cmd_free(cmd);
  assert_int_equal(pk_cmd_which(NULL, &got, NULL), PK_EINVAL);
  /* No PATH at all. */
  pkt_unsetenv("PATH");
  assert_null(getenv("PATH"));
  assert_int_equal(pk__resolve_program("tool", NULL, NULL, &got, &msg),
                   PK_ENOENT);
  assert_non_null(strstr(msg, "(searched: (empty PATH);"));
  pk__free(msg);
  wsetenv(L"PATH", old_path);
}

static void invalid_utf8(void **state) {
  (void)state;
  char *got = NULL, *msg = NULL;
  assert_int_equal(pk__resolve_program("to\xffol", "C:\\", NULL, &got, &msg),
                   PK_EINVAL);
  assert_string_equal(msg, "the program is not valid UTF-8");
  pk__free(msg);
  assert_int_equal(pk__resolve_program("tool", "C:\\\xc3", NULL, &got, &msg),
                   PK_EINVAL);
  assert_string_equal(msg, "the PATH is not valid UTF-8");
  pk__free(msg);
  assert_int_equal(pk__resolve_program("a\\t", NULL, "\xe2\x82", &got, &msg),
                   PK_EINVAL);
  assert_string_equal(msg, "the cwd is not valid UTF-8");
  pk__free(msg);
  assert_null(got);
}

/* Counting allocator that fails once its budget is spent. */
static long live, budget = -1;
static void *c_malloc(size_t n) {
  if (budget == 0)
    return NULL;
  if (budget > 0)
    budget--;
  void *p = malloc(n);
  live += p != NULL;
  return p;
}
static void *c_realloc(void *p, size_t n) {
  if (p == NULL)
    return c_malloc(n);
  if (budget == 0)
    return NULL;
  if (budget > 0)
    budget--;
  return realloc(p, n);
}
static void *c_calloc(size_t n, size_t size) {
  void *p = c_malloc(n * size);
  if (p != NULL)
    memset(p, 0, n * size);
  return p;
}
static void c_free(void *p) {
  live -= p != NULL;
  free(p);
}

static void out_of_memory(void **state) {
  (void)state;
  wsetenv(L"PATHEXT", L".CMD;.EXE"); /* one more allocation to fail */
  pkt_setenv("PATH", path_of("b", "a"));
  const char *progs[] = {"tool", "a\\tool", "nothere", "a\\nothere"};
  const int wants[] = {0, 0, PK_ENOENT, PK_ENOENT};
  for (size_t k = 0; k < 4; k++) {
    int rc = PK_ENOMEM;
    long n;
    for (n = 0; rc == PK_ENOMEM && n < 200; n++) {
      char *got = NULL, *msg = NULL;
      live = 0;
      budget = n;
      pk_replace_allocator(c_malloc, c_realloc, c_calloc, c_free);
      rc = pk__resolve_program(progs[k], NULL, root, &got, &msg);
      pk__free(got);
      pk__free(msg);
      pk_replace_allocator(NULL, NULL, NULL, NULL);
      budget = -1;
      if (live != 0)
        fail_msg("%s, %ld allocations: %ld blocks leaked", progs[k], n, live);
      if (rc == PK_ENOMEM)
        assert_true(got == NULL && msg == NULL);
    }
    assert_int_equal(rc, wants[k]);
    print_message("%s: done once the first %ld allocations could succeed\n",
                  progs[k], n - 1);
  }
  wsetenv(L"PATHEXT", NULL);
  wsetenv(L"PATH", old_path);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(search_order),
      cmocka_unit_test(pathext_order),
      cmocka_unit_test(explicit_extension),
      cmocka_unit_test(quoted_and_empty_entries),
      cmocka_unit_test(relative_and_absolute_paths),
      cmocka_unit_test(drive_relative),
      cmocka_unit_test(directories_skipped),
      cmocka_unit_test(not_found_messages),
      cmocka_unit_test(current_directory_not_searched),
      cmocka_unit_test(process_path),
      cmocka_unit_test(invalid_utf8),
      cmocka_unit_test(out_of_memory),
  };
  return cmocka_run_group_tests(tests, setup, teardown);
}
#endif
