/* The drain policy both real runners share (real_runner.c and
 * real_runner_win.c): what happens between the child's exit and the end
 * of the run while its output pipes are still open. */
#include "internal.h"

#define PK__DRAIN_BEHIND_MS 10000

/* The drain grace is for a pipe held open by a grandchild with nothing
 * to say. A pipe whose writers are gone is read to its end; one still
 * held but with bytes waiting means pk (a loaded host) is behind: read
 * on, for up to PK__DRAIN_BEHIND_MS more, before the tree is torn down
 * and the output flagged incomplete. */
bool pk__drain_behind(uv_timer_t *t, uv_timer_cb cb, const pk_cmd *cmd,
                      bool held, bool data, int64_t *extra_ms) {
  int64_t ms = pk_cmd_drain_ms(cmd);
  if (!held || !data || *extra_ms >= PK__DRAIN_BEHIND_MS)
    return false;
  *extra_ms += ms > 0 ? ms : 1;
  uv_timer_start(t, cb, (uint64_t)(ms > 0 ? ms : 1), 0);
  return true;
}

bool pk__drain_arm(uv_timer_t *t, uv_timer_cb cb, const pk_cmd *cmd,
                   bool pipes_open, bool now) {
  if (!pipes_open) {
    if (now)
      return true;
    uv_timer_start(t, cb, 0, 0);
  } else if (!uv_is_active((uv_handle_t *)t)) {
    uv_timer_start(t, cb, (uint64_t)pk_cmd_drain_ms(cmd), 0);
  }
  return false;
}
