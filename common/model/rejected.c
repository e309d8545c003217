#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "fsutil.h"
#include "json.h"
#include "rejected.h"

#define REJECTED_FILE_MAX (64 * 1024 * 1024)

struct cm_rejected_list *cm_rejected_new(size_t max)
{
	struct cm_rejected_list *list = calloc(1, sizeof(*list));

	if(list){
		list->max = max;
	}
	return list;
}

static void entry_free(struct cm_rejected *r)
{
	sk_X509_pop_free(r->chain, X509_free);
	free(r);
}

void cm_rejected_remove(struct cm_rejected_list *list, const char *id)
{
	struct cm_rejected *r = cm_rejected_find(list, id);

	if(r){
		HASH_DEL(list->entries, r);
		entry_free(r);
		list->dirty = true;
	}
}

void cm_rejected_clear(struct cm_rejected_list *list)
{
	struct cm_rejected *r, *tmp;

	HASH_ITER(hh, list->entries, r, tmp){
		HASH_DEL(list->entries, r);
		entry_free(r);
	}
	list->dirty = true;
}

void cm_rejected_free(struct cm_rejected_list **plist)
{
	if(plist && *plist){
		cm_rejected_clear(*plist);
		free(*plist);
		*plist = NULL;
	}
}

struct cm_rejected *cm_rejected_find(struct cm_rejected_list *list, const char *id)
{
	struct cm_rejected *r = NULL;

	if(id){
		HASH_FIND_STR(list->entries, id, r);
	}
	return r;
}

size_t cm_rejected_count(const struct cm_rejected_list *list)
{
	return HASH_COUNT(list->entries);
}

static void copy_field(char *dst, size_t len, const char *src)
{
	snprintf(dst, len, "%s", src ? src : "");
}

/* The first CM_REJECTED_MAX_CHAIN certificates of chain, up-ref'd. */
static STACK_OF(X509) *bounded_copy(STACK_OF(X509) *chain)
{
	STACK_OF(X509) *out = sk_X509_new_null();

	for(int i = 0; out && i < sk_X509_num(chain) && i < CM_REJECTED_MAX_CHAIN; i++){
		if(!sk_X509_push(out, sk_X509_value(chain, i))){
			sk_X509_pop_free(out, X509_free);
			return NULL;
		}
		X509_up_ref(sk_X509_value(chain, i));
	}
	return out;
}

/* Makes room for one more entry. */
static void evict_oldest(struct cm_rejected_list *list)
{
	struct cm_rejected *oldest = NULL, *x, *tmp;

	HASH_ITER(hh, list->entries, x, tmp){
		if(oldest == NULL || x->last_seen < oldest->last_seen){
			oldest = x;
		}
	}
	if(oldest){
		HASH_DEL(list->entries, oldest);
		entry_free(oldest);
	}
}

void cm_rejected_record(struct cm_rejected_list *list, STACK_OF(X509) *chain, const char *reason,
		const char *sni, const char *tenant, const char *address, time_t now)
{
	struct cm_rejected *r;
	char id[CM_ID_LEN + 1];

	if(chain == NULL || sk_X509_num(chain) < 1 || list->max == 0
			|| cm_pki_chain_id(chain, CM_REJECTED_MAX_CHAIN, id, NULL) != CM_OK){
		return;
	}
	r = cm_rejected_find(list, id);
	if(r == NULL){
		if(cm_rejected_count(list) >= list->max){
			evict_oldest(list);
		}
		r = calloc(1, sizeof(*r));
		if(r == NULL || (r->chain = bounded_copy(chain)) == NULL
				|| cm_pki_cert_id(sk_X509_value(chain, 0), r->leaf_id, NULL) != CM_OK){
			if(r){
				entry_free(r);
			}
			return;
		}
		memcpy(r->id, id, sizeof(r->id));
		r->first_seen = now;
		HASH_ADD_STR(list->entries, id, r);
	}
	copy_field(r->reason, sizeof(r->reason), reason);
	copy_field(r->sni, sizeof(r->sni), sni);
	copy_field(r->tenant, sizeof(r->tenant), tenant);
	copy_field(r->address, sizeof(r->address), address);
	r->last_seen = now;
	r->count++;
	list->dirty = true;
}

/* One entry as rejected.json keeps it: what cm_rejected_load reads back
 * (the ids are the chain's, computed again at load). */
static cJSON *record_json(const struct cm_rejected *r)
{
	cJSON *o = cJSON_CreateObject();
	STACK_OF(X509) *rest = sk_X509_dup(r->chain);
	X509 *leaf = rest ? sk_X509_shift(rest) : NULL;
	char *pem = NULL;
	size_t len;
	bool ok = o && leaf && cm_pki_chain_to_pem(leaf, rest, &pem, &len, NULL) == CM_OK
		&& cJSON_AddStringToObject(o, "chain", pem)
		&& cJSON_AddStringToObject(o, "reason", r->reason)
		&& cJSON_AddStringToObject(o, "sni", r->sni)
		&& cJSON_AddStringToObject(o, "tenant", r->tenant)
		&& cJSON_AddStringToObject(o, "address", r->address)
		&& cm_json_add_time(o, "firstSeen", r->first_seen)
		&& cm_json_add_time(o, "lastSeen", r->last_seen)
		&& cJSON_AddNumberToObject(o, "count", (double)r->count);

	sk_X509_free(rest);
	free(pem);
	if(!ok){
		cJSON_Delete(o);
		return NULL;
	}
	return o;
}

enum cm_rc cm_rejected_save(struct cm_rejected_list *list, const char *dir, struct cm_err *err)
{
	char path[PATH_MAX];
	struct cm_rejected *r, *tmp;
	cJSON *root = cJSON_CreateObject(), *arr;
	char *text;
	enum cm_rc rc;

	arr = root ? cJSON_AddArrayToObject(root, "rejected") : NULL;
	if(arr == NULL){
		cJSON_Delete(root);
		return cm_err_set(err, CM_ERR_NOMEM, "out of memory");
	}
	HASH_ITER(hh, list->entries, r, tmp){
		cJSON *o = record_json(r);
		if(o == NULL || !cJSON_AddItemToArray(arr, o)){
			cJSON_Delete(o);
			cJSON_Delete(root);
			return cm_err_set(err, CM_ERR_NOMEM, "out of memory");
		}
	}
	text = cJSON_PrintUnformatted(root);
	cJSON_Delete(root);
	if(text == NULL){
		return cm_err_set(err, CM_ERR_NOMEM, "out of memory");
	}
	rc = cm_fs_path(path, sizeof(path), err, "%s/rejected.json", dir);
	if(rc == CM_OK){
		rc = cm_fs_write_atomic(path, text, strlen(text), 0600, err);
	}
	free(text);
	if(rc == CM_OK){
		list->dirty = false;
	}
	return rc;
}

enum cm_rc cm_rejected_load(struct cm_rejected_list *list, const char *dir, struct cm_err *err)
{
	char path[PATH_MAX];
	char *text = NULL;
	size_t len = 0;
	cJSON *root;
	const cJSON *arr = NULL, *e;
	enum cm_rc rc;

	if(cm_fs_path(path, sizeof(path), err, "%s/rejected.json", dir) != CM_OK){
		return CM_ERR_INVAL;
	}
	rc = cm_fs_read_file(path, REJECTED_FILE_MAX, &text, &len, err);
	if(rc != CM_OK){
		return access(path, F_OK) == 0 ? rc : CM_OK;
	}
	root = cJSON_ParseWithLength(text, len);
	free(text);
	if(root == NULL || cm_json_get_array(root, "rejected", true, &arr, err) != CM_OK){
		cJSON_Delete(root);
		return cm_err_set(err, CM_ERR_CORRUPT, "%s is not a list of rejected chains", path);
	}
	cJSON_ArrayForEach(e, arr){
		const char *reason = "", *sni = "", *tenant = "", *address = "", *chain_pem = NULL;
		time_t first = 0, last = 0;
		int64_t count = 1;
		X509 *leaf = NULL;
		STACK_OF(X509) *rest = NULL;
		struct cm_rejected *r;
		char id[CM_ID_LEN + 1];

		if(cm_json_get_string(e, "reason", false, &reason, err) != CM_OK
				|| cm_json_get_string(e, "sni", false, &sni, err) != CM_OK
				|| cm_json_get_string(e, "tenant", false, &tenant, err) != CM_OK
				|| cm_json_get_string(e, "address", false, &address, err) != CM_OK
				|| cm_json_get_string(e, "chain", true, &chain_pem, err) != CM_OK
				|| cm_json_get_time(e, "firstSeen", true, &first, err) != CM_OK
				|| cm_json_get_time(e, "lastSeen", true, &last, err) != CM_OK
				|| cm_json_get_int(e, "count", true, 1, INT64_MAX, &count, err) != CM_OK
				|| cm_pki_parse_chain_pem(chain_pem, strlen(chain_pem), &leaf, &rest, err) != CM_OK
				|| !sk_X509_insert(rest, leaf, 0)){
			X509_free(leaf);
			sk_X509_pop_free(rest, X509_free);
			cJSON_Delete(root);
			cm_rejected_clear(list);
			return cm_err_set(err, CM_ERR_CORRUPT, "%s holds a damaged entry", path);
		}
		if(cm_pki_chain_id(rest, CM_REJECTED_MAX_CHAIN, id, NULL) == CM_OK){
			cm_rejected_record(list, rest, reason, sni, tenant, address, last);
			if((r = cm_rejected_find(list, id)) != NULL){
				r->first_seen = first;
				r->count = (uint64_t)count;
			}
		}
		sk_X509_pop_free(rest, X509_free);
	}
	cJSON_Delete(root);
	list->dirty = false;
	return CM_OK;
}
