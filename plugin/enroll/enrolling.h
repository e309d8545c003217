#ifndef CM_ENROLLING_H
#define CM_ENROLLING_H
/* Devices get and renew their certificates over MQTT (DESIGN.md 10): a
 * request with a CSR on CM_ENROLL_TOPIC, the answer to the asking
 * connection only on CM_ENROLL_RESPONSE_TOPIC. The tenant's issuing CA
 * signs, on the worker thread; its CRL, issued here, is enforced as the
 * CA's CRL and published to plugin_opt_enroll_crl_dir. Broker thread
 * only, but for the work handed to the worker. */

#include <stdbool.h>
#include <time.h>

#include <openssl/x509.h>

#include "error.h"
#include "state.h"

/* MOSQ_EVT_CONTROL on CM_ENROLL_TOPIC. */
int cm_enroll_cb(int event, void *event_data, void *userdata);
/* Issues the CRLs that are due (a revocation's time has come, or the last
 * one is half way to its nextUpdate). */
void cm_enroll_tick(struct cm_state *st, time_t now);
/* The connection client (struct mosquitto *) is gone: answers of the work
 * it started are dropped. */
void cm_enroll_forget_client(struct cm_state *st, const void *client);
void cm_enroll_cleanup(struct cm_state *st);

/* Ends the work of cm_enroll_sign: rc CM_OK and the chain (PEM, leaf
 * first; borrowed) and leaf, or the error. aborted: shutting down,
 * free ctx only. */
typedef void (*cm_enroll_signed_fn)(struct cm_state *st, void *ctx, enum cm_rc rc, const char *chain, X509 *leaf,
		const struct cm_err *err, bool aborted);
/* Signs a certificate for the key of req (checked by the caller) and
 * identity ident with tenant's issuing CA, on the worker. On failure
 * done is not called. */
CM_MUST_CHECK enum cm_rc cm_enroll_sign(struct cm_state *st, const struct cm_tenant *tenant, const char *ident, X509_REQ *req,
		cm_enroll_signed_fn done, void *ctx, struct cm_err *err);

/* Ends cm_enroll_issue_crl: the CRL is in force (rc CM_OK) or why not. */
typedef void (*cm_enroll_crl_fn)(struct cm_state *st, void *ctx, enum cm_rc rc, const struct cm_err *err, bool aborted);
/* Issues tenant's issuing CA's CRL anew (signed on the worker), installs
 * it as that CA's CRL and commits it (audit line "<who> | <command>"),
 * then writes its public copy. done may be NULL; on failure it is not
 * called. */
CM_MUST_CHECK enum cm_rc cm_enroll_issue_crl(struct cm_state *st, const char *tenant, const char *who, const char *command,
		cm_enroll_crl_fn done, void *ctx, struct cm_err *err);

/* Writes the public copy of tenant's issuing CA's CRL to
 * plugin_opt_enroll_crl_dir (<dir>/<tenant>.crl), when that is set. */
void cm_enroll_publish_crl(const struct cm_state *st, const char *tenant);

/* Publishes an answer (fields, taken) to the claim device clientid of
 * tenant if it is connected: a decision made while it waits. */
void cm_enroll_push(struct cm_state *st, const char *tenant, const char *clientid, cJSON *fields);

/* The counts of the metrics, and an event "enrollment" with outcome
 * (issued, renewed, pending, refused). */
void cm_enroll_count(struct cm_state *st, const char *outcome, const char *tenant, const char *clientid, const char *ident,
		const char *reason);

#endif
