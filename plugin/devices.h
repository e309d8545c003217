#ifndef CM_DEVICES_H
#define CM_DEVICES_H
/* The life of the inventory (inventory.h): opened from the store at
 * start, written in batches from the tick by the worker (the broker
 * thread only copies it), flushed at stop. Broker thread only. */

#include <time.h>

#include "error.h"
#include "state.h"

/* How often, at most, the inventory is written, and how many records a
 * tick copies for it (a step of its snapshot: a few milliseconds). */
#define CM_INVENTORY_SAVE_INTERVAL 30
#define CM_INVENTORY_SNAPSHOT_STEP 20000

/* A new inventory of plugin_opt_devices_max, with what the store's file
 * holds (a damaged file is reported and replaced at the next save). */
CM_MUST_CHECK enum cm_rc cm_devices_open(struct cm_state *st, struct cm_err *err);
/* From the tick: when the inventory changed and the last write is
 * CM_INVENTORY_SAVE_INTERVAL old, takes a snapshot, a step a tick, and
 * hands it to the worker to write. */
void cm_devices_tick(struct cm_state *st, time_t now);
/* Writes the inventory now, on this thread, if it changed (plugin stop,
 * after the worker stopped). */
void cm_devices_flush(struct cm_state *st);

#endif
