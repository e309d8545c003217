#ifndef CM_TENANT_H
#define CM_TENANT_H
/* Tenants in memory: creation, copies, names, trust lists. Persistence
 * is in the store (store.h). */

#include <stdbool.h>
#include <stddef.h>

#include "crl.h"
#include "error.h"
#include "sni.h"
#include "tenant-t.h"

const char *cm_revocation_name(enum cm_revocation r);
/* The revocation policy of that name, or -1. */
int cm_revocation_parse(const char *name);

const char *cm_policy_name(enum cm_policy policy);
/* The policy of that name, or -1. */
int cm_policy_parse(const char *name);

/* A tenant name: 1 to 64 of [a-z0-9_-], starting with a letter or digit. */
bool cm_tenant_name_valid(const char *name);

/* Lower-cases and checks a host name or "*.host" wildcard into out. */
CM_MUST_CHECK enum cm_rc cm_hostname_normalize(const char *in, char out[CM_HOSTNAME_MAX + 1], struct cm_err *err);

/* A new tenant with the defaults: org id = name, policy certificate,
 * patterns "{org}/{type}/{id}/#". NULL when out of memory. */
struct cm_tenant *cm_tenant_new(const char *name);
/* A deep copy sharing the CA certificates (up-ref'd); no trust store. */
struct cm_tenant *cm_tenant_clone(const struct cm_tenant *t);
/* Frees a tenant not in a store; accepts NULL and *t NULL. */
void cm_tenant_free(struct cm_tenant **t);

CM_MUST_CHECK enum cm_rc cm_strlist_set(struct cm_strlist *list, const char *const *v, size_t n);
void cm_strlist_clear(struct cm_strlist *list);

/* The entry id of t, or NULL. cm_tenant_ca is for a staged copy (one not
 * yet in the store), whose entries may be changed. */
const struct cm_ca *cm_tenant_find_ca(const struct cm_tenant *t, const char *id);
struct cm_ca *cm_tenant_ca(struct cm_tenant *t, const char *id);
/* Frees what cm_store_put_tenant built for t's handshakes. */
void cm_tenant_drop_trust(struct cm_tenant *t);
/* The id of the server certificate slot serves t's host names with; ""
 * for the slot's default. */
const char *cm_tenant_server_cert(const struct cm_tenant *t, enum cm_slot_id slot);
/* Sets it (id "": the slot's default; at most CM_ID_LEN characters).
 * False when out of memory (or slot out of range), t unchanged. */
CM_MUST_CHECK bool cm_tenant_set_server_cert(struct cm_tenant *t, enum cm_slot_id slot, const char *id);
/* CRL i of entry ca (0: ca->crl, then ca->more), or NULL. */
struct cm_crl *cm_ca_crl_at(const struct cm_ca *ca, int i);
/* Takes crl as one of e's CRLs: it replaces the one of the same scope,
 * unless that one is newer (no rollback: refused, and crl is still the
 * caller's), or joins the others. file: its name in crls/ when the worker
 * wrote it (crl->der NULL), else it is written with the next commit. */
CM_MUST_CHECK enum cm_rc cm_ca_put_crl(struct cm_ca *e, struct cm_crl *crl, const char *file, struct cm_err *err);
/* Appends a new entry of t for cert (its own reference) with desc,
 * added now, active, neither pinned nor a known issuer: the caller sets
 * those. Refuses a certificate t has already. *out is the entry. */
CM_MUST_CHECK enum cm_rc cm_tenant_append_ca(struct cm_tenant *t, X509 *cert, const char *desc, struct cm_ca **out, struct cm_err *err);
/* Allocates ca->more_file if need be; false when out of memory. */
bool cm_ca_more_files(struct cm_ca *ca);
/* Frees one trust-list entry not in a tenant; accepts NULL. */
void cm_ca_free(struct cm_ca **ca);

#endif
