#define _GNU_SOURCE
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "json.h"

static const cJSON *field(const cJSON *obj, const char *name)
{
	return cJSON_GetObjectItemCaseSensitive(obj, name);
}

enum cm_rc cm_json_get_string(const cJSON *obj, const char *name, bool required, const char **out, struct cm_err *err)
{
	const cJSON *f = field(obj, name);

	if(f == NULL){
		return required ? cm_err_set(err, CM_ERR_INVAL, "'%s' is missing", name) : CM_OK;
	}
	if(!cJSON_IsString(f) || f->valuestring == NULL){
		return cm_err_set(err, CM_ERR_INVAL, "'%s' must be a string", name);
	}
	*out = f->valuestring;
	return CM_OK;
}

enum cm_rc cm_json_get_bool(const cJSON *obj, const char *name, bool required, bool *out, struct cm_err *err)
{
	const cJSON *f = field(obj, name);

	if(f == NULL){
		return required ? cm_err_set(err, CM_ERR_INVAL, "'%s' is missing", name) : CM_OK;
	}
	if(!cJSON_IsBool(f)){
		return cm_err_set(err, CM_ERR_INVAL, "'%s' must be true or false", name);
	}
	*out = cJSON_IsTrue(f);
	return CM_OK;
}

enum cm_rc cm_json_get_int(const cJSON *obj, const char *name, bool required, int64_t min, int64_t max, int64_t *out, struct cm_err *err)
{
	const cJSON *f = field(obj, name);
	double v;

	if(f == NULL){
		return required ? cm_err_set(err, CM_ERR_INVAL, "'%s' is missing", name) : CM_OK;
	}
	if(!cJSON_IsNumber(f)){
		return cm_err_set(err, CM_ERR_INVAL, "'%s' must be a number", name);
	}
	v = f->valuedouble;
	if(!isfinite(v) || v != floor(v) || v < (double)min || v > (double)max){
		return cm_err_set(err, CM_ERR_INVAL, "'%s' must be a whole number from %lld to %lld", name, (long long)min, (long long)max);
	}
	*out = (int64_t)v;
	return CM_OK;
}

enum cm_rc cm_json_get_array(const cJSON *obj, const char *name, bool required, const cJSON **out, struct cm_err *err)
{
	const cJSON *f = field(obj, name);

	if(f == NULL){
		return required ? cm_err_set(err, CM_ERR_INVAL, "'%s' is missing", name) : CM_OK;
	}
	if(!cJSON_IsArray(f)){
		return cm_err_set(err, CM_ERR_INVAL, "'%s' must be an array", name);
	}
	*out = f;
	return CM_OK;
}

enum cm_rc cm_json_get_time(const cJSON *obj, const char *name, bool required, time_t *out, struct cm_err *err)
{
	const char *s = NULL;
	enum cm_rc rc = cm_json_get_string(obj, name, required, &s, err);

	if(rc != CM_OK || s == NULL){
		return rc;
	}
	if(!cm_time_parse_iso(s, out)){
		return cm_err_set(err, CM_ERR_INVAL, "'%s' must be a time stamp like 2026-01-31T12:00:00Z", name);
	}
	return CM_OK;
}

void cm_time_iso(time_t t, char buf[21])
{
	struct tm tm;

	if(gmtime_r(&t, &tm) == NULL || strftime(buf, 21, "%Y-%m-%dT%H:%M:%SZ", &tm) == 0){
		snprintf(buf, 21, "1970-01-01T00:00:00Z");
	}
}

bool cm_time_parse_iso(const char *s, time_t *out)
{
	struct tm tm;
	const char *end;
	char back[21];
	time_t t;

	if(s == NULL || strlen(s) != 20){
		return false;
	}
	memset(&tm, 0, sizeof(tm));
	end = strptime(s, "%Y-%m-%dT%H:%M:%SZ", &tm);
	if(end == NULL || *end != '\0'){
		return false;
	}
	t = timegm(&tm);
	if(t == (time_t)-1){
		return false;
	}
	/* strptime takes 2026-02-30 and timegm makes it March 2: a date that
	 * does not come back the same is not a date. */
	cm_time_iso(t, back);
	if(strcmp(back, s) != 0){
		return false;
	}
	*out = t;
	return true;
}

bool cm_json_add_time(cJSON *obj, const char *name, time_t t)
{
	char buf[21];

	cm_time_iso(t, buf);
	return cJSON_AddStringToObject(obj, name, buf) != NULL;
}

bool cm_text_append(struct cm_text *t, const char *p, size_t n)
{
	if(n >= SIZE_MAX / 2 - t->len){
		return false;
	}
	if(t->len + n + 1 > t->cap){
		size_t cap = t->cap ? t->cap : 4096;
		char *grown;

		while(cap < t->len + n + 1){
			cap *= 2;
		}
		grown = realloc(t->s, cap);
		if(grown == NULL){
			return false;
		}
		t->s = grown;
		t->cap = cap;
	}
	memcpy(t->s + t->len, p, n);
	t->len += n;
	t->s[t->len] = '\0';
	return true;
}

void cm_text_free(struct cm_text *t)
{
	free(t->s);
	t->s = NULL;
	t->len = t->cap = 0;
}
