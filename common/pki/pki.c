/* Certificates, keys and CSRs as plain OpenSSL objects: ids, encodings,
 * parsing of what certmgr itself wrote, checks. */
#define _GNU_SOURCE
#include <ctype.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/x509v3.h>

#include "log.h"
#include "pki.h"
#include "pki-int.h"

enum cm_rc openssl_fail(struct cm_err *err, enum cm_rc rc, const char *what)
{
	char detail[400];

	cm_log_openssl_drain(detail, sizeof(detail));
	if(detail[0]){
		return cm_err_set(err, rc, "%s (%s)", what, detail);
	}
	return cm_err_set(err, rc, "%s", what);
}

void cm_hex(const unsigned char *p, size_t n, char *out)
{
	static const char digits[] = "0123456789abcdef";

	for(size_t i = 0; i < n; i++){
		out[2 * i] = digits[p[i] >> 4];
		out[2 * i + 1] = digits[p[i] & 15];
	}
	out[2 * n] = '\0';
}

static void id_hex(const unsigned char *md, unsigned int mdlen, char out[CM_ID_LEN + 1])
{
	cm_hex(md, mdlen < CM_ID_LEN / 2 ? mdlen : CM_ID_LEN / 2, out);
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

bool cm_pki_has_policy_ext(const X509 *cert)
{
	static const int nids[] = {NID_certificate_policies, NID_policy_mappings, NID_policy_constraints, NID_inhibit_any_policy};

	for(size_t i = 0; cert && i < sizeof(nids) / sizeof(nids[0]); i++){
		if(X509_get_ext_by_NID(cert, nids[i], -1) >= 0){
			return true;
		}
	}
	return false;
}
