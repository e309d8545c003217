/* What etcd hands a node: records (a tenant's files) and the key-values of
 * the gateway's answers. A record is written below a scratch directory
 * only: never outside it, whatever its paths say. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cjson/cJSON.h>

#include "etcd.h"
#include "record.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void remove_tree(const char *dir)
{
	char cmd[512];

	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	if(system(cmd) != 0){
		abort();
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *tmp = getenv("CERTMGR_FUZZ_TMP");
	char dir[400];
	cJSON *j = NULL, *kv;
	struct cm_etcd_kv out;
	struct cm_err err;

	if(cm_record_parse((const char *)data, size, &j, &err) == CM_OK){
		cJSON_Delete(j);
		snprintf(dir, sizeof(dir), "%s/rec-%d", tmp ? tmp : "/tmp", (int)getpid());
		(void)cm_record_write(NULL, "/p/", (const char *)data, size, dir, &err);
		remove_tree(dir);
	}
	j = cJSON_ParseWithLength((const char *)data, size);
	cJSON_ArrayForEach(kv, cJSON_GetObjectItemCaseSensitive(j, "kvs")){
		if(cm_etcd_kv_parse(kv, &out, &err) == CM_OK){
			cm_etcd_kv_clear(&out);
		}
	}
	(void)cm_etcd_number(j, "revision");
	cJSON_Delete(j);
	return 0;
}
