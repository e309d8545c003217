#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/err.h>
#include <openssl/x509v3.h>

#include "auth.h"
#include "fetch.h"
#include "log.h"
#include "revocation.h"

/* How long a failed attempt to learn a CRL waits before the next one. */
#define LEARN_RETRY 60

struct cm_learning {
	char key[140]; /* "<tenant>/<ca id>" */
	time_t last_attempt;
	bool in_flight;
	UT_hash_handle hh;
};

struct learn_ctx {
	char tenant[65];
	char ca_id[CM_ID_LEN + 1];
	char key[140];
	char url[2048];
};

struct cm_ca *cm_rev_entry_for(const struct cm_tenant *t, X509 *cert)
{
	struct cm_ca *ca;

	for(ca = t->cas; ca; ca = ca->next){
		if(ca->cert == cert){
			return ca;
		}
	}
	for(ca = t->cas; ca; ca = ca->next){
		if(X509_cmp(ca->cert, cert) == 0){
			return ca;
		}
	}
	return NULL;
}

struct cm_ca *cm_rev_issuer_of(const struct cm_tenant *t, X509 *cert)
{
	struct cm_ca *ca;

	for(ca = t->cas; ca; ca = ca->next){
		if(!ca->pinned && ca->cert != cert && X509_cmp(ca->cert, cert) != 0
				&& X509_check_issued(ca->cert, cert) == X509_V_OK){
			return ca;
		}
	}
	return NULL;
}

static const char *cn_of(X509 *cert, char *buf, size_t len)
{
	cm_pki_subject_cn(cert, buf, len);
	return buf;
}

/* Is cert revoked by issuer entry e? NULL when not; the reason when it is,
 * or when the policy refuses a missing or stale CRL. */
static const char *check_level(const struct cm_tenant *t, const struct cm_ca *e, X509 *cert, X509 *issuer, time_t now,
		int *x509_err, char *buf, size_t len)
{
	char cn[128], icn[128];
	bool required = t->revocation == CM_REVOCATION_REQUIRED;

	if(e == NULL || e->crl == NULL){
		if(required){
			*x509_err = X509_V_ERR_UNABLE_TO_GET_CRL;
			snprintf(buf, len, "no CRL is known for CA '%s' (revocation required)", cn_of(issuer, icn, sizeof(icn)));
			return buf;
		}
		return NULL;
	}
	if(e->crl->next_update && e->crl->next_update < now && (required || !e->stale_fail_open)){
		*x509_err = X509_V_ERR_CRL_HAS_EXPIRED;
		snprintf(buf, len, "the CRL of CA '%s' is out of date (%s)", cn_of(issuer, icn, sizeof(icn)),
				required ? "revocation required" : "fail-closed");
		return buf;
	}
	if(cm_crl_is_revoked(e->crl, X509_get0_serialNumber(cert))){
		*x509_err = X509_V_ERR_CERT_REVOKED;
		snprintf(buf, len, "certificate '%s' is revoked by the CRL of CA '%s'", cn_of(cert, cn, sizeof(cn)), cn_of(issuer, icn, sizeof(icn)));
		return buf;
	}
	return NULL;
}

const char *cm_revocation_check(const struct cm_tenant *t, STACK_OF(X509) *chain, time_t now, int *x509_err, char *buf, size_t len)
{
	int n = sk_X509_num(chain), i;
	const char *why;
	X509 *top;
	struct cm_ca *e;

	for(i = 0; i + 1 < n; i++){
		X509 *issuer = sk_X509_value(chain, i + 1);
		why = check_level(t, cm_rev_entry_for(t, issuer), sk_X509_value(chain, i), issuer, now, x509_err, buf, len);
		if(why){
			return why;
		}
	}
	/* The anchor itself, when its own issuer is in the trust list too. */
	top = n > 0 ? sk_X509_value(chain, n - 1) : NULL;
	if(top && (X509_get_extension_flags(top) & EXFLAG_CA) && (e = cm_rev_issuer_of(t, top)) != NULL){
		return check_level(t, e, top, e->cert, now, x509_err, buf, len);
	}
	return NULL;
}

/* ===================================================================
 * Learning
 * =================================================================== */

static void learn_done(struct cm_state *st, void *vctx, enum cm_rc rc, unsigned char **pbody, size_t blen,
		const char *error, bool aborted)
{
	struct learn_ctx *ctx = vctx;
	const unsigned char *body = *pbody;
	struct cm_learning *l = NULL;
	struct cm_tenant *cur, *t, *old = NULL;
	struct cm_ca *e;
	struct cm_crl *crl = NULL;
	struct cm_err err;

	if(aborted){
		free(ctx);
		return;
	}
	HASH_FIND_STR(st->learning, ctx->key, l);
	if(l){
		l->in_flight = false;
	}
	cur = cm_store_find_tenant(st->store, ctx->tenant);
	e = cur ? cm_tenant_find_ca(cur, ctx->ca_id) : NULL;
	if(e == NULL || e->crl){
		free(ctx); /* gone meanwhile, or known by now */
		return;
	}
	if(rc != CM_OK){
		cm_log(CM_LOG_WARNING, "cannot learn the CRL of CA %s (tenant %s) from %s: %s", ctx->ca_id, ctx->tenant, ctx->url, error);
		free(ctx);
		return;
	}
	if(cm_crl_load(body, blen, SIZE_MAX, e->cert, time(NULL), &crl, &err) != CM_OK){
		cm_log(CM_LOG_WARNING, "refusing the CRL learned for CA %s (tenant %s) from %s: %s", ctx->ca_id, ctx->tenant, ctx->url, err.msg);
		free(ctx);
		return;
	}
	t = cm_tenant_clone(cur);
	e = t ? cm_tenant_find_ca(t, ctx->ca_id) : NULL;
	if(e == NULL || (e->crl_learned_url = strdup(ctx->url)) == NULL){
		cm_crl_free(&crl);
		cm_tenant_free(&t);
		free(ctx);
		return;
	}
	e->crl = crl;
	e->crl_dirty = true;
	snprintf(e->crl_source, sizeof(e->crl_source), "learned");
	e->crl_attempt = e->crl_success = time(NULL);
	e->crl_error[0] = '\0';
	if(cm_store_put_tenant(st->store, t, &old, &err) != CM_OK){
		cm_log(CM_LOG_WARNING, "cannot store the CRL learned for CA %s (tenant %s): %s", ctx->ca_id, ctx->tenant, err.msg);
		cm_tenant_free(&t);
	}else{
		cm_tenant_free(&old);
		cm_log(CM_LOG_NOTICE, "certmgr | learnCRL | tenant=%s id=%s url=%s revoked=%zu", t->name, ctx->ca_id, ctx->url, crl->count);
		cm_auth_recheck(st, t->name);
	}
	free(ctx);
}

static void learn_one(struct cm_state *st, const struct cm_tenant *t, const struct cm_ca *e, X509 *issued)
{
	struct cm_learning *l = NULL;
	struct learn_ctx *ctx;
	struct cm_err err;
	char url[2048], key[140];
	time_t now = time(NULL);

	if(e == NULL || e->pinned || e->crl || e->crl_url || !cm_crl_distribution_point(issued, url, sizeof(url))){
		return;
	}
	snprintf(key, sizeof(key), "%s/%s", t->name, e->id);
	HASH_FIND_STR(st->learning, key, l);
	if(l && (l->in_flight || now - l->last_attempt < LEARN_RETRY)){
		return;
	}
	if(l == NULL){
		l = calloc(1, sizeof(*l));
		if(l == NULL){
			return;
		}
		memcpy(l->key, key, sizeof(l->key));
		HASH_ADD_STR(st->learning, key, l);
	}
	ctx = calloc(1, sizeof(*ctx));
	if(ctx == NULL){
		return;
	}
	snprintf(ctx->tenant, sizeof(ctx->tenant), "%s", t->name);
	memcpy(ctx->ca_id, e->id, sizeof(ctx->ca_id));
	memcpy(ctx->key, key, sizeof(ctx->key));
	snprintf(ctx->url, sizeof(ctx->url), "%s", url);
	l->last_attempt = now;
	if(cm_fetch_start(st, url, learn_done, ctx, &err) != CM_OK){
		cm_log(CM_LOG_WARNING, "cannot learn the CRL of CA %s from %s: %s", e->id, url, err.msg);
		free(ctx);
		return;
	}
	l->in_flight = true;
	cm_log(CM_LOG_INFO, "learning the CRL of CA %s (tenant %s) from %s", e->id, t->name, url);
}

void cm_revocation_learn(struct cm_state *st, const struct cm_tenant *t, STACK_OF(X509) *chain)
{
	int n = sk_X509_num(chain), i;
	X509 *top;

	if(st->fetcher == NULL){
		return;
	}
	for(i = 0; i + 1 < n; i++){
		learn_one(st, t, cm_rev_entry_for(t, sk_X509_value(chain, i + 1)), sk_X509_value(chain, i));
	}
	top = n > 0 ? sk_X509_value(chain, n - 1) : NULL;
	if(top && (X509_get_extension_flags(top) & EXFLAG_CA)){
		learn_one(st, t, cm_rev_issuer_of(t, top), top);
	}
}

void cm_revocation_cleanup(struct cm_state *st)
{
	struct cm_learning *l, *tmp;

	HASH_ITER(hh, st->learning, l, tmp){
		HASH_DEL(st->learning, l);
		free(l);
	}
}
