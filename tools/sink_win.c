/* pk run's output forwarding on Windows: written straight to fd 1 or 2
 * through the C runtime. A reader that is slow holds pk's loop while it
 * writes (no queue, no pause: the POSIX sink's non-blocking forwarding is
 * not ported yet); a reader that went away (EPIPE) or a failed write is
 * reported as there. */
#include "sink.h"

#include <errno.h>
#include <io.h>
#include <limits.h>
#include <string.h>

void sink_init(sink *k, uv_loop_t *loop, int fd, sink_cb cb, void *data) {
  (void)loop;
  memset(k, 0, sizeof(*k));
  k->fd = k->wfd = fd;
  k->cb = cb;
  k->data = data;
}

void sink_write(sink *k, const char *buf, size_t len) {
  while (!k->gone && k->err == 0 && len > 0) {
    int n = _write(k->wfd, buf, len > INT_MAX ? INT_MAX : (unsigned)len);
    if (n <= 0) {
      if (n < 0 && errno == EPIPE)
        k->gone = true;
      else
        k->err = n < 0 ? errno : EIO;
      k->cb(k, k->data);
      return;
    }
    buf += n;
    len -= (size_t)n;
  }
}

size_t sink_pending(const sink *k) {
  (void)k;
  return 0;
}

void sink_drop(sink *k) { (void)k; }

void sink_close(sink *k) { (void)k; }
