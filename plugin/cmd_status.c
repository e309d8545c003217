/* getStatus. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "control.h"
#include "json.h"
#include "refresh.h"
#include "status.h"

static enum cm_rc get_status(struct cm_state *st, const struct cm_caller *who, const cJSON *cmd, cJSON *data, struct cm_err *err)
{
	const struct cm_tenant *t, *tmp;
	const struct cm_ca *ca;
	const struct cm_client *c, *ctmp;
	const struct cm_server_cert *sc;
	int tenants = 0, cas = 0, pinned = 0, devices = 0, admins = 0, i;
	time_t nearest = 0;
	const char *kind = NULL, *owner = NULL, *id = NULL;
	cJSON *o, *n;

	(void)who;
	(void)cmd;
	HASH_ITER(hh, st->store->tenants, t, tmp){
		tenants++;
		for(ca = t->cas; ca; ca = ca->next){
			time_t na = cm_pki_not_after(ca->cert);
			ca->pinned ? pinned++ : cas++;
			if(nearest == 0 || na < nearest){
				nearest = na;
				kind = ca->pinned ? "pinned" : "ca";
				owner = t->name;
				id = ca->id;
			}
		}
	}
	for(i = 0; i < CM_SLOT_COUNT; i++){
		for(sc = st->store->slots[i].certs; sc; sc = sc->next){
			time_t na = cm_pki_not_after(sc->leaf);
			if(nearest == 0 || na < nearest){
				nearest = na;
				kind = "server";
				owner = cm_slot_name((enum cm_slot_id)i);
				id = sc->id;
			}
		}
	}
	HASH_ITER(hh, st->clients, c, ctmp){
		c->kind == CM_CLIENT_DEVICE ? devices++ : admins++;
	}
	o = cJSON_AddObjectToObject(data, "status");
	if(o == NULL
			|| !cJSON_AddNumberToObject(o, "generation", (double)st->store->generation)
			|| !cJSON_AddNumberToObject(o, "tenants", tenants)
			|| !cJSON_AddNumberToObject(o, "cas", cas)
			|| !cJSON_AddNumberToObject(o, "pinned", pinned)
			|| !cJSON_AddNumberToObject(o, "rejected", (double)cm_rejected_count(st->rejected))
			|| !cJSON_AddNumberToObject(o, "connectedDevices", devices)
			|| !cJSON_AddNumberToObject(o, "connectedAdministrators", admins)
			|| !cJSON_AddNumberToObject(o, "handshakes", (double)st->handshakes_served)){
		return cm_err_set(err, CM_ERR_NOMEM, "out of memory");
	}
	{
		cJSON *exp = cm_status_expiring(st, time(NULL));
		cJSON *warn = cm_status_hostname_warnings(st);
		cJSON *shared = cm_status_shared_cas(st, NULL, NULL);
		if(exp == NULL || !cJSON_AddItemToObject(o, "expiring", exp)
				|| warn == NULL || !cJSON_AddItemToObject(o, "hostnameWarnings", warn)
				|| shared == NULL || !cJSON_AddItemToObject(o, "sharedCAs", shared)){
			return cm_err_set(err, CM_ERR_NOMEM, "out of memory");
		}
	}
	{
		cJSON *crls = cm_refresh_health(st);
		if(crls == NULL || !cJSON_AddItemToObject(o, "crls", crls)){
			cJSON_Delete(crls);
			return cm_err_set(err, CM_ERR_NOMEM, "out of memory");
		}
	}
	if(kind){
		n = cJSON_AddObjectToObject(o, "nearestExpiry");
		if(n == NULL || !cJSON_AddStringToObject(n, "kind", kind)
				|| !cJSON_AddStringToObject(n, strcmp(kind, "server") ? "tenant" : "slot", owner)
				|| !cJSON_AddStringToObject(n, "id", id)
				|| !cm_json_add_time(n, "notAfter", nearest)){
			return cm_err_set(err, CM_ERR_NOMEM, "out of memory");
		}
	}
	return CM_OK;
}

static const struct cm_field no_fields[] = {
	{NULL, CM_FIELD_STRING, CM_OPTIONAL, 0, NULL},
};


const struct cm_command cm_status_commands[] = {
	{"getStatus", get_status, CM_READS, no_fields},
	{NULL, NULL, CM_READS, NULL},
};
