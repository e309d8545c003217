/* The etcd back end on the broker thread: handing changes on, applying
 * what the watch received, and the start (fleet.h). */
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "fleet-int.h"
#include "fsutil.h"
#include "log.h"
#include "registry.h"
#include "store.h"

/* What a node that is cut off from etcd answers a change. */
static enum cm_rc refuse_offline(struct cm_fleet *f, struct cm_err *err)
{
	char why[256];

	pthread_mutex_lock(&f->lock);
	snprintf(why, sizeof(why), "%s", f->last_error[0] ? f->last_error : "not connected yet");
	pthread_mutex_unlock(&f->lock);
	return cm_err_set(err, CM_ERR_IO, "etcd is unreachable, changes are refused until it is back (this node serves revision %lld): %s",
			(long long)f->applied_rev, why);
}

static enum cm_rc submit(struct cm_state *st, struct fleet_job *j, struct cm_err *err)
{
	struct cm_fleet *f = st->fleet;

	(void)err;
	j->owner = st->commit_owner;
	j->staged = fleet_rev_get(&f->applied, j->name);
	pthread_mutex_lock(&f->lock);
	j->next = f->jobs;
	f->jobs = j;
	pthread_cond_broadcast(&f->wake);
	pthread_mutex_unlock(&f->lock);
	if(st->commit_owner){
		st->commits_submitted++;
	}else{
		st->unowned_commit = &j->owner;
	}
	f->jobs_sent++;
	return CM_OK;
}

static struct fleet_job *job_new(const char *who, const char *command, const char *name, const char *id, struct cm_err *err)
{
	struct fleet_job *j = calloc(1, sizeof(*j));

	if(j == NULL){
		cm_err_set(err, CM_ERR_NOMEM, "out of memory");
		return NULL;
	}
	snprintf(j->who, sizeof(j->who), "%s", who);
	snprintf(j->command, sizeof(j->command), "%s", command);
	snprintf(j->name, sizeof(j->name), "%s", name);
	snprintf(j->id, sizeof(j->id), "%s", id ? id : "");
	if(fleet_name_slot(name) >= 0){
		snprintf(j->rel, sizeof(j->rel), "slots/%s", name + strlen(FLEET_SLOT_PREFIX));
	}else{
		snprintf(j->rel, sizeof(j->rel), "tenants/%s", name);
	}
	return j;
}

static enum cm_rc fleet_put(struct cm_state *st, const char *who, const char *command, struct cm_tenant *t, const char *id, struct cm_err *err)
{
	struct cm_fleet *f = st->fleet;
	struct fleet_job *j;
	enum cm_rc rc;

	if(!cm_fleet_connected(st)){
		return refuse_offline(f, err);
	}
	rc = cm_store_check_tenant(st->store, t, err);
	if(rc != CM_OK){
		return rc;
	}
	j = job_new(who, command, t->name, id, err);
	if(j == NULL){
		return CM_ERR_NOMEM;
	}
	rc = cm_fs_path(j->dir, sizeof(j->dir), err, "%s/fleet/out/%llu", f->store_dir, (unsigned long long)++f->stage_seq);
	if(rc == CM_OK){
		rc = cm_store_stage_tenant(st->store, t, j->dir, err);
	}
	if(rc != CM_OK){
		fleet_remove_tree(j->dir);
		free(j);
		return rc;
	}
	return submit(st, j, err);
}

static enum cm_rc fleet_delete(struct cm_state *st, const char *who, const char *command, const char *name, struct cm_err *err)
{
	struct fleet_job *j;

	if(!cm_fleet_connected(st)){
		return refuse_offline(st->fleet, err);
	}
	if(!strcmp(name, CM_DEFAULT_TENANT)){
		return cm_err_set(err, CM_ERR_INVAL, "the default tenant serves unknown host names and cannot be deleted");
	}
	if(cm_store_find_tenant(st->store, name) == NULL){
		return cm_err_set(err, CM_ERR_INVAL, "no tenant '%s'", name);
	}
	j = job_new(who, command, name, NULL, err);
	if(j == NULL){
		return CM_ERR_NOMEM;
	}
	j->remove = true;
	return submit(st, j, err);
}

static enum cm_rc fleet_slot_writable(struct cm_state *st, struct cm_err *err)
{
	return cm_fleet_connected(st) ? CM_OK : refuse_offline(st->fleet, err);
}

/* A scratch base whose slots/<slot>/ holds links to the slot's files. */
static enum cm_rc stage_slot(const struct cm_fleet *f, enum cm_slot_id slot, const char *base, struct cm_err *err)
{
	char from[PATH_MAX], to[PATH_MAX];
	enum cm_rc rc;

	if(cm_fs_path(from, sizeof(from), err, "%s/slots/%s", f->store_dir, cm_slot_name(slot)) != CM_OK
			|| cm_fs_path(to, sizeof(to), err, "%s/slots", base) != CM_OK){
		return CM_ERR_INVAL;
	}
	rc = cm_fs_mkdir(base, 0700, err);
	if(rc == CM_OK){
		rc = cm_fs_mkdir(to, 0700, err);
	}
	if(rc == CM_OK && cm_fs_path(to, sizeof(to), err, "%s/slots/%s", base, cm_slot_name(slot)) != CM_OK){
		rc = CM_ERR_INVAL;
	}
	return rc == CM_OK ? cm_store_link_tree(from, to, err) : rc;
}

/* The slot, already changed in the store, goes to etcd; a change made
 * concurrently on another node answers "changed concurrently", and its
 * state replaces this one's when it is applied. */
static void fleet_slot_changed(struct cm_state *st, const char *who, const char *command, enum cm_slot_id slot)
{
	struct cm_fleet *f = st->fleet;
	char name[FLEET_NAME_MAX];
	struct cm_err err;
	struct fleet_job *j;

	snprintf(name, sizeof(name), FLEET_SLOT_PREFIX "%s", cm_slot_name(slot));
	j = job_new(who, command, name, NULL, &err);
	if(j && (cm_fs_path(j->dir, sizeof(j->dir), &err, "%s/fleet/out/%llu", f->store_dir, (unsigned long long)++f->stage_seq) != CM_OK
			|| stage_slot(f, slot, j->dir, &err) != CM_OK)){
		fleet_remove_tree(j->dir);
		free(j);
		j = NULL;
	}
	if(j == NULL){
		cm_log(CM_LOG_WARNING, "slot %s changed here but is not sent to etcd: %s", cm_slot_name(slot), err.msg);
		return;
	}
	(void)submit(st, j, &err);
}

static const struct cm_backend etcd_backend = {"etcd", fleet_put, fleet_delete, fleet_slot_writable, fleet_slot_changed};

/* ===================================================================
 * The tick
 * =================================================================== */

static void apply_one(struct cm_state *st, struct fleet_change *c)
{
	struct cm_fleet *f = st->fleet;
	struct cm_err err = {{0}};
	enum cm_rc rc = c->rc;

	/* Older than what this node applied (a slot fetched again while a
	 * newer change came through the watch): nothing to do. */
	if(c->revision < fleet_rev_get(&f->applied, c->name)){
		return;
	}
	if(rc == CM_OK && c->slot >= 0){
		rc = c->remove ? CM_OK : cm_store_replace_slot(st->store, (enum cm_slot_id)c->slot, &c->loaded, c->base, &err);
		if(rc == CM_OK && !c->remove){
			cm_log(CM_LOG_NOTICE, "fleet | apply | slot=%s revision=%lld", cm_slot_name((enum cm_slot_id)c->slot), (long long)c->revision);
		}
	}else if(rc == CM_OK && c->remove){
		rc = cm_store_find_tenant(st->store, c->name) ? cm_registry_apply_delete(st, "fleet", c->name, c->revision, &err) : CM_OK;
	}else if(rc == CM_OK){
		rc = cm_store_adopt_files(st->store, c->name, c->base, &err);
		if(rc == CM_OK){
			rc = cm_registry_apply_tenant(st, "fleet", c->t, c->revision, &err);
			c->t = NULL; /* taken, or freed */
		}
	}else{
		err = c->err;
	}
	if(rc != CM_OK){
		f->apply_errors++;
		snprintf(f->last_apply_error, sizeof(f->last_apply_error), "tenant %s at revision %lld: %.150s", c->name, (long long)c->revision, err.msg);
		cm_log(CM_LOG_WARNING, "cannot apply etcd's change of tenant %s at revision %lld: %s", c->name, (long long)c->revision, err.msg);
	}
	if(c->remove){
		fleet_rev_del(&f->applied, c->name);
	}else if(!fleet_rev_set(&f->applied, c->name, c->revision)){
		cm_log(CM_LOG_WARNING, "out of memory: the revision of tenant %s is not recorded", c->name);
	}
	if(c->revision > f->applied_rev){
		f->applied_rev = c->revision;
	}
	f->applied_dirty = true;
}

void fleet_apply_changes(struct cm_state *st)
{
	struct cm_fleet *f = st->fleet;
	struct fleet_change *c, *next;

	pthread_mutex_lock(&f->lock);
	c = f->changes;
	f->changes = NULL;
	pthread_mutex_unlock(&f->lock);
	for(; c; c = next){
		next = c->next;
		apply_one(st, c);
		fleet_change_free(c);
	}
	if(f->applied_dirty){
		fleet_applied_save(f);
	}
}

/* A slot whose change did not reach etcd goes back to etcd's state (the
 * requests thread fetches it, again until etcd answers). */
static void refetch_slot(struct cm_state *st, const char *name)
{
	struct cm_fleet *f = st->fleet;
	struct cm_err err;
	struct fleet_job *j = job_new("certmgr", "refetch", name, NULL, &err);

	if(j == NULL){
		cm_log(CM_LOG_WARNING, "slot %s differs from etcd's until its next change: %s", name, err.msg);
		return;
	}
	j->refetch = true;
	pthread_mutex_lock(&f->lock);
	j->next = f->jobs;
	f->jobs = j;
	pthread_cond_broadcast(&f->wake);
	pthread_mutex_unlock(&f->lock);
}

static void end_job(struct cm_state *st, struct fleet_job *j)
{
	struct cm_fleet *f = st->fleet;
	struct cm_err err = j->err;
	enum cm_rc rc = j->rc;

	bool slot = fleet_name_slot(j->name) >= 0;
	const char *what = slot ? j->name + strlen(FLEET_SLOT_PREFIX) : j->name;

	if(j->refetch){
		if(rc == CM_OK && j->won){
			cm_log(CM_LOG_NOTICE, "slot %s: etcd's state fetched again", what);
		}
		return;
	}
	if(slot && (rc != CM_OK || !j->won)){
		refetch_slot(st, j->name);
	}
	if(rc == CM_OK && !j->won){
		f->conflicts++;
		rc = cm_err_set(&err, CM_ERR_INVAL, "%s '%s' changed concurrently, retry (%s)", slot ? "slot" : "tenant", what,
				slot ? "the other change replaces this one on every node" : "nothing was changed");
	}else if(rc == CM_ERR_IO){
		rc = cm_err_set(&err, CM_ERR_IO, "etcd is unreachable, changes are refused until it is back (%s): %.300s",
				slot ? "the slot goes back to etcd's state then" : "nothing was changed", j->err.msg);
	}
	if(rc == CM_OK){
		cm_log(CM_LOG_NOTICE, "%s | %s | %s=%s%s%s revision=%lld", j->who, j->command, slot ? "slot" : "tenant", what,
				j->id[0] ? " id=" : "", j->id, (long long)j->revision);
	}else{
		cm_log(CM_LOG_WARNING, "%s | %s | %s=%s: not changed in etcd: %s", j->who, j->command, slot ? "slot" : "tenant", what, err.msg);
	}
	if(j->owner && f->done_fn){
		f->done_fn(st, j->owner, rc, &err);
	}
}

/* A change etcd took is answered once this node has applied it too (or
 * after FLEET_SETTLE seconds, when its watch lags): the command's next
 * read on this node shows it. */
#define FLEET_SETTLE 5

static bool settled(const struct cm_fleet *f, const struct fleet_job *j, time_t now)
{
	return j->rc != CM_OK || !j->won || f->applied_rev >= j->revision || now - j->finished >= FLEET_SETTLE;
}

void cm_fleet_tick(struct cm_state *st)
{
	struct cm_fleet *f = st->fleet;
	struct fleet_job *j, *next, **pp;
	time_t now = time(NULL);

	if(f == NULL){
		return;
	}
	st->unowned_commit = NULL;
	fleet_apply_changes(st);
	pthread_mutex_lock(&f->lock);
	for(pp = &f->settling; *pp; pp = &(*pp)->next){
	}
	*pp = f->done;
	f->done = NULL;
	pthread_mutex_unlock(&f->lock);
	for(pp = &f->settling; (j = *pp) != NULL;){
		if(j->finished == 0){
			j->finished = now;
		}
		if(!settled(f, j, now)){
			pp = &j->next;
			continue;
		}
		next = j->next;
		*pp = next;
		end_job(st, j);
		free(j);
	}
	fleet_view_tick(st, now);
}

/* ===================================================================
 * Start and stop
 * =================================================================== */

static enum cm_rc fleet_new(struct cm_state *st, struct cm_fleet **out, struct cm_err *err)
{
	const struct cm_fleet_opts *o = &st->fleet_opts;
	struct cm_etcd_opts eo = {o->endpoints, o->cafile, o->certfile, o->keyfile, 2000};
	struct cm_fleet *f = calloc(1, sizeof(*f));
	char path[PATH_MAX];
	enum cm_rc rc;

	*out = NULL;
	if(f == NULL || (f->store_dir = strdup(st->store_dir)) == NULL){
		free(f);
		return cm_err_set(err, CM_ERR_NOMEM, "out of memory");
	}
	f->opts = o;
	pthread_mutex_init(&f->lock, NULL);
	pthread_cond_init(&f->wake, NULL);
	f->requests_ok = true;
	*out = f;
	f->pass = strdup(st->key_passphrase);
	if(f->pass == NULL){
		return cm_err_set(err, CM_ERR_NOMEM, "out of memory");
	}
	rc = cm_fs_path(f->key_watch, sizeof(f->key_watch), err, "%sslots/", o->prefix);
	if(rc == CM_OK){
		rc = cm_fs_path(f->key_tenants, sizeof(f->key_tenants), err, "%stenants/", o->prefix);
	}
	if(rc == CM_OK){
		rc = cm_etcd_prefix_end(f->key_tenants, f->end_tenants, sizeof(f->end_tenants), err);
	}
	if(rc == CM_OK){
		rc = cm_etcd_new(&eo, &f->wetcd, err);
	}
	if(rc == CM_OK){
		rc = cm_etcd_new(&eo, &f->retcd, err);
	}
	/* The scratch directories: what a crash left there is dropped. */
	for(int i = 0; rc == CM_OK && i < 3; i++){
		static const char *const sub[] = {"", "/in", "/out"};
		rc = cm_fs_path(path, sizeof(path), err, "%s/fleet%s", f->store_dir, sub[i]);
		if(rc == CM_OK && i > 0){
			fleet_remove_tree(path);
		}
		if(rc == CM_OK){
			rc = cm_fs_mkdir(path, 0700, err);
		}
	}
	return rc;
}

/* The default tenant put in etcd when it has none: the first node of a
 * fleet brings its own. */
static enum cm_rc seed_default(struct cm_state *st, struct cm_err *err)
{
	struct cm_fleet *f = st->fleet;
	struct cm_etcd_kvs kvs;
	struct fleet_job *j;
	struct cm_tenant *t;
	enum cm_rc rc;

	rc = cm_etcd_range(f->retcd, f->key_tenants, f->end_tenants, &kvs, err);
	if(rc != CM_OK){
		return rc;
	}
	for(size_t i = 0; i < kvs.n; i++){
		const char *name = fleet_key_name(f, kvs.v[i].key);
		if(name && !strcmp(name, CM_DEFAULT_TENANT)){
			cm_etcd_kvs_free(&kvs);
			return CM_OK;
		}
	}
	cm_etcd_kvs_free(&kvs);
	t = cm_tenant_clone(cm_store_find_tenant(st->store, CM_DEFAULT_TENANT));
	j = t ? job_new("certmgr", "seedDefault", CM_DEFAULT_TENANT, NULL, err) : NULL;
	rc = j ? cm_fs_path(j->dir, sizeof(j->dir), err, "%s/fleet/out/seed", f->store_dir) : cm_err_set(err, CM_ERR_NOMEM, "out of memory");
	if(rc == CM_OK){
		rc = cm_store_stage_tenant(st->store, t, j->dir, err);
	}
	if(rc == CM_OK){
		fleet_run_job(f, f->retcd, j);
		rc = j->rc;
	}
	if(j){
		fleet_remove_tree(j->dir);
	}
	free(j);
	cm_tenant_free(&t);
	return rc;
}

/* Each slot put in etcd when it has none: the first node's certificates
 * serve the fleet. */
static enum cm_rc seed_slots(struct cm_state *st, struct cm_err *err)
{
	struct cm_fleet *f = st->fleet;
	enum cm_rc rc = CM_OK;

	for(int i = 0; rc == CM_OK && i < CM_SLOT_COUNT; i++){
		char name[FLEET_NAME_MAX], key[FLEET_KEY_MAX];
		struct cm_etcd_kvs kvs = {0};
		struct fleet_job *j;

		snprintf(name, sizeof(name), FLEET_SLOT_PREFIX "%s", cm_slot_name((enum cm_slot_id)i));
		if((j = job_new("certmgr", "seedSlot", name, NULL, err)) == NULL){
			return CM_ERR_NOMEM;
		}
		rc = cm_fs_path(key, sizeof(key), err, "%s%s", f->opts->prefix, j->rel);
		if(rc == CM_OK){
			rc = cm_etcd_range(f->retcd, key, NULL, &kvs, err);
		}
		if(rc == CM_OK && kvs.n == 0 && (rc = cm_fs_path(j->dir, sizeof(j->dir), err, "%s/fleet/out/seed-%d", f->store_dir, i)) == CM_OK
				&& (rc = stage_slot(f, (enum cm_slot_id)i, j->dir, err)) == CM_OK){
			fleet_run_job(f, f->retcd, j);
			rc = j->rc;
			if(rc != CM_OK){
				*err = j->err;
			}
		}
		cm_etcd_kvs_free(&kvs);
		if(j->dir[0]){
			fleet_remove_tree(j->dir);
		}
		free(j);
	}
	return rc;
}

/* At start: etcd's state into the store, before the broker serves. */
static enum cm_rc initial_sync(struct cm_state *st, struct cm_err *err)
{
	struct cm_fleet *f = st->fleet;
	bool reopen = false;
	int64_t rev = 0;
	enum cm_rc rc;

	rc = fleet_sync_admin(st, f->retcd, &reopen, err);
	if(rc == CM_OK && reopen){
		cm_store_free(&st->store);
		rc = cm_store_open_ex(st->store_dir, st->hostname, st->key_passphrase, &st->store, &reopen, err);
		if(rc != CM_OK){
			return rc == CM_ERR_IO ? CM_ERR_INVAL : rc; /* not "etcd down": refuse to start */
		}
	}
	if(rc == CM_OK){
		rc = seed_slots(st, err);
	}
	if(rc == CM_OK){
		rc = seed_default(st, err);
	}
	if(rc == CM_OK){
		rc = fleet_resync(f, f->retcd, &rev, err);
	}
	if(rc == CM_OK){
		f->watch_rev = rev;
		fleet_apply_changes(st);
	}
	return rc;
}

enum cm_rc cm_fleet_start(struct cm_state *st, cm_fleet_done_fn done, struct cm_err *err)
{
	struct cm_fleet *f;
	enum cm_rc rc;

	if(!st->fleet_opts.etcd){
		return CM_OK;
	}
	rc = fleet_new(st, &st->fleet, err);
	if(rc != CM_OK){
		return rc;
	}
	f = st->fleet;
	f->done_fn = done;
	fleet_applied_load(f);
	f->delivered = fleet_rev_copy(&f->applied);
	/* A tenant of the cache etcd never gave: -1, so that the first read
	 * of etcd's state replaces it, or drops it when etcd has none. */
	for(const struct cm_tenant *t = cm_store_first_tenant(st->store); t; t = cm_store_next_tenant(t)){
		if(fleet_rev_get(&f->delivered, t->name) == 0 && !fleet_rev_set(&f->delivered, t->name, -1)){
			return cm_err_set(err, CM_ERR_NOMEM, "out of memory");
		}
	}
	for(int i = 0; i < CM_SLOT_COUNT; i++){
		char name[FLEET_NAME_MAX];
		snprintf(name, sizeof(name), FLEET_SLOT_PREFIX "%s", cm_slot_name((enum cm_slot_id)i));
		if(fleet_rev_get(&f->delivered, name) == 0 && !fleet_rev_set(&f->delivered, name, -1)){
			return cm_err_set(err, CM_ERR_NOMEM, "out of memory");
		}
	}
	f->watch_rev = f->applied_rev;
	rc = initial_sync(st, err);
	if(rc == CM_ERR_IO){
		cm_log(CM_LOG_WARNING, "etcd is unreachable at start (%s): serving this node's cache of revision %lld until it is back", err->msg,
				(long long)f->applied_rev);
		fleet_set_health(f, &f->requests_ok, false, err->msg);
		rc = CM_OK;
	}else if(rc == CM_OK){
		cm_log(CM_LOG_NOTICE, "etcd %s: node %s in step at revision %lld", cm_etcd_endpoint(f->retcd), st->fleet_opts.node_name,
				(long long)f->applied_rev);
		/* In step: changes are taken from the first command on; the watch
		 * thread says otherwise if it cannot connect. */
		f->watching = true;
	}
	if(rc == CM_OK){
		rc = fleet_threads_start(f, err);
	}
	if(rc == CM_OK){
		st->backend = &etcd_backend;
	}
	return rc;
}

void cm_fleet_stop(struct cm_state *st)
{
	struct cm_fleet *f = st->fleet;
	struct fleet_job *j, *next;

	if(f == NULL){
		return;
	}
	fleet_threads_stop(f);
	for(j = f->jobs; j; j = next){
		next = j->next;
		fleet_remove_tree(j->dir);
		free(j);
	}
	for(j = f->done; j; j = next){
		next = j->next;
		free(j);
	}
	for(j = f->settling; j; j = next){
		next = j->next;
		free(j);
	}
	while(f->changes){
		struct fleet_change *c = f->changes;
		f->changes = c->next;
		fleet_change_free(c);
	}
	fleet_rev_free(&f->applied);
	fleet_rev_free(&f->delivered);
	fleet_rev_free(&f->gc_unnamed);
	cm_etcd_free(&f->wetcd);
	cm_etcd_free(&f->retcd);
	free(f->view);
	free(f->view_put);
	free(f->rejected);
	free(f->nodes);
	free(f->others_rejected);
	free(f->store_dir);
	if(f->pass){
		cm_pki_free_secret(f->pass, strlen(f->pass));
	}
	pthread_mutex_destroy(&f->lock);
	pthread_cond_destroy(&f->wake);
	free(f);
	st->fleet = NULL;
	st->backend = NULL;
}

int64_t cm_fleet_applied(const struct cm_state *st)
{
	return st->fleet ? st->fleet->applied_rev : 0;
}

bool cm_fleet_connected(const struct cm_state *st)
{
	struct cm_fleet *f = st->fleet;
	bool ok;

	if(f == NULL){
		return false;
	}
	pthread_mutex_lock(&f->lock);
	ok = f->watching && f->requests_ok;
	pthread_mutex_unlock(&f->lock);
	return ok;
}
