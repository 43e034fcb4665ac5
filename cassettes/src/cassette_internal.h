/* Internal to cassettes/: the cassette object shared by the open/save code
 * (cassette.c), matching (match.c) and the runner (runner.c). */
#ifndef PK_CASSETTE_INTERNAL_H
#define PK_CASSETTE_INTERNAL_H

#include "model.h"
#include "pk/cassette.h"
#include "pk/runner_impl.h"
#include "redact.h"

#include <pthread.h>

/* A command or an entry reduced to what matching compares. */
typedef struct pkc_key {
  char *program;
  char **args;
  size_t nargs;
  char *cwd; /* normalized; NULL when not inherited */
  pkc_stdin_kind stdin_kind;
  char stdin_sha256[65];
  uint64_t stdin_bytes;
  char *env_digest; /* NULL when no variable is matched */
  char digest[65];  /* over the fields the options match */
} pkc_key;

/* A set of hex digests with a count each (open addressing). */
typedef struct pkc_set {
  char (*keys)[65];
  size_t *counts;
  size_t cap; /* a power of two, or 0 */
} pkc_set;
int pkc_set_init(pkc_set *s, size_t expected);
void pkc_set_free(pkc_set *s);
/* Add one to digest's count; returns the new count (0 when full). */
size_t pkc_set_add(pkc_set *s, const char *digest);
size_t pkc_set_count(const pkc_set *s, const char *digest);

/* One run being recorded (the tap's data). */
typedef struct pkc_rec pkc_rec;

/* Entries of one match key, in file order (the open-addressing index). */
typedef struct pkc_slot {
  char digest[65]; /* "" when free */
  size_t *idx;
  size_t n, cap;
  size_t played; /* requests answered so far */
} pkc_slot;

struct pk_cassette {
  pk_runner base; /* pk_cassette_runner */
  pthread_mutex_t mu;
  char *path;
  pk_cassette_opts opts; /* strings below are copies */
  char **match_env, **passthrough, *record_only;
  pk_record_mode mode; /* as resolved */
  bool recording;      /* misses are recorded (mode + file state) */
  bool record_all;     /* every command records (mode all, or once on a
                          missing file) */
  bool strict;
  bool discarded;
  pkc_file *file;  /* as loaded */
  size_t *played;  /* per loaded entry: times replayed */
  bool *replaced;  /* per loaded entry: re-recorded (stale) */
  pkc_key *keys;   /* per loaded entry */
  pkc_slot *slots; /* index by key digest */
  size_t nslots;
  pkc_set base_fp; /* fingerprints of the entries at open */
  pkc_entry *rec;  /* recorded in this session, in end order */
  size_t nrec, caprec;
  size_t nsaved; /* rec[0..nsaved) are in the file already */
  char **misses;
  size_t nmisses;
  size_t stale;
  pkc_subst *subst;
  char **ignore_flags;
  size_t nignore_flags;
  char ***globs; /* NULL-terminated pattern lists */
  size_t *nglob;
  size_t nglobs;
  char errmsg[1024];
};

/* match.c */
void pkc_key_clear(pkc_key *k);
/* The key of a command about to run (its args normalized through the
 * cassette's placeholders, ignored flags dropped, globs applied). */
int pkc_key_of_cmd(pk_cassette *c, const pk_cmd *cmd, pkc_key *k);
/* The key of a recorded entry, under the same options. */
int pkc_key_of_entry(pk_cassette *c, const pkc_entry *e, pkc_key *k);
/* "<12 hex>" of the default key (program, args, stdin) for entry ids. */
void pkc_id_digest(const pkc_entry *e, char out[13]);
/* Build the index over c->file. */
int pkc_index_build(pk_cassette *c);
pkc_slot *pkc_index_find(pk_cassette *c, const char *digest);
/* Linear match through the custom matcher; SIZE_MAX when none. */
size_t pkc_match_custom(pk_cassette *c, const pk_cmd *cmd, size_t *played);
/* The miss message (heap): the command, the nearest entry and how it
 * differs, whether the match was consumed, how to re-record. */
char *pkc_miss_message(pk_cassette *c, const pk_cmd *cmd, const pkc_key *k,
                       const pkc_slot *consumed);
/* Fingerprint of an entry's content (merging). */
void pkc_fingerprint(const pkc_entry *e, char out[65]);

/* runner.c */
extern const pk_runner_vtable pkc_runner_vt;

/* cassette.c */
/* Append a finished recording (takes *e) under c->mu. */
void pkc_add_recording(pk_cassette *c, pkc_entry *e);
/* Record a miss message (takes msg) under c->mu. */
void pkc_add_miss(pk_cassette *c, char *msg);

#endif
