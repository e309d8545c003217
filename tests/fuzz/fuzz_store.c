/* The store loader against damaged files: the input becomes a tenant's
 * tenant.json in an otherwise valid store, then the store is loaded. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "fsutil.h"
#include "store.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static char dir[512];

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct cm_store *store = NULL;
	char path[600];
	bool created;

	if(dir[0] == '\0'){
		const char *tmp = getenv("CERTMGR_FUZZ_TMP");
		snprintf(dir, sizeof(dir), "%s/certmgr-fuzz-store-%d", tmp && tmp[0] ? tmp : "/tmp", (int)getpid());
		if(cm_store_open(dir, "fuzz", &store, &created, NULL) != CM_OK){
			abort();
		}
		cm_store_free(&store);
		snprintf(path, sizeof(path), "%s/tenants/fz", dir);
		mkdir(path, 0700);
	}
	snprintf(path, sizeof(path), "%s/tenants/fz/tenant.json", dir);
	if(cm_fs_write_atomic(path, data, size, 0600, NULL) != CM_OK){
		return 0;
	}
	if(cm_store_load(dir, &store, NULL) == CM_OK){
		cm_store_free(&store);
	}
	return 0;
}
