#ifndef CM_FETCH_T_H
#define CM_FETCH_T_H
/* The CRL downloads' options (crl/fetch.h), apart from its functions:
 * cm_state holds them, and the core must not include the CRL layer. */

#include <stddef.h>

/* Longest host name of plugin_opt_crl_allowed_hosts. */
#define CM_FETCH_HOST_MAX 253

struct cm_fetch_options {
	long connect_timeout; /* seconds */
	long timeout;         /* seconds, the whole transfer */
	long max_redirects;
	size_t max_size;      /* bytes */
	/* plugin_opt_crl_allowed_hosts, lower case: "name", "*.suffix" or an
	 * address as written in a URL; none: any host. */
	char **allowed_hosts;
	size_t allowed_count;
};

#endif
