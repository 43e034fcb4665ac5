/* The cmocka mock runner: each start checks the command against cmocka's
 * expect_* queue and takes its reply from the will_return queue, then
 * plays the reply through the fakes' player like the scripted runner. */
#include "pk/mock.h"

#include "fakes_internal.h"
#include "internal.h"

#include <pthread.h>
#include <string.h>

typedef struct mock_runner {
  pk_runner base;
  pthread_t owner;  /* cmocka's queues and longjmp are this thread's */
  pk__buf joined;   /* the argv parameter, rebuilt for each command */
  pk_reply **owned; /* distinct replies taken, freed with the runner */
  size_t nowned, cap;
  double scale;
  size_t calls;
} mock_runner;

static const pk_runner_vtable mock_vtable;

static mock_runner *as_mock(const pk_runner *r) {
  return r != NULL && r->vt == &mock_vtable ? (mock_runner *)(void *)r : NULL;
}

/* Everything that may fail happens before cmocka is asked anything, so
 * PK_ENOMEM consumes no expectation and a failed check (which longjmps
 * out of pk_mock_run) leaves nothing half-done. */
static int prepare(mock_runner *m, const pk_cmd *cmd) {
  if (m->nowned == m->cap) {
    size_t cap = m->cap ? 2 * m->cap : 8;
    pk_reply **v = pk__realloc(m->owned, cap * sizeof(*v));
    if (v == NULL)
      return PK_ENOMEM;
    m->owned = v;
    m->cap = cap;
  }
  m->joined.len = 0;
  int rc = pk__buf_append(&m->joined, "", 0);
  for (size_t i = 0; rc == 0 && i < pk_cmd_argc(cmd); i++) {
    const char *a = pk_cmd_argv(cmd, i);
    if (i > 0)
      rc = pk__buf_append(&m->joined, " ", 1);
    if (rc == 0)
      rc = pk__buf_append(&m->joined, a, strlen(a));
  }
  return rc;
}

/* The mocked function: its name is the queue key tests use in
 * expect_*(pk_mock_run, ...) and will_return(pk_mock_run, ...), and its
 * locals are named after the documented parameters (check_expected
 * stringifies them). Static: the name is API, the symbol is not. */
static pk_reply *pk_mock_run(const mock_runner *m, const pk_cmd *cmd) {
  const char *program = pk_cmd_program(cmd);
  size_t argc = pk_cmd_argc(cmd);
  const char *argv = m->joined.data;
  const char *cwd = pk_cmd_cwd(cmd) != NULL ? pk_cmd_cwd(cmd) : "";
  check_expected_ptr(program);
  check_expected(argc);
  check_expected_ptr(argv);
  check_expected_ptr(cwd);
  check_expected_ptr(cmd);
  return mock_ptr_type(pk_reply *);
}

/* Own reply once, however many times will_return_always serves it. */
static void own(mock_runner *m, pk_reply *reply) {
  for (size_t i = 0; i < m->nowned; i++)
    if (m->owned[i] == reply)
      return;
  m->owned[m->nowned++] = reply; /* room made by prepare() */
}

static int mock_start(pk_runner *self, const pk_cmd *cmd, uv_loop_t *loop,
                      pk_events *ev, pk_exec **out, pk_exit_info *fail) {
  mock_runner *m = as_mock(self);
  fail->spawn_method = "mock";
  fail->stage = "mock";
  if (!pthread_equal(m->owner, pthread_self())) {
    fail->errmsg = "mock runner used from another thread than the one that "
                   "created it (cmocka's queues are not thread-safe)";
    return PK_EINVAL;
  }
  if (prepare(m, cmd) != 0) {
    fail->errmsg = "mock runner: out of memory preparing the checks";
    return PK_ENOMEM;
  }
  pk_reply *reply = pk_mock_run(m, cmd);
  if (reply == NULL) {
    fail->errmsg = "mock runner: the queued reply is NULL (a pk_reply_* "
                   "constructor ran out of memory?)";
    return PK_ENOMEM;
  }
  own(m, reply);
  m->calls++;
  fail->stage = NULL;
  return pk__player_start(self, reply, cmd, loop, ev, m->scale, out, fail);
}

static double mock_scale(const pk_runner *self) { return as_mock(self)->scale; }

static void mock_destroy(pk_runner *self) {
  mock_runner *m = as_mock(self);
  for (size_t i = 0; i < m->nowned; i++)
    pk_reply_free(m->owned[i]);
  pk__free(m->owned);
  pk__buf_release(&m->joined);
  pk__free(m);
}

static const pk_runner_vtable mock_vtable = {
    .name = "mock",
    .start = mock_start,
    .signal = pk__player_signal,
    .release = pk__player_release,
    .pause = pk__player_pause,
    .close_output = pk__player_close_output,
    .destroy = mock_destroy,
    .time_scale = mock_scale,
};

int pk_mock_new(pk_runner **out) {
  if (out == NULL)
    return PK_EINVAL;
  *out = NULL;
  mock_runner *m = pk__calloc(1, sizeof(*m));
  if (m == NULL)
    return PK_ENOMEM;
  m->base.vt = &mock_vtable;
  m->owner = pthread_self();
  *out = &m->base;
  return 0;
}

int pk_mock_set_time_scale(pk_runner *r, double scale) {
  mock_runner *m = as_mock(r);
  if (m == NULL || !(scale >= 0) || scale > 1e6)
    return PK_EINVAL;
  m->scale = scale;
  return 0;
}

size_t pk_mock_calls(const pk_runner *r) {
  const mock_runner *m = as_mock(r);
  return m != NULL ? m->calls : 0;
}
