/* The harness parts every host shares: time, fixture commands, runners,
 * groups and the failing allocator (harness_posix.c / harness_win.c have
 * the rest). */
#include "harness.h"
#include "internal.h"

#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <uv.h>

uint64_t pkt_now_ms(void) { return uv_hrtime() / 1000000u; }

char *pkt_mkdtemp(char *tmpl) {
  uv_fs_t req;
  int rc = uv_fs_mkdtemp(NULL, &req, tmpl, NULL);
  if (rc == 0)
    memcpy(tmpl, req.path, strlen(tmpl));
  uv_fs_req_cleanup(&req);
  if (rc != 0)
    fail_msg("mkdtemp %s: %s", tmpl, uv_strerror(rc));
  return tmpl;
}

void pkt_mkdir(const char *path) {
  uv_fs_t req;
  int rc = uv_fs_mkdir(NULL, &req, path, 0755, NULL);
  uv_fs_req_cleanup(&req);
  if (rc != 0)
    fail_msg("mkdir %s: %s", path, uv_strerror(rc));
}

const char *pkt_tmpdir(void) {
  static char dir[1024];
  size_t n = sizeof(dir);
  if (dir[0] == '\0' && uv_os_tmpdir(dir, &n) != 0)
    fail_msg("no temporary directory");
  return dir;
}

static pkt_snapshot pkt_test_snap;

int pkt_before(void **state) {
  (void)state;
  pkt_snapshot_take(&pkt_test_snap);
  return 0;
}

int pkt_after(void **state) {
  (void)state;
  pkt_snapshot_check(&pkt_test_snap);
  return 0;
}

bool pkt_host_signals(void) { return pk__host_signals(); }

void pkt_assert_ended_by(const pk_result *r, int sig) {
  if (pk__host_signals()) {
    assert_int_equal(pk_result_signal(r), sig);
    return;
  }
  assert_int_equal(pk_result_signal(r), 0);
  assert_int_equal(pk_result_code(r), 1);
}

bool pkt_real_runs(void) {
  pk_runner *r = NULL;
  int rc = pk_real_runner_new(NULL, &r);
  pk_runner_free(r);
  return rc != PK_EUNSUPPORTED;
}

pk_group *pkt_group(pk_mechanism m) {
  pk_group_opts o;
  pk_group_opts_init(&o);
  o.mechanism = m;
  pk_group *g = NULL;
  char *msg = NULL;
  int rc = pk_group_new(&o, &g, &msg);
  if (rc != 0)
    fail_msg("pk_group_new(%s): %s: %s", pk_mechanism_name(m), pk_err_name(rc),
             msg ? msg : "");
  assert_int_equal(pk_group_mechanism(g), m);
  return g;
}

pk_cmd *pkt_fixture_cmd_v(const char *program, const char *mode, va_list ap) {
  pk_cmd *cmd;
  PKT_ASSERT_OK(pk_cmd_new(program, &cmd));
  PKT_ASSERT_OK(pk_cmd_arg(cmd, mode));
  const char *a;
  while ((a = va_arg(ap, const char *)) != NULL)
    PKT_ASSERT_OK(pk_cmd_arg(cmd, a));
  return cmd;
}

pk_cmd *pkt_fixture(const char *mode, ...) {
  va_list ap;
  va_start(ap, mode);
  pk_cmd *cmd = pkt_fixture_cmd_v(PK_FIXTURE, mode, ap);
  va_end(ap);
  return cmd;
}

pk_runner *pkt_runner(pk_mechanism m, unsigned disable) {
  pk_real_opts o = {.mechanism = m, .disable = disable};
  pk_runner *r;
  PKT_ASSERT_OK(pk_real_runner_new(&o, &r));
  return r;
}

int pkt_mechanisms(pk_mechanism *out) {
  static const pk_mechanism all[] = {PK_MECH_CGROUP_V2, PK_MECH_PROCESS_GROUP,
                                     PK_MECH_JOB_OBJECT};
  int n = 0;
  for (size_t i = 0; i < sizeof(all) / sizeof(all[0]); i++)
    if (pk_mechanism_available(all[i]) == 0)
      out[n++] = all[i];
  return n;
}

/* ------------------------------------------------ a failing allocator */

static long alloc_budget = -1; /* allocations left; -1: unlimited */

static bool alloc_take(void) {
  if (alloc_budget < 0)
    return true;
  if (alloc_budget == 0)
    return false;
  alloc_budget--;
  return true;
}
static void *f_malloc(size_t n) { return alloc_take() ? malloc(n) : NULL; }
static void *f_realloc(void *p, size_t n) {
  return alloc_take() ? realloc(p, n) : NULL;
}
static void *f_calloc(size_t n, size_t size) {
  return alloc_take() ? calloc(n, size) : NULL;
}

void pkt_fail_after(long n) {
  alloc_budget = n;
  pk_replace_allocator(f_malloc, f_realloc, f_calloc, NULL);
}

void pkt_restore_allocator(void) {
  alloc_budget = -1;
  pk_replace_allocator(NULL, NULL, NULL, NULL);
}

bool pkt_stat(const char *path, uv_stat_t *st) {
  uv_fs_t req;
  int rc = uv_fs_stat(NULL, &req, path, NULL);
  if (rc == 0 && st != NULL)
    *st = req.statbuf;
  uv_fs_req_cleanup(&req);
  return rc == 0;
}

static bool path_exists(const char *path) {
  uv_fs_t req;
  int rc = uv_fs_lstat(NULL, &req, path, NULL);
  uv_fs_req_cleanup(&req);
  return rc == 0;
}

/* rm -rf through libuv's fs calls (no shell, any host): 0 when d is gone,
 * else the first error. */
int pkt_rm_tree(const char *d) {
  uv_fs_t req;
  int rc = uv_fs_scandir(NULL, &req, d, 0, NULL);
  if (rc < 0) {
    uv_fs_req_cleanup(&req);
    return rc == UV_ENOENT ? 0 : rc;
  }
  int first = 0;
  uv_dirent_t de;
  while (uv_fs_scandir_next(&req, &de) != UV_EOF) {
    char path[2048];
    snprintf(path, sizeof(path), "%s/%s", d, de.name);
    bool is_dir = de.type == UV_DIRENT_DIR;
    if (de.type == UV_DIRENT_UNKNOWN) {
      uv_fs_t sr;
      is_dir = uv_fs_lstat(NULL, &sr, path, NULL) == 0 &&
               (sr.statbuf.st_mode & S_IFMT) == S_IFDIR;
      uv_fs_req_cleanup(&sr);
    }
    uv_fs_t ur;
    rc = is_dir ? pkt_rm_tree(path) : uv_fs_unlink(NULL, &ur, path, NULL);
    if (!is_dir)
      uv_fs_req_cleanup(&ur);
    if (rc != 0 && first == 0)
      first = rc;
  }
  uv_fs_req_cleanup(&req);
  rc = uv_fs_rmdir(NULL, &req, d, NULL);
  uv_fs_req_cleanup(&req);
  if (first == 0 && rc != 0)
    first = rc;
  return first == 0 && path_exists(d) ? UV_EEXIST : first;
}

void pkt_rm_rf(const char *d) {
  int rc = pkt_rm_tree(d);
  if (rc != 0)
    fail_msg("rm -rf %s: %s", d, uv_strerror(rc));
  assert_false(path_exists(d));
}
