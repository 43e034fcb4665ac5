/* What pk's CLI does differently per host (cli_os_posix.c, cli_os_win.c).
 * Not installed. */
#ifndef PK_CLI_OS_H
#define PK_CLI_OS_H

#include <pk/pk.h>

#include <stdbool.h>
#include <stddef.h>

/* First thing in main: standard streams pk may rely on (POSIX: a closed
 * fd 0-2 gets /dev/null, so nothing of pk's takes the number; SIGPIPE
 * ignored, a write to a gone reader fails with EPIPE instead). */
void cli_os_init(void);
/* Before a run: pk run writes the child's output while the child may be
 * the terminal's foreground job, and must not be stopped for it. */
void cli_os_run_begin(void);
/* The host has terminal job control (pk run then makes the child the
 * terminal's foreground job; Windows has none). */
bool cli_os_job_control(void);
/* This program's own path (for the guardian); false when unknown. */
bool cli_os_self(char *buf, size_t len);
/* The signals pk run catches and hands on to the run (*n of them). */
const int *cli_os_forwarded(size_t *n);
/* Hand sig, caught by pk, on to the run: POSIX forwards it (then
 * SIGCONT, so a stopped tree acts on it); Windows has no signals to
 * forward: Ctrl-C, Ctrl-Break or a closed console end the run. */
void cli_os_forward(pk_proc *p, int sig);
/* Length of path's directory part with its final separator ('/'; also
 * '\\' on Windows), 0 when it has none. */
size_t cli_os_dir_len(const char *path);
/* The host's limit on open descriptors, as text for an error message. */
void cli_os_fd_limit(char *buf, size_t len);

#endif
