/* Certificates of a bulk request parsed ahead (preparse.h). The texts
 * are the request's and never change while the thread runs; everything
 * else the two threads share is under the lock. At most
 * CM_PREPARSE_AHEAD results wait beyond the furthest one taken; the
 * thread parses none the commands went past, and the results of those
 * are freed when they pass: a request of a hundred thousand
 * certificates holds a few hundred kilobytes of them, never more. */
#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/err.h>

#include "fields.h"
#include "pki.h"
#include "preparse.h"

enum item_state {
	ITEM_PENDING, /* not reached by the thread, not asked for */
	ITEM_BUSY,    /* the thread parses it */
	ITEM_DONE,    /* parsed, its result waits for its command */
	ITEM_TAKEN,   /* handed out, or parsed by its command */
};

struct item {
	const char *pem;        /* borrowed from the request */
	enum item_state state;
	enum cm_rc rc;
	char *msg;              /* the reason when rc is not CM_OK; NULL: out of memory */
	STACK_OF(X509) *certs;  /* owned until taken */
};

struct cm_preparse {
	pthread_mutex_t lock;
	pthread_cond_t changed; /* an item done, or one taken */
	pthread_t thread;
	bool stop;
	size_t next;            /* the thread's next item */
	size_t reached;         /* one past the furthest item taken */
	size_t taken_ahead;     /* results the commands took from the thread */
	size_t hint;            /* where the caller's next item likely is: the caller's alone */
	size_t n;
	struct item items[];
};

/* The text a command hands to cm_control_parse_certs, or NULL. */
static const char *certificate_of(const cJSON *cmd)
{
	const char *name = cm_arg_string(cmd, "command", "");

	return strcmp(name, "addCA") && strcmp(name, "trustCertificate") ? NULL : cm_arg_string(cmd, "certificate", NULL);
}

static void *parse_ahead(void *arg)
{
	struct cm_preparse *p = arg;

	pthread_mutex_lock(&p->lock);
	while(!p->stop && p->next < p->n){
		struct item *it = &p->items[p->next];
		STACK_OF(X509) *certs = NULL;
		struct cm_err err = {{0}};
		enum cm_rc rc;

		if(p->next < p->reached){
			/* The commands went past these without asking (they failed
			 * before their parse): none will. */
			p->next = p->reached;
			continue;
		}
		if(p->next >= p->reached + CM_PREPARSE_AHEAD){
			pthread_cond_wait(&p->changed, &p->lock);
			continue;
		}
		p->next++;
		if(it->state != ITEM_PENDING){
			continue; /* its command parsed it */
		}
		it->state = ITEM_BUSY;
		pthread_mutex_unlock(&p->lock);
		rc = cm_pki_parse_certs(it->pem, strlen(it->pem), &certs, &err);
		pthread_mutex_lock(&p->lock);
		if((size_t)(it - p->items) < p->reached){
			/* Passed while it was parsed: nobody will ask. */
			sk_X509_pop_free(certs, X509_free);
			it->state = ITEM_TAKEN;
		}else{
			it->rc = rc;
			it->certs = certs;
			it->msg = rc != CM_OK ? strdup(err.msg) : NULL;
			it->state = ITEM_DONE;
		}
		pthread_cond_broadcast(&p->changed);
	}
	pthread_mutex_unlock(&p->lock);
	ERR_clear_error();
	OPENSSL_thread_stop();
	return NULL;
}

struct cm_preparse *cm_preparse_start(const cJSON *commands)
{
	struct cm_preparse *p;
	const cJSON *cmd;
	size_t n = 0;
	bool mutex = false, cond = false;

	cJSON_ArrayForEach(cmd, commands){
		n += certificate_of(cmd) != NULL;
	}
	if(n < CM_PREPARSE_MIN || (p = calloc(1, sizeof(*p) + n * sizeof(p->items[0]))) == NULL){
		return NULL;
	}
	cJSON_ArrayForEach(cmd, commands){
		const char *pem = certificate_of(cmd);
		if(pem){
			p->items[p->n++].pem = pem;
		}
	}
	if(!(mutex = pthread_mutex_init(&p->lock, NULL) == 0) || !(cond = pthread_cond_init(&p->changed, NULL) == 0)
			|| pthread_create(&p->thread, NULL, parse_ahead, p) != 0){
		goto out;
	}
	return p;
out:
	if(cond){
		pthread_cond_destroy(&p->changed);
	}
	if(mutex){
		pthread_mutex_destroy(&p->lock);
	}
	free(p);
	return NULL;
}

/* pem's item, found by its address (the commands ask in order, so the
 * one after the last is tried first); NULL when p does not hold it. The
 * texts do not change: read without the lock. */
static struct item *find(struct cm_preparse *p, const char *pem)
{
	for(size_t k = 0; k < p->n; k++){
		size_t i = (p->hint + k) % p->n;
		if(p->items[i].pem == pem){
			p->hint = i + 1;
			return &p->items[i];
		}
	}
	return NULL;
}

/* The commands went on to item i: results of the ones before it that
 * they passed without asking (they failed before their parse) are
 * freed, so that no more than CM_PREPARSE_AHEAD are ever held. Under
 * the lock. */
static void reach(struct cm_preparse *p, size_t i)
{
	if(i + 1 <= p->reached){
		return;
	}
	for(size_t k = p->reached; k < i; k++){
		struct item *passed = &p->items[k];
		if(passed->state == ITEM_DONE){
			sk_X509_pop_free(passed->certs, X509_free);
			passed->certs = NULL;
			free(passed->msg);
			passed->msg = NULL;
			passed->state = ITEM_TAKEN;
		}
	}
	p->reached = i + 1;
	pthread_cond_broadcast(&p->changed);
}

enum cm_rc cm_preparse_take(struct cm_preparse *p, const char *pem, STACK_OF(X509) **out, struct cm_err *err)
{
	struct item *it = p ? find(p, pem) : NULL;
	enum cm_rc rc;

	*out = NULL;
	if(it == NULL){
		return cm_pki_parse_certs(pem, strlen(pem), out, err);
	}
	pthread_mutex_lock(&p->lock);
	while(it->state == ITEM_BUSY){
		pthread_cond_wait(&p->changed, &p->lock);
	}
	reach(p, (size_t)(it - p->items));
	if(it->state != ITEM_DONE || (it->rc != CM_OK && it->msg == NULL)){
		/* Not reached yet (the thread now passes it by), taken before,
		 * or its reason lost for want of memory (no certificates then):
		 * parsed here. */
		it->state = ITEM_TAKEN;
		pthread_mutex_unlock(&p->lock);
		return cm_pki_parse_certs(pem, strlen(pem), out, err);
	}
	it->state = ITEM_TAKEN;
	p->taken_ahead++;
	*out = it->certs;
	it->certs = NULL;
	rc = it->rc == CM_OK ? CM_OK : cm_err_set(err, it->rc, "%s", it->msg);
	free(it->msg);
	it->msg = NULL;
	pthread_mutex_unlock(&p->lock);
	/* As after a parse here: nothing left in this thread's queue. */
	ERR_clear_error();
	return rc;
}

void cm_preparse_stats(struct cm_preparse *p, struct cm_preparse_stats *out)
{
	memset(out, 0, sizeof(*out));
	if(p == NULL){
		return;
	}
	out->count = p->n;
	pthread_mutex_lock(&p->lock);
	out->taken_ahead = p->taken_ahead;
	for(size_t i = 0; i < p->n; i++){
		out->held += p->items[i].state == ITEM_DONE;
	}
	pthread_mutex_unlock(&p->lock);
}

void cm_preparse_free(struct cm_preparse **pp)
{
	struct cm_preparse *p = pp ? *pp : NULL;

	if(p == NULL){
		return;
	}
	pthread_mutex_lock(&p->lock);
	p->stop = true;
	pthread_cond_broadcast(&p->changed);
	pthread_mutex_unlock(&p->lock);
	pthread_join(p->thread, NULL);
	for(size_t i = 0; i < p->n; i++){
		sk_X509_pop_free(p->items[i].certs, X509_free);
		free(p->items[i].msg);
	}
	pthread_cond_destroy(&p->changed);
	pthread_mutex_destroy(&p->lock);
	free(p);
	*pp = NULL;
}
