#define _GNU_SOURCE
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/x509v3.h>

#include "crl.h"

struct cm_crl_slot {
	uint64_t hash;
	uint32_t offset; /* into the arena; UINT32_MAX: empty */
};

/* An entry in the arena: flags, the index of its certificateIssuer in
 * crl->issuers plus one (0: the CRL's issuer), the serial's length, the
 * serial's magnitude. */
#define ENT_NEGATIVE 1
#define ENT_REMOVE 2
#define ENT_HEAD 5

/* FNV-1a, then a final mix: serials are mostly random already. */
static uint64_t serial_hash(const unsigned char *p, size_t n, bool negative)
{
	uint64_t h = 1469598103934665603ULL ^ (negative ? 0x9e3779b97f4a7c15ULL : 0);
	size_t i;

	for(i = 0; i < n; i++){
		h ^= p[i];
		h *= 1099511628211ULL;
	}
	h ^= h >> 33;
	h *= 0xff51afd7ed558ccdULL;
	h ^= h >> 33;
	return h;
}

static X509_CRL *parse(const unsigned char *buf, size_t len)
{
	X509_CRL *crl = NULL;
	BIO *bio;

	if(len > INT_MAX){
		return NULL;
	}
	if(len > 10 && memmem(buf, len < 1024 ? len : 1024, "-----BEGIN", 10)){
		bio = BIO_new_mem_buf(buf, (int)len);
		if(bio){
			crl = PEM_read_bio_X509_CRL(bio, NULL, NULL, NULL);
		}
		BIO_free(bio);
	}else{
		const unsigned char *p = buf;
		crl = d2i_X509_CRL(NULL, &p, (long)len);
		if(crl && p != buf + len){
			X509_CRL_free(crl);
			crl = NULL;
		}
	}
	ERR_clear_error();
	return crl;
}

static time_t asn1_to_time(const ASN1_TIME *t)
{
	struct tm tm;

	return t && ASN1_TIME_to_tm(t, &tm) ? timegm(&tm) : 0;
}

/* ===================================================================
 * What every hollow CRL shares: its method, a throwaway signing key, and
 * two template entries (revoked; removeFromCRL) whose reason OpenSSL read
 * when it parsed them, for the lookup to hand back. Made at the first
 * load, freed by cm_crl_cleanup once every CRL of certmgr's is (the
 * broker unloads the plugin, whose static pointers would then leak them).
 * =================================================================== */

struct hollow_data {
	const struct cm_crl *owner; /* borrowed: owns the hollow CRL */
	EVP_PKEY *key;              /* the key that signed the real CRL */
};

static pthread_mutex_t shared_lock = PTHREAD_MUTEX_INITIALIZER;
static bool shared_ready;
static pthread_mutex_t method_lock = PTHREAD_MUTEX_INITIALIZER;
static X509_CRL_METHOD *hollow_method;
static EVP_PKEY *throwaway_key;
static X509_CRL *templates;
static X509_REVOKED *tpl_revoked, *tpl_removed;

static const unsigned char *entry_find(const struct cm_crl *c, const ASN1_INTEGER *serial, const X509_NAME *issuer_name);

static int hollow_free(X509_CRL *crl)
{
	struct hollow_data *d = X509_CRL_get_meth_data(crl);

	if(d){
		EVP_PKEY_free(d->key);
		free(d);
	}
	return 1;
}

/* The signature was checked at arrival: the same public key is all that
 * is asked now. A CRL without data (made while the method was in place by
 * anyone else) has no verified signature. */
static int hollow_verify(X509_CRL *crl, EVP_PKEY *key)
{
	struct hollow_data *d = X509_CRL_get_meth_data(crl);

	if(d == NULL || d->key == NULL || key == NULL){
		return 0;
	}
	return d->key == key || EVP_PKEY_eq(d->key, key) == 1 ? 1 : 0;
}

static int hollow_lookup(X509_CRL *crl, X509_REVOKED **ret, const ASN1_INTEGER *serial, const X509_NAME *issuer)
{
	struct hollow_data *d = X509_CRL_get_meth_data(crl);
	const unsigned char *e;

	if(d == NULL){
		/* Not ours: no index to answer from. Revoked, to fail closed. */
		if(ret){
			*ret = tpl_revoked;
		}
		return tpl_revoked ? 1 : 0;
	}
	e = entry_find(d->owner, serial, issuer);
	if(e == NULL){
		return 0;
	}
	if(ret){
		*ret = e[0] & ENT_REMOVE ? tpl_removed : tpl_revoked;
	}
	return e[0] & ENT_REMOVE ? 2 : 1;
}

static void add_template_entry(X509_CRL *crl, long serial, int reason)
{
	X509_REVOKED *r = X509_REVOKED_new();
	ASN1_INTEGER *s = ASN1_INTEGER_new();
	ASN1_TIME *t = ASN1_TIME_new();
	ASN1_ENUMERATED *e = NULL;

	if(r && s && t && ASN1_INTEGER_set(s, serial) && X509_REVOKED_set_serialNumber(r, s) && X509_gmtime_adj(t, 0)
			&& X509_REVOKED_set_revocationDate(r, t)
			&& (reason < 0 || ((e = ASN1_ENUMERATED_new()) && ASN1_ENUMERATED_set(e, reason)
				&& X509_REVOKED_add1_ext_i2d(r, NID_crl_reason, e, 0, 0)))
			&& X509_CRL_add0_revoked(crl, r)){
		r = NULL;
	}
	X509_REVOKED_free(r);
	ASN1_INTEGER_free(s);
	ASN1_TIME_free(t);
	ASN1_ENUMERATED_free(e);
}

static X509_CRL *sign_and_reparse(X509_CRL *crl, bool ours)
{
	unsigned char *der = NULL;
	const unsigned char *p;
	X509_CRL *out = NULL;
	int len;

	if(X509_CRL_sign(crl, throwaway_key, EVP_sha256()) <= 0 || (len = i2d_X509_CRL(crl, &der)) <= 0){
		return NULL;
	}
	p = der;
	if(ours){
		/* The method is the default one only for this parse. */
		pthread_mutex_lock(&method_lock);
		X509_CRL_set_default_method(hollow_method);
		out = d2i_X509_CRL(NULL, &p, len);
		X509_CRL_set_default_method(NULL);
		pthread_mutex_unlock(&method_lock);
	}else{
		out = d2i_X509_CRL(NULL, &p, len);
	}
	OPENSSL_free(der);
	return out;
}

static void shared_init(void)
{
	X509_CRL *t = X509_CRL_new();
	X509_NAME *name = X509_NAME_new();

	hollow_method = X509_CRL_METHOD_new(NULL, hollow_free, hollow_lookup, hollow_verify);
	throwaway_key = EVP_EC_gen("P-256");
	if(t && name && hollow_method && throwaway_key
			&& X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC, (const unsigned char *)"certmgr template", -1, -1, 0)
			&& X509_CRL_set_version(t, 1) && X509_CRL_set_issuer_name(t, name)){
		ASN1_TIME *now = ASN1_TIME_new();
		if(now && X509_gmtime_adj(now, 0) && X509_CRL_set1_lastUpdate(t, now)){
			add_template_entry(t, 1, -1);
			add_template_entry(t, 2, CRL_REASON_REMOVE_FROM_CRL);
			templates = sign_and_reparse(t, false);
		}
		ASN1_TIME_free(now);
	}
	if(templates && sk_X509_REVOKED_num(X509_CRL_get_REVOKED(templates)) == 2){
		tpl_revoked = sk_X509_REVOKED_value(X509_CRL_get_REVOKED(templates), 0);
		tpl_removed = sk_X509_REVOKED_value(X509_CRL_get_REVOKED(templates), 1);
		if(ASN1_INTEGER_get(X509_REVOKED_get0_serialNumber(tpl_revoked)) != 1){
			X509_REVOKED *x = tpl_revoked;
			tpl_revoked = tpl_removed;
			tpl_removed = x;
		}
	}
	X509_CRL_free(t);
	X509_NAME_free(name);
	ERR_clear_error();
}

/* The shared objects, made once (again after a cleanup). */
static bool shared_get(void)
{
	bool ok;

	pthread_mutex_lock(&shared_lock);
	if(!shared_ready){
		shared_init();
		shared_ready = true;
	}
	ok = hollow_method && tpl_revoked;
	pthread_mutex_unlock(&shared_lock);
	return ok;
}

void cm_crl_cleanup(void)
{
	pthread_mutex_lock(&shared_lock);
	X509_CRL_free(templates);
	templates = NULL;
	tpl_revoked = tpl_removed = NULL;
	EVP_PKEY_free(throwaway_key);
	throwaway_key = NULL;
	X509_CRL_METHOD_free(hollow_method);
	hollow_method = NULL;
	shared_ready = false;
	pthread_mutex_unlock(&shared_lock);
}

/* ===================================================================
 * The index
 * =================================================================== */

/* The certificateIssuer an entry names, pushed onto c->issuers: *idx
 * becomes its index plus one. False when malformed. */
static bool entry_issuer(struct cm_crl *c, X509_REVOKED *rev, uint16_t *idx)
{
	int crit = -1;
	GENERAL_NAMES *gens = X509_REVOKED_get_ext_d2i(rev, NID_certificate_issuer, &crit, NULL);

	if(gens == NULL){
		return crit == -1;
	}
	if((c->issuers == NULL && (c->issuers = sk_GENERAL_NAMES_new_null()) == NULL)
			|| sk_GENERAL_NAMES_num(c->issuers) >= UINT16_MAX - 1 || !sk_GENERAL_NAMES_push(c->issuers, gens)){
		GENERAL_NAMES_free(gens);
		return false;
	}
	*idx = (uint16_t)sk_GENERAL_NAMES_num(c->issuers);
	return true;
}

/* Does the entry carry a critical extension other than certificateIssuer?
 * Then the hollow CRL carries the entry too, so that OpenSSL sees it. */
static bool entry_critical(X509_REVOKED *rev)
{
	const STACK_OF(X509_EXTENSION) *exts = X509_REVOKED_get0_extensions(rev);

	for(int i = 0; i < sk_X509_EXTENSION_num(exts); i++){
		X509_EXTENSION *x = sk_X509_EXTENSION_value(exts, i);
		if(X509_EXTENSION_get_critical(x) && OBJ_obj2nid(X509_EXTENSION_get_object(x)) != NID_certificate_issuer){
			return true;
		}
	}
	return false;
}

static enum cm_rc build_index(struct cm_crl *c, X509_CRL *crl, STACK_OF(X509_REVOKED) *critical, struct cm_err *err)
{
	STACK_OF(X509_REVOKED) *revoked = X509_CRL_get_REVOKED(crl);
	size_t n = (size_t)(revoked ? sk_X509_REVOKED_num(revoked) : 0);
	size_t cap = 16, i, used = 0, room = ENT_HEAD * n + 1;
	uint16_t issuer = 0;

	for(i = 0; i < n; i++){
		room += (size_t)ASN1_STRING_length(X509_REVOKED_get0_serialNumber(sk_X509_REVOKED_value(revoked, (int)i)));
	}
	while(cap < n * 2){
		cap <<= 1;
	}
	c->slots = malloc(cap * sizeof(*c->slots));
	c->arena = malloc(room);
	if(c->slots == NULL || c->arena == NULL || room > UINT32_MAX){
		return cm_err_set(err, CM_ERR_NOMEM, "out of memory indexing the CRL");
	}
	for(i = 0; i < cap; i++){
		c->slots[i].offset = UINT32_MAX;
	}
	c->mask = cap - 1;
	for(i = 0; i < n; i++){
		X509_REVOKED *rev = sk_X509_REVOKED_value(revoked, (int)i);
		const ASN1_INTEGER *serial = X509_REVOKED_get0_serialNumber(rev);
		const unsigned char *data = ASN1_STRING_get0_data(serial);
		size_t len = (size_t)ASN1_STRING_length(serial), pos;
		bool negative = ASN1_STRING_type(serial) == V_ASN1_NEG_INTEGER;
		int crit = -1;
		ASN1_ENUMERATED *reason = X509_REVOKED_get_ext_d2i(rev, NID_crl_reason, &crit, NULL);
		long why = reason ? ASN1_ENUMERATED_get(reason) : -1;
		uint64_t h;

		ASN1_ENUMERATED_free(reason);
		if((reason == NULL && crit != -1) || !entry_issuer(c, rev, &issuer) || len > UINT16_MAX){
			return cm_err_set(err, CM_ERR_INVAL, "entry %zu of the CRL has a malformed extension", i + 1);
		}
		if(entry_critical(rev)){
			X509_REVOKED *copy = X509_REVOKED_dup(rev);
			if(copy == NULL || !sk_X509_REVOKED_push(critical, copy)){
				X509_REVOKED_free(copy);
				return cm_err_set(err, CM_ERR_NOMEM, "out of memory indexing the CRL");
			}
		}
		h = serial_hash(data, len, negative);
		for(pos = h & c->mask; c->slots[pos].offset != UINT32_MAX; pos = (pos + 1) & c->mask){
		}
		c->slots[pos].hash = h;
		c->slots[pos].offset = (uint32_t)used;
		c->arena[used] = (unsigned char)((negative ? ENT_NEGATIVE : 0) | (why == CRL_REASON_REMOVE_FROM_CRL ? ENT_REMOVE : 0));
		c->arena[used + 1] = (unsigned char)(issuer >> 8);
		c->arena[used + 2] = (unsigned char)issuer;
		c->arena[used + 3] = (unsigned char)(len >> 8);
		c->arena[used + 4] = (unsigned char)len;
		memcpy(c->arena + used + ENT_HEAD, data, len);
		used += len + ENT_HEAD;
		c->count++;
	}
	c->arena_len = used;
	return CM_OK;
}

/* Does an entry of c (its certificateIssuer idx, 0: none) cover a
 * certificate issued by name (NULL: the CRL's issuer)? As RFC 5280 5.3.3:
 * an entry without the extension belongs to the CRL's issuer. */
static bool entry_issuer_matches(const struct cm_crl *c, uint16_t idx, const X509_NAME *name)
{
	const X509_NAME *crl_issuer = X509_CRL_get_issuer(c->hollow);
	GENERAL_NAMES *gens;

	if(idx == 0){
		return name == NULL || X509_NAME_cmp(name, crl_issuer) == 0;
	}
	if(name == NULL){
		name = crl_issuer;
	}
	gens = sk_GENERAL_NAMES_value(c->issuers, idx - 1);
	for(int i = 0; i < sk_GENERAL_NAME_num(gens); i++){
		const GENERAL_NAME *g = sk_GENERAL_NAME_value(gens, i);
		if(g->type == GEN_DIRNAME && X509_NAME_cmp(name, g->d.directoryName) == 0){
			return true;
		}
	}
	return false;
}

/* The first entry of c for that serial and issuer, or NULL. */
static const unsigned char *entry_find(const struct cm_crl *c, const ASN1_INTEGER *serial, const X509_NAME *issuer_name)
{
	const unsigned char *data = ASN1_STRING_get0_data(serial);
	size_t len = (size_t)ASN1_STRING_length(serial), pos;
	bool negative = ASN1_STRING_type(serial) == V_ASN1_NEG_INTEGER;
	uint64_t h;

	if(c == NULL || c->count == 0){
		return NULL;
	}
	h = serial_hash(data, len, negative);
	for(pos = h & c->mask; c->slots[pos].offset != UINT32_MAX; pos = (pos + 1) & c->mask){
		const unsigned char *e = c->arena + c->slots[pos].offset;
		size_t elen = ((size_t)e[3] << 8) | e[4];
		if(c->slots[pos].hash == h && elen == len && !memcmp(e + ENT_HEAD, data, len) && (bool)(e[0] & ENT_NEGATIVE) == negative
				&& entry_issuer_matches(c, (uint16_t)((e[1] << 8) | e[2]), issuer_name)){
			return e;
		}
	}
	return NULL;
}

bool cm_crl_is_revoked(const struct cm_crl *c, const ASN1_INTEGER *serial)
{
	const unsigned char *e = c && c->hollow ? entry_find(c, serial, NULL) : NULL;

	return e && !(e[0] & ENT_REMOVE);
}

bool cm_crl_older(const struct cm_crl *next, const struct cm_crl *cur)
{
	if(next->number && cur->number){
		return ASN1_INTEGER_cmp(next->number, cur->number) < 0;
	}
	return next->this_update < cur->this_update;
}

/* ===================================================================
 * Loading
 * =================================================================== */

/* The scope key: delta or not, and the issuingDistributionPoint. */
static bool scope_of(X509_CRL *crl, bool delta, unsigned char out[32])
{
	int at = X509_CRL_get_ext_by_NID(crl, NID_issuing_distribution_point, -1);
	ASN1_OCTET_STRING *idp = at >= 0 ? X509_EXTENSION_get_data(X509_CRL_get_ext(crl, at)) : NULL;
	EVP_MD_CTX *md = EVP_MD_CTX_new();
	unsigned char kind = delta ? 1 : 0;
	bool ok = md && EVP_DigestInit_ex(md, EVP_sha256(), NULL) && EVP_DigestUpdate(md, &kind, 1)
		&& (idp == NULL || EVP_DigestUpdate(md, ASN1_STRING_get0_data(idp), (size_t)ASN1_STRING_length(idp)))
		&& EVP_DigestFinal_ex(md, out, NULL);

	EVP_MD_CTX_free(md);
	return ok;
}

/* The hollow copy of crl (see crl.h), with the entries in critical. */
static X509_CRL *make_hollow(X509_CRL *crl, STACK_OF(X509_REVOKED) *critical)
{
	X509_CRL *h = X509_CRL_new();
	X509_CRL *out = NULL;
	const ASN1_TIME *next = X509_CRL_get0_nextUpdate(crl);
	bool ok = h && X509_CRL_set_version(h, X509_CRL_get_version(crl))
		&& X509_CRL_set_issuer_name(h, X509_CRL_get_issuer(crl))
		&& X509_CRL_set1_lastUpdate(h, X509_CRL_get0_lastUpdate(crl))
		&& (next == NULL || X509_CRL_set1_nextUpdate(h, next));

	for(int i = 0; ok && i < X509_CRL_get_ext_count(crl); i++){
		ok = X509_CRL_add_ext(h, X509_CRL_get_ext(crl, i), -1) == 1;
	}
	while(ok && sk_X509_REVOKED_num(critical) > 0){
		X509_REVOKED *r = sk_X509_REVOKED_pop(critical);
		if(!X509_CRL_add0_revoked(h, r)){
			X509_REVOKED_free(r);
			ok = false;
		}
	}
	if(ok){
		out = sign_and_reparse(h, true);
	}
	X509_CRL_free(h);
	return out;
}

static enum cm_rc check_times(const struct cm_crl *c, time_t now, struct cm_err *err)
{
	if(now == 0){
		return CM_OK; /* reloading what was once accepted */
	}
	if(c->this_update > now + 300){
		return cm_err_set(err, CM_ERR_INVAL, "the CRL is not valid yet (thisUpdate in the future)");
	}
	if(c->next_update && c->next_update < now){
		return cm_err_set(err, CM_ERR_INVAL, "the CRL is out of date (its nextUpdate has passed)");
	}
	return CM_OK;
}

static enum cm_rc keep_der(struct cm_crl *c, X509_CRL *crl, struct cm_err *err)
{
	unsigned char *der = NULL;
	int dlen = i2d_X509_CRL(crl, &der);

	if(dlen <= 0){
		return cm_err_set(err, CM_ERR_NOMEM, "cannot encode the CRL");
	}
	c->der = malloc((size_t)dlen);
	if(c->der == NULL){
		OPENSSL_free(der);
		return cm_err_set(err, CM_ERR_NOMEM, "out of memory");
	}
	memcpy(c->der, der, (size_t)dlen);
	c->der_len = (size_t)dlen;
	OPENSSL_free(der);
	return CM_OK;
}

/* Indexes a parsed CRL that key signed, and makes its hollow copy. */
static enum cm_rc index_crl(struct cm_crl *c, X509_CRL *crl, EVP_PKEY *key, struct cm_err *err)
{
	STACK_OF(X509_REVOKED) *critical = sk_X509_REVOKED_new_null();
	struct hollow_data *d = NULL;
	enum cm_rc rc;

	rc = critical ? build_index(c, crl, critical, err) : cm_err_set(err, CM_ERR_NOMEM, "out of memory");
	if(rc == CM_OK && !scope_of(crl, c->delta, c->scope)){
		rc = cm_err_set(err, CM_ERR_NOMEM, "out of memory");
	}
	if(rc == CM_OK && (c->hollow = make_hollow(crl, critical)) == NULL){
		rc = cm_err_set(err, CM_ERR_CRYPTO, "cannot prepare the CRL for path validation");
	}
	if(rc == CM_OK && ((d = calloc(1, sizeof(*d))) == NULL || !EVP_PKEY_up_ref(key))){
		free(d);
		rc = cm_err_set(err, CM_ERR_NOMEM, "out of memory");
	}
	if(rc == CM_OK){
		d->owner = c;
		d->key = key;
		X509_CRL_set_meth_data(c->hollow, d);
	}
	sk_X509_REVOKED_pop_free(critical, X509_REVOKED_free);
	return rc;
}

static enum cm_rc load_parsed(X509_CRL *crl, X509 *issuer, time_t now, struct cm_crl **out, struct cm_err *err)
{
	struct cm_crl *c;
	EVP_PKEY *key = X509_get0_pubkey(issuer);
	int crit = -1;
	enum cm_rc rc;

	if(X509_NAME_cmp(X509_CRL_get_issuer(crl), X509_get_subject_name(issuer)) != 0 || key == NULL || X509_CRL_verify(crl, key) != 1){
		ERR_clear_error();
		return cm_err_set(err, CM_ERR_INVAL, "the CRL is not signed by the CA it is for");
	}
	c = calloc(1, sizeof(*c));
	if(c == NULL){
		return cm_err_set(err, CM_ERR_NOMEM, "out of memory");
	}
	c->refs = 1;
	c->this_update = asn1_to_time(X509_CRL_get0_lastUpdate(crl));
	c->next_update = asn1_to_time(X509_CRL_get0_nextUpdate(crl));
	c->delta = X509_CRL_get_ext_by_NID(crl, NID_delta_crl, -1) >= 0;
	c->number = X509_CRL_get_ext_d2i(crl, NID_crl_number, &crit, NULL);
	if(c->number == NULL && crit != -1){
		rc = cm_err_set(err, CM_ERR_INVAL, "the CRL's cRLNumber is malformed");
	}else if((rc = check_times(c, now, err)) == CM_OK && (rc = index_crl(c, crl, key, err)) == CM_OK){
		rc = keep_der(c, crl, err);
	}
	ERR_clear_error();
	if(rc != CM_OK){
		cm_crl_free(&c);
		return rc;
	}
	*out = c;
	return CM_OK;
}

enum cm_rc cm_crl_load(const unsigned char *buf, size_t len, size_t max_len, X509 *issuer, time_t now, struct cm_crl **out, struct cm_err *err)
{
	X509_CRL *crl;
	enum cm_rc rc;

	*out = NULL;
	if(len > max_len){
		return cm_err_set(err, CM_ERR_INVAL, "the CRL is larger than the limit of %zu bytes", max_len);
	}
	if(!shared_get()){
		return cm_err_set(err, CM_ERR_CRYPTO, "cannot set up CRL checking");
	}
	crl = parse(buf, len);
	if(crl == NULL){
		return cm_err_set(err, CM_ERR_INVAL, "not a CRL (neither PEM nor DER)");
	}
	rc = load_parsed(crl, issuer, now, out, err);
	X509_CRL_free(crl);
	return rc;
}

X509 *cm_crl_find_issuer(const unsigned char *buf, size_t len, STACK_OF(X509) *candidates)
{
	X509_CRL *crl = parse(buf, len);
	X509 *found = NULL;
	int i;

	for(i = 0; crl && found == NULL && i < sk_X509_num(candidates); i++){
		X509 *c = sk_X509_value(candidates, i);
		EVP_PKEY *key = X509_get0_pubkey(c);
		if(X509_NAME_cmp(X509_CRL_get_issuer(crl), X509_get_subject_name(c)) == 0 && key && X509_CRL_verify(crl, key) == 1){
			found = c;
		}
	}
	X509_CRL_free(crl);
	ERR_clear_error();
	return found;
}

void cm_crl_drop_der(struct cm_crl *c)
{
	if(c){
		free(c->der);
		c->der = NULL;
		c->der_len = 0;
	}
}

struct cm_crl *cm_crl_ref(struct cm_crl *crl)
{
	if(crl){
		crl->refs++;
	}
	return crl;
}

void cm_crl_free(struct cm_crl **pcrl)
{
	struct cm_crl *c;

	if(pcrl == NULL || *pcrl == NULL){
		return;
	}
	c = *pcrl;
	*pcrl = NULL;
	if(--c->refs > 0){
		return;
	}
	X509_CRL_free(c->hollow);
	ASN1_INTEGER_free(c->number);
	sk_GENERAL_NAMES_pop_free(c->issuers, GENERAL_NAMES_free);
	free(c->slots);
	free(c->arena);
	free(c->der);
	free(c);
}

bool cm_crl_distribution_point(X509 *cert, char *buf, size_t buflen)
{
	STACK_OF(DIST_POINT) *dps = X509_get_ext_d2i(cert, NID_crl_distribution_points, NULL, NULL);
	bool found = false;
	int i, j;

	for(i = 0; dps && !found && i < sk_DIST_POINT_num(dps); i++){
		DIST_POINT *dp = sk_DIST_POINT_value(dps, i);
		if(dp->distpoint == NULL || dp->distpoint->type != 0){
			continue;
		}
		for(j = 0; !found && j < sk_GENERAL_NAME_num(dp->distpoint->name.fullname); j++){
			GENERAL_NAME *gen = sk_GENERAL_NAME_value(dp->distpoint->name.fullname, j);
			if(gen->type == GEN_URI){
				const char *uri = (const char *)ASN1_STRING_get0_data(gen->d.uniformResourceIdentifier);
				size_t n = (size_t)ASN1_STRING_length(gen->d.uniformResourceIdentifier);
				if(n < buflen && (!strncmp(uri, "http://", 7) || !strncmp(uri, "https://", 8)) && memchr(uri, '\0', n) == NULL){
					memcpy(buf, uri, n);
					buf[n] = '\0';
					found = true;
				}
			}
		}
	}
	sk_DIST_POINT_pop_free(dps, DIST_POINT_free);
	ERR_clear_error();
	return found;
}
