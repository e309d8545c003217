/* Writing the inventory off the broker thread. */
#include <stdlib.h>
#include <string.h>

#include "devices.h"
#include "log.h"
#include "worker.h"

struct save_job {
	struct cm_inventory_snapshot *snap;
	char *dir;
	enum cm_rc rc;
	struct cm_err err;
};

enum cm_rc cm_devices_open(struct cm_state *st, struct cm_err *err)
{
	struct cm_err lerr;

	/* The first write too waits for a batch: the first handshakes after a
	 * start do not each cost one. */
	st->inventory_saved = time(NULL);
	st->inventory = cm_inventory_new(st->devices_max);
	if(st->inventory == NULL){
		return cm_err_set(err, CM_ERR_NOMEM, "out of memory");
	}
	/* An observation log, like the rejected list: a damaged one does not
	 * keep the broker from starting. */
	if(st->devices_max && cm_inventory_load(st->inventory, st->store_dir, &lerr) != CM_OK){
		cm_log(CM_LOG_WARNING, "ignoring the device inventory: %s", lerr.msg);
	}
	return CM_OK;
}

static void save_work(void *arg)
{
	struct save_job *j = arg;

	j->rc = cm_inventory_write(j->snap, j->dir, &j->err);
}

static void save_done(struct cm_state *st, void *arg, bool aborted)
{
	struct save_job *j = arg;

	st->inventory_saving = false;
	if(aborted && st->inventory){
		st->inventory->dirty = true; /* written by cm_devices_flush */
	}else if(j->rc != CM_OK){
		cm_log(CM_LOG_WARNING, "cannot save the device inventory: %s", j->err.msg);
		if(st->inventory){
			st->inventory->dirty = true;
		}
	}
	cm_inventory_snapshot_free(&j->snap);
	free(j->dir);
	free(j);
}

/* Hands the complete snapshot to the worker. */
static void submit_save(struct cm_state *st)
{
	struct save_job *j = calloc(1, sizeof(*j));
	struct cm_err err;

	if(j == NULL || (j->dir = strdup(st->store_dir)) == NULL){
		free(j);
		cm_log(CM_LOG_WARNING, "cannot save the device inventory: out of memory");
		cm_inventory_snapshot_free(&st->inventory_snap);
		st->inventory->dirty = true;
		return;
	}
	j->snap = st->inventory_snap;
	st->inventory_snap = NULL;
	if(cm_worker_submit(st, save_work, save_done, j, &err) != CM_OK){
		st->inventory->dirty = true;
		cm_inventory_snapshot_free(&j->snap);
		free(j->dir);
		free(j);
		return;
	}
	st->inventory_saving = true;
}

void cm_devices_tick(struct cm_state *st, time_t now)
{
	int step;

	if(st->inventory == NULL || st->inventory_saving || st->worker == NULL){
		return;
	}
	if(st->inventory_snap == NULL){
		if(!st->inventory->dirty || now - st->inventory_saved < CM_INVENTORY_SAVE_INTERVAL){
			return;
		}
		st->inventory_saved = now;
		if((st->inventory_snap = cm_inventory_snapshot_begin(st->inventory)) == NULL){
			cm_log(CM_LOG_WARNING, "cannot save the device inventory: out of memory");
			return;
		}
	}
	step = cm_inventory_snapshot_step(st->inventory, st->inventory_snap, CM_INVENTORY_SNAPSHOT_STEP);
	if(step < 0){
		cm_log(CM_LOG_WARNING, "cannot save the device inventory: out of memory");
		cm_inventory_snapshot_free(&st->inventory_snap);
		st->inventory->dirty = true;
	}else if(step == 1){
		submit_save(st);
	}
}

void cm_devices_flush(struct cm_state *st)
{
	struct cm_inventory_snapshot *snap;
	struct cm_err err;

	if(st->inventory_snap){
		/* One under way: taken whole now instead. */
		cm_inventory_snapshot_free(&st->inventory_snap);
		if(st->inventory){
			st->inventory->dirty = true;
		}
	}
	if(st->inventory == NULL || !st->inventory->dirty || st->store_dir == NULL){
		return;
	}
	snap = cm_inventory_snapshot(st->inventory);
	if(snap == NULL || cm_inventory_write(snap, st->store_dir, &err) != CM_OK){
		cm_log(CM_LOG_WARNING, "cannot save the device inventory: %s", snap ? err.msg : "out of memory");
	}
	cm_inventory_snapshot_free(&snap);
}
