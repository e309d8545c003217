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
#include "rejected-t.h"
#include "tenant-t.h"

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
