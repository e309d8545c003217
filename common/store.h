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

/* 1: slots only. 2: adds tenants/ and admin/ (the admin CA). */
#define CM_STORE_SCHEMA 2
#define CM_DEFAULT_TENANT "default"
/* No file of the store is legitimately larger than this. */
#define CM_STORE_MAX_FILE (1024 * 1024)
/* A CRL of millions of entries is tens of MB. */
#define CM_STORE_MAX_CRL (256 * 1024 * 1024)

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

/* A pending certificate signing request and its key. */
struct cm_csr {
	char id[CM_ID_LEN + 1]; /* SHA-256 of the CSR's DER */
	X509_REQ *req;
	EVP_PKEY *key;
	time_t created;
	bool reused_key;
	struct cm_csr *next;
};

struct cm_slot {
	struct cm_server_cert *certs;
	struct cm_csr *csrs;
	struct cm_server_cert *def; /* borrowed: one of certs */
	uint64_t generation;
};

enum cm_revocation {
	CM_REVOCATION_WHEN_AVAILABLE, /* levels whose CRL is known are checked */
	CM_REVOCATION_REQUIRED,       /* a level without a fresh CRL refuses */
};

enum cm_policy {
	CM_POLICY_CERTIFICATE,
	CM_POLICY_CERT_TOKEN,
	CM_POLICY_TOKEN,
	CM_POLICY_BRIDGE,  /* peer brokers: a trusted certificate, any client id */
	CM_POLICY_COUNT
};

struct cm_strlist {
	char **v;
	size_t n;
};

#define CM_CA_MORE_CRLS 7

/* A certificate in a tenant's trust list: a CA, trust anchor for the
 * devices it signed, or (pinned) an endpoint certificate trusted for
 * exactly itself. */
struct cm_ca {
	char id[CM_ID_LEN + 1];
	char *description;
	bool pinned;
	bool active;
	time_t added;
	X509 *cert;
	/* The CRL this CA issues, and where it comes from. */
	char *crl_url;          /* given by the operator; NULL: none */
	char *crl_learned_url;  /* from a certificate it issued; NULL: none */
	char crl_source[24];    /* "url", "distribution-point", "upload", "learned", "" */
	struct cm_crl *crl;     /* shared by the tenant's copies; NULL: unknown */
	bool crl_dirty;         /* crl not yet written to the store */
	char crl_file[96];      /* its file in crls/ ("" until written); a new
	                         * CRL gets a new name, so that tenant.json
	                         * commits it */
	time_t crl_attempt, crl_success;
	char crl_error[160];
	bool stale_fail_open;   /* past nextUpdate: accept (true) or refuse */
	/* Refresh scheduling: kept on the live entry (and copied with it),
	 * written to the store with the next change of the tenant. */
	time_t crl_next_attempt;
	int crl_failures;
	unsigned long crl_failures_total; /* since the broker started (not stored) */
	bool crl_in_flight;     /* a download is under way (not stored) */
	bool crl_stale_seen;    /* its going stale was acted on (not stored) */
	/* Its CRLs of other scopes than crl (a delta CRL, a partition by
	 * issuingDistributionPoint or reasons), each in a file of its own. */
	struct cm_crl *more[CM_CA_MORE_CRLS];
	char more_file[CM_CA_MORE_CRLS][96];
	bool more_dirty[CM_CA_MORE_CRLS];
	/* Not in the trust list: an intermediate CA certmgr knows of (sent
	 * with an uploaded CRL, or in a device's verified chain), for its
	 * CRLs and to complete chains. Never a trust anchor. */
	bool issuer_only;
	struct cm_ca *next;
};

/* An organisation, chosen by the SNI host name of a handshake. A tenant in
 * the store is never modified in place: a change builds a new one (see
 * cm_tenant_clone) and cm_store_put_tenant swaps it in. */
struct cm_tenant {
	char *name;
	char *org_id;
	enum cm_policy policy;
	enum cm_revocation revocation;
	struct cm_strlist hostnames; /* lower case; "*.example.com" wildcards */
	struct cm_strlist publish;   /* topic patterns */
	struct cm_strlist subscribe;
	struct cm_ca *cas;
	/* Per slot, the server certificate its host names are served with
	 * ("": the slot's default). */
	char server_cert[CM_SLOT_COUNT][CM_ID_LEN + 1];
	time_t created;
	uint64_t generation; /* the store generation of its last change */
	/* Built once per change (see cm_store_put_tenant), shared (up-ref'd)
	 * by handshakes. trust: the trust anchors (the active registered CAs
	 * that no registered CA issued) and the admin CA. */
	X509_STORE *trust;
	STACK_OF(X509) *pins;       /* active pinned certificates, sorted */
	STACK_OF(X509) *inactive;   /* deactivated CAs: refused in any path, sorted */
	STACK_OF(X509) *candidates; /* the other active CAs and known issuers: for chains */
	STACK_OF(X509_CRL) *crls;   /* every CRL held, as path validation takes them */
	time_t crls_next_update;    /* the earliest nextUpdate among them; 0: none */
	UT_hash_handle hh;
	UT_hash_handle hh_org;      /* in cm_store.orgs, while in the store */
};

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
	struct cm_sni_entry *sni;   /* host name (or "*.rest") to tenant */
	struct cm_name_bucket *names;
	X509 *admin_ca;
	/* Keys encrypted at rest with this passphrase; NULL: plain, 0600. */
	char *key_passphrase;
	struct cm_server_cert *placeholder; /* the listener files' then */
};

/* The tenant whose org id is the len bytes at org, or NULL. */
struct cm_tenant *cm_store_tenant_for_org(const struct cm_store *store, const char *org, size_t len);

/* The CAs whose subject or issuer name hash is hash, or NULL: none. */
const struct cm_name_bucket *cm_store_cas_by_name(const struct cm_store *store, unsigned long hash);

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

/* The default certificate of a slot (borrowed). */
const struct cm_server_cert *cm_store_slot_default(const struct cm_store *store, enum cm_slot_id slot);

/* ===================================================================
 * Server certificates
 * =================================================================== */

struct cm_server_cert *cm_store_find_server_cert(const struct cm_store *store, enum cm_slot_id slot, const char *id);

/* A new entry for leaf (extra: intermediates, may be NULL) and key; takes
 * its own references. The caller frees it with cm_server_cert_free unless
 * a store took it. */
CM_MUST_CHECK enum cm_rc cm_server_cert_new(X509 *leaf, STACK_OF(X509) *extra, EVP_PKEY *key, const char *description, bool builtin,
		struct cm_server_cert **out, struct cm_err *err);
void cm_server_cert_free(struct cm_server_cert **cert);

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

struct cm_csr *cm_store_find_csr(const struct cm_store *store, enum cm_slot_id slot, const char *id);
/* Takes csr on success. */
CM_MUST_CHECK enum cm_rc cm_store_add_csr(struct cm_store *store, enum cm_slot_id slot, struct cm_csr *csr, struct cm_err *err);
CM_MUST_CHECK enum cm_rc cm_store_remove_csr(struct cm_store *store, enum cm_slot_id slot, const char *id, struct cm_err *err);
/* The CA's answer to a CSR: cert (made with the CSR's key) joins the
 * slot and the CSR leaves it, in one commit. Takes cert on success. */
CM_MUST_CHECK enum cm_rc cm_store_install_csr(struct cm_store *store, enum cm_slot_id slot, const char *csr_id, struct cm_server_cert *cert, bool make_default, struct cm_err *err);
void cm_csr_free(struct cm_csr **csr);

/* The certificate that serves a tenant's handshakes on a slot. */
const struct cm_server_cert *cm_store_served_cert(const struct cm_store *store, const struct cm_tenant *t, enum cm_slot_id slot);

/* ===================================================================
 * Tenants
 * =================================================================== */

const char *cm_revocation_name(enum cm_revocation r);
/* The revocation policy of that name, or -1. */
int cm_revocation_parse(const char *name);

const char *cm_policy_name(enum cm_policy policy);
/* The policy of that name, or -1. */
int cm_policy_parse(const char *name);

/* A tenant name: 1 to 64 of [a-z0-9_-], starting with a letter or digit. */
bool cm_tenant_name_valid(const char *name);

/* Lower-cases and checks a host name or "*.host" wildcard into out. */
CM_MUST_CHECK enum cm_rc cm_hostname_normalize(const char *in, char out[254], struct cm_err *err);

/* A new tenant with the defaults: org id = name, policy certificate,
 * patterns "{org}/{type}/{id}/#". NULL when out of memory. */
struct cm_tenant *cm_tenant_new(const char *name);
/* A deep copy sharing the CA certificates (up-ref'd); no trust store. */
struct cm_tenant *cm_tenant_clone(const struct cm_tenant *t);
/* Frees a tenant not in a store; accepts NULL and *t NULL. */
void cm_tenant_free(struct cm_tenant **t);

CM_MUST_CHECK enum cm_rc cm_strlist_set(struct cm_strlist *list, const char *const *v, size_t n);
void cm_strlist_clear(struct cm_strlist *list);

struct cm_ca *cm_tenant_find_ca(const struct cm_tenant *t, const char *id);
/* Frees what cm_store_put_tenant built for t's handshakes. */
void cm_tenant_drop_trust(struct cm_tenant *t);
/* CRL i of entry ca (0: ca->crl, then ca->more), or NULL. */
struct cm_crl *cm_ca_crl_at(const struct cm_ca *ca, int i);
/* Takes crl as one of e's CRLs: it replaces the one of the same scope,
 * unless that one is newer (no rollback: refused, and crl is still the
 * caller's), or joins the others. file: its name in crls/ when the worker
 * wrote it (crl->der NULL), else it is written with the next commit. */
CM_MUST_CHECK enum cm_rc cm_ca_put_crl(struct cm_ca *e, struct cm_crl *crl, const char *file, struct cm_err *err);
/* Frees one trust-list entry not in a tenant; accepts NULL. */
void cm_ca_free(struct cm_ca **ca);

struct cm_tenant *cm_store_find_tenant(const struct cm_store *store, const char *name);

/* The tenant that serves a handshake with that SNI (NULL: none sent): the
 * exact host name, else the wildcard one label up, else the default. */
struct cm_tenant *cm_store_tenant_for_sni(const struct cm_store *store, const char *sni);
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

#endif
