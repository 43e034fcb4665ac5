/* pk-bench on Windows: the raw baseline (CreatePipe + CreateProcessW,
 * what a careful C program writes by hand), the careful writer's
 * replace, and the sections that time POSIX mechanisms, which say they
 * were skipped and why. Under wine the figures are informational only:
 * wine is no performance reference. */
#include "bench.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <windows.h>

#define READ_BUF (64 * 1024)

void bench_os_init(void) {}

double thread_cpu_s(void) {
  FILETIME created, exited, kernel, user;
  if (!GetThreadTimes(GetCurrentThread(), &created, &exited, &kernel, &user))
    die("GetThreadTimes: error %lu", GetLastError());
  ULARGE_INTEGER k = {.LowPart = kernel.dwLowDateTime,
                      .HighPart = kernel.dwHighDateTime};
  ULARGE_INTEGER u = {.LowPart = user.dwLowDateTime,
                      .HighPart = user.dwHighDateTime};
  return (double)(k.QuadPart + u.QuadPart) / 1e7;
}

/* UTF-8 to a new UTF-16 string (free). */
static wchar_t *wide(const char *s) {
  int n = MultiByteToWideChar(CP_UTF8, MB_ERR_INVALID_CHARS, s, -1, NULL, 0);
  wchar_t *w = n > 0 ? malloc((size_t)n * sizeof(wchar_t)) : NULL;
  if (w == NULL ||
      MultiByteToWideChar(CP_UTF8, MB_ERR_INVALID_CHARS, s, -1, w, n) != n)
    die("cannot convert '%s' to UTF-16", s);
  return w;
}

/* The command line of argv. The bench's own arguments (a path, a mode, a
 * number) need at most the quotes around an argument with a space; one
 * with a quote would need the full MSVCRT rules, so it is refused. */
static char *command_line(char *const argv[]) {
  size_t len = 1;
  for (size_t i = 0; argv[i] != NULL; i++) {
    if (strchr(argv[i], '"') != NULL)
      die("argument with a quote: %s", argv[i]);
    len += strlen(argv[i]) + 3;
  }
  char *line = malloc(len), *p = line;
  if (line == NULL)
    die("out of memory");
  for (size_t i = 0; argv[i] != NULL; i++) {
    bool q = argv[i][0] == '\0' || strpbrk(argv[i], " \t") != NULL;
    p += sprintf(p, "%s%s%s%s", i > 0 ? " " : "", q ? "\"" : "", argv[i],
                 q ? "\"" : "");
  }
  return line;
}

uint64_t raw_spawn(char *const argv[], bool bigpipe) {
  SECURITY_ATTRIBUTES sa = {.nLength = sizeof(sa), .bInheritHandle = TRUE};
  HANDLE rd, wr;
  if (!CreatePipe(&rd, &wr, &sa, bigpipe ? BIG_PIPE : 0))
    die("CreatePipe: error %lu", GetLastError());
  if (!SetHandleInformation(rd, HANDLE_FLAG_INHERIT, 0))
    die("SetHandleInformation: error %lu", GetLastError());
  STARTUPINFOW si = {
      .cb = sizeof(si), .dwFlags = STARTF_USESTDHANDLES, .hStdOutput = wr};
  PROCESS_INFORMATION pi;
  char *line = command_line(argv);
  wchar_t *wapp = wide(argv[0]), *wline = wide(line);
  BOOL ok =
      CreateProcessW(wapp, wline, NULL, NULL, TRUE, 0, NULL, NULL, &si, &pi);
  DWORD err = GetLastError();
  free(wapp);
  free(wline);
  free(line);
  CloseHandle(wr);
  if (!ok)
    die("CreateProcessW %s: error %lu", argv[0], err);
  CloseHandle(pi.hThread);
  static char buf[READ_BUF];
  uint64_t total = 0;
  DWORD n;
  while (ReadFile(rd, buf, sizeof(buf), &n, NULL) && n > 0)
    total += n;
  err = GetLastError();
  if (err != ERROR_BROKEN_PIPE && err != ERROR_SUCCESS)
    die("ReadFile: error %lu", err);
  CloseHandle(rd);
  DWORD code = 1;
  if (WaitForSingleObject(pi.hProcess, INFINITE) != WAIT_OBJECT_0 ||
      !GetExitCodeProcess(pi.hProcess, &code) || code != 0)
    die("%s did not exit 0 (code %lu)", argv[0], code);
  CloseHandle(pi.hProcess);
  return total;
}

bool raw_extra_available(int variant) {
  (void)variant;
  return false; /* no cgroups, no fork */
}

void raw_extra_spawn(int variant, char *const argv[]) {
  (void)argv;
  die("spawn variant %d is not available on Windows", variant);
}

void raw_extra_fini(void) {}

void raw_replace(const char *dir, const char *tmp, const char *path,
                 const char *data, size_t len) {
  (void)dir; /* MOVEFILE_WRITE_THROUGH flushes the rename itself */
  wchar_t *wt = wide(tmp), *wp = wide(path);
  HANDLE h = CreateFileW(wt, GENERIC_WRITE, 0, NULL, CREATE_ALWAYS,
                         FILE_ATTRIBUTE_NORMAL, NULL);
  if (h == INVALID_HANDLE_VALUE)
    die("%s: error %lu", tmp, GetLastError());
  for (size_t off = 0; off < len;) {
    DWORD n, want = len - off > (1u << 30) ? (1u << 30) : (DWORD)(len - off);
    if (!WriteFile(h, data + off, want, &n, NULL))
      die("WriteFile %s: error %lu", tmp, GetLastError());
    off += n;
  }
  if (!FlushFileBuffers(h) || !CloseHandle(h) ||
      !MoveFileExW(wt, wp, MOVEFILE_REPLACE_EXISTING | MOVEFILE_WRITE_THROUGH))
    die("%s: error %lu", path, GetLastError());
  free(wt);
  free(wp);
}

void bench_guardian(int iters, int batches, bench_ctx *c) {
  (void)iters, (void)batches, (void)c;
  printf("guardian: skipped (needs cgroup_v2; a Windows job is killed with "
         "its last handle, no guardian needed)\n");
}

int bench_first_run(const char *kind) {
  die("--first-run %s: the guardian section is POSIX only", kind);
}

void bench_teardown(const char *fixture, int batches) {
  (void)fixture, (void)batches;
  printf("teardown: skipped (times the cgroup_v2 and process_group "
         "mechanisms)\n");
}

void bench_freeze(const char *fixture, int batches) {
  (void)fixture, (void)batches;
  printf("freeze: skipped (times the cgroup_v2 and process_group "
         "mechanisms)\n");
}
