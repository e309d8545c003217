/* What getStatus, the metrics and the daily log read: certificates near
 * their end, host names their certificate does not cover, CAs shared
 * between tenants. Reads the store, changes nothing. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/err.h>
#include <openssl/x509v3.h>

#include "json.h"
#include "status.h"
#include "store.h"

static bool add_expiring(cJSON *arr, const char *kind, const char *owner_key, const char *owner, const char *id, time_t na)
{
	cJSON *e = cJSON_CreateObject();

	if(e == NULL || !cJSON_AddItemToArray(arr, e)){
		cJSON_Delete(e);
		return false;
	}
	return cJSON_AddStringToObject(e, "kind", kind) && cJSON_AddStringToObject(e, owner_key, owner)
		&& cJSON_AddStringToObject(e, "id", id) && cm_json_add_time(e, "notAfter", na);
}

cJSON *cm_status_expiring(struct cm_state *st, time_t now)
{
	cJSON *arr = cJSON_CreateArray();
	const struct cm_tenant *t;
	const struct cm_ca *ca;
	const struct cm_server_cert *sc;
	time_t limit = now + st->expiry_warning_days * 86400;
	int i;

	for(i = 0; arr && i < CM_SLOT_COUNT; i++){
		for(sc = cm_store_slot_certs(st->store, (enum cm_slot_id)i); sc; sc = sc->next){
			time_t na = cm_pki_not_after(sc->leaf);
			if(na < limit && !add_expiring(arr, "server", "slot", cm_slot_name((enum cm_slot_id)i), sc->id, na)){
				cJSON_Delete(arr);
				return NULL;
			}
		}
	}
	for(t = cm_store_first_tenant(st->store); t; t = cm_store_next_tenant(t)){
		for(ca = t->cas; arr && ca; ca = ca->next){
			time_t na = cm_pki_not_after(ca->cert);
			if(na < limit && !add_expiring(arr, ca->pinned ? "pinned" : "ca", "tenant", t->name, ca->id, na)){
				cJSON_Delete(arr);
				return NULL;
			}
		}
	}
	return arr;
}

cJSON *cm_status_hostname_warnings(struct cm_state *st)
{
	cJSON *arr = cJSON_CreateArray();
	const struct cm_tenant *t;
	size_t h;
	int slot;

	for(t = cm_store_first_tenant(st->store); t; t = cm_store_next_tenant(t)){
		for(slot = 0; arr && slot < CM_SLOT_COUNT; slot++){
			const struct cm_server_cert *c = cm_store_served_cert(st->store, t, (enum cm_slot_id)slot);
			for(h = 0; h < t->hostnames.n; h++){
				const char *name = t->hostnames.v[h];
				/* A wildcard host name is covered by a wildcard certificate. */
				if(X509_check_host(c->leaf, name, 0, 0, NULL) != 1){
					cJSON *w = cJSON_CreateObject();
					if(w == NULL || !cJSON_AddItemToArray(arr, w)){
						cJSON_Delete(w);
						cJSON_Delete(arr);
						return NULL;
					}
					cJSON_AddStringToObject(w, "tenant", t->name);
					cJSON_AddStringToObject(w, "hostname", name);
					cJSON_AddStringToObject(w, "slot", cm_slot_name((enum cm_slot_id)slot));
					cJSON_AddStringToObject(w, "id", c->id);
				}
			}
		}
	}
	return arr;
}

/* ===================================================================
 * CAs shared between tenants, found through the store's index of CAs by
 * name hash (cm_store_cas_by_name), so that finding the issuers of a
 * certificate costs a lookup, not a walk of the store: getStatus and
 * addCA stay cheap with thousands of CAs.
 * =================================================================== */

/* Levels walked up from a CA through the store's CAs. */
#define SHARED_MAX_DEPTH 8
/* Pairs getStatus reports, at most. */
#define SHARED_MAX 1000
/* Pairs reported for one CA, at most. */
#define SHARED_MAX_PER_CA 64

struct ca_ref {
	const struct cm_tenant *t;
	const struct cm_ca *ca;
};

/* True when parent issued child, by names and key identifiers: for a
 * warning, not a trust decision, so no signature is checked (a store with
 * the same root in every tenant would verify it n^2 times). */
static bool issued(X509 *parent, X509 *child)
{
	bool ok = X509_NAME_cmp(X509_get_subject_name(parent), X509_get_issuer_name(child)) == 0
		&& X509_check_issued(parent, child) == X509_V_OK;

	ERR_clear_error();
	return ok;
}

static bool add_shared(cJSON *arr, const struct ca_ref *a, const struct ca_ref *via)
{
	cJSON *w = cJSON_CreateObject();
	char msg[400];

	snprintf(msg, sizeof(msg), "tenant %s also trusts %s %.64s: the devices of tenant %s's CA %.64s can log in to %s under its host names"
			" (a device's certificate names no tenant)", via->t->name, via->ca == a->ca || X509_cmp(via->ca->cert, a->ca->cert) == 0
			? "this CA" : "a CA above it,", via->ca->id, a->t->name, a->ca->id, via->t->name);
	if(w == NULL || !cJSON_AddItemToArray(arr, w)){
		cJSON_Delete(w);
		return false;
	}
	return cJSON_AddStringToObject(w, "tenant", a->t->name) && cJSON_AddStringToObject(w, "ca", a->ca->id)
		&& cJSON_AddStringToObject(w, "alsoTrustedBy", via->t->name) && cJSON_AddStringToObject(w, "via", via->ca->id)
		&& cJSON_AddStringToObject(w, "warning", msg);
}

/* The pairs of one CA found so far, so that a CA reached twice (from two
 * of the store's name buckets, or as issuer of two levels) is reported
 * once. */
struct found {
	const struct ca_ref *a;
	const struct cm_ca *seen[SHARED_MAX_PER_CA];
	size_t n;
	cJSON *arr;
};

/* Reports (f->a, via r) unless r is of a's own tenant, a pin, inactive or
 * reported already. False when out of memory. */
static bool report(struct found *f, const struct cm_ca_ref *r)
{
	struct ca_ref via = {r->tenant, r->ca};
	size_t k;

	if(r->tenant == f->a->t || r->ca->pinned || !r->ca->active){
		return true;
	}
	for(k = 0; k < f->n && f->seen[k] != r->ca; k++){
	}
	if(k < f->n || f->n == SHARED_MAX_PER_CA){
		return true;
	}
	f->seen[f->n++] = r->ca;
	return add_shared(f->arr, f->a, &via);
}

/* Into arr, the pairs of a: other tenants' active CAs equal to a, or that
 * issued a or a CA above it, found in the store's index of CAs by name
 * hash (a bucket holds the CAs whose subject or issuer has that hash). */
static bool shared_for(const struct cm_store *store, const struct ca_ref *a, cJSON *arr)
{
	struct found f = {a, {NULL}, 0, arr};
	X509 *cur = a->ca->cert;
	const struct cm_name_bucket *b = cm_store_cas_by_name(store, X509_subject_name_hash(cur));

	for(size_t k = 0; b && k < b->n; k++){
		if(X509_cmp(b->v[k].ca->cert, cur) == 0 && !report(&f, &b->v[k])){
			return false;
		}
	}
	for(int depth = 0; cur && depth < SHARED_MAX_DEPTH && f.n < SHARED_MAX_PER_CA; depth++){
		X509 *up = NULL;

		b = cm_store_cas_by_name(store, X509_issuer_name_hash(cur));
		for(size_t k = 0; b && k < b->n; k++){
			const struct cm_ca *r = b->v[k].ca;
			if(r->pinned || X509_cmp(r->cert, cur) == 0 || !issued(r->cert, cur)){
				continue;
			}
			up = up ? up : r->cert;
			if(!report(&f, &b->v[k])){
				return false;
			}
		}
		cur = up;
	}
	return true;
}

/* The pairs that name self (tenant's CA id) for addCA's answer: self's
 * own (shared_for), and those of the other tenants' CAs equal to self or
 * that self issued, with self as their via. Only the CAs under self's
 * names are looked at: addCA in a bulk registration stays linear. */
static bool shared_of_self(const struct cm_store *store, const struct ca_ref *self, cJSON *arr)
{
	X509 *cert = self->ca->cert;
	const struct cm_name_bucket *b = cm_store_cas_by_name(store, X509_subject_name_hash(cert));
	int n = 0;

	if(!shared_for(store, self, arr)){
		return false;
	}
	for(size_t k = 0; self->ca->active && b && k < b->n && n < SHARED_MAX_PER_CA; k++){
		struct ca_ref r = {b->v[k].tenant, b->v[k].ca};
		if(r.ca->pinned || r.t == self->t || (X509_cmp(r.ca->cert, cert) != 0 && !issued(cert, r.ca->cert))){
			continue;
		}
		if(!add_shared(arr, &r, self)){
			return false;
		}
		n++;
	}
	return true;
}

cJSON *cm_status_shared_cas(struct cm_state *st, const char *tenant, const char *id)
{
	const struct cm_tenant *t;
	cJSON *arr = cJSON_CreateArray();
	bool ok = arr != NULL;

	if(ok && tenant){
		const struct cm_tenant *owner = cm_store_find_tenant(st->store, tenant);
		struct ca_ref self = {owner, owner ? cm_tenant_find_ca(owner, id) : NULL};
		ok = self.ca == NULL || self.ca->pinned || shared_of_self(st->store, &self, arr);
	}else if(ok){
		/* getStatus: every pair, up to SHARED_MAX in all. */
		for(t = cm_store_first_tenant(st->store); t; t = cm_store_next_tenant(t)){
			for(const struct cm_ca *ca = t->cas; ok && ca && cJSON_GetArraySize(arr) < SHARED_MAX; ca = ca->next){
				struct ca_ref a = {t, ca};
				ok = ca->pinned || shared_for(st->store, &a, arr);
			}
		}
	}
	if(!ok){
		cJSON_Delete(arr);
		return NULL;
	}
	return arr;
}

void cm_status_add_ca_warnings(struct cm_state *st, const char *tenant, const char *id, cJSON *data)
{
	cJSON *arr = cm_status_shared_cas(st, tenant, id);

	if(cJSON_GetArraySize(arr) == 0 || !cJSON_AddItemToObject(data, "warnings", arr)){
		cJSON_Delete(arr);
	}
}

