/* Foreground runs (pk_cmd_set_foreground): the run's process group is
 * the foreground group of this process's controlling terminal, with a
 * shell's job control around it. POSIX terminals. Not installed. */
#ifndef PK_FOREGROUND_H
#define PK_FOREGROUND_H

#include "group.h"

#include <termios.h>

typedef struct pk__fg {
  int ttyfd;        /* /dev/tty; -1: not a foreground run */
  pid_t own_pgrp;   /* ours: the terminal goes back to it */
  pid_t child;      /* the direct child, leader of the run's group */
  pk__group *group; /* borrowed: SIGCONT reaches the whole tree */
  struct termios own_tio, child_tio;
  bool have_own_tio, have_child_tio;
  uv_signal_t sigchld; /* the child stopped (SIGCHLD at its default) */
  uv_timer_t poll;     /* ... else asked every PK__FG_POLL_MS */
  uv_signal_t sigcont; /* we were continued (SIGCONT at its default) */
  bool have_sigchld, have_poll, have_sigcont;
  bool cont_handled; /* the SIGCONT that ended our own stop: done */
} pk__fg;

#define PK__FG_POLL_MS 50
#define PK__FG_HANDLES 3

/* Before the spawn. If this process's group is the foreground group of
 * its controlling terminal, keep the terminal open (fg->ttyfd >= 0), save
 * its modes and start watching for stops on loop; else leave
 * fg->ttyfd at -1 (not an error). On failure fills *msg (heap). */
int pk__fg_begin(pk__fg *fg, uv_loop_t *loop, pk__group *g, char **msg);
/* The child (leader of its own group) was spawned. */
void pk__fg_started(pk__fg *fg, pid_t child);
/* The tree is gone: the terminal and its modes go back to this process's
 * group (unless someone else holds it now), watchers stop, the terminal
 * is closed. Idempotent. */
void pk__fg_end(pk__fg *fg);
/* The handles in use (at most PK__FG_HANDLES), for the owner to close
 * after pk__fg_end; returns how many. */
int pk__fg_handles(pk__fg *fg, uv_handle_t **out);

#endif
