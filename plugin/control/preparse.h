#ifndef CM_PREPARSE_H
#define CM_PREPARSE_H
/* The certificates of a bulk request, parsed ahead on a thread of their
 * own while the broker thread runs the commands in order. Registering
 * thousands of tenants in a request spends about a third of the broker
 * thread's time parsing their CAs (OpenSSL 3.0 decodes every public key
 * through its provider decoders, some 200 µs a certificate on a slow
 * core); with the parse on the other core, the commands run in the time
 * of the rest. A command takes its own text's result, the same as
 * cm_pki_parse_certs gives; one the thread has not reached yet is parsed
 * by the caller. */

#include <openssl/x509.h>

#include <cjson/cJSON.h>

#include "error.h"

/* Below this many certificates in a request, nothing is parsed ahead: a
 * thread costs more than it saves. */
#define CM_PREPARSE_MIN 16
/* How far the thread may run ahead of the furthest command that took its
 * result: what it holds at most. */
#define CM_PREPARSE_AHEAD 64

struct cm_preparse;

/* Starts parsing the "certificate" of each addCA and trustCertificate of
 * commands (the request's array, which must outlive the result and not
 * change meanwhile). NULL when there are fewer than CM_PREPARSE_MIN, or
 * the thread cannot start: then cm_preparse_take parses as it is asked. */
struct cm_preparse *cm_preparse_start(const cJSON *commands);

/* The certificates of pem, as cm_pki_parse_certs(pem, strlen(pem), out,
 * err) gives them: the caller owns *out. p may be NULL, and pem a text p
 * does not hold, or one already taken: then it is parsed here. */
CM_MUST_CHECK enum cm_rc cm_preparse_take(struct cm_preparse *p, const char *pem, STACK_OF(X509) **out, struct cm_err *err);

/* How many certificates p was given, how many results the commands took
 * from the thread (rather than parse their own), and how many it holds
 * now. Zeros when p is NULL. */
struct cm_preparse_stats {
	size_t count;
	size_t taken_ahead;
	size_t held;
};
void cm_preparse_stats(struct cm_preparse *p, struct cm_preparse_stats *out);

/* Stops the thread (after the parse it is in, if any: one text is at
 * most 4 MiB), frees what no command took; *p becomes NULL. p may be
 * NULL, and *p too. */
void cm_preparse_free(struct cm_preparse **p);

#endif
