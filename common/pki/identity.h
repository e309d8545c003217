#ifndef CM_IDENTITY_H
#define CM_IDENTITY_H
/* Device identity: the MQTT client id `d:<org>:<type>:<id>` (`g:` for
 * gateways) must name the tenant's org, and `d:<type>:<id>` must be the
 * certificate's Common Name or one of its SubjectAltName emails. */

#include <stdbool.h>
#include <stddef.h>

#include <openssl/x509.h>

#include "error.h"

#define CM_IDENT_PART_MAX 64
/* The longest client id "k:<org>:<type>:<id>". */
#define CM_IDENT_CLIENTID_MAX (2 + 3 * CM_IDENT_PART_MAX + 2)
/* Identities of one certificate that cm_identity_cert_clientids reports. */
#define CM_IDENT_CERT_MAX 4

struct cm_identity {
	char kind; /* 'd' or 'g' */
	char org[CM_IDENT_PART_MAX + 1];
	char type[CM_IDENT_PART_MAX + 1];
	char id[CM_IDENT_PART_MAX + 1];
};

/* True when s is 1 to CM_IDENT_PART_MAX letters, digits, '-', '_', '.'. */
bool cm_identity_part_valid(const char *s);

/* Parses a client id; CM_ERR_INVAL with the reason otherwise. */
CM_MUST_CHECK enum cm_rc cm_identity_parse(const char *clientid, struct cm_identity *out, struct cm_err *err);

/* Checks a client id against the tenant's org id and the certificate.
 * On success *out holds the parsed identity. */
CM_MUST_CHECK enum cm_rc cm_identity_check(const char *clientid, const char *org_id, X509 *cert, struct cm_identity *out, struct cm_err *err);

/* The client ids the certificate may hold under org: its CN and its
 * SubjectAltName emails of the form "d:<type>:<id>" (or g:), each as
 * "d:<org>:<type>:<id>", at most CM_IDENT_CERT_MAX. *more is set when the
 * certificate names more than that. Returns how many were written. */
size_t cm_identity_cert_clientids(X509 *cert, const char *org, char out[][CM_IDENT_CLIENTID_MAX + 1], bool *more);

#endif
