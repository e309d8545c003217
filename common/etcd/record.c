/* Records: a directory of the store as one etcd value (record.h). */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <openssl/evp.h>

#include "fsutil.h"
#include "json.h"
#include "record.h"

#define SHA_HEX 64

bool cm_record_path_valid(const char *rel)
{
	int depth = 1;
	bool start = true;

	if(rel == NULL || *rel == '\0' || strlen(rel) > 255){
		return false;
	}
	for(const char *p = rel; *p; p++){
		char c = *p;
		if(c == '/'){
			if(start || ++depth > CM_RECORD_MAX_DEPTH){
				return false;
			}
			start = true;
			continue;
		}
		if(start && c == '.'){
			return false;
		}
		if(!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' || c == '_' || c == '-')){
			return false;
		}
		start = false;
	}
	return !start;
}

bool cm_record_plain_key(const char *data, size_t len)
{
	static const char *const heads[] = {
		"-----BEGIN PRIVATE KEY-----", "-----BEGIN RSA PRIVATE KEY-----", "-----BEGIN EC PRIVATE KEY-----",
		"-----BEGIN DSA PRIVATE KEY-----", "-----BEGIN OPENSSH PRIVATE KEY-----",
	};

	for(size_t i = 0; i < sizeof(heads) / sizeof(heads[0]); i++){
		if(memmem(data, len, heads[i], strlen(heads[i]))){
			return true;
		}
	}
	return false;
}

static void sha256_hex(const void *data, size_t len, char hex[SHA_HEX + 1])
{
	unsigned char md[32];
	unsigned int n = 0;

	memset(md, 0, sizeof(md));
	(void)EVP_Digest(data, len, md, &n, EVP_sha256(), NULL);
	for(size_t i = 0; i < sizeof(md); i++){
		snprintf(hex + 2 * i, 3, "%02x", md[i]);
	}
}

static enum cm_rc blob_key(char *buf, size_t len, const char *prefix, const char *sha, size_t index, struct cm_err *err)
{
	if(index == SIZE_MAX){
		return cm_fs_path(buf, len, err, "%sblobs/%s/", prefix, sha);
	}
	return cm_fs_path(buf, len, err, "%sblobs/%s/%06zu", prefix, sha, index);
}

/* Stores data as chunks, unless the blob is there already (its first
 * chunk is: chunks are written in order, content-addressed). */
static enum cm_rc put_blob(struct cm_etcd *e, const char *prefix, const char *data, size_t len, const char *sha, struct cm_err *err)
{
	char key[CM_ETCD_MAX_KEY];
	struct cm_etcd_kvs have;
	size_t nchunks = (len + CM_RECORD_CHUNK - 1) / CM_RECORD_CHUNK;
	enum cm_rc rc;

	if(e == NULL){
		return cm_err_set(err, CM_ERR_INVAL, "a file over %d bytes needs etcd to be stored", CM_RECORD_INLINE_MAX);
	}
	/* The last chunk is written last: its presence means the blob is whole. */
	rc = blob_key(key, sizeof(key), prefix, sha, nchunks - 1, err);
	if(rc == CM_OK){
		rc = cm_etcd_range(e, key, NULL, &have, err);
	}
	if(rc != CM_OK){
		return rc;
	}
	if(have.n == 1){
		cm_etcd_kvs_free(&have);
		return CM_OK;
	}
	cm_etcd_kvs_free(&have);
	for(size_t i = 0; rc == CM_OK && i < nchunks; i++){
		size_t off = i * CM_RECORD_CHUNK, n = len - off < CM_RECORD_CHUNK ? len - off : CM_RECORD_CHUNK;
		rc = blob_key(key, sizeof(key), prefix, sha, i, err);
		if(rc == CM_OK){
			rc = cm_etcd_put(e, key, data + off, n, 0, err);
		}
	}
	return rc;
}

struct builder {
	struct cm_etcd *e;
	const char *prefix;
	cJSON *files;
	size_t count, inline_bytes;
};

static enum cm_rc add_file(struct builder *b, const char *path, const char *rel, struct cm_err *err)
{
	char *data = NULL;
	size_t len = 0;
	cJSON *entry;
	enum cm_rc rc;

	if(++b->count > CM_RECORD_MAX_FILES){
		return cm_err_set(err, CM_ERR_INVAL, "more than %d files", CM_RECORD_MAX_FILES);
	}
	rc = cm_fs_read_file(path, CM_RECORD_MAX_FILE, &data, &len, err);
	if(rc != CM_OK){
		return rc;
	}
	if(cm_record_plain_key(data, len)){
		free(data);
		return cm_err_set(err, CM_ERR_INVAL, "%s holds a private key that is not encrypted: etcd holds keys encrypted at rest only"
				" (plugin_opt_key_passphrase_file)", rel);
	}
	entry = cJSON_AddObjectToObject(b->files, rel);
	if(entry == NULL){
		rc = cm_err_set(err, CM_ERR_NOMEM, "out of memory");
	}else if(len > CM_RECORD_INLINE_MAX){
		char sha[SHA_HEX + 1];
		sha256_hex(data, len, sha);
		rc = put_blob(b->e, b->prefix, data, len, sha, err);
		if(rc == CM_OK && (!cJSON_AddStringToObject(entry, "blob", sha) || !cJSON_AddNumberToObject(entry, "size", (double)len))){
			rc = cm_err_set(err, CM_ERR_NOMEM, "out of memory");
		}
	}else{
		char *b64 = cm_b64_encode(data, len);
		b->inline_bytes += len;
		if(b64 == NULL || !cJSON_AddStringToObject(entry, "data", b64)){
			rc = cm_err_set(err, CM_ERR_NOMEM, "out of memory");
		}
		free(b64);
	}
	free(data);
	return rc;
}

/* Adds the files below dir/rel (rel "" at the top). */
static enum cm_rc walk(struct builder *b, const char *dir, const char *rel, int depth, struct cm_err *err)
{
	char path[PATH_MAX], sub[PATH_MAX];
	struct dirent *d;
	DIR *dh;
	enum cm_rc rc = CM_OK;

	if(cm_fs_path(path, sizeof(path), err, "%s%s%s", dir, rel[0] ? "/" : "", rel) != CM_OK){
		return CM_ERR_INVAL;
	}
	dh = opendir(path);
	if(dh == NULL){
		return cm_err_set(err, CM_ERR_IO, "cannot read %s: %s", path, strerror(errno));
	}
	while(rc == CM_OK && (d = readdir(dh)) != NULL){
		struct stat st;
		char full[PATH_MAX];

		/* Dot files, and the temporary files of atomic writes. */
		if(d->d_name[0] == '.' || strstr(d->d_name, ".tmp.")){
			continue;
		}
		if(cm_fs_path(sub, sizeof(sub), err, "%s%s%s", rel, rel[0] ? "/" : "", d->d_name) != CM_OK
				|| cm_fs_path(full, sizeof(full), err, "%s/%s", path, d->d_name) != CM_OK){
			rc = CM_ERR_INVAL;
		}else if(lstat(full, &st) != 0){
			continue; /* gone meanwhile */
		}else if(!cm_record_path_valid(sub)){
			rc = cm_err_set(err, CM_ERR_INVAL, "%s: a name a record cannot hold", full);
		}else if(S_ISDIR(st.st_mode)){
			rc = depth + 1 < CM_RECORD_MAX_DEPTH ? walk(b, dir, sub, depth + 1, err)
				: cm_err_set(err, CM_ERR_INVAL, "%s: directories nested too deep", full);
		}else if(S_ISREG(st.st_mode)){
			rc = add_file(b, full, sub, err);
		}
	}
	closedir(dh);
	return rc;
}

enum cm_rc cm_record_build(struct cm_etcd *e, const char *prefix, const char *dir, char **out, size_t *len, struct cm_err *err)
{
	struct builder b = {e, prefix, NULL, 0, 0};
	cJSON *rec = cJSON_CreateObject();
	enum cm_rc rc;

	*out = NULL;
	*len = 0;
	if(rec == NULL || !cJSON_AddNumberToObject(rec, "schema", 1) || (b.files = cJSON_AddObjectToObject(rec, "files")) == NULL){
		cJSON_Delete(rec);
		return cm_err_set(err, CM_ERR_NOMEM, "out of memory");
	}
	rc = walk(&b, dir, "", 0, err);
	if(rc == CM_OK && (*out = cJSON_PrintUnformatted(rec)) == NULL){
		rc = cm_err_set(err, CM_ERR_NOMEM, "out of memory");
	}
	if(rc == CM_OK && (*len = strlen(*out)) > CM_RECORD_MAX){
		rc = cm_err_set(err, CM_ERR_INVAL, "%s: its small files add up to %zu bytes, over the %d bytes of one etcd value", dir, *len, CM_RECORD_MAX);
		free(*out);
		*out = NULL;
		*len = 0;
	}
	cJSON_Delete(rec);
	return rc;
}

static bool entry_valid(const cJSON *f)
{
	const cJSON *data = cJSON_GetObjectItemCaseSensitive(f, "data");
	const cJSON *blob = cJSON_GetObjectItemCaseSensitive(f, "blob");
	const cJSON *size = cJSON_GetObjectItemCaseSensitive(f, "size");

	if(!cJSON_IsObject(f) || !cm_record_path_valid(f->string)){
		return false;
	}
	if(data){
		return cJSON_IsString(data) && blob == NULL;
	}
	if(!cJSON_IsString(blob) || strlen(blob->valuestring) != SHA_HEX || strspn(blob->valuestring, "0123456789abcdef") != SHA_HEX){
		return false;
	}
	return cJSON_IsNumber(size) && size->valuedouble >= 1 && size->valuedouble <= CM_RECORD_MAX_FILE
		&& size->valuedouble == (double)(size_t)size->valuedouble;
}

enum cm_rc cm_record_parse(const char *rec, size_t len, cJSON **out, struct cm_err *err)
{
	cJSON *j = cJSON_ParseWithLength(rec, len);
	const cJSON *files = cJSON_GetObjectItemCaseSensitive(j, "files"), *f;
	const cJSON *schema = cJSON_GetObjectItemCaseSensitive(j, "schema");
	int n = 0;

	*out = NULL;
	if(!cJSON_IsObject(j) || !cJSON_IsNumber(schema) || !cJSON_IsObject(files)){
		cJSON_Delete(j);
		return cm_err_set(err, CM_ERR_CORRUPT, "a record that is not {\"schema\":1,\"files\":{...}}");
	}
	if(schema->valuedouble != 1){
		double v = schema->valuedouble;
		cJSON_Delete(j);
		return cm_err_set(err, v > 1 ? CM_ERR_NEWER : CM_ERR_CORRUPT, "a record of schema %g%s", v, v > 1 ? ", from a newer certmgr" : "");
	}
	cJSON_ArrayForEach(f, files){
		if(++n > CM_RECORD_MAX_FILES || !entry_valid(f)){
			cJSON_Delete(j);
			return cm_err_set(err, CM_ERR_CORRUPT, "a record with a malformed or too many file entries");
		}
	}
	*out = j;
	return CM_OK;
}

/* Appends chunk index of blob sha to t (one request each: a range of all
 * of them would be one answer as large as the file). */
static enum cm_rc get_chunk(struct cm_etcd *e, const char *prefix, const char *sha, size_t index, size_t size, struct cm_text *t,
		struct cm_err *err)
{
	char key[CM_ETCD_MAX_KEY];
	struct cm_etcd_kvs kvs;
	enum cm_rc rc;

	rc = blob_key(key, sizeof(key), prefix, sha, index, err);
	if(rc == CM_OK){
		rc = cm_etcd_range(e, key, NULL, &kvs, err);
	}
	if(rc != CM_OK){
		return rc;
	}
	if(kvs.n != 1){
		rc = cm_err_set(err, CM_ERR_CORRUPT, "blob %s: chunk %zu is missing", sha, index);
	}else if(t->len + kvs.v[0].len > size || !cm_text_append(t, (char *)kvs.v[0].value, kvs.v[0].len)){
		rc = cm_err_set(err, CM_ERR_CORRUPT, "blob %s: its chunks are larger than its size", sha);
	}
	cm_etcd_kvs_free(&kvs);
	return rc;
}

/* The blob sha of size bytes, from its chunks, checked. */
static enum cm_rc get_blob(struct cm_etcd *e, const char *prefix, const char *sha, size_t size, char **out, struct cm_err *err)
{
	char got[SHA_HEX + 1];
	struct cm_text t = {0};
	size_t nchunks = (size + CM_RECORD_CHUNK - 1) / CM_RECORD_CHUNK;
	enum cm_rc rc = CM_OK;

	*out = NULL;
	if(e == NULL){
		return cm_err_set(err, CM_ERR_INVAL, "a blob needs etcd to be read");
	}
	for(size_t i = 0; rc == CM_OK && i < nchunks; i++){
		rc = get_chunk(e, prefix, sha, i, size, &t, err);
	}
	if(rc == CM_OK && t.len == size){
		sha256_hex(t.s, t.len, got);
	}
	if(rc == CM_OK && (t.len != size || strcmp(got, sha))){
		rc = cm_err_set(err, CM_ERR_CORRUPT, "blob %s: missing chunks, or not the content its name says", sha);
	}
	if(rc != CM_OK){
		cm_text_free(&t);
		return rc;
	}
	*out = t.s;
	return CM_OK;
}

/* dir/<rel>'s parent directories. */
static enum cm_rc make_parents(const char *dir, const char *rel, struct cm_err *err)
{
	char path[PATH_MAX];

	for(const char *p = strchr(rel, '/'); p; p = strchr(p + 1, '/')){
		if(cm_fs_path(path, sizeof(path), err, "%s/%.*s", dir, (int)(p - rel), rel) != CM_OK || cm_fs_mkdir(path, 0700, err) != CM_OK){
			return CM_ERR_IO;
		}
	}
	return CM_OK;
}

static enum cm_rc write_entry(struct cm_etcd *e, const char *prefix, const cJSON *f, const char *dir, struct cm_err *err)
{
	const cJSON *data = cJSON_GetObjectItemCaseSensitive(f, "data");
	char path[PATH_MAX];
	unsigned char *bytes = NULL;
	size_t len = 0;
	enum cm_rc rc;

	if(data){
		if(!cm_b64_decode(data->valuestring, strlen(data->valuestring), &bytes, &len)){
			return cm_err_set(err, CM_ERR_CORRUPT, "record file %s: not base64", f->string);
		}
	}else{
		len = (size_t)cJSON_GetObjectItemCaseSensitive(f, "size")->valuedouble;
		rc = get_blob(e, prefix, cJSON_GetObjectItemCaseSensitive(f, "blob")->valuestring, len, (char **)&bytes, err);
		if(rc != CM_OK){
			return rc;
		}
	}
	rc = make_parents(dir, f->string, err);
	if(rc == CM_OK){
		rc = cm_fs_path(path, sizeof(path), err, "%s/%s", dir, f->string);
	}
	if(rc == CM_OK){
		rc = cm_fs_write_atomic(path, bytes, len, 0600, err);
	}
	free(bytes);
	return rc;
}

enum cm_rc cm_record_write(struct cm_etcd *e, const char *prefix, const char *rec, size_t len, const char *dir, struct cm_err *err)
{
	cJSON *j = NULL;
	const cJSON *f;
	enum cm_rc rc;

	rc = cm_record_parse(rec, len, &j, err);
	if(rc == CM_OK){
		rc = cm_fs_mkdir(dir, 0700, err);
	}
	for(f = j ? cJSON_GetObjectItemCaseSensitive(j, "files")->child : NULL; rc == CM_OK && f; f = f->next){
		rc = write_entry(e, prefix, f, dir, err);
	}
	cJSON_Delete(j);
	return rc;
}
