/* Loading the slots: read-only, everything validated. */
#define _GNU_SOURCE
#include <limits.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "fsutil.h"
#include "json.h"
#include "store.h"
#include "store-int.h"

/* Prefixes err with the file's name, keeping the reason. */
enum cm_rc in_file(struct cm_err *err, enum cm_rc rc, const char *path)
{
	char reason[sizeof(err->msg)];

	if(err){
		memcpy(reason, err->msg, sizeof(reason));
		cm_err_set(err, rc, "store file %s: %s", path, reason);
	}
	return rc;
}

enum cm_rc read_json(const char *path, cJSON **out, struct cm_err *err)
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

/* A private key file of the store (encrypted with pass, or plain). */
static enum cm_rc read_key(const char *path, const char *pass, EVP_PKEY **key, struct cm_err *err)
{
	char *text = NULL;
	size_t len = 0;
	enum cm_rc rc;

	rc = cm_fs_read_file(path, CM_STORE_MAX_FILE, &text, &len, err);
	if(rc == CM_OK){
		rc = cm_pki_parse_key_any(text, len, pass, key, err);
		cm_pki_free_secret(text, len);
	}
	return rc;
}

static enum cm_rc load_server_cert_files(const char *slotdir, struct cm_server_cert *cert, const char *pass, struct cm_err *err)
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
	rc = read_key(path, pass, &cert->key, err);
	if(rc == CM_OK && !cm_pki_key_matches(cert->leaf, cert->key)){
		rc = cm_err_set(err, CM_ERR_CORRUPT, "the key does not match certificate %s", cert->id);
	}
	if(rc != CM_OK){
		return in_file(err, CM_ERR_CORRUPT, path);
	}
	return CM_OK;
}

/* Parses one entry of slot.json's "certificates" into a new cm_server_cert,
 * then loads its files. */
static enum cm_rc load_server_cert(const char *slotdir, const cJSON *entry, struct cm_server_cert **out, const char *pass, struct cm_err *err)
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
	rc = load_server_cert_files(slotdir, cert, pass, err);
	if(rc != CM_OK){
		cm_server_cert_free(&cert);
		return rc;
	}
	*out = cert;
	return CM_OK;
}

static enum cm_rc load_csr(const char *slotdir, const cJSON *entry, struct cm_csr **out, const char *pass, struct cm_err *err)
{
	char path[PATH_MAX], id[CM_ID_LEN + 1];
	const char *cid = NULL;
	char *text = NULL;
	size_t len = 0;
	struct cm_csr *csr;
	enum cm_rc rc;

	*out = NULL;
	csr = calloc(1, sizeof(*csr));
	if(csr == NULL){
		return cm_err_set(err, CM_ERR_NOMEM, "out of memory");
	}
	if(!cJSON_IsObject(entry) || cm_json_get_string(entry, "id", true, &cid, err) != CM_OK || !cm_pki_id_valid(cid)
			|| cm_json_get_time(entry, "created", true, &csr->created, err) != CM_OK
			|| cm_json_get_bool(entry, "reusedKey", false, &csr->reused_key, err) != CM_OK){
		free(csr);
		return cm_err_set(err, CM_ERR_CORRUPT, "a CSR entry is malformed");
	}
	memcpy(csr->id, cid, sizeof(csr->id));
	rc = cm_fs_path(path, sizeof(path), err, "%s/csrs/%s.csr", slotdir, csr->id);
	if(rc == CM_OK){
		rc = cm_fs_read_file(path, CM_STORE_MAX_FILE, &text, &len, err);
	}
	if(rc == CM_OK){
		rc = cm_pki_parse_csr_pem(text, len, &csr->req, err);
		free(text);
	}
	if(rc == CM_OK && (cm_pki_csr_id(csr->req, id, err) != CM_OK || strcmp(id, csr->id))){
		rc = cm_err_set(err, CM_ERR_CORRUPT, "the CSR's fingerprint is not its id");
	}
	if(rc != CM_OK){
		cm_csr_free(&csr);
		return in_file(err, CM_ERR_CORRUPT, path);
	}
	rc = cm_fs_path(path, sizeof(path), err, "%s/csrs/%s.key", slotdir, csr->id);
	if(rc == CM_OK){
		rc = read_key(path, pass, &csr->key, err);
	}
	if(rc == CM_OK && EVP_PKEY_eq(X509_REQ_get0_pubkey(csr->req), csr->key) != 1){
		rc = cm_err_set(err, CM_ERR_CORRUPT, "the key does not match CSR %s", csr->id);
	}
	if(rc != CM_OK){
		cm_csr_free(&csr);
		return in_file(err, CM_ERR_CORRUPT, path);
	}
	*out = csr;
	return CM_OK;
}

/* Errors from an entry's own files already name them; others are
 * prefixed with slot.json's name. */
static enum cm_rc entry_failed(struct cm_err *err, enum cm_rc rc, const char *path)
{
	if(err && strncmp(err->msg, "store file ", 11)){
		in_file(err, rc, path);
	}
	return CM_ERR_CORRUPT;
}

/* slot.json's "certificates" (at path) into slot->certs, counting the
 * built-in ones into *builtins; slot->def is the one named def. */
static enum cm_rc load_slot_certs(const char *slotdir, const char *path, const cJSON *certs, const char *def,
		struct cm_slot *slot, int *builtins, const char *pass, struct cm_err *err)
{
	const cJSON *entry;
	struct cm_server_cert *cert, *other, **tail = &slot->certs;
	enum cm_rc rc;

	cJSON_ArrayForEach(entry, certs){
		rc = load_server_cert(slotdir, entry, &cert, pass, err);
		if(rc != CM_OK){
			return entry_failed(err, rc, path);
		}
		*tail = cert;
		tail = &cert->next;
		if(cert->builtin){
			(*builtins)++;
		}
		if(!strcmp(cert->id, def)){
			slot->def = cert;
		}
	}
	for(cert = slot->certs; cert; cert = cert->next){
		for(other = cert->next; other; other = other->next){
			if(!strcmp(cert->id, other->id)){
				cm_err_set(err, CM_ERR_CORRUPT, "certificate %s is listed twice", cert->id);
				return in_file(err, CM_ERR_CORRUPT, path);
			}
		}
	}
	return CM_OK;
}

/* slot.json's "csrs" (optional) into slot->csrs. */
static enum cm_rc load_slot_csrs(const char *slotdir, const char *path, const cJSON *json, struct cm_slot *slot,
		const char *pass, struct cm_err *err)
{
	const cJSON *csrs = NULL, *entry;
	struct cm_csr **tail = &slot->csrs;
	enum cm_rc rc;

	if(cm_json_get_array(json, "csrs", false, &csrs, err) != CM_OK){
		return in_file(err, CM_ERR_CORRUPT, path);
	}
	cJSON_ArrayForEach(entry, csrs){
		struct cm_csr *csr = NULL;
		rc = load_csr(slotdir, entry, &csr, pass, err);
		if(rc != CM_OK){
			return entry_failed(err, rc, path);
		}
		*tail = csr;
		tail = &csr->next;
	}
	return CM_OK;
}

enum cm_rc load_slot(const char *dir, enum cm_slot_id slot_id, struct cm_slot *slot, const char *pass, struct cm_err *err)
{
	char slotdir[PATH_MAX];
	char path[PATH_MAX];
	cJSON *json = NULL;
	const cJSON *certs = NULL;
	const char *def = NULL;
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
	rc = load_slot_certs(slotdir, path, certs, def, slot, &builtins, pass, err);
	if(rc == CM_OK){
		rc = load_slot_csrs(slotdir, path, json, slot, pass, err);
	}
	if(rc != CM_OK){
		goto out;
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
