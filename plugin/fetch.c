#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <curl/curl.h>

#include "fetch.h"
#include "state.h"

struct cm_fetch {
	CURL *easy;
	cm_fetch_done_fn done;
	void *ctx;
	unsigned char *body;
	size_t len, cap, max;
	bool too_big;
	char errbuf[CURL_ERROR_SIZE];
	struct cm_fetch *next;
};

struct cm_fetcher {
	CURLM *multi;
	struct cm_fetch_options opts;
	struct cm_fetch *list;
};

bool cm_fetch_url_valid(const char *url)
{
	size_t n = url ? strlen(url) : 0;

	return n > 8 && n < 2048 && (!strncmp(url, "http://", 7) || !strncmp(url, "https://", 8)) && !strpbrk(url, " \r\n\t");
}

static size_t on_data(char *ptr, size_t size, size_t nmemb, void *userdata)
{
	struct cm_fetch *f = userdata;
	size_t n = size * nmemb;

	if(f->len + n > f->max){
		f->too_big = true;
		return 0; /* aborts the transfer */
	}
	if(f->len + n > f->cap){
		size_t cap = f->cap ? f->cap : 65536;
		unsigned char *grown;
		while(cap < f->len + n){
			cap *= 2;
		}
		grown = realloc(f->body, cap);
		if(grown == NULL){
			return 0;
		}
		f->body = grown;
		f->cap = cap;
	}
	memcpy(f->body + f->len, ptr, n);
	f->len += n;
	return n;
}

enum cm_rc cm_fetch_init(struct cm_state *st, const struct cm_fetch_options *opts, struct cm_err *err)
{
	struct cm_fetcher *fr;

	if(curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK){
		return cm_err_set(err, CM_ERR_CRYPTO, "cannot initialise libcurl");
	}
	fr = calloc(1, sizeof(*fr));
	if(fr == NULL || (fr->multi = curl_multi_init()) == NULL){
		free(fr);
		curl_global_cleanup();
		return cm_err_set(err, CM_ERR_NOMEM, "cannot initialise libcurl");
	}
	fr->opts = *opts;
	st->fetcher = fr;
	return CM_OK;
}

enum cm_rc cm_fetch_start(struct cm_state *st, const char *url, cm_fetch_done_fn done, void *ctx, struct cm_err *err)
{
	struct cm_fetcher *fr = st->fetcher;
	struct cm_fetch *f;
	CURL *e;

	if(!cm_fetch_url_valid(url)){
		return cm_err_set(err, CM_ERR_INVAL, "the CRL URL must be http:// or https://");
	}
	f = calloc(1, sizeof(*f));
	e = curl_easy_init();
	if(f == NULL || e == NULL){
		free(f);
		curl_easy_cleanup(e);
		return cm_err_set(err, CM_ERR_NOMEM, "out of memory");
	}
	f->easy = e;
	f->done = done;
	f->ctx = ctx;
	f->max = fr->opts.max_size;
	if(curl_easy_setopt(e, CURLOPT_URL, url) != CURLE_OK
			|| curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "http,https") != CURLE_OK
			|| curl_easy_setopt(e, CURLOPT_REDIR_PROTOCOLS_STR, "http,https") != CURLE_OK
			|| curl_easy_setopt(e, CURLOPT_FOLLOWLOCATION, 1L) != CURLE_OK
			|| curl_easy_setopt(e, CURLOPT_MAXREDIRS, fr->opts.max_redirects) != CURLE_OK
			|| curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT, fr->opts.connect_timeout) != CURLE_OK
			|| curl_easy_setopt(e, CURLOPT_TIMEOUT, fr->opts.timeout) != CURLE_OK
			|| curl_easy_setopt(e, CURLOPT_MAXFILESIZE_LARGE, (curl_off_t)fr->opts.max_size) != CURLE_OK
			/* no signals on the broker's thread; the threaded resolver */
			|| curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L) != CURLE_OK
			|| curl_easy_setopt(e, CURLOPT_FAILONERROR, 1L) != CURLE_OK
			|| curl_easy_setopt(e, CURLOPT_SSL_VERIFYPEER, 1L) != CURLE_OK
			|| curl_easy_setopt(e, CURLOPT_SSL_VERIFYHOST, 2L) != CURLE_OK
			|| curl_easy_setopt(e, CURLOPT_USERAGENT, "certmgr") != CURLE_OK
			|| curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, on_data) != CURLE_OK
			|| curl_easy_setopt(e, CURLOPT_WRITEDATA, f) != CURLE_OK
			|| curl_easy_setopt(e, CURLOPT_ERRORBUFFER, f->errbuf) != CURLE_OK
			|| curl_easy_setopt(e, CURLOPT_PRIVATE, f) != CURLE_OK
			|| curl_multi_add_handle(fr->multi, e) != CURLM_OK){
		curl_easy_cleanup(e);
		free(f);
		return cm_err_set(err, CM_ERR_INVAL, "cannot set up the download of %s", url);
	}
	f->next = fr->list;
	fr->list = f;
	return CM_OK;
}

static void finish(struct cm_fetcher *fr, struct cm_fetch *f)
{
	struct cm_fetch **pp;

	for(pp = &fr->list; *pp; pp = &(*pp)->next){
		if(*pp == f){
			*pp = f->next;
			break;
		}
	}
	curl_multi_remove_handle(fr->multi, f->easy);
	curl_easy_cleanup(f->easy);
	free(f->body);
	free(f);
}

void cm_fetch_step(struct cm_state *st)
{
	struct cm_fetcher *fr = st->fetcher;
	CURLMsg *msg;
	int running = 0, left = 0;

	if(fr == NULL || fr->list == NULL){
		return;
	}
	curl_multi_perform(fr->multi, &running);
	while((msg = curl_multi_info_read(fr->multi, &left)) != NULL){
		struct cm_fetch *f = NULL;
		char error[CURL_ERROR_SIZE + 64];

		if(msg->msg != CURLMSG_DONE){
			continue;
		}
		curl_easy_getinfo(msg->easy_handle, CURLINFO_PRIVATE, (char **)&f);
		if(msg->data.result == CURLE_OK){
			f->done(st, f->ctx, CM_OK, &f->body, f->len, NULL, false);
		}else{
			if(f->too_big || msg->data.result == CURLE_FILESIZE_EXCEEDED){
				snprintf(error, sizeof(error), "the CRL is larger than the limit of %zu bytes", f->max);
			}else{
				snprintf(error, sizeof(error), "%s", f->errbuf[0] ? f->errbuf : curl_easy_strerror(msg->data.result));
			}
			f->done(st, f->ctx, CM_ERR_IO, &f->body, 0, error, false);
		}
		finish(fr, f);
	}
}

void cm_fetch_cleanup(struct cm_state *st)
{
	struct cm_fetcher *fr = st->fetcher;

	if(fr == NULL){
		return;
	}
	while(fr->list){
		struct cm_fetch *f = fr->list;
		f->done(st, f->ctx, CM_ERR_IO, &f->body, 0, "certmgr is shutting down", true);
		finish(fr, f);
	}
	curl_multi_cleanup(fr->multi);
	free(fr);
	st->fetcher = NULL;
	curl_global_cleanup();
}
