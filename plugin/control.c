#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <mosquitto.h>
#include <mosquitto_broker.h>
#include <mosquitto_plugin.h>

#include "control.h"
#include "json.h"
#include "log.h"

static const struct cm_command *const tables[] = {
	cm_tenant_commands,
	cm_ca_commands,
	cm_rejected_commands,
	cm_status_commands,
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

enum cm_rc cm_cmd_tenant(struct cm_state *st, const cJSON *cmd, struct cm_tenant **out, struct cm_err *err)
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

enum cm_rc cm_cmd_put_tenant(struct cm_state *st, const struct cm_caller *who, const char *command, struct cm_tenant *t, const char *id, struct cm_err *err)
{
	struct cm_tenant *old = NULL;
	enum cm_rc rc;

	rc = cm_store_put_tenant(st->store, t, &old, err);
	if(rc != CM_OK){
		cm_tenant_free(&t);
		return rc;
	}
	cm_tenant_free(&old);
	if(id){
		cm_log(CM_LOG_NOTICE, "%s | %s | tenant=%s id=%s", who->name, command, t->name, id);
	}else{
		cm_log(CM_LOG_NOTICE, "%s | %s | tenant=%s", who->name, command, t->name);
	}
	cm_auth_recheck(st, t->name);
	return CM_OK;
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

static cJSON *error_response(const char *command, const char *error)
{
	cJSON *r = cJSON_CreateObject();

	if(r){
		cJSON_AddStringToObject(r, "command", command);
		cJSON_AddStringToObject(r, "error", error);
	}
	return r;
}

static cJSON *run_one(struct cm_state *st, const struct cm_caller *who, const cJSON *cmd)
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
		resp = error_response(name, "'correlationData' must be a string");
		return resp;
	}
	c = find_command(name);
	data = cJSON_CreateObject();
	resp = cJSON_CreateObject();
	if(data == NULL || resp == NULL || !cJSON_AddStringToObject(resp, "command", name)){
		cJSON_Delete(data);
		cJSON_Delete(resp);
		return NULL;
	}
	if(c == NULL){
		rc = cm_err_set(&err, CM_ERR_INVAL, "unknown command '%.64s'", name);
	}else{
		rc = c->fn(st, who, cmd, data, &err);
	}
	if(rc == CM_OK){
		if(cJSON_GetArraySize(data) > 0){
			cJSON_AddItemToObject(resp, "data", data);
			data = NULL;
		}
	}else{
		if(rc == CM_ERR_NOMEM){
			cm_err_set(&err, rc, "out of memory");
		}
		cJSON_AddStringToObject(resp, "error", err.msg[0] ? err.msg : "failed");
	}
	cJSON_Delete(data);
	if(corr){
		cJSON_AddStringToObject(resp, "correlationData", corr->valuestring);
	}
	return resp;
}

char *cm_control_handle(struct cm_state *st, const struct cm_caller *who, const char *payload, size_t len)
{
	cJSON *root = NULL, *out, *responses, *r;
	const cJSON *commands, *cmd;
	char *text;

	out = cJSON_CreateObject();
	responses = out ? cJSON_AddArrayToObject(out, "responses") : NULL;
	if(responses == NULL){
		cJSON_Delete(out);
		return NULL;
	}
	if(len > st->max_payload){
		char msg[128];
		snprintf(msg, sizeof(msg), "payload of %zu bytes is over the limit of %zu", len, st->max_payload);
		cJSON_AddItemToArray(responses, error_response("Unknown", msg));
	}else if((root = cJSON_ParseWithLength(payload, len)) == NULL || !cJSON_IsObject(root)){
		cJSON_AddItemToArray(responses, error_response("Unknown", "payload is not a JSON object"));
	}else if(!cJSON_IsArray(commands = cJSON_GetObjectItemCaseSensitive(root, "commands"))){
		cJSON_AddItemToArray(responses, error_response("Unknown", "'commands' must be an array"));
	}else{
		cJSON_ArrayForEach(cmd, commands){
			r = run_one(st, who, cmd);
			if(r == NULL){
				r = error_response("Unknown", "out of memory");
			}
			cJSON_AddItemToArray(responses, r);
		}
	}
	cJSON_Delete(root);
	text = cJSON_PrintUnformatted(out);
	cJSON_Delete(out);
	return text;
}

static bool is_loopback(const char *addr)
{
	return addr && (!strncmp(addr, "127.", 4) || !strcmp(addr, "::1") || !strncmp(addr, "::ffff:127.", 11));
}

int cm_control_cb(int event, void *event_data, void *userdata)
{
	struct mosquitto_evt_control *ed = event_data;
	struct cm_state *st = userdata;
	struct cm_caller who;
	char *text, *payload;
	size_t len;
	int rc;

	(void)event;
	who.name = mosquitto_client_id(ed->client);
	who.via = cm_auth_admin(st, ed->client);
	who.loopback = is_loopback(mosquitto_client_address(ed->client));
	if(who.via == CM_ADMIN_NONE){
		/* The ACL check already denies this; the handler checks again. */
		cm_log(CM_LOG_NOTICE, "denied a control request from '%s': not an administrator", who.name);
		return MOSQ_ERR_ACL_DENIED;
	}
	text = cm_control_handle(st, &who, ed->payload, ed->payloadlen);
	if(text == NULL){
		return MOSQ_ERR_NOMEM;
	}
	/* The broker takes the payload and frees it with its own allocator. */
	len = strlen(text);
	payload = mosquitto_malloc(len);
	if(payload == NULL){
		free(text);
		return MOSQ_ERR_NOMEM;
	}
	memcpy(payload, text, len);
	free(text);
	rc = mosquitto_broker_publish(who.name, CM_CONTROL_RESPONSE_TOPIC, (int)len, payload, 0, false, NULL);
	if(rc != MOSQ_ERR_SUCCESS){
		mosquitto_free(payload);
		cm_log(CM_LOG_WARNING, "cannot publish the control response to '%s' (error %d)", who.name, rc);
	}
	return rc;
}
