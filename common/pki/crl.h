#ifndef CM_CRL_H
#define CM_CRL_H
/* Certificate revocation lists: verified once, when they arrive, and
 * turned into an index of revoked serial numbers whose lookup costs the
 * same for a million entries as for none.
 *
 * OpenSSL's own path validation applies RFC 5280's CRL rules (scope,
 * deltas, indirect CRLs, the signer's key usage, critical extensions) to
 * the CRLs it is given, but verifies each CRL's signature again at every
 * use and keeps millions of small objects for a large one. certmgr gives
 * it instead a "hollow" copy of each CRL: the same issuer, dates and
 * extensions (and the entries that carry critical extensions), no other
 * entries, in an X509_CRL whose method answers the signature check from
 * the verification made at arrival and the serial lookup from certmgr's
 * index. */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "error.h"

struct cm_crl_slot;

/* Shared by the tenant copies that refer to it: cm_crl_ref / cm_crl_free.
 * Never modified once loaded. */
struct cm_crl {
	int refs;
	time_t this_update;
	time_t next_update;  /* 0: the CRL names none */
	size_t count;        /* revoked entries */
	bool delta;          /* a delta CRL (deltaCRLIndicator) */
	/* CRLs of one issuer with the same scope (delta or not, and the same
	 * issuingDistributionPoint) replace each other; others coexist. */
	unsigned char scope[32];
	ASN1_INTEGER *number;          /* cRLNumber; NULL: none */
	/* Open addressing over 64-bit hashes of the serials; the entries,
	 * length-prefixed, in one arena, for the exact compare. */
	struct cm_crl_slot *slots;
	size_t mask;
	unsigned char *arena;
	size_t arena_len;
	STACK_OF(GENERAL_NAMES) *issuers; /* certificateIssuer of indirect entries */
	X509_CRL *hollow;    /* what path validation is given (see above) */
	unsigned char *der;  /* the CRL as received, to store it; NULL once stored */
	size_t der_len;
};

/* Parses a CRL (PEM or DER, at most max_len bytes), checks that issuer
 * signed it and that it is in force at now (thisUpdate not in the future,
 * nextUpdate, if any, not in the past; now 0 skips these two), then builds
 * its index. Full and delta CRLs are both accepted. The caller frees *out
 * with cm_crl_free. */
CM_MUST_CHECK enum cm_rc cm_crl_load(const unsigned char *buf, size_t len, size_t max_len, X509 *issuer, time_t now, struct cm_crl **out, struct cm_err *err);

/* The CA among candidates whose name the CRL names as issuer and whose key
 * signed it, or NULL. For uploads: which CA does this CRL belong to. */
X509 *cm_crl_find_issuer(const unsigned char *buf, size_t len, STACK_OF(X509) *candidates);

/* True when the CRL revokes serial of a certificate its own issuer
 * issued. An entry marked removeFromCRL (in a delta) does not count. */
bool cm_crl_is_revoked(const struct cm_crl *crl, const ASN1_INTEGER *serial);

/* True when next would roll back from cur, a CRL of the same scope: a
 * lower cRLNumber or, where either has none, an earlier thisUpdate. */
bool cm_crl_older(const struct cm_crl *next, const struct cm_crl *cur);

/* Frees the DER copy once it is on disk (or not needed). */
void cm_crl_drop_der(struct cm_crl *crl);

struct cm_crl *cm_crl_ref(struct cm_crl *crl);
/* Drops one reference; frees at the last. Accepts NULL, sets *crl NULL. */
void cm_crl_free(struct cm_crl **crl);

/* Frees what the hollow CRLs share (made again by the next load): once
 * every cm_crl is freed, at the plugin's end. */
void cm_crl_cleanup(void);

/* The first http(s) URL of the certificate's CRL distribution points into
 * buf; false when there is none. */
bool cm_crl_distribution_point(X509 *cert, char *buf, size_t buflen);

#endif
