/* certmgr as a CA (common/pki/sign.c) and the enrollment record
 * (common/model/enroll*.c): CSR checks, device certificates, CRLs, proof
 * of possession, the record's lists and its JSON. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/x509v3.h>

#include "crl.h"
#include "enroll.h"
#include "pki.h"
#include "sign.h"
#include "testutil.h"

static const struct cm_csr_rules rules = {true, true, false, 2048, true, false};

static EVP_PKEY *key_of(const char *type, int bits_or_curve)
{
	struct cm_keyspec spec = {CM_KEY_EC, 0, "P-256", true};
	EVP_PKEY *k = NULL;

	if(!strcmp(type, "rsa")){
		spec.type = CM_KEY_RSA;
		spec.bits = bits_or_curve;
	}else if(bits_or_curve == 384){
		spec.curve = "P-384";
	}
	assert_int_equal(cm_pki_generate_key(&spec, &k, NULL), CM_OK);
	return k;
}

static X509_REQ *csr_for(EVP_PKEY *k, const char *cn, const char *email)
{
	struct cm_subject sub = {cn, NULL, NULL, NULL, NULL, NULL, NULL};
	char san[128];
	const char *sans[1] = {san};
	X509_REQ *req = NULL;

	snprintf(san, sizeof(san), "email:%s", email ? email : "");
	assert_int_equal(cm_pki_make_csr(k, &sub, sans, email ? 1 : 0, &req, NULL), CM_OK);
	return req;
}

static enum cm_rc check(X509_REQ *req, char ident[CM_ENROLL_IDENT_MAX + 1], struct cm_err *err)
{
	enum cm_rc rc = cm_sign_check_csr(req, &rules, ident, err);

	X509_REQ_free(req);
	return rc;
}

static void test_csr_checks(void **state)
{
	char ident[CM_ENROLL_IDENT_MAX + 1];
	struct cm_err err;
	EVP_PKEY *ec = key_of("ec", 256), *weak = key_of("rsa", 1024);

	(void)state;
	assert_int_equal(check(csr_for(ec, "d:sensor:s1", NULL), ident, &err), CM_OK);
	assert_string_equal(ident, "d:sensor:s1");
	assert_int_equal(check(csr_for(ec, "g:gw:g1", "g:gw:g1"), ident, &err), CM_OK);
	assert_int_equal(check(csr_for(ec, "d:sensor:s1", "d:sensor:s2"), ident, &err), CM_ERR_INVAL);
	assert_non_null(strstr(err.msg, "two identities"));
	assert_int_equal(check(csr_for(ec, "d:acme:sensor:s1", NULL), ident, &err), CM_ERR_INVAL);
	assert_int_equal(check(csr_for(ec, "d:sensor:", NULL), ident, &err), CM_ERR_INVAL);
	assert_int_equal(check(csr_for(ec, "x:sensor:s1", NULL), ident, &err), CM_ERR_INVAL);
	assert_int_equal(check(csr_for(weak, "d:sensor:s1", NULL), ident, &err), CM_ERR_INVAL);
	assert_non_null(strstr(err.msg, "weak"));
	EVP_PKEY_free(ec);
	EVP_PKEY_free(weak);
}

static void test_csr_signature_must_verify(void **state)
{
	char ident[CM_ENROLL_IDENT_MAX + 1];
	struct cm_err err;
	EVP_PKEY *a = key_of("ec", 256), *b = key_of("ec", 256);
	X509_REQ *req = csr_for(a, "d:sensor:s1", NULL);

	(void)state;
	/* Another key in the CSR than the one that signed it. */
	assert_int_equal(X509_REQ_set_pubkey(req, b), 1);
	assert_int_equal(check(req, ident, &err), CM_ERR_INVAL);
	assert_non_null(strstr(err.msg, "signature does not verify"));
	EVP_PKEY_free(a);
	EVP_PKEY_free(b);
}

static void make_ca(X509 **ca, EVP_PKEY **k)
{
	struct cm_ca_subject s = {"Test Issuing CA", "Test", NULL, "DE"};

	*k = key_of("ec", 256);
	assert_int_equal(cm_sign_make_ca(*k, &s, 30, NULL, NULL, ca, NULL), CM_OK);
	assert_int_equal(cm_pki_check_ca(*ca, time(NULL), NULL), CM_OK);
}

static void test_device_certificate(void **state)
{
	X509 *ca, *leaf;
	EVP_PKEY *ca_key, *dev = key_of("ec", 384);
	struct cm_csr_rules both = rules;
	X509_STORE *store = X509_STORE_new();
	X509_STORE_CTX *ctx = X509_STORE_CTX_new();
	char cn[64];

	(void)state;
	make_ca(&ca, &ca_key);
	both.in_email = true;
	assert_int_equal(cm_sign_device_cert(dev, "d:sensor:s1", &both, 365L * 86400, ca, ca_key, &leaf, NULL), CM_OK);
	cm_pki_subject_cn(leaf, cn, sizeof(cn));
	assert_string_equal(cn, "d:sensor:s1");
	/* Never past the CA's own end (30 days). */
	assert_true(cm_pki_not_after(leaf) <= cm_pki_not_after(ca));
	assert_true(X509_get_extended_key_usage(leaf) & XKU_SSL_CLIENT);
	assert_true(cm_pki_key_matches(leaf, dev));
	X509_STORE_add_cert(store, ca);
	X509_STORE_CTX_init(ctx, store, leaf, NULL);
	assert_int_equal(X509_verify_cert(ctx), 1);
	X509_STORE_CTX_free(ctx);
	X509_STORE_free(store);
	X509_free(leaf);
	X509_free(ca);
	EVP_PKEY_free(ca_key);
	EVP_PKEY_free(dev);
}

static ASN1_INTEGER *serial_of(const char *hex)
{
	BIGNUM *bn = NULL;
	ASN1_INTEGER *i;

	assert_true(BN_hex2bn(&bn, hex) > 0);
	i = BN_to_ASN1_INTEGER(bn, NULL);
	BN_free(bn);
	return i;
}

static void test_crl_holds_the_entries_in_force(void **state)
{
	X509 *ca;
	EVP_PKEY *ca_key;
	time_t now = time(NULL);
	struct cm_revoked v[2] = {{"1A2B", now - 10, 1}, {"3C4D", now + 3600, 4}};
	unsigned char *der = NULL;
	size_t len = 0;
	struct cm_crl *crl = NULL;
	ASN1_INTEGER *now_revoked = serial_of("1A2B"), *later = serial_of("3C4D");

	(void)state;
	make_ca(&ca, &ca_key);
	assert_int_equal(cm_sign_make_crl(ca, ca_key, v, 2, 7, now, now + 86400, &der, &len, NULL), CM_OK);
	assert_int_equal(cm_crl_load(der, len, len, ca, now, &crl, NULL), CM_OK);
	assert_int_equal(crl->count, 1);
	assert_true(cm_crl_is_revoked(crl, now_revoked));
	/* Its grace period runs: not yet in this CRL. */
	assert_false(cm_crl_is_revoked(crl, later));
	assert_int_equal(ASN1_INTEGER_get(crl->number), 7);
	cm_crl_free(&crl);
	OPENSSL_free(der);
	ASN1_INTEGER_free(now_revoked);
	ASN1_INTEGER_free(later);
	X509_free(ca);
	EVP_PKEY_free(ca_key);
}

static void test_proof_of_possession(void **state)
{
	X509 *ca, *other, *vcert = NULL, *vother = NULL;
	EVP_PKEY *ca_key, *other_key, *vk = NULL;
	struct cm_err err;

	(void)state;
	make_ca(&ca, &ca_key);
	make_ca(&other, &other_key);
	assert_int_equal(cm_pki_make_client_cert(ca, ca_key, "0123456789abcdef0123456789abcdef", 1, &vcert, &vk, NULL), CM_OK);
	EVP_PKEY_free(vk);
	assert_int_equal(cm_pki_make_client_cert(other, other_key, "0123456789abcdef0123456789abcdef", 1, &vother, &vk, NULL), CM_OK);
	EVP_PKEY_free(vk);
	assert_int_equal(cm_sign_check_pop(ca, vcert, "0123456789abcdef0123456789abcdef", &err), CM_OK);
	assert_int_equal(cm_sign_check_pop(ca, vcert, "ffffffffffffffffffffffffffffffff", &err), CM_ERR_INVAL);
	assert_int_equal(cm_sign_check_pop(ca, vother, "0123456789abcdef0123456789abcdef", &err), CM_ERR_INVAL);
	assert_non_null(strstr(err.msg, "not signed by this CA's key"));
	X509_free(vcert);
	X509_free(vother);
	X509_free(ca);
	X509_free(other);
	EVP_PKEY_free(ca_key);
	EVP_PKEY_free(other_key);
}

static void test_record_lists(void **state)
{
	struct cm_enroll *e = cm_enroll_new(), *copy;
	char code[CM_ENROLL_CODE_LEN + 1];
	struct cm_enrollment r = {0};

	(void)state;
	assert_int_equal(e->mode, CM_ENROLL_APPROVAL);
	assert_int_equal(cm_enroll_new_code(e, code, NULL), CM_OK);
	assert_true(cm_enroll_has_code(e, code));
	cm_enroll_take_code(e, code);
	assert_false(cm_enroll_has_code(e, code));
	assert_int_equal(cm_enroll_allow(e, "d:sensor:s1", NULL), CM_OK);
	assert_true(cm_enroll_disallow(e, "d:sensor:s1"));
	assert_false(cm_enroll_is_allowed(e, "d:sensor:s1"));
	/* A serial revoked twice keeps its earlier time. */
	assert_int_equal(cm_enroll_revoke(e, "abcd", 200, 4, NULL), CM_OK);
	assert_int_equal(cm_enroll_revoke(e, "ABCD", 100, 1, NULL), CM_OK);
	assert_int_equal(e->nrevoked, 1);
	assert_int_equal(cm_enroll_find_revoked(e, "ABCD")->at, 100);
	assert_int_equal(cm_enroll_revoke(e, "xyz", 1, 0, NULL), CM_ERR_INVAL);
	snprintf(r.ident, sizeof(r.ident), "d:sensor:p1");
	memset(r.key_id, 'a', CM_ID_LEN);
	r.csr = "csr";
	assert_int_equal(cm_enroll_add_request(e, &r, NULL), CM_OK);
	copy = cm_enroll_clone(e);
	cm_enroll_drop_request(e, "d:sensor:p1");
	assert_null(cm_enroll_find(e, "d:sensor:p1"));
	assert_non_null(cm_enroll_find(copy, "d:sensor:p1"));
	e->id_pattern = strdup("d:sensor:*");
	assert_true(cm_enroll_pattern_matches(e, "d:sensor:x"));
	assert_false(cm_enroll_pattern_matches(e, "d:meter:x"));
	cm_enroll_free(&e);
	cm_enroll_free(&copy);
	cm_enroll_free(&copy);
}

static void test_record_json_round_trip(void **state)
{
	struct cm_enroll *e = cm_enroll_new(), *back = NULL;
	EVP_PKEY *k = key_of("ec", 256);
	cJSON *json, *again;
	char *a, *b;
	size_t len;
	struct cm_err err;

	(void)state;
	e->mode = CM_ENROLL_ALLOWLIST;
	e->grace = 60;
	assert_int_equal(cm_enroll_allow(e, "d:sensor:s1", NULL), CM_OK);
	assert_int_equal(cm_enroll_revoke(e, "1A", 100, 4, NULL), CM_OK);
	memset(e->ca_id, 'b', CM_ID_LEN);
	e->ca_key = k;
	assert_int_equal(cm_pki_key_to_pem_encrypted(k, "a passphrase", &e->ca_key_pem, &len, NULL), CM_OK);
	json = cm_enroll_to_json(e);
	/* Encrypted: no passphrase, no key. */
	assert_int_equal(cm_enroll_from_json(json, NULL, &back, &err), CM_ERR_CORRUPT);
	assert_int_equal(cm_enroll_from_json(json, "a passphrase", &back, &err), CM_OK);
	assert_true(EVP_PKEY_eq(back->ca_key, k) == 1);
	again = cm_enroll_to_json(back);
	a = cJSON_PrintUnformatted(json);
	b = cJSON_PrintUnformatted(again);
	assert_string_equal(a, b);
	free(a);
	free(b);
	cJSON_Delete(again);
	cm_enroll_free(&back);
	/* A damaged record is refused. */
	cJSON_ReplaceItemInObject(json, "mode", cJSON_CreateString("everyone"));
	assert_int_equal(cm_enroll_from_json(json, "a passphrase", &back, &err), CM_ERR_CORRUPT);
	assert_null(back);
	cJSON_Delete(json);
	cm_enroll_free(&e);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_csr_checks),
		cmocka_unit_test(test_csr_signature_must_verify),
		cmocka_unit_test(test_device_certificate),
		cmocka_unit_test(test_crl_holds_the_entries_in_force),
		cmocka_unit_test(test_proof_of_possession),
		cmocka_unit_test(test_record_lists),
		cmocka_unit_test(test_record_json_round_trip),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
