#ifndef CM_TLS_HOOK_H
#define CM_TLS_HOOK_H
/* The only part of certmgr that touches SSL and SSL_CTX (DESIGN.md 1).
 *
 * Installed at plugin init, before the broker creates its listeners'
 * contexts: an ex_data index on SSL_CTX whose "new" callback runs inside
 * every later SSL_CTX_new of the process, and gives the broker's server
 * contexts a client-hello callback that serves each handshake: the SNI
 * picks the tenant, the listener port the slot; the tenant's policy and
 * trust store decide the client certificate; a verified leaf is tagged
 * (struct cm_tag) for the authentication that follows. Session tickets
 * carry the tenant and its generation, and a resumption is refused when
 * the tenant's trust has changed since. */

#include <openssl/x509.h>

#include "error.h"
#include "state.h"

CM_MUST_CHECK enum cm_rc cm_tls_hook_install(struct cm_state *st, struct cm_err *err);

/* Frees the ex_data indexes and every tag still attached to a
 * certificate. Must run at plugin cleanup: the broker frees its
 * listeners' SSL_CTXs (and their cached sessions) after unloading the
 * plugin, and OpenSSL would then call into unmapped code. Safe to call
 * twice. */
void cm_tls_hook_remove(struct cm_state *st);

/* The tag of a client certificate, or NULL when no verified handshake of
 * certmgr's put one there. Borrowed. */
const struct cm_tag *cm_tls_cert_tag(const struct cm_state *st, X509 *cert);

/* Drops the sessions kept for resumption (a device with one makes a full
 * handshake next). */
void cm_tls_sessions_clear(struct cm_state *st);

#endif
