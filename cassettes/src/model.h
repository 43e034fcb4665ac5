/* The in-memory cassette (internal to cassettes/): what the reader builds
 * from a file, what the writer emits, and what the record and replay
 * runners work on. Every string and buffer is owned by the struct that
 * holds it (pk__malloc family); *_free releases everything below it.
 *
 * The YAML schema is docs/cassette-format.md; this header mirrors it. */
#ifndef PK_CASSETTE_MODEL_H
#define PK_CASSETTE_MODEL_H

#include <pk/pk.h>

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Format versions this pk reads; it writes PKC_VERSION. */
#define PKC_VERSION 1
#define PKC_VERSION_MIN 1

/* Reader limits (C1). The file size is checked before parsing. */
#define PKC_MAX_FILE_BYTES ((size_t)256 << 20) /* 256 MiB */
#define PKC_MAX_SCALAR_BYTES ((size_t)64 << 20)
#define PKC_MAX_DEPTH 16
#define PKC_MAX_EVENTS ((size_t)50 << 20)

typedef enum pkc_event_kind {
  PKC_EV_STDOUT = 1, /* the values equal pk_stream's PK_STDOUT/PK_STDERR */
  PKC_EV_STDERR = 2,
  PKC_EV_STDIN = 3, /* reserved for dialogs: bytes fed while running */
} pkc_event_kind;

typedef struct pkc_event {
  pkc_event_kind kind;
  int64_t t_us; /* offset from the start of the run, microseconds */
  char *data;   /* raw bytes (decoded from text or base64), NUL-terminated */
  size_t len;
} pkc_event;

typedef enum pkc_stdin_kind {
  PKC_STDIN_BYTES = 0, /* sha256 + bytes: null stdin is 0 bytes */
  PKC_STDIN_TERMINAL,  /* a terminal the child inherited: never read */
  PKC_STDIN_INHERIT,   /* inherited from a non-terminal the recorder did
                          not read (library users with PK_STDIN_INHERIT) */
} pkc_stdin_kind;

typedef enum pkc_end_kind {
  PKC_END_EXIT = 0, /* code */
  PKC_END_SIGNAL,   /* signal */
  PKC_END_TIMEOUT,  /* timed out; signal = what finally ended it */
  PKC_END_ERROR,    /* error (pk error code), errno, stage, message */
} pkc_end_kind;

typedef struct pkc_entry {
  char *id;          /* "<first 12 hex of the key digest>-<ordinal>" */
  char *recorded_at; /* RFC 3339 UTC with milliseconds */
  char *program;
  char **args;
  size_t nargs;
  char *cwd;        /* informational unless matched; may be NULL */
  char **env_names; /* names the command set, removed or allow-listed */
  size_t nenv_names;
  char *env_digest; /* hex sha256 over the matched variables, or NULL */
  pkc_stdin_kind stdin_kind;
  char stdin_sha256[65]; /* hex, PKC_STDIN_BYTES only */
  uint64_t stdin_bytes;
  pkc_end_kind end;
  int code;     /* PKC_END_EXIT: the whole 32-bit code; PKC_END_TIMEOUT:
                   the code it exited with after the soft signal (-1: it
                   did not exit, or unknown) */
  int signal;   /* PKC_END_SIGNAL / PKC_END_TIMEOUT (0: unknown) */
  int error;    /* PKC_END_ERROR: a PK_E* code, written by its stable name */
  int os_errno; /* written as number and name (ENOENT) */
  char *stage;  /* may be NULL */
  char *errmsg; /* may be NULL */
  int64_t duration_us;
  uint64_t total_bytes[3]; /* [PK_STDOUT], [PK_STDERR] as the run saw them */
  uint64_t total_lines[3];
  bool truncated;      /* the recording cap cut the events short */
  bool incomplete;     /* the run's output_incomplete */
  char **placeholders; /* names of the placeholders this entry uses */
  size_t nplaceholders;
  pkc_event *events;
  size_t nevents;
} pkc_entry;

typedef struct pkc_file {
  int version;
  char *pk_version; /* "pk 0.1.0" as written by the recorder */
  bool frozen;      /* hand-made golden cassette: refuses recording */
  pkc_entry *entries;
  size_t nentries;
} pkc_file;

/* Where a reader error is. line and column are 1-based; 0 when the error
 * is about the whole file (size, open). */
typedef struct pkc_error {
  int code; /* PK_ECASSETTE_INVALID, PK_ECASSETTE_NOT_FOUND, PK_EIO... */
  size_t line, column;
  char msg[512]; /* "FILE:LINE:COL: what was wrong (hint)" */
} pkc_error;

/* Parse a cassette held in memory. name is used in messages. On success
 * *out is a new file; on failure err says why. Enforces every limit above
 * (len > PKC_MAX_FILE_BYTES is rejected before any parsing). */
PK_EXTERN int pkc_parse(const char *name, const char *data, size_t len,
                        pkc_file **out, pkc_error *err);
/* Read and parse path (size checked with fstat first; a missing file is
 * PK_ECASSETTE_NOT_FOUND). */
PK_EXTERN int pkc_load(const char *path, pkc_file **out, pkc_error *err);
/* Emit f as YAML through libyaml's emitter into a new heap buffer. */
PK_EXTERN int pkc_emit(const pkc_file *f, char **out, size_t *len);

PK_EXTERN pkc_file *pkc_file_new(void);
PK_EXTERN void pkc_file_free(pkc_file *f);
PK_EXTERN void pkc_entry_clear(pkc_entry *e); /* frees the contents, zeroes e */
/* Deep copy of src into *dst (dst's old contents are not freed). */
PK_EXTERN int pkc_entry_copy(pkc_entry *dst, const pkc_entry *src);
/* Append a copy (copy=true) or take ownership of *e (then zeroed). */
PK_EXTERN int pkc_file_add(pkc_file *f, pkc_entry *e, bool copy);
/* true when a and b are equal in every field; with ignore_timing the
 * time offsets, durations and recorded_at are not compared. */
PK_EXTERN bool pkc_entry_equal(const pkc_entry *a, const pkc_entry *b,
                               bool ignore_timing);

/* Helpers shared by the reader, writer and recorder. */
/* Length of the longest prefix of s[0..len) that is complete, valid UTF-8
 * (no overlongs, surrogates or code points past U+10FFFF). A NUL byte is
 * valid UTF-8 but is treated as invalid here (stored as base64). */
PK_EXTERN size_t pkc_utf8_valid_prefix(const char *s, size_t len);
/* errno <-> its symbolic name ("ENOENT"); NULL / -1 when unknown. */
PK_EXTERN const char *pkc_errno_name(int err);
PK_EXTERN int pkc_errno_parse(const char *name);
/* PK_E* stable name (pk_err_name) back to the code; 0 when unknown. */
PK_EXTERN int pkc_error_parse(const char *name);
/* Standard base64 with padding of data (heap, pk__free; nettle). NULL
 * on ENOMEM. */
PK_EXTERN char *pkc_base64(const void *data, size_t len);
/* hex sha256 of data into out[65] (nettle). */
PK_EXTERN void pkc_sha256_hex(const void *data, size_t len, char out[65]);

/* ---- additions for the reader, writer, tests and tools ---- */

/* The reader's limits; pkc_parse uses PKC_MAX_*. Tests pass smaller ones
 * to reach a limit without building a 64 MiB file. */
typedef struct pkc_limits {
  size_t max_file_bytes;
  size_t max_scalar_bytes;
  size_t max_depth;
  size_t max_events; /* all entries together */
} pkc_limits;
PK_EXTERN int pkc_parse_limited(const char *name, const char *data, size_t len,
                                const pkc_limits *lim, pkc_file **out,
                                pkc_error *err);
/* Every field of every entry, and version, pk and frozen. */
PK_EXTERN bool pkc_file_equal(const pkc_file *a, const pkc_file *b);
/* 64 lowercase hex digits (a sha256 as written). */
PK_EXTERN bool pkc_hex64_valid(const char *s);
/* UTC seconds since the epoch of "YYYY-MM-DDTHH:MM:SS..." (the rest is
 * ignored); -1 when it does not start like that. */
PK_EXTERN int pkc_utc_parse(const char *s, int64_t *secs);
/* "YYYY-MM-DDTHH:MM:SS.mmmZ" for secs since the epoch and ms (0-999). */
PK_EXTERN void pkc_utc_format(int64_t secs, int ms, char out[32]);
/* RFC 3339 UTC: YYYY-MM-DDTHH:MM:SS[.f{1,9}]Z. */
PK_EXTERN bool pkc_timestamp_valid(const char *s);
/* Give every entry its id, "<12 hex>-<ordinal>": the first 12 hex digits
 * of the digest of program, args and stdin, and the entry's ordinal among
 * the entries with the same digest, in file order (from 1). What a save
 * writes; the pk cassette commands renumber after removing entries.
 * Errors: PK_ENOMEM (ids already replaced stay replaced). */
PK_EXTERN int pkc_renumber_ids(pkc_file *f);
/* Make index n of *(T **)arr usable (capacity is the next power of two
 * >= n, so only call it with the current count). PK_ENOMEM or 0. */
int pkc__grow(void *arr, size_t n, size_t sz);

#endif
