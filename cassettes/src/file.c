/* A cassette file on disk: what every host does the same way (file.h).
 * The directory lock and the atomic replace are in file_posix.c and
 * file_win.c. */
#include "file.h"
#include "internal.h"

#include <pk/cassette.h>

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

int pkc__set_err(char *errmsg, size_t errlen, int rc, const char *fmt, ...) {
  if (errmsg != NULL && errlen > 0) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(errmsg, errlen, fmt, ap);
    va_end(ap);
  }
  return rc;
}

static bool is_sep(char c) {
  return c == '/' || (PKC_BACKSLASH_SEP && c == '\\');
}

char *pkc__dir_of(const char *path) {
  size_t n = strlen(path);
  while (n > 1 && is_sep(path[n - 1])) /* "a/b/" is in "a" */
    n--;
  while (n > 0 && !is_sep(path[n - 1]))
    n--;
  if (n == 0)
    return pk__strdup(".");
  size_t keep = n;
  while (keep > 1 && is_sep(path[keep - 1]))
    keep--;
  /* "/x" is in "/"; on Windows "C:\\x" is in "C:\\". */
  if (keep == 1 && is_sep(path[0]))
    return pk__sprintf("%c", path[0]);
  if (PKC_BACKSLASH_SEP && keep == 2 && path[1] == ':')
    return pk__sprintf("%.3s", path);
  return pk__sprintf("%.*s", (int)keep, path);
}

bool pkc_same_bytes(const char *path, const char *data, size_t len) {
  int fd = pk__fd_open(path, UV_FS_O_RDONLY | UV_FS_O_NOFOLLOW, 0);
  if (fd < 0)
    return false;
  uint64_t size = 0;
  bool same = pk__fd_regular_size(fd, &size) == 0 && size == len;
  char buf[65536];
  size_t off = 0;
  while (same && off < len) {
    int64_t n = pk__fd_read(fd, buf, sizeof(buf));
    if (n <= 0 || (size_t)n > len - off ||
        memcmp(buf, data + off, (size_t)n) != 0)
      same = false;
    else
      off += (size_t)n;
  }
  pk__fd_close(fd);
  return same;
}

void pkc_unlock(int lock) {
  if (lock >= 0)
    pk__fd_close(lock);
}

int pk_cassette_make_dirs(const char *path) {
  if (path == NULL)
    return PK_EINVAL;
  char *p = pk__strdup(path);
  if (p == NULL)
    return PK_ENOMEM;
  int rc = 0;
  for (char *q = p + 1; rc == 0 && *q != '\0'; q++) {
    if (!is_sep(*q) || is_sep(q[-1]) || (q - p == 2 && p[1] == ':'))
      continue; /* not a separator, a repeated one, or a drive's "C:" */
    char c = *q;
    *q = '\0';
    uv_fs_t req;
    rc = uv_fs_mkdir(NULL, &req, p, 0777, NULL);
    uv_fs_req_cleanup(&req);
    if (rc == UV_EEXIST)
      rc = 0;
    *q = c;
  }
  pk__free(p);
  return rc;
}
