#include <stdio.h>
#include <string.h>

#include "fields.h"

bool cm_fields_envelope(const char *name)
{
	return !strcmp(name, "command") || !strcmp(name, "correlationData");
}

static const struct cm_field *find(const struct cm_field *fields, const char *name)
{
	for(; fields && fields->name; fields++){
		if(!strcmp(fields->name, name)){
			return fields;
		}
	}
	return NULL;
}

static const char *type_words(enum cm_field_type type)
{
	switch(type){
		case CM_FIELD_STRING:
			return "a string";
		case CM_FIELD_BOOL:
			return "true or false";
		case CM_FIELD_STRINGS:
			return "an array of strings";
		case CM_FIELD_OBJECT:
			return "an object";
		case CM_FIELD_PEMS:
			return "a string or an array of strings";
		case CM_FIELD_COUNT:
			return "a whole number, 0 or more";
		case CM_FIELD_NUMBER:
			return "a number";
	}
	return "?";
}

static bool all_strings(const cJSON *arr)
{
	const cJSON *item;

	cJSON_ArrayForEach(item, arr){
		if(!cJSON_IsString(item)){
			return false;
		}
	}
	return true;
}

static bool of_type(const cJSON *v, enum cm_field_type type)
{
	switch(type){
		case CM_FIELD_STRING:
			return cJSON_IsString(v) && v->valuestring;
		case CM_FIELD_BOOL:
			return cJSON_IsBool(v);
		case CM_FIELD_STRINGS:
			return cJSON_IsArray(v) && all_strings(v);
		case CM_FIELD_OBJECT:
			return cJSON_IsObject(v);
		case CM_FIELD_PEMS:
			return (cJSON_IsString(v) && v->valuestring) || (cJSON_IsArray(v) && all_strings(v));
		case CM_FIELD_COUNT:
			/* Exact below 2^53; anything larger is over every limit. */
			return cJSON_IsNumber(v) && v->valuedouble >= 0 && v->valuedouble <= 9007199254740992.0
				&& v->valuedouble == (double)(long long)v->valuedouble;
		case CM_FIELD_NUMBER:
			return cJSON_IsNumber(v);
	}
	return false;
}

/* One member of a command against its row. */
static enum cm_rc check_value(const struct cm_field *f, const cJSON *v, struct cm_err *err)
{
	if(!of_type(v, f->type)){
		return cm_err_set(err, CM_ERR_INVAL, "'%s' must be %s", f->name, f->must_be ? f->must_be : type_words(f->type));
	}
	if(f->max && cJSON_IsString(v) && strlen(v->valuestring) > f->max){
		return cm_err_set(err, CM_ERR_INVAL, "'%s' is longer than %zu characters", f->name, f->max);
	}
	if(f->max && f->type == CM_FIELD_COUNT && v->valuedouble > (double)f->max){
		return cm_err_set(err, CM_ERR_INVAL, "'%s' must be at most %zu", f->name, f->max);
	}
	if(f->type == CM_FIELD_NUMBER && (v->valuedouble < 0 || (f->max && v->valuedouble > (double)f->max))){
		return cm_err_set(err, CM_ERR_INVAL, "'%s' must be a number from 0 to %zu", f->name, f->max);
	}
	if(f->max && cJSON_IsArray(v) && (size_t)cJSON_GetArraySize(v) > f->max){
		return cm_err_set(err, CM_ERR_INVAL, "'%s' holds more than %zu entries", f->name, f->max);
	}
	return CM_OK;
}

/* The refusal of an unknown field, with the fields the command takes:
 * the one that was meant is usually among them. */
static enum cm_rc unknown(const struct cm_field *fields, const char *name, struct cm_err *err)
{
	char taken[320] = "";
	size_t used = 0;

	for(; fields && fields->name && used < sizeof(taken); fields++){
		int n = snprintf(taken + used, sizeof(taken) - used, "%s%s", used ? ", " : "", fields->name);
		used += n > 0 ? (size_t)n : 0;
	}
	return cm_err_set(err, CM_ERR_INVAL, "unknown field '%.64s' (this command takes %s)", name, taken[0] ? taken : "no fields");
}

enum cm_rc cm_fields_check(const struct cm_field *fields, const cJSON *cmd, struct cm_err *err)
{
	const struct cm_field *f;
	const cJSON *v;

	cJSON_ArrayForEach(v, cmd){
		if(v->string == NULL || cm_fields_envelope(v->string)){
			continue;
		}
		if((f = find(fields, v->string)) == NULL){
			return unknown(fields, v->string, err);
		}
		if(check_value(f, v, err) != CM_OK){
			return CM_ERR_INVAL;
		}
	}
	for(f = fields; f && f->name; f++){
		if(f->required && cJSON_GetObjectItemCaseSensitive(cmd, f->name) == NULL){
			return cm_err_set(err, CM_ERR_INVAL, "'%s' is missing", f->name);
		}
	}
	return CM_OK;
}

const char *cm_arg_string(const cJSON *cmd, const char *name, const char *def)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(cmd, name);

	return cJSON_IsString(v) && v->valuestring ? v->valuestring : def;
}

bool cm_arg_bool(const cJSON *cmd, const char *name, bool def)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(cmd, name);

	return cJSON_IsBool(v) ? cJSON_IsTrue(v) : def;
}

long long cm_arg_count(const cJSON *cmd, const char *name, long long def)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(cmd, name);

	return cJSON_IsNumber(v) ? (long long)v->valuedouble : def;
}

double cm_arg_number(const cJSON *cmd, const char *name, double def)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(cmd, name);

	return cJSON_IsNumber(v) ? v->valuedouble : def;
}
