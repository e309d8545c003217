#ifndef CM_TLSCLIENT_H
#define CM_TLSCLIENT_H
/* A TLS client context for certmgr's tools: TLS 1.2 or later, the server
 * verified against cafile (partial chains allowed: the file may hold the
 * server's own certificate), cert and key (key NULL: in cert; cert NULL:
 * none) as the client's, and the server's name or address host checked
 * in its certificate unless host is NULL. NULL on failure, err saying
 * which file or name and why. */

#include <openssl/ssl.h>

#include "error.h"

SSL_CTX *cm_tls_client_ctx(const char *cafile, const char *cert, const char *key, const char *host, struct cm_err *err);

#endif
