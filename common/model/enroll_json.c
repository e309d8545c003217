/* A tenant's enrollment record as tenant.json's "enrollment" object. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "enroll.h"
#include "json.h"

static bool add_strings(cJSON *o, const char *name, char *const *v, size_t n)
{
	cJSON *arr = cJSON_AddArrayToObject(o, name);

	for(size_t i = 0; arr && i < n; i++){
		cJSON *s = cJSON_CreateString(v[i]);
		if(s == NULL || !cJSON_AddItemToArray(arr, s)){
			cJSON_Delete(s);
			return false;
		}
	}
	return arr != NULL;
}

static bool add_opt_string(cJSON *o, const char *name, const char *v)
{
	return v == NULL || cJSON_AddStringToObject(o, name, v) != NULL;
}

static cJSON *request_json(const struct cm_enrollment *r)
{
	cJSON *o = cJSON_CreateObject();

	if(o == NULL || !cJSON_AddStringToObject(o, "identity", r->ident) || !cJSON_AddStringToObject(o, "keyId", r->key_id)
			|| !cJSON_AddStringToObject(o, "csr", r->csr ? r->csr : "") || !add_opt_string(o, "clientId", r->clientid)
			|| !add_opt_string(o, "correlationData", r->correlation) || !cm_json_add_time(o, "requested", r->requested)
			|| (r->decided && !cm_json_add_time(o, "decided", r->decided))
			|| !cJSON_AddStringToObject(o, "state", cm_enrollment_state_name(r->state))
			|| !add_opt_string(o, "certificate", r->cert) || !add_opt_string(o, "reason", r->reason)){
		cJSON_Delete(o);
		return NULL;
	}
	return o;
}

static bool add_ca(cJSON *json, const struct cm_enroll *e)
{
	cJSON *ca, *chain;

	if(e->ca_id[0] == '\0'){
		return true;
	}
	if((ca = cJSON_AddObjectToObject(json, "issuingCA")) == NULL || !cJSON_AddStringToObject(ca, "id", e->ca_id)
			|| !cJSON_AddStringToObject(ca, "key", e->ca_key_pem ? e->ca_key_pem : "")
			|| (chain = cJSON_AddArrayToObject(ca, "chain")) == NULL){
		return false;
	}
	for(int i = 0; i < sk_X509_num(e->ca_chain); i++){
		char *pem = NULL;
		size_t len = 0;
		bool ok = cm_pki_chain_to_pem(sk_X509_value(e->ca_chain, i), NULL, &pem, &len, NULL) == CM_OK
				&& cJSON_AddItemToArray(chain, cJSON_CreateString(pem));
		free(pem);
		if(!ok){
			return false;
		}
	}
	return true;
}

static bool add_lists(cJSON *json, const struct cm_enroll *e)
{
	cJSON *codes = cJSON_AddArrayToObject(json, "registrationCodes"), *reqs, *rev;

	for(size_t i = 0; codes && i < e->ncodes; i++){
		if(!cJSON_AddItemToArray(codes, cJSON_CreateString(e->codes[i]))){
			return false;
		}
	}
	if(codes == NULL || !add_strings(json, "allowed", e->allowed, e->nallowed) || (reqs = cJSON_AddArrayToObject(json, "requests")) == NULL
			|| (rev = cJSON_AddArrayToObject(json, "revoked")) == NULL){
		return false;
	}
	for(size_t i = 0; i < e->npending; i++){
		cJSON *r = request_json(&e->pending[i]);
		if(r == NULL || !cJSON_AddItemToArray(reqs, r)){
			cJSON_Delete(r);
			return false;
		}
	}
	for(size_t i = 0; i < e->nrevoked; i++){
		cJSON *r = cJSON_CreateObject();
		if(r == NULL || !cJSON_AddItemToArray(rev, r) || !cJSON_AddStringToObject(r, "serial", e->revoked[i].serial)
				|| !cm_json_add_time(r, "at", e->revoked[i].at)
				|| !cJSON_AddStringToObject(r, "reason", cm_sign_reason_name(e->revoked[i].reason))){
			return false;
		}
	}
	return true;
}

static const char *identity_in(const struct cm_csr_rules *r)
{
	return r->in_cn && r->in_email ? "both" : r->in_email ? "email" : "cn";
}

cJSON *cm_enroll_to_json(const struct cm_enroll *e)
{
	cJSON *json = cJSON_CreateObject(), *types;

	if(json == NULL || !cJSON_AddStringToObject(json, "mode", cm_enroll_mode_name(e->mode))
			|| !add_opt_string(json, "idPattern", e->id_pattern)
			|| !cJSON_AddNumberToObject(json, "validityDays", e->validity_days)
			|| !cJSON_AddNumberToObject(json, "renewWithinSeconds", (double)e->renew_within)
			|| !cJSON_AddNumberToObject(json, "graceSeconds", (double)e->grace)
			|| (types = cJSON_AddArrayToObject(json, "keyTypes")) == NULL
			|| (e->rules.allow_ec && !cJSON_AddItemToArray(types, cJSON_CreateString("ec")))
			|| (e->rules.allow_rsa && !cJSON_AddItemToArray(types, cJSON_CreateString("rsa")))
			|| (e->rules.allow_ed25519 && !cJSON_AddItemToArray(types, cJSON_CreateString("ed25519")))
			|| !cJSON_AddNumberToObject(json, "minRsaBits", e->rules.min_rsa_bits)
			|| !cJSON_AddStringToObject(json, "identityIn", identity_in(&e->rules))
			|| !cJSON_AddBoolToObject(json, "requireProofOfPossession", e->require_pop)
			|| !cJSON_AddNumberToObject(json, "crlNumber", (double)e->crl_number)
			|| (e->crl_this_update && !cm_json_add_time(json, "crlThisUpdate", e->crl_this_update))
			|| (e->crl_next_update && !cm_json_add_time(json, "crlNextUpdate", e->crl_next_update))
			|| !add_ca(json, e) || !add_lists(json, e)){
		cJSON_Delete(json);
		return NULL;
	}
	return json;
}

#define BAD(what) cm_err_set(err, CM_ERR_CORRUPT, "'enrollment': malformed %s", what)

static enum cm_rc dup_field(const cJSON *o, const char *name, bool required, char **out, struct cm_err *err)
{
	const char *s = NULL;

	if(cm_json_get_string(o, name, required, &s, err) != CM_OK){
		return CM_ERR_CORRUPT;
	}
	if(s && (*out = strdup(s)) == NULL){
		return cm_err_set(err, CM_ERR_NOMEM, "out of memory");
	}
	return CM_OK;
}

static enum cm_rc load_request(const cJSON *o, struct cm_enrollment *r, struct cm_err *err)
{
	const char *ident = NULL, *key_id = NULL, *state = NULL;

	memset(r, 0, sizeof(*r));
	if(!cJSON_IsObject(o) || cm_json_get_string(o, "identity", true, &ident, err) != CM_OK
			|| cm_json_get_string(o, "keyId", true, &key_id, err) != CM_OK || cm_json_get_string(o, "state", true, &state, err) != CM_OK
			|| cm_json_get_time(o, "requested", true, &r->requested, err) != CM_OK
			|| cm_json_get_time(o, "decided", false, &r->decided, err) != CM_OK
			|| strlen(ident) > CM_ENROLL_IDENT_MAX || !cm_pki_id_valid(key_id)){
		return BAD("request");
	}
	snprintf(r->ident, sizeof(r->ident), "%s", ident);
	memcpy(r->key_id, key_id, sizeof(r->key_id));
	r->state = !strcmp(state, "approved") ? CM_ENROLLMENT_APPROVED : !strcmp(state, "rejected") ? CM_ENROLLMENT_REJECTED
			: CM_ENROLLMENT_PENDING;
	if(strcmp(state, cm_enrollment_state_name(r->state))){
		return BAD("request state");
	}
	if(dup_field(o, "csr", true, &r->csr, err) != CM_OK || dup_field(o, "clientId", false, &r->clientid, err) != CM_OK
			|| dup_field(o, "correlationData", false, &r->correlation, err) != CM_OK
			|| dup_field(o, "certificate", false, &r->cert, err) != CM_OK || dup_field(o, "reason", false, &r->reason, err) != CM_OK){
		return CM_ERR_CORRUPT;
	}
	return CM_OK;
}

static enum cm_rc load_requests(const cJSON *json, struct cm_enroll *e, struct cm_err *err)
{
	const cJSON *arr = NULL, *item;
	enum cm_rc rc = CM_OK;

	if(cm_json_get_array(json, "requests", false, &arr, err) != CM_OK || cJSON_GetArraySize(arr) > CM_ENROLL_MAX_PENDING){
		return BAD("requests");
	}
	cJSON_ArrayForEach(item, arr){
		struct cm_enrollment r;
		rc = load_request(item, &r, err);
		if(rc == CM_OK){
			rc = cm_enroll_add_request(e, &r, err);
		}
		free(r.csr);
		free(r.clientid);
		free(r.correlation);
		free(r.cert);
		free(r.reason);
		if(rc != CM_OK){
			return rc;
		}
	}
	return CM_OK;
}

static enum cm_rc load_revoked(const cJSON *json, struct cm_enroll *e, struct cm_err *err)
{
	const cJSON *arr = NULL, *item;

	if(cm_json_get_array(json, "revoked", false, &arr, err) != CM_OK || cJSON_GetArraySize(arr) > CM_ENROLL_MAX_REVOKED){
		return BAD("revoked");
	}
	cJSON_ArrayForEach(item, arr){
		const char *serial = NULL, *reason = "unspecified";
		time_t at = 0;
		if(!cJSON_IsObject(item) || cm_json_get_string(item, "serial", true, &serial, err) != CM_OK
				|| cm_json_get_time(item, "at", true, &at, err) != CM_OK || cm_json_get_string(item, "reason", false, &reason, err) != CM_OK
				|| cm_sign_reason_parse(reason) < 0 || cm_enroll_revoke(e, serial, at, cm_sign_reason_parse(reason), err) != CM_OK){
			return BAD("revoked entry");
		}
	}
	return CM_OK;
}

static enum cm_rc load_codes_allowed(const cJSON *json, struct cm_enroll *e, struct cm_err *err)
{
	const cJSON *codes = NULL, *allowed = NULL, *item;

	if(cm_json_get_array(json, "registrationCodes", false, &codes, err) != CM_OK
			|| cm_json_get_array(json, "allowed", false, &allowed, err) != CM_OK
			|| cJSON_GetArraySize(codes) > CM_ENROLL_MAX_CODES || cJSON_GetArraySize(allowed) > CM_ENROLL_MAX_ALLOWED){
		return BAD("lists");
	}
	cJSON_ArrayForEach(item, codes){
		if(!cJSON_IsString(item) || strlen(item->valuestring) != CM_ENROLL_CODE_LEN){
			return BAD("registration code");
		}
		char (*grown)[CM_ENROLL_CODE_LEN + 1] = realloc(e->codes, (e->ncodes + 1) * sizeof(*grown));
		if(grown == NULL){
			return cm_err_set(err, CM_ERR_NOMEM, "out of memory");
		}
		e->codes = grown;
		memcpy(e->codes[e->ncodes++], item->valuestring, CM_ENROLL_CODE_LEN + 1);
	}
	cJSON_ArrayForEach(item, allowed){
		if(!cJSON_IsString(item) || strlen(item->valuestring) > CM_ENROLL_IDENT_MAX){
			return BAD("allowed identity");
		}
		if(cm_enroll_allow(e, item->valuestring, err) != CM_OK){
			return CM_ERR_CORRUPT;
		}
	}
	return CM_OK;
}

/* The CA key: decrypted with pass; stored plain while a passphrase is
 * in force, it is encrypted again for the next write. */
static enum cm_rc load_key(const char *pem, const char *pass, struct cm_enroll *e, struct cm_err *err)
{
	bool encrypted = strstr(pem, "ENCRYPTED") != NULL;
	char *again = NULL;
	size_t len = 0;

	if(encrypted && pass == NULL){
		return cm_err_set(err, CM_ERR_CORRUPT, "the issuing CA's key is encrypted and no plugin_opt_key_passphrase_file is given");
	}
	if(cm_pki_parse_key_any(pem, strlen(pem), encrypted ? pass : NULL, &e->ca_key, err) != CM_OK){
		return cm_err_set(err, CM_ERR_CORRUPT, "the issuing CA's key cannot be read: %s", err ? err->msg : "");
	}
	if(pass && !encrypted){
		if(cm_pki_key_to_pem_encrypted(e->ca_key, pass, &again, &len, err) != CM_OK){
			return CM_ERR_CORRUPT;
		}
		e->ca_key_pem = again;
		return CM_OK;
	}
	return (e->ca_key_pem = strdup(pem)) ? CM_OK : cm_err_set(err, CM_ERR_NOMEM, "out of memory");
}

static enum cm_rc load_ca(const cJSON *json, const char *pass, struct cm_enroll *e, struct cm_err *err)
{
	const cJSON *ca = cJSON_GetObjectItemCaseSensitive(json, "issuingCA"), *chain = NULL, *item;
	const char *id = NULL, *key = NULL;

	if(ca == NULL){
		return CM_OK;
	}
	if(!cJSON_IsObject(ca) || cm_json_get_string(ca, "id", true, &id, err) != CM_OK || !cm_pki_id_valid(id)
			|| cm_json_get_string(ca, "key", true, &key, err) != CM_OK || cm_json_get_array(ca, "chain", false, &chain, err) != CM_OK
			|| (e->ca_chain = sk_X509_new_null()) == NULL){
		return BAD("issuingCA");
	}
	memcpy(e->ca_id, id, sizeof(e->ca_id));
	cJSON_ArrayForEach(item, chain){
		STACK_OF(X509) *certs = NULL;
		if(!cJSON_IsString(item) || cm_pki_parse_certs(item->valuestring, strlen(item->valuestring), &certs, err) != CM_OK){
			return BAD("issuingCA chain");
		}
		while(sk_X509_num(certs) > 0){
			X509 *c = sk_X509_shift(certs);
			if(!sk_X509_push(e->ca_chain, c)){
				X509_free(c);
				sk_X509_pop_free(certs, X509_free);
				return cm_err_set(err, CM_ERR_NOMEM, "out of memory");
			}
		}
		sk_X509_free(certs);
	}
	return load_key(key, pass, e, err);
}

static enum cm_rc load_policy(const cJSON *json, struct cm_enroll *e, struct cm_err *err)
{
	const char *mode = NULL, *in = "cn";
	const cJSON *types = NULL, *item;
	int64_t days = 365, renew = 0, grace = 0, bits = 2048, number = 0;

	if(cm_json_get_string(json, "mode", true, &mode, err) != CM_OK || cm_enroll_mode_parse(mode) < 0
			|| cm_json_get_int(json, "validityDays", false, 1, 36500, &days, err) != CM_OK
			|| cm_json_get_int(json, "renewWithinSeconds", false, 0, 36500LL * 86400, &renew, err) != CM_OK
			|| cm_json_get_int(json, "graceSeconds", false, 0, 36500LL * 86400, &grace, err) != CM_OK
			|| cm_json_get_int(json, "minRsaBits", false, 2048, 8192, &bits, err) != CM_OK
			|| cm_json_get_int(json, "crlNumber", false, 0, INT32_MAX, &number, err) != CM_OK
			|| cm_json_get_string(json, "identityIn", false, &in, err) != CM_OK
			|| (strcmp(in, "cn") && strcmp(in, "email") && strcmp(in, "both"))
			|| cm_json_get_bool(json, "requireProofOfPossession", false, &e->require_pop, err) != CM_OK
			|| cm_json_get_time(json, "crlThisUpdate", false, &e->crl_this_update, err) != CM_OK
			|| cm_json_get_time(json, "crlNextUpdate", false, &e->crl_next_update, err) != CM_OK
			|| cm_json_get_array(json, "keyTypes", false, &types, err) != CM_OK
			|| dup_field(json, "idPattern", false, &e->id_pattern, err) != CM_OK){
		return BAD("policy");
	}
	e->mode = (enum cm_enroll_mode)cm_enroll_mode_parse(mode);
	e->validity_days = (int)days;
	e->renew_within = (time_t)renew;
	e->grace = (time_t)grace;
	e->rules.min_rsa_bits = (int)bits;
	e->rules.in_cn = strcmp(in, "email") != 0;
	e->rules.in_email = strcmp(in, "cn") != 0;
	e->crl_number = (unsigned long)number;
	if(types){
		e->rules.allow_ec = e->rules.allow_rsa = e->rules.allow_ed25519 = false;
	}
	cJSON_ArrayForEach(item, types){
		const char *t = cJSON_IsString(item) ? item->valuestring : "";
		bool *flag = !strcmp(t, "ec") ? &e->rules.allow_ec : !strcmp(t, "rsa") ? &e->rules.allow_rsa
				: !strcmp(t, "ed25519") ? &e->rules.allow_ed25519 : NULL;
		if(flag == NULL){
			return BAD("keyTypes");
		}
		*flag = true;
	}
	return CM_OK;
}

enum cm_rc cm_enroll_from_json(const cJSON *json, const char *pass, struct cm_enroll **out, struct cm_err *err)
{
	struct cm_enroll *e;
	enum cm_rc rc;

	*out = NULL;
	if(!cJSON_IsObject(json)){
		return BAD("object");
	}
	if((e = cm_enroll_new()) == NULL){
		return cm_err_set(err, CM_ERR_NOMEM, "out of memory");
	}
	rc = load_policy(json, e, err);
	if(rc == CM_OK){
		rc = load_codes_allowed(json, e, err);
	}
	if(rc == CM_OK){
		rc = load_requests(json, e, err);
	}
	if(rc == CM_OK){
		rc = load_revoked(json, e, err);
	}
	if(rc == CM_OK){
		rc = load_ca(json, pass, e, err);
	}
	if(rc != CM_OK){
		cm_enroll_free(&e);
		return rc == CM_ERR_NOMEM ? rc : CM_ERR_CORRUPT;
	}
	*out = e;
	return CM_OK;
}
