#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/err.h>
#include <openssl/x509v3.h>

#include "fetch.h"
#include "log.h"
#include "refresh.h"
#include "registry.h"
#include "revocation.h"
#include "store.h"

/* How long a failed attempt to learn a CRL waits before the next one. */
#define LEARN_RETRY 60

/* When a CRL was last learned for a tenant's CA, to space the attempts
 * (every handshake of its devices would start one). */
struct cm_learning {
	char key[140]; /* "<tenant>/<ca id>" */
	time_t last_attempt;
	UT_hash_handle hh;
};


const struct cm_ca *cm_rev_entry_for(const struct cm_tenant *t, X509 *cert)
{
	const struct cm_ca *ca;

	for(ca = t->cas; ca; ca = ca->next){
		if(ca->cert == cert){
			return ca;
		}
	}
	for(ca = t->cas; ca; ca = ca->next){
		if(X509_cmp(ca->cert, cert) == 0){
			return ca;
		}
	}
	return NULL;
}

const struct cm_ca *cm_rev_issuer_of(const struct cm_tenant *t, X509 *cert)
{
	const struct cm_ca *ca;

	for(ca = t->cas; ca; ca = ca->next){
		if(!ca->pinned && !ca->issuer_only && ca->cert != cert && X509_cmp(ca->cert, cert) != 0
				&& X509_check_issued(ca->cert, cert) == X509_V_OK){
			return ca;
		}
	}
	return NULL;
}

/* ===================================================================
 * Learning
 * =================================================================== */

static void learn_one(struct cm_state *st, const struct cm_tenant *t, const struct cm_ca *e, X509 *issued)
{
	struct cm_learning *l = NULL;
	struct cm_err err;
	char url[2048], key[140];
	time_t now = time(NULL);

	if(e == NULL || e->pinned || e->crl || e->crl_url || e->sched.in_flight || !cm_crl_distribution_point(issued, url, sizeof(url))){
		return;
	}
	snprintf(key, sizeof(key), "%s/%s", t->name, e->id);
	HASH_FIND_STR(st->learning, key, l);
	if(l && now - l->last_attempt < LEARN_RETRY){
		return;
	}
	if(l == NULL){
		l = calloc(1, sizeof(*l));
		if(l == NULL){
			return;
		}
		memcpy(l->key, key, sizeof(l->key));
		HASH_ADD_STR(st->learning, key, l);
	}
	l->last_attempt = now;
	if(cm_refresh_learn(st, t, e, url, &err) != CM_OK){
		cm_log(CM_LOG_WARNING, "cannot learn the CRL of CA %s from %s: %s", e->id, url, err.msg);
		return;
	}
	cm_log(CM_LOG_INFO, "learning the CRL of CA %s (tenant %s) from %s", e->id, t->name, url);
}

/* An issuer of a verified chain that its tenant does not know yet. */
struct cm_learn_item {
	char tenant[CM_TENANT_NAME_MAX + 1];
	X509 *cert;
	struct cm_learn_item *next;
};

#define LEARN_QUEUE_MAX 32

static void enqueue(struct cm_state *st, const struct cm_tenant *t, X509 *cert)
{
	struct cm_learn_item *q;
	int n = 0;

	for(q = st->learn_queue; q; q = q->next, n++){
		if(!strcmp(q->tenant, t->name) && X509_cmp(q->cert, cert) == 0){
			return;
		}
	}
	if(n >= LEARN_QUEUE_MAX || (q = calloc(1, sizeof(*q))) == NULL){
		return;
	}
	snprintf(q->tenant, sizeof(q->tenant), "%s", t->name);
	X509_up_ref(cert);
	q->cert = cert;
	q->next = st->learn_queue;
	st->learn_queue = q;
}

void cm_revocation_learn(struct cm_state *st, const struct cm_tenant *t, STACK_OF(X509) *chain)
{
	int n = sk_X509_num(chain), i;

	for(i = 0; i + 1 < n; i++){
		X509 *issuer = sk_X509_value(chain, i + 1);
		const struct cm_ca *e = cm_rev_entry_for(t, issuer);
		if(e){
			if(st->fetcher){
				learn_one(st, t, e, sk_X509_value(chain, i));
			}
		}else{
			enqueue(st, t, issuer);
		}
	}
}

static int issuers_known(const struct cm_tenant *t)
{
	int n = 0;

	for(const struct cm_ca *ca = t->cas; ca; ca = ca->next){
		n += ca->issuer_only;
	}
	return n;
}

/* Adds cert to tenant name as a known issuer. */
static void learn_issuer(struct cm_state *st, const char *name, X509 *cert)
{
	const struct cm_tenant *cur = cm_store_find_tenant(st->store, name);
	struct cm_tenant *t;
	struct cm_ca *e = NULL;
	struct cm_err err;
	char id[CM_ID_LEN + 1];

	if(cur == NULL || cm_pki_cert_id(cert, id, NULL) != CM_OK || cm_tenant_find_ca(cur, id)){
		return;
	}
	if(issuers_known(cur) >= CM_LEARNED_ISSUERS_MAX){
		cm_log(CM_LOG_WARNING, "tenant %s knows %d issuers already: CA %s is not learned", name, CM_LEARNED_ISSUERS_MAX, id);
		return;
	}
	if((t = cm_tenant_clone(cur)) == NULL || cm_tenant_append_ca(t, cert, "learned from a device's chain", &e, &err) != CM_OK){
		cm_tenant_free(&t);
		return;
	}
	e->issuer_only = true;
	if(cm_registry_put_tenant(st, "certmgr", "learnIssuer", t, id, &err) != CM_OK){
		cm_log(CM_LOG_WARNING, "cannot learn CA %s for tenant %s: %s", id, name, err.msg);
	}
}

void cm_revocation_tick(struct cm_state *st)
{
	struct cm_learn_item *q;

	while((q = st->learn_queue) != NULL){
		st->learn_queue = q->next;
		learn_issuer(st, q->tenant, q->cert);
		X509_free(q->cert);
		free(q);
	}
}

void cm_revocation_cleanup(struct cm_state *st)
{
	struct cm_learning *l, *tmp;

	HASH_ITER(hh, st->learning, l, tmp){
		HASH_DEL(st->learning, l);
		free(l);
	}
	while(st->learn_queue){
		struct cm_learn_item *q = st->learn_queue;
		st->learn_queue = q->next;
		X509_free(q->cert);
		free(q);
	}
}
