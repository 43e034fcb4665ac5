/* The core pump: receives events from any runner implementation and does
 * capture, limits, line splitting, user callbacks, timeouts, cancellation
 * and result assembly, so every runner behaves the same to user code. */
#include "internal.h"

#include <limits.h>
#include <pthread.h>
#include <stdatomic.h>
#include <string.h>

#define PK__DEFAULT_GRACE_MS 2000

typedef struct capture {
  pk__buf buf;     /* whole capture, or the kept head */
  char *ring;      /* PK_LIMIT_TAIL: last `limit` bytes */
  size_t ring_pos; /* next write position in ring */
  bool ring_full;
  pk__buf line;   /* partial line for on_line */
  bool in_pieces; /* an over-long line is being delivered in pieces */
  char last;      /* last byte seen, for counting a final line */
  char *lent;     /* storage lent to the runner for the next read */
  size_t lent_size, lend_next;
} capture;

/* Observers a decorator attached to the run (pk_events_tap). */
#define PK__MAX_TAPS 4
typedef struct tap_slot {
  const pk_tap *tap;
  void *data;
} tap_slot;

struct pk_events {
  pk_proc *p;
  tap_slot taps[PK__MAX_TAPS];
  size_t ntaps;
};

struct pk_proc {
  pk_runner *runner;
  pk_cmd *cmd;
  uv_loop_t *loop;
  uv_loop_t own_loop;
  bool own;         /* pk drives the loop (pk_proc_wait) */
  bool thread_loop; /* ... and it is the thread's cached one */
  pk_start_opts opts;
  pk_events ev;
  pk_exec *exec;
  uv_timer_t deadline, grace, defer;
  uv_async_t cancel; /* pk_proc_cancel from any thread */
  atomic_bool cancel_requested;
  int closing;
  capture cap[3];
  pk_result *res;
  bool done, timed_out, cancelled;
  bool paused; /* flow control: output reading stopped */
  int fail_err;
  uint64_t t0;
  pk_exit_info fail; /* a start that failed, reported from the loop */
  char *fail_stage, *fail_msg;
};

static void ending(pk_proc *p);

/* The exec's own runner: decorators hand their inner execs back. */
static const pk_runner_vtable *exec_vt(const pk_proc *p) {
  return p->exec->runner->vt;
}

/* ------------------------------------------------------------- capture */

static int capture_store(pk_proc *p, int s, const char *buf, size_t len) {
  capture *c = &p->cap[s];
  size_t limit = p->cmd->limit_bytes;
  switch (p->cmd->limit_policy) {
  case PK_LIMIT_NONE:
    return pk__buf_append(&c->buf, buf, len);
  case PK_LIMIT_HEAD:
  case PK_LIMIT_FAIL: {
    size_t room = limit - c->buf.len;
    size_t take = len < room ? len : room;
    if (take < len)
      p->res->truncated = true;
    return pk__buf_append(&c->buf, buf, take);
  }
  case PK_LIMIT_TAIL:
    if (c->ring == NULL && (c->ring = pk__malloc(limit)) == NULL)
      return PK_ENOMEM;
    if (len >= limit) {
      memcpy(c->ring, buf + len - limit, limit);
      c->ring_pos = 0;
      c->ring_full = true;
      return 0;
    }
    for (size_t done = 0; done < len;) {
      size_t n = limit - c->ring_pos;
      n = n < len - done ? n : len - done;
      memcpy(c->ring + c->ring_pos, buf + done, n);
      done += n;
      c->ring_pos += n;
      if (c->ring_pos == limit) {
        c->ring_pos = 0;
        c->ring_full = true;
      }
    }
    return 0;
  }
  return PK_EINVAL;
}

#define PK__LEND_MIN (16 * 1024)
#define PK__LEND_MAX (64 * 1024)

size_t pk_events_buffer(pk_events *ev, pk_stream s, char **buf) {
  pk_proc *p = ev->p;
  *buf = NULL;
  if (p->done || (s != PK_STDOUT && s != PK_STDERR))
    return 0;
  capture *c = &p->cap[(int)s];
  size_t want = c->lend_next ? c->lend_next : PK__LEND_MIN;
  size_t limit = p->cmd->limit_bytes, room = want;
  switch (p->cmd->limit_policy) {
  case PK_LIMIT_TAIL:
    if (c->ring == NULL && (c->ring = pk__malloc(limit)) == NULL)
      return 0;
    room = limit - c->ring_pos;
    if (room < PK__LEND_MIN) /* tiny reads near the wrap: copy instead */
      return 0;
    c->lent = c->ring + c->ring_pos;
    break;
  case PK_LIMIT_HEAD:
  case PK_LIMIT_FAIL:
    room = limit - c->buf.len;
    if (room == 0)
      return 0;
    room = room < want ? room : want;
    /* fall through */
  default:
    if (pk__buf_reserve(&c->buf, room) != 0)
      return 0;
    c->lent = c->buf.data + c->buf.len;
  }
  c->lent_size = room < want ? room : want;
  *buf = c->lent;
  return c->lent_size;
}

/* A read landed in lent storage: account for it without copying. Reads
 * that fill what was lent get a bigger loan next time. */
static void capture_commit(pk_proc *p, int s, size_t len) {
  capture *c = &p->cap[s];
  if (len == c->lent_size &&
      c->lent_size >= (c->lend_next ? c->lend_next : PK__LEND_MIN))
    c->lend_next =
        c->lent_size * 2 > PK__LEND_MAX ? PK__LEND_MAX : c->lent_size * 2;
  c->lent = NULL;
  if (p->cmd->limit_policy != PK_LIMIT_TAIL) {
    c->buf.len += len;
    c->buf.data[c->buf.len] = '\0';
    return;
  }
  c->ring_pos += len;
  if (c->ring_pos == p->cmd->limit_bytes) {
    c->ring_pos = 0;
    c->ring_full = true;
  }
}

/* Turn the tail ring into the result buffer. */
static int capture_finish(pk_proc *p, int s) {
  capture *c = &p->cap[s];
  if (c->ring == NULL)
    return 0;
  size_t limit = p->cmd->limit_bytes;
  int rc = 0;
  if (c->ring_full) {
    p->res->truncated |= p->res->total_bytes[s] > limit;
    rc = pk__buf_append(&c->buf, c->ring + c->ring_pos, limit - c->ring_pos);
  }
  if (rc == 0)
    rc = pk__buf_append(&c->buf, c->ring, c->ring_pos);
  pk__free(c->ring);
  c->ring = NULL;
  return rc;
}

/* Hand one line, or one piece of an over-long line, to the user. */
static void emit_line(pk_proc *p, int s, bool more) {
  capture *c = &p->cap[s];
  bool piece = more || c->in_pieces;
  if (piece && p->opts.on_line_piece != NULL)
    p->opts.on_line_piece(p, (pk_stream)s, c->line.data, c->line.len, more,
                          p->opts.data);
  else if (p->opts.on_line != NULL)
    p->opts.on_line(p, (pk_stream)s, c->line.data, c->line.len, p->opts.data);
  c->line.len = 0;
  c->in_pieces = more;
}

/* Split into lines. A full line buffer is passed on as a piece only once
 * a byte other than '\n' follows, so a line of exactly the maximum is
 * one line and a piece is never empty. */
static void deliver_lines(pk_proc *p, int s, const char *buf, size_t len) {
  capture *c = &p->cap[s];
  size_t max = p->cmd->max_line;
  while (len > 0) {
    if (c->line.len == max && buf[0] != '\n')
      emit_line(p, s, true);
    const char *nl = memchr(buf, '\n', len);
    size_t n = nl ? (size_t)(nl - buf) : len;
    if (n > max - c->line.len)
      n = max - c->line.len;
    if (pk__buf_append(&c->line, buf, n) != 0) {
      p->fail_err = PK_ENOMEM;
      return;
    }
    buf += n;
    len -= n;
    if (len > 0 && buf[0] == '\n') {
      emit_line(p, s, false);
      buf++;
      len--;
    }
  }
}

static void count_lines(pk_proc *p, int s, const char *buf, size_t len) {
  uint64_t n = 0;
  size_t i = 0;
  /* Eight bytes at a time: a zero byte of w ^ "\n\n..." is a newline. */
  const uint64_t ones = 0x0101010101010101u, nl = ones * '\n';
  const uint64_t low7 = ones * 0x7f;
  for (; i + 8 <= len; i += 8) {
    uint64_t w;
    memcpy(&w, buf + i, 8);
    w ^= nl;
    uint64_t zero = ~(((w & low7) + low7) | w | low7) >> 7; /* 0 or 1 */
    n += (zero * ones) >> 56; /* sum of the eight bytes */
  }
  for (; i < len; i++)
    n += buf[i] == '\n';
  p->res->total_lines[s] += n;
  p->cap[s].last = buf[len - 1];
}

void pk_events_output(pk_events *ev, pk_stream s, const char *buf, size_t len) {
  pk_proc *p = ev->p;
  if (p->done || len == 0 || (s != PK_STDOUT && s != PK_STDERR))
    return;
  int si = (int)s;
  for (size_t i = 0; i < ev->ntaps; i++)
    if (ev->taps[i].tap->output != NULL)
      ev->taps[i].tap->output(ev->taps[i].data, s, buf, len);
  p->res->total_bytes[si] += len;
  count_lines(p, si, buf, len);
  if (p->opts.on_output != NULL)
    p->opts.on_output(p, s, buf, len, p->opts.data);
  if (p->opts.on_line != NULL || p->opts.on_line_piece != NULL)
    deliver_lines(p, si, buf, len);
  if (buf == p->cap[si].lent && len <= p->cap[si].lent_size)
    capture_commit(p, si, len);
  else if (capture_store(p, si, buf, len) != 0 && p->fail_err == 0)
    p->fail_err = PK_ENOMEM;
  if (p->cmd->limit_policy == PK_LIMIT_FAIL &&
      p->res->total_bytes[si] > p->cmd->limit_bytes && p->fail_err == 0) {
    p->fail_err = PK_ETOOBIG;
    ending(p);
    exec_vt(p)->signal(p->exec, PK_SIGKILL);
  }
}

/* --------------------------------------------------------- completion */

/* Replace *slot with a copy of s; false when the copy failed. */
static bool set_str(char **slot, const char *s) {
  pk__free(*slot);
  *slot = s ? pk__strdup(s) : NULL;
  return s == NULL || *slot != NULL;
}

static void finish_output(pk_proc *p) {
  for (int s = PK_STDOUT; s <= PK_STDERR; s++) {
    capture *c = &p->cap[s];
    if (p->res->total_bytes[s] > 0 && c->last != '\n')
      p->res->total_lines[s]++;
    if ((p->opts.on_line != NULL || p->opts.on_line_piece != NULL) &&
        c->line.len > 0)
      emit_line(p, s, false);
    pk__buf_release(&c->line);
    if (capture_finish(p, s) != 0 && p->fail_err == 0)
      p->fail_err = PK_ENOMEM;
    p->res->out[s] = c->buf;
    memset(&c->buf, 0, sizeof(c->buf));
  }
}

static void set_outcome(pk_proc *p, const pk_exit_info *info) {
  pk_result *r = p->res;
  const char *prog = p->cmd->program;
  r->code = info->outcome == PK_OUTCOME_EXITED ? info->code : -1;
  r->signal = info->outcome == PK_OUTCOME_SIGNALLED ? info->signal : 0;
  r->outcome = info->outcome;
  if (p->timed_out || info->timed_out) {
    r->outcome = PK_OUTCOME_TIMED_OUT;
    r->error = PK_ETIMEOUT;
    /* A timeout the runner reported without one set on this command (a
     * replayed recording, a fake) is told by how long the run took: the
     * command's 0 would read "after 0.000 s". */
    int64_t ms = p->timed_out || p->cmd->timeout_ms > 0
                     ? p->cmd->timeout_ms
                     : r->duration_ns / 1000000;
    pk__result_set_errmsg(r, "%s: timed out after %.3f s and was killed", prog,
                          (double)ms / 1000.0);
  } else if (p->cancelled) {
    r->outcome = PK_OUTCOME_CANCELLED;
    r->error = PK_ECANCELED;
    pk__result_set_errmsg(r, "%s: cancelled", prog);
  }
  if (p->fail_err != 0 && r->error == 0) {
    r->error = p->fail_err;
    if (p->fail_err == PK_ETOOBIG)
      pk__result_set_errmsg(r, "%s: output exceeded the %zu-byte limit", prog,
                            p->cmd->limit_bytes);
    else
      pk__result_set_errmsg(r, "%s: %s", prog, pk_strerror(p->fail_err));
  }
}

static const char *scope_name(const char *s) {
  return s != NULL && strcmp(s, "tree") == 0 ? "tree" : "child";
}

static void finish(pk_proc *p, const pk_exit_info *info) {
  pk_result *r = p->res;
  p->done = true;
  uv_timer_stop(&p->deadline);
  uv_timer_stop(&p->grace);
  r->duration_ns = info->duration_ns > 0 ? info->duration_ns
                                         : (int64_t)(pk__now_ns() - p->t0);
  r->mechanism = info->mechanism;
  r->incomplete = info->output_incomplete;
  r->pid = info->pid;
  r->escapees = info->escapees;
  /* The scopes become pk's own static strings (info's are borrowed). */
  if (info->have_cpu) {
    r->cpu_us = info->cpu_us;
    r->cpu_scope = scope_name(info->cpu_scope);
  }
  if (info->have_memory) {
    r->peak_memory = info->peak_memory;
    r->memory_scope = scope_name(info->memory_scope);
  }
  if (!set_str(&r->spawn_method, info->spawn_method) && p->fail_err == 0)
    p->fail_err = PK_ENOMEM;
  finish_output(p);
  if (info->error != 0) {
    r->error = info->error;
    r->os_errno = info->os_errno;
    set_str(&r->stage, info->stage);
    set_str(&r->errmsg, info->errmsg);
    if (r->errmsg == NULL)
      pk__result_set_errmsg(r, "%s: %s", p->cmd->program,
                            pk_strerror(info->error));
  } else {
    set_outcome(p, info);
  }
  for (size_t i = 0; i < p->ev.ntaps; i++)
    if (p->ev.taps[i].tap->result != NULL)
      p->ev.taps[i].tap->result(p->ev.taps[i].data, p->cmd, r);
  if (p->opts.on_exit != NULL)
    p->opts.on_exit(p, p->opts.data);
}

int pk_events_tap(pk_events *ev, const pk_tap *tap, void *data) {
  if (ev == NULL || tap == NULL)
    return PK_EINVAL;
  if (ev->ntaps == PK__MAX_TAPS)
    return PK_ELIMIT;
  ev->taps[ev->ntaps].tap = tap;
  ev->taps[ev->ntaps].data = data;
  ev->ntaps++;
  return 0;
}

void pk_events_exit(pk_events *ev, const pk_exit_info *info) {
  if (!ev->p->done)
    finish(ev->p, info);
}

/* ------------------------------------------------------------- timers */

/* pk is ending the run (timeout, cancellation, kill, limit): reading must
 * go on so the run can finish, whatever the consumer paused. */
static void ending(pk_proc *p) {
  if (p->paused && p->exec != NULL && !p->done) {
    p->paused = false;
    exec_vt(p)->pause(p->exec, false);
  }
}

static void on_grace(uv_timer_t *t) {
  pk_proc *p = t->data;
  ending(p);
  exec_vt(p)->signal(p->exec, PK_SIGKILL);
}

/* A delay on the clock of the runner that runs it (a decorator may hand
 * the run to an inner runner), in real milliseconds. */
static uint64_t scaled(const pk_proc *p, int64_t ms) {
  const pk_runner *r = p->exec != NULL ? p->exec->runner : p->runner;
  double scale = r->vt->time_scale != NULL ? r->vt->time_scale(r) : 1.0;
  double v = (double)ms * (scale > 0 ? scale : 0);
  return v > 0 ? (uint64_t)v : 0;
}

static void on_deadline(uv_timer_t *t) {
  pk_proc *p = t->data;
  const pk_cmd *c = p->cmd;
  bool kill_now = c->grace_ms == 0 || c->soft_signal == PK_SIGKILL;
  int rc = exec_vt(p)->signal(p->exec, kill_now ? PK_SIGKILL : c->soft_signal);
  if (rc == PK_EUNSUPPORTED && !kill_now) {
    /* No soft step on this runner (Windows): end the tree now rather
     * than after a grace nothing can use. */
    kill_now = true;
    rc = exec_vt(p)->signal(p->exec, PK_SIGKILL);
  }
  if (rc == PK_ESRCH) { /* it exited before the deadline: not a timeout */
    ending(p); /* but a paused consumer must not hold the run past it */
    return;
  }
  p->timed_out = true;
  ending(p);
  if (!kill_now)
    uv_timer_start(
        &p->grace, on_grace,
        scaled(p, c->grace_ms < 0 ? PK__DEFAULT_GRACE_MS : c->grace_ms), 0);
}

static void on_cancel(uv_async_t *a) {
  pk_proc *p = a->data;
  if (atomic_load(&p->cancel_requested) && !p->done && p->exec != NULL) {
    ending(p);
    if (exec_vt(p)->signal(p->exec, PK_SIGKILL) == 0 && !p->timed_out)
      p->cancelled = true;
  }
}

/* A start that failed completes from the loop, never inside pk_start. */
static void on_defer(uv_timer_t *t) {
  pk_proc *p = t->data;
  finish(p, &p->fail);
}

/* -------------------------------------------------------------- handle */

/* Blocking verbs reuse one loop per thread instead of creating and
 * closing one per run (an epoll fd, a signal pipe and their syscalls).
 * It is closed when the thread exits. A verb called from a callback of
 * another blocking run on the same thread gets a fresh loop instead. */
typedef struct thread_loop {
  uv_loop_t loop;
  bool ready, busy;
} thread_loop;

static __thread thread_loop tl;
static pthread_key_t tl_key;
static pthread_once_t tl_once = PTHREAD_ONCE_INIT;

static void tl_destroy(void *arg) {
  thread_loop *t = arg;
  if (t->ready && !t->busy) {
    uv_run(&t->loop, UV_RUN_DEFAULT);
    uv_loop_close(&t->loop);
  }
  t->ready = false;
}

static void tl_key_init(void) { pthread_key_create(&tl_key, tl_destroy); }

static uv_loop_t *thread_loop_acquire(void) {
  if (tl.busy)
    return NULL;
  if (!tl.ready) {
    pthread_once(&tl_once, tl_key_init);
    if (uv_loop_init(&tl.loop) != 0)
      return NULL;
    tl.ready = true;
    pthread_setspecific(tl_key, &tl);
  }
  tl.busy = true;
  return &tl.loop;
}

/* Give back a loop proc_init set up, when it cannot finish. */
static void loop_abandon(pk_proc *p) {
  if (p->thread_loop)
    tl.busy = false;
  else if (p->own)
    uv_loop_close(p->loop);
  p->loop = NULL;
}

static int proc_init(pk_proc *p, pk_runner *r, const pk_cmd *cmd,
                     const pk_start_opts *opts, bool blocking) {
  p->runner = r;
  p->ev.p = p;
  if (opts != NULL)
    p->opts = *opts;
  int rc = pk__host_check();
  if (rc == 0)
    rc = pk_cmd_clone(cmd, &p->cmd);
  if (rc != 0)
    return rc;
  if ((p->res = pk__result_new()) == NULL)
    return PK_ENOMEM;
  p->loop = p->opts.loop;
  if (p->loop == NULL && blocking && (p->loop = thread_loop_acquire())) {
    p->own = p->thread_loop = true;
  } else if (p->loop == NULL) {
    if ((rc = uv_loop_init(&p->own_loop)) != 0)
      return pk__map_uv_error(rc);
    p->own = true;
    p->loop = &p->own_loop;
  }
  if ((rc = uv_async_init(p->loop, &p->cancel, on_cancel)) != 0) {
    loop_abandon(p); /* an eventfd may be one descriptor too many */
    return pk__map_uv_error(rc);
  }
  p->cancel.data = p;
  uv_unref((uv_handle_t *)&p->cancel); /* the run keeps the loop alive */
  uv_timer_t *timers[] = {&p->deadline, &p->grace, &p->defer};
  for (size_t i = 0; i < 3; i++) {
    uv_timer_init(p->loop, timers[i]);
    timers[i]->data = p;
  }
  return 0;
}

static bool cmd_valid(const pk_cmd *c) {
  if (c->stdin_mode == PK_STDIN_BYTES && c->stdin_data == NULL)
    return false;
  if (c->stdin_mode == PK_STDIN_FILE && c->stdin_path == NULL)
    return false;
  return true;
}

static void proc_free_now(pk_proc *p) {
  for (size_t i = p->ev.ntaps; i-- > 0;)
    if (p->ev.taps[i].tap->done != NULL)
      p->ev.taps[i].tap->done(p->ev.taps[i].data);
  pk_cmd_free(p->cmd);
  pk_result_free(p->res);
  pk__free(p->fail_stage);
  pk__free(p->fail_msg);
  for (int s = 0; s < 3; s++) {
    pk__buf_release(&p->cap[s].buf); /* freed before it finished */
    pk__buf_release(&p->cap[s].line);
    pk__free(p->cap[s].ring);
  }
  pk__free(p);
}

static void on_timer_closed(uv_handle_t *h) {
  pk_proc *p = h->data;
  if (--p->closing == 0 && !p->own)
    proc_free_now(p);
}

static void proc_close(pk_proc *p) {
  uv_handle_t *handles[] = {(uv_handle_t *)&p->deadline,
                            (uv_handle_t *)&p->grace, (uv_handle_t *)&p->defer,
                            (uv_handle_t *)&p->cancel};
  p->closing = 4;
  for (size_t i = 0; i < 4; i++)
    uv_close(handles[i], on_timer_closed);
  if (p->own) {
    while (uv_run(p->loop, UV_RUN_DEFAULT) != 0)
      ;
    if (p->thread_loop)
      tl.busy = false;
    else
      uv_loop_close(p->loop);
    proc_free_now(p);
  }
}

static int start(pk_runner *r, const pk_cmd *cmd, const pk_start_opts *opts,
                 bool blocking, pk_proc **out) {
  if (out != NULL)
    *out = NULL;
  if (r == NULL || cmd == NULL || out == NULL || !cmd_valid(cmd))
    return PK_EINVAL;
  pk_proc *p = pk__calloc(1, sizeof(*p));
  if (p == NULL)
    return PK_ENOMEM;
  int rc = proc_init(p, r, cmd, opts, blocking);
  if (rc != 0) {
    if (p->loop != NULL) {
      proc_close(p);
    } else {
      proc_free_now(p);
    }
    return rc;
  }
  p->t0 = pk__now_ns();
  pk_exit_info fail;
  memset(&fail, 0, sizeof(fail));
  rc = r->vt->start(r, p->cmd, p->loop, &p->ev, &p->exec, &fail);
  if (rc != 0) {
    p->fail = fail;
    p->fail.error = rc;
    p->fail_stage = fail.stage ? pk__strdup(fail.stage) : NULL;
    p->fail_msg = fail.errmsg ? pk__strdup(fail.errmsg) : NULL;
    p->fail.stage = p->fail_stage;
    p->fail.errmsg = p->fail_msg;
    p->fail.spawn_method = NULL;
    p->exec = NULL;
    uv_timer_start(&p->defer, on_defer, 0, 0);
  } else if (p->cmd->timeout_ms > 0) {
    /* The loop's clock is only refreshed when it runs: a loop idle since
     * its last run would fire the deadline early. */
    uv_update_time(p->loop);
    uv_timer_start(&p->deadline, on_deadline, scaled(p, p->cmd->timeout_ms), 0);
  }
  *out = p;
  return 0;
}

int pk_start(pk_runner *r, const pk_cmd *cmd, const pk_start_opts *opts,
             pk_proc **out) {
  return start(r, cmd, opts, false, out);
}

int pk__start_blocking(pk_runner *r, const pk_cmd *cmd, pk_proc **out) {
  return start(r, cmd, NULL, true, out);
}

int pk_proc_wait_any(pk_proc *const *procs, size_t n, int64_t timeout_ms,
                     size_t *index) {
  if (procs == NULL || n == 0 || index == NULL || n > INT_MAX)
    return PK_EINVAL;
  for (size_t i = 0; i < n; i++)
    if (procs[i] == NULL || !procs[i]->own)
      return PK_EINVAL;
  uv_loop_t **loops = pk__calloc(n, sizeof(*loops));
  if (loops == NULL)
    return PK_ENOMEM;
  for (size_t i = 0; i < n; i++)
    loops[i] = procs[i]->loop;
  uint64_t deadline = timeout_ms < 0
                          ? UINT64_MAX
                          : pk__now_ns() + (uint64_t)timeout_ms * 1000000u;
  int rc = PK_ETIMEOUT;
  for (;;) {
    for (size_t i = 0; i < n; i++) {
      if (procs[i]->done) {
        *index = i;
        rc = 0;
        goto out;
      }
    }
    int wait = -1;
    uint64_t now = pk__now_ns();
    if (deadline != UINT64_MAX) {
      if (now >= deadline)
        goto out;
      uint64_t left = (deadline - now) / 1000000u + 1;
      wait = (int)(left > INT_MAX ? INT_MAX : left);
    }
    pk__loops_wait(loops, n, wait);
    for (size_t i = 0; i < n; i++)
      if (!procs[i]->done)
        uv_run(procs[i]->loop, UV_RUN_NOWAIT);
  }
out:
  pk__free(loops);
  return rc;
}

int pk_proc_wait(pk_proc *p) {
  if (p == NULL || !p->own)
    return PK_EINVAL;
  while (!p->done) {
    if (uv_run(p->loop, UV_RUN_ONCE) == 0 && !p->done)
      return PK_EIO; /* a runner that never reports exit: a bug */
  }
  return p->res != NULL ? p->res->error : 0;
}

bool pk_proc_done(const pk_proc *p) { return p != NULL && p->done; }

int pk_proc_kill(pk_proc *p, int sig) {
  if (p == NULL || sig < 0 || sig >= PK_NSIG)
    return PK_EINVAL;
  if (p->done || p->exec == NULL)
    return PK_ESRCH;
  if (sig == PK_SIGKILL)
    ending(p);
  int rc = exec_vt(p)->signal(p->exec, sig);
  if (rc == 0 && sig == PK_SIGKILL && !p->timed_out)
    p->cancelled = true;
  return rc;
}

static int set_paused(pk_proc *p, bool on) {
  if (p == NULL)
    return PK_EINVAL;
  if (p->done || p->exec == NULL)
    return PK_ESRCH;
  if (exec_vt(p)->pause == NULL)
    return PK_EUNSUPPORTED;
  if (p->paused == on)
    return 0;
  int rc = exec_vt(p)->pause(p->exec, on);
  if (rc == 0)
    p->paused = on;
  return rc;
}

int pk_proc_pause_output(pk_proc *p) {
  if (p != NULL && (p->timed_out || p->cancelled || p->fail_err != 0))
    return 0; /* pk is ending the run: it must read to the end */
  return set_paused(p, true);
}

int pk_proc_resume_output(pk_proc *p) { return set_paused(p, false); }

int pk_proc_close_output(pk_proc *p, pk_stream s) {
  if (p == NULL || (s != PK_STDOUT && s != PK_STDERR))
    return PK_EINVAL;
  if (p->done || p->exec == NULL)
    return PK_ESRCH;
  if (exec_vt(p)->close_output == NULL)
    return PK_EUNSUPPORTED;
  return exec_vt(p)->close_output(p->exec, s);
}

int pk_proc_cancel(pk_proc *p) {
  if (p == NULL)
    return PK_EINVAL;
  atomic_store(&p->cancel_requested, true);
  return uv_async_send(&p->cancel) == 0 ? 0 : PK_EIO;
}

const pk_result *pk_proc_result(const pk_proc *p) {
  return p != NULL && p->done ? p->res : NULL;
}

pk_result *pk_proc_take_result(pk_proc *p) {
  if (p == NULL || !p->done)
    return NULL;
  pk_result *r = p->res;
  p->res = NULL;
  return r;
}

int pk_proc_pid(const pk_proc *p) {
  if (p == NULL)
    return 0;
  if (p->done)
    return p->res ? p->res->pid : 0;
  return p->exec != NULL ? p->exec->pid : 0;
}

void pk_proc_free(pk_proc *p) {
  if (p == NULL)
    return;
  if (p->exec != NULL) {
    exec_vt(p)->release(p->exec);
    p->exec = NULL;
  }
  p->done = true;
  proc_close(p);
}
