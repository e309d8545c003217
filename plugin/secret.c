/* Slots served from a Kubernetes TLS Secret's directory (secret.h). */
#define _GNU_SOURCE
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/err.h>

#include "fsutil.h"
#include "log.h"
#include "pki.h"
#include "secret.h"
#include "store.h"

#define SECRET_FILE_MAX (256 * 1024)

/* What the directory holds now, in a few bytes: the ..data link's target
 * and each file's identity (the kubelet's swap changes all of them). */
static void signature(const char *dir, char *out, size_t len)
{
	static const char *const names[] = {"tls.crt", "tls.key", "ca.crt"};
	char path[PATH_MAX], target[256];
	size_t used = 0;
	ssize_t n;

	out[0] = '\0';
	if(cm_fs_path(path, sizeof(path), NULL, "%s/..data", dir) == CM_OK && (n = readlink(path, target, sizeof(target) - 1)) > 0){
		target[n] = '\0';
		used += (size_t)snprintf(out, len, "%s;", target);
	}
	for(size_t i = 0; i < sizeof(names) / sizeof(names[0]) && used < len; i++){
		struct stat st;
		if(cm_fs_path(path, sizeof(path), NULL, "%s/%s", dir, names[i]) == CM_OK && stat(path, &st) == 0){
			used += (size_t)snprintf(out + used, len - used, "%llu:%lld.%ld:%lld;", (unsigned long long)st.st_ino,
					(long long)st.st_mtim.tv_sec, st.st_mtim.tv_nsec, (long long)st.st_size);
		}else{
			used += (size_t)snprintf(out + used, len - used, "-;");
		}
	}
}

static enum cm_rc read_in(const char *dir, const char *name, bool required, char **text, size_t *len, struct cm_err *err)
{
	char path[PATH_MAX];
	enum cm_rc rc;

	*text = NULL;
	*len = 0;
	if(cm_fs_path(path, sizeof(path), err, "%s/%s", dir, name) != CM_OK){
		return CM_ERR_INVAL;
	}
	rc = cm_fs_read_file(path, SECRET_FILE_MAX, text, len, err);
	if(rc != CM_OK && !required && errno == ENOENT){
		return CM_OK;
	}
	return rc;
}

/* ca.crt's certificates that are not self-signed join the chain sent. */
static void add_ca_file(const char *text, size_t len, STACK_OF(X509) *extra)
{
	X509 *first = NULL;
	STACK_OF(X509) *more = NULL;
	struct cm_err err;

	if(text == NULL || cm_pki_parse_chain_pem(text, len, &first, &more, &err) != CM_OK){
		return;
	}
	if(more == NULL || sk_X509_insert(more, first, 0) == 0){
		X509_free(first);
	}
	for(int i = 0; more && i < sk_X509_num(more); i++){
		X509 *c = sk_X509_value(more, i);
		if(X509_check_issued(c, c) != X509_V_OK && X509_up_ref(c) == 1 && sk_X509_push(extra, c) == 0){
			X509_free(c);
		}
	}
	sk_X509_pop_free(more, X509_free);
	ERR_clear_error();
}

/* The pair in dir, checked: a key that is the certificate's, valid now. */
static enum cm_rc load_pair(const char *dir, struct cm_server_cert **out, struct cm_err *err)
{
	char *crt = NULL, *key_pem = NULL, *ca = NULL;
	size_t crt_len = 0, key_len = 0, ca_len = 0;
	X509 *leaf = NULL;
	STACK_OF(X509) *extra = NULL;
	EVP_PKEY *key = NULL;
	time_t now = time(NULL);
	enum cm_rc rc;

	*out = NULL;
	rc = read_in(dir, "tls.crt", true, &crt, &crt_len, err);
	if(rc == CM_OK){
		rc = read_in(dir, "tls.key", true, &key_pem, &key_len, err);
	}
	if(rc == CM_OK){
		rc = read_in(dir, "ca.crt", false, &ca, &ca_len, err);
	}
	if(rc == CM_OK){
		rc = cm_pki_parse_chain_pem(crt, crt_len, &leaf, &extra, err);
	}
	if(rc == CM_OK){
		rc = cm_pki_parse_key_any(key_pem, key_len, NULL, &key, err);
	}
	if(rc == CM_OK && !cm_pki_key_matches(leaf, key)){
		rc = cm_err_set(err, CM_ERR_INVAL, "tls.key is not the key of tls.crt");
	}
	if(rc == CM_OK && (X509_cmp_time(X509_get0_notAfter(leaf), &now) <= 0 || X509_cmp_time(X509_get0_notBefore(leaf), &now) > 0)){
		rc = cm_err_set(err, CM_ERR_INVAL, "tls.crt is not valid now");
	}
	if(rc == CM_OK){
		add_ca_file(ca, ca_len, extra);
		rc = cm_server_cert_new(leaf, extra, key, "from a Secret directory", false, out, err);
	}
	free(crt);
	free(ca);
	if(key_pem){
		cm_pki_free_secret(key_pem, key_len);
	}
	X509_free(leaf);
	sk_X509_pop_free(extra, X509_free);
	EVP_PKEY_free(key);
	return rc;
}

static enum cm_rc reload(struct cm_state *st, enum cm_slot_id slot, const char *sig, struct cm_err *err)
{
	struct cm_secret_slot *s = &st->secret[slot];
	struct cm_server_cert *c = NULL;
	enum cm_rc rc = load_pair(s->dir, &c, err);

	snprintf(s->seen, sizeof(s->seen), "%s", sig);
	if(rc != CM_OK){
		return rc;
	}
	cm_store_set_secret_cert(st->store, slot, c);
	cm_log(CM_LOG_NOTICE, "slot %s serves %s from %s", cm_slot_name(slot), c->id, s->dir);
	return CM_OK;
}

enum cm_rc cm_secret_start(struct cm_state *st, struct cm_err *err)
{
	char sig[sizeof(st->secret[0].seen)];

	for(int i = 0; i < CM_SLOT_COUNT; i++){
		if(st->secret[i].dir == NULL){
			continue;
		}
		signature(st->secret[i].dir, sig, sizeof(sig));
		if(reload(st, (enum cm_slot_id)i, sig, err) != CM_OK){
			char why[sizeof(err->msg)];
			snprintf(why, sizeof(why), "%s", err->msg);
			return cm_err_set(err, CM_ERR_INVAL, "plugin_opt_%s_secret_dir %s: %s", cm_slot_name((enum cm_slot_id)i), st->secret[i].dir, why);
		}
	}
	return CM_OK;
}

void cm_secret_check(struct cm_state *st, enum cm_slot_id slot)
{
	struct cm_secret_slot *s = &st->secret[slot];
	char sig[sizeof(s->seen)];
	struct cm_err err;

	if(s->dir == NULL){
		return;
	}
	signature(s->dir, sig, sizeof(sig));
	if(strcmp(sig, s->seen) && reload(st, slot, sig, &err) != CM_OK){
		cm_log(CM_LOG_WARNING, "slot %s: the Secret in %s does not load (%s); the certificate before it goes on serving",
				cm_slot_name(slot), s->dir, err.msg);
	}
}

void cm_secret_tick(struct cm_state *st, time_t now)
{
	for(int i = 0; i < CM_SLOT_COUNT; i++){
		if(st->secret[i].dir && st->secret[i].checked != now){
			st->secret[i].checked = now;
			cm_secret_check(st, (enum cm_slot_id)i);
		}
	}
}
