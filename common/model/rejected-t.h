#ifndef CM_REJECTED_T_H
#define CM_REJECTED_T_H
/* The rejected-chains list's types (functions: rejected.h). */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include <openssl/x509.h>
#include <uthash.h>

#include "pki.h"
#include "sni.h"
#include "tenant-t.h"

/* Certificates of a sent chain that are kept, leaf first. */
#define CM_REJECTED_MAX_CHAIN 10

struct cm_rejected {
	char id[CM_ID_LEN + 1];      /* of the chain kept (cm_pki_chain_id) */
	char leaf_id[CM_ID_LEN + 1];
	char reason[128];
	char sni[CM_HOSTNAME_MAX + 1];
	char tenant[CM_TENANT_NAME_MAX + 1];
	char address[64];
	time_t first_seen, last_seen;
	uint64_t count;
	/* As the client sent it, leaf first, its first CM_REJECTED_MAX_CHAIN
	 * certificates; never changes once recorded. */
	STACK_OF(X509) *chain;
	UT_hash_handle hh;
};

struct cm_rejected_list {
	struct cm_rejected *entries;
	size_t max;
	bool dirty;
};

#endif
