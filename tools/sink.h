/* Where pk run forwards the child's output (its own fd 1 or 2), written
 * without ever blocking the loop: bytes the reader has not taken yet wait
 * in a queue, and the run is paused while the queue is long. */
#ifndef PK_SINK_H
#define PK_SINK_H

#include <pk/pk.h>

#include <stdbool.h>
#include <stddef.h>

/* Pause the child's output above SINK_HIGH queued bytes, resume below
 * SINK_LOW. */
#define SINK_HIGH (256 * 1024)
#define SINK_LOW (64 * 1024)

typedef struct sink sink;
/* The sink changed: the reader went away, a write failed, or the queue
 * crossed a mark. */
typedef void (*sink_cb)(sink *k, void *data);

struct sink {
  int fd;   /* 1 or 2 */
  int wfd;  /* what is written: fd, or a non-blocking reopen of it */
  int kind; /* SINK_BLOCKING / SINK_NONBLOCK / SINK_SOCKET (sink_posix.c) */
  char *q;  /* queued bytes q[qoff..qlen) */
  size_t qoff, qlen, qcap;
  uv_poll_t poll;
  bool have_poll, polling;
  bool gone; /* the reader went away (EPIPE) */
  int err;   /* errno of a failed write other than EPIPE */
  sink_cb cb;
  void *data;
};

/* Set up forwarding to fd. Never fails: a descriptor that cannot be made
 * non-blocking (a regular file) is written directly. */
void sink_init(sink *k, uv_loop_t *loop, int fd, sink_cb cb, void *data);
/* Forward bytes (dropped once the reader is gone or a write failed). */
void sink_write(sink *k, const char *buf, size_t len);
/* Bytes waiting for the reader. */
size_t sink_pending(const sink *k);
/* Give up on what is queued (the run ended and must not wait). */
void sink_drop(sink *k);
/* Release the poll handle (from the loop) and the reopened descriptor. */
void sink_close(sink *k);

#endif
