#ifndef CM_REVOCATION_H
#define CM_REVOCATION_H
/* What certmgr learns from the chains devices present: the CRLs of their
 * issuers, fetched in the background from the distribution points of the
 * certificates they issued, and the intermediate CAs themselves, kept as
 * known issuers of the tenant (for their CRLs, for uploads of those CRLs
 * and to complete later chains). The decision itself is verdict.h's. */

#include <time.h>

#include <openssl/x509.h>

#include "state.h"

/* Known issuers learned per tenant, at most. */
#define CM_LEARNED_ISSUERS_MAX 256

/* The entry of t (trust list or known issuer) that is cert, or NULL. */
const struct cm_ca *cm_rev_entry_for(const struct cm_tenant *t, X509 *cert);
/* The trust-list CA of t that issued cert (not cert itself), or NULL. */
const struct cm_ca *cm_rev_issuer_of(const struct cm_tenant *t, X509 *cert);

/* For a verified chain (leaf first, anchor last) of t: starts fetching
 * the CRLs of its issuers that have none yet, and queues the issuers t
 * does not know for the next tick. Never blocks; failures are logged and
 * retried later. */
void cm_revocation_learn(struct cm_state *st, const struct cm_tenant *t, STACK_OF(X509) *chain);

/* Adds the queued issuers to their tenants (one commit each). */
void cm_revocation_tick(struct cm_state *st);

void cm_revocation_cleanup(struct cm_state *st);

#endif
