/* A tenant's blocked device ids and certificates: sorted arrays, looked
 * up by binary search at every handshake and CONNECT of its devices. */
#include <stdlib.h>
#include <string.h>

#include "blocks.h"

bool cm_block_device_id_valid(const char *id)
{
	size_t n = 0;

	if(id == NULL){
		return false;
	}
	for(; id[n]; n++){
		if((unsigned char)id[n] < 0x20 || id[n] == 0x7f){
			return false;
		}
	}
	return n >= 1 && n <= CM_BLOCK_KEY_MAX;
}

/* The index of key in l, or of where it would go (*found false). */
static size_t position(const struct cm_blocklist *l, const char *key, bool *found)
{
	size_t lo = 0, hi = l->n;

	*found = false;
	while(lo < hi){
		size_t mid = lo + (hi - lo) / 2;
		int c = strcmp(l->v[mid].key, key);
		if(c == 0){
			*found = true;
			return mid;
		}
		if(c < 0){
			lo = mid + 1;
		}else{
			hi = mid;
		}
	}
	return lo;
}

const struct cm_block *cm_blocks_find(const struct cm_blocklist *l, const char *key)
{
	bool found;
	size_t i;

	if(l->n == 0 || key == NULL){
		return NULL;
	}
	i = position(l, key, &found);
	return found ? &l->v[i] : NULL;
}

static void block_free(struct cm_block *b)
{
	free(b->key);
	free(b->reason);
	free(b->by);
	memset(b, 0, sizeof(*b));
}

/* b filled with copies; false when out of memory (b then empty). */
static bool block_set(struct cm_block *b, const char *key, const char *reason, const char *by, time_t at)
{
	b->key = strdup(key);
	b->reason = strdup(reason ? reason : "");
	b->by = strdup(by ? by : "");
	b->at = at;
	if(b->key == NULL || b->reason == NULL || b->by == NULL){
		block_free(b);
		return false;
	}
	return true;
}

enum cm_rc cm_blocks_add(struct cm_blocklist *l, const char *key, const char *reason, const char *by, time_t at, struct cm_err *err)
{
	struct cm_block b, *grown;
	bool found;
	size_t i = position(l, key, &found);

	if(found){
		return cm_err_set(err, CM_ERR_INVAL, "'%.80s' is blocked already (since the block of %.40s)", key, l->v[i].by);
	}
	if(l->n >= CM_BLOCKS_MAX){
		return cm_err_set(err, CM_ERR_INVAL, "a tenant holds at most %d blocks of each kind: for more, deactivate the CA that issued them",
				CM_BLOCKS_MAX);
	}
	if(!block_set(&b, key, reason, by, at)){
		return cm_err_set(err, CM_ERR_NOMEM, "out of memory");
	}
	grown = realloc(l->v, (l->n + 1) * sizeof(*l->v));
	if(grown == NULL){
		block_free(&b);
		return cm_err_set(err, CM_ERR_NOMEM, "out of memory");
	}
	l->v = grown;
	memmove(&l->v[i + 1], &l->v[i], (l->n - i) * sizeof(*l->v));
	l->v[i] = b;
	l->n++;
	return CM_OK;
}

bool cm_blocks_remove(struct cm_blocklist *l, const char *key)
{
	bool found;
	size_t i = l->n ? position(l, key, &found) : 0;

	if(l->n == 0 || !found){
		return false;
	}
	block_free(&l->v[i]);
	memmove(&l->v[i], &l->v[i + 1], (l->n - i - 1) * sizeof(*l->v));
	l->n--;
	return true;
}

void cm_blocks_clear(struct cm_blocklist *l)
{
	for(size_t i = 0; i < l->n; i++){
		block_free(&l->v[i]);
	}
	free(l->v);
	l->v = NULL;
	l->n = 0;
}

enum cm_rc cm_blocks_copy(struct cm_blocklist *dst, const struct cm_blocklist *src)
{
	struct cm_blocklist fresh = {NULL, 0};

	cm_blocks_clear(dst);
	if(src->n == 0){
		return CM_OK;
	}
	fresh.v = calloc(src->n, sizeof(*fresh.v));
	if(fresh.v == NULL){
		return CM_ERR_NOMEM;
	}
	for(; fresh.n < src->n; fresh.n++){
		const struct cm_block *b = &src->v[fresh.n];
		if(!block_set(&fresh.v[fresh.n], b->key, b->reason, b->by, b->at)){
			cm_blocks_clear(&fresh);
			return CM_ERR_NOMEM;
		}
	}
	*dst = fresh;
	return CM_OK;
}

static int cmp_key(const void *a, const void *b)
{
	return strcmp(((const struct cm_block *)a)->key, ((const struct cm_block *)b)->key);
}

enum cm_rc cm_blocks_sort_unique(struct cm_blocklist *l, struct cm_err *err)
{
	if(l->n == 0){
		return CM_OK;
	}
	qsort(l->v, l->n, sizeof(*l->v), cmp_key);
	for(size_t i = 1; i < l->n; i++){
		if(!strcmp(l->v[i - 1].key, l->v[i].key)){
			return cm_err_set(err, CM_ERR_CORRUPT, "'%.80s' is blocked twice", l->v[i].key);
		}
	}
	return CM_OK;
}

const struct cm_block *cm_tenant_device_blocked(const struct cm_tenant *t, const char *clientid)
{
	return cm_blocks_find(&t->blocked_devices, clientid);
}

const struct cm_block *cm_tenant_cert_blocked(const struct cm_tenant *t, const char *cert_id)
{
	return cm_blocks_find(&t->blocked_certs, cert_id);
}
