/* A slot replaced as a whole by another node's (a replicating back end,
 * docs/FLEET.md): loaded from a directory of its own, checked against the
 * tenants, its files moved into the store, slot.json last. */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "fsutil.h"
#include "log.h"
#include "store.h"
#include "store-int.h"

void cm_store_slot_clear(struct cm_slot *slot)
{
	struct cm_server_cert *c, *cn;
	struct cm_csr *r, *rn;

	for(c = slot->certs; c; c = cn){
		cn = c->next;
		cm_server_cert_free(&c);
	}
	for(r = slot->csrs; r; r = rn){
		rn = r->next;
		cm_csr_free(&r);
	}
	memset(slot, 0, sizeof(*slot));
}

enum cm_rc cm_store_load_slot(const char *base, enum cm_slot_id slot, const char *pass, struct cm_slot *out, struct cm_err *err)
{
	enum cm_rc rc;

	memset(out, 0, sizeof(*out));
	rc = load_slot(base, slot, out, pass, err);
	if(rc != CM_OK){
		cm_store_slot_clear(out);
	}
	return rc;
}

static bool has_cert(const struct cm_slot *s, const char *id)
{
	for(const struct cm_server_cert *c = s->certs; c; c = c->next){
		if(!strcmp(c->id, id)){
			return true;
		}
	}
	return false;
}

static bool has_csr(const struct cm_slot *s, const char *id)
{
	for(const struct cm_csr *c = s->csrs; c; c = c->next){
		if(!strcmp(c->id, id)){
			return true;
		}
	}
	return false;
}

/* Renames from/<name> into to/<name> for every file but slot.json, one
 * level of directories (csrs/) included. */
static enum cm_rc move_files(const char *from, const char *to, int depth, struct cm_err *err)
{
	char a[PATH_MAX], b[PATH_MAX];
	struct dirent *d;
	DIR *dh;
	enum cm_rc rc = cm_fs_mkdir(to, 0700, err);

	if(rc != CM_OK || (dh = opendir(from)) == NULL){
		return rc != CM_OK ? rc : cm_err_set(err, CM_ERR_IO, "cannot read %s: %s", from, strerror(errno));
	}
	while(rc == CM_OK && (d = readdir(dh)) != NULL){
		struct stat st;
		if(d->d_name[0] == '.' || (depth == 0 && !strcmp(d->d_name, "slot.json"))){
			continue;
		}
		if(cm_fs_path(a, sizeof(a), err, "%s/%s", from, d->d_name) != CM_OK || cm_fs_path(b, sizeof(b), err, "%s/%s", to, d->d_name) != CM_OK){
			rc = CM_ERR_INVAL;
		}else if(lstat(a, &st) == 0 && S_ISDIR(st.st_mode) && depth == 0){
			rc = move_files(a, b, 1, err);
		}else if(lstat(a, &st) == 0 && S_ISREG(st.st_mode) && rename(a, b) != 0){
			rc = cm_err_set(err, CM_ERR_IO, "cannot move %s into the store: %s", a, strerror(errno));
		}
	}
	closedir(dh);
	return rc;
}

/* Every tenant that names a certificate of the slot finds it in s. */
static enum cm_rc check_refs(const struct cm_store *store, enum cm_slot_id slot, const struct cm_slot *s, struct cm_err *err)
{
	for(const struct cm_tenant *t = cm_store_first_tenant(store); t; t = cm_store_next_tenant(t)){
		if(cm_tenant_server_cert(t, slot)[0] && !has_cert(s, cm_tenant_server_cert(t, slot))){
			return cm_err_set(err, CM_ERR_INVAL, "tenant %s is served on slot %s with certificate %s, which the new slot lacks", t->name,
					cm_slot_name(slot), cm_tenant_server_cert(t, slot));
		}
	}
	return CM_OK;
}

enum cm_rc cm_store_replace_slot(struct cm_store *store, enum cm_slot_id slot, struct cm_slot *loaded, const char *base, struct cm_err *err)
{
	char from[PATH_MAX], to[PATH_MAX], a[PATH_MAX], b[PATH_MAX];
	struct cm_slot old;
	struct cm_err lerr;
	enum cm_rc rc;

	rc = check_refs(store, slot, loaded, err);
	if(rc == CM_OK && (cm_fs_path(from, sizeof(from), err, "%s/slots/%s", base, cm_slot_name(slot)) != CM_OK
			|| cm_fs_path(to, sizeof(to), err, "%s/slots/%s", store->dir, cm_slot_name(slot)) != CM_OK
			|| cm_fs_path(a, sizeof(a), err, "%s/slot.json", from) != CM_OK || cm_fs_path(b, sizeof(b), err, "%s/slot.json", to) != CM_OK)){
		rc = CM_ERR_INVAL;
	}
	if(rc == CM_OK){
		rc = move_files(from, to, 0, err);
	}
	if(rc == CM_OK && (rename(a, b) != 0 || cm_fs_sync_parent(b, err) != CM_OK)){
		rc = cm_err_set(err, CM_ERR_IO, "cannot commit %s: %s", b, strerror(errno));
	}
	if(rc != CM_OK){
		return rc;
	}
	/* The commit is made: memory follows, the files of the old slot the
	 * new one does not name go. The handshakes under way hold their own
	 * references to what they use. */
	old = store->slots[slot];
	store->slots[slot] = *loaded;
	memset(loaded, 0, sizeof(*loaded));
	store->slots[slot].generation = store->generation + 1;
	for(const struct cm_server_cert *c = old.certs; c; c = c->next){
		if(!has_cert(&store->slots[slot], c->id)){
			remove_entry_files(store, slot, "", c->id, ".crt");
		}
	}
	for(const struct cm_csr *c = old.csrs; c; c = c->next){
		if(!has_csr(&store->slots[slot], c->id)){
			remove_entry_files(store, slot, "csrs/", c->id, ".csr");
		}
	}
	cm_store_slot_clear(&old);
	if(cm_store_write_listener_files(store, &lerr) != CM_OK){
		cm_log(CM_LOG_WARNING, "cannot update the listener files (%s); handshakes are served from memory anyway", lerr.msg);
	}
	bump_generation(store, store->slots[slot].generation);
	return CM_OK;
}
