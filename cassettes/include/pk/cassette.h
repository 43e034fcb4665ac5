/* processkit cassettes: record real runs to YAML, replay them offline.
 *
 * How to use:
 *   1. pk_cassette_open("tests/cassettes/git.yaml", &opts, &c) with
 *      opts.inner = a real runner (needed only when recording).
 *   2. Hand pk_cassette_runner(c) to the code under test. Depending on
 *      the record mode each command is answered from the cassette (no
 *      process is spawned, no side effect happens: a replayed `git clone`
 *      creates no files) or run for real through the inner runner and
 *      recorded.
 *   3. pk_cassette_close(c) saves what was recorded (atomically, merged
 *      with what other processes recorded into the same file meanwhile)
 *      and reports misses, and, when strict, repeats and unused entries.
 *
 * Record modes (opts.mode; the environment variable PK_RECORD_MODE
 * overrides it, an invalid value is an error):
 *   none          replay only; a command not in the cassette is a miss
 *   once          record when the file does not exist, else replay
 *   new_episodes  replay hits, record and append misses
 *   all           record everything; entries the file held when this
 *                 cassette was opened are replaced (entries other
 *                 processes saved since then are kept)
 * PK_RECORD_DEFAULT is `once`, or `none` when the environment variable
 * CI is set, so CI never runs real tools by surprise.
 *
 * A miss fails the run with PK_ECASSETTE_MISS (never a spawn) and is also
 * kept in the cassette: pk_cassette_close returns PK_ECASSETTE_MISS even
 * when the code under test swallowed the error.
 *
 * The format is docs/cassette-format.md. Only this target links libyaml.
 */
#ifndef PK_CASSETTE_H
#define PK_CASSETTE_H

#include <pk/pk.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct pk_cassette pk_cassette;

typedef enum pk_record_mode {
  PK_RECORD_DEFAULT = 0, /* once; none when $CI is set */
  PK_RECORD_NONE,
  PK_RECORD_ONCE,
  PK_RECORD_NEW_EPISODES,
  PK_RECORD_ALL,
} pk_record_mode;

/* "none", "once", "new_episodes", "all" ("default" for DEFAULT). */
PK_EXTERN const char *pk_record_mode_name(pk_record_mode m);
/* Errors: PK_EINVAL (unknown name). */
PK_EXTERN int pk_record_mode_parse(const char *name, pk_record_mode *out);

/* What an entry older than max_age does. */
typedef enum pk_stale_policy {
  PK_STALE_IGNORE = 0,
  PK_STALE_WARN,     /* replay it; listed by pk_cassette_stale_count */
  PK_STALE_FAIL,     /* the run fails with PK_ECASSETTE_STALE */
  PK_STALE_RERECORD, /* treated as a miss and recorded again (needs
                        a recording mode and an inner runner) */
} pk_stale_policy;

/* Parts of a command that make up the match key besides program + args. */
enum {
  PK_MATCH_CWD = 1u << 0,      /* the working directory (normalized) */
  PK_MATCH_NO_STDIN = 1u << 1, /* leave the stdin digest out of the key */
};

/* A custom matcher: return true when the recorded command (program, args,
 * cwd as recorded, after placeholders are restored) answers cmd. It
 * replaces the built-in comparison of program, args and stdin. */
typedef bool (*pk_cassette_matcher)(const pk_cmd *cmd, const char *program,
                                    const char *const *args, size_t nargs,
                                    const char *cwd, void *data);

typedef struct pk_cassette_opts {
  pk_record_mode mode;
  /* Runs misses in a recording mode, and pass-through programs. Borrowed;
   * must outlive the cassette. NULL: nothing can be recorded. */
  pk_runner *inner;
  unsigned match; /* PK_MATCH_* */
  /* Environment variables whose values join the key (through a digest;
   * the values are never written). */
  const char *const *match_env;
  size_t nmatch_env;
  pk_cassette_matcher matcher;
  void *matcher_data;
  /* Repeats of a key past its recorded entries fail (instead of the last
   * one repeating), and entries never played make close fail with
   * PK_ECASSETTE_UNUSED. Also turned on by PK_CASSETTE_STRICT=1. */
  bool strict;
  /* Replace the home, temporary and working directories with
   * placeholders when saving (and restore this machine's on replay). */
  bool normalize_paths;
  /* Replay pace: 0 (default) plays every entry at once, order kept; 1 at
   * the recorded pace; 2 twice as fast. */
  double speed;
  /* Staleness: entries recorded more than max_age_s seconds ago. */
  int64_t max_age_s;
  pk_stale_policy stale;
  /* Per-entry cap on recorded output bytes (both streams together);
   * beyond it the entry keeps the first bytes and is marked truncated.
   * 0: PK_CASSETTE_DEFAULT_MAX_ENTRY. */
  size_t max_entry_bytes;
  /* Store time offsets and durations to the microsecond (default: offsets
   * in 10 ms steps, durations in whole ms, so a re-record churns little). */
  bool precise_timing;
  /* Allow values shaped like credentials (ghp_..., AKIA..., PEM keys) in
   * the file; by default a save refuses them. */
  bool allow_credential_shapes;
  /* Programs (by name or basename) always run through `inner`, never
   * recorded or replayed. */
  const char *const *passthrough;
  size_t npassthrough;
  /* Record only when the cassette's path, file name or file name
   * without its extension matches this fnmatch(3) pattern; otherwise the
   * mode is none (PK_RECORD_ONLY overrides it): re-record one test's
   * cassette while the others replay. */
  const char *record_only;
  /* Every command runs through `inner` and is recorded, appended after
   * the file's entries, in any recording mode (pk record). */
  bool always_record;
} pk_cassette_opts;

#define PK_CASSETTE_DEFAULT_MAX_ENTRY ((size_t)64 << 20)

/* Open a cassette file. The mode is resolved here (opts, then
 * PK_RECORD_MODE, then $CI). Errors: PK_ECASSETTE_NOT_FOUND (mode none,
 * or once under CI, and the file is missing), PK_ECASSETTE_INVALID (the
 * file was rejected: pk_cassette_open_error says where), PK_EINVAL (bad
 * option or PK_RECORD_MODE value; the message names it),
 * PK_ECASSETTE_FROZEN (a recording mode on a frozen cassette), PK_ENOMEM.
 * On failure *out is NULL and the message is in errbuf when given. */
/* mkdir -p of the directory that will hold the file path ('/' separates,
 * and '\\' too on Windows). Errors: the host's, as PK_E / UV_E codes. */
PK_EXTERN int pk_cassette_make_dirs(const char *path);

PK_EXTERN int pk_cassette_open(const char *path, const pk_cassette_opts *opts,
                               pk_cassette **out, char *errbuf,
                               size_t errbuf_len);

/* The runner answering from (and recording into) c. Borrowed: valid until
 * pk_cassette_close. Thread-safe. */
PK_EXTERN pk_runner *pk_cassette_runner(pk_cassette *c);
PK_EXTERN pk_record_mode pk_cassette_mode(const pk_cassette *c);

/* Register a secret: every occurrence of value in args, stdin, stdout,
 * stderr and cwd is written as the placeholder {{NAME}} and restored on
 * replay. A save is refused (PK_ESECRET) if the value would still reach
 * the file, raw or base64-encoded. Errors: PK_EINVAL (empty value, bad
 * name: [A-Za-z0-9_] only), PK_ENOMEM. */
PK_EXTERN int pk_cassette_redact(pk_cassette *c, const char *name,
                                 const char *value);
/* A volatile value (a port, a date, a temporary path): written as
 * {{NAME}} and restored on replay, so matching ignores how it changes.
 * The home, temporary and working directories use the reserved
 * {{pk.home}}, {{pk.tmp}} and {{pk.cwd}} (opts.normalize_paths).
 * Not a secret: no refusal. */
PK_EXTERN int pk_cassette_placeholder(pk_cassette *c, const char *name,
                                      const char *value);
/* Leave a flag out of the key: "--since" drops both "--since=X" and
 * "--since X". */
PK_EXTERN int pk_cassette_ignore_flag(pk_cassette *c, const char *flag);
/* Glob matching with the scripted runner's rules: a command matching
 * these fnmatch(3) patterns element-wise (program, then each argument; a
 * program pattern without '/' also matches by basename) is answered by
 * any recorded entry of the same length that matches them too. */
PK_EXTERN int pk_cassette_match_glob(pk_cassette *c,
                                     const char *const *patterns, size_t n);

/* Save now (also done by close). Writes nothing when nothing changed.
 * Errors: PK_ESECRET (names the entry and field), PK_EIO, PK_EACCES
 * (symlink at the target), PK_ECASSETTE_FROZEN. */
PK_EXTERN int pk_cassette_save(pk_cassette *c);
/* Discard what was recorded in this session (a failed test). */
PK_EXTERN void pk_cassette_discard(pk_cassette *c);

/* Misses so far, with their messages (borrowed). */
PK_EXTERN size_t pk_cassette_miss_count(const pk_cassette *c);
PK_EXTERN const char *pk_cassette_miss(const pk_cassette *c, size_t i);
/* Entries never played in this session (indexes into the file order;
 * *out is heap, pk_free). */
PK_EXTERN int pk_cassette_unused(const pk_cassette *c, size_t **out, size_t *n);
/* Entries replayed while older than max_age (PK_STALE_WARN). */
PK_EXTERN size_t pk_cassette_stale_count(const pk_cassette *c);
/* Entries the file held when c was opened (this session's recordings
 * join the file at the save). */
PK_EXTERN size_t pk_cassette_entry_count(const pk_cassette *c);
/* The message of the last failing call on c (never NULL). */
PK_EXTERN const char *pk_cassette_errmsg(const pk_cassette *c);

/* Save (unless discarded), then check: misses -> PK_ECASSETTE_MISS,
 * strict and unused entries -> PK_ECASSETTE_UNUSED; the message (all
 * misses, each with a paste-ready line to re-record) goes to errbuf.
 * Frees c in every case. */
PK_EXTERN int pk_cassette_close(pk_cassette *c, char *errbuf,
                                size_t errbuf_len);

#ifdef __cplusplus
}
#endif
#endif /* PK_CASSETTE_H */
