/* The field tables of control commands: unknown fields refused by name,
 * types, limits, required fields, the envelope, and the getters. */
#include <string.h>

#include "fields.h"
#include "testutil.h"

static const struct cm_field fields[] = {
	{"tenant", CM_FIELD_STRING, CM_REQUIRED, 0, NULL},
	{"description", CM_FIELD_STRING, CM_OPTIONAL, 8, NULL},
	{"active", CM_FIELD_BOOL, CM_OPTIONAL, 0, NULL},
	{"hostnames", CM_FIELD_STRINGS, CM_OPTIONAL, 2, NULL},
	{"key", CM_FIELD_OBJECT, CM_OPTIONAL, 0, "an object with 'type'"},
	{"issuers", CM_FIELD_PEMS, CM_OPTIONAL, 0, NULL},
	{NULL, CM_FIELD_STRING, CM_OPTIONAL, 0, NULL},
};

static const struct cm_field none[] = {
	{NULL, CM_FIELD_STRING, CM_OPTIONAL, 0, NULL},
};

/* cm_fields_check on the JSON text; err holds the reason. */
static enum cm_rc check(const struct cm_field *table, const char *json, struct cm_err *err)
{
	cJSON *cmd = cJSON_Parse(json);
	enum cm_rc rc;

	assert_non_null(cmd);
	memset(err, 0, sizeof(*err));
	rc = cm_fields_check(table, cmd, err);
	cJSON_Delete(cmd);
	return rc;
}

static void test_known_fields_of_their_types_pass(void **state)
{
	struct cm_err err;

	(void)state;
	assert_int_equal(check(fields, "{\"command\":\"x\",\"tenant\":\"acme\"}", &err), CM_OK);
	assert_int_equal(check(fields, "{\"command\":\"x\",\"tenant\":\"a\",\"description\":\"12345678\",\"active\":false,"
			"\"hostnames\":[\"a\",\"b\"],\"key\":{},\"issuers\":\"pem\",\"correlationData\":\"c\"}", &err), CM_OK);
	assert_int_equal(check(fields, "{\"tenant\":\"a\",\"issuers\":[\"p1\",\"p2\"]}", &err), CM_OK);
}

static void test_an_unknown_field_is_refused_by_name(void **state)
{
	struct cm_err err;

	(void)state;
	assert_int_equal(check(fields, "{\"command\":\"x\",\"tenant\":\"a\",\"tenantt\":\"a\"}", &err), CM_ERR_INVAL);
	assert_non_null(strstr(err.msg, "unknown field 'tenantt'"));
	/* The fields it takes, to find the one meant. */
	assert_non_null(strstr(err.msg, "tenant, description, active, hostnames, key, issuers"));
	assert_int_equal(check(none, "{\"command\":\"x\",\"tenant\":\"a\"}", &err), CM_ERR_INVAL);
	assert_string_equal(err.msg, "unknown field 'tenant' (this command takes no fields)");
	/* Case counts: JSON names are exact. */
	assert_int_equal(check(fields, "{\"tenant\":\"a\",\"Active\":true}", &err), CM_ERR_INVAL);
	assert_non_null(strstr(err.msg, "'Active'"));
}

static void test_the_envelope_is_taken_by_every_command(void **state)
{
	struct cm_err err;

	(void)state;
	assert_true(cm_fields_envelope("command"));
	assert_true(cm_fields_envelope("correlationData"));
	assert_false(cm_fields_envelope("tenant"));
	assert_int_equal(check(none, "{\"command\":\"x\",\"correlationData\":\"1\"}", &err), CM_OK);
	assert_int_equal(check(none, "{}", &err), CM_OK);
}

static void test_a_mistyped_field_is_refused_by_name(void **state)
{
	static const struct {
		const char *json, *msg;
	} cases[] = {
		{"{\"tenant\":5}", "'tenant' must be a string"},
		{"{\"tenant\":null}", "'tenant' must be a string"},
		{"{\"tenant\":\"a\",\"active\":\"yes\"}", "'active' must be true or false"},
		{"{\"tenant\":\"a\",\"active\":1}", "'active' must be true or false"},
		{"{\"tenant\":\"a\",\"hostnames\":\"a\"}", "'hostnames' must be an array of strings"},
		{"{\"tenant\":\"a\",\"hostnames\":[\"a\",1]}", "'hostnames' must be an array of strings"},
		{"{\"tenant\":\"a\",\"key\":\"ec\"}", "'key' must be an object with 'type'"},
		{"{\"tenant\":\"a\",\"key\":[]}", "'key' must be an object with 'type'"},
		{"{\"tenant\":\"a\",\"issuers\":5}", "'issuers' must be a string or an array of strings"},
		{"{\"tenant\":\"a\",\"issuers\":[{}]}", "'issuers' must be a string or an array of strings"},
	};
	struct cm_err err;
	size_t i;

	(void)state;
	for(i = 0; i < sizeof(cases) / sizeof(cases[0]); i++){
		assert_int_equal(check(fields, cases[i].json, &err), CM_ERR_INVAL);
		assert_string_equal(err.msg, cases[i].msg);
	}
}

static void test_limits(void **state)
{
	struct cm_err err;

	(void)state;
	assert_int_equal(check(fields, "{\"tenant\":\"a\",\"description\":\"123456789\"}", &err), CM_ERR_INVAL);
	assert_string_equal(err.msg, "'description' is longer than 8 characters");
	assert_int_equal(check(fields, "{\"tenant\":\"a\",\"hostnames\":[\"a\",\"b\",\"c\"]}", &err), CM_ERR_INVAL);
	assert_string_equal(err.msg, "'hostnames' holds more than 2 entries");
}

static void test_a_missing_required_field_is_named(void **state)
{
	struct cm_err err;

	(void)state;
	assert_int_equal(check(fields, "{\"command\":\"x\",\"active\":true}", &err), CM_ERR_INVAL);
	assert_string_equal(err.msg, "'tenant' is missing");
	/* A mistyped field is named before a missing one. */
	assert_int_equal(check(fields, "{\"active\":3}", &err), CM_ERR_INVAL);
	assert_string_equal(err.msg, "'active' must be true or false");
}

static void test_getters_read_checked_fields_or_the_default(void **state)
{
	cJSON *cmd = cJSON_Parse("{\"tenant\":\"acme\",\"active\":false}");

	(void)state;
	assert_string_equal(cm_arg_string(cmd, "tenant", NULL), "acme");
	assert_null(cm_arg_string(cmd, "description", NULL));
	assert_string_equal(cm_arg_string(cmd, "description", ""), "");
	assert_false(cm_arg_bool(cmd, "active", true));
	assert_true(cm_arg_bool(cmd, "makeDefault", true));
	cJSON_Delete(cmd);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_known_fields_of_their_types_pass),
		cmocka_unit_test(test_an_unknown_field_is_refused_by_name),
		cmocka_unit_test(test_the_envelope_is_taken_by_every_command),
		cmocka_unit_test(test_a_mistyped_field_is_refused_by_name),
		cmocka_unit_test(test_limits),
		cmocka_unit_test(test_a_missing_required_field_is_named),
		cmocka_unit_test(test_getters_read_checked_fields_or_the_default),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
