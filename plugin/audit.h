#ifndef CM_AUDIT_H
#define CM_AUDIT_H
/* Fleet audits: what the inventory, the trust lists and the connected
 * devices say that an operator should act on. A read-only view, like
 * status.h: run by auditFleet and, once a day, from the tick (whose
 * counts are the $SYS audit metrics). */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include <cjson/cJSON.h>

#include "error.h"
#include "state.h"
#include "types.h"

struct cm_audit_options {
	const char *tenant;      /* NULL: every tenant */
	int expiring_days;       /* the window of certificates expiring */
	int seen_days;           /* devices seen within it are audited for expiry */
	size_t max_per_finding;  /* findings of each kind in the answer (all are counted) */
};

/* The name of a finding in the API ("expiringCertificate") and in the
 * metrics ("expiring_certificates"). */
const char *cm_finding_name(enum cm_finding f);
const char *cm_finding_metric(enum cm_finding f);

/* The end of an audit, on the broker thread (from a tick): findings, an
 * array of {"finding", "tenant", "devices" or "cas", ...} the callee
 * takes, or NULL (out of memory, err says so); counts, the number of
 * each kind; truncated, whether some were left out of the array. */
typedef void (*cm_audit_done_fn)(struct cm_state *st, void *ctx, cJSON *findings, const uint64_t counts[CM_FINDING_COUNT],
		bool truncated, const struct cm_err *err);

/* Records (a snapshot's) copied a tick for an audit. */
#define CM_AUDIT_SNAPSHOT_STEP 20000

/* Starts an audit: the trust lists' and the connected devices' findings
 * now, the inventory's on the worker over a snapshot taken a step a tick
 * (its sort of a million devices by fingerprint is no pause of the broker
 * thread); done is called when all are in. o->tenant is copied. */
CM_MUST_CHECK enum cm_rc cm_audit_start(struct cm_state *st, const struct cm_audit_options *o, cm_audit_done_fn done, void *ctx,
		struct cm_err *err);
/* From the tick: the next step of each audit's snapshot. */
void cm_audit_tick(struct cm_state *st);
/* Drops the audits under way, their done not called (plugin stop, after
 * the worker stopped). */
void cm_audit_cleanup(struct cm_state *st);

#endif
