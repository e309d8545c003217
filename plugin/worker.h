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

/* CRLs above this size are verified, indexed and written on the worker. */
#define CM_CRL_WORKER_THRESHOLD (512 * 1024)

/* A CRL checked against candidate issuers (cm_crl_check_issuers). */
struct cm_crl_check {
	struct cm_crl *crl; /* on success; whoever uses it takes it (NULLs it) */
	X509 *signer;       /* the candidate that signed it, or NULL; valid while the candidates are */
	char file[96];      /* the name it was written under in write_dir, "" for none */
	bool none_signed;   /* any_of, and no candidate signed it */
	enum cm_rc rc;
	struct cm_err err;
};

/* Verifies and indexes the CRL in body against the first of cands that
 * signed it. When none did: with any_of, none_signed; otherwise the
 * reason against the first of them. With write_dir (made if need be), an
 * accepted CRL is written there, under a name of its own
 * (cm_store_crl_file_name of its signer), and its DER dropped. Plain
 * OpenSSL and file calls: runs on either thread. */
void cm_crl_check_issuers(struct cm_crl_check *res, const unsigned char *body, size_t len, size_t max_len, STACK_OF(X509) *cands,
		bool any_of, time_t now, const char *write_dir);

/* On the broker thread, with the result (res->crl is freed after unless
 * taken; the signer is valid during the call). aborted: shutting down,
 * free ctx only. */
typedef void (*cm_worker_check_fn)(struct cm_state *st, void *ctx, struct cm_crl_check *res, bool aborted);

/* cm_crl_check_issuers on the worker; takes body (malloc'd), up-refs the
 * candidates. base64: body is base64 DER, decoded there first. On failure
 * body is freed and done is not called. */
CM_MUST_CHECK enum cm_rc cm_worker_check_crl(struct cm_state *st, unsigned char *body, size_t len, bool base64, size_t max_len,
		STACK_OF(X509) *cands, bool any_of, const char *write_dir, cm_worker_check_fn done, void *ctx, struct cm_err *err);

#endif
