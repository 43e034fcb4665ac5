/* A cassette file on disk, for every writer (the cassette's save and the
 * pk cassette commands): the directory lock all savers take, and the
 * atomic replace. Internal to cassettes/ and the tools.
 *
 * How to rewrite a cassette:
 * 1. pkc_lock_dir(path, &lock, ...) (waits for other savers);
 * 2. pkc_load it, change it, pkc_emit it;
 * 3. pkc_replace_file(path, data, len, ...);
 * 4. pkc_unlock(lock). */
#ifndef PK_CASSETTE_FILE_H
#define PK_CASSETTE_FILE_H

#include "internal.h"

#include <stdbool.h>
#include <stddef.h>

/* Lock the directory that holds path, so every cassette in it is
 * serialized: POSIX takes flock(LOCK_EX) on the directory itself (no lock
 * file is left behind); Windows takes LockFileEx on the file
 * .pk-cassettes.lock in it (left in place: deleting it would race the
 * next locker). *lock_fd is the lock (pkc_unlock releases it), -1 on
 * failure.
 * errmsg (borrowed, errlen bytes) gets the message on failure.
 * Errors: PK_EIO (cannot open or lock the directory), PK_ENOMEM. */
PK_EXTERN int pkc_lock_dir(const char *path, int *lock_fd, char *errmsg,
                           size_t errlen);

/* Replace path with data atomically: a temporary file in the same
 * directory (mode 0600), fsync, rename, fsync the directory. A path that
 * exists and is not a regular file (a symlink) is refused. On failure the
 * temporary file is removed and path is left as it was.
 * Errors: PK_EACCES (not a regular file, or no permission), PK_EIO,
 * PK_ENOMEM. */
PK_EXTERN int pkc_replace_file(const char *path, const char *data, size_t len,
                               char *errmsg, size_t errlen);

/* Before a run that will be saved: path is not a symlink or other
 * non-regular file, and its directory takes new files (the temporary
 * file of the replace). Errors: PK_EACCES, PK_EIO (no such directory),
 * PK_ENOMEM. */
PK_EXTERN int pkc_check_writable(const char *path, char *errmsg, size_t errlen);

/* true when path (not followed if a symlink) holds exactly data. */
PK_EXTERN bool pkc_same_bytes(const char *path, const char *data, size_t len);
/* Release a pkc_lock_dir lock (-1: nothing). */
PK_EXTERN void pkc_unlock(int lock);

/* Shared by file.c and file_posix.c / file_win.c. */
#if defined(_WIN32)
#define PKC_BACKSLASH_SEP 1
#else
#define PKC_BACKSLASH_SEP 0
#endif
int pkc__set_err(char *errmsg, size_t errlen, int rc, const char *fmt, ...)
    PK__PRINTF(4, 5);
/* The directory of path, as dirname(3) would say (heap; NULL: no memory).
 * Windows also splits at '\\' and keeps "C:\\". */
char *pkc__dir_of(const char *path);

#endif
