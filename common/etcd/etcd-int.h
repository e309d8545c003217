#ifndef CM_ETCD_INT_H
#define CM_ETCD_INT_H
/* What etcd.c and etcd_watch.c share. */

#include <curl/curl.h>

#include "etcd.h"

struct cm_etcd {
	char *ep[CM_ETCD_MAX_ENDPOINTS];
	int n, cur;
	char *cafile, *certfile, *keyfile;
	long timeout_ms;
	CURL *curl;
};

/* A JSON POST of body to url on handle c, with the client's TLS files. */
void etcd_setup(const struct cm_etcd *e, CURL *c, const char *url, const char *body, struct curl_slist *headers);

#endif
