/* Error names, messages and classifiers, all from PK_ERRNO_MAP. */
#include "internal.h"

#include <string.h>

/* Other OS errors, through libuv's reentrant variants: the plain ones
 * allocate (and leak) a string for every unknown code. */
static const char *os_text(int err, bool name) {
  static __thread char buf[96];
  if (err >= 0 || err <= -4096)
    return name ? "unknown" : "unknown error";
  if (name)
    uv_err_name_r(err, buf, sizeof(buf));
  else
    uv_strerror_r(err, buf, sizeof(buf));
  return buf;
}

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
    return os_text(err, false);
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
    return os_text(err, true);
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
