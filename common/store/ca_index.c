/* A tenant's CAs by id, for walks that look up every entry of another
 * list (n log n, not n squared). */
#define _GNU_SOURCE
#include <stdlib.h>
#include <string.h>

#include "store.h"
#include "store-int.h"

static int ca_sort_cmp(const void *a, const void *b)
{
	return strcmp((*(const struct cm_ca *const *)a)->id, (*(const struct cm_ca *const *)b)->id);
}

static int ca_key_cmp(const void *key, const void *elem)
{
	return strcmp(key, (*(const struct cm_ca *const *)elem)->id);
}

void ca_index_build(struct ca_index *x, const struct cm_tenant *t)
{
	const struct cm_ca *ca;
	size_t n = 0;

	x->t = t;
	x->v = NULL;
	x->n = 0;
	for(ca = t ? t->cas : NULL; ca; ca = ca->next){
		n++;
	}
	if(n == 0 || (x->v = malloc(n * sizeof(*x->v))) == NULL){
		return;
	}
	for(ca = t->cas; ca; ca = ca->next){
		x->v[x->n++] = ca;
	}
	qsort(x->v, x->n, sizeof(*x->v), ca_sort_cmp);
}

const struct cm_ca *ca_index_find(const struct ca_index *x, const char *id)
{
	const struct cm_ca **hit;

	if(x->t == NULL){
		return NULL;
	}
	if(x->v == NULL){
		return cm_tenant_find_ca(x->t, id);
	}
	hit = bsearch(id, x->v, x->n, sizeof(*x->v), ca_key_cmp);
	return hit ? *hit : NULL;
}

/* The first id listed twice in t, or NULL. */
const char *ca_index_duplicate(const struct ca_index *x)
{
	const struct cm_ca *ca, *other;

	if(x->v){
		for(size_t i = 1; i < x->n; i++){
			if(strcmp(x->v[i - 1]->id, x->v[i]->id) == 0){
				return x->v[i]->id;
			}
		}
		return NULL;
	}
	for(ca = x->t ? x->t->cas : NULL; ca; ca = ca->next){
		for(other = ca->next; other; other = other->next){
			if(strcmp(ca->id, other->id) == 0){
				return ca->id;
			}
		}
	}
	return NULL;
}
