/* pk run --report FILE: a YAML summary of the run. */
#include "cli.h"

#include <errno.h>
#include <string.h>

/* YAML double-quoted scalar. */
static void yaml_str(FILE *f, const char *s) {
  fputc('"', f);
  for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
    if (*p == '"' || *p == '\\')
      fprintf(f, "\\%c", *p);
    else if (*p < 0x20 || *p == 0x7f)
      fprintf(f, "\\x%02x", *p);
    else
      fputc(*p, f);
  }
  fputc('"', f);
}

int write_report(const run_args *a, const pk_result *r) {
  FILE *f = fopen(a->report, "we");
  if (f == NULL)
    return fail(PK_EIO, "cannot write report %s: %s", a->report,
                strerror(errno));
  fputs("program: ", f);
  yaml_str(f, a->argv[0]);
  fputs("\nargs: [", f);
  for (int i = 1; i < a->argc; i++) {
    fputs(i > 1 ? ", " : "", f);
    yaml_str(f, a->argv[i]);
  }
  pk_outcome o = pk_result_outcome(r);
  fprintf(f, "]\noutcome: %s\n",
          o == PK_OUTCOME_NONE ? "null" : pk_outcome_name(o));
  if (pk_result_code(r) >= 0)
    fprintf(f, "code: %d\n", pk_result_code(r));
  else
    fputs("code: null\n", f);
  fprintf(f, "signal: %d\n", pk_result_signal(r));
  fprintf(f, "duration_ms: %lld\n", (long long)pk_result_duration_ms(r));
  fprintf(f, "mechanism: %s\n", pk_mechanism_name(pk_result_mechanism(r)));
  fprintf(f, "stdout_bytes: %llu\n",
          (unsigned long long)pk_result_total_bytes(r, PK_STDOUT));
  fprintf(f, "stderr_bytes: %llu\n",
          (unsigned long long)pk_result_total_bytes(r, PK_STDERR));
  fprintf(f, "output_incomplete: %s\n",
          pk_result_output_incomplete(r) ? "true" : "false");
  if (pk_result_error(r) != 0)
    fprintf(f, "error: %s\n", pk_err_name(pk_result_error(r)));
  if (fclose(f) != 0)
    return fail(PK_EIO, "cannot write report %s: %s", a->report,
                strerror(errno));
  return 0;
}
