/* createTenant, modifyTenant, deleteTenant, listTenants, getTenant. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cmd_enroll.h"
#include "control.h"
#include "json.h"
#include "log.h"
#include "topic.h"
#include "store.h"

#define MAX_HOSTNAMES 64
#define MAX_PATTERNS 32

struct tenant_fields {
	const char *org;
	int policy; /* -1: not given */
	int revocation; /* -1: not given */
	const cJSON *hosts, *pub, *sub;
	size_t nhosts, npub, nsub;
	const cJSON *server;  /* {"slot": "id" or ""} */
};

static enum cm_rc read_fields(const cJSON *cmd, struct tenant_fields *f, struct cm_err *err)
{
	const char *policy = cm_arg_string(cmd, "policy", NULL), *revocation = cm_arg_string(cmd, "revocation", NULL);
	const cJSON *item;
	char norm[CM_HOSTNAME_MAX + 1];

	memset(f, 0, sizeof(*f));
	f->policy = -1;
	f->revocation = -1;
	f->org = cm_arg_string(cmd, "orgId", NULL);
	if(cm_cmd_strings(cmd, "hostnames", MAX_HOSTNAMES, &f->hosts, &f->nhosts, err) != CM_OK
			|| cm_cmd_strings(cmd, "publishPatterns", MAX_PATTERNS, &f->pub, &f->npub, err) != CM_OK
			|| cm_cmd_strings(cmd, "subscribePatterns", MAX_PATTERNS, &f->sub, &f->nsub, err) != CM_OK){
		return CM_ERR_INVAL;
	}
	f->server = cJSON_GetObjectItemCaseSensitive(cmd, "serverCertificates"); /* an object: the row says */
	if(f->server){
		cJSON_ArrayForEach(item, f->server){
			if(cm_slot_parse(item->string) < 0){
				return cm_err_set(err, CM_ERR_INVAL, "'serverCertificates': unknown slot '%.32s' (mqtt, websockets, bridge)", item->string);
			}
			if(!cJSON_IsString(item) || (item->valuestring[0] && !cm_pki_id_valid(item->valuestring))){
				return cm_err_set(err, CM_ERR_INVAL, "'serverCertificates': the value for %s must be a certificate id or \"\"", item->string);
			}
		}
	}
	if(f->org && !cm_identity_part_valid(f->org)){
		return cm_err_set(err, CM_ERR_INVAL, "'orgId' must be 1 to 64 letters, digits, '-', '_' or '.'");
	}
	if(policy && (f->policy = cm_policy_parse(policy)) < 0){
		return cm_err_set(err, CM_ERR_INVAL, "'policy' must be certificate, certificate+token, token or bridge");
	}
	if(revocation && (f->revocation = cm_revocation_parse(revocation)) < 0){
		return cm_err_set(err, CM_ERR_INVAL, "'revocation' must be when-available or required");
	}
	cJSON_ArrayForEach(item, f->hosts){
		if(cm_hostname_normalize(item->valuestring, norm, err) != CM_OK){
			return CM_ERR_INVAL;
		}
	}
	if((f->pub && f->npub == 0) || (f->sub && f->nsub == 0)){
		return cm_err_set(err, CM_ERR_INVAL, "topic pattern lists may not be empty");
	}
	cJSON_ArrayForEach(item, f->pub){
		if(cm_topic_pattern_valid(item->valuestring, err) != CM_OK){
			return CM_ERR_INVAL;
		}
	}
	cJSON_ArrayForEach(item, f->sub){
		if(cm_topic_pattern_valid(item->valuestring, err) != CM_OK){
			return CM_ERR_INVAL;
		}
	}
	return CM_OK;
}

static enum cm_rc set_list(struct cm_strlist *list, const cJSON *arr, size_t n, bool hostnames)
{
	char (*norm)[CM_HOSTNAME_MAX + 1] = NULL;
	const char **v = calloc(n + 1, sizeof(char *));
	const cJSON *item;
	size_t i = 0;
	enum cm_rc rc;

	if(v == NULL || (hostnames && (norm = calloc(n + 1, sizeof(*norm))) == NULL)){
		free(v);
		return CM_ERR_NOMEM;
	}
	cJSON_ArrayForEach(item, arr){
		if(hostnames){
			if(cm_hostname_normalize(item->valuestring, norm[i], NULL) != CM_OK){
				free(norm);
				free(v);
				return CM_ERR_INVAL;
			}
			v[i] = norm[i];
		}else{
			v[i] = item->valuestring;
		}
		i++;
	}
	rc = cm_strlist_set(list, v, n);
	free(norm);
	free(v);
	return rc;
}

static enum cm_rc apply_fields(struct cm_tenant *t, const struct tenant_fields *f, struct cm_err *err)
{
	if(f->org){
		char *org = strdup(f->org);
		if(org == NULL){
			return cm_cmd_nomem(err);
		}
		free(t->org_id);
		t->org_id = org;
	}
	if(f->policy >= 0){
		t->policy = (enum cm_policy)f->policy;
	}
	if(f->revocation >= 0){
		t->revocation = (enum cm_revocation)f->revocation;
	}
	if(f->server){
		const cJSON *item;
		cJSON_ArrayForEach(item, f->server){
			if(!cm_tenant_set_server_cert(t, (enum cm_slot_id)cm_slot_parse(item->string), item->valuestring)){
				return cm_cmd_nomem(err);
			}
		}
	}
	if((f->hosts && set_list(&t->hostnames, f->hosts, f->nhosts, true) != CM_OK)
			|| (f->pub && set_list(&t->publish, f->pub, f->npub, false) != CM_OK)
			|| (f->sub && set_list(&t->subscribe, f->sub, f->nsub, false) != CM_OK)){
		return cm_cmd_nomem(err);
	}
	return CM_OK;
}

static bool add_list(cJSON *obj, const char *name, const struct cm_strlist *l)
{
	cJSON *arr = cJSON_AddArrayToObject(obj, name);
	size_t i;

	for(i = 0; arr && i < l->n; i++){
		if(!cJSON_AddItemToArray(arr, cJSON_CreateString(l->v[i]))){
			return false;
		}
	}
	return arr != NULL;
}

/* The tenant's own server certificate of each slot that has one. */
static void add_server_certs(cJSON *o, const struct cm_tenant *t)
{
	cJSON *sc = cJSON_AddObjectToObject(o, "serverCertificates");

	for(int i = 0; sc && i < CM_SLOT_COUNT; i++){
		const char *id = cm_tenant_server_cert(t, (enum cm_slot_id)i);
		if(id[0]){
			cJSON_AddStringToObject(sc, cm_slot_name((enum cm_slot_id)i), id);
		}
	}
}

static cJSON *tenant_json(const struct cm_tenant *t, bool full)
{
	cJSON *o = cJSON_CreateObject();
	const struct cm_ca *ca;
	cJSON *cas;
	int count = 0;

	for(ca = t->cas; ca; ca = ca->next){
		count += !ca->issuer_only;
	}
	if(o == NULL
			|| !cJSON_AddStringToObject(o, "tenant", t->name)
			|| !cJSON_AddStringToObject(o, "orgId", t->org_id)
			|| !cJSON_AddStringToObject(o, "policy", cm_policy_name(t->policy))
			|| !cJSON_AddStringToObject(o, "revocation", cm_revocation_name(t->revocation))
			|| !add_list(o, "hostnames", &t->hostnames)
			|| !cJSON_AddNumberToObject(o, "caCount", count)){
		cJSON_Delete(o);
		return NULL;
	}
	if(!full){
		return o;
	}
	add_server_certs(o, t);
	if(t->enroll){
		cm_cmd_answer(o, "enrollment", cm_cmd_enroll_json(t->enroll));
	}
	if(!add_list(o, "publishPatterns", &t->publish)
			|| !add_list(o, "subscribePatterns", &t->subscribe)
			|| !cm_json_add_time(o, "created", t->created)
			|| (cas = cJSON_AddArrayToObject(o, "cas")) == NULL){
		cJSON_Delete(o);
		return NULL;
	}
	for(ca = t->cas; ca; ca = ca->next){
		cJSON *c;
		char cn[256];
		if(ca->issuer_only){
			continue;
		}
		c = cJSON_CreateObject();
		cm_pki_subject_cn(ca->cert, cn, sizeof(cn));
		if(c == NULL || !cJSON_AddItemToArray(cas, c)
				|| !cJSON_AddStringToObject(c, "id", ca->id)
				|| !cJSON_AddStringToObject(c, "commonName", cn)
				|| !cJSON_AddStringToObject(c, "description", ca->description)
				|| !cJSON_AddBoolToObject(c, "active", ca->active)){
			cJSON_Delete(o);
			return NULL;
		}
	}
	return o;
}

static enum cm_rc put_and_answer(struct cm_state *st, const struct cm_caller *who, struct cm_tenant *t, cJSON *data, struct cm_err *err)
{
	CM_GUARD(cm_registry_put_tenant(st, who->name, who->command, t, NULL, err));
	cm_cmd_answer(data, "tenant", tenant_json(t, true));
	return CM_OK;
}

static enum cm_rc create_tenant(struct cm_state *st, const struct cm_caller *who, const cJSON *cmd, cJSON *data, struct cm_err *err)
{
	struct tenant_fields f;
	const char *name = cm_arg_string(cmd, "tenant", "");
	struct cm_tenant *t;
	bool enroll;

	CM_GUARD(read_fields(cmd, &f, err));
	if(!cm_tenant_name_valid(name)){
		return cm_err_set(err, CM_ERR_INVAL, "'tenant' must be 1 to 64 of a-z, 0-9, '-' and '_', starting with a letter or digit");
	}
	if(cm_store_find_tenant(st->store, name)){
		return cm_err_set(err, CM_ERR_INVAL, "tenant '%s' already exists", name);
	}
	t = cm_tenant_new(name);
	if(t == NULL){
		return cm_cmd_nomem(err);
	}
	if(f.policy == CM_POLICY_BRIDGE){
		/* Peer brokers relay any topic unless told otherwise. */
		static const char *const all[] = {"#"};
		if(cm_strlist_set(&t->publish, all, 1) != CM_OK || cm_strlist_set(&t->subscribe, all, 1) != CM_OK){
			cm_tenant_free(&t);
			return cm_cmd_nomem(err);
		}
	}
	if(apply_fields(t, &f, err) != CM_OK){
		cm_tenant_free(&t);
		return CM_ERR_NOMEM;
	}
	if(cm_cmd_enroll_fields(t, cmd, &enroll, err) != CM_OK){
		cm_tenant_free(&t);
		return CM_ERR_INVAL;
	}
	return put_and_answer(st, who, t, data, err);
}

static enum cm_rc modify_tenant(struct cm_state *st, const struct cm_caller *who, const cJSON *cmd, cJSON *data, struct cm_err *err)
{
	struct tenant_fields f;
	const struct cm_tenant *cur;
	struct cm_tenant *t;
	bool enroll = cJSON_GetObjectItemCaseSensitive(cmd, "enrollment") || cJSON_GetObjectItemCaseSensitive(cmd, "requireProofOfPossession");

	if(cm_cmd_tenant(st, cmd, &cur, err) != CM_OK || read_fields(cmd, &f, err) != CM_OK){
		return CM_ERR_INVAL;
	}
	if(f.org == NULL && f.policy < 0 && f.revocation < 0 && f.hosts == NULL && f.pub == NULL && f.sub == NULL && f.server == NULL && !enroll){
		return cm_err_set(err, CM_ERR_INVAL, "nothing to modify: give orgId, policy, revocation, hostnames, publishPatterns or subscribePatterns");
	}
	t = cm_tenant_clone(cur);
	if(t == NULL || apply_fields(t, &f, err) != CM_OK){
		cm_tenant_free(&t);
		return cm_cmd_nomem(err);
	}
	if(cm_cmd_enroll_fields(t, cmd, &enroll, err) != CM_OK){
		cm_tenant_free(&t);
		return CM_ERR_INVAL;
	}
	return put_and_answer(st, who, t, data, err);
}

static enum cm_rc delete_tenant(struct cm_state *st, const struct cm_caller *who, const cJSON *cmd, cJSON *data, struct cm_err *err)
{
	const struct cm_tenant *t;

	(void)data;
	if(cm_cmd_tenant(st, cmd, &t, err) != CM_OK){
		return CM_ERR_INVAL;
	}
	return cm_registry_delete_tenant(st, who->name, who->command, t->name, err);
}

static int cmp_tenant_names(const void *a, const void *b)
{
	return strcmp((*(struct cm_tenant *const *)a)->name, (*(struct cm_tenant *const *)b)->name);
}

static cJSON *render_summary(const void *t)
{
	return tenant_json(t, false);
}

static enum cm_rc list_tenants(struct cm_state *st, const struct cm_caller *who, const cJSON *cmd, cJSON *data, struct cm_err *err)
{
	size_t n = cm_store_tenant_count(st->store), i = 0;
	const void **all = calloc(n + 1, sizeof(*all));

	(void)who;
	(void)cmd;
	for(const struct cm_tenant *t = cm_store_first_tenant(st->store); all && t; t = cm_store_next_tenant(t)){
		all[i++] = t;
	}
	return cm_cmd_add_sorted(data, "tenants", all, n, cmp_tenant_names, render_summary, err);
}

static enum cm_rc get_tenant(struct cm_state *st, const struct cm_caller *who, const cJSON *cmd, cJSON *data, struct cm_err *err)
{
	const struct cm_tenant *t;
	cJSON *o;

	(void)who;
	if(cm_cmd_tenant(st, cmd, &t, err) != CM_OK){
		return CM_ERR_INVAL;
	}
	o = tenant_json(t, true);
	if(o == NULL || !cJSON_AddItemToObject(data, "tenant", o)){
		cJSON_Delete(o);
		return cm_cmd_nomem(err);
	}
	return CM_OK;
}

static const struct cm_field change_fields[] = {
	{"tenant", CM_FIELD_STRING, CM_REQUIRED, 0, NULL},
	{"orgId", CM_FIELD_STRING, CM_OPTIONAL, 0, NULL},
	{"policy", CM_FIELD_STRING, CM_OPTIONAL, 0, NULL},
	{"revocation", CM_FIELD_STRING, CM_OPTIONAL, 0, NULL},
	{"hostnames", CM_FIELD_STRINGS, CM_OPTIONAL, MAX_HOSTNAMES, NULL},
	{"publishPatterns", CM_FIELD_STRINGS, CM_OPTIONAL, MAX_PATTERNS, NULL},
	{"subscribePatterns", CM_FIELD_STRINGS, CM_OPTIONAL, MAX_PATTERNS, NULL},
	{"serverCertificates", CM_FIELD_OBJECT, CM_OPTIONAL, 0, "an object of slot: id"},
	{"enrollment", CM_FIELD_OBJECT, CM_OPTIONAL, 0, "an object {mode, idPattern, validityDays, renewWithinDays, graceDays, ...}"},
	{"requireProofOfPossession", CM_FIELD_BOOL, CM_OPTIONAL, 0, NULL},
	{NULL, CM_FIELD_STRING, CM_OPTIONAL, 0, NULL},
};


const struct cm_command cm_tenant_commands[] = {
	{"createTenant", create_tenant, CM_WRITES, change_fields},
	{"modifyTenant", modify_tenant, CM_WRITES, change_fields},
	{"deleteTenant", delete_tenant, CM_WRITES, cm_fields_tenant},
	{"listTenants", list_tenants, CM_READS, cm_fields_none},
	{"getTenant", get_tenant, CM_READS, cm_fields_tenant},
	{NULL, NULL, CM_READS, NULL},
};
