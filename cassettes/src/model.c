/* The in-memory cassette: construction, copies, comparison, and the small
 * tables and checks the reader, the writer and the recorder share. */
#include "model.h"

#include "internal.h"

#include <errno.h>
#include <nettle/base64.h>
#include <nettle/sha2.h>
#include <stdio.h>
#include <string.h>

pkc_file *pkc_file_new(void) {
  pkc_file *f = pk__calloc(1, sizeof(*f));
  if (f != NULL)
    f->version = PKC_VERSION;
  return f;
}

static void free_strv(char **v, size_t n) {
  for (size_t i = 0; i < n; i++)
    pk__free(v[i]);
  pk__free(v);
}

void pkc_entry_clear(pkc_entry *e) {
  if (e == NULL)
    return;
  pk__free(e->id);
  pk__free(e->recorded_at);
  pk__free(e->program);
  free_strv(e->args, e->nargs);
  pk__free(e->cwd);
  free_strv(e->env_names, e->nenv_names);
  pk__free(e->env_digest);
  pk__free(e->stage);
  pk__free(e->errmsg);
  free_strv(e->placeholders, e->nplaceholders);
  for (size_t i = 0; i < e->nevents; i++)
    pk__free(e->events[i].data);
  pk__free(e->events);
  memset(e, 0, sizeof(*e));
}

void pkc_file_free(pkc_file *f) {
  if (f == NULL)
    return;
  for (size_t i = 0; i < f->nentries; i++)
    pkc_entry_clear(&f->entries[i]);
  pk__free(f->entries);
  pk__free(f->pk_version);
  pk__free(f);
}

/* Grow *arr (n elements of size sz) so that index n is usable. Capacity is
 * implicit: the next power of two >= n, so appends are amortized O(1). */
int pkc__grow(void *arr, size_t n, size_t sz) {
  void **p = arr;
  if (n != 0 && (n & (n - 1)) != 0)
    return 0; /* not full: capacity is the next power of two */
  size_t cap = n == 0 ? 4 : n * 2;
  if (cap > SIZE_MAX / sz)
    return PK_ENOMEM;
  void *q = pk__realloc(*p, cap * sz);
  if (q == NULL)
    return PK_ENOMEM;
  *p = q;
  return 0;
}

static int dup_str(char **dst, const char *src) {
  *dst = NULL;
  if (src == NULL)
    return 0;
  *dst = pk__strdup(src);
  return *dst == NULL ? PK_ENOMEM : 0;
}

static int dup_strv(char ***dst, size_t *ndst, char *const *src, size_t n) {
  *dst = NULL;
  *ndst = 0;
  if (n == 0)
    return 0;
  char **v = pk__calloc(n, sizeof(*v));
  if (v == NULL)
    return PK_ENOMEM;
  *dst = v;
  for (size_t i = 0; i < n; i++) {
    if (dup_str(&v[i], src[i]) != 0)
      return PK_ENOMEM;
    *ndst = i + 1;
  }
  return 0;
}

static int copy_events(pkc_entry *dst, const pkc_entry *src) {
  if (src->nevents == 0)
    return 0;
  dst->events = pk__calloc(src->nevents, sizeof(*dst->events));
  if (dst->events == NULL)
    return PK_ENOMEM;
  for (size_t i = 0; i < src->nevents; i++) {
    const pkc_event *s = &src->events[i];
    pkc_event *d = &dst->events[i];
    *d = *s;
    d->data = pk__malloc(s->len + 1);
    if (d->data == NULL)
      return PK_ENOMEM;
    if (s->len != 0)
      memcpy(d->data, s->data, s->len);
    d->data[s->len] = '\0';
    dst->nevents = i + 1;
  }
  return 0;
}

int pkc_entry_copy(pkc_entry *dst, const pkc_entry *src) {
  *dst = *src;
  /* Every pointer is replaced before anything can fail, so a failure can
   * clear dst without touching src's storage. */
  dst->id = dst->recorded_at = dst->program = dst->cwd = NULL;
  dst->env_digest = dst->stage = dst->errmsg = NULL;
  dst->args = dst->env_names = dst->placeholders = NULL;
  dst->nargs = dst->nenv_names = dst->nplaceholders = 0;
  dst->events = NULL;
  dst->nevents = 0;
  if (dup_str(&dst->id, src->id) || dup_str(&dst->program, src->program) ||
      dup_str(&dst->recorded_at, src->recorded_at) ||
      dup_str(&dst->cwd, src->cwd) ||
      dup_str(&dst->env_digest, src->env_digest) ||
      dup_str(&dst->stage, src->stage) || dup_str(&dst->errmsg, src->errmsg) ||
      dup_strv(&dst->args, &dst->nargs, src->args, src->nargs) ||
      dup_strv(&dst->env_names, &dst->nenv_names, src->env_names,
               src->nenv_names) ||
      dup_strv(&dst->placeholders, &dst->nplaceholders, src->placeholders,
               src->nplaceholders) ||
      copy_events(dst, src)) {
    pkc_entry_clear(dst);
    return PK_ENOMEM;
  }
  return 0;
}

int pkc_file_add(pkc_file *f, pkc_entry *e, bool copy) {
  if (pkc__grow(&f->entries, f->nentries, sizeof(*f->entries)) != 0)
    return PK_ENOMEM;
  pkc_entry *slot = &f->entries[f->nentries];
  if (copy) {
    if (pkc_entry_copy(slot, e) != 0)
      return PK_ENOMEM;
  } else {
    *slot = *e;
    memset(e, 0, sizeof(*e));
  }
  f->nentries++;
  return 0;
}

static bool str_eq(const char *a, const char *b) {
  if (a == NULL || b == NULL)
    return a == b;
  return strcmp(a, b) == 0;
}

static bool strv_eq(char *const *a, size_t na, char *const *b, size_t nb) {
  if (na != nb)
    return false;
  for (size_t i = 0; i < na; i++)
    if (!str_eq(a[i], b[i]))
      return false;
  return true;
}

static bool end_eq(const pkc_entry *a, const pkc_entry *b) {
  if (a->end != b->end)
    return false;
  switch (a->end) {
  case PKC_END_EXIT:
    return a->code == b->code;
  case PKC_END_SIGNAL:
    return a->signal == b->signal;
  case PKC_END_TIMEOUT:
    return a->signal == b->signal && (a->signal != 0 || a->code == b->code ||
                                      (a->code < 0 && b->code < 0));
  case PKC_END_ERROR:
    return a->error == b->error && a->os_errno == b->os_errno &&
           str_eq(a->stage, b->stage) && str_eq(a->errmsg, b->errmsg);
  }
  return false;
}

static bool events_eq(const pkc_entry *a, const pkc_entry *b,
                      bool ignore_timing) {
  if (a->nevents != b->nevents)
    return false;
  for (size_t i = 0; i < a->nevents; i++) {
    const pkc_event *x = &a->events[i], *y = &b->events[i];
    if (x->kind != y->kind || x->len != y->len ||
        (!ignore_timing && x->t_us != y->t_us) ||
        (x->len != 0 && memcmp(x->data, y->data, x->len) != 0))
      return false;
  }
  return true;
}

bool pkc_entry_equal(const pkc_entry *a, const pkc_entry *b,
                     bool ignore_timing) {
  if (!str_eq(a->id, b->id) || !str_eq(a->program, b->program) ||
      !str_eq(a->cwd, b->cwd) || !str_eq(a->env_digest, b->env_digest) ||
      !strv_eq(a->args, a->nargs, b->args, b->nargs) ||
      !strv_eq(a->env_names, a->nenv_names, b->env_names, b->nenv_names) ||
      !strv_eq(a->placeholders, a->nplaceholders, b->placeholders,
               b->nplaceholders))
    return false;
  if (!ignore_timing && (!str_eq(a->recorded_at, b->recorded_at) ||
                         a->duration_us != b->duration_us))
    return false;
  if (a->stdin_kind != b->stdin_kind)
    return false;
  if (a->stdin_kind == PKC_STDIN_BYTES &&
      (a->stdin_bytes != b->stdin_bytes ||
       strcmp(a->stdin_sha256, b->stdin_sha256) != 0))
    return false;
  for (int s = PK_STDOUT; s <= PK_STDERR; s++)
    if (a->total_bytes[s] != b->total_bytes[s] ||
        a->total_lines[s] != b->total_lines[s])
      return false;
  return a->truncated == b->truncated && a->incomplete == b->incomplete &&
         end_eq(a, b) && events_eq(a, b, ignore_timing);
}

bool pkc_file_equal(const pkc_file *a, const pkc_file *b) {
  if (a->version != b->version || a->frozen != b->frozen ||
      !str_eq(a->pk_version, b->pk_version) || a->nentries != b->nentries)
    return false;
  for (size_t i = 0; i < a->nentries; i++)
    if (!pkc_entry_equal(&a->entries[i], &b->entries[i], false))
      return false;
  return true;
}

/* ---- UTF-8 */

size_t pkc_utf8_valid_prefix(const char *s, size_t len) {
  const unsigned char *p = (const unsigned char *)s;
  size_t i = 0;
  while (i < len) {
    unsigned c = p[i];
    size_t n;
    unsigned min, cp;
    if (c == 0)
      return i;
    if (c < 0x80) {
      i++;
      continue;
    } else if (c >= 0xC2 && c <= 0xDF) {
      n = 2, min = 0x80, cp = c & 0x1F;
    } else if (c >= 0xE0 && c <= 0xEF) {
      n = 3, min = 0x800, cp = c & 0x0F;
    } else if (c >= 0xF0 && c <= 0xF4) {
      n = 4, min = 0x10000, cp = c & 0x07;
    } else {
      return i;
    }
    if (len - i < n)
      return i;
    for (size_t k = 1; k < n; k++) {
      if ((p[i + k] & 0xC0) != 0x80)
        return i;
      cp = (cp << 6) | (p[i + k] & 0x3Fu);
    }
    if (cp < min || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF))
      return i;
    i += n;
  }
  return i;
}

/* ---- errno names: the POSIX set, all present on Linux. Aliases
 * (EWOULDBLOCK, EOPNOTSUPP, EDEADLOCK) come after the name they alias, so
 * a number maps to one name and both names parse. */
typedef struct pkc_name {
  int value;
  const char *name;
} pkc_name;

#define N(e)                                                                   \
  { e, #e }
static const pkc_name errno_names[] = {
    N(E2BIG),        N(EACCES),
    N(EADDRINUSE),   N(EADDRNOTAVAIL),
    N(EAFNOSUPPORT), N(EAGAIN),
    N(EALREADY),     N(EBADF),
    N(EBADMSG),      N(EBUSY),
    N(ECANCELED),    N(ECHILD),
    N(ECONNABORTED), N(ECONNREFUSED),
    N(ECONNRESET),   N(EDEADLK),
    N(EDESTADDRREQ), N(EDOM),
    N(EEXIST),       N(EFAULT),
    N(EFBIG),        N(EHOSTUNREACH),
    N(EIDRM),        N(EILSEQ),
    N(EINPROGRESS),  N(EINTR),
    N(EINVAL),       N(EIO),
    N(EISCONN),      N(EISDIR),
    N(ELOOP),        N(EMFILE),
    N(EMLINK),       N(EMSGSIZE),
    N(ENAMETOOLONG), N(ENETDOWN),
    N(ENETRESET),    N(ENETUNREACH),
    N(ENFILE),       N(ENOBUFS),
    N(ENODEV),       N(ENOENT),
    N(ENOEXEC),      N(ENOLCK),
    N(ENOLINK),      N(ENOMEM),
    N(ENOMSG),       N(ENOPROTOOPT),
    N(ENOSPC),       N(ENOSYS),
    N(ENOTCONN),     N(ENOTDIR),
    N(ENOTEMPTY),    N(ENOTRECOVERABLE),
    N(ENOTSOCK),     N(ENOTSUP),
    N(ENOTTY),       N(ENXIO),
    N(EOVERFLOW),    N(EOWNERDEAD),
    N(EPERM),        N(EPIPE),
    N(EPROTO),       N(EPROTONOSUPPORT),
    N(EPROTOTYPE),   N(ERANGE),
    N(EROFS),        N(ESPIPE),
    N(ESRCH),        N(ETIMEDOUT),
    N(ETXTBSY),      N(EXDEV),
    N(EWOULDBLOCK),  N(EOPNOTSUPP),
    N(EDEADLOCK),
/* Not in the Windows C runtime: such a name read there falls back to
 * exit.errno. */
#if !defined(_WIN32)
    N(EDQUOT),       N(EMULTIHOP),
    N(ESTALE),
#endif
};

#undef N

#define PKC_COUNT(a) (sizeof(a) / sizeof((a)[0]))

static const char *name_of(const pkc_name *t, size_t n, int value) {
  for (size_t i = 0; i < n; i++)
    if (t[i].value == value)
      return t[i].name;
  return NULL;
}

static int value_of(const pkc_name *t, size_t n, const char *name) {
  if (name == NULL)
    return -1;
  for (size_t i = 0; i < n; i++)
    if (strcmp(t[i].name, name) == 0)
      return t[i].value;
  return -1;
}

const char *pkc_errno_name(int err) {
  return name_of(errno_names, PKC_COUNT(errno_names), err);
}

int pkc_errno_parse(const char *name) {
  return value_of(errno_names, PKC_COUNT(errno_names), name);
}

int pkc_error_parse(const char *name) {
  static const int codes[] = {
#define PKC_CODE(suffix, value, n, msg) PK_##suffix,
      PK_ERRNO_MAP(PKC_CODE)
#undef PKC_CODE
  };
  if (name == NULL)
    return 0;
  for (size_t i = 0; i < PKC_COUNT(codes); i++)
    if (strcmp(pk_err_name(codes[i]), name) == 0)
      return codes[i];
  return 0;
}

void pkc_sha256_hex(const void *data, size_t len, char out[65]) {
  static const char hex[] = "0123456789abcdef";
  struct sha256_ctx ctx;
  uint8_t d[SHA256_DIGEST_SIZE];
  sha256_init(&ctx);
  if (len != 0)
    sha256_update(&ctx, len, data);
  sha256_digest(&ctx, sizeof(d), d);
  for (size_t i = 0; i < sizeof(d); i++) {
    out[2 * i] = hex[d[i] >> 4];
    out[2 * i + 1] = hex[d[i] & 15];
  }
  out[64] = '\0';
}

bool pkc_hex64_valid(const char *s) {
  if (s == NULL || strlen(s) != 64)
    return false;
  for (size_t i = 0; i < 64; i++)
    if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f')))
      return false;
  return true;
}

/* YYYY-MM-DDTHH:MM:SS[.fraction]Z, digits where digits go. */
/* Days since 1970-01-01 of a proleptic Gregorian date, and back (eras of
 * 400 years, March-based years so the leap day comes last). */
static int64_t days_from_civil(int64_t y, int m, int d) {
  y -= m <= 2;
  int64_t era = (y >= 0 ? y : y - 399) / 400;
  int64_t yoe = y - era * 400;
  int64_t doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
  int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
  return era * 146097 + doe - 719468;
}

static void civil_from_days(int64_t z, int64_t *y, int *m, int *d) {
  z += 719468;
  int64_t era = (z >= 0 ? z : z - 146096) / 146097;
  int64_t doe = z - era * 146097;
  int64_t yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
  int64_t doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
  int64_t mp = (5 * doy + 2) / 153;
  *d = (int)(doy - (153 * mp + 2) / 5 + 1);
  *m = (int)(mp < 10 ? mp + 3 : mp - 9);
  *y = yoe + era * 400 + (*m <= 2);
}

int pkc_utc_parse(const char *s, int64_t *secs) {
  int y, mo, d, h, mi, se;
  if (s == NULL ||
      sscanf(s, "%4d-%2d-%2dT%2d:%2d:%2d", &y, &mo, &d, &h, &mi, &se) != 6 ||
      mo < 1 || mo > 12 || d < 1 || d > 31 || h > 23 || mi > 59 || se > 60)
    return -1;
  *secs = days_from_civil(y, mo, d) * 86400 + h * 3600 + mi * 60 + se;
  return 0;
}

void pkc_utc_format(int64_t secs, int ms, char out[32]) {
  int64_t days = secs >= 0 ? secs / 86400 : (secs - 86399) / 86400;
  int64_t rem = secs - days * 86400, y;
  int m, d;
  civil_from_days(days, &y, &m, &d);
  char buf[96]; /* room for any int64 year; a real one takes 24 bytes */
  snprintf(buf, sizeof(buf), "%04lld-%02d-%02dT%02d:%02d:%02d.%03dZ",
           (long long)y, m, d, (int)(rem / 3600), (int)(rem / 60 % 60),
           (int)(rem % 60), ms);
  size_t n = strlen(buf);
  if (n > 31)
    n = 31;
  memcpy(out, buf, n);
  out[n] = '\0';
}

bool pkc_timestamp_valid(const char *s) {
  static const char shape[] = "dddd-dd-ddTdd:dd:dd";
  if (s == NULL)
    return false;
  size_t i = 0;
  for (; shape[i] != '\0'; i++) {
    if (shape[i] == 'd' ? !(s[i] >= '0' && s[i] <= '9') : s[i] != shape[i])
      return false;
  }
  if (s[i] == '.') {
    size_t start = ++i;
    while (s[i] >= '0' && s[i] <= '9')
      i++;
    if (i == start || i - start > 9)
      return false;
  }
  return s[i] == 'Z' && s[i + 1] == '\0';
}

char *pkc_base64(const void *data, size_t len) {
  size_t n = BASE64_ENCODE_RAW_LENGTH(len);
  char *enc = pk__malloc(n + 1);
  if (enc == NULL)
    return NULL;
  base64_encode_raw(enc, len, (const uint8_t *)data);
  enc[n] = '\0';
  return enc;
}
