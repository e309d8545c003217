/* The broker's own certificates, per slot: listServerCertificates,
 * getServerCertificate, addServerCertificate, setDefaultServerCertificate,
 * removeServerCertificate, regenerateSelfSigned. Decrypting an uploaded key
 * and generating a new one run on the worker thread. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/err.h>
#include <openssl/x509v3.h>

#include "render.h"
#include "control.h"
#include "json.h"
#include "log.h"
#include "worker.h"
#include "store.h"

#define MAX_DESCRIPTION 256
#define MAX_SANS 32

static time_t not_after(X509 *c)
{
	struct tm tm;
	return ASN1_TIME_to_tm(X509_get0_notAfter(c), &tm) ? timegm(&tm) : 0;
}

static cJSON *cert_json(struct cm_state *st, enum cm_slot_id slot, const struct cm_server_cert *c, bool full)
{
	cJSON *o = full ? cm_render_cert_details(c->leaf) : cJSON_CreateObject();
	char cn[256];

	if(o == NULL){
		return NULL;
	}
	if(!full){
		cm_pki_subject_cn(c->leaf, cn, sizeof(cn));
		cJSON_AddStringToObject(o, "id", c->id);
		cJSON_AddStringToObject(o, "commonName", cn);
		cm_json_add_time(o, "notAfter", not_after(c->leaf));
	}
	cJSON_AddStringToObject(o, "description", c->description);
	cJSON_AddBoolToObject(o, "builtin", c->builtin);
	cJSON_AddBoolToObject(o, "default", c == cm_store_slot_default(st->store, slot));
	cJSON_AddNumberToObject(o, "chainLength", 1 + sk_X509_num(c->extra));
	cm_json_add_time(o, "added", c->added);
	return o;
}

static enum cm_rc list_server(struct cm_state *st, const struct cm_caller *who, const cJSON *cmd, cJSON *data, struct cm_err *err)
{
	enum cm_slot_id slot;
	const struct cm_server_cert *c;
	cJSON *arr;

	(void)who;
	if(cm_cmd_slot(cmd, &slot, err) != CM_OK){
		return CM_ERR_INVAL;
	}
	arr = cJSON_AddArrayToObject(data, "certificates");
	for(c = cm_store_slot_certs(st->store, slot); arr && c; c = c->next){
		cJSON *o = cert_json(st, slot, c, false);
		if(o == NULL || !cJSON_AddItemToArray(arr, o)){
			cJSON_Delete(o);
			return cm_cmd_nomem(err);
		}
	}
	return arr ? CM_OK : cm_cmd_nomem(err);
}

static enum cm_rc get_server(struct cm_state *st, const struct cm_caller *who, const cJSON *cmd, cJSON *data, struct cm_err *err)
{
	enum cm_slot_id slot;
	const struct cm_server_cert *c;
	const char *id = cm_arg_string(cmd, "id", ""), *format = cm_arg_string(cmd, "format", "pem");
	bool with_key = cm_arg_bool(cmd, "includePrivateKey", false);
	char *body = NULL;
	size_t len;
	cJSON *o;

	CM_GUARD(cm_cmd_slot(cmd, &slot, err));
	if(strcmp(format, "pem") && strcmp(format, "der")){
		return cm_err_set(err, CM_ERR_INVAL, "'format' must be pem or der");
	}
	if((c = cm_store_find_server_cert(st->store, slot, id)) == NULL){
		return cm_err_set(err, CM_ERR_INVAL, "no certificate '%.64s' in slot %s", id, cm_slot_name(slot));
	}
	if(with_key && cm_cmd_private_keys(who, "given", err) != CM_OK){
		return CM_ERR_INVAL;
	}
	o = cert_json(st, slot, c, true);
	if(o == NULL || !cJSON_AddItemToObject(data, "certificate", o)){
		cJSON_Delete(o);
		return cm_cmd_nomem(err);
	}
	/* pem: the chain, leaf first; der: the leaf alone, base64. */
	if(strcmp(format, "der") ? cm_pki_chain_to_pem(c->leaf, c->extra, &body, &len, err) != CM_OK
			: cm_pki_cert_to_der_b64(c->leaf, &body, err) != CM_OK){
		return CM_ERR_NOMEM;
	}
	cJSON_AddStringToObject(o, "format", format);
	cJSON_AddStringToObject(o, "certificate", body);
	free(body);
	if(with_key){
		if(cm_pki_key_to_pem(c->key, &body, &len, err) != CM_OK){
			return CM_ERR_NOMEM;
		}
		cJSON_AddStringToObject(o, "privateKey", body);
		cm_pki_free_secret(body, len);
		cm_log(CM_LOG_NOTICE, "%s | getServerCertificate includePrivateKey | slot=%s id=%s", who->name, cm_slot_name(slot), c->id);
	}
	return CM_OK;
}

/* ===================================================================
 * Uploads: parsed and decrypted on the worker
 * =================================================================== */

struct upload {
	struct cm_state *st;
	struct cm_request *req;
	char who[256];
	enum cm_slot_id slot;
	bool make_default;
	char *description;
	/* input, freed (key material cleansed) after the work */
	char *certificate, *key_text, *passphrase, *pkcs12;
	/* results */
	X509 *leaf;
	STACK_OF(X509) *extra;
	EVP_PKEY *key;
	enum cm_rc rc;
	struct cm_err err;
};

static void secret_free(char *s)
{
	if(s){
		cm_pki_free_secret(s, strlen(s));
	}
}

static void upload_free(struct upload *u)
{
	free(u->description);
	free(u->certificate);
	secret_free(u->key_text);
	secret_free(u->passphrase);
	secret_free(u->pkcs12);
	X509_free(u->leaf);
	sk_X509_pop_free(u->extra, X509_free);
	EVP_PKEY_free(u->key);
	free(u);
}

static void upload_work(void *arg)
{
	struct upload *u = arg;
	STACK_OF(X509) *certs = NULL;

	if(u->pkcs12){
		u->rc = cm_pki_parse_pkcs12(u->pkcs12, u->passphrase, &u->key, &certs, &u->err);
	}else{
		u->rc = cm_pki_parse_certs(u->certificate, strlen(u->certificate), &certs, &u->err);
		if(u->rc == CM_OK){
			u->rc = cm_pki_parse_key_any(u->key_text, strlen(u->key_text), u->passphrase, &u->key, &u->err);
		}
	}
	if(u->rc == CM_OK){
		u->rc = cm_pki_order_chain(u->key, certs, time(NULL), &u->leaf, &u->extra, &u->err);
	}
	sk_X509_pop_free(certs, X509_free);
	ERR_clear_error();
}

static void upload_done(struct cm_state *st, void *arg, bool aborted)
{
	struct upload *u = arg;
	struct cm_server_cert *c = NULL;
	enum cm_rc rc = u->rc;

	if(aborted){
		upload_free(u);
		return;
	}
	if(rc == CM_OK){
		rc = cm_server_cert_new(u->leaf, u->extra, u->key, u->description, false, &c, &u->err);
	}
	if(rc == CM_OK){
		cm_control_own_commits(st, u->req);
		rc = cm_registry_slot(st, u->who, "addServerCertificate", &(struct cm_slot_change){.op = CM_SLOT_ADD_CERT, .slot = u->slot,
				.cert = c, .make_default = u->make_default}, &u->err);
	}
	if(rc == CM_OK){
		cJSON *o = cert_json(st, u->slot, c, false);
		if(o && !cJSON_AddItemToObject(cm_control_pending_data(u->req), "certificate", o)){
			cJSON_Delete(o);
		}
	}
	cm_control_resume_owned(st, u->req, rc, &u->err);
	upload_free(u);
}

static char *dup_or_null(const char *s)
{
	return s ? strdup(s) : NULL;
}

static enum cm_rc add_server(struct cm_state *st, const struct cm_caller *who, const cJSON *cmd, cJSON *data, struct cm_err *err)
{
	const char *cert = cm_arg_string(cmd, "certificate", NULL), *key = cm_arg_string(cmd, "privateKey", NULL);
	const char *pass = cm_arg_string(cmd, "passphrase", NULL), *p12 = cm_arg_string(cmd, "pkcs12", NULL);
	const char *desc = cm_arg_string(cmd, "description", "");
	bool make_default = cm_arg_bool(cmd, "makeDefault", false);
	enum cm_slot_id slot;
	struct upload *u;

	(void)data;
	CM_GUARD(cm_cmd_slot(cmd, &slot, err));
	CM_GUARD(cm_registry_slot_writable(st, err));
	if(p12 ? (cert || key) : (cert == NULL || key == NULL)){
		return cm_err_set(err, CM_ERR_INVAL, "give 'certificate' and 'privateKey', or 'pkcs12' (with 'passphrase')");
	}
	CM_GUARD(cm_cmd_private_keys(who, "accepted", err));
	u = calloc(1, sizeof(*u));
	if(u == NULL){
		return cm_cmd_nomem(err);
	}
	u->st = st;
	u->req = who->req;
	snprintf(u->who, sizeof(u->who), "%s", who->name);
	u->slot = slot;
	u->make_default = make_default;
	u->description = strdup(desc);
	u->certificate = dup_or_null(cert);
	u->key_text = dup_or_null(key);
	u->passphrase = dup_or_null(pass);
	u->pkcs12 = dup_or_null(p12);
	if(u->description == NULL || (cert && !u->certificate) || (key && !u->key_text) || (pass && !u->passphrase) || (p12 && !u->pkcs12)){
		upload_free(u);
		return cm_cmd_nomem(err);
	}
	if(cm_worker_submit(st, upload_work, upload_done, u, err) != CM_OK){
		upload_free(u);
		return CM_ERR_NOMEM;
	}
	return CM_PENDING;
}

static enum cm_rc set_default_server(struct cm_state *st, const struct cm_caller *who, const cJSON *cmd, cJSON *data, struct cm_err *err)
{
	enum cm_slot_id slot;

	(void)data;
	CM_GUARD(cm_cmd_slot(cmd, &slot, err));
	return cm_registry_slot(st, who->name, who->command,
			&(struct cm_slot_change){.op = CM_SLOT_SET_DEFAULT, .slot = slot, .id = cm_arg_string(cmd, "id", "")}, err);
}

static enum cm_rc remove_server(struct cm_state *st, const struct cm_caller *who, const cJSON *cmd, cJSON *data, struct cm_err *err)
{
	enum cm_slot_id slot;

	(void)data;
	CM_GUARD(cm_cmd_slot(cmd, &slot, err));
	return cm_registry_slot(st, who->name, who->command,
			&(struct cm_slot_change){.op = CM_SLOT_REMOVE_CERT, .slot = slot, .id = cm_arg_string(cmd, "id", "")}, err);
}

/* ===================================================================
 * regenerateSelfSigned: the key is made on the worker
 * =================================================================== */

struct regen {
	struct cm_request *req;
	char who[256];
	enum cm_slot_id slot;
	struct cm_keyspec spec;
	char curve[8];
	char cn[65];
	char *names[MAX_SANS];
	size_t nnames;
	X509 *cert;
	EVP_PKEY *key;
	enum cm_rc rc;
	struct cm_err err;
};

static void regen_free(struct regen *r)
{
	size_t i;

	for(i = 0; i < r->nnames; i++){
		free(r->names[i]);
	}
	X509_free(r->cert);
	EVP_PKEY_free(r->key);
	free(r);
}

static void regen_work(void *arg)
{
	struct regen *r = arg;

	r->rc = cm_pki_generate_key(&r->spec, &r->key, &r->err);
	if(r->rc == CM_OK){
		r->rc = cm_pki_make_self_signed(r->key, r->cn, (const char *const *)r->names, r->nnames, 825, &r->cert, &r->err);
	}
}

static void regen_done(struct cm_state *st, void *arg, bool aborted)
{
	struct regen *r = arg;
	struct cm_server_cert *c = NULL;
	enum cm_rc rc = r->rc;

	if(aborted){
		regen_free(r);
		return;
	}
	if(rc == CM_OK){
		rc = cm_server_cert_new(r->cert, NULL, r->key, "built-in self-signed certificate", true, &c, &r->err);
	}
	if(rc == CM_OK){
		cm_control_own_commits(st, r->req);
		rc = cm_registry_slot(st, r->who, "regenerateSelfSigned",
				&(struct cm_slot_change){.op = CM_SLOT_REPLACE_BUILTIN, .slot = r->slot, .cert = c}, &r->err);
	}
	if(rc == CM_OK){
		cJSON *o = cert_json(st, r->slot, c, false);
		if(o && !cJSON_AddItemToObject(cm_control_pending_data(r->req), "certificate", o)){
			cJSON_Delete(o);
		}
	}
	cm_control_resume_owned(st, r->req, rc, &r->err);
	regen_free(r);
}

static enum cm_rc regenerate(struct cm_state *st, const struct cm_caller *who, const cJSON *cmd, cJSON *data, struct cm_err *err)
{
	enum cm_slot_id slot;
	const char *cn = cm_arg_string(cmd, "commonName", st->hostname);
	const cJSON *sans = NULL, *item;
	size_t nsans = 0;
	struct regen *r;

	(void)data;
	CM_GUARD(cm_cmd_slot(cmd, &slot, err));
	CM_GUARD(cm_registry_slot_writable(st, err));
	CM_GUARD(cm_cmd_strings(cmd, "subjectAltNames", MAX_SANS, &sans, &nsans, err));
	if(cn[0] == '\0' || strlen(cn) > 64){
		return cm_err_set(err, CM_ERR_INVAL, "'commonName' must hold 1 to 64 characters");
	}
	r = calloc(1, sizeof(*r));
	if(r == NULL){
		return cm_cmd_nomem(err);
	}
	if(cm_cmd_keyspec(cmd, true, &r->spec, r->curve, err) != CM_OK){
		regen_free(r);
		return CM_ERR_INVAL;
	}
	r->req = who->req;
	r->slot = slot;
	snprintf(r->who, sizeof(r->who), "%s", who->name);
	snprintf(r->cn, sizeof(r->cn), "%s", cn);
	if(sans == NULL){
		r->names[r->nnames++] = strdup(cn);
		if(strcmp(cn, "localhost")){
			r->names[r->nnames++] = strdup("localhost");
		}
	}
	cJSON_ArrayForEach(item, sans){
		char norm[CM_HOSTNAME_MAX + 1];
		if(strncmp(item->valuestring, "DNS:", 4) || cm_hostname_normalize(item->valuestring + 4, norm, err) != CM_OK){
			regen_free(r);
			return cm_err_set(err, CM_ERR_INVAL, "subjectAltNames entries must be DNS:<host name> here, not '%.64s'", item->valuestring);
		}
		r->names[r->nnames++] = strdup(norm);
	}
	for(size_t i = 0; i < r->nnames; i++){
		if(r->names[i] == NULL){
			regen_free(r);
			return cm_cmd_nomem(err);
		}
	}
	if(cm_worker_submit(st, regen_work, regen_done, r, err) != CM_OK){
		regen_free(r);
		return CM_ERR_NOMEM;
	}
	return CM_PENDING;
}

static const struct cm_field get_fields[] = {
	{"slot", CM_FIELD_STRING, CM_REQUIRED, 0, NULL},
	{"id", CM_FIELD_STRING, CM_REQUIRED, 0, NULL},
	{"format", CM_FIELD_STRING, CM_OPTIONAL, 0, NULL},
	{"includePrivateKey", CM_FIELD_BOOL, CM_OPTIONAL, 0, NULL},
	{NULL, CM_FIELD_STRING, CM_OPTIONAL, 0, NULL},
};

static const struct cm_field add_fields[] = {
	{"slot", CM_FIELD_STRING, CM_REQUIRED, 0, NULL},
	{"certificate", CM_FIELD_STRING, CM_OPTIONAL, 0, NULL},
	{"privateKey", CM_FIELD_STRING, CM_OPTIONAL, 0, NULL},
	{"passphrase", CM_FIELD_STRING, CM_OPTIONAL, 0, NULL},
	{"pkcs12", CM_FIELD_STRING, CM_OPTIONAL, 0, NULL},
	{"description", CM_FIELD_STRING, CM_OPTIONAL, MAX_DESCRIPTION, NULL},
	{"makeDefault", CM_FIELD_BOOL, CM_OPTIONAL, 0, NULL},
	{NULL, CM_FIELD_STRING, CM_OPTIONAL, 0, NULL},
};

static const struct cm_field regenerate_fields[] = {
	{"slot", CM_FIELD_STRING, CM_REQUIRED, 0, NULL},
	{"commonName", CM_FIELD_STRING, CM_OPTIONAL, 0, NULL},
	{"subjectAltNames", CM_FIELD_STRINGS, CM_OPTIONAL, MAX_SANS, NULL},
	{"key", CM_FIELD_OBJECT, CM_OPTIONAL, 0, "an object with 'type' (ec, rsa, ed25519)"},
	{NULL, CM_FIELD_STRING, CM_OPTIONAL, 0, NULL},
};


const struct cm_command cm_server_commands[] = {
	{"listServerCertificates", list_server, CM_READS, cm_fields_slot},
	{"getServerCertificate", get_server, CM_READS, get_fields},
	{"addServerCertificate", add_server, CM_WRITES, add_fields},
	{"setDefaultServerCertificate", set_default_server, CM_WRITES, cm_fields_slot_id},
	{"removeServerCertificate", remove_server, CM_WRITES, cm_fields_slot_id},
	{"regenerateSelfSigned", regenerate, CM_WRITES, regenerate_fields},
	{NULL, NULL, CM_READS, NULL},
};
