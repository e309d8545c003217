/* certmgr: the broker-facing glue. Reads the plugin options, refuses to
 * start on a configuration it cannot serve, opens the store and installs
 * the TLS hook. */
#define _GNU_SOURCE
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cjson/cJSON.h>

#include <mosquitto.h>
#include <mosquitto_broker.h>
#include <mosquitto_plugin.h>

#include "audit.h"
#include "auth.h"
#include "devices.h"
#include "brokerconf.h"
#include "metrics.h"
#include "control.h"
#include "enrolling.h"
#include "fetch.h"
#include "fleet.h"
#include "secret.h"
#include "options.h"
#include "refresh.h"
#include "revocation.h"
#include "worker.h"
#include "fsutil.h"
#include "log.h"
#include "state.h"
#include "store.h"
#include "tls_hook.h"
#include "rejected.h"

#define CM_EXPORT __attribute__((visibility("default")))
#define CM_DEFAULT_STORE "/var/lib/mosquitto/certmgr"

static void broker_log_sink(enum cm_log_level level, const char *line)
{
	static const int levels[] = {
		[CM_LOG_ERR] = MOSQ_LOG_ERR,
		[CM_LOG_WARNING] = MOSQ_LOG_WARNING,
		[CM_LOG_NOTICE] = MOSQ_LOG_NOTICE,
		[CM_LOG_INFO] = MOSQ_LOG_INFO,
		[CM_LOG_DEBUG] = MOSQ_LOG_DEBUG,
	};
	mosquitto_log_printf(levels[level], "%s", line);
}

static void flush_rejected(struct cm_state *st);

static void state_free(struct cm_state **pst)
{
	struct cm_state *st;

	if(pst == NULL || *pst == NULL){
		return;
	}
	st = *pst;
	cm_fleet_stop(st);
	cm_worker_stop(st);
	cm_audit_cleanup(st);
	cm_fetch_cleanup(st);
	cm_fetch_options_clear(&st->fetch_opts);
	cm_control_cleanup(st);
	cm_enroll_cleanup(st);
	cm_revocation_cleanup(st);
	cm_metrics_cleanup(st);
	cm_tls_hook_remove(st);
	cm_auth_clear(st);
	if(st->store){
		flush_rejected(st);
		cm_devices_flush(st);
	}
	cm_rejected_free(&st->rejected);
	cm_inventory_free(&st->inventory);
	for(int i = 0; i < st->admin_user_count; i++){
		free(st->admin_users[i]);
	}
	free(st->admin_users);
	cm_registry_tick(st);
	free(st->handed);
	cm_store_free(&st->store);
	cm_options_clear(st);
	cm_crl_cleanup();
	free(st->store_dir);
	free(st->hostname);
	free(st->enroll_crl_dir);
	if(st->key_passphrase){
		cm_pki_free_secret(st->key_passphrase, strlen(st->key_passphrase));
	}
	free(st);
	*pst = NULL;
}

/* "8883,9883", the value of plugin_opt_<option>, into the port table for
 * slot. */
static enum cm_rc parse_ports(struct cm_state *st, const char *option, const char *list, enum cm_slot_id slot,
		bool cert_optional, struct cm_err *err)
{
	const char *p = list;

	while(*p){
		char *end;
		long port;
		int i;

		while(*p == ' ' || *p == ','){
			p++;
		}
		if(*p == '\0'){
			break;
		}
		errno = 0;
		port = strtol(p, &end, 10);
		if(end == p || errno || port < 1 || port > 65535 || (*end != '\0' && *end != ',' && *end != ' ')){
			return cm_err_set(err, CM_ERR_INVAL, "plugin_opt_%s: '%s' is not a list of ports", option, list);
		}
		for(i = 0; i < st->port_count; i++){
			if(st->ports[i].port == (uint16_t)port){
				return cm_err_set(err, CM_ERR_INVAL, "port %ld is listed twice (plugin_opt_%s)", port, option);
			}
		}
		if(st->port_count == CM_MAX_PORTS){
			return cm_err_set(err, CM_ERR_INVAL, "more than %d listener ports", CM_MAX_PORTS);
		}
		st->ports[st->port_count].port = (uint16_t)port;
		st->ports[st->port_count].slot = slot;
		st->ports[st->port_count].cert_optional = cert_optional;
		st->port_count++;
		p = end;
	}
	return CM_OK;
}

/* "alice,bob" into st->admin_users. A name that could be a device's
 * client id is refused: under the certificate policy a device's username
 * becomes its client id, which must never make it an administrator. */
static enum cm_rc parse_admin_users(struct cm_state *st, const char *list, struct cm_err *err)
{
	const char *p = list;

	while(*p){
		const char *end;
		char **grown;
		size_t n;

		while(*p == ' ' || *p == ','){
			p++;
		}
		if(*p == '\0'){
			break;
		}
		for(end = p; *end && *end != ',' && *end != ' '; end++){
		}
		n = (size_t)(end - p);
		if((p[0] == 'd' || p[0] == 'g') && n > 1 && p[1] == ':'){
			return cm_err_set(err, CM_ERR_INVAL, "plugin_opt_admin_users: '%.*s' looks like a device client id (d:/g:), which a device could hold as its username", (int)n, p);
		}
		grown = realloc(st->admin_users, (size_t)(st->admin_user_count + 1) * sizeof(char *));
		if(grown == NULL){
			return cm_err_set(err, CM_ERR_NOMEM, "out of memory");
		}
		st->admin_users = grown;
		st->admin_users[st->admin_user_count] = strndup(p, n);
		if(st->admin_users[st->admin_user_count] == NULL){
			return cm_err_set(err, CM_ERR_NOMEM, "out of memory");
		}
		st->admin_user_count++;
		p = end;
	}
	return CM_OK;
}

/* plugin_opt_key_passphrase_file: the passphrase is the file's first
 * line, of at least 8 characters. */
static enum cm_rc read_passphrase(struct cm_state *st, const char *path, struct cm_err *err)
{
	char *text = NULL;
	size_t len = 0;

	if(cm_fs_read_file(path, 4096, &text, &len, err) != CM_OK){
		return CM_ERR_INVAL;
	}
	while(len > 0 && (text[len - 1] == '\n' || text[len - 1] == '\r')){
		text[--len] = '\0';
	}
	if(len < 8){
		cm_pki_free_secret(text, len);
		return cm_err_set(err, CM_ERR_INVAL, "plugin_opt_key_passphrase_file: the passphrase must hold at least 8 characters");
	}
	cm_pki_free_secret(st->key_passphrase, st->key_passphrase ? strlen(st->key_passphrase) : 0);
	st->key_passphrase = text;
	return CM_OK;
}

/* plugin_opt_<slot>_ports. */
static enum cm_rc parse_slot_ports(struct cm_state *st, const char *key, size_t klen, const char *value, struct cm_err *err)
{
	char name[32];
	int slot;

	if(klen - 6 >= sizeof(name)){
		return cm_err_set(err, CM_ERR_INVAL, "unknown option plugin_opt_%s", key);
	}
	memcpy(name, key, klen - 6);
	name[klen - 6] = '\0';
	slot = cm_slot_parse(name);
	if(slot < 0){
		return cm_err_set(err, CM_ERR_INVAL, "unknown option plugin_opt_%s (slots: mqtt, websockets, bridge)", key);
	}
	return parse_ports(st, key, value, (enum cm_slot_id)slot, false, err) != CM_OK ? CM_ERR_INVAL : CM_OK;
}

/* A path option's value into *field. */
static enum cm_rc set_path(char **field, const char *value, struct cm_err *err)
{
	free(*field);
	*field = strdup(value);
	return *field ? CM_OK : cm_err_set(err, CM_ERR_NOMEM, "out of memory");
}

/* The store directory, and the host name (the machine's when none). */
static enum cm_rc set_names(struct cm_state *st, const char *store_dir, const char *hostname, struct cm_err *err)
{
	char host[256];

	if(hostname == NULL){
		if(gethostname(host, sizeof(host)) != 0 || host[0] == '\0'){
			snprintf(host, sizeof(host), "localhost");
		}
		host[sizeof(host) - 1] = '\0';
		hostname = host;
	}
	st->store_dir = strdup(store_dir);
	st->hostname = strdup(hostname);
	if(st->store_dir == NULL || st->hostname == NULL){
		return cm_err_set(err, CM_ERR_NOMEM, "out of memory");
	}
	return CM_OK;
}

/* An option of the tables of options.c: numbers, the back end's. */
static enum cm_rc table_option(struct cm_state *st, const char *key, const char *value, bool *known, struct cm_err *err)
{
	if(cm_options_set_number(st, key, value, known, err) != CM_OK){
		return CM_ERR_INVAL;
	}
	if(*known){
		return CM_OK;
	}
	return cm_options_set_text(st, key, value, known, err);
}

static enum cm_rc parse_options(struct cm_state *st, struct mosquitto_opt *options, int option_count, const char **broker_conf, struct cm_err *err)
{
	const char *store_dir = CM_DEFAULT_STORE;
	const char *hostname = NULL;
	bool number;
	int i;

	*broker_conf = NULL;
	for(i = 0; i < option_count; i++){
		const char *key = options[i].key;
		const char *value = options[i].value ? options[i].value : "";
		size_t klen = strlen(key);

		if(table_option(st, key, value, &number, err) != CM_OK){
			return CM_ERR_INVAL;
		}
		if(number){
			continue;
		}
		if(!strcmp(key, "store_dir")){
			store_dir = value;
		}else if(!strcmp(key, "hostname")){
			hostname = value;
		}else if(!strcmp(key, "broker_config")){
			*broker_conf = value;
		}else if(!strcmp(key, "enroll_crl_dir")){
			if(set_path(&st->enroll_crl_dir, value, err) != CM_OK){
				return CM_ERR_NOMEM;
			}
		}else if(!strcmp(key, "key_passphrase_file")){
			if(read_passphrase(st, value, err) != CM_OK){
				return CM_ERR_INVAL;
			}
		}else if(!strcmp(key, "admin_users")){
			if(parse_admin_users(st, value, err) != CM_OK){
				return CM_ERR_INVAL;
			}
		}else if(!strcmp(key, "crl_allowed_hosts")){
			if(cm_fetch_parse_allowed_hosts(&st->fetch_opts, value, err) != CM_OK){
				return CM_ERR_INVAL;
			}
		}else if(!strcmp(key, "console_ports")){
			/* websockets listeners that also serve the console */
			if(parse_ports(st, key, value, CM_SLOT_WEBSOCKETS, true, err) != CM_OK){
				return CM_ERR_INVAL;
			}
		}else if(klen > 6 && !strcmp(key + klen - 6, "_ports")){
			if(parse_slot_ports(st, key, klen, value, err) != CM_OK){
				return CM_ERR_INVAL;
			}
		}else{
			return cm_err_set(err, CM_ERR_INVAL, "unknown option plugin_opt_%s", key);
		}
	}
	if(set_names(st, store_dir, hostname, err) != CM_OK){
		return CM_ERR_NOMEM;
	}
	return cm_options_check_fleet(st, st->hostname, err);
}

/* Whether every websockets listener is TLS (a user-name administrator
 * connected over websockets then is over TLS, see cm_auth_admin), and
 * that each console port is such a listener: a client certificate is
 * optional there, which only a listener of the console should be. */
static enum cm_rc check_websockets(struct cm_state *st, const struct cm_brokerconf *conf, const char *path, struct cm_err *err)
{
	int i, websockets = 0;
	bool plain = false;

	for(i = 0; i < conf->listener_count; i++){
		if(conf->listeners[i].websockets){
			websockets++;
			plain |= !conf->listeners[i].tls;
		}
	}
	st->websockets_tls = websockets > 0 && !plain;
	for(i = 0; i < st->port_count; i++){
		const struct cm_brokerconf_listener *l = cm_brokerconf_listener(conf, st->ports[i].port);

		if(st->ports[i].cert_optional && (l == NULL || !l->websockets || !l->tls)){
			return cm_err_set(err, CM_ERR_INVAL, "plugin_opt_console_ports: port %d is not a websockets listener with a certfile in %s"
					" (the console is served over TLS by a websockets listener)", st->ports[i].port, path);
		}
	}
	return CM_OK;
}

/* With use_identity_as_username or use_subject_as_username, Mosquitto
 * takes the user name from the certificate and skips MOSQ_EVT_BASIC_AUTH:
 * no identity check, a CN that is an administrator's or a backend's name.
 * Refused on every listener certmgr serves. */
static enum cm_rc check_listeners(const struct cm_state *st, const struct cm_brokerconf *conf, const char *path, struct cm_err *err)
{
	for(int i = 0; i < conf->listener_count; i++){
		const struct cm_brokerconf_listener *l = &conf->listeners[i];
		const char *option = l->use_identity_as_username ? "use_identity_as_username"
			: l->use_subject_as_username ? "use_subject_as_username" : NULL;

		/* A port not read (-1) is judged as served. */
		if(option && (l->port < 0 || l->port > 65535 || cm_state_slot_for_port(st, (uint16_t)l->port) >= 0)){
			return cm_err_set(err, CM_ERR_INVAL, "%s is true on listener %d in %s, which certmgr serves: certmgr needs it false"
					" (with it, Mosquitto takes the user name from the certificate and skips the authentication event,"
					" and with it certmgr's device identity checks)", option, l->port, path);
		}
	}
	return CM_OK;
}

/* per_listener_settings true loads a plugin once per listener and never
 * sends MOSQ_EVT_TICK: certmgr cannot work that way. Also reads
 * sys_interval, the period of certmgr's $SYS metrics, and checks the
 * listeners' options (check_listeners). */
static enum cm_rc check_broker_config(struct cm_state *st, const char *given, struct cm_err *err)
{
	char path[PATH_MAX];
	struct cm_brokerconf conf;
	bool per_listener = false;
	enum cm_rc rc;

	if(given){
		if(cm_fs_path(path, sizeof(path), err, "%s", given) != CM_OK){
			return CM_ERR_INVAL;
		}
	}else{
		rc = cm_brokerconf_own_path(path, sizeof(path), err);
		if(rc != CM_OK){
			return rc;
		}
	}
	rc = cm_brokerconf_read(path, &conf, err);
	per_listener = conf.per_listener_settings;
	st->sys_interval = conf.sys_interval;
	if(rc != CM_OK){
		char reason[sizeof(err->msg)];
		memcpy(reason, err->msg, sizeof(reason));
		return cm_err_set(err, rc, "cannot check per_listener_settings in the broker's configuration: %s"
				" (make it readable by the broker's user, or name a readable copy with plugin_opt_broker_config)", reason);
	}
	if(per_listener){
		return cm_err_set(err, CM_ERR_INVAL, "per_listener_settings is true in %s: certmgr needs it false"
				" (with it, Mosquitto 2.0 loads the plugin once per listener and never sends it timer events)", path);
	}
	if(check_listeners(st, &conf, path, err) != CM_OK){
		return CM_ERR_INVAL;
	}
	return check_websockets(st, &conf, path, err);
}

static enum cm_rc open_rejected(struct cm_state *st, struct cm_err *err)
{
	struct cm_err lerr;

	st->rejected = cm_rejected_new(st->rejected_max);
	if(st->rejected == NULL){
		return cm_err_set(err, CM_ERR_NOMEM, "out of memory");
	}
	/* An observation log, not configuration: a damaged one is reported
	 * and replaced at the next save, and the broker starts. */
	if(cm_rejected_load(st->rejected, st->store_dir, &lerr) != CM_OK){
		cm_log(CM_LOG_WARNING, "ignoring the rejected list: %s", lerr.msg);
	}
	return CM_OK;
}

/* How often, at most, the rejected list is written. */
#define REJECTED_SAVE_INTERVAL 5

static void flush_rejected(struct cm_state *st)
{
	struct cm_err err;

	if(st->rejected && st->rejected->dirty){
		if(cm_rejected_save(st->rejected, st->store_dir, &err) != CM_OK){
			cm_log(CM_LOG_WARNING, "cannot save the rejected list: %s", err.msg);
		}
		st->rejected_saved = time(NULL);
	}
}

/* Once a day, one warning per certificate in the expiry window, and per
 * host name its served certificate does not cover. */
static void log_expiry_daily(struct cm_state *st, time_t now)
{
	cJSON *list, *e;

	if(now - st->expiry_logged < 86400){
		return;
	}
	st->expiry_logged = now;
	list = cm_status_expiring(st, now);
	cJSON_ArrayForEach(e, list){
		const cJSON *slot = cJSON_GetObjectItemCaseSensitive(e, "slot"), *tenant = cJSON_GetObjectItemCaseSensitive(e, "tenant");
		cm_log(CM_LOG_WARNING, "%s certificate %s (%s %s) expires at %s",
				cJSON_GetObjectItemCaseSensitive(e, "kind")->valuestring, cJSON_GetObjectItemCaseSensitive(e, "id")->valuestring,
				slot ? "slot" : "tenant", slot ? slot->valuestring : tenant->valuestring,
				cJSON_GetObjectItemCaseSensitive(e, "notAfter")->valuestring);
	}
	cJSON_Delete(list);
	list = cm_status_hostname_warnings(st);
	cJSON_ArrayForEach(e, list){
		cm_log(CM_LOG_WARNING, "tenant %s: host name %s is not covered by the %s certificate it is served with",
				cJSON_GetObjectItemCaseSensitive(e, "tenant")->valuestring, cJSON_GetObjectItemCaseSensitive(e, "hostname")->valuestring,
				cJSON_GetObjectItemCaseSensitive(e, "slot")->valuestring);
	}
	cJSON_Delete(list);
}

/* The periodic audit's end: its counts for the metrics, an event with
 * them, a log line. */
static void audit_daily_done(struct cm_state *st, void *ctx, cJSON *findings, const uint64_t counts[CM_FINDING_COUNT], bool truncated,
		const struct cm_err *err)
{
	uint64_t total = 0;
	cJSON *e, *c;

	(void)ctx;
	(void)truncated;
	st->audit_running = false;
	if(findings == NULL){
		cm_log(CM_LOG_WARNING, "fleet audit: %s", err->msg);
		return;
	}
	cJSON_Delete(findings);
	memcpy(st->audit_counts, counts, sizeof(st->audit_counts));
	st->audit_done = true;
	e = cJSON_CreateObject();
	c = e ? cJSON_AddObjectToObject(e, "counts") : NULL;
	for(int i = 0; i < CM_FINDING_COUNT; i++){
		if(c && !cJSON_AddNumberToObject(c, cm_finding_name((enum cm_finding)i), (double)counts[i])){
			c = NULL;
		}
		total += counts[i];
		if(counts[i]){
			cm_log(CM_LOG_WARNING, "fleet audit: %llu %s finding(s) (auditFleet lists them)", (unsigned long long)counts[i],
					cm_finding_name((enum cm_finding)i));
		}
	}
	cm_log(CM_LOG_NOTICE, "fleet audit: %llu finding(s) over %zu device(s) of the inventory", (unsigned long long)total,
			st->inventory ? st->inventory->count : 0);
	if(c){
		cm_event(st, "audit", e);
	}else{
		cJSON_Delete(e);
	}
}

/* Every plugin_opt_audit_interval (a day; the first at the first tick),
 * the fleet audit, run as auditFleet runs it. */
static void audit_daily(struct cm_state *st, time_t now)
{
	struct cm_audit_options o = {NULL, (int)st->expiry_warning_days, 30, 0};
	struct cm_err err;

	if(st->audit_running || (st->audit_at && now - st->audit_at < st->audit_interval)){
		return;
	}
	st->audit_at = now;
	if(cm_audit_start(st, &o, audit_daily_done, NULL, &err) != CM_OK){
		cm_log(CM_LOG_WARNING, "fleet audit: %s", err.msg);
		return;
	}
	st->audit_running = true;
}

static int tick_cb(int event, void *event_data, void *userdata)
{
	struct cm_state *st = userdata;

	cm_fetch_step(st);
	cm_worker_drain(st);
	cm_fleet_tick(st);
	cm_secret_tick(st, time(NULL));
	cm_refresh_tick(st, time(NULL));
	cm_revocation_tick(st);
	cm_enroll_tick(st, time(NULL));
	log_expiry_daily(st, time(NULL));
	cm_metrics_tick(st, time(NULL));
	cm_auth_tick_cb(event, event_data, userdata);
	cm_registry_tick(st);
	if(st->rejected && st->rejected->dirty && time(NULL) - st->rejected_saved >= REJECTED_SAVE_INTERVAL){
		flush_rejected(st);
	}
	cm_devices_tick(st, time(NULL));
	cm_audit_tick(st);
	audit_daily(st, time(NULL));
	cm_control_tick(st, time(NULL));
	cm_store_sync(st->store);
	return MOSQ_ERR_SUCCESS;
}

/* The layers below never call each other sideways: a disconnect is the
 * client table's (auth) and the waiting requests' (control), and only
 * this top layer knows both. */
static int disconnect_cb(int event, void *event_data, void *userdata)
{
	struct mosquitto_evt_disconnect *ed = event_data;

	(void)cm_auth_disconnect_cb(event, event_data, userdata);
	cm_control_forget_client(userdata, ed->client);
	cm_enroll_forget_client(userdata, ed->client);
	return MOSQ_ERR_SUCCESS;
}

static const struct {
	int event;
	MOSQ_FUNC_generic_callback cb;
	const char *data;
} callbacks[] = {
	{MOSQ_EVT_BASIC_AUTH, cm_auth_basic_cb, NULL},
	{MOSQ_EVT_ACL_CHECK, cm_auth_acl_cb, NULL},
	{MOSQ_EVT_DISCONNECT, disconnect_cb, NULL},
	{MOSQ_EVT_CONTROL, cm_control_cb, CM_CONTROL_TOPIC},
	{MOSQ_EVT_CONTROL, cm_control_crl_cb, CM_CONTROL_CRL_TOPIC},
	{MOSQ_EVT_CONTROL, cm_enroll_cb, CM_ENROLL_TOPIC},
	{MOSQ_EVT_TICK, tick_cb, NULL},
};

static enum cm_rc register_callbacks(struct cm_state *st, struct cm_err *err)
{
	size_t i;
	int rc;

	for(i = 0; i < sizeof(callbacks) / sizeof(callbacks[0]); i++){
		rc = mosquitto_callback_register(st->plugin_id, callbacks[i].event, callbacks[i].cb, callbacks[i].data, st);
		if(rc != MOSQ_ERR_SUCCESS){
			return cm_err_set(err, CM_ERR_INVAL, "cannot register callback for event %d (error %d)", callbacks[i].event, rc);
		}
	}
	return CM_OK;
}

static void unregister_callbacks(struct cm_state *st)
{
	size_t i;

	for(i = 0; i < sizeof(callbacks) / sizeof(callbacks[0]); i++){
		(void)mosquitto_callback_unregister(st->plugin_id, callbacks[i].event, callbacks[i].cb, callbacks[i].data);
	}
}

CM_EXPORT int mosquitto_plugin_version(int supported_version_count, const int *supported_versions)
{
	int i;

	for(i = 0; i < supported_version_count; i++){
		if(supported_versions[i] == 5){
			return 5;
		}
	}
	return -1;
}

CM_EXPORT int mosquitto_plugin_init(mosquitto_plugin_id_t *identifier, void **userdata, struct mosquitto_opt *options, int option_count)
{
	struct cm_state *st;
	struct cm_err err = {{0}};
	const char *broker_conf;
	bool created = false;
	const struct cm_server_cert *def;
	char cn[128];

	cm_log_set_sink(broker_log_sink);
	st = calloc(1, sizeof(*st));
	if(st == NULL){
		cm_log(CM_LOG_ERR, "refusing to start: out of memory");
		return MOSQ_ERR_NOMEM;
	}
	st->plugin_id = identifier;
	st->ctx_ex_index = st->ssl_ex_index = st->x509_ex_index = -1;
	cm_options_set_defaults(st);

	if(parse_options(st, options, option_count, &broker_conf, &err) != CM_OK
			|| check_broker_config(st, broker_conf, &err) != CM_OK
			|| cm_store_open_ex(st->store_dir, st->hostname, st->key_passphrase, &st->store, &created, &err) != CM_OK
			|| cm_fleet_start(st, cm_control_commit_done, &err) != CM_OK
			|| cm_secret_start(st, &err) != CM_OK
			|| open_rejected(st, &err) != CM_OK
			|| cm_devices_open(st, &err) != CM_OK
			|| cm_fetch_init(st, &st->fetch_opts, &err) != CM_OK
			|| cm_worker_start(st, &err) != CM_OK
			|| cm_tls_hook_install(st, &err) != CM_OK
			|| register_callbacks(st, &err) != CM_OK){
		cm_log(CM_LOG_ERR, "refusing to start: %s", err.msg);
		unregister_callbacks(st);
		state_free(&st);
		return MOSQ_ERR_UNKNOWN;
	}

	def = cm_store_slot_default(st->store, CM_SLOT_MQTT);
	cm_pki_subject_cn(def->leaf, cn, sizeof(cn));
	cm_log(CM_LOG_NOTICE, "%s store %s (generation %llu); mqtt slot serves %s (CN=%s)",
			created ? "created" : "loaded", st->store_dir, (unsigned long long)cm_store_generation(st->store), def->id, cn);
	*userdata = st;
	return MOSQ_ERR_SUCCESS;
}

CM_EXPORT int mosquitto_plugin_cleanup(void *userdata, struct mosquitto_opt *options, int option_count)
{
	struct cm_state *st = userdata;

	(void)options;
	(void)option_count;
	unregister_callbacks(st);
	state_free(&st);
	cm_log_set_sink(NULL);
	return MOSQ_ERR_SUCCESS;
}
