/* CRLs: verification at arrival, refusals, and an index whose lookups do
 * not slow down with a million entries. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/x509v3.h>

#include "crl.h"
#include "pki.h"
#include "testutil.h"

static X509 *ca, *other;
static EVP_PKEY *ca_key, *other_key;

static int setup(void **state)
{
	struct cm_err err;

	(void)state;
	if(cm_pki_make_ca("CRL Test CA", 30, &ca, &ca_key, &err) != CM_OK
			|| cm_pki_make_ca("Other CA", 30, &other, &other_key, &err) != CM_OK){
		return -1;
	}
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	X509_free(ca);
	X509_free(other);
	EVP_PKEY_free(ca_key);
	EVP_PKEY_free(other_key);
	return 0;
}

/* A DER CRL of n serials 1000..1000+n-1, issued by issuer, valid from
 * this_off to next_off seconds from now. */
static unsigned char *make_crl(X509 *issuer, EVP_PKEY *key, long n, long this_off, long next_off, bool delta, size_t *len)
{
	X509_CRL *crl = X509_CRL_new();
	ASN1_TIME *t = ASN1_TIME_new();
	unsigned char *der = NULL;
	long i;
	int dlen;

	X509_CRL_set_version(crl, 1);
	X509_CRL_set_issuer_name(crl, X509_get_subject_name(issuer));
	X509_gmtime_adj(t, this_off);
	X509_CRL_set1_lastUpdate(crl, t);
	X509_gmtime_adj(t, next_off);
	X509_CRL_set1_nextUpdate(crl, t);
	for(i = 0; i < n; i++){
		X509_REVOKED *r = X509_REVOKED_new();
		ASN1_INTEGER *serial = ASN1_INTEGER_new();
		ASN1_INTEGER_set_int64(serial, 1000 + i);
		X509_REVOKED_set_serialNumber(r, serial);
		X509_gmtime_adj(t, -60);
		X509_REVOKED_set_revocationDate(r, t);
		X509_CRL_add0_revoked(crl, r);
		ASN1_INTEGER_free(serial);
	}
	if(delta){
		ASN1_INTEGER *base = ASN1_INTEGER_new();
		ASN1_INTEGER_set(base, 1);
		X509_CRL_add1_ext_i2d(crl, NID_delta_crl, base, 1, 0);
		ASN1_INTEGER_free(base);
	}
	X509_CRL_sign(crl, key, EVP_sha256());
	dlen = i2d_X509_CRL(crl, &der);
	*len = (size_t)dlen;
	X509_CRL_free(crl);
	ASN1_TIME_free(t);
	return der;
}

static bool revoked(const struct cm_crl *c, long serial)
{
	ASN1_INTEGER *s = ASN1_INTEGER_new();
	bool r;

	ASN1_INTEGER_set_int64(s, serial);
	r = cm_crl_is_revoked(c, s);
	ASN1_INTEGER_free(s);
	return r;
}

static void test_a_valid_crl_is_indexed(void **state)
{
	size_t len;
	unsigned char *der = make_crl(ca, ca_key, 10, -60, 3600, false, &len);
	struct cm_crl *c = NULL;
	struct cm_err err;

	(void)state;
	assert_int_equal(cm_crl_load(der, len, 1 << 20, ca, time(NULL), &c, &err), CM_OK);
	assert_int_equal(c->count, 10);
	assert_true(revoked(c, 1000));
	assert_true(revoked(c, 1009));
	assert_false(revoked(c, 1010));
	assert_false(revoked(c, 999));
	assert_true(c->next_update > time(NULL));
	/* shared by reference: freed at the last */
	{
		struct cm_crl *again = cm_crl_ref(c);
		assert_ptr_equal(again, c);
		cm_crl_free(&c);
		assert_null(c);
		assert_int_equal(again->refs, 1);
		cm_crl_free(&again);
		cm_crl_free(&again); /* twice is fine */
	}
	OPENSSL_free(der);
}

static void test_bad_crls_are_refused(void **state)
{
	struct cm_crl *c = NULL;
	struct cm_err err;
	size_t len;
	unsigned char *der;

	(void)state;
	der = make_crl(other, other_key, 1, -60, 3600, false, &len);
	assert_int_equal(cm_crl_load(der, len, 1 << 20, ca, time(NULL), &c, &err), CM_ERR_INVAL);
	assert_non_null(strstr(err.msg, "not signed by the CA"));
	OPENSSL_free(der);

	der = make_crl(ca, ca_key, 1, -7200, -3600, false, &len);
	assert_int_equal(cm_crl_load(der, len, 1 << 20, ca, time(NULL), &c, &err), CM_ERR_INVAL);
	assert_non_null(strstr(err.msg, "nextUpdate has passed"));
	OPENSSL_free(der);

	der = make_crl(ca, ca_key, 1, 7200, 9000, false, &len);
	assert_int_equal(cm_crl_load(der, len, 1 << 20, ca, time(NULL), &c, &err), CM_ERR_INVAL);
	assert_non_null(strstr(err.msg, "not valid yet"));
	OPENSSL_free(der);

	/* A delta CRL is held, and known as one: path validation applies it
	 * on its base. */
	der = make_crl(ca, ca_key, 1, -60, 3600, true, &len);
	assert_int_equal(cm_crl_load(der, len, 1 << 20, ca, time(NULL), &c, &err), CM_OK);
	assert_true(c->delta);
	assert_non_null(c->hollow);
	cm_crl_free(&c);
	OPENSSL_free(der);

	der = make_crl(ca, ca_key, 50, -60, 3600, false, &len);
	assert_int_equal(cm_crl_load(der, len, 100, ca, time(NULL), &c, &err), CM_ERR_INVAL);
	assert_non_null(strstr(err.msg, "larger than"));
	/* truncated */
	assert_int_equal(cm_crl_load(der, len - 10, 1 << 20, ca, time(NULL), &c, &err), CM_ERR_INVAL);
	OPENSSL_free(der);

	assert_int_equal(cm_crl_load((const unsigned char *)"garbage", 7, 1 << 20, ca, time(NULL), &c, &err), CM_ERR_INVAL);
	assert_non_null(strstr(err.msg, "not a CRL"));
	assert_null(c);
}

static void test_the_issuer_of_an_upload_is_found(void **state)
{
	size_t len;
	unsigned char *der = make_crl(other, other_key, 1, -60, 3600, false, &len);
	STACK_OF(X509) *cands = sk_X509_new_null();

	(void)state;
	sk_X509_push(cands, ca);
	assert_null(cm_crl_find_issuer(der, len, cands));
	sk_X509_push(cands, other);
	assert_ptr_equal(cm_crl_find_issuer(der, len, cands), other);
	sk_X509_free(cands);
	OPENSSL_free(der);
}

static double seconds(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* A million entries: built once, then lookups for revoked and good
 * serials. The figures are printed; the test checks correctness. */
static void test_a_million_entries(void **state)
{
	const long n = 1000000;
	size_t len;
	unsigned char *der;
	struct cm_crl *c = NULL;
	struct cm_err err;
	double t0, t1, t2;
	long i, hits = 0;

	(void)state;
	der = make_crl(ca, ca_key, n, -60, 3600, false, &len);
	t0 = seconds();
	assert_int_equal(cm_crl_load(der, len, 256u << 20, ca, time(NULL), &c, &err), CM_OK);
	t1 = seconds();
	assert_int_equal(c->count, (size_t)n);
	for(i = 0; i < 200000; i++){
		hits += revoked(c, 1000 + (i * 7919) % n);
		assert_false(revoked(c, 1000 + n + i));
	}
	t2 = seconds();
	assert_int_equal(hits, 200000);
	printf("CRL of %ld entries, %zu bytes: verified and indexed in %.2f s; %.0f ns per lookup\n",
			n, len, t1 - t0, (t2 - t1) * 1e9 / 400000);
	cm_crl_free(&c);
	OPENSSL_free(der);
}

static void test_distribution_point_is_read(void **state)
{
	X509 *cert = NULL;
	EVP_PKEY *key = NULL;
	X509V3_CTX ctx;
	X509_EXTENSION *ext;
	char url[256];
	struct cm_err err;

	(void)state;
	assert_int_equal(cm_pki_make_client_cert(ca, ca_key, "d:x:1", 1, &cert, &key, &err), CM_OK);
	assert_false(cm_crl_distribution_point(cert, url, sizeof(url)));
	X509V3_set_ctx_nodb(&ctx);
	X509V3_set_ctx(&ctx, ca, cert, NULL, NULL, 0);
	ext = X509V3_EXT_nconf(NULL, &ctx, "crlDistributionPoints", "URI:ldap://x/y,URI:http://crl.example/a.crl");
	X509_add_ext(cert, ext, -1);
	X509_EXTENSION_free(ext);
	assert_true(cm_crl_distribution_point(cert, url, sizeof(url)));
	assert_string_equal(url, "http://crl.example/a.crl");
	assert_false(cm_crl_distribution_point(cert, url, 10));
	X509_free(cert);
	EVP_PKEY_free(key);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_a_valid_crl_is_indexed),
		cmocka_unit_test(test_bad_crls_are_refused),
		cmocka_unit_test(test_the_issuer_of_an_upload_is_found),
		cmocka_unit_test(test_a_million_entries),
		cmocka_unit_test(test_distribution_point_is_read),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
