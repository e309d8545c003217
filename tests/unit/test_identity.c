/* Device identity: client id against org id, CN and SubjectAltName email. */
#include <stdio.h>
#include <string.h>

#include <openssl/x509v3.h>

#include "identity.h"
#include "pki.h"
#include "testutil.h"

/* A certificate with that CN and, if given, one SAN email. */
static X509 *device_cert(const char *cn, const char *email)
{
	static const struct cm_keyspec p256 = {CM_KEY_EC, 0, "P-256"};
	EVP_PKEY *key = NULL;
	X509 *cert = NULL;
	struct cm_err err;

	assert_int_equal(cm_pki_generate_key(&p256, &key, &err), CM_OK);
	assert_int_equal(cm_pki_make_self_signed(key, cn, NULL, 0, 1, &cert, &err), CM_OK);
	if(email){
		GENERAL_NAMES *gens = sk_GENERAL_NAME_new_null();
		GENERAL_NAME *gen = GENERAL_NAME_new();
		ASN1_IA5STRING *ia5 = ASN1_IA5STRING_new();
		ASN1_STRING_set(ia5, email, -1);
		GENERAL_NAME_set0_value(gen, GEN_EMAIL, ia5);
		sk_GENERAL_NAME_push(gens, gen);
		assert_int_equal(X509_add1_ext_i2d(cert, NID_subject_alt_name, gens, 0, X509V3_ADD_DEFAULT), 1);
		GENERAL_NAMES_free(gens);
	}
	EVP_PKEY_free(key);
	return cert;
}

static void test_cn_match_is_accepted(void **state)
{
	X509 *cert = device_cert("d:sensor:s-01", NULL);
	struct cm_identity id;
	struct cm_err err;

	(void)state;
	assert_int_equal(cm_identity_check("d:acme:sensor:s-01", "acme", cert, &id, &err), CM_OK);
	assert_int_equal(id.kind, 'd');
	assert_string_equal(id.org, "acme");
	assert_string_equal(id.type, "sensor");
	assert_string_equal(id.id, "s-01");
	X509_free(cert);
}

static void test_san_email_match_is_accepted(void **state)
{
	X509 *cert = device_cert("some other name", "d:pump:P_7.b");
	struct cm_identity id;
	struct cm_err err;

	(void)state;
	assert_int_equal(cm_identity_check("d:org1:pump:P_7.b", "org1", cert, &id, &err), CM_OK);
	X509_free(cert);
}

static void test_gateway_ids_use_g(void **state)
{
	X509 *cert = device_cert("g:gw:1", NULL);
	struct cm_identity id;
	struct cm_err err;

	(void)state;
	assert_int_equal(cm_identity_check("g:acme:gw:1", "acme", cert, &id, &err), CM_OK);
	/* a gateway certificate does not make a device */
	assert_int_equal(cm_identity_check("d:acme:gw:1", "acme", cert, &id, &err), CM_ERR_INVAL);
	X509_free(cert);
}

static void test_mismatches_are_refused_with_a_reason(void **state)
{
	X509 *cert = device_cert("d:sensor:s-01", "d:sensor:s-02");
	struct cm_identity id;
	struct cm_err err;
	static const char *const bad[] = {
		"d:acme:sensor:s-03",     /* neither CN nor SAN */
		"d:acme:sensor:s-01:x",   /* extra part lands in the id: ':' refused */
		"d:acme:sensor:",         /* empty id */
		"d::sensor:s-01",         /* empty org */
		"x:acme:sensor:s-01",     /* unknown kind */
		"d:acme:sen+sor:s-01",    /* forbidden characters */
		"d:acme:sensor:s#01",
		"d:acme:sensor:s/01",
		"d:acme:sensor",
		"",
	};
	size_t i;

	(void)state;
	for(i = 0; i < sizeof(bad) / sizeof(bad[0]); i++){
		if(cm_identity_check(bad[i], "acme", cert, &id, &err) != CM_ERR_INVAL){
			fail_msg("'%s' was accepted", bad[i]);
		}
		assert_true(strlen(err.msg) > 0);
	}
	assert_int_equal(cm_identity_check("d:other:sensor:s-01", "acme", cert, &id, &err), CM_ERR_INVAL);
	assert_non_null(strstr(err.msg, "tenant's org is 'acme'"));
	assert_int_equal(cm_identity_check("d:acme:sensor:s-02", "acme", cert, &id, &err), CM_OK);
	X509_free(cert);
}

static void test_part_validation(void **state)
{
	char big[80];

	(void)state;
	assert_true(cm_identity_part_valid("aZ09-_."));
	assert_false(cm_identity_part_valid(""));
	assert_false(cm_identity_part_valid("a b"));
	assert_false(cm_identity_part_valid("a:b"));
	assert_false(cm_identity_part_valid(NULL));
	memset(big, 'a', sizeof(big));
	big[64] = '\0';
	assert_true(cm_identity_part_valid(big));
	big[64] = 'a';
	big[65] = '\0';
	assert_false(cm_identity_part_valid(big));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_cn_match_is_accepted),
		cmocka_unit_test(test_san_email_match_is_accepted),
		cmocka_unit_test(test_gateway_ids_use_g),
		cmocka_unit_test(test_mismatches_are_refused_with_a_reason),
		cmocka_unit_test(test_part_validation),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
