/* getStatus. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "control.h"
#include "fleet.h"
#include "json.h"
#include "refresh.h"
#include "status.h"
#include "store.h"
#include "rejected.h"

/* What getStatus counts, and the certificate that expires first. */
struct counts {
	int tenants, cas, pinned, devices, admins;
	time_t nearest;
	const char *kind, *owner, *id;
};

static void nearer(struct counts *n, time_t na, const char *kind, const char *owner, const char *id)
{
	if(n->nearest == 0 || na < n->nearest){
		n->nearest = na;
		n->kind = kind;
		n->owner = owner;
		n->id = id;
	}
}

static void count(const struct cm_state *st, struct counts *n)
{
	const struct cm_tenant *t;
	const struct cm_ca *ca;
	const struct cm_client *c, *ctmp;
	const struct cm_server_cert *sc;
	int i;

	memset(n, 0, sizeof(*n));
	for(t = cm_store_first_tenant(st->store); t; t = cm_store_next_tenant(t)){
		n->tenants++;
		for(ca = t->cas; ca; ca = ca->next){
			ca->pinned ? n->pinned++ : n->cas++;
			nearer(n, cm_pki_not_after(ca->cert), ca->pinned ? "pinned" : "ca", t->name, ca->id);
		}
	}
	for(i = 0; i < CM_SLOT_COUNT; i++){
		for(sc = cm_store_slot_certs(st->store, (enum cm_slot_id)i); sc; sc = sc->next){
			nearer(n, cm_pki_not_after(sc->leaf), "server", cm_slot_name((enum cm_slot_id)i), sc->id);
		}
	}
	HASH_ITER(hh, st->clients, c, ctmp){
		c->kind == CM_CLIENT_DEVICE ? n->devices++ : n->admins++;
	}
}

/* The lists of getStatus: expiring, hostnameWarnings, sharedCAs, crls.
 * False when out of memory. */
static bool add_lists(struct cm_state *st, cJSON *o)
{
	static const char *const names[] = {"expiring", "hostnameWarnings", "sharedCAs", "crls"};
	cJSON *lists[] = {cm_status_expiring(st, time(NULL)), cm_status_hostname_warnings(st), cm_status_shared_cas(st, NULL, NULL),
		cm_refresh_health(st)};
	bool ok = true;
	size_t i;

	for(i = 0; i < sizeof(names) / sizeof(names[0]); i++){
		if(!ok || lists[i] == NULL || !cJSON_AddItemToObject(o, names[i], lists[i])){
			cJSON_Delete(lists[i]);
			ok = false;
		}
	}
	return ok;
}

static bool add_nearest(cJSON *o, const struct counts *n)
{
	cJSON *e;

	if(n->kind == NULL){
		return true;
	}
	e = cJSON_AddObjectToObject(o, "nearestExpiry");
	return e && cJSON_AddStringToObject(e, "kind", n->kind)
		&& cJSON_AddStringToObject(e, strcmp(n->kind, "server") ? "tenant" : "slot", n->owner)
		&& cJSON_AddStringToObject(e, "id", n->id) && cm_json_add_time(e, "notAfter", n->nearest);
}

static enum cm_rc get_status(struct cm_state *st, const struct cm_caller *who, const cJSON *cmd, cJSON *data, struct cm_err *err)
{
	struct counts n;
	cJSON *o;

	(void)who;
	(void)cmd;
	count(st, &n);
	o = cJSON_AddObjectToObject(data, "status");
	if(o == NULL
			|| !cJSON_AddNumberToObject(o, "generation", (double)cm_store_generation(st->store))
			|| !cJSON_AddNumberToObject(o, "tenants", n.tenants)
			|| !cJSON_AddNumberToObject(o, "cas", n.cas)
			|| !cJSON_AddNumberToObject(o, "pinned", n.pinned)
			|| !cJSON_AddNumberToObject(o, "rejected", (double)cm_rejected_count(st->rejected))
			|| !cJSON_AddNumberToObject(o, "connectedDevices", n.devices)
			|| !cJSON_AddNumberToObject(o, "connectedAdministrators", n.admins)
			|| !cJSON_AddNumberToObject(o, "handshakes", (double)st->handshakes_served)
			|| !add_lists(st, o) || !add_nearest(o, &n)){
		return cm_cmd_nomem(err);
	}
	if(st->fleet){
		cJSON *f = cm_fleet_status_json(st);
		if(f == NULL || !cJSON_AddItemToObject(o, "fleet", f)){
			cJSON_Delete(f);
			return cm_cmd_nomem(err);
		}
	}
	return CM_OK;
}


const struct cm_command cm_status_commands[] = {
	{"getStatus", get_status, CM_READS, cm_fields_none},
	{NULL, NULL, CM_READS, NULL},
};
