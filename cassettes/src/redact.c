/* Redaction, placeholders and the secret scan: see redact.h. */
#include "redact.h"

#include "internal.h"

#include <nettle/base64.h>

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ------------------------------------------------------------ the set */

typedef struct rule {
  char *name;
  char *value;
  size_t vlen;
  char *token; /* "{{name}}" */
  size_t tlen;
  pkc_subst_kind kind;
  bool auto_env; /* found by pkc_subst_auto_env */
  uint64_t seq;  /* registration order */
} rule;

struct pkc_subst {
  rule *rules; /* priority order: see before() */
  size_t n, cap;
  uint64_t next_seq;
};

static bool is_alnum(unsigned char c) {
  return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
         (c >= '0' && c <= '9');
}
static bool is_word(unsigned char c) { return is_alnum(c) || c == '_'; }

static bool user_name_ok(const char *name) {
  if (!name || !*name)
    return false;
  for (const char *p = name; *p; p++)
    if (!is_word((unsigned char)*p))
      return false;
  return true;
}

/* Longest value first; then secrets; then registration order. */
static bool before(const rule *a, const rule *b) {
  if (a->vlen != b->vlen)
    return a->vlen > b->vlen;
  if ((a->kind == PKC_SUBST_SECRET) != (b->kind == PKC_SUBST_SECRET))
    return a->kind == PKC_SUBST_SECRET;
  return a->seq < b->seq;
}

static void rule_release(rule *r) {
  pk__free(r->name);
  pk__free(r->value);
  pk__free(r->token);
}

/* name, token = "{{name}}". Takes nothing; on failure r holds nothing. */
static int rule_set_name(rule *r, const char *name) {
  char *n = pk__strdup(name);
  char *t = n ? pk__sprintf("{{%s}}", name) : NULL;
  if (!t) {
    pk__free(n);
    return PK_ENOMEM;
  }
  pk__free(r->name);
  pk__free(r->token);
  r->name = n;
  r->token = t;
  r->tlen = strlen(t);
  return 0;
}

static int rule_make(pkc_subst *s, rule *r, const char *name, const char *value,
                     size_t vlen, pkc_subst_kind kind) {
  memset(r, 0, sizeof(*r));
  r->value = pk__memdup(value, vlen); /* NUL-terminated at vlen */
  if (!r->value || rule_set_name(r, name) != 0) {
    rule_release(r);
    return PK_ENOMEM;
  }
  r->vlen = vlen;
  r->kind = kind;
  r->seq = s->next_seq++;
  return 0;
}

static int reserve(pkc_subst *s, size_t more) {
  if (s->n + more <= s->cap)
    return 0;
  size_t cap = s->cap ? s->cap * 2 : 8;
  while (cap < s->n + more)
    cap *= 2;
  rule *v = pk__realloc(s->rules, cap * sizeof(*v));
  if (!v)
    return PK_ENOMEM;
  s->rules = v;
  s->cap = cap;
  return 0;
}

/* Needs room for one more (reserve). */
static void insert(pkc_subst *s, const rule *r) {
  size_t i = 0;
  while (i < s->n && before(&s->rules[i], r))
    i++;
  memmove(&s->rules[i + 1], &s->rules[i], (s->n - i) * sizeof(*r));
  s->rules[i] = *r;
  s->n++;
}

static void remove_at(pkc_subst *s, size_t i) {
  rule_release(&s->rules[i]);
  memmove(&s->rules[i], &s->rules[i + 1], (s->n - i - 1) * sizeof(rule));
  s->n--;
}

static rule *find_name(const pkc_subst *s, const char *name) {
  for (size_t i = 0; i < s->n; i++)
    if (strcmp(s->rules[i].name, name) == 0)
      return &s->rules[i];
  return NULL;
}

/* base, then base_2, base_3...: the first name that is free or already
 * holds value (*same is set then). NULL on ENOMEM. */
static char *free_name(const pkc_subst *s, const char *base, const char *value,
                       size_t vlen, bool *same) {
  *same = false;
  for (unsigned k = 1;; k++) {
    char *name = k == 1 ? pk__strdup(base) : pk__sprintf("%s_%u", base, k);
    if (!name)
      return NULL;
    const rule *r = find_name(s, name);
    if (!r)
      return name;
    if (r->vlen == vlen && memcmp(r->value, value, vlen) == 0) {
      *same = true;
      return name;
    }
    pk__free(name);
  }
}

pkc_subst *pkc_subst_new(void) { return pk__calloc(1, sizeof(pkc_subst)); }

void pkc_subst_free(pkc_subst *s) {
  if (!s)
    return;
  for (size_t i = 0; i < s->n; i++)
    rule_release(&s->rules[i]);
  pk__free(s->rules);
  pk__free(s);
}

int pkc_subst_add(pkc_subst *s, const char *name, const char *value,
                  pkc_subst_kind kind) {
  if (!s || !user_name_ok(name) || !value || !*value ||
      (kind != PKC_SUBST_SECRET && kind != PKC_SUBST_VOLATILE))
    return PK_EINVAL;
  rule r;
  char *moved = NULL; /* the new name of an auto-detected holder */
  rule *old = find_name(s, name);
  if (old && old->auto_env) {
    bool same;
    moved = free_name(s, name, "", 0, &same); /* never same: values != "" */
    if (!moved)
      return PK_ENOMEM;
  }
  if (reserve(s, 1) != 0 ||
      rule_make(s, &r, name, value, strlen(value), kind) != 0) {
    pk__free(moved);
    return PK_ENOMEM;
  }
  old = find_name(s, name); /* reserve may have moved the array */
  if (moved) {
    int rc = rule_set_name(old, moved);
    pk__free(moved);
    if (rc != 0) {
      rule_release(&r);
      return rc;
    }
  } else if (old) {
    remove_at(s, (size_t)(old - s->rules));
  }
  insert(s, &r);
  return 0;
}

int pkc_subst_add_paths(pkc_subst *s, const char *home, const char *tmp,
                        const char *cwd) {
  if (!s)
    return PK_EINVAL;
  /* cwd first: on equal values the earlier registration wins. */
  const char *names[3] = {PKC_PH_CWD, PKC_PH_TMP, PKC_PH_HOME};
  const char *values[3] = {cwd, tmp, home};
  rule made[3];
  size_t nmade = 0;
  for (size_t i = 0; i < 3; i++) {
    size_t len = values[i] ? strlen(values[i]) : 0;
    while (len > 0 && values[i][len - 1] == '/')
      len--;
    if (len == 0)
      continue;
    if (rule_make(s, &made[nmade], names[i], values[i], len, PKC_SUBST_PATH))
      goto fail;
    nmade++;
  }
  if (reserve(s, nmade) != 0)
    goto fail;
  for (size_t i = s->n; i-- > 0;)
    if (s->rules[i].kind == PKC_SUBST_PATH)
      remove_at(s, i);
  for (size_t i = 0; i < nmade; i++)
    insert(s, &made[i]);
  return 0;
fail:
  while (nmade > 0)
    rule_release(&made[--nmade]);
  return PK_ENOMEM;
}

/* Case-insensitive: does the name [p, p+n) contain one of the words? */
static bool secret_name(const char *p, size_t n) {
  static const char *const words[] = {"TOKEN",  "SECRET", "PASSWORD",
                                      "PASSWD", "KEY",    "CREDENTIAL"};
  for (size_t w = 0; w < sizeof(words) / sizeof(words[0]); w++) {
    size_t wl = strlen(words[w]);
    for (size_t i = 0; i + wl <= n; i++) {
      size_t k = 0;
      while (k < wl && (p[i + k] & ~0x20) == words[w][k])
        k++;
      if (k == wl)
        return true;
    }
  }
  return false;
}

/* One "NAME=VALUE" of the environment. */
static int auto_env_one(pkc_subst *s, const char *var) {
  const char *eq = strchr(var, '=');
  if (!eq || eq == var || !secret_name(var, (size_t)(eq - var)))
    return 0;
  const char *value = eq + 1;
  size_t vlen = strlen(value);
  if (vlen < PKC_AUTO_ENV_MIN_LEN)
    return 0;
  char *base = pk__memdup(var, (size_t)(eq - var));
  if (!base)
    return PK_ENOMEM;
  for (char *p = base; *p; p++)
    if (!is_word((unsigned char)*p))
      *p = '_';
  bool same;
  char *name = free_name(s, base, value, vlen, &same);
  pk__free(base);
  if (!name)
    return PK_ENOMEM;
  int rc = 0;
  rule r;
  if (!same) {
    rc = reserve(s, 1);
    if (rc == 0)
      rc = rule_make(s, &r, name, value, vlen, PKC_SUBST_SECRET);
    if (rc == 0) {
      r.auto_env = true;
      insert(s, &r);
    }
  }
  pk__free(name);
  return rc;
}

int pkc_subst_auto_env(pkc_subst *s, const char *const *envp) {
  if (!s || !envp)
    return PK_EINVAL;
  for (; *envp; envp++) {
    int rc = auto_env_one(s, *envp);
    if (rc != 0)
      return rc;
  }
  return 0;
}

size_t pkc_subst_count(const pkc_subst *s) { return s ? s->n : 0; }
const char *pkc_subst_name(const pkc_subst *s, size_t i) {
  return s && i < s->n ? s->rules[i].name : NULL;
}
const char *pkc_subst_value(const pkc_subst *s, size_t i) {
  return s && i < s->n ? s->rules[i].value : NULL;
}
pkc_subst_kind pkc_subst_kind_at(const pkc_subst *s, size_t i) {
  return s && i < s->n ? s->rules[i].kind : (pkc_subst_kind)0;
}

/* ------------------------------------------------------ the replacing */

/* APPLY replaces values by tokens, RESTORE tokens by values. Tokens never
 * overlap each other (a name holds no brace), so RESTORE's order does not
 * matter; APPLY's is the priority order of the rules. */
typedef enum dir { APPLY, RESTORE } dir;

static const char *from(const rule *r, dir d) {
  return d == APPLY ? r->value : r->token;
}
static size_t from_len(const rule *r, dir d) {
  return d == APPLY ? r->vlen : r->tlen;
}
static const char *to(const rule *r, dir d) {
  return d == APPLY ? r->token : r->value;
}
static size_t to_len(const rule *r, dir d) {
  return d == APPLY ? r->tlen : r->vlen;
}

/* A path ends where a file name cannot go on. */
static bool path_byte(unsigned char c) {
  return is_alnum(c) || c == '.' || c == '_' || c == '-';
}

typedef struct claim {
  size_t pos, len, rule;
} claim;

typedef struct claims {
  claim *v;
  size_t n, cap;
} claims;

static int claims_push(claims *c, size_t pos, size_t len, size_t r) {
  if (c->n == c->cap) {
    size_t cap = c->cap ? c->cap * 2 : 16;
    claim *v = pk__realloc(c->v, cap * sizeof(*v));
    if (!v)
      return PK_ENOMEM;
    c->v = v;
    c->cap = cap;
  }
  c->v[c->n++] = (claim){pos, len, r};
  return 0;
}

/* Merge the sorted, disjoint a and b into out (emptied first). */
static int claims_merge(const claims *a, const claims *b, claims *out) {
  out->n = 0;
  size_t i = 0, j = 0;
  while (i < a->n || j < b->n) {
    const claim *c = j == b->n || (i < a->n && a->v[i].pos < b->v[j].pos)
                         ? &a->v[i++]
                         : &b->v[j++];
    if (claims_push(out, c->pos, c->len, c->rule) != 0)
      return PK_ENOMEM;
  }
  return 0;
}

/* The occurrences of rule r in data that overlap none of *have. */
static int claims_of(const rule *r, size_t ri, dir d, const char *data,
                     size_t len, const claims *have, claims *out) {
  const char *f = from(r, d);
  size_t fl = from_len(r, d), pos = 0, j = 0;
  bool path = d == APPLY && r->kind == PKC_SUBST_PATH;
  out->n = 0;
  while (len - pos >= fl) {
    const char *q = pk__memmem(data + pos, len - pos, f, fl);
    if (!q)
      break;
    size_t at = (size_t)(q - data);
    while (j < have->n && have->v[j].pos + have->v[j].len <= at)
      j++;
    if (j < have->n && have->v[j].pos < at + fl) {
      /* Every start before the end of that claim overlaps it too. */
      pos = have->v[j].pos + have->v[j].len;
      continue;
    }
    if (path && at + fl < len && path_byte((unsigned char)data[at + fl])) {
      pos = at + 1;
      continue;
    }
    if (claims_push(out, at, fl, ri) != 0)
      return PK_ENOMEM;
    pos = at + fl;
  }
  return 0;
}

/* All claims in data, sorted by position, into *out (out->n may be 0). */
static int find_claims(const pkc_subst *s, dir d, const char *data, size_t len,
                       claims *out) {
  claims mine = {0}, merged = {0};
  int rc = 0;
  out->n = 0;
  for (size_t i = 0; i < s->n && rc == 0; i++) {
    rc = claims_of(&s->rules[i], i, d, data, len, out, &mine);
    if (rc == 0 && mine.n > 0) {
      rc = claims_merge(out, &mine, &merged);
      claims tmp = *out;
      *out = merged;
      merged = tmp;
    }
  }
  pk__free(mine.v);
  pk__free(merged.v);
  return rc;
}

/* data with the claims replaced, NUL-terminated, into *out / *outlen. */
static int build(const pkc_subst *s, dir d, const char *data, size_t len,
                 const claims *cl, char **out, size_t *outlen) {
  size_t n = len;
  for (size_t i = 0; i < cl->n; i++) {
    size_t tl = to_len(&s->rules[cl->v[i].rule], d);
    if (tl > cl->v[i].len && n > SIZE_MAX - 1 - (tl - cl->v[i].len))
      return PK_ENOMEM;
    n = n - cl->v[i].len + tl;
  }
  char *o = pk__malloc(n + 1);
  if (!o)
    return PK_ENOMEM;
  size_t src = 0, dst = 0;
  for (size_t i = 0; i < cl->n; i++) {
    const rule *r = &s->rules[cl->v[i].rule];
    memcpy(o + dst, data + src, cl->v[i].pos - src);
    dst += cl->v[i].pos - src;
    memcpy(o + dst, to(r, d), to_len(r, d));
    dst += to_len(r, d);
    src = cl->v[i].pos + cl->v[i].len;
  }
  if (len > src)
    memcpy(o + dst, data + src, len - src);
  o[n] = '\0';
  *out = o;
  *outlen = n;
  return 0;
}

/* Move the nondecreasing offsets b[] of data to their places in what
 * build() made; one inside a claim moves to the end of its replacement. */
static void map_bounds(const pkc_subst *s, dir d, const claims *cl, size_t *b,
                       size_t nb) {
  size_t j = 0, add = 0, sub = 0;
  for (size_t i = 0; i < nb; i++) {
    while (j < cl->n && cl->v[j].pos + cl->v[j].len <= b[i]) {
      add += to_len(&s->rules[cl->v[j].rule], d);
      sub += cl->v[j].len;
      j++;
    }
    if (j < cl->n && cl->v[j].pos < b[i])
      b[i] = cl->v[j].pos - sub + add + to_len(&s->rules[cl->v[j].rule], d);
    else
      b[i] = b[i] - sub + add;
  }
}

/* One string: *out is NULL when nothing matched. used[] (may be NULL)
 * marks the rules that did. */
static int str_subst(const pkc_subst *s, dir d, const char *in, char **out,
                     bool *used) {
  claims cl = {0};
  size_t len = strlen(in), outlen;
  *out = NULL;
  int rc = find_claims(s, d, in, len, &cl);
  if (rc == 0 && cl.n > 0)
    rc = build(s, d, in, len, &cl, out, &outlen);
  for (size_t i = 0; rc == 0 && used && i < cl.n; i++)
    used[cl.v[i].rule] = true;
  pk__free(cl.v);
  return rc;
}

static int str_public(const pkc_subst *s, dir d, const char *in, char **out) {
  if (!s || !in || !out)
    return PK_EINVAL;
  int rc = str_subst(s, d, in, out, NULL);
  if (rc == 0 && !*out)
    *out = pk__strdup(in);
  return rc != 0 ? rc : *out ? 0 : PK_ENOMEM;
}

int pkc_subst_apply_str(const pkc_subst *s, const char *in, char **out) {
  return str_public(s, APPLY, in, out);
}

int pkc_subst_restore_str(const pkc_subst *s, const char *in, char **out) {
  return str_public(s, RESTORE, in, out);
}

/* ------------------------------------------------------------ entries */

/* What apply/restore will change in an entry, built completely before
 * anything is changed, so a failure leaves the entry as it was. */
typedef struct slot {
  char **at;
  char *value;
} slot;

typedef struct stage {
  slot *str; /* program, args, cwd, errmsg that change */
  size_t nstr;
  char **data; /* per event: the new data, NULL when unchanged */
  size_t *len;
  bool *drop; /* per event: became empty */
  char **ph;  /* the new placeholder list */
  size_t nph;
  bool *used; /* per rule (APPLY) */
} stage;

static void stage_release(stage *st, size_t nevents) {
  for (size_t i = 0; i < st->nstr; i++)
    pk__free(st->str[i].value);
  for (size_t i = 0; st->data && i < nevents; i++)
    pk__free(st->data[i]);
  for (size_t i = 0; i < st->nph; i++)
    pk__free(st->ph[i]);
  pk__free(st->str);
  pk__free(st->data);
  pk__free(st->len);
  pk__free(st->drop);
  pk__free(st->ph);
  pk__free(st->used);
}

static int stage_string(const pkc_subst *s, dir d, stage *st, char **at) {
  if (!*at)
    return 0;
  char *v;
  int rc = str_subst(s, d, *at, &v, st->used);
  if (rc == 0 && v)
    st->str[st->nstr++] = (slot){at, v};
  return rc;
}

/* The events of one kind: their indexes, and their end offsets in the
 * joined stream. Returns the count (0: none), or a negative error. */
static int stream_layout(const pkc_entry *e, pkc_event_kind kind, size_t **idx,
                         size_t **ends, size_t *total) {
  size_t k = 0;
  *total = 0;
  for (size_t i = 0; i < e->nevents; i++)
    k += e->events[i].kind == kind;
  if (k == 0 || k > INT32_MAX)
    return k == 0 ? 0 : PK_ENOMEM;
  *idx = pk__malloc(k * sizeof(size_t));
  *ends = pk__malloc(k * sizeof(size_t));
  if (!*idx || !*ends)
    return PK_ENOMEM;
  for (size_t i = 0, j = 0; i < e->nevents; i++) {
    if (e->events[i].kind != kind)
      continue;
    if (e->events[i].len > SIZE_MAX - 1 - *total)
      return PK_ENOMEM;
    *total += e->events[i].len;
    (*idx)[j] = i;
    (*ends)[j++] = *total;
  }
  return (int)k;
}

/* The bytes of the events idx[0..k) in one buffer; *joined is NULL when
 * k == 1 (the event's own data is used). */
static int stream_join(const pkc_entry *e, const size_t *idx, size_t k,
                       size_t total, char **joined, const char **src) {
  *joined = NULL;
  if (k == 1) {
    *src = e->events[idx[0]].data;
    return 0;
  }
  char *j = pk__malloc(total + 1);
  if (!j)
    return PK_ENOMEM;
  size_t at = 0;
  for (size_t i = 0; i < k; i++) {
    const pkc_event *ev = &e->events[idx[i]];
    if (ev->len > 0)
      memcpy(j + at, ev->data, ev->len);
    at += ev->len;
  }
  j[total] = '\0';
  *joined = j;
  *src = j;
  return 0;
}

/* Cut the new stream out[0..) at the moved ends[] into the stage. */
static int stream_split(const pkc_entry *e, stage *st, const size_t *idx,
                        const size_t *ends, size_t k, char **out) {
  size_t start = 0;
  for (size_t i = 0; i < k; i++) {
    size_t n = ends[i] - start, ev = idx[i];
    if (n == 0) {
      st->drop[ev] = e->events[ev].len > 0; /* an empty one stays */
    } else if (k == 1) {
      st->data[ev] = *out; /* the whole stream: no copy */
      *out = NULL;
    } else if (!(st->data[ev] = pk__memdup(*out + start, n))) {
      return PK_ENOMEM;
    }
    st->len[ev] = n;
    start = ends[i];
  }
  return 0;
}

static int stage_stream(const pkc_subst *s, dir d, const pkc_entry *e,
                        pkc_event_kind kind, stage *st) {
  size_t *idx = NULL, *ends = NULL, total = 0, outlen;
  char *joined = NULL, *out = NULL;
  const char *src = NULL;
  claims cl = {0};
  int rc = stream_layout(e, kind, &idx, &ends, &total);
  if (rc <= 0)
    goto out;
  size_t k = (size_t)rc;
  rc = stream_join(e, idx, k, total, &joined, &src);
  if (rc == 0)
    rc = find_claims(s, d, src, total, &cl);
  if (rc != 0 || cl.n == 0)
    goto out;
  rc = build(s, d, src, total, &cl, &out, &outlen);
  pk__free(joined); /* before the split: less memory at the peak */
  joined = NULL;
  if (rc != 0)
    goto out;
  map_bounds(s, d, &cl, ends, k);
  rc = stream_split(e, st, idx, ends, k, &out);
  for (size_t i = 0; rc == 0 && st->used && i < cl.n; i++)
    st->used[cl.v[i].rule] = true;
out:
  pk__free(idx);
  pk__free(ends);
  pk__free(joined);
  pk__free(out);
  pk__free(cl.v);
  return rc;
}

static int cmp_str(const void *a, const void *b) {
  return strcmp(*(const char *const *)a, *(const char *const *)b);
}

static bool known(const pkc_subst *s, const char *name) {
  return find_name(s, name) != NULL;
}

/* APPLY: the entry's names and the used ones; RESTORE: the entry's names
 * s does not know. Sorted, unique. */
static int stage_placeholders(const pkc_subst *s, dir d, const pkc_entry *e,
                              stage *st) {
  size_t max = e->nplaceholders + (d == APPLY ? s->n : 0);
  if (max == 0)
    return 0;
  st->ph = pk__malloc(max * sizeof(char *));
  if (!st->ph)
    return PK_ENOMEM;
  for (size_t i = 0; i < e->nplaceholders; i++) {
    const char *p = e->placeholders[i];
    if (!p || (d == RESTORE && known(s, p)))
      continue;
    if (!(st->ph[st->nph] = pk__strdup(p)))
      return PK_ENOMEM;
    st->nph++;
  }
  for (size_t i = 0; d == APPLY && i < s->n; i++) {
    if (!st->used[i])
      continue;
    if (!(st->ph[st->nph] = pk__strdup(s->rules[i].name)))
      return PK_ENOMEM;
    st->nph++;
  }
  qsort(st->ph, st->nph, sizeof(char *), cmp_str);
  size_t u = 0;
  for (size_t i = 0; i < st->nph; i++) {
    if (u > 0 && strcmp(st->ph[u - 1], st->ph[i]) == 0)
      pk__free(st->ph[i]);
    else
      st->ph[u++] = st->ph[i];
  }
  st->nph = u;
  return 0;
}

static void stage_commit(stage *st, pkc_entry *e) {
  for (size_t i = 0; i < st->nstr; i++) {
    pk__free(*st->str[i].at);
    *st->str[i].at = st->str[i].value;
  }
  st->nstr = 0;
  size_t kept = 0;
  for (size_t i = 0; i < e->nevents; i++) {
    pkc_event ev = e->events[i];
    if (st->drop[i] || st->data[i]) {
      pk__free(ev.data);
      ev.data = st->data[i];
      ev.len = st->len[i];
      st->data[i] = NULL;
    }
    if (!st->drop[i])
      e->events[kept++] = ev;
  }
  e->nevents = kept;
  for (size_t i = 0; i < e->nplaceholders; i++)
    pk__free(e->placeholders[i]);
  pk__free(e->placeholders);
  e->placeholders = st->nph > 0 ? st->ph : NULL;
  e->nplaceholders = st->nph;
  if (st->nph == 0)
    pk__free(st->ph);
  st->ph = NULL;
  st->nph = 0;
}

static int entry_subst(const pkc_subst *s, dir d, pkc_entry *e) {
  if (!s || !e)
    return PK_EINVAL;
  stage st = {0};
  size_t ne = e->nevents;
  int rc = PK_ENOMEM;
  st.str = pk__malloc((e->nargs + 3) * sizeof(slot));
  st.data = pk__calloc(ne + 1, sizeof(char *));
  st.len = pk__calloc(ne + 1, sizeof(size_t));
  st.drop = pk__calloc(ne + 1, sizeof(bool));
  if (d == APPLY)
    st.used = pk__calloc(s->n + 1, sizeof(bool));
  if (!st.str || !st.data || !st.len || !st.drop || (d == APPLY && !st.used))
    goto out;
  rc = stage_string(s, d, &st, &e->program);
  for (size_t i = 0; rc == 0 && i < e->nargs; i++)
    rc = stage_string(s, d, &st, &e->args[i]);
  if (rc == 0)
    rc = stage_string(s, d, &st, &e->cwd);
  if (rc == 0)
    rc = stage_string(s, d, &st, &e->errmsg);
  if (rc == 0)
    rc = stage_stream(s, d, e, PKC_EV_STDOUT, &st);
  if (rc == 0)
    rc = stage_stream(s, d, e, PKC_EV_STDERR, &st);
  if (rc == 0)
    rc = stage_stream(s, d, e, PKC_EV_STDIN, &st);
  if (rc == 0)
    rc = stage_placeholders(s, d, e, &st);
  if (rc == 0)
    stage_commit(&st, e);
out:
  stage_release(&st, ne);
  return rc;
}

int pkc_subst_apply(const pkc_subst *s, pkc_entry *e) {
  return entry_subst(s, APPLY, e);
}

int pkc_subst_restore(const pkc_subst *s, pkc_entry *e) {
  return entry_subst(s, RESTORE, e);
}

/* --------------------------------------------------------------- scan */

/* What the scan looks for: each secret raw and its base64 cores. */
typedef struct needle {
  const char *p;
  size_t len;
  const rule *r;
  int b64; /* 0: raw; else the alignment + 1 */
  char *own;
} needle;

typedef struct scan {
  const pkc_subst *s;
  needle *v;
  size_t n;
  bool allow_shapes;
  /* the finding */
  const needle *hit;
  const char *shape;
} scan;

/* The full groups of base64(prefix + value) for a prefix of k bytes: the
 * groups that hold a prefix byte or the end are left out, so the core is
 * base64 of value[off..] cut to whole groups, off = (3 - k) % 3. */
static int b64_core(const rule *r, int k, needle *nd) {
  size_t off = (size_t)((3 - k) % 3);
  size_t groups = r->vlen > off ? (r->vlen - off) / 3 : 0;
  nd->own = NULL;
  nd->len = groups * 4;
  if (nd->len < PKC_B64_MIN_CORE)
    return 0;
  nd->own = pk__malloc(nd->len + 1);
  if (!nd->own)
    return PK_ENOMEM;
  base64_encode_raw(nd->own, groups * 3, (const uint8_t *)r->value + off);
  nd->own[nd->len] = '\0';
  nd->p = nd->own;
  nd->r = r;
  nd->b64 = k + 1;
  return 0;
}

static void scan_release(scan *sc) {
  for (size_t i = 0; i < sc->n; i++)
    pk__free(sc->v[i].own);
  pk__free(sc->v);
}

static int scan_init(scan *sc, const pkc_subst *s, bool allow_shapes) {
  memset(sc, 0, sizeof(*sc));
  sc->s = s;
  sc->allow_shapes = allow_shapes;
  size_t n = s ? s->n : 0;
  sc->v = pk__calloc(n * 4 + 1, sizeof(needle));
  if (!sc->v)
    return PK_ENOMEM;
  for (size_t i = 0; i < n; i++) {
    const rule *r = &s->rules[i];
    if (r->kind != PKC_SUBST_SECRET)
      continue;
    sc->v[sc->n++] = (needle){r->value, r->vlen, r, 0, NULL};
    for (int k = 0; k < 3; k++) {
      int rc = b64_core(r, k, &sc->v[sc->n]);
      if (rc != 0)
        return rc;
      if (sc->v[sc->n].own)
        sc->n++;
    }
  }
  return 0;
}

/* Shapes. Each returns true when [d, d+n) holds the shape at p (where its
 * anchor was found), not as part of a longer word. */
static size_t span(const char *d, size_t n, size_t p, const char *set,
                   bool alnum) {
  size_t q = p;
  while (q < n && ((alnum && is_alnum((unsigned char)d[q])) ||
                   (d[q] && strchr(set, d[q]))))
    q++;
  return q - p;
}

static bool word_before(const char *d, size_t p) {
  return p > 0 && is_word((unsigned char)d[p - 1]);
}

static const char *shape_gh(const char *d, size_t n, size_t p) {
  if (word_before(d, p) || n - p < 4 || !d[p + 2] ||
      !strchr("pousr", d[p + 2]) || d[p + 3] != '_')
    return NULL;
  size_t a = span(d, n, p + 4, "", true);
  if (a == 36 && (p + 40 == n || !is_word((unsigned char)d[p + 40])))
    return "GitHub token (gh?_)";
  return NULL;
}

static const char *shape_gh_pat(const char *d, size_t n, size_t p) {
  if (word_before(d, p) || span(d, n, p + 11, "_", true) < 22)
    return NULL;
  return "GitHub fine-grained token (github_pat_)";
}

static const char *shape_aws(const char *d, size_t n, size_t p) {
  if (word_before(d, p) || n - p < 20)
    return NULL;
  for (size_t i = p + 4; i < p + 20; i++)
    if (!((d[i] >= 'A' && d[i] <= 'Z') || (d[i] >= '0' && d[i] <= '9')))
      return NULL;
  if (p + 20 < n && is_word((unsigned char)d[p + 20]))
    return NULL;
  return "AWS access key id (AKIA)";
}

static const char *shape_slack(const char *d, size_t n, size_t p) {
  if (word_before(d, p) || n - p < 5 || !d[p + 3] ||
      !strchr("abprs", d[p + 3]) || d[p + 4] != '-')
    return NULL;
  return span(d, n, p + 5, "-", true) >= 10 ? "Slack token (xox?-)" : NULL;
}

static const char *shape_pem(const char *d, size_t n, size_t p) {
  static const char tail[] = "PRIVATE KEY-----";
  size_t tl = sizeof(tail) - 1;
  for (size_t q = p + 11; q < n && q < p + 11 + 64; q++) {
    if (n - q >= tl && memcmp(d + q, tail, tl) == 0)
      return "PEM private key";
    if (!((d[q] >= 'A' && d[q] <= 'Z') || (d[q] >= '0' && d[q] <= '9') ||
          d[q] == ' '))
      return NULL;
  }
  return NULL;
}

typedef const char *(*shape_fn)(const char *d, size_t n, size_t p);

static const char *find_shape(const char *d, size_t n) {
  static const struct {
    const char *anchor;
    shape_fn fn;
  } shapes[] = {{"gh", shape_gh},
                {"github_pat_", shape_gh_pat},
                {"AKIA", shape_aws},
                {"xox", shape_slack},
                {"-----BEGIN ", shape_pem}};
  for (size_t i = 0; i < sizeof(shapes) / sizeof(shapes[0]); i++) {
    size_t al = strlen(shapes[i].anchor), pos = 0;
    const char *q;
    while (n - pos >= al &&
           (q = pk__memmem(d + pos, n - pos, shapes[i].anchor, al)) != NULL) {
      size_t at = (size_t)(q - d);
      const char *what = shapes[i].fn(d, n, at);
      if (what)
        return what;
      pos = at + 1;
    }
  }
  return NULL;
}

/* true: found (sc->hit or sc->shape says what). */
static bool scan_bytes(scan *sc, const char *d, size_t n) {
  if (n == 0)
    return false;
  for (size_t i = 0; i < sc->n; i++)
    if (n >= sc->v[i].len && pk__memmem(d, n, sc->v[i].p, sc->v[i].len)) {
      sc->hit = &sc->v[i];
      return true;
    }
  if (!sc->allow_shapes)
    sc->shape = find_shape(d, n);
  return sc->shape != NULL;
}

static bool scan_str(scan *sc, const char *str) {
  return str && scan_bytes(sc, str, strlen(str));
}

static void describe(const scan *sc, const pkc_entry *e, size_t ei,
                     const char *field, size_t fi, bool indexed, char *msg,
                     size_t msglen) {
  char where[96], fld[48], what[192];
  if (e->id)
    snprintf(where, sizeof(where), "entry %.64s", e->id);
  else if (e->program && strcmp(field, "program") != 0)
    snprintf(where, sizeof(where), "entry #%zu (%.48s)", ei, e->program);
  else /* the program is what matched: not printed */
    snprintf(where, sizeof(where), "entry #%zu", ei);
  if (indexed)
    snprintf(fld, sizeof(fld), "%s[%zu]", field, fi);
  else
    snprintf(fld, sizeof(fld), "%s", field);
  if (sc->hit && sc->hit->b64)
    snprintf(what, sizeof(what),
             "the secret %.80s, base64-encoded (alignment %d)",
             sc->hit->r->name, sc->hit->b64 - 1);
  else if (sc->hit)
    snprintf(what, sizeof(what), "the secret %.80s", sc->hit->r->name);
  else
    snprintf(what, sizeof(what),
             "a value shaped like a %s (allow_credential_shapes for a "
             "test fixture)",
             sc->shape);
  snprintf(msg, msglen, "%s: %s contains %s", where, fld, what);
}

/* One stream of e, joined across its chunks. 1: found; 0; or an error. */
static int scan_stream(scan *sc, const pkc_entry *e, pkc_event_kind kind) {
  size_t *idx = NULL, *ends = NULL, total = 0;
  char *joined = NULL;
  const char *src = NULL;
  int rc = stream_layout(e, kind, &idx, &ends, &total);
  if (rc > 0) {
    rc = stream_join(e, idx, (size_t)rc, total, &joined, &src);
    if (rc == 0)
      rc = scan_bytes(sc, src, total) ? 1 : 0;
  }
  pk__free(idx);
  pk__free(ends);
  pk__free(joined);
  return rc;
}

/* 1: found (described); 0; or an error. */
static int scan_entry(scan *sc, const pkc_entry *e, size_t ei, char *msg,
                      size_t msglen) {
  static const char *const streams[] = {"stdout", "stderr", "stdin"};
  const char *field = NULL;
  size_t fi = 0;
  bool indexed = false;
  if (scan_str(sc, e->program))
    field = "program";
  for (size_t i = 0; !field && i < e->nargs; i++)
    if (scan_str(sc, e->args[i]))
      field = "args", fi = i, indexed = true;
  if (!field && scan_str(sc, e->cwd))
    field = "cwd";
  for (size_t i = 0; !field && i < e->nenv_names; i++)
    if (scan_str(sc, e->env_names[i]))
      field = "env_names", fi = i, indexed = true;
  if (!field && scan_str(sc, e->stage))
    field = "stage";
  if (!field && scan_str(sc, e->errmsg))
    field = "errmsg";
  for (int k = 0; !field && k < 3; k++) {
    int rc = scan_stream(sc, e, (pkc_event_kind)(PKC_EV_STDOUT + k));
    if (rc < 0)
      return rc;
    if (rc > 0)
      field = streams[k];
  }
  if (!field)
    return 0;
  if (msg && msglen > 0)
    describe(sc, e, ei, field, fi, indexed, msg, msglen);
  return 1;
}

int pkc_scan(const pkc_subst *s, const pkc_file *f, bool allow_shapes,
             char *msg, size_t msglen) {
  if (msg && msglen > 0)
    msg[0] = '\0';
  if (!f)
    return PK_EINVAL;
  scan sc;
  int rc = scan_init(&sc, s, allow_shapes);
  for (size_t i = 0; rc == 0 && i < f->nentries; i++)
    rc = scan_entry(&sc, &f->entries[i], i, msg, msglen);
  scan_release(&sc);
  return rc > 0 ? PK_ESECRET : rc;
}
