#ifndef CM_FIELDS_H
#define CM_FIELDS_H
/* The fields of a control command, described by a table: each field's
 * name, type, whether it is required, and its limit. The dispatcher
 * checks a command against its table before the handler runs, so that a
 * handler starts with fields of the right type, and a misspelt field is
 * refused by name instead of silently ignored. Broker-free. */

#include <stdbool.h>
#include <stddef.h>

#include <cjson/cJSON.h>

#include "error.h"

enum cm_field_type {
	CM_FIELD_STRING,
	CM_FIELD_BOOL,
	CM_FIELD_STRINGS, /* an array of strings */
	CM_FIELD_OBJECT,
	CM_FIELD_PEMS,    /* a string, or an array of strings */
	CM_FIELD_COUNT,   /* a whole number from 0 to max (max 0: no limit) */
	CM_FIELD_NUMBER,  /* a number (max: its largest value, when not 0) */
};

struct cm_field {
	const char *name;
	enum cm_field_type type;
	bool required;
	/* Characters of a string, entries of an array, the value of a count,
	 * at most; 0: no limit. */
	size_t max;
	/* What the error of a value of another type says the field must be;
	 * NULL: the type's own words ("a string"). */
	const char *must_be;
};

/* Readable rows: {"tenant", CM_FIELD_STRING, CM_REQUIRED}. */
#define CM_REQUIRED true
#define CM_OPTIONAL false

/* Fields of the envelope that every command takes: "command" and
 * "correlationData" (a string). */
CM_MUST_CHECK bool cm_fields_envelope(const char *name);

/* Checks every member of cmd against fields (ended by a NULL name):
 * an unknown member, one of the wrong type or over its limit, and a
 * missing required one are refused, err naming the field. */
CM_MUST_CHECK enum cm_rc cm_fields_check(const struct cm_field *fields, const cJSON *cmd, struct cm_err *err);

/* After cm_fields_check: the value of a field, or def when it is absent. */
const char *cm_arg_string(const cJSON *cmd, const char *name, const char *def);
bool cm_arg_bool(const cJSON *cmd, const char *name, bool def);
long long cm_arg_count(const cJSON *cmd, const char *name, long long def);
double cm_arg_number(const cJSON *cmd, const char *name, double def);

#endif
