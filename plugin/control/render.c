/* The control API's JSON for objects of the layers below: certificate
 * details and rejected chains. The layers below keep their own formats on
 * disk, so renaming a field of the API changes this file and docs/API.md
 * only. */
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/x509v3.h>
#include <cjson/cJSON.h>

#include "json.h"
#include "pki.h"
#include "rejected.h"
#include "render.h"

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

cJSON *cm_render_cert_details(X509 *cert)
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

cJSON *cm_render_rejected(const struct cm_rejected *r, bool with_chain)
{
	cJSON *o = cJSON_CreateObject();
	char cn[256];

	if(o == NULL){
		return NULL;
	}
	cm_pki_subject_cn(sk_X509_value(r->chain, 0), cn, sizeof(cn));
	if(!cJSON_AddStringToObject(o, "id", r->id)
			|| !cJSON_AddStringToObject(o, "leafId", r->leaf_id)
			|| !cJSON_AddStringToObject(o, "commonName", cn)
			|| !cJSON_AddStringToObject(o, "reason", r->reason)
			|| !cJSON_AddStringToObject(o, "sni", r->sni)
			|| !cJSON_AddStringToObject(o, "tenant", r->tenant)
			|| !cJSON_AddStringToObject(o, "address", r->address)
			|| !cm_json_add_time(o, "firstSeen", r->first_seen)
			|| !cm_json_add_time(o, "lastSeen", r->last_seen)
			|| !cJSON_AddNumberToObject(o, "count", (double)r->count)
			|| !cJSON_AddNumberToObject(o, "chainLength", sk_X509_num(r->chain))){
		cJSON_Delete(o);
		return NULL;
	}
	if(with_chain){
		STACK_OF(X509) *rest = sk_X509_dup(r->chain);
		char *pem = NULL;
		size_t len;
		X509 *leaf = rest ? sk_X509_shift(rest) : NULL;
		bool ok = leaf && cm_pki_chain_to_pem(leaf, rest, &pem, &len, NULL) == CM_OK
			&& cJSON_AddStringToObject(o, "chain", pem) != NULL;
		sk_X509_free(rest);
		free(pem);
		if(!ok){
			cJSON_Delete(o);
			return NULL;
		}
	}
	return o;
}
