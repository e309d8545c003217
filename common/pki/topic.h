#ifndef CM_TOPIC_H
#define CM_TOPIC_H
/* Topic patterns of a tenant's devices: MQTT topic filters with {org},
 * {type} and {id} placeholders, filled from the device's identity. */

#include <stdbool.h>
#include <stddef.h>

#include "error.h"
#include "identity.h"

/* Checks a pattern: a valid topic filter of at most 1024 bytes once
 * filled, whose placeholders each fill a whole level. */
CM_MUST_CHECK enum cm_rc cm_topic_pattern_valid(const char *pattern, struct cm_err *err);

/* Fills a pattern's placeholders into out; false when it does not fit. */
bool cm_topic_fill(const char *pattern, const struct cm_identity *ident, char *out, size_t outlen);

/* True when topic (a topic name, no wildcards) matches filter. */
bool cm_topic_matches(const char *filter, const char *topic);

/* True when every topic the subscription filter sub can match is matched
 * by filter acl, so that granting sub cannot leak anything outside acl. */
bool cm_topic_sub_within(const char *acl, const char *sub);

#endif
