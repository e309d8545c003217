/* Certificates of a bulk request parsed ahead on a thread of their own:
 * whatever order the commands ask in, and however far the thread has
 * got, each command gets what cm_pki_parse_certs gives for its text, and
 * what no command took is freed. */
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <openssl/x509.h>

#include "pki.h"
#include "preparse.h"
#include "testutil.h"

#define COUNT 24

struct bulk {
	char *pem[COUNT];
	cJSON *commands;
};

static char *new_pem(int i)
{
	struct cm_keyspec spec = {.type = CM_KEY_EC, .curve = "P-256"};
	EVP_PKEY *key = NULL;
	X509 *cert = NULL;
	char cn[32], *pem = NULL;
	size_t len;

	snprintf(cn, sizeof(cn), "bulk %d", i);
	assert_int_equal(cm_pki_generate_key(&spec, &key, NULL), CM_OK);
	assert_int_equal(cm_pki_make_self_signed(key, cn, NULL, 0, 30, &cert, NULL), CM_OK);
	assert_int_equal(cm_pki_chain_to_pem(cert, NULL, &pem, &len, NULL), CM_OK);
	X509_free(cert);
	EVP_PKEY_free(key);
	return pem;
}

/* COUNT commands: addCA and trustCertificate with a certificate each,
 * every fifth text not a certificate, the eighth two certificates; a
 * createTenant between them, which is not parsed. */
static int setup(void **state)
{
	struct bulk *b = calloc(1, sizeof(*b));

	b->commands = cJSON_CreateArray();
	for(int i = 0; i < COUNT; i++){
		cJSON *cmd = cJSON_CreateObject(), *other = cJSON_CreateObject();
		if(i % 5 == 4){
			b->pem[i] = strdup("-----BEGIN CERTIFICATE-----\nnot base64 at all\n-----END CERTIFICATE-----\n");
		}else if(i == 7){
			char *one = new_pem(i), *two = new_pem(i + 100);
			size_t n = strlen(one) + strlen(two) + 1;
			b->pem[i] = malloc(n);
			snprintf(b->pem[i], n, "%s%s", one, two);
			free(one);
			free(two);
		}else{
			b->pem[i] = new_pem(i);
		}
		cJSON_AddStringToObject(other, "command", "createTenant");
		cJSON_AddStringToObject(other, "certificate", b->pem[i]);
		cJSON_AddItemToArray(b->commands, other);
		cJSON_AddStringToObject(cmd, "command", i % 2 ? "trustCertificate" : "addCA");
		cJSON_AddStringToObject(cmd, "certificate", b->pem[i]);
		cJSON_AddItemToArray(b->commands, cmd);
	}
	*state = b;
	return 0;
}

static int teardown(void **state)
{
	struct bulk *b = *state;

	for(int i = 0; i < COUNT; i++){
		free(b->pem[i]);
	}
	cJSON_Delete(b->commands);
	free(b);
	return 0;
}

/* The text of the i-th parsed command, as the request holds it. */
static const char *text_of(struct bulk *b, int i)
{
	return cJSON_GetObjectItemCaseSensitive(cJSON_GetArrayItem(b->commands, 2 * i + 1), "certificate")->valuestring;
}

/* What take gave (rc, certs, err) is what a parse of the text gives. */
static void same_as_a_parse(const char *pem, enum cm_rc rc, STACK_OF(X509) *certs, const struct cm_err *err)
{
	STACK_OF(X509) *want = NULL;
	struct cm_err want_err = {{0}};
	enum cm_rc want_rc = cm_pki_parse_certs(pem, strlen(pem), &want, &want_err);

	assert_int_equal(rc, want_rc);
	if(rc != CM_OK){
		assert_null(certs);
		assert_string_equal(err->msg, want_err.msg);
		return;
	}
	assert_int_equal(sk_X509_num(certs), sk_X509_num(want));
	for(int i = 0; i < sk_X509_num(want); i++){
		assert_int_equal(X509_cmp(sk_X509_value(certs, i), sk_X509_value(want, i)), 0);
	}
	sk_X509_pop_free(want, X509_free);
}

static void take_and_check(struct cm_preparse *p, const char *pem)
{
	STACK_OF(X509) *certs = NULL;
	struct cm_err err = {{0}};
	enum cm_rc rc = cm_preparse_take(p, pem, &certs, &err);

	same_as_a_parse(pem, rc, certs, &err);
	sk_X509_pop_free(certs, X509_free);
}

static void test_commands_in_order_get_their_own_results(void **state)
{
	struct bulk *b = *state;
	struct cm_preparse *p = cm_preparse_start(b->commands);
	struct cm_preparse_stats stats;

	assert_non_null(p);
	/* Time for the thread to get ahead: its results are the ones
	 * taken. */
	usleep(300 * 1000);
	for(int i = 0; i < COUNT; i++){
		take_and_check(p, text_of(b, i));
	}
	cm_preparse_stats(p, &stats);
	assert_int_equal(stats.taken_ahead, COUNT);
	assert_int_equal(stats.held, 0);
	cm_preparse_free(&p);
	assert_null(p);
	cm_preparse_free(&p);
	cm_preparse_free(NULL);
}

static void test_any_order_twice_or_a_text_not_held_is_parsed_as_well(void **state)
{
	struct bulk *b = *state;
	struct cm_preparse *p = cm_preparse_start(b->commands);

	assert_non_null(p);
	for(int i = COUNT - 1; i >= 0; i -= 2){
		take_and_check(p, text_of(b, i));
	}
	/* Taken again: parsed again, the same. */
	take_and_check(p, text_of(b, COUNT - 1));
	/* An equal text elsewhere is not one of the request's. */
	take_and_check(p, b->pem[0]);
	cm_preparse_free(&p);
}

static void test_what_no_command_took_is_freed(void **state)
{
	struct bulk *b = *state;
	struct cm_preparse *p = cm_preparse_start(b->commands);

	assert_non_null(p);
	take_and_check(p, text_of(b, 3));
	/* Freed at once, and after the thread is done: the sanitizer build
	 * reports a leak or a use after free. */
	cm_preparse_free(&p);
	p = cm_preparse_start(b->commands);
	assert_non_null(p);
	take_and_check(p, text_of(b, COUNT - 1));
	cm_preparse_free(&p);
}

/* More commands than the thread may run ahead of: it waits for them;
 * the results of those they pass without asking are freed, so that it
 * never holds more than CM_PREPARSE_AHEAD. Every text differs, so that
 * a result handed to the wrong command shows. */
static void test_a_long_request_in_order_and_with_gaps(void **state)
{
	cJSON *many = cJSON_CreateArray();
	struct cm_preparse *p;
	struct cm_preparse_stats stats;
	int i, n = 4 * CM_PREPARSE_AHEAD;

	(void)state;
	for(i = 0; i < n; i++){
		cJSON *cmd = cJSON_CreateObject();
		char *pem = i % 9 == 8 ? strdup("not a certificate") : new_pem(i);
		cJSON_AddStringToObject(cmd, "command", "addCA");
		cJSON_AddStringToObject(cmd, "certificate", pem);
		cJSON_AddItemToArray(many, cmd);
		free(pem);
	}
	for(int gap = 1; gap <= 7; gap += 6){
		assert_non_null(p = cm_preparse_start(many));
		usleep(100 * 1000);
		for(i = 0; i < n; i += gap){
			take_and_check(p, cJSON_GetObjectItemCaseSensitive(cJSON_GetArrayItem(many, i), "certificate")->valuestring);
			cm_preparse_stats(p, &stats);
			assert_true(stats.held <= CM_PREPARSE_AHEAD);
			if(i % 20 == 0){
				usleep(5 * 1000); /* lets the thread fill its window */
			}
		}
		assert_true(stats.taken_ahead > 0);
		cm_preparse_free(&p);
	}
	cJSON_Delete(many);
}

static void test_a_small_request_is_parsed_by_its_commands(void **state)
{
	struct bulk *b = *state;
	cJSON *few = cJSON_CreateArray(), *cmd = NULL;

	for(int i = 0; i < CM_PREPARSE_MIN - 1; i++){
		cmd = cJSON_CreateObject();
		cJSON_AddStringToObject(cmd, "command", "addCA");
		cJSON_AddStringToObject(cmd, "certificate", b->pem[i % COUNT]);
		cJSON_AddItemToArray(few, cmd);
	}
	assert_null(cm_preparse_start(few));
	take_and_check(NULL, cJSON_GetObjectItemCaseSensitive(cmd, "certificate")->valuestring);
	cJSON_Delete(few);
	assert_null(cm_preparse_start(NULL));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_commands_in_order_get_their_own_results, setup, teardown),
		cmocka_unit_test_setup_teardown(test_any_order_twice_or_a_text_not_held_is_parsed_as_well, setup, teardown),
		cmocka_unit_test_setup_teardown(test_what_no_command_took_is_freed, setup, teardown),
		cmocka_unit_test_setup_teardown(test_a_long_request_in_order_and_with_gaps, setup, teardown),
		cmocka_unit_test_setup_teardown(test_a_small_request_is_parsed_by_its_commands, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
