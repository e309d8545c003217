/* Blobs no record names any more leave etcd (requests thread). A CRL
 * refreshed every hour is a new blob every hour: without this, etcd's
 * space quota (2 GiB by default) fills within days.
 *
 * A blob is deleted when no record names it at two passes in a row, at
 * least plugin_opt_etcd_gc_interval apart, and its newest chunk is older
 * than the first of those passes: a blob whose record is being committed
 * (its chunks go in first, the record's transaction within milliseconds)
 * is never taken, and one a lost race left behind is. Every node runs it;
 * two deleting one blob is harmless. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fleet-int.h"
#include "fsutil.h"
#include "json.h"

#define SHA_HEX 64

/* The SHA-256 a blob key names (prefix blobs/<sha>/<i>), into sha. */
static bool blob_of(const struct cm_fleet *f, const char *key, char sha[SHA_HEX + 1])
{
	size_t n = strlen(f->opts->prefix);

	if(strncmp(key, f->opts->prefix, n) || strncmp(key + n, "blobs/", 6) || strlen(key + n + 6) < SHA_HEX + 1
			|| key[n + 6 + SHA_HEX] != '/'){
		return false;
	}
	memcpy(sha, key + n + 6, SHA_HEX);
	sha[SHA_HEX] = '\0';
	return true;
}

/* The blobs the records name now, and the revision they were read at. */
static enum cm_rc named_blobs(struct cm_fleet *f, struct fleet_rev **named, int64_t *revision, struct cm_err *err)
{
	struct cm_etcd_kvs kvs;
	enum cm_rc rc = cm_etcd_range(f->retcd, f->key_tenants, f->end_tenants, &kvs, err);

	if(rc != CM_OK){
		return rc;
	}
	*revision = kvs.revision;
	for(size_t i = 0; rc == CM_OK && i < kvs.n; i++){
		cJSON *j = cJSON_ParseWithLength((const char *)kvs.v[i].value, kvs.v[i].len), *file;
		cJSON_ArrayForEach(file, cJSON_GetObjectItemCaseSensitive(j, "files")){
			const cJSON *blob = cJSON_GetObjectItemCaseSensitive(file, "blob");
			if(cJSON_IsString(blob) && strlen(blob->valuestring) == SHA_HEX && !fleet_rev_set(named, blob->valuestring, 1)){
				rc = cm_err_set(err, CM_ERR_NOMEM, "out of memory");
				break;
			}
		}
		cJSON_Delete(j);
	}
	cm_etcd_kvs_free(&kvs);
	return rc;
}

/* Every blob in etcd with the newest create revision of its chunks. */
static enum cm_rc stored_blobs(struct cm_fleet *f, struct fleet_rev **stored, struct cm_err *err)
{
	char key[FLEET_KEY_MAX], end[FLEET_KEY_MAX], sha[SHA_HEX + 1];
	struct cm_etcd_kvs kvs;
	enum cm_rc rc;

	rc = cm_fs_path(key, sizeof(key), err, "%sblobs/", f->opts->prefix);
	if(rc == CM_OK){
		rc = cm_etcd_prefix_end(key, end, sizeof(end), err);
	}
	if(rc == CM_OK){
		rc = cm_etcd_range_ex(f->retcd, key, end, true, &kvs, err);
	}
	if(rc != CM_OK){
		return rc;
	}
	for(size_t i = 0; rc == CM_OK && i < kvs.n; i++){
		if(blob_of(f, kvs.v[i].key, sha) && kvs.v[i].create_revision > fleet_rev_get(stored, sha)
				&& !fleet_rev_set(stored, sha, kvs.v[i].create_revision)){
			rc = cm_err_set(err, CM_ERR_NOMEM, "out of memory");
		}
	}
	cm_etcd_kvs_free(&kvs);
	return rc;
}

static enum cm_rc delete_blob(struct cm_fleet *f, const char *sha, struct cm_err *err)
{
	char key[FLEET_KEY_MAX], end[FLEET_KEY_MAX];

	if(cm_fs_path(key, sizeof(key), err, "%sblobs/%s/", f->opts->prefix, sha) != CM_OK
			|| cm_etcd_prefix_end(key, end, sizeof(end), err) != CM_OK){
		return CM_ERR_INVAL;
	}
	return cm_etcd_delete(f->retcd, key, end, err);
}

enum cm_rc fleet_gc(struct cm_fleet *f, struct cm_err *err)
{
	struct fleet_rev *named = NULL, *stored = NULL, *unnamed = NULL, *b, *tmp;
	int64_t revision = 0;
	enum cm_rc rc;

	/* The records first: a blob put after this read and named by a record
	 * after it is newer than this pass, and kept. */
	rc = named_blobs(f, &named, &revision, err);
	if(rc == CM_OK){
		rc = stored_blobs(f, &stored, err);
	}
	HASH_ITER(hh, stored, b, tmp){
		if(rc != CM_OK){
			break;
		}
		if(fleet_rev_get(&named, b->name) != 0){
			continue;
		}
		if(fleet_rev_get(&f->gc_unnamed, b->name) != 0 && b->revision < f->gc_revision){
			rc = delete_blob(f, b->name, err);
			if(rc == CM_OK){
				f->gc_deleted++;
			}
		}else if(!fleet_rev_set(&unnamed, b->name, 1)){
			rc = cm_err_set(err, CM_ERR_NOMEM, "out of memory");
		}
	}
	if(rc == CM_OK){
		fleet_rev_free(&f->gc_unnamed);
		f->gc_unnamed = unnamed;
		unnamed = NULL;
		f->gc_revision = revision;
	}
	fleet_rev_free(&named);
	fleet_rev_free(&stored);
	fleet_rev_free(&unnamed);
	return rc;
}
