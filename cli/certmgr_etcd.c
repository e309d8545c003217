/* certmgr_etcd: copies a directory store's shared state (tenants, slots,
 * the admin CA) into etcd for the etcd back end, and etcd's back into a
 * directory (a backup). docs/FLEET.md, man/certmgr_etcd.1. */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <curl/curl.h>

#include "etcd.h"
#include "fsutil.h"
#include "record.h"
#include "slot.h"
#include "tenant.h"

struct tool {
	struct cm_etcd *e;
	const char *prefix;
	bool force;
	int copied;
};

static int usage(FILE *f, int rc)
{
	fprintf(f, "usage: certmgr_etcd --endpoints URL[,URL...] [--prefix /certmgr/] [--cacert FILE] [--cert FILE --key FILE]\n"
			"                    [--force] export STORE_DIR | import DIR\n"
			"  export  copies the tenants and the admin CA of a directory store into etcd\n"
			"          (refused for a key that is not encrypted, and for a key etcd has unless --force)\n"
			"  import  writes etcd's tenants and admin CA into DIR (new or empty): a backup\n");
	return rc;
}

/* Puts the record of dir at key: only when etcd has no such key, unless
 * --force. */
static int put_record(struct tool *t, const char *dir, const char *key)
{
	struct cm_err err = {{0}};
	char *rec = NULL;
	size_t len = 0;
	bool won = false;
	int64_t rev = 0;
	enum cm_rc rc = cm_record_build(t->e, t->prefix, dir, &rec, &len, &err);

	if(rc == CM_OK && t->force){
		rc = cm_etcd_put(t->e, key, rec, len, 0, &err);
		won = rc == CM_OK;
	}else if(rc == CM_OK){
		rc = cm_etcd_txn(t->e, key, 0, rec, len, &won, &rev, &err);
	}
	free(rec);
	if(rc != CM_OK){
		fprintf(stderr, "certmgr_etcd: %s: %s\n", dir, err.msg);
		return 1;
	}
	if(!won){
		fprintf(stderr, "certmgr_etcd: %s is in etcd already (--force replaces it)\n", key);
		return 1;
	}
	printf("%s -> %s\n", dir, key);
	t->copied++;
	return 0;
}

/* The admin CA's two shared files, without the local operator's pair. */
static int export_admin(struct tool *t, const char *store)
{
	char tmp[] = "/tmp/certmgr-etcd-XXXXXX", a[PATH_MAX], b[PATH_MAX], key[CM_ETCD_MAX_KEY];
	static const char *const files[] = {"ca.pem", "ca.key"};
	int rc = 0;

	if(mkdtemp(tmp) == NULL){
		fprintf(stderr, "certmgr_etcd: cannot make a temporary directory: %s\n", strerror(errno));
		return 1;
	}
	for(size_t i = 0; i < 2 && rc == 0; i++){
		char *text = NULL;
		size_t len = 0;
		struct cm_err err;
		if(cm_fs_path(a, sizeof(a), &err, "%s/admin/%s", store, files[i]) != CM_OK || cm_fs_path(b, sizeof(b), &err, "%s/%s", tmp, files[i]) != CM_OK
				|| cm_fs_read_file(a, 1024 * 1024, &text, &len, &err) != CM_OK || cm_fs_write_atomic(b, text, len, 0600, &err) != CM_OK){
			fprintf(stderr, "certmgr_etcd: %s\n", err.msg);
			rc = 1;
		}
		free(text);
	}
	if(rc == 0){
		snprintf(key, sizeof(key), "%sadmin", t->prefix);
		rc = put_record(t, tmp, key);
	}
	for(size_t i = 0; i < 2; i++){
		if(cm_fs_path(b, sizeof(b), NULL, "%s/%s", tmp, files[i]) == CM_OK){
			(void)unlink(b);
		}
	}
	(void)rmdir(tmp);
	return rc;
}

static int export_store(struct tool *t, const char *store)
{
	char path[PATH_MAX], key[CM_ETCD_MAX_KEY];
	struct dirent *d;
	DIR *dh;
	int rc;

	if(cm_fs_path(path, sizeof(path), NULL, "%s/tenants", store) != CM_OK || (dh = opendir(path)) == NULL){
		fprintf(stderr, "certmgr_etcd: %s is not a certmgr store (no tenants/)\n", store);
		return 1;
	}
	rc = export_admin(t, store);
	for(int i = 0; rc == 0 && i < CM_SLOT_COUNT; i++){
		char sdir[PATH_MAX];
		if(cm_fs_path(sdir, sizeof(sdir), NULL, "%s/slots/%s", store, cm_slot_name((enum cm_slot_id)i)) == CM_OK){
			snprintf(key, sizeof(key), "%sslots/%s", t->prefix, cm_slot_name((enum cm_slot_id)i));
			rc = put_record(t, sdir, key);
		}
	}
	while(rc == 0 && (d = readdir(dh)) != NULL){
		char tdir[PATH_MAX], tjson[PATH_MAX];
		struct stat st;
		if(!cm_tenant_name_valid(d->d_name) || cm_fs_path(tdir, sizeof(tdir), NULL, "%s/%s", path, d->d_name) != CM_OK
				|| cm_fs_path(tjson, sizeof(tjson), NULL, "%s/tenant.json", tdir) != CM_OK || stat(tjson, &st) != 0){
			continue;
		}
		snprintf(key, sizeof(key), "%stenants/%s", t->prefix, d->d_name);
		rc = put_record(t, tdir, key);
	}
	closedir(dh);
	return rc;
}

static int import_one(struct tool *t, const struct cm_etcd_kv *kv, const char *dir)
{
	char path[PATH_MAX];
	const char *rest = kv->key + strlen(t->prefix);
	struct cm_err err = {{0}};
	enum cm_rc rc;

	if(!strcmp(rest, "admin")){
		rc = cm_fs_path(path, sizeof(path), &err, "%s/admin", dir);
	}else if((!strncmp(rest, "tenants/", 8) && cm_tenant_name_valid(rest + 8)) || (!strncmp(rest, "slots/", 6) && cm_slot_parse(rest + 6) >= 0)){
		rc = cm_fs_path(path, sizeof(path), &err, "%s/%s", dir, rest);
	}else{
		return 0; /* nodes/, rejected/, blobs/: not state */
	}
	if(rc == CM_OK){
		rc = cm_record_write(t->e, t->prefix, (const char *)kv->value, kv->len, path, &err);
	}
	if(rc != CM_OK){
		fprintf(stderr, "certmgr_etcd: %s: %s\n", kv->key, err.msg);
		return 1;
	}
	printf("%s -> %s\n", kv->key, path);
	t->copied++;
	return 0;
}

static int import_store(struct tool *t, const char *dir)
{
	char end[CM_ETCD_MAX_KEY], path[PATH_MAX];
	struct cm_etcd_kvs kvs;
	struct cm_err err = {{0}};
	DIR *dh = opendir(dir);
	int rc = 0, entries = 0;

	for(struct dirent *d; dh && (d = readdir(dh)) != NULL;){
		entries += strcmp(d->d_name, ".") && strcmp(d->d_name, "..");
	}
	if(dh){
		closedir(dh);
	}
	if(entries){
		fprintf(stderr, "certmgr_etcd: %s is not empty\n", dir);
		return 1;
	}
	if(cm_fs_mkdir(dir, 0700, &err) != CM_OK || cm_fs_path(path, sizeof(path), &err, "%s/tenants", dir) != CM_OK
			|| cm_fs_mkdir(path, 0700, &err) != CM_OK || cm_fs_path(path, sizeof(path), &err, "%s/slots", dir) != CM_OK
			|| cm_fs_mkdir(path, 0700, &err) != CM_OK || cm_etcd_prefix_end(t->prefix, end, sizeof(end), &err) != CM_OK
			|| cm_etcd_range(t->e, t->prefix, end, &kvs, &err) != CM_OK){
		fprintf(stderr, "certmgr_etcd: %s\n", err.msg);
		return 1;
	}
	for(size_t i = 0; i < kvs.n && rc == 0; i++){
		if(strncmp(kvs.v[i].key + strlen(t->prefix), "blobs/", 6)){
			rc = import_one(t, &kvs.v[i], dir);
		}
	}
	cm_etcd_kvs_free(&kvs);
	return rc;
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
		{"endpoints", required_argument, NULL, 'e'}, {"prefix", required_argument, NULL, 'p'},
		{"cacert", required_argument, NULL, 'c'}, {"cert", required_argument, NULL, 'C'}, {"key", required_argument, NULL, 'k'},
		{"force", no_argument, NULL, 'f'}, {"help", no_argument, NULL, 'h'}, {NULL, 0, NULL, 0},
	};
	struct cm_etcd_opts eo = {NULL, NULL, NULL, NULL, 10000};
	struct tool t = {NULL, "/certmgr/", false, 0};
	struct cm_err err = {{0}};
	int c, rc;

	while((c = getopt_long(argc, argv, "e:p:c:C:k:fh", opts, NULL)) != -1){
		switch(c){
			case 'e': eo.endpoints = optarg; break;
			case 'p': t.prefix = optarg; break;
			case 'c': eo.cafile = optarg; break;
			case 'C': eo.certfile = optarg; break;
			case 'k': eo.keyfile = optarg; break;
			case 'f': t.force = true; break;
			case 'h': return usage(stdout, 0);
			default: return usage(stderr, 2);
		}
	}
	if(argc - optind != 2 || (strcmp(argv[optind], "export") && strcmp(argv[optind], "import"))
			|| t.prefix[0] == '\0' || t.prefix[strlen(t.prefix) - 1] != '/'){
		return usage(stderr, 2);
	}
	curl_global_init(CURL_GLOBAL_DEFAULT);
	if(cm_etcd_new(&eo, &t.e, &err) != CM_OK){
		fprintf(stderr, "certmgr_etcd: %s\n", err.msg);
		return 2;
	}
	rc = !strcmp(argv[optind], "export") ? export_store(&t, argv[optind + 1]) : import_store(&t, argv[optind + 1]);
	if(rc == 0){
		printf("%d record%s copied\n", t.copied, t.copied == 1 ? "" : "s");
	}
	cm_etcd_free(&t.e);
	curl_global_cleanup();
	return rc;
}
