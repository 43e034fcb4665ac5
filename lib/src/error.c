/* Error names, messages and classifiers, all from PK_ERRNO_MAP. */
#include "internal.h"

#include <string.h>

const char *pk_strerror(int err) {
  switch (err) {
#define PK__XX(suffix, value, name, msg)                                       \
  case PK_##suffix:                                                            \
    return msg;
    PK_ERRNO_MAP(PK__XX)
#undef PK__XX
  case 0:
    return "success";
  default:
    return err < 0 && err > -4096 ? uv_strerror(err) : "unknown error";
  }
}

const char *pk_err_name(int err) {
  switch (err) {
#define PK__XX(suffix, value, name, msg)                                       \
  case PK_##suffix:                                                            \
    return name;
    PK_ERRNO_MAP(PK__XX)
#undef PK__XX
  case 0:
    return "ok";
  default:
    return err < 0 && err > -4096 ? uv_err_name(err) : "unknown";
  }
}

bool pk_is_not_found(int err) { return err == PK_ENOENT; }
bool pk_is_timeout(int err) { return err == PK_ETIMEOUT; }
bool pk_is_exit(int err) { return err == PK_EEXIT || err == PK_ESIGNALLED; }
bool pk_is_unsupported(int err) { return err == PK_EUNSUPPORTED; }

bool pk_is_spawn_error(int err) {
  return err == PK_ENOENT || err == PK_EACCES || err == PK_ENOEXEC ||
         err == PK_EBADCWD || err == PK_ESPAWN;
}
