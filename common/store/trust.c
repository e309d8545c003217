/* A tenant's trust store, built from its trust list for handshakes. */
#define _GNU_SOURCE
#include <stdlib.h>

#include <openssl/err.h>

#include "store.h"
#include "store-int.h"

/* The registered CAs (not pins, not known issuers), by subject, to find
 * which of them another one names as issuer. */
static int subject_cmp(const void *a, const void *b)
{
	return X509_NAME_cmp(X509_get_subject_name((*(const struct cm_ca *const *)a)->cert),
			X509_get_subject_name((*(const struct cm_ca *const *)b)->cert));
}

/* Is ca issued (by name, and key identifier where it names one) by
 * another registered CA of the sorted v? Then it is validated through
 * that one rather than trusted itself. Active or not: deactivating a
 * root must not turn the intermediates under it into anchors. */
static bool registered_issuer(const struct cm_ca **v, size_t n, const struct cm_ca *ca)
{
	const X509_NAME *want = X509_get_issuer_name(ca->cert);
	AUTHORITY_KEYID *akid = X509_get_ext_d2i(ca->cert, NID_authority_key_identifier, NULL, NULL);
	size_t lo = 0, hi = n;
	bool found = false;

	while(lo < hi){
		size_t mid = lo + (hi - lo) / 2;
		if(X509_NAME_cmp(X509_get_subject_name(v[mid]->cert), want) < 0){
			lo = mid + 1;
		}else{
			hi = mid;
		}
	}
	for(; !found && lo < n && X509_NAME_cmp(X509_get_subject_name(v[lo]->cert), want) == 0; lo++){
		found = v[lo] != ca && X509_cmp(v[lo]->cert, ca->cert) != 0 && (akid == NULL || X509_check_akid(v[lo]->cert, akid) == X509_V_OK);
	}
	AUTHORITY_KEYID_free(akid);
	ERR_clear_error();
	return found;
}

static int x509_sk_cmp(const X509 *const *a, const X509 *const *b)
{
	return X509_cmp(*a, *b);
}

/* Pushes a reference to x onto *sk, made (with cmp) at the first: most
 * tenants have no pin, no inactive CA and no candidate, and an empty
 * stack is a hundred bytes a tenant. */
static bool push_ref(STACK_OF(X509) **sk, X509 *x, sk_X509_compfunc cmp)
{
	if((*sk == NULL && (*sk = sk_X509_new(cmp)) == NULL) || !sk_X509_push(*sk, x)){
		return false;
	}
	X509_up_ref(x);
	return true;
}

static bool push_crls(struct cm_tenant *t, const struct cm_ca *ca)
{
	for(int i = 0; i <= CM_CA_MORE_CRLS; i++){
		struct cm_crl *c = cm_ca_crl_at(ca, i);
		if(c == NULL || c->hollow == NULL){
			continue;
		}
		if((t->crls == NULL && (t->crls = sk_X509_CRL_new_null()) == NULL) || !sk_X509_CRL_push(t->crls, c->hollow)){
			return false;
		}
		X509_CRL_up_ref(c->hollow);
		if(c->next_update && (t->crls_next_update == 0 || c->next_update < t->crls_next_update)){
			t->crls_next_update = c->next_update;
		}
	}
	return true;
}

/* Sorts ca into its place: anchor, chain candidate, pin or refused. */
static bool place_ca(struct cm_tenant *t, X509_STORE *trust, const struct cm_ca **v, size_t n, const struct cm_ca *ca)
{
	if(!push_crls(t, ca)){
		return false;
	}
	if(!ca->pinned && cm_pki_has_policy_ext(ca->cert)){
		t->policy_exts = true;
	}
	if(ca->pinned){
		return !ca->active || push_ref(&t->pins, ca->cert, x509_sk_cmp);
	}
	if(!ca->active){
		return ca->issuer_only || push_ref(&t->inactive, ca->cert, x509_sk_cmp);
	}
	if(ca->issuer_only || registered_issuer(v, n, ca)){
		return push_ref(&t->candidates, ca->cert, NULL);
	}
	{
		/* X509_STORE_add_cert re-sorts the store's objects to look for
		 * a duplicate on every call: O(n^2 log n). The ids of a tenant's
		 * entries are unique, so they go onto the object stack as they
		 * are and it is sorted once. */
		X509_OBJECT *o = X509_OBJECT_new();
		if(o == NULL || !X509_OBJECT_set1_X509(o, ca->cert) || !sk_X509_OBJECT_push(X509_STORE_get0_objects(trust), o)){
			X509_OBJECT_free(o);
			return false;
		}
	}
	return true;
}

/* What t's handshakes are verified with (RFC 5280 path validation, see
 * verdict.h): the anchors in an X509_STORE, the other CAs as chain
 * candidates, the pins apart (a pin is never an issuer), the CRLs. */
enum cm_rc build_trust(struct cm_tenant *t, X509 *admin_ca, struct cm_err *err)
{
	X509_STORE *trust = X509_STORE_new();
	const struct cm_ca **v = NULL;
	const struct cm_ca *ca;
	size_t n = 0;
	bool ok;

	cm_tenant_drop_trust(t);
	for(ca = t->cas; ca; ca = ca->next){
		n++;
	}
	ok = trust && (n == 0 || (v = malloc(n * sizeof(*v))) != NULL);
	ERR_clear_error();
	if(ok){
		n = 0;
		for(ca = t->cas; ca; ca = ca->next){
			if(!ca->pinned && !ca->issuer_only){
				v[n++] = ca;
			}
		}
		if(n > 1){
			qsort(v, n, sizeof(*v), subject_cmp);
		}
	}
	for(ca = t->cas; ok && ca; ca = ca->next){
		ok = place_ca(t, trust, v, n, ca);
	}
	free(v);
	if(!ok){
		X509_STORE_free(trust);
		cm_tenant_drop_trust(t);
		ERR_clear_error();
		return cm_err_set(err, CM_ERR_NOMEM, "cannot build the trust store of tenant '%s'", t->name);
	}
	sk_X509_OBJECT_sort(X509_STORE_get0_objects(trust));
	sk_X509_sort(t->pins);
	sk_X509_sort(t->inactive);
	if(admin_ca && !X509_STORE_add_cert(trust, admin_ca)){
		/* The admin CA may also be a tenant's CA: a duplicate is fine. */
		ERR_clear_error();
	}
	/* A registered CA whose issuer is not registered is an anchor, also
	 * an intermediate one. */
	X509_STORE_set_flags(trust, X509_V_FLAG_PARTIAL_CHAIN);
	t->trust = trust;
	return CM_OK;
}
