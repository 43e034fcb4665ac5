/* The allocator hook and small heap helpers. */
#include "internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static struct {
  void *(*malloc_fn)(size_t);
  void *(*realloc_fn)(void *, size_t);
  void *(*calloc_fn)(size_t, size_t);
  void (*free_fn)(void *);
} pk__alloc = {malloc, realloc, calloc, free};

int pk_replace_allocator(void *(*malloc_fn)(size_t),
                         void *(*realloc_fn)(void *, size_t),
                         void *(*calloc_fn)(size_t, size_t),
                         void (*free_fn)(void *)) {
  pk__alloc.malloc_fn = malloc_fn ? malloc_fn : malloc;
  pk__alloc.realloc_fn = realloc_fn ? realloc_fn : realloc;
  pk__alloc.calloc_fn = calloc_fn ? calloc_fn : calloc;
  pk__alloc.free_fn = free_fn ? free_fn : free;
  return 0;
}

void *pk__malloc(size_t n) { return pk__alloc.malloc_fn(n ? n : 1); }
void *pk__calloc(size_t n, size_t size) {
  return pk__alloc.calloc_fn(n ? n : 1, size ? size : 1);
}
void *pk__realloc(void *p, size_t n) {
  return pk__alloc.realloc_fn(p, n ? n : 1);
}
void pk__free(void *p) {
  if (p != NULL)
    pk__alloc.free_fn(p);
}
void pk_free(void *p) { pk__free(p); }

void *pk__memdup(const void *p, size_t n) {
  char *d = pk__malloc(n + 1);
  if (d == NULL)
    return NULL;
  if (n > 0)
    memcpy(d, p, n);
  d[n] = '\0';
  return d;
}

char *pk__strdup(const char *s) { return pk__memdup(s, strlen(s)); }

char *pk__vsprintf(const char *fmt, va_list ap) {
  va_list ap2;
  va_copy(ap2, ap);
  int n = vsnprintf(NULL, 0, fmt, ap2);
  va_end(ap2);
  if (n < 0)
    return NULL;
  char *s = pk__malloc((size_t)n + 1);
  if (s != NULL)
    vsnprintf(s, (size_t)n + 1, fmt, ap);
  return s;
}

char *pk__sprintf(const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  char *s = pk__vsprintf(fmt, ap);
  va_end(ap);
  return s;
}

int pk__buf_reserve(pk__buf *b, size_t n) {
  if (b->len + n + 1 > b->cap) {
    size_t cap = b->cap ? b->cap : 256;
    while (cap < b->len + n + 1)
      cap *= 2;
    char *d = pk__realloc(b->data, cap);
    if (d == NULL)
      return PK_ENOMEM;
    b->data = d;
    b->cap = cap;
  }
  b->data[b->len] = '\0'; /* a buffer is a string whenever it has data */
  return 0;
}

int pk__buf_append(pk__buf *b, const void *p, size_t n) {
  if (pk__buf_reserve(b, n) != 0)
    return PK_ENOMEM;
  if (n > 0)
    memcpy(b->data + b->len, p, n);
  b->len += n;
  b->data[b->len] = '\0';
  return 0;
}

void pk__buf_release(pk__buf *b) {
  pk__free(b->data);
  b->data = NULL;
  b->len = b->cap = 0;
}

const void *pk__memmem(const void *hay, size_t hlen, const void *needle,
                       size_t nlen) {
  if (nlen == 0)
    return hay;
  const char *h = hay, *end = h + hlen;
  while (hlen >= nlen) {
    const char *c = memchr(h, *(const char *)needle, hlen - nlen + 1);
    if (c == NULL)
      return NULL;
    if (memcmp(c, needle, nlen) == 0)
      return c;
    h = c + 1;
    hlen = (size_t)(end - h);
  }
  return NULL;
}
