/* listRejected, getRejected, trustRejected, clearRejected. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/err.h>
#include <openssl/x509v3.h>

#include "render.h"
#include "control.h"
#include "fleet.h"
#include "json.h"
#include "log.h"
#include "store.h"
#include "rejected.h"

static struct cm_rejected *find(struct cm_state *st, const cJSON *cmd, struct cm_err *err)
{
	const char *id = cm_arg_string(cmd, "id", "");
	struct cm_rejected *r;

	r = cm_pki_id_valid(id) ? cm_rejected_find(st->rejected, id) : NULL;
	if(r == NULL){
		cm_err_set(err, CM_ERR_INVAL, "no rejected chain '%.64s'", id);
	}
	return r;
}

static int cmp_last_seen(const void *a, const void *b)
{
	const struct cm_rejected *x = *(struct cm_rejected *const *)a, *y = *(struct cm_rejected *const *)b;
	return x->last_seen < y->last_seen ? 1 : x->last_seen > y->last_seen ? -1 : strcmp(x->id, y->id);
}

static cJSON *render_summary(const void *r)
{
	return cm_render_rejected(r, false);
}

/* listRejected with fleet: every node's list as it last put it in etcd. */
static enum cm_rc add_fleet(struct cm_state *st, cJSON *data, struct cm_err *err)
{
	cJSON *all;

	if(st->fleet == NULL){
		return cm_err_set(err, CM_ERR_INVAL, "'fleet' needs plugin_opt_store etcd: this broker is no fleet node");
	}
	all = cm_fleet_rejected_json(st);
	if(all == NULL || !cJSON_AddItemToObject(data, "fleet", all)){
		cJSON_Delete(all);
		return cm_cmd_nomem(err);
	}
	return CM_OK;
}

static const struct cm_field list_fields[] = {
	{"fleet", CM_FIELD_BOOL, CM_OPTIONAL, 0, NULL},
	{NULL, CM_FIELD_STRING, CM_OPTIONAL, 0, NULL},
};

static enum cm_rc list_rejected(struct cm_state *st, const struct cm_caller *who, const cJSON *cmd, cJSON *data, struct cm_err *err)
{
	size_t n = cm_rejected_count(st->rejected), i = 0;
	const void **all = calloc(n + 1, sizeof(*all));
	struct cm_rejected *r, *tmp;

	(void)who;
	HASH_ITER(hh, st->rejected->entries, r, tmp){
		if(all){
			all[i++] = r;
		}
	}
	CM_GUARD(cm_cmd_add_sorted(data, "rejected", all, n, cmp_last_seen, render_summary, err));
	return cm_arg_bool(cmd, "fleet", false) ? add_fleet(st, data, err) : CM_OK;
}

static enum cm_rc get_rejected(struct cm_state *st, const struct cm_caller *who, const cJSON *cmd, cJSON *data, struct cm_err *err)
{
	struct cm_rejected *r;
	cJSON *o;

	(void)who;
	if((r = find(st, cmd, err)) == NULL){
		return CM_ERR_INVAL;
	}
	o = cm_render_rejected(r, true);
	if(o == NULL || !cJSON_AddItemToObject(data, "rejected", o)){
		cJSON_Delete(o);
		return cm_cmd_nomem(err);
	}
	return CM_OK;
}

/* The depth of the first certificate of chain that the next one did not
 * issue (names and signature), or -1 when each was issued by the next:
 * the top certificate is then the one the whole chain hangs from. */
static int unissued_depth(STACK_OF(X509) *chain)
{
	int i, n = sk_X509_num(chain);

	for(i = 0; i + 1 < n; i++){
		X509 *child = sk_X509_value(chain, i), *parent = sk_X509_value(chain, i + 1);
		EVP_PKEY *key = X509_get0_pubkey(parent);

		if(X509_check_issued(parent, child) != X509_V_OK || key == NULL || X509_verify(child, key) != 1){
			ERR_clear_error();
			return i;
		}
	}
	return -1;
}

static enum cm_rc trust_rejected(struct cm_state *st, const struct cm_caller *who, const cJSON *cmd, cJSON *data, struct cm_err *err)
{
	struct cm_rejected *r;
	const struct cm_tenant *cur;
	struct cm_tenant *t;
	const char *anchor = cm_arg_string(cmd, "anchor", "");
	struct cm_ca *ca;
	X509 *cert;
	char id[CM_ID_LEN + 1], rid[CM_ID_LEN + 1];
	enum cm_rc rc;

	if((r = find(st, cmd, err)) == NULL || cm_cmd_tenant(st, cmd, &cur, err) != CM_OK){
		return CM_ERR_INVAL;
	}
	if(!strcmp(anchor, "root")){
		/* The top certificate the client sent: it must be a CA. */
		cert = sk_X509_value(r->chain, sk_X509_num(r->chain) - 1);
		int bad;
		if(!(X509_get_extension_flags(cert) & EXFLAG_CA)){
			return cm_err_set(err, CM_ERR_INVAL, "the top certificate of this chain is not a CA: trust its leaf instead");
		}
		/* Anyone can send a device's public leaf under a root of their
		 * own: the root must have issued what it came with. */
		if((bad = unissued_depth(r->chain)) >= 0){
			return cm_err_set(err, CM_ERR_INVAL, "the certificate at depth %d of this chain did not issue the one at depth %d:"
					" its top certificate did not issue this chain, which may be forged; not trusted", bad + 1, bad);
		}
	}else if(!strcmp(anchor, "leaf")){
		cert = sk_X509_value(r->chain, 0);
		if(X509_get_extension_flags(cert) & EXFLAG_CA){
			return cm_err_set(err, CM_ERR_INVAL, "the leaf of this chain is a CA certificate: trust it as root");
		}
	}else{
		return cm_err_set(err, CM_ERR_INVAL, "'anchor' must be root or leaf");
	}
	t = cm_tenant_clone(cur);
	if(t == NULL){
		return cm_cmd_nomem(err);
	}
	rc = cm_cmd_admit(t, cert, "trusted from the rejected list", true, &ca, err);
	if(rc != CM_OK){
		cm_tenant_free(&t);
		return rc;
	}
	memcpy(id, ca->id, sizeof(id));
	memcpy(rid, r->id, sizeof(rid));
	rc = cm_registry_put_tenant(st, who->name, anchor[0] == 'r' ? "trustRejected root" : "trustRejected leaf", t, id, err);
	if(rc != CM_OK){
		return rc;
	}
	cm_rejected_remove(st->rejected, rid);
	cJSON_AddStringToObject(data, "id", id);
	cJSON_AddStringToObject(data, "kind", anchor[0] == 'r' ? "ca" : "pinned");
	return CM_OK;
}

static enum cm_rc clear_rejected(struct cm_state *st, const struct cm_caller *who, const cJSON *cmd, cJSON *data, struct cm_err *err)
{
	size_t n = cm_rejected_count(st->rejected);

	(void)cmd;
	(void)err;
	cm_rejected_clear(st->rejected);
	cm_log(CM_LOG_NOTICE, "%s | %s | count=%zu", who->name, who->command, n);
	cJSON_AddNumberToObject(data, "removed", (double)n);
	return CM_OK;
}

static const struct cm_field id_fields[] = {
	{"id", CM_FIELD_STRING, CM_REQUIRED, 0, NULL},
	{NULL, CM_FIELD_STRING, CM_OPTIONAL, 0, NULL},
};

static const struct cm_field trust_fields[] = {
	{"id", CM_FIELD_STRING, CM_REQUIRED, 0, NULL},
	{"tenant", CM_FIELD_STRING, CM_REQUIRED, 0, NULL},
	{"anchor", CM_FIELD_STRING, CM_REQUIRED, 0, NULL},
	{NULL, CM_FIELD_STRING, CM_OPTIONAL, 0, NULL},
};


const struct cm_command cm_rejected_commands[] = {
	{"listRejected", list_rejected, CM_READS, list_fields},
	{"getRejected", get_rejected, CM_READS, id_fields},
	{"trustRejected", trust_rejected, CM_WRITES, trust_fields},
	{"clearRejected", clear_rejected, CM_WRITES, cm_fields_none},
	{NULL, NULL, CM_READS, NULL},
};
