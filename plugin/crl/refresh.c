#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cjson/cJSON.h>

#include "metrics.h"
#include "fetch.h"
#include "fsutil.h"
#include "json.h"
#include "log.h"
#include "refresh.h"
#include "registry.h"
#include "revocation.h"
#include "worker.h"
#include "store.h"

/* Copies as much of src as fits, always terminated. */
static void copy_trunc(char *dst, size_t len, const char *src)
{
	size_t n = strlen(src);

	if(n >= len){
		n = len - 1;
	}
	memcpy(dst, src, n);
	dst[n] = '\0';
}

struct job {
	char tenant[CM_TENANT_NAME_MAX + 1];
	char ca_id[CM_ID_LEN + 1];
	char url[2048];
	char who[256];
	/* A command waiting for the download (cm_refresh_now), or NULL. */
	cm_refresh_done_fn done;
	void *ctx;
	bool learned; /* from the distribution point of a certificate the CA issued */
	char crl_file[96]; /* what the worker wrote in crls/, "" for none */
};

/* Removes the file the worker wrote for a CRL that was not committed. */
static void drop_written(const struct cm_state *st, struct job *j)
{
	char path[PATH_MAX];

	if(j->crl_file[0] && cm_fs_path(path, sizeof(path), NULL, "%s/tenants/%s/crls/%s", st->store_dir, j->tenant, j->crl_file) == CM_OK){
		(void)unlink(path);
	}
	j->crl_file[0] = '\0';
}

const char *cm_refresh_url(const struct cm_ca *ca, char *buf, size_t len)
{
	if(ca->crl_url){
		return ca->crl_url;
	}
	if(ca->crl_learned_url){
		return ca->crl_learned_url;
	}
	if(!strcmp(ca->crl_source, "distribution-point") && cm_crl_distribution_point(ca->cert, buf, len)){
		return buf;
	}
	return NULL;
}

/* When the next download of a good CRL is due: at the interval, and
 * before its nextUpdate by a tenth of its validity (at least a minute). */
static time_t schedule(const struct cm_state *st, const struct cm_ca *ca, time_t now)
{
	time_t due = now + st->refresh_interval;

	if(ca->crl && ca->crl->next_update){
		time_t span = ca->crl->next_update - ca->crl->this_update;
		time_t margin = span / 10 > 60 ? span / 10 : 60;
		if(ca->crl->next_update - margin < due){
			due = ca->crl->next_update - margin;
		}
	}
	return due > now ? due : now + 1;
}

static time_t backoff(const struct cm_state *st, int failures, time_t now)
{
	time_t wait = st->retry_min;
	int i;

	for(i = 1; i < failures && wait < st->retry_max; i++){
		wait *= 2;
	}
	if(wait > st->retry_max){
		wait = st->retry_max;
	}
	/* Up to a quarter more, so that brokers restarted together do not
	 * knock on the CRL server in step. */
	return now + wait + (wait >= 4 ? (time_t)(random() % (wait / 4 + 1)) : 0);
}

static const struct cm_ca *live_entry(struct cm_state *st, const struct job *j, const struct cm_tenant **t)
{
	*t = cm_store_find_tenant(st->store, j->tenant);
	return *t ? cm_tenant_find_ca(*t, j->ca_id) : NULL;
}

static void finish(struct cm_state *st, struct job *j, enum cm_rc rc, const struct cm_err *err)
{
	if(j->done){
		const struct cm_tenant *t;
		const struct cm_ca *e = live_entry(st, j, &t);
		j->done(st, j->ctx, rc, err, rc == CM_OK ? e : NULL);
	}
	free(j);
}

static void failed(struct cm_state *st, struct job *j, const char *error)
{
	const struct cm_tenant *t;
	const struct cm_ca *e = live_entry(st, j, &t);
	struct cm_err err;
	time_t now = time(NULL);

	if(e){
		struct cm_crl_schedule *s = cm_store_crl_schedule(st->store, e);
		s->in_flight = false;
		s->failures++;
		s->failures_total++;
		s->attempt = now;
		s->next_attempt = backoff(st, s->failures, now);
		copy_trunc(s->error, sizeof(s->error), error);
		cm_log(CM_LOG_WARNING, "CRL of CA %s (tenant %s) not fetched from %s: %s; next attempt in %lld s",
				e->id, t->name, j->url, error, (long long)(s->next_attempt - now));
		if(e->crl && e->crl->next_update && e->crl->next_update < now && e->stale_fail_open){
			cm_log(CM_LOG_WARNING, "accepting the devices of CA %s (tenant %s) on a CRL past its nextUpdate (fail-open)", e->id, t->name);
		}
	}
	drop_written(st, j);
	cm_err_set(&err, CM_ERR_IO, "the CRL could not be refreshed from %s: %s", j->url, error);
	finish(st, j, CM_ERR_IO, &err);
}

/* A downloaded CRL that differs from the one in force (another
 * thisUpdate or another number of serials). */
static void crl_event(struct cm_state *st, const struct job *j, const struct cm_crl *crl)
{
	cJSON *e = cJSON_CreateObject();

	if(e && cJSON_AddStringToObject(e, "tenant", j->tenant) && cJSON_AddStringToObject(e, "ca", j->ca_id)
			&& cJSON_AddStringToObject(e, "url", j->url) && cm_json_add_time(e, "thisUpdate", crl->this_update)
			&& (crl->next_update == 0 || cm_json_add_time(e, "nextUpdate", crl->next_update))
			&& cJSON_AddNumberToObject(e, "revoked", (double)crl->count)){
		cm_event(st, "crlUpdated", e);
	}else{
		cJSON_Delete(e);
	}
}

/* Puts a downloaded CRL on e (of a staged copy of its tenant) and
 * records the success. Takes crl on success; on failure err says why
 * and crl is the caller's still. */
static enum cm_rc take_crl(const struct cm_state *st, const struct job *j, struct cm_ca *e, struct cm_crl *crl, time_t now,
		struct cm_err *err)
{
	char *url = NULL;

	if(crl->delta){
		return cm_err_set(err, CM_ERR_INVAL, "the URL serves a delta CRL, not the full CRL");
	}
	if(j->learned && (url = strdup(j->url)) == NULL){
		return cm_err_set(err, CM_ERR_NOMEM, "out of memory");
	}
	if(cm_ca_put_crl(e, crl, j->crl_file, err) != CM_OK){
		/* An older CRL than the one in force (a replay): kept the
		 * current one, and the refusal shows in the CRL's health. */
		free(url);
		return CM_ERR_INVAL;
	}
	if(j->learned){
		free(e->crl_learned_url);
		e->crl_learned_url = url;
		snprintf(e->crl_source, sizeof(e->crl_source), "learned");
	}else if(e->crl_source[0] == '\0' || !strcmp(e->crl_source, "upload")){
		snprintf(e->crl_source, sizeof(e->crl_source), "url");
	}
	e->sched.attempt = e->sched.success = now;
	e->sched.failures = 0;
	e->sched.error[0] = '\0';
	e->sched.in_flight = false;
	e->sched.stale_seen = false;
	e->sched.next_attempt = schedule(st, e, now);
	return CM_OK;
}

/* True when the job ended here: the plugin stopping, or the download or
 * the CRL's check failed (counted for the backoff). */
static bool settled(struct cm_state *st, struct job *j, enum cm_rc rc, const char *error, bool aborted)
{
	if(aborted){
		free(j);
		return true;
	}
	if(rc != CM_OK){
		failed(st, j, error);
		return true;
	}
	return false;
}

static void apply(struct cm_state *st, void *ctx, struct cm_crl *crl, enum cm_rc rc, const char *error, bool aborted)
{
	struct job *j = ctx;
	const struct cm_tenant *cur;
	struct cm_tenant *t;
	struct cm_ca *e;
	struct cm_err err;
	bool changed;

	if(settled(st, j, rc, error, aborted)){
		return;
	}
	if(live_entry(st, j, &cur) == NULL || (t = cm_tenant_clone(cur)) == NULL){
		cm_crl_free(&crl);
		drop_written(st, j);
		cm_err_set(&err, CM_ERR_INVAL, "the CA or its tenant was removed meanwhile");
		finish(st, j, CM_ERR_INVAL, &err);
		return;
	}
	e = cm_tenant_ca(t, j->ca_id);
	changed = e->crl == NULL || e->crl->this_update != crl->this_update || e->crl->count != crl->count;
	if(take_crl(st, j, e, crl, time(NULL), &err) != CM_OK){
		cm_crl_free(&crl);
		cm_tenant_free(&t);
		failed(st, j, err.msg);
		return;
	}
	/* Writes the tenant, logs, queues the disconnects of the devices
	 * now revoked. */
	rc = cm_registry_put_tenant(st, j->who[0] ? j->who : "certmgr", j->learned ? "learnCRL" : "refreshCRL", t, j->ca_id, &err);
	if(rc != CM_OK){
		failed(st, j, err.msg);
		return;
	}
	if(changed){
		crl_event(st, j, crl); /* the tenant's now */
	}
	/* The entry put, not the store's: a replicating back end commits it
	 * when it applies it. t lives until the next tick either way. */
	if(j->done){
		j->done(st, j->ctx, CM_OK, NULL, cm_tenant_find_ca(t, j->ca_id));
	}
	free(j);
}

/* A large CRL back from the worker. */
static void checked(struct cm_state *st, void *ctx, struct cm_crl_check *res, bool aborted)
{
	struct job *j = ctx;
	struct cm_crl *crl = res->crl;

	memcpy(j->crl_file, res->file, sizeof(j->crl_file));
	if(aborted){
		drop_written(st, j);
		free(j);
		return;
	}
	res->crl = NULL; /* apply takes it */
	apply(st, j, crl, res->rc, res->rc == CM_OK ? NULL : res->err.msg, false);
}

static void fetched(struct cm_state *st, void *ctx, enum cm_rc rc, unsigned char **pbody, size_t len, const char *error, bool aborted)
{
	struct job *j = ctx;
	const struct cm_tenant *t;
	const struct cm_ca *e;
	struct cm_crl *crl = NULL;
	struct cm_err err = {{0}};

	if(settled(st, j, rc, error, aborted)){
		return;
	}
	e = live_entry(st, j, &t);
	if(e == NULL){
		cm_err_set(&err, CM_ERR_INVAL, "the CA or its tenant was removed meanwhile");
		finish(st, j, CM_ERR_INVAL, &err);
		return;
	}
	if(len > CM_CRL_WORKER_THRESHOLD){
		char dir[PATH_MAX];
		STACK_OF(X509) *cands = sk_X509_new_null();
		/* Verified, indexed and written under a name of its own on the
		 * worker (the CRL in force stays until tenant.json names the new
		 * one), which takes the downloaded buffer as it is: no copy. */
		if(cands == NULL || !sk_X509_push(cands, e->cert)){
			free(*pbody);
			cm_err_set(&err, CM_ERR_NOMEM, "out of memory");
		}else if(cm_fs_path(dir, sizeof(dir), &err, "%s/tenants/%s/crls", st->store_dir, t->name) != CM_OK){
			free(*pbody);
		}else if(cm_worker_check_crl(st, *pbody, len, false, st->fetch_opts.max_size, cands, false, dir, checked, j, &err) == CM_OK){
			err.msg[0] = '\0';
		}
		*pbody = NULL;
		sk_X509_free(cands);
		if(err.msg[0]){
			failed(st, j, err.msg);
		}
		return;
	}
	rc = cm_crl_load(*pbody, len, st->fetch_opts.max_size, e->cert, time(NULL), &crl, &err);
	apply(st, j, crl, rc, rc == CM_OK ? NULL : err.msg, false);
}

/* learned_url: download from there (the CA has no URL of its own yet). */
static enum cm_rc start(struct cm_state *st, const struct cm_tenant *t, const struct cm_ca *e, const char *who, cm_refresh_done_fn done,
		void *ctx, const char *learned_url, struct cm_err *err)
{
	char buf[2048];
	const char *url = learned_url ? learned_url : cm_refresh_url(e, buf, sizeof(buf));
	struct cm_crl_schedule *s = cm_store_crl_schedule(st->store, e);
	struct job *j;
	enum cm_rc rc;

	if(url == NULL){
		return cm_err_set(err, CM_ERR_INVAL, "CA %s has no CRL URL to refresh from (give one with modifyCA crlUrl, or upload the CRL)", e->id);
	}
	if(s->in_flight){
		return cm_err_set(err, CM_ERR_INVAL, "a download of this CA's CRL is already under way");
	}
	j = calloc(1, sizeof(*j));
	if(j == NULL){
		return cm_err_set(err, CM_ERR_NOMEM, "out of memory");
	}
	snprintf(j->tenant, sizeof(j->tenant), "%s", t->name);
	memcpy(j->ca_id, e->id, sizeof(j->ca_id));
	snprintf(j->url, sizeof(j->url), "%s", url);
	snprintf(j->who, sizeof(j->who), "%s", who ? who : "");
	j->done = done;
	j->ctx = ctx;
	j->learned = learned_url != NULL;
	rc = cm_fetch_start(st, j->url, fetched, j, err);
	if(rc != CM_OK){
		free(j);
		return rc;
	}
	s->in_flight = true;
	s->attempt = time(NULL);
	return CM_OK;
}

enum cm_rc cm_refresh_now(struct cm_state *st, const char *who, const char *tenant, const char *ca_id, cm_refresh_done_fn done, void *ctx,
		struct cm_err *err)
{
	const struct cm_tenant *t = cm_store_find_tenant(st->store, tenant);
	const struct cm_ca *e = t ? cm_tenant_find_ca(t, ca_id) : NULL;

	if(e == NULL || e->pinned){
		return cm_err_set(err, CM_ERR_INVAL, "no CA '%.64s' in tenant '%.64s'", ca_id, tenant);
	}
	return start(st, t, e, who, done, ctx, NULL, err);
}

enum cm_rc cm_refresh_learn(struct cm_state *st, const struct cm_tenant *t, const struct cm_ca *e, const char *url, struct cm_err *err)
{
	return start(st, t, e, NULL, NULL, NULL, url, err);
}

void cm_refresh_tick(struct cm_state *st, time_t now)
{
	const struct cm_tenant *t;
	const struct cm_ca *e;
	struct cm_err err;
	char buf[2048];

	if(now == st->refresh_scanned){
		return; /* once a second is enough */
	}
	st->refresh_scanned = now;
	for(t = cm_store_first_tenant(st->store); t; t = cm_store_next_tenant(t)){
		bool went_stale = false;
		for(e = t->cas; e; e = e->next){
			if(e->pinned){
				continue;
			}
			struct cm_crl_schedule *s = cm_store_crl_schedule(st->store, e);
			if(e->crl && e->crl->next_update && e->crl->next_update < now && !s->stale_seen){
				s->stale_seen = true;
				went_stale = true;
				cm_log(CM_LOG_WARNING, "the CRL of CA %s (tenant %s) is past its nextUpdate: %s", e->id, t->name,
						e->stale_fail_open ? "its devices are still accepted (fail-open)" : "its devices are refused (fail-closed)");
			}
			if(s->in_flight || cm_refresh_url(e, buf, sizeof(buf)) == NULL){
				continue;
			}
			if(s->next_attempt == 0){
				s->next_attempt = e->crl ? schedule(st, e, s->success ? s->success : now) : now;
			}
			if(now >= s->next_attempt && start(st, t, e, NULL, NULL, NULL, NULL, &err) != CM_OK){
				s->failures++;
				s->next_attempt = backoff(st, s->failures, now);
				copy_trunc(s->error, sizeof(s->error), err.msg);
			}
		}
		if(went_stale){
			/* Under fail-closed its devices go, at the end of this tick. */
			cm_registry_queue_recheck(st, t->name);
		}
	}
}

cJSON *cm_refresh_health(struct cm_state *st)
{
	cJSON *arr = cJSON_CreateArray();
	const struct cm_tenant *t;
	struct cm_ca *e;
	char buf[2048], cn[256];
	time_t now = time(NULL);

	for(t = cm_store_first_tenant(st->store); t; t = cm_store_next_tenant(t)){
		for(e = t->cas; arr && e; e = e->next){
			const char *url;
			cJSON *o;
			if(e->pinned || (e->crl == NULL && (url = cm_refresh_url(e, buf, sizeof(buf))) == NULL)){
				continue;
			}
			url = cm_refresh_url(e, buf, sizeof(buf));
			o = cJSON_CreateObject();
			if(o == NULL || !cJSON_AddItemToArray(arr, o)){
				cJSON_Delete(o);
				cJSON_Delete(arr);
				return NULL;
			}
			cm_pki_subject_cn(e->cert, cn, sizeof(cn));
			cJSON_AddStringToObject(o, "tenant", t->name);
			cJSON_AddStringToObject(o, "id", e->id);
			cJSON_AddStringToObject(o, "commonName", cn);
			cJSON_AddStringToObject(o, "source", e->crl ? e->crl_source : "none");
			if(url){
				cJSON_AddStringToObject(o, "url", url);
			}
			cJSON_AddStringToObject(o, "stalePolicy", e->stale_fail_open ? "fail-open" : "fail-closed");
			cJSON_AddBoolToObject(o, "stale", e->crl && e->crl->next_update && e->crl->next_update < now);
			if(e->sched.attempt){
				cm_json_add_time(o, "lastAttempt", e->sched.attempt);
			}
			if(e->sched.success){
				cm_json_add_time(o, "lastSuccess", e->sched.success);
			}
			if(e->sched.next_attempt && url){
				cm_json_add_time(o, "nextAttempt", e->sched.next_attempt);
			}
			cJSON_AddNumberToObject(o, "failures", e->sched.failures);
			if(e->crl){
				cm_json_add_time(o, "thisUpdate", e->crl->this_update);
				if(e->crl->next_update){
					cm_json_add_time(o, "nextUpdate", e->crl->next_update);
				}
				cJSON_AddNumberToObject(o, "revoked", (double)e->crl->count);
			}
			if(e->sched.error[0]){
				cJSON_AddStringToObject(o, "lastError", e->sched.error);
			}
		}
	}
	return arr;
}
