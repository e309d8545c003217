/* Commits of tenants, and the queue of re-checks they leave for the tick. */
#include <stdio.h>
#include <string.h>

#include "log.h"
#include "registry.h"

static void audit(const char *who, const char *command, const char *tenant, const char *id)
{
	if(id){
		cm_log(CM_LOG_NOTICE, "%s | %s | tenant=%s id=%s", who, command, tenant, id);
	}else{
		cm_log(CM_LOG_NOTICE, "%s | %s | tenant=%s", who, command, tenant);
	}
}

enum cm_rc cm_registry_put_tenant(struct cm_state *st, const char *who, const char *command, struct cm_tenant *t, const char *id,
		struct cm_err *err)
{
	struct cm_tenant *old = NULL;
	enum cm_rc rc;

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

	rc = cm_store_delete_tenant(st->store, name, &old, err);
	if(rc != CM_OK){
		return rc;
	}
	audit(who, command, old->name, NULL);
	cm_registry_queue_recheck(st, old->name);
	cm_tenant_free(&old);
	return CM_OK;
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
