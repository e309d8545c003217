#ifndef CM_AUDIT_H
#define CM_AUDIT_H
/* Fleet audits: what the inventory, the trust lists and the connected
 * devices say that an operator should act on. A read-only view, like
 * status.h: run by auditFleet and, once a day, from the tick (whose
 * counts are the $SYS audit metrics). */

#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include <cjson/cJSON.h>

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

/* The findings, an array of {"finding", "tenant", "devices" or "cas",
 * ...}; counts gets the number of each kind, *truncated whether some
 * were left out of the array. NULL when out of memory. */
cJSON *cm_audit_run(struct cm_state *st, const struct cm_audit_options *o, time_t now, uint64_t counts[CM_FINDING_COUNT],
		bool *truncated);

#endif
