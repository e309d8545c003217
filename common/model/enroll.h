#ifndef CM_ENROLL_H
#define CM_ENROLL_H
/* A tenant's enrollment record in memory: defaults, copies, its lists,
 * and its JSON in tenant.json. */

#include <stdbool.h>

#include <cjson/cJSON.h>

#include "enroll-t.h"
#include "error.h"
#include "tenant-t.h"

/* A record with the defaults: approval, 365 days, renewal 30 days before
 * notAfter, a grace of one day, EC and RSA of 2048 bits or more, the
 * identity in the CN. NULL when out of memory. */
struct cm_enroll *cm_enroll_new(void);
/* A deep copy sharing the key and certificates (up-ref'd); NULL when out
 * of memory. */
struct cm_enroll *cm_enroll_clone(const struct cm_enroll *e);
/* Accepts NULL and *e NULL. */
void cm_enroll_free(struct cm_enroll **e);
/* t's record, made with the defaults if it has none; NULL: out of memory. */
struct cm_enroll *cm_enroll_of(struct cm_tenant *t);

const char *cm_enroll_mode_name(enum cm_enroll_mode m);
int cm_enroll_mode_parse(const char *name);
const char *cm_enrollment_state_name(enum cm_enrollment_state s);

/* True when ident matches the tenant's idPattern (any when none). */
bool cm_enroll_pattern_matches(const struct cm_enroll *e, const char *ident);

/* The pre-registered identities. */
bool cm_enroll_is_allowed(const struct cm_enroll *e, const char *ident);
CM_MUST_CHECK enum cm_rc cm_enroll_allow(struct cm_enroll *e, const char *ident, struct cm_err *err);
/* True when it was there. */
bool cm_enroll_disallow(struct cm_enroll *e, const char *ident);

/* The request of ident, or NULL. */
struct cm_enrollment *cm_enroll_find(const struct cm_enroll *e, const char *ident);
/* Appends a copy of r (its strings copied). */
CM_MUST_CHECK enum cm_rc cm_enroll_add_request(struct cm_enroll *e, const struct cm_enrollment *r, struct cm_err *err);
/* Removes the request of ident, if any. */
void cm_enroll_drop_request(struct cm_enroll *e, const char *ident);

/* Registration codes: a new one into code; taking one is single use. */
CM_MUST_CHECK enum cm_rc cm_enroll_new_code(struct cm_enroll *e, char code[CM_ENROLL_CODE_LEN + 1], struct cm_err *err);
bool cm_enroll_has_code(const struct cm_enroll *e, const char *code);
void cm_enroll_take_code(struct cm_enroll *e, const char *code);

/* Revocations: serial (hex) revoked from at for reason; a serial already
 * there keeps the earlier time. */
CM_MUST_CHECK enum cm_rc cm_enroll_revoke(struct cm_enroll *e, const char *serial, time_t at, int reason, struct cm_err *err);
const struct cm_revoked *cm_enroll_find_revoked(const struct cm_enroll *e, const char *serial);
/* The earliest revocation in force after the last CRL, or 0: when the
 * CRL must be issued again for it. */
time_t cm_enroll_next_revocation(const struct cm_enroll *e);

/* The trust-list entry of t's issuing CA, or NULL. */
const struct cm_ca *cm_enroll_issuing_ca(const struct cm_tenant *t);
/* The trust-list entry of t, not pinned, whose key signed cert and whose
 * name issued it, or NULL. */
const struct cm_ca *cm_enroll_issuer_entry(const struct cm_tenant *t, X509 *cert);
/* True when the nearest CA of t above leaf (through chain, the
 * intermediates it sent) is one registered with purpose "claim". */
bool cm_enroll_is_claim_chain(const struct cm_tenant *t, X509 *leaf, STACK_OF(X509) *chain);

/* tenant.json's "enrollment" object; NULL when out of memory. */
cJSON *cm_enroll_to_json(const struct cm_enroll *e);
/* Reads it back; the CA key is decrypted with pass (NULL: plain). A key
 * stored plain while pass is given is encrypted again in memory, for the
 * next write. */
CM_MUST_CHECK enum cm_rc cm_enroll_from_json(const cJSON *o, const char *pass, struct cm_enroll **out, struct cm_err *err);

#endif
