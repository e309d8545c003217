/* The rejected-chains list: an entry is the chain as sent, bounded, and
 * survives a save and a load unchanged. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "rejected.h"
#include "testutil.h"

struct material {
	X509 *ca1, *ca2, *leaf;
	EVP_PKEY *k1, *k2, *kl;
};

static void make_material(struct material *m)
{
	struct cm_err err;

	assert_int_equal(cm_pki_make_ca("Rejected Test CA 1", 30, &m->ca1, &m->k1, &err), CM_OK);
	assert_int_equal(cm_pki_make_ca("Rejected Test CA 2", 30, &m->ca2, &m->k2, &err), CM_OK);
	assert_int_equal(cm_pki_make_client_cert(m->ca1, m->k1, "d:sensor:r1", 30, &m->leaf, &m->kl, &err), CM_OK);
}

static void free_material(struct material *m)
{
	X509_free(m->ca1);
	X509_free(m->ca2);
	X509_free(m->leaf);
	EVP_PKEY_free(m->k1);
	EVP_PKEY_free(m->k2);
	EVP_PKEY_free(m->kl);
}

/* leaf followed by n certificates from tops (cycled). */
static STACK_OF(X509) *chain_of(X509 *leaf, X509 *const *tops, int ntops, int n)
{
	STACK_OF(X509) *s = sk_X509_new_null();

	assert_non_null(s);
	assert_true(sk_X509_push(s, leaf) > 0);
	for(int i = 0; i < n; i++){
		assert_true(sk_X509_push(s, tops[i % ntops]) > 0);
	}
	return s;
}

static void record(struct cm_rejected_list *list, STACK_OF(X509) *chain, time_t now)
{
	cm_rejected_record(list, chain, "unable to get local issuer certificate", "acme.test", "acme", "127.0.0.1", now);
}

static void test_the_same_leaf_under_two_chains_is_two_entries(void **state)
{
	struct material m;
	struct cm_rejected_list *list = cm_rejected_new(10);
	STACK_OF(X509) *genuine, *forged;
	struct cm_rejected *r, *tmp;
	char leaf_id[CM_ID_LEN + 1];
	struct cm_err err;

	(void)state;
	make_material(&m);
	forged = chain_of(m.leaf, &m.ca2, 1, 1);
	genuine = chain_of(m.leaf, &m.ca1, 1, 1);
	record(list, forged, 100);
	record(list, genuine, 101);
	record(list, genuine, 102);
	assert_int_equal(cm_rejected_count(list), 2);
	assert_int_equal(cm_pki_cert_id(m.leaf, leaf_id, &err), CM_OK);
	HASH_ITER(hh, list->entries, r, tmp){
		assert_string_equal(r->leaf_id, leaf_id);
		assert_string_not_equal(r->id, leaf_id);
		/* The chain recorded first stays what it was. */
		assert_int_equal(X509_cmp(sk_X509_value(r->chain, 1), r->count == 2 ? m.ca1 : m.ca2), 0);
	}
	sk_X509_free(forged);
	sk_X509_free(genuine);
	cm_rejected_free(&list);
	assert_null(list);
	cm_rejected_free(&list);
	free_material(&m);
}

static void test_a_lone_leaf_is_keyed_by_its_id_and_long_chains_are_bounded(void **state)
{
	struct material m;
	struct cm_rejected_list *list = cm_rejected_new(10);
	X509 *tops[2];
	STACK_OF(X509) *one, *longer;
	char leaf_id[CM_ID_LEN + 1];
	struct cm_rejected *r, *tmp;
	struct cm_err err;

	(void)state;
	make_material(&m);
	tops[0] = m.ca1;
	tops[1] = m.ca2;
	one = chain_of(m.leaf, tops, 2, 0);
	longer = chain_of(m.leaf, tops, 2, 20);
	record(list, one, 100);
	assert_int_equal(cm_pki_cert_id(m.leaf, leaf_id, &err), CM_OK);
	assert_non_null(cm_rejected_find(list, leaf_id));
	record(list, longer, 101);
	HASH_ITER(hh, list->entries, r, tmp){
		assert_true(sk_X509_num(r->chain) <= CM_REJECTED_MAX_CHAIN);
	}
	assert_int_equal(cm_rejected_count(list), 2);
	sk_X509_free(one);
	sk_X509_free(longer);
	cm_rejected_free(&list);
	free_material(&m);
}

static void test_entries_survive_a_save_and_a_load(void **state)
{
	struct material m;
	struct cm_rejected_list *list = cm_rejected_new(10), *again = cm_rejected_new(10);
	STACK_OF(X509) *a, *b;
	struct cm_rejected *r, *tmp;
	char *dir = tu_mkdtemp();
	struct cm_err err;

	(void)state;
	make_material(&m);
	a = chain_of(m.leaf, &m.ca1, 1, 1);
	b = chain_of(m.leaf, &m.ca2, 1, 1);
	record(list, a, 100);
	record(list, b, 200);
	record(list, b, 300);
	assert_int_equal(cm_rejected_save(list, dir, &err), CM_OK);
	assert_int_equal(cm_rejected_load(again, dir, &err), CM_OK);
	assert_int_equal(cm_rejected_count(again), 2);
	HASH_ITER(hh, list->entries, r, tmp){
		struct cm_rejected *o = cm_rejected_find(again, r->id);
		assert_non_null(o);
		assert_string_equal(o->leaf_id, r->leaf_id);
		assert_int_equal(o->count, r->count);
		assert_int_equal(o->first_seen, r->first_seen);
		assert_int_equal(o->last_seen, r->last_seen);
		assert_int_equal(sk_X509_num(o->chain), sk_X509_num(r->chain));
	}
	sk_X509_free(a);
	sk_X509_free(b);
	cm_rejected_free(&list);
	cm_rejected_free(&again);
	tu_rmtree(dir);
	free(dir);
	free_material(&m);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_the_same_leaf_under_two_chains_is_two_entries),
		cmocka_unit_test(test_a_lone_leaf_is_keyed_by_its_id_and_long_chains_are_bounded),
		cmocka_unit_test(test_entries_survive_a_save_and_a_load),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
