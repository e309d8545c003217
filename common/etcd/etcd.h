#ifndef CM_ETCD_H
#define CM_ETCD_H
/* A client of etcd v3's JSON gateway (etcd 3.4: POST /v3/kv/range,
 * /v3/kv/put, /v3/kv/txn, /v3/watch, /v3/lease/grant, /v3/lease/keepalive;
 * keys and values are base64 in the JSON, 64-bit numbers are strings),
 * over libcurl. One client is used by one thread at a time; every call
 * blocks for at most the client's timeout, so none is ever made on the
 * broker thread (docs/FLEET.md).
 *
 * Several endpoints (members of one cluster) may be given: a call that
 * cannot reach one, or that the member answers with "no leader", moves on
 * to the next; the answer of any member is the cluster's. */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <cjson/cJSON.h>

#include "error.h"

/* etcd refuses a request over 1.5 MiB by default: nothing certmgr sends
 * is larger than this. */
#define CM_ETCD_MAX_REQUEST (1024 * 1024)
#define CM_ETCD_MAX_ENDPOINTS 16
#define CM_ETCD_MAX_KEY 512

struct cm_etcd_opts {
	const char *endpoints; /* "http://a:2379,https://b:2379" */
	const char *cafile, *certfile, *keyfile; /* NULL: none */
	long timeout_ms;       /* of each request; 0: 3000 */
};

struct cm_etcd;

struct cm_etcd_kv {
	char *key;             /* NUL-terminated */
	unsigned char *value;  /* NUL-terminated too (not counted in len) */
	size_t len;
	int64_t mod_revision, create_revision, lease;
};

struct cm_etcd_kvs {
	struct cm_etcd_kv *v;
	size_t n;
	int64_t revision;      /* of the cluster when it answered */
};

/* Checks the endpoint list (http:// or https:// URLs) and makes a client.
 * The caller frees *out with cm_etcd_free. */
CM_MUST_CHECK enum cm_rc cm_etcd_new(const struct cm_etcd_opts *o, struct cm_etcd **out, struct cm_err *err);
void cm_etcd_free(struct cm_etcd **e);
/* The endpoint the last call used. */
const char *cm_etcd_endpoint(const struct cm_etcd *e);
int cm_etcd_endpoint_count(const struct cm_etcd *e);

/* The keys from key up to end (excluded; NULL: key alone), sorted. */
CM_MUST_CHECK enum cm_rc cm_etcd_range(struct cm_etcd *e, const char *key, const char *end, struct cm_etcd_kvs *out, struct cm_err *err);
/* The same; keys_only: no values (len 0), for listing. */
CM_MUST_CHECK enum cm_rc cm_etcd_range_ex(struct cm_etcd *e, const char *key, const char *end, bool keys_only, struct cm_etcd_kvs *out,
		struct cm_err *err);
void cm_etcd_kvs_free(struct cm_etcd_kvs *k);

/* Puts value (len bytes) at key, bound to lease (0: none). */
CM_MUST_CHECK enum cm_rc cm_etcd_put(struct cm_etcd *e, const char *key, const void *value, size_t len, int64_t lease, struct cm_err *err);

/* One transaction: when key's mod_revision is rev (0: the key is absent),
 * puts value at key (value NULL: deletes it); otherwise changes nothing
 * and *won is false. *revision: the cluster's revision after it. */
CM_MUST_CHECK enum cm_rc cm_etcd_txn(struct cm_etcd *e, const char *key, int64_t rev, const void *value, size_t len, bool *won,
		int64_t *revision, struct cm_err *err);

/* Deletes the keys from key up to end (NULL: key alone). */
CM_MUST_CHECK enum cm_rc cm_etcd_delete(struct cm_etcd *e, const char *key, const char *end, struct cm_err *err);

CM_MUST_CHECK enum cm_rc cm_etcd_lease_grant(struct cm_etcd *e, int64_t ttl, int64_t *id, struct cm_err *err);
/* Renews lease id; *ttl 0 (or less): the lease is gone. */
CM_MUST_CHECK enum cm_rc cm_etcd_lease_keepalive(struct cm_etcd *e, int64_t id, int64_t *ttl, struct cm_err *err);

/* Called for each message of a watch with its "result"; false ends it. */
typedef bool (*cm_etcd_watch_fn)(void *ctx, const cJSON *result);
/* Polled about every 100 ms and on each message; true ends the watch. */
typedef bool (*cm_etcd_stop_fn)(void *ctx);

/* Watches key..end from revision start (0: from now) and calls fn for
 * each message until fn or stop says to end (CM_OK), or the connection
 * fails (CM_ERR_IO: the caller reconnects from the revision it had). */
CM_MUST_CHECK enum cm_rc cm_etcd_watch(struct cm_etcd *e, const char *key, const char *end, int64_t start, cm_etcd_watch_fn fn,
		cm_etcd_stop_fn stop, void *ctx, struct cm_err *err);

/* The key just after every key that starts with prefix, into buf. */
CM_MUST_CHECK enum cm_rc cm_etcd_prefix_end(const char *prefix, char *buf, size_t len, struct cm_err *err);

/* Reads one "kv" object of a range or watch answer into out (freed with
 * cm_etcd_kv_clear). */
CM_MUST_CHECK enum cm_rc cm_etcd_kv_parse(const cJSON *kv, struct cm_etcd_kv *out, struct cm_err *err);
void cm_etcd_kv_clear(struct cm_etcd_kv *kv);
/* A 64-bit number of the gateway's JSON (a string, or absent: 0). */
int64_t cm_etcd_number(const cJSON *obj, const char *name);

/* Base64 (RFC 4648, padded). encode: a NUL-terminated string the caller
 * frees. decode: false on bad input; *out NUL-terminated, freed by the
 * caller. */
char *cm_b64_encode(const void *data, size_t len);
CM_MUST_CHECK bool cm_b64_decode(const char *text, size_t tlen, unsigned char **out, size_t *len);

#endif
