#ifndef CM_CRL_H
#define CM_CRL_H
/* Certificate revocation lists: verified once, when they arrive, and
 * turned into an index of revoked serial numbers whose lookup costs the
 * same for a million entries as for none. */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include <openssl/x509.h>

#include "error.h"

struct cm_crl_slot;

/* Shared by the tenant copies that refer to it: cm_crl_ref / cm_crl_free. */
struct cm_crl {
	int refs;
	time_t this_update;
	time_t next_update;  /* 0: the CRL names none */
	size_t count;        /* revoked serials */
	/* Open addressing over 64-bit hashes of the serials; the serials
	 * themselves, length-prefixed, in one arena, for the exact compare. */
	struct cm_crl_slot *slots;
	size_t mask;
	unsigned char *arena;
	size_t arena_len;
	unsigned char *der;  /* the CRL as received, to store it; NULL once stored */
	size_t der_len;
};

/* Parses a CRL (PEM or DER, at most max_len bytes), checks that issuer
 * signed it, that it is a full CRL (a delta CRL is refused), and that it
 * is in force at now (thisUpdate not in the future, nextUpdate, if any,
 * not in the past; now 0 skips these two), then builds its index. The caller frees *out with
 * cm_crl_free. */
CM_MUST_CHECK enum cm_rc cm_crl_load(const unsigned char *buf, size_t len, size_t max_len, X509 *issuer, time_t now, struct cm_crl **out, struct cm_err *err);

/* The CA among candidates whose name the CRL names as issuer and whose key
 * signed it, or NULL. For uploads: which CA does this CRL belong to. */
X509 *cm_crl_find_issuer(const unsigned char *buf, size_t len, STACK_OF(X509) *candidates);

bool cm_crl_is_revoked(const struct cm_crl *crl, const ASN1_INTEGER *serial);

/* Frees the DER copy once it is on disk (or not needed). */
void cm_crl_drop_der(struct cm_crl *crl);

struct cm_crl *cm_crl_ref(struct cm_crl *crl);
/* Drops one reference; frees at the last. Accepts NULL, sets *crl NULL. */
void cm_crl_free(struct cm_crl **crl);

/* The first http(s) URL of the certificate's CRL distribution points into
 * buf; false when there is none. */
bool cm_crl_distribution_point(X509 *cert, char *buf, size_t buflen);

#endif
