#ifndef CM_SECRET_H
#define CM_SECRET_H
/* plugin_opt_<slot>_secret_dir: a slot that takes its certificate from a
 * directory in the layout of a Kubernetes TLS Secret or cert-manager's
 * (tls.crt: the chain, leaf first; tls.key; optionally ca.crt), which the
 * kubelet updates by swapping its ..data symlink. Read-only: the files
 * are looked at before each handshake and a new pair serves from the next handshake;
 * a pair that does not load (half-written, key and certificate apart,
 * expired) is logged and the one before it goes on serving. Broker thread
 * only. */

#include <time.h>

#include "error.h"
#include "state.h"

/* Loads each slot's Secret directory; one that does not load refuses the
 * start. */
CM_MUST_CHECK enum cm_rc cm_secret_start(struct cm_state *st, struct cm_err *err);
/* Reads the slot's directory again when its files changed: called before
 * each handshake the slot serves (a few stat calls), so that a new pair
 * serves from the next one. */
void cm_secret_check(struct cm_state *st, enum cm_slot_id slot);
/* The same for every slot, once a second. */
void cm_secret_tick(struct cm_state *st, time_t now);

#endif
