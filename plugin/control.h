#ifndef CM_CONTROL_H
#define CM_CONTROL_H
/* The control API on $CONTROL/certmgr/v1 (DESIGN.md 3): the
 * {"commands":[...]} envelope, one table of commands, one response per
 * request, published to the requesting client only. */

#include <cjson/cJSON.h>

#include "auth.h"
#include "error.h"
#include "state.h"

#define CM_CONTROL_TOPIC "$CONTROL/certmgr/v1"
#define CM_CONTROL_RESPONSE_TOPIC "$CONTROL/certmgr/v1/response"

/* Who sent a command, for the audit log and the private-key rule
 * (cm_cmd_private_keys). */
struct cm_caller {
	const char *name;      /* client id */
	enum cm_admin_via via;
	/* Connected from 127.0.0.0/8 or ::1. Grants nothing: a local reverse
	 * proxy connects from there for anyone. */
	bool loopback;
	struct cm_request *req;
};

/* A command handler: reads its fields from cmd (type-checked before
 * anything is allocated), fills data on success, or returns an error
 * with err telling a person what was wrong. A handler that waits for a
 * download returns CM_PENDING and, when it is done, calls
 * cm_control_resume with the request of who. */
#define CM_PENDING ((enum cm_rc)100)
typedef enum cm_rc (*cm_command_fn)(struct cm_state *st, const struct cm_caller *who, const cJSON *cmd, cJSON *data, struct cm_err *err);

struct cm_command {
	const char *name;
	cm_command_fn fn;
};

int cm_control_cb(int event, void *event_data, void *userdata);

/* The data object of the command a pending request waits on: the
 * handler's continuation fills it. */
cJSON *cm_control_pending_data(struct cm_request *req);
/* Ends the waiting command (rc CM_OK, or an error with err) and runs the
 * rest of the request; the response goes out when all are done. */
void cm_control_resume(struct cm_state *st, struct cm_request *req, enum cm_rc rc, const struct cm_err *err);
/* The connection client (struct mosquitto *) is gone: the requests it
 * made that still wait run to their end, and their answers are dropped. */
void cm_control_forget_client(struct cm_state *st, const void *client);
/* Drops the requests still waiting (plugin cleanup). */
void cm_control_cleanup(struct cm_state *st);

/* Certificates (server, CA, pinned) that expire within the warning
 * window, and tenant host names their served certificate does not cover:
 * for getStatus and the daily log. */
cJSON *cm_status_expiring(struct cm_state *st, time_t now);
cJSON *cm_status_hostname_warnings(struct cm_state *st);

/* A CA of one tenant with a CA at or above it trusted by another tenant
 * (the same CA, or one that issued it): the devices it issued log in to
 * the other tenant too, their certificates naming no tenant. Each pair as
 * {tenant, ca, alsoTrustedBy, via, warning}; with tenant, only the pairs
 * that tenant's CA id is part of. NULL when out of memory. */
cJSON *cm_status_shared_cas(struct cm_state *st, const char *tenant, const char *id);
/* Adds data.warnings, the pairs of tenant's CA id, when there are any. */
void cm_status_add_ca_warnings(struct cm_state *st, const char *tenant, const char *id, cJSON *data);

/* Command tables of the entities (cmd_*.c). */
extern const struct cm_command cm_tenant_commands[];
extern const struct cm_command cm_ca_commands[];
extern const struct cm_command cm_rejected_commands[];
extern const struct cm_command cm_status_commands[];
extern const struct cm_command cm_server_commands[];
extern const struct cm_command cm_csr_commands[];

/* Helpers for handlers. */
CM_MUST_CHECK enum cm_rc cm_cmd_tenant(struct cm_state *st, const cJSON *cmd, struct cm_tenant **out, struct cm_err *err);
/* Puts t (a changed copy) into the store, frees the tenant it replaces,
 * logs the audit line "<who> | <command> | tenant=<name>[ id=<id>]" and
 * disconnects the tenant's devices that the change no longer admits. On
 * failure t is freed and nothing changed. */
CM_MUST_CHECK enum cm_rc cm_cmd_put_tenant(struct cm_state *st, const struct cm_caller *who, const char *command, struct cm_tenant *t, const char *id, struct cm_err *err);

/* Checks cert for a place in t's trust list and appends it: a CA (the
 * checks of addCA) or, for any other certificate, a pin (valid now).
 * Refuses a certificate already there. *out (may be NULL) is the entry. */
CM_MUST_CHECK enum cm_rc cm_cmd_admit(struct cm_tenant *t, X509 *cert, const char *desc, bool active, struct cm_ca **out, struct cm_err *err);

/* CM_OK when who may send or receive a private key (move: "given",
 * "accepted"): only over a connection known to be TLS, an admin
 * certificate's; else the error says why. */
CM_MUST_CHECK enum cm_rc cm_cmd_private_keys(const struct cm_caller *who, const char *move, struct cm_err *err);

/* The command's "slot" field. */
CM_MUST_CHECK enum cm_rc cm_cmd_slot(const cJSON *cmd, enum cm_slot_id *slot, struct cm_err *err);

/* The command's optional "key" field: {"type":"ec","curve":"P-256"|"P-384"}
 * (the default), {"type":"rsa","bits":2048|3072|4096} (1024 when
 * spec->allow_weak), or {"type":"ed25519"} when ed25519 is true. curve is
 * the spec's storage for the curve name. */
CM_MUST_CHECK enum cm_rc cm_cmd_keyspec(const cJSON *cmd, bool ed25519, struct cm_keyspec *spec, char curve[8], struct cm_err *err);

/* Optional array of strings, at most max entries; NULL *out when absent. */
CM_MUST_CHECK enum cm_rc cm_cmd_strings(const cJSON *cmd, const char *name, size_t max, const cJSON **out, size_t *count, struct cm_err *err);

#endif
