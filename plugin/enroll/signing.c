/* The issuing CA's work: device certificates and CRLs, signed on the
 * worker thread, committed on the broker thread; CRLs issued when due. */
#define _GNU_SOURCE
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/err.h>

#include <mosquitto.h>
#include <mosquitto_broker.h>

#include "enroll-int.h"
#include "enroll.h"
#include "fsutil.h"
#include "log.h"
#include "metrics.h"
#include "registry.h"
#include "worker.h"
#include "store.h"

struct cm_enrolling *enrolling_of(struct cm_state *st)
{
	if(st->enrolling == NULL){
		st->enrolling = calloc(1, sizeof(*st->enrolling));
	}
	return st->enrolling;
}

void cm_enroll_count(struct cm_state *st, const char *outcome, const char *tenant, const char *clientid, const char *ident,
		const char *reason)
{
	cJSON *e = cJSON_CreateObject();

	st->enroll_issued += !strcmp(outcome, "issued");
	st->enroll_renewed += !strcmp(outcome, "renewed");
	st->enroll_pending += !strcmp(outcome, "pending");
	st->enroll_refused += !strcmp(outcome, "refused");
	if(e && cJSON_AddStringToObject(e, "outcome", outcome) && cJSON_AddStringToObject(e, "tenant", tenant)
			&& cJSON_AddStringToObject(e, "clientId", clientid ? clientid : "") && cJSON_AddStringToObject(e, "identity", ident ? ident : "")
			&& (reason == NULL || cJSON_AddStringToObject(e, "reason", reason))){
		cm_event(st, "enrollment", e);
	}else{
		cJSON_Delete(e);
	}
}

/* ---- device certificates ---- */

struct sign_job {
	char ident[CM_ENROLL_IDENT_MAX + 1];
	EVP_PKEY *pub;
	struct cm_csr_rules rules;
	time_t lifetime;
	X509 *ca;
	EVP_PKEY *ca_key;
	STACK_OF(X509) *above;
	X509 *leaf;
	char *pem;
	enum cm_rc rc;
	struct cm_err err;
	cm_enroll_signed_fn done;
	void *ctx;
};

static void sign_job_free(struct sign_job *j)
{
	EVP_PKEY_free(j->pub);
	X509_free(j->ca);
	EVP_PKEY_free(j->ca_key);
	sk_X509_pop_free(j->above, X509_free);
	X509_free(j->leaf);
	free(j->pem);
	free(j);
}

static void sign_work(void *arg)
{
	struct sign_job *j = arg;
	STACK_OF(X509) *rest = sk_X509_new_null();
	size_t len = 0;

	j->rc = cm_sign_device_cert(j->pub, j->ident, &j->rules, j->lifetime, j->ca, j->ca_key, &j->leaf, &j->err);
	if(j->rc == CM_OK && (rest == NULL || !sk_X509_push(rest, j->ca))){
		j->rc = cm_err_set(&j->err, CM_ERR_NOMEM, "out of memory");
	}
	for(int i = 0; j->rc == CM_OK && i < sk_X509_num(j->above); i++){
		if(!sk_X509_push(rest, sk_X509_value(j->above, i))){
			j->rc = cm_err_set(&j->err, CM_ERR_NOMEM, "out of memory");
		}
	}
	if(j->rc == CM_OK){
		j->rc = cm_pki_chain_to_pem(j->leaf, rest, &j->pem, &len, &j->err);
	}
	sk_X509_free(rest);
	ERR_clear_error();
}

static void sign_done(struct cm_state *st, void *arg, bool aborted)
{
	struct sign_job *j = arg;

	j->done(st, j->ctx, aborted ? CM_ERR_INVAL : j->rc, j->pem, j->leaf, &j->err, aborted);
	sign_job_free(j);
}

enum cm_rc cm_enroll_sign(struct cm_state *st, const struct cm_tenant *t, const char *ident, X509_REQ *req, cm_enroll_signed_fn done,
		void *ctx, struct cm_err *err)
{
	const struct cm_ca *ca = cm_enroll_issuing_ca(t);
	struct sign_job *j;

	if(ca == NULL){
		return cm_err_set(err, CM_ERR_INVAL, "tenant '%s' has no issuing CA", t->name);
	}
	if((j = calloc(1, sizeof(*j))) == NULL){
		return cm_err_set(err, CM_ERR_NOMEM, "out of memory");
	}
	snprintf(j->ident, sizeof(j->ident), "%s", ident);
	j->rules = t->enroll->rules;
	j->lifetime = (time_t)t->enroll->validity_days * 86400;
	j->pub = X509_REQ_get_pubkey(req);
	j->done = done;
	j->ctx = ctx;
	if(j->pub == NULL || !X509_up_ref(ca->cert) || !EVP_PKEY_up_ref(t->enroll->ca_key)){
		sign_job_free(j);
		return cm_err_set(err, CM_ERR_NOMEM, "out of memory");
	}
	j->ca = ca->cert;
	j->ca_key = t->enroll->ca_key;
	if((t->enroll->ca_chain && (j->above = X509_chain_up_ref(t->enroll->ca_chain)) == NULL)){
		sign_job_free(j);
		return cm_err_set(err, CM_ERR_NOMEM, "out of memory");
	}
	if(cm_worker_submit(st, sign_work, sign_done, j, err) != CM_OK){
		sign_job_free(j);
		return CM_ERR_NOMEM;
	}
	return CM_OK;
}

/* ---- the issuing CA's CRL ---- */

struct crl_job {
	char tenant[CM_TENANT_NAME_MAX + 1];
	char ca_id[CM_ID_LEN + 1];
	char who[256], command[32];
	X509 *ca;
	EVP_PKEY *ca_key;
	struct cm_revoked *v;
	size_t n;
	unsigned long number;
	time_t this_update, next_update;
	struct cm_crl *crl;
	enum cm_rc rc;
	struct cm_err err;
	cm_enroll_crl_fn done;
	void *ctx;
};

static void crl_job_free(struct crl_job *j)
{
	X509_free(j->ca);
	EVP_PKEY_free(j->ca_key);
	free(j->v);
	cm_crl_free(&j->crl);
	free(j);
}

static void crl_work(void *arg)
{
	struct crl_job *j = arg;
	unsigned char *der = NULL;
	size_t len = 0;

	j->rc = cm_sign_make_crl(j->ca, j->ca_key, j->v, j->n, j->number, j->this_update, j->next_update, &der, &len, &j->err);
	if(j->rc == CM_OK){
		j->rc = cm_crl_load(der, len, CM_STORE_MAX_CRL, j->ca, 0, &j->crl, &j->err);
	}
	OPENSSL_free(der);
	ERR_clear_error();
}

static void busy_set(struct cm_state *st, const char *tenant, bool busy)
{
	struct cm_enrolling *en = enrolling_of(st);

	for(size_t i = 0; en && i < en->ncrl_busy; i++){
		if(!strcmp(en->crl_busy[i], tenant)){
			if(!busy){
				memmove(en->crl_busy + i, en->crl_busy + i + 1, (en->ncrl_busy - i - 1) * sizeof(*en->crl_busy));
				en->ncrl_busy--;
			}
			return;
		}
	}
	if(busy && en){
		char (*grown)[CM_TENANT_NAME_MAX + 1] = realloc(en->crl_busy, (en->ncrl_busy + 1) * sizeof(*grown));
		if(grown){
			en->crl_busy = grown;
			snprintf(en->crl_busy[en->ncrl_busy++], sizeof(*grown), "%s", tenant);
		}
	}
}

static bool busy(struct cm_state *st, const char *tenant)
{
	const struct cm_enrolling *en = st->enrolling;

	for(size_t i = 0; en && i < en->ncrl_busy; i++){
		if(!strcmp(en->crl_busy[i], tenant)){
			return true;
		}
	}
	return false;
}

/* The copy relying parties fetch: <enroll_crl_dir>/<tenant>.crl, DER. */
void cm_enroll_publish_crl(const struct cm_state *st, const char *tenant)
{
	const struct cm_tenant *t = cm_store_find_tenant(st->store, tenant);
	const struct cm_ca *ca = t ? cm_enroll_issuing_ca(t) : NULL;
	char path[PATH_MAX], src[PATH_MAX];
	struct cm_err err;
	char *der = NULL;
	size_t len = 0;

	if(st->enroll_crl_dir == NULL || ca == NULL || ca->crl == NULL || ca->crl_file[0] == '\0'){
		return;
	}
	if(cm_fs_path(src, sizeof(src), &err, "%s/tenants/%s/crls/%s", st->store_dir, tenant, ca->crl_file) != CM_OK
			|| cm_fs_read_file(src, CM_STORE_MAX_CRL, &der, &len, &err) != CM_OK
			|| cm_fs_path(path, sizeof(path), &err, "%s/%s.crl", st->enroll_crl_dir, tenant) != CM_OK
			|| cm_fs_write_atomic(path, der, len, 0644, &err) != CM_OK){
		cm_log(CM_LOG_WARNING, "cannot publish the CRL of tenant %s's issuing CA to plugin_opt_enroll_crl_dir: %s", tenant, err.msg);
	}
	free(der);
}

/* The signed CRL into a copy of the tenant, committed. */
static enum cm_rc install_crl(struct cm_state *st, struct crl_job *j, struct cm_err *err)
{
	const struct cm_tenant *cur = cm_store_find_tenant(st->store, j->tenant);
	struct cm_tenant *t;
	struct cm_ca *ca;
	enum cm_rc rc;

	if(cur == NULL || cur->enroll == NULL || strcmp(cur->enroll->ca_id, j->ca_id)){
		return cm_err_set(err, CM_ERR_INVAL, "the tenant or its issuing CA changed meanwhile");
	}
	if((t = cm_tenant_clone(cur)) == NULL){
		return cm_err_set(err, CM_ERR_NOMEM, "out of memory");
	}
	ca = cm_tenant_ca(t, j->ca_id);
	if((rc = cm_ca_put_crl(ca, j->crl, NULL, err)) != CM_OK){
		cm_tenant_free(&t);
		return rc;
	}
	j->crl = NULL;
	snprintf(ca->crl_source, sizeof(ca->crl_source), "issued");
	ca->sched.success = ca->sched.attempt = time(NULL);
	ca->sched.error[0] = '\0';
	if(j->number > t->enroll->crl_number){
		t->enroll->crl_number = j->number;
	}
	t->enroll->crl_this_update = j->this_update;
	t->enroll->crl_next_update = j->next_update;
	rc = cm_registry_put_tenant(st, j->who, j->command, t, j->ca_id, err);
	if(rc != CM_OK){
		return rc;
	}
	cm_enroll_publish_crl(st, j->tenant);
	return CM_OK;
}

static void crl_done(struct cm_state *st, void *arg, bool aborted)
{
	struct crl_job *j = arg;
	struct cm_err err = {{0}};
	enum cm_rc rc = j->rc;

	if(!aborted){
		busy_set(st, j->tenant, false);
		if(rc == CM_OK){
			rc = install_crl(st, j, &err);
		}else{
			err = j->err;
		}
		if(rc != CM_OK){
			cm_log(CM_LOG_WARNING, "tenant %s: the issuing CA's CRL was not issued: %s", j->tenant, err.msg);
		}
	}
	if(j->done){
		j->done(st, j->ctx, rc, &err, aborted);
	}
	crl_job_free(j);
}

enum cm_rc cm_enroll_issue_crl(struct cm_state *st, const char *tenant, const char *who, const char *command, cm_enroll_crl_fn done,
		void *ctx, struct cm_err *err)
{
	const struct cm_tenant *t = cm_store_find_tenant(st->store, tenant);
	const struct cm_ca *ca = t ? cm_enroll_issuing_ca(t) : NULL;
	struct cm_enrolling *en = enrolling_of(st);
	struct crl_job *j;

	if(ca == NULL){
		return cm_err_set(err, CM_ERR_INVAL, "tenant '%s' has no issuing CA", tenant);
	}
	if(en == NULL || (j = calloc(1, sizeof(*j))) == NULL){
		return cm_err_set(err, CM_ERR_NOMEM, "out of memory");
	}
	snprintf(j->tenant, sizeof(j->tenant), "%s", tenant);
	memcpy(j->ca_id, ca->id, sizeof(j->ca_id));
	snprintf(j->who, sizeof(j->who), "%s", who);
	snprintf(j->command, sizeof(j->command), "%s", command);
	j->this_update = time(NULL);
	j->next_update = j->this_update + st->enroll_crl_days * 86400;
	/* Numbers only grow, also across jobs that overlap. */
	j->number = t->enroll->crl_number > en->last_number ? t->enroll->crl_number + 1 : en->last_number + 1;
	en->last_number = j->number;
	j->done = done;
	j->ctx = ctx;
	j->n = t->enroll->nrevoked;
	if((j->n && (j->v = malloc(j->n * sizeof(*j->v))) == NULL) || !X509_up_ref(ca->cert)){
		crl_job_free(j);
		return cm_err_set(err, CM_ERR_NOMEM, "out of memory");
	}
	j->ca = ca->cert;
	if(j->n){
		memcpy(j->v, t->enroll->revoked, j->n * sizeof(*j->v));
	}
	if(EVP_PKEY_up_ref(t->enroll->ca_key)){
		j->ca_key = t->enroll->ca_key;
	}
	if(j->ca_key == NULL || cm_worker_submit(st, crl_work, crl_done, j, err) != CM_OK){
		crl_job_free(j);
		return cm_err_set(err, CM_ERR_NOMEM, "out of memory");
	}
	busy_set(st, tenant, true);
	return CM_OK;
}

/* A CRL is due when a revocation's time came after the last one, when the
 * last one is half way to its nextUpdate, or when there is none. */
static bool crl_due(const struct cm_tenant *t, time_t now)
{
	const struct cm_enroll *e = t->enroll;
	time_t next = cm_enroll_next_revocation(e);

	if(e == NULL || e->ca_id[0] == '\0' || e->ca_key == NULL){
		return false;
	}
	return e->crl_next_update == 0 || now >= e->crl_this_update + (e->crl_next_update - e->crl_this_update) / 2
			|| (next && next <= now);
}

void cm_enroll_tick(struct cm_state *st, time_t now)
{
	struct cm_enrolling *en = enrolling_of(st);

	if(en == NULL || now == en->scanned){
		return;
	}
	en->scanned = now;
	for(const struct cm_tenant *t = cm_store_first_tenant(st->store); t; t = cm_store_next_tenant(t)){
		struct cm_err err;
		if(t->enroll && crl_due(t, now) && !busy(st, t->name)
				&& cm_enroll_issue_crl(st, t->name, "certmgr", "issueCRL", NULL, NULL, &err) != CM_OK){
			cm_log(CM_LOG_WARNING, "tenant %s: cannot issue the issuing CA's CRL: %s", t->name, err.msg);
		}
	}
}

void cm_enroll_cleanup(struct cm_state *st)
{
	if(st->enrolling == NULL){
		return;
	}
	while(st->enrolling->reqs){
		struct cm_enroll_req *r = st->enrolling->reqs;
		st->enrolling->reqs = r->next;
		enroll_req_free(r);
	}
	free(st->enrolling->crl_busy);
	free(st->enrolling);
	st->enrolling = NULL;
}
