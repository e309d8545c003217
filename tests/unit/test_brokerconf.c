/* Reading per_listener_settings the way Mosquitto reads its configuration. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "brokerconf.h"
#include "testutil.h"

static void test_config_path_comes_from_the_command_line(void **state)
{
	static const char a[] = "mosquitto\0-v\0-c\0/etc/m.conf\0";
	static const char b[] = "mosquitto\0--config-file\0rel.conf\0-v\0";
	static const char none[] = "mosquitto\0-v\0";
	static const char dangling[] = "mosquitto\0-c\0";
	char out[64];
	struct cm_err err;

	(void)state;
	assert_int_equal(cm_brokerconf_path_from_cmdline(a, sizeof(a) - 1, out, sizeof(out), &err), CM_OK);
	assert_string_equal(out, "/etc/m.conf");
	assert_int_equal(cm_brokerconf_path_from_cmdline(b, sizeof(b) - 1, out, sizeof(out), &err), CM_OK);
	assert_string_equal(out, "rel.conf");
	assert_int_equal(cm_brokerconf_path_from_cmdline(none, sizeof(none) - 1, out, sizeof(out), &err), CM_ERR_INVAL);
	assert_non_null(strstr(err.msg, "without a configuration file"));
	assert_int_equal(cm_brokerconf_path_from_cmdline(dangling, sizeof(dangling) - 1, out, sizeof(out), &err), CM_ERR_INVAL);
	assert_int_equal(cm_brokerconf_path_from_cmdline(a, sizeof(a) - 1, out, 5, &err), CM_ERR_INVAL);
}

static bool pls(const char *dir, const char *main_conf, enum cm_rc want_rc)
{
	char path[512];
	bool value = true;
	struct cm_err err;

	snprintf(path, sizeof(path), "%s/main.conf", dir);
	tu_write_file(path, main_conf);
	assert_int_equal(cm_brokerconf_per_listener_settings(path, &value, &err), want_rc);
	return value;
}

static void test_per_listener_settings_is_read_with_includes(void **state)
{
	char *dir = tu_mkdtemp();
	char conf[1024], inc[512], path[600];

	(void)state;
	assert_false(pls(dir, "listener 1883\n", CM_OK));
	assert_true(pls(dir, "per_listener_settings true\nlistener 1883\n", CM_OK));
	assert_true(pls(dir, "  per_listener_settings   1  \r\n", CM_OK));
	assert_false(pls(dir, "# per_listener_settings true\n", CM_OK));
	assert_false(pls(dir, "per_listener_settings true\nper_listener_settings false\n", CM_OK));

	snprintf(inc, sizeof(inc), "%s/conf.d", dir);
	mkdir(inc, 0755);
	snprintf(path, sizeof(path), "%s/10-a.conf", inc);
	tu_write_file(path, "per_listener_settings true\n");
	snprintf(path, sizeof(path), "%s/20-b.txt", inc);
	tu_write_file(path, "per_listener_settings false\n"); /* not *.conf: ignored */
	snprintf(conf, sizeof(conf), "include_dir %s\n", inc);
	assert_true(pls(dir, conf, CM_OK));
	/* an include_dir before a later main-file line: the later line wins */
	snprintf(conf, sizeof(conf), "include_dir %s\nper_listener_settings false\n", inc);
	assert_false(pls(dir, conf, CM_OK));
	/* files of the directory in name order: the last one wins */
	snprintf(path, sizeof(path), "%s/30-c.conf", inc);
	tu_write_file(path, "per_listener_settings false\n");
	snprintf(conf, sizeof(conf), "include_dir %s\n", inc);
	assert_false(pls(dir, conf, CM_OK));
	tu_rmtree(dir);
	free(dir);
}

static void test_unreadable_configuration_is_an_error_naming_it(void **state)
{
	bool value;
	struct cm_err err;
	char *dir = tu_mkdtemp();
	char conf[600];

	(void)state;
	assert_int_equal(cm_brokerconf_per_listener_settings("/nonexistent/m.conf", &value, &err), CM_ERR_IO);
	assert_non_null(strstr(err.msg, "/nonexistent/m.conf"));
	snprintf(conf, sizeof(conf), "include_dir %s/none\n", dir);
	assert_int_equal(pls(dir, conf, CM_ERR_IO), false);
	tu_rmtree(dir);
	free(dir);
}

/* conf as cm_brokerconf_read makes it of a main.conf holding text. */
static void read_text(const char *text, struct cm_brokerconf *conf)
{
	char *dir = tu_mkdtemp();
	char path[600];
	struct cm_err err;

	snprintf(path, sizeof(path), "%s/main.conf", dir);
	tu_write_file(path, text);
	assert_int_equal(cm_brokerconf_read(path, conf, &err), CM_OK);
	tu_rmtree(dir);
	free(dir);
}

static void test_identity_as_username_is_read_per_listener(void **state)
{
	struct cm_brokerconf conf;

	(void)state;
	read_text("use_subject_as_username true\n"
			"listener 8883 localhost\nuse_identity_as_username true\nuse_identity_as_username false\n"
			"listener 9883\nuse_identity_as_username 1\n", &conf);
	assert_int_equal(conf.listener_count, 3);
	assert_int_equal(conf.listeners[0].port, 1883);
	assert_true(conf.listeners[0].use_subject_as_username);
	assert_int_equal(conf.listeners[1].port, 8883);
	assert_false(conf.listeners[1].use_identity_as_username);
	assert_int_equal(conf.listeners[2].port, 9883);
	assert_true(conf.listeners[2].use_identity_as_username);
	assert_false(conf.listeners[2].use_subject_as_username);
}

/* Which listeners are websockets, and which of them TLS: a certfile, and
 * not a psk_hint (a websockets listener with only that is plain). */
static void test_websockets_listeners_and_their_tls_are_read(void **state)
{
	struct cm_brokerconf conf;

	(void)state;
	read_text("listener 8883\ncertfile /x.crt\n"
			"listener 8885\nprotocol websockets\ncertfile /w.crt\nkeyfile /w.key\n"
			"listener 9001\nprotocol websockets\npsk_hint devices\n"
			"listener 9002\nprotocol websockets\nprotocol mqtt\n", &conf);
	assert_int_equal(conf.listener_count, 5);
	assert_true(!conf.listeners[1].websockets && conf.listeners[1].tls);
	assert_true(conf.listeners[2].websockets && conf.listeners[2].tls);
	assert_true(conf.listeners[3].websockets && !conf.listeners[3].tls);
	assert_false(conf.listeners[4].websockets);
	assert_ptr_equal(cm_brokerconf_listener(&conf, 9001), &conf.listeners[3]);
	assert_null(cm_brokerconf_listener(&conf, 9003));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_config_path_comes_from_the_command_line),
		cmocka_unit_test(test_per_listener_settings_is_read_with_includes),
		cmocka_unit_test(test_unreadable_configuration_is_an_error_naming_it),
		cmocka_unit_test(test_identity_as_username_is_read_per_listener),
		cmocka_unit_test(test_websockets_listeners_and_their_tls_are_read),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
