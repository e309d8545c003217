#ifndef CM_PKI_H
#define CM_PKI_H
/* Certificates and keys as plain OpenSSL objects: generation, parsing,
 * encoding, fingerprints. Nothing here knows about SSL, the store or the
 * broker. */

#include <stdbool.h>
#include <stddef.h>

#include <openssl/evp.h>
#include <openssl/x509.h>

#include "error.h"

/* An id is the lower-case hex SHA-256 of the DER encoding. */
#define CM_ID_LEN 64

enum cm_key_type {
	CM_KEY_EC,
	CM_KEY_RSA,
	CM_KEY_ED25519,
};

struct cm_keyspec {
	enum cm_key_type type;
	int bits;          /* RSA: 2048, 3072, 4096 (1024 with allow_weak) */
	const char *curve; /* EC: "P-256" or "P-384" */
	bool allow_weak;
};

/* A new private key; the caller frees it with EVP_PKEY_free. */
CM_MUST_CHECK enum cm_rc cm_pki_generate_key(const struct cm_keyspec *spec, EVP_PKEY **out, struct cm_err *err);

/* A self-signed server certificate for key: subject CN=cn, the DNS names as
 * SubjectAltNames, valid from one hour ago for `days` days, serverAuth.
 * The caller frees it with X509_free. */
CM_MUST_CHECK enum cm_rc cm_pki_make_self_signed(EVP_PKEY *key, const char *cn, const char *const *dns_names, size_t dns_count, int days, X509 **out, struct cm_err *err);

/* Writes the certificate's id (CM_ID_LEN hex digits and a NUL) into out. */
/* p (n bytes) as lower-case hex into out (2n + 1 bytes). */
void cm_hex(const unsigned char *p, size_t n, char *out);

CM_MUST_CHECK enum cm_rc cm_pki_cert_id(X509 *cert, char out[CM_ID_LEN + 1], struct cm_err *err);

/* True when cert has an extension of RFC 5280's policy processing:
 * certificatePolicies, policyMappings, policyConstraints or
 * inhibitAnyPolicy. */
bool cm_pki_has_policy_ext(const X509 *cert);

/* The SHA-256 of the DER of the first n certificates of chain, one after
 * the other, as hex: for one certificate, its id. */
CM_MUST_CHECK enum cm_rc cm_pki_chain_id(STACK_OF(X509) *chain, int n, char out[CM_ID_LEN + 1], struct cm_err *err);

/* True when s is exactly CM_ID_LEN lower-case hex digits. */
bool cm_pki_id_valid(const char *s);

/* PEM of leaf followed by every certificate of extra (which may be NULL).
 * The caller frees *out with free(). */
CM_MUST_CHECK enum cm_rc cm_pki_chain_to_pem(X509 *leaf, STACK_OF(X509) *extra, char **out, size_t *out_len, struct cm_err *err);

/* Unencrypted PKCS#8 PEM of the private key; the caller frees *out with
 * free() after clearing it (cm_pki_free_secret). */
CM_MUST_CHECK enum cm_rc cm_pki_key_to_pem(EVP_PKEY *key, char **out, size_t *out_len, struct cm_err *err);

/* The same, encrypted (PKCS#8, AES-256-CBC, PBKDF2) with passphrase. */
CM_MUST_CHECK enum cm_rc cm_pki_key_to_pem_encrypted(EVP_PKEY *key, const char *passphrase, char **out, size_t *out_len, struct cm_err *err);

/* Zeroes and frees a buffer that held key material. Accepts NULL. */
void cm_pki_free_secret(char *buf, size_t len);

/* Parses one or more PEM certificates: the first is the leaf, the others go
 * to *extra (empty, never NULL, when there are none). Text outside PEM
 * blocks is ignored, as openssl does; a damaged block, a block of another
 * type, or no certificate at all is refused. */
CM_MUST_CHECK enum cm_rc cm_pki_parse_chain_pem(const char *buf, size_t len, X509 **leaf, STACK_OF(X509) **extra, struct cm_err *err);

/* Parses one unencrypted PEM private key. */
CM_MUST_CHECK enum cm_rc cm_pki_parse_key_pem(const char *buf, size_t len, EVP_PKEY **out, struct cm_err *err);

/* True when key is the private half of cert's public key. */
bool cm_pki_key_matches(X509 *cert, EVP_PKEY *key);

/* The subject's Common Name into buf ("" when there is none). */
void cm_pki_subject_cn(X509 *cert, char *buf, size_t buflen);


/* Parses operator input holding certificates: PEM (one or more blocks) or
 * base64 of one DER certificate. *out holds at least one certificate; the
 * caller frees it with sk_X509_pop_free(*out, X509_free). */
CM_MUST_CHECK enum cm_rc cm_pki_parse_certs(const char *text, size_t len, STACK_OF(X509) **out, struct cm_err *err);

/* base64 of the DER encoding, no line breaks; the caller frees *out. */
CM_MUST_CHECK enum cm_rc cm_pki_cert_to_der_b64(X509 *cert, char **out, struct cm_err *err);

/* Checks that cert can be a trust anchor: a CA (basicConstraints CA:TRUE)
 * allowed to sign certificates (keyCertSign), valid at now. */
CM_MUST_CHECK enum cm_rc cm_pki_check_ca(X509 *cert, time_t now, struct cm_err *err);

/* cert's notAfter as a time_t (0 when it cannot be read). */
time_t cm_pki_not_after(const X509 *cert);

/* A new CA certificate and key (EC P-256, keyCertSign+cRLSign) and a
 * client certificate it signs, for certmgr's admin CA. */
CM_MUST_CHECK enum cm_rc cm_pki_make_ca(const char *cn, int days, X509 **cert, EVP_PKEY **key, struct cm_err *err);
CM_MUST_CHECK enum cm_rc cm_pki_make_client_cert(X509 *ca, EVP_PKEY *ca_key, const char *cn, int days, X509 **cert, EVP_PKEY **key, struct cm_err *err);

/* A private key as operator input: PEM or base64 DER, PKCS#8 or
 * traditional, RSA, EC or Ed25519, encrypted (then passphrase is needed)
 * or not. May take long (key derivation): not on the broker thread. */
CM_MUST_CHECK enum cm_rc cm_pki_parse_key_any(const char *text, size_t len, const char *passphrase, EVP_PKEY **out, struct cm_err *err);

/* A base64 PKCS#12 bundle: its key, its certificate and the others. */
CM_MUST_CHECK enum cm_rc cm_pki_parse_pkcs12(const char *b64, const char *passphrase, EVP_PKEY **key, STACK_OF(X509) **certs, struct cm_err *err);

/* From certs (any order), the one key matches becomes *leaf and the rest,
 * ordered from the leaf up, *extra; every certificate must be valid at
 * now and each must be issued by the next. */
CM_MUST_CHECK enum cm_rc cm_pki_order_chain(EVP_PKEY *key, STACK_OF(X509) *certs, time_t now, X509 **leaf, STACK_OF(X509) **extra, struct cm_err *err);

/* A subject of a CSR: each field may be NULL. */
struct cm_subject {
	const char *cn, *o, *ou, *c, *st, *l, *email;
};

/* A CSR for key: the subject, and SubjectAltNames given as "DNS:name",
 * "IP:addr", "email:addr" or "URI:uri". The caller frees *out with
 * X509_REQ_free. */
CM_MUST_CHECK enum cm_rc cm_pki_make_csr(EVP_PKEY *key, const struct cm_subject *subject, const char *const *sans, size_t nsans, X509_REQ **out, struct cm_err *err);

/* The id of a CSR (SHA-256 of its DER), and its PEM / base64 DER. */
CM_MUST_CHECK enum cm_rc cm_pki_csr_id(X509_REQ *req, char out[CM_ID_LEN + 1], struct cm_err *err);
CM_MUST_CHECK enum cm_rc cm_pki_csr_to_pem(X509_REQ *req, char **out, struct cm_err *err);
CM_MUST_CHECK enum cm_rc cm_pki_csr_to_der_b64(X509_REQ *req, char **out, struct cm_err *err);
CM_MUST_CHECK enum cm_rc cm_pki_parse_csr_pem(const char *buf, size_t len, X509_REQ **out, struct cm_err *err);

/* base64 (white space allowed) into a malloc'd buffer, the padding
 * counted off; NULL when it is not base64 or memory is short. */
unsigned char *cm_pki_base64_decode(const char *text, size_t len, size_t *out_len);

#endif
