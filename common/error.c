#include <stdarg.h>
#include <stdio.h>

#include "error.h"

enum cm_rc cm_err_set(struct cm_err *err, enum cm_rc rc, const char *fmt, ...)
{
	va_list ap;

	if(err){
		va_start(ap, fmt);
		vsnprintf(err->msg, sizeof(err->msg), fmt, ap);
		va_end(ap);
	}
	return rc;
}
