#ifndef CM_SLOT_T_H
#define CM_SLOT_T_H
/* Types of a slot: the server certificates and pending CSRs of one kind of
 * listener. Structs and enums only (functions: slot.h). */

#include <stdbool.h>
#include <stdint.h>
#include <time.h>

#include <openssl/evp.h>
#include <openssl/x509.h>

#include "pki.h"

enum cm_slot_id {
	CM_SLOT_MQTT,
	CM_SLOT_WEBSOCKETS,
	CM_SLOT_BRIDGE,
	CM_SLOT_COUNT
};

struct cm_server_cert {
	char id[CM_ID_LEN + 1];
	char *description;
	bool builtin;
	time_t added;
	X509 *leaf;
	STACK_OF(X509) *extra; /* intermediates, never NULL */
	EVP_PKEY *key;
	struct cm_server_cert *next;
};

/* A pending certificate signing request and its key. */
struct cm_csr {
	char id[CM_ID_LEN + 1]; /* SHA-256 of the CSR's DER */
	X509_REQ *req;
	EVP_PKEY *key;
	time_t created;
	bool reused_key;
	struct cm_csr *next;
};

struct cm_slot {
	struct cm_server_cert *certs;
	struct cm_csr *csrs;
	struct cm_server_cert *def; /* borrowed: one of certs */
	uint64_t generation;
};

#endif
