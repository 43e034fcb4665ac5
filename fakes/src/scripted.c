/* The scripted runner: rules tried in registration order, each with a
 * sequence of replies; the answer is played into the core like a real
 * child. A command no rule matches is a loud PK_EUNEXPECTED naming the
 * command and the closest rule. */
#include "fakes_internal.h"
#include "internal.h"

#include <pthread.h>
#include <stdio.h>
#include <string.h>

typedef enum rule_kind {
  RULE_PREFIX,
  RULE_GLOB,
  RULE_PROGRAM,
  RULE_PRED
} rule_kind;

typedef struct rule {
  rule_kind kind;
  char **argv;
  size_t n;
  pk_script_pred pred;
  void *data;
  char *desc;
  pk_reply **replies;
  size_t nreplies, served;
} rule;

typedef struct scripted {
  pk_runner base;
  pthread_mutex_t mu;
  rule *rules;
  size_t nrules;
  pk_reply *fallback;
  double scale;
  size_t calls;
} scripted;

static const pk_runner_vtable scripted_vtable;

static scripted *as_scripted(const pk_runner *r) {
  return r != NULL && r->vt == &scripted_vtable ? (scripted *)(void *)r : NULL;
}

/* ------------------------------------------------------------- matching */

static const char *base_name(const char *p) {
  const char *s = strrchr(p, '/');
  return s ? s + 1 : p;
}

/* Element i of the command: program, then its args. */
static const char *cmd_elem(const pk_cmd *cmd, size_t i) {
  return i == 0 ? pk_cmd_program(cmd) : pk_cmd_argv(cmd, i - 1);
}

static bool elem_matches(const rule *r, size_t i, const char *have) {
  const char *want = r->argv[i];
  if (r->kind == RULE_GLOB) {
    if (pk__glob_match(want, have))
      return true;
    return i == 0 && strchr(want, '/') == NULL &&
           pk__glob_match(want, base_name(have));
  }
  if (strcmp(want, have) == 0)
    return true;
  return i == 0 && strchr(want, '/') == NULL &&
         strcmp(want, base_name(have)) == 0;
}

/* How many leading elements match (for the "closest rule" message). */
static size_t matched_prefix(const rule *r, const pk_cmd *cmd) {
  size_t have = pk_cmd_argc(cmd) + 1, i = 0;
  while (i < r->n && i < have && elem_matches(r, i, cmd_elem(cmd, i)))
    i++;
  return i;
}

static bool rule_matches(const rule *r, const pk_cmd *cmd) {
  if (r->kind == RULE_PRED)
    return r->pred(cmd, r->data);
  return matched_prefix(r, cmd) == r->n;
}

static char *describe_rule(const rule *r) {
  if (r->kind == RULE_PRED)
    return pk__sprintf("predicate '%s'", r->desc ? r->desc : "?");
  char *argv =
      pk__format_argv(r->argv[0], (const char *const *)r->argv + 1, r->n - 1);
  char *d = pk__sprintf("%s %s%s", r->kind == RULE_GLOB ? "glob" : "prefix",
                        argv ? argv : "?",
                        r->kind == RULE_PROGRAM ? " (any args)" : "");
  pk__free(argv);
  return d;
}

/* "unexpected command: ...; closest rule: #k ..." (thread-local text). */
static const char *unexpected_message(const scripted *s, const pk_cmd *cmd) {
  static __thread char msg[1024];
  char *have = pk__format_argv(pk_cmd_program(cmd), NULL, 0);
  size_t n = pk_cmd_argc(cmd);
  const char **args = pk__calloc(n + 1, sizeof(char *));
  for (size_t i = 0; args != NULL && i < n; i++)
    args[i] = pk_cmd_argv(cmd, i);
  pk__free(have);
  have = pk__format_argv(pk_cmd_program(cmd), args, args ? n : 0);
  pk__free(args);
  size_t best = 0, best_score = 0;
  for (size_t i = 0; i < s->nrules; i++) {
    size_t score = matched_prefix(&s->rules[i], cmd);
    if (s->rules[i].kind != RULE_PRED && score > best_score) {
      best = i;
      best_score = score;
    }
  }
  char *closest = s->nrules ? describe_rule(&s->rules[best]) : NULL;
  if (closest != NULL)
    snprintf(msg, sizeof(msg), "unexpected command: %s; closest rule: #%zu %s",
             have ? have : "?", best + 1, closest);
  else
    snprintf(msg, sizeof(msg), "unexpected command: %s; no rules registered",
             have ? have : "?");
  pk__free(closest);
  pk__free(have);
  return msg;
}

/* The reply for cmd (borrowed), or NULL. Called with the lock held. */
static const pk_reply *pick(scripted *s, const pk_cmd *cmd) {
  for (size_t i = 0; i < s->nrules; i++) {
    rule *r = &s->rules[i];
    if (!rule_matches(r, cmd))
      continue;
    size_t k = r->served < r->nreplies ? r->served : r->nreplies - 1;
    r->served++;
    return r->replies[k];
  }
  return s->fallback;
}

/* --------------------------------------------------------------- runner */

static int scripted_start(pk_runner *self, const pk_cmd *cmd, uv_loop_t *loop,
                          pk_events *ev, pk_exec **out, pk_exit_info *fail) {
  scripted *s = as_scripted(self);
  pthread_mutex_lock(&s->mu);
  const pk_reply *reply = pick(s, cmd);
  double scale = s->scale;
  if (reply != NULL)
    s->calls++;
  else {
    fail->errmsg = unexpected_message(s, cmd);
    fail->stage = "script";
  }
  pthread_mutex_unlock(&s->mu);
  if (reply == NULL) {
    fail->spawn_method = "scripted";
    return PK_EUNEXPECTED;
  }
  return pk__player_start(self, reply, cmd, loop, ev, scale, out, fail);
}

static double scripted_scale(const pk_runner *self) {
  return as_scripted(self)->scale;
}

static void rule_release(rule *r) {
  for (size_t i = 0; i < r->n; i++)
    pk__free(r->argv[i]);
  pk__free(r->argv);
  pk__free(r->desc);
  for (size_t i = 0; i < r->nreplies; i++)
    pk_reply_free(r->replies[i]);
  pk__free(r->replies);
}

static void scripted_destroy(pk_runner *self) {
  scripted *s = as_scripted(self);
  for (size_t i = 0; i < s->nrules; i++)
    rule_release(&s->rules[i]);
  pk__free(s->rules);
  pk_reply_free(s->fallback);
  pthread_mutex_destroy(&s->mu);
  pk__free(s);
}

static const pk_runner_vtable scripted_vtable = {
    .name = "scripted",
    .start = scripted_start,
    .signal = pk__player_signal,
    .release = pk__player_release,
    .pause = pk__player_pause,
    .close_output = pk__player_close_output,
    .destroy = scripted_destroy,
    .time_scale = scripted_scale,
};

int pk_scripted_new(pk_runner **out) {
  if (out == NULL)
    return PK_EINVAL;
  *out = NULL;
  scripted *s = pk__calloc(1, sizeof(*s));
  if (s == NULL)
    return PK_ENOMEM;
  s->base.vt = &scripted_vtable;
  pthread_mutex_init(&s->mu, NULL);
  *out = &s->base;
  return 0;
}

int pk_scripted_set_time_scale(pk_runner *r, double scale) {
  scripted *s = as_scripted(r);
  if (s == NULL || !(scale >= 0) || scale > 1e6)
    return PK_EINVAL;
  pthread_mutex_lock(&s->mu);
  s->scale = scale;
  pthread_mutex_unlock(&s->mu);
  return 0;
}

size_t pk_scripted_calls(const pk_runner *r) {
  scripted *s = as_scripted(r);
  if (s == NULL)
    return 0;
  pthread_mutex_lock(&s->mu);
  size_t n = s->calls;
  pthread_mutex_unlock(&s->mu);
  return n;
}

/* ---------------------------------------------------------------- rules */

/* Append a rule (taking reply). On failure the reply is freed. */
static int add_rule(scripted *s, rule *r, pk_reply *reply) {
  int rc = reply == NULL ? PK_ENOMEM : 0;
  pk_reply **replies = rc ? NULL : pk__calloc(1, sizeof(pk_reply *));
  pthread_mutex_lock(&s->mu);
  rule *rules =
      replies ? pk__realloc(s->rules, (s->nrules + 1) * sizeof(rule)) : NULL;
  if (rules != NULL) {
    s->rules = rules;
    r->replies = replies;
    r->replies[0] = reply;
    r->nreplies = 1;
    s->rules[s->nrules++] = *r;
  }
  pthread_mutex_unlock(&s->mu);
  if (rules == NULL) {
    pk__free(replies);
    pk_reply_free(reply);
    rule_release(r);
    return PK_ENOMEM;
  }
  return 0;
}

static int add_argv_rule(pk_runner *runner, rule_kind kind,
                         const char *const *argv, size_t n, pk_reply *reply) {
  scripted *s = as_scripted(runner);
  bool ok = s != NULL && argv != NULL && n > 0;
  for (size_t i = 0; ok && i < n; i++)
    ok = argv[i] != NULL;
  if (!ok) {
    pk_reply_free(reply);
    return PK_EINVAL;
  }
  rule r = {.kind = kind, .n = 0};
  r.argv = pk__calloc(n, sizeof(char *));
  for (size_t i = 0; r.argv != NULL && i < n; i++, r.n++)
    if ((r.argv[i] = pk__strdup(argv[i])) == NULL)
      break;
  if (r.argv == NULL || r.n < n) {
    rule_release(&r);
    pk_reply_free(reply);
    return PK_ENOMEM;
  }
  return add_rule(s, &r, reply);
}

int pk_script_prefix(pk_runner *r, const char *const *argv, size_t n,
                     pk_reply *reply) {
  return add_argv_rule(r, RULE_PREFIX, argv, n, reply);
}

int pk_script_glob(pk_runner *r, const char *const *patterns, size_t n,
                   pk_reply *reply) {
  return add_argv_rule(r, RULE_GLOB, patterns, n, reply);
}

int pk_script_program(pk_runner *r, const char *program, pk_reply *reply) {
  const char *argv[1] = {program};
  return add_argv_rule(r, RULE_PROGRAM, argv, 1, reply);
}

int pk_script_match(pk_runner *runner, pk_script_pred pred, void *data,
                    const char *desc, pk_reply *reply) {
  scripted *s = as_scripted(runner);
  if (s == NULL || pred == NULL) {
    pk_reply_free(reply);
    return PK_EINVAL;
  }
  rule r = {.kind = RULE_PRED, .pred = pred, .data = data};
  if (desc != NULL && (r.desc = pk__strdup(desc)) == NULL) {
    pk_reply_free(reply);
    return PK_ENOMEM;
  }
  return add_rule(s, &r, reply);
}

int pk_script_then(pk_runner *runner, pk_reply *reply) {
  scripted *s = as_scripted(runner);
  int rc = s == NULL ? PK_EINVAL : reply == NULL ? PK_ENOMEM : 0;
  if (rc == 0) {
    pthread_mutex_lock(&s->mu);
    rule *r = s->nrules ? &s->rules[s->nrules - 1] : NULL;
    pk_reply **v =
        r ? pk__realloc(r->replies, (r->nreplies + 1) * sizeof(pk_reply *))
          : NULL;
    if (v != NULL) {
      r->replies = v;
      v[r->nreplies++] = reply;
    }
    rc = r == NULL ? PK_EINVAL : v == NULL ? PK_ENOMEM : 0;
    pthread_mutex_unlock(&s->mu);
  }
  if (rc != 0)
    pk_reply_free(reply);
  return rc;
}

int pk_script_fallback(pk_runner *runner, pk_reply *reply) {
  scripted *s = as_scripted(runner);
  if (s == NULL || reply == NULL) {
    pk_reply_free(reply);
    return s == NULL ? PK_EINVAL : PK_ENOMEM;
  }
  pthread_mutex_lock(&s->mu);
  pk_reply *old = s->fallback;
  s->fallback = reply;
  pthread_mutex_unlock(&s->mu);
  pk_reply_free(old);
  return 0;
}

/* ------------------------------------------------------------ messages */

static bool needs_quotes(const char *a) {
  return a[0] == '\0' || strpbrk(a, " \t\n'\"\\$`*?[]{}()<>|&;#~") != NULL;
}

static int append_word(pk__buf *b, const char *a) {
  if (b->len > 0 && pk__buf_append(b, " ", 1) != 0)
    return PK_ENOMEM;
  if (!needs_quotes(a))
    return pk__buf_append(b, a, strlen(a));
  int rc = pk__buf_append(b, "'", 1);
  for (const char *q = a; rc == 0 && *q; q++)
    rc = *q == '\'' ? pk__buf_append(b, "'\\''", 4) : pk__buf_append(b, q, 1);
  return rc == 0 ? pk__buf_append(b, "'", 1) : rc;
}

char *pk__format_argv(const char *program, const char *const *args, size_t n) {
  pk__buf b = {0};
  int rc = append_word(&b, program);
  for (size_t i = 0; rc == 0 && i < n; i++)
    rc = append_word(&b, args[i]);
  if (rc != 0) {
    pk__buf_release(&b);
    return NULL;
  }
  return b.data;
}
