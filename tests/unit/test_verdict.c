/* The trust verdict (plugin/tls/verdict.c) on tenants built by the store:
 * registered hierarchies, pins, revocation policies, deactivated CAs. */
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/x509v3.h>

#include "pki.h"
#include "store.h"
#include "store-int.h" /* white-box: the test reads the store's fields */
#include "testutil.h"
#include "verdict.h"

static char *dir;
static struct cm_store *store;
static X509 *root, *inter, *leaf, *pin, *forged;
static EVP_PKEY *root_key, *inter_key, *leaf_key, *pin_key, *forged_key;

static void add_ext(X509 *cert, X509 *issuer, int nid, const char *value)
{
	X509V3_CTX ctx;
	X509_EXTENSION *ext;

	X509V3_set_ctx(&ctx, issuer, cert, NULL, NULL, 0);
	ext = X509V3_EXT_conf_nid(NULL, &ctx, nid, value);
	assert_non_null(ext);
	assert_true(X509_add_ext(cert, ext, -1));
	X509_EXTENSION_free(ext);
}

/* A certificate for a new EC key, signed by issuer (NULL: itself). kind:
 * "ca", "leaf", or "v1" (no extensions at all). */
static X509 *make(const char *cn, X509 *issuer, EVP_PKEY *issuer_key, const char *kind, long serial, EVP_PKEY **key)
{
	X509 *c = X509_new();
	X509_NAME *name = X509_NAME_new();

	*key = EVP_EC_gen("P-256");
	assert_non_null(*key);
	X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC, (const unsigned char *)cn, -1, -1, 0);
	X509_set_version(c, strcmp(kind, "v1") ? 2 : 0);
	ASN1_INTEGER_set(X509_get_serialNumber(c), serial);
	X509_set_subject_name(c, name);
	X509_set_issuer_name(c, issuer ? X509_get_subject_name(issuer) : name);
	X509_gmtime_adj(X509_getm_notBefore(c), -3600);
	X509_gmtime_adj(X509_getm_notAfter(c), 86400);
	X509_set_pubkey(c, *key);
	if(!strcmp(kind, "ca")){
		add_ext(c, issuer ? issuer : c, NID_basic_constraints, "critical,CA:TRUE");
		add_ext(c, issuer ? issuer : c, NID_key_usage, "critical,keyCertSign,cRLSign");
		add_ext(c, issuer ? issuer : c, NID_subject_key_identifier, "hash");
	}else if(!strcmp(kind, "leaf")){
		add_ext(c, issuer ? issuer : c, NID_basic_constraints, "CA:FALSE");
		add_ext(c, issuer ? issuer : c, NID_ext_key_usage, "clientAuth");
	}
	assert_true(X509_sign(c, issuer_key ? issuer_key : *key, EVP_sha256()) > 0);
	X509_NAME_free(name);
	return c;
}

/* A CRL of issuer revoking serial (0: none), as cm_crl_load takes it. */
static struct cm_crl *make_crl(X509 *issuer, EVP_PKEY *key, long serial, long number)
{
	X509_CRL *crl = X509_CRL_new();
	ASN1_TIME *t = ASN1_TIME_new();
	ASN1_INTEGER *n = ASN1_INTEGER_new();
	unsigned char *der = NULL;
	struct cm_crl *out = NULL;
	struct cm_err err;
	int len;

	X509_CRL_set_version(crl, 1);
	X509_CRL_set_issuer_name(crl, X509_get_subject_name(issuer));
	X509_gmtime_adj(t, 3600);
	X509_CRL_set1_nextUpdate(crl, t);
	X509_gmtime_adj(t, -60);
	X509_CRL_set1_lastUpdate(crl, t);
	ASN1_INTEGER_set(n, number);
	X509_CRL_add1_ext_i2d(crl, NID_crl_number, n, 0, 0);
	if(serial){
		X509_REVOKED *r = X509_REVOKED_new();
		ASN1_INTEGER *s = ASN1_INTEGER_new();
		ASN1_INTEGER_set(s, serial);
		X509_REVOKED_set_serialNumber(r, s);
		X509_REVOKED_set_revocationDate(r, t);
		X509_CRL_add0_revoked(crl, r);
		ASN1_INTEGER_free(s);
	}
	X509_CRL_sign(crl, key, EVP_sha256());
	len = i2d_X509_CRL(crl, &der);
	assert_true(len > 0);
	assert_int_equal(cm_crl_load(der, (size_t)len, 1 << 20, issuer, time(NULL), &out, &err), CM_OK);
	OPENSSL_free(der);
	ASN1_INTEGER_free(n);
	ASN1_TIME_free(t);
	X509_CRL_free(crl);
	return out;
}

static int setup(void **state)
{
	char *sdir;
	bool created;
	struct cm_err err;

	(void)state;
	dir = tu_mkdtemp();
	if(asprintf(&sdir, "%s/s", dir) < 0 || cm_store_open(sdir, "h.example", &store, &created, &err) != CM_OK){
		return -1;
	}
	free(sdir);
	root = make("Root", NULL, NULL, "ca", 1, &root_key);
	inter = make("Intermediate", root, root_key, "ca", 2, &inter_key);
	leaf = make("d:sensor:one", inter, inter_key, "leaf", 3, &leaf_key);
	pin = make("d:sensor:pin", NULL, NULL, "v1", 4, &pin_key);
	forged = make("d:sensor:victim", pin, pin_key, "leaf", 5, &forged_key);
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	cm_store_free(&store);
	tu_rmtree(dir);
	free(dir);
	X509_free(root);
	X509_free(inter);
	X509_free(leaf);
	X509_free(pin);
	X509_free(forged);
	EVP_PKEY_free(root_key);
	EVP_PKEY_free(inter_key);
	EVP_PKEY_free(leaf_key);
	EVP_PKEY_free(pin_key);
	EVP_PKEY_free(forged_key);
	return 0;
}

static struct cm_ca *entry(struct cm_tenant *t, X509 *cert, bool pinned)
{
	struct cm_ca *ca = calloc(1, sizeof(*ca)), **tail;
	struct cm_err err;

	assert_non_null(ca);
	assert_int_equal(cm_pki_cert_id(cert, ca->id, &err), CM_OK);
	ca->description = strdup("");
	ca->pinned = pinned;
	ca->active = true;
	X509_up_ref(cert);
	ca->cert = cert;
	for(tail = &t->cas; *tail; tail = &(*tail)->next){
	}
	*tail = ca;
	return ca;
}

/* Tenant "t" in the store with the given entries (built by the store). */
static const struct cm_tenant *commit(struct cm_tenant *t)
{
	struct cm_tenant *old = NULL;
	struct cm_err err;

	if(cm_store_put_tenant(store, t, &old, &err) != CM_OK){
		fail_msg("put: %s", err.msg);
	}
	cm_tenant_free(&old);
	return cm_store_find_tenant(store, "t");
}

static struct cm_tenant *fresh(enum cm_revocation rev)
{
	struct cm_tenant *t = cm_tenant_new("t");
	const char *host[] = {"t.example"};

	assert_non_null(t);
	assert_int_equal(cm_strlist_set(&t->hostnames, host, 1), CM_OK);
	t->revocation = rev;
	return t;
}

static bool judge(const struct cm_tenant *t, X509 *x, X509 *sent1, struct cm_verdict *v)
{
	STACK_OF(X509) *sent = sk_X509_new_null();
	bool ok;

	if(sent1){
		sk_X509_push(sent, sent1);
	}
	ok = cm_verdict_chain(t, store->admin_ca, x, sent, v, NULL);
	sk_X509_free(sent);
	return ok;
}

static void test_a_registered_intermediate_is_validated_through_its_root(void **state)
{
	struct cm_tenant *t = fresh(CM_REVOCATION_WHEN_AVAILABLE);
	struct cm_ca *r;
	const struct cm_tenant *live;
	struct cm_verdict v;

	(void)state;
	r = entry(t, root, false);
	entry(t, inter, false);
	live = commit(t);
	/* The intermediate is not an anchor: the path goes to the root. */
	assert_int_equal(sk_X509_num(live->candidates), 1);
	assert_true(judge(live, leaf, NULL, &v));
	/* The root revokes the intermediate: refused, revoked, at depth 1. */
	t = cm_tenant_clone(live);
	r = cm_tenant_ca(t, r->id);
	{
		struct cm_err err;
		assert_int_equal(cm_ca_put_crl(r, make_crl(root, root_key, 2, 1), NULL, &err), CM_OK);
	}
	live = commit(t);
	assert_false(judge(live, leaf, NULL, &v));
	assert_int_equal(v.refusal, CM_REFUSED_REVOKED);
	assert_int_equal(v.depth, 1);
	assert_non_null(strstr(v.why, "'Intermediate' is revoked by the CRL of CA 'Root'"));
	/* An older CRL does not take it back. */
	t = cm_tenant_clone(live);
	{
		struct cm_err err;
		struct cm_crl *old = make_crl(root, root_key, 0, 0);
		assert_int_equal(cm_ca_put_crl(cm_tenant_ca(t, r->id), old, NULL, &err), CM_ERR_INVAL);
		cm_crl_free(&old);
	}
	cm_tenant_free(&t);
}

static void test_a_pin_admits_itself_and_signs_nothing(void **state)
{
	struct cm_tenant *t = fresh(CM_REVOCATION_REQUIRED);
	const struct cm_tenant *live;
	struct cm_verdict v;

	(void)state;
	entry(t, pin, true);
	live = commit(t);
	assert_true(judge(live, pin, NULL, &v));
	assert_false(judge(live, forged, NULL, &v));
	assert_false(judge(live, forged, pin, &v));
	assert_int_equal(v.refusal, CM_REFUSED_UNTRUSTED_CHAIN);
}

static void test_the_revocation_policy_decides_a_level_without_crl(void **state)
{
	struct cm_tenant *t = fresh(CM_REVOCATION_REQUIRED);
	const struct cm_tenant *live;
	struct cm_verdict v;

	(void)state;
	entry(t, root, false);
	live = commit(t);
	/* Only the root registered, the device sends its intermediate: no
	 * CRL of the intermediate, required: refused. */
	assert_false(judge(live, leaf, inter, &v));
	assert_int_equal(v.refusal, CM_REFUSED_POLICY);
	assert_true(v.revocation);
	assert_non_null(strstr(v.why, "no CRL is known for CA 'Intermediate' (revocation required)"));
	/* when-available: admitted, as nothing of the intermediate's CRLs is
	 * known. */
	t = cm_tenant_clone(live);
	t->revocation = CM_REVOCATION_WHEN_AVAILABLE;
	live = commit(t);
	assert_true(judge(live, leaf, inter, &v));
	/* Without the intermediate, no path at all. */
	assert_false(judge(live, leaf, NULL, &v));
	assert_false(v.revocation);
}

static void test_a_path_through_a_deactivated_ca_is_refused(void **state)
{
	struct cm_tenant *t = fresh(CM_REVOCATION_WHEN_AVAILABLE);
	struct cm_ca *i;
	const struct cm_tenant *live;
	struct cm_verdict v;

	(void)state;
	entry(t, root, false);
	i = entry(t, inter, false);
	i->active = false;
	live = commit(t);
	/* Sent by the device itself, the inactive intermediate still refuses. */
	assert_false(judge(live, leaf, inter, &v));
	assert_non_null(strstr(v.why, "'Intermediate' of its path is deactivated"));
	/* The root inactive: the intermediate does not become an anchor. */
	t = cm_tenant_clone(live);
	cm_tenant_ca(t, i->id)->active = true;
	t->cas->active = false;
	live = commit(t);
	assert_false(judge(live, leaf, NULL, &v));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_a_registered_intermediate_is_validated_through_its_root),
		cmocka_unit_test(test_a_pin_admits_itself_and_signs_nothing),
		cmocka_unit_test(test_the_revocation_policy_decides_a_level_without_crl),
		cmocka_unit_test(test_a_path_through_a_deactivated_ca_is_refused),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
