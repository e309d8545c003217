/* Blocks and the device inventory: sorted blocks, the inventory's
 * counting, bounds, order and file, and the device ids a certificate
 * names. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "blocks.h"
#include "identity.h"
#include "inventory.h"
#include "testutil.h"

static void test_blocks_are_sorted_unique_and_copied(void **state)
{
	struct cm_blocklist l = {NULL, 0}, copy = {NULL, 0};
	struct cm_err err;

	(void)state;
	assert_int_equal(cm_blocks_add(&l, "d:a:t:2", "stolen", "admin", 10, &err), CM_OK);
	assert_int_equal(cm_blocks_add(&l, "d:a:t:1", "", "admin", 11, &err), CM_OK);
	assert_int_equal(cm_blocks_add(&l, "d:a:t:3", NULL, NULL, 12, &err), CM_OK);
	assert_int_equal(cm_blocks_add(&l, "d:a:t:2", "again", "admin", 13, &err), CM_ERR_INVAL);
	assert_non_null(strstr(err.msg, "blocked already"));
	assert_int_equal(l.n, 3);
	assert_string_equal(l.v[0].key, "d:a:t:1");
	assert_string_equal(l.v[2].key, "d:a:t:3");
	assert_string_equal(cm_blocks_find(&l, "d:a:t:2")->reason, "stolen");
	assert_null(cm_blocks_find(&l, "d:a:t:4"));
	assert_int_equal(cm_blocks_copy(&copy, &l), CM_OK);
	assert_true(cm_blocks_remove(&l, "d:a:t:1"));
	assert_false(cm_blocks_remove(&l, "d:a:t:1"));
	assert_null(cm_blocks_find(&l, "d:a:t:1"));
	assert_non_null(cm_blocks_find(&copy, "d:a:t:1"));
	assert_int_equal(copy.n, 3);
	cm_blocks_clear(&l);
	cm_blocks_clear(&l);
	cm_blocks_clear(&copy);
	assert_false(cm_block_device_id_valid(""));
	assert_false(cm_block_device_id_valid("a\nb"));
	assert_true(cm_block_device_id_valid("any client id"));
}

static void test_a_list_read_twice_the_same_key_is_refused(void **state)
{
	struct cm_blocklist l = {NULL, 0};
	struct cm_err err;

	(void)state;
	l.v = calloc(2, sizeof(*l.v));
	assert_non_null(l.v);
	l.n = 2;
	l.v[0].key = strdup("x");
	l.v[1].key = strdup("x");
	l.v[0].reason = strdup("");
	l.v[1].reason = strdup("");
	l.v[0].by = strdup("");
	l.v[1].by = strdup("");
	assert_int_equal(cm_blocks_sort_unique(&l, &err), CM_ERR_CORRUPT);
	cm_blocks_clear(&l);
}

static struct cm_cert_facts facts(unsigned char seed)
{
	struct cm_cert_facts f;

	memset(&f, 0, sizeof(f));
	memset(f.fp, seed, sizeof(f.fp));
	f.serial[0] = seed;
	f.serial_len = 1;
	f.key_type = CM_KEY_TYPE_EC;
	f.key_bits = 256;
	f.not_after = 2000000000;
	return f;
}

static void test_certificates_are_counted_once_and_clones_are_seen(void **state)
{
	struct cm_inventory *inv = cm_inventory_new(10);
	struct cm_cert_facts a = facts(1), b = facts(2), c = facts(3);
	struct cm_device *d;
	bool clone;

	(void)state;
	d = cm_inventory_admit(inv, "acme", "d:acme:t:1", &a, "", 100, &clone);
	assert_non_null(d);
	assert_false(clone);
	cm_inventory_disconnected(inv, d);
	assert_ptr_equal(cm_inventory_admit(inv, "acme", "d:acme:t:1", &b, "", 101, &clone), d);
	cm_inventory_disconnected(inv, d);
	cm_inventory_admit(inv, "acme", "d:acme:t:1", &a, "", 102, &clone);
	assert_false(clone);
	assert_int_equal(d->certs, 2);
	/* Admitted with c while connected with a: a clone. */
	cm_inventory_admit(inv, "acme", "d:acme:t:1", &c, "", 103, &clone);
	assert_true(clone);
	assert_int_equal(d->certs, 3);
	assert_int_equal(d->connected, 2);
	assert_int_equal(inv->clone_n, 1);
	assert_int_equal(d->first_seen, 100);
	assert_int_equal(d->last_seen, 103);
	/* The same id in another tenant is another device. */
	assert_ptr_not_equal(cm_inventory_admit(inv, "other", "d:acme:t:1", &a, "", 104, &clone), d);
	assert_int_equal(inv->count, 2);
	cm_inventory_refused(inv, "acme", "d:acme:t:1", 6, 105);
	assert_int_equal(d->refusal, 7);
	cm_inventory_refused(inv, "acme", "d:acme:t:unknown", 6, 105);
	assert_int_equal(inv->count, 2);
	cm_inventory_free(&inv);
	cm_inventory_free(&inv);
}

static void test_a_full_inventory_forgets_a_device_not_connected(void **state)
{
	struct cm_inventory *inv = cm_inventory_new(4);
	struct cm_cert_facts a = facts(1);
	struct cm_device *kept[3];
	char id[32];
	bool clone;

	(void)state;
	for(int i = 0; i < 3; i++){
		snprintf(id, sizeof(id), "d:acme:t:c%d", i);
		kept[i] = cm_inventory_admit(inv, "acme", id, &a, "", 100, &clone);
	}
	cm_inventory_disconnected(inv, cm_inventory_admit(inv, "acme", "d:acme:t:old", &a, "", 50, &clone));
	assert_non_null(cm_inventory_admit(inv, "acme", "d:acme:t:new", &a, "", 200, &clone));
	assert_int_equal(inv->count, 4);
	assert_null(cm_inventory_find(inv, "acme", "d:acme:t:old"));
	for(int i = 0; i < 3; i++){
		snprintf(id, sizeof(id), "d:acme:t:c%d", i);
		assert_ptr_equal(cm_inventory_find(inv, "acme", id), kept[i]);
	}
	/* Every one connected: the new one is not recorded. */
	assert_null(cm_inventory_admit(inv, "acme", "d:acme:t:more", &a, "", 300, &clone));
	assert_int_equal(inv->dropped, 1);
	cm_inventory_free(&inv);
	/* 0: off. */
	inv = cm_inventory_new(0);
	assert_null(cm_inventory_admit(inv, "acme", "d:acme:t:1", &a, "", 1, &clone));
	cm_inventory_free(&inv);
}

static void test_the_order_is_by_tenant_and_id_with_additions_merged(void **state)
{
	struct cm_inventory *inv = cm_inventory_new(1000);
	struct cm_cert_facts a = facts(1);
	const char *ids[] = {"d:x:t:m", "d:x:t:b", "d:x:t:z", "d:x:t:a"};
	bool clone;
	size_t i;

	(void)state;
	for(i = 0; i < 4; i++){
		cm_inventory_disconnected(inv, cm_inventory_admit(inv, "x", ids[i], &a, "", 1, &clone));
	}
	assert_int_equal(cm_inventory_sort(inv), CM_OK);
	cm_inventory_admit(inv, "y", "d:y:t:a", &a, "", 1, &clone);
	cm_inventory_admit(inv, "x", "d:x:t:c", &a, "", 1, &clone);
	assert_int_equal(cm_inventory_sort(inv), CM_OK);
	assert_int_equal(inv->order_n, 6);
	i = cm_inventory_lower_bound(inv, "x", "");
	assert_string_equal(inv->order[i]->id, "d:x:t:a");
	assert_string_equal(inv->order[i + 1]->id, "d:x:t:b");
	assert_string_equal(inv->order[i + 2]->id, "d:x:t:c");
	assert_string_equal(inv->order[i + 4]->id, "d:x:t:z");
	assert_string_equal(inv->order[cm_inventory_lower_bound(inv, "x", "d:x:t:n")]->id, "d:x:t:z");
	assert_string_equal(inv->order[cm_inventory_lower_bound(inv, "y", "")]->id, "d:y:t:a");
	assert_int_equal(cm_inventory_lower_bound(inv, "nobody", ""), inv->order_n);
	for(i = 0; i < inv->order_n; i++){
		assert_int_equal(inv->order[i]->pos, i);
	}
	cm_inventory_free(&inv);
}

static void test_the_file_gives_back_what_was_written(void **state)
{
	char *dir = tu_mkdtemp(), path[512];
	struct cm_inventory *inv = cm_inventory_new(100), *again = cm_inventory_new(100);
	struct cm_cert_facts a = facts(0xab), b = facts(0xcd);
	struct cm_inventory_snapshot *snap;
	struct cm_device *d, *e;
	struct cm_err err;
	bool clone;

	(void)state;
	a.sig_nid = 794; /* ecdsa-with-SHA256 */
	d = cm_inventory_admit(inv, "acme", "d:acme:t:with space%", &a, "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef", 100, &clone);
	cm_inventory_admit(inv, "acme", "d:acme:t:with space%", &b, "", 101, &clone);
	cm_inventory_refused(inv, "acme", "d:acme:t:with space%", 6, 102);
	snap = cm_inventory_snapshot(inv);
	assert_false(inv->dirty);
	assert_int_equal(cm_inventory_write(snap, dir, &err), CM_OK);
	cm_inventory_snapshot_free(&snap);
	cm_inventory_snapshot_free(&snap);
	assert_int_equal(cm_inventory_load(again, dir, &err), CM_OK);
	e = cm_inventory_find(again, "acme", "d:acme:t:with space%");
	assert_non_null(e);
	assert_memory_equal(&e->cert, &d->cert, sizeof(d->cert));
	assert_memory_equal(e->prev, d->prev, sizeof(d->prev));
	assert_int_equal(e->certs, d->certs);
	assert_int_equal(e->first_seen, 100);
	assert_int_equal(e->refusal, 7);
	assert_int_equal(e->connected, 0);
	assert_int_equal(again->clone_n, 1);
	assert_string_equal(again->clones[0].id, "d:acme:t:with space%");
	/* A damaged file is refused whole. */
	snprintf(path, sizeof(path), "%s/%s", dir, CM_INVENTORY_FILE);
	tu_write_file(path, "certmgr-devices\t1\nd\tacme\tx\tnot hex\n");
	cm_inventory_free(&again);
	again = cm_inventory_new(100);
	assert_int_equal(cm_inventory_load(again, dir, &err), CM_ERR_CORRUPT);
	assert_non_null(strstr(err.msg, "line 2"));
	assert_int_equal(again->count, 0);
	tu_write_file(path, "something else\n");
	assert_int_equal(cm_inventory_load(again, dir, &err), CM_ERR_CORRUPT);
	tu_write_file(path, "certmgr-devices\t1\nd\tacme");
	assert_int_equal(cm_inventory_load(again, dir, &err), CM_ERR_CORRUPT);
	cm_inventory_free(&inv);
	cm_inventory_free(&again);
	tu_rmtree(dir);
	free(dir);
}

static void test_a_snapshot_taken_in_steps_holds_every_device(void **state)
{
	struct cm_inventory *inv = cm_inventory_new(100000);
	struct cm_cert_facts a = facts(1);
	struct cm_inventory_snapshot *snap;
	char id[32];
	bool clone;
	int steps = 0, r;

	(void)state;
	for(int i = 0; i < 3000; i++){
		snprintf(id, sizeof(id), "d:acme:t:%d", i);
		cm_inventory_admit(inv, "acme", id, &a, "", 1, &clone);
	}
	snap = cm_inventory_snapshot_begin(inv);
	assert_false(inv->dirty);
	while((r = cm_inventory_snapshot_step(inv, snap, 500)) == 0){
		/* Meanwhile, more devices: the table grows past 4,096 and the walk
		 * starts again. */
		for(int i = 0; i < 300; i++){
			snprintf(id, sizeof(id), "d:acme:t:x%d-%d", steps, i);
			cm_inventory_admit(inv, "acme", id, &a, "", 1, &clone);
		}
		steps++;
	}
	assert_int_equal(r, 1);
	assert_true(steps > 2);
	assert_true(inv->dirty);
	/* Every device there at the begin is in it. */
	{
		char *dir = tu_mkdtemp();
		struct cm_inventory *again = cm_inventory_new(100000);
		struct cm_err err;
		assert_int_equal(cm_inventory_write(snap, dir, &err), CM_OK);
		assert_int_equal(cm_inventory_load(again, dir, &err), CM_OK);
		for(int i = 0; i < 3000; i++){
			snprintf(id, sizeof(id), "d:acme:t:%d", i);
			assert_non_null(cm_inventory_find(again, "acme", id));
		}
		cm_inventory_free(&again);
		tu_rmtree(dir);
		free(dir);
	}
	cm_inventory_snapshot_free(&snap);
	cm_inventory_free(&inv);
}

static void test_the_device_ids_a_certificate_names(void **state)
{
	char ids[CM_IDENT_CERT_MAX][CM_IDENT_CLIENTID_MAX + 1];
	X509 *ca, *leaf;
	EVP_PKEY *kc, *kl;
	struct cm_err err;
	bool more;

	(void)state;
	assert_int_equal(cm_pki_make_ca("Identity Test CA", 30, &ca, &kc, &err), CM_OK);
	assert_int_equal(cm_pki_make_client_cert(ca, kc, "d:sensor:x1", 30, &leaf, &kl, &err), CM_OK);
	assert_int_equal(cm_identity_cert_clientids(leaf, "acme", ids, &more), 1);
	assert_string_equal(ids[0], "d:acme:sensor:x1");
	assert_false(more);
	/* A CA's CN is no device's name. */
	assert_int_equal(cm_identity_cert_clientids(ca, "acme", ids, &more), 0);
	X509_free(ca);
	X509_free(leaf);
	EVP_PKEY_free(kc);
	EVP_PKEY_free(kl);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_blocks_are_sorted_unique_and_copied),
		cmocka_unit_test(test_a_list_read_twice_the_same_key_is_refused),
		cmocka_unit_test(test_certificates_are_counted_once_and_clones_are_seen),
		cmocka_unit_test(test_a_full_inventory_forgets_a_device_not_connected),
		cmocka_unit_test(test_the_order_is_by_tenant_and_id_with_additions_merged),
		cmocka_unit_test(test_the_file_gives_back_what_was_written),
		cmocka_unit_test(test_a_snapshot_taken_in_steps_holds_every_device),
		cmocka_unit_test(test_the_device_ids_a_certificate_names),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
