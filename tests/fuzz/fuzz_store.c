/* The store loader against damaged files: the input becomes a tenant's
 * tenant.json next to an otherwise valid store, which is loaded once; each
 * input then goes through the loader's per-tenant step (parse, validate,
 * check against the other tenants, build the trust store). Loading the
 * whole store per input would spend nearly all the time parsing the slots'
 * unchanging keys. */
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
static struct cm_store *loaded;

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char path[600];
	bool created;

	if(dir[0] == '\0'){
		const char *tmp = getenv("CERTMGR_FUZZ_TMP");
		snprintf(dir, sizeof(dir), "%s/certmgr-fuzz-store-%d", tmp && tmp[0] ? tmp : "/tmp", (int)getpid());
		if(cm_store_open(dir, "fuzz", &loaded, &created, NULL) != CM_OK){
			abort();
		}
		snprintf(path, sizeof(path), "%s/tenants/fz", dir);
		mkdir(path, 0700);
	}
	snprintf(path, sizeof(path), "%s/tenants/fz/tenant.json", dir);
	if(cm_fs_write_atomic(path, data, size, 0600, NULL) != CM_OK){
		return 0;
	}
	(void)cm_store_check_tenant_dir(loaded, "fz", NULL);
	return 0;
}
