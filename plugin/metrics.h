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

#include "verdict.h"

#define CM_EVENTS_TOPIC "$SYS/broker/certmgr/events"

struct cm_state;


void cm_metrics_accepted(struct cm_state *st);
void cm_metrics_refused(struct cm_state *st, enum cm_refusal why);

/* Publishes the metrics when sys_interval has passed, and an event for
 * each certificate that entered its expiry-warning window since. */
void cm_metrics_tick(struct cm_state *st, time_t now);

/* Publishes fields (taken, freed here) with "event" and "time" added. */
void cm_event(struct cm_state *st, const char *event, cJSON *fields);

void cm_metrics_cleanup(struct cm_state *st);

#endif
