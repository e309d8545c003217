#ifndef CM_REFRESH_H
#define CM_REFRESH_H
/* Keeping CRLs fresh: each CA's CRL is downloaded again before its
 * nextUpdate and at plugin_opt_crl_refresh_interval, with exponential
 * backoff and jitter after failures; the last good CRL stays in force.
 * A CRL going past its nextUpdate is acted on once: under fail-closed its
 * devices are disconnected, under fail-open a warning is logged at every
 * attempt. */

#include <time.h>

#include <cjson/cJSON.h>

#include "state.h"

/* From the tick: starts what is due, notices what went stale. */
void cm_refresh_tick(struct cm_state *st, time_t now);

/* The end of a download cm_refresh_now started: rc and err its outcome,
 * e the CA's live entry after a success (NULL otherwise). */
typedef void (*cm_refresh_done_fn)(struct cm_state *st, void *ctx, enum cm_rc rc, const struct cm_err *err, const struct cm_ca *e);

/* Downloads the CRL of a CA of a tenant now, on behalf of who (the name
 * of the audit line); done (may be NULL) is called with ctx when it
 * ends, unless the broker shuts down first. */
CM_MUST_CHECK enum cm_rc cm_refresh_now(struct cm_state *st, const char *who, const char *tenant, const char *ca_id, cm_refresh_done_fn done,
		void *ctx, struct cm_err *err);

/* Downloads, in the background, the CRL of a CA that has none from url
 * (the distribution point of a certificate it issued): the same path as a
 * refresh, large CRLs on the worker; on success the CA's CRL source is
 * "learned". */
CM_MUST_CHECK enum cm_rc cm_refresh_learn(struct cm_state *st, const struct cm_tenant *t, const struct cm_ca *e, const char *url, struct cm_err *err);

/* Where a CA's CRL is downloaded from, or NULL (an upload only). */
const char *cm_refresh_url(const struct cm_ca *ca, char *buf, size_t len);

/* The CRL health of every CA that has one or could have one, for getStatus. */
cJSON *cm_refresh_health(struct cm_state *st);

#endif
