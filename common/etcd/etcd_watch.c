/* etcd's watch stream through the JSON gateway: one JSON object a line. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "etcd.h"
#include "etcd-int.h"
#include "json.h"

/* One message of the stream (a 512 KiB chunk is the largest value). */
#define MESSAGE_MAX (8u * 1024 * 1024)

struct stream {
	struct cm_text buf;
	cm_etcd_watch_fn fn;
	cm_etcd_stop_fn stop;
	void *ctx;
	bool ended;   /* fn or stop said to end */
	bool failed;  /* a message too large, or not JSON */
	char why[128];
};

/* Hands every complete line of the buffer to fn, keeps the rest. */
static void deliver_lines(struct stream *s)
{
	char *nl;
	size_t used = 0;

	while(!s->ended && (nl = memchr(s->buf.s + used, '\n', s->buf.len - used)) != NULL){
		size_t n = (size_t)(nl - (s->buf.s + used));
		cJSON *j = n ? cJSON_ParseWithLength(s->buf.s + used, n) : NULL;
		const cJSON *result = cJSON_GetObjectItemCaseSensitive(j, "result");

		used += n + 1;
		if(n && !cJSON_IsObject(result)){
			const cJSON *e = cJSON_GetObjectItemCaseSensitive(j, "error");
			const cJSON *m = cJSON_GetObjectItemCaseSensitive(e, "message");
			snprintf(s->why, sizeof(s->why), "%s", cJSON_IsString(m) ? m->valuestring : "a message that is not a watch result");
			s->failed = s->ended = true;
		}else if(n && !s->fn(s->ctx, result)){
			s->ended = true;
		}
		cJSON_Delete(j);
	}
	memmove(s->buf.s, s->buf.s + used, s->buf.len - used);
	s->buf.len -= used;
	s->buf.s[s->buf.len] = '\0';
}

static size_t on_data(char *data, size_t size, size_t nmemb, void *userdata)
{
	struct stream *s = userdata;
	size_t n = size * nmemb;

	if(s->buf.len + n > MESSAGE_MAX || !cm_text_append(&s->buf, data, n)){
		snprintf(s->why, sizeof(s->why), "a watch message over %u bytes", MESSAGE_MAX);
		s->failed = s->ended = true;
		return 0;
	}
	deliver_lines(s);
	return s->ended ? 0 : n;
}

static int on_progress(void *userdata, curl_off_t a, curl_off_t b, curl_off_t c, curl_off_t d)
{
	struct stream *s = userdata;

	(void)a;
	(void)b;
	(void)c;
	(void)d;
	if(s->stop(s->ctx)){
		s->ended = true;
	}
	return s->ended ? 1 : 0;
}

static char *watch_body(const char *key, const char *end, int64_t start)
{
	cJSON *body = cJSON_CreateObject(), *req = cJSON_AddObjectToObject(body, "create_request");
	char *kb = cm_b64_encode(key, strlen(key)), *eb = end ? cm_b64_encode(end, strlen(end)) : NULL, *text = NULL;
	char rev[24];

	snprintf(rev, sizeof(rev), "%lld", (long long)start);
	if(req && kb && (end == NULL || eb) && cJSON_AddStringToObject(req, "key", kb) && (end == NULL || cJSON_AddStringToObject(req, "range_end", eb))
			&& (start == 0 || cJSON_AddStringToObject(req, "start_revision", rev))){
		text = cJSON_PrintUnformatted(body);
	}
	cJSON_Delete(body);
	free(kb);
	free(eb);
	return text;
}

enum cm_rc cm_etcd_watch(struct cm_etcd *e, const char *key, const char *end, int64_t start, cm_etcd_watch_fn fn,
		cm_etcd_stop_fn stop, void *ctx, struct cm_err *err)
{
	struct stream s = {{0}, fn, stop, ctx, false, false, ""};
	char url[1024];
	char *body = watch_body(key, end, start);
	struct curl_slist *headers = curl_slist_append(NULL, "Content-Type: application/json");
	CURL *c = curl_easy_init();
	CURLcode cc;
	enum cm_rc rc = CM_OK;

	if(body == NULL || c == NULL || headers == NULL){
		rc = cm_err_set(err, CM_ERR_NOMEM, "out of memory");
		goto out;
	}
	snprintf(url, sizeof(url), "%s/v3/watch", e->ep[e->cur]);
	etcd_setup(e, c, url, body, headers);
	curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_data);
	curl_easy_setopt(c, CURLOPT_WRITEDATA, &s);
	curl_easy_setopt(c, CURLOPT_NOPROGRESS, 0L);
	curl_easy_setopt(c, CURLOPT_XFERINFOFUNCTION, on_progress);
	curl_easy_setopt(c, CURLOPT_XFERINFODATA, &s);
	cc = curl_easy_perform(c);
	if(s.failed){
		rc = cm_err_set(err, CM_ERR_IO, "etcd %s: watch ended: %s", e->ep[e->cur], s.why);
	}else if(!s.ended){
		rc = cm_err_set(err, CM_ERR_IO, "etcd %s: watch ended: %s", e->ep[e->cur], cc == CURLE_OK ? "the member closed it" : curl_easy_strerror(cc));
	}
	if(rc == CM_ERR_IO){
		e->cur = (e->cur + 1) % e->n;
	}
out:
	curl_slist_free_all(headers);
	if(c){
		curl_easy_cleanup(c);
	}
	free(body);
	cm_text_free(&s.buf);
	return rc;
}
