/* The two threads of the etcd back end: the watch, and the requests
 * (transactions, this node's lease and view, the others' views). Neither
 * calls a mosquitto_* function, logging included: what they have to say
 * goes through the fleet's state to the tick. */
#define _GNU_SOURCE
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "fleet-int.h"
#include "fsutil.h"
#include "json.h"

void fleet_set_health(struct cm_fleet *f, bool *flag, bool ok, const char *why)
{
	pthread_mutex_lock(&f->lock);
	*flag = ok;
	if(!ok && why){
		snprintf(f->last_error, sizeof(f->last_error), "%.*s", (int)sizeof(f->last_error) - 1, why);
	}
	if(f->watching && f->requests_ok){
		f->down_since = 0;
	}else if(f->down_since == 0){
		f->down_since = time(NULL);
	}
	pthread_mutex_unlock(&f->lock);
}

static bool stopping(void *ctx)
{
	struct cm_fleet *f = ctx;
	bool stop;

	pthread_mutex_lock(&f->lock);
	stop = f->stop;
	pthread_mutex_unlock(&f->lock);
	return stop;
}

static void sleep_ms(long ms)
{
	struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};

	while(nanosleep(&ts, &ts) != 0 && errno == EINTR){
	}
}

/* ===================================================================
 * The watch
 * =================================================================== */

struct watch_ctx {
	struct cm_fleet *f;
	bool compacted;
	bool connected;   /* the member accepted the watch */
	bool io_failed;   /* etcd failed under a change of the message */
};

/* Queues the change of one event, and raises *rev to its revision. False
 * when etcd failed under it (a blob could not be read): the watch starts
 * again from before it. */
static bool watch_event(struct cm_fleet *f, const cJSON *ev, int64_t *rev)
{
	const cJSON *type = cJSON_GetObjectItemCaseSensitive(ev, "type");
	bool remove = cJSON_IsString(type) && !strcmp(type->valuestring, "DELETE");
	struct cm_etcd_kv kv;
	struct fleet_change *c;
	const char *name;
	char buf[FLEET_NAME_MAX];

	if(cm_etcd_kv_parse(cJSON_GetObjectItemCaseSensitive(ev, "kv"), &kv, NULL) != CM_OK){
		return true;
	}
	if(kv.mod_revision > *rev){
		*rev = kv.mod_revision;
	}
	name = fleet_map_name(f, kv.key, buf);
	if(name && (remove || fleet_rev_get(&f->delivered, name) != kv.mod_revision)){
		c = fleet_change_make(f, f->wetcd, name, kv.value, kv.len, kv.mod_revision, remove);
		if(c && c->rc == CM_ERR_IO){
			fleet_change_free(c);
			cm_etcd_kv_clear(&kv);
			return false;
		}
		if(c){
			if(remove){
				fleet_rev_del(&f->delivered, name);
			}else if(!fleet_rev_set(&f->delivered, name, kv.mod_revision)){
				c->rc = cm_err_set(&c->err, CM_ERR_NOMEM, "out of memory");
			}
			fleet_queue_change(f, c);
		}
	}
	cm_etcd_kv_clear(&kv);
	return true;
}

static bool on_watch(void *ctx, const cJSON *result)
{
	struct watch_ctx *w = ctx;
	struct cm_fleet *f = w->f;
	const cJSON *ev;
	int64_t rev = 0;

	if(cm_etcd_number(result, "compact_revision") > 0 || cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(result, "canceled"))){
		w->compacted = true;
		return false;
	}
	if(cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(result, "created"))){
		w->connected = true;
		fleet_set_health(f, &f->watching, true, NULL);
		return !stopping(f);
	}
	cJSON_ArrayForEach(ev, cJSON_GetObjectItemCaseSensitive(result, "events")){
		if(!watch_event(f, ev, &rev)){
			w->io_failed = true;
			return false; /* watch_rev stays before this message */
		}
	}
	/* The revision of the events, not the header's: catching up over
	 * more than 1,000 revisions, etcd 3.4 sends them in batches that each
	 * carry the store's current revision in the header, and a watch
	 * resumed from that after the first batch would skip the rest. */
	if(rev > f->watch_rev){
		f->watch_rev = rev;
	}
	return !stopping(f);
}

static bool watch_stopping(void *ctx)
{
	return stopping(((struct watch_ctx *)ctx)->f);
}

static void *watch_main(void *arg)
{
	struct cm_fleet *f = arg;
	struct cm_err err;
	long backoff = 100;
	int failures = 0;

	while(!stopping(f)){
		struct watch_ctx w = {f, false, false, false};
		/* From the revision applied last, not the one after it: etcd
		 * compacted at revision R drops a deletion made at R (its
		 * tombstone) and still lets a watch start at R, so a node that
		 * missed R would never hear of it. Starting one earlier, such a
		 * compaction says "compacted" (a resync); what comes again of
		 * the revision applied is a change already had. */
		enum cm_rc rc = cm_etcd_watch(f->wetcd, f->key_watch, f->end_tenants, f->watch_rev > 0 ? f->watch_rev : 1, on_watch,
				watch_stopping, &w, &err);

		if(w.compacted){
			int64_t rev = 0;
			/* The revision this node had is gone: read the whole state. */
			rc = fleet_resync(f, f->wetcd, &rev, &err);
			if(rc == CM_OK){
				f->watch_rev = rev;
				pthread_mutex_lock(&f->lock);
				f->resyncs++;
				pthread_mutex_unlock(&f->lock);
				backoff = 100;
				continue;
			}
		}
		if(stopping(f)){
			break;
		}
		pthread_mutex_lock(&f->lock);
		f->watch_restarts++;
		pthread_mutex_unlock(&f->lock);
		if(w.connected && !w.io_failed){
			failures = 0;
			backoff = 100;
		}
		/* A member lost: the next one at once, from the same revision;
		 * unreachable only when none answers. */
		if(++failures < cm_etcd_endpoint_count(f->wetcd)){
			continue;
		}
		fleet_set_health(f, &f->watching, false, rc != CM_OK ? err.msg : "the watch ended");
		sleep_ms(backoff);
		backoff = backoff * 2 > 1000 ? 1000 : backoff * 2;
	}
	return NULL;
}

/* ===================================================================
 * The requests
 * =================================================================== */

static enum cm_rc job_key(struct cm_fleet *f, const struct fleet_job *j, char *key, size_t len, struct cm_err *err)
{
	return cm_fs_path(key, len, err, "%s%s", f->opts->prefix, j->rel);
}

/* etcd's record of j's key, applied at the tick as the watch's would be. */
static void refetch(struct cm_fleet *f, struct cm_etcd *e, struct fleet_job *j, const char *key)
{
	struct cm_etcd_kvs kvs;
	struct fleet_change *c;

	j->rc = cm_etcd_range(e, key, NULL, &kvs, &j->err);
	if(j->rc != CM_OK || kvs.n == 0){
		cm_etcd_kvs_free(&kvs);
		return;
	}
	c = fleet_change_make(f, e, j->name, kvs.v[0].value, kvs.v[0].len, kvs.v[0].mod_revision, false);
	cm_etcd_kvs_free(&kvs);
	if(c == NULL || c->rc == CM_ERR_IO){
		j->rc = c ? CM_ERR_IO : CM_ERR_NOMEM;
		fleet_change_free(c);
		return;
	}
	fleet_queue_change(f, c);
	j->won = true;
}

void fleet_run_job(struct cm_fleet *f, struct cm_etcd *e, struct fleet_job *j)
{
	char key[FLEET_KEY_MAX], dir[PATH_MAX];
	char *rec = NULL;
	size_t len = 0;

	j->rc = job_key(f, j, key, sizeof(key), &j->err);
	if(j->rc == CM_OK && j->refetch){
		refetch(f, e, j, key);
		return;
	}
	if(j->rc == CM_OK && !j->remove){
		j->rc = cm_fs_path(dir, sizeof(dir), &j->err, "%s/%s", j->dir, j->rel);
	}
	if(j->rc == CM_OK && !j->remove){
		j->rc = cm_record_build(e, f->opts->prefix, dir, &rec, &len, &j->err);
	}
	if(j->rc == CM_OK){
		j->rc = cm_etcd_txn(e, key, j->staged, rec, len, &j->won, &j->revision, &j->err);
	}
	free(rec);
	if(!j->remove && j->dir[0]){
		fleet_remove_tree(j->dir);
	}
}

/* Renews the lease (a new one when it expired while etcd was away: the
 * keys bound to it are put again). */
static enum cm_rc renew_lease(struct cm_fleet *f, struct cm_err *err)
{
	int64_t ttl = 0;
	enum cm_rc rc = CM_OK;

	if(f->lease != 0 && (rc = cm_etcd_lease_keepalive(f->retcd, f->lease, &ttl, err)) == CM_OK && ttl <= 0){
		f->lease = 0;
	}
	if(rc == CM_OK && f->lease == 0){
		free(f->view_put);
		f->view_put = NULL;
		rc = cm_etcd_lease_grant(f->retcd, FLEET_LEASE_TTL, &f->lease, err);
	}
	return rc;
}

/* Puts one of this node's keys (nodes/ or rejected/) on the lease. */
static enum cm_rc put_own(struct cm_fleet *f, const char *dir, const char *value, struct cm_err *err)
{
	char key[FLEET_KEY_MAX];

	if(cm_fs_path(key, sizeof(key), err, "%s%s%s", f->opts->prefix, dir, f->opts->node_name) != CM_OK){
		return CM_ERR_INVAL;
	}
	return cm_etcd_put(f->retcd, key, value, strlen(value), f->lease, err);
}

/* This node's view and rejected list, when they changed or every
 * FLEET_VIEW_REPUT seconds. */
static enum cm_rc put_view(struct cm_fleet *f, struct cm_err *err)
{
	struct cm_text both = {0};
	char *view, *rejected;
	time_t now = time(NULL);
	enum cm_rc rc = CM_OK;

	pthread_mutex_lock(&f->lock);
	view = f->view ? strdup(f->view) : NULL;
	rejected = f->rejected ? strdup(f->rejected) : NULL;
	pthread_mutex_unlock(&f->lock);
	if(view && rejected && cm_text_append(&both, view, strlen(view)) && cm_text_append(&both, rejected, strlen(rejected))
			&& (f->view_put == NULL || strcmp(both.s, f->view_put) || now - f->view_put_at >= FLEET_VIEW_REPUT)){
		rc = put_own(f, "nodes/", view, err);
		if(rc == CM_OK){
			rc = put_own(f, "rejected/", rejected, err);
		}
		if(rc == CM_OK){
			free(f->view_put);
			f->view_put = both.s;
			f->view_put_at = now;
			both.s = NULL;
		}
	}
	cm_text_free(&both);
	free(view);
	free(rejected);
	return rc;
}

/* The values below prefix<dir> as one JSON array text, into *slot. */
static enum cm_rc read_all(struct cm_fleet *f, const char *dir, char **slot, struct cm_err *err)
{
	char key[FLEET_KEY_MAX], end[FLEET_KEY_MAX];
	struct cm_etcd_kvs kvs;
	struct cm_text t = {0};
	bool ok;
	enum cm_rc rc;

	rc = cm_fs_path(key, sizeof(key), err, "%s%s", f->opts->prefix, dir);
	if(rc == CM_OK){
		rc = cm_etcd_prefix_end(key, end, sizeof(end), err);
	}
	if(rc == CM_OK){
		rc = cm_etcd_range(f->retcd, key, end, &kvs, err);
	}
	if(rc != CM_OK){
		return rc;
	}
	ok = cm_text_append(&t, "[", 1);
	for(size_t k = 0; ok && k < kvs.n; k++){
		ok = (k == 0 || cm_text_append(&t, ",", 1)) && cm_text_append(&t, (char *)kvs.v[k].value, kvs.v[k].len);
	}
	ok = ok && cm_text_append(&t, "]", 1);
	cm_etcd_kvs_free(&kvs);
	if(!ok){
		cm_text_free(&t);
	}
	pthread_mutex_lock(&f->lock);
	free(*slot);
	*slot = t.s;
	pthread_mutex_unlock(&f->lock);
	return CM_OK;
}

static enum cm_rc heartbeat(struct cm_fleet *f, struct cm_err *err)
{
	enum cm_rc rc = renew_lease(f, err);

	if(rc == CM_OK){
		rc = put_view(f, err);
	}
	if(rc == CM_OK){
		rc = read_all(f, "nodes/", &f->nodes, err);
	}
	if(rc == CM_OK){
		rc = read_all(f, "rejected/", &f->others_rejected, err);
	}
	return rc;
}

static struct fleet_job *take_jobs(struct cm_fleet *f, long wait_ms)
{
	struct fleet_job *jobs;
	struct timespec until;

	clock_gettime(CLOCK_REALTIME, &until);
	until.tv_sec += wait_ms / 1000;
	until.tv_nsec += (wait_ms % 1000) * 1000000L;
	if(until.tv_nsec >= 1000000000L){
		until.tv_sec++;
		until.tv_nsec -= 1000000000L;
	}
	pthread_mutex_lock(&f->lock);
	while(f->jobs == NULL && !f->stop && pthread_cond_timedwait(&f->wake, &f->lock, &until) == 0){
	}
	jobs = f->jobs;
	f->jobs = NULL;
	pthread_mutex_unlock(&f->lock);
	return jobs;
}

static void finish_job(struct cm_fleet *f, struct fleet_job *j)
{
	struct fleet_job **pp;

	pthread_mutex_lock(&f->lock);
	for(pp = &f->done; *pp; pp = &(*pp)->next){
	}
	j->next = NULL;
	*pp = j;
	pthread_mutex_unlock(&f->lock);
}

static void *requests_main(void *arg)
{
	struct cm_fleet *f = arg;
	struct cm_err err;
	struct timespec last = {0, 0}, now;

	while(!stopping(f)){
		struct fleet_job *jobs = take_jobs(f, FLEET_HEARTBEAT_MS), *next;

		for(; jobs; jobs = next){
			next = jobs->next;
			fleet_run_job(f, f->retcd, jobs);
			if(jobs->rc == CM_ERR_IO){
				fleet_set_health(f, &f->requests_ok, false, jobs->err.msg);
			}
			if(jobs->refetch && jobs->rc == CM_ERR_IO){
				/* Again once etcd is back. */
				pthread_mutex_lock(&f->lock);
				jobs->next = f->jobs;
				f->jobs = jobs;
				pthread_mutex_unlock(&f->lock);
				sleep_ms(FLEET_HEARTBEAT_MS);
				continue;
			}
			finish_job(f, jobs);
		}
		clock_gettime(CLOCK_MONOTONIC, &now);
		if((now.tv_sec - last.tv_sec) * 1000 + (now.tv_nsec - last.tv_nsec) / 1000000 >= FLEET_HEARTBEAT_MS){
			enum cm_rc rc = heartbeat(f, &err);
			fleet_set_health(f, &f->requests_ok, rc == CM_OK, rc == CM_OK ? NULL : err.msg);
			last = now;
			if(rc == CM_OK && now.tv_sec - f->gc_at >= f->opts->gc_interval){
				f->gc_at = now.tv_sec;
				if(fleet_gc(f, &err) != CM_OK){
					f->gc_at = 0; /* the next heartbeat tries again */
				}
			}
		}
	}
	return NULL;
}

enum cm_rc fleet_threads_start(struct cm_fleet *f, struct cm_err *err)
{
	if(pthread_create(&f->watch_thread, NULL, watch_main, f) != 0){
		return cm_err_set(err, CM_ERR_NOMEM, "cannot start the etcd watch thread");
	}
	if(pthread_create(&f->req_thread, NULL, requests_main, f) != 0){
		pthread_mutex_lock(&f->lock);
		f->stop = true;
		pthread_mutex_unlock(&f->lock);
		pthread_join(f->watch_thread, NULL);
		return cm_err_set(err, CM_ERR_NOMEM, "cannot start the etcd requests thread");
	}
	f->started = true;
	return CM_OK;
}

void fleet_threads_stop(struct cm_fleet *f)
{
	if(!f->started){
		return;
	}
	pthread_mutex_lock(&f->lock);
	f->stop = true;
	pthread_cond_broadcast(&f->wake);
	pthread_mutex_unlock(&f->lock);
	pthread_join(f->req_thread, NULL);
	pthread_join(f->watch_thread, NULL);
	f->started = false;
}
