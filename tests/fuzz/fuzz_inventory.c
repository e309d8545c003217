/* The inventory file (<store>/devices.tsv) as read back at start: any
 * bytes are refused or loaded, and what is loaded is used as live
 * records are (snapshot, admission, sorting, lookup). */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "inventory.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct cm_inventory *inv = cm_inventory_new(64);

	if(inv == NULL){
		return 0;
	}
	if(cm_inventory_parse(inv, (const char *)data, size, NULL) == CM_OK && cm_inventory_sort(inv) == CM_OK){
		struct cm_inventory_snapshot *snap = cm_inventory_snapshot(inv);
		bool clone;
		struct cm_cert_facts f;

		memset(&f, 0, sizeof(f));
		/* Live use of what was loaded: an admission and a listing. */
		(void)cm_inventory_admit(inv, "fz", "d:fz:t:1", &f, "", 1, &clone);
		(void)cm_inventory_sort(inv);
		(void)cm_inventory_lower_bound(inv, "fz", "d:");
		cm_inventory_snapshot_free(&snap);
	}
	cm_inventory_free(&inv);
	return 0;
}
