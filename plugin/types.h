#ifndef CM_TYPES_H
#define CM_TYPES_H
/* Types the plugin's layers share, and no functions: a header included
 * by both sides of a boundary pulls in neither side's API. */

/* How a client is an administrator, if it is one. */
enum cm_admin_via {
	CM_ADMIN_NONE,
	CM_ADMIN_CERT,     /* a certificate from certmgr's admin CA */
	CM_ADMIN_USERNAME, /* a name in plugin_opt_admin_users */
};

#endif
