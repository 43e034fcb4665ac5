/* Foreground runs: job control as a shell expects it of a foreground
 * program that runs another one (sudo's model).
 *
 * The spawner makes the child the leader of a new process group and the
 * terminal's foreground group before exec. From then on the terminal's
 * signals (Ctrl-C, Ctrl-\, Ctrl-Z) reach the run only. Stops are seen
 * through SIGCHLD plus waitid(WSTOPPED) on the child (a pidfd reports
 * only the exit; the kernel sends SIGCHLD for a stop whatever the
 * child's exit signal). When the child stops, the terminal and our saved
 * modes go back to our group and we stop ourselves with the same signal,
 * so the shell sees its job stop; once continued in the foreground (or
 * whenever we get SIGCONT while holding the terminal), the terminal and
 * the child's modes go back to the child and the tree gets SIGCONT.
 *
 * Our own terminal calls are made with SIGTTOU blocked: a process in the
 * background may then set the foreground group and the modes, which is
 * exactly what taking the terminal back needs.
 *
 * A host's own disposition of SIGCHLD or SIGCONT is left alone: libuv's
 * handler would replace it (and leave SIG_DFL behind), so a uv_signal_t
 * watches a signal only while it is at its default. With SIGCHLD ignored
 * (no SIGCHLD at all for a stop, then) or handled by the host, stops are
 * polled for instead; without the SIGCONT watcher, a continue is still
 * seen where it matters most, right after stopping ourselves. */
#include "foreground.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

/* Terminal calls with SIGTTOU blocked in this thread (see above). */
static int tty_set_pgrp(int fd, pid_t pgrp) {
  sigset_t ttou, old;
  sigemptyset(&ttou);
  sigaddset(&ttou, SIGTTOU);
  pthread_sigmask(SIG_BLOCK, &ttou, &old);
  int rc = tcsetpgrp(fd, pgrp);
  pthread_sigmask(SIG_SETMASK, &old, NULL);
  return rc;
}

static void tty_set_modes(int fd, const struct termios *tio) {
  sigset_t ttou, old;
  sigemptyset(&ttou);
  sigaddset(&ttou, SIGTTOU);
  pthread_sigmask(SIG_BLOCK, &ttou, &old);
  while (tcsetattr(fd, TCSANOW, tio) < 0 && errno == EINTR)
    ;
  pthread_sigmask(SIG_SETMASK, &old, NULL);
}

/* The kernel discards SIGTSTP/SIGTTIN/SIGTTOU sent to an orphaned
 * process group (no member has a parent in another group of the same
 * session: nobody could continue it). Our parent is the usual witness. */
static bool own_group_orphaned(void) {
  pid_t pp = getppid();
  return getsid(pp) != getsid(0) || getpgid(pp) == getpgrp();
}

/* Stop this process with sig, as if its default action had run; returns
 * once we are continued. */
static void stop_self(int sig) {
  struct sigaction dfl, old;
  memset(&dfl, 0, sizeof(dfl));
  dfl.sa_handler = SIG_DFL;
  sigemptyset(&dfl.sa_mask);
  bool restore = sig != SIGSTOP && sigaction(sig, &dfl, &old) == 0;
  sigset_t set, oldmask;
  sigemptyset(&set);
  sigaddset(&set, sig);
  pthread_sigmask(SIG_UNBLOCK, &set, &oldmask);
  raise(sig); /* delivered (and acted on) before raise returns */
  pthread_sigmask(SIG_SETMASK, &oldmask, NULL);
  if (restore)
    sigaction(sig, &old, NULL);
}

/* We hold the terminal (continued by `fg`): give it to the child again,
 * with the modes it had, and continue the tree. */
static void resume_child(pk__fg *fg) {
  if (tcgetpgrp(fg->ttyfd) == fg->own_pgrp) {
    if (fg->have_child_tio)
      tty_set_modes(fg->ttyfd, &fg->child_tio);
    fg->have_child_tio = false;
    tty_set_pgrp(fg->ttyfd, fg->child);
  }
  pk__group_signal(fg->group, SIGCONT, true);
}

static void child_stopped(pk__fg *fg, int sig) {
  if (tcgetpgrp(fg->ttyfd) == fg->child) {
    fg->have_child_tio = tcgetattr(fg->ttyfd, &fg->child_tio) == 0;
    tty_set_pgrp(fg->ttyfd, fg->own_pgrp);
    if (fg->have_own_tio)
      tty_set_modes(fg->ttyfd, &fg->own_tio);
  }
  /* In an orphaned group the stop would be discarded: nobody could
   * continue us, so the child continues at once (Ctrl-Z does nothing,
   * as for any job of a shell without job control). */
  if (sig == SIGSTOP || !own_group_orphaned()) {
    stop_self(sig);
    /* The SIGCONT that woke us reaches on_sigcont too: one resume only.
     * A second SIGCONT to the tree is not harmless: it discards a stop
     * pending there, e.g. the one of a debugger's or a sanitizer's
     * PTRACE_ATTACH, which then waits for it forever. */
    fg->cont_handled = fg->have_sigcont;
  }
  resume_child(fg);
}

/* Handle every stop of the child reported since the last call. */
static void check_stops(pk__fg *fg) {
  while (fg->ttyfd >= 0 && fg->child > 0) {
    siginfo_t si;
    memset(&si, 0, sizeof(si));
    /* Stops and continues only: the exit stays for the runner to see. */
    int rc = waitid(P_PID, (id_t)fg->child, &si,
                    WSTOPPED | WCONTINUED | WNOHANG | __WALL);
    if (rc < 0 && errno == EINTR)
      continue;
    if (rc < 0 || si.si_pid == 0)
      return;
    if (si.si_code == CLD_STOPPED)
      child_stopped(fg, si.si_status);
  }
}

static void on_sigchld(uv_signal_t *h, int signum) {
  (void)signum;
  check_stops(h->data);
}

static void on_poll(uv_timer_t *t) { check_stops(t->data); }

static void on_sigcont(uv_signal_t *h, int signum) {
  (void)signum;
  pk__fg *fg = h->data;
  if (fg->cont_handled)
    fg->cont_handled = false;
  else if (fg->ttyfd >= 0 && fg->child > 0)
    resume_child(fg);
}

static bool at_default(int sig) {
  struct sigaction sa;
  return sigaction(sig, NULL, &sa) == 0 && !(sa.sa_flags & SA_SIGINFO) &&
         sa.sa_handler == SIG_DFL;
}

static int watch(pk__fg *fg, uv_loop_t *loop) {
  int rc;
  if (!at_default(SIGCHLD)) {
    uv_timer_init(loop, &fg->poll);
    fg->have_poll = true;
    fg->poll.data = fg;
    rc = uv_timer_start(&fg->poll, on_poll, PK__FG_POLL_MS, PK__FG_POLL_MS);
  } else if ((rc = uv_signal_init(loop, &fg->sigchld)) == 0) {
    fg->have_sigchld = true;
    fg->sigchld.data = fg;
    rc = uv_signal_start(&fg->sigchld, on_sigchld, SIGCHLD);
  }
  if (rc != 0 || !at_default(SIGCONT))
    return rc;
  if ((rc = uv_signal_init(loop, &fg->sigcont)) != 0)
    return rc;
  fg->have_sigcont = true;
  fg->sigcont.data = fg;
  return uv_signal_start(&fg->sigcont, on_sigcont, SIGCONT);
}

int pk__fg_begin(pk__fg *fg, uv_loop_t *loop, pk__group *g, char **msg) {
  fg->ttyfd = -1;
  int fd = open("/dev/tty", O_RDWR | O_NOCTTY | O_NONBLOCK | O_CLOEXEC);
  if (fd < 0)
    return 0; /* no controlling terminal */
  pid_t own = getpgrp();
  if (tcgetpgrp(fd) != own) {
    close(fd); /* in the background */
    return 0;
  }
  int rc = watch(fg, loop);
  if (rc != 0) {
    close(fd);
    *msg = pk__sprintf("cannot watch the terminal's job control: %s",
                       uv_strerror(rc));
    return rc == UV_EMFILE || rc == UV_ENFILE ? PK_ELIMIT : PK_EIO;
  }
  fg->have_own_tio = tcgetattr(fd, &fg->own_tio) == 0;
  fg->ttyfd = fd;
  fg->own_pgrp = own;
  fg->group = g;
  return 0;
}

void pk__fg_started(pk__fg *fg, pid_t child) { fg->child = child; }

void pk__fg_end(pk__fg *fg) {
  if (fg->have_sigchld)
    uv_signal_stop(&fg->sigchld);
  if (fg->have_poll)
    uv_timer_stop(&fg->poll);
  if (fg->have_sigcont)
    uv_signal_stop(&fg->sigcont);
  if (fg->ttyfd < 0)
    return;
  /* Take the terminal back from the run's group, or from a group nobody
   * is left in; never from a group that took it since (our shell, after
   * we were put in the background). */
  pid_t cur = tcgetpgrp(fg->ttyfd);
  bool ours = cur == fg->own_pgrp;
  if (!ours && cur > 0 &&
      (cur == fg->child || (kill(-cur, 0) < 0 && errno == ESRCH)))
    ours = tty_set_pgrp(fg->ttyfd, fg->own_pgrp) == 0;
  if (ours && fg->have_own_tio)
    tty_set_modes(fg->ttyfd, &fg->own_tio);
  close(fg->ttyfd);
  fg->ttyfd = -1;
  fg->child = 0;
}

int pk__fg_handles(pk__fg *fg, uv_handle_t **out) {
  int n = 0;
  if (fg->have_sigchld)
    out[n++] = (uv_handle_t *)&fg->sigchld;
  if (fg->have_poll)
    out[n++] = (uv_handle_t *)&fg->poll;
  if (fg->have_sigcont)
    out[n++] = (uv_handle_t *)&fg->sigcont;
  return n;
}
