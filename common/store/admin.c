/* The admin CA, the default tenant, and the migration of a schema 1
 * store. */
#define _GNU_SOURCE
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>

#include <dirent.h>

#include "fsutil.h"
#include "store.h"
#include "store-int.h"

/* Creates admin/: certmgr's admin CA, its key encrypted with pass unless
 * NULL (whoever reads it mints administrators), and one admin client
 * certificate and key for the local operator (plain, 0600: it is the
 * operator's credential, which certmgr_ctrl reads). */
enum cm_rc create_admin(const char *dir, const char *hostname, const char *pass, struct cm_err *err)
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

enum cm_rc create_default_tenant(const char *dir, struct cm_err *err)
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
enum cm_rc migrate_1_to_2(struct cm_store *store, const char *hostname, struct cm_err *err)
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
