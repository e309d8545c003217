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
#include <openssl/x509_vfy.h>
#include <uthash.h>

#include "error.h"
#include "crl.h"
#include "pki.h"
#include "slot.h"
#include "store-t.h"
#include "tenant.h"

/* 1: slots only. 2: adds tenants/ and admin/ (the admin CA). */
#define CM_STORE_SCHEMA 2
/* No file of the store is legitimately larger than this. */
#define CM_STORE_MAX_FILE (1024 * 1024)
/* A CRL of millions of entries is tens of MB. */
#define CM_STORE_MAX_CRL (256 * 1024 * 1024)

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

/* The same with the slot and CSR keys encrypted at rest with pass (NULL:
 * plain): keys are written encrypted (a plain store is converted), and
 * the listener files hold a throwaway placeholder. */
CM_MUST_CHECK enum cm_rc cm_store_open_ex(const char *dir, const char *hostname, const char *pass, struct cm_store **out, bool *created, struct cm_err *err);

/* Reads and validates the store without writing anything. */
CM_MUST_CHECK enum cm_rc cm_store_load(const char *dir, struct cm_store **out, struct cm_err *err);
CM_MUST_CHECK enum cm_rc cm_store_load_ex(const char *dir, const char *pass, struct cm_store **out, struct cm_err *err);

/* A new, unique file name in crls/ for a CRL of CA ca_id, and the check
 * the loader makes of a name read from tenant.json. */
void cm_store_crl_file_name(const char *ca_id, char *buf, size_t len);
bool cm_store_crl_file_valid(const char *ca_id, const char *name);

/* Loads tenants/<name>/ of a loaded store's directory as the loader would,
 * checked against the other tenants, without adding it to the store. */
CM_MUST_CHECK enum cm_rc cm_store_check_tenant_dir(const struct cm_store *store, const char *name, struct cm_err *err);

/* Writes listener/<slot>.crt and .key for every slot whose files differ
 * from its default. */
CM_MUST_CHECK enum cm_rc cm_store_write_listener_files(const struct cm_store *store, struct cm_err *err);

/* Frees the store and sets *store to NULL; accepts NULL and *store NULL. */
void cm_store_free(struct cm_store **store);
/* Writes store.json if a change since the last call left it behind (at
 * the end of a request, on the tick, and by cm_store_free). */
void cm_store_sync(struct cm_store *store);

/* The CAs whose subject or issuer name hash is hash, or NULL: none. */
const struct cm_name_bucket *cm_store_cas_by_name(const struct cm_store *store, unsigned long hash);

/* The tenant whose org id is the len bytes at org, or NULL. */
const struct cm_tenant *cm_store_tenant_for_org(const struct cm_store *store, const char *org, size_t len);

/* The default certificate of a slot (borrowed). */
const struct cm_server_cert *cm_store_slot_default(const struct cm_store *store, enum cm_slot_id slot);

/* Reading the store (struct cm_store is opaque). All borrowed. Walk the tenants
 * with for(t = cm_store_first_tenant(s); t; t = cm_store_next_tenant(t)),
 * a slot's lists through their next pointers. */
uint64_t cm_store_generation(const struct cm_store *store);
X509 *cm_store_get0_admin_ca(const struct cm_store *store);
size_t cm_store_tenant_count(const struct cm_store *store);
const struct cm_tenant *cm_store_first_tenant(const struct cm_store *store);
const struct cm_tenant *cm_store_next_tenant(const struct cm_tenant *t);
const struct cm_server_cert *cm_store_slot_certs(const struct cm_store *store, enum cm_slot_id slot);
const struct cm_csr *cm_store_slot_csrs(const struct cm_store *store, enum cm_slot_id slot);

/* ===================================================================
 * Server certificates
 * =================================================================== */

const struct cm_server_cert *cm_store_find_server_cert(const struct cm_store *store, enum cm_slot_id slot, const char *id);

/* Each of these writes the files, then slot.json (the commit), and only
 * then changes memory; on failure nothing changed and the caller keeps
 * what it passed. The listener files follow the default. */
CM_MUST_CHECK enum cm_rc cm_store_add_server_cert(struct cm_store *store, enum cm_slot_id slot, struct cm_server_cert *cert, bool make_default, struct cm_err *err);
CM_MUST_CHECK enum cm_rc cm_store_set_default_server_cert(struct cm_store *store, enum cm_slot_id slot, const char *id, struct cm_err *err);
/* Refuses the default, the built-in one, and one a tenant names. */
CM_MUST_CHECK enum cm_rc cm_store_remove_server_cert(struct cm_store *store, enum cm_slot_id slot, const char *id, struct cm_err *err);
/* cert (builtin) replaces the slot's built-in certificate and becomes
 * the default. */
CM_MUST_CHECK enum cm_rc cm_store_replace_builtin(struct cm_store *store, enum cm_slot_id slot, struct cm_server_cert *cert, struct cm_err *err);

const struct cm_csr *cm_store_find_csr(const struct cm_store *store, enum cm_slot_id slot, const char *id);
/* Takes csr on success. */
CM_MUST_CHECK enum cm_rc cm_store_add_csr(struct cm_store *store, enum cm_slot_id slot, struct cm_csr *csr, struct cm_err *err);
CM_MUST_CHECK enum cm_rc cm_store_remove_csr(struct cm_store *store, enum cm_slot_id slot, const char *id, struct cm_err *err);
/* The CA's answer to a CSR: cert (made with the CSR's key) joins the
 * slot and the CSR leaves it, in one commit. Takes cert on success. */
CM_MUST_CHECK enum cm_rc cm_store_install_csr(struct cm_store *store, enum cm_slot_id slot, const char *csr_id, struct cm_server_cert *cert, bool make_default, struct cm_err *err);

/* The certificate of a slot served from a Secret directory: it serves
 * every tenant that names no certificate of its own, in place of the
 * default, and is never written. Takes cert (NULL: none); frees the one
 * it replaces. */
void cm_store_set_secret_cert(struct cm_store *store, enum cm_slot_id slot, struct cm_server_cert *cert);
const struct cm_server_cert *cm_store_secret_cert(const struct cm_store *store, enum cm_slot_id slot);

/* The certificate that serves a tenant's handshakes on a slot. */
const struct cm_server_cert *cm_store_served_cert(const struct cm_store *store, const struct cm_tenant *t, enum cm_slot_id slot);

/* The refresh bookkeeping of ca, an entry of a tenant of store: the one
 * part of the live state changed in place (it is not trust; see struct
 * cm_crl_schedule). */
struct cm_crl_schedule *cm_store_crl_schedule(struct cm_store *store, const struct cm_ca *ca);
const struct cm_tenant *cm_store_find_tenant(const struct cm_store *store, const char *name);

/* The tenant that serves a handshake with that SNI (NULL: none sent): the
 * exact host name, else the wildcard one label up, else the default. */
const struct cm_tenant *cm_store_tenant_for_sni(const struct cm_store *store, const char *sni);
/* True when a tenant has sni among its host names (exactly or by a
 * wildcard). */
bool cm_store_sni_known(const struct cm_store *store, const char *sni);

/* Validates t against the rest of the store (host names and org id not
 * used by another tenant), builds its trust store, writes its files and
 * swaps it in for the tenant of the same name. On success the store owns
 * t and *old (which may be NULL) is the replaced tenant, for the caller
 * to free once nothing refers to it. On failure nothing changed, in
 * memory or on disk, and t is still the caller's. */
CM_MUST_CHECK enum cm_rc cm_store_put_tenant(struct cm_store *store, struct cm_tenant *t, struct cm_tenant **old, struct cm_err *err);

/* Removes the tenant; on success *old is the removed tenant, the caller's
 * to free. The default tenant cannot be removed. */
CM_MUST_CHECK enum cm_rc cm_store_delete_tenant(struct cm_store *store, const char *name, struct cm_tenant **old, struct cm_err *err);

/* ===================================================================
 * Staging: a tenant's files outside the store, for a back end that
 * replicates them (docs/FLEET.md). Each runs on either thread but for
 * cm_store_check_tenant and cm_store_stage_tenant, which read the store.
 * =================================================================== */

/* The checks of cm_store_put_tenant (host names and org id unused by
 * another tenant, server certificates that exist, a trust store that
 * builds), without the commit. */
CM_MUST_CHECK enum cm_rc cm_store_check_tenant(const struct cm_store *store, struct cm_tenant *t, struct cm_err *err);

/* Writes into base/tenants/<name>/ every file the store would hold for t
 * once it is committed: the tenant's current files (hard links) and what
 * the store's writer adds or drops. t's new CRLs get their file names. */
CM_MUST_CHECK enum cm_rc cm_store_stage_tenant(const struct cm_store *store, struct cm_tenant *t, const char *base, struct cm_err *err);

/* Hard links every file below from into to (made), the layout kept. */
CM_MUST_CHECK enum cm_rc cm_store_link_tree(const char *from, const char *to, struct cm_err *err);

/* Loads base/tenants/<name>/ as the store's loader would (no trust built:
 * cm_store_put_tenant builds it). The caller frees *out. */
CM_MUST_CHECK enum cm_rc cm_store_load_tenant(const char *base, const char *name, const char *pass, struct cm_tenant **out, struct cm_err *err);

/* Moves every file of base/tenants/<name>/ but tenant.json into the
 * store's directory of that tenant, before cm_store_put_tenant writes the
 * tenant.json that names them. */
CM_MUST_CHECK enum cm_rc cm_store_adopt_files(const struct cm_store *store, const char *name, const char *base, struct cm_err *err);

/* Makes from/ca.pem and from/ca.key (encrypted with pass) the admin CA
 * of the store in dir, with a new local administrator's certificate
 * (admin/admin.pem, .key) from it; *changed false when dir had that CA
 * already. The store is reopened after a change. */
CM_MUST_CHECK enum cm_rc cm_store_adopt_admin_ca(const char *dir, const char *from, const char *pass, bool *changed, struct cm_err *err);

/* A slot's files outside the store: base/slots/<slot>/ loaded as the
 * loader would (keys decrypted with pass), and swapped in for the store's
 * slot once every tenant's server certificate of that slot is in it (its
 * files moved into the store, slot.json last; the listener files follow).
 * On success loaded is emptied (the store has it); on failure nothing
 * changed and the caller clears it with cm_store_slot_clear. */
CM_MUST_CHECK enum cm_rc cm_store_load_slot(const char *base, enum cm_slot_id slot, const char *pass, struct cm_slot *out, struct cm_err *err);
CM_MUST_CHECK enum cm_rc cm_store_replace_slot(struct cm_store *store, enum cm_slot_id slot, struct cm_slot *loaded, const char *base,
		struct cm_err *err);
void cm_store_slot_clear(struct cm_slot *slot);

/* The store's directory (borrowed). */
const char *cm_store_dir(const struct cm_store *store);

#endif
