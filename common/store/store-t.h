#ifndef CM_STORE_T_H
#define CM_STORE_T_H
/* Types of the store in memory. Structs only (functions: store.h).
 *
 * struct cm_store is public because plugin/ reads its hash tables and
 * slots directly; new code should use store.h's functions. */

#include <stdint.h>

#include <openssl/x509.h>
#include <uthash.h>

#include "slot-t.h"
#include "tenant-t.h"

struct cm_sni_entry {
	char *host;
	struct cm_tenant *tenant; /* borrowed */
	UT_hash_handle hh;
};

struct cm_store {
	char *dir;
	int schema;
	uint64_t generation;
	struct cm_slot slots[CM_SLOT_COUNT];
	struct cm_tenant *tenants;  /* by name */
	struct cm_sni_entry *sni;   /* host name (or "*.rest") to tenant */
	X509 *admin_ca;
	/* Keys encrypted at rest with this passphrase; NULL: plain, 0600. */
	char *key_passphrase;
	struct cm_server_cert *placeholder; /* the listener files' then */
};

#endif
