/* Fleet audits over the inventory, the trust lists and the client table. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/objects.h>
#include <openssl/x509v3.h>

#include "store.h"
#include "audit.h"
#include "blocks.h"
#include "crl.h"
#include "json.h"
#include "worker.h"

#define DAY 86400
/* RSA and DSA keys under this many bits are weak; curves under
 * WEAK_CURVE_BITS. */
#define WEAK_RSA_BITS 2048
#define WEAK_CURVE_BITS 256

static const char *const names[CM_FINDING_COUNT][2] = {
	{"expiringCertificate", "expiring_certificates"},
	{"sharedCertificate", "shared_certificates"},
	{"clonedDevice", "cloned_devices"},
	{"weakKey", "weak_keys"},
	{"weakSignature", "weak_signatures"},
	{"expiringCA", "expiring_cas"},
	{"caWithoutCRL", "cas_without_crl"},
	{"blockedButConnected", "blocked_connected"},
	{"revokedButConnected", "revoked_connected"},
};

const char *cm_finding_name(enum cm_finding f)
{
	return f < CM_FINDING_COUNT ? names[f][0] : "?";
}

const char *cm_finding_metric(enum cm_finding f)
{
	return f < CM_FINDING_COUNT ? names[f][1] : "?";
}

/* One part of an audit: the device findings over a snapshot (on the
 * worker), or those of the trust lists and connected devices (on the
 * broker thread, st). */
struct audit {
	struct cm_state *st;
	const struct cm_inventory_snapshot *snap;
	const struct cm_audit_options *o;
	time_t now;
	cJSON *out;
	uint64_t *counts;
	bool *truncated;
	bool nomem;
};

/* A new finding of kind f in tenant, or NULL (counted, not listed, past
 * the limit or out of memory). */
static cJSON *finding(struct audit *a, enum cm_finding f, const char *tenant)
{
	cJSON *e;

	a->counts[f]++;
	if(a->counts[f] > a->o->max_per_finding){
		*a->truncated = true;
		return NULL;
	}
	e = cJSON_CreateObject();
	if(e == NULL || !cJSON_AddItemToArray(a->out, e)){
		cJSON_Delete(e);
		a->nomem = true;
		return NULL;
	}
	if(!cJSON_AddStringToObject(e, "finding", cm_finding_name(f)) || !cJSON_AddStringToObject(e, "tenant", tenant)){
		a->nomem = true;
	}
	return e;
}

static void add_one(struct audit *a, cJSON *e, const char *key, const char *value)
{
	cJSON *arr = cJSON_AddArrayToObject(e, key);

	if(arr == NULL || !cJSON_AddItemToArray(arr, cJSON_CreateString(value))){
		a->nomem = true;
	}
}

static void add_fp(struct audit *a, cJSON *e, const char *key, const unsigned char *fp)
{
	char buf[2 * CM_FP_LEN + 1];

	cm_hex(fp, CM_FP_LEN, buf);
	if(!cJSON_AddStringToObject(e, key, buf)){
		a->nomem = true;
	}
}

static bool weak_key(int type, int bits)
{
	return ((type == CM_KEY_TYPE_RSA || type == CM_KEY_TYPE_DSA) && bits < WEAK_RSA_BITS)
		|| (type == CM_KEY_TYPE_EC && bits < WEAK_CURVE_BITS);
}

static bool weak_signature(int nid)
{
	int md = NID_undef, pk = NID_undef;

	return nid && OBJ_find_sigid_algs(nid, &md, &pk) && (md == NID_sha1 || md == NID_md5 || md == NID_md4 || md == NID_md2);
}

/* weakKey and weakSignature of one certificate (a device's or a CA's). */
static void audit_cert(struct audit *a, const char *tenant, const char *who, const char *id, int key_type, int bits, int sig_nid)
{
	cJSON *e;

	if(weak_key(key_type, bits) && (e = finding(a, CM_FINDING_WEAK_KEY, tenant)) != NULL){
		add_one(a, e, who, id);
		if(!cJSON_AddStringToObject(e, "keyType", cm_key_type_name(key_type)) || !cJSON_AddNumberToObject(e, "keyBits", bits)){
			a->nomem = true;
		}
	}
	if(weak_signature(sig_nid) && (e = finding(a, CM_FINDING_WEAK_SIGNATURE, tenant)) != NULL){
		add_one(a, e, who, id);
		if(!cJSON_AddStringToObject(e, "signatureAlgorithm", OBJ_nid2ln(sig_nid))){
			a->nomem = true;
		}
	}
}

static bool in_scope(const struct audit *a, const char *tenant)
{
	return a->o->tenant == NULL || !strcmp(a->o->tenant, tenant);
}

static const char *snap_tenant(const struct cm_inventory_snapshot *s, uint16_t i)
{
	return i < s->tenants.n ? s->tenants.v[i] : "";
}

static const char *snap_id(const struct cm_inventory_snapshot *s, const struct cm_snap_dev *e)
{
	return s->ids + e->id_off;
}

/* The sort of sharedCertificate: by fingerprint, then tenant and id. */
static const struct cm_inventory_snapshot *sorting;

static int cmp_fp(const void *x, const void *y)
{
	const struct cm_snap_dev *p = *(struct cm_snap_dev *const *)x, *q = *(struct cm_snap_dev *const *)y;
	int c = memcmp(p->cert.fp, q->cert.fp, CM_FP_LEN);

	return c ? c : p->tenant != q->tenant ? (p->tenant < q->tenant ? -1 : 1) : strcmp(snap_id(sorting, p), snap_id(sorting, q));
}

/* sharedCertificate: runs of one fingerprint in the devices sorted by it. */
static void audit_shared(struct audit *a, const struct cm_snap_dev **v, size_t n)
{
	/* qsort has no context argument; the worker is the only thread that
	 * audits devices. */
	sorting = a->snap;
	qsort(v, n, sizeof(*v), cmp_fp);
	for(size_t i = 0; i < n;){
		size_t j = i + 1;
		while(j < n && v[j]->tenant == v[i]->tenant && !memcmp(v[j]->cert.fp, v[i]->cert.fp, CM_FP_LEN)){
			j++;
		}
		if(j - i > 1){
			cJSON *e = finding(a, CM_FINDING_SHARED_CERTIFICATE, snap_tenant(a->snap, v[i]->tenant));
			cJSON *arr = e ? cJSON_AddArrayToObject(e, "devices") : NULL;
			for(size_t k = i; arr && k < j; k++){
				if(!cJSON_AddItemToArray(arr, cJSON_CreateString(snap_id(a->snap, v[k])))){
					a->nomem = true;
				}
			}
			if(e){
				add_fp(a, e, "certificate", v[i]->cert.fp);
			}
		}
		i = j;
	}
}

/* The findings of each device of the snapshot in scope. */
static void audit_devices(struct audit *a)
{
	const struct cm_inventory_snapshot *s = a->snap;
	const struct cm_snap_dev **v;
	size_t n = 0;

	if(s == NULL || s->n == 0){
		return;
	}
	if((v = malloc(s->n * sizeof(*v))) == NULL){
		a->nomem = true;
		return;
	}
	for(size_t i = 0; i < s->n; i++){
		const struct cm_snap_dev *d = &s->devs[i];
		const char *tenant = snap_tenant(s, d->tenant);
		cJSON *e;

		if(!in_scope(a, tenant)){
			continue;
		}
		v[n++] = d;
		if((time_t)d->last_seen + (time_t)a->o->seen_days * DAY >= a->now && d->cert.not_after < a->now + (time_t)a->o->expiring_days * DAY
				&& (e = finding(a, CM_FINDING_EXPIRING_CERTIFICATE, tenant)) != NULL){
			char t[21];
			add_one(a, e, "devices", snap_id(s, d));
			add_fp(a, e, "certificate", d->cert.fp);
			cm_time_iso((time_t)d->cert.not_after, t);
			if(!cJSON_AddStringToObject(e, "notAfter", t)){
				a->nomem = true;
			}
		}
		audit_cert(a, tenant, "devices", snap_id(s, d), d->cert.key_type, d->cert.key_bits, d->cert.sig_nid);
	}
	audit_shared(a, v, n);
	free(v);
}

/* clonedDevice: the clones seen within the window, once per device. */
static void audit_clones(struct audit *a)
{
	const struct cm_inventory_snapshot *s = a->snap;

	for(size_t i = 0; s && i < s->clone_n; i++){
		const struct cm_clone *c = &s->clones[i];
		const char *tenant = snap_tenant(s, c->tenant);
		bool again = false;
		cJSON *e, *arr;
		char fp[2][2 * CM_FP_LEN + 1], t[21];

		for(size_t j = 0; j < s->clone_n && !again; j++){
			/* The latest clone of a device is the one reported. */
			again = j != i && s->clones[j].tenant == c->tenant && !strcmp(s->clones[j].id, c->id)
				&& (s->clones[j].at > c->at || (s->clones[j].at == c->at && j > i));
		}
		if(again || !in_scope(a, tenant) || (time_t)c->at + (time_t)a->o->seen_days * DAY < a->now
				|| (e = finding(a, CM_FINDING_CLONED_DEVICE, tenant)) == NULL){
			continue;
		}
		add_one(a, e, "devices", c->id);
		cm_hex(c->fp[0], CM_FP_LEN, fp[0]);
		cm_hex(c->fp[1], CM_FP_LEN, fp[1]);
		cm_time_iso((time_t)c->at, t);
		arr = cJSON_AddArrayToObject(e, "certificates");
		if(arr == NULL || !cJSON_AddItemToArray(arr, cJSON_CreateString(fp[0])) || !cJSON_AddItemToArray(arr, cJSON_CreateString(fp[1]))
				|| !cJSON_AddStringToObject(e, "seen", t)){
			a->nomem = true;
		}
	}
}

/* The findings of each CA of the trust lists in scope. */
static void audit_cas(struct audit *a)
{
	const struct cm_tenant *t;

	for(t = cm_store_first_tenant(a->st->store); t; t = cm_store_next_tenant(t)){
		if(!in_scope(a, t->name)){
			continue;
		}
		for(const struct cm_ca *ca = t->cas; ca; ca = ca->next){
			EVP_PKEY *key = X509_get0_pubkey(ca->cert);
			struct cm_cert_facts f;
			time_t na = cm_pki_not_after(ca->cert);
			cJSON *e;

			if(!cm_cert_facts_of(ca->cert, &f)){
				continue;
			}
			audit_cert(a, t->name, "cas", ca->id, f.key_type, key ? f.key_bits : 0, f.sig_nid);
			if(ca->pinned || !ca->active){
				continue;
			}
			if(na < a->now + (time_t)a->o->expiring_days * DAY && (e = finding(a, CM_FINDING_EXPIRING_CA, t->name)) != NULL){
				char ts[21];
				add_one(a, e, "cas", ca->id);
				cm_time_iso(na, ts);
				if(!cJSON_AddStringToObject(e, "notAfter", ts)){
					a->nomem = true;
				}
			}
			if(!ca->issuer_only && t->revocation == CM_REVOCATION_WHEN_AVAILABLE && ca->crl == NULL
					&& t->policy != CM_POLICY_TOKEN && (e = finding(a, CM_FINDING_CA_WITHOUT_CRL, t->name)) != NULL){
				add_one(a, e, "cas", ca->id);
			}
		}
	}
}

/* Whether a CRL held by t for the issuer of leaf lists it. */
static bool revoked_now(const struct cm_tenant *t, X509 *leaf)
{
	const ASN1_INTEGER *serial = X509_get0_serialNumber(leaf);

	for(const struct cm_ca *ca = t->cas; ca; ca = ca->next){
		if(X509_check_issued(ca->cert, leaf) != X509_V_OK){
			continue;
		}
		for(int i = 0; i <= CM_CA_MORE_CRLS; i++){
			const struct cm_crl *crl = cm_ca_crl_at(ca, i);
			if(crl && cm_crl_is_revoked(crl, serial)){
				return true;
			}
		}
	}
	return false;
}

/* Connected devices that a block or a CRL refuses: the re-check at the
 * tick should have disconnected them. */
static void audit_connected(struct audit *a)
{
	const struct cm_client *c, *tmp;

	HASH_ITER(hh, a->st->clients, c, tmp){
		const struct cm_tenant *t;
		enum cm_finding f;
		cJSON *e;

		if(c->kind != CM_CLIENT_DEVICE || !in_scope(a, c->tenant) || (t = cm_store_find_tenant(a->st->store, c->tenant)) == NULL){
			continue;
		}
		if(cm_tenant_device_blocked(t, c->clientid) || cm_tenant_cert_blocked(t, c->leaf_id)){
			f = CM_FINDING_BLOCKED_CONNECTED;
		}else if(revoked_now(t, c->leaf)){
			f = CM_FINDING_REVOKED_CONNECTED;
		}else{
			continue;
		}
		if((e = finding(a, f, t->name)) != NULL){
			add_one(a, e, "devices", c->clientid);
			if(!cJSON_AddStringToObject(e, "certificate", c->leaf_id)){
				a->nomem = true;
			}
		}
	}
}

/* An audit under way (st->audits). */
struct cm_audit_job {
	struct cm_audit_options o;
	char tenant[CM_TENANT_NAME_MAX + 1];
	time_t now;
	struct cm_inventory_snapshot *snap; /* being taken, then the worker's */
	bool on_worker;
	/* The broker thread's part, then the whole answer. */
	cJSON *findings;
	uint64_t counts[CM_FINDING_COUNT];
	bool truncated, nomem;
	/* The worker's part. */
	cJSON *dev_findings;
	uint64_t dev_counts[CM_FINDING_COUNT];
	bool dev_truncated, dev_nomem;
	cm_audit_done_fn done;
	void *ctx;
	struct cm_audit_job *next;
};

static void job_free(struct cm_audit_job *j)
{
	cm_inventory_snapshot_free(&j->snap);
	cJSON_Delete(j->findings);
	cJSON_Delete(j->dev_findings);
	free(j);
}

static void job_unlink(struct cm_state *st, struct cm_audit_job *j)
{
	for(struct cm_audit_job **p = &st->audits; *p; p = &(*p)->next){
		if(*p == j){
			*p = j->next;
			return;
		}
	}
}

static void audit_work(void *arg)
{
	struct cm_audit_job *j = arg;
	struct audit a = {NULL, j->snap, &j->o, j->now, cJSON_CreateArray(), j->dev_counts, &j->dev_truncated, false};

	if(a.out == NULL){
		j->dev_nomem = true;
		return;
	}
	audit_devices(&a);
	audit_clones(&a);
	j->dev_findings = a.out;
	j->dev_nomem = a.nomem;
}

/* The worker's findings after the broker thread's, each kind still
 * listed max_per_finding times at most. */
static void merge(struct cm_audit_job *j)
{
	size_t listed[CM_FINDING_COUNT] = {0};
	cJSON *e;

	cJSON_ArrayForEach(e, j->findings){
		for(int k = 0; k < CM_FINDING_COUNT; k++){
			listed[k] += !strcmp(cJSON_GetObjectItemCaseSensitive(e, "finding")->valuestring, names[k][0]);
		}
	}
	while(j->dev_findings && (e = cJSON_DetachItemFromArray(j->dev_findings, 0)) != NULL){
		const char *kind = cJSON_GetObjectItemCaseSensitive(e, "finding")->valuestring;
		int k = 0;
		while(k < CM_FINDING_COUNT && strcmp(kind, names[k][0])){
			k++;
		}
		if(k < CM_FINDING_COUNT && listed[k] < j->o.max_per_finding){
			listed[k]++;
			cJSON_AddItemToArray(j->findings, e);
		}else{
			j->truncated = true;
			cJSON_Delete(e);
		}
	}
	for(int k = 0; k < CM_FINDING_COUNT; k++){
		j->counts[k] += j->dev_counts[k];
	}
	j->truncated = j->truncated || j->dev_truncated;
}

static void audit_done(struct cm_state *st, void *arg, bool aborted)
{
	struct cm_audit_job *j = arg;
	struct cm_err err;
	cJSON *findings;

	job_unlink(st, j);
	if(aborted){
		job_free(j);
		return;
	}
	merge(j);
	findings = j->nomem || j->dev_nomem ? NULL : j->findings;
	if(findings){
		j->findings = NULL;
	}
	cm_err_set(&err, CM_ERR_NOMEM, "out of memory");
	j->done(st, j->ctx, findings, j->counts, j->truncated, &err);
	job_free(j);
}

/* The next step of j's snapshot, and j to the worker once it is
 * complete (or there is no inventory): 1 when it went, 0 when there is
 * more to take, -1 when out of memory (j is the caller's still). */
static int step(struct cm_state *st, struct cm_audit_job *j)
{
	int r = st->inventory && j->snap ? cm_inventory_snapshot_step(st->inventory, j->snap, CM_AUDIT_SNAPSHOT_STEP) : 1;
	struct cm_err err;

	if(r != 1){
		return r;
	}
	if(cm_worker_submit(st, audit_work, audit_done, j, &err) != CM_OK){
		return -1;
	}
	j->on_worker = true;
	return 1;
}

enum cm_rc cm_audit_start(struct cm_state *st, const struct cm_audit_options *o, cm_audit_done_fn done, void *ctx, struct cm_err *err)
{
	struct cm_audit_job *j = calloc(1, sizeof(*j));
	struct audit a;

	if(j == NULL || (j->findings = cJSON_CreateArray()) == NULL){
		free(j);
		return cm_err_set(err, CM_ERR_NOMEM, "out of memory");
	}
	j->o = *o;
	if(o->tenant){
		snprintf(j->tenant, sizeof(j->tenant), "%s", o->tenant);
		j->o.tenant = j->tenant;
	}
	j->now = time(NULL);
	j->done = done;
	j->ctx = ctx;
	/* The trust lists and the connected devices as they are now (a
	 * device a change of this request refuses is still connected until
	 * the tick); the inventory through a snapshot, a step a tick. */
	a = (struct audit){st, NULL, &j->o, j->now, j->findings, j->counts, &j->truncated, false};
	audit_cas(&a);
	audit_connected(&a);
	j->nomem = a.nomem;
	if(st->inventory && st->inventory->count && (j->snap = cm_inventory_snapshot_begin(st->inventory)) == NULL){
		job_free(j);
		return cm_err_set(err, CM_ERR_NOMEM, "out of memory");
	}
	if(j->snap){
		/* Taking it marked the inventory clean: its own write must still
		 * come. */
		st->inventory->dirty = true;
	}
	if(step(st, j) < 0){
		job_free(j);
		return cm_err_set(err, CM_ERR_NOMEM, "out of memory");
	}
	j->next = st->audits;
	st->audits = j;
	return CM_OK;
}

void cm_audit_tick(struct cm_state *st)
{
	struct cm_audit_job *j, *next;

	for(j = st->audits; j; j = next){
		next = j->next;
		if(!j->on_worker && step(st, j) < 0){
			/* Its answer says so; the worker's part is empty. */
			j->dev_nomem = true;
			j->on_worker = true;
			audit_done(st, j, false);
		}
	}
}

void cm_audit_cleanup(struct cm_state *st)
{
	while(st->audits){
		struct cm_audit_job *j = st->audits;
		st->audits = j->next;
		job_free(j);
	}
}
