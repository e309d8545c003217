#ifndef CM_ERROR_H
#define CM_ERROR_H
/* Result codes and the human-readable reason that travels with them up to
 * the log line or the control API's "error". */

#include <stddef.h>

#define CM_MUST_CHECK __attribute__((warn_unused_result))

enum cm_rc {
	CM_OK = 0,
	CM_ERR_INVAL,   /* bad input from an operator or a file */
	CM_ERR_NOMEM,
	CM_ERR_IO,      /* the file system said no */
	CM_ERR_CORRUPT, /* the store does not hold what it should */
	CM_ERR_NEWER,   /* the store was written by a newer certmgr */
	CM_ERR_CRYPTO,  /* OpenSSL failed where it should not */
};

struct cm_err {
	char msg[512];
};

/* Formats the reason into err (err may be NULL) and returns rc, so that a
 * failing path reads `return cm_err_set(err, CM_ERR_IO, "...", ...);`. */
enum cm_rc cm_err_set(struct cm_err *err, enum cm_rc rc, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

#endif
