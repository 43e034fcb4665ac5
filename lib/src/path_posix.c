/* POSIX: program lookup on PATH, with execvp's rules, done in the parent
 * so the error can name every directory searched (path_win.c: Windows). */
#include "internal.h"

#include <errno.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define PK__DEFAULT_PATH "/usr/local/bin:/usr/bin:/bin"

/* 0 = executable file; PK_EACCES = exists, not executable; PK_ENOENT. */
static int check_candidate(const char *path) {
  struct stat st;
  if (stat(path, &st) != 0)
    return errno == EACCES ? PK_EACCES : PK_ENOENT;
  if (!S_ISREG(st.st_mode))
    return S_ISDIR(st.st_mode) ? PK_ENOENT : PK_EACCES;
  return access(path, X_OK) == 0 ? 0 : PK_EACCES;
}

static char *join(const char *cwd, const char *dir, size_t dlen,
                  const char *prog) {
  if (dlen == 0)
    return cwd ? pk__sprintf("%s/%s", cwd, prog) : pk__sprintf("./%s", prog);
  if (dir[0] != '/' && cwd != NULL)
    return pk__sprintf("%s/%.*s/%s", cwd, (int)dlen, dir, prog);
  return pk__sprintf("%.*s/%s", (int)dlen, dir, prog);
}

int pk__resolve_program(const char *program, const char *path_env,
                        const char *cwd, char **resolved, char **msg) {
  *resolved = NULL;
  *msg = NULL;
  if (strchr(program, '/') != NULL) {
    *resolved = pk__strdup(program);
    return *resolved ? 0 : PK_ENOMEM;
  }
  const char *path = path_env ? path_env : PK__DEFAULT_PATH;
  int worst = PK_ENOENT;
  char *denied = NULL;
  for (const char *p = path;; p++) {
    const char *end = strchr(p, ':');
    size_t dlen = end ? (size_t)(end - p) : strlen(p);
    char *cand = join(cwd, p, dlen, program);
    if (cand == NULL) {
      pk__free(denied);
      return PK_ENOMEM;
    }
    int rc = check_candidate(cand);
    if (rc == 0) {
      pk__free(denied);
      *resolved = cand;
      return 0;
    }
    if (rc == PK_EACCES && denied == NULL) {
      worst = PK_EACCES;
      denied = cand;
    } else {
      pk__free(cand);
    }
    if (end == NULL)
      break;
    p = end;
  }
  if (worst == PK_EACCES)
    *msg =
        pk__sprintf("%s: found %s but it is not executable", program, denied);
  else
    *msg = pk__sprintf("%s: not found in PATH (searched: %s)", program,
                       path[0] ? path : "(empty PATH)");
  pk__free(denied);
  return worst;
}

/* A path with a '/' is not searched: check it where the child would
 * (relative to its cwd), with the message a failed exec gives. */
static int which_path(const pk_cmd *cmd, char **resolved, char **msg) {
  const char *prog = cmd->program;
  char *full = prog[0] != '/' && cmd->cwd != NULL
                   ? pk__sprintf("%s/%s", cmd->cwd, prog)
                   : pk__strdup(prog);
  if (full == NULL)
    return PK_ENOMEM;
  struct stat st;
  int rc = check_candidate(full);
  if (rc == PK_ENOENT && stat(full, &st) == 0)
    rc = PK_EACCES; /* a directory: execve says EACCES */
  if (rc == 0) {
    *resolved = full;
    return 0;
  }
  pk__free(full);
  *msg = pk__sprintf("%s: %s (exec: %s)", prog, pk_strerror(rc),
                     strerror(rc == PK_EACCES ? EACCES : ENOENT));
  return rc;
}

int pk_cmd_which(const pk_cmd *cmd, char **path, char **errmsg) {
  if (path != NULL)
    *path = NULL;
  if (errmsg != NULL)
    *errmsg = NULL;
  if (cmd == NULL || path == NULL)
    return PK_EINVAL;
  char *msg = NULL;
  int rc = strchr(cmd->program, '/') != NULL
               ? which_path(cmd, path, &msg)
               : pk__resolve_program(cmd->program, pk__cmd_path_env(cmd),
                                     cmd->cwd, path, &msg);
  if (errmsg != NULL)
    *errmsg = msg;
  else
    pk__free(msg);
  return rc;
}
