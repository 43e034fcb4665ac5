/* Internal to fakes/ (and the cassette replay later): replies as
 * timelines, and the player that emits a timeline into the core. */
#ifndef PK_FAKES_INTERNAL_H
#define PK_FAKES_INTERNAL_H

#include "pk/fakes.h"
#include "pk/runner_impl.h"

typedef enum reply_end {
  END_EXIT = 0,
  END_SIGNAL,
  END_TIMEOUT,
  END_PENDING,
  END_NOT_FOUND,
  END_SPAWN_ERROR,
} reply_end;

typedef struct reply_step {
  pk_stream stream;
  int64_t delay_ms;
  char *data;
  size_t len;
} reply_step;

typedef struct dialog_step {
  char *expect, *answer;
} dialog_step;

struct pk_reply {
  reply_step *steps;
  size_t nsteps;
  reply_end end;
  int code, sig, os_errno;
  int64_t end_delay_ms;
  pk_reply_fn fn; /* resolved at play time into a fresh reply */
  void *fn_data;
  dialog_step *dialog;
  size_t ndialog;
  bool is_dialog;
  bool incomplete; /* output did not end within the drain */
  char *stage;     /* END_SPAWN_ERROR: the failing stage (NULL: exec) */
  /* Replayed runs (cassettes): report these as they were recorded. */
  int error;           /* END_SPAWN_ERROR: this PK_E* code, not derived */
  char *errmsg;        /* END_SPAWN_ERROR: this message */
  int64_t duration_ns; /* > 0: the run's reported duration */
  /* per signal: 0 default, -1 ignore, else 1 + exit code */
  short trap[65];
};

PK_EXTERN pk_reply *pk__reply_new(reply_end end);

/* Start playing reply (borrowed; must outlive the run) for cmd on loop.
 * Spawn-like ends (not found, spawn error) fail here like a real start. */
PK_EXTERN int pk__player_start(pk_runner *runner, const pk_reply *reply,
                               const pk_cmd *cmd, uv_loop_t *loop,
                               pk_events *ev, double scale, pk_exec **out,
                               pk_exit_info *fail);
/* The same, and the player owns reply (freed with the run, or at once
 * when the start fails). */
PK_EXTERN int pk__player_start_owned(pk_runner *runner, pk_reply *reply,
                                     const pk_cmd *cmd, uv_loop_t *loop,
                                     pk_events *ev, double scale, pk_exec **out,
                                     pk_exit_info *fail);
PK_EXTERN int pk__player_signal(pk_exec *e, int sig);
PK_EXTERN void pk__player_release(pk_exec *e);
PK_EXTERN int pk__player_pause(pk_exec *e, bool on);
PK_EXTERN int pk__player_close_output(pk_exec *e, pk_stream s);

/* "prog arg 'a b'" for messages (heap; NULL on ENOMEM). */
PK_EXTERN char *pk__format_argv(const char *program, const char *const *args,
                                size_t n);

#endif
