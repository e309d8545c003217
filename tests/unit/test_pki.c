/* Key and certificate generation, encoding, parsing and ids. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/ec.h>
#include <openssl/pem.h>
#include <openssl/x509v3.h>

#include "pki.h"
#include "testutil.h"

static const struct cm_keyspec p256 = {CM_KEY_EC, 0, "P-256"};

static X509 *self_signed(EVP_PKEY **key, const char *cn)
{
	const char *names[] = {cn, "localhost"};
	X509 *cert = NULL;
	struct cm_err err;

	assert_int_equal(cm_pki_generate_key(&p256, key, &err), CM_OK);
	assert_int_equal(cm_pki_make_self_signed(*key, cn, names, 2, 30, &cert, &err), CM_OK);
	return cert;
}

static void test_builtin_certificate_is_p256_with_host_names(void **state)
{
	EVP_PKEY *key = NULL;
	X509 *cert = self_signed(&key, "broker.example");
	GENERAL_NAMES *sans;
	char cn[128], curve[32];
	int i, found = 0;

	(void)state;
	assert_int_equal(EVP_PKEY_get_id(key), EVP_PKEY_EC);
	assert_true(EVP_PKEY_get_utf8_string_param(key, "group", curve, sizeof(curve), NULL));
	assert_string_equal(curve, "prime256v1");
	cm_pki_subject_cn(cert, cn, sizeof(cn));
	assert_string_equal(cn, "broker.example");
	sans = X509_get_ext_d2i(cert, NID_subject_alt_name, NULL, NULL);
	assert_non_null(sans);
	for(i = 0; i < sk_GENERAL_NAME_num(sans); i++){
		GENERAL_NAME *gen = sk_GENERAL_NAME_value(sans, i);
		const char *dns = (const char *)ASN1_STRING_get0_data(gen->d.dNSName);
		assert_int_equal(gen->type, GEN_DNS);
		found += !strcmp(dns, "broker.example") || !strcmp(dns, "localhost");
	}
	assert_int_equal(found, 2);
	GENERAL_NAMES_free(sans);
	/* Self-signed and valid now. */
	assert_int_equal(X509_verify(cert, key), 1);
	assert_true(X509_cmp_current_time(X509_get0_notBefore(cert)) < 0);
	assert_true(X509_cmp_current_time(X509_get0_notAfter(cert)) > 0);
	assert_int_equal(X509_check_ca(cert), 0);
	assert_true(cm_pki_key_matches(cert, key));
	X509_free(cert);
	EVP_PKEY_free(key);
}

static void test_other_key_types_sign_certificates(void **state)
{
	const struct cm_keyspec specs[] = {
		{CM_KEY_EC, 0, "P-384"},
		{CM_KEY_RSA, 2048, NULL},
		{CM_KEY_ED25519, 0, NULL},
	};
	size_t i;

	(void)state;
	for(i = 0; i < sizeof(specs) / sizeof(specs[0]); i++){
		EVP_PKEY *key = NULL;
		X509 *cert = NULL;
		struct cm_err err;
		assert_int_equal(cm_pki_generate_key(&specs[i], &key, &err), CM_OK);
		assert_int_equal(cm_pki_make_self_signed(key, "x", NULL, 0, 1, &cert, &err), CM_OK);
		assert_int_equal(X509_verify(cert, key), 1);
		X509_free(cert);
		EVP_PKEY_free(key);
	}
}

static void test_bad_key_specs_and_names_are_refused(void **state)
{
	const struct cm_keyspec bad[] = {
		{CM_KEY_EC, 0, "P-521x"},
		{CM_KEY_EC, 0, NULL},
		{CM_KEY_RSA, 1024, NULL},
		{CM_KEY_RSA, 0, NULL},
		{(enum cm_key_type)42, 0, NULL},
	};
	char longcn[80];
	EVP_PKEY *key = NULL;
	X509 *cert = NULL;
	struct cm_err err;
	size_t i;

	(void)state;
	for(i = 0; i < sizeof(bad) / sizeof(bad[0]); i++){
		assert_int_equal(cm_pki_generate_key(&bad[i], &key, &err), CM_ERR_INVAL);
		assert_null(key);
	}
	assert_int_equal(cm_pki_generate_key(&p256, &key, &err), CM_OK);
	assert_int_equal(cm_pki_make_self_signed(key, "", NULL, 0, 1, &cert, &err), CM_ERR_INVAL);
	memset(longcn, 'a', sizeof(longcn) - 1);
	longcn[sizeof(longcn) - 1] = '\0';
	assert_int_equal(cm_pki_make_self_signed(key, longcn, NULL, 0, 1, &cert, &err), CM_ERR_INVAL);
	assert_int_equal(cm_pki_make_self_signed(key, "x", NULL, 0, 0, &cert, &err), CM_ERR_INVAL);
	assert_null(cert);
	EVP_PKEY_free(key);
}

static void test_id_is_sha256_of_der(void **state)
{
	EVP_PKEY *key = NULL;
	X509 *cert = self_signed(&key, "id.example");
	unsigned char *der = NULL;
	unsigned char md[32];
	char expect[65], id[65];
	struct cm_err err;
	int len, i;

	(void)state;
	len = i2d_X509(cert, &der);
	assert_true(len > 0);
	EVP_Digest(der, (size_t)len, md, NULL, EVP_sha256(), NULL);
	for(i = 0; i < 32; i++){
		snprintf(expect + 2 * i, 3, "%02x", md[i]);
	}
	assert_int_equal(cm_pki_cert_id(cert, id, &err), CM_OK);
	assert_string_equal(id, expect);
	assert_true(cm_pki_id_valid(id));
	OPENSSL_free(der);
	X509_free(cert);
	EVP_PKEY_free(key);
}

static void test_id_validation_refuses_near_misses(void **state)
{
	char id[70];

	(void)state;
	memset(id, 'a', 64);
	id[64] = '\0';
	assert_true(cm_pki_id_valid(id));
	id[3] = 'A';
	assert_false(cm_pki_id_valid(id));
	id[3] = 'g';
	assert_false(cm_pki_id_valid(id));
	id[3] = 'a';
	id[63] = '\0';
	assert_false(cm_pki_id_valid(id));
	id[63] = 'a';
	id[64] = 'a';
	id[65] = '\0';
	assert_false(cm_pki_id_valid(id));
	assert_false(cm_pki_id_valid(NULL));
	assert_false(cm_pki_id_valid("../../../etc/passwd"));
}

static void test_pem_round_trips(void **state)
{
	EVP_PKEY *key = NULL, *key2 = NULL, *other = NULL;
	X509 *cert = self_signed(&key, "rt.example");
	X509 *leaf = NULL;
	STACK_OF(X509) *extra = NULL, *chain = sk_X509_new_null();
	char *pem = NULL, *kpem = NULL;
	size_t len = 0, klen = 0;
	struct cm_err err;

	(void)state;
	/* A chain of two (the same cert twice is enough to count). */
	sk_X509_push(chain, cert);
	assert_int_equal(cm_pki_chain_to_pem(cert, chain, &pem, &len, &err), CM_OK);
	assert_int_equal(cm_pki_parse_chain_pem(pem, len, &leaf, &extra, &err), CM_OK);
	assert_int_equal(X509_cmp(leaf, cert), 0);
	assert_int_equal(sk_X509_num(extra), 1);
	assert_int_equal(cm_pki_key_to_pem(key, &kpem, &klen, &err), CM_OK);
	assert_non_null(strstr(kpem, "-----BEGIN PRIVATE KEY-----"));
	assert_int_equal(cm_pki_parse_key_pem(kpem, klen, &key2, &err), CM_OK);
	assert_true(cm_pki_key_matches(leaf, key2));
	assert_int_equal(cm_pki_generate_key(&p256, &other, &err), CM_OK);
	assert_false(cm_pki_key_matches(leaf, other));
	free(pem);
	cm_pki_free_secret(kpem, klen);
	sk_X509_free(chain);
	sk_X509_pop_free(extra, X509_free);
	X509_free(leaf);
	X509_free(cert);
	EVP_PKEY_free(key);
	EVP_PKEY_free(key2);
	EVP_PKEY_free(other);
}

static void test_damaged_pem_is_refused(void **state)
{
	EVP_PKEY *key = NULL, *k = NULL;
	X509 *cert = self_signed(&key, "bad.example");
	X509 *leaf = NULL;
	STACK_OF(X509) *extra = NULL;
	char *pem = NULL, *kpem = NULL;
	size_t len = 0, klen = 0;
	struct cm_err err;
	char *enc = NULL;
	BIO *bio;
	long n;

	(void)state;
	assert_int_equal(cm_pki_chain_to_pem(cert, NULL, &pem, &len, &err), CM_OK);
	/* truncated in the middle of the base64 */
	assert_int_equal(cm_pki_parse_chain_pem(pem, len / 2, &leaf, &extra, &err), CM_ERR_INVAL);
	assert_null(leaf);
	assert_null(extra);
	/* a flipped base64 character inside the body */
	pem[100] = pem[100] == 'A' ? 'B' : 'A';
	assert_int_equal(cm_pki_parse_chain_pem(pem, len, &leaf, &extra, &err), CM_ERR_INVAL);
	assert_int_equal(cm_pki_parse_chain_pem("", 0, &leaf, &extra, &err), CM_ERR_INVAL);
	assert_non_null(strstr(err.msg, "no PEM certificate"));
	assert_int_equal(cm_pki_parse_chain_pem("garbage\n", 8, &leaf, &extra, &err), CM_ERR_INVAL);
	/* a key where a certificate is expected */
	assert_int_equal(cm_pki_key_to_pem(key, &kpem, &klen, &err), CM_OK);
	assert_int_equal(cm_pki_parse_chain_pem(kpem, klen, &leaf, &extra, &err), CM_ERR_INVAL);
	/* a certificate where a key is expected, garbage, trailing data */
	assert_int_equal(cm_pki_parse_key_pem("garbage", 7, &k, &err), CM_ERR_INVAL);
	assert_null(k);
	/* an encrypted key is not read without its passphrase */
	bio = BIO_new(BIO_s_mem());
	assert_true(PEM_write_bio_PKCS8PrivateKey(bio, key, EVP_aes_256_cbc(), NULL, 0, NULL, (void *)"secret"));
	n = BIO_get_mem_data(bio, &enc);
	assert_int_equal(cm_pki_parse_key_pem(enc, (size_t)n, &k, &err), CM_ERR_INVAL);
	assert_null(k);
	BIO_free(bio);
	free(pem);
	cm_pki_free_secret(kpem, klen);
	X509_free(cert);
	EVP_PKEY_free(key);
}

/* A CSR carries its subject and each kind of subjectAltName; a SAN of no
 * known kind, one without a value, a bad address, a bad country and an
 * empty subject are refused. */
static void test_csr_subject_and_sans(void **state)
{
	const char *sans[] = {"DNS:broker.example", "IP:192.0.2.7", "IP:2001:db8::1", "email:ops@example.com", "URI:https://example.com/x"};
	const char *bad[] = {"DNS:", "IP:not-an-address", "dns:lower.example", "broker.example", "URI:"};
	struct cm_subject sub = {.cn = "broker.example", .o = "Example", .c = "NL"};
	struct cm_subject empty = {0}, country = {.cn = "x", .c = "NLD"};
	STACK_OF(X509_EXTENSION) *exts;
	GENERAL_NAMES *gens;
	EVP_PKEY *key = NULL;
	X509_REQ *req = NULL;
	char id[CM_ID_LEN + 1], cn[128];
	struct cm_err err;
	size_t i;

	(void)state;
	assert_int_equal(cm_pki_generate_key(&p256, &key, &err), CM_OK);
	assert_int_equal(cm_pki_make_csr(key, &sub, sans, 5, &req, &err), CM_OK);
	assert_int_equal(X509_REQ_verify(req, key), 1);
	assert_int_equal(X509_NAME_get_text_by_NID(X509_REQ_get_subject_name(req), NID_commonName, cn, sizeof(cn)), 14);
	assert_string_equal(cn, "broker.example");
	exts = X509_REQ_get_extensions(req);
	gens = X509V3_get_d2i(exts, NID_subject_alt_name, NULL, NULL);
	assert_non_null(gens);
	assert_int_equal(sk_GENERAL_NAME_num(gens), 5);
	assert_int_equal(sk_GENERAL_NAME_value(gens, 0)->type, GEN_DNS);
	assert_int_equal(sk_GENERAL_NAME_value(gens, 1)->type, GEN_IPADD);
	assert_int_equal(ASN1_STRING_length(sk_GENERAL_NAME_value(gens, 1)->d.iPAddress), 4);
	assert_int_equal(ASN1_STRING_length(sk_GENERAL_NAME_value(gens, 2)->d.iPAddress), 16);
	assert_int_equal(sk_GENERAL_NAME_value(gens, 3)->type, GEN_EMAIL);
	assert_int_equal(sk_GENERAL_NAME_value(gens, 4)->type, GEN_URI);
	GENERAL_NAMES_free(gens);
	sk_X509_EXTENSION_pop_free(exts, X509_EXTENSION_free);
	assert_int_equal(cm_pki_csr_id(req, id, &err), CM_OK);
	assert_true(cm_pki_id_valid(id));
	X509_REQ_free(req);
	req = NULL;

	/* Without SANs there is no extension. */
	assert_int_equal(cm_pki_make_csr(key, &sub, NULL, 0, &req, &err), CM_OK);
	exts = X509_REQ_get_extensions(req);
	assert_int_equal(sk_X509_EXTENSION_num(exts), 0);
	sk_X509_EXTENSION_pop_free(exts, X509_EXTENSION_free);
	X509_REQ_free(req);
	req = NULL;

	for(i = 0; i < sizeof(bad) / sizeof(bad[0]); i++){
		assert_int_equal(cm_pki_make_csr(key, &sub, &bad[i], 1, &req, &err), CM_ERR_INVAL);
		assert_null(req);
		assert_non_null(strstr(err.msg, "subjectAltName"));
	}
	assert_int_equal(cm_pki_make_csr(key, &empty, NULL, 0, &req, &err), CM_ERR_INVAL);
	assert_non_null(strstr(err.msg, "empty"));
	assert_int_equal(cm_pki_make_csr(key, &country, NULL, 0, &req, &err), CM_ERR_INVAL);
	assert_non_null(strstr(err.msg, "two letters"));
	assert_null(req);
	EVP_PKEY_free(key);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_builtin_certificate_is_p256_with_host_names),
		cmocka_unit_test(test_other_key_types_sign_certificates),
		cmocka_unit_test(test_bad_key_specs_and_names_are_refused),
		cmocka_unit_test(test_id_is_sha256_of_der),
		cmocka_unit_test(test_id_validation_refuses_near_misses),
		cmocka_unit_test(test_pem_round_trips),
		cmocka_unit_test(test_damaged_pem_is_refused),
		cmocka_unit_test(test_csr_subject_and_sans),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
