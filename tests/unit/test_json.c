/* The typed JSON getters every command and the store read fields with:
 * a missing optional field keeps the default, a missing required one or
 * one of the wrong type is refused with the field's name, numbers are
 * whole and in range, time stamps exact. */
#include <string.h>

#include "json.h"
#include "testutil.h"

static cJSON *parse(const char *text)
{
	cJSON *o = cJSON_Parse(text);

	assert_non_null(o);
	return o;
}

static void test_strings(void **state)
{
	cJSON *o = parse("{\"name\":\"acme\",\"n\":3,\"nul\":null}");
	const char *s = "default";
	struct cm_err err;

	(void)state;
	assert_int_equal(cm_json_get_string(o, "name", true, &s, &err), CM_OK);
	assert_string_equal(s, "acme");
	s = "default";
	assert_int_equal(cm_json_get_string(o, "missing", false, &s, &err), CM_OK);
	assert_string_equal(s, "default");
	assert_int_equal(cm_json_get_string(o, "missing", true, &s, &err), CM_ERR_INVAL);
	assert_non_null(strstr(err.msg, "missing"));
	assert_int_equal(cm_json_get_string(o, "n", false, &s, &err), CM_ERR_INVAL);
	assert_non_null(strstr(err.msg, "'n'"));
	assert_int_equal(cm_json_get_string(o, "nul", false, &s, &err), CM_ERR_INVAL);
	cJSON_Delete(o);
}

static void test_numbers_are_whole_and_in_range(void **state)
{
	cJSON *o = parse("{\"days\":30,\"half\":1.5,\"big\":1e300,\"neg\":-4,\"text\":\"30\"}");
	int64_t v = 7;
	struct cm_err err;

	(void)state;
	assert_int_equal(cm_json_get_int(o, "days", true, 1, 365, &v, &err), CM_OK);
	assert_int_equal(v, 30);
	assert_int_equal(cm_json_get_int(o, "days", true, 31, 365, &v, &err), CM_ERR_INVAL);
	assert_non_null(strstr(err.msg, "days"));
	assert_int_equal(cm_json_get_int(o, "half", true, 0, 10, &v, &err), CM_ERR_INVAL);
	assert_int_equal(cm_json_get_int(o, "big", true, 0, INT64_MAX, &v, &err), CM_ERR_INVAL);
	assert_int_equal(cm_json_get_int(o, "neg", true, 0, 10, &v, &err), CM_ERR_INVAL);
	assert_int_equal(cm_json_get_int(o, "text", true, 0, 100, &v, &err), CM_ERR_INVAL);
	v = 7;
	assert_int_equal(cm_json_get_int(o, "missing", false, 0, 10, &v, &err), CM_OK);
	assert_int_equal(v, 7);
	cJSON_Delete(o);
}

static void test_bools_arrays_and_times(void **state)
{
	cJSON *o = parse("{\"on\":true,\"one\":1,\"list\":[1],\"obj\":{},\"at\":\"2026-12-02T03:04:05Z\","
			"\"bad\":\"2026-12-02 03:04:05\",\"feb\":\"2026-02-30T00:00:00Z\"}");
	const cJSON *arr = NULL;
	bool b = false;
	time_t t = 0;
	char buf[21];
	struct cm_err err;

	(void)state;
	assert_int_equal(cm_json_get_bool(o, "on", true, &b, &err), CM_OK);
	assert_true(b);
	assert_int_equal(cm_json_get_bool(o, "one", true, &b, &err), CM_ERR_INVAL);
	assert_int_equal(cm_json_get_array(o, "list", true, &arr, &err), CM_OK);
	assert_int_equal(cJSON_GetArraySize(arr), 1);
	assert_int_equal(cm_json_get_array(o, "obj", true, &arr, &err), CM_ERR_INVAL);
	assert_int_equal(cm_json_get_time(o, "at", true, &t, &err), CM_OK);
	cm_time_iso(t, buf);
	assert_string_equal(buf, "2026-12-02T03:04:05Z");
	assert_int_equal(cm_json_get_time(o, "bad", true, &t, &err), CM_ERR_INVAL);
	assert_int_equal(cm_json_get_time(o, "feb", true, &t, &err), CM_ERR_INVAL);
	assert_false(cm_time_parse_iso("2026-12-02T03:04:05Z ", &t));
	cJSON_Delete(o);
}

static void test_text_grows_and_keeps_nul_bytes(void **state)
{
	struct cm_text t = {0};
	int i;

	(void)state;
	for(i = 0; i < 1000; i++){
		assert_true(cm_text_append(&t, "ab\0", 3));
	}
	assert_int_equal(t.len, 3000);
	assert_int_equal(t.s[2], '\0');
	assert_int_equal(t.s[3], 'a');
	assert_int_equal(t.s[t.len], '\0');
	cm_text_free(&t);
	cm_text_free(&t);
	assert_null(t.s);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_strings),
		cmocka_unit_test(test_numbers_are_whole_and_in_range),
		cmocka_unit_test(test_bools_arrays_and_times),
		cmocka_unit_test(test_text_grows_and_keeps_nul_bytes),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
