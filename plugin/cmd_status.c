/* getStatus. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/err.h>
#include <openssl/x509v3.h>

#include "control.h"
#include "json.h"
#include "refresh.h"

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

/* True when parent issued child: names, and the signature. */
static bool issued(X509 *parent, X509 *child)
{
	EVP_PKEY *key = X509_get0_pubkey(parent);
	bool ok = X509_check_issued(parent, child) == X509_V_OK && key && X509_verify(child, key) == 1;

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

	for(i = index_first(ix, a->subject); i < ix->n && ix->v[i].subject == a->subject; i++){
		if(X509_cmp(ix->v[i].ca->cert, cur) == 0 && !report(&f, &ix->v[i])){
			return false;
		}
	}
	for(int depth = 0; cur && depth < SHARED_MAX_DEPTH; depth++){
		unsigned long h = X509_issuer_name_hash(cur);
		X509 *up = NULL;

		for(i = index_first(ix, h); i < ix->n && ix->v[i].subject == h; i++){
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

/* A set of name hashes or of CAs, for related_build. */
struct seen {
	const void *key;
	unsigned long hash;
	UT_hash_handle hh;
};

static bool seen_add(struct seen **set, const void *key, unsigned long hash, bool *added)
{
	struct seen *s = NULL;

	*added = false;
	if(key){
		HASH_FIND_PTR(*set, &key, s);
	}else{
		HASH_FIND(hh, *set, &hash, sizeof(hash), s);
	}
	if(s){
		return true;
	}
	if((s = calloc(1, sizeof(*s))) == NULL){
		return false;
	}
	s->key = key;
	s->hash = hash;
	if(key){
		HASH_ADD_PTR(*set, key, s);
	}else{
		HASH_ADD(hh, *set, hash, sizeof(s->hash), s);
	}
	*added = true;
	return true;
}

static void seen_free(struct seen **set)
{
	struct seen *s, *tmp;

	HASH_ITER(hh, *set, s, tmp){
		HASH_DEL(*set, s);
		free(s);
	}
}

/* Takes the CAs (not pins) of bucket b not yet in ix into ix, and their
 * names into the names still to visit. */
static bool related_take(const struct cm_name_bucket *b, struct ca_index *ix, size_t *cap, struct seen **cas, struct seen **names,
		unsigned long **todo, size_t *ntodo, size_t *captodo)
{
	for(size_t k = 0; b && k < b->n; k++){
		const struct cm_ca *ca = b->v[k].ca;
		unsigned long h[2];
		bool added;

		if(ca->pinned){
			continue;
		}
		if(!seen_add(cas, ca, 0, &added)){
			return false;
		}
		if(!added){
			continue;
		}
		if(ix->n == *cap){
			struct ca_ref *v = realloc(ix->v, (*cap * 2 + 8) * sizeof(*v));
			if(v == NULL){
				return false;
			}
			ix->v = v;
			*cap = *cap * 2 + 8;
		}
		h[0] = X509_subject_name_hash(ca->cert);
		h[1] = X509_issuer_name_hash(ca->cert);
		ix->v[ix->n++] = (struct ca_ref){h[0], b->v[k].tenant, ca};
		for(int j = 0; j < 2; j++){
			if(!seen_add(names, NULL, h[j], &added)){
				return false;
			}
			if(added){
				if(*ntodo == *captodo){
					unsigned long *v = realloc(*todo, (*captodo * 2 + 8) * sizeof(*v));
					if(v == NULL){
						return false;
					}
					*todo = v;
					*captodo = *captodo * 2 + 8;
				}
				(*todo)[(*ntodo)++] = h[j];
			}
		}
	}
	return true;
}

/* The index of the CAs (not pins) linked to ca by names: those whose
 * subject or issuer is ca's subject or issuer, and so on from theirs.
 * Every pair ca takes part in is between two of them (an equal CA has its
 * subject, an issuer above it is reached through issuer names, a CA it
 * issued through its subject), so shared_for over these finds the pairs
 * of ca that it finds over every tenant's CAs, from the store's name
 * index, without hashing the names of every CA at each addCA (which made
 * registering 10,000 tenants take 47 s). */
static bool related_build(const struct cm_store *store, const struct cm_ca *ca, struct ca_index *ix)
{
	struct seen *cas = NULL, *names = NULL;
	unsigned long *todo = NULL;
	size_t cap = 0, ntodo = 0, captodo = 0;
	bool ok = true, added;

	memset(ix, 0, sizeof(*ix));
	for(int j = 0; ok && j < 2; j++){
		unsigned long h = j ? X509_issuer_name_hash(ca->cert) : X509_subject_name_hash(ca->cert);
		ok = seen_add(&names, NULL, h, &added);
		if(ok && added){
			unsigned long *v = realloc(todo, (ntodo + 1) * sizeof(*v));
			ok = v != NULL;
			if(ok){
				todo = v;
				todo[ntodo++] = h;
				captodo = ntodo;
			}
		}
	}
	for(size_t i = 0; ok && i < ntodo; i++){
		unsigned long h = todo[i];
		ok = related_take(cm_store_cas_by_name(store, h), ix, &cap, &cas, &names, &todo, &ntodo, &captodo);
	}
	seen_free(&cas);
	seen_free(&names);
	free(todo);
	if(!ok){
		free(ix->v);
		memset(ix, 0, sizeof(*ix));
		return false;
	}
	if(ix->n){
		qsort(ix->v, ix->n, sizeof(*ix->v), cmp_ref);
	}
	return true;
}

cJSON *cm_status_shared_cas(struct cm_state *st, const char *tenant, const char *id)
{
	struct ca_index ix = {NULL, 0};
	cJSON *arr = cJSON_CreateArray();
	const struct cm_tenant *t = tenant ? cm_store_find_tenant(st->store, tenant) : NULL;
	const struct cm_ca *ca = t ? cm_tenant_find_ca(t, id) : NULL;
	bool ok;

	if(arr == NULL){
		return NULL;
	}
	if(tenant == NULL){
		ok = index_build(st->store, &ix);
	}else if(ca == NULL || ca->pinned){
		return arr; /* no pair names it */
	}else{
		ok = related_build(st->store, ca, &ix);
	}
	if(!ok){
		cJSON_Delete(arr);
		return NULL;
	}
	for(size_t i = 0; i < ix.n; i++){
		if(!shared_for(&ix, &ix.v[i], arr, tenant, id)){
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

static enum cm_rc get_status(struct cm_state *st, const struct cm_caller *who, const cJSON *cmd, cJSON *data, struct cm_err *err)
{
	const struct cm_tenant *t, *tmp;
	const struct cm_ca *ca;
	const struct cm_client *c, *ctmp;
	const struct cm_server_cert *sc;
	int tenants = 0, cas = 0, pinned = 0, devices = 0, admins = 0, i;
	time_t nearest = 0;
	const char *kind = NULL, *owner = NULL, *id = NULL;
	cJSON *o, *n;

	(void)who;
	(void)cmd;
	HASH_ITER(hh, st->store->tenants, t, tmp){
		tenants++;
		for(ca = t->cas; ca; ca = ca->next){
			time_t na = cm_pki_not_after(ca->cert);
			ca->pinned ? pinned++ : cas++;
			if(nearest == 0 || na < nearest){
				nearest = na;
				kind = ca->pinned ? "pinned" : "ca";
				owner = t->name;
				id = ca->id;
			}
		}
	}
	for(i = 0; i < CM_SLOT_COUNT; i++){
		for(sc = st->store->slots[i].certs; sc; sc = sc->next){
			time_t na = cm_pki_not_after(sc->leaf);
			if(nearest == 0 || na < nearest){
				nearest = na;
				kind = "server";
				owner = cm_slot_name((enum cm_slot_id)i);
				id = sc->id;
			}
		}
	}
	HASH_ITER(hh, st->clients, c, ctmp){
		c->kind == CM_CLIENT_DEVICE ? devices++ : admins++;
	}
	o = cJSON_AddObjectToObject(data, "status");
	if(o == NULL
			|| !cJSON_AddNumberToObject(o, "generation", (double)st->store->generation)
			|| !cJSON_AddNumberToObject(o, "tenants", tenants)
			|| !cJSON_AddNumberToObject(o, "cas", cas)
			|| !cJSON_AddNumberToObject(o, "pinned", pinned)
			|| !cJSON_AddNumberToObject(o, "rejected", (double)cm_rejected_count(st->rejected))
			|| !cJSON_AddNumberToObject(o, "connectedDevices", devices)
			|| !cJSON_AddNumberToObject(o, "connectedAdministrators", admins)
			|| !cJSON_AddNumberToObject(o, "handshakes", (double)st->handshakes_served)){
		return cm_err_set(err, CM_ERR_NOMEM, "out of memory");
	}
	{
		cJSON *exp = cm_status_expiring(st, time(NULL));
		cJSON *warn = cm_status_hostname_warnings(st);
		cJSON *shared = cm_status_shared_cas(st, NULL, NULL);
		if(exp == NULL || !cJSON_AddItemToObject(o, "expiring", exp)
				|| warn == NULL || !cJSON_AddItemToObject(o, "hostnameWarnings", warn)
				|| shared == NULL || !cJSON_AddItemToObject(o, "sharedCAs", shared)){
			return cm_err_set(err, CM_ERR_NOMEM, "out of memory");
		}
	}
	{
		cJSON *crls = cm_refresh_health(st);
		if(crls == NULL || !cJSON_AddItemToObject(o, "crls", crls)){
			cJSON_Delete(crls);
			return cm_err_set(err, CM_ERR_NOMEM, "out of memory");
		}
	}
	if(kind){
		n = cJSON_AddObjectToObject(o, "nearestExpiry");
		if(n == NULL || !cJSON_AddStringToObject(n, "kind", kind)
				|| !cJSON_AddStringToObject(n, strcmp(kind, "server") ? "tenant" : "slot", owner)
				|| !cJSON_AddStringToObject(n, "id", id)
				|| !cm_json_add_time(n, "notAfter", nearest)){
			return cm_err_set(err, CM_ERR_NOMEM, "out of memory");
		}
	}
	return CM_OK;
}

const struct cm_command cm_status_commands[] = {
	{"getStatus", get_status},
	{NULL, NULL},
};
