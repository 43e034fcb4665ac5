/* The harness on Windows: leak snapshots count this process's handles and
 * its live child processes (Toolhelp). */
#include "harness.h"

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <windows.h>
/* after windows.h */
#include <tlhelp32.h>

int pkt_setup(void **state) {
  (void)state;
  /* libuv's process-wide state (its once-initialised globals, the
   * threadpool's first use) before any snapshot is taken. */
  uv_loop_t loop;
  if (uv_loop_init(&loop) != 0)
    return -1;
  uv_run(&loop, UV_RUN_NOWAIT);
  return uv_loop_close(&loop) == 0 ? 0 : -1;
}

static int handle_count(void) {
  DWORD n = 0;
  GetProcessHandleCount(GetCurrentProcess(), &n);
  return (int)n;
}

/* Live processes whose parent is this one. */
int pkt_count_children(void) {
  HANDLE snap = CreateToolhelp32Snapshot(TH32CS_SNAPPROCESS, 0);
  if (snap == INVALID_HANDLE_VALUE)
    return -1;
  DWORD self = GetCurrentProcessId();
  PROCESSENTRY32W e;
  e.dwSize = sizeof(e);
  int n = 0;
  for (BOOL ok = Process32FirstW(snap, &e); ok; ok = Process32NextW(snap, &e))
    if (e.th32ParentProcessID == self && e.th32ProcessID != self)
      n++;
  CloseHandle(snap);
  return n;
}

void pkt_snapshot_take(pkt_snapshot *s) {
  memset(s, 0, sizeof(*s));
  s->nfds = handle_count();
  s->nchildren = pkt_count_children();
}

/* Handles and children settle (a closing handle, a child being torn
 * down): wait up to 10 s for the counts to come back before failing. */
void pkt_snapshot_check(const pkt_snapshot *s) {
  uint64_t deadline = pkt_now_ms() + 10000;
  int handles = handle_count(), children = pkt_count_children();
  while ((handles > s->nfds || children > s->nchildren) &&
         pkt_now_ms() < deadline) {
    Sleep(10);
    handles = handle_count();
    children = pkt_count_children();
  }
  if (children > s->nchildren)
    fail_msg("child processes: %d before, %d after", s->nchildren, children);
  if (handles > s->nfds)
    fail_msg("open handles: %d before, %d after", s->nfds, handles);
}

/* pk reads the C runtime's copy of the environment (getenv, environ),
 * which SetEnvironmentVariable (uv_os_setenv) leaves alone; _putenv_s
 * updates both. An empty value removes the variable here. */
void pkt_setenv(const char *name, const char *value) {
  if (_putenv_s(name, value) != 0)
    fail_msg("setenv %s: failed", name);
}

void pkt_unsetenv(const char *name) {
  if (_putenv_s(name, "") != 0)
    fail_msg("unsetenv %s: failed", name);
}
