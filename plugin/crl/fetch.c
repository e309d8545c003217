#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

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
	long redirects;       /* followed so far */
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

static bool host_chars_valid(const char *h, size_t n)
{
	size_t i;

	if(n == 0 || n > CM_FETCH_HOST_MAX){
		return false;
	}
	if(h[0] == '['){
		/* An IPv6 address, as a URL writes it. */
		for(i = 1; i + 1 < n && (isxdigit((unsigned char)h[i]) || h[i] == ':' || h[i] == '.'); i++){
		}
		return n > 2 && i == n - 1 && h[n - 1] == ']';
	}
	if(n > 2 && h[0] == '*' && h[1] == '.'){
		h += 2;
		n -= 2;
	}
	for(i = 0; i < n; i++){
		if(!isalnum((unsigned char)h[i]) && h[i] != '-' && h[i] != '.'){
			return false;
		}
	}
	return h[0] != '.' && h[n - 1] != '.';
}

enum cm_rc cm_fetch_parse_allowed_hosts(struct cm_fetch_options *o, const char *list, struct cm_err *err)
{
	const char *p = list;

	while(*p){
		const char *end;
		char **grown, *h;
		size_t n, i;

		p += strspn(p, " ,");
		if(*p == '\0'){
			break;
		}
		end = p + strcspn(p, " ,");
		n = (size_t)(end - p);
		if(!host_chars_valid(p, n)){
			return cm_err_set(err, CM_ERR_INVAL, "plugin_opt_crl_allowed_hosts: '%.*s' is not a host name, '*.' and a domain, or an address",
					(int)(n > 64 ? 64 : n), p);
		}
		grown = realloc(o->allowed_hosts, (o->allowed_count + 1) * sizeof(char *));
		if(grown == NULL || (h = strndup(p, n)) == NULL){
			if(grown){
				o->allowed_hosts = grown;
			}
			return cm_err_set(err, CM_ERR_NOMEM, "out of memory");
		}
		for(i = 0; i < n; i++){
			h[i] = (char)tolower((unsigned char)h[i]);
		}
		o->allowed_hosts = grown;
		o->allowed_hosts[o->allowed_count++] = h;
		p = end;
	}
	if(o->allowed_count == 0){
		/* Not "any host", which leaving the option out says. */
		return cm_err_set(err, CM_ERR_INVAL, "plugin_opt_crl_allowed_hosts names no host (leave the option out to allow any)");
	}
	return CM_OK;
}

void cm_fetch_options_clear(struct cm_fetch_options *o)
{
	for(size_t i = 0; i < o->allowed_count; i++){
		free(o->allowed_hosts[i]);
	}
	free(o->allowed_hosts);
	o->allowed_hosts = NULL;
	o->allowed_count = 0;
}

static bool host_matches(const char *pattern, const char *host)
{
	size_t hn = strlen(host), pn = strlen(pattern);

	if(pattern[0] == '*' && pattern[1] == '.'){
		/* One label or more before the suffix. */
		return hn > pn - 1 && !strcasecmp(host + hn - (pn - 1), pattern + 1);
	}
	return !strcasecmp(pattern, host);
}

enum cm_rc cm_fetch_host_allowed(const struct cm_fetch_options *o, const char *url, struct cm_err *err)
{
	CURLU *u;
	char *host = NULL;
	enum cm_rc rc = CM_OK;
	size_t i;

	if(o->allowed_count == 0){
		return CM_OK;
	}
	u = curl_url();
	if(u == NULL || curl_url_set(u, CURLUPART_URL, url, 0) != CURLUE_OK || curl_url_get(u, CURLUPART_HOST, &host, 0) != CURLUE_OK){
		rc = cm_err_set(err, CM_ERR_INVAL, "cannot read the host of the CRL URL");
	}
	for(i = 0; rc == CM_OK && i < o->allowed_count && !host_matches(o->allowed_hosts[i], host); i++){
	}
	if(rc == CM_OK && i == o->allowed_count){
		rc = cm_err_set(err, CM_ERR_INVAL, "the CRL host '%.64s' is not in plugin_opt_crl_allowed_hosts", host);
	}
	curl_free(host);
	curl_url_cleanup(u);
	return rc;
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
	if(cm_fetch_host_allowed(&fr->opts, url, err) != CM_OK){
		return CM_ERR_INVAL;
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
			/* Redirects are followed by follow_redirect, which checks
			 * each target as the first URL was. */
			|| curl_easy_setopt(e, CURLOPT_FOLLOWLOCATION, 0L) != CURLE_OK
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

/* After a transfer that succeeded: 0 when it is the answer, 1 when it was
 * a redirect now being followed, -1 when the redirect is refused (error
 * says why). */
static int follow_redirect(struct cm_fetcher *fr, struct cm_fetch *f, char *error, size_t len)
{
	char url[2048];
	char *loc = NULL;
	long code = 0;
	struct cm_err err;

	if(curl_easy_getinfo(f->easy, CURLINFO_RESPONSE_CODE, &code) != CURLE_OK || code < 300 || code > 399){
		return 0;
	}
	if(curl_easy_getinfo(f->easy, CURLINFO_REDIRECT_URL, &loc) != CURLE_OK || loc == NULL){
		snprintf(error, len, "the CRL server answered %ld with no usable Location", code);
		return -1;
	}
	if(++f->redirects > fr->opts.max_redirects){
		snprintf(error, len, "more than %ld redirects", fr->opts.max_redirects);
		return -1;
	}
	if(!cm_fetch_url_valid(loc)){
		snprintf(error, len, "redirected to %.200s, which is not an http or https URL", loc);
		return -1;
	}
	if(cm_fetch_host_allowed(&fr->opts, loc, &err) != CM_OK){
		snprintf(error, len, "redirect refused: %.200s", err.msg);
		return -1;
	}
	snprintf(url, sizeof(url), "%s", loc); /* loc is the handle's, reset below */
	curl_multi_remove_handle(fr->multi, f->easy);
	f->len = 0;
	f->too_big = false;
	if(curl_easy_setopt(f->easy, CURLOPT_URL, url) != CURLE_OK || curl_multi_add_handle(fr->multi, f->easy) != CURLM_OK){
		snprintf(error, len, "cannot follow the redirect to %.200s", url);
		curl_multi_add_handle(fr->multi, f->easy); /* finish removes it */
		return -1;
	}
	return 1;
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
			int followed = follow_redirect(fr, f, error, sizeof(error));
			if(followed > 0){
				continue;
			}
			if(followed < 0){
				f->done(st, f->ctx, CM_ERR_IO, &f->body, 0, error, false);
			}else{
				f->done(st, f->ctx, CM_OK, &f->body, f->len, NULL, false);
			}
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
