/* getStatus. */
#include <stdio.h>
#include <string.h>

#include <openssl/err.h>
#include <openssl/x509v3.h>

#include "control.h"
#include "json.h"
#include "refresh.h"

static bool add_expiring(cJSON *arr, const char *kind, const char *owner_key, const char *owner, const char *id, time_t na)
{
	cJSON *e = cJSON_CreateObject();

	if(e == NULL || !cJSON_AddItemToArray(arr, e)){
		cJSON_Delete(e);
		return false;
	}
	return cJSON_AddStringToObject(e, "kind", kind) && cJSON_AddStringToObject(e, owner_key, owner)
		&& cJSON_AddStringToObject(e, "id", id) && cm_json_add_time(e, "notAfter", na);
}

cJSON *cm_status_expiring(struct cm_state *st, time_t now)
{
	cJSON *arr = cJSON_CreateArray();
	const struct cm_tenant *t, *tmp;
	const struct cm_ca *ca;
	const struct cm_server_cert *sc;
	time_t limit = now + st->expiry_warning_days * 86400;
	int i;

	for(i = 0; arr && i < CM_SLOT_COUNT; i++){
		for(sc = st->store->slots[i].certs; sc; sc = sc->next){
			time_t na = cm_pki_not_after(sc->leaf);
			if(na < limit && !add_expiring(arr, "server", "slot", cm_slot_name((enum cm_slot_id)i), sc->id, na)){
				cJSON_Delete(arr);
				return NULL;
			}
		}
	}
	HASH_ITER(hh, st->store->tenants, t, tmp){
		for(ca = t->cas; arr && ca; ca = ca->next){
			time_t na = cm_pki_not_after(ca->cert);
			if(na < limit && !add_expiring(arr, ca->pinned ? "pinned" : "ca", "tenant", t->name, ca->id, na)){
				cJSON_Delete(arr);
				return NULL;
			}
		}
	}
	return arr;
}

cJSON *cm_status_hostname_warnings(struct cm_state *st)
{
	cJSON *arr = cJSON_CreateArray();
	const struct cm_tenant *t, *tmp;
	size_t h;
	int slot;

	HASH_ITER(hh, st->store->tenants, t, tmp){
		for(slot = 0; arr && slot < CM_SLOT_COUNT; slot++){
			const struct cm_server_cert *c = cm_store_served_cert(st->store, t, (enum cm_slot_id)slot);
			for(h = 0; h < t->hostnames.n; h++){
				const char *name = t->hostnames.v[h];
				/* A wildcard host name is covered by a wildcard certificate. */
				if(X509_check_host(c->leaf, name, 0, 0, NULL) != 1){
					cJSON *w = cJSON_CreateObject();
					if(w == NULL || !cJSON_AddItemToArray(arr, w)){
						cJSON_Delete(w);
						cJSON_Delete(arr);
						return NULL;
					}
					cJSON_AddStringToObject(w, "tenant", t->name);
					cJSON_AddStringToObject(w, "hostname", name);
					cJSON_AddStringToObject(w, "slot", cm_slot_name((enum cm_slot_id)slot));
					cJSON_AddStringToObject(w, "id", c->id);
				}
			}
		}
	}
	return arr;
}

/* Certificates of a chain walked up through the store's CAs. */
#define SHARED_MAX_DEPTH 8

/* True when parent issued child: names, and the signature. */
static bool issued(X509 *parent, X509 *child)
{
	EVP_PKEY *key = X509_get0_pubkey(parent);
	bool ok = X509_check_issued(parent, child) == X509_V_OK && key && X509_verify(child, key) == 1;

	ERR_clear_error();
	return ok;
}

/* A CA of any tenant, other than cert itself, that issued cert; or NULL. */
static X509 *store_issuer(const struct cm_store *store, X509 *cert)
{
	const struct cm_tenant *t, *tmp;
	const struct cm_ca *ca;

	HASH_ITER(hh, store->tenants, t, tmp){
		for(ca = t->cas; ca; ca = ca->next){
			if(!ca->pinned && X509_cmp(ca->cert, cert) != 0 && issued(ca->cert, cert)){
				return ca->cert;
			}
		}
	}
	return NULL;
}

/* True when anc is cert, or above it through the store's CAs. */
static bool at_or_above(const struct cm_store *store, X509 *anc, X509 *cert)
{
	for(int depth = 0; cert && depth < SHARED_MAX_DEPTH; depth++){
		if(X509_cmp(anc, cert) == 0 || issued(anc, cert)){
			return true;
		}
		cert = store_issuer(store, cert);
	}
	return false;
}

static bool add_shared(cJSON *arr, const struct cm_tenant *t, const struct cm_ca *ca, const struct cm_tenant *other, const struct cm_ca *via)
{
	cJSON *w = cJSON_CreateObject();
	char msg[400];

	snprintf(msg, sizeof(msg), "tenant %s also trusts %s %.64s: the devices of tenant %s's CA %.64s can log in to %s under its host names"
			" (a device's certificate names no tenant)", other->name, via == ca ? "this CA" : "a CA above it,", via->id, t->name, ca->id,
			other->name);
	if(w == NULL || !cJSON_AddItemToArray(arr, w)){
		cJSON_Delete(w);
		return false;
	}
	return cJSON_AddStringToObject(w, "tenant", t->name) && cJSON_AddStringToObject(w, "ca", ca->id)
		&& cJSON_AddStringToObject(w, "alsoTrustedBy", other->name) && cJSON_AddStringToObject(w, "via", via->id)
		&& cJSON_AddStringToObject(w, "warning", msg);
}

/* Into arr, the other tenants' active CAs at or above t's CA ca; with a
 * tenant, only the pairs where ca is tenant's CA id, or the CA above is. */
static bool shared_for(const struct cm_store *store, cJSON *arr, const struct cm_tenant *t, const struct cm_ca *ca, const char *tenant,
		const char *id)
{
	const struct cm_tenant *o, *tmp;
	const struct cm_ca *via;
	bool mine = tenant && !strcmp(t->name, tenant) && !strcmp(ca->id, id);

	HASH_ITER(hh, store->tenants, o, tmp){
		for(via = o == t ? NULL : o->cas; via; via = via->next){
			bool wanted = tenant == NULL || mine || (!strcmp(o->name, tenant) && !strcmp(via->id, id));
			if(via->pinned || !via->active || !wanted || !at_or_above(store, via->cert, ca->cert)){
				continue;
			}
			if(!add_shared(arr, t, ca, o, via)){
				return false;
			}
		}
	}
	return true;
}

cJSON *cm_status_shared_cas(struct cm_state *st, const char *tenant, const char *id)
{
	const struct cm_tenant *t, *tmp;
	const struct cm_ca *ca;
	cJSON *arr = cJSON_CreateArray();

	HASH_ITER(hh, st->store->tenants, t, tmp){
		for(ca = t->cas; arr && ca; ca = ca->next){
			if(!ca->pinned && !shared_for(st->store, arr, t, ca, tenant, id)){
				cJSON_Delete(arr);
				return NULL;
			}
		}
	}
	return arr;
}

void cm_status_add_ca_warnings(struct cm_state *st, const char *tenant, const char *id, cJSON *data)
{
	cJSON *arr = cm_status_shared_cas(st, tenant, id);

	if(cJSON_GetArraySize(arr) == 0 || !cJSON_AddItemToObject(data, "warnings", arr)){
		cJSON_Delete(arr);
	}
}

static enum cm_rc get_status(struct cm_state *st, const struct cm_caller *who, const cJSON *cmd, cJSON *data, struct cm_err *err)
{
	const struct cm_tenant *t, *tmp;
	const struct cm_ca *ca;
	const struct cm_client *c, *ctmp;
	const struct cm_server_cert *sc;
	int tenants = 0, cas = 0, pinned = 0, devices = 0, admins = 0, i;
	time_t nearest = 0;
	const char *kind = NULL, *owner = NULL, *id = NULL;
	cJSON *o, *n;

	(void)who;
	(void)cmd;
	HASH_ITER(hh, st->store->tenants, t, tmp){
		tenants++;
		for(ca = t->cas; ca; ca = ca->next){
			time_t na = cm_pki_not_after(ca->cert);
			ca->pinned ? pinned++ : cas++;
			if(nearest == 0 || na < nearest){
				nearest = na;
				kind = ca->pinned ? "pinned" : "ca";
				owner = t->name;
				id = ca->id;
			}
		}
	}
	for(i = 0; i < CM_SLOT_COUNT; i++){
		for(sc = st->store->slots[i].certs; sc; sc = sc->next){
			time_t na = cm_pki_not_after(sc->leaf);
			if(nearest == 0 || na < nearest){
				nearest = na;
				kind = "server";
				owner = cm_slot_name((enum cm_slot_id)i);
				id = sc->id;
			}
		}
	}
	HASH_ITER(hh, st->clients, c, ctmp){
		c->kind == CM_CLIENT_DEVICE ? devices++ : admins++;
	}
	o = cJSON_AddObjectToObject(data, "status");
	if(o == NULL
			|| !cJSON_AddNumberToObject(o, "generation", (double)st->store->generation)
			|| !cJSON_AddNumberToObject(o, "tenants", tenants)
			|| !cJSON_AddNumberToObject(o, "cas", cas)
			|| !cJSON_AddNumberToObject(o, "pinned", pinned)
			|| !cJSON_AddNumberToObject(o, "rejected", (double)cm_rejected_count(st->rejected))
			|| !cJSON_AddNumberToObject(o, "connectedDevices", devices)
			|| !cJSON_AddNumberToObject(o, "connectedAdministrators", admins)
			|| !cJSON_AddNumberToObject(o, "handshakes", (double)st->handshakes_served)){
		return cm_err_set(err, CM_ERR_NOMEM, "out of memory");
	}
	{
		cJSON *exp = cm_status_expiring(st, time(NULL));
		cJSON *warn = cm_status_hostname_warnings(st);
		cJSON *shared = cm_status_shared_cas(st, NULL, NULL);
		if(exp == NULL || !cJSON_AddItemToObject(o, "expiring", exp)
				|| warn == NULL || !cJSON_AddItemToObject(o, "hostnameWarnings", warn)
				|| shared == NULL || !cJSON_AddItemToObject(o, "sharedCAs", shared)){
			return cm_err_set(err, CM_ERR_NOMEM, "out of memory");
		}
	}
	{
		cJSON *crls = cm_refresh_health(st);
		if(crls == NULL || !cJSON_AddItemToObject(o, "crls", crls)){
			cJSON_Delete(crls);
			return cm_err_set(err, CM_ERR_NOMEM, "out of memory");
		}
	}
	if(kind){
		n = cJSON_AddObjectToObject(o, "nearestExpiry");
		if(n == NULL || !cJSON_AddStringToObject(n, "kind", kind)
				|| !cJSON_AddStringToObject(n, strcmp(kind, "server") ? "tenant" : "slot", owner)
				|| !cJSON_AddStringToObject(n, "id", id)
				|| !cm_json_add_time(n, "notAfter", nearest)){
			return cm_err_set(err, CM_ERR_NOMEM, "out of memory");
		}
	}
	return CM_OK;
}

const struct cm_command cm_status_commands[] = {
	{"getStatus", get_status},
	{NULL, NULL},
};
