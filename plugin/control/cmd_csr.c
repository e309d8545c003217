/* CSRs for the broker's certificates: createCSR, listCSRs, getCSR,
 * removeCSR, installCertificate. A new key is made on the worker thread;
 * the answer waits for it. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/err.h>

#include "control.h"
#include "json.h"
#include "log.h"
#include "worker.h"
#include "store.h"

#define MAX_SANS 32
/* The names of a CSR's subject: CN O OU C ST L emailAddress. */
#define CSR_FIELDS 7

static cJSON *csr_json(const struct cm_csr *c, const char *format)
{
	cJSON *o = cJSON_CreateObject();
	char subject[512] = "";
	char *body = NULL;
	BIO *bio = BIO_new(BIO_s_mem());
	EVP_PKEY *key = X509_REQ_get0_pubkey(c->req);

	if(o == NULL || bio == NULL){
		BIO_free(bio);
		cJSON_Delete(o);
		return NULL;
	}
	if(X509_NAME_print_ex(bio, X509_REQ_get_subject_name(c->req), 0, XN_FLAG_RFC2253) >= 0){
		int n = BIO_read(bio, subject, sizeof(subject) - 1);
		subject[n > 0 ? n : 0] = '\0';
	}
	BIO_free(bio);
	cJSON_AddStringToObject(o, "id", c->id);
	cJSON_AddStringToObject(o, "subject", subject);
	cJSON_AddStringToObject(o, "keyType", EVP_PKEY_get_base_id(key) == EVP_PKEY_RSA ? "rsa"
			: EVP_PKEY_get_base_id(key) == EVP_PKEY_EC ? "ec" : EVP_PKEY_get_base_id(key) == EVP_PKEY_ED25519 ? "ed25519" : "other");
	cJSON_AddNumberToObject(o, "keyBits", EVP_PKEY_get_bits(key));
	cJSON_AddBoolToObject(o, "reusedKey", c->reused_key);
	cm_json_add_time(o, "created", c->created);
	if(format){
		if(strcmp(format, "der") ? cm_pki_csr_to_pem(c->req, &body, NULL) != CM_OK : cm_pki_csr_to_der_b64(c->req, &body, NULL) != CM_OK){
			cJSON_Delete(o);
			return NULL;
		}
		cJSON_AddStringToObject(o, "format", format);
		cJSON_AddStringToObject(o, "csr", body);
		free(body);
	}
	ERR_clear_error();
	return o;
}

struct csr_job {
	struct cm_request *req;
	char who[256];
	enum cm_slot_id slot;
	struct cm_keyspec spec;
	char curve[8];
	char *fields[CSR_FIELDS]; /* CN O OU C ST L emailAddress */
	char *sans[MAX_SANS];
	size_t nsans;
	EVP_PKEY *key;   /* reused, or made by the work */
	bool reuse;
	X509_REQ *csr;
	enum cm_rc rc;
	struct cm_err err;
};

static void job_free(struct csr_job *j)
{
	size_t i;

	for(i = 0; i < CSR_FIELDS; i++){
		free(j->fields[i]);
	}
	for(i = 0; i < j->nsans; i++){
		free(j->sans[i]);
	}
	EVP_PKEY_free(j->key);
	X509_REQ_free(j->csr);
	free(j);
}

static void csr_work(void *arg)
{
	struct csr_job *j = arg;
	struct cm_subject sub;

	j->rc = CM_OK;
	if(j->key == NULL){
		j->rc = cm_pki_generate_key(&j->spec, &j->key, &j->err);
	}
	if(j->rc == CM_OK){
		sub.cn = j->fields[0];
		sub.o = j->fields[1];
		sub.ou = j->fields[2];
		sub.c = j->fields[3];
		sub.st = j->fields[4];
		sub.l = j->fields[5];
		sub.email = j->fields[6];
		j->rc = cm_pki_make_csr(j->key, &sub, (const char *const *)j->sans, j->nsans, &j->csr, &j->err);
	}
	ERR_clear_error();
}

static void csr_done(struct cm_state *st, void *arg, bool aborted)
{
	struct csr_job *j = arg;
	struct cm_csr *c = NULL;
	enum cm_rc rc = j->rc;

	if(aborted){
		job_free(j);
		return;
	}
	if(rc == CM_OK){
		c = calloc(1, sizeof(*c));
		if(c == NULL){
			rc = cm_err_set(&j->err, CM_ERR_NOMEM, "out of memory");
		}else if((rc = cm_pki_csr_id(j->csr, c->id, &j->err)) == CM_OK){
			c->req = j->csr;
			c->key = j->key;
			j->csr = NULL;
			j->key = NULL;
			c->created = time(NULL);
			c->reused_key = j->reuse;
		}
		if(rc != CM_OK){
			cm_csr_free(&c);
		}
	}
	if(rc == CM_OK){
		cm_control_own_commits(st, j->req);
		rc = cm_registry_slot(st, j->who, "createCSR", &(struct cm_slot_change){.op = CM_SLOT_ADD_CSR, .slot = j->slot, .csr = c}, &j->err);
	}
	if(rc == CM_OK){
		cJSON *o = csr_json(c, "pem");
		if(o && !cJSON_AddItemToObject(cm_control_pending_data(j->req), "csr", o)){
			cJSON_Delete(o);
		}
	}
	cm_control_resume_owned(st, j->req, rc, &j->err);
	job_free(j);
}

static const char *const subject_names[CSR_FIELDS] = {"CN", "O", "OU", "C", "ST", "L", "emailAddress"};

/* createCSR's subject: an object of the names above, each a text of 1
 * to 128 characters. */
static enum cm_rc subject_valid(const cJSON *subject, struct cm_err *err)
{
	const cJSON *item;
	size_t i;

	if(!cJSON_IsObject(subject)){
		return cm_err_set(err, CM_ERR_INVAL, "'subject' must be an object (CN, O, OU, C, ST, L, emailAddress)");
	}
	cJSON_ArrayForEach(item, subject){
		for(i = 0; i < CSR_FIELDS && strcmp(item->string, subject_names[i]); i++){
		}
		if(i == CSR_FIELDS || !cJSON_IsString(item) || item->valuestring[0] == '\0' || strlen(item->valuestring) > 128){
			return cm_err_set(err, CM_ERR_INVAL, "'subject': '%.32s' must be one of CN, O, OU, C, ST, L, emailAddress with a text of 1 to 128 characters", item->string);
		}
	}
	return CM_OK;
}

/* The key of the job: the slot's default key (reuseKey), or the spec of
 * the one the work makes. */
static enum cm_rc job_key(struct cm_state *st, struct csr_job *j, const cJSON *cmd, struct cm_err *err)
{
	j->spec.allow_weak = cm_arg_bool(cmd, "allowWeakKey", false);
	if(!cm_arg_bool(cmd, "reuseKey", false)){
		return cm_cmd_keyspec(cmd, false, &j->spec, j->curve, err);
	}
	if(cJSON_GetObjectItemCaseSensitive(cmd, "key")){
		return cm_err_set(err, CM_ERR_INVAL, "give 'key' or 'reuseKey', not both");
	}
	j->key = cm_store_slot_default(st->store, j->slot)->key;
	EVP_PKEY_up_ref(j->key);
	j->reuse = true;
	return CM_OK;
}

/* Copies the subject and the subjectAltNames into the job. */
static enum cm_rc job_names(struct csr_job *j, const cJSON *subject, const cJSON *sans, struct cm_err *err)
{
	const cJSON *item;
	size_t i;

	for(i = 0; i < CSR_FIELDS; i++){
		const cJSON *f = cJSON_GetObjectItemCaseSensitive(subject, subject_names[i]);
		if(f && (j->fields[i] = strdup(f->valuestring)) == NULL){
			return cm_cmd_nomem(err);
		}
	}
	cJSON_ArrayForEach(item, sans){
		if((j->sans[j->nsans++] = strdup(item->valuestring)) == NULL){
			return cm_cmd_nomem(err);
		}
	}
	return CM_OK;
}

static enum cm_rc create_csr(struct cm_state *st, const struct cm_caller *who, const cJSON *cmd, cJSON *data, struct cm_err *err)
{
	const cJSON *subject = cJSON_GetObjectItemCaseSensitive(cmd, "subject"), *sans = NULL;
	enum cm_slot_id slot;
	struct csr_job *j;
	size_t nsans = 0;
	enum cm_rc rc;

	(void)data;
	CM_GUARD(cm_cmd_slot(cmd, &slot, err));
	CM_GUARD(cm_registry_slot_writable(st, err));
	CM_GUARD(cm_cmd_strings(cmd, "subjectAltNames", MAX_SANS, &sans, &nsans, err));
	CM_GUARD(subject_valid(subject, err));
	if((j = calloc(1, sizeof(*j))) == NULL){
		return cm_cmd_nomem(err);
	}
	j->req = who->req;
	j->slot = slot;
	snprintf(j->who, sizeof(j->who), "%s", who->name);
	if((rc = job_key(st, j, cmd, err)) == CM_OK && j->spec.type == CM_KEY_RSA && j->spec.bits == 1024){
		cm_log(CM_LOG_WARNING, "%s asked for a CSR with a weak RSA 1024 key (slot %s)", who->name, cm_slot_name(slot));
	}
	if(rc != CM_OK || (rc = job_names(j, subject, sans, err)) != CM_OK || (rc = cm_worker_submit(st, csr_work, csr_done, j, err)) != CM_OK){
		job_free(j);
		return rc;
	}
	return CM_PENDING;
}

static enum cm_rc list_csrs(struct cm_state *st, const struct cm_caller *who, const cJSON *cmd, cJSON *data, struct cm_err *err)
{
	enum cm_slot_id slot;
	const struct cm_csr *c;
	cJSON *arr;

	(void)who;
	if(cm_cmd_slot(cmd, &slot, err) != CM_OK){
		return CM_ERR_INVAL;
	}
	arr = cJSON_AddArrayToObject(data, "csrs");
	for(c = cm_store_slot_csrs(st->store, slot); arr && c; c = c->next){
		cJSON *o = csr_json(c, NULL);
		if(o == NULL || !cJSON_AddItemToArray(arr, o)){
			cJSON_Delete(o);
			return cm_cmd_nomem(err);
		}
	}
	return arr ? CM_OK : cm_cmd_nomem(err);
}

static enum cm_rc get_csr(struct cm_state *st, const struct cm_caller *who, const cJSON *cmd, cJSON *data, struct cm_err *err)
{
	enum cm_slot_id slot;
	const struct cm_csr *c;
	const char *id = cm_arg_string(cmd, "id", ""), *format = cm_arg_string(cmd, "format", "pem");
	cJSON *o;

	(void)who;
	CM_GUARD(cm_cmd_slot(cmd, &slot, err));
	if(strcmp(format, "pem") && strcmp(format, "der")){
		return cm_err_set(err, CM_ERR_INVAL, "'format' must be pem or der");
	}
	if((c = cm_store_find_csr(st->store, slot, id)) == NULL){
		return cm_err_set(err, CM_ERR_INVAL, "no CSR '%.64s' in slot %s", id, cm_slot_name(slot));
	}
	o = csr_json(c, format);
	if(o == NULL || !cJSON_AddItemToObject(data, "csr", o)){
		cJSON_Delete(o);
		return cm_cmd_nomem(err);
	}
	return CM_OK;
}

static enum cm_rc remove_csr(struct cm_state *st, const struct cm_caller *who, const cJSON *cmd, cJSON *data, struct cm_err *err)
{
	enum cm_slot_id slot;

	(void)data;
	CM_GUARD(cm_cmd_slot(cmd, &slot, err));
	return cm_registry_slot(st, who->name, who->command,
			&(struct cm_slot_change){.op = CM_SLOT_REMOVE_CSR, .slot = slot, .id = cm_arg_string(cmd, "id", "")}, err);
}

static enum cm_rc install_certificate(struct cm_state *st, const struct cm_caller *who, const cJSON *cmd, cJSON *data, struct cm_err *err)
{
	enum cm_slot_id slot;
	const char *csr_id = cm_arg_string(cmd, "csr", ""), *pem = cm_arg_string(cmd, "certificate", "");
	bool make_default = cm_arg_bool(cmd, "makeDefault", false);
	const struct cm_csr *csr;
	STACK_OF(X509) *certs = NULL, *extra = NULL;
	struct cm_server_cert *c = NULL;
	X509 *leaf = NULL;
	char id[CM_ID_LEN + 1];
	enum cm_rc rc;

	CM_GUARD(cm_cmd_slot(cmd, &slot, err));
	CM_GUARD(cm_registry_slot_writable(st, err));
	if((csr = cm_store_find_csr(st->store, slot, csr_id)) == NULL){
		return cm_err_set(err, CM_ERR_INVAL, "no CSR '%.64s' in slot %s", csr_id, cm_slot_name(slot));
	}
	rc = cm_pki_parse_certs(pem, strlen(pem), &certs, err);
	if(rc != CM_OK){
		return rc;
	}
	/* The CA's answer must carry the CSR's public key. */
	rc = cm_pki_order_chain(csr->key, certs, time(NULL), &leaf, &extra, err);
	sk_X509_pop_free(certs, X509_free);
	if(rc != CM_OK){
		if(strstr(err->msg, "does not match")){
			cm_err_set(err, CM_ERR_INVAL, "the certificate is not for this CSR's key");
		}
		return rc;
	}
	rc = cm_server_cert_new(leaf, extra, csr->key, "installed from a CSR", false, &c, err);
	X509_free(leaf);
	sk_X509_pop_free(extra, X509_free);
	if(rc != CM_OK){
		return rc;
	}
	memcpy(id, c->id, sizeof(id));
	CM_GUARD(cm_registry_slot(st, who->name, who->command, &(struct cm_slot_change){.op = CM_SLOT_INSTALL_CSR, .slot = slot,
			.id = csr_id, .cert = c, .make_default = make_default}, err));
	cJSON_AddStringToObject(data, "id", id);
	cJSON_AddBoolToObject(data, "default", make_default);
	return CM_OK;
}

static const struct cm_field get_fields[] = {
	{"slot", CM_FIELD_STRING, CM_REQUIRED, 0, NULL},
	{"id", CM_FIELD_STRING, CM_REQUIRED, 0, NULL},
	{"format", CM_FIELD_STRING, CM_OPTIONAL, 0, NULL},
	{NULL, CM_FIELD_STRING, CM_OPTIONAL, 0, NULL},
};

static const struct cm_field create_fields[] = {
	{"slot", CM_FIELD_STRING, CM_REQUIRED, 0, NULL},
	{"subject", CM_FIELD_OBJECT, CM_OPTIONAL, 0, "an object (CN, O, OU, C, ST, L, emailAddress)"},
	{"subjectAltNames", CM_FIELD_STRINGS, CM_OPTIONAL, MAX_SANS, NULL},
	{"key", CM_FIELD_OBJECT, CM_OPTIONAL, 0, "an object with 'type' (ec, rsa)"},
	{"reuseKey", CM_FIELD_BOOL, CM_OPTIONAL, 0, NULL},
	{"allowWeakKey", CM_FIELD_BOOL, CM_OPTIONAL, 0, NULL},
	{NULL, CM_FIELD_STRING, CM_OPTIONAL, 0, NULL},
};

static const struct cm_field install_fields[] = {
	{"slot", CM_FIELD_STRING, CM_REQUIRED, 0, NULL},
	{"csr", CM_FIELD_STRING, CM_REQUIRED, 0, NULL},
	{"certificate", CM_FIELD_STRING, CM_REQUIRED, 0, NULL},
	{"makeDefault", CM_FIELD_BOOL, CM_OPTIONAL, 0, NULL},
	{NULL, CM_FIELD_STRING, CM_OPTIONAL, 0, NULL},
};


const struct cm_command cm_csr_commands[] = {
	{"createCSR", create_csr, CM_WRITES, create_fields},
	{"listCSRs", list_csrs, CM_READS, cm_fields_slot},
	{"getCSR", get_csr, CM_READS, get_fields},
	{"removeCSR", remove_csr, CM_WRITES, cm_fields_slot_id},
	{"installCertificate", install_certificate, CM_WRITES, install_fields},
	{NULL, NULL, CM_READS, NULL},
};
