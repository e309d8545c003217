#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/err.h>
#include <openssl/x509v3.h>

#include "auth.h"
#include "fetch.h"
#include "log.h"
#include "refresh.h"
#include "revocation.h"

/* How long a failed attempt to learn a CRL waits before the next one. */
#define LEARN_RETRY 60

/* When a CRL was last learned for a tenant's CA, to space the attempts
 * (every handshake of its devices would start one). */
struct cm_learning {
	char key[140]; /* "<tenant>/<ca id>" */
	time_t last_attempt;
	UT_hash_handle hh;
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

static void learn_one(struct cm_state *st, const struct cm_tenant *t, struct cm_ca *e, X509 *issued)
{
	struct cm_learning *l = NULL;
	struct cm_err err;
	char url[2048], key[140];
	time_t now = time(NULL);

	if(e == NULL || e->pinned || e->crl || e->crl_url || e->crl_in_flight || !cm_crl_distribution_point(issued, url, sizeof(url))){
		return;
	}
	snprintf(key, sizeof(key), "%s/%s", t->name, e->id);
	HASH_FIND_STR(st->learning, key, l);
	if(l && now - l->last_attempt < LEARN_RETRY){
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
	l->last_attempt = now;
	if(cm_refresh_learn(st, t, e, url, &err) != CM_OK){
		cm_log(CM_LOG_WARNING, "cannot learn the CRL of CA %s from %s: %s", e->id, url, err.msg);
		return;
	}
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
