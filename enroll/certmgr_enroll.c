/* certmgr_enroll: the device side of certmgr's enrollment (docs/API.md,
 * "Enrollment"). Run from a timer, it gets the device a certificate with
 * its claim certificate, waits for an operator's approval if the tenant
 * asks for one, and renews the certificate once it is inside the renewal
 * window (asking with the claim certificate again when the renewal
 * fails: a revoked certificate); otherwise it does nothing. Files are written atomically (a
 * temporary file, fsync, rename): the key, 0600, before the certificate.
 *
 * Exit codes: 0 the certificate is there and valid (got, renewed, or not
 * due), 1 refused (the broker's reason on stderr), 2 bad usage or files,
 * 3 pending: the request waits for an operator (run again later), 4 no
 * answer or no connection. */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <cjson/cJSON.h>
#include <openssl/err.h>
#include <openssl/rand.h>
#include <openssl/ssl.h>

#include <mosquitto.h>
#include <mqtt_protocol.h>

#include "fsutil.h"
#include "identity.h"
#include "pki.h"
#include "tlsclient.h"

#define REQUEST_TOPIC "$CONTROL/certmgr/enroll/v1"
#define RESPONSE_TOPIC "$CONTROL/certmgr/enroll/v1/response"

enum {
	EXIT_DONE = 0,
	EXIT_REFUSED = 1,
	EXIT_USAGE = 2,
	EXIT_PENDING = 3,
	EXIT_NO_ANSWER = 4,
};

struct opts {
	const char *host, *cafile, *claim_cert, *claim_key, *identity, *org, *key, *cert, *clientid;
	int port;
	bool insecure;
	struct cm_keyspec spec;
	char curve[8];
	double renew_within_days;
	int wait;
};

struct session {
	const struct opts *o;
	char *request;
	char corr[33];
	bool subscribed, done;
	cJSON *answer; /* the last answer: certificate, pending or error */
};

static void usage(FILE *f)
{
	fprintf(f,
		"usage: certmgr_enroll -h HOST [-p PORT] --cafile FILE --id d:TYPE:ID --org ORG --key FILE --cert FILE\n"
		"                      --claim-cert FILE --claim-key FILE [options]\n"
		"  Gets the device a certificate from certmgr with its claim certificate, or\n"
		"  renews it (connected as d:ORG:TYPE:ID) once it is inside the renewal window.\n"
		"  --key-type ec|rsa  --key-curve P-256|P-384  --key-bits 2048|3072|4096\n"
		"                     the key made for a request (default EC P-256)\n"
		"  --renew-within-days N  renew that many days before notAfter (default 30)\n"
		"  --client-id ID     the claim connection's client id (default: enroll-<random>)\n"
		"  --wait SECONDS     how long to wait for an answer or an approval (default 10)\n"
		"  --insecure         do not check the broker's host name\n"
		"Exit: 0 certificate there, 1 refused, 2 usage, 3 pending approval, 4 no answer.\n");
}

static int parse_key_type(struct opts *o, const char *type)
{
	if(!strcmp(type, "ec")){
		o->spec.type = CM_KEY_EC;
	}else if(!strcmp(type, "rsa")){
		o->spec.type = CM_KEY_RSA;
	}else{
		return -1;
	}
	return 0;
}

static int parse_args(int argc, char **argv, struct opts *o)
{
	static const struct option longs[] = {
		{"cafile", required_argument, NULL, 'A'}, {"claim-cert", required_argument, NULL, 'C'},
		{"claim-key", required_argument, NULL, 'K'}, {"id", required_argument, NULL, 'I'}, {"org", required_argument, NULL, 'O'},
		{"key", required_argument, NULL, 'k'}, {"cert", required_argument, NULL, 'c'}, {"client-id", required_argument, NULL, 'i'},
		{"key-type", required_argument, NULL, 't'}, {"key-curve", required_argument, NULL, 'v'},
		{"key-bits", required_argument, NULL, 'b'}, {"renew-within-days", required_argument, NULL, 'r'},
		{"wait", required_argument, NULL, 'w'}, {"insecure", no_argument, NULL, 'S'}, {"help", no_argument, NULL, 'H'},
		{NULL, 0, NULL, 0},
	};
	int c;

	while((c = getopt_long(argc, argv, "h:p:", longs, NULL)) != -1){
		switch(c){
			case 'h': o->host = optarg; break;
			case 'p': o->port = (int)strtol(optarg, NULL, 10); break;
			case 'A': o->cafile = optarg; break;
			case 'C': o->claim_cert = optarg; break;
			case 'K': o->claim_key = optarg; break;
			case 'I': o->identity = optarg; break;
			case 'O': o->org = optarg; break;
			case 'k': o->key = optarg; break;
			case 'c': o->cert = optarg; break;
			case 'i': o->clientid = optarg; break;
			case 't': if(parse_key_type(o, optarg)) return -1; break;
			case 'v': snprintf(o->curve, sizeof(o->curve), "%s", optarg); break;
			case 'b': o->spec.bits = (int)strtol(optarg, NULL, 10); break;
			case 'r': o->renew_within_days = strtod(optarg, NULL); break;
			case 'w': o->wait = (int)strtol(optarg, NULL, 10); break;
			case 'S': o->insecure = true; break;
			case 'H': usage(stdout); exit(EXIT_DONE);
			default: return -1;
		}
	}
	if(optind != argc || !o->host || !o->cafile || !o->identity || !o->org || !o->key || !o->cert || o->port <= 0 || o->port > 65535
			|| o->wait < 1 || o->renew_within_days < 0){
		return -1;
	}
	return 0;
}

/* TLS with cert and key as the client's; the broker verified against the
 * CA file (which may hold the broker's own certificate: partial chains). */
static SSL_CTX *tls_context(const struct opts *o, const char *cert, const char *key)
{
	struct cm_err err;
	SSL_CTX *ctx = cm_tls_client_ctx(o->cafile, cert, key, o->insecure ? NULL : o->host, &err);

	if(ctx == NULL){
		fprintf(stderr, "certmgr_enroll: %s\n", err.msg);
	}
	return ctx;
}

static void on_connect(struct mosquitto *mosq, void *obj, int rc, int flags, const mosquitto_property *props)
{
	struct session *s = obj;

	(void)flags;
	(void)props;
	if(rc != 0){
		fprintf(stderr, "certmgr_enroll: connection refused: %s\n", mosquitto_reason_string(rc));
		s->done = true;
		return;
	}
	mosquitto_subscribe_v5(mosq, NULL, RESPONSE_TOPIC, 1, 0, NULL);
}

static void on_subscribe(struct mosquitto *mosq, void *obj, int mid, int qos_count, const int *granted, const mosquitto_property *props)
{
	struct session *s = obj;
	mosquitto_property *out = NULL;

	(void)mid;
	(void)props;
	if(qos_count < 1 || granted[0] >= 0x80){
		fprintf(stderr, "certmgr_enroll: the broker refused the subscription to %s\n", RESPONSE_TOPIC);
		s->done = true;
		return;
	}
	s->subscribed = true;
	mosquitto_property_add_binary(&out, MQTT_PROP_CORRELATION_DATA, s->corr, (uint16_t)strlen(s->corr));
	mosquitto_property_add_string(&out, MQTT_PROP_RESPONSE_TOPIC, RESPONSE_TOPIC);
	mosquitto_publish_v5(mosq, NULL, REQUEST_TOPIC, (int)strlen(s->request), s->request, 1, false, out);
	mosquitto_property_free_all(&out);
}

/* An answer of ours: the payload's correlationData is the request's. */
static void on_message(struct mosquitto *mosq, void *obj, const struct mosquitto_message *msg, const mosquitto_property *props)
{
	struct session *s = obj;
	cJSON *root = cJSON_ParseWithLength(msg->payload, (size_t)msg->payloadlen);
	const cJSON *corr = cJSON_GetObjectItemCaseSensitive(root, "correlationData");

	(void)mosq;
	(void)props;
	if(!cJSON_IsObject(root) || !cJSON_IsString(corr) || strcmp(corr->valuestring, s->corr)){
		cJSON_Delete(root);
		return;
	}
	cJSON_Delete(s->answer);
	s->answer = root;
	/* Pending: the decision may still come while we wait. */
	if(!cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(root, "pending"))){
		s->done = true;
	}
}

/* Connects with cert/key as clientid, sends the request and waits up to
 * o->wait seconds for the answer (or the approval). */
static int exchange(const struct opts *o, struct session *s, const char *clientid, const char *cert, const char *key)
{
	struct mosquitto *mosq = mosquitto_new(clientid, true, s);
	SSL_CTX *ctx;
	time_t deadline = time(NULL) + o->wait;
	int rc;

	if(mosq == NULL || (ctx = tls_context(o, cert, key)) == NULL){
		mosquitto_destroy(mosq);
		return EXIT_USAGE;
	}
	mosquitto_int_option(mosq, MOSQ_OPT_PROTOCOL_VERSION, MQTT_PROTOCOL_V5);
	mosquitto_int_option(mosq, MOSQ_OPT_SSL_CTX_WITH_DEFAULTS, 0);
	rc = mosquitto_void_option(mosq, MOSQ_OPT_SSL_CTX, ctx);
	SSL_CTX_free(ctx);
	mosquitto_connect_v5_callback_set(mosq, on_connect);
	mosquitto_subscribe_v5_callback_set(mosq, on_subscribe);
	mosquitto_message_v5_callback_set(mosq, on_message);
	if(rc == MOSQ_ERR_SUCCESS){
		rc = mosquitto_connect(mosq, o->host, o->port, 30);
	}
	if(rc != MOSQ_ERR_SUCCESS){
		fprintf(stderr, "certmgr_enroll: cannot connect to %s:%d: %s\n", o->host, o->port,
				rc == MOSQ_ERR_ERRNO ? strerror(errno) : mosquitto_strerror(rc));
		mosquitto_destroy(mosq);
		return EXIT_NO_ANSWER;
	}
	while(!s->done && time(NULL) < deadline && mosquitto_loop(mosq, 100, 1) == MOSQ_ERR_SUCCESS){
	}
	mosquitto_disconnect(mosq);
	mosquitto_destroy(mosq);
	return EXIT_DONE;
}

/* The request's payload for a CSR of key. */
static char *make_request(const struct opts *o, EVP_PKEY *key, const char *corr)
{
	struct cm_subject sub = {o->identity, NULL, NULL, NULL, NULL, NULL, NULL};
	X509_REQ *req = NULL;
	char *pem = NULL, *text = NULL;
	cJSON *root = NULL;
	struct cm_err err;

	if(cm_pki_make_csr(key, &sub, NULL, 0, &req, &err) != CM_OK || cm_pki_csr_to_pem(req, &pem, &err) != CM_OK){
		fprintf(stderr, "certmgr_enroll: cannot make the CSR: %s\n", err.msg);
	}else if((root = cJSON_CreateObject()) != NULL && cJSON_AddStringToObject(root, "csr", pem)
			&& cJSON_AddStringToObject(root, "correlationData", corr)){
		text = cJSON_PrintUnformatted(root);
	}
	cJSON_Delete(root);
	free(pem);
	X509_REQ_free(req);
	return text;
}

static bool exists(const char *path)
{
	struct stat st;

	return stat(path, &st) == 0;
}

static int write_key(const char *path, EVP_PKEY *key)
{
	char *pem = NULL;
	size_t len = 0;
	struct cm_err err;
	int rc = EXIT_DONE;

	if(cm_pki_key_to_pem(key, &pem, &len, &err) != CM_OK || cm_fs_write_atomic(path, pem, len, 0600, &err) != CM_OK){
		fprintf(stderr, "certmgr_enroll: cannot write the key %s: %s\n", path, err.msg);
		rc = EXIT_USAGE;
	}
	cm_pki_free_secret(pem, len);
	return rc;
}

/* The key of a file, or NULL (err says why). */
static EVP_PKEY *read_key(const char *path, struct cm_err *err)
{
	char *text = NULL;
	size_t len = 0;
	EVP_PKEY *key = NULL;

	if(cm_fs_read_file(path, 1024 * 1024, &text, &len, err) == CM_OK && cm_pki_parse_key_pem(text, len, &key, err) != CM_OK){
		key = NULL;
	}
	cm_pki_free_secret(text, len);
	return key;
}

/* The notAfter of the certificate file, 0 when there is none to use. */
static time_t cert_not_after(const char *path)
{
	char *text = NULL;
	size_t len = 0;
	X509 *leaf = NULL;
	STACK_OF(X509) *extra = NULL;
	struct cm_err err;
	time_t t = 0;

	if(cm_fs_read_file(path, 1024 * 1024, &text, &len, &err) == CM_OK && cm_pki_parse_chain_pem(text, len, &leaf, &extra, &err) == CM_OK){
		t = cm_pki_not_after(leaf);
	}
	X509_free(leaf);
	sk_X509_pop_free(extra, X509_free);
	free(text);
	return t;
}

/* What the answer says, and the files it brings: the certificate must be
 * for key; key is written first (when write_key_too), then the chain. */
static int take_answer(const struct opts *o, const struct session *s, EVP_PKEY *key, bool write_key_too)
{
	const cJSON *cert = cJSON_GetObjectItemCaseSensitive(s->answer, "certificate");
	const cJSON *error = cJSON_GetObjectItemCaseSensitive(s->answer, "error");
	X509 *leaf = NULL;
	STACK_OF(X509) *extra = NULL;
	struct cm_err err;
	int rc;

	if(s->answer == NULL){
		fprintf(stderr, "certmgr_enroll: no answer from the broker within %d s\n", o->wait);
		return EXIT_NO_ANSWER;
	}
	if(cJSON_IsString(error)){
		fprintf(stderr, "certmgr_enroll: refused: %s\n", error->valuestring);
		return EXIT_REFUSED;
	}
	if(!cJSON_IsString(cert)){
		printf("pending: the request for %s waits for an operator's approval; run again later\n", o->identity);
		return EXIT_PENDING;
	}
	if(cm_pki_parse_chain_pem(cert->valuestring, strlen(cert->valuestring), &leaf, &extra, &err) != CM_OK || !cm_pki_key_matches(leaf, key)){
		fprintf(stderr, "certmgr_enroll: the broker's answer is not a certificate for our key\n");
		rc = EXIT_REFUSED;
	}else if((rc = write_key_too ? write_key(o->key, key) : EXIT_DONE) == EXIT_DONE
			&& cm_fs_write_atomic(o->cert, cert->valuestring, strlen(cert->valuestring), 0644, &err) != CM_OK){
		fprintf(stderr, "certmgr_enroll: cannot write the certificate %s: %s\n", o->cert, err.msg);
		rc = EXIT_USAGE;
	}
	if(rc == EXIT_DONE){
		char when[32];
		time_t t = cm_pki_not_after(leaf);
		strftime(when, sizeof(when), "%Y-%m-%dT%H:%M:%SZ", gmtime(&t));
		printf("certificate for %s written to %s, valid until %s\n", o->identity, o->cert, when);
	}
	X509_free(leaf);
	sk_X509_pop_free(extra, X509_free);
	return rc;
}

static void random_hex(char *out, size_t bytes)
{
	unsigned char r[16];

	if(bytes > sizeof(r) || RAND_bytes(r, (int)bytes) != 1){
		memset(r, 0, sizeof(r));
	}
	for(size_t i = 0; i < bytes; i++){
		snprintf(out + 2 * i, 3, "%02x", r[i]);
	}
}

/* One request with key, over a connection as clientid with cert/key. */
static int request(const struct opts *o, EVP_PKEY *key, const char *clientid, const char *cert, const char *ckey, bool renewal)
{
	struct session s = {o, NULL, "", false, false, NULL};
	int rc;

	random_hex(s.corr, 16);
	if((s.request = make_request(o, key, s.corr)) == NULL){
		return EXIT_USAGE;
	}
	rc = exchange(o, &s, clientid, cert, ckey);
	if(rc == EXIT_DONE){
		rc = take_answer(o, &s, key, renewal);
	}
	free(s.request);
	cJSON_Delete(s.answer);
	return rc;
}

/* Renewal: a new key, asked for over the device's own connection. */
static int renew(const struct opts *o)
{
	char clientid[2 + 3 * CM_IDENT_PART_MAX + 4];
	EVP_PKEY *key = NULL;
	struct cm_err err;
	int rc;

	snprintf(clientid, sizeof(clientid), "%c:%s:%s", o->identity[0], o->org, o->identity + 2);
	if(cm_pki_generate_key(&o->spec, &key, &err) != CM_OK){
		fprintf(stderr, "certmgr_enroll: cannot make a key: %s\n", err.msg);
		return EXIT_USAGE;
	}
	rc = request(o, key, clientid, o->cert, o->key, true);
	EVP_PKEY_free(key);
	return rc;
}

/* A first certificate with the claim certificate. The key is made once
 * and kept: asked again (an approval pending), the same key is the same
 * request. */
static int claim(const struct opts *o)
{
	char clientid[64];
	EVP_PKEY *key = NULL;
	struct cm_err err;
	int rc;

	if(o->claim_cert == NULL || o->claim_key == NULL){
		fprintf(stderr, "certmgr_enroll: no valid certificate in %s: --claim-cert and --claim-key are needed to get one\n", o->cert);
		return EXIT_USAGE;
	}
	if(exists(o->key)){
		if((key = read_key(o->key, &err)) == NULL){
			fprintf(stderr, "certmgr_enroll: cannot read the key %s: %s\n", o->key, err.msg);
			return EXIT_USAGE;
		}
	}else if(cm_pki_generate_key(&o->spec, &key, &err) != CM_OK || write_key(o->key, key) != EXIT_DONE){
		fprintf(stderr, "certmgr_enroll: cannot make the key: %s\n", err.msg);
		EVP_PKEY_free(key);
		return EXIT_USAGE;
	}
	if(o->clientid){
		snprintf(clientid, sizeof(clientid), "%s", o->clientid);
	}else{
		snprintf(clientid, sizeof(clientid), "enroll-");
		random_hex(clientid + 7, 8);
	}
	rc = request(o, key, clientid, o->claim_cert, o->claim_key, false);
	EVP_PKEY_free(key);
	return rc;
}

int main(int argc, char **argv)
{
	struct opts o = {.port = 8883, .renew_within_days = 30, .wait = 10};
	time_t not_after, now = time(NULL), opens;
	int rc;

	o.spec.type = CM_KEY_EC;
	o.spec.bits = 2048;
	snprintf(o.curve, sizeof(o.curve), "P-256");
	if(parse_args(argc, argv, &o) != 0 || (o.identity[0] != 'd' && o.identity[0] != 'g') || o.identity[1] != ':'
			|| !cm_identity_part_valid(o.org)){
		usage(stderr);
		return EXIT_USAGE;
	}
	o.spec.curve = o.curve;
	not_after = exists(o.key) ? cert_not_after(o.cert) : 0;
	opens = not_after - (time_t)(o.renew_within_days * 86400);
	mosquitto_lib_init();
	if(not_after > now && now < opens){
		char when[32];
		strftime(when, sizeof(when), "%Y-%m-%dT%H:%M:%SZ", gmtime(&opens));
		printf("certificate %s is valid; renewal opens at %s\n", o.cert, when);
		rc = EXIT_DONE;
	}else if(not_after > now){
		rc = renew(&o);
		/* Revoked, or its renewal's answer lost (a certificate renews
		 * once): the claim certificate gets the device a new one. */
		if((rc == EXIT_REFUSED || rc == EXIT_NO_ANSWER) && o.claim_cert && o.claim_key){
			fprintf(stderr, "certmgr_enroll: renewal failed; asking with the claim certificate\n");
			rc = claim(&o);
		}
	}else{
		rc = claim(&o);
	}
	mosquitto_lib_cleanup();
	return rc;
}
