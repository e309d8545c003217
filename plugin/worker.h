#ifndef CM_WORKER_H
#define CM_WORKER_H
/* One worker thread for the work that would stall the broker: verifying
 * and indexing a large CRL. It runs plain OpenSSL code and never calls a
 * mosquitto_* function, logging included: its results, errors too, are
 * handed back and applied on the broker thread by cm_worker_drain (from
 * the tick). */

#include <stddef.h>
#include <time.h>

#include <openssl/x509.h>

#include "crl.h"
#include "error.h"

struct cm_state;

/* Called on the broker thread with the CRL (the callee owns it) or the
 * error. aborted: shutting down; free ctx only. */
typedef void (*cm_worker_done_fn)(struct cm_state *st, void *ctx, struct cm_crl *crl, enum cm_rc rc, const char *error, bool aborted);

CM_MUST_CHECK enum cm_rc cm_worker_start(struct cm_state *st, struct cm_err *err);
/* Queues cm_crl_load(body, ...) for the worker; takes body (malloc'd).
 * issuer is up-ref'd for the job. With write_path, the accepted CRL is
 * also written there (atomically) by the worker, and its DER dropped from
 * memory: a large file's fsync must not stall the broker either. */
CM_MUST_CHECK enum cm_rc cm_worker_load_crl(struct cm_state *st, unsigned char *body, size_t len, size_t max_len, X509 *issuer,
		time_t now, const char *write_path, cm_worker_done_fn done, void *ctx, struct cm_err *err);
void cm_worker_drain(struct cm_state *st);
void cm_worker_stop(struct cm_state *st);

#endif
