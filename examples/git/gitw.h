/* gitw: a tiny git wrapper, the shape pk_client is for: a client with
 * defaults, a few functions that build commands, and parsers.
 * Production code passes a real runner; tests pass a double. */
#ifndef GITW_H
#define GITW_H

#include <pk/client.h>

typedef struct gitw gitw;

/* A wrapper running git in `repo` (copied) through `runner` (borrowed).
 * Errors: PK_EINVAL, PK_ENOMEM. */
int gitw_new(pk_runner *runner, const char *repo, gitw **out);
void gitw_free(gitw *g);

/* The commit id of HEAD (40 hex digits + NUL into id). Errors: the run's
 * error, PK_EEXIT (git failed), PK_EINVAL (output is not a commit id). */
int gitw_head(gitw *g, char id[41]);
/* The current branch name (heap, pk_free). Errors: as gitw_head. */
int gitw_branch(gitw *g, char **name);
/* Whether the work tree has no changes (`git diff --quiet`: 0 clean,
 * 1 dirty). Errors: the run's error, PK_EEXIT for other codes. */
int gitw_is_clean(gitw *g, bool *clean);
/* Commit everything with a message given on stdin (`commit -a -F -`). */
int gitw_commit_all(gitw *g, const char *message);

#endif
