/* A tenant's enrollment record: defaults, copies, lists. */
#define _GNU_SOURCE
#include <ctype.h>
#include <fnmatch.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/err.h>
#include <openssl/rand.h>

#include "enroll.h"
#include "tenant.h"

struct cm_enroll *cm_enroll_new(void)
{
	struct cm_enroll *e = calloc(1, sizeof(*e));

	if(e == NULL){
		return NULL;
	}
	e->mode = CM_ENROLL_APPROVAL;
	e->validity_days = 365;
	e->renew_within = 30 * 86400;
	e->grace = 86400;
	e->rules.allow_ec = true;
	e->rules.allow_rsa = true;
	e->rules.min_rsa_bits = 2048;
	e->rules.in_cn = true;
	return e;
}

static void request_clear(struct cm_enrollment *r)
{
	free(r->csr);
	free(r->clientid);
	free(r->correlation);
	free(r->cert);
	free(r->reason);
	memset(r, 0, sizeof(*r));
}

static bool dup_opt(char **dst, const char *src)
{
	*dst = NULL;
	return src == NULL || (*dst = strdup(src)) != NULL;
}

/* A copy of r's strings into d (d's own, cleared on failure). */
static bool request_copy(struct cm_enrollment *d, const struct cm_enrollment *r)
{
	*d = *r;
	d->csr = d->clientid = d->correlation = d->cert = d->reason = NULL;
	if(!dup_opt(&d->csr, r->csr) || !dup_opt(&d->clientid, r->clientid) || !dup_opt(&d->correlation, r->correlation)
			|| !dup_opt(&d->cert, r->cert) || !dup_opt(&d->reason, r->reason)){
		request_clear(d);
		return false;
	}
	return true;
}

void cm_enroll_free(struct cm_enroll **pe)
{
	struct cm_enroll *e;

	if(pe == NULL || *pe == NULL){
		return;
	}
	e = *pe;
	EVP_PKEY_free(e->ca_key);
	if(e->ca_key_pem){
		cm_pki_free_secret(e->ca_key_pem, strlen(e->ca_key_pem));
	}
	sk_X509_pop_free(e->ca_chain, X509_free);
	free(e->id_pattern);
	free(e->codes);
	for(size_t i = 0; i < e->nallowed; i++){
		free(e->allowed[i]);
	}
	free(e->allowed);
	for(size_t i = 0; i < e->npending; i++){
		request_clear(&e->pending[i]);
	}
	free(e->pending);
	free(e->revoked);
	free(e);
	*pe = NULL;
}

static bool clone_lists(struct cm_enroll *c, const struct cm_enroll *e)
{
	if(e->ncodes && (c->codes = malloc(e->ncodes * sizeof(*c->codes))) == NULL){
		return false;
	}
	if(e->ncodes){
		memcpy(c->codes, e->codes, e->ncodes * sizeof(*c->codes));
	}
	c->ncodes = e->ncodes;
	if(e->nallowed && (c->allowed = calloc(e->nallowed, sizeof(char *))) == NULL){
		return false;
	}
	for(; c->nallowed < e->nallowed; c->nallowed++){
		if((c->allowed[c->nallowed] = strdup(e->allowed[c->nallowed])) == NULL){
			return false;
		}
	}
	if(e->npending && (c->pending = calloc(e->npending, sizeof(*c->pending))) == NULL){
		return false;
	}
	for(; c->npending < e->npending; c->npending++){
		if(!request_copy(&c->pending[c->npending], &e->pending[c->npending])){
			return false;
		}
	}
	if(e->nrevoked && (c->revoked = malloc(e->nrevoked * sizeof(*c->revoked))) == NULL){
		return false;
	}
	if(e->nrevoked){
		memcpy(c->revoked, e->revoked, e->nrevoked * sizeof(*c->revoked));
	}
	c->nrevoked = e->nrevoked;
	return true;
}

struct cm_enroll *cm_enroll_clone(const struct cm_enroll *e)
{
	struct cm_enroll *c = calloc(1, sizeof(*c));

	if(c == NULL){
		return NULL;
	}
	memcpy(c->ca_id, e->ca_id, sizeof(c->ca_id));
	c->mode = e->mode;
	c->validity_days = e->validity_days;
	c->renew_within = e->renew_within;
	c->grace = e->grace;
	c->rules = e->rules;
	c->require_pop = e->require_pop;
	c->crl_number = e->crl_number;
	c->crl_this_update = e->crl_this_update;
	c->crl_next_update = e->crl_next_update;
	if(e->ca_key && EVP_PKEY_up_ref(e->ca_key)){
		c->ca_key = e->ca_key;
	}
	if((e->ca_key && c->ca_key == NULL) || !dup_opt(&c->ca_key_pem, e->ca_key_pem) || !dup_opt(&c->id_pattern, e->id_pattern)
			|| (e->ca_chain && (c->ca_chain = X509_chain_up_ref(e->ca_chain)) == NULL) || !clone_lists(c, e)){
		cm_enroll_free(&c);
		return NULL;
	}
	return c;
}

struct cm_enroll *cm_enroll_of(struct cm_tenant *t)
{
	if(t->enroll == NULL){
		t->enroll = cm_enroll_new();
	}
	return t->enroll;
}

static const char *const modes[] = {"approval", "auto", "allowlist"};

const char *cm_enroll_mode_name(enum cm_enroll_mode m)
{
	return (size_t)m < sizeof(modes) / sizeof(modes[0]) ? modes[m] : "?";
}

int cm_enroll_mode_parse(const char *name)
{
	for(size_t i = 0; i < sizeof(modes) / sizeof(modes[0]); i++){
		if(!strcmp(modes[i], name)){
			return (int)i;
		}
	}
	return -1;
}

const char *cm_enrollment_state_name(enum cm_enrollment_state s)
{
	return s == CM_ENROLLMENT_APPROVED ? "approved" : s == CM_ENROLLMENT_REJECTED ? "rejected" : "pending";
}

bool cm_enroll_pattern_matches(const struct cm_enroll *e, const char *ident)
{
	return e->id_pattern == NULL || fnmatch(e->id_pattern, ident, 0) == 0;
}

bool cm_enroll_is_allowed(const struct cm_enroll *e, const char *ident)
{
	for(size_t i = 0; i < e->nallowed; i++){
		if(!strcmp(e->allowed[i], ident)){
			return true;
		}
	}
	return false;
}

enum cm_rc cm_enroll_allow(struct cm_enroll *e, const char *ident, struct cm_err *err)
{
	char **grown;

	if(cm_enroll_is_allowed(e, ident)){
		return CM_OK;
	}
	if(e->nallowed >= CM_ENROLL_MAX_ALLOWED){
		return cm_err_set(err, CM_ERR_INVAL, "a tenant holds at most %d pre-registered devices", CM_ENROLL_MAX_ALLOWED);
	}
	grown = realloc(e->allowed, (e->nallowed + 1) * sizeof(char *));
	if(grown == NULL){
		return cm_err_set(err, CM_ERR_NOMEM, "out of memory");
	}
	e->allowed = grown;
	if((e->allowed[e->nallowed] = strdup(ident)) == NULL){
		return cm_err_set(err, CM_ERR_NOMEM, "out of memory");
	}
	e->nallowed++;
	return CM_OK;
}

bool cm_enroll_disallow(struct cm_enroll *e, const char *ident)
{
	for(size_t i = 0; i < e->nallowed; i++){
		if(!strcmp(e->allowed[i], ident)){
			free(e->allowed[i]);
			e->allowed[i] = e->allowed[--e->nallowed];
			return true;
		}
	}
	return false;
}

struct cm_enrollment *cm_enroll_find(const struct cm_enroll *e, const char *ident)
{
	for(size_t i = 0; e && i < e->npending; i++){
		if(!strcmp(e->pending[i].ident, ident)){
			return &e->pending[i];
		}
	}
	return NULL;
}

enum cm_rc cm_enroll_add_request(struct cm_enroll *e, const struct cm_enrollment *r, struct cm_err *err)
{
	struct cm_enrollment *grown;

	if(e->npending >= CM_ENROLL_MAX_PENDING){
		return cm_err_set(err, CM_ERR_INVAL, "too many enrollment requests wait for a decision (%d)", CM_ENROLL_MAX_PENDING);
	}
	grown = realloc(e->pending, (e->npending + 1) * sizeof(*grown));
	if(grown == NULL){
		return cm_err_set(err, CM_ERR_NOMEM, "out of memory");
	}
	e->pending = grown;
	if(!request_copy(&e->pending[e->npending], r)){
		return cm_err_set(err, CM_ERR_NOMEM, "out of memory");
	}
	e->npending++;
	return CM_OK;
}

void cm_enroll_drop_request(struct cm_enroll *e, const char *ident)
{
	struct cm_enrollment *r = cm_enroll_find(e, ident);

	if(r){
		request_clear(r);
		*r = e->pending[--e->npending];
	}
}

enum cm_rc cm_enroll_new_code(struct cm_enroll *e, char code[CM_ENROLL_CODE_LEN + 1], struct cm_err *err)
{
	unsigned char r[CM_ENROLL_CODE_LEN / 2];
	char (*grown)[CM_ENROLL_CODE_LEN + 1];

	if(RAND_bytes(r, sizeof(r)) != 1){
		ERR_clear_error();
		return cm_err_set(err, CM_ERR_CRYPTO, "no random bytes for a registration code");
	}
	for(size_t i = 0; i < sizeof(r); i++){
		snprintf(code + 2 * i, 3, "%02x", r[i]);
	}
	if(e->ncodes == CM_ENROLL_MAX_CODES){
		/* The oldest code unused goes. */
		memmove(e->codes, e->codes + 1, (e->ncodes - 1) * sizeof(*e->codes));
		e->ncodes--;
	}
	grown = realloc(e->codes, (e->ncodes + 1) * sizeof(*grown));
	if(grown == NULL){
		return cm_err_set(err, CM_ERR_NOMEM, "out of memory");
	}
	e->codes = grown;
	memcpy(e->codes[e->ncodes++], code, CM_ENROLL_CODE_LEN + 1);
	return CM_OK;
}

bool cm_enroll_has_code(const struct cm_enroll *e, const char *code)
{
	for(size_t i = 0; e && i < e->ncodes; i++){
		if(!strcmp(e->codes[i], code)){
			return true;
		}
	}
	return false;
}

void cm_enroll_take_code(struct cm_enroll *e, const char *code)
{
	for(size_t i = 0; e && i < e->ncodes; i++){
		if(!strcmp(e->codes[i], code)){
			memmove(e->codes + i, e->codes + i + 1, (e->ncodes - i - 1) * sizeof(*e->codes));
			e->ncodes--;
			return;
		}
	}
}

const struct cm_revoked *cm_enroll_find_revoked(const struct cm_enroll *e, const char *serial)
{
	for(size_t i = 0; e && i < e->nrevoked; i++){
		if(!strcasecmp(e->revoked[i].serial, serial)){
			return &e->revoked[i];
		}
	}
	return NULL;
}

enum cm_rc cm_enroll_revoke(struct cm_enroll *e, const char *serial, time_t at, int reason, struct cm_err *err)
{
	struct cm_revoked *grown, *had = (struct cm_revoked *)cm_enroll_find_revoked(e, serial);

	if(!cm_sign_serial_valid(serial)){
		return cm_err_set(err, CM_ERR_INVAL, "'%.48s' is not a serial number in hex", serial);
	}
	if(had){
		if(at < had->at){
			had->at = at;
			had->reason = reason;
		}
		return CM_OK;
	}
	if(e->nrevoked >= CM_ENROLL_MAX_REVOKED){
		return cm_err_set(err, CM_ERR_INVAL, "the issuing CA's CRL holds its maximum of %d entries", CM_ENROLL_MAX_REVOKED);
	}
	grown = realloc(e->revoked, (e->nrevoked + 1) * sizeof(*grown));
	if(grown == NULL){
		return cm_err_set(err, CM_ERR_NOMEM, "out of memory");
	}
	e->revoked = grown;
	memset(&e->revoked[e->nrevoked], 0, sizeof(e->revoked[0]));
	for(size_t i = 0; serial[i]; i++){
		e->revoked[e->nrevoked].serial[i] = (char)toupper((unsigned char)serial[i]);
	}
	e->revoked[e->nrevoked].at = at;
	e->revoked[e->nrevoked].reason = reason;
	e->nrevoked++;
	return CM_OK;
}

time_t cm_enroll_next_revocation(const struct cm_enroll *e)
{
	time_t next = 0;

	for(size_t i = 0; e && i < e->nrevoked; i++){
		if(e->revoked[i].at > e->crl_this_update && (next == 0 || e->revoked[i].at < next)){
			next = e->revoked[i].at;
		}
	}
	return next;
}

const struct cm_ca *cm_enroll_issuing_ca(const struct cm_tenant *t)
{
	if(t->enroll == NULL || t->enroll->ca_id[0] == '\0'){
		return NULL;
	}
	return cm_tenant_find_ca(t, t->enroll->ca_id);
}

static bool issued_by(X509 *issuer, X509 *cert)
{
	int ok;

	if(X509_check_issued(issuer, cert) != X509_V_OK){
		return false;
	}
	ERR_clear_error();
	ok = X509_verify(cert, X509_get0_pubkey(issuer));
	ERR_clear_error();
	return ok == 1;
}

const struct cm_ca *cm_enroll_issuer_entry(const struct cm_tenant *t, X509 *cert)
{
	for(struct cm_ca *ca = t->cas; ca; ca = ca->next){
		if(!ca->pinned && !ca->issuer_only && issued_by(ca->cert, cert)){
			return ca;
		}
	}
	return NULL;
}

bool cm_enroll_is_claim_chain(const struct cm_tenant *t, X509 *leaf, STACK_OF(X509) *chain)
{
	X509 *cur = leaf;

	/* Up the path, to the first CA of the trust list: a device CA under a
	 * claim root is not a claim CA, nor the other way round. */
	for(int depth = 0; cur && depth <= sk_X509_num(chain); depth++){
		const struct cm_ca *e = cm_enroll_issuer_entry(t, cur);
		X509 *next = NULL;

		if(e){
			return e->claim;
		}
		for(int i = 0; i < sk_X509_num(chain) && next == NULL; i++){
			if(sk_X509_value(chain, i) != cur && issued_by(sk_X509_value(chain, i), cur)){
				next = sk_X509_value(chain, i);
			}
		}
		cur = next;
	}
	return false;
}
