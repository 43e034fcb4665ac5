/* Redaction, placeholders and secret scanning for cassette entries
 * (internal to cassettes/). Pure functions over the in-memory model: no
 * I/O, no global state; only the struct definitions of model.h are used.
 *
 * How to use:
 *   1. pkc_subst_new(), then register what must not be written as is:
 *      pkc_subst_add() for secrets (pk_cassette_redact) and volatile
 *      values (pk_cassette_placeholder), pkc_subst_add_paths() for the
 *      home, temporary and working directories (opts.normalize_paths),
 *      pkc_subst_auto_env() for secrets found in the environment.
 *   2. Saving: pkc_subst_apply() on every recorded entry, then pkc_scan()
 *      over the whole file; a PK_ESECRET from the scan refuses the save.
 *   3. Replaying: pkc_subst_restore() on the entries read from the file,
 *      and pkc_subst_apply_str() on an incoming command's strings when it
 *      is compared in its written form.
 *   4. pkc_subst_free().
 *
 * Tokens. A value is written as {{NAME}}. User names are [A-Za-z0-9_]+;
 * the reserved path names pk.home, pk.tmp and pk.cwd contain a dot, so
 * they can never clash with a user name.
 *
 * Order. Occurrences are claimed longest value first (equal lengths:
 * secrets first, then registration order), never overlapping a claim made
 * before, and all are replaced in one pass over the original bytes: a
 * token written for one value is never searched for another value, so a
 * value "home" cannot eat into {{pk.home}}. A path value only matches
 * where the next byte is not [A-Za-z0-9._-] (so /tmp leaves /tmpfoo
 * alone); a nested path (cwd inside tmp inside home) is claimed by the
 * longest one first.
 *
 * Streams. The stdout, stderr and stdin events of an entry are each
 * joined across their chunks before replacing, so a value (or, when
 * restoring, a token) that straddles chunks is found. The result is cut
 * again at the old chunk boundaries moved to the new positions: a
 * boundary inside a replaced occurrence moves to the end of what replaced
 * it. A chunk that becomes empty is dropped; every other event keeps its
 * t_us. Data may hold NUL bytes and invalid UTF-8.
 *
 * Inverse. pkc_subst_restore(pkc_subst_apply(x)) gives back x's strings
 * and each stream's joined bytes exactly, PROVIDED x contains no token
 * {{NAME}} of a name s knows (such a token would be turned into the
 * value on restore too). The chunking comes back exactly only where no
 * occurrence straddled a chunk boundary: the bytes of a straddling value
 * end up in the earlier chunk (the split point inside it is not kept).
 *
 * Memory. A stream is handled joined: up to about three times its size
 * while it changes (joined copy, replaced copy, new chunks); nothing is
 * copied for a stream where nothing matches. Searching is memmem(3), one
 * pass per registered value (linear in the stream size). */
#ifndef PK_CASSETTE_REDACT_H
#define PK_CASSETTE_REDACT_H

#include "model.h"

#include <stdbool.h>
#include <stddef.h>

typedef enum pkc_subst_kind {
  PKC_SUBST_SECRET = 1, /* refused by pkc_scan if it still reaches a file */
  PKC_SUBST_VOLATILE,   /* a value that changes between runs */
  PKC_SUBST_PATH,       /* pk.home, pk.tmp, pk.cwd (pkc_subst_add_paths) */
} pkc_subst_kind;

/* Reserved placeholder names for the directories. */
#define PKC_PH_HOME "pk.home"
#define PKC_PH_TMP "pk.tmp"
#define PKC_PH_CWD "pk.cwd"

/* Environment values shorter than this are not taken as secrets by
 * pkc_subst_auto_env: a short value such as "1" or "yes" would replace
 * every digit 1 or every word "yes" in the output. */
#define PKC_AUTO_ENV_MIN_LEN 6

/* A base64 core shorter than this many characters is not searched by
 * pkc_scan: four base64 characters (three bytes of a value) turn up by
 * chance in ordinary output. With 8, every value of 6 bytes or more is
 * searched at alignment 0, of 7 or more also at alignment 2, of 8 or
 * more at all three. The raw value is always searched. */
#define PKC_B64_MIN_CORE 8

/* An ordered set of (name, value, kind). Opaque. */
typedef struct pkc_subst pkc_subst;

/* A new empty set; NULL on ENOMEM. */
pkc_subst *pkc_subst_new(void);
/* Frees s and its copies of the names and values. NULL is a no-op. */
void pkc_subst_free(pkc_subst *s);

/* Register value under name as a SECRET or VOLATILE (name and value are
 * copied). Registering a name again replaces its value and kind; a name
 * held by an automatically detected environment secret moves that secret
 * to NAME_2 (NAME_3...) instead, so both stay redacted.
 * Errors: PK_EINVAL (NULL or empty value, name not [A-Za-z0-9_]+, kind
 * PATH: use pkc_subst_add_paths), PK_ENOMEM. */
int pkc_subst_add(pkc_subst *s, const char *name, const char *value,
                  pkc_subst_kind kind);

/* Set the reserved pk.home, pk.tmp and pk.cwd (copied). Each may be NULL,
 * "" or "/" (or only slashes): then that name is not used. Trailing
 * slashes are stripped ("/home/u/" is /home/u). Calling again replaces
 * the earlier values. Errors: PK_ENOMEM (s is unchanged then). */
int pkc_subst_add_paths(pkc_subst *s, const char *home, const char *tmp,
                        const char *cwd);

/* Add as SECRET the value of every variable of envp ("NAME=VALUE",
 * NULL-terminated; borrowed) whose name contains TOKEN, SECRET, PASSWORD,
 * PASSWD, KEY or CREDENTIAL (any case) and whose value is at least
 * PKC_AUTO_ENV_MIN_LEN bytes long. The placeholder name is the variable
 * name, with bytes outside [A-Za-z0-9_] turned into '_' and a _2, _3...
 * suffix when the name is already taken by a different value (a name
 * taken with the same value is skipped). Errors: PK_EINVAL (NULL envp),
 * PK_ENOMEM (the secrets added before the failure stay). */
int pkc_subst_auto_env(pkc_subst *s, const char *const *envp);

/* Number of registered values, and the i-th in priority order (longest
 * value first). Borrowed, valid until s changes. For tests and messages. */
size_t pkc_subst_count(const pkc_subst *s);
const char *pkc_subst_name(const pkc_subst *s, size_t i);
const char *pkc_subst_value(const pkc_subst *s, size_t i);
pkc_subst_kind pkc_subst_kind_at(const pkc_subst *s, size_t i);

/* Saving: replace every registered value by its token in e's program,
 * args, cwd, errmsg and in the stdout, stderr and stdin streams (see
 * Streams above), and add the names used to e->placeholders (the result
 * is sorted and unique; names already there are kept).
 * Errors: PK_EINVAL (NULL), PK_ENOMEM (e is unchanged then). */
int pkc_subst_apply(const pkc_subst *s, pkc_entry *e);

/* Replaying: the inverse of pkc_subst_apply for the names s knows; tokens
 * of other names are left as they are (and stay in e->placeholders,
 * from which the names s knows are removed). Same stream handling:
 * tokens straddling chunks are found. Errors: PK_EINVAL, PK_ENOMEM (e is
 * unchanged then). */
int pkc_subst_restore(const pkc_subst *s, pkc_entry *e);

/* The same on one NUL-terminated string: *out is a new heap string
 * (pk__free), also when nothing changed. Errors: PK_EINVAL, PK_ENOMEM. */
int pkc_subst_apply_str(const pkc_subst *s, const char *in, char **out);
int pkc_subst_restore_str(const pkc_subst *s, const char *in, char **out);

/* Before saving: PK_ESECRET when any SECRET value of s (s may be NULL)
 * appears in any entry of f, raw or as the base64 core of any of the
 * three alignments (the full groups of base64(prefix + value) for a
 * prefix of 0, 1 or 2 bytes), in program, args, cwd, env names, stage,
 * errmsg or a stream (each stream joined across its chunks); and, unless
 * allow_shapes, when a value shaped like a credential appears: GitHub
 * tokens (ghp_/gho_/ghu_/ghs_/ghr_ + 36 alphanumerics, github_pat_ + 22
 * or more [A-Za-z0-9_]), AWS access key ids (AKIA + 16 [A-Z0-9]), Slack
 * tokens (xox[abprs]- + 10 or more [A-Za-z0-9-]), PEM private key headers
 * (-----BEGIN ... PRIVATE KEY-----). A shape only counts when it is not
 * part of a longer word (for github_pat_ and Slack, of a longer word
 * before it).
 *
 * The first finding is described in msg (msglen bytes, always
 * terminated when msglen > 0; msg may be NULL): the entry (its id, or its
 * index and program when the id is NULL), the field (program, args[2],
 * cwd, env_names[0], stage, errmsg, stdout, stderr, stdin) and what
 * matched (the secret's name, or the kind of shape), never the value.
 * Returns 0 when nothing was found. Errors: PK_ESECRET, PK_EINVAL (NULL
 * f), PK_ENOMEM.
 *
 * Limits: standard base64 only (not base64url, hex or URL-encoding); a
 * secret that is part of a placeholder name (secret "GITHUB" and the
 * token {{GITHUB_TOKEN}}) is found in that token and refused, which is
 * right: the name is written to the file. */
int pkc_scan(const pkc_subst *s, const pkc_file *f, bool allow_shapes,
             char *msg, size_t msglen);

#endif
