#ifndef CM_STORE_T_H
#define CM_STORE_T_H
/* Types of the store in memory that its users see. Structs only
 * (functions: store.h). struct cm_store itself is opaque: its fields are
 * in store-int.h, for the files of store/ alone; users read it through
 * store.h's lookups and iterators. */

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

/* Opaque; its fields are in store-int.h. */
struct cm_store;

struct cm_name_bucket {
	unsigned long hash;
	struct cm_ca_ref *v;
	size_t n, cap;
	UT_hash_handle hh;
};

#endif
