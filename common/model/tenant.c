/* Tenants in memory: creation, copies, names, trust stores. Persistence
 * is in the store (store/). */
#include <ctype.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/err.h>

#include "blocks.h"
#include "enroll.h"
#include "tenant.h"

const char *cm_revocation_name(enum cm_revocation r)
{
	return r == CM_REVOCATION_REQUIRED ? "required" : "when-available";
}

int cm_revocation_parse(const char *name)
{
	if(name && !strcmp(name, "when-available")){
		return CM_REVOCATION_WHEN_AVAILABLE;
	}
	if(name && !strcmp(name, "required")){
		return CM_REVOCATION_REQUIRED;
	}
	return -1;
}

static const char *const policy_names[CM_POLICY_COUNT] = {"certificate", "certificate+token", "token", "bridge"};

const char *cm_policy_name(enum cm_policy policy)
{
	return (policy >= 0 && policy < CM_POLICY_COUNT) ? policy_names[policy] : "?";
}

int cm_policy_parse(const char *name)
{
	int i;

	for(i = 0; name && i < CM_POLICY_COUNT; i++){
		if(!strcmp(name, policy_names[i])){
			return i;
		}
	}
	return -1;
}

bool cm_tenant_name_valid(const char *name)
{
	size_t i, n;

	if(name == NULL || (n = strlen(name)) == 0 || n > CM_TENANT_NAME_MAX){
		return false;
	}
	for(i = 0; i < n; i++){
		char c = name[i];
		bool alnum = (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9');
		if(!alnum && (i == 0 || (c != '-' && c != '_'))){
			return false;
		}
	}
	return true;
}

enum cm_rc cm_hostname_normalize(const char *in, char out[CM_HOSTNAME_MAX + 1], struct cm_err *err)
{
	size_t n, i, label = 0;
	const char *p = in;
	size_t start = 0;

	if(in == NULL || (n = strlen(in)) == 0 || n > CM_HOSTNAME_MAX){
		return cm_err_set(err, CM_ERR_INVAL, "a host name must hold 1 to 253 characters");
	}
	if(!strncmp(in, "*.", 2)){
		start = 2;
		if(n == 2){
			return cm_err_set(err, CM_ERR_INVAL, "host name '*.' names no domain");
		}
	}
	for(i = 0; i < n; i++){
		char c = (char)tolower((unsigned char)p[i]);
		if(i >= start){
			if(c == '.'){
				if(label == 0 || out[i - 1] == '-'){
					return cm_err_set(err, CM_ERR_INVAL, "host name '%s' has an empty or badly ended label", in);
				}
				label = 0;
			}else if((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' || c == '_'){
				if((c == '-' && label == 0) || ++label > 63){
					return cm_err_set(err, CM_ERR_INVAL, "host name '%s' has a label that starts with '-' or is longer than 63", in);
				}
			}else{
				return cm_err_set(err, CM_ERR_INVAL, "host name '%s' holds '%c': only letters, digits, '-' and '.' (and a leading '*.')", in, p[i]);
			}
		}
		out[i] = c;
	}
	if(label == 0 || out[n - 1] == '-'){
		return cm_err_set(err, CM_ERR_INVAL, "host name '%s' has an empty or badly ended label", in);
	}
	out[n] = '\0';
	return CM_OK;
}

void cm_strlist_clear(struct cm_strlist *list)
{
	size_t i;

	for(i = 0; i < list->n; i++){
		free(list->v[i]);
	}
	free(list->v);
	list->v = NULL;
	list->n = 0;
}

enum cm_rc cm_strlist_set(struct cm_strlist *list, const char *const *v, size_t n)
{
	struct cm_strlist fresh = {NULL, 0};
	size_t i;

	if(n > 0){
		fresh.v = calloc(n, sizeof(char *));
		if(fresh.v == NULL){
			return CM_ERR_NOMEM;
		}
	}
	for(i = 0; i < n; i++){
		fresh.v[i] = strdup(v[i]);
		if(fresh.v[i] == NULL){
			fresh.n = i;
			cm_strlist_clear(&fresh);
			return CM_ERR_NOMEM;
		}
	}
	fresh.n = n;
	cm_strlist_clear(list);
	*list = fresh;
	return CM_OK;
}

static void ca_free(struct cm_ca **pca)
{
	if(pca && *pca){
		free((*pca)->description);
		free((*pca)->crl_url);
		free((*pca)->crl_learned_url);
		cm_crl_free(&(*pca)->crl);
		for(int i = 0; i < CM_CA_MORE_CRLS; i++){
			cm_crl_free(&(*pca)->more[i]);
		}
		free((*pca)->more_file);
		X509_free((*pca)->cert);
		free(*pca);
		*pca = NULL;
	}
}

void cm_ca_free(struct cm_ca **pca)
{
	ca_free(pca);
}

void cm_tenant_free(struct cm_tenant **pt)
{
	struct cm_tenant *t;
	struct cm_ca *ca, *next;

	if(pt == NULL || *pt == NULL){
		return;
	}
	t = *pt;
	free(t->name);
	free(t->org_id);
	cm_strlist_clear(&t->hostnames);
	cm_strlist_clear(&t->publish);
	cm_strlist_clear(&t->subscribe);
	cm_blocks_clear(&t->blocked_devices);
	cm_blocks_clear(&t->blocked_certs);
	for(ca = t->cas; ca; ca = next){
		next = ca->next;
		ca_free(&ca);
	}
	cm_enroll_free(&t->enroll);
	cm_tenant_drop_trust(t);
	free(t->server_cert);
	free(t);
	*pt = NULL;
}

struct cm_tenant *cm_tenant_new(const char *name)
{
	static const char *const def_pattern[] = {"{org}/{type}/{id}/#"};
	struct cm_tenant *t = calloc(1, sizeof(*t));

	if(t == NULL){
		return NULL;
	}
	t->name = strdup(name);
	t->org_id = strdup(name);
	t->policy = CM_POLICY_CERTIFICATE;
	t->created = time(NULL);
	if(t->name == NULL || t->org_id == NULL
			|| cm_strlist_set(&t->publish, def_pattern, 1) != CM_OK
			|| cm_strlist_set(&t->subscribe, def_pattern, 1) != CM_OK){
		cm_tenant_free(&t);
	}
	return t;
}

/* A copy of one trust-list entry sharing its certificate and CRLs
 * (up-ref'd); NULL when out of memory. */
static struct cm_ca *ca_clone(const struct cm_ca *ca)
{
	struct cm_ca *copy = calloc(1, sizeof(*copy));

	if(copy == NULL || (copy->description = strdup(ca->description)) == NULL){
		free(copy);
		return NULL;
	}
	memcpy(copy->id, ca->id, sizeof(copy->id));
	copy->active = ca->active;
	copy->pinned = ca->pinned;
	copy->added = ca->added;
	X509_up_ref(ca->cert);
	copy->cert = ca->cert;
	if((ca->crl_url && (copy->crl_url = strdup(ca->crl_url)) == NULL)
			|| (ca->crl_learned_url && (copy->crl_learned_url = strdup(ca->crl_learned_url)) == NULL)){
		ca_free(&copy);
		return NULL;
	}
	memcpy(copy->crl_source, ca->crl_source, sizeof(copy->crl_source));
	copy->crl = cm_crl_ref(ca->crl);
	copy->crl_dirty = ca->crl_dirty;
	memcpy(copy->crl_file, ca->crl_file, sizeof(copy->crl_file));
	copy->sched.attempt = ca->sched.attempt;
	copy->sched.success = ca->sched.success;
	memcpy(copy->sched.error, ca->sched.error, sizeof(copy->sched.error));
	copy->stale_fail_open = ca->stale_fail_open;
	copy->sched.next_attempt = ca->sched.next_attempt;
	copy->sched.failures = ca->sched.failures;
	copy->sched.failures_total = ca->sched.failures_total;
	copy->sched.in_flight = ca->sched.in_flight;
	copy->sched.stale_seen = ca->sched.stale_seen;
	copy->issuer_only = ca->issuer_only;
	copy->claim = ca->claim;
	for(int i = 0; i < CM_CA_MORE_CRLS; i++){
		copy->more[i] = cm_crl_ref(ca->more[i]);
		copy->more_dirty[i] = ca->more_dirty[i];
	}
	if(ca->more_file){
		if(!cm_ca_more_files(copy)){
			ca_free(&copy);
			return NULL;
		}
		memcpy(copy->more_file, ca->more_file, CM_CA_MORE_CRLS * sizeof(*copy->more_file));
	}
	return copy;
}

struct cm_tenant *cm_tenant_clone(const struct cm_tenant *src)
{
	struct cm_tenant *t = calloc(1, sizeof(*t));
	const struct cm_ca *ca;
	struct cm_ca **tail;

	if(t == NULL){
		return NULL;
	}
	tail = &t->cas;
	t->name = strdup(src->name);
	t->org_id = strdup(src->org_id);
	t->policy = src->policy;
	t->revocation = src->revocation;
	t->created = src->created;
	t->generation = src->generation;
	if(src->server_cert && (t->server_cert = malloc(CM_SLOT_COUNT * sizeof(*t->server_cert))) != NULL){
		memcpy(t->server_cert, src->server_cert, CM_SLOT_COUNT * sizeof(*t->server_cert));
	}
	if(t->name == NULL || t->org_id == NULL || (src->server_cert && t->server_cert == NULL)
			|| cm_strlist_set(&t->hostnames, (const char *const *)src->hostnames.v, src->hostnames.n) != CM_OK
			|| cm_strlist_set(&t->publish, (const char *const *)src->publish.v, src->publish.n) != CM_OK
			|| cm_strlist_set(&t->subscribe, (const char *const *)src->subscribe.v, src->subscribe.n) != CM_OK
			|| cm_blocks_copy(&t->blocked_devices, &src->blocked_devices) != CM_OK
			|| cm_blocks_copy(&t->blocked_certs, &src->blocked_certs) != CM_OK){
		cm_tenant_free(&t);
		return NULL;
	}
	for(ca = src->cas; ca; ca = ca->next){
		struct cm_ca *copy = ca_clone(ca);
		if(copy == NULL){
			cm_tenant_free(&t);
			return NULL;
		}
		*tail = copy;
		tail = &copy->next;
	}
	if(src->enroll && (t->enroll = cm_enroll_clone(src->enroll)) == NULL){
		cm_tenant_free(&t);
		return NULL;
	}
	return t;
}

struct cm_ca *cm_tenant_ca(struct cm_tenant *t, const char *id)
{
	struct cm_ca *ca;

	for(ca = t->cas; ca; ca = ca->next){
		if(!strcmp(ca->id, id)){
			return ca;
		}
	}
	return NULL;
}

const struct cm_ca *cm_tenant_find_ca(const struct cm_tenant *t, const char *id)
{
	return cm_tenant_ca((struct cm_tenant *)t, id);
}

void cm_tenant_drop_trust(struct cm_tenant *t)
{
	X509_STORE_free(t->trust);
	sk_X509_pop_free(t->pins, X509_free);
	sk_X509_pop_free(t->inactive, X509_free);
	sk_X509_pop_free(t->candidates, X509_free);
	sk_X509_CRL_pop_free(t->crls, X509_CRL_free);
	t->trust = NULL;
	t->pins = t->inactive = t->candidates = NULL;
	t->crls = NULL;
	t->crls_next_update = 0;
	t->policy_exts = false;
}

struct cm_crl *cm_ca_crl_at(const struct cm_ca *ca, int i)
{
	return i == 0 ? ca->crl : i <= CM_CA_MORE_CRLS ? ca->more[i - 1] : NULL;
}

bool cm_ca_more_files(struct cm_ca *ca)
{
	if(ca->more_file == NULL){
		ca->more_file = calloc(CM_CA_MORE_CRLS, sizeof(*ca->more_file));
	}
	return ca->more_file != NULL;
}

enum cm_rc cm_ca_put_crl(struct cm_ca *e, struct cm_crl *crl, const char *file, struct cm_err *err)
{
	struct cm_crl **slot = NULL;
	char *fname = e->crl_file;
	bool *dirty = &e->crl_dirty;

	if(e->crl == NULL || !memcmp(e->crl->scope, crl->scope, sizeof(crl->scope))){
		slot = &e->crl;
	}
	for(int i = 0; slot == NULL && i < CM_CA_MORE_CRLS; i++){
		if(e->more[i] && !memcmp(e->more[i]->scope, crl->scope, sizeof(crl->scope))){
			slot = &e->more[i];
			fname = e->more_file[i];
			dirty = &e->more_dirty[i];
		}
	}
	if(slot == NULL && !cm_ca_more_files(e)){
		return cm_err_set(err, CM_ERR_NOMEM, "out of memory");
	}
	for(int i = 0; slot == NULL && i < CM_CA_MORE_CRLS; i++){
		if(e->more[i] == NULL){
			slot = &e->more[i];
			fname = e->more_file[i];
			dirty = &e->more_dirty[i];
		}
	}
	if(slot == NULL){
		return cm_err_set(err, CM_ERR_INVAL, "CA %s holds %d CRLs of other scopes already", e->id, CM_CA_MORE_CRLS + 1);
	}
	if(*slot && cm_crl_older(crl, *slot)){
		return cm_err_set(err, CM_ERR_INVAL, "the CRL is older than the one in force (a lower cRLNumber or an earlier thisUpdate): kept the current one");
	}
	cm_crl_free(slot);
	*slot = crl;
	/* A large CRL was written by the worker under a name of its own. */
	*dirty = crl->der != NULL;
	if(!*dirty){
		snprintf(fname, CM_CRL_FILE_SIZE, "%s", file ? file : "");
	}
	return CM_OK;
}

enum cm_rc cm_tenant_append_ca(struct cm_tenant *t, X509 *cert, const char *desc, struct cm_ca **out, struct cm_err *err)
{
	struct cm_ca *ca, **tail;
	char id[CM_ID_LEN + 1];
	enum cm_rc rc = cm_pki_cert_id(cert, id, err);

	*out = NULL;
	if(rc != CM_OK){
		return rc;
	}
	if(cm_tenant_find_ca(t, id)){
		return cm_err_set(err, CM_ERR_INVAL, "certificate %s is already in tenant '%s'", id, t->name);
	}
	ca = calloc(1, sizeof(*ca));
	if(ca == NULL || (ca->description = strdup(desc)) == NULL){
		free(ca);
		return cm_err_set(err, CM_ERR_NOMEM, "out of memory");
	}
	memcpy(ca->id, id, sizeof(ca->id));
	ca->active = true;
	ca->added = time(NULL);
	X509_up_ref(cert);
	ca->cert = cert;
	for(tail = &t->cas; *tail; tail = &(*tail)->next){
	}
	*tail = ca;
	*out = ca;
	return CM_OK;
}

const char *cm_tenant_server_cert(const struct cm_tenant *t, enum cm_slot_id slot)
{
	if(t->server_cert == NULL || slot < 0 || slot >= CM_SLOT_COUNT){
		return "";
	}
	return t->server_cert[slot];
}

bool cm_tenant_set_server_cert(struct cm_tenant *t, enum cm_slot_id slot, const char *id)
{
	if(slot < 0 || slot >= CM_SLOT_COUNT || strlen(id) > CM_ID_LEN){
		return false;
	}
	if(t->server_cert == NULL){
		if(id[0] == '\0'){
			return true;
		}
		t->server_cert = calloc(CM_SLOT_COUNT, sizeof(*t->server_cert));
		if(t->server_cert == NULL){
			return false;
		}
	}
	memcpy(t->server_cert[slot], id, strlen(id) + 1);
	return true;
}
