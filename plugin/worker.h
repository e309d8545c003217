#ifndef CM_WORKER_H
#define CM_WORKER_H
/* One worker thread for the work that would stall the broker: verifying
 * and indexing a large CRL, decrypting an uploaded key, generating a
 * large RSA key. A job's work runs there and calls plain OpenSSL code,
 * never a mosquitto_* function, logging included; its done runs later on
 * the broker thread, from the tick (cm_worker_drain). */

#include <stdbool.h>
#include <stddef.h>
#include <time.h>

#include <openssl/x509.h>

#include "crl.h"
#include "error.h"

struct cm_state;

typedef void (*cm_work_fn)(void *arg);
/* aborted: shutting down; free arg and do nothing else. */
typedef void (*cm_work_done_fn)(struct cm_state *st, void *arg, bool aborted);

CM_MUST_CHECK enum cm_rc cm_worker_start(struct cm_state *st, struct cm_err *err);
CM_MUST_CHECK enum cm_rc cm_worker_submit(struct cm_state *st, cm_work_fn work, cm_work_done_fn done, void *arg, struct cm_err *err);
void cm_worker_drain(struct cm_state *st);
void cm_worker_stop(struct cm_state *st);

/* Called on the broker thread with the CRL (the callee owns it) or the
 * error. aborted: shutting down; free ctx only. */
typedef void (*cm_worker_done_fn)(struct cm_state *st, void *ctx, struct cm_crl *crl, enum cm_rc rc, const char *error, bool aborted);

/* cm_crl_load(body, ...) on the worker; takes body (malloc'd); issuer is
 * up-ref'd for the job. With write_path, the accepted CRL is also written
 * there (atomically) by the worker and its DER dropped from memory: a
 * large file's fsync must not stall the broker either. */
CM_MUST_CHECK enum cm_rc cm_worker_load_crl(struct cm_state *st, unsigned char *body, size_t len, size_t max_len, X509 *issuer,
		time_t now, const char *write_path, cm_worker_done_fn done, void *ctx, struct cm_err *err);

#endif
