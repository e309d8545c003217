#ifndef CM_FETCH_H
#define CM_FETCH_H
/* CRL downloads on libcurl's multi interface, stepped from MOSQ_EVT_TICK:
 * the broker thread never waits for the network. Only http and https,
 * bounded redirects (followed here, so that each one's host is checked
 * against plugin_opt_crl_allowed_hosts), connect and total timeouts, a
 * maximum size, https verified against the system CAs. */

#include <stdbool.h>
#include <stddef.h>

#include "error.h"
#include "fetch-t.h"

struct cm_state;

/* "crl.example.com, *.pki.example.net, 10.0.0.5" into o->allowed_hosts. */
CM_MUST_CHECK enum cm_rc cm_fetch_parse_allowed_hosts(struct cm_fetch_options *o, const char *list, struct cm_err *err);
/* Frees o->allowed_hosts. */
void cm_fetch_options_clear(struct cm_fetch_options *o);
/* CM_OK when the host of url may be fetched from under o; else the error
 * names the host. */
CM_MUST_CHECK enum cm_rc cm_fetch_host_allowed(const struct cm_fetch_options *o, const char *url, struct cm_err *err);

/* Called once per fetch, on the broker thread: rc CM_OK with the body, or
 * an error with a sentence in error. The callee may take the body (a
 * malloc'd buffer) by setting *body to NULL. aborted: the plugin is
 * shutting down; free ctx and do nothing else. */
typedef void (*cm_fetch_done_fn)(struct cm_state *st, void *ctx, enum cm_rc rc, unsigned char **body, size_t len,
		const char *error, bool aborted);

CM_MUST_CHECK enum cm_rc cm_fetch_init(struct cm_state *st, const struct cm_fetch_options *opts, struct cm_err *err);
CM_MUST_CHECK enum cm_rc cm_fetch_start(struct cm_state *st, const char *url, cm_fetch_done_fn done, void *ctx, struct cm_err *err);
/* Moves the transfers on and delivers the finished ones. */
void cm_fetch_step(struct cm_state *st);
/* Aborts everything (done is called with aborted true) and frees. */
void cm_fetch_cleanup(struct cm_state *st);

/* True when url is an http:// or https:// URL of sane length. */
bool cm_fetch_url_valid(const char *url);

#endif
