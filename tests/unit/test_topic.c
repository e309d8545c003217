/* Topic patterns: validation, filling, matching and subscription scope. */
#include <string.h>

#include "topic.h"
#include "testutil.h"

static void test_patterns_are_validated(void **state)
{
	struct cm_err err;

	(void)state;
	assert_int_equal(cm_topic_pattern_valid("{org}/{type}/{id}/#", &err), CM_OK);
	assert_int_equal(cm_topic_pattern_valid("fleet/+/{id}", &err), CM_OK);
	assert_int_equal(cm_topic_pattern_valid("#", &err), CM_OK);
	assert_int_equal(cm_topic_pattern_valid("", &err), CM_ERR_INVAL);
	assert_int_equal(cm_topic_pattern_valid("$SYS/#", &err), CM_ERR_INVAL);
	assert_int_equal(cm_topic_pattern_valid("a/#/b", &err), CM_ERR_INVAL);
	assert_int_equal(cm_topic_pattern_valid("a/b#", &err), CM_ERR_INVAL);
	assert_int_equal(cm_topic_pattern_valid("a/x{id}", &err), CM_ERR_INVAL);
	assert_int_equal(cm_topic_pattern_valid("a/{name}", &err), CM_ERR_INVAL);
}

static void test_fill(void **state)
{
	struct cm_identity id = {'d', "acme", "sensor", "s1"};
	char out[64];

	(void)state;
	assert_true(cm_topic_fill("{org}/{type}/{id}/#", &id, out, sizeof(out)));
	assert_string_equal(out, "acme/sensor/s1/#");
	assert_false(cm_topic_fill("{org}/{type}/{id}/#", &id, out, 10));
}

static void test_matches(void **state)
{
	(void)state;
	assert_true(cm_topic_matches("acme/sensor/s1/#", "acme/sensor/s1/temp"));
	assert_true(cm_topic_matches("acme/sensor/s1/#", "acme/sensor/s1"));
	assert_true(cm_topic_matches("acme/+/s1", "acme/x/s1"));
	assert_false(cm_topic_matches("acme/sensor/s1/#", "acme/sensor/s10/temp"));
	assert_false(cm_topic_matches("acme/sensor/s1/#", "other/sensor/s1/temp"));
	assert_false(cm_topic_matches("acme/+", "acme/a/b"));
	assert_false(cm_topic_matches("#", "$SYS/x"));
	assert_false(cm_topic_matches("acme/sensor", "acme/sensor/x"));
}

static void test_subscriptions_stay_within(void **state)
{
	(void)state;
	assert_true(cm_topic_sub_within("acme/s/1/#", "acme/s/1/#"));
	assert_true(cm_topic_sub_within("acme/s/1/#", "acme/s/1/temp"));
	assert_true(cm_topic_sub_within("acme/s/1/#", "acme/s/1/+/x"));
	assert_true(cm_topic_sub_within("acme/s/1/#", "acme/s/1"));
	assert_true(cm_topic_sub_within("acme/+/1", "acme/x/1"));
	assert_true(cm_topic_sub_within("acme/+/1", "acme/+/1"));
	assert_false(cm_topic_sub_within("acme/s/1/#", "acme/s/+/#"));
	assert_false(cm_topic_sub_within("acme/s/1/#", "acme/#"));
	assert_false(cm_topic_sub_within("acme/s/1/#", "#"));
	assert_false(cm_topic_sub_within("acme/s/1/#", "+/s/1/x"));
	assert_false(cm_topic_sub_within("acme/s/1", "acme/s/1/#"));
	assert_false(cm_topic_sub_within("acme/x/1", "acme/+/1"));
	assert_false(cm_topic_sub_within("acme/s/1/#", "other/s/1/x"));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_patterns_are_validated),
		cmocka_unit_test(test_fill),
		cmocka_unit_test(test_matches),
		cmocka_unit_test(test_subscriptions_stay_within),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
