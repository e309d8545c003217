/* Records, revisions and the resynchronisation of the etcd back end. */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "fleet-int.h"
#include "fsutil.h"
#include "json.h"
#include "log.h"
#include "store.h"

int64_t fleet_rev_get(struct fleet_rev *const *set, const char *name)
{
	struct fleet_rev *r = NULL;

	HASH_FIND_STR(*set, name, r);
	return r ? r->revision : 0;
}

bool fleet_rev_set(struct fleet_rev **set, const char *name, int64_t rev)
{
	struct fleet_rev *r = NULL;

	HASH_FIND_STR(*set, name, r);
	if(r == NULL){
		r = calloc(1, sizeof(*r));
		if(r == NULL){
			return false;
		}
		snprintf(r->name, sizeof(r->name), "%s", name);
		HASH_ADD_STR(*set, name, r);
	}
	r->revision = rev;
	return true;
}

void fleet_rev_del(struct fleet_rev **set, const char *name)
{
	struct fleet_rev *r = NULL;

	HASH_FIND_STR(*set, name, r);
	if(r){
		HASH_DEL(*set, r);
		free(r);
	}
}

void fleet_rev_free(struct fleet_rev **set)
{
	struct fleet_rev *r, *tmp;

	HASH_ITER(hh, *set, r, tmp){
		HASH_DEL(*set, r);
		free(r);
	}
}

struct fleet_rev *fleet_rev_copy(struct fleet_rev *const *set)
{
	struct fleet_rev *out = NULL, *r, *tmp;

	HASH_ITER(hh, *set, r, tmp){
		if(!fleet_rev_set(&out, r->name, r->revision)){
			fleet_rev_free(&out);
			return NULL;
		}
	}
	return out;
}

const char *fleet_key_name(const struct cm_fleet *f, const char *key)
{
	size_t n = strlen(f->key_tenants);

	if(strncmp(key, f->key_tenants, n) || !cm_tenant_name_valid(key + n)){
		return NULL;
	}
	return key + n;
}

const char *fleet_map_name(const struct cm_fleet *f, const char *key, char buf[FLEET_NAME_MAX])
{
	size_t n = strlen(f->opts->prefix);
	const char *name = fleet_key_name(f, key);

	if(name){
		return name;
	}
	if(!strncmp(key, f->opts->prefix, n) && !strncmp(key + n, "slots/", 6) && cm_slot_parse(key + n + 6) >= 0){
		snprintf(buf, FLEET_NAME_MAX, FLEET_SLOT_PREFIX "%s", key + n + 6);
		return buf;
	}
	return NULL;
}

int fleet_name_slot(const char *name)
{
	size_t n = strlen(FLEET_SLOT_PREFIX);

	return strncmp(name, FLEET_SLOT_PREFIX, n) ? -1 : cm_slot_parse(name + n);
}

void fleet_remove_tree(const char *path)
{
	struct dirent *d;
	DIR *dh = opendir(path);
	char sub[PATH_MAX];

	if(dh == NULL){
		(void)unlink(path);
		return;
	}
	while((d = readdir(dh)) != NULL){
		if(strcmp(d->d_name, ".") && strcmp(d->d_name, "..") && cm_fs_path(sub, sizeof(sub), NULL, "%s/%s", path, d->d_name) == CM_OK){
			struct stat st;
			if(lstat(sub, &st) == 0 && S_ISDIR(st.st_mode)){
				fleet_remove_tree(sub);
			}else{
				(void)unlink(sub);
			}
		}
	}
	closedir(dh);
	(void)rmdir(path);
}

void fleet_change_free(struct fleet_change *c)
{
	if(c == NULL){
		return;
	}
	cm_tenant_free(&c->t);
	cm_store_slot_clear(&c->loaded);
	if(c->base[0]){
		fleet_remove_tree(c->base);
	}
	free(c);
}

struct fleet_change *fleet_change_make(struct cm_fleet *f, struct cm_etcd *e, const char *name, const unsigned char *value, size_t len,
		int64_t revision, bool remove)
{
	struct fleet_change *c = calloc(1, sizeof(*c));
	char dir[PATH_MAX];

	if(c == NULL){
		return NULL;
	}
	snprintf(c->name, sizeof(c->name), "%s", name);
	c->slot = fleet_name_slot(name);
	c->remove = remove;
	c->revision = revision;
	if(remove){
		return c;
	}
	c->rc = cm_fs_path(c->base, sizeof(c->base), &c->err, "%s/fleet/in/%llu-%lld", f->store_dir, (unsigned long long)__atomic_add_fetch(&f->seq, 1, __ATOMIC_RELAXED), (long long)revision);
	if(c->rc == CM_OK){
		c->rc = cm_fs_mkdir(c->base, 0700, &c->err);
	}
	if(c->rc == CM_OK){
		char kind[PATH_MAX];
		c->rc = cm_fs_path(kind, sizeof(kind), &c->err, "%s/%s", c->base, c->slot >= 0 ? "slots" : "tenants");
		if(c->rc == CM_OK){
			c->rc = cm_fs_mkdir(kind, 0700, &c->err);
		}
		if(c->rc == CM_OK){
			c->rc = cm_fs_path(dir, sizeof(dir), &c->err, "%s/%s", kind, c->slot >= 0 ? cm_slot_name((enum cm_slot_id)c->slot) : name);
		}
	}
	if(c->rc == CM_OK){
		c->rc = cm_record_write(e, f->opts->prefix, (const char *)value, len, dir, &c->err);
	}
	if(c->rc == CM_OK && c->slot >= 0){
		c->rc = cm_store_load_slot(c->base, (enum cm_slot_id)c->slot, f->pass, &c->loaded, &c->err);
	}else if(c->rc == CM_OK){
		c->rc = cm_store_load_tenant(c->base, name, f->pass, &c->t, &c->err);
	}
	return c;
}

void fleet_queue_change(struct cm_fleet *f, struct fleet_change *c)
{
	struct fleet_change **pp;

	pthread_mutex_lock(&f->lock);
	for(pp = &f->changes; *pp; pp = &(*pp)->next){
	}
	*pp = c;
	pthread_mutex_unlock(&f->lock);
}

/* Deletes for every tenant delivered that the range no longer holds. */
static bool queue_gone(struct cm_fleet *f, const struct cm_etcd_kvs *kvs, int64_t revision)
{
	struct fleet_rev *r, *tmp;

	HASH_ITER(hh, f->delivered, r, tmp){
		bool there = fleet_name_slot(r->name) >= 0; /* a slot is never deleted */
		for(size_t i = 0; i < kvs->n && !there; i++){
			char buf[FLEET_NAME_MAX];
			const char *name = fleet_map_name(f, kvs->v[i].key, buf);
			there = name && !strcmp(name, r->name);
		}
		if(!there){
			struct fleet_change *c = fleet_change_make(f, NULL, r->name, NULL, 0, revision, true);
			if(c == NULL){
				return false;
			}
			fleet_queue_change(f, c);
			HASH_DEL(f->delivered, r);
			free(r);
		}
	}
	return true;
}

enum cm_rc fleet_resync(struct cm_fleet *f, struct cm_etcd *e, int64_t *revision, struct cm_err *err)
{
	struct cm_etcd_kvs kvs;
	enum cm_rc rc;

	rc = cm_etcd_range(e, f->key_watch, f->end_tenants, &kvs, err);
	if(rc != CM_OK){
		return rc;
	}
	/* Sorted by key: the slots before the tenants that may name their
	 * certificates. */
	for(size_t i = 0; rc == CM_OK && i < kvs.n; i++){
		char buf[FLEET_NAME_MAX];
		const char *name = fleet_map_name(f, kvs.v[i].key, buf);
		struct fleet_change *c;

		if(name == NULL || fleet_rev_get(&f->delivered, name) == kvs.v[i].mod_revision){
			continue;
		}
		c = fleet_change_make(f, e, name, kvs.v[i].value, kvs.v[i].len, kvs.v[i].mod_revision, false);
		if(c && c->rc == CM_ERR_IO){
			/* etcd failed under it: the whole read again later. */
			rc = cm_err_set(err, CM_ERR_IO, "%s", c->err.msg);
			fleet_change_free(c);
			break;
		}
		if(c == NULL || !fleet_rev_set(&f->delivered, name, kvs.v[i].mod_revision)){
			fleet_change_free(c);
			rc = cm_err_set(err, CM_ERR_NOMEM, "out of memory");
			break;
		}
		fleet_queue_change(f, c);
	}
	if(rc == CM_OK && !queue_gone(f, &kvs, kvs.revision)){
		rc = cm_err_set(err, CM_ERR_NOMEM, "out of memory");
	}
	*revision = kvs.revision;
	cm_etcd_kvs_free(&kvs);
	return rc;
}

void fleet_applied_load(struct cm_fleet *f)
{
	char path[PATH_MAX];
	char *text = NULL;
	size_t len = 0;
	cJSON *j, *keys, *k;

	if(cm_fs_path(path, sizeof(path), NULL, "%s/fleet/applied.json", f->store_dir) != CM_OK
			|| cm_fs_read_file(path, 16 * 1024 * 1024, &text, &len, NULL) != CM_OK){
		return;
	}
	j = cJSON_ParseWithLength(text, len);
	free(text);
	keys = cJSON_GetObjectItemCaseSensitive(j, "keys");
	cJSON_ArrayForEach(k, keys){
		if(cJSON_IsNumber(k) && (cm_tenant_name_valid(k->string) || fleet_name_slot(k->string) >= 0)
				&& !fleet_rev_set(&f->applied, k->string, (int64_t)k->valuedouble)){
			break;
		}
	}
	f->applied_rev = cm_etcd_number(j, "revision");
	cJSON_Delete(j);
}

void fleet_applied_save(struct cm_fleet *f)
{
	char path[PATH_MAX], rev[24];
	cJSON *j = cJSON_CreateObject(), *keys = cJSON_AddObjectToObject(j, "keys");
	struct fleet_rev *r, *tmp;
	char *text;
	bool ok = keys != NULL;

	snprintf(rev, sizeof(rev), "%lld", (long long)f->applied_rev);
	ok = ok && cJSON_AddStringToObject(j, "revision", rev);
	HASH_ITER(hh, f->applied, r, tmp){
		ok = ok && cJSON_AddNumberToObject(keys, r->name, (double)r->revision);
	}
	text = ok ? cJSON_PrintUnformatted(j) : NULL;
	cJSON_Delete(j);
	if(text && cm_fs_path(path, sizeof(path), NULL, "%s/fleet/applied.json", f->store_dir) == CM_OK
			&& cm_fs_write_atomic(path, text, strlen(text), 0600, NULL) == CM_OK){
		f->applied_dirty = false;
	}
	free(text);
}

/* A scratch directory holding links to the admin CA's two files. */
static enum cm_rc stage_admin(const char *store_dir, const char *dir, struct cm_err *err)
{
	static const char *const files[] = {"ca.pem", "ca.key"};
	char a[PATH_MAX], b[PATH_MAX];
	enum cm_rc rc;

	fleet_remove_tree(dir);
	rc = cm_fs_mkdir(dir, 0700, err);
	for(size_t i = 0; rc == CM_OK && i < 2; i++){
		rc = cm_fs_path(a, sizeof(a), err, "%s/admin/%s", store_dir, files[i]);
		if(rc == CM_OK){
			rc = cm_fs_path(b, sizeof(b), err, "%s/%s", dir, files[i]);
		}
		if(rc == CM_OK && link(a, b) != 0){
			rc = cm_err_set(err, CM_ERR_IO, "cannot link %s: %s", b, strerror(errno));
		}
	}
	return rc;
}

/* Puts this node's admin CA in etcd when it has none; *won false when
 * another node's came first. */
static enum cm_rc offer_admin(struct cm_fleet *f, struct cm_etcd *e, const char *key, bool *won, struct cm_err *err)
{
	char dir[PATH_MAX];
	char *rec = NULL;
	size_t len = 0;
	int64_t rev;
	enum cm_rc rc;

	rc = cm_fs_path(dir, sizeof(dir), err, "%s/fleet/out/admin", f->store_dir);
	if(rc == CM_OK){
		rc = stage_admin(f->store_dir, dir, err);
	}
	if(rc == CM_OK){
		rc = cm_record_build(e, f->opts->prefix, dir, &rec, &len, err);
	}
	if(rc == CM_OK){
		rc = cm_etcd_txn(e, key, 0, rec, len, won, &rev, err);
	}
	free(rec);
	fleet_remove_tree(dir);
	return rc;
}

enum cm_rc fleet_sync_admin(struct cm_state *st, struct cm_etcd *e, bool *reopen, struct cm_err *err)
{
	struct cm_fleet *f = st->fleet;
	char key[FLEET_KEY_MAX], dir[PATH_MAX];
	struct cm_etcd_kvs kvs = {0};
	bool won = false;
	enum cm_rc rc;

	*reopen = false;
	rc = cm_fs_path(key, sizeof(key), err, "%sadmin", f->opts->prefix);
	if(rc == CM_OK){
		rc = cm_etcd_range(e, key, NULL, &kvs, err);
	}
	if(rc == CM_OK && kvs.n == 0){
		rc = offer_admin(f, e, key, &won, err);
		if(rc == CM_OK && !won){
			rc = cm_etcd_range(e, key, NULL, &kvs, err);
		}
	}
	if(rc == CM_OK && kvs.n == 1){
		rc = cm_fs_path(dir, sizeof(dir), err, "%s/fleet/in/admin", f->store_dir);
		if(rc == CM_OK){
			fleet_remove_tree(dir);
			rc = cm_record_write(e, f->opts->prefix, (const char *)kvs.v[0].value, kvs.v[0].len, dir, err);
		}
		if(rc == CM_OK){
			rc = cm_store_adopt_admin_ca(f->store_dir, dir, st->key_passphrase, reopen, err);
		}
		fleet_remove_tree(dir);
		if(rc == CM_OK && *reopen){
			cm_log(CM_LOG_NOTICE, "took the fleet's admin CA from etcd; this node's local administrator certificate is new");
		}
	}
	cm_etcd_kvs_free(&kvs);
	return rc;
}
