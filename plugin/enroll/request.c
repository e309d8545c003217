/* A device's request on CM_ENROLL_TOPIC: who it is (a claim device or a
 * device renewing), what its CSR asks, what the tenant's policy says,
 * and the answer, to the asking connection only. */
#define _GNU_SOURCE
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/err.h>

#include <mosquitto.h>
#include <mqtt_protocol.h>
#include <mosquitto_broker.h>
#include <mosquitto_plugin.h>

#include "auth.h"
#include "enroll-int.h"
#include "enroll.h"
#include "json.h"
#include "log.h"
#include "registry.h"
#include "store.h"

/* A request is a CSR and a correlation: a few KiB. */
#define ENROLL_MAX_PAYLOAD (64 * 1024)

void enroll_req_free(struct cm_enroll_req *req)
{
	if(req == NULL){
		return;
	}
	free(req->clientid);
	free(req->correlation);
	mosquitto_free(req->corr5);
	free(req);
}

static void unlink_req(struct cm_state *st, struct cm_enroll_req *req)
{
	struct cm_enroll_req **pp;

	for(pp = st->enrolling ? &st->enrolling->reqs : NULL; pp && *pp; pp = &(*pp)->next){
		if(*pp == req){
			*pp = req->next;
			return;
		}
	}
}

/* Publishes fields (taken) to clientid on the response topic, with the
 * MQTT v5 correlation data when there is one. */
static void publish(const char *clientid, cJSON *fields, const void *corr5, uint16_t corr5_len)
{
	char *text = cJSON_PrintUnformatted(fields);
	mosquitto_property *props = NULL;
	size_t len = text ? strlen(text) : 0;
	char *payload;
	int rc;

	cJSON_Delete(fields);
	if(text == NULL || len > INT_MAX || (payload = mosquitto_malloc(len)) == NULL){
		free(text);
		return;
	}
	memcpy(payload, text, len);
	free(text);
	if(corr5 && mosquitto_property_add_binary(&props, MQTT_PROP_CORRELATION_DATA, corr5, corr5_len) != MOSQ_ERR_SUCCESS){
		mosquitto_property_free_all(&props);
	}
	/* QoS 0, as the control API answers: no subscription granted more. */
	rc = mosquitto_broker_publish(clientid, CM_ENROLL_RESPONSE_TOPIC, (int)len, payload, 0, false, props);
	if(rc != MOSQ_ERR_SUCCESS){
		mosquitto_free(payload);
		mosquitto_property_free_all(&props);
		cm_log(CM_LOG_WARNING, "cannot publish the enrollment answer to '%s' (error %d)", clientid, rc);
	}
}

void enroll_answer(struct cm_state *st, struct cm_enroll_req *req, cJSON *fields)
{
	(void)st;
	if(fields && req->correlation && !cJSON_AddStringToObject(fields, "correlationData", req->correlation)){
		cJSON_Delete(fields);
		fields = NULL;
	}
	if(fields == NULL){
		cm_log(CM_LOG_WARNING, "out of memory: the enrollment answer to '%s' is lost", req->clientid);
	}else if(req->client == NULL){
		cm_log(CM_LOG_NOTICE, "dropped the enrollment answer for '%s': the connection that asked is gone", req->clientid);
		cJSON_Delete(fields);
	}else{
		publish(req->clientid, fields, req->corr5, req->corr5_len);
	}
	enroll_req_free(req);
}

static cJSON *error_fields(const char *why)
{
	cJSON *o = cJSON_CreateObject();

	if(o && !cJSON_AddStringToObject(o, "error", why)){
		cJSON_Delete(o);
		return NULL;
	}
	return o;
}

static cJSON *cert_fields(const char *chain)
{
	cJSON *o = cJSON_CreateObject();

	if(o && !cJSON_AddStringToObject(o, "certificate", chain)){
		cJSON_Delete(o);
		return NULL;
	}
	return o;
}

static void refuse(struct cm_state *st, struct cm_enroll_req *req, const char *why)
{
	cm_log(CM_LOG_NOTICE, "enrollment: refused '%s' (tenant %s%s%s): %s", req->clientid, req->tenant[0] ? req->tenant : "-",
			req->ident[0] ? ", identity " : "", req->ident, why);
	cm_enroll_count(st, "refused", req->tenant, req->clientid, req->ident, why);
	enroll_answer(st, req, error_fields(why));
}

void cm_enroll_push(struct cm_state *st, const char *tenant, const char *clientid, cJSON *fields)
{
	const struct cm_client *c, *tmp;

	HASH_ITER(hh, st->clients, c, tmp){
		if(c->kind == CM_CLIENT_CLAIM && !strcmp(c->clientid, clientid) && !strcmp(c->tenant, tenant)){
			publish(clientid, fields, NULL, 0);
			return;
		}
	}
	cJSON_Delete(fields);
}

void cm_enroll_forget_client(struct cm_state *st, const void *client)
{
	for(struct cm_enroll_req *r = st->enrolling ? st->enrolling->reqs : NULL; r; r = r->next){
		if(r->client == client){
			r->client = NULL;
		}
	}
}

/* After the signature: the renewed certificate's revocation is scheduled
 * (after the grace period), a pre-registered identity is used up. */
static enum cm_rc commit_issue(struct cm_state *st, const struct cm_enroll_req *req, struct cm_err *err)
{
	const struct cm_tenant *cur = cm_store_find_tenant(st->store, req->tenant);
	struct cm_tenant *t;
	enum cm_rc rc = CM_OK;
	bool allowlist = cur && cur->enroll && !req->renewal && cur->enroll->mode == CM_ENROLL_ALLOWLIST;

	if(cur == NULL || cur->enroll == NULL){
		return cm_err_set(err, CM_ERR_INVAL, "the tenant's enrollment changed meanwhile");
	}
	if(!req->renewal && !allowlist){
		return CM_OK;
	}
	if(allowlist && !cm_enroll_is_allowed(cur->enroll, req->ident)){
		return cm_err_set(err, CM_ERR_INVAL, "identity '%s' is not pre-registered (any more)", req->ident);
	}
	/* Two renewals of one certificate signed at once: the first wins. */
	if(req->renewal && cm_enroll_find_revoked(cur->enroll, req->old_serial)){
		return cm_err_set(err, CM_ERR_INVAL, "this certificate was renewed (or revoked) already: renew with the new one");
	}
	if((t = cm_tenant_clone(cur)) == NULL){
		return cm_err_set(err, CM_ERR_NOMEM, "out of memory");
	}
	if(allowlist){
		(void)cm_enroll_disallow(t->enroll, req->ident);
	}else{
		rc = cm_enroll_revoke(t->enroll, req->old_serial, time(NULL) + t->enroll->grace, CRL_REASON_SUPERSEDED, err);
	}
	if(rc != CM_OK){
		cm_tenant_free(&t);
		return rc;
	}
	return cm_registry_put_tenant(st, req->clientid, req->renewal ? "enrollRenewal" : "enrollDevice", t, NULL, err);
}

static void signed_cb(struct cm_state *st, void *ctx, enum cm_rc rc, const char *chain, X509 *leaf, const struct cm_err *err,
		bool aborted)
{
	struct cm_enroll_req *req = ctx;
	struct cm_err cerr = {{0}};
	char serial[CM_SERIAL_HEX_MAX + 1] = "";

	if(aborted){
		return; /* freed with the list (cm_enroll_cleanup) */
	}
	unlink_req(st, req);
	if(rc != CM_OK){
		refuse(st, req, err->msg);
		return;
	}
	if(commit_issue(st, req, &cerr) != CM_OK){
		refuse(st, req, cerr.msg);
		return;
	}
	(void)cm_sign_serial_hex(X509_get0_serialNumber(leaf), serial);
	cm_log(CM_LOG_NOTICE, "enrollment: %s '%s' (tenant %s) a certificate for %s, serial %s%s%s", req->renewal ? "renewed for" : "issued to",
			req->clientid, req->tenant, req->ident, serial, req->renewal ? "; the old one is revoked after the grace period, serial " : "",
			req->renewal ? req->old_serial : "");
	cm_enroll_count(st, req->renewal ? "renewed" : "issued", req->tenant, req->clientid, req->ident, NULL);
	enroll_answer(st, req, cert_fields(chain));
}

/* Requests waiting for the worker, at most: from one connection, and in
 * all. A flood of requests queues no unbounded work. */
#define MAX_IN_FLIGHT_PER_CLIENT 4
#define MAX_IN_FLIGHT 1000

/* Why req cannot be queued now, or NULL. */
static const char *busy(const struct cm_enrolling *en, const struct cm_enroll_req *req)
{
	size_t all = 0, mine = 0;

	for(const struct cm_enroll_req *r = en->reqs; r; r = r->next){
		all++;
		mine += r->client == req->client;
	}
	if(mine >= MAX_IN_FLIGHT_PER_CLIENT){
		return "too many requests of this connection are being signed: wait for their answers";
	}
	return all >= MAX_IN_FLIGHT ? "too many requests are being signed: try again later" : NULL;
}

/* Hands req to the worker for the signature: it waits in the list. */
static void sign(struct cm_state *st, const struct cm_tenant *t, struct cm_enroll_req *req, X509_REQ *csr)
{
	struct cm_enrolling *en = enrolling_of(st);
	struct cm_err err = {{0}};
	const char *why = en ? busy(en, req) : NULL;

	if(why){
		refuse(st, req, why);
		return;
	}
	if(en == NULL || cm_enroll_sign(st, t, req->ident, csr, signed_cb, req, &err) != CM_OK){
		refuse(st, req, en ? err.msg : "out of memory");
		return;
	}
	req->next = en->reqs;
	en->reqs = req;
}

/* A device renewing: its own identity only, a certificate of the issuing
 * CA, inside the window before its notAfter. NULL: go ahead. */
static const char *renewal_refusal(const struct cm_tenant *t, const struct cm_client *c, struct cm_enroll_req *req, char *buf, size_t len)
{
	char own[CM_ENROLL_IDENT_MAX + 1], opens[21], after[21];
	time_t not_after = cm_pki_not_after(c->leaf);

	snprintf(own, sizeof(own), "%c:%s:%s", c->ident.kind, c->ident.type, c->ident.id);
	if(strcmp(own, req->ident)){
		snprintf(buf, len, "a renewal is for the device's own identity '%s', not '%s'", own, req->ident);
		return buf;
	}
	if(cm_enroll_issuer_entry(t, c->leaf) != cm_enroll_issuing_ca(t)){
		return "renewal is for certificates of the tenant's issuing CA; this device's certificate is from another CA";
	}
	if(time(NULL) < not_after - t->enroll->renew_within){
		cm_time_iso(not_after - t->enroll->renew_within, opens);
		cm_time_iso(not_after, after);
		snprintf(buf, len, "too early to renew: renewal opens at %s (the certificate's notAfter is %s)", opens, after);
		return buf;
	}
	req->renewal = true;
	if(!cm_sign_serial_hex(X509_get0_serialNumber(c->leaf), req->old_serial)){
		return "the device's certificate has a serial number certmgr cannot revoke";
	}
	/* Once: else a device could mint certificates for itself as long as
	 * its old one lasts, none of them revoked. */
	if(cm_enroll_find_revoked(t->enroll, req->old_serial)){
		return "this certificate was renewed (or revoked) already: renew with the new one";
	}
	return NULL;
}

static cJSON *pending_fields(const char *ident)
{
	cJSON *o = cJSON_CreateObject();

	if(o && (!cJSON_AddBoolToObject(o, "pending", true) || !cJSON_AddStringToObject(o, "identity", ident))){
		cJSON_Delete(o);
		return NULL;
	}
	return o;
}

/* A copy of cur whose request of ident is dropped, or made/updated from
 * req when add; committed. */
static enum cm_rc commit_request(struct cm_state *st, const struct cm_tenant *cur, const struct cm_enroll_req *req, bool add,
		const char *key_id, const char *csr_pem, struct cm_err *err)
{
	struct cm_tenant *t = cm_tenant_clone(cur);
	struct cm_enrollment r;
	enum cm_rc rc = CM_OK;

	if(t == NULL){
		return cm_err_set(err, CM_ERR_NOMEM, "out of memory");
	}
	cm_enroll_drop_request(t->enroll, req->ident);
	if(add){
		memset(&r, 0, sizeof(r));
		snprintf(r.ident, sizeof(r.ident), "%s", req->ident);
		snprintf(r.key_id, sizeof(r.key_id), "%s", key_id);
		r.csr = (char *)csr_pem;
		r.clientid = req->clientid;
		r.correlation = req->correlation;
		r.requested = time(NULL);
		r.state = CM_ENROLLMENT_PENDING;
		rc = cm_enroll_add_request(t->enroll, &r, err);
	}
	if(rc != CM_OK){
		cm_tenant_free(&t);
		return rc;
	}
	return cm_registry_put_tenant(st, req->clientid, "enrollRequest", t, NULL, err);
}

/* The approval mode: the request waits for an operator; asked again with
 * the same key, it gets the decision. */
static void approval(struct cm_state *st, const struct cm_tenant *cur, struct cm_enroll_req *req, X509_REQ *csr, const char *csr_pem)
{
	const struct cm_enrollment *r = cm_enroll_find(cur->enroll, req->ident);
	char key_id[CM_ID_LEN + 1], buf[400];
	struct cm_err err = {{0}};
	cJSON *answer;

	if(cm_sign_key_id(X509_REQ_get0_pubkey(csr), key_id, &err) != CM_OK){
		refuse(st, req, err.msg);
		return;
	}
	if(r && strcmp(r->key_id, key_id)){
		snprintf(buf, sizeof(buf), "another request for '%s' was made with another key: an operator decides on it first", req->ident);
		refuse(st, req, buf);
		return;
	}
	if(r && r->state == CM_ENROLLMENT_REJECTED){
		snprintf(buf, sizeof(buf), "rejected by an operator: %.300s", r->reason ? r->reason : "no reason given");
		if(commit_request(st, cur, req, false, NULL, NULL, &err) != CM_OK){
			cm_log(CM_LOG_WARNING, "enrollment: cannot drop the decided request of %s: %s", req->ident, err.msg);
		}
		refuse(st, req, buf);
		return;
	}
	if(r && r->state == CM_ENROLLMENT_APPROVED){
		answer = cert_fields(r->cert);
		if(commit_request(st, cur, req, false, NULL, NULL, &err) != CM_OK){
			cm_log(CM_LOG_WARNING, "enrollment: cannot drop the delivered request of %s: %s", req->ident, err.msg);
		}
		cm_log(CM_LOG_NOTICE, "enrollment: delivered the approved certificate for %s to '%s' (tenant %s)", req->ident, req->clientid,
				req->tenant);
		enroll_answer(st, req, answer);
		return;
	}
	if(r == NULL || strcmp(r->clientid ? r->clientid : "", req->clientid)
			|| strcmp(r->correlation ? r->correlation : "", req->correlation ? req->correlation : "")){
		if(commit_request(st, cur, req, true, key_id, csr_pem, &err) != CM_OK){
			refuse(st, req, err.msg);
			return;
		}
	}
	if(r == NULL){
		cm_log(CM_LOG_NOTICE, "enrollment: request of '%s' for %s (tenant %s) waits for an operator", req->clientid, req->ident, req->tenant);
		cm_enroll_count(st, "pending", req->tenant, req->clientid, req->ident, NULL);
	}
	enroll_answer(st, req, pending_fields(req->ident));
}

/* A claim device's request under the tenant's policy. */
static void claim_request(struct cm_state *st, const struct cm_tenant *t, struct cm_enroll_req *req, X509_REQ *csr, const char *csr_pem)
{
	char buf[400];

	if(!cm_enroll_pattern_matches(t->enroll, req->ident)){
		snprintf(buf, sizeof(buf), "identity '%s' is outside this tenant's idPattern '%.160s'", req->ident, t->enroll->id_pattern);
		refuse(st, req, buf);
	}else if(t->enroll->mode == CM_ENROLL_APPROVAL){
		approval(st, t, req, csr, csr_pem);
	}else if(t->enroll->mode == CM_ENROLL_ALLOWLIST && !cm_enroll_is_allowed(t->enroll, req->ident)){
		snprintf(buf, sizeof(buf), "identity '%s' is not pre-registered in this tenant", req->ident);
		refuse(st, req, buf);
	}else{
		sign(st, t, req, csr);
	}
}

/* {"csr": "<PEM>", "correlationData": "..."}: nothing else. */
static enum cm_rc parse_payload(const void *payload, uint32_t len, struct cm_enroll_req *req, char **csr_pem, struct cm_err *err)
{
	cJSON *root = NULL;
	const cJSON *m;
	const char *csr = NULL, *corr = NULL;
	enum cm_rc rc = CM_OK;

	*csr_pem = NULL;
	if(len > ENROLL_MAX_PAYLOAD){
		return cm_err_set(err, CM_ERR_INVAL, "the request of %u bytes is over the limit of %d", len, ENROLL_MAX_PAYLOAD);
	}
	if((root = cJSON_ParseWithLength(payload, len)) == NULL || !cJSON_IsObject(root)){
		cJSON_Delete(root);
		return cm_err_set(err, CM_ERR_INVAL, "the request is not a JSON object");
	}
	cJSON_ArrayForEach(m, root){
		if(strcmp(m->string, "csr") && strcmp(m->string, "correlationData")){
			rc = cm_err_set(err, CM_ERR_INVAL, "unknown field '%.32s' (a request takes csr, correlationData)", m->string);
		}
	}
	if(rc == CM_OK && (cm_json_get_string(root, "correlationData", false, &corr, err) != CM_OK
			|| (corr && (req->correlation = strdup(corr)) == NULL))){
		rc = corr ? cm_err_set(err, CM_ERR_NOMEM, "out of memory") : CM_ERR_INVAL;
	}
	if(rc == CM_OK && cm_json_get_string(root, "csr", true, &csr, err) != CM_OK){
		rc = cm_err_set(err, CM_ERR_INVAL, "'csr' (a PEM certificate signing request) is missing");
	}
	if(rc == CM_OK && (*csr_pem = strdup(csr)) == NULL){
		rc = cm_err_set(err, CM_ERR_NOMEM, "out of memory");
	}
	cJSON_Delete(root);
	return rc;
}

static struct cm_enroll_req *req_new(const struct mosquitto_evt_control *ed)
{
	struct cm_enroll_req *req = calloc(1, sizeof(*req));
	const char *clientid = mosquitto_client_id(ed->client);

	if(req == NULL || (req->clientid = strdup(clientid ? clientid : "")) == NULL){
		free(req);
		return NULL;
	}
	req->client = ed->client;
	(void)mosquitto_property_read_binary(ed->properties, MQTT_PROP_CORRELATION_DATA, &req->corr5, &req->corr5_len, false);
	return req;
}

/* The checks every request passes: who asks, a tenant with an issuing
 * CA, a CSR that verifies and asks for one identity the template allows.
 * NULL: refused already (req answered and freed). */
static X509_REQ *checked_csr(struct cm_state *st, const struct cm_client *c, struct cm_enroll_req *req, const struct cm_tenant **tp,
		const char *csr_pem)
{
	const struct cm_tenant *t;
	X509_REQ *csr = NULL;
	struct cm_err err = {{0}};
	char buf[160];

	if(c == NULL || c->kind == CM_CLIENT_ADMIN){
		refuse(st, req, "only claim devices, and devices of a tenant with an issuing CA, enroll here");
		return NULL;
	}
	snprintf(req->tenant, sizeof(req->tenant), "%s", c->tenant);
	t = cm_store_find_tenant(st->store, c->tenant);
	if(t == NULL || cm_enroll_issuing_ca(t) == NULL || t->enroll->ca_key == NULL){
		snprintf(buf, sizeof(buf), "tenant '%s' has no issuing CA", c->tenant);
		refuse(st, req, buf);
		return NULL;
	}
	if(cm_pki_parse_csr_pem(csr_pem, strlen(csr_pem), &csr, &err) != CM_OK
			|| cm_sign_check_csr(csr, &t->enroll->rules, req->ident, &err) != CM_OK){
		X509_REQ_free(csr);
		ERR_clear_error();
		refuse(st, req, err.msg);
		return NULL;
	}
	*tp = t;
	return csr;
}

int cm_enroll_cb(int event, void *event_data, void *userdata)
{
	struct mosquitto_evt_control *ed = event_data;
	struct cm_state *st = userdata;
	const struct cm_client *c = cm_auth_find_client(st, ed->client);
	const struct cm_tenant *t = NULL;
	struct cm_enroll_req *req = req_new(ed);
	struct cm_err err = {{0}};
	char *csr_pem = NULL, buf[400];
	const char *why;
	X509_REQ *csr;

	(void)event;
	if(req == NULL){
		return MOSQ_ERR_NOMEM;
	}
	if(parse_payload(ed->payload, ed->payloadlen, req, &csr_pem, &err) != CM_OK){
		free(csr_pem);
		refuse(st, req, err.msg);
		return MOSQ_ERR_SUCCESS;
	}
	csr = checked_csr(st, c, req, &t, csr_pem);
	if(csr == NULL){
		free(csr_pem);
		return MOSQ_ERR_SUCCESS;
	}
	if(c->kind == CM_CLIENT_CLAIM){
		claim_request(st, t, req, csr, csr_pem);
	}else if((why = renewal_refusal(t, c, req, buf, sizeof(buf))) != NULL){
		refuse(st, req, why);
	}else{
		sign(st, t, req, csr);
	}
	X509_REQ_free(csr);
	free(csr_pem);
	return MOSQ_ERR_SUCCESS;
}
