#ifndef CM_REJECTED_H
#define CM_REJECTED_H
/* Client chains refused at the handshake, kept for an operator to look at
 * and trust later: bounded, deduplicated by the chain as the client sent
 * it (a chain is not proof of anything: anyone can send a device's public
 * leaf under a root of their own), kept in memory
 * and written to <store>/rejected.json in batches (a flood of bad
 * handshakes costs no disk write each). */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include <cjson/cJSON.h>
#include <openssl/x509.h>
#include <uthash.h>

#include "error.h"
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

/* A new empty list holding at most max entries; NULL when out of memory. */
struct cm_rejected_list *cm_rejected_new(size_t max);
void cm_rejected_free(struct cm_rejected_list **list);

/* Records a refused chain (leaf first; the stack is copied, certificates
 * up-ref'd, at most CM_REJECTED_MAX_CHAIN). A known chain updates its
 * entry; a full list forgets the entry seen longest ago. */
void cm_rejected_record(struct cm_rejected_list *list, STACK_OF(X509) *chain, const char *reason,
		const char *sni, const char *tenant, const char *address, time_t now);

struct cm_rejected *cm_rejected_find(struct cm_rejected_list *list, const char *id);
void cm_rejected_remove(struct cm_rejected_list *list, const char *id);
void cm_rejected_clear(struct cm_rejected_list *list);
size_t cm_rejected_count(const struct cm_rejected_list *list);

/* Writes <dir>/rejected.json atomically and clears dirty. */
CM_MUST_CHECK enum cm_rc cm_rejected_save(struct cm_rejected_list *list, const char *dir, struct cm_err *err);
/* Reads <dir>/rejected.json if there is one; a damaged file is an error
 * and leaves the list empty. */
CM_MUST_CHECK enum cm_rc cm_rejected_load(struct cm_rejected_list *list, const char *dir, struct cm_err *err);

#endif
