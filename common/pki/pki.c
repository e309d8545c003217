#define _GNU_SOURCE
#include <ctype.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/x509v3.h>
#include <cjson/cJSON.h>

#include "json.h"
#include "log.h"
#include "pki.h"

static enum cm_rc openssl_fail(struct cm_err *err, enum cm_rc rc, const char *what)
{
	char detail[400];

	cm_log_openssl_drain(detail, sizeof(detail));
	if(detail[0]){
		return cm_err_set(err, rc, "%s (%s)", what, detail);
	}
	return cm_err_set(err, rc, "%s", what);
}

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
 * so that a host name holding a comma cannot inject another entry. */
static int add_san_dns(X509 *cert, const char *const *names, size_t count)
{
	GENERAL_NAMES *gens = sk_GENERAL_NAME_new_null();
	int ok = 0;
	size_t i;

	if(gens == NULL){
		return 0;
	}
	for(i = 0; i < count; i++){
		GENERAL_NAME *gen = GENERAL_NAME_new();
		ASN1_IA5STRING *ia5 = ASN1_IA5STRING_new();
		if(gen == NULL || ia5 == NULL || strlen(names[i]) > INT_MAX
				|| !ASN1_STRING_set(ia5, names[i], (int)strlen(names[i]))){
			GENERAL_NAME_free(gen);
			ASN1_IA5STRING_free(ia5);
			goto out;
		}
		GENERAL_NAME_set0_value(gen, GEN_DNS, ia5);
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
	/* 159 random bits: positive, unique, within RFC 5280's 20 octets. */
	if(!BN_rand(serial, 159, BN_RAND_TOP_ANY, BN_RAND_BOTTOM_ANY)
			|| !BN_to_ASN1_INTEGER(serial, X509_get_serialNumber(cert))
			|| !X509_set_version(cert, X509_VERSION_3)
			|| !X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_UTF8, (const unsigned char *)cn, -1, -1, 0)
			|| !X509_set_subject_name(cert, name)
			|| !X509_set_issuer_name(cert, name)
			|| !X509_gmtime_adj(X509_getm_notBefore(cert), -3600)
			|| !X509_time_adj_ex(X509_getm_notAfter(cert), days, 0, NULL)
			|| !X509_set_pubkey(cert, key)
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

static void id_hex(const unsigned char *md, unsigned int mdlen, char out[CM_ID_LEN + 1])
{
	static const char hex[] = "0123456789abcdef";
	unsigned int i;

	for(i = 0; i < mdlen; i++){
		out[2 * i] = hex[md[i] >> 4];
		out[2 * i + 1] = hex[md[i] & 0xf];
	}
	out[CM_ID_LEN] = '\0';
}

enum cm_rc cm_pki_cert_id(X509 *cert, char out[CM_ID_LEN + 1], struct cm_err *err)
{
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned int mdlen = 0;

	ERR_clear_error();
	if(!X509_digest(cert, EVP_sha256(), md, &mdlen) || mdlen * 2 != CM_ID_LEN){
		return openssl_fail(err, CM_ERR_CRYPTO, "cannot compute the certificate's fingerprint");
	}
	id_hex(md, mdlen, out);
	return CM_OK;
}

enum cm_rc cm_pki_chain_id(STACK_OF(X509) *chain, int n, char out[CM_ID_LEN + 1], struct cm_err *err)
{
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned int mdlen = 0;
	EVP_MD_CTX *ctx = EVP_MD_CTX_new();
	bool ok;
	int i;

	ERR_clear_error();
	ok = ctx && EVP_DigestInit_ex(ctx, EVP_sha256(), NULL) == 1;
	for(i = 0; ok && i < n && i < sk_X509_num(chain); i++){
		unsigned char *der = NULL;
		int len = i2d_X509(sk_X509_value(chain, i), &der);
		ok = len > 0 && EVP_DigestUpdate(ctx, der, (size_t)len) == 1;
		OPENSSL_free(der);
	}
	ok = ok && EVP_DigestFinal_ex(ctx, md, &mdlen) == 1 && mdlen * 2 == CM_ID_LEN;
	EVP_MD_CTX_free(ctx);
	if(!ok){
		return openssl_fail(err, CM_ERR_CRYPTO, "cannot compute the chain's fingerprint");
	}
	id_hex(md, mdlen, out);
	return CM_OK;
}

bool cm_pki_id_valid(const char *s)
{
	size_t i;

	if(s == NULL){
		return false;
	}
	for(i = 0; i < CM_ID_LEN; i++){
		if(!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f'))){
			return false;
		}
	}
	return s[CM_ID_LEN] == '\0';
}

/* Copies a memory BIO's content into a malloc'd NUL-terminated buffer. */
static enum cm_rc bio_to_buf(BIO *bio, char **out, size_t *out_len, struct cm_err *err)
{
	char *data;
	long n = BIO_get_mem_data(bio, &data);
	char *copy;

	if(n < 0){
		return cm_err_set(err, CM_ERR_CRYPTO, "cannot read the encoded data");
	}
	copy = malloc((size_t)n + 1);
	if(copy == NULL){
		return cm_err_set(err, CM_ERR_NOMEM, "out of memory");
	}
	if(n > 0){
		memcpy(copy, data, (size_t)n);
	}
	copy[n] = '\0';
	*out = copy;
	if(out_len){
		*out_len = (size_t)n;
	}
	return CM_OK;
}

enum cm_rc cm_pki_chain_to_pem(X509 *leaf, STACK_OF(X509) *extra, char **out, size_t *out_len, struct cm_err *err)
{
	BIO *bio;
	enum cm_rc rc;
	int i;

	*out = NULL;
	ERR_clear_error();
	bio = BIO_new(BIO_s_mem());
	if(bio == NULL || !PEM_write_bio_X509(bio, leaf)){
		BIO_free(bio);
		return openssl_fail(err, CM_ERR_CRYPTO, "cannot encode the certificate");
	}
	for(i = 0; extra && i < sk_X509_num(extra); i++){
		if(!PEM_write_bio_X509(bio, sk_X509_value(extra, i))){
			BIO_free(bio);
			return openssl_fail(err, CM_ERR_CRYPTO, "cannot encode the chain");
		}
	}
	rc = bio_to_buf(bio, out, out_len, err);
	BIO_free(bio);
	return rc;
}

enum cm_rc cm_pki_key_to_pem(EVP_PKEY *key, char **out, size_t *out_len, struct cm_err *err)
{
	BIO *bio;
	enum cm_rc rc;
	char *data;
	long n;

	*out = NULL;
	ERR_clear_error();
	bio = BIO_new(BIO_s_secmem());
	if(bio == NULL){
		bio = BIO_new(BIO_s_mem());
	}
	if(bio == NULL || !PEM_write_bio_PrivateKey(bio, key, NULL, NULL, 0, NULL, NULL)){
		BIO_free(bio);
		return openssl_fail(err, CM_ERR_CRYPTO, "cannot encode the private key");
	}
	rc = bio_to_buf(bio, out, out_len, err);
	n = BIO_get_mem_data(bio, &data);
	if(n > 0){
		OPENSSL_cleanse(data, (size_t)n);
	}
	BIO_free(bio);
	return rc;
}

enum cm_rc cm_pki_key_to_pem_encrypted(EVP_PKEY *key, const char *passphrase, char **out, size_t *out_len, struct cm_err *err)
{
	BIO *bio;
	enum cm_rc rc;
	char *data;
	long n;

	*out = NULL;
	ERR_clear_error();
	bio = BIO_new(BIO_s_mem());
	if(bio == NULL || strlen(passphrase) > INT_MAX
			|| !PEM_write_bio_PKCS8PrivateKey(bio, key, EVP_aes_256_cbc(), passphrase, (int)strlen(passphrase), NULL, NULL)){
		BIO_free(bio);
		return openssl_fail(err, CM_ERR_CRYPTO, "cannot encrypt the private key");
	}
	rc = bio_to_buf(bio, out, out_len, err);
	n = BIO_get_mem_data(bio, &data);
	if(n > 0){
		OPENSSL_cleanse(data, (size_t)n);
	}
	BIO_free(bio);
	return rc;
}

void cm_pki_free_secret(char *buf, size_t len)
{
	if(buf){
		OPENSSL_cleanse(buf, len);
		free(buf);
	}
}

static BIO *mem_bio(const char *buf, size_t len, struct cm_err *err)
{
	BIO *bio;

	if(len > INT_MAX){
		cm_err_set(err, CM_ERR_INVAL, "input too large");
		return NULL;
	}
	bio = BIO_new_mem_buf(buf, (int)len);
	if(bio == NULL){
		cm_err_set(err, CM_ERR_NOMEM, "out of memory");
	}
	return bio;
}

/* True when what is left of the BIO is only white space. */
static bool bio_rest_blank(BIO *bio)
{
	char c;

	while(BIO_read(bio, &c, 1) == 1){
		if(c != ' ' && c != '\t' && c != '\r' && c != '\n'){
			return false;
		}
	}
	return true;
}

enum cm_rc cm_pki_parse_chain_pem(const char *buf, size_t len, X509 **leaf, STACK_OF(X509) **extra, struct cm_err *err)
{
	/* owned until handed out */
	STACK_OF(X509) *chain = NULL;
	X509 *first = NULL;
	X509 *cert;
	BIO *bio;
	enum cm_rc rc = CM_ERR_INVAL;

	*leaf = NULL;
	*extra = NULL;
	bio = mem_bio(buf, len, err);
	if(bio == NULL){
		return CM_ERR_INVAL;
	}
	chain = sk_X509_new_null();
	if(chain == NULL){
		BIO_free(bio);
		return cm_err_set(err, CM_ERR_NOMEM, "out of memory");
	}
	ERR_clear_error();
	while((cert = PEM_read_bio_X509(bio, NULL, NULL, NULL)) != NULL){
		if(first == NULL){
			first = cert;
		}else if(!sk_X509_push(chain, cert)){
			X509_free(cert);
			rc = cm_err_set(err, CM_ERR_NOMEM, "out of memory");
			goto out;
		}
	}
	/* The loop ends on "no start line" at a clean end; anything else means
	 * a damaged PEM block. */
	if(ERR_GET_REASON(ERR_peek_last_error()) != PEM_R_NO_START_LINE){
		/* OpenSSL's own words (ASN.1 internals) would not help a person. */
		ERR_clear_error();
		rc = cm_err_set(err, CM_ERR_INVAL, "the certificate PEM is damaged: a block does not decode to a certificate");
		goto out;
	}
	ERR_clear_error();
	if(first == NULL){
		rc = cm_err_set(err, CM_ERR_INVAL, "no PEM certificate found");
		goto out;
	}
	if(!bio_rest_blank(bio)){
		rc = cm_err_set(err, CM_ERR_INVAL, "unexpected data after the last certificate");
		goto out;
	}
	*leaf = first;
	*extra = chain;
	first = NULL;
	chain = NULL;
	rc = CM_OK;
out:
	X509_free(first);
	sk_X509_pop_free(chain, X509_free);
	BIO_free(bio);
	return rc;
}

enum cm_rc cm_pki_parse_key_pem(const char *buf, size_t len, EVP_PKEY **out, struct cm_err *err)
{
	BIO *bio;
	EVP_PKEY *key;

	*out = NULL;
	bio = mem_bio(buf, len, err);
	if(bio == NULL){
		return CM_ERR_INVAL;
	}
	ERR_clear_error();
	/* An empty passphrase callback result: an encrypted key fails here
	 * instead of prompting on the terminal. */
	key = PEM_read_bio_PrivateKey(bio, NULL, NULL, (void *)"");
	if(key == NULL){
		BIO_free(bio);
		return openssl_fail(err, CM_ERR_INVAL, "not a readable private key");
	}
	if(!bio_rest_blank(bio)){
		BIO_free(bio);
		EVP_PKEY_free(key);
		return cm_err_set(err, CM_ERR_INVAL, "unexpected data after the private key");
	}
	BIO_free(bio);
	*out = key;
	return CM_OK;
}

bool cm_pki_key_matches(X509 *cert, EVP_PKEY *key)
{
	bool ok;

	ERR_clear_error();
	ok = X509_check_private_key(cert, key) == 1;
	ERR_clear_error();
	return ok;
}

void cm_pki_subject_cn(X509 *cert, char *buf, size_t buflen)
{
	X509_NAME *name = X509_get_subject_name(cert);

	buf[0] = '\0';
	if(name == NULL || buflen > INT_MAX){
		return;
	}
	if(X509_NAME_get_text_by_NID(name, NID_commonName, buf, (int)buflen) < 0){
		buf[0] = '\0';
	}
	ERR_clear_error();
}


enum cm_rc cm_pki_parse_certs(const char *text, size_t len, STACK_OF(X509) **out, struct cm_err *err)
{
	STACK_OF(X509) *certs;
	X509 *leaf = NULL, *cert;
	unsigned char *der = NULL;
	const unsigned char *p;
	size_t n = 0;
	int dlen;
	enum cm_rc rc;

	*out = NULL;
	if(len > 4 * 1024 * 1024){
		return cm_err_set(err, CM_ERR_INVAL, "certificate input larger than 4 MiB");
	}
	if(memmem(text, len, "-----BEGIN", 10)){
		rc = cm_pki_parse_chain_pem(text, len, &leaf, &certs, err);
		if(rc != CM_OK){
			return rc;
		}
		if(!sk_X509_insert(certs, leaf, 0)){
			X509_free(leaf);
			sk_X509_pop_free(certs, X509_free);
			return cm_err_set(err, CM_ERR_NOMEM, "out of memory");
		}
		*out = certs;
		return CM_OK;
	}
	/* base64 DER: white space is allowed, nothing else. */
	der = cm_pki_base64_decode(text, len, &n);
	if(der == NULL || n > INT_MAX){
		free(der);
		return cm_err_set(err, CM_ERR_INVAL, "not a PEM certificate nor base64 DER");
	}
	dlen = (int)n;
	p = der;
	ERR_clear_error();
	cert = d2i_X509(NULL, &p, dlen);
	if(cert == NULL || p != der + dlen){
		X509_free(cert);
		free(der);
		ERR_clear_error();
		return cm_err_set(err, CM_ERR_INVAL, "the base64 DER is not exactly one certificate");
	}
	free(der);
	certs = sk_X509_new_null();
	if(certs == NULL || !sk_X509_push(certs, cert)){
		X509_free(cert);
		sk_X509_free(certs);
		return cm_err_set(err, CM_ERR_NOMEM, "out of memory");
	}
	*out = certs;
	return CM_OK;
}

/* base64 of a DER buffer OpenSSL allocated (freed here). */
static enum cm_rc der_to_b64(unsigned char *der, int len, const char *what, char **out, struct cm_err *err)
{
	char *b64;

	*out = NULL;
	if(len <= 0){
		return openssl_fail(err, CM_ERR_CRYPTO, what);
	}
	b64 = malloc((size_t)len / 3 * 4 + 8);
	if(b64 == NULL){
		OPENSSL_free(der);
		return cm_err_set(err, CM_ERR_NOMEM, "out of memory");
	}
	EVP_EncodeBlock((unsigned char *)b64, der, len);
	OPENSSL_free(der);
	*out = b64;
	return CM_OK;
}

enum cm_rc cm_pki_cert_to_der_b64(X509 *cert, char **out, struct cm_err *err)
{
	unsigned char *der = NULL;
	int len = i2d_X509(cert, &der);

	return der_to_b64(der, len, "cannot encode the certificate", out, err);
}

enum cm_rc cm_pki_check_ca(X509 *cert, time_t now, struct cm_err *err)
{
	uint32_t ku;

	/* X509_get_extension_flags parses and caches the extensions. */
	if(!(X509_get_extension_flags(cert) & EXFLAG_CA)){
		ERR_clear_error();
		return cm_err_set(err, CM_ERR_INVAL, "not a CA certificate (basicConstraints CA:TRUE is missing)");
	}
	ku = X509_get_key_usage(cert);
	if(!(ku & KU_KEY_CERT_SIGN)){
		return cm_err_set(err, CM_ERR_INVAL, "the CA certificate's keyUsage lacks keyCertSign");
	}
	if(X509_check_ca(cert) != 1){
		ERR_clear_error();
		return cm_err_set(err, CM_ERR_INVAL, "the certificate cannot act as a CA");
	}
	if(X509_cmp_time(X509_get0_notBefore(cert), &now) > 0){
		return cm_err_set(err, CM_ERR_INVAL, "the CA certificate is not valid yet");
	}
	if(X509_cmp_time(X509_get0_notAfter(cert), &now) < 0){
		return cm_err_set(err, CM_ERR_INVAL, "the CA certificate has expired");
	}
	ERR_clear_error();
	return CM_OK;
}

static bool add_name(cJSON *obj, const char *key, const X509_NAME *name)
{
	BIO *bio = BIO_new(BIO_s_mem());
	char *data;
	long n;
	bool ok = false;

	if(bio && X509_NAME_print_ex(bio, name, 0, XN_FLAG_RFC2253) >= 0){
		n = BIO_get_mem_data(bio, &data);
		if(n < 0){
			n = 0;
		}
		char *s = malloc((size_t)n + 1);
		if(s){
			if(n > 0){
				memcpy(s, data, (size_t)n);
			}
			s[n] = '\0';
			ok = cJSON_AddStringToObject(obj, key, s) != NULL;
			free(s);
		}
	}
	BIO_free(bio);
	return ok;
}

static bool add_time(cJSON *obj, const char *key, const ASN1_TIME *t)
{
	struct tm tm;

	if(!ASN1_TIME_to_tm(t, &tm)){
		return false;
	}
	return cm_json_add_time(obj, key, timegm(&tm));
}

static bool add_digest(cJSON *obj, const char *key, X509 *cert, const EVP_MD *md)
{
	unsigned char buf[EVP_MAX_MD_SIZE];
	char hex[2 * EVP_MAX_MD_SIZE + 1];
	unsigned int len = 0, i;

	if(!X509_digest(cert, md, buf, &len)){
		return false;
	}
	for(i = 0; i < len; i++){
		snprintf(hex + 2 * i, 3, "%02x", buf[i]);
	}
	hex[2 * len] = '\0';
	return cJSON_AddStringToObject(obj, key, hex) != NULL;
}

static bool add_key(cJSON *obj, X509 *cert)
{
	EVP_PKEY *key = X509_get0_pubkey(cert);
	char curve[64];

	if(key == NULL){
		return cJSON_AddStringToObject(obj, "keyType", "unknown") != NULL;
	}
	switch(EVP_PKEY_get_base_id(key)){
		case EVP_PKEY_RSA:
			return cJSON_AddStringToObject(obj, "keyType", "rsa")
				&& cJSON_AddNumberToObject(obj, "keyBits", EVP_PKEY_get_bits(key));
		case EVP_PKEY_EC:
			if(!EVP_PKEY_get_utf8_string_param(key, "group", curve, sizeof(curve), NULL)){
				snprintf(curve, sizeof(curve), "unknown");
			}
			return cJSON_AddStringToObject(obj, "keyType", "ec")
				&& cJSON_AddNumberToObject(obj, "keyBits", EVP_PKEY_get_bits(key))
				&& cJSON_AddStringToObject(obj, "curve", !strcmp(curve, "prime256v1") ? "P-256" : !strcmp(curve, "secp384r1") ? "P-384" : curve);
		case EVP_PKEY_ED25519:
			return cJSON_AddStringToObject(obj, "keyType", "ed25519")
				&& cJSON_AddNumberToObject(obj, "keyBits", EVP_PKEY_get_bits(key));
		default:
			return cJSON_AddStringToObject(obj, "keyType", OBJ_nid2sn(EVP_PKEY_get_base_id(key))) != NULL;
	}
}

static bool add_extensions(cJSON *obj, X509 *cert)
{
	cJSON *arr = cJSON_AddArrayToObject(obj, "extensions");
	int i;

	if(arr == NULL){
		return false;
	}
	for(i = 0; i < X509_get_ext_count(cert); i++){
		X509_EXTENSION *ext = X509_get_ext(cert, i);
		ASN1_OBJECT *oid = X509_EXTENSION_get_object(ext);
		cJSON *e = cJSON_CreateObject();
		BIO *bio = BIO_new(BIO_s_mem());
		char name[128];
		char *data;
		long n;

		if(e == NULL || bio == NULL || !cJSON_AddItemToArray(arr, e)){
			cJSON_Delete(e);
			BIO_free(bio);
			return false;
		}
		OBJ_obj2txt(name, sizeof(name), oid, 0);
		if(!X509V3_EXT_print(bio, ext, 0, 0)){
			ASN1_STRING_print(bio, X509_EXTENSION_get_data(ext));
		}
		n = BIO_get_mem_data(bio, &data);
		{
			char *s = malloc(n > 0 ? (size_t)n + 1 : 1);
			long j;
			if(s == NULL){
				BIO_free(bio);
				return false;
			}
			/* An extension may print as nothing: then data is NULL. */
			if(n > 0){
				memcpy(s, data, (size_t)n);
			}else{
				n = 0;
			}
			s[n] = '\0';
			/* One line: the printer uses newlines between entries. */
			for(j = 0; j < n; j++){
				if(s[j] == '\n'){
					s[j] = (j + 1 < n) ? ';' : '\0';
				}
			}
			cJSON_AddStringToObject(e, "name", name);
			cJSON_AddBoolToObject(e, "critical", X509_EXTENSION_get_critical(ext) > 0);
			cJSON_AddStringToObject(e, "value", s);
			free(s);
		}
		BIO_free(bio);
	}
	ERR_clear_error();
	return true;
}

cJSON *cm_pki_cert_details(X509 *cert)
{
	cJSON *obj = cJSON_CreateObject();
	BIGNUM *bn = NULL;
	char *serial = NULL;
	char id[CM_ID_LEN + 1];

	if(obj == NULL){
		return NULL;
	}
	bn = ASN1_INTEGER_to_BN(X509_get0_serialNumber(cert), NULL);
	serial = bn ? BN_bn2hex(bn) : NULL;
	if(cm_pki_cert_id(cert, id, NULL) != CM_OK
			|| !cJSON_AddStringToObject(obj, "id", id)
			|| !add_name(obj, "subject", X509_get_subject_name(cert))
			|| !add_name(obj, "issuer", X509_get_issuer_name(cert))
			|| serial == NULL || !cJSON_AddStringToObject(obj, "serial", serial)
			|| !add_time(obj, "notBefore", X509_get0_notBefore(cert))
			|| !add_time(obj, "notAfter", X509_get0_notAfter(cert))
			|| !add_key(obj, cert)
			|| !add_digest(obj, "sha1", cert, EVP_sha1())
			|| !add_digest(obj, "sha256", cert, EVP_sha256())
			|| !cJSON_AddBoolToObject(obj, "isCA", X509_check_ca(cert) == 1)
			|| !add_extensions(obj, cert)){
		cJSON_Delete(obj);
		obj = NULL;
	}
	OPENSSL_free(serial);
	BN_free(bn);
	ERR_clear_error();
	return obj;
}

static enum cm_rc sign_new(X509 *issuer, EVP_PKEY *issuer_key, const char *cn, int days, bool ca, X509 **cert_out, EVP_PKEY **key_out, struct cm_err *err)
{
	static const struct cm_keyspec p256 = {CM_KEY_EC, 0, "P-256"};
	EVP_PKEY *key = NULL;
	X509 *cert = NULL;
	X509_NAME *name = X509_NAME_new();
	BIGNUM *serial = BN_new();
	X509V3_CTX ctx;
	enum cm_rc rc;
	const char *exts[][2] = {
		{"basicConstraints", ca ? "critical,CA:TRUE" : "critical,CA:FALSE"},
		{"keyUsage", ca ? "critical,keyCertSign,cRLSign" : "critical,digitalSignature"},
		{"extendedKeyUsage", ca ? NULL : "clientAuth"},
		{"subjectKeyIdentifier", "hash"},
		{"authorityKeyIdentifier", "keyid:always"},
	};
	size_t i;

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
			|| !BN_rand(serial, 159, BN_RAND_TOP_ANY, BN_RAND_BOTTOM_ANY)
			|| !BN_to_ASN1_INTEGER(serial, X509_get_serialNumber(cert))
			|| !X509_set_version(cert, X509_VERSION_3)
			|| !X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_UTF8, (const unsigned char *)cn, -1, -1, 0)
			|| !X509_set_subject_name(cert, name)
			|| !X509_set_issuer_name(cert, issuer ? X509_get_subject_name(issuer) : name)
			|| !X509_gmtime_adj(X509_getm_notBefore(cert), -3600)
			|| !X509_time_adj_ex(X509_getm_notAfter(cert), days, 0, NULL)
			|| !X509_set_pubkey(cert, key)){
		goto fail;
	}
	X509V3_set_ctx(&ctx, issuer ? issuer : cert, cert, NULL, NULL, 0);
	for(i = 0; i < sizeof(exts) / sizeof(exts[0]); i++){
		X509_EXTENSION *ext;
		if(exts[i][1] == NULL){
			continue;
		}
		ext = X509V3_EXT_nconf(NULL, &ctx, exts[i][0], exts[i][1]);
		if(ext == NULL || !X509_add_ext(cert, ext, -1)){
			X509_EXTENSION_free(ext);
			goto fail;
		}
		X509_EXTENSION_free(ext);
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

#include <openssl/decoder.h>
#include <openssl/pkcs12.h>

unsigned char *cm_pki_base64_decode(const char *text, size_t len, size_t *out_len)
{
	char *clean = malloc(len + 1);
	unsigned char *out;
	size_t n = 0, i;
	int dlen;

	if(clean == NULL){
		return NULL;
	}
	for(i = 0; i < len; i++){
		if(!isspace((unsigned char)text[i])){
			clean[n++] = text[i];
		}
	}
	if(n == 0 || n % 4 || n > INT_MAX || (out = malloc(n / 4 * 3 + 1)) == NULL){
		free(clean);
		return NULL;
	}
	dlen = EVP_DecodeBlock(out, (unsigned char *)clean, (int)n);
	if(dlen <= 0){
		free(clean);
		free(out);
		return NULL;
	}
	dlen -= clean[n - 1] == '=' ? (clean[n - 2] == '=' ? 2 : 1) : 0;
	free(clean);
	*out_len = (size_t)dlen;
	return out;
}

enum cm_rc cm_pki_parse_key_any(const char *text, size_t len, const char *passphrase, EVP_PKEY **out, struct cm_err *err)
{
	OSSL_DECODER_CTX *dctx;
	EVP_PKEY *key = NULL;
	unsigned char *der = NULL;
	const unsigned char *p;
	size_t plen;
	bool pem = memmem(text, len, "-----BEGIN", 10) != NULL;
	bool encrypted = pem && (memmem(text, len, "ENCRYPTED", 9) != NULL);
	int ok;

	*out = NULL;
	if(pem){
		p = (const unsigned char *)text;
		plen = len;
	}else{
		der = cm_pki_base64_decode(text, len, &plen);
		if(der == NULL){
			return cm_err_set(err, CM_ERR_INVAL, "the private key is neither PEM nor base64 DER");
		}
		p = der;
	}
	ERR_clear_error();
	dctx = OSSL_DECODER_CTX_new_for_pkey(&key, NULL, NULL, NULL, EVP_PKEY_KEYPAIR, NULL, NULL);
	if(dctx == NULL){
		free(der);
		return cm_err_set(err, CM_ERR_NOMEM, "out of memory");
	}
	/* With no passphrase an empty one is set, so that an encrypted key
	 * fails instead of asking a terminal. */
	OSSL_DECODER_CTX_set_passphrase(dctx, (const unsigned char *)(passphrase ? passphrase : ""), passphrase ? strlen(passphrase) : 0);
	ok = OSSL_DECODER_from_data(dctx, &p, &plen);
	OSSL_DECODER_CTX_free(dctx);
	if(der){
		OPENSSL_cleanse(der, plen);
		free(der);
	}
	ERR_clear_error();
	if(!ok || key == NULL){
		EVP_PKEY_free(key);
		if(encrypted && (passphrase == NULL || passphrase[0] == '\0')){
			return cm_err_set(err, CM_ERR_INVAL, "the private key is encrypted: give its passphrase");
		}
		if(passphrase && passphrase[0]){
			return cm_err_set(err, CM_ERR_INVAL, "the private key cannot be read: wrong passphrase, or a damaged key");
		}
		return cm_err_set(err, CM_ERR_INVAL, "the private key cannot be read (damaged, or encrypted without a passphrase given)");
	}
	*out = key;
	return CM_OK;
}

enum cm_rc cm_pki_parse_pkcs12(const char *b64, const char *passphrase, EVP_PKEY **key, STACK_OF(X509) **certs, struct cm_err *err)
{
	size_t len = 0;
	unsigned char *der = cm_pki_base64_decode(b64, strlen(b64), &len);
	const unsigned char *p = der;
	PKCS12 *p12;
	X509 *cert = NULL;
	STACK_OF(X509) *ca = NULL;
	const char *pass = passphrase ? passphrase : "";

	*key = NULL;
	*certs = NULL;
	if(der == NULL || len > LONG_MAX){
		free(der);
		return cm_err_set(err, CM_ERR_INVAL, "'pkcs12' is not base64");
	}
	ERR_clear_error();
	p12 = d2i_PKCS12(NULL, &p, (long)len);
	free(der);
	if(p12 == NULL){
		ERR_clear_error();
		return cm_err_set(err, CM_ERR_INVAL, "'pkcs12' is not a PKCS#12 bundle");
	}
	if(!PKCS12_verify_mac(p12, pass, -1)){
		PKCS12_free(p12);
		ERR_clear_error();
		return cm_err_set(err, CM_ERR_INVAL, passphrase ? "wrong passphrase for the PKCS#12 bundle" : "the PKCS#12 bundle needs its passphrase");
	}
	if(!PKCS12_parse(p12, pass, key, &cert, &ca) || *key == NULL || cert == NULL){
		PKCS12_free(p12);
		EVP_PKEY_free(*key);
		*key = NULL;
		X509_free(cert);
		sk_X509_pop_free(ca, X509_free);
		ERR_clear_error();
		return cm_err_set(err, CM_ERR_INVAL, "the PKCS#12 bundle holds no usable key and certificate");
	}
	PKCS12_free(p12);
	if(ca == NULL){
		ca = sk_X509_new_null();
	}
	if(ca == NULL || !sk_X509_insert(ca, cert, 0)){
		X509_free(cert);
		sk_X509_pop_free(ca, X509_free);
		EVP_PKEY_free(*key);
		*key = NULL;
		return cm_err_set(err, CM_ERR_NOMEM, "out of memory");
	}
	*certs = ca;
	return CM_OK;
}

enum cm_rc cm_pki_order_chain(EVP_PKEY *key, STACK_OF(X509) *certs, time_t now, X509 **leaf, STACK_OF(X509) **extra, struct cm_err *err)
{
	STACK_OF(X509) *rest = sk_X509_dup(certs), *ordered = sk_X509_new_null();
	X509 *cur = NULL;
	int i;

	*leaf = NULL;
	*extra = NULL;
	if(rest == NULL || ordered == NULL){
		sk_X509_free(rest);
		sk_X509_free(ordered);
		return cm_err_set(err, CM_ERR_NOMEM, "out of memory");
	}
	for(i = 0; i < sk_X509_num(rest); i++){
		if(cm_pki_key_matches(sk_X509_value(rest, i), key)){
			cur = sk_X509_delete(rest, i);
			break;
		}
	}
	if(cur == NULL){
		sk_X509_free(rest);
		sk_X509_free(ordered);
		return cm_err_set(err, CM_ERR_INVAL, "the private key does not match the certificate");
	}
	*leaf = cur;
	while(sk_X509_num(rest) > 0){
		X509 *next = NULL;
		for(i = 0; i < sk_X509_num(rest); i++){
			X509 *c = sk_X509_value(rest, i);
			EVP_PKEY *ik = X509_get0_pubkey(c);
			if(X509_check_issued(c, cur) == X509_V_OK && ik && X509_verify(cur, ik) == 1){
				next = sk_X509_delete(rest, i);
				break;
			}
		}
		ERR_clear_error();
		if(next == NULL){
			sk_X509_free(rest);
			sk_X509_free(ordered);
			*leaf = NULL;
			return cm_err_set(err, CM_ERR_INVAL, "the certificate chain does not link: a certificate issued none of the others");
		}
		sk_X509_push(ordered, next);
		cur = next;
	}
	sk_X509_free(rest);
	for(i = -1; i < sk_X509_num(ordered); i++){
		X509 *c = i < 0 ? *leaf : sk_X509_value(ordered, i);
		char cn[128];
		if(X509_cmp_time(X509_get0_notBefore(c), &now) > 0 || X509_cmp_time(X509_get0_notAfter(c), &now) < 0){
			cm_pki_subject_cn(c, cn, sizeof(cn));
			sk_X509_free(ordered);
			*leaf = NULL;
			return cm_err_set(err, CM_ERR_INVAL, "certificate '%s' is %s", cn,
					X509_cmp_time(X509_get0_notAfter(c), &now) < 0 ? "expired" : "not valid yet");
		}
	}
	/* Hand out references of our own. */
	X509_up_ref(*leaf);
	for(i = 0; i < sk_X509_num(ordered); i++){
		X509_up_ref(sk_X509_value(ordered, i));
	}
	*extra = ordered;
	return CM_OK;
}

enum cm_rc cm_pki_make_csr(EVP_PKEY *key, const struct cm_subject *sub, const char *const *sans, size_t nsans, X509_REQ **out, struct cm_err *err)
{
	X509_REQ *req = X509_REQ_new();
	X509_NAME *name = X509_NAME_new();
	GENERAL_NAMES *gens = NULL;
	STACK_OF(X509_EXTENSION) *exts = NULL;
	const struct { const char *field; const char *value; } parts[] = {
		{"C", sub->c}, {"ST", sub->st}, {"L", sub->l}, {"O", sub->o}, {"OU", sub->ou}, {"CN", sub->cn}, {"emailAddress", sub->email},
	};
	size_t i;
	enum cm_rc rc = CM_ERR_INVAL;

	*out = NULL;
	ERR_clear_error();
	if(req == NULL || name == NULL){
		rc = cm_err_set(err, CM_ERR_NOMEM, "out of memory");
		goto out;
	}
	for(i = 0; i < sizeof(parts) / sizeof(parts[0]); i++){
		if(parts[i].value && !X509_NAME_add_entry_by_txt(name, parts[i].field, MBSTRING_UTF8, (const unsigned char *)parts[i].value, -1, -1, 0)){
			rc = cm_err_set(err, CM_ERR_INVAL, "subject field %s is not valid (%s)", parts[i].field,
					!strcmp(parts[i].field, "C") ? "two letters" : "too long or bad characters");
			goto out;
		}
	}
	if(X509_NAME_entry_count(name) == 0){
		rc = cm_err_set(err, CM_ERR_INVAL, "the subject is empty: give at least CN");
		goto out;
	}
	if(nsans > 0){
		gens = sk_GENERAL_NAME_new_null();
		for(i = 0; gens && i < nsans; i++){
			static const struct { const char *prefix; int type; } kinds[] = {{"DNS:", GEN_DNS}, {"IP:", GEN_IPADD}, {"email:", GEN_EMAIL}, {"URI:", GEN_URI}};
			GENERAL_NAME *gen = NULL;
			size_t k;
			for(k = 0; k < 4; k++){
				size_t pl = strlen(kinds[k].prefix);
				if(!strncmp(sans[i], kinds[k].prefix, pl) && sans[i][pl]){
					if(kinds[k].type == GEN_IPADD){
						ASN1_OCTET_STRING *ip = a2i_IPADDRESS(sans[i] + pl);
						if(ip){
							gen = GENERAL_NAME_new();
							if(gen){
								GENERAL_NAME_set0_value(gen, GEN_IPADD, ip);
							}else{
								ASN1_OCTET_STRING_free(ip);
							}
						}
					}else{
						ASN1_IA5STRING *ia5 = ASN1_IA5STRING_new();
						if(ia5 && ASN1_STRING_set(ia5, sans[i] + pl, -1) && (gen = GENERAL_NAME_new()) != NULL){
							GENERAL_NAME_set0_value(gen, kinds[k].type, ia5);
						}else{
							ASN1_IA5STRING_free(ia5);
						}
					}
					break;
				}
			}
			if(gen == NULL || !sk_GENERAL_NAME_push(gens, gen)){
				GENERAL_NAME_free(gen);
				ERR_clear_error();
				rc = cm_err_set(err, CM_ERR_INVAL, "subjectAltName '%.80s' must be DNS:, IP:, email: or URI: with a value", sans[i]);
				goto out;
			}
		}
		exts = sk_X509_EXTENSION_new_null();
		if(gens == NULL || exts == NULL){
			rc = cm_err_set(err, CM_ERR_NOMEM, "out of memory");
			goto out;
		}
		{
			X509_EXTENSION *ext = X509V3_EXT_i2d(NID_subject_alt_name, 0, gens);
			if(ext == NULL || !sk_X509_EXTENSION_push(exts, ext)){
				X509_EXTENSION_free(ext);
				rc = cm_err_set(err, CM_ERR_NOMEM, "out of memory");
				goto out;
			}
		}
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
	GENERAL_NAMES_free(gens);
	sk_X509_EXTENSION_pop_free(exts, X509_EXTENSION_free);
	return rc;
}

enum cm_rc cm_pki_csr_id(X509_REQ *req, char out[CM_ID_LEN + 1], struct cm_err *err)
{
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned int len = 0, i;

	if(!X509_REQ_digest(req, EVP_sha256(), md, &len) || len * 2 != CM_ID_LEN){
		return openssl_fail(err, CM_ERR_CRYPTO, "cannot compute the CSR's fingerprint");
	}
	for(i = 0; i < len; i++){
		snprintf(out + 2 * i, 3, "%02x", md[i]);
	}
	return CM_OK;
}

enum cm_rc cm_pki_csr_to_pem(X509_REQ *req, char **out, struct cm_err *err)
{
	BIO *bio = BIO_new(BIO_s_mem());
	enum cm_rc rc;

	if(bio == NULL || !PEM_write_bio_X509_REQ(bio, req)){
		BIO_free(bio);
		return openssl_fail(err, CM_ERR_CRYPTO, "cannot encode the CSR");
	}
	rc = bio_to_buf(bio, out, NULL, err);
	BIO_free(bio);
	return rc;
}

enum cm_rc cm_pki_csr_to_der_b64(X509_REQ *req, char **out, struct cm_err *err)
{
	unsigned char *der = NULL;
	int len = i2d_X509_REQ(req, &der);

	return der_to_b64(der, len, "cannot encode the CSR", out, err);
}

enum cm_rc cm_pki_parse_csr_pem(const char *buf, size_t len, X509_REQ **out, struct cm_err *err)
{
	BIO *bio = mem_bio(buf, len, err);

	*out = NULL;
	if(bio == NULL){
		return CM_ERR_INVAL;
	}
	*out = PEM_read_bio_X509_REQ(bio, NULL, NULL, NULL);
	BIO_free(bio);
	ERR_clear_error();
	return *out ? CM_OK : cm_err_set(err, CM_ERR_INVAL, "not a PEM CSR");
}

time_t cm_pki_not_after(const X509 *cert)
{
	struct tm tm;

	return ASN1_TIME_to_tm(X509_get0_notAfter(cert), &tm) ? timegm(&tm) : 0;
}
