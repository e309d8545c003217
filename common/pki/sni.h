#ifndef CM_SNI_H
#define CM_SNI_H
/* The server_name extension of a ClientHello, parsed with every length
 * checked: untrusted bytes from anyone who opens a connection. */

#include <stdbool.h>
#include <stddef.h>

/* The longest host name (RFC 1035: 253 characters written out). */
#define CM_HOSTNAME_MAX 253

/* The first host_name of the extension's body, lower-cased, into out.
 * False when the body is malformed, holds no host name, or the name is
 * empty, longer than 253 bytes, or holds a byte that is not a letter,
 * digit, '-', '_' or '.'. */
bool cm_sni_parse(const unsigned char *ext, size_t len, char out[CM_HOSTNAME_MAX + 1]);

#endif
