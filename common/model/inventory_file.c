/* <store>/devices.tsv: the inventory as text, one device a line,
 * tab-separated, written whole from a snapshot (so that the broker
 * thread only copies) and read back at start.
 *
 *   certmgr-devices	1
 *   d	TENANT	ID	FP	SERIAL	ISSUER	NOTAFTER	KEYTYPE	BITS	SIGALG	FIRST	LAST	CERTS	PREV	REFUSAL	REFUSEDAT
 *   c	TENANT	ID	FP1	FP2	AT
 *
 * ID is percent-encoded (bytes under 0x21, '%' and 0x7f); FP are 64 hex
 * digits, SERIAL hex ("-": none), ISSUER a CA id ("-"), SIGALG an OpenSSL
 * short name ("-"), PREV three 16-digit hex prefixes joined by ','; times
 * are seconds since the epoch. */
#define _GNU_SOURCE
#include <inttypes.h>
#include <stdint.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/objects.h>

#include "fsutil.h"
#include "inventory.h"
#include "json.h"
#include "tenant.h"

#define HEADER "certmgr-devices\t1\n"
#define INVENTORY_FILE_MAX ((size_t)1024 * 1024 * 1024)
#define FIELDS_MAX 16

void cm_inventory_snapshot_free(struct cm_inventory_snapshot **psnap)
{
	if(psnap && *psnap){
		free((*psnap)->devs);
		free((*psnap)->ids);
		free((*psnap)->tenants.v);
		free((*psnap)->issuers.v);
		free((*psnap)->clones);
		free(*psnap);
		*psnap = NULL;
	}
}

static bool copy_names(struct cm_names *dst, const struct cm_names *src)
{
	dst->n = dst->cap = src->n;
	dst->v = malloc((src->n ? src->n : 1) * sizeof(*dst->v));
	if(dst->v && src->n){
		memcpy(dst->v, src->v, src->n * sizeof(*dst->v));
	}
	return dst->v != NULL;
}

struct cm_inventory_snapshot *cm_inventory_snapshot_begin(struct cm_inventory *inv)
{
	struct cm_inventory_snapshot *s = calloc(1, sizeof(*s));

	if(s){
		s->buckets = inv->buckets;
		s->nbuckets = inv->nbuckets;
		inv->dirty = false;
	}
	return s;
}

/* Appends one record; false when out of memory. */
static bool snap_add(struct cm_inventory_snapshot *s, const struct cm_device *d)
{
	size_t len = strlen(d->id) + 1;
	struct cm_snap_dev *e;

	if(s->n == s->cap){
		size_t cap = s->cap ? s->cap * 2 : 1024;
		struct cm_snap_dev *grown = realloc(s->devs, cap * sizeof(*grown));
		if(grown == NULL){
			return false;
		}
		s->devs = grown;
		s->cap = cap;
	}
	if(s->ids_len + len > s->ids_cap){
		size_t cap = s->ids_cap ? s->ids_cap * 2 : 32768;
		char *grown;
		while(cap < s->ids_len + len){
			cap *= 2;
		}
		if((grown = realloc(s->ids, cap)) == NULL){
			return false;
		}
		s->ids = grown;
		s->ids_cap = cap;
	}
	e = &s->devs[s->n++];
	e->cert = d->cert;
	memcpy(e->prev, d->prev, sizeof(e->prev));
	e->first_seen = d->first_seen;
	e->last_seen = d->last_seen;
	e->refused_at = d->refused_at;
	e->tenant = d->tenant;
	e->issuer = d->issuer;
	e->certs = d->certs;
	e->refusal = d->refusal;
	e->id_off = s->ids_len;
	memcpy(s->ids + s->ids_len, d->id, len);
	s->ids_len += len;
	return true;
}

int cm_inventory_snapshot_step(struct cm_inventory *inv, struct cm_inventory_snapshot *s, size_t max)
{
	size_t taken = 0;

	if(s->buckets != inv->buckets || s->nbuckets != inv->nbuckets){
		s->buckets = inv->buckets;
		s->nbuckets = inv->nbuckets;
		s->bucket = s->n = s->ids_len = 0;
	}
	for(; s->bucket < s->nbuckets && taken < max; s->bucket++){
		for(const struct cm_device *d = inv->buckets[s->bucket]; d; d = d->next, taken++){
			if(!snap_add(s, d)){
				return -1;
			}
		}
	}
	if(s->bucket < s->nbuckets){
		return 0;
	}
	/* The names only grow, and the clones are few: taken last, whole. */
	free(s->tenants.v);
	free(s->issuers.v);
	s->tenants.v = s->issuers.v = NULL;
	if((s->clones == NULL && (s->clones = malloc(sizeof(inv->clones))) == NULL)
			|| !copy_names(&s->tenants, &inv->tenants) || !copy_names(&s->issuers, &inv->issuers)){
		return -1;
	}
	memcpy(s->clones, inv->clones, sizeof(inv->clones));
	s->clone_n = inv->clone_n;
	return 1;
}

struct cm_inventory_snapshot *cm_inventory_snapshot(struct cm_inventory *inv)
{
	struct cm_inventory_snapshot *s = cm_inventory_snapshot_begin(inv);

	if(s && cm_inventory_snapshot_step(inv, s, SIZE_MAX) != 1){
		cm_inventory_snapshot_free(&s);
		inv->dirty = true;
	}
	return s;
}

/* --- writing ------------------------------------------------------- */

static bool put(struct cm_text *t, const char *s)
{
	return cm_text_append(t, s, strlen(s));
}

static bool put_hex(struct cm_text *t, const unsigned char *p, size_t n)
{
	char buf[2 * CM_FP_LEN + 1];

	if(n > CM_FP_LEN){
		n = CM_FP_LEN;
	}
	cm_hex(p, n, buf);
	return n == 0 ? put(t, "-") : cm_text_append(t, buf, 2 * n);
}

static bool put_id(struct cm_text *t, const char *id)
{
	char buf[4];

	for(; *id; id++){
		unsigned char c = (unsigned char)*id;
		if(c < 0x21 || c == '%' || c == 0x7f){
			snprintf(buf, sizeof(buf), "%%%02x", c);
			if(!put(t, buf)){
				return false;
			}
		}else if(!cm_text_append(t, id, 1)){
			return false;
		}
	}
	return true;
}

static const char *name_at(const struct cm_names *names, uint16_t i)
{
	return i < names->n ? names->v[i] : "-";
}

static bool put_device(struct cm_text *t, const struct cm_inventory_snapshot *s, const struct cm_snap_dev *e)
{
	char buf[200];
	const char *sig = e->cert.sig_nid ? OBJ_nid2sn(e->cert.sig_nid) : NULL;

	snprintf(buf, sizeof(buf), "\t%" PRId64 "\t%s\t%u\t%s\t%" PRIu32 "\t%" PRIu32 "\t%u\t%016" PRIx64 ",%016" PRIx64 ",%016" PRIx64
			"\t%u\t%" PRIu32 "\n", e->cert.not_after, cm_key_type_name(e->cert.key_type), e->cert.key_bits, sig ? sig : "-",
			e->first_seen, e->last_seen, e->certs, e->prev[0], e->prev[1], e->prev[2], e->refusal, e->refused_at);
	return put(t, "d\t") && put(t, name_at(&s->tenants, e->tenant)) && put(t, "\t") && put_id(t, s->ids + e->id_off)
		&& put(t, "\t") && put_hex(t, e->cert.fp, CM_FP_LEN) && put(t, "\t") && put_hex(t, e->cert.serial, e->cert.serial_len)
		&& put(t, "\t") && put(t, name_at(&s->issuers, e->issuer)) && put(t, buf);
}

static bool put_clone(struct cm_text *t, const struct cm_inventory_snapshot *s, const struct cm_clone *c)
{
	char buf[32];

	snprintf(buf, sizeof(buf), "\t%" PRIu32 "\n", c->at);
	return put(t, "c\t") && put(t, name_at(&s->tenants, c->tenant)) && put(t, "\t") && put_id(t, c->id) && put(t, "\t")
		&& put_hex(t, c->fp[0], CM_FP_LEN) && put(t, "\t") && put_hex(t, c->fp[1], CM_FP_LEN) && put(t, buf);
}

enum cm_rc cm_inventory_write(const struct cm_inventory_snapshot *s, const char *dir, struct cm_err *err)
{
	char path[PATH_MAX];
	struct cm_text t = {0};
	bool ok = put(&t, HEADER);
	enum cm_rc rc;

	for(size_t i = 0; ok && i < s->n; i++){
		ok = put_device(&t, s, &s->devs[i]);
	}
	for(size_t i = 0; ok && i < s->clone_n; i++){
		ok = put_clone(&t, s, &s->clones[i]);
	}
	if(!ok){
		cm_text_free(&t);
		return cm_err_set(err, CM_ERR_NOMEM, "out of memory");
	}
	rc = cm_fs_path(path, sizeof(path), err, "%s/%s", dir, CM_INVENTORY_FILE);
	if(rc == CM_OK){
		rc = cm_fs_write_atomic(path, t.s, t.len, 0600, err);
	}
	cm_text_free(&t);
	return rc;
}

/* --- reading ------------------------------------------------------- */

static int hexval(char c)
{
	return c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
}

/* Exactly 2 * n lower-case hex digits into out (n at most max). */
static bool parse_hex(const char *s, unsigned char *out, size_t max, size_t *n)
{
	size_t len = strlen(s);

	if(len % 2 || len / 2 > max){
		return false;
	}
	for(size_t i = 0; i < len / 2; i++){
		int hi = hexval(s[2 * i]), lo = hexval(s[2 * i + 1]);
		if(hi < 0 || lo < 0){
			return false;
		}
		out[i] = (unsigned char)(hi << 4 | lo);
	}
	*n = len / 2;
	return true;
}

static bool parse_fp(const char *s, unsigned char out[CM_FP_LEN])
{
	size_t n = 0;

	return parse_hex(s, out, CM_FP_LEN, &n) && n == CM_FP_LEN;
}

/* A percent-encoded id into out (CM_BLOCK_KEY_MAX + 1 bytes). */
static bool parse_id(const char *s, char *out)
{
	size_t n = 0;

	for(; *s; s++){
		char c = *s;
		if(c == '%'){
			int hi = s[1] ? hexval(s[1]) : -1, lo = hi >= 0 && s[2] ? hexval(s[2]) : -1;
			if(lo < 0){
				return false;
			}
			c = (char)(hi << 4 | lo);
			s += 2;
		}
		if(c == '\0' || n >= CM_BLOCK_KEY_MAX){
			return false;
		}
		out[n++] = c;
	}
	out[n] = '\0';
	return n > 0;
}

static bool parse_u64(const char *s, uint64_t max, uint64_t *out)
{
	char *end;
	unsigned long long v;

	if(*s < '0' || *s > '9'){
		return false;
	}
	v = strtoull(s, &end, 10);
	if(*end || v > max){
		return false;
	}
	*out = v;
	return true;
}

static bool parse_prev(const char *s, uint64_t prev[CM_INV_PREV])
{
	for(int i = 0; i < CM_INV_PREV; i++){
		char *end;
		if(hexval(*s) < 0){
			return false;
		}
		prev[i] = strtoull(s, &end, 16);
		if(end - s != 16 || *end != (i + 1 < CM_INV_PREV ? ',' : '\0')){
			return false;
		}
		s = end + (i + 1 < CM_INV_PREV);
	}
	return true;
}

/* The certificate's columns of a "d" line (f[3] to f[9]). */
static bool parse_cert(char **f, struct cm_cert_facts *c, char issuer[CM_ID_LEN + 1])
{
	uint64_t v;
	int kt, nid = 0;
	size_t n = 0;

	memset(c, 0, sizeof(*c));
	if(!parse_fp(f[3], c->fp) || (strcmp(f[4], "-") && !parse_hex(f[4], c->serial, CM_SERIAL_MAX, &n))){
		return false;
	}
	c->serial_len = (uint8_t)n;
	if(strcmp(f[5], "-") && !cm_pki_id_valid(f[5])){
		return false;
	}
	snprintf(issuer, CM_ID_LEN + 1, "%s", strcmp(f[5], "-") ? f[5] : "");
	if(!parse_u64(f[6], INT64_MAX, &v) || (kt = cm_key_type_parse(f[7])) < 0){
		return false;
	}
	c->not_after = (int64_t)v;
	c->key_type = (uint8_t)kt;
	if(!parse_u64(f[8], 65535, &v)){
		return false;
	}
	c->key_bits = (uint16_t)v;
	if(strcmp(f[9], "-") && ((nid = OBJ_sn2nid(f[9])) <= 0 || nid > 65535)){
		return false;
	}
	c->sig_nid = (uint16_t)nid;
	return true;
}

static bool parse_device(struct cm_inventory *inv, char **f, int n)
{
	char id[CM_BLOCK_KEY_MAX + 1], issuer[CM_ID_LEN + 1];
	struct cm_cert_facts cert;
	uint64_t first, last, certs, refusal, refused_at, prev[CM_INV_PREV];
	struct cm_device *d;

	if(n != 16 || !cm_tenant_name_valid(f[1]) || !parse_id(f[2], id) || !parse_cert(f, &cert, issuer)
			|| !parse_u64(f[10], UINT32_MAX, &first) || !parse_u64(f[11], UINT32_MAX, &last)
			|| !parse_u64(f[12], UINT16_MAX, &certs) || !parse_prev(f[13], prev)
			|| !parse_u64(f[14], 32, &refusal) || !parse_u64(f[15], UINT32_MAX, &refused_at)){
		return false;
	}
	d = cm_inventory_put(inv, f[1], id);
	if(d == NULL){
		return true; /* full: the rest is forgotten, as it would be live */
	}
	d->cert = cert;
	memcpy(d->prev, prev, sizeof(prev));
	d->issuer = issuer[0] ? cm_names_intern(&inv->issuers, issuer) : CM_INV_NONE;
	d->first_seen = (uint32_t)first;
	d->last_seen = (uint32_t)last;
	d->certs = (uint16_t)certs;
	d->refusal = (uint8_t)refusal;
	d->refused_at = (uint32_t)refused_at;
	return true;
}

static bool parse_clone(struct cm_inventory *inv, char **f, int n)
{
	struct cm_clone c;
	char id[CM_BLOCK_KEY_MAX + 1];
	uint64_t at;

	memset(&c, 0, sizeof(c));
	if(n != 6 || !cm_tenant_name_valid(f[1]) || !parse_id(f[2], id) || strlen(id) > CM_IDENT_CLIENTID_MAX
			|| !parse_fp(f[3], c.fp[0]) || !parse_fp(f[4], c.fp[1]) || !parse_u64(f[5], UINT32_MAX, &at)){
		return false;
	}
	if((c.tenant = cm_names_intern(&inv->tenants, f[1])) == CM_INV_NONE){
		return true;
	}
	c.at = (uint32_t)at;
	memcpy(c.id, id, strlen(id) + 1);
	inv->clones[inv->clone_next] = c;
	inv->clone_next = (inv->clone_next + 1) % CM_INV_CLONES_MAX;
	if(inv->clone_n < CM_INV_CLONES_MAX){
		inv->clone_n++;
	}
	return true;
}

/* Splits line (NUL-terminated, written into) at tabs. */
static int split(char *line, char **f)
{
	int n = 0;

	f[n++] = line;
	for(char *p = line; *p; p++){
		if(*p == '\t'){
			*p = '\0';
			if(n == FIELDS_MAX){
				return FIELDS_MAX + 1;
			}
			f[n++] = p + 1;
		}
	}
	return n;
}

enum cm_rc cm_inventory_parse(struct cm_inventory *inv, const char *text, size_t len, struct cm_err *err)
{
	char *copy, *line, *next;
	size_t lineno = 1;

	if(len < strlen(HEADER) || memcmp(text, HEADER, strlen(HEADER))){
		return cm_err_set(err, CM_ERR_CORRUPT, "not an inventory file (no '%.15s 1' header)", HEADER);
	}
	if((copy = malloc(len + 1)) == NULL){
		return cm_err_set(err, CM_ERR_NOMEM, "out of memory");
	}
	memcpy(copy, text, len);
	copy[len] = '\0';
	for(line = copy + strlen(HEADER); line < copy + len; line = next){
		char *f[FIELDS_MAX + 1];
		char *nl = memchr(line, '\n', (size_t)(copy + len - line));
		int n;
		bool ok;

		lineno++;
		if(nl == NULL || memchr(line, '\0', (size_t)(nl - line))){
			free(copy);
			return cm_err_set(err, CM_ERR_CORRUPT, "line %zu is not ended or holds a NUL", lineno);
		}
		*nl = '\0';
		next = nl + 1;
		n = split(line, f);
		ok = !strcmp(f[0], "d") ? parse_device(inv, f, n) : !strcmp(f[0], "c") ? parse_clone(inv, f, n) : false;
		if(!ok){
			free(copy);
			return cm_err_set(err, CM_ERR_CORRUPT, "line %zu is malformed", lineno);
		}
	}
	free(copy);
	return CM_OK;
}

enum cm_rc cm_inventory_load(struct cm_inventory *inv, const char *dir, struct cm_err *err)
{
	char path[PATH_MAX];
	char *text = NULL;
	size_t len = 0;
	enum cm_rc rc;
	FILE *probe;

	if(cm_fs_path(path, sizeof(path), err, "%s/%s", dir, CM_INVENTORY_FILE) != CM_OK){
		return CM_ERR_INVAL;
	}
	if((probe = fopen(path, "r")) == NULL){
		return CM_OK; /* none yet */
	}
	fclose(probe);
	rc = cm_fs_read_file(path, INVENTORY_FILE_MAX, &text, &len, err);
	if(rc == CM_OK){
		rc = cm_inventory_parse(inv, text, len, err);
		free(text);
	}
	if(rc == CM_OK){
		rc = cm_inventory_sort(inv);
	}
	if(rc != CM_OK){
		char why[sizeof(err->msg)] = "";
		if(err){
			memcpy(why, err->msg, sizeof(why));
		}
		cm_inventory_empty(inv); /* a damaged file is not half-loaded */
		return cm_err_set(err, rc, "%s: %s", path, why);
	}
	inv->dirty = false;
	return CM_OK;
}
