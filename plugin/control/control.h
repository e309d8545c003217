#ifndef CM_CONTROL_H
#define CM_CONTROL_H
/* The control API on $CONTROL/certmgr/v1 (DESIGN.md 3): the
 * {"commands":[...]} envelope, one table of commands, one response per
 * request, published to the requesting client only. */

#include <time.h>

#include <openssl/x509.h>

#include <cjson/cJSON.h>

#include "error.h"
#include "fields.h"
#include "registry.h"
#include "state.h"
#include "types.h"
/* The broker glue reads the status through here too. */
#include "status.h"

#define CM_CONTROL_TOPIC "$CONTROL/certmgr/v1"
#define CM_CONTROL_RESPONSE_TOPIC "$CONTROL/certmgr/v1/response"
/* A CRL as the payload (DER or PEM, as it is), the tenant in the MQTT v5
 * user property "tenant": uploadCRL without base64 or a JSON string, for
 * CRLs of tens of megabytes. Answered on the response topic. */
#define CM_CONTROL_CRL_TOPIC "$CONTROL/certmgr/v1/crl"

/* Who sent a command, for the audit log and the private-key rule
 * (cm_cmd_private_keys). */
struct cm_caller {
	const char *name;      /* client id */
	const char *command;   /* the name of the command's row */
	enum cm_admin_via via;
	/* Connected from 127.0.0.0/8 or ::1. Grants nothing: a local reverse
	 * proxy connects from there for anyone. */
	bool loopback;
	struct cm_request *req;
};

/* The certificates of pem, a command's "certificate", as
 * cm_pki_parse_certs gives them (the caller owns *out): parsed ahead
 * already when the command is one of a bulk request (preparse.h). */
CM_MUST_CHECK enum cm_rc cm_control_parse_certs(const struct cm_caller *who, const char *pem, STACK_OF(X509) **out,
		struct cm_err *err);

/* A command handler: reads its fields from cmd (checked against the
 * row's table before it runs: no unknown field, each of its type, the
 * required ones there), fills data on success, or returns an error
 * with err telling a person what was wrong. A handler that waits for a
 * download returns CM_PENDING and, when it is done, calls
 * cm_control_resume with the request of who. */
#define CM_PENDING ((enum cm_rc)100)
typedef enum cm_rc (*cm_command_fn)(struct cm_state *st, const struct cm_caller *who, const cJSON *cmd, cJSON *data, struct cm_err *err);

/* A command is its table row: its name (that of its audit line and
 * change event), its handler, whether it changes state (a success is a
 * change event), and its fields (ended by a NULL name). */
struct cm_command {
	const char *name;
	cm_command_fn fn;
	bool writes;
	const struct cm_field *fields;
};

#define CM_WRITES true
#define CM_READS false

int cm_control_cb(int event, void *event_data, void *userdata);
int cm_control_crl_cb(int event, void *event_data, void *userdata);

/* The CRL a request on CM_CONTROL_CRL_TOPIC carried (taken: the caller
 * frees it); false for a request of JSON commands. */
bool cm_control_take_body(struct cm_request *req, unsigned char **body, size_t *len);

/* The data object of the command a pending request waits on: the
 * handler's continuation fills it. */
cJSON *cm_control_pending_data(struct cm_request *req);
/* Ends the waiting command (rc CM_OK, or an error with err) and runs the
 * rest of the request; the response goes out when all are done. */
void cm_control_resume(struct cm_state *st, struct cm_request *req, enum cm_rc rc, const struct cm_err *err);
/* For a command's continuation (after CM_PENDING): the changes it puts
 * from here are the request's, and cm_control_resume_owned ends the
 * command as cm_control_resume does, once the back end has said how
 * those changes ended. */
void cm_control_own_commits(struct cm_state *st, struct cm_request *req);
void cm_control_resume_owned(struct cm_state *st, struct cm_request *req, enum cm_rc rc, const struct cm_err *err);
/* The store's back end says how one change of a command ended (owner: the
 * request, st->commit_owner when it was handed on). When the last change
 * of the command has ended, the command answers: its data on success, the
 * first failure otherwise. */
void cm_control_commit_done(struct cm_state *st, void *owner, enum cm_rc rc, const struct cm_err *err);
/* The connection client (struct mosquitto *) is gone: the requests it
 * made that still wait run to their end, and their answers are dropped. */
void cm_control_forget_client(struct cm_state *st, const void *client);
/* Drops the requests still waiting (plugin cleanup). */
void cm_control_cleanup(struct cm_state *st);
/* Drops the CRL uploads in parts that got no part for CM_CRL_UPLOAD_IDLE
 * seconds. */
void cm_control_tick(struct cm_state *st, time_t now);

/* Field tables several commands have. */
extern const struct cm_field cm_fields_none[];
extern const struct cm_field cm_fields_tenant[];    /* tenant */
extern const struct cm_field cm_fields_tenant_id[]; /* tenant, id */
extern const struct cm_field cm_fields_slot[];      /* slot */
extern const struct cm_field cm_fields_slot_id[];   /* slot, id */

/* Command tables of the entities (cmd_*.c). */
extern const struct cm_command cm_tenant_commands[];
extern const struct cm_command cm_ca_commands[];
extern const struct cm_command cm_crl_commands[];
extern const struct cm_command cm_rejected_commands[];
extern const struct cm_command cm_status_commands[];
extern const struct cm_command cm_server_commands[];
extern const struct cm_command cm_csr_commands[];
extern const struct cm_command cm_device_commands[];
extern const struct cm_command cm_enroll_commands[];
extern const struct cm_command cm_issuing_commands[];
extern const struct cm_command cm_fleet_commands[];

/* Helpers for handlers. */

/* Returns what a failing call returned, so that its code and reason
 * reach the operator (s2n-tls's POSIX_GUARD): the happy path of a
 * handler reads as a straight column of calls. */
#define CM_GUARD(x) \
	do{ \
		enum cm_rc cm_guard_rc_ = (x); \
		if(cm_guard_rc_ != CM_OK){ \
			return cm_guard_rc_; \
		} \
	}while(0)

/* The error of a handler that ran out of memory: CM_ERR_NOMEM. */
enum cm_rc cm_cmd_nomem(struct cm_err *err);

/* Adds o (taken; may be NULL) to data as name. For the answer of a
 * change already made: out of memory loses only the answer's detail. */
void cm_cmd_answer(cJSON *data, const char *name, cJSON *o);
/* Adds to data an array key of items (n of them, in an array the caller
 * allocated with room for n, freed here), sorted with cmp, each as render
 * makes it. */
CM_MUST_CHECK enum cm_rc cm_cmd_add_sorted(cJSON *data, const char *key, const void **items, size_t n,
		int (*cmp)(const void *, const void *), cJSON *(*render)(const void *item), struct cm_err *err);

CM_MUST_CHECK enum cm_rc cm_cmd_tenant(struct cm_state *st, const cJSON *cmd, const struct cm_tenant **out, struct cm_err *err);
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
