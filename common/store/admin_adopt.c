/* Taking another node's admin CA (a fleet shares one: docs/FLEET.md). */
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fsutil.h"
#include "store.h"
#include "store-int.h"

/* The admin CA and its key from from/ca.pem and from/ca.key, checked. */
static enum cm_rc read_ca(const char *from, const char *pass, char **pem, size_t *pem_len, char **key_pem, size_t *key_len, X509 **ca,
		EVP_PKEY **key, struct cm_err *err)
{
	char path[PATH_MAX];
	STACK_OF(X509) *extra = NULL;
	enum cm_rc rc;

	rc = cm_fs_path(path, sizeof(path), err, "%s/ca.pem", from);
	if(rc == CM_OK){
		rc = cm_fs_read_file(path, CM_STORE_MAX_FILE, pem, pem_len, err);
	}
	if(rc == CM_OK){
		rc = cm_fs_path(path, sizeof(path), err, "%s/ca.key", from);
	}
	if(rc == CM_OK){
		rc = cm_fs_read_file(path, CM_STORE_MAX_FILE, key_pem, key_len, err);
	}
	if(rc == CM_OK){
		rc = cm_pki_parse_chain_pem(*pem, *pem_len, ca, &extra, err);
	}
	sk_X509_pop_free(extra, X509_free);
	if(rc == CM_OK && cm_pki_parse_key_any(*key_pem, *key_len, pass, key, err) != CM_OK){
		rc = cm_err_set(err, CM_ERR_INVAL, "the fleet's admin CA key does not open with this node's passphrase (plugin_opt_key_passphrase_file must be the same on every node)");
	}
	if(rc == CM_OK && !cm_pki_key_matches(*ca, *key)){
		rc = cm_err_set(err, CM_ERR_INVAL, "the fleet's admin CA key is not the key of its certificate");
	}
	return rc;
}

enum cm_rc cm_store_adopt_admin_ca(const char *dir, const char *from, const char *pass, bool *changed, struct cm_err *err)
{
	char path[PATH_MAX], admin[PATH_MAX];
	char *pem = NULL, *key_pem = NULL, *mine = NULL;
	size_t pem_len = 0, key_len = 0, mine_len = 0;
	X509 *ca = NULL, *client = NULL;
	EVP_PKEY *key = NULL, *client_key = NULL;
	enum cm_rc rc;

	*changed = false;
	rc = read_ca(from, pass, &pem, &pem_len, &key_pem, &key_len, &ca, &key, err);
	if(rc == CM_OK){
		rc = cm_fs_path(admin, sizeof(admin), err, "%s/admin", dir);
	}
	if(rc == CM_OK && cm_fs_path(path, sizeof(path), err, "%s/ca.pem", admin) == CM_OK
			&& cm_fs_read_file(path, CM_STORE_MAX_FILE, &mine, &mine_len, NULL) == CM_OK && mine_len == pem_len && !memcmp(mine, pem, pem_len)){
		goto out; /* the same CA already */
	}
	/* The local operator's credential first, from the new CA; ca.pem, what
	 * loading reads, last. */
	if(rc == CM_OK){
		rc = cm_pki_make_client_cert(ca, key, "certmgr-admin", 825, &client, &client_key, err);
	}
	if(rc == CM_OK){
		rc = write_pem_pair(admin, "admin", client, client_key, NULL, err);
	}
	if(rc == CM_OK && (rc = cm_fs_path(path, sizeof(path), err, "%s/ca.key", admin)) == CM_OK){
		rc = cm_fs_write_atomic(path, key_pem, key_len, 0600, err);
	}
	if(rc == CM_OK && (rc = cm_fs_path(path, sizeof(path), err, "%s/ca.pem", admin)) == CM_OK){
		rc = cm_fs_write_atomic(path, pem, pem_len, 0600, err);
	}
	*changed = rc == CM_OK;
out:
	free(mine);
	free(pem);
	if(key_pem){
		cm_pki_free_secret(key_pem, key_len);
	}
	X509_free(ca);
	X509_free(client);
	EVP_PKEY_free(key);
	EVP_PKEY_free(client_key);
	return rc;
}
