/* addCA, listCAs, getCA. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "control.h"
#include "json.h"
#include "log.h"

#define MAX_DESCRIPTION 256

static cJSON *ca_json(const struct cm_ca *ca, bool full, const char *format)
{
	cJSON *o = full ? cm_pki_cert_details(ca->cert) : cJSON_CreateObject();
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
			|| !cm_json_add_time(o, "added", ca->added)){
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

static enum cm_rc add_ca(struct cm_state *st, const struct cm_caller *who, const cJSON *cmd, cJSON *data, struct cm_err *err)
{
	const char *pem = NULL, *desc = "";
	bool active = true;
	struct cm_tenant *cur, *t = NULL, *old = NULL;
	STACK_OF(X509) *certs = NULL;
	struct cm_ca *ca = NULL, **tail;
	cJSON *o;
	enum cm_rc rc;

	if(cm_cmd_tenant(st, cmd, &cur, err) != CM_OK
			|| cm_json_get_string(cmd, "certificate", true, &pem, err) != CM_OK
			|| cm_json_get_string(cmd, "description", false, &desc, err) != CM_OK
			|| cm_json_get_bool(cmd, "active", false, &active, err) != CM_OK){
		return CM_ERR_INVAL;
	}
	if(strlen(desc) > MAX_DESCRIPTION){
		return cm_err_set(err, CM_ERR_INVAL, "'description' is longer than %d characters", MAX_DESCRIPTION);
	}
	rc = cm_pki_parse_certs(pem, strlen(pem), &certs, err);
	if(rc != CM_OK){
		return rc;
	}
	if(sk_X509_num(certs) != 1){
		rc = cm_err_set(err, CM_ERR_INVAL, "'certificate' holds %d certificates; addCA takes exactly one", sk_X509_num(certs));
		goto out;
	}
	rc = cm_pki_check_ca(sk_X509_value(certs, 0), time(NULL), err);
	if(rc != CM_OK){
		goto out;
	}
	ca = calloc(1, sizeof(*ca));
	if(ca == NULL || (ca->description = strdup(desc)) == NULL){
		rc = cm_err_set(err, CM_ERR_NOMEM, "out of memory");
		goto out;
	}
	ca->cert = sk_X509_shift(certs);
	ca->active = active;
	ca->added = time(NULL);
	rc = cm_pki_cert_id(ca->cert, ca->id, err);
	if(rc != CM_OK){
		goto out;
	}
	if(cm_tenant_find_ca(cur, ca->id)){
		rc = cm_err_set(err, CM_ERR_INVAL, "CA %s is already in tenant '%s'", ca->id, cur->name);
		goto out;
	}
	t = cm_tenant_clone(cur);
	if(t == NULL){
		rc = cm_err_set(err, CM_ERR_NOMEM, "out of memory");
		goto out;
	}
	for(tail = &t->cas; *tail; tail = &(*tail)->next){
	}
	*tail = ca;
	ca = NULL;
	rc = cm_store_put_tenant(st->store, t, &old, err);
	if(rc != CM_OK){
		goto out;
	}
	cm_tenant_free(&old);
	ca = *tail;
	cm_log(CM_LOG_NOTICE, "%s | addCA | tenant=%s id=%s", who->name, t->name, ca->id);
	t = NULL;
	o = ca_json(ca, true, "pem");
	ca = NULL;
	if(o == NULL || !cJSON_AddItemToObject(data, "ca", o)){
		cJSON_Delete(o);
	}
out:
	cm_tenant_free(&t);
	if(ca){
		X509_free(ca->cert);
		free(ca->description);
		free(ca);
	}
	sk_X509_pop_free(certs, X509_free);
	return rc;
}

static enum cm_rc list_cas(struct cm_state *st, const struct cm_caller *who, const cJSON *cmd, cJSON *data, struct cm_err *err)
{
	struct cm_tenant *t;
	const struct cm_ca *ca;
	cJSON *arr;

	(void)who;
	if(cm_cmd_tenant(st, cmd, &t, err) != CM_OK){
		return CM_ERR_INVAL;
	}
	arr = cJSON_AddArrayToObject(data, "cas");
	for(ca = t->cas; arr && ca; ca = ca->next){
		cJSON *o = ca_json(ca, false, NULL);
		if(o == NULL || !cJSON_AddItemToArray(arr, o)){
			cJSON_Delete(o);
			return cm_err_set(err, CM_ERR_NOMEM, "out of memory");
		}
	}
	return arr ? CM_OK : cm_err_set(err, CM_ERR_NOMEM, "out of memory");
}

static enum cm_rc get_ca(struct cm_state *st, const struct cm_caller *who, const cJSON *cmd, cJSON *data, struct cm_err *err)
{
	struct cm_tenant *t;
	const struct cm_ca *ca;
	const char *id = NULL, *format = "pem";
	cJSON *o;

	(void)who;
	if(cm_cmd_tenant(st, cmd, &t, err) != CM_OK
			|| cm_json_get_string(cmd, "id", true, &id, err) != CM_OK
			|| cm_json_get_string(cmd, "format", false, &format, err) != CM_OK){
		return CM_ERR_INVAL;
	}
	if(strcmp(format, "pem") && strcmp(format, "der")){
		return cm_err_set(err, CM_ERR_INVAL, "'format' must be pem or der");
	}
	ca = cm_pki_id_valid(id) ? cm_tenant_find_ca(t, id) : NULL;
	if(ca == NULL){
		return cm_err_set(err, CM_ERR_INVAL, "no CA '%.64s' in tenant '%s'", id, t->name);
	}
	o = ca_json(ca, true, format);
	if(o == NULL || !cJSON_AddItemToObject(data, "ca", o)){
		cJSON_Delete(o);
		return cm_err_set(err, CM_ERR_NOMEM, "out of memory");
	}
	return CM_OK;
}

static enum cm_rc remove_ca(struct cm_state *st, const struct cm_caller *who, const cJSON *cmd, cJSON *data, struct cm_err *err)
{
	struct cm_tenant *cur, *t, *old = NULL;
	struct cm_ca **pp, *gone;
	const char *id = NULL;
	enum cm_rc rc;

	(void)data;
	if(cm_cmd_tenant(st, cmd, &cur, err) != CM_OK || cm_json_get_string(cmd, "id", true, &id, err) != CM_OK){
		return CM_ERR_INVAL;
	}
	if(!cm_pki_id_valid(id) || cm_tenant_find_ca(cur, id) == NULL){
		return cm_err_set(err, CM_ERR_INVAL, "no CA '%.64s' in tenant '%s'", id, cur->name);
	}
	t = cm_tenant_clone(cur);
	if(t == NULL){
		return cm_err_set(err, CM_ERR_NOMEM, "out of memory");
	}
	for(pp = &t->cas; strcmp((*pp)->id, id); pp = &(*pp)->next){
	}
	gone = *pp;
	*pp = gone->next;
	X509_free(gone->cert);
	free(gone->description);
	free(gone);
	rc = cm_store_put_tenant(st->store, t, &old, err);
	if(rc != CM_OK){
		cm_tenant_free(&t);
		return rc;
	}
	cm_tenant_free(&old);
	cm_log(CM_LOG_NOTICE, "%s | removeCA | tenant=%s id=%s", who->name, t->name, id);
	return CM_OK;
}

const struct cm_command cm_ca_commands[] = {
	{"addCA", add_ca},
	{"removeCA", remove_ca},
	{"listCAs", list_cas},
	{"getCA", get_ca},
	{NULL, NULL},
};
