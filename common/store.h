#ifndef CM_STORE_H
#define CM_STORE_H
/* The store: one directory of PEM files and metadata JSON (DESIGN.md 5).
 *
 *   store.json                     {"schema":1,"generation":N}
 *   slots/<slot>/slot.json         the slot's certificates and its default
 *   slots/<slot>/<id>.crt          certificate chain, leaf first
 *   slots/<slot>/<id>.key          private key, PKCS#8 PEM, 0600
 *   listener/<slot>.crt, .key      copy of the slot's default, for the
 *                                  listener's certfile/keyfile
 *
 * Content files are named by the certificate's id, so they are written
 * before the metadata that names them; the metadata's atomic rename is the
 * commit point of a change. A file nobody names is ignored. The store's
 * generation is the highest generation of store.json and of every metadata
 * file, so a crash between a metadata write and the store.json bump loses
 * nothing. */

#include <stdbool.h>
#include <stdint.h>
#include <time.h>

#include <openssl/evp.h>
#include <openssl/x509.h>

#include "error.h"
#include "pki.h"

#define CM_STORE_SCHEMA 1
/* No file of the store is legitimately larger than this. */
#define CM_STORE_MAX_FILE (1024 * 1024)

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

struct cm_slot {
	struct cm_server_cert *certs;
	struct cm_server_cert *def; /* borrowed: one of certs */
	uint64_t generation;
};

struct cm_store {
	char *dir;
	int schema;
	uint64_t generation;
	struct cm_slot slots[CM_SLOT_COUNT];
};

/* "mqtt", "websockets", "bridge". */
const char *cm_slot_name(enum cm_slot_id slot);
/* The slot of that name, or -1. */
int cm_slot_parse(const char *name);

/* Opens the store in dir, creating dir (mode 0700; its parent must exist)
 * and a fresh store when it holds no store.json: for each slot a built-in
 * self-signed EC P-256 certificate for hostname (SubjectAltNames hostname
 * and localhost), made default. An existing store is validated completely
 * before anything is written; a corrupt one is refused (CM_ERR_CORRUPT)
 * and one from a newer certmgr too (CM_ERR_NEWER), with err naming the
 * file, and the directory is left untouched. Then the listener files are
 * brought up to date. *created tells whether a fresh store was made.
 * The caller frees *out with cm_store_free. */
CM_MUST_CHECK enum cm_rc cm_store_open(const char *dir, const char *hostname, struct cm_store **out, bool *created, struct cm_err *err);

/* Reads and validates the store without writing anything. */
CM_MUST_CHECK enum cm_rc cm_store_load(const char *dir, struct cm_store **out, struct cm_err *err);

/* Writes listener/<slot>.crt and .key for every slot whose files differ
 * from its default. */
CM_MUST_CHECK enum cm_rc cm_store_write_listener_files(const struct cm_store *store, struct cm_err *err);

/* Frees the store and sets *store to NULL; accepts NULL and *store NULL. */
void cm_store_free(struct cm_store **store);

/* The default certificate of a slot (borrowed). */
const struct cm_server_cert *cm_store_slot_default(const struct cm_store *store, enum cm_slot_id slot);

#endif
