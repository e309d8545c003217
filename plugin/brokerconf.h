#ifndef CM_BROKERCONF_H
#define CM_BROKERCONF_H
/* What certmgr needs to know of the broker's own configuration, which the
 * plugin API does not show: the file comes from the broker's command line
 * (/proc/self/cmdline, "-c FILE" or "--config-file FILE"), and is read the
 * way Mosquitto reads it: one option a line, '#' comments, include_dir
 * (main file only) adding every "*.conf" of a directory in name order at
 * the point where it appears; a later value wins. */

#include <stdbool.h>
#include <stddef.h>

#include "error.h"

/* The configuration file named on a NUL-separated command line, into out.
 * CM_ERR_INVAL when the command line names none. */
CM_MUST_CHECK enum cm_rc cm_brokerconf_path_from_cmdline(const char *cmdline, size_t len, char *out, size_t outlen, struct cm_err *err);

/* The configuration file of the running broker. */
CM_MUST_CHECK enum cm_rc cm_brokerconf_own_path(char *out, size_t outlen, struct cm_err *err);

/* Listeners read, the default one (before any "listener" line) first. */
#define CM_BROKERCONF_MAX_LISTENERS 65

/* What certmgr needs to know of one listener: the options with which
 * Mosquitto skips MOSQ_EVT_BASIC_AUTH, and certmgr's checks with it. */
struct cm_brokerconf_listener {
	int port;                     /* 1883 for the default listener */
	bool use_identity_as_username;
	bool use_subject_as_username;
	bool websockets;              /* protocol websockets */
	bool tls;                     /* a certfile (a websockets listener is TLS only with one) */
};

/* The options certmgr reads, with Mosquitto's defaults. */
struct cm_brokerconf {
	bool per_listener_settings;
	int sys_interval;        /* seconds; 0: no $SYS topics */
	struct cm_brokerconf_listener listeners[CM_BROKERCONF_MAX_LISTENERS];
	int listener_count;      /* the default listener included */
};
CM_MUST_CHECK enum cm_rc cm_brokerconf_read(const char *path, struct cm_brokerconf *out, struct cm_err *err);
/* The first listener on port, or NULL. */
const struct cm_brokerconf_listener *cm_brokerconf_listener(const struct cm_brokerconf *conf, int port);

/* The value of per_listener_settings in path and its includes (false when
 * absent). A file that cannot be read is an error naming it. */
CM_MUST_CHECK enum cm_rc cm_brokerconf_per_listener_settings(const char *path, bool *out, struct cm_err *err);

#endif
