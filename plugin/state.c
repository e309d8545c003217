/* Lookups in the plugin's state that every layer may make. */
#include <string.h>

#include "state.h"

const struct cm_port_slot *cm_state_port(const struct cm_state *st, uint16_t port)
{
	for(int i = 0; i < st->port_count; i++){
		if(st->ports[i].port == port){
			return &st->ports[i];
		}
	}
	return NULL;
}

int cm_state_slot_for_port(const struct cm_state *st, uint16_t port)
{
	const struct cm_port_slot *p;

	if(st->port_count == 0){
		return CM_SLOT_MQTT;
	}
	p = cm_state_port(st, port);
	return p ? (int)p->slot : -1;
}

bool cm_state_is_admin_user(const struct cm_state *st, const char *username)
{
	int i;

	for(i = 0; username && i < st->admin_user_count; i++){
		if(!strcmp(st->admin_users[i], username)){
			return true;
		}
	}
	return false;
}
