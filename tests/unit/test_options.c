/* The plugin's numeric options: defaults, ranges, refusals. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "options.h"
#include "testutil.h"

static void test_defaults(void **state)
{
	struct cm_state st;

	(void)state;
	memset(&st, 0, sizeof(st));
	cm_options_set_defaults(&st);
	assert_int_equal(st.fetch_opts.connect_timeout, 5);
	assert_int_equal(st.fetch_opts.timeout, 15);
	assert_int_equal(st.fetch_opts.max_redirects, 3);
	assert_int_equal(st.fetch_opts.max_size, 64 * 1024 * 1024);
	assert_int_equal(st.refresh_interval, 3600);
	assert_int_equal(st.retry_min, 30);
	assert_int_equal(st.retry_max, 3600);
	assert_int_equal(st.expiry_warning_days, 30);
	assert_int_equal(st.rejected_max, 1000);
	assert_int_equal(st.max_payload, 1024 * 1024);
}

static void set_ok(struct cm_state *st, const char *key, const char *value)
{
	struct cm_err err;
	bool known = false;

	if(cm_options_set_number(st, key, value, &known, &err) != CM_OK){
		fail_msg("%s=%s refused: %s", key, value, err.msg);
	}
	assert_true(known);
}

static void set_refused(const char *key, const char *value, const char *msg)
{
	struct cm_state st;
	struct cm_err err;
	bool known = false;

	memset(&st, 0, sizeof(st));
	cm_options_set_defaults(&st);
	if(cm_options_set_number(&st, key, value, &known, &err) != CM_ERR_INVAL){
		fail_msg("%s=%s accepted", key, value);
	}
	assert_true(known);
	if(strstr(err.msg, msg) == NULL){
		fail_msg("%s=%s: '%s' does not say '%s'", key, value, err.msg, msg);
	}
}

/* Each option takes the ends of its range and lands in its field. */
static void test_range_ends_are_taken(void **state)
{
	struct cm_state st;

	(void)state;
	memset(&st, 0, sizeof(st));
	set_ok(&st, "crl_connect_timeout", "300");
	set_ok(&st, "crl_timeout", "1");
	set_ok(&st, "crl_max_redirects", "0");
	set_ok(&st, "crl_max_size", "1024");
	set_ok(&st, "crl_refresh_interval", "2678400");
	set_ok(&st, "crl_retry_min", "86400");
	set_ok(&st, "crl_retry_max", "604800");
	set_ok(&st, "expiry_warning_days", "0");
	set_ok(&st, "rejected_max", "1000000");
	set_ok(&st, "max_payload", "67108864");
	assert_int_equal(st.fetch_opts.connect_timeout, 300);
	assert_int_equal(st.fetch_opts.timeout, 1);
	assert_int_equal(st.fetch_opts.max_redirects, 0);
	assert_int_equal(st.fetch_opts.max_size, 1024);
	assert_int_equal(st.refresh_interval, 31 * 86400);
	assert_int_equal(st.retry_min, 86400);
	assert_int_equal(st.retry_max, 7 * 86400);
	assert_int_equal(st.expiry_warning_days, 0);
	assert_int_equal(st.rejected_max, 1000000);
	assert_int_equal(st.max_payload, 64 * 1024 * 1024);
}

/* One past either end, and what is not a number, are refused with the
 * option's own message. */
static void test_out_of_range_and_not_numbers_are_refused(void **state)
{
	(void)state;
	set_refused("crl_connect_timeout", "0", "unknown option or value out of range");
	set_refused("crl_connect_timeout", "301", "out of range");
	set_refused("crl_max_redirects", "21", "out of range");
	set_refused("crl_max_size", "1023", "out of range");
	set_refused("crl_max_size", "268435457", "out of range");
	set_refused("crl_timeout", "", "plugin_opt_crl_timeout must be a number");
	set_refused("crl_timeout", "15s", "must be a number");
	set_refused("crl_timeout", "-1", "out of range");
	set_refused("crl_timeout", "99999999999999999999999", "must be a number");
	set_refused("expiry_warning_days", "3651", "plugin_opt_expiry_warning_days must be 0 to 3650");
	set_refused("expiry_warning_days", "-1", "must be 0 to 3650");
	set_refused("expiry_warning_days", "x", "must be 0 to 3650");
	set_refused("rejected_max", "1000001", "must be a count from 0 to 1000000");
	set_refused("max_payload", "1023", "must be a byte count from 1024 to 67108864");
	set_refused("max_payload", "67108865", "must be a byte count");
}

/* A crl_ key that is no option is refused as one; the options that take
 * text are left to their readers. */
static void test_unknown_crl_keys_and_text_options(void **state)
{
	struct cm_state st;
	struct cm_err err;
	bool known = true;

	(void)state;
	set_refused("crl_timout", "5", "plugin_opt_crl_timout: unknown option or value out of range");
	set_refused("crl_timout", "five", "plugin_opt_crl_timout must be a number");
	memset(&st, 0, sizeof(st));
	assert_int_equal(cm_options_set_number(&st, "crl_allowed_hosts", "a.example", &known, &err), CM_OK);
	assert_false(known);
	assert_int_equal(cm_options_set_number(&st, "store_dir", "/x", &known, &err), CM_OK);
	assert_false(known);
	assert_int_equal(cm_options_set_number(&st, "mqtt_ports", "8883", &known, &err), CM_OK);
	assert_false(known);
}

static void test_parse_count(void **state)
{
	unsigned long long v = 7;

	(void)state;
	assert_true(cm_options_parse_count("0", 0, 0, &v));
	assert_int_equal(v, 0);
	assert_true(cm_options_parse_count("18446744073709551615", 0, ~0ULL, &v));
	assert_true(v == ~0ULL);
	assert_false(cm_options_parse_count("18446744073709551616", 0, ~0ULL, &v));
	assert_false(cm_options_parse_count("", 0, 10, &v));
	assert_false(cm_options_parse_count("1 ", 0, 10, &v));
	assert_false(cm_options_parse_count("0x5", 0, 10, &v));
	assert_false(cm_options_parse_count("11", 0, 10, &v));
	assert_false(cm_options_parse_count("4", 5, 10, &v));
}

static void text(struct cm_state *st, const char *key, const char *value, enum cm_rc want)
{
	struct cm_err err;
	bool known = false;

	assert_int_equal(cm_options_set_text(st, key, value, &known, &err), want);
	assert_true(known);
}

static void test_the_etcd_back_end_options(void **state)
{
	struct cm_state st;
	struct cm_err err;
	bool known = true;
	char pass[] = "a long passphrase";

	(void)state;
	memset(&st, 0, sizeof(st));
	/* The directory back end: nothing needed, etcd options refused. */
	assert_int_equal(cm_options_check_fleet(&st, "host", &err), CM_OK);
	text(&st, "etcd_endpoints", "http://127.0.0.1:2379", CM_OK);
	assert_int_equal(cm_options_check_fleet(&st, "host", &err), CM_ERR_INVAL);
	assert_non_null(strstr(err.msg, "plugin_opt_store is not etcd"));
	text(&st, "store", "etcd", CM_OK);
	assert_true(st.fleet_opts.etcd);
	/* etcd needs encrypted keys. */
	assert_int_equal(cm_options_check_fleet(&st, "host", &err), CM_ERR_INVAL);
	assert_non_null(strstr(err.msg, "needs plugin_opt_key_passphrase_file"));
	st.key_passphrase = pass;
	assert_int_equal(cm_options_check_fleet(&st, "web-1.example", &err), CM_OK);
	assert_string_equal(st.fleet_opts.prefix, "/certmgr/");
	assert_string_equal(st.fleet_opts.node_name, "web-1.example");
	text(&st, "etcd_prefix", "/no-slash", CM_OK);
	assert_int_equal(cm_options_check_fleet(&st, "host", &err), CM_ERR_INVAL);
	text(&st, "etcd_prefix", "/fleet/", CM_OK);
	text(&st, "node_name", "bad name", CM_OK);
	assert_int_equal(cm_options_check_fleet(&st, "host", &err), CM_ERR_INVAL);
	text(&st, "node_name", "n1", CM_OK);
	assert_int_equal(cm_options_check_fleet(&st, "host", &err), CM_OK);
	text(&st, "store", "redis", CM_ERR_INVAL);
	text(&st, "etcd_cafile", "", CM_ERR_INVAL);
	text(&st, "mqtt_secret_dir", "/etc/certmgr/tls", CM_OK);
	assert_string_equal(st.secret[CM_SLOT_MQTT].dir, "/etc/certmgr/tls");
	assert_int_equal(cm_options_set_text(&st, "nope_secret_dir", "/x", &known, &err), CM_OK);
	assert_false(known);
	st.key_passphrase = NULL;
	cm_options_clear(&st);
	cm_options_clear(&st);
	assert_null(st.fleet_opts.prefix);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_defaults),
		cmocka_unit_test(test_range_ends_are_taken),
		cmocka_unit_test(test_out_of_range_and_not_numbers_are_refused),
		cmocka_unit_test(test_unknown_crl_keys_and_text_options),
		cmocka_unit_test(test_parse_count),
		cmocka_unit_test(test_the_etcd_back_end_options),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
