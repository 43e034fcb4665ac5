/* The cassette runner: answers a command from a recorded entry through
 * the fakes' player (one pump, one player), or runs it through the inner
 * runner and records what the core saw through a tap. */
#include "cassette_internal.h"
#include "fakes_internal.h"
#include "internal.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

extern char **environ;

/* ------------------------------------------------------------ replay */

static int64_t ms_of(int64_t us) { return us > 0 ? (us + 999) / 1000 : 0; }

/* An entry (placeholders restored) as a timeline for the player. */
static pk_reply *reply_of(const pkc_entry *e, const pk_cmd *cmd) {
  pk_reply *r = pk__reply_new(END_EXIT);
  if (r == NULL)
    return NULL;
  int64_t prev = 0;
  for (size_t i = 0; i < e->nevents; i++) {
    const pkc_event *ev = &e->events[i];
    if (ev->kind != PKC_EV_STDOUT && ev->kind != PKC_EV_STDERR)
      continue; /* stdin events: for dialogs, a later issue */
    int64_t t = ev->t_us > prev ? ev->t_us : prev;
    if (pk_reply_chunk(r, (pk_stream)ev->kind, ms_of(t) - ms_of(prev), ev->data,
                       ev->len) != 0) {
      pk_reply_free(r);
      return NULL;
    }
    prev = t;
  }
  r->end_delay_ms = ms_of(e->duration_us) - ms_of(prev);
  /* The recorded duration includes the drain an incomplete run waited
   * out, and the player waits out the command's drain itself. */
  if (e->incomplete)
    r->end_delay_ms -= pk_cmd_drain_ms(cmd);
  if (r->end_delay_ms < 0)
    r->end_delay_ms = 0;
  r->duration_ns = e->duration_us > 0 ? e->duration_us * 1000 : 1;
  /* Bytes the recording cap cut are missing: say the output is not whole. */
  r->incomplete = e->incomplete || e->truncated;
  switch (e->end) {
  case PKC_END_EXIT:
    r->code = e->code;
    break;
  case PKC_END_SIGNAL:
    r->end = END_SIGNAL;
    r->sig = e->signal;
    break;
  case PKC_END_TIMEOUT: {
    r->end = END_TIMEOUT;
    int soft = cmd->soft_signal > 0 ? cmd->soft_signal : PK_SIGTERM;
    if (soft == PK_SIGKILL || soft >= 65)
      break;
    /* It took the grace's SIGKILL: the soft signal did nothing. */
    if (e->signal == PK_SIGKILL)
      r->trap[soft] = -1;
    /* It exited on the soft signal: answer it with that code. */
    else if (e->signal == 0 && e->code >= 0 && e->code < 256)
      r->trap[soft] = (short)(1 + e->code);
    break;
  }
  case PKC_END_ERROR:
    r->end = END_SPAWN_ERROR;
    r->error = e->error;
    r->os_errno = e->os_errno;
    r->stage = e->stage ? pk__strdup(e->stage) : pk__strdup("exec");
    r->errmsg = e->errmsg ? pk__strdup(e->errmsg) : NULL;
    if (r->stage == NULL || (e->errmsg != NULL && r->errmsg == NULL)) {
      pk_reply_free(r);
      return NULL;
    }
    break;
  }
  return r;
}

/* Seconds since recorded_at ("2026-11-29T12:00:00.123Z"); -1 unknown. */
static int64_t age_s(const char *recorded_at) {
  int64_t t;
  uv_timeval64_t now;
  if (pkc_utc_parse(recorded_at, &t) != 0 || uv_gettimeofday(&now) != 0)
    return -1;
  return now.tv_sec - t;
}

static bool is_stale(const pk_cassette *c, const pkc_entry *e) {
  if (c->opts.stale == PK_STALE_IGNORE || c->opts.max_age_s <= 0)
    return false;
  return age_s(e->recorded_at) > c->opts.max_age_s;
}

/* --------------------------------------------------------- recording */

struct pkc_rec {
  pk_cassette *c;
  uv_loop_t *loop;
  uint64_t t0;
  pkc_entry e;
  size_t cap_events;
  uint64_t kept;    /* bytes kept in events */
  char carry[3][4]; /* an incomplete UTF-8 character per stream */
  size_t ncarry[3];
};

/* The bytes at the end of s[0..len) that begin a UTF-8 character whose
 * rest has not arrived yet (0 when none). */
static size_t incomplete_tail(const char *s, size_t len) {
  for (size_t back = 1; back <= 3 && back <= len; back++) {
    unsigned char ch = (unsigned char)s[len - back];
    if ((ch & 0xC0) == 0x80)
      continue; /* a continuation byte: look further back */
    size_t need = ch >= 0xF0 && ch <= 0xF4   ? 4
                  : ch >= 0xE0 && ch <= 0xEF ? 3
                  : ch >= 0xC2 && ch <= 0xDF ? 2
                                             : 0;
    return need > back ? back : 0;
  }
  return 0;
}

static int add_event(pkc_rec *r, pkc_event_kind kind, const char *data,
                     size_t len, int64_t t_us) {
  if (len == 0)
    return 0;
  if (r->e.nevents == r->cap_events) {
    size_t cap = r->cap_events ? 2 * r->cap_events : 8;
    pkc_event *v = pk__realloc(r->e.events, cap * sizeof(pkc_event));
    if (v == NULL)
      return PK_ENOMEM;
    r->e.events = v;
    r->cap_events = cap;
  }
  char *copy = pk__malloc(len + 1);
  if (copy == NULL)
    return PK_ENOMEM;
  memcpy(copy, data, len);
  copy[len] = '\0';
  pkc_event *ev = &r->e.events[r->e.nevents++];
  ev->kind = kind;
  ev->t_us = t_us;
  ev->data = copy;
  ev->len = len;
  return 0;
}

static int64_t rec_offset(const pkc_rec *r) {
  int64_t us = (int64_t)((uv_hrtime() - r->t0) / 1000);
  if (!r->c->opts.precise_timing)
    us -= us % 10000; /* 10 ms steps: re-records do not churn */
  return us;
}

static void tap_output(void *data, pk_stream s, const char *buf, size_t len) {
  pkc_rec *r = data;
  int si = (int)s;
  size_t cap = r->c->opts.max_entry_bytes;
  if (r->e.truncated)
    return;
  if (r->kept + len > cap) {
    len = (size_t)(cap - r->kept);
    r->e.truncated = true;
  }
  r->kept += len;
  /* Cut text at character boundaries: a character split across two
   * reads is carried to the stream's next chunk. */
  pk__buf joined = {0};
  if (pk__buf_append(&joined, r->carry[si], r->ncarry[si]) != 0 ||
      pk__buf_append(&joined, buf, len) != 0) {
    pk__buf_release(&joined);
    r->e.truncated = true;
    return;
  }
  size_t n = joined.len;
  size_t tail = r->e.truncated ? 0 : incomplete_tail(joined.data, n);
  if (tail > 0 && pkc_utf8_valid_prefix(joined.data, n - tail) != n - tail)
    tail = 0; /* not text anyway: keep the chunk whole */
  r->ncarry[si] = tail;
  memcpy(r->carry[si], joined.data + n - tail, tail);
  if (add_event(r, (pkc_event_kind)s, joined.data, n - tail, rec_offset(r)) !=
      0)
    r->e.truncated = true;
  pk__buf_release(&joined);
}

static void fill_end(pkc_entry *e, const pk_result *res) {
  switch (pk_result_outcome(res)) {
  case PK_OUTCOME_EXITED:
    e->end = PKC_END_EXIT;
    e->code = pk_result_code(res);
    break;
  case PK_OUTCOME_SIGNALLED:
    e->end = PKC_END_SIGNAL;
    e->signal = pk_result_signal(res);
    break;
  case PK_OUTCOME_TIMED_OUT:
    e->end = PKC_END_TIMEOUT;
    e->signal = pk_result_signal(res);
    e->code = pk_result_code(res); /* -1 unless it exited on the signal */
    break;
  default:
    e->end = PKC_END_ERROR;
    e->error = pk_result_error(res);
    e->os_errno = pk_result_os_errno(res);
    e->stage = pk_result_stage(res) ? pk__strdup(pk_result_stage(res)) : NULL;
    e->errmsg =
        pk_result_errmsg(res) ? pk__strdup(pk_result_errmsg(res)) : NULL;
    break;
  }
}

static void tap_result(void *data, const pk_cmd *cmd, const pk_result *res) {
  pkc_rec *r = data;
  (void)cmd;
  if (pk_result_outcome(res) == PK_OUTCOME_CANCELLED)
    return; /* never recorded: it says nothing about the command */
  for (int s = PK_STDOUT; s <= PK_STDERR; s++) {
    if (r->ncarry[s] > 0 && add_event(r, (pkc_event_kind)s, r->carry[s],
                                      r->ncarry[s], rec_offset(r)) != 0)
      r->e.truncated = true;
    r->ncarry[s] = 0;
    r->e.total_bytes[s] = pk_result_total_bytes(res, (pk_stream)s);
    r->e.total_lines[s] = pk_result_total_lines(res, (pk_stream)s);
  }
  fill_end(&r->e, res);
  r->e.duration_us = pk_result_duration_ms(res) >= 0
                         ? (int64_t)(pk_result_duration_s(res) * 1e6)
                         : 0;
  if (!r->c->opts.precise_timing) /* whole ms: a fast run is not 0 */
    r->e.duration_us -= r->e.duration_us % 1000;
  r->e.incomplete = pk_result_output_incomplete(res);
  pkc_add_recording(r->c, &r->e); /* takes the entry */
}

static void tap_done(void *data) {
  pkc_rec *r = data;
  pkc_entry_clear(&r->e);
  pk__free(r);
}

static const pk_tap rec_tap = {tap_output, tap_result, tap_done};

static void utc_now(char out[32]) {
  uv_timeval64_t now = {0, 0};
  uv_gettimeofday(&now);
  pkc_utc_format(now.tv_sec, (int)(now.tv_usec / 1000), out);
}

static int add_name(pkc_entry *e, const char *name) {
  for (size_t i = 0; i < e->nenv_names; i++)
    if (strcmp(e->env_names[i], name) == 0)
      return 0;
  char **v = pk__realloc(e->env_names, (e->nenv_names + 1) * sizeof(char *));
  if (v == NULL)
    return PK_ENOMEM;
  e->env_names = v;
  if ((v[e->nenv_names] = pk__strdup(name)) == NULL)
    return PK_ENOMEM;
  e->nenv_names++;
  return 0;
}

/* The entry's command half: what the command was, never env values. */
static int rec_begin(pk_cassette *c, const pk_cmd *cmd, const pkc_key *k,
                     pkc_rec *r) {
  pkc_entry *e = &r->e;
  char now[32];
  utc_now(now);
  size_t n = pk_cmd_argc(cmd);
  e->recorded_at = pk__strdup(now);
  e->program = pk__strdup(pk_cmd_program(cmd));
  e->args = pk__calloc(n + 1, sizeof(char *));
  if (e->recorded_at == NULL || e->program == NULL || e->args == NULL)
    return PK_ENOMEM;
  for (size_t i = 0; i < n; i++, e->nargs++)
    if ((e->args[i] = pk__strdup(pk_cmd_argv(cmd, i))) == NULL)
      return PK_ENOMEM;
  char buf[4096];
  const char *cwd = pk_cmd_cwd(cmd);
  if (cwd == NULL)
    cwd = pk__cwd(buf, sizeof(buf));
  if (cwd != NULL && (e->cwd = pk__strdup(cwd)) == NULL)
    return PK_ENOMEM;
  int rc = 0;
  for (size_t i = 0; rc == 0 && i < pk_cmd_env_count(cmd); i++)
    rc = add_name(e, pk_cmd_env_name(cmd, i, NULL));
  for (size_t i = 0; rc == 0 && i < pk_cmd_inherit_count(cmd); i++)
    rc = add_name(e, pk_cmd_inherit_name(cmd, i));
  for (size_t i = 0; rc == 0 && i < c->opts.nmatch_env; i++)
    rc = add_name(e, c->match_env[i]);
  if (rc != 0)
    return rc;
  if (k->env_digest != NULL &&
      (e->env_digest = pk__strdup(k->env_digest)) == NULL)
    return PK_ENOMEM;
  e->stdin_kind = k->stdin_kind;
  memcpy(e->stdin_sha256, k->stdin_sha256, sizeof(e->stdin_sha256));
  e->stdin_bytes = k->stdin_bytes;
  r->t0 = uv_hrtime();
  return 0;
}

/* ------------------------------------------------------------- start */

/* A secret-looking variable the command sets (pk_cmd_env_set) is
 * registered like one found in the environment at open: redacted when
 * saving, restored on replay. The same rules as pkc_subst_auto_env, so
 * a second value under a taken name becomes NAME_2 instead of replacing
 * the first (which would then reach the file). Under c->mu, before the
 * command's key is computed, in every mode. */
static int env_secrets(pk_cassette *c, const pk_cmd *cmd) {
  int rc = 0;
  for (size_t i = 0; rc == 0 && i < pk_cmd_env_count(cmd); i++) {
    const char *value;
    const char *name = pk_cmd_env_name(cmd, i, &value);
    if (value == NULL)
      continue;
    char *kv = pk__sprintf("%s=%s", name, value);
    const char *envp[] = {kv, NULL};
    rc = kv != NULL ? pkc_subst_auto_env(c->subst, envp) : PK_ENOMEM;
    pk__free(kv);
  }
  return rc;
}

static bool passthrough(const pk_cassette *c, const char *program) {
  const char *base = strrchr(program, '/');
  base = base ? base + 1 : program;
  for (size_t i = 0; i < c->opts.npassthrough; i++)
    if (strcmp(c->passthrough[i], program) == 0 ||
        strcmp(c->passthrough[i], base) == 0)
      return true;
  return false;
}

static int fail_with(pk_exit_info *fail, int rc, const char *stage,
                     const char *msg) {
  static __thread char buf[4096];
  snprintf(buf, sizeof(buf), "%s", msg);
  fail->stage = stage;
  fail->errmsg = buf;
  fail->spawn_method = "cassette";
  return rc;
}

/* Whether s, with the cassette's placeholders in, is text format 1 can
 * store: 1 yes, 0 no, or PK_ENOMEM. */
static int storable(const pk_cassette *c, const char *s) {
  char *t = NULL;
  if (s == NULL)
    return 1;
  if (pkc_subst_apply_str(c->subst, s, &t) != 0)
    return PK_ENOMEM;
  int ok = pkc_utf8_valid_prefix(t, strlen(t)) == strlen(t);
  pk__free(t);
  return ok;
}

/* A command whose program, argument or directory is not UTF-8 (after
 * the placeholders) could never be saved, and would make every later
 * save of the session fail: it is refused before anything runs. Under
 * c->mu. Returns 0, or the run's error with *fail set. */
static int check_storable(const pk_cassette *c, const pk_cmd *cmd,
                          pk_exit_info *fail) {
  char buf[4096], field[32] = "";
  const char *cwd = pk_cmd_cwd(cmd);
  if (cwd == NULL)
    cwd = pk__cwd(buf, sizeof(buf));
  int ok = storable(c, pk_cmd_program(cmd));
  if (ok != 1)
    snprintf(field, sizeof(field), "program");
  if (ok == 1 && (ok = storable(c, cwd)) != 1)
    snprintf(field, sizeof(field), "cwd");
  for (size_t i = 0; ok == 1 && i < pk_cmd_argc(cmd); i++)
    if ((ok = storable(c, pk_cmd_argv(cmd, i))) != 1)
      snprintf(field, sizeof(field), "args[%zu]", i);
  if (ok == 1)
    return 0;
  if (ok < 0)
    return ok;
  char *msg = pk__sprintf("%s: %s: not run: the command's %s is not valid "
                          "UTF-8, and cassettes store commands as text",
                          c->path, pk_cmd_program(cmd), field);
  int rc = fail_with(fail, PK_EINVAL, "cassette",
                     msg ? msg : "a command that is not UTF-8");
  pk__free(msg);
  return rc;
}

static int record(pk_cassette *c, const pk_cmd *cmd, const pkc_key *k,
                  uv_loop_t *loop, pk_events *ev, pk_exec **out,
                  pk_exit_info *fail) {
  pkc_rec *r = pk__calloc(1, sizeof(*r));
  if (r == NULL)
    return PK_ENOMEM;
  r->c = c;
  r->loop = loop;
  pthread_mutex_lock(&c->mu);
  int rc = rec_begin(c, cmd, k, r);
  pthread_mutex_unlock(&c->mu);
  if (rc == 0)
    rc = pk_events_tap(ev, &rec_tap, r);
  if (rc != 0) {
    tap_done(r);
    return rc;
  }
  /* From here the tap owns r (done frees it), whatever the start says:
   * a spawn error is recorded like any other end. */
  return c->opts.inner->vt->start(c->opts.inner, cmd, loop, ev, out, fail);
}

static int cas_start(pk_runner *self, const pk_cmd *cmd, uv_loop_t *loop,
                     pk_events *ev, pk_exec **out, pk_exit_info *fail) {
  pk_cassette *c = (pk_cassette *)self;
  if (passthrough(c, pk_cmd_program(cmd))) {
    if (c->opts.inner == NULL)
      return fail_with(fail, PK_EINVAL, "cassette",
                       "pass-through program but the cassette has no inner "
                       "runner");
    return c->opts.inner->vt->start(c->opts.inner, cmd, loop, ev, out, fail);
  }
  pkc_key k;
  /* The key reads the placeholders, which other threads may add to. */
  pthread_mutex_lock(&c->mu);
  int rc = env_secrets(c, cmd);
  if (rc == 0)
    rc = pkc_key_of_cmd(c, cmd, &k);
  if (rc != 0) {
    pthread_mutex_unlock(&c->mu);
    return rc;
  }
  size_t hit = SIZE_MAX;
  pkc_slot *consumed = NULL;
  if (!c->record_all && c->opts.matcher != NULL) {
    hit = pkc_match_custom(c, cmd, NULL);
  } else if (!c->record_all) {
    pkc_slot *s = pkc_index_find(c, k.digest);
    if (s != NULL && s->played < s->n)
      hit = s->idx[s->played];
    else if (s != NULL && !c->strict)
      hit = s->idx[s->n - 1]; /* the last one repeats */
    else if (s != NULL)
      consumed = s;
    if (hit != SIZE_MAX)
      s->played++;
  }
  bool stale = hit != SIZE_MAX && is_stale(c, &c->file->entries[hit]);
  if (stale && c->opts.stale == PK_STALE_RERECORD && c->recording) {
    c->replaced[hit] = true;
    hit = SIZE_MAX;
  } else if (stale && c->opts.stale != PK_STALE_WARN) {
    char *msg = pk__sprintf(
        "%s: the entry %s in %s was recorded at %s, more than %lld s ago "
        "(re-record it: PK_RECORD_MODE=new_episodes with the stale policy "
        "rerecord, or PK_RECORD_MODE=all)",
        pk_cmd_program(cmd), c->file->entries[hit].id, c->path,
        c->file->entries[hit].recorded_at, (long long)c->opts.max_age_s);
    pthread_mutex_unlock(&c->mu);
    pkc_key_clear(&k);
    rc = fail_with(fail, PK_ECASSETTE_STALE, "cassette",
                   msg ? msg : "stale entry");
    pk__free(msg);
    return rc;
  } else if (stale) {
    c->stale++;
  }
  if (hit != SIZE_MAX) {
    c->played[hit]++;
    pkc_entry copy;
    rc = pkc_entry_copy(&copy, &c->file->entries[hit]);
    /* Under the lock: another thread's recording may add a secret. */
    if (rc == 0)
      rc = pkc_subst_restore(c->subst, &copy);
    pthread_mutex_unlock(&c->mu);
    pkc_key_clear(&k);
    pk_reply *reply = rc == 0 ? reply_of(&copy, cmd) : NULL;
    pkc_entry_clear(&copy);
    if (reply == NULL)
      return rc != 0 ? rc : PK_ENOMEM;
    double scale = c->opts.speed > 0 ? 1.0 / c->opts.speed : 0;
    return pk__player_start_owned(self, reply, cmd, loop, ev, scale, out, fail);
  }
  bool can_record = c->recording && c->opts.inner != NULL;
  if (can_record && !(consumed != NULL && c->mode == PK_RECORD_NONE)) {
    rc = check_storable(c, cmd, fail);
    pthread_mutex_unlock(&c->mu);
    if (rc == 0)
      rc = record(c, cmd, &k, loop, ev, out, fail);
    pkc_key_clear(&k);
    return rc;
  }
  char *msg = pkc_miss_message(c, cmd, &k, consumed);
  pthread_mutex_unlock(&c->mu);
  pkc_key_clear(&k);
  if (msg == NULL)
    return PK_ENOMEM;
  if (c->recording && c->opts.inner == NULL) {
    char *m2 = pk__sprintf("%s\n  (recording needs an inner runner: "
                           "pk_cassette_opts.inner is NULL)",
                           msg);
    if (m2 != NULL) {
      pk__free(msg);
      msg = m2;
    }
  }
  rc = fail_with(fail, PK_ECASSETTE_MISS, "cassette", msg);
  pkc_add_miss(c, msg);
  return rc;
}

static int cas_signal(pk_exec *e, int sig) { return pk__player_signal(e, sig); }
static void cas_release(pk_exec *e) { pk__player_release(e); }
static int cas_pause(pk_exec *e, bool on) { return pk__player_pause(e, on); }
static int cas_close_output(pk_exec *e, pk_stream s) {
  return pk__player_close_output(e, s);
}
static void cas_destroy(pk_runner *self) {
  (void)self; /* owned by its cassette: pk_cassette_close frees it */
}
static double cas_time_scale(const pk_runner *self) {
  const pk_cassette *c = (const pk_cassette *)self;
  return c->opts.speed > 0 ? 1.0 / c->opts.speed : 0;
}

const pk_runner_vtable pkc_runner_vt = {
    .name = "cassette",
    .start = cas_start,
    .signal = cas_signal,
    .release = cas_release,
    .destroy = cas_destroy,
    .pause = cas_pause,
    .close_output = cas_close_output,
    .time_scale = cas_time_scale,
};
