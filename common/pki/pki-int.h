#ifndef CM_PKI_INT_H
#define CM_PKI_INT_H
/* What the files of pki/ share among themselves; users include pki.h. */

#include "pki.h"

/* pki.c */
enum cm_rc openssl_fail(struct cm_err *err, enum cm_rc rc, const char *what);

#endif
