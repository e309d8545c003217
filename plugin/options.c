/* The plugin's numeric options: a table, one parser. */
#include <errno.h>
#include <limits.h>
#include <stddef.h>
#include <stdlib.h>
#include <stdio.h>
#include <string.h>

#include "options.h"
#include "store.h"

/* Where an option's value goes in struct cm_state, and as what. */
enum field_type {
	FIELD_LONG,
	FIELD_SIZE,
	FIELD_TIME,
};

struct number_option {
	const char *key;
	unsigned long long def, min, max;
	enum field_type type;
	size_t offset;
	/* The refusal of a value that is not a number in range; NULL: the
	 * crl_ options' two messages. */
	const char *error;
};

static const struct number_option number_options[] = {
	{"crl_connect_timeout", 5, 1, 300, FIELD_LONG, offsetof(struct cm_state, fetch_opts.connect_timeout), NULL},
	{"crl_timeout", 15, 1, 3600, FIELD_LONG, offsetof(struct cm_state, fetch_opts.timeout), NULL},
	{"crl_max_redirects", 3, 0, 20, FIELD_LONG, offsetof(struct cm_state, fetch_opts.max_redirects), NULL},
	{"crl_max_size", 64 * 1024 * 1024, 1024, CM_STORE_MAX_CRL, FIELD_SIZE, offsetof(struct cm_state, fetch_opts.max_size), NULL},
	{"crl_refresh_interval", 3600, 1, 31 * 86400, FIELD_TIME, offsetof(struct cm_state, refresh_interval), NULL},
	{"crl_retry_min", 30, 1, 86400, FIELD_TIME, offsetof(struct cm_state, retry_min), NULL},
	{"crl_retry_max", 3600, 1, 7 * 86400, FIELD_TIME, offsetof(struct cm_state, retry_max), NULL},
	{"expiry_warning_days", 30, 0, 3650, FIELD_TIME, offsetof(struct cm_state, expiry_warning_days),
		"plugin_opt_expiry_warning_days must be 0 to 3650"},
	{"rejected_max", 1000, 0, 1000000, FIELD_SIZE, offsetof(struct cm_state, rejected_max),
		"plugin_opt_rejected_max must be a count from 0 to 1000000"},
	{"session_cache_size", 20000, 0, 10000000, FIELD_SIZE, offsetof(struct cm_state, session_max),
		"plugin_opt_session_cache_size must be a count from 0 to 10000000"},
	{"audit_interval", 86400, 1, 31 * 86400, FIELD_TIME, offsetof(struct cm_state, audit_interval),
		"plugin_opt_audit_interval must be 1 to 2678400 seconds"},
	{"devices_max", 1000000, 0, 10000000, FIELD_SIZE, offsetof(struct cm_state, devices_max),
		"plugin_opt_devices_max must be a count from 0 to 10000000"},
	{"enroll_crl_days", 7, 1, 365, FIELD_TIME, offsetof(struct cm_state, enroll_crl_days),
		"plugin_opt_enroll_crl_days must be 1 to 365"},
	{"etcd_gc_interval", 300, 1, 86400, FIELD_TIME, offsetof(struct cm_state, fleet_opts.gc_interval),
		"plugin_opt_etcd_gc_interval must be 1 to 86400 seconds"},
	{"max_payload", 1024 * 1024, 1024, 64ULL * 1024 * 1024, FIELD_SIZE, offsetof(struct cm_state, max_payload),
		"plugin_opt_max_payload must be a byte count from 1024 to 67108864"},
};

#define NUMBER_OPTIONS (sizeof(number_options) / sizeof(number_options[0]))

bool cm_options_parse_count(const char *text, unsigned long long min, unsigned long long max, unsigned long long *out)
{
	char *end;
	unsigned long long v;

	/* strtoull takes "-1" for its largest value: out of every range. */
	errno = 0;
	v = strtoull(text, &end, 10);
	if(errno || end == text || *end || v < min || v > max){
		return false;
	}
	*out = v;
	return true;
}

static void set_field(struct cm_state *st, const struct number_option *o, unsigned long long v)
{
	char *field = (char *)st + o->offset;

	switch(o->type){
		case FIELD_LONG:
			*(long *)(void *)field = (long)v;
			break;
		case FIELD_SIZE:
			*(size_t *)(void *)field = (size_t)v;
			break;
		case FIELD_TIME:
			*(time_t *)(void *)field = (time_t)v;
			break;
	}
}

void cm_options_set_defaults(struct cm_state *st)
{
	size_t i;

	for(i = 0; i < NUMBER_OPTIONS; i++){
		set_field(st, &number_options[i], number_options[i].def);
	}
}

enum cm_rc cm_options_set_number(struct cm_state *st, const char *key, const char *value, bool *known, struct cm_err *err)
{
	const struct number_option *o = NULL;
	unsigned long long v;
	size_t i;

	for(i = 0; i < NUMBER_OPTIONS && o == NULL; i++){
		if(!strcmp(key, number_options[i].key)){
			o = &number_options[i];
		}
	}
	*known = o != NULL || (!strncmp(key, "crl_", 4) && strcmp(key, "crl_allowed_hosts"));
	if(!*known){
		return CM_OK;
	}
	if(o && o->error){
		if(!cm_options_parse_count(value, o->min, o->max, &v)){
			return cm_err_set(err, CM_ERR_INVAL, "%s", o->error);
		}
	}else{
		if(!cm_options_parse_count(value, 0, ULLONG_MAX, &v)){
			return cm_err_set(err, CM_ERR_INVAL, "plugin_opt_%s must be a number", key);
		}
		if(o == NULL || v < o->min || v > o->max){
			return cm_err_set(err, CM_ERR_INVAL, "plugin_opt_%s: unknown option or value out of range", key);
		}
	}
	set_field(st, o, v);
	return CM_OK;
}

/* Where a text option goes. */
static char **text_field(struct cm_state *st, const char *key)
{
	struct cm_fleet_opts *f = &st->fleet_opts;

	if(!strcmp(key, "etcd_endpoints")){
		return &f->endpoints;
	}
	if(!strcmp(key, "etcd_prefix")){
		return &f->prefix;
	}
	if(!strcmp(key, "etcd_cafile")){
		return &f->cafile;
	}
	if(!strcmp(key, "etcd_certfile")){
		return &f->certfile;
	}
	if(!strcmp(key, "etcd_keyfile")){
		return &f->keyfile;
	}
	if(!strcmp(key, "node_name")){
		return &f->node_name;
	}
	return NULL;
}

/* "<slot>_secret_dir": the slot's field, or NULL. */
static char **secret_field(struct cm_state *st, const char *key)
{
	static const char suffix[] = "_secret_dir";
	size_t n = strlen(key), s = sizeof(suffix) - 1;
	char slot[16];
	int id;

	if(n <= s || strcmp(key + n - s, suffix) || n - s >= sizeof(slot)){
		return NULL;
	}
	memcpy(slot, key, n - s);
	slot[n - s] = '\0';
	id = cm_slot_parse(slot);
	return id < 0 ? NULL : &st->secret[id].dir;
}

enum cm_rc cm_options_set_text(struct cm_state *st, const char *key, const char *value, bool *known, struct cm_err *err)
{
	char **field;

	*known = true;
	if(!strcmp(key, "store")){
		if(strcmp(value, "files") && strcmp(value, "etcd")){
			return cm_err_set(err, CM_ERR_INVAL, "plugin_opt_store must be files or etcd, not '%.32s'", value);
		}
		st->fleet_opts.etcd = !strcmp(value, "etcd");
		return CM_OK;
	}
	field = text_field(st, key);
	if(field == NULL){
		field = secret_field(st, key);
	}
	if(field == NULL){
		*known = false;
		return CM_OK;
	}
	if(value[0] == '\0'){
		return cm_err_set(err, CM_ERR_INVAL, "plugin_opt_%s is empty", key);
	}
	free(*field);
	*field = strdup(value);
	return *field ? CM_OK : cm_err_set(err, CM_ERR_NOMEM, "out of memory");
}

static bool node_name_valid(const char *s)
{
	size_t n = strlen(s);

	return n > 0 && n <= 64 && strspn(s, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-") == n;
}

/* The options that mean nothing without plugin_opt_store etcd. */
static const char *etcd_only(const struct cm_fleet_opts *f)
{
	return f->endpoints ? "etcd_endpoints" : f->prefix ? "etcd_prefix" : f->cafile ? "etcd_cafile"
		: f->certfile ? "etcd_certfile" : f->keyfile ? "etcd_keyfile" : NULL;
}

enum cm_rc cm_options_check_fleet(struct cm_state *st, const char *hostname, struct cm_err *err)
{
	struct cm_fleet_opts *f = &st->fleet_opts;
	size_t n;

	if(!f->etcd){
		return etcd_only(f) ? cm_err_set(err, CM_ERR_INVAL, "plugin_opt_%s is given, but plugin_opt_store is not etcd", etcd_only(f)) : CM_OK;
	}
	if(f->endpoints == NULL){
		return cm_err_set(err, CM_ERR_INVAL, "plugin_opt_store etcd needs plugin_opt_etcd_endpoints");
	}
	if(st->key_passphrase == NULL){
		return cm_err_set(err, CM_ERR_INVAL, "plugin_opt_store etcd needs plugin_opt_key_passphrase_file: keys are stored in etcd encrypted only");
	}
	if(f->prefix == NULL && (f->prefix = strdup("/certmgr/")) == NULL){
		return cm_err_set(err, CM_ERR_NOMEM, "out of memory");
	}
	n = strlen(f->prefix);
	if(f->prefix[n - 1] != '/' || n > 128 || strchr(f->prefix, ' ')){
		return cm_err_set(err, CM_ERR_INVAL, "plugin_opt_etcd_prefix must end with '/', hold no space and be at most 128 bytes");
	}
	if(f->node_name == NULL){
		char name[65];
		snprintf(name, sizeof(name), "%s", hostname);
		name[strspn(name, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-")] = '\0';
		if((f->node_name = strdup(name[0] ? name : "node")) == NULL){
			return cm_err_set(err, CM_ERR_NOMEM, "out of memory");
		}
	}
	if(!node_name_valid(f->node_name)){
		return cm_err_set(err, CM_ERR_INVAL, "plugin_opt_node_name: 1 to 64 of A-Z a-z 0-9 . _ -");
	}
	return CM_OK;
}

void cm_options_clear(struct cm_state *st)
{
	struct cm_fleet_opts *f = &st->fleet_opts;
	char **all[] = {&f->endpoints, &f->prefix, &f->cafile, &f->certfile, &f->keyfile, &f->node_name};

	for(size_t i = 0; i < sizeof(all) / sizeof(all[0]); i++){
		free(*all[i]);
		*all[i] = NULL;
	}
	for(int i = 0; i < CM_SLOT_COUNT; i++){
		free(st->secret[i].dir);
		st->secret[i].dir = NULL;
	}
}
