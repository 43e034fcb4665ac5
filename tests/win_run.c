/* Windows suites: runs driven from their own loop (see win_run.h). */
#include "win_run.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
/* after windows.h */
#include <tlhelp32.h>

static void on_line(pk_proc *p, pk_stream s, const char *line, size_t len,
                    void *data) {
  (void)p;
  pkt_run *r = data;
  if (s == PK_STDOUT && r->nlines < 32) {
    snprintf(r->lines[r->nlines], sizeof(r->lines[0]), "%.*s", (int)len, line);
    r->nlines++;
  }
}

static void on_exit_cb(pk_proc *p, void *data) {
  (void)p;
  ((pkt_run *)data)->exited = true;
}

static void on_guard(uv_timer_t *t) {
  ((pkt_run *)t->data)->guard_fired = true;
}

void pkt_run_start(pkt_run *r, pk_runner *rn, pk_cmd *cmd) {
  memset(r, 0, sizeof(*r));
  assert_int_equal(uv_loop_init(&r->loop), 0);
  uv_timer_init(&r->loop, &r->guard);
  r->guard.data = r;
  pk_start_opts o = {
      .loop = &r->loop, .on_line = on_line, .on_exit = on_exit_cb, .data = r};
  PKT_ASSERT_OK(pk_start(rn, cmd, &o, &r->p));
}

void pkt_run_until_lines(pkt_run *r, int n) {
  uv_timer_start(&r->guard, on_guard, PKT_WAIT_MS, 0);
  while (r->nlines < n && !r->exited && !r->guard_fired)
    uv_run(&r->loop, UV_RUN_ONCE);
  uv_timer_stop(&r->guard);
  if (r->nlines < n)
    fail_msg("%d of %d lines before %s", r->nlines, n,
             r->exited ? "the run ended" : "the bound");
}

void pkt_run_until_exit(pkt_run *r) {
  uv_timer_start(&r->guard, on_guard, PKT_WAIT_MS, 0);
  while (!r->exited && !r->guard_fired)
    uv_run(&r->loop, UV_RUN_ONCE);
  uv_timer_stop(&r->guard);
  assert_true(r->exited);
}

void pkt_run_close(pkt_run *r) {
  pk_proc_free(r->p);
  r->p = NULL;
  uv_close((uv_handle_t *)&r->guard, NULL);
  uv_run(&r->loop, UV_RUN_DEFAULT);
  assert_int_equal(uv_loop_close(&r->loop), 0);
}

bool pkt_under_wine(void) {
  HMODULE ntdll = GetModuleHandleW(L"ntdll.dll");
  return ntdll != NULL && GetProcAddress(ntdll, "wine_get_version") != NULL;
}

HANDLE pkt_open_pid(const char *line, const char *prefix) {
  size_t n = strlen(prefix);
  assert_memory_equal(line, prefix, n);
  unsigned long pid = strtoul(line + n, NULL, 10);
  assert_true(pid > 0);
  HANDLE h = OpenProcess(SYNCHRONIZE | PROCESS_QUERY_LIMITED_INFORMATION, FALSE,
                         (DWORD)pid);
  assert_non_null(h);
  return h;
}

void pkt_assert_all_gone(HANDLE *hs, int n) {
  for (int i = 0; i < n; i++) {
    assert_int_equal(WaitForSingleObject(hs[i], 0), WAIT_OBJECT_0);
    CloseHandle(hs[i]);
  }
}

int pkt_suspend_count(DWORD pid) {
  HANDLE snap = CreateToolhelp32Snapshot(TH32CS_SNAPTHREAD, 0);
  if (snap == INVALID_HANDLE_VALUE)
    return -1;
  THREADENTRY32 te;
  te.dwSize = sizeof(te);
  int count = -1;
  for (BOOL ok = Thread32First(snap, &te); ok && count < 0;
       ok = Thread32Next(snap, &te)) {
    if (te.th32OwnerProcessID != pid)
      continue;
    HANDLE t = OpenThread(THREAD_SUSPEND_RESUME, FALSE, te.th32ThreadID);
    if (t == NULL)
      continue;
    DWORD prev = SuspendThread(t);
    if (prev != (DWORD)-1) {
      ResumeThread(t);
      count = (int)prev;
    }
    CloseHandle(t);
  }
  CloseHandle(snap);
  return count;
}
