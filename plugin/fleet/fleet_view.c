/* This node's view (nodes/<node> in etcd) and the JSON the control API
 * shows of the fleet. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fleet-int.h"
#include "json.h"
#include "store.h"
#include "rejected.h"

/* Entries of the rejected list a node shares with the others. */
#define SHARED_REJECTED 100

cJSON *fleet_crl_health(const struct cm_state *st)
{
	cJSON *o = cJSON_CreateObject();
	unsigned long cas = 0, with = 0, failing = 0, stale = 0;
	time_t now = time(NULL);

	for(const struct cm_tenant *t = cm_store_first_tenant(st->store); t; t = cm_store_next_tenant(t)){
		for(const struct cm_ca *ca = t->cas; ca; ca = ca->next){
			cas++;
			with += ca->crl != NULL;
			failing += ca->sched.failures > 0;
			stale += ca->crl && ca->crl->next_update && ca->crl->next_update < now;
		}
	}
	if(o == NULL || !cJSON_AddNumberToObject(o, "cas", (double)cas) || !cJSON_AddNumberToObject(o, "withCrl", (double)with)
			|| !cJSON_AddNumberToObject(o, "failing", (double)failing) || !cJSON_AddNumberToObject(o, "stale", (double)stale)){
		cJSON_Delete(o);
		return NULL;
	}
	return o;
}

static double device_count(const struct cm_state *st)
{
	unsigned long n = 0;

	for(const struct cm_client *c = st->clients; c; c = c->hh.next){
		n += c->kind == CM_CLIENT_DEVICE;
	}
	return (double)n;
}

static char *view_text(const struct cm_state *st)
{
	cJSON *o = cJSON_CreateObject();
	char rev[24], *text = NULL;

	snprintf(rev, sizeof(rev), "%lld", (long long)st->fleet->applied_rev);
	if(o && cJSON_AddStringToObject(o, "name", st->fleet_opts.node_name) && cJSON_AddStringToObject(o, "address", st->hostname)
			&& cJSON_AddStringToObject(o, "revision", rev) && cJSON_AddNumberToObject(o, "devices", device_count(st))
			&& cJSON_AddStringToObject(o, "etcd", cm_fleet_connected(st) ? "connected" : "unreachable")){
		cJSON *crl = fleet_crl_health(st);
		if(crl && cJSON_AddItemToObject(o, "crl", crl)){
			text = cJSON_PrintUnformatted(o);
		}else{
			cJSON_Delete(crl);
		}
	}
	cJSON_Delete(o);
	return text;
}

static cJSON *rejected_entry(const struct cm_rejected *r)
{
	cJSON *o = cJSON_CreateObject();

	if(o == NULL || !cJSON_AddStringToObject(o, "id", r->id) || !cJSON_AddStringToObject(o, "leafId", r->leaf_id)
			|| !cJSON_AddStringToObject(o, "reason", r->reason) || !cJSON_AddStringToObject(o, "sni", r->sni)
			|| !cJSON_AddStringToObject(o, "tenant", r->tenant) || !cJSON_AddStringToObject(o, "address", r->address)
			|| !cm_json_add_time(o, "firstSeen", r->first_seen) || !cm_json_add_time(o, "lastSeen", r->last_seen)
			|| !cJSON_AddNumberToObject(o, "count", (double)r->count)){
		cJSON_Delete(o);
		return NULL;
	}
	return o;
}

static int latest_first(const void *a, const void *b)
{
	const struct cm_rejected *x = *(const struct cm_rejected *const *)a, *y = *(const struct cm_rejected *const *)b;

	return x->last_seen < y->last_seen ? 1 : x->last_seen > y->last_seen ? -1 : strcmp(x->id, y->id);
}

/* {"node":..., "rejected":[the latest SHARED_REJECTED entries]}. */
static char *rejected_text(const struct cm_state *st)
{
	size_t n = st->rejected ? cm_rejected_count(st->rejected) : 0, i = 0;
	const struct cm_rejected **all = calloc(n + 1, sizeof(*all));
	cJSON *o = cJSON_CreateObject(), *arr = o ? cJSON_AddArrayToObject(o, "rejected") : NULL;
	char *text = NULL;

	if(all == NULL || arr == NULL || !cJSON_AddStringToObject(o, "node", st->fleet_opts.node_name)){
		free(all);
		cJSON_Delete(o);
		return NULL;
	}
	for(const struct cm_rejected *r = n ? st->rejected->entries : NULL; r && i < n; r = r->hh.next){
		all[i++] = r;
	}
	qsort(all, i, sizeof(*all), latest_first);
	for(size_t k = 0; k < i && k < SHARED_REJECTED; k++){
		cJSON *e = rejected_entry(all[k]);
		if(e == NULL || !cJSON_AddItemToArray(arr, e)){
			cJSON_Delete(e);
			break;
		}
	}
	free(all);
	text = cJSON_PrintUnformatted(o);
	cJSON_Delete(o);
	return text;
}

void fleet_view_tick(struct cm_state *st, time_t now)
{
	struct cm_fleet *f = st->fleet;
	char *view, *rejected;

	if(now == f->view_built){
		return;
	}
	f->view_built = now;
	view = view_text(st);
	rejected = rejected_text(st);
	pthread_mutex_lock(&f->lock);
	if(view){
		free(f->view);
		f->view = view;
	}
	if(rejected){
		free(f->rejected);
		f->rejected = rejected;
	}
	pthread_mutex_unlock(&f->lock);
}

static bool add_counts(cJSON *o, const struct cm_fleet *f)
{
	return cJSON_AddNumberToObject(o, "changesSent", (double)f->jobs_sent) && cJSON_AddNumberToObject(o, "conflicts", (double)f->conflicts)
		&& cJSON_AddNumberToObject(o, "applyErrors", (double)f->apply_errors) && cJSON_AddNumberToObject(o, "resyncs", (double)f->resyncs)
		&& cJSON_AddNumberToObject(o, "watchRestarts", (double)f->watch_restarts)
		&& (f->last_apply_error[0] == '\0' || cJSON_AddStringToObject(o, "lastApplyError", f->last_apply_error));
}

cJSON *cm_fleet_status_json(const struct cm_state *st)
{
	struct cm_fleet *f = st->fleet;
	cJSON *o = cJSON_CreateObject(), *nodes = cm_fleet_nodes_json(st);
	char rev[24];
	bool ok, up = cm_fleet_connected(st);

	snprintf(rev, sizeof(rev), "%lld", (long long)(f ? f->applied_rev : 0));
	ok = o && cJSON_AddStringToObject(o, "store", f ? "etcd" : "files");
	if(f && ok){
		pthread_mutex_lock(&f->lock);
		ok = cJSON_AddStringToObject(o, "node", st->fleet_opts.node_name) && cJSON_AddStringToObject(o, "endpoints", st->fleet_opts.endpoints)
			&& cJSON_AddStringToObject(o, "prefix", st->fleet_opts.prefix) && cJSON_AddStringToObject(o, "etcd", up ? "connected" : "unreachable")
			&& cJSON_AddStringToObject(o, "appliedRevision", rev) && add_counts(o, f)
			&& (up || f->down_since == 0 || cm_json_add_time(o, "unreachableSince", f->down_since))
			&& (up || cJSON_AddStringToObject(o, "lastError", f->last_error))
			&& cJSON_AddNumberToObject(o, "nodes", cJSON_GetArraySize(nodes));
		pthread_mutex_unlock(&f->lock);
	}
	cJSON_Delete(nodes);
	if(!ok){
		cJSON_Delete(o);
		return NULL;
	}
	return o;
}

static cJSON *parse_locked(const struct cm_state *st, char *const *slot)
{
	struct cm_fleet *f = st->fleet;
	cJSON *j = NULL;

	if(f == NULL){
		return cJSON_CreateArray();
	}
	pthread_mutex_lock(&f->lock);
	if(*slot){
		j = cJSON_Parse(*slot);
	}
	pthread_mutex_unlock(&f->lock);
	if(!cJSON_IsArray(j)){
		cJSON_Delete(j);
		j = cJSON_CreateArray();
	}
	return j;
}

cJSON *cm_fleet_nodes_json(const struct cm_state *st)
{
	cJSON *arr = parse_locked(st, st->fleet ? &st->fleet->nodes : NULL), *n;

	cJSON_ArrayForEach(n, arr){
		const cJSON *name = cJSON_GetObjectItemCaseSensitive(n, "name");
		cJSON_AddBoolToObject(n, "self", cJSON_IsString(name) && !strcmp(name->valuestring, st->fleet_opts.node_name));
	}
	return arr;
}

cJSON *cm_fleet_rejected_json(const struct cm_state *st)
{
	return parse_locked(st, st->fleet ? &st->fleet->others_rejected : NULL);
}
