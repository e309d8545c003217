#ifndef CM_VERDICT_H
#define CM_VERDICT_H
/* The one trust decision: this chain, under this tenant, now — admitted,
 * or refused with a reason and a refusal class. Used for full handshakes,
 * for the re-check of connected devices and of connections not yet
 * authenticated, never with the broker in the picture: it reads the
 * tenant's built trust (see struct cm_tenant) and nothing else.
 *
 * The decision is RFC 5280 path validation by OpenSSL:
 * - a pinned certificate admits exactly itself, as the leaf, and is never
 *   the issuer of another one;
 * - the trust anchors are the tenant's registered CAs that no registered
 *   CA issued (partial chains: a registered intermediate is an anchor when
 *   its issuer is not registered); the other registered CAs and the known
 *   issuers complete chains and are validated through their issuers
 *   (signatures, validity, basicConstraints and pathLen, name
 *   constraints, key usage, policies with anyPolicy as the initial set);
 * - a chain through a deactivated CA is refused;
 * - revocation for every certificate of the path but the anchor, with
 *   every CRL the tenant holds (CRL_CHECK_ALL, EXTENDED_CRL_SUPPORT,
 *   USE_DELTAS: scope, indirect CRLs, deltas, the signer's cRLSign,
 *   critical extensions), and the tenant's policy on top: `required`
 *   refuses a certificate no CRL covers; `when-available` admits it when
 *   no CRL of its issuer is known at all, and refuses it when one is but
 *   does not cover it; a CRL past its nextUpdate refuses unless the CA's
 *   stale policy is fail-open (and revocation is not required). */

#include <stdbool.h>
#include <time.h>

#include <openssl/x509_vfy.h>

#include "store.h"
#include "types.h"

struct cm_verdict {
	bool admitted;
	bool admin;              /* the path ends at the admin CA */
	bool revocation;         /* refused by revocation (a CRL, or the lack of one) */
	int error;               /* X509_V_OK when admitted */
	int depth;               /* of the certificate refused */
	enum cm_refusal refusal; /* the class, when refused */
	char why[256];           /* the reason, for logs and answers */
	time_t not_after;        /* earliest notAfter of the path, anchor included */
};

/* Judges the chain of ctx (its leaf and the certificates the client sent,
 * initialised over t->trust, as a TLS handshake hands it) for tenant t.
 * ctx is left with its own untrusted stack; its chain is the verified
 * one when admitted. */
bool cm_verdict_ctx(X509_STORE_CTX *ctx, const struct cm_tenant *t, X509 *admin_ca, struct cm_verdict *v);

/* The same for a leaf and the certificates sent with it, outside a
 * handshake. chain_out, when not NULL, gets the verified path (the
 * caller frees it with sk_X509_pop_free) when admitted. */
bool cm_verdict_chain(const struct cm_tenant *t, X509 *admin_ca, X509 *leaf, STACK_OF(X509) *sent, struct cm_verdict *v,
		STACK_OF(X509) **chain_out);

/* The path of leaf (and sent) under t's anchors (not the admin CA),
 * validated without revocation, for purpose ("ssl_client"; NULL: any),
 * into *chain_out (the caller frees it): for a handshake refused only for
 * want of a CRL, to learn where its CRLs come from, and for the signer of
 * an uploaded CRL. X509_V_OK, or why there is no such path. */
int cm_verdict_path(const struct cm_tenant *t, X509 *admin_ca, X509 *leaf, STACK_OF(X509) *sent, const char *purpose,
		STACK_OF(X509) **chain_out);

#endif
