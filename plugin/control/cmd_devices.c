/* The device inventory, blocks and fleet audits: listDevices, getDevice,
 * blockDevice, unblockDevice, blockCertificate, unblockCertificate,
 * listBlocked, auditFleet. */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/objects.h>

#include "audit.h"
#include "blocks.h"
#include "enroll.h"
#include "control.h"
#include "store.h"
#include "json.h"
#include "metrics.h"

#define DEFAULT_LIMIT 100
#define MAX_LIMIT 1000
#define MAX_DAYS 3650
/* Findings of each kind in an auditFleet answer. */
#define AUDIT_MAX_LISTED 1000

enum filter {
	FILTER_ALL,
	FILTER_CONNECTED,
	FILTER_EXPIRING,
	FILTER_REFUSED,
	FILTER_BLOCKED,
};

/* This node's name in answers: plugin_opt_node_name on a fleet node. */
static const char *node_name(const struct cm_state *st)
{
	return st->fleet_opts.node_name ? st->fleet_opts.node_name : st->hostname;
}

/* Whether the device's certificate came from the tenant's issuing CA,
 * that is by enrollment over MQTT (plugin/enroll/), rather than from a
 * CA of the operator's. */
static bool enrolled(const struct cm_state *st, const struct cm_tenant *t, const struct cm_device *d)
{
	const char *issuer = cm_inventory_issuer(st->inventory, d);

	return t && t->enroll && t->enroll->ca_id[0] && issuer[0] && !strcmp(issuer, t->enroll->ca_id);
}

/* "nodes": which nodes answered. One today; a fleet merges its nodes'. */
static bool add_nodes(const struct cm_state *st, cJSON *data)
{
	cJSON *arr = cJSON_AddArrayToObject(data, "nodes"), *n = cJSON_CreateObject();
	const char *name = node_name(st);

	if(arr == NULL || n == NULL || !cJSON_AddItemToArray(arr, n)){
		cJSON_Delete(n);
		return false;
	}
	return cJSON_AddStringToObject(n, "node", name) && cJSON_AddBoolToObject(n, "answered", true);
}

static bool device_blocked(const struct cm_tenant *t, const struct cm_device *d)
{
	char fp[2 * CM_FP_LEN + 1];

	if(t == NULL){
		return false;
	}
	cm_hex(d->cert.fp, CM_FP_LEN, fp);
	return cm_tenant_device_blocked(t, d->id) || cm_tenant_cert_blocked(t, fp);
}

static bool add_time(cJSON *o, const char *name, time_t t)
{
	return t ? cm_json_add_time(o, name, t) : cJSON_AddNullToObject(o, name) != NULL;
}

static cJSON *render_cert(const struct cm_inventory *inv, const struct cm_device *d)
{
	cJSON *c = cJSON_CreateObject();
	char fp[2 * CM_FP_LEN + 1], serial[2 * CM_SERIAL_MAX + 1];
	const char *issuer = cm_inventory_issuer(inv, d);
	const char *sig = d->cert.sig_nid ? OBJ_nid2sn(d->cert.sig_nid) : NULL;

	cm_hex(d->cert.fp, CM_FP_LEN, fp);
	cm_hex(d->cert.serial, d->cert.serial_len, serial);
	if(c == NULL || !cJSON_AddStringToObject(c, "fingerprint", fp) || !cJSON_AddStringToObject(c, "serial", serial)
			|| !(issuer[0] ? cJSON_AddStringToObject(c, "issuer", issuer) : cJSON_AddNullToObject(c, "issuer"))
			|| !add_time(c, "notAfter", (time_t)d->cert.not_after)
			|| !cJSON_AddStringToObject(c, "keyType", cm_key_type_name(d->cert.key_type))
			|| !cJSON_AddNumberToObject(c, "keyBits", d->cert.key_bits)
			|| !(sig ? cJSON_AddStringToObject(c, "signatureAlgorithm", sig) : cJSON_AddNullToObject(c, "signatureAlgorithm"))){
		cJSON_Delete(c);
		return NULL;
	}
	return c;
}

/* One device of the inventory, as listDevices and getDevice answer it. */
static cJSON *render_device(const struct cm_state *st, const struct cm_tenant *t, const struct cm_device *d)
{
	cJSON *o = cJSON_CreateObject(), *c = render_cert(st->inventory, d), *r;

	if(o == NULL || c == NULL || !cJSON_AddStringToObject(o, "id", d->id) || !cJSON_AddItemToObject(o, "certificate", c)){
		cJSON_Delete(o);
		cJSON_Delete(c);
		return NULL;
	}
	if(!add_time(o, "firstSeen", d->first_seen) || !add_time(o, "lastSeen", d->last_seen)
			|| !cJSON_AddBoolToObject(o, "connected", d->connected > 0)
			|| !(d->connected ? cJSON_AddStringToObject(o, "node", node_name(st)) : cJSON_AddNullToObject(o, "node"))
			|| !cJSON_AddNumberToObject(o, "connections", d->connected)
			|| !cJSON_AddNumberToObject(o, "certificates", d->certs)
			|| !cJSON_AddBoolToObject(o, "blocked", device_blocked(t, d))
			|| !cJSON_AddBoolToObject(o, "enrolled", enrolled(st, t, d))){
		cJSON_Delete(o);
		return NULL;
	}
	if(d->refusal == 0){
		r = cJSON_AddNullToObject(o, "lastRefusal");
	}else if((r = cJSON_AddObjectToObject(o, "lastRefusal")) != NULL){
		r = cJSON_AddStringToObject(r, "reason", cm_metrics_refusal_name((enum cm_refusal)(d->refusal - 1))) && add_time(r, "time", d->refused_at)
			? r : NULL;
	}
	if(r == NULL){
		cJSON_Delete(o);
		return NULL;
	}
	return o;
}

/* --- listDevices' pages as text --------------------------------------
 * A page of 1,000 devices as a cJSON tree is some 50,000 allocations to
 * make, print and free on the broker thread; written as text, and put in
 * the answer as a raw node, it is one buffer. The same JSON as
 * render_device (tests/integration/test_devices.py compares them). */

static bool put(struct cm_text *t, const char *s)
{
	return cm_text_append(t, s, strlen(s));
}

static bool put_str(struct cm_text *t, const char *s)
{
	char esc[8];
	bool ok = put(t, "\"");

	for(; ok && *s; s++){
		unsigned char c = (unsigned char)*s;
		if(c == '"' || c == '\\'){
			esc[0] = '\\';
			esc[1] = (char)c;
			ok = cm_text_append(t, esc, 2);
		}else if(c < 0x20){
			snprintf(esc, sizeof(esc), "\\u%04x", c);
			ok = put(t, esc);
		}else{
			ok = cm_text_append(t, s, 1);
		}
	}
	return ok && put(t, "\"");
}

static bool put_time(struct cm_text *t, time_t v)
{
	char buf[24];

	if(v == 0){
		return put(t, "null");
	}
	cm_time_iso(v, buf);
	return put_str(t, buf);
}

static bool put_device(struct cm_text *t, const struct cm_state *st, const struct cm_tenant *tn, const struct cm_device *d)
{
	char fp[2 * CM_FP_LEN + 1], serial[2 * CM_SERIAL_MAX + 1], num[96];
	const char *issuer = cm_inventory_issuer(st->inventory, d), *sig = d->cert.sig_nid ? OBJ_nid2sn(d->cert.sig_nid) : NULL;
	bool ok;

	cm_hex(d->cert.fp, CM_FP_LEN, fp);
	cm_hex(d->cert.serial, d->cert.serial_len, serial);
	ok = put(t, "{\"id\":") && put_str(t, d->id) && put(t, ",\"certificate\":{\"fingerprint\":") && put_str(t, fp)
		&& put(t, ",\"serial\":") && put_str(t, serial) && put(t, ",\"issuer\":") && (issuer[0] ? put_str(t, issuer) : put(t, "null"))
		&& put(t, ",\"notAfter\":") && put_time(t, (time_t)d->cert.not_after) && put(t, ",\"keyType\":")
		&& put_str(t, cm_key_type_name(d->cert.key_type));
	snprintf(num, sizeof(num), ",\"keyBits\":%u,\"signatureAlgorithm\":", d->cert.key_bits);
	ok = ok && put(t, num) && (sig ? put_str(t, sig) : put(t, "null")) && put(t, "},\"firstSeen\":") && put_time(t, d->first_seen)
		&& put(t, ",\"lastSeen\":") && put_time(t, d->last_seen) && put(t, d->connected ? ",\"connected\":true,\"node\":" : ",\"connected\":false,\"node\":")
		&& (d->connected ? put_str(t, node_name(st)) : put(t, "null"));
	snprintf(num, sizeof(num), ",\"connections\":%u,\"certificates\":%u,\"blocked\":%s,\"enrolled\":%s,\"lastRefusal\":", d->connected,
			d->certs, device_blocked(tn, d) ? "true" : "false", enrolled(st, tn, d) ? "true" : "false");
	ok = ok && put(t, num);
	if(ok && d->refusal){
		ok = put(t, "{\"reason\":") && put_str(t, cm_metrics_refusal_name((enum cm_refusal)(d->refusal - 1))) && put(t, ",\"time\":")
			&& put_time(t, d->refused_at) && put(t, "}");
	}else if(ok){
		ok = put(t, "null");
	}
	return ok && put(t, "}");
}

static bool matches(const struct cm_state *st, const struct cm_tenant *t, const struct cm_device *d, enum filter f, time_t now)
{
	switch(f){
		case FILTER_ALL:
			return true;
		case FILTER_CONNECTED:
			return d->connected > 0;
		case FILTER_EXPIRING:
			return d->cert.not_after < now + st->expiry_warning_days * 86400;
		case FILTER_REFUSED:
			return d->refusal != 0;
		case FILTER_BLOCKED:
			return device_blocked(t, d);
	}
	return false;
}

static enum cm_rc parse_filter(const cJSON *cmd, enum filter *f, struct cm_err *err)
{
	static const char *const names[] = {"", "connected", "expiring", "refused", "blocked"};
	const char *name = cm_arg_string(cmd, "filter", NULL);

	*f = FILTER_ALL;
	for(size_t i = 1; name && i < sizeof(names) / sizeof(names[0]); i++){
		if(!strcmp(name, names[i])){
			*f = (enum filter)i;
			return CM_OK;
		}
	}
	return name ? cm_err_set(err, CM_ERR_INVAL, "unknown filter '%.32s' (connected, expiring, refused, blocked)", name) : CM_OK;
}

static enum cm_rc list_devices(struct cm_state *st, const struct cm_caller *who, const cJSON *cmd, cJSON *data, struct cm_err *err)
{
	const struct cm_tenant *t;
	struct cm_inventory *inv = st->inventory;
	const char *prefix = cm_arg_string(cmd, "prefix", "");
	size_t limit = (size_t)cm_arg_count(cmd, "limit", DEFAULT_LIMIT), offset = (size_t)cm_arg_count(cmd, "offset", 0), total = 0;
	size_t plen = strlen(prefix);
	enum filter f;
	time_t now = time(NULL);
	cJSON *arr = NULL;
	struct cm_text text = {0};
	bool ok;

	(void)who;
	CM_GUARD(cm_cmd_tenant(st, cmd, &t, err));
	CM_GUARD(parse_filter(cmd, &f, err));
	if(inv && cm_inventory_sort(inv) != CM_OK){
		return cm_cmd_nomem(err);
	}
	ok = put(&text, "[");
	for(size_t i = inv ? cm_inventory_lower_bound(inv, t->name, prefix) : 0; ok && inv && i < inv->order_n; i++){
		const struct cm_device *d = inv->order[i];

		if(strcmp(cm_inventory_tenant(inv, d), t->name) || strncmp(d->id, prefix, plen)){
			break;
		}
		if(!matches(st, t, d, f, now) || total++ < offset || total > offset + limit){
			continue;
		}
		ok = (total == offset + 1 || put(&text, ",")) && put_device(&text, st, t, d);
	}
	if(!ok || !put(&text, "]") || (arr = cJSON_CreateRaw(text.s)) == NULL || !cJSON_AddItemToObject(data, "devices", arr)){
		cJSON_Delete(arr);
		cm_text_free(&text);
		return cm_cmd_nomem(err);
	}
	cm_text_free(&text);
	if(!cJSON_AddStringToObject(data, "tenant", t->name) || !cJSON_AddNumberToObject(data, "total", (double)total)
			|| !cJSON_AddNumberToObject(data, "offset", (double)offset) || !add_nodes(st, data)){
		return cm_cmd_nomem(err);
	}
	return CM_OK;
}

static enum cm_rc get_device(struct cm_state *st, const struct cm_caller *who, const cJSON *cmd, cJSON *data, struct cm_err *err)
{
	const struct cm_tenant *t;
	const char *id = cm_arg_string(cmd, "id", "");
	const struct cm_device *d;
	cJSON *o;

	(void)who;
	CM_GUARD(cm_cmd_tenant(st, cmd, &t, err));
	d = st->inventory ? cm_inventory_find(st->inventory, t->name, id) : NULL;
	if(d == NULL){
		return cm_err_set(err, CM_ERR_INVAL, "no device '%.100s' in the inventory of tenant '%s'", id, t->name);
	}
	if((o = render_device(st, t, d)) == NULL || !cJSON_AddItemToObject(data, "device", o)){
		cJSON_Delete(o);
		return cm_cmd_nomem(err);
	}
	return add_nodes(st, data) ? CM_OK : cm_cmd_nomem(err);
}

/* --- blocks -------------------------------------------------------- */

/* The device id of a block command, checked against tenant t. */
static enum cm_rc device_id_arg(const cJSON *cmd, const struct cm_tenant *t, const char **out, struct cm_err *err)
{
	const char *id = cm_arg_string(cmd, "id", "");
	struct cm_identity ident;

	*out = id;
	if(!cm_block_device_id_valid(id)){
		return cm_err_set(err, CM_ERR_INVAL, "'id' must be a client id of 1 to %d characters, none of them a control character",
				CM_BLOCK_KEY_MAX);
	}
	/* A device id of another org's form would block nothing here. */
	if(cm_identity_parse(id, &ident, NULL) == CM_OK && t->policy != CM_POLICY_BRIDGE && strcmp(ident.org, t->org_id)){
		return cm_err_set(err, CM_ERR_INVAL, "device id '%.100s' names org '%s'; tenant '%s' has org '%s'", id, ident.org, t->name, t->org_id);
	}
	return CM_OK;
}

/* The certificate of a block command: "fingerprint" (SHA-256, hex, any
 * case, ':' allowed) or "certificate" (PEM), exactly one; its id. */
static enum cm_rc cert_id_arg(const cJSON *cmd, char id[CM_ID_LEN + 1], struct cm_err *err)
{
	const char *fp = cm_arg_string(cmd, "fingerprint", NULL), *pem = cm_arg_string(cmd, "certificate", NULL);
	size_t n = 0;

	if((fp == NULL) == (pem == NULL)){
		return cm_err_set(err, CM_ERR_INVAL, "give 'fingerprint' or 'certificate', one of them");
	}
	if(pem){
		X509 *leaf = NULL;
		STACK_OF(X509) *extra = NULL;
		enum cm_rc rc = cm_pki_parse_chain_pem(pem, strlen(pem), &leaf, &extra, err);
		if(rc == CM_OK){
			rc = sk_X509_num(extra) ? cm_err_set(err, CM_ERR_INVAL, "'certificate' must hold one certificate") : cm_pki_cert_id(leaf, id, err);
		}
		X509_free(leaf);
		sk_X509_pop_free(extra, X509_free);
		return rc;
	}
	for(; *fp && n <= CM_ID_LEN; fp++){
		if(*fp != ':'){
			id[n++] = (char)tolower((unsigned char)*fp);
		}
	}
	id[n < CM_ID_LEN ? n : CM_ID_LEN] = '\0';
	if(n != CM_ID_LEN || *fp || !cm_pki_id_valid(id)){
		return cm_err_set(err, CM_ERR_INVAL, "'fingerprint' must be the certificate's SHA-256: 64 hex digits (':' between bytes allowed)");
	}
	return CM_OK;
}

static cJSON *render_block(const struct cm_block *b, const char *key)
{
	cJSON *o = cJSON_CreateObject();

	if(o == NULL || !cJSON_AddStringToObject(o, key, b->key) || !cJSON_AddStringToObject(o, "reason", b->reason)
			|| !cJSON_AddStringToObject(o, "by", b->by) || !cm_json_add_time(o, "blockedAt", b->at)){
		cJSON_Delete(o);
		return NULL;
	}
	return o;
}

/* Adds (add) or removes key in the list (certs: certificates) of a copy
 * of t, and commits it: the tick disconnects what it blocks. */
static enum cm_rc change_block(struct cm_state *st, const struct cm_caller *who, const struct cm_tenant *cur, bool certs, bool add,
		const char *key, const char *reason, cJSON *data, struct cm_err *err)
{
	struct cm_tenant *t = cm_tenant_clone(cur);
	struct cm_blocklist *l;
	enum cm_rc rc = CM_OK;

	if(t == NULL){
		return cm_cmd_nomem(err);
	}
	if(add && t->policy == CM_POLICY_TOKEN){
		cm_tenant_free(&t);
		/* Its clients are the broker's other mechanisms' to admit: a block
		 * here would refuse nothing. */
		return cm_err_set(err, CM_ERR_INVAL, "tenant '%s' has the token policy: certmgr does not authenticate its devices, and"
				" a block would refuse none of them", cur->name);
	}
	l = certs ? &t->blocked_certs : &t->blocked_devices;
	if(add){
		rc = cm_blocks_add(l, key, reason, who->name, time(NULL), err);
	}else if(!cm_blocks_remove(l, key)){
		rc = cm_err_set(err, CM_ERR_INVAL, "%s '%.100s' is not blocked in tenant '%s'", certs ? "certificate" : "device", key, t->name);
	}
	if(rc != CM_OK){
		cm_tenant_free(&t);
		return rc;
	}
	/* t stays valid after the commit (the store's, or a back end's until
	 * the next tick), and holds what was committed: the store may not
	 * yet, on a fleet node. */
	CM_GUARD(cm_registry_put_tenant(st, who->name, who->command, t, key, err));
	if(add){
		cm_cmd_answer(data, "blocked", render_block(cm_blocks_find(certs ? &t->blocked_certs : &t->blocked_devices, key),
				certs ? "fingerprint" : "id"));
	}else{
		cm_cmd_answer(data, "unblocked", cJSON_CreateString(key));
	}
	return CM_OK;
}

static enum cm_rc block_device(struct cm_state *st, const struct cm_caller *who, const cJSON *cmd, cJSON *data, struct cm_err *err)
{
	const struct cm_tenant *t;
	const char *id;

	CM_GUARD(cm_cmd_tenant(st, cmd, &t, err));
	CM_GUARD(device_id_arg(cmd, t, &id, err));
	return change_block(st, who, t, false, true, id, cm_arg_string(cmd, "reason", ""), data, err);
}

static enum cm_rc unblock_device(struct cm_state *st, const struct cm_caller *who, const cJSON *cmd, cJSON *data, struct cm_err *err)
{
	const struct cm_tenant *t;
	const char *id = cm_arg_string(cmd, "id", "");

	CM_GUARD(cm_cmd_tenant(st, cmd, &t, err));
	return change_block(st, who, t, false, false, id, NULL, data, err);
}

static enum cm_rc block_certificate(struct cm_state *st, const struct cm_caller *who, const cJSON *cmd, cJSON *data, struct cm_err *err)
{
	const struct cm_tenant *t;
	char id[CM_ID_LEN + 1];

	CM_GUARD(cm_cmd_tenant(st, cmd, &t, err));
	CM_GUARD(cert_id_arg(cmd, id, err));
	return change_block(st, who, t, true, true, id, cm_arg_string(cmd, "reason", ""), data, err);
}

static enum cm_rc unblock_certificate(struct cm_state *st, const struct cm_caller *who, const cJSON *cmd, cJSON *data, struct cm_err *err)
{
	const struct cm_tenant *t;
	char id[CM_ID_LEN + 1];

	CM_GUARD(cm_cmd_tenant(st, cmd, &t, err));
	CM_GUARD(cert_id_arg(cmd, id, err));
	return change_block(st, who, t, true, false, id, NULL, data, err);
}

static bool add_blocklist(cJSON *data, const char *name, const struct cm_blocklist *l, const char *key)
{
	cJSON *arr = cJSON_AddArrayToObject(data, name);

	for(size_t i = 0; arr && i < l->n; i++){
		cJSON *o = render_block(&l->v[i], key);
		if(o == NULL || !cJSON_AddItemToArray(arr, o)){
			cJSON_Delete(o);
			return false;
		}
	}
	return arr != NULL;
}

static enum cm_rc list_blocked(struct cm_state *st, const struct cm_caller *who, const cJSON *cmd, cJSON *data, struct cm_err *err)
{
	const struct cm_tenant *t;

	(void)who;
	CM_GUARD(cm_cmd_tenant(st, cmd, &t, err));
	if(!add_blocklist(data, "devices", &t->blocked_devices, "id") || !add_blocklist(data, "certificates", &t->blocked_certs, "fingerprint")){
		return cm_cmd_nomem(err);
	}
	return CM_OK;
}

/* --- audits -------------------------------------------------------- */

/* auditFleet's end: the answer of the request that waits (ctx). */
static void audit_answer(struct cm_state *st, void *ctx, cJSON *findings, const uint64_t counts[CM_FINDING_COUNT], bool truncated,
		const struct cm_err *err)
{
	struct cm_request *req = ctx;
	cJSON *data = cm_control_pending_data(req), *c;

	if(findings == NULL || !cJSON_AddItemToObject(data, "findings", findings)){
		cJSON_Delete(findings);
		cm_control_resume(st, req, CM_ERR_NOMEM, err);
		return;
	}
	c = cJSON_AddObjectToObject(data, "counts");
	for(int i = 0; c && i < CM_FINDING_COUNT; i++){
		if(!cJSON_AddNumberToObject(c, cm_finding_name((enum cm_finding)i), (double)counts[i])){
			c = NULL;
		}
	}
	if(c == NULL || !cJSON_AddBoolToObject(data, "truncated", truncated) || !add_nodes(st, data)){
		struct cm_err nomem;
		cm_control_resume(st, req, cm_cmd_nomem(&nomem), &nomem);
		return;
	}
	cm_control_resume(st, req, CM_OK, NULL);
}

/* auditFleet of every tenant: its counts are the metrics' until the next. */
static void audit_answer_all(struct cm_state *st, void *ctx, cJSON *findings, const uint64_t counts[CM_FINDING_COUNT], bool truncated,
		const struct cm_err *err)
{
	if(findings){
		memcpy(st->audit_counts, counts, sizeof(st->audit_counts));
		st->audit_done = true;
	}
	audit_answer(st, ctx, findings, counts, truncated, err);
}

static enum cm_rc audit_fleet(struct cm_state *st, const struct cm_caller *who, const cJSON *cmd, cJSON *data, struct cm_err *err)
{
	struct cm_audit_options o = {cm_arg_string(cmd, "tenant", NULL), (int)cm_arg_count(cmd, "expiringWithinDays", 30),
		(int)cm_arg_count(cmd, "seenWithinDays", 30), AUDIT_MAX_LISTED};

	(void)data;
	if(o.tenant && cm_store_find_tenant(st->store, o.tenant) == NULL){
		return cm_err_set(err, CM_ERR_INVAL, "no tenant '%.64s'", o.tenant);
	}
	CM_GUARD(cm_audit_start(st, &o, o.tenant ? audit_answer : audit_answer_all, who->req, err));
	return CM_PENDING;
}

static const struct cm_field list_fields[] = {
	{"tenant", CM_FIELD_STRING, CM_REQUIRED, 0, NULL},
	{"filter", CM_FIELD_STRING, CM_OPTIONAL, 0, NULL},
	{"prefix", CM_FIELD_STRING, CM_OPTIONAL, CM_BLOCK_KEY_MAX, NULL},
	{"limit", CM_FIELD_COUNT, CM_OPTIONAL, MAX_LIMIT, NULL},
	{"offset", CM_FIELD_COUNT, CM_OPTIONAL, 0, NULL},
	{NULL, CM_FIELD_STRING, CM_OPTIONAL, 0, NULL},
};

static const struct cm_field block_device_fields[] = {
	{"tenant", CM_FIELD_STRING, CM_REQUIRED, 0, NULL},
	{"id", CM_FIELD_STRING, CM_REQUIRED, CM_BLOCK_KEY_MAX, NULL},
	{"reason", CM_FIELD_STRING, CM_OPTIONAL, CM_BLOCK_REASON_MAX, NULL},
	{NULL, CM_FIELD_STRING, CM_OPTIONAL, 0, NULL},
};

static const struct cm_field block_cert_fields[] = {
	{"tenant", CM_FIELD_STRING, CM_REQUIRED, 0, NULL},
	{"fingerprint", CM_FIELD_STRING, CM_OPTIONAL, 3 * CM_ID_LEN, NULL},
	{"certificate", CM_FIELD_STRING, CM_OPTIONAL, 0, NULL},
	{"reason", CM_FIELD_STRING, CM_OPTIONAL, CM_BLOCK_REASON_MAX, NULL},
	{NULL, CM_FIELD_STRING, CM_OPTIONAL, 0, NULL},
};

static const struct cm_field unblock_cert_fields[] = {
	{"tenant", CM_FIELD_STRING, CM_REQUIRED, 0, NULL},
	{"fingerprint", CM_FIELD_STRING, CM_OPTIONAL, 3 * CM_ID_LEN, NULL},
	{"certificate", CM_FIELD_STRING, CM_OPTIONAL, 0, NULL},
	{NULL, CM_FIELD_STRING, CM_OPTIONAL, 0, NULL},
};

static const struct cm_field audit_fields[] = {
	{"tenant", CM_FIELD_STRING, CM_OPTIONAL, 0, NULL},
	{"expiringWithinDays", CM_FIELD_COUNT, CM_OPTIONAL, MAX_DAYS, NULL},
	{"seenWithinDays", CM_FIELD_COUNT, CM_OPTIONAL, MAX_DAYS, NULL},
	{NULL, CM_FIELD_STRING, CM_OPTIONAL, 0, NULL},
};

const struct cm_command cm_device_commands[] = {
	{"listDevices", list_devices, CM_READS, list_fields},
	{"getDevice", get_device, CM_READS, cm_fields_tenant_id},
	{"blockDevice", block_device, CM_WRITES, block_device_fields},
	{"unblockDevice", unblock_device, CM_WRITES, cm_fields_tenant_id},
	{"blockCertificate", block_certificate, CM_WRITES, block_cert_fields},
	{"unblockCertificate", unblock_certificate, CM_WRITES, unblock_cert_fields},
	{"listBlocked", list_blocked, CM_READS, cm_fields_tenant},
	{"auditFleet", audit_fleet, CM_READS, audit_fields},
	{NULL, NULL, CM_READS, NULL},
};
