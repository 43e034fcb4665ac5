/* Matching: a command and a recorded entry reduced to the same key, the
 * index from key digests to entries, and the message of a miss. */
#include "cassette_internal.h"
#include "fakes_internal.h"
#include "internal.h"

#include <nettle/sha2.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void pkc_key_clear(pkc_key *k) {
  pk__free(k->program);
  for (size_t i = 0; i < k->nargs; i++)
    pk__free(k->args[i]);
  pk__free(k->args);
  pk__free(k->cwd);
  pk__free(k->env_digest);
  memset(k, 0, sizeof(*k));
}

/* ---------------------------------------------------------- hashing */

static void hash_field(struct sha256_ctx *h, const char *s, size_t len) {
  uint8_t n[8];
  for (int i = 0; i < 8; i++)
    n[i] = (uint8_t)((uint64_t)len >> (8 * i));
  sha256_update(h, sizeof(n), n);
  sha256_update(h, len, (const uint8_t *)s);
}

static void hash_str(struct sha256_ctx *h, const char *s) {
  if (s == NULL)
    hash_field(h, "\xff", 1); /* distinct from "" */
  else
    hash_field(h, s, strlen(s));
}

static void hex_digest(struct sha256_ctx *h, char out[65]) {
  static const char hex[] = "0123456789abcdef";
  uint8_t d[SHA256_DIGEST_SIZE];
  sha256_digest(h, sizeof(d), d);
  for (size_t i = 0; i < sizeof(d); i++) {
    out[2 * i] = hex[d[i] >> 4];
    out[2 * i + 1] = hex[d[i] & 15];
  }
  out[64] = '\0';
}

static void hash_stdin(struct sha256_ctx *h, pkc_stdin_kind kind,
                       const char *sha) {
  char tag[2] = {(char)('0' + (int)kind), 0};
  hash_str(h, tag);
  hash_str(h, kind == PKC_STDIN_BYTES ? sha : "");
}

/* The digest over the fields the cassette's options compare. */
static void key_digest(const pk_cassette *c, pkc_key *k) {
  struct sha256_ctx h;
  sha256_init(&h);
  hash_str(&h, k->program);
  char n[32];
  snprintf(n, sizeof(n), "%zu", k->nargs);
  hash_str(&h, n);
  for (size_t i = 0; i < k->nargs; i++)
    hash_str(&h, k->args[i]);
  if (!(c->opts.match & PK_MATCH_NO_STDIN))
    hash_stdin(&h, k->stdin_kind, k->stdin_sha256);
  if (c->opts.match & PK_MATCH_CWD)
    hash_str(&h, k->cwd);
  /* Only a cassette that matches on env compares the digest: an entry
   * recorded with match_env still answers one opened without it. */
  if (c->opts.nmatch_env > 0)
    hash_str(&h, k->env_digest);
  hex_digest(&h, k->digest);
}

void pkc_id_digest(const pkc_entry *e, char out[13]) {
  struct sha256_ctx h;
  char full[65];
  sha256_init(&h);
  hash_str(&h, e->program);
  for (size_t i = 0; i < e->nargs; i++)
    hash_str(&h, e->args[i]);
  hash_stdin(&h, e->stdin_kind, e->stdin_sha256);
  hex_digest(&h, full);
  memcpy(out, full, 12);
  out[12] = '\0';
}

int pkc_renumber_ids(pkc_file *f) {
  pkc_set ids = {0};
  int rc = pkc_set_init(&ids, f->nentries);
  for (size_t i = 0; rc == 0 && i < f->nentries; i++) {
    char d[13];
    pkc_id_digest(&f->entries[i], d);
    char *id = pk__sprintf("%s-%zu", d, pkc_set_add(&ids, d));
    if (id == NULL) {
      rc = PK_ENOMEM;
      break;
    }
    pk__free(f->entries[i].id);
    f->entries[i].id = id;
  }
  pkc_set_free(&ids);
  return rc;
}

void pkc_fingerprint(const pkc_entry *e, char out[65]) {
  struct sha256_ctx h;
  char num[160];
  sha256_init(&h);
  hash_str(&h, e->recorded_at);
  hash_str(&h, e->program);
  for (size_t i = 0; i < e->nargs; i++)
    hash_str(&h, e->args[i]);
  hash_str(&h, e->cwd);
  hash_stdin(&h, e->stdin_kind, e->stdin_sha256);
  snprintf(num, sizeof(num), "%d %d %d %d %d %lld %llu %llu", (int)e->end,
           e->code, e->signal, e->error, e->os_errno, (long long)e->duration_us,
           (unsigned long long)e->total_bytes[PK_STDOUT],
           (unsigned long long)e->total_bytes[PK_STDERR]);
  hash_str(&h, num);
  for (size_t i = 0; i < e->nevents; i++) {
    snprintf(num, sizeof(num), "%d %lld", (int)e->events[i].kind,
             (long long)e->events[i].t_us);
    hash_str(&h, num);
    hash_field(&h, e->events[i].data, e->events[i].len);
  }
  hex_digest(&h, out);
}

/* ------------------------------------------------------------ keys */

static bool ignored_flag(const pk_cassette *c, const char *arg, bool *takes) {
  *takes = false;
  for (size_t i = 0; i < c->nignore_flags; i++) {
    const char *f = c->ignore_flags[i];
    size_t n = strlen(f);
    if (strcmp(arg, f) == 0) {
      *takes = true; /* "--since X": the next argument goes too */
      return true;
    }
    if (strncmp(arg, f, n) == 0 && arg[n] == '=')
      return true;
  }
  return false;
}

static bool glob_elem(const char *pat, const char *s, bool program) {
  if (pk__glob_match(pat, s))
    return true;
  if (program && strchr(pat, '/') == NULL) {
    const char *base = strrchr(s, '/');
    return base != NULL && pk__glob_match(pat, base + 1);
  }
  return false;
}

/* A registered glob list the whole argv matches, or NULL. */
static char **glob_of(const pk_cassette *c, const char *program,
                      char *const *args, size_t nargs) {
  for (size_t g = 0; g < c->nglobs; g++) {
    char **pat = c->globs[g];
    if (c->nglob[g] != nargs + 1 || !glob_elem(pat[0], program, true))
      continue;
    size_t i = 0;
    while (i < nargs && glob_elem(pat[i + 1], args[i], false))
      i++;
    if (i == nargs)
      return pat;
  }
  return NULL;
}

/* Fill k's program and args from argv: placeholders in, flags out, globs
 * replacing what they match. `normalize`: argv holds live values. */
static int key_argv(pk_cassette *c, pkc_key *k, const char *program,
                    const char *const *args, size_t nargs, bool normalize) {
  char **v = pk__calloc(nargs + 1, sizeof(char *));
  if (v == NULL)
    return PK_ENOMEM;
  k->args = v;
  int rc = normalize ? pkc_subst_apply_str(c->subst, program, &k->program)
                     : ((k->program = pk__strdup(program)) ? 0 : PK_ENOMEM);
  for (size_t i = 0; rc == 0 && i < nargs; i++) {
    bool takes;
    if (ignored_flag(c, args[i], &takes)) {
      i += takes ? 1 : 0;
      continue;
    }
    if (normalize)
      rc = pkc_subst_apply_str(c->subst, args[i], &v[k->nargs]);
    else if ((v[k->nargs] = pk__strdup(args[i])) == NULL)
      rc = PK_ENOMEM;
    if (rc == 0)
      k->nargs++;
  }
  if (rc != 0)
    return rc;
  char **pat = glob_of(c, k->program, k->args, k->nargs);
  if (pat != NULL) {
    char *p = pk__strdup(pat[0]);
    if (p == NULL)
      return PK_ENOMEM;
    pk__free(k->program);
    k->program = p;
    for (size_t i = 0; i < k->nargs; i++) {
      if ((p = pk__strdup(pat[i + 1])) == NULL)
        return PK_ENOMEM;
      pk__free(k->args[i]);
      k->args[i] = p;
    }
  }
  return 0;
}

/* The digest over the values of the matched variables as the child
 * would see them ("NAME=value" or "NAME unset"). */
static int env_digest(const pk_cassette *c, const pk_cmd *cmd, char **out) {
  *out = NULL;
  if (c->opts.nmatch_env == 0)
    return 0;
  struct sha256_ctx h;
  sha256_init(&h);
  for (size_t i = 0; i < c->opts.nmatch_env; i++) {
    const char *name = c->match_env[i], *value = NULL;
    pk_env_state st = pk_cmd_env_state(cmd, name, &value);
    if (st == PK_ENV_UNTOUCHED) {
      bool inherited = !pk_cmd_env_cleared(cmd);
      size_t n = pk_cmd_inherit_count(cmd);
      for (size_t j = 0; !inherited && j < n; j++)
        inherited = strcmp(pk_cmd_inherit_name(cmd, j), name) == 0;
      value = inherited ? getenv(name) : NULL;
    }
    hash_str(&h, name);
    hash_str(&h, value);
  }
  char *d = pk__malloc(65);
  if (d == NULL)
    return PK_ENOMEM;
  hex_digest(&h, d);
  *out = d;
  return 0;
}

/* Bytes with the cassette's values turned into tokens, as a save would
 * write them (through a one-event entry: one code path for streams). */
static int apply_bytes(const pkc_subst *s, const char *data, size_t len,
                       char **out, size_t *outlen) {
  pkc_entry e;
  memset(&e, 0, sizeof(e));
  pk__buf b = {0};
  int rc = PK_ENOMEM;
  if (len > 0 && (e.events = pk__calloc(1, sizeof(pkc_event))) != NULL &&
      (e.events[0].data = pk__memdup(data, len)) != NULL) {
    e.events[0].kind = PKC_EV_STDIN;
    e.events[0].len = len;
    e.nevents = 1;
  }
  rc = len == 0 || e.nevents == 1 ? pkc_subst_apply(s, &e) : PK_ENOMEM;
  for (size_t i = 0; rc == 0 && i < e.nevents; i++)
    if (pk__buf_append(&b, e.events[i].data, e.events[i].len) != 0)
      rc = PK_ENOMEM;
  if (rc == 0 && pk__buf_append(&b, "", 0) != 0)
    rc = PK_ENOMEM;
  pkc_entry_clear(&e);
  if (rc != 0) {
    pk__buf_release(&b);
    return rc;
  }
  *out = b.data;
  *outlen = b.len;
  return 0;
}

/* stdin as the child would read it, reduced to kind + digest. */
static int stdin_key(pk_cassette *c, const pk_cmd *cmd, pkc_key *k) {
  pk__buf b = {0};
  k->stdin_kind = PKC_STDIN_BYTES;
  switch (pk_cmd_stdin_mode(cmd)) {
  case PK_STDIN_INHERIT:
    k->stdin_kind = pk__fd_is_tty(0) ? PKC_STDIN_TERMINAL : PKC_STDIN_INHERIT;
    return 0;
  case PK_STDIN_BYTES: {
    size_t len;
    const char *d = pk_cmd_stdin_data(cmd, &len);
    if (pk__buf_append(&b, d, len) != 0)
      return PK_ENOMEM;
    break;
  }
  case PK_STDIN_FILE: {
    int fd = pk__fd_open(pk_cmd_stdin_path(cmd), UV_FS_O_RDONLY, 0);
    char chunk[65536];
    int64_t n;
    while (fd >= 0 && (n = pk__fd_read(fd, chunk, sizeof(chunk))) > 0)
      if (pk__buf_append(&b, chunk, (size_t)n) != 0) {
        pk__fd_close(fd);
        pk__buf_release(&b);
        return PK_ENOMEM;
      }
    if (fd >= 0)
      pk__fd_close(fd);
    break;
  }
  default:
    break;
  }
  char *norm = NULL;
  size_t nlen = 0;
  int rc = apply_bytes(c->subst, b.data ? b.data : "", b.len, &norm, &nlen);
  pk__buf_release(&b);
  if (rc != 0)
    return rc;
  pkc_sha256_hex(norm, nlen, k->stdin_sha256);
  k->stdin_bytes = nlen;
  pk__free(norm);
  return 0;
}

int pkc_key_of_cmd(pk_cassette *c, const pk_cmd *cmd, pkc_key *k) {
  memset(k, 0, sizeof(*k));
  int rc = key_argv(c, k, cmd->program, (const char *const *)cmd->args,
                    cmd->nargs, true);
  if (rc == 0) {
    char buf[4096];
    const char *cwd = pk_cmd_cwd(cmd);
    if (cwd == NULL)
      cwd = pk__cwd(buf, sizeof(buf));
    if (cwd != NULL)
      rc = pkc_subst_apply_str(c->subst, cwd, &k->cwd);
  }
  if (rc == 0)
    rc = stdin_key(c, cmd, k);
  if (rc == 0)
    rc = env_digest(c, cmd, &k->env_digest);
  if (rc != 0) {
    pkc_key_clear(k);
    return rc;
  }
  key_digest(c, k);
  return 0;
}

int pkc_key_of_entry(pk_cassette *c, const pkc_entry *e, pkc_key *k) {
  memset(k, 0, sizeof(*k));
  int rc =
      key_argv(c, k, e->program, (const char *const *)e->args, e->nargs, false);
  if (rc == 0 && e->cwd != NULL && (k->cwd = pk__strdup(e->cwd)) == NULL)
    rc = PK_ENOMEM;
  if (rc == 0 && e->env_digest != NULL &&
      (k->env_digest = pk__strdup(e->env_digest)) == NULL)
    rc = PK_ENOMEM;
  if (rc != 0) {
    pkc_key_clear(k);
    return rc;
  }
  k->stdin_kind = e->stdin_kind;
  memcpy(k->stdin_sha256, e->stdin_sha256, sizeof(k->stdin_sha256));
  k->stdin_bytes = e->stdin_bytes;
  key_digest(c, k);
  return 0;
}

/* ----------------------------------------------------------- index */

/* A digest's first 16 hex digits, as a bucket in a power-of-two table
 * (digests shorter than that, such as 12-digit ids, hash what they
 * have). */
static size_t slot_hash(const char *digest, size_t nslots) {
  uint64_t h = 0;
  for (const char *p = digest; *p != '\0' && p - digest < 16; p++)
    h = h << 4 | (uint64_t)(*p >= 'a' ? *p - 'a' + 10 : *p - '0');
  return (size_t)(h ^ (h >> 29)) & (nslots - 1);
}

int pkc_set_init(pkc_set *s, size_t expected) {
  size_t cap = 16;
  while (cap < 2 * expected + 2)
    cap *= 2;
  s->keys = pk__calloc(cap, sizeof(*s->keys));
  s->counts = pk__calloc(cap, sizeof(size_t));
  s->cap = cap;
  if (s->keys == NULL || s->counts == NULL) {
    pkc_set_free(s);
    return PK_ENOMEM;
  }
  return 0;
}

void pkc_set_free(pkc_set *s) {
  pk__free(s->keys);
  pk__free(s->counts);
  memset(s, 0, sizeof(*s));
}

static size_t set_slot(const pkc_set *s, const char *digest) {
  size_t i = slot_hash(digest, s->cap);
  while (s->keys[i][0] != '\0' && strcmp(s->keys[i], digest) != 0)
    i = (i + 1) & (s->cap - 1);
  return i;
}

size_t pkc_set_add(pkc_set *s, const char *digest) {
  if (s->cap == 0)
    return 0;
  size_t i = set_slot(s, digest);
  snprintf(s->keys[i], sizeof(s->keys[i]), "%s", digest);
  return ++s->counts[i];
}

size_t pkc_set_count(const pkc_set *s, const char *digest) {
  if (s->cap == 0)
    return 0;
  return s->counts[set_slot(s, digest)];
}

pkc_slot *pkc_index_find(pk_cassette *c, const char *digest) {
  if (c->nslots == 0)
    return NULL;
  for (size_t i = slot_hash(digest, c->nslots);;
       i = (i + 1) & (c->nslots - 1)) {
    pkc_slot *s = &c->slots[i];
    if (s->digest[0] == '\0')
      return NULL;
    if (strcmp(s->digest, digest) == 0)
      return s;
  }
}

int pkc_index_build(pk_cassette *c) {
  size_t n = c->file->nentries, nslots = 16;
  while (nslots < 2 * n + 2)
    nslots *= 2;
  c->slots = pk__calloc(nslots, sizeof(pkc_slot));
  c->keys = pk__calloc(n + 1, sizeof(pkc_key));
  if (c->slots == NULL || c->keys == NULL)
    return PK_ENOMEM;
  c->nslots = nslots;
  for (size_t e = 0; e < n; e++) {
    int rc = pkc_key_of_entry(c, &c->file->entries[e], &c->keys[e]);
    if (rc != 0)
      return rc;
    const char *d = c->keys[e].digest;
    size_t i = slot_hash(d, nslots);
    while (c->slots[i].digest[0] != '\0' && strcmp(c->slots[i].digest, d) != 0)
      i = (i + 1) & (nslots - 1);
    pkc_slot *s = &c->slots[i];
    memcpy(s->digest, d, sizeof(s->digest));
    if (s->n == s->cap) {
      size_t cap = s->cap ? 2 * s->cap : 2;
      size_t *v = pk__realloc(s->idx, cap * sizeof(size_t));
      if (v == NULL)
        return PK_ENOMEM;
      s->idx = v;
      s->cap = cap;
    }
    s->idx[s->n++] = e;
  }
  return 0;
}

size_t pkc_match_custom(pk_cassette *c, const pk_cmd *cmd, size_t *played) {
  size_t last = SIZE_MAX;
  (void)played;
  for (size_t e = 0; e < c->file->nentries; e++) {
    const pkc_entry *en = &c->file->entries[e];
    if (!c->opts.matcher(cmd, en->program, (const char *const *)en->args,
                         en->nargs, en->cwd, c->opts.matcher_data))
      continue;
    if (c->played[e] == 0)
      return e; /* the first one not played yet */
    last = e;
  }
  return last;
}

/* ------------------------------------------------------------ misses */

static void quote_into(pk__buf *b, const char *s) {
  char *q = pk__sprintf("\"%s\"", s ? s : "(none)");
  if (q != NULL)
    pk__buf_append(b, q, strlen(q));
  pk__free(q);
}

static void put(pk__buf *b, const char *s) { pk__buf_append(b, s, strlen(s)); }

/* How far entry key e is from the command's key k (lower is nearer). */
static size_t distance(const pkc_key *k, const pkc_key *e) {
  size_t d = strcmp(k->program, e->program) != 0 ? 1000 : 0;
  size_t n = k->nargs > e->nargs ? k->nargs : e->nargs;
  for (size_t i = 0; i < n; i++)
    if (i >= k->nargs || i >= e->nargs || strcmp(k->args[i], e->args[i]) != 0)
      d += 10;
  if (k->stdin_kind != e->stdin_kind ||
      strcmp(k->stdin_sha256, e->stdin_sha256) != 0)
    d += 5;
  if ((k->cwd == NULL) != (e->cwd == NULL) ||
      (k->cwd != NULL && strcmp(k->cwd, e->cwd) != 0))
    d += 1;
  return d;
}

static void describe_stdin(pk__buf *b, pkc_stdin_kind kind, const char *sha,
                           uint64_t bytes) {
  char tmp[128];
  if (kind == PKC_STDIN_TERMINAL)
    snprintf(tmp, sizeof(tmp), "a terminal");
  else if (kind == PKC_STDIN_INHERIT)
    snprintf(tmp, sizeof(tmp), "inherited");
  else
    snprintf(tmp, sizeof(tmp), "%llu bytes, sha256 %.12s",
             (unsigned long long)bytes, sha);
  put(b, tmp);
}

static void differences(pk_cassette *c, pk__buf *b, const pkc_key *k,
                        const pkc_key *e) {
  char tmp[96];
  if (strcmp(k->program, e->program) != 0) {
    put(b, "\n      program: recorded ");
    quote_into(b, e->program);
    put(b, ", now ");
    quote_into(b, k->program);
  }
  size_t n = k->nargs > e->nargs ? k->nargs : e->nargs;
  for (size_t i = 0; i < n; i++) {
    const char *a = i < e->nargs ? e->args[i] : NULL;
    const char *x = i < k->nargs ? k->args[i] : NULL;
    if (a != NULL && x != NULL && strcmp(a, x) == 0)
      continue;
    snprintf(tmp, sizeof(tmp), "\n      args[%zu]: recorded ", i);
    put(b, tmp);
    quote_into(b, a);
    put(b, ", now ");
    quote_into(b, x);
  }
  if (!(c->opts.match & PK_MATCH_NO_STDIN) &&
      (k->stdin_kind != e->stdin_kind ||
       strcmp(k->stdin_sha256, e->stdin_sha256) != 0)) {
    put(b, "\n      stdin: recorded ");
    describe_stdin(b, e->stdin_kind, e->stdin_sha256, e->stdin_bytes);
    put(b, ", now ");
    describe_stdin(b, k->stdin_kind, k->stdin_sha256, k->stdin_bytes);
  }
  if ((c->opts.match & PK_MATCH_CWD) &&
      ((k->cwd == NULL) != (e->cwd == NULL) ||
       (k->cwd != NULL && strcmp(k->cwd, e->cwd) != 0))) {
    put(b, "\n      cwd: recorded ");
    quote_into(b, e->cwd);
    put(b, ", now ");
    quote_into(b, k->cwd);
  }
  if (c->opts.nmatch_env > 0 &&
      ((k->env_digest == NULL) != (e->env_digest == NULL) ||
       (k->env_digest != NULL && strcmp(k->env_digest, e->env_digest) != 0)))
    put(b, "\n      matched environment variables: different values");
}

/* The file's stem ("tests/cassettes/t/foo.yaml" -> "foo"). */
static char *stem(const char *path) {
  const char *base = strrchr(path, '/');
  base = base ? base + 1 : path;
  const char *dot = strrchr(base, '.');
  size_t n = dot && dot != base ? (size_t)(dot - base) : strlen(base);
  char *s = pk__malloc(n + 1);
  if (s != NULL) {
    memcpy(s, base, n);
    s[n] = '\0';
  }
  return s;
}

char *pkc_miss_message(pk_cassette *c, const pk_cmd *cmd, const pkc_key *k,
                       const pkc_slot *consumed) {
  pk__buf b = {0};
  char *shown =
      pk__format_argv(cmd->program, (const char *const *)cmd->args, cmd->nargs);
  put(&b, shown ? shown : pk_cmd_program(cmd));
  pk__free(shown);
  put(&b, ": no entry in ");
  put(&b, c->path);
  put(&b, " (stdin: ");
  describe_stdin(&b, k->stdin_kind, k->stdin_sha256, k->stdin_bytes);
  put(&b, ")");
  if (consumed != NULL) {
    char tmp[200];
    snprintf(tmp, sizeof(tmp),
             "\n  the matching entry %s was recorded %zu time(s) and is "
             "already consumed (strict: repeats are refused)",
             c->file->entries[consumed->idx[0]].id
                 ? c->file->entries[consumed->idx[0]].id
                 : "?",
             consumed->n);
    put(&b, tmp);
  } else if (c->file->nentries > 0) {
    size_t best = 0, bestd = SIZE_MAX;
    for (size_t e = 0; e < c->file->nentries; e++) {
      size_t d = distance(k, &c->keys[e]);
      if (d < bestd) {
        bestd = d;
        best = e;
      }
    }
    const pkc_entry *e = &c->file->entries[best];
    char tmp[96];
    snprintf(tmp, sizeof(tmp), "\n  nearest: entry %zu (id %s): ", best + 1,
             e->id ? e->id : "?");
    put(&b, tmp);
    char *rec =
        pk__format_argv(e->program, (const char *const *)e->args, e->nargs);
    put(&b, rec ? rec : e->program);
    pk__free(rec);
    differences(c, &b, k, &c->keys[best]);
  } else {
    put(&b, "\n  the cassette has no entries");
  }
  char *st = stem(c->path);
  char *hint = pk__sprintf(
      "\n  to re-record: PK_RECORD_MODE=new_episodes PK_RECORD_ONLY='%s' "
      "(or PK_RECORD_MODE=all to record this cassette afresh)",
      st ? st : c->path);
  pk__free(st);
  if (hint != NULL)
    put(&b, hint);
  pk__free(hint);
  return b.data;
}
