#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "brokerconf.h"
#include "fsutil.h"

#define CONF_MAX_FILE (4 * 1024 * 1024)

enum cm_rc cm_brokerconf_path_from_cmdline(const char *cmdline, size_t len, char *out, size_t outlen, struct cm_err *err)
{
	const char *arg = cmdline;
	const char *end = cmdline + len;
	const char *next;
	bool want = false;

	while(arg < end){
		next = memchr(arg, '\0', (size_t)(end - arg));
		if(next == NULL){
			break;
		}
		if(want){
			if((size_t)(next - arg) + 1 > outlen){
				return cm_err_set(err, CM_ERR_INVAL, "the broker's configuration path is too long");
			}
			memcpy(out, arg, (size_t)(next - arg) + 1);
			return CM_OK;
		}
		want = !strcmp(arg, "-c") || !strcmp(arg, "--config-file");
		arg = next + 1;
	}
	return cm_err_set(err, CM_ERR_INVAL, "the broker was started without a configuration file (-c)");
}

enum cm_rc cm_brokerconf_own_path(char *out, size_t outlen, struct cm_err *err)
{
	char *cmdline = NULL;
	size_t len = 0;
	enum cm_rc rc;
	char *rel;

	/* /proc files report size 0, so read through stdio. */
	FILE *f = fopen("/proc/self/cmdline", "r");
	if(f == NULL){
		return cm_err_set(err, CM_ERR_IO, "cannot read /proc/self/cmdline: %s", strerror(errno));
	}
	cmdline = malloc(65536);
	if(cmdline == NULL){
		fclose(f);
		return cm_err_set(err, CM_ERR_NOMEM, "out of memory");
	}
	len = fread(cmdline, 1, 65535, f);
	fclose(f);
	cmdline[len] = '\0';
	rc = cm_brokerconf_path_from_cmdline(cmdline, len, out, outlen, err);
	free(cmdline);
	if(rc != CM_OK || out[0] == '/'){
		return rc;
	}
	/* A relative path is relative to the directory the broker started in,
	 * which is still its working directory unless it daemonised. */
	rel = strdup(out);
	if(rel == NULL){
		return cm_err_set(err, CM_ERR_NOMEM, "out of memory");
	}
	{
		char cwd[PATH_MAX];
		if(getcwd(cwd, sizeof(cwd)) == NULL){
			rc = cm_err_set(err, CM_ERR_IO, "cannot resolve the broker's configuration path: %s", strerror(errno));
		}else{
			rc = cm_fs_path(out, outlen, err, "%s/%s", cwd, rel);
		}
	}
	free(rel);
	return rc;
}

static int cmp_names(const struct dirent **a, const struct dirent **b)
{
	return strcmp((*a)->d_name, (*b)->d_name);
}

static int conf_file_filter(const struct dirent *d)
{
	size_t n = strlen(d->d_name);
	return n > 5 && !strcmp(d->d_name + n - 5, ".conf");
}

static enum cm_rc parse_file(const char *path, bool main_file, struct cm_brokerconf *value, struct cm_err *err);

static enum cm_rc parse_include_dir(const char *dir, struct cm_brokerconf *value, struct cm_err *err)
{
	struct dirent **names = NULL;
	char path[PATH_MAX];
	enum cm_rc rc = CM_OK;
	int n, i;

	n = scandir(dir, &names, conf_file_filter, cmp_names);
	if(n < 0){
		return cm_err_set(err, CM_ERR_IO, "cannot read include_dir %s: %s", dir, strerror(errno));
	}
	for(i = 0; i < n; i++){
		if(rc == CM_OK){
			rc = cm_fs_path(path, sizeof(path), err, "%s/%s", dir, names[i]->d_name);
			if(rc == CM_OK){
				rc = parse_file(path, false, value, err);
			}
		}
		free(names[i]);
	}
	free(names);
	return rc;
}

/* Mosquitto's booleans; anything else leaves *out as it was. */
static void parse_bool(const char *val, bool *out)
{
	if(!strcmp(val, "true") || !strcmp(val, "1")){
		*out = true;
	}else if(!strcmp(val, "false") || !strcmp(val, "0")){
		*out = false;
	}
}

/* A "listener PORT [ADDRESS]" line: the options after it are its own. */
static enum cm_rc new_listener(struct cm_brokerconf *value, const char *val, const char *path, struct cm_err *err)
{
	struct cm_brokerconf_listener *l;
	char *end;
	long port = strtol(val, &end, 10);

	if(value->listener_count == CM_BROKERCONF_MAX_LISTENERS){
		return cm_err_set(err, CM_ERR_INVAL, "%s: more than %d listeners", path, CM_BROKERCONF_MAX_LISTENERS - 1);
	}
	l = &value->listeners[value->listener_count++];
	memset(l, 0, sizeof(*l));
	l->port = end != val && port >= 0 && port <= 65535 ? (int)port : -1;
	return CM_OK;
}

static enum cm_rc parse_file(const char *path, bool main_file, struct cm_brokerconf *value, struct cm_err *err)
{
	char *text = NULL;
	char *line, *save = NULL;
	enum cm_rc rc;

	rc = cm_fs_read_file(path, CONF_MAX_FILE, &text, NULL, err);
	if(rc != CM_OK){
		return rc;
	}
	for(line = strtok_r(text, "\n", &save); line && rc == CM_OK; line = strtok_r(NULL, "\n", &save)){
		char *key, *val, *lsave = NULL;

		while(*line == ' ' || *line == '\t'){
			line++;
		}
		if(*line == '#' || *line == '\0'){
			continue;
		}
		key = strtok_r(line, " \t\r", &lsave);
		val = strtok_r(NULL, "\r", &lsave);
		if(key == NULL){
			continue;
		}
		if(val){
			size_t n;
			while(*val == ' ' || *val == '\t'){
				val++;
			}
			n = strlen(val);
			while(n > 0 && (val[n - 1] == ' ' || val[n - 1] == '\t')){
				val[--n] = '\0';
			}
		}
		if(!strcmp(key, "per_listener_settings") && val){
			parse_bool(val, &value->per_listener_settings);
		}else if(!strcmp(key, "sys_interval") && val){
			char *end;
			long v = strtol(val, &end, 10);
			if(end != val && *end == '\0' && v >= 0 && v <= 65535){
				value->sys_interval = (int)v;
			}
		}else if(!strcmp(key, "listener") && val){
			rc = new_listener(value, val, path, err);
		}else if(!strcmp(key, "use_identity_as_username") && val){
			parse_bool(val, &value->listeners[value->listener_count - 1].use_identity_as_username);
		}else if(!strcmp(key, "use_subject_as_username") && val){
			parse_bool(val, &value->listeners[value->listener_count - 1].use_subject_as_username);
		}else if(!strcmp(key, "protocol") && val){
			value->listeners[value->listener_count - 1].websockets = !strcmp(val, "websockets");
		}else if(!strcmp(key, "certfile") && val){
			/* Not psk_hint: Mosquitto starts a websockets listener
			 * with one and no certfile as plain websockets. */
			value->listeners[value->listener_count - 1].tls = true;
		}else if(!strcmp(key, "include_dir") && val && main_file){
			rc = parse_include_dir(val, value, err);
		}
	}
	free(text);
	return rc;
}

enum cm_rc cm_brokerconf_read(const char *path, struct cm_brokerconf *out, struct cm_err *err)
{
	memset(out, 0, sizeof(*out));
	out->sys_interval = 10; /* Mosquitto's default */
	out->listeners[0].port = 1883;
	out->listener_count = 1;
	return parse_file(path, true, out, err);
}

const struct cm_brokerconf_listener *cm_brokerconf_listener(const struct cm_brokerconf *conf, int port)
{
	for(int i = 0; i < conf->listener_count; i++){
		if(conf->listeners[i].port == port){
			return &conf->listeners[i];
		}
	}
	return NULL;
}

enum cm_rc cm_brokerconf_per_listener_settings(const char *path, bool *out, struct cm_err *err)
{
	struct cm_brokerconf conf;
	enum cm_rc rc = cm_brokerconf_read(path, &conf, err);

	*out = conf.per_listener_settings;
	return rc;
}
