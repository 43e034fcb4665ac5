/* A cassette file on disk, for every writer (the cassette's save and the
 * pk cassette commands): the directory lock all savers take, and the
 * atomic replace. Internal to cassettes/ and the tools.
 *
 * How to rewrite a cassette:
 * 1. pkc_lock_dir(path, &lock, ...) (waits for other savers);
 * 2. pkc_load it, change it, pkc_emit it;
 * 3. pkc_replace_file(path, data, len, ...);
 * 4. close(lock). */
#ifndef PK_CASSETTE_FILE_H
#define PK_CASSETTE_FILE_H

#include <pk/pk.h>

#include <stdbool.h>
#include <stddef.h>

/* Lock the directory that holds path: flock(LOCK_EX) on the directory
 * itself, so no lock file is left behind; every cassette in it is
 * serialized. *lock_fd is the lock (close it to release), -1 on failure.
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

#endif
