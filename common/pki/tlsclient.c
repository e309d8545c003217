/* The TLS client context of certmgr's own tools (certmgr_ctrl,
 * certmgr_enroll). */
#include <arpa/inet.h>
#include <stdbool.h>

#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include "tlsclient.h"

static SSL_CTX *fail(SSL_CTX *ctx, const char *what, const char *path, struct cm_err *err)
{
	char buf[256];

	ERR_error_string_n(ERR_get_error(), buf, sizeof(buf));
	ERR_clear_error();
	SSL_CTX_free(ctx);
	cm_err_set(err, CM_ERR_CRYPTO, "%s %s: %s", what, path, buf);
	return NULL;
}

SSL_CTX *cm_tls_client_ctx(const char *cafile, const char *cert, const char *key, const char *host, struct cm_err *err)
{
	SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());
	unsigned char ip[16];

	if(ctx == NULL || !SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION)
			|| !X509_STORE_set_flags(SSL_CTX_get_cert_store(ctx), X509_V_FLAG_PARTIAL_CHAIN)){
		return fail(ctx, "cannot set up", "TLS", err);
	}
	if(SSL_CTX_load_verify_locations(ctx, cafile, NULL) != 1){
		return fail(ctx, "cannot read the CA file", cafile, err);
	}
	if(cert && SSL_CTX_use_certificate_chain_file(ctx, cert) != 1){
		return fail(ctx, "cannot read the certificate", cert, err);
	}
	if(cert && SSL_CTX_use_PrivateKey_file(ctx, key ? key : cert, SSL_FILETYPE_PEM) != 1){
		return fail(ctx, "cannot read the key", key ? key : cert, err);
	}
	SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, NULL);
	if(host){
		X509_VERIFY_PARAM *param = SSL_CTX_get0_param(ctx);
		bool is_ip = inet_pton(AF_INET, host, ip) == 1 || inet_pton(AF_INET6, host, ip) == 1;
		X509_VERIFY_PARAM_set_hostflags(param, X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS);
		if(!(is_ip ? X509_VERIFY_PARAM_set1_ip_asc(param, host) : X509_VERIFY_PARAM_set1_host(param, host, 0))){
			return fail(ctx, "cannot check the name", host, err);
		}
	}
	return ctx;
}
