#ifndef CM_FLEET_H
#define CM_FLEET_H
/* The etcd back end (plugin_opt_store etcd, docs/FLEET.md): many broker
 * nodes share one state. etcd holds, under the prefix,
 *
 *   tenants/<name>     a record (record.h) of tenants/<name>/: every file
 *                      the tenant has, whatever its fields are
 *   admin              a record of the admin CA (ca.pem, ca.key encrypted)
 *   blobs/<sha>/<i>    the chunks of large files (CRLs) the records name
 *   nodes/<node>       each node's view, bound to its lease
 *   rejected/<node>    each node's rejected list, bound to its lease
 *
 * A change is one transaction that compares the revision the tenant was
 * staged on; every node (the one that made it too) applies it from its
 * watch. Two threads of this module talk to etcd (the watch, and the
 * requests); the broker thread only hands them work and takes their
 * results at the tick: it never waits for etcd. The store directory is
 * the node's cache: a node restarted without etcd serves from it. */

#include <stdbool.h>
#include <stdint.h>

#include <cjson/cJSON.h>

#include "error.h"
#include "state.h"

/* The end of a command's change: rc CM_OK (committed in etcd at
 * revision), or the error (err) the command answers. owner is what
 * st->commit_owner was when the change was handed on. */
typedef void (*cm_fleet_done_fn)(struct cm_state *st, void *owner, enum cm_rc rc, const struct cm_err *err);

/* With plugin_opt_store etcd: brings the store up to etcd's state (at
 * start, the broker serves nothing yet: waits at most a few seconds for
 * etcd, then goes on from the local cache), starts the threads and makes
 * itself the registry's back end. May reopen st->store (a new admin CA). */
CM_MUST_CHECK enum cm_rc cm_fleet_start(struct cm_state *st, cm_fleet_done_fn done, struct cm_err *err);

/* Broker thread, each tick: applies what the watch received, ends the
 * commands whose transactions returned, refreshes this node's view. */
void cm_fleet_tick(struct cm_state *st);

/* Stops the threads and frees everything; accepts no fleet. */
void cm_fleet_stop(struct cm_state *st);

/* The revision of etcd's tenants this node has applied (0: none). */
int64_t cm_fleet_applied(const struct cm_state *st);
/* True while this node reaches etcd (writes are accepted). */
bool cm_fleet_connected(const struct cm_state *st);

/* getStatus's "fleet" object; listNodes' array of nodes (both the
 * caller's). */
cJSON *cm_fleet_status_json(const struct cm_state *st);
cJSON *cm_fleet_nodes_json(const struct cm_state *st);
/* The other nodes' rejected lists as last read (an array of
 * {"node":..., "rejected":[...]}), the caller's. */
cJSON *cm_fleet_rejected_json(const struct cm_state *st);

#endif
