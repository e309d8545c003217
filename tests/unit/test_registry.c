/* The registry: commits tenants and queues the re-check of their devices
 * for the tick, never more than one entry per tenant. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "registry.h"
#include "testutil.h"

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

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_a_commit_queues_its_tenant_once, setup, teardown),
		cmocka_unit_test_setup_teardown(test_a_failed_commit_queues_nothing, setup, teardown),
		cmocka_unit_test_setup_teardown(test_a_deletion_queues_its_tenant, setup, teardown),
		cmocka_unit_test_setup_teardown(test_a_full_queue_rechecks_every_tenant, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
