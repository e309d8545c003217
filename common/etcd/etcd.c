/* etcd v3 through its JSON gateway, with libcurl. */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <curl/curl.h>
#include <openssl/evp.h>

#include "etcd.h"
#include "etcd-int.h"
#include "json.h"

/* A gateway answer (or a watch's stream) larger than this is refused. */
#define ANSWER_MAX (256u * 1024 * 1024)


char *cm_b64_encode(const void *data, size_t len)
{
	size_t out_len = 4 * ((len + 2) / 3) + 1;
	char *out;

	if(len > INT_MAX / 2){
		return NULL;
	}
	out = malloc(out_len);
	if(out){
		(void)EVP_EncodeBlock((unsigned char *)out, data, (int)len);
	}
	return out;
}

bool cm_b64_decode(const char *text, size_t tlen, unsigned char **out, size_t *len)
{
	unsigned char *buf;
	int n;
	size_t pad = 0;

	*out = NULL;
	*len = 0;
	if(tlen % 4 != 0 || tlen > INT_MAX){
		return false;
	}
	buf = malloc(tlen / 4 * 3 + 1);
	if(buf == NULL){
		return false;
	}
	n = tlen ? EVP_DecodeBlock(buf, (const unsigned char *)text, (int)tlen) : 0;
	if(n < 0){
		free(buf);
		return false;
	}
	/* EVP_DecodeBlock counts the padding as zero bytes. */
	while(pad < 2 && tlen > pad && text[tlen - 1 - pad] == '='){
		pad++;
	}
	*len = (size_t)n - pad;
	buf[*len] = '\0';
	*out = buf;
	return true;
}

static void opts_free(struct cm_etcd *e)
{
	for(int i = 0; i < e->n; i++){
		free(e->ep[i]);
	}
	free(e->cafile);
	free(e->certfile);
	free(e->keyfile);
}

void cm_etcd_free(struct cm_etcd **pe)
{
	if(pe == NULL || *pe == NULL){
		return;
	}
	opts_free(*pe);
	if((*pe)->curl){
		curl_easy_cleanup((*pe)->curl);
	}
	free(*pe);
	*pe = NULL;
}

static enum cm_rc add_endpoint(struct cm_etcd *e, const char *p, size_t n, struct cm_err *err)
{
	if(e->n == CM_ETCD_MAX_ENDPOINTS){
		return cm_err_set(err, CM_ERR_INVAL, "more than %d etcd endpoints", CM_ETCD_MAX_ENDPOINTS);
	}
	if(!(n > 7 && !strncmp(p, "http://", 7)) && !(n > 8 && !strncmp(p, "https://", 8))){
		return cm_err_set(err, CM_ERR_INVAL, "etcd endpoint '%.*s' is not an http:// or https:// URL", (int)(n > 200 ? 200 : n), p);
	}
	while(n > 0 && p[n - 1] == '/'){
		n--;
	}
	e->ep[e->n] = strndup(p, n);
	if(e->ep[e->n] == NULL){
		return cm_err_set(err, CM_ERR_NOMEM, "out of memory");
	}
	e->n++;
	return CM_OK;
}

static char *dup_opt(const char *s, bool *ok)
{
	char *d = s ? strdup(s) : NULL;

	if(s && d == NULL){
		*ok = false;
	}
	return d;
}

enum cm_rc cm_etcd_new(const struct cm_etcd_opts *o, struct cm_etcd **out, struct cm_err *err)
{
	struct cm_etcd *e = calloc(1, sizeof(*e));
	const char *p = o->endpoints ? o->endpoints : "";
	bool ok = true;

	*out = NULL;
	if(e == NULL){
		return cm_err_set(err, CM_ERR_NOMEM, "out of memory");
	}
	while(*p){
		size_t n = strcspn(p, ", ");
		if(n && add_endpoint(e, p, n, err) != CM_OK){
			cm_etcd_free(&e);
			return CM_ERR_INVAL;
		}
		p += n;
		p += strspn(p, ", ");
	}
	if(e->n == 0){
		cm_etcd_free(&e);
		return cm_err_set(err, CM_ERR_INVAL, "no etcd endpoint given");
	}
	e->cafile = dup_opt(o->cafile, &ok);
	e->certfile = dup_opt(o->certfile, &ok);
	e->keyfile = dup_opt(o->keyfile, &ok);
	e->timeout_ms = o->timeout_ms > 0 ? o->timeout_ms : 3000;
	e->curl = curl_easy_init();
	if(!ok || e->curl == NULL){
		cm_etcd_free(&e);
		return cm_err_set(err, CM_ERR_NOMEM, "out of memory");
	}
	*out = e;
	return CM_OK;
}

const char *cm_etcd_endpoint(const struct cm_etcd *e)
{
	return e->ep[e->cur];
}

int cm_etcd_endpoint_count(const struct cm_etcd *e)
{
	return e->n;
}

struct answer {
	struct cm_text text;
	bool too_large;
};

static size_t collect(char *data, size_t size, size_t nmemb, void *userdata)
{
	struct answer *a = userdata;
	size_t n = size * nmemb;

	if(a->text.len + n > ANSWER_MAX || !cm_text_append(&a->text, data, n)){
		a->too_large = true;
		return 0;
	}
	return n;
}

void etcd_setup(const struct cm_etcd *e, CURL *c, const char *url, const char *body, struct curl_slist *headers)
{
	curl_easy_setopt(c, CURLOPT_URL, url);
	curl_easy_setopt(c, CURLOPT_POST, 1L);
	curl_easy_setopt(c, CURLOPT_POSTFIELDS, body);
	curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE, (long)strlen(body));
	curl_easy_setopt(c, CURLOPT_HTTPHEADER, headers);
	curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT_MS, e->timeout_ms);
	curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https");
	curl_easy_setopt(c, CURLOPT_TCP_KEEPALIVE, 1L);
	if(e->cafile){
		curl_easy_setopt(c, CURLOPT_CAINFO, e->cafile);
	}
	if(e->certfile){
		curl_easy_setopt(c, CURLOPT_SSLCERT, e->certfile);
	}
	if(e->keyfile){
		curl_easy_setopt(c, CURLOPT_SSLKEY, e->keyfile);
	}
}

/* The gateway's error text of a failed answer, or NULL. */
static const char *gateway_error(const cJSON *j)
{
	const cJSON *m = cJSON_GetObjectItemCaseSensitive(j, "error");

	if(cJSON_IsObject(m)){
		m = cJSON_GetObjectItemCaseSensitive(m, "message");
	}
	if(!cJSON_IsString(m)){
		m = cJSON_GetObjectItemCaseSensitive(j, "message");
	}
	return cJSON_IsString(m) ? m->valuestring : NULL;
}

/* A member that cannot answer for the cluster: try another. */
static bool member_trouble(const char *msg)
{
	return msg && (strstr(msg, "no leader") || strstr(msg, "timed out") || strstr(msg, "not capable") || strstr(msg, "unavailable"));
}

/* One POST to one endpoint. CM_ERR_IO: try the next member. */
static enum cm_rc post_one(struct cm_etcd *e, const char *path, const char *body, cJSON **resp, struct cm_err *err)
{
	char url[1024];
	struct answer a = {{0}};
	struct curl_slist *headers = curl_slist_append(NULL, "Content-Type: application/json");
	long status = 0;
	CURLcode cc;
	const char *msg;

	snprintf(url, sizeof(url), "%s%s", e->ep[e->cur], path);
	curl_easy_reset(e->curl);
	etcd_setup(e, e->curl, url, body, headers);
	curl_easy_setopt(e->curl, CURLOPT_TIMEOUT_MS, e->timeout_ms);
	curl_easy_setopt(e->curl, CURLOPT_WRITEFUNCTION, collect);
	curl_easy_setopt(e->curl, CURLOPT_WRITEDATA, &a);
	cc = curl_easy_perform(e->curl);
	curl_slist_free_all(headers);
	curl_easy_getinfo(e->curl, CURLINFO_RESPONSE_CODE, &status);
	if(cc != CURLE_OK){
		cm_text_free(&a.text);
		if(a.too_large){
			return cm_err_set(err, CM_ERR_INVAL, "etcd %s: the answer to %s is over %u bytes", e->ep[e->cur], path, ANSWER_MAX);
		}
		return cm_err_set(err, CM_ERR_IO, "etcd %s unreachable: %s", e->ep[e->cur], curl_easy_strerror(cc));
	}
	*resp = a.text.s ? cJSON_ParseWithLength(a.text.s, a.text.len) : NULL;
	cm_text_free(&a.text);
	if(*resp == NULL){
		return cm_err_set(err, status == 200 ? CM_ERR_INVAL : CM_ERR_IO, "etcd %s: HTTP %ld, not JSON", e->ep[e->cur], status);
	}
	msg = gateway_error(*resp);
	if(status != 200 || msg){
		enum cm_rc rc = member_trouble(msg) || status >= 500 ? CM_ERR_IO : CM_ERR_INVAL;
		cm_err_set(err, rc, "etcd %s: %s", e->ep[e->cur], msg ? msg : "error");
		if(rc == CM_ERR_INVAL && status >= 500){
			rc = CM_ERR_IO;
		}
		cJSON_Delete(*resp);
		*resp = NULL;
		return rc;
	}
	return CM_OK;
}

/* POSTs body (taken) to path, on each member in turn until one answers. */
static enum cm_rc post(struct cm_etcd *e, const char *path, cJSON *body, cJSON **resp, struct cm_err *err)
{
	char *text = body ? cJSON_PrintUnformatted(body) : NULL;
	enum cm_rc rc = CM_ERR_IO;

	*resp = NULL;
	cJSON_Delete(body);
	if(text == NULL){
		return cm_err_set(err, CM_ERR_NOMEM, "out of memory");
	}
	if(strlen(text) > CM_ETCD_MAX_REQUEST * 2){
		free(text);
		return cm_err_set(err, CM_ERR_INVAL, "an etcd request over %d bytes", CM_ETCD_MAX_REQUEST * 2);
	}
	for(int i = 0; i < e->n && rc == CM_ERR_IO; i++){
		rc = post_one(e, path, text, resp, err);
		if(rc == CM_ERR_IO){
			e->cur = (e->cur + 1) % e->n;
		}
	}
	free(text);
	return rc;
}

int64_t cm_etcd_number(const cJSON *obj, const char *name)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, name);

	if(cJSON_IsString(v)){
		return strtoll(v->valuestring, NULL, 10);
	}
	if(cJSON_IsNumber(v)){
		return (int64_t)v->valuedouble;
	}
	return 0;
}

static bool add_b64(cJSON *obj, const char *name, const void *data, size_t len)
{
	char *b = cm_b64_encode(data, len);
	bool ok = b && cJSON_AddStringToObject(obj, name, b);

	free(b);
	return ok;
}

static bool add_number(cJSON *obj, const char *name, int64_t v)
{
	char buf[24];

	snprintf(buf, sizeof(buf), "%lld", (long long)v);
	return cJSON_AddStringToObject(obj, name, buf) != NULL;
}

static int64_t header_revision(const cJSON *resp)
{
	return cm_etcd_number(cJSON_GetObjectItemCaseSensitive(resp, "header"), "revision");
}

void cm_etcd_kv_clear(struct cm_etcd_kv *kv)
{
	free(kv->key);
	free(kv->value);
	memset(kv, 0, sizeof(*kv));
}

enum cm_rc cm_etcd_kv_parse(const cJSON *kv, struct cm_etcd_kv *out, struct cm_err *err)
{
	const cJSON *k = cJSON_GetObjectItemCaseSensitive(kv, "key"), *v = cJSON_GetObjectItemCaseSensitive(kv, "value");
	size_t klen = 0;

	memset(out, 0, sizeof(*out));
	if(!cJSON_IsString(k) || (v && !cJSON_IsString(v))){
		return cm_err_set(err, CM_ERR_INVAL, "etcd: a key-value without a key");
	}
	if(!cm_b64_decode(k->valuestring, strlen(k->valuestring), (unsigned char **)&out->key, &klen)
			|| klen != strlen(out->key) || klen > CM_ETCD_MAX_KEY
			|| !cm_b64_decode(v ? v->valuestring : "", v ? strlen(v->valuestring) : 0, &out->value, &out->len)){
		cm_etcd_kv_clear(out);
		return cm_err_set(err, CM_ERR_INVAL, "etcd: a key or value that is not base64");
	}
	out->mod_revision = cm_etcd_number(kv, "mod_revision");
	out->create_revision = cm_etcd_number(kv, "create_revision");
	out->lease = cm_etcd_number(kv, "lease");
	return CM_OK;
}

void cm_etcd_kvs_free(struct cm_etcd_kvs *k)
{
	for(size_t i = 0; k->v && i < k->n; i++){
		cm_etcd_kv_clear(&k->v[i]);
	}
	free(k->v);
	memset(k, 0, sizeof(*k));
}

static enum cm_rc read_kvs(const cJSON *resp, struct cm_etcd_kvs *out, struct cm_err *err)
{
	const cJSON *kvs = cJSON_GetObjectItemCaseSensitive(resp, "kvs"), *kv;
	int n = cJSON_GetArraySize(kvs);

	out->revision = header_revision(resp);
	if(n == 0){
		return CM_OK;
	}
	out->v = calloc((size_t)n, sizeof(*out->v));
	if(out->v == NULL){
		return cm_err_set(err, CM_ERR_NOMEM, "out of memory");
	}
	cJSON_ArrayForEach(kv, kvs){
		if(cm_etcd_kv_parse(kv, &out->v[out->n], err) != CM_OK){
			cm_etcd_kvs_free(out);
			return CM_ERR_INVAL;
		}
		out->n++;
	}
	return CM_OK;
}

enum cm_rc cm_etcd_range(struct cm_etcd *e, const char *key, const char *end, struct cm_etcd_kvs *out, struct cm_err *err)
{
	return cm_etcd_range_ex(e, key, end, false, out, err);
}

enum cm_rc cm_etcd_range_ex(struct cm_etcd *e, const char *key, const char *end, bool keys_only, struct cm_etcd_kvs *out,
		struct cm_err *err)
{
	cJSON *body = cJSON_CreateObject(), *resp = NULL;
	enum cm_rc rc;

	memset(out, 0, sizeof(*out));
	if(body == NULL || !add_b64(body, "key", key, strlen(key)) || (end && !add_b64(body, "range_end", end, strlen(end)))
			|| (keys_only && !cJSON_AddBoolToObject(body, "keys_only", true))){
		cJSON_Delete(body);
		return cm_err_set(err, CM_ERR_NOMEM, "out of memory");
	}
	rc = post(e, "/v3/kv/range", body, &resp, err);
	if(rc == CM_OK){
		rc = read_kvs(resp, out, err);
	}
	cJSON_Delete(resp);
	return rc;
}

enum cm_rc cm_etcd_put(struct cm_etcd *e, const char *key, const void *value, size_t len, int64_t lease, struct cm_err *err)
{
	cJSON *body = cJSON_CreateObject(), *resp = NULL;
	enum cm_rc rc;

	if(body == NULL || !add_b64(body, "key", key, strlen(key)) || !add_b64(body, "value", value, len)
			|| (lease && !add_number(body, "lease", lease))){
		cJSON_Delete(body);
		return cm_err_set(err, CM_ERR_NOMEM, "out of memory");
	}
	rc = post(e, "/v3/kv/put", body, &resp, err);
	cJSON_Delete(resp);
	return rc;
}

/* {"compare":[mod_revision(key) == rev], "success":[put or delete]}. */
static cJSON *txn_body(const char *key, int64_t rev, const void *value, size_t len)
{
	cJSON *body = cJSON_CreateObject(), *cmp, *ops, *op, *req;

	if(body == NULL || (cmp = cJSON_AddArrayToObject(body, "compare")) == NULL || (ops = cJSON_AddArrayToObject(body, "success")) == NULL
			|| (op = cJSON_CreateObject()) == NULL){
		cJSON_Delete(body);
		return NULL;
	}
	cJSON_AddItemToArray(cmp, op);
	if(!add_b64(op, "key", key, strlen(key)) || !cJSON_AddStringToObject(op, "target", "MOD")
			|| !cJSON_AddStringToObject(op, "result", "EQUAL") || !add_number(op, "mod_revision", rev)
			|| (op = cJSON_CreateObject()) == NULL){
		cJSON_Delete(body);
		return NULL;
	}
	cJSON_AddItemToArray(ops, op);
	req = cJSON_AddObjectToObject(op, value ? "request_put" : "request_delete_range");
	if(req == NULL || !add_b64(req, "key", key, strlen(key)) || (value && !add_b64(req, "value", value, len))){
		cJSON_Delete(body);
		return NULL;
	}
	return body;
}

enum cm_rc cm_etcd_txn(struct cm_etcd *e, const char *key, int64_t rev, const void *value, size_t len, bool *won, int64_t *revision,
		struct cm_err *err)
{
	cJSON *body = txn_body(key, rev, value, len), *resp = NULL;
	enum cm_rc rc;

	*won = false;
	*revision = 0;
	if(body == NULL){
		return cm_err_set(err, CM_ERR_NOMEM, "out of memory");
	}
	rc = post(e, "/v3/kv/txn", body, &resp, err);
	if(rc == CM_OK){
		*won = cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(resp, "succeeded"));
		*revision = header_revision(resp);
	}
	cJSON_Delete(resp);
	return rc;
}

enum cm_rc cm_etcd_delete(struct cm_etcd *e, const char *key, const char *end, struct cm_err *err)
{
	cJSON *body = cJSON_CreateObject(), *resp = NULL;
	enum cm_rc rc;

	if(body == NULL || !add_b64(body, "key", key, strlen(key)) || (end && !add_b64(body, "range_end", end, strlen(end)))){
		cJSON_Delete(body);
		return cm_err_set(err, CM_ERR_NOMEM, "out of memory");
	}
	rc = post(e, "/v3/kv/deleterange", body, &resp, err);
	cJSON_Delete(resp);
	return rc;
}

enum cm_rc cm_etcd_lease_grant(struct cm_etcd *e, int64_t ttl, int64_t *id, struct cm_err *err)
{
	cJSON *body = cJSON_CreateObject(), *resp = NULL;
	enum cm_rc rc;

	*id = 0;
	if(body == NULL || !add_number(body, "TTL", ttl)){
		cJSON_Delete(body);
		return cm_err_set(err, CM_ERR_NOMEM, "out of memory");
	}
	rc = post(e, "/v3/lease/grant", body, &resp, err);
	if(rc == CM_OK){
		*id = cm_etcd_number(resp, "ID");
		if(*id == 0){
			rc = cm_err_set(err, CM_ERR_INVAL, "etcd granted no lease");
		}
	}
	cJSON_Delete(resp);
	return rc;
}

struct first_message {
	struct cm_text text;
	bool complete;
};

/* The keepalive answer is a stream that stays open: the first line is
 * all that is wanted. */
static size_t first_line(char *data, size_t size, size_t nmemb, void *userdata)
{
	struct first_message *m = userdata;
	size_t n = size * nmemb;

	if(m->text.len + n > 65536 || !cm_text_append(&m->text, data, n)){
		return 0;
	}
	if(memchr(data, '\n', n) || memchr(data, '}', n)){
		cJSON *j = cJSON_ParseWithLength(m->text.s, m->text.len);
		m->complete = j != NULL;
		cJSON_Delete(j);
	}
	return m->complete ? 0 : n;
}

enum cm_rc cm_etcd_lease_keepalive(struct cm_etcd *e, int64_t id, int64_t *ttl, struct cm_err *err)
{
	char url[1024], body[64];
	struct first_message m = {{0}, false};
	struct curl_slist *headers = curl_slist_append(NULL, "Content-Type: application/json");
	cJSON *j;

	*ttl = 0;
	snprintf(body, sizeof(body), "{\"ID\":\"%lld\"}", (long long)id);
	snprintf(url, sizeof(url), "%s/v3/lease/keepalive", e->ep[e->cur]);
	curl_easy_reset(e->curl);
	etcd_setup(e, e->curl, url, body, headers);
	curl_easy_setopt(e->curl, CURLOPT_TIMEOUT_MS, e->timeout_ms);
	curl_easy_setopt(e->curl, CURLOPT_WRITEFUNCTION, first_line);
	curl_easy_setopt(e->curl, CURLOPT_WRITEDATA, &m);
	(void)curl_easy_perform(e->curl);
	curl_slist_free_all(headers);
	if(!m.complete){
		cm_text_free(&m.text);
		e->cur = (e->cur + 1) % e->n;
		return cm_err_set(err, CM_ERR_IO, "etcd %s: no answer to a lease keepalive", url);
	}
	j = cJSON_ParseWithLength(m.text.s, m.text.len);
	cm_text_free(&m.text);
	*ttl = cm_etcd_number(cJSON_GetObjectItemCaseSensitive(j, "result"), "TTL");
	cJSON_Delete(j);
	return CM_OK;
}

enum cm_rc cm_etcd_prefix_end(const char *prefix, char *buf, size_t len, struct cm_err *err)
{
	size_t n = strlen(prefix);

	if(n == 0 || n >= len){
		return cm_err_set(err, CM_ERR_INVAL, "etcd prefix '%.64s' is empty or too long", prefix);
	}
	memcpy(buf, prefix, n + 1);
	while(n > 0 && (unsigned char)buf[n - 1] == 0xff){
		buf[--n] = '\0';
	}
	if(n == 0){
		return cm_err_set(err, CM_ERR_INVAL, "etcd prefix has no end");
	}
	buf[n - 1] = (char)((unsigned char)buf[n - 1] + 1);
	return CM_OK;
}

