#ifndef CM_LOG_H
#define CM_LOG_H
/* Logging shared by the plugin and the command-line tool.
 *
 * Every line starts with "certmgr: ". The plugin points the sink at
 * mosquitto_log_printf (broker thread only); everything else writes to
 * stderr. Never log a key, a passphrase or a PEM body. */

#include <stdarg.h>

enum cm_log_level {
	CM_LOG_ERR,
	CM_LOG_WARNING,
	CM_LOG_NOTICE,
	CM_LOG_INFO,
	CM_LOG_DEBUG,
};

typedef void (*cm_log_sink_fn)(enum cm_log_level level, const char *line);

/* Replaces the sink; NULL restores the stderr sink. */
void cm_log_set_sink(cm_log_sink_fn sink);

void cm_log(enum cm_log_level level, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

/* Logs "<what>: <every queued OpenSSL error, joined>" and empties the queue. */
void cm_log_openssl(enum cm_log_level level, const char *what);

/* Writes the OpenSSL error queue, joined by "; ", into buf and empties the
 * queue. Returns buf ("" when the queue was empty). */
const char *cm_log_openssl_drain(char *buf, size_t buflen);

#endif
