#ifndef CM_CMD_ENROLL_H
#define CM_CMD_ENROLL_H
/* What the enrollment commands (cmd_enroll.c, cmd_issuing.c) share with
 * the tenant and CA commands. Private to the control layer. */

#include <stdbool.h>

#include <cjson/cJSON.h>

#include "enroll.h"
#include "state.h"

/* modifyTenant's (and createTenant's) "enrollment" and
 * "requireProofOfPossession" into t; *changed tells whether either was
 * given. */
CM_MUST_CHECK enum cm_rc cm_cmd_enroll_fields(struct cm_tenant *t, const cJSON *cmd, bool *changed, struct cm_err *err);

/* The tenant's enrollment as getTenant shows it; NULL when out of memory. */
cJSON *cm_cmd_enroll_json(const struct cm_enroll *e);

/* addCA's "purpose" and "verificationCertificate", for cert in cur:
 * *claim, and the registration code the proof of possession used ("" when
 * none was needed). */
CM_MUST_CHECK enum cm_rc cm_cmd_ca_purpose(const struct cm_tenant *cur, X509 *cert, const cJSON *cmd, bool *claim,
		char code[CM_ENROLL_CODE_LEN + 1], struct cm_err *err);
/* Applies them to entry ca of t (a copy being changed): the code is used
 * up (refused when it is used already). */
CM_MUST_CHECK enum cm_rc cm_cmd_ca_apply_purpose(struct cm_tenant *t, struct cm_ca *ca, bool claim, const char *code, struct cm_err *err);

/* The command's tenant with an issuing CA, or the error. */
CM_MUST_CHECK enum cm_rc cm_cmd_issuing_tenant(struct cm_state *st, const cJSON *cmd, const struct cm_tenant **out, struct cm_err *err);

#endif
