/* The server_name extension parser: bytes from anyone who opens a
 * connection. Each length is checked against what is left; a name is
 * lower-cased and only host-name bytes pass. */
#include <string.h>

#include "sni.h"
#include "testutil.h"

/* An extension body (server_name_list) holding one entry of type type. */
static size_t body(unsigned char *out, unsigned char type, const char *name, size_t name_len)
{
	size_t list = 3 + name_len;

	out[0] = (unsigned char)(list >> 8);
	out[1] = (unsigned char)list;
	out[2] = type;
	out[3] = (unsigned char)(name_len >> 8);
	out[4] = (unsigned char)name_len;
	memcpy(out + 5, name, name_len);
	return 5 + name_len;
}

static void test_a_host_name_is_read_lower_cased(void **state)
{
	unsigned char ext[300];
	char out[CM_HOSTNAME_MAX + 1];
	size_t n = body(ext, 0, "Broker.Example.COM", 18);

	(void)state;
	assert_true(cm_sni_parse(ext, n, out));
	assert_string_equal(out, "broker.example.com");
}

static void test_lengths_that_lie_are_refused(void **state)
{
	unsigned char ext[300];
	char out[CM_HOSTNAME_MAX + 1];
	size_t n = body(ext, 0, "a.example", 9), cut;

	(void)state;
	for(cut = 0; cut < n; cut++){
		assert_false(cm_sni_parse(ext, cut, out));
	}
	/* The list says more than there is. */
	ext[1] = (unsigned char)(ext[1] + 1);
	assert_false(cm_sni_parse(ext, n, out));
	ext[1] = (unsigned char)(ext[1] - 1);
	/* The name says more than the list. */
	ext[4] = (unsigned char)(ext[4] + 1);
	assert_false(cm_sni_parse(ext, n, out));
}

static void test_bad_names_are_refused(void **state)
{
	unsigned char ext[600];
	char out[CM_HOSTNAME_MAX + 1], longname[300];
	size_t n;

	(void)state;
	n = body(ext, 0, "", 0);
	assert_false(cm_sni_parse(ext, n, out));
	n = body(ext, 0, "a\0b.example", 11);
	assert_false(cm_sni_parse(ext, n, out));
	n = body(ext, 0, "a/b.example", 11);
	assert_false(cm_sni_parse(ext, n, out));
	n = body(ext, 0, "caf\xc3\xa9.example", 13);
	assert_false(cm_sni_parse(ext, n, out));
	memset(longname, 'a', sizeof(longname));
	n = body(ext, 0, longname, CM_HOSTNAME_MAX + 1);
	assert_false(cm_sni_parse(ext, n, out));
	n = body(ext, 0, longname, CM_HOSTNAME_MAX);
	assert_true(cm_sni_parse(ext, n, out));
	assert_int_equal(strlen(out), CM_HOSTNAME_MAX);
	/* A type other than host_name holds no host name. */
	n = body(ext, 1, "a.example", 9);
	assert_false(cm_sni_parse(ext, n, out));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_a_host_name_is_read_lower_cased),
		cmocka_unit_test(test_lengths_that_lie_are_refused),
		cmocka_unit_test(test_bad_names_are_refused),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
