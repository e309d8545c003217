#include <stdio.h>
#include <string.h>

#include <openssl/err.h>
#include <openssl/x509v3.h>

#include "pki.h"
#include "verdict.h"
#include "store.h"

/* What the verify callback needs, in the X509_STORE_CTX's ex_data. */
struct judge {
	const struct cm_tenant *t;
	X509 *admin_ca;
	bool required;
	/* The first refusal the callback saw. */
	int error, depth;
	char crl_issuer[128];
};

static CRYPTO_ONCE index_once = CRYPTO_ONCE_STATIC_INIT;
static int judge_index = -1;

static void index_init(void)
{
	judge_index = X509_STORE_CTX_get_ex_new_index(0, NULL, NULL, NULL, NULL);
}

static void cn_of_name(const X509_NAME *name, char *buf, size_t len)
{
	buf[0] = '\0';
	if(name == NULL || X509_NAME_get_text_by_NID((X509_NAME *)name, NID_commonName, buf, (int)len) < 0){
		char *line = name ? X509_NAME_oneline(name, NULL, 0) : NULL;
		snprintf(buf, len, "%s", line ? line : "?");
		OPENSSL_free(line);
	}
	ERR_clear_error();
}

static bool is_revocation_error(int e)
{
	switch(e){
		case X509_V_ERR_CERT_REVOKED:
		case X509_V_ERR_UNABLE_TO_GET_CRL:
		case X509_V_ERR_CRL_HAS_EXPIRED:
		case X509_V_ERR_CRL_NOT_YET_VALID:
		case X509_V_ERR_CRL_SIGNATURE_FAILURE:
		case X509_V_ERR_UNABLE_TO_DECRYPT_CRL_SIGNATURE:
		case X509_V_ERR_ERROR_IN_CRL_LAST_UPDATE_FIELD:
		case X509_V_ERR_ERROR_IN_CRL_NEXT_UPDATE_FIELD:
		case X509_V_ERR_KEYUSAGE_NO_CRL_SIGN:
		case X509_V_ERR_UNHANDLED_CRITICAL_CRL_EXTENSION:
		case X509_V_ERR_DIFFERENT_CRL_SCOPE:
		case X509_V_ERR_CRL_PATH_VALIDATION_ERROR:
		case X509_V_ERR_UNABLE_TO_GET_CRL_ISSUER:
			return true;
		default:
			return false;
	}
}

/* Does the tenant hold any CRL that cert's issuer (or a cRLIssuer its
 * distribution points name) signed? Then its issuer publishes CRLs, and
 * one that does not cover cert is no reason to admit it. */
static bool crl_known_for(const struct cm_tenant *t, X509 *cert)
{
	STACK_OF(DIST_POINT) *dps = X509_get_ext_d2i(cert, NID_crl_distribution_points, NULL, NULL);
	bool known = false;

	for(int i = 0; !known && i < sk_X509_CRL_num(t->crls); i++){
		const X509_NAME *issuer = X509_CRL_get_issuer(sk_X509_CRL_value(t->crls, i));
		known = X509_NAME_cmp(issuer, X509_get_issuer_name(cert)) == 0;
		for(int d = 0; !known && d < sk_DIST_POINT_num(dps); d++){
			GENERAL_NAMES *names = sk_DIST_POINT_value(dps, d)->CRLissuer;
			for(int k = 0; !known && k < sk_GENERAL_NAME_num(names); k++){
				const GENERAL_NAME *g = sk_GENERAL_NAME_value(names, k);
				known = g->type == GEN_DIRNAME && X509_NAME_cmp(issuer, g->d.directoryName) == 0;
			}
		}
	}
	sk_DIST_POINT_pop_free(dps, DIST_POINT_free);
	ERR_clear_error();
	return known;
}

/* Is the entry that holds crl (a hollow CRL) fail-open when stale? */
static bool stale_fail_open(const struct cm_tenant *t, const X509_CRL *crl)
{
	for(const struct cm_ca *ca = t->cas; ca; ca = ca->next){
		for(int i = 0; i <= CM_CA_MORE_CRLS; i++){
			const struct cm_crl *c = cm_ca_crl_at(ca, i);
			if(c && c->hollow == crl){
				return ca->stale_fail_open;
			}
		}
	}
	return false;
}

/* The tenant's revocation policy on top of OpenSSL's verdict. */
static int policy_cb(int ok, X509_STORE_CTX *ctx)
{
	struct judge *j = X509_STORE_CTX_get_ex_data(ctx, judge_index);
	int e = X509_STORE_CTX_get_error(ctx), depth = X509_STORE_CTX_get_error_depth(ctx);
	STACK_OF(X509) *chain = X509_STORE_CTX_get0_chain(ctx);
	int n = sk_X509_num(chain);
	X509_CRL *crl = X509_STORE_CTX_get0_current_crl(ctx);

	if(ok || j == NULL){
		return ok;
	}
	if(is_revocation_error(e)){
		if(n > 0 && j->admin_ca && X509_cmp(sk_X509_value(chain, n - 1), j->admin_ca) == 0){
			return 1; /* administrators: certmgr's own CA publishes no CRL */
		}
		if(e == X509_V_ERR_UNABLE_TO_GET_CRL && depth >= n - 1){
			return 1; /* the trust anchor is not part of the path */
		}
		if(e == X509_V_ERR_UNABLE_TO_GET_CRL && !j->required && !crl_known_for(j->t, sk_X509_value(chain, depth))){
			return 1; /* when-available: nothing known of its issuer's CRLs */
		}
		if(e == X509_V_ERR_CRL_HAS_EXPIRED && !j->required && crl && stale_fail_open(j->t, crl)){
			return 1;
		}
	}
	if(j->error == X509_V_OK){
		j->error = e;
		j->depth = depth;
		if(crl){
			cn_of_name(X509_CRL_get_issuer(crl), j->crl_issuer, sizeof(j->crl_issuer));
		}
	}
	return 0;
}

static time_t earliest_not_after(STACK_OF(X509) *chain)
{
	time_t min = 0;

	for(int i = 0; i < sk_X509_num(chain); i++){
		time_t t = cm_pki_not_after(sk_X509_value(chain, i));
		if(t && (min == 0 || t < min)){
			min = t;
		}
	}
	return min;
}

/* The refusal's words and class, from what the callback recorded. */
static void explain(struct cm_verdict *v, const struct judge *j, STACK_OF(X509) *chain)
{
	char cn[128] = "", icn[128] = "";
	X509 *cert = sk_X509_value(chain, v->depth), *issuer = sk_X509_value(chain, v->depth + 1);

	if(cert){
		cm_pki_subject_cn(cert, cn, sizeof(cn));
		cn_of_name(X509_get_issuer_name(cert), icn, sizeof(icn));
	}
	if(issuer){
		cm_pki_subject_cn(issuer, icn, sizeof(icn));
	}
	v->revocation = is_revocation_error(v->error);
	v->refusal = v->error == X509_V_ERR_CERT_REVOKED ? CM_REFUSED_REVOKED
		: v->error == X509_V_ERR_CERT_HAS_EXPIRED || v->error == X509_V_ERR_CERT_NOT_YET_VALID ? CM_REFUSED_EXPIRED
		: v->error == X509_V_ERR_UNABLE_TO_GET_CRL || v->error == X509_V_ERR_CRL_HAS_EXPIRED ? CM_REFUSED_POLICY
		: CM_REFUSED_UNTRUSTED_CHAIN;
	switch(v->error){
		case X509_V_ERR_CERT_REVOKED:
			snprintf(v->why, sizeof(v->why), "certificate '%s' is revoked by the CRL of CA '%s'", cn, j->crl_issuer[0] ? j->crl_issuer : icn);
			break;
		case X509_V_ERR_UNABLE_TO_GET_CRL:
			if(j->required){
				snprintf(v->why, sizeof(v->why), "no CRL is known for CA '%s' (revocation required)", icn);
			}else{
				snprintf(v->why, sizeof(v->why), "no CRL of CA '%s' covers certificate '%s'", icn, cn);
			}
			break;
		case X509_V_ERR_CRL_HAS_EXPIRED:
			snprintf(v->why, sizeof(v->why), "the CRL of CA '%s' is out of date (%s)", j->crl_issuer[0] ? j->crl_issuer : icn,
					j->required ? "revocation required" : "fail-closed");
			break;
		default:
			snprintf(v->why, sizeof(v->why), "%s", X509_verify_cert_error_string(v->error));
			if(v->revocation && j->crl_issuer[0]){
				size_t at = strlen(v->why);
				snprintf(v->why + at, sizeof(v->why) - at, " (a CRL of '%s')", j->crl_issuer);
			}
	}
}

static void refuse(struct cm_verdict *v, int error, enum cm_refusal refusal, const char *why)
{
	v->admitted = false;
	v->error = error;
	v->refusal = refusal;
	snprintf(v->why, sizeof(v->why), "%s", why);
}

/* A pinned leaf: exactly that certificate, in its validity period, for a
 * TLS client. */
static bool judge_pinned(X509 *leaf, struct cm_verdict *v)
{
	v->not_after = cm_pki_not_after(leaf);
	if(X509_cmp_current_time(X509_get0_notBefore(leaf)) > 0){
		refuse(v, X509_V_ERR_CERT_NOT_YET_VALID, CM_REFUSED_EXPIRED, "certificate is not yet valid");
	}else if(X509_cmp_current_time(X509_get0_notAfter(leaf)) < 0){
		refuse(v, X509_V_ERR_CERT_HAS_EXPIRED, CM_REFUSED_EXPIRED, "certificate has expired");
	}else if(X509_check_purpose(leaf, X509_PURPOSE_SSL_CLIENT, 0) != 1){
		refuse(v, X509_V_ERR_INVALID_PURPOSE, CM_REFUSED_UNTRUSTED_CHAIN, "unsuitable certificate purpose");
	}else{
		v->admitted = true;
	}
	ERR_clear_error();
	return v->admitted;
}

/* A deactivated CA anywhere in the verified path refuses it: the device
 * may send that CA itself. */
static bool through_inactive(const struct cm_tenant *t, STACK_OF(X509) *chain, char *cn, size_t len)
{
	for(int i = 0; sk_X509_num(t->inactive) > 0 && i < sk_X509_num(chain); i++){
		if(sk_X509_find(t->inactive, sk_X509_value(chain, i)) >= 0){
			cm_pki_subject_cn(sk_X509_value(chain, i), cn, len);
			return true;
		}
	}
	return false;
}

/* RFC 5280 revocation for the whole path, with OpenSSL's support for the
 * CRL extensions. None when the tenant holds no CRL and does not require
 * one: every level would be admitted, after a search for CRLs per
 * certificate that finds nothing. */
static unsigned long revocation_flags(const struct cm_tenant *t)
{
	if(sk_X509_CRL_num(t->crls) <= 0 && t->revocation != CM_REVOCATION_REQUIRED){
		return 0;
	}
	return X509_V_FLAG_CRL_CHECK | X509_V_FLAG_CRL_CHECK_ALL | X509_V_FLAG_EXTENDED_CRL_SUPPORT | X509_V_FLAG_USE_DELTAS;
}

/* Policies checked, anyPolicy the initial set, no explicit policy asked:
 * then only a certificate with a policy extension can refuse a path (its
 * constraints, or a malformed policy), so the policy tree is built only
 * when the tenant's CAs or what the client sent have one. */
static unsigned long policy_flags(const struct cm_tenant *t, X509 *leaf, STACK_OF(X509) *sent)
{
	bool any = t->policy_exts || cm_pki_has_policy_ext(leaf);

	for(int i = 0; !any && i < sk_X509_num(sent); i++){
		any = cm_pki_has_policy_ext(sk_X509_value(sent, i));
	}
	return any ? X509_V_FLAG_POLICY_CHECK : 0;
}

/* The untrusted certificates a chain may be built from: certmgr's own
 * candidates first (so that a known CA is the object certmgr holds), then
 * what the client sent. NULL with *owned NULL: sent as it is. */
static STACK_OF(X509) *untrusted_for(const struct cm_tenant *t, STACK_OF(X509) *sent, bool *failed)
{
	STACK_OF(X509) *all;

	*failed = false;
	if(sk_X509_num(t->candidates) <= 0){
		return NULL;
	}
	all = sk_X509_dup(t->candidates);
	for(int i = 0; all && i < sk_X509_num(sent); i++){
		if(!sk_X509_push(all, sk_X509_value(sent, i))){
			sk_X509_free(all);
			all = NULL;
		}
	}
	*failed = all == NULL;
	return all;
}

bool cm_verdict_ctx(X509_STORE_CTX *ctx, const struct cm_tenant *t, X509 *admin_ca, struct cm_verdict *v)
{
	X509 *leaf = X509_STORE_CTX_get0_cert(ctx);
	STACK_OF(X509) *sent = X509_STORE_CTX_get0_untrusted(ctx), *all, *chain;
	struct judge j = {t, admin_ca, t->revocation == CM_REVOCATION_REQUIRED, X509_V_OK, 0, ""};
	bool failed;
	char cn[128];
	int ok;

	memset(v, 0, sizeof(*v));
	CRYPTO_THREAD_run_once(&index_once, index_init);
	if(leaf == NULL || judge_index < 0){
		refuse(v, X509_V_ERR_UNSPECIFIED, CM_REFUSED_UNTRUSTED_CHAIN, "no certificate");
		return false;
	}
	if(sk_X509_find(t->pins, leaf) >= 0){
		return judge_pinned(leaf, v);
	}
	all = untrusted_for(t, sent, &failed);
	if(failed || !X509_STORE_CTX_set_ex_data(ctx, judge_index, &j)){
		refuse(v, X509_V_ERR_OUT_OF_MEM, CM_REFUSED_UNTRUSTED_CHAIN, "out of memory");
		return false;
	}
	if(all){
		X509_STORE_CTX_set0_untrusted(ctx, all);
	}
	X509_STORE_CTX_set0_crls(ctx, t->crls);
	X509_STORE_CTX_set_flags(ctx, X509_V_FLAG_PARTIAL_CHAIN | revocation_flags(t) | policy_flags(t, leaf, sent));
	X509_STORE_CTX_set_verify_cb(ctx, policy_cb);
	/* OpenSSL 3.0 with an empty initial policy set refuses every path
	 * that asserts policies: the set is anyPolicy, as RFC 5280 has it. */
	X509_VERIFY_PARAM_add0_policy(X509_STORE_CTX_get0_param(ctx), OBJ_nid2obj(NID_any_policy));
	ERR_clear_error();
	ok = X509_verify_cert(ctx);
	X509_STORE_CTX_set0_untrusted(ctx, sent);
	sk_X509_free(all);
	X509_STORE_CTX_set0_crls(ctx, NULL);
	X509_STORE_CTX_set_ex_data(ctx, judge_index, NULL);
	chain = X509_STORE_CTX_get0_chain(ctx);
	v->not_after = earliest_not_after(chain);
	v->admin = ok == 1 && admin_ca && X509_cmp(sk_X509_value(chain, sk_X509_num(chain) - 1), admin_ca) == 0;
	if(ok == 1 && !v->admin && through_inactive(t, chain, cn, sizeof(cn))){
		char why[200];
		snprintf(why, sizeof(why), "CA '%s' of its path is deactivated", cn);
		refuse(v, X509_V_ERR_CERT_REJECTED, CM_REFUSED_UNTRUSTED_CHAIN, why);
		X509_STORE_CTX_set_error(ctx, X509_V_ERR_CERT_REJECTED);
		ok = 0;
	}else if(ok != 1){
		v->error = j.error != X509_V_OK ? j.error : X509_STORE_CTX_get_error(ctx);
		v->depth = j.error != X509_V_OK ? j.depth : X509_STORE_CTX_get_error_depth(ctx);
		explain(v, &j, chain);
	}
	v->admitted = ok == 1;
	ERR_clear_error();
	return v->admitted;
}

bool cm_verdict_chain(const struct cm_tenant *t, X509 *admin_ca, X509 *leaf, STACK_OF(X509) *sent, struct cm_verdict *v,
		STACK_OF(X509) **chain_out)
{
	X509_STORE_CTX *ctx = X509_STORE_CTX_new();
	bool ok;

	if(chain_out){
		*chain_out = NULL;
	}
	if(ctx == NULL || !X509_STORE_CTX_init(ctx, t->trust, leaf, sent) || !X509_STORE_CTX_set_default(ctx, "ssl_client")){
		X509_STORE_CTX_free(ctx);
		memset(v, 0, sizeof(*v));
		refuse(v, X509_V_ERR_OUT_OF_MEM, CM_REFUSED_UNTRUSTED_CHAIN, "out of memory");
		ERR_clear_error();
		return false;
	}
	ok = cm_verdict_ctx(ctx, t, admin_ca, v);
	if(ok && chain_out && X509_STORE_CTX_get0_chain(ctx)){
		*chain_out = X509_STORE_CTX_get1_chain(ctx);
	}else if(ok && chain_out){
		/* A pinned leaf: its path is itself. */
		if((*chain_out = sk_X509_new_null()) != NULL && sk_X509_push(*chain_out, leaf)){
			X509_up_ref(leaf);
		}
	}
	X509_STORE_CTX_free(ctx);
	return ok;
}

int cm_verdict_path(const struct cm_tenant *t, X509 *admin_ca, X509 *leaf, STACK_OF(X509) *sent, const char *purpose,
		STACK_OF(X509) **chain_out)
{
	X509_STORE_CTX *ctx = X509_STORE_CTX_new();
	STACK_OF(X509) *all = NULL, *chain;
	bool failed = false;
	int e = X509_V_ERR_OUT_OF_MEM;

	*chain_out = NULL;
	all = untrusted_for(t, sent, &failed);
	if(!failed && ctx && t->trust && X509_STORE_CTX_init(ctx, t->trust, leaf, all ? all : sent)
			&& (purpose == NULL || X509_STORE_CTX_set_default(ctx, purpose))){
		X509_STORE_CTX_set_flags(ctx, X509_V_FLAG_PARTIAL_CHAIN | X509_V_FLAG_POLICY_CHECK);
		X509_VERIFY_PARAM_add0_policy(X509_STORE_CTX_get0_param(ctx), OBJ_nid2obj(NID_any_policy));
		e = X509_verify_cert(ctx) == 1 ? X509_V_OK : X509_STORE_CTX_get_error(ctx);
	}
	chain = e == X509_V_OK ? X509_STORE_CTX_get0_chain(ctx) : NULL;
	if(chain && admin_ca && X509_cmp(sk_X509_value(chain, sk_X509_num(chain) - 1), admin_ca) == 0){
		e = X509_V_ERR_CERT_UNTRUSTED; /* administrators issue no device's chain */
	}else if(chain && (*chain_out = X509_STORE_CTX_get1_chain(ctx)) == NULL){
		e = X509_V_ERR_OUT_OF_MEM;
	}
	X509_STORE_CTX_free(ctx);
	sk_X509_free(all);
	ERR_clear_error();
	return e;
}
