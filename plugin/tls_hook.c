#include <errno.h>
#include <netinet/in.h>
#include <string.h>
#include <sys/socket.h>

#include <openssl/err.h>
#include <openssl/ssl.h>

#include "log.h"
#include "tls_hook.h"

/* The local port of the socket under ssl, or 0. */
static uint16_t local_port(SSL *ssl)
{
	struct sockaddr_storage ss;
	socklen_t len = sizeof(ss);
	int fd = SSL_get_fd(ssl);

	if(fd < 0 || getsockname(fd, (struct sockaddr *)&ss, &len) != 0){
		return 0;
	}
	if(ss.ss_family == AF_INET){
		return ntohs(((struct sockaddr_in *)&ss)->sin_port);
	}
	if(ss.ss_family == AF_INET6){
		return ntohs(((struct sockaddr_in6 *)&ss)->sin6_port);
	}
	return 0;
}

static int client_hello_cb(SSL *ssl, int *alert, void *arg)
{
	struct cm_state *st = arg;
	const struct cm_server_cert *cert;
	int slot;

	slot = cm_state_slot_for_port(st, local_port(ssl));
	if(slot < 0){
		/* A TLS listener certmgr was not asked to serve. */
		return SSL_CLIENT_HELLO_SUCCESS;
	}
	cert = cm_store_slot_default(st->store, (enum cm_slot_id)slot);
	ERR_clear_error();
	/* The SSL takes its own references: a change of default while this
	 * handshake runs frees nothing it holds. */
	if(SSL_use_cert_and_key(ssl, cert->leaf, cert->key, cert->extra, 1) != 1){
		cm_log_openssl(CM_LOG_ERR, "cannot set the server certificate for a handshake");
		*alert = SSL_AD_INTERNAL_ERROR;
		return SSL_CLIENT_HELLO_ERROR;
	}
	st->handshakes_served++;
	return SSL_CLIENT_HELLO_SUCCESS;
}

/* Runs inside every SSL_CTX_new of the process once installed: the
 * broker's listeners, but also libcurl's and libwebsockets' client
 * contexts, which must be left alone. Listeners are the server contexts. */
static void ctx_new_cb(void *parent, void *ptr, CRYPTO_EX_DATA *ad, int idx, long argl, void *argp)
{
	SSL_CTX *ctx = parent;
	struct cm_state *st = argp;

	(void)ptr;
	(void)ad;
	(void)idx;
	(void)argl;
	if(ctx == NULL || SSL_CTX_get_ssl_method(ctx) != TLS_server_method()){
		return;
	}
	SSL_CTX_set_client_hello_cb(ctx, client_hello_cb, st);
}

enum cm_rc cm_tls_hook_install(struct cm_state *st, struct cm_err *err)
{
	ERR_clear_error();
	st->ctx_ex_index = SSL_CTX_get_ex_new_index(0, st, ctx_new_cb, NULL, NULL);
	if(st->ctx_ex_index < 0){
		char detail[256];
		st->ctx_ex_index = -1;
		return cm_err_set(err, CM_ERR_CRYPTO, "cannot register the SSL_CTX hook (%s)", cm_log_openssl_drain(detail, sizeof(detail)));
	}
	return CM_OK;
}

void cm_tls_hook_remove(struct cm_state *st)
{
	if(st->ctx_ex_index >= 0){
		CRYPTO_free_ex_index(CRYPTO_EX_INDEX_SSL_CTX, st->ctx_ex_index);
		st->ctx_ex_index = -1;
	}
}
