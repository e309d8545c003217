#ifndef CM_STORE_T_H
#define CM_STORE_T_H
/* Types of the store in memory. Structs only (functions: store.h).
 *
 * struct cm_store is public because plugin/ reads it directly: the tenants
 * table (auth.c, cmd_status.c, cmd_tenants.c, metrics.c, refresh.c), the
 * slots' lists (cmd_csr.c, cmd_server.c, cmd_status.c, tls_hook.c), the
 * admin CA (auth.c, tls_hook.c) and the generation (cmd_status.c,
 * metrics.c). New code uses store.h's readers (cm_store_first_tenant,
 * cm_store_slot_certs, ...); once plugin/ does too, the struct can move
 * into store-int.h. */

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

/* The CAs (pins and issuer entries included) of every tenant whose
 * subject or issuer has one name hash (X509_NAME_hash_ex, as
 * X509_subject_name_hash gives it): the CAs related to one are found
 * without a walk over all tenants. Kept with the tenants by
 * cm_store_put_tenant and cm_store_delete_tenant; a CA is in the bucket
 * of its subject and in that of its issuer (once when they are one). */
struct cm_ca_ref {
	const struct cm_tenant *tenant;
	const struct cm_ca *ca;
};

struct cm_name_bucket {
	unsigned long hash;
	struct cm_ca_ref *v;
	size_t n, cap;
	UT_hash_handle hh;
};

struct cm_store {
	char *dir;
	int schema;
	uint64_t generation;
	struct cm_slot slots[CM_SLOT_COUNT];
	struct cm_tenant *tenants;  /* by name */
	struct cm_tenant *orgs;     /* the same, by org id (hh_org) */
	struct cm_sni_entry *sni;
	struct cm_name_bucket *names; /* CAs by name hash (struct cm_name_bucket) */   /* host name (or "*.rest") to tenant */
	X509 *admin_ca;
	/* Keys encrypted at rest with this passphrase; NULL: plain, 0600. */
	char *key_passphrase;
	struct cm_server_cert *placeholder; /* the listener files' then */
	/* A slot served from a Kubernetes Secret's directory (read-only, not
	 * written to the store): served instead of the default. */
	struct cm_server_cert *secret[CM_SLOT_COUNT];
};

#endif
