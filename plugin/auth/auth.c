#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/err.h>
#include <openssl/x509_vfy.h>
#include <openssl/x509v3.h>

#include <mosquitto.h>
#include <mosquitto_broker.h>
#include <mosquitto_plugin.h>

#include "blocks.h"
#include "metrics.h"
#include "auth.h"
#include "enroll.h"
#include "verdict.h"
#include "registry.h"
#include "revocation.h"
#include "log.h"
#include "tls_hook.h"
#include "topic.h"
#include "rejected.h"
#include "store.h"

#define CONTROL_PREFIX "$CONTROL/certmgr/"
#define SYS_PREFIX "$SYS/broker/certmgr/"

static struct cm_client *client_find(const struct cm_state *st, const void *client)
{
	struct cm_client *c = NULL;

	HASH_FIND_PTR(st->clients, &client, c);
	return c;
}

const struct cm_client *cm_auth_find_client(const struct cm_state *st, const void *client)
{
	return client_find(st, client);
}

static void client_free(struct cm_state *st, struct cm_client *c)
{
	cm_inventory_disconnected(st->inventory, c->dev);
	X509_free(c->leaf);
	sk_X509_pop_free(c->chain, X509_free);
	free(c);
}

static void client_forget(struct cm_state *st, const void *client)
{
	struct cm_client *c = client_find(st, client);

	if(c){
		HASH_DEL(st->clients, c);
		client_free(st, c);
	}
}

void cm_auth_clear(struct cm_state *st)
{
	struct cm_client *c, *tmp;

	HASH_ITER(hh, st->clients, c, tmp){
		HASH_DEL(st->clients, c);
		client_free(st, c);
	}
}

static time_t asn1_time(const ASN1_TIME *t)
{
	struct tm tm;

	return ASN1_TIME_to_tm(t, &tm) ? timegm(&tm) : 0;
}

/* Records a client certmgr authenticated. Takes leaf (the reference from
 * mosquitto_client_certificate) in every case. */
static int remember(struct cm_state *st, struct mosquitto *client, enum cm_client_kind kind, const struct cm_tag *tag,
		const struct cm_identity *ident, X509 *leaf)
{
	const char *clientid = mosquitto_client_id(client) ? mosquitto_client_id(client) : "";
	size_t id_len = strlen(clientid), tenant_len = strlen(tag->tenant), sni_len = strlen(tag->sni);
	struct cm_client *c = calloc(1, sizeof(*c) + id_len + 1 + tenant_len + 1 + sni_len + 1);
	int i;

	if(c != NULL){
		memcpy(c->names, clientid, id_len + 1);
		memcpy(c->names + id_len + 1, tag->tenant, tenant_len + 1);
		memcpy(c->names + id_len + 1 + tenant_len + 1, tag->sni, sni_len + 1);
		c->clientid = c->names;
		c->tenant = c->names + id_len + 1;
		c->sni = c->names + id_len + 1 + tenant_len + 1;
	}
	if(c == NULL || (c->chain = X509_chain_up_ref(tag->chain)) == NULL){
		X509_free(leaf);
		if(c){
			client_free(st, c);
		}
		return MOSQ_ERR_NOMEM;
	}
	c->client = client;
	c->kind = kind;
	c->leaf = leaf;
	c->policy = tag->policy;
	if(ident){
		c->ident = *ident;
	}
	/* Until the earliest notAfter of the chain, its trust anchor included:
	 * a device is disconnected when its CA expires, too. */
	c->not_after = asn1_time(X509_get0_notAfter(leaf));
	if(tag->not_after && tag->not_after < c->not_after){
		c->not_after = tag->not_after;
	}
	for(i = 0; i < sk_X509_num(c->chain); i++){
		time_t t = asn1_time(X509_get0_notAfter(sk_X509_value(c->chain, i)));
		if(t < c->not_after){
			c->not_after = t;
		}
	}
	if(kind != CM_CLIENT_ADMIN && (st->next_expiry == 0 || c->not_after < st->next_expiry)){
		st->next_expiry = c->not_after;
	}
	HASH_ADD_PTR(st->clients, client, c);
	return MOSQ_ERR_SUCCESS;
}

static void disconnect_event(struct cm_state *st, const struct cm_client *c, const char *why)
{
	cJSON *e = cJSON_CreateObject();

	if(e && cJSON_AddStringToObject(e, "clientId", c->clientid) && cJSON_AddStringToObject(e, "tenant", c->tenant)
			&& cJSON_AddStringToObject(e, "reason", why)){
		cm_event(st, "disconnected", e);
	}else{
		cJSON_Delete(e);
	}
}

/* Why tenant t refuses the device id clientid and the certificate of
 * that id, when it blocks either (into buf), or NULL. */
static const char *block_of(const struct cm_tenant *t, const char *clientid, const char *leaf_id, char *buf, size_t len)
{
	const struct cm_block *b;

	if((b = cm_tenant_device_blocked(t, clientid)) != NULL){
		snprintf(buf, len, "blocked: device '%.100s' is blocked%s%.120s", b->key, b->reason[0] ? ": " : "", b->reason);
		return buf;
	}
	/* A leaf whose id could not be had is refused: blocks must hold. */
	if(t->blocked_certs.n && (leaf_id[0] == '\0' || (b = cm_tenant_cert_blocked(t, leaf_id)) != NULL)){
		snprintf(buf, len, "blocked: certificate %.16s... is blocked%s%.120s", leaf_id, b && b->reason[0] ? ": " : "", b ? b->reason : "");
		return buf;
	}
	return NULL;
}

/* Why a connected device would be refused if it connected now, or NULL. */
static const char *refusal(const struct cm_state *st, const struct cm_client *c, char *buf, size_t len)
{
	const struct cm_tenant *t = cm_store_find_tenant(st->store, c->tenant);
	struct cm_verdict v;
	const char *why;

	if(t == NULL){
		return "its tenant was deleted";
	}
	if(cm_store_tenant_for_sni(st->store, c->sni[0] ? c->sni : NULL) != t){
		return "its host name no longer belongs to its tenant";
	}
	if(t->policy != c->policy){
		return "its tenant's policy changed";
	}
	if(t->policy != CM_POLICY_BRIDGE && c->kind == CM_CLIENT_DEVICE && strcmp(t->org_id, c->ident.org)){
		return "its tenant's org id changed";
	}
	if((why = block_of(t, c->clientid, c->leaf_id, buf, len)) != NULL){
		return why;
	}
	if(c->kind == CM_CLIENT_CLAIM && !cm_enroll_is_claim_chain(t, c->leaf, c->chain)){
		return "its claim CA is no longer one";
	}
	if(!cm_verdict_chain(t, cm_store_get0_admin_ca(st->store), c->leaf, c->chain, &v, NULL)){
		snprintf(buf, len, "%s%.256s", v.revocation ? "" : "its certificate no longer verifies: ", v.why);
		return buf;
	}
	return NULL;
}

void cm_auth_recheck(struct cm_state *st, const char *tenant)
{
	struct cm_client *c, *tmp;
	char **kick = NULL;
	size_t n = 0, i;
	time_t next = 0;

	HASH_ITER(hh, st->clients, c, tmp){
		char buf[320];
		const char *why;

		if(c->kind == CM_CLIENT_ADMIN || (tenant && strcmp(c->tenant, tenant))){
			if(c->kind != CM_CLIENT_ADMIN && (next == 0 || c->not_after < next)){
				next = c->not_after;
			}
			continue;
		}
		why = refusal(st, c, buf, sizeof(buf));
		if(why){
			char **grown = realloc(kick, (n + 1) * sizeof(char *));
			if(grown){
				kick = grown;
				if((kick[n] = strdup(c->clientid)) != NULL){
					n++;
					cm_log(CM_LOG_NOTICE, "disconnecting '%s' (tenant %s): %s", c->clientid, c->tenant, why);
					disconnect_event(st, c, why);
				}
			}
		}else if(next == 0 || c->not_after < next){
			next = c->not_after;
		}
	}
	st->next_expiry = next;
	/* Kicking can run the disconnect callback, which edits the table: only
	 * after the walk. */
	for(i = 0; i < n; i++){
		mosquitto_kick_client_by_clientid(kick[i], false);
		free(kick[i]);
	}
	free(kick);
}

int cm_auth_tick_cb(int event, void *event_data, void *userdata)
{
	struct mosquitto_evt_tick *ed = event_data;
	struct cm_state *st = userdata;
	time_t now = ed->now_s ? ed->now_s : time(NULL);

	char names[CM_RECHECK_MAX][CM_TENANT_NAME_MAX + 1];
	size_t n, i;
	bool all;

	(void)event;
	/* What the commits since the last tick queued (registry.h). */
	all = cm_registry_take_rechecks(st, names, &n);
	if(all || (st->next_expiry && now >= st->next_expiry)){
		cm_auth_recheck(st, NULL);
		return MOSQ_ERR_SUCCESS;
	}
	for(i = 0; i < n; i++){
		cm_auth_recheck(st, names[i]);
	}
	return MOSQ_ERR_SUCCESS;
}

enum cm_admin_via cm_auth_admin(const struct cm_state *st, const void *client)
{
	const struct cm_client *c = client_find(st, client);
	X509 *cert;

	if(c){
		return c->kind == CM_CLIENT_ADMIN ? CM_ADMIN_CERT : CM_ADMIN_NONE;
	}
	/* Not one certmgr authenticated: an administrator by name, once the
	 * broker's own means (password file, another plugin) accepted it. A
	 * client with a certificate certmgr did not authenticate is none: its
	 * user name may be its certificate's CN (use_identity_as_username on
	 * a listener certmgr does not serve), which anyone with a certificate
	 * from that listener's CAs chooses. */
	cert = mosquitto_client_certificate(client);
	if(cert){
		X509_free(cert);
		return CM_ADMIN_NONE;
	}
	if(!cm_state_is_admin_user(st, mosquitto_client_username(client))){
		return CM_ADMIN_NONE;
	}
	/* Mosquitto 2.0 does not tell whether a connection is TLS, but a
	 * websockets one is when every websockets listener the broker has
	 * is (read from its configuration at start). */
	return st->websockets_tls && mosquitto_client_protocol(client) == mp_websockets ? CM_ADMIN_USERNAME_TLS : CM_ADMIN_USERNAME;
}

static void hex_id(const unsigned char fp[CM_FP_LEN], char out[CM_ID_LEN + 1])
{
	cm_hex(fp, CM_FP_LEN, out);
}

/* Trust-list entries looked at for the CA that issued a device. */
#define ISSUER_SCAN_MAX 256

/* The id of the entry of t that issued leaf (the first intermediate the
 * device sent, or one of t's CAs), "" when not found. */
static void issuer_of(const struct cm_tenant *t, X509 *leaf, STACK_OF(X509) *sent, char out[CM_ID_LEN + 1])
{
	const struct cm_ca *ca;
	int n = 0;

	out[0] = '\0';
	if(sk_X509_num(sent) > 0 && X509_check_issued(sk_X509_value(sent, 0), leaf) == X509_V_OK
			&& cm_pki_cert_id(sk_X509_value(sent, 0), out, NULL) == CM_OK){
		return;
	}
	for(ca = t->cas; ca && n < ISSUER_SCAN_MAX; ca = ca->next, n++){
		if(ca->cert == leaf || X509_check_issued(ca->cert, leaf) == X509_V_OK){
			memcpy(out, ca->id, CM_ID_LEN + 1);
			return;
		}
	}
}

/* The device c, whose certificate's facts are facts, joins the inventory
 * (or its record is updated). */
static void inventory_admit(struct cm_state *st, struct cm_client *c, const struct cm_tenant *t, const struct cm_cert_facts *facts)
{
	char issuer[CM_ID_LEN + 1];
	bool clone = false;

	if(st->inventory == NULL || st->inventory->max == 0){
		return;
	}
	issuer_of(t, c->leaf, c->chain, issuer);
	c->dev = cm_inventory_admit(st->inventory, t->name, c->clientid, facts, issuer, time(NULL), &clone);
	if(clone){
		cm_log(CM_LOG_WARNING, "device '%s' (tenant %s) connected with certificate %.16s... while connected with another one: a clone?",
				c->clientid, t->name, c->leaf_id);
	}
}

/* Refuses the client just remembered: logged, counted, its refusal on
 * its inventory record and, when blocked, its chain in the rejected
 * list; the record is forgotten. */
static int refuse_remembered(struct cm_state *st, struct mosquitto *client, const struct cm_tenant *tenant, const char *why,
		enum cm_refusal class)
{
	struct cm_client *c = client_find(st, client);
	STACK_OF(X509) *chain = sk_X509_new_null();

	cm_log(CM_LOG_NOTICE, "refused client '%s' from %s (tenant %s): %s", c->clientid, mosquitto_client_address(client), tenant->name, why);
	cm_metrics_refused(st, class);
	cm_inventory_refused(st->inventory, tenant->name, c->clientid, (int)class, time(NULL));
	if(class == CM_REFUSED_BLOCKED && st->rejected && chain && sk_X509_push(chain, c->leaf)){
		for(int i = 0; i < sk_X509_num(c->chain) && sk_X509_push(chain, sk_X509_value(c->chain, i)); i++){
		}
		cm_rejected_record(st->rejected, chain, why, c->sni, tenant->name, mosquitto_client_address(client), time(NULL));
	}
	sk_X509_free(chain);
	client_forget(st, client);
	return MOSQ_ERR_AUTH;
}

/* Records a device and refuses it when its tenant blocks its id or its
 * certificate (whatever the handshake: a resumed session, a certificate
 * that names several ids) or, when its handshake was made under trust its
 * tenant has changed since (a CA removed or deactivated, a pin untrusted,
 * a CRL), when the trust in force now refuses it: nothing else re-checks
 * a connection that was not yet a client when trust changed. Takes leaf
 * in every case. */
static int remember_device(struct cm_state *st, struct mosquitto *client, enum cm_client_kind kind, const struct cm_tag *tag,
		const struct cm_tenant *tenant, const struct cm_identity *ident, X509 *leaf)
{
	char buf[320], changed[360];
	const char *why;
	struct cm_client *c;
	struct cm_cert_facts facts;
	int rc = remember(st, client, kind, tag, ident, leaf);

	if(rc != MOSQ_ERR_SUCCESS){
		return rc;
	}
	c = client_find(st, client);
	/* One digest of the leaf: its id for the blocks, its facts for the
	 * inventory. Without it, a tenant with certificate blocks refuses. */
	if(cm_cert_facts_of(c->leaf, &facts)){
		hex_id(facts.fp, c->leaf_id);
	}
	if((why = block_of(tenant, c->clientid, c->leaf_id, buf, sizeof(buf))) != NULL){
		return refuse_remembered(st, client, tenant, why, CM_REFUSED_BLOCKED);
	}
	if(tag->tenant_generation != tenant->generation && (why = refusal(st, c, buf, sizeof(buf))) != NULL){
		snprintf(changed, sizeof(changed), "trust changed since its handshake: %s", why);
		return refuse_remembered(st, client, tenant, changed, CM_REFUSED_UNTRUSTED_CHAIN);
	}
	if(c->leaf_id[0] && kind == CM_CLIENT_DEVICE){
		inventory_admit(st, c, tenant, &facts);
	}
	return MOSQ_ERR_SUCCESS;
}

/* The tenant whose devices authenticate by certificate that a d:/g:
 * client id names by its org, or NULL: such an id is held only by a
 * client certmgr authenticated for that tenant. Otherwise anyone the
 * broker admits could take a device's id, and Mosquitto would disconnect
 * the device ("already connected"). */
static const struct cm_tenant *claimed_tenant(const struct cm_state *st, const char *clientid)
{
	const struct cm_tenant *t;
	const char *org, *end;

	if(clientid == NULL || (clientid[0] != 'd' && clientid[0] != 'g') || clientid[1] != ':'){
		return NULL;
	}
	org = clientid + 2;
	end = strchr(org, ':');
	if(end == NULL){
		end = org + strlen(org);
	}
	/* Org ids are unique among tenants: one lookup, not a walk over
	 * every tenant at each CONNECT. */
	t = cm_store_tenant_for_org(st->store, org, (size_t)(end - org));
	if(t && (t->policy == CM_POLICY_CERTIFICATE || t->policy == CM_POLICY_CERT_TOKEN)){
		return t;
	}
	return NULL;
}

/* For a client certmgr leaves to the broker's other mechanisms: refused
 * when its client id is a certificate tenant's (claimed_tenant), else
 * deferred. Takes cert (NULL or a reference). */
static int defer_unless_claimed(struct cm_state *st, struct mosquitto *client, X509 *cert)
{
	const char *clientid = mosquitto_client_id(client);
	const struct cm_tenant *t = claimed_tenant(st, clientid);

	X509_free(cert);
	if(t == NULL){
		return MOSQ_ERR_PLUGIN_DEFER;
	}
	cm_log(CM_LOG_NOTICE, "refused client '%s' from %s: that client id belongs to tenant %s, whose devices authenticate by certificate",
			clientid, mosquitto_client_address(client), t->name);
	cm_metrics_refused(st, CM_REFUSED_ID_MISMATCH);
	return MOSQ_ERR_AUTH;
}

/* A peer broker: its certificate, from the tenant's trust list, is the
 * whole proof; any client id but a certificate tenant's. Takes cert. */
static int admit_peer_broker(struct cm_state *st, struct mosquitto *client, const struct cm_tag *tag, const struct cm_tenant *tenant,
		X509 *cert)
{
	const char *clientid = mosquitto_client_id(client);
	struct cm_identity ident;
	int rc;

	if(claimed_tenant(st, clientid)){
		return defer_unless_claimed(st, client, cert);
	}
	memset(&ident, 0, sizeof(ident));
	rc = remember_device(st, client, CM_CLIENT_DEVICE, tag, tenant, &ident, cert);
	if(rc == MOSQ_ERR_SUCCESS){
		cm_metrics_accepted(st);
		cm_log(CM_LOG_INFO, "peer broker '%s' from %s accepted (tenant %s)", clientid, mosquitto_client_address(client), tenant->name);
	}
	return rc;
}

/* A device of a certificate or certificate+token tenant: the client id
 * must match the certificate. Takes cert. */
static int admit_device(struct cm_state *st, struct mosquitto *client, const struct cm_tag *tag, const struct cm_tenant *tenant, X509 *cert)
{
	const char *clientid = mosquitto_client_id(client);
	struct cm_identity ident;
	struct cm_err err;
	int rc;

	if(cm_identity_check(clientid, tenant->org_id, cert, &ident, &err) != CM_OK){
		X509_free(cert);
		cm_log(CM_LOG_NOTICE, "refused client '%s' from %s (tenant %s): %s", clientid, mosquitto_client_address(client), tenant->name, err.msg);
		cm_metrics_refused(st, CM_REFUSED_ID_MISMATCH);
		cm_inventory_refused(st->inventory, tenant->name, clientid, CM_REFUSED_ID_MISMATCH, time(NULL));
		return MOSQ_ERR_AUTH;
	}
	rc = remember_device(st, client, CM_CLIENT_DEVICE, tag, tenant, &ident, cert);
	if(rc != MOSQ_ERR_SUCCESS){
		return rc;
	}
	/* Under certificate+token the broker's password check follows; a
	 * refusal there is the broker's, not counted here. */
	cm_metrics_accepted(st);
	if(tenant->policy == CM_POLICY_CERT_TOKEN){
		/* Certificate and client id are right; the username and password
		 * are for the broker's other mechanisms to check. */
		return MOSQ_ERR_PLUGIN_DEFER;
	}
	/* The username becomes the client id: unique across tenants, never an
	 * administrator's name (refused at start). */
	rc = mosquitto_set_username(client, clientid);
	if(rc != MOSQ_ERR_SUCCESS){
		client_forget(st, client);
		return rc;
	}
	return MOSQ_ERR_SUCCESS;
}

/* A claim device: a certificate of a CA registered with purpose "claim"
 * admits it to the enrollment topics only, under any client id but a
 * device's (d:/g:), which it has not proven. Takes cert. */
static int admit_claim(struct cm_state *st, struct mosquitto *client, const struct cm_tag *tag, const struct cm_tenant *tenant, X509 *cert)
{
	const char *clientid = mosquitto_client_id(client);
	int rc;

	if(clientid == NULL || ((clientid[0] == 'd' || clientid[0] == 'g') && clientid[1] == ':')){
		X509_free(cert);
		cm_log(CM_LOG_NOTICE, "refused client '%s' from %s (tenant %s): a claim certificate proves no device identity;"
				" a claim device connects under a client id that is not d:/g:", clientid ? clientid : "", mosquitto_client_address(client),
				tenant->name);
		cm_metrics_refused(st, CM_REFUSED_ID_MISMATCH);
		return MOSQ_ERR_AUTH;
	}
	rc = remember_device(st, client, CM_CLIENT_CLAIM, tag, tenant, NULL, cert);
	if(rc == MOSQ_ERR_SUCCESS){
		cm_metrics_accepted(st);
		cm_log(CM_LOG_INFO, "claim device '%s' from %s accepted (tenant %s): enrollment topics only", clientid,
				mosquitto_client_address(client), tenant->name);
	}
	return rc;
}

int cm_auth_basic_cb(int event, void *event_data, void *userdata)
{
	struct mosquitto_evt_basic_auth *ed = event_data;
	struct cm_state *st = userdata;
	const char *clientid = mosquitto_client_id(ed->client);
	const char *addr = mosquitto_client_address(ed->client);
	const struct cm_tag *tag;
	const struct cm_tenant *tenant;
	X509 *cert;
	int rc;

	(void)event;
	/* A struct mosquitto can be reused by a later connection: nothing of
	 * an earlier one may carry over. */
	client_forget(st, ed->client);

	cert = mosquitto_client_certificate(ed->client);
	if(cert == NULL){
		/* No certificate: a plain listener, or a tenant under the token
		 * policy. The broker's other mechanisms decide, but not for a
		 * certificate tenant's client id. */
		return defer_unless_claimed(st, ed->client, NULL);
	}
	tag = cm_tls_cert_tag(st, cert);
	if(tag == NULL){
		cm_log(CM_LOG_NOTICE, "refused client '%s' from %s: its certificate was not verified by certmgr", clientid, addr);
		cm_metrics_refused(st, CM_REFUSED_POLICY);
		X509_free(cert);
		return MOSQ_ERR_AUTH;
	}
	if(tag->admin){
		rc = remember(st, ed->client, CM_CLIENT_ADMIN, tag, NULL, cert);
		if(rc == MOSQ_ERR_SUCCESS){
			cm_metrics_accepted(st);
			cm_log(CM_LOG_INFO, "administrator '%s' from %s authenticated by admin certificate", clientid, addr);
		}
		return rc;
	}
	tenant = cm_store_find_tenant(st->store, tag->tenant);
	if(tenant == NULL){
		cm_log(CM_LOG_NOTICE, "refused client '%s' from %s: tenant %s no longer exists", clientid, addr, tag->tenant);
		cm_metrics_refused(st, CM_REFUSED_POLICY);
		X509_free(cert);
		return MOSQ_ERR_AUTH;
	}
	if(tenant->policy == CM_POLICY_TOKEN){
		/* The tenant's policy changed since the handshake: it asks for no
		 * certificate now, so this one proves nothing to certmgr. */
		return defer_unless_claimed(st, ed->client, cert);
	}
	if(tenant->policy == CM_POLICY_BRIDGE){
		return admit_peer_broker(st, ed->client, tag, tenant, cert);
	}
	if(cm_enroll_is_claim_chain(tenant, cert, tag->chain)){
		return admit_claim(st, ed->client, tag, tenant, cert);
	}
	return admit_device(st, ed->client, tag, tenant, cert);
}

static bool device_allowed(const struct cm_tenant *tenant, const struct cm_client *c, const char *topic, int access)
{
	const struct cm_strlist *patterns = access == MOSQ_ACL_WRITE ? &tenant->publish : &tenant->subscribe;
	char filled[1100];
	size_t i;

	for(i = 0; i < patterns->n; i++){
		if(!cm_topic_fill(patterns->v[i], &c->ident, filled, sizeof(filled))){
			continue;
		}
		if(access == MOSQ_ACL_SUBSCRIBE ? cm_topic_sub_within(filled, topic) : cm_topic_matches(filled, topic)){
			return true;
		}
	}
	return false;
}

/* The enrollment topics: a claim device may publish requests and read
 * answers there and nowhere else, ever; a device of a tenant with an
 * issuing CA may renew there too. -1: not for this rule to decide. */
static int enroll_acl(const struct cm_state *st, const struct cm_client *c, const struct mosquitto_evt_acl_check *ed)
{
	bool request = !strcmp(ed->topic, CM_ENROLL_TOPIC), answer = !strcmp(ed->topic, CM_ENROLL_RESPONSE_TOPIC);
	const struct cm_tenant *t;

	if(c == NULL || c->kind == CM_CLIENT_ADMIN){
		return -1;
	}
	if(c->kind == CM_CLIENT_DEVICE){
		t = cm_store_find_tenant(st->store, c->tenant);
		if(!(request || answer) || t == NULL || cm_enroll_issuing_ca(t) == NULL){
			return -1;
		}
	}else if(!(request || answer)){
		return ed->access == MOSQ_ACL_UNSUBSCRIBE ? MOSQ_ERR_SUCCESS : MOSQ_ERR_ACL_DENIED;
	}
	if(ed->access == MOSQ_ACL_UNSUBSCRIBE || (request && ed->access == MOSQ_ACL_WRITE) || (answer && ed->access != MOSQ_ACL_WRITE)){
		return MOSQ_ERR_SUCCESS;
	}
	return MOSQ_ERR_ACL_DENIED;
}

int cm_auth_acl_cb(int event, void *event_data, void *userdata)
{
	struct mosquitto_evt_acl_check *ed = event_data;
	struct cm_state *st = userdata;
	const struct cm_client *c = client_find(st, ed->client);
	const struct cm_tenant *tenant;
	int rc;

	(void)event;
	if((rc = enroll_acl(st, c, ed)) >= 0){
		return rc;
	}
	if(!strncmp(ed->topic, CONTROL_PREFIX, strlen(CONTROL_PREFIX))){
		/* The control topic is for administrators only, whatever any
		 * other mechanism would say. */
		return cm_auth_admin(st, ed->client) != CM_ADMIN_NONE ? MOSQ_ERR_SUCCESS : MOSQ_ERR_ACL_DENIED;
	}
	if(!strncmp(ed->topic, SYS_PREFIX, strlen(SYS_PREFIX)) && ed->access != MOSQ_ACL_WRITE
			&& cm_auth_admin(st, ed->client) != CM_ADMIN_NONE){
		/* Administrators read certmgr's metrics and events; others as
		 * the broker's own mechanisms say (a monitoring user in the
		 * acl_file, say). */
		return MOSQ_ERR_SUCCESS;
	}
	if(c == NULL || c->kind != CM_CLIENT_DEVICE){
		return MOSQ_ERR_PLUGIN_DEFER;
	}
	if(ed->access == MOSQ_ACL_UNSUBSCRIBE){
		return MOSQ_ERR_SUCCESS;
	}
	tenant = cm_store_find_tenant(st->store, c->tenant);
	if(tenant == NULL || !device_allowed(tenant, c, ed->topic, ed->access)){
		return MOSQ_ERR_ACL_DENIED;
	}
	return MOSQ_ERR_SUCCESS;
}

int cm_auth_disconnect_cb(int event, void *event_data, void *userdata)
{
	struct mosquitto_evt_disconnect *ed = event_data;

	(void)event;
	client_forget(userdata, ed->client);
	return MOSQ_ERR_SUCCESS;
}
