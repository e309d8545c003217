/* Making keys, certificates and CSRs. */
#define _GNU_SOURCE
#include <limits.h>
#include <string.h>

#include <openssl/err.h>
#include <openssl/x509v3.h>

#include "pki.h"
#include "pki-int.h"

enum cm_rc cm_pki_generate_key(const struct cm_keyspec *spec, EVP_PKEY **out, struct cm_err *err)
{
	EVP_PKEY *key = NULL;

	*out = NULL;
	ERR_clear_error();
	switch(spec->type){
		case CM_KEY_EC:
			if(spec->curve == NULL || (strcmp(spec->curve, "P-256") && strcmp(spec->curve, "P-384"))){
				return cm_err_set(err, CM_ERR_INVAL, "unsupported EC curve (use P-256 or P-384)");
			}
			key = EVP_PKEY_Q_keygen(NULL, NULL, "EC", spec->curve);
			break;
		case CM_KEY_RSA:
			if(spec->bits != 2048 && spec->bits != 3072 && spec->bits != 4096 && !(spec->bits == 1024 && spec->allow_weak)){
				return cm_err_set(err, CM_ERR_INVAL, spec->bits == 1024 ? "RSA 1024 is weak: it needs allowWeakKey" : "unsupported RSA size (use 2048, 3072 or 4096)");
			}
			key = EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)spec->bits);
			break;
		case CM_KEY_ED25519:
			key = EVP_PKEY_Q_keygen(NULL, NULL, "ED25519");
			break;
		default:
			return cm_err_set(err, CM_ERR_INVAL, "unknown key type");
	}
	if(key == NULL){
		return openssl_fail(err, CM_ERR_CRYPTO, "key generation failed");
	}
	*out = key;
	return CM_OK;
}

static int add_ext(X509 *cert, int nid, const char *value)
{
	X509V3_CTX ctx;
	X509_EXTENSION *ext;
	int ok;

	X509V3_set_ctx_nodb(&ctx);
	X509V3_set_ctx(&ctx, cert, cert, NULL, NULL, 0);
	ext = X509V3_EXT_conf_nid(NULL, &ctx, nid, value);
	if(ext == NULL){
		return 0;
	}
	ok = X509_add_ext(cert, ext, -1);
	X509_EXTENSION_free(ext);
	return ok;
}

/* SAN entries are built as typed GENERAL_NAMEs rather than a config string,
 * so that a host name holding a comma cannot inject another entry. One
 * entry of type (GEN_DNS, GEN_EMAIL, GEN_URI) holding value, or NULL. */
static GENERAL_NAME *ia5_name(int type, const char *value)
{
	GENERAL_NAME *gen = GENERAL_NAME_new();
	ASN1_IA5STRING *ia5 = ASN1_IA5STRING_new();

	if(gen == NULL || ia5 == NULL || strlen(value) > INT_MAX
			|| !ASN1_STRING_set(ia5, value, (int)strlen(value))){
		GENERAL_NAME_free(gen);
		ASN1_IA5STRING_free(ia5);
		return NULL;
	}
	GENERAL_NAME_set0_value(gen, type, ia5);
	return gen;
}

/* An entry written "DNS:name", "IP:addr", "email:addr" or "URI:uri", or
 * NULL when it is none of those or memory is short. */
static GENERAL_NAME *san_entry(const char *san)
{
	static const struct { const char *prefix; int type; } kinds[] = {{"DNS:", GEN_DNS}, {"IP:", GEN_IPADD}, {"email:", GEN_EMAIL}, {"URI:", GEN_URI}};
	GENERAL_NAME *gen;
	ASN1_OCTET_STRING *ip;
	size_t k, pl;

	for(k = 0; k < sizeof(kinds) / sizeof(kinds[0]); k++){
		pl = strlen(kinds[k].prefix);
		if(strncmp(san, kinds[k].prefix, pl) || san[pl] == '\0'){
			continue;
		}
		if(kinds[k].type != GEN_IPADD){
			return ia5_name(kinds[k].type, san + pl);
		}
		if((ip = a2i_IPADDRESS(san + pl)) == NULL){
			return NULL;
		}
		if((gen = GENERAL_NAME_new()) == NULL){
			ASN1_OCTET_STRING_free(ip);
			return NULL;
		}
		GENERAL_NAME_set0_value(gen, GEN_IPADD, ip);
		return gen;
	}
	return NULL;
}

static int add_san_dns(X509 *cert, const char *const *names, size_t count)
{
	GENERAL_NAMES *gens = sk_GENERAL_NAME_new_null();
	int ok = 0;
	size_t i;

	if(gens == NULL){
		return 0;
	}
	for(i = 0; i < count; i++){
		GENERAL_NAME *gen = ia5_name(GEN_DNS, names[i]);
		if(gen == NULL){
			goto out;
		}
		if(!sk_GENERAL_NAME_push(gens, gen)){
			GENERAL_NAME_free(gen);
			goto out;
		}
	}
	ok = X509_add1_ext_i2d(cert, NID_subject_alt_name, gens, 0, X509V3_ADD_DEFAULT) == 1;
out:
	GENERAL_NAMES_free(gens);
	return ok;
}

/* What every certificate certmgr makes has: a random serial, version 3,
 * subject CN=cn (in name), the issuer's name (NULL: self-issued), valid
 * from an hour ago for days, key. 0 on failure. */
static int set_basics(X509 *cert, BIGNUM *serial, X509_NAME *name, const char *cn, const X509_NAME *issuer, int days, EVP_PKEY *key)
{
	/* 159 random bits: positive, unique, within RFC 5280's 20 octets. */
	return BN_rand(serial, 159, BN_RAND_TOP_ANY, BN_RAND_BOTTOM_ANY)
			&& BN_to_ASN1_INTEGER(serial, X509_get_serialNumber(cert))
			&& X509_set_version(cert, X509_VERSION_3)
			&& X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_UTF8, (const unsigned char *)cn, -1, -1, 0)
			&& X509_set_subject_name(cert, name)
			&& X509_set_issuer_name(cert, issuer ? issuer : name)
			&& X509_gmtime_adj(X509_getm_notBefore(cert), -3600)
			&& X509_time_adj_ex(X509_getm_notAfter(cert), days, 0, NULL)
			&& X509_set_pubkey(cert, key);
}

/* Extensions given as {name, value} (value NULL: left out), issued by
 * issuer (NULL: cert itself). 0 on failure. */
static int add_exts(X509 *cert, X509 *issuer, const char *const exts[][2], size_t n)
{
	X509V3_CTX ctx;
	size_t i;

	X509V3_set_ctx(&ctx, issuer ? issuer : cert, cert, NULL, NULL, 0);
	for(i = 0; i < n; i++){
		X509_EXTENSION *ext;
		if(exts[i][1] == NULL){
			continue;
		}
		ext = X509V3_EXT_nconf(NULL, &ctx, exts[i][0], exts[i][1]);
		if(ext == NULL || !X509_add_ext(cert, ext, -1)){
			X509_EXTENSION_free(ext);
			return 0;
		}
		X509_EXTENSION_free(ext);
	}
	return 1;
}

enum cm_rc cm_pki_make_self_signed(EVP_PKEY *key, const char *cn, const char *const *dns_names, size_t dns_count, int days, X509 **out, struct cm_err *err)
{
	/* owned, freed at the end unless handed out */
	X509 *cert = NULL;
	X509_NAME *name = NULL;
	BIGNUM *serial = NULL;
	enum cm_rc rc = CM_ERR_CRYPTO;
	const char *why = "cannot build the certificate";

	*out = NULL;
	if(cn == NULL || cn[0] == '\0' || strlen(cn) > 64){
		return cm_err_set(err, CM_ERR_INVAL, "the common name must hold 1 to 64 characters");
	}
	if(days <= 0 || days > 36500){
		return cm_err_set(err, CM_ERR_INVAL, "validity must be 1 to 36500 days");
	}
	ERR_clear_error();
	cert = X509_new();
	name = X509_NAME_new();
	serial = BN_new();
	if(cert == NULL || name == NULL || serial == NULL){
		goto out;
	}
	if(!set_basics(cert, serial, name, cn, NULL, days, key)
			|| !add_ext(cert, NID_basic_constraints, "critical,CA:FALSE")
			|| !add_ext(cert, NID_key_usage, "critical,digitalSignature,keyEncipherment")
			|| !add_ext(cert, NID_ext_key_usage, "serverAuth,clientAuth")
			|| !add_ext(cert, NID_subject_key_identifier, "hash")){
		goto out;
	}
	if(dns_count > 0 && !add_san_dns(cert, dns_names, dns_count)){
		why = "cannot add the subjectAltNames";
		goto out;
	}
	/* Ed25519 signs without a separate digest. */
	if(X509_sign(cert, key, EVP_PKEY_get_id(key) == EVP_PKEY_ED25519 ? NULL : EVP_sha256()) <= 0){
		why = "cannot sign the certificate";
		goto out;
	}
	*out = cert;
	cert = NULL;
	rc = CM_OK;
out:
	if(rc != CM_OK){
		openssl_fail(err, rc, why);
	}
	X509_free(cert);
	X509_NAME_free(name);
	BN_free(serial);
	return rc;
}

static enum cm_rc sign_new(X509 *issuer, EVP_PKEY *issuer_key, const char *cn, int days, bool ca, X509 **cert_out, EVP_PKEY **key_out, struct cm_err *err)
{
	static const struct cm_keyspec p256 = {CM_KEY_EC, 0, "P-256"};
	EVP_PKEY *key = NULL;
	X509 *cert = NULL;
	X509_NAME *name = X509_NAME_new();
	BIGNUM *serial = BN_new();
	enum cm_rc rc;
	const char *exts[][2] = {
		{"basicConstraints", ca ? "critical,CA:TRUE" : "critical,CA:FALSE"},
		{"keyUsage", ca ? "critical,keyCertSign,cRLSign" : "critical,digitalSignature"},
		{"extendedKeyUsage", ca ? NULL : "clientAuth"},
		{"subjectKeyIdentifier", "hash"},
		{"authorityKeyIdentifier", "keyid:always"},
	};

	*cert_out = NULL;
	*key_out = NULL;
	rc = cm_pki_generate_key(&p256, &key, err);
	if(rc != CM_OK){
		goto out;
	}
	rc = CM_ERR_CRYPTO;
	ERR_clear_error();
	cert = X509_new();
	if(cert == NULL || name == NULL || serial == NULL
			|| !set_basics(cert, serial, name, cn, issuer ? X509_get_subject_name(issuer) : NULL, days, key)
			|| !add_exts(cert, issuer, exts, sizeof(exts) / sizeof(exts[0]))){
		goto fail;
	}
	if(X509_sign(cert, issuer_key ? issuer_key : key, EVP_sha256()) <= 0){
		goto fail;
	}
	*cert_out = cert;
	*key_out = key;
	cert = NULL;
	key = NULL;
	rc = CM_OK;
	goto out;
fail:
	openssl_fail(err, rc, "cannot make the certificate");
out:
	X509_free(cert);
	EVP_PKEY_free(key);
	X509_NAME_free(name);
	BN_free(serial);
	return rc;
}

enum cm_rc cm_pki_make_ca(const char *cn, int days, X509 **cert, EVP_PKEY **key, struct cm_err *err)
{
	return sign_new(NULL, NULL, cn, days, true, cert, key, err);
}

enum cm_rc cm_pki_make_client_cert(X509 *ca, EVP_PKEY *ca_key, const char *cn, int days, X509 **cert, EVP_PKEY **key, struct cm_err *err)
{
	return sign_new(ca, ca_key, cn, days, false, cert, key, err);
}

/* The subject of a CSR: every field given, at least one. */
static enum cm_rc csr_subject(X509_NAME *name, const struct cm_subject *sub, struct cm_err *err)
{
	const struct { const char *field; const char *value; } parts[] = {
		{"C", sub->c}, {"ST", sub->st}, {"L", sub->l}, {"O", sub->o}, {"OU", sub->ou}, {"CN", sub->cn}, {"emailAddress", sub->email},
	};
	size_t i;

	for(i = 0; i < sizeof(parts) / sizeof(parts[0]); i++){
		if(parts[i].value && !X509_NAME_add_entry_by_txt(name, parts[i].field, MBSTRING_UTF8, (const unsigned char *)parts[i].value, -1, -1, 0)){
			return cm_err_set(err, CM_ERR_INVAL, "subject field %s is not valid (%s)", parts[i].field,
					!strcmp(parts[i].field, "C") ? "two letters" : "too long or bad characters");
		}
	}
	if(X509_NAME_entry_count(name) == 0){
		return cm_err_set(err, CM_ERR_INVAL, "the subject is empty: give at least CN");
	}
	return CM_OK;
}

/* The subjectAltName extension of a CSR, in *out (NULL when nsans is 0). */
static enum cm_rc csr_san_exts(const char *const *sans, size_t nsans, STACK_OF(X509_EXTENSION) **out, struct cm_err *err)
{
	GENERAL_NAMES *gens = NULL;
	STACK_OF(X509_EXTENSION) *exts = NULL;
	X509_EXTENSION *ext = NULL;
	enum cm_rc rc = CM_ERR_NOMEM;
	size_t i;

	*out = NULL;
	if(nsans == 0){
		return CM_OK;
	}
	gens = sk_GENERAL_NAME_new_null();
	for(i = 0; gens && i < nsans; i++){
		GENERAL_NAME *gen = san_entry(sans[i]);
		if(gen == NULL || !sk_GENERAL_NAME_push(gens, gen)){
			GENERAL_NAME_free(gen);
			ERR_clear_error();
			rc = cm_err_set(err, CM_ERR_INVAL, "subjectAltName '%.80s' must be DNS:, IP:, email: or URI: with a value", sans[i]);
			goto out;
		}
	}
	exts = sk_X509_EXTENSION_new_null();
	if(gens == NULL || exts == NULL
			|| (ext = X509V3_EXT_i2d(NID_subject_alt_name, 0, gens)) == NULL || !sk_X509_EXTENSION_push(exts, ext)){
		X509_EXTENSION_free(ext);
		rc = cm_err_set(err, CM_ERR_NOMEM, "out of memory");
		goto out;
	}
	*out = exts;
	exts = NULL;
	rc = CM_OK;
out:
	GENERAL_NAMES_free(gens);
	sk_X509_EXTENSION_pop_free(exts, X509_EXTENSION_free);
	return rc;
}

enum cm_rc cm_pki_make_csr(EVP_PKEY *key, const struct cm_subject *sub, const char *const *sans, size_t nsans, X509_REQ **out, struct cm_err *err)
{
	X509_REQ *req = X509_REQ_new();
	X509_NAME *name = X509_NAME_new();
	STACK_OF(X509_EXTENSION) *exts = NULL;
	enum cm_rc rc;

	*out = NULL;
	ERR_clear_error();
	if(req == NULL || name == NULL){
		rc = cm_err_set(err, CM_ERR_NOMEM, "out of memory");
		goto out;
	}
	if((rc = csr_subject(name, sub, err)) != CM_OK || (rc = csr_san_exts(sans, nsans, &exts, err)) != CM_OK){
		goto out;
	}
	if(!X509_REQ_set_version(req, X509_REQ_VERSION_1) || !X509_REQ_set_subject_name(req, name) || !X509_REQ_set_pubkey(req, key)
			|| (exts && !X509_REQ_add_extensions(req, exts))
			|| X509_REQ_sign(req, key, EVP_PKEY_get_id(key) == EVP_PKEY_ED25519 ? NULL : EVP_sha256()) <= 0){
		rc = openssl_fail(err, CM_ERR_CRYPTO, "cannot sign the CSR");
		goto out;
	}
	*out = req;
	req = NULL;
	rc = CM_OK;
out:
	X509_REQ_free(req);
	X509_NAME_free(name);
	sk_X509_EXTENSION_pop_free(exts, X509_EXTENSION_free);
	return rc;
}
