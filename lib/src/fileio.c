/* Plain file I/O through libuv's synchronous fs calls, so every host gets
 * the same behaviour (UTF-8 paths on Windows, close-on-exec everywhere). */
#include "internal.h"

#include <string.h>

int pk__fd_open(const char *path, int flags, int mode) {
  uv_fs_t req;
  int rc = uv_fs_open(NULL, &req, path, flags, mode, NULL);
  uv_fs_req_cleanup(&req);
  return rc;
}

int64_t pk__fd_read(int fd, void *buf, size_t len) {
  uv_buf_t b = uv_buf_init(buf, len > 1u << 30 ? 1u << 30 : (unsigned)len);
  for (;;) {
    uv_fs_t req;
    int rc = uv_fs_read(NULL, &req, fd, &b, 1, -1, NULL);
    uv_fs_req_cleanup(&req);
    if (rc != UV_EINTR)
      return rc;
  }
}

int pk__fd_write_all(int fd, const void *data, size_t len) {
  const char *p = data;
  while (len > 0) {
    uv_buf_t b =
        uv_buf_init((char *)p, len > 1u << 30 ? 1u << 30 : (unsigned)len);
    uv_fs_t req;
    int rc = uv_fs_write(NULL, &req, fd, &b, 1, -1, NULL);
    uv_fs_req_cleanup(&req);
    if (rc == UV_EINTR)
      continue;
    if (rc < 0)
      return rc;
    if (rc == 0)
      return UV_EIO;
    p += rc;
    len -= (size_t)rc;
  }
  return 0;
}

int pk__fd_close(int fd) {
  uv_fs_t req;
  int rc = uv_fs_close(NULL, &req, fd, NULL);
  uv_fs_req_cleanup(&req);
  return rc;
}

int pk__fd_regular_size(int fd, uint64_t *size) {
  uv_fs_t req;
  int rc = uv_fs_fstat(NULL, &req, fd, NULL);
  if (rc == 0) {
    *size = req.statbuf.st_size;
    rc = (req.statbuf.st_mode & S_IFMT) == S_IFREG ? 0 : 1;
  }
  uv_fs_req_cleanup(&req);
  return rc;
}

bool pk__fd_is_tty(int fd) { return uv_guess_handle(fd) == UV_TTY; }

const char *pk__cwd(char *buf, size_t len) {
  size_t n = len;
  return uv_cwd(buf, &n) == 0 ? buf : NULL;
}
