/* pk run's output forwarding (POSIX). A pipe or terminal is reopened through
 * /proc/self/fd with O_NONBLOCK (a description of our own: the shell's
 * stays as it was) and written when poll says so; a socket is written
 * with MSG_DONTWAIT; a regular file or device is written directly (its
 * writes do not wait on a reader). */
#include "sink.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

enum { SINK_BLOCKING, SINK_NONBLOCK, SINK_SOCKET };

static void on_writable(uv_poll_t *h, int status, int events);

static int reopen_nonblocking(int fd) {
  char path[64];
  snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
  return open(path, O_WRONLY | O_NONBLOCK | O_NOCTTY | O_CLOEXEC);
}

void sink_init(sink *k, uv_loop_t *loop, int fd, sink_cb cb, void *data) {
  memset(k, 0, sizeof(*k));
  k->fd = k->wfd = fd;
  k->cb = cb;
  k->data = data;
  k->kind = SINK_BLOCKING;
  struct stat st;
  if (fstat(fd, &st) != 0)
    return;
  if (S_ISSOCK(st.st_mode)) {
    k->kind = SINK_SOCKET;
  } else if (S_ISFIFO(st.st_mode) || (S_ISCHR(st.st_mode) && isatty(fd))) {
    int w = reopen_nonblocking(fd);
    if (w < 0)
      return;
    k->wfd = w;
    k->kind = SINK_NONBLOCK;
  } else {
    return;
  }
  if (uv_poll_init(loop, &k->poll, k->wfd) == 0) {
    k->have_poll = true;
    k->poll.data = k;
  } else if (k->kind == SINK_NONBLOCK) {
    close(k->wfd); /* cannot wait for it: write directly */
    k->wfd = fd;
    k->kind = SINK_BLOCKING;
  } else {
    k->kind = SINK_BLOCKING;
  }
}

/* One write; bytes written, 0 when it would block, -1 when it failed. */
static ssize_t write_some(sink *k, const char *buf, size_t len) {
  for (;;) {
    ssize_t n = k->kind == SINK_SOCKET
                    ? send(k->wfd, buf, len, MSG_DONTWAIT | MSG_NOSIGNAL)
                    : write(k->wfd, buf, len);
    if (n >= 0)
      return n;
    if (errno == EINTR)
      continue;
    if (errno == EAGAIN || errno == EWOULDBLOCK)
      return 0;
    if (errno == EPIPE || errno == ECONNRESET)
      k->gone = true;
    else
      k->err = errno;
    return -1;
  }
}

/* Write from buf until done, blocked or failed; returns bytes taken. */
static size_t push(sink *k, const char *buf, size_t len) {
  size_t done = 0;
  while (done < len) {
    ssize_t n = write_some(k, buf + done, len - done);
    if (n <= 0 && k->kind == SINK_BLOCKING && n == 0)
      continue; /* a blocking descriptor made non-blocking by someone */
    if (n <= 0)
      break;
    done += (size_t)n;
  }
  return done;
}

static bool enqueue(sink *k, const char *buf, size_t len) {
  if (k->qoff > 0 && k->qoff == k->qlen)
    k->qoff = k->qlen = 0;
  if (k->qlen + len > k->qcap) {
    size_t cap = k->qcap ? k->qcap : 64 * 1024;
    while (cap < k->qlen + len)
      cap *= 2;
    char *q = realloc(k->q, cap);
    if (q == NULL) {
      k->err = ENOMEM;
      return false;
    }
    k->q = q;
    k->qcap = cap;
  }
  memcpy(k->q + k->qlen, buf, len);
  k->qlen += len;
  return true;
}

static void want_writable(sink *k, bool on) {
  if (!k->have_poll || on == k->polling)
    return;
  k->polling = on;
  if (on)
    uv_poll_start(&k->poll, UV_WRITABLE, on_writable);
  else
    uv_poll_stop(&k->poll);
}

static bool broken(const sink *k) { return k->gone || k->err != 0; }

void sink_write(sink *k, const char *buf, size_t len) {
  if (broken(k) || len == 0)
    return;
  size_t before = sink_pending(k);
  size_t done = before == 0 ? push(k, buf, len) : 0;
  if (!broken(k) && done < len && enqueue(k, buf + done, len - done))
    want_writable(k, true);
  if (broken(k))
    sink_drop(k);
  if (broken(k) || (before <= SINK_HIGH && sink_pending(k) > SINK_HIGH))
    k->cb(k, k->data);
}

static void on_writable(uv_poll_t *h, int status, int events) {
  (void)events;
  sink *k = h->data;
  size_t before = sink_pending(k);
  /* libuv reports EPOLLERR (a pipe whose reader is gone) as UV_EBADF:
   * the write itself tells what happened. */
  size_t n = push(k, k->q + k->qoff, k->qlen - k->qoff);
  k->qoff += n;
  if (status < 0 && n == 0 && !broken(k))
    k->err = EIO;
  if (broken(k))
    sink_drop(k);
  if (sink_pending(k) == 0)
    want_writable(k, false);
  if (broken(k) || (before >= SINK_LOW && sink_pending(k) < SINK_LOW) ||
      sink_pending(k) == 0)
    k->cb(k, k->data);
}

size_t sink_pending(const sink *k) { return k->qlen - k->qoff; }

void sink_drop(sink *k) {
  k->qoff = k->qlen = 0;
  want_writable(k, false);
}

void sink_close(sink *k) {
  sink_drop(k);
  if (k->have_poll)
    uv_close((uv_handle_t *)&k->poll, NULL);
  k->have_poll = false;
  if (k->wfd != k->fd)
    close(k->wfd);
  k->wfd = k->fd;
  free(k->q);
  k->q = NULL;
  k->qcap = 0;
}
