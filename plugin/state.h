#ifndef CM_STATE_H
#define CM_STATE_H
/* The plugin's one state struct, passed to every callback as userdata. */

#include <stdbool.h>
#include <stdint.h>

#include "store.h"

#define CM_MAX_PORTS 64

struct cm_port_slot {
	uint16_t port;
	enum cm_slot_id slot;
};

struct cm_state {
	void *plugin_id; /* mosquitto_plugin_id_t *, opaque here */
	char *store_dir;
	char *hostname;
	/* Which listener port serves which slot. With no entry at all, every
	 * TLS listener of the broker is served from the mqtt slot. */
	struct cm_port_slot ports[CM_MAX_PORTS];
	int port_count;
	struct cm_store *store;
	int ctx_ex_index; /* -1 when the TLS hook is not installed */
	/* Counters for the log and, later, metrics. */
	uint64_t handshakes_served;
};

/* The slot a listener port serves, or -1 when certmgr leaves it alone. */
int cm_state_slot_for_port(const struct cm_state *st, uint16_t port);

#endif
