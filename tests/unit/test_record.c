/* Records (common/etcd/record.h): a store directory as one etcd value, and
 * the base64 and key checks under it. No etcd: small files only, and the
 * refusal of a large one without a client. */
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "etcd.h"
#include "fsutil.h"
#include "record.h"
#include "testutil.h"

static void put(const char *dir, const char *rel, const char *text)
{
	char path[1024];
	struct cm_err err;

	assert_true(strlen(dir) + strlen(rel) + 2 <= sizeof(path));
	assert_int_equal(cm_fs_path(path, sizeof(path), &err, "%s/%s", dir, rel), CM_OK);
	assert_int_equal(cm_fs_write_atomic(path, text, strlen(text), 0600, &err), CM_OK);
}

static char *slurp(const char *dir, const char *rel)
{
	char path[1024];
	char *text = NULL;
	size_t len = 0;
	struct cm_err err;

	if(cm_fs_path(path, sizeof(path), &err, "%s/%s", dir, rel) != CM_OK){
		return NULL;
	}
	return cm_fs_read_file(path, 1 << 20, &text, &len, &err) == CM_OK ? text : NULL;
}

static void test_a_directory_round_trips_through_a_record(void **state)
{
	char *src = tu_mkdtemp(), *dst = tu_mkdtemp();
	char sub[256], out[256];
	char *rec = NULL, *back;
	size_t len = 0;
	struct cm_err err;

	(void)state;
	snprintf(sub, sizeof(sub), "%s/cas", src);
	assert_int_equal(mkdir(sub, 0700), 0);
	put(src, "tenant.json", "{\"name\":\"acme\",\"aFieldOfLater\":[1,2]}");
	put(src, "cas/abc.pem", "-----BEGIN CERTIFICATE-----\nxyz\n-----END CERTIFICATE-----\n");
	put(src, "cas/x.pem.tmp.123", "a temporary file is not part of it");
	assert_int_equal(cm_record_build(NULL, "/p/", src, &rec, &len, &err), CM_OK);
	assert_non_null(strstr(rec, "\"tenant.json\""));
	assert_null(strstr(rec, "tmp.123"));
	snprintf(out, sizeof(out), "%s/t", dst);
	assert_int_equal(cm_record_write(NULL, "/p/", rec, len, out, &err), CM_OK);
	back = slurp(out, "tenant.json");
	assert_string_equal(back, "{\"name\":\"acme\",\"aFieldOfLater\":[1,2]}");
	free(back);
	back = slurp(out, "cas/abc.pem");
	assert_non_null(back);
	assert_non_null(strstr(back, "xyz"));
	free(back);
	free(rec);
	tu_rmtree(src);
	tu_rmtree(dst);
	free(src);
	free(dst);
}

static void test_a_plain_private_key_is_refused(void **state)
{
	char *src = tu_mkdtemp();
	char *rec = NULL;
	size_t len = 0;
	struct cm_err err;

	(void)state;
	put(src, "ca.key", "-----BEGIN PRIVATE KEY-----\nMIIB\n-----END PRIVATE KEY-----\n");
	assert_int_equal(cm_record_build(NULL, "/p/", src, &rec, &len, &err), CM_ERR_INVAL);
	assert_null(rec);
	assert_non_null(strstr(err.msg, "not encrypted"));
	put(src, "ca.key", "-----BEGIN ENCRYPTED PRIVATE KEY-----\nMIIB\n-----END ENCRYPTED PRIVATE KEY-----\n");
	assert_int_equal(cm_record_build(NULL, "/p/", src, &rec, &len, &err), CM_OK);
	free(rec);
	assert_true(cm_record_plain_key("x-----BEGIN EC PRIVATE KEY-----", 31));
	assert_false(cm_record_plain_key("-----BEGIN CERTIFICATE-----", 27));
	tu_rmtree(src);
	free(src);
}

static void test_a_large_file_needs_etcd(void **state)
{
	char *src = tu_mkdtemp();
	char path[1024];
	char *big = malloc(CM_RECORD_INLINE_MAX + 1), *rec = NULL;
	size_t len = 0;
	struct cm_err err;

	(void)state;
	memset(big, 'a', CM_RECORD_INLINE_MAX + 1);
	snprintf(path, sizeof(path), "%s/big.crl", src);
	assert_int_equal(cm_fs_write_atomic(path, big, CM_RECORD_INLINE_MAX + 1, 0600, &err), CM_OK);
	assert_int_equal(cm_record_build(NULL, "/p/", src, &rec, &len, &err), CM_ERR_INVAL);
	assert_non_null(strstr(err.msg, "needs etcd"));
	free(big);
	tu_rmtree(src);
	free(src);
}

static void test_bad_records_are_refused_and_write_nothing(void **state)
{
	static const char *const bad[] = {
		"", "[]", "{\"schema\":1}", "{\"schema\":1,\"files\":[]}",
		"{\"schema\":1,\"files\":{\"../escape\":{\"data\":\"\"}}}",
		"{\"schema\":1,\"files\":{\"/abs\":{\"data\":\"\"}}}",
		"{\"schema\":1,\"files\":{\"a//b\":{\"data\":\"\"}}}",
		"{\"schema\":1,\"files\":{\".hidden\":{\"data\":\"\"}}}",
		"{\"schema\":1,\"files\":{\"a/b/c/d\":{\"data\":\"\"}}}",
		"{\"schema\":1,\"files\":{\"x\":{\"data\":5}}}",
		"{\"schema\":1,\"files\":{\"x\":{\"blob\":\"zz\",\"size\":3}}}",
		"{\"schema\":1,\"files\":{\"x\":{}}}",
	};
	char *dst = tu_mkdtemp();
	char out[256];
	struct cm_err err;
	struct stat st;

	(void)state;
	snprintf(out, sizeof(out), "%s/t", dst);
	for(size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++){
		assert_int_not_equal(cm_record_write(NULL, "/p/", bad[i], strlen(bad[i]), out, &err), CM_OK);
		assert_int_not_equal(stat(out, &st), 0);
	}
	assert_int_equal(cm_record_write(NULL, "/p/", "{\"schema\":2,\"files\":{}}", 23, out, &err), CM_ERR_NEWER);
	/* Not base64: refused when written. */
	assert_int_not_equal(cm_record_write(NULL, "/p/", "{\"schema\":1,\"files\":{\"x\":{\"data\":\"@@@@\"}}}", 41, out, &err), CM_OK);
	tu_rmtree(dst);
	free(dst);
}

static void test_base64_and_prefix_ends(void **state)
{
	unsigned char *dec = NULL;
	size_t len = 0;
	char end[32];
	char *enc = cm_b64_encode("ab\0c", 4);
	struct cm_err err;

	(void)state;
	assert_string_equal(enc, "YWIAYw==");
	assert_true(cm_b64_decode(enc, strlen(enc), &dec, &len));
	assert_int_equal(len, 4);
	assert_memory_equal(dec, "ab\0c", 4);
	free(dec);
	free(enc);
	assert_false(cm_b64_decode("abc", 3, &dec, &len));
	assert_true(cm_b64_decode("", 0, &dec, &len));
	assert_int_equal(len, 0);
	free(dec);
	assert_int_equal(cm_etcd_prefix_end("/certmgr/", end, sizeof(end), &err), CM_OK);
	assert_string_equal(end, "/certmgr0");
	assert_int_not_equal(cm_etcd_prefix_end("", end, sizeof(end), &err), CM_OK);
}

static void test_endpoints_are_urls(void **state)
{
	struct cm_etcd_opts o = {"http://a:2379, https://b:2379/", NULL, NULL, NULL, 0};
	struct cm_etcd *e = NULL;
	struct cm_err err;

	(void)state;
	assert_int_equal(cm_etcd_new(&o, &e, &err), CM_OK);
	assert_int_equal(cm_etcd_endpoint_count(e), 2);
	assert_string_equal(cm_etcd_endpoint(e), "http://a:2379");
	cm_etcd_free(&e);
	cm_etcd_free(&e);
	o.endpoints = "a:2379";
	assert_int_equal(cm_etcd_new(&o, &e, &err), CM_ERR_INVAL);
	assert_non_null(strstr(err.msg, "not an http"));
	o.endpoints = " , ";
	assert_int_equal(cm_etcd_new(&o, &e, &err), CM_ERR_INVAL);
	assert_null(e);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_a_directory_round_trips_through_a_record),
		cmocka_unit_test(test_a_plain_private_key_is_refused),
		cmocka_unit_test(test_a_large_file_needs_etcd),
		cmocka_unit_test(test_bad_records_are_refused_and_write_nothing),
		cmocka_unit_test(test_base64_and_prefix_ends),
		cmocka_unit_test(test_endpoints_are_urls),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
