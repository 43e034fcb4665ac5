/* processkit: the runner seam, for people writing a runner.
 *
 * How to implement a runner:
 *   1. Define a struct whose first member is `pk_runner base;` and a
 *      `static const pk_runner_vtable` with your functions.
 *   2. In `start`, begin the run on the given loop and return a handle
 *      whose first member is `pk_exec base;`. Never call user callbacks:
 *      emit events into the core with pk_events_output() (any number of
 *      times) and pk_events_exit() (exactly once, last). Emit only from
 *      loop callbacks, never from inside `start` itself.
 *   3. `signal` sends a signal to the whole run (tree); `release` ends the
 *      run if it is still going (nothing of it may outlive the call) and
 *      frees the handle, possibly after the loop closes its handles.
 *
 * The core builds every verb (output, run, probe, ...), capture limits,
 * line splitting, timeouts, cancellation and results on top of this, so a
 * double and a real child are indistinguishable to user code.
 */
#ifndef PK_RUNNER_IMPL_H
#define PK_RUNNER_IMPL_H

#include "pk.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct pk_events pk_events;
typedef struct pk_exec pk_exec;
typedef struct pk_runner_vtable pk_runner_vtable;

struct pk_runner {
  const pk_runner_vtable *vt;
};

struct pk_exec {
  pk_runner *runner;
  int pid; /* the direct child's pid while running, 0 if none */
};

/* How a run ended, as seen by the runner. The core adds timed-out and
 * cancelled on top. Strings are borrowed for the duration of the call. */
typedef struct pk_exit_info {
  pk_outcome outcome;  /* PK_OUTCOME_EXITED or _SIGNALLED; NONE on error */
  int code;            /* exit code when exited */
  int signal;          /* signal number when signalled */
  bool timed_out;      /* the run timed out (a double replaying one) */
  int64_t duration_ns; /* > 0: report this instead of the measured time */
  bool output_incomplete;
  pk_mechanism mechanism;
  const char *spawn_method;
  int pid;
  int escapees; /* processes found outside the run's group, see pk.h */
  /* Error details: error != 0 means the run never started (a spawn
   * error), or its end could not be known (PK_ESTATUS_LOST); the result
   * then reports this error instead of an outcome. */
  int error;
  const char *stage;
  int os_errno;
  const char *errmsg;
  /* Resource use, where the runner measured it (zero: unknown). scope:
   * "tree" (the whole run, e.g. a cgroup's accounting) or "child" (the
   * direct child and the descendants it waited for). */
  bool have_cpu;
  int64_t cpu_us; /* user + system CPU time */
  const char *cpu_scope;
  bool have_memory;
  int64_t peak_memory; /* bytes */
  const char *memory_scope;
} pk_exit_info;

struct pk_runner_vtable {
  const char *name;
  /* Begin running cmd on loop. On success return 0 and *out, whose
   * `runner` is set to self (wrappers forward signal/release through
   * it). On failure
   * to start return the error and fill *fail (error, stage, os_errno,
   * errmsg); the core reports it through the normal completion path. */
  int (*start)(pk_runner *self, const pk_cmd *cmd, uv_loop_t *loop,
               pk_events *ev, pk_exec **out, pk_exit_info *fail);
  /* Signal the whole run. PK_ESRCH when the run already exited (even if
   * its exit event has not been emitted yet). */
  int (*signal)(pk_exec *e, int sig);
  /* End the run if needed (whole tree, synchronously) and free e. No
   * events are emitted after this call. */
  void (*release)(pk_exec *e);
  /* Free the runner. */
  void (*destroy)(pk_runner *self);
  /* Flow control (backpressure): paused, emit no output events until
   * called again with false; a real child then blocks once its pipe is
   * full, a timeline stops where it is. The end of the run is not
   * reported while paused (its output is not known to be complete).
   * Level-triggered. NULL: PK_EUNSUPPORTED. */
  int (*pause)(pk_exec *e, bool paused);
  /* Stop reading stream s for good, as a reader that went away: a real
   * child's next write to it fails (SIGPIPE, or EPIPE if it ignores
   * SIGPIPE), and a timeline's next chunk on it acts the same. No more
   * output events for s. NULL: PK_EUNSUPPORTED. */
  int (*close_output)(pk_exec *e, pk_stream s);
  /* Optional (NULL: 1.0). How fast this runner's clock runs against real
   * time: the core scales a command's timeout and grace by it, so a
   * double at scale 0 times out at once instead of making a test wait. */
  double (*time_scale)(const pk_runner *self);
};

/* Emit a chunk of output. buf is borrowed. */
PK_EXTERN void pk_events_output(pk_events *ev, pk_stream s, const char *buf,
                                size_t len);
/* Optional zero-copy path: storage where the next chunk of stream s may
 * be read (the capture itself). Returns its size, or 0 when the runner
 * should read into its own buffer. Passing the same pointer back to
 * pk_events_output (with len <= the size) commits the bytes in place;
 * the loan ends with that call. */
PK_EXTERN size_t pk_events_buffer(pk_events *ev, pk_stream s, char **buf);
/* Emit the end of the run; exactly once, last. info is borrowed. */
PK_EXTERN void pk_events_exit(pk_events *ev, const pk_exit_info *info);

/* A tap: how a decorator observes a run it handed to an inner runner,
 * without a second copy of the pump. Attach one in the decorator's
 * `start` (before or after the inner start, also when it failed). The
 * core calls, on the loop's thread:
 *   output  for every chunk the runner emits, before capture limits
 *           (so the raw stream; buf borrowed for the call);
 *   result  once, with the run's final result, after the core decided
 *           timed out / cancelled / too big, before the user's on_exit
 *           (not called when the run is freed before it ended);
 *   done    once, last, when the run is freed (every path). */
typedef struct pk_tap {
  void (*output)(void *data, pk_stream s, const char *buf, size_t len);
  void (*result)(void *data, const pk_cmd *cmd, const pk_result *r);
  void (*done)(void *data);
} pk_tap;
/* tap is borrowed for the run's life (usually static const). Taps are
 * called in the order attached, done in reverse. Errors: PK_EINVAL,
 * PK_ELIMIT (more than four taps on one run). */
PK_EXTERN int pk_events_tap(pk_events *ev, const pk_tap *tap, void *data);

/* The core calls `signal`, `release`, `pause` and `close_output` through
 * the table of e->runner (the runner that made the exec), so a decorator
 * that hands its inner runner's execs back needs no forwarding for them.
 * The pk_cmd read-only views used by runners are in pk.h. */

#ifdef __cplusplus
}
#endif
#endif /* PK_RUNNER_IMPL_H */
