#ifndef CM_SIGN_H
#define CM_SIGN_H
/* certmgr as a CA: issuing CA certificates, checking the CSRs devices
 * send and signing them, the CRLs of an issuing CA, and the proof that
 * whoever registers a CA holds its key. Plain OpenSSL: runs on either
 * thread (signing with an RSA key belongs on the worker). */

#include <stdbool.h>
#include <stddef.h>
#include <time.h>

#include <openssl/evp.h>
#include <openssl/x509.h>

#include "error.h"
#include "identity.h"

/* An RFC 5280 serial is at most 20 octets: 40 hex digits. */
#define CM_SERIAL_HEX_MAX 40
/* "d:<type>:<id>" */
#define CM_ENROLL_IDENT_MAX (2 + 2 * CM_IDENT_PART_MAX + 1)

/* The subject of an issuing CA: cn required, the others may be NULL. */
struct cm_ca_subject {
	const char *cn, *o, *ou, *c;
};

/* A CA certificate for key: basicConstraints CA:TRUE pathlen:0,
 * keyCertSign and cRLSign, valid from an hour ago for days (1 to 36500),
 * self-signed when parent is NULL, else signed by parent_key and no
 * longer valid than parent. The caller frees *out. */
CM_MUST_CHECK enum cm_rc cm_sign_make_ca(EVP_PKEY *key, const struct cm_ca_subject *subject, int days, X509 *parent, EVP_PKEY *parent_key,
		X509 **out, struct cm_err *err);

/* What a tenant allows in a device's CSR and puts in its certificate. */
struct cm_csr_rules {
	bool allow_ec, allow_rsa, allow_ed25519;
	int min_rsa_bits;     /* 2048 at least */
	bool in_cn, in_email; /* where the identity goes in the certificate */
};

/* Checks a device's CSR: its signature verifies with its own key, the key
 * is of a type and size rules allow (EC: P-256 or P-384), and it asks for
 * exactly one identity "d:<type>:<id>" or "g:<type>:<id>" (in its CN
 * and/or SubjectAltName emails; every such name the same), copied to
 * ident. err says what is wrong. */
CM_MUST_CHECK enum cm_rc cm_sign_check_csr(X509_REQ *req, const struct cm_csr_rules *rules, char ident[CM_ENROLL_IDENT_MAX + 1],
		struct cm_err *err);

/* The hex SHA-256 of a public key's SubjectPublicKeyInfo. */
CM_MUST_CHECK enum cm_rc cm_sign_key_id(EVP_PKEY *key, char out[65], struct cm_err *err);

/* True when s is "d:<type>:<id>" or "g:<type>:<id>", each part 1 to 64
 * letters, digits, '-', '_', '.'. */
bool cm_sign_ident_valid(const char *s);

/* A device certificate for pubkey, identity ident (where rules say),
 * clientAuth, a random serial, valid from a minute ago for lifetime
 * seconds (never past the CA's notAfter), signed by ca_key. Nothing of
 * the CSR but its key is copied. The caller frees *out. */
CM_MUST_CHECK enum cm_rc cm_sign_device_cert(EVP_PKEY *pubkey, const char *ident, const struct cm_csr_rules *rules, time_t lifetime,
		X509 *ca, EVP_PKEY *ca_key, X509 **out, struct cm_err *err);

/* An upper-case hex serial into out; false when it does not fit. */
bool cm_sign_serial_hex(const ASN1_INTEGER *serial, char out[CM_SERIAL_HEX_MAX + 1]);
/* True when s is 1 to CM_SERIAL_HEX_MAX hex digits. */
bool cm_sign_serial_valid(const char *s);

/* One entry of an issuing CA's CRL. */
struct cm_revoked {
	char serial[CM_SERIAL_HEX_MAX + 1];
	time_t at;   /* in force from then (a renewal's grace period) */
	int reason;  /* CRL_REASON_*: 0 unspecified, 1 keyCompromise, 4 superseded, ... */
};

/* The reason of that name (RFC 5280's, camelCase) or -1, and back. */
int cm_sign_reason_parse(const char *name);
const char *cm_sign_reason_name(int reason);

/* A full CRL of ca signed by ca_key: the entries whose at is not after
 * this_update, cRLNumber number, AKI, valid until next_update. DER into
 * *der (the caller frees it with OPENSSL_free). */
CM_MUST_CHECK enum cm_rc cm_sign_make_crl(X509 *ca, EVP_PKEY *ca_key, const struct cm_revoked *v, size_t n, unsigned long number,
		time_t this_update, time_t next_update, unsigned char **der, size_t *der_len, struct cm_err *err);

/* Proof of possession: vcert's Common Name is code and ca's key signed
 * vcert. err says which failed. */
CM_MUST_CHECK enum cm_rc cm_sign_check_pop(X509 *ca, X509 *vcert, const char *code, struct cm_err *err);

#endif
