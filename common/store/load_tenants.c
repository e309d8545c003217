/* Loading the tenants and the admin CA: read-only, everything validated. */
#define _GNU_SOURCE
#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cjson/cJSON.h>
#include <dirent.h>
#include <openssl/rand.h>

#include "blocks.h"
#include "enroll.h"
#include "fsutil.h"
#include "identity.h"
#include "topic.h"
#include "json.h"
#include "log.h"
#include "store.h"
#include "store-int.h"

static enum cm_rc json_strlist(const cJSON *obj, const char *name, struct cm_strlist *out, struct cm_err *err)
{
	const cJSON *arr = NULL, *item;
	const char **v;
	size_t n = 0;
	enum cm_rc rc;

	rc = cm_json_get_array(obj, name, true, &arr, err);
	if(rc != CM_OK){
		return rc;
	}
	v = calloc((size_t)cJSON_GetArraySize(arr) + 1, sizeof(char *));
	if(v == NULL){
		return cm_err_set(err, CM_ERR_NOMEM, "out of memory");
	}
	cJSON_ArrayForEach(item, arr){
		if(!cJSON_IsString(item)){
			free(v);
			return cm_err_set(err, CM_ERR_INVAL, "'%s' must hold strings", name);
		}
		v[n++] = item->valuestring;
	}
	rc = cm_strlist_set(out, v, n);
	free(v);
	return rc == CM_OK ? CM_OK : cm_err_set(err, rc, "out of memory");
}

void cm_store_crl_file_name(const char *ca_id, char *buf, size_t len)
{
	unsigned char r[8];
	uint64_t v = 0;

	if(RAND_bytes(r, sizeof(r)) == 1){
		memcpy(&v, r, sizeof(v));
	}else{
		v = (uint64_t)time(NULL) ^ ((uint64_t)getpid() << 32);
	}
	snprintf(buf, len, "%s-%016" PRIx64 ".crl", ca_id, v);
}

bool cm_store_crl_file_valid(const char *ca_id, const char *name)
{
	size_t n = strlen(ca_id), i;

	if(strncmp(name, ca_id, n)){
		return false;
	}
	name += n;
	if(!strcmp(name, ".crl")){
		return true;
	}
	if(name[0] != '-' || strlen(name) != 1 + 16 + 4 || strcmp(name + 17, ".crl")){
		return false;
	}
	for(i = 1; i <= 16; i++){
		if(!isxdigit((unsigned char)name[i])){
			return false;
		}
	}
	return true;
}

/* One CRL file of entry ca, into *out. */
static enum cm_rc load_crl_file(const char *tdir, struct cm_ca *ca, const char *file, struct cm_crl **out, struct cm_err *err)
{
	char path[PATH_MAX];
	char *text = NULL;
	size_t len = 0;
	enum cm_rc rc;

	if(cm_fs_path(path, sizeof(path), err, "%s/crls/%s", tdir, file) != CM_OK){
		return CM_ERR_INVAL;
	}
	rc = cm_fs_read_file(path, CM_STORE_MAX_CRL, &text, &len, err);
	if(rc == CM_OK){
		/* Accepted once: loaded without the time checks, so that a broker
		 * restarted without network still enforces what it knew. */
		rc = cm_crl_load((unsigned char *)text, len, CM_STORE_MAX_CRL, ca->cert, 0, out, err);
		free(text);
		cm_crl_drop_der(*out); /* the file is the copy */
	}
	return rc == CM_OK ? CM_OK : in_file(err, CM_ERR_CORRUPT, path);
}

/* "moreFiles": the entry's CRLs of other scopes. */
static enum cm_rc load_more_crls(const char *tdir, const cJSON *crl, struct cm_ca *ca, struct cm_err *err)
{
	const cJSON *more = NULL, *f;
	int i = 0;
	enum cm_rc rc = cm_json_get_array(crl, "moreFiles", false, &more, err);

	cJSON_ArrayForEach(f, more){
		if(rc != CM_OK){
			break;
		}
		if(i >= CM_CA_MORE_CRLS || !cJSON_IsString(f) || !cm_store_crl_file_valid(ca->id, f->valuestring)){
			return cm_err_set(err, CM_ERR_CORRUPT, "CA %s: malformed 'crl.moreFiles'", ca->id);
		}
		if(!cm_ca_more_files(ca)){
			return cm_err_set(err, CM_ERR_NOMEM, "out of memory");
		}
		snprintf(ca->more_file[i], sizeof(ca->more_file[i]), "%s", f->valuestring);
		rc = load_crl_file(tdir, ca, ca->more_file[i], &ca->more[i], err);
		i++;
	}
	return rc == CM_OK ? CM_OK : CM_ERR_CORRUPT;
}

/* The "crl" object of a trust-list entry, and the CRL file it names. */
static enum cm_rc load_ca_crl(const char *tdir, const cJSON *entry, struct cm_ca *ca, struct cm_err *err)
{
	const cJSON *crl = cJSON_GetObjectItemCaseSensitive(entry, "crl");
	const char *url = NULL, *learned = NULL, *source = "", *error = "", *stale = "fail-closed", *file = NULL;
	int64_t failures = 0;
	enum cm_rc rc;

	if(crl == NULL){
		return CM_OK;
	}
	if(!cJSON_IsObject(crl)
			|| cm_json_get_string(crl, "url", false, &url, err) != CM_OK
			|| cm_json_get_string(crl, "learnedUrl", false, &learned, err) != CM_OK
			|| cm_json_get_string(crl, "source", false, &source, err) != CM_OK
			|| cm_json_get_string(crl, "lastError", false, &error, err) != CM_OK
			|| cm_json_get_time(crl, "lastAttempt", false, &ca->sched.attempt, err) != CM_OK
			|| cm_json_get_time(crl, "lastSuccess", false, &ca->sched.success, err) != CM_OK
			|| cm_json_get_time(crl, "nextAttempt", false, &ca->sched.next_attempt, err) != CM_OK
			|| cm_json_get_int(crl, "failures", false, 0, 1000000, &failures, err) != CM_OK
			|| cm_json_get_string(crl, "stalePolicy", false, &stale, err) != CM_OK
			|| (strcmp(stale, "fail-closed") && strcmp(stale, "fail-open"))){
		return cm_err_set(err, CM_ERR_CORRUPT, "CA %s: malformed 'crl'", ca->id);
	}
	ca->stale_fail_open = !strcmp(stale, "fail-open");
	ca->sched.failures = (int)failures;
	if((url && (ca->crl_url = strdup(url)) == NULL) || (learned && (ca->crl_learned_url = strdup(learned)) == NULL)){
		return cm_err_set(err, CM_ERR_NOMEM, "out of memory");
	}
	snprintf(ca->crl_source, sizeof(ca->crl_source), "%s", source);
	snprintf(ca->sched.error, sizeof(ca->sched.error), "%s", error);
	if(ca->crl_source[0] == '\0'){
		return CM_OK;
	}
	/* Stores written before CRL files had names of their own: <id>.crl. */
	snprintf(ca->crl_file, sizeof(ca->crl_file), "%s.crl", ca->id);
	if(cm_json_get_string(crl, "file", false, &file, err) != CM_OK || (file && !cm_store_crl_file_valid(ca->id, file))){
		return cm_err_set(err, CM_ERR_CORRUPT, "CA %s: malformed 'crl.file'", ca->id);
	}
	if(file){
		snprintf(ca->crl_file, sizeof(ca->crl_file), "%s", file);
	}
	rc = load_crl_file(tdir, ca, ca->crl_file, &ca->crl, err);
	if(rc == CM_OK){
		rc = load_more_crls(tdir, crl, ca, err);
	}
	return rc;
}

/* cas/<id>.pem of a trust-list entry: exactly one certificate, whose
 * fingerprint is the entry's id. */
static enum cm_rc load_ca_cert(const char *tdir, struct cm_ca *ca, struct cm_err *err)
{
	char path[PATH_MAX];
	char id[CM_ID_LEN + 1];
	char *text = NULL;
	size_t len = 0;
	X509 *leaf = NULL;
	STACK_OF(X509) *extra = NULL;
	enum cm_rc rc;

	if(cm_fs_path(path, sizeof(path), err, "%s/cas/%s.pem", tdir, ca->id) != CM_OK){
		return CM_ERR_INVAL;
	}
	rc = cm_fs_read_file(path, CM_STORE_MAX_FILE, &text, &len, err);
	if(rc == CM_OK){
		rc = cm_pki_parse_chain_pem(text, len, &leaf, &extra, err);
		free(text);
	}
	if(rc == CM_OK && sk_X509_num(extra) != 0){
		rc = cm_err_set(err, CM_ERR_CORRUPT, "holds more than one certificate");
	}
	sk_X509_pop_free(extra, X509_free);
	if(rc == CM_OK){
		rc = cm_pki_cert_id(leaf, id, err);
	}
	if(rc == CM_OK && strcmp(id, ca->id)){
		rc = cm_err_set(err, CM_ERR_CORRUPT, "the certificate's fingerprint is not its id");
	}
	if(rc != CM_OK){
		X509_free(leaf);
		return in_file(err, CM_ERR_CORRUPT, path);
	}
	ca->cert = leaf;
	return CM_OK;
}

static enum cm_rc load_ca(const char *tdir, const cJSON *entry, struct cm_ca **out, struct cm_err *err)
{
	const char *cid = NULL, *desc = "", *role = "trust", *purpose = "devices";
	struct cm_ca *ca;
	enum cm_rc rc;

	*out = NULL;
	ca = calloc(1, sizeof(*ca));
	if(ca == NULL){
		return cm_err_set(err, CM_ERR_NOMEM, "out of memory");
	}
	if(!cJSON_IsObject(entry)
			|| cm_json_get_string(entry, "id", true, &cid, err) != CM_OK
			|| cm_json_get_string(entry, "description", false, &desc, err) != CM_OK
			|| cm_json_get_bool(entry, "active", true, &ca->active, err) != CM_OK
			|| cm_json_get_bool(entry, "pinned", false, &ca->pinned, err) != CM_OK
			|| cm_json_get_string(entry, "role", false, &role, err) != CM_OK
			|| cm_json_get_time(entry, "added", true, &ca->added, err) != CM_OK
			|| cm_json_get_string(entry, "purpose", false, &purpose, err) != CM_OK
			|| (strcmp(purpose, "devices") && strcmp(purpose, "claim"))
			|| (strcmp(role, "trust") && strcmp(role, "issuer"))){
		free(ca);
		return cm_err_set(err, CM_ERR_CORRUPT, "a CA entry is malformed: %s", err ? err->msg : "");
	}
	ca->issuer_only = !strcmp(role, "issuer");
	ca->claim = !strcmp(purpose, "claim");
	if(!cm_pki_id_valid(cid)){
		free(ca);
		return cm_err_set(err, CM_ERR_CORRUPT, "'%s' is not a certificate id", cid);
	}
	memcpy(ca->id, cid, sizeof(ca->id));
	ca->description = strdup(desc);
	if(ca->description == NULL){
		free(ca);
		return cm_err_set(err, CM_ERR_NOMEM, "out of memory");
	}
	rc = load_ca_cert(tdir, ca, err);
	if(rc != CM_OK){
		free(ca->description);
		free(ca);
		return rc;
	}
	rc = load_ca_crl(tdir, entry, ca, err);
	if(rc != CM_OK){
		cm_ca_free(&ca);
		return rc;
	}
	*out = ca;
	return CM_OK;
}

/* The names a tenant holds: its orgId, host names (already normalized)
 * and topic patterns. */
static enum cm_rc check_tenant_names(const struct cm_tenant *t, const char *org, struct cm_err *err)
{
	size_t i;

	if(!cm_identity_part_valid(org)){
		return cm_err_set(err, CM_ERR_CORRUPT, "invalid orgId '%s'", org);
	}
	for(i = 0; i < t->hostnames.n; i++){
		char norm[CM_HOSTNAME_MAX + 1];
		if(cm_hostname_normalize(t->hostnames.v[i], norm, err) != CM_OK || strcmp(norm, t->hostnames.v[i])){
			return cm_err_set(err, CM_ERR_CORRUPT, "invalid host name '%s'", t->hostnames.v[i]);
		}
	}
	for(i = 0; i < t->publish.n + t->subscribe.n; i++){
		const char *pat = i < t->publish.n ? t->publish.v[i] : t->subscribe.v[i - t->publish.n];
		if(cm_topic_pattern_valid(pat, err) != CM_OK){
			return CM_ERR_CORRUPT;
		}
	}
	return CM_OK;
}

/* tenant.json's "serverCertificates": slot name to certificate id. */
static enum cm_rc load_server_cert_refs(const cJSON *json, struct cm_tenant *t, struct cm_err *err)
{
	const cJSON *sc = cJSON_GetObjectItemCaseSensitive(json, "serverCertificates"), *item;

	if(sc && !cJSON_IsObject(sc)){
		return cm_err_set(err, CM_ERR_CORRUPT, "'serverCertificates' must be an object");
	}
	cJSON_ArrayForEach(item, sc){
		int slot = cm_slot_parse(item->string);
		if(slot < 0 || !cJSON_IsString(item) || !cm_pki_id_valid(item->valuestring)){
			return cm_err_set(err, CM_ERR_CORRUPT, "'serverCertificates' names an unknown slot or a bad id");
		}
		if(!cm_tenant_set_server_cert(t, (enum cm_slot_id)slot, item->valuestring)){
			return cm_err_set(err, CM_ERR_NOMEM, "out of memory");
		}
	}
	return CM_OK;
}

/* One list of tenant.json's "blocked" (absent: none); keys are device
 * ids, or certificate ids when certs. */
static enum cm_rc load_blocklist(const cJSON *blocked, const char *name, bool certs, struct cm_blocklist *l, struct cm_err *err)
{
	const cJSON *arr = NULL, *e;

	if(cm_json_get_array(blocked, name, false, &arr, err) != CM_OK){
		return CM_ERR_CORRUPT;
	}
	if(cJSON_GetArraySize(arr) > CM_BLOCKS_MAX){
		return cm_err_set(err, CM_ERR_CORRUPT, "'blocked.%s' holds more than %d entries", name, CM_BLOCKS_MAX);
	}
	cJSON_ArrayForEach(e, arr){
		const char *key = NULL, *reason = "", *by = "";
		time_t at = 0;

		if(!cJSON_IsObject(e)
				|| cm_json_get_string(e, "id", true, &key, err) != CM_OK
				|| cm_json_get_string(e, "reason", false, &reason, err) != CM_OK
				|| cm_json_get_string(e, "by", false, &by, err) != CM_OK
				|| cm_json_get_time(e, "at", true, &at, err) != CM_OK
				|| !(certs ? cm_pki_id_valid(key) : cm_block_device_id_valid(key))
				|| strlen(reason) > CM_BLOCK_REASON_MAX || strlen(by) > CM_BLOCK_KEY_MAX){
			return cm_err_set(err, CM_ERR_CORRUPT, "an entry of 'blocked.%s' is malformed", name);
		}
		/* Appended, then sorted once: the order of the file is not trusted. */
		struct cm_block *grown = realloc(l->v, (l->n + 1) * sizeof(*l->v));
		if(grown == NULL){
			return cm_err_set(err, CM_ERR_NOMEM, "out of memory");
		}
		l->v = grown;
		l->v[l->n].key = strdup(key);
		l->v[l->n].reason = strdup(reason);
		l->v[l->n].by = strdup(by);
		l->v[l->n].at = at;
		l->n++;
		if(l->v[l->n - 1].key == NULL || l->v[l->n - 1].reason == NULL || l->v[l->n - 1].by == NULL){
			return cm_err_set(err, CM_ERR_NOMEM, "out of memory");
		}
	}
	return cm_blocks_sort_unique(l, err);
}

static enum cm_rc load_blocks(const cJSON *json, struct cm_tenant *t, struct cm_err *err)
{
	const cJSON *blocked = cJSON_GetObjectItemCaseSensitive(json, "blocked");
	enum cm_rc rc;

	if(blocked == NULL){
		return CM_OK;
	}
	if(!cJSON_IsObject(blocked)){
		return cm_err_set(err, CM_ERR_CORRUPT, "'blocked' must be an object");
	}
	rc = load_blocklist(blocked, "devices", false, &t->blocked_devices, err);
	return rc == CM_OK ? load_blocklist(blocked, "certificates", true, &t->blocked_certs, err) : rc;
}

/* Every field of tenant.json but the CAs into t (the tenant of directory
 * name); *cas: the "cas" array. */
static enum cm_rc load_tenant_fields(const cJSON *json, const char *name, struct cm_tenant *t, const cJSON **cas, struct cm_err *err)
{
	const char *jname = NULL, *org = NULL, *policy = NULL, *revocation = "when-available";
	int64_t gen = 0;
	int pol;
	enum cm_rc rc;

	if(cm_json_get_string(json, "name", true, &jname, err) != CM_OK
			|| cm_json_get_string(json, "orgId", true, &org, err) != CM_OK
			|| cm_json_get_string(json, "policy", true, &policy, err) != CM_OK
			|| cm_json_get_string(json, "revocation", false, &revocation, err) != CM_OK
			|| cm_json_get_int(json, "generation", true, 0, INT64_MAX, &gen, err) != CM_OK
			|| cm_json_get_time(json, "created", true, &t->created, err) != CM_OK
			|| json_strlist(json, "hostnames", &t->hostnames, err) != CM_OK
			|| json_strlist(json, "publishPatterns", &t->publish, err) != CM_OK
			|| json_strlist(json, "subscribePatterns", &t->subscribe, err) != CM_OK
			|| cm_json_get_array(json, "cas", true, cas, err) != CM_OK){
		return CM_ERR_CORRUPT;
	}
	if(strcmp(jname, name)){
		return cm_err_set(err, CM_ERR_CORRUPT, "names tenant '%s' but lives in directory '%s'", jname, name);
	}
	if((pol = cm_policy_parse(policy)) < 0){
		return cm_err_set(err, CM_ERR_CORRUPT, "unknown policy '%s'", policy);
	}
	if(cm_revocation_parse(revocation) < 0){
		return cm_err_set(err, CM_ERR_CORRUPT, "unknown revocation policy '%s'", revocation);
	}
	t->revocation = (enum cm_revocation)cm_revocation_parse(revocation);
	if((rc = check_tenant_names(t, org, err)) != CM_OK
			|| (rc = load_server_cert_refs(json, t, err)) != CM_OK
			|| (rc = load_blocks(json, t, err)) != CM_OK){
		return rc;
	}
	free(t->org_id);
	t->org_id = strdup(org);
	t->policy = (enum cm_policy)pol;
	t->generation = (uint64_t)gen;
	if(t->org_id == NULL){
		return cm_err_set(err, CM_ERR_NOMEM, "out of memory");
	}
	return CM_OK;
}

/* No CA listed twice in t's trust list. */
static enum cm_rc check_cas_once(const struct cm_tenant *t, struct cm_err *err)
{
	struct ca_index x;
	const char *twice;
	enum cm_rc rc = CM_OK;

	ca_index_build(&x, t);
	twice = ca_index_duplicate(&x);
	if(twice){
		rc = cm_err_set(err, CM_ERR_CORRUPT, "CA %s is listed twice", twice);
	}
	free(x.v);
	return rc;
}

/* tenant.json's "enrollment": its issuing CA must be one of t's CAs, and
 * its key that CA's. */
static enum cm_rc load_enrollment(const cJSON *json, const char *pass, struct cm_tenant *t, struct cm_err *err)
{
	const cJSON *o = cJSON_GetObjectItemCaseSensitive(json, "enrollment");
	const struct cm_ca *ca;
	enum cm_rc rc;

	if(o == NULL){
		return CM_OK;
	}
	rc = cm_enroll_from_json(o, pass, &t->enroll, err);
	if(rc != CM_OK || t->enroll->ca_id[0] == '\0'){
		return rc;
	}
	ca = cm_enroll_issuing_ca(t);
	if(ca == NULL || ca->issuer_only || ca->pinned || !cm_pki_key_matches(ca->cert, t->enroll->ca_key)){
		return cm_err_set(err, CM_ERR_CORRUPT, "'enrollment': the issuing CA %s is not in the trust list or its key is not the CA's",
				t->enroll->ca_id);
	}
	return CM_OK;
}

enum cm_rc load_tenant(const char *dir, const char *name, const char *pass, struct cm_tenant **out, struct cm_err *err)
{
	char tdir[PATH_MAX], path[PATH_MAX];
	cJSON *json = NULL;
	const cJSON *cas = NULL, *entry;
	struct cm_tenant *t = NULL;
	struct cm_ca **tail;
	enum cm_rc rc;

	*out = NULL;
	if(cm_fs_path(tdir, sizeof(tdir), err, "%s/tenants/%s", dir, name) != CM_OK
			|| cm_fs_path(path, sizeof(path), err, "%s/tenant.json", tdir) != CM_OK){
		return CM_ERR_INVAL;
	}
	rc = read_json(path, &json, err);
	if(rc != CM_OK){
		return rc == CM_ERR_NOMEM ? rc : CM_ERR_CORRUPT;
	}
	t = cm_tenant_new(name);
	if(t == NULL){
		cJSON_Delete(json);
		return cm_err_set(err, CM_ERR_NOMEM, "out of memory");
	}
	tail = &t->cas;
	rc = load_tenant_fields(json, name, t, &cas, err);
	if(rc != CM_OK){
		goto fail;
	}
	cJSON_ArrayForEach(entry, cas){
		struct cm_ca *ca;
		rc = load_ca(tdir, entry, &ca, err);
		if(rc != CM_OK){
			goto fail_named;
		}
		*tail = ca;
		tail = &ca->next;
	}
	rc = check_cas_once(t, err);
	if(rc == CM_OK){
		rc = load_enrollment(json, pass, t, err);
	}
	if(rc != CM_OK){
		goto fail;
	}
	cJSON_Delete(json);
	*out = t;
	return CM_OK;
fail:
	rc = in_file(err, rc == CM_ERR_NOMEM ? rc : CM_ERR_CORRUPT, path);
fail_named:
	cJSON_Delete(json);
	cm_tenant_free(&t);
	return rc == CM_ERR_NOMEM ? rc : CM_ERR_CORRUPT;
}

/* Loads tenants/<name> and checks it against the rest of the store: a
 * unique orgId, host names no other tenant has, a trust store that builds.
 * On success *list holds the SNI entries to commit. */
static enum cm_rc load_tenant_checked(const struct cm_store *store, const char *name, struct cm_tenant **out,
		struct cm_sni_entry **list, struct cm_err *err)
{
	char tjson[PATH_MAX];
	struct cm_tenant *t = NULL;
	enum cm_rc rc;

	*out = NULL;
	*list = NULL;
	if(cm_fs_path(tjson, sizeof(tjson), err, "%s/tenants/%s/tenant.json", store->dir, name) != CM_OK){
		return CM_ERR_INVAL;
	}
	rc = load_tenant(store->dir, name, store->key_passphrase, &t, err);
	if(rc != CM_OK){
		return rc;
	}
	if(check_unique_org(store, t, err) != CM_OK
			|| sni_prepare(store, t, list, err) != CM_OK
			|| build_trust(t, store->admin_ca, err) != CM_OK){
		sni_list_free(list);
		cm_tenant_free(&t);
		return in_file(err, CM_ERR_CORRUPT, tjson);
	}
	*out = t;
	return CM_OK;
}

enum cm_rc cm_store_check_tenant_dir(const struct cm_store *store, const char *name, struct cm_err *err)
{
	struct cm_tenant *t = NULL;
	struct cm_sni_entry *list = NULL;
	enum cm_rc rc;

	if(!cm_tenant_name_valid(name)){
		return cm_err_set(err, CM_ERR_INVAL, "invalid tenant name");
	}
	rc = load_tenant_checked(store, name, &t, &list, err);
	if(rc == CM_OK){
		sni_list_free(&list);
		cm_tenant_free(&t);
	}
	return rc;
}

/* What holds only of the tenants together: each one's server certificate
 * references resolve, and the default tenant exists. */
static enum cm_rc check_loaded(struct cm_store *store, struct cm_err *err)
{
	struct cm_tenant *t, *tmp;

	HASH_ITER(hh, store->tenants, t, tmp){
		if(check_server_refs(store, t, err) != CM_OK){
			return cm_err_set(err, CM_ERR_CORRUPT, "store %s: tenant %s: %s", store->dir, t->name, err->msg);
		}
	}
	if(cm_store_find_tenant(store, CM_DEFAULT_TENANT) == NULL){
		return cm_err_set(err, CM_ERR_CORRUPT, "store %s: the default tenant (tenants/default/tenant.json) is missing", store->dir);
	}
	return CM_OK;
}

enum cm_rc load_tenants(struct cm_store *store, struct cm_err *err)
{
	char path[PATH_MAX];
	struct dirent *d;
	DIR *dir;
	enum cm_rc rc = CM_OK;

	if(cm_fs_path(path, sizeof(path), err, "%s/tenants", store->dir) != CM_OK){
		return CM_ERR_INVAL;
	}
	dir = opendir(path);
	if(dir == NULL){
		return cm_err_set(err, CM_ERR_CORRUPT, "store %s: cannot read %s: %s", store->dir, path, strerror(errno));
	}
	while(rc == CM_OK && (d = readdir(dir)) != NULL){
		char tjson[PATH_MAX];
		struct cm_tenant *t = NULL;
		struct cm_sni_entry *list = NULL;
		struct stat st;

		if(!cm_tenant_name_valid(d->d_name)){
			continue; /* ".", "..", temporary files */
		}
		if(cm_fs_path(tjson, sizeof(tjson), err, "%s/%s/tenant.json", path, d->d_name) != CM_OK){
			rc = CM_ERR_INVAL;
			break;
		}
		/* A directory without tenant.json is what an interrupted create or
		 * delete leaves: no tenant. */
		if(lstat(tjson, &st) != 0 && errno == ENOENT){
			continue;
		}
		rc = load_tenant_checked(store, d->d_name, &t, &list, err);
		if(rc == CM_OK && (rc = names_reserve(store, t, err)) != CM_OK){
			sni_list_free(&list);
			cm_tenant_free(&t);
		}
		if(rc != CM_OK){
			break;
		}
		sni_commit(store, NULL, list);
		names_add(store, t);
		HASH_ADD_KEYPTR(hh, store->tenants, t->name, strlen(t->name), t);
		HASH_ADD_KEYPTR(hh_org, store->orgs, t->org_id, strlen(t->org_id), t);
		if(t->generation > store->generation){
			store->generation = t->generation;
		}
	}
	closedir(dir);
	return rc == CM_OK ? check_loaded(store, err) : rc;
}

enum cm_rc load_admin(struct cm_store *store, struct cm_err *err)
{
	char path[PATH_MAX];
	char *text = NULL;
	size_t len = 0;
	X509 *leaf = NULL;
	STACK_OF(X509) *extra = NULL;
	enum cm_rc rc;

	if(cm_fs_path(path, sizeof(path), err, "%s/admin/ca.pem", store->dir) != CM_OK){
		return CM_ERR_INVAL;
	}
	rc = cm_fs_read_file(path, CM_STORE_MAX_FILE, &text, &len, err);
	if(rc == CM_OK){
		rc = cm_pki_parse_chain_pem(text, len, &leaf, &extra, err);
		free(text);
	}
	if(rc == CM_OK && (sk_X509_num(extra) != 0 || cm_pki_check_ca(leaf, time(NULL), err) != CM_OK)){
		rc = CM_ERR_CORRUPT;
		if(sk_X509_num(extra) != 0){
			cm_err_set(err, rc, "holds more than one certificate");
		}
	}
	sk_X509_pop_free(extra, X509_free);
	if(rc != CM_OK){
		X509_free(leaf);
		return in_file(err, CM_ERR_CORRUPT, path);
	}
	store->admin_ca = leaf;
	return CM_OK;
}
