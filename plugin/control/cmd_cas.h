#ifndef CM_CMD_CAS_H
#define CM_CMD_CAS_H
/* What the trust-list commands (cmd_cas.c) share with the commands that
 * bring a CRL (cmd_crls.c). Private to the control layer. */

#include <stdbool.h>

#include <cjson/cJSON.h>

#include "state.h"

/* A description of a trust-list entry, at most. */
#define CM_DESCRIPTION_MAX 256

/* A CA as listCAs shows it, or (full) as getCA does, its certificate in
 * format (pem or der); NULL when out of memory. The caller owns it. */
cJSON *cm_cas_json(const struct cm_ca *ca, bool full, const char *format);

/* The entry of t that the command's "id" names, of the kind wanted (1: a
 * pin, 0: a CA, -1: either); NULL with err set when there is none. */
const struct cm_ca *cm_cas_find_entry(const struct cm_tenant *t, const cJSON *cmd, int want_pinned, struct cm_err *err);

#endif
