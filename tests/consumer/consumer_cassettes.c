/* Uses an installed processkit-cassettes: records `git rev-parse HEAD`,
 * answered by a scripted inner runner (processkit-fakes), into a cassette
 * in a temporary directory, closes it (the save: libyaml and nettle),
 * then reopens it in mode none and replays the command with no inner
 * runner at all. Exit 0 on success, 1 on any mismatch. */
#define _POSIX_C_SOURCE 200809L

#include <pk/cassette.h>
#include <pk/fakes.h>

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static int fail(const char *what, int rc, const char *msg) {
  fprintf(stderr, "consumer_cassettes: %s: %s: %s\n", what, pk_err_name(rc),
          msg != NULL && *msg != '\0' ? msg : pk_strerror(rc));
  return 1;
}

/* Run `git rev-parse HEAD` through r; 0 when it printed abc123. */
static int rev_parse(pk_runner *r, const char *what) {
  pk_cmd *cmd = NULL;
  char *text = NULL;
  int rc = pk_cmd_new("git", &cmd);
  if (rc == 0)
    rc = pk_cmd_arg(cmd, "rev-parse");
  if (rc == 0)
    rc = pk_cmd_arg(cmd, "HEAD");
  if (rc == 0)
    rc = pk_run(r, cmd, &text, NULL);
  int status = 0;
  if (rc != 0) {
    status = fail(what, rc, NULL);
  } else if (strcmp(text, "abc123") != 0) {
    fprintf(stderr, "consumer_cassettes: %s: expected 'abc123', got '%s'\n",
            what, text);
    status = 1;
  }
  pk_free(text);
  pk_cmd_free(cmd);
  return status;
}

/* Open path in mode with inner (NULL: replay only), check that the file
 * holds nentries entries, run the command, close. */
static int session(const char *path, pk_record_mode mode, pk_runner *inner,
                   size_t nentries, const char *what) {
  pk_cassette_opts opts = {.mode = mode, .inner = inner};
  pk_cassette *c = NULL;
  char err[1024] = "";
  int rc = pk_cassette_open(path, &opts, &c, err, sizeof(err));
  if (rc != 0)
    return fail(what, rc, err);
  int status = 0;
  if (pk_cassette_entry_count(c) != nentries) {
    fprintf(stderr, "consumer_cassettes: %s: %zu entries, expected %zu\n", what,
            pk_cassette_entry_count(c), nentries);
    status = 1;
  }
  if (status == 0)
    status = rev_parse(pk_cassette_runner(c), what);
  rc = pk_cassette_close(c, err, sizeof(err));
  if (rc != 0 && status == 0)
    status = fail(what, rc, err);
  return status;
}

static void remove_dir(const char *dir) {
  DIR *d = opendir(dir);
  if (d != NULL) {
    char path[512];
    for (struct dirent *e; (e = readdir(d)) != NULL;) {
      if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
        continue;
      snprintf(path, sizeof(path), "%s/%s", dir, e->d_name);
      unlink(path);
    }
    closedir(d);
  }
  rmdir(dir);
}

int main(void) {
  /* The modes below are the test: nothing from the caller's environment
   * may override them. */
  unsetenv("PK_RECORD_MODE");
  unsetenv("PK_RECORD_ONLY");
  unsetenv("PK_CASSETTE_STRICT");
  const char *tmp = getenv("TMPDIR");
  char dir[256];
  snprintf(dir, sizeof(dir), "%s/pk-consumer-XXXXXX",
           tmp != NULL && *tmp != '\0' ? tmp : "/tmp");
  if (mkdtemp(dir) == NULL) {
    perror("consumer_cassettes: mkdtemp");
    return 1;
  }
  char path[300];
  snprintf(path, sizeof(path), "%s/git.yaml", dir);

  pk_runner *inner = NULL;
  int status = 1;
  int rc = pk_scripted_new(&inner);
  if (rc == 0)
    rc = pk_script_program(inner, "git", pk_reply_ok("abc123\n"));
  if (rc != 0) {
    fail("scripting the inner runner", rc, NULL);
  } else if (session(path, PK_RECORD_ALL, inner, 0, "record") != 0 ||
             session(path, PK_RECORD_NONE, NULL, 1, "replay") != 0) {
    /* reported */
  } else if (pk_scripted_calls(inner) != 1) {
    fprintf(stderr,
            "consumer_cassettes: the inner runner ran %zu times, "
            "expected 1 (the recording only)\n",
            pk_scripted_calls(inner));
  } else {
    printf("consumer_cassettes: ok (recorded, then replayed)\n");
    status = 0;
  }
  pk_runner_free(inner);
  remove_dir(dir);
  return status;
}
