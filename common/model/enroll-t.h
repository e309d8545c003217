#ifndef CM_ENROLL_T_H
#define CM_ENROLL_T_H
/* Types of a tenant's enrollment: its issuing CA, the policy that decides
 * who gets a certificate, the requests waiting for an operator, and the
 * CA's revocations. Structs and enums only (functions: enroll.h). Part of
 * the tenant's record (tenant.json's "enrollment"), so that whatever
 * carries tenant records carries them. */

#include <stdbool.h>
#include <stddef.h>
#include <time.h>

#include <openssl/evp.h>
#include <openssl/x509.h>

#include "pki.h"
#include "sign.h"

/* Limits of the lists of the record: it is part of tenant.json, which
 * the store holds under CM_STORE_MAX_FILE (a write over it is refused). */
#define CM_ENROLL_MAX_ALLOWED 5000
#define CM_ENROLL_MAX_PENDING 100
#define CM_ENROLL_MAX_CODES 16
#define CM_ENROLL_MAX_REVOKED 5000
#define CM_ENROLL_PATTERN_MAX 160
/* A registration code: 32 hex digits. */
#define CM_ENROLL_CODE_LEN 32

enum cm_enroll_mode {
	CM_ENROLL_APPROVAL, /* each request waits for an operator (the default) */
	CM_ENROLL_AUTO,     /* any identity matching idPattern */
	CM_ENROLL_ALLOWLIST /* identities an operator pre-registered, once each */
};

enum cm_enrollment_state {
	CM_ENROLLMENT_PENDING,
	CM_ENROLLMENT_APPROVED,
	CM_ENROLLMENT_REJECTED,
};

/* A request of a claim device under the approval mode. */
struct cm_enrollment {
	char ident[CM_ENROLL_IDENT_MAX + 1]; /* d:<type>:<id> */
	char key_id[CM_ID_LEN + 1];          /* of the CSR's key: the same device asks again */
	char *csr;                           /* PEM */
	char *clientid;                      /* who asked */
	char *correlation;                   /* its correlationData; NULL: none */
	time_t requested, decided;
	enum cm_enrollment_state state;
	char *cert;                          /* approved: the chain, leaf first */
	char *reason;                        /* rejected: why */
};

struct cm_enroll {
	/* The issuing CA: an entry of the tenant's trust list ("" none), its
	 * key, the key as stored (PKCS#8 PEM, encrypted with the store's
	 * passphrase when there is one) and the certificates above it. */
	char ca_id[CM_ID_LEN + 1];
	EVP_PKEY *ca_key;
	char *ca_key_pem;
	STACK_OF(X509) *ca_chain;
	/* The policy and the certificate template. */
	enum cm_enroll_mode mode;
	char *id_pattern;        /* a glob over d:<type>:<id>; NULL: any */
	int validity_days;
	time_t renew_within;     /* seconds before notAfter that renewal opens */
	time_t grace;            /* seconds a renewed certificate stays valid */
	struct cm_csr_rules rules;
	bool require_pop;        /* addCA needs a verificationCertificate */
	char (*codes)[CM_ENROLL_CODE_LEN + 1]; /* registration codes not yet used */
	size_t ncodes;
	char **allowed;          /* pre-registered identities */
	size_t nallowed;
	struct cm_enrollment *pending;
	size_t npending;
	struct cm_revoked *revoked;
	size_t nrevoked;
	unsigned long crl_number;  /* of the last CRL issued */
	time_t crl_this_update, crl_next_update;
};

#endif
