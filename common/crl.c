#define _GNU_SOURCE
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/x509v3.h>

#include "crl.h"

struct cm_crl_slot {
	uint64_t hash;
	uint32_t offset; /* into the arena; UINT32_MAX: empty */
};

/* FNV-1a, then a final mix: serials are mostly random already. */
static uint64_t serial_hash(const unsigned char *p, size_t n)
{
	uint64_t h = 1469598103934665603ULL;
	size_t i;

	for(i = 0; i < n; i++){
		h ^= p[i];
		h *= 1099511628211ULL;
	}
	h ^= h >> 33;
	h *= 0xff51afd7ed558ccdULL;
	h ^= h >> 33;
	return h;
}

static X509_CRL *parse(const unsigned char *buf, size_t len)
{
	X509_CRL *crl = NULL;
	BIO *bio;

	if(len > INT_MAX){
		return NULL;
	}
	if(len > 10 && memmem(buf, len < 1024 ? len : 1024, "-----BEGIN", 10)){
		bio = BIO_new_mem_buf(buf, (int)len);
		if(bio){
			crl = PEM_read_bio_X509_CRL(bio, NULL, NULL, NULL);
		}
		BIO_free(bio);
	}else{
		const unsigned char *p = buf;
		crl = d2i_X509_CRL(NULL, &p, (long)len);
		if(crl && p != buf + len){
			X509_CRL_free(crl);
			crl = NULL;
		}
	}
	ERR_clear_error();
	return crl;
}

static time_t asn1_to_time(const ASN1_TIME *t)
{
	struct tm tm;

	return t && ASN1_TIME_to_tm(t, &tm) ? timegm(&tm) : 0;
}

static enum cm_rc build_index(struct cm_crl *c, X509_CRL *crl, struct cm_err *err)
{
	STACK_OF(X509_REVOKED) *revoked = X509_CRL_get_REVOKED(crl);
	size_t n = (size_t)(revoked ? sk_X509_REVOKED_num(revoked) : 0);
	size_t cap = 16, i, used = 0;

	while(cap < n * 2){
		cap <<= 1;
	}
	c->slots = malloc(cap * sizeof(*c->slots));
	c->arena = malloc(n * 21 + 1);
	if(c->slots == NULL || c->arena == NULL){
		return cm_err_set(err, CM_ERR_NOMEM, "out of memory indexing the CRL");
	}
	for(i = 0; i < cap; i++){
		c->slots[i].offset = UINT32_MAX;
	}
	c->mask = cap - 1;
	for(i = 0; i < n; i++){
		const ASN1_INTEGER *serial = X509_REVOKED_get0_serialNumber(sk_X509_REVOKED_value(revoked, (int)i));
		const unsigned char *data = ASN1_STRING_get0_data(serial);
		size_t len = (size_t)ASN1_STRING_length(serial), pos;
		uint64_t h;

		if(len == 0 || len > 20){
			continue; /* no valid certificate has such a serial */
		}
		h = serial_hash(data, len);
		for(pos = h & c->mask; c->slots[pos].offset != UINT32_MAX; pos = (pos + 1) & c->mask){
		}
		c->slots[pos].hash = h;
		c->slots[pos].offset = (uint32_t)used;
		c->arena[used] = (unsigned char)len;
		memcpy(c->arena + used + 1, data, len);
		used += len + 1;
		c->count++;
	}
	c->arena_len = used;
	return CM_OK;
}

bool cm_crl_is_revoked(const struct cm_crl *c, const ASN1_INTEGER *serial)
{
	const unsigned char *data = ASN1_STRING_get0_data(serial);
	size_t len = (size_t)ASN1_STRING_length(serial), pos;
	uint64_t h;

	if(c == NULL || c->count == 0 || len == 0 || len > 20){
		return false;
	}
	h = serial_hash(data, len);
	for(pos = h & c->mask; c->slots[pos].offset != UINT32_MAX; pos = (pos + 1) & c->mask){
		const unsigned char *e = c->arena + c->slots[pos].offset;
		if(c->slots[pos].hash == h && e[0] == len && !memcmp(e + 1, data, len)){
			return true;
		}
	}
	return false;
}

X509 *cm_crl_find_issuer(const unsigned char *buf, size_t len, STACK_OF(X509) *candidates)
{
	X509_CRL *crl = parse(buf, len);
	X509 *found = NULL;
	int i;

	for(i = 0; crl && found == NULL && i < sk_X509_num(candidates); i++){
		X509 *c = sk_X509_value(candidates, i);
		EVP_PKEY *key = X509_get0_pubkey(c);
		if(X509_NAME_cmp(X509_CRL_get_issuer(crl), X509_get_subject_name(c)) == 0 && key && X509_CRL_verify(crl, key) == 1){
			found = c;
		}
	}
	X509_CRL_free(crl);
	ERR_clear_error();
	return found;
}

enum cm_rc cm_crl_load(const unsigned char *buf, size_t len, size_t max_len, X509 *issuer, time_t now, struct cm_crl **out, struct cm_err *err)
{
	X509_CRL *crl;
	struct cm_crl *c;
	EVP_PKEY *key;
	enum cm_rc rc;

	*out = NULL;
	if(len > max_len){
		return cm_err_set(err, CM_ERR_INVAL, "the CRL is larger than the limit of %zu bytes", max_len);
	}
	crl = parse(buf, len);
	if(crl == NULL){
		return cm_err_set(err, CM_ERR_INVAL, "not a CRL (neither PEM nor DER)");
	}
	if(X509_CRL_get_ext_by_NID(crl, NID_delta_crl, -1) >= 0){
		/* A delta CRL only makes sense on top of its base: refused. */
		X509_CRL_free(crl);
		return cm_err_set(err, CM_ERR_INVAL, "delta CRLs are not supported: give the full CRL");
	}
	key = X509_get0_pubkey(issuer);
	if(X509_NAME_cmp(X509_CRL_get_issuer(crl), X509_get_subject_name(issuer)) != 0 || key == NULL || X509_CRL_verify(crl, key) != 1){
		X509_CRL_free(crl);
		ERR_clear_error();
		return cm_err_set(err, CM_ERR_INVAL, "the CRL is not signed by the CA it is for");
	}
	c = calloc(1, sizeof(*c));
	if(c == NULL){
		X509_CRL_free(crl);
		return cm_err_set(err, CM_ERR_NOMEM, "out of memory");
	}
	c->refs = 1;
	c->this_update = asn1_to_time(X509_CRL_get0_lastUpdate(crl));
	c->next_update = asn1_to_time(X509_CRL_get0_nextUpdate(crl));
	if(now == 0){
		rc = build_index(c, crl, err); /* reloading what was once accepted */
	}else if(c->this_update > now + 300){
		rc = cm_err_set(err, CM_ERR_INVAL, "the CRL is not valid yet (thisUpdate in the future)");
	}else if(c->next_update && c->next_update < now){
		rc = cm_err_set(err, CM_ERR_INVAL, "the CRL is out of date (its nextUpdate has passed)");
	}else{
		rc = build_index(c, crl, err);
	}
	if(rc == CM_OK){
		c->der_len = 0;
		{
			unsigned char *der = NULL;
			int dlen = i2d_X509_CRL(crl, &der);
			if(dlen <= 0){
				rc = cm_err_set(err, CM_ERR_NOMEM, "cannot encode the CRL");
			}else{
				c->der = malloc((size_t)dlen);
				if(c->der == NULL){
					rc = cm_err_set(err, CM_ERR_NOMEM, "out of memory");
				}else{
					memcpy(c->der, der, (size_t)dlen);
					c->der_len = (size_t)dlen;
				}
				OPENSSL_free(der);
			}
		}
	}
	X509_CRL_free(crl);
	ERR_clear_error();
	if(rc != CM_OK){
		cm_crl_free(&c);
		return rc;
	}
	*out = c;
	return CM_OK;
}

void cm_crl_drop_der(struct cm_crl *c)
{
	if(c){
		free(c->der);
		c->der = NULL;
		c->der_len = 0;
	}
}

struct cm_crl *cm_crl_ref(struct cm_crl *crl)
{
	if(crl){
		crl->refs++;
	}
	return crl;
}

void cm_crl_free(struct cm_crl **pcrl)
{
	struct cm_crl *c;

	if(pcrl == NULL || *pcrl == NULL){
		return;
	}
	c = *pcrl;
	*pcrl = NULL;
	if(--c->refs > 0){
		return;
	}
	free(c->slots);
	free(c->arena);
	free(c->der);
	free(c);
}

bool cm_crl_distribution_point(X509 *cert, char *buf, size_t buflen)
{
	STACK_OF(DIST_POINT) *dps = X509_get_ext_d2i(cert, NID_crl_distribution_points, NULL, NULL);
	bool found = false;
	int i, j;

	for(i = 0; dps && !found && i < sk_DIST_POINT_num(dps); i++){
		DIST_POINT *dp = sk_DIST_POINT_value(dps, i);
		if(dp->distpoint == NULL || dp->distpoint->type != 0){
			continue;
		}
		for(j = 0; !found && j < sk_GENERAL_NAME_num(dp->distpoint->name.fullname); j++){
			GENERAL_NAME *gen = sk_GENERAL_NAME_value(dp->distpoint->name.fullname, j);
			if(gen->type == GEN_URI){
				const char *uri = (const char *)ASN1_STRING_get0_data(gen->d.uniformResourceIdentifier);
				size_t n = (size_t)ASN1_STRING_length(gen->d.uniformResourceIdentifier);
				if(n < buflen && (!strncmp(uri, "http://", 7) || !strncmp(uri, "https://", 8)) && memchr(uri, '\0', n) == NULL){
					memcpy(buf, uri, n);
					buf[n] = '\0';
					found = true;
				}
			}
		}
	}
	sk_DIST_POINT_pop_free(dps, DIST_POINT_free);
	ERR_clear_error();
	return found;
}
