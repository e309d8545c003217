/* Lookups in the plugin's state that every layer may make. */
#include <string.h>

#include "state.h"

int cm_state_slot_for_port(const struct cm_state *st, uint16_t port)
{
	int i;

	if(st->port_count == 0){
		return CM_SLOT_MQTT;
	}
	for(i = 0; i < st->port_count; i++){
		if(st->ports[i].port == port){
			return (int)st->ports[i].slot;
		}
	}
	return -1;
}

const struct cm_port_slot *cm_state_port(const struct cm_state *st, uint16_t port)
{
	for(int i = 0; i < st->port_count; i++){
		if(st->ports[i].port == port){
			return &st->ports[i];
		}
	}
	return NULL;
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
