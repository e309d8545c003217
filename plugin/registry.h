#ifndef CM_REGISTRY_H
#define CM_REGISTRY_H
/* The one place that commits a change to a tenant or a slot: the control layer's
 * commands and the background work (CRL refreshes, learned issuers) both
 * call it with the name the audit line gives, and nobody makes up an
 * administrator to reach it. A commit never disconnects anyone itself:
 * the tenants whose devices may have lost trust are queued, and the tick
 * re-checks them (cm_auth_tick_cb), so that a command handler does not
 * disconnect clients in the middle of a request. Broker thread only. */

#include "error.h"
#include "state.h"

/* A back end that replicates the store (plugin/fleet/): the registry hands
 * it every change instead of committing it. put_tenant never takes t (the
 * caller's handler may still read it; the registry frees it at the next
 * tick); CM_OK means handed on: the change is committed when the back end
 * applies it, on every node alike. */
struct cm_backend {
	const char *name;
	CM_MUST_CHECK enum cm_rc (*put_tenant)(struct cm_state *st, const char *who, const char *command, struct cm_tenant *t,
			const char *id, struct cm_err *err);
	CM_MUST_CHECK enum cm_rc (*delete_tenant)(struct cm_state *st, const char *who, const char *command, const char *name,
			struct cm_err *err);
	/* Slots change in the store first (their commands write it as they
	 * always did), then the back end publishes the slot as a whole. */
	CM_MUST_CHECK enum cm_rc (*slot_writable)(struct cm_state *st, struct cm_err *err);
	void (*slot_changed)(struct cm_state *st, const char *who, const char *command, enum cm_slot_id slot);
};

/* Puts t (a changed copy) into the store, frees the tenant it replaces,
 * logs the audit line "<who> | <command> | tenant=<name>[ id=<id>]" and
 * queues the re-check of the tenant's devices. On failure t is freed and
 * nothing changed. */
CM_MUST_CHECK enum cm_rc cm_registry_put_tenant(struct cm_state *st, const char *who, const char *command, struct cm_tenant *t,
		const char *id, struct cm_err *err);

/* Deletes tenant name (never the default tenant), logs the audit line
 * and queues the re-check of its devices. */
CM_MUST_CHECK enum cm_rc cm_registry_delete_tenant(struct cm_state *st, const char *who, const char *command, const char *name,
		struct cm_err *err);

/* A change of a slot's server certificates or CSRs. */
enum cm_slot_op {
	CM_SLOT_ADD_CERT,        /* cert, make_default */
	CM_SLOT_REPLACE_BUILTIN, /* cert: the new self-signed certificate */
	CM_SLOT_SET_DEFAULT,     /* id */
	CM_SLOT_REMOVE_CERT,     /* id */
	CM_SLOT_ADD_CSR,         /* csr */
	CM_SLOT_REMOVE_CSR,      /* id */
	CM_SLOT_INSTALL_CSR,     /* id (of the CSR), cert (its answer), make_default */
};

struct cm_slot_change {
	enum cm_slot_op op;
	enum cm_slot_id slot;
	const char *id;
	struct cm_server_cert *cert; /* taken: the store's on success, freed on failure */
	struct cm_csr *csr;          /* likewise */
	bool make_default;
};

/* Commits change c to its slot and logs the audit line "<who> |
 * <command> | slot=<slot> id=<id>[ default]" (id: the new entry's, or
 * c->id). A new handshake is served from the change at once. */
CM_MUST_CHECK enum cm_rc cm_registry_slot(struct cm_state *st, const char *who, const char *command, const struct cm_slot_change *c,
		struct cm_err *err);

/* A change a back end received (from any node, this one included):
 * commits t (taken: freed on failure), logs "<who> | apply | tenant=<name>
 * revision=<rev>" and queues the re-check of its devices. */
CM_MUST_CHECK enum cm_rc cm_registry_apply_tenant(struct cm_state *st, const char *who, struct cm_tenant *t, long long revision,
		struct cm_err *err);
CM_MUST_CHECK enum cm_rc cm_registry_apply_delete(struct cm_state *st, const char *who, const char *name, long long revision,
		struct cm_err *err);

/* Before a command changes a slot (server certificates, CSRs): CM_OK when
 * it may; a back end that cannot publish the change refuses it. After the
 * change: the back end publishes the slot (nothing with the directory
 * alone). */
CM_MUST_CHECK enum cm_rc cm_registry_slot_writable(struct cm_state *st, struct cm_err *err);
void cm_registry_slot_changed(struct cm_state *st, const char *who, const char *command, enum cm_slot_id slot);

/* Frees the tenants handed to a back end by commands that have returned. */
void cm_registry_tick(struct cm_state *st);

/* Queues the re-check of the devices of tenant (every tenant when NULL)
 * for the next tick. */
void cm_registry_queue_recheck(struct cm_state *st, const char *tenant);

/* Takes the queue: fills names with the queued tenants (*n of them) and
 * returns true when every tenant is to be re-checked instead. Empties
 * the queue. */
bool cm_registry_take_rechecks(struct cm_state *st, char names[][CM_TENANT_NAME_MAX + 1], size_t *n);

#endif
