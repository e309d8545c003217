/* The registry: commits tenants and queues the re-check of their devices
 * for the tick, never more than one entry per tenant; commits the slots'
 * changes, taking what it is given whether it succeeds or not. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "registry.h"
#include "testutil.h"
#include "store.h"

struct fixture {
	char *dir;
	struct cm_state st;
};

static int setup(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));
	struct cm_err err;
	bool created;

	assert_non_null(f);
	f->dir = tu_mkdtemp();
	assert_int_equal(cm_store_open(f->dir, "host.example", &f->st.store, &created, &err), CM_OK);
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *f = *state;

	cm_store_free(&f->st.store);
	tu_rmtree(f->dir);
	free(f->dir);
	free(f);
	return 0;
}

static enum cm_rc put_new(struct cm_state *st, const char *name)
{
	struct cm_tenant *t = cm_tenant_new(name);
	struct cm_err err;

	assert_non_null(t);
	return cm_registry_put_tenant(st, "tester", "createTenant", t, NULL, &err);
}

static void test_a_commit_queues_its_tenant_once(void **state)
{
	struct fixture *f = *state;
	char names[CM_RECHECK_MAX][CM_TENANT_NAME_MAX + 1];
	size_t n;

	assert_int_equal(put_new(&f->st, "acme"), CM_OK);
	assert_non_null(cm_store_find_tenant(f->st.store, "acme"));
	cm_registry_queue_recheck(&f->st, "acme");
	assert_int_equal(put_new(&f->st, "beta"), CM_OK);
	assert_false(cm_registry_take_rechecks(&f->st, names, &n));
	assert_int_equal(n, 2);
	assert_string_equal(names[0], "acme");
	assert_string_equal(names[1], "beta");
	/* Taken: the queue is empty. */
	assert_false(cm_registry_take_rechecks(&f->st, names, &n));
	assert_int_equal(n, 0);
}

static void test_a_failed_commit_queues_nothing(void **state)
{
	struct fixture *f = *state;
	char names[CM_RECHECK_MAX][CM_TENANT_NAME_MAX + 1];
	struct cm_err err;
	size_t n;

	assert_int_equal(cm_registry_delete_tenant(&f->st, "tester", "deleteTenant", "default", &err), CM_ERR_INVAL);
	assert_int_equal(cm_registry_delete_tenant(&f->st, "tester", "deleteTenant", "nobody", &err), CM_ERR_INVAL);
	assert_false(cm_registry_take_rechecks(&f->st, names, &n));
	assert_int_equal(n, 0);
	assert_non_null(cm_store_find_tenant(f->st.store, "default"));
}

static void test_a_deletion_queues_its_tenant(void **state)
{
	struct fixture *f = *state;
	char names[CM_RECHECK_MAX][CM_TENANT_NAME_MAX + 1];
	struct cm_err err;
	size_t n;

	assert_int_equal(put_new(&f->st, "acme"), CM_OK);
	assert_false(cm_registry_take_rechecks(&f->st, names, &n));
	assert_int_equal(cm_registry_delete_tenant(&f->st, "tester", "deleteTenant", "acme", &err), CM_OK);
	assert_null(cm_store_find_tenant(f->st.store, "acme"));
	assert_false(cm_registry_take_rechecks(&f->st, names, &n));
	assert_int_equal(n, 1);
	assert_string_equal(names[0], "acme");
}

static void test_a_full_queue_rechecks_every_tenant(void **state)
{
	struct fixture *f = *state;
	char names[CM_RECHECK_MAX][CM_TENANT_NAME_MAX + 1], name[32];
	size_t n, i;

	for(i = 0; i <= CM_RECHECK_MAX; i++){
		snprintf(name, sizeof(name), "t%zu", i);
		cm_registry_queue_recheck(&f->st, name);
	}
	assert_true(cm_registry_take_rechecks(&f->st, names, &n));
	assert_int_equal(n, 0);
	cm_registry_queue_recheck(&f->st, NULL);
	assert_true(cm_registry_take_rechecks(&f->st, names, &n));
	assert_false(cm_registry_take_rechecks(&f->st, names, &n));
}

static EVP_PKEY *ec_key(void)
{
	struct cm_keyspec spec = {CM_KEY_EC, 0, "P-256"};
	EVP_PKEY *key = NULL;
	struct cm_err err;

	assert_int_equal(cm_pki_generate_key(&spec, &key, &err), CM_OK);
	return key;
}

static struct cm_server_cert *server_cert(const char *cn)
{
	EVP_PKEY *key = ec_key();
	X509 *leaf = NULL;
	struct cm_server_cert *c = NULL;
	struct cm_err err;

	assert_int_equal(cm_pki_make_self_signed(key, cn, NULL, 0, 30, &leaf, &err), CM_OK);
	assert_int_equal(cm_server_cert_new(leaf, NULL, key, cn, false, &c, &err), CM_OK);
	X509_free(leaf);
	EVP_PKEY_free(key);
	return c;
}

static size_t count_certs(const struct cm_store *store, enum cm_slot_id slot)
{
	size_t n = 0;

	for(const struct cm_server_cert *c = cm_store_slot_certs(store, slot); c; c = c->next){
		n++;
	}
	return n;
}

static void test_slot_certificates_are_added_made_default_and_removed(void **state)
{
	struct fixture *f = *state;
	struct cm_server_cert *c = server_cert("one.example");
	char id[CM_ID_LEN + 1];
	size_t before = count_certs(f->st.store, CM_SLOT_MQTT);
	struct cm_err err;

	memcpy(id, c->id, sizeof(id));
	assert_int_equal(cm_registry_slot(&f->st, "tester", "addServerCertificate",
			&(struct cm_slot_change){.op = CM_SLOT_ADD_CERT, .slot = CM_SLOT_MQTT, .cert = c}, &err), CM_OK);
	assert_int_equal(count_certs(f->st.store, CM_SLOT_MQTT), before + 1);
	assert_string_not_equal(cm_store_slot_default(f->st.store, CM_SLOT_MQTT)->id, id);
	assert_int_equal(cm_registry_slot(&f->st, "tester", "setDefaultServerCertificate",
			&(struct cm_slot_change){.op = CM_SLOT_SET_DEFAULT, .slot = CM_SLOT_MQTT, .id = id}, &err), CM_OK);
	assert_string_equal(cm_store_slot_default(f->st.store, CM_SLOT_MQTT)->id, id);
	/* The default is not removed. */
	assert_int_equal(cm_registry_slot(&f->st, "tester", "removeServerCertificate",
			&(struct cm_slot_change){.op = CM_SLOT_REMOVE_CERT, .slot = CM_SLOT_MQTT, .id = id}, &err), CM_ERR_INVAL);
	assert_int_equal(count_certs(f->st.store, CM_SLOT_MQTT), before + 1);
	/* Nor one that is not there. */
	assert_int_equal(cm_registry_slot(&f->st, "tester", "removeServerCertificate",
			&(struct cm_slot_change){.op = CM_SLOT_REMOVE_CERT, .slot = CM_SLOT_BRIDGE, .id = id}, &err), CM_ERR_INVAL);
}

static void test_a_refused_certificate_is_freed_and_changes_nothing(void **state)
{
	struct fixture *f = *state;
	struct cm_server_cert *c = server_cert("twice.example"), *again;
	size_t before;
	struct cm_err err;

	assert_int_equal(cm_registry_slot(&f->st, "tester", "addServerCertificate",
			&(struct cm_slot_change){.op = CM_SLOT_ADD_CERT, .slot = CM_SLOT_WEBSOCKETS, .cert = c}, &err), CM_OK);
	before = count_certs(f->st.store, CM_SLOT_WEBSOCKETS);
	/* The same certificate again: refused, and the copy freed (ASan and
	 * valgrind see a leak otherwise). */
	assert_int_equal(cm_server_cert_new(c->leaf, NULL, c->key, "again", false, &again, &err), CM_OK);
	assert_int_not_equal(cm_registry_slot(&f->st, "tester", "addServerCertificate",
			&(struct cm_slot_change){.op = CM_SLOT_ADD_CERT, .slot = CM_SLOT_WEBSOCKETS, .cert = again}, &err), CM_OK);
	assert_int_equal(count_certs(f->st.store, CM_SLOT_WEBSOCKETS), before);
}

static void test_a_csr_is_added_answered_and_leaves(void **state)
{
	struct fixture *f = *state;
	struct cm_csr *csr = calloc(1, sizeof(*csr));
	struct cm_subject subject = {.cn = "broker.example"};
	struct cm_server_cert *answer;
	X509 *leaf = NULL;
	char csr_id[CM_ID_LEN + 1];
	struct cm_err err;

	assert_non_null(csr);
	csr->key = ec_key();
	assert_int_equal(cm_pki_make_csr(csr->key, &subject, NULL, 0, &csr->req, &err), CM_OK);
	assert_int_equal(cm_pki_csr_id(csr->req, csr->id, &err), CM_OK);
	memcpy(csr_id, csr->id, sizeof(csr_id));
	assert_int_equal(cm_registry_slot(&f->st, "tester", "createCSR",
			&(struct cm_slot_change){.op = CM_SLOT_ADD_CSR, .slot = CM_SLOT_MQTT, .csr = csr}, &err), CM_OK);
	assert_non_null(cm_store_find_csr(f->st.store, CM_SLOT_MQTT, csr_id));
	/* Its answer (here self-signed with the CSR's key) replaces it. */
	assert_int_equal(cm_pki_make_self_signed(csr->key, "broker.example", NULL, 0, 30, &leaf, &err), CM_OK);
	assert_int_equal(cm_server_cert_new(leaf, NULL, csr->key, "answer", false, &answer, &err), CM_OK);
	X509_free(leaf);
	assert_int_equal(cm_registry_slot(&f->st, "tester", "installCertificate", &(struct cm_slot_change){.op = CM_SLOT_INSTALL_CSR,
			.slot = CM_SLOT_MQTT, .id = csr_id, .cert = answer, .make_default = true}, &err), CM_OK);
	assert_null(cm_store_find_csr(f->st.store, CM_SLOT_MQTT, csr_id));
	assert_ptr_equal(cm_store_slot_default(f->st.store, CM_SLOT_MQTT), answer);
	/* A CSR that is gone: refused, and the certificate given freed. */
	answer = server_cert("late.example");
	assert_int_equal(cm_registry_slot(&f->st, "tester", "installCertificate", &(struct cm_slot_change){.op = CM_SLOT_INSTALL_CSR,
			.slot = CM_SLOT_MQTT, .id = csr_id, .cert = answer}, &err), CM_ERR_INVAL);
	assert_int_equal(cm_registry_slot(&f->st, "tester", "removeCSR",
			&(struct cm_slot_change){.op = CM_SLOT_REMOVE_CSR, .slot = CM_SLOT_MQTT, .id = csr_id}, &err), CM_ERR_INVAL);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_a_commit_queues_its_tenant_once, setup, teardown),
		cmocka_unit_test_setup_teardown(test_a_failed_commit_queues_nothing, setup, teardown),
		cmocka_unit_test_setup_teardown(test_a_deletion_queues_its_tenant, setup, teardown),
		cmocka_unit_test_setup_teardown(test_a_full_queue_rechecks_every_tenant, setup, teardown),
		cmocka_unit_test_setup_teardown(test_slot_certificates_are_added_made_default_and_removed, setup, teardown),
		cmocka_unit_test_setup_teardown(test_a_refused_certificate_is_freed_and_changes_nothing, setup, teardown),
		cmocka_unit_test_setup_teardown(test_a_csr_is_added_answered_and_leaves, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
