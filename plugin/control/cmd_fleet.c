/* listNodes: the nodes of a fleet (plugin_opt_store etcd). */
#include "control.h"
#include "fleet.h"

static enum cm_rc list_nodes(struct cm_state *st, const struct cm_caller *who, const cJSON *cmd, cJSON *data, struct cm_err *err)
{
	cJSON *nodes;

	(void)who;
	(void)cmd;
	if(st->fleet == NULL){
		return cm_err_set(err, CM_ERR_INVAL, "this broker is no fleet node: plugin_opt_store is files");
	}
	nodes = cm_fleet_nodes_json(st);
	if(nodes == NULL || !cJSON_AddItemToObject(data, "nodes", nodes)){
		cJSON_Delete(nodes);
		return cm_cmd_nomem(err);
	}
	if(!cJSON_AddStringToObject(data, "node", st->fleet_opts.node_name)){
		return cm_cmd_nomem(err);
	}
	return CM_OK;
}

const struct cm_command cm_fleet_commands[] = {
	{"listNodes", list_nodes, CM_READS, cm_fields_none},
	{NULL, NULL, CM_READS, NULL},
};
