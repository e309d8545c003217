#ifndef CM_OPTIONS_H
#define CM_OPTIONS_H
/* The plugin's numeric options (plugin_opt_<key> <number>): one table of
 * key, default and range, one number parser. The options that take text
 * (paths, lists) are read in plugin.c. */

#include <stdbool.h>

#include "error.h"
#include "state.h"

/* Gives every numeric option of st its default. */
void cm_options_set_defaults(struct cm_state *st);

/* Sets the numeric option key of st from value. *known tells whether key
 * is one (every "crl_" key but crl_allowed_hosts counts as one, so that a
 * misspelt one is refused as such); when it is not, nothing is done. */
CM_MUST_CHECK enum cm_rc cm_options_set_number(struct cm_state *st, const char *key, const char *value, bool *known, struct cm_err *err);

/* The options of the store's back end and of the Secret-directory slots
 * (docs/FLEET.md): store, etcd_endpoints, etcd_prefix, etcd_cafile,
 * etcd_certfile, etcd_keyfile, node_name, <slot>_secret_dir. *known as
 * above. */
CM_MUST_CHECK enum cm_rc cm_options_set_text(struct cm_state *st, const char *key, const char *value, bool *known, struct cm_err *err);

/* After every option is read: what the etcd back end needs (endpoints,
 * encrypted keys), and the defaults of its options (prefix /certmgr/,
 * the node named hostname). */
CM_MUST_CHECK enum cm_rc cm_options_check_fleet(struct cm_state *st, const char *hostname, struct cm_err *err);

/* Frees the text options of st. */
void cm_options_clear(struct cm_state *st);

/* A decimal count from min to max, the whole of text. */
bool cm_options_parse_count(const char *text, unsigned long long min, unsigned long long max, unsigned long long *out);

#endif
