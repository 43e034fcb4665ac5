/* The cassette file format (docs/cassette-format.md): the model helpers,
 * the writer's round trip through the reader, the golden fixtures, and
 * every hostile input the reader must refuse with a FILE:LINE:COL message
 * (RELIABILITY C1). No process is started. */
#include "harness.h"

#include "internal.h"
#include "model.h"

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define FIXTURES PK_SOURCE_DIR "/fixtures/cassettes"
#define EMPTY_SHA                                                              \
  "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"

/* ------------------------------------------------------------ helpers */

static pkc_file *parse_ok(const char *name, const char *s, size_t n) {
  pkc_file *f = NULL;
  pkc_error err;
  int rc = pkc_parse(name, s, n, &f, &err);
  if (rc != 0)
    fail_msg("%s: %d %s", name, rc, err.msg);
  return f;
}

static pkc_file *load_ok(const char *path) {
  pkc_file *f = NULL;
  pkc_error err;
  int rc = pkc_load(path, &f, &err);
  if (rc != 0)
    fail_msg("%s: %d %s", path, rc, err.msg);
  return f;
}

/* emit(f) parses back to f, and emitting that gives the same bytes. */
static void check_round_trip(const pkc_file *f) {
  char *a = NULL, *b = NULL;
  size_t na = 0, nb = 0;
  assert_int_equal(pkc_emit(f, &a, &na), 0);
  pkc_file *g = parse_ok("emitted", a, na);
  if (!pkc_file_equal(f, g))
    fail_msg("parse(emit(x)) != x; emitted:\n%s", a);
  assert_int_equal(pkc_emit(g, &b, &nb), 0);
  assert_int_equal(na, nb);
  assert_memory_equal(a, b, na);
  pk_free(b);
  assert_int_equal(pkc_emit(f, &b, &nb), 0); /* deterministic */
  assert_int_equal(na, nb);
  assert_memory_equal(a, b, na);
  pk_free(a);
  pk_free(b);
  pkc_file_free(g);
}

static char *xstrdup(const char *s) {
  char *d = pk__malloc(strlen(s) + 1);
  assert_non_null(d);
  return strcpy(d, s);
}

static char **strv(size_t n, const char *const *v) {
  char **out = n ? pk__malloc(n * sizeof(*out)) : NULL;
  for (size_t i = 0; i < n; i++)
    out[i] = xstrdup(v[i]);
  return out;
}

static void add_event(pkc_entry *e, pkc_event_kind k, int64_t t,
                      const char *data, size_t len) {
  e->events = pk__realloc(e->events, (e->nevents + 1) * sizeof(*e->events));
  pkc_event *ev = &e->events[e->nevents++];
  ev->kind = k;
  ev->t_us = t;
  ev->len = len;
  ev->data = pk__malloc(len + 1);
  memcpy(ev->data, data, len);
  ev->data[len] = '\0';
}

/* Awkward strings: every one must come back byte for byte. */
static const char *const tricky[] = {
    "",
    "plain",
    "CR\r",
    "CRLF\r\n",
    "trailing spaces   ",
    "   leading spaces",
    "tab\tinside\t",
    "NEL\xc2\x85here",
    "LS\xe2\x80\xa8PS\xe2\x80\xa9",
    "\xef\xbb\xbf"
    "BOM at start",
    "BOM \xef\xbb\xbf inside",
    "emoji \xf0\x9f\x98\x80 and \xf0\x9f\x8f\xb3\xef\xb8\x8f\xe2\x80\x8d"
    "\xf0\x9f\x8c\x88",
    "NBSP\xc2\xa0",
    "C1 \xc2\x80\xc2\x9f DEL \x7f",
    "nonchars \xef\xbf\xbe\xef\xbf\xbf",
    "null",
    "~",
    "true",
    "- dash",
    "# hash",
    "key: value",
    "'single' \"double\" \\back\\",
    "{{pk.cwd}}/x",
    "\x01\x02\x1b[31mred\x1b[0m",
    "line\nline\n\n",
    "\n",
    " ",
};
#define NTRICKY (sizeof(tricky) / sizeof(tricky[0]))

static void fill_entry(pkc_entry *e, size_t i) {
  char id[32];
  snprintf(id, sizeof(id), "%012zx-%zu", i * 7919, i % 3 + 1);
  e->id = xstrdup(id);
  e->recorded_at =
      xstrdup(i % 2 ? "2026-11-29T12:00:00.123Z" : "2026-01-01T00:00:00Z");
  e->program = xstrdup(i % 5 == 0 ? "git" : tricky[i % NTRICKY]);
  if (i % 4 != 0) {
    e->args = strv(NTRICKY, tricky);
    e->nargs = NTRICKY;
  }
  if (i % 3 == 0)
    e->cwd = xstrdup(i % 2 ? "" : "{{pk.cwd}}/sub dir ");
  if (i % 2 == 0) {
    static const char *const env[] = {"HOME", "PATH", "LC_ALL"};
    e->env_names = strv(3, env);
    e->nenv_names = 3;
    e->env_digest = xstrdup(EMPTY_SHA);
  }
  e->stdin_kind = (pkc_stdin_kind)(i % 3);
  if (e->stdin_kind == PKC_STDIN_BYTES) {
    pkc_sha256_hex("yes\n", 4, e->stdin_sha256);
    e->stdin_bytes = i * 1000003u;
  }
  static const int codes[] = {0, 1, -1, 255, 256, 300, 70000, INT_MIN, INT_MAX};
  switch (i % 8) {
  case 0:
  case 1:
  case 2:
    e->end = PKC_END_EXIT;
    e->code = codes[i % 9];
    break;
  case 3:
    e->end = PKC_END_SIGNAL;
    e->signal = i % 2 ? 9 : 0;
    break;
  case 4:
    e->end = PKC_END_SIGNAL;
    e->signal = 99; /* no name on this system */
    break;
  case 5:
    e->end = PKC_END_TIMEOUT;
    /* Ended by a signal, exited on the soft signal (code), or unknown. */
    e->signal = i / 8 % 3 == 0 ? 15 : 0;
    e->code = i / 8 % 3 == 1 ? 42 : -1;
    break;
  default:
    e->end = PKC_END_ERROR;
    e->error = i % 2 ? PK_ENOENT : PK_ECASSETTE_MISS;
    e->os_errno = i % 2 ? ENOENT : (i % 3 ? 4095 : 0);
    e->stage = i % 2 ? xstrdup("lookup") : NULL;
    e->errmsg = i % 2 ? xstrdup(tricky[i % NTRICKY]) : NULL;
  }
  e->duration_us = (int64_t)(i * 1234567 % 100000007);
  e->total_bytes[PK_STDOUT] = i * 11;
  e->total_lines[PK_STDOUT] = i;
  e->total_bytes[PK_STDERR] = UINT64_C(1) << 40;
  e->total_lines[PK_STDERR] = 0;
  e->truncated = i % 2 == 1;
  e->incomplete = i % 3 == 1;
  if (i % 2 == 1) {
    static const char *const ph[] = {"pk.cwd", "pk.home", "GH_TOKEN"};
    e->placeholders = strv(3, ph);
    e->nplaceholders = 3;
  }
  if (i % 6 == 5)
    return; /* no events */
  for (size_t k = 0; k < NTRICKY; k++)
    add_event(e, (pkc_event_kind)(k % 3 + 1), (int64_t)(k * 1001 + i),
              tricky[k], strlen(tricky[k]));
  static const char bin[] = "\0\x01\xff\xfe";
  add_event(e, PKC_EV_STDOUT, 0, bin, sizeof(bin) - 1); /* NUL first */
  add_event(e, PKC_EV_STDERR, 1, "a\0b", 3);            /* NUL inside */
  add_event(e, PKC_EV_STDOUT, 2, "\xc3", 1);            /* cut UTF-8 */
  add_event(e, PKC_EV_STDIN, 3, "\xed\xa0\x80", 3);     /* surrogate */
  add_event(e, PKC_EV_STDOUT, 4, "\xc0\x80", 2);        /* overlong */
  add_event(e, PKC_EV_STDERR, 5, "latin1 caf\xe9\r\n", 13);
  add_event(e, PKC_EV_STDOUT, INT64_MAX / 1000 * 1000, "late", 4);
}

static pkc_file *rich_file(size_t n) {
  pkc_file *f = pkc_file_new();
  assert_non_null(f);
  f->pk_version = xstrdup("0.1.0");
  f->frozen = n % 2 == 1;
  for (size_t i = 0; i < n; i++) {
    pkc_entry e;
    memset(&e, 0, sizeof(e));
    fill_entry(&e, i);
    assert_int_equal(pkc_file_add(f, &e, false), 0);
    assert_null(e.program); /* taken */
  }
  return f;
}

/* ------------------------------------------------------------ model */

static void utf8_prefix(void **state) {
  (void)state;
  struct {
    const char *s;
    size_t len, want;
  } cases[] = {
      {"", 0, 0},
      {"abc", 3, 3},
      {"caf\xc3\xa9", 5, 5},
      {"a\0b", 3, 1},             /* NUL */
      {"a\xc3", 2, 1},            /* cut */
      {"\xc0\x80", 2, 0},         /* overlong NUL */
      {"\xe0\x80\xaf", 3, 0},     /* overlong / */
      {"\xed\xa0\x80", 3, 0},     /* surrogate */
      {"\xed\x9f\xbf", 3, 3},     /* U+D7FF */
      {"\xf4\x8f\xbf\xbf", 4, 4}, /* U+10FFFF */
      {"\xf4\x90\x80\x80", 4, 0}, /* past U+10FFFF */
      {"\xf5\x80\x80\x80", 4, 0},
      {"ok\x80", 3, 2},            /* stray continuation */
      {"\xf0\x9f\x98\x80!", 5, 5}, /* emoji */
      {"\xf0\x9f\x98", 3, 0},
      {"\xe2\x82\xac\xe2\x82", 5, 3},
  };
  for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
    if (pkc_utf8_valid_prefix(cases[i].s, cases[i].len) != cases[i].want)
      fail_msg("case %zu: %zu, want %zu", i,
               pkc_utf8_valid_prefix(cases[i].s, cases[i].len), cases[i].want);
}

static void name_tables(void **state) {
  (void)state;
  assert_string_equal(pkc_errno_name(ENOENT), "ENOENT");
  assert_string_equal(pkc_errno_name(E2BIG), "E2BIG");
  assert_string_equal(pkc_errno_name(EXDEV), "EXDEV");
  assert_string_equal(pkc_errno_name(EAGAIN), "EAGAIN");
  /* The host's numbers: an alias of EAGAIN on Linux, a number of its own
   * in the Windows C runtime (140). */
  assert_int_equal(pkc_errno_parse("EWOULDBLOCK"), EWOULDBLOCK);
#if EWOULDBLOCK == EAGAIN
  assert_int_equal(pkc_errno_parse("EWOULDBLOCK"), EAGAIN);
#endif
  assert_int_equal(pkc_errno_parse("EMFILE"), EMFILE);
  assert_null(pkc_errno_name(0));
  assert_null(pkc_errno_name(4095));
  assert_int_equal(pkc_errno_parse("ENOPE"), -1);
  assert_int_equal(pkc_errno_parse(NULL), -1);
  for (int e = 1; e < 200; e++) { /* both ways agree (Windows: to 140) */
    const char *n = pkc_errno_name(e);
    if (n != NULL)
      assert_int_equal(pkc_errno_parse(n), e);
  }
  assert_string_equal(pk_signal_name(9), "SIGKILL");
  assert_int_equal(pk_signal_parse("SIGTERM"), 15);
  assert_null(pk_signal_name(0));
  assert_int_equal(pkc_error_parse("not_found"), PK_ENOENT);
  assert_int_equal(pkc_error_parse("cassette_invalid"), PK_ECASSETTE_INVALID);
  assert_int_equal(pkc_error_parse("timeout"), PK_ETIMEOUT);
  assert_int_equal(pkc_error_parse("ok"), 0);
  assert_int_equal(pkc_error_parse("nope"), 0);
  assert_int_equal(pkc_error_parse(NULL), 0);
}

static void sha256_and_shapes(void **state) {
  (void)state;
  char hex[65];
  pkc_sha256_hex("", 0, hex);
  assert_string_equal(hex, EMPTY_SHA);
  pkc_sha256_hex("abc", 3, hex);
  assert_string_equal(
      hex, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  assert_true(pkc_hex64_valid(hex));
  hex[3] = 'A';
  assert_false(pkc_hex64_valid(hex));
  assert_false(pkc_hex64_valid("abc"));
  assert_true(pkc_timestamp_valid("2026-11-29T12:00:00Z"));
  assert_true(pkc_timestamp_valid("2026-11-29T12:00:00.123Z"));
  assert_false(pkc_timestamp_valid("2026-11-29T12:00:00.Z"));
  assert_false(pkc_timestamp_valid("2026-11-29 12:00:00Z"));
  assert_false(pkc_timestamp_valid("2026-11-29T12:00:00+01:00"));
  assert_false(pkc_timestamp_valid("2026-11-29T12:00:00Zjunk"));
}

static void copy_and_equal(void **state) {
  (void)state;
  pkc_file *f = rich_file(12);
  for (size_t i = 0; i < f->nentries; i++) {
    pkc_entry c;
    assert_int_equal(pkc_entry_copy(&c, &f->entries[i]), 0);
    assert_true(pkc_entry_equal(&c, &f->entries[i], false));
    assert_ptr_not_equal(c.program, f->entries[i].program);
    c.duration_us++;
    assert_false(pkc_entry_equal(&c, &f->entries[i], false));
    assert_true(pkc_entry_equal(&c, &f->entries[i], true));
    if (c.nevents != 0) {
      c.events[0].t_us++;
      assert_true(pkc_entry_equal(&c, &f->entries[i], true));
      c.events[c.nevents - 1].data[0] ^= 1;
      assert_false(pkc_entry_equal(&c, &f->entries[i], true));
    }
    pkc_entry_clear(&c);
    assert_null(c.program);
  }
  pkc_entry_clear(NULL);
  pkc_file_free(NULL);
  pkc_file_free(f);
}

/* ------------------------------------------------------------ round trip */

static void round_trip_rich(void **state) {
  (void)state;
  pkc_file *f = rich_file(64);
  check_round_trip(f);
  pkc_file_free(f);
  f = pkc_file_new(); /* empty */
  check_round_trip(f);
  f->frozen = true;
  check_round_trip(f);
  pkc_file_free(f);
}

static void writer_shape(void **state) {
  (void)state;
  pkc_file *f = rich_file(7);
  char *s;
  size_t n;
  assert_int_equal(pkc_emit(f, &s, &n), 0);
  assert_int_equal(strlen(s), n);
  static const char head[] =
      "# processkit cassette: see docs/cassette-format.md\n"
      "version: 1\npk: \"0.1.0\"\nfrozen: true\nentries:\n";
  assert_memory_equal(s, head, sizeof(head) - 1);
  /* One run or chunk per line, strings double-quoted, no folding. */
  assert_non_null(strstr(s, "\n  exit: {code: 0}\n"));
  assert_non_null(strstr(s, "\n  exit: {code: -1}\n"));
  assert_non_null(strstr(s, "\n  exit: {signal: 9, name: \"SIGKILL\"}\n"));
  assert_non_null(strstr(s, "\n  exit: {timed_out: true, signal: 15, name: "
                            "\"SIGTERM\"}\n"));
  assert_non_null(strstr(s, "{t: 0, stdout_base64: \"AAH//g==\"}\n"));
  assert_non_null(strstr(s, "{t: 1.001, stderr: \"plain\"}\n"));
  assert_non_null(strstr(s, "\"CR\\r\""));
  assert_non_null(strstr(s, "\"NEL\\Nhere\""));
  assert_non_null(strstr(s, "\"LS\\LPS\\P\""));
  assert_non_null(strstr(s, "\"trailing spaces   \""));
  assert_non_null(strstr(s, "\n  truncated: true\n"));
  assert_null(strstr(s, "truncated: false"));
  assert_non_null(strstr(s, "\n  events:\n  - {t: "));
  pk_free(s);
  pkc_file_free(f);
}

static void writer_refuses_what_it_cannot_write(void **state) {
  (void)state;
  pkc_file *f = rich_file(1);
  char *s = (char *)1;
  size_t n = 1;
  pkc_entry *e = &f->entries[0];
  char *old = e->program;
  e->program = xstrdup("latin1 caf\xe9"); /* not UTF-8: args have no base64 */
  assert_int_equal(pkc_emit(f, &s, &n), PK_EINVAL);
  assert_null(s);
  assert_int_equal(n, 0);
  pk_free(e->program);
  e->program = old;
  e->end = PKC_END_ERROR;
  e->error = -12345; /* no stable name */
  assert_int_equal(pkc_emit(f, &s, &n), PK_EINVAL);
  e->end = PKC_END_EXIT;
  e->duration_us = -1;
  assert_int_equal(pkc_emit(f, &s, &n), PK_EINVAL);
  e->duration_us = 0;
  e->stdin_kind = PKC_STDIN_BYTES;
  strcpy(e->stdin_sha256, "nothex");
  assert_int_equal(pkc_emit(f, &s, &n), PK_EINVAL);
  pkc_file_free(f);
}

/* Numbers at the edges of their ranges, and ms precision. */
static void reader_numbers(void **state) {
  (void)state;
  static const char doc[] =
      "version: 1\n"
      "entries:\n"
      "- program: \"x\"\n"
      "  args: []\n"
      "  stdin: {sha256: \"" EMPTY_SHA "\", bytes: 9223372036854775807}\n"
      "  exit: {code: -2147483648}\n"
      "  duration_ms: 0.001\n"
      "  output: {stdout_bytes: 0, stdout_lines: 0, stderr_bytes: 0, "
      "stderr_lines: 0}\n"
      "  events:\n"
      "  - {t: 9223372036854775, stdout: \"\"}\n"
      "  - {t: 12.5, stdin_base64: \"AA==\"}\n"
      "- program: \"y\"\n"
      "  args:\n"
      "  - \"a\"\n"
      "  - 'single ''quoted'''\n"
      "  - |-\n"
      "    block\n"
      "  stdin: {terminal: true}\n"
      "  exit: {error: \"timeout\", errno: 110, errno_name: \"ENOENT\"}\n"
      "  duration_ms: 10.25\n"
      "  output: {stdout_bytes: 0, stdout_lines: 0, stderr_bytes: 0, "
      "stderr_lines: 0}\n";
  pkc_file *f = parse_ok("numbers", doc, sizeof(doc) - 1);
  assert_int_equal(f->nentries, 2);
  pkc_entry *e = &f->entries[0];
  assert_int_equal(e->stdin_bytes, UINT64_C(9223372036854775807));
  assert_int_equal(e->code, INT_MIN);
  assert_int_equal(e->duration_us, 1);
  assert_int_equal(e->events[0].t_us, INT64_C(9223372036854775000));
  assert_int_equal(e->events[1].t_us, 12500);
  assert_int_equal(e->events[1].kind, PKC_EV_STDIN);
  assert_int_equal(e->events[1].len, 1);
  e = &f->entries[1];
  assert_string_equal(e->args[1], "single 'quoted'");
  assert_string_equal(e->args[2], "block");
  assert_int_equal(e->error, PK_ETIMEOUT);
  assert_int_equal(e->os_errno, ENOENT); /* the name wins */
  assert_int_equal(e->duration_us, 10250);
  check_round_trip(f);
  pkc_file_free(f);
}

/* ------------------------------------------------------------ hostile */

#define ENTRY_HEAD                                                             \
  "version: 1\n"                                                               \
  "entries:\n"                                                                 \
  "- program: \"x\"\n"                                                         \
  "  args: []\n"
#define ENTRY_REST                                                             \
  "  stdin: {sha256: \"" EMPTY_SHA "\", bytes: 0}\n"                           \
  "  exit: {code: 0}\n"                                                        \
  "  duration_ms: 1\n"                                                         \
  "  output: {stdout_bytes: 0, stdout_lines: 0, stderr_bytes: 0, "             \
  "stderr_lines: 0}\n"
#define WITH_EVENT(ev) ENTRY_HEAD ENTRY_REST "  events:\n  - " ev "\n"

typedef struct bad_case {
  const char *doc;
  const char *where; /* "LINE:COL" */
  const char *what;  /* a part of the message */
} bad_case;

static const bad_case bad[] = {
    {"", "1:1", "the file is empty"},
    {"# only a comment\n", "2:1", "the file is empty"},
    {"- 1\n", "1:1", "a cassette is a mapping"},
    {"version: 1\nentries: []\n---\nversion: 1\n", "3:1", "one YAML document"},
    {"entries: []\n", "1:1", "version must be the first key"},
    {"pk: \"0.1.0\"\nversion: 1\n", "1:1", "version must be the first key"},
    {"{}\n", "1:2", "no version"},
    {"version: 99\nentries: [{nobody: knows}]\n", "1:10",
     "unsupported cassette format version 99 (upgrade pk to read it; this "
     "pk reads format versions 1..1)"},
    {"version: 0\n", "1:10", "unsupported cassette format version 0"},
    {"version: \"1\"\n", "1:10", "version must be an integer, found a quoted"},
    {"version: 1\nfoo: 1\n", "2:1",
     "unknown key 'foo' in the cassette (a newer pk? this pk reads format "
     "versions 1..1)"},
    {"garbage: [\n", "1:1",
     "not a cassette: the first key must be 'version', found 'garbage'"},
    {"version: 1\nversion: 1\n", "2:1", "duplicate key 'version'"},
    {"version: 1\nfrozen: yes\n", "2:9", "frozen must be true or false"},
    {"version: 1\nfrozen: \"true\"\n", "2:9", "frozen must be true or false"},
    {"version: 1\nentries: {}\n", "2:10", "entries must be a sequence"},
    {"version: 1\n[a]: 1\n", "2:1", "a key in the cassette must be a word"},
    {"version: &v 1\n", "1:10", "anchor '&v' not allowed"},
    {"version: 1\nentries: &e []\n", "2:10", "anchor '&e' not allowed"},
    {"version: 1\npk: *x\n", "2:5", "alias '*x' not allowed"},
    {"version: !!int 1\n", "1:10", "tag 'tag:yaml.org,2002:int' not allowed"},
    {"version: 1\npk: !!str \"a\"\n", "2:5", "tag 'tag:yaml.org,2002:str'"},
    {"version: 1\npk: ! \"a\"\n", "2:5", "tag '!' not allowed"},
    {"!!map\nversion: 1\n", "1:1", "tag 'tag:yaml.org,2002:map'"},
    {"version: 1\npk: \"unterminated\n", "3:1",
     "found unexpected end of stream while scanning a quoted scalar (at "
     "2:5; not valid YAML)"},
    {"version: 1\n- y\n", "2:1",
     "did not find expected key while parsing a block mapping (at 1:1; not "
     "valid YAML)"},
    {"version: 1\npk: \"caf\xe9\"\n", "2:9", "invalid trailing UTF-8 octet"},
    {"version: 1\npk: \"\xff\"\n", "2:6", "invalid leading UTF-8 octet"},
    {"version: 1\npk: \"\x01\"\n", "2:6", "control characters are not"},
    {"version: 1\npk: plain\n", "2:5",
     "pk must be a quoted string, found plain 'plain' (quote string values)"},
    {"version: 1\npk: null\n", "2:5", "found plain 'null'"},
    {"version: 1\npk:\n", "2:4", "found plain ''"},
    {"version: 1\npk: \"a\\0b\"\n", "2:5", "pk contains a NUL character"},
    /* entries */
    {"version: 1\nentries: [1]\n", "2:11", "an entry must be a mapping"},
    {"version: 1\nentries:\n- program: \"x\"\n", "3:3",
     "the entry has no 'args'"},
    {ENTRY_HEAD "  args: []\n", "5:3", "duplicate key 'args' in an entry"},
    {ENTRY_HEAD "  retries: 3\n", "5:3",
     "unknown key 'retries' in an entry (a newer pk? this pk reads format "
     "versions 1..1)"},
    {"version: 1\nentries:\n- program: \"x\"\n  args: \"a b\"\n", "4:9",
     "args must be a sequence of strings, found a quoted string"},
    {"version: 1\nentries:\n- program: \"x\"\n  args: [\"a\", 1]\n", "4:15",
     "args must be a quoted string, found plain '1'"},
    {"version: 1\nentries:\n- program: \"x\"\n  args: [[\"a\"]]\n", "4:10",
     "args must be a quoted string, found a sequence"},
    {"version: 1\nentries:\n- program: ~\n", "3:12", "found plain '~'"},
    {ENTRY_HEAD "  recorded_at: \"yesterday\"\n", "5:16",
     "recorded_at is not a UTC timestamp"},
    {ENTRY_HEAD "  env_digest: \"abc\"\n", "5:15",
     "env_digest is not a sha256 digest"},
    {ENTRY_HEAD "  stdin: {sha256: \"" EMPTY_SHA "\"}\n", "5:10",
     "stdin has the wrong set of keys"},
    {ENTRY_HEAD "  stdin: {terminal: false}\n", "5:21",
     "terminal: false is not allowed"},
    {ENTRY_HEAD "  stdin: {terminal: true, inherit: true}\n", "5:10",
     "stdin has the wrong set of keys"},
    {ENTRY_HEAD "  stdin: {sha256: \"E3B0C44298FC1C149AFBF4C8996FB92427AE41E"
                "4649B934CA495991B7852B855\", bytes: 0}\n",
     "5:19", "stdin.sha256 is not a sha256 digest"},
    {ENTRY_HEAD "  stdin: {sha256: \"" EMPTY_SHA "\", bytes: -1}\n", "5:94",
     "stdin.bytes must be a non-negative integer"},
    {ENTRY_HEAD "  exit: {code: \"0\"}\n", "5:16",
     "exit.code must be an integer, found a quoted string (do not quote it)"},
    {ENTRY_HEAD "  exit: {code: 1.5}\n", "5:16", "exit.code must be an"},
    {ENTRY_HEAD "  exit: {code: 0x10}\n", "5:16", "exit.code must be an"},
    {ENTRY_HEAD "  exit: {code: 010}\n", "5:16", "exit.code must be an"},
    {ENTRY_HEAD "  exit: {code: +1}\n", "5:16", "exit.code must be an"},
    {ENTRY_HEAD "  exit: {code: 2147483648}\n", "5:16",
     "exit.code 2147483648 is out of range (-2147483648..2147483647)"},
    {ENTRY_HEAD "  exit: {code: -99999999999999999999}\n", "5:16",
     "out of range"},
    {ENTRY_HEAD "  exit: {}\n", "5:9",
     "exit needs one of code, signal, timed_out or error"},
    {ENTRY_HEAD "  exit: {code: 0, signal: 9}\n", "5:9",
     "exit.signal does not go with this kind of exit"},
    {ENTRY_HEAD "  exit: {code: 0, message: \"m\"}\n", "5:9",
     "exit.message does not go with"},
    {ENTRY_HEAD "  exit: {timed_out: false}\n", "5:21",
     "exit.timed_out: false is not allowed"},
    {ENTRY_HEAD "  exit: {timed_out: true, code: 42, signal: 15}\n", "5:9",
     "exit.code does not go with exit.signal"},
    {ENTRY_HEAD "  exit: {signal: -1}\n", "5:18",
     "exit.signal cannot be negative"},
    {ENTRY_HEAD "  exit: {code: 0, name: \"SIGKILL\"}\n", "5:9",
     "exit.name needs exit.signal"},
    {ENTRY_HEAD "  exit: {error: \"exploded\"}\n", "5:9",
     "unknown error name 'exploded' (a newer pk?"},
    {ENTRY_HEAD "  exit: {error: \"io\", errno_name: \"EWHAT\"}\n", "5:9",
     "unknown errno name 'EWHAT'"},
    {ENTRY_HEAD "  exit: {code: 0}\n  duration_ms: -1\n", "6:16",
     "duration_ms must be a non-negative number"},
    {ENTRY_HEAD "  exit: {code: 0}\n  duration_ms: 1.2345\n", "6:16",
     "at most 3 decimals"},
    {ENTRY_HEAD "  exit: {code: 0}\n  duration_ms: .inf\n", "6:16",
     "duration_ms must be a non-negative number"},
    {ENTRY_HEAD "  exit: {code: 0}\n  duration_ms: nan\n", "6:16",
     "duration_ms must be a non-negative number"},
    {ENTRY_HEAD "  exit: {code: 0}\n  duration_ms: 1e3\n", "6:16",
     "duration_ms must be a non-negative number"},
    {ENTRY_HEAD "  exit: {code: 0}\n  duration_ms: 1.\n", "6:16",
     "duration_ms must be a non-negative number"},
    {ENTRY_HEAD "  exit: {code: 0}\n  duration_ms: 9223372036854776\n", "6:16",
     "duration_ms 9223372036854776 is out of range"},
    {ENTRY_HEAD "  output: {stdout_bytes: 0}\n", "5:11",
     "output.stdout_lines is missing"},
    {ENTRY_HEAD "  truncated: 1\n", "5:14", "truncated must be true or false"},
    {ENTRY_HEAD "  placeholders: \"pk.cwd\"\n", "5:17",
     "placeholders must be a sequence of strings"},
    /* events */
    {WITH_EVENT("{t: 1}"), "10:5",
     "an event needs stdout, stderr or stdin data"},
    {WITH_EVENT("{stdout: \"a\"}"), "10:5", "an event needs t"},
    {WITH_EVENT("{t: 1, stdout: \"a\", stderr: \"b\"}"), "10:25",
     "an event has one data key"},
    {WITH_EVENT("{t: 1, stdout: \"a\", stdout: \"b\"}"), "10:25",
     "duplicate key 'stdout' in an event"},
    {WITH_EVENT("{t: 1, stdout: hello}"), "10:20",
     "stdout must be a quoted string, found plain 'hello'"},
    {WITH_EVENT("{t: 1, stdout: !!binary \"aGk=\"}"), "10:20",
     "tag 'tag:yaml.org,2002:binary' not allowed"},
    {WITH_EVENT("{t: 1, stdout_base64: \"not base64!\"}"), "10:27",
     "stdout_base64 is not valid base64 (standard alphabet, padded, no "
     "spaces)"},
    {WITH_EVENT("{t: 1, stdout_base64: \"aGk\"}"), "10:27", "not valid base64"},
    {WITH_EVENT("{t: 1, stdout_base64: \"aGl=\"}"), "10:27",
     "not valid base64"},
    {WITH_EVENT("{t: 1, stdout_base64: \"aG k=\"}"), "10:27",
     "not valid base64"},
    {WITH_EVENT("{t: 1, stdout_base64: \"aGk=aGk=\"}"), "10:27",
     "not valid base64"},
    {WITH_EVENT("{t: 1, stdout_base64: aGk=}"), "10:27", "found plain"},
    {WITH_EVENT("\"t\""), "10:5", "an event must be a mapping"},
    {WITH_EVENT("{t: \"1\", stdout: \"\"}"), "10:9",
     "t must be a number of milliseconds, found a quoted string"},
    {WITH_EVENT("{t: 1, stdout: \"a\", more: 1}"), "10:25",
     "unknown key 'more' in an event"},
};

static void hostile_inline(void **state) {
  (void)state;
  int failures = 0;
  for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
    pkc_file *f = (pkc_file *)1;
    pkc_error err;
    char want[64];
    int rc = pkc_parse("t.yaml", bad[i].doc, strlen(bad[i].doc), &f, &err);
    snprintf(want, sizeof(want), "t.yaml:%s: ", bad[i].where);
    size_t line = 0, col = 0;
    assert_int_equal(sscanf(bad[i].where, "%zu:%zu", &line, &col), 2);
    if (rc != PK_ECASSETTE_INVALID || f != NULL || err.code != rc ||
        strncmp(err.msg, want, strlen(want)) != 0 ||
        strstr(err.msg, bad[i].what) == NULL || err.line != line ||
        err.column != col) {
      print_error("case %zu: rc %d, message '%s'; want %s ... %s\n%s\n", i, rc,
                  err.msg, want, bad[i].what, bad[i].doc);
      failures++;
    }
  }
  assert_int_equal(failures, 0);
}

typedef struct bad_file {
  const char *name;
  const char *where;
  const char *what;
} bad_file;

/* The committed hostile cassettes; each must be refused at its first
 * offending byte, quickly (the bomb never expands, the nesting never
 * grows past the schema's depth) and without reading the rest. */
static void hostile_fixtures(void **state) {
  (void)state;
  static const bad_file files[] = {
      {"alias_bomb.yaml", "5:5", "anchor '&a' not allowed"},
      {"deep.yaml", "2:11", "an entry must be a mapping, found a sequence"},
      {"duplicate_key.yaml", "7:3", "duplicate key 'exit' in an entry"},
      {"unknown_key.yaml", "9:3",
       "unknown key 'retries' in an entry (a "
       "newer pk? this pk reads format versions "
       "1..1)"},
      {"version99.yaml", "1:10",
       "unsupported cassette format version 99 "
       "(upgrade pk"},
      {"tag.yaml", "10:20", "tag 'tag:yaml.org,2002:binary' not allowed"},
      {"invalid_utf8.yaml", "3:16", "invalid trailing UTF-8 octet"},
      {"bad_base64.yaml", "10:27", "stdout_base64 is not valid base64"},
  };
  for (size_t i = 0; i < sizeof(files) / sizeof(files[0]); i++) {
    char path[512], want[600];
    snprintf(path, sizeof(path), "%s/hostile/%s", FIXTURES, files[i].name);
    snprintf(want, sizeof(want), "%s:%s: ", path, files[i].where);
    pkc_file *f = (pkc_file *)1;
    pkc_error err;
    int rc = pkc_load(path, &f, &err);
    if (rc != PK_ECASSETTE_INVALID || f != NULL ||
        strncmp(err.msg, want, strlen(want)) != 0 ||
        strstr(err.msg, files[i].what) == NULL)
      fail_msg("%s: rc %d, '%s'; want %s... %s", files[i].name, rc, err.msg,
               want, files[i].what);
  }
}

/* Depth past the schema's own, in every container the reader walks. */
static void deep_nesting_generated(void **state) {
  (void)state;
  size_t depth = 10000;
  char *doc = malloc(4 * depth + 64);
  assert_non_null(doc);
  /* Block style this time: "- - - ..." one level per line. */
  int n = sprintf(doc, "version: 1\nentries:\n");
  for (size_t i = 0; i < depth; i++)
    n += sprintf(doc + n, "- ");
  n += sprintf(doc + n, "x\n");
  pkc_file *f;
  pkc_error err;
  assert_int_equal(pkc_parse("deep", doc, (size_t)n, &f, &err),
                   PK_ECASSETTE_INVALID);
  assert_string_equal(err.msg, "deep:3:3: an entry must be a mapping, found "
                               "a sequence");
  /* With a lower depth limit the depth check itself speaks first. */
  pkc_limits lim = {PKC_MAX_FILE_BYTES, PKC_MAX_SCALAR_BYTES, 4,
                    PKC_MAX_EVENTS};
  static const char ok[] = WITH_EVENT("{t: 1, stdout: \"a\"}");
  assert_int_equal(pkc_parse_limited("d", ok, sizeof(ok) - 1, &lim, &f, &err),
                   PK_ECASSETTE_INVALID);
  assert_string_equal(err.msg, "d:10:5: nesting deeper than 4 levels (a "
                               "cassette nests 5 levels deep)");
  lim.max_depth = 5;
  assert_int_equal(pkc_parse_limited("d", ok, sizeof(ok) - 1, &lim, &f, &err),
                   0);
  pkc_file_free(f);
  free(doc);
}

static void limits(void **state) {
  (void)state;
  pkc_file *f = (pkc_file *)1;
  pkc_error err;
  static const char doc[] =
      WITH_EVENT("{t: 1, stdout: \"0123456789\"}") "  - "
                                                   "{t: 2, stdout: \"x\"}\n";
  pkc_limits lim = {sizeof(doc) - 2, 64, PKC_MAX_DEPTH, 2};
  assert_int_equal(pkc_parse_limited("l", doc, sizeof(doc) - 1, &lim, &f, &err),
                   PK_ECASSETTE_INVALID);
  assert_null(f);
  assert_int_equal(err.line, 0);
  char want[160];
  snprintf(want, sizeof(want),
           "l: %zu bytes is over the limit of %zu for a cassette (split it "
           "into several cassettes)",
           sizeof(doc) - 1, sizeof(doc) - 2);
  assert_string_equal(err.msg, want);
  lim.max_file_bytes = sizeof(doc) - 1;
  assert_int_equal(pkc_parse_limited("l", doc, sizeof(doc) - 1, &lim, &f, &err),
                   0);
  pkc_file_free(f);
  lim.max_scalar_bytes = 63; /* the sha256 is the longest */
  assert_int_equal(pkc_parse_limited("l", doc, sizeof(doc) - 1, &lim, &f, &err),
                   PK_ECASSETTE_INVALID);
  assert_string_equal(err.msg, "l:5:19: a scalar of 64 bytes is over the "
                               "limit of 63 (split the output or lower the "
                               "recording cap)");
  lim.max_scalar_bytes = 64;
  lim.max_events = 1;
  assert_int_equal(pkc_parse_limited("l", doc, sizeof(doc) - 1, &lim, &f, &err),
                   PK_ECASSETTE_INVALID);
  assert_string_equal(err.msg, "l:11:5: more than 1 events (split the "
                               "cassette)");
  /* The real file limit, on a sparse 1 GiB file: refused by its size
   * before a byte is read. */
  char dir[1024], path[1100];
  snprintf(dir, sizeof(dir), "%s/pk-cassette-big-XXXXXX", pkt_tmpdir());
  pkt_mkdtemp(dir);
  snprintf(path, sizeof(path), "%s/big.yaml", dir);
  int fd =
      pk__fd_open(path, UV_FS_O_WRONLY | UV_FS_O_CREAT | UV_FS_O_EXCL, 0600);
  assert_true(fd >= 0);
  uv_fs_t req;
  assert_int_equal(uv_fs_ftruncate(NULL, &req, fd, INT64_C(1) << 30, NULL), 0);
  uv_fs_req_cleanup(&req);
  PKT_ASSERT_OK(pk__fd_close(fd));
  assert_int_equal(pkc_load(path, &f, &err), PK_ECASSETTE_INVALID);
  assert_null(f);
  assert_non_null(strstr(err.msg, ": 1073741824 bytes is over the limit of "
                                  "268435456 for a cassette"));
  assert_int_equal(uv_fs_unlink(NULL, &req, path, NULL), 0);
  uv_fs_req_cleanup(&req);
  assert_int_equal(uv_fs_rmdir(NULL, &req, dir, NULL), 0);
  uv_fs_req_cleanup(&req);
}

/* The real scalar limit: one 64 MiB + 1 byte string, refused. */
static void scalar_limit_real(void **state) {
  (void)state;
  size_t n = PKC_MAX_SCALAR_BYTES + 1;
  static const char head[] = "version: 1\npk: \"";
  char *doc = malloc(sizeof(head) + n + 8);
  assert_non_null(doc);
  memcpy(doc, head, sizeof(head) - 1);
  memset(doc + sizeof(head) - 1, 'a', n);
  memcpy(doc + sizeof(head) - 1 + n, "\"\n", 2);
  pkc_file *f;
  pkc_error err;
  assert_int_equal(pkc_parse("big", doc, sizeof(head) - 1 + n + 2, &f, &err),
                   PK_ECASSETTE_INVALID);
  assert_string_equal(err.msg, "big:2:5: a scalar of 67108865 bytes is over "
                               "the limit of 67108864 (split the output or "
                               "lower the recording cap)");
  free(doc);
}

static void load_errors(void **state) {
  (void)state;
  pkc_file *f = (pkc_file *)1;
  pkc_error err;
  assert_int_equal(pkc_load(FIXTURES "/no-such.yaml", &f, &err),
                   PK_ECASSETTE_NOT_FOUND);
  assert_null(f);
  assert_int_equal(err.code, PK_ECASSETTE_NOT_FOUND);
  assert_string_equal(err.msg, FIXTURES "/no-such.yaml: no such cassette file");
  assert_int_equal(pkc_load(FIXTURES "/git.yaml/x", &f, &err),
                   PK_ECASSETTE_NOT_FOUND);
  assert_int_equal(pkc_load(FIXTURES, &f, &err), PK_ECASSETTE_INVALID);
  assert_non_null(strstr(err.msg, "not a regular file"));
  assert_int_equal(pkc_parse(NULL, "", 0, &f, &err), PK_ECASSETTE_INVALID);
  assert_string_equal(err.msg, "<cassette>:1:1: the file is empty (a "
                               "cassette starts with version: 1)");
}

/* ------------------------------------------------------------ fixtures */

static void golden_fixtures(void **state) {
  (void)state;
  pkc_file *f = load_ok(FIXTURES "/git.yaml");
  assert_true(f->frozen);
  assert_string_equal(f->pk_version, "0.1.0");
  assert_int_equal(f->nentries, 4);
  assert_string_equal(f->entries[0].program, "git");
  assert_string_equal(f->entries[0].args[0], "rev-parse");
  assert_int_equal(f->entries[0].duration_us, 3250);
  assert_int_equal(f->entries[2].code, 1);
  assert_int_equal(f->entries[2].events[0].kind, PKC_EV_STDERR);
  assert_int_equal(f->entries[2].events[0].len,
                   f->entries[2].total_bytes[PK_STDERR]);
  assert_string_equal(f->entries[3].placeholders[0], "GH_TOKEN");
  check_round_trip(f);
  pkc_file_free(f);

  f = load_ok(FIXTURES "/binary.yaml");
  assert_true(f->frozen);
  assert_int_equal(f->entries[0].events[0].len, 7);
  assert_memory_equal(f->entries[0].events[0].data, "\0\xff\xfe\x80\xc3\xa8)",
                      7);
  assert_string_equal(f->entries[1].events[0].data, "progress\r50%\rdone  \n");
  assert_int_equal(f->entries[2].stdin_bytes, 2);
  check_round_trip(f);
  pkc_file_free(f);

  f = load_ok(FIXTURES "/errors.yaml");
  assert_true(f->frozen);
  assert_int_equal(f->entries[0].end, PKC_END_ERROR);
  assert_int_equal(f->entries[0].error, PK_ENOENT);
  assert_int_equal(f->entries[0].os_errno, ENOENT);
  assert_string_equal(f->entries[0].stage, "lookup");
  assert_int_equal(f->entries[1].end, PKC_END_TIMEOUT);
  assert_int_equal(f->entries[1].signal, 15);
  assert_int_equal(f->entries[1].stdin_kind, PKC_STDIN_INHERIT);
  assert_int_equal(f->entries[2].end, PKC_END_SIGNAL);
  assert_int_equal(f->entries[2].signal, 9);
  assert_true(f->entries[2].incomplete);
  assert_int_equal(f->entries[3].code, INT_MIN);
  assert_int_equal(f->entries[4].code, 70000);
  assert_true(f->entries[4].truncated);
  check_round_trip(f);
  pkc_file_free(f);
}

/* ------------------------------------------------------------ ENOMEM */

static struct { long fail_at, calls, live; } ta;

static void *ta_malloc(size_t n) {
  if (++ta.calls == ta.fail_at)
    return NULL;
  void *p = malloc(n);
  ta.live += p != NULL;
  return p;
}
static void *ta_realloc(void *p, size_t n) {
  if (++ta.calls == ta.fail_at)
    return NULL;
  void *q = realloc(p, n);
  ta.live += p == NULL && q != NULL;
  return q;
}
static void *ta_calloc(size_t n, size_t s) {
  if (++ta.calls == ta.fail_at)
    return NULL;
  void *p = calloc(n, s);
  ta.live += p != NULL;
  return p;
}
static void ta_free(void *p) {
  ta.live -= p != NULL;
  free(p);
}

static int ta_teardown(void **state) {
  (void)state;
  pk_replace_allocator(NULL, NULL, NULL, NULL);
  return 0;
}

/* Fail the Nth allocation of parse, emit and copy for every N: PK_ENOMEM,
 * nothing leaked, and the next attempt works. */
static void alloc_failure(void **state) {
  (void)state;
  static const char doc[] =
      WITH_EVENT("{t: 1, stdout_base64: \"AP8=\"}") "  - {t: 2, stderr: "
                                                    "\"x\"}\n";
  pk_replace_allocator(ta_malloc, ta_realloc, ta_calloc, ta_free);
  for (long n = 1;; n++) {
    ta.fail_at = n, ta.calls = 0, ta.live = 0;
    pkc_file *f = NULL;
    pkc_error err;
    int rc = pkc_parse("a", doc, sizeof(doc) - 1, &f, &err);
    if (rc == 0) {
      char *s = NULL;
      size_t len;
      rc = pkc_emit(f, &s, &len);
      pkc_entry c;
      if (rc == 0 && (rc = pkc_entry_copy(&c, &f->entries[0])) == 0)
        pkc_entry_clear(&c);
      pk_free(s);
      pkc_file_free(f);
      if (rc == 0 && ta.calls < n) {
        assert_int_equal(ta.live, 0);
        break; /* every allocation has been failed once */
      }
    } else {
      assert_null(f);
      assert_int_equal(err.code, PK_ENOMEM);
    }
    if (rc != 0 && rc != PK_ENOMEM)
      fail_msg("allocation %ld failed: %d", n, rc);
    assert_int_equal(ta.live, 0);
  }
  ta.fail_at = 0;
}

/* The C library's UTC calendar for s. Windows' gmtime_s knows no time
 * before 1970 (nor after 3000): the Gregorian calendar repeats every 400
 * years (146097 days, 12622780800 s), so an earlier time is asked 400
 * years later and the year moved back. */
static bool libc_gmtime(int64_t s, struct tm *tm) {
#if defined(_WIN32)
  const int64_t era = INT64_C(12622780800);
  int shift = 0;
  while (s < 0) {
    s += era;
    shift += 400;
  }
  time_t tt = (time_t)s;
  if (gmtime_s(tm, &tt) != 0)
    return false;
  tm->tm_year -= shift;
  return true;
#else
  time_t tt = (time_t)s;
  return gmtime_r(&tt, tm) != NULL;
#endif
}

/* recorded_at is written and read by pk's own calendar code (Windows has
 * no timegm or strptime): it agrees with the C library's gmtime over 800
 * years, both ways. */
static void utc_calendar(void **state) {
  (void)state;
  char buf[32], want[96];
  int64_t t = 0;
  pkc_utc_format(0, 0, buf);
  assert_string_equal(buf, "1970-01-01T00:00:00.000Z");
  pkc_utc_format(951782400 + 86399, 999, buf); /* the 2000 leap day */
  assert_string_equal(buf, "2000-02-29T23:59:59.999Z");
  assert_int_equal(pkc_utc_parse("2000-03-01T00:00:00Z", &t), 0);
  assert_int_equal(t, 951868800);
  assert_int_equal(pkc_utc_parse("2026-13-01T00:00:00Z", &t), -1);
  assert_int_equal(pkc_utc_parse("yesterday", &t), -1);
  assert_int_equal(pkc_utc_parse(NULL, &t), -1);
  for (int64_t s = -6000000000LL; s < 20000000000LL; s += 7777777) {
    struct tm tm;
    assert_true(libc_gmtime(s, &tm));
    snprintf(want, sizeof(want), "%04d-%02d-%02dT%02d:%02d:%02d.000Z",
             tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour,
             tm.tm_min, tm.tm_sec);
    pkc_utc_format(s, 0, buf);
    assert_string_equal(buf, want);
    assert_int_equal(pkc_utc_parse(buf, &t), 0);
    assert_int_equal(t, s);
  }
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(utf8_prefix),
      cmocka_unit_test(name_tables),
      cmocka_unit_test(utc_calendar),
      cmocka_unit_test(sha256_and_shapes),
      cmocka_unit_test(copy_and_equal),
      cmocka_unit_test(round_trip_rich),
      cmocka_unit_test(writer_shape),
      cmocka_unit_test(writer_refuses_what_it_cannot_write),
      cmocka_unit_test(reader_numbers),
      cmocka_unit_test(hostile_inline),
      cmocka_unit_test(hostile_fixtures),
      cmocka_unit_test(deep_nesting_generated),
      cmocka_unit_test(limits),
      cmocka_unit_test(scalar_limit_real),
      cmocka_unit_test(load_errors),
      cmocka_unit_test(golden_fixtures),
      cmocka_unit_test_teardown(alloc_failure, ta_teardown),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
