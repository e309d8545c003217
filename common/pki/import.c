/* Operator input: keys in any of their encodings, PKCS#12 bundles,
 * chains in any order. */
#define _GNU_SOURCE
#include <limits.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/decoder.h>
#include <openssl/err.h>
#include <openssl/pkcs12.h>
#include <openssl/x509v3.h>

#include "pki.h"
#include "pki-int.h"

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

/* Every certificate of leaf and its chain is valid at now. */
static enum cm_rc chain_valid_at(X509 *leaf, STACK_OF(X509) *chain, time_t now, struct cm_err *err)
{
	int i;

	for(i = -1; i < sk_X509_num(chain); i++){
		X509 *c = i < 0 ? leaf : sk_X509_value(chain, i);
		char cn[128];
		if(X509_cmp_time(X509_get0_notBefore(c), &now) > 0 || X509_cmp_time(X509_get0_notAfter(c), &now) < 0){
			cm_pki_subject_cn(c, cn, sizeof(cn));
			return cm_err_set(err, CM_ERR_INVAL, "certificate '%s' is %s", cn,
					X509_cmp_time(X509_get0_notAfter(c), &now) < 0 ? "expired" : "not valid yet");
		}
	}
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
	if(chain_valid_at(*leaf, ordered, now, err) != CM_OK){
		sk_X509_free(ordered);
		*leaf = NULL;
		return CM_ERR_INVAL;
	}
	/* Hand out references of our own. */
	X509_up_ref(*leaf);
	for(i = 0; i < sk_X509_num(ordered); i++){
		X509_up_ref(sk_X509_value(ordered, i));
	}
	*extra = ordered;
	return CM_OK;
}
