/* The issuing CA of a tenant: createIssuingCA (a key made on the worker
 * thread), importIssuingCA, revokeCertificate. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/err.h>
#include <openssl/x509v3.h>

#include "cmd_cas.h"
#include "cmd_enroll.h"
#include "control.h"
#include "enrolling.h"
#include "json.h"
#include "log.h"
#include "worker.h"
#include "store.h"

#define SUBJECT_FIELDS 4 /* CN O OU C */

struct issuing_job {
	struct cm_request *req;
	char who[256], command[32];
	char tenant[CM_TENANT_NAME_MAX + 1];
	/* createIssuingCA: the key to make and the subject; importIssuingCA:
	 * the key's text and passphrase. */
	struct cm_keyspec spec;
	char curve[8];
	char *subject[SUBJECT_FIELDS];
	int days;
	char *key_text, *key_pass;
	X509 *parent;
	EVP_PKEY *parent_key;
	char *store_pass;     /* the store's passphrase, to encrypt the key */
	/* The results. */
	X509 *cert;
	EVP_PKEY *key;
	char *key_pem;
	STACK_OF(X509) *chain;
	struct cm_crl *crl;
	time_t this_update, next_update;
	enum cm_rc rc;
	struct cm_err err;
};

static void free_secret(char **s)
{
	if(*s){
		cm_pki_free_secret(*s, strlen(*s));
		*s = NULL;
	}
}

static void job_free(struct issuing_job *j)
{
	for(int i = 0; i < SUBJECT_FIELDS; i++){
		free(j->subject[i]);
	}
	free_secret(&j->key_text);
	free_secret(&j->key_pass);
	free_secret(&j->store_pass);
	free_secret(&j->key_pem);
	X509_free(j->parent);
	EVP_PKEY_free(j->parent_key);
	X509_free(j->cert);
	EVP_PKEY_free(j->key);
	sk_X509_pop_free(j->chain, X509_free);
	cm_crl_free(&j->crl);
	free(j);
}

/* The key at rest and the first CRL, empty: what both commands end with. */
static enum cm_rc finish_work(struct issuing_job *j)
{
	unsigned char *der = NULL;
	size_t len = 0, plen = 0;
	enum cm_rc rc;

	rc = j->store_pass ? cm_pki_key_to_pem_encrypted(j->key, j->store_pass, &j->key_pem, &plen, &j->err)
			: cm_pki_key_to_pem(j->key, &j->key_pem, &plen, &j->err);
	if(rc == CM_OK){
		rc = cm_sign_make_crl(j->cert, j->key, NULL, 0, 1, j->this_update, j->next_update, &der, &len, &j->err);
	}
	if(rc == CM_OK){
		rc = cm_crl_load(der, len, CM_STORE_MAX_CRL, j->cert, 0, &j->crl, &j->err);
	}
	OPENSSL_free(der);
	return rc;
}

static void create_work(void *arg)
{
	struct issuing_job *j = arg;
	struct cm_ca_subject s = {j->subject[0], j->subject[1], j->subject[2], j->subject[3]};

	j->rc = cm_pki_generate_key(&j->spec, &j->key, &j->err);
	if(j->rc == CM_OK){
		j->rc = cm_sign_make_ca(j->key, &s, j->days, j->parent, j->parent_key, &j->cert, &j->err);
	}
	if(j->rc == CM_OK){
		j->rc = finish_work(j);
	}
	ERR_clear_error();
}

static void import_work(void *arg)
{
	struct issuing_job *j = arg;

	j->rc = cm_pki_parse_key_any(j->key_text, strlen(j->key_text), j->key_pass, &j->key, &j->err);
	if(j->rc == CM_OK && !cm_pki_key_matches(j->cert, j->key)){
		j->rc = cm_err_set(&j->err, CM_ERR_INVAL, "the private key is not the CA certificate's");
	}
	if(j->rc == CM_OK){
		j->rc = finish_work(j);
	}
	ERR_clear_error();
}

/* The CA, its key and first CRL into a copy of the tenant, committed. */
static enum cm_rc install(struct cm_state *st, struct issuing_job *j, cJSON *data, struct cm_err *err)
{
	const struct cm_tenant *cur = cm_store_find_tenant(st->store, j->tenant);
	struct cm_tenant *t;
	struct cm_ca *ca;
	char id[CM_ID_LEN + 1];
	enum cm_rc rc;

	if(cur == NULL){
		return cm_err_set(err, CM_ERR_INVAL, "tenant '%s' was deleted meanwhile", j->tenant);
	}
	if(cm_enroll_issuing_ca(cur)){
		return cm_err_set(err, CM_ERR_INVAL, "tenant '%s' has an issuing CA already (%s)", cur->name, cur->enroll->ca_id);
	}
	CM_GUARD(cm_pki_cert_id(j->cert, id, err));
	if((t = cm_tenant_clone(cur)) == NULL || cm_enroll_of(t) == NULL){
		cm_tenant_free(&t);
		return cm_cmd_nomem(err);
	}
	ca = cm_tenant_ca(t, id);
	rc = ca ? (ca->claim || ca->pinned ? cm_err_set(err, CM_ERR_INVAL, "that CA is in the trust list as a claim CA or a pin") : CM_OK)
			: cm_cmd_admit(t, j->cert, "issuing CA (certmgr)", true, &ca, err);
	if(rc == CM_OK && (rc = cm_ca_put_crl(ca, j->crl, NULL, err)) == CM_OK){
		j->crl = NULL;
		ca->issuer_only = false;
		ca->active = true;
		/* Its CRL is certmgr's own from now: no download replaces it. */
		free(ca->crl_url);
		free(ca->crl_learned_url);
		ca->crl_url = ca->crl_learned_url = NULL;
		snprintf(ca->crl_source, sizeof(ca->crl_source), "issued");
		ca->sched.success = ca->sched.attempt = time(NULL);
		memcpy(t->enroll->ca_id, id, sizeof(t->enroll->ca_id));
		t->enroll->ca_key = j->key;
		t->enroll->ca_key_pem = j->key_pem;
		t->enroll->ca_chain = j->chain;
		j->key = NULL;
		j->key_pem = NULL;
		j->chain = NULL;
		t->enroll->crl_number = 1;
		t->enroll->crl_this_update = j->this_update;
		t->enroll->crl_next_update = j->next_update;
	}
	if(rc != CM_OK){
		cm_tenant_free(&t);
		return rc;
	}
	CM_GUARD(cm_registry_put_tenant(st, j->who, j->command, t, id, err));
	cm_enroll_publish_crl(st, t->name);
	cm_cmd_answer(data, "ca", cm_cas_json(cm_tenant_find_ca(t, id), true, "pem"));
	return CM_OK;
}

static void issuing_done(struct cm_state *st, void *arg, bool aborted)
{
	struct issuing_job *j = arg;
	struct cm_err err = j->err;
	enum cm_rc rc = j->rc;

	if(!aborted){
		if(rc == CM_OK){
			rc = install(st, j, cm_control_pending_data(j->req), &err);
		}
		cm_control_resume(st, j->req, rc, &err);
	}
	job_free(j);
}

static struct issuing_job *job_new(struct cm_state *st, const struct cm_caller *who, const struct cm_tenant *t)
{
	struct issuing_job *j = calloc(1, sizeof(*j));

	if(j == NULL || (st->key_passphrase && (j->store_pass = strdup(st->key_passphrase)) == NULL)){
		free(j);
		return NULL;
	}
	j->req = who->req;
	snprintf(j->who, sizeof(j->who), "%s", who->name);
	snprintf(j->command, sizeof(j->command), "%s", who->command);
	snprintf(j->tenant, sizeof(j->tenant), "%s", t->name);
	j->this_update = time(NULL);
	j->next_update = j->this_update + st->enroll_crl_days * 86400;
	return j;
}

static enum cm_rc submit(struct cm_state *st, struct issuing_job *j, cm_work_fn work, struct cm_err *err)
{
	if(cm_worker_submit(st, work, issuing_done, j, err) != CM_OK){
		job_free(j);
		return CM_ERR_NOMEM;
	}
	return CM_PENDING;
}

/* createIssuingCA's "subject": {CN, O?, OU?, C?}. */
static enum cm_rc read_subject(const cJSON *cmd, struct issuing_job *j, struct cm_err *err)
{
	static const char *const names[SUBJECT_FIELDS] = {"CN", "O", "OU", "C"};
	const cJSON *s = cJSON_GetObjectItemCaseSensitive(cmd, "subject"), *m;

	cJSON_ArrayForEach(m, s){
		int i = 0;
		while(i < SUBJECT_FIELDS && strcmp(names[i], m->string)){
			i++;
		}
		if(i == SUBJECT_FIELDS || !cJSON_IsString(m)){
			return cm_err_set(err, CM_ERR_INVAL, "'subject.%.32s': a subject takes CN, O, OU and C, strings", m->string);
		}
		if((j->subject[i] = strdup(m->valuestring)) == NULL){
			return cm_cmd_nomem(err);
		}
	}
	if(j->subject[0] == NULL){
		return cm_err_set(err, CM_ERR_INVAL, "'subject.CN' is missing");
	}
	return CM_OK;
}

/* createIssuingCA's "parent": the tenant whose issuing CA signs this one. */
static enum cm_rc read_parent(struct cm_state *st, const cJSON *cmd, struct issuing_job *j, struct cm_err *err)
{
	const char *name = cm_arg_string(cmd, "parent", NULL);
	const struct cm_tenant *p;
	const struct cm_ca *ca;

	if(name == NULL){
		return CM_OK;
	}
	p = cm_store_find_tenant(st->store, name);
	if(p == NULL || (ca = cm_enroll_issuing_ca(p)) == NULL){
		return cm_err_set(err, CM_ERR_INVAL, "'parent': tenant '%.64s' has no issuing CA to sign with", name);
	}
	if(!strcmp(p->name, j->tenant)){
		return cm_err_set(err, CM_ERR_INVAL, "'parent' is another tenant's issuing CA");
	}
	if((j->chain = sk_X509_new_null()) == NULL || !X509_up_ref(ca->cert) || !sk_X509_push(j->chain, ca->cert)){
		return cm_cmd_nomem(err);
	}
	for(int i = 0; i < sk_X509_num(p->enroll->ca_chain); i++){
		X509 *c = sk_X509_value(p->enroll->ca_chain, i);
		if(!X509_up_ref(c) || !sk_X509_push(j->chain, c)){
			return cm_cmd_nomem(err);
		}
	}
	if(!X509_up_ref(ca->cert) || !EVP_PKEY_up_ref(p->enroll->ca_key)){
		return cm_cmd_nomem(err);
	}
	j->parent = ca->cert;
	j->parent_key = p->enroll->ca_key;
	return CM_OK;
}

static enum cm_rc create_ca(struct cm_state *st, const struct cm_caller *who, const cJSON *cmd, cJSON *data, struct cm_err *err)
{
	const struct cm_tenant *t;
	struct issuing_job *j;
	double days = cm_arg_number(cmd, "validityDays", 3650);
	enum cm_rc rc;

	(void)data;
	CM_GUARD(cm_cmd_tenant(st, cmd, &t, err));
	if(cm_enroll_issuing_ca(t)){
		return cm_err_set(err, CM_ERR_INVAL, "tenant '%s' has an issuing CA already (%s)", t->name, t->enroll->ca_id);
	}
	if(days < 1 || days > 36500 || (double)(int)days != days){
		return cm_err_set(err, CM_ERR_INVAL, "'validityDays' must be a whole number from 1 to 36500");
	}
	if((j = job_new(st, who, t)) == NULL){
		return cm_cmd_nomem(err);
	}
	j->days = (int)days;
	if((rc = cm_cmd_keyspec(cmd, false, &j->spec, j->curve, err)) != CM_OK || (rc = read_subject(cmd, j, err)) != CM_OK
			|| (rc = read_parent(st, cmd, j, err)) != CM_OK){
		job_free(j);
		return rc;
	}
	j->spec.curve = j->curve;
	return submit(st, j, create_work, err);
}

static enum cm_rc import_ca(struct cm_state *st, const struct cm_caller *who, const cJSON *cmd, cJSON *data, struct cm_err *err)
{
	const char *pem = cm_arg_string(cmd, "certificate", ""), *key = cm_arg_string(cmd, "privateKey", ""), *pass = cm_arg_string(cmd, "passphrase", NULL);
	const struct cm_tenant *t;
	struct issuing_job *j;
	STACK_OF(X509) *certs = NULL;
	enum cm_rc rc;

	(void)data;
	CM_GUARD(cm_cmd_private_keys(who, "accepted", err));
	CM_GUARD(cm_cmd_tenant(st, cmd, &t, err));
	if(cm_enroll_issuing_ca(t)){
		return cm_err_set(err, CM_ERR_INVAL, "tenant '%s' has an issuing CA already (%s)", t->name, t->enroll->ca_id);
	}
	CM_GUARD(cm_pki_parse_certs(pem, strlen(pem), &certs, err));
	if((rc = cm_pki_check_ca(sk_X509_value(certs, 0), time(NULL), err)) != CM_OK || (j = job_new(st, who, t)) == NULL){
		sk_X509_pop_free(certs, X509_free);
		return rc != CM_OK ? rc : cm_cmd_nomem(err);
	}
	/* The first certificate is the CA; the others, the chain above it. */
	j->cert = sk_X509_shift(certs);
	j->chain = certs;
	if((j->key_text = strdup(key)) == NULL || (pass && (j->key_pass = strdup(pass)) == NULL)){
		job_free(j);
		return cm_cmd_nomem(err);
	}
	return submit(st, j, import_work, err);
}

static void revoke_crl_done(struct cm_state *st, void *ctx, enum cm_rc rc, const struct cm_err *err, bool aborted)
{
	struct cm_err e2 = {{0}};

	if(aborted){
		return;
	}
	if(rc != CM_OK){
		cm_err_set(&e2, rc, "the revocation is recorded, but the CRL was not issued (the next tick tries again): %s", err->msg);
	}
	cm_control_resume(st, ctx, rc, &e2);
}

/* The serial revokeCertificate names: "serial", or that of "certificate",
 * which the issuing CA must have issued. */
static enum cm_rc revoke_serial(const struct cm_tenant *t, const cJSON *cmd, char serial[CM_SERIAL_HEX_MAX + 1], struct cm_err *err)
{
	const char *s = cm_arg_string(cmd, "serial", NULL), *pem = cm_arg_string(cmd, "certificate", NULL);
	STACK_OF(X509) *certs = NULL;
	enum cm_rc rc = CM_OK;

	if((s == NULL) == (pem == NULL)){
		return cm_err_set(err, CM_ERR_INVAL, "give exactly one of 'serial' and 'certificate'");
	}
	if(s){
		if(!cm_sign_serial_valid(s)){
			return cm_err_set(err, CM_ERR_INVAL, "'serial' must be 1 to %d hex digits", CM_SERIAL_HEX_MAX);
		}
		snprintf(serial, CM_SERIAL_HEX_MAX + 1, "%s", s);
		return CM_OK;
	}
	CM_GUARD(cm_pki_parse_certs(pem, strlen(pem), &certs, err));
	if(cm_enroll_issuer_entry(t, sk_X509_value(certs, 0)) != cm_enroll_issuing_ca(t)){
		rc = cm_err_set(err, CM_ERR_INVAL, "the certificate was not issued by tenant '%s''s issuing CA", t->name);
	}else if(!cm_sign_serial_hex(X509_get0_serialNumber(sk_X509_value(certs, 0)), serial)){
		rc = cm_err_set(err, CM_ERR_INVAL, "the certificate's serial number is not one a CRL can name");
	}
	sk_X509_pop_free(certs, X509_free);
	return rc;
}

static enum cm_rc revoke(struct cm_state *st, const struct cm_caller *who, const cJSON *cmd, cJSON *data, struct cm_err *err)
{
	const char *reason = cm_arg_string(cmd, "reason", "unspecified");
	char serial[CM_SERIAL_HEX_MAX + 1];
	const struct cm_tenant *cur;
	struct cm_tenant *t;
	const struct cm_revoked *r;
	cJSON *o;
	int why = cm_sign_reason_parse(reason);
	enum cm_rc rc;

	CM_GUARD(cm_cmd_issuing_tenant(st, cmd, &cur, err));
	if(why < 0){
		return cm_err_set(err, CM_ERR_INVAL, "'reason' must be one of RFC 5280's: unspecified, keyCompromise, cACompromise, affiliationChanged,"
				" superseded, cessationOfOperation, certificateHold, privilegeWithdrawn, aACompromise");
	}
	CM_GUARD(revoke_serial(cur, cmd, serial, err));
	if((t = cm_tenant_clone(cur)) == NULL){
		return cm_cmd_nomem(err);
	}
	if((rc = cm_enroll_revoke(t->enroll, serial, time(NULL), why, err)) != CM_OK){
		cm_tenant_free(&t);
		return rc;
	}
	CM_GUARD(cm_registry_put_tenant(st, who->name, who->command, t, serial, err));
	r = cm_enroll_find_revoked(t->enroll, serial);
	o = cJSON_CreateObject();
	if(o && cJSON_AddStringToObject(o, "serial", r->serial) && cm_json_add_time(o, "at", r->at)
			&& cJSON_AddStringToObject(o, "reason", cm_sign_reason_name(r->reason))){
		cm_cmd_answer(data, "revoked", o);
	}else{
		cJSON_Delete(o);
	}
	/* Enforced once the CRL naming it is in force: the answer waits. */
	CM_GUARD(cm_enroll_issue_crl(st, t->name, who->name, "issueCRL", revoke_crl_done, who->req, err));
	return CM_PENDING;
}

static const struct cm_field create_fields[] = {
	{"tenant", CM_FIELD_STRING, CM_REQUIRED, 0, NULL},
	{"subject", CM_FIELD_OBJECT, CM_REQUIRED, 0, "an object {CN, O, OU, C}"},
	{"key", CM_FIELD_OBJECT, CM_OPTIONAL, 0, "an object {type, curve|bits}"},
	{"validityDays", CM_FIELD_NUMBER, CM_OPTIONAL, 36500, NULL},
	{"parent", CM_FIELD_STRING, CM_OPTIONAL, CM_TENANT_NAME_MAX, NULL},
	{NULL, CM_FIELD_STRING, CM_OPTIONAL, 0, NULL},
};

static const struct cm_field import_fields[] = {
	{"tenant", CM_FIELD_STRING, CM_REQUIRED, 0, NULL},
	{"certificate", CM_FIELD_STRING, CM_REQUIRED, 0, NULL},
	{"privateKey", CM_FIELD_STRING, CM_REQUIRED, 0, NULL},
	{"passphrase", CM_FIELD_STRING, CM_OPTIONAL, 1024, NULL},
	{NULL, CM_FIELD_STRING, CM_OPTIONAL, 0, NULL},
};

static const struct cm_field revoke_fields[] = {
	{"tenant", CM_FIELD_STRING, CM_REQUIRED, 0, NULL},
	{"serial", CM_FIELD_STRING, CM_OPTIONAL, CM_SERIAL_HEX_MAX, NULL},
	{"certificate", CM_FIELD_STRING, CM_OPTIONAL, 0, NULL},
	{"reason", CM_FIELD_STRING, CM_OPTIONAL, 32, NULL},
	{NULL, CM_FIELD_STRING, CM_OPTIONAL, 0, NULL},
};

const struct cm_command cm_issuing_commands[] = {
	{"createIssuingCA", create_ca, CM_WRITES, create_fields},
	{"importIssuingCA", import_ca, CM_WRITES, import_fields},
	{"revokeCertificate", revoke, CM_WRITES, revoke_fields},
	{NULL, NULL, CM_READS, NULL},
};
