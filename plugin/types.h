#ifndef CM_TYPES_H
#define CM_TYPES_H
/* Types the plugin's layers share, and no functions: a header included
 * by both sides of a boundary pulls in neither side's API. */

/* How a client is an administrator, if it is one. */
enum cm_admin_via {
	CM_ADMIN_NONE,
	CM_ADMIN_CERT,     /* a certificate from certmgr's admin CA */
	CM_ADMIN_USERNAME, /* a name in plugin_opt_admin_users */
	/* the same over websockets, when every websockets listener is TLS
	 * (the console's connection) */
	CM_ADMIN_USERNAME_TLS,
};

/* Why a handshake was refused: the classes of the metrics and the log. */
enum cm_refusal {
	CM_REFUSED_UNKNOWN_SNI,     /* an SNI no tenant has, and a chain its default tenant does not trust */
	CM_REFUSED_UNTRUSTED_CHAIN,
	CM_REFUSED_REVOKED,
	CM_REFUSED_EXPIRED,
	CM_REFUSED_ID_MISMATCH,     /* the client id does not match the certificate */
	CM_REFUSED_POLICY,          /* the tenant's policy: a required CRL missing or stale, a token missing, a tenant gone */
	CM_REFUSED_BLOCKED,         /* the device id or the certificate is blocked (blockDevice, blockCertificate) */
	CM_REFUSED_COUNT
};

/* The findings of a fleet audit (audit.h), counted in the metrics. */
enum cm_finding {
	CM_FINDING_EXPIRING_CERTIFICATE,
	CM_FINDING_SHARED_CERTIFICATE,
	CM_FINDING_CLONED_DEVICE,
	CM_FINDING_WEAK_KEY,
	CM_FINDING_WEAK_SIGNATURE,
	CM_FINDING_EXPIRING_CA,
	CM_FINDING_CA_WITHOUT_CRL,
	CM_FINDING_BLOCKED_CONNECTED,
	CM_FINDING_REVOKED_CONNECTED,
	CM_FINDING_COUNT
};
/* Where devices ask for certificates, and get the answer (plugin/enroll/;
 * the ACL in plugin/auth/ lets claim devices reach these two only). */
#define CM_ENROLL_TOPIC "$CONTROL/certmgr/enroll/v1"
#define CM_ENROLL_RESPONSE_TOPIC "$CONTROL/certmgr/enroll/v1/response"

#endif
