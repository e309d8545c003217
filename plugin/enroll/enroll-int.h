#ifndef CM_ENROLL_INT_H
#define CM_ENROLL_INT_H
/* What the files of plugin/enroll/ share; users include enrolling.h. */

#include <mosquitto.h>

#include "enrolling.h"
#include "sign.h"

/* A device's request between its arrival and its answer. */
struct cm_enroll_req {
	const void *client;  /* struct mosquitto *; NULL once it is gone */
	char *clientid;
	char tenant[CM_TENANT_NAME_MAX + 1];
	char ident[CM_ENROLL_IDENT_MAX + 1];
	char *correlation;   /* the payload's correlationData */
	void *corr5;         /* the MQTT v5 correlation data, and its length */
	uint16_t corr5_len;
	bool renewal;
	char old_serial[CM_SERIAL_HEX_MAX + 1];
	struct cm_enroll_req *next;
};

struct cm_enrolling {
	struct cm_enroll_req *reqs;  /* waiting for the worker */
	unsigned long last_number;   /* the last cRLNumber handed out */
	time_t scanned;              /* the tick's last look at the CRLs due */
	char (*crl_busy)[CM_TENANT_NAME_MAX + 1]; /* tenants whose CRL is being signed */
	size_t ncrl_busy;
};

/* signing.c: the plugin's enrollment state, made on first use (NULL:
 * out of memory). */
struct cm_enrolling *enrolling_of(struct cm_state *st);

/* request.c: answers req (fields taken) and frees it. */
void enroll_answer(struct cm_state *st, struct cm_enroll_req *req, cJSON *fields);
void enroll_req_free(struct cm_enroll_req *req);

#endif
