/* R17 and R18 for `pk run`: its own output (a reader that goes away, a
 * reader that stalls, a write error) and a hostile start (fds 0-2
 * closed, few descriptors, little address space). pk runs as a
 * subprocess whose descriptors the test sets up one by one. */
#include "harness.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

extern char **environ;

#define DEADLINE_MS 30000 /* a pk that never ends fails, never hangs CI */

/* How the child pk starts: its fds 0-2 (-1: closed) and rlimits. */
typedef struct start {
  int fd[3];
  int nofile; /* RLIMIT_NOFILE, 0: unchanged */
  long as_kb; /* RLIMIT_AS in KiB, 0: unchanged */
} start;

static pid_t spawn_pk(const start *st, const char *const *args) {
  const char *argv[32];
  size_t n = 0;
  argv[n++] = PK_CLI;
  for (; args[n - 1] != NULL; n++)
    argv[n] = args[n - 1];
  argv[n] = NULL;
  pid_t pid = fork();
  assert_true(pid >= 0);
  if (pid != 0)
    return pid;
  /* Move the wanted fds out of the way, then place or close 0..2. */
  int tmp[3];
  for (int i = 0; i < 3; i++)
    tmp[i] = st->fd[i] >= 0 ? fcntl(st->fd[i], F_DUPFD_CLOEXEC, 10) : -1;
  for (int i = 0; i < 3; i++) {
    if (tmp[i] >= 0)
      dup2(tmp[i], i);
    else
      close(i);
  }
  if (st->nofile > 0) {
    struct rlimit rl = {(rlim_t)st->nofile, (rlim_t)st->nofile};
    setrlimit(RLIMIT_NOFILE, &rl);
  }
  if (st->as_kb > 0) {
    struct rlimit rl = {(rlim_t)st->as_kb * 1024, RLIM_INFINITY};
    setrlimit(RLIMIT_AS, &rl);
  }
  signal(SIGPIPE, SIG_DFL);
  sigset_t none;
  sigemptyset(&none);
  sigprocmask(SIG_SETMASK, &none, NULL);
  execve(PK_CLI, (char *const *)argv, environ);
  _exit(121);
}

/* Wait for pk (our child) up to the deadline; SIGKILL it and fail if it
 * hangs. Returns the wait status. */
static int wait_pk(pid_t pid, uint64_t t0) {
  int status;
  for (;;) {
    pid_t w = waitpid(pid, &status, WNOHANG);
    if (w == pid)
      return status;
    if (pkt_now_ms() - t0 > DEADLINE_MS) {
      kill(pid, SIGKILL);
      waitpid(pid, &status, 0);
      fail_msg("pk did not end within %d ms", DEADLINE_MS);
    }
    poll(NULL, 0, 5);
  }
}

static int exit_code(int status) {
  if (!WIFEXITED(status))
    fail_msg("pk died (status 0x%x) instead of exiting", status);
  return WEXITSTATUS(status);
}

/* Everything readable from fd until EOF (heap, NUL-terminated). */
static char *slurp(int fd) {
  size_t len = 0, cap = 4096;
  char *b = malloc(cap);
  assert_non_null(b);
  for (;;) {
    if (len + 1024 > cap)
      b = realloc(b, cap *= 2);
    assert_non_null(b);
    ssize_t n = read(fd, b + len, cap - len - 1);
    if (n < 0 && errno == EINTR)
      continue;
    if (n <= 0)
      break;
    len += (size_t)n;
  }
  b[len] = '\0';
  return b;
}

static int devnull(int flags) {
  int fd = open("/dev/null", flags | O_CLOEXEC);
  assert_true(fd >= 0);
  return fd;
}

/* pk with stdin on /dev/null and stdout, stderr on pipes: *out and *err
 * get the read ends, *t0 the start time. */
static pid_t launch(const char *const *args, int *out, int *err, uint64_t *t0) {
  int o[2], e[2];
  assert_int_equal(pipe2(o, O_CLOEXEC), 0);
  assert_int_equal(pipe2(e, O_CLOEXEC), 0);
  start st = {{devnull(O_RDONLY), o[1], e[1]}, 0, 0};
  *t0 = pkt_now_ms();
  pid_t pid = spawn_pk(&st, args);
  close(st.fd[0]);
  close(o[1]);
  close(e[1]);
  *out = o[0];
  *err = e[0];
  return pid;
}

/* ------------------------------------------------- reader goes away */

/* `pk run -- yes | head -1`: the reader closes after one line; yes must
 * die of SIGPIPE (141) at once, as without pk. */
static void reader_closes_early(void **state) {
  (void)state;
  int out, err;
  uint64_t t0;
  pid_t pid =
      launch((const char *[]){"run", "--", "yes", NULL}, &out, &err, &t0);
  char line[2];
  assert_int_equal(read(out, line, 2), 2);
  assert_memory_equal(line, "y\n", 2);
  close(out); /* head -1 is done */
  int status = wait_pk(pid, t0);
  char *msg = slurp(err);
  close(err);
  assert_int_equal(exit_code(status), 128 + SIGPIPE);
  assert_string_equal(msg, ""); /* the child's broken pipe, not pk's */
  free(msg);
}

/* ------------------------------------------------------ stalled reader */

/* A pipe nobody reads: pk must not block in write(). The timeout still
 * fires (124) and pk ends, though its stdout never drains. */
static void stalled_reader_timeout(void **state) {
  (void)state;
  int out, err;
  uint64_t t0;
  pid_t pid = launch((const char *[]){"run", "--timeout", "1", "--grace", "1",
                                      "--", "yes", NULL},
                     &out, &err, &t0);
  int status = wait_pk(pid, t0); /* out is never read */
  char *msg = slurp(err);
  close(err);
  close(out);
  assert_int_equal(exit_code(status), 124);
  assert_non_null(strstr(msg, "pk: timeout:"));
  free(msg);
}

/* Bytes waiting in a pipe (FIONREAD). */
static int queued(int fd) {
  int n = 0;
  ioctl(fd, FIONREAD, &n);
  return n;
}

/* A pipe nobody reads, then SIGTERM to pk: forwarded at once (the loop
 * is never stuck in a write), the child dies of it: 143. */
static void stalled_reader_signal(void **state) {
  (void)state;
  int out, err;
  uint64_t t0;
  pid_t pid =
      launch((const char *[]){"run", "--", "yes", NULL}, &out, &err, &t0);
  int cap = fcntl(out, F_GETPIPE_SZ);
  while (queued(out) < cap && pkt_now_ms() - t0 < DEADLINE_MS)
    poll(NULL, 0, 5); /* until pk's stdout is full */
  assert_int_equal(queued(out), cap);
  assert_int_equal(kill(pid, SIGTERM), 0);
  int status = wait_pk(pid, t0);
  close(out);
  char *msg = slurp(err);
  close(err);
  assert_int_equal(exit_code(status), 128 + SIGTERM);
  free(msg);
}

/* A slow reader gets every byte, in order: the child is paused while pk's
 * queue is long, never dropped. */
static void slow_reader_gets_everything(void **state) {
  (void)state;
  int out[2];
  assert_int_equal(pipe2(out, O_CLOEXEC), 0);
  start st = {{devnull(O_RDONLY), out[1], devnull(O_WRONLY)}, 0, 0};
  const long long total = 8 << 20;
  char arg[32];
  snprintf(arg, sizeof(arg), "%lld", total);
  uint64_t t0 = pkt_now_ms();
  pid_t pid = spawn_pk(
      &st, (const char *[]){"run", "--", PK_FIXTURE, "spew", arg, "1", NULL});
  for (int i = 0; i < 3; i++)
    close(st.fd[i]);
  /* Let pk's stdout fill and its queue pass the pause mark first. */
  while (queued(out[0]) < fcntl(out[0], F_GETPIPE_SZ) &&
         pkt_now_ms() - t0 < DEADLINE_MS)
    poll(NULL, 0, 5);
  long long got = 0;
  char buf[4096];
  ssize_t n;
  while ((n = read(out[0], buf, sizeof(buf))) > 0)
    got += n;
  close(out[0]);
  assert_int_equal(exit_code(wait_pk(pid, t0)), 0);
  assert_int_equal(got, total);
}

/* ------------------------------------------------------- write errors */

/* A write error that is not a reader going away is pk's failure: 125
 * and `pk: io: …`, the child's tree torn down. */
static void write_error_is_a_failure(void **state) {
  (void)state;
  int full = open("/dev/full", O_WRONLY | O_CLOEXEC);
  assert_true(full >= 0);
  int err[2];
  assert_int_equal(pipe2(err, O_CLOEXEC), 0);
  start st = {{devnull(O_RDONLY), full, err[1]}, 0, 0};
  uint64_t t0 = pkt_now_ms();
  pid_t pid = spawn_pk(&st, (const char *[]){"run", "--", PK_FIXTURE, "spew",
                                             "1000000000", "1",
                                             NULL}); /* would run for long */
  close(st.fd[0]);
  close(full);
  close(err[1]);
  int status = wait_pk(pid, t0);
  char *msg = slurp(err[0]);
  close(err[0]);
  assert_int_equal(exit_code(status), 125);
  assert_non_null(strstr(msg, "pk: io: cannot write the child's stdout"));
  assert_non_null(strstr(msg, strerror(ENOSPC)));
  free(msg);
}

/* ---------------------------------------------------- hostile starts */

/* What the child got as fds 0-2 (readlink of its /proc/PID/fd/N),
 * written by a shell to a file the test reads. */
static void child_std_fds(const start *st, char *got, size_t size) {
  char path[] = "/tmp/pk-std-XXXXXX";
  int fd = mkstemp(path);
  assert_true(fd >= 0);
  close(fd);
  char script[512];
  snprintf(script, sizeof(script),
           "for i in 0 1 2; do echo \"$i $(readlink /proc/$$/fd/$i)\"; "
           "done > %s",
           path);
  uint64_t t0 = pkt_now_ms();
  pid_t pid = spawn_pk(
      st, (const char *[]){"run", "--", "/bin/sh", "-c", script, NULL});
  assert_int_equal(exit_code(wait_pk(pid, t0)), 0);
  fd = open(path, O_RDONLY | O_CLOEXEC);
  assert_true(fd >= 0);
  char *s = slurp(fd);
  close(fd);
  unlink(path);
  snprintf(got, size, "%s", s);
  free(s);
}

/* Closed fds 0, 1, 2 (each, and all): pk runs, and the child sees
 * /dev/null (or a pipe of pk's capture) there, never a descriptor of
 * pk's own such as its epoll or eventfd. */
static void closed_std_fds(void **state) {
  (void)state;
  for (int mask = 1; mask < 8; mask++) {
    start st = {
        {devnull(O_RDONLY), devnull(O_WRONLY), devnull(O_WRONLY)}, 0, 0};
    for (int i = 0; i < 3; i++) {
      if (mask & (1 << i)) {
        close(st.fd[i]);
        st.fd[i] = -1;
      }
    }
    char got[1024];
    child_std_fds(&st, got, sizeof(got));
    for (int i = 0; i < 3; i++)
      if (st.fd[i] >= 0)
        close(st.fd[i]);
    if (strstr(got, "anon_inode") != NULL || strstr(got, "socket") != NULL)
      fail_msg("closed mask %d: the child got a pk-internal fd:\n%s", mask,
               got);
    char want[16];
    snprintf(want, sizeof(want), "0 /dev/null");
    if ((mask & 1) && strstr(got, want) == NULL)
      fail_msg("closed stdin: the child's fd 0 is not /dev/null:\n%s", got);
  }
}

/* Few descriptors: never an abort, always a clear resource_limit. */
static void few_descriptors(void **state) {
  (void)state;
  int ok = 0;
  for (int n = 4; n <= 40; n++) {
    int err[2];
    assert_int_equal(pipe2(err, O_CLOEXEC), 0);
    start st = {{devnull(O_RDONLY), devnull(O_WRONLY), err[1]}, n, 0};
    uint64_t t0 = pkt_now_ms();
    pid_t pid = spawn_pk(&st, (const char *[]){"run", "--", "true", NULL});
    close(st.fd[0]);
    close(st.fd[1]);
    close(err[1]);
    int status = wait_pk(pid, t0);
    char *msg = slurp(err[0]);
    close(err[0]);
    int code = exit_code(status);
    if (strstr(msg, "error while loading shared libraries") != NULL)
      code = -1; /* the loader failed: pk never ran */
    if (code == 0)
      ok++;
    else if (code == -1)
      ;
    else if (code != 125 || strncmp(msg, "pk: resource_limit: ", 20) != 0)
      fail_msg("RLIMIT_NOFILE %d: exit %d, stderr '%s'", n, code, msg);
    free(msg);
  }
  assert_true(ok > 0); /* enough descriptors do run */
}

#if defined(__has_feature)
#if __has_feature(address_sanitizer)
#define PKT_ASAN 1
#endif
#endif
#if defined(__SANITIZE_ADDRESS__)
#define PKT_ASAN 1
#endif

/* Little address space: a pk-side failure is never exit 0. */
static void little_memory(void **state) {
  (void)state;
#ifdef PKT_ASAN
  skip(); /* ASan's shadow memory cannot be mapped under a low RLIMIT_AS */
#endif
  for (long kb = 4096; kb <= 65536; kb += 2048) {
    int out[2], err[2];
    assert_int_equal(pipe2(out, O_CLOEXEC), 0);
    assert_int_equal(pipe2(err, O_CLOEXEC), 0);
    start st = {{devnull(O_RDONLY), out[1], err[1]}, 0, kb};
    uint64_t t0 = pkt_now_ms();
    pid_t pid = spawn_pk(&st, (const char *[]){"run", "--", PK_FIXTURE, "spew",
                                               "300000", "1", NULL});
    close(st.fd[0]);
    close(out[1]);
    close(err[1]);
    char *o = slurp(out[0]);
    close(out[0]);
    int status = wait_pk(pid, t0);
    char *msg = slurp(err[0]);
    close(err[0]);
    if (strstr(msg, "error while loading shared libraries") == NULL) {
      int code = exit_code(status);
      bool clean = code == 0 && msg[0] == '\0' && strlen(o) == 300000;
      bool failed = code == 125 && strncmp(msg, "pk: ", 4) == 0;
      if (!clean && !failed)
        fail_msg("RLIMIT_AS %ld KiB: exit %d, %zu bytes, stderr '%s'", kb, code,
                 strlen(o), msg);
    }
    free(o);
    free(msg);
  }
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(reader_closes_early),
      cmocka_unit_test(stalled_reader_timeout),
      cmocka_unit_test(stalled_reader_signal),
      cmocka_unit_test(slow_reader_gets_everything),
      cmocka_unit_test(write_error_is_a_failure),
      cmocka_unit_test(closed_std_fds),
      cmocka_unit_test(few_descriptors),
      cmocka_unit_test(little_memory),
  };
  return cmocka_run_group_tests(tests, pkt_setup, NULL);
}
