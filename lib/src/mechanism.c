/* Mechanism names (the same on every platform). */
#include "internal.h"

#include <string.h>

const char *pk_mechanism_name(pk_mechanism m) {
  switch (m) {
  case PK_MECH_CGROUP_V2:
    return "cgroup_v2";
  case PK_MECH_PROCESS_GROUP:
    return "process_group";
  case PK_MECH_JOB_OBJECT:
    return "job_object";
  default:
    return "auto";
  }
}

int pk_mechanism_parse(const char *name, pk_mechanism *out) {
  static const pk_mechanism all[] = {PK_MECH_AUTO, PK_MECH_CGROUP_V2,
                                     PK_MECH_PROCESS_GROUP, PK_MECH_JOB_OBJECT};
  if (name == NULL || out == NULL)
    return PK_EINVAL;
  for (size_t i = 0; i < sizeof(all) / sizeof(all[0]); i++) {
    if (strcmp(name, pk_mechanism_name(all[i])) == 0) {
      *out = all[i];
      return 0;
    }
  }
  return PK_EINVAL;
}
