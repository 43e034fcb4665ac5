/* POSIX: the directory lock (flock on the directory itself, so no lock
 * file is left behind) and the atomic replace (a temporary file, fsync,
 * rename, fsync the directory). */
#include "file.h"
#include "internal.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

int pkc_lock_dir(const char *path, int *lock_fd, char *errmsg, size_t errlen) {
  *lock_fd = -1;
  char *dir = pkc__dir_of(path);
  if (dir == NULL)
    return PK_ENOMEM;
  int rc = 0, fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0)
    rc = pkc__set_err(errmsg, errlen, PK_EIO,
                      "%s: cannot open the directory to lock it: %s", dir,
                      strerror(errno));
  while (rc == 0 && flock(fd, LOCK_EX) != 0)
    if (errno != EINTR) {
      rc = pkc__set_err(errmsg, errlen, PK_EIO, "%s: cannot lock: %s", dir,
                        strerror(errno));
      close(fd);
    }
  if (rc == 0)
    *lock_fd = fd;
  pk__free(dir);
  return rc;
}

static int write_all(int fd, const char *data, size_t len) {
  while (len > 0) {
    ssize_t n = write(fd, data, len);
    if (n < 0 && errno == EINTR)
      continue;
    if (n < 0)
      return -1;
    data += n;
    len -= (size_t)n;
  }
  return 0;
}

static void fsync_dir(const char *path) {
  char *dir = pkc__dir_of(path);
  int dfd = dir != NULL ? open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC) : -1;
  if (dfd >= 0) {
    fsync(dfd);
    close(dfd);
  }
  pk__free(dir);
}

static int refuse_non_regular(const char *path, char *errmsg, size_t errlen) {
  struct stat st;
  if (lstat(path, &st) == 0 && !S_ISREG(st.st_mode))
    return pkc__set_err(
        errmsg, errlen, PK_EACCES,
        "%s: not a regular file (a symlink?); refusing to write "
        "through it",
        path);
  return 0;
}

int pkc_check_writable(const char *path, char *errmsg, size_t errlen) {
  int rc = refuse_non_regular(path, errmsg, errlen);
  if (rc != 0)
    return rc;
  char *dir = pkc__dir_of(path);
  if (dir == NULL)
    return PK_ENOMEM;
  if (access(dir, W_OK | X_OK) != 0) {
    int err = errno;
    rc = pkc__set_err(errmsg, errlen, err == ENOENT ? PK_EIO : PK_EACCES,
                      "%s: cannot create files in %s: %s", path, dir,
                      strerror(err));
  }
  pk__free(dir);
  return rc;
}

int pkc_replace_file(const char *path, const char *data, size_t len,
                     char *errmsg, size_t errlen) {
  int nr = refuse_non_regular(path, errmsg, errlen);
  if (nr != 0)
    return nr;
  char *tmp = pk__sprintf("%s.tmp-XXXXXX", path);
  if (tmp == NULL)
    return PK_ENOMEM;
  int fd = mkostemp(tmp, O_CLOEXEC);
  if (fd < 0) {
    int err = errno;
    pk__free(tmp);
    return pkc__set_err(errmsg, errlen, err == EACCES ? PK_EACCES : PK_EIO,
                        "%s: cannot create a temporary file: %s", path,
                        strerror(err));
  }
  int rc = 0;
  if (fchmod(fd, 0600) != 0 || write_all(fd, data, len) != 0 || fsync(fd) != 0)
    rc = pkc__set_err(errmsg, errlen, PK_EIO, "%s: cannot write: %s", path,
                      strerror(errno));
  if (close(fd) != 0 && rc == 0)
    rc = pkc__set_err(errmsg, errlen, PK_EIO, "%s: cannot write: %s", path,
                      strerror(errno));
  if (rc == 0 && rename(tmp, path) != 0)
    rc = pkc__set_err(errmsg, errlen, PK_EIO, "%s: cannot replace: %s", path,
                      strerror(errno));
  if (rc != 0)
    unlink(tmp);
  pk__free(tmp);
  if (rc == 0)
    fsync_dir(path);
  return rc;
}
