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
#include <openssl/err.h>
#include <openssl/rand.h>

#include "fsutil.h"
#include "identity.h"
#include "topic.h"
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

void cm_server_cert_free(struct cm_server_cert **pcert)
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

void cm_csr_free(struct cm_csr **pcsr)
{
	if(pcsr && *pcsr){
		X509_REQ_free((*pcsr)->req);
		EVP_PKEY_free((*pcsr)->key);
		free(*pcsr);
		*pcsr = NULL;
	}
}

static void names_free(struct cm_name_bucket **set);

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
		struct cm_csr *csr, *cnext;
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
		HASH_ITER(hh, store->tenants, t, tmp){
			HASH_DEL(store->tenants, t);
			cm_tenant_free(&t);
		}
		names_free(&store->names);
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
	rc = cm_fs_read_file(path, CM_STORE_MAX_FILE, &text, &len, err);
	if(rc == CM_OK){
		rc = cm_pki_parse_key_any(text, len, pass, &cert->key, err);
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
		rc = cm_fs_read_file(path, CM_STORE_MAX_FILE, &text, &len, err);
	}
	if(rc == CM_OK){
		rc = cm_pki_parse_key_any(text, len, pass, &csr->key, err);
		cm_pki_free_secret(text, len);
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

static enum cm_rc load_slot(const char *dir, enum cm_slot_id slot_id, struct cm_slot *slot, const char *pass, struct cm_err *err)
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
		rc = load_server_cert(slotdir, entry, &cert, pass, err);
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
	{
		const cJSON *csrs = NULL;
		struct cm_csr **ctail = &slot->csrs;
		if(cm_json_get_array(json, "csrs", false, &csrs, err) != CM_OK){
			rc = in_file(err, CM_ERR_CORRUPT, path);
			goto out;
		}
		cJSON_ArrayForEach(entry, csrs){
			struct cm_csr *csr = NULL;
			rc = load_csr(slotdir, entry, &csr, pass, err);
			if(rc != CM_OK){
				if(err && strncmp(err->msg, "store file ", 11)){
					in_file(err, rc, path);
				}
				rc = CM_ERR_CORRUPT;
				goto out;
			}
			*ctail = csr;
			ctail = &csr->next;
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

/* ===================================================================
 * Tenants and the admin CA: loading
 * =================================================================== */

/* The registered CAs (not pins, not known issuers), by subject, to find
 * which of them another one names as issuer. */
static int subject_cmp(const void *a, const void *b)
{
	return X509_NAME_cmp(X509_get_subject_name((*(const struct cm_ca *const *)a)->cert),
			X509_get_subject_name((*(const struct cm_ca *const *)b)->cert));
}

/* Is ca issued (by name, and key identifier where it names one) by
 * another registered CA of the sorted v? Then it is validated through
 * that one rather than trusted itself. Active or not: deactivating a
 * root must not turn the intermediates under it into anchors. */
static bool registered_issuer(const struct cm_ca **v, size_t n, const struct cm_ca *ca)
{
	const X509_NAME *want = X509_get_issuer_name(ca->cert);
	AUTHORITY_KEYID *akid = X509_get_ext_d2i(ca->cert, NID_authority_key_identifier, NULL, NULL);
	size_t lo = 0, hi = n;
	bool found = false;

	while(lo < hi){
		size_t mid = lo + (hi - lo) / 2;
		if(X509_NAME_cmp(X509_get_subject_name(v[mid]->cert), want) < 0){
			lo = mid + 1;
		}else{
			hi = mid;
		}
	}
	for(; !found && lo < n && X509_NAME_cmp(X509_get_subject_name(v[lo]->cert), want) == 0; lo++){
		found = v[lo] != ca && X509_cmp(v[lo]->cert, ca->cert) != 0 && (akid == NULL || X509_check_akid(v[lo]->cert, akid) == X509_V_OK);
	}
	AUTHORITY_KEYID_free(akid);
	ERR_clear_error();
	return found;
}

static int x509_sk_cmp(const X509 *const *a, const X509 *const *b)
{
	return X509_cmp(*a, *b);
}

static bool push_ref(STACK_OF(X509) *sk, X509 *x)
{
	if(!sk_X509_push(sk, x)){
		return false;
	}
	X509_up_ref(x);
	return true;
}

static bool push_crls(struct cm_tenant *t, const struct cm_ca *ca)
{
	for(int i = 0; i <= CM_CA_MORE_CRLS; i++){
		struct cm_crl *c = cm_ca_crl_at(ca, i);
		if(c == NULL || c->hollow == NULL){
			continue;
		}
		if(!sk_X509_CRL_push(t->crls, c->hollow)){
			return false;
		}
		X509_CRL_up_ref(c->hollow);
		if(c->next_update && (t->crls_next_update == 0 || c->next_update < t->crls_next_update)){
			t->crls_next_update = c->next_update;
		}
	}
	return true;
}

/* Sorts ca into its place: anchor, chain candidate, pin or refused. */
static bool place_ca(struct cm_tenant *t, X509_STORE *trust, const struct cm_ca **v, size_t n, const struct cm_ca *ca)
{
	if(!push_crls(t, ca)){
		return false;
	}
	if(ca->pinned){
		return !ca->active || push_ref(t->pins, ca->cert);
	}
	if(!ca->active){
		return ca->issuer_only || push_ref(t->inactive, ca->cert);
	}
	if(ca->issuer_only || registered_issuer(v, n, ca)){
		return push_ref(t->candidates, ca->cert);
	}
	{
		/* X509_STORE_add_cert re-sorts the store's objects to look for
		 * a duplicate on every call: O(n^2 log n). The ids of a tenant's
		 * entries are unique, so they go onto the object stack as they
		 * are and it is sorted once. */
		X509_OBJECT *o = X509_OBJECT_new();
		if(o == NULL || !X509_OBJECT_set1_X509(o, ca->cert) || !sk_X509_OBJECT_push(X509_STORE_get0_objects(trust), o)){
			X509_OBJECT_free(o);
			return false;
		}
	}
	return true;
}

/* What t's handshakes are verified with (RFC 5280 path validation, see
 * verdict.h): the anchors in an X509_STORE, the other CAs as chain
 * candidates, the pins apart (a pin is never an issuer), the CRLs. */
static enum cm_rc build_trust(struct cm_tenant *t, X509 *admin_ca, struct cm_err *err)
{
	X509_STORE *trust = X509_STORE_new();
	const struct cm_ca **v = NULL;
	const struct cm_ca *ca;
	size_t n = 0;
	bool ok;

	cm_tenant_drop_trust(t);
	for(ca = t->cas; ca; ca = ca->next){
		n++;
	}
	t->pins = sk_X509_new(x509_sk_cmp);
	t->inactive = sk_X509_new(x509_sk_cmp);
	t->candidates = sk_X509_new_null();
	t->crls = sk_X509_CRL_new_null();
	ok = trust && t->pins && t->inactive && t->candidates && t->crls && (n == 0 || (v = malloc(n * sizeof(*v))) != NULL);
	ERR_clear_error();
	if(ok){
		n = 0;
		for(ca = t->cas; ca; ca = ca->next){
			if(!ca->pinned && !ca->issuer_only){
				v[n++] = ca;
			}
		}
		qsort(v, n, sizeof(*v), subject_cmp);
	}
	for(ca = t->cas; ok && ca; ca = ca->next){
		ok = place_ca(t, trust, v, n, ca);
	}
	free(v);
	if(!ok){
		X509_STORE_free(trust);
		cm_tenant_drop_trust(t);
		ERR_clear_error();
		return cm_err_set(err, CM_ERR_NOMEM, "cannot build the trust store of tenant '%s'", t->name);
	}
	sk_X509_OBJECT_sort(X509_STORE_get0_objects(trust));
	sk_X509_sort(t->pins);
	sk_X509_sort(t->inactive);
	if(admin_ca && !X509_STORE_add_cert(trust, admin_ca)){
		/* The admin CA may also be a tenant's CA: a duplicate is fine. */
		ERR_clear_error();
	}
	/* A registered CA whose issuer is not registered is an anchor, also
	 * an intermediate one. */
	X509_STORE_set_flags(trust, X509_V_FLAG_PARTIAL_CHAIN);
	t->trust = trust;
	return CM_OK;
}

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
			|| cm_json_get_time(crl, "lastAttempt", false, &ca->crl_attempt, err) != CM_OK
			|| cm_json_get_time(crl, "lastSuccess", false, &ca->crl_success, err) != CM_OK
			|| cm_json_get_time(crl, "nextAttempt", false, &ca->crl_next_attempt, err) != CM_OK
			|| cm_json_get_int(crl, "failures", false, 0, 1000000, &failures, err) != CM_OK
			|| cm_json_get_string(crl, "stalePolicy", false, &stale, err) != CM_OK
			|| (strcmp(stale, "fail-closed") && strcmp(stale, "fail-open"))){
		return cm_err_set(err, CM_ERR_CORRUPT, "CA %s: malformed 'crl'", ca->id);
	}
	ca->stale_fail_open = !strcmp(stale, "fail-open");
	ca->crl_failures = (int)failures;
	if((url && (ca->crl_url = strdup(url)) == NULL) || (learned && (ca->crl_learned_url = strdup(learned)) == NULL)){
		return cm_err_set(err, CM_ERR_NOMEM, "out of memory");
	}
	snprintf(ca->crl_source, sizeof(ca->crl_source), "%s", source);
	snprintf(ca->crl_error, sizeof(ca->crl_error), "%s", error);
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

static enum cm_rc load_ca(const char *tdir, const cJSON *entry, struct cm_ca **out, struct cm_err *err)
{
	char path[PATH_MAX];
	char id[CM_ID_LEN + 1];
	const char *cid = NULL, *desc = "", *role = "trust";
	char *text = NULL;
	size_t len = 0;
	X509 *leaf = NULL;
	STACK_OF(X509) *extra = NULL;
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
			|| (strcmp(role, "trust") && strcmp(role, "issuer"))){
		free(ca);
		return cm_err_set(err, CM_ERR_CORRUPT, "a CA entry is malformed: %s", err ? err->msg : "");
	}
	ca->issuer_only = !strcmp(role, "issuer");
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
	if(cm_fs_path(path, sizeof(path), err, "%s/cas/%s.pem", tdir, ca->id) != CM_OK){
		ca->cert = NULL;
		free(ca->description);
		free(ca);
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
		free(ca->description);
		free(ca);
		return in_file(err, CM_ERR_CORRUPT, path);
	}
	ca->cert = leaf;
	rc = load_ca_crl(tdir, entry, ca, err);
	if(rc != CM_OK){
		cm_ca_free(&ca);
		return rc;
	}
	*out = ca;
	return CM_OK;
}

/* ===================================================================
 * A tenant's CAs by id, for walks that look up every entry of another
 * list: O(n log n) rather than O(n^2) for trust lists of thousands of
 * pinned certificates.
 * =================================================================== */

static int ca_sort_cmp(const void *a, const void *b)
{
	return strcmp((*(const struct cm_ca *const *)a)->id, (*(const struct cm_ca *const *)b)->id);
}

static int ca_key_cmp(const void *key, const void *elem)
{
	return strcmp(key, (*(const struct cm_ca *const *)elem)->id);
}

struct ca_index {
	const struct cm_tenant *t;
	const struct cm_ca **v; /* NULL: none, or memory was short (lookups walk) */
	size_t n;
};

static void ca_index_build(struct ca_index *x, const struct cm_tenant *t)
{
	const struct cm_ca *ca;
	size_t n = 0;

	x->t = t;
	x->v = NULL;
	x->n = 0;
	for(ca = t ? t->cas : NULL; ca; ca = ca->next){
		n++;
	}
	if(n == 0 || (x->v = malloc(n * sizeof(*x->v))) == NULL){
		return;
	}
	for(ca = t->cas; ca; ca = ca->next){
		x->v[x->n++] = ca;
	}
	qsort(x->v, x->n, sizeof(*x->v), ca_sort_cmp);
}

static const struct cm_ca *ca_index_find(const struct ca_index *x, const char *id)
{
	const struct cm_ca **hit;

	if(x->t == NULL){
		return NULL;
	}
	if(x->v == NULL){
		return cm_tenant_find_ca(x->t, id);
	}
	hit = bsearch(id, x->v, x->n, sizeof(*x->v), ca_key_cmp);
	return hit ? *hit : NULL;
}

/* The first id listed twice in t, or NULL. */
static const char *ca_index_duplicate(const struct ca_index *x)
{
	const struct cm_ca *ca, *other;

	if(x->v){
		for(size_t i = 1; i < x->n; i++){
			if(strcmp(x->v[i - 1]->id, x->v[i]->id) == 0){
				return x->v[i]->id;
			}
		}
		return NULL;
	}
	for(ca = x->t ? x->t->cas : NULL; ca; ca = ca->next){
		for(other = ca->next; other; other = other->next){
			if(strcmp(ca->id, other->id) == 0){
				return ca->id;
			}
		}
	}
	return NULL;
}

static enum cm_rc load_tenant(const char *dir, const char *name, struct cm_tenant **out, struct cm_err *err)
{
	char tdir[PATH_MAX], path[PATH_MAX];
	cJSON *json = NULL;
	const cJSON *cas = NULL, *entry;
	const char *jname = NULL, *org = NULL, *policy = NULL, *revocation = "when-available";
	struct cm_tenant *t = NULL;
	struct cm_ca **tail;
	int64_t gen = 0;
	int pol;
	size_t i;
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
	if(cm_json_get_string(json, "name", true, &jname, err) != CM_OK
			|| cm_json_get_string(json, "orgId", true, &org, err) != CM_OK
			|| cm_json_get_string(json, "policy", true, &policy, err) != CM_OK
			|| cm_json_get_string(json, "revocation", false, &revocation, err) != CM_OK
			|| cm_json_get_int(json, "generation", true, 0, INT64_MAX, &gen, err) != CM_OK
			|| cm_json_get_time(json, "created", true, &t->created, err) != CM_OK
			|| json_strlist(json, "hostnames", &t->hostnames, err) != CM_OK
			|| json_strlist(json, "publishPatterns", &t->publish, err) != CM_OK
			|| json_strlist(json, "subscribePatterns", &t->subscribe, err) != CM_OK
			|| cm_json_get_array(json, "cas", true, &cas, err) != CM_OK){
		rc = CM_ERR_CORRUPT;
		goto fail;
	}
	if(strcmp(jname, name)){
		rc = cm_err_set(err, CM_ERR_CORRUPT, "names tenant '%s' but lives in directory '%s'", jname, name);
		goto fail;
	}
	if((pol = cm_policy_parse(policy)) < 0){
		rc = cm_err_set(err, CM_ERR_CORRUPT, "unknown policy '%s'", policy);
		goto fail;
	}
	if(cm_revocation_parse(revocation) < 0){
		rc = cm_err_set(err, CM_ERR_CORRUPT, "unknown revocation policy '%s'", revocation);
		goto fail;
	}
	t->revocation = (enum cm_revocation)cm_revocation_parse(revocation);
	if(!cm_identity_part_valid(org)){
		rc = cm_err_set(err, CM_ERR_CORRUPT, "invalid orgId '%s'", org);
		goto fail;
	}
	for(i = 0; i < t->hostnames.n; i++){
		char norm[254];
		if(cm_hostname_normalize(t->hostnames.v[i], norm, err) != CM_OK || strcmp(norm, t->hostnames.v[i])){
			rc = cm_err_set(err, CM_ERR_CORRUPT, "invalid host name '%s'", t->hostnames.v[i]);
			goto fail;
		}
	}
	for(i = 0; i < t->publish.n + t->subscribe.n; i++){
		const char *pat = i < t->publish.n ? t->publish.v[i] : t->subscribe.v[i - t->publish.n];
		if(cm_topic_pattern_valid(pat, err) != CM_OK){
			rc = CM_ERR_CORRUPT;
			goto fail;
		}
	}
	{
		const cJSON *sc = cJSON_GetObjectItemCaseSensitive(json, "serverCertificates"), *item;
		if(sc && !cJSON_IsObject(sc)){
			rc = cm_err_set(err, CM_ERR_CORRUPT, "'serverCertificates' must be an object");
			goto fail;
		}
		cJSON_ArrayForEach(item, sc){
			int slot = cm_slot_parse(item->string);
			if(slot < 0 || !cJSON_IsString(item) || !cm_pki_id_valid(item->valuestring)){
				rc = cm_err_set(err, CM_ERR_CORRUPT, "'serverCertificates' names an unknown slot or a bad id");
				goto fail;
			}
			memcpy(t->server_cert[slot], item->valuestring, CM_ID_LEN + 1);
		}
	}
	free(t->org_id);
	t->org_id = strdup(org);
	t->policy = (enum cm_policy)pol;
	t->generation = (uint64_t)gen;
	if(t->org_id == NULL){
		rc = cm_err_set(err, CM_ERR_NOMEM, "out of memory");
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
	{
		struct ca_index x;
		const char *twice;
		ca_index_build(&x, t);
		twice = ca_index_duplicate(&x);
		if(twice){
			rc = cm_err_set(err, CM_ERR_CORRUPT, "CA %s is listed twice", twice);
		}
		free(x.v);
		if(twice){
			goto fail;
		}
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

static void names_free(struct cm_name_bucket **set)
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
static enum cm_rc names_reserve(struct cm_store *store, const struct cm_tenant *t, struct cm_err *err)
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

static void names_add(struct cm_store *store, const struct cm_tenant *t)
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
static void names_drop(struct cm_store *store, const struct cm_tenant *t)
{
	for(const struct cm_ca *ca = t ? t->cas : NULL; ca; ca = ca->next){
		unsigned long s = X509_subject_name_hash(ca->cert), i = X509_issuer_name_hash(ca->cert);

		names_drop_one(store, s, ca);
		if(i != s){
			names_drop_one(store, i, ca);
		}
	}
}

static void sni_list_free(struct cm_sni_entry **list)
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
static enum cm_rc sni_prepare(const struct cm_store *store, const struct cm_tenant *t, struct cm_sni_entry **list, struct cm_err *err)
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
static void sni_commit(struct cm_store *store, const struct cm_tenant *old, struct cm_sni_entry *list)
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

static enum cm_rc check_server_refs(const struct cm_store *store, const struct cm_tenant *t, struct cm_err *err)
{
	int i;

	for(i = 0; i < CM_SLOT_COUNT; i++){
		if(t->server_cert[i][0] && cm_store_find_server_cert(store, (enum cm_slot_id)i, t->server_cert[i]) == NULL){
			return cm_err_set(err, CM_ERR_INVAL, "no server certificate %s in slot %s", t->server_cert[i], cm_slot_name((enum cm_slot_id)i));
		}
	}
	return CM_OK;
}

struct cm_tenant *cm_store_tenant_for_org(const struct cm_store *store, const char *org, size_t len)
{
	struct cm_tenant *t = NULL;

	if(org){
		HASH_FIND(hh_org, store->orgs, org, len, t);
	}
	return t;
}

/* By the org index, not a walk over every tenant: it ran at each command
 * and cost seconds of a bulk registration. */
static enum cm_rc check_unique_org(const struct cm_store *store, const struct cm_tenant *t, struct cm_err *err)
{
	const struct cm_tenant *o = cm_store_tenant_for_org(store, t->org_id, strlen(t->org_id));

	if(o && strcmp(o->name, t->name)){
		return cm_err_set(err, CM_ERR_INVAL, "org id '%s' already belongs to tenant '%s'", t->org_id, o->name);
	}
	return CM_OK;
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
	rc = load_tenant(store->dir, name, &t, err);
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

static enum cm_rc load_tenants(struct cm_store *store, struct cm_err *err)
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
	if(rc == CM_OK){
		struct cm_tenant *t, *tmp;
		HASH_ITER(hh, store->tenants, t, tmp){
			if(check_server_refs(store, t, err) != CM_OK){
				rc = cm_err_set(err, CM_ERR_CORRUPT, "store %s: tenant %s: %s", store->dir, t->name, err->msg);
				break;
			}
		}
	}
	if(rc == CM_OK && cm_store_find_tenant(store, CM_DEFAULT_TENANT) == NULL){
		rc = cm_err_set(err, CM_ERR_CORRUPT, "store %s: the default tenant (tenants/default/tenant.json) is missing", store->dir);
	}
	return rc;
}

static enum cm_rc load_admin(struct cm_store *store, struct cm_err *err)
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

struct cm_tenant *cm_store_find_tenant(const struct cm_store *store, const char *name)
{
	struct cm_tenant *t = NULL;

	if(name){
		HASH_FIND_STR(store->tenants, name, t);
	}
	return t;
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

struct cm_tenant *cm_store_tenant_for_sni(const struct cm_store *store, const char *sni)
{
	struct cm_sni_entry *e = sni_lookup(store, sni);

	return e ? e->tenant : cm_store_find_tenant(store, CM_DEFAULT_TENANT);
}

bool cm_store_sni_known(const struct cm_store *store, const char *sni)
{
	return sni_lookup(store, sni) != NULL;
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
			rc = load_tenants(store, err);
		}
		if(rc != CM_OK){
			cm_store_free(&store);
			return rc;
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

static enum cm_rc write_slot_view(const struct cm_store *store, enum cm_slot_id slot_id, const struct cm_slot *slot, struct cm_err *err);

static enum cm_rc write_slot_json(const struct cm_store *store, enum cm_slot_id slot_id, struct cm_err *err)
{
	return write_slot_view(store, slot_id, &store->slots[slot_id], err);
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

static enum cm_rc write_slot_view(const struct cm_store *store, enum cm_slot_id slot_id, const struct cm_slot *slot, struct cm_err *err)
{
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
	rc = write_json(path, json, err);
	cJSON_Delete(json);
	return rc;
nomem:
	cJSON_Delete(json);
	return cm_err_set(err, CM_ERR_NOMEM, "out of memory");
}

/* Writes <base>.crt and <base>.key (0600) for cert, skipping a file that
 * already holds exactly that content. */
static enum cm_rc write_cert_files(const char *base, const struct cm_server_cert *cert, const char *pass, struct cm_err *err)
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

/* ===================================================================
 * Tenants and the admin CA: writing
 * =================================================================== */

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

static enum cm_rc write_tenant_json(const struct cm_store *store, const struct cm_tenant *t, struct cm_err *err)
{
	char path[PATH_MAX];
	cJSON *json, *arr;
	const struct cm_ca *ca;
	enum cm_rc rc;

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
	{
		cJSON *sc = NULL;
		int i;
		for(i = 0; i < CM_SLOT_COUNT; i++){
			if(t->server_cert[i][0]){
				if((sc == NULL && (sc = cJSON_AddObjectToObject(json, "serverCertificates")) == NULL)
						|| !cJSON_AddStringToObject(sc, cm_slot_name((enum cm_slot_id)i), t->server_cert[i])){
					goto nomem;
				}
			}
		}
	}
	for(ca = t->cas; ca; ca = ca->next){
		cJSON *e = cJSON_CreateObject();
		if(e == NULL || !cJSON_AddItemToArray(arr, e)){
			cJSON_Delete(e);
			goto nomem;
		}
		if(!cJSON_AddStringToObject(e, "id", ca->id)
				|| !cJSON_AddStringToObject(e, "description", ca->description)
				|| !cJSON_AddBoolToObject(e, "active", ca->active)
				|| !cJSON_AddBoolToObject(e, "pinned", ca->pinned)
				|| (ca->issuer_only && !cJSON_AddStringToObject(e, "role", "issuer"))
				|| !cm_json_add_time(e, "added", ca->added)){
			goto nomem;
		}
		if(ca->crl_url || ca->crl_learned_url || ca->crl_source[0] || ca->crl_attempt || ca->stale_fail_open){
			cJSON *c = cJSON_AddObjectToObject(e, "crl");
			if(c == NULL
					|| (ca->crl_url && !cJSON_AddStringToObject(c, "url", ca->crl_url))
					|| (ca->crl_learned_url && !cJSON_AddStringToObject(c, "learnedUrl", ca->crl_learned_url))
					|| !cJSON_AddStringToObject(c, "source", ca->crl ? ca->crl_source : "")
					|| (ca->crl && ca->crl_file[0] && !cJSON_AddStringToObject(c, "file", ca->crl_file))
					|| (ca->crl_attempt && !cm_json_add_time(c, "lastAttempt", ca->crl_attempt))
					|| (ca->crl_success && !cm_json_add_time(c, "lastSuccess", ca->crl_success))
					|| !cJSON_AddStringToObject(c, "lastError", ca->crl_error)
					|| !cJSON_AddStringToObject(c, "stalePolicy", ca->stale_fail_open ? "fail-open" : "fail-closed")
					|| (ca->crl_next_attempt && !cm_json_add_time(c, "nextAttempt", ca->crl_next_attempt))
					|| !cJSON_AddNumberToObject(c, "failures", ca->crl_failures)
					|| !add_more_files(c, ca)){
				goto nomem;
			}
		}
	}
	rc = write_json(path, json, err);
	cJSON_Delete(json);
	return rc;
nomem:
	cJSON_Delete(json);
	return cm_err_set(err, CM_ERR_NOMEM, "out of memory");
}

/* A CRL of entry ca not yet on disk, under a name of its own (file): the
 * old file stays in force until tenant.json names the new one. */
static enum cm_rc write_crl_file(const struct cm_store *store, const struct cm_tenant *t, const struct cm_ca *ca, bool dirty,
		const struct cm_crl *crl, char file[96], struct cm_err *err)
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
static enum cm_rc write_tenant(const struct cm_store *store, struct cm_tenant *t, struct cm_err *err)
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
		for(int i = 0; rc == CM_OK && i < CM_CA_MORE_CRLS; i++){
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
static void remove_unnamed_files(const struct cm_store *store, const struct cm_tenant *old, const struct cm_tenant *t)
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
static void write_tenant_undo(const struct cm_store *store, const struct cm_tenant *old, const struct cm_tenant *t)
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

static void bump_generation(struct cm_store *store, uint64_t gen)
{
	struct cm_err err;

	store->generation = gen;
	/* The commit already happened: store.json only caches the highest
	 * generation, and loading takes the maximum anyway. */
	if(write_store_json(store, &err) != CM_OK){
		cm_log(CM_LOG_WARNING, "cannot update store.json (%s); the change itself is saved", err.msg);
	}
}

enum cm_rc cm_store_put_tenant(struct cm_store *store, struct cm_tenant *t, struct cm_tenant **old, struct cm_err *err)
{
	struct cm_sni_entry *list = NULL;
	struct cm_tenant *prev;
	uint64_t gen = store->generation + 1;
	uint64_t saved_gen = t->generation;
	enum cm_rc rc;

	*old = NULL;
	if(!cm_tenant_name_valid(t->name)){
		return cm_err_set(err, CM_ERR_INVAL, "invalid tenant name");
	}
	rc = check_unique_org(store, t, err);
	if(rc == CM_OK){
		rc = check_server_refs(store, t, err);
	}
	if(rc == CM_OK){
		rc = build_trust(t, store->admin_ca, err);
	}
	if(rc == CM_OK){
		rc = sni_prepare(store, t, &list, err);
	}
	if(rc == CM_OK && (rc = names_reserve(store, t, err)) != CM_OK){
		sni_list_free(&list);
	}
	if(rc != CM_OK){
		return rc;
	}
	t->generation = gen;
	prev = cm_store_find_tenant(store, t->name);
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
	t = cm_store_find_tenant(store, name);
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

/* <dir>/<base>.pem and <base>.key (0600, encrypted with pass unless NULL). */
static enum cm_rc write_pem_pair(const char *dir, const char *base, X509 *cert, EVP_PKEY *key, const char *pass, struct cm_err *err)
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

/* Creates admin/: certmgr's admin CA, its key encrypted with pass unless
 * NULL (whoever reads it mints administrators), and one admin client
 * certificate and key for the local operator (plain, 0600: it is the
 * operator's credential, which certmgr_ctrl reads). */
static enum cm_rc create_admin(const char *dir, const char *hostname, const char *pass, struct cm_err *err)
{
	char path[PATH_MAX], cn[128];
	X509 *ca = NULL, *client = NULL;
	EVP_PKEY *ca_key = NULL, *client_key = NULL;
	enum cm_rc rc;

	snprintf(cn, sizeof(cn), "certmgr admin CA %.64s", hostname);
	rc = cm_fs_path(path, sizeof(path), err, "%s/admin", dir);
	if(rc == CM_OK){
		rc = cm_fs_mkdir(path, 0700, err);
	}
	if(rc == CM_OK){
		rc = cm_pki_make_ca(cn, 3650, &ca, &ca_key, err);
	}
	if(rc == CM_OK){
		rc = cm_pki_make_client_cert(ca, ca_key, "certmgr-admin", 825, &client, &client_key, err);
	}
	/* The client first: ca.pem is what loading requires, so it goes last. */
	if(rc == CM_OK){
		rc = write_pem_pair(path, "admin", client, client_key, NULL, err);
	}
	if(rc == CM_OK){
		rc = write_pem_pair(path, "ca", ca, ca_key, pass, err);
	}
	X509_free(ca);
	X509_free(client);
	EVP_PKEY_free(ca_key);
	EVP_PKEY_free(client_key);
	return rc;
}

static enum cm_rc create_default_tenant(const char *dir, struct cm_err *err)
{
	struct cm_store tmp;
	struct cm_tenant *t;
	char path[PATH_MAX];
	enum cm_rc rc;

	memset(&tmp, 0, sizeof(tmp));
	tmp.dir = (char *)dir;
	if(cm_fs_path(path, sizeof(path), err, "%s/tenants", dir) != CM_OK || cm_fs_mkdir(path, 0700, err) != CM_OK){
		return CM_ERR_IO;
	}
	t = cm_tenant_new(CM_DEFAULT_TENANT);
	if(t == NULL){
		return cm_err_set(err, CM_ERR_NOMEM, "out of memory");
	}
	t->generation = 1;
	rc = write_tenant(&tmp, t, err);
	cm_tenant_free(&t);
	return rc;
}

static enum cm_rc copy_file(const char *from, const char *to, struct cm_err *err)
{
	char *text = NULL;
	size_t len = 0;
	enum cm_rc rc;

	rc = cm_fs_read_file(from, CM_STORE_MAX_FILE, &text, &len, err);
	if(rc == CM_OK){
		rc = cm_fs_write_atomic(to, text, len, 0600, err);
	}
	cm_pki_free_secret(text, len);
	return rc;
}

/* Copies store.json and slots/ into backups/schema-<n>-<time>/. */
static enum cm_rc backup_store(const char *dir, int schema, struct cm_err *err)
{
	char bdir[PATH_MAX], from[PATH_MAX], to[PATH_MAX];
	enum cm_rc rc;
	int i;

	if(cm_fs_path(bdir, sizeof(bdir), err, "%s/backups", dir) != CM_OK || cm_fs_mkdir(bdir, 0700, err) != CM_OK
			|| cm_fs_path(bdir, sizeof(bdir), err, "%s/backups/schema-%d-%lld", dir, schema, (long long)time(NULL)) != CM_OK
			|| cm_fs_mkdir(bdir, 0700, err) != CM_OK
			|| cm_fs_path(from, sizeof(from), err, "%s/store.json", dir) != CM_OK
			|| cm_fs_path(to, sizeof(to), err, "%s/store.json", bdir) != CM_OK){
		return CM_ERR_IO;
	}
	rc = copy_file(from, to, err);
	if(rc == CM_OK && (cm_fs_path(to, sizeof(to), err, "%s/slots", bdir) != CM_OK || cm_fs_mkdir(to, 0700, err) != CM_OK)){
		rc = CM_ERR_IO;
	}
	for(i = 0; rc == CM_OK && i < CM_SLOT_COUNT; i++){
		DIR *d;
		struct dirent *e;
		const char *slot = cm_slot_name((enum cm_slot_id)i);

		if(cm_fs_path(from, sizeof(from), err, "%s/slots/%s", dir, slot) != CM_OK
				|| cm_fs_path(to, sizeof(to), err, "%s/slots/%s", bdir, slot) != CM_OK
				|| cm_fs_mkdir(to, 0700, err) != CM_OK){
			return CM_ERR_IO;
		}
		d = opendir(from);
		if(d == NULL){
			return cm_err_set(err, CM_ERR_IO, "cannot read %s: %s", from, strerror(errno));
		}
		while(rc == CM_OK && (e = readdir(d)) != NULL){
			char f1[PATH_MAX], f2[PATH_MAX];
			if(e->d_name[0] == '.' || strstr(e->d_name, ".tmp.")){
				continue;
			}
			if(cm_fs_path(f1, sizeof(f1), err, "%s/%s", from, e->d_name) != CM_OK
					|| cm_fs_path(f2, sizeof(f2), err, "%s/%s", to, e->d_name) != CM_OK){
				rc = CM_ERR_INVAL;
				break;
			}
			rc = copy_file(f1, f2, err);
		}
		closedir(d);
	}
	return rc;
}

/* Schema 1 to 2: a backup copy first, then the admin CA and the default
 * tenant; store.json, written last, commits the migration. Interrupted, it
 * is done again at the next start. */
static enum cm_rc migrate_1_to_2(struct cm_store *store, const char *hostname, struct cm_err *err)
{
	enum cm_rc rc;

	rc = backup_store(store->dir, 1, err);
	if(rc == CM_OK){
		rc = create_admin(store->dir, hostname, NULL, err);
	}
	if(rc == CM_OK){
		rc = create_default_tenant(store->dir, err);
	}
	if(rc == CM_OK){
		store->schema = 2;
		store->generation++;
		rc = write_store_json(store, err);
	}
	return rc;
}

/* ===================================================================
 * Server certificates: changes
 * =================================================================== */

struct cm_server_cert *cm_store_find_server_cert(const struct cm_store *store, enum cm_slot_id slot, const char *id)
{
	struct cm_server_cert *c;

	for(c = id ? store->slots[slot].certs : NULL; c; c = c->next){
		if(!strcmp(c->id, id)){
			return c;
		}
	}
	return NULL;
}

const struct cm_server_cert *cm_store_served_cert(const struct cm_store *store, const struct cm_tenant *t, enum cm_slot_id slot)
{
	const struct cm_server_cert *c = t && t->server_cert[slot][0] ? cm_store_find_server_cert(store, slot, t->server_cert[slot]) : NULL;

	return c ? c : store->slots[slot].def;
}

enum cm_rc cm_server_cert_new(X509 *leaf, STACK_OF(X509) *extra, EVP_PKEY *key, const char *description, bool builtin,
		struct cm_server_cert **out, struct cm_err *err)
{
	struct cm_server_cert *c = calloc(1, sizeof(*c));

	*out = NULL;
	if(c == NULL || (c->description = strdup(description ? description : "")) == NULL
			|| (c->extra = extra ? X509_chain_up_ref(extra) : sk_X509_new_null()) == NULL){
		if(c){
			free(c->description);
			free(c);
		}
		return cm_err_set(err, CM_ERR_NOMEM, "out of memory");
	}
	if(cm_pki_cert_id(leaf, c->id, err) != CM_OK){
		cm_server_cert_free(&c);
		return CM_ERR_CRYPTO;
	}
	X509_up_ref(leaf);
	c->leaf = leaf;
	EVP_PKEY_up_ref(key);
	c->key = key;
	c->builtin = builtin;
	c->added = time(NULL);
	*out = c;
	return CM_OK;
}

static enum cm_rc write_slot_files(const struct cm_store *store, enum cm_slot_id slot, const struct cm_server_cert *c, struct cm_err *err)
{
	char base[PATH_MAX];

	if(cm_fs_path(base, sizeof(base), err, "%s/slots/%s/%s", store->dir, cm_slot_name(slot), c->id) != CM_OK){
		return CM_ERR_INVAL;
	}
	return write_cert_files(base, c, store->key_passphrase, err);
}

static void remove_slot_files(const struct cm_store *store, enum cm_slot_id slot, const struct cm_server_cert *c)
{
	char path[PATH_MAX];

	if(cm_fs_path(path, sizeof(path), NULL, "%s/slots/%s/%s.crt", store->dir, cm_slot_name(slot), c->id) == CM_OK){
		(void)unlink(path);
	}
	if(cm_fs_path(path, sizeof(path), NULL, "%s/slots/%s/%s.key", store->dir, cm_slot_name(slot), c->id) == CM_OK){
		(void)unlink(path);
	}
}

/* Commits view as the slot's new state: slot.json first, then memory,
 * the listener files and the store's generation. */
static enum cm_rc commit_slot(struct cm_store *store, enum cm_slot_id slot, struct cm_slot *view, struct cm_err *err)
{
	struct cm_err lerr;
	bool new_default = view->def != store->slots[slot].def;
	enum cm_rc rc;

	view->generation = store->generation + 1;
	rc = write_slot_view(store, slot, view, err);
	if(rc != CM_OK){
		return rc;
	}
	store->slots[slot] = *view;
	if(new_default && cm_store_write_listener_files(store, &lerr) != CM_OK){
		cm_log(CM_LOG_WARNING, "cannot update the listener files (%s); handshakes are served from memory anyway", lerr.msg);
	}
	bump_generation(store, view->generation);
	return CM_OK;
}

enum cm_rc cm_store_add_server_cert(struct cm_store *store, enum cm_slot_id slot, struct cm_server_cert *cert, bool make_default, struct cm_err *err)
{
	struct cm_slot view = store->slots[slot];
	enum cm_rc rc;

	if(cm_store_find_server_cert(store, slot, cert->id)){
		return cm_err_set(err, CM_ERR_INVAL, "certificate %s is already in slot %s", cert->id, cm_slot_name(slot));
	}
	rc = write_slot_files(store, slot, cert, err);
	if(rc != CM_OK){
		return rc;
	}
	cert->next = view.certs;
	view.certs = cert;
	if(make_default){
		view.def = cert;
	}
	rc = commit_slot(store, slot, &view, err);
	if(rc != CM_OK){
		cert->next = NULL;
		remove_slot_files(store, slot, cert);
	}
	return rc;
}

enum cm_rc cm_store_set_default_server_cert(struct cm_store *store, enum cm_slot_id slot, const char *id, struct cm_err *err)
{
	struct cm_slot view = store->slots[slot];

	view.def = cm_store_find_server_cert(store, slot, id);
	if(view.def == NULL){
		return cm_err_set(err, CM_ERR_INVAL, "no certificate '%.64s' in slot %s", id, cm_slot_name(slot));
	}
	return commit_slot(store, slot, &view, err);
}

static bool named_by_a_tenant(const struct cm_store *store, enum cm_slot_id slot, const char *id, const char **who)
{
	const struct cm_tenant *t, *tmp;

	HASH_ITER(hh, store->tenants, t, tmp){
		if(!strcmp(t->server_cert[slot], id)){
			*who = t->name;
			return true;
		}
	}
	return false;
}

/* view without old, which is unlinked; relinked by the caller on failure. */
static struct cm_server_cert **link_of(struct cm_slot *view, const struct cm_server_cert *c)
{
	struct cm_server_cert **pp;

	for(pp = &view->certs; *pp && *pp != c; pp = &(*pp)->next){
	}
	return pp;
}

enum cm_rc cm_store_remove_server_cert(struct cm_store *store, enum cm_slot_id slot, const char *id, struct cm_err *err)
{
	struct cm_slot view = store->slots[slot];
	struct cm_server_cert *c = cm_store_find_server_cert(store, slot, id), **pp;
	const char *who = NULL;
	enum cm_rc rc;

	if(c == NULL){
		return cm_err_set(err, CM_ERR_INVAL, "no certificate '%.64s' in slot %s", id, cm_slot_name(slot));
	}
	if(c == view.def){
		return cm_err_set(err, CM_ERR_INVAL, "certificate %s is the default of slot %s: make another one the default first", id, cm_slot_name(slot));
	}
	if(c->builtin){
		return cm_err_set(err, CM_ERR_INVAL, "the built-in certificate cannot be removed (regenerateSelfSigned replaces it)");
	}
	if(named_by_a_tenant(store, slot, id, &who)){
		return cm_err_set(err, CM_ERR_INVAL, "tenant '%s' is served with certificate %s", who, id);
	}
	pp = link_of(&view, c);
	*pp = c->next;
	rc = commit_slot(store, slot, &view, err);
	if(rc != CM_OK){
		*pp = c; /* the list is the live one: relink */
		return rc;
	}
	remove_slot_files(store, slot, c);
	c->next = NULL;
	cm_server_cert_free(&c);
	return CM_OK;
}

enum cm_rc cm_store_replace_builtin(struct cm_store *store, enum cm_slot_id slot, struct cm_server_cert *cert, struct cm_err *err)
{
	struct cm_slot view = store->slots[slot];
	struct cm_server_cert *old, **pp;
	const char *who = NULL;
	enum cm_rc rc;

	for(old = view.certs; old && !old->builtin; old = old->next){
	}
	if(old && named_by_a_tenant(store, slot, old->id, &who)){
		return cm_err_set(err, CM_ERR_INVAL, "tenant '%s' is served with the built-in certificate; name another one for it first", who);
	}
	rc = write_slot_files(store, slot, cert, err);
	if(rc != CM_OK){
		return rc;
	}
	cert->builtin = true;
	pp = old ? link_of(&view, old) : NULL;
	if(pp){
		*pp = old->next;
	}
	cert->next = view.certs;
	view.certs = cert;
	view.def = cert;
	rc = commit_slot(store, slot, &view, err);
	if(rc != CM_OK){
		if(pp){
			*pp = old;
		}
		cert->next = NULL;
		remove_slot_files(store, slot, cert);
		return rc;
	}
	if(old){
		remove_slot_files(store, slot, old);
		old->next = NULL;
		cm_server_cert_free(&old);
	}
	return CM_OK;
}

struct cm_csr *cm_store_find_csr(const struct cm_store *store, enum cm_slot_id slot, const char *id)
{
	struct cm_csr *c;

	for(c = id ? store->slots[slot].csrs : NULL; c; c = c->next){
		if(!strcmp(c->id, id)){
			return c;
		}
	}
	return NULL;
}

static enum cm_rc csr_path(const struct cm_store *store, enum cm_slot_id slot, const char *id, const char *ext, char *buf, size_t len, struct cm_err *err)
{
	return cm_fs_path(buf, len, err, "%s/slots/%s/csrs/%s%s", store->dir, cm_slot_name(slot), id, ext);
}

static void remove_csr_files(const struct cm_store *store, enum cm_slot_id slot, const char *id)
{
	char path[PATH_MAX];

	if(csr_path(store, slot, id, ".csr", path, sizeof(path), NULL) == CM_OK){
		(void)unlink(path);
	}
	if(csr_path(store, slot, id, ".key", path, sizeof(path), NULL) == CM_OK){
		(void)unlink(path);
	}
}

enum cm_rc cm_store_add_csr(struct cm_store *store, enum cm_slot_id slot, struct cm_csr *csr, struct cm_err *err)
{
	struct cm_slot view = store->slots[slot];
	char path[PATH_MAX];
	char *pem = NULL;
	size_t len = 0;
	enum cm_rc rc;

	if(cm_store_find_csr(store, slot, csr->id)){
		return cm_err_set(err, CM_ERR_INVAL, "CSR %s is already pending", csr->id);
	}
	rc = cm_fs_path(path, sizeof(path), err, "%s/slots/%s/csrs", store->dir, cm_slot_name(slot));
	if(rc == CM_OK){
		rc = cm_fs_mkdir(path, 0700, err);
	}
	if(rc == CM_OK){
		rc = cm_pki_csr_to_pem(csr->req, &pem, err);
	}
	if(rc == CM_OK){
		rc = csr_path(store, slot, csr->id, ".csr", path, sizeof(path), err);
	}
	if(rc == CM_OK){
		rc = cm_fs_write_atomic(path, pem, strlen(pem), 0644, err);
	}
	free(pem);
	pem = NULL;
	if(rc == CM_OK){
		rc = store->key_passphrase ? cm_pki_key_to_pem_encrypted(csr->key, store->key_passphrase, &pem, &len, err) : cm_pki_key_to_pem(csr->key, &pem, &len, err);
	}
	if(rc == CM_OK){
		rc = csr_path(store, slot, csr->id, ".key", path, sizeof(path), err);
	}
	if(rc == CM_OK){
		rc = cm_fs_write_atomic(path, pem, len, 0600, err);
	}
	cm_pki_free_secret(pem, len);
	if(rc == CM_OK){
		csr->next = view.csrs;
		view.csrs = csr;
		rc = commit_slot(store, slot, &view, err);
		if(rc != CM_OK){
			csr->next = NULL;
		}
	}
	if(rc != CM_OK){
		remove_csr_files(store, slot, csr->id);
		/* csrs/ is made on demand: gone again unless it holds a CSR. */
		if(cm_fs_path(path, sizeof(path), NULL, "%s/slots/%s/csrs", store->dir, cm_slot_name(slot)) == CM_OK){
			(void)rmdir(path);
		}
	}
	return rc;
}

/* Unlinks csr from the view's list (live nodes); returns where it was. */
static struct cm_csr **csr_link(struct cm_slot *view, const struct cm_csr *csr)
{
	struct cm_csr **pp;

	for(pp = &view->csrs; *pp && *pp != csr; pp = &(*pp)->next){
	}
	return pp;
}

enum cm_rc cm_store_remove_csr(struct cm_store *store, enum cm_slot_id slot, const char *id, struct cm_err *err)
{
	struct cm_slot view = store->slots[slot];
	struct cm_csr *csr = cm_store_find_csr(store, slot, id), **pp;
	enum cm_rc rc;

	if(csr == NULL){
		return cm_err_set(err, CM_ERR_INVAL, "no CSR '%.64s' in slot %s", id, cm_slot_name(slot));
	}
	pp = csr_link(&view, csr);
	*pp = csr->next;
	rc = commit_slot(store, slot, &view, err);
	if(rc != CM_OK){
		*pp = csr;
		return rc;
	}
	remove_csr_files(store, slot, csr->id);
	csr->next = NULL;
	cm_csr_free(&csr);
	return CM_OK;
}

enum cm_rc cm_store_install_csr(struct cm_store *store, enum cm_slot_id slot, const char *csr_id, struct cm_server_cert *cert, bool make_default, struct cm_err *err)
{
	struct cm_slot view = store->slots[slot];
	struct cm_csr *csr = cm_store_find_csr(store, slot, csr_id), **pp;
	enum cm_rc rc;

	if(csr == NULL){
		return cm_err_set(err, CM_ERR_INVAL, "no CSR '%.64s' in slot %s", csr_id, cm_slot_name(slot));
	}
	if(cm_store_find_server_cert(store, slot, cert->id)){
		return cm_err_set(err, CM_ERR_INVAL, "certificate %s is already in slot %s", cert->id, cm_slot_name(slot));
	}
	rc = write_slot_files(store, slot, cert, err);
	if(rc != CM_OK){
		return rc;
	}
	pp = csr_link(&view, csr);
	*pp = csr->next;
	cert->next = view.certs;
	view.certs = cert;
	if(make_default){
		view.def = cert;
	}
	rc = commit_slot(store, slot, &view, err);
	if(rc != CM_OK){
		*pp = csr;
		cert->next = NULL;
		remove_slot_files(store, slot, cert);
		return rc;
	}
	remove_csr_files(store, slot, csr->id);
	csr->next = NULL;
	cm_csr_free(&csr);
	return CM_OK;
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
		rc = store_create(dir, hostname, pass, out, err);
		if(rc != CM_OK){
			return rc;
		}
		*created = true;
	}else{
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
