/* The commands that bring a CA's CRL, and wait for it when it is
 * downloaded or large: addCA (a CA that names a CRL is admitted once its
 * CRL is in), modifyCA (a new crlUrl), uploadCRL, refreshCRL. */
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/x509v3.h>

#include "cmd_cas.h"
#include "cmd_enroll.h"
#include "control.h"
#include "fetch.h"
#include "fsutil.h"
#include "json.h"
#include "log.h"
#include "refresh.h"
#include "revocation.h"
#include "verdict.h"
#include "worker.h"
#include "store.h"

#define MAX_BUNDLE 100

/* What the answer to a command that waited for a CRL carries. */
enum crl_answer {
	ANSWER_CA,      /* the CA as listCAs shows it */
	ANSWER_CA_FULL, /* the CA as getCA shows it, PEM included */
	ANSWER_CRL,     /* the CA's id and its CRL's figures */
};

/* A command waiting for a CRL download: what it needs to finish. */
struct crl_wait {
	struct cm_request *req;
	char who[256];
	char command[16];    /* addCA or modifyCA */
	enum crl_answer answer;
	/* What ends the command once the CRL is checked. */
	void (*checked)(struct cm_state *st, struct crl_wait *w, struct cm_crl_check *res);
	char tenant[CM_TENANT_NAME_MAX + 1];
	char ca_id[CM_ID_LEN + 1];
	X509 *cert;          /* addCA: the CA to admit once its CRL is in */
	STACK_OF(X509) *provided; /* uploadCRL: its issuerCertificates */
	char *desc;
	bool active;
	bool url_given;      /* crlUrl (the CA's own CRL) or its distribution point */
	char url[2048];
	bool claim;          /* addCA: its purpose, and the registration code */
	char code[CM_ENROLL_CODE_LEN + 1];
};

static void crl_wait_free(struct crl_wait *w)
{
	X509_free(w->cert);
	sk_X509_pop_free(w->provided, X509_free);
	free(w->desc);
	free(w);
}

/* id, revoked, thisUpdate and nextUpdate of e's CRL into data. */
static void add_crl_figures(cJSON *data, const struct cm_ca *e)
{
	cJSON_AddStringToObject(data, "id", e->id);
	cJSON_AddNumberToObject(data, "revoked", (double)e->crl->count);
	cm_json_add_time(data, "thisUpdate", e->crl->this_update);
	if(e->crl->next_update){
		cm_json_add_time(data, "nextUpdate", e->crl->next_update);
	}
}

static void drop_checked(const struct cm_state *st, const char *tenant, struct cm_crl_check *res);

/* The end of a command that waited for a CRL: t (the changed tenant, or
 * NULL after a failure) goes into the store, the answer is made, the
 * request goes on. A CRL file the worker wrote for the command (res) is
 * removed when the command fails. Frees w. */
static void crl_wait_finish(struct cm_state *st, struct crl_wait *w, const char *command, struct cm_tenant *t, enum cm_rc rc,
		struct cm_err *err, enum crl_answer answer, struct cm_crl_check *res)
{
	cm_control_own_commits(st, w->req);
	if(rc == CM_OK){
		/* The tenant put is the one to answer from: with a replicating
		 * back end the store has it only once it is applied. It lives
		 * until the next tick either way. */
		const struct cm_tenant *now = t;
		rc = cm_registry_put_tenant(st, w->who, command, t, w->ca_id, err);
		t = NULL;
		if(rc == CM_OK){
			const struct cm_ca *e = cm_tenant_find_ca(now, w->ca_id);
			cJSON *data = cm_control_pending_data(w->req), *o;
			if(answer == ANSWER_CRL){
				add_crl_figures(data, e);
			}else if((o = cm_cas_json(e, answer == ANSWER_CA_FULL, answer == ANSWER_CA_FULL ? "pem" : NULL))
					&& !cJSON_AddItemToObject(data, "ca", o)){
				cJSON_Delete(o);
			}
			if(answer == ANSWER_CA_FULL){ /* addCA's */
				cm_status_add_ca_warnings(st, w->tenant, w->ca_id, data);
			}
		}
	}
	if(rc != CM_OK && res){
		drop_checked(st, w->tenant, res);
	}
	cm_tenant_free(&t);
	cm_control_resume_owned(st, w->req, rc, err);
	crl_wait_free(w);
}

/* Puts a checked CRL in place on entry e of t: signed by e itself or
 * (issuer_allowed: from e's distribution point) by the issuer of e when
 * that issuer is in t. Takes res->crl on success. */
/* The entry of staged copy t that ca (found in t by a reader) is. */
static struct cm_ca *staged_entry(struct cm_tenant *t, const struct cm_ca *ca)
{
	return ca ? cm_tenant_ca(t, ca->id) : NULL;
}

static enum cm_rc install_crl(struct cm_tenant *t, struct cm_ca *e, struct cm_crl_check *res, const char *source, const char *url,
		bool issuer_allowed, struct cm_err *err)
{
	struct cm_ca *target = e;
	time_t now = time(NULL);

	if(res->rc != CM_OK){
		*err = res->err;
		return res->rc;
	}
	if(X509_cmp(res->signer, e->cert) != 0){
		char *learned;
		target = issuer_allowed ? staged_entry(t, cm_rev_issuer_of(t, e->cert)) : NULL;
		if(target == NULL || X509_cmp(target->cert, res->signer) != 0){
			/* Its issuer left the tenant while the CRL was checked. */
			return cm_err_set(err, CM_ERR_INVAL, "the CRL is signed neither by this CA nor by its issuer in the tenant");
		}
		if(cm_crl_is_revoked(res->crl, X509_get0_serialNumber(e->cert))){
			return cm_err_set(err, CM_ERR_INVAL, "this CA is revoked by its issuer's CRL");
		}
		if(url && (learned = strdup(url)) == NULL){
			return cm_cmd_nomem(err);
		}
		free(target->crl_learned_url);
		target->crl_learned_url = url ? learned : NULL;
		source = "learned";
	}
	if(res->crl->delta && strcmp(source, "upload")){
		/* A URL serves the CRL a CA is refreshed from: a complete one. */
		return cm_err_set(err, CM_ERR_INVAL, "delta CRLs are not supported at a CRL URL: it must serve the full CRL (upload a delta with uploadCRL)");
	}
	if(cm_ca_put_crl(target, res->crl, res->file, err) != CM_OK){
		return CM_ERR_INVAL;
	}
	res->crl = NULL;
	snprintf(target->crl_source, sizeof(target->crl_source), "%s", source);
	target->sched.attempt = target->sched.success = now;
	target->sched.error[0] = '\0';
	return CM_OK;
}

/* Removes a CRL file the worker wrote for tenant that no tenant.json
 * names (the command failed after all). */
static void drop_checked(const struct cm_state *st, const char *tenant, struct cm_crl_check *res)
{
	char path[PATH_MAX];

	if(res->file[0] && cm_fs_path(path, sizeof(path), NULL, "%s/tenants/%s/crls/%s", st->store_dir, tenant, res->file) == CM_OK){
		(void)unlink(path);
	}
	res->file[0] = '\0';
}

/* The worker's answer for a command waiting for a CRL (or, aborted, the
 * broker shutting down: the file it wrote goes, and the command). */
static void crl_checked(struct cm_state *st, void *ctx, struct cm_crl_check *res, bool aborted)
{
	struct crl_wait *w = ctx;

	if(aborted){
		drop_checked(st, w->tenant, res);
		crl_wait_free(w);
		return;
	}
	w->checked(st, w, res);
}

/* Checks the CRL a command waits for against cands: here when it is
 * small, on the worker (which also writes it) when it is large, so that
 * a CRL of a million entries does not stall the broker. w->checked gets
 * the result either way. Takes body. */
static void check_crl(struct cm_state *st, struct crl_wait *w, unsigned char *body, size_t len, STACK_OF(X509) *cands)
{
	struct cm_crl_check res;
	char dir[PATH_MAX];

	if(len <= CM_CRL_WORKER_THRESHOLD){
		cm_crl_check_issuers(&res, body, len, st->fetch_opts.max_size, cands, false, time(NULL), NULL);
		free(body);
		w->checked(st, w, &res);
		cm_crl_free(&res.crl);
		return;
	}
	memset(&res, 0, sizeof(res));
	res.rc = cm_fs_path(dir, sizeof(dir), &res.err, "%s/tenants/%s/crls", st->store_dir, w->tenant);
	if(res.rc != CM_OK){
		free(body);
		w->checked(st, w, &res);
	}else if((res.rc = cm_worker_check_crl(st, body, len, false, st->fetch_opts.max_size, cands, false, dir, crl_checked, w, &res.err)) != CM_OK){
		w->checked(st, w, &res);
	}
}

static void add_ca_checked(struct cm_state *st, struct crl_wait *w, struct cm_crl_check *res)
{
	const struct cm_tenant *cur;
	struct cm_tenant *t = NULL;
	struct cm_ca *ca = NULL;
	struct cm_err err = {{0}};
	enum cm_rc rc;

	if((cur = cm_store_find_tenant(st->store, w->tenant)) == NULL){
		rc = cm_err_set(&err, CM_ERR_INVAL, "tenant '%s' was deleted meanwhile", w->tenant);
	}else if((t = cm_tenant_clone(cur)) == NULL){
		rc = cm_cmd_nomem(&err);
	}else if((rc = cm_cmd_admit(t, w->cert, w->desc, w->active, &ca, &err)) == CM_OK
			&& (rc = cm_cmd_ca_apply_purpose(t, ca, w->claim, w->code, &err)) == CM_OK){
		if(w->url_given && (ca->crl_url = strdup(w->url)) == NULL){
			rc = cm_cmd_nomem(&err);
		}else{
			rc = install_crl(t, ca, res, w->url_given ? "url" : "distribution-point", w->url, true, &err);
			if(rc != CM_OK){
				char reason[sizeof(err.msg)];
				memcpy(reason, err.msg, sizeof(reason));
				cm_err_set(&err, rc, "the CRL from %s is refused: %s", w->url, reason);
			}
		}
	}
	if(rc == CM_OK){
		memcpy(w->ca_id, ca->id, sizeof(w->ca_id));
	}
	crl_wait_finish(st, w, "addCA", t, rc, &err, ANSWER_CA_FULL, res);
}

/* The download a command waited for is in: its CRL is checked against the
 * CA (for addCA, or the CA's issuer in the tenant), then w->checked ends
 * the command. */
static void crl_fetched(struct cm_state *st, void *ctx, enum cm_rc frc, unsigned char **pbody, size_t len, const char *error, bool aborted)
{
	struct crl_wait *w = ctx;
	const struct cm_tenant *cur = NULL;
	const struct cm_ca *e = NULL, *issuer;
	struct cm_err err = {{0}};
	STACK_OF(X509) *cands = NULL;
	enum cm_rc rc = CM_OK;

	if(aborted){
		crl_wait_free(w);
		return;
	}
	if(frc != CM_OK){
		rc = cm_err_set(&err, CM_ERR_INVAL, "the CRL for this CA cannot be fetched from %s: %s", w->url, error);
	}else if((cur = cm_store_find_tenant(st->store, w->tenant)) == NULL){
		rc = cm_err_set(&err, CM_ERR_INVAL, "tenant '%s' was deleted meanwhile", w->tenant);
	}else if(w->cert == NULL && (e = cm_tenant_find_ca(cur, w->ca_id)) == NULL){
		rc = cm_err_set(&err, CM_ERR_INVAL, "the CA was removed meanwhile");
	}else{
		/* A CA being added may take its CRL from its issuer in the tenant. */
		issuer = w->cert ? cm_rev_issuer_of(cur, w->cert) : NULL;
		if((cands = sk_X509_new_null()) == NULL || !sk_X509_push(cands, w->cert ? w->cert : e->cert)
				|| (issuer && !sk_X509_push(cands, issuer->cert))){
			rc = cm_cmd_nomem(&err);
		}
	}
	if(rc != CM_OK){
		sk_X509_free(cands);
		crl_wait_finish(st, w, w->command, NULL, rc, &err, w->answer, NULL);
		return;
	}
	check_crl(st, w, *pbody, len, cands);
	*pbody = NULL;
	sk_X509_free(cands);
}

/* A new wait for the command who sent about tenant, ended by checked;
 * desc (may be NULL) is copied. NULL when out of memory. */
static struct crl_wait *crl_wait_new(const struct cm_caller *who, const char *tenant, const char *desc, enum crl_answer answer,
		void (*checked)(struct cm_state *st, struct crl_wait *w, struct cm_crl_check *res))
{
	struct crl_wait *w = calloc(1, sizeof(*w));

	if(w == NULL || (desc && (w->desc = strdup(desc)) == NULL)){
		free(w);
		return NULL;
	}
	w->req = who->req;
	snprintf(w->who, sizeof(w->who), "%s", who->name);
	snprintf(w->command, sizeof(w->command), "%s", who->command);
	snprintf(w->tenant, sizeof(w->tenant), "%s", tenant);
	w->answer = answer;
	w->checked = checked;
	return w;
}

/* Starts the download of w->url: CM_PENDING, or the failure (w freed). */
static enum cm_rc crl_wait_fetch(struct cm_state *st, struct crl_wait *w, struct cm_err *err)
{
	enum cm_rc rc = cm_fetch_start(st, w->url, crl_fetched, w, err);

	if(rc != CM_OK){
		crl_wait_free(w);
		return rc;
	}
	return CM_PENDING;
}

/* addCA's certificate: exactly one, a CA. The caller frees *out. */
static enum cm_rc one_ca(const struct cm_caller *who, const char *pem, STACK_OF(X509) **out, struct cm_err *err)
{
	enum cm_rc rc = cm_control_parse_certs(who, pem, out, err);

	if(rc != CM_OK){
		return rc;
	}
	if(sk_X509_num(*out) != 1){
		rc = cm_err_set(err, CM_ERR_INVAL, "'certificate' holds %d certificates; addCA takes exactly one", sk_X509_num(*out));
	}else if(!(X509_get_extension_flags(sk_X509_value(*out, 0)) & EXFLAG_CA)){
		rc = cm_err_set(err, CM_ERR_INVAL, "not a CA certificate (basicConstraints CA:TRUE is missing)");
	}
	if(rc != CM_OK){
		sk_X509_pop_free(*out, X509_free);
		*out = NULL;
	}
	return rc;
}

/* A CA that names a CRL (crl_url, or its distribution point cdp) is
 * admitted only once that CRL is in hand: the answer waits for the
 * download. */
static enum cm_rc add_ca_wait(struct cm_state *st, const struct cm_caller *who, const char *tenant, const struct cm_ca *ca, const char *desc,
		const char *code, const char *crl_url, const char *cdp, struct cm_err *err)
{
	struct crl_wait *w = crl_wait_new(who, tenant, desc, ANSWER_CA_FULL, add_ca_checked);
	X509 *cert = ca->cert;
	bool active = ca->active;

	if(w == NULL){
		return cm_cmd_nomem(err);
	}
	w->claim = ca->claim;
	snprintf(w->code, sizeof(w->code), "%s", code);
	w->cert = cert;
	X509_up_ref(w->cert);
	w->active = active;
	w->url_given = crl_url != NULL;
	snprintf(w->url, sizeof(w->url), "%s", crl_url ? crl_url : cdp);
	return crl_wait_fetch(st, w, err);
}

static enum cm_rc add_ca(struct cm_state *st, const struct cm_caller *who, const cJSON *cmd, cJSON *data, struct cm_err *err)
{
	const char *desc = cm_arg_string(cmd, "description", ""), *crl_url = cm_arg_string(cmd, "crlUrl", NULL);
	const struct cm_tenant *cur;
	struct cm_tenant *t;
	STACK_OF(X509) *certs = NULL;
	struct cm_ca *ca;
	char id[CM_ID_LEN + 1], cdp[2048], code[CM_ENROLL_CODE_LEN + 1];
	bool claim = false;
	enum cm_rc rc;

	CM_GUARD(cm_cmd_tenant(st, cmd, &cur, err));
	if(crl_url && !cm_fetch_url_valid(crl_url)){
		return cm_err_set(err, CM_ERR_INVAL, "'crlUrl' must be an http:// or https:// URL");
	}
	CM_GUARD(one_ca(who, cm_arg_string(cmd, "certificate", ""), &certs, err));
	if((rc = cm_cmd_ca_purpose(cur, sk_X509_value(certs, 0), cmd, &claim, code, err)) != CM_OK){
		sk_X509_pop_free(certs, X509_free);
		return rc;
	}
	if((t = cm_tenant_clone(cur)) == NULL){
		sk_X509_pop_free(certs, X509_free);
		return cm_cmd_nomem(err);
	}
	rc = cm_cmd_admit(t, sk_X509_value(certs, 0), desc, cm_arg_bool(cmd, "active", true), &ca, err);
	if(rc == CM_OK){
		rc = cm_cmd_ca_apply_purpose(t, ca, claim, code, err);
	}
	if(rc == CM_OK && (crl_url || cm_crl_distribution_point(ca->cert, cdp, sizeof(cdp)))){
		rc = add_ca_wait(st, who, cur->name, ca, desc, code, crl_url, cdp, err);
	}
	sk_X509_pop_free(certs, X509_free);
	if(rc != CM_OK){
		cm_tenant_free(&t);
		return rc;
	}
	memcpy(id, ca->id, sizeof(id));
	CM_GUARD(cm_registry_put_tenant(st, who->name, who->command, t, id, err));
	cm_cmd_answer(data, "ca", cm_cas_json(cm_tenant_find_ca(t, id), true, "pem"));
	cm_status_add_ca_warnings(st, t->name, id, data);
	return CM_OK;
}

/* The entry of t that signer (the signer of an uploaded CRL) is: one of
 * t's, or one of the issuerCertificates given with the upload, which must
 * then chain to t's trust list; it joins t as a known issuer, with the
 * certificates between it and the trust list. */
static enum cm_rc entry_for_signer(struct cm_state *st, struct cm_tenant *t, const struct cm_tenant *live, X509 *signer,
		STACK_OF(X509) *provided, struct cm_ca **out, struct cm_err *err)
{
	STACK_OF(X509) *chain = NULL;
	enum cm_rc rc = CM_OK;
	int e;

	if((*out = staged_entry(t, cm_rev_entry_for(t, signer))) != NULL){
		return (*out)->pinned ? cm_err_set(err, CM_ERR_INVAL, "a pinned certificate issues no CRL") : CM_OK;
	}
	/* Over the live tenant's trust: t is a staged copy, without one. */
	e = cm_verdict_path(live, cm_store_get0_admin_ca(st->store), signer, provided, NULL, &chain);
	if(e != X509_V_OK){
		return cm_err_set(err, CM_ERR_INVAL, "the CRL's issuer does not chain to the trust list of tenant '%s': %s", t->name,
				X509_verify_cert_error_string(e));
	}
	/* Leaf (the signer) up to, not including, the first entry t has. */
	for(int i = 0; rc == CM_OK && i < sk_X509_num(chain) && cm_rev_entry_for(t, sk_X509_value(chain, i)) == NULL; i++){
		struct cm_ca *ca = NULL;
		rc = cm_cmd_admit(t, sk_X509_value(chain, i), "issuer of an uploaded CRL", true, &ca, err);
		if(rc == CM_OK){
			ca->issuer_only = true;
			ca->pinned = false;
			ca->active = true;
		}
	}
	sk_X509_pop_free(chain, X509_free);
	*out = rc == CM_OK ? staged_entry(t, cm_rev_entry_for(t, signer)) : NULL;
	return *out ? CM_OK : rc != CM_OK ? rc : cm_cmd_nomem(err);
}

static void upload_crl_checked(struct cm_state *st, struct crl_wait *w, struct cm_crl_check *res)
{
	const struct cm_tenant *cur;
	struct cm_tenant *t = NULL;
	struct cm_ca *e;
	struct cm_err err = {{0}};
	enum cm_rc rc;

	if((cur = cm_store_find_tenant(st->store, w->tenant)) == NULL){
		rc = cm_err_set(&err, CM_ERR_INVAL, "tenant '%s' was deleted meanwhile", w->tenant);
	}else if(res->none_signed){
		rc = cm_err_set(&err, CM_ERR_INVAL, "this CRL was not issued by any CA of tenant '%s' (or is not a CRL)", w->tenant);
	}else if(res->rc != CM_OK){
		err = res->err;
		rc = res->rc;
	}else if((t = cm_tenant_clone(cur)) == NULL){
		rc = cm_cmd_nomem(&err);
	}else if((rc = entry_for_signer(st, t, cur, res->signer, w->provided, &e, &err)) == CM_OK
			&& (rc = install_crl(t, e, res, "upload", NULL, false, &err)) == CM_OK){
		memcpy(w->ca_id, e->id, sizeof(w->ca_id));
	}
	crl_wait_finish(st, w, "uploadCRL", t, rc, &err, ANSWER_CRL, res);
}

/* uploadCRL's issuerCertificates: a PEM string of one or more
 * certificates, or an array of them. *out NULL when absent. */
static enum cm_rc issuer_certificates(const cJSON *cmd, STACK_OF(X509) **out, struct cm_err *err)
{
	const cJSON *f = cJSON_GetObjectItemCaseSensitive(cmd, "issuerCertificates"), *item;
	STACK_OF(X509) *all;
	enum cm_rc rc = CM_OK;

	*out = NULL;
	if(f == NULL){
		return CM_OK;
	}
	if(!cJSON_IsString(f) && !cJSON_IsArray(f)){
		return cm_err_set(err, CM_ERR_INVAL, "'issuerCertificates' must be a PEM string or an array of them");
	}
	if((all = sk_X509_new_null()) == NULL){
		return cm_cmd_nomem(err);
	}
	for(item = cJSON_IsString(f) ? f : f->child; rc == CM_OK && item; item = cJSON_IsString(f) ? NULL : item->next){
		STACK_OF(X509) *some = NULL;
		if(!cJSON_IsString(item)){
			rc = cm_err_set(err, CM_ERR_INVAL, "'issuerCertificates' must hold PEM strings");
		}else if((rc = cm_pki_parse_certs(item->valuestring, strlen(item->valuestring), &some, err)) == CM_OK){
			while(rc == CM_OK && sk_X509_num(some) > 0){
				X509 *x = sk_X509_shift(some);
				if(sk_X509_num(all) >= MAX_BUNDLE || !sk_X509_push(all, x)){
					X509_free(x);
					rc = cm_err_set(err, CM_ERR_INVAL, "'issuerCertificates' holds too many certificates");
				}
			}
		}
		sk_X509_pop_free(some, X509_free);
	}
	if(rc != CM_OK){
		sk_X509_pop_free(all, X509_free);
		return rc;
	}
	*out = all;
	return CM_OK;
}

/* Who may have signed a CRL uploaded to t: its CAs and known issuers, and
 * the certificates given with the upload. */
static STACK_OF(X509) *upload_candidates(const struct cm_tenant *t, STACK_OF(X509) *provided)
{
	STACK_OF(X509) *cands = sk_X509_new_null();

	for(const struct cm_ca *ca = t->cas; cands && ca; ca = ca->next){
		if(!ca->pinned && !sk_X509_push(cands, ca->cert)){
			sk_X509_free(cands);
			cands = NULL;
		}
	}
	for(int i = 0; cands && i < sk_X509_num(provided); i++){
		if(!sk_X509_push(cands, sk_X509_value(provided, i))){
			sk_X509_free(cands);
			cands = NULL;
		}
	}
	return cands;
}

static enum cm_rc upload_crl_large(struct cm_state *st, const struct cm_caller *who, const struct cm_tenant *cur, unsigned char *body,
		size_t len, bool b64, STACK_OF(X509) *cands, STACK_OF(X509) **provided, struct cm_err *err)
{
	struct crl_wait *w;
	char dir[PATH_MAX];
	enum cm_rc rc;

	/* Found, verified, indexed and written on the worker: the answer
	 * waits. */
	if((w = calloc(1, sizeof(*w))) == NULL){
		free(body);
		return cm_cmd_nomem(err);
	}
	w->req = who->req;
	w->provided = *provided;
	*provided = NULL;
	snprintf(w->who, sizeof(w->who), "%s", who->name);
	snprintf(w->tenant, sizeof(w->tenant), "%s", cur->name);
	rc = cm_fs_path(dir, sizeof(dir), err, "%s/tenants/%s/crls", st->store_dir, cur->name);
	if(rc == CM_OK){
		w->checked = upload_crl_checked;
		rc = cm_worker_check_crl(st, body, len, b64, st->fetch_opts.max_size, cands, true, dir, crl_checked, w, err);
	}else{
		free(body); /* cm_worker_check_crl takes it, even when it fails */
	}
	if(rc != CM_OK){
		crl_wait_free(w);
		return rc;
	}
	return CM_PENDING;
}

/* The uploaded CRL text as the checks take it: PEM, and a large one,
 * as it is (decoded on the worker); else base64 DER decoded here. */
static enum cm_rc upload_body(const char *text, unsigned char **body, size_t *len, bool *pem, struct cm_err *err)
{
	*len = strlen(text);
	*pem = strstr(text, "-----BEGIN") != NULL;
	if(*len > CM_CRL_WORKER_THRESHOLD || *pem){
		if((*body = malloc(*len)) == NULL){
			return cm_cmd_nomem(err);
		}
		memcpy(*body, text, *len);
		return CM_OK;
	}
	if((*body = cm_pki_base64_decode(text, *len, len)) == NULL){
		return cm_err_set(err, CM_ERR_INVAL, "'crl' is neither PEM nor base64 DER");
	}
	return CM_OK;
}

/* A small CRL, checked here: its signer's entry (which may join cur as
 * a known issuer) gets it. Takes body. */
static enum cm_rc upload_crl_small(struct cm_state *st, const struct cm_caller *who, const struct cm_tenant *cur, unsigned char *body,
		size_t len, STACK_OF(X509) *cands, STACK_OF(X509) *provided, cJSON *data, struct cm_err *err)
{
	struct cm_tenant *t = NULL;
	struct cm_ca *e = NULL;
	struct cm_crl_check res;
	char id[CM_ID_LEN + 1];
	enum cm_rc rc;

	cm_crl_check_issuers(&res, body, len, st->fetch_opts.max_size, cands, true, time(NULL), NULL);
	free(body);
	if(res.none_signed){
		rc = cm_err_set(err, CM_ERR_INVAL, "this CRL was not issued by any CA of tenant '%s' (or is not a CRL)", cur->name);
	}else if(res.rc != CM_OK){
		*err = res.err;
		rc = res.rc;
	}else if((t = cm_tenant_clone(cur)) == NULL){
		rc = cm_cmd_nomem(err);
	}else if((rc = entry_for_signer(st, t, cur, res.signer, provided, &e, err)) == CM_OK){
		rc = install_crl(t, e, &res, "upload", NULL, false, err);
	}
	cm_crl_free(&res.crl);
	if(rc != CM_OK){
		cm_tenant_free(&t);
		return rc;
	}
	memcpy(id, e->id, sizeof(id));
	CM_GUARD(cm_registry_put_tenant(st, who->name, who->command, t, id, err));
	add_crl_figures(data, cm_tenant_find_ca(t, id));
	return CM_OK;
}

static enum cm_rc upload_crl(struct cm_state *st, const struct cm_caller *who, const cJSON *cmd, cJSON *data, struct cm_err *err)
{
	const struct cm_tenant *cur;
	STACK_OF(X509) *cands = NULL, *provided = NULL;
	unsigned char *body = NULL;
	size_t len;
	bool pem = false, raw = false;
	enum cm_rc rc;

	CM_GUARD(cm_cmd_tenant(st, cmd, &cur, err));
	CM_GUARD(issuer_certificates(cmd, &provided, err));
	if(cm_control_take_body(who->req, &body, &len)){
		/* As it came on the CRL topic: DER, or PEM that the checks
		 * decode; never base64. */
		raw = true;
		rc = CM_OK;
	}else if(cJSON_GetObjectItemCaseSensitive(cmd, "crl") == NULL){
		rc = cm_err_set(err, CM_ERR_INVAL, "'crl' is missing");
	}else{
		rc = upload_body(cm_arg_string(cmd, "crl", ""), &body, &len, &pem, err);
	}
	if(rc == CM_OK && (cands = upload_candidates(cur, provided)) == NULL){
		rc = cm_cmd_nomem(err);
	}else if(rc == CM_OK && sk_X509_num(cands) == 0){
		rc = cm_err_set(err, CM_ERR_INVAL, "this CRL was not issued by any CA of tenant '%s' (or is not a CRL)", cur->name);
	}
	if(rc != CM_OK){
		free(body);
	}else if(len > CM_CRL_WORKER_THRESHOLD){
		rc = upload_crl_large(st, who, cur, body, len, !pem && !raw, cands, &provided, err);
	}else{
		rc = upload_crl_small(st, who, cur, body, len, cands, provided, data, err);
	}
	sk_X509_free(cands);
	sk_X509_pop_free(provided, X509_free);
	return rc;
}

static void modify_ca_checked(struct cm_state *st, struct crl_wait *w, struct cm_crl_check *res)
{
	const struct cm_tenant *cur;
	struct cm_tenant *t = NULL;
	struct cm_ca *e;
	struct cm_err err = {{0}};
	enum cm_rc rc;

	if((cur = cm_store_find_tenant(st->store, w->tenant)) == NULL || cm_tenant_find_ca(cur, w->ca_id) == NULL){
		rc = cm_err_set(&err, CM_ERR_INVAL, "the CA or its tenant was removed meanwhile");
	}else if((t = cm_tenant_clone(cur)) == NULL){
		rc = cm_cmd_nomem(&err);
	}else{
		e = cm_tenant_ca(t, w->ca_id);
		free(e->crl_url);
		e->crl_url = strdup(w->url);
		if(w->desc){
			free(e->description);
			e->description = strdup(w->desc);
		}
		if(e->crl_url == NULL || e->description == NULL){
			rc = cm_cmd_nomem(&err);
		}else if((rc = install_crl(t, e, res, "url", w->url, false, &err)) != CM_OK){
			char reason[sizeof(err.msg)];
			memcpy(reason, err.msg, sizeof(reason));
			cm_err_set(&err, rc, "the CRL from %s is refused: %s", w->url, reason);
		}
	}
	crl_wait_finish(st, w, "modifyCA", t, rc, &err, ANSWER_CA, res);
}

/* modifyCA's fields, together: something to modify, a known stale
 * policy, a CRL URL apart from a stale policy. */
static enum cm_rc modify_ca_fields(const char *desc, const char *crl_url, const char *stale, struct cm_err *err)
{
	if(desc == NULL && crl_url == NULL && stale == NULL){
		return cm_err_set(err, CM_ERR_INVAL, "nothing to modify: give description, crlUrl or stalePolicy");
	}
	if(stale && strcmp(stale, "fail-closed") && strcmp(stale, "fail-open")){
		return cm_err_set(err, CM_ERR_INVAL, "'stalePolicy' must be fail-closed or fail-open");
	}
	if(crl_url && stale){
		return cm_err_set(err, CM_ERR_INVAL, "give crlUrl and stalePolicy in two commands");
	}
	if(crl_url && !cm_fetch_url_valid(crl_url)){
		return cm_err_set(err, CM_ERR_INVAL, "'crlUrl' must be an http:// or https:// URL");
	}
	return CM_OK;
}

/* A new CRL URL: the CA changes once the CRL from there is in. */
static enum cm_rc modify_ca_wait(struct cm_state *st, const struct cm_caller *who, const char *tenant, const struct cm_ca *ca,
		const char *desc, const char *crl_url, struct cm_err *err)
{
	struct crl_wait *w = crl_wait_new(who, tenant, desc, ANSWER_CA, modify_ca_checked);

	if(w == NULL){
		return cm_cmd_nomem(err);
	}
	memcpy(w->ca_id, ca->id, sizeof(w->ca_id));
	snprintf(w->url, sizeof(w->url), "%s", crl_url);
	return crl_wait_fetch(st, w, err);
}

static enum cm_rc modify_ca(struct cm_state *st, const struct cm_caller *who, const cJSON *cmd, cJSON *data, struct cm_err *err)
{
	const char *desc = cm_arg_string(cmd, "description", NULL), *crl_url = cm_arg_string(cmd, "crlUrl", NULL);
	const char *stale = cm_arg_string(cmd, "stalePolicy", NULL);
	const struct cm_tenant *cur;
	const struct cm_ca *found;
	struct cm_tenant *t;
	struct cm_ca *ca;
	char id[CM_ID_LEN + 1];

	CM_GUARD(cm_cmd_tenant(st, cmd, &cur, err));
	if((found = cm_cas_find_entry(cur, cmd, 0, err)) == NULL){
		return CM_ERR_INVAL;
	}
	CM_GUARD(modify_ca_fields(desc, crl_url, stale, err));
	if(crl_url && found == cm_enroll_issuing_ca(cur)){
		return cm_err_set(err, CM_ERR_INVAL, "CA %s is the tenant's issuing CA: certmgr issues its CRL", found->id);
	}
	if(crl_url){
		return modify_ca_wait(st, who, cur->name, found, desc, crl_url, err);
	}
	memcpy(id, found->id, sizeof(id));
	if((t = cm_tenant_clone(cur)) == NULL){
		return cm_cmd_nomem(err);
	}
	ca = cm_tenant_ca(t, id);
	if(stale){
		ca->stale_fail_open = !strcmp(stale, "fail-open");
		ca->sched.stale_seen = false;
	}
	if(desc){
		free(ca->description);
		if((ca->description = strdup(desc)) == NULL){
			cm_tenant_free(&t);
			return cm_cmd_nomem(err);
		}
	}
	CM_GUARD(cm_registry_put_tenant(st, who->name, who->command, t, id, err));
	cm_cmd_answer(data, "ca", cm_cas_json(cm_tenant_find_ca(t, id), false, NULL));
	return CM_OK;
}

/* refreshCRL's answer: the new CRL state, or why there is none. */
static void refresh_done(struct cm_state *st, void *ctx, enum cm_rc rc, const struct cm_err *err, const struct cm_ca *e)
{
	struct cm_request *req = ctx;

	if(e){
		cJSON *data = cm_control_pending_data(req);
		cJSON_AddStringToObject(data, "id", e->id);
		cJSON_AddNumberToObject(data, "revoked", (double)(e->crl ? e->crl->count : 0));
		if(e->crl){
			cm_json_add_time(data, "thisUpdate", e->crl->this_update);
			if(e->crl->next_update){
				cm_json_add_time(data, "nextUpdate", e->crl->next_update);
			}
		}
	}
	cm_control_resume_owned(st, req, rc, err);
}

static enum cm_rc refresh_crl(struct cm_state *st, const struct cm_caller *who, const cJSON *cmd, cJSON *data, struct cm_err *err)
{
	const struct cm_tenant *t;
	const struct cm_ca *ca;
	enum cm_rc rc;

	(void)data;
	if(cm_cmd_tenant(st, cmd, &t, err) != CM_OK || (ca = cm_cas_find_entry(t, cmd, 0, err)) == NULL){
		return CM_ERR_INVAL;
	}
	rc = cm_refresh_now(st, who->name, t->name, ca->id, refresh_done, who->req, err);
	return rc == CM_OK ? CM_PENDING : rc;
}

static const struct cm_field add_fields[] = {
	{"tenant", CM_FIELD_STRING, CM_REQUIRED, 0, NULL},
	{"certificate", CM_FIELD_STRING, CM_REQUIRED, 0, NULL},
	{"description", CM_FIELD_STRING, CM_OPTIONAL, CM_DESCRIPTION_MAX, NULL},
	{"active", CM_FIELD_BOOL, CM_OPTIONAL, 0, NULL},
	{"crlUrl", CM_FIELD_STRING, CM_OPTIONAL, 0, NULL},
	{"purpose", CM_FIELD_STRING, CM_OPTIONAL, 0, NULL},
	{"verificationCertificate", CM_FIELD_STRING, CM_OPTIONAL, 0, NULL},
	{NULL, CM_FIELD_STRING, CM_OPTIONAL, 0, NULL},
};

static const struct cm_field modify_fields[] = {
	{"tenant", CM_FIELD_STRING, CM_REQUIRED, 0, NULL},
	{"id", CM_FIELD_STRING, CM_REQUIRED, 0, NULL},
	{"description", CM_FIELD_STRING, CM_OPTIONAL, CM_DESCRIPTION_MAX, NULL},
	{"crlUrl", CM_FIELD_STRING, CM_OPTIONAL, 0, NULL},
	{"stalePolicy", CM_FIELD_STRING, CM_OPTIONAL, 0, NULL},
	{NULL, CM_FIELD_STRING, CM_OPTIONAL, 0, NULL},
};

static const struct cm_field upload_fields[] = {
	{"tenant", CM_FIELD_STRING, CM_REQUIRED, 0, NULL},
	/* Required, but for a CRL that came on CM_CONTROL_CRL_TOPIC. */
	{"crl", CM_FIELD_STRING, CM_OPTIONAL, 0, NULL},
	{"issuerCertificates", CM_FIELD_PEMS, CM_OPTIONAL, 0, "a PEM string or an array of them"},
	{NULL, CM_FIELD_STRING, CM_OPTIONAL, 0, NULL},
};

const struct cm_command cm_crl_commands[] = {
	{"addCA", add_ca, CM_WRITES, add_fields},
	{"modifyCA", modify_ca, CM_WRITES, modify_fields},
	{"uploadCRL", upload_crl, CM_WRITES, upload_fields},
	{"refreshCRL", refresh_crl, CM_WRITES, cm_fields_tenant_id},
	{NULL, NULL, CM_READS, NULL},
};
