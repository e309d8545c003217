#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>
#ifdef __GLIBC__
#include <malloc.h>
#endif
#include <string.h>

#include "fsutil.h"
#include "state.h"
#include "worker.h"

struct job {
	cm_work_fn work;
	cm_work_done_fn done;
	void *arg;
	struct job *next;
};

struct cm_worker {
	pthread_t thread;
	pthread_mutex_t lock;
	pthread_cond_t wake;
	bool stop;
	struct job *queued, *done; /* FIFO heads */
};

static void push(struct job **head, struct job *j)
{
	j->next = NULL;
	while(*head){
		head = &(*head)->next;
	}
	*head = j;
}

static void *run(void *arg)
{
	struct cm_worker *w = arg;

	pthread_mutex_lock(&w->lock);
	while(!w->stop){
		struct job *j = w->queued;
		if(j == NULL){
			pthread_cond_wait(&w->wake, &w->lock);
			continue;
		}
		w->queued = j->next;
		pthread_mutex_unlock(&w->lock);
		j->work(j->arg);
		pthread_mutex_lock(&w->lock);
		push(&w->done, j);
	}
	pthread_mutex_unlock(&w->lock);
	return NULL;
}

enum cm_rc cm_worker_start(struct cm_state *st, struct cm_err *err)
{
	struct cm_worker *w = calloc(1, sizeof(*w));

	if(w == NULL){
		return cm_err_set(err, CM_ERR_NOMEM, "out of memory");
	}
	pthread_mutex_init(&w->lock, NULL);
	pthread_cond_init(&w->wake, NULL);
	if(pthread_create(&w->thread, NULL, run, w) != 0){
		pthread_mutex_destroy(&w->lock);
		pthread_cond_destroy(&w->wake);
		free(w);
		return cm_err_set(err, CM_ERR_IO, "cannot start the worker thread");
	}
	st->worker = w;
	return CM_OK;
}

enum cm_rc cm_worker_submit(struct cm_state *st, cm_work_fn work, cm_work_done_fn done, void *arg, struct cm_err *err)
{
	struct cm_worker *w = st->worker;
	struct job *j = calloc(1, sizeof(*j));

	if(j == NULL){
		return cm_err_set(err, CM_ERR_NOMEM, "out of memory");
	}
	j->work = work;
	j->done = done;
	j->arg = arg;
	pthread_mutex_lock(&w->lock);
	push(&w->queued, j);
	pthread_cond_signal(&w->wake);
	pthread_mutex_unlock(&w->lock);
	return CM_OK;
}

void cm_worker_drain(struct cm_state *st)
{
	struct cm_worker *w = st->worker;
	struct job *list, *j;

	if(w == NULL){
		return;
	}
	pthread_mutex_lock(&w->lock);
	list = w->done;
	w->done = NULL;
	pthread_mutex_unlock(&w->lock);
	while((j = list) != NULL){
		list = j->next;
		j->done(st, j->arg, false);
		free(j);
	}
}

void cm_worker_stop(struct cm_state *st)
{
	struct cm_worker *w = st->worker;
	struct job *j;
	int pass;

	if(w == NULL){
		return;
	}
	pthread_mutex_lock(&w->lock);
	w->stop = true;
	pthread_cond_broadcast(&w->wake);
	pthread_mutex_unlock(&w->lock);
	pthread_join(w->thread, NULL);
	for(pass = 0; pass < 2; pass++){
		struct job **head = pass ? &w->done : &w->queued;
		while((j = *head) != NULL){
			*head = j->next;
			j->done(st, j->arg, true);
			free(j);
		}
	}
	pthread_mutex_destroy(&w->lock);
	pthread_cond_destroy(&w->wake);
	free(w);
	st->worker = NULL;
}

/* ===================================================================
 * CRL loading
 * =================================================================== */

struct crl_job {
	unsigned char *body;
	size_t len, max_len;
	X509 *issuer;
	time_t now;
	char *write_path;
	cm_worker_done_fn done;
	void *ctx;
	struct cm_crl *crl;
	enum cm_rc rc;
	struct cm_err err;
};

static void crl_work(void *arg)
{
	struct crl_job *j = arg;

	j->rc = cm_crl_load(j->body, j->len, j->max_len, j->issuer, j->now, &j->crl, &j->err);
	free(j->body);
	j->body = NULL;
	if(j->rc == CM_OK && j->write_path){
		j->rc = cm_fs_write_atomic(j->write_path, j->crl->der, j->crl->der_len, 0600, &j->err);
		if(j->rc == CM_OK){
			cm_crl_drop_der(j->crl);
		}else{
			cm_crl_free(&j->crl);
		}
	}
#ifdef __GLIBC__
	/* Parsing a large CRL takes hundreds of megabytes of small OpenSSL
	 * objects, all freed by now; give the pages back rather than keep
	 * them as the broker's resident size. */
	malloc_trim(0);
#endif
}

static void crl_done(struct cm_state *st, void *arg, bool aborted)
{
	struct crl_job *j = arg;

	/* Only the swap happens here, on the broker thread. */
	j->done(st, j->ctx, aborted ? NULL : j->crl, aborted ? CM_ERR_IO : j->rc, j->rc == CM_OK ? NULL : j->err.msg, aborted);
	if(aborted){
		cm_crl_free(&j->crl);
	}
	free(j->body);
	free(j->write_path);
	X509_free(j->issuer);
	free(j);
}

enum cm_rc cm_worker_load_crl(struct cm_state *st, unsigned char *body, size_t len, size_t max_len, X509 *issuer,
		time_t now, const char *write_path, cm_worker_done_fn done, void *ctx, struct cm_err *err)
{
	struct crl_job *j = calloc(1, sizeof(*j));

	if(j == NULL || (write_path && (j->write_path = strdup(write_path)) == NULL)){
		free(j);
		free(body);
		return cm_err_set(err, CM_ERR_NOMEM, "out of memory");
	}
	j->body = body;
	j->len = len;
	j->max_len = max_len;
	X509_up_ref(issuer);
	j->issuer = issuer;
	j->now = now;
	j->done = done;
	j->ctx = ctx;
	if(cm_worker_submit(st, crl_work, crl_done, j, err) != CM_OK){
		/* The caller keeps ctx and reports the error itself. */
		free(j->body);
		free(j->write_path);
		X509_free(j->issuer);
		free(j);
		return CM_ERR_NOMEM;
	}
	return CM_OK;
}
