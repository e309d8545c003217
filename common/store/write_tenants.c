/* Writing a tenant's files (tenant.json, CRLs) and removing the ones
 * nothing names any more. */
#define _GNU_SOURCE
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cjson/cJSON.h>

#include "enroll.h"
#include "fsutil.h"
#include "json.h"
#include "store.h"
#include "store-int.h"

static bool add_strlist(cJSON *obj, const char *name, const struct cm_strlist *list)
{
	cJSON *arr = cJSON_AddArrayToObject(obj, name);
	size_t i;

	if(arr == NULL){
		return false;
	}
	for(i = 0; i < list->n; i++){
		cJSON *s = cJSON_CreateString(list->v[i]);
		if(s == NULL || !cJSON_AddItemToArray(arr, s)){
			cJSON_Delete(s);
			return false;
		}
	}
	return true;
}

static bool add_more_files(cJSON *c, const struct cm_ca *ca)
{
	cJSON *arr = NULL;

	for(int i = 0; i < CM_CA_MORE_CRLS; i++){
		if(ca->more[i] == NULL || ca->more_file[i][0] == '\0'){
			continue;
		}
		if((arr == NULL && (arr = cJSON_AddArrayToObject(c, "moreFiles")) == NULL)
				|| !cJSON_AddItemToArray(arr, cJSON_CreateString(ca->more_file[i]))){
			return false;
		}
	}
	return true;
}

/* tenant.json's "serverCertificates", when the tenant names any. */
static bool add_server_certs(cJSON *json, const struct cm_tenant *t)
{
	cJSON *sc = NULL;
	int i;

	for(i = 0; i < CM_SLOT_COUNT; i++){
		const char *id = cm_tenant_server_cert(t, (enum cm_slot_id)i);
		if(id[0]){
			if((sc == NULL && (sc = cJSON_AddObjectToObject(json, "serverCertificates")) == NULL)
					|| !cJSON_AddStringToObject(sc, cm_slot_name((enum cm_slot_id)i), id)){
				return false;
			}
		}
	}
	return true;
}

/* tenant.json's "blocked": {"devices": [...], "certificates": [...]},
 * when the tenant holds a block. */
static bool add_blocklist(cJSON *obj, const char *name, const struct cm_blocklist *l)
{
	cJSON *arr = cJSON_AddArrayToObject(obj, name);

	for(size_t i = 0; arr && i < l->n; i++){
		cJSON *e = cJSON_CreateObject();
		if(e == NULL || !cJSON_AddItemToArray(arr, e)){
			cJSON_Delete(e);
			return false;
		}
		/* e is the tree's now: freed with it. */
		if(!cJSON_AddStringToObject(e, "id", l->v[i].key)
				|| !cJSON_AddStringToObject(e, "reason", l->v[i].reason)
				|| !cJSON_AddStringToObject(e, "by", l->v[i].by)
				|| !cm_json_add_time(e, "at", l->v[i].at)){
			return false;
		}
	}
	return arr != NULL;
}

static bool add_blocks(cJSON *json, const struct cm_tenant *t)
{
	cJSON *b;

	if(t->blocked_devices.n == 0 && t->blocked_certs.n == 0){
		return true;
	}
	b = cJSON_AddObjectToObject(json, "blocked");
	return b && add_blocklist(b, "devices", &t->blocked_devices) && add_blocklist(b, "certificates", &t->blocked_certs);
}

/* One entry of tenant.json's "cas", with its CRL state. */
static bool add_ca(cJSON *arr, const struct cm_ca *ca)
{
	cJSON *e = cJSON_CreateObject();

	if(e == NULL || !cJSON_AddItemToArray(arr, e)){
		cJSON_Delete(e);
		return false;
	}
	if(!cJSON_AddStringToObject(e, "id", ca->id)
			|| !cJSON_AddStringToObject(e, "description", ca->description)
			|| !cJSON_AddBoolToObject(e, "active", ca->active)
			|| !cJSON_AddBoolToObject(e, "pinned", ca->pinned)
			|| (ca->issuer_only && !cJSON_AddStringToObject(e, "role", "issuer"))
			|| (ca->claim && !cJSON_AddStringToObject(e, "purpose", "claim"))
			|| !cm_json_add_time(e, "added", ca->added)){
		return false;
	}
	if(ca->crl_url || ca->crl_learned_url || ca->crl_source[0] || ca->sched.attempt || ca->stale_fail_open){
		cJSON *c = cJSON_AddObjectToObject(e, "crl");
		if(c == NULL
				|| (ca->crl_url && !cJSON_AddStringToObject(c, "url", ca->crl_url))
				|| (ca->crl_learned_url && !cJSON_AddStringToObject(c, "learnedUrl", ca->crl_learned_url))
				|| !cJSON_AddStringToObject(c, "source", ca->crl ? ca->crl_source : "")
				|| (ca->crl && ca->crl_file[0] && !cJSON_AddStringToObject(c, "file", ca->crl_file))
				|| (ca->sched.attempt && !cm_json_add_time(c, "lastAttempt", ca->sched.attempt))
				|| (ca->sched.success && !cm_json_add_time(c, "lastSuccess", ca->sched.success))
				|| !cJSON_AddStringToObject(c, "lastError", ca->sched.error)
				|| !cJSON_AddStringToObject(c, "stalePolicy", ca->stale_fail_open ? "fail-open" : "fail-closed")
				|| (ca->sched.next_attempt && !cm_json_add_time(c, "nextAttempt", ca->sched.next_attempt))
				|| !cJSON_AddNumberToObject(c, "failures", ca->sched.failures)
				|| !add_more_files(c, ca)){
			return false;
		}
	}
	return true;
}

static enum cm_rc write_tenant_json(const struct cm_store *store, const struct cm_tenant *t, struct cm_err *err)
{
	char path[PATH_MAX];
	cJSON *json, *arr;
	const struct cm_ca *ca;

	if(cm_fs_path(path, sizeof(path), err, "%s/tenants/%s/tenant.json", store->dir, t->name) != CM_OK){
		return CM_ERR_INVAL;
	}
	json = cJSON_CreateObject();
	if(json == NULL
			|| !cJSON_AddStringToObject(json, "name", t->name)
			|| !cJSON_AddStringToObject(json, "orgId", t->org_id)
			|| !cJSON_AddStringToObject(json, "policy", cm_policy_name(t->policy))
			|| !cJSON_AddStringToObject(json, "revocation", cm_revocation_name(t->revocation))
			|| !cJSON_AddNumberToObject(json, "generation", (double)t->generation)
			|| !cm_json_add_time(json, "created", t->created)
			|| !add_strlist(json, "hostnames", &t->hostnames)
			|| !add_strlist(json, "publishPatterns", &t->publish)
			|| !add_strlist(json, "subscribePatterns", &t->subscribe)
			|| (arr = cJSON_AddArrayToObject(json, "cas")) == NULL){
		goto nomem;
	}
	if(!add_server_certs(json, t) || !add_blocks(json, t)){
		goto nomem;
	}
	if(t->enroll){
		cJSON *e = cm_enroll_to_json(t->enroll);
		if(e == NULL || !cJSON_AddItemToObject(json, "enrollment", e)){
			cJSON_Delete(e);
			goto nomem;
		}
	}
	for(ca = t->cas; ca; ca = ca->next){
		if(!add_ca(arr, ca)){
			goto nomem;
		}
	}
	return write_json_done(path, json, true, err);
nomem:
	return write_json_done(path, json, false, err);
}

/* A CRL of entry ca not yet on disk, under a name of its own (file): the
 * old file stays in force until tenant.json names the new one. */
static enum cm_rc write_crl_file(const struct cm_store *store, const struct cm_tenant *t, const struct cm_ca *ca, bool dirty,
		const struct cm_crl *crl, char file[CM_CRL_FILE_SIZE], struct cm_err *err)
{
	char path[PATH_MAX];
	enum cm_rc rc;

	if(!dirty || crl == NULL || crl->der == NULL){
		return CM_OK;
	}
	rc = cm_fs_path(path, sizeof(path), err, "%s/tenants/%s/crls", store->dir, t->name);
	if(rc == CM_OK){
		rc = cm_fs_mkdir(path, 0700, err);
	}
	if(rc == CM_OK){
		cm_store_crl_file_name(ca->id, file, 96);
		rc = cm_fs_path(path, sizeof(path), err, "%s/tenants/%s/crls/%s", store->dir, t->name, file);
	}
	if(rc == CM_OK){
		rc = cm_fs_write_atomic(path, crl->der, crl->der_len, 0600, err);
	}
	return rc;
}

/* Writes the files of a tenant: the CA certificates first (a new one only
 * when absent: they are named by their content), then tenant.json, whose
 * rename commits the change. */
enum cm_rc write_tenant(const struct cm_store *store, struct cm_tenant *t, struct cm_err *err)
{
	char path[PATH_MAX];
	struct cm_ca *ca;
	enum cm_rc rc;

	if(cm_fs_path(path, sizeof(path), err, "%s/tenants/%s", store->dir, t->name) != CM_OK){
		return CM_ERR_INVAL;
	}
	rc = cm_fs_mkdir(path, 0700, err);
	if(rc == CM_OK){
		rc = cm_fs_path(path, sizeof(path), err, "%s/tenants/%s/cas", store->dir, t->name);
	}
	if(rc == CM_OK){
		rc = cm_fs_mkdir(path, 0700, err);
	}
	for(ca = t->cas; rc == CM_OK && ca; ca = ca->next){
		struct stat st;
		char *pem = NULL;
		size_t len = 0;

		rc = cm_fs_path(path, sizeof(path), err, "%s/tenants/%s/cas/%s.pem", store->dir, t->name, ca->id);
		if(rc != CM_OK || stat(path, &st) == 0){
			continue;
		}
		rc = cm_pki_chain_to_pem(ca->cert, NULL, &pem, &len, err);
		if(rc == CM_OK){
			rc = cm_fs_write_atomic(path, pem, len, 0600, err);
		}
		free(pem);
	}
	for(ca = t->cas; rc == CM_OK && ca; ca = ca->next){
		rc = write_crl_file(store, t, ca, ca->crl_dirty, ca->crl, ca->crl_file, err);
		for(int i = 0; rc == CM_OK && ca->more_file && i < CM_CA_MORE_CRLS; i++){
			rc = write_crl_file(store, t, ca, ca->more_dirty[i], ca->more[i], ca->more_file[i], err);
		}
	}
	if(rc == CM_OK){
		rc = write_tenant_json(store, t, err);
	}
	return rc;
}

static bool names_crl_file(const struct cm_ca *ca, const char *file)
{
	if(ca == NULL){
		return false;
	}
	if(!strcmp(ca->crl_file, file)){
		return true;
	}
	for(int i = 0; i < CM_CA_MORE_CRLS; i++){
		if(ca->more[i] && !strcmp(ca->more_file[i], file)){
			return true;
		}
	}
	return false;
}

/* Unlinks the CRL files of ca that keep (NULL: none) does not name. */
static void unlink_crl_files(const struct cm_store *store, const char *tenant, const struct cm_ca *ca, const struct cm_ca *keep)
{
	char path[PATH_MAX];

	for(int i = 0; i <= CM_CA_MORE_CRLS; i++){
		const char *file = i == 0 ? ca->crl_file : ca->more[i - 1] ? ca->more_file[i - 1] : "";
		if(file[0] && !names_crl_file(keep, file)
				&& cm_fs_path(path, sizeof(path), NULL, "%s/tenants/%s/crls/%s", store->dir, tenant, file) == CM_OK){
			(void)unlink(path);
		}
	}
}

/* Removes the files of old's trust list that t (the committed tenant, or
 * NULL when it was deleted) no longer names: dropped CAs, replaced CRLs.
 * Runs after the commit; a file left behind is harmless. */
void remove_unnamed_files(const struct cm_store *store, const struct cm_tenant *old, const struct cm_tenant *t)
{
	const struct cm_ca *ca, *now;
	char path[PATH_MAX];
	struct ca_index x;

	ca_index_build(&x, t);
	for(ca = old ? old->cas : NULL; ca; ca = ca->next){
		now = ca_index_find(&x, ca->id);
		if(now == NULL && cm_fs_path(path, sizeof(path), NULL, "%s/tenants/%s/cas/%s.pem", store->dir, old->name, ca->id) == CM_OK){
			(void)unlink(path);
		}
		unlink_crl_files(store, old->name, ca, now);
	}
	free(x.v);
}

/* Undoes what a failed write_tenant of t wrote next to old (NULL: t was
 * new): CA and CRL files old does not name, and the directories it
 * made. */
void write_tenant_undo(const struct cm_store *store, const struct cm_tenant *old, const struct cm_tenant *t)
{
	const struct cm_ca *ca, *was;
	char path[PATH_MAX];
	struct ca_index x;

	ca_index_build(&x, old);
	for(ca = t->cas; ca; ca = ca->next){
		was = ca_index_find(&x, ca->id);
		if(was == NULL && cm_fs_path(path, sizeof(path), NULL, "%s/tenants/%s/cas/%s.pem", store->dir, t->name, ca->id) == CM_OK){
			(void)unlink(path);
		}
		unlink_crl_files(store, t->name, ca, was);
	}
	free(x.v);
	/* crls/ is made on demand: gone again unless it holds a CRL. */
	if(cm_fs_path(path, sizeof(path), NULL, "%s/tenants/%s/crls", store->dir, t->name) == CM_OK){
		(void)rmdir(path);
	}
	if(old == NULL){
		static const char *const dirs[] = {"cas", ""};
		for(size_t i = 0; i < sizeof(dirs) / sizeof(dirs[0]); i++){
			if(cm_fs_path(path, sizeof(path), NULL, "%s/tenants/%s/%s", store->dir, t->name, dirs[i]) == CM_OK){
				(void)rmdir(path);
			}
		}
	}
}
