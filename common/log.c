#include <stdio.h>
#include <string.h>

#include <openssl/err.h>

#include "log.h"

static cm_log_sink_fn log_sink;

void cm_log_set_sink(cm_log_sink_fn sink)
{
	log_sink = sink;
}

void cm_log(enum cm_log_level level, const char *fmt, ...)
{
	char line[1024];
	va_list ap;
	int n;

	n = snprintf(line, sizeof(line), "certmgr: ");
	va_start(ap, fmt);
	vsnprintf(line + n, sizeof(line) - (size_t)n, fmt, ap);
	va_end(ap);

	if(log_sink){
		log_sink(level, line);
	}else{
		fprintf(stderr, "%s\n", line);
	}
}

const char *cm_log_openssl_drain(char *buf, size_t buflen)
{
	unsigned long e;
	size_t used = 0;
	char one[256];

	if(buflen == 0){
		ERR_clear_error();
		return buf;
	}
	buf[0] = '\0';
	while((e = ERR_get_error()) != 0){
		ERR_error_string_n(e, one, sizeof(one));
		if(used + 2 < buflen){
			int n = snprintf(buf + used, buflen - used, "%s%s", used ? "; " : "", one);
			if(n > 0){
				used += (size_t)n;
				if(used >= buflen){
					used = buflen - 1;
				}
			}
		}
	}
	return buf;
}

void cm_log_openssl(enum cm_log_level level, const char *what)
{
	char errs[768];

	cm_log_openssl_drain(errs, sizeof(errs));
	cm_log(level, "%s: %s", what, errs[0] ? errs : "no OpenSSL detail");
}
