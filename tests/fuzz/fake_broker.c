/* The few mosquitto_* functions certmgr calls, for the control-payload
 * fuzzer: a broker of one administrator client, whose published answers
 * are counted and dropped. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <mosquitto.h>
#include <mosquitto_broker.h>
#include <mosquitto_plugin.h>

struct mosquitto {
	const char *id, *username, *address;
};

struct mosquitto fake_admin = {"fuzz-admin", "fuzzadmin", "127.0.0.1"};
MOSQ_FUNC_generic_callback fake_control_cb, fake_tick_cb;
void *fake_userdata;
unsigned long fake_published;
/* The last control response, kept for the harness's own requests. */
char *fake_response;
int fake_response_len;

void mosquitto_log_printf(int level, const char *fmt, ...)
{
	(void)level;
	(void)fmt;
}

const char *mosquitto_client_id(const struct mosquitto *c)
{
	return c->id;
}

const char *mosquitto_client_address(const struct mosquitto *c)
{
	return c->address;
}

const char *mosquitto_client_username(const struct mosquitto *c)
{
	return c->username;
}

/* Plain MQTT: a user name's private keys are refused, as on a broker. */
int mosquitto_client_protocol(const struct mosquitto *c)
{
	(void)c;
	return mp_mqtt;
}

void *mosquitto_client_certificate(const struct mosquitto *c)
{
	(void)c;
	return NULL;
}

int mosquitto_set_username(struct mosquitto *c, const char *u)
{
	(void)c;
	(void)u;
	return MOSQ_ERR_SUCCESS;
}

void *mosquitto_malloc(size_t n)
{
	return malloc(n);
}

void mosquitto_free(void *p)
{
	free(p);
}

int mosquitto_broker_publish(const char *clientid, const char *topic, int len, void *payload, int qos, bool retain, mosquitto_property *props)
{
	(void)clientid;
	(void)qos;
	(void)retain;
	(void)props;
	fake_published++;
	if(strcmp(topic, "$CONTROL/certmgr/v1/response") == 0){
		free(fake_response);
		fake_response = payload;
		fake_response_len = len;
	}else{
		free(payload);
	}
	return MOSQ_ERR_SUCCESS;
}

int mosquitto_broker_publish_copy(const char *clientid, const char *topic, int len, const void *payload, int qos, bool retain, mosquitto_property *props)
{
	(void)clientid;
	(void)topic;
	(void)len;
	(void)payload;
	(void)qos;
	(void)retain;
	(void)props;
	fake_published++;
	return MOSQ_ERR_SUCCESS;
}

int mosquitto_kick_client_by_clientid(const char *clientid, bool with_will)
{
	(void)clientid;
	(void)with_will;
	return MOSQ_ERR_SUCCESS;
}

int mosquitto_callback_register(mosquitto_plugin_id_t *id, int event, MOSQ_FUNC_generic_callback cb, const void *data, void *userdata)
{
	(void)id;
	if(event == MOSQ_EVT_CONTROL && data && !strcmp(data, "$CONTROL/certmgr/v1")){
		fake_control_cb = cb; /* the JSON commands' topic: what the harness sends */
	}else if(event == MOSQ_EVT_TICK){
		fake_tick_cb = cb;
	}
	fake_userdata = userdata;
	return MOSQ_ERR_SUCCESS;
}

/* The harness sends no MQTT v5 properties. */
const mosquitto_property *mosquitto_property_read_string_pair(const mosquitto_property *proplist, int identifier, char **name,
		char **value, bool skip_first)
{
	(void)proplist;
	(void)identifier;
	(void)skip_first;
	*name = NULL;
	*value = NULL;
	return NULL;
}

int mosquitto_callback_unregister(mosquitto_plugin_id_t *id, int event, MOSQ_FUNC_generic_callback cb, const void *data)
{
	(void)id;
	(void)event;
	(void)cb;
	(void)data;
	return MOSQ_ERR_SUCCESS;
}

/* MQTT v5 properties: the enrollment answers' correlation data. No
 * request of the fake broker carries any. */
int mosquitto_property_add_binary(mosquitto_property **proplist, int identifier, const void *value, uint16_t len)
{
	(void)proplist;
	(void)identifier;
	(void)value;
	(void)len;
	return MOSQ_ERR_SUCCESS;
}

const mosquitto_property *mosquitto_property_read_binary(const mosquitto_property *proplist, int identifier, void **value, uint16_t *len,
		bool skip_first)
{
	(void)proplist;
	(void)identifier;
	(void)skip_first;
	if(value){
		*value = NULL;
	}
	if(len){
		*len = 0;
	}
	return NULL;
}

void mosquitto_property_free_all(mosquitto_property **proplist)
{
	if(proplist){
		*proplist = NULL;
	}
}
