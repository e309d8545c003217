#ifndef CM_SLOT_H
#define CM_SLOT_H
/* A slot's entries in memory: names, creation, freeing. What the store
 * does with them is in store.h. */

#include <stdbool.h>

#include <openssl/evp.h>
#include <openssl/x509.h>

#include "error.h"
#include "slot-t.h"

/* "mqtt", "websockets", "bridge". */
const char *cm_slot_name(enum cm_slot_id slot);
/* The slot of that name, or -1. */
int cm_slot_parse(const char *name);

/* A new entry for leaf (extra: intermediates, may be NULL) and key; takes
 * its own references. The caller frees it with cm_server_cert_free unless
 * a store took it. */
CM_MUST_CHECK enum cm_rc cm_server_cert_new(X509 *leaf, STACK_OF(X509) *extra, EVP_PKEY *key, const char *description, bool builtin,
		struct cm_server_cert **out, struct cm_err *err);
/* Both free and set the pointer to NULL; they accept NULL and *p NULL. */
void cm_server_cert_free(struct cm_server_cert **cert);
void cm_csr_free(struct cm_csr **csr);

#endif
