/* Windows: the directory lock (LockFileEx on .pk-cassettes.lock in the
 * directory, a file that goes with its last holder) and the atomic replace (a
 * temporary file in the same directory, flushed, then ReplaceFileW over an
 * existing file or MoveFileExW onto a new name). Paths are UTF-8. */
#include "file.h"
#include "internal.h"
#include "win.h"

#include <fcntl.h>
#include <io.h>
#include <stdio.h>
#include <string.h>
#include <windows.h>

static int code_of(DWORD err) {
  return err == ERROR_ACCESS_DENIED || err == ERROR_SHARING_VIOLATION
             ? PK_EACCES
             : PK_EIO;
}

/* The last failure on this thread was STATUS_DELETE_PENDING (the file
 * is going away), not a real refusal. Without ntdll's
 * RtlGetLastNtStatus, assumed so. */
static bool delete_pending(void) {
  typedef LONG(WINAPI * last_status_fn)(void);
  HMODULE ntdll = GetModuleHandleW(L"ntdll.dll");
  last_status_fn f = ntdll != NULL
                         ? (last_status_fn)(void (*)(void))GetProcAddress(
                               ntdll, "RtlGetLastNtStatus")
                         : NULL;
  return f == NULL || (ULONG)f() == 0xC0000056u; /* STATUS_DELETE_PENDING */
}

int pkc_lock_dir(const char *path, int *lock_fd, char *errmsg, size_t errlen) {
  *lock_fd = -1;
  char *dir = pkc__dir_of(path);
  char *lock = dir != NULL ? pk__sprintf("%s\\.pk-cassettes.lock", dir) : NULL;
  wchar_t *w = lock != NULL ? pk__wide(lock) : NULL;
  int rc = 0;
  char m[256];
  if (w == NULL) {
    rc = lock == NULL ? PK_ENOMEM
                      : pkc__set_err(errmsg, errlen, PK_EINVAL,
                                     "%s: not valid UTF-8", path);
    goto out;
  }
  /* Deleted when the last handle closes, so no lock file is left in the
   * user's directory. Once its holder closed it while others wait on it,
   * it is "delete pending" and new opens are refused (access denied)
   * until those are done too: that is retried (for up to 30 s), as is a
   * sharing violation (a scanner holding the file, up to 5 s); any other
   * refusal is an error at once. */
  HANDLE h;
  DWORD e = 0;
  ULONGLONG t0 = GetTickCount64();
  for (;;) {
    h = CreateFileW(w, GENERIC_READ | GENERIC_WRITE,
                    FILE_SHARE_READ | FILE_SHARE_WRITE | FILE_SHARE_DELETE,
                    NULL, OPEN_ALWAYS,
                    FILE_ATTRIBUTE_HIDDEN | FILE_FLAG_DELETE_ON_CLOSE, NULL);
    e = h == INVALID_HANDLE_VALUE ? GetLastError() : 0;
    ULONGLONG waited = GetTickCount64() - t0;
    if (!(e == ERROR_ACCESS_DENIED && delete_pending() && waited < 30000) &&
        !(e == ERROR_SHARING_VIOLATION && waited < 5000))
      break;
    Sleep(1);
  }
  if (h == INVALID_HANDLE_VALUE) {
    rc = pkc__set_err(errmsg, errlen, PK_EIO,
                      "%s: cannot open the lock file %s: %s", path, lock,
                      pk__win_msg(e, m, sizeof(m)));
    goto out;
  }
  OVERLAPPED ov;
  memset(&ov, 0, sizeof(ov));
  if (!LockFileEx(h, LOCKFILE_EXCLUSIVE_LOCK, 0, 1, 0, &ov)) {
    e = GetLastError();
    CloseHandle(h);
    rc = pkc__set_err(errmsg, errlen, PK_EIO, "%s: cannot lock %s: %s", path,
                      lock, pk__win_msg(e, m, sizeof(m)));
    goto out;
  }
  /* A C runtime descriptor, so pkc_unlock closes it like the POSIX one:
   * closing the handle releases the lock. */
  int fd = _open_osfhandle((intptr_t)h, _O_RDWR);
  if (fd < 0) {
    CloseHandle(h);
    rc = pkc__set_err(errmsg, errlen, PK_EIO, "%s: cannot lock %s", path, lock);
    goto out;
  }
  *lock_fd = fd;
out:
  pk__free(w);
  pk__free(lock);
  pk__free(dir);
  return rc;
}

/* A path that exists and is a directory or a reparse point (a symlink or
 * a junction) is refused. */
static int refuse_non_regular(const char *path, const wchar_t *w, char *errmsg,
                              size_t errlen) {
  DWORD a = GetFileAttributesW(w);
  if (a != INVALID_FILE_ATTRIBUTES &&
      (a & (FILE_ATTRIBUTE_DIRECTORY | FILE_ATTRIBUTE_REPARSE_POINT)) != 0)
    return pkc__set_err(errmsg, errlen, PK_EACCES,
                        "%s: not a regular file (a symlink?); refusing to "
                        "write through it",
                        path);
  return 0;
}

int pkc_check_writable(const char *path, char *errmsg, size_t errlen) {
  wchar_t *w = pk__wide(path);
  if (w == NULL)
    return pkc__set_err(errmsg, errlen, PK_EINVAL, "%s: not valid UTF-8", path);
  int rc = refuse_non_regular(path, w, errmsg, errlen);
  pk__free(w);
  if (rc != 0)
    return rc;
  char *dir = pkc__dir_of(path);
  wchar_t *wd = dir != NULL ? pk__wide(dir) : NULL;
  if (wd == NULL) {
    pk__free(dir);
    return PK_ENOMEM;
  }
  DWORD a = GetFileAttributesW(wd);
  if (a == INVALID_FILE_ATTRIBUTES || (a & FILE_ATTRIBUTE_DIRECTORY) == 0)
    rc = pkc__set_err(errmsg, errlen, PK_EIO,
                      "%s: cannot create files in %s: no such directory", path,
                      dir);
  else if ((a & FILE_ATTRIBUTE_READONLY) != 0)
    rc = pkc__set_err(errmsg, errlen, PK_EACCES,
                      "%s: cannot create files in %s: read-only", path, dir);
  pk__free(wd);
  pk__free(dir);
  return rc;
}

int pkc_replace_file(const char *path, const char *data, size_t len,
                     char *errmsg, size_t errlen) {
  wchar_t *w = pk__wide(path);
  if (w == NULL)
    return pkc__set_err(errmsg, errlen, PK_EINVAL, "%s: not valid UTF-8", path);
  int rc = refuse_non_regular(path, w, errmsg, errlen);
  char m[256];
  char *tmp = NULL;
  wchar_t *wt = NULL;
  HANDLE h = INVALID_HANDLE_VALUE;
  for (unsigned i = 0; rc == 0 && h == INVALID_HANDLE_VALUE; i++) {
    pk__free(tmp);
    pk__free(wt);
    tmp =
        pk__sprintf("%s.tmp-%lu-%u", path, (unsigned long)GetCurrentProcessId(),
                    (unsigned)(GetTickCount() + i));
    wt = tmp != NULL ? pk__wide(tmp) : NULL;
    if (wt == NULL) {
      rc = PK_ENOMEM;
      break;
    }
    h = CreateFileW(wt, GENERIC_WRITE, 0, NULL, CREATE_NEW,
                    FILE_ATTRIBUTE_NORMAL, NULL);
    if (h == INVALID_HANDLE_VALUE) {
      DWORD e = GetLastError();
      if (e != ERROR_FILE_EXISTS || i > 100)
        rc = pkc__set_err(errmsg, errlen, code_of(e),
                          "%s: cannot create a temporary file: %s", path,
                          pk__win_msg(e, m, sizeof(m)));
    }
  }
  if (rc == 0) {
    const char *p = data;
    size_t left = len;
    while (rc == 0 && left > 0) {
      DWORD n = 0, want = left > (1u << 30) ? (1u << 30) : (DWORD)left;
      if (!WriteFile(h, p, want, &n, NULL) || n == 0)
        rc = pkc__set_err(errmsg, errlen, PK_EIO, "%s: cannot write: %s", path,
                          pk__win_msg(GetLastError(), m, sizeof(m)));
      p += n;
      left -= n;
    }
    if (rc == 0 && !FlushFileBuffers(h))
      rc = pkc__set_err(errmsg, errlen, PK_EIO, "%s: cannot write: %s", path,
                        pk__win_msg(GetLastError(), m, sizeof(m)));
  }
  if (h != INVALID_HANDLE_VALUE)
    CloseHandle(h);
  if (rc == 0) {
    /* ReplaceFileW keeps the old file's attributes and security; it needs
     * an existing file, so a new one is moved into place instead. */
    bool done =
        GetFileAttributesW(w) != INVALID_FILE_ATTRIBUTES &&
        ReplaceFileW(w, wt, NULL, REPLACEFILE_IGNORE_MERGE_ERRORS, NULL, NULL);
    if (!done &&
        !MoveFileExW(wt, w,
                     MOVEFILE_REPLACE_EXISTING | MOVEFILE_WRITE_THROUGH)) {
      DWORD e = GetLastError();
      rc = pkc__set_err(errmsg, errlen, code_of(e), "%s: cannot replace: %s",
                        path, pk__win_msg(e, m, sizeof(m)));
    }
  }
  if (rc != 0 && wt != NULL)
    DeleteFileW(wt);
  pk__free(wt);
  pk__free(tmp);
  pk__free(w);
  return rc;
}
