#ifndef CM_TLS_HOOK_H
#define CM_TLS_HOOK_H
/* The only part of certmgr that touches SSL and SSL_CTX (DESIGN.md 1).
 *
 * Installed at plugin init, before the broker creates its listeners'
 * contexts: an ex_data index on SSL_CTX whose "new" callback runs inside
 * every later SSL_CTX_new of the process, and gives the broker's server
 * contexts a client-hello callback that serves each handshake from the
 * store. */

#include "error.h"
#include "state.h"

CM_MUST_CHECK enum cm_rc cm_tls_hook_install(struct cm_state *st, struct cm_err *err);

/* Frees the ex_data index. Must run at plugin cleanup: the broker frees its
 * listeners' SSL_CTXs after unloading the plugin, and OpenSSL would then
 * call into unmapped code. Safe to call twice. */
void cm_tls_hook_remove(struct cm_state *st);

#endif
