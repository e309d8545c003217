#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>
#ifdef __GLIBC__
#include <malloc.h>
#endif
#include <limits.h>
#include <string.h>

#include "fsutil.h"
#include "log.h"
#include "state.h"
#include "worker.h"
#include "store.h"

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
 * CRLs checked against candidate issuers
 * =================================================================== */

void cm_crl_check_issuers(struct cm_crl_check *res, const unsigned char *body, size_t len, size_t max_len, STACK_OF(X509) *cands,
		bool any_of, time_t now, const char *write_dir)
{
	char id[CM_ID_LEN + 1], path[PATH_MAX];

	memset(res, 0, sizeof(*res));
	if(sk_X509_num(cands) < 1){
		res->rc = cm_err_set(&res->err, CM_ERR_INVAL, "no CA to check the CRL against");
		return;
	}
	res->signer = (any_of || sk_X509_num(cands) > 1) && len <= max_len ? cm_crl_find_issuer(body, len, cands) : NULL;
	if(res->signer == NULL && any_of && len <= max_len){
		res->none_signed = true;
		res->rc = cm_err_set(&res->err, CM_ERR_INVAL, "the CRL is signed by none of the CAs it could be for (or is not a CRL)");
		return;
	}
	if(res->signer == NULL){
		res->signer = sk_X509_value(cands, 0);
	}
	res->rc = cm_crl_load(body, len, max_len, res->signer, now, &res->crl, &res->err);
	if(res->rc != CM_OK){
		res->signer = NULL;
		return;
	}
	if(write_dir == NULL){
		return;
	}
	/* The directory too: a new one's fsync would otherwise stall the
	 * broker thread. */
	if((res->rc = cm_fs_mkdir(write_dir, 0700, &res->err)) == CM_OK && (res->rc = cm_pki_cert_id(res->signer, id, &res->err)) == CM_OK){
		cm_store_crl_file_name(id, res->file, sizeof(res->file));
		if((res->rc = cm_fs_path(path, sizeof(path), &res->err, "%s/%s", write_dir, res->file)) == CM_OK){
			res->rc = cm_fs_write_atomic(path, res->crl->der, res->crl->der_len, 0600, &res->err);
		}
	}
	if(res->rc == CM_OK){
		cm_crl_drop_der(res->crl);
	}else{
		res->file[0] = '\0';
		res->signer = NULL;
		cm_crl_free(&res->crl);
	}
}

struct check_job {
	unsigned char *body;
	size_t len, max_len;
	bool base64;
	STACK_OF(X509) *cands;
	bool any_of;
	time_t now;
	double seconds; /* the work's own time */
	char *write_dir;
	cm_worker_check_fn done;
	void *ctx;
	struct cm_crl_check res;
};

static void check_job_free(struct check_job *j)
{
	free(j->body);
	free(j->write_dir);
	sk_X509_pop_free(j->cands, X509_free);
	cm_crl_free(&j->res.crl);
	free(j);
}

static void check_work(void *arg)
{
	struct check_job *j = arg;
	struct timespec t0, t1;

	clock_gettime(CLOCK_MONOTONIC, &t0);
	if(j->base64){
		size_t n;
		unsigned char *der = cm_pki_base64_decode((const char *)j->body, j->len, &n);
		if(der){
			free(j->body);
			j->body = der;
			j->len = n;
			j->base64 = false;
		}else{
			j->res.rc = cm_err_set(&j->res.err, CM_ERR_INVAL, "'crl' is neither PEM nor base64 DER");
		}
	}
	if(!j->base64){
		cm_crl_check_issuers(&j->res, j->body, j->len, j->max_len, j->cands, j->any_of, j->now, j->write_dir);
	}
	clock_gettime(CLOCK_MONOTONIC, &t1);
	j->seconds = (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9;
	free(j->body);
	j->body = NULL;
#ifdef __GLIBC__
	/* Parsing a large CRL takes hundreds of megabytes of small OpenSSL
	 * objects, all freed by now; give the pages back rather than keep
	 * them as the broker's resident size. */
	malloc_trim(0);
#endif
}

static void check_done(struct cm_state *st, void *arg, bool aborted)
{
	struct check_job *j = arg;

	if(!aborted){
		cm_log(CM_LOG_INFO, "a CRL of %zu bytes was checked on the worker thread in %.2f s: %s", j->len, j->seconds,
				j->res.rc == CM_OK ? "accepted" : j->res.err.msg);
	}
	j->done(st, j->ctx, &j->res, aborted);
	check_job_free(j);
}

enum cm_rc cm_worker_check_crl(struct cm_state *st, unsigned char *body, size_t len, bool base64, size_t max_len,
		STACK_OF(X509) *cands, bool any_of, const char *write_dir, cm_worker_check_fn done, void *ctx, struct cm_err *err)
{
	struct check_job *j = calloc(1, sizeof(*j));
	int i;

	if(j == NULL){
		free(body);
		return cm_err_set(err, CM_ERR_NOMEM, "out of memory");
	}
	j->body = body;
	j->len = len;
	j->base64 = base64;
	j->max_len = max_len;
	j->any_of = any_of;
	j->now = time(NULL);
	j->done = done;
	j->ctx = ctx;
	if((j->cands = sk_X509_new_null()) == NULL || (write_dir && (j->write_dir = strdup(write_dir)) == NULL)){
		check_job_free(j);
		return cm_err_set(err, CM_ERR_NOMEM, "out of memory");
	}
	for(i = 0; i < sk_X509_num(cands); i++){
		X509 *c = sk_X509_value(cands, i);
		if(!sk_X509_push(j->cands, c)){
			check_job_free(j);
			return cm_err_set(err, CM_ERR_NOMEM, "out of memory");
		}
		X509_up_ref(c);
	}
	if(cm_worker_submit(st, check_work, check_done, j, err) != CM_OK){
		check_job_free(j);
		return CM_ERR_NOMEM;
	}
	return CM_OK;
}
