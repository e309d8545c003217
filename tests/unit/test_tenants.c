/* Tenants in the store: creation, SNI lookup, uniqueness, deletion,
 * persistence, trust stores, and the migration from schema 1. */
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/x509_vfy.h>

#include "fsutil.h"
#include "json.h"
#include "store.h"
#include "store-int.h" /* white-box: the test reads the store's fields */
#include "testutil.h"

static char *open_fresh(struct cm_store **out)
{
	char *dir = tu_mkdtemp();
	char *store_dir;
	bool created;
	struct cm_err err;

	assert_true(asprintf(&store_dir, "%s/s", dir) > 0);
	free(dir);
	assert_int_equal(cm_store_open(store_dir, "h.example", out, &created, &err), CM_OK);
	return store_dir;
}

static void drop(char *store_dir)
{
	char *parent = strdup(store_dir);
	*strrchr(parent, '/') = '\0';
	tu_rmtree(parent);
	free(parent);
	free(store_dir);
}

static struct cm_tenant *tenant(const char *name, const char *const *hosts, size_t n)
{
	struct cm_tenant *t = cm_tenant_new(name);
	assert_non_null(t);
	assert_int_equal(cm_strlist_set(&t->hostnames, hosts, n), CM_OK);
	return t;
}

static void put(struct cm_store *s, struct cm_tenant *t)
{
	struct cm_tenant *old = NULL;
	struct cm_err err;

	if(cm_store_put_tenant(s, t, &old, &err) != CM_OK){
		fail_msg("put %s: %s", t->name, err.msg);
	}
	cm_tenant_free(&old);
}

static void test_fresh_store_has_default_tenant_and_admin_ca(void **state)
{
	struct cm_store *s = NULL;
	char *dir = open_fresh(&s);
	char path[1024];
	struct stat st;
	const char *keys[] = {"admin/ca.key", "admin/admin.key"};
	size_t i;

	(void)state;
	assert_int_equal(s->schema, 2);
	assert_non_null(s->admin_ca);
	assert_non_null(cm_store_find_tenant(s, "default"));
	assert_ptr_equal(cm_store_tenant_for_sni(s, NULL), cm_store_find_tenant(s, "default"));
	assert_ptr_equal(cm_store_tenant_for_sni(s, "unknown.example"), cm_store_find_tenant(s, "default"));
	for(i = 0; i < 2; i++){
		snprintf(path, sizeof(path), "%s/%s", dir, keys[i]);
		assert_int_equal(stat(path, &st), 0);
		assert_int_equal(st.st_mode & 0777, 0600);
	}
	cm_store_free(&s);
	drop(dir);
}

static void test_sni_exact_wins_over_wildcard_and_persists(void **state)
{
	static const char *const a_hosts[] = {"*.example.com"};
	static const char *const b_hosts[] = {"b.example.com", "other.test"};
	struct cm_store *s = NULL, *again = NULL;
	char *dir = open_fresh(&s);
	bool created;
	struct cm_err err;

	(void)state;
	put(s, tenant("a", a_hosts, 1));
	put(s, tenant("b", b_hosts, 2));
	assert_string_equal(cm_store_tenant_for_sni(s, "x.example.com")->name, "a");
	assert_string_equal(cm_store_tenant_for_sni(s, "b.example.com")->name, "b");
	assert_string_equal(cm_store_tenant_for_sni(s, "other.test")->name, "b");
	/* a wildcard covers one label only */
	assert_string_equal(cm_store_tenant_for_sni(s, "y.x.example.com")->name, "default");
	assert_string_equal(cm_store_tenant_for_sni(s, "example.com")->name, "default");
	assert_int_equal(cm_store_open(dir, "h", &again, &created, &err), CM_OK);
	assert_string_equal(cm_store_tenant_for_sni(again, "x.example.com")->name, "a");
	assert_string_equal(cm_store_tenant_for_sni(again, "b.example.com")->name, "b");
	assert_int_equal(again->generation, s->generation);
	cm_store_free(&s);
	cm_store_free(&again);
	drop(dir);
}

static void test_conflicts_are_refused_and_change_nothing(void **state)
{
	static const char *const hosts[] = {"a.test"};
	struct cm_store *s = NULL;
	char *dir = open_fresh(&s);
	char before[65], after[65];
	struct cm_tenant *t, *old = NULL;
	struct cm_err err;
	uint64_t gen;

	(void)state;
	put(s, tenant("a", hosts, 1));
	tu_tree_digest(dir, before);
	gen = s->generation;

	t = tenant("b", hosts, 1);
	assert_int_equal(cm_store_put_tenant(s, t, &old, &err), CM_ERR_INVAL);
	assert_non_null(strstr(err.msg, "already belongs to tenant 'a'"));
	cm_tenant_free(&t);

	t = tenant("c", NULL, 0);
	free(t->org_id);
	t->org_id = strdup("a");
	assert_int_equal(cm_store_put_tenant(s, t, &old, &err), CM_ERR_INVAL);
	assert_non_null(strstr(err.msg, "org id 'a'"));
	cm_tenant_free(&t);

	static const char *const twice[] = {"x.test", "x.test"};
	t = tenant("d", twice, 2);
	assert_int_equal(cm_store_put_tenant(s, t, &old, &err), CM_ERR_INVAL);
	cm_tenant_free(&t);

	assert_int_equal(cm_store_delete_tenant(s, "default", &old, &err), CM_ERR_INVAL);
	assert_int_equal(cm_store_delete_tenant(s, "nope", &old, &err), CM_ERR_INVAL);
	tu_tree_digest(dir, after);
	assert_string_equal(before, after);
	assert_int_equal(s->generation, gen);
	assert_null(cm_store_find_tenant(s, "b"));
	assert_string_equal(cm_store_tenant_for_sni(s, "a.test")->name, "a");
	cm_store_free(&s);
	drop(dir);
}

static void test_delete_removes_tenant_and_host_names(void **state)
{
	static const char *const hosts[] = {"gone.test"};
	struct cm_store *s = NULL, *again = NULL;
	char *dir = open_fresh(&s);
	struct cm_tenant *old = NULL;
	bool created;
	struct cm_err err;

	(void)state;
	put(s, tenant("gone", hosts, 1));
	assert_int_equal(cm_store_delete_tenant(s, "gone", &old, &err), CM_OK);
	assert_string_equal(old->name, "gone");
	cm_tenant_free(&old);
	assert_string_equal(cm_store_tenant_for_sni(s, "gone.test")->name, "default");
	assert_int_equal(cm_store_open(dir, "h", &again, &created, &err), CM_OK);
	assert_null(cm_store_find_tenant(again, "gone"));
	cm_store_free(&s);
	cm_store_free(&again);
	drop(dir);
}

static void test_trust_store_verifies_devices_of_active_cas_only(void **state)
{
	struct cm_store *s = NULL, *again = NULL;
	char *dir = open_fresh(&s);
	X509 *ca = NULL, *dev = NULL;
	EVP_PKEY *ca_key = NULL, *dev_key = NULL;
	struct cm_tenant *t;
	struct cm_ca *entry;
	X509_STORE_CTX *ctx;
	bool created;
	struct cm_err err;

	(void)state;
	assert_int_equal(cm_pki_make_ca("Test CA", 10, &ca, &ca_key, &err), CM_OK);
	assert_int_equal(cm_pki_make_client_cert(ca, ca_key, "d:t:1", 10, &dev, &dev_key, &err), CM_OK);
	t = tenant("withca", NULL, 0);
	entry = calloc(1, sizeof(*entry));
	entry->description = strdup("test");
	entry->active = true;
	entry->added = time(NULL);
	entry->cert = ca;
	assert_int_equal(cm_pki_cert_id(ca, entry->id, &err), CM_OK);
	t->cas = entry;
	put(s, t);

	ctx = X509_STORE_CTX_new();
	assert_int_equal(X509_STORE_CTX_init(ctx, cm_store_find_tenant(s, "withca")->trust, dev, NULL), 1);
	assert_int_equal(X509_verify_cert(ctx), 1);
	X509_STORE_CTX_free(ctx);
	/* not in another tenant's store */
	ctx = X509_STORE_CTX_new();
	assert_int_equal(X509_STORE_CTX_init(ctx, cm_store_find_tenant(s, "default")->trust, dev, NULL), 1);
	assert_int_not_equal(X509_verify_cert(ctx), 1);
	X509_STORE_CTX_free(ctx);

	/* reloaded from disk, then deactivated: no longer trusted */
	assert_int_equal(cm_store_open(dir, "h", &again, &created, &err), CM_OK);
	t = cm_tenant_clone(cm_store_find_tenant(again, "withca"));
	assert_non_null(t->cas);
	t->cas->active = false;
	put(again, t);
	ctx = X509_STORE_CTX_new();
	assert_int_equal(X509_STORE_CTX_init(ctx, cm_store_find_tenant(again, "withca")->trust, dev, NULL), 1);
	assert_int_not_equal(X509_verify_cert(ctx), 1);
	X509_STORE_CTX_free(ctx);

	X509_free(dev);
	EVP_PKEY_free(ca_key);
	EVP_PKEY_free(dev_key);
	cm_store_free(&s);
	cm_store_free(&again);
	drop(dir);
}

static void test_schema_1_store_is_migrated_after_a_backup(void **state)
{
	struct cm_store *s = NULL;
	char *dir = open_fresh(&s);
	char path[1024], cmd[1200];
	char mqtt_id[CM_ID_LEN + 1];
	bool created;
	struct cm_err err;
	struct stat st;

	(void)state;
	memcpy(mqtt_id, cm_store_slot_default(s, CM_SLOT_MQTT)->id, sizeof(mqtt_id));
	cm_store_free(&s);
	/* Make it what the foundation wrote: slots only, schema 1. */
	snprintf(cmd, sizeof(cmd), "rm -rf '%s/admin' '%s/tenants'", dir, dir);
	assert_int_equal(system(cmd), 0);
	snprintf(path, sizeof(path), "%s/store.json", dir);
	tu_write_file(path, "{\"schema\":1,\"generation\":1}");

	assert_int_equal(cm_store_open(dir, "h", &s, &created, &err), CM_OK);
	assert_false(created);
	assert_int_equal(s->schema, 2);
	assert_non_null(cm_store_find_tenant(s, "default"));
	assert_non_null(s->admin_ca);
	assert_string_equal(cm_store_slot_default(s, CM_SLOT_MQTT)->id, mqtt_id);
	snprintf(cmd, sizeof(cmd), "grep -q '\"schema\":\\s*1' %s/backups/schema-1-*/store.json && ls %s/backups/schema-1-*/slots/mqtt/%s.key >/dev/null",
			dir, dir, mqtt_id);
	assert_int_equal(system(cmd), 0);
	snprintf(path, sizeof(path), "%s/admin/ca.pem", dir);
	assert_int_equal(stat(path, &st), 0);
	cm_store_free(&s);
	drop(dir);
}

static void test_damaged_tenant_files_are_refused(void **state)
{
	static const char *const hosts[] = {"t.test"};
	struct cm_store *s = NULL;
	char *dir = open_fresh(&s);
	char path[1024], before[65], after[65];
	bool created;
	struct cm_err err;

	(void)state;
	put(s, tenant("t", hosts, 1));
	cm_store_free(&s);
	snprintf(path, sizeof(path), "%s/tenants/t/tenant.json", dir);
	tu_write_file(path, "{\"name\":\"other\"}");
	tu_tree_digest(dir, before);
	assert_int_equal(cm_store_open(dir, "h", &s, &created, &err), CM_ERR_CORRUPT);
	assert_non_null(strstr(err.msg, path));
	tu_tree_digest(dir, after);
	assert_string_equal(before, after);
	snprintf(path, sizeof(path), "%s/admin/ca.pem", dir);
	unlink(path);
	assert_int_equal(cm_store_open(dir, "h", &s, &created, &err), CM_ERR_CORRUPT);
	assert_non_null(strstr(err.msg, "admin/ca.pem"));
	drop(dir);
}

/* How many entries a directory holds. */
static int count_files(const char *dir)
{
	char cmd[1200];
	FILE *p;
	int n = -1;

	snprintf(cmd, sizeof(cmd), "ls -A '%s' | wc -l", dir);
	p = popen(cmd, "r");
	assert_non_null(p);
	assert_int_equal(fscanf(p, "%d", &n), 1);
	pclose(p);
	return n;
}

/* A trust list of hundreds: a write keeps exactly the files it names
 * (the store looks every entry up in a sorted index), and a tenant file
 * that lists a CA twice is refused at load. */
static void test_large_trust_lists_keep_exactly_the_files_they_name(void **state)
{
	enum { N = 400 };
	struct cm_store *s = NULL;
	char *dir = open_fresh(&s);
	char cas[1024], path[1200], before[65], after[65], ids[N][CM_ID_LEN + 1];
	struct cm_tenant *t;
	struct cm_ca *entry, **pp;
	bool created;
	struct cm_err err;
	int i;

	(void)state;
	t = tenant("many", NULL, 0);
	pp = &t->cas;
	for(i = 0; i < N; i++){
		EVP_PKEY *key = NULL;
		char cn[32];
		entry = calloc(1, sizeof(*entry));
		assert_non_null(entry);
		snprintf(cn, sizeof(cn), "CA %d", i);
		assert_int_equal(cm_pki_make_ca(cn, 10, &entry->cert, &key, &err), CM_OK);
		EVP_PKEY_free(key);
		entry->description = strdup("");
		entry->active = true;
		entry->added = time(NULL);
		assert_int_equal(cm_pki_cert_id(entry->cert, entry->id, &err), CM_OK);
		memcpy(ids[i], entry->id, sizeof(ids[i]));
		*pp = entry;
		pp = &entry->next;
	}
	put(s, t);
	snprintf(cas, sizeof(cas), "%s/tenants/many/cas", dir);
	assert_int_equal(count_files(cas), N);

	/* Every other one goes. */
	t = cm_tenant_clone(cm_store_find_tenant(s, "many"));
	assert_non_null(t);
	for(pp = &t->cas, i = 0; *pp; i++){
		if(i % 2 == 0){
			entry = *pp;
			*pp = entry->next;
			cm_ca_free(&entry);
		}else{
			pp = &(*pp)->next;
		}
	}
	put(s, t);
	assert_int_equal(count_files(cas), N / 2);
	for(i = 0; i < N; i++){
		struct stat st;
		snprintf(path, sizeof(path), "%s/%.64s.pem", cas, ids[i]);
		assert_int_equal(stat(path, &st) == 0, i % 2 == 1);
	}
	cm_store_free(&s);
	assert_int_equal(cm_store_open(dir, "h", &s, &created, &err), CM_OK);
	for(i = 0, entry = cm_store_find_tenant(s, "many")->cas; entry; entry = entry->next){
		i++;
	}
	assert_int_equal(i, N / 2);
	cm_store_free(&s);

	/* The last entry listed again, at the front: refused, nothing changed. */
	{
		char cmd[1400];
		snprintf(path, sizeof(path), "%s/tenants/many/tenant.json", dir);
		snprintf(cmd, sizeof(cmd), "python3 -c 'import json,sys; p=sys.argv[1]; d=json.load(open(p)); d[\"cas\"].insert(0, d[\"cas\"][-1]); "
				"json.dump(d, open(p, \"w\"))' '%s'", path);
		assert_int_equal(system(cmd), 0);
	}
	tu_tree_digest(dir, before);
	assert_int_equal(cm_store_open(dir, "h", &s, &created, &err), CM_ERR_CORRUPT);
	assert_non_null(strstr(err.msg, "is listed twice"));
	assert_non_null(strstr(err.msg, ids[N - 1]));
	tu_tree_digest(dir, after);
	assert_string_equal(before, after);
	drop(dir);
}

static void test_names_and_host_names(void **state)
{
	char out[254];
	struct cm_err err;

	(void)state;
	assert_true(cm_tenant_name_valid("acme-1_x"));
	assert_false(cm_tenant_name_valid("Acme"));
	assert_false(cm_tenant_name_valid("-x"));
	assert_false(cm_tenant_name_valid(".."));
	assert_false(cm_tenant_name_valid("a/b"));
	assert_false(cm_tenant_name_valid(""));
	assert_int_equal(cm_hostname_normalize("Broker.Example.COM", out, &err), CM_OK);
	assert_string_equal(out, "broker.example.com");
	assert_int_equal(cm_hostname_normalize("*.Example.com", out, &err), CM_OK);
	assert_string_equal(out, "*.example.com");
	assert_int_equal(cm_hostname_normalize("a..b", out, &err), CM_ERR_INVAL);
	assert_int_equal(cm_hostname_normalize("a.*.b", out, &err), CM_ERR_INVAL);
	assert_int_equal(cm_hostname_normalize("-a.b", out, &err), CM_ERR_INVAL);
	assert_int_equal(cm_hostname_normalize("a b", out, &err), CM_ERR_INVAL);
	assert_int_equal(cm_hostname_normalize("*.", out, &err), CM_ERR_INVAL);
	assert_int_equal(cm_hostname_normalize("", out, &err), CM_ERR_INVAL);
	assert_int_equal(cm_policy_parse("certificate+token"), CM_POLICY_CERT_TOKEN);
	assert_int_equal(cm_policy_parse("Certificate"), -1);
}

static struct cm_ca *ca_entry(X509 *cert)
{
	struct cm_ca *entry = calloc(1, sizeof(*entry));
	struct cm_err err;

	assert_non_null(entry);
	entry->description = strdup("test");
	entry->active = true;
	entry->added = time(NULL);
	entry->cert = cert;
	assert_int_equal(cm_pki_cert_id(cert, entry->id, &err), CM_OK);
	return entry;
}

/* The org index follows the tenants through a create, a replace by a
 * copy, a reload and a delete. */
static void test_org_index_follows_the_tenants(void **state)
{
	struct cm_store *s = NULL, *again = NULL;
	char *dir = open_fresh(&s);
	X509 *ca = NULL;
	EVP_PKEY *key = NULL;
	struct cm_tenant *t, *copy, *old = NULL;
	bool created;
	struct cm_err err;

	(void)state;
	assert_int_equal(cm_pki_make_ca("Index CA", 10, &ca, &key, &err), CM_OK);
	EVP_PKEY_free(key);
	t = tenant("a", NULL, 0);
	X509_up_ref(ca);
	t->cas = ca_entry(ca);
	put(s, t);
	assert_ptr_equal(cm_store_tenant_for_org(s, "a", 1), cm_store_find_tenant(s, "a"));
	assert_null(cm_store_tenant_for_org(s, "ab", 2));

	/* Another tenant trusts the same CA; the first is replaced by a copy. */
	t = tenant("b", NULL, 0);
	X509_up_ref(ca);
	t->cas = ca_entry(ca);
	put(s, t);
	copy = cm_tenant_clone(cm_store_find_tenant(s, "a"));
	assert_non_null(copy);
	put(s, copy);
	assert_ptr_equal(cm_store_tenant_for_org(s, "a", 1), copy);

	/* An org id another tenant has is refused, by the index. */
	copy = cm_tenant_clone(cm_store_find_tenant(s, "b"));
	free(copy->org_id);
	copy->org_id = strdup("a");
	assert_int_equal(cm_store_put_tenant(s, copy, &old, &err), CM_ERR_INVAL);
	cm_tenant_free(&copy);

	assert_int_equal(cm_store_open(dir, "h", &again, &created, &err), CM_OK);
	assert_non_null(cm_store_tenant_for_org(again, "b", 1));
	cm_store_free(&again);

	assert_int_equal(cm_store_delete_tenant(s, "a", &old, &err), CM_OK);
	cm_tenant_free(&old);
	assert_null(cm_store_tenant_for_org(s, "a", 1));
	assert_int_equal(cm_store_delete_tenant(s, "b", &old, &err), CM_OK);
	cm_tenant_free(&old);
	X509_free(ca);
	cm_store_free(&s);
	drop(dir);
}

/* cm_text keeps what is appended, NUL bytes included, and frees twice. */
static void test_text_appends_and_frees(void **state)
{
	struct cm_text t = {NULL, 0, 0};
	char big[5000];

	(void)state;
	memset(big, 'x', sizeof(big));
	assert_true(cm_text_append(&t, "a\0b", 3));
	assert_true(cm_text_append(&t, big, sizeof(big)));
	assert_int_equal(t.len, 3 + sizeof(big));
	assert_int_equal(t.s[t.len], '\0');
	assert_memory_equal(t.s, "a\0b", 3);
	assert_true(t.cap > t.len);
	cm_text_free(&t);
	assert_null(t.s);
	assert_int_equal(t.len, 0);
	cm_text_free(&t);
}

/* A tenant's server certificate ids take no memory until one is set;
 * a copy owns its own, and an id too long or a slot out of range is
 * refused with the tenant unchanged. */
static void test_server_cert_ids_are_made_at_the_first_set(void **state)
{
	char id[CM_ID_LEN + 1], longer[CM_ID_LEN + 2];
	struct cm_tenant *t = cm_tenant_new("ids"), *copy;

	(void)state;
	assert_non_null(t);
	memset(id, 'a', CM_ID_LEN);
	id[CM_ID_LEN] = '\0';
	memset(longer, 'b', CM_ID_LEN + 1);
	longer[CM_ID_LEN + 1] = '\0';
	assert_null(t->server_cert);
	assert_string_equal(cm_tenant_server_cert(t, CM_SLOT_MQTT), "");
	assert_true(cm_tenant_set_server_cert(t, CM_SLOT_MQTT, ""));
	assert_null(t->server_cert);
	assert_false(cm_tenant_set_server_cert(t, CM_SLOT_MQTT, longer));
	assert_false(cm_tenant_set_server_cert(t, (enum cm_slot_id)CM_SLOT_COUNT, id));
	assert_false(cm_tenant_set_server_cert(t, (enum cm_slot_id)-1, id));
	assert_null(t->server_cert);
	assert_string_equal(cm_tenant_server_cert(t, (enum cm_slot_id)CM_SLOT_COUNT), "");
	assert_true(cm_tenant_set_server_cert(t, CM_SLOT_BRIDGE, id));
	assert_string_equal(cm_tenant_server_cert(t, CM_SLOT_BRIDGE), id);
	assert_string_equal(cm_tenant_server_cert(t, CM_SLOT_MQTT), "");
	assert_false(cm_tenant_set_server_cert(t, CM_SLOT_BRIDGE, longer));
	assert_string_equal(cm_tenant_server_cert(t, CM_SLOT_BRIDGE), id);
	copy = cm_tenant_clone(t);
	assert_non_null(copy);
	assert_ptr_not_equal(copy->server_cert, t->server_cert);
	assert_true(cm_tenant_set_server_cert(copy, CM_SLOT_BRIDGE, ""));
	assert_string_equal(cm_tenant_server_cert(copy, CM_SLOT_BRIDGE), "");
	assert_string_equal(cm_tenant_server_cert(t, CM_SLOT_BRIDGE), id);
	cm_tenant_free(&copy);
	cm_tenant_free(&t);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_fresh_store_has_default_tenant_and_admin_ca),
		cmocka_unit_test(test_sni_exact_wins_over_wildcard_and_persists),
		cmocka_unit_test(test_conflicts_are_refused_and_change_nothing),
		cmocka_unit_test(test_delete_removes_tenant_and_host_names),
		cmocka_unit_test(test_trust_store_verifies_devices_of_active_cas_only),
		cmocka_unit_test(test_schema_1_store_is_migrated_after_a_backup),
		cmocka_unit_test(test_damaged_tenant_files_are_refused),
		cmocka_unit_test(test_large_trust_lists_keep_exactly_the_files_they_name),
		cmocka_unit_test(test_names_and_host_names),
		cmocka_unit_test(test_org_index_follows_the_tenants),
		cmocka_unit_test(test_text_appends_and_frees),
		cmocka_unit_test(test_server_cert_ids_are_made_at_the_first_set),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
