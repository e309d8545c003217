/* Writing the store's files: JSON, certificate and key pairs, the
 * slots' metadata, the listener files. */
#define _GNU_SOURCE
#include <limits.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "fsutil.h"
#include "json.h"
#include "store.h"
#include "store-int.h"

enum cm_rc write_json(const char *path, const cJSON *json, struct cm_err *err)
{
	char *text = cJSON_Print(json);
	enum cm_rc rc;

	if(text == NULL){
		return cm_err_set(err, CM_ERR_NOMEM, "out of memory");
	}
	/* The loader reads no file over the limit: a larger one written would
	 * leave a store that does not load. */
	if(strlen(text) > CM_STORE_MAX_FILE){
		free(text);
		return cm_err_set(err, CM_ERR_INVAL, "refused: %s would be over the store's limit of %d bytes per file", path, CM_STORE_MAX_FILE);
	}
	rc = cm_fs_write_atomic(path, text, strlen(text), 0600, err);
	free(text);
	return rc;
}

/* The end of a JSON file's writing: json is written to path when ok (it
 * was built completely), and freed either way. */
enum cm_rc write_json_done(const char *path, cJSON *json, bool ok, struct cm_err *err)
{
	enum cm_rc rc = ok ? write_json(path, json, err) : cm_err_set(err, CM_ERR_NOMEM, "out of memory");

	cJSON_Delete(json);
	return rc;
}

enum cm_rc write_slot_json(const struct cm_store *store, enum cm_slot_id slot_id, struct cm_err *err)
{
	return write_slot_view(store, slot_id, &store->slots[slot_id], err);
}

enum cm_rc write_store_json(const struct cm_store *store, struct cm_err *err)
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

enum cm_rc write_slot_view(const struct cm_store *store, enum cm_slot_id slot_id, const struct cm_slot *slot, struct cm_err *err)
{
	const struct cm_server_cert *cert;
	char path[PATH_MAX];
	cJSON *json, *arr, *entry;

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
	if(slot->csrs){
		const struct cm_csr *csr;
		if((arr = cJSON_AddArrayToObject(json, "csrs")) == NULL){
			goto nomem;
		}
		for(csr = slot->csrs; csr; csr = csr->next){
			entry = cJSON_CreateObject();
			if(entry == NULL || !cJSON_AddItemToArray(arr, entry)){
				cJSON_Delete(entry);
				goto nomem;
			}
			if(!cJSON_AddStringToObject(entry, "id", csr->id) || !cm_json_add_time(entry, "created", csr->created)
					|| !cJSON_AddBoolToObject(entry, "reusedKey", csr->reused_key)){
				goto nomem;
			}
		}
	}
	return write_json_done(path, json, true, err);
nomem:
	return write_json_done(path, json, false, err);
}

/* Writes <base>.crt and <base>.key (0600) for cert, skipping a file that
 * already holds exactly that content. */
enum cm_rc write_cert_files(const char *base, const struct cm_server_cert *cert, const char *pass, struct cm_err *err)
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
	rc = pass ? cm_pki_key_to_pem_encrypted(cert->key, pass, &pem, &len, err) : cm_pki_key_to_pem(cert->key, &pem, &len, err);
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
			/* With keys encrypted at rest, the broker's files hold a
			 * throwaway placeholder: every handshake is served from the
			 * store by the hook anyway. */
			rc = write_cert_files(base, store->key_passphrase ? store->placeholder : store->slots[i].def, NULL, err);
		}
	}
	return rc;
}

/* A new built-in certificate for the host. */
enum cm_rc make_builtin(const char *hostname, struct cm_server_cert **out, struct cm_err *err)
{
	static const struct cm_keyspec p256 = {CM_KEY_EC, 0, "P-256"};
	const char *names[2] = {hostname, "localhost"};
	struct cm_server_cert *cert;
	enum cm_rc rc;

	*out = NULL;
	cert = calloc(1, sizeof(*cert));
	if(cert == NULL || (cert->description = strdup("built-in self-signed certificate")) == NULL
			|| (cert->extra = sk_X509_new_null()) == NULL){
		cm_server_cert_free(&cert);
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
		cm_server_cert_free(&cert);
		return rc;
	}
	cert->builtin = true;
	cert->added = time(NULL);
	*out = cert;
	return CM_OK;
}

/* <dir>/<base>.pem and <base>.key (0600, encrypted with pass unless NULL). */
enum cm_rc write_pem_pair(const char *dir, const char *base, X509 *cert, EVP_PKEY *key, const char *pass, struct cm_err *err)
{
	char path[PATH_MAX];
	char *pem = NULL;
	size_t len = 0;
	enum cm_rc rc;

	rc = cm_pki_chain_to_pem(cert, NULL, &pem, &len, err);
	if(rc == CM_OK){
		rc = cm_fs_path(path, sizeof(path), err, "%s/%s.pem", dir, base);
	}
	if(rc == CM_OK){
		rc = cm_fs_write_atomic(path, pem, len, 0644, err);
	}
	free(pem);
	pem = NULL;
	if(rc == CM_OK){
		rc = pass ? cm_pki_key_to_pem_encrypted(key, pass, &pem, &len, err) : cm_pki_key_to_pem(key, &pem, &len, err);
	}
	if(rc == CM_OK){
		rc = cm_fs_path(path, sizeof(path), err, "%s/%s.key", dir, base);
	}
	if(rc == CM_OK){
		rc = cm_fs_write_atomic(path, pem, len, 0600, err);
	}
	cm_pki_free_secret(pem, len);
	return rc;
}
