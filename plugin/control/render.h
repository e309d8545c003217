#ifndef CM_RENDER_H
#define CM_RENDER_H
/* The control API's JSON of certificates and rejected chains
 * (docs/API.md). NULL when out of memory. */

#include <stdbool.h>

#include <openssl/x509.h>
#include <cjson/cJSON.h>

struct cm_rejected;

/* Subject, issuer, serial, validity, key, fingerprints, extensions. */
cJSON *cm_render_cert_details(X509 *cert);

/* A rejected chain; with_chain adds "chain" (PEM, leaf first). */
cJSON *cm_render_rejected(const struct cm_rejected *r, bool with_chain);

#endif
