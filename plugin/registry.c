/* Commits of tenants and slots, and the queue of re-checks they leave for the tick. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "registry.h"
#include "store.h"

static void audit(const char *who, const char *command, const char *tenant, const char *id)
{
	if(id){
		cm_log(CM_LOG_NOTICE, "%s | %s | tenant=%s id=%s", who, command, tenant, id);
	}else{
		cm_log(CM_LOG_NOTICE, "%s | %s | tenant=%s", who, command, tenant);
	}
}

/* Keeps t until the next tick: the handler that staged it reads it after
 * the put. */
static enum cm_rc hand_over(struct cm_state *st, struct cm_tenant *t, struct cm_err *err)
{
	if(st->handed_n == st->handed_cap){
		size_t cap = st->handed_cap ? st->handed_cap * 2 : 8;
		struct cm_tenant **v = realloc(st->handed, cap * sizeof(*v));
		if(v == NULL){
			cm_tenant_free(&t);
			return cm_err_set(err, CM_ERR_NOMEM, "out of memory");
		}
		st->handed = v;
		st->handed_cap = cap;
	}
	st->handed[st->handed_n++] = t;
	return CM_OK;
}

void cm_registry_tick(struct cm_state *st)
{
	for(size_t i = 0; i < st->handed_n; i++){
		cm_tenant_free(&st->handed[i]);
	}
	st->handed_n = 0;
	if(st->handed_cap > 64){
		free(st->handed);
		st->handed = NULL;
		st->handed_cap = 0;
	}
}

enum cm_rc cm_registry_put_tenant(struct cm_state *st, const char *who, const char *command, struct cm_tenant *t, const char *id,
		struct cm_err *err)
{
	struct cm_tenant *old = NULL;
	enum cm_rc rc;

	if(st->backend){
		rc = hand_over(st, t, err);
		if(rc == CM_OK){
			rc = st->backend->put_tenant(st, who, command, t, id, err);
		}
		return rc;
	}
	rc = cm_store_put_tenant(st->store, t, &old, err);
	if(rc != CM_OK){
		cm_tenant_free(&t);
		return rc;
	}
	cm_tenant_free(&old);
	audit(who, command, t->name, id);
	cm_registry_queue_recheck(st, t->name);
	return CM_OK;
}

enum cm_rc cm_registry_delete_tenant(struct cm_state *st, const char *who, const char *command, const char *name, struct cm_err *err)
{
	struct cm_tenant *old = NULL;
	enum cm_rc rc;

	if(st->backend){
		return st->backend->delete_tenant(st, who, command, name, err);
	}
	rc = cm_store_delete_tenant(st->store, name, &old, err);
	if(rc != CM_OK){
		return rc;
	}
	audit(who, command, old->name, NULL);
	cm_registry_queue_recheck(st, old->name);
	cm_tenant_free(&old);
	return CM_OK;
}

static enum cm_rc slot_commit(struct cm_store *store, const struct cm_slot_change *c, struct cm_err *err)
{
	switch(c->op){
	case CM_SLOT_ADD_CERT:
		return cm_store_add_server_cert(store, c->slot, c->cert, c->make_default, err);
	case CM_SLOT_REPLACE_BUILTIN:
		return cm_store_replace_builtin(store, c->slot, c->cert, err);
	case CM_SLOT_SET_DEFAULT:
		return cm_store_set_default_server_cert(store, c->slot, c->id, err);
	case CM_SLOT_REMOVE_CERT:
		return cm_store_remove_server_cert(store, c->slot, c->id, err);
	case CM_SLOT_ADD_CSR:
		return cm_store_add_csr(store, c->slot, c->csr, err);
	case CM_SLOT_REMOVE_CSR:
		return cm_store_remove_csr(store, c->slot, c->id, err);
	case CM_SLOT_INSTALL_CSR:
		return cm_store_install_csr(store, c->slot, c->id, c->cert, c->make_default, err);
	}
	return cm_err_set(err, CM_ERR_INVAL, "unknown slot change");
}

enum cm_rc cm_registry_slot(struct cm_state *st, const char *who, const char *command, const struct cm_slot_change *c, struct cm_err *err)
{
	char id[CM_ID_LEN + 1];
	struct cm_server_cert *cert = c->cert;
	struct cm_csr *csr = c->csr;
	bool dflt = c->make_default && (c->op == CM_SLOT_ADD_CERT || c->op == CM_SLOT_INSTALL_CSR);
	enum cm_rc rc;

	/* Copied first: an id read from the entry a removal frees. */
	snprintf(id, sizeof(id), "%s", cert ? cert->id : csr ? csr->id : c->id ? c->id : "");
	rc = cm_registry_slot_writable(st, err);
	if(rc == CM_OK){
		rc = slot_commit(st->store, c, err);
	}
	if(rc != CM_OK){
		cm_server_cert_free(&cert);
		cm_csr_free(&csr);
		return rc;
	}
	cm_log(CM_LOG_NOTICE, "%s | %s | slot=%s id=%s%s", who, command, cm_slot_name(c->slot), id, dflt ? " default" : "");
	cm_registry_slot_changed(st, who, command, c->slot);
	return CM_OK;
}

enum cm_rc cm_registry_apply_tenant(struct cm_state *st, const char *who, struct cm_tenant *t, long long revision, struct cm_err *err)
{
	struct cm_tenant *old = NULL;
	enum cm_rc rc;

	rc = cm_store_put_tenant(st->store, t, &old, err);
	if(rc != CM_OK){
		cm_tenant_free(&t);
		return rc;
	}
	cm_tenant_free(&old);
	cm_log(CM_LOG_NOTICE, "%s | apply | tenant=%s revision=%lld", who, t->name, revision);
	cm_registry_queue_recheck(st, t->name);
	return CM_OK;
}

enum cm_rc cm_registry_apply_delete(struct cm_state *st, const char *who, const char *name, long long revision, struct cm_err *err)
{
	struct cm_tenant *old = NULL;
	enum cm_rc rc;

	rc = cm_store_delete_tenant(st->store, name, &old, err);
	if(rc != CM_OK){
		return rc;
	}
	cm_log(CM_LOG_NOTICE, "%s | apply delete | tenant=%s revision=%lld", who, old->name, revision);
	cm_registry_queue_recheck(st, old->name);
	cm_tenant_free(&old);
	return CM_OK;
}

enum cm_rc cm_registry_slot_writable(struct cm_state *st, struct cm_err *err)
{
	return st->backend ? st->backend->slot_writable(st, err) : CM_OK;
}

void cm_registry_slot_changed(struct cm_state *st, const char *who, const char *command, enum cm_slot_id slot)
{
	if(st->backend){
		st->backend->slot_changed(st, who, command, slot);
	}
}

void cm_registry_queue_recheck(struct cm_state *st, const char *tenant)
{
	size_t i;

	if(st->recheck_all){
		return;
	}
	if(tenant == NULL || st->recheck_count == CM_RECHECK_MAX){
		st->recheck_all = true;
		return;
	}
	for(i = 0; i < st->recheck_count; i++){
		if(!strcmp(st->recheck[i], tenant)){
			return;
		}
	}
	snprintf(st->recheck[st->recheck_count++], sizeof(st->recheck[0]), "%s", tenant);
}

bool cm_registry_take_rechecks(struct cm_state *st, char names[][CM_TENANT_NAME_MAX + 1], size_t *n)
{
	bool all = st->recheck_all;

	*n = all ? 0 : st->recheck_count;
	memcpy(names, st->recheck, *n * sizeof(st->recheck[0]));
	st->recheck_count = 0;
	st->recheck_all = false;
	return all;
}
