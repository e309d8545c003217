/* Server certificates and CSRs: lookups and changes, each committed by
 * the rename of slot.json. */
#define _GNU_SOURCE
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "fsutil.h"
#include "log.h"
#include "store.h"
#include "store-int.h"

/* One list helper for a slot's two lists, its certificates and its CSRs:
 * entries with an id and a next. find: the entry of that id (none for
 * NULL); link: where e is linked in the list that starts at *pp, for an
 * unlink the caller can undo. */
#define SLOT_LIST(prefix, type) \
	static type *prefix##_find(type *e, const char *id) \
	{ \
		for(e = id ? e : NULL; e; e = e->next){ \
			if(!strcmp(e->id, id)){ \
				return e; \
			} \
		} \
		return NULL; \
	} \
	static type **prefix##_link(type **pp, const type *e) \
	{ \
		while(*pp && *pp != e){ \
			pp = &(*pp)->next; \
		} \
		return pp; \
	}

SLOT_LIST(cert_list, struct cm_server_cert)
SLOT_LIST(csr_list, struct cm_csr)

/* Removes slots/<slot>/<sub><id><ext> and its .key; a file left behind
 * is named by nothing, and harmless. */
void remove_entry_files(const struct cm_store *store, enum cm_slot_id slot, const char *sub, const char *id, const char *ext)
{
	const char *const exts[2] = {ext, ".key"};
	char path[PATH_MAX];
	int i;

	for(i = 0; i < 2; i++){
		if(cm_fs_path(path, sizeof(path), NULL, "%s/slots/%s/%s%s%s", store->dir, cm_slot_name(slot), sub, id, exts[i]) == CM_OK){
			(void)unlink(path);
		}
	}
}

const struct cm_server_cert *cm_store_find_server_cert(const struct cm_store *store, enum cm_slot_id slot, const char *id)
{
	return cert_list_find(store->slots[slot].certs, id);
}

const struct cm_server_cert *cm_store_served_cert(const struct cm_store *store, const struct cm_tenant *t, enum cm_slot_id slot)
{
	const struct cm_server_cert *c = t && cm_tenant_server_cert(t, slot)[0] ? cm_store_find_server_cert(store, slot, cm_tenant_server_cert(t, slot)) : NULL;

	return c ? c : store->secret[slot] ? store->secret[slot] : store->slots[slot].def;
}

void cm_store_set_secret_cert(struct cm_store *store, enum cm_slot_id slot, struct cm_server_cert *cert)
{
	cm_server_cert_free(&store->secret[slot]);
	store->secret[slot] = cert;
}

const struct cm_server_cert *cm_store_secret_cert(const struct cm_store *store, enum cm_slot_id slot)
{
	return store->secret[slot];
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
	remove_entry_files(store, slot, "", c->id, ".crt");
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

/* A new certificate into view, not yet committed: its files written, it
 * heads the list (and is the default with make_default). */
static enum cm_rc stage_cert(struct cm_store *store, enum cm_slot_id slot, struct cm_slot *view, struct cm_server_cert *cert,
		bool make_default, struct cm_err *err)
{
	enum cm_rc rc;

	if(cm_store_find_server_cert(store, slot, cert->id)){
		return cm_err_set(err, CM_ERR_INVAL, "certificate %s is already in slot %s", cert->id, cm_slot_name(slot));
	}
	rc = write_slot_files(store, slot, cert, err);
	if(rc != CM_OK){
		return rc;
	}
	cert->next = view->certs;
	view->certs = cert;
	if(make_default){
		view->def = cert;
	}
	return CM_OK;
}

/* Undoes a staged certificate whose commit failed; it is the caller's
 * again. */
static void unstage_cert(const struct cm_store *store, enum cm_slot_id slot, struct cm_server_cert *cert)
{
	cert->next = NULL;
	remove_slot_files(store, slot, cert);
}

enum cm_rc cm_store_add_server_cert(struct cm_store *store, enum cm_slot_id slot, struct cm_server_cert *cert, bool make_default, struct cm_err *err)
{
	struct cm_slot view = store->slots[slot];
	enum cm_rc rc;

	rc = stage_cert(store, slot, &view, cert, make_default, err);
	if(rc != CM_OK){
		return rc;
	}
	rc = commit_slot(store, slot, &view, err);
	if(rc != CM_OK){
		unstage_cert(store, slot, cert);
	}
	return rc;
}

enum cm_rc cm_store_set_default_server_cert(struct cm_store *store, enum cm_slot_id slot, const char *id, struct cm_err *err)
{
	struct cm_slot view = store->slots[slot];

	view.def = cert_list_find(store->slots[slot].certs, id);
	if(view.def == NULL){
		return cm_err_set(err, CM_ERR_INVAL, "no certificate '%.64s' in slot %s", id, cm_slot_name(slot));
	}
	return commit_slot(store, slot, &view, err);
}

static bool named_by_a_tenant(const struct cm_store *store, enum cm_slot_id slot, const char *id, const char **who)
{
	const struct cm_tenant *t, *tmp;

	HASH_ITER(hh, store->tenants, t, tmp){
		if(!strcmp(cm_tenant_server_cert(t, slot), id)){
			*who = t->name;
			return true;
		}
	}
	return false;
}

enum cm_rc cm_store_remove_server_cert(struct cm_store *store, enum cm_slot_id slot, const char *id, struct cm_err *err)
{
	struct cm_slot view = store->slots[slot];
	struct cm_server_cert *c = cert_list_find(store->slots[slot].certs, id), **pp;
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
	pp = cert_list_link(&view.certs, c);
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
	pp = old ? cert_list_link(&view.certs, old) : NULL;
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
		unstage_cert(store, slot, cert);
		return rc;
	}
	if(old){
		remove_slot_files(store, slot, old);
		old->next = NULL;
		cm_server_cert_free(&old);
	}
	return CM_OK;
}

const struct cm_csr *cm_store_find_csr(const struct cm_store *store, enum cm_slot_id slot, const char *id)
{
	return csr_list_find(store->slots[slot].csrs, id);
}

static enum cm_rc csr_path(const struct cm_store *store, enum cm_slot_id slot, const char *id, const char *ext, char *buf, size_t len, struct cm_err *err)
{
	return cm_fs_path(buf, len, err, "%s/slots/%s/csrs/%s%s", store->dir, cm_slot_name(slot), id, ext);
}

static void remove_csr_files(const struct cm_store *store, enum cm_slot_id slot, const char *id)
{
	remove_entry_files(store, slot, "csrs/", id, ".csr");
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

enum cm_rc cm_store_remove_csr(struct cm_store *store, enum cm_slot_id slot, const char *id, struct cm_err *err)
{
	struct cm_slot view = store->slots[slot];
	struct cm_csr *csr = csr_list_find(store->slots[slot].csrs, id), **pp;
	enum cm_rc rc;

	if(csr == NULL){
		return cm_err_set(err, CM_ERR_INVAL, "no CSR '%.64s' in slot %s", id, cm_slot_name(slot));
	}
	pp = csr_list_link(&view.csrs, csr);
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
	struct cm_csr *csr = csr_list_find(store->slots[slot].csrs, csr_id), **pp;
	enum cm_rc rc;

	if(csr == NULL){
		return cm_err_set(err, CM_ERR_INVAL, "no CSR '%.64s' in slot %s", csr_id, cm_slot_name(slot));
	}
	rc = stage_cert(store, slot, &view, cert, make_default, err);
	if(rc != CM_OK){
		return rc;
	}
	pp = csr_list_link(&view.csrs, csr);
	*pp = csr->next;
	rc = commit_slot(store, slot, &view, err);
	if(rc != CM_OK){
		*pp = csr;
		unstage_cert(store, slot, cert);
		return rc;
	}
	remove_csr_files(store, slot, csr->id);
	csr->next = NULL;
	cm_csr_free(&csr);
	return CM_OK;
}
