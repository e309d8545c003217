#define _GNU_SOURCE
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cjson/cJSON.h>

#include "fsutil.h"
#include "json.h"
#include "log.h"
#include "store.h"

/* The built-in certificate's validity: regenerate before it runs out. */
#define CM_BUILTIN_DAYS 825

static const char *const slot_names[CM_SLOT_COUNT] = {"mqtt", "websockets", "bridge"};

const char *cm_slot_name(enum cm_slot_id slot)
{
	return (slot >= 0 && slot < CM_SLOT_COUNT) ? slot_names[slot] : "?";
}

int cm_slot_parse(const char *name)
{
	int i;

	for(i = 0; name && i < CM_SLOT_COUNT; i++){
		if(!strcmp(name, slot_names[i])){
			return i;
		}
	}
	return -1;
}

/* ===================================================================
 * Memory
 * =================================================================== */

static void server_cert_free(struct cm_server_cert **pcert)
{
	struct cm_server_cert *cert;

	if(pcert == NULL || *pcert == NULL){
		return;
	}
	cert = *pcert;
	free(cert->description);
	X509_free(cert->leaf);
	sk_X509_pop_free(cert->extra, X509_free);
	EVP_PKEY_free(cert->key);
	free(cert);
	*pcert = NULL;
}

void cm_store_free(struct cm_store **pstore)
{
	struct cm_store *store;
	struct cm_server_cert *cert, *next;
	int i;

	if(pstore == NULL || *pstore == NULL){
		return;
	}
	store = *pstore;
	for(i = 0; i < CM_SLOT_COUNT; i++){
		for(cert = store->slots[i].certs; cert; cert = next){
			next = cert->next;
			server_cert_free(&cert);
		}
	}
	free(store->dir);
	free(store);
	*pstore = NULL;
}

const struct cm_server_cert *cm_store_slot_default(const struct cm_store *store, enum cm_slot_id slot)
{
	return store->slots[slot].def;
}

static struct cm_store *store_new(const char *dir, struct cm_err *err)
{
	struct cm_store *store = calloc(1, sizeof(*store));

	if(store == NULL || (store->dir = strdup(dir)) == NULL){
		free(store);
		cm_err_set(err, CM_ERR_NOMEM, "out of memory");
		return NULL;
	}
	store->schema = CM_STORE_SCHEMA;
	return store;
}

/* ===================================================================
 * Loading: read-only, everything validated
 * =================================================================== */

/* Prefixes err with the file's name, keeping the reason. */
static enum cm_rc in_file(struct cm_err *err, enum cm_rc rc, const char *path)
{
	char reason[sizeof(err->msg)];

	if(err){
		memcpy(reason, err->msg, sizeof(reason));
		cm_err_set(err, rc, "store file %s: %s", path, reason);
	}
	return rc;
}

static enum cm_rc read_json(const char *path, cJSON **out, struct cm_err *err)
{
	char *text = NULL;
	size_t len;
	cJSON *json;
	enum cm_rc rc;

	*out = NULL;
	rc = cm_fs_read_file(path, CM_STORE_MAX_FILE, &text, &len, err);
	if(rc != CM_OK){
		return rc;
	}
	json = cJSON_ParseWithLength(text, len);
	free(text);
	if(json == NULL || !cJSON_IsObject(json)){
		cJSON_Delete(json);
		return cm_err_set(err, CM_ERR_CORRUPT, "store file %s: not a JSON object", path);
	}
	*out = json;
	return CM_OK;
}

static enum cm_rc load_server_cert_files(const char *slotdir, struct cm_server_cert *cert, struct cm_err *err)
{
	char path[PATH_MAX];
	char id[CM_ID_LEN + 1];
	char *text = NULL;
	size_t len = 0;
	enum cm_rc rc;

	if(cm_fs_path(path, sizeof(path), err, "%s/%s.crt", slotdir, cert->id) != CM_OK){
		return CM_ERR_INVAL;
	}
	rc = cm_fs_read_file(path, CM_STORE_MAX_FILE, &text, &len, err);
	if(rc == CM_OK){
		rc = cm_pki_parse_chain_pem(text, len, &cert->leaf, &cert->extra, err);
		free(text);
		text = NULL;
		if(rc == CM_OK){
			rc = cm_pki_cert_id(cert->leaf, id, err);
		}
		if(rc == CM_OK && strcmp(id, cert->id)){
			rc = cm_err_set(err, CM_ERR_CORRUPT, "the certificate's fingerprint is not its id");
		}
	}
	if(rc != CM_OK){
		return in_file(err, CM_ERR_CORRUPT, path);
	}

	if(cm_fs_path(path, sizeof(path), err, "%s/%s.key", slotdir, cert->id) != CM_OK){
		return CM_ERR_INVAL;
	}
	rc = cm_fs_read_file(path, CM_STORE_MAX_FILE, &text, &len, err);
	if(rc == CM_OK){
		rc = cm_pki_parse_key_pem(text, len, &cert->key, err);
		cm_pki_free_secret(text, len);
		if(rc == CM_OK && !cm_pki_key_matches(cert->leaf, cert->key)){
			rc = cm_err_set(err, CM_ERR_CORRUPT, "the key does not match certificate %s", cert->id);
		}
	}
	if(rc != CM_OK){
		return in_file(err, CM_ERR_CORRUPT, path);
	}
	return CM_OK;
}

/* Parses one entry of slot.json's "certificates" into a new cm_server_cert,
 * then loads its files. */
static enum cm_rc load_server_cert(const char *slotdir, const cJSON *entry, struct cm_server_cert **out, struct cm_err *err)
{
	struct cm_server_cert *cert;
	const char *id = NULL;
	const char *desc = "";
	bool builtin = false;
	time_t added = 0;
	enum cm_rc rc;

	*out = NULL;
	if(!cJSON_IsObject(entry)){
		return cm_err_set(err, CM_ERR_CORRUPT, "a certificate entry is not an object");
	}
	if((rc = cm_json_get_string(entry, "id", true, &id, err)) != CM_OK
			|| (rc = cm_json_get_string(entry, "description", false, &desc, err)) != CM_OK
			|| (rc = cm_json_get_bool(entry, "builtin", true, &builtin, err)) != CM_OK
			|| (rc = cm_json_get_time(entry, "added", true, &added, err)) != CM_OK){
		return CM_ERR_CORRUPT;
	}
	if(!cm_pki_id_valid(id)){
		return cm_err_set(err, CM_ERR_CORRUPT, "'%s' is not a certificate id", id);
	}
	cert = calloc(1, sizeof(*cert));
	if(cert == NULL || (cert->description = strdup(desc)) == NULL){
		free(cert);
		return cm_err_set(err, CM_ERR_NOMEM, "out of memory");
	}
	memcpy(cert->id, id, CM_ID_LEN + 1);
	cert->builtin = builtin;
	cert->added = added;
	rc = load_server_cert_files(slotdir, cert, err);
	if(rc != CM_OK){
		server_cert_free(&cert);
		return rc;
	}
	*out = cert;
	return CM_OK;
}

static enum cm_rc load_slot(const char *dir, enum cm_slot_id slot_id, struct cm_slot *slot, struct cm_err *err)
{
	char slotdir[PATH_MAX];
	char path[PATH_MAX];
	cJSON *json = NULL;
	const cJSON *certs = NULL;
	const cJSON *entry;
	const char *def = NULL;
	struct cm_server_cert *cert, **tail = &slot->certs;
	int64_t gen = 0;
	int builtins = 0;
	enum cm_rc rc;

	if(cm_fs_path(slotdir, sizeof(slotdir), err, "%s/slots/%s", dir, cm_slot_name(slot_id)) != CM_OK
			|| cm_fs_path(path, sizeof(path), err, "%s/slot.json", slotdir) != CM_OK){
		return CM_ERR_INVAL;
	}
	rc = read_json(path, &json, err);
	if(rc != CM_OK){
		return rc == CM_ERR_NOMEM ? rc : CM_ERR_CORRUPT;
	}
	if(cm_json_get_int(json, "generation", true, 0, INT64_MAX, &gen, err) != CM_OK
			|| cm_json_get_string(json, "default", true, &def, err) != CM_OK
			|| cm_json_get_array(json, "certificates", true, &certs, err) != CM_OK){
		rc = in_file(err, CM_ERR_CORRUPT, path);
		goto out;
	}
	slot->generation = (uint64_t)gen;
	cJSON_ArrayForEach(entry, certs){
		rc = load_server_cert(slotdir, entry, &cert, err);
		if(rc != CM_OK){
			/* Errors from the certificate's own files already name them. */
			if(err && strncmp(err->msg, "store file ", 11)){
				in_file(err, rc, path);
			}
			rc = CM_ERR_CORRUPT;
			goto out;
		}
		*tail = cert;
		tail = &cert->next;
		if(cert->builtin){
			builtins++;
		}
		if(!strcmp(cert->id, def)){
			slot->def = cert;
		}
	}
	for(cert = slot->certs; cert; cert = cert->next){
		struct cm_server_cert *other;
		for(other = cert->next; other; other = other->next){
			if(!strcmp(cert->id, other->id)){
				cm_err_set(err, CM_ERR_CORRUPT, "certificate %s is listed twice", cert->id);
				rc = in_file(err, CM_ERR_CORRUPT, path);
				goto out;
			}
		}
	}
	if(builtins != 1){
		cm_err_set(err, CM_ERR_CORRUPT, "the slot must hold exactly one built-in certificate, it holds %d", builtins);
		rc = in_file(err, CM_ERR_CORRUPT, path);
		goto out;
	}
	if(slot->def == NULL){
		cm_err_set(err, CM_ERR_CORRUPT, "the default certificate %s is not in the slot", def);
		rc = in_file(err, CM_ERR_CORRUPT, path);
		goto out;
	}
	rc = CM_OK;
out:
	cJSON_Delete(json);
	return rc;
}

enum cm_rc cm_store_load(const char *dir, struct cm_store **out, struct cm_err *err)
{
	char path[PATH_MAX];
	struct cm_store *store = NULL;
	cJSON *json = NULL;
	int64_t schema = 0, gen = 0;
	enum cm_rc rc;
	int i;

	*out = NULL;
	if(cm_fs_path(path, sizeof(path), err, "%s/store.json", dir) != CM_OK){
		return CM_ERR_INVAL;
	}
	rc = read_json(path, &json, err);
	if(rc != CM_OK){
		return rc == CM_ERR_NOMEM ? rc : CM_ERR_CORRUPT;
	}
	if(cm_json_get_int(json, "schema", true, 1, INT32_MAX, &schema, err) != CM_OK
			|| cm_json_get_int(json, "generation", true, 0, INT64_MAX, &gen, err) != CM_OK){
		cJSON_Delete(json);
		return in_file(err, CM_ERR_CORRUPT, path);
	}
	cJSON_Delete(json);
	if(schema > CM_STORE_SCHEMA){
		return cm_err_set(err, CM_ERR_NEWER, "store %s was written by a newer certmgr (schema %lld; this build reads up to %d): refusing to touch it",
				dir, (long long)schema, CM_STORE_SCHEMA);
	}
	store = store_new(dir, err);
	if(store == NULL){
		return CM_ERR_NOMEM;
	}
	store->schema = (int)schema;
	store->generation = (uint64_t)gen;
	for(i = 0; i < CM_SLOT_COUNT; i++){
		rc = load_slot(dir, (enum cm_slot_id)i, &store->slots[i], err);
		if(rc != CM_OK){
			cm_store_free(&store);
			return rc;
		}
		if(store->slots[i].generation > store->generation){
			store->generation = store->slots[i].generation;
		}
	}
	*out = store;
	return CM_OK;
}

/* ===================================================================
 * Writing
 * =================================================================== */

static enum cm_rc write_json(const char *path, const cJSON *json, struct cm_err *err)
{
	char *text = cJSON_Print(json);
	enum cm_rc rc;

	if(text == NULL){
		return cm_err_set(err, CM_ERR_NOMEM, "out of memory");
	}
	rc = cm_fs_write_atomic(path, text, strlen(text), 0600, err);
	free(text);
	return rc;
}

static enum cm_rc write_store_json(const struct cm_store *store, struct cm_err *err)
{
	char path[PATH_MAX];
	cJSON *json;
	enum cm_rc rc;

	if(cm_fs_path(path, sizeof(path), err, "%s/store.json", store->dir) != CM_OK){
		return CM_ERR_INVAL;
	}
	json = cJSON_CreateObject();
	if(json == NULL || !cJSON_AddNumberToObject(json, "schema", store->schema)
			|| !cJSON_AddNumberToObject(json, "generation", (double)store->generation)){
		cJSON_Delete(json);
		return cm_err_set(err, CM_ERR_NOMEM, "out of memory");
	}
	rc = write_json(path, json, err);
	cJSON_Delete(json);
	return rc;
}

static enum cm_rc write_slot_json(const struct cm_store *store, enum cm_slot_id slot_id, struct cm_err *err)
{
	const struct cm_slot *slot = &store->slots[slot_id];
	const struct cm_server_cert *cert;
	char path[PATH_MAX];
	cJSON *json, *arr, *entry;
	enum cm_rc rc;

	if(cm_fs_path(path, sizeof(path), err, "%s/slots/%s/slot.json", store->dir, cm_slot_name(slot_id)) != CM_OK){
		return CM_ERR_INVAL;
	}
	json = cJSON_CreateObject();
	if(json == NULL
			|| !cJSON_AddNumberToObject(json, "generation", (double)slot->generation)
			|| !cJSON_AddStringToObject(json, "default", slot->def->id)
			|| (arr = cJSON_AddArrayToObject(json, "certificates")) == NULL){
		goto nomem;
	}
	for(cert = slot->certs; cert; cert = cert->next){
		entry = cJSON_CreateObject();
		if(entry == NULL || !cJSON_AddItemToArray(arr, entry)){
			cJSON_Delete(entry);
			goto nomem;
		}
		if(!cJSON_AddStringToObject(entry, "id", cert->id)
				|| !cJSON_AddStringToObject(entry, "description", cert->description)
				|| !cJSON_AddBoolToObject(entry, "builtin", cert->builtin)
				|| !cm_json_add_time(entry, "added", cert->added)){
			goto nomem;
		}
	}
	rc = write_json(path, json, err);
	cJSON_Delete(json);
	return rc;
nomem:
	cJSON_Delete(json);
	return cm_err_set(err, CM_ERR_NOMEM, "out of memory");
}

/* Writes <base>.crt and <base>.key (0600) for cert, skipping a file that
 * already holds exactly that content. */
static enum cm_rc write_cert_files(const char *base, const struct cm_server_cert *cert, struct cm_err *err)
{
	char path[PATH_MAX];
	char *pem = NULL, *old = NULL;
	size_t len = 0, oldlen = 0;
	enum cm_rc rc;

	rc = cm_pki_chain_to_pem(cert->leaf, cert->extra, &pem, &len, err);
	if(rc == CM_OK){
		rc = cm_fs_path(path, sizeof(path), err, "%s.crt", base);
	}
	if(rc == CM_OK){
		if(cm_fs_read_file(path, CM_STORE_MAX_FILE, &old, &oldlen, NULL) != CM_OK
				|| oldlen != len || memcmp(old, pem, len)){
			rc = cm_fs_write_atomic(path, pem, len, 0644, err);
		}
		free(old);
		old = NULL;
	}
	free(pem);
	pem = NULL;
	if(rc != CM_OK){
		return rc;
	}
	rc = cm_pki_key_to_pem(cert->key, &pem, &len, err);
	if(rc == CM_OK){
		rc = cm_fs_path(path, sizeof(path), err, "%s.key", base);
	}
	if(rc == CM_OK){
		if(cm_fs_read_file(path, CM_STORE_MAX_FILE, &old, &oldlen, NULL) != CM_OK
				|| oldlen != len || memcmp(old, pem, len)){
			rc = cm_fs_write_atomic(path, pem, len, 0600, err);
		}
		cm_pki_free_secret(old, oldlen);
	}
	cm_pki_free_secret(pem, len);
	return rc;
}

enum cm_rc cm_store_write_listener_files(const struct cm_store *store, struct cm_err *err)
{
	char base[PATH_MAX];
	enum cm_rc rc;
	int i;

	if(cm_fs_path(base, sizeof(base), err, "%s/listener", store->dir) != CM_OK){
		return CM_ERR_INVAL;
	}
	rc = cm_fs_mkdir(base, 0700, err);
	for(i = 0; rc == CM_OK && i < CM_SLOT_COUNT; i++){
		rc = cm_fs_path(base, sizeof(base), err, "%s/listener/%s", store->dir, cm_slot_name((enum cm_slot_id)i));
		if(rc == CM_OK){
			rc = write_cert_files(base, store->slots[i].def, err);
		}
	}
	return rc;
}

/* A new built-in certificate for the host. */
static enum cm_rc make_builtin(const char *hostname, struct cm_server_cert **out, struct cm_err *err)
{
	static const struct cm_keyspec p256 = {CM_KEY_EC, 0, "P-256"};
	const char *names[2] = {hostname, "localhost"};
	struct cm_server_cert *cert;
	enum cm_rc rc;

	*out = NULL;
	cert = calloc(1, sizeof(*cert));
	if(cert == NULL || (cert->description = strdup("built-in self-signed certificate")) == NULL
			|| (cert->extra = sk_X509_new_null()) == NULL){
		server_cert_free(&cert);
		return cm_err_set(err, CM_ERR_NOMEM, "out of memory");
	}
	rc = cm_pki_generate_key(&p256, &cert->key, err);
	if(rc == CM_OK){
		rc = cm_pki_make_self_signed(cert->key, hostname, names, strcmp(hostname, "localhost") ? 2 : 1, CM_BUILTIN_DAYS, &cert->leaf, err);
	}
	if(rc == CM_OK){
		rc = cm_pki_cert_id(cert->leaf, cert->id, err);
	}
	if(rc != CM_OK){
		server_cert_free(&cert);
		return rc;
	}
	cert->builtin = true;
	cert->added = time(NULL);
	*out = cert;
	return CM_OK;
}

/* Builds and writes a fresh store. store.json goes last: until it exists
 * the directory counts as not yet created, and a crash before it means the
 * next start creates the store again. */
static enum cm_rc store_create(const char *dir, const char *hostname, struct cm_store **out, struct cm_err *err)
{
	char path[PATH_MAX];
	struct cm_store *store;
	enum cm_rc rc = CM_OK;
	int i;

	*out = NULL;
	store = store_new(dir, err);
	if(store == NULL){
		return CM_ERR_NOMEM;
	}
	store->generation = 1;
	if(cm_fs_path(path, sizeof(path), err, "%s/slots", dir) != CM_OK || cm_fs_mkdir(path, 0700, err) != CM_OK){
		rc = CM_ERR_IO;
	}
	for(i = 0; rc == CM_OK && i < CM_SLOT_COUNT; i++){
		struct cm_slot *slot = &store->slots[i];

		rc = make_builtin(hostname, &slot->certs, err);
		if(rc != CM_OK){
			break;
		}
		slot->def = slot->certs;
		slot->generation = 1;
		rc = cm_fs_path(path, sizeof(path), err, "%s/slots/%s", dir, cm_slot_name((enum cm_slot_id)i));
		if(rc == CM_OK){
			rc = cm_fs_mkdir(path, 0700, err);
		}
		if(rc == CM_OK){
			rc = cm_fs_path(path, sizeof(path), err, "%s/slots/%s/%s", dir, cm_slot_name((enum cm_slot_id)i), slot->def->id);
		}
		if(rc == CM_OK){
			rc = write_cert_files(path, slot->def, err);
		}
		if(rc == CM_OK){
			rc = write_slot_json(store, (enum cm_slot_id)i, err);
		}
	}
	if(rc == CM_OK){
		rc = write_store_json(store, err);
	}
	if(rc != CM_OK){
		cm_store_free(&store);
		return rc;
	}
	*out = store;
	return CM_OK;
}

enum cm_rc cm_store_open(const char *dir, const char *hostname, struct cm_store **out, bool *created, struct cm_err *err)
{
	char path[PATH_MAX];
	struct stat st;
	enum cm_rc rc;

	*out = NULL;
	*created = false;
	if(dir == NULL || dir[0] != '/'){
		return cm_err_set(err, CM_ERR_INVAL, "the store directory must be an absolute path");
	}
	if(stat(dir, &st) != 0){
		if(errno != ENOENT){
			return cm_err_set(err, CM_ERR_IO, "store directory %s: %s", dir, strerror(errno));
		}
		if(mkdir(dir, 0700) != 0){
			return cm_err_set(err, CM_ERR_IO, "cannot create store directory %s: %s", dir, strerror(errno));
		}
	}else if(!S_ISDIR(st.st_mode)){
		return cm_err_set(err, CM_ERR_IO, "store %s is not a directory", dir);
	}
	if(access(dir, R_OK | W_OK | X_OK) != 0){
		return cm_err_set(err, CM_ERR_IO, "store directory %s is not writable by this user (uid %ld): %s",
				dir, (long)geteuid(), strerror(errno));
	}
	if(cm_fs_path(path, sizeof(path), err, "%s/store.json", dir) != CM_OK){
		return CM_ERR_INVAL;
	}
	if(lstat(path, &st) != 0 && errno == ENOENT){
		rc = store_create(dir, hostname, out, err);
		if(rc != CM_OK){
			return rc;
		}
		*created = true;
	}else{
		rc = cm_store_load(dir, out, err);
		if(rc != CM_OK){
			return rc;
		}
	}
	rc = cm_store_write_listener_files(*out, err);
	if(rc != CM_OK){
		cm_store_free(out);
	}
	return rc;
}
