#ifndef CM_TENANT_T_H
#define CM_TENANT_T_H
/* Types of a tenant and its trust list. Structs and enums only
 * (functions: tenant.h). */

#include <stdbool.h>
#include <stdint.h>
#include <time.h>

#include <openssl/x509.h>
#include <openssl/x509_vfy.h>
#include <uthash.h>

#include "crl.h"
#include "pki.h"
#include "slot-t.h"

struct cm_enroll;

#define CM_DEFAULT_TENANT "default"
/* The longest tenant name (cm_tenant_name_valid). */
#define CM_TENANT_NAME_MAX 64

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
/* The buffer of a CRL file's name in crls/ ("<CA id>-<16 hex>.crl"). */
#define CM_CRL_FILE_SIZE 96

/* A certificate in a tenant's trust list: a CA, trust anchor for the
 * devices it signed, or (pinned) an endpoint certificate trusted for
 * exactly itself. */
struct cm_crl_schedule {
	time_t attempt, success;
	char error[160];
	time_t next_attempt;
	int failures;
	unsigned long failures_total; /* since the broker started (not stored) */
	bool in_flight;     /* a download is under way (not stored) */
	bool stale_seen;    /* its going stale was acted on (not stored) */
};

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
	/* Its file in crls/ ("" until written); a new CRL gets a new name,
	 * so that tenant.json commits it. */
	char crl_file[CM_CRL_FILE_SIZE];
	/* The refresh's bookkeeping (crl/refresh.c), not trust: the one part
	 * of a live entry changed in place, through cm_store_crl_schedule.
	 * Copied with the entry; attempt, success, error, next_attempt and
	 * failures are written to the store with the next change of the
	 * tenant. */
	struct cm_crl_schedule sched;
	bool stale_fail_open;   /* past nextUpdate: accept (true) or refuse */
	/* Its CRLs of other scopes than crl (a delta CRL, a partition by
	 * issuingDistributionPoint or reasons), each in a file of its own. */
	struct cm_crl *more[CM_CA_MORE_CRLS];
	/* Their file names: CM_CA_MORE_CRLS of them, allocated with the
	 * first (cm_ca_more_files), NULL while there is none. */
	char (*more_file)[CM_CRL_FILE_SIZE];
	bool more_dirty[CM_CA_MORE_CRLS];
	/* Not in the trust list: an intermediate CA certmgr knows of (sent
	 * with an uploaded CRL, or in a device's verified chain), for its
	 * CRLs and to complete chains. Never a trust anchor. */
	bool issuer_only;
	/* Registered with purpose "claim": admits devices to the enrollment
	 * topics only (plugin/enroll/), never as devices. */
	bool claim;
	struct cm_ca *next;
};

/* The longest blocked key (a device id; a certificate's is CM_ID_LEN),
 * reason and administrator name of a block, and the blocks of each kind
 * a tenant holds: they live in tenant.json (CM_STORE_MAX_FILE). */
#define CM_BLOCK_KEY_MAX 256
#define CM_BLOCK_REASON_MAX 200
#define CM_BLOCKS_MAX 1000

/* A device id or a certificate an operator refused (blocks.h). */
struct cm_block {
	char *key;    /* the device id, or the certificate's id */
	char *reason; /* "" when none was given */
	char *by;     /* the administrator who blocked it */
	time_t at;
};

/* Sorted by key, unique. */
struct cm_blocklist {
	struct cm_block *v;
	size_t n;
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
	/* Its issuing CA, enrollment policy, requests and revocations
	 * (enroll-t.h); NULL: none of them. */
	struct cm_enroll *enroll;
	/* Per slot, the server certificate its host names are served with
	 * ("": the slot's default): CM_SLOT_COUNT ids, allocated at the first
	 * that is set, NULL while every slot serves its default (most
	 * tenants: 195 bytes saved each). Read and set through
	 * cm_tenant_server_cert and cm_tenant_set_server_cert. */
	char (*server_cert)[CM_ID_LEN + 1];
	/* Refused at the handshake and at CONNECT, and disconnected at the
	 * tick after the commit that adds them (blocks.h). */
	struct cm_blocklist blocked_devices;
	struct cm_blocklist blocked_certs;
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
	bool policy_exts;           /* a CA carries a policy extension (cm_pki_has_policy_ext) */
	UT_hash_handle hh;
	UT_hash_handle hh_org;      /* in cm_store.orgs, while in the store */
};

#endif
