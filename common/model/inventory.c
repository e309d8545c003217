/* The devices this node admitted: records in a chained hash table for
 * the lookup of each CONNECT, and an order array sorted lazily (what was
 * added since the last listing is sorted and merged in) for listings. */
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>
#include <openssl/x509.h>

#include "inventory.h"
#include "pki.h"
#include <stdio.h>

#define INITIAL_BUCKETS 1024
/* Records looked at to choose the one a full inventory forgets. */
#define EVICT_SAMPLES 16
#define EVICT_TRIES 8

struct cm_inventory *cm_inventory_new(size_t max)
{
	struct cm_inventory *inv = calloc(1, sizeof(*inv));

	if(inv == NULL){
		return NULL;
	}
	inv->max = max;
	inv->rng = 0x9e3779b97f4a7c15ULL ^ (uint64_t)time(NULL);
	return inv;
}

void cm_inventory_empty(struct cm_inventory *inv)
{
	size_t max = inv->max;
	uint64_t rng = inv->rng;

	for(size_t i = 0; i < inv->order_n; i++){
		free(inv->order[i]);
	}
	free(inv->order);
	free(inv->buckets);
	free(inv->tenants.v);
	free(inv->issuers.v);
	memset(inv, 0, sizeof(*inv));
	inv->max = max;
	inv->rng = rng;
}

void cm_inventory_free(struct cm_inventory **pinv)
{
	if(pinv == NULL || *pinv == NULL){
		return;
	}
	cm_inventory_empty(*pinv);
	free(*pinv);
	*pinv = NULL;
}

uint16_t cm_names_intern(struct cm_names *names, const char *name)
{
	size_t len = strlen(name);

	if(len > CM_ID_LEN){
		return CM_INV_NONE;
	}
	/* Few names (tenants, CAs that issued devices): a walk is enough. */
	for(size_t i = 0; i < names->n; i++){
		if(!strcmp(names->v[i], name)){
			return (uint16_t)i;
		}
	}
	if(names->n >= CM_INV_NAMES_MAX){
		return CM_INV_NONE;
	}
	if(names->n == names->cap){
		size_t cap = names->cap ? names->cap * 2 : 8;
		char (*grown)[CM_ID_LEN + 1] = realloc(names->v, cap * sizeof(*names->v));
		if(grown == NULL){
			return CM_INV_NONE;
		}
		names->v = grown;
		names->cap = cap;
	}
	memcpy(names->v[names->n], name, len + 1);
	return (uint16_t)names->n++;
}

/* The index of name, or CM_INV_NONE; never adds. */
static uint16_t names_find(const struct cm_names *names, const char *name)
{
	for(size_t i = 0; i < names->n; i++){
		if(!strcmp(names->v[i], name)){
			return (uint16_t)i;
		}
	}
	return CM_INV_NONE;
}

const char *cm_inventory_tenant(const struct cm_inventory *inv, const struct cm_device *dev)
{
	return dev->tenant < inv->tenants.n ? inv->tenants.v[dev->tenant] : "";
}

const char *cm_inventory_issuer(const struct cm_inventory *inv, const struct cm_device *dev)
{
	return dev->issuer < inv->issuers.n ? inv->issuers.v[dev->issuer] : "";
}

static int key_type_of(const EVP_PKEY *key)
{
	switch(EVP_PKEY_get_base_id(key)){
		case EVP_PKEY_RSA:
		case EVP_PKEY_RSA_PSS:
			return CM_KEY_TYPE_RSA;
		case EVP_PKEY_EC:
			return CM_KEY_TYPE_EC;
		case EVP_PKEY_ED25519:
			return CM_KEY_TYPE_ED25519;
		case EVP_PKEY_ED448:
			return CM_KEY_TYPE_ED448;
		case EVP_PKEY_DSA:
			return CM_KEY_TYPE_DSA;
		default:
			return CM_KEY_TYPE_UNKNOWN;
	}
}

bool cm_cert_facts_of(X509 *cert, struct cm_cert_facts *out)
{
	const ASN1_INTEGER *serial = X509_get0_serialNumber(cert);
	EVP_PKEY *key = X509_get0_pubkey(cert);
	unsigned int n = 0;
	int nid = X509_get_signature_nid(cert);

	memset(out, 0, sizeof(*out));
	if(X509_digest(cert, EVP_sha256(), out->fp, &n) != 1 || n != CM_FP_LEN){
		return false;
	}
	if(serial && serial->length > 0 && serial->length <= CM_SERIAL_MAX){
		memcpy(out->serial, serial->data, (size_t)serial->length);
		out->serial_len = (uint8_t)serial->length;
	}
	if(key){
		int bits = EVP_PKEY_get_bits(key);
		out->key_type = (uint8_t)key_type_of(key);
		out->key_bits = (uint16_t)(bits > 0 && bits < 65536 ? bits : 0);
	}
	out->sig_nid = (uint16_t)(nid > 0 && nid < 65536 ? nid : 0);
	out->not_after = (int64_t)cm_pki_not_after(cert);
	return true;
}

/* FNV-1a over the tenant index and the id. */
static size_t hash_of(uint16_t tenant, const char *id)
{
	uint64_t h = 1469598103934665603ULL ^ tenant;

	for(; *id; id++){
		h = (h ^ (unsigned char)*id) * 1099511628211ULL;
	}
	return (size_t)(h ^ (h >> 29));
}

static struct cm_device *find_in(const struct cm_inventory *inv, uint16_t tenant, const char *id)
{
	struct cm_device *d;

	if(inv->nbuckets == 0){
		return NULL;
	}
	for(d = inv->buckets[hash_of(tenant, id) & (inv->nbuckets - 1)]; d; d = d->next){
		if(d->tenant == tenant && !strcmp(d->id, id)){
			return d;
		}
	}
	return NULL;
}

struct cm_device *cm_inventory_find(struct cm_inventory *inv, const char *tenant, const char *id)
{
	uint16_t t = names_find(&inv->tenants, tenant);

	return t == CM_INV_NONE ? NULL : find_in(inv, t, id);
}

/* Doubles the buckets at a load of one; false when out of memory (the
 * chains only grow longer then). */
static bool grow_buckets(struct cm_inventory *inv)
{
	size_t n = inv->nbuckets ? inv->nbuckets * 2 : INITIAL_BUCKETS;
	struct cm_device **b = calloc(n, sizeof(*b));

	if(b == NULL){
		return inv->nbuckets != 0;
	}
	for(size_t i = 0; i < inv->nbuckets; i++){
		struct cm_device *d = inv->buckets[i], *next;
		for(; d; d = next){
			size_t h = hash_of(d->tenant, d->id) & (n - 1);
			next = d->next;
			d->next = b[h];
			b[h] = d;
		}
	}
	free(inv->buckets);
	inv->buckets = b;
	inv->nbuckets = n;
	return true;
}

static void unlink_hash(struct cm_inventory *inv, struct cm_device *dev)
{
	struct cm_device **p = &inv->buckets[hash_of(dev->tenant, dev->id) & (inv->nbuckets - 1)];

	for(; *p; p = &(*p)->next){
		if(*p == dev){
			*p = dev->next;
			return;
		}
	}
}

static uint64_t next_random(struct cm_inventory *inv)
{
	/* xorshift64: which record to look at, not a secret. */
	inv->rng ^= inv->rng << 13;
	inv->rng ^= inv->rng >> 7;
	inv->rng ^= inv->rng << 17;
	return inv->rng;
}

/* Forgets one device not connected, the one seen longest ago among a
 * sample; false when every one looked at is connected. */
static bool evict_one(struct cm_inventory *inv)
{
	struct cm_device *victim = NULL;

	for(int tries = 0; victim == NULL && tries < EVICT_TRIES; tries++){
		for(int i = 0; i < EVICT_SAMPLES; i++){
			struct cm_device *d = inv->order[next_random(inv) % inv->order_n];
			if(d && d->connected == 0 && (victim == NULL || d->last_seen < victim->last_seen)){
				victim = d;
			}
		}
	}
	if(victim == NULL){
		return false;
	}
	unlink_hash(inv, victim);
	inv->order[victim->pos] = NULL;
	inv->holes++;
	inv->count--;
	free(victim);
	return true;
}

/* A new record for (tenant, id) in the hash and at the end of the order;
 * NULL when out of memory or full of connected devices. */
static struct cm_device *add_record(struct cm_inventory *inv, uint16_t tenant, const char *id, size_t len)
{
	struct cm_device *d;

	if(inv->count >= inv->max && !evict_one(inv)){
		inv->dropped++;
		return NULL;
	}
	if((inv->count >= inv->nbuckets && !grow_buckets(inv))){
		return NULL;
	}
	if(inv->order_n == inv->order_cap){
		if(inv->holes > 0 && cm_inventory_sort(inv) == CM_OK && inv->order_n < inv->order_cap){
			/* room made by closing the holes */
		}else{
			size_t cap = inv->order_cap ? inv->order_cap * 2 : 1024;
			struct cm_device **grown = realloc(inv->order, cap * sizeof(*grown));
			if(grown == NULL){
				return NULL;
			}
			inv->order = grown;
			inv->order_cap = cap;
		}
	}
	d = calloc(1, sizeof(*d) + len + 1);
	if(d == NULL){
		return NULL;
	}
	memcpy(d->id, id, len + 1);
	d->id_len = (uint8_t)(len > 255 ? 255 : len);
	d->tenant = tenant;
	d->issuer = CM_INV_NONE;
	size_t h = hash_of(tenant, id) & (inv->nbuckets - 1);
	d->next = inv->buckets[h];
	inv->buckets[h] = d;
	d->pos = (uint32_t)inv->order_n;
	inv->order[inv->order_n++] = d;
	inv->count++;
	return d;
}

struct cm_device *cm_inventory_put(struct cm_inventory *inv, const char *tenant, const char *id)
{
	uint16_t t;
	struct cm_device *d;
	size_t len = strlen(id);

	if(inv->max == 0 || len == 0 || len > CM_BLOCK_KEY_MAX || (t = cm_names_intern(&inv->tenants, tenant)) == CM_INV_NONE){
		return NULL;
	}
	d = find_in(inv, t, id);
	return d ? d : add_record(inv, t, id, len);
}

static const char *const key_type_names[CM_KEY_TYPE_COUNT] = {"unknown", "rsa", "ec", "ed25519", "ed448", "dsa"};

const char *cm_key_type_name(int type)
{
	return type >= 0 && type < CM_KEY_TYPE_COUNT ? key_type_names[type] : "unknown";
}

int cm_key_type_parse(const char *name)
{
	for(int i = 0; i < CM_KEY_TYPE_COUNT; i++){
		if(!strcmp(name, key_type_names[i])){
			return i;
		}
	}
	return -1;
}

static uint64_t prefix_of(const unsigned char fp[CM_FP_LEN])
{
	uint64_t v;

	memcpy(&v, fp, sizeof(v));
	return v ? v : 1;
}

/* The record's certificate becomes cert; counted when it was not one of
 * the last CM_INV_PREV + 1 it used. */
static void use_cert(struct cm_device *d, const struct cm_cert_facts *cert)
{
	uint64_t now = prefix_of(cert->fp), cur = prefix_of(d->cert.fp), kept[CM_INV_PREV] = {0};
	bool known = false;
	int n = 1;

	if(d->certs == 0){
		d->cert = *cert;
		d->certs = 1;
		return;
	}
	if(!memcmp(d->cert.fp, cert->fp, CM_FP_LEN)){
		d->cert = *cert;
		return;
	}
	for(int i = 0; i < CM_INV_PREV; i++){
		known = known || d->prev[i] == now;
	}
	if(!known && d->certs < UINT16_MAX){
		d->certs++;
	}
	/* The earlier ones, the latest first: the one used until now, then
	 * the others but the one used from now on. */
	kept[0] = cur;
	for(int i = 0; i < CM_INV_PREV && n < CM_INV_PREV; i++){
		if(d->prev[i] && d->prev[i] != now && d->prev[i] != cur){
			kept[n++] = d->prev[i];
		}
	}
	memcpy(d->prev, kept, sizeof(kept));
	d->cert = *cert;
}

static void add_clone(struct cm_inventory *inv, const struct cm_device *d, const unsigned char other[CM_FP_LEN], time_t now)
{
	struct cm_clone *c = &inv->clones[inv->clone_next];

	c->tenant = d->tenant;
	c->at = (uint32_t)now;
	memcpy(c->fp[0], d->cert.fp, CM_FP_LEN);
	memcpy(c->fp[1], other, CM_FP_LEN);
	snprintf(c->id, sizeof(c->id), "%s", d->id);
	inv->clone_next = (inv->clone_next + 1) % CM_INV_CLONES_MAX;
	if(inv->clone_n < CM_INV_CLONES_MAX){
		inv->clone_n++;
	}
}

struct cm_device *cm_inventory_admit(struct cm_inventory *inv, const char *tenant, const char *id, const struct cm_cert_facts *cert,
		const char *issuer, time_t now, bool *clone)
{
	uint16_t t;
	struct cm_device *d;
	size_t len = strlen(id);

	*clone = false;
	if(inv == NULL || inv->max == 0 || len > CM_BLOCK_KEY_MAX || (t = cm_names_intern(&inv->tenants, tenant)) == CM_INV_NONE){
		return NULL;
	}
	d = find_in(inv, t, id);
	if(d == NULL){
		if((d = add_record(inv, t, id, len)) == NULL){
			return NULL;
		}
		d->first_seen = (uint32_t)now;
	}else if(d->connected > 0 && memcmp(d->cert.fp, cert->fp, CM_FP_LEN)){
		*clone = true;
		add_clone(inv, d, cert->fp, now);
	}
	use_cert(d, cert);
	d->issuer = issuer && issuer[0] ? cm_names_intern(&inv->issuers, issuer) : CM_INV_NONE;
	d->last_seen = (uint32_t)now;
	if(d->connected < UINT16_MAX){
		d->connected++;
	}
	inv->dirty = true;
	return d;
}

void cm_inventory_disconnected(struct cm_inventory *inv, struct cm_device *dev)
{
	(void)inv;
	if(dev && dev->connected > 0){
		dev->connected--;
	}
}

void cm_inventory_refused(struct cm_inventory *inv, const char *tenant, const char *id, int refusal, time_t now)
{
	struct cm_device *d = inv ? cm_inventory_find(inv, tenant, id) : NULL;

	if(d){
		d->refusal = (uint8_t)(refusal + 1);
		d->refused_at = (uint32_t)now;
		inv->dirty = true;
	}
}

static int cmp_device(const void *a, const void *b)
{
	const struct cm_device *x = *(struct cm_device *const *)a, *y = *(struct cm_device *const *)b;

	if(x->tenant != y->tenant){
		return x->tenant < y->tenant ? -1 : 1;
	}
	return strcmp(x->id, y->id);
}

enum cm_rc cm_inventory_sort(struct cm_inventory *inv)
{
	size_t tail = inv->order_n - inv->sorted_n, i = 0, j, k = 0;
	struct cm_device **merged;

	if(tail == 0 && inv->holes == 0){
		return CM_OK;
	}
	/* The tail without its holes, then sorted. */
	for(j = inv->sorted_n; j < inv->order_n; j++){
		if(inv->order[j]){
			inv->order[inv->sorted_n + k++] = inv->order[j];
		}
	}
	inv->order_n = inv->sorted_n + k;
	tail = k;
	k = 0;
	qsort(inv->order + inv->sorted_n, tail, sizeof(*inv->order), cmp_device);
	merged = malloc((inv->order_cap ? inv->order_cap : 1) * sizeof(*merged));
	if(merged == NULL){
		return CM_ERR_NOMEM;
	}
	j = inv->sorted_n;
	while(i < inv->sorted_n || j < inv->order_n){
		struct cm_device *a = i < inv->sorted_n ? inv->order[i] : NULL, *b = j < inv->order_n ? inv->order[j] : NULL;
		if(i < inv->sorted_n && a == NULL){
			i++;
			continue;
		}
		if(j < inv->order_n && b == NULL){
			j++;
			continue;
		}
		if(b == NULL || (a && cmp_device(&a, &b) <= 0)){
			merged[k] = a;
			i++;
		}else{
			merged[k] = b;
			j++;
		}
		merged[k]->pos = (uint32_t)k;
		k++;
	}
	free(inv->order);
	inv->order = merged;
	inv->order_n = inv->sorted_n = k;
	inv->holes = 0;
	return CM_OK;
}

size_t cm_inventory_lower_bound(const struct cm_inventory *inv, const char *tenant, const char *prefix)
{
	uint16_t t = names_find(&inv->tenants, tenant);
	size_t lo = 0, hi = inv->order_n;

	if(t == CM_INV_NONE){
		return inv->order_n;
	}
	while(lo < hi){
		size_t mid = lo + (hi - lo) / 2;
		const struct cm_device *d = inv->order[mid];
		if(d->tenant < t || (d->tenant == t && strcmp(d->id, prefix) < 0)){
			lo = mid + 1;
		}else{
			hi = mid;
		}
	}
	return lo;
}
