#ifndef CM_STATE_H
#define CM_STATE_H
/* The plugin's one state struct, passed to every callback as userdata. */

#include <stdbool.h>
#include <stdint.h>

#include <uthash.h>

#include "fetch-t.h"
#include "identity.h"
#include "inventory.h"
#include "json.h"
#include "rejected-t.h"
#include "sni.h"
#include "store-t.h"
#include "types.h"

#define CM_MAX_PORTS 64
/* Tenants queued for a re-check of their devices (registry.h); past
 * that, every tenant is re-checked. */
#define CM_RECHECK_MAX 16

struct cm_port_slot {
	uint16_t port;
	enum cm_slot_id slot;
	/* plugin_opt_console_ports: a client certificate is asked for, not
	 * required (the console signs in with a user name and password). */
	bool cert_optional;
};

/* What a verified handshake established, attached to the client's leaf
 * certificate so that MOSQ_EVT_BASIC_AUTH, which only sees that
 * certificate, can read it. Owned by the certificate (freed with it) and
 * listed in cm_state so that plugin cleanup can free what is left. */
struct cm_tag {
	bool admin;             /* anchored in certmgr's admin CA */
	const char *tenant;     /* the SNI tenant of the handshake, in names */
	const char *sni;        /* "" when none was sent, in names */
	enum cm_policy policy;  /* the tenant's policy at the handshake */
	uint64_t tenant_generation;
	/* The earliest notAfter of the chain verified, trust anchor included
	 * (after a resumption: of the leaf and the issuing entry); 0: none. */
	time_t not_after;
	/* The intermediates the client sent (up-ref'd, never the leaf), to
	 * verify again when the tenant's trust changes; none after a
	 * resumption. */
	STACK_OF(X509) *chain;
	struct cm_tag *prev, *next;
	/* "tenant\0sni\0", as long as they are: a tag lives as long as its
	 * certificate, on every connected device and cached session. */
	char names[];
};

enum cm_client_kind {
	CM_CLIENT_ADMIN,  /* authenticated by an admin certificate */
	CM_CLIENT_DEVICE, /* authenticated by certmgr as a tenant's device */
	CM_CLIENT_CLAIM,  /* a claim certificate: the enrollment topics only */
};

/* A client certmgr authenticated, by connection (a session takeover
 * authenticates the new connection before the old one's disconnect). */
struct cm_client {
	const void *client; /* struct mosquitto *, the key */
	enum cm_client_kind kind;
	/* In names, as long as they are: one record a connected client. */
	const char *clientid;
	const char *tenant;
	const char *sni;        /* "" when none was sent */
	enum cm_policy policy;
	struct cm_identity ident;
	X509 *leaf;             /* up-ref'd */
	STACK_OF(X509) *chain;  /* intermediates, up-ref'd */
	time_t not_after;       /* the earliest notAfter of the verified chain */
	char leaf_id[CM_ID_LEN + 1]; /* the leaf's id, for blocks */
	struct cm_device *dev;  /* its inventory record, connection counted; NULL: none */
	UT_hash_handle hh;
	char names[];           /* "clientid\0tenant\0sni\0" */
};

/* plugin_opt_store etcd and the options of that back end (plugin/fleet/,
 * docs/FLEET.md); all NULL/false with the directory back end. */
struct cm_fleet_opts {
	bool etcd;
	char *endpoints;
	char *prefix;        /* ends with '/' */
	char *cafile, *certfile, *keyfile;
	char *node_name;
	time_t gc_interval;  /* plugin_opt_etcd_gc_interval */
};

/* plugin_opt_<slot>_secret_dir: a directory in the layout of a Kubernetes
 * TLS Secret that serves the slot (plugin/secret.c). */
struct cm_secret_slot {
	char *dir;           /* NULL: none */
	char seen[512];      /* what the files were when last read */
	time_t checked;
};

struct cm_backend;
struct cm_fleet;
struct cm_fetcher;
struct cm_request;
struct cm_crl_upload;
struct cm_session;
struct cm_learning;
struct cm_learn_item;
struct cm_worker;
struct cm_name;
struct cm_audit_job;
struct cm_enrolling;

struct cm_state {
	void *plugin_id; /* mosquitto_plugin_id_t *, opaque here */
	char *store_dir;
	char *hostname;
	char *key_passphrase; /* plugin_opt_key_passphrase_file; NULL: keys plain */
	/* Which listener port serves which slot. With no entry at all, every
	 * TLS listener of the broker is served from the mqtt slot. */
	struct cm_port_slot ports[CM_MAX_PORTS];
	int port_count;
	/* Every websockets listener of the broker's configuration is TLS
	 * (brokerconf.h): a client connected over websockets then is too. */
	bool websockets_tls;
	struct cm_store *store;
	/* plugin_opt_admin_users, split. */
	char **admin_users;
	int admin_user_count;
	size_t max_payload;
	size_t rejected_max;
	struct cm_fetch_options fetch_opts;
	/* OpenSSL ex_data indexes; -1 when not installed. */
	int ctx_ex_index;
	int ssl_ex_index;
	int x509_ex_index;
	struct cm_tag *tags; /* every live tag */
	X509 *bridge_at_start; /* the bridge default the broker's files held at start */
	struct cm_client *clients;
	time_t next_expiry;  /* earliest not_after of the connected devices */
	struct cm_rejected_list *rejected;
	/* The devices this node admitted (inventory.h), plugin_opt_devices_max
	 * of them; written to the store from the worker. */
	struct cm_inventory *inventory;
	size_t devices_max;
	time_t inventory_saved;
	bool inventory_saving;           /* a write is under way on the worker */
	struct cm_inventory_snapshot *inventory_snap; /* being taken, a step a tick */
	struct cm_audit_job *audits;     /* under way (audit.h) */
	bool audit_running;              /* the periodic one is among them */
	/* The last fleet audit (audit.h): when, and its counts. */
	time_t audit_at;
	time_t audit_interval;           /* plugin_opt_audit_interval */
	uint64_t audit_counts[CM_FINDING_COUNT];
	bool audit_done;
	struct cm_fetcher *fetcher;      /* CRL downloads */
	struct cm_request *requests;     /* control requests waiting on one */
	struct cm_crl_upload *crl_uploads; /* CRLs arriving in parts (control.c) */
	struct cm_learning *learning;    /* CRLs being learned, by tenant/CA */
	struct cm_learn_item *learn_queue; /* issuers to learn at the next tick */
	struct cm_worker *worker;        /* large CRLs are indexed there */
	time_t refresh_interval;         /* seconds between CRL downloads */
	time_t retry_min, retry_max;     /* backoff after failures */
	time_t refresh_scanned;          /* last scan of the schedule */
	time_t expiry_warning_days;
	time_t expiry_logged;            /* the last daily expiry warning */
	time_t rejected_saved; /* when rejected.json was last written */
	uint64_t handshakes_served;
	/* TLS sessions to resume (tls_hook.c), oldest first, at most
	 * session_max (plugin_opt_session_cache_size; 0: no resumption), one
	 * per client certificate. */
	struct cm_session *sessions;
	struct cm_session *sessions_by_leaf; /* the same, by client certificate */
	size_t session_max;
	/* Metrics (metrics.c). */
	int sys_interval;                /* the broker's; 0: no $SYS metrics */
	time_t metrics_published;
	uint64_t hs_accepted;
	uint64_t hs_refused[CM_REFUSED_COUNT];
	struct cm_name *metric_cas;      /* per-CA topic groups last published */
	struct cm_name *expiry_announced;
	/* Tenants whose devices the tick re-checks (registry.c). */
	char recheck[CM_RECHECK_MAX][CM_TENANT_NAME_MAX + 1];
	size_t recheck_count;
	bool recheck_all;
	/* Events held while a control request runs (cm_events_hold),
	 * NUL-separated, and how many holds are in force. */
	struct cm_text held_events;
	int events_held;
	/* Enrollment (plugin/enroll/): requests and CRLs being signed, where
	 * CRLs are published, and the counts the metrics show. */
	struct cm_enrolling *enrolling;
	char *enroll_crl_dir;            /* plugin_opt_enroll_crl_dir; NULL: none */
	time_t enroll_crl_days;          /* validity of an issuing CA's CRL */
	uint64_t enroll_issued, enroll_refused, enroll_pending, enroll_renewed;
	/* The store's back end (registry.h): NULL for the directory alone. */
	const struct cm_backend *backend;
	struct cm_fleet_opts fleet_opts;
	struct cm_fleet *fleet;
	/* The control request whose command runs (opaque here), and how many
	 * changes that command handed to the back end: the control layer
	 * answers once the back end has said how they ended. */
	void *commit_owner;
	unsigned commits_submitted;
	/* The owner field of the last change handed on without an owner,
	 * until the next tick: a command's continuation claims it. */
	void **unowned_commit;
	struct cm_secret_slot secret[CM_SLOT_COUNT];
	/* Staged tenants a back end was handed, freed at the next tick. */
	struct cm_tenant **handed;
	size_t handed_n, handed_cap;
};

/* The slot a listener port serves, or -1 when certmgr leaves it alone. */
int cm_state_slot_for_port(const struct cm_state *st, uint16_t port);
/* The entry of port, or NULL (also when no port is listed at all). */
const struct cm_port_slot *cm_state_port(const struct cm_state *st, uint16_t port);

/* True when username is in plugin_opt_admin_users. */
bool cm_state_is_admin_user(const struct cm_state *st, const char *username);

#endif
