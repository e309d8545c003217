#ifndef CM_METRICS_H
#define CM_METRICS_H
/* Metrics as retained messages under $SYS/broker/certmgr/, published at
 * the broker's sys_interval, named the way the common Mosquitto Prometheus
 * exporter turns $SYS topics into metric names (lower-case [a-z0-9_]
 * segments, base units, timestamps, _total counters); and events, one JSON
 * message each (not retained) on $SYS/broker/certmgr/events. Broker thread
 * only. */
#include <time.h>
#include <cjson/cJSON.h>

#include "types.h"

#define CM_EVENTS_TOPIC "$SYS/broker/certmgr/events"

struct cm_state;


/* The metrics' name of a refusal class ("blocked", "revoked", ...). */
const char *cm_metrics_refusal_name(enum cm_refusal why);

void cm_metrics_accepted(struct cm_state *st);
void cm_metrics_refused(struct cm_state *st, enum cm_refusal why);

/* Publishes the metrics when sys_interval has passed, and an event for
 * each certificate that entered its expiry-warning window since. */
void cm_metrics_tick(struct cm_state *st, time_t now);

/* Publishes fields (taken, freed here) with "event" and "time" added;
 * while a hold is in force, when the last hold is released. */
void cm_event(struct cm_state *st, const char *event, cJSON *fields);
/* Holds the events of a control request until it has run: the broker
 * keeps each published message in blocks of its own until the callback
 * returns, and thousands of them made between the tenants a bulk request
 * creates left the heap full of holes that slowed every handshake after
 * it (docs/BENCHMARKS.md, "just registered"). Held, they are one block,
 * published in order at the release. */
void cm_events_hold(struct cm_state *st);
void cm_events_release(struct cm_state *st);

void cm_metrics_cleanup(struct cm_state *st);

#endif
