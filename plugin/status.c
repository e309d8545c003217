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
	const struct cm_tenant *t, *tmp;
	const struct cm_ca *ca;
	const struct cm_server_cert *sc;
	time_t limit = now + st->expiry_warning_days * 86400;
	int i;

	for(i = 0; arr && i < CM_SLOT_COUNT; i++){
		for(sc = st->store->slots[i].certs; sc; sc = sc->next){
			time_t na = cm_pki_not_after(sc->leaf);
			if(na < limit && !add_expiring(arr, "server", "slot", cm_slot_name((enum cm_slot_id)i), sc->id, na)){
				cJSON_Delete(arr);
				return NULL;
			}
		}
	}
	HASH_ITER(hh, st->store->tenants, t, tmp){
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
	const struct cm_tenant *t, *tmp;
	size_t h;
	int slot;

	HASH_ITER(hh, st->store->tenants, t, tmp){
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
 * CAs shared between tenants. Every CA of every tenant goes into one
 * index by subject name hash, so that finding the issuers of a
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
	unsigned long subject; /* X509_subject_name_hash */
	const struct cm_tenant *t;
	const struct cm_ca *ca;
};

struct ca_index {
	struct ca_ref *v;
	size_t n;
};

static int cmp_ref(const void *a, const void *b)
{
	unsigned long x = ((const struct ca_ref *)a)->subject, y = ((const struct ca_ref *)b)->subject;
	return x < y ? -1 : x > y;
}

/* The CAs (not pins) of every tenant, sorted by subject hash. */
static bool index_build(const struct cm_store *store, struct ca_index *ix)
{
	const struct cm_tenant *t, *tmp;
	const struct cm_ca *ca;
	size_t cap = 0;

	memset(ix, 0, sizeof(*ix));
	HASH_ITER(hh, store->tenants, t, tmp){
		for(ca = t->cas; ca; ca = ca->next){
			cap += ca->pinned ? 0 : 1;
		}
	}
	ix->v = calloc(cap + 1, sizeof(*ix->v));
	if(ix->v == NULL){
		return false;
	}
	HASH_ITER(hh, store->tenants, t, tmp){
		for(ca = t->cas; ca; ca = ca->next){
			if(!ca->pinned){
				ix->v[ix->n++] = (struct ca_ref){X509_subject_name_hash(ca->cert), t, ca};
			}
		}
	}
	qsort(ix->v, ix->n, sizeof(*ix->v), cmp_ref);
	return true;
}

/* The first entry whose subject hash is h (ix->n when none). */
static size_t index_first(const struct ca_index *ix, unsigned long h)
{
	size_t lo = 0, hi = ix->n;

	while(lo < hi){
		size_t mid = lo + (hi - lo) / 2;
		if(ix->v[mid].subject < h){
			lo = mid + 1;
		}else{
			hi = mid;
		}
	}
	return lo;
}

/* True when parent issued child, by names and key identifiers: for a
 * warning, not a trust decision, so no signature is checked (a store with
 * the same root in every tenant would verify it n^2 times). */
static bool issued(X509 *parent, X509 *child)
{
	bool ok = X509_check_issued(parent, child) == X509_V_OK;

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

/* Whether the pair (a, via) is wanted: every pair, or with a tenant only
 * those in which tenant's CA id takes part. */
static bool wanted(const struct ca_ref *a, const struct ca_ref *via, const char *tenant, const char *id)
{
	return tenant == NULL || (!strcmp(a->t->name, tenant) && !strcmp(a->ca->id, id))
		|| (!strcmp(via->t->name, tenant) && !strcmp(via->ca->id, id));
}

/* The pairs of one CA found so far, so that a CA reached twice (issuer
 * of two levels, say) is reported once. */
struct found {
	const struct ca_ref *a;
	const struct ca_ref *seen[SHARED_MAX_PER_CA];
	size_t n;
	cJSON *arr;
	const char *tenant, *id;
};

/* Reports r for f->a unless it is of a's own tenant, inactive, not
 * wanted or reported already. False when out of memory. */
static bool report(struct found *f, const struct ca_ref *r)
{
	size_t k;

	if(r->t == f->a->t || !r->ca->active || !wanted(f->a, r, f->tenant, f->id)){
		return true;
	}
	for(k = 0; k < f->n && f->seen[k] != r; k++){
	}
	if(k < f->n || f->n == SHARED_MAX_PER_CA){
		return true;
	}
	f->seen[f->n++] = r;
	return add_shared(f->arr, f->a, r);
}

/* Into arr, the pairs of a: other tenants' active CAs equal to a, or that
 * issued a or a CA above it. */
static bool shared_for(const struct ca_index *ix, const struct ca_ref *a, cJSON *arr, const char *tenant, const char *id)
{
	struct found f = {a, {NULL}, 0, arr, tenant, id};
	X509 *cur = a->ca->cert;
	size_t i;

	for(i = index_first(ix, a->subject); i < ix->n && ix->v[i].subject == a->subject && f.n < SHARED_MAX_PER_CA; i++){
		if(X509_cmp(ix->v[i].ca->cert, cur) == 0 && !report(&f, &ix->v[i])){
			return false;
		}
	}
	for(int depth = 0; cur && depth < SHARED_MAX_DEPTH; depth++){
		unsigned long h = X509_issuer_name_hash(cur);
		X509 *up = NULL;

		for(i = index_first(ix, h); i < ix->n && ix->v[i].subject == h && f.n < SHARED_MAX_PER_CA; i++){
			const struct ca_ref *r = &ix->v[i];
			if(X509_cmp(r->ca->cert, cur) == 0 || !issued(r->ca->cert, cur)){
				continue;
			}
			up = up ? up : r->ca->cert;
			if(!report(&f, r)){
				return false;
			}
		}
		cur = up;
	}
	return true;
}

/* The CA of the store, not cur itself, that issued cur (names, key
 * identifiers), or NULL: looked for among the CAs of cur's issuer name. */
static const struct cm_ca_ref *parent_of(const struct cm_store *store, X509 *cur)
{
	const struct cm_name_bucket *b = cm_store_cas_by_name(store, X509_issuer_name_hash(cur));

	for(size_t k = 0; b && k < b->n; k++){
		const struct cm_ca *ca = b->v[k].ca;
		if(!ca->pinned && X509_NAME_cmp(X509_get_subject_name(ca->cert), X509_get_issuer_name(cur)) == 0
				&& X509_cmp(ca->cert, cur) != 0 && issued(ca->cert, cur)){
			return &b->v[k];
		}
	}
	return NULL;
}

/* The pairs that name self (tenant's CA id) for addCA's answer, among the
 * CAs the store indexes under self's names (no walk over the store: addCA
 * in a bulk registration would be quadratic): other tenants' CAs equal
 * to self (both ways), that self issued, and that issued self or a CA
 * above it. */
static bool shared_of_self(const struct cm_store *store, const struct ca_ref *self, cJSON *arr)
{
	X509 *cert = self->ca->cert, *cur = cert;
	const struct cm_name_bucket *b = cm_store_cas_by_name(store, X509_subject_name_hash(cert));
	int n = 0;

	for(size_t k = 0; b && k < b->n && n < SHARED_MAX_PER_CA; k++){
		struct ca_ref r = {0, b->v[k].tenant, b->v[k].ca};
		bool same;
		if(r.ca->pinned || r.t == self->t){
			continue;
		}
		same = X509_cmp(r.ca->cert, cert) == 0;
		if(same && ((r.ca->active && !add_shared(arr, self, &r)) || (self->ca->active && !add_shared(arr, &r, self)))){
			return false;
		}
		if(!same && self->ca->active && X509_NAME_cmp(X509_get_subject_name(cert), X509_get_issuer_name(r.ca->cert)) == 0
				&& issued(cert, r.ca->cert) && !add_shared(arr, &r, self)){
			return false;
		}
		n++;
	}
	for(int depth = 0; cur && depth < SHARED_MAX_DEPTH && n < SHARED_MAX_PER_CA; depth++){
		const struct cm_ca_ref *up = parent_of(store, cur);
		struct ca_ref r = {0, up ? up->tenant : NULL, up ? up->ca : NULL};
		if(up && up->tenant != self->t && up->ca->active){
			if(!add_shared(arr, self, &r)){
				return false;
			}
			n++;
		}
		cur = up ? up->ca->cert : NULL;
	}
	return true;
}

cJSON *cm_status_shared_cas(struct cm_state *st, const char *tenant, const char *id)
{
	struct ca_index ix;
	cJSON *arr = cJSON_CreateArray();

	if(arr && tenant){
		const struct cm_tenant *t = cm_store_find_tenant(st->store, tenant);
		const struct cm_ca *ca = t ? cm_tenant_find_ca(t, id) : NULL;
		struct ca_ref self = {0, t, ca};
		if(ca && !ca->pinned && !shared_of_self(st->store, &self, arr)){
			cJSON_Delete(arr);
			arr = NULL;
		}
		return arr;
	}
	if(arr == NULL || !index_build(st->store, &ix)){
		cJSON_Delete(arr);
		return NULL;
	}
	/* getStatus: every pair, up to SHARED_MAX in all. */
	for(size_t i = 0; i < ix.n && cJSON_GetArraySize(arr) < SHARED_MAX; i++){
		if(!shared_for(&ix, &ix.v[i], arr, NULL, NULL)){
			cJSON_Delete(arr);
			arr = NULL;
			break;
		}
	}
	free(ix.v);
	return arr;
}

void cm_status_add_ca_warnings(struct cm_state *st, const char *tenant, const char *id, cJSON *data)
{
	cJSON *arr = cm_status_shared_cas(st, tenant, id);

	if(cJSON_GetArraySize(arr) == 0 || !cJSON_AddItemToObject(data, "warnings", arr)){
		cJSON_Delete(arr);
	}
}

