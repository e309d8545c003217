#ifndef CM_JSON_H
#define CM_JSON_H
/* Typed getters over cJSON that check a field before anything is
 * allocated, and time stamps as ISO 8601 UTC. */

#include <stdbool.h>
#include <stdint.h>
#include <time.h>

#include <cjson/cJSON.h>

#include "error.h"

/* Each getter: a missing field is CM_OK with the default left in *out when
 * required is false, CM_ERR_INVAL otherwise; a field of the wrong type is
 * always CM_ERR_INVAL, with err naming the field. Strings are borrowed
 * from the cJSON tree. */
CM_MUST_CHECK enum cm_rc cm_json_get_string(const cJSON *obj, const char *name, bool required, const char **out, struct cm_err *err);
CM_MUST_CHECK enum cm_rc cm_json_get_bool(const cJSON *obj, const char *name, bool required, bool *out, struct cm_err *err);
/* A whole number in [min, max]. */
CM_MUST_CHECK enum cm_rc cm_json_get_int(const cJSON *obj, const char *name, bool required, int64_t min, int64_t max, int64_t *out, struct cm_err *err);
CM_MUST_CHECK enum cm_rc cm_json_get_array(const cJSON *obj, const char *name, bool required, const cJSON **out, struct cm_err *err);
/* An ISO 8601 UTC time stamp "YYYY-MM-DDTHH:MM:SSZ". */
CM_MUST_CHECK enum cm_rc cm_json_get_time(const cJSON *obj, const char *name, bool required, time_t *out, struct cm_err *err);

/* Formats t as "YYYY-MM-DDTHH:MM:SSZ" into buf (at least 21 bytes). */
void cm_time_iso(time_t t, char buf[21]);
/* Parses "YYYY-MM-DDTHH:MM:SSZ" exactly; false on anything else. */
bool cm_time_parse_iso(const char *s, time_t *out);

/* Adds a time stamp field; false when out of memory. */
bool cm_json_add_time(cJSON *obj, const char *name, time_t t);

/* Text that grows by appending, kept NUL-terminated; all zero is empty.
 * One block, grown by doubling: printed JSON held for later goes here
 * rather than into many small blocks that outlive the work between them
 * (see docs/BENCHMARKS.md, "just registered"). */
struct cm_text {
	char *s;
	size_t len, cap;
};

/* Appends n bytes of p (NUL bytes included); false when out of memory,
 * t unchanged then. */
CM_MUST_CHECK bool cm_text_append(struct cm_text *t, const char *p, size_t n);
/* Frees t's block and leaves it empty; twice is harmless. */
void cm_text_free(struct cm_text *t);

#endif
