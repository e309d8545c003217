/* The control-payload dispatcher, end to end, with a fake broker: the
 * plugin is initialised on a scratch store, and every input is one
 * request on $CONTROL/certmgr/v1 from an administrator.
 *
 * An input that changed the store is undone afterwards through the same
 * dispatcher (tenants deleted, the default tenant's trust list, CSRs,
 * added server certificates and the rejected list cleared), so that every
 * input starts from about the same store: a finding then reproduces from
 * its input alone, and the store does not grow until every request walks
 * thousands of entries (the rate had fallen from 1,200 to 130 inputs/s). */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cjson/cJSON.h>
#include <mosquitto.h>
#include <mosquitto_broker.h>
#include <mosquitto_plugin.h>

#include "state.h"
#include "store.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

extern struct mosquitto fake_admin;
extern MOSQ_FUNC_generic_callback fake_control_cb, fake_tick_cb;
extern void *fake_userdata;
extern char *fake_response;
extern int fake_response_len;

static uint64_t clean_generation;
static const char *const slots[] = {"mqtt", "websockets", "bridge"};

static void start(void)
{
	static char store[512], conf[512], confopt[600];
	const char *tmp = getenv("CERTMGR_FUZZ_TMP");
	struct mosquitto_opt opts[4];
	void *userdata = NULL;
	FILE *f;

	snprintf(store, sizeof(store), "%s/certmgr-fuzz-control-%d", tmp && tmp[0] ? tmp : "/tmp", (int)getpid());
	snprintf(conf, sizeof(conf), "%s.conf", store);
	f = fopen(conf, "w");
	if(f == NULL){
		abort();
	}
	fputs("per_listener_settings false\n", f);
	fclose(f);
	(void)confopt;
	opts[0] = (struct mosquitto_opt){"store_dir", store};
	opts[1] = (struct mosquitto_opt){"broker_config", conf};
	opts[2] = (struct mosquitto_opt){"admin_users", "fuzzadmin"};
	opts[3] = (struct mosquitto_opt){"max_payload", "65536"};
	if(mosquitto_plugin_init(NULL, &userdata, opts, 4) != MOSQ_ERR_SUCCESS || fake_control_cb == NULL){
		abort();
	}
}

static void send_request(const void *data, size_t size)
{
	struct mosquitto_evt_control ev;
	struct mosquitto_evt_tick tick;

	memset(&ev, 0, sizeof(ev));
	ev.client = &fake_admin;
	ev.topic = "$CONTROL/certmgr/v1";
	ev.payload = data;
	ev.payloadlen = (uint32_t)size;
	fake_control_cb(MOSQ_EVT_CONTROL, &ev, fake_userdata);
	/* Let what the request started (a key on the worker) finish. */
	memset(&tick, 0, sizeof(tick));
	fake_tick_cb(MOSQ_EVT_TICK, &tick, fake_userdata);
}

/* Sends the request and returns its "responses" (the caller deletes the
 * whole answer, returned in *answer). */
static const cJSON *ask(cJSON *request, cJSON **answer)
{
	char *text = cJSON_PrintUnformatted(request);

	*answer = NULL;
	if(text == NULL){
		abort();
	}
	free(fake_response);
	fake_response = NULL;
	send_request(text, strlen(text));
	free(text);
	if(fake_response){
		*answer = cJSON_ParseWithLength(fake_response, (size_t)fake_response_len);
	}
	free(fake_response);
	fake_response = NULL;
	return cJSON_GetObjectItemCaseSensitive(*answer, "responses");
}

static cJSON *add_command(cJSON *commands, const char *name)
{
	cJSON *c = cJSON_CreateObject();

	cJSON_AddStringToObject(c, "command", name);
	cJSON_AddItemToArray(commands, c);
	return c;
}

/* The strings at data.<list>[].<field> of the n-th response. */
static const cJSON *listed(const cJSON *responses, int n, const char *list)
{
	const cJSON *data = cJSON_GetObjectItemCaseSensitive(cJSON_GetArrayItem(responses, n), "data");

	return cJSON_GetObjectItemCaseSensitive(data, list);
}

static const char *field(const cJSON *entry, const char *name)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(entry, name);

	return cJSON_IsString(v) ? v->valuestring : NULL;
}

static void undo(void)
{
	cJSON *req = cJSON_CreateObject(), *cmds = cJSON_AddArrayToObject(req, "commands"), *answer, *c;
	const cJSON *responses, *e;
	size_t i;

	add_command(cmds, "listTenants");
	cJSON_AddStringToObject(add_command(cmds, "listCAs"), "tenant", "default");
	for(i = 0; i < 3; i++){
		cJSON_AddStringToObject(add_command(cmds, "listCSRs"), "slot", slots[i]);
		cJSON_AddStringToObject(add_command(cmds, "listServerCertificates"), "slot", slots[i]);
	}
	responses = ask(req, &answer);
	cJSON_Delete(req);

	req = cJSON_CreateObject();
	cmds = cJSON_AddArrayToObject(req, "commands");
	cJSON_ArrayForEach(e, listed(responses, 0, "tenants")){
		const char *name = field(e, "tenant");
		if(name && strcmp(name, "default") != 0){
			cJSON_AddStringToObject(add_command(cmds, "deleteTenant"), "tenant", name);
		}
	}
	cJSON_AddStringToObject(add_command(cmds, "clearCAs"), "tenant", "default");
	cJSON_ArrayForEach(e, listed(responses, 1, "pinned")){
		if(field(e, "id")){
			c = add_command(cmds, "untrustCertificate");
			cJSON_AddStringToObject(c, "tenant", "default");
			cJSON_AddStringToObject(c, "id", field(e, "id"));
		}
	}
	for(i = 0; i < 3; i++){
		cJSON_ArrayForEach(e, listed(responses, 2 + 2 * (int)i, "csrs")){
			if(field(e, "id")){
				c = add_command(cmds, "removeCSR");
				cJSON_AddStringToObject(c, "slot", slots[i]);
				cJSON_AddStringToObject(c, "id", field(e, "id"));
			}
		}
		/* Back to the built-in certificate, then the others go. */
		cJSON_ArrayForEach(e, listed(responses, 3 + 2 * (int)i, "certificates")){
			if(field(e, "id") && cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(e, "builtin"))){
				c = add_command(cmds, "setDefaultServerCertificate");
				cJSON_AddStringToObject(c, "slot", slots[i]);
				cJSON_AddStringToObject(c, "id", field(e, "id"));
			}
		}
		cJSON_ArrayForEach(e, listed(responses, 3 + 2 * (int)i, "certificates")){
			if(field(e, "id") && !cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(e, "builtin"))){
				c = add_command(cmds, "removeServerCertificate");
				cJSON_AddStringToObject(c, "slot", slots[i]);
				cJSON_AddStringToObject(c, "id", field(e, "id"));
			}
		}
	}
	add_command(cmds, "clearRejected");
	cJSON_Delete(answer);
	(void)ask(req, &answer);
	cJSON_Delete(answer);
	cJSON_Delete(req);
}

static uint64_t generation(void)
{
	return cm_store_generation(((struct cm_state *)fake_userdata)->store);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if(fake_control_cb == NULL){
		start();
		clean_generation = generation();
	}
	send_request(data, size);
	free(fake_response);
	fake_response = NULL;
	if(generation() != clean_generation){
		undo();
		clean_generation = generation();
	}
	return 0;
}
