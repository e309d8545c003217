/* Tenants in the store: lookups by name and SNI, and changes (put,
 * delete) committed by the rename of tenant.json. */
#define _GNU_SOURCE
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "enroll.h"
#include "fsutil.h"
#include "store.h"
#include "store-int.h"

void sni_list_free(struct cm_sni_entry **list)
{
	struct cm_sni_entry *x, *tmp;

	HASH_ITER(hh, *list, x, tmp){
		HASH_DEL(*list, x);
		free(x->host);
		free(x);
	}
}

/* Prepares t's host names for the SNI index; refuses a name another tenant
 * has, or one t lists twice. */
enum cm_rc sni_prepare(const struct cm_store *store, const struct cm_tenant *t, struct cm_sni_entry **list, struct cm_err *err)
{
	size_t i, j;

	*list = NULL;
	for(i = 0; i < t->hostnames.n; i++){
		struct cm_sni_entry *e = NULL;
		for(j = 0; j < i; j++){
			if(!strcmp(t->hostnames.v[i], t->hostnames.v[j])){
				sni_list_free(list);
				return cm_err_set(err, CM_ERR_INVAL, "host name '%s' is listed twice", t->hostnames.v[i]);
			}
		}
		HASH_FIND_STR(store->sni, t->hostnames.v[i], e);
		if(e && strcmp(e->tenant->name, t->name)){
			sni_list_free(list);
			return cm_err_set(err, CM_ERR_INVAL, "host name '%s' already belongs to tenant '%s'", t->hostnames.v[i], e->tenant->name);
		}
		e = calloc(1, sizeof(*e));
		if(e == NULL || (e->host = strdup(t->hostnames.v[i])) == NULL){
			free(e);
			sni_list_free(list);
			return cm_err_set(err, CM_ERR_NOMEM, "out of memory");
		}
		e->tenant = (struct cm_tenant *)t;
		HASH_ADD_KEYPTR(hh, *list, e->host, strlen(e->host), e);
	}
	return CM_OK;
}

/* Moves the prepared entries into the index, dropping the entries of old
 * (the tenant t replaces) first. Cannot fail. */
void sni_commit(struct cm_store *store, const struct cm_tenant *old, struct cm_sni_entry *list)
{
	struct cm_sni_entry *e, *tmp;

	/* old's entries are those of its host names (sni_prepare made them):
	 * found by name, not by a walk over every tenant's. */
	for(size_t i = 0; old && i < old->hostnames.n; i++){
		e = NULL;
		HASH_FIND_STR(store->sni, old->hostnames.v[i], e);
		if(e && e->tenant == old){
			HASH_DEL(store->sni, e);
			free(e->host);
			free(e);
		}
	}
	HASH_ITER(hh, list, e, tmp){
		HASH_DEL(list, e);
		HASH_ADD_KEYPTR(hh, store->sni, e->host, strlen(e->host), e);
	}
}

enum cm_rc check_server_refs(const struct cm_store *store, const struct cm_tenant *t, struct cm_err *err)
{
	int i;

	for(i = 0; i < CM_SLOT_COUNT; i++){
		const char *id = cm_tenant_server_cert(t, (enum cm_slot_id)i);
		if(id[0] && cm_store_find_server_cert(store, (enum cm_slot_id)i, id) == NULL){
			return cm_err_set(err, CM_ERR_INVAL, "no server certificate %s in slot %s", id, cm_slot_name((enum cm_slot_id)i));
		}
	}
	return CM_OK;
}

const struct cm_tenant *cm_store_tenant_for_org(const struct cm_store *store, const char *org, size_t len)
{
	struct cm_tenant *t = NULL;

	if(org){
		HASH_FIND(hh_org, store->orgs, org, len, t);
	}
	return t;
}

/* By the org index, not a walk over every tenant: it ran at each command
 * and cost seconds of a bulk registration. */
enum cm_rc check_unique_org(const struct cm_store *store, const struct cm_tenant *t, struct cm_err *err)
{
	const struct cm_tenant *o = cm_store_tenant_for_org(store, t->org_id, strlen(t->org_id));

	if(o && strcmp(o->name, t->name)){
		return cm_err_set(err, CM_ERR_INVAL, "org id '%s' already belongs to tenant '%s'", t->org_id, o->name);
	}
	return CM_OK;
}

/* The live tenant, to be replaced or unlinked: for store/ alone. */
static struct cm_tenant *live_tenant(struct cm_store *store, const char *name)
{
	struct cm_tenant *t = NULL;

	if(name){
		HASH_FIND_STR(store->tenants, name, t);
	}
	return t;
}

struct cm_crl_schedule *cm_store_crl_schedule(struct cm_store *store, const struct cm_ca *ca)
{
	(void)store; /* the entry is the store's: its owner hands out the schedule */
	return (struct cm_crl_schedule *)&ca->sched;
}

const struct cm_tenant *cm_store_find_tenant(const struct cm_store *store, const char *name)
{
	return live_tenant((struct cm_store *)store, name);
}

static struct cm_sni_entry *sni_lookup(const struct cm_store *store, const char *sni)
{
	struct cm_sni_entry *e = NULL;
	char wild[256];
	const char *dot;

	if(sni && sni[0]){
		HASH_FIND_STR(store->sni, sni, e);
		if(e == NULL && (dot = strchr(sni, '.')) != NULL && strlen(dot) + 2 < sizeof(wild)){
			snprintf(wild, sizeof(wild), "*%s", dot);
			HASH_FIND_STR(store->sni, wild, e);
		}
	}
	return e;
}

const struct cm_tenant *cm_store_tenant_for_sni(const struct cm_store *store, const char *sni)
{
	struct cm_sni_entry *e = sni_lookup(store, sni);

	return e ? e->tenant : cm_store_find_tenant(store, CM_DEFAULT_TENANT);
}

bool cm_store_sni_known(const struct cm_store *store, const char *sni)
{
	return sni_lookup(store, sni) != NULL;
}

void names_free(struct cm_name_bucket **set)
{
	struct cm_name_bucket *b, *tmp;

	HASH_ITER(hh, *set, b, tmp){
		HASH_DEL(*set, b);
		free(b->v);
		free(b);
	}
}

static struct cm_name_bucket *names_find(const struct cm_name_bucket *set, unsigned long hash)
{
	struct cm_name_bucket *b = NULL;

	HASH_FIND(hh, set, &hash, sizeof(hash), b);
	return b;
}

const struct cm_name_bucket *cm_store_cas_by_name(const struct cm_store *store, unsigned long hash)
{
	return names_find(store->names, hash);
}

/* Room in the bucket of hash for extra more entries (made when absent). */
static bool names_reserve_one(struct cm_name_bucket **set, unsigned long hash, size_t extra)
{
	struct cm_name_bucket *b = names_find(*set, hash);

	if(b == NULL){
		b = calloc(1, sizeof(*b));
		if(b == NULL){
			return false;
		}
		b->hash = hash;
		HASH_ADD(hh, *set, hash, sizeof(b->hash), b);
	}
	if(b->n + extra > b->cap){
		size_t cap = b->cap ? b->cap * 2 : 1;
		struct cm_ca_ref *v;

		while(cap < b->n + extra){
			cap *= 2;
		}
		v = realloc(b->v, cap * sizeof(*v));
		if(v == NULL){
			return false;
		}
		b->v = v;
		b->cap = cap;
	}
	return true;
}

/* Makes room for t's CAs in the name index, so that names_add, at the
 * commit, cannot fail. */
enum cm_rc names_reserve(struct cm_store *store, const struct cm_tenant *t, struct cm_err *err)
{
	const struct cm_ca *ca;
	size_t count = 0;

	for(ca = t->cas; ca; ca = ca->next){
		count++;
	}
	for(ca = t->cas; ca; ca = ca->next){
		unsigned long s = X509_subject_name_hash(ca->cert), i = X509_issuer_name_hash(ca->cert);
		if(!names_reserve_one(&store->names, s, count) || (i != s && !names_reserve_one(&store->names, i, count))){
			return cm_err_set(err, CM_ERR_NOMEM, "out of memory");
		}
	}
	return CM_OK;
}

void names_add(struct cm_store *store, const struct cm_tenant *t)
{
	for(const struct cm_ca *ca = t->cas; ca; ca = ca->next){
		unsigned long s = X509_subject_name_hash(ca->cert), i = X509_issuer_name_hash(ca->cert);
		struct cm_name_bucket *b = names_find(store->names, s);

		b->v[b->n++] = (struct cm_ca_ref){t, ca};
		if(i != s){
			b = names_find(store->names, i);
			b->v[b->n++] = (struct cm_ca_ref){t, ca};
		}
	}
}

static void names_drop_one(struct cm_store *store, unsigned long hash, const struct cm_ca *ca)
{
	struct cm_name_bucket *b = names_find(store->names, hash);

	for(size_t k = 0; b && k < b->n; k++){
		if(b->v[k].ca == ca){
			b->v[k] = b->v[--b->n];
			break;
		}
	}
	if(b && b->n == 0){
		HASH_DEL(store->names, b);
		free(b->v);
		free(b);
	}
}

/* Takes t's CAs out of the name index. After names_add of the tenant
 * that replaces t: the buckets they share stay. */
void names_drop(struct cm_store *store, const struct cm_tenant *t)
{
	for(const struct cm_ca *ca = t ? t->cas : NULL; ca; ca = ca->next){
		unsigned long s = X509_subject_name_hash(ca->cert), i = X509_issuer_name_hash(ca->cert);

		names_drop_one(store, s, ca);
		if(i != s){
			names_drop_one(store, i, ca);
		}
	}
}

/* Everything a tenant must satisfy to enter the store, and its trust and
 * SNI entries built (*list: the caller commits or frees them). One check
 * for the commit here and for a fleet node's staged change
 * (cm_store_check_tenant), so that a change a node accepts is one every
 * node can apply. */
enum cm_rc validate_tenant(const struct cm_store *store, struct cm_tenant *t, struct cm_sni_entry **list, struct cm_err *err)
{
	enum cm_rc rc;

	if(!cm_tenant_name_valid(t->name)){
		return cm_err_set(err, CM_ERR_INVAL, "invalid tenant name");
	}
	rc = check_unique_org(store, t, err);
	if(rc == CM_OK){
		rc = check_server_refs(store, t, err);
	}
	if(rc == CM_OK && t->enroll && t->enroll->ca_id[0] && cm_enroll_issuing_ca(t) == NULL){
		rc = cm_err_set(err, CM_ERR_INVAL, "CA %s is the tenant's issuing CA: it stays in the trust list (deactivate it instead)",
				t->enroll->ca_id);
	}
	if(rc == CM_OK){
		rc = build_trust(t, store->admin_ca, err);
	}
	if(rc == CM_OK){
		rc = sni_prepare(store, t, list, err);
	}
	return rc;
}

enum cm_rc cm_store_put_tenant(struct cm_store *store, struct cm_tenant *t, struct cm_tenant **old, struct cm_err *err)
{
	struct cm_sni_entry *list = NULL;
	struct cm_tenant *prev;
	uint64_t gen = store->generation + 1;
	uint64_t saved_gen = t->generation;
	enum cm_rc rc;

	*old = NULL;
	rc = validate_tenant(store, t, &list, err);
	if(rc == CM_OK && (rc = names_reserve(store, t, err)) != CM_OK){
		sni_list_free(&list);
	}
	if(rc != CM_OK){
		return rc;
	}
	t->generation = gen;
	prev = live_tenant(store, t->name);
	rc = write_tenant(store, t, err);
	if(rc != CM_OK){
		write_tenant_undo(store, prev, t);
		t->generation = saved_gen;
		sni_list_free(&list);
		return rc;
	}
	for(struct cm_ca *ca = t->cas; ca; ca = ca->next){
		ca->crl_dirty = false;
		memset(ca->more_dirty, 0, sizeof(ca->more_dirty));
	}
	sni_commit(store, prev, list);
	names_add(store, t);
	names_drop(store, prev);
	if(prev){
		HASH_DEL(store->tenants, prev);
		HASH_DELETE(hh_org, store->orgs, prev);
	}
	HASH_ADD_KEYPTR(hh, store->tenants, t->name, strlen(t->name), t);
	HASH_ADD_KEYPTR(hh_org, store->orgs, t->org_id, strlen(t->org_id), t);
	remove_unnamed_files(store, prev, t);
	bump_generation(store, gen);
	*old = prev;
	return CM_OK;
}

enum cm_rc cm_store_delete_tenant(struct cm_store *store, const char *name, struct cm_tenant **old, struct cm_err *err)
{
	char path[PATH_MAX];
	struct cm_tenant *t;
	enum cm_rc rc;

	*old = NULL;
	t = live_tenant(store, name);
	if(t == NULL){
		return cm_err_set(err, CM_ERR_INVAL, "no tenant '%s'", name);
	}
	if(!strcmp(name, CM_DEFAULT_TENANT)){
		return cm_err_set(err, CM_ERR_INVAL, "the default tenant serves unknown host names and cannot be deleted");
	}
	if(cm_fs_path(path, sizeof(path), err, "%s/tenants/%s/tenant.json", store->dir, name) != CM_OK){
		return CM_ERR_INVAL;
	}
	rc = cm_fs_remove(path, err); /* the commit point */
	if(rc != CM_OK){
		return rc;
	}
	remove_unnamed_files(store, t, NULL);
	if(cm_fs_path(path, sizeof(path), NULL, "%s/tenants/%s/cas", store->dir, name) == CM_OK){
		(void)rmdir(path);
	}
	if(cm_fs_path(path, sizeof(path), NULL, "%s/tenants/%s/crls", store->dir, name) == CM_OK){
		(void)rmdir(path);
	}
	if(cm_fs_path(path, sizeof(path), NULL, "%s/tenants/%s", store->dir, name) == CM_OK){
		(void)rmdir(path);
	}
	sni_commit(store, t, NULL);
	names_drop(store, t);
	HASH_DEL(store->tenants, t);
	HASH_DELETE(hh_org, store->orgs, t);
	bump_generation(store, store->generation + 1);
	*old = t;
	return CM_OK;
}
