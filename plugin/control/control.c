#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#ifdef __GLIBC__
#include <malloc.h>
#endif
#include <string.h>

#include <mosquitto.h>
#include <mosquitto_broker.h>
#include <mosquitto_plugin.h>
#include <mqtt_protocol.h>

#include "metrics.h"
#include "auth.h"
#include "control.h"
#include "json.h"
#include "log.h"
#include "options.h"
#include "preparse.h"
#include "store.h"

const struct cm_field cm_fields_none[] = {
	{NULL, CM_FIELD_STRING, CM_OPTIONAL, 0, NULL},
};

const struct cm_field cm_fields_tenant[] = {
	{"tenant", CM_FIELD_STRING, CM_REQUIRED, 0, NULL},
	{NULL, CM_FIELD_STRING, CM_OPTIONAL, 0, NULL},
};

const struct cm_field cm_fields_tenant_id[] = {
	{"tenant", CM_FIELD_STRING, CM_REQUIRED, 0, NULL},
	{"id", CM_FIELD_STRING, CM_REQUIRED, 0, NULL},
	{NULL, CM_FIELD_STRING, CM_OPTIONAL, 0, NULL},
};

const struct cm_field cm_fields_slot[] = {
	{"slot", CM_FIELD_STRING, CM_REQUIRED, 0, NULL},
	{NULL, CM_FIELD_STRING, CM_OPTIONAL, 0, NULL},
};

const struct cm_field cm_fields_slot_id[] = {
	{"slot", CM_FIELD_STRING, CM_REQUIRED, 0, NULL},
	{"id", CM_FIELD_STRING, CM_REQUIRED, 0, NULL},
	{NULL, CM_FIELD_STRING, CM_OPTIONAL, 0, NULL},
};

static const struct cm_command *const tables[] = {
	cm_tenant_commands,
	cm_ca_commands,
	cm_crl_commands,
	cm_rejected_commands,
	cm_status_commands,
	cm_server_commands,
	cm_csr_commands,
	cm_device_commands,
	cm_enroll_commands,
	cm_issuing_commands,
	cm_fleet_commands,
};

static const struct cm_command *find_command(const char *name)
{
	size_t i;
	const struct cm_command *c;

	for(i = 0; i < sizeof(tables) / sizeof(tables[0]); i++){
		for(c = tables[i]; c->name; c++){
			if(!strcmp(c->name, name)){
				return c;
			}
		}
	}
	return NULL;
}

enum cm_rc cm_cmd_tenant(struct cm_state *st, const cJSON *cmd, const struct cm_tenant **out, struct cm_err *err)
{
	const char *name = NULL;

	*out = NULL;
	if(cm_json_get_string(cmd, "tenant", true, &name, err) != CM_OK){
		return CM_ERR_INVAL;
	}
	*out = cm_store_find_tenant(st->store, name);
	if(*out == NULL){
		return cm_err_set(err, CM_ERR_INVAL, "no tenant '%.64s'", name);
	}
	return CM_OK;
}

enum cm_rc cm_cmd_nomem(struct cm_err *err)
{
	return cm_err_set(err, CM_ERR_NOMEM, "out of memory");
}

enum cm_rc cm_cmd_add_sorted(cJSON *data, const char *key, const void **items, size_t n,
		int (*cmp)(const void *, const void *), cJSON *(*render)(const void *item), struct cm_err *err)
{
	cJSON *arr = items ? cJSON_AddArrayToObject(data, key) : NULL;
	size_t i;

	if(arr && n){
		qsort(items, n, sizeof(*items), cmp);
	}
	for(i = 0; arr && i < n; i++){
		cJSON *o = render(items[i]);
		if(o == NULL || !cJSON_AddItemToArray(arr, o)){
			cJSON_Delete(o);
			arr = NULL;
		}
	}
	free(items);
	return arr ? CM_OK : cm_cmd_nomem(err);
}

void cm_cmd_answer(cJSON *data, const char *name, cJSON *o)
{
	if(o && !cJSON_AddItemToObject(data, name, o)){
		cJSON_Delete(o);
	}
}

enum cm_rc cm_cmd_private_keys(const struct cm_caller *who, const char *move, struct cm_err *err)
{
	/* Mosquitto 2.0 does not tell a plugin whether a connection is TLS;
	 * a client certificate certmgr verified shows it is, and so does a
	 * websockets connection when every websockets listener is TLS. A
	 * user name's MQTT connection may be plain TCP, and loopback proves
	 * nothing: a local reverse proxy connects from there for anyone. */
	if(who->via == CM_ADMIN_CERT || who->via == CM_ADMIN_USERNAME_TLS){
		return CM_OK;
	}
	return cm_err_set(err, CM_ERR_INVAL, "private keys are %s only over TLS: with an admin certificate, or by a user name over websockets"
			" when every websockets listener is TLS; this connection is neither (a user name's MQTT connection may be plain TCP,"
			" and a loopback address may be a local proxy's)", move);
}

enum cm_rc cm_cmd_slot(const cJSON *cmd, enum cm_slot_id *slot, struct cm_err *err)
{
	const char *name = NULL;
	int s;

	if(cm_json_get_string(cmd, "slot", true, &name, err) != CM_OK){
		return CM_ERR_INVAL;
	}
	s = cm_slot_parse(name);
	if(s < 0){
		return cm_err_set(err, CM_ERR_INVAL, "unknown slot '%.32s' (mqtt, websockets, bridge)", name);
	}
	*slot = (enum cm_slot_id)s;
	return CM_OK;
}

enum cm_rc cm_cmd_keyspec(const cJSON *cmd, bool ed25519, struct cm_keyspec *spec, char curve[8], struct cm_err *err)
{
	const cJSON *k = cJSON_GetObjectItemCaseSensitive(cmd, "key"), *m;
	const char *type = NULL, *cv = "P-256";
	int64_t bits = 2048;

	spec->type = CM_KEY_EC;
	snprintf(curve, 8, "P-256");
	spec->curve = curve;
	if(k == NULL){
		return CM_OK;
	}
	if(!cJSON_IsObject(k) || cm_json_get_string(k, "type", true, &type, err) != CM_OK){
		return cm_err_set(err, CM_ERR_INVAL, "'key' must be an object with 'type' (ec, rsa%s)", ed25519 ? ", ed25519" : "");
	}
	cJSON_ArrayForEach(m, k){
		/* A misspelt member would leave the default in place unnoticed. */
		if(strcmp(m->string, "type") && strcmp(m->string, "curve") && strcmp(m->string, "bits")){
			return cm_err_set(err, CM_ERR_INVAL, "unknown field 'key.%.32s' (a key takes type, curve, bits)", m->string);
		}
	}
	if(!strcmp(type, "ec")){
		if(cm_json_get_string(k, "curve", false, &cv, err) != CM_OK || (strcmp(cv, "P-256") && strcmp(cv, "P-384"))){
			return cm_err_set(err, CM_ERR_INVAL, "'key.curve' must be P-256 or P-384");
		}
		snprintf(curve, 8, "%s", cv);
		return CM_OK;
	}
	if(!strcmp(type, "rsa")){
		if(cm_json_get_int(k, "bits", false, 0, 16384, &bits, err) != CM_OK){
			return CM_ERR_INVAL;
		}
		if(bits == 1024 && !spec->allow_weak){
			return cm_err_set(err, CM_ERR_INVAL, "'key.bits' must be 2048, 3072 or 4096: RSA 1024 is weak and needs allowWeakKey (createCSR only)");
		}
		if(bits != 2048 && bits != 3072 && bits != 4096 && !(bits == 1024 && spec->allow_weak)){
			return cm_err_set(err, CM_ERR_INVAL, "'key.bits' must be 2048, 3072 or 4096");
		}
		spec->type = CM_KEY_RSA;
		spec->bits = (int)bits;
		return CM_OK;
	}
	if(ed25519 && !strcmp(type, "ed25519")){
		spec->type = CM_KEY_ED25519;
		return CM_OK;
	}
	return cm_err_set(err, CM_ERR_INVAL, "unknown key type '%.16s' (ec, rsa%s)", type, ed25519 ? ", ed25519" : "");
}

enum cm_rc cm_cmd_strings(const cJSON *cmd, const char *name, size_t max, const cJSON **out, size_t *count, struct cm_err *err)
{
	const cJSON *item;
	size_t n = 0;

	*out = NULL;
	*count = 0;
	if(cm_json_get_array(cmd, name, false, out, err) != CM_OK){
		return CM_ERR_INVAL;
	}
	if(*out == NULL){
		return CM_OK;
	}
	cJSON_ArrayForEach(item, *out){
		if(!cJSON_IsString(item)){
			return cm_err_set(err, CM_ERR_INVAL, "'%s' must be an array of strings", name);
		}
		n++;
	}
	if(n > max){
		return cm_err_set(err, CM_ERR_INVAL, "'%s' holds more than %zu entries", name, max);
	}
	*count = n;
	return CM_OK;
}

struct cm_request {
	char *clientid;
	/* The connection that asked (struct mosquitto *); NULL once it is
	 * gone: the answer is for that session only, not for whoever holds
	 * its client id by then (it may carry a private key). */
	const void *client;
	struct cm_caller who;
	cJSON *root;                 /* the request */
	/* The response entries so far, printed and comma-separated: a
	 * request of thousands of commands would otherwise keep thousands of
	 * small cJSON blocks alive between the tenants and trust stores it
	 * makes, and the heap they leave full of holes slows every handshake
	 * after it (docs/BENCHMARKS.md, "just registered"). */
	struct cm_text responses;
	size_t nresponses;
	const cJSON *cursor;         /* the next command */
	cJSON *pending_resp, *pending_data;
	bool pending_writes;          /* the waiting command's row's */
	/* A request on CM_CONTROL_CRL_TOPIC: the CRL as it came, for its
	 * uploadCRL (cm_control_take_body). */
	unsigned char *body;
	size_t body_len;
	/* Changes of the waiting command the store's back end has not yet
	 * said the end of (cm_control_commit_done), and the first failure. */
	unsigned commits_waiting;
	enum cm_rc commit_rc;
	struct cm_err commit_err;
	/* Its certificates parsed ahead when it is a bulk request; NULL
	 * when not. */
	struct cm_preparse *preparse;
	struct cm_request *next;
};

static cJSON *error_response(const char *command, const char *error)
{
	cJSON *r = cJSON_CreateObject();

	if(r){
		cJSON_AddStringToObject(r, "command", command);
		cJSON_AddStringToObject(r, "error", error);
	}
	return r;
}

/* The event of a change made through the control API: the command, who
 * made it, and what it named. */
static void change_event(struct cm_state *st, const struct cm_caller *who, const char *command, const cJSON *cmd)
{
	static const char *const named[] = {"tenant", "slot", "id"};
	cJSON *e = cJSON_CreateObject();
	size_t i;

	if(e == NULL || !cJSON_AddStringToObject(e, "command", command) || !cJSON_AddStringToObject(e, "by", who->name)){
		cJSON_Delete(e);
		return;
	}
	for(i = 0; i < sizeof(named) / sizeof(named[0]); i++){
		const cJSON *v = cJSON_GetObjectItemCaseSensitive(cmd, named[i]);
		if(cJSON_IsString(v) && !cJSON_AddStringToObject(e, named[i], v->valuestring)){
			cJSON_Delete(e);
			return;
		}
	}
	cm_event(st, "change", e);
}

/* Completes the response entry resp of a command with rc. A failure to
 * write the store (a full disk, say) is the operator's business even when
 * nobody reads the response: it is logged too. */
static void complete(struct cm_state *st, const struct cm_caller *who, cJSON *resp, cJSON *data, const cJSON *cmd, bool writes, enum cm_rc rc,
		const struct cm_err *err)
{
	const cJSON *corr = cJSON_GetObjectItemCaseSensitive(cmd, "correlationData");
	const cJSON *name = cJSON_GetObjectItemCaseSensitive(resp, "command");

	if(rc == CM_ERR_IO){
		cm_log(CM_LOG_WARNING, "%s | %s | failed, nothing changed: %s", who->name,
				cJSON_IsString(name) ? name->valuestring : "?", err && err->msg[0] ? err->msg : "I/O error");
	}

	if(rc == CM_OK){
		if(cJSON_GetArraySize(data) > 0){
			cJSON_AddItemToObject(resp, "data", data);
			data = NULL;
		}
	}else{
		cJSON_AddStringToObject(resp, "error", rc == CM_ERR_NOMEM ? "out of memory" : (err && err->msg[0] ? err->msg : "failed"));
	}
	cJSON_Delete(data);
	if(cJSON_IsString(corr)){
		cJSON_AddStringToObject(resp, "correlationData", corr->valuestring);
	}
	if(rc == CM_OK && writes && cJSON_IsString(name)){
		change_event(st, who, name->valuestring, cmd);
	}
}

/* Runs one command. Returns its response entry, or NULL when it waits
 * (then req holds the entry and its data). */
static cJSON *run_one(struct cm_state *st, struct cm_request *req, const cJSON *cmd)
{
	const cJSON *corr = NULL;
	const char *name = NULL;
	const struct cm_command *c;
	struct cm_err err = {{0}};
	cJSON *resp, *data;
	enum cm_rc rc;

	if(!cJSON_IsObject(cmd)){
		return error_response("Unknown", "each command must be an object");
	}
	if(cm_json_get_string(cmd, "command", true, &name, &err) != CM_OK){
		return error_response("Unknown", err.msg);
	}
	corr = cJSON_GetObjectItemCaseSensitive(cmd, "correlationData");
	if(corr && !cJSON_IsString(corr)){
		return error_response(name, "'correlationData' must be a string");
	}
	c = find_command(name);
	data = cJSON_CreateObject();
	resp = cJSON_CreateObject();
	if(data == NULL || resp == NULL || !cJSON_AddStringToObject(resp, "command", name)){
		cJSON_Delete(data);
		cJSON_Delete(resp);
		return error_response("Unknown", "out of memory");
	}
	if(c == NULL){
		rc = cm_err_set(&err, CM_ERR_INVAL, "unknown command '%.64s'", name);
	}else if((rc = cm_fields_check(c->fields, cmd, &err)) == CM_OK){
		req->who.command = c->name;
		st->commit_owner = req;
		st->commits_submitted = 0;
		rc = c->fn(st, &req->who, cmd, data, &err);
		st->commit_owner = NULL;
		if(rc == CM_OK && st->commits_submitted > 0){
			/* The back end answers for the change: wait for it. */
			req->commits_waiting = st->commits_submitted;
			req->commit_rc = CM_OK;
			rc = CM_PENDING;
		}
	}
	if(rc == CM_PENDING){
		req->pending_resp = resp;
		req->pending_data = data;
		req->pending_writes = c->writes;
		return NULL;
	}
	complete(st, &req->who, resp, data, cmd, c && c->writes, rc, &err);
	return resp;
}

/* Prints r (taken, freed here) after the entries so far. */
static void add_response(struct cm_request *req, cJSON *r)
{
	char *text = r ? cJSON_PrintUnformatted(r) : NULL;
	size_t was = req->responses.len;

	cJSON_Delete(r);
	if(text == NULL || (req->nresponses && !cm_text_append(&req->responses, ",", 1))
			|| !cm_text_append(&req->responses, text, strlen(text))){
		if(req->responses.s){
			req->responses.len = was;
			req->responses.s[was] = '\0';
		}
		cm_log(CM_LOG_WARNING, "out of memory: a response entry for '%s' is lost", req->clientid);
	}else{
		req->nresponses++;
	}
	free(text);
}

/* Stops req's parse-ahead thread, if it has one, saying how much of the
 * parse it took off the broker thread. */
static void preparse_end(struct cm_request *req, const char *when)
{
	struct cm_preparse_stats s;

	if(req->preparse == NULL){
		return;
	}
	cm_preparse_stats(req->preparse, &s);
	cm_log(CM_LOG_INFO, "request of '%s': %zu of its %zu certificates parsed ahead%s", req->clientid, s.taken_ahead,
			s.count, when);
	cm_preparse_free(&req->preparse);
}

static void request_free(struct cm_request *req)
{
	/* The thread reads the request's texts: stopped first. */
	preparse_end(req, "");
	free(req->body);
	cJSON_Delete(req->root);
	cm_text_free(&req->responses);
	cJSON_Delete(req->pending_resp);
	cJSON_Delete(req->pending_data);
	free(req->clientid);
	free(req);
}

/* Publishes {"responses":[...]}, as cJSON_PrintUnformatted prints it. */
static void deliver(struct cm_request *req)
{
	static const char head[] = "{\"responses\":[", tail[] = "]}";
	const char *text = req->responses.s ? req->responses.s : "";
	char *payload;
	size_t len;
	int rc;

	if(req->client == NULL){
		cm_log(CM_LOG_NOTICE, "dropped the control response for '%s': the connection that asked is gone", req->clientid);
		return;
	}
	len = sizeof(head) - 1 + req->responses.len + sizeof(tail) - 1;
	if(len > INT_MAX){
		cm_log(CM_LOG_WARNING, "cannot build the control response for '%s'", req->clientid);
		return;
	}
	/* The broker takes the payload and frees it with its own allocator. */
	payload = mosquitto_malloc(len);
	if(payload == NULL){
		return;
	}
	memcpy(payload, head, sizeof(head) - 1);
	memcpy(payload + sizeof(head) - 1, text, req->responses.len);
	memcpy(payload + sizeof(head) - 1 + req->responses.len, tail, sizeof(tail) - 1);
	rc = mosquitto_broker_publish(req->clientid, CM_CONTROL_RESPONSE_TOPIC, (int)len, payload, 0, false, NULL);
	if(rc != MOSQ_ERR_SUCCESS){
		mosquitto_free(payload);
		cm_log(CM_LOG_WARNING, "cannot publish the control response to '%s' (error %d)", req->clientid, rc);
	}
}

/* Runs the commands from the cursor on; true when the request is done. */
static bool run(struct cm_state *st, struct cm_request *req)
{
	while(req->cursor){
		const cJSON *cmd = req->cursor;
		cJSON *r = run_one(st, req, cmd);

		req->cursor = cmd->next;
		if(r == NULL){
			return false; /* waits for a download */
		}
		add_response(req, r);
	}
	return true;
}

static void unlink_request(struct cm_state *st, struct cm_request *req)
{
	struct cm_request **pp;

	for(pp = &st->requests; *pp; pp = &(*pp)->next){
		if(*pp == req){
			*pp = req->next;
			return;
		}
	}
}

enum cm_rc cm_control_parse_certs(const struct cm_caller *who, const char *pem, STACK_OF(X509) **out, struct cm_err *err)
{
	return cm_preparse_take(who && who->req ? who->req->preparse : NULL, pem, out, err);
}

cJSON *cm_control_pending_data(struct cm_request *req)
{
	return req->pending_data;
}

void cm_control_resume(struct cm_state *st, struct cm_request *req, enum cm_rc rc, const struct cm_err *err)
{
	const cJSON *cmd;
	cJSON *resp = req->pending_resp;
	bool done;

	/* The command that waited is the one before the cursor. */
	for(cmd = cJSON_GetObjectItemCaseSensitive(req->root, "commands")->child; cmd && cmd->next != req->cursor; cmd = cmd->next){
	}
	cm_events_hold(st);
	complete(st, &req->who, resp, req->pending_data, cmd, req->pending_writes, rc, err);
	req->pending_resp = req->pending_data = NULL;
	add_response(req, resp);
	done = run(st, req);
	cm_events_release(st);
	cm_store_sync(st->store);
	if(done){
		unlink_request(st, req);
		deliver(req);
		request_free(req);
	}
}

void cm_control_own_commits(struct cm_state *st, struct cm_request *req)
{
	st->commit_owner = req;
	st->commits_submitted = 0;
}

void cm_control_resume_owned(struct cm_state *st, struct cm_request *req, enum cm_rc rc, const struct cm_err *err)
{
	unsigned n = st->commit_owner == req ? st->commits_submitted : 0;

	if(st->commit_owner != req && st->unowned_commit && rc == CM_OK){
		/* The change background work (a refresh) just handed on for
		 * this command. */
		*st->unowned_commit = req;
		n = 1;
	}
	st->unowned_commit = NULL;
	st->commit_owner = NULL;
	if(rc == CM_OK && n > 0){
		req->commits_waiting = n;
		req->commit_rc = CM_OK;
		return; /* cm_control_commit_done resumes it */
	}
	cm_control_resume(st, req, rc, err);
}

void cm_control_commit_done(struct cm_state *st, void *owner, enum cm_rc rc, const struct cm_err *err)
{
	struct cm_request *req;

	for(req = st->requests; req && req != owner; req = req->next){
	}
	if(req == NULL || req->commits_waiting == 0){
		return; /* not a command that waits for its changes */
	}
	if(rc != CM_OK && req->commit_rc == CM_OK){
		req->commit_rc = rc;
		req->commit_err = *err;
	}
	if(--req->commits_waiting == 0){
		cm_control_resume(st, req, req->commit_rc, &req->commit_err);
	}
}

/* A CRL arriving in parts on the CRL topic: one PUBLISH of tens of
 * megabytes holds the broker thread while Mosquitto reads it; parts of a
 * megabyte let it serve the other clients in between. Each part carries
 * the user properties upload (an id the client chose), offset (the bytes
 * before it) and size (the whole CRL's); they come in order, the buffer is
 * allocated once at the first, and the last hands it to uploadCRL as it
 * is. An upload belongs to the connection that began it. */
struct cm_crl_upload {
	struct cm_crl_upload *next;
	const void *client;     /* the connection it belongs to */
	char *id, *tenant, *corr;
	unsigned char *buf;
	size_t size, got;
	time_t last;            /* the last part's arrival */
};

/* In progress at once, over all clients: each holds up to
 * plugin_opt_crl_max_size. */
#define CM_CRL_UPLOADS_MAX 4
#define CM_CRL_UPLOAD_IDLE 60
#define CM_CRL_UPLOAD_ID_MAX 64

static void upload_free(struct cm_crl_upload *u)
{
	if(u){
		free(u->id);
		free(u->tenant);
		free(u->corr);
		free(u->buf);
		free(u);
	}
}

static void upload_drop(struct cm_state *st, struct cm_crl_upload *u)
{
	struct cm_crl_upload **pp;

	for(pp = &st->crl_uploads; *pp; pp = &(*pp)->next){
		if(*pp == u){
			*pp = u->next;
			break;
		}
	}
	upload_free(u);
}

static struct cm_crl_upload *upload_of(struct cm_state *st, const void *client, size_t *count)
{
	struct cm_crl_upload *u, *found = NULL;

	*count = 0;
	for(u = st->crl_uploads; u; u = u->next){
		(*count)++;
		if(u->client == client){
			found = u;
		}
	}
	return found;
}

void cm_control_forget_client(struct cm_state *st, const void *client)
{
	size_t count;
	struct cm_crl_upload *u = upload_of(st, client, &count);

	if(u){
		cm_log(CM_LOG_NOTICE, "dropped the CRL upload '%s' for tenant %s: its client left (%zu of %zu bytes came)", u->id,
				u->tenant, u->got, u->size);
		upload_drop(st, u);
	}
	for(struct cm_request *req = st->requests; req; req = req->next){
		if(req->client == client){
			req->client = NULL;
		}
	}
}

void cm_control_cleanup(struct cm_state *st)
{
	while(st->crl_uploads){
		upload_drop(st, st->crl_uploads);
	}
	while(st->requests){
		struct cm_request *req = st->requests;
		st->requests = req->next;
		request_free(req);
	}
}

static bool is_loopback(const char *addr)
{
	return addr && (!strncmp(addr, "127.", 4) || !strcmp(addr, "::1") || !strncmp(addr, "::ffff:127.", 11));
}

/* A request of an administrator's, or NULL (refused, or out of memory:
 * *rc says which). */
static struct cm_request *request_new(struct cm_state *st, struct mosquitto *client, int *rc)
{
	enum cm_admin_via via = cm_auth_admin(st, client);
	struct cm_request *req;

	if(via == CM_ADMIN_NONE){
		/* The ACL check already denies this; the handler checks again. */
		cm_log(CM_LOG_NOTICE, "denied a control request from '%s': not an administrator", mosquitto_client_id(client));
		*rc = MOSQ_ERR_ACL_DENIED;
		return NULL;
	}
	req = calloc(1, sizeof(*req));
	if(req == NULL || (req->clientid = strdup(mosquitto_client_id(client))) == NULL){
		if(req){
			request_free(req);
		}
		*rc = MOSQ_ERR_NOMEM;
		return NULL;
	}
	req->client = client;
	req->who.name = req->clientid;
	req->who.via = via;
	req->who.loopback = is_loopback(mosquitto_client_address(client));
	req->who.req = req;
	return req;
}

/* Runs req's commands; answers now, or when the one it waits for is
 * done. */
static void request_start(struct cm_state *st, struct cm_request *req, size_t payload_len)
{
	bool done;

	cm_events_hold(st);
	done = run(st, req);
	cm_events_release(st);
	if(done){
		deliver(req);
		request_free(req);
#ifdef __GLIBC__
		if(payload_len > 1024 * 1024){
			/* A large request (a CRL, a bundle) left its parse freed:
			 * give the pages back. */
			malloc_trim(0);
		}
#endif
	}else{
		/* Waits for a download; other requests go on meanwhile. Its
		 * thread stops with what it holds: a waiting request keeps no
		 * thread, and the rest of its commands parse their own. */
		preparse_end(req, ", before it waited for a download");
		req->next = st->requests;
		st->requests = req;
	}
}

int cm_control_cb(int event, void *event_data, void *userdata)
{
	struct mosquitto_evt_control *ed = event_data;
	struct cm_state *st = userdata;
	struct cm_request *req;
	const cJSON *commands;
	char msg[128];
	int rc;

	(void)event;
	if((req = request_new(st, ed->client, &rc)) == NULL){
		return rc;
	}
	if(ed->payloadlen > st->max_payload){
		snprintf(msg, sizeof(msg), "payload of %u bytes is over the limit of %zu", ed->payloadlen, st->max_payload);
		add_response(req, error_response("Unknown", msg));
	}else if((req->root = cJSON_ParseWithLength(ed->payload, ed->payloadlen)) == NULL || !cJSON_IsObject(req->root)){
		add_response(req, error_response("Unknown", "payload is not a JSON object"));
	}else if(!cJSON_IsArray(commands = cJSON_GetObjectItemCaseSensitive(req->root, "commands"))){
		add_response(req, error_response("Unknown", "'commands' must be an array"));
	}else{
		req->cursor = commands->child;
		req->preparse = cm_preparse_start(commands);
	}
	request_start(st, req, ed->payloadlen);
	return MOSQ_ERR_SUCCESS;
}

/* The value of the MQTT v5 user property name (malloc'd), or NULL. */
static char *user_property(const mosquitto_property *props, const char *name)
{
	const mosquitto_property *p = props;
	bool skip = false;
	char *k, *v;

	while((p = mosquitto_property_read_string_pair(p, MQTT_PROP_USER_PROPERTY, &k, &v, skip)) != NULL){
		bool match = !strcmp(k, name);
		free(k);
		if(match){
			return v;
		}
		free(v);
		skip = true;
	}
	return NULL;
}

/* {"commands":[{"command":"uploadCRL","tenant":...}]} for the CRL that
 * came as the payload; NULL when out of memory. */
static cJSON *crl_request(const char *tenant, const char *corr)
{
	cJSON *root = cJSON_CreateObject(), *arr = root ? cJSON_AddArrayToObject(root, "commands") : NULL;
	cJSON *cmd = cJSON_CreateObject();

	if(arr == NULL || cmd == NULL || !cJSON_AddItemToArray(arr, cmd)){
		cJSON_Delete(cmd);
		cJSON_Delete(root);
		return NULL;
	}
	if(!cJSON_AddStringToObject(cmd, "command", "uploadCRL") || !cJSON_AddStringToObject(cmd, "tenant", tenant)
			|| (corr && !cJSON_AddStringToObject(cmd, "correlationData", corr))){
		cJSON_Delete(root);
		return NULL;
	}
	return root;
}

void cm_control_tick(struct cm_state *st, time_t now)
{
	struct cm_crl_upload *u = st->crl_uploads, *next;

	for(; u; u = next){
		next = u->next;
		if(now - u->last >= CM_CRL_UPLOAD_IDLE){
			cm_log(CM_LOG_NOTICE, "dropped the CRL upload '%s' for tenant %s: no part for %d s (%zu of %zu bytes came)",
					u->id, u->tenant, CM_CRL_UPLOAD_IDLE, u->got, u->size);
			upload_drop(st, u);
		}
	}
}

/* A new upload of client's, its buffer of size set aside; NULL when out of
 * memory. */
static struct cm_crl_upload *upload_begin(struct cm_state *st, const void *client, const char *id, const char *tenant,
		size_t size)
{
	struct cm_crl_upload *u = calloc(1, sizeof(*u));

	if(u == NULL || (u->id = strdup(id)) == NULL || (u->tenant = strdup(tenant)) == NULL
			|| (u->buf = malloc(size)) == NULL){
		upload_free(u);
		return NULL;
	}
	u->client = client;
	u->size = size;
	u->next = st->crl_uploads;
	st->crl_uploads = u;
	return u;
}

/* The checks of one part; NULL when it fits, else the error (in msg).
 * *u is the client's upload in progress (NULL: none), made here at a
 * first part. */
static const char *part_check(struct cm_state *st, const void *client, const char *tenant, const char *id,
		const char *offset_s, const char *size_s, size_t len, struct cm_crl_upload **u, char *msg, size_t msglen)
{
	unsigned long long offset, size;
	size_t count;

	*u = upload_of(st, client, &count);
	if(strlen(id) == 0 || strlen(id) > CM_CRL_UPLOAD_ID_MAX || offset_s == NULL || size_s == NULL){
		snprintf(msg, msglen, offset_s && size_s ? "the user property 'upload' must have 1 to 64 characters"
				: "a CRL in parts needs the user properties 'offset' and 'size' with 'upload'");
		return msg;
	}
	if(!cm_options_parse_count(size_s, 1, st->fetch_opts.max_size, &size)){
		snprintf(msg, msglen, "'size' must be a count of bytes from 1 to %zu (plugin_opt_crl_max_size), not '%.40s'",
				st->fetch_opts.max_size, size_s);
		return msg;
	}
	if(!cm_options_parse_count(offset_s, 0, size, &offset)){
		snprintf(msg, msglen, "'offset' must be a count of bytes from 0 to the size %llu, not '%.40s'", size, offset_s);
		return msg;
	}
	if(*u && strcmp((*u)->id, id) != 0){
		if(offset != 0){
			snprintf(msg, msglen, "no upload '%.64s' in progress on this connection (it has '%.64s')", id, (*u)->id);
			return msg;
		}
		/* A new upload from offset 0 replaces the connection's old one. */
		upload_drop(st, *u);
		*u = NULL;
		count--;
	}
	if(*u == NULL){
		if(offset != 0){
			snprintf(msg, msglen, "no upload '%.64s' in progress on this connection: its first part has offset 0", id);
			return msg;
		}
		if(count >= CM_CRL_UPLOADS_MAX){
			snprintf(msg, msglen, "%d CRL uploads are in progress already; try again when one is done", CM_CRL_UPLOADS_MAX);
			return msg;
		}
		if((*u = upload_begin(st, client, id, tenant, (size_t)size)) == NULL){
			snprintf(msg, msglen, "out of memory");
			return msg;
		}
	}
	if(strcmp((*u)->tenant, tenant) != 0 || (*u)->size != size){
		snprintf(msg, msglen, "upload '%.64s' began for tenant %.64s with %zu bytes: a part may not change them", id,
				(*u)->tenant, (*u)->size);
		return msg;
	}
	if(offset != (*u)->got){
		snprintf(msg, msglen, "upload '%.64s': a part at offset %llu, but %zu bytes came so far (parts come in order)", id, offset,
				(*u)->got);
		return msg;
	}
	if(len == 0 || len > (*u)->size - (*u)->got){
		snprintf(msg, msglen, "upload '%.64s': a part of %zu bytes at offset %llu overruns its size of %zu (or is empty)", id, len,
				offset, (*u)->size);
		return msg;
	}
	return NULL;
}

/* An error of the CRL topic, with the correlation data the sender gave
 * (it waits for that, not for a command of its own). */
static void crl_error(struct cm_request *req, const char *msg, const char *corr)
{
	cJSON *r = error_response("uploadCRL", msg);

	if(r && corr && !cJSON_AddStringToObject(r, "correlationData", corr)){
		cJSON_Delete(r);
		r = error_response("uploadCRL", "out of memory");
	}
	add_response(req, r);
}

/* One part; the request answers now when the part is refused or the
 * last, else it is dropped unanswered (the PUBACK paces the sender). */
static bool crl_part(struct cm_state *st, struct cm_request *req, const struct mosquitto_evt_control *ed, const char *tenant,
		const char *corr, const char *id)
{
	char msg[256], *offset = user_property(ed->properties, "offset"), *size = user_property(ed->properties, "size");
	struct cm_crl_upload *u;
	const char *e = part_check(st, ed->client, tenant, id, offset, size, ed->payloadlen, &u, msg, sizeof(msg));

	free(offset);
	free(size);
	if(e){
		if(u){
			upload_drop(st, u);
		}
		crl_error(req, e, corr);
		return true;
	}
	memcpy(u->buf + u->got, ed->payload, ed->payloadlen);
	u->got += ed->payloadlen;
	u->last = time(NULL);
	if(u->got < u->size){
		return false;
	}
	if((req->root = crl_request(u->tenant, corr)) == NULL){
		crl_error(req, "out of memory", corr);
	}else{
		/* The whole CRL, handed over without another copy. */
		req->body = u->buf;
		req->body_len = u->size;
		u->buf = NULL;
		req->cursor = cJSON_GetObjectItemCaseSensitive(req->root, "commands")->child;
	}
	upload_drop(st, u);
	return true;
}

int cm_control_crl_cb(int event, void *event_data, void *userdata)
{
	struct mosquitto_evt_control *ed = event_data;
	struct cm_state *st = userdata;
	struct cm_request *req;
	char msg[160], *tenant, *corr, *upload;
	size_t len = ed->payloadlen;
	int rc;

	(void)event;
	if((req = request_new(st, ed->client, &rc)) == NULL){
		return rc;
	}
	tenant = user_property(ed->properties, "tenant");
	corr = user_property(ed->properties, "correlationData");
	upload = user_property(ed->properties, "upload");
	if(tenant == NULL){
		add_response(req, error_response("uploadCRL", "the CRL topic needs the MQTT v5 user property 'tenant'"));
	}else if(upload){
		if(!crl_part(st, req, ed, tenant, corr, upload)){
			request_free(req);
			req = NULL;
		}
		len = req && req->body ? req->body_len : 0;
	}else if(ed->payloadlen == 0 || ed->payloadlen > st->fetch_opts.max_size){
		snprintf(msg, sizeof(msg), "a CRL of %u bytes: it must have 1 to %zu (plugin_opt_crl_max_size)", ed->payloadlen,
				st->fetch_opts.max_size);
		crl_error(req, msg, corr);
	}else if((req->root = crl_request(tenant, corr)) == NULL || (req->body = malloc(ed->payloadlen)) == NULL){
		crl_error(req, "out of memory", corr);
	}else{
		/* Taken as it is: no base64, no JSON string, and the worker
		 * decodes and checks a large one. */
		memcpy(req->body, ed->payload, ed->payloadlen);
		req->body_len = ed->payloadlen;
		req->cursor = cJSON_GetObjectItemCaseSensitive(req->root, "commands")->child;
	}
	free(tenant);
	free(corr);
	free(upload);
	if(req){
		request_start(st, req, len);
	}
	return MOSQ_ERR_SUCCESS;
}

bool cm_control_take_body(struct cm_request *req, unsigned char **body, size_t *len)
{
	if(req == NULL || req->body == NULL){
		return false;
	}
	*body = req->body;
	*len = req->body_len;
	req->body = NULL;
	req->body_len = 0;
	return true;
}
