#ifndef CM_AUTH_H
#define CM_AUTH_H
/* Who a client is, for certmgr: MOSQ_EVT_BASIC_AUTH checks device
 * identity against the certificate's tag, MOSQ_EVT_ACL_CHECK keeps
 * devices inside their tenant's topic patterns and the control topic to
 * administrators, MOSQ_EVT_DISCONNECT forgets the connection. */

#include <stdbool.h>

#include "state.h"
#include "types.h"

int cm_auth_basic_cb(int event, void *event_data, void *userdata);
int cm_auth_acl_cb(int event, void *event_data, void *userdata);
int cm_auth_disconnect_cb(int event, void *event_data, void *userdata);

/* client is a struct mosquitto *. */
enum cm_admin_via cm_auth_admin(const struct cm_state *st, const void *client);

/* From the tick: re-checks the tenants the registry queued since the
 * last tick (registry.h), and every device once the earliest expiry of
 * the connected ones has come. */
int cm_auth_tick_cb(int event, void *event_data, void *userdata);

/* Disconnects the devices of tenant (every tenant when NULL) whose next
 * handshake would be refused: tenant deleted, host name moved, policy or
 * org id changed, chain no longer verifying against the tenant's trust
 * (a CA removed or deactivated, a pin removed, a certificate expired). */
void cm_auth_recheck(struct cm_state *st, const char *tenant);

/* The record of a client certmgr authenticated (client: struct
 * mosquitto *), or NULL. Borrowed until its disconnect. */
const struct cm_client *cm_auth_find_client(const struct cm_state *st, const void *client);

/* Forgets every client record (plugin cleanup). */
void cm_auth_clear(struct cm_state *st);

#endif
