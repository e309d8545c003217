#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <mosquitto.h>
#include <mosquitto_broker.h>
#include <uthash.h>

#include "audit.h"
#include "status.h"
#include "json.h"
#include "log.h"
#include "fleet.h"
#include "metrics.h"
#include "state.h"
#include "store.h"
#include "rejected.h"

#define PREFIX "$SYS/broker/certmgr/"

/* A set of strings: the per-CA topic groups published last round (with
 * the values published, so that an unchanged CA is not published again:
 * retained messages stay), and the certificates already announced as
 * expiring. */
struct cm_name {
	UT_hash_handle hh;
	unsigned long long values[4]; /* in the order of ca_metrics */
	bool has_crl, has_fetch;
	char key[];
};

_Static_assert(sizeof(((struct cm_state *)0)->hs_refused) / sizeof(uint64_t) == CM_REFUSED_COUNT,
		"cm_state.hs_refused has one counter per enum cm_refusal");

static const char *const refusal_names[CM_REFUSED_COUNT] = {
	"unknown_sni", "untrusted_chain", "revoked", "expired", "id_mismatch", "policy", "blocked",
};

static struct cm_name *set_add(struct cm_name **set, const char *key)
{
	struct cm_name *n = NULL;
	size_t len = strlen(key);

	HASH_FIND(hh, *set, key, len, n);
	if(n){
		return n;
	}
	n = calloc(1, sizeof(*n) + len + 1);
	if(n == NULL){
		return NULL;
	}
	memcpy(n->key, key, len + 1);
	HASH_ADD(hh, *set, key[0], len, n);
	return n;
}

static struct cm_name *set_find(struct cm_name *set, const char *key)
{
	struct cm_name *n = NULL;

	HASH_FIND(hh, set, key, strlen(key), n);
	return n;
}

static bool set_has(struct cm_name *set, const char *key)
{
	return set_find(set, key) != NULL;
}

static void set_free(struct cm_name **set)
{
	struct cm_name *n, *tmp;

	HASH_ITER(hh, *set, n, tmp){
		HASH_DEL(*set, n);
		free(n);
	}
}

const char *cm_metrics_refusal_name(enum cm_refusal why)
{
	return why < CM_REFUSED_COUNT ? refusal_names[why] : "?";
}

void cm_metrics_accepted(struct cm_state *st)
{
	st->hs_accepted++;
}

void cm_metrics_refused(struct cm_state *st, enum cm_refusal why)
{
	st->hs_refused[why]++;
}

static void publish(const char *topic, const char *value, bool retain)
{
	int rc = mosquitto_broker_publish_copy(NULL, topic, (int)strlen(value), value, 0, retain, NULL);

	if(rc != MOSQ_ERR_SUCCESS){
		cm_log(CM_LOG_WARNING, "cannot publish %s (error %d)", topic, rc);
	}
}

static void metric(const char *name, unsigned long long value)
{
	char topic[512], text[32];

	snprintf(topic, sizeof(topic), PREFIX "%s", name);
	snprintf(text, sizeof(text), "%llu", value);
	publish(topic, text, true);
}

/* A tenant name as a topic segment the exporter keeps: [a-z0-9_]. Tenant
 * names are [a-z0-9_-], so only '-' changes. */
static void segment(const char *in, char *out, size_t len)
{
	size_t i;

	for(i = 0; in[i] && i + 1 < len; i++){
		out[i] = in[i] == '-' ? '_' : in[i];
	}
	out[i] = '\0';
}

static const char *const ca_metrics[] = {
	"not_after_seconds", "crl/next_update_seconds", "crl/fetch_failures_total", "crl/revoked",
};

/* A CA's metrics, when they differ from what was published last (prev,
 * NULL when none was); now records what is in force. */
static void publish_ca(const char *group, const struct cm_ca *ca, const struct cm_name *prev, struct cm_name *now)
{
	char name[400];
	size_t i;

	now->values[0] = (unsigned long long)cm_pki_not_after(ca->cert);
	now->has_crl = ca->crl != NULL;
	now->values[1] = ca->crl ? (unsigned long long)ca->crl->next_update : 0;
	now->values[3] = ca->crl ? (unsigned long long)ca->crl->count : 0;
	now->has_fetch = ca->crl || ca->crl_url || ca->crl_learned_url;
	now->values[2] = ca->sched.failures_total;
	for(i = 0; i < sizeof(ca_metrics) / sizeof(ca_metrics[0]); i++){
		bool shown = i == 0 || (i == 2 ? now->has_fetch : now->has_crl);
		bool was = prev && (i == 0 || (i == 2 ? prev->has_fetch : prev->has_crl));
		if(shown && (!was || prev->values[i] != now->values[i])){
			snprintf(name, sizeof(name), "%s/%s", group, ca_metrics[i]);
			metric(name, now->values[i]);
		}else if(!shown && was){
			char topic[512];
			snprintf(topic, sizeof(topic), PREFIX "%s/%s", group, ca_metrics[i]);
			publish(topic, "", true);
		}
	}
}

/* The counters: handshakes, enrollments, the rejected list, the
 * inventory, the latest audit, the store's generation. */
static void publish_counters(const struct cm_state *st)
{
	char name[400];
	int i;

	metric("handshakes/accepted_total", st->hs_accepted);
	for(i = 0; i < CM_REFUSED_COUNT; i++){
		snprintf(name, sizeof(name), "handshakes/refused/%s_total", refusal_names[i]);
		metric(name, st->hs_refused[i]);
	}
	metric("enrollments/issued_total", st->enroll_issued);
	metric("enrollments/renewed_total", st->enroll_renewed);
	metric("enrollments/pending_total", st->enroll_pending);
	metric("enrollments/refused_total", st->enroll_refused);
	metric("rejected/entries", st->rejected ? cm_rejected_count(st->rejected) : 0);
	metric("devices/entries", st->inventory ? st->inventory->count : 0);
	for(i = 0; st->audit_done && i < CM_FINDING_COUNT; i++){
		snprintf(name, sizeof(name), "audit/%s", cm_finding_metric((enum cm_finding)i));
		metric(name, st->audit_counts[i]);
	}
	metric("store/generation", cm_store_generation(st->store));
}

/* Every metric, and an empty retained message (which deletes it) for each
 * CA published last time and gone since. */
static void publish_all(struct cm_state *st)
{
	struct cm_name *now = NULL, *n, *tmp;
	const struct cm_tenant *t;
	unsigned long long cas = 0;
	char name[400];
	int i;

	publish_counters(st);
	for(i = 0; i < CM_SLOT_COUNT; i++){
		const struct cm_server_cert *def = cm_store_slot_default(st->store, (enum cm_slot_id)i);
		if(def){
			snprintf(name, sizeof(name), "slots/%s/not_after_seconds", cm_slot_name((enum cm_slot_id)i));
			metric(name, (unsigned long long)cm_pki_not_after(def->leaf));
		}
	}
	for(t = cm_store_first_tenant(st->store); t; t = cm_store_next_tenant(t)){
		char tseg[80], group[200];
		const struct cm_ca *ca;

		segment(t->name, tseg, sizeof(tseg));
		for(ca = t->cas; ca; ca = ca->next){
			struct cm_name *entry;

			cas++;
			snprintf(group, sizeof(group), "tenants/%s/cas/%.16s", tseg, ca->id);
			if((entry = set_add(&now, group)) == NULL){
				cm_log(CM_LOG_WARNING, "metrics: out of memory");
				continue;
			}
			publish_ca(group, ca, set_find(st->metric_cas, group), entry);
		}
	}
	metric("tenants/count", cm_store_tenant_count(st->store));
	if(st->fleet){
		/* The revision of etcd's state this node has applied: equal on
		 * every node once they have converged. */
		metric("fleet/applied_revision", (unsigned long long)cm_fleet_applied(st));
		metric("fleet/etcd_connected", cm_fleet_connected(st));
	}
	metric("cas/count", cas);
	HASH_ITER(hh, st->metric_cas, n, tmp){
		if(!set_has(now, n->key)){
			for(i = 0; i < (int)(sizeof(ca_metrics) / sizeof(ca_metrics[0])); i++){
				char topic[512];
				snprintf(topic, sizeof(topic), PREFIX "%s/%s", n->key, ca_metrics[i]);
				publish(topic, "", true);
			}
		}
	}
	set_free(&st->metric_cas);
	st->metric_cas = now;
}

/* An event for each certificate in its expiry-warning window that was not
 * in it at the last look. */
static void announce_expiring(struct cm_state *st, time_t now)
{
	cJSON *list = cm_status_expiring(st, now), *e;
	struct cm_name *seen = NULL;

	cJSON_ArrayForEach(e, list){
		const cJSON *slot = cJSON_GetObjectItemCaseSensitive(e, "slot"), *tenant = cJSON_GetObjectItemCaseSensitive(e, "tenant");
		const cJSON *id = cJSON_GetObjectItemCaseSensitive(e, "id");
		char key[200];

		snprintf(key, sizeof(key), "%s/%s", slot ? slot->valuestring : tenant->valuestring, id->valuestring);
		if(set_add(&seen, key) == NULL){
			break;
		}
		if(!set_has(st->expiry_announced, key)){
			cm_event(st, "expiryWarning", cJSON_Duplicate(e, true));
		}
	}
	cJSON_Delete(list);
	set_free(&st->expiry_announced);
	st->expiry_announced = seen;
}

void cm_metrics_tick(struct cm_state *st, time_t now)
{
	time_t every = st->sys_interval > 0 ? st->sys_interval : 60;

	if(st->metrics_published && now - st->metrics_published < every){
		return;
	}
	st->metrics_published = now;
	announce_expiring(st, now);
	if(st->sys_interval > 0){
		publish_all(st);
	}
}

void cm_event(struct cm_state *st, const char *event, cJSON *fields)
{
	char *text;

	(void)st;
	if(fields == NULL){
		return;
	}
	if(cJSON_AddStringToObject(fields, "event", event) && cm_json_add_time(fields, "time", time(NULL))
			&& (text = cJSON_PrintUnformatted(fields)) != NULL){
		/* The NUL ends each held event. */
		if(st->events_held == 0 || !cm_text_append(&st->held_events, text, strlen(text) + 1)){
			publish(CM_EVENTS_TOPIC, text, false);
		}
		free(text);
	}
	cJSON_Delete(fields);
}

void cm_events_hold(struct cm_state *st)
{
	st->events_held++;
}

void cm_events_release(struct cm_state *st)
{
	const char *p;

	if(st->events_held == 0 || --st->events_held > 0){
		return;
	}
	for(p = st->held_events.s; p && p < st->held_events.s + st->held_events.len; p += strlen(p) + 1){
		publish(CM_EVENTS_TOPIC, p, false);
	}
	cm_text_free(&st->held_events);
}

void cm_metrics_cleanup(struct cm_state *st)
{
	cm_text_free(&st->held_events);
	set_free(&st->metric_cas);
	set_free(&st->expiry_announced);
}
