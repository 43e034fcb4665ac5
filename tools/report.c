/* pk run --report FILE: a YAML summary of the run.
 *
 * The file is made in two steps so that a bad path costs nothing and a
 * failed write leaves nothing behind:
 *   1. report_open, before the spawn: FILE must not be a symlink or
 *      anything but a regular file; a temporary file is created next to
 *      it (O_CREAT | O_EXCL, mode 0644 less the umask). Any failure here
 *      is pk's own (125) and the command never runs.
 *   2. report_commit, after the run: the YAML is written to the
 *      temporary file, fsync'ed, and renamed onto FILE. rename(2)
 *      replaces a directory entry and never follows a symlink, so a link
 *      planted at FILE during the run is replaced, not written through.
 * Every failure removes the temporary file (report_discard). Files go
 * through libuv's synchronous fs calls, the same on every host.
 *
 * All YAML goes through libyaml's emitter. Text is double-quoted; a byte
 * string that is not valid UTF-8 (argv is bytes) is written as a
 * `!!binary` scalar holding its base64. */
#include "cli.h"
#include "cli_os.h"
#include "model.h" /* UTF-8 check and base64, shared with cassettes */

#include <stdlib.h>
#include <string.h>
#include <yaml.h>

#define BINARY_TAG "tag:yaml.org,2002:binary"

/* A libuv error as the pk error a user should read. */
static int report_err(int e) {
  switch (e) {
  case UV_ENOENT:
  case UV_ENOTDIR:
    return PK_ENOENT;
  case UV_EACCES:
  case UV_EPERM:
  case UV_EROFS:
    return PK_EACCES;
  case UV_ENOMEM:
    return PK_ENOMEM;
  default:
    return PK_EIO;
  }
}

/* FILE itself: absent, or a regular file we may replace. */
static int check_target(const char *path) {
  uv_fs_t req;
  int rc = uv_fs_lstat(NULL, &req, path, NULL);
  uint64_t mode = req.statbuf.st_mode;
  uv_fs_req_cleanup(&req);
  if (rc != 0) {
    if (rc == UV_ENOENT)
      return 0;
    return fail(report_err(rc), "cannot use report %s: %s", path,
                uv_strerror(rc));
  }
  if ((mode & S_IFMT) == S_IFLNK)
    return fail(PK_EINVAL,
                "report %s is a symbolic link; refusing to write through "
                "or replace it",
                path);
  if ((mode & S_IFMT) != S_IFREG)
    return fail(PK_EINVAL, "report %s exists and is not a regular file", path);
  return 0;
}

/* "<dir of path>/.pk-report-<16 hex>": short, so never too long a name. */
static char *tmp_name(const char *path, int *err) {
  size_t dirlen = cli_os_dir_len(path);
  unsigned char rnd[8];
  if ((*err = uv_random(NULL, NULL, rnd, sizeof(rnd), 0, NULL)) != 0)
    return NULL;
  *err = UV_ENOMEM;
  size_t size = dirlen + sizeof(".pk-report-") + 2 * sizeof(rnd);
  char *tmp = malloc(size);
  if (tmp == NULL)
    return NULL;
  memcpy(tmp, path, dirlen);
  char *p = tmp + dirlen;
  p += sprintf(p, ".pk-report-");
  for (size_t i = 0; i < sizeof(rnd); i++)
    p += sprintf(p, "%02x", rnd[i]);
  return tmp;
}

int report_open(report_file *rf, const char *path) {
  *rf = (report_file){.path = path, .fd = -1};
  if (check_target(path) != 0)
    return EXIT_PK_FAIL;
  for (int attempt = 0; attempt < 16; attempt++) {
    int e;
    char *tmp = tmp_name(path, &e);
    if (tmp == NULL)
      return fail(report_err(e), "cannot create report %s: %s", path,
                  uv_strerror(e));
    int fd = pk__fd_open(
        tmp, UV_FS_O_WRONLY | UV_FS_O_CREAT | UV_FS_O_EXCL | UV_FS_O_NOFOLLOW,
        0644);
    if (fd >= 0) {
      rf->tmp = tmp;
      rf->fd = fd;
      return 0;
    }
    free(tmp);
    if (fd != UV_EEXIST)
      return fail(report_err(fd), "cannot create report %s: %s", path,
                  uv_strerror(fd));
  }
  return fail(PK_EIO, "cannot create report %s: no free temporary name", path);
}

void report_discard(report_file *rf) {
  if (rf->fd >= 0)
    pk__fd_close(rf->fd);
  if (rf->tmp != NULL) {
    uv_fs_t req;
    uv_fs_unlink(NULL, &req, rf->tmp, NULL);
    uv_fs_req_cleanup(&req);
  }
  free(rf->tmp);
  rf->fd = -1;
  rf->tmp = NULL;
}

/* ------------------------------------------------------------ emitting */

typedef struct out {
  yaml_emitter_t em;
  int fd;
  int write_err; /* the first failed write (a libuv error) */
} out;

static int on_write(void *data, unsigned char *buf, size_t size) {
  out *o = data;
  int rc = pk__fd_write_all(o->fd, buf, size);
  if (rc != 0)
    o->write_err = rc;
  return rc == 0;
}

static int emit(out *o, yaml_event_t *ev, int init_ok) {
  if (!init_ok)
    return 0;
  return yaml_emitter_emit(&o->em, ev); /* takes the event, also on failure */
}

/* A plain scalar: a key, a number, true/false/null. */
static int plain(out *o, const char *s) {
  yaml_event_t ev;
  return emit(o, &ev,
              yaml_scalar_event_initialize(&ev, NULL, NULL,
                                           (const yaml_char_t *)s, -1, 1, 0,
                                           YAML_PLAIN_SCALAR_STYLE));
}

/* Text: double-quoted if valid UTF-8, else !!binary with its base64. */
static int text(out *o, const char *s) {
  const unsigned char *u = (const unsigned char *)s;
  size_t len = strlen(s);
  yaml_event_t ev;
  if (pkc_utf8_valid_prefix(s, len) == len) /* what libyaml accepts */
    return emit(o, &ev,
                yaml_scalar_event_initialize(&ev, NULL, NULL, u, (int)len, 0, 1,
                                             YAML_DOUBLE_QUOTED_SCALAR_STYLE));
  char *b64 = pkc_base64(u, len);
  if (b64 == NULL)
    return 0;
  int ok = emit(o, &ev,
                yaml_scalar_event_initialize(&ev, NULL,
                                             (const yaml_char_t *)BINARY_TAG,
                                             (const yaml_char_t *)b64, -1, 0, 0,
                                             YAML_DOUBLE_QUOTED_SCALAR_STYLE));
  pk_free(b64);
  return ok;
}

static int pair_plain(out *o, const char *key, const char *val) {
  return plain(o, key) && plain(o, val);
}

static int pair_int(out *o, const char *key, long long v) {
  char num[24];
  snprintf(num, sizeof(num), "%lld", v);
  return pair_plain(o, key, num);
}

static int pair_text(out *o, const char *key, const char *val) {
  return plain(o, key) && text(o, val);
}

static int emit_args(out *o, const run_args *a) {
  yaml_event_t ev;
  if (!plain(o, "args") ||
      !emit(o, &ev,
            yaml_sequence_start_event_initialize(&ev, NULL, NULL, 1,
                                                 YAML_FLOW_SEQUENCE_STYLE)))
    return 0;
  for (int i = 1; i < a->argc; i++)
    if (!text(o, a->argv[i]))
      return 0;
  return emit(o, &ev, yaml_sequence_end_event_initialize(&ev));
}

static int emit_fields(out *o, const run_args *a, const pk_result *r) {
  pk_outcome oc = pk_result_outcome(r);
  int code = pk_result_code(r);
  int err = pk_result_error(r);
  int ok = pair_text(o, "program", a->argv[0]) && emit_args(o, a);
  ok = ok &&
       (oc == PK_OUTCOME_NONE ? pair_plain(o, "outcome", "null")
                              : pair_text(o, "outcome", pk_outcome_name(oc)));
  ok = ok &&
       (code >= 0 ? pair_int(o, "code", code) : pair_plain(o, "code", "null"));
  ok = ok && pair_int(o, "signal", pk_result_signal(r)) &&
       pair_int(o, "duration_ms", (long long)pk_result_duration_ms(r)) &&
       pair_text(o, "mechanism", pk_mechanism_name(pk_result_mechanism(r))) &&
       pair_int(o, "stdout_bytes",
                (long long)pk_result_total_bytes(r, PK_STDOUT)) &&
       pair_int(o, "stderr_bytes",
                (long long)pk_result_total_bytes(r, PK_STDERR)) &&
       pair_plain(o, "output_incomplete",
                  pk_result_output_incomplete(r) ? "true" : "false");
  /* Resource use: null when it could not be measured (never 0). */
  int64_t cpu = pk_result_cpu_us(r), mem = pk_result_peak_memory(r);
  ok = ok && (cpu >= 0 ? pair_int(o, "cpu_us", (long long)cpu)
                       : pair_plain(o, "cpu_us", "null"));
  ok = ok && (cpu >= 0 ? pair_text(o, "cpu_scope", pk_result_cpu_scope(r))
                       : pair_plain(o, "cpu_scope", "null"));
  ok = ok && (mem >= 0 ? pair_int(o, "peak_memory_bytes", (long long)mem)
                       : pair_plain(o, "peak_memory_bytes", "null"));
  ok = ok && (mem >= 0 ? pair_text(o, "memory_scope", pk_result_memory_scope(r))
                       : pair_plain(o, "memory_scope", "null"));
  /* --subreaper: the orphans it killed after the run */
  ok = ok && (!a->subreaper ||
              pair_int(o, "subreaper_killed", (long long)a->subreaper_killed));
  return ok && (err == 0 || pair_text(o, "error", pk_err_name(err)));
}

/* One document: a block mapping of the fields, no "---" / "...". */
static int emit_report(out *o, const run_args *a, const pk_result *r) {
  yaml_event_t ev;
  return emit(o, &ev,
              yaml_stream_start_event_initialize(&ev, YAML_UTF8_ENCODING)) &&
         emit(o, &ev,
              yaml_document_start_event_initialize(&ev, NULL, NULL, NULL, 1)) &&
         emit(o, &ev,
              yaml_mapping_start_event_initialize(&ev, NULL, NULL, 1,
                                                  YAML_BLOCK_MAPPING_STYLE)) &&
         emit_fields(o, a, r) &&
         emit(o, &ev, yaml_mapping_end_event_initialize(&ev)) &&
         emit(o, &ev, yaml_document_end_event_initialize(&ev, 1)) &&
         emit(o, &ev, yaml_stream_end_event_initialize(&ev)) &&
         yaml_emitter_flush(&o->em);
}

/* Write the YAML to the temporary file and make it durable; 0 or a
 * message printed and EXIT_PK_FAIL. */
static int write_tmp(report_file *rf, const run_args *a, const pk_result *r) {
  out o = {.fd = rf->fd};
  if (!yaml_emitter_initialize(&o.em))
    return fail(PK_ENOMEM, "cannot write report %s: out of memory", rf->path);
  yaml_emitter_set_output(&o.em, on_write, &o);
  yaml_emitter_set_unicode(&o.em, 1); /* UTF-8 as is, not \u escapes */
  yaml_emitter_set_width(&o.em, -1);  /* one line per key */
  int ok = emit_report(&o, a, r);
  yaml_emitter_delete(&o.em);
  if (!ok && o.write_err != 0)
    return fail(PK_EIO, "cannot write report %s: %s", rf->path,
                uv_strerror(o.write_err));
  if (!ok) /* the emitter refuses only on memory: every scalar is valid */
    return fail(PK_ENOMEM, "cannot write report %s: out of memory", rf->path);
  uv_fs_t req;
  int rc = uv_fs_fsync(NULL, &req, rf->fd, NULL);
  uv_fs_req_cleanup(&req);
  if (rc != 0)
    return fail(PK_EIO, "cannot write report %s: %s", rf->path,
                uv_strerror(rc));
  int fd = rf->fd;
  rf->fd = -1;
  if ((rc = pk__fd_close(fd)) != 0)
    return fail(PK_EIO, "cannot write report %s: %s", rf->path,
                uv_strerror(rc));
  return 0;
}

int report_commit(report_file *rf, const run_args *a, const pk_result *r) {
  int status = write_tmp(rf, a, r);
  uv_fs_t req;
  int rc = status == 0 ? uv_fs_rename(NULL, &req, rf->tmp, rf->path, NULL) : 0;
  if (status == 0)
    uv_fs_req_cleanup(&req);
  if (rc != 0)
    status = fail(report_err(rc), "cannot write report %s: %s", rf->path,
                  uv_strerror(rc));
  if (status == 0) {
    free(rf->tmp); /* renamed: nothing left to remove */
    rf->tmp = NULL;
  }
  report_discard(rf);
  return status;
}
