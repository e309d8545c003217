#ifndef CM_INVENTORY_H
#define CM_INVENTORY_H
/* The devices this node admitted, per tenant: the certificate each one
 * used last (fingerprint, serial, issuer, notAfter, key, signature
 * algorithm), when it was first and last seen, whether it is connected,
 * how many certificates it has used, its last refusal. Bounded (a full
 * inventory forgets a device not connected and seen long ago), kept in
 * memory in fixed-size records with interned tenant and issuer names,
 * and written to <store>/devices.tsv in batches (inventory_file.c), never
 * at each handshake. Broker thread only; the file functions run on
 * either thread. */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include <openssl/x509.h>

#include "error.h"
#include "identity.h"
#include "pki.h"
#include "tenant-t.h"

#define CM_FP_LEN 32
#define CM_SERIAL_MAX 20
/* Interned names: an index into the inventory's table; NONE: unknown. */
#define CM_INV_NONE 0xffff
#define CM_INV_NAMES_MAX 0xfffe
/* The earlier certificates a record remembers (by the first 8 bytes of
 * their fingerprint) to count distinct ones. */
#define CM_INV_PREV 3
/* Clones kept (an id admitted with a certificate while connected with
 * another). */
#define CM_INV_CLONES_MAX 1024
#define CM_INVENTORY_FILE "devices.tsv"

enum cm_pubkey_type {
	CM_KEY_TYPE_UNKNOWN,
	CM_KEY_TYPE_RSA,
	CM_KEY_TYPE_EC,
	CM_KEY_TYPE_ED25519,
	CM_KEY_TYPE_ED448,
	CM_KEY_TYPE_DSA,
	CM_KEY_TYPE_COUNT
};

/* What a certificate says of itself, as the inventory keeps it. */
struct cm_cert_facts {
	unsigned char fp[CM_FP_LEN]; /* SHA-256 of the DER: the certificate's id */
	unsigned char serial[CM_SERIAL_MAX];
	uint8_t serial_len;          /* 0: longer than CM_SERIAL_MAX, not kept */
	uint8_t key_type;            /* enum cm_key_type */
	uint16_t key_bits;
	uint16_t sig_nid;            /* the signature algorithm's NID */
	int64_t not_after;
};

/* One device; 128 bytes and its id. */
struct cm_device {
	struct cm_device *next;      /* hash chain */
	struct cm_cert_facts cert;   /* the certificate used last */
	uint64_t prev[CM_INV_PREV];  /* earlier certificates (8-byte prefixes), 0: none */
	uint32_t pos;                /* in the inventory's order */
	uint32_t first_seen, last_seen, refused_at;
	uint16_t tenant;             /* interned */
	uint16_t issuer;             /* interned CA id, CM_INV_NONE: unknown */
	uint16_t connected;          /* connections open now on this node */
	uint16_t certs;              /* distinct certificates seen */
	uint8_t refusal;             /* enum cm_refusal + 1 of the last refusal; 0: none */
	uint8_t id_len;
	char id[];                   /* the client id, NUL-terminated */
};

/* An id seen with two certificates at once. */
struct cm_clone {
	uint16_t tenant;
	uint32_t at;
	unsigned char fp[2][CM_FP_LEN];
	char id[CM_IDENT_CLIENTID_MAX + 1];
};

/* Interned strings (tenant names, CA ids). */
struct cm_names {
	char (*v)[CM_ID_LEN + 1];
	size_t n, cap;
};

struct cm_inventory {
	size_t max;                  /* devices at most; 0: the inventory is off */
	size_t count;
	struct cm_device **buckets;
	size_t nbuckets;             /* a power of two */
	/* Every device, sorted by (tenant name, id) up to sorted_n; the ones
	 * added since follow; a forgotten one leaves a NULL (holes). */
	struct cm_device **order;
	size_t order_n, order_cap, sorted_n, holes;
	struct cm_names tenants, issuers;
	struct cm_clone clones[CM_INV_CLONES_MAX];
	size_t clone_n, clone_next;
	uint64_t dropped;            /* devices not recorded: full of connected ones */
	uint64_t rng;
	bool dirty;
};

/* A new inventory of at most max devices (0: off, records nothing); NULL
 * when out of memory. */
struct cm_inventory *cm_inventory_new(size_t max);
/* Frees inv and its records; accepts NULL and *inv NULL. */
/* Drops every record, keeping the bound (and the eviction's random
 * state); free also frees inv. */
void cm_inventory_empty(struct cm_inventory *inv);
void cm_inventory_free(struct cm_inventory **inv);

/* The facts of cert; false when its DER cannot be had. */
bool cm_cert_facts_of(X509 *cert, struct cm_cert_facts *out);

/* The record of (tenant, id), or NULL. */
struct cm_device *cm_inventory_find(struct cm_inventory *inv, const char *tenant, const char *id);

/* Records an admission of id in tenant with cert, issued by the CA of id
 * issuer ("" or NULL: unknown), now: the record (its connection counted)
 * or NULL when the inventory is off or full of connected devices. *clone
 * is set when the id was connected with another certificate. */
struct cm_device *cm_inventory_admit(struct cm_inventory *inv, const char *tenant, const char *id, const struct cm_cert_facts *cert,
		const char *issuer, time_t now, bool *clone);
/* A connection of dev counted by cm_inventory_admit ended. */
void cm_inventory_disconnected(struct cm_inventory *inv, struct cm_device *dev);
/* A refusal of a known device (an unknown one is not recorded). */
void cm_inventory_refused(struct cm_inventory *inv, const char *tenant, const char *id, int refusal, time_t now);

/* The tenant name and issuer CA id ("" unknown) of a record. */
const char *cm_inventory_tenant(const struct cm_inventory *inv, const struct cm_device *dev);
const char *cm_inventory_issuer(const struct cm_inventory *inv, const struct cm_device *dev);

/* Sorts what was added since the last call and closes the holes:
 * afterwards inv->order[0..order_n) is every device in order. */
CM_MUST_CHECK enum cm_rc cm_inventory_sort(struct cm_inventory *inv);
/* After cm_inventory_sort: the index of the first device of tenant whose
 * id starts with prefix ("" any). */
size_t cm_inventory_lower_bound(const struct cm_inventory *inv, const char *tenant, const char *prefix);

/* The record of (tenant, id), made (empty, not connected) if need be:
 * for the file loader. NULL when the inventory is off, full or out of
 * memory. */
struct cm_device *cm_inventory_put(struct cm_inventory *inv, const char *tenant, const char *id);

/* "rsa", "ec", "ed25519", "ed448", "dsa", "unknown"; and back (-1). */
const char *cm_key_type_name(int type);
int cm_key_type_parse(const char *name);

/* Interns name in names: its index, CM_INV_NONE when full or out of
 * memory. Inventory files use it too. */
uint16_t cm_names_intern(struct cm_names *names, const char *name);

/* The file: writes <dir>/devices.tsv atomically from a snapshot (any
 * thread), reads it back (plugin start; a damaged file is an error and
 * leaves inv empty). */
/* A copy of a record, in a snapshot. */
struct cm_snap_dev {
	struct cm_cert_facts cert;
	uint64_t prev[CM_INV_PREV];
	uint32_t first_seen, last_seen, refused_at;
	uint16_t tenant, issuer, certs;
	uint8_t refusal;
	size_t id_off;           /* of its id in ids */
};

/* A copy of the inventory, owned by whoever holds it: the worker writes
 * it (inventory_file.c) and audits it (audit.c). */
struct cm_inventory_snapshot {
	struct cm_snap_dev *devs;
	size_t n, cap;
	char *ids;
	size_t ids_len, ids_cap;
	struct cm_names tenants, issuers;
	struct cm_clone *clones;
	size_t clone_n;
	/* The walk: the next bucket of the hash table seen at the start; a
	 * table grown since starts the walk again. */
	struct cm_device **buckets;
	size_t nbuckets, bucket;
};

/* A copy of inv to write off the broker thread, taken in steps so that
 * the broker thread is not held for a million records at once: begin
 * (clears inv->dirty; NULL when out of memory), then steps of at most max
 * records each, between which inv may change (a record added meanwhile
 * may be left for the next snapshot, which its change makes dirty), until
 * a step answers 1 (complete); 0: more to take, -1: out of memory. */
struct cm_inventory_snapshot *cm_inventory_snapshot_begin(struct cm_inventory *inv);
int cm_inventory_snapshot_step(struct cm_inventory *inv, struct cm_inventory_snapshot *snap, size_t max);
/* All of it at once (plugin stop, tests); NULL when out of memory. */
struct cm_inventory_snapshot *cm_inventory_snapshot(struct cm_inventory *inv);
void cm_inventory_snapshot_free(struct cm_inventory_snapshot **snap);
CM_MUST_CHECK enum cm_rc cm_inventory_write(const struct cm_inventory_snapshot *snap, const char *dir, struct cm_err *err);
CM_MUST_CHECK enum cm_rc cm_inventory_load(struct cm_inventory *inv, const char *dir, struct cm_err *err);
/* Parses an inventory file's text into inv (the fuzz harness's entry). */
CM_MUST_CHECK enum cm_rc cm_inventory_parse(struct cm_inventory *inv, const char *text, size_t len, struct cm_err *err);

#endif
