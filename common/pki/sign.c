/* certmgr as a CA: issuing CA certificates, device certificates from
 * CSRs, CRLs, proof of possession. */
#define _GNU_SOURCE
#include <ctype.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>

#include <openssl/err.h>
#include <openssl/x509v3.h>

#include "pki.h"
#include "pki-int.h"
#include "sign.h"

/* Returns what a failing check returned. */
#define CM_GUARD_RC(x) \
	do{ \
		enum cm_rc guard_rc_ = (x); \
		if(guard_rc_ != CM_OK){ \
			return guard_rc_; \
		} \
	}while(0)

static const EVP_MD *digest_for(EVP_PKEY *key)
{
	/* Ed25519 signs without a separate digest. */
	return EVP_PKEY_get_id(key) == EVP_PKEY_ED25519 ? NULL : EVP_sha256();
}

static int add_conf_ext(X509 *cert, X509 *issuer, const char *name, const char *value)
{
	X509V3_CTX ctx;
	X509_EXTENSION *ext;
	int ok;

	X509V3_set_ctx(&ctx, issuer ? issuer : cert, cert, NULL, NULL, 0);
	ext = X509V3_EXT_nconf(NULL, &ctx, name, value);
	ok = ext && X509_add_ext(cert, ext, -1);
	X509_EXTENSION_free(ext);
	return ok;
}

static int name_add(X509_NAME *name, const char *field, const char *value)
{
	return value == NULL || X509_NAME_add_entry_by_txt(name, field, MBSTRING_UTF8, (const unsigned char *)value, -1, -1, 0);
}

/* A random serial of 159 bits: positive, unique, within 20 octets. */
static int random_serial(X509 *cert)
{
	BIGNUM *bn = BN_new();
	int ok = bn && BN_rand(bn, 159, BN_RAND_TOP_ANY, BN_RAND_BOTTOM_ANY) && BN_to_ASN1_INTEGER(bn, X509_get_serialNumber(cert));

	BN_free(bn);
	return ok;
}

/* notAfter of cert no later than that of limit (NULL: none). */
static int cap_not_after(X509 *cert, const X509 *limit)
{
	if(limit && ASN1_TIME_compare(X509_get0_notAfter(cert), X509_get0_notAfter(limit)) > 0){
		return X509_set1_notAfter(cert, X509_get0_notAfter(limit));
	}
	return 1;
}

static enum cm_rc check_ca_subject(const struct cm_ca_subject *s, int days, struct cm_err *err)
{
	if(s->cn == NULL || s->cn[0] == '\0' || strlen(s->cn) > 64){
		return cm_err_set(err, CM_ERR_INVAL, "the CA's CN must hold 1 to 64 characters");
	}
	if((s->o && strlen(s->o) > 64) || (s->ou && strlen(s->ou) > 64)){
		return cm_err_set(err, CM_ERR_INVAL, "the CA's O and OU hold at most 64 characters");
	}
	if(s->c && (strlen(s->c) != 2 || !isupper((unsigned char)s->c[0]) || !isupper((unsigned char)s->c[1]))){
		return cm_err_set(err, CM_ERR_INVAL, "the CA's C must be two upper-case letters");
	}
	if(days <= 0 || days > 36500){
		return cm_err_set(err, CM_ERR_INVAL, "validity must be 1 to 36500 days");
	}
	return CM_OK;
}

enum cm_rc cm_sign_make_ca(EVP_PKEY *key, const struct cm_ca_subject *s, int days, X509 *parent, EVP_PKEY *parent_key,
		X509 **out, struct cm_err *err)
{
	X509 *cert = NULL;
	X509_NAME *name = NULL;
	enum cm_rc rc;

	*out = NULL;
	CM_GUARD_RC(check_ca_subject(s, days, err));
	ERR_clear_error();
	rc = CM_ERR_CRYPTO;
	if((cert = X509_new()) == NULL || (name = X509_NAME_new()) == NULL
			|| !name_add(name, "C", s->c) || !name_add(name, "O", s->o) || !name_add(name, "OU", s->ou) || !name_add(name, "CN", s->cn)
			|| !random_serial(cert) || !X509_set_version(cert, X509_VERSION_3)
			|| !X509_set_subject_name(cert, name) || !X509_set_issuer_name(cert, parent ? X509_get_subject_name(parent) : name)
			|| !X509_gmtime_adj(X509_getm_notBefore(cert), -3600) || !X509_time_adj_ex(X509_getm_notAfter(cert), days, 0, NULL)
			|| !cap_not_after(cert, parent) || !X509_set_pubkey(cert, key)
			|| !add_conf_ext(cert, parent, "basicConstraints", "critical,CA:TRUE,pathlen:0")
			|| !add_conf_ext(cert, parent, "keyUsage", "critical,keyCertSign,cRLSign")
			|| !add_conf_ext(cert, parent, "subjectKeyIdentifier", "hash")
			|| !add_conf_ext(cert, parent, "authorityKeyIdentifier", "keyid:always")){
		goto out;
	}
	if(X509_sign(cert, parent ? parent_key : key, digest_for(parent ? parent_key : key)) <= 0){
		goto out;
	}
	*out = cert;
	cert = NULL;
	rc = CM_OK;
out:
	if(rc != CM_OK){
		openssl_fail(err, rc, "cannot make the CA certificate");
	}
	X509_free(cert);
	X509_NAME_free(name);
	return rc;
}

static enum cm_rc check_key(EVP_PKEY *key, const struct cm_csr_rules *r, struct cm_err *err)
{
	int id = EVP_PKEY_get_base_id(key), bits = EVP_PKEY_get_bits(key);
	char curve[32] = "";

	if(id == EVP_PKEY_RSA){
		if(!r->allow_rsa){
			return cm_err_set(err, CM_ERR_INVAL, "the CSR's key is RSA, which this tenant does not allow");
		}
		if(bits < r->min_rsa_bits || bits > 8192){
			return cm_err_set(err, CM_ERR_INVAL, "the CSR's RSA key of %d bits is refused: weak (this tenant wants %d to 8192)", bits,
					r->min_rsa_bits);
		}
		return CM_OK;
	}
	if(id == EVP_PKEY_EC){
		if(!r->allow_ec){
			return cm_err_set(err, CM_ERR_INVAL, "the CSR's key is EC, which this tenant does not allow");
		}
		if(!EVP_PKEY_get_utf8_string_param(key, "group", curve, sizeof(curve), NULL)
				|| (strcmp(curve, "prime256v1") && strcmp(curve, "secp384r1"))){
			return cm_err_set(err, CM_ERR_INVAL, "the CSR's EC key is on curve '%.31s', which is refused (P-256 or P-384)",
					curve[0] ? curve : "unknown");
		}
		return CM_OK;
	}
	if(id == EVP_PKEY_ED25519 && r->allow_ed25519){
		return CM_OK;
	}
	return cm_err_set(err, CM_ERR_INVAL, "the CSR's key type is refused (this tenant takes%s%s%s)", r->allow_ec ? " ec" : "",
			r->allow_rsa ? " rsa" : "", r->allow_ed25519 ? " ed25519" : "");
}

bool cm_sign_ident_valid(const char *s)
{
	char type[CM_IDENT_PART_MAX + 1], id[CM_IDENT_PART_MAX + 1];
	const char *colon;
	size_t n;

	if((s[0] != 'd' && s[0] != 'g') || s[1] != ':' || (colon = strchr(s + 2, ':')) == NULL){
		return false;
	}
	n = (size_t)(colon - (s + 2));
	if(n == 0 || n > CM_IDENT_PART_MAX || strlen(colon + 1) > CM_IDENT_PART_MAX){
		return false;
	}
	memcpy(type, s + 2, n);
	type[n] = '\0';
	snprintf(id, sizeof(id), "%s", colon + 1);
	return cm_identity_part_valid(type) && cm_identity_part_valid(id);
}

/* Records one name the CSR gives; refuses a second different one. */
static enum cm_rc take_name(const char *name, size_t len, char ident[CM_ENROLL_IDENT_MAX + 1], struct cm_err *err)
{
	char buf[CM_ENROLL_IDENT_MAX + 1];

	if(len > CM_ENROLL_IDENT_MAX || memchr(name, '\0', len)){
		return cm_err_set(err, CM_ERR_INVAL, "the CSR asks for a name that is not a device identity d:<type>:<id>");
	}
	memcpy(buf, name, len);
	buf[len] = '\0';
	if(!cm_sign_ident_valid(buf)){
		return cm_err_set(err, CM_ERR_INVAL, "the CSR asks for '%.80s', which is not a device identity d:<type>:<id> (or g:)", buf);
	}
	if(ident[0] && strcmp(ident, buf)){
		return cm_err_set(err, CM_ERR_INVAL, "the CSR asks for two identities, '%s' and '%s'", ident, buf);
	}
	memcpy(ident, buf, len + 1);
	return CM_OK;
}

static enum cm_rc csr_names(X509_REQ *req, char ident[CM_ENROLL_IDENT_MAX + 1], struct cm_err *err)
{
	const X509_NAME *subj = X509_REQ_get_subject_name(req);
	STACK_OF(X509_EXTENSION) *exts = X509_REQ_get_extensions(req);
	GENERAL_NAMES *sans = exts ? X509V3_get_d2i(exts, NID_subject_alt_name, NULL, NULL) : NULL;
	enum cm_rc rc = CM_OK;
	int i = -1;

	ident[0] = '\0';
	while(rc == CM_OK && (i = X509_NAME_get_index_by_NID(subj, NID_commonName, i)) >= 0){
		const ASN1_STRING *s = X509_NAME_ENTRY_get_data(X509_NAME_get_entry(subj, i));
		rc = take_name((const char *)ASN1_STRING_get0_data(s), (size_t)ASN1_STRING_length(s), ident, err);
	}
	for(i = 0; rc == CM_OK && i < sk_GENERAL_NAME_num(sans); i++){
		const GENERAL_NAME *g = sk_GENERAL_NAME_value(sans, i);
		if(g->type == GEN_EMAIL){
			rc = take_name((const char *)ASN1_STRING_get0_data(g->d.rfc822Name), (size_t)ASN1_STRING_length(g->d.rfc822Name), ident, err);
		}
	}
	GENERAL_NAMES_free(sans);
	sk_X509_EXTENSION_pop_free(exts, X509_EXTENSION_free);
	if(rc == CM_OK && ident[0] == '\0'){
		rc = cm_err_set(err, CM_ERR_INVAL, "the CSR names no device identity (CN or SubjectAltName email d:<type>:<id>)");
	}
	return rc;
}

enum cm_rc cm_sign_check_csr(X509_REQ *req, const struct cm_csr_rules *rules, char ident[CM_ENROLL_IDENT_MAX + 1], struct cm_err *err)
{
	EVP_PKEY *key = X509_REQ_get0_pubkey(req);
	int ok;

	ident[0] = '\0';
	if(key == NULL){
		ERR_clear_error();
		return cm_err_set(err, CM_ERR_INVAL, "the CSR holds no usable public key");
	}
	ERR_clear_error();
	ok = X509_REQ_verify(req, key);
	ERR_clear_error();
	if(ok != 1){
		return cm_err_set(err, CM_ERR_INVAL, "the CSR's signature does not verify with its key");
	}
	CM_GUARD_RC(check_key(key, rules, err));
	return csr_names(req, ident, err);
}

enum cm_rc cm_sign_key_id(EVP_PKEY *key, char out[65], struct cm_err *err)
{
	unsigned char *der = NULL, md[32];
	int len = i2d_PUBKEY(key, &der);
	unsigned int mdlen = 0;

	if(len <= 0 || !EVP_Digest(der, (size_t)len, md, &mdlen, EVP_sha256(), NULL)){
		OPENSSL_free(der);
		return openssl_fail(err, CM_ERR_CRYPTO, "cannot encode the public key");
	}
	OPENSSL_free(der);
	for(unsigned int i = 0; i < mdlen; i++){
		snprintf(out + 2 * i, 3, "%02x", md[i]);
	}
	return CM_OK;
}

/* The identity as an email SubjectAltName. */
static int add_email_san(X509 *cert, const char *ident)
{
	GENERAL_NAMES *gens = GENERAL_NAMES_new();
	GENERAL_NAME *gen = GENERAL_NAME_new();
	ASN1_IA5STRING *ia5 = ASN1_IA5STRING_new();
	int ok = 0;

	if(gens && gen && ia5 && ASN1_STRING_set(ia5, ident, (int)strlen(ident))){
		GENERAL_NAME_set0_value(gen, GEN_EMAIL, ia5);
		ia5 = NULL;
		if(sk_GENERAL_NAME_push(gens, gen)){
			gen = NULL;
			ok = X509_add1_ext_i2d(cert, NID_subject_alt_name, gens, 0, X509V3_ADD_DEFAULT);
		}
	}
	ASN1_IA5STRING_free(ia5);
	GENERAL_NAME_free(gen);
	GENERAL_NAMES_free(gens);
	return ok;
}

enum cm_rc cm_sign_device_cert(EVP_PKEY *pubkey, const char *ident, const struct cm_csr_rules *rules, time_t lifetime, X509 *ca,
		EVP_PKEY *ca_key, X509 **out, struct cm_err *err)
{
	X509 *cert = NULL;
	X509_NAME *name = NULL;
	bool rsa = EVP_PKEY_get_base_id(pubkey) == EVP_PKEY_RSA;
	enum cm_rc rc = CM_ERR_CRYPTO;

	*out = NULL;
	if(lifetime <= 0 || lifetime > 36500L * 86400){
		return cm_err_set(err, CM_ERR_INVAL, "validity must be 1 to 36500 days");
	}
	ERR_clear_error();
	if((cert = X509_new()) == NULL || (name = X509_NAME_new()) == NULL
			|| (rules->in_cn && !name_add(name, "CN", ident))
			|| !random_serial(cert) || !X509_set_version(cert, X509_VERSION_3)
			|| !X509_set_subject_name(cert, name) || !X509_set_issuer_name(cert, X509_get_subject_name(ca))
			|| !X509_gmtime_adj(X509_getm_notBefore(cert), -60) || !X509_gmtime_adj(X509_getm_notAfter(cert), (long)lifetime)
			|| !cap_not_after(cert, ca) || !X509_set_pubkey(cert, pubkey)
			|| !add_conf_ext(cert, ca, "basicConstraints", "critical,CA:FALSE")
			|| !add_conf_ext(cert, ca, "keyUsage", rsa ? "critical,digitalSignature,keyEncipherment" : "critical,digitalSignature")
			|| !add_conf_ext(cert, ca, "extendedKeyUsage", "clientAuth")
			|| !add_conf_ext(cert, ca, "subjectKeyIdentifier", "hash")
			|| !add_conf_ext(cert, ca, "authorityKeyIdentifier", "keyid:always")
			|| (rules->in_email && !add_email_san(cert, ident))){
		goto out;
	}
	if(X509_sign(cert, ca_key, digest_for(ca_key)) <= 0){
		goto out;
	}
	*out = cert;
	cert = NULL;
	rc = CM_OK;
out:
	if(rc != CM_OK){
		openssl_fail(err, rc, "cannot sign the device certificate");
	}
	X509_free(cert);
	X509_NAME_free(name);
	return rc;
}

bool cm_sign_serial_hex(const ASN1_INTEGER *serial, char out[CM_SERIAL_HEX_MAX + 1])
{
	BIGNUM *bn = ASN1_INTEGER_to_BN(serial, NULL);
	char *hex = bn ? BN_bn2hex(bn) : NULL;
	bool ok = hex && hex[0] != '-' && strlen(hex) <= CM_SERIAL_HEX_MAX;

	if(ok){
		snprintf(out, CM_SERIAL_HEX_MAX + 1, "%s", hex);
	}
	OPENSSL_free(hex);
	BN_free(bn);
	return ok;
}

bool cm_sign_serial_valid(const char *s)
{
	size_t n = strlen(s);

	if(n == 0 || n > CM_SERIAL_HEX_MAX){
		return false;
	}
	for(size_t i = 0; i < n; i++){
		if(!isxdigit((unsigned char)s[i])){
			return false;
		}
	}
	return true;
}

static const char *const reasons[] = {
	"unspecified", "keyCompromise", "cACompromise", "affiliationChanged", "superseded",
	"cessationOfOperation", "certificateHold", NULL, "removeFromCRL", "privilegeWithdrawn", "aACompromise",
};

int cm_sign_reason_parse(const char *name)
{
	for(size_t i = 0; i < sizeof(reasons) / sizeof(reasons[0]); i++){
		/* removeFromCRL belongs in delta CRLs only. */
		if(reasons[i] && i != 8 && !strcmp(reasons[i], name)){
			return (int)i;
		}
	}
	return -1;
}

const char *cm_sign_reason_name(int reason)
{
	if(reason < 0 || (size_t)reason >= sizeof(reasons) / sizeof(reasons[0]) || reasons[reason] == NULL){
		return "unspecified";
	}
	return reasons[reason];
}

/* One revoked entry: serial, date, reason (none for unspecified). */
static int add_entry(X509_CRL *crl, const struct cm_revoked *r)
{
	X509_REVOKED *rev = X509_REVOKED_new();
	BIGNUM *bn = NULL;
	ASN1_INTEGER *serial = NULL;
	ASN1_TIME *at = NULL;
	ASN1_ENUMERATED *reason = NULL;
	int ok = 0;

	if(rev == NULL || !BN_hex2bn(&bn, r->serial) || (serial = BN_to_ASN1_INTEGER(bn, NULL)) == NULL
			|| (at = ASN1_TIME_set(NULL, r->at)) == NULL || !X509_REVOKED_set_serialNumber(rev, serial)
			|| !X509_REVOKED_set_revocationDate(rev, at)){
		goto out;
	}
	if(r->reason > 0){
		if((reason = ASN1_ENUMERATED_new()) == NULL || !ASN1_ENUMERATED_set(reason, r->reason)
				|| !X509_REVOKED_add1_ext_i2d(rev, NID_crl_reason, reason, 0, 0)){
			goto out;
		}
	}
	if(X509_CRL_add0_revoked(crl, rev)){
		rev = NULL;
		ok = 1;
	}
out:
	X509_REVOKED_free(rev);
	BN_free(bn);
	ASN1_INTEGER_free(serial);
	ASN1_TIME_free(at);
	ASN1_ENUMERATED_free(reason);
	return ok;
}

static int crl_exts(X509_CRL *crl, X509 *ca, unsigned long number)
{
	X509V3_CTX ctx;
	X509_EXTENSION *aki;
	ASN1_INTEGER *num = ASN1_INTEGER_new();
	int ok;

	X509V3_set_ctx(&ctx, ca, NULL, NULL, crl, 0);
	aki = X509V3_EXT_nconf(NULL, &ctx, "authorityKeyIdentifier", "keyid:always");
	ok = num && aki && ASN1_INTEGER_set_uint64(num, number) && X509_CRL_add1_ext_i2d(crl, NID_crl_number, num, 0, 0)
			&& X509_CRL_add_ext(crl, aki, -1);
	X509_EXTENSION_free(aki);
	ASN1_INTEGER_free(num);
	return ok;
}

enum cm_rc cm_sign_make_crl(X509 *ca, EVP_PKEY *ca_key, const struct cm_revoked *v, size_t n, unsigned long number, time_t this_update,
		time_t next_update, unsigned char **der, size_t *der_len, struct cm_err *err)
{
	X509_CRL *crl = X509_CRL_new();
	ASN1_TIME *tu = ASN1_TIME_set(NULL, this_update), *nu = ASN1_TIME_set(NULL, next_update);
	enum cm_rc rc = CM_ERR_CRYPTO;
	int len;

	*der = NULL;
	*der_len = 0;
	ERR_clear_error();
	if(crl == NULL || tu == NULL || nu == NULL || !X509_CRL_set_version(crl, X509_CRL_VERSION_2)
			|| !X509_CRL_set_issuer_name(crl, X509_get_subject_name(ca)) || !X509_CRL_set1_lastUpdate(crl, tu)
			|| !X509_CRL_set1_nextUpdate(crl, nu) || !crl_exts(crl, ca, number)){
		goto out;
	}
	for(size_t i = 0; i < n; i++){
		if(v[i].at <= this_update && !add_entry(crl, &v[i])){
			goto out;
		}
	}
	if(!X509_CRL_sort(crl) || X509_CRL_sign(crl, ca_key, digest_for(ca_key)) <= 0 || (len = i2d_X509_CRL(crl, der)) <= 0){
		goto out;
	}
	*der_len = (size_t)len;
	rc = CM_OK;
out:
	if(rc != CM_OK){
		openssl_fail(err, rc, "cannot make the CRL");
	}
	X509_CRL_free(crl);
	ASN1_TIME_free(tu);
	ASN1_TIME_free(nu);
	return rc;
}

enum cm_rc cm_sign_check_pop(X509 *ca, X509 *vcert, const char *code, struct cm_err *err)
{
	char cn[128];
	int ok;

	cm_pki_subject_cn(vcert, cn, sizeof(cn));
	if(strcmp(cn, code)){
		return cm_err_set(err, CM_ERR_INVAL, "the verificationCertificate's CN is not the registration code this tenant gave");
	}
	ERR_clear_error();
	ok = X509_verify(vcert, X509_get0_pubkey(ca));
	ERR_clear_error();
	if(ok != 1){
		return cm_err_set(err, CM_ERR_INVAL, "the verificationCertificate is not signed by this CA's key: no proof that you hold it");
	}
	return CM_OK;
}
