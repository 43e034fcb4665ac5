/* The player: emits a reply's timeline into the core from loop timers, as
 * a real child's output and exit would arrive. At time scale 0 the whole
 * timeline plays in one loop turn (order kept, nothing interleaves). */
#include "fakes_internal.h"
#include "internal.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

typedef struct play_exec {
  pk_exec base;
  pk_events *ev;
  const pk_cmd *cmd;
  const pk_reply *reply; /* borrowed, or `owned` after resolving a callback */
  pk_reply *owned;
  double scale;
  size_t next; /* next step; nsteps means the end */
  int pending_signal;
  int pending_code; /* > 0: a trap exits with pending_code - 1 */
  bool started, finished, released, waiting;
  bool paused;    /* flow control: the timeline waits */
  bool armed;     /* paused with a step due ... */
  uint64_t due;   /* ... this many ms after resuming */
  bool closed[3]; /* streams whose reader went away */
  int out_fd[3];  /* PK_OUT_FILE targets, opened at start like a real run */
  uv_timer_t timer;
} play_exec;

static uint64_t scaled(const play_exec *p, int64_t ms) {
  double v = (double)ms * p->scale;
  return v > 0 ? (uint64_t)v : 0;
}

static void on_step(uv_timer_t *t);

/* Run the next step after ms, or as soon as the consumer resumes. */
static void arm(play_exec *p, uint64_t ms) {
  if (p->paused) {
    p->armed = true;
    p->due = ms;
    return;
  }
  uv_timer_start(&p->timer, on_step, ms, 0);
}

static void emit_exit(play_exec *p, pk_outcome o, int code, int sig,
                      bool timed_out) {
  pk_exit_info info;
  memset(&info, 0, sizeof(info));
  info.output_incomplete = p->reply->incomplete;
  info.outcome = o;
  info.code = code;
  info.signal = sig;
  info.timed_out = timed_out;
  info.spawn_method = pk_runner_name(p->base.runner);
  info.duration_ns = p->reply->duration_ns;
  p->finished = true;
  uv_timer_stop(&p->timer);
  pk_events_exit(p->ev, &info);
}

/* stdin as the child would see it: bytes, a file's content, or nothing. */
static char *read_stdin(const pk_cmd *cmd, size_t *len) {
  *len = 0;
  if (pk_cmd_stdin_mode(cmd) == PK_STDIN_BYTES) {
    const char *d = pk_cmd_stdin_data(cmd, len);
    return pk__memdup(d, *len);
  }
  pk__buf b = {0};
  if (pk_cmd_stdin_mode(cmd) == PK_STDIN_FILE) {
    FILE *f = fopen(pk_cmd_stdin_path(cmd), "rbe");
    char chunk[4096];
    size_t n;
    while (f != NULL && (n = fread(chunk, 1, sizeof(chunk), f)) > 0)
      if (pk__buf_append(&b, chunk, n) != 0)
        break;
    if (f != NULL)
      fclose(f);
  }
  if (pk__buf_append(&b, "", 0) != 0)
    return NULL;
  *len = b.len;
  return b.data;
}

/* Where a real child's bytes would go: the capture, the parent's own
 * stream, a file, or nowhere. */
static void emit_out(play_exec *p, pk_stream s, const char *data, size_t len) {
  switch (pk_cmd_output_mode(p->cmd, s, NULL)) {
  case PK_OUT_CAPTURE:
    if (p->closed[(int)s]) /* a write to a pipe nobody reads */
      pk__player_signal(&p->base, PK_SIGPIPE);
    else
      pk_events_output(p->ev, s, data, len);
    break;
  case PK_OUT_INHERIT:
  case PK_OUT_FILE: {
    int fd = p->out_fd[(int)s] >= 0 ? p->out_fd[(int)s] : (int)s;
    (void)pk__fd_write_all(fd, data, len);
    break;
  }
  default:
    break; /* PK_OUT_NULL */
  }
}

static void out_text(play_exec *p, pk_stream s, const char *text) {
  emit_out(p, s, text, strlen(text));
}

/* Answer stdin line by line; false when the dialog failed (and ended). */
static bool play_dialog(play_exec *p) {
  size_t len;
  char *in = read_stdin(p->cmd, &len);
  if (in == NULL) {
    emit_exit(p, PK_OUTCOME_EXITED, 1, 0, false);
    return false;
  }
  const char *pos = in, *end = in + len;
  for (size_t i = 0; i < p->reply->ndialog; i++) {
    const dialog_step *d = &p->reply->dialog[i];
    const char *nl = memchr(pos, '\n', (size_t)(end - pos));
    size_t n = nl ? (size_t)(nl - pos) : (size_t)(end - pos);
    if (pos >= end || strlen(d->expect) != n ||
        memcmp(pos, d->expect, n) != 0) {
      char *msg = pos >= end ? pk__sprintf("dialog: expected '%s', got end "
                                           "of input\n",
                                           d->expect)
                             : pk__sprintf("dialog: expected '%s', got "
                                           "'%.*s'\n",
                                           d->expect, (int)n, pos);
      if (msg != NULL)
        out_text(p, PK_STDERR, msg);
      pk__free(msg);
      pk__free(in);
      emit_exit(p, PK_OUTCOME_EXITED, 1, 0, false);
      return false;
    }
    out_text(p, PK_STDOUT, d->answer);
    pos = nl ? nl + 1 : end;
  }
  pk__free(in);
  return true;
}

/* A callback reply decides its timeline now, from the loop. */
static bool resolve(play_exec *p) {
  const pk_reply *r = p->reply;
  if (r->fn == NULL)
    return true;
  size_t len;
  char *in = read_stdin(p->cmd, &len);
  pk_reply *out = pk__reply_new(END_EXIT);
  int rc = in && out ? r->fn(p->cmd, in, len, out, r->fn_data) : PK_ENOMEM;
  pk__free(in);
  if (rc != 0 || out->fn != NULL) {
    pk_reply_free(out);
    char *msg = pk__sprintf("reply callback failed: %s\n", pk_err_name(rc));
    if (msg != NULL)
      out_text(p, PK_STDERR, msg);
    pk__free(msg);
    emit_exit(p, PK_OUTCOME_EXITED, 1, 0, false);
    return false;
  }
  p->owned = out;
  p->reply = out;
  return true;
}

static void end_run(play_exec *p) {
  const pk_reply *r = p->reply;
  switch (r->end) {
  case END_SIGNAL:
    emit_exit(p, PK_OUTCOME_SIGNALLED, 0, r->sig, false);
    break;
  case END_TIMEOUT:
    if (pk_cmd_timeout_ms(p->cmd) > 0) {
      p->waiting = true; /* the core's deadline ends it, as for a child */
      break;
    }
    emit_exit(p, PK_OUTCOME_SIGNALLED, 0, PK_SIGTERM, true);
    break;
  case END_PENDING:
    p->waiting = true; /* only a signal ends it */
    break;
  default:
    emit_exit(p, PK_OUTCOME_EXITED, r->code, 0, false);
  }
}

static int64_t end_delay(const play_exec *p) {
  int64_t d = p->reply->end == END_TIMEOUT ? 0 : p->reply->end_delay_ms;
  if (p->reply->incomplete) /* a real run waits out the drain first */
    d += pk_cmd_drain_ms(p->cmd);
  return d;
}

/* Play steps until one needs a real delay; then re-arm the timer. */
static void on_step(uv_timer_t *t) {
  play_exec *p = t->data;
  if (p->pending_code > 0) {
    emit_exit(p, PK_OUTCOME_EXITED, p->pending_code - 1, 0, false);
    return;
  }
  if (p->pending_signal != 0) {
    emit_exit(p, PK_OUTCOME_SIGNALLED, 0, p->pending_signal, false);
    return;
  }
  if (!p->started) {
    p->started = true;
    if (!resolve(p) || (p->reply->is_dialog && !play_dialog(p)))
      return;
    uint64_t d =
        p->reply->nsteps > 0 ? scaled(p, p->reply->steps[0].delay_ms) : 0;
    if (d > 0) {
      arm(p, d);
      return;
    }
  }
  for (;;) {
    if (p->next < p->reply->nsteps) {
      const reply_step *s = &p->reply->steps[p->next];
      emit_out(p, s->stream, s->data, s->len);
      p->next++;
      if (p->pending_signal != 0 || p->pending_code > 0)
        return; /* killed mid-output: the re-armed timer ends it */
    } else if (p->next == p->reply->nsteps) {
      p->next++;
      uint64_t d = scaled(p, end_delay(p));
      if (d > 0 || p->paused) {
        arm(p, d);
        return;
      }
    } else {
      end_run(p);
      return;
    }
    if (p->finished)
      return;
    uint64_t d = p->next < p->reply->nsteps
                     ? scaled(p, p->reply->steps[p->next].delay_ms)
                     : 0;
    if (d > 0 || p->paused) { /* paused from a callback: wait for resume */
      arm(p, d);
      return;
    }
  }
}

/* The real runner's classification of a failed stage. */
static int classify(const char *stage, int err) {
  if (strcmp(stage, "chdir") == 0)
    return PK_EBADCWD;
  if (strcmp(stage, "exec") != 0 && strcmp(stage, "lookup") != 0)
    return PK_ESPAWN;
  if (err == ENOENT || err == ENOTDIR)
    return PK_ENOENT;
  if (err == EACCES || err == EPERM)
    return PK_EACCES;
  return err == ENOEXEC ? PK_ENOEXEC : PK_ESPAWN;
}

static int spawn_like_failure(pk_runner *runner, const pk_reply *r,
                              const pk_cmd *cmd, pk_exit_info *fail) {
  static __thread char msg[512];
  const char *prog = pk_cmd_program(cmd);
  int err = r->end == END_NOT_FOUND ? ENOENT : r->os_errno;
  const char *stage = r->end == END_NOT_FOUND ? "lookup"
                      : r->stage != NULL      ? r->stage
                                              : "exec";
  static __thread char stage_copy[64]; /* the reply may be freed next */
  int rc = r->error != 0 ? r->error : classify(stage, err);
  snprintf(stage_copy, sizeof(stage_copy), "%s", stage);
  fail->stage = stage_copy;
  fail->os_errno = err;
  if (r->errmsg != NULL)
    snprintf(msg, sizeof(msg), "%s", r->errmsg);
  else
    snprintf(msg, sizeof(msg), "%s: %s (scripted: %s)", prog, pk_strerror(rc),
             strerror(err));
  fail->errmsg = msg;
  fail->spawn_method = pk_runner_name(runner);
  fail->duration_ns = r->duration_ns; /* a replayed failure's, as recorded */
  return rc;
}

static void close_files(int fds[3]) {
  for (int s = PK_STDOUT; s <= PK_STDERR; s++)
    if (fds[s] >= 0)
      pk__fd_close(fds[s]);
}

/* PK_OUT_FILE targets are created before the run, as the real runner
 * does, so a bad path fails the start the same way. */
static int open_files(const pk_cmd *cmd, int fds[3], pk_exit_info *fail) {
  static __thread char msg[512];
  for (int s = PK_STDOUT; s <= PK_STDERR; s++) {
    const char *path;
    if (pk_cmd_output_mode(cmd, (pk_stream)s, &path) != PK_OUT_FILE)
      continue;
    fds[s] =
        pk__fd_open(path, UV_FS_O_WRONLY | UV_FS_O_CREAT | UV_FS_O_TRUNC, 0666);
    if (fds[s] < 0) {
      int err = fds[s];
      fds[s] = -1;
      snprintf(msg, sizeof(msg), "cannot open %s %s: %s",
               s == PK_STDOUT ? "stdout file" : "stderr file", path,
               uv_strerror(err));
      fail->errmsg = msg;
      close_files(fds);
      return err == UV_EMFILE || err == UV_ENFILE ? PK_ELIMIT : PK_EIO;
    }
  }
  return 0;
}

int pk__player_start(pk_runner *runner, const pk_reply *reply,
                     const pk_cmd *cmd, uv_loop_t *loop, pk_events *ev,
                     double scale, pk_exec **out, pk_exit_info *fail) {
  if (reply->end == END_NOT_FOUND || reply->end == END_SPAWN_ERROR)
    return spawn_like_failure(runner, reply, cmd, fail);
  int fds[3] = {-1, -1, -1};
  int rc = open_files(cmd, fds, fail);
  if (rc != 0)
    return rc;
  play_exec *p = pk__calloc(1, sizeof(*p));
  if (p == NULL) {
    close_files(fds);
    return PK_ENOMEM;
  }
  memcpy(p->out_fd, fds, sizeof(fds));
  p->base.runner = runner;
  p->ev = ev;
  p->cmd = cmd;
  p->reply = reply;
  p->scale = scale;
  uv_timer_init(loop, &p->timer);
  p->timer.data = p;
  uv_timer_start(&p->timer, on_step, 0, 0);
  *out = &p->base;
  return 0;
}

/* Signals that do not end a process with default dispositions. */
static bool harmless(int sig) {
  return sig == 0 || sig == PK_SIGCHLD || sig == PK_SIGCONT ||
         sig == PK_SIGURG || sig == PK_SIGWINCH || sig == PK_SIGSTOP ||
         sig == PK_SIGTSTP || sig == PK_SIGTTIN || sig == PK_SIGTTOU;
}

int pk__player_signal(pk_exec *e, int sig) {
  play_exec *p = (play_exec *)e;
  bool posix = pk__host_signals();
  if (!posix && sig != 0 && sig != PK_SIGKILL)
    return PK_EUNSUPPORTED; /* as for a real run on this host */
  if (p->finished)
    return PK_ESRCH;
  if (p->pending_signal != 0 || p->pending_code > 0)
    return 0;
  int trap = sig > 0 && sig < 65 ? p->reply->trap[sig] : 0;
  if (trap < 0 || (trap == 0 && harmless(sig)))
    return 0;
  /* Ends from the loop, like a real death: never inside this call. */
  if (trap > 0)
    p->pending_code = trap;
  else if (!posix) /* terminated: exit code 1, as TerminateJobObject */
    p->pending_code = 1 + 1;
  else
    p->pending_signal = sig;
  arm(p, 0);
  return 0;
}

int pk__player_pause(pk_exec *e, bool on) {
  play_exec *p = (play_exec *)e;
  if (p->finished)
    return PK_ESRCH;
  if (on == p->paused)
    return 0;
  if (on) {
    p->armed = uv_is_active((uv_handle_t *)&p->timer);
    p->due = p->armed ? uv_timer_get_due_in(&p->timer) : 0;
    uv_timer_stop(&p->timer);
    p->paused = true;
    return 0;
  }
  p->paused = false;
  if (p->armed)
    uv_timer_start(&p->timer, on_step, p->due, 0);
  p->armed = false;
  return 0;
}

int pk__player_close_output(pk_exec *e, pk_stream s) {
  play_exec *p = (play_exec *)e;
  if (p->finished)
    return PK_ESRCH;
  p->closed[(int)s] = true;
  return 0;
}

int pk__player_start_owned(pk_runner *runner, pk_reply *reply,
                           const pk_cmd *cmd, uv_loop_t *loop, pk_events *ev,
                           double scale, pk_exec **out, pk_exit_info *fail) {
  int rc = pk__player_start(runner, reply, cmd, loop, ev, scale, out, fail);
  if (rc != 0) {
    /* fail's strings are thread-local copies, never the reply's. */
    pk_reply_free(reply);
    return rc;
  }
  play_exec *p = (play_exec *)*out;
  p->owned = reply;
  return 0;
}

static void on_closed(uv_handle_t *h) {
  play_exec *p = h->data;
  close_files(p->out_fd);
  pk_reply_free(p->owned);
  pk__free(p);
}

void pk__player_release(pk_exec *e) {
  play_exec *p = (play_exec *)e;
  p->released = true;
  uv_close((uv_handle_t *)&p->timer, on_closed);
}
