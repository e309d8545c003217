#ifndef CM_STORE_INT_H
#define CM_STORE_INT_H
/* What the files of store/ share among themselves; not for users of the
 * store (they include store.h). */

#include <cjson/cJSON.h>

#include "store.h"

/* The store in memory. Changed only by store/'s functions, which swap in
 * staged copies. */
struct cm_store {
	char *dir;
	int schema;
	uint64_t generation;
	/* store.json is behind generation: written by cm_store_sync, once
	 * per request or tick, not once per change. */
	bool meta_dirty;
	bool meta_warned; /* its last write failed, and said so */
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

/* The built-in certificate's validity: regenerate before it runs out. */
#define CM_BUILTIN_DAYS 825

/* store.c */
void bump_generation(struct cm_store *store, uint64_t gen);

/* load_slots.c */
enum cm_rc in_file(struct cm_err *err, enum cm_rc rc, const char *path);
enum cm_rc read_json(const char *path, cJSON **out, struct cm_err *err);
enum cm_rc load_slot(const char *dir, enum cm_slot_id slot_id, struct cm_slot *slot, const char *pass, struct cm_err *err);

/* slots.c: removes slots/<slot>/<sub><id><ext> and its .key. */
void remove_entry_files(const struct cm_store *store, enum cm_slot_id slot, const char *sub, const char *id, const char *ext);

/* trust.c */
enum cm_rc build_trust(struct cm_tenant *t, X509 *admin_ca, struct cm_err *err);

/* load_tenants.c */
enum cm_rc load_tenants(struct cm_store *store, struct cm_err *err);
/* dir/tenants/<name>, read and validated on its own (no trust built). */
enum cm_rc load_tenant(const char *dir, const char *name, const char *pass, struct cm_tenant **out, struct cm_err *err);
enum cm_rc load_admin(struct cm_store *store, struct cm_err *err);

/* ca_index.c */
struct ca_index {
	const struct cm_tenant *t;
	const struct cm_ca **v; /* NULL: none, or memory was short (lookups walk) */
	size_t n;
};
void ca_index_build(struct ca_index *x, const struct cm_tenant *t);
const struct cm_ca *ca_index_find(const struct ca_index *x, const char *id);
const char *ca_index_duplicate(const struct ca_index *x);

/* tenants.c */
void sni_list_free(struct cm_sni_entry **list);
enum cm_rc sni_prepare(const struct cm_store *store, const struct cm_tenant *t, struct cm_sni_entry **list, struct cm_err *err);
void sni_commit(struct cm_store *store, const struct cm_tenant *old, struct cm_sni_entry *list);
/* The index of CAs by name hash (cm_store_cas_by_name): room made for t's
 * CAs before a commit (the only step that can fail), then added, and the
 * replaced tenant's dropped. */
CM_MUST_CHECK enum cm_rc names_reserve(struct cm_store *store, const struct cm_tenant *t, struct cm_err *err);
void names_add(struct cm_store *store, const struct cm_tenant *t);
void names_drop(struct cm_store *store, const struct cm_tenant *t);
void names_free(struct cm_name_bucket **set);
enum cm_rc check_server_refs(const struct cm_store *store, const struct cm_tenant *t, struct cm_err *err);
enum cm_rc check_unique_org(const struct cm_store *store, const struct cm_tenant *t, struct cm_err *err);
enum cm_rc validate_tenant(const struct cm_store *store, struct cm_tenant *t, struct cm_sni_entry **list, struct cm_err *err);

/* write.c */
enum cm_rc write_json(const char *path, const cJSON *json, struct cm_err *err);
enum cm_rc write_json_done(const char *path, cJSON *json, bool ok, struct cm_err *err);
enum cm_rc write_slot_view(const struct cm_store *store, enum cm_slot_id slot_id, const struct cm_slot *slot, struct cm_err *err);
enum cm_rc write_slot_json(const struct cm_store *store, enum cm_slot_id slot_id, struct cm_err *err);
enum cm_rc write_store_json(const struct cm_store *store, struct cm_err *err);
enum cm_rc write_cert_files(const char *base, const struct cm_server_cert *cert, const char *pass, struct cm_err *err);
enum cm_rc make_builtin(const char *hostname, struct cm_server_cert **out, struct cm_err *err);
enum cm_rc write_pem_pair(const char *dir, const char *base, X509 *cert, EVP_PKEY *key, const char *pass, struct cm_err *err);

/* write_tenants.c */
enum cm_rc write_tenant(const struct cm_store *store, struct cm_tenant *t, struct cm_err *err);
void remove_unnamed_files(const struct cm_store *store, const struct cm_tenant *old, const struct cm_tenant *t);
void write_tenant_undo(const struct cm_store *store, const struct cm_tenant *old, const struct cm_tenant *t);

/* admin.c */
enum cm_rc create_admin(const char *dir, const char *hostname, const char *pass, struct cm_err *err);
enum cm_rc create_default_tenant(const char *dir, struct cm_err *err);
enum cm_rc migrate_1_to_2(struct cm_store *store, const char *hostname, struct cm_err *err);

#endif
