#include <errno.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>

#include <openssl/err.h>
#include <openssl/sha.h>
#include <openssl/ssl.h>
#include <openssl/x509_vfy.h>

#include "blocks.h"
#include "metrics.h"
#include "log.h"
#include "sni.h"
#include "revocation.h"
#include "secret.h"
#include "verdict.h"
#include "tls_hook.h"
#include "store.h"
#include "rejected.h"

/* The version of a cached session's facts. */
#define SESSION_MAGIC "certmgr2"
/* Paths deeper than this are not resumed. */
#define CM_TICKET_PATH_MAX 4


/* Per handshake, in the SSL's ex_data: freed once the handshake is done
 * (hs_info_cb), or with the SSL when certmgr could not watch it end. */
struct cm_hs {
	struct cm_state *st;
	char sni[CM_HOSTNAME_MAX + 1];          /* "" when none was sent */
	char tenant[CM_TENANT_NAME_MAX + 1];
	enum cm_policy policy;
	bool verified;          /* a tag was put on the peer's leaf */
	bool admin;
	bool sni_unknown;       /* an SNI was sent that no tenant has */
	uint64_t tenant_generation;
	time_t not_after;       /* of the verified path */
	/* The ids of the verified path's certificates between the leaf and
	 * the anchor, for the ticket: a resumption rebuilds the chain that
	 * connected devices are re-checked with from them. */
	int path_n;
	char path[CM_TICKET_PATH_MAX][CM_ID_LEN + 1];
};

/* OpenSSL's session cache and info callbacks take no argument. */
static struct cm_state *session_state;

/* ===================================================================
 * Tags on certificates
 * =================================================================== */

static void tag_unlink(struct cm_state *st, struct cm_tag *tag)
{
	if(tag->prev){
		tag->prev->next = tag->next;
	}else{
		st->tags = tag->next;
	}
	if(tag->next){
		tag->next->prev = tag->prev;
	}
}

static void tag_free_cb(void *parent, void *ptr, CRYPTO_EX_DATA *ad, int idx, long argl, void *argp)
{
	struct cm_state *st = argp;
	struct cm_tag *tag = ptr;

	(void)parent;
	(void)ad;
	(void)idx;
	(void)argl;
	if(tag){
		tag_unlink(st, tag);
		sk_X509_pop_free(tag->chain, X509_free);
		free(tag);
	}
}

const struct cm_tag *cm_tls_cert_tag(const struct cm_state *st, X509 *cert)
{
	if(cert == NULL || st->x509_ex_index < 0){
		return NULL;
	}
	return X509_get_ex_data(cert, st->x509_ex_index);
}

/* Replaces the tag of cert with what hs established; chain is what the
 * client sent (NULL: the leaf alone). False when out of memory (cert then
 * has no tag, and will be refused). */
static bool tag_set(struct cm_state *st, X509 *cert, bool admin, const struct cm_hs *hs, STACK_OF(X509) *chain, time_t not_after)
{
	struct cm_tag *old = X509_get_ex_data(cert, st->x509_ex_index);
	struct cm_tag *tag;
	size_t tenant_len, sni_len;

	if(old){
		X509_set_ex_data(cert, st->x509_ex_index, NULL);
		tag_unlink(st, old);
		sk_X509_pop_free(old->chain, X509_free);
		free(old);
	}
	tenant_len = strlen(hs->tenant);
	sni_len = strlen(hs->sni);
	tag = calloc(1, sizeof(*tag) + tenant_len + 1 + sni_len + 1);
	if(tag == NULL){
		return false;
	}
	tag->admin = admin;
	memcpy(tag->names, hs->tenant, tenant_len + 1);
	memcpy(tag->names + tenant_len + 1, hs->sni, sni_len + 1);
	tag->tenant = tag->names;
	tag->sni = tag->names + tenant_len + 1;
	tag->policy = hs->policy;
	tag->tenant_generation = hs->tenant_generation;
	tag->not_after = not_after;
	/* The intermediates only: a reference to the leaf itself from its own
	 * ex_data would keep it alive for ever. */
	tag->chain = sk_X509_new_null();
	for(int i = 0; tag->chain && chain && i < sk_X509_num(chain); i++){
		X509 *c = sk_X509_value(chain, i);
		if(c != cert && X509_cmp(c, cert) != 0){
			if(!sk_X509_push(tag->chain, c)){
				sk_X509_pop_free(tag->chain, X509_free);
				tag->chain = NULL;
				break;
			}
			X509_up_ref(c);
		}
	}
	if(tag->chain == NULL || !X509_set_ex_data(cert, st->x509_ex_index, tag)){
		sk_X509_pop_free(tag->chain, X509_free);
		free(tag);
		return false;
	}
	tag->next = st->tags;
	if(st->tags){
		st->tags->prev = tag;
	}
	st->tags = tag;
	return true;
}

/* ===================================================================
 * Handshake
 * =================================================================== */

static void hs_free_cb(void *parent, void *ptr, CRYPTO_EX_DATA *ad, int idx, long argl, void *argp)
{
	(void)parent;
	(void)ad;
	(void)idx;
	(void)argl;
	(void)argp;
	free(ptr);
}

/* The local port of the socket under ssl, or 0. */
static uint16_t local_port(SSL *ssl)
{
	struct sockaddr_storage ss;
	socklen_t len = sizeof(ss);
	int fd = SSL_get_fd(ssl);

	if(fd < 0 || getsockname(fd, (struct sockaddr *)&ss, &len) != 0){
		return 0;
	}
	if(ss.ss_family == AF_INET){
		return ntohs(((struct sockaddr_in *)&ss)->sin_port);
	}
	if(ss.ss_family == AF_INET6){
		return ntohs(((struct sockaddr_in6 *)&ss)->sin6_port);
	}
	return 0;
}

static void peer_address(SSL *ssl, char *buf, size_t len)
{
	struct sockaddr_storage ss;
	socklen_t sl = sizeof(ss);
	int fd = SSL_get_fd(ssl);

	snprintf(buf, len, "?");
	if(fd >= 0 && getpeername(fd, (struct sockaddr *)&ss, &sl) == 0){
		char host[64] = "?";
		if(ss.ss_family == AF_INET){
			inet_ntop(AF_INET, &((struct sockaddr_in *)&ss)->sin_addr, host, sizeof(host));
		}else if(ss.ss_family == AF_INET6){
			inet_ntop(AF_INET6, &((struct sockaddr_in6 *)&ss)->sin6_addr, host, sizeof(host));
		}
		snprintf(buf, len, "%s", host);
	}
}

/* A refusal of a handshake, on the inventory's records of the devices
 * the leaf may be (those it has seen). */
static void note_refusal(struct cm_state *st, const struct cm_hs *hs, X509 *leaf, enum cm_refusal why)
{
	const struct cm_tenant *t = cm_store_find_tenant(st->store, hs->tenant);
	char ids[CM_IDENT_CERT_MAX][CM_IDENT_CLIENTID_MAX + 1];
	bool more;
	size_t n;

	if(t == NULL || st->inventory == NULL || st->inventory->count == 0){
		return;
	}
	n = cm_identity_cert_clientids(leaf, t->org_id, ids, &more);
	for(size_t i = 0; i < n; i++){
		cm_inventory_refused(st->inventory, t->name, ids[i], (int)why, time(NULL));
	}
}

/* Whether a verified leaf is blocked in tenant t: its certificate, or
 * every device id it may hold (one it names and is not blocked for is
 * refused at CONNECT instead, by its client id). v gets the refusal. */
static bool leaf_blocked(const struct cm_tenant *t, X509 *leaf, struct cm_verdict *v)
{
	char id[CM_ID_LEN + 1], ids[CM_IDENT_CERT_MAX][CM_IDENT_CLIENTID_MAX + 1];
	const struct cm_block *b = NULL;
	bool more = false;
	size_t n, blocked = 0;

	if(t->blocked_certs.n == 0 && t->blocked_devices.n == 0){
		return false;
	}
	if(t->blocked_certs.n && cm_pki_cert_id(leaf, id, NULL) == CM_OK && (b = cm_tenant_cert_blocked(t, id)) != NULL){
		snprintf(v->why, sizeof(v->why), "certificate %.16s... is blocked%s%.180s", id, b->reason[0] ? ": " : "", b->reason);
	}
	n = b == NULL && t->blocked_devices.n ? cm_identity_cert_clientids(leaf, t->org_id, ids, &more) : 0;
	for(size_t i = 0; i < n && !more; i++){
		const struct cm_block *d = cm_tenant_device_blocked(t, ids[i]);
		if(d){
			blocked++;
			b = d;
		}
	}
	if(b == NULL || (n && blocked < n)){
		return false;
	}
	if(n){
		snprintf(v->why, sizeof(v->why), "device '%.100s' is blocked%s%.120s", b->key, b->reason[0] ? ": " : "", b->reason);
	}
	v->admitted = false;
	v->refusal = CM_REFUSED_BLOCKED;
	v->error = X509_V_ERR_APPLICATION_VERIFICATION;
	v->depth = 0;
	v->revocation = false;
	return true;
}

/* A refused handshake: logged, counted, and its chain (as sent, leaf
 * first) recorded in the rejected list. */
static void refused(struct cm_state *st, const struct cm_hs *hs, SSL *ssl, X509_STORE_CTX *ctx, STACK_OF(X509) *sent,
		const struct cm_verdict *v)
{
	char addr[64], cn[128] = "";
	X509 *leaf = X509_STORE_CTX_get0_cert(ctx);
	STACK_OF(X509) *one = NULL;

	if(leaf){
		cm_pki_subject_cn(leaf, cn, sizeof(cn));
	}
	peer_address(ssl, addr, sizeof(addr));
	cm_log(CM_LOG_NOTICE, "refused client certificate from %s (SNI '%s', tenant %s): %s at depth %d (CN '%s')",
			addr, hs->sni, hs->tenant, v->why, v->depth, cn);
	cm_metrics_refused(st, hs->sni_unknown && !v->revocation ? CM_REFUSED_UNKNOWN_SNI : v->refusal);
	if(leaf){
		note_refusal(st, hs, leaf, v->refusal);
	}
	if(st->rejected == NULL){
		return;
	}
	if((sent == NULL || sk_X509_num(sent) == 0) && leaf && (one = sk_X509_new_null()) != NULL){
		sk_X509_push(one, leaf);
		sent = one;
	}
	cm_rejected_record(st->rejected, sent, v->why, hs->sni, hs->tenant, addr, time(NULL));
	sk_X509_free(one);
}

/* The ids of chain's certificates between the leaf and the anchor. */
static void record_path(struct cm_hs *hs, STACK_OF(X509) *chain)
{
	int n = sk_X509_num(chain);

	hs->path_n = 0;
	if(n - 2 > CM_TICKET_PATH_MAX){
		hs->path_n = -1; /* too deep to resume */
		return;
	}
	for(int i = 1; i < n - 1; i++){
		if(cm_pki_cert_id(sk_X509_value(chain, i), hs->path[hs->path_n], NULL) != CM_OK){
			hs->path_n = -1;
			return;
		}
		hs->path_n++;
	}
}

/* The whole verification of a client chain, for every handshake of the
 * broker's server contexts: the verdict module decides. Replacing it,
 * rather than hooking the per-certificate verify callback, is what sees
 * every verdict: OpenSSL does not call the per-certificate callback on
 * success when the chain is a single trusted certificate. */
static int cert_verify_cb(X509_STORE_CTX *ctx, void *arg)
{
	struct cm_state *st = arg;
	SSL *ssl = X509_STORE_CTX_get_ex_data(ctx, SSL_get_ex_data_X509_STORE_CTX_idx());
	struct cm_hs *hs = ssl ? SSL_get_ex_data(ssl, st->ssl_ex_index) : NULL;
	const struct cm_tenant *tenant;
	STACK_OF(X509) *sent = X509_STORE_CTX_get0_untrusted(ctx), *chain;
	X509 *leaf = X509_STORE_CTX_get0_cert(ctx);
	struct cm_verdict v;

	if(hs == NULL){
		return X509_verify_cert(ctx); /* a listener certmgr does not serve */
	}
	tenant = cm_store_find_tenant(st->store, hs->tenant);
	if(tenant == NULL){
		cm_metrics_refused(st, CM_REFUSED_POLICY);
		X509_STORE_CTX_set_error(ctx, X509_V_ERR_APPLICATION_VERIFICATION);
		return 0;
	}
	if(!cm_verdict_ctx(ctx, tenant, cm_store_get0_admin_ca(st->store), &v)){
		STACK_OF(X509) *path = NULL;
		/* Refused only for want of a CRL, with a path otherwise valid:
		 * learn where its CRLs come from, for the next attempt. */
		if(v.error == X509_V_ERR_UNABLE_TO_GET_CRL && leaf && cm_verdict_path(tenant, cm_store_get0_admin_ca(st->store), leaf, sent, "ssl_client", &path) == X509_V_OK){
			cm_revocation_learn(st, tenant, path);
		}
		sk_X509_pop_free(path, X509_free);
		refused(st, hs, ssl, ctx, sent, &v);
		X509_STORE_CTX_set_error(ctx, v.error);
		return 0;
	}
	if(!v.admin && leaf && leaf_blocked(tenant, leaf, &v)){
		refused(st, hs, ssl, ctx, sent, &v);
		X509_STORE_CTX_set_error(ctx, v.error);
		return 0;
	}
	chain = X509_STORE_CTX_get0_chain(ctx);
	if(!v.admin && chain){
		cm_revocation_learn(st, tenant, chain);
	}
	record_path(hs, chain);
	hs->not_after = v.not_after;
	if(leaf == NULL || !tag_set(st, leaf, v.admin, hs, sent, v.not_after)){
		X509_STORE_CTX_set_error(ctx, X509_V_ERR_OUT_OF_MEM);
		return 0;
	}
	hs->verified = true;
	hs->admin = v.admin;
	return 1;
}

/* The handshake record of ssl: the one made at the first client hello
 * (the callback runs again after a HelloRetryRequest), or a new one;
 * NULL when out of memory. */
static struct cm_hs *hs_get(struct cm_state *st, SSL *ssl)
{
	struct cm_hs *hs = SSL_get_ex_data(ssl, st->ssl_ex_index);

	if(hs == NULL){
		hs = calloc(1, sizeof(*hs));
		if(hs == NULL || !SSL_set_ex_data(ssl, st->ssl_ex_index, hs)){
			free(hs);
			return NULL;
		}
	}
	hs->st = st;
	return hs;
}

/* Frees ssl's handshake record once its handshake is done, tickets
 * written: what a connection keeps after it is the tag on its leaf (and
 * the cached session). OpenSSL reports the end of a TLS 1.3 handshake
 * before it writes the ticket (session_new_cb reads hs), so not at
 * SSL_CB_HANDSHAKE_DONE but when the call that finished it returns. The
 * context's own info callback, which this one hides, is called too. */
static void hs_info_cb(const SSL *ssl, int where, int ret)
{
	struct cm_state *st = session_state;
	void (*ctx_cb)(const SSL *, int, int) = SSL_CTX_get_info_callback(SSL_get_SSL_CTX(ssl));
	struct cm_hs *hs;

	if(st && (where & SSL_CB_EXIT) && ret == 1 && SSL_is_init_finished(ssl)
			&& (hs = SSL_get_ex_data(ssl, st->ssl_ex_index)) != NULL){
		/* Only the pointer changes: ex_data is not the handshake's state. */
		if(SSL_set_ex_data((SSL *)ssl, st->ssl_ex_index, NULL)){
			free(hs);
		}
	}
	if(ctx_cb){
		ctx_cb(ssl, where, ret);
	}
}

/* Watches ssl's handshake end, unless someone else does per SSL. */
static void hs_watch(SSL *ssl)
{
	void (*cb)(const SSL *, int, int) = SSL_get_info_callback(ssl);

	if(cb == NULL){
		SSL_set_info_callback(ssl, hs_info_cb);
	}
}

/* The SNI tenant of the client hello, recorded in hs. */
static const struct cm_tenant *hs_tenant(struct cm_state *st, SSL *ssl, struct cm_hs *hs)
{
	const struct cm_tenant *tenant;
	const unsigned char *ext;
	size_t ext_len;

	hs->sni[0] = '\0';
	if(SSL_client_hello_get0_ext(ssl, TLSEXT_TYPE_server_name, &ext, &ext_len)){
		if(!cm_sni_parse(ext, ext_len, hs->sni)){
			hs->sni[0] = '\0'; /* malformed or unusable: treated as unknown */
		}
	}
	tenant = cm_store_tenant_for_sni(st->store, hs->sni[0] ? hs->sni : NULL);
	hs->sni_unknown = hs->sni[0] && !cm_store_sni_known(st->store, hs->sni);
	snprintf(hs->tenant, sizeof(hs->tenant), "%s", tenant->name);
	hs->policy = tenant->policy;
	hs->tenant_generation = tenant->generation;
	return tenant;
}

/* ALPN on websockets listeners: HTTP/1.1 or none. libwebsockets offers
 * h2 when a browser asks, and Chromium then fails the console's page
 * with ERR_HTTP2_PROTOCOL_ERROR; a WebSocket needs HTTP/1.1 anyway. */
static int alpn_http11(SSL *ssl, const unsigned char **out, unsigned char *outlen,
		const unsigned char *in, unsigned int inlen, void *arg)
{
	static const unsigned char ours[] = "\x08http/1.1";
	unsigned char *sel = NULL;

	(void)ssl;
	(void)arg;
	if(SSL_select_next_proto(&sel, outlen, ours, sizeof(ours) - 1, in, inlen) != OPENSSL_NPN_NEGOTIATED){
		return SSL_TLSEXT_ERR_NOACK;
	}
	*out = sel;
	return SSL_TLSEXT_ERR_OK;
}

/* How a handshake's client certificate is asked for. token: none asked,
 * the broker's other mechanisms authenticate these clients; a console
 * port: asked, not required, and a client without one signs in with a
 * user name. */
static int verify_mode(const struct cm_tenant *tenant, const struct cm_port_slot *port)
{
	if(tenant->policy == CM_POLICY_TOKEN){
		return SSL_VERIFY_NONE;
	}
	return port && port->cert_optional ? SSL_VERIFY_PEER : SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT;
}

static int client_hello_cb(SSL *ssl, int *alert, void *arg)
{
	struct cm_state *st = arg;
	const struct cm_server_cert *cert;
	const struct cm_tenant *tenant;
	uint16_t port = local_port(ssl);
	struct cm_hs *hs;
	int slot;

	slot = cm_state_slot_for_port(st, port);
	if(slot < 0){
		/* A TLS listener certmgr was not asked to serve. */
		return SSL_CLIENT_HELLO_SUCCESS;
	}
	if((hs = hs_get(st, ssl)) == NULL){
		*alert = SSL_AD_INTERNAL_ERROR;
		return SSL_CLIENT_HELLO_ERROR;
	}
	hs_watch(ssl);
	tenant = hs_tenant(st, ssl, hs);
	cm_secret_check(st, (enum cm_slot_id)slot);
	cert = cm_store_served_cert(st->store, tenant, (enum cm_slot_id)slot);
	ERR_clear_error();
	/* The SSL keeps a certificate per key type, and the one the listener
	 * loaded from its certfile would still be offered beside ours (an EC
	 * one wins over an RSA one): clear them all first. The SSL takes its
	 * own references: a change while this handshake runs frees nothing
	 * it holds. */
	SSL_certs_clear(ssl);
	if(SSL_use_cert_and_key(ssl, cert->leaf, cert->key, cert->extra, 1) != 1
			|| SSL_set1_verify_cert_store(ssl, tenant->trust) != 1){
		cm_log_openssl(CM_LOG_ERR, "cannot set up a handshake");
		*alert = SSL_AD_INTERNAL_ERROR;
		return SSL_CLIENT_HELLO_ERROR;
	}
	SSL_set_verify(ssl, verify_mode(tenant, cm_state_port(st, port)), NULL);
	if(slot == CM_SLOT_WEBSOCKETS){
		/* The ALPN choice is the context's; libwebsockets sets its own
		 * after the context is made, so it is replaced here, before
		 * OpenSSL reads the client's list. */
		SSL_CTX_set_alpn_select_cb(SSL_get_SSL_CTX(ssl), alpn_http11, NULL);
	}
	/* One TLS 1.3 ticket, not OpenSSL's default two: a device resumes
	 * with the latest one it got, and each is a session in the cache.
	 * Set here: SSL_CTX_new sets the default after the ex_data callback
	 * has run. */
	SSL_set_num_tickets(ssl, 1);
	st->handshakes_served++;
	return SSL_CLIENT_HELLO_SUCCESS;
}

/* ===================================================================
 * Session resumption, from certmgr's own cache. A resumption skips the
 * verify callback, so each cached session keeps what the full handshake
 * established (its facts), and it is resumed only while that holds: the
 * same tenant, at the same trust generation, the path and the CRLs not
 * out of date. A stateful cache rather than tickets: for a ticket,
 * OpenSSL 3.0 encodes the whole session, the client's certificate
 * included, and encrypts it at every handshake, then decrypts and decodes
 * it at every resumption; a cached session is found by its id, its
 * certificate parsed (and tagged) already.
 * =================================================================== */

struct cm_session {
	unsigned char id[SSL_MAX_SSL_SESSION_ID_LENGTH];
	unsigned int id_len;
	SSL_SESSION *sess;      /* our reference */
	uint16_t port;          /* the listener it was made on */
	/* The SHA-1 of the client's certificate (none for a token tenant's):
	 * one session a certificate, so that a device reconnecting with full
	 * handshakes, or a flood of them, keeps one session, not one each. */
	unsigned char leaf[SHA_DIGEST_LENGTH];
	bool has_leaf;
	UT_hash_handle hh, hh_leaf;
	/* SESSION_MAGIC|admin|tenant|generation|notAfter|path ids, as long as
	 * it is (some 40 bytes with one intermediate-free path): one is kept
	 * for every cached session. */
	char facts[];
};

/* The longest facts: SESSION_MAGIC, a tenant name, two numbers, the ids. */
#define SESSION_FACTS_MAX (sizeof(SESSION_MAGIC) + CM_TENANT_NAME_MAX + 64 + CM_TICKET_PATH_MAX * (CM_ID_LEN + 1))


static bool session_facts(const struct cm_hs *hs, char *buf, size_t len)
{
	int n = snprintf(buf, len, "%s|%d|%s|%llu|%lld|", SESSION_MAGIC, hs->admin ? 1 : 0, hs->tenant,
			(unsigned long long)hs->tenant_generation, (long long)hs->not_after);

	for(int i = 0; n > 0 && (size_t)n < len && i < hs->path_n; i++){
		n += snprintf(buf + n, len - (size_t)n, "%s%s", i ? "," : "", hs->path[i]);
	}
	return n > 0 && (size_t)n < len;
}

static void session_drop(struct cm_state *st, struct cm_session *e)
{
	HASH_DEL(st->sessions, e);
	if(e->has_leaf){
		HASH_DELETE(hh_leaf, st->sessions_by_leaf, e);
	}
	SSL_SESSION_free(e->sess);
	free(e);
}

static struct cm_session *session_find(struct cm_state *st, const unsigned char *id, unsigned int len)
{
	struct cm_session *e = NULL;

	if(len > 0 && len <= SSL_MAX_SSL_SESSION_ID_LENGTH){
		HASH_FIND(hh, st->sessions, id, len, e);
	}
	return e;
}

/* A new session of a verified handshake (or of a token tenant's, which
 * asks for no certificate): kept, the oldest dropped past session_max. */
static int session_new_cb(SSL *ssl, SSL_SESSION *sess)
{
	struct cm_state *st = session_state;
	struct cm_hs *hs = st ? SSL_get_ex_data(ssl, st->ssl_ex_index) : NULL;
	struct cm_session *e, *old;
	char facts[SESSION_FACTS_MAX];
	const unsigned char *id;
	unsigned int len;
	size_t facts_len;

	if(hs == NULL || st->session_max == 0 || (hs->policy == CM_POLICY_TOKEN ? SSL_SESSION_get0_peer(sess) != NULL
			: !hs->verified || hs->path_n < 0)){
		return 0;
	}
	id = SSL_SESSION_get_id(sess, &len);
	if(len == 0 || len > SSL_MAX_SSL_SESSION_ID_LENGTH || !session_facts(hs, facts, sizeof(facts))){
		return 0;
	}
	facts_len = strlen(facts);
	if((e = calloc(1, sizeof(*e) + facts_len + 1)) == NULL){
		return 0;
	}
	memcpy(e->facts, facts, facts_len + 1);
	memcpy(e->id, id, len);
	e->id_len = len;
	e->sess = sess;
	e->port = local_port(ssl);
	if((old = session_find(st, id, len)) != NULL){
		session_drop(st, old);
	}
	/* Cheap: OpenSSL keeps the SHA-1 of a certificate it has checked. */
	e->has_leaf = SSL_SESSION_get0_peer(sess) && X509_digest(SSL_SESSION_get0_peer(sess), EVP_sha1(), e->leaf, NULL);
	if(e->has_leaf){
		HASH_FIND(hh_leaf, st->sessions_by_leaf, e->leaf, sizeof(e->leaf), old);
		if(old){
			session_drop(st, old);
		}
	}
	while(st->sessions && HASH_COUNT(st->sessions) >= st->session_max){
		session_drop(st, st->sessions);
	}
	HASH_ADD(hh, st->sessions, id, len, e);
	if(e->has_leaf){
		HASH_ADD(hh_leaf, st->sessions_by_leaf, leaf, sizeof(e->leaf), e);
	}
	return 1; /* the reference is ours */
}

/* The chain a session's path ids name ("id,id,..."), from the tenant's
 * entries, the ids also into hs for the session this resumption makes;
 * NULL when one is no longer known (or out of memory). */
static STACK_OF(X509) *chain_of_ids(const struct cm_tenant *t, const char *ids, struct cm_hs *hs)
{
	STACK_OF(X509) *chain = sk_X509_new_null();
	const char *p = ids;

	hs->path_n = 0;
	while(chain && *p){
		const struct cm_ca *e = NULL;
		if(hs->path_n < CM_TICKET_PATH_MAX && strlen(p) >= CM_ID_LEN && (p[CM_ID_LEN] == ',' || p[CM_ID_LEN] == '\0')){
			memcpy(hs->path[hs->path_n], p, CM_ID_LEN);
			hs->path[hs->path_n][CM_ID_LEN] = '\0';
			e = cm_pki_id_valid(hs->path[hs->path_n]) ? cm_tenant_find_ca(t, hs->path[hs->path_n]) : NULL;
		}
		if(e == NULL || !sk_X509_push(chain, e->cert)){
			sk_X509_free(chain);
			return NULL;
		}
		X509_up_ref(e->cert);
		hs->path_n++;
		p += CM_ID_LEN + (p[CM_ID_LEN] == ',');
	}
	return chain;
}

/* May the session with facts, whose peer certificate is peer (NULL: a
 * token tenant's), be resumed in handshake hs? Then peer is tagged as the
 * full handshake tagged it. Nothing has changed when the tenant and its
 * generation are the same: only time can have, the path's expiry and a
 * CRL's. */
static bool session_still_holds(struct cm_state *st, struct cm_hs *hs, X509 *peer, const char *facts)
{
	const struct cm_tenant *t;
	char tenant[CM_TENANT_NAME_MAX + 1], ids[CM_TICKET_PATH_MAX * (CM_ID_LEN + 1) + 1] = "";
	int admin = 0;
	unsigned long long gen = 0;
	long long not_after = 0;
	time_t now = time(NULL);
	STACK_OF(X509) *chain;
	bool ok;

	if(sscanf(facts, SESSION_MAGIC "|%d|%64[^|]|%llu|%lld|%260[0-9a-f,]", &admin, tenant, &gen, &not_after, ids) < 4){
		return false;
	}
	/* The session must have been made under the tenant this handshake's
	 * SNI picks, whose trust has not changed since. */
	if(strcmp(tenant, hs->tenant) || gen != hs->tenant_generation || (hs->policy == CM_POLICY_TOKEN) != (peer == NULL)){
		cm_log(CM_LOG_INFO, "session resumption refused (made for tenant %s generation %llu, now %s generation %llu): full handshake",
				tenant, gen, hs->tenant, (unsigned long long)hs->tenant_generation);
		return false;
	}
	if(peer == NULL){
		return true;
	}
	t = cm_store_find_tenant(st->store, hs->tenant);
	if(t == NULL || (not_after && now >= not_after) || (!admin && t->crls_next_update && now >= t->crls_next_update)){
		cm_log(CM_LOG_INFO, "session resumption refused (a certificate or CRL of its path is out of date): full handshake");
		return false;
	}
	chain = chain_of_ids(t, ids, hs);
	ok = chain && tag_set(st, peer, admin == 1, hs, chain, (time_t)not_after);
	sk_X509_pop_free(chain, X509_free);
	if(ok){
		hs->verified = true;
		hs->admin = admin == 1;
		hs->not_after = (time_t)not_after;
	}else{
		hs->path_n = -1;
	}
	return ok;
}

/* A client offers the session id: resumed when it still holds, else a
 * full handshake. A TLS 1.3 session is used once (the resumption makes
 * the next one), so OpenSSL gets our reference; a TLS 1.2 one stays. */
static SSL_SESSION *session_get_cb(SSL *ssl, const unsigned char *id, int len, int *copy)
{
	struct cm_state *st = session_state;
	struct cm_hs *hs = st ? SSL_get_ex_data(ssl, st->ssl_ex_index) : NULL;
	struct cm_session *e = st && len > 0 ? session_find(st, id, (unsigned int)len) : NULL;
	SSL_SESSION *sess;
	time_t now = time(NULL);

	*copy = 0;
	if(e == NULL || hs == NULL){
		return NULL;
	}
	sess = e->sess;
	if(e->port != local_port(ssl) || !SSL_SESSION_is_resumable(sess)
			|| now >= (time_t)SSL_SESSION_get_time(sess) + (time_t)SSL_SESSION_get_timeout(sess)
			|| !session_still_holds(st, hs, SSL_SESSION_get0_peer(sess), e->facts)){
		session_drop(st, e);
		return NULL;
	}
	if(SSL_version(ssl) >= TLS1_3_VERSION){
		e->sess = NULL;
		session_drop(st, e);
		return sess;
	}
	*copy = 1;
	return sess;
}

void cm_tls_sessions_clear(struct cm_state *st)
{
	while(st->sessions){
		session_drop(st, st->sessions);
	}
}

/* For the broker's outgoing bridges: present the bridge slot's current
 * default, so that a rotation reaches the next bridge connection without
 * a restart. A client context is taken for a bridge's when the
 * certificate it was configured with (bridge_certfile) is one of the
 * bridge slot's, present or the one served at start: libcurl's contexts
 * (CRL downloads) carry no client certificate and are left alone. */
static int bridge_cert_cb(SSL *ssl, void *arg)
{
	struct cm_state *st = arg;
	X509 *configured = SSL_get_certificate(ssl);
	const struct cm_server_cert *c, *def;
	bool ours = false;

	if(configured == NULL){
		return 1;
	}
	if(st->bridge_at_start && X509_cmp(configured, st->bridge_at_start) == 0){
		ours = true;
	}
	for(c = cm_store_slot_certs(st->store, CM_SLOT_BRIDGE); !ours && c; c = c->next){
		ours = X509_cmp(configured, c->leaf) == 0;
	}
	if(!ours){
		return 1;
	}
	def = cm_store_slot_default(st->store, CM_SLOT_BRIDGE);
	ERR_clear_error();
	SSL_certs_clear(ssl);
	if(SSL_use_cert_and_key(ssl, def->leaf, def->key, def->extra, 1) != 1){
		cm_log_openssl(CM_LOG_ERR, "cannot present the bridge certificate");
		return 0;
	}
	return 1;
}

/* Runs inside every SSL_CTX_new of the process once installed: the
 * broker's listeners, but also libcurl's and libwebsockets' client
 * contexts, which must be left alone. Listeners are the server contexts;
 * client contexts get only the bridge callback, which acts on bridges'. */
static void ctx_new_cb(void *parent, void *ptr, CRYPTO_EX_DATA *ad, int idx, long argl, void *argp)
{
	SSL_CTX *ctx = parent;
	struct cm_state *st = argp;

	(void)ptr;
	(void)ad;
	(void)idx;
	(void)argl;
	if(ctx == NULL){
		return;
	}
	if(SSL_CTX_get_ssl_method(ctx) == TLS_client_method()){
		SSL_CTX_set_cert_cb(ctx, bridge_cert_cb, st);
		return;
	}
	if(SSL_CTX_get_ssl_method(ctx) != TLS_server_method()){
		return;
	}
	SSL_CTX_set_client_hello_cb(ctx, client_hello_cb, st);
	SSL_CTX_set_cert_verify_callback(ctx, cert_verify_cb, st);
	/* Resumption from certmgr's cache only: no tickets, no internal
	 * cache, so that every resumption passes session_get_cb. */
	SSL_CTX_set_options(ctx, SSL_OP_NO_TICKET);
	SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_SERVER | SSL_SESS_CACHE_NO_INTERNAL);
	SSL_CTX_set_session_id_context(ctx, (const unsigned char *)"certmgr", 7);
	SSL_CTX_sess_set_new_cb(ctx, session_new_cb);
	SSL_CTX_sess_set_get_cb(ctx, session_get_cb);
}

enum cm_rc cm_tls_hook_install(struct cm_state *st, struct cm_err *err)
{
	char detail[256];

	ERR_clear_error();
	st->x509_ex_index = X509_get_ex_new_index(0, st, NULL, NULL, tag_free_cb);
	st->ssl_ex_index = SSL_get_ex_new_index(0, st, NULL, NULL, hs_free_cb);
	st->ctx_ex_index = SSL_CTX_get_ex_new_index(0, st, ctx_new_cb, NULL, NULL);
	session_state = st;
	st->bridge_at_start = cm_store_slot_default(st->store, CM_SLOT_BRIDGE)->leaf;
	X509_up_ref(st->bridge_at_start);
	if(st->x509_ex_index < 0 || st->ssl_ex_index < 0 || st->ctx_ex_index < 0){
		cm_log_openssl_drain(detail, sizeof(detail));
		cm_tls_hook_remove(st);
		return cm_err_set(err, CM_ERR_CRYPTO, "cannot register the OpenSSL hooks (%s)", detail);
	}
	return CM_OK;
}

void cm_tls_hook_remove(struct cm_state *st)
{
	struct cm_tag *tag, *next;

	if(st->ctx_ex_index >= 0){
		CRYPTO_free_ex_index(CRYPTO_EX_INDEX_SSL_CTX, st->ctx_ex_index);
	}
	if(st->ssl_ex_index >= 0){
		CRYPTO_free_ex_index(CRYPTO_EX_INDEX_SSL, st->ssl_ex_index);
	}
	if(st->x509_ex_index >= 0){
		CRYPTO_free_ex_index(CRYPTO_EX_INDEX_X509, st->x509_ex_index);
	}
	st->ctx_ex_index = st->ssl_ex_index = st->x509_ex_index = -1;
	cm_tls_sessions_clear(st);
	session_state = NULL;
	X509_free(st->bridge_at_start);
	st->bridge_at_start = NULL;
	/* Certificates that outlive the plugin (sessions cached in a context)
	 * keep a dangling pointer nobody reads: their free callback is gone. */
	for(tag = st->tags; tag; tag = next){
		next = tag->next;
		sk_X509_pop_free(tag->chain, X509_free);
		free(tag);
	}
	st->tags = NULL;
}
