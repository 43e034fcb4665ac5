/* The cassette object: opening (record mode, environment overrides),
 * saving (lock, merge with the file on disk, atomic replace) and closing
 * (misses, strictness). Matching is match.c, the runner runner.c. */
#include "cassette_internal.h"
#include "file.h"
#include "internal.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

extern char **environ;

static const char *const mode_names[] = {"default", "none", "once",
                                         "new_episodes", "all"};

const char *pk_record_mode_name(pk_record_mode m) {
  return (unsigned)m < sizeof(mode_names) / sizeof(mode_names[0])
             ? mode_names[m]
             : "unknown";
}

int pk_record_mode_parse(const char *name, pk_record_mode *out) {
  for (size_t i = 0;
       name != NULL && i < sizeof(mode_names) / sizeof(*mode_names); i++)
    if (strcmp(name, mode_names[i]) == 0) {
      if (out != NULL)
        *out = (pk_record_mode)i;
      return 0;
    }
  return PK_EINVAL;
}

static int set_err(pk_cassette *c, int rc, const char *fmt, ...)
    PK__PRINTF(3, 4);
static int set_err(pk_cassette *c, int rc, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(c->errmsg, sizeof(c->errmsg), fmt, ap);
  va_end(ap);
  return rc;
}

const char *pk_cassette_errmsg(const pk_cassette *c) {
  return c != NULL ? c->errmsg : "no cassette";
}

/* ------------------------------------------------------------- free */

static void strv_free(char **v, size_t n) {
  for (size_t i = 0; v != NULL && i < n; i++)
    pk__free(v[i]);
  pk__free(v);
}

static void cassette_free(pk_cassette *c) {
  if (c == NULL)
    return;
  pthread_mutex_destroy(&c->mu);
  pk__free(c->path);
  strv_free(c->match_env, c->opts.nmatch_env);
  strv_free(c->passthrough, c->opts.npassthrough);
  pk__free(c->record_only);
  size_t n = c->file ? c->file->nentries : 0;
  for (size_t i = 0; c->keys != NULL && i < n; i++)
    pkc_key_clear(&c->keys[i]);
  pk__free(c->keys);
  for (size_t i = 0; i < c->nslots; i++)
    pk__free(c->slots[i].idx);
  pk__free(c->slots);
  pkc_file_free(c->file);
  pk__free(c->played);
  pk__free(c->replaced);
  pkc_set_free(&c->base_fp);
  for (size_t i = 0; i < c->nrec; i++)
    pkc_entry_clear(&c->rec[i]);
  pk__free(c->rec);
  strv_free(c->misses, c->nmisses);
  pkc_subst_free(c->subst);
  strv_free(c->ignore_flags, c->nignore_flags);
  for (size_t g = 0; g < c->nglobs; g++)
    strv_free(c->globs[g], c->nglob[g]);
  pk__free(c->globs);
  pk__free(c->nglob);
  pk__free(c);
}

/* ------------------------------------------------------------- open */

static char **strv_copy(const char *const *v, size_t n, bool *ok) {
  *ok = true;
  if (n == 0)
    return NULL;
  char **out = pk__calloc(n, sizeof(char *));
  if (out == NULL) {
    *ok = false;
    return NULL;
  }
  for (size_t i = 0; i < n; i++)
    if (v[i] == NULL || (out[i] = pk__strdup(v[i])) == NULL)
      *ok = false;
  return out;
}

/* The mode from the options and the environment. */
static int resolve_mode(pk_cassette *c) {
  const char *env = getenv("PK_RECORD_MODE");
  pk_record_mode m = c->opts.mode;
  if (env != NULL && *env != '\0') {
    if (pk_record_mode_parse(env, &m) != 0 || m == PK_RECORD_DEFAULT)
      return set_err(c, PK_EINVAL,
                     "PK_RECORD_MODE=%s is not a record mode (use none, once, "
                     "new_episodes or all)",
                     env);
  }
  if (m == PK_RECORD_DEFAULT) {
    const char *ci = getenv("CI");
    m = ci != NULL && *ci != '\0' ? PK_RECORD_NONE : PK_RECORD_ONCE;
  }
  /* PK_RECORD_ONLY: only the cassettes it names record; others replay. */
  const char *only = getenv("PK_RECORD_ONLY");
  if (only == NULL || *only == '\0')
    only = c->record_only;
  if (only != NULL && m != PK_RECORD_NONE) {
    const char *base = strrchr(c->path, '/');
    base = base ? base + 1 : c->path;
    char st[256];
    snprintf(st, sizeof(st), "%s", base);
    char *dot = strrchr(st, '.');
    if (dot != NULL && dot != st)
      *dot = '\0';
    if (!pk__glob_match(only, c->path) && !pk__glob_match(only, base) &&
        !pk__glob_match(only, st))
      m = PK_RECORD_NONE;
  }
  c->mode = m;
  const char *strict = getenv("PK_CASSETTE_STRICT");
  c->strict = c->opts.strict || (strict != NULL && strcmp(strict, "1") == 0);
  return 0;
}

static int load(pk_cassette *c) {
  pkc_error err;
  memset(&err, 0, sizeof(err));
  int rc = pkc_load(c->path, &c->file, &err);
  bool missing = rc == PK_ECASSETTE_NOT_FOUND;
  if (rc != 0 && !missing)
    return set_err(c, rc, "%s", err.msg);
  if (missing) {
    if (c->mode == PK_RECORD_NONE) {
      const char *ci = getenv("CI");
      return set_err(
          c, PK_ECASSETTE_NOT_FOUND,
          "%s: no such cassette; record it with PK_RECORD_MODE=once%s", c->path,
          ci != NULL && *ci != '\0'
              ? " (CI is set, so nothing records unless a mode is given)"
              : "");
    }
    if ((c->file = pkc_file_new()) == NULL)
      return PK_ENOMEM;
    c->file->version = PKC_VERSION;
  }
  c->recording = c->mode == PK_RECORD_NEW_EPISODES ||
                 c->mode == PK_RECORD_ALL ||
                 (c->mode == PK_RECORD_ONCE && missing);
  c->record_all =
      c->mode == PK_RECORD_ALL || (c->recording && c->opts.always_record);
  if (c->recording && c->file->frozen)
    return set_err(c, PK_ECASSETTE_FROZEN,
                   "%s is frozen (frozen: true, a hand-made cassette) and "
                   "refuses recording (%s); replay it, or remove "
                   "'frozen: true' to record into it",
                   c->path,
                   c->opts.always_record ? "pk record"
                                         : pk_record_mode_name(c->mode));
  /* Every command of an always_record session (pk record) is saved:
   * a target the save would refuse is refused before anything runs. */
  if (c->recording && c->opts.always_record &&
      (rc = pkc_check_writable(c->path, c->errmsg, sizeof(c->errmsg))) != 0)
    return rc;
  size_t n = c->file->nentries;
  c->played = pk__calloc(n + 1, sizeof(size_t));
  c->replaced = pk__calloc(n + 1, sizeof(bool));
  if (c->played == NULL || c->replaced == NULL ||
      pkc_set_init(&c->base_fp, n) != 0)
    return PK_ENOMEM;
  for (size_t i = 0; i < n; i++) {
    char fp[65];
    pkc_fingerprint(&c->file->entries[i], fp);
    pkc_set_add(&c->base_fp, fp);
  }
  return pkc_index_build(c);
}

static int paths(pk_cassette *c) {
  if (!c->opts.normalize_paths)
    return 0;
  /* libuv's answers: $HOME or the password database, $TMPDIR (then TMP,
   * TEMP, TEMPDIR) or /tmp on POSIX; USERPROFILE and GetTempPath on
   * Windows. */
  char cwd[4096], home[4096], tmp[4096];
  size_t nh = sizeof(home), nt = sizeof(tmp);
  return pkc_subst_add_paths(
      c->subst, uv_os_homedir(home, &nh) == 0 ? home : NULL,
      uv_os_tmpdir(tmp, &nt) == 0 ? tmp : "/tmp", pk__cwd(cwd, sizeof(cwd)));
}

int pk_cassette_open(const char *path, const pk_cassette_opts *opts,
                     pk_cassette **out, char *errbuf, size_t errbuf_len) {
  if (out != NULL)
    *out = NULL;
  if (errbuf != NULL && errbuf_len > 0)
    errbuf[0] = '\0';
  if (path == NULL || *path == '\0' || out == NULL) {
    if (errbuf != NULL && errbuf_len > 0)
      snprintf(errbuf, errbuf_len, "pk_cassette_open: %s",
               out == NULL ? "out is NULL" : "no cassette path given");
    return PK_EINVAL;
  }
  pk_cassette *c = pk__calloc(1, sizeof(*c));
  if (c == NULL)
    return PK_ENOMEM;
  pthread_mutex_init(&c->mu, NULL);
  c->base.vt = &pkc_runner_vt;
  if (opts != NULL)
    c->opts = *opts;
  bool ok1, ok2;
  c->path = pk__strdup(path);
  c->match_env = strv_copy(c->opts.match_env, c->opts.nmatch_env, &ok1);
  c->passthrough = strv_copy(c->opts.passthrough, c->opts.npassthrough, &ok2);
  c->record_only = c->opts.record_only ? pk__strdup(c->opts.record_only) : NULL;
  c->subst = pkc_subst_new();
  int rc = 0;
  if (c->path == NULL || !ok1 || !ok2 || c->subst == NULL ||
      (c->opts.record_only != NULL && c->record_only == NULL))
    rc = set_err(c, PK_ENOMEM, "out of memory");
  if (rc == 0 && (c->opts.speed < 0 || c->opts.max_age_s < 0 ||
                  (unsigned)c->opts.stale > PK_STALE_RERECORD ||
                  (unsigned)c->opts.mode > PK_RECORD_ALL))
    rc = set_err(c, PK_EINVAL,
                 "%s: invalid cassette option (speed, max_age_s, stale or "
                 "mode out of range)",
                 path);
  if (c->opts.max_entry_bytes == 0)
    c->opts.max_entry_bytes = PK_CASSETTE_DEFAULT_MAX_ENTRY;
  if (rc == 0)
    rc = resolve_mode(c);
  if (rc == 0 && (rc = paths(c)) != 0)
    set_err(c, rc, "%s: cannot set up path placeholders", path);
  if (rc == 0 &&
      (rc = pkc_subst_auto_env(c->subst, (const char *const *)environ)) != 0)
    set_err(c, rc, "out of memory");
  if (rc == 0)
    rc = load(c);
  if (rc != 0) {
    if (errbuf != NULL && errbuf_len > 0)
      snprintf(errbuf, errbuf_len, "%s",
               c->errmsg[0] ? c->errmsg : pk_strerror(rc));
    cassette_free(c);
    return rc;
  }
  *out = c;
  return 0;
}

pk_runner *pk_cassette_runner(pk_cassette *c) {
  return c != NULL ? &c->base : NULL;
}

pk_record_mode pk_cassette_mode(const pk_cassette *c) {
  return c != NULL ? c->mode : PK_RECORD_DEFAULT;
}

/* ------------------------------------------------- matching options */

static bool valid_name(const char *name) {
  if (name == NULL || *name == '\0')
    return false;
  for (const char *p = name; *p; p++)
    if (!((*p >= 'A' && *p <= 'Z') || (*p >= 'a' && *p <= 'z') ||
          (*p >= '0' && *p <= '9') || *p == '_'))
      return false;
  return true;
}

/* Keys depend on placeholders and match options: rebuild the index. */
static int reindex(pk_cassette *c) {
  size_t n = c->file->nentries;
  for (size_t i = 0; c->keys != NULL && i < n; i++)
    pkc_key_clear(&c->keys[i]);
  pk__free(c->keys);
  c->keys = NULL;
  for (size_t i = 0; i < c->nslots; i++)
    pk__free(c->slots[i].idx);
  pk__free(c->slots);
  c->slots = NULL;
  c->nslots = 0;
  return pkc_index_build(c);
}

static int add_subst(pk_cassette *c, const char *name, const char *value,
                     pkc_subst_kind kind) {
  if (c == NULL || !valid_name(name) || value == NULL || *value == '\0')
    return c ? set_err(c, PK_EINVAL,
                       "placeholder name must be [A-Za-z0-9_]+ and its value "
                       "non-empty (got '%s')",
                       name ? name : "(null)")
             : PK_EINVAL;
  /* A value holding a token could not be told apart from it on replay. */
  if (strstr(value, "{{") != NULL || strstr(value, "}}") != NULL)
    return set_err(c, PK_EINVAL,
                   "the value of placeholder %s contains '{{' or '}}', which "
                   "cassettes use for placeholders",
                   name);
  pthread_mutex_lock(&c->mu);
  int rc = pkc_subst_add(c->subst, name, value, kind);
  if (rc == 0)
    rc = reindex(c);
  pthread_mutex_unlock(&c->mu);
  return rc;
}

int pk_cassette_redact(pk_cassette *c, const char *name, const char *value) {
  return add_subst(c, name, value, PKC_SUBST_SECRET);
}

int pk_cassette_placeholder(pk_cassette *c, const char *name,
                            const char *value) {
  return add_subst(c, name, value, PKC_SUBST_VOLATILE);
}

int pk_cassette_ignore_flag(pk_cassette *c, const char *flag) {
  if (c == NULL || flag == NULL || *flag == '\0')
    return PK_EINVAL;
  pthread_mutex_lock(&c->mu);
  int rc = PK_ENOMEM;
  char **v =
      pk__realloc(c->ignore_flags, (c->nignore_flags + 1) * sizeof(char *));
  if (v != NULL) {
    c->ignore_flags = v;
    if ((v[c->nignore_flags] = pk__strdup(flag)) != NULL) {
      c->nignore_flags++;
      rc = reindex(c);
    }
  }
  pthread_mutex_unlock(&c->mu);
  return rc;
}

int pk_cassette_match_glob(pk_cassette *c, const char *const *patterns,
                           size_t n) {
  if (c == NULL || patterns == NULL || n == 0)
    return PK_EINVAL;
  bool ok;
  char **v = strv_copy(patterns, n, &ok);
  if (!ok) {
    strv_free(v, n);
    return patterns[0] == NULL ? PK_EINVAL : PK_ENOMEM;
  }
  pthread_mutex_lock(&c->mu);
  int rc = PK_ENOMEM;
  char ***g = pk__realloc(c->globs, (c->nglobs + 1) * sizeof(char **));
  size_t *ng =
      g ? pk__realloc(c->nglob, (c->nglobs + 1) * sizeof(size_t)) : NULL;
  if (g != NULL)
    c->globs = g;
  if (ng != NULL) {
    c->nglob = ng;
    c->globs[c->nglobs] = v;
    c->nglob[c->nglobs] = n;
    c->nglobs++;
    v = NULL;
    rc = reindex(c);
  }
  pthread_mutex_unlock(&c->mu);
  strv_free(v, n);
  return rc;
}

/* ------------------------------------------------------ bookkeeping */

void pkc_add_recording(pk_cassette *c, pkc_entry *e) {
  pthread_mutex_lock(&c->mu);
  int rc = 0;
  if (c->nrec == c->caprec) {
    size_t cap = c->caprec ? 2 * c->caprec : 8;
    pkc_entry *v = pk__realloc(c->rec, cap * sizeof(pkc_entry));
    if (v == NULL)
      rc = PK_ENOMEM;
    else {
      c->rec = v;
      c->caprec = cap;
    }
  }
  if (rc == 0) {
    c->rec[c->nrec++] = *e;
    memset(e, 0, sizeof(*e));
  } else {
    set_err(c, rc, "%s: could not keep a recording: %s", c->path,
            pk_strerror(rc));
  }
  pthread_mutex_unlock(&c->mu);
}

void pkc_add_miss(pk_cassette *c, char *msg) {
  pthread_mutex_lock(&c->mu);
  char **v = pk__realloc(c->misses, (c->nmisses + 1) * sizeof(char *));
  if (v != NULL) {
    c->misses = v;
    v[c->nmisses++] = msg;
  } else {
    pk__free(msg);
  }
  pthread_mutex_unlock(&c->mu);
}

size_t pk_cassette_miss_count(const pk_cassette *c) {
  return c != NULL ? c->nmisses : 0;
}

const char *pk_cassette_miss(const pk_cassette *c, size_t i) {
  return c != NULL && i < c->nmisses ? c->misses[i] : NULL;
}

size_t pk_cassette_stale_count(const pk_cassette *c) {
  return c != NULL ? c->stale : 0;
}

size_t pk_cassette_entry_count(const pk_cassette *c) {
  return c != NULL ? c->file->nentries : 0;
}

int pk_cassette_unused(const pk_cassette *c, size_t **out, size_t *n) {
  if (c == NULL || out == NULL || n == NULL)
    return PK_EINVAL;
  *out = NULL;
  *n = 0;
  pk_cassette *mc = (pk_cassette *)c;
  pthread_mutex_lock(&mc->mu);
  size_t *v = pk__calloc(c->file->nentries + 1, sizeof(size_t));
  if (v == NULL) {
    pthread_mutex_unlock(&mc->mu);
    return PK_ENOMEM;
  }
  for (size_t i = 0; i < c->file->nentries; i++)
    if (c->played[i] == 0)
      v[(*n)++] = i;
  pthread_mutex_unlock(&mc->mu);
  *out = v;
  return 0;
}

void pk_cassette_discard(pk_cassette *c) {
  if (c == NULL)
    return;
  pthread_mutex_lock(&c->mu);
  for (size_t i = 0; i < c->nrec; i++)
    pkc_entry_clear(&c->rec[i]);
  c->nrec = 0;
  c->nsaved = 0;
  c->discarded = true;
  pthread_mutex_unlock(&c->mu);
}

/* ------------------------------------------------------------- save */

/* What is on disk now, empty when there is no file. */
static int load_disk(pk_cassette *c, pkc_file **disk) {
  pkc_error err;
  memset(&err, 0, sizeof(err));
  int rc = pkc_load(c->path, disk, &err);
  if (rc == PK_ECASSETTE_NOT_FOUND) {
    if ((*disk = pkc_file_new()) == NULL)
      return PK_ENOMEM;
    (*disk)->version = PKC_VERSION;
    return 0;
  }
  if (rc != 0)
    return set_err(c, rc, "%s (not overwritten)", err.msg);
  return 0;
}

/* The file to write: what is on disk (less what this session replaces),
 * then this session's recordings not saved yet; ids renumbered. Two
 * recordings with the same content are two entries (a command run twice
 * is recorded twice, also within one millisecond). */
static int merge(pk_cassette *c, pkc_file *disk, pkc_file **out) {
  pkc_file *m = pkc_file_new();
  if (m == NULL)
    return PK_ENOMEM;
  m->version = PKC_VERSION;
  m->frozen = disk->frozen;
  m->pk_version = pk__sprintf("%d.%d.%d", PK_VERSION_MAJOR, PK_VERSION_MINOR,
                              PK_VERSION_PATCH);
  if (m->pk_version == NULL) {
    pkc_file_free(m);
    return PK_ENOMEM;
  }
  pkc_set gone = {0};
  int rc = pkc_set_init(&gone, c->file->nentries);
  /* Stale entries this session re-recorded are dropped. */
  for (size_t j = 0; rc == 0 && j < c->file->nentries; j++)
    if (c->replaced[j]) {
      char fp[65];
      pkc_fingerprint(&c->file->entries[j], fp);
      pkc_set_add(&gone, fp);
    }
  for (size_t i = 0; rc == 0 && i < disk->nentries; i++) {
    char fp[65];
    pkc_fingerprint(&disk->entries[i], fp);
    /* Mode all replaces every entry the file had at open; entries others
     * saved since then are kept. */
    bool at_open = pkc_set_count(&c->base_fp, fp) > 0;
    if ((at_open && c->mode == PK_RECORD_ALL) || pkc_set_count(&gone, fp) > 0)
      continue;
    rc = pkc_file_add(m, &disk->entries[i], true);
  }
  for (size_t i = c->nsaved; rc == 0 && i < c->nrec; i++)
    rc = pkc_file_add(m, &c->rec[i], true);
  if (rc == 0)
    rc = pkc_renumber_ids(m);
  pkc_set_free(&gone);
  if (rc != 0) {
    pkc_file_free(m);
    return rc;
  }
  *out = m;
  return 0;
}

static bool text_ok(const char *s) {
  return s == NULL || pkc_utf8_valid_prefix(s, strlen(s)) == strlen(s);
}

/* Format 1 stores the command as text: a recording with a program,
 * argument or directory that is not UTF-8 cannot be saved faithfully. */
static int check_text(pk_cassette *c, const pkc_entry *e) {
  const char *field = !text_ok(e->program) ? "program"
                      : !text_ok(e->cwd)   ? "cwd"
                                           : NULL;
  char name[32];
  for (size_t i = 0; field == NULL && i < e->nargs; i++)
    if (!text_ok(e->args[i])) {
      snprintf(name, sizeof(name), "args[%zu]", i);
      field = name;
    }
  if (field == NULL)
    return 0;
  return set_err(c, PK_EINVAL,
                 "%s: not saved: a recorded command's %s is not valid UTF-8, "
                 "and cassettes store commands as text",
                 c->path, field);
}

static int save_locked(pk_cassette *c) {
  if (c->discarded || c->nrec == c->nsaved)
    return 0; /* nothing new: the file is left as it is */
  if (c->file->frozen)
    return set_err(c, PK_ECASSETTE_FROZEN, "%s is frozen: not saved", c->path);
  int lfd;
  int rc = pkc_lock_dir(c->path, &lfd, c->errmsg, sizeof(c->errmsg));
  pkc_file *disk = NULL, *m = NULL;
  char *data = NULL;
  size_t len = 0;
  /* Secrets and paths become placeholders (also those registered after
   * the run was recorded). */
  for (size_t i = c->nsaved; rc == 0 && i < c->nrec; i++)
    if ((rc = pkc_subst_apply(c->subst, &c->rec[i])) != 0)
      set_err(c, rc, "%s: cannot redact a recording", c->path);
  for (size_t i = 0; rc == 0 && i < c->nrec; i++)
    rc = check_text(c, &c->rec[i]);
  if (rc == 0)
    rc = load_disk(c, &disk);
  if (rc == 0 && disk->frozen)
    rc = set_err(c, PK_ECASSETTE_FROZEN,
                 "%s was frozen by someone else: not saved", c->path);
  if (rc == 0)
    rc = merge(c, disk, &m);
  if (rc == 0) {
    char msg[1024] = "";
    rc = pkc_scan(c->subst, m, c->opts.allow_credential_shapes, msg,
                  sizeof(msg));
    if (rc != 0)
      set_err(c, rc, "%s: not saved: %s", c->path, msg);
  }
  if (rc == 0 && (rc = pkc_emit(m, &data, &len)) != 0)
    set_err(c, rc, "%s: cannot render the cassette", c->path);
  if (rc == 0 && !pkc_same_bytes(c->path, data, len))
    rc = pkc_replace_file(c->path, data, len, c->errmsg, sizeof(c->errmsg));
  if (rc == 0)
    c->nsaved = c->nrec;
  if (lfd >= 0)
    pkc_unlock(lfd);
  pk__free(data);
  pkc_file_free(disk);
  pkc_file_free(m);
  return rc;
}

int pk_cassette_save(pk_cassette *c) {
  if (c == NULL)
    return PK_EINVAL;
  pthread_mutex_lock(&c->mu);
  int rc = save_locked(c);
  pthread_mutex_unlock(&c->mu);
  return rc;
}

/* ------------------------------------------------------------ close */

int pk_cassette_close(pk_cassette *c, char *errbuf, size_t errbuf_len) {
  if (errbuf != NULL && errbuf_len > 0)
    errbuf[0] = '\0';
  if (c == NULL)
    return PK_EINVAL;
  int rc = pk_cassette_save(c);
  pk__buf b = {0};
  if (rc != 0) {
    pk__buf_append(&b, c->errmsg, strlen(c->errmsg));
  } else if (c->nmisses > 0) {
    rc = PK_ECASSETTE_MISS;
    char *head = pk__sprintf("%zu command(s) missed %s:", c->nmisses, c->path);
    if (head != NULL)
      pk__buf_append(&b, head, strlen(head));
    pk__free(head);
    for (size_t i = 0; i < c->nmisses; i++) {
      pk__buf_append(&b, "\n- ", 3);
      pk__buf_append(&b, c->misses[i], strlen(c->misses[i]));
    }
  } else if (c->strict && !c->record_all) { /* recording plays nothing */
    size_t nunused = 0;
    for (size_t i = 0; i < c->file->nentries; i++)
      if (c->played[i] == 0) {
        if (nunused++ == 0) {
          char *head =
              pk__sprintf("%s: entries never played (strict):", c->path);
          if (head != NULL)
            pk__buf_append(&b, head, strlen(head));
          pk__free(head);
        }
        char *line = pk__sprintf(
            " %s", c->file->entries[i].id ? c->file->entries[i].id : "?");
        if (line != NULL)
          pk__buf_append(&b, line, strlen(line));
        pk__free(line);
      }
    if (nunused > 0)
      rc = PK_ECASSETTE_UNUSED;
  }
  if (errbuf != NULL && errbuf_len > 0 && b.data != NULL)
    snprintf(errbuf, errbuf_len, "%s", b.data);
  pk__buf_release(&b);
  cassette_free(c);
  return rc;
}
