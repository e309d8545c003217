#ifndef CM_STATUS_H
#define CM_STATUS_H
/* Read-only views of the store for getStatus, the metrics and the daily
 * log. Below the control layer: it calls nothing of control, crl or
 * metrics. */

#include <time.h>

#include <cjson/cJSON.h>

#include "state.h"

/* Certificates (server, CA, pinned) that expire within the warning
 * window, and tenant host names their served certificate does not cover:
 * for getStatus and the daily log. */
cJSON *cm_status_expiring(struct cm_state *st, time_t now);
cJSON *cm_status_hostname_warnings(struct cm_state *st);

/* A CA of one tenant with a CA at or above it trusted by another tenant
 * (the same CA, or one that issued it): the devices it issued log in to
 * the other tenant too, their certificates naming no tenant. Each pair as
 * {tenant, ca, alsoTrustedBy, via, warning}; with tenant, only the pairs
 * that tenant's CA id is part of. NULL when out of memory. */
cJSON *cm_status_shared_cas(struct cm_state *st, const char *tenant, const char *id);
/* Adds data.warnings, the pairs of tenant's CA id, when there are any. */
void cm_status_add_ca_warnings(struct cm_state *st, const char *tenant, const char *id, cJSON *data);

#endif
