#include "gitw.h"

#include <ctype.h>
#include <stdlib.h>
#include <string.h>

struct gitw {
  pk_client *git;
};

int gitw_new(pk_runner *runner, const char *repo, gitw **out) {
  if (out == NULL || repo == NULL)
    return PK_EINVAL;
  *out = NULL;
  gitw *g = calloc(1, sizeof(*g));
  if (g == NULL)
    return PK_ENOMEM;
  int rc = pk_client_new("git", runner, &g->git);
  if (rc == 0)
    rc = pk_client_set_cwd(g->git, repo);
  if (rc == 0) /* never block on a credential prompt */
    rc = pk_client_env_set(g->git, "GIT_TERMINAL_PROMPT", "0");
  if (rc == 0) /* messages we parse stay in English */
    rc = pk_client_env_set(g->git, "LC_ALL", "C");
  if (rc == 0)
    rc = pk_client_set_timeout(g->git, 30000, 2000, 0);
  if (rc != 0) {
    gitw_free(g);
    return rc;
  }
  *out = g;
  return 0;
}

void gitw_free(gitw *g) {
  if (g == NULL)
    return;
  pk_client_free(g->git);
  free(g);
}

/* Run `git args...` with pk_client_run; *text is trimmed stdout. */
static int git_text(gitw *g, const char *const *args, size_t n, char **text) {
  pk_cmd *cmd;
  int rc = pk_client_cmd_args(g->git, args, n, &cmd);
  if (rc == 0)
    rc = pk_client_run(g->git, cmd, text, NULL);
  pk_cmd_free(cmd);
  return rc;
}

int gitw_head(gitw *g, char id[41]) {
  char *text = NULL;
  int rc = git_text(g, (const char *const[]){"rev-parse", "HEAD"}, 2, &text);
  if (rc == 0) {
    bool ok = strlen(text) == 40;
    for (size_t i = 0; ok && i < 40; i++)
      ok = isxdigit((unsigned char)text[i]) && !isupper((unsigned char)text[i]);
    if (ok)
      memcpy(id, text, 41);
    else
      rc = PK_EINVAL;
  }
  pk_free(text);
  return rc;
}

int gitw_branch(gitw *g, char **name) {
  *name = NULL;
  int rc = git_text(
      g, (const char *const[]){"rev-parse", "--abbrev-ref", "HEAD"}, 3, name);
  if (rc == 0 && (*name)[0] == '\0')
    rc = PK_EINVAL;
  if (rc != 0) {
    pk_free(*name);
    *name = NULL;
  }
  return rc;
}

int gitw_is_clean(gitw *g, bool *clean) {
  pk_cmd *cmd;
  int rc = pk_client_cmd_args(g->git, (const char *const[]){"diff", "--quiet"},
                              2, &cmd);
  if (rc == 0)
    rc = pk_client_probe(g->git, cmd, clean, NULL);
  pk_cmd_free(cmd);
  return rc;
}

int gitw_commit_all(gitw *g, const char *message) {
  pk_cmd *cmd;
  int rc = pk_client_cmd_args(
      g->git, (const char *const[]){"commit", "-a", "-F", "-"}, 4, &cmd);
  if (rc == 0)
    rc = pk_cmd_set_stdin_bytes(cmd, message, strlen(message));
  if (rc == 0)
    rc = pk_client_checked(g->git, cmd, NULL);
  pk_cmd_free(cmd);
  return rc;
}
