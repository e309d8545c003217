/* Enrollment: the tenant's policy (modifyTenant's "enrollment"),
 * preRegisterDevices, listEnrollments, approveEnrollment,
 * rejectEnrollment, getRegistrationCode, and addCA's purpose and proof
 * of possession. The issuing CA's own commands are cmd_issuing.c's. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/err.h>

#include "cmd_enroll.h"
#include "control.h"
#include "enrolling.h"
#include "json.h"
#include "log.h"
#include "store.h"

#define MAX_IDS 1000
#define MAX_DAYS 36500

static enum cm_rc days_field(const cJSON *o, const char *name, bool whole, double *out, bool *given, struct cm_err *err)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, name);

	if(v == NULL){
		return CM_OK;
	}
	if(!cJSON_IsNumber(v) || v->valuedouble < 0 || v->valuedouble > MAX_DAYS || (whole && (v->valuedouble < 1 || floor(v->valuedouble) != v->valuedouble))){
		return cm_err_set(err, CM_ERR_INVAL, "'enrollment.%s' must be %s from %d to %d", name, whole ? "a whole number of days" : "a number of days",
				whole ? 1 : 0, MAX_DAYS);
	}
	*out = v->valuedouble;
	*given = true;
	return CM_OK;
}

static enum cm_rc key_types(const cJSON *o, struct cm_csr_rules *r, struct cm_err *err)
{
	const cJSON *types = cJSON_GetObjectItemCaseSensitive(o, "keyTypes"), *item;

	if(types == NULL){
		return CM_OK;
	}
	if(!cJSON_IsArray(types) || cJSON_GetArraySize(types) == 0){
		return cm_err_set(err, CM_ERR_INVAL, "'enrollment.keyTypes' must be a non-empty array of ec, rsa, ed25519");
	}
	r->allow_ec = r->allow_rsa = r->allow_ed25519 = false;
	cJSON_ArrayForEach(item, types){
		const char *t = cJSON_IsString(item) ? item->valuestring : "";
		bool *flag = !strcmp(t, "ec") ? &r->allow_ec : !strcmp(t, "rsa") ? &r->allow_rsa : !strcmp(t, "ed25519") ? &r->allow_ed25519 : NULL;
		if(flag == NULL){
			return cm_err_set(err, CM_ERR_INVAL, "'enrollment.keyTypes' must hold ec, rsa, ed25519");
		}
		*flag = true;
	}
	return CM_OK;
}

static enum cm_rc template_fields(const cJSON *o, struct cm_enroll *e, struct cm_err *err)
{
	const char *in = NULL;
	int64_t bits = e->rules.min_rsa_bits;

	if(cm_json_get_int(o, "minRsaBits", false, 2048, 8192, &bits, err) != CM_OK){
		return cm_err_set(err, CM_ERR_INVAL, "'enrollment.minRsaBits' must be 2048 to 8192: a smaller RSA key is weak");
	}
	e->rules.min_rsa_bits = (int)bits;
	if(cm_json_get_string(o, "identityIn", false, &in, err) != CM_OK || (in && strcmp(in, "cn") && strcmp(in, "email") && strcmp(in, "both"))){
		return cm_err_set(err, CM_ERR_INVAL, "'enrollment.identityIn' must be cn, email or both");
	}
	if(in){
		e->rules.in_cn = strcmp(in, "email") != 0;
		e->rules.in_email = strcmp(in, "cn") != 0;
	}
	return key_types(o, &e->rules, err);
}

static enum cm_rc mode_pattern(const cJSON *o, struct cm_enroll *e, struct cm_err *err)
{
	const char *mode = NULL, *pattern = NULL;

	if(cm_json_get_string(o, "mode", false, &mode, err) != CM_OK || (mode && cm_enroll_mode_parse(mode) < 0)){
		return cm_err_set(err, CM_ERR_INVAL, "'enrollment.mode' must be auto, allowlist or approval");
	}
	if(mode){
		e->mode = (enum cm_enroll_mode)cm_enroll_mode_parse(mode);
	}
	if(cm_json_get_string(o, "idPattern", false, &pattern, err) != CM_OK
			|| (pattern && (strlen(pattern) > CM_ENROLL_PATTERN_MAX || (strncmp(pattern, "d:", 2) && strncmp(pattern, "g:", 2))))){
		return cm_err_set(err, CM_ERR_INVAL, "'enrollment.idPattern' must be a pattern of d:<type>:<id> (or g:), such as \"d:sensor:*\", of at most %d characters",
				CM_ENROLL_PATTERN_MAX);
	}
	if(pattern){
		free(e->id_pattern);
		if((e->id_pattern = strdup(pattern)) == NULL){
			return cm_cmd_nomem(err);
		}
	}
	return CM_OK;
}

static enum cm_rc enrollment_object(const cJSON *o, struct cm_enroll *e, struct cm_err *err)
{
	static const char *const known[] = {"mode", "idPattern", "validityDays", "renewWithinDays", "graceDays", "keyTypes", "minRsaBits", "identityIn"};
	const cJSON *m;
	double validity = 0, renew = 0, grace = 0;
	bool gv = false, gr = false, gg = false;

	cJSON_ArrayForEach(m, o){
		size_t i = 0;
		while(i < sizeof(known) / sizeof(known[0]) && strcmp(known[i], m->string)){
			i++;
		}
		if(i == sizeof(known) / sizeof(known[0])){
			return cm_err_set(err, CM_ERR_INVAL, "unknown field 'enrollment.%.32s' (it takes mode, idPattern, validityDays, renewWithinDays,"
					" graceDays, keyTypes, minRsaBits, identityIn)", m->string);
		}
	}
	CM_GUARD(mode_pattern(o, e, err));
	CM_GUARD(days_field(o, "validityDays", true, &validity, &gv, err));
	CM_GUARD(days_field(o, "renewWithinDays", false, &renew, &gr, err));
	CM_GUARD(days_field(o, "graceDays", false, &grace, &gg, err));
	if(gv){
		e->validity_days = (int)validity;
	}
	if(gr){
		e->renew_within = (time_t)llround(renew * 86400);
	}
	if(gg){
		e->grace = (time_t)llround(grace * 86400);
	}
	return template_fields(o, e, err);
}

enum cm_rc cm_cmd_enroll_fields(struct cm_tenant *t, const cJSON *cmd, bool *changed, struct cm_err *err)
{
	const cJSON *o = cJSON_GetObjectItemCaseSensitive(cmd, "enrollment");
	const cJSON *pop = cJSON_GetObjectItemCaseSensitive(cmd, "requireProofOfPossession");
	struct cm_enroll *e;

	*changed = o || pop;
	if(!*changed){
		return CM_OK;
	}
	if((e = cm_enroll_of(t)) == NULL){
		return cm_cmd_nomem(err);
	}
	if(pop){
		e->require_pop = cJSON_IsTrue(pop);
	}
	return o ? enrollment_object(o, e, err) : CM_OK;
}

cJSON *cm_cmd_enroll_json(const struct cm_enroll *e)
{
	cJSON *o = cJSON_CreateObject(), *types;

	if(o == NULL || !cJSON_AddStringToObject(o, "mode", cm_enroll_mode_name(e->mode))
			|| (e->id_pattern && !cJSON_AddStringToObject(o, "idPattern", e->id_pattern))
			|| !cJSON_AddNumberToObject(o, "validityDays", e->validity_days)
			|| !cJSON_AddNumberToObject(o, "renewWithinDays", (double)e->renew_within / 86400)
			|| !cJSON_AddNumberToObject(o, "graceDays", (double)e->grace / 86400)
			|| (types = cJSON_AddArrayToObject(o, "keyTypes")) == NULL
			|| (e->rules.allow_ec && !cJSON_AddItemToArray(types, cJSON_CreateString("ec")))
			|| (e->rules.allow_rsa && !cJSON_AddItemToArray(types, cJSON_CreateString("rsa")))
			|| (e->rules.allow_ed25519 && !cJSON_AddItemToArray(types, cJSON_CreateString("ed25519")))
			|| !cJSON_AddNumberToObject(o, "minRsaBits", e->rules.min_rsa_bits)
			|| !cJSON_AddStringToObject(o, "identityIn", e->rules.in_cn && e->rules.in_email ? "both" : e->rules.in_email ? "email" : "cn")
			|| !cJSON_AddBoolToObject(o, "requireProofOfPossession", e->require_pop)
			|| (e->ca_id[0] && !cJSON_AddStringToObject(o, "issuingCA", e->ca_id))
			|| !cJSON_AddNumberToObject(o, "preRegistered", (double)e->nallowed)
			|| !cJSON_AddNumberToObject(o, "requests", (double)e->npending)
			|| !cJSON_AddNumberToObject(o, "revoked", (double)e->nrevoked)){
		cJSON_Delete(o);
		return NULL;
	}
	return o;
}

enum cm_rc cm_cmd_ca_purpose(const struct cm_tenant *cur, X509 *cert, const cJSON *cmd, bool *claim, char code[CM_ENROLL_CODE_LEN + 1],
		struct cm_err *err)
{
	const char *purpose = cm_arg_string(cmd, "purpose", "devices"), *vpem = cm_arg_string(cmd, "verificationCertificate", NULL);
	STACK_OF(X509) *v = NULL;
	char cn[128];
	enum cm_rc rc;

	code[0] = '\0';
	if(strcmp(purpose, "devices") && strcmp(purpose, "claim")){
		return cm_err_set(err, CM_ERR_INVAL, "'purpose' must be devices or claim");
	}
	*claim = !strcmp(purpose, "claim");
	if(vpem == NULL){
		if(cur->enroll && cur->enroll->require_pop){
			return cm_err_set(err, CM_ERR_INVAL, "tenant '%s' requires proof of possession: get a code with getRegistrationCode, sign a certificate"
					" whose CN is that code with this CA's key, and give it as 'verificationCertificate'", cur->name);
		}
		return CM_OK;
	}
	CM_GUARD(cm_pki_parse_certs(vpem, strlen(vpem), &v, err));
	cm_pki_subject_cn(sk_X509_value(v, 0), cn, sizeof(cn));
	if(!cm_enroll_has_code(cur->enroll, cn)){
		rc = cm_err_set(err, CM_ERR_INVAL, "the verificationCertificate's CN is no registration code of tenant '%s' (unknown, or used already)",
				cur->name);
	}else{
		rc = cm_sign_check_pop(cert, sk_X509_value(v, 0), cn, err);
	}
	if(rc == CM_OK){
		snprintf(code, CM_ENROLL_CODE_LEN + 1, "%.32s", cn);
	}
	sk_X509_pop_free(v, X509_free);
	return rc;
}

enum cm_rc cm_cmd_ca_apply_purpose(struct cm_tenant *t, struct cm_ca *ca, bool claim, const char *code, struct cm_err *err)
{
	if(code[0]){
		if(!cm_enroll_has_code(t->enroll, code)){
			return cm_err_set(err, CM_ERR_INVAL, "the registration code was used meanwhile");
		}
		cm_enroll_take_code(t->enroll, code);
	}
	ca->claim = claim;
	return CM_OK;
}

enum cm_rc cm_cmd_issuing_tenant(struct cm_state *st, const cJSON *cmd, const struct cm_tenant **out, struct cm_err *err)
{
	CM_GUARD(cm_cmd_tenant(st, cmd, out, err));
	if(cm_enroll_issuing_ca(*out) == NULL){
		return cm_err_set(err, CM_ERR_INVAL, "tenant '%s' has no issuing CA (createIssuingCA or importIssuingCA)", (*out)->name);
	}
	return CM_OK;
}

static enum cm_rc commit(struct cm_state *st, const struct cm_caller *who, struct cm_tenant *t, const char *id, struct cm_err *err)
{
	return cm_registry_put_tenant(st, who->name, who->command, t, id, err);
}

static enum cm_rc pre_register(struct cm_state *st, const struct cm_caller *who, const cJSON *cmd, cJSON *data, struct cm_err *err)
{
	const cJSON *ids = cJSON_GetObjectItemCaseSensitive(cmd, "ids"), *item;
	const struct cm_tenant *cur;
	struct cm_tenant *t;
	enum cm_rc rc = CM_OK;

	CM_GUARD(cm_cmd_tenant(st, cmd, &cur, err));
	cJSON_ArrayForEach(item, ids){
		if(!cm_sign_ident_valid(item->valuestring)){
			return cm_err_set(err, CM_ERR_INVAL, "'%.80s' is not a device identity d:<type>:<id> (or g:)", item->valuestring);
		}
	}
	if((t = cm_tenant_clone(cur)) == NULL || cm_enroll_of(t) == NULL){
		cm_tenant_free(&t);
		return cm_cmd_nomem(err);
	}
	cJSON_ArrayForEach(item, ids){
		if(rc == CM_OK){
			rc = cm_enroll_allow(t->enroll, item->valuestring, err);
		}
	}
	if(rc != CM_OK){
		cm_tenant_free(&t);
		return rc;
	}
	CM_GUARD(commit(st, who, t, NULL, err));
	if(!cJSON_AddNumberToObject(data, "preRegistered", (double)t->enroll->nallowed)){
		return cm_cmd_nomem(err);
	}
	return CM_OK;
}

static cJSON *request_json(const struct cm_enrollment *r)
{
	cJSON *o = cJSON_CreateObject();

	if(o == NULL || !cJSON_AddStringToObject(o, "identity", r->ident) || !cJSON_AddStringToObject(o, "state", cm_enrollment_state_name(r->state))
			|| !cJSON_AddStringToObject(o, "clientId", r->clientid ? r->clientid : "") || !cJSON_AddStringToObject(o, "keyId", r->key_id)
			|| !cm_json_add_time(o, "requested", r->requested) || (r->decided && !cm_json_add_time(o, "decided", r->decided))
			|| (r->reason && !cJSON_AddStringToObject(o, "reason", r->reason))){
		cJSON_Delete(o);
		return NULL;
	}
	return o;
}

static enum cm_rc list_enrollments(struct cm_state *st, const struct cm_caller *who, const cJSON *cmd, cJSON *data, struct cm_err *err)
{
	const struct cm_tenant *t;
	cJSON *arr, *pre;
	const struct cm_enroll *e;

	(void)who;
	CM_GUARD(cm_cmd_tenant(st, cmd, &t, err));
	e = t->enroll;
	if((arr = cJSON_AddArrayToObject(data, "enrollments")) == NULL || (pre = cJSON_AddArrayToObject(data, "preRegistered")) == NULL){
		return cm_cmd_nomem(err);
	}
	for(size_t i = 0; e && i < e->npending; i++){
		cJSON *o = request_json(&e->pending[i]);
		if(o == NULL || !cJSON_AddItemToArray(arr, o)){
			cJSON_Delete(o);
			return cm_cmd_nomem(err);
		}
	}
	for(size_t i = 0; e && i < e->nallowed; i++){
		if(!cJSON_AddItemToArray(pre, cJSON_CreateString(e->allowed[i]))){
			return cm_cmd_nomem(err);
		}
	}
	return CM_OK;
}

/* The pending request the command's "identity" names. */
static enum cm_rc pending_request(const struct cm_tenant *t, const cJSON *cmd, const struct cm_enrollment **out, struct cm_err *err)
{
	const char *ident = cm_arg_string(cmd, "identity", "");

	*out = cm_enroll_find(t->enroll, ident);
	if(*out == NULL){
		return cm_err_set(err, CM_ERR_INVAL, "tenant '%s' has no enrollment request for '%.80s'", t->name, ident);
	}
	if((*out)->state != CM_ENROLLMENT_PENDING){
		return cm_err_set(err, CM_ERR_INVAL, "the request for '%s' is %s already", (*out)->ident, cm_enrollment_state_name((*out)->state));
	}
	return CM_OK;
}

/* The decision into a copy of the tenant, committed, and told to the
 * device if it waits. */
static enum cm_rc decide(struct cm_state *st, const char *who, const char *command, const char *tenant, const char *ident,
		const char *key_id, const char *chain, const char *reason, cJSON *data, struct cm_err *err)
{
	const struct cm_tenant *cur = cm_store_find_tenant(st->store, tenant);
	struct cm_tenant *t;
	struct cm_enrollment *r;
	cJSON *push, *o;

	r = cur ? cm_enroll_find(cur->enroll, ident) : NULL;
	if(r == NULL || r->state != CM_ENROLLMENT_PENDING || strcmp(r->key_id, key_id)){
		return cm_err_set(err, CM_ERR_INVAL, "the request for '%s' was decided or replaced meanwhile", ident);
	}
	if((t = cm_tenant_clone(cur)) == NULL){
		return cm_cmd_nomem(err);
	}
	r = cm_enroll_find(t->enroll, ident);
	r->state = chain ? CM_ENROLLMENT_APPROVED : CM_ENROLLMENT_REJECTED;
	r->decided = time(NULL);
	if((chain && (r->cert = strdup(chain)) == NULL) || (reason && (r->reason = strdup(reason)) == NULL)){
		cm_tenant_free(&t);
		return cm_cmd_nomem(err);
	}
	CM_GUARD(cm_registry_put_tenant(st, who, command, t, NULL, err));
	r = cm_enroll_find(t->enroll, ident);
	push = cJSON_CreateObject();
	if(push && (chain ? cJSON_AddStringToObject(push, "certificate", chain) != NULL
			: cJSON_AddStringToObject(push, "error", "rejected by an operator") != NULL)
			&& (r->correlation == NULL || cJSON_AddStringToObject(push, "correlationData", r->correlation))){
		cm_enroll_push(st, tenant, r->clientid ? r->clientid : "", push);
	}else{
		cJSON_Delete(push);
	}
	cm_enroll_count(st, chain ? "issued" : "refused", tenant, r->clientid, ident, chain ? NULL : "rejected by an operator");
	o = request_json(r);
	cm_cmd_answer(data, "enrollment", o);
	return CM_OK;
}

struct approve_job {
	struct cm_request *req;
	char who[256];
	char tenant[CM_TENANT_NAME_MAX + 1];
	char ident[CM_ENROLL_IDENT_MAX + 1];
	char key_id[CM_ID_LEN + 1];
};

static void approve_signed(struct cm_state *st, void *ctx, enum cm_rc rc, const char *chain, X509 *leaf, const struct cm_err *err, bool aborted)
{
	struct approve_job *j = ctx;
	struct cm_err derr = {{0}};

	(void)leaf;
	if(aborted){
		free(j);
		return;
	}
	if(rc == CM_OK){
		rc = decide(st, j->who, "approveEnrollment", j->tenant, j->ident, j->key_id, chain, NULL, cm_control_pending_data(j->req), &derr);
		err = &derr;
	}
	cm_control_resume(st, j->req, rc, err);
	free(j);
}

static enum cm_rc approve(struct cm_state *st, const struct cm_caller *who, const cJSON *cmd, cJSON *data, struct cm_err *err)
{
	const struct cm_tenant *t;
	const struct cm_enrollment *r;
	struct approve_job *j;
	X509_REQ *csr = NULL;
	enum cm_rc rc;

	(void)data;
	CM_GUARD(cm_cmd_issuing_tenant(st, cmd, &t, err));
	CM_GUARD(pending_request(t, cmd, &r, err));
	CM_GUARD(cm_pki_parse_csr_pem(r->csr, strlen(r->csr), &csr, err));
	if((j = calloc(1, sizeof(*j))) == NULL){
		X509_REQ_free(csr);
		return cm_cmd_nomem(err);
	}
	j->req = who->req;
	snprintf(j->who, sizeof(j->who), "%s", who->name);
	snprintf(j->tenant, sizeof(j->tenant), "%s", t->name);
	snprintf(j->ident, sizeof(j->ident), "%s", r->ident);
	memcpy(j->key_id, r->key_id, sizeof(j->key_id));
	rc = cm_enroll_sign(st, t, r->ident, csr, approve_signed, j, err);
	X509_REQ_free(csr);
	if(rc != CM_OK){
		free(j);
		return rc;
	}
	return CM_PENDING;
}

static enum cm_rc reject(struct cm_state *st, const struct cm_caller *who, const cJSON *cmd, cJSON *data, struct cm_err *err)
{
	const struct cm_tenant *t;
	const struct cm_enrollment *r;
	char ident[CM_ENROLL_IDENT_MAX + 1], key_id[CM_ID_LEN + 1], tenant[CM_TENANT_NAME_MAX + 1];

	CM_GUARD(cm_cmd_tenant(st, cmd, &t, err));
	CM_GUARD(pending_request(t, cmd, &r, err));
	/* Copies: the commit frees the tenant they are in. */
	snprintf(ident, sizeof(ident), "%s", r->ident);
	memcpy(key_id, r->key_id, sizeof(key_id));
	snprintf(tenant, sizeof(tenant), "%s", t->name);
	return decide(st, who->name, who->command, tenant, ident, key_id, NULL, cm_arg_string(cmd, "reason", "no reason given"), data, err);
}

static enum cm_rc registration_code(struct cm_state *st, const struct cm_caller *who, const cJSON *cmd, cJSON *data, struct cm_err *err)
{
	const struct cm_tenant *cur;
	struct cm_tenant *t;
	char code[CM_ENROLL_CODE_LEN + 1];
	enum cm_rc rc;

	CM_GUARD(cm_cmd_tenant(st, cmd, &cur, err));
	if((t = cm_tenant_clone(cur)) == NULL || cm_enroll_of(t) == NULL){
		cm_tenant_free(&t);
		return cm_cmd_nomem(err);
	}
	if((rc = cm_enroll_new_code(t->enroll, code, err)) != CM_OK){
		cm_tenant_free(&t);
		return rc;
	}
	CM_GUARD(commit(st, who, t, NULL, err));
	if(!cJSON_AddStringToObject(data, "registrationCode", code)){
		return cm_cmd_nomem(err);
	}
	return CM_OK;
}

static const struct cm_field pre_register_fields[] = {
	{"tenant", CM_FIELD_STRING, CM_REQUIRED, 0, NULL},
	{"ids", CM_FIELD_STRINGS, CM_REQUIRED, MAX_IDS, NULL},
	{NULL, CM_FIELD_STRING, CM_OPTIONAL, 0, NULL},
};

static const struct cm_field decide_fields[] = {
	{"tenant", CM_FIELD_STRING, CM_REQUIRED, 0, NULL},
	{"identity", CM_FIELD_STRING, CM_REQUIRED, 0, NULL},
	{NULL, CM_FIELD_STRING, CM_OPTIONAL, 0, NULL},
};

static const struct cm_field reject_fields[] = {
	{"tenant", CM_FIELD_STRING, CM_REQUIRED, 0, NULL},
	{"identity", CM_FIELD_STRING, CM_REQUIRED, 0, NULL},
	{"reason", CM_FIELD_STRING, CM_OPTIONAL, 256, NULL},
	{NULL, CM_FIELD_STRING, CM_OPTIONAL, 0, NULL},
};

const struct cm_command cm_enroll_commands[] = {
	{"preRegisterDevices", pre_register, CM_WRITES, pre_register_fields},
	{"listEnrollments", list_enrollments, CM_READS, cm_fields_tenant},
	{"approveEnrollment", approve, CM_WRITES, decide_fields},
	{"rejectEnrollment", reject, CM_WRITES, reject_fields},
	{"getRegistrationCode", registration_code, CM_WRITES, cm_fields_tenant},
	{NULL, NULL, CM_READS, NULL},
};
