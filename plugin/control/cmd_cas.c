/* The trust list of a tenant: removeCA, setCAState, clearCAs, listCAs,
 * getCA, exportTrustList, trustCertificate, untrustCertificate,
 * inspectCertificate, trustServerCertificate (the commands that bring a
 * CRL are cmd_crls.c's). Every way a certificate enters a trust list
 * goes through cm_cmd_admit. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/x509v3.h>

#include "render.h"
#include "cmd_cas.h"
#include "control.h"
#include "json.h"
#include "log.h"
#include "store.h"

#define MAX_BUNDLE 100

enum cm_rc cm_cmd_admit(struct cm_tenant *t, X509 *cert, const char *desc, bool active, struct cm_ca **out, struct cm_err *err)
{
	struct cm_ca *ca;
	time_t now = time(NULL);
	bool is_ca = (X509_get_extension_flags(cert) & EXFLAG_CA) != 0;
	char id[CM_ID_LEN + 1];
	enum cm_rc rc;

	if(out){
		*out = NULL;
	}
	if(strlen(desc) > CM_DESCRIPTION_MAX){
		return cm_err_set(err, CM_ERR_INVAL, "'description' is longer than %d characters", CM_DESCRIPTION_MAX);
	}
	rc = cm_pki_cert_id(cert, id, err);
	if(rc != CM_OK){
		return rc;
	}
	if(is_ca){
		rc = cm_pki_check_ca(cert, now, err);
		if(rc != CM_OK){
			return rc;
		}
	}else if(X509_cmp_time(X509_get0_notBefore(cert), &now) > 0){
		return cm_err_set(err, CM_ERR_INVAL, "certificate %s is not valid yet", id);
	}else if(X509_cmp_time(X509_get0_notAfter(cert), &now) < 0){
		return cm_err_set(err, CM_ERR_INVAL, "certificate %s has expired", id);
	}
	rc = cm_tenant_append_ca(t, cert, desc, &ca, err);
	if(rc != CM_OK){
		return rc;
	}
	ca->pinned = !is_ca;
	ca->active = is_ca ? active : true;
	if(out){
		*out = ca;
	}
	return CM_OK;
}

static void ca_unlink(struct cm_tenant *t, const char *id)
{
	struct cm_ca **pp, *gone;

	for(pp = &t->cas; *pp; pp = &(*pp)->next){
		if(!strcmp((*pp)->id, id)){
			gone = *pp;
			*pp = gone->next;
			cm_ca_free(&gone);
			return;
		}
	}
}

/* The CRL state of a CA: where its CRL comes from and what is known. */
static bool add_crl_state(cJSON *o, const struct cm_ca *ca, bool full)
{
	cJSON *c = cJSON_AddObjectToObject(o, "crl");

	if(c == NULL || !cJSON_AddStringToObject(c, "source", ca->crl && ca->crl_source[0] ? ca->crl_source : "none")){
		return false;
	}
	if(!full){
		return !ca->crl || cJSON_AddNumberToObject(c, "revoked", (double)ca->crl->count);
	}
	if((ca->crl_url && !cJSON_AddStringToObject(c, "url", ca->crl_url))
			|| (ca->crl_learned_url && !cJSON_AddStringToObject(c, "learnedUrl", ca->crl_learned_url))
			|| (ca->sched.attempt && !cm_json_add_time(c, "lastAttempt", ca->sched.attempt))
			|| (ca->sched.success && !cm_json_add_time(c, "lastSuccess", ca->sched.success))
			|| (ca->sched.error[0] && !cJSON_AddStringToObject(c, "lastError", ca->sched.error))
			|| !cJSON_AddStringToObject(c, "stalePolicy", ca->stale_fail_open ? "fail-open" : "fail-closed")
			|| (ca->sched.next_attempt && !cm_json_add_time(c, "nextAttempt", ca->sched.next_attempt))
			|| !cJSON_AddNumberToObject(c, "failures", ca->sched.failures)){
		return false;
	}
	if(ca->crl){
		if(!cm_json_add_time(c, "thisUpdate", ca->crl->this_update)
				|| (ca->crl->next_update && !cm_json_add_time(c, "nextUpdate", ca->crl->next_update))
				|| !cJSON_AddNumberToObject(c, "revoked", (double)ca->crl->count)){
			return false;
		}
	}
	return true;
}

cJSON *cm_cas_json(const struct cm_ca *ca, bool full, const char *format)
{
	cJSON *o = full ? cm_render_cert_details(ca->cert) : cJSON_CreateObject();
	char cn[256];
	char *body = NULL;
	size_t len;

	if(o == NULL){
		return NULL;
	}
	if(!full){
		cm_pki_subject_cn(ca->cert, cn, sizeof(cn));
		cJSON_AddStringToObject(o, "id", ca->id);
		cJSON_AddStringToObject(o, "commonName", cn);
	}
	if(!cJSON_AddStringToObject(o, "description", ca->description)
			|| !cJSON_AddBoolToObject(o, "active", ca->active)
			|| !cm_json_add_time(o, "added", ca->added)
			|| (ca->claim && !cJSON_AddStringToObject(o, "purpose", "claim"))){
		cJSON_Delete(o);
		return NULL;
	}
	if(!ca->pinned && !add_crl_state(o, ca, full)){
		cJSON_Delete(o);
		return NULL;
	}
	if(!full){
		struct tm tm;
		if(ASN1_TIME_to_tm(X509_get0_notAfter(ca->cert), &tm)){
			cm_json_add_time(o, "notAfter", timegm(&tm));
		}
		return o;
	}
	if(!strcmp(format, "der")){
		if(cm_pki_cert_to_der_b64(ca->cert, &body, NULL) != CM_OK){
			cJSON_Delete(o);
			return NULL;
		}
	}else if(cm_pki_chain_to_pem(ca->cert, NULL, &body, &len, NULL) != CM_OK){
		cJSON_Delete(o);
		return NULL;
	}
	cJSON_AddStringToObject(o, "format", format);
	cJSON_AddStringToObject(o, "certificate", body);
	free(body);
	return o;
}

const struct cm_ca *cm_cas_find_entry(const struct cm_tenant *t, const cJSON *cmd, int want_pinned, struct cm_err *err)
{
	const char *id = cm_arg_string(cmd, "id", "");
	const struct cm_ca *ca;

	ca = cm_pki_id_valid(id) ? cm_tenant_find_ca(t, id) : NULL;
	if(ca == NULL || (want_pinned >= 0 && ca->pinned != (want_pinned == 1))){
		cm_err_set(err, CM_ERR_INVAL, "no %s '%.64s' in tenant '%s'", want_pinned == 1 ? "pinned certificate" : want_pinned == 0 ? "CA" : "certificate", id, t->name);
		return NULL;
	}
	return ca;
}

/* removeCA and untrustCertificate: an entry leaves the trust list. */
static enum cm_rc remove_entry(struct cm_state *st, const struct cm_caller *who, const cJSON *cmd, int want_pinned, struct cm_err *err)
{
	const struct cm_tenant *cur;
	struct cm_tenant *t;
	const struct cm_ca *ca;
	char id[CM_ID_LEN + 1];

	if(cm_cmd_tenant(st, cmd, &cur, err) != CM_OK || (ca = cm_cas_find_entry(cur, cmd, want_pinned, err)) == NULL){
		return CM_ERR_INVAL;
	}
	memcpy(id, ca->id, sizeof(id));
	t = cm_tenant_clone(cur);
	if(t == NULL){
		return cm_cmd_nomem(err);
	}
	ca_unlink(t, id);
	return cm_registry_put_tenant(st, who->name, who->command, t, id, err);
}

static enum cm_rc remove_ca(struct cm_state *st, const struct cm_caller *who, const cJSON *cmd, cJSON *data, struct cm_err *err)
{
	(void)data;
	return remove_entry(st, who, cmd, 0, err);
}

static enum cm_rc untrust_certificate(struct cm_state *st, const struct cm_caller *who, const cJSON *cmd, cJSON *data, struct cm_err *err)
{
	(void)data;
	return remove_entry(st, who, cmd, -1, err);
}

static enum cm_rc set_ca_state(struct cm_state *st, const struct cm_caller *who, const cJSON *cmd, cJSON *data, struct cm_err *err)
{
	const struct cm_tenant *cur;
	struct cm_tenant *t;
	const struct cm_ca *ca;
	bool active = cm_arg_bool(cmd, "active", true);
	char id[CM_ID_LEN + 1];
	enum cm_rc rc;

	if(cm_cmd_tenant(st, cmd, &cur, err) != CM_OK || (ca = cm_cas_find_entry(cur, cmd, 0, err)) == NULL){
		return CM_ERR_INVAL;
	}
	memcpy(id, ca->id, sizeof(id));
	t = cm_tenant_clone(cur);
	if(t == NULL){
		return cm_cmd_nomem(err);
	}
	cm_tenant_ca(t, id)->active = active;
	rc = cm_registry_put_tenant(st, who->name, active ? "setCAState active" : "setCAState inactive", t, id, err);
	if(rc == CM_OK){
		cJSON *o = cm_cas_json(cm_tenant_find_ca(t, id), false, NULL);
		if(o && !cJSON_AddItemToObject(data, "ca", o)){
			cJSON_Delete(o);
		}
	}
	return rc;
}

static enum cm_rc clear_cas(struct cm_state *st, const struct cm_caller *who, const cJSON *cmd, cJSON *data, struct cm_err *err)
{
	const struct cm_tenant *cur;
	struct cm_tenant *t;
	struct cm_ca *ca, *next, **keep;
	int removed = 0;
	enum cm_rc rc;

	if(cm_cmd_tenant(st, cmd, &cur, err) != CM_OK){
		return CM_ERR_INVAL;
	}
	t = cm_tenant_clone(cur);
	if(t == NULL){
		return cm_cmd_nomem(err);
	}
	keep = &t->cas;
	for(ca = t->cas; ca; ca = next){
		next = ca->next;
		if(ca->pinned){
			*keep = ca;
			keep = &ca->next;
		}else{
			removed += !ca->issuer_only;
			cm_ca_free(&ca);
		}
	}
	*keep = NULL;
	rc = cm_registry_put_tenant(st, who->name, who->command, t, NULL, err);
	if(rc == CM_OK){
		cJSON_AddNumberToObject(data, "removed", removed);
	}
	return rc;
}

static enum cm_rc list_cas(struct cm_state *st, const struct cm_caller *who, const cJSON *cmd, cJSON *data, struct cm_err *err)
{
	const struct cm_tenant *t;
	const struct cm_ca *ca;
	cJSON *cas, *pins, *issuers;

	(void)who;
	if(cm_cmd_tenant(st, cmd, &t, err) != CM_OK){
		return CM_ERR_INVAL;
	}
	cas = cJSON_AddArrayToObject(data, "cas");
	pins = cJSON_AddArrayToObject(data, "pinned");
	/* Intermediates that are not in the trust list, with their CRLs. */
	issuers = cJSON_AddArrayToObject(data, "issuers");
	for(ca = t->cas; cas && pins && issuers && ca; ca = ca->next){
		cJSON *o = cm_cas_json(ca, false, NULL);
		if(o == NULL || !cJSON_AddItemToArray(ca->issuer_only ? issuers : ca->pinned ? pins : cas, o)){
			cJSON_Delete(o);
			return cm_cmd_nomem(err);
		}
	}
	return cas && pins && issuers ? CM_OK : cm_cmd_nomem(err);
}

static enum cm_rc get_ca(struct cm_state *st, const struct cm_caller *who, const cJSON *cmd, cJSON *data, struct cm_err *err)
{
	const struct cm_tenant *t;
	const struct cm_ca *ca;
	const char *format = cm_arg_string(cmd, "format", "pem");
	cJSON *o;

	(void)who;
	CM_GUARD(cm_cmd_tenant(st, cmd, &t, err));
	if(strcmp(format, "pem") && strcmp(format, "der")){
		return cm_err_set(err, CM_ERR_INVAL, "'format' must be pem or der");
	}
	if((ca = cm_cas_find_entry(t, cmd, -1, err)) == NULL){
		return CM_ERR_INVAL;
	}
	o = cm_cas_json(ca, true, format);
	if(o == NULL || !cJSON_AddItemToObject(data, "ca", o)){
		cJSON_Delete(o);
		return cm_cmd_nomem(err);
	}
	return CM_OK;
}

static enum cm_rc export_trust_list(struct cm_state *st, const struct cm_caller *who, const cJSON *cmd, cJSON *data, struct cm_err *err)
{
	const struct cm_tenant *t;
	const struct cm_ca *ca;
	char *bundle = NULL;
	size_t used = 0;
	int count = 0;

	(void)who;
	if(cm_cmd_tenant(st, cmd, &t, err) != CM_OK){
		return CM_ERR_INVAL;
	}
	bundle = calloc(1, 1);
	for(ca = t->cas; bundle && ca; ca = ca->next){
		char *pem = NULL, *grown;
		size_t len = 0;
		if(ca->issuer_only){
			continue;
		}
		if(cm_pki_chain_to_pem(ca->cert, NULL, &pem, &len, err) != CM_OK || (grown = realloc(bundle, used + len + 1)) == NULL){
			free(pem);
			free(bundle);
			return cm_cmd_nomem(err);
		}
		bundle = grown;
		memcpy(bundle + used, pem, len + 1);
		used += len;
		free(pem);
		count++;
	}
	if(bundle == NULL || !cJSON_AddStringToObject(data, "tenant", t->name)
			|| !cJSON_AddNumberToObject(data, "count", count)
			|| !cJSON_AddStringToObject(data, "trustList", bundle)){
		free(bundle);
		return cm_cmd_nomem(err);
	}
	free(bundle);
	return CM_OK;
}

static enum cm_rc trust_certificate(struct cm_state *st, const struct cm_caller *who, const cJSON *cmd, cJSON *data, struct cm_err *err)
{
	const char *pem = cm_arg_string(cmd, "certificate", ""), *desc = cm_arg_string(cmd, "description", "");
	const struct cm_tenant *cur;
	struct cm_tenant *t;
	STACK_OF(X509) *certs = NULL;
	cJSON *added;
	enum cm_rc rc = CM_OK;
	int i;

	CM_GUARD(cm_cmd_tenant(st, cmd, &cur, err));
	rc = cm_control_parse_certs(who, pem, &certs, err);
	if(rc != CM_OK){
		return rc;
	}
	if(sk_X509_num(certs) > MAX_BUNDLE){
		sk_X509_pop_free(certs, X509_free);
		return cm_err_set(err, CM_ERR_INVAL, "more than %d certificates in one request", MAX_BUNDLE);
	}
	t = cm_tenant_clone(cur);
	added = cJSON_AddArrayToObject(data, "added");
	if(t == NULL || added == NULL){
		cm_tenant_free(&t);
		sk_X509_pop_free(certs, X509_free);
		return cm_cmd_nomem(err);
	}
	/* All or nothing: the first refusal leaves the trust list as it was. */
	for(i = 0; rc == CM_OK && i < sk_X509_num(certs); i++){
		struct cm_ca *ca;
		rc = cm_cmd_admit(t, sk_X509_value(certs, i), desc, true, &ca, err);
		if(rc == CM_OK){
			cJSON *o = cJSON_CreateObject();
			if(o == NULL || !cJSON_AddItemToArray(added, o)){
				cJSON_Delete(o);
				rc = cm_cmd_nomem(err);
				break;
			}
			cJSON_AddStringToObject(o, "id", ca->id);
			cJSON_AddStringToObject(o, "kind", ca->pinned ? "pinned" : "ca");
		}else if(sk_X509_num(certs) > 1){
			char reason[sizeof(err->msg)];
			memcpy(reason, err->msg, sizeof(reason));
			cm_err_set(err, rc, "certificate %d of %d: %s", i + 1, sk_X509_num(certs), reason);
		}
	}
	sk_X509_pop_free(certs, X509_free);
	if(rc != CM_OK){
		cm_tenant_free(&t);
		return rc;
	}
	return cm_registry_put_tenant(st, who->name, who->command, t, NULL, err);
}

static enum cm_rc inspect_certificate(struct cm_state *st, const struct cm_caller *who, const cJSON *cmd, cJSON *data, struct cm_err *err)
{
	const char *pem = cm_arg_string(cmd, "certificate", "");
	STACK_OF(X509) *certs = NULL;
	cJSON *arr;
	enum cm_rc rc;
	int i;

	(void)st;
	(void)who;
	rc = cm_pki_parse_certs(pem, strlen(pem), &certs, err);
	if(rc != CM_OK){
		return rc;
	}
	arr = cJSON_AddArrayToObject(data, "certificates");
	for(i = 0; arr && i < sk_X509_num(certs) && i < MAX_BUNDLE; i++){
		cJSON *o = cm_render_cert_details(sk_X509_value(certs, i));
		if(o == NULL || !cJSON_AddItemToArray(arr, o)){
			cJSON_Delete(o);
			arr = NULL;
		}
	}
	sk_X509_pop_free(certs, X509_free);
	return arr ? CM_OK : cm_cmd_nomem(err);
}

/* A slot's certificate chain into a tenant's trust list: bridged nodes
 * that share a store, or copy one, trust each other's certificates. */
static enum cm_rc trust_server_certificate(struct cm_state *st, const struct cm_caller *who, const cJSON *cmd, cJSON *data, struct cm_err *err)
{
	const char *id = cm_arg_string(cmd, "id", "");
	const struct cm_server_cert *sc;
	const struct cm_tenant *cur;
	struct cm_tenant *t;
	enum cm_slot_id slot;
	cJSON *added;
	int i;
	enum cm_rc rc = CM_OK;

	CM_GUARD(cm_cmd_tenant(st, cmd, &cur, err));
	CM_GUARD(cm_cmd_slot(cmd, &slot, err));
	if((sc = cm_store_find_server_cert(st->store, slot, id)) == NULL){
		return cm_err_set(err, CM_ERR_INVAL, "no certificate '%.64s' in slot %s", id, cm_slot_name(slot));
	}
	t = cm_tenant_clone(cur);
	added = cJSON_AddArrayToObject(data, "added");
	if(t == NULL || added == NULL){
		cm_tenant_free(&t);
		return cm_cmd_nomem(err);
	}
	/* The leaf is pinned, each CA of its chain admitted as a CA; what is
	 * there already stays. */
	for(i = -1; rc == CM_OK && i < sk_X509_num(sc->extra); i++){
		X509 *c = i < 0 ? sc->leaf : sk_X509_value(sc->extra, i);
		struct cm_ca *ca;
		char cid[CM_ID_LEN + 1];
		if(cm_pki_cert_id(c, cid, err) != CM_OK){
			rc = CM_ERR_CRYPTO;
			break;
		}
		if(cm_tenant_find_ca(t, cid)){
			continue;
		}
		rc = cm_cmd_admit(t, c, "trusted from a server certificate", true, &ca, err);
		if(rc == CM_OK){
			cJSON *o = cJSON_CreateObject();
			if(o && cJSON_AddItemToArray(added, o)){
				cJSON_AddStringToObject(o, "id", ca->id);
				cJSON_AddStringToObject(o, "kind", ca->pinned ? "pinned" : "ca");
			}else{
				cJSON_Delete(o);
			}
		}
	}
	if(rc != CM_OK){
		cm_tenant_free(&t);
		return rc;
	}
	return cm_registry_put_tenant(st, who->name, who->command, t, sc->id, err);
}

static const struct cm_field state_fields[] = {
	{"tenant", CM_FIELD_STRING, CM_REQUIRED, 0, NULL},
	{"id", CM_FIELD_STRING, CM_REQUIRED, 0, NULL},
	{"active", CM_FIELD_BOOL, CM_REQUIRED, 0, NULL},
	{NULL, CM_FIELD_STRING, CM_OPTIONAL, 0, NULL},
};

static const struct cm_field get_fields[] = {
	{"tenant", CM_FIELD_STRING, CM_REQUIRED, 0, NULL},
	{"id", CM_FIELD_STRING, CM_REQUIRED, 0, NULL},
	{"format", CM_FIELD_STRING, CM_OPTIONAL, 0, NULL},
	{NULL, CM_FIELD_STRING, CM_OPTIONAL, 0, NULL},
};

static const struct cm_field trust_fields[] = {
	{"tenant", CM_FIELD_STRING, CM_REQUIRED, 0, NULL},
	{"certificate", CM_FIELD_STRING, CM_REQUIRED, 0, NULL},
	{"description", CM_FIELD_STRING, CM_OPTIONAL, CM_DESCRIPTION_MAX, NULL},
	{NULL, CM_FIELD_STRING, CM_OPTIONAL, 0, NULL},
};

static const struct cm_field inspect_fields[] = {
	{"certificate", CM_FIELD_STRING, CM_REQUIRED, 0, NULL},
	{NULL, CM_FIELD_STRING, CM_OPTIONAL, 0, NULL},
};

static const struct cm_field trust_server_fields[] = {
	{"tenant", CM_FIELD_STRING, CM_REQUIRED, 0, NULL},
	{"slot", CM_FIELD_STRING, CM_REQUIRED, 0, NULL},
	{"id", CM_FIELD_STRING, CM_REQUIRED, 0, NULL},
	{NULL, CM_FIELD_STRING, CM_OPTIONAL, 0, NULL},
};


const struct cm_command cm_ca_commands[] = {
	{"removeCA", remove_ca, CM_WRITES, cm_fields_tenant_id},
	{"setCAState", set_ca_state, CM_WRITES, state_fields},
	{"clearCAs", clear_cas, CM_WRITES, cm_fields_tenant},
	{"listCAs", list_cas, CM_READS, cm_fields_tenant},
	{"getCA", get_ca, CM_READS, get_fields},
	{"exportTrustList", export_trust_list, CM_READS, cm_fields_tenant},
	{"trustCertificate", trust_certificate, CM_WRITES, trust_fields},
	{"untrustCertificate", untrust_certificate, CM_WRITES, cm_fields_tenant_id},
	{"inspectCertificate", inspect_certificate, CM_READS, inspect_fields},
	{"trustServerCertificate", trust_server_certificate, CM_WRITES, trust_server_fields},
	{NULL, NULL, CM_READS, NULL},
};
