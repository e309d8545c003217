/* The store as a whole: memory, loading and opening (creating a fresh
 * store, migrating an old one, encrypting keys at rest). */
#define _GNU_SOURCE
#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cjson/cJSON.h>

#include "fsutil.h"
#include "json.h"
#include "log.h"
#include "store.h"
#include "store-int.h"

void cm_store_free(struct cm_store **pstore)
{
	struct cm_store *store;
	struct cm_server_cert *cert, *next;
	int i;

	if(pstore == NULL || *pstore == NULL){
		return;
	}
	store = *pstore;
	cm_store_sync(store);
	for(i = 0; i < CM_SLOT_COUNT; i++){
		struct cm_csr *csr, *cnext;
		cm_server_cert_free(&store->secret[i]);
		for(cert = store->slots[i].certs; cert; cert = next){
			next = cert->next;
			cm_server_cert_free(&cert);
		}
		for(csr = store->slots[i].csrs; csr; csr = cnext){
			cnext = csr->next;
			cm_csr_free(&csr);
		}
	}
	{
		struct cm_tenant *t, *tmp;
		struct cm_sni_entry *e, *etmp;
		HASH_ITER(hh, store->sni, e, etmp){
			HASH_DEL(store->sni, e);
			free(e->host);
			free(e);
		}
		HASH_CLEAR(hh_org, store->orgs);
		names_free(&store->names);
		HASH_ITER(hh, store->tenants, t, tmp){
			HASH_DEL(store->tenants, t);
			cm_tenant_free(&t);
		}
	}
	X509_free(store->admin_ca);
	cm_server_cert_free(&store->placeholder);
	if(store->key_passphrase){
		OPENSSL_cleanse(store->key_passphrase, strlen(store->key_passphrase));
		free(store->key_passphrase);
	}
	free(store->dir);
	free(store);
	*pstore = NULL;
}

const struct cm_server_cert *cm_store_slot_default(const struct cm_store *store, enum cm_slot_id slot)
{
	return store->slots[slot].def;
}

uint64_t cm_store_generation(const struct cm_store *store)
{
	return store->generation;
}

X509 *cm_store_get0_admin_ca(const struct cm_store *store)
{
	return store->admin_ca;
}

size_t cm_store_tenant_count(const struct cm_store *store)
{
	return HASH_COUNT(store->tenants);
}

const struct cm_tenant *cm_store_first_tenant(const struct cm_store *store)
{
	return store->tenants;
}

const struct cm_tenant *cm_store_next_tenant(const struct cm_tenant *t)
{
	return t->hh.next;
}

const struct cm_server_cert *cm_store_slot_certs(const struct cm_store *store, enum cm_slot_id slot)
{
	return store->slots[slot].certs;
}

const struct cm_csr *cm_store_slot_csrs(const struct cm_store *store, enum cm_slot_id slot)
{
	return store->slots[slot].csrs;
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

enum cm_rc cm_store_load(const char *dir, struct cm_store **out, struct cm_err *err)
{
	return cm_store_load_ex(dir, NULL, out, err);
}

enum cm_rc cm_store_load_ex(const char *dir, const char *pass, struct cm_store **out, struct cm_err *err)
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
		rc = load_slot(dir, (enum cm_slot_id)i, &store->slots[i], pass, err);
		if(rc != CM_OK){
			cm_store_free(&store);
			return rc;
		}
		if(store->slots[i].generation > store->generation){
			store->generation = store->slots[i].generation;
		}
	}
	if(schema >= 2){
		rc = load_admin(store, err);
		if(rc == CM_OK){
			/* Borrowed while loading: the issuing CAs' keys are in the
			 * tenants' records. */
			store->key_passphrase = (char *)pass;
			rc = load_tenants(store, err);
			store->key_passphrase = NULL;
		}
		if(rc != CM_OK){
			cm_store_free(&store);
			return rc;
		}
	}
	*out = store;
	return CM_OK;
}

void bump_generation(struct cm_store *store, uint64_t gen)
{
	store->generation = gen;
	store->meta_dirty = true;
}

/* The commit of each change already happened: store.json only caches the
 * highest generation, and loading takes the maximum over the slots and
 * tenants anyway. So it is written once for many changes (a request of
 * a thousand commands wrote it a thousand times), and a crash before
 * this loses nothing. */
void cm_store_sync(struct cm_store *store)
{
	struct cm_err err;

	if(store == NULL || !store->meta_dirty){
		return;
	}
	if(write_store_json(store, &err) != CM_OK){
		/* Tried again on every tick: said once, not ten times a second. */
		if(!store->meta_warned){
			cm_log(CM_LOG_WARNING, "cannot update store.json (%s); the changes themselves are saved", err.msg);
			store->meta_warned = true;
		}
		return;
	}
	if(store->meta_warned){
		cm_log(CM_LOG_NOTICE, "store.json is up to date again");
		store->meta_warned = false;
	}
	store->meta_dirty = false;
}

/* Builds and writes a fresh store. store.json goes last: until it exists
 * the directory counts as not yet created, and a crash before it means the
 * next start creates the store again. */
static enum cm_rc store_create(const char *dir, const char *hostname, const char *pass, struct cm_store **out, struct cm_err *err)
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
	store->key_passphrase = (char *)pass; /* borrowed while creating */
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
			rc = write_cert_files(path, slot->def, store->key_passphrase, err);
		}
		if(rc == CM_OK){
			rc = write_slot_json(store, (enum cm_slot_id)i, err);
		}
	}
	if(rc == CM_OK){
		rc = create_admin(dir, hostname, pass, err);
	}
	if(rc == CM_OK){
		rc = create_default_tenant(dir, err);
	}
	if(rc == CM_OK){
		rc = write_store_json(store, err);
	}
	store->key_passphrase = NULL;
	cm_store_free(&store);
	if(rc != CM_OK){
		return rc;
	}
	/* Read back what was written: one loading path for every start. */
	return cm_store_load_ex(dir, pass, out, err);
}

/* A store written without a passphrase holds the admin CA's key plain:
 * encrypt it in place. An encrypted one, or none, is left alone. */
static enum cm_rc encrypt_admin_key(const struct cm_store *store, const char *pass, struct cm_err *err)
{
	char path[PATH_MAX];
	char *text = NULL, *pem = NULL;
	size_t len = 0, pem_len = 0;
	EVP_PKEY *key = NULL;
	enum cm_rc rc;

	if(cm_fs_path(path, sizeof(path), err, "%s/admin/ca.key", store->dir) != CM_OK){
		return CM_ERR_INVAL;
	}
	if(access(path, F_OK) != 0){
		return CM_OK;
	}
	rc = cm_fs_read_file(path, CM_STORE_MAX_FILE, &text, &len, err);
	if(rc != CM_OK || strstr(text, "-----BEGIN ENCRYPTED PRIVATE KEY-----")){
		cm_pki_free_secret(text, len);
		return rc;
	}
	rc = cm_pki_parse_key_pem(text, len, &key, err);
	cm_pki_free_secret(text, len);
	if(rc == CM_OK){
		rc = cm_pki_key_to_pem_encrypted(key, pass, &pem, &pem_len, err);
	}
	if(rc == CM_OK){
		rc = cm_fs_write_atomic(path, pem, pem_len, 0600, err);
	}
	cm_pki_free_secret(pem, pem_len);
	EVP_PKEY_free(key);
	if(rc != CM_OK){
		return in_file(err, rc, path);
	}
	cm_log(CM_LOG_NOTICE, "encrypted the admin CA's key at rest (%s)", path);
	return CM_OK;
}

/* Keys encrypted at rest from now on: the store remembers the passphrase,
 * (re)writes every slot key encrypted (a store written without one is
 * converted), and makes the placeholder the listener files will hold. */
static enum cm_rc encrypt_at_rest(struct cm_store *store, const char *pass, struct cm_err *err)
{
	static const struct cm_keyspec p256 = {CM_KEY_EC, 0, "P-256", false};
	const char *names[1] = {"certmgr-placeholder"};
	EVP_PKEY *key = NULL;
	X509 *cert = NULL;
	char base[PATH_MAX];
	enum cm_rc rc;
	int i;

	store->key_passphrase = strdup(pass);
	if(store->key_passphrase == NULL){
		return cm_err_set(err, CM_ERR_NOMEM, "out of memory");
	}
	for(i = 0; i < CM_SLOT_COUNT; i++){
		struct cm_server_cert *c;
		for(c = store->slots[i].certs; c; c = c->next){
			rc = cm_fs_path(base, sizeof(base), err, "%s/slots/%s/%s", store->dir, cm_slot_name((enum cm_slot_id)i), c->id);
			if(rc == CM_OK){
				rc = write_cert_files(base, c, pass, err);
			}
			if(rc != CM_OK){
				return rc;
			}
		}
	}
	rc = encrypt_admin_key(store, pass, err);
	if(rc == CM_OK){
		rc = cm_pki_generate_key(&p256, &key, err);
	}
	if(rc == CM_OK){
		rc = cm_pki_make_self_signed(key, "certmgr placeholder", names, 1, 825, &cert, err);
	}
	if(rc == CM_OK){
		rc = cm_server_cert_new(cert, NULL, key, "placeholder", false, &store->placeholder, err);
	}
	X509_free(cert);
	EVP_PKEY_free(key);
	return rc;
}

enum cm_rc cm_store_open(const char *dir, const char *hostname, struct cm_store **out, bool *created, struct cm_err *err)
{
	return cm_store_open_ex(dir, hostname, NULL, out, created, err);
}

/* dir exists (made 0700 if it did not) and is a directory this user may
 * write in. */
static enum cm_rc store_dir_ready(const char *dir, struct cm_err *err)
{
	struct stat st;

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
	return CM_OK;
}

/* Loads the existing store in dir, migrated first when an older certmgr
 * wrote it. */
static enum cm_rc load_current(const char *dir, const char *hostname, const char *pass, struct cm_store **out, struct cm_err *err)
{
	enum cm_rc rc;

	rc = cm_store_load_ex(dir, pass, out, err);
	if(rc != CM_OK){
		return rc;
	}
	if((*out)->schema < CM_STORE_SCHEMA){
		/* Validated as it is; now bring it forward. */
		int from = (*out)->schema;
		rc = migrate_1_to_2(*out, hostname, err);
		cm_store_free(out);
		if(rc != CM_OK){
			return rc;
		}
		rc = cm_store_load_ex(dir, pass, out, err);
		if(rc != CM_OK){
			return rc;
		}
		cm_log(CM_LOG_NOTICE, "migrated store %s from schema %d to %d (backup in %s/backups)", dir, from, CM_STORE_SCHEMA, dir);
	}
	return CM_OK;
}

enum cm_rc cm_store_open_ex(const char *dir, const char *hostname, const char *pass, struct cm_store **out, bool *created, struct cm_err *err)
{
	char path[PATH_MAX];
	struct stat st;
	enum cm_rc rc;

	*out = NULL;
	*created = false;
	if(dir == NULL || dir[0] != '/'){
		return cm_err_set(err, CM_ERR_INVAL, "the store directory must be an absolute path");
	}
	rc = store_dir_ready(dir, err);
	if(rc != CM_OK){
		return rc;
	}
	if(cm_fs_path(path, sizeof(path), err, "%s/store.json", dir) != CM_OK){
		return CM_ERR_INVAL;
	}
	if(lstat(path, &st) != 0 && errno == ENOENT){
		rc = store_create(dir, hostname, pass, out, err);
		if(rc != CM_OK){
			return rc;
		}
		*created = true;
	}else{
		rc = load_current(dir, hostname, pass, out, err);
		if(rc != CM_OK){
			return rc;
		}
	}
	if(pass){
		rc = encrypt_at_rest(*out, pass, err);
		if(rc != CM_OK){
			cm_store_free(out);
			return rc;
		}
	}
	rc = cm_store_write_listener_files(*out, err);
	if(rc != CM_OK){
		cm_store_free(out);
	}
	return rc;
}
