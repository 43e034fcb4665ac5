/* The dry-run runner: never spawns. Each command is rendered into a line
 * and kept; the answer is a success (exit 0, no output) played into the
 * core by the fakes' player, like any scripted reply. */
#include "fakes_internal.h"
#include "internal.h"
#include "pk/recording.h"

#include <pthread.h>

typedef struct dryrun {
  pk_runner base;
  pthread_mutex_t mu;
  pk_reply *ok; /* the one answer, borrowed by every run */
  char **lines;
  size_t n, cap;
} dryrun;

static const pk_runner_vtable dryrun_vtable;

static dryrun *as_dryrun(const pk_runner *r) {
  return r != NULL && r->vt == &dryrun_vtable ? (dryrun *)(void *)r : NULL;
}

/* Keep line (taken; freed on failure). */
static int keep(dryrun *d, char *line) {
  if (line == NULL)
    return PK_ENOMEM;
  pthread_mutex_lock(&d->mu);
  char **v = d->lines;
  if (d->n == d->cap) {
    size_t cap = d->cap ? 2 * d->cap : 16;
    v = pk__realloc(d->lines, cap * sizeof(*v));
    if (v != NULL) {
      d->lines = v;
      d->cap = cap;
    }
  }
  if (v != NULL)
    d->lines[d->n++] = line;
  pthread_mutex_unlock(&d->mu);
  if (v == NULL) {
    pk__free(line);
    return PK_ENOMEM;
  }
  return 0;
}

static int dryrun_start(pk_runner *self, const pk_cmd *cmd, uv_loop_t *loop,
                        pk_events *ev, pk_exec **out, pk_exit_info *fail) {
  dryrun *d = as_dryrun(self);
  int rc = keep(d, pk_format_cmd(cmd));
  if (rc != 0) {
    fail->stage = "record";
    fail->errmsg = "dry-run runner: out of memory rendering the command";
    fail->spawn_method = "dryrun";
    return rc;
  }
  return pk__player_start(self, d->ok, cmd, loop, ev, 0, out, fail);
}

static void dryrun_destroy(pk_runner *self) {
  dryrun *d = as_dryrun(self);
  for (size_t i = 0; i < d->n; i++)
    pk__free(d->lines[i]);
  pk__free(d->lines);
  pk_reply_free(d->ok);
  pthread_mutex_destroy(&d->mu);
  pk__free(d);
}

/* No time_scale: the answer is instant, and a command's own timeout runs
 * in real time (it never fires before the instant answer). */
static const pk_runner_vtable dryrun_vtable = {
    .name = "dryrun",
    .start = dryrun_start,
    .signal = pk__player_signal,
    .release = pk__player_release,
    .pause = pk__player_pause,
    .close_output = pk__player_close_output,
    .destroy = dryrun_destroy,
};

int pk_dryrun_new(pk_runner **out) {
  if (out == NULL)
    return PK_EINVAL;
  *out = NULL;
  dryrun *d = pk__calloc(1, sizeof(*d));
  if (d == NULL || (d->ok = pk_reply_ok(NULL)) == NULL) {
    pk__free(d);
    return PK_ENOMEM;
  }
  d->base.vt = &dryrun_vtable;
  pthread_mutex_init(&d->mu, NULL);
  *out = &d->base;
  return 0;
}

size_t pk_dryrun_count(const pk_runner *r) {
  dryrun *d = as_dryrun(r);
  if (d == NULL)
    return 0;
  pthread_mutex_lock(&d->mu);
  size_t n = d->n;
  pthread_mutex_unlock(&d->mu);
  return n;
}

const char *pk_dryrun_line(const pk_runner *r, size_t i) {
  dryrun *d = as_dryrun(r);
  if (d == NULL)
    return NULL;
  pthread_mutex_lock(&d->mu);
  const char *line = i < d->n ? d->lines[i] : NULL;
  pthread_mutex_unlock(&d->mu);
  return line;
}
