/* Windows: host state, mechanism availability and loop waiting. */
#include "internal.h"
#include "win.h"

#include <fcntl.h>
#include <io.h>
#include <stdio.h>

wchar_t *pk__wide(const char *s) {
  int n = MultiByteToWideChar(CP_UTF8, MB_ERR_INVALID_CHARS, s, -1, NULL, 0);
  if (n <= 0)
    return NULL;
  wchar_t *w = pk__malloc((size_t)n * sizeof(wchar_t));
  if (w != NULL &&
      MultiByteToWideChar(CP_UTF8, MB_ERR_INVALID_CHARS, s, -1, w, n) != n) {
    pk__free(w);
    w = NULL;
  }
  return w;
}

const char *pk__win_msg(DWORD err, char *buf, size_t len) {
  DWORD n =
      FormatMessageA(FORMAT_MESSAGE_FROM_SYSTEM | FORMAT_MESSAGE_IGNORE_INSERTS,
                     NULL, err, 0, buf, (DWORD)len, NULL);
  while (n > 0 && (buf[n - 1] == '\n' || buf[n - 1] == '\r' ||
                   buf[n - 1] == ' ' || buf[n - 1] == '.'))
    buf[--n] = '\0';
  /* the number too: a text such as "Internal error" alone names nothing
   * a user can look up */
  if (n == 0)
    snprintf(buf, len, "Windows error %lu", (unsigned long)err);
  else if (n < len)
    snprintf(buf + n, len - n, " (Windows error %lu)", (unsigned long)err);
  return buf;
}

/* As on POSIX: a C runtime descriptor 0-2 that is not open gets the
 * null device, so no pipe pk makes can take the number (uv_pipe_open
 * takes 0-2 for this process's own streams and duplicates them, leaving
 * the pipe end open behind pk's back). */
int pk__host_check(void) {
  for (int fd = 0; fd < 3; fd++) {
    if (_get_osfhandle(fd) != -1)
      continue;
    int nul = _open("NUL", _O_RDWR | _O_BINARY);
    if (nul < 0)
      return PK_ELIMIT;
    if (nul > 2) { /* fd was open after all (a race): keep it as it is */
      _close(nul);
      continue;
    }
  }
  return 0;
}

bool pk__host_signals(void) { return false; }

int pk__map_uv_error(int rc) {
  return rc == UV_EMFILE || rc == UV_ENFILE ? PK_ELIMIT : rc;
}

/* libuv's Windows loop has no descriptor to poll (an I/O completion port
 * cannot be waited on without taking its packets), so loops are waited on
 * in slices: a run is noticed at most 5 ms after it has work. */
void pk__loops_wait(uv_loop_t *const *loops, size_t n, int timeout_ms) {
  int wait = timeout_ms;
  for (size_t i = 0; i < n; i++) {
    int t = uv_backend_timeout(loops[i]);
    if (t >= 0 && (wait < 0 || t < wait))
      wait = t;
  }
  Sleep((DWORD)(wait < 0 || wait > 5 ? 5 : wait));
}

int pk_mechanism_available(pk_mechanism m) {
  return m == PK_MECH_AUTO || m == PK_MECH_JOB_OBJECT ? 0 : PK_EUNSUPPORTED;
}

bool pk__win_is_wine(void) {
  HMODULE ntdll = GetModuleHandleW(L"ntdll.dll");
  return ntdll != NULL && GetProcAddress(ntdll, "wine_get_version") != NULL;
}

pk_mechanism pk_mechanism_best(void) { return PK_MECH_JOB_OBJECT; }
