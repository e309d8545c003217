#ifndef CM_REVOCATION_H
#define CM_REVOCATION_H
/* Revocation, enforced on every handshake at a cost that does not grow
 * with the CRLs: each level of a verified chain is looked up in the index
 * of its issuer's CRL, when the issuer is in the tenant's trust list and
 * its CRL is known. The tenant's revocation policy decides about levels
 * whose CRL is unknown or out of date. CRLs learned from the certificates
 * devices present are fetched in the background. */

#include <time.h>

#include <openssl/x509.h>

#include "state.h"

/* The trust-list entry of t that is cert, or NULL. */
struct cm_ca *cm_rev_entry_for(const struct cm_tenant *t, X509 *cert);
/* The trust-list entry of t that issued cert (not cert itself), or NULL. */
struct cm_ca *cm_rev_issuer_of(const struct cm_tenant *t, X509 *cert);

/* Checks a verified chain (leaf first, trust anchor last). NULL when it
 * passes; otherwise the reason, in buf, and *x509_err the X509_V_ERR_* to
 * report. */
const char *cm_revocation_check(const struct cm_tenant *t, STACK_OF(X509) *chain, time_t now, int *x509_err, char *buf, size_t len);

/* Starts fetching, in the background, the CRLs of the chain's issuers in
 * t that have none yet, from the distribution points of the certificates
 * they issued. Never blocks; failures are logged and retried later. */
void cm_revocation_learn(struct cm_state *st, const struct cm_tenant *t, STACK_OF(X509) *chain);

void cm_revocation_cleanup(struct cm_state *st);

#endif
