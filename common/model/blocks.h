#ifndef CM_BLOCKS_H
#define CM_BLOCKS_H
/* A tenant's blocks: device ids and certificates an operator refuses at
 * once, whatever else would admit them. Part of the tenant (tenant-t.h),
 * so that a block is committed, persisted and replicated with the rest of
 * it; each list is kept sorted by key for a lookup per handshake. */

#include <stdbool.h>
#include <stddef.h>
#include <time.h>

#include "error.h"
#include "tenant-t.h"

/* Checks a device id for a block: 1 to CM_BLOCK_KEY_MAX bytes, none of
 * them a control character (an MQTT client id of any tenant's policy). */
bool cm_block_device_id_valid(const char *id);

/* The entry of key in l, or NULL. */
const struct cm_block *cm_blocks_find(const struct cm_blocklist *l, const char *key);

/* Adds key to l (copies of key, reason and by), in order. Refuses a key
 * already there and a list at CM_BLOCKS_MAX; l is unchanged on failure. */
CM_MUST_CHECK enum cm_rc cm_blocks_add(struct cm_blocklist *l, const char *key, const char *reason, const char *by, time_t at,
		struct cm_err *err);

/* Removes key from l; false when it was not there. */
bool cm_blocks_remove(struct cm_blocklist *l, const char *key);

/* Replaces dst with a deep copy of src; on failure dst is left empty. */
CM_MUST_CHECK enum cm_rc cm_blocks_copy(struct cm_blocklist *dst, const struct cm_blocklist *src);

/* Sorts l and refuses a key listed twice (a list read from a file). */
CM_MUST_CHECK enum cm_rc cm_blocks_sort_unique(struct cm_blocklist *l, struct cm_err *err);

/* Frees the entries of l and leaves it empty; twice is harmless. */
void cm_blocks_clear(struct cm_blocklist *l);

/* The block of the device id clientid of tenant t, or NULL. */
const struct cm_block *cm_tenant_device_blocked(const struct cm_tenant *t, const char *clientid);
/* The block of the certificate of that id (cm_pki_cert_id), or NULL. */
const struct cm_block *cm_tenant_cert_blocked(const struct cm_tenant *t, const char *cert_id);

#endif
